//! memif in the server role: against DPDK's `dpdk-testpmd` (a real,
//! independent implementation of the protocol) and against a scripted
//! client that breaks the protocol at every step.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_graph::{Frame, InputState};
use sluice_io::memif::{self, MemifConfig, MemifRx, MemifServer, MemifTx};
use sluice_io::{Driver, LinkState, LinkStatus};
use sluice_testnet::{ChildGuard, require, unique};

fn pool() -> Pool {
    Pool::new(&PoolConfig {
        buffers: 8192,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

/// A directory of the test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let p = std::env::temp_dir().join(unique("memif"));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn sock(&self) -> PathBuf {
        self.0.join("memif.sock")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CPU testpmd runs on: the last one, away from the test thread if
/// there are two.
fn testpmd_cpu() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
}

/// Starts `dpdk-testpmd` as a memif client of `sock` in `mode`
/// (`txonly`, `rxonly`, `io`), with its statistics printed every second.
/// Its stdin is kept open: testpmd exits when it reads end of file.
fn testpmd(sock: &Path, mode: &str, extra: &[&str]) -> ChildGuard {
    let cpu = testpmd_cpu();
    let prefix = unique("tp");
    let vdev = format!(
        "net_memif0,role=client,id=0,socket={},socket-abstract=no",
        sock.display()
    );
    let mut cmd = Command::new("dpdk-testpmd");
    cmd.args([
        "--no-pci",
        "--no-huge",
        "-m",
        "512",
        &format!("--file-prefix={prefix}"),
        &format!("--lcores=0@{cpu},1@{cpu}"),
        &format!("--vdev={vdev}"),
        "--",
        "--total-num-mbufs=32768",
        &format!("--forward-mode={mode}"),
        "--stats-period=1",
        "-a",
    ])
    .args(extra)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    ChildGuard(cmd.spawn().expect("spawn dpdk-testpmd"))
}

/// Runs the server until `done` says so or `timeout` passes; whether
/// `done` did.
fn drive(
    server: &mut MemifServer,
    timeout: Duration,
    mut done: impl FnMut(&mut MemifServer) -> bool,
) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        server.poll(Duration::from_micros(200));
        if done(server) {
            return true;
        }
    }
    false
}

/// Receives until `n` packets came or `timeout` passes.
fn receive(
    server: &mut MemifServer,
    rx: &mut MemifRx,
    cache: &mut BufCache,
    n: usize,
    timeout: Duration,
    mut each: impl FnMut(&[u8]),
) -> usize {
    let mut frame = Frame::new();
    let mut got = 0;
    drive(server, timeout, |_| {
        for _ in 0..64 {
            if let InputState::Busy(_) = rx.rx_burst(cache, &mut frame, 256) {
                for p in frame.iter() {
                    each(p.data());
                }
                got += frame.len();
                cache.free_all(&mut frame);
            }
        }
        got >= n
    });
    got
}

/// A 64-byte UDP frame numbered `seq` in its payload.
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
    f
}

/// Stops testpmd as Ctrl-C would (by its PID: with `--stats-period` it
/// does not read stdin) and returns its output.
fn stop(tp: ChildGuard) -> std::process::Output {
    let pid = tp.0.id().to_string();
    sluice_testnet::run(&["kill", "-INT", &pid]);
    tp.wait_timeout(Duration::from_secs(10))
        .expect("testpmd exits on SIGINT")
}

/// testpmd's last "RX-packets:" figure of its port statistics (the line
/// with "RX-missed", printed every `--stats-period`; the forwarding
/// statistics printed at exit leave out packets of the first bursts).
fn testpmd_rx_packets(out: &str) -> Option<u64> {
    out.lines()
        .rev()
        .filter(|l| l.contains("RX-missed"))
        .filter_map(|l| l.trim().strip_prefix("RX-packets:"))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .next()
}

#[test]
fn testpmd_txonly_client_reaches_sluice_server() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let status = LinkStatus::new();
    let (mut server, mut halves) =
        memif::listen(&MemifConfig::new("memif0", dir.sock()), &status).expect("listen");
    assert_eq!(status.state(), LinkState::Down);
    let mode = std::fs::metadata(dir.sock()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);

    let _tp = testpmd(&dir.sock(), "txonly", &[]);
    assert!(
        drive(&mut server, Duration::from_secs(30), |s| s.is_connected()),
        "testpmd did not connect: {}",
        server.stats().last_reason()
    );
    assert_eq!(status.state(), LinkState::Up);

    let pool = pool();
    let mut cache = pool.cache(64);
    let (rx, _tx) = &mut halves[0];
    let mut udp = 0;
    let got = receive(
        &mut server,
        rx,
        &mut cache,
        10_000,
        Duration::from_secs(20),
        |f| {
            // testpmd's txonly frame: 64 bytes of Ethernet, IPv4, UDP.
            if f.len() == 64 && f[12..14] == [0x08, 0x00] && f[23] == 17 {
                udp += 1;
            }
        },
    );
    assert!(got >= 10_000, "received {got}");
    assert_eq!(udp, got, "every frame is testpmd's 64-byte UDP");
    let counts = server.stats().snapshot();
    assert_eq!(counts.rx_bad_descriptors, 0);
    cache.flush();
    drop(halves);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
    assert!(!dir.sock().exists(), "socket file removed");
}

#[test]
fn sluice_server_reaches_testpmd_rxonly_client() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let status = LinkStatus::new();
    let (mut server, mut halves) =
        memif::listen(&MemifConfig::new("memif0", dir.sock()), &status).expect("listen");
    let tp = testpmd(&dir.sock(), "rxonly", &[]);
    assert!(
        drive(&mut server, Duration::from_secs(30), |s| s.is_connected()),
        "testpmd did not connect: {}",
        server.stats().last_reason()
    );
    let pool = pool();
    let mut cache = pool.cache(64);
    let (_rx, tx): &mut (MemifRx, MemifTx) = &mut halves[0];
    const N: u64 = 20_000;
    let mut sent = 0u64;
    let mut frame = Frame::new();
    let ok = drive(&mut server, Duration::from_secs(20), |_| {
        while frame.len() < 32 && sent + (frame.len() as u64) < N {
            let seq = (sent + frame.len() as u64) as u32;
            frame.push(cache.alloc_from(&udp_frame(seq, 64)).unwrap());
        }
        let n = frame.len() as u64;
        let failed = tx.tx_burst(&mut cache, &mut frame) as u64;
        sent += n - failed;
        sent >= N
    });
    assert!(ok, "sent only {sent}");
    // testpmd prints its port statistics every second.
    std::thread::sleep(Duration::from_millis(2500));
    let out = stop(tp);
    let text = String::from_utf8_lossy(&out.stdout);
    let rx = testpmd_rx_packets(&text).expect("testpmd printed its statistics");
    assert_eq!(rx, N, "testpmd received what Sluice sent");
    cache.flush();
    drop(halves);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}
