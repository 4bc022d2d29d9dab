//! Conformance of the IPv4 chain with crafted packets: what is forwarded is
//! rewritten exactly; what is malformed is dropped under the right counter;
//! random bytes never panic and never leak a buffer.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use etherparse::{PacketBuilder, SlicedPacket};
use proptest::prelude::*;
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::{EthernetInput, Ip4Fib, Ip4Input, Ip4Lookup, Ip4Rewrite, Route, RouteTarget};
use sluice_graph::iface::Interfaces;
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};
use sluice_wire::MacAddr;

const RX_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const TX_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const NH_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);

type Captured = Arc<Mutex<Vec<Vec<u8>>>>;

/// An output node that keeps copies of what it is sent.
struct Capture(String, Captured);

impl Node for Capture {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(self.0.clone(), &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut v = self.1.lock().unwrap();
        for p in input.iter() {
            let mut b = Vec::new();
            p.copy_to(&mut b);
            v.push(b);
        }
        cx.buffers.free_all(input);
    }
}

struct Chain {
    pool: Pool,
    graph: Graph,
    out: Captured,
}

fn chain(mtu: u16) -> Chain {
    let pool = Pool::new(&PoolConfig {
        buffers: 2048,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let mut ifs = Interfaces::new();
    ifs.add("rx0", "test", RX_MAC, 1500, None);
    ifs.add("tx0", "test", TX_MAC, mtu, Some("tx0-output".into()));
    let ifs = Arc::new(ifs);
    let routes = [
        Route {
            prefix: Ipv4Addr::new(10, 1, 0, 0),
            len: 16,
            target: RouteTarget::Forward {
                interface: 1,
                mac: NH_MAC,
            },
        },
        Route {
            prefix: Ipv4Addr::new(10, 1, 9, 0),
            len: 24,
            target: RouteTarget::Drop,
        },
    ];
    let fib = Arc::new(Ip4Fib::build(&routes, &ifs).unwrap());
    let out = Captured::default();
    let mut b = GraphBuilder::new();
    b.add(Box::new(EthernetInput::new(&ifs))).unwrap();
    b.add(Box::new(Ip4Input::new())).unwrap();
    b.add(Box::new(Ip4Lookup::new(fib.clone()))).unwrap();
    b.add(Box::new(Ip4Rewrite::new(fib, &ifs))).unwrap();
    b.add(Box::new(Capture("tx0-output".into(), out.clone())))
        .unwrap();
    let graph = b.build(0, pool.cache(64)).unwrap();
    Chain { pool, graph, out }
}

impl Chain {
    fn send(&mut self, frames: &[Vec<u8>]) {
        let mut f = Frame::new();
        for bytes in frames {
            let mut p = self.graph.buffers().alloc_from(bytes).unwrap();
            p.meta_mut().rx_if = 0;
            f.push(p);
        }
        self.graph.inject("ethernet-input", &mut f).unwrap();
    }

    fn error(&self, node: &str, name: &str) -> u64 {
        let s = self.graph.stats();
        runtime::error_rows(&[&*s])
            .iter()
            .find(|e| e.node == node && e.name == name)
            .map_or(0, |e| e.count)
    }

    fn errors_total(&self) -> u64 {
        let s = self.graph.stats();
        runtime::error_rows(&[&*s]).iter().map(|e| e.count).sum()
    }

    fn finish(self) {
        let Chain { pool, graph, .. } = self;
        drop(graph);
        assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
    }
}

fn udp(dst: [u8; 4], ttl: u8, payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC.0, RX_MAC.0)
        .ipv4([10, 0, 0, 1], dst, ttl)
        .udp(1234, 80);
    let payload: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    let mut v = Vec::new();
    b.write(&mut v, &payload).unwrap();
    v
}

#[test]
fn forwarded_packet_is_rewritten_exactly() {
    let mut c = chain(1500);
    let sent = udp([10, 1, 2, 3], 64, 100);
    c.send(std::slice::from_ref(&sent));
    let out = c.out.lock().unwrap().clone();
    assert_eq!(out.len(), 1);
    let got = SlicedPacket::from_ethernet(&out[0]).unwrap();
    let eth = got.link.as_ref().unwrap().to_header().unwrap();
    let etherparse::LinkHeader::Ethernet2(eth) = eth else {
        panic!()
    };
    assert_eq!(eth.destination, NH_MAC.0);
    assert_eq!(eth.source, TX_MAC.0);
    let Some(etherparse::NetSlice::Ipv4(ip)) = &got.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(h.time_to_live, 63);
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    // Everything but MACs, TTL and checksum is untouched.
    assert_eq!(out[0][14 + 9..14 + 10], sent[14 + 9..14 + 10]);
    assert_eq!(out[0][14 + 12..], sent[14 + 12..]);
    assert_eq!(c.errors_total(), 0);
    c.finish();
}

#[test]
fn vlan_tagged_frames_are_routed_untagged() {
    let mut c = chain(1500);
    let b = PacketBuilder::ethernet2(HOST_MAC.0, RX_MAC.0)
        .single_vlan(etherparse::VlanId::try_new(100).unwrap())
        .ipv4([10, 0, 0, 1], [10, 1, 0, 1], 9)
        .udp(1, 2);
    let mut v = Vec::new();
    b.write(&mut v, &[7; 30]).unwrap();
    c.send(&[v]);
    let out = c.out.lock().unwrap().clone();
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][12..14], &[0x08, 0x00]);
    c.finish();
}

#[test]
fn ethernet_padding_is_trimmed() {
    let mut c = chain(1500);
    let mut v = udp([10, 1, 0, 1], 5, 0);
    let ip_len = v.len() - 14;
    v.resize(60, 0xee);
    c.send(&[v]);
    let out = c.out.lock().unwrap().clone();
    assert_eq!(out[0].len(), 14 + ip_len);
    c.finish();
}

#[test]
fn each_malformation_has_its_counter() {
    let mut c = chain(1000);
    let good = udp([10, 1, 0, 1], 64, 20);
    let mut cases: Vec<(&str, &str, Vec<u8>)> = Vec::new();
    cases.push(("ethernet-input", "too-short", good[..10].to_vec()));
    let mut other_mac = good.clone();
    other_mac[5] = 0x77;
    cases.push(("ethernet-input", "l3-mac-mismatch", other_mac));
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    cases.push(("ethernet-input", "arp-disabled", arp));
    let mut ip6 = good.clone();
    ip6[12..14].copy_from_slice(&[0x86, 0xdd]);
    cases.push(("ethernet-input", "ip6-disabled", ip6));
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
    cases.push(("ip4-input", "ttl-expired", udp([10, 1, 0, 1], 1, 20)));
    cases.push(("ip4-input", "ttl-expired", udp([10, 1, 0, 1], 0, 20)));
    cases.push(("ip4-lookup", "no-route", udp([192, 0, 2, 1], 64, 20)));
    cases.push(("ip4-lookup", "drop-route", udp([10, 1, 9, 200], 64, 20)));
    cases.push(("ip4-rewrite", "mtu-exceeded", udp([10, 1, 0, 1], 64, 1000)));

    for (node, name, bytes) in &cases {
        let before = c.error(node, name);
        c.send(std::slice::from_ref(bytes));
        assert_eq!(c.error(node, name), before + 1, "{node}/{name}");
    }
    assert_eq!(c.errors_total(), cases.len() as u64);
    assert!(c.out.lock().unwrap().is_empty());
    c.finish();
}

#[test]
fn jumbo_frames_route_through_chained_buffers() {
    let mut c = chain(9000);
    let v = udp([10, 1, 0, 1], 64, 8000);
    c.send(std::slice::from_ref(&v));
    let out = c.out.lock().unwrap().clone();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), v.len());
    assert_eq!(out[0][14 + 20..], v[14 + 20..]);
    c.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes behind a valid-looking Ethernet header: never a panic,
    /// every packet either forwarded or counted, every buffer back.
    #[test]
    fn random_packets_are_forwarded_or_counted(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..64),
        mutate in any::<bool>(),
    ) {
        let mut c = chain(1500);
        let frames: Vec<Vec<u8>> = frames.into_iter().map(|mut f| {
            if mutate && f.len() >= 34 {
                // Make many of them plausible IPv4 so the deeper nodes see them.
                f[0..6].copy_from_slice(&RX_MAC.0);
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14] = 0x45;
                f[30] = 10;
                f[31] = 1;
            }
            f
        }).collect();
        let n = frames.len() as u64;
        c.send(&frames);
        let forwarded = c.out.lock().unwrap().len() as u64;
        prop_assert_eq!(forwarded + c.errors_total(), n);
        c.finish();
    }
}
