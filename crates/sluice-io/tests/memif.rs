//! memif in the server role: against DPDK's `dpdk-testpmd` (a real,
//! independent implementation of the protocol) and against a scripted
//! client that breaks the protocol at every step.

#[path = "memif/client.rs"]
mod client;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_graph::{Frame, InputState};
use sluice_io::memif::{self, MemifConfig, MemifRx, MemifServer, MemifTx};
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

/// The test's own directory, with the memif socket in it.
struct TempDir(Scratch);

impl TempDir {
    fn new() -> TempDir {
        TempDir(Scratch::new("memif"))
    }

    fn sock(&self) -> PathBuf {
        self.0.join("memif.sock")
    }
}

/// The CPU testpmd runs on: the machine's last one (not this thread's
/// last allowed one: a measurement pins this thread with `taskset`).
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
    /// Stops testpmd as Ctrl-C would (by its PID: with `--stats-period`
    /// it does not read stdin) and returns its output.
    fn stop(mut self) -> std::process::Output {
        let tp = self.child.take().expect("running");
        let pid = tp.0.id().to_string();
        sluice_testnet::run(&["kill", "-INT", &pid]);
        tp.wait_timeout(Duration::from_secs(10))
            .expect("testpmd exits on SIGINT")
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        drop(self.child.take());
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

/// Starts `dpdk-testpmd` as a memif client of `vdev_socket` (the
/// `socket=...,socket-abstract=...` part of its vdev) in `mode`
/// (`txonly`, `rxonly`, `io`), with its statistics printed every second.
fn testpmd_on(vdev_socket: &str, mode: &str, extra: &[&str]) -> Testpmd {
    let cpu = testpmd_cpu();
    let prefix = unique("tp");
    let vdev = format!("net_memif0,role=client,id=0,{vdev_socket}");
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
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    Testpmd {
        child: Some(ChildGuard(cmd.spawn().expect("spawn dpdk-testpmd"))),
        prefix,
    }
}

/// testpmd as a client of socket file `sock`.
fn testpmd(sock: &Path, mode: &str, extra: &[&str]) -> Testpmd {
    testpmd_on(
        &format!("socket={},socket-abstract=no", sock.display()),
        mode,
        extra,
    )
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
    let out = tp.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    let rx = testpmd_rx_packets(&text).expect("testpmd printed its statistics");
    assert_eq!(rx, N, "testpmd received what Sluice sent");
    cache.flush();
    drop(halves);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// Connects a testpmd and returns when the interface is up.
fn connected(server: &mut MemifServer, status: &LinkStatus) {
    assert!(
        drive(server, Duration::from_secs(30), |s| s.is_connected()),
        "testpmd did not connect: {}",
        server.stats().last_reason()
    );
    assert_eq!(status.state(), LinkState::Up);
}

#[test]
fn testpmd_io_forward_returns_what_sluice_sends() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let status = LinkStatus::new();
    let (mut server, mut halves) =
        memif::listen(&MemifConfig::new("memif0", dir.sock()), &status).expect("listen");
    let tp = testpmd(&dir.sock(), "io", &["--port-topology=loop"]);
    connected(&mut server, &status);
    let pool = pool();
    let mut cache = pool.cache(64);
    let (rx, tx) = &mut halves[0];
    // Sizes from the smallest frame to a full Ethernet one, each numbered.
    const N: u32 = 5000;
    let sizes = [60usize, 64, 128, 594, 1024, 1514];
    let expect = |seq: u32| udp_frame(seq, sizes[seq as usize % sizes.len()]);
    // testpmd drains its receive queue when forwarding starts, which is
    // after the link is up: probe until a frame comes back, so that none
    // of the numbered ones is thrown away by that flush.
    let mut probe = Frame::new();
    let forwarding = drive(&mut server, Duration::from_secs(20), |_| {
        probe.push(cache.alloc_from(&udp_frame(u32::MAX, 64)).unwrap());
        tx.tx_burst(&mut cache, &mut probe);
        std::thread::sleep(Duration::from_millis(5));
        let mut f = Frame::new();
        rx.rx_burst(&mut cache, &mut f, 256);
        let echoed = !f.is_empty();
        cache.free_all(&mut f);
        echoed
    });
    assert!(forwarding, "testpmd never forwarded a probe");
    let mut next = 0u32;
    let mut back = vec![false; N as usize];
    let mut got = 0;
    let mut frame = Frame::new();
    let mut wrong = 0;
    drive(&mut server, Duration::from_secs(20), |_| {
        for _ in 0..32 {
            // Keep at most 256 in flight: the rings hold 1024 each way.
            while next < N && next as usize - got < 256 && frame.len() < 32 {
                frame.push(cache.alloc_from(&expect(next)).unwrap());
                next += 1;
            }
            // Frames that found no posted buffer (the last ones: each
            // takes one slot) are made again next time.
            let unsent = tx.tx_burst(&mut cache, &mut frame);
            next -= unsent as u32;
            let mut rframe = Frame::new();
            rx.rx_burst(&mut cache, &mut rframe, 256);
            for p in rframe.iter() {
                let d = p.data();
                let seq = u32::from_be_bytes(d[42..46].try_into().unwrap());
                if seq == u32::MAX {
                    continue; // a late probe
                }
                if seq < N && d == expect(seq).as_slice() && !back[seq as usize] {
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
        let out = tp.stop();
        panic!(
            "{got} of {N} frames came back; sent up to {next}; {:?}; testpmd said: {}",
            server.stats().snapshot(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    cache.flush();
    drop(halves);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

#[test]
fn testpmd_killed_and_restarted_is_served_again() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let status = LinkStatus::new();
    let (mut server, mut halves) =
        memif::listen(&MemifConfig::new("memif0", dir.sock()), &status).expect("listen");
    let pool = pool();
    let mut cache = pool.cache(64);
    for round in 0..2 {
        let tp = testpmd(&dir.sock(), "txonly", &[]);
        connected(&mut server, &status);
        let got = receive(
            &mut server,
            &mut halves[0].0,
            &mut cache,
            1000,
            Duration::from_secs(20),
            |_| {},
        );
        assert!(got >= 1000, "round {round}: received {got}");
        // SIGKILL: no DISCONNECT, the socket just closes.
        drop(tp);
        assert!(
            drive(&mut server, Duration::from_secs(10), |s| !s.is_connected()),
            "round {round}: the dead client is noticed"
        );
        assert_eq!(status.state(), LinkState::Down);
    }
    let n = server.stats().snapshot();
    assert_eq!((n.connects, n.disconnects), (2, 2));
    cache.flush();
    drop(halves);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

#[test]
fn testpmd_finds_sluice_on_an_abstract_socket() {
    if !require("dpdk-testpmd") {
        return;
    }
    let name = format!("sluice-test/{}", unique("abs"));
    let mut config = MemifConfig::new("memif0", "unused");
    config.socket = memif::MemifSocket::Abstract(name.clone());
    let status = LinkStatus::new();
    let (mut server, mut halves) = memif::listen(&config, &status).expect("listen");
    // DPDK's default: socket-abstract=yes.
    let _tp = testpmd_on(&format!("socket={name}"), "txonly", &[]);
    connected(&mut server, &status);
    let pool = pool();
    let mut cache = pool.cache(64);
    let got = receive(
        &mut server,
        &mut halves[0].0,
        &mut cache,
        1000,
        Duration::from_secs(20),
        |_| {},
    );
    assert!(got >= 1000, "received {got}");
    cache.flush();
}

// ---------------------------------------------------------------------
// Against the scripted client.
// ---------------------------------------------------------------------

use std::os::fd::{AsFd, AsRawFd};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use client::{Client, Layout, Reply};
use sluice_io::memif::proto::{self, AddRing, Init, Message, Text};
use sluice_io::memif::{MemifStats, RxMode};
use sluice_io::sys::memif::MemifDesc;

/// A server polled on a thread of its own, as the control thread would.
struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<MemifServer>>,
    stats: Arc<MemifStats>,
}

impl Running {
    fn new(server: MemifServer) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = server.stats().clone();
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut server = server;
            while !s.load(Ordering::Relaxed) {
                server.poll(Duration::from_millis(1));
            }
            server
        });
        Running {
            stop,
            handle: Some(handle),
            stats,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Setup {
    dir: TempDir,
    status: Arc<LinkStatus>,
    server: Running,
    halves: Vec<(MemifRx, MemifTx)>,
}

fn setup(tweak: impl FnOnce(&mut MemifConfig)) -> Setup {
    let dir = TempDir::new();
    let mut config = MemifConfig::new("memif0", dir.sock());
    tweak(&mut config);
    let status = LinkStatus::new();
    let (server, halves) = memif::listen(&config, &status).expect("listen");
    Setup {
        dir,
        status,
        server: Running::new(server),
        halves,
    }
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// Whether this process still holds memfd `name` (a descriptor or a
/// mapping).
fn memfd_held(name: &str) -> bool {
    let needle = format!("memfd:{name} ");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let fds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|t| format!("{} ", t.display()).contains(&needle));
    fds || maps.contains(&needle)
}

/// Receives on `rx` until `n` packets or a second passes.
fn rx_some(rx: &mut MemifRx, cache: &mut BufCache, n: usize) -> Vec<Vec<u8>> {
    let mut frame = Frame::new();
    let mut out = Vec::new();
    wait_until(Duration::from_secs(2), || {
        rx.rx_burst(cache, &mut frame, 256);
        for p in frame.iter() {
            let mut v = Vec::new();
            p.copy_to(&mut v);
            out.push(v);
        }
        cache.free_all(&mut frame);
        out.len() >= n
    });
    out
}

fn tx_all(tx: &mut MemifTx, cache: &mut BufCache, packets: &[Vec<u8>]) -> usize {
    let mut frame = Frame::new();
    for p in packets {
        frame.push(cache.alloc_from(p).unwrap());
    }
    tx.tx_burst(cache, &mut frame)
}

#[test]
fn scripted_client_exchanges_packets_on_two_queues_with_chains() {
    let mut s = setup(|c| c.queues = 2);
    let mut c = Client::connect(&s.dir.sock());
    let layout = Layout {
        c2s: 2,
        s2c: 2,
        ..Layout::default()
    };
    c.handshake(layout, &unique("mfd"));
    assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
    let pool = pool();
    let mut cache = pool.cache(64);

    // Client to Sluice, on each queue: small frames and a 5000-byte one
    // that spans three 2 KiB buffers.
    for q in 0..2 {
        let mut sent: Vec<Vec<u8>> = (0..100)
            .map(|i| udp_frame(i + 1000 * q as u32, 64))
            .collect();
        sent.push(udp_frame(7, 5000));
        assert!(c.send_packets(q, &sent));
        let got = rx_some(&mut s.halves[q].0, &mut cache, sent.len());
        assert_eq!(got, sent, "queue {q}");
        assert_eq!(c.ring(q).tail(), c.ring(q).head(), "all slots handed back");
    }

    // Sluice to client: fills the posted buffers, chaining the big one.
    for q in 0..2 {
        c.post_buffers(q);
        let sent: Vec<Vec<u8>> = vec![udp_frame(1, 60), udp_frame(2, 5000), udp_frame(3, 1514)];
        assert_eq!(tx_all(&mut s.halves[q].1, &mut cache, &sent), 0);
        assert_eq!(c.take_packets(q), sent, "queue {q}");
    }

    // No posted buffers left to fill: packets are refused, not lost track of.
    let ring_size = 1 << layout.log2;
    let many: Vec<Vec<u8>> = (0..ring_size + 10).map(|i| udp_frame(i, 64)).collect();
    c.post_buffers(0);
    let unsent = tx_all(
        &mut s.halves[0].1,
        &mut cache,
        &many[..ring_size as usize + 10],
    );
    assert_eq!(unsent, 10, "the ring holds {ring_size} packets");
    assert_eq!(s.server.stats.snapshot().tx_ring_full, unsent as u64);

    cache.flush();
    drop(s.halves);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// One way of breaking the handshake: what the client does, and the words
/// the server's DISCONNECT must contain.
struct Misstep {
    name: &'static str,
    act: fn(&mut Client, &str) -> Reply,
    reason: &'static str,
}

fn init_ok(c: &Client) {
    assert_eq!(c.ask(&Client::init(0, ""), None), Reply::Ack);
}

fn up_to_rings(c: &mut Client, memfd: &str) {
    init_ok(c);
    c.build(Layout::default(), memfd);
    assert_eq!(c.add_region(), Reply::Ack);
}

fn init_with(version: u16, mode: u8) -> Message {
    Message::Init(Init {
        version,
        id: 0,
        mode,
        secret: Text::new(""),
        name: Text::new("x"),
    })
}

const MISSTEPS: &[Misstep] = &[
    Misstep {
        name: "wrong version",
        act: |c, _| c.ask(&init_with(0x0100, 0), None),
        reason: "unsupported version 0x0100",
    },
    Misstep {
        name: "unknown interface id",
        act: |c, _| c.ask(&Client::init(7, ""), None),
        reason: "unmatched interface id 7",
    },
    Misstep {
        name: "IP mode",
        act: |c, _| c.ask(&init_with(proto::VERSION, 1), None),
        reason: "mode mismatch",
    },
    Misstep {
        name: "region before INIT",
        act: |c, m| {
            c.build(Layout::default(), m);
            c.add_region()
        },
        reason: "unexpected ADD_REGION",
    },
    Misstep {
        name: "CONNECT before INIT",
        act: |c, _| c.ask(&Client::connect_msg(), None),
        reason: "unexpected CONNECT",
    },
    Misstep {
        name: "truncated message",
        act: |c, _| {
            c.send_raw(&Client::init(0, "").encode()[..64], None);
            c.recv(Duration::from_secs(5))
        },
        reason: "truncated",
    },
    Misstep {
        name: "unknown message type",
        act: |c, _| {
            let mut b = [0u8; proto::MSG_SIZE];
            b[0] = 99;
            c.send_raw(&b, None);
            c.recv(Duration::from_secs(5))
        },
        reason: "unknown control message type 99",
    },
    Misstep {
        name: "region without fd",
        act: |c, m| {
            init_ok(c);
            c.build(Layout::default(), m);
            let size = c.layout.region_size() as u64;
            c.ask(&Message::AddRegion { index: 0, size }, None)
        },
        reason: "no file descriptor",
    },
    Misstep {
        name: "region out of order",
        act: |c, m| {
            init_ok(c);
            c.build(Layout::default(), m);
            let size = c.layout.region_size() as u64;
            c.ask(
                &Message::AddRegion { index: 1, size },
                Some(c.memfd.as_ref().unwrap().as_fd()),
            )
        },
        reason: "region index 1, expected 0",
    },
    Misstep {
        name: "region larger than its file",
        act: |c, m| {
            init_ok(c);
            c.build(Layout::default(), m);
            let size = c.layout.region_size() as u64 + 4096;
            c.ask(
                &Message::AddRegion { index: 0, size },
                Some(c.memfd.as_ref().unwrap().as_fd()),
            )
        },
        reason: "announced",
    },
    Misstep {
        name: "region is an unsealed file",
        act: |c, _| {
            init_ok(c);
            let path = std::env::temp_dir().join(unique("mreg"));
            let f = std::fs::File::create_new(&path).unwrap();
            let _ = std::fs::remove_file(&path);
            f.set_len(1 << 20).unwrap();
            c.ask(
                &Message::AddRegion {
                    index: 0,
                    size: 1 << 20,
                },
                Some(f.as_fd()),
            )
        },
        reason: "not sealed",
    },
    Misstep {
        name: "region is an eventfd",
        act: |c, _| {
            init_ok(c);
            let e = sluice_io::sys::unix::eventfd().unwrap();
            c.ask(
                &Message::AddRegion {
                    index: 0,
                    size: 4096,
                },
                Some(e.as_fd()),
            )
        },
        reason: "not a memory file",
    },
    Misstep {
        name: "ring without fd",
        act: |c, m| {
            up_to_rings(c, m);
            c.ask(&Message::AddRing(c.ring_msg(0)), None)
        },
        reason: "no file descriptor",
    },
    Misstep {
        name: "ring interrupt fd is not an eventfd",
        act: |c, m| {
            up_to_rings(c, m);
            c.ask(
                &Message::AddRing(c.ring_msg(0)),
                Some(c.memfd.as_ref().unwrap().as_fd()),
            )
        },
        reason: "not an eventfd",
    },
    Misstep {
        name: "ring out of order",
        act: |c, m| {
            up_to_rings(c, m);
            let r = AddRing {
                index: 1,
                ..c.ring_msg(0)
            };
            c.ask(&Message::AddRing(r), Some(c.eventfds[0].as_fd()))
        },
        reason: "C2S ring index 1, expected 0",
    },
    Misstep {
        name: "ring in a region never added",
        act: |c, m| {
            up_to_rings(c, m);
            let r = AddRing {
                region: 3,
                ..c.ring_msg(0)
            };
            c.ask(&Message::AddRing(r), Some(c.eventfds[0].as_fd()))
        },
        reason: "names region 3",
    },
    Misstep {
        name: "ring too large",
        act: |c, m| {
            up_to_rings(c, m);
            let r = AddRing {
                log2_ring_size: 15,
                ..c.ring_msg(0)
            };
            c.ask(&Message::AddRing(r), Some(c.eventfds[0].as_fd()))
        },
        reason: "size 2^15",
    },
    Misstep {
        name: "ring past the end of its region",
        act: |c, m| {
            up_to_rings(c, m);
            let r = AddRing {
                offset: (c.layout.region_size() - 64) as u32,
                ..c.ring_msg(0)
            };
            assert_eq!(
                c.ask(&Message::AddRing(r), Some(c.eventfds[0].as_fd())),
                Reply::Ack
            );
            assert_eq!(c.add_ring(1), Reply::Ack);
            c.ask(&Client::connect_msg(), None)
        },
        reason: "runs past the end",
    },
    Misstep {
        name: "ring with a wrong cookie",
        act: |c, m| {
            up_to_rings(c, m);
            c.mem().u32_at(0).unwrap().store(0xdead, Ordering::Relaxed);
            assert_eq!(c.add_ring(0), Reply::Ack);
            assert_eq!(c.add_ring(1), Reply::Ack);
            c.ask(&Client::connect_msg(), None)
        },
        reason: "wrong cookie",
    },
    Misstep {
        name: "CONNECT without a server-to-client ring",
        act: |c, m| {
            up_to_rings(c, m);
            assert_eq!(c.add_ring(0), Reply::Ack);
            c.ask(&Client::connect_msg(), None)
        },
        reason: "no rings",
    },
    Misstep {
        name: "INIT twice",
        act: |c, _| {
            init_ok(c);
            c.ask(&Client::init(0, ""), None)
        },
        reason: "unexpected INIT",
    },
];

#[test]
fn every_handshake_misstep_is_refused_counted_and_closed() {
    let s = setup(|_| {});
    for (k, m) in MISSTEPS.iter().enumerate() {
        let memfd = unique("mfd");
        let mut c = Client::connect(&s.dir.sock());
        match (m.act)(&mut c, &memfd) {
            Reply::Disconnect(why) => {
                assert!(why.contains(m.reason), "{}: reason {why:?}", m.name)
            }
            r => panic!("{}: expected DISCONNECT, got {r:?}", m.name),
        }
        assert_eq!(c.recv(Duration::from_secs(5)), Reply::Closed, "{}", m.name);
        assert_eq!(
            s.server.stats.snapshot().refused,
            k as u64 + 1,
            "{}",
            m.name
        );
        drop(c);
        assert!(!memfd_held(&memfd), "{}: region still held", m.name);
    }
    // The interface was never up (its one `down` is the start: a status
    // begins up), and still takes a client that follows the rules.
    assert_eq!((s.status.state(), s.status.downs()), (LinkState::Down, 1));
    let mut c = Client::connect(&s.dir.sock());
    c.handshake(Layout::default(), &unique("mfd"));
    assert_eq!(s.server.stats.snapshot().connects, 1);
}

#[test]
fn secret_is_required_and_checked() {
    let s = setup(|c| c.secret = Some("open sesame".into()));
    let c = Client::connect(&s.dir.sock());
    assert_eq!(
        c.ask(&Client::init(0, ""), None),
        Reply::Disconnect("secret required".into())
    );
    let c = Client::connect(&s.dir.sock());
    assert_eq!(
        c.ask(&Client::init(0, "open says me"), None),
        Reply::Disconnect("incorrect secret".into())
    );
    let c = Client::connect(&s.dir.sock());
    assert_eq!(c.ask(&Client::init(0, "open sesame"), None), Reply::Ack);
    assert_eq!(s.server.stats.snapshot().refused, 2);
}

#[test]
fn client_that_hangs_up_or_says_goodbye_mid_handshake_is_counted() {
    let s = setup(|_| {});
    let memfd = unique("mfd");
    let mut c = Client::connect(&s.dir.sock());
    up_to_rings(&mut c, &memfd);
    assert_eq!(c.add_ring(0), Reply::Ack);
    drop(c);
    assert!(wait_until(Duration::from_secs(2), || s
        .server
        .stats
        .snapshot()
        .refused
        == 1));
    assert_eq!(s.server.stats.last_reason(), "client hung up");
    assert!(!memfd_held(&memfd), "region fd closed after the hang-up");

    let c = Client::connect(&s.dir.sock());
    init_ok(&c);
    c.send(&Message::disconnect(0, "bye"), None);
    assert_eq!(c.recv(Duration::from_secs(5)), Reply::Closed);
    assert_eq!(s.server.stats.snapshot().refused, 2);
    assert_eq!(s.server.stats.last_reason(), "client disconnected: bye");
}

#[test]
fn silent_client_times_out_and_the_next_one_connects() {
    let s = setup(|c| c.handshake_timeout = Duration::from_millis(200));
    let silent = Client::connect(&s.dir.sock());
    assert_eq!(
        silent.recv(Duration::from_secs(5)),
        Reply::Disconnect("handshake timed out".into())
    );
    let mut c = Client::connect(&s.dir.sock());
    c.handshake(Layout::default(), &unique("mfd"));
}

#[test]
fn second_client_is_turned_away_while_one_is_connected() {
    let s = setup(|_| {});
    let mut first = Client::connect(&s.dir.sock());
    first.handshake(Layout::default(), &unique("mfd"));
    let sock = sluice_io::sys::unix::seqpacket().unwrap();
    sluice_io::sys::unix::connect_unix(
        sock.as_fd(),
        sluice_io::sys::unix::UnixAddr::Path(&s.dir.sock()),
    )
    .unwrap();
    let mut second = Client::bare();
    second.sock = sock;
    assert_eq!(
        second.recv(Duration::from_secs(5)),
        Reply::Disconnect("interface already connected".into())
    );
    assert_eq!(s.status.state(), LinkState::Up);
    assert_eq!(s.server.stats.snapshot().refused, 1);
}

#[test]
fn client_restart_is_served_again_and_the_link_follows() {
    let mut s = setup(|_| {});
    let pool = pool();
    let mut cache = pool.cache(64);
    for round in 0..3u32 {
        let memfd = unique("mfd");
        let mut c = Client::connect(&s.dir.sock());
        c.handshake(Layout::default(), &memfd);
        assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
        let sent: Vec<Vec<u8>> = (0..10).map(|i| udp_frame(round * 100 + i, 64)).collect();
        assert!(c.send_packets(0, &sent));
        assert_eq!(
            rx_some(&mut s.halves[0].0, &mut cache, 10),
            sent,
            "round {round}"
        );
        // The client process dies: no DISCONNECT, its socket just closes.
        drop(c);
        assert!(wait_until(Duration::from_secs(2), || s.status.state()
            == LinkState::Down));
        // The queues let go of the dead client's memory at their next burst.
        assert!(rx_some(&mut s.halves[0].0, &mut cache, 0).is_empty());
        assert_eq!(
            tx_all(&mut s.halves[0].1, &mut cache, &[udp_frame(0, 64)]),
            1
        );
        assert!(!s.halves[0].0.is_connected() && !s.halves[0].1.is_connected());
        assert!(!memfd_held(&memfd), "round {round}: region still mapped");
    }
    let n = s.server.stats.snapshot();
    assert_eq!((n.connects, n.disconnects, n.refused), (3, 3, 0));
    // One down at the start (a status begins up), one per client.
    assert_eq!(s.status.downs(), 1 + 3);
    cache.flush();
    drop(s.halves);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// A descriptor on C2S ring 0 of the default layout, pointing at slot
/// `slot`'s own buffer (filled with `frame`).
fn good_desc(c: &Client, slot: u16, frame: &[u8]) -> MemifDesc {
    let offset = c.layout.buffer_offset(0, slot as usize);
    assert!(c.mem().copy_in(offset, frame));
    MemifDesc {
        flags: 0,
        region: 0,
        length: frame.len() as u32,
        offset: offset as u32,
        metadata: 0,
    }
}

#[test]
fn hostile_descriptors_are_counted_drops_never_reads_outside() {
    let mut s = setup(|_| {});
    let mut c = Client::connect(&s.dir.sock());
    c.handshake(Layout::default(), &unique("mfd"));
    let pool = pool();
    let mut cache = pool.cache(64);
    let size = c.layout.region_size() as u32;
    let ring = c.ring(0);
    let a = udp_frame(1, 64);
    let b = udp_frame(2, 64);
    let descs = [
        good_desc(&c, 0, &a),
        MemifDesc {
            region: 5,
            ..good_desc(&c, 1, &a)
        },
        MemifDesc {
            offset: size - 10,
            ..good_desc(&c, 2, &a)
        },
        MemifDesc {
            offset: u32::MAX,
            length: u32::MAX,
            ..good_desc(&c, 3, &a)
        },
        MemifDesc {
            length: 0,
            ..good_desc(&c, 4, &a)
        },
        good_desc(&c, 5, &b),
        // A chain whose end was never published.
        MemifDesc {
            flags: proto::DESC_FLAG_NEXT,
            ..good_desc(&c, 6, &a)
        },
        MemifDesc {
            flags: proto::DESC_FLAG_NEXT,
            ..good_desc(&c, 7, &a)
        },
    ];
    for (i, d) in descs.iter().enumerate() {
        ring.set_desc(i as u16, *d);
    }
    ring.set_head(descs.len() as u16);
    let rx = &mut s.halves[0].0;
    assert_eq!(rx_some(rx, &mut cache, 2), vec![a.clone(), b]);
    assert_eq!(rx.take_rx_drops(), 5);
    assert_eq!(ring.tail(), descs.len() as u16, "every slot handed back");

    // A chain longer than the largest frame accepted.
    let mut slot = ring.head();
    for k in 0..6 {
        let mut d = good_desc(&c, slot & 255, &[0xab; 2048]);
        d.flags = if k < 5 { proto::DESC_FLAG_NEXT } else { 0 };
        ring.set_desc(slot, d);
        slot = slot.wrapping_add(1);
    }
    ring.set_head(slot);
    assert!(rx_some(rx, &mut cache, 1).is_empty());
    assert_eq!(rx.take_rx_drops(), 1);
    assert_eq!(s.server.stats.snapshot().rx_bad_descriptors, 6);

    // Posted buffers outside the region are skipped, not written.
    let s2c = c.ring(1);
    let post = |region: u16, offset: u32| MemifDesc {
        flags: 0,
        region,
        length: 2048,
        offset,
        metadata: 0,
    };
    let buf = |slot: usize| c.layout.buffer_offset(1, slot) as u32;
    s2c.set_desc(0, post(0, buf(0)));
    s2c.set_desc(1, post(0, size - 100));
    s2c.set_desc(2, post(9, buf(2)));
    s2c.set_desc(3, post(0, buf(3)));
    s2c.set_head(4);
    let tx = &mut s.halves[0].1;
    assert_eq!(tx_all(tx, &mut cache, &[a.clone(), a.clone()]), 0);
    assert_eq!(s2c.tail(), 4);
    let lens: Vec<u32> = (0..4).map(|i| s2c.desc(i).length).collect();
    assert_eq!(lens, [64, 0, 0, 64]);
    assert_eq!(s.server.stats.snapshot().tx_bad_descriptors, 2);
    // Still connected: bad descriptors are the client's loss, not a reason
    // to hang up.
    assert_eq!(s.status.state(), LinkState::Up);
    cache.flush();
    drop(s.halves);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

#[test]
fn garbage_ring_index_ends_the_connection() {
    let mut s = setup(|_| {});
    let mut c = Client::connect(&s.dir.sock());
    c.handshake(Layout::default(), &unique("mfd"));
    let pool = pool();
    let mut cache = pool.cache(64);
    c.ring(0).set_head(300); // 300 published on a 256-entry ring
    assert!(rx_some(&mut s.halves[0].0, &mut cache, 1).is_empty());
    assert_eq!(
        c.recv(Duration::from_secs(5)),
        Reply::Disconnect("broken ring indices".into())
    );
    assert!(wait_until(Duration::from_secs(2), || s.status.state()
        == LinkState::Down));
    let n = s.server.stats.snapshot();
    assert_eq!((n.bad_rings > 0, n.disconnects), (true, 1));
    assert_eq!(c.ring(0).tail(), 0, "nothing was consumed");
}

fn readable(fd: std::os::fd::RawFd) -> bool {
    sluice_io::sys::wait_readable(&[fd], Duration::ZERO).unwrap()
}

#[test]
fn interrupt_mode_masks_while_busy_and_asks_for_a_kick_when_dry() {
    let mut s = setup(|c| c.rx_mode = RxMode::Interrupt);
    let mut c = Client::connect(&s.dir.sock());
    c.handshake(Layout::default(), &unique("mfd"));
    let pool = pool();
    let mut cache = pool.cache(64);
    let mut frame = Frame::new();
    let rx = &mut s.halves[0].0;
    assert_eq!(rx.rx_burst(&mut cache, &mut frame, 256), InputState::Idle);
    let fd = rx.wait_fd().expect("an eventfd to sleep on");
    assert_eq!(
        c.ring(0).flags() & proto::RING_FLAG_MASK_INT,
        0,
        "dry: unmasked"
    );
    assert!(!readable(fd));
    // The client sees the ring unmasked and kicks: a sleeping worker wakes.
    assert!(c.send_packets(0, &[udp_frame(1, 64)]));
    assert!(readable(fd));
    assert_eq!(
        rx.rx_burst(&mut cache, &mut frame, 256),
        InputState::Busy(1)
    );
    assert_ne!(
        c.ring(0).flags() & proto::RING_FLAG_MASK_INT,
        0,
        "busy: masked"
    );
    cache.free_all(&mut frame);
    // Dry again: unmasked, and the old kick cleared so the worker can sleep.
    assert_eq!(rx.rx_burst(&mut cache, &mut frame, 256), InputState::Idle);
    assert_eq!(c.ring(0).flags() & proto::RING_FLAG_MASK_INT, 0);
    assert!(!readable(fd));

    // Transmit kicks the client unless it masked its ring.
    let kick = c.eventfds[1].as_raw_fd();
    c.post_buffers(0);
    assert_eq!(
        tx_all(&mut s.halves[0].1, &mut cache, &[udp_frame(2, 64)]),
        0
    );
    assert!(readable(kick));
    sluice_io::sys::unix::eventfd_drain(c.eventfds[1].as_fd()).unwrap();
    c.ring(1).set_flags(proto::RING_FLAG_MASK_INT);
    assert_eq!(
        tx_all(&mut s.halves[0].1, &mut cache, &[udp_frame(3, 64)]),
        0
    );
    assert!(!readable(kick));
    assert_eq!(c.take_packets(0), vec![udp_frame(2, 64), udp_frame(3, 64)]);
}

#[test]
fn polling_mode_masks_interrupts_and_offers_no_fd() {
    let mut s = setup(|_| {});
    let mut c = Client::connect(&s.dir.sock());
    c.handshake(Layout::default(), &unique("mfd"));
    let pool = pool();
    let mut cache = pool.cache(64);
    let mut frame = Frame::new();
    let rx = &mut s.halves[0].0;
    rx.rx_burst(&mut cache, &mut frame, 256);
    assert!(rx.is_connected());
    assert_ne!(c.ring(0).flags() & proto::RING_FLAG_MASK_INT, 0);
    assert_eq!(rx.wait_fd(), None);
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn desc() -> impl Strategy<Value = MemifDesc> {
        (0u16..4, 0u16..3, any::<u32>(), any::<u32>(), 0u32..3000).prop_map(
            |(flags, region, offset, big, length)| MemifDesc {
                flags: flags & proto::DESC_FLAG_NEXT,
                region,
                // Mostly near the region, sometimes anywhere.
                offset: if big % 4 == 0 {
                    big
                } else {
                    offset % (1 << 20)
                },
                length: if big % 7 == 0 { big } else { length },
                metadata: 0,
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Whatever a client writes in its rings (descriptors anywhere,
        /// indices anywhere), Sluice neither crashes nor leaks a buffer,
        /// and hands back no more than was published.
        #[test]
        fn random_rings_cannot_hurt_the_server(
            rx_descs in proptest::collection::vec(desc(), 1..64),
            tx_descs in proptest::collection::vec(desc(), 1..64),
            head_skew in prop_oneof![Just(0u16), any::<u16>()],
            frames in proptest::collection::vec(20usize..6000, 1..20),
        ) {
            let mut s = setup(|_| {});
            let mut c = Client::connect(&s.dir.sock());
            c.handshake(Layout::default(), &unique("mfd"));
            let pool = pool();
            let mut cache = pool.cache(64);
            let (c2s, s2c) = (c.ring(0), c.ring(1));
            for (i, d) in rx_descs.iter().enumerate() {
                c2s.set_desc(i as u16, *d);
            }
            c2s.set_head((rx_descs.len() as u16).wrapping_add(head_skew));
            for (i, d) in tx_descs.iter().enumerate() {
                s2c.set_desc(i as u16, *d);
            }
            s2c.set_head((tx_descs.len() as u16).wrapping_add(head_skew));
            let mut frame = Frame::new();
            let (rx, tx) = &mut s.halves[0];
            // Published: the head, unless it is more than a ring ahead
            // (garbage, so nothing may be read).
            let head = c2s.head();
            let published = if head > 256 { 0 } else { head as usize };
            let mut received = 0;
            for _ in 0..4 {
                rx.rx_burst(&mut cache, &mut frame, 256);
                received += frame.len();
                cache.free_all(&mut frame);
                let packets: Vec<Vec<u8>> =
                    frames.iter().map(|&n| udp_frame(n as u32, n.max(60))).collect();
                tx_all(tx, &mut cache, &packets);
            }
            prop_assert!(received <= published, "{} received of {} published", received, published);
            prop_assert!(c2s.tail() as usize <= published, "tail past what was published");
            cache.flush();
            drop(s.halves);
            prop_assert_eq!(pool.free_count(), pool.capacity());
        }
    }
}

/// A measurement, not a check (run it by hand, in release, with this
/// thread on its own CPU):
/// `taskset -c 0 cargo test --release -p sluice-io --test memif measure -- --ignored --nocapture`.
///
/// Sluice cross-connects two memif servers in this thread; one testpmd
/// on the last CPU is the client of both, forwarding in `io` mode, primed
/// with one burst per port, so that packets circle testpmd → Sluice →
/// testpmd. Prints the packets Sluice forwarded per second and the time
/// per packet.
#[test]
#[ignore = "a measurement: run by hand in release"]
fn measure_cross_connect_with_testpmd() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let (sa, sb) = (dir.0.join("a.sock"), dir.0.join("b.sock"));
    let (st_a, st_b) = (LinkStatus::new(), LinkStatus::new());
    let (mut srv_a, mut ha) = memif::listen(&MemifConfig::new("a", &sa), &st_a).unwrap();
    let (mut srv_b, mut hb) = memif::listen(&MemifConfig::new("b", &sb), &st_b).unwrap();
    let cpu = testpmd_cpu();
    let prefix = unique("tpm");
    let burst = std::env::var("BURST").unwrap_or_else(|_| "64".into());
    let mut cmd = Command::new("dpdk-testpmd");
    cmd.args([
        "--no-pci",
        "--no-huge",
        "-m",
        "512",
        &format!("--file-prefix={prefix}"),
        &format!("--lcores=0@{cpu},1@{cpu}"),
        &format!(
            "--vdev=net_memif0,role=client,id=0,socket={},socket-abstract=no",
            sa.display()
        ),
        &format!(
            "--vdev=net_memif1,role=client,id=0,socket={},socket-abstract=no",
            sb.display()
        ),
        "--",
        "--total-num-mbufs=32768",
        "--forward-mode=io",
        &format!("--burst={burst}"),
        "--tx-first",
        "--stats-period=1",
        "-a",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    let tp = Testpmd {
        child: Some(ChildGuard(cmd.spawn().unwrap())),
        prefix,
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !(srv_a.is_connected() && srv_b.is_connected()) && Instant::now() < end {
        srv_a.poll(Duration::from_millis(1));
        srv_b.poll(Duration::from_millis(1));
    }
    assert!(srv_a.is_connected() && srv_b.is_connected());
    let pool = pool();
    let mut cache = pool.cache(256);
    let (rx_a, tx_a) = &mut ha[0];
    let (rx_b, tx_b) = &mut hb[0];
    let mut frame = Frame::new();
    let mut forwarded = 0u64;
    let mut dropped;
    // Warm up, then measure.
    for (phase, secs) in [("warm-up", 2u64), ("measured", 5)] {
        forwarded = 0;
        dropped = 0;
        let start = Instant::now();
        let mut turns = 0u32;
        while start.elapsed() < Duration::from_secs(secs) {
            for _ in 0..1024 {
                if let InputState::Busy(n) = rx_a.rx_burst(&mut cache, &mut frame, 256) {
                    forwarded += n as u64;
                    dropped += tx_b.tx_burst(&mut cache, &mut frame) as u64;
                }
                if let InputState::Busy(n) = rx_b.rx_burst(&mut cache, &mut frame, 256) {
                    forwarded += n as u64;
                    dropped += tx_a.tx_burst(&mut cache, &mut frame) as u64;
                }
            }
            turns += 1;
            if turns.is_multiple_of(64) {
                srv_a.poll(Duration::ZERO);
                srv_b.poll(Duration::ZERO);
            }
        }
        let t = start.elapsed().as_secs_f64();
        let mhz: f64 = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("cpu MHz")?
                    .split(':')
                    .nth(1)?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(0.0);
        eprintln!(
            "{phase}: burst {burst}: {:.2} Mpps forwarded by Sluice ({} in {t:.1} s, {dropped} dropped), \
             {:.1} ns/packet, ~{:.0} cycles/packet at {mhz:.0} MHz",
            forwarded as f64 / t / 1e6,
            forwarded,
            t * 1e9 / forwarded.max(1) as f64,
            t * mhz * 1e6 / forwarded.max(1) as f64,
        );
    }
    let out = tp.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    let pps: Vec<&str> = text.lines().filter(|l| l.contains("Rx-pps")).collect();
    eprintln!(
        "testpmd's last per-port rates: {:?}",
        &pps[pps.len().saturating_sub(2)..]
    );
    assert!(forwarded > 0);
    cache.flush();
}

/// A measurement, not a check, like the one above: testpmd `txonly` (64 B
/// UDP) on the last CPU into one Sluice memif server that receives and
/// frees in this thread. Prints Sluice's receive rate.
#[test]
#[ignore = "a measurement: run by hand in release"]
fn measure_receive_from_testpmd_txonly() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let status = LinkStatus::new();
    let (mut server, mut halves) =
        memif::listen(&MemifConfig::new("memif0", dir.sock()), &status).unwrap();
    let _tp = testpmd(&dir.sock(), "txonly", &[]);
    connected(&mut server, &status);
    let pool = pool();
    let mut cache = pool.cache(256);
    let rx = &mut halves[0].0;
    let mut frame = Frame::new();
    for (phase, secs) in [("warm-up", 1u64), ("measured", 5)] {
        let mut got = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            for _ in 0..1024 {
                if let InputState::Busy(n) = rx.rx_burst(&mut cache, &mut frame, 256) {
                    got += n as u64;
                    cache.free_all(&mut frame);
                }
            }
        }
        let t = start.elapsed().as_secs_f64();
        eprintln!(
            "{phase}: {:.2} Mpps received ({got} in {t:.1} s), {:.1} ns/packet",
            got as f64 / t / 1e6,
            t * 1e9 / got.max(1) as f64
        );
    }
    cache.flush();
}
