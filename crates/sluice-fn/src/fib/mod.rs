//! Forwarding tables: longest-prefix match for IPv4 and IPv6.

pub mod lpm;

pub use lpm::{Key, Lpm, LpmConfig, LpmError};
