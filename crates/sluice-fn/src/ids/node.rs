//! `ip4-ids` and `ip6-ids`: the intrusion detector on the IP path.
//!
//! Per vector: every packet's protocol, ports and payload are read, the
//! whole vector is scanned in one call ([`RuleSet::scan_vector`], which
//! walks several payloads through an automaton at once), then every hit
//! is counted against its rule and logged within the rate limit. In
//! [`Mode::Detect`] every packet goes on; in [`Mode::Prevent`] a packet
//! that matched any rule is dropped as `ids-drop`. Packets that cannot
//! be scanned (truncated, non-first fragments) go on, counted in
//! [`IdsStats::unscanned`]: the detector watches, it does not police
//! headers (`ip4-input` and conntrack do).

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec, Onward};

use super::alert::{Alert, AlertLog, IdsStats, add};
use super::payload::{View, view4, view6};
use super::set::{Flow, RuleSet, Scratch};
use crate::host::RateLimiter;

/// The usual name of the IPv4 node.
pub const IP4_NAME: &str = "ip4-ids";
/// The usual name of the IPv6 node.
pub const IP6_NAME: &str = "ip6-ids";

const DROP: usize = 0;

const ERRORS: &[ErrorSpec] = &[ErrorSpec::info(
    "ids-drop",
    "matched an intrusion detection rule in prevent mode",
)];

/// What the node does with a packet that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Alert, forward everything.
    #[default]
    Detect,
    /// Alert and drop.
    Prevent,
}

/// How a node alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdsConfig {
    /// Detect or prevent.
    pub mode: Mode,
    /// Alert lines a second a worker may write, on average.
    pub log_per_second: u64,
    /// Alert lines a worker may write in a burst.
    pub log_burst: u64,
}

impl Default for IdsConfig {
    fn default() -> IdsConfig {
        IdsConfig {
            mode: Mode::Detect,
            log_per_second: 100,
            log_burst: 200,
        }
    }
}

/// The intrusion detection node.
pub struct IdsNode {
    name: String,
    onward: Onward,
    v6: bool,
    set: Arc<RuleSet>,
    mode: Mode,
    limit: RateLimiter,
    log: Box<dyn AlertLog>,
    stats: Arc<IdsStats>,
    scratch: Scratch,
    /// By packet of the vector: what `view4` read (`None`: unscanned).
    views: Vec<Option<View>>,
    /// By scanned packet: its flow, and its index in the vector.
    flows: Vec<Flow>,
    index: Vec<u32>,
    /// (scanned packet, rule) of the vector's matches.
    hits: Vec<(u32, u32)>,
    /// By packet of the vector: a chained packet's bytes, gathered to scan
    /// in one piece.
    gather: Vec<Vec<u8>>,
}

impl IdsNode {
    /// An IPv4 node `name` scanning with `set`, sending what passes to
    /// `next`, writing alert lines to `log`.
    pub fn ip4(
        name: impl Into<String>,
        next: impl Into<String>,
        set: Arc<RuleSet>,
        config: IdsConfig,
        log: Box<dyn AlertLog>,
    ) -> IdsNode {
        IdsNode::new(name.into(), next.into(), false, set, config, log)
    }

    /// An IPv6 node (its `icmp` rules see ICMPv6).
    pub fn ip6(
        name: impl Into<String>,
        next: impl Into<String>,
        set: Arc<RuleSet>,
        config: IdsConfig,
        log: Box<dyn AlertLog>,
    ) -> IdsNode {
        IdsNode::new(name.into(), next.into(), true, set, config, log)
    }

    fn new(
        name: String,
        next: String,
        v6: bool,
        set: Arc<RuleSet>,
        config: IdsConfig,
        log: Box<dyn AlertLog>,
    ) -> IdsNode {
        let hz = sluice_graph::clock::hz() as u64;
        IdsNode {
            name,
            onward: Onward::To(next),
            v6,
            stats: Arc::new(IdsStats::new(set.rules().iter().map(|r| r.sid).collect())),
            scratch: set.scratch(),
            set,
            mode: config.mode,
            limit: RateLimiter::new(config.log_per_second, config.log_burst, hz),
            log,
            views: Vec::with_capacity(sluice_graph::FRAME_SIZE),
            flows: Vec::with_capacity(sluice_graph::FRAME_SIZE),
            index: Vec::with_capacity(sluice_graph::FRAME_SIZE),
            hits: Vec::new(),
            gather: Vec::new(),
        }
    }

    /// The node on a feature arc: every packet it lets through goes on
    /// along `onward` instead of the fixed next node.
    pub fn on_arc(mut self, onward: Onward) -> IdsNode {
        self.onward = onward;
        self
    }

    /// The node's counters.
    pub fn stats(&self) -> Arc<IdsStats> {
        self.stats.clone()
    }
}

impl Node for IdsNode {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            next: self.onward.names(),
            ..NodeSpec::internal(self.name.clone(), &[], ERRORS)
        }
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let (mut bytes, mut unscanned) = (0u64, 0u64);
        let (mut alerts, mut logged, mut suppressed) = (0u64, 0u64, 0u64);
        // Read every packet first, then scan the vector in one call.
        self.views.clear();
        self.flows.clear();
        self.index.clear();
        for (k, pkt) in input.iter().enumerate() {
            let view = if self.v6 {
                view6(pkt.data(), pkt.total_len())
            } else {
                view4(pkt.data(), pkt.total_len())
            }
            .ok();
            match view {
                Some(v) => {
                    if pkt.is_chained() {
                        if self.gather.len() <= k {
                            self.gather.resize_with(k + 1, Vec::new);
                        }
                        self.gather[k].clear();
                        pkt.copy_to(&mut self.gather[k]);
                    }
                    bytes += (v.end - v.start) as u64;
                    self.flows.push(v.flow);
                    self.index.push(k as u32);
                }
                None => unscanned += 1,
            }
            self.views.push(view);
        }
        let (views, index, gather, frame) = (&self.views, &self.index, &self.gather, &*input);
        let payload = |j: usize| -> &[u8] {
            let k = index[j] as usize;
            let Some(v) = views[k] else { return &[] };
            let whole = if frame[k].is_chained() {
                &gather[k][..]
            } else {
                frame[k].data()
            };
            whole.get(v.start..v.end).unwrap_or(&[])
        };
        self.set
            .scan_vector(&self.flows, payload, &mut self.scratch, &mut self.hits);
        let dropped = self.mode == Mode::Prevent;
        let route = self.onward.load();
        let mut h = 0;
        for (k, pkt) in input.drain(..).enumerate() {
            let mut matched = false;
            while let Some(&(j, r)) = self.hits.get(h) {
                if self.index[j as usize] as usize != k {
                    break;
                }
                h += 1;
                matched = true;
                alerts += 1;
                add(&self.stats.per_rule[r as usize], 1);
                if !self.limit.allow(cx.now) {
                    suppressed += 1;
                    continue;
                }
                logged += 1;
                let (Some(view), rule) = (self.views[k], &self.set.rules()[r as usize]) else {
                    continue;
                };
                self.log.log(&Alert {
                    sid: rule.sid,
                    rev: rule.rev,
                    msg: &rule.msg,
                    proto: view.flow.proto,
                    src: SocketAddr::new(view.src, view.flow.sport),
                    dst: SocketAddr::new(view.dst, view.flow.dport),
                    dropped,
                    worker: cx.worker,
                });
            }
            if matched && dropped {
                out.drop(pkt, DROP);
            } else {
                out.send(route.next(pkt.meta()), pkt);
            }
        }
        let s = &self.stats;
        add(&s.scanned, self.flows.len() as u64);
        add(&s.bytes, bytes);
        add(&s.unscanned, unscanned);
        add(&s.alerts, alerts);
        add(&s.logged, logged);
        add(&s.suppressed, suppressed);
    }
}
