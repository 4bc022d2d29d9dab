//! IP protocol numbers, shared by IPv4 (`protocol`) and IPv6 (`next_header`).

use core::fmt;

/// An IANA "Assigned Internet Protocol Number": the IPv4 `protocol` field and
/// the IPv6 `next_header` field (which also names extension headers).
///
/// A newtype rather than an enum so that every one of the 256 values round-trips
/// unchanged, including ones this crate has no name for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// IPv6 Hop-by-Hop Options extension header.
    pub const HOPOPTS: IpProtocol = IpProtocol(0);
    /// Internet Control Message Protocol (for IPv4).
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// Transmission Control Protocol.
    pub const TCP: IpProtocol = IpProtocol(6);
    /// User Datagram Protocol.
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 Routing extension header.
    pub const ROUTING: IpProtocol = IpProtocol(43);
    /// IPv6 Fragment extension header.
    pub const FRAGMENT: IpProtocol = IpProtocol(44);
    /// Encapsulating Security Payload; opaque, so header walks stop at it.
    pub const ESP: IpProtocol = IpProtocol(50);
    /// Authentication Header (length in 4-octet units, minus 2).
    pub const AH: IpProtocol = IpProtocol(51);
    /// ICMP for IPv6.
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// IPv6 "No Next Header": nothing follows.
    pub const NONE: IpProtocol = IpProtocol(59);
    /// IPv6 Destination Options extension header.
    pub const DSTOPTS: IpProtocol = IpProtocol(60);

    /// True for the IPv6 extension headers that the walk in
    /// [`crate::ipv6`] steps over: Hop-by-Hop, Routing, Fragment, Destination
    /// Options and AH.
    #[inline]
    pub const fn is_ipv6_extension(self) -> bool {
        matches!(self.0, 0 | 43 | 44 | 51 | 60)
    }
}

impl From<u8> for IpProtocol {
    #[inline]
    fn from(v: u8) -> Self {
        IpProtocol(v)
    }
}

impl From<IpProtocol> for u8 {
    #[inline]
    fn from(v: IpProtocol) -> Self {
        v.0
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            IpProtocol::HOPOPTS => "hopopts",
            IpProtocol::ICMP => "icmp",
            IpProtocol::TCP => "tcp",
            IpProtocol::UDP => "udp",
            IpProtocol::ROUTING => "routing",
            IpProtocol::FRAGMENT => "fragment",
            IpProtocol::ESP => "esp",
            IpProtocol::AH => "ah",
            IpProtocol::ICMPV6 => "icmpv6",
            IpProtocol::NONE => "none",
            IpProtocol::DSTOPTS => "dstopts",
            IpProtocol(n) => return write!(f, "{n}"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_extension() {
        assert_eq!(IpProtocol::TCP.to_string(), "tcp");
        assert_eq!(IpProtocol(99).to_string(), "99");
        assert!(IpProtocol::FRAGMENT.is_ipv6_extension());
        assert!(IpProtocol::AH.is_ipv6_extension());
        assert!(!IpProtocol::ESP.is_ipv6_extension());
        assert!(!IpProtocol::TCP.is_ipv6_extension());
        assert_eq!(u8::from(IpProtocol::from(17)), 17);
    }
}
