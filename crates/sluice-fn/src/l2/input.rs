//! `l2-input`: frames from ports in L2 mode, whole: ingress VLAN rewrite,
//! source learning, destination lookup, split horizon, and on to the port's
//! output (or `l2-output` when the port rewrites tags, `l2-flood` when the
//! destination is unknown or a group, `ethernet-input` for the BVI).
//! Cross-connected ports skip the bridge and go straight to their peer.
//!
//! `l2-bvi-output` is the same switch for frames the L3 path sends out of a
//! BVI: the BVI becomes the ingress port.
//!
//! What `l2-input` expects: `meta.rx_if` is the receiving port and the
//! frame starts at its Ethernet header.

use std::sync::Arc;

use sluice_buf::Packet;
use sluice_graph::iface::IfIndex;
use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec, Severity};

use super::config::Role;
use super::output::{Dest, DestKind, NextTable};
use super::state::L2State;
use super::table::Learned;
use super::vtr::{VlanRewrite, VtrError};

/// The node's name.
pub const NAME: &str = "l2-input";
/// The BVI transmit node's name.
pub const BVI_OUTPUT: &str = "l2-bvi-output";

/// Fixed next nodes, before `ethernet-input` and the output nodes.
mod next {
    pub const FLOOD: usize = 1;
}
const FIXED_NEXT: &[&str] = &[super::output::NAME, super::flood::NAME];

pub(crate) mod error {
    pub const TOO_SHORT: usize = 0;
    pub const NOT_L2: usize = 1;
    pub const VLAN_MISMATCH: usize = 2;
    pub const NO_HEADROOM: usize = 3;
    pub const FILTER: usize = 4;
    pub const SPLIT_HORIZON: usize = 5;
    pub const UU_FLOOD_OFF: usize = 6;
    pub const NO_OUTPUT: usize = 7;
    pub const NOT_BVI: usize = 8;
    // Counted, not dropped:
    pub const LEARNED: usize = 9;
    pub const MAC_MOVE: usize = 10;
    pub const STATIC_MOVE: usize = 11;
    pub const TABLE_FULL: usize = 12;
}

const fn warn(name: &'static str, description: &'static str) -> ErrorSpec {
    ErrorSpec {
        name,
        description,
        severity: Severity::Warn,
    }
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error("too-short", "frame shorter than an Ethernet header"),
    ErrorSpec::error(
        "not-l2",
        "frame from an interface in no bridge or cross-connect",
    ),
    ErrorSpec::error(
        "vlan-mismatch",
        "frame not tagged as the ingress port's VLAN rewrite expects",
    ),
    ErrorSpec::error("no-headroom", "no room to push a VLAN tag"),
    ErrorSpec::info("filter", "destination MAC is on the ingress port"),
    ErrorSpec::info(
        "split-horizon",
        "destination port is in the ingress port's split-horizon group",
    ),
    ErrorSpec::info(
        "uu-flood-off",
        "unknown unicast, flooding off in the bridge",
    ),
    ErrorSpec::error("no-output", "destination port cannot transmit"),
    ErrorSpec::error("not-bvi", "frame sent out of an interface that is no BVI"),
    ErrorSpec::info("learned", "new MACs learned (frames forwarded)"),
    ErrorSpec::info(
        "mac-move",
        "MACs re-learned on another port (frames forwarded)",
    ),
    warn(
        "static-mac-move",
        "frames from a static MAC on another port (forwarded, not learned)",
    ),
    warn(
        "mac-table-full",
        "MACs not learned, the table is full (frames forwarded)",
    ),
];

/// What the switch knows of a receiving interface.
#[derive(Debug, Clone, Copy)]
enum Ingress {
    None,
    Bridge {
        bridge: u32,
        port: u16,
        split_horizon: u8,
    },
    XConnect(Dest),
}

/// Group bit of a MAC in [`super::table::mac_u64`] form.
const GROUP: u64 = 1 << 40;

/// The switching shared by `l2-input` and `l2-bvi-output`.
pub(crate) struct Switch {
    state: Arc<L2State>,
    next: NextTable,
    /// Per interface: its L2 role and tag rewrite.
    ingress: Vec<(Ingress, VlanRewrite)>,
    /// Per bridge, per port.
    ports: Vec<Vec<Dest>>,
}

impl Switch {
    fn new(state: &Arc<L2State>) -> Switch {
        let next = NextTable::new(state, FIXED_NEXT, true);
        let ports = next.bridge_ports(state);
        let config = state.config();
        let ingress = config
            .roles
            .iter()
            .zip(&config.vlan)
            .map(|(role, &vlan)| {
                let ing = match *role {
                    Role::None => Ingress::None,
                    Role::Bridge { bridge, port } => Ingress::Bridge {
                        bridge: bridge as u32,
                        port,
                        split_horizon: ports
                            .get(bridge)
                            .and_then(|p| p.get(port as usize))
                            .map_or(0, |d| d.split_horizon),
                    },
                    Role::XConnect { to } => match next.of_if.get(to as usize) {
                        Some(d) => Ingress::XConnect(*d),
                        None => Ingress::None,
                    },
                };
                (ing, vlan)
            })
            .collect();
        Switch {
            state: state.clone(),
            next,
            ingress,
            ports,
        }
    }

    /// Starts loading the MAC-table buckets `switch` will read for `pkt`.
    #[inline(always)]
    fn prefetch(&self, pkt: &Packet) {
        let Some(&(Ingress::Bridge { bridge, .. }, _)) =
            self.ingress.get(pkt.meta().rx_if as usize)
        else {
            return;
        };
        let (Some(bd), Some(h)) = (
            self.state.bridges.get(bridge as usize),
            pkt.data().first_chunk::<12>(),
        ) else {
            return;
        };
        let (dst, src) = macs(h);
        if bd.learn && src & GROUP == 0 {
            bd.table.prefetch(src);
        }
        if dst & GROUP == 0 {
            bd.table.prefetch(dst);
        }
    }

    /// Switches one frame from `meta.rx_if`, rewriting its tags on the way
    /// in if `rewrite` (frames from a BVI have none).
    #[inline(always)]
    fn switch(&self, mut pkt: Packet, tick: u16, rewrite: bool, out: &mut Next<'_>) {
        let rx = pkt.meta().rx_if;
        let (ingress, vlan) = match self.ingress.get(rx as usize) {
            Some(&(Ingress::None, _)) | None => return out.drop(pkt, error::NOT_L2),
            Some(&i) => i,
        };
        if pkt.len() < 14 {
            return out.drop(pkt, error::TOO_SHORT);
        }
        if rewrite
            && vlan != VlanRewrite::None
            && let Err(e) = vlan.ingress(&mut pkt)
        {
            let e = match e {
                VtrError::Mismatch => error::VLAN_MISMATCH,
                VtrError::NoRoom => error::NO_HEADROOM,
            };
            return out.drop(pkt, e);
        }
        let (bridge, port, split_horizon) = match ingress {
            Ingress::Bridge {
                bridge,
                port,
                split_horizon,
            } => (bridge, port, split_horizon),
            Ingress::XConnect(dest) => return deliver(pkt, dest, out),
            Ingress::None => return out.drop(pkt, error::NOT_L2),
        };
        let (Some(bd), Some(ports)) = (
            self.state.bridges.get(bridge as usize),
            self.ports.get(bridge as usize),
        ) else {
            return out.drop(pkt, error::NOT_L2);
        };
        let (dst, src) = match pkt.data().first_chunk::<12>() {
            Some(h) => macs(h),
            None => return out.drop(pkt, error::TOO_SHORT),
        };
        if bd.learn && src & GROUP == 0 {
            match bd.table.learn(src, port, tick) {
                Learned::Known => {}
                Learned::Added => out.count(error::LEARNED, 1),
                Learned::Moved => out.count(error::MAC_MOVE, 1),
                Learned::StaticElsewhere => out.count(error::STATIC_MOVE, 1),
                Learned::Full => out.count(error::TABLE_FULL, 1),
            }
        }
        if dst & GROUP != 0 {
            return out.send(next::FLOOD, pkt);
        }
        match bd.table.lookup(dst) {
            Some(hit) => {
                let p = hit.port();
                if p == port {
                    return out.drop(pkt, error::FILTER);
                }
                match ports.get(p as usize) {
                    Some(d) if split_horizon != 0 && d.split_horizon == split_horizon => {
                        out.drop(pkt, error::SPLIT_HORIZON)
                    }
                    Some(d) => deliver(pkt, *d, out),
                    None => out.drop(pkt, error::NO_OUTPUT),
                }
            }
            None if bd.flood => out.send(next::FLOOD, pkt),
            None => out.drop(pkt, error::UU_FLOOD_OFF),
        }
    }
}

/// The destination and source MACs at the start of a frame, read as two
/// words rather than byte by byte.
#[inline(always)]
fn macs(h: &[u8; 12]) -> (u64, u64) {
    let (a, b) = h.split_at(8);
    let w0 = u64::from_be_bytes([a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]]);
    let w1 = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (w0 >> 16, ((w0 & 0xffff) << 32) | u64::from(w1))
}

/// Sends a frame out of the bridge by `dest`.
#[inline(always)]
pub(crate) fn deliver(mut pkt: Packet, dest: Dest, out: &mut Next<'_>) {
    match dest.kind {
        DestKind::Tx => {
            pkt.meta_mut().tx_if = dest.interface;
            out.send(dest.next as usize, pkt);
        }
        DestKind::Bvi => {
            // Up the L3 path as if received on the BVI.
            pkt.meta_mut().rx_if = dest.interface;
            out.send(dest.next as usize, pkt);
        }
        DestKind::None => out.drop(pkt, error::NO_OUTPUT),
    }
}

/// `l2-input`.
pub struct L2Input {
    switch: Switch,
}

impl L2Input {
    /// The node for one worker.
    pub fn new(state: &Arc<L2State>) -> L2Input {
        L2Input {
            switch: Switch::new(state),
        }
    }
}

impl Node for L2Input {
    fn spec(&self) -> NodeSpec {
        self.switch.next.spec(NAME, ERRORS)
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let tick = self.switch.state.tick(cx.now);
        // Each packet's MAC-table buckets are requested AHEAD packets
        // before it is switched, and its header twice as far ahead so that
        // its MACs can be read by then. With a table past the L2 cache
        // (65,536 entries, 2 MiB) this took 16 cycles off a packet; at
        // 16,384 (512 KiB, an L2 hit) it is neutral. A pass over the whole
        // vector first cost 4 to 6 cycles more than it saved; 8 ahead and
        // 2 ahead were slower than 4.
        let mut it = input.drain(..);
        for p in it.as_slice().iter().take(2 * AHEAD) {
            p.prefetch();
        }
        for p in it.as_slice().iter().take(AHEAD) {
            self.switch.prefetch(p);
        }
        loop {
            if let Some(p) = it.as_slice().get(2 * AHEAD) {
                p.prefetch();
            }
            if let Some(p) = it.as_slice().get(AHEAD) {
                self.switch.prefetch(p);
            }
            let Some(pkt) = it.next() else { break };
            self.switch.switch(pkt, tick, true, out);
        }
    }
}

/// Packets between a MAC-table prefetch and its lookup in `l2-input`.
const AHEAD: usize = 4;

/// `l2-bvi-output`: frames the L3 path sends out of a BVI (`meta.tx_if`),
/// switched in the BVI's bridge.
pub struct L2BviOutput {
    switch: Switch,
}

impl L2BviOutput {
    /// The node for one worker.
    pub fn new(state: &Arc<L2State>) -> L2BviOutput {
        L2BviOutput {
            switch: Switch::new(state),
        }
    }

    fn is_bvi(&self, i: IfIndex) -> bool {
        self.switch.next.of_if.get(i as usize).map(|d| d.kind) == Some(DestKind::Bvi)
    }
}

impl Node for L2BviOutput {
    fn spec(&self) -> NodeSpec {
        self.switch.next.spec(BVI_OUTPUT, ERRORS)
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let tick = self.switch.state.tick(cx.now);
        for mut pkt in input.drain(..) {
            let bvi = pkt.meta().tx_if;
            if !self.is_bvi(bvi) {
                out.drop(pkt, error::NOT_BVI);
                continue;
            }
            pkt.meta_mut().rx_if = bvi;
            self.switch.switch(pkt, tick, false, out);
        }
    }
}
