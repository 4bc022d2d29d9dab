//! ICMP for IPv6 (RFC 4443).
//!
//! The view covers the whole ICMPv6 message (pass the upper-layer part of the
//! IPv6 payload); the checksum includes the IPv6 pseudo-header, so verify and
//! fill take the source and destination addresses.

use core::fmt;
use std::net::Ipv6Addr;

use crate::{Error, IpProtocol, checksum, read_u16, read_u32, write_u16, write_u32};

/// Byte offsets of the ICMPv6 header.
mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const REST: usize = 4;
    pub const PAYLOAD: usize = 8;
}

/// Length the view requires: type, code, checksum and the 4 bytes of
/// message body that every defined ICMPv6 message has (echo id/seq, MTU,
/// pointer, reserved...).
pub const HEADER_LEN: usize = field::PAYLOAD;

/// An ICMPv6 message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmpv6Type(pub u8);

impl Icmpv6Type {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: Icmpv6Type = Icmpv6Type(1);
    /// Packet too big (rest-of-header is the MTU).
    pub const PACKET_TOO_BIG: Icmpv6Type = Icmpv6Type(2);
    /// Time exceeded (hop limit exceeded in transit is code 0).
    pub const TIME_EXCEEDED: Icmpv6Type = Icmpv6Type(3);
    /// Parameter problem.
    pub const PARAM_PROBLEM: Icmpv6Type = Icmpv6Type(4);
    /// Echo request.
    pub const ECHO_REQUEST: Icmpv6Type = Icmpv6Type(128);
    /// Echo reply.
    pub const ECHO_REPLY: Icmpv6Type = Icmpv6Type(129);
    /// NDP router solicitation.
    pub const ROUTER_SOLICIT: Icmpv6Type = Icmpv6Type(133);
    /// NDP router advertisement.
    pub const ROUTER_ADVERT: Icmpv6Type = Icmpv6Type(134);
    /// NDP neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: Icmpv6Type = Icmpv6Type(135);
    /// NDP neighbor advertisement.
    pub const NEIGHBOR_ADVERT: Icmpv6Type = Icmpv6Type(136);
    /// NDP redirect.
    pub const REDIRECT: Icmpv6Type = Icmpv6Type(137);

    /// Error messages have types 0..=127, informational ones 128..=255.
    #[inline]
    pub const fn is_error(self) -> bool {
        self.0 < 128
    }
}

impl fmt::Display for Icmpv6Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match *self {
            Icmpv6Type::DEST_UNREACHABLE => "dest-unreachable",
            Icmpv6Type::PACKET_TOO_BIG => "packet-too-big",
            Icmpv6Type::TIME_EXCEEDED => "time-exceeded",
            Icmpv6Type::PARAM_PROBLEM => "param-problem",
            Icmpv6Type::ECHO_REQUEST => "echo-request",
            Icmpv6Type::ECHO_REPLY => "echo-reply",
            Icmpv6Type::ROUTER_SOLICIT => "router-solicit",
            Icmpv6Type::ROUTER_ADVERT => "router-advert",
            Icmpv6Type::NEIGHBOR_SOLICIT => "neighbor-solicit",
            Icmpv6Type::NEIGHBOR_ADVERT => "neighbor-advert",
            Icmpv6Type::REDIRECT => "redirect",
            Icmpv6Type(n) => return write!(f, "{n}"),
        };
        f.write_str(s)
    }
}

/// View of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Accessors panic later if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wrap `buffer`, checking that it holds at least 8 bytes.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(Truncated)` if the buffer is shorter than 8 bytes.
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

    /// Always 8.
    #[inline]
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv6Type {
        Icmpv6Type(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as stored.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier (meaningful for echo request/reply).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// Bytes 4..8 (MTU for packet-too-big, pointer for parameter problem,
    /// flags for neighbor advertisement, ...).
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST)
    }

    /// Everything after the first 8 bytes.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), field::PAYLOAD, usize::MAX)
    }

    fn compute(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u16 {
        let b = self.buffer.as_ref();
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        checksum::finish(
            checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6, len) + checksum::sum(b),
        )
    }

    /// True if the checksum (pseudo-header + whole buffer) is correct.
    #[inline]
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.compute(src, dst) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Set the message type.
    #[inline]
    pub fn set_msg_type(&mut self, t: Icmpv6Type) {
        self.buffer.as_mut()[field::TYPE] = t.0;
    }

    /// Set the message code.
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c;
    }

    /// Set the stored checksum.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Set the echo identifier.
    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    /// Set the echo sequence number.
    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, v);
    }

    /// Set bytes 4..8.
    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::REST, v);
    }

    /// Compute the checksum (pseudo-header + whole buffer) and store it.
    #[inline]
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let c = self.compute(src, dst);
        self.set_checksum(c);
    }

    /// Payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        crate::clamp_mut(self.buffer.as_mut(), field::PAYLOAD, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        ("fe80::1".parse().unwrap(), "fe80::2".parse().unwrap())
    }

    /// Echo request fe80::1 -> fe80::2, id 0x1234, seq 1, data "hi".
    /// Checksum worked by hand: the pseudo-header sums to 0x1fd47 (twice
    /// 0xfe80, then 1, 2, length 10 and next header 58), the message to 0xfa9e
    /// (0x8000, 0x1234, 1, 0x6869); 0x2f7e5 folds to 0xf7e7, complement 0x0818.
    const ECHO: [u8; 10] = [0x80, 0x00, 0x08, 0x18, 0x12, 0x34, 0x00, 0x01, b'h', b'i'];

    #[test]
    fn parse_echo() {
        let (s, d) = addrs();
        let p = Icmpv6Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Type::ECHO_REQUEST);
        assert!(!p.msg_type().is_error());
        assert_eq!(p.msg_type().to_string(), "echo-request");
        assert_eq!((p.code(), p.echo_ident(), p.echo_seq_no()), (0, 0x1234, 1));
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert_eq!(p.payload(), b"hi");
        assert_eq!(p.header_len(), 8);
        assert_eq!(p.checksum(), 0x0818);
        assert!(p.verify_checksum(&s, &d));
        assert!(!p.verify_checksum(&d, &"fe80::3".parse().unwrap()));
        assert_eq!(
            Icmpv6Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn build() {
        let (s, d) = addrs();
        let mut b = ECHO;
        let mut p = Icmpv6Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(Icmpv6Type::ECHO_REPLY);
        assert!(!p.verify_checksum(&d, &s));
        p.fill_checksum(&d, &s);
        assert!(p.verify_checksum(&d, &s));
        p.set_code(3);
        p.set_echo_ident(1);
        p.set_echo_seq_no(2);
        p.payload_mut()[1] = b'o';
        p.fill_checksum(&d, &s);
        assert!(p.verify_checksum(&d, &s));
        p.set_msg_type(Icmpv6Type::PACKET_TOO_BIG);
        p.set_rest_of_header(1280);
        assert!(p.msg_type().is_error());
        assert_eq!(p.rest_of_header(), 1280);
        assert_eq!(Icmpv6Type(200).to_string(), "200");
        assert_eq!(&p.into_inner()[8..], b"ho");
    }
}
