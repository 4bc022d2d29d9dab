//! Per-worker buffer cache: the only way packets are made and freed.

use std::ptr::NonNull;

use super::{BufError, BufHeader, DATA_SIZE, Packet, Pool};

/// A worker's stock of free buffers.
///
/// Allocation and free touch only this cache; the pool's lock is taken once
/// per `batch` buffers to refill or spill. Dropping the cache returns its
/// buffers to the pool.
pub struct BufCache {
    pool: Pool,
    free: Vec<NonNull<BufHeader>>,
    batch: usize,
}

// SAFETY: the cached buffers are free (owned by nobody); the cache may move
// to the worker thread that will use it.
unsafe impl Send for BufCache {}

impl std::fmt::Debug for BufCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufCache")
            .field("cached", &self.free.len())
            .field("batch", &self.batch)
            .finish()
    }
}

impl BufCache {
    pub(super) fn new(pool: Pool, batch: usize) -> BufCache {
        let batch = batch.clamp(1, 4096);
        BufCache {
            pool,
            free: Vec::with_capacity(batch * 3),
            batch,
        }
    }

    /// The pool behind this cache.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Buffers held by this cache.
    pub fn cached(&self) -> usize {
        self.free.len()
    }

    fn refill(&mut self, want: usize) {
        let shared = self.pool.shared();
        let mut free = shared.lock_free();
        let n = want.max(self.batch).min(free.len());
        let from = free.len() - n;
        self.free
            .extend(free.drain(from..).map(|i| shared.header(i)));
    }

    fn spill(&mut self, keep: usize) {
        if self.free.len() <= keep {
            return;
        }
        let mut free = self.pool.shared().lock_free();
        let from = keep;
        // SAFETY: every pointer in the cache is a header of this pool.
        free.extend(self.free.drain(from..).map(|h| unsafe { h.as_ref().index }));
    }

    /// One empty buffer, or `None` when the pool is exhausted.
    #[inline]
    pub fn alloc(&mut self) -> Option<Packet> {
        if self.free.is_empty() {
            self.refill(self.batch);
        }
        let hdr = self.free.pop()?;
        Packet::reset(hdr);
        // SAFETY: the buffer just left the free list, so nobody owns it.
        Some(unsafe { Packet::from_header(hdr) })
    }

    /// Takes back a buffer lent to a device as an empty packet (data at
    /// the default headroom, length 0, metadata cleared); the caller sets
    /// the length the device wrote. `None` for an index outside the pool.
    ///
    /// # Safety
    /// Buffer `index` must have been lent with [`Packet::lend`] and not
    /// reclaimed since, and the device must be done reading and writing it.
    pub unsafe fn reclaim(&mut self, index: u32) -> Option<Packet> {
        let shared = self.pool.shared();
        if index >= shared.count {
            return None;
        }
        let hdr = shared.header(index);
        Packet::reset(hdr);
        // SAFETY: the caller vouches that the buffer was lent and is back,
        // so nobody owns it (invariant 3).
        Some(unsafe { Packet::from_header(hdr) })
    }

    /// Up to `n` empty buffers appended to `out`; returns how many.
    pub fn alloc_bulk(&mut self, n: usize, out: &mut Vec<Packet>) -> usize {
        if self.free.len() < n {
            self.refill(n - self.free.len());
        }
        let n = n.min(self.free.len());
        let from = self.free.len() - n;
        out.extend(self.free.drain(from..).rev().map(|hdr| {
            Packet::reset(hdr);
            // SAFETY: each buffer just left the free list.
            unsafe { Packet::from_header(hdr) }
        }));
        n
    }

    /// A packet holding a copy of `bytes`, chained over as many buffers as
    /// it needs (jumbo frames).
    pub fn alloc_from(&mut self, bytes: &[u8]) -> Result<Packet, BufError> {
        if u32::try_from(bytes.len()).is_err() {
            return Err(BufError::NoRoom("packet of 4 GiB or more"));
        }
        let mut chunks = bytes.chunks(DATA_SIZE);
        let first = chunks.next().unwrap_or(&[]);
        let mut head = self.alloc().ok_or(BufError::Exhausted)?;
        // A fresh buffer holds DATA_SIZE bytes after its headroom, and no
        // chunk is longer, so the copies and set_len cannot fail.
        head.room_mut()[..first.len()].copy_from_slice(first);
        if let Err(e) = head.set_len(first.len()) {
            self.free(head);
            return Err(e);
        }
        for chunk in chunks {
            let Some(mut seg) = self.alloc() else {
                self.free(head);
                return Err(BufError::Exhausted);
            };
            seg.room_mut()[..chunk.len()].copy_from_slice(chunk);
            if let Err(e) = seg.set_len(chunk.len()) {
                self.free(seg);
                self.free(head);
                return Err(e);
            }
            head.chain(seg);
        }
        Ok(head)
    }

    /// Gives a packet (all its segments) back.
    #[inline]
    pub fn free(&mut self, packet: Packet) {
        let mut hdr = Some(packet.into_header());
        while let Some(h) = hdr {
            // A foreign buffer here would end up with two owners; this is a
            // programming error (two pools mixed up), never input-driven.
            assert!(
                self.pool.shared().owns(h),
                "packet freed into a cache of another pool"
            );
            hdr = Packet::next_segment(h);
            self.free.push(h);
        }
        if self.free.len() >= self.batch * 3 {
            self.spill(self.batch);
        }
    }

    /// Gives back every packet of `packets`, leaving it empty.
    pub fn free_all(&mut self, packets: &mut Vec<Packet>) {
        for p in packets.drain(..) {
            self.free(p);
        }
    }

    /// Returns every cached buffer to the pool.
    pub fn flush(&mut self) {
        self.spill(0);
    }
}

impl Drop for BufCache {
    fn drop(&mut self) {
        self.flush();
    }
}
