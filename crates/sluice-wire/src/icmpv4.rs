//! ICMP for IPv4 (RFC 792).
//!
//! The view covers the whole ICMP message: pass it exactly the IPv4 payload,
//! since the checksum is computed over every byte of the buffer.

use core::fmt;

use crate::{Error, checksum, read_u16, read_u32, write_u16, write_u32};

/// Byte offsets of the ICMPv4 header.
mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const REST: usize = 4;
    pub const PAYLOAD: usize = 8;
}

/// Length of the ICMPv4 header (type, code, checksum, 4 bytes of
/// type-specific data); every ICMPv4 message has at least this much.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// An ICMPv4 message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmpv4Type(pub u8);

impl Icmpv4Type {
    /// Echo reply.
    pub const ECHO_REPLY: Icmpv4Type = Icmpv4Type(0);
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: Icmpv4Type = Icmpv4Type(3);
    /// Redirect.
    pub const REDIRECT: Icmpv4Type = Icmpv4Type(5);
    /// Echo request.
    pub const ECHO_REQUEST: Icmpv4Type = Icmpv4Type(8);
    /// Time exceeded (TTL expired in transit is code 0).
    pub const TIME_EXCEEDED: Icmpv4Type = Icmpv4Type(11);
    /// Parameter problem.
    pub const PARAM_PROBLEM: Icmpv4Type = Icmpv4Type(12);
}

impl fmt::Display for Icmpv4Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match *self {
            Icmpv4Type::ECHO_REPLY => "echo-reply",
            Icmpv4Type::DEST_UNREACHABLE => "dest-unreachable",
            Icmpv4Type::REDIRECT => "redirect",
            Icmpv4Type::ECHO_REQUEST => "echo-request",
            Icmpv4Type::TIME_EXCEEDED => "time-exceeded",
            Icmpv4Type::PARAM_PROBLEM => "param-problem",
            Icmpv4Type(n) => return write!(f, "{n}"),
        };
        f.write_str(s)
    }
}

/// View of an ICMPv4 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wrap `buffer` without checking it.
    ///
    /// # Panics
    /// Accessors panic later if the buffer is shorter than [`HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
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
    pub fn msg_type(&self) -> Icmpv4Type {
        Icmpv4Type(self.buffer.as_ref()[field::TYPE])
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

    /// Bytes 4..8, whose meaning depends on the type (e.g. next-hop MTU for
    /// "fragmentation needed", gateway for redirect).
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::REST)
    }

    /// Everything after the 8-byte header (echo data, or the offending IP
    /// header for error messages).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        crate::clamp(self.buffer.as_ref(), field::PAYLOAD, usize::MAX)
    }

    /// True if the checksum over the whole buffer is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Set the message type.
    #[inline]
    pub fn set_msg_type(&mut self, t: Icmpv4Type) {
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

    /// Compute the checksum over the whole buffer and store it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
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

    /// `ping` echo request, id 0x1234 seq 1, 8 bytes of data.
    const ECHO: [u8; 16] = [
        0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd', b'e', b'f', b'g',
        b'h',
    ];

    #[test]
    fn parse_echo() {
        let p = Icmpv4Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Type::ECHO_REQUEST);
        assert_eq!(p.msg_type().to_string(), "echo-request");
        assert_eq!(p.code(), 0);
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert_eq!(p.payload(), b"abcdefgh");
        assert_eq!(p.header_len(), 8);
        assert_eq!(
            p.checksum(),
            crate::checksum::checksum(&[
                8, 0, 0, 0, 0x12, 0x34, 0, 1, 97, 98, 99, 100, 101, 102, 103, 104
            ])
        );
        assert!(p.verify_checksum());
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn build_reply() {
        let mut b = ECHO;
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_msg_type(Icmpv4Type::ECHO_REPLY);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        // Type 8 -> 0 changes the checksum by exactly 0x0800 (one's complement).
        assert_eq!(p.checksum(), 0x5435 + 0x0800);
        p.set_code(1);
        p.set_echo_ident(7);
        p.set_echo_seq_no(9);
        p.payload_mut()[0] = b'z';
        p.fill_checksum();
        assert!(p.verify_checksum());
        p.set_rest_of_header(0xdead_beef);
        assert_eq!(
            (p.echo_ident(), p.echo_seq_no(), p.code()),
            (0xdead, 0xbeef, 1)
        );
        assert_eq!(Icmpv4Type(42).to_string(), "42");
        assert_eq!(p.into_inner()[8], b'z');
    }
}
