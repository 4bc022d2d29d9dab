//! The single-producer, single-consumer rings an AF_XDP socket shares with
//! the kernel.
//!
//! Indices run freely over `u32` and are masked into the ring. The side
//! that produces publishes entries with a release store of its index; the
//! other side reads that index with an acquire load before the entries.
//! Each side keeps a cached copy of the other's index and reads the shared
//! word only when the cache says the ring is empty (or full), so a burst
//! costs two shared-memory accesses, not two per packet.

use std::sync::atomic::Ordering;

use crate::sys::xdp::RingMap;

/// A ring Sluice fills: the fill ring (buffers to receive into) and the
/// transmit ring.
#[derive(Debug)]
pub struct Producer {
    ring: RingMap,
    entry: usize,
    prod: u32,
    /// The consumer's index plus the ring size: `limit - prod` slots free.
    limit: u32,
}

impl Producer {
    /// Wraps a ring whose entries are `entry` bytes (8 or 16).
    pub fn new(ring: RingMap, entry: usize) -> Producer {
        let prod = ring
            .map
            .u32_at(ring.producer)
            .map_or(0, |a| a.load(Ordering::Relaxed));
        let cons = ring
            .map
            .u32_at(ring.consumer)
            .map_or(0, |a| a.load(Ordering::Acquire));
        let limit = cons.wrapping_add(ring.size);
        Producer {
            ring,
            entry,
            prod,
            limit,
        }
    }

    /// Slots free for up to `want` entries.
    #[inline]
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.limit.wrapping_sub(self.prod);
        if free >= want {
            return want;
        }
        if let Some(c) = self.ring.map.u32_at(self.ring.consumer) {
            self.limit = c.load(Ordering::Acquire).wrapping_add(self.ring.size);
        }
        want.min(self.limit.wrapping_sub(self.prod))
    }

    fn slot(&self, i: u32) -> usize {
        self.ring.desc + (self.prod.wrapping_add(i) & (self.ring.size - 1)) as usize * self.entry
    }

    /// Writes the `i`-th entry after the published ones (an address).
    #[inline]
    pub fn put_addr(&self, i: u32, addr: u64) {
        self.ring.map.write(self.slot(i), addr);
    }

    /// Writes the `i`-th entry after the published ones (a descriptor).
    #[inline]
    pub fn put_desc(&self, i: u32, desc: libc::xdp_desc) {
        self.ring.map.write(self.slot(i), desc);
    }

    /// Publishes `n` written entries.
    #[inline]
    pub fn submit(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.prod = self.prod.wrapping_add(n);
        if let Some(p) = self.ring.map.u32_at(self.ring.producer) {
            p.store(self.prod, Ordering::Release);
        }
    }

    /// Whether the kernel asks to be woken to look at this ring.
    #[inline]
    pub fn needs_wakeup(&self) -> bool {
        self.ring
            .map
            .u32_at(self.ring.flags)
            .is_some_and(|f| f.load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0)
    }
}

/// A ring the kernel fills: the receive ring and the completion ring.
#[derive(Debug)]
pub struct Consumer {
    ring: RingMap,
    entry: usize,
    cons: u32,
    /// The producer's index as last read.
    prod: u32,
}

impl Consumer {
    /// Wraps a ring whose entries are `entry` bytes (8 or 16).
    pub fn new(ring: RingMap, entry: usize) -> Consumer {
        let cons = ring
            .map
            .u32_at(ring.consumer)
            .map_or(0, |a| a.load(Ordering::Relaxed));
        Consumer {
            ring,
            entry,
            cons,
            prod: cons,
        }
    }

    /// Entries ready to read, up to `max`.
    #[inline]
    pub fn available(&mut self, max: u32) -> u32 {
        let mut n = self.prod.wrapping_sub(self.cons);
        if n == 0 {
            if let Some(p) = self.ring.map.u32_at(self.ring.producer) {
                self.prod = p.load(Ordering::Acquire);
            }
            n = self.prod.wrapping_sub(self.cons);
        }
        // A producer index that ran past the ring is a broken ring; read
        // nothing rather than stale slots.
        if n > self.ring.size {
            return 0;
        }
        n.min(max)
    }

    fn slot(&self, i: u32) -> usize {
        self.ring.desc + (self.cons.wrapping_add(i) & (self.ring.size - 1)) as usize * self.entry
    }

    /// The `i`-th ready entry (an address).
    #[inline]
    pub fn addr(&self, i: u32) -> Option<u64> {
        self.ring.map.read(self.slot(i))
    }

    /// The `i`-th ready entry (a descriptor).
    #[inline]
    pub fn desc(&self, i: u32) -> Option<libc::xdp_desc> {
        self.ring.map.read(self.slot(i))
    }

    /// Hands `n` read entries back to the kernel.
    #[inline]
    pub fn release(&mut self, n: u32) {
        if n == 0 {
            return;
        }
        self.cons = self.cons.wrapping_add(n);
        if let Some(c) = self.ring.map.u32_at(self.ring.consumer) {
            c.store(self.cons, Ordering::Release);
        }
    }
}
