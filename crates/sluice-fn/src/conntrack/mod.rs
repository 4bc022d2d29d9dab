//! Connection tracking and the stateful firewall.
//!
//! - [`tuple`](mod@tuple): a connection's key (5-tuple + zone, IPv4 and IPv6) and
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
//! # The table, and why
//!
//! Per worker, one writer, no locks. Sessions are 128-byte slots of one
//! array; the index is 64-byte buckets of eight (signature, session |
//! direction) entries, each session entered under its original and its
//! reply key, so either direction finds it with one hash of the key it
//! carries (normalising the key instead would halve the index but leave
//! nothing for NAT, whose reply key is not the original turned around).
//! A session NAT opened ([`ConnTrack::track_nat`]) keeps the translated
//! end of its reply key in a [`ReplyNat`], in what was padding of the
//! 128 bytes, and is indexed and matched under that key.
//! Keys go to the first of two buckets unless it is full, with a cuckoo
//! step two deep when both are; a lookup reads the second bucket only
//! when the first says something overflowed. A vector is hashed and its
//! buckets prefetched, then the likeliest sessions prefetched, then
//! tracked in order: at 1M sessions (156 MiB, far beyond the caches) the
//! two misses a packet costs are mostly hidden.
//!
//! Measured with `cargo bench -p sluice-fn --bench firewall` (1M TCP
//! connections in a table of 2^20, opened through the node; established
//! traffic of real IPv4/TCP segments with data, half each way; AMD EPYC,
//! 2.6 GHz TSC, 2 vCPUs shared with other builds, load average 3.7–3.8;
//! medians of three runs of the per-vector median). Cycles per packet in
//! `ip4-conntrack`:
//!
//! | traffic | cycles/packet | packets/s a core |
//! |---|---|---|
//! | established, uniform over 1M connections | 210 | 12.4 M |
//! | established, Zipf(1.0) over 1M | 187 | 13.9 M |
//! | new connection (the SYN: session made, timers, lists) | 521 | 5.0 M setups/s |
//! | SYN-ACK, third ACK (sessions still warm from the SYN's vector) | 115, 118 | — |
//!
//! The target is 300 at 1M flows. Not measured beside it: the
//! Linux kernel with nftables conntrack between namespaces (the peers
//! README has 0.77 Mpps forwarded for it on this machine, about 3,400
//! cycles a packet, veth included).
//!
//! # Integration
//!
//! `sluice-control` reads `[conntrack]` (capacity, tick, timeouts) into a
//! [`CtConfig`], builds one [`ConnTrack`] per worker and family before
//! the worker runs, and places `ip4-conntrack` / `ip6-conntrack` on the
//! `ipN-unicast` feature arcs after the input ACL, on the interfaces
//! given `firewall = "inside"` or `"outside"`; the [`Policy`] (which
//! interfaces are trusted) is shared and replaced live. `show conntrack`
//! reads each table's [`CtStats`]. Not done yet: zones from the
//! configuration, per-state counts, the metrics export. Flows reach the
//! right worker only if receive-side steering hashes both directions of a
//! connection alike (symmetric RSS, or the handoff with `symmetric`).
//!
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
pub use session::{Kind, NatSide, ReplyNat, Session};
pub use stats::{Counts, CountsSnapshot, CtStats};
pub use tcp::{TcpInvalid, TcpState};
pub use track::{ConnTrack, Invalid, Refusal, Verdict};
pub use tuple::Tuple;
