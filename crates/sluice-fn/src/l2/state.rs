//! What every worker's L2 nodes share: the checked configuration and the
//! bridges' MAC tables, with the aging scan and `show l2fib`.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sluice_graph::iface::IfIndex;
use sluice_wire::MacAddr;

use super::config::{L2Config, L2ConfigError, Member};
use super::table::{MacTable, mac_u64};

/// Resolution of "last seen" times: an entry's time is written at most
/// this often, however busy the MAC.
pub const TICKS_PER_SECOND: u64 = 1;
/// Aging steps a second: each step scans a slice of every aging table.
const AGE_STEPS_PER_SECOND: u64 = 1000;
/// Steps one call makes up for when the scan was not run on time.
const MAX_CATCH_UP: u64 = 16;

/// One bridge at run time.
pub(crate) struct Bridge {
    pub id: u32,
    pub learn: bool,
    pub flood: bool,
    pub table: MacTable,
    pub members: Vec<Member>,
    /// Ticks an entry lives unseen; 0 = no aging.
    max_age: u16,
    /// Buckets one aging step scans.
    age_slice: usize,
    /// Next bucket to scan.
    age_cursor: AtomicUsize,
}

/// The L2 state shared by every worker: configuration and MAC tables.
pub struct L2State {
    config: L2Config,
    pub(crate) bridges: Vec<Bridge>,
    hz: f64,
    tick_cycles: u64,
    age_interval: u64,
    age_deadline: AtomicU64,
}

impl std::fmt::Debug for L2State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("L2State")
            .field("bridges", &self.bridges.len())
            .field("hz", &self.hz)
            .finish()
    }
}

/// One line of `show l2fib`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacEntry {
    /// The bridge domain id.
    pub bridge: u32,
    /// The address.
    pub mac: MacAddr,
    /// The port's interface.
    pub interface: IfIndex,
    /// Configured (or the BVI's) rather than learned.
    pub is_static: bool,
    /// Time since it was last seen (`None` for static entries), to the
    /// resolution of [`TICKS_PER_SECOND`].
    pub age: Option<Duration>,
}

impl L2State {
    /// The state for `config`, timing with the TSC rate measured by
    /// [`sluice_graph::clock::hz`]. Static MACs (and BVI MACs) are in the
    /// tables when it returns.
    pub fn new(config: L2Config) -> Result<Arc<L2State>, L2ConfigError> {
        L2State::with_clock(config, sluice_graph::clock::hz())
    }

    /// As [`L2State::new`], with the cycle counter running at `hz`.
    pub fn with_clock(config: L2Config, hz: f64) -> Result<Arc<L2State>, L2ConfigError> {
        let hz = if hz.is_finite() { hz.max(1.0) } else { 1e9 };
        let tick_cycles = (hz / TICKS_PER_SECOND as f64).max(1.0) as u64;
        let age_interval = (hz / AGE_STEPS_PER_SECOND as f64).max(1.0) as u64;
        let mut bridges = Vec::with_capacity(config.bridges().len());
        for (bd, members) in config.bridges().iter().zip(&config.members) {
            let table = MacTable::new(bd.mac_capacity);
            let port_of = |i: IfIndex| members.iter().position(|m| m.interface == i);
            let mut statics: Vec<(MacAddr, Option<usize>)> = bd
                .static_macs
                .iter()
                .map(|s| (s.mac, port_of(s.interface)))
                .collect();
            if let Some(bvi) = bd.bvi {
                let mac = config
                    .interfaces()
                    .get(bvi)
                    .map_or(MacAddr::ZERO, |i| i.mac);
                statics.push((mac, port_of(bvi)));
            }
            for (mac, port) in statics {
                let added = port.map(|p| table.add_static(mac_u64(&mac.0), p as u16));
                if !matches!(added, Some(Ok(()))) {
                    return Err(L2ConfigError::BadStaticMac {
                        bridge: bd.id,
                        mac,
                        reason: "does not fit in the MAC table (too many in one bucket)",
                    });
                }
            }
            let max_age = if bd.aging.is_zero() {
                0
            } else {
                // At least one tick: a nonzero aging time never means "off".
                (bd.aging.as_secs_f64() * TICKS_PER_SECOND as f64).ceil() as u16
            };
            // A whole sweep every half aging time: an entry goes between
            // one and one and a half aging times after it was last seen.
            let sweep_steps =
                (bd.aging.as_secs_f64() / 2.0 * AGE_STEPS_PER_SECOND as f64).max(1.0) as usize;
            bridges.push(Bridge {
                id: bd.id,
                learn: bd.learn,
                flood: bd.flood,
                age_slice: table.buckets().div_ceil(sweep_steps).max(1),
                table,
                members: members.clone(),
                max_age,
                age_cursor: AtomicUsize::new(0),
            });
        }
        Ok(Arc::new(L2State {
            config,
            bridges,
            hz,
            tick_cycles,
            age_interval,
            age_deadline: AtomicU64::new(0),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &L2Config {
        &self.config
    }

    /// The MAC table of bridge domain `id`.
    pub fn table(&self, id: u32) -> Option<&MacTable> {
        self.bridges.iter().find(|b| b.id == id).map(|b| &b.table)
    }

    /// The tick of cycle count `now`.
    #[inline]
    pub fn tick(&self, now: u64) -> u16 {
        // Wraps: times are compared by signed difference, and the aging
        // scan removes entries long before their age could wrap.
        (now / self.tick_cycles) as u16
    }

    /// Cycles between two aging steps.
    pub fn age_interval(&self) -> u64 {
        self.age_interval
    }

    /// Whether any bridge ages its entries.
    pub fn ages(&self) -> bool {
        self.bridges.iter().any(|b| b.max_age > 0)
    }

    /// One step of the aging scan if it is due at cycle count `now`: a
    /// slice of every aging table (more when steps were missed). Any worker
    /// may call it; one of them runs each step. Returns the entries removed.
    pub fn age(&self, now: u64) -> usize {
        let deadline = self.age_deadline.load(Ordering::Relaxed);
        if now < deadline {
            return 0;
        }
        let steps = if deadline == 0 {
            1
        } else {
            ((now - deadline) / self.age_interval + 1).min(MAX_CATCH_UP)
        };
        if self
            .age_deadline
            .compare_exchange(
                deadline,
                now.saturating_add(self.age_interval),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return 0;
        }
        let tick = self.tick(now);
        let mut removed = 0;
        for b in self.bridges.iter().filter(|b| b.max_age > 0) {
            let n = b.age_slice * steps as usize;
            // The step was claimed above, so this worker alone moves the
            // cursor now.
            let from = b.age_cursor.load(Ordering::Relaxed);
            b.age_cursor
                .store(from.wrapping_add(n) % b.table.buckets(), Ordering::Relaxed);
            removed += b.table.age(from, n, tick, b.max_age);
        }
        removed
    }

    /// Scans every aging table whole at cycle count `now` (for a control
    /// command, and tests). Returns the entries removed.
    pub fn age_all(&self, now: u64) -> usize {
        let tick = self.tick(now);
        self.bridges
            .iter()
            .filter(|b| b.max_age > 0)
            .map(|b| b.table.age(0, b.table.buckets(), tick, b.max_age))
            .sum()
    }

    /// Every MAC table entry, by bridge then MAC, with ages as of cycle
    /// count `now`.
    pub fn mac_table(&self, now: u64) -> Vec<MacEntry> {
        let tick = self.tick(now);
        let mut out = Vec::new();
        for b in &self.bridges {
            let mut entries: Vec<MacEntry> = b
                .table
                .entries()
                .into_iter()
                .filter_map(|e| {
                    let m = b.members.get(e.port as usize)?;
                    let age = tick.wrapping_sub(e.seen) as i16;
                    let b6 = e.mac.to_be_bytes();
                    Some(MacEntry {
                        bridge: b.id,
                        mac: MacAddr([b6[2], b6[3], b6[4], b6[5], b6[6], b6[7]]),
                        interface: m.interface,
                        is_static: e.is_static,
                        age: (!e.is_static).then(|| {
                            Duration::from_secs_f64(f64::from(age.max(0)) / TICKS_PER_SECOND as f64)
                        }),
                    })
                })
                .collect();
            entries.sort_by_key(|e| e.mac);
            out.extend(entries);
        }
        out
    }

    /// `show l2fib`: one line per MAC.
    pub fn show_l2fib(&self, now: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<19}{:>8}  {:<24}{:<8}{:>10}",
            "Mac-Address", "BD-ID", "Interface", "Type", "Age(s)"
        );
        let entries = self.mac_table(now);
        for e in &entries {
            let name = self
                .config
                .interfaces()
                .get(e.interface)
                .map_or_else(|| e.interface.to_string(), |i| i.name.clone());
            let age = e
                .age
                .map_or_else(|| "-".to_string(), |a| format!("{:.2}", a.as_secs_f64()));
            let kind = if e.is_static { "static" } else { "dynamic" };
            let _ = writeln!(
                out,
                "{:<19}{:>8}  {:<24}{:<8}{:>10}",
                e.mac, e.bridge, name, kind, age
            );
        }
        let _ = writeln!(out, "{} entries", entries.len());
        out
    }
}
