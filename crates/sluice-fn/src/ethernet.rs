//! `ethernet-input`: the L2 demultiplexer.
//!
//! Parses the Ethernet header and up to two VLAN tags, accepts a frame only
//! if it is addressed to the receiving interface (or is broadcast or
//! multicast), strips the L2 header and hands the L3 packet on by EtherType.
//! ARP keeps its L2 header: `arp-input` answers with a whole frame.
//! `meta.l3_offset` keeps the length of the L2 header, so that a node can
//! take it back (`prepend`).

use std::sync::Arc;

use sluice_graph::iface::Interfaces;
use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};
use sluice_wire::{EtherType, EthernetFrame, MacAddr};

/// The node's name.
pub const NAME: &str = "ethernet-input";

mod next {
    pub const IP4: usize = 0;
    pub const IP6: usize = 1;
    pub const ARP: usize = 2;
}

mod error {
    pub const TOO_SHORT: usize = 0;
    pub const MAC_MISMATCH: usize = 1;
    pub const BAD_VLAN: usize = 2;
    pub const UNKNOWN_ETHERTYPE: usize = 3;
    pub const UNKNOWN_INTERFACE: usize = 4;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("too-short", "frame shorter than an Ethernet header"),
    ErrorSpec::info("l3-mac-mismatch", "unicast frame for another MAC address"),
    ErrorSpec::error("bad-vlan", "truncated VLAN tag or more than two tags"),
    ErrorSpec::info("unknown-ethertype", "EtherType with no handler"),
    ErrorSpec::error(
        "unknown-interface",
        "frame from an interface not in the table",
    ),
];

/// `ethernet-input`.
pub struct EthernetInput {
    /// Per interface index: its MAC, to check unicast destinations against.
    macs: Vec<MacAddr>,
}

impl EthernetInput {
    /// A node that knows the MAC of every interface in `interfaces`.
    pub fn new(interfaces: &Arc<Interfaces>) -> EthernetInput {
        EthernetInput {
            macs: interfaces.iter().map(|i| i.mac).collect(),
        }
    }

    /// Where one frame goes: `Ok(next)` after stripping L2, or `Err(error)`.
    #[inline]
    fn classify(&self, pkt: &mut sluice_buf::Packet) -> Result<usize, usize> {
        let Some(my_mac) = self.macs.get(pkt.meta().rx_if as usize) else {
            return Err(error::UNKNOWN_INTERFACE);
        };
        let data = pkt.data();
        let Some(h) = data.get(..14) else {
            return Err(error::TOO_SHORT);
        };
        if h[0] & 1 == 0 && h[..6] != my_mac.0 {
            return Err(error::MAC_MISMATCH);
        }
        // The common cases, untagged IPv4 and IPv6, without the VLAN walk.
        let et = [h[12], h[13]];
        let (ethertype, l3_offset, vlan) = if et == EtherType::IPV4.0.to_be_bytes() {
            (EtherType::IPV4, 14, 0)
        } else if et == EtherType::IPV6.0.to_be_bytes() {
            (EtherType::IPV6, 14, 0)
        } else {
            let l2 = EthernetFrame::new_unchecked(data)
                .l3()
                .map_err(|_| error::BAD_VLAN)?;
            let vlan = l2.vlans().first().copied().unwrap_or(0);
            (l2.ethertype, l2.l3_offset, vlan)
        };
        let next = match ethertype {
            EtherType::IPV4 => next::IP4,
            EtherType::IPV6 => next::IP6,
            EtherType::ARP => next::ARP,
            _ => return Err(error::UNKNOWN_ETHERTYPE),
        };
        let meta = pkt.meta_mut();
        meta.vlan = vlan;
        meta.l3_offset = l3_offset as u16;
        if next != next::ARP {
            // l3_offset ≤ 22 ≤ the frame length, checked above or by the walk.
            pkt.advance(l3_offset).map_err(|_| error::TOO_SHORT)?;
        }
        Ok(next)
    }
}

impl Node for EthernetInput {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(
            NAME,
            &[
                crate::ip4::input::NAME,
                crate::ip6::input::NAME,
                crate::ip4::arp::NAME,
            ],
            ERRORS,
        )
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        // The first node to read packets fresh from an interface: ask for
        // their memory ahead of use.
        for mut pkt in input.drain_prefetched() {
            match self.classify(&mut pkt) {
                Ok(next) => out.send(next, pkt),
                Err(e) => out.drop(pkt, e),
            }
        }
    }
}
