//! The memory behind the pool: one anonymous mapping, huge pages if possible.

use std::fmt;
use std::ptr::NonNull;

use super::BufError;

/// Whether the pool should use 2 MiB huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HugePages {
    /// Use huge pages when the system has enough free ones, else normal pages.
    #[default]
    Try,
    /// Normal pages only.
    Never,
    /// Fail if huge pages cannot be had.
    Require,
}

/// What the pool's memory ended up being, so `sluice run` can say it in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backing {
    /// The region is backed by 2 MiB huge pages.
    pub huge_pages: bool,
    /// The region is locked in memory (`mlock`).
    pub locked: bool,
    /// Size of the mapping in bytes.
    pub bytes: usize,
    /// Why a preferred option was not had (empty when everything was).
    pub fallbacks: Vec<String>,
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} MiB on {}, {}",
            self.bytes >> 20,
            if self.huge_pages {
                "2 MiB huge pages"
            } else {
                "normal pages"
            },
            if self.locked { "locked" } else { "not locked" }
        )?;
        if !self.fallbacks.is_empty() {
            write!(f, " ({})", self.fallbacks.join("; "))?;
        }
        Ok(())
    }
}

const HUGE_PAGE: usize = 2 << 20;

/// An anonymous private mapping, unmapped on drop.
pub(super) struct Region {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain memory; who may touch which byte is governed
// by packet ownership, not by the region itself.
unsafe impl Send for Region {}
// SAFETY: as above; the region hands out no references by itself.
unsafe impl Sync for Region {}

impl Region {
    pub(super) fn map(
        len: usize,
        huge: HugePages,
        lock: bool,
    ) -> Result<(Region, Backing), BufError> {
        let mut fallbacks = Vec::new();
        let mut region = None;
        if huge != HugePages::Never {
            let hlen = len.div_ceil(HUGE_PAGE) * HUGE_PAGE;
            match Self::mmap(hlen, libc::MAP_HUGETLB | libc::MAP_POPULATE) {
                Ok(r) => region = Some((r, true)),
                Err(e) if huge == HugePages::Require => {
                    return Err(BufError::Map(format!("huge pages required: {e}")));
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
                    fallbacks.push("not enough free 2 MiB huge pages (vm.nr_hugepages)".into());
                }
                Err(e) => fallbacks.push(format!("no huge pages: {e}")),
            }
        }
        let (region, huge_pages) = match region {
            Some(r) => r,
            None => (
                Self::mmap(len, libc::MAP_POPULATE).map_err(|e| BufError::Map(e.to_string()))?,
                false,
            ),
        };
        let mut locked = false;
        if lock {
            // SAFETY: base..base+len is our own live mapping.
            let rc = unsafe { libc::mlock(region.base.as_ptr().cast(), region.len) };
            if rc == 0 {
                locked = true;
            } else {
                let err = std::io::Error::last_os_error();
                fallbacks.push(format!("mlock: {err} (raise `ulimit -l` or run as root)"));
            }
        }
        let backing = Backing {
            huge_pages,
            locked,
            bytes: region.len,
            fallbacks,
        };
        Ok((region, backing))
    }

    fn mmap(len: usize, extra_flags: libc::c_int) -> std::io::Result<Region> {
        // SAFETY: an anonymous private mapping at an address the kernel
        // chooses; it aliases nothing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or_else(|| std::io::Error::other("null map"))?;
        Ok(Region { base, len })
    }

    /// A zero-length stand-in that unmaps nothing; the pool swaps it in
    /// when it must leak the real region.
    pub(super) fn empty() -> Region {
        Region {
            base: NonNull::dangling(),
            len: 0,
        }
    }

    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: we own the mapping, and the pool only drops the region when
        // no packet handle into it can exist any more (see `Shared::drop`).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
