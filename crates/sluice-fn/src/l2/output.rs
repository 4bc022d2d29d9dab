//! `l2-output`: the egress VLAN rewrite of the interface in `meta.tx_if`,
//! then that interface's output node. Frames for ports without a rewrite
//! skip it: the switching nodes send them to the output node themselves.

use std::sync::Arc;

use sluice_buf::Packet;
use sluice_graph::iface::IfIndex;
use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};

use super::state::L2State;
use super::vtr::{VlanRewrite, VtrError};

/// The node's name.
pub const NAME: &str = "l2-output";

/// Where a frame that leaves the bridge by one interface goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DestKind {
    /// To an output node (or to `l2-output`, for the rewrite first).
    Tx,
    /// Up to the L3 path: a BVI.
    Bvi,
    /// Nowhere: the interface cannot transmit.
    None,
}

/// A next index and what it leads to, for one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dest {
    pub next: u16,
    pub kind: DestKind,
    pub split_horizon: u8,
    pub interface: IfIndex,
}

/// A node's next nodes: some fixed ones, `ethernet-input` when some bridge
/// has a BVI, then every interface's output node; and where each
/// interface's frames go among them.
pub(crate) struct NextTable {
    pub names: Vec<String>,
    pub of_if: Vec<Dest>,
}

impl NextTable {
    /// With `via_output`, frames for interfaces with a tag rewrite go to
    /// `l2-output` (which must be among `fixed`).
    pub fn new(state: &L2State, fixed: &[&str], via_output: bool) -> NextTable {
        let config = state.config();
        let mut names: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
        let bvi_next = config.has_bvi().then(|| {
            names.push(crate::ethernet::NAME.to_string());
            names.len() - 1
        });
        let output_next = fixed.iter().position(|&n| n == NAME);
        let is_bvi = |i: IfIndex| config.bridges().iter().any(|b| b.bvi == Some(i));
        let mut of_if = Vec::with_capacity(config.interfaces().len());
        for info in config.interfaces().iter() {
            let i = info.index;
            let none = Dest {
                next: 0,
                kind: DestKind::None,
                split_horizon: 0,
                interface: i,
            };
            let dest = |next: usize, kind| Dest {
                next: next as u16,
                kind,
                ..none
            };
            let vlan = config.vlan.get(i as usize).copied().unwrap_or_default();
            of_if.push(match (bvi_next, &info.output_node, output_next) {
                (Some(n), _, _) if is_bvi(i) => dest(n, DestKind::Bvi),
                (_, Some(_), Some(n)) if via_output && vlan != VlanRewrite::None => {
                    dest(n, DestKind::Tx)
                }
                (_, Some(node), _) => {
                    let n = names.iter().position(|x| x == node).unwrap_or_else(|| {
                        names.push(node.clone());
                        names.len() - 1
                    });
                    dest(n, DestKind::Tx)
                }
                _ => none,
            });
        }
        NextTable { names, of_if }
    }

    /// Per bridge, per port: where frames for that port go.
    pub fn bridge_ports(&self, state: &L2State) -> Vec<Vec<Dest>> {
        state
            .bridges
            .iter()
            .map(|b| {
                b.members
                    .iter()
                    .map(|m| match self.of_if.get(m.interface as usize) {
                        Some(d) => Dest {
                            split_horizon: m.split_horizon,
                            ..*d
                        },
                        None => Dest {
                            next: 0,
                            kind: DestKind::None,
                            split_horizon: m.split_horizon,
                            interface: m.interface,
                        },
                    })
                    .collect()
            })
            .collect()
    }

    pub fn spec(&self, name: &str, errors: &[ErrorSpec]) -> NodeSpec {
        let next: Vec<&str> = self.names.iter().map(String::as_str).collect();
        NodeSpec::internal(name, &next, errors)
    }
}

mod error {
    pub const VLAN_MISMATCH: usize = 0;
    pub const NO_HEADROOM: usize = 1;
    pub const NO_OUTPUT: usize = 2;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::error(
        "vlan-mismatch",
        "frame not tagged as the egress port's VLAN rewrite expects",
    ),
    ErrorSpec::error("no-headroom", "no room to push a VLAN tag"),
    ErrorSpec::error("no-output", "tx interface cannot transmit"),
];

/// `l2-output`.
pub struct L2Output {
    next: NextTable,
    vlan: Vec<VlanRewrite>,
}

impl L2Output {
    /// The node for one worker.
    pub fn new(state: &Arc<L2State>) -> L2Output {
        L2Output {
            next: NextTable::new(state, &[], false),
            vlan: state.config().vlan.clone(),
        }
    }

    #[inline]
    fn output(&self, pkt: &mut Packet) -> Result<usize, usize> {
        let tx = pkt.meta().tx_if as usize;
        let dest = match self.next.of_if.get(tx) {
            Some(d) if d.kind == DestKind::Tx => d,
            _ => return Err(error::NO_OUTPUT),
        };
        if let Some(v) = self.vlan.get(tx) {
            v.egress(pkt).map_err(|e| match e {
                VtrError::Mismatch => error::VLAN_MISMATCH,
                VtrError::NoRoom => error::NO_HEADROOM,
            })?;
        }
        Ok(dest.next as usize)
    }
}

impl Node for L2Output {
    fn spec(&self) -> NodeSpec {
        self.next.spec(NAME, ERRORS)
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        for mut pkt in input.drain(..) {
            match self.output(&mut pkt) {
                Ok(next) => out.send(next, pkt),
                Err(e) => out.drop(pkt, e),
            }
        }
    }
}
