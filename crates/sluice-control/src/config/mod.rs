//! The TOML configuration: its schema, and its checks.
//!
//! Parsing happens in two steps. Serde reads the file into raw tables,
//! keeping the position of every value that needs a second look (syntax and
//! type errors already carry their line from the TOML parser). Then each
//! value is checked and turned into the data plane's own types; a value
//! that is wrong is reported with its key and line.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;

mod emit;
pub mod ids;
mod l2;
pub mod plan;
pub mod security;
pub use ids::IdsSettings;
pub use security::{AclConfig, Firewall, IfFeatures};
use sluice_buf::HugePages;
use sluice_io::pg::{Ipv4Range, L4, PacketSize, PortRange, StreamSpec};
use sluice_wire::MacAddr;
use toml::Spanned;

/// Most routing tables (VRFs) a configuration may use.
pub const MAX_TABLES: u32 = 1024;

/// A refused configuration.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The TOML itself, or a value of the wrong type or an unknown key.
    #[error("{0}")]
    Syntax(String),
    /// A value that is well-formed TOML but wrong.
    #[error("line {line}: `{key}`: {message}")]
    Value {
        /// 1-based line of the value.
        line: usize,
        /// The key, with its table, e.g. `route[2].prefix`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A whole, checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Buffers in the pool.
    pub buffers: u32,
    /// Huge page policy.
    pub huge_pages: HugePages,
    /// Worker threads.
    pub workers: usize,
    /// Core of each worker (may be shorter than `workers`: the rest float).
    pub cores: Vec<usize>,
    /// The core of the main (control) thread, if pinned.
    pub main_core: Option<usize>,
    /// Packets per input burst (the vector size an input node makes).
    pub burst: usize,
    /// Hand every received packet to the worker owning its flow
    /// (`[workers] handoff = true`); `workers` is filled in when built.
    pub handoff: Option<sluice_fn::handoff::HandoffConfig>,
    /// Interfaces in index order.
    pub interfaces: Vec<Interface>,
    /// Generator streams with the index of their interface.
    pub streams: Vec<(usize, StreamSpec)>,
    /// Number of routing tables (VRFs): one more than the highest used.
    pub tables: u32,
    /// Per interface, in index order: its table.
    pub interface_tables: Vec<u32>,
    /// Interface addresses: interface index, address, prefix length.
    pub addresses: Vec<(usize, IpAddr, u8)>,
    /// Routes, with interfaces as indices.
    pub routes: Vec<sluice_fn::Route>,
    /// Static neighbours: interface index, address, MAC.
    pub neighbors: Vec<(usize, IpAddr, MacAddr)>,
    /// Bridge domains.
    pub bridges: Vec<sluice_fn::BridgeDomain>,
    /// L2 cross-connects.
    pub xconnects: Vec<sluice_fn::XConnect>,
    /// Access lists, by name.
    pub acls: Vec<AclConfig>,
    /// Connection tracking (`[conntrack]`): its tables are made at start.
    pub conntrack: Option<sluice_fn::CtConfig>,
    /// Intrusion detection (`[ids]`): its rules, compiled at parse.
    pub ids: Option<IdsSettings>,
    /// Per interface, in index order: the features it runs.
    pub features: Vec<IfFeatures>,
}

/// One interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Name.
    pub name: String,
    /// What is behind it.
    pub driver: Driver,
    /// MAC address.
    pub mac: MacAddr,
    /// L3 MTU.
    pub mtu: u16,
    /// Administratively up (`state = "down"` sets it down: nothing is
    /// received or sent until it is set up).
    pub admin_up: bool,
}

/// The MAC an interface gets when the configuration gives none: a
/// locally administered address made of its index.
pub fn default_mac(index: usize) -> MacAddr {
    MacAddr([0x02, 0x5c, 0, 0, (index >> 8) as u8, index as u8])
}

/// The kinds of interface a configuration can make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// Packet generator (input only).
    Pg,
    /// Replays a capture (input only), `repeat` times.
    PcapIn {
        /// The capture.
        file: PathBuf,
        /// Rounds.
        repeat: u64,
    },
    /// Writes a capture (output only).
    PcapOut {
        /// The capture.
        file: PathBuf,
    },
    /// Frees what it is given (output only).
    Sink,
    /// A bridge's virtual interface: the bridge's port into routing. It
    /// transmits into its bridge and receives what the bridge sends it.
    Bvi,
    /// A kernel device through AF_XDP sockets.
    AfXdp(Kernel),
    /// A kernel device through AF_PACKET sockets.
    AfPacket(Kernel),
    /// A TAP device Sluice creates (or attaches to).
    Tap(Kernel),
    /// A memif interface Sluice serves (the peer connects).
    Memif(Memif),
    /// A vhost-user interface: a VM (or DPDK `net_virtio_user`) attached
    /// by its virtqueues.
    VhostUser(VhostUser),
}

/// A `vhost-user` interface: Sluice is the device, the front end (QEMU,
/// DPDK `net_virtio_user`) the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostUser {
    /// The socket file.
    pub socket: String,
    /// Sluice connects to the front end (and reconnects whenever the
    /// link drops) instead of listening (`role = "client"`).
    pub client: bool,
    /// Queue pairs offered, spread over the workers.
    pub queues: u32,
    /// Ask the guest for kicks when idle, so an idle worker can sleep;
    /// else poll.
    pub interrupt: bool,
}

/// A memif interface in the server role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memif {
    /// The socket: a file path, or `abstract:NAME`.
    pub socket: String,
    /// The interface id the client must ask for.
    pub id: u32,
    /// The secret the client must give, if any.
    pub secret: Option<String>,
    /// Queue pairs, spread over the workers.
    pub queues: u32,
    /// Ask the client for interrupts (eventfd kicks) when idle, so an idle
    /// worker can sleep; else poll.
    pub interrupt: bool,
    /// Sluice connects to a server (and owns the memory) instead of serving.
    pub client: bool,
    /// Descriptors per ring, a power of two (client: Sluice proposes it;
    /// a server takes the client's).
    pub ring_size: u32,
    /// Bytes of each buffer in the shared region (client only).
    pub buffer_size: u32,
}

/// Where a kernel-facing interface attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The kernel device (for a TAP, the one to create).
    pub device: String,
    /// The network namespace the device is in (`ip netns` name).
    pub netns: Option<String>,
    /// Queues (one socket each), spread over the workers.
    pub queues: u32,
    /// Ring entries per queue.
    pub ring_size: u32,
    /// Whether the MAC was configured (else the device's is used).
    pub mac_configured: bool,
    /// Whether the MTU was configured (else the device's is used).
    pub mtu_configured: bool,
}

impl Driver {
    /// The driver's name in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            Driver::Pg => "pg",
            Driver::PcapIn { .. } => "pcap-in",
            Driver::PcapOut { .. } => "pcap-out",
            Driver::Sink => "sink",
            Driver::Bvi => "bvi",
            Driver::AfXdp(_) => "af-xdp",
            Driver::AfPacket(_) => "af-packet",
            Driver::Tap(_) => "tap",
            Driver::Memif(_) => "memif",
            Driver::VhostUser(_) => "vhost-user",
        }
    }

    /// Whether it only receives (a generator or a replay).
    pub fn is_input(&self) -> bool {
        matches!(self, Driver::Pg | Driver::PcapIn { .. })
    }

    /// The kernel device behind it, if any.
    pub fn kernel(&self) -> Option<&Kernel> {
        match self {
            Driver::AfXdp(k) | Driver::AfPacket(k) | Driver::Tap(k) => Some(k),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    #[serde(default)]
    buffers: RawBuffers,
    #[serde(default)]
    workers: RawWorkers,
    #[serde(default)]
    interface: Vec<RawInterface>,
    #[serde(default)]
    stream: Vec<RawStream>,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    neighbor: Vec<RawNeighbor>,
    #[serde(default)]
    bridge: Vec<l2::RawBridge>,
    #[serde(default)]
    xconnect: Vec<l2::RawXConnect>,
    #[serde(default)]
    acl: Vec<security::RawAcl>,
    conntrack: Option<security::RawConntrack>,
    ids: Option<ids::RawIds>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBuffers {
    count: Option<Spanned<i64>>,
    huge_pages: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWorkers {
    count: Option<Spanned<i64>>,
    cores: Option<Spanned<Vec<i64>>>,
    main_core: Option<Spanned<i64>>,
    burst: Option<Spanned<i64>>,
    handoff: Option<Spanned<bool>>,
    handoff_ring: Option<Spanned<i64>>,
    flow_hash: Option<Spanned<String>>,
    symmetric: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawInterface {
    name: Spanned<String>,
    driver: Spanned<String>,
    mac: Option<Spanned<String>>,
    mtu: Option<Spanned<i64>>,
    file: Option<Spanned<String>>,
    repeat: Option<Spanned<i64>>,
    address: Option<Spanned<Vec<String>>>,
    table: Option<Spanned<i64>>,
    device: Option<Spanned<String>>,
    netns: Option<Spanned<String>>,
    queues: Option<Spanned<i64>>,
    ring_size: Option<Spanned<i64>>,
    socket: Option<Spanned<String>>,
    id: Option<Spanned<i64>>,
    secret: Option<Spanned<String>>,
    rx_mode: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    buffer_size: Option<Spanned<i64>>,
    state: Option<Spanned<String>>,
    acl_in: Option<Spanned<String>>,
    acl_out: Option<Spanned<String>>,
    firewall: Option<Spanned<String>>,
    ids: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrStr {
    Int(i64),
    Str(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStream {
    name: Spanned<String>,
    interface: Spanned<String>,
    count: Option<Spanned<i64>>,
    rate: Option<Spanned<f64>>,
    size: Option<Spanned<IntOrStr>>,
    src_mac: Option<Spanned<String>>,
    dst_mac: Option<Spanned<String>>,
    vlan: Option<Spanned<i64>>,
    src_ip: Spanned<String>,
    dst_ip: Spanned<String>,
    protocol: Option<Spanned<String>>,
    src_port: Option<Spanned<IntOrStr>>,
    dst_port: Option<Spanned<IntOrStr>>,
    flows: Option<Spanned<i64>>,
    ttl: Option<Spanned<i64>>,
    seed: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoute {
    prefix: Spanned<String>,
    table: Option<Spanned<i64>>,
    interface: Option<Spanned<String>>,
    via: Option<Spanned<String>>,
    via_mac: Option<Spanned<String>>,
    drop: Option<Spanned<bool>>,
    prohibit: Option<Spanned<bool>>,
    unreachable: Option<Spanned<bool>>,
    path: Option<Vec<RawPath>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPath {
    interface: Spanned<String>,
    via: Option<Spanned<String>>,
    via_mac: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNeighbor {
    interface: Spanned<String>,
    ip: Spanned<String>,
    mac: Spanned<String>,
}

/// `[workers] handoff`, `handoff-ring`, `flow-hash`, `symmetric`.
fn workers_handoff(
    c: &Checker<'_>,
    w: &RawWorkers,
) -> Result<Option<sluice_fn::handoff::HandoffConfig>, ConfigError> {
    use sluice_fn::rss::RssHash;
    let on = w.handoff.as_ref().is_some_and(|v| *v.get_ref());
    let mut h = sluice_fn::handoff::HandoffConfig::default();
    if let Some(v) = &w.handoff_ring {
        h.ring_size = c.int(v, "workers.handoff-ring", 2, 1 << 16)?;
    }
    if let Some(v) = &w.flow_hash {
        h.hash = match v.get_ref().as_str() {
            "toeplitz" => RssHash::Toeplitz,
            "fast" => RssHash::Fast,
            other => {
                return c.err(
                    v.span(),
                    "workers.flow-hash",
                    format!("`{other}`: use \"toeplitz\" or \"fast\""),
                );
            }
        };
    }
    h.symmetric = w.symmetric.as_ref().is_some_and(|v| *v.get_ref());
    let extras = [
        w.handoff_ring.as_ref().map(|v| (v.span(), "handoff-ring")),
        w.flow_hash.as_ref().map(|v| (v.span(), "flow-hash")),
        w.symmetric.as_ref().map(|v| (v.span(), "symmetric")),
    ];
    if let (false, Some((span, key))) = (on, extras.into_iter().flatten().next()) {
        return c.err(
            span,
            format!("workers.{key}"),
            "applies to handoff only: set `handoff = true` too",
        );
    }
    Ok(on.then_some(h))
}

/// Turns spans into lines and builds value errors.
struct Checker<'a> {
    src: &'a str,
}

impl Checker<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err<T>(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError::Value {
            line: self.line(span),
            key: key.into(),
            message: message.into(),
        })
    }

    fn int<T: TryFrom<i64>>(
        &self,
        v: &Spanned<i64>,
        key: &str,
        lo: i64,
        hi: i64,
    ) -> Result<T, ConfigError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return self.err(v.span(), key, format!("{x} is out of range {lo}..={hi}"));
        }
        match T::try_from(x) {
            Ok(t) => Ok(t),
            Err(_) => self.err(v.span(), key, format!("{x} is out of range")),
        }
    }

    fn parsed<T>(
        &self,
        v: &Spanned<IntOrStr>,
        key: String,
        f: fn(&IntOrStr) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        f(v.get_ref()).or_else(|m| self.err(v.span(), key, m))
    }

    fn mac(&self, v: &Spanned<String>, key: &str) -> Result<MacAddr, ConfigError> {
        MacAddr::from_str(v.get_ref()).or_else(|_| {
            self.err(
                v.span(),
                key,
                format!(
                    "`{}` is not a MAC address like 02:00:00:00:00:01",
                    v.get_ref()
                ),
            )
        })
    }
}

/// `a.b.c.d/len`, checked for host bits by the FIB, not here.
fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = s.split_once('/')?;
    let len: u8 = l.parse().ok()?;
    (len <= 32).then_some(())?;
    Some((a.parse().ok()?, len))
}

/// `a.b.c.d`, `a.b.c.d/len` (every address of the prefix) or `a-b`.
fn parse_ip_range(s: &str) -> Result<Ipv4Range, String> {
    if let Some((a, b)) = s.split_once('-') {
        let a: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
        let b: Ipv4Addr = b
            .trim()
            .parse()
            .map_err(|_| format!("`{b}` is not an IPv4 address"))?;
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a {
            return Err("the range ends before it starts".into());
        }
        let count = (b - a).checked_add(1).ok_or("the range is too large")?;
        return Ok(Ipv4Range {
            first: a.into(),
            count,
        });
    }
    if s.contains('/') {
        let (a, len) =
            parse_prefix(s).ok_or_else(|| format!("`{s}` is not a prefix like 10.0.0.0/16"))?;
        if len == 0 {
            return Err("a /0 range is too large".into());
        }
        let net = u32::from(a) & (u32::MAX << (32 - len));
        return Ok(Ipv4Range {
            first: net.into(),
            count: 1u32 << (32 - len).min(31),
        });
    }
    let a: Ipv4Addr = s
        .parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address"))?;
    Ok(Ipv4Range { first: a, count: 1 })
}

/// `n` or `a-b`.
fn parse_ports(v: &IntOrStr) -> Result<PortRange, String> {
    let (a, b) = match v {
        IntOrStr::Int(n) => (*n, *n),
        IntOrStr::Str(s) => match s.split_once('-') {
            Some((a, b)) => (
                a.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("`{a}` is not a port"))?,
                b.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("`{b}` is not a port"))?,
            ),
            None => {
                let n = s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("`{s}` is not a port"))?;
                (n, n)
            }
        },
    };
    if !(0..=65535).contains(&a) || !(0..=65535).contains(&b) || b < a {
        return Err(format!("{a}-{b} is not a port range within 0-65535"));
    }
    Ok(PortRange {
        first: a as u16,
        count: (b - a + 1) as u32,
    })
}

/// `64`, `"64-1500"` or `"imix"`.
fn parse_size(v: &IntOrStr) -> Result<PacketSize, String> {
    let n = |x: i64| u16::try_from(x).map_err(|_| format!("{x} is not a frame size"));
    match v {
        IntOrStr::Int(x) => Ok(PacketSize::Fixed(n(*x)?)),
        IntOrStr::Str(s) if s.eq_ignore_ascii_case("imix") => Ok(PacketSize::Imix),
        IntOrStr::Str(s) => {
            let (a, b) = s
                .split_once('-')
                .ok_or_else(|| format!("`{s}` is not a size: use 64, \"64-1500\" or \"imix\""))?;
            let a = a
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("`{a}` is not a number"))?;
            let b = b
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("`{b}` is not a number"))?;
            Ok(PacketSize::Range(n(a)?, n(b)?))
        }
    }
}

/// A `memif` interface's socket, id, secret, queues and receive mode.
fn memif(
    c: &Checker<'_>,
    r: &RawInterface,
    key: &dyn Fn(&str) -> String,
) -> Result<Memif, ConfigError> {
    let socket = match &r.socket {
        Some(s) if !s.get_ref().is_empty() && !s.get_ref().contains('\0') => s.get_ref().clone(),
        Some(s) => {
            return c.err(
                s.span(),
                key("socket"),
                "not a socket path or abstract:NAME",
            );
        }
        None => {
            return c.err(
                r.driver.span(),
                key("socket"),
                "a memif interface needs `socket`: a path, or abstract:NAME",
            );
        }
    };
    let secret = match &r.secret {
        Some(s) if s.get_ref().len() > 24 => {
            return c.err(
                s.span(),
                key("secret"),
                "a memif secret is at most 24 bytes",
            );
        }
        Some(s) => Some(s.get_ref().clone()),
        None => None,
    };
    let interrupt = match r.rx_mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "polling")) => false,
        Some((_, "interrupt")) => true,
        Some((m, other)) => {
            return c.err(
                m.span(),
                key("rx-mode"),
                format!("`{other}`: use \"polling\" or \"interrupt\""),
            );
        }
    };
    let client = match r.role.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "server")) => false,
        Some((_, "client")) => true,
        Some((m, other)) => {
            return c.err(
                m.span(),
                key("role"),
                format!("`{other}`: use \"server\" or \"client\""),
            );
        }
    };
    if client && interrupt {
        let span = r.rx_mode.as_ref().map(|v| v.span()).unwrap_or_default();
        return c.err(span, key("rx-mode"), "a memif client polls");
    }
    // The client owns the shared memory, so it alone sizes rings and buffers.
    let sizes = [
        ("ring-size", r.ring_size.as_ref().map(|v| v.span())),
        ("buffer-size", r.buffer_size.as_ref().map(|v| v.span())),
    ];
    if !client && let Some((k, Some(span))) = sizes.into_iter().find(|(_, s)| s.is_some()) {
        return c.err(
            span,
            key(k),
            format!("a memif server takes the client's `{k}` (set it on the client, or `role = \"client\"`)"),
        );
    }
    let ring_size = match &r.ring_size {
        Some(v) => {
            let n: u32 = c.int(v, &key("ring-size"), 2, 16384)?;
            if !n.is_power_of_two() {
                return c.err(v.span(), key("ring-size"), "a power of two (2..=16384)");
            }
            n
        }
        None => 1024,
    };
    let buffer_size = match &r.buffer_size {
        Some(v) => {
            let n: u32 = c.int(v, &key("buffer-size"), 64, 65536)?;
            if !n.is_multiple_of(64) {
                return c.err(
                    v.span(),
                    key("buffer-size"),
                    "a multiple of 64 (64..=65536)",
                );
            }
            n
        }
        None => 2048,
    };
    Ok(Memif {
        client,
        socket,
        id: match &r.id {
            Some(v) => c.int(v, &key("id"), 0, i64::from(u32::MAX))?,
            None => 0,
        },
        secret,
        queues: match &r.queues {
            Some(v) => c.int(v, &key("queues"), 1, 256)?,
            None => 1,
        },
        interrupt,
        ring_size,
        buffer_size,
    })
}

/// A `vhost-user` interface's socket, role, queues and receive mode.
fn vhost_user(
    c: &Checker<'_>,
    r: &RawInterface,
    key: &dyn Fn(&str) -> String,
) -> Result<VhostUser, ConfigError> {
    let socket = match &r.socket {
        Some(s)
            if !s.get_ref().is_empty()
                && !s.get_ref().contains('\0')
                && !s.get_ref().starts_with("abstract:")
                && s.get_ref().len() < 108 =>
        {
            s.get_ref().clone()
        }
        Some(s) => {
            return c.err(
                s.span(),
                key("socket"),
                "not a socket file path (vhost-user front ends take a path of under 108 bytes)",
            );
        }
        None => {
            return c.err(
                r.driver.span(),
                key("socket"),
                "a vhost-user interface needs `socket`: a file path",
            );
        }
    };
    let client = match r.role.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "server")) => false,
        Some((_, "client")) => true,
        Some((m, other)) => {
            return c.err(
                m.span(),
                key("role"),
                format!(
                    "`{other}`: use \"server\" (Sluice listens) or \"client\" (Sluice connects)"
                ),
            );
        }
    };
    let interrupt = match r.rx_mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "polling")) => false,
        Some((_, "interrupt")) => true,
        Some((m, other)) => {
            return c.err(
                m.span(),
                key("rx-mode"),
                format!("`{other}`: use \"polling\" or \"interrupt\""),
            );
        }
    };
    Ok(VhostUser {
        socket,
        client,
        queues: match &r.queues {
            Some(v) => c.int(v, &key("queues"), 1, 128)?,
            None => 1,
        },
        interrupt,
    })
}

/// The kernel side of an `af-xdp`, `af-packet` or `tap` interface.
fn kernel(
    c: &Checker<'_>,
    r: &RawInterface,
    name: &str,
    kind: &str,
    key: &dyn Fn(&str) -> String,
) -> Result<Kernel, ConfigError> {
    let device = match &r.device {
        Some(d) => {
            let v = d.get_ref();
            if v.is_empty() || v.len() > 15 || v.contains(['/', ' ', '\0']) {
                return c.err(
                    d.span(),
                    key("device"),
                    format!("`{v}` is not a device name (1 to 15 characters, no '/' or spaces)"),
                );
            }
            v.clone()
        }
        // A TAP is made under the interface's own name by default.
        None if kind == "tap" && name.len() <= 15 => name.to_string(),
        None => {
            return c.err(
                r.driver.span(),
                key("device"),
                format!("a {kind} interface needs `device`, the kernel device to attach to"),
            );
        }
    };
    let netns = match &r.netns {
        Some(n) if kind == "af-xdp" => {
            return c.err(
                n.span(),
                key("netns"),
                "an af-xdp interface attaches in Sluice's own namespace; move the device there",
            );
        }
        Some(n) if n.get_ref().is_empty() || n.get_ref().contains('/') => {
            return c.err(n.span(), key("netns"), "not a namespace name");
        }
        Some(n) => Some(n.get_ref().clone()),
        None => None,
    };
    let queues = match &r.queues {
        Some(v) => c.int::<u32>(v, &key("queues"), 1, 64)?,
        None => 1,
    };
    let ring_size = match &r.ring_size {
        Some(v) => {
            let n = c.int::<u32>(v, &key("ring-size"), 64, 32768)?;
            if !n.is_power_of_two() {
                return c.err(
                    v.span(),
                    key("ring-size"),
                    format!("{n} is not a power of two"),
                );
            }
            n
        }
        None => 2048,
    };
    Ok(Kernel {
        device,
        netns,
        queues,
        ring_size,
        mac_configured: r.mac.is_some(),
        mtu_configured: r.mtu.is_some(),
    })
}

/// The graph's view of `interfaces`: index, name, MAC, MTU, output node.
pub(crate) fn interface_table(interfaces: &[Interface]) -> sluice_graph::iface::Interfaces {
    let mut table = sluice_graph::iface::Interfaces::new();
    for i in interfaces {
        let output = match i.driver {
            Driver::Bvi => Some(sluice_fn::l2::BVI_OUTPUT.to_string()),
            _ => (!i.driver.is_input()).then(|| sluice_io::output_node_name(&i.name)),
        };
        table.add(&i.name, i.driver.kind(), i.mac, i.mtu, output);
    }
    table
}

impl Config {
    /// Whether interface `i` switches frames (a bridge port or the `from`
    /// of a cross-connect): its input goes to `l2-input`.
    pub fn is_l2(&self, i: usize) -> bool {
        self.bridges
            .iter()
            .flat_map(|b| &b.ports)
            .any(|p| p.interface as usize == i)
            || self.xconnects.iter().any(|x| x.from as usize == i)
    }

    /// The interface table the data plane is built on.
    pub fn interface_table(&self) -> sluice_graph::iface::Interfaces {
        interface_table(&self.interfaces)
    }

    /// Parses and checks a configuration.
    pub fn parse(src: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(src)
            .map_err(|e| ConfigError::Syntax(e.to_string().trim_end().to_string()))?;
        let c = Checker { src };

        let buffers = match &raw.buffers.count {
            Some(v) => c.int(
                v,
                "buffers.count",
                512,
                i64::from(sluice_buf::pool::MAX_BUFFERS),
            )?,
            None => 32768,
        };
        let huge_pages = match &raw.buffers.huge_pages {
            None => HugePages::Try,
            Some(v) => match v.get_ref().as_str() {
                "try" => HugePages::Try,
                "never" => HugePages::Never,
                "require" => HugePages::Require,
                other => {
                    return c.err(
                        v.span(),
                        "buffers.huge-pages",
                        format!("`{other}`: use \"try\", \"never\" or \"require\""),
                    );
                }
            },
        };
        let workers: usize = match &raw.workers.count {
            Some(v) => c.int(v, "workers.count", 1, 256)?,
            None => 1,
        };
        let cores = match &raw.workers.cores {
            None => Vec::new(),
            Some(v) => {
                let mut cores = Vec::new();
                for &k in v.get_ref() {
                    if !(0..=4095).contains(&k) {
                        return c.err(
                            v.span(),
                            "workers.cores",
                            format!("core {k} is out of range 0..=4095"),
                        );
                    }
                    if cores.contains(&(k as usize)) {
                        return c.err(
                            v.span(),
                            "workers.cores",
                            format!("core {k} is listed twice"),
                        );
                    }
                    cores.push(k as usize);
                }
                cores
            }
        };
        let main_core = match &raw.workers.main_core {
            None => None,
            Some(v) => {
                let k: usize = c.int(v, "workers.main-core", 0, 4095)?;
                if cores.contains(&k) {
                    return c.err(
                        v.span(),
                        "workers.main-core",
                        format!("core {k} is also a worker's: the control thread would take cycles from it"),
                    );
                }
                Some(k)
            }
        };
        let burst = match &raw.workers.burst {
            Some(v) => c.int(v, "workers.burst", 1, sluice_graph::FRAME_SIZE as i64)?,
            None => sluice_graph::FRAME_SIZE,
        };
        let handoff = workers_handoff(&c, &raw.workers)?;

        let mut interfaces: Vec<Interface> = Vec::new();
        let mut names = HashSet::new();
        for (i, r) in raw.interface.iter().enumerate() {
            let key = |k: &str| format!("interface[{i}].{k}");
            let name = r.name.get_ref().clone();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_./".contains(ch))
            {
                return c.err(
                    r.name.span(),
                    key("name"),
                    format!("`{name}`: use letters, digits and - _ . /"),
                );
            }
            if !names.insert(name.clone()) {
                return c.err(
                    r.name.span(),
                    key("name"),
                    format!("interface `{name}` is defined twice"),
                );
            }
            let reserved = |n: &str| sluice_fn::NODE_NAMES.contains(&n) || n == "error-drop";
            if reserved(&sluice_io::input_node_name(&name))
                || reserved(&sluice_io::output_node_name(&name))
            {
                return c.err(
                    r.name.span(),
                    key("name"),
                    format!(
                        "`{name}` would name its node like a built-in one; choose another name"
                    ),
                );
            }
            let file = |what: &str| match &r.file {
                Some(f) if !f.get_ref().is_empty() => Ok(PathBuf::from(f.get_ref())),
                _ => c.err(
                    r.driver.span(),
                    key("file"),
                    format!("a {what} interface needs `file`"),
                ),
            };
            let driver = match r.driver.get_ref().as_str() {
                "pg" => Driver::Pg,
                "sink" => Driver::Sink,
                "bvi" => Driver::Bvi,
                "pcap-in" => Driver::PcapIn {
                    file: file("pcap-in")?,
                    repeat: match &r.repeat {
                        Some(v) => c.int(v, &key("repeat"), 1, i64::MAX)?,
                        None => 1,
                    },
                },
                "pcap-out" => Driver::PcapOut {
                    file: file("pcap-out")?,
                },
                "memif" => Driver::Memif(memif(&c, r, &key)?),
                "vhost-user" => Driver::VhostUser(vhost_user(&c, r, &key)?),
                kind @ ("af-xdp" | "af-packet" | "tap") => {
                    let k = kernel(&c, r, &name, kind, &key)?;
                    match kind {
                        "af-xdp" => Driver::AfXdp(k),
                        "af-packet" => Driver::AfPacket(k),
                        _ => Driver::Tap(k),
                    }
                }
                other => {
                    return c.err(
                        r.driver.span(),
                        key("driver"),
                        format!(
                            "`{other}`: use \"pg\", \"pcap-in\", \"pcap-out\", \"sink\", \"bvi\", \"af-xdp\", \"af-packet\", \"tap\", \"memif\" or \"vhost-user\""
                        ),
                    );
                }
            };
            let memif_keys = [
                ("socket", r.socket.as_ref().map(|v| v.span())),
                ("id", r.id.as_ref().map(|v| v.span())),
                ("secret", r.secret.as_ref().map(|v| v.span())),
                ("rx-mode", r.rx_mode.as_ref().map(|v| v.span())),
                ("role", r.role.as_ref().map(|v| v.span())),
                ("buffer-size", r.buffer_size.as_ref().map(|v| v.span())),
            ];
            // vhost-user takes the socket, role and receive mode of these.
            let takes = |k: &str| match driver {
                Driver::Memif(_) => true,
                Driver::VhostUser(_) => matches!(k, "socket" | "rx-mode" | "role"),
                _ => false,
            };
            if let Some((k, Some(span))) = memif_keys
                .into_iter()
                .find(|(k, s)| s.is_some() && !takes(k))
            {
                return c.err(
                    span,
                    key(k),
                    format!("a {} interface takes no `{k}`", driver.kind()),
                );
            }
            if driver.kernel().is_none() {
                let (queues, ring_size) = match driver {
                    Driver::Memif(_) => (None, None),
                    // The guest sizes its rings.
                    Driver::VhostUser(_) => (None, r.ring_size.as_ref().map(|v| v.span())),
                    _ => (
                        r.queues.as_ref().map(|v| v.span()),
                        r.ring_size.as_ref().map(|v| v.span()),
                    ),
                };
                let stray = [
                    ("device", r.device.as_ref().map(|v| v.span())),
                    ("netns", r.netns.as_ref().map(|v| v.span())),
                    ("queues", queues),
                    ("ring-size", ring_size),
                ];
                if let Some((k, Some(span))) = stray.into_iter().find(|(_, s)| s.is_some()) {
                    return c.err(
                        span,
                        key(k),
                        format!("a {} interface takes no `{k}`", driver.kind()),
                    );
                }
            }
            if r.file.is_some() && !matches!(driver, Driver::PcapIn { .. } | Driver::PcapOut { .. })
            {
                let f = r.file.as_ref().map(|f| f.span()).unwrap_or_default();
                return c.err(
                    f,
                    key("file"),
                    format!("a {} interface takes no file", driver.kind()),
                );
            }
            if let (Some(v), false) = (&r.repeat, matches!(driver, Driver::PcapIn { .. })) {
                return c.err(v.span(), key("repeat"), "only a pcap-in interface repeats");
            }
            let mac = match &r.mac {
                Some(m) => c.mac(m, &key("mac"))?,
                None => default_mac(i),
            };
            let mtu = match &r.mtu {
                Some(v) => c.int(v, &key("mtu"), 68, 9000)?,
                None => 1500,
            };
            let admin_up = match r.state.as_ref().map(|s| (s, s.get_ref().as_str())) {
                None | Some((_, "up")) => true,
                Some((s, _)) if driver == Driver::Bvi => {
                    return c.err(
                        s.span(),
                        key("state"),
                        "a bvi interface follows its bridge: it has no state of its own",
                    );
                }
                Some((_, "down")) => false,
                Some((s, other)) => {
                    return c.err(
                        s.span(),
                        key("state"),
                        format!("`{other}`: use \"up\" or \"down\""),
                    );
                }
            };
            interfaces.push(Interface {
                name,
                driver,
                mac,
                mtu,
                admin_up,
            });
        }
        let find = |v: &Spanned<String>, key: String| -> Result<usize, ConfigError> {
            interfaces
                .iter()
                .position(|i| i.name == *v.get_ref())
                .map_or_else(
                    || {
                        c.err(
                            v.span(),
                            key,
                            format!("no interface is called `{}`", v.get_ref()),
                        )
                    },
                    Ok,
                )
        };

        let mut streams = Vec::new();
        for (i, r) in raw.stream.iter().enumerate() {
            let key = |k: &str| format!("stream[{i}].{k}");
            let itf = find(&r.interface, key("interface"))?;
            if interfaces[itf].driver != Driver::Pg {
                return c.err(
                    r.interface.span(),
                    key("interface"),
                    format!("`{}` is not a pg interface", interfaces[itf].name),
                );
            }
            let ip = |v: &Spanned<String>, k: &str| {
                parse_ip_range(v.get_ref()).or_else(|m| c.err(v.span(), key(k), m))
            };
            let spec = StreamSpec {
                name: r.name.get_ref().clone(),
                count: match &r.count {
                    Some(v) => match c.int::<u64>(v, &key("count"), 0, i64::MAX)? {
                        0 => None,
                        n => Some(n),
                    },
                    None => None,
                },
                rate_pps: match &r.rate {
                    Some(v) if !(*v.get_ref() > 0.0 && *v.get_ref() <= sluice_io::pg::MAX_RATE) => {
                        return c.err(
                            v.span(),
                            key("rate"),
                            format!("rate is packets per second, above 0 and at most {:e} (leave it out for as fast as possible)", sluice_io::pg::MAX_RATE),
                        );
                    }
                    Some(v) => Some(*v.get_ref()),
                    None => None,
                },
                size: match &r.size {
                    Some(v) => c.parsed(v, key("size"), parse_size)?,
                    None => PacketSize::Fixed(64),
                },
                src_mac: match &r.src_mac {
                    Some(m) => c.mac(m, &key("src-mac"))?,
                    None => MacAddr([0x02, 0xfe, 0, 0, 0, 1]),
                },
                dst_mac: match &r.dst_mac {
                    Some(m) => c.mac(m, &key("dst-mac"))?,
                    None => interfaces[itf].mac,
                },
                vlan: match &r.vlan {
                    Some(v) => Some(c.int(v, &key("vlan"), 1, 4094)?),
                    None => None,
                },
                src_ip: ip(&r.src_ip, "src-ip")?,
                dst_ip: ip(&r.dst_ip, "dst-ip")?,
                l4: match r
                    .protocol
                    .as_ref()
                    .map(|p| (p.get_ref().as_str(), p.span()))
                {
                    None | Some(("udp", _)) => L4::Udp,
                    Some(("tcp", _)) => L4::Tcp,
                    Some(("icmp", _)) => L4::Icmp,
                    Some((other, span)) => {
                        return c.err(
                            span,
                            key("protocol"),
                            format!("`{other}`: use \"udp\", \"tcp\" or \"icmp\""),
                        );
                    }
                },
                src_port: match &r.src_port {
                    Some(v) => c.parsed(v, key("src-port"), parse_ports)?,
                    None => PortRange {
                        first: 1024,
                        count: 64512,
                    },
                },
                dst_port: match &r.dst_port {
                    Some(v) => c.parsed(v, key("dst-port"), parse_ports)?,
                    None => PortRange {
                        first: 80,
                        count: 1,
                    },
                },
                flows: match &r.flows {
                    Some(v) => c.int(v, &key("flows"), 1, i64::from(u32::MAX))?,
                    None => 1,
                },
                ttl: match &r.ttl {
                    Some(v) => c.int(v, &key("ttl"), 0, 255)?,
                    None => 64,
                },
                seed: match &r.seed {
                    Some(v) => *v.get_ref() as u64,
                    None => 0x5eed_0000 + i as u64,
                },
            };
            // Every other field was checked above: what validate() can
            // still refuse is the size against the headers it must hold.
            if let Err(m) = spec.validate() {
                return match &r.size {
                    Some(v) => c.err(v.span(), key("size"), m),
                    None => c.err(r.name.span(), key("name"), m),
                };
            }
            streams.push((itf, spec));
        }

        // Tables and addresses of interfaces.
        let mut interface_tables = Vec::new();
        let mut addresses = Vec::new();
        let mut addrs = sluice_fn::IfAddrs::new(interfaces.len());
        for (i, r) in raw.interface.iter().enumerate() {
            let key = |k: &str| format!("interface[{i}].{k}");
            interface_tables.push(match &r.table {
                Some(v) => c.int::<u32>(v, &key("table"), 0, i64::from(MAX_TABLES - 1))?,
                None => 0,
            });
            let Some(list) = &r.address else { continue };
            if interfaces[i].driver.is_input() {
                return c.err(
                    list.span(),
                    key("address"),
                    format!(
                        "`{}` cannot transmit, so it cannot have an address",
                        interfaces[i].name
                    ),
                );
            }
            for a in list.get_ref() {
                let bad = |m: String| c.err(list.span(), key("address"), m);
                let Some((ip, len)) = a.split_once('/').and_then(|(ip, len)| {
                    Some((ip.parse::<IpAddr>().ok()?, len.parse::<u8>().ok()?))
                }) else {
                    return bad(format!(
                        "`{a}` is not an address like 10.0.0.1/24 or 2001:db8::1/64"
                    ));
                };
                if let Err(e) = addrs.add(i as u32, ip, len) {
                    return bad(e.to_string());
                }
                addresses.push((i, ip, len));
            }
        }

        let mut routes: Vec<sluice_fn::Route> = Vec::new();
        let mut seen = HashSet::new();
        for (i, r) in raw.route.iter().enumerate() {
            let key = |k: &str| format!("route[{i}].{k}");
            let prefix: sluice_fn::Prefix = match r.prefix.get_ref().parse() {
                Ok(p) => p,
                Err(e) => return c.err(r.prefix.span(), key("prefix"), e.to_string()),
            };
            let table = match &r.table {
                Some(v) => c.int::<u32>(v, &key("table"), 0, i64::from(MAX_TABLES - 1))?,
                None => 0,
            };
            if !seen.insert((table, prefix)) {
                return c.err(
                    r.prefix.span(),
                    key("prefix"),
                    format!("route {prefix} is given twice in table {table}"),
                );
            }
            let is_v4 = matches!(prefix, sluice_fn::Prefix::V4(..));
            let path = |itf: &Spanned<String>,
                        via: &Option<Spanned<String>>,
                        via_mac: &Option<Spanned<String>>,
                        k: &dyn Fn(&str) -> String|
             -> Result<sluice_fn::Path, ConfigError> {
                let index = find(itf, k("interface"))?;
                if interfaces[index].driver.is_input() {
                    return c.err(
                        itf.span(),
                        k("interface"),
                        format!("`{}` cannot transmit", itf.get_ref()),
                    );
                }
                let addr = match via {
                    Some(v) => match v.get_ref().parse::<IpAddr>() {
                        Ok(a) if a.is_ipv4() == is_v4 => Some(a),
                        _ => {
                            return c.err(
                                v.span(),
                                k("via"),
                                format!(
                                    "`{}` is not an IPv{} address",
                                    v.get_ref(),
                                    if is_v4 { 4 } else { 6 }
                                ),
                            );
                        }
                    },
                    None => None,
                };
                let mac = match via_mac {
                    Some(m) => Some(c.mac(m, &k("via-mac"))?),
                    None => None,
                };
                Ok(match (addr, mac) {
                    (None, None) => sluice_fn::Path::Connected {
                        interface: index as u32,
                    },
                    _ => sluice_fn::Path::Via {
                        interface: index as u32,
                        addr,
                        mac,
                    },
                })
            };
            let flag = |f: &Option<Spanned<bool>>| f.as_ref().is_some_and(|d| *d.get_ref());
            let kinds = [
                (flag(&r.drop), sluice_fn::Path::Drop),
                (flag(&r.prohibit), sluice_fn::Path::Prohibit),
                (flag(&r.unreachable), sluice_fn::Path::Unreachable),
            ];
            let special: Vec<_> = kinds
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, p)| *p)
                .collect();
            let paths = match (&r.interface, &r.path, special.as_slice()) {
                (Some(itf), None, []) => vec![path(itf, &r.via, &r.via_mac, &key)?],
                (None, Some(list), [])
                    if !list.is_empty() && list.len() <= sluice_fn::fib::MAX_PATHS =>
                {
                    let mut v = Vec::new();
                    for (k, p) in list.iter().enumerate() {
                        let pk = |f: &str| format!("route[{i}].path[{k}].{f}");
                        v.push(path(&p.interface, &p.via, &p.via_mac, &pk)?);
                    }
                    v
                }
                (None, None, [one]) if r.via.is_none() && r.via_mac.is_none() => vec![*one],
                _ => {
                    return c.err(
                        r.prefix.span(),
                        key("prefix"),
                        format!(
                            "a route has one of: `interface` (with `via` and/or `via-mac`, or neither for a connected subnet), 1 to {} `path` entries, or one of `drop`, `prohibit`, `unreachable` = true",
                            sluice_fn::fib::MAX_PATHS
                        ),
                    );
                }
            };
            routes.push(sluice_fn::Route {
                table,
                prefix,
                paths,
            });
        }

        let mut neighbors: Vec<(usize, IpAddr, MacAddr)> = Vec::new();
        for (i, n) in raw.neighbor.iter().enumerate() {
            let key = |k: &str| format!("neighbor[{i}].{k}");
            let index = find(&n.interface, key("interface"))?;
            let Ok(ip) = n.ip.get_ref().parse::<IpAddr>() else {
                return c.err(
                    n.ip.span(),
                    key("ip"),
                    format!("`{}` is not an IP address", n.ip.get_ref()),
                );
            };
            if neighbors.iter().any(|&(k, a, _)| (k, a) == (index, ip)) {
                return c.err(
                    n.ip.span(),
                    key("ip"),
                    format!(
                        "neighbour {ip} on `{}` is given twice",
                        n.interface.get_ref()
                    ),
                );
            }
            neighbors.push((index, ip, c.mac(&n.mac, &key("mac"))?));
        }
        let (bridges, xconnects) = l2::parse(
            &c,
            &raw.bridge,
            &raw.xconnect,
            &find,
            &Arc::new(interface_table(&interfaces)),
        )?;
        let in_l2 = |i: usize| {
            bridges
                .iter()
                .flat_map(|b| &b.ports)
                .any(|p| p.interface as usize == i)
                || xconnects.iter().any(|x| x.from as usize == i)
        };
        for (i, r) in raw.interface.iter().enumerate() {
            if let (Some(a), true) = (&r.address, in_l2(i)) {
                return c.err(
                    a.span(),
                    format!("interface[{i}].address"),
                    format!(
                        "`{}` switches frames (a bridge port or cross-connect): give the address to a bvi interface instead",
                        interfaces[i].name
                    ),
                );
            }
        }
        let acls = security::acls(&c, &raw.acl)?;
        let conntrack = match &raw.conntrack {
            Some(r) => Some(security::conntrack(&c, r)?),
            None => None,
        };
        let ids = match &raw.ids {
            Some(r) => Some(ids::ids(&c, r)?),
            None => None,
        };
        let mut features: Vec<IfFeatures> = Vec::new();
        for (i, r) in raw.interface.iter().enumerate() {
            let key = |k: &str| format!("interface[{i}].{k}");
            features.push(security::interface_features(
                &c,
                r.acl_in.as_ref(),
                r.acl_out.as_ref(),
                r.firewall.as_ref(),
                &acls,
                conntrack.is_some(),
                in_l2(i),
                &key,
            )?);
            if let Some(v) = &r.ids {
                features[i].ids = ids::interface_ids(&c, v, ids.is_some(), in_l2(i), &key)?;
            }
        }
        let mut config = Config {
            buffers,
            huge_pages,
            workers,
            cores,
            main_core,
            burst,
            handoff,
            interfaces,
            streams,
            tables: 1,
            interface_tables,
            addresses,
            routes,
            neighbors,
            bridges,
            xconnects,
            acls,
            conntrack,
            ids,
            features,
        };
        config.count_tables();
        Ok(config)
    }

    /// Sets `tables` to one more than the highest table an interface or
    /// a route uses: the tables the data plane makes.
    pub fn count_tables(&mut self) {
        self.tables = self
            .interface_tables
            .iter()
            .copied()
            .chain(self.routes.iter().map(|r| r.table))
            .max()
            .unwrap_or(0)
            + 1;
    }

    /// The index of the interface called `name`.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.name == name)
    }
}
