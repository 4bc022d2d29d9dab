//! `ip4-lookup`: longest-prefix match on the destination address.

use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};

use super::{Ip4Fib, RouteTarget};

/// The node's name.
pub const NAME: &str = "ip4-lookup";

mod error {
    pub const NO_ROUTE: usize = 0;
    pub const DROP_ROUTE: usize = 1;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("no-route", "ip4 destination matches no route"),
    ErrorSpec::info("drop-route", "ip4 destination matches a drop route"),
];

/// `ip4-lookup`: writes the adjacency into `meta.adj` for `ip4-rewrite`.
pub struct Ip4Lookup {
    fib: Arc<Ip4Fib>,
}

impl Ip4Lookup {
    /// A lookup node on `fib`.
    pub fn new(fib: Arc<Ip4Fib>) -> Ip4Lookup {
        Ip4Lookup { fib }
    }
}

impl Node for Ip4Lookup {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(NAME, &[super::rewrite::NAME], ERRORS)
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let fib = &*self.fib;
        for mut pkt in input.drain(..) {
            // ip4-input checked the header, so the destination is there.
            let d = pkt.data();
            let dst = match d.get(16..20) {
                Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                None => {
                    out.drop(pkt, error::NO_ROUTE);
                    continue;
                }
            };
            match fib.lookup(dst) {
                None => out.drop(pkt, error::NO_ROUTE),
                Some(adj) => {
                    if matches!(
                        fib.adjacency_at(adj).map(|a| a.target),
                        Some(RouteTarget::Drop) | None
                    ) {
                        out.drop(pkt, error::DROP_ROUTE);
                    } else {
                        pkt.meta_mut().adj = adj;
                        out.send(0, pkt);
                    }
                }
            }
        }
    }
}
