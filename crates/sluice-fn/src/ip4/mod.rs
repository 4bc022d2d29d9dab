//! IPv4: `ip4-input` checks packets before the shared routing path
//! ([`crate::ip`]) trusts them; `arp-input` answers and learns ARP;
//! `arp-announce` says our addresses once at start (gratuitous ARP).

pub mod announce;
pub mod arp;
pub mod input;

pub use announce::ArpAnnounce;
pub use arp::ArpInput;
pub use input::Ip4Input;
