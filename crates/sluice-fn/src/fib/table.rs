//! The forwarding information base: per table (VRF) an IPv4 and an IPv6
//! trie, the adjacencies their routes lead to, and the single writer that
//! changes them while workers forward.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluice_buf::table::{AtomicTable, TableError};
use sluice_graph::iface::{IfIndex, Interfaces};
use sluice_wire::MacAddr;

use super::adj::{Adj, AdjKind, AdjTable, LB_FLAG, MAX_PATHS};
use super::lpm::{Key, Lpm, LpmConfig, LpmError};

/// How long a freed adjacency or load balance waits before reuse: far
/// longer than any worker holds an index it read (one vector).
const GRACE: Duration = Duration::from_secs(1);

/// An IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// IPv4 `addr/len`.
    V4(Ipv4Addr, u8),
    /// IPv6 `addr/len`.
    V6(Ipv6Addr, u8),
}

impl Prefix {
    /// Prefix length.
    pub fn prefix_len(&self) -> u8 {
        match *self {
            Prefix::V4(_, l) | Prefix::V6(_, l) => l,
        }
    }

    /// Whether the prefix is /0 (matches every address).
    pub fn is_default(&self) -> bool {
        self.prefix_len() == 0
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        match *self {
            Prefix::V4(a, _) => a.into(),
            Prefix::V6(a, _) => a.into(),
        }
    }

    /// Whether `addr` is inside the prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (*self, addr) {
            (Prefix::V4(p, l), IpAddr::V4(a)) => u32::from(a).masked(l) == u32::from(p),
            (Prefix::V6(p, l), IpAddr::V6(a)) => u128::from(a).masked(l) == u128::from(p),
            _ => false,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.prefix_len())
    }
}

/// Why a prefix did not parse.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PrefixError {
    /// Not `address/length`.
    #[error("`{0}` is not address/length")]
    Syntax(String),
    /// Length past the address width.
    #[error("`{0}`: prefix length {1} is too long")]
    Length(String, u8),
    /// Bits set past the length.
    #[error("{0} has host bits set (did you mean {1}?)")]
    HostBits(String, String),
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_string());
        let (a, l) = s.split_once('/').ok_or_else(syntax)?;
        let len: u8 = l.parse().map_err(|_| syntax())?;
        let p = match a.parse::<IpAddr>().map_err(|_| syntax())? {
            IpAddr::V4(a) if len <= 32 => Prefix::V4(a, len),
            IpAddr::V6(a) if len <= 128 => Prefix::V6(a, len),
            _ => return Err(PrefixError::Length(s.to_string(), len)),
        };
        let net = p.network();
        if net != p {
            return Err(PrefixError::HostBits(s.to_string(), net.to_string()));
        }
        Ok(p)
    }
}

impl Prefix {
    /// The same prefix with host bits cleared.
    pub fn network(&self) -> Prefix {
        match *self {
            Prefix::V4(a, l) => Prefix::V4(u32::from(a).masked(l).into(), l),
            Prefix::V6(a, l) => Prefix::V6(u128::from(a).masked(l).into(), l),
        }
    }
}

/// One way out for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Through a neighbour on `interface`: its MAC given (`mac`), or found
    /// by ARP/ND for `addr`.
    Via {
        /// Outgoing interface.
        interface: IfIndex,
        /// The neighbour's address, to resolve.
        addr: Option<IpAddr>,
        /// The neighbour's MAC, if static.
        mac: Option<MacAddr>,
    },
    /// A subnet on `interface`: each destination is its own neighbour.
    Connected {
        /// The interface the subnet is on.
        interface: IfIndex,
    },
    /// An address of this host on `interface`.
    Local {
        /// The interface that has the address.
        interface: IfIndex,
    },
    /// Drop silently.
    Drop,
    /// Drop, answer ICMP administratively prohibited.
    Prohibit,
    /// Drop, answer ICMP destination unreachable.
    Unreachable,
}

impl Path {
    fn forwards(&self) -> bool {
        matches!(self, Path::Via { .. } | Path::Connected { .. })
    }
}

/// A route: in `table`, packets for `prefix` take one of `paths` (several:
/// ECMP by flow hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Table (VRF) number.
    pub table: u32,
    /// Destination prefix.
    pub prefix: Prefix,
    /// Where to.
    pub paths: Vec<Path>,
}

/// Shape of the FIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibConfig {
    /// Number of tables (VRFs); table 0 always exists.
    pub tables: u32,
    /// Shape of each IPv4 trie.
    pub v4: LpmConfig,
    /// Shape of each IPv6 trie.
    pub v6: LpmConfig,
    /// Most adjacencies.
    pub adjacencies: u32,
    /// Most ECMP groups.
    pub load_balances: u32,
    /// Width of the first level of tables other than table 0. A 24-bit
    /// first level commits 64 MiB once a short prefix (a default route)
    /// covers it; VRFs usually carry few routes, so they default to 16
    /// bits (256 KiB), and a VRF with a full table can ask for 24.
    pub vrf_root_bits: u32,
}

impl Default for FibConfig {
    /// A 24-bit first level, then 4-bit levels of one cache line each:
    /// the fastest shape measured at 1M IPv4 and 500k IPv6 routes, and the
    /// smallest (72 and 540 bytes a route, against 128 and 3,400 with
    /// 8-bit levels). IPv6 adds skip and route nodes over the levels a
    /// route shares with no other (203 bytes a route, and about 2.5×
    /// fewer cycles a lookup at 500k routes). Room for 2M IPv4 groups
    /// (1M routes take ~0.5M) and 64M IPv6 groups (500k routes take
    /// ~0.6M), reserved, not committed.
    fn default() -> FibConfig {
        FibConfig {
            tables: 1,
            v4: LpmConfig {
                root_bits: 24,
                max_groups: 1 << 21,
                huge_pages: true,
                stride: 4,
                skip: false,
            },
            v6: LpmConfig {
                root_bits: 24,
                max_groups: 1 << 26,
                huge_pages: true,
                stride: 4,
                skip: true,
            },
            adjacencies: 1 << 16,
            load_balances: 1 << 14,
            vrf_root_bits: 16,
        }
    }
}

/// Why a FIB change was refused. A refused change changes nothing.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FibError {
    /// Table number past the configured count.
    #[error("table {0} does not exist (tables 0..{1})")]
    NoTable(u32, u32),
    /// A route without paths, or with more than [`MAX_PATHS`].
    #[error("route {0} has {1} paths (1..={MAX_PATHS})")]
    Paths(Prefix, usize),
    /// ECMP over something that does not forward.
    #[error("route {0}: only neighbour and connected paths can be combined")]
    Mixed(Prefix),
    /// A path out of an interface that does not exist or cannot send.
    #[error("route {0} goes out of interface index {1}, which cannot transmit")]
    BadInterface(Prefix, IfIndex),
    /// A neighbour path with neither an address nor a MAC.
    #[error("route {0}: a neighbour path needs an address or a MAC")]
    NoNeighbor(Prefix),
    /// A neighbour of the other address family.
    #[error("route {0}: neighbour {1} is not of the route's family")]
    Family(Prefix, IpAddr),
    /// Removing a route that is not there.
    #[error("no route {1} in table {0}")]
    NoRoute(u32, Prefix),
    /// The adjacency or load-balance table is full.
    #[error("{0} table full")]
    Full(&'static str),
    /// The trie refused it.
    #[error("route {0}: {1}")]
    Trie(Prefix, LpmError),
    /// Memory could not be mapped.
    #[error(transparent)]
    Memory(#[from] TableError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AdjKey {
    kind: AdjKind,
    interface: IfIndex,
    addr: Option<IpAddr>,
    mac: Option<MacAddr>,
}

/// A slot allocator whose freed slots wait out [`GRACE`] before reuse.
///
/// A freed slot keeps its contents (and its place in the dedupe map) while
/// it waits: a route that asks for the same adjacency again in the
/// meantime revives it instead of taking a new slot, so churn on the same
/// next hops never runs the table dry.
#[derive(Debug)]
struct Slots {
    next: u32,
    capacity: u32,
    refs: Vec<u32>,
    /// When each slot's last reference went, if it is waiting.
    released: Vec<Option<Instant>>,
    free: VecDeque<(Instant, u32)>,
}

impl Slots {
    fn new(capacity: u32) -> Slots {
        Slots {
            next: 0,
            capacity,
            refs: Vec::new(),
            released: Vec::new(),
            free: VecDeque::new(),
        }
    }

    /// A slot with one reference, and whether it was in use before (its
    /// old contents must be forgotten by the caller).
    fn alloc(&mut self) -> Option<(u32, bool)> {
        while let Some(&(t, i)) = self.free.front() {
            let k = i as usize;
            // Revived, or released again later (a newer entry waits).
            if self.refs[k] > 0 || self.released[k] != Some(t) {
                self.free.pop_front();
                continue;
            }
            if t.elapsed() < GRACE {
                break;
            }
            self.free.pop_front();
            self.refs[k] = 1;
            self.released[k] = None;
            return Some((i, true));
        }
        if self.next < self.capacity {
            self.next += 1;
            self.refs.push(1);
            self.released.push(None);
            return Some((self.next - 1, false));
        }
        None
    }

    /// Takes one more reference (reviving a waiting slot).
    fn revive(&mut self, i: u32) {
        if let Some(r) = self.refs.get_mut(i as usize) {
            *r += 1;
            self.released[i as usize] = None;
        }
    }

    /// Drops a reference; the slot waits once none is left.
    fn release(&mut self, i: u32) {
        let Some(r) = self.refs.get_mut(i as usize) else {
            return;
        };
        *r = r.saturating_sub(1);
        if *r == 0 {
            let now = Instant::now();
            self.released[i as usize] = Some(now);
            self.free.push_back((now, i));
        }
    }

    fn in_use(&self) -> usize {
        self.refs.iter().filter(|&&r| r > 0).count()
    }
}

#[derive(Debug)]
struct Writer {
    adj_of: HashMap<AdjKey, u32>,
    adj_key: HashMap<u32, AdjKey>,
    adjs: Slots,
    lb_of: HashMap<Vec<u32>, u32>,
    lb_paths: HashMap<u32, Vec<u32>>,
    lbs: Slots,
    /// The neighbour table: by interface and address.
    neighbors: HashMap<(IfIndex, IpAddr), Neighbor>,
}

/// One neighbour as the writer keeps it.
#[derive(Debug, Clone, Copy)]
struct Neighbor {
    mac: MacAddr,
    is_static: bool,
    seen: Instant,
    /// The host route learning put in the table, to take out on aging.
    host_route: Option<(u32, Prefix)>,
}

/// How fresh a neighbour is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighborState {
    /// Configured; never ages.
    Static,
    /// Heard from within the reachable time.
    Reachable,
    /// Not heard from for a while; still used until it ages out.
    Stale,
}

/// One row of `show ip neighbors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborEntry {
    /// Interface.
    pub interface: IfIndex,
    /// Its address.
    pub addr: IpAddr,
    /// Its MAC.
    pub mac: MacAddr,
    /// State.
    pub state: NeighborState,
    /// Time since last heard from.
    pub age: Duration,
}

/// A neighbour not heard from for this long is stale.
pub const REACHABLE_TIME: Duration = Duration::from_secs(30);

/// The FIB: shared by every worker (lookups) and the control thread (the
/// only writer).
#[derive(Debug)]
pub struct Fib {
    interfaces: Arc<Interfaces>,
    v4: Vec<Lpm<u32>>,
    v6: Vec<Lpm<u128>>,
    adj: AdjTable,
    /// Per interface: the table its received packets are looked up in.
    if_table: AtomicTable<AtomicU32>,
    /// Bumped whenever a neighbour is learned or lost, so that nodes
    /// holding packets for resolution know when to look again.
    neighbor_generation: AtomicU64,
    writer: Mutex<Writer>,
}

impl Fib {
    /// An empty FIB for `interfaces`.
    pub fn new(config: FibConfig, interfaces: Arc<Interfaces>) -> Result<Fib, FibError> {
        let tables = config.tables.max(1);
        let trie = |e| FibError::Trie(Prefix::V4(Ipv4Addr::UNSPECIFIED, 0), e);
        let shape = |base: LpmConfig, t: u32| LpmConfig {
            root_bits: if t == 0 {
                base.root_bits
            } else {
                config.vrf_root_bits
            },
            ..base
        };
        let v4 = (0..tables)
            .map(|t| Lpm::new(shape(config.v4, t)).map_err(trie))
            .collect::<Result<_, _>>()?;
        let v6 = (0..tables)
            .map(|t| Lpm::new(shape(config.v6, t)).map_err(trie))
            .collect::<Result<_, _>>()?;
        let adjacencies = config.adjacencies.min(LB_FLAG - 1);
        let load_balances = config.load_balances.min(LB_FLAG - 1);
        Ok(Fib {
            if_table: AtomicTable::new(interfaces.len(), false)?,
            interfaces,
            v4,
            v6,
            adj: AdjTable::new(adjacencies, load_balances)?,
            neighbor_generation: AtomicU64::new(0),
            writer: Mutex::new(Writer {
                adj_of: HashMap::new(),
                adj_key: HashMap::new(),
                adjs: Slots::new(adjacencies),
                lb_of: HashMap::new(),
                lb_paths: HashMap::new(),
                lbs: Slots::new(load_balances),
                neighbors: HashMap::new(),
            }),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of tables.
    pub fn tables(&self) -> u32 {
        self.v4.len() as u32
    }

    /// The interfaces the FIB forwards on.
    pub fn interfaces(&self) -> &Arc<Interfaces> {
        &self.interfaces
    }

    /// Table `t`'s IPv4 trie.
    #[inline(always)]
    pub fn v4(&self, t: u32) -> Option<&Lpm<u32>> {
        self.v4.get(t as usize)
    }

    /// Table `t`'s IPv6 trie.
    #[inline(always)]
    pub fn v6(&self, t: u32) -> Option<&Lpm<u128>> {
        self.v6.get(t as usize)
    }

    /// The adjacencies.
    #[inline(always)]
    pub fn adj(&self) -> &AdjTable {
        &self.adj
    }

    /// The table packets received on `interface` are looked up in.
    #[inline(always)]
    pub fn table_of(&self, interface: IfIndex) -> u32 {
        self.if_table
            .get(interface as usize)
            .map_or(0, |t| t.load(Relaxed))
    }

    /// Looks up packets received on `interface` in `table`.
    pub fn bind(&self, interface: IfIndex, table: u32) -> Result<(), FibError> {
        if table >= self.tables() {
            return Err(FibError::NoTable(table, self.tables()));
        }
        match self.if_table.get(interface as usize) {
            Some(t) => {
                t.store(table, Relaxed);
                Ok(())
            }
            None => Err(FibError::BadInterface(
                Prefix::V4(Ipv4Addr::UNSPECIFIED, 0),
                interface,
            )),
        }
    }

    fn check(&self, r: &Route) -> Result<(), FibError> {
        let p = r.prefix;
        if r.table >= self.tables() {
            return Err(FibError::NoTable(r.table, self.tables()));
        }
        if r.paths.is_empty() || r.paths.len() > MAX_PATHS {
            return Err(FibError::Paths(p, r.paths.len()));
        }
        if r.paths.len() > 1 && !r.paths.iter().all(Path::forwards) {
            return Err(FibError::Mixed(p));
        }
        for path in &r.paths {
            match *path {
                Path::Via {
                    interface,
                    addr,
                    mac,
                } => {
                    self.can_send(p, interface)?;
                    match addr {
                        None if mac.is_none() => return Err(FibError::NoNeighbor(p)),
                        Some(a) if a.is_ipv4() != matches!(p, Prefix::V4(..)) => {
                            return Err(FibError::Family(p, a));
                        }
                        _ => {}
                    }
                }
                Path::Connected { interface } => self.can_send(p, interface)?,
                Path::Local { interface } if self.interfaces.get(interface).is_none() => {
                    return Err(FibError::BadInterface(p, interface));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn can_send(&self, p: Prefix, interface: IfIndex) -> Result<(), FibError> {
        match self.interfaces.get(interface) {
            Some(i) if i.output_node.is_some() => Ok(()),
            _ => Err(FibError::BadInterface(p, interface)),
        }
    }

    /// Adds `route`, replacing the route for the same prefix in its table.
    /// Workers see each address switch to the new paths at once.
    pub fn add(&self, route: &Route) -> Result<(), FibError> {
        self.check(route)?;
        let mut w = self.writer();
        let value = self.acquire(&mut w, &route.paths)?;
        let p = route.prefix;
        let t = route.table as usize;
        let inserted = match p {
            Prefix::V4(a, l) => self.v4[t].insert(a.into(), l, value),
            Prefix::V6(a, l) => self.v6[t].insert(a.into(), l, value),
        };
        match inserted {
            Ok(old) => {
                if let Some(old) = old {
                    self.release(&mut w, old);
                }
                Ok(())
            }
            Err(e) => {
                self.release(&mut w, value);
                Err(FibError::Trie(p, e))
            }
        }
    }

    /// Removes the route for `prefix` from `table`.
    pub fn remove(&self, table: u32, prefix: Prefix) -> Result<(), FibError> {
        if table >= self.tables() {
            return Err(FibError::NoTable(table, self.tables()));
        }
        let mut w = self.writer();
        let old = match prefix {
            Prefix::V4(a, l) => self.v4[table as usize].remove(a.into(), l),
            Prefix::V6(a, l) => self.v6[table as usize].remove(a.into(), l),
        };
        let old = old.ok_or(FibError::NoRoute(table, prefix))?;
        self.release(&mut w, old);
        Ok(())
    }

    fn update_neighbor_adj(
        &self,
        w: &Writer,
        interface: IfIndex,
        addr: IpAddr,
        mac: Option<MacAddr>,
    ) {
        let key = AdjKey {
            kind: AdjKind::Neighbor,
            interface,
            addr: Some(addr),
            mac: None,
        };
        if let Some(&i) = w.adj_of.get(&key) {
            self.adj.set_mac(i, mac);
        }
        self.neighbor_generation.fetch_add(1, Release);
    }

    /// Learns (or refreshes) that `addr` on `interface` is at `mac`, from
    /// ARP or ND. Routes through it start forwarding; if the address is on
    /// a connected subnet (`on_link`), a host route to it is added so that
    /// packets for it stop gleaning. A static entry is never changed.
    /// Returns false if the entry was static and disagreed.
    pub fn learn_neighbor(
        &self,
        interface: IfIndex,
        addr: IpAddr,
        mac: MacAddr,
        on_link: bool,
    ) -> bool {
        self.set_neighbor(interface, addr, mac, false, on_link)
    }

    /// Configures a neighbour that never ages and that learning never
    /// overrides; `on_link` as for [`Fib::learn_neighbor`].
    pub fn add_static_neighbor(
        &self,
        interface: IfIndex,
        addr: IpAddr,
        mac: MacAddr,
        on_link: bool,
    ) {
        self.set_neighbor(interface, addr, mac, true, on_link);
    }

    fn set_neighbor(
        &self,
        interface: IfIndex,
        addr: IpAddr,
        mac: MacAddr,
        is_static: bool,
        on_link: bool,
    ) -> bool {
        let mut w = self.writer();
        let now = Instant::now();
        let host_route = match w.neighbors.get_mut(&(interface, addr)) {
            Some(n) if n.is_static && !is_static => return n.mac == mac,
            Some(n) => {
                n.seen = now;
                n.is_static = is_static;
                if n.mac != mac {
                    n.mac = mac;
                    self.update_neighbor_adj(&w, interface, addr, Some(mac));
                }
                return true;
            }
            None => None,
        };
        w.neighbors.insert(
            (interface, addr),
            Neighbor {
                mac,
                is_static,
                seen: now,
                host_route,
            },
        );
        self.update_neighbor_adj(&w, interface, addr, Some(mac));
        if on_link {
            let table = self.table_of(interface);
            let prefix = match addr {
                IpAddr::V4(a) => Prefix::V4(a, 32),
                IpAddr::V6(a) => Prefix::V6(a, 128),
            };
            let exists = match prefix {
                Prefix::V4(a, l) => self.v4[table as usize].get(a.into(), l).is_some(),
                Prefix::V6(a, l) => self.v6[table as usize].get(a.into(), l).is_some(),
            };
            if !exists {
                let r = Route {
                    table,
                    prefix,
                    paths: vec![Path::Via {
                        interface,
                        addr: Some(addr),
                        mac: None,
                    }],
                };
                drop(w);
                // A full table leaves the destination gleaning: counted
                // where it is held, never half-applied.
                if self.add(&r).is_ok()
                    && let Some(n) = self.writer().neighbors.get_mut(&(interface, addr))
                {
                    n.host_route = Some((table, prefix));
                }
            }
        }
        true
    }

    /// Forgets the static neighbour `addr` on `interface` (and the host
    /// route configuring it added): routes through it resolve again.
    /// Returns false, changing nothing, if there is no such static entry.
    pub fn remove_static_neighbor(&self, interface: IfIndex, addr: IpAddr) -> bool {
        let mut w = self.writer();
        let host_route = match w.neighbors.get(&(interface, addr)) {
            Some(n) if n.is_static => n.host_route,
            _ => return false,
        };
        w.neighbors.remove(&(interface, addr));
        self.update_neighbor_adj(&w, interface, addr, None);
        drop(w);
        if let Some((table, prefix)) = host_route {
            // Gone already if the operator replaced it: nothing to do.
            let _ = self.remove(table, prefix);
        }
        true
    }

    /// Forgets dynamic neighbours not heard from for `max_age`, and the
    /// host routes learning added for them. Returns how many went.
    pub fn age_neighbors(&self, max_age: Duration) -> usize {
        let mut w = self.writer();
        let old: Vec<_> = w
            .neighbors
            .iter()
            .filter(|(_, n)| !n.is_static && n.seen.elapsed() >= max_age)
            .map(|(&k, n)| (k, n.host_route))
            .collect();
        for &((interface, addr), _) in &old {
            w.neighbors.remove(&(interface, addr));
            self.update_neighbor_adj(&w, interface, addr, None);
        }
        drop(w);
        for &(_, host_route) in &old {
            if let Some((table, prefix)) = host_route {
                // Gone already if the operator replaced it: nothing to do.
                let _ = self.remove(table, prefix);
            }
        }
        old.len()
    }

    /// The neighbour table, sorted.
    pub fn neighbors(&self) -> Vec<NeighborEntry> {
        let w = self.writer();
        let mut v: Vec<_> = w
            .neighbors
            .iter()
            .map(|(&(interface, addr), n)| NeighborEntry {
                interface,
                addr,
                mac: n.mac,
                state: if n.is_static {
                    NeighborState::Static
                } else if n.seen.elapsed() < REACHABLE_TIME {
                    NeighborState::Reachable
                } else {
                    NeighborState::Stale
                },
                age: n.seen.elapsed(),
            })
            .collect();
        v.sort_by_key(|e| (e.interface, e.addr));
        v
    }

    /// Changes whenever a neighbour is learned, changed or lost.
    #[inline]
    pub fn neighbor_generation(&self) -> u64 {
        self.neighbor_generation.load(Acquire)
    }

    /// The value for `paths`, holding a reference to what it points to.
    fn acquire(&self, w: &mut Writer, paths: &[Path]) -> Result<u32, FibError> {
        let mut adjs = Vec::with_capacity(paths.len());
        for path in paths {
            match self.acquire_adj(w, path) {
                Some(a) => adjs.push(a),
                None => {
                    for a in adjs {
                        self.release_adj(w, a);
                    }
                    return Err(FibError::Full("adjacency"));
                }
            }
        }
        if let [a] = adjs[..] {
            return Ok(a + 1);
        }
        adjs.sort_unstable();
        if let Some(&lb) = w.lb_of.get(&adjs) {
            // A live group already holds its adjacencies; a waiting one
            // let them go, and takes the references just acquired.
            if w.lbs.refs.get(lb as usize).is_some_and(|&r| r > 0) {
                for &a in &adjs {
                    self.release_adj(w, a);
                }
            }
            w.lbs.revive(lb);
            return Ok(LB_FLAG | lb);
        }
        let Some((lb, reused)) = w.lbs.alloc() else {
            for a in adjs {
                self.release_adj(w, a);
            }
            return Err(FibError::Full("load-balance"));
        };
        if reused && let Some(old) = w.lb_paths.remove(&lb) {
            w.lb_of.remove(&old);
        }
        self.adj.set_lb(lb, &adjs);
        w.lb_of.insert(adjs.clone(), lb);
        w.lb_paths.insert(lb, adjs);
        Ok(LB_FLAG | lb)
    }

    fn acquire_adj(&self, w: &mut Writer, path: &Path) -> Option<u32> {
        let key = match *path {
            Path::Via {
                interface,
                addr,
                mac,
            } => AdjKey {
                kind: AdjKind::Neighbor,
                interface,
                // A static MAC makes the address irrelevant to forwarding.
                addr: if mac.is_some() { None } else { addr },
                mac,
            },
            Path::Connected { interface } => AdjKey {
                kind: AdjKind::Glean,
                interface,
                addr: None,
                mac: None,
            },
            Path::Local { interface } => AdjKey {
                kind: AdjKind::Local,
                interface,
                addr: None,
                mac: None,
            },
            Path::Drop | Path::Prohibit | Path::Unreachable => AdjKey {
                kind: match path {
                    Path::Drop => AdjKind::Drop,
                    Path::Prohibit => AdjKind::Prohibit,
                    _ => AdjKind::Unreachable,
                },
                interface: 0,
                addr: None,
                mac: None,
            },
        };
        if let Some(&a) = w.adj_of.get(&key) {
            w.adjs.revive(a);
            return Some(a);
        }
        let (a, reused) = w.adjs.alloc()?;
        if reused && let Some(old) = w.adj_key.remove(&a) {
            w.adj_of.remove(&old);
        }
        let mac = key.mac.or_else(|| {
            key.addr
                .and_then(|ad| w.neighbors.get(&(key.interface, ad)).map(|n| n.mac))
        });
        self.adj.set(a, key.kind, key.interface, mac, key.addr);
        w.adj_of.insert(key, a);
        w.adj_key.insert(a, key);
        Some(a)
    }

    fn release_adj(&self, w: &mut Writer, a: u32) {
        w.adjs.release(a);
    }

    fn release(&self, w: &mut Writer, value: u32) {
        if value & LB_FLAG == 0 {
            self.release_adj(w, value.wrapping_sub(1));
            return;
        }
        let lb = value & !LB_FLAG;
        w.lbs.release(lb);
        if w.lbs.refs.get(lb as usize) == Some(&0) {
            // The group waits, still readable; its adjacencies wait too.
            for a in w.lb_paths.get(&lb).cloned().unwrap_or_default() {
                self.release_adj(w, a);
            }
        }
    }

    fn paths_of(&self, w: &Writer, value: u32) -> Vec<Path> {
        let adjs = if value & LB_FLAG == 0 {
            vec![value.wrapping_sub(1)]
        } else {
            w.lb_paths
                .get(&(value & !LB_FLAG))
                .cloned()
                .unwrap_or_default()
        };
        adjs.iter()
            .filter_map(|a| w.adj_key.get(a))
            .map(|k| match k.kind {
                AdjKind::Neighbor => Path::Via {
                    interface: k.interface,
                    addr: k.addr,
                    mac: k.mac,
                },
                AdjKind::Glean => Path::Connected {
                    interface: k.interface,
                },
                AdjKind::Local => Path::Local {
                    interface: k.interface,
                },
                AdjKind::Prohibit => Path::Prohibit,
                AdjKind::Unreachable => Path::Unreachable,
                AdjKind::Drop | AdjKind::Free => Path::Drop,
            })
            .collect()
    }

    /// Every route of `table`, IPv4 first, sorted (for `show ip fib`).
    pub fn routes(&self, table: u32) -> Vec<Route> {
        let (Some(v4), Some(v6)) = (self.v4(table), self.v6(table)) else {
            return Vec::new();
        };
        let w = self.writer();
        let r4 = v4.routes().into_iter().map(|(a, l, v)| Route {
            table,
            prefix: Prefix::V4(a.into(), l),
            paths: self.paths_of(&w, v),
        });
        let r6 = v6.routes().into_iter().map(|(a, l, v)| Route {
            table,
            prefix: Prefix::V6(a.into(), l),
            paths: self.paths_of(&w, v),
        });
        r4.chain(r6).collect()
    }

    /// The adjacency a packet to `dst` in `table` with flow hash `hash`
    /// would take, for tests and `show`.
    pub fn resolve(&self, table: u32, dst: IpAddr, hash: u32) -> Option<Adj> {
        let v = match dst {
            IpAddr::V4(a) => self.v4(table)?.lookup(a.into()),
            IpAddr::V6(a) => self.v6(table)?.lookup(a.into()),
        };
        (v != 0).then(|| self.adj.get(self.adj.pick(v, hash)))
    }

    /// Adjacencies in use (for `show` and leak checks in tests).
    pub fn adjacencies_in_use(&self) -> usize {
        self.writer().adjs.in_use()
    }

    /// Load balances in use.
    pub fn load_balances_in_use(&self) -> usize {
        self.writer().lbs.in_use()
    }
}
