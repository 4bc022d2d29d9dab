//! `sluice`: run the forwarder (the embedded demo or a configuration file).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_control::{Config, DEMO_CONFIG, Dataplane};

mod bench;
mod ctl;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A user-space vector packet forwarder"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the forwarder: the embedded demo, or the graph a config file describes.
    Run {
        /// TOML configuration; without it, the embedded demo runs.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Stop after this many seconds even if inputs are not done.
        #[arg(long)]
        duration: Option<f64>,
        /// Override the number of workers.
        #[arg(long)]
        workers: Option<usize>,
        /// Print the configuration the demo uses, and exit.
        #[arg(long)]
        print_config: bool,
        /// The control socket (`sluice ctl`); `none` for no control API.
        #[arg(long)]
        socket: Option<String>,
        /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464).
        #[arg(long)]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Run named scenarios (graph + traffic) several times and print their
    /// figures; `list` names them.
    Bench {
        /// Scenarios to run (all when none); `list` to list them.
        names: Vec<String>,
        /// Runs per scenario.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// A few hundred thousand packets a run instead of ten million.
        #[arg(long)]
        quick: bool,
        /// One JSON object per scenario, one a line.
        #[arg(long)]
        json: bool,
        /// Flag (exit 1) any scenario more than 10 % slower than in this
        /// earlier `--json` output.
        #[arg(long)]
        compare: Option<PathBuf>,
        /// Run every scenario on 1, 2, ... up to this many workers and
        /// print the scaling: Mpps(N) / (N x Mpps(1)).
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// Check what this host offers the forwarder (and a configuration's
    /// interfaces and cores), one actionable line a finding.
    Doctor {
        /// A configuration whose interfaces and cores to check too.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The control socket it would use.
        #[arg(long, default_value = sluice_control::server::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Ask a running Sluice: `show interface`, `show runtime`, `show errors`,
    /// `show ip fib [table N]`, `show ip neighbors`, `show l2fib`, `show graph`,
    /// `show buffers`, `show version`,
    /// `trace add NODE N`, `show trace`, `clear trace`, `clear runtime`,
    /// `clear interfaces`,
    /// `ip route add PREFIX [via ADDR] [via-mac MAC] dev IF [table N]`,
    /// `ip route add PREFIX drop|prohibit|unreachable [table N]`,
    /// `ip route del PREFIX [table N]`, `set interface state NAME up|down`.
    Ctl {
        /// The control socket of the Sluice to ask.
        #[arg(long, default_value = sluice_control::server::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Print the answer as JSON, for scripts.
        #[arg(long)]
        json: bool,
        /// The command, in words.
        /// Without words: an interactive prompt (one command a line, `quit`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ctl {
            socket,
            json,
            words,
        } => ctl::run(&socket, json, &words),
        Command::Doctor { config, socket } => doctor(config.as_deref(), &socket),
        Command::Bench {
            names,
            runs,
            quick,
            json,
            compare,
            workers,
        } => bench::run(&names, runs, quick, json, compare.as_deref(), workers).map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Command::Run {
            config,
            duration,
            workers,
            print_config,
            socket,
            metrics,
        } => {
            let (src, origin) = match &config {
                Some(path) => (
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                    path.display().to_string(),
                ),
                None => (DEMO_CONFIG.to_string(), "embedded demo".to_string()),
            };
            if print_config {
                print!("{src}");
                return Ok(ExitCode::SUCCESS);
            }
            let mut cfg = Config::parse(&src).with_context(|| format!("{origin} refused"))?;
            if let Some(w) = workers {
                anyhow::ensure!((1..=256).contains(&w), "--workers must be 1 to 256");
                cfg.workers = w;
            }
            run(cfg, &origin, duration, socket.as_deref(), metrics)
        }
    }
}

/// `sluice doctor`: exit 0 when nothing fails (warnings allowed), 1 when
/// something would not work.
fn doctor(config: Option<&std::path::Path>, socket: &std::path::Path) -> anyhow::Result<ExitCode> {
    use sluice_control::doctor::{Level, check};
    let cfg = match config {
        Some(p) => {
            let src = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            Some(Config::parse(&src).with_context(|| format!("{} refused", p.display()))?)
        }
        None => None,
    };
    let findings = check(cfg.as_ref(), socket);
    for f in &findings {
        println!("{f}");
    }
    Ok(if findings.iter().any(|f| f.level == Level::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Binds the control socket: the one asked for (failing loudly), or the
/// default one if it can be had (a second Sluice, or one without the
/// rights to /run, runs without an API and says so).
fn control_socket(
    asked: Option<&str>,
) -> anyhow::Result<Option<(std::os::unix::net::UnixListener, PathBuf)>> {
    use sluice_control::server::{DEFAULT_SOCKET, bind};
    match asked {
        Some("none") => Ok(None),
        Some(path) => {
            let path = PathBuf::from(path);
            let l = bind(&path)?;
            Ok(Some((l, path)))
        }
        None => {
            let path = PathBuf::from(DEFAULT_SOCKET);
            match bind(&path) {
                Ok(l) => Ok(Some((l, path))),
                Err(e) => {
                    eprintln!("sluice: no control API: {e} (use --socket PATH)");
                    Ok(None)
                }
            }
        }
    }
}

fn run(
    cfg: Config,
    origin: &str,
    duration: Option<f64>,
    socket: Option<&str>,
    metrics: Option<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let limit = match duration {
        Some(d) if d > 0.0 && d.is_finite() => Some(Duration::from_secs_f64(d)),
        Some(d) => anyhow::bail!("--duration {d}: give a positive number of seconds"),
        None => None,
    };
    let dp = Dataplane::build(&cfg)?;
    let control = control_socket(socket)?;
    let metrics = match metrics {
        Some(addr) => {
            let l = sluice_control::metrics::bind(addr)
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            println!("sluice: Prometheus metrics on http://{addr}/metrics");
            Some(l)
        }
        None => None,
    };
    let backing = dp.pool().backing();
    println!(
        "sluice: {origin}: {} interfaces, {} routes, {} worker(s); buffers: {} x 2304 B, {backing}",
        cfg.interfaces.len(),
        cfg.routes.len(),
        cfg.workers,
        dp.pool().capacity(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot handle signals")?;
    }
    if let Some((_, path)) = &control {
        println!("sluice: control API on {}", path.display());
    }
    let report = dp.run_with_control(stop, limit, control, metrics)?;
    println!();
    println!("{}", report.runtime);
    println!("{}", report.interfaces);
    println!("{}", report.errors);
    println!(
        "{} packets in {:.3} s: {:.2} Mpps in, {} dropped with a counter; TSC {:.2} GHz",
        report.packets_in,
        report.seconds,
        report.mpps(),
        report.packets_dropped,
        sluice_graph::clock::hz() / 1e9
    );
    let (total, free) = report.buffers;
    if free != total || report.panics > 0 {
        eprintln!(
            "sluice: BUG: {} of {total} buffers did not come back, {} worker(s) panicked",
            total - free,
            report.panics
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("buffers: all {total} back in the pool");
    Ok(ExitCode::SUCCESS)
}
