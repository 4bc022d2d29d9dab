//! UDP header (RFC 768).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{Error, IpProtocol, checksum, read_u16, write_u16};

/// Byte offsets of the UDP header.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const PAYLOAD: usize = 8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// View of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Fixed-field accessors panic later if the buffer is shorter than
    /// [`HEADER_LEN`]; `payload()` and the checksum methods never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpDatagram { buffer }
    }

    /// Wrap `buffer` after [`UdpDatagram::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let d = Self::new_unchecked(buffer);
        d.check_len()?;
        Ok(d)
    }

    /// Buffer ≥ 8 bytes (else `Truncated`), length field ≥ 8 (else
    /// `BadTotalLength`) and length field ≤ buffer (else `Truncated`).
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(read_u16(b, field::LENGTH));
        if len < HEADER_LEN {
            return Err(Error::BadTotalLength);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header + payload in bytes.
    #[inline]
    pub fn length(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Checksum as stored (0 over IPv4 means "not computed").
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// `8..length` (clamped to the buffer): trailing bytes past the length
    /// field are not payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        crate::clamp(
            self.buffer.as_ref(),
            field::PAYLOAD,
            usize::from(self.length()),
        )
    }

    /// The datagram as the length field delimits it (clamped to the buffer).
    #[inline]
    fn datagram(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), 0, usize::from(self.length()))
    }

    fn compute(&self, pseudo: u64) -> u16 {
        checksum::finish(pseudo + checksum::sum(self.datagram()))
    }

    /// True if the checksum is correct or absent (0): over IPv4 the
    /// checksum is optional.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0
            || self.compute(checksum::pseudo_header_v4(
                src,
                dst,
                IpProtocol::UDP,
                self.length(),
            )) == 0
    }

    /// True if the checksum is correct. Over IPv6 the checksum is mandatory
    /// (RFC 8200 §8.1), so a stored 0 fails.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum() != 0
            && self.compute(checksum::pseudo_header_v6(
                src,
                dst,
                IpProtocol::UDP,
                u32::from(self.length()),
            )) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    /// Set the source port (checksum not updated).
    #[inline]
    pub fn set_src_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, p);
    }

    /// Set the destination port (checksum not updated).
    #[inline]
    pub fn set_dst_port(&mut self, p: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, p);
    }

    /// Set the length field.
    #[inline]
    pub fn set_length(&mut self, len: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Set the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// A computed 0 is sent as 0xffff (RFC 768), because 0 means "no
    /// checksum"; the two are equal in one's complement arithmetic.
    #[inline]
    fn store(&mut self, c: u16) {
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Compute and store the checksum with the IPv4 pseudo-header, over
    /// `0..length`.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = self.compute(checksum::pseudo_header_v4(
            src,
            dst,
            IpProtocol::UDP,
            self.length(),
        ));
        self.store(c);
    }

    /// Compute and store the checksum with the IPv6 pseudo-header, over
    /// `0..length`.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let len = u32::from(self.length());
        let c = self.compute(checksum::pseudo_header_v6(src, dst, IpProtocol::UDP, len));
        self.store(c);
    }

    /// Payload, mutable (clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        crate::clamp_mut(self.buffer.as_mut(), field::PAYLOAD, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DNS-ish query 10.0.0.1:53000 -> 10.0.0.53:53, 4 payload bytes, then 2
    /// bytes of trailing padding that are not part of the datagram.
    const DGRAM: [u8; 14] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4, 0xee, 0xee,
    ];

    fn v4() -> (Ipv4Addr, Ipv4Addr) {
        (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 53))
    }

    #[test]
    fn parse() {
        let d = UdpDatagram::new_checked(&DGRAM[..]).unwrap();
        assert_eq!((d.src_port(), d.dst_port(), d.length()), (53000, 53, 12));
        assert_eq!(d.payload(), &[1, 2, 3, 4]);
        assert_eq!(d.header_len(), 8);
        let (s, t) = v4();
        assert!(
            d.verify_checksum_v4(s, t),
            "zero checksum means none over IPv4"
        );
        let (s6, t6) = ("::1".parse().unwrap(), "::2".parse().unwrap());
        assert!(
            !d.verify_checksum_v6(&s6, &t6),
            "zero checksum is invalid over IPv6"
        );
    }

    #[test]
    fn fill_and_verify() {
        let (s, t) = v4();
        let mut b = DGRAM;
        let mut d = UdpDatagram::new_checked(&mut b[..]).unwrap();
        d.fill_checksum_v4(s, t);
        let mut all = vec![10, 0, 0, 1, 10, 0, 0, 53, 0, 17, 0, 12];
        all.extend_from_slice(&DGRAM[..12]);
        assert_eq!(d.checksum(), checksum::checksum(&all));
        assert!(d.verify_checksum_v4(s, t));
        assert!(!d.verify_checksum_v4(t, Ipv4Addr::new(1, 2, 3, 4)));
        d.payload_mut()[0] = 9;
        assert!(!d.verify_checksum_v4(s, t));
        let (s6, t6): (Ipv6Addr, Ipv6Addr) =
            ("fe80::1".parse().unwrap(), "ff02::fb".parse().unwrap());
        d.fill_checksum_v6(&s6, &t6);
        assert!(d.verify_checksum_v6(&s6, &t6));
    }

    #[test]
    fn zero_becomes_ffff() {
        // Pick the payload word so that the computed checksum is exactly 0.
        let (s, t) = v4();
        let mut b = [0u8; 10];
        let mut d = UdpDatagram::new_unchecked(&mut b[..]);
        d.set_src_port(1);
        d.set_dst_port(2);
        d.set_length(10);
        let partial = checksum::pseudo_header_v4(s, t, IpProtocol::UDP, 10)
            + checksum::sum(&[0, 1, 0, 2, 0, 10]);
        // Choose w with fold(partial + w) == 0xffff.
        let w = 0xffff - checksum::fold(partial);
        d.payload_mut().copy_from_slice(&w.to_be_bytes());
        d.fill_checksum_v4(s, t);
        assert_eq!(d.checksum(), 0xffff);
        assert!(d.verify_checksum_v4(s, t));
    }

    #[test]
    fn rejects() {
        assert_eq!(
            UdpDatagram::new_checked(&DGRAM[..7]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            UdpDatagram::new_checked(&DGRAM[..11]).unwrap_err(),
            Error::Truncated
        );
        let mut b = DGRAM;
        b[5] = 7;
        assert_eq!(
            UdpDatagram::new_checked(&b[..]).unwrap_err(),
            Error::BadTotalLength
        );
        let mut d = UdpDatagram::new_unchecked(&mut b[..]);
        d.set_length(0xffff);
        let _ = (
            d.payload(),
            d.verify_checksum_v4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST),
        );
        d.set_checksum(1);
        assert_eq!(d.into_inner()[7], 1);
    }
}
