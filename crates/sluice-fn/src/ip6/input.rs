//! `ip6-input`: checks that a packet is a well-formed IPv6 packet, and
//! sends the link-scope multicast this host listens to (all-nodes,
//! all-routers, its solicited-node groups: what Neighbour Discovery
//! uses) to `ip6-local`, the rest to `ip6-lookup` through the
//! `ip6-unicast` feature arc (its first feature enabled for the receiving
//! interface, if any).

use std::net::Ipv6Addr;
use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, FeatureArc, Frame, Next, Node, NodeSpec};

use crate::addr::{IfAddrs, SharedAddrs};
use crate::host::nd;

/// The node's name.
pub const NAME: &str = "ip6-input";

mod next {
    pub const LOCAL: usize = 0;
    /// Not an index: unicast, on along the arc (to `ip6-lookup`, the
    /// last next node, when no feature is enabled).
    pub const UNICAST: usize = usize::MAX;
}

mod error {
    pub const TOO_SHORT: usize = 0;
    pub const BAD_VERSION: usize = 1;
    pub const BAD_LENGTH: usize = 2;
    pub const BAD_SOURCE: usize = 3;
    pub const MULTICAST: usize = 4;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("too-short", "ip6 packet shorter than 40 bytes"),
    ErrorSpec::error("bad-version", "ip6 version is not 6"),
    ErrorSpec::error("bad-length", "ip6 payload length past the packet"),
    ErrorSpec::error("bad-source", "ip6 source is multicast"),
    ErrorSpec::info(
        "multicast-not-forwarded",
        "ip6 multicast for a group this host is not in",
    ),
];

/// `ip6-input`.
pub struct Ip6Input {
    addrs: Arc<SharedAddrs>,
    /// The `ip6-unicast` arc, when the path has one.
    arc: Option<Arc<FeatureArc>>,
}

impl Ip6Input {
    /// The node, knowing the addresses whose solicited-node groups it joins.
    pub fn new(addrs: Arc<SharedAddrs>) -> Ip6Input {
        Ip6Input { addrs, arc: None }
    }

    /// The node at the start of `arc` (which ends at `ip6-lookup`).
    pub fn on_arc(addrs: Arc<SharedAddrs>, arc: Arc<FeatureArc>) -> Ip6Input {
        Ip6Input {
            addrs,
            arc: Some(arc),
        }
    }

    fn check(addrs: &IfAddrs, pkt: &mut sluice_buf::Packet) -> Result<usize, usize> {
        let total_len = pkt.total_len();
        let d = pkt.data();
        let Some(h) = d.get(..40) else {
            return Err(error::TOO_SHORT);
        };
        if h[0] >> 4 != 6 {
            return Err(error::BAD_VERSION);
        }
        let total = 40 + usize::from(u16::from_be_bytes([h[4], h[5]]));
        if total > total_len {
            return Err(error::BAD_LENGTH);
        }
        if h[8] == 0xff {
            return Err(error::BAD_SOURCE);
        }
        let mut next = next::UNICAST;
        if h[24] == 0xff {
            let mut dst = [0u8; 16];
            dst.copy_from_slice(&h[24..40]);
            let dst = Ipv6Addr::from(dst);
            let rx = pkt.meta().rx_if;
            let joined = dst == nd::ALL_NODES
                || dst == Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2)
                || (nd::is_solicited_node(dst)
                    && addrs
                        .v6(rx)
                        .iter()
                        .any(|&(a, _)| nd::solicited_node(a) == dst));
            if !joined {
                return Err(error::MULTICAST);
            }
            next = next::LOCAL;
        }
        // Drop Ethernet padding past the datagram.
        if total < total_len {
            pkt.truncate(total).map_err(|_| error::BAD_LENGTH)?;
        }
        Ok(next)
    }
}

impl Node for Ip6Input {
    fn spec(&self) -> NodeSpec {
        let mut next = vec!["ip6-local".to_string()];
        match &self.arc {
            None => next.push("ip6-lookup".into()),
            Some(arc) => next.extend(arc.next_names()),
        }
        NodeSpec {
            next,
            ..NodeSpec::internal(NAME, &[], ERRORS)
        }
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let addrs = self.addrs.snapshot();
        let table = self.arc.as_ref().filter(|a| a.active()).map(|a| a.load());
        let table = table.as_deref();
        // With no feature anywhere, `ip6-lookup` is the last next node.
        let lookup = out.len() - 1;
        for mut pkt in input.drain(..) {
            match Ip6Input::check(&addrs, &mut pkt) {
                Ok(next::UNICAST) => {
                    let n = match table {
                        Some(t) => t.first(pkt.meta().rx_if).saturating_add(1),
                        None => lookup,
                    };
                    out.send(n, pkt)
                }
                Ok(n) => out.send(n, pkt),
                Err(e) => out.drop(pkt, e),
            }
        }
    }
}
