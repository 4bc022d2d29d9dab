//! The configuration parser: the demo, the defaults of a minimal file, and a
//! bad value of every kind refused with its key and its 1-based line.
//!
//! Every source below starts on line 1 right after its opening quote, so
//! the line of a value is its line in the literal.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use sluice_buf::HugePages;
use sluice_control::DEMO_CONFIG;
use sluice_control::config::{Config, ConfigError, Driver};
use sluice_fn::{Path, Prefix};
use sluice_io::pg::{Ipv4Range, L4, PacketSize, PortRange};
use sluice_wire::MacAddr;

fn mac(s: &str) -> MacAddr {
    s.parse().expect("a MAC address in the test")
}

fn parse_ok(src: &str) -> Config {
    match Config::parse(src) {
        Ok(c) => c,
        Err(e) => panic!("expected the configuration to parse, got: {e}\n--- source ---\n{src}"),
    }
}

/// Parses `src`, which must fail with a value error at `line` naming `key`;
/// also checks the message reads `line N: \`key\`: …`. Returns the message.
#[track_caller]
fn refused(src: &str, line: usize, key: &str) -> String {
    let err = match Config::parse(src) {
        Ok(_) => panic!(
            "expected `{key}` on line {line} to be refused, but it parsed\n--- source ---\n{src}"
        ),
        Err(e) => e,
    };
    let text = err.to_string();
    match err {
        ConfigError::Value {
            line: got_line,
            key: got_key,
            message,
        } => {
            assert_eq!(
                (got_line, got_key.as_str()),
                (line, key),
                "wrong line or key (message: {message:?})\n--- source ---\n{src}"
            );
            let prefix = format!("line {line}: `{key}`: ");
            assert!(
                text.starts_with(&prefix),
                "`{text}` does not start with `{prefix}`"
            );
            assert!(!message.trim().is_empty(), "empty message for `{key}`");
            message
        }
        ConfigError::Syntax(m) => {
            panic!("expected a value error for `{key}` on line {line}, got a syntax error: {m}")
        }
    }
}

/// Parses `src`, which must fail with a syntax error mentioning `line N`.
#[track_caller]
fn syntax(src: &str, line: usize) -> String {
    match Config::parse(src) {
        Ok(_) => panic!("expected a syntax error, but it parsed\n--- source ---\n{src}"),
        Err(ConfigError::Syntax(m)) => {
            assert!(
                m.contains(&format!("line {line}")),
                "syntax error does not mention line {line}: {m}"
            );
            m
        }
        Err(e) => panic!("expected a syntax error, got a value error: {e}"),
    }
}

#[track_caller]
fn assert_contains(message: &str, needle: &str) {
    assert!(
        message.contains(needle),
        "message {message:?} does not mention {needle:?}"
    );
}

// ---------------------------------------------------------------------------
// Good configurations
// ---------------------------------------------------------------------------

#[test]
fn demo_parses() {
    let c = parse_ok(DEMO_CONFIG);
    assert_eq!(c.buffers, 32768);
    assert_eq!(c.workers, 1);
    assert!(c.cores.is_empty());
    assert_eq!(c.burst, 256);

    let names: Vec<&str> = c.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["pg0", "sink0", "sink1"]);
    assert_eq!(c.interfaces[0].driver, Driver::Pg);
    assert_eq!(c.interfaces[1].driver, Driver::Sink);
    assert_eq!(c.interfaces[2].driver, Driver::Sink);
    assert_eq!(c.interfaces[0].mac, mac("02:5c:00:00:00:01"));
    assert_eq!(c.interfaces[1].mac, mac("02:5c:00:00:01:01"));
    assert_eq!(c.interfaces[2].mac, mac("02:5c:00:00:02:01"));
    assert!(c.interfaces.iter().all(|i| i.mtu == 1500));

    assert_eq!(c.streams.len(), 4);
    let names: Vec<&str> = c.streams.iter().map(|(_, s)| s.name.as_str()).collect();
    assert_eq!(names, ["bulk", "tcp", "ttl-expiring", "unrouted"]);
    assert!(c.streams.iter().all(|(itf, _)| *itf == 0));
    let bulk = &c.streams[0].1;
    assert_eq!(bulk.count, Some(30_000_000));
    assert_eq!(bulk.size, PacketSize::Imix);
    assert_eq!(bulk.flows, 10_000);
    assert_eq!(bulk.l4, L4::Udp);
    assert_eq!(
        bulk.src_ip,
        Ipv4Range {
            first: Ipv4Addr::new(10, 0, 0, 0),
            count: 1 << 16
        }
    );
    assert_eq!(
        bulk.dst_ip,
        Ipv4Range {
            first: Ipv4Addr::new(10, 1, 0, 0),
            count: 2 << 16
        }
    );
    assert_eq!(
        bulk.src_port,
        PortRange {
            first: 1024,
            count: 64512
        }
    );
    assert_eq!(
        bulk.dst_port,
        PortRange {
            first: 1,
            count: 1024
        }
    );
    let tcp = &c.streams[1].1;
    assert_eq!(tcp.l4, L4::Tcp);
    assert_eq!(tcp.size, PacketSize::Range(64, 1500));
    assert_eq!(
        tcp.dst_port,
        PortRange {
            first: 443,
            count: 1
        }
    );
    assert_eq!(c.streams[2].1.ttl, 1);
    assert_eq!(
        c.streams[3].1.dst_ip,
        Ipv4Range {
            first: Ipv4Addr::new(192, 0, 2, 0),
            count: 256
        }
    );
    // Packets are addressed to the forwarder's interface.
    assert!(
        c.streams
            .iter()
            .all(|(_, s)| s.dst_mac == c.interfaces[0].mac)
    );

    assert_eq!(c.routes.len(), 4);
    assert_eq!(c.routes[0].prefix, prefix("10.1.0.0/16"));
    assert_eq!(c.routes[0].paths, via(1, "02:00:00:00:01:fe"));
    assert_eq!(c.routes[1].paths, via(2, "02:00:00:00:02:fe"));
    assert_eq!(c.routes[2].prefix, prefix("10.2.128.0/17"));
    let drops: Vec<_> = c
        .routes
        .iter()
        .filter(|r| r.paths == [Path::Drop])
        .collect();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].prefix, prefix("10.2.255.0/24"));
    assert_eq!(c.routes[3].paths, [Path::Drop]);
}

fn prefix(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn via(interface: u32, m: &str) -> Vec<Path> {
    vec![Path::Via {
        interface,
        addr: None,
        mac: Some(mac(m)),
    }]
}

const MINIMAL: &str = r#"[[interface]]
name = "pg0"
driver = "pg"
mac = "02:00:00:00:00:01"

[[interface]]
name = "sink0"
driver = "sink"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"

[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:01:fe"
"#;

#[test]
fn minimal_config_has_the_documented_defaults() {
    let c = parse_ok(MINIMAL);
    assert_eq!(c.buffers, 32768);
    assert_eq!(c.huge_pages, HugePages::Try);
    assert_eq!(c.workers, 1);
    assert!(c.cores.is_empty());
    assert_eq!(c.burst, 256);

    assert_eq!(c.interfaces.len(), 2);
    assert_eq!(c.interfaces[0].name, "pg0");
    assert_eq!(c.interfaces[0].driver, Driver::Pg);
    assert_eq!(c.interfaces[0].mac, mac("02:00:00:00:00:01"));
    assert_eq!(c.interfaces[0].mtu, 1500);
    assert_eq!(c.interfaces[1].driver, Driver::Sink);
    assert_eq!(c.interfaces[1].mtu, 1500);
    // A MAC left out is made from the interface's index.
    assert_eq!(c.interfaces[1].mac, mac("02:5c:00:00:00:01"));

    assert_eq!(c.streams.len(), 1);
    let (itf, s) = &c.streams[0];
    assert_eq!(*itf, 0);
    assert_eq!(s.name, "s");
    assert_eq!(s.count, None);
    assert_eq!(s.rate_pps, None);
    assert_eq!(s.size, PacketSize::Fixed(64));
    assert_eq!(s.l4, L4::Udp);
    assert_eq!(s.flows, 1);
    assert_eq!(s.ttl, 64);
    assert_eq!(s.vlan, None);
    assert_eq!(s.dst_mac, c.interfaces[0].mac);
    assert_eq!(
        s.src_ip,
        Ipv4Range {
            first: Ipv4Addr::new(10, 0, 0, 1),
            count: 1
        }
    );
    assert_eq!(
        s.dst_ip,
        Ipv4Range {
            first: Ipv4Addr::new(10, 1, 0, 1),
            count: 1
        }
    );
    assert_eq!(
        s.src_port,
        PortRange {
            first: 1024,
            count: 64512
        }
    );
    assert_eq!(
        s.dst_port,
        PortRange {
            first: 80,
            count: 1
        }
    );

    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].prefix, prefix("10.1.0.0/16"));
    assert_eq!(c.routes[0].paths, via(1, "02:00:00:00:01:fe"));
}

#[test]
fn every_setting_given_explicitly_parses() {
    let c = parse_ok(
        r#"[buffers]
count = 4096
huge-pages = "never"

[workers]
count = 2
cores = [2, 3]
burst = 32

[[interface]]
name = "in0"
driver = "pcap-in"
file = "in.pcap"
repeat = 3

[[interface]]
name = "pg0"
driver = "pg"
mtu = 9000

[[interface]]
name = "out0"
driver = "pcap-out"
file = "out.pcap"
mtu = 68

[[stream]]
name = "s"
interface = "pg0"
count = 5
rate = 1000
size = "60-200"
src-mac = "02:00:00:00:00:aa"
dst-mac = "02:00:00:00:00:bb"
vlan = 4094
src-ip = "10.0.0.1-10.0.0.4"
dst-ip = "10.1.0.0/30"
protocol = "icmp"
src-port = "7-8"
dst-port = "9"
flows = 4
ttl = 0
seed = 42

[[route]]
prefix = "0.0.0.0/0"
interface = "out0"
via-mac = "02:00:00:00:01:fe"
drop = false
"#,
    );
    assert_eq!(c.buffers, 4096);
    assert_eq!(c.huge_pages, HugePages::Never);
    assert_eq!(c.workers, 2);
    assert_eq!(c.cores, [2, 3]);
    assert_eq!(c.burst, 32);
    assert_eq!(
        c.interfaces[0].driver,
        Driver::PcapIn {
            file: PathBuf::from("in.pcap"),
            repeat: 3
        }
    );
    assert_eq!(c.interfaces[1].mtu, 9000);
    assert_eq!(
        c.interfaces[2].driver,
        Driver::PcapOut {
            file: PathBuf::from("out.pcap")
        }
    );
    assert_eq!(c.interfaces[2].mtu, 68);
    let (itf, s) = &c.streams[0];
    assert_eq!(*itf, 1);
    assert_eq!(s.count, Some(5));
    assert_eq!(s.rate_pps, Some(1000.0));
    assert_eq!(s.size, PacketSize::Range(60, 200));
    assert_eq!(s.src_mac, mac("02:00:00:00:00:aa"));
    assert_eq!(s.dst_mac, mac("02:00:00:00:00:bb"));
    assert_eq!(s.vlan, Some(4094));
    assert_eq!(
        s.src_ip,
        Ipv4Range {
            first: Ipv4Addr::new(10, 0, 0, 1),
            count: 4
        }
    );
    assert_eq!(
        s.dst_ip,
        Ipv4Range {
            first: Ipv4Addr::new(10, 1, 0, 0),
            count: 4
        }
    );
    assert_eq!(s.l4, L4::Icmp);
    assert_eq!(s.src_port, PortRange { first: 7, count: 2 });
    assert_eq!(s.dst_port, PortRange { first: 9, count: 1 });
    assert_eq!(s.flows, 4);
    assert_eq!(s.ttl, 0);
    assert_eq!(s.seed, 42);
    assert_eq!(c.routes[0].prefix, prefix("0.0.0.0/0"));
    assert_eq!(c.routes[0].paths, via(2, "02:00:00:00:01:fe"));
}

#[test]
fn huge_pages_words() {
    for (word, want) in [
        ("try", HugePages::Try),
        ("never", HugePages::Never),
        ("require", HugePages::Require),
    ] {
        let c = parse_ok(&format!("[buffers]\nhuge-pages = \"{word}\"\n"));
        assert_eq!(c.huge_pages, want, "{word}");
    }
}

// ---------------------------------------------------------------------------
// [buffers] and [workers]
// ---------------------------------------------------------------------------

#[test]
fn buffers_count_out_of_range() {
    refused("[buffers]\ncount = 511\n", 2, "buffers.count");
    refused("[buffers]\ncount = 0\n", 2, "buffers.count");
    refused("[buffers]\ncount = -1\n", 2, "buffers.count");
    let m = refused(
        "# pool\n\n[buffers]\ncount = 16777217\n",
        4,
        "buffers.count",
    );
    assert_contains(&m, "16777217");
    // The bounds themselves are fine.
    assert_eq!(parse_ok("[buffers]\ncount = 512\n").buffers, 512);
    assert_eq!(parse_ok("[buffers]\ncount = 16777216\n").buffers, 1 << 24);
}

#[test]
fn huge_pages_unknown_word() {
    let m = refused(
        "[buffers]\ncount = 1024\nhuge-pages = \"always\"\n",
        3,
        "buffers.huge-pages",
    );
    assert_contains(&m, "always");
}

#[test]
fn workers_count_zero() {
    refused("[workers]\ncount = 0\n", 2, "workers.count");
    refused("[workers]\ncount = 257\n", 2, "workers.count");
}

#[test]
fn workers_cores_duplicate() {
    let m = refused(
        "[workers]\ncount = 3\ncores = [1, 2, 1]\n",
        3,
        "workers.cores",
    );
    assert_contains(&m, "twice");
}

#[test]
fn workers_cores_out_of_range() {
    refused("[workers]\ncores = [0, -1]\n", 2, "workers.cores");
    refused("[workers]\ncores = [4096]\n", 2, "workers.cores");
}

#[test]
fn workers_burst_out_of_range() {
    refused("[workers]\nburst = 0\n", 2, "workers.burst");
    refused("[workers]\ncount = 1\nburst = 300\n", 3, "workers.burst");
    assert_eq!(parse_ok("[workers]\nburst = 1\n").burst, 1);
    assert_eq!(parse_ok("[workers]\nburst = 256\n").burst, 256);
}

// ---------------------------------------------------------------------------
// [[interface]]
// ---------------------------------------------------------------------------

#[test]
fn interface_bad_name() {
    let m = refused(
        r#"[[interface]]
name = "pg 0"
driver = "pg"
"#,
        2,
        "interface[0].name",
    );
    assert_contains(&m, "pg 0");
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = ""
driver = "sink"
"#,
        6,
        "interface[1].name",
    );
}

#[test]
fn interface_duplicate_name() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "pg0"
driver = "sink"
"#,
        6,
        "interface[1].name",
    );
    assert_contains(&m, "twice");
}

#[test]
fn interface_unknown_driver() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "eth0"
driver = "vhost-user-ng"
"#,
        7,
        "interface[1].driver",
    );
    assert_contains(&m, "af-packet");
}

#[test]
fn interface_bad_mac() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"
mac = "02:00:00:00:00"
"#,
        4,
        "interface[0].mac",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "sink0"
mac = "zz:00:00:00:00:01"
driver = "sink"
"#,
        7,
        "interface[1].mac",
    );
}

#[test]
fn interface_mtu_out_of_range() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"
mtu = 20
"#,
        4,
        "interface[0].mtu",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"
mtu = 9001
"#,
        4,
        "interface[0].mtu",
    );
}

#[test]
fn pcap_in_without_file() {
    // There is no `file` line to point at, so the driver's line is named.
    let m = refused(
        r#"[[interface]]
name = "in0"
driver = "pcap-in"
"#,
        3,
        "interface[0].file",
    );
    assert_contains(&m, "file");
    refused(
        r#"[[interface]]
name = "in0"
driver = "pcap-in"
file = ""
"#,
        3,
        "interface[0].file",
    );
}

#[test]
fn pcap_out_without_file() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "out0"
driver = "pcap-out"
mtu = 1500
"#,
        7,
        "interface[1].file",
    );
}

#[test]
fn file_on_a_sink() {
    let m = refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"
file = "out.pcap"
"#,
        4,
        "interface[0].file",
    );
    assert_contains(&m, "sink");
    refused(
        r#"[[interface]]
file = "in.pcap"
name = "pg0"
driver = "pg"
"#,
        2,
        "interface[0].file",
    );
}

#[test]
fn repeat_on_a_non_pcap_in() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"
repeat = 2
"#,
        4,
        "interface[0].repeat",
    );
    refused(
        r#"[[interface]]
name = "out0"
driver = "pcap-out"
file = "out.pcap"
repeat = 2
"#,
        5,
        "interface[0].repeat",
    );
}

#[test]
fn pcap_in_repeat_zero() {
    refused(
        r#"[[interface]]
name = "in0"
driver = "pcap-in"
file = "in.pcap"
repeat = 0
"#,
        5,
        "interface[0].repeat",
    );
}

// ---------------------------------------------------------------------------
// [[stream]]
// ---------------------------------------------------------------------------

#[test]
fn stream_on_unknown_interface() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg1"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        7,
        "stream[0].interface",
    );
    assert_contains(&m, "pg1");
}

#[test]
fn stream_on_a_sink_interface() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "sink0"
driver = "sink"

[[stream]]
name = "ok"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"

[[stream]]
name = "s"
interface = "sink0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        17,
        "stream[1].interface",
    );
}

#[test]
fn stream_on_a_pcap_in_interface() {
    refused(
        r#"[[interface]]
name = "in0"
driver = "pcap-in"
file = "in.pcap"

[[stream]]
name = "s"
interface = "in0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].interface",
    );
}

#[test]
fn stream_bad_size_string() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
size = "big"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].size",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = "64-x"
"#,
        10,
        "stream[0].size",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = -1
"#,
        10,
        "stream[0].size",
    );
}

#[test]
fn stream_size_below_headers() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
size = 20
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].size",
    );
    assert_contains(&m, "20");
}

#[test]
fn stream_size_below_tcp_and_vlan_headers() {
    // 14 + 4 + 20 + 20 = 58 bytes of headers.
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
protocol = "tcp"
vlan = 10
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = "57-100"
"#,
        12,
        "stream[0].size",
    );
}

#[test]
fn stream_size_above_largest_frame() {
    // Past u16: refused by the size parser itself.
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = 70000
"#,
        10,
        "stream[0].size",
    );
    // Within u16 but above one buffer: refused by the stream check.
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = 2049
"#,
        10,
        "stream[0].size",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = "64-9000"
"#,
        10,
        "stream[0].size",
    );
}

#[test]
fn stream_size_range_empty() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = "200-100"
"#,
        10,
        "stream[0].size",
    );
}

#[test]
fn stream_size_bounds_are_accepted() {
    let c = parse_ok(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
size = "42-2048"
"#,
    );
    assert_eq!(c.streams[0].1.size, PacketSize::Range(42, 2048));
}

#[test]
fn stream_bad_ip() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.0.0.300"
"#,
        9,
        "stream[0].dst-ip",
    );
    assert_contains(&m, "10.0.0.300");
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "banana"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].src-ip",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.0/33"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].src-ip",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "0.0.0.0/0"
"#,
        9,
        "stream[0].dst-ip",
    );
}

#[test]
fn stream_ip_range_backwards() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.9-10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].src-ip",
    );
    assert_contains(&m, "before");
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.0.0.1-10.0.0.256"
"#,
        9,
        "stream[0].dst-ip",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "0.0.0.0-255.255.255.255"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].src-ip",
    );
}

#[test]
fn stream_bad_port_range() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
dst-port = "70000"
"#,
        10,
        "stream[0].dst-port",
    );
    assert_contains(&m, "70000");
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-port = "90-80"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].src-port",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
dst-port = 65536
"#,
        10,
        "stream[0].dst-port",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
src-port = "http"
"#,
        10,
        "stream[0].src-port",
    );
}

#[test]
fn stream_unknown_protocol() {
    let m = refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
protocol = "sctp"
"#,
        10,
        "stream[0].protocol",
    );
    assert_contains(&m, "sctp");
}

#[test]
fn stream_vlan_out_of_range() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
vlan = 4095
"#,
        10,
        "stream[0].vlan",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
vlan = 0
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].vlan",
    );
}

#[test]
fn stream_ttl_out_of_range() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
ttl = 256
"#,
        10,
        "stream[0].ttl",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
ttl = -1
"#,
        10,
        "stream[0].ttl",
    );
}

#[test]
fn stream_flows_zero() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
flows = 0
"#,
        10,
        "stream[0].flows",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
flows = 4294967296
"#,
        10,
        "stream[0].flows",
    );
}

#[test]
fn stream_rate_zero_or_negative() {
    for rate in ["0", "0.0", "-1", "-2.5", "inf", "nan"] {
        let src = format!(
            r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
rate = {rate}
"#
        );
        refused(&src, 10, "stream[0].rate");
    }
    let c = parse_ok(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
rate = 0.5
"#,
    );
    assert_eq!(c.streams[0].1.rate_pps, Some(0.5));
}

#[test]
fn stream_count_negative() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
count = -5
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].count",
    );
}

#[test]
fn stream_bad_macs() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
src-mac = "nope"
"#,
        10,
        "stream[0].src-mac",
    );
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
dst-mac = "02:00:00:00:00:01:02"
src-ip = "10.0.0.1"
dst-ip = "10.1.0.1"
"#,
        8,
        "stream[0].dst-mac",
    );
}

// ---------------------------------------------------------------------------
// [[route]]
// ---------------------------------------------------------------------------

#[test]
fn route_bad_prefix() {
    for prefix in [
        "10.0.0.0/33",
        "banana",
        "10.0.0.0",
        "10.0.0/8",
        "10.0.0.0/-1",
    ] {
        let src = format!(
            r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "{prefix}"
drop = true
"#
        );
        let m = refused(&src, 6, "route[0].prefix");
        assert_contains(&m, prefix);
    }
}

#[test]
fn route_host_bits_set() {
    let m = refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.0.0.0/8"
drop = true

[[route]]
prefix = "10.1.0.1/16"
interface = "sink0"
via-mac = "02:00:00:00:01:fe"
"#,
        10,
        "route[1].prefix",
    );
    assert_contains(&m, "host bits");
}

#[test]
fn route_duplicate_prefix() {
    let m = refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:01:fe"

[[route]]
prefix = "10.2.0.0/16"
drop = true

[[route]]
prefix = "10.1.0.0/16"
drop = true
"#,
        15,
        "route[2].prefix",
    );
    assert_contains(&m, "10.1.0.0/16");
}

#[test]
fn route_to_unknown_interface() {
    let m = refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
interface = "sink9"
via-mac = "02:00:00:00:01:fe"
"#,
        7,
        "route[0].interface",
    );
    assert_contains(&m, "sink9");
}

#[test]
fn route_out_of_an_input_interface() {
    refused(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
interface = "pg0"
via-mac = "02:00:00:00:01:fe"
"#,
        11,
        "route[0].interface",
    );
    refused(
        r#"[[interface]]
name = "in0"
driver = "pcap-in"
file = "in.pcap"

[[route]]
prefix = "10.1.0.0/16"
interface = "in0"
via-mac = "02:00:00:00:01:fe"
"#,
        8,
        "route[0].interface",
    );
}

#[test]
fn route_bad_via_mac() {
    refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:01"
"#,
        8,
        "route[0].via-mac",
    );
}

#[test]
fn route_with_neither_drop_nor_interface() {
    refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
"#,
        6,
        "route[0].prefix",
    );
    refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
drop = false
"#,
        6,
        "route[0].prefix",
    );
    // An interface alone is a connected subnet: each destination is
    // resolved by ARP.
    let c = parse_ok(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
"#,
    );
    assert_eq!(c.routes[0].paths, [Path::Connected { interface: 0 }]);
}

#[test]
fn routing_settings_parse() {
    let c = parse_ok(
        r#"[[interface]]
name = "if0"
driver = "sink"
address = ["10.0.0.1/24", "2001:db8::1/64"]
table = 2

[[interface]]
name = "if1"
driver = "sink"

[[route]]
prefix = "2001:db8:1::/48"
table = 2
interface = "if0"
via = "2001:db8::2"

[[route]]
prefix = "0.0.0.0/0"
path = [{ interface = "if0", via = "10.0.0.2" }, { interface = "if1", via-mac = "02:00:00:00:00:09" }]

[[route]]
prefix = "10.9.0.0/16"
prohibit = true

[[neighbor]]
interface = "if0"
ip = "10.0.0.2"
mac = "02:00:00:00:00:02"
"#,
    );
    assert_eq!(c.tables, 3);
    assert_eq!(c.interface_tables, [2, 0]);
    assert_eq!(c.addresses.len(), 2);
    assert_eq!(c.routes[0].table, 2);
    assert_eq!(c.routes[1].paths.len(), 2);
    assert_eq!(c.routes[2].paths, [Path::Prohibit]);
    assert_eq!(c.neighbors.len(), 1);
}

#[test]
fn bad_routing_settings_are_refused() {
    let base = "[[interface]]\nname = \"if0\"\ndriver = \"sink\"\n";
    for (extra, line, key) in [
        ("address = [\"10.0.0.1\"]\n", 4, "interface[0].address"),
        ("address = [\"224.0.0.1/24\"]\n", 4, "interface[0].address"),
        ("table = 5000\n", 4, "interface[0].table"),
        (
            "\n[[route]]\nprefix = \"10.0.0.0/8\"\ninterface = \"if0\"\nvia = \"2001:db8::1\"\n",
            8,
            "route[0].via",
        ),
        (
            "\n[[route]]\nprefix = \"10.0.0.0/8\"\ndrop = true\n\n[[route]]\nprefix = \"10.0.0.0/8\"\nprohibit = true\n",
            10,
            "route[1].prefix",
        ),
        (
            "\n[[route]]\nprefix = \"10.0.0.0/8\"\npath = []\n",
            6,
            "route[0].prefix",
        ),
        (
            "\n[[neighbor]]\ninterface = \"if0\"\nip = \"banana\"\nmac = \"02:00:00:00:00:01\"\n",
            7,
            "neighbor[0].ip",
        ),
        (
            "\n[[neighbor]]\ninterface = \"if0\"\nip = \"10.0.0.2\"\nmac = \"02:00:00:00:00:01\"\n\
             [[neighbor]]\ninterface = \"if0\"\nip = \"10.0.0.2\"\nmac = \"02:00:00:00:00:02\"\n",
            11,
            "neighbor[1].ip",
        ),
    ] {
        refused(&format!("{base}{extra}"), line, key);
    }
}

#[test]
fn route_with_both_drop_and_interface() {
    let m = refused(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.2.0.0/16"
drop = true

[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:01:fe"
drop = true
"#,
        10,
        "route[1].prefix",
    );
    assert_contains(&m, "drop");
}

// ---------------------------------------------------------------------------
// Syntax errors (from the TOML parser)
// ---------------------------------------------------------------------------

#[test]
fn toml_syntax_error() {
    syntax(
        r#"[[interface]]
name = "pg0"
driver = "pg

[[interface]]
name = "sink0"
driver = "sink"
"#,
        3,
    );
    syntax("[buffers]\ncount = 1024\ncount = 2048\n", 3);
    syntax("[buffers\ncount = 1024\n", 1);
}

#[test]
fn unknown_key() {
    let m = syntax(
        r#"[[interface]]
name = "pg0"
driver = "pg"
colour = "red"
"#,
        4,
    );
    assert_contains(&m, "colour");
    let m = syntax("[buffers]\ncount = 1024\n\n[colour]\nred = 1\n", 4);
    assert_contains(&m, "colour");
    let m = syntax(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
dropped = true
"#,
        7,
    );
    assert_contains(&m, "dropped");
}

#[test]
fn wrong_type() {
    let m = syntax(
        r#"[[interface]]
name = "pg0"
driver = "pg"
mtu = "big"
"#,
        4,
    );
    assert_contains(&m, "mtu");
    syntax("[workers]\ncount = \"two\"\n", 2);
    syntax(
        r#"[[interface]]
name = "sink0"
driver = "sink"

[[route]]
prefix = "10.1.0.0/16"
drop = "yes"
"#,
        7,
    );
}

#[test]
fn missing_required_key() {
    let m = syntax(
        r#"[[interface]]
name = "pg0"
driver = "pg"

[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
"#,
        5,
    );
    assert_contains(&m, "dst-ip");
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

#[test]
fn value_error_message_reads_line_key_message() {
    let e = Config::parse("[workers]\n\ncount = 0\n").unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("line 3: `workers.count`: "),
        "unexpected message: {text}"
    );
    assert_contains(&text, "0");

    let e = ConfigError::Value {
        line: 12,
        key: "route[2].prefix".into(),
        message: "wrong".into(),
    };
    assert_eq!(e.to_string(), "line 12: `route[2].prefix`: wrong");
}

#[test]
fn syntax_error_message_is_one_trimmed_text() {
    let e = Config::parse("[buffers]\ncount = \n").unwrap_err();
    let ConfigError::Syntax(m) = &e else {
        panic!("expected a syntax error, got {e:?}");
    };
    assert_eq!(e.to_string(), *m);
    assert_eq!(m.trim_end(), m, "trailing whitespace in {m:?}");
    assert_contains(m, "line 2");
}

#[test]
fn empty_config_parses() {
    let c = parse_ok("");
    assert!(c.interfaces.is_empty() && c.streams.is_empty() && c.routes.is_empty());
    assert_eq!(c.buffers, 32768);
}

#[test]
fn windows_line_endings_count_lines_the_same() {
    refused(
        "[[interface]]\r\nname = \"pg0\"\r\ndriver = \"pg\"\r\nmtu = 20\r\n",
        4,
        "interface[0].mtu",
    );
}

#[test]
fn review_regressions() {
    // A rate so high it would overflow the generator's pacing.
    refused(
        "[[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n\n[[stream]]\nname = \"s\"\ninterface = \"pg0\"\nsrc-ip = \"10.0.0.1\"\ndst-ip = \"10.0.0.2\"\nrate = 1e30\n",
        10,
        "stream[0].rate",
    );
    // Interface names whose nodes would shadow built-in ones.
    for name in ["ethernet", "ip4"] {
        refused(
            &format!("[[interface]]\nname = \"{name}\"\ndriver = \"pg\"\n"),
            2,
            "interface[0].name",
        );
    }
}

#[test]
fn bridges_and_xconnects_parse() {
    let c = parse_ok(
        r#"[[interface]]
name = "a"
driver = "pg"

[[interface]]
name = "b"
driver = "sink"

[[interface]]
name = "c"
driver = "sink"

[[interface]]
name = "bvi0"
driver = "bvi"
address = ["10.0.0.254/24"]

[[interface]]
name = "d"
driver = "pg"

[[bridge]]
id = 7
port = [{ interface = "a" }, { interface = "b", split-horizon = 1, vlan = "push 100" }]
learn = false
flood = false
mac-capacity = 1000
aging = 60
bvi = "bvi0"
static-mac = [{ mac = "02:00:00:00:00:42", interface = "b" }]

[[xconnect]]
from = "d"
to = "c"
vlan = "translate 10 20"
"#,
    );
    assert_eq!(c.bridges.len(), 1);
    let b = &c.bridges[0];
    assert_eq!(
        (b.id, b.learn, b.flood, b.mac_capacity),
        (7, false, false, 1000)
    );
    assert_eq!(b.aging, std::time::Duration::from_secs(60));
    assert_eq!(b.bvi, Some(3));
    assert_eq!(b.ports[1].split_horizon, 1);
    assert_eq!(b.ports[1].vlan, sluice_fn::VlanRewrite::Push1 { vid: 100 });
    assert_eq!(
        c.xconnects[0].vlan,
        sluice_fn::VlanRewrite::Translate1To1 {
            wire: 10,
            bridge: 20
        }
    );
    assert!(c.is_l2(0) && c.is_l2(1) && c.is_l2(4) && !c.is_l2(2) && !c.is_l2(3));
    assert_eq!(
        c.interface_table().get(3).unwrap().output_node.as_deref(),
        Some("l2-bvi-output")
    );
}

#[test]
fn bad_bridges_are_refused() {
    let base = "[[interface]]\nname = \"a\"\ndriver = \"sink\"\n\n[[interface]]\nname = \"b\"\ndriver = \"sink\"\n";
    for (extra, line, key) in [
        (
            "\n[[bridge]]\nid = 1\nport = [{ interface = \"zz\" }]\n",
            11,
            "bridge[0].port[0].interface",
        ),
        (
            "\n[[bridge]]\nid = 1\nport = [{ interface = \"a\", vlan = \"pop 5000\" }]\n",
            11,
            "bridge[0].port[0].vlan",
        ),
        (
            "\n[[bridge]]\nid = 1\nport = [{ interface = \"a\", vlan = \"swap\" }]\n",
            11,
            "bridge[0].port[0].vlan",
        ),
        ("\n[[bridge]]\nid = -1\n", 10, "bridge[0].id"),
        (
            "\n[[bridge]]\nid = 1\nmac-capacity = 0\n",
            11,
            "bridge[0].mac-capacity",
        ),
        (
            // The same port in two bridges.
            "\n[[bridge]]\nid = 1\nport = [{ interface = \"a\" }]\n\n[[bridge]]\nid = 2\nport = [{ interface = \"a\" }]\n",
            10,
            "bridge",
        ),
        (
            "\n[[bridge]]\nid = 1\nport = [{ interface = \"a\" }]\n\n[[xconnect]]\nfrom = \"a\"\nto = \"b\"\n",
            10,
            "bridge",
        ),
    ] {
        refused(&format!("{base}{extra}"), line, key);
    }
    // An address on a bridge port.
    refused(
        "[[interface]]\nname = \"a\"\ndriver = \"sink\"\naddress = [\"10.0.0.1/24\"]\n\n[[bridge]]\nid = 1\nport = [{ interface = \"a\" }]\n",
        4,
        "interface[0].address",
    );
}

#[test]
fn kernel_interfaces_need_a_device_and_sane_queues() {
    let m = refused(
        "[[interface]]\nname = \"eth0\"\ndriver = \"af-xdp\"\n",
        3,
        "interface[0].device",
    );
    assert_contains(&m, "needs `device`");
    let m = refused(
        "[[interface]]\nname = \"eth0\"\ndriver = \"af-packet\"\ndevice = \"veth0\"\nring-size = 1000\n",
        5,
        "interface[0].ring-size",
    );
    assert_contains(&m, "power of two");
    let m = refused(
        "[[interface]]\nname = \"eth0\"\ndriver = \"af-xdp\"\ndevice = \"veth0\"\nnetns = \"blue\"\n",
        5,
        "interface[0].netns",
    );
    assert_contains(&m, "own namespace");
    let m = refused(
        "[[interface]]\nname = \"s\"\ndriver = \"sink\"\ndevice = \"veth0\"\n",
        4,
        "interface[0].device",
    );
    assert_contains(&m, "takes no `device`");
    // A multi-queue TAP: one queue per worker.
    let c = parse_ok("[[interface]]\nname = \"t\"\ndriver = \"tap\"\nqueues = 2\n");
    assert_eq!(c.interfaces[0].driver.kernel().map(|k| k.queues), Some(2));
    let m = refused(
        "[[interface]]\nname = \"t\"\ndriver = \"tap\"\nqueues = 65\n",
        4,
        "interface[0].queues",
    );
    assert_contains(&m, "out of range");
}

#[test]
fn a_tap_is_named_after_its_interface() {
    let c = sluice_control::Config::parse(
        "[[interface]]\nname = \"tap7\"\ndriver = \"tap\"\nnetns = \"blue\"\naddress = [\"10.0.0.1/24\"]\n",
    )
    .unwrap();
    let k = c.interfaces[0].driver.kernel().unwrap();
    assert_eq!(
        (k.device.as_str(), k.netns.as_deref(), k.queues),
        ("tap7", Some("blue"), 1)
    );
    assert!(!k.mac_configured);
}

#[test]
fn an_interface_can_start_administratively_down() {
    let c = parse_ok(
        "[[interface]]\nname = \"if0\"\ndriver = \"sink\"\nstate = \"down\"\n\
         [[interface]]\nname = \"if1\"\ndriver = \"sink\"\nstate = \"up\"\n",
    );
    assert!(!c.interfaces[0].admin_up);
    assert!(c.interfaces[1].admin_up);
    let m = refused(
        "[[interface]]\nname = \"if0\"\ndriver = \"sink\"\nstate = \"off\"\n",
        4,
        "interface[0].state",
    );
    assert_contains(&m, "\"up\" or \"down\"");
    let m = refused(
        "[[interface]]\nname = \"b\"\ndriver = \"bvi\"\nstate = \"down\"\n",
        4,
        "interface[0].state",
    );
    assert_contains(&m, "follows its bridge");
}

#[test]
fn a_memif_client_sizes_its_rings_and_buffers_and_a_server_refuses_to() {
    let client = "[[interface]]\nname = \"m0\"\ndriver = \"memif\"\nsocket = \"/run/m.sock\"\nrole = \"client\"\n";
    let c = parse_ok(&format!("{client}ring-size = 256\nbuffer-size = 1024\n"));
    match &c.interfaces[0].driver {
        Driver::Memif(m) => assert_eq!((m.ring_size, m.buffer_size), (256, 1024)),
        other => panic!("not memif: {other:?}"),
    }
    // The defaults of VPP and DPDK.
    match &parse_ok(client).interfaces[0].driver {
        Driver::Memif(m) => assert_eq!((m.ring_size, m.buffer_size), (1024, 2048)),
        other => panic!("not memif: {other:?}"),
    }
    let m = refused(
        &format!("{client}ring-size = 1000\n"),
        6,
        "interface[0].ring-size",
    );
    assert_contains(&m, "power of two");
    refused(
        &format!("{client}ring-size = 32768\n"),
        6,
        "interface[0].ring-size",
    );
    let m = refused(
        &format!("{client}buffer-size = 1000\n"),
        6,
        "interface[0].buffer-size",
    );
    assert_contains(&m, "multiple of 64");
    refused(
        &format!("{client}buffer-size = 0\n"),
        6,
        "interface[0].buffer-size",
    );
    // A server takes what its client proposes.
    let m = refused(
        "[[interface]]\nname = \"m0\"\ndriver = \"memif\"\nsocket = \"/run/m.sock\"\nbuffer-size = 4096\n",
        5,
        "interface[0].buffer-size",
    );
    assert_contains(&m, "client's");
    refused(
        "[[interface]]\nname = \"m0\"\ndriver = \"memif\"\nsocket = \"/run/m.sock\"\nring-size = 512\n",
        5,
        "interface[0].ring-size",
    );
    // Not a memif key elsewhere.
    let m = refused(
        "[[interface]]\nname = \"s\"\ndriver = \"sink\"\nbuffer-size = 4096\n",
        4,
        "interface[0].buffer-size",
    );
    assert_contains(&m, "takes no `buffer-size`");
}
