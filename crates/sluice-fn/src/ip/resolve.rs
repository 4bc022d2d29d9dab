//! `ip4-arp` / `ip6-nd`: packets whose next hop has no MAC yet. The node
//! asks (ARP request, Neighbour Solicitation), holds a few packets per
//! neighbour while it waits, sends them on once the answer is learned, and
//! drops them, counted, when none comes.
//!
//! It is also polled for its timers (retries, give-ups, and on worker 0
//! the aging of the neighbour table), as a background input.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use sluice_buf::Packet;
use sluice_graph::{Cx, ErrorSpec, Frame, InputState, Next, Node, NodeKind, NodeSpec};

use super::{Family, Unreachable};
use crate::addr::SharedAddrs;
use crate::fib::{AdjKind, Fib};
use crate::outputs::Outputs;

mod next {
    pub const LOOKUP: usize = 0;
    pub const ICMP_ERROR: usize = 1;
    /// Interface outputs start here.
    pub const OUTPUT: usize = 2;
}

mod error {
    pub const REQUEST_SENT: usize = 0;
    pub const HELD: usize = 1;
    pub const RESOLVED: usize = 2;
    pub const UNRESOLVED: usize = 3;
    pub const HOLD_FULL: usize = 4;
    pub const TOO_MANY: usize = 5;
    pub const NO_SOURCE: usize = 6;
    pub const NO_BUFFER: usize = 7;
    pub const BAD_ADJACENCY: usize = 8;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("request-sent", "neighbour requests sent"),
    ErrorSpec::info("held", "packets held while their neighbour resolves"),
    ErrorSpec::info("resolved", "held packets sent on after resolution"),
    ErrorSpec::info("unresolved", "held packets: the neighbour never answered"),
    ErrorSpec::info(
        "hold-queue-full",
        "dropped: its neighbour's hold queue is full",
    ),
    ErrorSpec::info(
        "too-many-unresolved",
        "dropped: too many neighbours resolving",
    ),
    ErrorSpec::info(
        "no-source-address",
        "no address on the interface to ask from",
    ),
    ErrorSpec::error("no-buffer", "no buffer for a neighbour request"),
    ErrorSpec::error("bad-adjacency", "packet carries no resolvable adjacency"),
];

/// Timers and bounds of neighbour resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolveConfig {
    /// Packets held per neighbour.
    pub hold_per_neighbor: usize,
    /// Neighbours resolving at once, per worker.
    pub max_pending: usize,
    /// Time between requests.
    pub retry: Duration,
    /// Requests before giving up.
    pub attempts: u32,
    /// Dynamic neighbours not heard from for this long are forgotten.
    pub max_age: Duration,
}

impl Default for ResolveConfig {
    fn default() -> ResolveConfig {
        ResolveConfig {
            hold_per_neighbor: 4,
            max_pending: 256,
            retry: Duration::from_secs(1),
            attempts: 3,
            max_age: Duration::from_secs(300),
        }
    }
}

struct Pending {
    packets: Vec<Packet>,
    last_request: u64,
    requests: u32,
    /// The adjacency of a route via this neighbour, or `None` when the
    /// neighbour is the destination itself (glean).
    adj: Option<u32>,
    table: u32,
}

/// The resolution node of family `F`.
pub struct Resolve<F: Family> {
    fib: Arc<Fib>,
    addrs: Arc<SharedAddrs>,
    config: ResolveConfig,
    outputs: Outputs,
    pending: HashMap<(u32, F::Addr), Pending>,
    generation: u64,
    hz: u64,
    /// Cycles between timer passes (10 ms).
    tick: u64,
    last_tick: u64,
    last_age: u64,
    _family: PhantomData<F>,
}

impl<F: Family> Resolve<F> {
    /// A resolution node for `fib`'s interfaces, asking from `addrs`.
    pub fn new(fib: Arc<Fib>, addrs: Arc<SharedAddrs>, config: ResolveConfig) -> Resolve<F> {
        let outputs = Outputs::new(fib.interfaces(), next::OUTPUT);
        Resolve {
            generation: fib.neighbor_generation(),
            fib,
            addrs,
            config,
            outputs,
            pending: HashMap::new(),
            hz: sluice_graph::clock::hz() as u64,
            tick: sluice_graph::clock::hz() as u64 / 100,
            last_tick: 0,
            last_age: 0,
            _family: PhantomData,
        }
    }

    fn cycles(&self, d: Duration) -> u64 {
        (d.as_secs_f64() * self.hz as f64) as u64
    }

    /// Sends a request for `target` out of `interface`.
    fn ask(&self, cx: &mut Cx<'_>, out: &mut Next<'_>, interface: u32, target: F::Addr) {
        let Some(src) = F::solicit_source(&self.addrs.snapshot(), interface, target) else {
            out.count(error::NO_SOURCE, 1);
            return;
        };
        let (Some(info), Some(n)) = (
            self.fib.interfaces().get(interface),
            self.outputs.next(interface),
        ) else {
            return;
        };
        let Some(mut buf) = cx.buffers.alloc() else {
            out.count(error::NO_BUFFER, 1);
            return;
        };
        match F::solicit(&mut buf, info.mac, src, target) {
            Ok(()) => {
                buf.meta_mut().tx_if = interface;
                out.count(error::REQUEST_SENT, 1);
                out.send(n, buf);
            }
            Err(_) => out.drop(buf, error::NO_SOURCE),
        }
    }

    fn resolved(&self, key: &(u32, F::Addr), p: &Pending) -> bool {
        match p.adj {
            Some(adj) => self.fib.adj().mac(adj).is_some(),
            None => self
                .fib
                .resolve(p.table, F::ip(key.1), 0)
                .is_some_and(|a| a.kind == AdjKind::Neighbor && a.mac.is_some()),
        }
    }
}

impl<F: Family> Node for Resolve<F> {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            kind: NodeKind::Background,
            ..NodeSpec::internal(
                F::RESOLVE,
                &self.outputs.with(&[F::LOOKUP, F::ICMP_ERROR]),
                ERRORS,
            )
        }
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        for pkt in input.drain(..) {
            let adj = self.fib.adj().get(pkt.meta().adj);
            let (target, via) = match adj.kind {
                AdjKind::Glean => match F::dst(pkt.data()) {
                    Some(d) => (d, None),
                    None => {
                        out.drop(pkt, error::BAD_ADJACENCY);
                        continue;
                    }
                },
                AdjKind::Neighbor => match adj.addr.and_then(F::from_ip) {
                    Some(a) => (a, Some(pkt.meta().adj)),
                    None => {
                        out.drop(pkt, error::BAD_ADJACENCY);
                        continue;
                    }
                },
                _ => {
                    out.drop(pkt, error::BAD_ADJACENCY);
                    continue;
                }
            };
            let key = (adj.interface, target);
            let table = self.fib.table_of(pkt.meta().rx_if);
            let new = !self.pending.contains_key(&key);
            if new && self.pending.len() >= self.config.max_pending {
                out.drop(pkt, error::TOO_MANY);
                continue;
            }
            let p = self.pending.entry(key).or_insert_with(|| Pending {
                packets: Vec::new(),
                last_request: 0,
                requests: 0,
                adj: via,
                table,
            });
            if p.packets.len() >= self.config.hold_per_neighbor {
                out.drop(pkt, error::HOLD_FULL);
                continue;
            }
            p.packets.push(pkt);
            out.count(error::HELD, 1);
            if new {
                p.last_request = cx.now;
                p.requests = 1;
                self.ask(cx, out, key.0, key.1);
            }
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        let generation = self.fib.neighbor_generation();
        let tick = cx.now.wrapping_sub(self.last_tick) >= self.tick;
        if generation != self.generation && !self.pending.is_empty() {
            self.generation = generation;
            let done: Vec<_> = self
                .pending
                .iter()
                .filter(|(k, p)| self.resolved(k, p))
                .map(|(k, _)| *k)
                .collect();
            for k in done {
                if let Some(p) = self.pending.remove(&k) {
                    out.count(error::RESOLVED, p.packets.len() as u64);
                    for pkt in p.packets {
                        out.send(next::LOOKUP, pkt);
                    }
                }
            }
        }
        if tick {
            self.last_tick = cx.now;
            let retry = self.cycles(self.config.retry);
            let mut give_up = Vec::new();
            let mut ask = Vec::new();
            for (k, p) in self.pending.iter_mut() {
                if cx.now.wrapping_sub(p.last_request) < retry {
                    continue;
                }
                if p.requests >= self.config.attempts {
                    give_up.push(*k);
                } else {
                    p.requests += 1;
                    p.last_request = cx.now;
                    ask.push(*k);
                }
            }
            for k in ask {
                self.ask(cx, out, k.0, k.1);
            }
            for k in give_up {
                if let Some(p) = self.pending.remove(&k) {
                    out.count(error::UNRESOLVED, p.packets.len() as u64);
                    // RFC 1812 4.3.2.x / RFC 4443 3.1: tell the sender
                    // the host is unreachable (rate-limited there).
                    for mut pkt in p.packets {
                        Unreachable::Host.mark(&mut pkt, 0);
                        out.send(next::ICMP_ERROR, pkt);
                    }
                }
            }
            // One worker ages the shared neighbour table, once a second.
            if cx.worker == 0 && cx.now.wrapping_sub(self.last_age) >= self.hz {
                self.last_age = cx.now;
                self.fib.age_neighbors(self.config.max_age);
            }
        }
        InputState::Background
    }

    fn stop(&mut self, cx: &mut Cx<'_>) {
        for (_, p) in self.pending.drain() {
            for pkt in p.packets {
                cx.buffers.free(pkt);
            }
        }
    }
}
