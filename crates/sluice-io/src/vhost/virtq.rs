//! A split virtqueue (virtio 1.x, 2.6) seen from the device: the
//! descriptor table, the available ring the driver fills and the used
//! ring the device fills, all in guest memory.
//!
//! The three parts must each lie inside one region, aligned as the spec
//! demands (16, 2 and 4 bytes), or the ring is refused when it starts.
//! After that every value read from them is the guest's to choose, so each
//! is read once and checked: a head or `next` index past the ring, a
//! chain longer than the ring (a loop), a buffer outside guest memory, an
//! indirect table that is empty, unaligned, nested or chained, a buffer
//! of the wrong direction, a frame too long: each is a [`ChainError`], and
//! the chain is not followed past it.

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

use super::memory::GuestMemory;
use super::proto::VringAddr;
use crate::sys::vhost::{GuestRegion, VirtqDesc, VirtqUsedElem};

/// Descriptor flag: the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (a receive buffer).
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors.
pub const DESC_F_INDIRECT: u16 = 4;
/// Available-ring flag: the driver wants no interrupt (without EVENT_IDX).
pub const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Used-ring flag: the device wants no kick (without EVENT_IDX).
pub const USED_F_NO_NOTIFY: u16 = 1;
/// Largest ring the spec allows.
pub const MAX_QUEUE_SIZE: u32 = 32768;
/// Most entries of an indirect table.
pub const MAX_INDIRECT: u32 = 1024;

/// Why a ring cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// A size that is not a power of two in 1..=32768.
    #[error("ring size {0} is not a power of two up to 32768")]
    Size(u32),
    /// A part of the ring not inside one region.
    #[error("ring {0} table lies outside guest memory")]
    Outside(&'static str),
    /// A part of the ring not aligned as the spec demands.
    #[error("ring {0} table is misaligned")]
    Misaligned(&'static str),
}

/// Why a chain was not followed; each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// The available ring names a head past the descriptor table.
    BadHead,
    /// A `next` past the table it indexes.
    BadNext,
    /// More descriptors than the table holds: the chain loops.
    Loop,
    /// A buffer (or an indirect table) outside guest memory.
    OutOfMemory,
    /// An indirect table that is empty, ragged, too large, nested, or
    /// has `NEXT` set, or indirect descriptors not negotiated.
    BadIndirect,
    /// A buffer the device should write in a chain it reads, or the
    /// reverse.
    WrongDirection,
    /// More bytes than a frame may have.
    TooLong,
    /// Fewer bytes than the virtio-net header.
    TooShort,
}

#[derive(Debug, Clone, Copy)]
struct Loc {
    region: usize,
    off: usize,
}

/// A started ring's parts, located in guest memory.
#[derive(Debug)]
pub(crate) struct SplitRing {
    mem: Arc<GuestMemory>,
    size: u16,
    desc: Loc,
    avail: Loc,
    used: Loc,
    event_idx: bool,
    indirect: bool,
}

impl SplitRing {
    /// Locates the ring of `size` entries at `addr` (front-end user
    /// addresses) in `mem`.
    pub(crate) fn new(
        mem: Arc<GuestMemory>,
        size: u32,
        addr: &VringAddr,
        event_idx: bool,
        indirect: bool,
    ) -> Result<SplitRing, RingError> {
        if size == 0 || size > MAX_QUEUE_SIZE || !size.is_power_of_two() {
            return Err(RingError::Size(size));
        }
        let n = size as u64;
        let part = |what, addr: u64, len: u64, align: u64| {
            if !addr.is_multiple_of(align) {
                return Err(RingError::Misaligned(what));
            }
            let (region, off) = mem.locate_user(addr, len).ok_or(RingError::Outside(what))?;
            // The mapping is page-aligned, so the offset's alignment is
            // the address's in memory too.
            if !(off as u64).is_multiple_of(align) {
                return Err(RingError::Misaligned(what));
            }
            Ok(Loc { region, off })
        };
        // With or without EVENT_IDX, the trailing event word is counted,
        // so that it may always be read and written.
        let desc = part("descriptor", addr.desc, 16 * n, 16)?;
        let avail = part("available", addr.avail, 6 + 2 * n, 2)?;
        let used = part("used", addr.used, 6 + 8 * n, 4)?;
        Ok(SplitRing {
            mem,
            size: size as u16,
            desc,
            avail,
            used,
            event_idx,
            indirect,
        })
    }

    /// The guest memory the ring and its buffers are in.
    #[inline(always)]
    pub(crate) fn memory(&self) -> &GuestMemory {
        &self.mem
    }

    #[inline(always)]
    fn mask(&self) -> u16 {
        self.size.wrapping_sub(1)
    }

    /// Entries in the ring (a power of two, 1..=32768).
    #[inline(always)]
    pub(crate) fn entries(&self) -> u32 {
        self.size as u32
    }

    #[inline(always)]
    fn map(&self, l: Loc) -> &GuestRegion {
        self.mem.mapping(l.region)
    }

    /// The driver's `avail.idx`, read with acquire: entries before it
    /// (and the descriptors they name) are published.
    #[inline(always)]
    pub(crate) fn avail_idx(&self) -> u16 {
        self.map(self.avail)
            .u16_at(self.avail.off + 2)
            .map_or(0, |a| a.load(Ordering::Acquire))
    }

    /// The head index in available-ring slot `i` (free-running).
    #[inline(always)]
    pub(crate) fn avail_entry(&self, i: u16) -> u16 {
        let off = self.avail.off + 4 + 2 * (i & self.mask()) as usize;
        self.map(self.avail).read::<u16>(off).unwrap_or(u16::MAX)
    }

    /// Descriptor `i` of the table (`i` checked by the caller).
    #[inline(always)]
    fn desc(&self, i: u16) -> VirtqDesc {
        self.map(self.desc)
            .read(self.desc.off + 16 * i as usize)
            .unwrap_or_default()
    }

    /// Starts loading the descriptor of chain head `head`.
    #[inline(always)]
    pub(crate) fn prefetch_desc(&self, head: u16) {
        self.map(self.desc)
            .prefetch(self.desc.off + 16 * (head & self.mask()) as usize);
    }

    /// The one buffer of the chain at `head` as (guest address, length),
    /// when the chain is exactly one descriptor the device may `writable`
    /// or read (no `NEXT`, no `INDIRECT`): the common case the fast paths
    /// take. `None` for a head past the ring or any other chain, which
    /// [`Self::chain`] then follows and checks.
    #[inline(always)]
    pub(crate) fn single(&self, head: u16, writable: bool) -> Option<(u64, u32)> {
        if head > self.mask() {
            return None;
        }
        let d = self.desc(head);
        let want = if writable { DESC_F_WRITE } else { 0 };
        (d.flags == want).then_some((d.addr, d.len))
    }

    /// The `used.idx` in memory (where a ring starts from after a
    /// restart).
    pub(crate) fn used_idx(&self) -> u16 {
        self.map(self.used)
            .u16_at(self.used.off + 2)
            .map_or(0, |u| u.load(Ordering::Acquire))
    }

    /// Writes used-ring slot `i` (free-running).
    #[inline(always)]
    pub(crate) fn set_used(&self, i: u16, id: u16, len: u32) {
        let off = self.used.off + 4 + 8 * (i & self.mask()) as usize;
        self.map(self.used)
            .write(off, VirtqUsedElem { id: id as u32, len });
    }

    /// Publishes `used.idx` with release: the used entries before it, and
    /// the bytes written into their buffers, are the driver's again.
    #[inline(always)]
    pub(crate) fn publish_used(&self, idx: u16) {
        if let Some(u) = self.map(self.used).u16_at(self.used.off + 2) {
            u.store(idx, Ordering::Release);
        }
    }

    /// Whether the driver wants an interrupt now that `used.idx` went from
    /// `old` to `new`: its `used_event` was crossed (EVENT_IDX), or it
    /// did not set `NO_INTERRUPT`. The full fence orders the index just
    /// published before this read, so that a driver that re-enables
    /// interrupts and then looks at `used.idx` either sees the entries or
    /// is interrupted.
    #[inline(always)]
    pub(crate) fn needs_interrupt(&self, old: u16, new: u16) -> bool {
        fence(Ordering::SeqCst);
        let m = self.map(self.avail);
        if self.event_idx {
            let event_off = self.avail.off + 4 + 2 * self.entries() as usize;
            let event = m.read::<u16>(event_off).unwrap_or(new.wrapping_sub(1));
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            m.u16_at(self.avail.off)
                .is_some_and(|f| f.load(Ordering::Relaxed) & AVAIL_F_NO_INTERRUPT == 0)
        }
    }

    /// Asks the driver for kicks (`true`: from available index `at` on)
    /// or for none. With EVENT_IDX the device's `avail_event` says where;
    /// without, `USED_F_NO_NOTIFY`. A full fence after asking orders it
    /// before the next read of `avail.idx`.
    pub(crate) fn want_kicks(&self, yes: bool, at: u16) {
        let m = self.map(self.used);
        if self.event_idx {
            if yes {
                let off = self.used.off + 4 + 8 * self.entries() as usize;
                m.write(off, at);
            }
            // Not asked for: `avail_event` stays where it was, behind
            // the driver, so it kicks again only after the index wraps.
        } else if let Some(f) = m.u16_at(self.used.off) {
            f.store(if yes { 0 } else { USED_F_NO_NOTIFY }, Ordering::Relaxed);
        }
        fence(Ordering::SeqCst);
    }

    /// Follows the chain at `head`, appending each buffer as (guest
    /// address, length) to `segs`, and returns its total length. Each
    /// buffer must be `writable` by the device or not, and lie in guest
    /// memory; the total may not exceed `max_bytes`.
    #[inline]
    pub(crate) fn chain(
        &self,
        head: u16,
        writable: bool,
        max_bytes: u64,
        segs: &mut Vec<(u64, u32)>,
    ) -> Result<u64, ChainError> {
        segs.clear();
        if head > self.mask() {
            return Err(ChainError::BadHead);
        }
        let want = if writable { DESC_F_WRITE } else { 0 };
        let mut total = 0u64;
        let mut d = self.desc(head);
        let mut seen = 1u32;
        // The table `next` indexes: the ring's, or an indirect one
        // (its mapping, offset and entries).
        let mut table: Option<(&GuestRegion, usize, u32)> = None;
        loop {
            if d.flags & DESC_F_INDIRECT != 0 {
                if !self.indirect || table.is_some() || d.flags & DESC_F_NEXT != 0 {
                    return Err(ChainError::BadIndirect);
                }
                let n = d.len / 16;
                if d.len == 0 || !d.len.is_multiple_of(16) || n > MAX_INDIRECT {
                    return Err(ChainError::BadIndirect);
                }
                let (map, off) = self
                    .mem
                    .locate(d.addr, d.len as u64)
                    .ok_or(ChainError::OutOfMemory)?;
                table = Some((map, off, n));
                d = map.read(off).unwrap_or_default();
                seen = 1;
                continue;
            }
            if d.flags & DESC_F_WRITE != want {
                return Err(ChainError::WrongDirection);
            }
            total += d.len as u64;
            if total > max_bytes {
                return Err(ChainError::TooLong);
            }
            if !self.mem.contains(d.addr, d.len as u64) {
                return Err(ChainError::OutOfMemory);
            }
            segs.push((d.addr, d.len));
            if d.flags & DESC_F_NEXT == 0 {
                return Ok(total);
            }
            let limit = table.map_or(self.entries(), |t| t.2);
            if d.next as u32 >= limit {
                return Err(ChainError::BadNext);
            }
            seen += 1;
            if seen > limit {
                return Err(ChainError::Loop);
            }
            d = match table {
                None => self.desc(d.next),
                Some((map, off, _)) => map.read(off + 16 * d.next as usize).unwrap_or_default(),
            };
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sys::unix::sealed_memfd;
    use crate::vhost::proto::MemRegion;

    /// A 1 MiB guest at guest-physical 0 and
    /// user address 0x10_0000: descriptors at 0, available at 0x4000, used
    /// at 0x5000, buffers from 0x10000.
    pub(crate) fn guest() -> (Arc<GuestMemory>, VringAddr) {
        let len = 1 << 20;
        let mem = GuestMemory::map(
            &[MemRegion {
                guest_phys_addr: 0,
                size: len,
                user_addr: 0x10_0000,
                mmap_offset: 0,
            }],
            vec![sealed_memfd("virtq-test", len).unwrap()],
            1 << 30,
            false,
        )
        .unwrap();
        let addr = VringAddr {
            index: 0,
            flags: 0,
            desc: 0x10_0000,
            avail: 0x10_4000,
            used: 0x10_5000,
            log: 0,
        };
        (Arc::new(mem), addr)
    }

    pub(crate) fn put_desc(mem: &GuestMemory, table: u64, i: u16, d: VirtqDesc) {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&d.addr.to_le_bytes());
        b[8..12].copy_from_slice(&d.len.to_le_bytes());
        b[12..14].copy_from_slice(&d.flags.to_le_bytes());
        b[14..16].copy_from_slice(&d.next.to_le_bytes());
        assert!(mem.write(table + 16 * i as u64, &b));
    }

    fn desc(addr: u64, len: u32, flags: u16, next: u16) -> VirtqDesc {
        VirtqDesc {
            addr,
            len,
            flags,
            next,
        }
    }

    #[test]
    fn rings_outside_memory_or_misaligned_do_not_start() {
        let (mem, addr) = guest();
        let ring = |size, a: VringAddr| SplitRing::new(mem.clone(), size, &a, false, true);
        assert!(ring(256, addr).is_ok());
        assert_eq!(ring(100, addr).unwrap_err(), RingError::Size(100));
        assert_eq!(ring(65536, addr).unwrap_err(), RingError::Size(65536));
        let a = VringAddr { desc: 8, ..addr };
        assert_eq!(
            ring(256, a).unwrap_err(),
            RingError::Misaligned("descriptor")
        );
        let a = VringAddr {
            used: 0x10_0000 + (1 << 20) - 8,
            ..addr
        };
        assert_eq!(ring(256, a).unwrap_err(), RingError::Outside("used"));
        let a = VringAddr {
            avail: 0x10_4001,
            ..addr
        };
        assert_eq!(
            ring(256, a).unwrap_err(),
            RingError::Misaligned("available")
        );
    }

    #[test]
    fn chains_are_followed_only_while_they_are_sound() {
        let (mem, addr) = guest();
        let ring = SplitRing::new(mem.clone(), 8, &addr, false, true).unwrap();
        let mut segs = Vec::new();
        let put = |i, d| put_desc(&mem, 0, i, d);
        // 0 -> 1: two readable buffers.
        put(0, desc(0x10000, 12, DESC_F_NEXT, 1));
        put(1, desc(0x10100, 64, 0, 0));
        assert_eq!(ring.chain(0, false, 9000, &mut segs), Ok(76));
        assert_eq!(segs, vec![(0x10000, 12), (0x10100, 64)]);
        assert_eq!(
            ring.chain(0, true, 9000, &mut segs),
            Err(ChainError::WrongDirection)
        );
        assert_eq!(
            ring.chain(8, false, 9000, &mut segs),
            Err(ChainError::BadHead)
        );
        assert_eq!(
            ring.chain(0, false, 70, &mut segs),
            Err(ChainError::TooLong)
        );
        // A loop: 2 -> 3 -> 2.
        put(2, desc(0x10000, 1, DESC_F_NEXT, 3));
        put(3, desc(0x10000, 1, DESC_F_NEXT, 2));
        assert_eq!(ring.chain(2, false, 9000, &mut segs), Err(ChainError::Loop));
        // `next` past the table.
        put(4, desc(0x10000, 1, DESC_F_NEXT, 8));
        assert_eq!(
            ring.chain(4, false, 9000, &mut segs),
            Err(ChainError::BadNext)
        );
        // Outside memory, and wrapping the address space.
        put(5, desc((1 << 20) - 4, 8, 0, 0));
        assert_eq!(
            ring.chain(5, false, 9000, &mut segs),
            Err(ChainError::OutOfMemory)
        );
        put(5, desc(u64::MAX - 2, 8, 0, 0));
        assert_eq!(
            ring.chain(5, false, 9000, &mut segs),
            Err(ChainError::OutOfMemory)
        );
        // A huge length is too long before it is looked up.
        put(5, desc(0x10000, u32::MAX, 0, 0));
        assert_eq!(
            ring.chain(5, false, 9000, &mut segs),
            Err(ChainError::TooLong)
        );
    }

    #[test]
    fn indirect_tables_are_checked_like_the_ring() {
        let (mem, addr) = guest();
        let ring = SplitRing::new(mem.clone(), 8, &addr, false, true).unwrap();
        let no_indirect = SplitRing::new(mem.clone(), 8, &addr, false, false).unwrap();
        let mut segs = Vec::new();
        let table = 0x20000u64;
        put_desc(&mem, table, 0, desc(0x10000, 12, DESC_F_NEXT, 1));
        put_desc(&mem, table, 1, desc(0x10100, 1500, 0, 0));
        put_desc(&mem, 0, 0, desc(table, 32, DESC_F_INDIRECT, 0));
        assert_eq!(ring.chain(0, false, 9000, &mut segs), Ok(1512));
        assert_eq!(segs.len(), 2);
        assert_eq!(
            no_indirect.chain(0, false, 9000, &mut segs),
            Err(ChainError::BadIndirect)
        );
        // Ragged, empty, chained, nested, outside.
        for bad in [
            desc(table, 24, DESC_F_INDIRECT, 0),
            desc(table, 0, DESC_F_INDIRECT, 0),
            desc(table, 32, DESC_F_INDIRECT | DESC_F_NEXT, 1),
            desc(table, 16 * (MAX_INDIRECT + 1), DESC_F_INDIRECT, 0),
        ] {
            put_desc(&mem, 0, 0, bad);
            assert_eq!(
                ring.chain(0, false, 9000, &mut segs),
                Err(ChainError::BadIndirect),
                "{bad:?}"
            );
        }
        put_desc(&mem, 0, 0, desc((1 << 20) - 16, 32, DESC_F_INDIRECT, 0));
        assert_eq!(
            ring.chain(0, false, 9000, &mut segs),
            Err(ChainError::OutOfMemory)
        );
        put_desc(&mem, table, 1, desc(table, 32, DESC_F_INDIRECT, 0));
        put_desc(&mem, 0, 0, desc(table, 32, DESC_F_INDIRECT, 0));
        assert_eq!(
            ring.chain(0, false, 9000, &mut segs),
            Err(ChainError::BadIndirect),
            "nested"
        );
        // A loop inside the table, and a `next` past its end.
        put_desc(&mem, table, 1, desc(0x10000, 1, DESC_F_NEXT, 0));
        assert_eq!(ring.chain(0, false, 9000, &mut segs), Err(ChainError::Loop));
        put_desc(&mem, table, 1, desc(0x10000, 1, DESC_F_NEXT, 2));
        assert_eq!(
            ring.chain(0, false, 9000, &mut segs),
            Err(ChainError::BadNext)
        );
    }

    #[test]
    fn interrupts_follow_used_event_or_the_flag() {
        let (mem, addr) = guest();
        let ring = SplitRing::new(mem.clone(), 8, &addr, true, true).unwrap();
        // used_event = 5: moving used.idx from 3 to 6 crosses it.
        assert!(mem.write(0x4000 + 4 + 16, &5u16.to_le_bytes()));
        assert!(ring.needs_interrupt(3, 6));
        assert!(!ring.needs_interrupt(6, 8));
        let plain = SplitRing::new(mem.clone(), 8, &addr, false, true).unwrap();
        assert!(plain.needs_interrupt(0, 1));
        assert!(mem.write(0x4000, &AVAIL_F_NO_INTERRUPT.to_le_bytes()));
        assert!(!plain.needs_interrupt(0, 1));
    }
}
