//! The stateful firewall in CPU cycles per packet, with a million tracked
//! TCP connections.
//!
//! `ip4-conntrack` in a graph (→ a sink that frees), a table of 2^20
//! sessions. First the connections are opened through the node, a vector
//! of 256 at a time: a million SYNs from the inside, the SYN-ACKs from
//! the outside, the third ACKs — each phase timed, so the SYN phase gives
//! the new-connection setup rate. Then established traffic, a vector at a
//! time: each packet a real IPv4/TCP segment (an ACK carrying 0–1400
//! bytes of data, its sequence numbers moving on per connection), half
//! from the inside and half answers from the outside, its connection
//! picked uniformly or with Zipf popularity (s = 1.0, so a few
//! connections are hot and most are cold, as on a real link). Packets
//! are written outside the timed region into fresh buffers, as a NIC
//! would write them, so the node meets them in memory it has not cached.
//!
//! Per vector the node's own TSC clocks (what `show runtime` reads) are
//! divided by the packets; the figures are the median and tenth
//! percentile over the vectors (on a shared machine a vector that loses
//! the core pulls a mean up). The whole-graph cycles per packet (node +
//! dispatch + sink) is printed beside them.
//!
//! `cargo bench -p sluice-fn --bench firewall` (`FW_BENCH_FLOWS`,
//! default 1,000,000; `FW_BENCH_VECTORS`, default 4,000 per mix).

use std::sync::Arc;

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::conntrack::{Clock, ConnTrack, ConnTrackNode, CtConfig, CtStats, Policy};
use sluice_graph::clock::{cycles, hz};
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, GraphStats, Next, Node, NodeSpec};

const INSIDE: u32 = 0;
const OUTSIDE: u32 = 1;
const VECTOR: usize = 256;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sink;

impl Node for Sink {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("sink", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        cx.buffers.free_all(input);
    }
}

/// One connection: inside host:port ↔ outside host:443, and where each
/// side's sequence numbers stand.
#[derive(Clone, Copy)]
struct Conn {
    inside: [u8; 4],
    outside: [u8; 4],
    port: u16,
    seq_in: u32,
    seq_out: u32,
}

fn conn(i: usize) -> Conn {
    let i = i as u32;
    Conn {
        inside: (0x0a00_0000 | (i >> 4)).to_be_bytes(),
        outside: (0xc000_0000 | (i.wrapping_mul(2_654_435_761) >> 12)).to_be_bytes(),
        port: 1024 + (i & 0xf) as u16 * 4000,
        seq_in: i.wrapping_mul(7919),
        seq_out: i.wrapping_mul(104_729),
    }
}

/// Writes an IPv4/TCP segment (data at the IP header).
#[allow(clippy::too_many_arguments)]
fn segment(
    buf: &mut Vec<u8>,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    data: usize,
) {
    buf.clear();
    let total = (40 + data) as u16;
    buf.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    buf[2..4].copy_from_slice(&total.to_be_bytes());
    buf.extend_from_slice(&src);
    buf.extend_from_slice(&dst);
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&ack.to_be_bytes());
    buf.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    buf.resize(40 + data, 0x5a);
}

struct Bench {
    pool: Pool,
    graph: Graph,
    gstats: Arc<GraphStats>,
    ct: Arc<CtStats>,
    node: usize,
    buf: Vec<u8>,
}

impl Bench {
    fn new(capacity: u32) -> Bench {
        let pool = Pool::new(&PoolConfig {
            buffers: 4096,
            huge_pages: HugePages::Try,
            lock: false,
        })
        .expect("pool");
        let t0 = std::time::Instant::now();
        let ct = ConnTrack::new(&CtConfig {
            capacity,
            ..CtConfig::default()
        })
        .expect("table");
        println!(
            "table of {capacity} sessions: {:.0} MiB, made in {:.0} ms",
            ct.memory() as f64 / (1 << 20) as f64,
            t0.elapsed().as_secs_f64() * 1e3
        );
        let policy = Policy {
            trusted: vec![true, false],
            zone: vec![],
        };
        let node = ConnTrackNode::ip4("ip4-conntrack", "sink", ct, policy, Clock::tsc());
        let ct = node.stats();
        let mut b = GraphBuilder::new();
        b.add(Box::new(node)).unwrap();
        b.add(Box::new(Sink)).unwrap();
        let graph = b.build(0, pool.cache(512)).unwrap();
        let gstats = graph.stats();
        let node = graph.node_index("ip4-conntrack").unwrap();
        Bench {
            pool,
            graph,
            gstats,
            ct,
            node,
            buf: Vec::with_capacity(2048),
        }
    }

    /// Runs one vector whose packets `fill` writes; returns (node cycles,
    /// graph cycles) per packet.
    fn vector(&mut self, n: usize, mut fill: impl FnMut(usize, &mut Vec<u8>) -> u32) -> (f64, f64) {
        let mut f = Frame::new();
        for k in 0..n {
            let rx = fill(k, &mut self.buf);
            let mut p = self.graph.buffers().alloc_from(&self.buf).expect("buffers");
            p.meta_mut().rx_if = rx;
            f.push(p);
        }
        let node = &self.gstats.nodes[self.node];
        let c0 = node.clocks.get();
        let t0 = cycles();
        self.graph.inject("ip4-conntrack", &mut f).unwrap();
        let t = cycles() - t0;
        let c = node.clocks.get() - c0;
        (c as f64 / n as f64, t as f64 / n as f64)
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p) as usize]
}

struct Phase {
    name: String,
    node: Vec<f64>,
    graph: Vec<f64>,
}

impl Phase {
    fn new(name: &str) -> Phase {
        Phase {
            name: name.into(),
            node: vec![],
            graph: vec![],
        }
    }
    fn add(&mut self, (n, g): (f64, f64)) {
        self.node.push(n);
        self.graph.push(g);
    }
    fn print(&mut self, hz: f64) {
        let med = percentile(&mut self.node, 0.5);
        let p10 = percentile(&mut self.node, 0.1);
        let mean = self.node.iter().sum::<f64>() / self.node.len() as f64;
        let g = percentile(&mut self.graph, 0.5);
        println!(
            "{:<34} {:>8.0} {:>8.0} {:>8.0} {:>10.0} {:>10.2}",
            self.name,
            med,
            p10,
            mean,
            g,
            hz / med / 1e6
        );
    }
}

/// Zipf(1.0) ranks over `n` items: the cumulative weights, for sampling
/// by binary search.
fn zipf_cdf(n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut v = Vec::with_capacity(n);
    for r in 1..=n {
        acc += 1.0 / r as f64;
        v.push(acc);
    }
    v
}

fn main() {
    let flows = env_or("FW_BENCH_FLOWS", 1_000_000);
    let vectors = env_or("FW_BENCH_VECTORS", 4000);
    let hz = hz();
    let mut b = Bench::new(1 << 20);
    let mut conns: Vec<Conn> = (0..flows).map(conn).collect();
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "phase (cycles/packet)", "median", "p10", "mean", "graph", "Mpps@med"
    );
    // The handshakes, a vector of each kind at a time.
    let mut syn = Phase::new("new: SYN (session setup)");
    let mut synack = Phase::new("new: SYN-ACK");
    let mut third = Phase::new("new: third ACK");
    let t0 = std::time::Instant::now();
    for chunk in (0..flows).collect::<Vec<_>>().chunks(VECTOR) {
        let cs: Vec<Conn> = chunk.iter().map(|&i| conns[i]).collect();
        syn.add(b.vector(cs.len(), |k, buf| {
            let c = &cs[k];
            segment(buf, c.inside, c.outside, c.port, 443, c.seq_in, 0, 0x02, 0);
            INSIDE
        }));
        synack.add(b.vector(cs.len(), |k, buf| {
            let c = &cs[k];
            segment(
                buf,
                c.outside,
                c.inside,
                443,
                c.port,
                c.seq_out,
                c.seq_in + 1,
                0x12,
                0,
            );
            OUTSIDE
        }));
        third.add(b.vector(cs.len(), |k, buf| {
            let c = &cs[k];
            segment(
                buf,
                c.inside,
                c.outside,
                c.port,
                443,
                c.seq_in + 1,
                c.seq_out + 1,
                0x10,
                0,
            );
            INSIDE
        }));
    }
    for &i in &(0..flows).collect::<Vec<_>>() {
        conns[i].seq_in += 1;
        conns[i].seq_out += 1;
    }
    let setup = t0.elapsed().as_secs_f64();
    let s = b.ct.total.snapshot();
    assert_eq!(
        s.sessions as usize, flows,
        "not every connection was made: {s:?}"
    );
    syn.print(hz);
    synack.print(hz);
    third.print(hz);
    println!(
        "  {} connections opened (3 packets each, packet writing included) in {:.2} s",
        flows, setup
    );
    let zipf = zipf_cdf(flows);
    let total = *zipf.last().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for (name, zipfian) in [
        ("established, uniform over 1M", false),
        ("established, Zipf(1.0) over 1M", true),
    ] {
        let mut ph = Phase::new(name);
        for _ in 0..vectors {
            let picks: Vec<(usize, bool, usize)> = (0..VECTOR)
                .map(|_| {
                    let r = next();
                    let i = if zipfian {
                        let x = (r >> 11) as f64 / (1u64 << 53) as f64 * total;
                        zipf.partition_point(|&c| c < x).min(flows - 1)
                    } else {
                        (r % flows as u64) as usize
                    };
                    // IMIX-like payloads: 0 (pure ACK), 512, 1400.
                    let data = [0, 0, 0, 0, 0, 0, 0, 512, 512, 512, 1400][(r >> 40) as usize % 11];
                    (i, r & (1 << 50) != 0, data)
                })
                .collect();
            ph.add(b.vector(VECTOR, |k, buf| {
                let (i, from_in, data) = picks[k];
                let c = &mut conns[i];
                if from_in {
                    segment(
                        buf, c.inside, c.outside, c.port, 443, c.seq_in, c.seq_out, 0x18, data,
                    );
                    c.seq_in = c.seq_in.wrapping_add(data as u32);
                    INSIDE
                } else {
                    segment(
                        buf, c.outside, c.inside, 443, c.port, c.seq_out, c.seq_in, 0x18, data,
                    );
                    c.seq_out = c.seq_out.wrapping_add(data as u32);
                    OUTSIDE
                }
            }));
        }
        ph.print(hz);
    }
    let drops = sluice_graph::runtime::error_rows(&[&*b.gstats])
        .iter()
        .filter(|e| e.count > 0)
        .map(|e| format!("{} {}", e.name, e.count))
        .collect::<Vec<_>>();
    println!(
        "sessions {}, dropped: {}; TSC {:.2} GHz",
        b.ct.total.snapshot().sessions,
        if drops.is_empty() {
            "none".into()
        } else {
            drops.join(", ")
        },
        hz / 1e9
    );
    let Bench { pool, graph, .. } = b;
    drop(graph);
    assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
}
