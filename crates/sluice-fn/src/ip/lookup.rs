//! `ip4-lookup` / `ip6-lookup`: longest-prefix match on the destination,
//! a whole vector at a time, then the adjacency decides the next node.

use std::marker::PhantomData;
use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};

use super::{Family, Unreachable};
use crate::fib::lpm::BATCH;
use crate::fib::{AdjKind, AdjTable, Fib, Key};

mod next {
    pub const REWRITE: usize = 0;
    pub const RESOLVE: usize = 1;
    pub const LOCAL: usize = 2;
    pub const ICMP_ERROR: usize = 3;
}

mod error {
    pub const NO_ROUTE: usize = 0;
    pub const DROP_ROUTE: usize = 1;
    pub const PROHIBITED: usize = 2;
    pub const UNREACHABLE: usize = 3;
    pub const BAD_ADJACENCY: usize = 4;
    pub const TOO_SHORT: usize = 5;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("no-route", "destination matches no route (ICMP sent)"),
    ErrorSpec::info("drop-route", "destination matches a drop route"),
    ErrorSpec::info("prohibited", "matches a prohibit route (ICMP sent)"),
    ErrorSpec::info("unreachable", "matches an unreachable route (ICMP sent)"),
    ErrorSpec::error("bad-adjacency", "route leads to no usable adjacency"),
    ErrorSpec::error("too-short", "packet too short for its destination address"),
];

/// The lookup node of family `F`.
pub struct Lookup<F: Family> {
    fib: Arc<Fib>,
    keys: Vec<F::Addr>,
    values: Vec<u32>,
    _family: PhantomData<F>,
}

impl<F: Family> Lookup<F> {
    /// A lookup node on `fib`.
    pub fn new(fib: Arc<Fib>) -> Lookup<F> {
        Lookup {
            fib,
            keys: Vec::with_capacity(BATCH),
            values: vec![0; BATCH],
            _family: PhantomData,
        }
    }
}

impl<F: Family> Node for Lookup<F> {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(
            F::LOOKUP,
            &[F::REWRITE, F::RESOLVE, F::LOCAL, F::ICMP_ERROR],
            ERRORS,
        )
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let fib = &*self.fib;
        let adjs: &AdjTable = fib.adj();
        while !input.is_empty() {
            // One table for the batch: the usual case is a vector from
            // interfaces of one table; a packet from another table ends
            // the batch and starts the next.
            let table = fib.table_of(input[0].meta().rx_if);
            let n = if fib.tables() == 1 {
                input.len().min(BATCH)
            } else {
                input
                    .iter()
                    .take(BATCH)
                    .take_while(|p| fib.table_of(p.meta().rx_if) == table)
                    .count()
            };
            let trie = F::trie(fib, table);
            // A big table is walked level by level over the batch so that
            // its cache misses overlap; a small one is in cache, and a
            // plain walk per packet is cheaper than the extra passes.
            let batched = trie.is_some_and(|t| !t.is_cache_resident());
            if batched {
                self.keys.clear();
                self.keys.extend(
                    input[..n]
                        .iter()
                        .map(|p| F::dst(p.data()).unwrap_or(F::Addr::ZERO)),
                );
                if let Some(t) = trie {
                    t.lookup_batch(&self.keys, &mut self.values);
                }
            }
            let mut no_route = 0u64;
            for (k, mut pkt) in input.drain(..n).enumerate() {
                let Some(dst) = F::dst(pkt.data()) else {
                    out.drop(pkt, error::TOO_SHORT);
                    continue;
                };
                let v = match trie {
                    Some(_) if batched => self.values[k],
                    Some(t) => t.lookup(dst),
                    None => 0,
                };
                if v == 0 {
                    // Counted once per batch: a miss is common (scans,
                    // default-free tables), a counter write per packet not.
                    no_route += 1;
                    Unreachable::NoRoute.mark(&mut pkt, 0);
                    out.send(next::ICMP_ERROR, pkt);
                    continue;
                }
                let hash = if AdjTable::is_lb(v) {
                    let h = F::flow_hash(pkt.data());
                    pkt.meta_mut().flow_hash = h;
                    h
                } else {
                    0
                };
                let adj = adjs.pick(v, hash);
                pkt.meta_mut().adj = adj;
                match adjs.kind(adj).0 {
                    AdjKind::Neighbor => out.send(next::REWRITE, pkt),
                    AdjKind::Glean => out.send(next::RESOLVE, pkt),
                    AdjKind::Local => out.send(next::LOCAL, pkt),
                    AdjKind::Drop => out.drop(pkt, error::DROP_ROUTE),
                    AdjKind::Prohibit => {
                        out.count(error::PROHIBITED, 1);
                        Unreachable::Prohibited.mark(&mut pkt, 0);
                        out.send(next::ICMP_ERROR, pkt);
                    }
                    AdjKind::Unreachable => {
                        out.count(error::UNREACHABLE, 1);
                        Unreachable::Net.mark(&mut pkt, 0);
                        out.send(next::ICMP_ERROR, pkt);
                    }
                    AdjKind::Free => out.drop(pkt, error::BAD_ADJACENCY),
                }
            }
            if no_route > 0 {
                out.count(error::NO_ROUTE, no_route);
            }
        }
    }
}
