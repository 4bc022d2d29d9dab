//! `ip4-rewrite` / `ip6-rewrite`: the TTL (hop limit) and MTU checks of a
//! router, then the next hop's Ethernet header, then the interface —
//! through the `ipN-output` feature arc, when a feature is enabled for
//! the sending interface.

use std::marker::PhantomData;
use std::sync::Arc;

use sluice_graph::iface::Interfaces;
use sluice_graph::{Cx, ErrorSpec, FeatureArc, Frame, Next, Node, NodeSpec};
use sluice_wire::MacAddr;

use super::{Family, Unreachable};
use crate::fib::{AdjKind, Fib};
use crate::outputs::Outputs;

mod next {
    pub const RESOLVE: usize = 0;
    pub const ICMP_ERROR: usize = 1;
    /// The output arc's features, then the interface outputs (its ends),
    /// start here.
    pub const ARC: usize = 2;
}

mod error {
    pub const BAD_ADJACENCY: usize = 0;
    pub const TTL_EXPIRED: usize = 1;
    pub const MTU_EXCEEDED: usize = 2;
    pub const NO_FRAGMENTATION: usize = 3;
    pub const NO_HEADROOM: usize = 4;
    pub const TOO_SHORT: usize = 5;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("bad-adjacency", "packet carries no usable adjacency"),
    ErrorSpec::info(
        "ttl-expired",
        "ttl / hop limit <= 1 (ICMP time exceeded sent)",
    ),
    ErrorSpec::info(
        "mtu-exceeded",
        "larger than the outgoing MTU, DF (ICMP sent)",
    ),
    ErrorSpec::info(
        "fragmentation-not-supported",
        "too big for the MTU, DF clear: not fragmented",
    ),
    ErrorSpec::error("no-headroom", "no room for the Ethernet header"),
    ErrorSpec::error("too-short", "packet shorter than its IP header"),
];

struct Out {
    next: usize,
    mac: MacAddr,
    mtu: u16,
}

/// The rewrite node of family `F`.
pub struct Rewrite<F: Family> {
    fib: Arc<Fib>,
    outputs: Outputs,
    /// Per interface index: its next index, MAC and MTU, if it can send.
    out_of_if: Vec<Option<Out>>,
    /// The output arc, when the path has one.
    arc: Option<Arc<FeatureArc>>,
    _family: PhantomData<F>,
}

impl<F: Family> Rewrite<F> {
    /// A rewrite node able to send on every interface of `fib` that has
    /// an output node.
    pub fn new(fib: Arc<Fib>) -> Rewrite<F> {
        Rewrite::with_arc(fib, None)
    }

    /// A rewrite node at the start of `arc`, a transmit arc over the
    /// same interfaces.
    pub fn on_arc(fib: Arc<Fib>, arc: Arc<FeatureArc>) -> Rewrite<F> {
        Rewrite::with_arc(fib, Some(arc))
    }

    fn with_arc(fib: Arc<Fib>, arc: Option<Arc<FeatureArc>>) -> Rewrite<F> {
        let interfaces: Arc<Interfaces> = fib.interfaces().clone();
        // The arc's ends are the same outputs in the same order, after
        // its features.
        let features = arc.as_ref().map_or(0, |a| a.features().len());
        let outputs = Outputs::new(&interfaces, next::ARC + features);
        let out_of_if = interfaces
            .iter()
            .map(|i| {
                outputs.next(i.index).map(|next| Out {
                    next,
                    mac: i.mac,
                    mtu: i.mtu,
                })
            })
            .collect();
        Rewrite {
            fib,
            outputs,
            out_of_if,
            arc,
            _family: PhantomData,
        }
    }

    #[inline]
    fn rewrite(&self, pkt: &mut sluice_buf::Packet) -> Result<usize, usize> {
        let adjs = self.fib.adj();
        let adj = pkt.meta().adj;
        let (kind, interface) = adjs.kind(adj);
        if kind != AdjKind::Neighbor {
            return Err(error::BAD_ADJACENCY);
        }
        let Some(mac) = adjs.mac(adj) else {
            // Lost its neighbour since the lookup: resolve again.
            return Ok(next::RESOLVE);
        };
        let out = self
            .out_of_if
            .get(interface as usize)
            .and_then(Option::as_ref)
            .ok_or(error::BAD_ADJACENCY)?;
        let total = pkt.total_len();
        let hdr = pkt.data_mut();
        let Some(&ttl) = hdr.get(F::TTL) else {
            return Err(error::TOO_SHORT);
        };
        if ttl <= 1 {
            Unreachable::TimeExceeded.mark(pkt, 0);
            return Err(error::TTL_EXPIRED);
        }
        if total > usize::from(out.mtu) {
            if F::may_fragment(hdr) {
                return Err(error::NO_FRAGMENTATION);
            }
            Unreachable::TooBig.mark(pkt, u32::from(out.mtu));
            return Err(error::MTU_EXCEEDED);
        }
        F::decrement_ttl(hdr);
        let l2 = pkt.prepend(14).map_err(|_| error::NO_HEADROOM)?;
        l2[0..6].copy_from_slice(&mac.0);
        l2[6..12].copy_from_slice(&out.mac.0);
        l2[12..14].copy_from_slice(&F::ETHERTYPE.to_be_bytes());
        pkt.meta_mut().tx_if = interface;
        Ok(out.next)
    }
}

/// A packet the rewrite refused: an ICMP error for an expired TTL or a
/// packet too big (counted, then to `ipN-icmp-error`), else dropped.
#[inline(always)]
fn refuse(out: &mut Next<'_>, pkt: sluice_buf::Packet, e: usize) {
    match e {
        error::TTL_EXPIRED | error::MTU_EXCEEDED => {
            out.count(e, 1);
            out.send(next::ICMP_ERROR, pkt);
        }
        e => out.drop(pkt, e),
    }
}

impl<F: Family> Node for Rewrite<F> {
    fn spec(&self) -> NodeSpec {
        let features: Vec<&str> = self
            .arc
            .as_ref()
            .map(|a| a.features().iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut fixed = vec![F::RESOLVE, F::ICMP_ERROR];
        fixed.extend(features);
        NodeSpec::internal(F::REWRITE, &self.outputs.with(&fixed), ERRORS)
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        // The output arc's table only when a feature is enabled somewhere.
        let table = self.arc.as_ref().filter(|a| a.active()).map(|a| a.load());
        let table = table.as_deref();
        for mut pkt in input.drain(..) {
            match self.rewrite(&mut pkt) {
                Ok(next) => {
                    // Through the interface's output features, if any;
                    // the table's ends are this node's outputs.
                    let next = match table {
                        Some(t) if next >= next::ARC => {
                            t.first(pkt.meta().tx_if).saturating_add(next::ARC)
                        }
                        _ => next,
                    };
                    out.send(next, pkt)
                }
                Err(e) => refuse(out, pkt, e),
            }
        }
    }
}
