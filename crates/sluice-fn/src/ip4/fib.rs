//! A small IPv4 forwarding table: longest-prefix match over a 16-8-8
//! multibit trie, built whole from a route list and swapped as a snapshot.
//!
//! A lookup is one to three dependent array reads: the top 16 bits of the
//! address index a 65,536-entry root; an entry either holds the result or
//! points to a 256-entry group for the next 8 bits, and again for the last
//! 8. Routes are painted in order of increasing prefix length, so a longer
//! prefix always overwrites the shorter ones it sits in (controlled prefix
//! expansion) and no entry needs to remember its depth.
//!
//! This is the table for the first chain; the routing issue chooses the
//! structure for a million routes by measurement.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use sluice_graph::iface::{IfIndex, Interfaces};
use sluice_wire::{EtherType, MacAddr};

/// Entry bit: the rest is a group index, not a result.
const GROUP: u32 = 1 << 31;
/// Entry value for "no route".
const MISS: u32 = 0;

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// Send out of `interface` to the neighbour whose MAC is `mac`.
    Forward {
        /// Outgoing interface.
        interface: IfIndex,
        /// The next hop's MAC address.
        mac: MacAddr,
    },
    /// Drop (a blackhole route).
    Drop,
}

/// One route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Network address (host bits zero).
    pub prefix: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub len: u8,
    /// What to do with matching packets.
    pub target: RouteTarget,
}

/// Where a lookup sends a packet: the outcome of a route, shared by every
/// route with the same target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjacency {
    /// What to do.
    pub target: RouteTarget,
    /// The outgoing interface's MAC (source of the rewritten frame).
    pub src_mac: MacAddr,
    /// The outgoing interface's MTU.
    pub mtu: u16,
    /// The Ethernet header to write in front of forwarded packets:
    /// next hop's MAC, interface MAC, EtherType IPv4.
    pub l2_header: [u8; 14],
}

/// Errors in a route list.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FibError {
    /// Prefix length above 32.
    #[error("prefix length {0} is more than 32")]
    BadLength(u8),
    /// Bits set past the prefix length.
    #[error("{0}/{1} has host bits set (did you mean {2}/{1}?)")]
    HostBits(Ipv4Addr, u8, Ipv4Addr),
    /// A route out of an interface that does not exist or cannot send.
    #[error("route {0}/{1} goes out of interface index {2}, which cannot transmit")]
    BadInterface(Ipv4Addr, u8, IfIndex),
    /// The same prefix twice.
    #[error("route {0}/{1} is given twice")]
    Duplicate(Ipv4Addr, u8),
    /// More adjacencies or groups than the entry encoding holds.
    #[error("table too large")]
    TooLarge,
}

/// An immutable IPv4 FIB snapshot.
#[derive(Debug, Clone)]
pub struct Ip4Fib {
    root: Vec<u32>,
    l2: Vec<u32>,
    l3: Vec<u32>,
    adjacencies: Vec<Adjacency>,
    routes: usize,
}

impl Ip4Fib {
    /// Builds the table from `routes`, checking each against `interfaces`.
    pub fn build(routes: &[Route], interfaces: &Interfaces) -> Result<Ip4Fib, FibError> {
        let mut sorted: Vec<Route> = routes.to_vec();
        for r in &sorted {
            if r.len > 32 {
                return Err(FibError::BadLength(r.len));
            }
            let net = u32::from(r.prefix) & mask(r.len);
            if net != u32::from(r.prefix) {
                return Err(FibError::HostBits(r.prefix, r.len, net.into()));
            }
        }
        sorted.sort_by_key(|r| (r.len, u32::from(r.prefix)));
        if let Some(w) = sorted
            .windows(2)
            .find(|w| w[0].len == w[1].len && w[0].prefix == w[1].prefix)
        {
            return Err(FibError::Duplicate(w[0].prefix, w[0].len));
        }
        let mut fib = Ip4Fib {
            root: vec![MISS; 1 << 16],
            l2: Vec::new(),
            l3: Vec::new(),
            adjacencies: Vec::new(),
            routes: sorted.len(),
        };
        let mut adj_of: HashMap<RouteTarget, u32> = HashMap::new();
        for r in &sorted {
            let adj = match adj_of.get(&r.target) {
                Some(&a) => a,
                None => {
                    let a = fib.adjacency(r, interfaces)?;
                    adj_of.insert(r.target, a);
                    a
                }
            };
            fib.paint(u32::from(r.prefix), r.len, adj + 1)?;
        }
        Ok(fib)
    }

    fn adjacency(&mut self, r: &Route, interfaces: &Interfaces) -> Result<u32, FibError> {
        let (src_mac, dst_mac, mtu) = match r.target {
            RouteTarget::Forward { interface, mac } => match interfaces.get(interface) {
                Some(i) if i.output_node.is_some() => (i.mac, mac, i.mtu),
                _ => return Err(FibError::BadInterface(r.prefix, r.len, interface)),
            },
            RouteTarget::Drop => (MacAddr::ZERO, MacAddr::ZERO, 0),
        };
        let mut l2_header = [0u8; 14];
        l2_header[0..6].copy_from_slice(&dst_mac.0);
        l2_header[6..12].copy_from_slice(&src_mac.0);
        l2_header[12..14].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        if self.adjacencies.len() >= (GROUP - 2) as usize {
            return Err(FibError::TooLarge);
        }
        self.adjacencies.push(Adjacency {
            target: r.target,
            src_mac,
            mtu,
            l2_header,
        });
        Ok(self.adjacencies.len() as u32 - 1)
    }

    /// Writes `value` over every entry the prefix covers.
    fn paint(&mut self, addr: u32, len: u8, value: u32) -> Result<(), FibError> {
        if len <= 16 {
            let first = (addr >> 16) as usize;
            let n = 1usize << (16 - len);
            // Routes come shortest first, so no group exists under these
            // entries yet: plain overwrite is exact.
            self.root[first..first + n].fill(value);
            return Ok(());
        }
        let top = (addr >> 16) as usize;
        let g2 = expand(&mut self.root[top], &mut self.l2)?;
        if len <= 24 {
            let first = ((addr >> 8) & 0xff) as usize;
            let n = 1usize << (24 - len);
            self.l2[g2 * 256 + first..g2 * 256 + first + n].fill(value);
            return Ok(());
        }
        let mid = g2 * 256 + ((addr >> 8) & 0xff) as usize;
        let mut entry = self.l2[mid];
        let g3 = expand(&mut entry, &mut self.l3)?;
        self.l2[mid] = entry;
        let first = (addr & 0xff) as usize;
        let n = 1usize << (32 - len);
        self.l3[g3 * 256 + first..g3 * 256 + first + n].fill(value);
        Ok(())
    }

    /// The adjacency for `dst`, or `None` when no route matches.
    ///
    /// The second level is read whether or not the root entry points to a
    /// group (a group index of 0 when it does not, so the read lands on a
    /// valid entry and is thrown away), and the answer is picked with a
    /// mask: with real traffic, whether a /16 holds longer prefixes is a
    /// coin toss per packet, and a mispredicted branch there cost more than
    /// the extra L1 read (22 against 13.5 cycles a lookup on the demo's
    /// table). Prefixes longer than /24 are rare, so the third level keeps
    /// its (well predicted) branch rather than a third dependent read.
    #[inline(always)]
    pub fn lookup(&self, dst: u32) -> Option<u32> {
        let e1 = self.root[(dst >> 16) as usize];
        let g1 = e1 >> 31;
        let i2 = ((((e1 & !GROUP) as usize) << 8) | ((dst >> 8) & 0xff) as usize) * g1 as usize;
        let e2 = self.l2.get(i2).copied().unwrap_or(MISS);
        // Tell the compiler the condition is unpredictable, or it turns the
        // select back into the branch this is here to avoid.
        let mut e = std::hint::select_unpredictable(g1 != 0, e2, e1);
        if e & GROUP != 0 {
            let i3 = (((e & !GROUP) as usize) << 8) | (dst & 0xff) as usize;
            e = self.l3.get(i3).copied().unwrap_or(MISS);
        }
        e.checked_sub(1)
    }

    /// Adjacency number `i`.
    #[inline]
    pub fn adjacency_at(&self, i: u32) -> Option<&Adjacency> {
        self.adjacencies.get(i as usize)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes
    }

    /// Whether the table has no route.
    pub fn is_empty(&self) -> bool {
        self.routes == 0
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

/// Makes `e` point to a group (filled with its old value) and returns the
/// group's index.
fn expand(e: &mut u32, groups: &mut Vec<u32>) -> Result<usize, FibError> {
    if *e & GROUP != 0 {
        return Ok((*e & !GROUP) as usize);
    }
    let g = groups.len() / 256;
    if g as u32 >= GROUP {
        return Err(FibError::TooLarge);
    }
    groups.extend(std::iter::repeat_n(*e, 256));
    *e = GROUP | g as u32;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ifs() -> Interfaces {
        let mut i = Interfaces::new();
        for k in 0..4u8 {
            i.add(
                &format!("if{k}"),
                "test",
                MacAddr([2, 0, 0, 0, 0, k]),
                1500,
                Some(format!("if{k}-output")),
            );
        }
        i
    }

    fn fwd(k: u32) -> RouteTarget {
        RouteTarget::Forward {
            interface: k % 4,
            mac: MacAddr([2, 0, 0, 0, 1, k as u8]),
        }
    }

    /// The reference: the longest matching prefix, by linear scan.
    fn reference(routes: &[Route], dst: u32) -> Option<RouteTarget> {
        routes
            .iter()
            .filter(|r| dst & mask(r.len) == u32::from(r.prefix))
            .max_by_key(|r| r.len)
            .map(|r| r.target)
    }

    #[test]
    fn longest_prefix_wins() {
        let routes = [
            Route {
                prefix: Ipv4Addr::new(0, 0, 0, 0),
                len: 0,
                target: fwd(0),
            },
            Route {
                prefix: Ipv4Addr::new(10, 0, 0, 0),
                len: 8,
                target: fwd(1),
            },
            Route {
                prefix: Ipv4Addr::new(10, 1, 0, 0),
                len: 16,
                target: fwd(2),
            },
            Route {
                prefix: Ipv4Addr::new(10, 1, 2, 0),
                len: 24,
                target: fwd(3),
            },
            Route {
                prefix: Ipv4Addr::new(10, 1, 2, 128),
                len: 25,
                target: RouteTarget::Drop,
            },
            Route {
                prefix: Ipv4Addr::new(10, 1, 2, 7),
                len: 32,
                target: fwd(5),
            },
        ];
        let fib = Ip4Fib::build(&routes, &ifs()).unwrap();
        for (a, want) in [
            ([1, 2, 3, 4], fwd(0)),
            ([10, 9, 9, 9], fwd(1)),
            ([10, 1, 9, 9], fwd(2)),
            ([10, 1, 2, 3], fwd(3)),
            ([10, 1, 2, 200], RouteTarget::Drop),
            ([10, 1, 2, 7], fwd(5)),
            ([10, 1, 2, 8], fwd(3)),
        ] {
            let adj = fib.lookup(u32::from_be_bytes(a)).unwrap();
            assert_eq!(fib.adjacency_at(adj).unwrap().target, want, "{a:?}");
        }
        let empty = Ip4Fib::build(&[], &ifs()).unwrap();
        assert_eq!(empty.lookup(0x0a000001), None);
    }

    #[test]
    fn bad_routes_are_refused() {
        let r = |a: [u8; 4], len, target| Route {
            prefix: a.into(),
            len,
            target,
        };
        let i = ifs();
        assert_eq!(
            Ip4Fib::build(&[r([10, 0, 0, 0], 33, fwd(0))], &i).unwrap_err(),
            FibError::BadLength(33)
        );
        assert!(matches!(
            Ip4Fib::build(&[r([10, 0, 0, 1], 8, fwd(0))], &i),
            Err(FibError::HostBits(..))
        ));
        assert!(matches!(
            Ip4Fib::build(
                &[r([10, 0, 0, 0], 8, fwd(0)), r([10, 0, 0, 0], 8, fwd(1))],
                &i
            ),
            Err(FibError::Duplicate(..))
        ));
        let bad_if = RouteTarget::Forward {
            interface: 9,
            mac: MacAddr::ZERO,
        };
        assert!(matches!(
            Ip4Fib::build(&[r([10, 0, 0, 0], 8, bad_if)], &i),
            Err(FibError::BadInterface(..))
        ));
    }

    proptest! {
        /// Same answer as a linear scan for random tables and addresses.
        #[test]
        fn matches_linear_scan(
            raw in proptest::collection::vec((any::<u32>(), 0u8..=32, 0u32..8), 0..200),
            probes in proptest::collection::vec(any::<u32>(), 200),
        ) {
            let mut routes: Vec<Route> = Vec::new();
            for (a, len, t) in raw {
                let prefix = a & mask(len);
                if routes.iter().any(|r| u32::from(r.prefix) == prefix && r.len == len) {
                    continue;
                }
                let target = if t == 7 { RouteTarget::Drop } else { fwd(t) };
                routes.push(Route { prefix: prefix.into(), len, target });
            }
            let fib = Ip4Fib::build(&routes, &ifs()).unwrap();
            // Probe random addresses and the edges of every prefix.
            let mut addrs = probes;
            for r in &routes {
                let p = u32::from(r.prefix);
                addrs.push(p);
                addrs.push(p | !mask(r.len));
                addrs.push(p.wrapping_sub(1));
            }
            for a in addrs {
                let got = fib.lookup(a).map(|i| fib.adjacency_at(i).unwrap().target);
                prop_assert_eq!(got, reference(&routes, a), "address {:#x}", a);
            }
        }
    }
}
