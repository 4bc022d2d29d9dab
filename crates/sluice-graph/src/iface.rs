//! What the graph knows of interfaces: their index, name, MAC, MTU, which
//! node transmits on them, and their counters.
//!
//! Functions look interfaces up here (to rewrite a source MAC, to check an
//! MTU); drivers register here. Neither knows the other.

use std::sync::Arc;

use sluice_wire::MacAddr;

use crate::Counter;

/// An interface's index, as carried in packet metadata (`rx_if`, `tx_if`).
pub type IfIndex = u32;

/// Static facts of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfInfo {
    /// Index in the interface table.
    pub index: IfIndex,
    /// Name, e.g. `pg0`.
    pub name: String,
    /// Driver kind, e.g. `pg`, `pcap`, `sink`.
    pub driver: String,
    /// The interface's MAC address.
    pub mac: MacAddr,
    /// L3 MTU in bytes (largest IP packet sent without fragmenting).
    pub mtu: u16,
    /// The node that transmits on it, e.g. `pg0-output`; `None` for an
    /// interface that only receives.
    pub output_node: Option<String>,
}

/// Every interface, in index order. Immutable once built: a change makes a
/// new table.
#[derive(Debug, Clone, Default)]
pub struct Interfaces {
    list: Vec<IfInfo>,
}

impl Interfaces {
    /// An empty table.
    pub fn new() -> Interfaces {
        Interfaces::default()
    }

    /// Adds an interface and returns its index.
    pub fn add(
        &mut self,
        name: &str,
        driver: &str,
        mac: MacAddr,
        mtu: u16,
        output_node: Option<String>,
    ) -> IfIndex {
        let index = self.list.len() as IfIndex;
        self.list.push(IfInfo {
            index,
            name: name.to_string(),
            driver: driver.to_string(),
            mac,
            mtu,
            output_node,
        });
        index
    }

    /// The interface with index `i`.
    pub fn get(&self, i: IfIndex) -> Option<&IfInfo> {
        self.list.get(i as usize)
    }

    /// The interface called `name`.
    pub fn by_name(&self, name: &str) -> Option<&IfInfo> {
        self.list.iter().find(|i| i.name == name)
    }

    /// All interfaces in index order.
    pub fn iter(&self) -> impl Iterator<Item = &IfInfo> {
        self.list.iter()
    }

    /// Number of interfaces.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Counters of one interface on one worker (`show interface`).
#[derive(Debug, Default)]
pub struct IfCounters {
    /// Packets received.
    pub rx_packets: Counter,
    /// Bytes received.
    pub rx_bytes: Counter,
    /// Packets transmitted.
    pub tx_packets: Counter,
    /// Bytes transmitted.
    pub tx_bytes: Counter,
    /// Packets received but dropped by the driver (no buffer, too big).
    pub rx_drops: Counter,
    /// Packets that could not be transmitted.
    pub tx_errors: Counter,
}

/// Interface counters of every worker, summed on read.
#[derive(Debug, Default, Clone)]
pub struct IfStats {
    /// `[worker][interface]`.
    per_worker: Vec<Arc<Vec<IfCounters>>>,
}

impl IfStats {
    /// Counters for `n_if` interfaces on `n_workers` workers.
    pub fn new(n_workers: usize, n_if: usize) -> IfStats {
        IfStats {
            per_worker: (0..n_workers)
                .map(|_| Arc::new((0..n_if).map(|_| IfCounters::default()).collect()))
                .collect(),
        }
    }

    /// One worker's counters, for its nodes to write.
    pub fn worker(&self, w: usize) -> Arc<Vec<IfCounters>> {
        self.per_worker.get(w).cloned().unwrap_or_default()
    }

    /// Sum over workers of one counter of interface `i`.
    pub fn sum(&self, i: IfIndex, f: impl Fn(&IfCounters) -> &Counter) -> u64 {
        self.per_worker
            .iter()
            .filter_map(|w| w.get(i as usize))
            .map(|c| f(c).get())
            .sum()
    }
}
