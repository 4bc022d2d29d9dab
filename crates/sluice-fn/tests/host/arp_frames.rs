//! ARP requests, announcements and replies against etherparse's frames.

use super::support::*;

#[test]
fn arp_request_and_gratuitous_are_etherparse_frames() {
    let mut b = Bufs::new();
    let mut p = b.empty();
    arp::request(&mut p, ME_MAC, ME4, PEER4).unwrap();
    let expected = arp_frame(
        ArpOperation::REQUEST,
        MacAddr::BROADCAST,
        (ME_MAC, ME4),
        (MacAddr::ZERO, PEER4),
        None,
    );
    assert_eq!(b.take(p), padded(expected));

    // Into a packet that held something else: replaced.
    let mut p = b.packet(&payload(1500));
    arp::gratuitous(&mut p, ME_MAC, ME4).unwrap();
    let expected = arp_frame(
        ArpOperation::REQUEST,
        MacAddr::BROADCAST,
        (ME_MAC, ME4),
        (MacAddr::ZERO, ME4),
        None,
    );
    let r = b.take(p);
    assert_eq!(r, padded(expected));
    assert!(ArpInfo::parse(&r).unwrap().is_announcement());
    let s = SlicedPacket::from_ethernet(&r).unwrap();
    assert!(matches!(s.net, Some(NetSlice::Arp(_))));

    let mut p = b.packet(&payload(3000));
    assert_eq!(
        arp::request(&mut p, ME_MAC, ME4, PEER4),
        Err(HostError::NoRoom("ARP frame into a chained buffer"))
    );
    b.take(p);
}

#[test]
fn arp_reply_is_the_etherparse_reply_tags_kept() {
    let mut b = Bufs::new();
    for vlan in [None, Some(42)] {
        for pad in [false, true] {
            let req = arp_frame(
                ArpOperation::REQUEST,
                MacAddr::BROADCAST,
                (PEER_MAC, PEER4),
                (MacAddr::ZERO, ME4),
                vlan,
            );
            let req = if pad { padded(req) } else { req };
            let mut p = b.packet(&req);
            arp::reply(&mut p, ME_MAC, ME4).unwrap();
            let expected = arp_frame(
                ArpOperation::REPLY,
                PEER_MAC,
                (ME_MAC, ME4),
                (PEER_MAC, PEER4),
                vlan,
            );
            assert_eq!(b.take(p), padded(expected), "{vlan:?} {pad}");
        }
    }
    // A probe is answered with target 0.0.0.0.
    let probe = arp_frame(
        ArpOperation::REQUEST,
        MacAddr::BROADCAST,
        (PEER_MAC, Ipv4Addr::UNSPECIFIED),
        (MacAddr::ZERO, ME4),
        None,
    );
    assert!(ArpInfo::parse(&probe).unwrap().is_probe());
    let mut p = b.packet(&probe);
    arp::reply(&mut p, ME_MAC, ME4).unwrap();
    let expected = arp_frame(
        ArpOperation::REPLY,
        PEER_MAC,
        (ME_MAC, ME4),
        (PEER_MAC, Ipv4Addr::UNSPECIFIED),
        None,
    );
    assert_eq!(b.take(p), padded(expected));
}

#[test]
fn arp_refusals() {
    let mut b = Bufs::new();
    let req = |sender: (MacAddr, Ipv4Addr), target: Ipv4Addr| {
        arp_frame(
            ArpOperation::REQUEST,
            MacAddr::BROADCAST,
            sender,
            (MacAddr::ZERO, target),
            None,
        )
    };
    let reply_from_zero = arp_frame(
        ArpOperation::REPLY,
        ME_MAC,
        (PEER_MAC, Ipv4Addr::UNSPECIFIED),
        (ME_MAC, ME4),
        None,
    );
    let cases: Vec<(Vec<u8>, HostError)> = vec![
        (
            req((PEER_MAC, PEER4), FAR4),
            HostError::NotForUs("ARP request for another address"),
        ),
        (
            req((PEER_MAC, ME4), ME4),
            HostError::NotAllowed("ARP sender claims our address (RFC 5227 conflict)"),
        ),
        (
            req((MacAddr::BROADCAST, PEER4), ME4),
            HostError::Invalid("ARP sender hardware address"),
        ),
        (
            req((MacAddr([1, 0, 0x5e, 0, 0, 1]), PEER4), ME4),
            HostError::Invalid("ARP sender hardware address"),
        ),
        (
            req((PEER_MAC, Ipv4Addr::new(224, 0, 0, 1)), ME4),
            HostError::Invalid("ARP sender protocol address"),
        ),
        (
            reply_from_zero,
            HostError::Invalid("ARP reply from 0.0.0.0"),
        ),
        (
            framed(0x0800, &udp4(PEER4, ME4, 9, 20)),
            HostError::WrongKind("an ARP frame"),
        ),
        (
            req((PEER_MAC, PEER4), ME4)[..41].to_vec(),
            sluice_wire::Error::Truncated.into(),
        ),
    ];
    for (bytes, want) in cases {
        let mut p = b.packet(&bytes);
        assert_eq!(arp::reply(&mut p, ME_MAC, ME4), Err(want));
        assert_eq!(b.take(p), bytes);
    }
    // ARP for another protocol than IPv4.
    let mut other = req((PEER_MAC, PEER4), ME4);
    other[16] = 0x86;
    other[17] = 0xdd;
    assert_eq!(
        ArpInfo::parse(&other),
        Err(sluice_wire::Error::Unsupported.into())
    );
}
