//! Sluice's network functions, one module per function family.
//!
//! - [`l2`]: bridge domains (learning, aging, flooding with split horizon,
//!   VLAN tag rewrite), cross-connects, the BVI;
//! - [`fib`]: per-table IPv4 and IPv6 longest-prefix match updated in place
//!   while workers forward, adjacencies, ECMP, the neighbour table;
//! - [`ip`], [`ip4`], [`ip6`]: the routing path (input checks, lookup,
//!   rewrite, local delivery, ICMP errors, ARP and ND), assembled per
//!   worker by [`Router`];
//! - [`host`]: the packets a router sends as a host (ICMP, ARP, ND);
//! - [`features`]: the routing path's feature arcs (`ipN-unicast`,
//!   `ipN-output`) and the order of their features;
//! - [`acl`]: access lists; [`conntrack`]: connection tracking and the
//!   stateful firewall; [`ids`]: intrusion detection; [`nat`]: NAT44.
//! - [`rss`], [`handoff`]: the flow hash, and handing each packet to the
//!   worker that owns its flow.
//!
//! ```text
//! <if>-input → ethernet-input → ipN-input → [ipN-unicast] → ipN-lookup
//!     → ipN-rewrite → [ipN-output] → <if>-output
//! <if>-input → l2-input → <if>-output (or l2-flood, or the BVI's ethernet-input)
//! ```
//!
//! Every node drops with a named counter; nothing here panics on packet
//! input. Functions know interfaces only through
//! [`sluice_graph::iface::Interfaces`], never drivers.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod acl;
pub mod addr;
pub mod conntrack;
pub mod ethernet;
pub mod features;
pub mod fib;
pub mod handoff;
pub mod host;
pub mod ids;
pub mod ip;
pub mod ip4;
pub mod ip6;
pub mod l2;
pub mod nat;
mod outputs;
pub mod router;
pub mod rss;

pub use acl::{Acl, Action, Rule, RuleError};
pub use addr::IfAddrs;
pub use conntrack::{ConnTrack, ConnTrackNode, CtConfig};
pub use ethernet::EthernetInput;
pub use fib::{Fib, FibConfig, Path, Prefix, Route};
pub use ids::{IdsNode, RuleSet};
pub use nat::{NatConfig, NatNode};
pub use router::Router;

/// The names of every node this crate makes, so that nothing else (an
/// interface's `<name>-input`, say) can take one of them.
pub const NODE_NAMES: &[&str] = &[
    ethernet::NAME,
    ip4::input::NAME,
    ip4::arp::NAME,
    ip4::announce::NAME,
    ip6::input::NAME,
    "ip4-lookup",
    "ip6-lookup",
    "ip4-rewrite",
    "ip6-rewrite",
    "ip4-local",
    "ip6-local",
    "ip4-icmp-error",
    "ip6-icmp-error",
    "ip4-arp",
    "ip6-nd",
    l2::INPUT,
    l2::FLOOD,
    l2::OUTPUT,
    l2::BVI_OUTPUT,
    l2::AGE,
    conntrack::IP4_NAME,
    conntrack::IP6_NAME,
    features::IP4_ACL_IN,
    features::IP6_ACL_IN,
    features::IP4_ACL_OUT,
    features::IP6_ACL_OUT,
    handoff::NAME,
    handoff::INPUT,
    ids::IP4_NAME,
    ids::IP6_NAME,
    nat::IP4_NAME,
];
pub use l2::{
    BridgeDomain, BridgePort, L2Config, L2ConfigError, L2State, StaticMac, VlanRewrite, XConnect,
};

/// The README's example node, compiled and run as a doctest so that it
/// cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
