//! Test hosts for Sluice's tests: Linux network namespaces and veth pairs
//! that a test makes for itself and that are removed when the guard drops,
//! on success and on panic alike.
//!
//! A [`Host`] is a namespace with one veth leg inside it (addressed, with a
//! default route) and the other leg left in the test's own namespace for
//! Sluice to attach to. Names are short and unique per process, so tests
//! run in parallel without meeting.
//!
//! Under `CI=true` a missing program or missing root makes the test fail;
//! elsewhere it is skipped with a note (see [`require`], [`require_root`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether this is a CI run, where nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn skip_or_fail(what: &str) -> bool {
    assert!(!ci(), "{what}, and CI=true forbids skipping");
    eprintln!("skipping: {what}");
    false
}

/// Whether `program` is on the PATH. Missing: under CI the test fails,
/// elsewhere it returns false so the test can skip.
pub fn require(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found || skip_or_fail(&format!("{program} is not installed"))
}

/// Whether the test runs as root (needed for namespaces, veth, raw
/// sockets). Not root: under CI the test fails, elsewhere it skips.
pub fn require_root() -> bool {
    let uid = Command::new("id").arg("-u").output();
    let root = uid.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    root || skip_or_fail("not running as root")
}

/// A name no other test of this process (or of a recent run) has: a
/// prefix, the process id and a counter, at most 15 bytes (the kernel's
/// limit for device names).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("{prefix}{}x{n}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "name {name} too long for a device");
    name
}

/// Runs a command and returns its output, failing the test with its
/// stderr if it fails.
pub fn run(cmd: &[&str]) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "`{}` failed: {}",
        cmd.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns its output, whatever its status.
pub fn output(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cmd[0]))
}

/// The bytes the receiver counted (`end.sum_received.bytes`) in an
/// `iperf3 -J` report; 0 if the report has none.
pub fn iperf3_received_bytes(report: &str) -> u64 {
    let at = report.find("\"sum_received\"").unwrap_or(0);
    let rest = &report[at..];
    let value = rest.find("\"bytes\":").map_or("", |i| &rest[i + 8..]);
    let digits: String = value
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().unwrap_or(0)
}

/// A directory of the test's own under the system's temporary directory,
/// removed with everything in it when the guard drops.
#[derive(Debug)]
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    /// A fresh directory named after `prefix` (see [`unique`]).
    pub fn new(prefix: &str) -> Scratch {
        let p = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("cannot make {}: {e}", p.display()));
        Scratch(p)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (by its PID) and reaped when the guard drops.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Waits up to `timeout` for the child to end on its own; its output
    /// if it did.
    pub fn wait_timeout(mut self, timeout: Duration) -> Option<Output> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            match self.0.try_wait() {
                Ok(Some(_)) => {
                    let child = std::mem::replace(
                        &mut self.0,
                        Command::new("true").spawn().expect("spawn true"),
                    );
                    return child.wait_with_output().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return None,
            }
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace, deleted on drop (which also deletes every device
/// inside it).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Makes a new namespace with loopback up.
    pub fn new() -> Netns {
        let ns = Netns {
            name: unique("slns"),
        };
        run(&["ip", "netns", "add", &ns.name]);
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (for `ip netns exec`, or a TAP's `netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    fn command(&self, cmd: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(cmd);
        c
    }

    /// Runs a command inside the namespace; fails the test if it fails.
    pub fn run(&self, cmd: &[&str]) -> String {
        let out = self.output(cmd);
        assert!(
            out.status.success(),
            "`{}` in {} failed: {}{}",
            cmd.join(" "),
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command inside the namespace, whatever its status.
    pub fn output(&self, cmd: &[&str]) -> Output {
        self.command(cmd)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ip netns exec: {e}"))
    }

    /// Starts a command inside the namespace, killed when the guard drops.
    pub fn spawn(&self, cmd: &[&str]) -> ChildGuard {
        ChildGuard(
            self.command(cmd)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", cmd[0])),
        )
    }
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// A veth pair; deleting one end (on drop) deletes both.
#[derive(Debug)]
pub struct Veth {
    /// The end that stays in the test's namespace.
    pub outer: String,
    /// The other end.
    pub inner: String,
}

impl Veth {
    /// Makes a pair, both ends up, in the test's namespace.
    pub fn new() -> Veth {
        Veth::with_queues(1)
    }

    /// A pair whose ends have `queues` receive and transmit queues each
    /// (flows spread over them), for multi-queue drivers.
    pub fn with_queues(queues: u32) -> Veth {
        let outer = unique("slv");
        let inner = format!("{outer}i");
        assert!(inner.len() <= 15);
        let q = queues.to_string();
        run(&[
            "ip",
            "link",
            "add",
            &outer,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &inner,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
        ]);
        let v = Veth { outer, inner };
        run(&["ip", "link", "set", &v.outer, "up"]);
        // No IPv6 chatter (router solicitations, DAD) from the outer end:
        // Sluice owns it, not the kernel.
        let _ = output(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{}.disable_ipv6=1", v.outer),
        ]);
        v
    }
}

impl Default for Veth {
    fn default() -> Self {
        Veth::new()
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer])
            .stderr(Stdio::null())
            .status();
    }
}

/// A Linux host: a namespace holding the inner end of a veth, with
/// addresses and default routes towards a gateway on the outer side.
#[derive(Debug)]
pub struct Host {
    /// The veth; `link.outer` is where Sluice attaches. Dropped first.
    pub link: Veth,
    /// The host's namespace.
    pub ns: Netns,
}

impl Host {
    /// A host with `v4` (e.g. `10.1.0.2/24`) and `v6` (e.g.
    /// `fd00:1::2/64`) on its interface `eth0`, default routes via `gw4`
    /// and `gw6`.
    pub fn new(v4: &str, gw4: &str, v6: &str, gw6: &str) -> Host {
        Host::with_queues(1, v4, gw4, v6, gw6)
    }

    /// [`Host::new`] on a veth with `queues` queues a side.
    pub fn with_queues(queues: u32, v4: &str, gw4: &str, v6: &str, gw6: &str) -> Host {
        let link = Veth::with_queues(queues);
        let ns = Netns::new();
        run(&["ip", "link", "set", &link.inner, "netns", ns.name()]);
        ns.run(&["ip", "link", "set", &link.inner, "name", "eth0"]);
        // Addresses at once, without duplicate-address detection's delay.
        ns.run(&["sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=0"]);
        ns.run(&["ip", "link", "set", "eth0", "up"]);
        ns.run(&["ip", "addr", "add", v4, "dev", "eth0"]);
        ns.run(&["ip", "-6", "addr", "add", v6, "dev", "eth0", "nodad"]);
        ns.run(&["ip", "route", "add", "default", "via", gw4]);
        ns.run(&["ip", "-6", "route", "add", "default", "via", gw6]);
        Host { link, ns }
    }

    /// The host's MAC address on `eth0`.
    pub fn mac(&self) -> String {
        let out = self.ns.run(&["cat", "/sys/class/net/eth0/address"]);
        out.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf3_reports_are_read() {
        let r = r#"{"end": {"sum_sent": {"bytes": 5}, "sum_received": {"bytes":	1234, "x": 1}}}"#;
        assert_eq!(iperf3_received_bytes(r), 1234);
        assert_eq!(iperf3_received_bytes("{}"), 0);
    }

    #[test]
    fn names_are_unique_and_short() {
        let a = unique("slv");
        let b = unique("slv");
        assert_ne!(a, b);
        assert!(a.len() <= 15);
    }

    #[test]
    fn a_host_is_made_and_removed() {
        if !require_root() || !require("ip") {
            return;
        }
        let name;
        let outer;
        {
            let h = Host::new("10.99.0.2/24", "10.99.0.1", "fd00:99::2/64", "fd00:99::1");
            name = h.ns.name().to_string();
            outer = h.link.outer.clone();
            assert!(h.ns.run(&["ip", "addr"]).contains("10.99.0.2"));
            assert_eq!(h.mac().len(), 17);
        }
        assert!(!run(&["ip", "netns", "list"]).contains(&name));
        assert!(!output(&["ip", "link", "show", &outer]).status.success());
    }
}
