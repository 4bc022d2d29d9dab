//! `ip4-acl` and `ip6-acl`: an access list as a node on a feature arc.
//!
//! Packets arrive with their data at the IP header (after `ipN-input`,
//! which checked it). The node loads the list in force once per vector,
//! reads every packet's key, classifies the whole vector in one call, then
//! sends permitted packets to its one next node and drops denied ones
//! under `acl-deny`. A packet permitted by a `PermitReflect` rule carries
//! [`REFLECT`] in `meta.flags`, for connection tracking to make its
//! session.
//!
//! The same node serves an input or an output arc. On an output arc the
//! packet already carries the Ethernet header `ipN-rewrite` wrote
//! ([`REWRITTEN_L2`] bytes in front of the IP header): the key is read
//! behind it, the MACs from it. On an arc
//! ([`AclNode::on_arc`]) it holds one list per interface (each swapped on
//! its own) and judges each packet by the list of the interface the arc
//! is chosen by — a run of packets of one interface at a time, which is
//! the whole vector in the usual case — then sends it to the next feature
//! enabled for that interface. Off an arc it holds one list and one next
//! node.

use std::sync::Arc;

use sluice_buf::Packet;
use sluice_graph::feature::Side;
use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec, Onward};

use super::key::{Addr, Key, KeyError, ip4_key, ip6_key, l2_key};
use super::list::{Acl, MAX_BATCH, Match};
use super::rule::Action;
use super::shared::SharedAcl;

/// The usual name of the IPv4 node.
pub const IP4_NAME: &str = "ip4-acl";
/// The usual name of the IPv6 node.
pub const IP6_NAME: &str = "ip6-acl";

/// Bytes of Ethernet header in front of the IP header on an output arc
/// (`ipN-rewrite` writes an untagged header).
pub const REWRITTEN_L2: usize = 14;

/// Bit of `meta.flags` set on packets a `PermitReflect` rule let through.
pub const REFLECT: u32 = 1 << 0;

mod error {
    pub const DENY: usize = 0;
    pub const TRUNCATED_L3: usize = 1;
    pub const TRUNCATED_L4: usize = 2;
    pub const NO_LIST: usize = 3;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("acl-deny", "denied by an access list rule (or its default)"),
    ErrorSpec::error("truncated-l3", "packet shorter than its IP header"),
    ErrorSpec::error(
        "truncated-l4",
        "first fragment or packet too short for its L4 header's ports",
    ),
    ErrorSpec::error(
        "no-list",
        "packet of an interface the node holds no list for",
    ),
];

/// One address family's key reading and classification, what an
/// [`AclNode`] needs of its address type.
pub trait Family: Addr {
    /// The key of the packet whose IP header starts at `l3`.
    fn key(l3: &[u8]) -> Result<Key<Self>, KeyError>;
    /// [`Acl::classify4_batch`] or [`Acl::classify6_batch`].
    fn classify(acl: &Acl, keys: &[Key<Self>], out: &mut [Match]);
}

impl Family for u32 {
    fn key(l3: &[u8]) -> Result<Key<u32>, KeyError> {
        ip4_key(l3)
    }
    fn classify(acl: &Acl, keys: &[Key<u32>], out: &mut [Match]) {
        acl.classify4_batch(keys, out);
    }
}

impl Family for u128 {
    fn key(l3: &[u8]) -> Result<Key<u128>, KeyError> {
        ip6_key(l3)
    }
    fn classify(acl: &Acl, keys: &[Key<u128>], out: &mut [Match]) {
        acl.classify6_batch(keys, out);
    }
}

/// The lists a node judges by.
enum Lists {
    /// One for every packet.
    One(Arc<SharedAcl>),
    /// By the packet's interface on `side`.
    PerInterface(Arc<[Arc<SharedAcl>]>, Side),
}

/// An ACL node for family `A` (`u32`: IPv4, `u128`: IPv6).
pub struct AclNode<A> {
    name: String,
    onward: Onward,
    lists: Lists,
    /// A run of one interface's packets, when a vector mixes interfaces.
    run: Vec<Packet>,
    /// Where the IP header starts in the data: 0, or [`REWRITTEN_L2`] on
    /// an output arc.
    l3_at: usize,
    keys: Vec<Key<A>>,
    /// Per packet of the vector: its key's error, if any.
    bad: Vec<Option<KeyError>>,
    matches: Vec<Match>,
}

impl AclNode<u32> {
    /// An IPv4 node `name` that sends what `acl` permits to `next`.
    pub fn ip4(name: impl Into<String>, next: impl Into<String>, acl: Arc<SharedAcl>) -> Self {
        AclNode::new(name.into(), Onward::To(next.into()), Lists::One(acl))
    }
}

impl AclNode<u128> {
    /// An IPv6 node `name` that sends what `acl` permits to `next`.
    pub fn ip6(name: impl Into<String>, next: impl Into<String>, acl: Arc<SharedAcl>) -> Self {
        AclNode::new(name.into(), Onward::To(next.into()), Lists::One(acl))
    }
}

impl<A: Family> AclNode<A> {
    /// A node `name` standing on an arc: judges each packet by
    /// `lists[interface]` (the interface the arc is chosen by) and sends
    /// what passes on along the arc.
    pub fn on_arc(name: impl Into<String>, onward: Onward, lists: Arc<[Arc<SharedAcl>]>) -> Self {
        let side = match &onward {
            Onward::Arc { arc, .. } => arc.side(),
            Onward::To(_) => Side::Rx,
        };
        let mut node = AclNode::new(name.into(), onward, Lists::PerInterface(lists, side));
        if side == Side::Tx {
            node.l3_at = REWRITTEN_L2;
        }
        node
    }
}

/// The frame the packet came in, for its MACs: `ethernet-input` left
/// `l3_offset` bytes of it in front of the data.
fn l2_of(pkt: &mut Packet) -> super::key::L2Key {
    let (back, vlan) = (usize::from(pkt.meta().l3_offset), pkt.meta().vlan);
    let l2 = match pkt.prepend(back) {
        Ok(b) => l2_key(b, vlan),
        Err(_) => l2_key(&[], vlan),
    };
    if back != 0 && pkt.advance(back).is_err() {
        // Cannot happen: the bytes just prepended are there to strip.
        return l2_key(&[], vlan);
    }
    l2
}

impl<A: Family> AclNode<A> {
    fn new(name: String, onward: Onward, lists: Lists) -> Self {
        AclNode {
            name,
            onward,
            lists,
            run: Vec::with_capacity(MAX_BATCH),
            l3_at: 0,
            keys: Vec::with_capacity(MAX_BATCH),
            bad: Vec::with_capacity(MAX_BATCH),
            matches: vec![0; MAX_BATCH],
        }
    }

    /// Classifies up to a vector of `packets` and sends each on.
    fn run(
        &mut self,
        acl: &Acl,
        route: &sluice_graph::feature::Route,
        packets: &mut Vec<Packet>,
        out: &mut Next<'_>,
    ) {
        self.keys.clear();
        self.bad.clear();
        let l2 = acl.needs_l2();
        for pkt in packets.iter_mut() {
            match A::key(pkt.data().get(self.l3_at..).unwrap_or_default()) {
                Ok(mut k) => {
                    if l2 {
                        k.l2 = match self.l3_at {
                            0 => l2_of(pkt),
                            _ => l2_key(pkt.data(), pkt.meta().vlan),
                        };
                    }
                    self.keys.push(k);
                    self.bad.push(None);
                }
                Err(e) => {
                    // A key that matches nothing real; the packet is
                    // dropped below whatever it gets.
                    self.keys.push(Key::default());
                    self.bad.push(Some(e));
                }
            }
        }
        A::classify(acl, &self.keys, &mut self.matches);
        for (i, mut pkt) in packets.drain(..).enumerate() {
            match self.bad[i] {
                Some(KeyError::TruncatedL3) => out.drop(pkt, error::TRUNCATED_L3),
                Some(KeyError::TruncatedL4) => out.drop(pkt, error::TRUNCATED_L4),
                None => match acl.action(self.matches[i]) {
                    Action::Deny => out.drop(pkt, error::DENY),
                    Action::Permit => out.send(route.next(pkt.meta()), pkt),
                    Action::PermitReflect => {
                        pkt.meta_mut().flags |= REFLECT;
                        out.send(route.next(pkt.meta()), pkt);
                    }
                },
            }
        }
    }
}

impl<A: Family> Node for AclNode<A> {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            next: self.onward.names(),
            ..NodeSpec::internal(self.name.clone(), &[], ERRORS)
        }
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let route = self.onward.load();
        let (lists, side) = match &self.lists {
            Lists::One(acl) => {
                // One list for the whole vector, even if the control
                // plane swaps it meanwhile.
                let acl = acl.load();
                return self.judge(&acl, &route, input, out);
            }
            Lists::PerInterface(lists, side) => (lists.clone(), *side),
        };
        while !input.is_empty() {
            // The run of packets of the first one's interface, judged by
            // that interface's list, loaded once for the run.
            let interface = side.of(input[0].meta());
            let n = input
                .iter()
                .position(|p| side.of(p.meta()) != interface)
                .unwrap_or(input.len());
            let Some(acl) = lists.get(interface as usize) else {
                let mut run = Frame::from(input.drain(..n).collect::<Vec<_>>());
                out.drop_all(&mut run, error::NO_LIST);
                continue;
            };
            let acl = acl.load();
            if n == input.len() {
                return self.judge(&acl, &route, input, out);
            }
            let mut run = std::mem::take(&mut self.run);
            run.extend(input.drain(..n));
            self.judge(&acl, &route, &mut run, out);
            self.run = run;
        }
    }
}

impl<A: Family> AclNode<A> {
    /// Judges `packets` by `acl`, a vector's worth at a time.
    fn judge(
        &mut self,
        acl: &Acl,
        route: &sluice_graph::feature::Route,
        packets: &mut Vec<Packet>,
        out: &mut Next<'_>,
    ) {
        if packets.len() <= MAX_BATCH {
            return self.run(acl, route, packets, out);
        }
        // Longer than a vector (not made by the dispatcher): a vector's
        // worth at a time.
        let mut rest: Vec<Packet> = std::mem::take(packets);
        while !rest.is_empty() {
            let n = rest.len().min(MAX_BATCH);
            let mut part: Vec<Packet> = rest.drain(..n).collect();
            self.run(acl, route, &mut part, out);
        }
    }
}
