//! `sluice ctl` against a running `sluice run`: reads, a route change
//! seen on live traffic, and bad requests of every kind refused without
//! touching state or traffic.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "sink0"
driver = "sink"

[[interface]]
name = "sink1"
driver = "sink"

[[route]]
prefix = "10.9.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:00:01"

[[stream]]
name = "steady"
interface = "pg0"
rate = 20000
src-ip = "10.0.0.1"
dst-ip = "10.9.0.0/24"
"#;

/// A `sluice run` with its own control socket, stopped on drop.
struct Daemon {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    fn start(name: &str) -> Daemon {
        Daemon::start_with(name, &[])
    }

    fn start_with(name: &str, extra: &[&str]) -> Daemon {
        let dir = std::env::temp_dir().join(format!("sluice-ctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("c.toml");
        std::fs::write(&cfg, CONFIG).unwrap();
        let socket = dir.join("run/sluice.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "--duration", "60", "-c"])
            .arg(&cfg)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(socket.exists(), "no control socket");
        Daemon { child, socket, dir }
    }

    fn ctl(&self, words: &str) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
        c.arg("ctl").arg("--socket").arg(&self.socket);
        c.args(words.split_whitespace());
        c.output().unwrap()
    }

    fn ok(&self, words: &str) -> String {
        let o = self.ctl(words);
        assert!(o.status.success(), "`{words}`: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Sends raw bytes and returns the one answer line.
    fn raw(&self, bytes: &[u8]) -> String {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(bytes).unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        line
    }

    fn tx(&self, interface: &str) -> u64 {
        let json = self.ok("--json show interface");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["result"]["interfaces"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == interface)
            .and_then(|r| r["tx_packets"].as_u64())
            .unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn reads_and_a_route_change_on_live_traffic() {
    let d = Daemon::start("live");
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is owner-only");
    assert!(d.ok("show version").contains("control API 1"));
    let int = d.ok("show interface");
    assert!(int.contains("pg0") && int.contains("sink1"), "{int}");
    assert!(d.ok("show runtime").contains("ip4-lookup"));
    let dot = d.ok("show graph");
    assert!(
        dot.starts_with("digraph") && dot.contains("\"ip4-input\" -> \"ip4-lookup\""),
        "{dot}"
    );
    assert!(d.ok("show buffers").contains("32768 buffers"));
    let fib = d.ok("show ip fib");
    assert!(
        fib.contains("10.9.0.0/16") && fib.contains("dev sink0"),
        "{fib}"
    );

    wait_for("traffic on sink0", || d.tx("sink0") > 1000);
    assert_eq!(d.tx("sink1"), 0);
    // Move the route: traffic follows, without a restart.
    d.ok("ip route add 10.9.0.0/16 via-mac 02:00:00:00:00:02 dev sink1");
    let before = d.tx("sink1");
    wait_for("traffic on sink1", || d.tx("sink1") > before + 1000);
    let sink0 = d.tx("sink0");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.tx("sink0"), sink0, "nothing goes to sink0 any more");
    // A more specific drop route, then its removal.
    d.ok("ip route add 10.9.0.0/24 drop");
    assert!(d.ok("show ip fib").contains("drop"));
    d.ok("ip route del 10.9.0.0/24");
    let e = d.ok("show errors");
    assert!(!e.is_empty());

    // Bad requests: refused with the reason, state untouched.
    for (words, why) in [
        ("ip route add 10.9.0.1/16 dev sink1", "host bits"),
        ("ip route add 10.9.0.0/16 dev nosuch", "does not exist"),
        (
            "ip route add 10.9.0.0/16 via 2001:db8::1 dev sink1",
            "family",
        ),
        ("ip route add 10.9.0.0/16 dev pg0", "cannot transmit"),
        ("ip route add 10.9.0.0/16 dev sink1 table 7", "table 7"),
        ("ip route add 10.9.0.0/33 dev sink1", "prefix"),
        ("ip route add 10.9.0.0/16 via-mac zz dev sink1", "MAC"),
        ("show ip fib table 9", "table 9"),
    ] {
        let o = d.ctl(words);
        assert_eq!(o.status.code(), Some(1), "`{words}`: {}", text(&o));
        assert!(text(&o).contains(why), "`{words}`: {}", text(&o));
    }
    let o = d.ctl("show bogus");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(d.ok("show ip fib").contains("dev sink1"));
    // Garbage on the socket, a future API version, an unknown field.
    assert!(d.raw(b"\x00\x01garbage\n").contains("not a request"));
    assert!(
        d.raw(b"{\"version\":9,\"request\":\"show-version\"}\n")
            .contains("version 9")
    );
    assert!(
        d.raw(b"{\"version\":1,\"request\":{\"ip-route-del\":{\"prefx\":\"1.0.0.0/8\"}}}\n")
            .contains("prefx")
    );
    // Still forwarding after all that.
    let now = d.tx("sink1");
    wait_for("traffic still flowing", || d.tx("sink1") > now + 1000);
}

#[test]
fn a_second_sluice_on_the_same_socket_is_refused() {
    let d = Daemon::start("twice");
    let cfg = d.dir.join("c.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--duration", "1", "-c"])
        .arg(&cfg)
        .arg("--socket")
        .arg(&d.socket)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("in use"), "{}", text(&o));
    // And the first still answers.
    assert!(d.ok("show version").contains("sluice"));
}

#[test]
fn the_socket_goes_when_sluice_stops() {
    let d = Daemon::start("stop");
    let socket: &Path = &d.socket;
    let _ = Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status();
    wait_for("the socket to go", || !socket.exists());
}

#[test]
fn an_interface_set_down_sends_nothing_until_set_up() {
    let d = Daemon::start("admin");
    wait_for("traffic on sink0", || d.tx("sink0") > 1000);
    d.ok("set interface state sink0 down");
    assert!(d.ok("show interface").contains("sink admin-down"));
    std::thread::sleep(Duration::from_millis(100));
    let stopped = d.tx("sink0");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.tx("sink0"), stopped, "nothing sent while down");
    assert!(d.ok("show errors").contains("administratively down"));
    // The generator itself set down: nothing comes in.
    d.ok("set interface state pg0 down");
    d.ok("set interface state sink0 up");
    std::thread::sleep(Duration::from_millis(100));
    let before = d.tx("sink0");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.tx("sink0"), before, "nothing received while pg0 is down");
    d.ok("set interface state pg0 up");
    wait_for("traffic again", || d.tx("sink0") > before + 1000);
    let o = d.ctl("set interface state nosuch down");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("does not exist"));
}

#[test]
fn doctor_says_what_is_wrong_one_line_each() {
    let dir = std::env::temp_dir().join(format!("sluice-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("d.toml");
    std::fs::write(
        &cfg,
        "[workers]\ncores = [4000]\n\n[[interface]]\nname = \"a\"\ndriver = \"af-xdp\"\n\
         device = \"sluice-none7\"\n\n[[interface]]\nname = \"l\"\ndriver = \"af-xdp\"\ndevice = \"lo\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["doctor", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for line in [
        "huge pages",
        "memlock limit",
        "FAIL  a ",
        "sluice-none7",
        "MTU 65536",
        "core 4000 does not exist",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
}

#[test]
fn traced_packets_show_their_path_node_by_node() {
    let d = Daemon::start("trace");
    assert!(d.ok("show trace").contains("No packets traced"));
    d.ok("trace add pg0-input 3");
    wait_for("three traced packets", || {
        d.ok("show trace").matches("Packet ").count() >= 3
    });
    let t = d.ok("show trace");
    for node in [
        "pg0-input",
        "ethernet-input",
        "ip4-input",
        "ip4-lookup",
        "ip4-rewrite",
        "sink0-output",
    ] {
        assert!(t.contains(node), "no {node} in:\n{t}");
    }
    assert!(t.contains("IPv4 10.0.0.1 > 10.9.0."), "{t}");
    // The rewrite wrote the next hop's MAC: the output saw it.
    assert!(t.contains("> 02:00:00:00:00:01"), "{t}");
    assert_eq!(t.matches("Packet ").count(), 3, "three and no more:\n{t}");
    d.ok("clear trace");
    assert!(d.ok("show trace").contains("No packets traced"));
    for (words, why) in [
        ("trace add ip4-lookup 3", "not an input node"),
        ("trace add nosuch 3", "no node"),
        ("trace add pg0-input 0", "count 0"),
    ] {
        let o = d.ctl(words);
        assert_eq!(o.status.code(), Some(1), "`{words}`: {}", text(&o));
        assert!(text(&o).contains(why), "`{words}`: {}", text(&o));
    }
}

/// A free loopback port (bound and released; a race is unlikely in tests).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn prometheus_metrics_on_loopback() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let d = Daemon::start_with("metrics", &["--metrics", &addr]);
    wait_for("traffic on sink0", || d.tx("sink0") > 1000);
    let end = Instant::now() + Duration::from_secs(5);
    let mut body = String::new();
    while Instant::now() < end {
        body = http_get(port, "/metrics");
        if body.contains("200 OK") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(body.contains("# TYPE sluice_interface_tx_packets_total counter"));
    let tx: u64 = body
        .lines()
        .find(|l| l.starts_with("sluice_interface_tx_packets_total{interface=\"sink0\"}"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(tx > 1000, "{body}");
    assert!(body.contains("sluice_node_packets_total{node=\"ip4-lookup\",worker=\"0\"}"));
    assert!(body.contains("sluice_interface_up{interface=\"pg0\"} 1"));
    assert!(http_get(port, "/other").starts_with("HTTP/1.1 404"));
}

#[test]
fn clear_counts_from_now_on() {
    let d = Daemon::start("clear");
    wait_for("traffic on sink0", || d.tx("sink0") > 5000);
    d.ok("clear interfaces");
    let just_after = d.tx("sink0");
    assert!(just_after < 5000, "counted from the clear: {just_after}");
    wait_for("counting again", || d.tx("sink0") > just_after + 1000);
    d.ok("ip route add 10.9.0.0/24 drop");
    wait_for("drops", || d.ok("show errors").contains("drop"));
    d.ok("clear runtime");
    let e = d.ok("show errors");
    let runtime = d.ok("show runtime");
    assert!(runtime.contains("ip4-lookup"), "{runtime}");
    // Counters since the clear are small; the raw ones stay monotonic.
    let json = d.ok("--json show runtime");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let lookup = v["result"]["runtime"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ip4-lookup")
        .and_then(|r| r["vectors"].as_u64())
        .unwrap();
    assert!(lookup < 20_000, "ip4-lookup since the clear: {lookup}\n{e}");
}

#[test]
fn the_interactive_prompt_runs_one_command_a_line() {
    use std::io::Write as _;
    let d = Daemon::start("repl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("ctl")
        .arg("--socket")
        .arg(&d.socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"show version\nshow bogus\n\nhistory\n!1\nquit\nshow interface\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success());
    assert_eq!(out.matches("control API 1").count(), 2, "{out}");
    assert!(out.contains("   1  show version"), "{out}");
    assert!(err.contains("unknown command"), "{err}");
    assert!(!out.contains("pg0"), "nothing after quit: {out}");
}

/// `pcap trace`: what pg0 receives and sink0 sends, written to a file that
/// tshark reads back; bad requests refused with nothing started.
#[test]
fn pcap_trace_writes_what_interfaces_receive_and_send() {
    if !sluice_testnet::require("tshark") {
        return;
    }
    let d = Daemon::start("pcap");
    assert!(d.ok("show pcap").contains("no pcap trace"));
    let rx = d.dir.join("rx.pcap");
    d.ok(&format!(
        "pcap trace rx max 40 intfc pg0 file {}",
        rx.display()
    ));
    wait_for("forty packets", || d.ok("show pcap").contains("40 packets"));
    assert!(d.ok("pcap trace off").contains("40 packets written"));
    let tx = d.dir.join("tx.pcap");
    d.ok(&format!(
        "pcap trace tx max 25 intfc sink0 file {}",
        tx.display()
    ));
    wait_for("25 packets", || d.ok("show pcap").contains("25 packets"));
    d.ok("pcap trace off");
    let read = |f: &Path| {
        let o = Command::new("tshark")
            .args(["-r"])
            .arg(f)
            .args([
                "-T", "fields", "-e", "eth.dst", "-e", "ip.dst", "-e", "ip.ttl",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.split('\t').map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    let got = read(&rx);
    assert_eq!(got.len(), 40);
    assert!(got.iter().all(|f| f[1].starts_with("10.9.0.")), "{got:?}");
    let sent = read(&tx);
    assert_eq!(sent.len(), 25);
    // Sent as routed: to the next hop's MAC, one hop less to live.
    let ttl_in: u32 = got[0][2].parse().unwrap();
    assert!(
        sent.iter()
            .all(|f| f[0] == "02:00:00:00:00:01" && f[2].parse::<u32>().unwrap() + 1 == ttl_in),
        "{sent:?}"
    );
    for (words, why) in [
        ("pcap trace off", "no pcap trace is running"),
        ("pcap trace max 10 file /tmp/x.pcap", "rx, tx or both"),
        ("pcap trace rx max 0 file /tmp/x.pcap", "max 0"),
        (
            "pcap trace rx max 10 intfc nosuch file /tmp/x.pcap",
            "no interface",
        ),
        (
            "pcap trace rx max 10 file /nonexistent-dir/x.pcap",
            "nonexistent-dir",
        ),
        ("pcap trace rx file /tmp/x.pcap", "max N"),
        ("pcap trace rx max 10", "file F"),
    ] {
        let o = d.ctl(words);
        assert_ne!(o.status.code(), Some(0), "`{words}`: {}", text(&o));
        assert!(text(&o).contains(why), "`{words}`: {}", text(&o));
    }
    assert!(d.ok("show pcap").contains("no pcap trace"));
}
