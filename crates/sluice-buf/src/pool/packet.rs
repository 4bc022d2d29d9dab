//! The move-only packet handle and its metadata.

use std::ptr::NonNull;

use super::{BufError, BufHeader, DATA_SIZE, HEADER_SIZE, HEADROOM, Lent, STRIDE};

/// Bytes of the packet area of one buffer: headroom plus data.
const AREA: usize = HEADROOM + DATA_SIZE;

/// Per-packet metadata that nodes read and write (VPP's `vnet_buffer`
/// opaque, but typed). Reset to zero when a buffer is allocated.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Meta {
    /// Interface the packet was received on.
    pub rx_if: u32,
    /// Interface the packet is to be sent on.
    pub tx_if: u32,
    /// Offset of the L3 header from the start of the L2 header, as found
    /// by the L2 input node; once that node has stripped the L2 header, how
    /// far back (`prepend`) the frame starts.
    pub l3_offset: u16,
    /// Offset of the L4 header from the start of the current data.
    pub l4_offset: u16,
    /// Free for flags of the functions (see their docs).
    pub flags: u32,
    /// Flow hash, for ECMP and worker handoff.
    pub flow_hash: u32,
    /// Adjacency (next hop) chosen by a lookup.
    pub adj: u32,
    /// Trace slot + 1 when the packet is traced, 0 otherwise.
    pub trace: u32,
    /// Outer VLAN id seen on input (0 = untagged).
    pub vlan: u16,
    /// Feature-arc cursor.
    pub feature: u16,
    /// Scratch words for functions, valid between two nodes that agree on them.
    pub opaque: [u32; 16],
}

/// A packet: the exclusive owner of one buffer (or a chain of buffers).
///
/// It is not `Copy` or `Clone`, and only the pool can make one, so holding a
/// `Packet` is the right to read and write its bytes. Give it back with
/// [`super::BufCache::free`]; a `Packet` that is simply dropped leaks its
/// buffer, which the pool's free count makes visible.
#[must_use = "a packet must be sent, freed or dropped through a cache"]
pub struct Packet {
    hdr: NonNull<BufHeader>,
}

// SAFETY: a Packet owns its buffer exclusively (module invariant 1), so moving
// it to another thread moves that exclusive access with it.
unsafe impl Send for Packet {}
// SAFETY: `&Packet` only allows reads of the buffer.
unsafe impl Sync for Packet {}

/// In debug builds (every test run), a packet dropped instead of being
/// freed is a bug found on the spot, not a buffer that quietly never comes
/// back. Release builds leave the check to the pool's free count.
#[cfg(debug_assertions)]
impl Drop for Packet {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!(
                "packet (buffer {}) dropped without being freed: its buffer is lost",
                self.index()
            );
        }
    }
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("index", &self.index())
            .field("len", &self.total_len())
            .finish()
    }
}

impl Packet {
    /// Wraps a buffer that has just left a free list.
    ///
    /// # Safety
    /// `hdr` must be the header of a buffer of a live pool that no other
    /// `Packet` owns.
    pub(super) unsafe fn from_header(hdr: NonNull<BufHeader>) -> Packet {
        Packet { hdr }
    }

    /// Gives up the handle without freeing, for the cache to put the buffer
    /// back on a free list.
    pub(super) fn into_header(self) -> NonNull<BufHeader> {
        // Not dropped: the buffer is not lost, it changes hands.
        std::mem::ManuallyDrop::new(self).hdr
    }

    fn header(&self) -> &BufHeader {
        // SAFETY: the header is inside the live region (invariant 2) and we
        // own the buffer (invariant 1).
        unsafe { self.hdr.as_ref() }
    }

    fn header_mut(&mut self) -> &mut BufHeader {
        // SAFETY: as in `header`, and `&mut self` makes the access exclusive.
        unsafe { self.hdr.as_mut() }
    }

    /// The buffer's index in the pool.
    #[inline]
    pub fn index(&self) -> u32 {
        self.header().index
    }

    /// Asks the CPU to start loading the packet's header line and the first
    /// line of its data, so that a node that will reach this packet a few
    /// iterations later does not wait for memory. Assumes the data starts
    /// at the default headroom (as received); a hint, never a fault.
    #[inline(always)]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p = self.hdr.as_ptr().cast::<i8>();
            // SAFETY: prefetching never faults and reads nothing visible;
            // both addresses are inside this packet's buffer anyway.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p);
                _mm_prefetch::<_MM_HINT_T0>(p.add(HEADER_SIZE + HEADROOM));
            }
        }
    }

    /// The packet's metadata.
    #[inline]
    pub fn meta(&self) -> &Meta {
        &self.header().meta
    }

    /// The packet's metadata, to change.
    #[inline]
    pub fn meta_mut(&mut self) -> &mut Meta {
        &mut self.header_mut().meta
    }

    /// Bytes in the first segment.
    #[inline]
    pub fn len(&self) -> usize {
        self.header().len as usize
    }

    /// Whether the packet holds no bytes at all.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.total_len() == 0
    }

    /// Bytes in the whole packet, all segments. (The head's `total_len`
    /// field is kept only while the packet is chained.)
    #[inline]
    pub fn total_len(&self) -> usize {
        let h = self.header();
        if h.next.is_null() {
            h.len as usize
        } else {
            h.total_len as usize
        }
    }

    /// Whether the packet spans more than one buffer.
    #[inline]
    pub fn is_chained(&self) -> bool {
        !self.header().next.is_null()
    }

    /// Bytes free before the data, for headers to be prepended.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.header().data_off as usize
    }

    /// Bytes free after the data of the first segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let h = self.header();
        AREA - h.data_off as usize - h.len as usize
    }

    fn area_ptr(hdr: NonNull<BufHeader>) -> *mut u8 {
        // SAFETY: the packet area follows the header inside the same buffer.
        unsafe { hdr.as_ptr().cast::<u8>().add(HEADER_SIZE) }
    }

    /// The data of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let h = self.header();
        // SAFETY: data_off + len <= AREA is kept by every setter, so the
        // slice lies inside this buffer, which we own.
        unsafe {
            std::slice::from_raw_parts(
                Self::area_ptr(self.hdr).add(h.data_off as usize),
                h.len as usize,
            )
        }
    }

    /// The data of the first segment, to change.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (off, len) = {
            let h = self.header();
            (h.data_off as usize, h.len as usize)
        };
        // SAFETY: as in `data`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(Self::area_ptr(self.hdr).add(off), len) }
    }

    /// The whole room of the first segment from the start of the data to the
    /// end of the buffer, for a writer that sets the length afterwards with
    /// [`Packet::set_len`].
    #[inline]
    pub fn room_mut(&mut self) -> &mut [u8] {
        let off = self.header().data_off as usize;
        // SAFETY: off <= AREA; the slice ends at the end of this buffer.
        unsafe { std::slice::from_raw_parts_mut(Self::area_ptr(self.hdr).add(off), AREA - off) }
    }

    /// Lends the buffer to a device (an AF_XDP fill or transmit ring): the
    /// handle is given up and the buffer belongs to nobody in the process
    /// until [`super::BufCache::reclaim`] takes it back. A chained packet
    /// cannot be lent and comes back as the error.
    pub fn lend(self) -> Result<Lent, Packet> {
        if self.is_chained() {
            return Err(self);
        }
        let h = self.header();
        let buffer = h.index as u64 * STRIDE as u64;
        let lent = Lent {
            index: h.index,
            buffer,
            data: buffer + (HEADER_SIZE + h.data_off as usize) as u64,
            len: u32::from(h.len),
        };
        // Not dropped: the buffer changes hands (invariant 3).
        let _ = self.into_header();
        Ok(lent)
    }

    /// Sets the length of a single-segment packet.
    pub fn set_len(&mut self, len: usize) -> Result<(), BufError> {
        if self.is_chained() {
            return Err(BufError::NoRoom("set_len on a chained packet"));
        }
        let h = self.header_mut();
        // Compared by subtraction: `data_off + len` could wrap for a huge len.
        if len > AREA - h.data_off as usize {
            return Err(BufError::NoRoom("length"));
        }
        h.len = len as u16;
        Ok(())
    }

    /// Moves the start of the data back by `n` bytes (into the headroom) and
    /// returns the new first `n` bytes, for an encapsulation header.
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], BufError> {
        let h = self.header_mut();
        if n > h.data_off as usize || h.len as usize + n > u16::MAX as usize {
            return Err(BufError::NoRoom("prepended header"));
        }
        h.data_off -= n as u16;
        h.len += n as u16;
        if !h.next.is_null() {
            h.total_len += n as u32;
        }
        Ok(&mut self.data_mut()[..n])
    }

    /// Strips `n` bytes from the front of the first segment (a decapsulated
    /// header).
    pub fn advance(&mut self, n: usize) -> Result<(), BufError> {
        let h = self.header_mut();
        if n > h.len as usize {
            return Err(BufError::NoRoom("stripped header"));
        }
        h.data_off += n as u16;
        h.len -= n as u16;
        if !h.next.is_null() {
            h.total_len -= n as u32;
        }
        Ok(())
    }

    /// Shortens the packet to `total` bytes (e.g. to drop Ethernet padding
    /// past the IP total length). Segments past the end keep zero bytes and
    /// are freed with the packet. Longer than the packet is an error.
    pub fn truncate(&mut self, total: usize) -> Result<(), BufError> {
        if total > self.total_len() {
            return Err(BufError::NoRoom("truncation past the end"));
        }
        let mut left = total;
        let mut cur = self.hdr.as_ptr();
        while !cur.is_null() {
            // SAFETY: every segment of the chain belongs to this packet.
            let seg = unsafe { &mut *cur };
            let keep = left.min(seg.len as usize);
            seg.len = keep as u16;
            left -= keep;
            cur = seg.next;
        }
        self.header_mut().total_len = total as u32;
        Ok(())
    }

    /// The data of every segment, in order.
    pub fn segments(&self) -> Segments<'_> {
        Segments {
            cur: self.hdr.as_ptr(),
            _packet: std::marker::PhantomData,
        }
    }

    /// Appends the whole packet's bytes to `out` (linearizes a chain).
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        for seg in self.segments() {
            out.extend_from_slice(seg);
        }
    }

    /// Links `tail` after the last segment of `self`.
    pub(super) fn chain(&mut self, tail: Packet) {
        let add = tail.total_len() as u32;
        let before = self.total_len() as u32;
        let tail_hdr = tail.into_header();
        let mut cur = self.hdr.as_ptr();
        // SAFETY: every segment of the chain belongs to this packet; the tail
        // was owned by `tail` and now by us.
        unsafe {
            while !(*cur).next.is_null() {
                cur = (*cur).next;
            }
            (*cur).next = tail_hdr.as_ptr();
        }
        self.header_mut().total_len = before + add;
    }

    /// The header of the segment after `hdr`, if any.
    pub(super) fn next_segment(hdr: NonNull<BufHeader>) -> Option<NonNull<BufHeader>> {
        // SAFETY: called by the cache on a chain it owns.
        NonNull::new(unsafe { hdr.as_ref().next })
    }

    /// Resets a buffer taken from a free list to an empty single segment.
    pub(super) fn reset(hdr: NonNull<BufHeader>) {
        // SAFETY: the buffer has just left a free list; we own it.
        let h = unsafe { &mut *hdr.as_ptr() };
        h.data_off = HEADROOM as u16;
        h.len = 0;
        h.total_len = 0;
        h.next = std::ptr::null_mut();
        h.meta = Meta::default();
    }
}

/// Iterator over the data of a packet's segments.
#[derive(Clone)]
pub struct Segments<'a> {
    cur: *const BufHeader,
    _packet: std::marker::PhantomData<&'a Packet>,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.cur.is_null() {
            return None;
        }
        // SAFETY: the segments belong to the borrowed packet, which cannot
        // change while the iterator borrows it.
        let h = unsafe { &*self.cur };
        let hdr = NonNull::from(h);
        // SAFETY: data_off + len <= AREA inside this segment's buffer.
        let data = unsafe {
            std::slice::from_raw_parts(
                Packet::area_ptr(hdr).add(h.data_off as usize),
                h.len as usize,
            )
        };
        self.cur = h.next;
        Some(data)
    }
}
