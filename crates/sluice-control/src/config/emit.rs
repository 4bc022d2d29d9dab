//! A [`Config`] written back as TOML, in the format [`Config::parse`]
//! reads: what `show running-config` prints and what `--state` keeps.
//!
//! The promise is the round trip: parsing what is written gives the same
//! `Config`. Values equal to what the parser would assume are left out
//! (a MAC made of the index, an MTU of 1500, table 0, ...), so the text
//! stays close to what a person would write; everything else is spelled
//! out, stream defaults included, so a later change of a default cannot
//! change a saved configuration.

use std::net::Ipv4Addr;

use serde::Serialize;
use sluice_buf::HugePages;
use sluice_fn::{Path, VlanRewrite};
use sluice_io::pg::{Ipv4Range, L4, PacketSize, PortRange};

use super::{Config, Driver, default_mac};

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Out {
    buffers: OutBuffers,
    workers: OutWorkers,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interface: Vec<OutInterface>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stream: Vec<OutStream>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    route: Vec<OutRoute>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    neighbor: Vec<OutNeighbor>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bridge: Vec<OutBridge>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    xconnect: Vec<OutXConnect>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    acl: Vec<super::security::OutAcl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conntrack: Option<super::security::OutConntrack>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<super::ids::OutIds>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutBuffers {
    count: u32,
    huge_pages: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutWorkers {
    count: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cores: Vec<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    main_core: Option<usize>,
    burst: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    handoff: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    handoff_ring: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow_hash: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    symmetric: bool,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "kebab-case")]
struct OutInterface {
    name: String,
    driver: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtu: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    address: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queues: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ring_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    socket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rx_mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    buffer_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acl_in: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acl_out: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    firewall: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<bool>,
}

/// A number, or a string for ranges and words (`"64-1500"`, `"imix"`).
#[derive(Serialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Text(String),
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutStream {
    name: String,
    interface: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<f64>,
    size: NumOrText,
    src_mac: String,
    dst_mac: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<u16>,
    src_ip: String,
    dst_ip: String,
    protocol: &'static str,
    src_port: NumOrText,
    dst_port: NumOrText,
    flows: u32,
    ttl: u8,
    /// Read back as a signed 64-bit integer, the only kind TOML has.
    seed: i64,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "kebab-case")]
struct OutRoute {
    prefix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via_mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    drop: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prohibit: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unreachable: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    path: Vec<OutPath>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutPath {
    interface: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    via_mac: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutNeighbor {
    interface: String,
    ip: String,
    mac: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutBridge {
    id: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    port: Vec<OutPort>,
    learn: bool,
    flood: bool,
    mac_capacity: u32,
    aging: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    bvi: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_mac: Vec<OutStaticMac>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutPort {
    interface: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    split_horizon: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutStaticMac {
    mac: String,
    interface: String,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct OutXConnect {
    from: String,
    to: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vlan: Option<String>,
}

/// `"pop 100"`, `"push 100"`, `"translate 100 200"`; nothing for none.
fn vlan_words(v: VlanRewrite) -> Option<String> {
    match v {
        VlanRewrite::None => None,
        VlanRewrite::Pop1 { vid } => Some(format!("pop {vid}")),
        VlanRewrite::Push1 { vid } => Some(format!("push {vid}")),
        VlanRewrite::Translate1To1 { wire, bridge } => Some(format!("translate {wire} {bridge}")),
    }
}

/// An address range as the parser reads it: one address, a prefix when
/// the range is one, else `first-last`.
fn ip_range(r: Ipv4Range) -> String {
    let first = u32::from(r.first);
    if r.count <= 1 {
        return r.first.to_string();
    }
    if r.count.is_power_of_two() && first % r.count == 0 {
        return format!("{}/{}", r.first, 32 - r.count.trailing_zeros());
    }
    let last = Ipv4Addr::from(first.saturating_add(r.count - 1));
    format!("{}-{last}", r.first)
}

fn ports(r: PortRange) -> NumOrText {
    if r.count <= 1 {
        NumOrText::Num(u64::from(r.first))
    } else {
        let last = u32::from(r.first) + r.count - 1;
        NumOrText::Text(format!("{}-{last}", r.first))
    }
}

impl Config {
    /// The configuration as TOML that [`Config::parse`] reads back into
    /// an equal `Config`.
    pub fn to_toml(&self) -> String {
        let name = |i: usize| {
            self.interfaces
                .get(i)
                .map_or_else(|| format!("if{i}"), |x| x.name.clone())
        };
        let interface = self
            .interfaces
            .iter()
            .enumerate()
            .map(|(i, itf)| self.interface_out(i, itf))
            .collect();
        let stream = self
            .streams
            .iter()
            .map(|(i, s)| OutStream {
                name: s.name.clone(),
                interface: name(*i),
                count: s.count,
                rate: s.rate_pps,
                size: match s.size {
                    PacketSize::Fixed(n) => NumOrText::Num(u64::from(n)),
                    PacketSize::Range(a, b) => NumOrText::Text(format!("{a}-{b}")),
                    PacketSize::Imix => NumOrText::Text("imix".into()),
                },
                src_mac: s.src_mac.to_string(),
                dst_mac: s.dst_mac.to_string(),
                vlan: s.vlan,
                src_ip: ip_range(s.src_ip),
                dst_ip: ip_range(s.dst_ip),
                protocol: match s.l4 {
                    L4::Udp => "udp",
                    L4::Tcp => "tcp",
                    L4::Icmp => "icmp",
                },
                src_port: ports(s.src_port),
                dst_port: ports(s.dst_port),
                flows: s.flows,
                ttl: s.ttl,
                seed: s.seed as i64,
            })
            .collect();
        let route = self
            .routes
            .iter()
            .map(|r| {
                let mut out = OutRoute {
                    prefix: r.prefix.to_string(),
                    table: (r.table != 0).then_some(r.table),
                    ..OutRoute::default()
                };
                let path = |p: &Path| match *p {
                    Path::Via {
                        interface,
                        addr,
                        mac,
                    } => Some(OutPath {
                        interface: name(interface as usize),
                        via: addr.map(|a| a.to_string()),
                        via_mac: mac.map(|m| m.to_string()),
                    }),
                    Path::Connected { interface } => Some(OutPath {
                        interface: name(interface as usize),
                        via: None,
                        via_mac: None,
                    }),
                    // Local routes come from addresses, never from a
                    // configuration's routes.
                    _ => None,
                };
                match r.paths.as_slice() {
                    [Path::Drop] => out.drop = Some(true),
                    [Path::Prohibit] => out.prohibit = Some(true),
                    [Path::Unreachable] => out.unreachable = Some(true),
                    [one] => {
                        if let Some(p) = path(one) {
                            out.interface = Some(p.interface);
                            out.via = p.via;
                            out.via_mac = p.via_mac;
                        }
                    }
                    many => out.path = many.iter().filter_map(path).collect(),
                }
                out
            })
            .collect();
        let neighbor = self
            .neighbors
            .iter()
            .map(|&(i, ip, mac)| OutNeighbor {
                interface: name(i),
                ip: ip.to_string(),
                mac: mac.to_string(),
            })
            .collect();
        let bridge = self
            .bridges
            .iter()
            .map(|b| OutBridge {
                id: b.id,
                port: b
                    .ports
                    .iter()
                    .map(|p| OutPort {
                        interface: name(p.interface as usize),
                        split_horizon: (p.split_horizon != 0).then_some(p.split_horizon),
                        vlan: vlan_words(p.vlan),
                    })
                    .collect(),
                learn: b.learn,
                flood: b.flood,
                mac_capacity: b.mac_capacity,
                aging: b.aging.as_secs(),
                bvi: b.bvi.map(|i| name(i as usize)),
                static_mac: b
                    .static_macs
                    .iter()
                    .map(|s| OutStaticMac {
                        mac: s.mac.to_string(),
                        interface: name(s.interface as usize),
                    })
                    .collect(),
            })
            .collect();
        let xconnect = self
            .xconnects
            .iter()
            .map(|x| OutXConnect {
                from: name(x.from as usize),
                to: name(x.to as usize),
                vlan: vlan_words(x.vlan),
            })
            .collect();
        let out = Out {
            buffers: OutBuffers {
                count: self.buffers,
                huge_pages: match self.huge_pages {
                    HugePages::Try => "try",
                    HugePages::Never => "never",
                    HugePages::Require => "require",
                },
            },
            workers: {
                let h = self.handoff.as_ref();
                let default = sluice_fn::handoff::HandoffConfig::default();
                OutWorkers {
                    count: self.workers,
                    cores: self.cores.clone(),
                    main_core: self.main_core,
                    burst: self.burst,
                    handoff: h.is_some(),
                    handoff_ring: h.map(|h| h.ring_size).filter(|&r| r != default.ring_size),
                    flow_hash: h.and_then(|h| match h.hash {
                        sluice_fn::rss::RssHash::Toeplitz => None,
                        sluice_fn::rss::RssHash::Fast => Some("fast"),
                    }),
                    symmetric: h.is_some_and(|h| h.symmetric),
                }
            },
            interface,
            stream,
            route,
            neighbor,
            bridge,
            xconnect,
            acl: self.acls.iter().map(super::security::acl_out).collect(),
            conntrack: self.conntrack.as_ref().map(super::security::conntrack_out),
            ids: self.ids.as_ref().map(super::ids::ids_out),
        };
        // Every field above is a string, number, boolean or table of
        // them: serialising cannot fail. Should it ever, say so in the
        // text rather than lose the configuration silently.
        toml::to_string(&out).unwrap_or_else(|e| format!("# cannot be written as TOML: {e}\n"))
    }

    fn interface_out(&self, i: usize, itf: &super::Interface) -> OutInterface {
        let kernel = itf.driver.kernel();
        let mac_given = kernel.map_or(itf.mac != default_mac(i), |k| k.mac_configured);
        let mtu_given = kernel.map_or(itf.mtu != 1500, |k| k.mtu_configured);
        let mut out = OutInterface {
            name: itf.name.clone(),
            driver: itf.driver.kind(),
            mac: mac_given.then(|| itf.mac.to_string()),
            mtu: mtu_given.then_some(itf.mtu),
            state: (!itf.admin_up).then_some("down"),
            table: self.interface_tables.get(i).copied().filter(|&t| t != 0),
            address: self
                .addresses
                .iter()
                .filter(|(k, _, _)| *k == i)
                .map(|(_, a, l)| format!("{a}/{l}"))
                .collect(),
            ..OutInterface::default()
        };
        if let Some(f) = self.features.get(i) {
            out.acl_in = f.acl_in.clone();
            out.acl_out = f.acl_out.clone();
            out.firewall = f.firewall.map(super::Firewall::as_str);
            out.ids = f.ids.then_some(true);
        }
        match &itf.driver {
            Driver::PcapIn { file, repeat } => {
                out.file = Some(file.display().to_string());
                out.repeat = (*repeat != 1).then_some(*repeat);
            }
            Driver::PcapOut { file } => out.file = Some(file.display().to_string()),
            Driver::AfXdp(k) | Driver::AfPacket(k) | Driver::Tap(k) => {
                out.device = Some(k.device.clone());
                out.netns = k.netns.clone();
                out.queues = (k.queues != 1).then_some(k.queues);
                out.ring_size = (k.ring_size != 2048).then_some(k.ring_size);
            }
            Driver::Memif(m) => {
                out.socket = Some(m.socket.clone());
                out.id = (m.id != 0).then_some(m.id);
                out.secret = m.secret.clone();
                out.queues = (m.queues != 1).then_some(m.queues);
                out.rx_mode = m.interrupt.then_some("interrupt");
                out.role = m.client.then_some("client");
                out.ring_size = (m.ring_size != 1024).then_some(m.ring_size);
                out.buffer_size = (m.buffer_size != 2048).then_some(m.buffer_size);
            }
            Driver::VhostUser(v) => {
                out.socket = Some(v.socket.clone());
                out.role = v.client.then_some("client");
                out.queues = (v.queues != 1).then_some(v.queues);
                out.rx_mode = v.interrupt.then_some("interrupt");
            }
            Driver::Pg | Driver::Sink | Driver::Bvi => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `src`, writes it, parses that: the same configuration.
    fn round_trip(src: &str) -> String {
        let first = Config::parse(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let text = first.to_toml();
        let second = Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(first, second, "round trip changed it:\n{text}");
        assert_eq!(second.to_toml(), text, "writing is stable");
        text
    }

    #[test]
    fn the_demo_round_trips() {
        round_trip(crate::DEMO_CONFIG);
    }

    #[test]
    fn every_kind_of_object_round_trips() {
        let text = round_trip(
            r#"
[buffers]
count = 4096
huge-pages = "never"
[workers]
count = 2
cores = [3, 1]
main-core = 0
handoff = true
handoff-ring = 1024
flow-hash = "fast"
symmetric = true
burst = 64

[[interface]]
name = "pg0"
driver = "pg"
mac = "02:00:00:00:00:aa"
state = "down"
[[interface]]
name = "in.pcap"
driver = "pcap-in"
file = "/tmp/in file \"quoted\".pcap"
repeat = 3
[[interface]]
name = "out"
driver = "pcap-out"
file = "out.pcap"
mtu = 9000
address = ["10.0.0.254/24", "2001:db8::fe/64", "10.0.1.254/24"]
table = 3
[[interface]]
name = "x0"
driver = "af-xdp"
device = "veth0"
queues = 2
ring-size = 1024
mtu = 1500
[[interface]]
name = "p0"
driver = "af-packet"
device = "veth1"
netns = "blue"
mac = "02:00:00:00:00:02"
[[interface]]
name = "tap0"
driver = "tap"
[[interface]]
name = "m0"
driver = "memif"
socket = "abstract:sl"
id = 7
secret = "s3cret"
queues = 2
rx-mode = "interrupt"
[[interface]]
name = "m1"
driver = "memif"
socket = "/run/m1.sock"
role = "client"
queues = 2
ring-size = 256
buffer-size = 1024
[[interface]]
name = "vm0"
driver = "vhost-user"
socket = "/run/vm0.sock"
role = "client"
queues = 2
rx-mode = "interrupt"
[[interface]]
name = "vm1"
driver = "vhost-user"
socket = "/run/vm1.sock"
[[interface]]
name = "s0"
driver = "sink"
address = ["10.5.0.1/16"]
[[interface]]
name = "bvi0"
driver = "bvi"
address = ["10.7.0.1/24"]

[[stream]]
name = "a"
interface = "pg0"
count = 1000
rate = 12345.5
size = "imix"
vlan = 10
src-ip = "10.0.0.1-10.0.0.9"
dst-ip = "10.9.0.0/24"
protocol = "tcp"
src-port = "1000-2000"
dst-port = 443
flows = 99
ttl = 3
seed = -5
[[stream]]
name = "b"
interface = "pg0"
size = "64-128"
src-ip = "10.0.0.1"
dst-ip = "10.8.0.0/16"
protocol = "icmp"

[[route]]
prefix = "10.9.0.0/16"
interface = "s0"
via = "10.5.0.9"
[[route]]
prefix = "10.10.0.0/16"
table = 3
interface = "s0"
via-mac = "02:00:00:00:00:09"
[[route]]
prefix = "2001:db8:9::/48"
path = [{ interface = "s0", via-mac = "02:00:00:00:00:01" }, { interface = "out", via = "2001:db8::9" }]
[[route]]
prefix = "10.11.0.0/16"
drop = true
[[route]]
prefix = "10.12.0.0/16"
prohibit = true
[[route]]
prefix = "0.0.0.0/0"
unreachable = true
[[route]]
prefix = "10.13.0.0/16"
interface = "s0"

[[neighbor]]
interface = "s0"
ip = "10.5.0.9"
mac = "02:00:00:00:00:99"

[[bridge]]
id = 5
port = [{ interface = "tap0", split-horizon = 2, vlan = "pop 100" }, { interface = "p0", vlan = "translate 10 20" }]
learn = false
flood = false
mac-capacity = 128
aging = 0
bvi = "bvi0"
static-mac = [{ mac = "02:00:00:00:00:42", interface = "tap0" }]

[[xconnect]]
from = "x0"
to = "m0"
vlan = "push 7"
"#,
        );
        assert!(text.contains("state = \"down\""), "{text}");
        assert!(text.contains("dst-ip = \"10.9.0.0/24\""), "{text}");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn interface() -> impl Strategy<Value = String> {
            (
                prop_oneof![4 => Just("sink"), 1 => Just("bvi"), 1 => Just("pg"), 1 => Just("tap")],
                proptest::option::of(68u16..9001),
                proptest::option::of(0u32..4),
                any::<bool>(),
                proptest::collection::vec((1u8..224, 0u8..255, 1u8..31), 0..3),
            )
                .prop_map(|(driver, mtu, table, down, addrs)| {
                    let mut s = format!("driver = \"{driver}\"\n");
                    if let Some(m) = mtu {
                        s += &format!("mtu = {m}\n");
                    }
                    if let Some(t) = table {
                        s += &format!("table = {t}\n");
                    }
                    if down && driver != "bvi" {
                        s += "state = \"down\"\n";
                    }
                    if driver != "pg" && !addrs.is_empty() {
                        let list: Vec<String> = addrs
                            .iter()
                            .map(|(a, b, l)| format!("\"{a}.{b}.0.1/{l}\""))
                            .collect();
                        s += &format!("address = [{}]\n", list.join(", "));
                    }
                    s
                })
        }

        fn route(n: usize) -> impl Strategy<Value = String> {
            (
                any::<u32>(),
                0u8..=32,
                0u32..3,
                0..n,
                0u8..6,
                any::<[u8; 2]>(),
            )
                .prop_map(|(a, len, table, itf, kind, m)| {
                    let net = std::net::Ipv4Addr::from(if len == 0 {
                        0
                    } else {
                        a & (u32::MAX << (32 - len))
                    });
                    let mut s = format!("prefix = \"{net}/{len}\"\ntable = {table}\n");
                    let mac = format!("02:00:00:00:{:02x}:{:02x}", m[0], m[1]);
                    s += &match kind {
                        0 => "drop = true\n".to_string(),
                        1 => "unreachable = true\n".to_string(),
                        2 => format!("interface = \"if{itf}\"\n"),
                        3 => format!("interface = \"if{itf}\"\nvia-mac = \"{mac}\"\n"),
                        4 => format!("interface = \"if{itf}\"\nvia = \"10.0.0.{}\"\n", m[0]),
                        _ => format!(
                            "path = [{{ interface = \"if{itf}\", via-mac = \"{mac}\" }}, {{ interface = \"if{itf}\", via = \"10.1.0.1\" }}]\n"
                        ),
                    };
                    s
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
            /// Whatever configuration parses comes back the same from
            /// its own text.
            #[test]
            fn parsed_configurations_round_trip(
                itfs in proptest::collection::vec(interface(), 4..6),
                routes in proptest::collection::vec(route(4), 0..8),
                neighbors in proptest::collection::vec((0usize..4, any::<u8>(), any::<u8>()), 0..4),
            ) {
                let mut src = String::new();
                for (i, itf) in itfs.iter().enumerate() {
                    src += &format!("[[interface]]\nname = \"if{i}\"\n{itf}\n");
                }
                for r in &routes {
                    src += &format!("[[route]]\n{r}\n");
                }
                for (i, a, m) in &neighbors {
                    src += &format!(
                        "[[neighbor]]\ninterface = \"if{i}\"\nip = \"10.0.0.{a}\"\nmac = \"02:00:00:00:00:{m:02x}\"\n"
                    );
                }
                let Ok(first) = Config::parse(&src) else {
                    return Ok(());
                };
                let text = first.to_toml();
                let second = Config::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(first, second, "{}", text);
            }
        }
    }
}
