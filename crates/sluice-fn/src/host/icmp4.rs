//! ICMP for IPv4 as a router sends it: echo replies (RFC 792, RFC 1122
//! 3.2.2.6) and error messages (RFC 792, RFC 1191, RFC 1812 4.3.2).
//!
//! Packets start at the IPv4 header and may be chained (a jumbo datagram);
//! the header itself must be in the first buffer, as `ip4-input` ensures.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, Ordering};

use sluice_buf::Packet;
use sluice_wire::ipv4::HEADER_LEN;
use sluice_wire::{Error, IpProtocol, Ipv4Packet, checksum};

use super::{DEFAULT_TTL, HostError, ipv4_is_host, sum_span};

/// Largest ICMP error datagram: RFC 1812 4.3.2.3 asks for as much of the
/// offending datagram as fits in 576 bytes, the size every host reassembles.
pub const MAX_ERROR_LEN: usize = 576;

/// Bytes an error puts in front of the offending datagram: an option-less
/// IPv4 header and the 8-byte ICMP header.
pub const ERROR_HEADERS_LEN: usize = HEADER_LEN + ICMP_HEADER_LEN;

const ICMP_HEADER_LEN: usize = sluice_wire::icmpv4::HEADER_LEN;
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;

/// Type of service of the errors we send: precedence 6, internetwork
/// control (RFC 1812 4.3.2.5), i.e. DSCP CS6, not ECN-capable.
const ERROR_TOS: u8 = 0xc0;

/// The ICMP errors a router sends, with their type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmp4Error {
    /// Time exceeded, TTL exceeded in transit (type 11 code 0).
    TimeExceeded,
    /// Destination unreachable: no route to the network (type 3 code 0).
    NetUnreachable,
    /// Destination unreachable: the host does not answer ARP (type 3 code 1).
    HostUnreachable,
    /// Destination unreachable: protocol not served here (type 3 code 2).
    ProtocolUnreachable,
    /// Destination unreachable: no listener on the port (type 3 code 3).
    PortUnreachable,
    /// Destination unreachable: communication administratively prohibited
    /// (type 3 code 13, RFC 1812 5.2.7.1).
    AdminProhibited,
    /// Destination unreachable: fragmentation needed and DF set, with the
    /// MTU of the next hop (type 3 code 4, RFC 1191 4).
    FragmentationNeeded {
        /// MTU of the link the datagram did not fit.
        mtu: u16,
    },
}

impl Icmp4Error {
    /// The ICMP type and code.
    pub const fn type_code(self) -> (u8, u8) {
        match self {
            Icmp4Error::TimeExceeded => (11, 0),
            Icmp4Error::NetUnreachable => (3, 0),
            Icmp4Error::HostUnreachable => (3, 1),
            Icmp4Error::ProtocolUnreachable => (3, 2),
            Icmp4Error::PortUnreachable => (3, 3),
            Icmp4Error::FragmentationNeeded { .. } => (3, 4),
            Icmp4Error::AdminProhibited => (3, 13),
        }
    }

    /// Bytes 4..8 of the ICMP header: unused (zero), except the next-hop MTU
    /// in the low 16 bits of "fragmentation needed" (RFC 1191 4).
    const fn rest_of_header(self) -> u32 {
        match self {
            Icmp4Error::FragmentationNeeded { mtu } => mtu as u32,
            _ => 0,
        }
    }
}

/// Whether an ICMP type is one we must never answer with an error
/// (RFC 1812 4.3.2.7). Only the query types are answered; like Linux, an
/// unassigned or unknown type counts as an error, so that an error is never
/// sent about an error we do not recognise.
fn is_icmp_error_type(t: u8) -> bool {
    !matches!(t, 0 | 8 | 9 | 10 | 13..=18 | 42 | 43)
}

/// Checks the IPv4 header in the first buffer against the whole packet and
/// returns (header length, total length). RFC 1812 5.2.2: a router checks
/// the header checksum before it acts on a datagram.
fn check_header(pkt: &Packet) -> Result<(usize, usize), HostError> {
    let d = pkt.data();
    if d.len() < HEADER_LEN {
        return Err(Error::Truncated.into());
    }
    let ip = Ipv4Packet::new_unchecked(d);
    if ip.version() != 4 {
        return Err(Error::BadVersion.into());
    }
    let hlen = ip.header_len();
    if hlen < HEADER_LEN {
        return Err(Error::BadHeaderLength.into());
    }
    if hlen > d.len() {
        return Err(Error::Truncated.into());
    }
    let total = usize::from(ip.total_len());
    if total < hlen {
        return Err(Error::BadTotalLength.into());
    }
    if total > pkt.total_len() {
        return Err(Error::Truncated.into());
    }
    if !ip.verify_checksum() {
        return Err(HostError::BadChecksum);
    }
    Ok((hlen, total))
}

/// Turns an ICMP echo request addressed to us into its echo reply, in place.
///
/// The request's ICMP checksum is verified over the whole message, every
/// buffer of a chain included; a bad one is refused with
/// [`HostError::BadChecksum`]. The reply swaps source and destination, gets
/// TTL 64, type 0 code 0 and an ICMP checksum patched for the type change
/// alone (RFC 1624: the data is untouched, so it is not summed again); the
/// IP header checksum is recomputed. Identification, flags and type of
/// service are kept.
///
/// IP options are dropped: the reply gets a 20-byte header. RFC 1122
/// 3.2.2.6 only says a host SHOULD reflect Record Route and Timestamp and
/// reverse a Source Route; a router need not, and an option-less reply
/// cannot be misrouted by a stale source route.
///
/// Refused: not ICMP or not an echo request ([`HostError::WrongKind`]); a
/// fragment ([`HostError::Unsupported`]: answering needs the whole message);
/// a source that is not one host, or a broadcast or multicast destination
/// ([`HostError::NotAllowed`]: RFC 1122 3.2.2.6 lets us ignore those, and we
/// would have no unicast address to answer from).
pub fn echo_reply(pkt: &mut Packet) -> Result<(), HostError> {
    let (hlen, total) = check_header(pkt)?;
    let d = pkt.data();
    let ip = Ipv4Packet::new_unchecked(d);
    if ip.protocol() != IpProtocol::ICMP {
        return Err(HostError::WrongKind("an ICMP message"));
    }
    if ip.is_fragment() {
        return Err(HostError::Unsupported("fragmented echo request"));
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !ipv4_is_host(src) {
        return Err(HostError::NotAllowed(
            "echo request from an address that is not one host",
        ));
    }
    if dst.is_multicast() || dst.is_broadcast() {
        return Err(HostError::NotAllowed(
            "echo request to a broadcast or multicast address",
        ));
    }
    if total < hlen + ICMP_HEADER_LEN {
        return Err(Error::Truncated.into());
    }
    let Some(icmp) = d.get(hlen..hlen + ICMP_HEADER_LEN) else {
        return Err(HostError::NoRoom("ICMP header beyond the first buffer"));
    };
    if icmp[0] != ECHO_REQUEST {
        return Err(HostError::WrongKind("an ICMP echo request"));
    }
    let old_word = u16::from_be_bytes([icmp[0], icmp[1]]);
    let old_csum = u16::from_be_bytes([icmp[2], icmp[3]]);
    if checksum::finish(sum_span(pkt, hlen, total)) != 0 {
        return Err(HostError::BadChecksum);
    }

    // Nothing can fail past this point but the buffer operations, whose
    // bounds were all checked above.
    if total < pkt.total_len() {
        pkt.truncate(total)?;
    }
    let options = hlen - HEADER_LEN;
    if options > 0 {
        pkt.data_mut().copy_within(..HEADER_LEN, options);
        pkt.advance(options)?;
    }
    let d = pkt.data_mut();
    let (ip_hdr, rest) = d.split_at_mut(HEADER_LEN);
    let mut ip = Ipv4Packet::new_unchecked(ip_hdr);
    ip.set_header_len(HEADER_LEN);
    // total - options fits: it is at most total, a u16.
    ip.set_total_len((total - options) as u16);
    ip.set_ttl(DEFAULT_TTL);
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.fill_checksum();
    rest[0] = ECHO_REPLY;
    rest[1] = 0;
    let csum = checksum::update_u16(old_csum, old_word, u16::from(ECHO_REPLY) << 8);
    rest[2..4].copy_from_slice(&csum.to_be_bytes());
    Ok(())
}

/// Identification of the datagrams we originate. RFC 791 wants it unique
/// per (source, destination, protocol) while a datagram can live; errors are
/// rare and rate-limited, so one shared counter is cheap enough, and adding
/// a hash of the destination keeps the sequence a host sees from giving away
/// how many errors others got (RFC 7739 5.3).
fn fresh_ident(dst: Ipv4Addr) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let d = dst.to_bits().wrapping_mul(0x9e37_79b1);
    n.wrapping_add((d >> 16) as u16)
}

/// Turns the packet that caused an error into the ICMP error sent back to
/// its source, in place.
///
/// The result is a new IPv4 header (source `src`, destination the
/// offender's source, TTL 64, protocol 1, DF clear, a fresh identification,
/// precedence 6 per RFC 1812 4.3.2.5), the ICMP header, then the offending
/// datagram from its IP header on (its options included), cut so that the
/// whole error is at most [`MAX_ERROR_LEN`] bytes. Link padding past the
/// datagram's total length is dropped. The headers go in the headroom, so
/// the offender's bytes are not moved; a chain is truncated into its first
/// buffer (if that buffer holds less than 576 bytes, the error carries less
/// of the offender, never less than its header and 8 bytes, RFC 792).
///
/// [`HostError::NotAllowed`] for what RFC 1812 4.3.2.7 forbids: an error
/// about an ICMP error (or an ICMP message too short to tell), about a
/// fragment other than the first, about a datagram to a multicast address
/// or the limited broadcast, or from a source that is not one host (0/8,
/// 127/8, 224/4, 240/4). A subnet-directed broadcast destination and a
/// datagram that came as a link-layer broadcast are also forbidden, but only
/// the caller can tell those.
pub fn error(pkt: &mut Packet, kind: Icmp4Error, src: Ipv4Addr) -> Result<(), HostError> {
    let (hlen, total) = check_header(pkt)?;
    let d = pkt.data();
    let ip = Ipv4Packet::new_unchecked(d);
    if ip.frag_offset() != 0 {
        return Err(HostError::NotAllowed("error about a non-first fragment"));
    }
    let dst = ip.dst_addr();
    if dst.is_multicast() || dst.is_broadcast() {
        return Err(HostError::NotAllowed(
            "error about a datagram to a broadcast or multicast address",
        ));
    }
    let to = ip.src_addr();
    if !ipv4_is_host(to) {
        return Err(HostError::NotAllowed(
            "error about a datagram whose source is not one host",
        ));
    }
    if ip.protocol() == IpProtocol::ICMP {
        let icmp_type = d.get(hlen).filter(|_| total > hlen);
        if icmp_type.is_none_or(|&t| is_icmp_error_type(t)) {
            return Err(HostError::NotAllowed("error about an ICMP error"));
        }
    }
    let keep = total.min(MAX_ERROR_LEN - ERROR_HEADERS_LEN).min(d.len());
    if keep < total.min(hlen + 8) {
        return Err(HostError::NoRoom(
            "offending header and 8 bytes in the first buffer",
        ));
    }
    if pkt.headroom() < ERROR_HEADERS_LEN {
        return Err(HostError::NoRoom("headroom for the ICMP error headers"));
    }

    pkt.truncate(keep)?;
    let h = pkt.prepend(ERROR_HEADERS_LEN)?;
    h.fill(0);
    let mut ip = Ipv4Packet::new_unchecked(&mut h[..HEADER_LEN]);
    ip.set_version(4);
    ip.set_header_len(HEADER_LEN);
    ip.set_dscp(ERROR_TOS >> 2);
    // ERROR_HEADERS_LEN + keep <= MAX_ERROR_LEN, far below u16::MAX.
    ip.set_total_len((ERROR_HEADERS_LEN + keep) as u16);
    ip.set_ident(fresh_ident(to));
    ip.set_ttl(DEFAULT_TTL);
    ip.set_protocol(IpProtocol::ICMP);
    ip.set_src_addr(src);
    ip.set_dst_addr(to);
    ip.fill_checksum();
    let (t, c) = kind.type_code();
    let icmp = &mut h[HEADER_LEN..];
    icmp[0] = t;
    icmp[1] = c;
    icmp[4..8].copy_from_slice(&kind.rest_of_header().to_be_bytes());
    let csum = checksum::checksum(&pkt.data()[HEADER_LEN..]);
    pkt.data_mut()[HEADER_LEN + 2..HEADER_LEN + 4].copy_from_slice(&csum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_cache;

    /// An IPv4 header (20 bytes + `options`) for `payload`, checksum filled.
    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let hlen = 20 + options.len();
        let total = hlen + payload.len();
        let mut v = vec![
            0x40 | (hlen / 4) as u8,
            0,
            0,
            0,
            0x12,
            0x34,
            0x40,
            0,
            7,
            proto,
        ];
        v[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(options);
        let c = checksum::checksum(&v);
        v[10..12].copy_from_slice(&c.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn echo_request(data: &[u8]) -> Vec<u8> {
        let mut m = vec![8, 0, 0, 0, 0xab, 0xcd, 0, 1];
        m.extend_from_slice(data);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    #[test]
    fn echo_reply_in_place() {
        let mut c = test_cache();
        let req = ipv4(
            [192, 0, 2, 1],
            [198, 51, 100, 9],
            1,
            &[],
            &echo_request(b"ping"),
        );
        let mut p = c.alloc_from(&req).unwrap();
        echo_reply(&mut p).unwrap();
        let r = p.data().to_vec();
        c.free(p);
        assert_eq!(checksum::checksum(&r[..20]), 0);
        assert_eq!(checksum::checksum(&r[20..]), 0);
        assert_eq!(&r[12..16], &[198, 51, 100, 9]);
        assert_eq!(&r[16..20], &[192, 0, 2, 1]);
        assert_eq!((r[8], r[20], r[21]), (64, 0, 0));
        assert_eq!(&r[24..], &req[24..]);
    }

    #[test]
    fn echo_reply_drops_options_and_padding() {
        let mut c = test_cache();
        let mut req = ipv4(
            [192, 0, 2, 1],
            [198, 51, 100, 9],
            1,
            &[1, 1, 1, 0],
            &echo_request(b"abc"),
        );
        req.extend_from_slice(&[0xee; 6]);
        let mut p = c.alloc_from(&req).unwrap();
        echo_reply(&mut p).unwrap();
        let r = p.data().to_vec();
        c.free(p);
        assert_eq!(r.len(), 20 + 11);
        assert_eq!((r[0], u16::from_be_bytes([r[2], r[3]])), (0x45, 31));
        assert_eq!(checksum::checksum(&r[..20]), 0);
        assert_eq!(checksum::checksum(&r[20..]), 0);
        assert_eq!(&r[28..], b"abc");
    }

    #[test]
    fn echo_reply_refusals_leave_the_packet_alone() {
        let mut c = test_cache();
        let good = ipv4(
            [192, 0, 2, 1],
            [198, 51, 100, 9],
            1,
            &[],
            &echo_request(b"x"),
        );
        let mut bad_sum = good.clone();
        bad_sum[28] ^= 1;
        let mut reply = good.clone();
        reply[20] = 0;
        let udp = ipv4([192, 0, 2, 1], [198, 51, 100, 9], 17, &[], &[0; 8]);
        let bcast = ipv4([192, 0, 2, 1], [255; 4], 1, &[], &echo_request(b"x"));
        let zero_src = ipv4([0; 4], [198, 51, 100, 9], 1, &[], &echo_request(b"x"));
        let mut frag = good.clone();
        frag[6] = 0x20;
        frag[10..12].fill(0);
        let cs = checksum::checksum(&frag[..20]);
        frag[10..12].copy_from_slice(&cs.to_be_bytes());
        let cases: [(&[u8], HostError); 7] = [
            (&bad_sum, HostError::BadChecksum),
            (&reply, HostError::WrongKind("an ICMP echo request")),
            (&udp, HostError::WrongKind("an ICMP message")),
            (&good[..19], Error::Truncated.into()),
            (
                &bcast,
                HostError::NotAllowed("echo request to a broadcast or multicast address"),
            ),
            (
                &zero_src,
                HostError::NotAllowed("echo request from an address that is not one host"),
            ),
            (&frag, HostError::Unsupported("fragmented echo request")),
        ];
        for (bytes, want) in cases {
            let mut p = c.alloc_from(bytes).unwrap();
            assert_eq!(echo_reply(&mut p), Err(want));
            assert_eq!(p.data(), bytes);
            c.free(p);
        }
    }

    #[test]
    fn error_layout_and_cut() {
        let mut c = test_cache();
        let udp = ipv4([192, 0, 2, 1], [198, 51, 100, 9], 17, &[], &[0x5a; 1000]);
        let mut p = c.alloc_from(&udp).unwrap();
        let me = Ipv4Addr::new(203, 0, 113, 1);
        error(&mut p, Icmp4Error::FragmentationNeeded { mtu: 1400 }, me).unwrap();
        let r = p.data().to_vec();
        c.free(p);
        assert_eq!(r.len(), MAX_ERROR_LEN);
        assert_eq!(&r[..4], &[0x45, 0xc0, 0x02, 0x40]);
        assert_eq!(&r[6..10], &[0, 0, 64, 1]);
        assert_eq!(&r[12..16], &me.octets());
        assert_eq!(&r[16..20], &[192, 0, 2, 1]);
        assert_eq!(checksum::checksum(&r[..20]), 0);
        assert_eq!(checksum::checksum(&r[20..]), 0);
        assert_eq!(&r[20..22], &[3, 4]);
        assert_eq!(&r[24..28], &[0, 0, 0x05, 0x78]);
        assert_eq!(&r[28..], &udp[..MAX_ERROR_LEN - 28]);
    }

    #[test]
    fn no_error_about_errors_fragments_or_groups() {
        let mut c = test_cache();
        let me = Ipv4Addr::new(203, 0, 113, 1);
        let unreach = ipv4(
            [192, 0, 2, 1],
            [198, 51, 100, 9],
            1,
            &[],
            &[3, 1, 0, 0, 0, 0, 0, 0],
        );
        let unknown = ipv4([192, 0, 2, 1], [198, 51, 100, 9], 1, &[], &[99, 0, 0, 0]);
        let empty_icmp = ipv4([192, 0, 2, 1], [198, 51, 100, 9], 1, &[], &[]);
        let mcast = ipv4([192, 0, 2, 1], [239, 1, 1, 1], 17, &[], &[0; 8]);
        let loop_src = ipv4([127, 0, 0, 1], [198, 51, 100, 9], 17, &[], &[0; 8]);
        let class_e = ipv4([250, 0, 0, 1], [198, 51, 100, 9], 17, &[], &[0; 8]);
        let mut later = ipv4([192, 0, 2, 1], [198, 51, 100, 9], 17, &[], &[0; 8]);
        later[7] = 1;
        later[10..12].fill(0);
        let cs = checksum::checksum(&later[..20]);
        later[10..12].copy_from_slice(&cs.to_be_bytes());
        for bytes in [
            unreach, unknown, empty_icmp, mcast, loop_src, class_e, later,
        ] {
            let mut p = c.alloc_from(&bytes).unwrap();
            let r = error(&mut p, Icmp4Error::TimeExceeded, me);
            assert!(matches!(r, Err(HostError::NotAllowed(_))), "{r:?}");
            assert_eq!(p.data(), &bytes[..]);
            c.free(p);
        }
        // An echo request is a query: an error about it is fine.
        let echo = ipv4(
            [192, 0, 2, 1],
            [198, 51, 100, 9],
            1,
            &[],
            &echo_request(b""),
        );
        let mut p = c.alloc_from(&echo).unwrap();
        error(&mut p, Icmp4Error::HostUnreachable, me).unwrap();
        assert_eq!(p.total_len(), 28 + 28);
        c.free(p);
    }

    #[test]
    fn type_codes() {
        assert_eq!(Icmp4Error::TimeExceeded.type_code(), (11, 0));
        assert_eq!(Icmp4Error::PortUnreachable.type_code(), (3, 3));
        assert_eq!(Icmp4Error::AdminProhibited.type_code(), (3, 13));
        assert_eq!(Icmp4Error::ProtocolUnreachable.type_code(), (3, 2));
        assert_eq!(Icmp4Error::NetUnreachable.type_code(), (3, 0));
        assert_eq!(
            Icmp4Error::FragmentationNeeded { mtu: 9000 }.rest_of_header(),
            9000
        );
        assert!(is_icmp_error_type(11) && is_icmp_error_type(200));
        assert!(!is_icmp_error_type(8) && !is_icmp_error_type(0));
    }
}
