//! `ip4-acl-in` on a feature arc: one vector mixing interfaces is judged
//! run by run, each packet by its own interface's list; a packet of an
//! interface the node holds no list for is dropped by name; a list
//! swapped between vectors judges the next one; no buffer is lost.

use std::sync::{Arc, Mutex};

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::Acl;
use sluice_fn::acl::{AclNode, Action, PortRange, Rule, SharedAcl};
use sluice_graph::{Cx, FeatureArc, Frame, GraphBuilder, Next, Node, NodeSpec, Onward, runtime};

/// Stands for `ip4-lookup`: records (interface, destination port).
struct Lookup(Arc<Mutex<Vec<(u32, u16)>>>);

impl Node for Lookup {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("ip4-lookup", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut seen = self.0.lock().unwrap();
        for p in input.drain(..) {
            let d = p.data();
            seen.push((p.meta().rx_if, u16::from_be_bytes([d[22], d[23]])));
            cx.buffers.free(p);
        }
    }
}

/// An IPv4/TCP packet to port `dport`, received on `rx_if`.
fn packet(cache: &mut sluice_buf::BufCache, rx_if: u32, dport: u16) -> sluice_buf::Packet {
    let mut b = [0u8; 40];
    b[0] = 0x45;
    b[2..4].copy_from_slice(&40u16.to_be_bytes());
    b[8] = 64;
    b[9] = 6;
    b[12..16].copy_from_slice(&[10, 0, 0, 1]);
    b[16..20].copy_from_slice(&[10, 9, 0, 1]);
    b[20..22].copy_from_slice(&1234u16.to_be_bytes());
    b[22..24].copy_from_slice(&dport.to_be_bytes());
    b[32] = 0x50;
    let mut p = cache.alloc_from(&b).unwrap();
    p.meta_mut().rx_if = rx_if;
    p
}

fn deny_port(port: u16) -> Acl {
    let rule = Rule {
        dport: PortRange::exactly(port),
        ..Rule::any(Action::Deny)
    };
    Acl::new(vec![rule], Action::Permit).unwrap()
}

#[test]
fn each_packet_is_judged_by_its_interfaces_list() {
    let pool = Pool::new(&PoolConfig {
        buffers: 1024,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let free = pool.free_count();
    let arc = FeatureArc::receive("ip4-unicast", &["ip4-acl-in"], "ip4-lookup", 3).unwrap();
    for i in 0..3 {
        arc.enable(i, "ip4-acl-in").unwrap();
    }
    // Lists for interfaces 0 and 1 only: 0 denies port 22, 1 port 80.
    let lists: Arc<[Arc<SharedAcl>]> = vec![
        Arc::new(SharedAcl::new(deny_port(22))),
        Arc::new(SharedAcl::new(deny_port(80))),
    ]
    .into();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut b = GraphBuilder::new();
    b.add(Box::new(AclNode::<u32>::on_arc(
        "ip4-acl-in",
        Onward::after(&arc, "ip4-acl-in").unwrap(),
        lists.clone(),
    )))
    .unwrap();
    b.add(Box::new(Lookup(seen.clone()))).unwrap();
    let mut g = b.build(0, pool.cache(64)).unwrap();

    let mut cache = pool.cache(64);
    let sent = [
        (0, 22),
        (0, 80),
        (1, 22),
        (1, 80),
        (1, 80),
        (0, 22),
        (2, 80),
        (0, 443),
    ];
    let mut f: Frame = sent
        .iter()
        .map(|&(i, p)| packet(&mut cache, i, p))
        .collect::<Vec<_>>()
        .into();
    g.inject("ip4-acl-in", &mut f).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(0, 80), (1, 22), (0, 443)],
        "in order, each by its own list"
    );
    let stats = g.stats();
    let errors = runtime::error_rows(&[&stats]);
    let count = |name: &str| {
        errors
            .iter()
            .find(|e| e.name == name)
            .map_or(0, |e| e.count)
    };
    assert_eq!(count("acl-deny"), 4);
    assert_eq!(count("no-list"), 1, "interface 2 has no list");

    // Interface 0's list swapped: port 443 denied now, 22 let through.
    lists[0].store(deny_port(443));
    seen.lock().unwrap().clear();
    let mut f: Frame = vec![packet(&mut cache, 0, 22), packet(&mut cache, 0, 443)].into();
    g.inject("ip4-acl-in", &mut f).unwrap();
    assert_eq!(*seen.lock().unwrap(), [(0, 22)]);

    drop(g);
    drop(cache);
    assert_eq!(pool.free_count(), free, "a buffer leaked");
}
