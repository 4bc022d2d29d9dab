//! Sluice's ACL classifier side by side with DPDK's rte_acl, on the same
//! rules and the same trace, in the same run.
//!
//! `gen-classbench.py` (the peers' ClassBench-like generator, in
//! `../shared/peers/`, run here as a tool) writes 100, 1k and 10k rules and
//! a million-packet trace each into `target/acl-peer/`. This harness runs
//! `dpdk-test-acl` on those files (scalar and its default, widest SIMD
//! path, `--verbose=0` so that results are not checked inside the timed
//! loop), loads the same files into Sluice, times its classifier the way
//! DPDK does (every packet of the trace, a vector of 256 at a time, five
//! passes) and prints both with the ratio, then the build time and memory.
//! Sluice's answers are checked against a linear scan of the rules (every
//! packet at 100 and 1k rules, one in ten at 10k; `SLUICE_ACL_CHECK=all`
//! for every one).
//!
//! Beside the chosen shape it times the others measured while choosing
//! (`SLUICE_ACL_SHAPES=all`): the linear scan, one cutting tree without
//! separated groups, and tuple-space search.
//!
//! Without `dpdk-test-acl` it says so and prints Sluice alone. Run:
//! `cargo bench -p sluice-fn --bench acl_peer` (`-- 10000` for one size).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sluice_fn::acl::{
    Acl, Action, Key, LinearScan, Masked, NO_MATCH, PortRange, Rule, TreeConfig, TupleSpace,
};
use sluice_fn::fib::Prefix;
use sluice_graph::clock::{cycles, hz};

const PACKETS: usize = 1_000_000;
const ITER: usize = 5;
const VECTOR: usize = 256;

fn dir() -> PathBuf {
    let d = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("acl-peer");
    std::fs::create_dir_all(&d).expect("create target/acl-peer");
    d
}

/// The peers' directory: `SLUICE_PEERS`, or `shared/peers` beside the
/// work tree.
fn peers() -> PathBuf {
    std::env::var_os("SLUICE_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers"))
}

/// Writes `cb<n>.rules` and `cb<n>.trace` with the generator (seed 1),
/// once.
fn files(n: usize) -> Option<(PathBuf, PathBuf)> {
    let prefix = dir().join(format!("cb{n}"));
    let rules = prefix.with_extension("rules");
    let trace = prefix.with_extension("trace");
    if !(rules.exists() && trace.exists()) {
        let script = peers().join("gen-classbench.py");
        let ok = Command::new("python3")
            .arg(&script)
            .args([n.to_string(), PACKETS.to_string(), "1".into()])
            .arg(&prefix)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            println!("could not run {}", script.display());
            return None;
        }
    }
    Some((rules, trace))
}

/// dpdk-test-acl's cycles per packet, `alg` `None` for its default.
fn dpdk(rules: &Path, trace: &Path, alg: Option<&str>) -> Option<f64> {
    let mut c = Command::new("dpdk-test-acl");
    c.args(["--no-huge", "-m", "4096", "--no-pci", "-l", "1", "--"])
        .arg(format!("--rulesf={}", rules.display()))
        .arg(format!("--tracef={}", trace.display()))
        .arg(format!("--tracenum={PACKETS}"))
        .args([format!("--iter={ITER}"), "--verbose=0".into()]);
    if let Some(a) = alg {
        c.arg(format!("--alg={a}"));
    }
    let out = c.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "search_ip5tuples  @lcore 1: ... cycles (0.86 sec), 447.43 cycles/pkt, ..."
    text.lines()
        .find(|l| l.contains("cycles/pkt"))?
        .split(',')
        .find_map(|f| f.trim().strip_suffix(" cycles/pkt"))?
        .trim()
        .parse()
        .ok()
}

fn parse_prefix(s: &str) -> Option<Prefix> {
    let (a, l) = s.split_once('/')?;
    Some(Prefix::V4(a.parse().ok()?, l.parse().ok()?))
}

fn parse_range(s: &str) -> Option<PortRange> {
    let (lo, hi) = s.split_once(':')?;
    Some(PortRange::new(
        lo.trim().parse().ok()?,
        hi.trim().parse().ok()?,
    ))
}

fn hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// `@src/len dst/len sp : sp dp : dp proto/mask`, tab-separated.
fn load_rules(path: &Path) -> Vec<Rule> {
    let text = std::fs::read_to_string(path).expect("read rules");
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.trim_start_matches('@').split('\t').collect();
            let (p, m) = f[4].split_once('/').expect("proto/mask");
            let (p, m) = (hex(p).expect("proto") as u8, hex(m).expect("mask") as u8);
            Rule {
                src: Some(parse_prefix(f[0]).expect("src")),
                dst: Some(parse_prefix(f[1]).expect("dst")),
                sport: parse_range(f[2]).expect("sport"),
                dport: parse_range(f[3]).expect("dport"),
                proto: (m != 0).then_some(Masked { value: p, mask: m }),
                ..Rule::any(Action::Permit)
            }
        })
        .collect()
}

/// `0xSRC 0xDST sport dport proto`.
fn load_trace(path: &Path) -> Vec<Key<u32>> {
    let text = std::fs::read_to_string(path).expect("read trace");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(Key {
                src: hex(f.first()?)?,
                dst: hex(f.get(1)?)?,
                sport: f.get(2)?.parse().ok()?,
                dport: f.get(3)?.parse().ok()?,
                proto: f.get(4)?.parse().ok()?,
                ..Key::default()
            })
        })
        .collect()
}

/// Median cycles per packet over `ITER` passes of `f` over the trace a
/// vector at a time, and the answers of the last pass.
fn time(trace: &[Key<u32>], mut f: impl FnMut(&[Key<u32>], &mut [u32])) -> (f64, Vec<u32>) {
    let mut answers = vec![NO_MATCH; trace.len()];
    let mut runs = Vec::new();
    for _ in 0..ITER {
        let c0 = cycles();
        for (keys, out) in trace.chunks(VECTOR).zip(answers.chunks_mut(VECTOR)) {
            f(keys, out);
        }
        runs.push((cycles() - c0) as f64 / trace.len() as f64);
        std::hint::black_box(&answers);
    }
    runs.sort_by(f64::total_cmp);
    (runs[runs.len() / 2], answers)
}

fn check(what: &str, rules: &[Rule], trace: &[Key<u32>], answers: &[u32]) {
    let every = if std::env::var("SLUICE_ACL_CHECK").as_deref() == Ok("all") || rules.len() < 5000 {
        1
    } else {
        10
    };
    let linear = LinearScan::<u32>::new(rules).expect("rules");
    let mut checked = 0;
    for (i, (k, &a)) in trace.iter().zip(answers).enumerate().step_by(every) {
        let want = linear.classify(k);
        assert_eq!(
            a, want,
            "{what}: packet {i} {k:?}: got rule {a}, linear scan {want}"
        );
        checked += 1;
    }
    println!("  {what}: {checked} answers equal a linear scan's");
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn run(n: usize, all: bool) {
    println!("\n== {n} rules ==  (load {})", load());
    let Some((rf, tf)) = files(n) else { return };
    let rules = load_rules(&rf);
    let trace = load_trace(&tf);
    let matched = {
        let t0 = Instant::now();
        let acl = Acl::new(rules.clone(), Action::Deny).expect("rules");
        let build = t0.elapsed();
        let (s4, _) = acl.stats();
        let (c, answers) = time(&trace, |k, o| acl.classify4_batch(k, o));
        let hits = answers.iter().filter(|&&a| a != NO_MATCH).count();
        (c, build, s4, answers, hits)
    };
    let (sluice, build, stats, answers, hits) = matched;
    let peer: Vec<(&str, Option<f64>)> = vec![
        ("scalar", dpdk(&rf, &tf, Some("scalar"))),
        ("default", dpdk(&rf, &tf, None)),
    ];
    println!(
        "{} rules, {} packets ({:.0} % match a rule), from {}",
        rules.len(),
        trace.len(),
        100.0 * hits as f64 / trace.len() as f64,
        rf.display()
    );
    print!("sluice: {sluice:.1} cycles/packet");
    let mut any_peer = false;
    for (alg, c) in &peer {
        if let Some(c) = c {
            any_peer = true;
            print!("   rte_acl {alg}: {c:.1} ({:.2}×)", sluice / c);
        }
    }
    println!();
    if !any_peer {
        println!("dpdk-test-acl is not installed (Debian package dpdk-dev): Sluice alone");
    }
    println!(
        "  build {:.1} ms, {:.1} MiB ({} groups, {} cuts, {} leaf blocks)",
        build.as_secs_f64() * 1e3,
        stats.bytes as f64 / (1 << 20) as f64,
        stats.groups,
        stats.cuts,
        stats.blocks
    );
    check("tree", &rules, &trace, &answers);
    if all {
        let one = Acl::with_config(
            rules.clone(),
            Action::Deny,
            TreeConfig {
                max_groups: 1,
                ..TreeConfig::default()
            },
        )
        .expect("rules");
        let (c, a) = time(&trace, |k, o| one.classify4_batch(k, o));
        let s = one.stats().0;
        println!(
            "  one cutting tree (no groups): {c:.1} cycles/packet, {:.1} MiB",
            s.bytes as f64 / (1 << 20) as f64
        );
        check("one tree", &rules, &trace, &a);
        let t0 = Instant::now();
        let tss = TupleSpace::<u32>::new(&rules).expect("rules");
        let b = t0.elapsed();
        let (c, a) = time(&trace, |k, o| tss.classify_batch(k, o));
        println!(
            "  tuple space search: {c:.1} cycles/packet ({} tuples), build {:.1} ms",
            tss.tuples(),
            b.as_secs_f64() * 1e3
        );
        check("tuple space", &rules, &trace, &a);
        if n <= 1000 {
            let flat = Acl::with_config(
                rules.clone(),
                Action::Deny,
                TreeConfig {
                    max_groups: 1,
                    leaf: usize::MAX,
                    ..TreeConfig::default()
                },
            )
            .expect("rules");
            let (c, a) = time(&trace, |k, o| flat.classify4_batch(k, o));
            println!("  one leaf (every rule in blocks, scanned): {c:.1} cycles/packet");
            check("one leaf", &rules, &trace, &a);
            let lin = LinearScan::<u32>::new(&rules).expect("rules");
            let (c, _) = time(&trace[..trace.len() / 10], |k, o| {
                for (o, k) in o.iter_mut().zip(k) {
                    *o = lin.classify(k);
                }
            });
            println!("  linear scan: {c:.1} cycles/packet");
        }
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 1000, 10_000]
    } else {
        sizes
    };
    let all = std::env::var("SLUICE_ACL_SHAPES").as_deref() == Ok("all");
    for n in sizes {
        run(n, all);
    }
    println!("\nTSC {:.2} GHz, load {}", hz() / 1e9, load());
}
