//! `ip4-nat`: NAT44 on the IPv4 path, tracking its flows in its own
//! connection table.
//!
//! Per vector: every packet's key is read ([`parse4`]); a packet from an
//! inside interface with no session gets an outside address and port
//! (the reply key they make must be free in the table); one from the
//! outside with no session opens one only through a static mapping.
//! The vector is tracked in one call ([`ConnTrack::track_nat`]), new
//! sessions made with their translated reply keys; then each packet
//! that passes is rewritten by its session: the original direction to
//! the translation, the reply back to the original addresses. ICMP
//! errors about a translated flow have their own header and the packet
//! they quote rewritten. Everything else is dropped under a counter,
//! `nat-no-port` when no port was free.

use std::collections::HashSet;
use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, Frame, InputState, Next, Node, NodeKind, NodeSpec};

use super::config::{NatConfig, NatConfigError};
use super::pool::Translations;
use super::rewrite::{End, rewrite, rewrite_error};
use crate::conntrack::{
    Clock, ConnTrack, CtStats, Invalid, L4, NatSide, ParseError, Parsed, Refusal, ReplyNat, Tuple,
    Verdict, parse4,
};

/// The usual name of the node.
pub const IP4_NAME: &str = "ip4-nat";

mod error {
    pub const NO_PORT: usize = 0;
    pub const NO_SESSION: usize = 1;
    pub const TABLE_FULL: usize = 2;
    pub const INVALID: usize = 3;
    pub const ICMP_UNRELATED: usize = 4;
    pub const TRUNCATED: usize = 5;
    pub const FRAGMENT: usize = 6;
    pub const ICMP_TYPE: usize = 7;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::warn(
        "nat-no-port",
        "new flow refused: no free outside port (or address) for it",
    ),
    ErrorSpec::info(
        "no-session",
        "from the outside, of no session and no static mapping",
    ),
    ErrorSpec::warn(
        "table-full",
        "new flow refused: NAT session table full of established sessions",
    ),
    ErrorSpec::error(
        "invalid",
        "refused by tracking (TCP state or window, unsolicited echo reply)",
    ),
    ErrorSpec::error("icmp-unrelated", "ICMP error about no translated flow"),
    ErrorSpec::error("truncated", "packet shorter than its headers"),
    ErrorSpec::info("fragment", "IP fragment (no reassembly before NAT)"),
    ErrorSpec::error("icmp-type", "ICMP type neither echo nor an error"),
];

fn error_of(r: Refusal) -> usize {
    match r {
        Refusal::NewDenied => error::NO_SESSION,
        Refusal::TableFull | Refusal::ZoneFull => error::TABLE_FULL,
        Refusal::Invalid(Invalid::Parse(ParseError::Truncated)) => error::TRUNCATED,
        Refusal::Invalid(Invalid::Parse(ParseError::Fragment)) => error::FRAGMENT,
        Refusal::Invalid(Invalid::Parse(ParseError::IcmpType)) => error::ICMP_TYPE,
        Refusal::Invalid(Invalid::Parse(ParseError::IcmpQuote) | Invalid::Unrelated) => {
            error::ICMP_UNRELATED
        }
        Refusal::Invalid(_) => error::INVALID,
    }
}

/// The NAT44 node.
pub struct NatNode {
    name: String,
    next: String,
    ct: ConnTrack,
    tr: Translations,
    /// By receive interface: an inside interface.
    inside: Vec<bool>,
    clock: Clock,
    parsed: Vec<Result<Parsed, ParseError>>,
    allow: Vec<bool>,
    nats: Vec<ReplyNat>,
    no_port: Vec<bool>,
    verdicts: Vec<Verdict>,
    /// Reply keys given to new flows of this vector, not yet in the table.
    pending: HashSet<Tuple>,
}

impl NatNode {
    /// A node `name` translating by `cfg` with sessions in `ct`, sending
    /// what passes to `next`; `inside[i]` says interface `i` is inside.
    pub fn new(
        name: impl Into<String>,
        next: impl Into<String>,
        ct: ConnTrack,
        cfg: &NatConfig,
        inside: Vec<bool>,
        clock: Clock,
    ) -> Result<NatNode, NatConfigError> {
        let n = sluice_graph::FRAME_SIZE;
        Ok(NatNode {
            name: name.into(),
            next: next.into(),
            ct,
            tr: Translations::new(cfg)?,
            inside,
            clock,
            parsed: Vec::with_capacity(n),
            allow: Vec::with_capacity(n),
            nats: Vec::with_capacity(n),
            no_port: Vec::with_capacity(n),
            verdicts: Vec::with_capacity(n),
            pending: HashSet::with_capacity(n),
        })
    }

    /// The session table's counters.
    pub fn stats(&self) -> Arc<CtStats> {
        self.ct.stats()
    }

    /// Decides, before tracking, what a packet may open: returns (may
    /// open a session, its reply translation, refused for want of a port).
    fn admit(&mut self, p: &mut Parsed, inside: bool) -> (bool, ReplyNat, bool) {
        if p.l4 == L4::Error {
            // The quote went the other way: the error travels as its
            // reverse, a key the table holds if the flow is translated.
            p.key = p.key.reversed();
            return (false, ReplyNat::NONE, false);
        }
        let free = |ct: &ConnTrack, pending: &HashSet<Tuple>, k: &Tuple| {
            ct.session(k).is_none() && !pending.contains(k)
        };
        // From the outside only a static mapping opens anything: most
        // packets (replies) need no look-up before tracking.
        let dnat = if inside { None } else { self.tr.dnat(&p.key) };
        if !inside && dnat.is_none() {
            return (false, ReplyNat::NONE, false);
        }
        if self.ct.session(&p.key).is_some() {
            // Only a SYN reopening a closed connection uses `allow` here.
            return (true, ReplyNat::NONE, false);
        }
        let (ct, pending) = (&self.ct, &self.pending);
        let nat = match dnat {
            None => self.tr.snat(&p.key, |k| free(ct, pending, k)),
            Some(n) => Some(n).filter(|n| free(ct, pending, &n.reply_of(&p.key))),
        };
        match nat {
            Some(n) => {
                self.pending.insert(n.reply_of(&p.key));
                (true, n, false)
            }
            None => (false, ReplyNat::NONE, inside),
        }
    }
}

/// Where a packet of a session goes, direction `reply`: which end is
/// rewritten, to what address and port.
fn target(orig: &Tuple, nat: ReplyNat, reply: bool) -> Option<(End, u32, u32)> {
    match (nat.side, reply) {
        (NatSide::None, _) => None,
        (NatSide::Dst, false) => Some((End::Src, nat.addr, nat.port)),
        (NatSide::Dst, true) => Some((End::Dst, orig.src as u32, orig.sport)),
        (NatSide::Src, false) => Some((End::Dst, nat.addr, nat.port)),
        (NatSide::Src, true) => Some((End::Src, orig.dst as u32, orig.dport)),
    }
}

impl Node for NatNode {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            kind: NodeKind::Background,
            ..NodeSpec::internal(self.name.clone(), &[self.next.as_str()], ERRORS)
        }
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let now = self.clock.now_ms(cx.now);
        self.parsed.clear();
        self.allow.clear();
        self.nats.clear();
        self.no_port.clear();
        self.pending.clear();
        for pkt in input.iter() {
            let inside = self
                .inside
                .get(pkt.meta().rx_if as usize)
                .copied()
                .unwrap_or(false);
            let mut parsed = parse4(pkt.data());
            let (allow, nat, no_port) = match &mut parsed {
                Ok(p) => self.admit(p, inside),
                Err(_) => (false, ReplyNat::NONE, false),
            };
            self.parsed.push(parsed);
            self.allow.push(allow);
            self.nats.push(nat);
            self.no_port.push(no_port);
        }
        self.ct.track_nat(
            now,
            &self.parsed,
            &self.allow,
            &self.nats,
            &mut self.verdicts,
        );
        for (k, mut pkt) in input.drain(..).enumerate() {
            let v = self.verdicts[k];
            let key = match (&self.parsed[k], v) {
                (_, Verdict::Drop(r)) => {
                    let e = if r == Refusal::NewDenied && self.no_port[k] {
                        error::NO_PORT
                    } else {
                        error_of(r)
                    };
                    out.drop(pkt, e);
                    continue;
                }
                (Ok(p), _) => p.key,
                (Err(_), _) => {
                    out.drop(pkt, error::TRUNCATED);
                    continue;
                }
            };
            let Some((s, reply)) = self.ct.session(&key) else {
                out.send(0, pkt);
                continue;
            };
            let done = match target(&s.orig, s.nat, reply) {
                None => Ok(()),
                Some((end, addr, port)) if v == Verdict::Related => {
                    rewrite_error(pkt.data_mut(), end, addr, port)
                }
                Some((end, addr, port)) => rewrite(pkt.data_mut(), end, addr, port),
            };
            match done {
                Ok(()) => out.send(0, pkt),
                Err(_) => out.drop(pkt, error::TRUNCATED),
            }
        }
    }

    /// Expires sessions (and so frees their ports) while no packet comes.
    fn poll(&mut self, cx: &mut Cx<'_>, _out: &mut Next<'_>) -> InputState {
        let now = self.clock.now_ms(cx.now);
        self.ct.expire(now, 4 * sluice_graph::FRAME_SIZE);
        InputState::Background
    }
}

impl std::fmt::Debug for NatNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatNode")
            .field("name", &self.name)
            .field("sessions", &self.ct.len())
            .finish()
    }
}
