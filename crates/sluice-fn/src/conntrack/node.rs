//! `ip4-conntrack` and `ip6-conntrack`: the stateful firewall on the IP
//! path.
//!
//! Packets arrive with their data at the IP header (after `ipN-input`,
//! and after `ipN-acl` where an ACL stands). Per vector the node reads
//! the clock once, reads every packet's key, and hands the vector to its
//! [`ConnTrack`]; then:
//!
//! - packets of tracked connections, ICMP errors related to one, and
//!   untracked neighbour discovery go on to its one next node;
//! - a flow's first packet goes on, and makes a session, only if the ACL
//!   before marked it permit+reflect ([`REFLECT`] in `meta.flags`) or it
//!   came in on an interface the [`Policy`] trusts; otherwise it is
//!   dropped as `new-denied`;
//! - invalid packets (TCP out of window, bad flags, a first segment that
//!   is not a SYN, an unrelated ICMP error, ...) and new flows the table
//!   has no room for are dropped under their own counter.
//!
//! On a feature arc ([`ConnTrackNode::on_arc`]) what passes goes to the
//! next feature enabled for the packet's interface; the [`Policy`] may be
//! shared with the control plane and replaced while the node runs
//! ([`ConnTrackNode::with_policy`]), loaded once per vector.
//!
//! The node is also polled (as a background node) so that sessions expire
//! when no traffic comes. Each node owns its table: `ip4-conntrack` and
//! `ip6-conntrack` of a worker track their families apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use sluice_graph::{Cx, ErrorSpec, Frame, InputState, Next, Node, NodeKind, NodeSpec, Onward};

use super::parse::{ParseError, Parsed, parse4, parse6};
use super::stats::CtStats;
use super::tcp::TcpInvalid;
use super::track::{ConnTrack, Invalid, Refusal, Verdict};
use crate::acl::REFLECT;

/// The usual name of the IPv4 node.
pub const IP4_NAME: &str = "ip4-conntrack";
/// The usual name of the IPv6 node.
pub const IP6_NAME: &str = "ip6-conntrack";

mod error {
    pub const NEW_DENIED: usize = 0;
    pub const TABLE_FULL: usize = 1;
    pub const ZONE_FULL: usize = 2;
    pub const TCP_FLAGS: usize = 3;
    pub const TCP_NOT_SYN: usize = 4;
    pub const TCP_UNEXPECTED: usize = 5;
    pub const TCP_WINDOW: usize = 6;
    pub const TCP_RST_WINDOW: usize = 7;
    pub const ICMP_UNRELATED: usize = 8;
    pub const ECHO_UNSOLICITED: usize = 9;
    pub const TRUNCATED: usize = 10;
    pub const FRAGMENT: usize = 11;
    pub const ICMP_TYPE: usize = 12;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info(
        "new-denied",
        "first packet of a flow neither reflected by an ACL nor from a trusted interface",
    ),
    ErrorSpec::warn(
        "table-full",
        "new flow refused: connection table full of established sessions",
    ),
    ErrorSpec::warn(
        "zone-full",
        "new flow refused: its zone full of established sessions",
    ),
    ErrorSpec::error("tcp-bad-flags", "TCP flags no stack sends together"),
    ErrorSpec::error(
        "tcp-not-syn",
        "TCP segment of no connection that is not a SYN",
    ),
    ErrorSpec::error(
        "tcp-unexpected",
        "TCP segment the connection's state does not allow",
    ),
    ErrorSpec::error("tcp-out-of-window", "TCP segment outside the window"),
    ErrorSpec::error("tcp-rst-out-of-window", "TCP reset outside the window"),
    ErrorSpec::error("icmp-unrelated", "ICMP error about no tracked connection"),
    ErrorSpec::error("echo-unsolicited", "ICMP echo reply to no request"),
    ErrorSpec::error("truncated", "packet shorter than its headers"),
    ErrorSpec::info("fragment", "IP fragment (no reassembly before tracking)"),
    ErrorSpec::error("icmp-type", "ICMP type neither echo nor an error"),
];

/// Where a node's time comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The worker's cycle counter (`cx.now`), at this many cycles a
    /// millisecond.
    Tsc {
        /// Cycles per millisecond.
        per_ms: u64,
    },
    /// Milliseconds someone else sets (tests drive time forward).
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The cycle counter at its measured rate.
    pub fn tsc() -> Clock {
        Clock::Tsc {
            per_ms: ((sluice_graph::clock::hz() / 1000.0) as u64).max(1),
        }
    }

    /// Milliseconds now, given the worker's cycle counter `cx_now`.
    #[inline]
    pub fn now_ms(&self, cx_now: u64) -> u64 {
        match self {
            Clock::Tsc { per_ms } => cx_now / per_ms,
            Clock::Manual(ms) => ms.load(Ordering::Relaxed),
        }
    }
}

/// Which new flows the firewall lets start besides those an ACL
/// reflected, and which zone each interface is in.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// By receive interface index: new flows from it are allowed.
    pub trusted: Vec<bool>,
    /// By receive interface index: its zone (0 when not listed).
    pub zone: Vec<u16>,
}

impl Policy {
    /// New flows only where an ACL said permit+reflect, one zone.
    pub fn reflect_only() -> Policy {
        Policy::default()
    }

    #[inline(always)]
    fn allows(&self, rx_if: u32, flags: u32) -> bool {
        flags & REFLECT != 0 || self.trusted.get(rx_if as usize).copied().unwrap_or(false)
    }

    #[inline(always)]
    fn zone_of(&self, rx_if: u32) -> u16 {
        self.zone.get(rx_if as usize).copied().unwrap_or(0)
    }
}

/// The stateful firewall node for one address family.
pub struct ConnTrackNode {
    name: String,
    onward: Onward,
    v6: bool,
    ct: ConnTrack,
    policy: Arc<ArcSwap<Policy>>,
    clock: Clock,
    parsed: Vec<Result<Parsed, ParseError>>,
    allow: Vec<bool>,
    verdicts: Vec<Verdict>,
}

impl ConnTrackNode {
    /// An IPv4 node `name` tracking with `ct`, sending what passes to `next`.
    pub fn ip4(
        name: impl Into<String>,
        next: impl Into<String>,
        ct: ConnTrack,
        policy: Policy,
        clock: Clock,
    ) -> ConnTrackNode {
        ConnTrackNode::new(name.into(), next.into(), false, ct, policy, clock)
    }

    /// An IPv6 node.
    pub fn ip6(
        name: impl Into<String>,
        next: impl Into<String>,
        ct: ConnTrack,
        policy: Policy,
        clock: Clock,
    ) -> ConnTrackNode {
        ConnTrackNode::new(name.into(), next.into(), true, ct, policy, clock)
    }

    fn new(
        name: String,
        next: String,
        v6: bool,
        ct: ConnTrack,
        policy: Policy,
        clock: Clock,
    ) -> ConnTrackNode {
        let n = sluice_graph::FRAME_SIZE;
        ConnTrackNode {
            name,
            onward: Onward::To(next),
            v6,
            ct,
            policy: Arc::new(ArcSwap::from_pointee(policy)),
            clock,
            parsed: Vec::with_capacity(n),
            allow: Vec::with_capacity(n),
            verdicts: Vec::with_capacity(n),
        }
    }

    /// The node on a feature arc: what passes goes on along `onward`.
    pub fn on_arc(mut self, onward: Onward) -> ConnTrackNode {
        self.onward = onward;
        self
    }

    /// The node judging new flows by `policy`, which the control plane
    /// may replace while the node runs.
    pub fn with_policy(mut self, policy: Arc<ArcSwap<Policy>>) -> ConnTrackNode {
        self.policy = policy;
        self
    }

    /// The table's counters (take them before the node goes into a graph).
    pub fn stats(&self) -> Arc<CtStats> {
        self.ct.stats()
    }
}

fn error_of(r: Refusal) -> usize {
    match r {
        Refusal::NewDenied => error::NEW_DENIED,
        Refusal::TableFull => error::TABLE_FULL,
        Refusal::ZoneFull => error::ZONE_FULL,
        Refusal::Invalid(i) => match i {
            Invalid::Parse(ParseError::Truncated) => error::TRUNCATED,
            Invalid::Parse(ParseError::Fragment) => error::FRAGMENT,
            Invalid::Parse(ParseError::IcmpType) => error::ICMP_TYPE,
            Invalid::Parse(ParseError::IcmpQuote) | Invalid::Unrelated => error::ICMP_UNRELATED,
            Invalid::Tcp(TcpInvalid::BadFlags) => error::TCP_FLAGS,
            Invalid::Tcp(TcpInvalid::NotSyn) => error::TCP_NOT_SYN,
            Invalid::Tcp(TcpInvalid::Unexpected) => error::TCP_UNEXPECTED,
            Invalid::Tcp(TcpInvalid::OutOfWindow) => error::TCP_WINDOW,
            Invalid::Tcp(TcpInvalid::RstOutOfWindow) => error::TCP_RST_WINDOW,
            Invalid::Unsolicited => error::ECHO_UNSOLICITED,
        },
    }
}

impl Node for ConnTrackNode {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            kind: NodeKind::Background,
            next: self.onward.names(),
            ..NodeSpec::internal(self.name.clone(), &[], ERRORS)
        }
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let now = self.clock.now_ms(cx.now);
        // More than a vector (not made by the dispatcher) is tracked a
        // vector's worth at a time by the same code: the scratch vectors
        // just grow.
        self.parsed.clear();
        self.allow.clear();
        let policy = self.policy.load();
        let route = self.onward.load();
        for pkt in input.iter() {
            let m = pkt.meta();
            let parsed = if self.v6 {
                parse6(pkt.data())
            } else {
                parse4(pkt.data())
            };
            let zone = policy.zone_of(m.rx_if);
            self.parsed.push(parsed.map(|mut p| {
                p.key.zone = zone;
                p
            }));
            self.allow.push(policy.allows(m.rx_if, m.flags));
        }
        self.ct
            .track(now, &self.parsed, &self.allow, &mut self.verdicts);
        for (pkt, v) in input.drain(..).zip(self.verdicts.iter()) {
            match *v {
                Verdict::Drop(r) => out.drop(pkt, error_of(r)),
                _ => {
                    let next = route.next(pkt.meta());
                    out.send(next, pkt)
                }
            }
        }
    }

    /// Expires sessions while no packet comes.
    fn poll(&mut self, cx: &mut Cx<'_>, _out: &mut Next<'_>) -> InputState {
        let now = self.clock.now_ms(cx.now);
        self.ct.expire(now, 4 * sluice_graph::FRAME_SIZE);
        InputState::Background
    }
}
