//! A memif peer's memory region, mapped shared: the rings and packet
//! buffers another process writes while Sluice reads them.
//!
//! Like [`super::mmap::Mapping`], no Rust reference to these bytes is ever
//! made: ring words are atomics (memif's `head`, `tail` and `flags` are
//! 16-bit, which is why this is a type of its own), descriptors and packet
//! bytes are copied through raw pointers, and every access is checked
//! against the mapping's length. Whatever the peer writes, Sluice reads
//! and writes only inside the region.
//!
//! The one thing bounds checks cannot stop is the file under the mapping
//! shrinking (pages past its end fault with `SIGBUS`); the memif code maps
//! only files sealed against shrinking, or files the configuration trusts.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, AtomicU32};

use super::Pod;

/// One memif descriptor as it lies in a ring: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct MemifDesc {
    /// `NEXT` (1): the packet continues in the next slot.
    pub flags: u16,
    /// The region the buffer lies in.
    pub region: u16,
    /// Bytes of packet (or, on a ring the peer posts empty buffers to,
    /// the buffer's capacity).
    pub length: u32,
    /// The buffer's offset from the start of its region.
    pub offset: u32,
    /// Unused by Ethernet mode.
    pub metadata: u32,
}

// SAFETY: a repr(C) struct of integers with no padding (2+2+4+4+4 bytes).
unsafe impl Pod for MemifDesc {}

/// A peer's region mapped shared, unmapped on drop.
#[derive(Debug)]
pub struct SharedRegion {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: shared memory touched only through atomics and raw copies.
unsafe impl Send for SharedRegion {}
// SAFETY: as above.
unsafe impl Sync for SharedRegion {}

impl SharedRegion {
    /// Maps the first `len` bytes of `fd`, readable and writable, shared.
    /// The caller has checked that the file is at least `len` long.
    ///
    /// Not populated: the pages belong to the peer's file, and faulting
    /// them all in up front would let a peer that announces a large,
    /// sparse region make Sluice allocate it.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<SharedRegion> {
        if len == 0 {
            return Err(io::Error::other("empty region"));
        }
        // SAFETY: a fresh mapping chosen by the kernel; it aliases nothing of ours.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(SharedRegion { base, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty (never, once mapped).
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

    /// The 16-bit word at `off`, as an atomic (ring head, tail, flags).
    #[inline(always)]
    pub fn u16_at(&self, off: usize) -> Option<&AtomicU16> {
        let p = self.ptr(off, 2, 2)?;
        // SAFETY: in bounds and aligned; lives as long as `self`; this
        // offset is only ever touched atomically by this process.
        Some(unsafe { AtomicU16::from_ptr(p.cast()) })
    }

    /// The 32-bit word at `off`, as an atomic (ring cookie).
    #[inline(always)]
    pub fn u32_at(&self, off: usize) -> Option<&AtomicU32> {
        let p = self.ptr(off, 4, 4)?;
        // SAFETY: as in `u16_at`.
        Some(unsafe { AtomicU32::from_ptr(p.cast()) })
    }

    /// Reads a plain-data value (a descriptor) at `off`.
    #[inline(always)]
    pub fn read<T: Pod>(&self, off: usize) -> Option<T> {
        let p = self.ptr(off, size_of::<T>(), 1)?;
        // SAFETY: in bounds; unaligned read of a type valid for any bits.
        Some(unsafe { p.cast::<T>().read_unaligned() })
    }

    /// Writes a plain-data value at `off`. False when out of bounds.
    #[inline(always)]
    pub fn write<T: Pod>(&self, off: usize, value: T) -> bool {
        match self.ptr(off, size_of::<T>(), 1) {
            // SAFETY: in bounds; plain bytes of shared memory.
            Some(p) => unsafe {
                p.cast::<T>().write_unaligned(value);
                true
            },
            None => false,
        }
    }

    /// Copies `dst.len()` bytes at `off` out of the region.
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

    /// Copies `src` into the region at `off`.
    #[inline(always)]
    pub fn copy_in(&self, off: usize, src: &[u8]) -> bool {
        match self.ptr(off, src.len(), 1) {
            // SAFETY: in bounds; `src` is ours and cannot overlap the mapping.
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

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing borrows it past `self`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}
