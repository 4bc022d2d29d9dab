//! ICMPv4 echo replies and errors against etherparse's, RFC 1812 refusals.

use super::support::*;

#[test]
fn icmp4_echo_reply_is_etherparse_reply_for_every_size_and_chain() {
    let mut b = Bufs::new();
    for n in [0usize, 1, 56, 1472, 2100, 3001, 8972] {
        for skew in [0, 1] {
            let data = payload(n);
            let mut p = b.skewed(&echo4(PEER4, ME4, 55, &data), skew);
            let chained = p.is_chained();
            icmp4::echo_reply(&mut p).unwrap();
            let r = b.take(p);
            assert_eq!(r, echo4_reply(ME4, PEER4, &data), "size {n} skew {skew}");
            check_icmp4(&r);
            assert_eq!(chained, 20 + 8 + n + skew > 2048, "size {n}");
        }
    }
}

#[test]
fn icmp4_echo_reply_drops_options_and_padding() {
    let data = payload(40);
    let mut h = Ipv4Header::new(48, 55, IpNumber::ICMP, PEER4.octets(), ME4.octets()).unwrap();
    // Record route (7), 3 slots, then end of options: 16 bytes.
    h.options = [7u8, 15, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]
        .try_into()
        .unwrap();
    let mut req = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default()))
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut req, &data)
        .unwrap();
    assert_eq!(req[0], 0x49);
    req.extend_from_slice(&[0; 10]);
    let mut b = Bufs::new();
    let mut p = b.packet(&req);
    icmp4::echo_reply(&mut p).unwrap();
    let r = b.take(p);
    assert_eq!(r, echo4_reply(ME4, PEER4, &data));
}

#[test]
fn icmp4_echo_refusals_leave_the_packet_untouched() {
    let mut b = Bufs::new();
    let good = echo4(PEER4, ME4, 64, &payload(3000));
    let mut corrupt = good.clone();
    corrupt[2900] ^= 0x10;
    let mut bad_ip = good.clone();
    bad_ip[10] ^= 1;
    let cases: Vec<(Vec<u8>, HostError)> = vec![
        (corrupt, HostError::BadChecksum),
        (bad_ip, HostError::BadChecksum),
        (
            echo4_reply(PEER4, ME4, b"x"),
            HostError::WrongKind("an ICMP echo request"),
        ),
        (
            udp4(PEER4, ME4, 64, 8),
            HostError::WrongKind("an ICMP message"),
        ),
        (
            echo4(PEER4, Ipv4Addr::new(224, 0, 0, 1), 64, b"x"),
            HostError::NotAllowed("echo request to a broadcast or multicast address"),
        ),
        (
            echo4(Ipv4Addr::new(127, 0, 0, 1), ME4, 64, b"x"),
            HostError::NotAllowed("echo request from an address that is not one host"),
        ),
        (good[..2000].to_vec(), sluice_wire::Error::Truncated.into()),
    ];
    for (bytes, want) in cases {
        for skew in [0, 1] {
            let mut p = b.skewed(&bytes, skew);
            assert_eq!(icmp4::echo_reply(&mut p), Err(want));
            assert_eq!(b.take(p), bytes);
        }
    }
}

/// The ICMPv4 error etherparse builds for `offender` (as much as fits in
/// 576 bytes), with the identification our error chose.
fn expected_error4(kind: Icmp4Error, offender: &[u8], ident: u16) -> Vec<u8> {
    let t =
        match kind {
            Icmp4Error::TimeExceeded => {
                Icmpv4Type::TimeExceeded(icmpv4::TimeExceededCode::TtlExceededInTransit)
            }
            Icmp4Error::NetUnreachable => {
                Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Network)
            }
            Icmp4Error::HostUnreachable => {
                Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Host)
            }
            Icmp4Error::ProtocolUnreachable => {
                Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Protocol)
            }
            Icmp4Error::PortUnreachable => {
                Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::Port)
            }
            Icmp4Error::AdminProhibited => {
                Icmpv4Type::DestinationUnreachable(icmpv4::DestUnreachableHeader::FilterProhibited)
            }
            Icmp4Error::FragmentationNeeded { mtu } => Icmpv4Type::DestinationUnreachable(
                icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu },
            ),
        };
    let quoted = &offender[..offender.len().min(576 - 28)];
    let src = &offender[12..16];
    let mut h = Ipv4Header::new(
        0,
        64,
        IpNumber::ICMP,
        ME4.octets(),
        [src[0], src[1], src[2], src[3]],
    )
    .unwrap();
    h.dscp = IpDscp::CS6;
    h.identification = ident;
    h.dont_fragment = false;
    let mut v = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default()))
        .icmpv4(t)
        .write(&mut v, quoted)
        .unwrap();
    v
}

#[test]
fn icmp4_errors_are_etherparse_errors_within_576_bytes() {
    let mut b = Bufs::new();
    for kind in KINDS4 {
        for n in [0usize, 20, 520, 521, 1472, 6000] {
            for skew in [0, 1] {
                let offender = udp4(PEER4, FAR4, 1, n);
                let mut p = b.skewed(&offender, skew);
                icmp4::error(&mut p, kind, ME4).unwrap();
                assert!(!p.is_chained() || p.data().len() == p.total_len());
                let r = b.take(p);
                let ident = u16::from_be_bytes([r[4], r[5]]);
                assert_eq!(r, expected_error4(kind, &offender, ident), "{kind:?} {n}");
                assert_eq!(r.len(), (28 + offender.len()).min(576));
                let icmp = check_icmp4(&r);
                assert_eq!(&icmp[..2], &[kind.type_code().0, kind.type_code().1]);
            }
        }
    }
}

#[test]
fn icmp4_error_excludes_link_padding_and_keeps_offender_options() {
    let mut b = Bufs::new();
    let mut h = Ipv4Header::new(8, 1, IpNumber::UDP, PEER4.octets(), FAR4.octets()).unwrap();
    h.options = [1u8, 1, 1, 0][..].try_into().unwrap();
    let mut offender = Vec::new();
    PacketBuilder::ip(IpHeaders::Ipv4(h, Default::default()))
        .udp(1, 2)
        .write(&mut offender, &[])
        .unwrap();
    let mut padded = offender.clone();
    padded.extend_from_slice(&[0xee; 18]);
    let mut p = b.packet(&padded);
    icmp4::error(&mut p, Icmp4Error::TimeExceeded, ME4).unwrap();
    let r = b.take(p);
    let ident = u16::from_be_bytes([r[4], r[5]]);
    assert_eq!(
        r,
        expected_error4(Icmp4Error::TimeExceeded, &offender, ident)
    );
}

#[test]
fn icmp4_error_refusals_follow_rfc1812() {
    let mut b = Bufs::new();
    let mut frag = udp4(PEER4, FAR4, 1, 100);
    frag[6] = 0;
    frag[7] = 185; // offset 1480
    frag[10..12].fill(0);
    let c = ref_checksum(&[&frag[..20]]);
    frag[10..12].copy_from_slice(&c.to_be_bytes());
    let mut unreach = Vec::new();
    PacketBuilder::ipv4(PEER4.octets(), FAR4.octets(), 1)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut unreach, &udp4(FAR4, PEER4, 3, 4))
        .unwrap();
    let mut time_ex = Vec::new();
    PacketBuilder::ipv4(PEER4.octets(), FAR4.octets(), 1)
        .icmpv4(Icmpv4Type::TimeExceeded(
            icmpv4::TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut time_ex, &[])
        .unwrap();
    let forbidden = [
        frag,
        unreach,
        time_ex,
        udp4(PEER4, Ipv4Addr::BROADCAST, 1, 8),
        udp4(PEER4, Ipv4Addr::new(239, 1, 2, 3), 1, 8),
        udp4(Ipv4Addr::UNSPECIFIED, FAR4, 1, 8),
        udp4(Ipv4Addr::BROADCAST, FAR4, 1, 8),
        udp4(Ipv4Addr::new(224, 0, 0, 5), FAR4, 1, 8),
        udp4(Ipv4Addr::new(127, 0, 0, 1), FAR4, 1, 8),
    ];
    for bytes in forbidden {
        let mut p = b.packet(&bytes);
        let r = icmp4::error(&mut p, Icmp4Error::TimeExceeded, ME4);
        assert!(matches!(r, Err(HostError::NotAllowed(_))), "{r:?}");
        assert_eq!(b.take(p), bytes);
    }
    // An error about an echo request or an echo reply is allowed.
    for bytes in [echo4(PEER4, FAR4, 1, b"q"), echo4_reply(PEER4, FAR4, b"r")] {
        let mut p = b.packet(&bytes);
        icmp4::error(&mut p, Icmp4Error::TimeExceeded, ME4).unwrap();
        check_icmp4(&b.take(p));
    }
}

#[test]
fn icmp4_short_first_buffer_and_short_headroom() {
    let mut b = Bufs::new();
    // The datagram starts 2000 bytes into a chain: 48 bytes of it in the
    // first buffer, the rest in the next ones.
    let data = payload(3000);
    let req = echo4(PEER4, ME4, 64, &data);
    let mut p = b.skewed(&req, 2000);
    assert_eq!(p.data().len(), 48);
    icmp4::echo_reply(&mut p).unwrap();
    assert_eq!(b.take(p), echo4_reply(ME4, PEER4, &data));

    let offender = udp4(PEER4, FAR4, 1, 3000);
    let mut p = b.skewed(&offender, 2000);
    icmp4::error(&mut p, Icmp4Error::TimeExceeded, ME4).unwrap();
    let r = b.take(p);
    let ident = u16::from_be_bytes([r[4], r[5]]);
    // Only what the first buffer held is quoted: still the header and more
    // than the 8 bytes RFC 792 asks for.
    assert_eq!(
        r,
        expected_error4(Icmp4Error::TimeExceeded, &offender[..48], ident)
    );

    // 20 bytes of IP header in the first buffer and nothing more: no room
    // for those 8 bytes.
    let mut p = b.skewed(&offender, 2028);
    assert_eq!(
        icmp4::error(&mut p, Icmp4Error::TimeExceeded, ME4),
        Err(HostError::NoRoom(
            "offending header and 8 bytes in the first buffer"
        ))
    );
    assert_eq!(b.take(p), offender);

    // Headroom used up by an earlier prepend: refused, untouched.
    let small = udp4(PEER4, FAR4, 1, 100);
    let mut p = b.empty();
    p.prepend(110).unwrap();
    p.room_mut()[..small.len()].copy_from_slice(&small);
    p.set_len(small.len()).unwrap();
    assert_eq!(p.headroom(), 18);
    assert_eq!(
        icmp4::error(&mut p, Icmp4Error::TimeExceeded, ME4),
        Err(HostError::NoRoom("headroom for the ICMP error headers"))
    );
    assert_eq!(b.take(p), small);
}
