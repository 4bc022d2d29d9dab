//! IPv6: `ip6-input` checks packets before the shared routing path
//! ([`crate::ip`]) trusts them.

pub mod input;

pub use input::Ip6Input;
