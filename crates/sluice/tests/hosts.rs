//! Real Linux hosts routed through `sluice run`: two network namespaces,
//! each a host on its own veth, with Sluice as their router in between.
//! Per kernel driver: ping (IPv4 and IPv6, hosts and the router itself)
//! and an iperf3 TCP transfer, then a clean stop with every buffer back.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sluice_testnet::{Host, Netns, require, require_root};

/// A running `sluice run`, stopped with SIGTERM (by its PID) on drop.
struct Sluice {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Sluice {
    fn start(config: &str) -> Sluice {
        Sluice::start_with(config, &[])
    }

    fn start_with(config: &str, extra: &[&str]) -> Sluice {
        let path = std::env::temp_dir().join(format!(
            "sluice-hosts-{}-{}.toml",
            std::process::id(),
            sluice_testnet::unique("c")
        ));
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "-c"])
            .arg(&path)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        let s = Sluice { child, lines };
        // Running once it has said what it built.
        let first = s
            .lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        assert!(
            first.starts_with("sluice: "),
            "sluice did not start: {first}"
        );
        s
    }

    /// Stops it and returns everything it printed and its exit status.
    fn stop(mut self) -> (String, bool) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let ok = self.child.wait().is_ok_and(|s| s.success());
        let mut out = String::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            out.push_str(&l);
            out.push('\n');
        }
        (out, ok)
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[[interface]]` lines of one kernel interface.
fn interface(name: &str, driver: &str, device: &str, addrs: &[&str]) -> String {
    let addrs: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[[interface]]\nname = \"{name}\"\ndriver = \"{driver}\"\ndevice = \"{device}\"\naddress = [{}]\n\n",
        addrs.join(", ")
    )
}

fn ping(ns: &Netns, args: &[&str]) {
    let mut cmd = vec!["ping", "-c", "3", "-i", "0.2", "-W", "2"];
    cmd.extend_from_slice(args);
    let out = ns.output(&cmd);
    assert!(
        out.status.success(),
        "ping {args:?} failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Hosts A (10.N.1.2) and B (10.N.2.2) on either side of Sluice.
fn routed_hosts_through(driver: &str, n: u8) {
    if !require_root() || !require("ping") || !require("iperf3") {
        return;
    }
    let a = Host::new(
        &format!("10.{n}.1.2/24"),
        &format!("10.{n}.1.1"),
        &format!("fd{n}:1::2/64"),
        &format!("fd{n}:1::1"),
    );
    let b = Host::new(
        &format!("10.{n}.2.2/24"),
        &format!("10.{n}.2.1"),
        &format!("fd{n}:2::2/64"),
        &format!("fd{n}:2::1"),
    );
    let config = interface(
        "a",
        driver,
        &a.link.outer,
        &[&format!("10.{n}.1.1/24"), &format!("fd{n}:1::1/64")],
    ) + &interface(
        "b",
        driver,
        &b.link.outer,
        &[&format!("10.{n}.2.1/24"), &format!("fd{n}:2::1/64")],
    );
    let sluice = Sluice::start(&config);
    exercise(sluice, &a.ns, &b.ns, driver, n);
}

/// Pings (the router, the far host, both families, a full-MTU frame) and
/// an iperf3 transfer from host A to host B, then stops Sluice and checks
/// it stopped cleanly with every buffer back and the links shown up.
fn exercise(sluice: Sluice, a: &Netns, b: &Netns, driver: &str, n: u8) {
    ping(a, &[&format!("10.{n}.1.1")]);
    ping(a, &[&format!("10.{n}.2.2")]);
    ping(a, &["-6", &format!("fd{n}:2::2")]);
    ping(b, &["-6", &format!("fd{n}:1::1")]);
    ping(a, &["-s", "1472", "-M", "do", &format!("10.{n}.2.2")]);

    for (family, server_addr) in [
        ("ipv4", format!("10.{n}.2.2")),
        ("ipv6", format!("fd{n}:2::2")),
    ] {
        let server = b.spawn(&["iperf3", "-s", "-1"]);
        std::thread::sleep(Duration::from_millis(300));
        let client = a.output(&[
            "timeout",
            "30",
            "iperf3",
            "-c",
            &server_addr,
            "-t",
            "2",
            "-J",
        ]);
        drop(server);
        let report = String::from_utf8_lossy(&client.stdout);
        assert!(client.status.success(), "{family} iperf3 failed: {report}");
        let received = sluice_testnet::iperf3_received_bytes(&report);
        eprintln!(
            "{driver}: iperf3 over {family} {:.2} Gbit/s through Sluice",
            received as f64 * 8.0 / 2e9
        );
        assert!(received > 1_000_000, "{report}");
    }

    let (out, ok) = sluice.stop();
    eprintln!("{out}");
    assert!(ok, "sluice did not stop cleanly:\n{out}");
    assert!(!out.contains("BUG"), "{out}");
    assert!(
        out.contains(&format!("{driver} up")),
        "link state shown:\n{out}"
    );
}

#[test]
fn hosts_routed_through_af_xdp() {
    routed_hosts_through("af-xdp", 81);
}

#[test]
fn hosts_routed_through_af_packet() {
    routed_hosts_through("af-packet", 82);
}

/// Sluice makes a TAP inside each host's namespace; the host addresses it
/// like any interface of its own.
#[test]
fn hosts_routed_through_tap() {
    if !require_root() || !require("ping") || !require("iperf3") {
        return;
    }
    let n = 83;
    let (a, b) = (Netns::new(), Netns::new());
    let tap_a = sluice_testnet::unique("tpa");
    let tap_b = sluice_testnet::unique("tpb");
    let config = format!(
        "[[interface]]\nname = \"{tap_a}\"\ndriver = \"tap\"\nnetns = \"{}\"\naddress = [\"10.{n}.1.1/24\", \"fd{n}:1::1/64\"]\n\n\
         [[interface]]\nname = \"{tap_b}\"\ndriver = \"tap\"\nnetns = \"{}\"\naddress = [\"10.{n}.2.1/24\", \"fd{n}:2::1/64\"]\n",
        a.name(),
        b.name()
    );
    let sluice = Sluice::start(&config);
    for (ns, tap, side) in [(&a, &tap_a, 1), (&b, &tap_b, 2)] {
        ns.run(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{tap}.accept_dad=0"),
        ]);
        ns.run(&[
            "ip",
            "addr",
            "add",
            &format!("10.{n}.{side}.2/24"),
            "dev",
            tap,
        ]);
        ns.run(&[
            "ip",
            "-6",
            "addr",
            "add",
            &format!("fd{n}:{side}::2/64"),
            "dev",
            tap,
            "nodad",
        ]);
        ns.run(&["ip", "link", "set", tap, "up"]);
        ns.run(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("10.{n}.{side}.1"),
        ]);
        ns.run(&[
            "ip",
            "-6",
            "route",
            "add",
            "default",
            "via",
            &format!("fd{n}:{side}::1"),
        ]);
    }
    exercise(sluice, &a, &b, "tap", n);
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

/// At start Sluice announces its address (gratuitous ARP); then, with no
/// traffic, the worker sleeps on its sockets instead of spinning, and a
/// packet wakes it at once.
#[test]
fn an_idle_forwarder_announces_itself_sleeps_and_wakes_on_traffic() {
    if !require_root() || !require("ping") {
        return;
    }
    let n = 84;
    let a = Host::new(
        &format!("10.{n}.1.2/24"),
        &format!("10.{n}.1.1"),
        &format!("fd{n}:1::2/64"),
        &format!("fd{n}:1::1"),
    );
    // The host takes new neighbours from gratuitous ARP, as a switch does.
    a.ns.run(&["sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=1"]);
    let config = interface("a", "af-xdp", &a.link.outer, &[&format!("10.{n}.1.1/24")]);
    let sluice = Sluice::start(&config);
    let pid = sluice.child.id();
    std::thread::sleep(Duration::from_millis(500));
    // Sluice announced its address at start, before anyone asked.
    let neigh = a.ns.run(&["ip", "neigh", "show", &format!("10.{n}.1.1")]);
    let sluice_mac =
        std::fs::read_to_string(format!("/sys/class/net/{}/address", a.link.outer)).unwrap();
    assert!(
        neigh.contains(sluice_mac.trim()),
        "no gratuitous ARP learned: {neigh:?}"
    );
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(2));
    let idle_cpu = (cpu_seconds(pid) - before) / 2.0;
    // Pings 300 ms apart: each finds the worker asleep.
    let out =
        a.ns.output(&["ping", "-c", "5", "-i", "0.3", &format!("10.{n}.1.1")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // "rtt min/avg/max/mdev = 0.041/0.052/0.071/0.010 ms"
    let avg_ms: f64 = text
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::MAX);
    eprintln!(
        "idle: {:.1} % of a core; ping to a sleeping Sluice: {avg_ms} ms average",
        idle_cpu * 100.0
    );
    let (out, ok) = sluice.stop();
    assert!(ok && !out.contains("BUG"), "{out}");
    assert!(
        idle_cpu < 0.10,
        "an idle worker used {:.0} % of a core",
        idle_cpu * 100.0
    );
    assert!(avg_ms < 2.0, "a sleeping worker took {avg_ms} ms to answer");
}

fn mac_bytes(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (d, p) in m.iter_mut().zip(s.trim().split(':')) {
        *d = u8::from_str_radix(p, 16).unwrap_or(0);
    }
    m
}

/// A file removed when the test ends.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What tshark reads of each frame: sizes, hop limits, addresses, ports,
/// payload, and whether the checksums are good.
fn decoded(capture: &std::path::Path) -> Vec<Vec<String>> {
    let mut c = Command::new("tshark");
    c.arg("-r").arg(capture);
    for proto in ["ip", "udp", "tcp"] {
        c.args(["-o", &format!("{proto}.check_checksum:TRUE")]);
    }
    c.args(["-T", "fields", "-E", "separator=|"]);
    for f in [
        "frame.len",
        "ip.ttl",
        "ipv6.hlim",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "udp.dstport",
        "tcp.dstport",
        "data.data",
        "ip.checksum.status",
        "udp.checksum.status",
        "tcp.checksum.status",
        "udp.srcport",
        "tcp.srcport",
    ] {
        c.args(["-e", f]);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(String::from).collect())
        .collect()
}

/// A crafted capture replayed by tcpreplay from host A arrives at host B,
/// routed: same frames but for the MACs, hop limit one less, every
/// checksum good.
#[test]
fn tcpreplay_capture_arrives_intact() {
    use etherparse::PacketBuilder;
    use sluice_io::pcap::PcapWriter;
    if !require_root() || !require("tcpreplay") || !require("tshark") || !require("ping") {
        return;
    }
    let n = 85;
    let a = Host::new("10.85.1.2/24", "10.85.1.1", "fd85:1::2/64", "fd85:1::1");
    let b = Host::new("10.85.2.2/24", "10.85.2.1", "fd85:2::2/64", "fd85:2::1");
    let config = interface(
        "a",
        "af-xdp",
        &a.link.outer,
        &["10.85.1.1/24", "fd85:1::1/64"],
    ) + &interface(
        "b",
        "af-xdp",
        &b.link.outer,
        &["10.85.2.1/24", "fd85:2::1/64"],
    );
    let sluice = Sluice::start(&config);
    // Sluice learns B's addresses before the replay.
    ping(&a.ns, &["10.85.2.2"]);
    ping(&a.ns, &["-6", "fd85:2::2"]);

    let host_mac = mac_bytes(&a.mac());
    let sluice_mac = mac_bytes(
        &std::fs::read_to_string(format!("/sys/class/net/{}/address", a.link.outer)).unwrap(),
    );
    let dir = std::env::temp_dir();
    let input = TempFile(dir.join(format!("{}-in.pcap", sluice_testnet::unique("tr"))));
    let output = TempFile(dir.join(format!("{}-out.pcap", sluice_testnet::unique("tr"))));
    let mut w = PcapWriter::create(&input.0, 65535).unwrap();
    let count = 60;
    for i in 0..count {
        let payload: Vec<u8> = (0..(20 + i * 23) % 1400)
            .map(|k| (k * 7 + i) as u8)
            .collect();
        let eth = PacketBuilder::ethernet2(host_mac, sluice_mac);
        let mut f = Vec::new();
        match i % 3 {
            0 => eth
                .ipv4([10, n, 1, 2], [10, n, 2, 2], 64)
                .udp(5000 + i as u16, 7777)
                .write(&mut f, &payload),
            1 => eth
                .ipv6(
                    "fd85:1::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
                    "fd85:2::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
                    64,
                )
                .udp(5000 + i as u16, 7777)
                .write(&mut f, &payload),
            _ => eth
                .ipv4([10, n, 1, 2], [10, n, 2, 2], 33)
                .tcp(6000 + i as u16, 7778, 1000, 512)
                .write(&mut f, &payload),
        }
        .unwrap();
        w.write(&f).unwrap();
    }
    w.flush().unwrap();
    drop(w);

    let capture = b.ns.spawn(&[
        "tshark",
        "-i",
        "eth0",
        "-f",
        "(udp dst port 7777) or (tcp dst port 7778)",
        "-c",
        &count.to_string(),
        "-a",
        "duration:15",
        "-w",
        output.0.to_str().unwrap(),
    ]);
    // tshark needs a moment before it captures.
    std::thread::sleep(Duration::from_millis(1500));
    a.ns.run(&[
        "tcpreplay",
        "-q",
        "-i",
        "eth0",
        "--pps",
        "500",
        input.0.to_str().unwrap(),
    ]);
    let done = capture.wait_timeout(Duration::from_secs(20));
    assert!(done.is_some(), "tshark did not see every frame");
    let (out, ok) = sluice.stop();
    assert!(ok && !out.contains("BUG"), "{out}");

    let sent = decoded(&input.0);
    let mut got = decoded(&output.0);
    assert_eq!(got.len(), sent.len(), "frames arrived");
    // Matched by source port, unique per frame: flows need not keep their
    // order between each other (IPv6 may wait on neighbour discovery).
    let key = |f: &Vec<String>| f[13..].concat();
    got.sort_by_key(key);
    let mut sent = sent;
    sent.sort_by_key(key);
    for (s, g) in sent.iter().zip(&got) {
        let less = |v: &str| {
            v.parse::<u8>()
                .map_or(String::new(), |x| (x - 1).to_string())
        };
        assert_eq!(g[0], s[0], "frame length");
        assert_eq!(
            (g[1].clone(), g[2].clone()),
            (less(&s[1]), less(&s[2])),
            "hop limit"
        );
        assert_eq!(g[3..10], s[3..10], "addresses, ports, payload");
        for c in &g[10..13] {
            assert!(
                c.is_empty() || c == "1",
                "checksum status {c} (1 is good): {g:?}"
            );
        }
    }
}

/// A host's veth deleted under a running Sluice: that interface goes
/// down (shown `gone`, counted), the others keep forwarding, and Sluice
/// stops cleanly with every buffer back.
#[test]
fn a_device_pulled_out_leaves_the_rest_forwarding() {
    if !require_root() || !require("ping") {
        return;
    }
    let a = Host::new("10.86.1.2/24", "10.86.1.1", "fd86:1::2/64", "fd86:1::1");
    let b = Host::new("10.86.2.2/24", "10.86.2.1", "fd86:2::2/64", "fd86:2::1");
    let c = Host::new("10.86.3.2/24", "10.86.3.1", "fd86:3::2/64", "fd86:3::1");
    let config = interface("a", "af-xdp", &a.link.outer, &["10.86.1.1/24"])
        + &interface("b", "af-packet", &b.link.outer, &["10.86.2.1/24"])
        + &interface("c", "af-xdp", &c.link.outer, &["10.86.3.1/24"]);
    let sluice = Sluice::start(&config);
    ping(&a.ns, &["10.86.2.2"]);
    ping(&a.ns, &["10.86.3.2"]);
    // Traffic towards C while its device goes away.
    let flood = a.ns.spawn(&["ping", "-i", "0.01", "10.86.3.2"]);
    std::thread::sleep(Duration::from_millis(200));
    drop(c);
    std::thread::sleep(Duration::from_millis(500));
    drop(flood);
    ping(&a.ns, &["10.86.2.2"]);
    ping(&b.ns, &["10.86.1.2"]);
    let (out, ok) = sluice.stop();
    eprintln!("{out}");
    assert!(ok && !out.contains("BUG"), "{out}");
    let c_line = out
        .lines()
        .find(|l| l.starts_with("c "))
        .unwrap_or_default();
    assert!(c_line.contains("af-xdp gone"), "{out}");
    assert!(out.contains("link downs"), "{out}");
}

/// `sluice run` with a kernel-interface configuration it cannot carry out:
/// exit code 2, a message naming the interface and the cause, and nothing
/// left behind (a TAP made for an earlier interface is gone again).
fn refused(config: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}.toml", sluice_testnet::unique("bad")));
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--duration", "5", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    text
}

#[test]
fn kernel_interfaces_it_cannot_open_are_refused_clearly() {
    if !require_root() {
        return;
    }
    let e = refused(&interface("a", "af-xdp", "sluice-none0", &[]));
    assert!(
        e.contains("interface a") && e.contains("sluice-none0"),
        "{e}"
    );
    let v = sluice_testnet::Veth::new();
    let e = refused(&format!(
        "[buffers]\ncount = 4096\n\n{}",
        interface("a", "af-xdp", &v.outer, &[])
    ));
    assert!(e.contains("[buffers] count"), "{e}");
    let e = refused(&format!(
        "[workers]\ncount = 2\n\n{}",
        interface("a", "af-packet", &v.outer, &[])
    ));
    assert!(e.contains("queue"), "{e}");
    // A TAP is made for the first interface, then the second fails: the
    // TAP must not outlive the refusal.
    let tap = sluice_testnet::unique("tpx");
    let e = refused(&format!(
        "[[interface]]\nname = \"{tap}\"\ndriver = \"tap\"\n\n{}",
        interface("b", "af-packet", "sluice-none1", &[])
    ));
    assert!(e.contains("sluice-none1"), "{e}");
    assert!(
        !sluice_testnet::output(&["ip", "link", "show", &tap])
            .status
            .success(),
        "the TAP of a refused configuration is gone"
    );
    let e =
        refused("[[interface]]\nname = \"t0\"\ndriver = \"tap\"\nnetns = \"sluice-no-such-ns\"\n");
    assert!(e.contains("sluice-no-such-ns"), "{e}");
}

/// Two workers, each serving one of two AF_XDP queues of each device:
/// TCP flows spread over the queues and every worker forwards.
#[test]
fn two_workers_share_two_af_xdp_queues() {
    two_workers_share_two_queues("af-xdp", 87, "queues = 2\nring-size = 1024\n");
}

/// The same with AF_PACKET: a fanout group of two receive sockets and a
/// transmit socket per worker.
#[test]
fn two_workers_share_two_af_packet_queues() {
    two_workers_share_two_queues("af-packet", 88, "queues = 2\n");
}

fn two_workers_share_two_queues(driver: &str, n: u8, queues: &str) {
    if !require_root() || !require("ping") || !require("iperf3") {
        return;
    }
    let a = Host::with_queues(
        2,
        &format!("10.{n}.1.2/24"),
        &format!("10.{n}.1.1"),
        &format!("fd{n}:1::2/64"),
        &format!("fd{n}:1::1"),
    );
    let b = Host::with_queues(
        2,
        &format!("10.{n}.2.2/24"),
        &format!("10.{n}.2.1"),
        &format!("fd{n}:2::2/64"),
        &format!("fd{n}:2::1"),
    );
    let with_queues = |s: String| {
        s.replace(
            &format!("driver = \"{driver}\"\n"),
            &format!("driver = \"{driver}\"\n{queues}"),
        )
    };
    let config = format!(
        "[workers]\ncount = 2\n\n{}{}",
        with_queues(interface(
            "a",
            driver,
            &a.link.outer,
            &[&format!("10.{n}.1.1/24")]
        )),
        with_queues(interface(
            "b",
            driver,
            &b.link.outer,
            &[&format!("10.{n}.2.1/24")]
        )),
    );
    let sluice = Sluice::start(&config);
    spread_over_two_workers(sluice, &a.ns, &b.ns, "a", n);
}

/// Two workers, each owning one queue of a multi-queue TAP in each host's
/// namespace.
#[test]
fn two_workers_share_two_tap_queues() {
    if !require_root() || !require("ping") || !require("iperf3") {
        return;
    }
    let n = 89;
    let (a, b) = (Netns::new(), Netns::new());
    let tap_a = sluice_testnet::unique("tqa");
    let tap_b = sluice_testnet::unique("tqb");
    let config = format!(
        "[workers]\ncount = 2\n\n\
         [[interface]]\nname = \"{tap_a}\"\ndriver = \"tap\"\nqueues = 2\nnetns = \"{}\"\naddress = [\"10.{n}.1.1/24\"]\n\n\
         [[interface]]\nname = \"{tap_b}\"\ndriver = \"tap\"\nqueues = 2\nnetns = \"{}\"\naddress = [\"10.{n}.2.1/24\"]\n",
        a.name(),
        b.name()
    );
    let sluice = Sluice::start(&config);
    for (ns, tap, side) in [(&a, &tap_a, 1), (&b, &tap_b, 2)] {
        ns.run(&[
            "ip",
            "addr",
            "add",
            &format!("10.{n}.{side}.2/24"),
            "dev",
            tap,
        ]);
        ns.run(&["ip", "link", "set", tap, "up"]);
        ns.run(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("10.{n}.{side}.1"),
        ]);
    }
    spread_over_two_workers(sluice, &a, &b, &tap_a, n);
}

/// Pings across, then eight parallel TCP streams (their hashes spread them
/// over the queues); both workers must have received from interface
/// `input_of`'s queues.
fn spread_over_two_workers(sluice: Sluice, a: &Netns, b: &Netns, input_of: &str, n: u8) {
    ping(a, &[&format!("10.{n}.2.2")]);
    let server = b.spawn(&["iperf3", "-s", "-1"]);
    std::thread::sleep(Duration::from_millis(300));
    let client = a.output(&[
        "timeout",
        "30",
        "iperf3",
        "-c",
        &format!("10.{n}.2.2"),
        "-t",
        "2",
        "-P",
        "8",
        "-J",
    ]);
    drop(server);
    let report = String::from_utf8_lossy(&client.stdout);
    assert!(client.status.success(), "iperf3 failed: {report}");
    assert!(sluice_testnet::iperf3_received_bytes(&report) > 1_000_000);
    let (out, ok) = sluice.stop();
    assert!(ok && !out.contains("BUG"), "{out}");
    let row = format!("{input_of}-input");
    let inputs: Vec<u64> = out
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(row.as_str()))
        .filter_map(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        .collect();
    // One row per worker, then the total.
    assert!(inputs.len() >= 2, "one {row} per worker:\n{out}");
    assert!(
        inputs[..2].iter().all(|&v| v > 100),
        "both workers received: {inputs:?}\n{out}"
    );
}

/// `sluice ctl show ip neighbors` lists the hosts Sluice resolved, with
/// their MACs, after real traffic.
#[test]
fn neighbours_learned_from_real_hosts_are_shown() {
    if !require_root() || !require("ping") {
        return;
    }
    let a = Host::new("10.88.1.2/24", "10.88.1.1", "fd88:1::2/64", "fd88:1::1");
    let socket = std::env::temp_dir().join(format!("{}.sock", sluice_testnet::unique("ctl")));
    let sock = socket.to_str().unwrap().to_string();
    let sluice = Sluice::start_with(
        &interface(
            "a",
            "af-xdp",
            &a.link.outer,
            &["10.88.1.1/24", "fd88:1::1/64"],
        ),
        &["--socket", &sock],
    );
    ping(&a.ns, &["10.88.1.1"]);
    ping(&a.ns, &["-6", "fd88:1::1"]);
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["ctl", "--socket", &sock, "show", "ip", "neighbors"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mac = a.mac();
    for addr in ["10.88.1.2", "fd88:1::2"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(addr))
            .unwrap_or_default();
        assert!(
            line.contains(&mac) && line.contains("reachable") && line.contains(" a "),
            "{addr} not learned as {mac}:\n{text}"
        );
    }
    let (out, ok) = sluice.stop();
    assert!(ok && !out.contains("BUG"), "{out}");
}
