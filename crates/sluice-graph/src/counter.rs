use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with one writer (its worker) and any number of readers.
///
/// The writer adds with a relaxed load and store, not a locked
/// read-modify-write: on x86 that is two plain moves, so counting a packet
/// costs what a plain `u64` would, yet the control thread can read it at any
/// time without a lock and without tearing.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this (one writer).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets to zero (`clear runtime`); a concurrent add may be lost.
    pub fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}
