//! Packet trace: the path of chosen packets through the nodes, with a
//! one-line decode of the headers as each node saw them.
//!
//! `trace add <input-node> <n>` gives the next `n` packets that input
//! brings in a trace id (in their metadata); every node that then handles
//! a traced packet adds a line. When no trace is asked for, the cost is
//! one relaxed load per node call.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sluice_buf::Packet;
use sluice_wire::{EtherType, EthernetFrame, Ipv4Packet, Ipv6Packet};

/// The most lines kept per worker; past it, tracing stops adding.
pub const MAX_LINES: usize = 10_000;

/// One node's view of one traced packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceLine {
    /// The packet's trace id (per worker).
    pub id: u32,
    /// The node.
    pub node: String,
    /// What it saw.
    pub decode: String,
}

/// A worker's trace state, shared with the control thread.
#[derive(Debug)]
pub struct TraceState {
    on: AtomicBool,
    /// Per node: packets still to trace (input nodes only).
    budget: Vec<AtomicU32>,
    next_id: AtomicU32,
    lines: Mutex<Vec<TraceLine>>,
}

impl TraceState {
    /// No trace, for a graph of `nodes` nodes.
    pub fn new(nodes: usize) -> TraceState {
        TraceState {
            on: AtomicBool::new(false),
            budget: (0..nodes).map(|_| AtomicU32::new(0)).collect(),
            next_id: AtomicU32::new(1),
            lines: Mutex::new(Vec::new()),
        }
    }

    /// Traces the next `n` packets input node `node` brings in.
    pub fn add(&self, node: usize, n: u32) {
        if let Some(b) = self.budget.get(node) {
            b.fetch_add(n, Ordering::Relaxed);
            self.on.store(true, Ordering::Relaxed);
        }
    }

    /// Stops tracing and forgets what was traced.
    pub fn clear(&self) {
        self.on.store(false, Ordering::Relaxed);
        self.budget
            .iter()
            .for_each(|b| b.store(0, Ordering::Relaxed));
        self.lock().clear();
    }

    /// The lines so far, in the order they were made.
    pub fn lines(&self) -> Vec<TraceLine> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TraceLine>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether anything is being traced (the one check on the fast path).
    #[inline]
    pub(crate) fn on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Gives up to the node's budget of `packets` trace ids and records
    /// them at `node_name` (an input node that just brought them in).
    pub(crate) fn mark<'a>(
        &self,
        node: usize,
        node_name: &str,
        packets: impl Iterator<Item = &'a mut Packet>,
    ) {
        let Some(budget) = self.budget.get(node) else {
            return;
        };
        for p in packets {
            let left = budget.load(Ordering::Relaxed);
            if left == 0 {
                break;
            }
            budget.store(left - 1, Ordering::Relaxed);
            if p.meta().trace != 0 {
                continue;
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            p.meta_mut().trace = id;
            self.record(id, node_name, p);
        }
    }

    /// Records what `node_name` sees of each traced packet of `packets`.
    pub(crate) fn see<'a>(&self, node_name: &str, packets: impl Iterator<Item = &'a Packet>) {
        for p in packets {
            let id = p.meta().trace;
            if id != 0 {
                self.record(id, node_name, p);
            }
        }
    }

    fn record(&self, id: u32, node: &str, p: &Packet) {
        let mut lines = self.lock();
        if lines.len() < MAX_LINES {
            lines.push(TraceLine {
                id,
                node: node.to_string(),
                decode: decode(p.data()),
            });
        }
    }
}

/// One line of headers: Ethernet (with its VLAN), or IPv4/IPv6 when the
/// data starts at L3 (after `ethernet-input`), else the first bytes.
pub fn decode(d: &[u8]) -> String {
    let known = |t: u16| matches!(t, 0x0800 | 0x86dd | 0x0806 | 0x8100 | 0x88a8);
    if d.len() >= 14
        && known(u16::from_be_bytes([d[12], d[13]]))
        && let Ok(eth) = EthernetFrame::new_checked(d)
    {
        let rest = match eth.ethertype() {
            EtherType::IPV4 | EtherType::IPV6 => decode_ip(eth.payload()),
            t => format!("{t}"),
        };
        return format!(
            "{} > {} {} {}B",
            eth.src_addr(),
            eth.dst_addr(),
            rest,
            d.len()
        );
    }
    let ip = decode_ip(d);
    if ip.is_empty() {
        let head: Vec<String> = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{}B: {}", d.len(), head.join(""))
    } else {
        format!("{ip} {}B", d.len())
    }
}

fn decode_ip(d: &[u8]) -> String {
    match d.first().map(|b| b >> 4) {
        Some(4) => match Ipv4Packet::new_checked(d) {
            Ok(ip) => format!(
                "IPv4 {} > {} {} ttl {}",
                ip.src_addr(),
                ip.dst_addr(),
                ip.protocol(),
                ip.ttl()
            ),
            Err(_) => String::new(),
        },
        Some(6) => match Ipv6Packet::new_checked(d) {
            Ok(ip) => format!(
                "IPv6 {} > {} {} hlim {}",
                ip.src_addr(),
                ip.dst_addr(),
                ip.next_header(),
                ip.hop_limit()
            ),
            Err(_) => String::new(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_decode_on_one_line() {
        let mut f = vec![0u8; 14 + 20];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[3] = 20;
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 9, 0, 7]);
        let line = decode(&f);
        assert!(
            line.contains("02:00:00:00:00:01 > 02:00:00:00:00:02"),
            "{line}"
        );
        assert!(
            line.contains("IPv4 10.0.0.1 > 10.9.0.7 udp ttl 64"),
            "{line}"
        );
        // At L3, as ip4-input sees it.
        assert!(decode(&f[14..]).starts_with("IPv4 10.0.0.1"));
        // Garbage: bytes, no panic.
        assert!(decode(&[0xff; 5]).starts_with("5B: ffffffffff"));
        assert!(decode(&[]).starts_with("0B"));
    }
}
