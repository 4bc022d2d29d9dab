//! `sluice run` serving two memif interfaces to DPDK's testpmd: an L2
//! cross-connect between them, with testpmd forwarding back (io mode), so
//! a first burst circulates through Sluice and testpmd until stopped.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_testnet::{ChildGuard, require, unique};

/// A scratch directory removed on drop (sockets, config, DPDK's runtime).
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sluice_ctl(socket: &std::path::Path, words: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(words.split_whitespace())
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `rx_packets` and `tx_packets` of m0 and m1, from one `show interface
/// --json`.
fn counts(ctl: &std::path::Path) -> [(u64, u64); 2] {
    let json = sluice_ctl(ctl, "--json show interface");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    ["m0", "m1"].map(|name| {
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

#[test]
fn testpmd_and_sluice_pass_a_burst_back_and_forth_over_memif() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = Dir(std::env::temp_dir().join(unique("smif")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (a, b, ctl) = (
        dir.0.join("a.sock"),
        dir.0.join("b.sock"),
        dir.0.join("ctl.sock"),
    );
    let cfg = dir.0.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[interface]]\nname = \"m0\"\ndriver = \"memif\"\nsocket = \"{}\"\n\n\
             [[interface]]\nname = \"m1\"\ndriver = \"memif\"\nsocket = \"{}\"\n\n\
             [[xconnect]]\nfrom = \"m0\"\nto = \"m1\"\n\n[[xconnect]]\nfrom = \"m1\"\nto = \"m0\"\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let sluice = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "--duration", "60", "-c"])
            .arg(&cfg)
            .arg("--socket")
            .arg(&ctl)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let end = Instant::now() + Duration::from_secs(10);
    while !(a.exists() && b.exists() && ctl.exists()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(a.exists() && b.exists(), "memif sockets were not made");
    let prefix = unique("tpm");
    let testpmd = ChildGuard(
        Command::new("dpdk-testpmd")
            .args([
                "--no-pci",
                "--no-huge",
                "-m",
                "512",
                &format!("--file-prefix={prefix}"),
                "--lcores=0@0,1@0",
                &format!(
                    "--vdev=net_memif0,role=client,id=0,socket={},socket-abstract=no",
                    a.display()
                ),
                &format!(
                    "--vdev=net_memif1,role=client,id=0,socket={},socket-abstract=no",
                    b.display()
                ),
                "--",
                "--total-num-mbufs=32768",
                "--forward-mode=io",
                "--tx-first",
                // With stdin closed, testpmd without a stats period takes
                // "press enter to exit" as said at once.
                "--stats-period=1",
                "-a",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The burst testpmd sent first circulates: both interfaces keep counting.
    let end = Instant::now() + Duration::from_secs(20);
    let (mut m0, mut m1) = ((0, 0), (0, 0));
    while Instant::now() < end {
        [m0, m1] = counts(&ctl);
        if m0.0 > 100_000 && m1.0 > 100_000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(testpmd);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    assert!(
        m0.0 > 100_000 && m1.0 > 100_000,
        "packets went round: m0 {m0:?}, m1 {m1:?}"
    );
    // What one side received, the other sent (give or take those in flight).
    assert!(
        m0.0.abs_diff(m1.1) < 5_000,
        "m0 rx {} vs m1 tx {}",
        m0.0,
        m1.1
    );
    let link = sluice_ctl(&ctl, "show interface");
    assert!(link.contains("memif"), "{link}");
    drop(sluice);
}

/// Two Sluice processes joined by memif: one serves, the other connects as
/// the client (owning the memory, in rings of 256 buffers of 1 KiB, so
/// the larger IMIX frames cross as chains of two); a finite stream crosses
/// whole.
#[test]
fn sluice_to_sluice_over_memif() {
    let dir = Dir(std::env::temp_dir().join(unique("s2s")));
    std::fs::create_dir_all(&dir.0).unwrap();
    let sock = dir.0.join("m.sock");
    let (ctl_a, ctl_b) = (dir.0.join("a.ctl"), dir.0.join("b.ctl"));
    let server = dir.0.join("server.toml");
    let client = dir.0.join("client.toml");
    std::fs::write(
        &server,
        format!(
            "[[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n\n\
             [[interface]]\nname = \"m0\"\ndriver = \"memif\"\nsocket = \"{}\"\n\n\
             [[xconnect]]\nfrom = \"pg0\"\nto = \"m0\"\n\n\
             [[stream]]\nname = \"s\"\ninterface = \"pg0\"\ncount = 100000\nrate = 50000\n\
             src-ip = \"10.0.0.1\"\ndst-ip = \"10.1.0.0/24\"\nsize = \"imix\"\n",
            sock.display()
        ),
    )
    .unwrap();
    std::fs::write(
        &client,
        format!(
            "[[interface]]\nname = \"m0\"\ndriver = \"memif\"\nrole = \"client\"\nsocket = \"{}\"\n\
             ring-size = 256\nbuffer-size = 1024\n\n\
             [[interface]]\nname = \"sink0\"\ndriver = \"sink\"\n\n\
             [[xconnect]]\nfrom = \"m0\"\nto = \"sink0\"\n",
            sock.display()
        ),
    )
    .unwrap();
    let start = |cfg: &std::path::Path, ctl: &std::path::Path| {
        ChildGuard(
            Command::new(env!("CARGO_BIN_EXE_sluice"))
                .args(["run", "--duration", "60", "-c"])
                .arg(cfg)
                .arg("--socket")
                .arg(ctl)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    // The client first: it waits and retries until the server is there.
    let _b = start(&client, &ctl_b);
    std::thread::sleep(Duration::from_millis(300));
    let _a = start(&server, &ctl_a);
    let sunk = |ctl: &std::path::Path| {
        let json = sluice_ctl(ctl, "--json show interface");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        v["result"]["interfaces"]["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == "sink0"))
            .and_then(|r| r["tx_packets"].as_u64())
            .unwrap_or(0)
    };
    let end = Instant::now() + Duration::from_secs(20);
    // The client retries once a second: the stream (2 s) outlasts that.
    let mut last = 0;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        let now = sunk(&ctl_b);
        if now >= 40_000 && now == last {
            break;
        }
        last = now;
    }
    // The generator may start before the client is connected: what it sent
    // then is dropped on the server side, counted. Everything else crosses.
    let sent_json = sluice_ctl(&ctl_a, "--json show interface");
    let v: serde_json::Value = serde_json::from_str(&sent_json).unwrap_or_default();
    let m0_tx = v["result"]["interfaces"]["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "m0"))
        .and_then(|r| r["tx_packets"].as_u64())
        .unwrap_or(0);
    let got = sunk(&ctl_b);
    assert!(m0_tx > 40_000, "server sent {m0_tx}");
    assert_eq!(
        got, m0_tx,
        "what the server sent, the client's side received"
    );
    let link = sluice_ctl(&ctl_b, "show interface");
    assert!(link.contains("memif up"), "{link}");
}
