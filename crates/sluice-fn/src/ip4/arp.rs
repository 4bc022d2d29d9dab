//! `arp-input`: ARP for the forwarder's IPv4 addresses. Answers requests
//! for them, learns the senders that ask or answer (RFC 826: merge the
//! sender into the table when the target is us), and never answers for
//! anyone else (proxy ARP is off).

use std::net::IpAddr;
use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};
use sluice_wire::ArpOperation;

use crate::addr::SharedAddrs;
use crate::fib::Fib;
use crate::host::{self, ArpInfo};
use crate::outputs::Outputs;

/// The node's name.
pub const NAME: &str = "arp-input";

mod error {
    pub const REPLIED: usize = 0;
    pub const LEARNED: usize = 1;
    pub const NOT_FOR_US: usize = 2;
    pub const MALFORMED: usize = 3;
    pub const OFF_LINK: usize = 4;
    pub const STATIC_CONFLICT: usize = 5;
    pub const CANNOT_REPLY: usize = 6;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("replied", "ARP requests for our addresses answered"),
    ErrorSpec::info("learned", "ARP replies learned from"),
    ErrorSpec::info("not-for-us", "ARP for another host (proxy ARP is off)"),
    ErrorSpec::error("malformed", "ARP packet malformed or not Ethernet/IPv4"),
    ErrorSpec::info("off-link", "ARP sender not on a subnet of the interface"),
    ErrorSpec::warn("static-conflict", "ARP disagrees with a static neighbour"),
    ErrorSpec::error("cannot-reply", "ARP reply could not be built"),
];

/// `arp-input`: takes whole Ethernet frames (`ethernet-input` does not
/// strip ARP's L2 header).
pub struct ArpInput {
    fib: Arc<Fib>,
    addrs: Arc<SharedAddrs>,
    outputs: Outputs,
}

impl ArpInput {
    /// A node answering for `addrs` and learning into `fib`.
    pub fn new(fib: Arc<Fib>, addrs: Arc<SharedAddrs>) -> ArpInput {
        let outputs = Outputs::new(fib.interfaces(), 0);
        ArpInput {
            fib,
            addrs,
            outputs,
        }
    }
}

impl Node for ArpInput {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(NAME, &self.outputs.with(&[]), ERRORS)
    }

    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let addrs = self.addrs.snapshot();
        for mut pkt in input.drain(..) {
            let rx = pkt.meta().rx_if;
            let Ok(arp) = ArpInfo::parse(pkt.data()) else {
                out.drop(pkt, error::MALFORMED);
                continue;
            };
            let for_us = addrs.is_v4(rx, arp.target_ip);
            let sender = IpAddr::V4(arp.sender_ip);
            if !arp.is_probe() && (for_us || arp.is_announcement()) {
                if !addrs.on_link(rx, sender) {
                    out.drop(pkt, error::OFF_LINK);
                    continue;
                }
                if !self.fib.learn_neighbor(rx, sender, arp.sender_mac, true) {
                    out.count(error::STATIC_CONFLICT, 1);
                }
            }
            if !for_us {
                out.drop(pkt, error::NOT_FOR_US);
                continue;
            }
            if arp.op != ArpOperation::REQUEST {
                out.drop(pkt, error::LEARNED);
                continue;
            }
            let (Some(info), Some(n)) = (self.fib.interfaces().get(rx), self.outputs.next(rx))
            else {
                out.drop(pkt, error::CANNOT_REPLY);
                continue;
            };
            match host::arp::reply(&mut pkt, info.mac, arp.target_ip) {
                Ok(()) => {
                    pkt.meta_mut().tx_if = rx;
                    out.count(error::REPLIED, 1);
                    out.send(n, pkt);
                }
                Err(_) => out.drop(pkt, error::CANNOT_REPLY),
            }
        }
    }
}
