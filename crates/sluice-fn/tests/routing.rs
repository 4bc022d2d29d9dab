//! Conformance of the router with crafted packets: what is forwarded is
//! rewritten exactly; what a router must answer (ICMP errors, echo, ARP,
//! ND) comes out byte-valid on the right interface; resolution holds,
//! retries, releases and gives up; what is malformed is dropped under the
//! right counter; random bytes never panic and never leak a buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use proptest::prelude::*;
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::addr::{SharedAddrs, address_routes};
use sluice_fn::fib::{AdjKind, FibConfig, LpmConfig};
use sluice_fn::ip::resolve::ResolveConfig;
use sluice_fn::{Fib, IfAddrs, Path, Route, Router};
use sluice_graph::iface::Interfaces;
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};
use sluice_wire::MacAddr;

const IF0_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const IF1_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const NH_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);
const PEER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x77]);
const HOST4: [u8; 4] = [10, 0, 0, 1];
const ME4: [u8; 4] = [10, 0, 0, 254];

fn host6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}
fn me6() -> Ipv6Addr {
    "2001:db8::fe".parse().unwrap()
}

type Captured = Arc<Mutex<Vec<(u32, Vec<u8>)>>>;

/// An output node that keeps copies of what it is sent.
struct Capture(u32, String, Captured);

impl Node for Capture {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(self.1.clone(), &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut v = self.2.lock().unwrap();
        for p in input.iter() {
            let mut b = Vec::new();
            p.copy_to(&mut b);
            v.push((self.0, b));
        }
        cx.buffers.free_all(input);
    }
}

struct Net {
    pool: Pool,
    graph: Graph,
    fib: Arc<Fib>,
    addrs: Arc<SharedAddrs>,
    out: Captured,
}

/// if0 (10.0.0.254/24, 2001:db8::fe/64) faces the test host 10.0.0.1,
/// which is a known neighbour; if1 (10.2.0.254/24, 2001:db8:2::fe/64)
/// faces the rest.
fn net(mtu: u16) -> Net {
    net_with(mtu, false)
}

/// [`net`], announcing its addresses at start if `announce`.
fn net_with(mtu: u16, announce: bool) -> Net {
    let pool = Pool::new(&PoolConfig {
        buffers: 2048,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let mut ifs = Interfaces::new();
    ifs.add("if0", "test", IF0_MAC, 1500, Some("if0-output".into()));
    ifs.add("if1", "test", IF1_MAC, mtu, Some("if1-output".into()));
    let ifs = Arc::new(ifs);
    let shape = LpmConfig {
        root_bits: 16,
        max_groups: 4096,
        huge_pages: false,
        stride: 8,
        skip: true,
    };
    let fib = Arc::new(
        Fib::new(
            FibConfig {
                tables: 2,
                v4: shape,
                v6: shape,
                adjacencies: 1024,
                load_balances: 64,
                vrf_root_bits: 16,
            },
            ifs.clone(),
        )
        .unwrap(),
    );
    let mut addrs = IfAddrs::new(2);
    addrs.add(0, IpAddr::from(ME4), 24).unwrap();
    addrs.add(0, me6().into(), 64).unwrap();
    addrs.add(1, "10.2.0.254".parse().unwrap(), 24).unwrap();
    addrs.add(1, "2001:db8:2::fe".parse().unwrap(), 64).unwrap();
    let mut router = Router::new(fib.clone(), Arc::new(addrs)).unwrap();
    router.announce = announce;
    router.resolve = ResolveConfig {
        retry: Duration::from_millis(20),
        max_age: Duration::from_millis(300),
        ..ResolveConfig::default()
    };
    fib.add_static_neighbor(0, IpAddr::from(HOST4), HOST_MAC, true);
    fib.add_static_neighbor(0, host6().into(), HOST_MAC, true);
    let via = |mac| Path::Via {
        interface: 1,
        addr: None,
        mac: Some(mac),
    };
    let r = |p: &str, paths| Route {
        table: 0,
        prefix: p.parse().unwrap(),
        paths,
    };
    for route in [
        r("10.1.0.0/16", vec![via(NH_MAC)]),
        r("10.1.9.0/24", vec![Path::Drop]),
        r("10.3.0.0/16", vec![Path::Prohibit]),
        r(
            "10.4.0.0/16",
            vec![Path::Via {
                interface: 1,
                addr: Some("10.2.0.9".parse().unwrap()),
                mac: None,
            }],
        ),
        r(
            "10.5.0.0/16",
            vec![
                via(NH_MAC),
                Path::Via {
                    interface: 0,
                    addr: None,
                    mac: Some(PEER_MAC),
                },
            ],
        ),
        r("2001:db8:1::/48", vec![via(NH_MAC)]),
    ] {
        fib.add(&route).unwrap();
    }
    let out = Captured::default();
    let mut b = GraphBuilder::new();
    for n in router.nodes() {
        b.add(n).unwrap();
    }
    b.add(Box::new(Capture(0, "if0-output".into(), out.clone())))
        .unwrap();
    b.add(Box::new(Capture(1, "if1-output".into(), out.clone())))
        .unwrap();
    let graph = b.build(0, pool.cache(64)).unwrap();
    Net {
        pool,
        graph,
        fib,
        addrs: router.addrs.clone(),
        out,
    }
}

impl Net {
    fn send_on(&mut self, rx: u32, frames: &[Vec<u8>]) {
        let mut f = Frame::new();
        for bytes in frames {
            let mut p = self.graph.buffers().alloc_from(bytes).unwrap();
            p.meta_mut().rx_if = rx;
            f.push(p);
        }
        self.graph.inject("ethernet-input", &mut f).unwrap();
    }

    fn send(&mut self, frames: &[Vec<u8>]) {
        self.send_on(0, frames);
    }

    /// What came out since the last call.
    fn take(&self) -> Vec<(u32, Vec<u8>)> {
        std::mem::take(&mut *self.out.lock().unwrap())
    }

    fn one(&self) -> (u32, Vec<u8>) {
        let mut out = self.take();
        assert_eq!(out.len(), 1, "expected one frame out, got {}", out.len());
        out.remove(0)
    }

    fn counter(&self, node: &str, name: &str) -> u64 {
        let s = self.graph.stats();
        runtime::error_rows(&[&*s])
            .iter()
            .find(|e| e.node == node && e.name == name)
            .map_or(0, |e| e.count)
    }

    fn dropped(&self) -> u64 {
        runtime::packets_dropped(&[&*self.graph.stats()])
    }

    /// Runs the polled timers for `d`.
    fn wait(&mut self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.graph.run_once();
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn finish(self) {
        let Net { pool, graph, .. } = self;
        drop(graph);
        assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
    }
}

fn udp4_from(src: [u8; 4], dst: [u8; 4], ttl: u8, payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC.0, IF0_MAC.0)
        .ipv4(src, dst, ttl)
        .udp(1234, 80);
    let payload: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    let mut v = Vec::new();
    b.write(&mut v, &payload).unwrap();
    v
}

fn udp4(dst: [u8; 4], ttl: u8, payload: usize) -> Vec<u8> {
    udp4_from(HOST4, dst, ttl, payload)
}

fn udp6(dst: Ipv6Addr, hop_limit: u8, payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC.0, IF0_MAC.0)
        .ipv6(host6().octets(), dst.octets(), hop_limit)
        .udp(1234, 80);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0x5a; payload]).unwrap();
    v
}

/// Sets or clears DF and fixes the header checksum.
fn set_df(frame: &mut [u8], df: bool) {
    let ip = &mut frame[14..34];
    ip[6] = if df { ip[6] | 0x40 } else { ip[6] & !0x40 };
    ip[10..12].fill(0);
    let mut sum = 0u32;
    for k in 0..10 {
        sum += u32::from(u16::from_be_bytes([ip[2 * k], ip[2 * k + 1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// The L2 addresses of a frame, and its parse.
fn parse(frame: &[u8]) -> (MacAddr, MacAddr, SlicedPacket<'_>) {
    let p = SlicedPacket::from_ethernet(frame).expect("frame parses");
    (
        MacAddr::from_bytes(&frame[0..6]),
        MacAddr::from_bytes(&frame[6..12]),
        p,
    )
}

fn icmp4_of(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, Icmpv4Type) {
    let (_, _, p) = parse(frame);
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!("not ICMP")
    };
    let ty = icmp.icmp_type();
    let header = icmp.header();
    assert_eq!(
        header.checksum,
        header.icmp_type.calc_checksum(icmp.payload()),
        "ICMP checksum"
    );
    (h.source.into(), h.destination.into(), ty)
}

fn icmp6_of(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, Icmpv6Type) {
    let (_, _, p) = parse(frame);
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("not IPv6")
    };
    let h = ip.header().to_header();
    let Some(TransportSlice::Icmpv6(icmp)) = &p.transport else {
        panic!("not ICMPv6")
    };
    let header = icmp.header();
    assert_eq!(
        header.checksum,
        header
            .icmp_type
            .calc_checksum(h.source, h.destination, icmp.payload())
            .unwrap(),
        "ICMPv6 checksum"
    );
    (h.source.into(), h.destination.into(), icmp.icmp_type())
}

#[test]
fn forwarded_ipv4_is_rewritten_exactly() {
    let mut n = net(1500);
    let sent = udp4([10, 1, 2, 3], 64, 100);
    n.send(std::slice::from_ref(&sent));
    let (tx, out) = n.one();
    assert_eq!(tx, 1);
    let (dst, src, p) = parse(&out);
    assert_eq!((dst, src), (NH_MAC, IF1_MAC));
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(h.time_to_live, 63);
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(out[14 + 9..14 + 10], sent[14 + 9..14 + 10]);
    assert_eq!(out[14 + 12..], sent[14 + 12..]);
    assert_eq!(n.dropped(), 0);
    n.finish();
}

#[test]
fn forwarded_ipv6_is_rewritten_exactly() {
    let mut n = net(1500);
    let sent = udp6("2001:db8:1::5".parse().unwrap(), 64, 100);
    n.send(std::slice::from_ref(&sent));
    let (tx, out) = n.one();
    assert_eq!(tx, 1);
    assert_eq!(&out[0..12], &[NH_MAC.0, IF1_MAC.0].concat()[..]);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    assert_eq!(out[14 + 7], 63, "hop limit");
    assert_eq!(out[14 + 8..], sent[14 + 8..]);
    n.finish();
}

#[test]
fn vlan_tagged_frames_are_routed_untagged_and_padding_trimmed() {
    let mut n = net(1500);
    let b = PacketBuilder::ethernet2(HOST_MAC.0, IF0_MAC.0)
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv4(HOST4, [10, 1, 0, 1], 9)
        .udp(1, 2);
    let mut v = Vec::new();
    b.write(&mut v, &[7; 30]).unwrap();
    n.send(&[v]);
    let (_, out) = n.one();
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    let mut padded = udp4([10, 1, 0, 1], 5, 0);
    let ip_len = padded.len() - 14;
    padded.resize(60, 0xee);
    n.send(&[padded]);
    assert_eq!(n.one().1.len(), 14 + ip_len);
    n.finish();
}

#[test]
fn ttl_expiry_answers_time_exceeded_from_the_receiving_interface() {
    let mut n = net(1500);
    for ttl in [1, 0] {
        n.send(&[udp4([10, 1, 0, 1], ttl, 20)]);
        let (tx, out) = n.one();
        assert_eq!(tx, 0);
        assert_eq!(MacAddr::from_bytes(&out[0..6]), HOST_MAC);
        let (src, dst, ty) = icmp4_of(&out);
        assert_eq!((src, dst), (Ipv4Addr::from(ME4), Ipv4Addr::from(HOST4)));
        assert!(matches!(ty, Icmpv4Type::TimeExceeded(_)), "{ty:?}");
    }
    assert_eq!(n.counter("ip4-rewrite", "ttl-expired"), 2);
    n.send(&[udp6("2001:db8:1::5".parse().unwrap(), 1, 20)]);
    let (_, out) = n.one();
    let (src, dst, ty) = icmp6_of(&out);
    assert_eq!((src, dst), (me6(), host6()));
    assert!(matches!(ty, Icmpv6Type::TimeExceeded(_)), "{ty:?}");
    n.finish();
}

#[test]
fn no_route_and_prohibit_answer_unreachable() {
    use etherparse::icmpv4::DestUnreachableHeader as D4;
    let mut n = net(1500);
    n.send(&[udp4([192, 0, 2, 1], 64, 20)]);
    let (_, ty) = {
        let (_, out) = n.one();
        let (_, dst, ty) = icmp4_of(&out);
        (dst, ty)
    };
    assert!(
        matches!(ty, Icmpv4Type::DestinationUnreachable(D4::Network)),
        "{ty:?}"
    );
    n.send(&[udp4([10, 3, 0, 1], 64, 20)]);
    let (_, out) = n.one();
    let (_, _, ty) = icmp4_of(&out);
    assert!(
        matches!(ty, Icmpv4Type::DestinationUnreachable(D4::FilterProhibited)),
        "{ty:?}"
    );
    n.send(&[udp6("2001:db8:77::1".parse().unwrap(), 64, 20)]);
    let (_, out) = n.one();
    let (_, _, ty) = icmp6_of(&out);
    assert!(
        matches!(ty, Icmpv6Type::DestinationUnreachable(_)),
        "{ty:?}"
    );
    // A drop route is silent.
    n.send(&[udp4([10, 1, 9, 200], 64, 20)]);
    assert!(n.take().is_empty());
    assert_eq!(n.counter("ip4-lookup", "drop-route"), 1);
    assert_eq!(n.counter("ip4-lookup", "no-route"), 1);
    assert_eq!(n.counter("ip4-lookup", "prohibited"), 1);
    n.finish();
}

#[test]
fn mtu_with_df_answers_fragmentation_needed_and_without_is_counted() {
    use etherparse::icmpv4::DestUnreachableHeader as D4;
    let mut n = net(1000);
    let mut big = udp4([10, 1, 0, 1], 64, 1200);
    set_df(&mut big, true);
    n.send(&[big.clone()]);
    let (_, out) = n.one();
    let (_, _, ty) = icmp4_of(&out);
    assert!(
        matches!(
            ty,
            Icmpv4Type::DestinationUnreachable(D4::FragmentationNeeded { next_hop_mtu: 1000 })
        ),
        "{ty:?}"
    );
    set_df(&mut big, false);
    n.send(&[big]);
    assert!(n.take().is_empty());
    assert_eq!(n.counter("ip4-rewrite", "fragmentation-not-supported"), 1);
    n.send(&[udp6("2001:db8:1::5".parse().unwrap(), 64, 1200)]);
    let (_, out) = n.one();
    let (_, _, ty) = icmp6_of(&out);
    assert!(
        matches!(ty, Icmpv6Type::PacketTooBig { mtu: 1000 }),
        "{ty:?}"
    );
    n.finish();
}

#[test]
fn the_router_answers_ping_and_closed_ports() {
    let mut n = net(1500);
    let b = PacketBuilder::ethernet2(HOST_MAC.0, IF0_MAC.0)
        .ipv4(HOST4, ME4, 64)
        .icmpv4_echo_request(7, 1);
    let mut v = Vec::new();
    b.write(&mut v, b"ping").unwrap();
    n.send(&[v]);
    let (tx, out) = n.one();
    assert_eq!(tx, 0);
    let (src, dst, ty) = icmp4_of(&out);
    assert_eq!((src, dst), (Ipv4Addr::from(ME4), Ipv4Addr::from(HOST4)));
    assert!(matches!(ty, Icmpv4Type::EchoReply(e) if e.id == 7 && e.seq == 1));

    let b = PacketBuilder::ethernet2(HOST_MAC.0, IF0_MAC.0)
        .ipv6(host6().octets(), me6().octets(), 64)
        .icmpv6_echo_request(9, 2);
    let mut v = Vec::new();
    b.write(&mut v, b"ping6").unwrap();
    n.send(&[v]);
    let (_, out) = n.one();
    let (src, dst, ty) = icmp6_of(&out);
    assert_eq!((src, dst), (me6(), host6()));
    assert!(matches!(ty, Icmpv6Type::EchoReply(e) if e.id == 9 && e.seq == 2));

    n.send(&[udp4(ME4, 64, 10)]);
    let (_, out) = n.one();
    let (_, _, ty) = icmp4_of(&out);
    assert!(matches!(ty, Icmpv4Type::DestinationUnreachable(_)));
    assert_eq!(n.counter("ip4-local", "udp-no-listener"), 1);
    n.finish();
}

fn arp(op: u16, sender: (MacAddr, [u8; 4]), target: (MacAddr, [u8; 4]), to: MacAddr) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&to.0);
    v.extend_from_slice(&sender.0.0);
    v.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&sender.0.0);
    v.extend_from_slice(&sender.1);
    v.extend_from_slice(&target.0.0);
    v.extend_from_slice(&target.1);
    v.resize(60, 0);
    v
}

#[test]
fn arp_requests_for_us_are_answered_and_the_asker_learned() {
    let mut n = net(1500);
    let asker = MacAddr([2, 0, 0, 0, 0, 0x33]);
    n.send(&[arp(
        1,
        (asker, [10, 0, 0, 33]),
        (MacAddr::ZERO, ME4),
        MacAddr::BROADCAST,
    )]);
    let (tx, out) = n.one();
    assert_eq!(tx, 0);
    assert_eq!(MacAddr::from_bytes(&out[0..6]), asker);
    assert_eq!(&out[20..22], &[0, 2], "a reply");
    assert_eq!(&out[22..28], &IF0_MAC.0);
    assert_eq!(&out[28..32], &ME4);
    let learned = n.fib.resolve(0, "10.0.0.33".parse().unwrap(), 0).unwrap();
    assert_eq!(
        (learned.kind, learned.mac),
        (AdjKind::Neighbor, Some(asker))
    );
    // Not for us: no answer (proxy ARP is off).
    n.send(&[arp(
        1,
        (asker, [10, 0, 0, 33]),
        (MacAddr::ZERO, [10, 0, 0, 99]),
        MacAddr::BROADCAST,
    )]);
    assert!(n.take().is_empty());
    assert_eq!(n.counter("arp-input", "not-for-us"), 1);
    n.finish();
}

#[test]
fn an_address_given_while_forwarding_is_answered_at_once_and_gone_when_taken() {
    let mut n = net(1500);
    let asker = MacAddr([2, 0, 0, 0, 0, 0x33]);
    let new = [10, 0, 0, 77];
    let ask = arp(
        1,
        (asker, [10, 0, 0, 33]),
        (MacAddr::ZERO, new),
        MacAddr::BROADCAST,
    );
    n.send(std::slice::from_ref(&ask));
    assert!(n.take().is_empty(), "not ours yet");

    let mut addrs = (**n.addrs.snapshot()).clone();
    addrs.add(0, IpAddr::from(new), 24).unwrap();
    n.addrs.publish(addrs.clone());
    for r in address_routes(0, 0, IpAddr::from(new), 24) {
        n.fib.add(&r).unwrap();
    }
    n.send(std::slice::from_ref(&ask));
    let (tx, out) = n.one();
    assert_eq!((tx, &out[28..32]), (0, &new[..]), "an ARP reply for it");
    let b = PacketBuilder::ethernet2(HOST_MAC.0, IF0_MAC.0)
        .ipv4(HOST4, new, 64)
        .icmpv4_echo_request(7, 1);
    let mut v = Vec::new();
    b.write(&mut v, b"ping").unwrap();
    n.send(std::slice::from_ref(&v));
    let (_, out) = n.one();
    let (src, _, ty) = icmp4_of(&out);
    assert_eq!(src, Ipv4Addr::from(new));
    assert!(matches!(ty, Icmpv4Type::EchoReply(_)));

    assert_eq!(addrs.remove(0, IpAddr::from(new)), Ok(24));
    assert!(addrs.remove(0, IpAddr::from(new)).is_err(), "only once");
    n.addrs.publish(addrs);
    n.fib.remove(0, "10.0.0.77/32".parse().unwrap()).unwrap();
    n.send(std::slice::from_ref(&ask));
    assert!(n.take().is_empty(), "not ours any more");
    assert_eq!(n.counter("arp-input", "not-for-us"), 2);
    n.finish();
}

#[test]
fn a_static_neighbour_taken_away_resolves_again() {
    let n = net(1500);
    let host = IpAddr::from(HOST4);
    let adj = n.fib.resolve(0, host, 0).unwrap();
    assert_eq!((adj.kind, adj.mac), (AdjKind::Neighbor, Some(HOST_MAC)));
    assert!(n.fib.remove_static_neighbor(0, host));
    assert!(!n.fib.remove_static_neighbor(0, host), "only once");
    assert!(!n.fib.neighbors().iter().any(|e| e.addr == host));
    let adj = n.fib.resolve(0, host, 0).unwrap();
    assert_eq!(adj.kind, AdjKind::Glean, "its host route went with it");
    n.finish();
}

#[test]
fn glean_holds_asks_and_forwards_once_the_neighbour_answers() {
    let mut n = net(1500);
    let neighbor = MacAddr([2, 0, 0, 0, 2, 7]);
    // To a connected destination, then through a next hop to resolve.
    n.send(&[udp4([10, 2, 0, 7], 64, 10), udp4([10, 4, 1, 1], 64, 10)]);
    let asked = n.take();
    assert_eq!(asked.len(), 2, "one ARP request per neighbour");
    for (tx, req) in &asked {
        assert_eq!(*tx, 1);
        assert_eq!(MacAddr::from_bytes(&req[0..6]), MacAddr::BROADCAST);
        assert_eq!(&req[12..14], &[0x08, 0x06]);
        assert_eq!(&req[28..32], &[10, 2, 0, 254], "asks from if1's address");
    }
    let targets: Vec<_> = asked.iter().map(|(_, r)| r[38..42].to_vec()).collect();
    assert!(targets.contains(&vec![10, 2, 0, 7]) && targets.contains(&vec![10, 2, 0, 9]));
    assert_eq!(n.counter("ip4-arp", "held"), 2);
    // The answers come in on if1.
    for ip in [[10, 2, 0, 7], [10, 2, 0, 9]] {
        n.send_on(
            1,
            &[arp(2, (neighbor, ip), (IF1_MAC, [10, 2, 0, 254]), IF1_MAC)],
        );
    }
    n.wait(Duration::from_millis(5));
    let out = n.take();
    assert_eq!(out.len(), 2);
    for (tx, f) in &out {
        assert_eq!(*tx, 1);
        assert_eq!(MacAddr::from_bytes(&f[0..6]), neighbor);
        assert_eq!(f[14 + 8], 63);
    }
    assert_eq!(n.counter("ip4-arp", "resolved"), 2);
    // Now it goes straight through.
    n.send(&[udp4([10, 2, 0, 7], 64, 10)]);
    assert_eq!(MacAddr::from_bytes(&n.one().1[0..6]), neighbor);
    // And ages out: the next packet gleans again.
    n.wait(Duration::from_millis(1400));
    assert_eq!(
        n.fib
            .resolve(0, "10.2.0.7".parse().unwrap(), 0)
            .unwrap()
            .kind,
        AdjKind::Glean
    );
    n.finish();
}

#[test]
fn unanswered_resolution_retries_then_gives_up_with_host_unreachable() {
    use etherparse::icmpv4::DestUnreachableHeader as D4;
    let mut n = net(1500);
    let frames: Vec<_> = (0..6).map(|_| udp4([10, 2, 0, 8], 64, 10)).collect();
    n.send(&frames);
    assert_eq!(n.counter("ip4-arp", "held"), 4);
    assert_eq!(n.counter("ip4-arp", "hold-queue-full"), 2);
    n.wait(Duration::from_millis(120));
    let out = n.take();
    let requests = out
        .iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x06])
        .count();
    assert_eq!(requests, 3, "three attempts");
    let errors: Vec<_> = out
        .iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x00])
        .collect();
    assert_eq!(errors.len(), 4, "each held packet is answered");
    for (tx, f) in errors {
        assert_eq!(*tx, 0);
        let (_, _, ty) = icmp4_of(f);
        assert!(
            matches!(ty, Icmpv4Type::DestinationUnreachable(D4::Host)),
            "{ty:?}"
        );
    }
    assert_eq!(n.counter("ip4-arp", "unresolved"), 4);
    n.finish();
}

#[test]
fn neighbour_discovery_answers_solicitations_and_resolves() {
    let mut n = net(1500);
    // The host asks for our address.
    let mut ns = Vec::new();
    let target = me6();
    let sn = sluice_fn::host::nd::solicited_node(target);
    {
        let mut p = n.graph.buffers().alloc().unwrap();
        sluice_fn::host::nd::solicit(&mut p, HOST_MAC, host6(), target).unwrap();
        p.copy_to(&mut ns);
        n.graph.buffers().free(p);
    }
    assert_eq!(&ns[38..54], &sn.octets());
    n.send(&[ns]);
    let (tx, na) = n.one();
    assert_eq!(tx, 0);
    let (src, dst, ty) = icmp6_of(&na);
    assert_eq!((src, dst), (me6(), host6()));
    assert!(matches!(ty, Icmpv6Type::NeighborAdvertisement(_)), "{ty:?}");
    // A packet to an on-link IPv6 neighbour: solicited, then released.
    let far: Ipv6Addr = "2001:db8:2::7".parse().unwrap();
    n.send(&[udp6(far, 64, 10)]);
    let (tx, ns) = n.one();
    assert_eq!(tx, 1);
    assert_eq!(&ns[0..3], &[0x33, 0x33, 0xff]);
    // Its answer.
    let neighbor = MacAddr([2, 0, 0, 0, 6, 7]);
    let if1_addr: Ipv6Addr = "2001:db8:2::fe".parse().unwrap();
    let b = PacketBuilder::ethernet2(neighbor.0, IF1_MAC.0)
        .ipv6(far.octets(), if1_addr.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborAdvertisement(
            etherparse::icmpv6::NeighborAdvertisementHeader {
                router: false,
                solicited: true,
                r#override: true,
            },
        ));
    // Target address, then the target link-layer address option.
    let mut body = far.octets().to_vec();
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&neighbor.0);
    let mut na = Vec::new();
    b.write(&mut na, &body).unwrap();
    n.send_on(1, &[na]);
    n.wait(Duration::from_millis(5));
    let out = n.take();
    let data: Vec<_> = out.iter().filter(|(_, f)| f[14 + 6] == 17).collect();
    assert_eq!(data.len(), 1, "{out:?}");
    assert_eq!(MacAddr::from_bytes(&data[0].1[0..6]), neighbor);
    n.finish();
}

#[test]
fn ecmp_spreads_flows_and_keeps_each_on_one_path() {
    let mut n = net(1500);
    let mut frames = Vec::new();
    for k in 0..200u16 {
        let b = PacketBuilder::ethernet2(HOST_MAC.0, IF0_MAC.0)
            .ipv4(HOST4, [10, 5, (k >> 8) as u8, k as u8], 64)
            .udp(1000 + k, 80);
        let mut v = Vec::new();
        b.write(&mut v, &[1; 8]).unwrap();
        frames.push(v);
    }
    n.send(&frames);
    let first = n.take();
    let per_if = |o: &[(u32, Vec<u8>)], i| o.iter().filter(|(t, _)| *t == i).count();
    assert!(
        per_if(&first, 0) > 50 && per_if(&first, 1) > 50,
        "{}",
        per_if(&first, 0)
    );
    n.send(&frames);
    let again: Vec<u32> = n.take().iter().map(|(t, _)| *t).collect();
    assert_eq!(again, first.iter().map(|(t, _)| *t).collect::<Vec<_>>());
    n.finish();
}

#[test]
fn each_malformation_has_its_counter() {
    let mut n = net(1500);
    let good = udp4([10, 1, 0, 1], 64, 20);
    let mut cases: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    cases.push(("ethernet-input", "too-short", good[..10].to_vec()));
    let mut other_mac = good.clone();
    other_mac[5] = 0x77;
    cases.push(("ethernet-input", "l3-mac-mismatch", other_mac));
    let mut unknown = good.clone();
    unknown[12..14].copy_from_slice(&[0x12, 0x34]);
    cases.push(("ethernet-input", "unknown-ethertype", unknown));
    let mut vlan_cut = good[..14].to_vec();
    vlan_cut[12..14].copy_from_slice(&[0x81, 0x00]);
    vlan_cut.extend_from_slice(&[0, 1]);
    cases.push(("ethernet-input", "bad-vlan", vlan_cut));
    cases.push(("ip4-input", "too-short", good[..14 + 19].to_vec()));
    let mut v6 = good.clone();
    v6[14] = 0x65;
    cases.push(("ip4-input", "bad-version", v6));
    let mut ihl = good.clone();
    ihl[14] = 0x44;
    cases.push(("ip4-input", "bad-header-length", ihl));
    let mut len = good.clone();
    len[16..18].copy_from_slice(&2000u16.to_be_bytes());
    cases.push(("ip4-input", "bad-length", len));
    let mut csum = good.clone();
    csum[24] ^= 0xff;
    cases.push(("ip4-input", "bad-checksum", csum));
    let g6 = udp6("2001:db8:1::5".parse().unwrap(), 64, 20);
    cases.push(("ip6-input", "too-short", g6[..14 + 39].to_vec()));
    let mut bad6 = g6.clone();
    bad6[14] = 0x45;
    cases.push(("ip6-input", "bad-version", bad6));
    let mut len6 = g6.clone();
    len6[18..20].copy_from_slice(&3000u16.to_be_bytes());
    cases.push(("ip6-input", "bad-length", len6));
    let mut msrc = g6.clone();
    msrc[22] = 0xff;
    cases.push(("ip6-input", "bad-source", msrc));
    let mut mdst = g6.clone();
    mdst[38] = 0xff;
    mdst[39] = 0x0e;
    cases.push(("ip6-input", "multicast-not-forwarded", mdst));
    cases.push(("arp-input", "malformed", {
        let mut a = arp(
            1,
            (HOST_MAC, HOST4),
            (MacAddr::ZERO, ME4),
            MacAddr::BROADCAST,
        );
        a[16] = 0x86;
        a
    }));

    for (node, name, bytes) in &cases {
        let before = n.counter(node, name);
        let dropped = n.dropped();
        n.send(std::slice::from_ref(bytes));
        assert_eq!(n.counter(node, name), before + 1, "{node}/{name}");
        assert_eq!(n.dropped(), dropped + 1, "{node}/{name} drops");
    }
    assert!(n.take().is_empty());
    n.finish();
}

#[test]
fn jumbo_frames_route_through_chained_buffers() {
    let mut n = net(9000);
    let v = udp4([10, 1, 0, 1], 64, 8000);
    n.send(std::slice::from_ref(&v));
    let (_, out) = n.one();
    assert_eq!(out.len(), v.len());
    assert_eq!(out[14 + 20..], v[14 + 20..]);
    n.finish();
}

#[test]
fn tables_keep_interfaces_apart() {
    let mut n = net(1500);
    // if0's packets move to table 1, which routes 10.1/16 nowhere.
    n.fib.bind(0, 1).unwrap();
    n.send(&[udp4([10, 1, 0, 1], 64, 20)]);
    assert!(
        n.take().is_empty(),
        "no route, and no address to answer from in table 1"
    );
    n.fib
        .add(&Route {
            table: 1,
            prefix: "10.1.0.0/16".parse().unwrap(),
            paths: vec![Path::Via {
                interface: 1,
                addr: None,
                mac: Some(PEER_MAC),
            }],
        })
        .unwrap();
    n.send(&[udp4([10, 1, 0, 1], 64, 20)]);
    assert_eq!(MacAddr::from_bytes(&n.one().1[0..6]), PEER_MAC);
    n.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random bytes behind a plausible Ethernet header: never a panic, and
    /// every buffer back in the pool once the graph stops.
    #[test]
    fn random_packets_never_panic_or_leak(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..64),
        mutate in 0u8..4,
    ) {
        let mut n = net(1500);
        let frames: Vec<Vec<u8>> = frames.into_iter().map(|mut f| {
            if mutate > 0 && f.len() >= 60 {
                f[0..6].copy_from_slice(&IF0_MAC.0);
                match mutate {
                    1 => {
                        f[12..14].copy_from_slice(&[0x08, 0x00]);
                        f[14] = 0x45;
                        f[30] = 10;
                    }
                    2 => {
                        f[12..14].copy_from_slice(&[0x86, 0xdd]);
                        f[14] = 0x60;
                        f[38] = 0x20;
                    }
                    _ => f[12..14].copy_from_slice(&[0x08, 0x06]),
                }
            }
            f
        }).collect();
        n.send(&frames);
        n.graph.run_once();
        n.finish();
    }
}

#[test]
fn gratuitous_arp_announces_each_address_twice_at_start() {
    let mut n = net_with(1500, true);
    n.wait(Duration::from_millis(5));
    let first = n.take();
    assert_eq!(first.len(), 2, "one per IPv4 address");
    for (tx, f) in &first {
        let (mac, ip) = if *tx == 0 {
            (IF0_MAC, ME4)
        } else {
            (IF1_MAC, [10, 2, 0, 254])
        };
        assert_eq!(MacAddr::from_bytes(&f[0..6]), MacAddr::BROADCAST);
        assert_eq!(MacAddr::from_bytes(&f[6..12]), mac);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[20..22], &[0, 1], "a request (RFC 5227 announcement)");
        assert_eq!(&f[28..32], &ip, "sender IP");
        assert_eq!(&f[38..42], &ip, "target IP is the same");
    }
    assert_eq!(n.counter("arp-announce", "sent"), 2);
    // The second round, two seconds later, and no third.
    n.wait(Duration::from_millis(2100));
    assert_eq!(n.take().len(), 2);
    n.wait(Duration::from_millis(2100));
    assert!(n.take().is_empty());
    assert_eq!(n.counter("arp-announce", "sent"), 4);
    n.finish();
}
