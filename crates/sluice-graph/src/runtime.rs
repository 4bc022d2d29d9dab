//! `show runtime` and `show errors`, in VPP's columns.
//!
//! Clocks is cycles per packet (cycles per call for a call that carried no
//! packet), the unit of the design guide's cost table.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::{GraphStats, NodeKind};

/// One row of `show runtime`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeRow {
    /// Node name.
    pub name: String,
    /// `polling` for inputs, `active` for others.
    pub state: &'static str,
    /// Calls.
    pub calls: u64,
    /// Packets.
    pub vectors: u64,
    /// Suspends.
    pub suspends: u64,
    /// Total cycles.
    pub clocks_total: u64,
}

impl RuntimeRow {
    /// Cycles per packet, or per call when no packet was handled.
    pub fn clocks(&self) -> f64 {
        if self.vectors > 0 {
            self.clocks_total as f64 / self.vectors as f64
        } else if self.calls > 0 {
            self.clocks_total as f64 / self.calls as f64
        } else {
            0.0
        }
    }

    /// Average packets per call.
    pub fn vectors_per_call(&self) -> f64 {
        if self.calls > 0 {
            self.vectors as f64 / self.calls as f64
        } else {
            0.0
        }
    }
}

/// The rows of one worker (or of several, summed), by name; nodes never
/// called are left out.
pub fn rows(stats: &[&GraphStats]) -> Vec<RuntimeRow> {
    let mut by_name: BTreeMap<&str, RuntimeRow> = BTreeMap::new();
    for g in stats {
        for n in &g.nodes {
            let row = by_name.entry(&n.name).or_insert_with(|| RuntimeRow {
                name: n.name.clone(),
                state: match n.kind {
                    NodeKind::Input | NodeKind::Background | NodeKind::Relay => "polling",
                    NodeKind::Internal => "active",
                },
                calls: 0,
                vectors: 0,
                suspends: 0,
                clocks_total: 0,
            });
            row.calls += n.calls.get();
            row.vectors += n.vectors.get();
            row.suspends += n.suspends.get();
            row.clocks_total += n.clocks.get();
        }
    }
    by_name.into_values().filter(|r| r.calls > 0).collect()
}

/// Packets brought in by input nodes.
pub fn packets_in(stats: &[&GraphStats]) -> u64 {
    stats
        .iter()
        .flat_map(|g| &g.nodes)
        .filter(|n| n.kind == NodeKind::Input)
        .map(|n| n.vectors.get())
        .sum()
}

/// Packets dropped (handled by `error-drop`).
pub fn packets_dropped(stats: &[&GraphStats]) -> u64 {
    stats
        .iter()
        .flat_map(|g| &g.nodes)
        .filter(|n| n.name == crate::graph::ERROR_DROP)
        .map(|n| n.vectors.get())
        .sum()
}

fn table(out: &mut String, rows: &[RuntimeRow]) {
    let _ = writeln!(
        out,
        "{:<30}{:^12}{:>16}{:>16}{:>16}{:>16}{:>16}",
        "Name", "State", "Calls", "Vectors", "Suspends", "Clocks", "Vectors/Call"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<30}{:^12}{:>16}{:>16}{:>16}{:>16}{:>16.2}",
            r.name,
            r.state,
            r.calls,
            r.vectors,
            r.suspends,
            format!("{:.2e}", r.clocks()),
            r.vectors_per_call()
        );
    }
}

/// `show runtime` for every worker, then the total when there are several.
/// `seconds` is the wall time the counters cover; `cores` the core each
/// worker is pinned to, if any.
pub fn show_runtime(stats: &[&GraphStats], seconds: f64, cores: &[Option<usize>]) -> String {
    let mut out = String::new();
    let secs = seconds.max(1e-9);
    for g in stats {
        let one = [*g];
        let core = match cores.get(g.worker).copied().flatten() {
            Some(c) => format!("core {c}"),
            None => "unpinned".to_string(),
        };
        let rows = rows(&one);
        let active: Vec<&RuntimeRow> = rows.iter().filter(|r| r.vectors > 0).collect();
        let avg_vector = if active.is_empty() {
            0.0
        } else {
            active.iter().map(|r| r.vectors_per_call()).sum::<f64>() / active.len() as f64
        };
        let _ = writeln!(out, "Thread {} sluice_wk_{} ({core})", g.worker, g.worker);
        let _ = writeln!(
            out,
            "Time {:.1}, average vectors/node {:.2}, loops/sec {:.2}",
            seconds,
            avg_vector,
            g.loops.get() as f64 / secs
        );
        let _ = writeln!(
            out,
            "  vector rates in {:.4e}, drop {:.4e}",
            packets_in(&one) as f64 / secs,
            packets_dropped(&one) as f64 / secs
        );
        table(&mut out, &rows);
        out.push('\n');
    }
    if stats.len() > 1 {
        let _ = writeln!(out, "Total ({} workers)", stats.len());
        let _ = writeln!(
            out,
            "  vector rates in {:.4e}, drop {:.4e}; per worker in: {}",
            packets_in(stats) as f64 / secs,
            packets_dropped(stats) as f64 / secs,
            stats
                .iter()
                .map(|g| format!("{:.4e}", packets_in(&[*g]) as f64 / secs))
                .collect::<Vec<_>>()
                .join(", ")
        );
        table(&mut out, &rows(stats));
    }
    out
}

/// One line of `show errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    /// Packets counted.
    pub count: u64,
    /// Node that counted them.
    pub node: String,
    /// Error name.
    pub name: &'static str,
    /// What it means.
    pub reason: &'static str,
    /// Severity word.
    pub severity: &'static str,
}

/// Every non-zero error counter, summed over workers.
pub fn error_rows(stats: &[&GraphStats]) -> Vec<ErrorRow> {
    let mut sum: BTreeMap<(String, usize), ErrorRow> = BTreeMap::new();
    for g in stats {
        for n in &g.nodes {
            for (k, (c, spec)) in n.errors.iter().zip(&n.error_specs).enumerate() {
                let v = c.get();
                if v == 0 {
                    continue;
                }
                sum.entry((n.name.clone(), k))
                    .or_insert_with(|| ErrorRow {
                        count: 0,
                        node: n.name.clone(),
                        name: spec.name,
                        reason: spec.description,
                        severity: spec.severity.as_str(),
                    })
                    .count += v;
            }
        }
    }
    sum.into_values().collect()
}

/// `show errors`: Count, Node, Reason, Severity.
pub fn show_errors(stats: &[&GraphStats]) -> String {
    let rows = error_rows(stats);
    // The reason column is as wide as the longest reason, so that the
    // severity always stands in its own column.
    let width = rows
        .iter()
        .map(|r| r.reason.chars().count() + 2)
        .max()
        .unwrap_or(0)
        .max(48);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12}  {:<28}{:<width$}Severity",
        "Count", "Node", "Reason"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>12}  {:<28}{:<width$}{}",
            r.count, r.node, r.reason, r.severity
        );
    }
    out
}

/// The graph as Graphviz DOT: a box per node, labelled with its packets
/// per second and cycles per packet over `seconds`; an arrow per next
/// node; nodes that have handled nothing drawn grey.
pub fn show_graph(stats: &[&GraphStats], seconds: f64) -> String {
    let rows = rows(stats);
    let secs = seconds.max(1e-9);
    let mut out = String::from(
        "digraph sluice {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    let mut edges = BTreeMap::new();
    for g in stats {
        for n in &g.nodes {
            for next in &n.next {
                edges.insert((n.name.clone(), next.clone()), ());
            }
        }
    }
    for r in &rows {
        let style = if r.vectors == 0 {
            ", color=grey, fontcolor=grey"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{:.3e} pkt/s  {:.1} clk/pkt\"{style}];",
            r.name,
            r.name,
            r.vectors as f64 / secs,
            r.clocks()
        );
    }
    for (from, to) in edges.keys() {
        let _ = writeln!(out, "  \"{from}\" -> \"{to}\";");
    }
    out.push_str("}\n");
    out
}
