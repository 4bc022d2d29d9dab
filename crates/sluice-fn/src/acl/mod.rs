//! Access control lists: ordered L2–L4 rules, first match wins, classified
//! a vector of packets at a time.
//!
//! - [`rule`]: what a rule matches (IPv4/IPv6 prefixes, protocol under a
//!   mask, port ranges, TCP flags, ICMP type/code, DSCP, MACs, VLAN) and
//!   what is refused;
//! - [`key`]: the fields pulled out of a packet before the lookup;
//! - [`Acl`]: a built list; [`SharedAcl`]: the list workers read, swapped
//!   whole by the control plane;
//! - [`LinearScan`]: the reference the classifier is checked against;
//! - [`AclNode`]: `ip4-acl` / `ip6-acl` on a feature arc.
//!
//! # The algorithm, and why
//!
//! (Filled in from the measurements of `benches/acl_peer.rs`.)

mod block;
pub mod key;
mod linear;
mod list;
mod node;
pub mod rule;
mod shared;
mod tree;
mod tuple;

pub use key::{Addr, Key, KeyError, L2Key, ip4_key, ip6_key, l2_key};
pub use linear::LinearScan;
pub use list::{Acl, MAX_BATCH, Match, NO_MATCH};
pub use node::{AclNode, Family, IP4_NAME, IP6_NAME, REFLECT};
pub use rule::{Action, Masked, PortRange, Rule, RuleError, prefix};
pub use shared::SharedAcl;
pub use tree::{TreeConfig, TreeStats};
pub use tuple::TupleSpace;
