//! `ip4-input`: checks that a packet is a well-formed IPv4 packet before
//! anything trusts its header. The TTL is checked later, by `ip4-rewrite`,
//! because a packet for this host may arrive with a TTL of 1.
//!
//! The `ip4-unicast` feature arc starts here: a good packet goes to the
//! first feature enabled for its receiving interface, or to `ip4-lookup`.

use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, FeatureArc, Frame, Next, Node, NodeSpec};
use sluice_wire::checksum;

/// The node's name.
pub const NAME: &str = "ip4-input";

mod error {
    pub const TOO_SHORT: usize = 0;
    pub const BAD_VERSION: usize = 1;
    pub const BAD_HEADER_LENGTH: usize = 2;
    pub const BAD_LENGTH: usize = 3;
    pub const BAD_CHECKSUM: usize = 4;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("too-short", "ip4 packet shorter than 20 bytes"),
    ErrorSpec::error("bad-version", "ip4 version is not 4"),
    ErrorSpec::error(
        "bad-header-length",
        "ip4 header length below 20 or past the packet",
    ),
    ErrorSpec::error("bad-length", "ip4 total length disagrees with the packet"),
    ErrorSpec::error("bad-checksum", "ip4 header checksum is wrong"),
];

/// `ip4-input`.
#[derive(Debug, Default)]
pub struct Ip4Input {
    /// The `ip4-unicast` arc, when the path has one.
    arc: Option<Arc<FeatureArc>>,
}

impl Ip4Input {
    /// The node, sending straight to `ip4-lookup`.
    pub fn new() -> Ip4Input {
        Ip4Input { arc: None }
    }

    /// The node at the start of `arc` (which ends at `ip4-lookup`).
    pub fn on_arc(arc: Arc<FeatureArc>) -> Ip4Input {
        Ip4Input { arc: Some(arc) }
    }

    /// Checks the header in the first segment against the whole packet
    /// (a jumbo datagram spans chained buffers; its header never does).
    #[inline(always)]
    fn check(pkt: &mut sluice_buf::Packet) -> Result<(), usize> {
        let total_len = pkt.total_len();
        let d = pkt.data();
        if d.len() < 20 {
            return Err(error::TOO_SHORT);
        }
        if d[0] >> 4 != 4 {
            return Err(error::BAD_VERSION);
        }
        let ihl = usize::from(d[0] & 0x0f) * 4;
        if ihl < 20 || ihl > d.len() {
            return Err(error::BAD_HEADER_LENGTH);
        }
        let total = usize::from(u16::from_be_bytes([d[2], d[3]]));
        if total < ihl || total > total_len {
            return Err(error::BAD_LENGTH);
        }
        let sum = match d.get(..20) {
            // The usual option-less header: five words, no loop.
            Some(h) if ihl == 20 => (0..5)
                .map(|k| {
                    u64::from(u32::from_be_bytes([
                        h[4 * k],
                        h[4 * k + 1],
                        h[4 * k + 2],
                        h[4 * k + 3],
                    ]))
                })
                .sum(),
            _ => checksum::sum(&d[..ihl]),
        };
        if checksum::finish(sum) != 0 {
            return Err(error::BAD_CHECKSUM);
        }
        // Drop Ethernet padding past the IP datagram.
        if total < total_len {
            pkt.truncate(total).map_err(|_| error::BAD_LENGTH)?;
        }
        Ok(())
    }
}

impl Node for Ip4Input {
    fn spec(&self) -> NodeSpec {
        match &self.arc {
            None => NodeSpec::internal(NAME, &["ip4-lookup"], ERRORS),
            Some(arc) => NodeSpec {
                next: arc.next_names(),
                ..NodeSpec::internal(NAME, &[], ERRORS)
            },
        }
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        match self.arc.as_ref().filter(|a| a.active()) {
            Some(arc) => {
                let table = arc.load();
                for mut pkt in input.drain(..) {
                    match Self::check(&mut pkt) {
                        Ok(()) => {
                            let next = table.first(pkt.meta().rx_if);
                            out.send(next, pkt)
                        }
                        Err(e) => out.drop(pkt, e),
                    }
                }
            }
            // No feature anywhere: `ip4-lookup`, the last next node (or
            // the only one), the loop as it was before arcs.
            None => {
                let lookup = out.len() - 1;
                for mut pkt in input.drain(..) {
                    match Self::check(&mut pkt) {
                        Ok(()) => out.send(lookup, pkt),
                        Err(e) => out.drop(pkt, e),
                    }
                }
            }
        }
    }
}
