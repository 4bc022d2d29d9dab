//! TCP header (RFC 9293).
//!
//! The view covers the whole segment: pass it exactly the IP payload (after
//! any IPv6 extension headers), since TCP has no length field of its own and
//! the checksum covers every byte of the buffer.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{Error, IpProtocol, checksum, read_u16, read_u32, write_u16, write_u32};

/// Byte offsets of the TCP header.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const OPTIONS: usize = 20;
}

/// Length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS;

/// The eight TCP flag bits (byte 13 of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True if every bit of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl fmt::Display for TcpFlags {
    /// Names joined by `|` (`SYN|ACK`), or `-` when no flag is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        if self.0 == 0 {
            return f.write_str("-");
        }
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// View of a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpSegment<T> {
    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Fixed-field accessors panic later if the buffer is shorter than
    /// [`HEADER_LEN`]; `options()`/`payload()` never panic.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpSegment { buffer }
    }

    /// Wrap `buffer` after [`TcpSegment::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let s = Self::new_unchecked(buffer);
        s.check_len()?;
        Ok(s)
    }

    /// Buffer ≥ 20 bytes (else `Truncated`), data offset ≥ 5 (else
    /// `BadHeaderLength`) and header length ≤ buffer (else `Truncated`).
    #[inline]
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hlen = usize::from(b[field::DATA_OFF] >> 4) * 4;
        if hlen < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if hlen > b.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Give the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgment number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Data offset in 32-bit words.
    #[inline]
    pub fn data_offset(&self) -> u8 {
        self.buffer.as_ref()[field::DATA_OFF] >> 4
    }

    /// Header length in bytes (data offset * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }

    /// The flag bits.
    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// Options bytes, `20..header_len` (clamped to the buffer).
    #[inline]
    pub fn options(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), field::OPTIONS, self.header_len())
    }

    /// Segment data after the header (clamped to the buffer).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), self.header_len(), usize::MAX)
    }

    fn compute(&self, pseudo: u64) -> u16 {
        checksum::finish(pseudo + checksum::sum(self.buffer.as_ref()))
    }

    #[inline]
    fn len_u16(&self) -> u16 {
        u16::try_from(self.buffer.as_ref().len()).unwrap_or(u16::MAX)
    }

    #[inline]
    fn len_u32(&self) -> u32 {
        u32::try_from(self.buffer.as_ref().len()).unwrap_or(u32::MAX)
    }

    /// True if the checksum (IPv4 pseudo-header + whole buffer) is correct.
    #[inline]
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.compute(checksum::pseudo_header_v4(
            src,
            dst,
            IpProtocol::TCP,
            self.len_u16(),
        )) == 0
    }

    /// True if the checksum (IPv6 pseudo-header + whole buffer) is correct.
    #[inline]
    pub fn verify_checksum_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.compute(checksum::pseudo_header_v6(
            src,
            dst,
            IpProtocol::TCP,
            self.len_u32(),
        )) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
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

    /// Set the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, v);
    }

    /// Set the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Set the header length in bytes. Meant for a multiple of 4 in
    /// `20..=60`; stored as `len / 4` truncated to the data-offset nibble
    /// (never panics). The low 4 bits of byte 12 (reserved / NS) are preserved.
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[field::DATA_OFF] = (b[field::DATA_OFF] & 0x0f) | ((((len / 4) as u8) & 0x0f) << 4);
    }

    /// Set all eight flag bits.
    #[inline]
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    /// Set the receive window.
    #[inline]
    pub fn set_window(&mut self, w: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, w);
    }

    /// Set the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Set the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, u: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, u);
    }

    /// Compute and store the checksum with the IPv4 pseudo-header.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = self.compute(checksum::pseudo_header_v4(
            src,
            dst,
            IpProtocol::TCP,
            self.len_u16(),
        ));
        self.set_checksum(c);
    }

    /// Compute and store the checksum with the IPv6 pseudo-header.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = self.compute(checksum::pseudo_header_v6(
            src,
            dst,
            IpProtocol::TCP,
            self.len_u32(),
        ));
        self.set_checksum(c);
    }

    /// Options bytes, mutable (clamped to the buffer).
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        crate::clamp_mut(self.buffer.as_mut(), field::OPTIONS, end)
    }

    /// Segment data, mutable (clamped to the buffer).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        crate::clamp_mut(self.buffer.as_mut(), start, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SYN 10.0.0.1:40000 -> 10.0.0.2:80, seq 1, MSS 1460 option, window 64240.
    const SYN: [u8; 24] = [
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];

    fn v4() -> (Ipv4Addr, Ipv4Addr) {
        (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
    }

    #[test]
    fn parse_syn() {
        let s = TcpSegment::new_checked(&SYN[..]).unwrap();
        assert_eq!((s.src_port(), s.dst_port()), (40000, 80));
        assert_eq!((s.seq_number(), s.ack_number()), (1, 0));
        assert_eq!((s.data_offset(), s.header_len()), (6, 24));
        assert_eq!(s.flags(), TcpFlags::SYN);
        assert_eq!(s.flags().to_string(), "SYN");
        assert_eq!(s.window(), 64240);
        assert_eq!(s.urgent(), 0);
        assert_eq!(s.options(), &[2, 4, 5, 0xb4]);
        assert!(s.payload().is_empty());
    }

    #[test]
    fn checksum_v4_by_hand() {
        let (src, dst) = v4();
        let mut b = SYN;
        let mut s = TcpSegment::new_checked(&mut b[..]).unwrap();
        s.fill_checksum_v4(src, dst);
        // Reference: the RFC 1071 sum over pseudo-header bytes + segment.
        let mut all = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 24];
        all.extend_from_slice(&SYN);
        assert_eq!(s.checksum(), checksum::checksum(&all));
        assert!(s.verify_checksum_v4(src, dst));
        assert!(!s.verify_checksum_v4(dst, Ipv4Addr::new(10, 0, 0, 3)));
        let (s6, d6): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        s.fill_checksum_v6(&s6, &d6);
        assert!(s.verify_checksum_v6(&s6, &d6));
        assert!(!s.verify_checksum_v6(&d6, &"2001:db8::3".parse().unwrap()));
    }

    #[test]
    fn rejects_and_setters() {
        assert_eq!(
            TcpSegment::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            TcpSegment::new_checked(&SYN[..23]).unwrap_err(),
            Error::Truncated
        );
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(
            TcpSegment::new_checked(&b[..]).unwrap_err(),
            Error::BadHeaderLength
        );

        let mut buf = [0u8; 26];
        let mut s = TcpSegment::new_unchecked(&mut buf[..]);
        s.set_src_port(1);
        s.set_dst_port(2);
        s.set_seq_number(3);
        s.set_ack_number(4);
        s.set_header_len(24);
        s.set_flags(TcpFlags::SYN | TcpFlags::ACK);
        s.set_window(5);
        s.set_urgent(6);
        s.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        s.payload_mut().copy_from_slice(b"ok");
        s.check_len().unwrap();
        assert_eq!(
            (s.src_port(), s.dst_port(), s.seq_number(), s.ack_number()),
            (1, 2, 3, 4)
        );
        assert_eq!((s.window(), s.urgent(), s.header_len()), (5, 6, 24));
        assert!(s.flags().contains(TcpFlags::SYN | TcpFlags::ACK));
        assert!(!s.flags().contains(TcpFlags::SYN | TcpFlags::FIN));
        assert!(s.flags().intersects(TcpFlags::FIN | TcpFlags::ACK));
        assert_eq!(s.flags().to_string(), "SYN|ACK");
        assert_eq!(TcpFlags::default().to_string(), "-");
        let mut f = TcpFlags::FIN;
        f |= TcpFlags::CWR;
        assert_eq!((f & TcpFlags::CWR, f.0), (TcpFlags::CWR, 0x81));
        assert_eq!(s.payload(), b"ok");
        // A data offset past the buffer never makes the slice getters panic.
        s.set_header_len(60);
        assert_eq!(s.options().len(), 6);
        assert!(s.payload().is_empty());
        assert_eq!(s.into_inner()[0..2], [0, 1]);
    }
}
