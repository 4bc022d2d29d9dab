//! L2 configuration: bridge domains and cross-connects, checked against the
//! interface table into an immutable [`L2Config`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sluice_graph::iface::{IfIndex, Interfaces};
use sluice_wire::MacAddr;

use super::table::{MAX_CAPACITY, MAX_PORT};
use super::vtr::VlanRewrite;

/// The longest aging time accepted (entry times are 16-bit seconds).
pub const MAX_AGING: Duration = Duration::from_secs(8 * 3600);

/// A bridge domain: a set of ports that switch frames between them by
/// destination MAC, learning where source MACs are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeDomain {
    /// The bridge's id (VPP's bd_id), unique.
    pub id: u32,
    /// The ports, each an interface that then belongs to this bridge only.
    pub ports: Vec<BridgePort>,
    /// Learn source MACs into the MAC table.
    pub learn: bool,
    /// Flood unknown unicast frames to every port; when off they are
    /// dropped with a counter. Broadcast and multicast are always flooded.
    pub flood: bool,
    /// Most entries the MAC table holds (static ones included).
    pub mac_capacity: u32,
    /// Learned entries not seen for this long are removed; zero = never.
    pub aging: Duration,
    /// Entries that are never learned over nor aged.
    pub static_macs: Vec<StaticMac>,
    /// The bridge virtual interface: the bridge's port into the L3 path.
    /// Its MAC (from the interface table) is a static entry.
    pub bvi: Option<IfIndex>,
}

impl BridgeDomain {
    /// A bridge with no port, learning and flooding on, room for 65,536
    /// MACs aged after 5 minutes.
    pub fn new(id: u32) -> BridgeDomain {
        BridgeDomain {
            id,
            ports: Vec::new(),
            learn: true,
            flood: true,
            mac_capacity: 65_536,
            aging: Duration::from_secs(300),
            static_macs: Vec::new(),
            bvi: None,
        }
    }
}

/// One port of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgePort {
    /// The interface.
    pub interface: IfIndex,
    /// Split-horizon group: frames are never flooded or forwarded between
    /// two ports of the same non-zero group.
    pub split_horizon: u8,
    /// VLAN tag rewrite between the wire and the bridge.
    pub vlan: VlanRewrite,
}

impl BridgePort {
    /// A port with no split-horizon group and no tag rewrite.
    pub fn new(interface: IfIndex) -> BridgePort {
        BridgePort {
            interface,
            split_horizon: 0,
            vlan: VlanRewrite::None,
        }
    }
}

/// A MAC address pinned to a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticMac {
    /// The address (unicast).
    pub mac: MacAddr,
    /// The port (or the bridge's BVI) it is on.
    pub interface: IfIndex,
}

/// An L2 cross-connect: every frame received on `from` is sent out of `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XConnect {
    /// The receiving interface, which then belongs to this cross-connect.
    pub from: IfIndex,
    /// The interface frames go out of.
    pub to: IfIndex,
    /// VLAN tag rewrite of `from` (in on `from`, and the inverse on frames
    /// sent out of `from`).
    pub vlan: VlanRewrite,
}

/// A configuration that cannot be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum L2ConfigError {
    /// Two bridges with one id.
    #[error("bridge domain {0} is defined twice")]
    DuplicateBridge(u32),
    /// An interface index not in the interface table.
    #[error("{place}: interface index {interface} does not exist")]
    UnknownInterface {
        /// Where it was named.
        place: String,
        /// The index.
        interface: IfIndex,
    },
    /// An interface given two L2 roles.
    #[error("interface {interface} is {first} and also {second}")]
    InterfaceTwice {
        /// The interface's name.
        interface: String,
        /// Its first role.
        first: String,
        /// The role that clashes.
        second: String,
    },
    /// A MAC table of zero entries.
    #[error("bridge domain {0}: mac capacity must be at least 1")]
    ZeroCapacity(u32),
    /// A MAC table too large.
    #[error("bridge domain {bridge}: mac capacity {capacity} is more than {max}", max = MAX_CAPACITY)]
    CapacityTooLarge {
        /// The bridge.
        bridge: u32,
        /// The capacity asked for.
        capacity: u32,
    },
    /// A table too small for its static entries.
    #[error("bridge domain {bridge}: {statics} static MACs do not fit in a capacity of {capacity}")]
    CapacityBelowStatics {
        /// The bridge.
        bridge: u32,
        /// Static entries (the BVI's MAC included).
        statics: usize,
        /// The capacity.
        capacity: u32,
    },
    /// More ports than a MAC table entry can name.
    #[error("bridge domain {bridge}: {ports} ports, at most {max}", max = MAX_PORT as usize + 1)]
    TooManyPorts {
        /// The bridge.
        bridge: u32,
        /// Ports asked for.
        ports: usize,
    },
    /// A VLAN id outside 1..=4094.
    #[error("{place}: VLAN id {vid} is not in 1..=4094")]
    BadVlan {
        /// Where.
        place: String,
        /// The id.
        vid: u16,
    },
    /// An aging time beyond [`MAX_AGING`].
    #[error("bridge domain {bridge}: aging time {aging:?} is more than {max:?}", max = MAX_AGING)]
    AgingTooLong {
        /// The bridge.
        bridge: u32,
        /// The time.
        aging: Duration,
    },
    /// A static MAC that is multicast, given twice, or on no port of its
    /// bridge.
    #[error("bridge domain {bridge}: static MAC {mac}: {reason}")]
    BadStaticMac {
        /// The bridge.
        bridge: u32,
        /// The address.
        mac: MacAddr,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A cross-connect to the interface it comes from.
    #[error("cross-connect from interface {0} to itself")]
    XConnectToSelf(IfIndex),
    /// A cross-connect to an interface that cannot transmit.
    #[error("cross-connect from interface {from} to {to}, which cannot transmit")]
    CannotTransmit {
        /// The receiving interface.
        from: IfIndex,
        /// The interface without an output node.
        to: IfIndex,
    },
}

/// What an interface is in L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not in L2 mode.
    None,
    /// Port `port` of bridge number `bridge` (its index in the list).
    Bridge { bridge: usize, port: u16 },
    /// Cross-connected to `to`.
    XConnect { to: IfIndex },
}

/// One port of a bridge as the data plane sees it: the configured ports in
/// order, then the BVI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub interface: IfIndex,
    pub split_horizon: u8,
    pub bvi: bool,
}

/// A checked L2 configuration. Immutable: a change builds a new one.
#[derive(Debug, Clone)]
pub struct L2Config {
    interfaces: Arc<Interfaces>,
    bridges: Vec<BridgeDomain>,
    xconnects: Vec<XConnect>,
    pub(crate) members: Vec<Vec<Member>>,
    /// Per interface index.
    pub(crate) roles: Vec<Role>,
    /// Per interface index: the rewrite between its wire and the bridge.
    pub(crate) vlan: Vec<VlanRewrite>,
}

impl L2Config {
    /// Checks `bridges` and `xconnects` against `interfaces`.
    pub fn new(
        bridges: Vec<BridgeDomain>,
        xconnects: Vec<XConnect>,
        interfaces: Arc<Interfaces>,
    ) -> Result<L2Config, L2ConfigError> {
        let n_if = interfaces.len();
        let mut roles = vec![Role::None; n_if];
        let mut vlan = vec![VlanRewrite::None; n_if];
        let mut role_name: HashMap<IfIndex, String> = HashMap::new();
        let name = |i: IfIndex| {
            interfaces
                .get(i)
                .map_or_else(|| i.to_string(), |x| x.name.clone())
        };
        let mut take = |i: IfIndex, what: String| -> Result<(), L2ConfigError> {
            if interfaces.get(i).is_none() {
                return Err(L2ConfigError::UnknownInterface {
                    place: what,
                    interface: i,
                });
            }
            if let Some(first) = role_name.get(&i) {
                return Err(L2ConfigError::InterfaceTwice {
                    interface: name(i),
                    first: first.clone(),
                    second: what,
                });
            }
            role_name.insert(i, what);
            Ok(())
        };
        let check_vlan = |v: &VlanRewrite, place: &dyn Fn() -> String| match v
            .vids()
            .find(|vid| !(1..=4094).contains(vid))
        {
            Some(vid) => Err(L2ConfigError::BadVlan {
                place: place(),
                vid,
            }),
            None => Ok(()),
        };

        let mut ids = HashSet::new();
        let mut members = Vec::with_capacity(bridges.len());
        for (k, bd) in bridges.iter().enumerate() {
            let id = bd.id;
            if !ids.insert(id) {
                return Err(L2ConfigError::DuplicateBridge(id));
            }
            if bd.mac_capacity == 0 {
                return Err(L2ConfigError::ZeroCapacity(id));
            }
            if bd.mac_capacity > MAX_CAPACITY {
                return Err(L2ConfigError::CapacityTooLarge {
                    bridge: id,
                    capacity: bd.mac_capacity,
                });
            }
            if bd.aging > MAX_AGING {
                return Err(L2ConfigError::AgingTooLong {
                    bridge: id,
                    aging: bd.aging,
                });
            }
            let n_ports = bd.ports.len() + usize::from(bd.bvi.is_some());
            if n_ports > MAX_PORT as usize + 1 {
                return Err(L2ConfigError::TooManyPorts {
                    bridge: id,
                    ports: n_ports,
                });
            }
            let mut m = Vec::with_capacity(n_ports);
            for p in &bd.ports {
                take(p.interface, format!("a port of bridge domain {id}"))?;
                check_vlan(&p.vlan, &|| {
                    format!("bridge domain {id} port {}", name(p.interface))
                })?;
                roles[p.interface as usize] = Role::Bridge {
                    bridge: k,
                    port: m.len() as u16,
                };
                vlan[p.interface as usize] = p.vlan;
                m.push(Member {
                    interface: p.interface,
                    split_horizon: p.split_horizon,
                    bvi: false,
                });
            }
            if let Some(bvi) = bd.bvi {
                take(bvi, format!("the BVI of bridge domain {id}"))?;
                roles[bvi as usize] = Role::Bridge {
                    bridge: k,
                    port: m.len() as u16,
                };
                m.push(Member {
                    interface: bvi,
                    split_horizon: 0,
                    bvi: true,
                });
            }
            let mut statics = HashSet::new();
            if let Some(i) = bd.bvi.and_then(|b| interfaces.get(b)) {
                statics.insert(i.mac);
            }
            for s in &bd.static_macs {
                let bad = |reason| L2ConfigError::BadStaticMac {
                    bridge: id,
                    mac: s.mac,
                    reason,
                };
                if s.mac.is_multicast() {
                    return Err(bad("a multicast address cannot be a static entry"));
                }
                if !m.iter().any(|x| x.interface == s.interface) {
                    return Err(bad("its interface is not a port of the bridge"));
                }
                if !statics.insert(s.mac) {
                    return Err(bad("given twice (or it is the BVI's MAC)"));
                }
            }
            if statics.len() > bd.mac_capacity as usize {
                return Err(L2ConfigError::CapacityBelowStatics {
                    bridge: id,
                    statics: statics.len(),
                    capacity: bd.mac_capacity,
                });
            }
            members.push(m);
        }

        for x in &xconnects {
            take(x.from, format!("cross-connected to {}", name(x.to)))?;
            if interfaces.get(x.to).is_none() {
                return Err(L2ConfigError::UnknownInterface {
                    place: format!("cross-connect from {}", name(x.from)),
                    interface: x.to,
                });
            }
            if x.to == x.from {
                return Err(L2ConfigError::XConnectToSelf(x.from));
            }
            check_vlan(&x.vlan, &|| format!("cross-connect from {}", name(x.from)))?;
            roles[x.from as usize] = Role::XConnect { to: x.to };
            vlan[x.from as usize] = x.vlan;
        }
        // Checked last: the target may be a BVI, which delivers upwards.
        for x in &xconnects {
            let is_bvi = bridges.iter().any(|b| b.bvi == Some(x.to));
            let can_tx = interfaces
                .get(x.to)
                .is_some_and(|i| i.output_node.is_some());
            if !is_bvi && !can_tx {
                return Err(L2ConfigError::CannotTransmit {
                    from: x.from,
                    to: x.to,
                });
            }
        }

        Ok(L2Config {
            interfaces,
            bridges,
            xconnects,
            members,
            roles,
            vlan,
        })
    }

    /// The interface table the configuration was checked against.
    pub fn interfaces(&self) -> &Arc<Interfaces> {
        &self.interfaces
    }

    /// The bridge domains, in the order given.
    pub fn bridges(&self) -> &[BridgeDomain] {
        &self.bridges
    }

    /// The cross-connects, in the order given.
    pub fn xconnects(&self) -> &[XConnect] {
        &self.xconnects
    }

    /// Whether some bridge has a BVI (then the nodes deliver to
    /// `ethernet-input`, which the graph must have).
    pub fn has_bvi(&self) -> bool {
        self.bridges.iter().any(|b| b.bvi.is_some())
    }

    /// The bridge domain `interface` is a port (or the BVI) of, if any.
    pub fn bridge_of(&self, interface: IfIndex) -> Option<&BridgeDomain> {
        match self.roles.get(interface as usize)? {
            Role::Bridge { bridge, .. } => self.bridges.get(*bridge),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifs(n: u8) -> Arc<Interfaces> {
        let mut i = Interfaces::new();
        for k in 0..n {
            i.add(
                &format!("if{k}"),
                "test",
                MacAddr([2, 0, 0, 0, 0, k]),
                1500,
                (k != 3).then(|| format!("if{k}-output")),
            );
        }
        Arc::new(i)
    }

    fn bd(id: u32, ports: &[IfIndex]) -> BridgeDomain {
        BridgeDomain {
            ports: ports.iter().map(|&i| BridgePort::new(i)).collect(),
            ..BridgeDomain::new(id)
        }
    }

    fn err(b: Vec<BridgeDomain>, x: Vec<XConnect>) -> L2ConfigError {
        L2Config::new(b, x, ifs(6)).unwrap_err()
    }

    #[test]
    fn a_good_config_has_roles() {
        let mut b = bd(10, &[0, 1]);
        b.bvi = Some(2);
        b.ports[1].vlan = VlanRewrite::Pop1 { vid: 7 };
        let x = XConnect {
            from: 4,
            to: 5,
            vlan: VlanRewrite::Push1 { vid: 9 },
        };
        let c = L2Config::new(vec![b], vec![x], ifs(6)).unwrap();
        assert_eq!(c.roles[0], Role::Bridge { bridge: 0, port: 0 });
        assert_eq!(c.roles[2], Role::Bridge { bridge: 0, port: 2 });
        assert!(c.members[0][2].bvi);
        assert_eq!(c.roles[4], Role::XConnect { to: 5 });
        assert_eq!(c.roles[5], Role::None);
        assert_eq!(c.vlan[1], VlanRewrite::Pop1 { vid: 7 });
        assert_eq!(c.vlan[4], VlanRewrite::Push1 { vid: 9 });
        assert!(c.has_bvi());
        assert_eq!(c.bridge_of(2).map(|b| b.id), Some(10));
        assert!(c.bridge_of(4).is_none());
    }

    #[test]
    fn bad_configs_are_refused_with_a_reason() {
        assert_eq!(
            err(vec![bd(1, &[0]), bd(1, &[1])], vec![]),
            L2ConfigError::DuplicateBridge(1)
        );
        assert!(matches!(
            err(vec![bd(1, &[0, 9])], vec![]),
            L2ConfigError::UnknownInterface { interface: 9, .. }
        ));
        let e = err(vec![bd(1, &[0, 1]), bd(2, &[1])], vec![]);
        assert!(matches!(e, L2ConfigError::InterfaceTwice { .. }));
        assert_eq!(
            e.to_string(),
            "interface if1 is a port of bridge domain 1 and also a port of bridge domain 2"
        );
        assert!(matches!(
            err(vec![bd(1, &[0, 0])], vec![]),
            L2ConfigError::InterfaceTwice { .. }
        ));
        let mut b = bd(1, &[0]);
        b.bvi = Some(0);
        assert!(matches!(
            err(vec![b], vec![]),
            L2ConfigError::InterfaceTwice { .. }
        ));
        let x = |from, to| XConnect {
            from,
            to,
            vlan: VlanRewrite::None,
        };
        assert!(matches!(
            err(vec![bd(1, &[0])], vec![x(0, 1)]),
            L2ConfigError::InterfaceTwice { .. }
        ));
        assert_eq!(err(vec![], vec![x(1, 1)]), L2ConfigError::XConnectToSelf(1));
        assert_eq!(
            err(vec![], vec![x(1, 3)]),
            L2ConfigError::CannotTransmit { from: 1, to: 3 }
        );
        assert!(matches!(
            err(vec![], vec![x(1, 8)]),
            L2ConfigError::UnknownInterface { interface: 8, .. }
        ));
        let mut b = bd(1, &[0]);
        b.mac_capacity = 0;
        assert_eq!(err(vec![b], vec![]), L2ConfigError::ZeroCapacity(1));
        let mut b = bd(1, &[0]);
        b.mac_capacity = MAX_CAPACITY + 1;
        assert!(matches!(
            err(vec![b], vec![]),
            L2ConfigError::CapacityTooLarge { .. }
        ));
        let mut b = bd(1, &[0]);
        b.aging = MAX_AGING + Duration::from_secs(1);
        assert!(matches!(
            err(vec![b], vec![]),
            L2ConfigError::AgingTooLong { .. }
        ));
        for v in [
            VlanRewrite::Pop1 { vid: 0 },
            VlanRewrite::Push1 { vid: 4095 },
            VlanRewrite::Translate1To1 {
                wire: 5,
                bridge: 5000,
            },
        ] {
            let mut b = bd(1, &[0]);
            b.ports[0].vlan = v;
            assert!(matches!(
                err(vec![b], vec![]),
                L2ConfigError::BadVlan { .. }
            ));
        }
    }

    #[test]
    fn static_macs_are_checked() {
        let st = |mac: [u8; 6], interface| StaticMac {
            mac: MacAddr(mac),
            interface,
        };
        let mut b = bd(1, &[0, 1]);
        b.static_macs = vec![st([1, 0, 0, 0, 0, 1], 0)];
        assert!(matches!(
            err(vec![b.clone()], vec![]),
            L2ConfigError::BadStaticMac { .. }
        ));
        b.static_macs = vec![st([2, 0, 0, 0, 0, 1], 4)];
        assert!(matches!(
            err(vec![b.clone()], vec![]),
            L2ConfigError::BadStaticMac { .. }
        ));
        b.static_macs = vec![st([2, 0, 0, 0, 9, 1], 0), st([2, 0, 0, 0, 9, 1], 1)];
        assert!(matches!(
            err(vec![b.clone()], vec![]),
            L2ConfigError::BadStaticMac { .. }
        ));
        // The BVI's MAC is static already.
        b.bvi = Some(2);
        b.static_macs = vec![st([2, 0, 0, 0, 0, 2], 0)];
        assert!(matches!(
            err(vec![b.clone()], vec![]),
            L2ConfigError::BadStaticMac { .. }
        ));
        b.static_macs = vec![st([2, 0, 0, 0, 9, 1], 0)];
        b.mac_capacity = 1;
        assert!(matches!(
            err(vec![b.clone()], vec![]),
            L2ConfigError::CapacityBelowStatics { statics: 2, .. }
        ));
        b.mac_capacity = 2;
        assert!(L2Config::new(vec![b], vec![], ifs(6)).is_ok());
    }
}
