//! `ip4-icmp-error` / `ip6-icmp-error`: turns a packet that cannot be
//! delivered into the ICMP error for its sender, rate-limited (RFC 1812
//! 4.3.2.8, RFC 4443 2.4(f)), and routes it back.

use std::marker::PhantomData;
use std::sync::Arc;

use sluice_graph::{Cx, ErrorSpec, Frame, Next, Node, NodeSpec};

use super::{Family, Unreachable};
use crate::addr::SharedAddrs;
use crate::host::{HostError, RateLimiter};

mod error {
    pub const SENT: usize = 0;
    pub const RATE_LIMITED: usize = 1;
    pub const NOT_ALLOWED: usize = 2;
    pub const NO_SOURCE: usize = 3;
    pub const CANNOT_BUILD: usize = 4;
    pub const NO_REASON: usize = 5;
}

const ERRORS: &[ErrorSpec] = &[
    ErrorSpec::info("sent", "ICMP errors sent"),
    ErrorSpec::info("rate-limited", "not sent: over the rate limit"),
    ErrorSpec::info(
        "not-allowed",
        "not sent: about an error, fragment, broadcast",
    ),
    ErrorSpec::info("no-source-address", "not sent: no address to send from"),
    ErrorSpec::error("cannot-build", "not sent: packet malformed or too short"),
    ErrorSpec::error("no-reason", "packet came without an ICMP error reason"),
];

/// Default rate of ICMP errors per worker, and the burst allowed.
pub const RATE_PER_SECOND: u64 = 1000;
/// Burst of [`RATE_PER_SECOND`].
pub const BURST: u64 = 100;

/// The ICMP error node of family `F`.
pub struct IcmpError<F: Family> {
    addrs: Arc<SharedAddrs>,
    limit: RateLimiter,
    _family: PhantomData<F>,
}

impl<F: Family> IcmpError<F> {
    /// A node sending errors from the addresses in `addrs`, at most
    /// `per_second` (with bursts of `burst`) per worker.
    pub fn new(addrs: Arc<SharedAddrs>, per_second: u64, burst: u64) -> IcmpError<F> {
        let hz = sluice_graph::clock::hz() as u64;
        IcmpError {
            addrs,
            limit: RateLimiter::new(per_second, burst, hz),
            _family: PhantomData,
        }
    }
}

impl<F: Family> Node for IcmpError<F> {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(F::ICMP_ERROR, &[F::LOOKUP], ERRORS)
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let addrs = self.addrs.snapshot();
        for mut pkt in input.drain(..) {
            let Some((why, mtu)) = Unreachable::read(&pkt) else {
                out.drop(pkt, error::NO_REASON);
                continue;
            };
            let Some(src) = F::error_source(&addrs, pkt.meta().rx_if) else {
                out.drop(pkt, error::NO_SOURCE);
                continue;
            };
            if !self.limit.allow(cx.now) {
                out.drop(pkt, error::RATE_LIMITED);
                continue;
            }
            match F::icmp_error(&mut pkt, why, mtu, src) {
                Ok(()) => {
                    pkt.meta_mut().opaque[0] = 0;
                    out.count(error::SENT, 1);
                    out.send(0, pkt);
                }
                Err(HostError::NotAllowed(_)) => out.drop(pkt, error::NOT_ALLOWED),
                Err(_) => out.drop(pkt, error::CANNOT_BUILD),
            }
        }
    }
}
