//! Handoff: every packet is processed by the worker that owns its flow.
//!
//! `handoff` sits right after the interface inputs. It computes each
//! frame's flow hash once ([`crate::rss`], stored in `meta.flow_hash` for
//! later nodes), looks up the owning worker in the indirection table, and
//! either passes the packet on (its own flow) or pushes it onto the
//! bounded ring to the owner. A full ring never blocks: the packet is
//! dropped under `ring-full`. `handoff-input`, on the owner, drains its
//! rings from every other worker into the graph. Both send a packet on to
//! what its interface leads to (`ethernet-input`, or `l2-input` for a
//! bridged or cross-connected port).
//!
//! Order: one flow from one input takes one path (always the same ring,
//! or always local), and rings are FIFO, so its packets keep their order.
//!
//! End: a worker whose own inputs are done says so; a `handoff-input` is
//! done once every worker has said so and its rings are empty, so a
//! finite run ends with every packet delivered. On a stop, each ring's
//! last half to close frees what is left in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice_buf::Packet;
use sluice_graph::ring::{Receiver, Sender, ring};
use sluice_graph::{Cx, ErrorSpec, FRAME_SIZE, Frame, InputState, Next, Node, NodeKind, NodeSpec};

use crate::rss::{Reta, Rss, RssHash};

/// The handing-off node.
pub const NAME: &str = "handoff";
/// The node that brings other workers' handed-off packets in.
pub const INPUT: &str = "handoff-input";

/// Next nodes of both nodes, by position.
const NEXT: &[&str] = &[crate::ethernet::NAME, crate::l2::INPUT];
const TO_L3: u8 = 0;
const TO_L2: u8 = 1;

mod error {
    pub const RING_FULL: usize = 0;
    pub const PEER_STOPPED: usize = 1;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::warn(
        "ring-full",
        "handoff ring to the flow's worker full (that worker is overloaded)",
    ),
    ErrorSpec::info("peer-stopped", "the flow's worker has stopped"),
];

/// How handoff is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandoffConfig {
    /// Workers (one ring each way between every two).
    pub workers: usize,
    /// Packets each ring holds (4096, 16 vectors, by default: about 1 ms
    /// of a worker's traffic, enough to ride out a short stall of its
    /// owner; every ring's packets are buffers taken from the pool).
    pub ring_size: usize,
    /// The flow hash.
    pub hash: RssHash,
    /// Both directions of a connection to one worker.
    pub symmetric: bool,
}

impl Default for HandoffConfig {
    fn default() -> HandoffConfig {
        HandoffConfig {
            workers: 1,
            ring_size: 4096,
            hash: RssHash::Toeplitz,
            symmetric: false,
        }
    }
}

/// Every ring between workers, waiting to be dealt to their workers'
/// nodes ([`Handoff::nodes`]).
pub struct Handoff {
    config: HandoffConfig,
    /// `senders[from][to]`.
    senders: Vec<Vec<Option<Sender<Packet>>>>,
    /// `receivers[to][from]`.
    receivers: Vec<Vec<Option<Receiver<Packet>>>>,
    /// Per worker: its own traffic is over, it hands off nothing more.
    done: Arc<[AtomicBool]>,
    /// Per interface index: where its packets go next.
    next_of: Arc<[u8]>,
    reta: Reta,
}

impl Handoff {
    /// The rings for `config.workers` workers; `l2[i]` says whether
    /// interface `i` is a bridge or cross-connect port.
    pub fn new(config: HandoffConfig, l2: &[bool]) -> Handoff {
        let n = config.workers.max(1);
        let mut senders: Vec<Vec<Option<Sender<Packet>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut receivers: Vec<Vec<Option<Receiver<Packet>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                let (tx, rx) = ring(config.ring_size);
                senders[from][to] = Some(tx);
                receivers[to][from] = Some(rx);
            }
        }
        Handoff {
            config,
            senders,
            receivers,
            done: (0..n).map(|_| AtomicBool::new(false)).collect(),
            next_of: l2.iter().map(|&b| if b { TO_L2 } else { TO_L3 }).collect(),
            reta: Reta::round_robin(n),
        }
    }

    /// Worker `w`'s two nodes, `handoff` and `handoff-input`, holding its
    /// ends of the rings.
    pub fn nodes(&mut self, w: usize) -> Vec<Box<dyn Node>> {
        let n = self.senders.len();
        let senders = self
            .senders
            .get_mut(w)
            .map(|row| row.iter_mut().map(Option::take).collect())
            .unwrap_or_default();
        let receivers = self
            .receivers
            .get_mut(w)
            .map(|row| row.iter_mut().flat_map(Option::take).collect())
            .unwrap_or_default();
        vec![
            Box::new(HandoffNode {
                me: w,
                rss: Rss::new(self.config.hash, self.config.symmetric),
                reta: self.reta.clone(),
                senders,
                staged: (0..n).map(|_| Frame::new()).collect(),
                next_of: self.next_of.clone(),
            }),
            Box::new(HandoffInput {
                me: w,
                receivers,
                start: 0,
                done: self.done.clone(),
                said_done: false,
                uniform: uniform(&self.next_of),
                next_of: self.next_of.clone(),
                frame: Frame::new(),
            }),
        ]
    }
}

/// The next node of every interface, when they all have the same.
#[inline]
fn uniform(table: &[u8]) -> Option<usize> {
    let first = table.first().copied().unwrap_or(TO_L3);
    table
        .iter()
        .all(|&n| n == first)
        .then_some(usize::from(first))
}

#[inline(always)]
fn next_of(table: &[u8], pkt: &Packet) -> usize {
    usize::from(
        table
            .get(pkt.meta().rx_if as usize)
            .copied()
            .unwrap_or(TO_L3),
    )
}

/// `handoff`: hashes, keeps its own flows, hands the others off.
struct HandoffNode {
    me: usize,
    rss: Rss,
    reta: Reta,
    /// Per worker: the ring to it (none to ourselves).
    senders: Vec<Option<Sender<Packet>>>,
    /// Per worker: packets of this vector for it.
    staged: Vec<Frame>,
    next_of: Arc<[u8]>,
}

impl Node for HandoffNode {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(NAME, NEXT, ERRORS)
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        for mut pkt in input.drain_prefetched() {
            let hash = self.rss.hash(pkt.data());
            pkt.meta_mut().flow_hash = hash;
            let w = self.reta.worker(hash);
            match self.staged.get_mut(w) {
                Some(q) if w != self.me => q.push(pkt),
                _ => out.send(next_of(&self.next_of, &pkt), pkt),
            }
        }
        for (q, tx) in self.staged.iter_mut().zip(&mut self.senders) {
            if q.is_empty() {
                continue;
            }
            match tx {
                Some(tx) if !tx.receiver_gone() => {
                    tx.push_from(q);
                    if !q.is_empty() {
                        out.drop_all(q, error::RING_FULL);
                    }
                }
                _ => out.drop_all(q, error::PEER_STOPPED),
            }
        }
    }

    fn stop(&mut self, cx: &mut Cx<'_>) {
        for q in &mut self.staged {
            cx.buffers.free_all(q);
        }
        for tx in self.senders.iter_mut().filter_map(Option::take) {
            tx.close(|p| cx.buffers.free(p));
        }
    }
}

/// `handoff-input`: what other workers handed to this one.
struct HandoffInput {
    me: usize,
    receivers: Vec<Receiver<Packet>>,
    /// The ring drained first next time, so that none starves the others.
    start: usize,
    done: Arc<[AtomicBool]>,
    said_done: bool,
    /// The next node of every interface, when they all lead to one.
    uniform: Option<usize>,
    next_of: Arc<[u8]>,
    frame: Frame,
}

impl Node for HandoffInput {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            kind: NodeKind::Relay,
            ..NodeSpec::input(INPUT, NEXT, &[])
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        if cx.inputs_done && !self.said_done {
            self.done[self.me].store(true, Ordering::Release);
            self.said_done = true;
        }
        // Read before the rings: once every worker has said it is done,
        // rings found empty after stay empty.
        let all_done = self.said_done && self.done.iter().all(|d| d.load(Ordering::Acquire));
        let k = self.receivers.len();
        let mut n = 0;
        for i in 0..k {
            let rx = &mut self.receivers[(self.start + i) % k];
            n += rx.pop_into(&mut self.frame, FRAME_SIZE - n);
            if n == FRAME_SIZE {
                break;
            }
        }
        if k > 0 {
            self.start = (self.start + 1) % k;
        }
        // These packets were last written on another core: ask for their
        // lines now, a whole vector ahead of the nodes that read them.
        for pkt in self.frame.iter() {
            pkt.prefetch();
        }
        match self.uniform {
            // Every interface leads to one node: pass the vector whole,
            // without touching a packet.
            Some(next) => out.send_all(next, &mut self.frame),
            None => {
                for pkt in self.frame.drain(..) {
                    out.send(next_of(&self.next_of, &pkt), pkt);
                }
            }
        }
        if n > 0 {
            InputState::Busy(n)
        } else if all_done {
            InputState::Done
        } else {
            InputState::Idle
        }
    }

    fn stop(&mut self, cx: &mut Cx<'_>) {
        self.done[self.me].store(true, Ordering::Release);
        cx.buffers.free_all(&mut self.frame);
        for rx in self.receivers.drain(..) {
            rx.close(|p| cx.buffers.free(p));
        }
    }
}
