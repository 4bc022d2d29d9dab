//! The guest's memory as the front end announced it (`SET_MEM_TABLE`):
//! each region mapped from the descriptor that came with it, and the two
//! translations the back end needs — guest-physical addresses (in
//! descriptors) and front-end user addresses (in `SET_VRING_ADDR`) to a
//! place in a mapping, every one bounds-checked.
//!
//! A table is checked whole before anything is mapped: one descriptor per
//! region, each a regular file long enough to hold its region at its
//! offset, no address range that wraps, no two regions overlapping in
//! either address space, and at most `max_bytes` in all. A table that
//! fails any check maps nothing, and its descriptors close when the
//! refusal drops them.

use std::os::fd::{AsFd, OwnedFd};

use super::proto::MemRegion;
use crate::sys::unix;
use crate::sys::vhost::GuestRegion;

/// Why a memory table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// Not one descriptor per region.
    #[error("{regions} regions but {fds} descriptors")]
    Fds {
        /// Regions announced.
        regions: usize,
        /// Descriptors that came.
        fds: usize,
    },
    /// A region of no bytes, or whose addresses wrap.
    #[error("region {0}: empty, or its addresses wrap around")]
    Range(usize),
    /// Two regions share addresses.
    #[error("regions {0} and {1} overlap")]
    Overlap(usize, usize),
    /// More memory than the configuration allows.
    #[error("{0} bytes of guest memory, more than allowed")]
    TooLarge(u64),
    /// The descriptor is not a file that holds the region.
    #[error("region {index}: {why}")]
    File {
        /// The region.
        index: usize,
        /// Why.
        why: String,
    },
}

/// One mapped region.
#[derive(Debug)]
struct Region {
    gpa: u64,
    user: u64,
    size: u64,
    /// Where the region starts in the mapping (its `mmap_offset`).
    start: usize,
    map: GuestRegion,
}

/// The guest's memory, mapped. It stays mapped while any ring uses it.
#[derive(Debug)]
pub struct GuestMemory {
    regions: Vec<Region>,
}

/// A place in guest memory: a mapping and an offset in it, with the
/// bytes that follow inside the same region.
pub(crate) struct Place<'a> {
    pub(crate) map: &'a GuestRegion,
    pub(crate) off: usize,
    pub(crate) left: u64,
}

impl GuestMemory {
    /// Checks the table and the descriptors, then maps every region.
    /// `sealed` demands files sealed against shrinking.
    pub fn map(
        table: &[MemRegion],
        fds: Vec<OwnedFd>,
        max_bytes: u64,
        sealed: bool,
    ) -> Result<GuestMemory, MemoryError> {
        if table.len() != fds.len() {
            return Err(MemoryError::Fds {
                regions: table.len(),
                fds: fds.len(),
            });
        }
        let mut total = 0u64;
        for (i, r) in table.iter().enumerate() {
            let ok = r.size > 0
                && r.guest_phys_addr.checked_add(r.size).is_some()
                && r.user_addr.checked_add(r.size).is_some()
                && r.mmap_offset.checked_add(r.size).is_some();
            if !ok {
                return Err(MemoryError::Range(i));
            }
            total = total.saturating_add(r.size);
            for (j, o) in table[..i].iter().enumerate() {
                // Both ranges were checked not to wrap.
                let meet = |a: u64, b: u64| a < b + o.size && b < a + r.size;
                if meet(r.guest_phys_addr, o.guest_phys_addr) || meet(r.user_addr, o.user_addr) {
                    return Err(MemoryError::Overlap(j, i));
                }
            }
        }
        if total > max_bytes {
            return Err(MemoryError::TooLarge(total));
        }
        let mut regions = Vec::with_capacity(table.len());
        for (index, (r, fd)) in table.iter().zip(&fds).enumerate() {
            let bad = |why: String| MemoryError::File { index, why };
            let (len, regular) = unix::file_size(fd.as_fd()).map_err(|e| bad(e.to_string()))?;
            if !regular {
                return Err(bad("not a memory file".into()));
            }
            let end = r.mmap_offset + r.size;
            if len < end {
                return Err(bad(format!(
                    "file holds {len} bytes, the region ends at {end}"
                )));
            }
            if sealed {
                let seals = unix::seals(fd.as_fd()).map_err(|e| bad(e.to_string()))?;
                if seals & libc::F_SEAL_SHRINK == 0 {
                    return Err(bad("memory file not sealed against shrinking".into()));
                }
            }
            let map_len = usize::try_from(end).map_err(|_| bad("too large".into()))?;
            let map = GuestRegion::peer(fd.as_fd(), map_len)
                .map_err(|e| bad(format!("cannot map: {e}")))?;
            regions.push(Region {
                gpa: r.guest_phys_addr,
                user: r.user_addr,
                size: r.size,
                start: r.mmap_offset as usize,
                map,
            });
        }
        // The mappings hold the memory; the descriptors close here.
        drop(fds);
        Ok(GuestMemory { regions })
    }

    /// Regions mapped.
    pub fn regions(&self) -> usize {
        self.regions.len()
    }

    /// Where guest-physical address `gpa` lies: its mapping, offset, and
    /// the bytes left in its region from there.
    #[inline(always)]
    pub(crate) fn place(&self, gpa: u64) -> Option<Place<'_>> {
        for r in &self.regions {
            let d = gpa.wrapping_sub(r.gpa);
            if d < r.size {
                return Some(Place {
                    map: &r.map,
                    off: r.start + d as usize,
                    left: r.size - d,
                });
            }
        }
        None
    }

    /// `len` bytes at `gpa`, if they lie inside one region.
    #[inline(always)]
    pub(crate) fn locate(&self, gpa: u64, len: u64) -> Option<(&GuestRegion, usize)> {
        let p = self.place(gpa)?;
        (len <= p.left).then_some((p.map, p.off))
    }

    /// `len` bytes at guest-physical `gpa`, if they lie inside one
    /// region: the region's index and the offset in its mapping (one
    /// lookup for a buffer, kept while a burst works on it).
    #[inline(always)]
    pub(crate) fn locate_index(&self, gpa: u64, len: u64) -> Option<(u32, usize)> {
        for (i, r) in self.regions.iter().enumerate() {
            let d = gpa.wrapping_sub(r.gpa);
            if d < r.size {
                return (len <= r.size - d).then_some((i as u32, r.start + d as usize));
            }
        }
        None
    }

    /// `len` bytes at front-end user address `addr`, if they lie inside
    /// one region (where the rings must be): the region's index and the
    /// offset in its mapping.
    pub(crate) fn locate_user(&self, addr: u64, len: u64) -> Option<(usize, usize)> {
        self.regions.iter().enumerate().find_map(|(i, r)| {
            let d = addr.wrapping_sub(r.user);
            (d < r.size && len <= r.size - d).then(|| (i, r.start + d as usize))
        })
    }

    /// The mapping of region `index`, an index [`Self::locate_user`]
    /// answered (regions never change for a table's life).
    #[inline(always)]
    pub(crate) fn mapping(&self, index: usize) -> &GuestRegion {
        &self.regions[index].map
    }

    /// Copies `dst.len()` bytes from `gpa` on, across regions that follow
    /// each other in guest-physical space; false if any byte is outside.
    #[inline(always)]
    pub(crate) fn read(&self, mut gpa: u64, dst: &mut [u8]) -> bool {
        let mut done = 0;
        while done < dst.len() {
            let Some(p) = self.place(gpa) else {
                return false;
            };
            let n = (dst.len() - done).min(p.left.min(usize::MAX as u64) as usize);
            if !p.map.copy_out(p.off, &mut dst[done..done + n]) {
                return false;
            }
            done += n;
            gpa += n as u64;
        }
        true
    }

    /// Copies `src` to `gpa` on, across regions; false if any byte is
    /// outside (bytes before it may have been written).
    #[inline(always)]
    pub(crate) fn write(&self, mut gpa: u64, src: &[u8]) -> bool {
        let mut done = 0;
        while done < src.len() {
            let Some(p) = self.place(gpa) else {
                return false;
            };
            let n = (src.len() - done).min(p.left.min(usize::MAX as u64) as usize);
            if !p.map.copy_in(p.off, &src[done..done + n]) {
                return false;
            }
            done += n;
            gpa += n as u64;
        }
        true
    }

    /// Whether all of `gpa..gpa + len` is guest memory.
    pub(crate) fn contains(&self, mut gpa: u64, len: u64) -> bool {
        let mut left = len;
        while left > 0 {
            let Some(p) = self.place(gpa) else {
                return false;
            };
            let n = left.min(p.left);
            left -= n;
            gpa += n;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::unix::sealed_memfd;

    fn region(gpa: u64, size: u64, user: u64, off: u64) -> MemRegion {
        MemRegion {
            guest_phys_addr: gpa,
            size,
            user_addr: user,
            mmap_offset: off,
        }
    }

    fn fd(len: u64) -> OwnedFd {
        sealed_memfd("vhost-mem-test", len).unwrap()
    }

    #[test]
    fn tables_that_lie_are_refused() {
        let map = |t: &[MemRegion], fds: Vec<OwnedFd>| GuestMemory::map(t, fds, 1 << 30, false);
        assert!(matches!(
            map(&[region(0, 4096, 0, 0)], vec![]),
            Err(MemoryError::Fds { .. })
        ));
        assert_eq!(
            map(&[region(0, 0, 0, 0)], vec![fd(4096)]).unwrap_err(),
            MemoryError::Range(0)
        );
        assert_eq!(
            map(&[region(u64::MAX - 10, 4096, 0, 0)], vec![fd(4096)]).unwrap_err(),
            MemoryError::Range(0)
        );
        assert_eq!(
            map(
                &[region(0, 8192, 0, 0), region(4096, 4096, 1 << 20, 0)],
                vec![fd(8192), fd(4096)]
            )
            .unwrap_err(),
            MemoryError::Overlap(0, 1)
        );
        assert_eq!(
            map(
                &[region(0, 4096, 0x1000, 0), region(1 << 20, 4096, 0x1800, 0)],
                vec![fd(4096), fd(4096)]
            )
            .unwrap_err(),
            MemoryError::Overlap(0, 1),
            "user addresses overlap"
        );
        assert!(matches!(
            map(&[region(0, 8192, 0, 0)], vec![fd(4096)]),
            Err(MemoryError::File { index: 0, .. })
        ));
        assert!(
            matches!(
                map(&[region(0, 4096, 0, 4096)], vec![fd(4096)]),
                Err(MemoryError::File { .. })
            ),
            "the offset pushes the region past the file's end"
        );
        assert!(matches!(
            GuestMemory::map(&[region(0, 1 << 20, 0, 0)], vec![fd(1 << 20)], 4096, false),
            Err(MemoryError::TooLarge(_))
        ));
        let pipe = std::fs::File::open("/proc/self/status").unwrap();
        assert!(matches!(
            map(&[region(0, 4096, 0, 0)], vec![pipe.into()]),
            Err(MemoryError::File { .. })
        ));
    }

    #[test]
    fn addresses_translate_inside_regions_only() {
        // Two regions, contiguous in guest-physical space, apart in the
        // front end's; the second starts 4096 bytes into its file.
        let m = GuestMemory::map(
            &[
                region(0x10000, 4096, 0x7000_0000, 0),
                region(0x11000, 4096, 0x9000_0000, 4096),
            ],
            vec![fd(4096), fd(8192)],
            1 << 30,
            true,
        )
        .unwrap();
        assert!(m.locate(0x10000, 4096).is_some());
        assert!(m.locate(0x10ff0, 32).is_none(), "crosses a region's end");
        assert!(m.locate(0xffff, 1).is_none());
        assert!(m.locate(0x12000, 1).is_none());
        assert_eq!(m.locate(0x11000, 1).map(|(_, o)| o), Some(4096));
        assert_eq!(m.locate_user(0x9000_0010, 16), Some((1, 4112)));
        assert!(m.locate_user(0x9000_0010, 4096).is_none());
        assert!(m.locate_user(0x8000_0000, 1).is_none());
        // Reads and writes may cross from one region to the next.
        let data: Vec<u8> = (0..64).collect();
        assert!(m.write(0x10ff0, &data));
        let mut back = [0u8; 64];
        assert!(m.read(0x10ff0, &mut back));
        assert_eq!(&back[..], &data[..]);
        assert!(!m.read(0x11ff0, &mut back), "runs off the last region");
        assert!(m.contains(0x10000, 8192));
        assert!(!m.contains(0x10000, 8193));
    }
}
