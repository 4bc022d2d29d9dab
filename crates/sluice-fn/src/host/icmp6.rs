//! ICMPv6 as a router sends it (RFC 4443): echo replies and error messages.
//!
//! Packets start at the IPv6 header and may be chained; the fixed header and
//! any extension headers must be in the first buffer.

use std::net::Ipv6Addr;

use sluice_buf::Packet;
use sluice_wire::ipv6::HEADER_LEN;
use sluice_wire::{Error, IpProtocol, Ipv6Packet, checksum};

use super::{DEFAULT_TTL, HostError, addr_sum, ipv6_is_host, sum_span};

/// Largest ICMPv6 error packet: the IPv6 minimum MTU (RFC 4443 2.4(c)).
pub const MAX_ERROR_LEN: usize = 1280;

/// Bytes an error puts in front of the invoking packet: the IPv6 header and
/// the 8-byte ICMPv6 header.
pub const ERROR_HEADERS_LEN: usize = HEADER_LEN + ICMP_HEADER_LEN;

const ICMP_HEADER_LEN: usize = sluice_wire::icmpv6::HEADER_LEN;
const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;

/// The ICMPv6 errors a router sends, with their type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmp6Error {
    /// Time exceeded: hop limit exceeded in transit (type 3 code 0).
    HopLimitExceeded,
    /// Destination unreachable: no route to destination (type 1 code 0).
    NoRoute,
    /// Destination unreachable: communication administratively prohibited
    /// (type 1 code 1).
    AdminProhibited,
    /// Destination unreachable: address unreachable, e.g. Neighbour
    /// Discovery failed (type 1 code 3).
    AddressUnreachable,
    /// Destination unreachable: port unreachable (type 1 code 4).
    PortUnreachable,
    /// Packet too big, with the MTU of the next hop (type 2 code 0).
    PacketTooBig {
        /// MTU of the link the packet did not fit.
        mtu: u32,
    },
}

impl Icmp6Error {
    /// The ICMPv6 type and code.
    pub const fn type_code(self) -> (u8, u8) {
        match self {
            Icmp6Error::HopLimitExceeded => (3, 0),
            Icmp6Error::NoRoute => (1, 0),
            Icmp6Error::AdminProhibited => (1, 1),
            Icmp6Error::AddressUnreachable => (1, 3),
            Icmp6Error::PortUnreachable => (1, 4),
            Icmp6Error::PacketTooBig { .. } => (2, 0),
        }
    }

    /// Bytes 4..8 of the ICMPv6 header: unused (zero), except the MTU of
    /// packet too big (RFC 4443 3.2).
    const fn rest_of_header(self) -> u32 {
        match self {
            Icmp6Error::PacketTooBig { mtu } => mtu,
            _ => 0,
        }
    }
}

/// Checks the IPv6 fixed header in the first buffer against the whole
/// packet and returns its total length (40 + payload length).
fn check_header(pkt: &Packet) -> Result<usize, HostError> {
    let d = pkt.data();
    if d.len() < HEADER_LEN {
        return Err(Error::Truncated.into());
    }
    let ip = Ipv6Packet::new_unchecked(d);
    if ip.version() != 6 {
        return Err(Error::BadVersion.into());
    }
    let total = ip.total_len();
    if total > pkt.total_len() {
        return Err(Error::Truncated.into());
    }
    Ok(total)
}

/// Turns an ICMPv6 echo request addressed to us into its echo reply, in
/// place (RFC 4443 4.2).
///
/// The request's checksum (pseudo-header included) is verified over the
/// whole message, every buffer of a chain included. The reply swaps source
/// and destination, except that a request to a multicast address is
/// answered from `our_addr` (RFC 4443 4.2: the reply's source must be a
/// unicast address of the interface; the caller picks one of the scope of
/// the request's source); hop limit 64, type 129 code 0, and the
/// checksum patched for what changed (RFC 1624) rather than summed again.
/// Traffic class and flow label are reflected. Extension headers are dropped:
/// the reply carries the ICMPv6 message right after the fixed header.
///
/// Refused: not ICMPv6 or not an echo request ([`HostError::WrongKind`]);
/// a fragment ([`HostError::Unsupported`]); a source that is unspecified
/// or multicast ([`HostError::NotAllowed`]); a bad checksum.
pub fn echo_reply(pkt: &mut Packet, our_addr: Ipv6Addr) -> Result<(), HostError> {
    let total = check_header(pkt)?;
    let d = pkt.data();
    let ip = Ipv6Packet::new_unchecked(d);
    let ul = ip.upper_layer()?;
    if ul.fragment.is_some_and(|f| f.offset != 0 || f.more) {
        return Err(HostError::Unsupported("fragmented echo request"));
    }
    if ul.protocol != IpProtocol::ICMPV6 {
        return Err(HostError::WrongKind("an ICMPv6 message"));
    }
    let at = ul.offset;
    if total < at + ICMP_HEADER_LEN {
        return Err(Error::Truncated.into());
    }
    let Some(icmp) = d.get(at..at + ICMP_HEADER_LEN) else {
        return Err(HostError::NoRoom("ICMPv6 header beyond the first buffer"));
    };
    if icmp[0] != ECHO_REQUEST {
        return Err(HostError::WrongKind("an ICMPv6 echo request"));
    }
    let old_word = u16::from_be_bytes([icmp[0], icmp[1]]);
    let old_csum = u16::from_be_bytes([icmp[2], icmp[3]]);
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !ipv6_is_host(&src) {
        return Err(HostError::NotAllowed(
            "echo request from an unspecified or multicast address",
        ));
    }
    let icmp_len = total - at;
    // icmp_len < 2^16: it is part of a 16-bit payload length.
    let pseudo = checksum::pseudo_header_v6(&src, &dst, IpProtocol::ICMPV6, icmp_len as u32);
    if checksum::finish(pseudo + sum_span(pkt, at, total)) != 0 {
        return Err(HostError::BadChecksum);
    }
    let reply_src = if dst.is_multicast() { our_addr } else { dst };

    if total < pkt.total_len() {
        pkt.truncate(total)?;
    }
    let ext = at - HEADER_LEN;
    if ext > 0 {
        pkt.data_mut().copy_within(..HEADER_LEN, ext);
        pkt.advance(ext)?;
    }
    let d = pkt.data_mut();
    let (ip_hdr, rest) = d.split_at_mut(HEADER_LEN);
    let mut ip = Ipv6Packet::new_unchecked(ip_hdr);
    ip.set_payload_len(icmp_len as u16);
    ip.set_next_header(IpProtocol::ICMPV6);
    ip.set_hop_limit(DEFAULT_TTL);
    ip.set_src_addr(&reply_src);
    ip.set_dst_addr(&src);
    rest[0] = ECHO_REPLY;
    rest[1] = 0;
    // RFC 1624 eqn. 3 over every changed word: the type/code word, and the
    // pseudo-header's destination when a multicast one became `our_addr`
    // (swapping two addresses leaves the sum as it was).
    let new_word = u16::from(ECHO_REPLY) << 8;
    let mut s = u64::from(!old_csum) + u64::from(!old_word) + u64::from(new_word);
    if reply_src != dst {
        s += u64::from(!addr_sum(&dst)) + u64::from(addr_sum(&reply_src));
    }
    let csum = !checksum::fold(s);
    rest[2..4].copy_from_slice(&csum.to_be_bytes());
    Ok(())
}

/// Turns the packet that caused an error into the ICMPv6 error sent back to
/// its source, in place (RFC 4443 3).
///
/// The result is a new IPv6 header (source `src`, destination the invoking
/// packet's source, hop limit 64, traffic class and flow label 0), the
/// ICMPv6 header, then as much of the invoking packet as keeps the error
/// within [`MAX_ERROR_LEN`] bytes (RFC 4443 2.4(c)), link padding excluded.
/// The headers go in the headroom; a chain is truncated into its first
/// buffer (which then limits how much of the invoking packet is carried).
///
/// [`HostError::NotAllowed`] for the exceptions of RFC 4443 2.4(e): an
/// error about an ICMPv6 error message (or an ICMPv6 message whose type
/// cannot be read); about a packet to a multicast address, except packet
/// too big; about a packet whose source is unspecified or multicast. A
/// packet that came as a link-layer multicast or broadcast is also excepted,
/// but only the caller can tell.
pub fn error(pkt: &mut Packet, kind: Icmp6Error, src: Ipv6Addr) -> Result<(), HostError> {
    let total = check_header(pkt)?;
    let d = pkt.data();
    let ip = Ipv6Packet::new_unchecked(d);
    let to = ip.src_addr();
    if !ipv6_is_host(&to) {
        return Err(HostError::NotAllowed(
            "error about a packet from an unspecified or multicast source",
        ));
    }
    if ip.dst_addr().is_multicast() && !matches!(kind, Icmp6Error::PacketTooBig { .. }) {
        return Err(HostError::NotAllowed(
            "error about a packet to a multicast address",
        ));
    }
    // A header chain we cannot walk is no proof of an ICMPv6 error: we may
    // still report on it, as Linux does. A first fragment's header can be
    // read; a later fragment's bytes are not a header.
    if let Ok(ul) = ip.upper_layer()
        && ul.protocol == IpProtocol::ICMPV6
        && ul.fragment.is_none_or(|f| f.offset == 0)
    {
        let icmp_type = d.get(ul.offset).filter(|_| total > ul.offset);
        if icmp_type.is_none_or(|&t| t < 128) {
            return Err(HostError::NotAllowed("error about an ICMPv6 error"));
        }
    }
    let keep = total.min(MAX_ERROR_LEN - ERROR_HEADERS_LEN).min(d.len());
    if pkt.headroom() < ERROR_HEADERS_LEN {
        return Err(HostError::NoRoom("headroom for the ICMPv6 error headers"));
    }

    pkt.truncate(keep)?;
    let h = pkt.prepend(ERROR_HEADERS_LEN)?;
    h.fill(0);
    let icmp_len = ICMP_HEADER_LEN + keep;
    let mut ip = Ipv6Packet::new_unchecked(&mut h[..HEADER_LEN]);
    ip.set_version(6);
    // icmp_len <= 1240.
    ip.set_payload_len(icmp_len as u16);
    ip.set_next_header(IpProtocol::ICMPV6);
    ip.set_hop_limit(DEFAULT_TTL);
    ip.set_src_addr(&src);
    ip.set_dst_addr(&to);
    let (t, c) = kind.type_code();
    let icmp = &mut h[HEADER_LEN..];
    icmp[0] = t;
    icmp[1] = c;
    icmp[4..8].copy_from_slice(&kind.rest_of_header().to_be_bytes());
    let pseudo = checksum::pseudo_header_v6(&src, &to, IpProtocol::ICMPV6, icmp_len as u32);
    let csum = checksum::finish(pseudo + checksum::sum(&pkt.data()[HEADER_LEN..]));
    pkt.data_mut()[HEADER_LEN + 2..HEADER_LEN + 4].copy_from_slice(&csum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_cache;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An IPv6 packet `src` → `dst` carrying `ext` (already chained to
    /// next header `proto`) and `payload`.
    fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, first: u8, ext: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[first, 9]);
        v.extend_from_slice(&src.octets());
        v.extend_from_slice(&dst.octets());
        v.extend_from_slice(ext);
        v.extend_from_slice(payload);
        v
    }

    fn icmp(src: Ipv6Addr, dst: Ipv6Addr, t: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![t, 0, 0, 0];
        m.extend_from_slice(body);
        let ph = checksum::pseudo_header_v6(&src, &dst, IpProtocol::ICMPV6, m.len() as u32);
        let c = checksum::finish(ph + checksum::sum(&m));
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    fn check_icmp(r: &[u8]) {
        let ip = Ipv6Packet::new_checked(r).unwrap();
        let m = &r[40..];
        let ph = checksum::pseudo_header_v6(
            &ip.src_addr(),
            &ip.dst_addr(),
            IpProtocol::ICMPV6,
            m.len() as u32,
        );
        assert_eq!(checksum::finish(ph + checksum::sum(m)), 0);
    }

    #[test]
    fn echo_reply_to_multicast_comes_from_our_address() {
        let mut c = test_cache();
        let (peer, me) = (a("fe80::1"), a("fe80::99"));
        let all = a("ff02::1");
        let body = [0x12, 0x34, 0, 7, b'h', b'i'];
        let req = ipv6(peer, all, 58, &[], &icmp(peer, all, 128, &body));
        let mut p = c.alloc_from(&req).unwrap();
        echo_reply(&mut p, me).unwrap();
        let r = p.data().to_vec();
        c.free(p);
        check_icmp(&r);
        assert_eq!(&r[8..24], &me.octets());
        assert_eq!(&r[24..40], &peer.octets());
        assert_eq!((r[7], r[40], r[41]), (64, 129, 0));
        assert_eq!(&r[44..], &body);
    }

    #[test]
    fn echo_reply_drops_extension_headers() {
        let mut c = test_cache();
        let (peer, me) = (a("2001:db8::1"), a("2001:db8::2"));
        let hbh = [58, 0, 1, 4, 0, 0, 0, 0];
        let req = ipv6(peer, me, 0, &hbh, &icmp(peer, me, 128, &[0, 1, 0, 1]));
        let mut p = c.alloc_from(&req).unwrap();
        echo_reply(&mut p, a("2001:db8::ff")).unwrap();
        let r = p.data().to_vec();
        c.free(p);
        assert_eq!(r.len(), 48);
        assert_eq!((r[4], r[5], r[6]), (0, 8, 58));
        check_icmp(&r);
        assert_eq!(&r[8..24], &me.octets());
    }

    #[test]
    fn errors_follow_rfc4443_exceptions() {
        let mut c = test_cache();
        let (peer, far, me) = (a("2001:db8::1"), a("2001:db8:1::9"), a("2001:db8::fe"));
        let udp = ipv6(peer, far, 17, &[], &[0x77; 1400]);
        let mut p = c.alloc_from(&udp).unwrap();
        error(&mut p, Icmp6Error::PacketTooBig { mtu: 1400 }, me).unwrap();
        let r = p.data().to_vec();
        c.free(p);
        assert_eq!(r.len(), MAX_ERROR_LEN);
        check_icmp(&r);
        assert_eq!(
            (&r[40..42], &r[44..48]),
            (&[2, 0][..], &[0, 0, 0x05, 0x78][..])
        );
        assert_eq!(&r[48..], &udp[..MAX_ERROR_LEN - 48]);

        let to_group = ipv6(peer, a("ff0e::1"), 17, &[], &[0; 8]);
        let from_any = ipv6(Ipv6Addr::UNSPECIFIED, far, 17, &[], &[0; 8]);
        let err_msg = ipv6(peer, far, 58, &[], &icmp(peer, far, 1, &[0; 4]));
        for bytes in [&to_group, &from_any, &err_msg] {
            let mut p = c.alloc_from(bytes).unwrap();
            let r = error(&mut p, Icmp6Error::HopLimitExceeded, me);
            assert!(matches!(r, Err(HostError::NotAllowed(_))), "{r:?}");
            assert_eq!(p.data(), &bytes[..]);
            c.free(p);
        }
        // Packet too big about a multicast packet is the exception (2.4(e.2)).
        let mut p = c.alloc_from(&to_group).unwrap();
        error(&mut p, Icmp6Error::PacketTooBig { mtu: 1280 }, me).unwrap();
        c.free(p);
        // An error about an echo request is fine.
        let echo = ipv6(peer, far, 58, &[], &icmp(peer, far, 128, &[0; 4]));
        let mut p = c.alloc_from(&echo).unwrap();
        error(&mut p, Icmp6Error::AddressUnreachable, me).unwrap();
        check_icmp(p.data());
        c.free(p);
    }

    #[test]
    fn type_codes() {
        assert_eq!(Icmp6Error::NoRoute.type_code(), (1, 0));
        assert_eq!(Icmp6Error::AdminProhibited.type_code(), (1, 1));
        assert_eq!(Icmp6Error::AddressUnreachable.type_code(), (1, 3));
        assert_eq!(Icmp6Error::PortUnreachable.type_code(), (1, 4));
        assert_eq!(Icmp6Error::HopLimitExceeded.type_code(), (3, 0));
        assert_eq!(
            Icmp6Error::PacketTooBig { mtu: 1500 }.rest_of_header(),
            1500
        );
    }
}
