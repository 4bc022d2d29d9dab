//! Connection tracking and the stateful firewall.
//!
//! - [`tuple`]: a connection's key (5-tuple + zone, IPv4 and IPv6) and
//!   its hash;
//! - [`parse`]: what the tracker reads of a packet;
//! - [`tcp`]: the TCP state machine and window tracking;
//! - [`table`]: one worker's sessions and the index that finds them from
//!   either direction;
//! - [`wheel`]: the hierarchical timer wheel sessions expire on;
//! - [`ConnTrack`]: the tracker — table, wheel, per-protocol rules — a
//!   vector at a time;
//! - [`ConnTrackNode`]: `ip4-conntrack` / `ip6-conntrack`, the firewall
//!   on the IP path: established and related pass, new flows only where
//!   an ACL reflected them or from a trusted interface.
//!
//! # Behaviour when full
//!
//! The table's capacity and every zone's limit are fixed at creation, and
//! so is all the memory (156 bytes a session). A new flow that finds its
//! zone or the table full evicts the oldest embryonic session (TCP in
//! SYN_SENT or SYN_RECV, UDP and echo never answered) of that zone or of
//! the table, counted as `evicted`; with none to evict it is refused,
//! counted as `refused` and dropped as `table-full` or `zone-full`. An
//! established connection is never evicted: a SYN flood churns through
//! the embryonic sessions and leaves the rest alone.
//!
//! # Expiry
//!
//! Every session has a deadline (its state's timeout from its last
//! valid packet, [`Timeouts`]) and a timer on the wheel. Each vector
//! moves the wheel to the worker's clock and expires a bounded number of
//! sessions ([`CtConfig::expire_budget`]); the node's background poll does
//! the same without traffic. A session found past its deadline by a
//! lookup goes at once, so a backlog never lets a dead session pass.
//!
//! # Integration (not wired yet)
//!
//! `sluice-control` has to: read a `[conntrack]` section (capacity,
//! zones and limits, timeouts, tick) into a [`CtConfig`] and a
//! [`Policy`] (trusted interfaces, interface → zone, e.g. the VRF of its
//! table); build one [`ConnTrack`] per worker and node in the worker
//! factory (`ConnTrack::new` allocates the whole table: do it before the
//! worker runs) and place the nodes after `ipN-acl` (or `ipN-input`)
//! and before `ipN-lookup`, with [`Clock::tsc`]; publish each node's
//! [`CtStats`] (table fill, created, expired, evicted, refused, per zone)
//! to `show` and the metrics. Flows reach the right worker only if
//! receive-side steering hashes both directions of a connection alike
//! (symmetric RSS); handing packets between workers is not done here.

pub mod config;
mod node;
pub mod parse;
pub mod session;
mod stats;
pub mod table;
pub mod tcp;
mod track;
pub mod tuple;
pub mod wheel;

pub use config::{CtConfig, CtConfigError, Timeouts};
pub use node::{Clock, ConnTrackNode, IP4_NAME, IP6_NAME, Policy};
pub use parse::{L4, ParseError, Parsed, TcpInfo, parse4, parse6};
pub use session::Kind;
pub use stats::{Counts, CountsSnapshot, CtStats};
pub use tcp::{TcpInvalid, TcpState};
pub use track::{ConnTrack, Invalid, Refusal, Verdict};
pub use tuple::Tuple;
