//! `arp-announce`: gratuitous ARP for the forwarder's own IPv4 addresses
//! when it starts (RFC 5227 2.3), so that hosts and switches that knew an
//! address at another MAC (a forwarder restarted on new hardware, a
//! failover) learn the new one at once instead of when their cache ages.
//!
//! Two announcements per address, two seconds apart, as RFC 5227 asks;
//! sent by worker 0 only, so that several workers do not say it twice.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use sluice_graph::iface::IfIndex;
use sluice_graph::{Cx, ErrorSpec, InputState, Next, Node, NodeKind, NodeSpec};

use crate::addr::IfAddrs;
use crate::fib::Fib;
use crate::host;
use crate::outputs::Outputs;

/// The node's name.
pub const NAME: &str = "arp-announce";

/// Announcements per address (RFC 5227 ANNOUNCE_NUM).
const ANNOUNCE_NUM: u32 = 2;
/// Between two announcements (RFC 5227 ANNOUNCE_INTERVAL).
const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(2);

mod error {
    pub const SENT: usize = 0;
    pub const NO_BUFFER: usize = 1;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("sent", "gratuitous ARPs sent for our addresses"),
    ErrorSpec::error("no-buffer", "no buffer for a gratuitous ARP"),
];

/// Sends the announcements, then stays idle.
pub struct ArpAnnounce {
    fib: Arc<Fib>,
    /// Every (interface, address) to announce.
    addresses: Vec<(IfIndex, Ipv4Addr)>,
    outputs: Outputs,
    rounds: u32,
    /// Cycle count of the last round; `None` before the first.
    last: Option<u64>,
    interval: u64,
}

impl ArpAnnounce {
    /// Announces every IPv4 address of `addrs`.
    pub fn new(fib: Arc<Fib>, addrs: &IfAddrs) -> ArpAnnounce {
        let interfaces = fib.interfaces().len() as IfIndex;
        let addresses = (0..interfaces)
            .flat_map(|i| addrs.v4(i).iter().map(move |&(ip, _)| (i, ip)))
            .collect();
        let outputs = Outputs::new(fib.interfaces(), 0);
        ArpAnnounce {
            fib,
            addresses,
            outputs,
            rounds: 0,
            last: None,
            interval: (sluice_graph::clock::hz() * ANNOUNCE_INTERVAL.as_secs_f64()) as u64,
        }
    }
}

impl Node for ArpAnnounce {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            kind: NodeKind::Background,
            ..NodeSpec::internal(NAME, &self.outputs.with(&[]), ERRORS)
        }
    }

    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        let due = self
            .last
            .is_none_or(|t| cx.now.wrapping_sub(t) >= self.interval);
        if cx.worker != 0 || self.rounds >= ANNOUNCE_NUM || !due {
            return InputState::Background;
        }
        self.rounds += 1;
        self.last = Some(cx.now);
        for &(i, ip) in &self.addresses {
            let (Some(info), Some(n)) = (self.fib.interfaces().get(i), self.outputs.next(i)) else {
                continue;
            };
            let Some(mut buf) = cx.buffers.alloc() else {
                out.count(error::NO_BUFFER, 1);
                continue;
            };
            match host::arp::gratuitous(&mut buf, info.mac, ip) {
                Ok(()) => {
                    buf.meta_mut().tx_if = i;
                    out.count(error::SENT, 1);
                    out.send(n, buf);
                }
                Err(_) => out.drop(buf, error::NO_BUFFER),
            }
        }
        InputState::Background
    }
}
