//! IPv4 header (RFC 791).

use std::net::Ipv4Addr;

use crate::{Error, IpProtocol, checksum, read_u16, read_u32, write_u16, write_u32};

/// Byte offsets of the IPv4 header.
mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const OPTIONS: usize = 20;
}

/// Length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::OPTIONS;

/// Largest IPv4 header (IHL = 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// View of an IPv4 packet: header, options and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Fixed-field accessors panic later if the buffer is shorter than
    /// [`HEADER_LEN`]; `options()`/`payload()` never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wrap `buffer` after [`Ipv4Packet::check_len`]. The checksum is *not*
    /// verified; call [`Ipv4Packet::verify_checksum`] for that.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Structural checks, in this order:
    ///
    /// * buffer ≥ 20 bytes, else `Truncated`;
    /// * version 4, else `BadVersion`;
    /// * IHL ≥ 5, else `BadHeaderLength`;
    /// * header length ≤ buffer, else `Truncated`;
    /// * total length ≥ header length, else `BadTotalLength`;
    /// * total length ≤ buffer, else `Truncated`.
    ///
    /// The buffer may be longer than the total length (Ethernet padding);
    /// `payload()` stops at the total length.
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::BadVersion);
        }
        let hlen = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if hlen < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if hlen > b.len() {
            return Err(Error::Truncated);
        }
        let total = usize::from(read_u16(b, field::LENGTH));
        if total < hlen {
            return Err(Error::BadTotalLength);
        }
        if total > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4 for a valid packet).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Internet Header Length in 32-bit words.
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// Differentiated Services Code Point (6 bits).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit Congestion Notification (2 bits).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length (header + payload) in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification (for reassembly).
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLG_OFF)
    }

    /// Don't Fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More Fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in *bytes* (the 13-bit field times 8).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// True if this is a fragment (MF set or a non-zero offset), i.e. the
    /// payload is not a complete upper-layer datagram.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Upper-layer protocol.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::DST))
    }

    /// The whole header, options included (clamped to the buffer).
    #[inline]
    pub fn header(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), 0, self.header_len())
    }

    /// Options bytes, `20..header_len` (clamped to the buffer).
    #[inline]
    pub fn options(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), field::OPTIONS, self.header_len())
    }

    /// Payload, `header_len..total_len` (clamped to the buffer), so Ethernet
    /// padding after the IP packet is excluded.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        crate::clamp(b, self.header_len(), usize::from(self.total_len()))
    }

    /// True if the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Set the version nibble.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = self.buffer.as_mut();
        b[field::VER_IHL] = (b[field::VER_IHL] & 0x0f) | (v << 4);
    }

    /// Set the header length in bytes. Meant for a multiple of 4 in `20..=60`;
    /// other values are truncated to the IHL nibble (`len / 4 & 0xf`) rather
    /// than panicking.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[field::VER_IHL] = (b[field::VER_IHL] & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Set the DSCP (low 6 bits used).
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = self.buffer.as_mut();
        b[field::DSCP_ECN] = (b[field::DSCP_ECN] & 0x03) | (dscp << 2);
    }

    /// Set the ECN (low 2 bits used).
    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = self.buffer.as_mut();
        b[field::DSCP_ECN] = (b[field::DSCP_ECN] & 0xfc) | (ecn & 0x03);
    }

    /// Set the total length.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Set the identification.
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, id);
    }

    #[inline]
    fn set_flags_offset(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }

    /// Set or clear Don't Fragment.
    #[inline]
    pub fn set_dont_frag(&mut self, df: bool) {
        let v = (self.flags_offset() & !FLAG_DF) | if df { FLAG_DF } else { 0 };
        self.set_flags_offset(v);
    }

    /// Set or clear More Fragments.
    #[inline]
    pub fn set_more_frags(&mut self, mf: bool) {
        let v = (self.flags_offset() & !FLAG_MF) | if mf { FLAG_MF } else { 0 };
        self.set_flags_offset(v);
    }

    /// Set the fragment offset in bytes (must be a multiple of 8; the low 3
    /// bits are dropped).
    #[inline]
    pub fn set_frag_offset(&mut self, bytes: u16) {
        let v = (self.flags_offset() & !OFFSET_MASK) | (bytes >> 3);
        self.set_flags_offset(v);
    }

    /// Set the TTL (checksum not updated; see
    /// [`Ipv4Packet::decrement_ttl_incremental`]).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Set the protocol.
    #[inline]
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.0;
    }

    /// Set the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Set the source address (checksum not updated).
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        write_u32(self.buffer.as_mut(), field::SRC, a.to_bits());
    }

    /// Set the destination address (checksum not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        write_u32(self.buffer.as_mut(), field::DST, a.to_bits());
    }

    /// Set the source address and patch the header checksum (RFC 1624).
    /// For NAT, also patch the TCP/UDP checksum with
    /// [`checksum::update_u32`], since their pseudo-header covers the address.
    #[inline]
    pub fn set_src_addr_incremental(&mut self, a: Ipv4Addr) {
        let old = read_u32(self.buffer.as_ref(), field::SRC);
        self.set_src_addr(a);
        let c = checksum::update_u32(self.checksum(), old, a.to_bits());
        self.set_checksum(c);
    }

    /// Set the destination address and patch the header checksum (RFC 1624).
    #[inline]
    pub fn set_dst_addr_incremental(&mut self, a: Ipv4Addr) {
        let old = read_u32(self.buffer.as_ref(), field::DST);
        self.set_dst_addr(a);
        let c = checksum::update_u32(self.checksum(), old, a.to_bits());
        self.set_checksum(c);
    }

    /// Decrement the TTL and patch the checksum with RFC 1624 instead of
    /// recomputing it over the header; returns the new TTL.
    ///
    /// A TTL of 0 is left unchanged (and 0 returned): the caller is expected
    /// to drop packets whose TTL is ≤ 1 before forwarding. If the checksum was
    /// correct before, it is correct after.
    #[inline]
    pub fn decrement_ttl_incremental(&mut self) -> u8 {
        let b = self.buffer.as_mut();
        let ttl = b[field::TTL];
        if ttl == 0 {
            return 0;
        }
        let old_word = read_u16(b, field::TTL);
        b[field::TTL] = ttl - 1;
        let new_word = read_u16(b, field::TTL);
        let c = checksum::update_u16(read_u16(b, field::CHECKSUM), old_word, new_word);
        write_u16(b, field::CHECKSUM, c);
        ttl - 1
    }

    /// Compute the header checksum and store it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// Options bytes, mutable (clamped to the buffer).
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        crate::clamp_mut(self.buffer.as_mut(), field::OPTIONS, end)
    }

    /// Payload, mutable (clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        crate::clamp_mut(self.buffer.as_mut(), start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UDP packet 192.168.0.1 -> 192.168.0.199, total length 0x73 (Wikipedia's
    /// header checksum example) with a zeroed payload.
    fn sample() -> Vec<u8> {
        let mut v = vec![
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        v.resize(0x73, 0);
        v
    }

    #[test]
    fn parse() {
        let buf = sample();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!((p.ihl(), p.header_len()), (5, 20));
        assert_eq!((p.dscp(), p.ecn()), (0, 0));
        assert_eq!(p.total_len(), 0x73);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.checksum(), 0xb861);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 0x73 - 20);
        assert!(p.verify_checksum());
    }

    #[test]
    fn padding_excluded_and_options() {
        // IHL 6 with a 4-byte NOP/EOL option, 4 bytes of payload, 6 of padding.
        let mut b = [0u8; 34];
        b[..24].copy_from_slice(&[
            0x46, 0xb8, 0x00, 0x1c, 0x12, 0x34, 0x20, 0x03, 0x01, 0x06, 0, 0, 10, 0, 0, 1, 10, 0,
            0, 2, 0x01, 0x01, 0x01, 0x00,
        ]);
        b[24..28].copy_from_slice(b"abcd");
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), b"abcd");
        assert_eq!((p.dscp(), p.ecn()), (46, 0));
        assert!(p.more_frags() && p.is_fragment() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 24);
        assert_eq!(p.ident(), 0x1234);
        p.payload_mut()[0] = b'z';
        p.options_mut()[3] = 0x01;
        assert_eq!(p.payload(), b"zbcd");
        assert!(!p.verify_checksum());
    }

    #[test]
    fn rejects() {
        let buf = sample();
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..0x72]).unwrap_err(),
            Error::Truncated
        );
        let mut b = buf.clone();
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadVersion
        );
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadHeaderLength
        );
        b[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..40]).unwrap_err(),
            Error::Truncated
        );
        let mut b = buf.clone();
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadTotalLength
        );
        // Checksum is not new_checked's business.
        let mut b = buf;
        b[11] ^= 1;
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn setters_and_incremental() {
        let mut buf = sample();
        let mut p = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.decrement_ttl_incremental(), 63);
        assert!(p.verify_checksum());
        p.set_src_addr_incremental(Ipv4Addr::new(100, 64, 1, 2));
        assert!(p.verify_checksum());
        p.set_dst_addr_incremental(Ipv4Addr::new(8, 8, 4, 4));
        assert!(p.verify_checksum());
        p.set_dscp(10);
        p.set_ecn(3);
        p.set_ident(7);
        p.set_dont_frag(false);
        p.set_more_frags(true);
        p.set_frag_offset(1480);
        p.set_protocol(IpProtocol::TCP);
        p.set_total_len(40);
        p.set_ttl(1);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!((p.dscp(), p.ecn(), p.ident()), (10, 3, 7));
        assert!(!p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(p.protocol(), IpProtocol::TCP);
        assert_eq!(p.payload().len(), 20);
        assert_eq!(p.decrement_ttl_incremental(), 0);
        assert_eq!(p.decrement_ttl_incremental(), 0);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(100, 64, 1, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(8, 8, 4, 4));
        // Setters that break the lengths never make slice getters panic.
        p.set_header_len(60);
        p.set_total_len(0xffff);
        let _ = (p.options(), p.payload(), p.verify_checksum());
        p.set_header_len(20);
        p.set_version(6);
        assert_eq!(p.version(), 6);
        assert_eq!(p.check_len().unwrap_err(), Error::BadVersion);
    }
}
