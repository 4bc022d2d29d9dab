//! Sluice's longest-prefix match side by side with DPDK's, on the same
//! routes and the same addresses, in the same run.
//!
//! `dpdk-test-fib` (Debian `dpdk-dev`) writes a 1M-route IPv4 table and a
//! 500k-route IPv6 table with a BGP-like prefix-length mix, plus a million
//! lookup addresses each (half inside routes, half random), then times
//! rte_fib and rte_lpm on those files. This harness makes the files (once,
//! into `target/fib-peer/`), runs DPDK's timing, loads the same files into
//! Sluice's trie and times it the way DPDK does (every address of the file,
//! in bursts of 64), then prints both and the ratio. It also reports what
//! the issue asks beside the lookups: build time, cycles per route added,
//! memory per route and updates per second.
//!
//! Without `dpdk-test-fib` on the machine it says so and measures Sluice
//! alone on files it cannot make: so it needs the peer. Run:
//!
//! `cargo bench -p sluice-fn --bench fib_peer` (`-- v4` or `-- v6` for one;
//! `SLUICE_FIB_SHAPES=24-4,24-4s` for some shapes only, `SLUICE_FIB_SPLIT=1`
//! to also time the addresses that match a route apart from those that
//! match none)

use std::time::Instant;

use sluice_fn::fib::{Key, Lpm, LpmConfig};
use sluice_graph::clock::{cycles, hz};

#[path = "fib_files.rs"]
mod fib_files;

use fib_files::{Addr, Family, V4, V6, dpdk_lookup, files, load};

/// dpdk-test-fib's burst; `SLUICE_FIB_BURST` (up to 256, a vector) changes Sluice's.
const BURST: usize = 64;

fn burst() -> usize {
    std::env::var("SLUICE_FIB_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BURST)
        .clamp(1, sluice_fn::fib::lpm::BATCH)
}

struct Figures {
    build_s: f64,
    add_cycles: f64,
    bytes_per_route: f64,
    updates_per_s: f64,
    lookup: f64,
    checksum: u64,
}

/// Root bits, most groups, batched, huge pages, stride, skip nodes.
type Shape = (u32, u32, bool, bool, u32, bool);

fn measure<K: Key>(shape: Shape, routes: &[(K, u8, u32)], ips: &[K]) -> Figures {
    let (root_bits, max_groups, batch, huge_pages, stride, skip) = shape;
    let t = Lpm::<K>::new(LpmConfig {
        root_bits,
        max_groups,
        huge_pages,
        stride,
        skip,
    })
    .expect("trie");
    let t0 = Instant::now();
    let c0 = cycles();
    for &(p, l, v) in routes {
        t.insert(p, l, v).expect("insert");
    }
    let add_cycles = (cycles() - c0) as f64 / routes.len() as f64;
    let build_s = t0.elapsed().as_secs_f64();
    let bytes_per_route = t.memory() as f64 / routes.len() as f64;
    let _thp = std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("AnonHugePages:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();

    // Updates: remove and re-add a spread of 100k routes (each counts as
    // two updates), with the table full around them.
    let churn: Vec<_> = routes
        .iter()
        .step_by(routes.len() / 100_000)
        .copied()
        .collect();
    let t0 = Instant::now();
    for &(p, l, _) in &churn {
        t.remove(p, l);
    }
    for &(p, l, v) in &churn {
        t.insert(p, l, v).expect("re-insert");
    }
    let updates_per_s = 2.0 * churn.len() as f64 / t0.elapsed().as_secs_f64();

    // Lookups: every address, bursts of 64, as dpdk-test-fib does; best
    // of three passes (the first also warms the page tables).
    let burst = burst();
    let mut out = [0u32; sluice_fn::fib::lpm::BATCH];
    let mut best = f64::MAX;
    let mut checksum = 0u64;
    for _ in 0..3 {
        let c0 = cycles();
        for chunk in ips.chunks(burst) {
            if batch {
                t.lookup_batch(chunk, &mut out);
            } else {
                for (o, &a) in out.iter_mut().zip(chunk) {
                    *o = t.lookup(a);
                    std::hint::black_box(*o);
                }
            }
            checksum = checksum.wrapping_add(u64::from(out[0]));
        }
        best = best.min((cycles() - c0) as f64 / ips.len() as f64);
        std::hint::black_box(&out);
    }
    if std::env::var_os("SLUICE_FIB_SPLIT").is_some() {
        let (hit, miss): (Vec<K>, Vec<K>) = ips.iter().partition(|&&a| t.lookup(a) != 0);
        for (name, set) in [("hits", &hit), ("misses", &miss)] {
            let mut best = f64::MAX;
            for _ in 0..3 {
                let c0 = cycles();
                for chunk in set.chunks(burst) {
                    t.lookup_batch(chunk, &mut out);
                }
                best = best.min((cycles() - c0) as f64 / set.len() as f64);
            }
            println!("  {name}: {} addresses, {best:.1} cycles", set.len());
        }
    }
    // Every answer, untimed, so that shapes are checked against each other
    // on all the addresses, not one a burst.
    for chunk in ips.chunks(burst) {
        t.lookup_batch(chunk, &mut out);
        for &o in &out[..chunk.len()] {
            checksum = checksum.wrapping_mul(31).wrapping_add(u64::from(o));
        }
    }
    Figures {
        build_s,
        add_cycles,
        bytes_per_route,
        updates_per_s,
        lookup: best,
        checksum,
    }
}

fn run<K: Addr>(f: &Family, shapes: &[Shape]) {
    println!("\n== IPv{} ==", if f.v6 { 6 } else { 4 });
    let Some((routes, ips)) = files(f) else {
        println!("dpdk-test-fib is not installed (Debian package dpdk-dev): no peer, no files");
        return;
    };
    // `SLUICE_FIB_NO_PEER=1`: Sluice alone, for quick comparisons of its shapes.
    let peer = if std::env::var_os("SLUICE_FIB_NO_PEER").is_some() {
        None
    } else {
        dpdk_lookup(f, &routes, &ips)
    };
    let (r, a) = load::<K>(&routes, &ips);
    println!(
        "{} routes, {} lookup addresses, from {}",
        r.len(),
        a.len(),
        routes.display()
    );
    if let Some((fib, lpm)) = peer {
        println!(
            "DPDK rte_fib: {fib:.1} cycles/lookup   rte_lpm{}: {lpm:.1}",
            if f.v6 { "6" } else { "" }
        );
    } else {
        println!("DPDK: could not run dpdk-test-fib's timing");
    }
    let mut sums = Vec::new();
    for &shape in shapes {
        let (root_bits, _, batch, huge, stride, skip) = shape;
        if !shape_wanted(root_bits, stride, batch, huge, skip) {
            continue;
        }
        let m = measure::<K>(shape, &r, &a);
        sums.push(m.checksum);
        print!(
            "sluice {root_bits}-{stride}…{}{}{}: lookup {:.1} cycles",
            if skip { " skip" } else { "" },
            if batch { " batched" } else { " one by one" },
            if huge { ", THP" } else { ", 4K pages" },
            m.lookup
        );
        if let Some((fib, lpm)) = peer {
            print!(
                " ({:.2}× rte_fib, {:.2}× rte_lpm)",
                m.lookup / fib,
                m.lookup / lpm
            );
        }
        println!(
            "; build {:.2} s ({:.0} cycles/route), {:.1} B/route, {:.2} M updates/s",
            m.build_s,
            m.add_cycles,
            m.bytes_per_route,
            m.updates_per_s / 1e6
        );
    }
    assert!(
        sums.windows(2).all(|w| w[0] == w[1]),
        "shapes disagree on answers"
    );
    println!("TSC {:.2} GHz", hz() / 1e9);
}

/// `SLUICE_FIB_SHAPES=24-4,24-4s` measures only those shapes (root-stride,
/// `s` for skip nodes; batched, huge pages), for quicker comparisons.
fn shape_wanted(root_bits: u32, stride: u32, batch: bool, huge: bool, skip: bool) -> bool {
    match std::env::var("SLUICE_FIB_SHAPES") {
        Ok(list) => {
            let name = format!("{root_bits}-{stride}{}", if skip { "s" } else { "" });
            batch && huge && list.split(',').any(|s| s.trim() == name)
        }
        Err(_) => true,
    }
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |n: &str| which.is_empty() || which.iter().any(|w| w == n);
    if want("v4") {
        run::<u32>(
            &V4,
            &[
                (16, 1 << 17, false, true, 8, false),
                (24, 1 << 17, false, true, 8, false),
                (16, 1 << 17, true, true, 8, false),
                (24, 1 << 17, true, true, 8, false),
                (24, 1 << 17, true, false, 8, false),
                (24, 1 << 21, true, true, 4, false),
                (24, 1 << 21, true, true, 4, true),
            ],
        );
    }
    if want("v6") {
        run::<u128>(
            &V6,
            &[
                (16, 1 << 22, false, true, 8, false),
                (24, 1 << 22, false, true, 8, false),
                (16, 1 << 22, true, true, 8, false),
                (24, 1 << 22, true, true, 8, false),
                (24, 1 << 22, true, false, 8, false),
                (24, 1 << 26, true, true, 4, false),
                (16, 1 << 26, true, true, 4, false),
                (24, 1 << 26, true, true, 4, true),
                (16, 1 << 26, true, true, 4, true),
                (20, 1 << 26, true, true, 4, true),
            ],
        );
    }
}
