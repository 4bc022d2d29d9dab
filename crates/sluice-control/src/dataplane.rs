//! Builds the data plane a [`Config`] describes and runs it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_buf::{Pool, PoolConfig};
use sluice_fn::{Fib, FibConfig, IfAddrs, Router};
use sluice_graph::iface::{IfStats, Interfaces};
use sluice_graph::worker::Workers;
use sluice_graph::{Graph, GraphBuilder, GraphStats, runtime};
use sluice_io::Driver as IfDriver;
use sluice_io::af_packet::{AfPacket, AfPacketConfig, AfPacketRx, AfPacketTx};
use sluice_io::af_xdp::{self, AfXdpConfig, AfXdpRx, AfXdpTx};
use sluice_io::capture::PacketCapture;
use sluice_io::memif::{
    self, MemifClient, MemifClientConfig, MemifClientRx, MemifClientTx, MemifConfig, MemifRx,
    MemifServer, MemifSocket, MemifTx, RxMode,
};
use sluice_io::pcap::{PcapCapture, PcapReplay};
use sluice_io::pg::PacketGenerator;
use sluice_io::sink::Sink;
use sluice_io::tap::{Tap, TapConfig, TapRx, TapTx};
use sluice_io::vhost::{self, VhostConfig, VhostRx, VhostTx, VhostUser};
use sluice_io::{InterfaceInput, InterfaceOutput, LinkStatus, Queues};

use crate::config::{Config, Driver, Interface};
use crate::features::Features;
use crate::metrics::MetricsServer;
use crate::running::Running;
use crate::server::{ControlServer, ControlState};
use crate::show;

/// The node that brings handed-off packets in (its vectors count them).
pub use sluice_fn::handoff::INPUT as HANDOFF_INPUT;

/// Errors building or running the data plane.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The buffer pool.
    #[error("buffers: {0}")]
    Buffers(#[from] sluice_buf::BufError),
    /// A capture file.
    #[error("{0}")]
    Pcap(#[from] sluice_io::pcap::PcapError),
    /// The graph (a bug: the configuration was checked).
    #[error("graph: {0}")]
    Graph(#[from] sluice_graph::GraphError),
    /// The routes (a bug: the configuration was checked).
    #[error("routes: {0}")]
    Fib(#[from] sluice_fn::fib::FibError),
    /// The L2 configuration (a bug: the configuration was checked).
    #[error("l2: {0}")]
    L2(#[from] sluice_fn::L2ConfigError),
    /// The interface addresses (a bug: the configuration was checked).
    #[error("addresses: {0}")]
    Addr(#[from] sluice_fn::addr::AddrError),
    /// Threads.
    #[error("cannot start workers: {0}")]
    Threads(#[from] std::io::Error),
    /// A kernel interface could not be attached.
    #[error("interface {0}: {1}")]
    Kernel(String, sluice_io::KernelError),
    /// A kernel interface's queues do not fit the workers.
    #[error("interface {0}: {1}")]
    Queues(String, String),
    /// The feature arcs, access lists or connection tables.
    #[error("features: {0}")]
    Features(String),
}

/// The queues of one kernel interface, opened, waiting for their workers.
enum Opened {
    /// Queue halves by queue number, taken by their workers.
    AfXdp(Vec<Option<(AfXdpRx, AfXdpTx)>>),
    /// Receive queues and transmit sockets by queue number.
    AfPacket(Vec<Option<AfPacketRx>>, Vec<Option<AfPacketTx>>),
    /// The two halves of each TAP queue, by queue number.
    Tap(Vec<Option<(TapRx, TapTx)>>),
    /// Queue pairs by queue number.
    Memif(Vec<Option<(MemifRx, MemifTx)>>),
    /// Queue pairs by queue number, Sluice the client.
    MemifClient(Vec<Option<(MemifClientRx, MemifClientTx)>>),
    /// vhost-user queue pairs by queue number.
    Vhost(Vec<Option<(VhostRx, VhostTx)>>),
}

/// A worker's receive or transmit driver of a kernel interface.
type Port = Box<dyn IfDriver>;

impl Opened {
    /// Worker `w`'s receive and transmit drivers, by position.
    fn take(&mut self, w: usize, workers: usize) -> (Vec<Port>, Vec<Port>) {
        fn boxed<D: IfDriver + 'static>(d: D) -> Port {
            Box::new(d)
        }
        match self {
            Opened::AfXdp(slots) => share(slots, w, workers)
                .into_iter()
                .map(|(r, t)| (boxed(r), boxed(t)))
                .unzip(),
            Opened::AfPacket(rx, tx) => (
                share(rx, w, workers).into_iter().map(boxed).collect(),
                share(tx, w, workers).into_iter().map(boxed).collect(),
            ),
            Opened::Tap(slots) => share(slots, w, workers)
                .into_iter()
                .map(|(r, t)| (boxed(r), boxed(t)))
                .unzip(),
            Opened::Memif(slots) => share(slots, w, workers)
                .into_iter()
                .map(|(r, t)| (boxed(r), boxed(t)))
                .unzip(),
            Opened::MemifClient(slots) => share(slots, w, workers)
                .into_iter()
                .map(|(r, t)| (boxed(r), boxed(t)))
                .unzip(),
            Opened::Vhost(slots) => share(slots, w, workers)
                .into_iter()
                .map(|(r, t)| (boxed(r), boxed(t)))
                .unzip(),
        }
    }
}

/// The kernel interfaces, opened: per interface (by index), its queues
/// and link state, and the interfaces with the devices' MACs filled in.
struct KernelPorts {
    opened: Vec<Option<Opened>>,
    links: Vec<Option<Arc<LinkStatus>>>,
    interfaces: Vec<Interface>,
    /// memif control channels, served by the thread that runs the workers.
    memif_servers: Vec<MemifEnd>,
}

/// A memif control channel, either end, or a vhost-user one (served
/// alike by the run loop).
enum MemifEnd {
    Server(MemifServer),
    Client(MemifClient),
    Vhost(Box<VhostUser>),
}

impl MemifEnd {
    fn poll(&mut self, timeout: Duration) {
        match self {
            MemifEnd::Server(s) => s.poll(timeout),
            MemifEnd::Client(c) => c.poll(timeout),
            MemifEnd::Vhost(v) => v.poll(timeout),
        }
    }
}

/// The socket of a memif interface: a path, or `abstract:NAME`.
fn memif_socket(m: &crate::config::Memif) -> MemifSocket {
    match m.socket.strip_prefix("abstract:") {
        Some(a) => MemifSocket::Abstract(a.to_string()),
        None => MemifSocket::Path(m.socket.clone().into()),
    }
}

/// Refuses an interface with fewer queues than workers: each worker polls
/// and sends on queues of its own.
fn enough_queues(name: &str, queues: u32, workers: usize) -> Result<(), DataplaneError> {
    if (queues as usize) < workers {
        return Err(DataplaneError::Queues(
            name.to_string(),
            format!(
                "{queues} queue(s) for {workers} workers: every worker needs one (set `queues`)"
            ),
        ));
    }
    Ok(())
}

/// Connects to a memif server (retrying while it is not there yet); the
/// queue pairs wait for their workers.
fn open_memif_client(
    config: &Config,
    name: &str,
    m: &crate::config::Memif,
    status: &Arc<LinkStatus>,
) -> Result<(MemifClient, Vec<(MemifClientRx, MemifClientTx)>), DataplaneError> {
    enough_queues(name, m.queues, config.workers)?;
    let mut cfg = MemifClientConfig::new(name, "");
    cfg.socket = memif_socket(m);
    cfg.id = m.id;
    cfg.secret = m.secret.clone();
    cfg.queues = m.queues as u16;
    // The configuration checked a power of two in 2..=16384.
    cfg.log2_ring_size = m.ring_size.trailing_zeros() as u8;
    cfg.buffer_size = m.buffer_size;
    memif::connect(&cfg, status).map_err(|e| DataplaneError::Kernel(name.to_string(), e))
}

/// Listens for a memif client; its queue pairs wait for their workers.
fn open_memif(
    config: &Config,
    name: &str,
    m: &crate::config::Memif,
    status: &Arc<LinkStatus>,
) -> Result<(MemifServer, Vec<(MemifRx, MemifTx)>), DataplaneError> {
    enough_queues(name, m.queues, config.workers)?;
    let mut cfg = MemifConfig::new(name, "");
    cfg.socket = memif_socket(m);
    cfg.id = m.id;
    cfg.secret = m.secret.clone();
    cfg.queues = m.queues as u16;
    cfg.rx_mode = if m.interrupt {
        RxMode::Interrupt
    } else {
        RxMode::Polling
    };
    memif::listen(&cfg, status).map_err(|e| DataplaneError::Kernel(name.to_string(), e))
}

/// Listens for a vhost-user front end, or connects to one (and again
/// whenever the link drops); its queue pairs wait for their workers.
fn open_vhost(
    config: &Config,
    name: &str,
    v: &crate::config::VhostUser,
    status: &Arc<LinkStatus>,
) -> Result<(VhostUser, Vec<(VhostRx, VhostTx)>), DataplaneError> {
    enough_queues(name, v.queues, config.workers)?;
    let mut cfg = VhostConfig::new(name, &v.socket);
    cfg.queues = v.queues as u16;
    cfg.rx_mode = if v.interrupt {
        RxMode::Interrupt
    } else {
        RxMode::Polling
    };
    let opened = if v.client {
        vhost::connect(&cfg, status)
    } else {
        vhost::listen(&cfg, status)
    };
    opened.map_err(|e| DataplaneError::Kernel(name.to_string(), e))
}

/// Opens the kernel interfaces of `config`: their queues, and what they
/// say of themselves (MAC, link state).
fn open_kernel(config: &Config, pool: &Pool) -> Result<KernelPorts, DataplaneError> {
    // AF_XDP lends its rings' worth of buffers to the kernel for good;
    // the graph needs the rest. Refuse up front rather than starve later.
    let lent: u64 = config
        .interfaces
        .iter()
        .filter_map(|i| match &i.driver {
            Driver::AfXdp(k) => Some(u64::from(k.queues) * u64::from(k.ring_size) * 2),
            _ => None,
        })
        .sum();
    if lent > 0 && lent + 4096 > u64::from(pool.capacity()) {
        return Err(DataplaneError::Queues(
            "af-xdp".into(),
            format!(
                "the AF_XDP rings hold {lent} buffers lent to the kernel, and the pool has {}: \
                 raise `[buffers] count` to at least {} or lower `ring-size`",
                pool.capacity(),
                lent + 4096
            ),
        ));
    }
    let mut opened = Vec::new();
    let mut status = Vec::new();
    let mut ifs = config.interfaces.clone();
    let mut memif_servers = Vec::new();
    for (k, i) in config.interfaces.iter().enumerate() {
        if let Driver::Memif(m) = &i.driver {
            let st = LinkStatus::new();
            if m.client {
                let (client, queues) = open_memif_client(config, &i.name, m, &st)?;
                memif_servers.push(MemifEnd::Client(client));
                opened.push(Some(Opened::MemifClient(
                    queues.into_iter().map(Some).collect(),
                )));
            } else {
                let (server, queues) = open_memif(config, &i.name, m, &st)?;
                memif_servers.push(MemifEnd::Server(server));
                opened.push(Some(Opened::Memif(queues.into_iter().map(Some).collect())));
            }
            status.push(Some(st));
            continue;
        }
        if let Driver::VhostUser(v) = &i.driver {
            let st = LinkStatus::new();
            let (end, queues) = open_vhost(config, &i.name, v, &st)?;
            memif_servers.push(MemifEnd::Vhost(Box::new(end)));
            opened.push(Some(Opened::Vhost(queues.into_iter().map(Some).collect())));
            status.push(Some(st));
            continue;
        }
        let Some(kernel) = i.driver.kernel() else {
            opened.push(None);
            // A BVI has no nodes of its own to follow a state.
            status.push((i.driver != Driver::Bvi).then(LinkStatus::new));
            continue;
        };
        let err = |e| DataplaneError::Kernel(i.name.clone(), e);
        enough_queues(&i.name, kernel.queues, config.workers)?;
        let mut st = LinkStatus::new();
        let mut device_mac = None;
        let mut device_mtu = None;
        let q = match &i.driver {
            Driver::AfXdp(_) => {
                let cfg = AfXdpConfig {
                    queues: kernel.queues,
                    ring_size: kernel.ring_size,
                    ..AfXdpConfig::new(&kernel.device)
                };
                let (queues, _info) = af_xdp::open(&cfg, pool, &st).map_err(err)?;
                let link = sluice_io::sys::link::Link::open(&kernel.device).map_err(err)?;
                device_mac = Some(link.mac().map_err(err)?);
                device_mtu = Some(link.mtu().map_err(err)?);
                Opened::AfXdp(queues.into_iter().map(Some).collect())
            }
            Driver::AfPacket(_) => {
                let cfg = AfPacketConfig {
                    netns: kernel.netns.clone(),
                    queues: kernel.queues as usize,
                    tx_frames: kernel.ring_size as usize,
                    ..AfPacketConfig::new(&kernel.device)
                };
                let p = AfPacket::open(&cfg).map_err(err)?;
                st = p.status.clone();
                device_mac = Some(p.mac);
                device_mtu = Some(p.mtu);
                Opened::AfPacket(
                    p.rx.into_iter().map(Some).collect(),
                    p.tx.into_iter().map(Some).collect(),
                )
            }
            // The TAP's kernel side is the host's interface; Sluice is the
            // other end of the wire and keeps a MAC of its own.
            _ => {
                let mut cfg = TapConfig::new(&kernel.device);
                if let Some(ns) = &kernel.netns {
                    cfg = cfg.in_netns(ns);
                }
                cfg.status = st.clone();
                let queues = Tap::open_queues(&cfg, kernel.queues as usize).map_err(err)?;
                Opened::Tap(queues.into_iter().map(Some).collect())
            }
        };
        if let (false, Some(mac)) = (kernel.mac_configured, device_mac) {
            ifs[k].mac = mac;
        }
        // The L3 MTU the device carries, unless the configuration says less.
        if let (false, Some(mtu)) = (kernel.mtu_configured, device_mtu) {
            ifs[k].mtu = mtu.clamp(68, u32::from(u16::MAX)) as u16;
        }
        opened.push(Some(q));
        status.push(Some(st));
    }
    Ok(KernelPorts {
        opened,
        links: status,
        interfaces: ifs,
        memif_servers,
    })
}

/// Worker `w`'s share of `items`, by position: every `workers`-th from
/// `w`. What is taken leaves `None` behind, so positions do not move.
fn share<T>(items: &mut [Option<T>], w: usize, workers: usize) -> Vec<T> {
    items
        .iter_mut()
        .enumerate()
        .filter(|(q, _)| q % workers == w)
        .filter_map(|(_, t)| t.take())
        .collect()
}

/// Per worker, what it receives from, in words: each interface's queues
/// (as [`share`] deals them) or share of a generator, and the handoff.
fn thread_inputs(config: &Config) -> Vec<Vec<String>> {
    let n = config.workers;
    (0..n)
        .map(|w| {
            let mut v = Vec::new();
            for i in &config.interfaces {
                let queues = match &i.driver {
                    Driver::Memif(m) => Some(m.queues as usize),
                    Driver::AfXdp(k) | Driver::AfPacket(k) => Some(k.queues as usize),
                    Driver::Tap(_) => Some(1),
                    _ => None,
                };
                match (&i.driver, queues) {
                    (_, Some(q)) => {
                        let mine: Vec<String> = (0..q)
                            .filter(|q| q % n == w)
                            .map(|q| q.to_string())
                            .collect();
                        if !mine.is_empty() {
                            v.push(format!("{} queue {}", i.name, mine.join(",")));
                        }
                    }
                    (Driver::Pg, _) => v.push(format!("{} (1/{n} of each stream)", i.name)),
                    (Driver::PcapIn { .. }, _) if w == 0 => v.push(format!("{} (replay)", i.name)),
                    _ => {}
                }
            }
            if config.handoff.is_some() && n > 1 {
                v.push(format!(
                    "{} (from the {} other worker{})",
                    sluice_fn::handoff::INPUT,
                    n - 1,
                    if n > 2 { "s" } else { "" }
                ));
            }
            v
        })
        .collect()
}

/// A built data plane, ready to run.
pub struct Dataplane {
    pool: Pool,
    l2: Arc<sluice_fn::L2State>,
    interfaces: Arc<Interfaces>,
    links: Vec<Option<Arc<LinkStatus>>>,
    fib: Arc<Fib>,
    memif_servers: Vec<MemifEnd>,
    if_stats: IfStats,
    graphs: Vec<Graph>,
    cores: Vec<usize>,
    main_core: Option<usize>,
    running: Arc<Running>,
    /// Per worker: what it receives from (`show threads`).
    threads: Vec<Vec<String>>,
    capture: Arc<PacketCapture>,
}

/// What a run did.
pub struct Report {
    /// Wall time of the run.
    pub seconds: f64,
    /// Packets brought in by input nodes.
    pub packets_in: u64,
    /// Packets dropped with a counter.
    pub packets_dropped: u64,
    /// `show runtime`.
    pub runtime: String,
    /// `show interface`.
    pub interfaces: String,
    /// `show errors`.
    pub errors: String,
    /// Per-node rows summed over workers, for tests and benchmarks.
    pub rows: Vec<runtime::RuntimeRow>,
    /// Per-interface (rx packets, tx packets), summed over workers.
    pub if_counts: Vec<(String, u64, u64)>,
    /// Buffers in the pool and buffers back on its free list after the run.
    pub buffers: (u32, u32),
    /// Workers that panicked (a bug).
    pub panics: usize,
}

impl Report {
    /// Millions of packets per second brought in.
    pub fn mpps(&self) -> f64 {
        self.packets_in as f64 / self.seconds.max(1e-9) / 1e6
    }
}

/// The FIB with the configuration's tables, addresses, routes and static
/// neighbours, and the router over it.
fn router(config: &Config, interfaces: &Arc<Interfaces>) -> Result<Router, DataplaneError> {
    let fib = Arc::new(Fib::new(
        FibConfig {
            tables: config.tables,
            ..FibConfig::default()
        },
        interfaces.clone(),
    )?);
    for (i, &t) in config.interface_tables.iter().enumerate() {
        fib.bind(i as u32, t)?;
    }
    let mut addrs = IfAddrs::new(interfaces.len());
    for &(i, ip, len) in &config.addresses {
        addrs.add(i as u32, ip, len)?;
    }
    let router = Router::new(fib.clone(), Arc::new(addrs))?;
    for &(i, ip, mac) in &config.neighbors {
        let on_link = router.addrs.snapshot().on_link(i as u32, ip);
        fib.add_static_neighbor(i as u32, ip, mac, on_link);
    }
    for r in &config.routes {
        fib.add(r)?;
    }
    Ok(router)
}

impl Dataplane {
    /// Builds everything (pool, tables, one graph per worker) or nothing.
    pub fn build(config: &Config) -> Result<Dataplane, DataplaneError> {
        let pool = Pool::new(&PoolConfig {
            buffers: config.buffers,
            huge_pages: config.huge_pages,
            lock: true,
        })?;
        let KernelPorts {
            mut opened,
            links,
            interfaces: ifs,
            memif_servers,
        } = open_kernel(config, &pool)?;
        let interfaces = Arc::new(crate::config::interface_table(&ifs));
        let mut router = router(config, &interfaces)?;
        // Access lists and the firewall stand on the router's arcs.
        let features =
            Arc::new(Features::new(config, &interfaces).map_err(DataplaneError::Features)?);
        router.arcs = features.arcs().clone();
        let l2 = sluice_fn::L2State::new(sluice_fn::L2Config::new(
            config.bridges.clone(),
            config.xconnects.clone(),
            interfaces.clone(),
        )?)?;
        let running = Arc::new(
            Running::new(
                config.clone(),
                router.fib.clone(),
                router.addrs.clone(),
                links.clone(),
                interfaces.clone(),
            )
            .with_features(features.clone())
            .map_err(DataplaneError::Features)?,
        );
        let if_stats = IfStats::new(config.workers, interfaces.len());
        // `pcap trace`: one capture that every interface node looks at.
        let capture = Arc::new(PacketCapture::new());
        // Measured once here, so no worker spins 20 ms on it mid-stream.
        sluice_graph::clock::hz();
        // Each cache holds up to three batches; keep every worker's share
        // well under the pool, or one worker could starve the others.
        let batch = (config.buffers as usize / (8 * config.workers)).clamp(1, 256);

        // Files are opened once, before any worker starts.
        let mut replays = Vec::new();
        let mut captures = Vec::new();
        for i in &config.interfaces {
            replays.push(match &i.driver {
                Driver::PcapIn { file, .. } => Some(PcapReplay::load(file)?),
                _ => None,
            });
            captures.push(match &i.driver {
                Driver::PcapOut { file } => Some(PcapCapture::create(file)?),
                _ => None,
            });
        }

        // Handoff: the interfaces' inputs lead to `handoff`, which passes
        // each packet on to what the interface leads to, on the worker
        // that owns its flow.
        let mut handoff = config.handoff.map(|h| {
            let l2: Vec<bool> = (0..config.interfaces.len())
                .map(|k| config.is_l2(k))
                .collect();
            let h = sluice_fn::handoff::HandoffConfig {
                workers: config.workers,
                ..h
            };
            sluice_fn::handoff::Handoff::new(h, &l2)
        });
        let threads = thread_inputs(config);

        let mut graphs = Vec::new();
        for w in 0..config.workers {
            let counters = if_stats.worker(w);
            let mut b = GraphBuilder::new();
            for (k, i) in config.interfaces.iter().enumerate() {
                let idx = k as u32;
                let st = links[k].clone().unwrap_or_default();
                let next = if handoff.is_some() {
                    sluice_fn::handoff::NAME
                } else if config.is_l2(k) {
                    sluice_fn::l2::INPUT
                } else {
                    sluice_fn::ethernet::NAME
                };
                match &i.driver {
                    Driver::Pg => {
                        let streams = config
                            .streams
                            .iter()
                            .filter(|(itf, _)| *itf == k)
                            .map(|(_, s)| s.share(w, config.workers))
                            .collect();
                        let pg = PacketGenerator::new(streams);
                        b.add(Box::new(
                            InterfaceInput::new(
                                &i.name,
                                idx,
                                pg,
                                counters.clone(),
                                config.burst,
                                next,
                            )
                            .with_status(st.clone())
                            .with_capture(capture.clone()),
                        ))?;
                    }
                    Driver::PcapIn { repeat, .. } => {
                        // A capture is replayed once, in order, by worker 0.
                        let packets = if w == 0 {
                            replays[k].clone().unwrap_or_default()
                        } else {
                            Arc::default()
                        };
                        let rounds = if w == 0 { *repeat } else { 1 };
                        let replay = PcapReplay::new(packets, rounds);
                        b.add(Box::new(
                            InterfaceInput::new(
                                &i.name,
                                idx,
                                replay,
                                counters.clone(),
                                config.burst,
                                next,
                            )
                            .with_status(st.clone())
                            .with_capture(capture.clone()),
                        ))?;
                    }
                    Driver::PcapOut { .. } => {
                        let writer = captures[k]
                            .clone()
                            .ok_or(sluice_graph::GraphError::BadName(i.name.clone()))?;
                        b.add(Box::new(
                            InterfaceOutput::new(
                                &i.name,
                                idx,
                                PcapCapture::new(writer),
                                counters.clone(),
                            )
                            .with_status(st.clone())
                            .with_capture(capture.clone()),
                        ))?;
                    }
                    Driver::Sink => {
                        b.add(Box::new(
                            InterfaceOutput::new(&i.name, idx, Sink::new(), counters.clone())
                                .with_status(st.clone())
                                .with_capture(capture.clone()),
                        ))?;
                    }
                    // Its output is `l2-bvi-output`, one of the L2 nodes.
                    Driver::Bvi => {}
                    Driver::AfXdp(_)
                    | Driver::AfPacket(_)
                    | Driver::Tap(_)
                    | Driver::Memif(_)
                    | Driver::VhostUser(_) => {
                        let (rx, tx) = match opened[k].as_mut() {
                            Some(o) => o.take(w, config.workers),
                            None => (Vec::new(), Vec::new()),
                        };
                        b.add(Box::new(
                            InterfaceInput::new(
                                &i.name,
                                idx,
                                Queues::new(rx),
                                counters.clone(),
                                config.burst,
                                next,
                            )
                            .with_status(st.clone())
                            .with_capture(capture.clone()),
                        ))?;
                        b.add(Box::new(
                            InterfaceOutput::new(&i.name, idx, Queues::new(tx), counters.clone())
                                .with_status(st.clone())
                                .with_capture(capture.clone()),
                        ))?;
                    }
                }
            }
            for node in router.nodes().into_iter().chain(sluice_fn::l2::nodes(&l2)) {
                b.add(node)?;
            }
            for node in features.nodes(w).map_err(DataplaneError::Features)? {
                b.add(node)?;
            }
            if let Some(h) = handoff.as_mut() {
                for node in h.nodes(w) {
                    b.add(node)?;
                }
            }
            graphs.push(b.build(w, pool.cache(batch))?);
        }
        Ok(Dataplane {
            pool,
            l2: l2.clone(),
            interfaces,
            links,
            fib: router.fib.clone(),
            memif_servers,
            if_stats,
            graphs,
            cores: config.cores.clone(),
            main_core: config.main_core,
            running,
            threads,
            capture,
        })
    }

    /// The running configuration, to change and save while it runs.
    pub fn running(&self) -> Arc<Running> {
        self.running.clone()
    }

    /// The routing tables, to change while the workers forward.
    pub fn fib(&self) -> Arc<Fib> {
        self.fib.clone()
    }

    /// Every worker's interface counters, readable while it runs.
    pub fn if_stats(&self) -> IfStats {
        self.if_stats.clone()
    }

    /// The buffer pool (to report its backing).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs until every input is done, `stop` is set, or `limit` passes.
    pub fn run(
        self,
        stop: Arc<AtomicBool>,
        limit: Option<Duration>,
    ) -> Result<Report, DataplaneError> {
        self.run_with_control(stop, limit, None, None)
    }

    /// [`Dataplane::run`], answering the control API on `control` (a
    /// bound socket and its path) and Prometheus scrapes on `metrics`
    /// while it runs.
    pub fn run_with_control(
        self,
        stop: Arc<AtomicBool>,
        limit: Option<Duration>,
        control: Option<(std::os::unix::net::UnixListener, std::path::PathBuf)>,
        metrics: Option<std::net::TcpListener>,
    ) -> Result<Report, DataplaneError> {
        let Dataplane {
            pool,
            l2,
            interfaces,
            links,
            fib,
            mut memif_servers,
            if_stats,
            graphs,
            cores,
            main_core,
            running,
            threads,
            capture,
        } = self;
        let started = Instant::now();
        let workers = Workers::spawn(graphs, &cores, stop.clone())?;
        // After the workers: a thread inherits its maker's cores, and the
        // control threads started below should share the main one's.
        if let Some(core) = main_core
            && !sluice_graph::worker::pin_current(core)
        {
            eprintln!("workers.main-core: core {core} is not available; the main thread floats");
        }
        let state = Arc::new(ControlState {
            interfaces: interfaces.clone(),
            if_stats: if_stats.clone(),
            links: links.clone(),
            stats: workers.stats().to_vec(),
            cores: workers.cores().to_vec(),
            started,
            fib,
            pool: pool.clone(),
            baselines: Default::default(),
            l2,
            running,
            threads,
            capture,
            capture_file: Default::default(),
        });
        let server =
            control.map(|(listener, path)| ControlServer::start(listener, path, state.clone()));
        let scraper = metrics.map(|l| MetricsServer::start(l, state.clone()));
        while !workers.finished() {
            if limit.is_some_and(|l| started.elapsed() >= l) {
                stop.store(true, Ordering::Relaxed);
            }
            if memif_servers.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            } else {
                // memif handshakes and reconnects; a client's messages are
                // answered within a millisecond.
                for s in &mut memif_servers {
                    s.poll(Duration::from_millis(1));
                }
            }
        }
        let seconds = workers
            .ran()
            .unwrap_or_else(|| started.elapsed())
            .as_secs_f64();
        // A capture still running when Sluice stops is not lost.
        if let Some(path) = state.capture_file.lock().ok().and_then(|mut f| f.take()) {
            let packets = state.capture.stop();
            match sluice_io::capture::write(&path, &packets) {
                Ok(()) => eprintln!(
                    "pcap trace: {} packets written to {}",
                    packets.len(),
                    path.display()
                ),
                Err(e) => eprintln!("pcap trace: {e}"),
            }
        }
        let stats: Vec<Arc<GraphStats>> = workers.stats().to_vec();
        let pinned = workers.cores().to_vec();
        drop((server, scraper));
        let panics = workers.join();
        let refs: Vec<&GraphStats> = stats.iter().map(|s| &**s).collect();
        let if_counts = interfaces
            .iter()
            .map(|i| {
                (
                    i.name.clone(),
                    if_stats.sum(i.index, |c| &c.rx_packets),
                    if_stats.sum(i.index, |c| &c.tx_packets),
                )
            })
            .collect();
        Ok(Report {
            seconds,
            packets_in: runtime::packets_in(&refs),
            packets_dropped: runtime::packets_dropped(&refs),
            runtime: runtime::show_runtime(&refs, seconds, &pinned),
            interfaces: show::interfaces(&interfaces, &if_stats, &links),
            errors: runtime::show_errors(&refs),
            rows: runtime::rows(&refs),
            if_counts,
            buffers: (pool.capacity(), pool.free_count()),
            panics,
        })
    }
}
