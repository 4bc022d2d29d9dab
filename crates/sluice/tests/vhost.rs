//! `sluice run` with vhost-user interfaces and real front ends:
//!
//! - two DPDK `net_virtio_user` ports in one testpmd, cross-connected
//!   through Sluice at L2, testpmd forwarding back (io mode), so a first
//!   burst circulates until stopped; one port with Sluice listening, the
//!   other with Sluice connecting (`role = "client"`, testpmd `server=1`);
//! - a QEMU guest with the stock virtio-net driver (see `vm.rs`).

#[path = "vhost/vm.rs"]
mod vm;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_testnet::{ChildGuard, require, unique};

/// A scratch directory removed on drop (sockets, config, DPDK's runtime).
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn new(prefix: &str) -> Dir {
        let d = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn sluice_ctl(socket: &Path, words: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(words.split_whitespace())
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `rx_packets` and `tx_packets` of each named interface, from one `show
/// interface --json`.
pub(crate) fn counts<const N: usize>(ctl: &Path, names: [&str; N]) -> [(u64, u64); N] {
    let json = sluice_ctl(ctl, "--json show interface");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    names.map(|name| {
        v["result"]["interfaces"]["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == name))
            .map_or((0, 0), |r| {
                (
                    r["rx_packets"].as_u64().unwrap_or(0),
                    r["tx_packets"].as_u64().unwrap_or(0),
                )
            })
    })
}

/// Starts `sluice run` on `cfg`, its control socket at `ctl`.
pub(crate) fn sluice_run(cfg: &Path, ctl: &Path, log: &Path) -> ChildGuard {
    ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "--duration", "120", "-c"])
            .arg(cfg)
            .arg("--socket")
            .arg(ctl)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

pub(crate) fn wait_for(what: &[&Path], secs: u64) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while !what.iter().all(|p| p.exists()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    what.iter().all(|p| p.exists())
}

#[test]
fn two_virtio_user_ports_cross_connected_through_sluice() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = Dir::new("svh");
    let (a, b, ctl) = (
        dir.0.join("a.sock"),
        dir.0.join("b.sock"),
        dir.0.join("ctl.sock"),
    );
    let cfg = dir.0.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[interface]]\nname = \"vm0\"\ndriver = \"vhost-user\"\nsocket = \"{}\"\n\n\
             [[interface]]\nname = \"vm1\"\ndriver = \"vhost-user\"\nsocket = \"{}\"\nrole = \"client\"\n\n\
             [[xconnect]]\nfrom = \"vm0\"\nto = \"vm1\"\n\n[[xconnect]]\nfrom = \"vm1\"\nto = \"vm0\"\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let sluice = sluice_run(&cfg, &ctl, &dir.0.join("sluice.log"));
    assert!(wait_for(&[&a, &ctl], 10), "vhost-user socket not made");
    let prefix = unique("tpv");
    let testpmd = ChildGuard(
        Command::new("dpdk-testpmd")
            .args([
                "--no-pci",
                "--no-huge",
                "-m",
                "512",
                &format!("--file-prefix={prefix}"),
                "--lcores=0@0,1@0",
                &format!("--vdev=net_virtio_user0,path={},queues=1", a.display()),
                &format!(
                    "--vdev=net_virtio_user1,path={},queues=1,server=1",
                    b.display()
                ),
                "--",
                "--total-num-mbufs=32768",
                "--forward-mode=io",
                "--tx-first",
                "--stats-period=1",
                "-a",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The burst testpmd sent first circulates: both interfaces keep
    // counting. (Sluice, the client of vm1, retries once a second.)
    let end = Instant::now() + Duration::from_secs(30);
    let (mut m0, mut m1) = ((0, 0), (0, 0));
    while Instant::now() < end {
        [m0, m1] = counts(&ctl, ["vm0", "vm1"]);
        if m0.0 > 100_000 && m1.0 > 100_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let link = sluice_ctl(&ctl, "show interface");
    drop(testpmd);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let log = std::fs::read_to_string(dir.0.join("sluice.log")).unwrap_or_default();
    assert!(
        m0.0 > 100_000 && m1.0 > 100_000,
        "packets went round: vm0 {m0:?}, vm1 {m1:?}\n{link}\n{log}"
    );
    // What one side received, the other sent (give or take those in
    // flight, and a guest ring full now and then).
    assert!(
        m0.0.abs_diff(m1.1) < 5_000,
        "vm0 rx {} vs vm1 tx {}",
        m0.0,
        m1.1
    );
    assert!(
        m1.0.abs_diff(m0.1) < 5_000,
        "vm1 rx {} vs vm0 tx {}",
        m1.0,
        m0.1
    );
    assert!(link.contains("vhost-user up"), "{link}");
    drop(sluice);
}
