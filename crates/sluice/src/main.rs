//! `sluice`: run the forwarder (the embedded demo or a configuration file).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice_control::state::StateFile;
use sluice_control::{Config, DEMO_CONFIG, Dataplane};

mod bench;
mod complete;
mod ctl;
mod report;

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
    ///
    /// With --config FILE, SIGHUP re-reads FILE and applies the difference
    /// (as `sluice ctl apply FILE`), or logs why not; SIGTERM stops it.
    Run {
        /// TOML configuration; without it, the embedded demo runs.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Keep the running configuration in this file: every accepted
        /// change is saved to it (atomically) before it is answered, and
        /// a Sluice started again with the same --state comes back as it
        /// was (the file wins over --config). Without it nothing is saved.
        #[arg(long)]
        state: Option<PathBuf>,
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
        /// Also write a Markdown summary and SVG charts into this directory.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Run every scenario at each of these vector sizes (e.g.
        /// `16,64,256`), for the report's Mpps-against-vector-size chart.
        #[arg(long, value_delimiter = ',')]
        vector_sizes: Vec<usize>,
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
    /// `ip route del PREFIX [table N]`, `set interface state NAME up|down`,
    /// `set interface ip address NAME ADDR/LEN [del]`,
    /// `ip neighbor add NAME IP MAC`, `ip neighbor del NAME IP`,
    /// `show running-config`, `show bridge-domain`,
    /// `diff FILE` (the plan), `apply FILE` (all of it, or nothing).
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
            report,
            vector_sizes,
        } => bench::run(&bench::Options {
            names,
            runs,
            quick,
            json,
            compare,
            workers,
            report,
            vector_sizes,
        })
        .map(|ok| {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }),
        Command::Run {
            config,
            state,
            duration,
            workers,
            print_config,
            socket,
            metrics,
        } => {
            if print_config {
                match &config {
                    Some(path) => print!(
                        "{}",
                        std::fs::read_to_string(path)
                            .with_context(|| format!("cannot read {}", path.display()))?
                    ),
                    None => print!("{DEMO_CONFIG}"),
                }
                return Ok(ExitCode::SUCCESS);
            }
            let state = state.map(StateFile::new);
            // A saved state is where the last run left off: it wins.
            let saved = match &state {
                Some(f) => f.load()?,
                None => None,
            };
            let (mut cfg, origin) = match (saved, &state) {
                (Some(cfg), Some(f)) => {
                    let origin = f.path().display().to_string();
                    println!(
                        "sluice: state {origin}: restoring the configuration saved there{}",
                        config
                            .as_ref()
                            .map_or(String::new(), |c| format!(" ({} is not read)", c.display()))
                    );
                    (cfg, origin)
                }
                _ => {
                    let (src, origin) = match &config {
                        Some(path) => (
                            std::fs::read_to_string(path)
                                .with_context(|| format!("cannot read {}", path.display()))?,
                            path.display().to_string(),
                        ),
                        None => (DEMO_CONFIG.to_string(), "embedded demo".to_string()),
                    };
                    let cfg = Config::parse(&src).with_context(|| format!("{origin} refused"))?;
                    (cfg, origin)
                }
            };
            if let Some(w) = workers {
                anyhow::ensure!((1..=256).contains(&w), "--workers must be 1 to 256");
                cfg.workers = w;
            }
            let opts = RunOptions {
                duration,
                socket: socket.as_deref(),
                metrics,
                state,
                reload: config,
                workers,
            };
            run(cfg, &origin, &opts)
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

/// How `sluice run` was asked to run, beyond the configuration.
struct RunOptions<'a> {
    duration: Option<f64>,
    socket: Option<&'a str>,
    metrics: Option<std::net::SocketAddr>,
    /// Where to keep the running configuration.
    state: Option<StateFile>,
    /// The file SIGHUP re-reads.
    reload: Option<PathBuf>,
    /// `--workers`, held over reloads.
    workers: Option<usize>,
}

/// On SIGHUP, re-reads `file` and applies it (all or nothing), logging
/// the plan carried out or why nothing was. Stops when its handle closes.
fn reload_on_hangup(
    file: PathBuf,
    running: Arc<sluice_control::running::Running>,
) -> anyhow::Result<(signal_hook::iterator::Handle, std::thread::JoinHandle<()>)> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .context("cannot handle SIGHUP")?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("sluice-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                let origin = file.display().to_string();
                let applied = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {origin}: {e}"))
                    .and_then(|text| running.apply(&text, &origin).map_err(|e| e.to_string()));
                match applied {
                    Ok(plan) => print!("sluice: SIGHUP: {origin} applied:\n{}", plan.text()),
                    Err(e) => eprintln!("sluice: SIGHUP: {e}"),
                }
            }
        })
        .context("cannot start the reload thread")?;
    Ok((handle, thread))
}

fn run(cfg: Config, origin: &str, opts: &RunOptions<'_>) -> anyhow::Result<ExitCode> {
    let RunOptions {
        duration,
        socket,
        metrics,
        ..
    } = *opts;
    let limit = match duration {
        Some(d) if d > 0.0 && d.is_finite() => Some(Duration::from_secs_f64(d)),
        Some(d) => anyhow::bail!("--duration {d}: give a positive number of seconds"),
        None => None,
    };
    let dp = Dataplane::build(&cfg)?;
    let running = dp.running();
    if let Some(w) = opts.workers {
        running.keep_workers(w);
    }
    if let Some(f) = &opts.state {
        running.persist_to(f.clone())?;
        println!("sluice: every change is saved to {}", f.path().display());
    }
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
    let reload = match &opts.reload {
        Some(file) => Some(reload_on_hangup(file.clone(), running)?),
        None => None,
    };
    let report = dp.run_with_control(stop, limit, control, metrics);
    if let Some((handle, thread)) = reload {
        handle.close();
        let _ = thread.join();
    }
    let report = report?;
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
