//! `l2-flood`: a frame for every port of its bridge but the ingress port
//! and the ports of the ingress port's split-horizon group. Each port but
//! the last gets a copy in new buffers; the last gets the original.

use std::sync::Arc;

use sluice_buf::{BufCache, Packet};
use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};

use super::config::Role;
use super::input::deliver;
use super::output::{Dest, DestKind, NextTable};
use super::state::L2State;

/// The node's name.
pub const NAME: &str = "l2-flood";

mod error {
    pub const NOT_L2: usize = 0;
    pub const NO_PORT: usize = 1;
    pub const NO_BUFFER: usize = 2;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("not-l2", "frame from an interface in no bridge"),
    ErrorSpec::info(
        "no-port",
        "no port to flood to (only the ingress port or its split-horizon group)",
    ),
    ErrorSpec::error(
        "no-buffer",
        "flooded copies not made, no buffer (the other ports still get theirs)",
    ),
];

/// `l2-flood`.
pub struct L2Flood {
    next: NextTable,
    /// Per interface: (bridge, port) if it is a bridge port.
    ingress: Vec<Option<(u32, u16)>>,
    /// Per bridge, per port.
    ports: Vec<Vec<Dest>>,
    /// Where chained frames are linearised before copying.
    scratch: Vec<u8>,
}

impl L2Flood {
    /// The node for one worker.
    pub fn new(state: &Arc<L2State>) -> L2Flood {
        let next = NextTable::new(state, &[super::output::NAME], true);
        let ports = next.bridge_ports(state);
        let ingress = state
            .config()
            .roles
            .iter()
            .map(|r| match *r {
                Role::Bridge { bridge, port } => Some((bridge as u32, port)),
                _ => None,
            })
            .collect();
        L2Flood {
            next,
            ingress,
            ports,
            scratch: Vec::new(),
        }
    }

    fn flood(&mut self, buffers: &mut BufCache, pkt: Packet, out: &mut Next<'_>) {
        let Some(&Some((bridge, port))) = self.ingress.get(pkt.meta().rx_if as usize) else {
            return out.drop(pkt, error::NOT_L2);
        };
        let Some(ports) = self.ports.get(bridge as usize) else {
            return out.drop(pkt, error::NOT_L2);
        };
        let shg = ports.get(port as usize).map_or(0, |d| d.split_horizon);
        let wanted = |(k, d): &(usize, &Dest)| {
            *k != port as usize && d.kind != DestKind::None && (shg == 0 || d.split_horizon != shg)
        };
        let Some(last) = ports.iter().enumerate().rfind(wanted).map(|(k, _)| k) else {
            return out.drop(pkt, error::NO_PORT);
        };
        for (_, d) in ports[..last].iter().enumerate().filter(wanted) {
            match copy(buffers, &pkt, &mut self.scratch) {
                Some(c) => deliver(c, *d, out),
                None => out.count(error::NO_BUFFER, 1),
            }
        }
        deliver(pkt, ports[last], out);
    }
}

/// A copy of `pkt` (bytes and metadata) in new buffers.
fn copy(buffers: &mut BufCache, pkt: &Packet, scratch: &mut Vec<u8>) -> Option<Packet> {
    let mut c = if pkt.is_chained() {
        scratch.clear();
        pkt.copy_to(scratch);
        buffers.alloc_from(scratch).ok()?
    } else {
        buffers.alloc_from(pkt.data()).ok()?
    };
    *c.meta_mut() = *pkt.meta();
    Some(c)
}

impl Node for L2Flood {
    fn spec(&self) -> NodeSpec {
        self.next.spec(NAME, ERRORS)
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        for pkt in input.drain(..) {
            self.flood(cx.buffers, pkt, out);
        }
    }
}
