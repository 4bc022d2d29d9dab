//! `ip4-local` / `ip6-local`: packets for the forwarder's own addresses.
//! It answers pings, answers Neighbour Solicitations and learns from
//! Neighbour Advertisements (IPv6; ARP has its own node), and tells
//! senders of anything else that nothing listens (ICMP port or protocol
//! unreachable), as a host must (RFC 1122 3.2.2.1, RFC 4443 3.1).

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use sluice_buf::Packet;
use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};
use sluice_wire::{IpProtocol, Ipv6Packet};

use super::{Family, Unreachable};
use crate::addr::{IfAddrs, SharedAddrs};
use crate::fib::Fib;
use crate::host::{self, NdKind};
use crate::outputs::Outputs;

mod next {
    pub const LOOKUP: usize = 0;
    pub const ICMP_ERROR: usize = 1;
    /// Interface outputs (for ND answers) start here.
    pub const OUTPUT: usize = 2;
}

mod error {
    pub const ECHO_REPLIED: usize = 0;
    pub const BAD_ECHO: usize = 1;
    pub const ICMP_NOT_HANDLED: usize = 2;
    pub const FRAGMENT: usize = 3;
    pub const TCP_NO_LISTENER: usize = 4;
    pub const UDP_NO_LISTENER: usize = 5;
    pub const UNKNOWN_PROTOCOL: usize = 6;
    pub const ND_ANSWERED: usize = 7;
    pub const ND_LEARNED: usize = 8;
    pub const BAD_ND: usize = 9;
    pub const ROUTER_DISCOVERY: usize = 10;
    pub const NOT_FOR_US: usize = 11;
    pub const MALFORMED: usize = 12;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("echo-replied", "echo requests answered"),
    ErrorSpec::error("bad-echo", "echo request malformed or with a bad checksum"),
    ErrorSpec::info(
        "icmp-not-handled",
        "ICMP message of a type this host ignores",
    ),
    ErrorSpec::info("fragment", "fragment for this host (no reassembly)"),
    ErrorSpec::info("tcp-no-listener", "TCP segment for this host: no listener"),
    ErrorSpec::info(
        "udp-no-listener",
        "UDP for this host: no listener (ICMP sent)",
    ),
    ErrorSpec::info("unknown-protocol", "protocol not served (ICMP sent)"),
    ErrorSpec::info("nd-answered", "neighbour solicitations answered"),
    ErrorSpec::info("nd-learned", "neighbour advertisements learned from"),
    ErrorSpec::error("bad-nd", "ND message invalid (RFC 4861 7.1)"),
    ErrorSpec::info(
        "router-discovery-disabled",
        "router solicitation/advertisement ignored",
    ),
    ErrorSpec::info("not-for-us", "NS for an address this host does not have"),
    ErrorSpec::error("malformed", "header truncated or inconsistent"),
];

/// What to do with one local packet.
enum Action {
    Lookup(usize),
    Icmp(Unreachable, usize),
    Output(u32, usize),
    Drop(usize),
}

/// The local-delivery node of family `F`.
pub struct Local<F: Family> {
    fib: Arc<Fib>,
    addrs: Arc<SharedAddrs>,
    outputs: Outputs,
    _family: PhantomData<F>,
}

impl<F: Family> Local<F> {
    /// A node answering for `addrs`.
    pub fn new(fib: Arc<Fib>, addrs: Arc<SharedAddrs>) -> Local<F> {
        let outputs = Outputs::new(fib.interfaces(), next::OUTPUT);
        Local {
            fib,
            addrs,
            outputs,
            _family: PhantomData,
        }
    }

    fn v4(&self, pkt: &mut Packet) -> Action {
        let h = pkt.data();
        let Some(h) = h.get(..20) else {
            return Action::Drop(error::MALFORMED);
        };
        if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
            return Action::Drop(error::FRAGMENT);
        }
        let ihl = usize::from(h[0] & 0xf) * 4;
        match h[9] {
            1 => match pkt.data().get(ihl) {
                Some(8) => match host::icmp4::echo_reply(pkt) {
                    Ok(()) => Action::Lookup(error::ECHO_REPLIED),
                    Err(_) => Action::Drop(error::BAD_ECHO),
                },
                _ => Action::Drop(error::ICMP_NOT_HANDLED),
            },
            6 => Action::Drop(error::TCP_NO_LISTENER),
            17 => Action::Icmp(Unreachable::Port, error::UDP_NO_LISTENER),
            _ => Action::Icmp(Unreachable::Protocol, error::UNKNOWN_PROTOCOL),
        }
    }

    fn v6(&self, addrs: &IfAddrs, pkt: &mut Packet) -> Action {
        let rx = pkt.meta().rx_if;
        let (upper, dst) = {
            let Ok(ip) = Ipv6Packet::new_checked(pkt.data()) else {
                return Action::Drop(error::MALFORMED);
            };
            let Ok(u) = ip.upper_layer() else {
                return Action::Drop(error::MALFORMED);
            };
            (u, ip.dst_addr())
        };
        if upper.fragment.is_some() {
            return Action::Drop(error::FRAGMENT);
        }
        match upper.protocol {
            IpProtocol::ICMPV6 => match pkt.data().get(upper.offset).copied() {
                Some(128) => {
                    let our = if dst.is_multicast() {
                        match addrs.v6_source(rx) {
                            Some(a) => a,
                            None => return Action::Drop(error::ICMP_NOT_HANDLED),
                        }
                    } else {
                        dst
                    };
                    match host::icmp6::echo_reply(pkt, our) {
                        Ok(()) => Action::Lookup(error::ECHO_REPLIED),
                        Err(_) => Action::Drop(error::BAD_ECHO),
                    }
                }
                Some(133 | 134) => Action::Drop(error::ROUTER_DISCOVERY),
                Some(135 | 136) => self.nd(addrs, pkt),
                _ => Action::Drop(error::ICMP_NOT_HANDLED),
            },
            IpProtocol::TCP => Action::Drop(error::TCP_NO_LISTENER),
            IpProtocol::UDP => Action::Icmp(Unreachable::Port, error::UDP_NO_LISTENER),
            _ => Action::Icmp(Unreachable::Protocol, error::UNKNOWN_PROTOCOL),
        }
    }

    /// Neighbour Discovery: the frame is needed whole, so the L2 header
    /// `ethernet-input` stripped is taken back.
    fn nd(&self, addrs: &IfAddrs, pkt: &mut Packet) -> Action {
        let rx = pkt.meta().rx_if;
        let l2 = usize::from(pkt.meta().l3_offset);
        if l2 == 0 || pkt.prepend(l2).is_err() {
            return Action::Drop(error::MALFORMED);
        }
        let Ok(info) = host::NdInfo::parse(pkt.data()) else {
            return Action::Drop(error::BAD_ND);
        };
        let learn = |addr: Ipv6Addr, mac| {
            if !addr.is_unspecified() {
                let on_link = addrs.on_link(rx, IpAddr::V6(addr)) || addr.is_unicast_link_local();
                self.fib.learn_neighbor(rx, IpAddr::V6(addr), mac, on_link);
            }
        };
        match info.kind {
            NdKind::NeighborSolicit => {
                let Some(target) = info.target else {
                    return Action::Drop(error::BAD_ND);
                };
                if !addrs.is_v6(rx, target) {
                    return Action::Drop(error::NOT_FOR_US);
                }
                if let Some(mac) = info.source_ll {
                    learn(info.src, mac);
                }
                let Some(our_mac) = self.fib.interfaces().get(rx).map(|i| i.mac) else {
                    return Action::Drop(error::MALFORMED);
                };
                match host::nd::advertise(pkt, our_mac, target) {
                    Ok(()) => match self.outputs.next(rx) {
                        Some(n) => Action::Output(rx, n),
                        None => Action::Drop(error::ND_ANSWERED),
                    },
                    Err(_) => Action::Drop(error::BAD_ND),
                }
            }
            NdKind::NeighborAdvert(_) => {
                // Without the option there is no MAC to learn.
                if let (Some(t), Some(mac)) = (info.target, info.target_ll) {
                    learn(t, mac);
                }
                Action::Drop(error::ND_LEARNED)
            }
            _ => Action::Drop(error::ROUTER_DISCOVERY),
        }
    }
}

impl<F: Family> Node for Local<F> {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(
            F::LOCAL,
            &self.outputs.with(&[F::LOOKUP, F::ICMP_ERROR]),
            ERRORS,
        )
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let addrs = self.addrs.snapshot();
        for mut pkt in input.drain(..) {
            let action = if F::VERSION == 4 {
                self.v4(&mut pkt)
            } else {
                self.v6(&addrs, &mut pkt)
            };
            match action {
                Action::Lookup(counter) => {
                    out.count(counter, 1);
                    out.send(next::LOOKUP, pkt);
                }
                Action::Icmp(why, counter) => {
                    out.count(counter, 1);
                    why.mark(&mut pkt, 0);
                    out.send(next::ICMP_ERROR, pkt);
                }
                Action::Output(interface, n) => {
                    out.count(error::ND_ANSWERED, 1);
                    pkt.meta_mut().tx_if = interface;
                    out.send(n, pkt);
                }
                Action::Drop(e) => out.drop(pkt, e),
            }
        }
    }
}
