//! The whole routing path at scale, in cycles per packet per node: a
//! 1M-route IPv4 table and a 500k-route IPv6 table (dpdk-test-fib's files,
//! a BGP-like prefix-length mix), packets to dpdk-test-fib's lookup
//! addresses (half inside routes, half random), through
//! `ethernet-input → ipN-input → ipN-lookup → ipN-rewrite → sinkN-output`.
//!
//! Each packet is a real frame (Ethernet, a valid IPv4/IPv6 header, UDP)
//! made outside the timed region, a ring (1024 packets) ahead, so that the
//! nodes meet it in memory as they would meet what a NIC wrote. Routes map
//! DPDK's next hops onto 16 neighbours over two interfaces; misses take
//! the no-route path (an ICMP error, then a counted drop: no sender
//! address is configured).
//!
//! `cargo bench -p sluice-fn --bench routing_scale` (`-- v4` or `-- v6`)

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use etherparse::PacketBuilder;
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::{Fib, FibConfig, IfAddrs, Path, Prefix, Route, Router};
use sluice_graph::iface::{IfStats, Interfaces};
use sluice_graph::{Frame, Graph, GraphBuilder, runtime};
use sluice_io::InterfaceOutput;
use sluice_io::sink::Sink;
use sluice_wire::MacAddr;

#[path = "fib_files.rs"]
mod fib_files;

use fib_files::{Addr, Family, V4, V6, files, load};

const RX_MAC: MacAddr = MacAddr([2, 0x5c, 0, 0, 0, 1]);
const RING: usize = 1024;
const VECTOR: usize = 256;

fn interfaces() -> Arc<Interfaces> {
    let mut i = Interfaces::new();
    i.add("pg0", "pg", RX_MAC, 1500, None);
    for k in 0..2u8 {
        i.add(
            &format!("sink{k}"),
            "sink",
            MacAddr([2, 0x5c, 0, 0, k + 1, 1]),
            1500,
            Some(format!("sink{k}-output")),
        );
    }
    Arc::new(i)
}

fn graph<K: Addr>(pool: &Pool, routes: &[(K, u8, u32)], prefix: fn(K, u8) -> Prefix) -> Graph {
    let ifs = interfaces();
    let mut config = FibConfig::default();
    // `SLUICE_SKIP=0` or `=1` overrides the default path compression, to
    // compare the two shapes on the whole path.
    if let Ok(v) = std::env::var("SLUICE_SKIP") {
        config.v4.skip = v == "1";
        config.v6.skip = v == "1";
    }
    let fib = Arc::new(Fib::new(config, ifs.clone()).unwrap());
    let t0 = std::time::Instant::now();
    for &(p, l, nh) in routes {
        let k = (nh % 16) as u8;
        fib.add(&Route {
            table: 0,
            prefix: prefix(p, l),
            paths: vec![Path::Via {
                interface: 1 + u32::from(k % 2),
                addr: None,
                mac: Some(MacAddr([2, 0, 0, 0, 1, k])),
            }],
        })
        .unwrap();
    }
    if std::env::var_os("SLUICE_DEFAULT_ROUTE").is_some() {
        let (p, l) = (sluice_fn::fib::Key::masked(routes[0].0, 0), 0);
        fib.add(&Route {
            table: 0,
            prefix: prefix(p, l),
            paths: vec![Path::Via {
                interface: 1,
                addr: None,
                mac: Some(MacAddr([2, 0, 0, 0, 1, 99])),
            }],
        })
        .unwrap();
    }
    eprintln!(
        "  {} routes in {:.2} s through Fib::add, {} adjacencies",
        routes.len(),
        t0.elapsed().as_secs_f64(),
        fib.adjacencies_in_use()
    );
    let thp = std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("AnonHugePages:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    eprintln!("  transparent huge pages in the process: {thp}");
    let router = Router::new(fib, Arc::new(IfAddrs::new(ifs.len()))).unwrap();
    let stats = IfStats::new(1, ifs.len());
    let mut b = GraphBuilder::new();
    for n in router.nodes() {
        b.add(n).unwrap();
    }
    for k in 1..3 {
        b.add(Box::new(InterfaceOutput::new(
            &format!("sink{}", k - 1),
            k,
            Sink::new(),
            stats.worker(0),
        )))
        .unwrap();
    }
    b.build(0, pool.cache(256)).unwrap()
}

fn frame_v4(dst: u32, k: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], RX_MAC.0)
        .ipv4([192, 168, 0, 1], Ipv4Addr::from(dst).octets(), 64)
        .udp(1024 + (k % 50000) as u16, 80);
    let mut v = Vec::new();
    b.write(&mut v, &[0x5a; 18]).unwrap();
    v
}

fn frame_v6(dst: u128, k: usize) -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], RX_MAC.0)
        .ipv6(src.octets(), Ipv6Addr::from(dst).octets(), 64)
        .udp(1024 + (k % 50000) as u16, 80);
    let mut v = Vec::new();
    b.write(&mut v, &[0x5a; 18]).unwrap();
    v
}

fn run<K: Addr>(f: &Family, prefix: fn(K, u8) -> Prefix, frame: fn(K, usize) -> Vec<u8>) {
    let v = if f.v6 { 6 } else { 4 };
    println!("\n== IPv{v}: {} routes ==", f.routes);
    let Some((routes, ips)) = files(f) else {
        println!("dpdk-test-fib is not installed (Debian package dpdk-dev): no route files");
        return;
    };
    let (routes, ips) = load::<K>(&routes, &ips);
    let pool = Pool::new(&PoolConfig {
        buffers: 8192,
        huge_pages: HugePages::Try,
        lock: false,
    })
    .unwrap();
    let mut graph = graph::<K>(&pool, &routes, prefix);
    let frames: Vec<Vec<u8>> = ips
        .iter()
        .take(200_000)
        .enumerate()
        .map(|(k, &a)| frame(a, k))
        .collect();
    let mut next = 0usize;
    // Warm-up round, then reset by measuring deltas of the stats.
    for round in 0..2 {
        let before: Vec<(String, u64)> = runtime::rows(&[&*graph.stats()])
            .into_iter()
            .map(|r| (r.name, r.clocks_total))
            .collect();
        let mut packets = 0u64;
        let mut timed = 0u64;
        for _ in 0..(if round == 0 { 20 } else { rounds() }) {
            let mut ring: Vec<Frame> = (0..RING / VECTOR)
                .map(|_| {
                    let mut fr = Frame::new();
                    for _ in 0..VECTOR {
                        let bytes = &frames[next % frames.len()];
                        next += 1;
                        let mut p = graph.buffers().alloc_from(bytes).unwrap();
                        p.meta_mut().rx_if = 0;
                        fr.push(p);
                    }
                    fr
                })
                .collect();
            for fr in &mut ring {
                packets += fr.len() as u64;
                let t0 = sluice_graph::clock::cycles();
                graph.inject("ethernet-input", fr).unwrap();
                timed += sluice_graph::clock::cycles() - t0;
            }
        }
        if round == 1 {
            let rows = runtime::rows(&[&*graph.stats()]);
            let per = |name: &str| {
                let now = rows
                    .iter()
                    .find(|r| r.name == name)
                    .map_or(0, |r| r.clocks_total);
                let then = before
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, c)| *c);
                (now - then) as f64 / packets as f64
            };
            let names = [
                "ethernet-input".to_string(),
                format!("ip{v}-input"),
                format!("ip{v}-lookup"),
                format!("ip{v}-rewrite"),
            ];
            let mut four = 0.0;
            for n in &names {
                let c = per(n);
                four += c;
                println!("  {n:<16} {c:6.1} cycles/pkt");
            }
            println!(
                "  the four nodes: {four:.1} cycles/pkt (target {}); whole graph incl. misses' ICMP and outputs: {:.1}",
                if f.v6 { "≤ 120" } else { "≤ 80" },
                timed as f64 / packets as f64
            );
        }
    }
    drop(graph);
    assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
}

/// Measured rings (`SLUICE_ROUNDS`, default 200): more for a profiler.
fn rounds() -> usize {
    std::env::var("SLUICE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |n: &str| which.is_empty() || which.iter().any(|w| w == n);
    if want("v4") {
        run::<u32>(&V4, |p, l| Prefix::V4(p.into(), l), frame_v4);
    }
    if want("v6") {
        run::<u128>(&V6, |p, l| Prefix::V6(p.into(), l), frame_v6);
    }
}
