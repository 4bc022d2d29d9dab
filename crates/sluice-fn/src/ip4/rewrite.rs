//! `ip4-rewrite`: decrements the TTL (patching the checksum incrementally,
//! RFC 1624), checks the MTU, writes the Ethernet header for the next hop
//! and hands the frame to the outgoing interface.

use std::sync::Arc;

use sluice_graph::iface::Interfaces;
use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};
use sluice_wire::checksum;

use super::{Ip4Fib, RouteTarget};

/// The node's name.
pub const NAME: &str = "ip4-rewrite";

mod error {
    pub const BAD_ADJACENCY: usize = 0;
    pub const MTU_EXCEEDED: usize = 1;
    pub const NO_HEADROOM: usize = 2;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("bad-adjacency", "packet carries no valid adjacency"),
    ErrorSpec::info("mtu-exceeded", "ip4 packet larger than the outgoing MTU"),
    ErrorSpec::error("no-headroom", "no room for the Ethernet header"),
];

/// `ip4-rewrite`.
pub struct Ip4Rewrite {
    fib: Arc<Ip4Fib>,
    /// Output node names, one next index each.
    outputs: Vec<String>,
    /// Per interface index, its next index (if it can transmit).
    next_of_if: Vec<Option<usize>>,
}

impl Ip4Rewrite {
    /// A rewrite node for `fib`, able to send on every interface of
    /// `interfaces` that has an output node.
    pub fn new(fib: Arc<Ip4Fib>, interfaces: &Interfaces) -> Ip4Rewrite {
        let mut outputs = Vec::new();
        let next_of_if = interfaces
            .iter()
            .map(|i| {
                i.output_node.as_ref().map(|n| {
                    outputs.push(n.clone());
                    outputs.len() - 1
                })
            })
            .collect();
        Ip4Rewrite {
            fib,
            outputs,
            next_of_if,
        }
    }

    #[inline]
    fn rewrite(&self, pkt: &mut sluice_buf::Packet) -> Result<usize, usize> {
        let adj = self
            .fib
            .adjacency_at(pkt.meta().adj)
            .ok_or(error::BAD_ADJACENCY)?;
        let RouteTarget::Forward { interface, .. } = adj.target else {
            return Err(error::BAD_ADJACENCY);
        };
        let next = self
            .next_of_if
            .get(interface as usize)
            .copied()
            .flatten()
            .ok_or(error::BAD_ADJACENCY)?;
        if pkt.total_len() > adj.mtu as usize {
            return Err(error::MTU_EXCEEDED);
        }
        // ip4-input checked that the header is in this segment and TTL > 1.
        let ip = pkt.data_mut();
        if ip.len() < 20 {
            return Err(error::BAD_ADJACENCY);
        }
        let old = u16::from_be_bytes([ip[8], ip[9]]);
        ip[8] = ip[8].wrapping_sub(1);
        let csum = u16::from_be_bytes([ip[10], ip[11]]);
        let csum = checksum::update_u16(csum, old, old.wrapping_sub(0x100));
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        pkt.prepend(14)
            .map_err(|_| error::NO_HEADROOM)?
            .copy_from_slice(&adj.l2_header);
        pkt.meta_mut().tx_if = interface;
        Ok(next)
    }
}

impl Node for Ip4Rewrite {
    fn spec(&self) -> NodeSpec {
        let next: Vec<&str> = self.outputs.iter().map(String::as_str).collect();
        NodeSpec::internal(NAME, &next, ERRORS)
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        for mut pkt in input.drain(..) {
            match self.rewrite(&mut pkt) {
                Ok(next) => out.send(next, pkt),
                Err(e) => out.drop(pkt, e),
            }
        }
    }
}
