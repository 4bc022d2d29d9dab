//! The forwarder's own addresses, per interface: what it answers ARP and
//! ND for, what ICMP errors come from, and the connected and local routes
//! they put in the FIB.
//!
//! The addresses change while workers forward (`set interface ip
//! address`): [`SharedAddrs`] holds the current [`IfAddrs`], an immutable
//! snapshot that the control thread replaces whole and that nodes load
//! once per vector, so a worker never waits and never sees half a change.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use sluice_graph::iface::IfIndex;

use crate::fib::{Fib, FibError, Key, Path, Prefix, Route};

/// Why an address was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// No such interface.
    #[error("interface index {0} does not exist")]
    NoInterface(IfIndex),
    /// Length past the address width, or a length that leaves no host.
    #[error("{0}/{1}: bad prefix length")]
    Length(IpAddr, u8),
    /// Not a unicast address a host may have.
    #[error("{0} cannot be an interface address")]
    NotUnicast(IpAddr),
    /// The same address twice.
    #[error("{0} is configured twice")]
    Duplicate(IpAddr),
    /// Removing an address the interface does not have.
    #[error("{0} is not an address of that interface")]
    NotFound(IpAddr),
}

/// The current addresses of every interface, replaced whole while the
/// workers forward: readers load a snapshot (no lock, no waiting), the
/// control thread publishes a new one.
#[derive(Debug)]
pub struct SharedAddrs {
    current: ArcSwap<IfAddrs>,
}

impl SharedAddrs {
    /// Starts with `addrs`.
    pub fn new(addrs: Arc<IfAddrs>) -> SharedAddrs {
        SharedAddrs {
            current: ArcSwap::new(addrs),
        }
    }

    /// The addresses now. Nodes take one snapshot a vector: every packet
    /// of the vector sees the same addresses.
    #[inline]
    pub fn snapshot(&self) -> Guard<Arc<IfAddrs>> {
        self.current.load()
    }

    /// Makes `addrs` the addresses every node sees from its next vector.
    pub fn publish(&self, addrs: IfAddrs) {
        self.current.store(Arc::new(addrs));
    }
}

/// The routes one address makes in `table`: its connected subnet (glean)
/// and the address itself (local).
pub fn address_routes(table: u32, interface: IfIndex, addr: IpAddr, len: u8) -> Vec<Route> {
    let (host, net) = match addr {
        IpAddr::V4(a) => (
            Prefix::V4(a, 32),
            Prefix::V4(u32::from(a).masked(len.min(32)).into(), len.min(32)),
        ),
        IpAddr::V6(a) => (
            Prefix::V6(a, 128),
            Prefix::V6(u128::from(a).masked(len.min(128)).into(), len.min(128)),
        ),
    };
    let mut out = Vec::new();
    // A link-local subnet is on every interface at once: one table cannot
    // say which, so only the address itself goes in.
    let link_local = matches!(addr, IpAddr::V6(a) if a.is_unicast_link_local());
    if net != host && !link_local {
        out.push(Route {
            table,
            prefix: net,
            paths: vec![Path::Connected { interface }],
        });
    }
    out.push(Route {
        table,
        prefix: host,
        paths: vec![Path::Local { interface }],
    });
    out
}

/// Addresses of every interface (immutable once built).
#[derive(Debug, Clone, Default)]
pub struct IfAddrs {
    v4: Vec<Vec<(Ipv4Addr, u8)>>,
    v6: Vec<Vec<(Ipv6Addr, u8)>>,
}

impl IfAddrs {
    /// No addresses, for `interfaces` interfaces.
    pub fn new(interfaces: usize) -> IfAddrs {
        IfAddrs {
            v4: vec![Vec::new(); interfaces],
            v6: vec![Vec::new(); interfaces],
        }
    }

    /// Gives `interface` the address `addr/len`.
    pub fn add(&mut self, interface: IfIndex, addr: IpAddr, len: u8) -> Result<(), AddrError> {
        let i = interface as usize;
        if i >= self.v4.len() {
            return Err(AddrError::NoInterface(interface));
        }
        if self.all().any(|(_, a, _)| a == addr) {
            return Err(AddrError::Duplicate(addr));
        }
        match addr {
            IpAddr::V4(a) => {
                if len == 0 || len > 32 {
                    return Err(AddrError::Length(addr, len));
                }
                if a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback() {
                    return Err(AddrError::NotUnicast(addr));
                }
                self.v4[i].push((a, len));
            }
            IpAddr::V6(a) => {
                if len == 0 || len > 128 {
                    return Err(AddrError::Length(addr, len));
                }
                if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                    return Err(AddrError::NotUnicast(addr));
                }
                self.v6[i].push((a, len));
            }
        }
        Ok(())
    }

    /// Takes `addr` away from `interface`; its length is returned.
    pub fn remove(&mut self, interface: IfIndex, addr: IpAddr) -> Result<u8, AddrError> {
        let i = interface as usize;
        if i >= self.v4.len() {
            return Err(AddrError::NoInterface(interface));
        }
        let found = match addr {
            IpAddr::V4(a) => take(&mut self.v4[i], a),
            IpAddr::V6(a) => take(&mut self.v6[i], a),
        };
        found.ok_or(AddrError::NotFound(addr))
    }

    /// Every address: interface, address, length; IPv4 first.
    pub fn all(&self) -> impl Iterator<Item = (IfIndex, IpAddr, u8)> + '_ {
        let v4 = self.v4.iter().enumerate().flat_map(|(i, v)| {
            v.iter()
                .map(move |&(a, l)| (i as IfIndex, IpAddr::V4(a), l))
        });
        let v6 = self.v6.iter().enumerate().flat_map(|(i, v)| {
            v.iter()
                .map(move |&(a, l)| (i as IfIndex, IpAddr::V6(a), l))
        });
        v4.chain(v6)
    }

    /// The IPv4 addresses of `interface`.
    pub fn v4(&self, interface: IfIndex) -> &[(Ipv4Addr, u8)] {
        self.v4.get(interface as usize).map_or(&[], Vec::as_slice)
    }

    /// The IPv6 addresses of `interface`.
    pub fn v6(&self, interface: IfIndex) -> &[(Ipv6Addr, u8)] {
        self.v6.get(interface as usize).map_or(&[], Vec::as_slice)
    }

    /// The address ICMPv4 errors about packets received on `interface`
    /// come from: its first, else the first of any interface.
    pub fn v4_source(&self, interface: IfIndex) -> Option<Ipv4Addr> {
        self.v4(interface)
            .first()
            .or_else(|| self.v4.iter().flatten().next())
            .map(|&(a, _)| a)
    }

    /// As [`IfAddrs::v4_source`], for IPv6: a global address first.
    pub fn v6_source(&self, interface: IfIndex) -> Option<Ipv6Addr> {
        let global = |v: &[(Ipv6Addr, u8)]| {
            v.iter()
                .find(|(a, _)| !a.is_unicast_link_local())
                .or_else(|| v.first())
                .map(|&(a, _)| a)
        };
        global(self.v6(interface)).or_else(|| self.v6.iter().find_map(|v| global(v)))
    }

    /// Whether `addr` is an IPv4 address of `interface`.
    pub fn is_v4(&self, interface: IfIndex, addr: Ipv4Addr) -> bool {
        self.v4(interface).iter().any(|&(a, _)| a == addr)
    }

    /// Whether `addr` is an IPv6 address of `interface`.
    pub fn is_v6(&self, interface: IfIndex, addr: Ipv6Addr) -> bool {
        self.v6(interface).iter().any(|&(a, _)| a == addr)
    }

    /// Whether `addr` is on a subnet connected to `interface`.
    pub fn on_link(&self, interface: IfIndex, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(x) => self
                .v4(interface)
                .iter()
                .any(|&(a, l)| u32::from(a).masked(l) == u32::from(x).masked(l)),
            IpAddr::V6(x) => self
                .v6(interface)
                .iter()
                .any(|&(a, l)| u128::from(a).masked(l) == u128::from(x).masked(l)),
        }
    }

    /// The routes the addresses make: the connected subnet (glean) and the
    /// address itself (local), in each interface's table.
    pub fn routes(&self, fib: &Fib) -> Vec<Route> {
        self.all()
            .flat_map(|(interface, addr, len)| {
                address_routes(fib.table_of(interface), interface, addr, len)
            })
            .collect()
    }

    /// Adds [`IfAddrs::routes`] to `fib`.
    pub fn install(&self, fib: &Fib) -> Result<(), FibError> {
        for r in self.routes(fib) {
            fib.add(&r)?;
        }
        Ok(())
    }
}

/// Removes `addr` from `list`, giving back its length.
fn take<A: PartialEq + Copy>(list: &mut Vec<(A, u8)>, addr: A) -> Option<u8> {
    let at = list.iter().position(|&(a, _)| a == addr)?;
    Some(list.remove(at).1)
}
