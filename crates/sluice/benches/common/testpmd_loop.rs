//! The testpmd loop shared by the shared-memory interface benches
//! (`memif_forward`, `vhost_forward`): a device under test — Sluice with
//! one worker, or testpmd itself — cross-connects two interfaces on one
//! core, while `dpdk-testpmd` on the other core keeps a loop of packets
//! going through it (`io` forwarding, `--tx-first`) and counts what comes
//! back. Each bench describes its interface kind in a [`Link`].
//!
//! Sizes: `--txpkts=64` and `--txpkts=1500`; IMIX is 64/576/1500 B in
//! 7:4:1 odds per packet (`txsplit rand` over segments 64,0×6,512,0×3,924:
//! a packet takes the first 1–12 segments). The first bursts are a random
//! draw, so the mean size is measured and printed. Figures: after a
//! warm-up, the tester's per-second receive rates (`--stats-period=1`)
//! over the window, summed over both ports; median of the seconds, then
//! median over the runs. Cycles per packet is the DUT core's cycles (TSC)
//! over the packets it forwarded: the core polls all the time, so that is
//! everything it spent. For Sluice also the node-by-node split from `show
//! runtime`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_testnet::{ChildGuard, Scratch, require, unique};

/// One kind of interface, as a bench describes it.
pub struct Link {
    /// What the first line says, e.g. "memif".
    pub what: &'static str,
    /// Prefix of the bench's environment variables, e.g. `MEMIF_BENCH`.
    pub env: &'static str,
    /// The tester's two ports on the two sockets (testpmd `--vdev`s).
    pub tester: fn(&Path, &Path) -> [String; 2],
    /// testpmd as the device under test on the same sockets.
    pub testpmd_dut: fn(&Path, &Path) -> [String; 2],
    /// Sluice's `driver = ...` and keys for one socket.
    pub sluice_driver: fn(&Path) -> String,
}

impl Link {
    fn var(&self, name: &str) -> String {
        format!("{}_{name}", self.env)
    }

    /// The `sluice` binary: this build's, or `<ENV>_SLUICE` (to compare
    /// two builds).
    fn sluice(&self) -> String {
        std::env::var(self.var("SLUICE")).unwrap_or_else(|_| env!("CARGO_BIN_EXE_sluice").into())
    }
}

const WARM_UP: Duration = Duration::from_secs(2);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The two sockets, in a scratch directory of the run.
struct Sockets {
    dir: Scratch,
}

impl Sockets {
    fn new() -> Sockets {
        Sockets {
            dir: Scratch::new("lbench"),
        }
    }
    fn a(&self) -> std::path::PathBuf {
        self.dir.join("a.sock")
    }
    fn b(&self) -> std::path::PathBuf {
        self.dir.join("b.sock")
    }
    fn ctl(&self) -> std::path::PathBuf {
        self.dir.join("ctl.sock")
    }
}

/// A testpmd process with its own file prefix, whose runtime directory is
/// removed when it ends.
struct Testpmd {
    guard: Option<ChildGuard>,
    prefix: String,
    stdout: std::path::PathBuf,
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        drop(self.guard.take());
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

impl Testpmd {
    /// testpmd on `core` (main and forwarding lcore both there), in `io`
    /// mode over `vdevs`, its output in `dir`.
    fn start(dir: &Scratch, core: usize, vdevs: &[String], extra: &[String]) -> Testpmd {
        let prefix = unique("lb");
        let stdout = dir.join(&format!("{prefix}.out"));
        let mut cmd = Command::new("dpdk-testpmd");
        cmd.args([
            "--no-pci",
            "--no-huge",
            "-m",
            "512",
            &format!("--file-prefix={prefix}"),
            &format!("--lcores=0@{core},1@{core}"),
        ]);
        for v in vdevs {
            cmd.arg(format!("--vdev={v}"));
        }
        cmd.args([
            "--",
            "--total-num-mbufs=32768",
            "--forward-mode=io",
            // With stdin closed, testpmd without a stats period takes
            // "press enter to exit" as said at once.
            "--stats-period=1",
            "-a",
        ]);
        cmd.args(extra);
        let out = std::fs::File::create(&stdout).expect("testpmd output file");
        let guard = ChildGuard(
            cmd.stdin(Stdio::null())
                .stdout(out)
                .stderr(Stdio::null())
                .spawn()
                .expect("start dpdk-testpmd"),
        );
        Testpmd {
            guard: Some(guard),
            prefix,
            stdout,
        }
    }

    /// Per stats period so far: (packets/s, bits/s) received, summed over
    /// the ports.
    fn rx_rates(&self) -> Vec<(f64, f64)> {
        let text = std::fs::read(&self.stdout).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let per_port: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                match f.as_slice() {
                    ["Rx-pps:", pps, "Rx-bps:", bps] => {
                        Some((pps.parse().ok()?, bps.parse().ok()?))
                    }
                    _ => None,
                }
            })
            .collect();
        per_port
            .chunks_exact(2)
            .map(|p| (p[0].0 + p[1].0, p[0].1 + p[1].1))
            .collect()
    }

    /// Whether it is still running.
    fn alive(&mut self) -> bool {
        self.guard
            .as_mut()
            .is_some_and(|g| matches!(g.0.try_wait(), Ok(None)))
    }
}

/// The tester: the client side of both sockets, starting the loop with
/// one burst of packets of `size` a port.
fn tester(link: &Link, s: &Sockets, core: usize, size: &str) -> Testpmd {
    let vdevs = (link.tester)(&s.a(), &s.b());
    let mut extra = vec!["--tx-first".to_string()];
    match size {
        "imix" => {
            let cmds = s.dir.join("imix.cmd");
            std::fs::write(
                &cmds,
                "set txpkts 64,0,0,0,0,0,0,512,0,0,0,924\nset txsplit rand\n",
            )
            .expect("write testpmd commands");
            extra.push(format!("--cmdline-file={}", cmds.display()));
        }
        n => extra.push(format!("--txpkts={n}")),
    }
    Testpmd::start(&s.dir, core, &vdevs, &extra)
}

/// testpmd as the device under test on both sockets.
fn testpmd_dut(link: &Link, s: &Sockets, core: usize) -> Testpmd {
    let vdevs = (link.testpmd_dut)(&s.a(), &s.b());
    Testpmd::start(&s.dir, core, &vdevs, &[])
}

/// Sluice as the device under test: one worker on `core`, if0 ⇄ if1.
fn sluice_dut(link: &Link, s: &Sockets, core: usize) -> ChildGuard {
    let config = s.dir.join("dut.toml");
    std::fs::write(
        &config,
        format!(
            "[workers]\ncount = 1\ncores = [{core}]\n\n\
             [[interface]]\nname = \"if0\"\n{}\n\
             [[interface]]\nname = \"if1\"\n{}\n\
             [[xconnect]]\nfrom = \"if0\"\nto = \"if1\"\n\n\
             [[xconnect]]\nfrom = \"if1\"\nto = \"if0\"\n",
            (link.sluice_driver)(&s.a()),
            (link.sluice_driver)(&s.b())
        ),
    )
    .expect("write config");
    ChildGuard(
        Command::new("taskset")
            .args(["-c", &core.to_string(), &link.sluice(), "run", "-c"])
            .arg(&config)
            .arg("--socket")
            .arg(s.ctl())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sluice"),
    )
}

fn ctl(link: &Link, socket: &Path, words: &str) -> serde_json::Value {
    let out = Command::new(link.sluice())
        .args(["ctl", "--json", "--socket"])
        .arg(socket)
        .args(words.split_whitespace())
        .output()
        .expect("sluice ctl");
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

fn wait_for(paths: &[&Path], timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if paths.iter().all(|p| p.exists()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One run's figures.
struct Run {
    mpps: f64,
    mean_bytes: f64,
    /// Sluice only: (node, cycles per packet through it, packets per
    /// call, packets).
    nodes: Vec<(String, f64, f64, f64)>,
    /// Sluice only: cycles in the nodes per packet forwarded (each packet
    /// passes one input, `l2-input` and one output).
    in_nodes: f64,
}

fn one_run(
    link: &Link,
    dut: &str,
    size: &str,
    window: Duration,
    dut_core: usize,
    tester_core: usize,
) -> Option<Run> {
    let s = Sockets::new();
    let (_sluice, _testpmd_dut) = match dut {
        "sluice" => {
            let g = sluice_dut(link, &s, dut_core);
            if !wait_for(&[&s.a(), &s.b(), &s.ctl()], Duration::from_secs(10)) {
                eprintln!("sluice did not make its sockets");
                return None;
            }
            (Some(g), None)
        }
        _ => {
            let t = testpmd_dut(link, &s, dut_core);
            if !wait_for(&[&s.a(), &s.b()], Duration::from_secs(20)) {
                eprintln!("testpmd did not make its sockets");
                return None;
            }
            (None, Some(t))
        }
    };
    let mut t = tester(link, &s, tester_core, size);
    std::thread::sleep(WARM_UP);
    if !t.alive() {
        eprintln!("the tester ended early; its output: {}", t.stdout.display());
        return None;
    }
    let skip = t.rx_rates().len();
    if dut == "sluice" {
        ctl(link, &s.ctl(), "clear runtime");
    }
    std::thread::sleep(window);
    let nodes = if dut == "sluice" {
        let v = ctl(link, &s.ctl(), "show runtime");
        v["result"]["runtime"]["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter(|r| r["vectors"].as_u64().unwrap_or(0) > 0)
                    .map(|r| {
                        let calls = r["calls"].as_f64().unwrap_or(0.0);
                        let vectors = r["vectors"].as_f64().unwrap_or(0.0);
                        (
                            r["name"].as_str().unwrap_or("?").to_string(),
                            r["clocks"].as_f64().unwrap_or(0.0),
                            vectors / calls.max(1.0),
                            vectors,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    // (name, cycles/packet, packets/call, packets)
    let forwarded = nodes
        .iter()
        .find(|n: &&(String, f64, f64, f64)| n.0 == "l2-input")
        .map_or(0.0, |n| n.3);
    let in_nodes = nodes.iter().map(|n| n.1 * n.3).sum::<f64>() / forwarded.max(1.0);
    let rates: Vec<(f64, f64)> = t.rx_rates().into_iter().skip(skip).collect();
    if rates.is_empty() {
        eprintln!("no statistics from the tester");
        return None;
    }
    let pps: Vec<f64> = rates.iter().map(|r| r.0).collect();
    let bps: f64 = rates.iter().map(|r| r.1).sum();
    let packets: f64 = pps.iter().sum();
    Some(Run {
        mpps: median(pps) / 1e6,
        mean_bytes: bps / 8.0 / packets.max(1.0),
        nodes,
        in_nodes,
    })
}

/// Runs every size with testpmd and Sluice as the device under test, and
/// prints the table. Environment (with the link's prefix): `_WINDOW_S`
/// (4), `_RUNS` (3), `_SIZES` (`64,imix,1500`), `_DUTS`
/// (`testpmd,sluice`), `_DUT_CORE` (1), `_TESTER_CORE` (0), `_SLUICE`.
pub fn run(link: &Link) {
    if !require("dpdk-testpmd") || !require("taskset") {
        return;
    }
    let window = Duration::from_secs(env_or(&link.var("WINDOW_S"), 4));
    let runs = env_or(&link.var("RUNS"), 3usize).max(1);
    let dut_core = env_or(&link.var("DUT_CORE"), 1usize);
    let tester_core = env_or(&link.var("TESTER_CORE"), 0usize);
    let hz = sluice_graph::clock::hz();
    println!(
        "{} cross-connect on core {dut_core}, dpdk-testpmd io loop on core {tester_core}; \
         TSC {:.2} GHz; {window:?} windows, median of {runs} runs",
        link.what,
        hz / 1e9
    );
    println!(
        "{:<8} {:<8} {:>10} {:>8} {:>12} {:>10}  Sluice nodes (cycles/packet, packets/call)",
        "size", "DUT", "Mpps", "mean B", "cycles/pkt", "× testpmd"
    );
    for size in env_list(&link.var("SIZES"), "64,imix,1500") {
        let mut testpmd_mpps = None;
        for dut in env_list(&link.var("DUTS"), "testpmd,sluice") {
            let results: Vec<Run> = (0..runs)
                .filter_map(|_| one_run(link, &dut, &size, window, dut_core, tester_core))
                .collect();
            if results.is_empty() {
                println!("{size:<8} {dut:<8} (no result)");
                continue;
            }
            let mpps = median(results.iter().map(|r| r.mpps).collect());
            let bytes = median(results.iter().map(|r| r.mean_bytes).collect());
            // The node split of the median run.
            let nodes = results
                .iter()
                .min_by(|a, b| (a.mpps - mpps).abs().total_cmp(&(b.mpps - mpps).abs()))
                .map(|r| {
                    let split: Vec<String> = r
                        .nodes
                        .iter()
                        .map(|(n, c, v, _)| format!("{n} {c:.1} ({v:.1})"))
                        .collect();
                    if split.is_empty() {
                        String::new()
                    } else {
                        format!("{:.1} in nodes: {}", r.in_nodes, split.join(", "))
                    }
                })
                .unwrap_or_default();
            let ratio = match (dut.as_str(), testpmd_mpps) {
                ("testpmd", _) => {
                    testpmd_mpps = Some(mpps);
                    "1.00".to_string()
                }
                (_, Some(t)) if t > 0.0 => format!("{:.2}", mpps / t),
                _ => "-".to_string(),
            };
            let spread: Vec<String> = results.iter().map(|r| format!("{:.1}", r.mpps)).collect();
            println!(
                "{size:<8} {dut:<8} {mpps:>10.2} {bytes:>8.0} {:>12.1} {ratio:>10}  {nodes}   [runs {}]",
                hz / (mpps * 1e6).max(1.0),
                spread.join(" ")
            );
        }
    }
}
