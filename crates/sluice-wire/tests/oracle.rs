//! Differential tests: packets built by etherparse, parsed by etherparse and by
//! sluice-wire; every getter and every checksum must agree.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse as ep;
use proptest::prelude::*;
use sluice_wire::{
    ArpPacket, EtherType, EthernetFrame, Icmpv4Packet, Icmpv6Packet, IpProtocol, Ipv4Packet,
    Ipv6Packet, TcpFlags, TcpSegment, UdpDatagram, VlanTag,
};

/// Pulls pseudo-random values out of a byte string (cycling), so one
/// `Vec<u8>` strategy drives every field of a generated packet.
struct Draw<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Draw<'_> {
    fn u8(&mut self) -> u8 {
        let v = self.bytes[self.at % self.bytes.len()];
        self.at += 1;
        v
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn arr<const N: usize>(&mut self) -> [u8; N] {
        core::array::from_fn(|_| self.u8())
    }
    fn vec(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

fn vlan_header(d: &mut Draw<'_>) -> ep::SingleVlanHeader {
    ep::SingleVlanHeader {
        pcp: ep::VlanPcp::try_new(d.u8() & 7).unwrap(),
        drop_eligible_indicator: d.bool(),
        vlan_id: ep::VlanId::try_new(d.u16() & 0x0fff).unwrap(),
        ether_type: ep::EtherType(0),
    }
}

fn raw_ext(d: &mut Draw<'_>) -> ep::Ipv6RawExtHeader {
    let n = 6 + 8 * usize::from(d.u8() % 3);
    ep::Ipv6RawExtHeader::new_raw(ep::IpNumber(0), &d.vec(n)).unwrap()
}

/// Build a random Ethernet frame with etherparse.
fn build(seed: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut d = Draw { bytes: seed, at: 0 };
    let eth = ep::PacketBuilder::ethernet2(d.arr(), d.arr());
    let vlan = match d.u8() % 3 {
        0 => None,
        1 => Some(ep::VlanHeader::Single(vlan_header(&mut d))),
        _ => Some(ep::VlanHeader::Double(ep::DoubleVlanHeader {
            outer: vlan_header(&mut d),
            inner: vlan_header(&mut d),
        })),
    };
    let l3_kind = d.u8() % 5; // 0,1: IPv4; 2,3: IPv6; 4: ARP
    if l3_kind == 4 {
        let arp = ep::ArpPacket::new(
            ep::ArpHardwareId::ETHERNET,
            ep::EtherType::IPV4,
            ep::ArpOperation(1 + u16::from(d.bool())),
            &d.arr::<6>(),
            &d.arr::<4>(),
            &d.arr::<6>(),
            &d.arr::<4>(),
        )
        .unwrap();
        let step = match vlan {
            None => eth.arp(arp),
            Some(v) => eth.vlan(v).arp(arp),
        };
        let mut out = Vec::new();
        step.write(&mut out).unwrap();
        return out;
    }
    let ip = if l3_kind < 2 {
        let frag = d.u8() < 24;
        let n = 4 * usize::from(d.u8() % 11);
        let opts = d.vec(n);
        let h = ep::Ipv4Header {
            dscp: ep::IpDscp::try_new(d.u8() & 0x3f).unwrap(),
            ecn: ep::IpEcn::try_new(d.u8() & 3).unwrap(),
            identification: d.u16(),
            dont_fragment: d.bool(),
            more_fragments: frag && d.bool(),
            fragment_offset: ep::IpFragOffset::try_new(if frag { d.u16() & 0x1fff } else { 0 })
                .unwrap(),
            time_to_live: d.u8(),
            source: d.arr(),
            destination: d.arr(),
            options: ep::Ipv4Options::try_from(&opts[..]).unwrap(),
            ..Default::default()
        };
        ep::IpHeaders::Ipv4(h, Default::default())
    } else {
        let h = ep::Ipv6Header {
            traffic_class: d.u8(),
            flow_label: ep::Ipv6FlowLabel::try_new(d.u32() & 0xfffff).unwrap(),
            hop_limit: d.u8(),
            source: d.arr(),
            destination: d.arr(),
            ..Default::default()
        };
        // One packet in four has no extension headers at all.
        let mask = if d.u8() < 64 { 0 } else { d.u8() };
        let n = 4 * usize::from(d.u8() % 4);
        let icv = d.vec(n);
        let exts = ep::Ipv6Extensions {
            hop_by_hop_options: (mask & 1 != 0).then(|| raw_ext(&mut d)),
            destination_options: (mask & 2 != 0).then(|| raw_ext(&mut d)),
            routing: (mask & 4 != 0).then(|| ep::Ipv6RoutingExtensions {
                routing: raw_ext(&mut d),
                final_destination_options: (mask & 8 != 0).then(|| raw_ext(&mut d)),
            }),
            fragment: (mask & 16 != 0).then(|| {
                let off = if d.u8() < 64 { d.u16() & 0x1fff } else { 0 };
                let more = d.u8() < 64;
                ep::Ipv6FragmentHeader::new(
                    ep::IpNumber(0),
                    ep::IpFragOffset::try_new(off).unwrap(),
                    more,
                    d.u32(),
                )
            }),
            auth: (mask & 32 != 0)
                .then(|| ep::IpAuthHeader::new(ep::IpNumber(0), d.u32(), d.u32(), &icv).unwrap()),
        };
        ep::IpHeaders::Ipv6(h, exts)
    };
    let v4 = matches!(ip, ep::IpHeaders::Ipv4(..));
    let step = match vlan {
        None => eth.ip(ip),
        Some(v) => eth.vlan(v).ip(ip),
    };
    let mut out = Vec::new();
    match d.u8() % 3 {
        0 => {
            let mut t = ep::TcpHeader::new(d.u16(), d.u16(), d.u32(), d.u16());
            t.acknowledgment_number = d.u32();
            let f = d.u8();
            (t.fin, t.syn, t.rst, t.psh) = (f & 1 != 0, f & 2 != 0, f & 4 != 0, f & 8 != 0);
            (t.ack, t.urg, t.ece, t.cwr) = (f & 16 != 0, f & 32 != 0, f & 64 != 0, f & 128 != 0);
            t.urgent_pointer = d.u16();
            let n = 4 * usize::from(d.u8() % 11);
            let opts = d.vec(n);
            t.options = ep::TcpOptions::try_from_slice(&opts).unwrap();
            step.tcp_header(t).write(&mut out, payload).unwrap();
        }
        1 => step.udp(d.u16(), d.u16()).write(&mut out, payload).unwrap(),
        _ if v4 => step
            .icmpv4_echo_request(d.u16(), d.u16())
            .write(&mut out, payload)
            .unwrap(),
        _ => step
            .icmpv6_echo_request(d.u16(), d.u16())
            .write(&mut out, payload)
            .unwrap(),
    }
    out
}

/// Where the checksum pseudo-header comes from.
#[derive(Clone, Copy)]
enum Addrs {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

/// Parse `frame` with both libraries and compare everything.
fn compare(frame: &[u8]) {
    let sp = ep::SlicedPacket::from_ethernet(frame).expect("etherparse parses its own packet");

    // Ethernet.
    let eth = EthernetFrame::new_checked(frame).unwrap();
    let Some(ep::LinkSlice::Ethernet2(e)) = &sp.link else {
        panic!("no ethernet")
    };
    assert_eq!(eth.dst_addr().0, e.destination());
    assert_eq!(eth.src_addr().0, e.source());
    assert_eq!(eth.ethertype().0, e.ether_type().0);
    assert_eq!(eth.payload(), e.payload_slice());

    // VLANs.
    let l2 = eth.l3().unwrap();
    assert_eq!(l2.vlans().len(), sp.link_exts.len());
    for (i, ext) in sp.link_exts.iter().enumerate() {
        let ep::LinkExtSlice::Vlan(v) = ext else {
            panic!("not a vlan")
        };
        let tag = VlanTag::new_checked(&frame[14 + 4 * i..]).unwrap();
        assert_eq!(tag.pcp(), v.priority_code_point().value());
        assert_eq!(tag.dei(), v.drop_eligible_indicator());
        assert_eq!(tag.vid(), v.vlan_identifier().value());
        assert_eq!(tag.ethertype().0, v.ether_type().0);
        assert_eq!(tag.payload(), v.payload_slice());
        assert_eq!(l2.vlans()[i], v.vlan_identifier().value());
    }
    if sp.link_exts.len() == 2 {
        assert_eq!(eth.ethertype(), EtherType::QINQ);
    }
    let l3 = &frame[l2.l3_offset..];

    let (l4, addrs, proto) = match sp.net.as_ref().expect("net layer") {
        ep::NetSlice::Arp(a) => {
            assert_eq!(l2.ethertype, EtherType::ARP);
            let p = ArpPacket::new_checked(l3).unwrap();
            assert_eq!(p.hardware_type(), a.hw_addr_type().0);
            assert_eq!(p.protocol_type().0, a.proto_addr_type().0);
            assert_eq!(p.hardware_len(), a.hw_addr_size());
            assert_eq!(p.protocol_len(), a.proto_addr_size());
            assert_eq!(p.operation().0, a.operation().0);
            assert_eq!(&p.sender_hw_addr().0[..], a.sender_hw_addr());
            assert_eq!(
                &p.sender_proto_addr().octets()[..],
                a.sender_protocol_addr()
            );
            assert_eq!(&p.target_hw_addr().0[..], a.target_hw_addr());
            assert_eq!(
                &p.target_proto_addr().octets()[..],
                a.target_protocol_addr()
            );
            return;
        }
        ep::NetSlice::Ipv4(ip) => {
            assert_eq!(l2.ethertype, EtherType::IPV4);
            let h = ip.header();
            let p = Ipv4Packet::new_checked(l3).unwrap();
            assert_eq!(p.version(), h.version());
            assert_eq!(p.ihl(), h.ihl());
            assert_eq!(p.header_len(), usize::from(h.ihl()) * 4);
            assert_eq!(p.dscp(), h.dcp().value());
            assert_eq!(p.ecn(), h.ecn().value());
            assert_eq!(p.total_len(), h.total_len());
            assert_eq!(p.ident(), h.identification());
            assert_eq!(p.dont_frag(), h.dont_fragment());
            assert_eq!(p.more_frags(), h.more_fragments());
            assert_eq!(p.frag_offset(), h.fragments_offset().value() * 8);
            assert_eq!(p.is_fragment(), h.is_fragmenting_payload());
            assert_eq!(p.ttl(), h.ttl());
            assert_eq!(p.protocol().0, h.protocol().0);
            assert_eq!(p.checksum(), h.header_checksum());
            assert_eq!(p.src_addr(), h.source_addr());
            assert_eq!(p.dst_addr(), h.destination_addr());
            assert_eq!(p.options(), h.options());
            assert_eq!(p.payload(), ip.payload().payload);
            assert!(p.verify_checksum());
            // Our checksum equals etherparse's.
            let mut copy = l3.to_vec();
            let mut q = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
            q.set_checksum(0xdead);
            q.fill_checksum();
            assert_eq!(q.checksum(), h.to_header().calc_header_checksum());
            assert_eq!(q.checksum(), h.header_checksum());
            // Incremental TTL decrement agrees with etherparse's full recomputation.
            if q.ttl() > 0 {
                let ttl = q.decrement_ttl_incremental();
                let mut eh = h.to_header();
                eh.time_to_live = ttl;
                assert_eq!(q.checksum(), eh.calc_header_checksum());
            }
            let l4 = &l3[p.header_len()..usize::from(p.total_len())];
            (l4, Addrs::V4(p.src_addr(), p.dst_addr()), p.protocol())
        }
        ep::NetSlice::Ipv6(ip) => {
            assert_eq!(l2.ethertype, EtherType::IPV6);
            let h = ip.header();
            let p = Ipv6Packet::new_checked(l3).unwrap();
            assert_eq!(p.version(), h.version());
            assert_eq!(p.traffic_class(), h.traffic_class());
            assert_eq!(p.dscp(), h.dscp().value());
            assert_eq!(p.ecn(), h.ecn().value());
            assert_eq!(p.flow_label(), h.flow_label().value());
            assert_eq!(p.payload_len(), h.payload_length());
            assert_eq!(p.next_header().0, h.next_header().0);
            assert_eq!(p.hop_limit(), h.hop_limit());
            assert_eq!(p.src_addr(), h.source_addr());
            assert_eq!(p.dst_addr(), h.destination_addr());
            let ext_len = ip.extensions().slice().len();
            assert_eq!(p.payload().len(), ext_len + ip.payload().payload.len());
            let u = p.upper_layer().unwrap();
            let frag = u.fragment.is_some_and(|f| f.offset != 0 || f.more);
            assert_eq!(frag, ip.is_payload_fragmented());
            let kinds: Vec<IpProtocol> = p.ext_headers().map(|x| x.unwrap().kind).collect();
            assert_eq!(kinds.len(), usize::from(u.ext_count));
            if u.fragment.is_some_and(|f| f.offset != 0) {
                // RFC 8200: behind a non-first fragment everything is fragment
                // data, so our walk stops at the Fragment header. etherparse
                // keeps decoding an AH that its builder placed after it.
                assert_eq!(kinds.last(), Some(&IpProtocol::FRAGMENT));
                assert!(u.offset <= 40 + ext_len);
                return;
            }
            assert_eq!(u.protocol.0, ip.payload().ip_number.0);
            assert_eq!(u.offset, 40 + ext_len);
            if let Some(first) = ip.extensions().first_header() {
                assert_eq!(kinds[0].0, first.0);
            } else {
                assert!(kinds.is_empty());
            }
            let l4 = &l3[u.offset..p.total_len()];
            assert_eq!(l4, ip.payload().payload);
            (l4, Addrs::V6(p.src_addr(), p.dst_addr()), u.protocol)
        }
    };

    let Some(t) = sp.transport.as_ref() else {
        return; // fragments: etherparse does not decode the transport layer
    };
    match t {
        ep::TransportSlice::Tcp(t) => {
            assert_eq!(proto, IpProtocol::TCP);
            let s = TcpSegment::new_checked(l4).unwrap();
            assert_eq!(s.src_port(), t.source_port());
            assert_eq!(s.dst_port(), t.destination_port());
            assert_eq!(s.seq_number(), t.sequence_number());
            assert_eq!(s.ack_number(), t.acknowledgment_number());
            assert_eq!(s.data_offset(), t.data_offset());
            let f = s.flags();
            let flag_pairs = [
                (TcpFlags::FIN, t.fin()),
                (TcpFlags::SYN, t.syn()),
                (TcpFlags::RST, t.rst()),
                (TcpFlags::PSH, t.psh()),
                (TcpFlags::ACK, t.ack()),
                (TcpFlags::URG, t.urg()),
                (TcpFlags::ECE, t.ece()),
                (TcpFlags::CWR, t.cwr()),
            ];
            for (flag, theirs) in flag_pairs {
                assert_eq!(f.contains(flag), theirs, "{flag}");
            }
            assert_eq!(s.window(), t.window_size());
            assert_eq!(s.checksum(), t.checksum());
            assert_eq!(s.urgent(), t.urgent_pointer());
            assert_eq!(s.options(), t.options());
            assert_eq!(s.payload(), t.payload());
            let mut copy = l4.to_vec();
            let mut q = TcpSegment::new_checked(&mut copy[..]).unwrap();
            q.set_checksum(0x1234);
            match addrs {
                Addrs::V4(a, b) => {
                    assert!(s.verify_checksum_v4(a, b));
                    q.fill_checksum_v4(a, b);
                    assert_eq!(
                        q.checksum(),
                        t.calc_checksum_ipv4(a.octets(), b.octets()).unwrap()
                    );
                }
                Addrs::V6(a, b) => {
                    assert!(s.verify_checksum_v6(&a, &b));
                    q.fill_checksum_v6(&a, &b);
                    assert_eq!(
                        q.checksum(),
                        t.calc_checksum_ipv6(a.octets(), b.octets()).unwrap()
                    );
                }
            }
            assert_eq!(q.checksum(), t.checksum());
        }
        ep::TransportSlice::Udp(t) => {
            assert_eq!(proto, IpProtocol::UDP);
            let s = UdpDatagram::new_checked(l4).unwrap();
            assert_eq!(s.src_port(), t.source_port());
            assert_eq!(s.dst_port(), t.destination_port());
            assert_eq!(s.length(), t.length());
            assert_eq!(s.checksum(), t.checksum());
            assert_eq!(s.payload(), t.payload());
            let mut copy = l4.to_vec();
            let mut q = UdpDatagram::new_checked(&mut copy[..]).unwrap();
            q.set_checksum(0x1234);
            match addrs {
                Addrs::V4(a, b) => {
                    assert!(s.verify_checksum_v4(a, b));
                    q.fill_checksum_v4(a, b);
                    let theirs =
                        t.to_header()
                            .calc_checksum_ipv4_raw(a.octets(), b.octets(), t.payload());
                    assert_eq!(q.checksum(), theirs.unwrap());
                }
                Addrs::V6(a, b) => {
                    assert!(s.verify_checksum_v6(&a, &b));
                    q.fill_checksum_v6(&a, &b);
                }
            }
            assert_eq!(q.checksum(), t.checksum());
        }
        ep::TransportSlice::Icmpv4(t) => {
            assert_eq!(proto, IpProtocol::ICMP);
            let s = Icmpv4Packet::new_checked(l4).unwrap();
            assert_eq!(s.msg_type().0, t.type_u8());
            assert_eq!(s.code(), t.code_u8());
            assert_eq!(s.checksum(), t.checksum());
            assert_eq!(s.rest_of_header().to_be_bytes(), t.bytes5to8());
            if let ep::Icmpv4Type::EchoRequest(echo) = t.icmp_type() {
                assert_eq!((s.echo_ident(), s.echo_seq_no()), (echo.id, echo.seq));
            } else {
                panic!("expected echo request");
            }
            assert_eq!(s.payload(), t.payload());
            assert!(s.verify_checksum());
            let mut copy = l4.to_vec();
            let mut q = Icmpv4Packet::new_checked(&mut copy[..]).unwrap();
            q.set_checksum(0x1234);
            q.fill_checksum();
            assert_eq!(q.checksum(), t.checksum());
        }
        ep::TransportSlice::Icmpv6(t) => {
            assert_eq!(proto, IpProtocol::ICMPV6);
            let Addrs::V6(a, b) = addrs else {
                panic!("ICMPv6 over IPv4")
            };
            let s = Icmpv6Packet::new_checked(l4).unwrap();
            assert_eq!(s.msg_type().0, t.type_u8());
            assert_eq!(s.code(), t.code_u8());
            assert_eq!(s.checksum(), t.checksum());
            assert_eq!(s.rest_of_header().to_be_bytes(), t.bytes5to8());
            if let ep::Icmpv6Type::EchoRequest(echo) = t.icmp_type() {
                assert_eq!((s.echo_ident(), s.echo_seq_no()), (echo.id, echo.seq));
            } else {
                panic!("expected echo request");
            }
            assert_eq!(s.payload(), t.payload());
            assert!(s.verify_checksum(&a, &b));
            assert!(t.is_checksum_valid(a.octets(), b.octets()));
            let mut copy = l4.to_vec();
            let mut q = Icmpv6Packet::new_checked(&mut copy[..]).unwrap();
            q.set_checksum(0x1234);
            q.fill_checksum(&a, &b);
            assert_eq!(q.checksum(), t.checksum());
        }
        ep::TransportSlice::Igmp(_) => panic!("no IGMP is built"),
    }
}

#[test]
fn fixed_ipv6_all_extensions_tcp_double_vlan() {
    let ip = ep::Ipv6Header {
        traffic_class: 0xb8,
        flow_label: ep::Ipv6FlowLabel::try_new(0x12345).unwrap(),
        hop_limit: 64,
        source: "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets(),
        destination: "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets(),
        ..Default::default()
    };
    let raw = |n: usize| ep::Ipv6RawExtHeader::new_raw(ep::IpNumber(0), &vec![0u8; n]).unwrap();
    let icv = [7u8; 12];
    let exts = ep::Ipv6Extensions {
        hop_by_hop_options: Some(raw(6)),
        destination_options: Some(raw(14)),
        routing: Some(ep::Ipv6RoutingExtensions {
            routing: raw(22),
            final_destination_options: Some(raw(6)),
        }),
        fragment: Some(ep::Ipv6FragmentHeader::new(
            ep::IpNumber(0),
            ep::IpFragOffset::ZERO,
            false,
            0xcafe,
        )),
        auth: Some(ep::IpAuthHeader::new(ep::IpNumber(0), 1, 2, &icv).unwrap()),
    };
    let mut out = Vec::new();
    ep::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .double_vlan(
            ep::VlanId::try_new(10).unwrap(),
            ep::VlanId::try_new(20).unwrap(),
        )
        .ip(ep::IpHeaders::Ipv6(ip, exts))
        .tcp(1234, 443, 1, 1000)
        .syn()
        .write(&mut out, b"hello")
        .unwrap();
    compare(&out);
    let l2 = EthernetFrame::new_checked(&out[..]).unwrap().l3().unwrap();
    assert_eq!(l2.vlans(), &[10, 20]);
    let p = Ipv6Packet::new_checked(&out[l2.l3_offset..]).unwrap();
    let u = p.upper_layer().unwrap();
    assert_eq!(u.ext_count, 6);
    assert_eq!(u.protocol, IpProtocol::TCP);
    assert_eq!(u.fragment.unwrap().ident, 0xcafe);
}

#[test]
fn fixed_ipv4_udp_and_icmp() {
    for l4 in 0..2 {
        let mut out = Vec::new();
        let b = ep::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [0xff; 6])
            .single_vlan(ep::VlanId::try_new(100).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
        if l4 == 0 {
            b.udp(5000, 53).write(&mut out, b"query").unwrap();
        } else {
            b.icmpv4_echo_request(7, 9)
                .write(&mut out, b"ping")
                .unwrap();
        }
        compare(&out);
    }
}

proptest! {
    #[test]
    fn random_packets_agree(
        seed in proptest::collection::vec(any::<u8>(), 1..256),
        payload in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        compare(&build(&seed, &payload));
    }
}
