//! The L2 bridge in CPU cycles per packet.
//!
//! A bridge of four ports (sink interfaces) with learning on and 10,000
//! MACs already learned, 2,500 behind each port, in a MAC table of 16,384
//! entries (`L2_BENCH_CAPACITY=65536` for a larger one). Every frame comes in on
//! the port its source MAC is behind and goes to a random MAC behind
//! another port, in IMIX sizes (60:590:1514, 7:4:1), with real Ethernet,
//! IPv4 and UDP headers. Per packet, `l2-input` reads the Ethernet header,
//! checks the source against the MAC table (the learning check: refreshes
//! its time when the one-second tick has changed), looks the destination
//! up and hands the frame to the port's output node, which reads the
//! header again as a transmit would. Fresh frames are written outside the
//! timed region, a receive ring (1024 packets) ahead of each timed batch,
//! so the bridge meets them in memory as it would meet frames a NIC wrote.
//!
//! Groups:
//! - `bridge/N`: the whole graph for one vector of N frames (N = 1, 16, 64,
//!   256): l2-input, the sink outputs, dispatch;
//! - `bridge-vtr/256`: the same with a VLAN translation on every port
//!   (rewritten in `l2-input`, and back in `l2-output`: one more node);
//! - `xconnect/256`: a cross-connected port pair, for comparison with
//!   VPP's L2 xconnect figure.
//!
//! The unit is TSC cycles, reported per packet (Criterion's throughput
//! line, "cycles/pkt"). After the runs, `show runtime` of the 256-packet
//! bridge is printed for frames made just before (warm), a ring ahead (as
//! the Criterion runs) and 32 vectors ahead (beyond L2), with the median
//! and tenth percentile of `l2-input`'s cycles per packet over the vectors:
//! on a shared machine a few vectors that lose the core pull the mean up,
//! and the percentiles say what the node costs when it runs undisturbed.
//!
//! `cargo bench -p sluice-fn --bench l2_bridge`

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_fn::l2::{self, table::mac_u64};
use sluice_fn::{BridgeDomain, BridgePort, L2Config, L2State, VlanRewrite, XConnect};
use sluice_graph::clock::cycles;
use sluice_graph::iface::{IfStats, Interfaces};
use sluice_graph::{Frame, Graph, GraphBuilder, runtime};
use sluice_io::InterfaceOutput;
use sluice_io::sink::Sink;
use sluice_wire::MacAddr;

#[path = "cycles.rs"]
mod cycles;

use cycles::Cycles;

/// Packets made ahead of a timed batch: a 1024-descriptor receive ring.
const RING: u64 = 1024;
const PORTS: u32 = 4;
const MACS: usize = 10_000;
/// The bridge's MAC table capacity: room for the 10,000 hosts and growth.
/// `L2_BENCH_CAPACITY` sets another (the table's memory, and so how much
/// of it stays in cache, grows with it).
fn capacity() -> u32 {
    std::env::var("L2_BENCH_CAPACITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_384)
}

fn interfaces() -> Arc<Interfaces> {
    let mut i = Interfaces::new();
    for k in 0..PORTS {
        i.add(
            &format!("sink{k}"),
            "sink",
            MacAddr([2, 0x5c, 0, 0, k as u8, 1]),
            1500,
            Some(format!("sink{k}-output")),
        );
    }
    Arc::new(i)
}

/// The MAC of host `h`, behind port `h % PORTS`.
fn host(h: usize) -> [u8; 6] {
    let b = (h as u32 * 2_654_435_761).to_be_bytes();
    [2, 0x10, b[0], b[1], b[2], b[3]]
}

/// Frames of random hosts to random hosts behind other ports.
struct Traffic {
    templates: Vec<Vec<u8>>,
    rng: u64,
}

impl Traffic {
    fn new(tag: Option<u16>) -> Traffic {
        let templates = [60usize, 590, 1514]
            .iter()
            .map(|&len| {
                let mut v = Vec::new();
                let b = PacketBuilder::ethernet2([0; 6], [0; 6]);
                let payload = vec![0x5a; len - 14 - 20 - 8 - if tag.is_some() { 4 } else { 0 }];
                match tag {
                    Some(vid) => b
                        .single_vlan(etherparse::VlanId::try_new(vid).unwrap())
                        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                        .udp(1024, 80)
                        .write(&mut v, &payload),
                    None => b
                        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                        .udp(1024, 80)
                        .write(&mut v, &payload),
                }
                .unwrap();
                assert_eq!(v.len(), len);
                v
            })
            .collect();
        Traffic {
            templates,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn vector(&mut self, cache: &mut BufCache, n: usize) -> Frame {
        let mut f = Frame::new();
        for _ in 0..n {
            let r = self.next();
            let src = (r % MACS as u64) as usize;
            let mut dst = ((r >> 20) % MACS as u64) as usize;
            if dst % PORTS as usize == src % PORTS as usize {
                dst = (dst + 1) % MACS;
            }
            // IMIX: 7 small, 4 medium, 1 large in 12.
            let t = match (r >> 40) % 12 {
                0..=6 => 0,
                7..=10 => 1,
                _ => 2,
            };
            let tpl = &self.templates[t];
            let mut p = cache.alloc().expect("buffer pool exhausted");
            let room = p.room_mut();
            room[..tpl.len()].copy_from_slice(tpl);
            room[0..6].copy_from_slice(&host(dst));
            room[6..12].copy_from_slice(&host(src));
            p.set_len(tpl.len()).unwrap();
            p.meta_mut().rx_if = (src % PORTS as usize) as u32;
            f.push(p);
        }
        f
    }
}

fn graph(pool: &Pool, vlan: VlanRewrite, xconnect: bool) -> (Graph, Arc<L2State>) {
    let ifs = interfaces();
    let (bridges, xcs) = if xconnect {
        let xc = |from, to| XConnect { from, to, vlan };
        (vec![], vec![xc(0, 1), xc(1, 0), xc(2, 3), xc(3, 2)])
    } else {
        let bd = BridgeDomain {
            ports: (0..PORTS)
                .map(|i| BridgePort {
                    vlan,
                    ..BridgePort::new(i)
                })
                .collect(),
            mac_capacity: capacity(),
            ..BridgeDomain::new(1)
        };
        (vec![bd], vec![])
    };
    let config = L2Config::new(bridges, xcs, ifs.clone()).unwrap();
    let state = L2State::new(config).unwrap();
    if let Some(table) = state.table(1) {
        let tick = state.tick(cycles());
        for h in 0..MACS {
            table.learn(mac_u64(&host(h)), (h % PORTS as usize) as u16, tick);
        }
        assert_eq!(table.len(), MACS);
    }
    let stats = IfStats::new(1, ifs.len());
    let mut b = GraphBuilder::new();
    for n in l2::nodes(&state) {
        b.add(n).unwrap();
    }
    for i in ifs.iter() {
        b.add(Box::new(InterfaceOutput::new(
            &i.name,
            i.index,
            Sink::new(),
            stats.worker(0),
        )))
        .unwrap();
    }
    (b.build(0, pool.cache(256)).unwrap(), state)
}

fn bench(c: &mut Criterion<Cycles>) {
    let pool = Pool::new(&PoolConfig {
        buffers: 1 << 16,
        huge_pages: HugePages::Try,
        lock: false,
    })
    .unwrap();
    let mut gen_cache = pool.cache(256);
    let mut traffic = Traffic::new(None);
    sluice_graph::clock::hz();

    let mut g = c.benchmark_group("bridge");
    for n in [1usize, 16, 64, 256] {
        let (mut graph, state) = graph(&pool, VlanRewrite::None, false);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(n.to_string(), |b| {
            b.iter_batched(
                || traffic.vector(&mut gen_cache, n),
                |mut f| graph.inject(l2::INPUT, &mut f).unwrap(),
                BatchSize::NumIterations((RING / n as u64).max(1)),
            )
        });
        assert_clean(&graph, &state);
        if n == 256 {
            report_nodes(&mut graph, &mut traffic, &mut gen_cache);
        }
    }
    g.finish();

    let mut tagged = Traffic::new(Some(100));
    let vtr = VlanRewrite::Translate1To1 {
        wire: 100,
        bridge: 200,
    };
    for (group, xconnect, vlan) in [
        ("bridge-vtr", false, vtr),
        ("xconnect", true, VlanRewrite::None),
    ] {
        let mut g = c.benchmark_group(group);
        let (mut graph, state) = graph(&pool, vlan, xconnect);
        let traffic = if vlan == VlanRewrite::None {
            &mut traffic
        } else {
            &mut tagged
        };
        g.throughput(Throughput::Elements(256));
        g.bench_function("256", |b| {
            b.iter_batched(
                || traffic.vector(&mut gen_cache, 256),
                |mut f| graph.inject(l2::INPUT, &mut f).unwrap(),
                BatchSize::NumIterations(RING / 256),
            )
        });
        assert_clean(&graph, &state);
        g.finish();
    }
}

/// Nothing dropped, nothing flooded, nothing learned anew: the benchmark
/// measured the path it says it measures.
fn assert_clean(graph: &Graph, state: &L2State) {
    let s = graph.stats();
    let errors = runtime::error_rows(&[&*s]);
    assert!(errors.is_empty(), "{errors:?}");
    let rows = runtime::rows(&[&*s]);
    assert!(!rows.iter().any(|r| r.name == l2::FLOOD), "flooded");
    if let Some(t) = state.table(1) {
        assert_eq!(t.len(), MACS);
    }
}

/// `l2-input`'s clocks so far.
fn input_clocks(stats: &sluice_graph::GraphStats) -> u64 {
    runtime::rows(&[stats])
        .iter()
        .filter(|r| r.name == l2::INPUT)
        .map(|r| r.clocks_total)
        .sum()
}

/// Runs the 256-packet bridge a while longer with fresh counters and
/// prints the runtime table and the share of time outside the nodes.
fn report_nodes(graph: &mut Graph, traffic: &mut Traffic, cache: &mut BufCache) {
    let ring = RING as usize / 256;
    for (label, ahead) in [("warm", 1), ("ring", ring), ("cold", 32)] {
        let stats = graph.stats();
        stats.clear();
        let mut total = 0u64;
        let mut packets = 0u64;
        let mut per_vector = Vec::with_capacity(20_000);
        let mut input_before = input_clocks(&stats);
        for _ in 0..20_000 / ahead {
            let mut vectors: Vec<Frame> = (0..ahead).map(|_| traffic.vector(cache, 256)).collect();
            for f in &mut vectors {
                let n = f.len() as u64;
                packets += n;
                let t0 = cycles();
                graph.inject(l2::INPUT, f).unwrap();
                total += cycles() - t0;
                let input_now = input_clocks(&stats);
                per_vector.push((input_now - input_before) as f64 / n as f64);
                input_before = input_now;
            }
        }
        per_vector.sort_by(f64::total_cmp);
        let pct = |p: f64| per_vector[(per_vector.len() as f64 * p) as usize];
        let rows = runtime::rows(&[&*stats]);
        let in_nodes: u64 = rows.iter().map(|r| r.clocks_total).sum();
        let input: f64 = rows
            .iter()
            .filter(|r| r.name == l2::INPUT)
            .map(|r| r.clocks_total as f64)
            .sum::<f64>()
            / packets as f64;
        eprintln!(
            "\n{label} packets:\n{}",
            runtime::show_runtime(&[&*stats], 0.0, &[None])
        );
        eprintln!(
            "bridge at 256, {label}: {:.1} cycles/pkt in total, {:.1} in l2-input \
             (per vector: median {:.1}, p10 {:.1}), {:.1} ({:.1} %) outside the nodes \
             (dispatch, stats)\n",
            total as f64 / packets as f64,
            input,
            pct(0.5),
            pct(0.1),
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
