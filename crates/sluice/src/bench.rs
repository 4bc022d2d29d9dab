//! `sluice bench`: named scenarios, each a graph and a traffic profile, run
//! several times; median and spread of Mpps, cycles per packet in total and
//! per node, vectors per call — and how each figure was made.
//!
//! The generator writes every packet's bytes (addresses, ports, lengths and
//! payload vary with the flows) and the sinks read each header they free,
//! so no figure comes from shuffling pointers.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use serde::Serialize;
use sluice_control::{Config, Dataplane};

/// One scenario: a name, what it measures, and its configuration (the
/// generator's `count` is `{COUNT}`, set by `--quick` or not).
struct Scenario {
    name: &'static str,
    what: &'static str,
    config: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "ip4-route",
        what: "IPv4 forwarding: ethernet-input, ip4-input, ip4-lookup, ip4-rewrite; IMIX, 10k UDP flows",
        config: r#"
[[interface]]
name = "pg0"
driver = "pg"
[[interface]]
name = "sink0"
driver = "sink"
[[interface]]
name = "sink1"
driver = "sink"
[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:01:01"
[[route]]
prefix = "10.2.0.0/16"
interface = "sink1"
via-mac = "02:00:00:00:02:01"
[[stream]]
name = "imix"
interface = "pg0"
count = {COUNT}
size = "imix"
src-ip = "10.0.0.0/16"
dst-ip = "10.1.0.0-10.2.255.255"
protocol = "udp"
src-port = "1024-65535"
dst-port = "1-1024"
flows = 10_000
"#,
    },
    Scenario {
        name: "ip4-route-handoff",
        what: "ip4-route with handoff: each packet hashed (Toeplitz, 5-tuple) and processed by the worker owning its flow",
        config: r#"
[workers]
handoff = true
[[interface]]
name = "pg0"
driver = "pg"
[[interface]]
name = "sink0"
driver = "sink"
[[interface]]
name = "sink1"
driver = "sink"
[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:01:01"
[[route]]
prefix = "10.2.0.0/16"
interface = "sink1"
via-mac = "02:00:00:00:02:01"
[[stream]]
name = "imix"
interface = "pg0"
count = {COUNT}
size = "imix"
src-ip = "10.0.0.0/16"
dst-ip = "10.1.0.0-10.2.255.255"
protocol = "udp"
src-port = "1024-65535"
dst-port = "1-1024"
flows = 10_000
"#,
    },
    Scenario {
        name: "ip4-route-64b",
        what: "IPv4 forwarding as ip4-route, 64-byte frames",
        config: r#"
[[interface]]
name = "pg0"
driver = "pg"
[[interface]]
name = "sink0"
driver = "sink"
[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:01:01"
[[stream]]
name = "small"
interface = "pg0"
count = {COUNT}
size = 64
src-ip = "10.0.0.0/16"
dst-ip = "10.1.0.0/16"
protocol = "udp"
src-port = "1024-65535"
dst-port = "1-1024"
flows = 10_000
"#,
    },
    Scenario {
        name: "l2-bridge",
        what: "L2 bridge with learning: l2-input to one of two ports by static MAC; IMIX, 1k flows",
        config: r#"
[[interface]]
name = "pg0"
driver = "pg"
[[interface]]
name = "sink0"
driver = "sink"
[[interface]]
name = "sink1"
driver = "sink"
[[bridge]]
id = 1
port = [{ interface = "pg0" }, { interface = "sink0" }, { interface = "sink1" }]
static-mac = [{ mac = "02:00:00:00:0a:01", interface = "sink0" }, { mac = "02:00:00:00:0b:01", interface = "sink1" }]
[[stream]]
name = "to-a"
interface = "pg0"
count = {HALF}
size = "imix"
dst-mac = "02:00:00:00:0a:01"
src-ip = "10.0.0.0/16"
dst-ip = "10.1.0.0/16"
flows = 1000
[[stream]]
name = "to-b"
interface = "pg0"
count = {HALF}
size = "imix"
dst-mac = "02:00:00:00:0b:01"
src-ip = "10.0.0.0/16"
dst-ip = "10.2.0.0/16"
flows = 1000
"#,
    },
    Scenario {
        name: "l2-xconnect",
        what: "L2 cross-connect, port to port; IMIX",
        config: r#"
[[interface]]
name = "pg0"
driver = "pg"
[[interface]]
name = "sink0"
driver = "sink"
[[xconnect]]
from = "pg0"
to = "sink0"
[[stream]]
name = "imix"
interface = "pg0"
count = {COUNT}
size = "imix"
src-ip = "10.0.0.0/16"
dst-ip = "10.1.0.0/16"
flows = 1000
"#,
    },
];

/// One scenario's figures, as `--json` prints them (names kept stable).
#[derive(Debug, Serialize)]
pub struct Figures {
    scenario: String,
    what: String,
    /// Worker threads it ran on.
    workers: usize,
    packets: u64,
    runs: usize,
    mpps_median: f64,
    mpps_min: f64,
    mpps_max: f64,
    /// Mpps(N) / (N x Mpps(1)), medians of runs interleaved with the
    /// one-worker runs; 1 for one worker.
    scaling: f64,
    cycles_per_packet_median: f64,
    vectors_per_call: f64,
    /// Packets that crossed to another worker, over packets in.
    handed_off: f64,
    /// Node name → cycles per packet (median over runs).
    nodes: std::collections::BTreeMap<String, f64>,
    /// Peers doing the same work in the same run (none yet for these).
    peers: Vec<Peer>,
    /// How the figures were made.
    cpu: String,
    tsc_ghz: f64,
    huge_pages: bool,
    vector_size: usize,
}

/// A peer's figure beside Sluice's.
#[derive(Debug, Serialize)]
pub struct Peer {
    name: String,
    mpps_median: f64,
    ratio: f64,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// What the runs of one scenario on one worker count gathered.
#[derive(Default)]
struct Samples {
    mpps: Vec<f64>,
    per_node: std::collections::BTreeMap<String, Vec<f64>>,
    totals: Vec<f64>,
    vpc: Vec<f64>,
    handed_off: Vec<f64>,
    huge: bool,
    packets: u64,
}

impl Samples {
    /// One run of `cfg`.
    fn run(&mut self, name: &str, cfg: &Config) -> anyhow::Result<()> {
        let dp = Dataplane::build(cfg)?;
        self.huge = dp.pool().backing().huge_pages;
        let report = dp.run(Arc::new(AtomicBool::new(false)), None)?;
        let (total, free) = report.buffers;
        if total != free || report.panics > 0 {
            bail!("scenario {name}: buffers leaked or a worker panicked");
        }
        self.packets = report.packets_in;
        self.mpps.push(report.mpps());
        let n = report.packets_in.max(1) as f64;
        let mut sum = 0.0;
        for r in &report.rows {
            if r.vectors == 0 {
                continue;
            }
            sum += r.clocks_total as f64 / n;
            self.per_node
                .entry(r.name.clone())
                .or_default()
                .push(r.clocks());
        }
        self.totals.push(sum);
        if let Some(input) = report.rows.iter().find(|r| r.name == "pg0-input") {
            self.vpc
                .push(input.vectors as f64 / input.calls.max(1) as f64);
        }
        let relayed = report
            .rows
            .iter()
            .find(|r| r.name == sluice_control::dataplane::HANDOFF_INPUT)
            .map_or(0, |r| r.vectors);
        self.handed_off.push(relayed as f64 / n);
        Ok(())
    }

    fn figures(mut self, s: &Scenario, cfg: &Config, runs: usize, one: f64) -> Figures {
        let (lo, hi) = (
            self.mpps.iter().copied().fold(f64::INFINITY, f64::min),
            self.mpps.iter().copied().fold(0.0, f64::max),
        );
        let mpps = median(&mut self.mpps);
        Figures {
            scenario: s.name.to_string(),
            what: s.what.to_string(),
            workers: cfg.workers,
            packets: self.packets,
            runs,
            mpps_median: mpps,
            mpps_min: lo,
            mpps_max: hi,
            scaling: if cfg.workers == 1 {
                1.0
            } else {
                mpps / (cfg.workers as f64 * one.max(1e-9))
            },
            cycles_per_packet_median: median(&mut self.totals),
            vectors_per_call: median(&mut self.vpc),
            handed_off: median(&mut self.handed_off),
            nodes: self
                .per_node
                .into_iter()
                .map(|(k, mut v)| (k, median(&mut v)))
                .collect(),
            peers: Vec::new(),
            cpu: cpu_model(),
            tsc_ghz: sluice_graph::clock::hz() / 1e9,
            huge_pages: self.huge,
            vector_size: cfg.burst,
        }
    }
}

/// Runs one scenario `runs` times on each worker count from 1 to
/// `workers` (runs interleaved, so that a busy moment of the machine
/// falls on every count alike), with `count` generated packets per worker.
fn run_scenario(
    s: &Scenario,
    count: u64,
    runs: usize,
    workers: usize,
    burst: Option<usize>,
) -> anyhow::Result<Vec<Figures>> {
    let configs: Vec<Config> = (1..=workers)
        .map(|k| {
            let total = count * k as u64;
            let src = s
                .config
                .replace("{COUNT}", &total.to_string())
                .replace("{HALF}", &(total / 2).to_string());
            let mut cfg = Config::parse(&src).with_context(|| format!("scenario {}", s.name))?;
            cfg.workers = k;
            if let Some(b) = burst {
                cfg.burst = b;
            }
            Ok(cfg)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut samples: Vec<Samples> = configs.iter().map(|_| Samples::default()).collect();
    for _ in 0..runs {
        for (cfg, smp) in configs.iter().zip(&mut samples) {
            smp.run(s.name, cfg)?;
        }
    }
    let one = median(&mut samples[0].mpps.clone());
    Ok(samples
        .into_iter()
        .zip(&configs)
        .map(|(smp, cfg)| smp.figures(s, cfg, runs, one))
        .collect())
}

/// What `sluice bench` is asked.
#[derive(Debug, Default)]
pub struct Options {
    /// Scenarios (all when empty; `list` lists them).
    pub names: Vec<String>,
    /// Runs per scenario.
    pub runs: usize,
    /// A few hundred thousand packets a run.
    pub quick: bool,
    /// JSON lines instead of text.
    pub json: bool,
    /// An earlier `--json` output to compare with.
    pub compare: Option<std::path::PathBuf>,
    /// Up to this many workers.
    pub workers: usize,
    /// Where to write the Markdown report and its charts.
    pub report: Option<std::path::PathBuf>,
    /// Vector sizes to run each scenario at (the configuration's when
    /// empty).
    pub vector_sizes: Vec<usize>,
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    date_of(days)
}

/// The date `days` after 1970-01-01.
fn date_of(days: i64) -> String {
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Scenarios more than `SLOWER` slower than the baseline are flagged.
const SLOWER: f64 = 0.10;

/// Reads a baseline: `--json` output of an earlier run (one object a line).
fn baseline(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::HashMap<(String, usize, usize), f64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read baseline {}", path.display()))?;
    let mut out = std::collections::HashMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a bench result", path.display(), i + 1))?;
        let (Some(name), Some(mpps)) = (v["scenario"].as_str(), v["mpps_median"].as_f64()) else {
            bail!(
                "{} line {}: no scenario or mpps_median",
                path.display(),
                i + 1
            );
        };
        let workers = v["workers"].as_u64().unwrap_or(1) as usize;
        let vector = v["vector_size"].as_u64().unwrap_or(256) as usize;
        out.insert((name.to_string(), workers, vector), mpps);
    }
    Ok(out)
}

/// `sluice bench`; false when `compare` found a scenario slower than its
/// baseline by more than 10 %.
pub fn run(o: &Options) -> anyhow::Result<bool> {
    let Options {
        names,
        runs,
        quick,
        json,
        workers,
        ..
    } = o;
    let (runs, quick, json, workers) = (*runs, *quick, *json, *workers);
    let base = o.compare.as_deref().map(baseline).transpose()?;
    let mut regressions = Vec::new();
    if names.iter().any(|n| n == "list") {
        for s in SCENARIOS {
            println!("{:<16} {}", s.name, s.what);
        }
        return Ok(true);
    }
    let chosen: Vec<&Scenario> = if names.is_empty() {
        SCENARIOS.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                SCENARIOS.iter().find(|s| s.name == n).with_context(|| {
                    let all: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                    format!("no scenario `{n}` (there are: {})", all.join(", "))
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    if !(1..=100).contains(&runs) {
        bail!("--runs {runs}: give 1 to 100");
    }
    if !(1..=256).contains(&workers) {
        bail!("--workers {workers}: give 1 to 256");
    }
    let sizes = if o.vector_sizes.is_empty() {
        vec![None]
    } else {
        if let Some(v) = o.vector_sizes.iter().find(|v| !(1..=256).contains(*v)) {
            bail!("--vector-sizes: {v} is not 1 to 256");
        }
        o.vector_sizes.iter().copied().map(Some).collect()
    };
    let count = if quick { 200_000 } else { 10_000_000 };
    let mut all = Vec::new();
    for (s, burst) in chosen
        .into_iter()
        .flat_map(|s| sizes.iter().map(move |b| (s, *b)))
    {
        for f in run_scenario(s, count, runs, workers, burst)? {
            if let Some(b) = base
                .as_ref()
                .and_then(|b| b.get(&(s.name.to_string(), f.workers, f.vector_size)))
                && f.mpps_median < b * (1.0 - SLOWER)
            {
                regressions.push(format!(
                    "{} on {} worker(s): {:.2} Mpps, {:.0} % below the baseline's {:.2}",
                    s.name,
                    f.workers,
                    f.mpps_median,
                    (1.0 - f.mpps_median / b) * 100.0,
                    b
                ));
            }
            if json {
                println!("{}", serde_json::to_string(&f)?);
            } else {
                print(&f);
            }
            all.push(serde_json::to_value(&f)?);
        }
    }
    if let Some(dir) = &o.report {
        let command: Vec<String> = std::env::args().collect();
        crate::report::write(dir, &all, &command.join(" "), &today())
            .with_context(|| format!("cannot write the report in {}", dir.display()))?;
        if !json {
            println!("report: {}", dir.join("README.md").display());
        }
    }
    if !json {
        println!(
            "{}, TSC {:.2} GHz; {}; medians over the runs",
            cpu_model(),
            sluice_graph::clock::hz() / 1e9,
            if workers == 1 {
                "one worker".to_string()
            } else {
                format!("1 to {workers} workers, runs interleaved, {count} packets a worker")
            },
        );
    }
    for r in &regressions {
        eprintln!("sluice bench: slower: {r}");
    }
    Ok(regressions.is_empty())
}

/// One scenario's figures as a person reads them.
fn print(f: &Figures) {
    let scaling = if f.workers > 1 {
        format!(
            ", {} workers: {:.2}x one worker, scaling {:.3}",
            f.workers,
            f.scaling * f.workers as f64,
            f.scaling
        )
    } else {
        String::new()
    };
    println!(
        "{:<18} {:>7.2} Mpps (min {:.2}, max {:.2}, {} runs of {} packets), {:.1} cycles/packet, {:.1} packets/vector{scaling}",
        f.scenario,
        f.mpps_median,
        f.mpps_min,
        f.mpps_max,
        f.runs,
        f.packets,
        f.cycles_per_packet_median,
        f.vectors_per_call
    );
    if f.handed_off > 0.0 {
        println!(
            "    {:.1} % of packets handed off to another worker",
            f.handed_off * 100.0
        );
    }
    for (node, c) in &f.nodes {
        println!("    {node:<24} {c:>7.1} cycles/packet");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_from_days_since_the_epoch() {
        assert_eq!(super::date_of(0), "1970-01-01");
        assert_eq!(super::date_of(11_016), "2000-02-29");
        assert_eq!(super::date_of(20_787), "2026-11-30");
        assert_eq!(super::date_of(-1), "1969-12-31");
    }
}
