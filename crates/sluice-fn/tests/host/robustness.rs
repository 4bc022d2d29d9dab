//! Random and mangled bytes: no panic, no leak, and a refusal leaves the
//! packet as it was.

use proptest::prelude::*;

use super::support::*;

/// Bytes for the in-place functions: fully random, or a valid request with
/// a few bytes changed and a random length, so that the deeper checks are
/// reached too.
fn mangled(valid: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let random = proptest::collection::vec(any::<u8>(), 0..5000);
    let n = valid.len();
    let edited = (
        0..n,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |(i, edits, cut, do_cut)| {
            let mut v = valid[i].clone();
            for (at, byte) in edits {
                let k = at.index(v.len());
                v[k] = byte;
            }
            if do_cut {
                v.truncate(cut.index(v.len() + 1));
            }
            v
        });
    prop_oneof![random, edited]
}

fn valid_inputs() -> Vec<Vec<u8>> {
    let sn = nd::solicited_node(ME6);
    vec![
        echo4(PEER4, ME4, 9, &payload(40)),
        echo4(PEER4, ME4, 9, &payload(3000)),
        udp4(PEER4, FAR4, 1, 700),
        echo6(PEER6, ME6, &payload(40)),
        echo6(PEER6, ME6, &payload(3000)),
        udp6(PEER6, FAR6, 1, 1500),
        arp_frame(
            ArpOperation::REQUEST,
            MacAddr::BROADCAST,
            (PEER_MAC, PEER4),
            (MacAddr::ZERO, ME4),
            Some(3),
        ),
        nd_frame(
            nd::multicast_mac(sn),
            PEER_MAC,
            (PEER6, sn),
            Icmpv6Type::NeighborSolicitation,
            &target_and_option(ME6, Some((1, PEER_MAC))),
            None,
        ),
    ]
}

/// Runs `f` on a packet of `bytes` (skewed to vary segment boundaries);
/// a failure must leave the packet byte for byte as it was.
fn run(
    b: &mut Bufs,
    bytes: &[u8],
    skew: usize,
    f: impl FnOnce(&mut Packet) -> Result<(), HostError>,
) -> Option<Vec<u8>> {
    let mut p = b.skewed(bytes, skew);
    let r = f(&mut p);
    assert_valid(&p);
    let out = b.take(p);
    match r {
        Ok(()) => Some(out),
        Err(e) => {
            assert_eq!(out, bytes, "{e} changed the packet");
            None
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn in_place_functions_never_panic_and_fail_cleanly(
        bytes in mangled(valid_inputs()),
        skew in 0usize..4,
    ) {
        let mut b = Bufs::new();
        if let Some(r) = run(&mut b, &bytes, skew, icmp4::echo_reply) {
            check_icmp4(&r);
        }
        for kind in KINDS4 {
            if let Some(r) = run(&mut b, &bytes, skew, |p| icmp4::error(p, kind, ME4)) {
                prop_assert!(r.len() <= icmp4::MAX_ERROR_LEN);
                check_icmp4(&r);
            }
        }
        if let Some(r) = run(&mut b, &bytes, skew, |p| icmp6::echo_reply(p, ME6)) {
            check_icmp6(&r);
        }
        for kind in KINDS6 {
            if let Some(r) = run(&mut b, &bytes, skew, |p| icmp6::error(p, kind, ME6)) {
                prop_assert!(r.len() <= icmp6::MAX_ERROR_LEN);
                check_icmp6(&r);
            }
        }
        if let Some(r) = run(&mut b, &bytes, skew, |p| arp::reply(p, ME_MAC, ME4)) {
            let info = ArpInfo::parse(&r).unwrap();
            prop_assert_eq!((info.sender_mac, info.sender_ip), (ME_MAC, ME4));
        }
        if let Some(r) = run(&mut b, &bytes, skew, |p| nd::advertise(p, ME_MAC, ME6)) {
            let info = NdInfo::parse(&r).unwrap();
            prop_assert_eq!(info.target_ll, Some(ME_MAC));
        }
    }

    #[test]
    fn parsers_never_panic(bytes in mangled(valid_inputs())) {
        let _ = ArpInfo::parse(&bytes);
        let _ = NdInfo::parse(&bytes);
        for skip in 0..bytes.len().min(24) {
            let _ = ArpInfo::parse(&bytes[skip..]);
            let _ = NdInfo::parse(&bytes[skip..]);
        }
    }

    #[test]
    fn builders_write_what_parses_back(
        mac in any::<[u8; 6]>(),
        a in any::<u32>(),
        t in any::<u32>(),
        a6 in any::<u128>(),
        t6 in any::<u128>(),
    ) {
        let mut b = Bufs::new();
        let mac = MacAddr([mac[0] & 0xfe, mac[1], mac[2], mac[3], mac[4], mac[5] | 1]);
        let (ip, target) = (Ipv4Addr::from(a), Ipv4Addr::from(t));
        let mut p = b.empty();
        arp::request(&mut p, mac, ip, target).unwrap();
        let r = b.take(p);
        if let Ok(info) = ArpInfo::parse(&r) {
            prop_assert_eq!((info.sender_mac, info.target_ip), (mac, target));
        } else {
            prop_assert!(ip.is_multicast() || ip.is_broadcast());
        }
        let (ip6, target6) = (Ipv6Addr::from(a6), Ipv6Addr::from(t6));
        let mut p = b.empty();
        match nd::solicit(&mut p, mac, ip6, target6) {
            Ok(()) => {
                let r = b.take(p);
                let info = NdInfo::parse(&r).unwrap();
                prop_assert_eq!(info.target, Some(target6));
                prop_assert_eq!(info.source_ll, (!ip6.is_unspecified()).then_some(mac));
            }
            Err(_) => {
                prop_assert!(target6.is_multicast() || target6.is_unspecified());
                b.take(p);
            }
        }
    }
}
