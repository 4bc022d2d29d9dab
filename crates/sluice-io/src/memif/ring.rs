//! A connection's mapped regions and its rings, as the server sees them.
//!
//! A ring lives in one of the client's regions; its descriptors name
//! buffers in any region. Everything here reads values the client may
//! change at any moment, so each is read once into a local, then checked:
//! a region index past the last region, or a buffer running past its
//! region's end, is `None` here and a counted drop above.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::proto::{self, ring as layout};
use crate::sys::memif::{MemifDesc, SharedRegion};

/// The client's regions of one connection, mapped. They stay mapped while
/// any ring of the connection is in use, whatever the client does.
#[derive(Debug)]
pub(crate) struct Regions(pub(crate) Vec<SharedRegion>);

impl Regions {
    /// The buffer a descriptor names: its region and offset, if all of
    /// `offset..offset + len` lies inside the region and `len` is not 0.
    #[inline(always)]
    pub(crate) fn locate(
        &self,
        region: u16,
        offset: u32,
        len: u32,
    ) -> Option<(&SharedRegion, usize)> {
        let r = self.0.get(region as usize)?;
        let end = (offset as u64).checked_add(len as u64)?;
        (len > 0 && end <= r.len() as u64).then_some((r, offset as usize))
    }
}

/// One ring of a connection, with its interrupt eventfd.
#[derive(Debug)]
pub(crate) struct Ring {
    regions: Arc<Regions>,
    region: usize,
    /// Offset of the ring header in its region.
    base: usize,
    /// Descriptors: a power of two, at most 2^14.
    size: u16,
    eventfd: OwnedFd,
}

/// Why a ring was refused at connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RingError {
    #[error("ring names region {0}, which was not added")]
    NoRegion(u16),
    #[error("ring runs past the end of its region")]
    OutOfRegion,
    #[error("ring is not aligned to 4 bytes")]
    Misaligned,
    #[error("ring has a wrong cookie")]
    Cookie,
}

impl Ring {
    /// Checks that the ring lies inside its region, aligned, with the
    /// memif cookie, and wraps it.
    pub(crate) fn new(
        regions: Arc<Regions>,
        region: u16,
        offset: u32,
        log2_size: u8,
        eventfd: OwnedFd,
    ) -> Result<Ring, RingError> {
        let r = regions
            .0
            .get(region as usize)
            .ok_or(RingError::NoRegion(region))?;
        let base = offset as usize;
        let end = base
            .checked_add(layout::bytes(log2_size))
            .ok_or(RingError::OutOfRegion)?;
        if end > r.len() {
            return Err(RingError::OutOfRegion);
        }
        // What the atomics need. Not 64: with 2-descriptor rings (DPDK's
        // rsize=1) a ring is 160 bytes, and the next one starts off a line.
        if !base.is_multiple_of(4) {
            return Err(RingError::Misaligned);
        }
        let cookie = r
            .u32_at(base + layout::COOKIE)
            .map(|c| c.load(Ordering::Acquire));
        if cookie != Some(proto::COOKIE) {
            return Err(RingError::Cookie);
        }
        Ok(Ring {
            region: region as usize,
            base,
            size: 1 << log2_size,
            eventfd,
            regions,
        })
    }

    /// The regions the descriptors point into.
    #[inline(always)]
    pub(crate) fn regions(&self) -> &Regions {
        &self.regions
    }

    #[inline(always)]
    fn mem(&self) -> &SharedRegion {
        // Checked in `new`, and regions never change for a connection.
        &self.regions.0[self.region]
    }

    /// Descriptors in the ring.
    #[inline(always)]
    pub(crate) fn size(&self) -> u16 {
        self.size
    }

    /// The client's `head`, read with acquire: descriptors before it are
    /// published.
    #[inline(always)]
    pub(crate) fn head(&self) -> u16 {
        self.mem()
            .u16_at(self.base + layout::HEAD)
            .map_or(0, |h| h.load(Ordering::Acquire))
    }

    /// The server's `tail` as stored.
    pub(crate) fn tail(&self) -> u16 {
        self.mem()
            .u16_at(self.base + layout::TAIL)
            .map_or(0, |t| t.load(Ordering::Acquire))
    }

    /// Publishes the server's `tail` with release: the descriptors (and
    /// buffers) before it are handed back.
    #[inline(always)]
    pub(crate) fn set_tail(&self, tail: u16) {
        if let Some(t) = self.mem().u16_at(self.base + layout::TAIL) {
            t.store(tail, Ordering::Release);
        }
    }

    /// The ring's flags, read after a full fence: it orders a `tail`
    /// just published before this read, so that a consumer that unmasks
    /// and then looks at `tail` either sees the packets or gets a kick.
    #[inline(always)]
    pub(crate) fn flags_after_publish(&self) -> u16 {
        std::sync::atomic::fence(Ordering::SeqCst);
        self.flags()
    }

    /// The ring's flags.
    #[inline(always)]
    fn flags(&self) -> u16 {
        self.mem()
            .u16_at(self.base + layout::FLAGS)
            .map_or(0, |f| f.load(Ordering::Relaxed))
    }

    /// Sets or clears `MASK_INT` (the consumer's word that it polls).
    /// A full fence after unmasking orders it before the next read of
    /// `head`, so a packet published meanwhile is seen or kicked.
    pub(crate) fn mask_interrupts(&self, mask: bool) {
        if let Some(f) = self.mem().u16_at(self.base + layout::FLAGS) {
            if mask {
                f.fetch_or(proto::RING_FLAG_MASK_INT, Ordering::Relaxed);
            } else {
                f.fetch_and(!proto::RING_FLAG_MASK_INT, Ordering::SeqCst);
            }
        }
    }

    #[inline(always)]
    fn desc_offset(&self, slot: u16) -> usize {
        self.base + layout::DESC + (slot & (self.size - 1)) as usize * layout::DESC_SIZE
    }

    /// The descriptor of free-running index `slot`.
    #[inline(always)]
    pub(crate) fn desc(&self, slot: u16) -> MemifDesc {
        // In bounds (checked in `new`), so the default never shows.
        self.mem().read(self.desc_offset(slot)).unwrap_or_default()
    }

    /// Writes the descriptor of free-running index `slot`.
    #[inline(always)]
    pub(crate) fn set_desc(&self, slot: u16, desc: MemifDesc) {
        self.mem().write(self.desc_offset(slot), desc);
    }

    /// Starts loading the descriptor of `slot`.
    #[inline(always)]
    pub(crate) fn prefetch_desc(&self, slot: u16) {
        self.mem().prefetch(self.desc_offset(slot));
    }

    /// The interrupt eventfd.
    pub(crate) fn eventfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.eventfd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::sys::unix::{eventfd, sealed_memfd};

    fn region(len: usize) -> (OwnedFd, SharedRegion) {
        let fd = sealed_memfd("ring-test", len as u64).unwrap();
        let mem = SharedRegion::peer(fd.as_fd(), len).unwrap();
        (fd, mem)
    }

    #[test]
    fn locate_keeps_every_buffer_inside_its_region() {
        let (_fd, mem) = region(4096);
        let regions = Regions(vec![mem]);
        assert!(regions.locate(0, 0, 4096).is_some());
        assert!(regions.locate(0, 4000, 96).is_some());
        assert!(
            regions.locate(0, 4000, 97).is_none(),
            "one byte past the end"
        );
        assert!(regions.locate(0, 0, 0).is_none(), "empty buffer");
        assert!(regions.locate(1, 0, 1).is_none(), "no such region");
        assert!(
            regions.locate(0, u32::MAX, u32::MAX).is_none(),
            "offset + length overflows 32 bits"
        );
    }

    #[test]
    fn rings_are_refused_outside_misaligned_or_without_cookie() {
        let (_fd, mem) = region(4096);
        mem.u32_at(0)
            .unwrap()
            .store(proto::COOKIE, Ordering::Relaxed);
        let regions = Arc::new(Regions(vec![mem]));
        let ring = |region, offset, log2| {
            Ring::new(regions.clone(), region, offset, log2, eventfd().unwrap()).map(|_| ())
        };
        // 128 + 16 * 2^8 = 4224 bytes: one more than the region.
        assert_eq!(ring(0, 0, 8), Err(RingError::OutOfRegion));
        assert_eq!(ring(0, u32::MAX, 1), Err(RingError::OutOfRegion));
        assert_eq!(ring(1, 0, 1), Err(RingError::NoRegion(1)));
        assert_eq!(ring(0, 2, 1), Err(RingError::Misaligned));
        assert_eq!(ring(0, 256, 1), Err(RingError::Cookie));
        assert_eq!(ring(0, 0, 7), Ok(()));
    }
}
