//! Forwarding tables: per table (VRF) longest-prefix match for IPv4 and
//! IPv6, the adjacencies routes lead to, ECMP, and in-place updates while
//! workers forward.

pub mod adj;
pub mod lpm;
mod table;

pub use adj::{Adj, AdjKind, AdjTable, MAX_PATHS};
pub use lpm::{Key, Lpm, LpmConfig, LpmError};
pub use table::{
    Fib, FibConfig, FibError, NeighborEntry, NeighborState, Path, Prefix, PrefixError,
    REACHABLE_TIME, Route,
};
