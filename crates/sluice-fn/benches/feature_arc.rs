//! What a feature arc costs where it starts, in cycles per packet of
//! `ip4-input`, four ways side by side in one process:
//!
//! - `no arc`: `ip4-input` as it was before arcs (straight to the lookup);
//! - `bare arc`: on an arc with no features at all;
//! - `arc, none enabled`: on an arc declaring two features, neither
//!   enabled on any interface (what `sluice run` builds when no interface
//!   has an ACL or a firewall);
//! - `arc, 1 enabled`: one no-op feature enabled on the receiving
//!   interface (the price of one more node on the path).
//!
//! Each variant owns a vector of 256 IPv4/UDP IMIX packets (checksums
//! valid, Ethernet header stripped) that goes round through its graph
//! and back; the variants take turns vector by vector, so load from
//! other processes falls on all of them alike. Printed: the median and
//! 10th percentile of cycles per packet over all rounds, graph dispatch
//! included (the same in every variant).
//!
//! `cargo bench -p sluice-fn --bench feature_arc`

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::ip4::Ip4Input;
use sluice_graph::clock::cycles;
use sluice_graph::{Cx, FeatureArc, Frame, GraphBuilder, Next, Node, NodeSpec, Onward};
use sluice_io::Driver;
use sluice_io::pg::{Ipv4Range, L4, PacketGenerator, PacketSize, PortRange, StreamSpec};
use sluice_wire::MacAddr;

const VECTOR: usize = 256;
const ROUNDS: usize = 40_000;

fn traffic() -> PacketGenerator {
    PacketGenerator::new(vec![StreamSpec {
        name: "bench".into(),
        count: None,
        rate_pps: None,
        size: PacketSize::Imix,
        src_mac: MacAddr([2, 0xfe, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0x5c, 0, 0, 0, 1]),
        vlan: None,
        src_ip: Ipv4Range {
            first: Ipv4Addr::new(10, 0, 0, 0),
            count: 65536,
        },
        dst_ip: Ipv4Range {
            first: Ipv4Addr::new(10, 1, 0, 0),
            count: 1 << 16,
        },
        l4: L4::Udp,
        src_port: PortRange {
            first: 1024,
            count: 64512,
        },
        dst_port: PortRange {
            first: 1,
            count: 1024,
        },
        flows: 10_000,
        ttl: 64,
        seed: 42,
    }])
}

/// Stands for `ip4-lookup`: parks the vector for the next round.
struct Park(Arc<Mutex<Frame>>);

impl Node for Park {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("ip4-lookup", &[], &[])
    }
    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        self.0.lock().unwrap().append(input);
    }
}

/// A feature that does nothing but go on along its arc.
struct Noop {
    name: &'static str,
    onward: Onward,
}

impl Node for Noop {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            next: self.onward.names(),
            ..NodeSpec::internal(self.name, &[], &[])
        }
    }
    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let route = self.onward.load();
        for p in input.drain(..) {
            let n = route.next(p.meta());
            out.send(n, p);
        }
    }
}

struct Variant {
    name: &'static str,
    graph: sluice_graph::Graph,
    park: Arc<Mutex<Frame>>,
    samples: Vec<u64>,
}

fn variant(
    name: &'static str,
    pool: &Pool,
    pg: &mut PacketGenerator,
    arc: Option<(&[&'static str], bool)>,
) -> Variant {
    let park = Arc::new(Mutex::new(Frame::new()));
    let mut b = GraphBuilder::new();
    b.add(Box::new(Park(park.clone()))).unwrap();
    match arc {
        None => {
            b.add(Box::new(Ip4Input::new())).unwrap();
        }
        Some((features, enable)) => {
            let arc = FeatureArc::receive("ip4-unicast", features, "ip4-lookup", 1).unwrap();
            for f in features {
                b.add(Box::new(Noop {
                    name: f,
                    onward: Onward::after(&arc, f).unwrap(),
                }))
                .unwrap();
            }
            if enable {
                arc.enable(0, features[0]).unwrap();
            }
            b.add(Box::new(Ip4Input::on_arc(arc))).unwrap();
        }
    }
    let mut graph = b.build(0, pool.cache(VECTOR)).unwrap();
    let mut f = Frame::new();
    while f.len() < VECTOR {
        let want = VECTOR - f.len();
        pg.rx_burst(graph.buffers(), &mut f, want);
    }
    for p in f.iter_mut() {
        p.advance(14).unwrap();
    }
    *park.lock().unwrap() = f;
    Variant {
        name,
        graph,
        park,
        samples: Vec::with_capacity(ROUNDS),
    }
}

fn main() {
    let pool = Pool::new(&PoolConfig {
        buffers: 1 << 14,
        huge_pages: HugePages::Try,
        lock: false,
    })
    .unwrap();
    let mut pg = traffic();
    let two: &[&'static str] = &["ip4-acl-in", "ip4-conntrack"];
    let mut variants = vec![
        variant("no arc", &pool, &mut pg, None),
        variant("bare arc", &pool, &mut pg, Some((&[], false))),
        variant("arc, none enabled", &pool, &mut pg, Some((two, false))),
        variant("arc, 1 enabled", &pool, &mut pg, Some((two, true))),
    ];
    for round in 0..ROUNDS + 1000 {
        for v in &mut variants {
            let mut f = std::mem::take(&mut *v.park.lock().unwrap());
            let t0 = cycles();
            v.graph.inject("ip4-input", &mut f).unwrap();
            let t1 = cycles();
            // The first rounds warm caches and branch predictors.
            if round >= 1000 {
                v.samples.push(t1 - t0);
            }
            assert_eq!(
                v.park.lock().unwrap().len(),
                VECTOR,
                "{} lost packets",
                v.name
            );
        }
    }
    println!(
        "ip4-input at the start of ip4-unicast, {VECTOR}-packet vectors, {ROUNDS} rounds each, interleaved"
    );
    println!(
        "{:<20}{:>16}{:>16}",
        "variant", "median cyc/pkt", "p10 cyc/pkt"
    );
    for v in &mut variants {
        v.samples.sort_unstable();
        let at =
            |q: f64| v.samples[(q * (v.samples.len() - 1) as f64) as usize] as f64 / VECTOR as f64;
        // The mean without the slowest 1 % (preemptions by other load).
        let kept = &v.samples[..v.samples.len() * 99 / 100];
        let mean = kept.iter().sum::<u64>() as f64 / kept.len() as f64 / VECTOR as f64;
        println!(
            "{:<20}{:>16.2}{:>16.2}{:>16.2}",
            v.name,
            at(0.5),
            at(0.1),
            mean
        );
    }
    for v in &mut variants {
        let mut f = std::mem::take(&mut *v.park.lock().unwrap());
        v.graph.buffers().free_all(&mut f);
    }
}
