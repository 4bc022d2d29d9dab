//! Access lists and the firewall on a running `sluice run`: a denied
//! stream dropped while another passes, the list replaced and then taken
//! off live with `sluice ctl apply`, a bad list refused with nothing
//! changed; inside flows tracked and outside ones refused, an output ACL,
//! `show conntrack`, and an interface's firewall side changed live.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Two TCP streams from pg0: `web` (port 80) routed to sink0, `ssh`
/// (port 22) to sink1; pg0 judges what it receives by `edge`, whose rule
/// line is `RULE`.
fn config(rule: &str, acl_in: bool) -> String {
    let acl_in = if acl_in { "acl-in = \"edge\"" } else { "" };
    format!(
        r#"
[[acl]]
name = "edge"
default = "permit"
rule = [
  {rule}
]

[[interface]]
name = "pg0"
driver = "pg"
{acl_in}

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

[[stream]]
name = "web"
interface = "pg0"
rate = 20000
protocol = "tcp"
src-ip = "10.0.0.1"
dst-ip = "10.9.0.0/24"
dst-port = 80

[[stream]]
name = "ssh"
interface = "pg0"
rate = 20000
protocol = "tcp"
src-ip = "10.0.0.2"
dst-ip = "10.8.0.0/24"
dst-port = 22
"#
    )
}

const DENY_SSH: &str = r#"{ action = "deny", protocol = "tcp", dst-port = 22 },"#;
const DENY_WEB: &str =
    r#"{ action = "deny", protocol = "tcp", dst-port = 80, dst = "10.9.0.0/16" },"#;

struct Daemon {
    child: Child,
    socket: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    fn start(name: &str, cfg: &str) -> Daemon {
        let dir = std::env::temp_dir().join(format!("sluice-acl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, cfg).unwrap();
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

    /// (sink0 tx, sink1 tx, ip4-acl-in acl-deny).
    fn counts(&self) -> (u64, u64, u64) {
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
        let denied = errs["result"]["errors"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["node"] == "ip4-acl-in" && r["name"] == "acl-deny")
            .filter_map(|r| r["count"].as_u64())
            .sum();
        (tx("sink0"), tx("sink1"), denied)
    }

    /// How the counts move over a while.
    fn deltas(&self) -> (u64, u64, u64) {
        let a = self.counts();
        std::thread::sleep(Duration::from_millis(500));
        let b = self.counts();
        (b.0 - a.0, b.1 - a.1, b.2 - a.2)
    }

    fn apply(&self, name: &str, cfg: &str) -> Output {
        let file = self.dir.join(name);
        std::fs::write(&file, cfg).unwrap();
        self.ctl(&["apply", file.to_str().unwrap()])
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
fn an_acl_denies_one_stream_and_is_replaced_and_removed_live() {
    let d = Daemon::start("live", &config(DENY_SSH, true));
    wait_for("traffic", || d.counts().0 > 1000);

    // ssh is denied on the way in: sink1 sends nothing, the ACL counts.
    let (web, ssh, denied) = d.deltas();
    assert!(web > 2000, "web passes: {web}");
    assert_eq!(ssh, 0, "ssh is denied");
    assert!(denied > 2000, "the denials are counted: {denied}");
    let acl = d.ok(&["show", "acl"]);
    assert!(
        acl.contains("acl edge: 1 rule(s), default permit, in on pg0"),
        "{acl}"
    );
    assert!(acl.contains("deny proto 6 dport 22"), "{acl}");
    let features = d.ok(&["show", "features"]);
    assert!(
        features.contains("ip4-unicast") && features.contains("ip4-acl-in"),
        "{features}"
    );

    // A bad list is refused whole, with its line and key; nothing moves.
    let bad = config(r#"{ action = "deny", dst = "10.9.0.1/16" },"#, true);
    let o = d.apply("bad.toml", &bad);
    assert!(!o.status.success());
    let why = text(&o);
    assert!(
        why.contains("acl[0].rule[0]") && why.contains("host bits"),
        "{why}"
    );
    let (web, ssh, _) = d.deltas();
    assert!(
        web > 2000 && ssh == 0,
        "unchanged after a refusal: {web} {ssh}"
    );

    // The list replaced live: now web is denied and ssh passes.
    let o = d.apply("web.toml", &config(DENY_WEB, true));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("~ acl edge"), "{}", text(&o));
    std::thread::sleep(Duration::from_millis(100));
    let (web, ssh, denied) = d.deltas();
    assert_eq!(web, 0, "web is denied now");
    assert!(ssh > 2000, "ssh passes now: {ssh}");
    assert!(denied > 2000);
    // The running configuration says so, and reads back as what runs.
    let rc = d.ok(&["show", "running-config"]);
    let running = sluice_control::Config::parse(&rc).unwrap_or_else(|e| panic!("{e}\n{rc}"));
    let wanted = sluice_control::Config::parse(&config(DENY_WEB, true)).unwrap();
    assert_eq!(running.acls, wanted.acls, "{rc}");
    assert_eq!(running.features, wanted.features, "{rc}");
    assert!(
        rc.contains("dst-port = 80") && rc.contains("acl-in = \"edge\""),
        "{rc}"
    );

    // Taken off the interface: both pass, nothing is denied.
    let o = d.apply("off.toml", &config(DENY_WEB, false));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("features acl-in edge -> none"),
        "{}",
        text(&o)
    );
    std::thread::sleep(Duration::from_millis(100));
    let (web, ssh, denied) = d.deltas();
    assert!(web > 2000 && ssh > 2000, "both pass: {web} {ssh}");
    assert_eq!(denied, 0);
    assert!(d.ok(&["show", "features"]).contains("No features enabled"));
}

/// pg0 is inside, pg1 outside; both send UDP to sink0 / sink1 through
/// the firewall, and sink1's output ACL denies one port.
const FIREWALL: &str = r#"
[conntrack]
capacity = 1024

[[acl]]
name = "no-53"
default = "permit"
rule = [ { action = "deny", protocol = "udp", dst-port = 53 } ]

[[interface]]
name = "pg0"
driver = "pg"
firewall = "inside"

[[interface]]
name = "pg1"
driver = "pg"
firewall = "outside"

[[interface]]
name = "sink0"
driver = "sink"

[[interface]]
name = "sink1"
driver = "sink"
acl-out = "no-53"

[[route]]
prefix = "10.9.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:00:01"

[[route]]
prefix = "10.8.0.0/16"
interface = "sink1"
via-mac = "02:00:00:00:00:02"

[[stream]]
name = "from-inside"
interface = "pg0"
rate = 20000
src-ip = "10.0.0.1"
dst-ip = "10.9.0.0/24"
dst-port = 4000
flows = 100

[[stream]]
name = "from-outside"
interface = "pg1"
rate = 20000
src-ip = "10.0.1.1"
dst-ip = "10.9.1.0/24"
dst-port = 4000

[[stream]]
name = "dns-out"
interface = "pg0"
rate = 20000
src-ip = "10.0.0.2"
dst-ip = "10.8.0.0/24"
dst-port = 53
"#;

#[test]
fn the_firewall_tracks_inside_flows_refuses_outside_ones_and_an_output_acl_drops() {
    let d = Daemon::start("fw", FIREWALL);
    wait_for("traffic", || d.counts().0 > 1000);
    let errors = d.json("show errors");
    let count = |node: &str, name: &str| -> u64 {
        errors["result"]["errors"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["node"] == node && r["name"] == name)
            .filter_map(|r| r["count"].as_u64())
            .sum()
    };
    // Outside flows are refused as new; the port-53 stream is dropped on
    // its way out of sink1, after the rewrite.
    assert!(count("ip4-conntrack", "new-denied") > 1000, "{errors}");
    assert!(count("ip4-acl-out", "acl-deny") > 1000, "{errors}");
    let (_, dns, _) = d.deltas();
    assert_eq!(dns, 0, "the output ACL lets port 53 out");

    // The inside's flows are sessions: its 100 UDP flows, and the DNS
    // stream's (tracked before the output ACL dropped it), nothing from
    // outside.
    let ct = d.json("show conntrack");
    let rows = ct["result"]["conntrack"]["rows"]
        .as_array()
        .unwrap()
        .clone();
    let ip4: Vec<_> = rows.iter().filter(|r| r["family"] == "ip4").collect();
    assert_eq!(ip4.len(), 1, "one worker, one IPv4 table: {ct}");
    assert_eq!(ip4[0]["capacity"], 1024);
    let sessions = ip4[0]["sessions"].as_u64().unwrap();
    assert_eq!(sessions, 101, "{ct}");
    assert_eq!(ip4[0]["created"].as_u64(), Some(101));
    assert_eq!(ip4[0]["refused"].as_u64(), Some(0));
    let table = d.ok(&["show", "conntrack"]);
    assert!(
        table.contains("Sessions") && table.contains("ip4"),
        "{table}"
    );
    let features = d.ok(&["show", "features"]);
    assert!(
        features.contains("ip4-conntrack") && features.contains("ip4-acl-out"),
        "{features}"
    );

    // The outside made inside: its flow is let in, and tracked, live.
    let inside = FIREWALL.replace("firewall = \"outside\"", "firewall = \"inside\"");
    let o = d.apply("inside.toml", &inside);
    assert!(o.status.success(), "{}", text(&o));
    wait_for("the outside's flow tracked", || {
        let ct = d.json("show conntrack");
        ct["result"]["conntrack"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["family"] == "ip4" && r["sessions"].as_u64() == Some(102))
    });
}
