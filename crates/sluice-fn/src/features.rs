//! The routing path's feature arcs, and the order their features run in.
//!
//! ```text
//! ipN-input → [ipN-unicast: ipN-acl-in → ipN-conntrack → ipN-ids] → ipN-lookup
//! ipN-rewrite → [ipN-output: ipN-acl-out] → <if>-output
//! ```
//!
//! `ipN-unicast` is chosen by the receiving interface and carries unicast
//! packets only (IPv6 multicast goes to `ip6-local` first); `ipN-output`
//! by the sending interface, after the TTL, MTU and Ethernet rewrite, so
//! an output ACL sees what leaves. The ACL runs before connection
//! tracking so that a permit+reflect rule can mark a flow's first packet
//! for the tracker; the intrusion detector runs after the tracker, so
//! that what it scans has passed the firewall (no alert for a packet
//! about to be dropped anyway) and invalid packets are gone. An arc
//! holds only the features whose nodes the graph has ([`IpArcs::new`]
//! is told which).

use std::sync::Arc;

use sluice_graph::iface::Interfaces;
use sluice_graph::{FeatureArc, FeatureError};

/// The IPv4 receive arc.
pub const IP4_UNICAST: &str = "ip4-unicast";
/// The IPv6 receive arc.
pub const IP6_UNICAST: &str = "ip6-unicast";
/// The IPv4 transmit arc.
pub const IP4_OUTPUT: &str = "ip4-output";
/// The IPv6 transmit arc.
pub const IP6_OUTPUT: &str = "ip6-output";

/// The IPv4 input ACL node.
pub const IP4_ACL_IN: &str = "ip4-acl-in";
/// The IPv6 input ACL node.
pub const IP6_ACL_IN: &str = "ip6-acl-in";
/// The IPv4 output ACL node.
pub const IP4_ACL_OUT: &str = "ip4-acl-out";
/// The IPv6 output ACL node.
pub const IP6_ACL_OUT: &str = "ip6-acl-out";

/// Every feature of `ip4-unicast`, in the order they run.
pub const IP4_UNICAST_ORDER: &[&str] =
    &[IP4_ACL_IN, crate::conntrack::IP4_NAME, crate::ids::IP4_NAME];
/// Every feature of `ip6-unicast`, in the order they run.
pub const IP6_UNICAST_ORDER: &[&str] =
    &[IP6_ACL_IN, crate::conntrack::IP6_NAME, crate::ids::IP6_NAME];
/// Every feature of `ip4-output`, in the order they run.
pub const IP4_OUTPUT_ORDER: &[&str] = &[IP4_ACL_OUT];
/// Every feature of `ip6-output`, in the order they run.
pub const IP6_OUTPUT_ORDER: &[&str] = &[IP6_ACL_OUT];

/// The four arcs of the routing path, shared by every worker.
#[derive(Debug, Clone)]
pub struct IpArcs {
    /// After `ip4-input`, before `ip4-lookup`.
    pub ip4_unicast: Arc<FeatureArc>,
    /// After `ip6-input`, before `ip6-lookup`.
    pub ip6_unicast: Arc<FeatureArc>,
    /// After `ip4-rewrite`, before the interface's output.
    pub ip4_output: Arc<FeatureArc>,
    /// After `ip6-rewrite`, before the interface's output.
    pub ip6_output: Arc<FeatureArc>,
}

impl IpArcs {
    /// The arcs over `interfaces`, with the features of the canonical
    /// orders for which `present` says the graph has a node.
    pub fn new(
        interfaces: &Interfaces,
        present: impl Fn(&str) -> bool,
    ) -> Result<IpArcs, FeatureError> {
        let pick = |order: &[&'static str]| -> Vec<&'static str> {
            order.iter().copied().filter(|f| present(f)).collect()
        };
        let n = interfaces.len();
        Ok(IpArcs {
            ip4_unicast: FeatureArc::receive(
                IP4_UNICAST,
                &pick(IP4_UNICAST_ORDER),
                "ip4-lookup",
                n,
            )?,
            ip6_unicast: FeatureArc::receive(
                IP6_UNICAST,
                &pick(IP6_UNICAST_ORDER),
                "ip6-lookup",
                n,
            )?,
            ip4_output: FeatureArc::transmit(IP4_OUTPUT, &pick(IP4_OUTPUT_ORDER), interfaces)?,
            ip6_output: FeatureArc::transmit(IP6_OUTPUT, &pick(IP6_OUTPUT_ORDER), interfaces)?,
        })
    }

    /// Arcs with no features (a router with nothing on its path).
    pub fn bare(interfaces: &Interfaces) -> IpArcs {
        match IpArcs::new(interfaces, |_| false) {
            Ok(a) => a,
            // No features cannot be too many or named twice.
            Err(e) => unreachable!("empty arcs refused: {e}"),
        }
    }

    /// The arc named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Arc<FeatureArc>> {
        [
            &self.ip4_unicast,
            &self.ip6_unicast,
            &self.ip4_output,
            &self.ip6_output,
        ]
        .into_iter()
        .find(|a| a.name() == name)
    }

    /// Every arc.
    pub fn all(&self) -> [&Arc<FeatureArc>; 4] {
        [
            &self.ip4_unicast,
            &self.ip6_unicast,
            &self.ip4_output,
            &self.ip6_output,
        ]
    }
}
