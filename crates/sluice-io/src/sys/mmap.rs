//! Memory shared with the kernel: the rings of AF_XDP and AF_PACKET sockets.
//!
//! The kernel writes these pages while we read them, so no Rust reference
//! to their bytes is ever made: producer and consumer words are read and
//! written as atomics (the ordering the ring protocols rely on), and
//! descriptors and frame bytes are copied in and out through raw pointers,
//! after the atomic that publishes them. Every access is bounds-checked
//! against the mapping and answers `None` when out of range, so a bad
//! offset from a ring is a counted drop, not a wild read.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64};

use super::Pod;

/// A shared mapping of a socket's ring memory, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; every access below goes
// through atomics or raw copies, never through references that could alias.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset`, shared and populated (a
    /// socket's rings: small, and touched at once).
    pub fn shared(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Mapping> {
        Mapping::with_flags(fd, len, offset, libc::MAP_POPULATE)
    }

    /// Maps the first `len` bytes of a peer's memory file (a memif
    /// region), shared but not populated: faulting a peer's pages in up
    /// front would let a peer that announces a large, sparse region make
    /// Sluice allocate it. The caller has checked the file is that long.
    pub fn peer(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        Mapping::with_flags(fd, len, 0, 0)
    }

    fn with_flags(
        fd: BorrowedFd<'_>,
        len: usize,
        offset: u64,
        flags: libc::c_int,
    ) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::other("empty shared mapping"));
        }
        // SAFETY: a fresh mapping chosen by the kernel; it aliases nothing of ours.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | flags,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { base, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, once made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn ptr(&self, off: usize, size: usize, align: usize) -> Option<*mut u8> {
        let end = off.checked_add(size)?;
        if end > self.len || !(self.base.as_ptr() as usize + off).is_multiple_of(align) {
            return None;
        }
        // SAFETY: `off + size <= len`, so the result stays inside the mapping.
        Some(unsafe { self.base.as_ptr().add(off) })
    }

    /// The 16-bit word at `off`, as an atomic (memif head, tail, flags).
    #[inline(always)]
    pub fn u16_at(&self, off: usize) -> Option<&AtomicU16> {
        let p = self.ptr(off, 2, 2)?;
        // SAFETY: in bounds and aligned; the word lives as long as `self`,
        // and shared memory is only ever touched atomically at this offset.
        Some(unsafe { AtomicU16::from_ptr(p.cast()) })
    }

    /// The 32-bit word at `off`, as an atomic (ring producer and consumer).
    #[inline(always)]
    pub fn u32_at(&self, off: usize) -> Option<&AtomicU32> {
        let p = self.ptr(off, 4, 4)?;
        // SAFETY: in bounds and aligned; the word lives as long as `self`,
        // and shared memory is only ever touched atomically at this offset.
        Some(unsafe { AtomicU32::from_ptr(p.cast()) })
    }

    /// The 64-bit word at `off`, as an atomic (ring producer and consumer).
    #[inline(always)]
    pub fn u64_at(&self, off: usize) -> Option<&AtomicU64> {
        let p = self.ptr(off, 8, 8)?;
        // SAFETY: as in `u32_at`.
        Some(unsafe { AtomicU64::from_ptr(p.cast()) })
    }

    /// Reads a plain-data value (a descriptor, a frame header) at `off`.
    #[inline(always)]
    pub fn read<T: Pod>(&self, off: usize) -> Option<T> {
        let p = self.ptr(off, size_of::<T>(), 1)?;
        // SAFETY: in bounds; unaligned read of a type valid for any bits.
        Some(unsafe { p.cast::<T>().read_unaligned() })
    }

    /// Writes a plain-data value at `off`. Returns false when out of bounds.
    #[inline(always)]
    pub fn write<T: Pod>(&self, off: usize, value: T) -> bool {
        match self.ptr(off, size_of::<T>(), 1) {
            // SAFETY: in bounds; the slot belongs to us until published.
            Some(p) => unsafe {
                p.cast::<T>().write_unaligned(value);
                true
            },
            None => false,
        }
    }

    /// Copies `dst.len()` bytes at `off` out of the mapping.
    #[inline(always)]
    pub fn copy_out(&self, off: usize, dst: &mut [u8]) -> bool {
        match self.ptr(off, dst.len(), 1) {
            // SAFETY: in bounds; `dst` is ours and cannot overlap the mapping.
            Some(p) => unsafe {
                std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len());
                true
            },
            None => false,
        }
    }

    /// Copies `src` into the mapping at `off`.
    #[inline(always)]
    pub fn copy_in(&self, off: usize, src: &[u8]) -> bool {
        match self.ptr(off, src.len(), 1) {
            // SAFETY: in bounds; the slot belongs to us until published.
            Some(p) => unsafe {
                std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len());
                true
            },
            None => false,
        }
    }

    /// Asks the CPU to start loading the line at `off` (a hint, never a fault).
    #[inline(always)]
    pub fn prefetch(&self, off: usize) {
        #[cfg(target_arch = "x86_64")]
        if off < self.len {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            // SAFETY: prefetch never faults; the address is inside the mapping.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(self.base.as_ptr().add(off).cast()) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing borrows it past `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

// SAFETY: a repr(C) struct of integers (AF_XDP ring descriptor).
unsafe impl Pod for libc::xdp_desc {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for u64 {}
// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for u16 {}
// SAFETY: a repr(C) struct of integers (AF_PACKET v3 block header).
unsafe impl Pod for libc::tpacket_block_desc {}
// SAFETY: a repr(C) struct of integers (AF_PACKET v3 frame header).
unsafe impl Pod for libc::tpacket3_hdr {}
