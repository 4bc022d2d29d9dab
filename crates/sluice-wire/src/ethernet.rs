//! Ethernet II frames, 802.1Q / 802.1ad VLAN tags and MAC addresses.

use core::fmt;

use crate::{Error, read_u16, write_u16};

mod mac;

pub use mac::{MacAddr, MacAddrParseError};

/// Byte offsets of the Ethernet II header.
mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// Byte offsets of a VLAN tag, counted from the TCI (the 4 bytes that follow
/// the 0x8100 / 0x88a8 TPID).
mod vfield {
    pub const TCI: usize = 0;
    pub const ETHERTYPE: usize = 2;
    pub const PAYLOAD: usize = 4;
}

/// Length of an untagged Ethernet II header (dst, src, ethertype).
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Length of one VLAN tag (TPID + TCI) as it appears in a frame.
pub const VLAN_TAG_LEN: usize = 4;

/// How many stacked VLAN tags [`EthernetFrame::l3`] walks (QinQ: outer + inner).
pub const MAX_VLAN_TAGS: usize = 2;

/// An Ethernet II EtherType (or a VLAN TPID, which sits in the same place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    /// Internet Protocol version 4.
    pub const IPV4: EtherType = EtherType(0x0800);
    /// Address Resolution Protocol.
    pub const ARP: EtherType = EtherType(0x0806);
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: EtherType = EtherType(0x8100);
    /// IEEE 802.1ad service VLAN tag (outer tag of QinQ).
    pub const QINQ: EtherType = EtherType(0x88a8);
    /// Internet Protocol version 6.
    pub const IPV6: EtherType = EtherType(0x86dd);

    /// True for the TPIDs that [`EthernetFrame::l3`] steps over (0x8100, 0x88a8).
    #[inline]
    pub const fn is_vlan(self) -> bool {
        self.0 == 0x8100 || self.0 == 0x88a8
    }
}

impl From<u16> for EtherType {
    #[inline]
    fn from(v: u16) -> Self {
        EtherType(v)
    }
}

impl From<EtherType> for u16 {
    #[inline]
    fn from(v: EtherType) -> Self {
        v.0
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x}", self.0)
    }
}

/// What the VLAN walk ([`EthernetFrame::l3`]) found in front of the L3 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Info {
    /// The innermost EtherType (the L3 protocol).
    pub ethertype: EtherType,
    /// VLAN ids, outermost first; only the first `vlan_count` are meaningful.
    pub vlan_ids: [u16; MAX_VLAN_TAGS],
    /// Number of VLAN tags walked (0, 1 or 2).
    pub vlan_count: u8,
    /// Offset of the L3 header from the start of the frame
    /// (14, 18 or 22).
    pub l3_offset: usize,
}

impl L2Info {
    /// The VLAN ids found, outermost first.
    #[inline]
    pub fn vlans(&self) -> &[u16] {
        &self.vlan_ids[..usize::from(self.vlan_count).min(MAX_VLAN_TAGS)]
    }
}

/// View of an Ethernet II frame: destination, source, EtherType, payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Accessors panic later if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wrap `buffer`, checking that it holds at least a full header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// `Err(Truncated)` if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Always [`HEADER_LEN`]; VLAN tags are part of the payload at this level
    /// (use [`EthernetFrame::l3`] to skip them).
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Destination MAC address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DST])
    }

    /// Source MAC address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SRC])
    }

    /// The outer EtherType (a VLAN TPID if the frame is tagged).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Everything after the 14-byte header (VLAN tags included).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), field::PAYLOAD, usize::MAX)
    }

    /// Walk up to [`MAX_VLAN_TAGS`] VLAN tags (TPID 0x8100 or 0x88a8) and
    /// report the inner EtherType, the VLAN ids and where L3 starts.
    ///
    /// Returns `Err(Truncated)` if a tag runs past the buffer and
    /// `Err(TooManyHeaders)` if a third tag follows two. Never panics, even on
    /// an unchecked view.
    pub fn l3(&self) -> Result<L2Info, Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let mut info = L2Info {
            ethertype: EtherType(read_u16(b, field::ETHERTYPE)),
            vlan_ids: [0; MAX_VLAN_TAGS],
            vlan_count: 0,
            l3_offset: HEADER_LEN,
        };
        while info.ethertype.is_vlan() {
            let n = usize::from(info.vlan_count);
            if n == MAX_VLAN_TAGS {
                return Err(Error::TooManyHeaders);
            }
            let at = info.l3_offset;
            if b.len() < at + VLAN_TAG_LEN {
                return Err(Error::Truncated);
            }
            info.vlan_ids[n] = read_u16(b, at + vfield::TCI) & 0x0fff;
            info.ethertype = EtherType(read_u16(b, at + vfield::ETHERTYPE));
            info.vlan_count += 1;
            info.l3_offset = at + VLAN_TAG_LEN;
        }
        Ok(info)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Set the destination MAC address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    /// Set the source MAC address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Set the outer EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, t.0);
    }

    /// Everything after the 14-byte header, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        crate::clamp_mut(self.buffer.as_mut(), field::PAYLOAD, usize::MAX)
    }
}

/// View of one 802.1Q tag *after* its TPID: the TCI (PCP, DEI, VID) and the
/// EtherType that follows. In a frame it starts at offset 14 (or 18 for the
/// inner tag of QinQ), i.e. at `EthernetFrame::payload()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Length of the TCI + inner EtherType.
    pub const HEADER_LEN: usize = vfield::PAYLOAD;

    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Accessors panic later if the buffer is shorter than 4 bytes.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wrap `buffer`, checking that it holds at least 4 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let v = Self::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// `Err(Truncated)` if the buffer is shorter than 4 bytes.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Always 4.
    #[inline]
    pub const fn header_len(&self) -> usize {
        Self::HEADER_LEN
    }

    /// The raw 16-bit Tag Control Information.
    #[inline]
    pub fn tci(&self) -> u16 {
        read_u16(self.buffer.as_ref(), vfield::TCI)
    }

    /// Priority Code Point (3 bits).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop Eligible Indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN identifier (12 bits).
    #[inline]
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// The EtherType that follows the tag.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), vfield::ETHERTYPE))
    }

    /// Bytes after the tag.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), vfield::PAYLOAD, usize::MAX)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanTag<T> {
    /// Set the raw TCI.
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        write_u16(self.buffer.as_mut(), vfield::TCI, tci);
    }

    /// Set the Priority Code Point (only the low 3 bits of `pcp` are used).
    #[inline]
    pub fn set_pcp(&mut self, pcp: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(pcp & 0x07) << 13);
        self.set_tci(tci);
    }

    /// Set the Drop Eligible Indicator.
    #[inline]
    pub fn set_dei(&mut self, dei: bool) {
        let tci = (self.tci() & !0x1000) | if dei { 0x1000 } else { 0 };
        self.set_tci(tci);
    }

    /// Set the VLAN id (only the low 12 bits of `vid` are used).
    #[inline]
    pub fn set_vid(&mut self, vid: u16) {
        let tci = (self.tci() & 0xf000) | (vid & 0x0fff);
        self.set_tci(tci);
    }

    /// Set the inner EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        write_u16(self.buffer.as_mut(), vfield::ETHERTYPE, t.0);
    }

    /// Bytes after the tag, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        crate::clamp_mut(self.buffer.as_mut(), vfield::PAYLOAD, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ARP request frame header followed by 2 bytes of payload.
    const UNTAGGED: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00,
        0x01,
    ];

    /// QinQ: 0x88a8 vid 100, then 0x8100 pcp 5 dei vid 200, then IPv6.
    const QINQ: [u8; 24] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0xa8, 0x00,
        0x64, 0x81, 0x00, 0xb0, 0xc8, 0x86, 0xdd, 0x60, 0x00,
    ];

    #[test]
    fn untagged_frame() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert!(f.dst_addr().is_broadcast());
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), EtherType::ARP);
        assert_eq!(f.payload(), &[0x00, 0x01]);
        assert_eq!(f.header_len(), 14);
        let l2 = f.l3().unwrap();
        assert_eq!(l2.ethertype, EtherType::ARP);
        assert_eq!(l2.vlans(), &[] as &[u16]);
        assert_eq!(l2.l3_offset, 14);
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn qinq_walk() {
        let f = EthernetFrame::new_checked(&QINQ[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::QINQ);
        let l2 = f.l3().unwrap();
        assert_eq!(l2.ethertype, EtherType::IPV6);
        assert_eq!(l2.vlans(), &[100, 200]);
        assert_eq!(l2.l3_offset, 22);
        let inner = VlanTag::new_checked(&QINQ[18..]).unwrap();
        assert_eq!(inner.pcp(), 5);
        assert!(inner.dei());
        assert_eq!(inner.vid(), 200);
        assert_eq!(inner.ethertype(), EtherType::IPV6);
        assert_eq!(inner.payload(), &[0x60, 0x00]);
        // Truncated inside the second tag.
        let f = EthernetFrame::new_checked(&QINQ[..21]).unwrap();
        assert_eq!(f.l3().unwrap_err(), Error::Truncated);
        // A third tag is refused.
        let mut three = QINQ;
        three[20] = 0x81;
        three[21] = 0x00;
        let f = EthernetFrame::new_checked(&three[..]).unwrap();
        assert_eq!(f.l3().unwrap_err(), Error::TooManyHeaders);
        assert_eq!(
            EthernetFrame::new_unchecked(&[0u8; 3][..])
                .l3()
                .unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn setters() {
        let mut buf = [0u8; 22];
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst_addr(MacAddr::BROADCAST);
        f.set_src_addr(MacAddr([2, 0, 0, 0, 0, 9]));
        f.set_ethertype(EtherType::VLAN);
        {
            let mut tag = VlanTag::new_checked(f.payload_mut()).unwrap();
            tag.set_vid(0xfff);
            tag.set_pcp(7);
            tag.set_dei(true);
            tag.set_dei(false);
            tag.set_pcp(3);
            tag.set_vid(42);
            tag.set_ethertype(EtherType::IPV4);
            tag.payload_mut()[0] = 0x45;
            assert_eq!(tag.tci(), (3 << 13) | 42);
        }
        let l2 = f.l3().unwrap();
        assert_eq!(
            (l2.ethertype, l2.vlans(), l2.l3_offset),
            (EtherType::IPV4, &[42u16][..], 18)
        );
        let buf = f.into_inner();
        assert_eq!(buf[18], 0x45);
        assert_eq!(EtherType::IPV6.to_string(), "0x86dd");
        assert_eq!(
            VlanTag::new_checked(&[0u8; 3][..]).unwrap_err(),
            Error::Truncated
        );
    }
}
