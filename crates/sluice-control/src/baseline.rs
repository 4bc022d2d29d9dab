//! `clear runtime` and `clear interfaces` without touching a worker's
//! counters.
//!
//! A worker adds to its counters with a plain load and store (no locked
//! instruction), so zeroing one from another thread could be undone by the
//! worker's next store. Instead the control plane keeps what the counters
//! read at the clear and shows the difference; the counters themselves only
//! ever grow, which is also what Prometheus wants of them.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use sluice_graph::iface::{IfCounters, IfStats, Interfaces};
use sluice_graph::trace::TraceState;
use sluice_graph::{Counter, GraphStats, NodeStats};

/// One node's counters at a clear.
#[derive(Debug, Clone)]
struct NodeMark {
    calls: u64,
    vectors: u64,
    suspends: u64,
    clocks: u64,
    errors: Vec<u64>,
}

/// Node counters of every worker at a clear, and when.
#[derive(Debug, Clone)]
struct RuntimeMark {
    at: Instant,
    loops: Vec<u64>,
    nodes: Vec<Vec<NodeMark>>,
}

/// Where the last clears left the counters.
#[derive(Debug, Default)]
pub struct Baselines {
    runtime: Mutex<Option<RuntimeMark>>,
    interfaces: Mutex<Option<Vec<[u64; 6]>>>,
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.add(v);
    c
}

const IF_FIELDS: [fn(&IfCounters) -> &Counter; 6] = [
    |c| &c.rx_packets,
    |c| &c.rx_bytes,
    |c| &c.rx_drops,
    |c| &c.tx_packets,
    |c| &c.tx_bytes,
    |c| &c.tx_errors,
];

impl Baselines {
    /// Remembers the node counters as they are now.
    pub fn clear_runtime(&self, stats: &[Arc<GraphStats>]) {
        let mark = RuntimeMark {
            at: Instant::now(),
            loops: stats.iter().map(|g| g.loops.get()).collect(),
            nodes: stats
                .iter()
                .map(|g| {
                    g.nodes
                        .iter()
                        .map(|n| NodeMark {
                            calls: n.calls.get(),
                            vectors: n.vectors.get(),
                            suspends: n.suspends.get(),
                            clocks: n.clocks.get(),
                            errors: n.errors.iter().map(Counter::get).collect(),
                        })
                        .collect()
                })
                .collect(),
        };
        *self.runtime.lock().unwrap_or_else(|p| p.into_inner()) = Some(mark);
    }

    /// Remembers the interface counters as they are now.
    pub fn clear_interfaces(&self, interfaces: &Interfaces, stats: &IfStats) {
        let mark = interfaces
            .iter()
            .map(|i| IF_FIELDS.map(|f| stats.sum(i.index, f)))
            .collect();
        *self.interfaces.lock().unwrap_or_else(|p| p.into_inner()) = Some(mark);
    }

    /// The node counters since the last clear (all of them if none), and
    /// since when, for rates.
    pub fn runtime(
        &self,
        stats: &[Arc<GraphStats>],
        started: Instant,
    ) -> (Vec<GraphStats>, Instant) {
        let mark = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let since = mark.as_ref().map_or(started, |m| m.at);
        let views = stats
            .iter()
            .enumerate()
            .map(|(w, g)| {
                let base = mark.as_ref().and_then(|m| m.nodes.get(w));
                let loops0 = mark
                    .as_ref()
                    .and_then(|m| m.loops.get(w))
                    .copied()
                    .unwrap_or(0);
                GraphStats {
                    worker: g.worker,
                    loops: counter(g.loops.get().saturating_sub(loops0)),
                    trace: TraceState::new(0),
                    nodes: g
                        .nodes
                        .iter()
                        .enumerate()
                        .map(|(i, n)| {
                            let b = base.and_then(|b| b.get(i));
                            let less =
                                |v: u64, f: fn(&NodeMark) -> u64| v.saturating_sub(b.map_or(0, f));
                            NodeStats {
                                name: n.name.clone(),
                                kind: n.kind,
                                calls: counter(less(n.calls.get(), |m| m.calls)),
                                vectors: counter(less(n.vectors.get(), |m| m.vectors)),
                                suspends: counter(less(n.suspends.get(), |m| m.suspends)),
                                clocks: counter(less(n.clocks.get(), |m| m.clocks)),
                                errors: n
                                    .errors
                                    .iter()
                                    .enumerate()
                                    .map(|(k, c)| {
                                        let e0 = b.and_then(|b| b.errors.get(k)).copied();
                                        counter(c.get().saturating_sub(e0.unwrap_or(0)))
                                    })
                                    .collect(),
                                error_specs: n.error_specs.clone(),
                                next: n.next.clone(),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        (views, since)
    }

    /// The interface counters since the last clear, as one worker's.
    pub fn interfaces(&self, interfaces: &Interfaces, stats: &IfStats) -> IfStats {
        let mark = self
            .interfaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let view = IfStats::new(1, interfaces.len());
        let counters = view.worker(0);
        for i in interfaces.iter() {
            let base = mark
                .as_ref()
                .and_then(|m| m.get(i.index as usize))
                .copied()
                .unwrap_or([0; 6]);
            if let Some(c) = counters.get(i.index as usize) {
                for (k, f) in IF_FIELDS.iter().enumerate() {
                    f(c).add(stats.sum(i.index, f).saturating_sub(base[k]));
                }
            }
        }
        view
    }
}
