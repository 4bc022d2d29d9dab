//! Counters of a connection table, read by anyone without locks.
//!
//! One writer (the worker owning the table) updates them with plain loads
//! and stores of relaxed atomics (no locked instruction); readers (the
//! control thread, tests) load them. They change when sessions come and
//! go, never per packet.

use std::sync::atomic::{AtomicU64, Ordering};

/// Events of one zone, or of the whole table.
#[derive(Debug, Default)]
pub struct Counts {
    /// Sessions in the table now.
    pub sessions: AtomicU64,
    /// Sessions made.
    pub created: AtomicU64,
    /// Sessions removed at their timeout.
    pub expired: AtomicU64,
    /// Embryonic sessions removed to make room for a new one.
    pub evicted: AtomicU64,
    /// New flows refused: no room and nothing embryonic to evict.
    pub refused: AtomicU64,
}

/// A snapshot of [`Counts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountsSnapshot {
    /// See [`Counts::sessions`].
    pub sessions: u64,
    /// See [`Counts::created`].
    pub created: u64,
    /// See [`Counts::expired`].
    pub expired: u64,
    /// See [`Counts::evicted`].
    pub evicted: u64,
    /// See [`Counts::refused`].
    pub refused: u64,
}

#[inline(always)]
fn add(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

#[inline(always)]
fn sub(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
}

impl Counts {
    /// The values now.
    pub fn snapshot(&self) -> CountsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CountsSnapshot {
            sessions: l(&self.sessions),
            created: l(&self.created),
            expired: l(&self.expired),
            evicted: l(&self.evicted),
            refused: l(&self.refused),
        }
    }
}

/// The table's counters: totals, and the same per zone.
#[derive(Debug)]
pub struct CtStats {
    /// The whole table.
    pub total: Counts,
    /// Sessions the table can hold (for a fill ratio).
    pub capacity: u64,
    /// Per zone, by zone number.
    pub zones: Box<[Counts]>,
    /// New flows refused because both index buckets of a key were full.
    pub bucket_full: AtomicU64,
}

/// What happened to a session, for [`CtStats::note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Created,
    Expired,
    Evicted,
    /// Removed for another reason (a closed connection's stale entry
    /// found on lookup counts as expired; this is for clearing).
    Removed,
    Refused,
}

impl CtStats {
    pub(crate) fn new(capacity: u64, zones: u16) -> CtStats {
        CtStats {
            total: Counts::default(),
            capacity,
            zones: (0..zones.max(1)).map(|_| Counts::default()).collect(),
            bucket_full: AtomicU64::new(0),
        }
    }

    /// Counts of zone `z` (zeros for a zone the table does not have).
    pub fn zone(&self, z: u16) -> CountsSnapshot {
        self.zones
            .get(usize::from(z))
            .map(Counts::snapshot)
            .unwrap_or_default()
    }

    pub(crate) fn note(&self, zone: u16, e: Event) {
        let z = self.zones.get(usize::from(zone));
        for c in std::iter::once(&self.total).chain(z) {
            match e {
                Event::Created => {
                    add(&c.created, 1);
                    add(&c.sessions, 1);
                }
                Event::Expired => {
                    add(&c.expired, 1);
                    sub(&c.sessions, 1);
                }
                Event::Evicted => {
                    add(&c.evicted, 1);
                    sub(&c.sessions, 1);
                }
                Event::Removed => sub(&c.sessions, 1),
                Event::Refused => add(&c.refused, 1),
            }
        }
    }

    pub(crate) fn bucket_full(&self) {
        add(&self.bucket_full, 1);
    }
}
