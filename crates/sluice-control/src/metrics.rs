//! Prometheus metrics: interface and node counters over HTTP, off unless
//! asked for (`sluice run --metrics 127.0.0.1:9464`).
//!
//! Counters are read as the control API reads them — each worker's
//! one-writer atomics, summed here — so a scrape never slows a worker.
//! Only `GET /metrics` is answered; the listener is meant for loopback.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sluice_graph::GraphStats;
use sluice_graph::runtime;

use crate::server::ControlState;

/// One counter of an interface.
type IfField = fn(&sluice_graph::iface::IfCounters) -> &sluice_graph::Counter;
/// One counter of a node.
type NodeField = fn(&sluice_graph::NodeStats) -> u64;

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The exposition text of every counter.
pub fn render(state: &ControlState) -> String {
    let mut out = String::new();
    let families: [(&str, &str, IfField); 6] = [
        (
            "sluice_interface_rx_packets_total",
            "Packets received.",
            |c| &c.rx_packets,
        ),
        ("sluice_interface_rx_bytes_total", "Bytes received.", |c| {
            &c.rx_bytes
        }),
        (
            "sluice_interface_rx_drops_total",
            "Packets dropped on receive.",
            |c| &c.rx_drops,
        ),
        ("sluice_interface_tx_packets_total", "Packets sent.", |c| {
            &c.tx_packets
        }),
        ("sluice_interface_tx_bytes_total", "Bytes sent.", |c| {
            &c.tx_bytes
        }),
        (
            "sluice_interface_tx_errors_total",
            "Packets that could not be sent.",
            |c| &c.tx_errors,
        ),
    ];
    for (name, help, f) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for i in state.interfaces.iter() {
            let _ = writeln!(
                out,
                "{name}{{interface=\"{}\"}} {}",
                label(&i.name),
                state.if_stats.sum(i.index, f)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP sluice_interface_up Whether the interface is up (admin and link).\n# TYPE sluice_interface_up gauge"
    );
    for i in state.interfaces.iter() {
        let up = state
            .links
            .get(i.index as usize)
            .and_then(|l| l.as_ref())
            .is_none_or(|l| l.describe() == "up");
        let _ = writeln!(
            out,
            "sluice_interface_up{{interface=\"{}\"}} {}",
            label(&i.name),
            u8::from(up)
        );
    }
    let node_families: [(&str, &str, NodeField); 3] = [
        (
            "sluice_node_calls_total",
            "Times the node was called.",
            |n| n.calls.get(),
        ),
        (
            "sluice_node_packets_total",
            "Packets the node handled.",
            |n| n.vectors.get(),
        ),
        (
            "sluice_node_clocks_total",
            "TSC cycles spent in the node.",
            |n| n.clocks.get(),
        ),
    ];
    for (name, help, f) in node_families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for g in &state.stats {
            for n in &g.nodes {
                let _ = writeln!(
                    out,
                    "{name}{{node=\"{}\",worker=\"{}\"}} {}",
                    label(&n.name),
                    g.worker,
                    f(n)
                );
            }
        }
    }
    let refs: Vec<&GraphStats> = state.stats.iter().map(|s| &**s).collect();
    let _ = writeln!(
        out,
        "# HELP sluice_errors_total Packets counted by a node's error counter (show errors).\n# TYPE sluice_errors_total counter"
    );
    for e in runtime::error_rows(&refs) {
        let _ = writeln!(
            out,
            "sluice_errors_total{{node=\"{}\",counter=\"{}\",severity=\"{}\"}} {}",
            label(&e.node),
            e.name,
            e.severity,
            e.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP sluice_buffers_free Buffers on the pool's free list.\n# TYPE sluice_buffers_free gauge\nsluice_buffers_free {}",
        state.pool.free_count()
    );
    out
}

/// The metrics thread; stopped on drop.
pub struct MetricsServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `listener` until dropped.
    pub fn start(listener: TcpListener, state: Arc<ControlState>) -> MetricsServer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sluice-metrics".into())
            .spawn(move || {
                if listener.set_nonblocking(true).is_err() {
                    return;
                }
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => answer(s, &state),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
            .ok();
        MetricsServer { stop, thread }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds the metrics listener.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

fn answer(stream: TcpStream, state: &ControlState) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut first = String::new();
    let mut reader = BufReader::new(&stream);
    if reader.read_line(&mut first).is_err() {
        return;
    }
    // The rest of the request head, up to the blank line.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let (status, body) = if first.starts_with("GET /metrics ") {
        ("200 OK", render(state))
    } else {
        (
            "404 Not Found",
            "only GET /metrics is served here\n".to_string(),
        )
    };
    let mut s = &stream;
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
