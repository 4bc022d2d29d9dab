//! The buffer pool, the packet handle and the per-worker cache.
//!
//! This module holds every `unsafe` block of the crate. The invariants they
//! rest on:
//!
//! 1. A buffer is either in a free list (the pool's or one cache's) or owned
//!    by exactly one [`Packet`] (as the head or as a chained segment), never
//!    both and never two. Only this module creates `Packet`s, and only from
//!    buffers it takes out of a free list.
//! 2. The region outlives every `Packet`: it is unmapped only when the pool
//!    and all caches are gone *and* every buffer is back in the free list;
//!    otherwise it is deliberately leaked.
//! 3. A buffer may also be *lent* to a device ([`Packet::lend`]): then
//!    nobody in the process owns it until the device gives it back and
//!    [`BufCache::reclaim`] makes a `Packet` of it again. Keeping track of
//!    which buffers are lent is the device driver's job.

mod cache;
mod packet;
mod region;

use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

pub use cache::BufCache;
pub use packet::{Meta, Packet, Segments};
use region::Region;
pub use region::{Backing, HugePages};

/// Headroom before the data of a fresh buffer, for encapsulation.
pub const HEADROOM: usize = 128;
/// Data bytes per buffer after the headroom.
pub const DATA_SIZE: usize = 2048;
/// Bytes of the buffer header (pool control fields and [`Meta`]).
const HEADER_SIZE: usize = 128;
/// Distance between two buffers in the region.
const STRIDE: usize = HEADER_SIZE + HEADROOM + DATA_SIZE;

/// Errors of the buffer layer.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BufError {
    /// The memory for the pool could not be mapped.
    #[error("cannot map buffer memory: {0}")]
    Map(String),
    /// A pool must hold between 1 and 2^24 buffers.
    #[error("pool size {0} out of range (1..={max})", max = MAX_BUFFERS)]
    BadSize(u64),
    /// No free buffer was left.
    #[error("buffer pool exhausted")]
    Exhausted,
    /// The operation would move the data outside the buffer.
    #[error("{0} does not fit in the buffer")]
    NoRoom(&'static str),
}

/// The largest pool: 16 Mi buffers, 36 GiB.
pub const MAX_BUFFERS: u32 = 1 << 24;

/// How to build a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Number of buffers.
    pub buffers: u32,
    /// Huge page policy.
    pub huge_pages: HugePages,
    /// Try to `mlock` the region (a failure is reported, not fatal).
    pub lock: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            buffers: 16384,
            huge_pages: HugePages::Try,
            lock: true,
        }
    }
}

/// The pool's memory as a device sees it: buffer `i` starts at byte
/// `i * stride` of the `len` bytes from `base`, and a fresh buffer's data
/// at `data_start` bytes into it (after the header and the headroom).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceLayout {
    /// Address of the first byte (for registering the memory with the kernel).
    pub base: usize,
    /// Bytes from `base` to the end of the last buffer.
    pub len: usize,
    /// Distance between two buffers.
    pub stride: usize,
    /// Offset of a fresh buffer's first data byte from the buffer's start.
    pub data_start: usize,
    /// Number of buffers.
    pub buffers: u32,
}

impl DeviceLayout {
    /// The buffer holding byte `offset` of the region, if any.
    #[inline]
    pub fn buffer_at(&self, offset: u64) -> Option<u32> {
        let i = offset / self.stride as u64;
        (i < u64::from(self.buffers)).then_some(i as u32)
    }
}

/// What a device needs of a buffer lent to it ([`Packet::lend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lent {
    /// The buffer's index, to reclaim it by.
    pub index: u32,
    /// Offset of the buffer's start in the region.
    pub buffer: u64,
    /// Offset of the packet's first data byte in the region.
    pub data: u64,
    /// Bytes of data.
    pub len: u32,
}

/// The buffer header at the start of each buffer. Pool-owned control fields
/// first, then the metadata nodes read and write.
#[repr(C, align(64))]
pub(crate) struct BufHeader {
    /// This buffer's index in the pool.
    index: u32,
    /// Offset of the current data from the start of the packet area
    /// (headroom included).
    data_off: u16,
    /// Bytes of data in this segment.
    len: u16,
    /// Bytes in the whole chain (kept on the head segment only).
    total_len: u32,
    _pad: u32,
    /// Next segment of a chained packet, null at the end.
    next: *mut BufHeader,
    meta: Meta,
}

const _: () = assert!(std::mem::size_of::<BufHeader>() == HEADER_SIZE);
const _: () = assert!(STRIDE.is_multiple_of(64));

/// State shared by the pool handle and every cache.
struct Shared {
    region: Region,
    count: u32,
    /// Indices of free buffers not held by any cache.
    free: Mutex<Vec<u32>>,
    backing: Backing,
}

impl Shared {
    fn lock_free(&self) -> MutexGuard<'_, Vec<u32>> {
        // A poisoned lock means a thread panicked holding it; the Vec itself
        // is still consistent (pushes and pops are atomic w.r.t. panics).
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn header(&self, index: u32) -> NonNull<BufHeader> {
        debug_assert!(index < self.count);
        // SAFETY: index < count, so the offset stays inside the region, and
        // buffers start at multiples of STRIDE (a multiple of 64), which
        // keeps BufHeader's alignment.
        unsafe {
            self.region
                .base()
                .add(index as usize * STRIDE)
                .cast::<BufHeader>()
        }
    }

    /// Whether `hdr` is the start of a buffer of this pool. Guards against a
    /// packet of one pool being freed into another's cache, which would
    /// otherwise hand one buffer to two owners.
    fn owns(&self, hdr: NonNull<BufHeader>) -> bool {
        let base = self.region.base().as_ptr() as usize;
        let p = hdr.as_ptr() as usize;
        p >= base && p < base + self.count as usize * STRIDE && (p - base).is_multiple_of(STRIDE)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let free = self.free.get_mut().map(|v| v.len()).unwrap_or(0);
        if free != self.count as usize {
            // Some packet handle was leaked and may still point into the
            // region: keep the memory mapped rather than risk a dangling
            // handle. The leak is a bug the pool tests are there to catch.
            let region = std::mem::replace(&mut self.region, Region::empty());
            std::mem::forget(region);
        }
    }
}

/// The buffer pool: one region, a free list, and caches for workers.
///
/// Cloning a `Pool` is cheap (a reference count); all clones are the same pool.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("capacity", &self.shared.count)
            .field("free", &self.free_count())
            .field("backing", &self.shared.backing)
            .finish()
    }
}

impl Pool {
    /// Maps the region and puts every buffer on the free list.
    pub fn new(config: &PoolConfig) -> Result<Pool, BufError> {
        if config.buffers == 0 || config.buffers > MAX_BUFFERS {
            return Err(BufError::BadSize(config.buffers.into()));
        }
        let bytes = config.buffers as usize * STRIDE;
        let (region, backing) = Region::map(bytes, config.huge_pages, config.lock)?;
        let count = config.buffers;
        let shared = Shared {
            region,
            count,
            // Reversed so that the first allocations get the lowest indices,
            // which keeps small runs in few pages.
            free: Mutex::new((0..count).rev().collect()),
            backing,
        };
        for i in 0..count {
            let hdr = shared.header(i);
            // SAFETY: the header lies inside the region, is aligned, and no
            // packet exists yet, so nobody else can see it.
            unsafe {
                hdr.as_ptr().write(BufHeader {
                    index: i,
                    data_off: HEADROOM as u16,
                    len: 0,
                    total_len: 0,
                    _pad: 0,
                    next: std::ptr::null_mut(),
                    meta: Meta::default(),
                });
            }
        }
        Ok(Pool {
            shared: Arc::new(shared),
        })
    }

    /// Number of buffers in the pool.
    pub fn capacity(&self) -> u32 {
        self.shared.count
    }

    /// Buffers on the pool's free list (not counting those held in caches).
    /// After every cache is flushed or dropped, this equals [`Pool::capacity`]
    /// unless a packet leaked.
    pub fn free_count(&self) -> u32 {
        self.shared.lock_free().len() as u32
    }

    /// What the memory is (huge pages, locked) and why, if less than asked.
    pub fn backing(&self) -> &Backing {
        &self.shared.backing
    }

    /// Where the buffers lie in the pool's memory, for a device that
    /// addresses them by offset (AF_XDP UMEM, memif regions).
    pub fn device_layout(&self) -> DeviceLayout {
        DeviceLayout {
            base: self.shared.region.base().as_ptr() as usize,
            len: self.shared.count as usize * STRIDE,
            stride: STRIDE,
            data_start: HEADER_SIZE + HEADROOM,
            buffers: self.shared.count,
        }
    }

    /// A cache for one worker, refilled from and spilled to the pool in
    /// batches of `batch` buffers.
    pub fn cache(&self, batch: usize) -> BufCache {
        BufCache::new(self.clone(), batch)
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }
}
