//! The running configuration of a live `sluice run`: every change kept in
//! it and (with `--state`) saved, a restarted Sluice coming back as it
//! was, `diff`/`apply` and SIGHUP moving real traffic, and every bad
//! request, bad file or failed save leaving state and traffic as they were.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice_testnet::{ChildGuard, Scratch};

/// pg0 sends 20 kpps to 10.9.0.7, routed out of sink0.
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
dst-ip = "10.9.0.7"
"#;

/// [`CONFIG`] with the route moved to sink1.
fn moved() -> String {
    CONFIG.replace(
        "interface = \"sink0\"\nvia-mac = \"02:00:00:00:00:01\"",
        "interface = \"sink1\"\nvia-mac = \"02:00:00:00:00:02\"",
    )
}

/// A `sluice run` in a scratch directory: its configuration file, its
/// socket, its log; killed on drop.
struct Daemon {
    child: Option<ChildGuard>,
    socket: PathBuf,
    config: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts `sluice run -c config.toml` in `dir` with `extra` arguments.
    fn start(dir: &Scratch, extra: &[&str]) -> Daemon {
        let config = dir.join("config.toml");
        if !config.exists() {
            std::fs::write(&config, CONFIG).unwrap();
        }
        let socket = dir.join("run/sluice.sock");
        let log = dir.join(&format!(
            "log-{}",
            std::fs::read_dir(dir.path()).unwrap().count()
        ));
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "--duration", "60", "-c"])
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = ChildGuard(child);
        let end = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if let Ok(Some(_)) = child.0.try_wait() {
                let out = child.wait_timeout(Duration::from_secs(1)).unwrap();
                panic!("sluice did not start: {}", text(&out));
            }
            assert!(Instant::now() < end, "no control socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            child: Some(child),
            socket,
            config,
            log,
        }
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

    /// A command that must succeed; its output.
    fn ok(&self, words: &str) -> String {
        let w: Vec<&str> = words.split_whitespace().collect();
        let o = self.ctl(&w);
        assert!(o.status.success(), "`{words}`: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A command that must be refused (exit 1); its message.
    fn refused(&self, words: &[&str]) -> String {
        let o = self.ctl(words);
        assert_eq!(o.status.code(), Some(1), "`{words:?}`: {}", text(&o));
        text(&o)
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

    /// Whether `interface` is sending now.
    fn sending(&self, interface: &str) -> bool {
        let before = self.tx(interface);
        std::thread::sleep(Duration::from_millis(150));
        self.tx(interface) > before
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().0.id().to_string();
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// SIGTERM, and the exit: it must be clean.
    fn stop(mut self) -> String {
        self.signal("-TERM");
        let out = self
            .child
            .take()
            .unwrap()
            .wait_timeout(Duration::from_secs(10))
            .expect("sluice stops on SIGTERM");
        assert!(out.status.success(), "{}", text(&out));
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
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

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn changes_are_saved_and_a_restart_comes_back_as_it_was() {
    let dir = Scratch::new("slst");
    let state = dir.join("state.toml");
    let d = Daemon::start(&dir, &["--state", arg(&state)]);
    assert!(d.log().contains("every change is saved to"), "{}", d.log());
    d.ok("set interface ip address sink1 10.1.0.1/24");
    d.ok("set interface ip address sink1 2001:db8:1::1/64");
    d.ok("ip neighbor add sink1 10.1.0.5 02:00:00:00:00:05");
    d.ok("ip route add 10.8.0.0/16 via 10.1.0.5 dev sink1");
    d.ok("ip route add 10.7.0.0/16 drop");
    d.ok("ip route add 10.6.0.0/16 drop");
    d.ok("ip route del 10.6.0.0/16");
    d.ok("set interface state sink1 down");
    let config = d.ok("show running-config");
    let fib = d.ok("show ip fib");
    for line in [
        "address = [\"10.1.0.1/24\", \"2001:db8:1::1/64\"]",
        "state = \"down\"",
        "prefix = \"10.8.0.0/16\"",
        "ip = \"10.1.0.5\"",
    ] {
        assert!(config.contains(line), "no `{line}` in:\n{config}");
    }
    assert!(!config.contains("10.6.0.0"), "{config}");
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        config,
        "the state file holds the running configuration"
    );
    d.stop();

    // The configuration file says otherwise now: the state wins.
    std::fs::write(dir.join("config.toml"), moved()).unwrap();
    let again = Daemon::start(&dir, &["--state", arg(&state)]);
    assert!(
        again
            .log()
            .contains("restoring the configuration saved there"),
        "{}",
        again.log()
    );
    assert_eq!(again.ok("show running-config"), config);
    assert_eq!(again.ok("show ip fib"), fib);
    assert!(again.ok("show interface").contains("sink admin-down"));
    assert!(again.ok("show ip neighbors").contains("10.1.0.5"));
    // And it forwards as it did: out of sink0, as the saved route says.
    wait_for("traffic on sink0", || again.sending("sink0"));
}

#[test]
fn without_state_nothing_is_saved() {
    let dir = Scratch::new("slnost");
    let d = Daemon::start(&dir, &[]);
    d.ok("ip route add 10.7.0.0/16 drop");
    assert!(d.ok("show running-config").contains("10.7.0.0/16"));
    d.stop();
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("log-") && n != "run")
        .collect();
    assert_eq!(files, ["config.toml"]);
    let d = Daemon::start(&dir, &[]);
    assert!(!d.ok("show running-config").contains("10.7.0.0/16"));
}

#[test]
fn a_corrupt_state_file_refuses_to_start_naming_file_and_line() {
    let dir = Scratch::new("slcor");
    std::fs::write(dir.join("config.toml"), CONFIG).unwrap();
    let state = dir.join("state.toml");
    let corrupt = format!("{CONFIG}\n[[route]]\nprefix = \"10.1.2.3/8\"\ndrop = true\n");
    let line = corrupt
        .lines()
        .position(|l| l.contains("10.1.2.3"))
        .unwrap()
        + 1;
    std::fs::write(&state, corrupt).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "--duration", "5", "--socket", "none", "-c"])
        .arg(dir.join("config.toml"))
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(&format!("state file {} is corrupt", state.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("line {line}: `route[1].prefix`")),
        "{out}"
    );
    assert!(!out.contains("control API"), "nothing started: {out}");
}

#[test]
fn diff_shows_the_plan_and_apply_moves_live_traffic() {
    let dir = Scratch::new("slapp");
    let state = dir.join("state.toml");
    let d = Daemon::start(&dir, &["--state", arg(&state)]);
    wait_for("traffic on sink0", || d.sending("sink0"));
    let file = dir.join("wanted.toml");
    std::fs::write(
        &file,
        moved() + "\n[[neighbor]]\ninterface = \"sink0\"\nip = \"10.0.0.9\"\nmac = \"02:00:00:00:00:09\"\n",
    )
    .unwrap();
    let plan = d.ok(&format!("diff {}", file.display()));
    assert_eq!(
        plan,
        "~ route 10.9.0.0/16: via-mac 02:00:00:00:00:01 dev sink0 -> via-mac 02:00:00:00:00:02 dev sink1\n\
         + neighbor 10.0.0.9 on sink0 at 02:00:00:00:00:09\n\
         2 change(s), all can be applied live\n"
    );
    assert!(d.sending("sink0"), "a diff changes nothing");
    assert!(!d.sending("sink1"));
    assert_eq!(d.ok(&format!("apply {}", file.display())), plan);
    wait_for("traffic on sink1", || d.sending("sink1"));
    assert!(!d.sending("sink0"), "all of it moved");
    assert!(d.ok("show ip neighbors").contains("10.0.0.9"));
    assert_eq!(
        d.ok(&format!("diff {}", file.display())),
        "no changes\n",
        "applied whole"
    );
    let applied = d.ok("show running-config");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), applied);

    // What needs a restart: refused, nothing applied, not even the rest.
    let restart = dir.join("restart.toml");
    std::fs::write(
        &restart,
        CONFIG.to_string()
            + "\n[[interface]]\nname = \"sink2\"\ndriver = \"sink\"\n[workers]\ncount = 2\n",
    )
    .unwrap();
    let plan = d.ok(&format!("diff {}", restart.display()));
    assert!(
        plan.contains("+ interface sink2 (sink)  (needs restart)"),
        "{plan}"
    );
    assert!(
        plan.contains("~ workers.count: 1 -> 2  (needs restart)"),
        "{plan}"
    );
    assert!(plan.contains("~ route 10.9.0.0/16"), "{plan}");
    let e = d.refused(&["apply", arg(&restart)]);
    assert!(
        e.contains("2 change(s) need a restart, so nothing was applied"),
        "{e}"
    );
    assert!(e.contains("sink2"), "{e}");
    assert!(
        d.sending("sink1") && !d.sending("sink0"),
        "traffic untouched"
    );
    assert_eq!(d.ok("show running-config"), applied);

    // A garbage file, and one that is wrong on line 3.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, b"\x00\xff[[[ not toml").unwrap();
    let o = d.ctl(&["apply", arg(&bad)]);
    assert_eq!(o.status.code(), Some(2), "not even text: {}", text(&o));
    std::fs::write(&bad, "\u{1}garbage ]]] = = \n").unwrap();
    let e = d.refused(&["apply", arg(&bad)]);
    assert!(
        e.contains(&format!(
            "{} refused: TOML parse error at line 1",
            bad.display()
        )),
        "{e}"
    );
    std::fs::write(&bad, "[[interface]]\nname = \"pg0\"\ndriver = \"warp\"\n").unwrap();
    let e = d.refused(&["apply", arg(&bad)]);
    assert!(
        e.contains(&format!(
            "{} refused: line 3: `interface[0].driver`",
            bad.display()
        )),
        "{e}"
    );
    std::fs::write(&bad, "[[[ not toml").unwrap();
    let e = d.refused(&["diff", arg(&bad)]);
    assert!(e.contains("line 1"), "{e}");
    assert_eq!(d.ok("show running-config"), applied);
    assert!(d.sending("sink1"), "still forwarding");
}

#[test]
fn sighup_rereads_the_config_file_and_sigterm_still_stops() {
    let dir = Scratch::new("slhup");
    let d = Daemon::start(&dir, &[]);
    wait_for("traffic on sink0", || d.sending("sink0"));
    std::fs::write(&d.config, moved()).unwrap();
    d.signal("-HUP");
    wait_for("traffic on sink1", || d.sending("sink1"));
    wait_for("the plan in the log", || d.log().contains("SIGHUP"));
    assert!(d.log().contains("~ route 10.9.0.0/16"), "{}", d.log());
    // A file that needs a restart: logged, nothing changed.
    std::fs::write(&d.config, moved().replace("\"sink1\"", "\"sinkX\"")).unwrap();
    d.signal("-HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(d.sending("sink1"), "traffic untouched");
    assert!(d.ok("show running-config").contains("name = \"sink1\""));
    let log = d.stop();
    assert!(log.contains("packets in"), "stopped cleanly: {log}");
}

#[test]
fn a_save_that_fails_undoes_the_change() {
    let dir = Scratch::new("slsave");
    std::fs::create_dir(dir.join("keep")).unwrap();
    let state = dir.join("keep/state.toml");
    let d = Daemon::start(&dir, &["--state", arg(&state)]);
    wait_for("traffic on sink0", || d.sending("sink0"));
    let config = d.ok("show running-config");
    let fib = d.ok("show ip fib");
    // The state's directory becomes a file: nothing can be written there
    // (root or not).
    std::fs::remove_dir_all(dir.join("keep")).unwrap();
    std::fs::write(dir.join("keep"), "not a directory").unwrap();
    for words in [
        "ip route add 10.9.0.0/16 via-mac 02:00:00:00:00:02 dev sink1",
        "set interface ip address sink1 10.9.0.7/24",
        "set interface state sink0 down",
        "ip neighbor add sink1 10.1.0.5 02:00:00:00:00:05",
    ] {
        let w: Vec<&str> = words.split_whitespace().collect();
        let e = d.refused(&w);
        assert!(e.contains("the change was undone"), "`{words}`: {e}");
        assert!(e.contains("keep/.state.toml.tmp"), "`{words}`: {e}");
        assert_eq!(d.ok("show running-config"), config, "`{words}`");
        assert_eq!(d.ok("show ip fib"), fib, "`{words}`");
        assert!(!d.ok("show interface").contains("admin-down"));
        assert!(!d.ok("show ip neighbors").contains("10.1.0.5"));
        assert!(d.sending("sink0") && !d.sending("sink1"), "`{words}`");
    }
    let file = dir.join("wanted.toml");
    std::fs::write(&file, moved()).unwrap();
    let e = d.refused(&["apply", arg(&file)]);
    assert!(e.contains("the change was undone"), "{e}");
    assert_eq!(d.ok("show ip fib"), fib);
    assert!(d.sending("sink0") && !d.sending("sink1"));
}

#[test]
fn an_address_given_live_takes_local_delivery_and_goes_again() {
    let dir = Scratch::new("sladdr");
    let d = Daemon::start(&dir, &[]);
    wait_for("traffic on sink0", || d.sending("sink0"));
    // The stream's destination becomes ours: delivered locally (no UDP
    // listener), no longer forwarded.
    d.ok("set interface ip address sink1 10.9.0.7/24");
    let fib = d.ok("show ip fib");
    assert!(
        fib.contains("10.9.0.0/24") && fib.contains("connected dev sink1"),
        "{fib}"
    );
    assert!(
        fib.contains("10.9.0.7/32") && fib.contains("local dev sink1"),
        "{fib}"
    );
    wait_for("sink0 to stop", || !d.sending("sink0"));
    wait_for("local delivery", || {
        d.ok("show errors")
            .contains("UDP for this host: no listener")
    });
    d.ok("set interface ip address sink1 10.9.0.7/24 del");
    wait_for("forwarding again", || d.sending("sink0"));
    let fib = d.ok("show ip fib");
    assert!(!fib.contains("sink1"), "its routes went with it: {fib}");
}

#[test]
fn bad_requests_name_the_field_and_leave_state_and_traffic_untouched() {
    let dir = Scratch::new("slbad");
    let state = dir.join("state.toml");
    let d = Daemon::start(&dir, &["--state", arg(&state)]);
    d.ok("set interface ip address sink1 10.1.0.1/24");
    d.ok("ip neighbor add sink1 10.1.0.5 02:00:00:00:00:05");
    wait_for("traffic on sink0", || d.sending("sink0"));
    let config = d.ok("show running-config");
    let fib = d.ok("show ip fib");
    let saved = std::fs::read(&state).unwrap();
    for (words, why) in [
        (
            "set interface ip address nosuch 10.2.0.1/24",
            "interface `nosuch` does not exist",
        ),
        (
            "set interface ip address sink1 10.2.0.1/33",
            "bad prefix length",
        ),
        ("set interface ip address sink1 banana", "address `banana`"),
        (
            "set interface ip address sink0 10.1.0.1/24",
            "configured twice",
        ),
        (
            "set interface ip address pg0 10.2.0.1/24",
            "cannot transmit",
        ),
        (
            "set interface ip address sink1 10.2.0.1/24 del",
            "not on `sink1`",
        ),
        ("set interface state nosuch down", "does not exist"),
        ("ip route add 10.9.0.0/33 dev sink1", "prefix"),
        ("ip route add 10.9.0.1/16 dev sink1", "host bits"),
        (
            "ip route add 10.9.0.0/16 dev nosuch",
            "`nosuch` does not exist",
        ),
        ("ip route del 10.5.0.0/16", "no route 10.5.0.0/16"),
        ("ip route del 10.1.0.0/24", "remove the address"),
        (
            "ip neighbor add sink1 10.1.0.5 02:00:00:00:00:06",
            "already exists",
        ),
        (
            "ip neighbor add nosuch 10.1.0.6 02:00:00:00:00:06",
            "does not exist",
        ),
        ("ip neighbor add sink1 10.1.0.6 banana", "mac `banana`"),
        ("ip neighbor del sink1 10.1.0.6", "no static neighbor"),
    ] {
        let w: Vec<&str> = words.split_whitespace().collect();
        let e = d.refused(&w);
        assert!(e.contains(why), "`{words}`: {e}");
        assert_eq!(d.ok("show running-config"), config, "`{words}`");
        assert_eq!(d.ok("show ip fib"), fib, "`{words}`");
    }
    assert_eq!(std::fs::read(&state).unwrap(), saved, "nothing saved");
    assert!(
        d.sending("sink0") && !d.sending("sink1"),
        "traffic untouched"
    );
}

#[test]
fn show_bridge_domain_lists_ports_bvi_and_macs() {
    let dir = Scratch::new("slbd");
    std::fs::write(
        dir.join("config.toml"),
        r#"
[[interface]]
name = "pg0"
driver = "pg"
[[stream]]
name = "slow"
interface = "pg0"
rate = 100
src-ip = "10.0.0.1"
dst-ip = "10.3.0.1"
[[interface]]
name = "sink0"
driver = "sink"
[[interface]]
name = "sink1"
driver = "sink"
[[interface]]
name = "bvi0"
driver = "bvi"
address = ["10.0.0.254/24"]
[[bridge]]
id = 7
port = [{ interface = "sink0" }, { interface = "sink1" }]
bvi = "bvi0"
flood = false
"#,
    )
    .unwrap();
    let d = Daemon::start(&dir, &[]);
    let bd = d.ok("show bridge-domain");
    let row = bd.lines().nth(1).unwrap_or_default().to_string();
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        words,
        ["7", "1", "on", "off", "bvi0", "sink0", "sink1"],
        "{bd}"
    );
    let json = d.ok("--json show bridge-domain");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["result"]["bridge-domains"]["rows"][0]["bvi"], "bvi0",
        "{json}"
    );
}
