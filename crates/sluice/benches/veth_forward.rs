//! Kernel-interface forwarding (issue 5): packets per second forwarded
//! GEN —veth/tap— [device under test] —veth/tap— SINK, at 64 B and IMIX,
//! for the Linux kernel routing between namespaces (`ip_forward`) and for
//! `sluice run` over af-xdp, af-packet and tap, all in one run.
//!
//! `cargo bench -p sluice --bench veth_forward` (root; prints a table,
//! asserts nothing). Every case gets fresh namespaces and devices, removed
//! afterwards even on failure.
//!
//! - Generator: a second `sluice run` inside GEN, a `pg` stream (256 UDP
//!   flows) cross-connected to an af-xdp interface on GEN's device, pinned
//!   to core `GEN_CORE` (0). It runs flat out; its offered rate is what
//!   GEN's device counted as sent or dropped.
//! - DUT: the kernel (a ROUTER namespace, `ip_forward=1`, RPS steering its
//!   receive softirq to `DUT_CORE`) or `sluice run` with one worker pinned
//!   to `DUT_CORE` (1), the whole process under `taskset`.
//! - Sink: SINK's device counts what arrived (`rx_packets`); the DUT sends
//!   to a next-hop MAC that is not SINK's, so SINK's stack drops every
//!   frame at once in `ip_rcv` (PACKET_OTHERHOST), the cheapest drop this
//!   kernel has without tc actions or nftables.
//! - Figures: 1 s warm-up, then `WINDOWS` windows of `WINDOW_S` seconds;
//!   medians. Per window also each core's busy share from /proc/stat.
//!
//! Environment: `VETH_BENCH_WINDOW_S` (default 3), `VETH_BENCH_WINDOWS`
//! (3), `VETH_BENCH_CASES` (e.g. `kernel,af-xdp`), `VETH_BENCH_GEN_CORE`
//! (0), `VETH_BENCH_DUT_CORE` (1).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sluice_testnet::{ChildGuard, Netns, Veth, require, require_root, run, unique};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
/// The next hop the DUT sends to: not SINK's MAC, so SINK drops at once.
const SINK_NEXT_HOP: &str = "02:00:00:00:02:fe";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `sluice run` process: killed by its PID on drop; its output gathered.
struct Proc {
    guard: ChildGuard,
    lines: mpsc::Receiver<String>,
    _config: Scratch,
}

/// A file removed on drop.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Proc {
    /// `sluice run -c <config>` pinned to `core`, inside `ns` if given;
    /// returns once it has printed its first line.
    fn start(ns: Option<&Netns>, core: usize, config: &str) -> Proc {
        let path = std::env::temp_dir().join(format!("{}.toml", unique("vbench")));
        std::fs::write(&path, config).expect("write config");
        let core = core.to_string();
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args([
                    "netns",
                    "exec",
                    ns.name(),
                    "nice",
                    "-n",
                    "-20",
                    "taskset",
                    "-c",
                    &core,
                ]);
                c
            }
            None => {
                let mut c = Command::new("nice");
                c.args(["-n", "-20", "taskset", "-c", &core]);
                c
            }
        };
        // `ip netns exec`, `nice` and `taskset` exec, so the PID is sluice's.
        // At nice -20 a compile elsewhere on the machine gets ~1% of a core
        // a sluice process wants.
        cmd.args([SLUICE, "run", "--duration", "600", "-c"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start sluice");
        let (tx, lines) = mpsc::channel();
        let out: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for stream in out {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        let p = Proc {
            guard: ChildGuard(child),
            lines,
            _config: Scratch(path),
        };
        let first = p
            .lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        assert!(
            first.starts_with("sluice: "),
            "sluice did not start: {first}\n{config}"
        );
        p
    }

    /// SIGTERM by PID; everything it printed.
    fn stop(self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.guard.0.id().to_string()])
            .status();
        let _ = self.guard.wait_timeout(Duration::from_secs(10));
        let mut out = String::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// A device's counter, read inside `ns`.
fn counter(ns: &Netns, dev: &str, name: &str) -> u64 {
    ns.run(&["cat", &format!("/sys/class/net/{dev}/statistics/{name}")])
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Per-CPU jiffies from /proc/stat: (busy, user+nice, system, softirq+irq, total).
fn cpu_times(cpu: usize) -> [u64; 5] {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let tag = format!("cpu{cpu} ");
    let Some(line) = stat.lines().find(|l| l.starts_with(&tag)) else {
        return [0; 5];
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let g = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let (user, sys, irq) = (g(0) + g(1), g(2), g(5) + g(6));
    let total: u64 = (0..8).map(g).sum();
    [user + sys + irq + g(7), user, sys, irq, total]
}

/// The share of `[busy, user, sys, irq]` between two readings.
fn shares(a: [u64; 5], b: [u64; 5]) -> [f64; 4] {
    let t = (b[4] - a[4]).max(1) as f64;
    [0, 1, 2, 3].map(|i| (b[i] - a[i]) as f64 / t)
}

struct Window {
    /// The DUT process's CPU time (all threads) per second of the window.
    dut_proc: f64,
    offered: f64,
    forwarded: f64,
    dut_cpu: [f64; 4],
    gen_cpu: [f64; 4],
}

/// Where to count: the generator's device in GEN, the sink's in SINK.
struct Counters<'a> {
    gen_ns: &'a Netns,
    gen_dev: String,
    sink_ns: &'a Netns,
    sink_dev: String,
}

impl Counters<'_> {
    fn read(&self) -> (u64, u64) {
        let sent = counter(self.gen_ns, &self.gen_dev, "tx_packets")
            + counter(self.gen_ns, &self.gen_dev, "tx_dropped");
        (sent, counter(self.sink_ns, &self.sink_dev, "rx_packets"))
    }
}

/// utime + stime of process `pid`, in seconds.
fn proc_cpu(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return 0.0 };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 here.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ticks as f64 / 100.0
}

fn measure(
    c: &Counters<'_>,
    gen_core: usize,
    dut_core: usize,
    dut_pid: Option<u32>,
) -> Vec<Window> {
    let secs: f64 = env_or("VETH_BENCH_WINDOW_S", 3.0);
    let n: usize = env_or("VETH_BENCH_WINDOWS", 3);
    std::thread::sleep(Duration::from_secs(1));
    let mut windows = Vec::new();
    for _ in 0..n {
        let (s0, r0) = c.read();
        let (d0, g0) = (cpu_times(dut_core), cpu_times(gen_core));
        let p0 = proc_cpu(dut_pid);
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        let (s1, r1) = c.read();
        let (d1, g1) = (cpu_times(dut_core), cpu_times(gen_core));
        let dt = t0.elapsed().as_secs_f64();
        let p1 = proc_cpu(dut_pid);
        windows.push(Window {
            dut_proc: (p1 - p0) / dt,
            offered: (s1 - s0) as f64 / dt,
            forwarded: (r1 - r0) as f64 / dt,
            dut_cpu: shares(d0, d1),
            gen_cpu: shares(g0, g1),
        });
    }
    windows
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The generator: a pg stream cross-connected to af-xdp on `device`.
fn generator_config(core: usize, device: &str, size: &str, src_mac: &str, dst_mac: &str) -> String {
    format!(
        "[workers]\ncores = [{core}]\n\n\
         [[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n\n\
         [[interface]]\nname = \"out\"\ndriver = \"af-xdp\"\ndevice = \"{device}\"\n\n\
         [[xconnect]]\nfrom = \"pg0\"\nto = \"out\"\n\n\
         [[stream]]\nname = \"bench\"\ninterface = \"pg0\"\nsize = {size}\n\
         src-mac = \"{src_mac}\"\ndst-mac = \"{dst_mac}\"\n\
         src-ip = \"10.1.1.2\"\ndst-ip = \"10.2.0.0/24\"\nsrc-port = \"1024-2047\"\n\
         dst-port = 4789\nflows = 256\n"
    )
}

/// What the DUT's `show runtime` says: cycles per forwarded packet over
/// the nodes that carried packets, and the input's vectors per call.
struct Runtime {
    cycles_per_packet: f64,
    vectors_per_call: f64,
    drops: String,
    /// The TSC's rate, as the DUT printed it.
    hz: f64,
}

fn parse_runtime(out: &str, input: &str) -> Runtime {
    let mut cycles = 0.0;
    let mut vpc = 0.0;
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() != 7 {
            continue;
        }
        let (Ok(vectors), Ok(clocks), Ok(per_call)) = (
            f[3].parse::<f64>(),
            f[5].parse::<f64>(),
            f[6].parse::<f64>(),
        ) else {
            continue;
        };
        if vectors > 0.0 {
            cycles += vectors * clocks;
        }
        if f[0] == input {
            vpc = per_call;
        }
    }
    let forwarded = out
        .lines()
        .find(|l| l.contains(" packets in ") && l.contains("Mpps in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    // Error counters: the lines of `show errors` with a count first.
    let drops = out
        .lines()
        .skip_while(|l| !l.contains("Count  Node"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ");
    let hz = out
        .split("TSC ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|g| g.parse::<f64>().ok())
        .map_or(0.0, |g| g * 1e9);
    Runtime {
        hz,
        cycles_per_packet: if forwarded > 0.0 {
            cycles / forwarded
        } else {
            0.0
        },
        vectors_per_call: vpc,
        drops,
    }
}

fn mac_in(ns: &Netns, dev: &str) -> String {
    ns.run(&["cat", &format!("/sys/class/net/{dev}/address")])
        .trim()
        .to_string()
}

/// A namespace with a veth leg `eth0` (the other leg left in the root
/// namespace), addressed, up.
fn leg(addr: &str) -> (Veth, Netns) {
    let v = Veth::new();
    let ns = Netns::new();
    run(&["ip", "link", "set", &v.inner, "netns", ns.name()]);
    ns.run(&["ip", "link", "set", &v.inner, "name", "eth0"]);
    ns.run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.run(&["ip", "link", "set", "eth0", "up"]);
    ns.run(&["ip", "addr", "add", addr, "dev", "eth0"]);
    (v, ns)
}

struct Result1 {
    case: &'static str,
    size: &'static str,
    windows: Vec<Window>,
    runtime: Option<Runtime>,
}

fn kernel_case(size: &'static str, gen_core: usize, dut_core: usize) -> Result1 {
    let (va, source) = leg("10.1.1.2/24");
    let (vb, sink) = leg("10.1.2.2/24");
    let router = Netns::new();
    for (dev, addr) in [(&va.outer, "10.1.1.1/24"), (&vb.outer, "10.1.2.1/24")] {
        run(&["ip", "link", "set", dev, "netns", router.name()]);
        router.run(&["ip", "link", "set", dev, "up"]);
        router.run(&["ip", "addr", "add", addr, "dev", dev]);
    }
    router.run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    router.run(&[
        "ip",
        "neigh",
        "replace",
        "10.1.2.2",
        "lladdr",
        SINK_NEXT_HOP,
        "dev",
        &vb.outer,
        "nud",
        "permanent",
    ]);
    router.run(&["ip", "route", "add", "10.2.0.0/16", "via", "10.1.2.2"]);
    // The router's receive softirq (and so its forwarding and the sink's
    // drop) on the DUT core; the generator's transmit stays on its own.
    router.run(&[
        "sh",
        "-c",
        &format!(
            "echo {:x} > /sys/class/net/{}/queues/rx-0/rps_cpus",
            1u64 << dut_core,
            va.outer
        ),
    ]);
    let dst = mac_in(&router, &va.outer);
    let src = mac_in(&source, "eth0");
    let g = Proc::start(
        Some(&source),
        gen_core,
        &generator_config(gen_core, "eth0", size_value(size), &src, &dst),
    );
    let c = Counters {
        gen_ns: &source,
        gen_dev: "eth0".into(),
        sink_ns: &sink,
        sink_dev: "eth0".into(),
    };
    let windows = measure(&c, gen_core, dut_core, None);
    drop(g);
    drop((va, vb));
    Result1 {
        case: "kernel ip_forward",
        size,
        windows,
        runtime: None,
    }
}

fn sluice_veth_case(
    driver: &'static str,
    size: &'static str,
    gen_core: usize,
    dut_core: usize,
) -> Result1 {
    let (va, source) = leg("10.1.1.2/24");
    let (vb, sink) = leg("10.1.2.2/24");
    let config = format!(
        "[workers]\ncores = [{dut_core}]\n\n\
         [[interface]]\nname = \"a\"\ndriver = \"{driver}\"\ndevice = \"{}\"\naddress = [\"10.1.1.1/24\"]\n\n\
         [[interface]]\nname = \"b\"\ndriver = \"{driver}\"\ndevice = \"{}\"\naddress = [\"10.1.2.1/24\"]\n\n\
         [[route]]\nprefix = \"10.2.0.0/16\"\ninterface = \"b\"\nvia-mac = \"{SINK_NEXT_HOP}\"\n",
        va.outer, vb.outer
    );
    let dut = Proc::start(None, dut_core, &config);
    let dst = std::fs::read_to_string(format!("/sys/class/net/{}/address", va.outer))
        .unwrap_or_default()
        .trim()
        .to_string();
    let src = mac_in(&source, "eth0");
    let g = Proc::start(
        Some(&source),
        gen_core,
        &generator_config(gen_core, "eth0", size_value(size), &src, &dst),
    );
    let c = Counters {
        gen_ns: &source,
        gen_dev: "eth0".into(),
        sink_ns: &sink,
        sink_dev: "eth0".into(),
    };
    let windows = measure(&c, gen_core, dut_core, Some(dut.guard.0.id()));
    drop(g);
    let out = dut.stop();
    let runtime = parse_runtime(&out, "a-input");
    drop((va, vb));
    Result1 {
        case: match driver {
            "af-xdp" => "sluice af-xdp",
            _ => "sluice af-packet",
        },
        size,
        windows,
        runtime: Some(runtime),
    }
}

fn sluice_tap_case(size: &'static str, gen_core: usize, dut_core: usize) -> Result1 {
    let source = Netns::new();
    let sink = Netns::new();
    let (tg, ts) = (unique("tg"), unique("ts"));
    let sluice_mac = "02:5c:00:00:01:01";
    let config = format!(
        "[workers]\ncores = [{dut_core}]\n\n\
         [[interface]]\nname = \"{tg}\"\ndriver = \"tap\"\nnetns = \"{}\"\nmac = \"{sluice_mac}\"\naddress = [\"10.1.1.1/24\"]\n\n\
         [[interface]]\nname = \"{ts}\"\ndriver = \"tap\"\nnetns = \"{}\"\nmac = \"02:5c:00:00:02:01\"\naddress = [\"10.1.2.1/24\"]\n\n\
         [[route]]\nprefix = \"10.2.0.0/16\"\ninterface = \"{ts}\"\nvia-mac = \"{SINK_NEXT_HOP}\"\n",
        source.name(),
        sink.name()
    );
    let dut = Proc::start(None, dut_core, &config);
    for (ns, tap, addr) in [(&source, &tg, "10.1.1.2/24"), (&sink, &ts, "10.1.2.2/24")] {
        ns.run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.run(&["ip", "link", "set", tap, "up"]);
        ns.run(&["ip", "addr", "add", addr, "dev", tap]);
    }
    let src = mac_in(&source, &tg);
    let g = Proc::start(
        Some(&source),
        gen_core,
        &generator_config(gen_core, &tg, size_value(size), &src, sluice_mac),
    );
    let c = Counters {
        gen_ns: &source,
        gen_dev: tg.clone(),
        sink_ns: &sink,
        sink_dev: ts.clone(),
    };
    let windows = measure(&c, gen_core, dut_core, Some(dut.guard.0.id()));
    drop(g);
    let out = dut.stop();
    let runtime = parse_runtime(&out, &format!("{tg}-input"));
    Result1 {
        case: "sluice tap",
        size,
        windows,
        runtime: Some(runtime),
    }
}

fn size_value(size: &str) -> &'static str {
    if size == "imix" { "\"imix\"" } else { "64" }
}

fn main() {
    // `cargo test --benches` runs this with no `--bench`: nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !require_root() || !require("ip") || !require("taskset") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gen_core: usize = env_or("VETH_BENCH_GEN_CORE", 0);
    let dut_core: usize = env_or("VETH_BENCH_DUT_CORE", 1);
    if cores < 2 || gen_core == dut_core {
        eprintln!("skipping: needs two distinct cores for generator and DUT");
        return;
    }
    let cases: Vec<String> = std::env::var("VETH_BENCH_CASES")
        .unwrap_or_else(|_| "kernel,af-xdp,af-packet,tap".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    println!(
        "veth_forward: generator sluice (pg -> af-xdp) on core {gen_core}, DUT on core {dut_core}; \
         {} x {} s windows after 1 s warm-up, medians",
        env_or("VETH_BENCH_WINDOWS", 3usize),
        env_or("VETH_BENCH_WINDOW_S", 3.0f64)
    );
    println!(
        "load average at the start: {} (other work on these cores lowers every figure)",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut results = Vec::new();
    for size in ["64", "imix"] {
        for case in &cases {
            let r = match case.as_str() {
                "kernel" => kernel_case(size, gen_core, dut_core),
                "af-xdp" => sluice_veth_case("af-xdp", size, gen_core, dut_core),
                "af-packet" => sluice_veth_case("af-packet", size, gen_core, dut_core),
                "tap" => sluice_tap_case(size, gen_core, dut_core),
                other => panic!("unknown case {other}"),
            };
            print_row(&r, None, results.is_empty());
            results.push(r);
        }
    }
    println!();
    println!(
        "Summary (Mpps, medians; offered = GEN device sent+dropped, fwd = SINK device received; \
         x kern = fwd / kernel's at the same size; DUT core busy from /proc/stat; sluice = the \
         DUT process's CPU time per second; cyc/pkt = TSC cycles per forwarded packet in the \
         nodes that carried packets, whole run; cap = TSC rate / cyc/pkt; vec/cl = input \
         vectors per call). Load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    header();
    for r in &results {
        let kernel = results
            .iter()
            .find(|k| k.size == r.size && k.case.starts_with("kernel"))
            .map(|k| median(k.windows.iter().map(|w| w.forwarded).collect()));
        print_row(r, kernel, false);
    }
    for r in &results {
        if let Some(rt) = &r.runtime
            && !rt.drops.is_empty()
        {
            println!("{} {}: sluice error counters: {}", r.case, r.size, rt.drops);
        }
    }
}

fn header() {
    println!(
        "{:<18} {:>5} {:>9} {:>9} {:>6} {:>6} | {:>26} {:>6} | {:>8} | {:>9} {:>8} {:>7}",
        "DUT",
        "size",
        "offered",
        "fwd Mpps",
        "loss%",
        "x kern",
        "DUT core busy (usr/sys/si)",
        "sluice",
        "gen core",
        "cyc/pkt",
        "cap Mpps",
        "vec/cl"
    );
}

fn print_row(r: &Result1, kernel: Option<f64>, first: bool) {
    if first {
        header();
    }
    let m = |f: fn(&Window) -> f64| median(r.windows.iter().map(f).collect());
    let offered = m(|w| w.offered);
    let fwd = m(|w| w.forwarded);
    let loss = if offered > 0.0 {
        100.0 * (1.0 - fwd / offered).max(0.0)
    } else {
        0.0
    };
    let x = kernel.map_or("-".to_string(), |k| format!("{:.2}", fwd / k.max(1.0)));
    let dut =
        [0, 1, 2, 3].map(|i| median(r.windows.iter().map(|w| w.dut_cpu[i]).collect()) * 100.0);
    let gen_busy = m(|w| w.gen_cpu[0]) * 100.0;
    let proc = match r.runtime {
        Some(_) => format!("{:.0}%", m(|w| w.dut_proc) * 100.0),
        None => "-".into(),
    };
    let (cyc, cap, vpc) = match &r.runtime {
        Some(rt) if rt.cycles_per_packet > 0.0 => (
            format!("{:.0}", rt.cycles_per_packet),
            format!("{:.2}", rt.hz / rt.cycles_per_packet / 1e6),
            format!("{:.1}", rt.vectors_per_call),
        ),
        _ => ("-".into(), "-".into(), "-".into()),
    };
    println!(
        "{:<18} {:>5} {:>9.3} {:>9.3} {:>6.1} {:>6} | {:>5.0}% ({:>3.0}/{:>3.0}/{:>3.0})        {:>6} | {:>7.0}% | {:>9} {:>8} {:>7}",
        r.case,
        r.size,
        offered / 1e6,
        fwd / 1e6,
        loss,
        x,
        dut[0],
        dut[1],
        dut[2],
        dut[3],
        proc,
        gen_busy,
        cyc,
        cap,
        vpc
    );
}
