//! The control socket of a running Sluice: answers [`crate::api`]
//! requests while the workers forward.
//!
//! Nothing here ever blocks a worker: counters are read from the workers'
//! one-writer atomics, and changes go through the running configuration
//! ([`crate::running`]), which checks them, makes them live through the
//! FIB's own update path and swapped snapshots (readers never wait), and
//! saves them. The socket is owner-only (0600) in
//! an owner-only directory; each connection gets its own thread, and a
//! client that sends garbage gets an error and is closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sluice_fn::{Fib, Path as FibPath};
use sluice_graph::GraphStats;
use sluice_graph::iface::{IfStats, Interfaces};
use sluice_graph::runtime;
use sluice_io::LinkStatus;

use crate::api::{
    self, Envelope, ErrorRow, InterfaceRow, NodeRow, Reply, Request, Response, RouteRow,
};

/// Where the socket goes when nothing else is said.
pub const DEFAULT_SOCKET: &str = "/run/sluice/sluice.sock";

/// The longest request line accepted: room for a configuration file
/// (`apply`) of some hundred thousand routes.
const MAX_LINE: usize = 16 << 20;
/// Connections served at once.
const MAX_CLIENTS: usize = 16;

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another Sluice answers on this socket.
    #[error("control socket {0} is in use by another sluice")]
    InUse(PathBuf),
    /// The socket or its directory could not be made.
    #[error("control socket {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Binds the control socket at `path`: its directory made owner-only if
/// missing, a stale socket of a dead Sluice removed, the socket itself
/// owner-only.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |e| ControlError::Io(path.to_path_buf(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// What the control thread reads and changes.
pub struct ControlState {
    /// The interface table.
    pub interfaces: Arc<Interfaces>,
    /// Interface counters of every worker.
    pub if_stats: IfStats,
    /// Link states of kernel interfaces, by index.
    pub links: Vec<Option<Arc<LinkStatus>>>,
    /// Node counters of every worker.
    pub stats: Vec<Arc<GraphStats>>,
    /// Each worker's core.
    pub cores: Vec<Option<usize>>,
    /// When the workers started.
    pub started: Instant,
    /// The routing tables.
    pub fib: Arc<Fib>,
    /// The buffer pool.
    pub pool: sluice_buf::Pool,
    /// Where `clear runtime` and `clear interfaces` left the counters.
    pub baselines: crate::baseline::Baselines,
    /// Bridge domains and their MAC tables.
    pub l2: Arc<sluice_fn::L2State>,
    /// The running configuration: every change goes through it.
    pub running: Arc<crate::running::Running>,
    /// Per worker: the queues and inputs it receives from.
    pub threads: Vec<Vec<String>>,
    /// `pcap trace`: what the interface nodes copy, and the file it goes to.
    pub capture: Arc<sluice_io::capture::PacketCapture>,
    /// The file the running capture is written to when it stops.
    pub capture_file: std::sync::Mutex<Option<PathBuf>>,
}

/// The control thread; stopped and its socket removed on drop.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Serves `listener` (bound at `path`) until dropped.
    pub fn start(listener: UnixListener, path: PathBuf, state: Arc<ControlState>) -> ControlServer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-ctl".into())
            .spawn(move || accept_loop(listener, state, flag))
            .ok();
        ControlServer { path, stop, thread }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, state: Arc<ControlState>, stop: Arc<AtomicBool>) {
    // Non-blocking accept, so that the thread notices `stop`.
    if listener.set_nonblocking(true).is_err() {
        return;
    }
    let clients = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if clients.load(Ordering::Relaxed) >= MAX_CLIENTS {
                    let _ = reply(&stream, &Response::error("too many control clients"));
                    continue;
                }
                clients.fetch_add(1, Ordering::Relaxed);
                let (state, mine) = (state.clone(), clients.clone());
                let spawned = std::thread::Builder::new()
                    .name("sluice-ctl-client".into())
                    .spawn(move || {
                        serve(stream, &state);
                        mine.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    clients.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn reply(mut stream: &UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// One client: a request a line, an answer a line, until it hangs up or
/// sends something that is not a request.
fn serve(stream: UnixStream, state: &ControlState) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            let _ = reply(&stream, &Response::error("request longer than 16 MiB"));
            return;
        }
        let envelope = match serde_json::from_slice::<Envelope>(&line) {
            Ok(e) => e,
            Err(e) => {
                let _ = reply(&stream, &Response::error(format!("not a request: {e}")));
                return;
            }
        };
        let r = if envelope.version != api::VERSION {
            Response::error(format!(
                "API version {} is not spoken here (this sluice speaks {})",
                envelope.version,
                api::VERSION
            ))
        } else {
            handle(state, &envelope.request)
        };
        if reply(&stream, &r).is_err() {
            return;
        }
    }
}

/// Carries out one request.
pub fn handle(state: &ControlState, request: &Request) -> Response {
    // What the shows count: the counters since the last clear.
    let (views, since) = state.baselines.runtime(&state.stats, state.started);
    let refs: Vec<&GraphStats> = views.iter().collect();
    match request {
        Request::ShowVersion => Response::ok(Reply::Version {
            sluice: env!("CARGO_PKG_VERSION").to_string(),
            api: api::VERSION,
        }),
        Request::ShowInterface => Response::ok(Reply::Interfaces {
            text: crate::show::interfaces(
                &state.interfaces,
                &state
                    .baselines
                    .interfaces(&state.interfaces, &state.if_stats),
                &state.links,
            ),
            rows: interface_rows(state),
        }),
        Request::ShowRuntime => {
            let seconds = since.elapsed().as_secs_f64();
            Response::ok(Reply::Runtime {
                text: runtime::show_runtime(&refs, seconds, &state.cores),
                rows: runtime::rows(&refs)
                    .into_iter()
                    .map(|r| NodeRow {
                        clocks: r.clocks(),
                        name: r.name,
                        calls: r.calls,
                        vectors: r.vectors,
                    })
                    .collect(),
            })
        }
        Request::ShowErrors => Response::ok(Reply::Errors {
            text: runtime::show_errors(&refs),
            rows: runtime::error_rows(&refs)
                .into_iter()
                .map(|e| ErrorRow {
                    node: e.node,
                    name: e.name.to_string(),
                    reason: e.reason.to_string(),
                    count: e.count,
                })
                .collect(),
        }),
        Request::TraceAdd { node, count } => {
            if *count == 0 || *count as usize > sluice_graph::trace::MAX_LINES {
                return Response::error(format!(
                    "count {count}: trace 1 to {} packets",
                    sluice_graph::trace::MAX_LINES
                ));
            }
            let mut found = false;
            for g in &state.stats {
                if let Some(i) = g.nodes.iter().position(|n| n.name == *node) {
                    if g.nodes[i].kind != sluice_graph::NodeKind::Input {
                        return Response::error(format!(
                            "`{node}` is not an input node: trace starts where packets come in (e.g. pg0-input)"
                        ));
                    }
                    g.trace.add(i, *count);
                    found = true;
                }
            }
            if found {
                Response::ok(Reply::Done)
            } else {
                Response::error(format!("no node is called `{node}`"))
            }
        }
        Request::ShowTrace => {
            let mut rows = Vec::new();
            for g in &state.stats {
                rows.extend(g.trace.lines().into_iter().map(|l| api::TraceRow {
                    worker: g.worker,
                    id: l.id,
                    node: l.node,
                    decode: l.decode,
                }));
            }
            Response::ok(Reply::Trace {
                text: trace_text(&rows),
                rows,
            })
        }
        Request::ClearRuntime => {
            state.baselines.clear_runtime(&state.stats);
            Response::ok(Reply::Done)
        }
        Request::ClearInterfaces => {
            state
                .baselines
                .clear_interfaces(&state.interfaces, &state.if_stats);
            Response::ok(Reply::Done)
        }
        Request::PcapTrace {
            rx,
            tx,
            max,
            interface,
            file,
        } => pcap_trace(state, *rx, *tx, *max, interface.as_deref(), file),
        Request::PcapTraceOff => {
            let file = state.capture_file.lock().ok().and_then(|mut f| f.take());
            let Some(path) = file else {
                return Response::error(
                    "no pcap trace is running (start one with pcap trace rx|tx max N file F)",
                );
            };
            let packets = state.capture.stop();
            match sluice_io::capture::write(&path, &packets) {
                Ok(()) => Response::ok(Reply::Table {
                    text: format!("{} packets written to {}\n", packets.len(), path.display()),
                }),
                Err(e) => Response::error(format!("pcap trace: {e}")),
            }
        }
        Request::ShowPcap => {
            let (on, held) = state.capture.status();
            let file = state.capture_file.lock().ok().and_then(|f| f.clone());
            let text = match file {
                Some(f) => format!(
                    "pcap trace {}: {held} packets held for {}\n",
                    if on {
                        "running"
                    } else {
                        "full (pcap trace off writes it)"
                    },
                    f.display()
                ),
                None => "no pcap trace\n".to_string(),
            };
            Response::ok(Reply::Table { text })
        }
        Request::ClearTrace => {
            state.stats.iter().for_each(|g| g.trace.clear());
            Response::ok(Reply::Done)
        }
        Request::ShowNeighbors => {
            let mut text = format!(
                "{:<40} {:<19} {:<16} {:<10} {:>8}\n",
                "Address", "MAC", "Interface", "State", "Age(s)"
            );
            for n in state.fib.neighbors() {
                text.push_str(&format!(
                    "{:<40} {:<19} {:<16} {:<10} {:>8.1}\n",
                    n.addr.to_string(),
                    n.mac.to_string(),
                    name_of(state, n.interface),
                    format!("{:?}", n.state).to_lowercase(),
                    n.age.as_secs_f64()
                ));
            }
            Response::ok(Reply::Table { text })
        }
        Request::ShowL2fib => Response::ok(Reply::Table {
            text: state.l2.show_l2fib(sluice_graph::clock::cycles()),
        }),
        Request::ShowGraph => Response::ok(Reply::Graph {
            text: runtime::show_graph(&refs, since.elapsed().as_secs_f64()),
        }),
        Request::ShowThreads => Response::ok(crate::show::threads(&state.cores, &state.threads)),
        Request::ShowAcl => {
            let acl_nodes = [
                sluice_fn::features::IP4_ACL_IN,
                sluice_fn::features::IP6_ACL_IN,
                sluice_fn::features::IP4_ACL_OUT,
                sluice_fn::features::IP6_ACL_OUT,
            ];
            let denied = runtime::error_rows(&refs)
                .into_iter()
                .filter(|e| acl_nodes.contains(&e.node.as_str()) && e.name == "acl-deny")
                .map(|e| ErrorRow {
                    node: e.node,
                    name: e.name.to_string(),
                    reason: e.reason.to_string(),
                    count: e.count,
                })
                .collect();
            Response::ok(crate::show::acls(&state.running.config(), denied))
        }
        Request::ShowIds => Response::ok(match state.running.features() {
            Some(f) => crate::show::ids(f.ids(), &f.detectors()),
            None => crate::show::ids(None, &[]),
        }),
        Request::ShowConntrack => Response::ok(crate::show::conntrack(
            &state
                .running
                .features()
                .map(|f| f.tables())
                .unwrap_or_default(),
        )),
        Request::ShowFeatures => Response::ok(crate::show::features(
            &state
                .running
                .features()
                .map(|f| f.enabled(&state.interfaces))
                .unwrap_or_default(),
        )),
        Request::ShowBuffers => {
            let (capacity, free) = (state.pool.capacity(), state.pool.free_count());
            Response::ok(Reply::Buffers {
                text: format!(
                    "{capacity} buffers of 2304 B ({}), {free} on the free list, \
                     {} in use or in workers' caches\n",
                    state.pool.backing(),
                    capacity - free.min(capacity)
                ),
                capacity,
                free,
            })
        }
        Request::ShowIpFib { table } => {
            if *table >= state.fib.tables() {
                return Response::error(format!(
                    "table {table} does not exist (tables 0..{})",
                    state.fib.tables()
                ));
            }
            let rows: Vec<RouteRow> = state
                .fib
                .routes(*table)
                .iter()
                .map(|r| RouteRow {
                    table: r.table,
                    prefix: r.prefix.to_string(),
                    paths: r.paths.iter().map(|p| path_words(state, p)).collect(),
                })
                .collect();
            let mut text = String::new();
            for r in &rows {
                text.push_str(&format!("{:<44} {}\n", r.prefix, r.paths.join(", ")));
            }
            Response::ok(Reply::Routes { text, rows })
        }
        Request::IpRouteAdd(spec) => done(state.running.add_route(spec)),
        Request::SetInterfaceState { interface, up } => {
            done(state.running.set_state(interface, *up))
        }
        Request::IpRouteDel { prefix, table } => done(state.running.del_route(prefix, *table)),
        Request::SetInterfaceAddress {
            interface,
            address,
            del,
        } => done(state.running.set_address(interface, address, *del)),
        Request::IpNeighborAdd { interface, ip, mac } => {
            done(state.running.add_neighbor(interface, ip, mac))
        }
        Request::IpNeighborDel { interface, ip } => done(state.running.del_neighbor(interface, ip)),
        Request::ShowRunningConfig => Response::ok(Reply::RunningConfig {
            text: state.running.text(),
        }),
        Request::ShowBridgeDomain => {
            let (text, rows) = crate::show::bridge_domains(&state.l2, &state.interfaces);
            Response::ok(Reply::BridgeDomains { text, rows })
        }
        Request::Diff { text, name } => {
            let origin = name.as_deref().unwrap_or("the file");
            match state.running.diff(text, origin) {
                Ok(p) => plan_reply(&p, false),
                Err(e) => Response::error(e.to_string()),
            }
        }
        Request::Apply { text, name } => {
            let origin = name.as_deref().unwrap_or("the file");
            match state.running.apply(text, origin) {
                Ok(p) => plan_reply(&p, true),
                Err(e) => Response::error(e.to_string()),
            }
        }
    }
}

/// The answer to a change: done, or why not.
fn done(r: Result<(), crate::running::ChangeError>) -> Response {
    match r {
        Ok(()) => Response::ok(Reply::Done),
        Err(e) => Response::error(e.to_string()),
    }
}

/// A plan as `diff` and `apply` answer it.
fn plan_reply(p: &crate::config::plan::Plan, applied: bool) -> Response {
    Response::ok(Reply::Plan {
        text: p.text(),
        steps: p
            .steps
            .iter()
            .map(|s| api::PlanStep {
                sign: s.sign.symbol().to_string(),
                what: s.what.clone(),
                needs_restart: s.needs_restart(),
            })
            .collect(),
        applied,
    })
}

/// `pcap trace rx|tx max N [intfc NAME] file F`: checks everything, then
/// starts the capture (replacing one that runs, whose packets are lost).
fn pcap_trace(
    state: &ControlState,
    rx: bool,
    tx: bool,
    max: u32,
    interface: Option<&str>,
    file: &str,
) -> Response {
    if !rx && !tx {
        return Response::error("pcap trace: say rx, tx or both");
    }
    if max == 0 || u64::from(max) > sluice_io::capture::MAX_PACKETS {
        return Response::error(format!(
            "max {max}: capture 1 to {} packets",
            sluice_io::capture::MAX_PACKETS
        ));
    }
    let index = match interface {
        None | Some("any") => None,
        Some(name) => match state.interfaces.iter().find(|i| i.name == name) {
            Some(i) => Some(i.index),
            None => return Response::error(format!("no interface is called `{name}`")),
        },
    };
    let path = PathBuf::from(file);
    // The file must be writable now, not found out when the capture ends.
    if let Err(e) = sluice_io::capture::write(&path, &[]) {
        return Response::error(format!("pcap trace: {e}"));
    }
    if let Ok(mut f) = state.capture_file.lock() {
        *f = Some(path);
    }
    state.capture.start(rx, tx, index, u64::from(max));
    Response::ok(Reply::Done)
}

/// Packet by packet, in the order they were first seen, their nodes.
fn trace_text(rows: &[api::TraceRow]) -> String {
    let mut order: Vec<(usize, u32)> = Vec::new();
    for r in rows {
        if !order.contains(&(r.worker, r.id)) {
            order.push((r.worker, r.id));
        }
    }
    let mut out = String::new();
    for (w, id) in order {
        out.push_str(&format!("Packet {id} (worker {w})\n"));
        for r in rows.iter().filter(|r| r.worker == w && r.id == id) {
            out.push_str(&format!("  {:<20} {}\n", r.node, r.decode));
        }
    }
    if out.is_empty() {
        out.push_str("No packets traced (trace add <input-node> <count>)\n");
    }
    out
}

fn interface_rows(state: &ControlState) -> Vec<InterfaceRow> {
    let view = state
        .baselines
        .interfaces(&state.interfaces, &state.if_stats);
    let sum = |i, f: fn(&sluice_graph::iface::IfCounters) -> &sluice_graph::Counter| view.sum(i, f);
    state
        .interfaces
        .iter()
        .map(|i| InterfaceRow {
            name: i.name.clone(),
            index: i.index,
            driver: i.driver.clone(),
            state: state
                .links
                .get(i.index as usize)
                .and_then(|l| l.as_ref())
                .map_or_else(String::new, |l| l.describe().to_string()),
            mac: i.mac.to_string(),
            mtu: i.mtu,
            rx_packets: sum(i.index, |c| &c.rx_packets),
            rx_bytes: sum(i.index, |c| &c.rx_bytes),
            rx_drops: sum(i.index, |c| &c.rx_drops),
            tx_packets: sum(i.index, |c| &c.tx_packets),
            tx_bytes: sum(i.index, |c| &c.tx_bytes),
            tx_errors: sum(i.index, |c| &c.tx_errors),
        })
        .collect()
}

fn name_of(state: &ControlState, i: u32) -> String {
    state
        .interfaces
        .get(i)
        .map_or_else(|| format!("if{i}"), |x| x.name.clone())
}

/// A path as `show ip fib` words it.
fn path_words(state: &ControlState, p: &FibPath) -> String {
    match *p {
        FibPath::Via {
            interface,
            addr,
            mac,
        } => {
            let mut s = String::from("via");
            if let Some(a) = addr {
                s.push_str(&format!(" {a}"));
            }
            if let Some(m) = mac {
                s.push_str(&format!(" mac {m}"));
            }
            format!("{s} dev {}", name_of(state, interface))
        }
        FibPath::Connected { interface } => {
            format!("connected dev {}", name_of(state, interface))
        }
        FibPath::Local { interface } => format!("local dev {}", name_of(state, interface)),
        FibPath::Drop => "drop".into(),
        FibPath::Prohibit => "prohibit".into(),
        FibPath::Unreachable => "unreachable".into(),
    }
}
