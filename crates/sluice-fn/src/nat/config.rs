//! What NAT translates to: the outside address pool, its ports, and the
//! static mappings.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use thiserror::Error;

/// A fixed translation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticMapping {
    /// Inside host `inside` is `outside` on the outside, every port:
    /// its flows leave from `outside` (keeping their ports where free),
    /// and flows to `outside` reach it.
    OneToOne {
        /// The inside address.
        inside: Ipv4Addr,
        /// The outside address.
        outside: Ipv4Addr,
    },
    /// Flows of `proto` to `outside:outside_port` reach
    /// `inside:inside_port`.
    PortForward {
        /// TCP (6) or UDP (17).
        proto: u8,
        /// The outside address.
        outside: Ipv4Addr,
        /// The outside port.
        outside_port: u16,
        /// The inside address.
        inside: Ipv4Addr,
        /// The inside port.
        inside_port: u16,
    },
}

/// A NAT44 instance's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Addresses dynamic flows leave from; an inside host always gets the
    /// same one (paired pooling, RFC 4787 REQ-2).
    pub pool: Vec<Ipv4Addr>,
    /// Ports (and ICMP echo identifiers) of the pool's addresses that
    /// dynamic flows use.
    pub ports: RangeInclusive<u16>,
    /// Fixed translations.
    pub statics: Vec<StaticMapping>,
    /// Most ports tried for one new flow before it is refused as
    /// `nat-no-port` (bounds the work a flow costs when the range is
    /// nearly full).
    pub max_probes: u32,
}

impl Default for NatConfig {
    fn default() -> NatConfig {
        NatConfig {
            pool: Vec::new(),
            ports: 1024..=65535,
            statics: Vec::new(),
            max_probes: 512,
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NatConfigError {
    /// No pool address and no static mapping: nothing to translate to.
    #[error("nat: no pool address and no static mapping")]
    Nothing,
    /// The port range is empty.
    #[error("nat: empty port range")]
    NoPorts,
    /// `max_probes` is 0.
    #[error("nat: max_probes must be at least 1")]
    NoProbes,
    /// A port forward for a protocol without ports.
    #[error("nat: port forward to {0}: protocol {1} has no ports (tcp 6 or udp 17)")]
    ForwardProto(Ipv4Addr, u8),
    /// Two mappings claim the same outside address (and port).
    #[error("nat: {0} mapped twice")]
    Duplicate(String),
    /// A one-to-one outside address also in the dynamic pool.
    #[error("nat: {0} is both in the pool and mapped one-to-one")]
    PoolOverlap(Ipv4Addr),
}

impl NatConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), NatConfigError> {
        if self.pool.is_empty() && self.statics.is_empty() {
            return Err(NatConfigError::Nothing);
        }
        if self.ports.is_empty() {
            return Err(NatConfigError::NoPorts);
        }
        if self.max_probes == 0 {
            return Err(NatConfigError::NoProbes);
        }
        let mut seen = std::collections::HashSet::new();
        for m in &self.statics {
            let key = match *m {
                StaticMapping::OneToOne { inside, outside } => {
                    if self.pool.contains(&outside) {
                        return Err(NatConfigError::PoolOverlap(outside));
                    }
                    if !seen.insert(format!("inside {inside}")) {
                        return Err(NatConfigError::Duplicate(format!("inside {inside}")));
                    }
                    format!("{outside}")
                }
                StaticMapping::PortForward {
                    proto,
                    outside,
                    outside_port,
                    ..
                } => {
                    if proto != 6 && proto != 17 {
                        return Err(NatConfigError::ForwardProto(outside, proto));
                    }
                    format!("{outside} port {outside_port}/{proto}")
                }
            };
            if !seen.insert(key.clone()) {
                return Err(NatConfigError::Duplicate(key));
            }
        }
        Ok(())
    }
}
