//! The intrusion detector on a running `sluice run`: a capture replayed
//! on a pcap-in interface (the generator's payloads are random, a capture
//! carries the payload a rule looks for) with one flow whose payload
//! matches a rule and one that does not. In detect mode both pass and the
//! rule counts; in prevent mode the matching flow is dropped as
//! `ids-drop` and the other passes; `show ids` shows the counts by rule
//! and the log lines held back; `ids` comes off an interface live.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use sluice_io::pcap::PcapWriter;

const RULES: &str = "\
alert tcp any any -> any 80 (msg:\"passwd fetch\"; content:\"/etc/passwd\"; sid:1001;)
alert udp any any -> any 53 (msg:\"evil query\"; content:\"evil\"; nocase; sid:1002; rev:3;)
";

/// A UDP datagram from the peer to `dst`:53 carrying `payload`, to the
/// pcap-in interface's MAC.
fn udp(dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0x5c, 0, 0, 0, 1])
        .ipv4([192, 168, 0, 1], dst, 64)
        .udp(40000, 53);
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// 10 datagrams to 10.9.0.1 saying "EVIL" (routed to sink0), 10 to
/// 10.8.0.1 saying nothing a rule knows (routed to sink1).
fn capture(path: &Path) {
    let mut w = PcapWriter::create(path, 65535).unwrap();
    for i in 0..20u8 {
        let frame = if i % 2 == 0 {
            udp([10, 9, 0, 1], b"query for an EVIL name")
        } else {
            udp([10, 8, 0, 1], b"query for a good name")
        };
        w.write(&frame).unwrap();
    }
    w.flush().unwrap();
}

fn config(dir: &Path, mode: &str, ids_on_pcap: bool) -> String {
    let ids = if ids_on_pcap { "ids = true" } else { "" };
    format!(
        r#"
[ids]
rules = "{rules}"
mode = "{mode}"
log-per-second = 1
log-burst = 1

[[interface]]
name = "in0"
driver = "pcap-in"
file = "{pcap}"
repeat = 100000000
mac = "02:5c:00:00:00:01"
{ids}

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

[[route]]
prefix = "10.8.0.0/16"
interface = "sink1"
via-mac = "02:00:00:00:00:02"
"#,
        rules = dir.join("local.rules").display(),
        pcap = dir.join("in.pcap").display(),
    )
}

struct Daemon {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    fn start(name: &str, mode: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("sluice-ids-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("local.rules"), RULES).unwrap();
        capture(&dir.join("in.pcap"));
        let file = dir.join("c.toml");
        std::fs::write(&file, config(&dir, mode, true)).unwrap();
        let socket = dir.join("run/sluice.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "--duration", "60", "-c"])
            .arg(&file)
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while !socket.exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(socket.exists(), "no control socket");
        Daemon { child, socket, dir }
    }

    fn ctl(&self, words: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("ctl")
            .arg("--socket")
            .arg(&self.socket)
            .args(words)
            .output()
            .unwrap()
    }

    fn ok(&self, words: &[&str]) -> String {
        let o = self.ctl(words);
        assert!(o.status.success(), "{words:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, what: &str) -> serde_json::Value {
        let mut words = vec!["--json"];
        words.extend(what.split_whitespace());
        serde_json::from_str(&self.ok(&words)).unwrap()
    }

    /// (sink0 tx, sink1 tx, ip4-ids ids-drop, alerts of sid 1001, of
    /// sid 1002).
    fn counts(&self) -> [u64; 5] {
        let ifs = self.json("show interface");
        let tx = |name: &str| {
            ifs["result"]["interfaces"]["rows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .and_then(|r| r["tx_packets"].as_u64())
                .unwrap()
        };
        let errs = self.json("show errors");
        let dropped = errs["result"]["errors"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["node"] == "ip4-ids" && r["name"] == "ids-drop")
            .filter_map(|r| r["count"].as_u64())
            .sum();
        let ids = self.json("show ids");
        let alerts = |sid: u64| {
            ids["result"]["ids"]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["sid"] == sid)
                .and_then(|r| r["alerts"].as_u64())
                .unwrap()
        };
        [
            tx("sink0"),
            tx("sink1"),
            dropped,
            alerts(1001),
            alerts(1002),
        ]
    }

    /// The counts once the capture's interface is down and nothing moves.
    fn settled(&self) -> [u64; 5] {
        self.ok(&["set", "interface", "state", "in0", "down"]);
        let mut last = self.counts();
        wait_for("the counts to settle", || {
            std::thread::sleep(Duration::from_millis(100));
            let now = self.counts();
            std::mem::replace(&mut last, now) == now
        });
        last
    }

    /// How the counts move over a while.
    fn deltas(&self) -> [u64; 5] {
        let a = self.counts();
        std::thread::sleep(Duration::from_millis(500));
        let b = self.counts();
        std::array::from_fn(|i| b[i] - a[i])
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
fn detect_counts_the_matching_flow_and_lets_both_pass_then_comes_off_live() {
    let d = Daemon::start("detect", "detect");
    wait_for("alerts", || d.counts()[4] > 1000);
    let [sink0, sink1, dropped, passwd, evil] = d.deltas();
    assert!(sink0 > 0 && sink1 > 0, "both flows pass: {sink0} {sink1}");
    assert_eq!(dropped, 0, "detect drops nothing");
    assert_eq!(passwd, 0, "no packet carries /etc/passwd");
    assert!(evil > 0, "the EVIL flow raises alerts (nocase)");
    // Stopped, the counts settle: one alert for each EVIL datagram sent.
    let c = d.settled();
    assert_eq!(c[4], c[0], "{c:?}");
    assert_eq!(c[0], c[1], "as many of each flow: {c:?}");
    d.ok(&["set", "interface", "state", "in0", "up"]);

    let feats = d.ok(&["show", "features"]);
    assert!(feats.contains("ip4-ids"), "{feats}");
    let show = d.ok(&["show", "ids"]);
    assert!(show.contains("Mode detect"), "{show}");
    assert!(
        show.contains("evil query") && show.contains("1002"),
        "{show}"
    );
    let ids = d.json("show ids");
    let r = &ids["result"]["ids"];
    assert_eq!(r["mode"], "detect");
    // One log line a second with a burst of one: nearly all held back.
    assert!(r["suppressed"].as_u64().unwrap() > 1000, "{ids}");
    assert!(r["logged"].as_u64().unwrap() >= 1, "{ids}");
    assert!(r["scanned"].as_u64().unwrap() > 2000, "{ids}");

    // `ids` off the interface: live, and the detector stops counting.
    let file = d.dir.join("off.toml");
    std::fs::write(&file, config(&d.dir, "detect", false)).unwrap();
    let o = d.ctl(&["apply", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    std::thread::sleep(Duration::from_millis(200));
    let [sink0, sink1, _, _, evil] = d.deltas();
    assert!(sink0 > 0 && sink1 > 0);
    assert_eq!(evil, 0, "no detector on the arc any more");
    assert!(!d.ok(&["show", "features"]).contains("ip4-ids"));

    // The rules or the mode are a restart: refused, nothing changed.
    let file = d.dir.join("prevent.toml");
    std::fs::write(&file, config(&d.dir, "prevent", false)).unwrap();
    let o = d.ctl(&["apply", file.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("restart"), "{}", text(&o));
}

#[test]
fn prevent_drops_the_matching_flow_and_the_other_passes() {
    let d = Daemon::start("prevent", "prevent");
    wait_for("drops", || d.counts()[2] > 1000);
    let [sink0, sink1, dropped, passwd, evil] = d.deltas();
    assert_eq!(sink0, 0, "the EVIL flow is dropped");
    assert!(sink1 > 0, "the other passes");
    assert!(dropped > 0 && evil > 0);
    assert_eq!(passwd, 0);
    let c = d.settled();
    assert_eq!(c[0], 0, "not one EVIL datagram went out: {c:?}");
    assert_eq!(c[2], c[4], "each alert a drop: {c:?}");
    assert_eq!(c[2], c[1], "as many of each flow: {c:?}");
    let show = d.ok(&["show", "ids"]);
    assert!(show.contains("Mode prevent"), "{show}");
}
