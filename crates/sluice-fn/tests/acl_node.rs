//! `ip4-acl` and `ip6-acl` in a graph: permitted packets go on, denied
//! ones are dropped under `acl-deny`, a list swapped between vectors takes
//! effect on the next one, and every buffer comes back.

use std::sync::{Arc, Mutex};

use etherparse::PacketBuilder;
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::acl::{Acl, AclNode, Action, Masked, PortRange, REFLECT, Rule, SharedAcl, prefix};
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};
use sluice_wire::MacAddr;

const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x99]);
const MY_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

type Seen = Arc<Mutex<Vec<(Vec<u8>, u32)>>>;

/// Keeps each packet's bytes and flags.
struct Sink(Seen);

impl Node for Sink {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("sink", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut v = self.0.lock().unwrap();
        for p in input.iter() {
            let mut b = Vec::new();
            p.copy_to(&mut b);
            v.push((b, p.meta().flags));
        }
        cx.buffers.free_all(input);
    }
}

struct Net {
    pool: Pool,
    graph: Graph,
    seen: Seen,
}

fn net(acl: &Arc<SharedAcl>) -> Net {
    let pool = Pool::new(&PoolConfig {
        buffers: 1024,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let seen = Seen::default();
    let mut b = GraphBuilder::new();
    b.add(Box::new(AclNode::ip4("ip4-acl", "sink", acl.clone())))
        .unwrap();
    b.add(Box::new(AclNode::ip6("ip6-acl", "sink", acl.clone())))
        .unwrap();
    b.add(Box::new(Sink(seen.clone()))).unwrap();
    let graph = b.build(0, pool.cache(64)).unwrap();
    Net { pool, graph, seen }
}

impl Net {
    /// Sends whole frames to `node` as `ethernet-input` would: data at
    /// the IP header, the L2 header behind it.
    fn send(&mut self, node: &str, frames: &[Vec<u8>]) {
        let mut f = Frame::new();
        for bytes in frames {
            let mut p = self.graph.buffers().alloc_from(bytes).unwrap();
            p.meta_mut().l3_offset = 14;
            p.advance(14).unwrap();
            f.push(p);
        }
        self.graph.inject(node, &mut f).unwrap();
    }

    fn take(&self) -> Vec<(Vec<u8>, u32)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn counter(&self, node: &str, name: &str) -> u64 {
        runtime::error_rows(&[&*self.graph.stats()])
            .iter()
            .find(|e| e.node == node && e.name == name)
            .map_or(0, |e| e.count)
    }

    fn finish(self) {
        let Net { pool, graph, .. } = self;
        drop(graph);
        assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
    }
}

fn tcp4(src_mac: MacAddr, dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac.0, MY_MAC.0)
        .ipv4([10, 0, 0, 1], [10, 9, 0, 1], 64)
        .tcp(40000, dport, 1, 1000)
        .syn();
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 10]).unwrap();
    v
}

fn udp6(dport: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(HOST_MAC.0, MY_MAC.0)
        .ipv6(
            "2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            "2001:db8:9::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            64,
        )
        .udp(5000, dport);
    let mut v = Vec::new();
    b.write(&mut v, &[0u8; 10]).unwrap();
    v
}

fn rules() -> Vec<Rule> {
    vec![
        // SSH is denied, web is let in with its return traffic, DNS over
        // IPv6 from 2001:db8::/32 passes, a MAC is shut out.
        Rule {
            src_mac: Some(MacAddr([2, 0, 0, 0, 0, 0x66])),
            ..Rule::any(Action::Deny)
        },
        Rule {
            dport: PortRange::exactly(22),
            ..Rule::any(Action::Deny)
        },
        Rule {
            dst: prefix("10.9.0.0/16"),
            proto: Some(Masked::exactly(6)),
            dport: PortRange::exactly(80),
            tcp_flags: Some(Masked {
                value: 0x02,
                mask: 0x12,
            }),
            ..Rule::any(Action::PermitReflect)
        },
        Rule {
            src: prefix("2001:db8::/32"),
            proto: Some(Masked::exactly(17)),
            dport: PortRange::exactly(53),
            ..Rule::any(Action::Permit)
        },
    ]
}

#[test]
fn permits_go_on_denials_are_counted_and_reflect_is_marked() {
    let shared = Arc::new(SharedAcl::new(Acl::new(rules(), Action::Deny).unwrap()));
    let mut n = net(&shared);
    let web = tcp4(HOST_MAC, 80);
    n.send(
        "ip4-acl",
        &[
            web.clone(),
            tcp4(HOST_MAC, 22),
            tcp4(HOST_MAC, 443),
            tcp4(MacAddr([2, 0, 0, 0, 0, 0x66]), 80),
        ],
    );
    let out = n.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, web[14..], "the packet goes on untouched");
    assert_eq!(out[0].1 & REFLECT, REFLECT);
    assert_eq!(n.counter("ip4-acl", "acl-deny"), 3);

    n.send("ip6-acl", &[udp6(53), udp6(54)]);
    let out = n.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1 & REFLECT, 0, "a plain permit is not marked");
    assert_eq!(n.counter("ip6-acl", "acl-deny"), 1);
    n.finish();
}

#[test]
fn a_swapped_list_decides_the_next_vector() {
    let shared = Arc::new(SharedAcl::new(Acl::new(rules(), Action::Deny).unwrap()));
    let mut n = net(&shared);
    n.send("ip4-acl", &[tcp4(HOST_MAC, 443)]);
    assert!(n.take().is_empty());
    shared.store(Acl::new(vec![Rule::any(Action::Permit)], Action::Deny).unwrap());
    n.send("ip4-acl", &[tcp4(HOST_MAC, 443), tcp4(HOST_MAC, 22)]);
    assert_eq!(n.take().len(), 2);
    shared.store(Acl::new(vec![], Action::Deny).unwrap());
    n.send("ip4-acl", &[tcp4(HOST_MAC, 443)]);
    assert!(n.take().is_empty(), "an empty list applies its default");
    assert_eq!(n.counter("ip4-acl", "acl-deny"), 2);
    n.finish();
}

#[test]
fn a_first_fragment_too_short_for_its_ports_is_dropped() {
    let shared = Arc::new(SharedAcl::new(
        Acl::new(vec![Rule::any(Action::Permit)], Action::Deny).unwrap(),
    ));
    let mut n = net(&shared);
    // A TCP packet cut to 8 bytes of TCP header: ports, but no flags.
    let mut short = tcp4(HOST_MAC, 80);
    short.truncate(14 + 20 + 8);
    short[14 + 2..14 + 4].copy_from_slice(&28u16.to_be_bytes());
    // Shorter than an IPv4 header.
    let tiny = tcp4(HOST_MAC, 80)[..14 + 12].to_vec();
    n.send("ip4-acl", &[short, tiny, tcp4(HOST_MAC, 80)]);
    assert_eq!(n.take().len(), 1);
    assert_eq!(n.counter("ip4-acl", "truncated-l4"), 1);
    assert_eq!(n.counter("ip4-acl", "truncated-l3"), 1);
    n.finish();
}

#[test]
fn a_full_vector_and_more_is_classified_in_order() {
    // Even destination ports pass; 300 packets in one frame (more than a
    // vector) come out in order.
    let rules = (0..100u16)
        .map(|p| Rule {
            dport: PortRange::exactly(2 * p),
            ..Rule::any(Action::Permit)
        })
        .collect();
    let shared = Arc::new(SharedAcl::new(Acl::new(rules, Action::Deny).unwrap()));
    let mut n = net(&shared);
    let frames: Vec<_> = (0..300u16).map(|i| tcp4(HOST_MAC, i % 200)).collect();
    n.send("ip4-acl", &frames);
    let out = n.take();
    let want: Vec<_> = frames
        .iter()
        .filter(|f| u16::from_be_bytes([f[36], f[37]]) % 2 == 0)
        .map(|f| f[14..].to_vec())
        .collect();
    assert_eq!(out.into_iter().map(|o| o.0).collect::<Vec<_>>(), want);
    assert_eq!(n.counter("ip4-acl", "acl-deny"), 150);
    n.finish();
}
