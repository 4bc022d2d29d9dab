//! IPv6 fixed header (RFC 8200) and the extension-header walk.

use std::net::Ipv6Addr;

use crate::{Error, IpProtocol, read_u16, read_u32, write_u16, write_u32};

mod ext;

pub use ext::{ExtHeader, ExtHeaders, Ipv6Fragment, UpperLayer};

/// Byte offsets of the IPv6 fixed header.
mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
    pub const PAYLOAD: usize = 40;
}

/// Length of the IPv6 fixed header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// Most extension headers the walk accepts before giving up with
/// `Err(TooManyHeaders)`; bounds the work an attacker can make us do.
pub const MAX_EXT_HEADERS: usize = 8;

/// View of an IPv6 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Fixed-field accessors panic later if the buffer is shorter than
    /// [`HEADER_LEN`]; `payload()` and the extension walk never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wrap `buffer` after [`Ipv6Packet::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Buffer ≥ 40 bytes (else `Truncated`), version 6 (else `BadVersion`),
    /// and 40 + payload length ≤ buffer (else `Truncated`). Jumbograms
    /// (payload length 0 with a Jumbo Payload option) are not supported: their
    /// payload reads as empty.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(Error::BadVersion);
        }
        if HEADER_LEN + usize::from(read_u16(b, field::PAYLOAD_LEN)) > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Always 40: extension headers count as payload here (see
    /// [`Ipv6Packet::upper_layer`]).
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Version field (6 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (read_u16(self.buffer.as_ref(), field::VER_TC_FLOW) >> 4) as u8
    }

    /// DSCP (top 6 bits of the traffic class).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }

    /// ECN (low 2 bits of the traffic class).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length (everything after the fixed header, extension headers
    /// included).
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// 40 + payload length: the packet's length without link-layer padding.
    #[inline]
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// Next header: the first extension header or the upper-layer protocol.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::SRC.start)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::DST.start)
    }

    /// `40..40 + payload_len` (clamped to the buffer): extension headers and
    /// upper-layer data, without link-layer padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), HEADER_LEN, self.total_len())
    }

    /// Iterate the extension headers (see [`ExtHeaders`]).
    #[inline]
    pub fn ext_headers(&self) -> ExtHeaders<'_> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return ExtHeaders::failed(Error::Truncated);
        }
        ExtHeaders::new(
            crate::clamp(b, 0, self.total_len()),
            self.next_header(),
            HEADER_LEN,
        )
    }

    /// Walk the extension headers and return the upper-layer protocol, where
    /// it starts and the Fragment header if one was seen.
    ///
    /// `Err(Truncated)` if a header runs past the payload,
    /// `Err(TooManyHeaders)` past [`MAX_EXT_HEADERS`], `Err(BadExtensionHeader)`
    /// for a Hop-by-Hop header that is not first. Never panics, even on an
    /// unchecked view.
    pub fn upper_layer(&self) -> Result<UpperLayer, Error> {
        let mut it = self.ext_headers();
        let mut fragment = None;
        let mut count = 0u8;
        for h in &mut it {
            let h = h?;
            count += 1;
            if let Some(f) = h.fragment() {
                fragment = Some(f);
            }
        }
        Ok(UpperLayer {
            protocol: it.protocol(),
            offset: it.offset(),
            ext_count: count,
            fragment,
        })
    }
}

#[inline]
fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Set the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0x0f) | (v << 4);
    }

    /// Set the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buffer.as_mut();
        let w = (read_u16(b, field::VER_TC_FLOW) & 0xf00f) | (u16::from(tc) << 4);
        write_u16(b, field::VER_TC_FLOW, w);
    }

    /// Set the flow label (low 20 bits used).
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let b = self.buffer.as_mut();
        let w = (read_u32(b, field::VER_TC_FLOW) & 0xfff0_0000) | (label & 0x000f_ffff);
        write_u32(b, field::VER_TC_FLOW, w);
    }

    /// Set the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, len);
    }

    /// Set the next header.
    #[inline]
    pub fn set_next_header(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = p.0;
    }

    /// Set the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = h;
    }

    /// Decrement the hop limit (no checksum to patch in IPv6); returns the new
    /// value. 0 stays 0: drop packets with a hop limit ≤ 1 before forwarding.
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let h = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(h);
        h
    }

    /// Set the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: &Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets());
    }

    /// Payload, mutable (clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        crate::clamp_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMPv6 echo request 2001:db8::1 -> 2001:db8::2 behind Hop-by-Hop
    /// (Router Alert), Destination Options (PadN) and a first Fragment header.
    fn sample() -> Vec<u8> {
        let mut v = vec![
            0x6b, 0x81, 0x23, 0x45, 0x00, 0x20, 0x00, 0x40, // ver 6, tc 0xb8, flow 0x12345
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        ];
        v.extend_from_slice(&[60, 0, 5, 2, 0, 0, 1, 0]); // HBH: router alert
        v.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // DSTOPTS: PadN
        v.extend_from_slice(&[58, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // FRAG off 0 M
        v.extend_from_slice(&[128, 0, 0, 0, 0, 1, 0, 1]); // ICMPv6 echo
        v
    }

    #[test]
    fn fixed_header() {
        let b = sample();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!((p.dscp(), p.ecn()), (46, 0));
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 32);
        assert_eq!(p.next_header(), IpProtocol::HOPOPTS);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 32);
        assert_eq!(p.header_len(), 40);
    }

    #[test]
    fn walk() {
        let b = sample();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        let kinds: Vec<_> = p.ext_headers().map(|h| h.unwrap().kind).collect();
        assert_eq!(
            kinds,
            [
                IpProtocol::HOPOPTS,
                IpProtocol::DSTOPTS,
                IpProtocol::FRAGMENT
            ]
        );
        let u = p.upper_layer().unwrap();
        assert_eq!(u.protocol, IpProtocol::ICMPV6);
        assert_eq!(u.offset, 64);
        assert_eq!(u.ext_count, 3);
        assert_eq!(
            u.fragment,
            Some(Ipv6Fragment {
                offset: 0,
                more: true,
                ident: 0xdeadbeef
            })
        );
        assert_eq!(b[u.offset], 128);
    }

    #[test]
    fn walk_non_first_fragment_and_ah() {
        let mut b = sample();
        b[58] = 0x05; // offset 0x0500 >> 3 ... in bytes 0x0500 & 0xfff8 = 1280
        b[59] = 0x00;
        let u = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.fragment.unwrap().offset, 0x0500);
        assert!(!u.fragment.unwrap().more);
        assert_eq!((u.protocol, u.offset), (IpProtocol::ICMPV6, 64));

        // AH (len 1 -> 12 bytes) then UDP.
        let mut b = sample()[..40].to_vec();
        b[4] = 0;
        b[5] = 20;
        b[6] = 51;
        b.extend_from_slice(&[17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
        b.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
        let u = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            (u.protocol, u.offset, u.ext_count, u.fragment),
            (IpProtocol::UDP, 52, 1, None)
        );
    }

    #[test]
    fn walk_errors() {
        let b = sample();
        // Payload length cuts the fragment header short.
        let mut t = b.clone();
        t[5] = 20;
        let p = Ipv6Packet::new_checked(&t[..]).unwrap();
        assert_eq!(p.upper_layer().unwrap_err(), Error::Truncated);
        let mut it = p.ext_headers();
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_ok());
        assert_eq!(it.next().unwrap().unwrap_err(), Error::Truncated);
        assert!(it.next().is_none());
        // Hop-by-Hop not first.
        let mut t = b.clone();
        t[48] = 0;
        assert_eq!(
            Ipv6Packet::new_checked(&t[..])
                .unwrap()
                .upper_layer()
                .unwrap_err(),
            Error::BadExtensionHeader
        );
        // Nine Destination Options headers.
        let mut t = b[..40].to_vec();
        t[6] = 60;
        for i in 0..9 {
            t.extend_from_slice(&[if i == 8 { 59 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
        }
        t[5] = 72;
        assert_eq!(
            Ipv6Packet::new_checked(&t[..])
                .unwrap()
                .upper_layer()
                .unwrap_err(),
            Error::TooManyHeaders
        );
        t.truncate(40 + 64);
        t[5] = 64;
        t[40 + 56] = 59;
        let u = Ipv6Packet::new_checked(&t[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            (u.protocol, u.offset, u.ext_count),
            (IpProtocol::NONE, 104, 8)
        );
        // Short buffer on an unchecked view: an error, not a panic.
        let p = Ipv6Packet::new_unchecked(&b[..10]);
        assert_eq!(p.upper_layer().unwrap_err(), Error::Truncated);
    }

    #[test]
    fn rejects_and_setters() {
        let b = sample();
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..71]).unwrap_err(),
            Error::Truncated
        );
        let mut t = b.clone();
        t[0] = 0x4b;
        assert_eq!(
            Ipv6Packet::new_checked(&t[..]).unwrap_err(),
            Error::BadVersion
        );

        let mut buf = [0u8; 48];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_version(6);
        p.set_flow_label(0xfffff);
        p.set_traffic_class(0xff);
        p.set_flow_label(0xabcde);
        p.set_traffic_class(0x12);
        p.set_payload_len(8);
        p.set_next_header(IpProtocol::UDP);
        p.set_hop_limit(1);
        let s: Ipv6Addr = "fe80::1".parse().unwrap();
        let d: Ipv6Addr = "ff02::1".parse().unwrap();
        p.set_src_addr(&s);
        p.set_dst_addr(&d);
        p.payload_mut()[0] = 0xaa;
        p.check_len().unwrap();
        assert_eq!(
            (p.version(), p.traffic_class(), p.flow_label()),
            (6, 0x12, 0xabcde)
        );
        assert_eq!((p.src_addr(), p.dst_addr()), (s, d));
        assert_eq!(p.decrement_hop_limit(), 0);
        assert_eq!(p.decrement_hop_limit(), 0);
        let u = p.upper_layer().unwrap();
        assert_eq!(
            (u.protocol, u.offset, u.ext_count),
            (IpProtocol::UDP, 40, 0)
        );
        assert_eq!(p.into_inner()[40], 0xaa);
    }
}
