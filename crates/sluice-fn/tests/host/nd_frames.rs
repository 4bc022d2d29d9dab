//! Neighbour solicitations and advertisements against etherparse's, and
//! the RFC 4861 validation rules.

use super::support::*;

#[test]
fn nd_solicit_is_the_etherparse_solicitation() {
    let mut b = Bufs::new();
    let sn = nd::solicited_node(PEER6);
    assert_eq!(sn, "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
    let mac = nd::multicast_mac(sn);
    assert_eq!(mac, MacAddr([0x33, 0x33, 0xff, 0x12, 0x34, 0x56]));
    let mut p = b.empty();
    nd::solicit(&mut p, ME_MAC, ME6, PEER6).unwrap();
    let expected = nd_frame(
        mac,
        ME_MAC,
        (ME6, sn),
        Icmpv6Type::NeighborSolicitation,
        &target_and_option(PEER6, Some((1, ME_MAC))),
        None,
    );
    assert_eq!(b.take(p), expected);
    // Duplicate address detection: from ::, no option.
    let mut p = b.empty();
    nd::solicit(&mut p, ME_MAC, Ipv6Addr::UNSPECIFIED, ME6).unwrap();
    let sn = nd::solicited_node(ME6);
    let expected = nd_frame(
        nd::multicast_mac(sn),
        ME_MAC,
        (Ipv6Addr::UNSPECIFIED, sn),
        Icmpv6Type::NeighborSolicitation,
        &target_and_option(ME6, None),
        None,
    );
    assert_eq!(b.take(p), expected);
}

#[test]
fn nd_advertise_is_the_etherparse_advertisement() {
    let mut b = Bufs::new();
    let sn = nd::solicited_node(ME6);
    let na = |dst: (MacAddr, Ipv6Addr), solicited: bool, vlan: Option<u16>| {
        nd_frame(
            dst.0,
            ME_MAC,
            (ME6, dst.1),
            Icmpv6Type::NeighborAdvertisement(icmpv6::NeighborAdvertisementHeader {
                router: true,
                solicited,
                r#override: true,
            }),
            &target_and_option(ME6, Some((2, ME_MAC))),
            vlan,
        )
    };
    for vlan in [None, Some(7)] {
        // The usual multicast solicitation with a source link-layer option,
        // which wins over the frame's source MAC.
        let ns = nd_frame(
            nd::multicast_mac(sn),
            MacAddr([2, 0, 0, 0, 0, 0x77]),
            (PEER6, sn),
            Icmpv6Type::NeighborSolicitation,
            &target_and_option(ME6, Some((1, PEER_MAC))),
            vlan,
        );
        let mut p = b.packet(&ns);
        nd::advertise(&mut p, ME_MAC, ME6).unwrap();
        assert_eq!(b.take(p), na((PEER_MAC, PEER6), true, vlan), "{vlan:?}");
    }
    // A unicast solicitation (reachability probe) without the option.
    let ns = nd_frame(
        ME_MAC,
        PEER_MAC,
        (PEER6, ME6),
        Icmpv6Type::NeighborSolicitation,
        &target_and_option(ME6, None),
        None,
    );
    let mut p = b.packet(&ns);
    nd::advertise(&mut p, ME_MAC, ME6).unwrap();
    assert_eq!(b.take(p), na((PEER_MAC, PEER6), true, None));
    // Duplicate address detection: to all nodes, Solicited clear.
    let ns = nd_frame(
        nd::multicast_mac(sn),
        PEER_MAC,
        (Ipv6Addr::UNSPECIFIED, sn),
        Icmpv6Type::NeighborSolicitation,
        &target_and_option(ME6, None),
        None,
    );
    let mut p = b.packet(&ns);
    nd::advertise(&mut p, ME_MAC, ME6).unwrap();
    let all = "ff02::1".parse().unwrap();
    assert_eq!(b.take(p), na((nd::multicast_mac(all), all), false, None));
}

#[test]
fn nd_parse_reads_every_kind_and_enforces_rfc4861() {
    let rs = nd_frame(
        nd::multicast_mac("ff02::2".parse().unwrap()),
        PEER_MAC,
        (LL_PEER6, "ff02::2".parse().unwrap()),
        Icmpv6Type::RouterSolicitation,
        &[1, 1, 2, 0x5c, 0, 0, 0, 2],
        None,
    );
    let info = NdInfo::parse(&rs).unwrap();
    assert_eq!(info.kind, NdKind::RouterSolicit);
    assert_eq!(
        (info.source_ll, info.target, info.target_ll),
        (Some(PEER_MAC), None, None)
    );

    let ra_header = icmpv6::RouterAdvertisementHeader {
        cur_hop_limit: 64,
        managed_address_config: false,
        other_config: false,
        router_lifetime: 1800,
    };
    let mut body = vec![0; 8];
    body.extend_from_slice(&[1, 1, 2, 0x5c, 0, 0, 0, 2]);
    body.extend_from_slice(&[5, 1, 0, 0, 0, 0, 5, 0xdc]); // MTU option, skipped
    let ra = nd_frame(
        nd::multicast_mac("ff02::1".parse().unwrap()),
        PEER_MAC,
        (LL_PEER6, "ff02::1".parse().unwrap()),
        Icmpv6Type::RouterAdvertisement(ra_header),
        &body,
        None,
    );
    let info = NdInfo::parse(&ra).unwrap();
    assert_eq!(
        (info.kind, info.source_ll),
        (NdKind::RouterAdvert, Some(PEER_MAC))
    );
    // An RA from a global address is invalid (RFC 4861 6.1.2).
    let ra = nd_frame(
        ME_MAC,
        PEER_MAC,
        (PEER6, ME6),
        Icmpv6Type::RouterAdvertisement(ra_header),
        &body,
        None,
    );
    assert_eq!(
        NdInfo::parse(&ra),
        Err(HostError::Invalid("RA from a non-link-local address"))
    );

    let flags = icmpv6::NeighborAdvertisementHeader {
        router: false,
        solicited: true,
        r#override: false,
    };
    let na = nd_frame(
        ME_MAC,
        PEER_MAC,
        (PEER6, ME6),
        Icmpv6Type::NeighborAdvertisement(flags),
        &target_and_option(PEER6, Some((2, PEER_MAC))),
        None,
    );
    let info = NdInfo::parse(&na).unwrap();
    assert_eq!(
        info,
        NdInfo {
            kind: NdKind::NeighborAdvert(NaFlags {
                router: false,
                solicited: true,
                override_flag: false
            }),
            src: PEER6,
            dst: ME6,
            target: Some(PEER6),
            source_ll: None,
            target_ll: Some(PEER_MAC),
        }
    );
    let na_to_group = nd_frame(
        MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        PEER_MAC,
        (PEER6, "ff02::1".parse().unwrap()),
        Icmpv6Type::NeighborAdvertisement(flags),
        &target_and_option(PEER6, None),
        None,
    );
    assert_eq!(
        NdInfo::parse(&na_to_group),
        Err(HostError::Invalid("solicited NA to a multicast address"))
    );
    // A solicitation with a hop limit of 64 may have crossed a router.
    let mut v = Vec::new();
    eth(ME_MAC, PEER_MAC)
        .ipv6(PEER6.octets(), ME6.octets(), 64)
        .icmpv6(Icmpv6Type::NeighborSolicitation)
        .write(&mut v, &target_and_option(ME6, None))
        .unwrap();
    assert_eq!(
        NdInfo::parse(&v),
        Err(HostError::Invalid("ND hop limit is not 255"))
    );
    let mut b = Bufs::new();
    let mut p = b.packet(&v);
    assert!(nd::advertise(&mut p, ME_MAC, ME6).is_err());
    assert_eq!(b.take(p), v);
    // A multicast target cannot be solicited.
    let mut p = b.empty();
    assert!(matches!(
        nd::solicit(&mut p, ME_MAC, ME6, "ff02::1".parse().unwrap()),
        Err(HostError::Invalid(_))
    ));
    b.take(p);
}
