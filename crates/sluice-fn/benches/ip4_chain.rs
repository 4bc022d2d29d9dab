//! The IPv4 chain in CPU cycles per packet, on generated traffic.
//!
//! `ethernet-input → ip4-input → ip4-lookup → ip4-rewrite → sinkN-output`
//! runs on vectors of IMIX packets from the packet generator (10,000 UDP
//! flows, every header written, checksums valid): each node reads and
//! writes real headers — the L2 header is stripped and rewritten, the TTL
//! decremented with an incremental checksum update. Fresh packets are made
//! outside the timed region for every vector, a receive ring (1024
//! packets) at a time, so the chain meets them in memory as it would meet
//! packets a NIC wrote, not in L1.
//!
//! Groups:
//! - `chain/N`: the whole graph run for one vector of N packets
//!   (N = 1, 16, 64, 256: the curve that shows what vectors buy);
//! - `null-graph/N`: the same number of nodes that only pass the vector on,
//!   the last handing it back for the next round: what the graph itself
//!   costs per vector (dispatch, arcs, stats), with no packet touched.
//!
//! The unit is TSC cycles, reported per packet (Criterion's throughput line,
//! "cycles/pkt"). After the runs, the per-node figures of `show runtime` for
//! the 256-packet chain are printed, with the share of the time spent
//! outside nodes (dispatch and stats).
//!
//! `cargo bench -p sluice-fn --bench ip4_chain`

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_fn::{Fib, FibConfig, IfAddrs, Path, Prefix, Route, Router};
use sluice_graph::clock::cycles;
use sluice_graph::iface::{IfStats, Interfaces};
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};
use sluice_io::pg::{Ipv4Range, L4, PacketGenerator, PacketSize, PortRange, StreamSpec};
use sluice_io::sink::Sink;
use sluice_io::{Driver, InterfaceOutput};
use sluice_wire::MacAddr;

#[path = "cycles.rs"]
mod cycles;

use cycles::Cycles;

/// Packets made ahead of a timed batch: a 1024-descriptor receive ring.
const RING: u64 = 1024;

const PG_MAC: MacAddr = MacAddr([2, 0x5c, 0, 0, 0, 1]);

fn interfaces() -> Arc<Interfaces> {
    let mut i = Interfaces::new();
    i.add("pg0", "pg", PG_MAC, 1500, None);
    i.add(
        "sink0",
        "sink",
        MacAddr([2, 0x5c, 0, 0, 1, 1]),
        1500,
        Some("sink0-output".into()),
    );
    i.add(
        "sink1",
        "sink",
        MacAddr([2, 0x5c, 0, 0, 2, 1]),
        1500,
        Some("sink1-output".into()),
    );
    Arc::new(i)
}

fn traffic() -> PacketGenerator {
    PacketGenerator::new(vec![StreamSpec {
        name: "bench".into(),
        count: None,
        rate_pps: None,
        size: PacketSize::Imix,
        src_mac: MacAddr([2, 0xfe, 0, 0, 0, 1]),
        dst_mac: PG_MAC,
        vlan: None,
        src_ip: Ipv4Range {
            first: Ipv4Addr::new(10, 0, 0, 0),
            count: 65536,
        },
        dst_ip: Ipv4Range {
            first: Ipv4Addr::new(10, 1, 0, 0),
            count: 2 << 16,
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

fn chain(pool: &Pool) -> Graph {
    let ifs = interfaces();
    let via = |k| MacAddr([2, 0, 0, 0, k, 0xfe]);
    let route = |a: [u8; 4], len, k: u32| Route {
        table: 0,
        prefix: Prefix::V4(Ipv4Addr::from(a), len),
        paths: vec![Path::Via {
            interface: k,
            addr: None,
            mac: Some(via(k as u8)),
        }],
    };
    let fib = Arc::new(Fib::new(FibConfig::default(), ifs.clone()).unwrap());
    for r in [
        route([10, 1, 0, 0], 16, 1),
        route([10, 2, 0, 0], 16, 2),
        route([10, 2, 128, 0], 17, 1),
        route([10, 1, 77, 0], 24, 2),
        route([10, 1, 77, 128], 25, 1),
    ] {
        fib.add(&r).unwrap();
    }
    let router = Router::new(fib, Arc::new(IfAddrs::new(ifs.len()))).unwrap();
    let stats = IfStats::new(1, ifs.len());
    let mut b = GraphBuilder::new();
    for n in router.nodes() {
        b.add(n).unwrap();
    }
    for k in 1..3 {
        let name = format!("sink{}", k - 1);
        b.add(Box::new(InterfaceOutput::new(
            &name,
            k,
            Sink::new(),
            stats.worker(0),
        )))
        .unwrap();
    }
    b.build(0, pool.cache(256)).unwrap()
}

/// A node that passes its whole vector on, or, at the end, parks it where
/// the benchmark takes it back: the same packets go round again untouched,
/// so what is timed is the graph alone (dispatch, arcs, stats).
struct Pass {
    name: String,
    next: Option<String>,
    park: Arc<Mutex<Frame>>,
}

impl Node for Pass {
    fn spec(&self) -> NodeSpec {
        let next: Vec<&str> = self.next.iter().map(String::as_str).collect();
        NodeSpec::internal(self.name.clone(), &next, &[])
    }
    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        match self.next {
            Some(_) => out.send_all(0, input),
            None => self.park.lock().unwrap().append(input),
        }
    }
}

/// As many nodes as the chain (four, plus the output), doing nothing.
fn null_graph(pool: &Pool, park: &Arc<Mutex<Frame>>) -> Graph {
    let names = ["ethernet-input", "n1", "n2", "n3", "out"];
    let mut b = GraphBuilder::new();
    for (k, n) in names.iter().enumerate() {
        b.add(Box::new(Pass {
            name: n.to_string(),
            next: names.get(k + 1).map(|s| s.to_string()),
            park: park.clone(),
        }))
        .unwrap();
    }
    b.build(0, pool.cache(256)).unwrap()
}

fn vector(pg: &mut PacketGenerator, cache: &mut BufCache, n: usize) -> Frame {
    let mut f = Frame::new();
    while f.len() < n {
        let want = n - f.len();
        pg.rx_burst(cache, &mut f, want);
        assert!(!f.is_empty() || want == 0, "buffer pool exhausted");
    }
    f
}

fn bench(c: &mut Criterion<Cycles>) {
    let pool = Pool::new(&PoolConfig {
        buffers: 1 << 16,
        huge_pages: HugePages::Try,
        lock: false,
    })
    .unwrap();
    let mut gen_cache = pool.cache(256);
    let mut pg = traffic();

    let mut g = c.benchmark_group("chain");
    for n in [1usize, 16, 64, 256] {
        let mut graph = chain(&pool);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(n.to_string(), |b| {
            b.iter_batched(
                || vector(&mut pg, &mut gen_cache, n),
                |mut f| graph.inject("ethernet-input", &mut f).unwrap(),
                // Fresh vectors are made a batch at a time before it is
                // timed: 1024 packets, what a receive ring of the usual
                // 1024 descriptors (VPP's and DPDK's default) holds.
                BatchSize::NumIterations((RING / n as u64).max(1)),
            )
        });
        if n == 256 {
            report_nodes(&mut graph, &mut pg, &mut gen_cache);
        }
    }
    g.finish();

    let mut g = c.benchmark_group("null-graph");
    for n in [1usize, 16, 64, 256] {
        let park = Arc::new(Mutex::new(vector(&mut pg, &mut gen_cache, n)));
        let mut graph = null_graph(&pool, &park);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(n.to_string(), |b| {
            b.iter(|| {
                let mut f = std::mem::take(&mut *park.lock().unwrap());
                graph.inject("ethernet-input", &mut f).unwrap();
            })
        });
        let mut f = std::mem::take(&mut *park.lock().unwrap());
        gen_cache.free_all(&mut f);
    }
    g.finish();
}

/// Runs the 256-packet chain a while longer with fresh counters and prints
/// the runtime table and the share of time outside the nodes, three times:
/// with each vector made just before it is forwarded (warm in L1), with a
/// receive ring's worth made ahead as the Criterion runs do, and with 32
/// vectors (8192 packets, several MiB) made ahead, beyond the L2 cache.
fn report_nodes(graph: &mut Graph, pg: &mut PacketGenerator, cache: &mut BufCache) {
    let ring = RING as usize / 256;
    for (label, ahead) in [("warm", 1), ("ring", ring), ("cold", 32)] {
        let stats = graph.stats();
        stats.clear();
        let mut total = 0u64;
        let mut packets = 0u64;
        for _ in 0..20_000 / ahead {
            let mut vectors: Vec<Frame> = (0..ahead).map(|_| vector(pg, cache, 256)).collect();
            for f in &mut vectors {
                packets += f.len() as u64;
                let t0 = cycles();
                graph.inject("ethernet-input", f).unwrap();
                total += cycles() - t0;
            }
        }
        let rows = runtime::rows(&[&*stats]);
        let in_nodes: u64 = rows.iter().map(|r| r.clocks_total).sum();
        let chain4: f64 = rows
            .iter()
            .filter(|r| {
                ["ethernet-input", "ip4-input", "ip4-lookup", "ip4-rewrite"]
                    .contains(&r.name.as_str())
            })
            .map(|r| r.clocks_total as f64)
            .sum::<f64>()
            / packets as f64;
        eprintln!(
            "\n{label} packets:\n{}",
            runtime::show_runtime(&[&*stats], 0.0, &[None])
        );
        eprintln!(
            "chain at 256, {label}: {:.1} cycles/pkt in total, {:.1} in ethernet-input..ip4-rewrite, \
             {:.1} ({:.1} %) outside the nodes (dispatch, stats)\n",
            total as f64 / packets as f64,
            chain4,
            (total - in_nodes) as f64 / packets as f64,
            (total - in_nodes) as f64 * 100.0 / total as f64
        );
    }
}

fn config() -> Criterion<Cycles> {
    Criterion::default()
        .with_measurement(Cycles)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = bench }
criterion_main!(benches);
