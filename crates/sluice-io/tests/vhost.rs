//! vhost-user, Sluice as the back end: against DPDK's `dpdk-testpmd` with
//! `net_virtio_user` (a real, independent front end), in both socket
//! roles, and against a scripted front end that breaks the protocol and
//! writes hostile rings.

#[path = "vhost/frontend.rs"]
mod frontend;

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
            if let Ok(Some(_)) = tp.0.try_wait() {
                // Its last burst may have landed after the turn above:
                // take it before the poll below sees the hang-up and
                // stops the rings.
                between(v);
                break;
            }
            v.poll(Duration::from_micros(100));
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
    testpmd_queues(sock, listen, 1, mode, extra)
}

/// As [`testpmd`], with `queues` queue pairs.
fn testpmd_queues(sock: &Path, listen: bool, queues: u16, mode: &str, extra: &[&str]) -> Testpmd {
    let cpu = testpmd_cpu();
    let prefix = unique("tv");
    let vdev = format!(
        "net_virtio_user0,path={},queues={queues},server={}",
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
    // Every frame testpmd queued was taken by Sluice, or was still in the
    // ring when testpmd stopped it (then testpmd has it back, counted).
    let left = v.stats().snapshot().rx_left_at_stop;
    assert_eq!(
        got + left,
        sent,
        "Sluice received every frame testpmd sent ({left} left in the ring at stop); testpmd said: {text}"
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

/// Two queue pairs: testpmd spreads its txonly frames over both, and
/// Sluice counts them exactly on its two receive halves.
#[test]
fn testpmd_txonly_on_two_queue_pairs() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = Scratch::new("vhost");
    let sock = dir.join("vhost.sock");
    let status = LinkStatus::new();
    let mut config = VhostConfig::new("vhost0", &sock);
    config.queues = 2;
    let (mut v, mut halves) = vhost::listen(&config, &status).expect("listen");
    let tp = testpmd_queues(&sock, false, 2, "txonly", &["--txq=2", "--rxq=2"]);
    assert!(
        drive(&mut v, Duration::from_secs(30), |v| v.running_queues() == 2),
        "testpmd did not start both queue pairs: {} ({:?})",
        v.stats().last_reason(),
        v.stats().snapshot()
    );
    let pool = pool();
    let mut cache = pool.cache(64);
    let mut per_queue = [0u64; 2];
    let mut frame = Frame::new();
    let mut take = |cache: &mut BufCache, halves: &mut [(VhostRx, VhostTx)]| -> u64 {
        for (q, (rx, _)) in halves.iter_mut().enumerate() {
            for _ in 0..32 {
                if let InputState::Busy(n) = rx.rx_burst(cache, &mut frame, 256) {
                    per_queue[q] += n as u64;
                    cache.free_all(&mut frame);
                }
            }
        }
        per_queue[0].min(per_queue[1])
    };
    drive(&mut v, Duration::from_secs(20), |_| {
        take(&mut cache, &mut halves) >= 10_000
    });
    let out = tp.stop_with(&mut v, |_| {
        take(&mut cache, &mut halves);
    });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let sent = testpmd_tx_packets(&text).expect("testpmd printed its statistics");
    assert!(per_queue.iter().all(|&n| n > 1000), "{per_queue:?}");
    let left = v.stats().snapshot().rx_left_at_stop;
    assert_eq!(
        per_queue[0] + per_queue[1] + left,
        sent,
        "{per_queue:?} ({left} left in the rings at stop); testpmd said: {text}"
    );
    cache.flush();
    drop(halves);
    drop(v);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
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

// ---------------------------------------------------------------------
// Against the scripted front end.
// ---------------------------------------------------------------------

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use frontend::{Frontend, RING, SCRATCH, buffer, desc_table};
use sluice_io::sys::vhost::VirtqDesc;
use sluice_io::vhost::VhostStats;
use sluice_io::vhost::proto::{self, MemRegion, Request, VringAddr, VringState};

/// An interface polled on a thread of its own, as the control thread would.
struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<VhostUser>>,
    stats: Arc<VhostStats>,
}

impl Running {
    fn new(v: VhostUser) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = v.stats().clone();
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut v = v;
            while !s.load(Ordering::Relaxed) {
                v.poll(Duration::from_millis(1));
            }
            v
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
    dir: Scratch,
    status: Arc<LinkStatus>,
    running: Running,
    halves: Vec<(VhostRx, VhostTx)>,
}

impl Setup {
    fn new(tweak: impl FnOnce(&mut VhostConfig)) -> Setup {
        let dir = Scratch::new("vhost");
        let mut config = VhostConfig::new("vhost0", dir.join("vhost.sock"));
        tweak(&mut config);
        let status = LinkStatus::new();
        let (v, halves) = vhost::listen(&config, &status).expect("listen");
        Setup {
            dir,
            status,
            running: Running::new(v),
            halves,
        }
    }

    fn frontend(&self) -> (Frontend, String) {
        let name = unique("vmem");
        (Frontend::connect(&self.dir.join("vhost.sock"), &name), name)
    }

    fn counts(&self) -> sluice_io::vhost::VhostCounts {
        self.running.stats.snapshot()
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

/// Receives on `rx` until `n` frames or two seconds.
fn rx_some(rx: &mut VhostRx, cache: &mut BufCache, n: usize) -> Vec<Vec<u8>> {
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

fn tx_all(tx: &mut VhostTx, cache: &mut BufCache, packets: &[Vec<u8>]) -> usize {
    let mut frame = Frame::new();
    for p in packets {
        frame.push(cache.alloc_from(p).unwrap());
    }
    tx.tx_burst(cache, &mut frame)
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> VirtqDesc {
    VirtqDesc {
        addr,
        len,
        flags,
        next,
    }
}

const NEXT: u16 = 1;
const WRITE: u16 = 2;
const INDIRECT: u16 = 4;

#[test]
fn scripted_frontend_exchanges_frames_with_chains_indirect_and_merged_buffers() {
    let mut s = Setup::new(|_| {});
    let (mut f, name) = s.frontend();
    f.handshake();
    assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
    let pool = pool();
    let mut cache = pool.cache(64);
    let stats = s.running.stats.clone();
    let (rx, tx) = &mut s.halves[0];

    // Guest to Sluice: one descriptor; a header and a frame in two; a
    // 5000-byte frame through an indirect table of three.
    let small = udp_frame(1, 64);
    f.transmit(0, &small);
    let mid = udp_frame(2, 1514);
    f.write(buffer(1, 1), &[0; 12]);
    f.write(buffer(1, 2), &mid);
    f.set_desc(desc_table(1), 1, desc(buffer(1, 1), 12, NEXT, 2));
    f.set_desc(desc_table(1), 2, desc(buffer(1, 2), 1514, 0, 0));
    f.post(1, 1);
    let big = udp_frame(3, 5000);
    f.write(buffer(1, 3), &[0; 12]);
    f.write(buffer(1, 4), &big[..4000]);
    f.write(buffer(1, 5), &big[4000..]);
    f.set_desc(SCRATCH, 0, desc(buffer(1, 3), 12, NEXT, 1));
    f.set_desc(SCRATCH, 1, desc(buffer(1, 4), 4000, NEXT, 2));
    f.set_desc(SCRATCH, 2, desc(buffer(1, 5), 1000, 0, 0));
    f.set_desc(desc_table(1), 3, desc(SCRATCH, 48, INDIRECT, 0));
    f.post(1, 3);
    let got = rx_some(rx, &mut cache, 3);
    assert_eq!(got, vec![small, mid, big]);
    let used: Vec<u32> = f.take_used(1).iter().map(|u| u.id).collect();
    assert_eq!(used, vec![0, 1, 3], "every chain given back by its head");

    // Sluice to guest: 2 KiB receive buffers; a 5000-byte frame takes
    // three, said in the header's num_buffers.
    f.post_rx(0..8, 2048);
    let out = vec![udp_frame(4, 60), udp_frame(5, 5000), udp_frame(6, 1514)];
    assert_eq!(tx_all(tx, &mut cache, &out), 0);
    let used = f.take_used(0);
    let ids: Vec<u32> = used.iter().map(|u| u.id).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4]);
    let lens: Vec<u32> = used.iter().map(|u| u.len).collect();
    assert_eq!(lens, vec![72, 2048, 2048, 916, 1526]);
    let num_buffers = |s: u16| u16::from_le_bytes(f.read(buffer(0, s) + 10, 2).try_into().unwrap());
    assert_eq!((num_buffers(0), num_buffers(1), num_buffers(4)), (1, 3, 1));
    assert_eq!(f.read(buffer(0, 0) + 12, 60), out[0]);
    let mut joined = f.read(buffer(0, 1) + 12, 2036);
    joined.extend(f.read(buffer(0, 2), 2048));
    joined.extend(f.read(buffer(0, 3), 916));
    assert_eq!(joined, out[1]);
    assert_eq!(f.read(buffer(0, 4) + 12, 1514), out[2]);

    // No receive buffers left: refused, counted, not lost track of.
    let many: Vec<Vec<u8>> = (0..10).map(|i| udp_frame(i, 64)).collect();
    assert_eq!(tx_all(tx, &mut cache, &many), 7, "three buffers were left");
    assert_eq!(stats.snapshot().tx_ring_full, 7);
    assert_eq!(
        stats.snapshot().rx_bad_chains + stats.snapshot().tx_bad_chains,
        0
    );

    cache.flush();
    drop(s.halves);
    drop(s.running);
    drop(f);
    assert!(!memfd_held(&name), "the guest's memory is released");
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

#[test]
fn hostile_descriptors_are_counted_by_kind_and_never_followed() {
    let mut s = Setup::new(|_| {});
    let (mut f, _name) = s.frontend();
    f.handshake();
    assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
    let pool = pool();
    let mut cache = pool.cache(64);
    let stats = s.running.stats.clone();
    let (rx, tx) = &mut s.halves[0];
    let t = desc_table(1);
    let b = buffer(1, 0);
    f.write(b, &[0; 12]);
    f.write(b + 12, &udp_frame(9, 64));
    // A loop: 0 -> 1 -> 0.
    f.set_desc(t, 0, desc(b, 12, NEXT, 1));
    f.set_desc(t, 1, desc(b, 12, NEXT, 0));
    f.post(1, 0);
    // Outside guest memory.
    f.set_desc(t, 2, desc(frontend::GUEST_SIZE - 8, 76, 0, 0));
    f.post(1, 2);
    // A huge length.
    f.set_desc(t, 3, desc(b, u32::MAX, 0, 0));
    f.post(1, 3);
    // A head past the ring.
    f.post(1, RING + 7);
    // `next` past the ring.
    f.set_desc(t, 4, desc(b, 12, NEXT, RING));
    f.post(1, 4);
    // A buffer for the device to write, in a chain it reads.
    f.set_desc(t, 5, desc(b, 76, WRITE, 0));
    f.post(1, 5);
    // An indirect table inside an indirect table.
    f.set_desc(SCRATCH, 0, desc(SCRATCH, 16, INDIRECT, 0));
    f.set_desc(t, 6, desc(SCRATCH, 16, INDIRECT, 0));
    f.post(1, 6);
    // Too short for a frame.
    f.set_desc(t, 7, desc(b, 8, 0, 0));
    f.post(1, 7);
    // And a good one after all that.
    f.set_desc(t, 8, desc(b, 76, 0, 0));
    f.post(1, 8);
    let got = rx_some(rx, &mut cache, 1);
    assert_eq!(got, vec![udp_frame(9, 64)]);
    let c = stats.snapshot();
    assert_eq!(
        (
            c.chain_loops,
            c.out_of_memory,
            c.too_long,
            c.bad_head,
            c.bad_next,
            c.wrong_direction,
            c.bad_indirect,
            c.too_short
        ),
        (1, 1, 1, 1, 1, 1, 1, 1),
        "{c:?}"
    );
    assert_eq!(c.rx_bad_chains, 8);
    // Every chain with a real head came back (the bad head could not).
    let ids: Vec<u32> = f.take_used(1).iter().map(|u| u.id).collect();
    assert_eq!(ids, vec![0, 2, 3, 4, 5, 6, 7, 8]);

    // The receive ring: a read-only buffer, one outside memory, then a
    // good one: the frame lands in the good one.
    f.set_desc(desc_table(0), 0, desc(buffer(0, 0), 2048, 0, 0));
    f.post(0, 0);
    f.set_desc(desc_table(0), 1, desc(u64::MAX - 100, 2048, WRITE, 0));
    f.post(0, 1);
    f.post_rx(2..3, 2048);
    assert_eq!(tx_all(tx, &mut cache, &[udp_frame(10, 64)]), 0);
    let used = f.take_used(0);
    let got: Vec<(u32, u32)> = used.iter().map(|u| (u.id, u.len)).collect();
    assert_eq!(got, vec![(0, 0), (1, 0), (2, 76)]);
    assert_eq!(f.read(buffer(0, 2) + 12, 64), udp_frame(10, 64));
    assert_eq!(stats.snapshot().tx_bad_chains, 2);

    // An available index more than a ring ahead: the ring stops, counted.
    let before = f.used_idx(1);
    f.set_avail_idx(1, f.avail[1].wrapping_add(RING + 1));
    assert!(rx_some(rx, &mut cache, 1).is_empty());
    assert_eq!(stats.snapshot().bad_rings, 1);
    assert_eq!(f.used_idx(1), before, "nothing read from a broken ring");
    assert!(!rx.is_connected());
    cache.flush();
    drop(s.halves);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// One way of breaking the protocol.
struct Misstep {
    name: &'static str,
    act: fn(&mut Frontend),
}

fn missteps() -> Vec<Misstep> {
    fn bad_table(f: &mut Frontend, regions: Vec<MemRegion>, fds: usize) {
        let fds: Vec<_> = (0..fds).map(|_| f.memfd.as_fd()).collect();
        f.send(&Request::SetMemTable(regions), &fds);
    }
    fn region(gpa: u64, size: u64, user: u64, off: u64) -> MemRegion {
        MemRegion {
            guest_phys_addr: gpa,
            size,
            user_addr: user,
            mmap_offset: off,
        }
    }
    const G: u64 = frontend::GUEST_SIZE;
    vec![
        Misstep {
            name: "version 2 in the header",
            act: |f| {
                f.send_raw(&proto::message(1, 2, &[]), &[]);
            },
        },
        Misstep {
            name: "a header that says it is a reply",
            act: |f| {
                f.send_raw(&proto::message(1, 1 | proto::FLAG_REPLY, &[]), &[]);
            },
        },
        Misstep {
            name: "a payload of 1 MiB announced",
            act: |f| {
                let mut m = proto::message(5, 1, &[]);
                m[8..12].copy_from_slice(&(1u32 << 20).to_ne_bytes());
                f.send_raw(&m, &[]);
            },
        },
        Misstep {
            name: "SET_FEATURES with 4 bytes",
            act: |f| {
                f.send_raw(&proto::message(2, 1, &[0; 4]), &[]);
            },
        },
        Misstep {
            name: "an unknown request",
            act: |f| {
                f.send(&Request::Other(99), &[]);
            },
        },
        Misstep {
            name: "features not offered (packed rings)",
            act: |f| {
                f.send(
                    &Request::SetFeatures(
                        proto::features::VERSION_1 | proto::features::RING_PACKED,
                    ),
                    &[],
                );
            },
        },
        Misstep {
            name: "two regions, one descriptor",
            act: |f| {
                bad_table(
                    f,
                    vec![region(0, 4096, 0, 0), region(8192, 4096, 8192, 0)],
                    1,
                )
            },
        },
        Misstep {
            name: "overlapping regions",
            act: |f| bad_table(f, vec![region(0, G, 0, 0), region(4096, 4096, G, 0)], 2),
        },
        Misstep {
            name: "a region past the end of its file",
            act: |f| bad_table(f, vec![region(0, G, 0, 4096)], 1),
        },
        Misstep {
            name: "a region whose addresses wrap",
            act: |f| bad_table(f, vec![region(u64::MAX - 4095, 8192, 0, 0)], 1),
        },
        Misstep {
            name: "a ring size of 100",
            act: |f| {
                f.send(
                    &Request::SetVringNum(VringState { index: 0, num: 100 }),
                    &[],
                );
            },
        },
        Misstep {
            name: "ring 2 of one queue pair",
            act: |f| {
                f.send(
                    &Request::SetVringNum(VringState { index: 2, num: 256 }),
                    &[],
                );
            },
        },
        Misstep {
            name: "a kick that is not an eventfd",
            act: |f| {
                let fd = f.memfd.as_fd();
                f.send(&Request::SetVringKick(0), &[fd]);
            },
        },
        Misstep {
            name: "a kick without its descriptor",
            act: |f| {
                f.send(&Request::SetVringKick(0), &[]);
            },
        },
        Misstep {
            name: "a ring outside guest memory",
            act: |f| {
                f.negotiate(frontend::FEATURES);
                f.send(
                    &Request::SetVringNum(VringState { index: 0, num: 256 }),
                    &[],
                );
                f.send(
                    &Request::SetVringAddr(VringAddr {
                        desc: frontend::USER + frontend::GUEST_SIZE - 16,
                        ..Frontend::addr(0)
                    }),
                    &[],
                );
                let kick = sluice_io::sys::unix::eventfd().unwrap();
                f.send(&Request::SetVringKick(0), &[kick.as_fd()]);
                f.send(
                    &Request::SetVringEnable(VringState { index: 0, num: 1 }),
                    &[],
                );
            },
        },
        Misstep {
            name: "more descriptors than any message carries",
            act: |f| {
                let fds: Vec<_> = (0..12).map(|_| f.memfd.as_fd()).collect();
                f.send(&Request::SetOwner, &fds);
            },
        },
    ]
}

#[test]
fn every_protocol_misstep_is_counted_and_closed_and_nothing_is_kept() {
    let s = Setup::new(|_| {});
    let steps = missteps();
    for (i, m) in steps.iter().enumerate() {
        let (mut f, name) = s.frontend();
        (m.act)(&mut f);
        assert!(f.closed(), "{}: Sluice closes the connection", m.name);
        assert!(
            wait_until(Duration::from_secs(2), || s.counts().bad_messages
                == i as u64 + 1),
            "{}: counted ({:?})",
            m.name,
            s.counts()
        );
        drop(f);
        assert!(
            wait_until(Duration::from_secs(2), || !memfd_held(&name)),
            "{}: guest memory released",
            m.name
        );
    }
    assert_eq!(s.counts().refused, steps.len() as u64);
    // And the next front end is served.
    let (mut f, _) = s.frontend();
    f.handshake();
    assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
}

#[test]
fn frontend_vanishing_at_any_step_is_counted_and_released() {
    let s = Setup::new(|c| c.message_timeout = Duration::from_millis(200));
    // Mid-header.
    let (f, _) = s.frontend();
    f.send_raw(&proto::message(1, 1, &[])[..5], &[]);
    drop(f);
    assert!(wait_until(Duration::from_secs(2), || s.counts().refused == 1));
    // After its memory, before its rings.
    let (mut f, name) = s.frontend();
    f.negotiate(frontend::FEATURES);
    drop(f);
    assert!(wait_until(Duration::from_secs(2), || s.counts().refused == 2));
    assert!(wait_until(Duration::from_secs(2), || !memfd_held(&name)));
    // Up, then gone.
    let (mut f, name) = s.frontend();
    f.handshake();
    assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
    drop(f);
    assert!(wait_until(Duration::from_secs(2), || s.status.state()
        == LinkState::Down));
    assert!(wait_until(Duration::from_secs(2), || !memfd_held(&name)));
    assert_eq!((s.counts().connects, s.counts().disconnects), (1, 1));
    // A message begun and never finished: dropped when it is late.
    let (f, _) = s.frontend();
    f.send_raw(&proto::message(2, 1, &[0; 8])[..14], &[]);
    assert!(f.closed(), "a stalled message times out");
    assert_eq!(s.running.stats.last_reason(), "message timed out");
    // A second front end while one is connected is turned away.
    let (mut f, _) = s.frontend();
    f.handshake();
    let (g, _) = s.frontend();
    assert!(g.closed());
    assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn any_desc() -> impl Strategy<Value = VirtqDesc> {
        (
            any::<u64>(),
            0u64..(6 << 20),
            0u32..9000,
            any::<u32>(),
            0u16..8,
            0u16..300,
            any::<bool>(),
        )
            .prop_map(|(wild, near, len, wild_len, flags, next, tame)| VirtqDesc {
                addr: if tame { near } else { wild },
                len: if tame { len } else { wild_len },
                flags,
                next,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever a guest writes in its rings (descriptors, indirect
        /// tables, heads, indices), Sluice neither crashes nor leaks a
        /// buffer, reads no more than was published, and gives back only
        /// real heads.
        #[test]
        fn random_rings_cannot_hurt_sluice(
            tx_descs in proptest::collection::vec(any_desc(), 1..64),
            rx_descs in proptest::collection::vec(any_desc(), 1..64),
            indirect in proptest::collection::vec(any_desc(), 0..16),
            heads in proptest::collection::vec(0u16..300, 1..64),
            skew in prop_oneof![Just(0u16), any::<u16>()],
            frames in proptest::collection::vec(60usize..9000, 1..16),
        ) {
            let mut s = Setup::new(|_| {});
            let (mut f, _name) = s.frontend();
            f.handshake();
            prop_assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
            let pool = pool();
            let mut cache = pool.cache(64);
            for (i, d) in indirect.iter().enumerate() {
                f.set_desc(SCRATCH, i as u16, *d);
            }
            for (i, d) in tx_descs.iter().enumerate() {
                f.set_desc(desc_table(1), i as u16, *d);
            }
            for (i, d) in rx_descs.iter().enumerate() {
                f.set_desc(desc_table(0), i as u16, *d);
            }
            for &h in &heads {
                f.post(1, h);
                f.post(0, h);
            }
            let published = if skew == 0 || skew as u32 + heads.len() as u32 <= RING as u32 {
                heads.len() + skew as usize
            } else {
                0
            };
            f.set_avail_idx(1, (heads.len() as u16).wrapping_add(skew));
            let (rx, tx) = &mut s.halves[0];
            let mut received = 0;
            let mut frame = Frame::new();
            for _ in 0..4 {
                rx.rx_burst(&mut cache, &mut frame, 256);
                received += frame.len();
                cache.free_all(&mut frame);
                let packets: Vec<Vec<u8>> = frames.iter().map(|&n| udp_frame(n as u32, n)).collect();
                tx_all(tx, &mut cache, &packets);
            }
            prop_assert!(received <= published, "{} received of {} published", received, published);
            for r in 0..2 {
                for u in f.take_used(r) {
                    prop_assert!(u.id < RING as u32, "used id {} past the ring", u.id);
                }
            }
            cache.flush();
            drop(s.halves);
            prop_assert_eq!(pool.free_count(), pool.capacity());
        }
    }
}

fn readable(fd: std::os::fd::RawFd) -> bool {
    sluice_io::sys::wait_readable(&[fd], Duration::from_millis(200)).is_ok_and(|r| r)
}

#[test]
fn interrupt_mode_asks_for_kicks_when_dry_and_calls_the_guest() {
    use std::os::fd::AsRawFd;
    let mut s = Setup::new(|c| c.rx_mode = vhost::RxMode::Interrupt);
    let (mut f, _) = s.frontend();
    f.handshake();
    assert!(wait_until(Duration::from_secs(2), || s.status.state() == LinkState::Up));
    let pool = pool();
    let mut cache = pool.cache(64);
    let (rx, tx) = &mut s.halves[0];
    let used_flags = |f: &Frontend, r: usize| {
        u16::from_le_bytes(f.read(frontend::used_ring(r), 2).try_into().unwrap())
    };
    // Polled rings start with kicks off.
    assert_eq!(used_flags(&f, 1), 1, "NO_NOTIFY while polled");
    // Dry: the half asks for kicks and offers the kick eventfd to sleep on.
    let mut frame = Frame::new();
    assert_eq!(rx.rx_burst(&mut cache, &mut frame, 256), InputState::Idle);
    assert_eq!(used_flags(&f, 1), 0, "kicks wanted when dry");
    let fd = rx.wait_fd().expect("a kick eventfd to wait on");
    assert!(!readable(fd));
    // The guest transmits and kicks: the worker would wake.
    f.transmit(0, &udp_frame(1, 64));
    sluice_io::sys::unix::eventfd_kick(f.kicks[1].as_fd()).unwrap();
    assert!(readable(fd));
    assert_eq!(
        rx.rx_burst(&mut cache, &mut frame, 256),
        InputState::Busy(1)
    );
    assert_eq!(used_flags(&f, 1), 1, "kicks off again while busy");
    cache.free_all(&mut frame);
    // The guest did not set NO_INTERRUPT: each publish calls it.
    let call = f.calls[1].as_raw_fd();
    assert!(readable(call), "the transmit chain's return was signalled");
    sluice_io::sys::unix::eventfd_drain(f.calls[1].as_fd()).unwrap();
    f.post_rx(0..1, 2048);
    assert_eq!(tx_all(tx, &mut cache, &[udp_frame(2, 64)]), 0);
    assert!(
        readable(f.calls[0].as_raw_fd()),
        "the receive was signalled"
    );
    // With NO_INTERRUPT set, no call.
    sluice_io::sys::unix::eventfd_drain(f.calls[0].as_fd()).unwrap();
    f.write(frontend::avail_ring(0), &1u16.to_le_bytes());
    f.post_rx(1..2, 2048);
    assert_eq!(tx_all(tx, &mut cache, &[udp_frame(3, 64)]), 0);
    assert!(!readable(f.calls[0].as_raw_fd()), "no call asked for");
    cache.flush();
    drop(s.halves);
    assert_eq!(pool.free_count(), pool.capacity());
}

/// A measurement, not a check (run it by hand, in release, with this
/// thread on its own CPU):
/// `taskset -c 0 cargo test --release -p sluice-io --test vhost measure -- --ignored --nocapture`.
///
/// testpmd (`net_virtio_user`, `io` forwarding, primed with `--tx-first`)
/// on the last CPU; Sluice reflects every frame it dequeues straight back
/// into testpmd's receive ring, so frames circle testpmd → Sluice →
/// testpmd. Prints what Sluice moved per second and its time per packet.
#[test]
#[ignore = "a measurement: run by hand in release"]
fn measure_reflect_with_testpmd() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = Scratch::new("vhost");
    let (mut v, mut halves, status) = listening(&dir);
    let burst = std::env::var("BURST").unwrap_or_else(|_| "64".into());
    let tp = testpmd(
        &dir.join("vhost.sock"),
        false,
        "io",
        &[
            "--port-topology=loop",
            "--tx-first",
            &format!("--burst={burst}"),
        ],
    );
    up(&mut v, &status);
    let pool = pool();
    let mut cache = pool.cache(256);
    let (rx, tx) = &mut halves[0];
    let mut frame = Frame::new();
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
    for (phase, secs) in [("warm-up", 2u64), ("measured", 5)] {
        let (mut moved, mut unsent) = (0u64, 0u64);
        let start = Instant::now();
        let mut turns = 0u32;
        while start.elapsed() < Duration::from_secs(secs) {
            for _ in 0..1024 {
                if let InputState::Busy(n) = rx.rx_burst(&mut cache, &mut frame, 256) {
                    moved += n as u64;
                    unsent += tx.tx_burst(&mut cache, &mut frame) as u64;
                }
            }
            turns += 1;
            if turns.is_multiple_of(64) {
                v.poll(Duration::ZERO);
            }
        }
        let t = start.elapsed().as_secs_f64();
        eprintln!(
            "{phase}: burst {burst}: {:.2} Mpps reflected by Sluice ({moved} in {t:.1} s, \
             {unsent} unsent), {:.1} ns/packet, ~{:.0} cycles/packet at {mhz:.0} MHz",
            moved as f64 / t / 1e6,
            t * 1e9 / moved.max(1) as f64,
            t * mhz * 1e6 / moved.max(1) as f64,
        );
    }
    let c = v.stats().snapshot();
    drop(tp.stop(&mut v));
    assert_eq!(c.rx_bad_chains + c.tx_bad_chains, 0, "{c:?}");
    cache.flush();
}
