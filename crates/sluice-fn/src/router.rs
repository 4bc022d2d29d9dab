//! Everything a worker needs to route: the nodes of `ethernet-input`, the
//! IPv4 and IPv6 paths, ARP and ND, over one shared FIB.

use std::sync::Arc;

use sluice_graph::Node;

use crate::addr::{IfAddrs, SharedAddrs};
use crate::ethernet::EthernetInput;
use crate::features::IpArcs;
use crate::fib::Fib;
use crate::ip::resolve::ResolveConfig;
use crate::ip::{IcmpError, Local, Lookup, Resolve, Rewrite, V4, V6, icmp_error};
use crate::ip4::{ArpAnnounce, ArpInput, Ip4Input};
use crate::ip6::Ip6Input;

/// The routing function, shared by every worker.
#[derive(Debug, Clone)]
pub struct Router {
    /// The FIB (and neighbour table).
    pub fib: Arc<Fib>,
    /// The interfaces' own addresses, replaceable while workers forward.
    pub addrs: Arc<SharedAddrs>,
    /// Neighbour resolution timers and bounds.
    pub resolve: ResolveConfig,
    /// ICMP errors per second per worker, and the burst.
    pub icmp_rate: (u64, u64),
    /// Send gratuitous ARP for the IPv4 addresses at start.
    pub announce: bool,
    /// The feature arcs on the path (none by default: give the router
    /// arcs naming the feature nodes the graph will have).
    pub arcs: IpArcs,
}

impl Router {
    /// A router on `fib` with `addrs`, default timers; installs the
    /// addresses' connected and local routes.
    pub fn new(fib: Arc<Fib>, addrs: Arc<IfAddrs>) -> Result<Router, crate::fib::FibError> {
        addrs.install(&fib)?;
        Ok(Router {
            addrs: Arc::new(SharedAddrs::new(addrs)),
            resolve: ResolveConfig::default(),
            icmp_rate: (icmp_error::RATE_PER_SECOND, icmp_error::BURST),
            announce: true,
            arcs: IpArcs::bare(fib.interfaces()),
            fib,
        })
    }

    /// The nodes for one worker's graph.
    pub fn nodes(&self) -> Vec<Box<dyn Node>> {
        let (fib, addrs) = (&self.fib, &self.addrs);
        let (rate, burst) = self.icmp_rate;
        let mut nodes: Vec<Box<dyn Node>> = vec![
            Box::new(EthernetInput::new(fib.interfaces())),
            Box::new(Ip4Input::on_arc(self.arcs.ip4_unicast.clone())),
            Box::new(Ip6Input::on_arc(
                addrs.clone(),
                self.arcs.ip6_unicast.clone(),
            )),
            Box::new(ArpInput::new(fib.clone(), addrs.clone())),
            Box::new(Lookup::<V4>::new(fib.clone())),
            Box::new(Lookup::<V6>::new(fib.clone())),
            Box::new(Rewrite::<V4>::on_arc(
                fib.clone(),
                self.arcs.ip4_output.clone(),
            )),
            Box::new(Rewrite::<V6>::on_arc(
                fib.clone(),
                self.arcs.ip6_output.clone(),
            )),
            Box::new(Local::<V4>::new(fib.clone(), addrs.clone())),
            Box::new(Local::<V6>::new(fib.clone(), addrs.clone())),
            Box::new(IcmpError::<V4>::new(addrs.clone(), rate, burst)),
            Box::new(IcmpError::<V6>::new(addrs.clone(), rate, burst)),
            Box::new(Resolve::<V4>::new(fib.clone(), addrs.clone(), self.resolve)),
            Box::new(Resolve::<V6>::new(fib.clone(), addrs.clone(), self.resolve)),
        ];
        if self.announce {
            nodes.push(Box::new(ArpAnnounce::new(fib.clone(), &addrs.snapshot())));
        }
        nodes
    }
}
