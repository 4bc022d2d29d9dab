//! IPv4: `ip4-input` checks packets before the shared routing path
//! ([`crate::ip`]) trusts them; `arp-input` answers and learns ARP.

pub mod arp;
pub mod input;

pub use arp::ArpInput;
pub use input::Ip4Input;
