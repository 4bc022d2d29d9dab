//! vhost-user, Sluice as the back end: against DPDK's `dpdk-testpmd` with
//! `net_virtio_user` (a real, independent front end), in both socket
//! roles, and against a scripted front end that breaks the protocol and
//! writes hostile rings.

// FRONTEND #[path = "vhost/frontend.rs"]
// FRONTEND mod frontend;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_graph::{Frame, InputState};
use sluice_io::vhost::{self, Role, VhostConfig, VhostRx, VhostTx, VhostUser};
use sluice_io::{Driver, LinkState, LinkStatus};
use sluice_testnet::{ChildGuard, Scratch, require, unique};

fn pool() -> Pool {
    Pool::new(&PoolConfig {
        buffers: 8192,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

/// The CPU testpmd runs on: the machine's last one.
fn testpmd_cpu() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| s.trim().rsplit(['-', ',']).next()?.parse().ok())
        .unwrap_or(0)
}

/// A running `dpdk-testpmd`, killed by its PID on drop, and its runtime
/// directory removed.
struct Testpmd {
    child: Option<ChildGuard>,
    prefix: String,
}

impl Testpmd {
    /// Stops testpmd as Ctrl-C would and returns its output, serving
    /// the control channel meanwhile (testpmd stops its rings first, and
    /// waits for the answers).
    fn stop(self, v: &mut VhostUser) -> std::process::Output {
        self.stop_with(v, |_| {})
    }

    /// As [`Testpmd::stop`], calling `between` before each poll (to drain
    /// a receive half while testpmd winds down).
    fn stop_with(
        mut self,
        v: &mut VhostUser,
        mut between: impl FnMut(&mut VhostUser),
    ) -> std::process::Output {
        let mut tp = self.child.take().expect("running");
        let pid = tp.0.id().to_string();
        sluice_testnet::run(&["kill", "-INT", &pid]);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            between(v);
            v.poll(Duration::from_micros(100));
            if let Ok(Some(_)) = tp.0.try_wait() {
                break;
            }
        }
        tp.wait_timeout(Duration::from_secs(1))
            .expect("testpmd exits on SIGINT")
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        drop(self.child.take());
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// Starts `dpdk-testpmd` with a `net_virtio_user` port on `sock`
/// (`server=1` when `listen`), forwarding in `mode`, statistics every
/// second.
fn testpmd(sock: &Path, listen: bool, mode: &str, extra: &[&str]) -> Testpmd {
    let cpu = testpmd_cpu();
    let prefix = unique("tv");
    let vdev = format!(
        "net_virtio_user0,path={},queues=1,server={}",
        sock.display(),
        listen as u8
    );
    let mut cmd = Command::new("dpdk-testpmd");
    cmd.args([
        "--no-pci",
        "--no-huge",
        "-m",
        "512",
        "--single-file-segments",
        &format!("--file-prefix={prefix}"),
        &format!("--lcores=0@{cpu},1@{cpu}"),
        &format!("--vdev={vdev}"),
        "--",
        "--total-num-mbufs=16384",
        &format!("--forward-mode={mode}"),
        "--stats-period=1",
        "-a",
    ])
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    Testpmd {
        child: Some(ChildGuard(cmd.spawn().expect("spawn dpdk-testpmd"))),
        prefix,
    }
}

/// Runs the interface until `done` says so or `timeout` passes.
fn drive(
    v: &mut VhostUser,
    timeout: Duration,
    mut done: impl FnMut(&mut VhostUser) -> bool,
) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        v.poll(Duration::from_micros(200));
        if done(v) {
            return true;
        }
    }
    false
}

fn up(v: &mut VhostUser, status: &LinkStatus) {
    assert!(
        drive(v, Duration::from_secs(30), |v| v.is_up()),
        "testpmd did not start its rings: {} ({:?})",
        v.stats().last_reason(),
        v.stats().snapshot()
    );
    assert_eq!(status.state(), LinkState::Up);
}

/// A UDP frame of `len` bytes numbered `seq` in its payload.
fn udp_frame(seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip_len = (len - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, 1]);
    f[30..34].copy_from_slice(&[10, 0, 0, 2]);
    f[34..36].copy_from_slice(&1234u16.to_be_bytes());
    f[36..38].copy_from_slice(&5678u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[46..].iter_mut().enumerate() {
        *b = (i as u32 ^ seq) as u8;
    }
    f
}

/// testpmd's last "RX-packets:" figure of its port statistics.
fn testpmd_rx_packets(out: &str) -> Option<u64> {
    out.lines()
        .rev()
        .filter(|l| l.contains("RX-missed"))
        .filter_map(|l| l.trim().strip_prefix("RX-packets:"))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .next()
}

/// The "TX-packets:" figure of testpmd's accumulated forwarding
/// statistics, printed when forwarding stops (before the ports stop).
fn testpmd_tx_packets(out: &str) -> Option<u64> {
    out.lines()
        .rev()
        .filter(|l| l.contains("TX-dropped"))
        .filter_map(|l| l.trim().strip_prefix("TX-packets:"))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .next()
}

fn listening(dir: &Scratch) -> (VhostUser, Vec<(VhostRx, VhostTx)>, Arc<LinkStatus>) {
    let status = LinkStatus::new();
    let (v, halves) = vhost::listen(&VhostConfig::new("vhost0", dir.join("vhost.sock")), &status)
        .expect("listen");
    assert_eq!(status.state(), LinkState::Down);
    (v, halves, status)
}

/// testpmd txonly → Sluice: every frame testpmd counts as sent arrives,
/// and each is testpmd's 64-byte UDP frame.
fn txonly_counts_exactly(role: Role) {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = Scratch::new("vhost");
    let sock = dir.join("vhost.sock");
    let status = LinkStatus::new();
    let mut config = VhostConfig::new("vhost0", &sock);
    config.role = role;
    let (tp, (mut v, mut halves)) = match role {
        Role::Server => {
            let s = vhost::listen(&config, &status).expect("listen");
            (testpmd(&sock, false, "txonly", &[]), s)
        }
        Role::Client => {
            let tp = testpmd(&sock, true, "txonly", &[]);
            (tp, vhost::connect(&config, &status).expect("connect"))
        }
    };
    up(&mut v, &status);
    let pool = pool();
    let mut cache = pool.cache(64);
    let rx = &mut halves[0].0;
    let mut udp = 0u64;
    let mut got = 0u64;
    let mut frame = Frame::new();
    let mut take = |cache: &mut BufCache, rx: &mut VhostRx| -> u64 {
        for _ in 0..64 {
            if let InputState::Busy(_) = rx.rx_burst(cache, &mut frame, 256) {
                for p in frame.iter() {
                    let f = p.data();
                    if !p.is_chained() && f.len() == 64 && f[12..14] == [0x08, 0x00] && f[23] == 17
                    {
                        udp += 1;
                    }
                }
                got += frame.len() as u64;
                cache.free_all(&mut frame);
            }
        }
        got
    };
    // Receive a while, then stop testpmd, taking what comes until it
    // stops the rings.
    drive(&mut v, Duration::from_secs(20), |_| {
        take(&mut cache, rx) >= 20_000
    });
    let out = tp.stop_with(&mut v, |_| {
        take(&mut cache, rx);
    });
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let sent = testpmd_tx_packets(&text).expect("testpmd printed its statistics");
    assert!(
        got > 1000,
        "received {got}: {:?} {}; testpmd said: {text}",
        v.stats().snapshot(),
        v.stats().last_reason()
    );
    assert_eq!(
        got, sent,
        "Sluice received every frame testpmd sent; testpmd said: {text}"
    );
    assert_eq!(udp, got, "every frame is testpmd's 64-byte UDP");
    let c = v.stats().snapshot();
    assert_eq!((c.rx_bad_chains, c.rx_no_buffer), (0, 0), "{c:?}");
    cache.flush();
    drop(halves);
    drop(v);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

#[test]
fn testpmd_txonly_reaches_sluice_server() {
    txonly_counts_exactly(Role::Server);
}

#[test]
fn sluice_client_reaches_testpmd_server_txonly() {
    txonly_counts_exactly(Role::Client);
}

#[test]
fn sluice_reaches_testpmd_rxonly() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = Scratch::new("vhost");
    let (mut v, mut halves, status) = listening(&dir);
    let tp = testpmd(&dir.join("vhost.sock"), false, "rxonly", &[]);
    up(&mut v, &status);
    let pool = pool();
    let mut cache = pool.cache(64);
    let tx = &mut halves[0].1;
    const N: u64 = 20_000;
    let mut sent = 0u64;
    let mut frame = Frame::new();
    let ok = drive(&mut v, Duration::from_secs(20), |_| {
        while frame.len() < 32 && sent + (frame.len() as u64) < N {
            let seq = (sent + frame.len() as u64) as u32;
            frame.push(cache.alloc_from(&udp_frame(seq, 64)).unwrap());
        }
        let n = frame.len() as u64;
        let failed = tx.tx_burst(&mut cache, &mut frame) as u64;
        sent += n - failed;
        sent >= N
    });
    assert!(ok, "sent only {sent}: {:?}", v.stats().snapshot());
    drive(&mut v, Duration::from_millis(2500), |_| false);
    let out = tp.stop(&mut v);
    let text = String::from_utf8_lossy(&out.stdout);
    let rx = testpmd_rx_packets(&text).expect("testpmd printed its statistics");
    assert_eq!(rx, N, "testpmd received what Sluice sent");
    cache.flush();
    drop(halves);
    drop(v);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// Sluice sends numbered frames of many sizes (jumbo ones over several
/// receive buffers) and testpmd, forwarding in `io` mode on its one port,
/// sends each back: every one returns once, byte for byte.
#[test]
fn testpmd_io_returns_what_sluice_sends() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = Scratch::new("vhost");
    let (mut v, mut halves, status) = listening(&dir);
    let tp = testpmd(
        &dir.join("vhost.sock"),
        false,
        "io",
        &[
            "--port-topology=loop",
            "--max-pkt-len=9600",
            "--enable-scatter",
        ],
    );
    up(&mut v, &status);
    let pool = pool();
    let mut cache = pool.cache(64);
    let (rx, tx) = &mut halves[0];
    const N: u32 = 5000;
    let sizes = [60usize, 64, 128, 594, 1024, 1514, 4000, 9000];
    let expect = |seq: u32| udp_frame(seq, sizes[seq as usize % sizes.len()]);
    // Probe until a frame comes back (testpmd flushes its queue when
    // forwarding starts).
    let mut probe = Frame::new();
    let forwarding = drive(&mut v, Duration::from_secs(20), |_| {
        probe.push(cache.alloc_from(&udp_frame(u32::MAX, 64)).unwrap());
        tx.tx_burst(&mut cache, &mut probe);
        std::thread::sleep(Duration::from_millis(5));
        let mut f = Frame::new();
        rx.rx_burst(&mut cache, &mut f, 256);
        let echoed = !f.is_empty();
        cache.free_all(&mut f);
        echoed
    });
    if !forwarding {
        let c = v.stats().snapshot();
        let out = tp.stop(&mut v);
        panic!(
            "testpmd never forwarded a probe: {c:?}; testpmd said: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut next = 0u32;
    let mut back = vec![false; N as usize];
    let mut got = 0usize;
    let mut wrong = 0;
    let mut frame = Frame::new();
    drive(&mut v, Duration::from_secs(30), |_| {
        for _ in 0..32 {
            while next < N && next as usize - got < 128 && frame.len() < 32 {
                frame.push(cache.alloc_from(&expect(next)).unwrap());
                next += 1;
            }
            let unsent = tx.tx_burst(&mut cache, &mut frame);
            next -= unsent as u32;
            let mut rframe = Frame::new();
            rx.rx_burst(&mut cache, &mut rframe, 256);
            for p in rframe.iter() {
                let mut d = Vec::new();
                p.copy_to(&mut d);
                let seq = u32::from_be_bytes(d[42..46].try_into().unwrap());
                if seq == u32::MAX {
                    continue;
                }
                if seq < N && d == expect(seq) && !back[seq as usize] {
                    back[seq as usize] = true;
                    got += 1;
                } else {
                    wrong += 1;
                }
            }
            cache.free_all(&mut rframe);
        }
        got as u32 >= N
    });
    assert_eq!(wrong, 0, "frames came back changed or twice");
    if got as u32 != N {
        let out = tp.stop(&mut v);
        panic!(
            "{got} of {N} frames came back; sent up to {next}; {:?}; testpmd said: {}",
            v.stats().snapshot(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    cache.flush();
    drop(halves);
    drop(v);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}
