//! ICMPv6 echo replies and errors against etherparse's, RFC 4443 refusals.

use super::support::*;

#[test]
fn icmp6_echo_reply_is_etherparse_reply_for_every_size_and_chain() {
    let mut b = Bufs::new();
    for n in [0usize, 1, 56, 1452, 2100, 3001, 8952] {
        for skew in [0, 1] {
            let data = payload(n);
            let mut p = b.skewed(&echo6(PEER6, ME6, &data), skew);
            icmp6::echo_reply(&mut p, LL_ME6).unwrap();
            let r = b.take(p);
            assert_eq!(r, echo6_reply(ME6, PEER6, &data), "size {n} skew {skew}");
            check_icmp6(&r);
        }
    }
    // To a multicast group: answered from our address.
    let group: Ipv6Addr = "ff02::1".parse().unwrap();
    let data = payload(3000);
    let mut p = b.skewed(&echo6(LL_PEER6, group, &data), 1);
    icmp6::echo_reply(&mut p, LL_ME6).unwrap();
    let r = b.take(p);
    assert_eq!(r, echo6_reply(LL_ME6, LL_PEER6, &data));
}

#[test]
fn icmp6_echo_refusals_leave_the_packet_untouched() {
    let mut b = Bufs::new();
    let good = echo6(PEER6, ME6, &payload(3000));
    let mut corrupt = good.clone();
    corrupt[2999] ^= 0x01;
    let mut wrong_dst = good.clone();
    wrong_dst[39] ^= 1;
    let cases: Vec<(Vec<u8>, HostError)> = vec![
        (corrupt, HostError::BadChecksum),
        (wrong_dst, HostError::BadChecksum),
        (
            echo6_reply(PEER6, ME6, b"x"),
            HostError::WrongKind("an ICMPv6 echo request"),
        ),
        (
            udp6(PEER6, ME6, 64, 8),
            HostError::WrongKind("an ICMPv6 message"),
        ),
        (
            echo6(Ipv6Addr::UNSPECIFIED, ME6, b"x"),
            HostError::NotAllowed("echo request from an unspecified or multicast address"),
        ),
        (good[..39].to_vec(), sluice_wire::Error::Truncated.into()),
    ];
    for (bytes, want) in cases {
        let mut p = b.packet(&bytes);
        assert_eq!(icmp6::echo_reply(&mut p, ME6), Err(want));
        assert_eq!(b.take(p), bytes);
    }
}

fn expected_error6(kind: Icmp6Error, offender: &[u8]) -> Vec<u8> {
    use icmpv6::DestUnreachableCode as D;
    let t = match kind {
        Icmp6Error::HopLimitExceeded => {
            Icmpv6Type::TimeExceeded(icmpv6::TimeExceededCode::HopLimitExceeded)
        }
        Icmp6Error::NoRoute => Icmpv6Type::DestinationUnreachable(D::NoRoute),
        Icmp6Error::AdminProhibited => Icmpv6Type::DestinationUnreachable(D::Prohibited),
        Icmp6Error::AddressUnreachable => Icmpv6Type::DestinationUnreachable(D::Address),
        Icmp6Error::PortUnreachable => Icmpv6Type::DestinationUnreachable(D::Port),
        Icmp6Error::PacketTooBig { mtu } => Icmpv6Type::PacketTooBig { mtu },
    };
    let quoted = &offender[..offender.len().min(1280 - 48)];
    let mut src = [0u8; 16];
    src.copy_from_slice(&offender[8..24]);
    let mut v = Vec::new();
    PacketBuilder::ipv6(ME6.octets(), src, 64)
        .icmpv6(t)
        .write(&mut v, quoted)
        .unwrap();
    v
}

#[test]
fn icmp6_errors_are_etherparse_errors_within_1280_bytes() {
    let mut b = Bufs::new();
    for kind in KINDS6 {
        for n in [0usize, 100, 1184, 1185, 1452, 7000] {
            for skew in [0, 1] {
                let offender = udp6(PEER6, FAR6, 1, n);
                let mut p = b.skewed(&offender, skew);
                icmp6::error(&mut p, kind, ME6).unwrap();
                let r = b.take(p);
                assert_eq!(r, expected_error6(kind, &offender), "{kind:?} {n}");
                assert_eq!(r.len(), (48 + offender.len()).min(1280));
                check_icmp6(&r);
            }
        }
    }
}

#[test]
fn icmp6_error_refusals_follow_rfc4443() {
    let mut b = Bufs::new();
    let group: Ipv6Addr = "ff05::2".parse().unwrap();
    let mut unreach = Vec::new();
    PacketBuilder::ipv6(PEER6.octets(), FAR6.octets(), 1)
        .icmpv6(Icmpv6Type::DestinationUnreachable(
            icmpv6::DestUnreachableCode::Port,
        ))
        .write(&mut unreach, &udp6(FAR6, PEER6, 3, 4))
        .unwrap();
    let forbidden = [
        (unreach, Icmp6Error::PacketTooBig { mtu: 1280 }),
        (udp6(PEER6, group, 1, 8), Icmp6Error::HopLimitExceeded),
        (udp6(PEER6, group, 1, 8), Icmp6Error::PortUnreachable),
        (udp6(Ipv6Addr::UNSPECIFIED, FAR6, 1, 8), Icmp6Error::NoRoute),
        (
            udp6(group, FAR6, 1, 8),
            Icmp6Error::PacketTooBig { mtu: 1280 },
        ),
    ];
    for (bytes, kind) in forbidden {
        let mut p = b.packet(&bytes);
        let r = icmp6::error(&mut p, kind, ME6);
        assert!(matches!(r, Err(HostError::NotAllowed(_))), "{r:?}");
        assert_eq!(b.take(p), bytes);
    }
    // Packet too big about a multicast packet is allowed (RFC 4443 2.4(e.2)).
    let bytes = udp6(PEER6, group, 9, 1400);
    let mut p = b.packet(&bytes);
    icmp6::error(&mut p, Icmp6Error::PacketTooBig { mtu: 1280 }, ME6).unwrap();
    let r = b.take(p);
    assert_eq!(
        r,
        expected_error6(Icmp6Error::PacketTooBig { mtu: 1280 }, &bytes)
    );
}

#[test]
fn icmp6_short_first_buffer() {
    let mut b = Bufs::new();
    // 48 bytes of the packet in the first buffer, the rest chained.
    let data = payload(3000);
    let mut p = b.skewed(&echo6(PEER6, ME6, &data), 2000);
    assert_eq!(p.data().len(), 48);
    icmp6::echo_reply(&mut p, ME6).unwrap();
    assert_eq!(b.take(p), echo6_reply(ME6, PEER6, &data));

    let offender = udp6(PEER6, FAR6, 1, 3000);
    let mut p = b.skewed(&offender, 2000);
    icmp6::error(&mut p, Icmp6Error::HopLimitExceeded, ME6).unwrap();
    let r = b.take(p);
    assert_eq!(
        r,
        expected_error6(Icmp6Error::HopLimitExceeded, &offender[..48])
    );
    check_icmp6(&r);
}
