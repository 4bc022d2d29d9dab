//! NAT44: dynamic source NAT with port allocation, and static mappings
//! (one-to-one and port forwarding), on the connection table.
//!
//! - [`config`]: the pool, its ports, the static mappings;
//! - [`pool`]: choosing an outside address and port for a new flow;
//! - [`csum`]: checksums updated for a change (RFC 1624);
//! - [`rewrite`]: one end of a packet rewritten in place, ICMP errors'
//!   quoted packets too;
//! - [`NatNode`]: `ip4-nat`, a vector at a time.
//!
//! # Sessions
//!
//! NAT keeps no table of its own: each translated flow is a session of a
//! [`ConnTrack`](crate::conntrack::ConnTrack) whose reply key is the
//! translated one ([`ReplyNat`](crate::conntrack::ReplyNat)), so the
//! reply is found with one lookup of the key it arrives with, and is
//! translated back from the session's original key. Tracking, timeouts,
//! table limits and eviction are conntrack's; a port is free when no
//! session's reply key holds it, so it is free again as soon as its
//! session expires, and running out of ports is counted (`nat-no-port`).
//! Translation is endpoint-dependent (a port is reused towards other
//! remote ends); flows from the outside open only through static
//! mappings, so NAT also acts as the firewall of the inside.
//!
//! # Integration (not wired yet)
//!
//! `sluice-control` has to read a `[nat]` section (pool, port range,
//! static mappings, inside interfaces, a [`CtConfig`](crate::CtConfig)
//! for the NAT's sessions) into a [`NatConfig`], build a `ConnTrack` and
//! a [`NatNode`] per worker, and place it on the ip4-unicast arc after
//! the firewall and before `ip4-lookup` (so the route is looked up for
//! the translated destination); publish the node's `CtStats`. The
//! outside addresses must be answered for (ARP) by `ip4-announce` or
//! routed to the box. Each worker translates its own flows; receive-side
//! steering must bring both directions of a flow to one worker — with
//! NAT that means steering replies by the outside port (or giving each
//! worker its own port range), which is not done here. IPv4 only;
//! fragments are dropped (no reassembly before NAT).

pub mod config;
pub mod csum;
mod node;
pub mod pool;
pub mod rewrite;

pub use config::{NatConfig, NatConfigError, StaticMapping};
pub use node::{IP4_NAME, NatNode};
