//! The stateful firewall between real Linux hosts: host A inside, host B
//! outside, Sluice routing between them with connection tracking on both
//! interfaces and an ACL on the inside one. An iperf3 TCP session from
//! inside passes (its replies belong to a tracked connection), a flow the
//! ACL denies is dropped, and a connection opened from outside is refused.
//! Needs root (namespaces, veths) and iperf3: skipped without them, failed
//! without them when `CI=true`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sluice_testnet::{Host, Netns, require, require_root};

const N: u8 = 97;

/// A running `sluice run`, stopped with SIGTERM (by its PID) on drop.
struct Sluice {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Sluice {
    fn start(config: &str) -> Sluice {
        let path = std::env::temp_dir().join(format!(
            "sluice-fw-{}-{}.toml",
            std::process::id(),
            sluice_testnet::unique("c")
        ));
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "-c"])
            .arg(&path)
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

    /// Stops it; returns what it printed and whether it exited cleanly.
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

/// An iperf3 client from `ns` to `server` port `port` for two seconds;
/// returns the bytes received, or `None` when nothing got through (iperf3
/// may exit 0 with an `error` in its JSON when it could not connect).
fn iperf3(ns: &Netns, server: &str, port: u16) -> Option<u64> {
    let out = ns.output(&[
        "timeout",
        "8",
        "iperf3",
        "-c",
        server,
        "-p",
        &port.to_string(),
        "-t",
        "2",
        "--connect-timeout",
        "2000",
        "-J",
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    let bytes = sluice_testnet::iperf3_received_bytes(&report);
    (out.status.success() && bytes > 0).then_some(bytes)
}

/// The count on the `show errors` line (Count, Node, Reason) of `node`
/// whose reason starts with `reason`.
fn error_count(report: &str, node: &str, reason: &str) -> u64 {
    report
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let count = w.next()?.parse::<u64>().ok()?;
            (w.next()? == node && w.collect::<Vec<_>>().join(" ").starts_with(reason))
                .then_some(count)
        })
        .sum()
}

#[test]
fn inside_opens_outside_is_refused_and_the_acl_drops_a_flow_between_real_hosts() {
    if !require_root() || !require("iperf3") || !require("ping") {
        return;
    }
    let inside = Host::new(
        &format!("10.{N}.1.2/24"),
        &format!("10.{N}.1.1"),
        &format!("fd{N}:1::2/64"),
        &format!("fd{N}:1::1"),
    );
    let outside = Host::new(
        &format!("10.{N}.2.2/24"),
        &format!("10.{N}.2.1"),
        &format!("fd{N}:2::2/64"),
        &format!("fd{N}:2::1"),
    );
    let config = format!(
        r#"
[conntrack]
capacity = 4096

[[acl]]
name = "egress"
default = "permit"
rule = [ {{ action = "deny", protocol = "tcp", dst-port = 5202 }} ]

[[interface]]
name = "inside"
driver = "af-packet"
device = "{}"
address = ["10.{N}.1.1/24", "fd{N}:1::1/64"]
acl-in = "egress"
firewall = "inside"

[[interface]]
name = "outside"
driver = "af-packet"
device = "{}"
address = ["10.{N}.2.1/24", "fd{N}:2::1/64"]
firewall = "outside"
"#,
        inside.link.outer, outside.link.outer
    );
    let sluice = Sluice::start(&config);
    let (a, b) = (&inside.ns, &outside.ns);
    let far = format!("10.{N}.2.2");
    let near = format!("10.{N}.1.2");

    // Inside to outside: the ping's replies and the whole TCP session
    // come back through the connections the inside opened.
    let ping = a.output(&["ping", "-c", "3", "-i", "0.2", "-W", "2", &far]);
    assert!(ping.status.success(), "inside cannot ping outside");
    // IPv6 through ip6-conntrack (neighbour discovery is not tracked).
    let far6 = format!("fd{N}:2::2");
    let ping = a.output(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", &far6]);
    assert!(
        ping.status.success(),
        "inside cannot ping outside over IPv6"
    );
    let server = b.spawn(&["iperf3", "-s", "-1", "-p", "5201"]);
    std::thread::sleep(Duration::from_millis(300));
    let got = iperf3(a, &far, 5201);
    drop(server);
    let got = got.expect("the inside's iperf3 session did not pass the firewall");
    eprintln!(
        "iperf3 inside -> outside through the firewall: {:.2} Gbit/s",
        got as f64 * 8.0 / 2e9
    );
    assert!(got > 1_000_000, "{got} bytes");

    // The flow the inside's ACL denies never reaches the server.
    let server = b.spawn(&["iperf3", "-s", "-1", "-p", "5202"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(iperf3(a, &far, 5202), None, "a denied flow passed");
    drop(server);

    // Outside to inside: nothing the inside opened, so refused — both a
    // TCP connection and a ping.
    let server = a.spawn(&["iperf3", "-s", "-1", "-p", "5201"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        iperf3(b, &near, 5201),
        None,
        "the outside opened a connection"
    );
    drop(server);
    let ping = b.output(&["ping", "-c", "2", "-i", "0.2", "-W", "1", &near]);
    assert!(!ping.status.success(), "the outside pinged the inside");
    let near6 = format!("fd{N}:1::2");
    let ping = b.output(&["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", &near6]);
    assert!(
        !ping.status.success(),
        "the outside pinged the inside over IPv6"
    );

    let (out, ok) = sluice.stop();
    eprintln!("{out}");
    assert!(ok, "sluice did not stop cleanly:\n{out}");
    assert!(
        error_count(&out, "ip4-acl-in", "denied by an access list") > 0,
        "no ACL drop counted:\n{out}"
    );
    assert!(
        error_count(&out, "ip4-conntrack", "first packet of a flow neither") > 0,
        "no refused new flow counted:\n{out}"
    );
    assert!(out.contains("buffers: all"), "a buffer leaked:\n{out}");
}
