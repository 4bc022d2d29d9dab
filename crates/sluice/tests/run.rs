//! `sluice run` end to end: the demo, a capture replayed through the chain
//! and read back by tshark, and refused configurations.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use etherparse::PacketBuilder;
use sluice_io::pcap::PcapWriter;

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A program a test needs. Missing: under CI the test fails, elsewhere it
/// is skipped with a note.
fn require(program: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is missing: scripts/test-all installs it (as root)"
        );
        eprintln!("skipping: {program} is not installed");
    }
    found
}

/// A scratch directory removed when the test ends, even on failure.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("sluice-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fields of every frame of a capture as tshark decodes it (first
/// occurrence of each, comma-separated), with IPv4, UDP and TCP checksum
/// checks on (ICMP's are always checked).
fn tshark_fields(capture: &Path, fields: &[&str]) -> Vec<String> {
    let mut c = Command::new("tshark");
    c.arg("-r").arg(capture);
    for proto in ["ip", "udp", "tcp"] {
        c.args(["-o", &format!("{proto}.check_checksum:TRUE")]);
    }
    c.args(["-T", "fields", "-E", "separator=,", "-E", "occurrence=f"]);
    for f in fields {
        c.args(["-e", f]);
    }
    let t = c.output().unwrap();
    assert!(t.status.success(), "{}", text(&t));
    String::from_utf8_lossy(&t.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// Rows of the runtime table: name → (vectors, clocks).
fn runtime_rows(out: &str) -> Vec<(String, u64, f64)> {
    out.lines()
        .skip_while(|l| !l.starts_with("Name "))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[3].parse().unwrap(),
                f[5].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn demo_prints_runtime_with_clocks_for_every_node() {
    let o = sluice().arg("run").output().unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let rows = runtime_rows(&out);
    for node in [
        "pg0-input",
        "ethernet-input",
        "ip4-input",
        "ip4-lookup",
        "ip4-rewrite",
        "sink0-output",
        "sink1-output",
        "error-drop",
    ] {
        let row = rows
            .iter()
            .find(|r| r.0 == node)
            .unwrap_or_else(|| panic!("{node} missing:\n{out}"));
        assert!(row.1 > 0 && row.2 > 0.0, "{node}: {row:?}");
    }
    let pg = rows.iter().find(|r| r.0 == "pg0-input").unwrap();
    assert!(pg.1 >= 10_000_000, "the demo sends at least 10M packets");
    for reason in [
        "ttl / hop limit <= 1",
        "matches no route",
        "matches a drop route",
    ] {
        assert!(out.contains(reason), "{reason}:\n{out}");
    }
    assert!(out.contains("Mpps"), "{out}");
    assert!(out.contains("all 32768 back in the pool"), "{out}");
}

fn udp(dst: [u8; 4], ttl: u8, len: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0x5c, 0, 0, 0, 1])
        .ipv4([192, 168, 0, 1], dst, ttl)
        .udp(5000, 53);
    let mut v = Vec::new();
    b.write(&mut v, &vec![0xab; len]).unwrap();
    v
}

#[test]
fn capture_replayed_through_the_chain_reads_back_in_tshark() {
    if !require("tshark") {
        return;
    }
    let d = Scratch::new("tshark");
    let input = d.path("in.pcap");
    let mut w = PcapWriter::create(&input, 65535).unwrap();
    let mut sent = 0;
    for i in 0..300u32 {
        // 200 routed, 50 TTL-expiring, 50 unrouted; one jumbo.
        let (dst, ttl) = match i % 6 {
            0 => ([10, 9, 9, 9], 64),
            1 => ([10, 1, 0, 1], 1),
            _ => ([10, 1, (i >> 8) as u8, i as u8], 64),
        };
        let len = if i == 8 { 8000 } else { 20 + i as usize };
        w.write(&udp(dst, ttl, len)).unwrap();
        sent += 1;
    }
    w.flush().unwrap();
    drop(w);
    let output = d.path("out.pcap");
    let cfg = d.path("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[interface]]
name = "in0"
driver = "pcap-in"
file = "{}"
mac = "02:5c:00:00:00:01"

[[interface]]
name = "out0"
driver = "pcap-out"
file = "{}"
mac = "02:5c:00:00:00:02"
mtu = 9000

[[route]]
prefix = "10.1.0.0/16"
interface = "out0"
via-mac = "02:00:00:00:00:fe"
"#,
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    let o = sluice()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sent, 300);

    let lines = tshark_fields(
        &output,
        &[
            "eth.dst",
            "eth.src",
            "ip.ttl",
            "ip.checksum.status",
            "udp.checksum.status",
            "ip.dst",
            "frame.len",
        ],
    );
    assert_eq!(lines.len(), 200, "{lines:?}");
    for l in &lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[0], "02:00:00:00:00:fe", "{l}");
        assert_eq!(f[1], "02:5c:00:00:00:02", "{l}");
        assert_eq!(f[2], "63", "{l}");
        assert_eq!(f[3], "1", "ip checksum good: {l}");
        assert_eq!(f[4], "1", "udp checksum good: {l}");
        assert!(f[5].starts_with("10.1."), "{l}");
    }
    assert!(
        lines.iter().any(|l| l.ends_with(",8042")),
        "the jumbo frame went through"
    );
    let out = text(&o);
    assert!(out.contains("ttl / hop limit <= 1"), "{out}");
    assert!(out.contains("matches no route"), "{out}");
}

#[test]
fn generated_traffic_captured_reads_back_in_tshark() {
    if !require("tshark") {
        return;
    }
    let d = Scratch::new("pgcap");
    let output = d.path("pg.pcap");
    let cfg = d.path("pg.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[interface]]
name = "pg0"
driver = "pg"

[[interface]]
name = "cap0"
driver = "pcap-out"
file = "{}"

[[stream]]
name = "web"
interface = "pg0"
count = 1000
size = "imix"
src-ip = "10.0.0.0/24"
dst-ip = "10.1.0.0/16"
protocol = "tcp"
dst-port = 443
flows = 100

[[route]]
prefix = "10.1.0.0/16"
interface = "cap0"
via-mac = "02:00:00:00:00:fe"
"#,
            output.display()
        ),
    )
    .unwrap();
    let o = sluice().args(["run", "-c"]).arg(&cfg).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines = tshark_fields(&output, &["tcp.checksum.status", "tcp.dstport"]);
    assert_eq!(lines.len(), 1000);
    assert!(lines.iter().all(|l| l == "1,443"), "{:?}", &lines[..3]);
}

fn refused(cfg: &str) -> String {
    let d = Scratch::new("bad");
    let path = d.path("bad.toml");
    std::fs::write(&path, cfg).unwrap();
    let o = sluice()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    text(&o)
}

#[test]
fn bad_configurations_are_refused_with_key_and_line() {
    let e = refused(
        "[[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n\n[[route]]\nprefix = \"10.0.0.1/8\"\ndrop = true\n",
    );
    assert!(
        e.contains("line 6") && e.contains("route[0].prefix") && e.contains("host bits"),
        "{e}"
    );
    let e = refused("[workers]\ncount = \"two\"\n");
    assert!(e.contains("line 2"), "{e}");
    let e = refused(
        "[[interface]]\nname = \"x\"\ndriver = \"pcap-in\"\nfile = \"/nonexistent/in.pcap\"\n",
    );
    assert!(e.contains("/nonexistent/in.pcap"), "{e}");
    let missing = sluice()
        .args(["run", "--config", "/nonexistent.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("cannot read /nonexistent.toml"));
}

#[test]
fn duration_stops_an_endless_stream_cleanly() {
    let d = Scratch::new("endless");
    let path = d.path("endless.toml");
    std::fs::write(
        &path,
        "[[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n[[interface]]\nname = \"s0\"\ndriver = \"sink\"\n\
         [[stream]]\nname = \"forever\"\ninterface = \"pg0\"\nsrc-ip = \"10.0.0.1\"\ndst-ip = \"10.1.0.1\"\n\
         [[route]]\nprefix = \"0.0.0.0/0\"\ninterface = \"s0\"\nvia-mac = \"02:00:00:00:00:01\"\n",
    )
    .unwrap();
    let o = sluice()
        .args(["run", "--workers", "2", "--duration", "0.5", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("Total (2 workers)"), "{out}");
    assert!(out.contains("back in the pool"), "{out}");
    let _ = Path::new(&path);
}

/// What a router answers, end to end: crafted packets replayed from a
/// capture, the answers written to another and decoded by tshark with
/// every checksum verified.
#[test]
fn router_answers_read_back_in_tshark() {
    if !require("tshark") {
        return;
    }
    let d = Scratch::new("router");
    let input = d.path("in.pcap");
    let host = [2, 0, 0, 0, 0, 9];
    let me = [2, 0x5c, 0, 0, 0, 1];
    let h6: [u8; 16] = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let me6: [u8; 16] = "2001:db8::fe"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let far6: [u8; 16] = "2001:db8:9::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let mut frames = Vec::new();
    // TTL 1: time exceeded. No route: net unreachable. Ping the router.
    let mut v = Vec::new();
    PacketBuilder::ethernet2(host, me)
        .ipv4([10, 0, 0, 1], [10, 1, 0, 1], 1)
        .udp(5000, 53)
        .write(&mut v, &[1; 20])
        .unwrap();
    frames.push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(host, me)
        .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
        .udp(5000, 53)
        .write(&mut v, &[2; 20])
        .unwrap();
    frames.push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(host, me)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 254], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut v, b"hello")
        .unwrap();
    frames.push(v);
    // The same for IPv6: hop limit 1, no route, ping.
    let mut v = Vec::new();
    PacketBuilder::ethernet2(host, me)
        .ipv6(h6, far6, 1)
        .udp(5000, 53)
        .write(&mut v, &[3; 20])
        .unwrap();
    frames.push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(host, me)
        .ipv6(
            h6,
            "2001:db8:77::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
            64,
        )
        .udp(5000, 53)
        .write(&mut v, &[4; 20])
        .unwrap();
    frames.push(v);
    let mut v = Vec::new();
    PacketBuilder::ethernet2(host, me)
        .ipv6(h6, me6, 64)
        .icmpv6_echo_request(2, 2)
        .write(&mut v, b"hello6")
        .unwrap();
    frames.push(v);
    let mut w = PcapWriter::create(&input, 65535).unwrap();
    for f in &frames {
        w.write(f).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let output = d.path("out.pcap");
    let cfg = d.path("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[interface]]
name = "in0"
driver = "pcap-in"
file = "{}"
mac = "02:5c:00:00:00:01"

[[interface]]
name = "out0"
driver = "pcap-out"
file = "{}"
mac = "02:5c:00:00:00:02"
address = ["10.0.0.254/24", "2001:db8::fe/64"]

[[route]]
prefix = "2001:db8:9::/48"
interface = "out0"
via-mac = "02:00:00:00:00:fe"

[[route]]
prefix = "10.1.0.0/16"
interface = "out0"
via-mac = "02:00:00:00:00:fe"

[[neighbor]]
interface = "out0"
ip = "10.0.0.1"
mac = "02:00:00:00:00:09"

[[neighbor]]
interface = "out0"
ip = "2001:db8::1"
mac = "02:00:00:00:00:09"
"#,
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    let o = sluice()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines = tshark_fields(
        &output,
        &[
            "eth.dst",
            "ip.src",
            "ipv6.src",
            "icmp.type",
            "icmp.code",
            "icmp.checksum.status",
            "icmpv6.type",
            "icmpv6.code",
            "icmpv6.checksum.status",
            "ip.checksum.status",
            "_ws.malformed",
        ],
    );
    let expect = [
        // eth.dst, ip.src, ipv6.src, icmp type, code, status, icmpv6 type, code, status, ip csum
        "02:00:00:00:00:09,10.0.0.254,,11,0,1,,,,1,",
        "02:00:00:00:00:09,10.0.0.254,,3,0,1,,,,1,",
        "02:00:00:00:00:09,10.0.0.254,,0,0,1,,,,1,",
        "02:00:00:00:00:09,,2001:db8::fe,,,,3,0,1,,",
        "02:00:00:00:00:09,,2001:db8::fe,,,,1,0,1,,",
        "02:00:00:00:00:09,,2001:db8::fe,,,,129,0,1,,",
    ];
    // The router also announced its address (gratuitous ARP, broadcast).
    let (announced, mut got): (Vec<String>, Vec<String>) = lines
        .iter()
        .cloned()
        .partition(|l| l.starts_with("ff:ff:ff:ff:ff:ff,"));
    assert!(!announced.is_empty(), "no gratuitous ARP: {lines:?}");
    got.sort();
    let mut want: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "tshark saw:\n{}\n{}", lines.join("\n"), text(&o));
}

/// A bridge end to end: frames from a capture flooded out of a port that
/// pushes a VLAN tag, and a ping to the bridge's BVI answered through the
/// bridge, read back by tshark.
#[test]
fn bridge_with_bvi_reads_back_in_tshark() {
    if !require("tshark") {
        return;
    }
    let d = Scratch::new("bridge");
    let input = d.path("in.pcap");
    let host = [2, 0, 0, 0, 0, 9];
    let bvi = [2, 0x5c, 0, 0, 0, 0xb1];
    let mut w = PcapWriter::create(&input, 65535).unwrap();
    // Ten frames to a MAC nobody has learned: flooded.
    for k in 0..10u8 {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(host, [2, 0, 0, 0, 7, k])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 7], 64)
            .udp(5000, 53)
            .write(&mut v, &[k; 30])
            .unwrap();
        w.write(&v).unwrap();
    }
    // A ping to the BVI's address.
    let mut v = Vec::new();
    PacketBuilder::ethernet2(host, bvi)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 254], 64)
        .icmpv4_echo_request(5, 1)
        .write(&mut v, b"through the bridge")
        .unwrap();
    w.write(&v).unwrap();
    w.flush().unwrap();
    drop(w);
    let output = d.path("out.pcap");
    let cfg = d.path("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[[interface]]
name = "in0"
driver = "pcap-in"
file = "{}"

[[interface]]
name = "out0"
driver = "pcap-out"
file = "{}"

[[interface]]
name = "bvi0"
driver = "bvi"
mac = "02:5c:00:00:00:b1"
address = ["10.0.0.254/24"]

[[bridge]]
id = 1
# VPP's tag rewrite words: "pop 100" = tagged 100 on the wire, untagged
# in the bridge.
port = [{{ interface = "in0" }}, {{ interface = "out0", vlan = "pop 100" }}]
bvi = "bvi0"
# The host sits behind in0, which cannot send: without learning its MAC,
# the bridge floods the reply, which is what the capture can show.
learn = false

[[neighbor]]
interface = "bvi0"
ip = "10.0.0.1"
mac = "02:00:00:00:00:09"
"#,
            input.display(),
            output.display()
        ),
    )
    .unwrap();
    let o = sluice()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let lines = tshark_fields(
        &output,
        &[
            "vlan.id",
            "eth.src",
            "eth.dst",
            "icmp.type",
            "icmp.checksum.status",
            "ip.checksum.status",
        ],
    );
    // The BVI's gratuitous ARP (tagged on its way out of the port), once
    // or twice depending on how long the run took; then ten flooded and
    // the echo reply.
    let (announced, lines): (Vec<String>, Vec<String>) = lines
        .into_iter()
        .partition(|l| l.starts_with("100,02:5c:00:00:00:b1,ff:ff:ff:ff:ff:ff"));
    assert!(!announced.is_empty(), "the BVI announced itself");
    assert_eq!(lines.len(), 11, "{lines:?}\n{}", text(&o));
    let flooded = lines
        .iter()
        .filter(|l| l.starts_with("100,02:00:00:00:00:09,02:00:00:00:07:"))
        .count();
    assert_eq!(flooded, 10, "{lines:?}");
    assert!(
        lines.contains(&"100,02:5c:00:00:00:b1,02:00:00:00:00:09,0,1,1".to_string()),
        "the echo reply, from the BVI, tagged: {lines:?}"
    );
}

/// `[workers] main-core` pins the main thread there, and the workers stay
/// on their own cores (a thread inherits its maker's cores, so the order
/// of pinning matters); a main core that is also a worker's is refused.
#[test]
fn the_main_thread_and_the_workers_run_where_configured() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("skipping: one core");
        return;
    }
    let dir = sluice_testnet::Scratch::new("mcore");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "[workers]\ncount = 1\ncores = [1]\nmain-core = 0\n\n\
         [[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n\n\
         [[interface]]\nname = \"sink0\"\ndriver = \"sink\"\n\n\
         [[xconnect]]\nfrom = \"pg0\"\nto = \"sink0\"\n\n\
         [[stream]]\nname = \"s\"\ninterface = \"pg0\"\nrate = 1000\ncount = 0\n\
         src-ip = \"10.0.0.1\"\ndst-ip = \"10.0.0.2\"\n",
    )
    .unwrap();
    let child = sluice_testnet::ChildGuard(
        sluice()
            .args(["run", "--socket", "none", "--duration", "10", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    // Each thread's allowed cores, by name, once the worker is there.
    let allowed = || -> Vec<(String, String)> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                let status = std::fs::read_to_string(t.path().join("status")).ok()?;
                let list = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?
                    .trim()
                    .to_string();
                Some((comm.trim().to_string(), list))
            })
            .collect()
    };
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while std::time::Instant::now() < end {
        seen = allowed();
        if seen.iter().any(|(n, _)| n == "sluice_wk_0")
            && seen.iter().any(|(n, l)| n == "sluice" && l == "0")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        seen.contains(&("sluice_wk_0".to_string(), "1".to_string())),
        "the worker on core 1: {seen:?}"
    );
    assert!(
        seen.contains(&("sluice".to_string(), "0".to_string())),
        "the main thread on core 0: {seen:?}"
    );
    drop(child);
    let e = refused(
        "[workers]\ncores = [1]\nmain-core = 1\n\n[[interface]]\nname = \"s\"\ndriver = \"sink\"\n",
    );
    assert!(
        e.contains("workers.main-core") && e.contains("also a worker's"),
        "{e}"
    );
}
