//! Memory for large lookup tables: arrays of atomic words in one anonymous
//! mapping, zero-filled and committed page by page as they are first
//! written.
//!
//! A forwarding table sized for a million routes reserves far more than it
//! touches (a 2^24-entry first level, a pool of groups sized for the worst
//! case). Allocating that through `Vec` would write every word up front and
//! commit all of it; a private anonymous mapping is zero already, costs
//! nothing until used, and can ask for transparent huge pages, which take
//! the TLB misses out of random lookups into a 64 MiB array.
//!
//! The words are atomics so that one writer (the control thread) can update
//! a table in place while workers read it.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU32, AtomicU64};

/// Atomic integer types whose all-zero bit pattern is a valid value (zero).
///
/// # Safety
///
/// Implementors must have no invalid bit patterns and no drop glue.
pub unsafe trait ZeroValid: Send + Sync {}

// SAFETY: the atomic integers have the layout of their integer and accept
// every bit pattern; none has drop glue.
unsafe impl ZeroValid for AtomicU8 {}
// SAFETY: as above.
unsafe impl ZeroValid for AtomicU16 {}
// SAFETY: as above.
unsafe impl ZeroValid for AtomicU32 {}
// SAFETY: as above.
unsafe impl ZeroValid for AtomicU64 {}

/// A fixed-length array of zero-initialised atomics in its own mapping.
pub struct AtomicTable<T: ZeroValid> {
    base: NonNull<T>,
    len: usize,
    bytes: usize,
    _own: PhantomData<T>,
}

// SAFETY: the table owns its mapping and hands out only shared references
// to atomics, which are Sync.
unsafe impl<T: ZeroValid> Send for AtomicTable<T> {}
// SAFETY: as above.
unsafe impl<T: ZeroValid> Sync for AtomicTable<T> {}

/// Why a table could not be mapped.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("cannot map a table of {len} entries ({bytes} bytes): errno {errno}")]
pub struct TableError {
    /// Entries asked for.
    pub len: usize,
    /// Bytes that would have been mapped (0 if the size overflowed).
    pub bytes: usize,
    /// What mmap said.
    pub errno: i32,
}

impl<T: ZeroValid> AtomicTable<T> {
    /// Maps `len` zeroed entries. With `huge`, asks the kernel for
    /// transparent huge pages (a hint: it is not an error if it declines).
    pub fn new(len: usize, huge: bool) -> Result<AtomicTable<T>, TableError> {
        let bytes = len.checked_mul(size_of::<T>()).ok_or(TableError {
            len,
            bytes: 0,
            errno: libc::EOVERFLOW,
        })?;
        if bytes == 0 {
            return Ok(AtomicTable {
                base: NonNull::dangling(),
                len: 0,
                bytes: 0,
                _own: PhantomData,
            });
        }
        // SAFETY: an anonymous private mapping with no address hint touches
        // no existing memory. NORESERVE: the table is sized for its worst
        // case and most of it is never written.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(TableError {
                len,
                bytes,
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            });
        }
        if huge {
            // SAFETY: advice on a mapping we own; failure only means no
            // huge pages, which is allowed.
            unsafe { libc::madvise(p, bytes, libc::MADV_HUGEPAGE) };
        }
        let base = NonNull::new(p.cast::<T>()).ok_or(TableError {
            len,
            bytes,
            errno: libc::ENOMEM,
        })?;
        Ok(AtomicTable {
            base,
            len,
            bytes,
            _own: PhantomData,
        })
    }

    /// Bytes of address space the table reserves (not what it commits).
    pub fn reserved_bytes(&self) -> usize {
        self.bytes
    }
}

impl<T: ZeroValid> Deref for AtomicTable<T> {
    type Target = [T];

    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: the mapping holds `len` properly aligned (page-aligned
        // base), zero-initialised values of a type for which zero is valid;
        // it lives as long as `self`. Only shared references are made, and
        // all mutation goes through the atomics.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.len) }
    }
}

impl<T: ZeroValid> Drop for AtomicTable<T> {
    fn drop(&mut self) {
        if self.bytes != 0 {
            // SAFETY: unmaps exactly the mapping made in `new`; no reference
            // into it outlives `self`.
            unsafe { libc::munmap(self.base.as_ptr().cast(), self.bytes) };
        }
    }
}

impl<T: ZeroValid> std::fmt::Debug for AtomicTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicTable")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// Asks the CPU to start loading the cache line holding `r`: a hint that
/// never faults, for code that knows which table entry it will read a few
/// steps later.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: prefetch reads nothing visible and never faults; the
        // address is a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn zeroed_writable_and_large_without_committing() {
        // 4 GiB reserved: must not be committed, or this test would be slow
        // and the machine would notice.
        let t = AtomicTable::<AtomicU32>::new(1 << 30, true).unwrap();
        assert_eq!(t.len(), 1 << 30);
        assert_eq!(t[12345].load(Relaxed), 0);
        t[(1 << 30) - 1].store(7, Relaxed);
        assert_eq!(t[(1 << 30) - 1].load(Relaxed), 7);
        prefetch(&t[99]);
        let e = AtomicTable::<AtomicU64>::new(0, false).unwrap();
        assert!(e.is_empty());
        assert!(AtomicTable::<AtomicU64>::new(usize::MAX / 4, false).is_err());
    }
}
