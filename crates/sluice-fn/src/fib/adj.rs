//! Adjacencies and load balances: what a route's value points to.
//!
//! A trie value is either one adjacency (the common single-path route, so
//! a lookup costs no extra read) or a load balance: up to [`MAX_PATHS`]
//! adjacencies among which the packet's flow hash picks (ECMP).
//!
//! Both live in fixed-capacity tables of atomic words so that the writer
//! can fill a slot before any route points to it, and so that neighbour
//! resolution can set an adjacency's MAC while workers read it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};

use sluice_buf::table::{AtomicTable, TableError};
use sluice_graph::iface::IfIndex;
use sluice_wire::MacAddr;

/// Most paths of one ECMP route.
pub const MAX_PATHS: usize = 16;

/// Trie value bit: a load balance, not an adjacency.
pub(crate) const LB_FLAG: u32 = 1 << 22;

/// What an adjacency does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AdjKind {
    /// Nothing (a slot not in use).
    Free = 0,
    /// Rewrite the L2 header for a neighbour and send it out.
    Neighbor = 1,
    /// The destination is on a connected subnet: resolve it first.
    Glean = 2,
    /// For this host.
    Local = 3,
    /// Drop silently (blackhole).
    Drop = 4,
    /// Drop and answer ICMP administratively prohibited.
    Prohibit = 5,
    /// Drop and answer ICMP unreachable.
    Unreachable = 6,
}

impl AdjKind {
    fn from_u8(v: u8) -> AdjKind {
        match v {
            1 => AdjKind::Neighbor,
            2 => AdjKind::Glean,
            3 => AdjKind::Local,
            4 => AdjKind::Drop,
            5 => AdjKind::Prohibit,
            6 => AdjKind::Unreachable,
            _ => AdjKind::Free,
        }
    }
}

/// One adjacency as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adj {
    /// What to do.
    pub kind: AdjKind,
    /// Outgoing (or, for `Local`, receiving) interface.
    pub interface: IfIndex,
    /// The neighbour's MAC, once known (`Neighbor` only).
    pub mac: Option<MacAddr>,
    /// The neighbour's address, to resolve (`Neighbor` without a static
    /// MAC only).
    pub addr: Option<IpAddr>,
}

const RESOLVED: u64 = 1 << 63;

fn mac_word(m: MacAddr) -> u64 {
    let b = m.0;
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

fn word_mac(w: u64) -> MacAddr {
    let b = w.to_be_bytes();
    MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// The shared tables of adjacencies and load balances.
#[derive(Debug)]
pub struct AdjTable {
    /// Per adjacency: kind (8 bits) | interface (32 bits) at bits 8..40.
    head: AtomicTable<AtomicU64>,
    /// Per adjacency: RESOLVED | MAC (48 bits).
    mac: AtomicTable<AtomicU64>,
    /// Per adjacency: the neighbour's address, two words (an IPv4 address
    /// in the low word); head bits 40..42 say which family.
    nh: AtomicTable<AtomicU64>,
    /// Per load balance: number of paths.
    lb_paths: AtomicTable<AtomicU32>,
    /// Per load balance: MAX_PATHS adjacency indices.
    lb_buckets: AtomicTable<AtomicU32>,
}

impl AdjTable {
    /// Room for `adjacencies` adjacencies and `load_balances` ECMP groups.
    pub fn new(adjacencies: u32, load_balances: u32) -> Result<AdjTable, TableError> {
        Ok(AdjTable {
            head: AtomicTable::new(adjacencies as usize, false)?,
            mac: AtomicTable::new(adjacencies as usize, false)?,
            nh: AtomicTable::new(adjacencies as usize * 2, false)?,
            lb_paths: AtomicTable::new(load_balances as usize, false)?,
            lb_buckets: AtomicTable::new(load_balances as usize * MAX_PATHS, false)?,
        })
    }

    /// Capacity in adjacencies.
    pub fn adjacencies(&self) -> usize {
        self.head.len()
    }

    /// Capacity in load balances.
    pub fn load_balances(&self) -> usize {
        self.lb_paths.len()
    }

    /// Writes adjacency `i` (writer only, before any route points to it).
    pub(crate) fn set(
        &self,
        i: u32,
        kind: AdjKind,
        interface: IfIndex,
        mac: Option<MacAddr>,
        addr: Option<IpAddr>,
    ) {
        let (family, hi, lo) = match addr {
            None => (0u64, 0, 0),
            Some(IpAddr::V4(a)) => (1, 0, u64::from(u32::from(a))),
            Some(IpAddr::V6(a)) => {
                let v = u128::from(a);
                (2, (v >> 64) as u64, v as u64)
            }
        };
        let i = i as usize;
        if let (Some(h), Some(m), Some(n0), Some(n1)) = (
            self.head.get(i),
            self.mac.get(i),
            self.nh.get(2 * i),
            self.nh.get(2 * i + 1),
        ) {
            m.store(mac.map_or(0, |m| RESOLVED | mac_word(m)), Release);
            n0.store(hi, Release);
            n1.store(lo, Release);
            h.store(
                (kind as u64) | (u64::from(interface) << 8) | (family << 40),
                Release,
            );
        }
    }

    /// Sets (or forgets, with `None`) the neighbour MAC of adjacency `i`.
    pub(crate) fn set_mac(&self, i: u32, mac: Option<MacAddr>) {
        if let Some(m) = self.mac.get(i as usize) {
            m.store(mac.map_or(0, |m| RESOLVED | mac_word(m)), Release);
        }
    }

    /// Writes load balance `lb` with `paths` (writer only).
    pub(crate) fn set_lb(&self, lb: u32, paths: &[u32]) {
        let base = lb as usize * MAX_PATHS;
        for (k, &a) in paths.iter().enumerate().take(MAX_PATHS) {
            if let Some(b) = self.lb_buckets.get(base + k) {
                b.store(a, Release);
            }
        }
        if let Some(n) = self.lb_paths.get(lb as usize) {
            n.store(paths.len().min(MAX_PATHS) as u32, Release);
        }
    }

    /// The adjacency a trie value leads to for a packet of flow hash
    /// `hash` (used only when the value is a load balance).
    #[inline(always)]
    pub fn pick(&self, value: u32, hash: u32) -> u32 {
        if value & LB_FLAG == 0 {
            return value.wrapping_sub(1);
        }
        let lb = (value & !LB_FLAG) as usize;
        let n = self.lb_paths.get(lb).map_or(0, |n| n.load(Acquire));
        // Fast range reduction of the hash to 0..n.
        let k = ((u64::from(hash) * u64::from(n)) >> 32) as usize;
        self.lb_buckets
            .get(lb * MAX_PATHS + k)
            .map_or(u32::MAX, |b| b.load(Acquire))
    }

    /// Whether a trie value is a load balance (needs a flow hash).
    #[inline(always)]
    pub fn is_lb(value: u32) -> bool {
        value & LB_FLAG != 0
    }

    /// Adjacency `i` (kind `Free` for an index out of range).
    #[inline(always)]
    pub fn get(&self, i: u32) -> Adj {
        let h = self.head.get(i as usize).map_or(0, |h| h.load(Acquire));
        let m = self.mac.get(i as usize).map_or(0, |m| m.load(Acquire));
        let word = |k: usize| {
            self.nh
                .get(2 * i as usize + k)
                .map_or(0, |w| w.load(Acquire))
        };
        let addr = match (h >> 40) & 3 {
            1 => Some(IpAddr::V4(Ipv4Addr::from(word(1) as u32))),
            2 => Some(IpAddr::V6(Ipv6Addr::from(
                (u128::from(word(0)) << 64) | u128::from(word(1)),
            ))),
            _ => None,
        };
        Adj {
            kind: AdjKind::from_u8(h as u8),
            interface: (h >> 8) as u32,
            mac: (m & RESOLVED != 0).then(|| word_mac(m)),
            addr,
        }
    }

    /// The kind and interface of adjacency `i`, for the hot path.
    #[inline(always)]
    pub fn kind(&self, i: u32) -> (AdjKind, IfIndex) {
        let h = self.head.get(i as usize).map_or(0, |h| h.load(Acquire));
        (AdjKind::from_u8(h as u8), (h >> 8) as u32)
    }

    /// The neighbour MAC of adjacency `i`, if resolved, for the hot path.
    #[inline(always)]
    pub fn mac(&self, i: u32) -> Option<MacAddr> {
        let m = self.mac.get(i as usize).map_or(0, |m| m.load(Acquire));
        (m & RESOLVED != 0).then(|| word_mac(m))
    }

    /// The paths of load balance `lb`.
    pub fn lb(&self, lb: u32) -> Vec<u32> {
        let n = self
            .lb_paths
            .get(lb as usize)
            .map_or(0, |n| n.load(Acquire)) as usize;
        (0..n)
            .filter_map(|k| self.lb_buckets.get(lb as usize * MAX_PATHS + k))
            .map(|b| b.load(Acquire))
            .collect()
    }
}
