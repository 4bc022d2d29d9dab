//! `ip4-ids`: the intrusion detector on the IPv4 path.
//!
//! Per vector: every packet's protocol, ports and payload are read, each
//! payload runs its groups' automata ([`RuleSet::scan`]), then every hit
//! is counted against its rule and logged within the rate limit. In
//! [`Mode::Detect`] every packet goes on; in [`Mode::Prevent`] a packet
//! that matched any rule is dropped as `ids-drop`. Packets that cannot
//! be scanned (truncated, non-first fragments) go on, counted in
//! [`IdsStats::unscanned`]: the detector watches, it does not police
//! headers (`ip4-input` and conntrack do).

use std::net::Ipv4Addr;
use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};

use super::alert::{Alert, AlertLog, IdsStats, add};
use super::payload::view4;
use super::set::{RuleSet, Scratch};
use crate::host::RateLimiter;

/// The usual name of the node.
pub const IP4_NAME: &str = "ip4-ids";

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
    next: String,
    set: Arc<RuleSet>,
    mode: Mode,
    limit: RateLimiter,
    log: Box<dyn AlertLog>,
    stats: Arc<IdsStats>,
    scratch: Scratch,
    hits: Vec<u32>,
    /// A chained packet's bytes, gathered to scan in one piece.
    gather: Vec<u8>,
}

impl IdsNode {
    /// A node `name` scanning with `set`, sending what passes to `next`,
    /// writing alert lines to `log`.
    pub fn ip4(
        name: impl Into<String>,
        next: impl Into<String>,
        set: Arc<RuleSet>,
        config: IdsConfig,
        log: Box<dyn AlertLog>,
    ) -> IdsNode {
        let hz = sluice_graph::clock::hz() as u64;
        IdsNode {
            name: name.into(),
            next: next.into(),
            stats: Arc::new(IdsStats::new(set.rules().iter().map(|r| r.sid).collect())),
            scratch: set.scratch(),
            set,
            mode: config.mode,
            limit: RateLimiter::new(config.log_per_second, config.log_burst, hz),
            log,
            hits: Vec::new(),
            gather: Vec::new(),
        }
    }

    /// The node's counters.
    pub fn stats(&self) -> Arc<IdsStats> {
        self.stats.clone()
    }
}

impl Node for IdsNode {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(self.name.clone(), &[self.next.as_str()], ERRORS)
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let (mut scanned, mut bytes, mut unscanned) = (0u64, 0u64, 0u64);
        let (mut alerts, mut logged, mut suppressed) = (0u64, 0u64, 0u64);
        for pkt in input.drain(..) {
            let first = pkt.data();
            let view = match view4(first, pkt.total_len()) {
                Ok(v) => v,
                Err(_) => {
                    unscanned += 1;
                    out.send(0, pkt);
                    continue;
                }
            };
            let whole = if pkt.is_chained() {
                self.gather.clear();
                pkt.copy_to(&mut self.gather);
                &self.gather[..]
            } else {
                first
            };
            let payload = whole.get(view.start..view.end).unwrap_or(&[]);
            scanned += 1;
            bytes += payload.len() as u64;
            self.hits.clear();
            self.set
                .scan(view.flow, payload, &mut self.scratch, &mut self.hits);
            if self.hits.is_empty() {
                out.send(0, pkt);
                continue;
            }
            let dropped = self.mode == Mode::Prevent;
            for &r in &self.hits {
                alerts += 1;
                add(&self.stats.per_rule[r as usize], 1);
                if !self.limit.allow(cx.now) {
                    suppressed += 1;
                    continue;
                }
                logged += 1;
                let rule = &self.set.rules()[r as usize];
                self.log.log(&Alert {
                    sid: rule.sid,
                    rev: rule.rev,
                    msg: &rule.msg,
                    proto: view.flow.proto,
                    src: (Ipv4Addr::from(view.src), view.flow.sport),
                    dst: (Ipv4Addr::from(view.dst), view.flow.dport),
                    dropped,
                    worker: cx.worker,
                });
            }
            if dropped {
                out.drop(pkt, DROP);
            } else {
                out.send(0, pkt);
            }
        }
        let s = &self.stats;
        add(&s.scanned, scanned);
        add(&s.bytes, bytes);
        add(&s.unscanned, unscanned);
        add(&s.alerts, alerts);
        add(&s.logged, logged);
        add(&s.suppressed, suppressed);
    }
}
