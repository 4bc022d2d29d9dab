//! memif in the client role: against Sluice's own server (in this
//! process), against DPDK's `dpdk-testpmd` as a server, across a server
//! restart, and against a server that speaks the wrong version.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_graph::Frame;
use sluice_io::memif::proto::{Hello, MSG_SIZE, Message, Text};
use sluice_io::memif::{
    self, MemifClient, MemifClientConfig, MemifClientRx, MemifClientTx, MemifConfig, MemifRx,
    MemifServer, MemifSocket, MemifTx,
};
use sluice_io::sys::unix::{self, UnixAddr};
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
        TempDir(Scratch::new("memifc"))
    }

    fn sock(&self) -> PathBuf {
        self.0.join("memif.sock")
    }
}

/// Polls the server (if any) and the client until `done` or `timeout`.
fn drive(
    mut server: Option<&mut MemifServer>,
    client: &mut MemifClient,
    timeout: Duration,
    mut done: impl FnMut(&MemifClient) -> bool,
) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Some(s) = server.as_deref_mut() {
            s.poll(Duration::from_micros(100));
        }
        client.poll(Duration::from_micros(100));
        if done(client) {
            return true;
        }
    }
    false
}

fn frame_of(seq: u32, len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i as u32 ^ seq) as u8).collect();
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    f
}

fn send(tx: &mut impl Driver, cache: &mut BufCache, packets: &[Vec<u8>]) -> usize {
    let mut frame = Frame::new();
    for p in packets {
        frame.push(cache.alloc_from(p).unwrap());
    }
    tx.tx_burst(cache, &mut frame)
}

/// Receives on `rx` until `n` packets came or a few seconds passed.
fn recv(rx: &mut impl Driver, cache: &mut BufCache, n: usize) -> Vec<Vec<u8>> {
    let mut frame = Frame::new();
    let mut out = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while out.len() < n && Instant::now() < end {
        rx.rx_burst(cache, &mut frame, 256);
        for p in frame.iter() {
            let mut v = Vec::new();
            p.copy_to(&mut v);
            out.push(v);
        }
        cache.free_all(&mut frame);
    }
    out
}

/// A Sluice server and a Sluice client of it, with their halves and the
/// client's link status.
struct Pair {
    server: MemifServer,
    sh: Vec<(MemifRx, MemifTx)>,
    client: MemifClient,
    ch: Vec<(MemifClientRx, MemifClientTx)>,
    status: Arc<LinkStatus>,
}

fn pair(dir: &TempDir, queues: u16) -> Pair {
    let mut sc = MemifConfig::new("srv", dir.sock());
    sc.queues = queues;
    let (server, sh) = memif::listen(&sc, &LinkStatus::new()).expect("listen");
    let mut cc = MemifClientConfig::new("cli", dir.sock());
    cc.queues = queues;
    cc.log2_ring_size = 8;
    let status = LinkStatus::new();
    let (client, ch) = memif::connect(&cc, &status).expect("connect");
    Pair {
        server,
        sh,
        client,
        ch,
        status,
    }
}

#[test]
fn sluice_client_and_sluice_server_exchange_frames_both_ways() {
    let dir = TempDir::new();
    let Pair {
        mut server,
        mut sh,
        mut client,
        mut ch,
        status,
    } = pair(&dir, 2);
    assert!(
        drive(
            Some(&mut server),
            &mut client,
            Duration::from_secs(5),
            |c| c.is_connected()
        ),
        "no connection: client says {:?}, server says {:?}",
        client.stats().last_reason(),
        server.stats().last_reason()
    );
    assert!(server.is_connected());
    assert_eq!(status.state(), LinkState::Up);
    assert_eq!(client.active_queues(), 2);

    let pool = pool();
    let mut cache = pool.cache(64);
    // Small frames, a full-size one, and chained ones (> 2 KiB buffers).
    let lens = [60, 64, 1514, 2048, 2049, 4000, 9000, 128];
    for q in 0..2 {
        let frames: Vec<_> = lens
            .iter()
            .enumerate()
            .map(|(i, &l)| frame_of((q * 100 + i) as u32, l))
            .collect();
        // Client to server.
        assert_eq!(send(&mut ch[q].1, &mut cache, &frames), 0, "all queued");
        let got = recv(&mut sh[q].0, &mut cache, frames.len());
        assert_eq!(got, frames, "queue {q}: client to server");
        // Server to client.
        assert_eq!(send(&mut sh[q].1, &mut cache, &frames), 0, "all queued");
        let got = recv(&mut ch[q].0, &mut cache, frames.len());
        assert_eq!(got, frames, "queue {q}: server to client");
    }
    // Many more than a ring (256) in each direction: buffers come back
    // and are posted again.
    for round in 0..20u32 {
        let frames: Vec<_> = (0..100).map(|i| frame_of(round * 1000 + i, 200)).collect();
        assert_eq!(send(&mut ch[0].1, &mut cache, &frames), 0);
        assert_eq!(recv(&mut sh[0].0, &mut cache, 100), frames);
        assert_eq!(send(&mut sh[0].1, &mut cache, &frames), 0);
        assert_eq!(recv(&mut ch[0].0, &mut cache, 100), frames);
    }
    let counts = client.stats().snapshot();
    assert_eq!(counts.rx_bad_descriptors + counts.bad_rings, 0);
    assert_eq!(server.stats().snapshot().rx_bad_descriptors, 0);

    // The client goes: the server sees it.
    drop(ch);
    drop(client);
    assert_eq!(status.state(), LinkState::Down);
    let end = Instant::now() + Duration::from_secs(5);
    while server.is_connected() && Instant::now() < end {
        server.poll(Duration::from_millis(1));
    }
    assert!(!server.is_connected());
    assert_eq!(
        server.stats().last_reason(),
        "client disconnected: interface deleted"
    );
    cache.flush();
    drop(sh);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

#[test]
fn client_reconnects_when_the_server_comes_back() {
    let dir = TempDir::new();
    let Pair {
        mut server,
        sh,
        mut client,
        mut ch,
        status,
    } = pair(&dir, 1);
    assert!(drive(
        Some(&mut server),
        &mut client,
        Duration::from_secs(5),
        |c| c.is_connected()
    ));
    // The server goes away: the client records why and goes down.
    drop(sh);
    drop(server);
    assert!(drive(None, &mut client, Duration::from_secs(5), |c| !c
        .is_connected()));
    assert_eq!(status.state(), LinkState::Down);
    assert_eq!(
        client.stats().last_reason(),
        "server disconnected: interface deleted"
    );
    assert_eq!(client.stats().snapshot().disconnects, 1);
    // While it is gone, attempts fail quietly.
    drive(None, &mut client, Duration::from_millis(1200), |_| false);
    assert!(client.stats().last_reason().starts_with("cannot connect"));

    // It comes back: the client connects again within a second or so.
    let mut sc = MemifConfig::new("srv", dir.sock());
    sc.queues = 1;
    let (mut server, mut sh) = memif::listen(&sc, &LinkStatus::new()).expect("listen again");
    assert!(
        drive(
            Some(&mut server),
            &mut client,
            Duration::from_secs(5),
            |c| c.is_connected()
        ),
        "no reconnection: {}",
        client.stats().last_reason()
    );
    assert_eq!(status.state(), LinkState::Up);
    assert_eq!(client.stats().snapshot().connects, 2);
    let pool = pool();
    let mut cache = pool.cache(64);
    let frames: Vec<_> = (0..10).map(|i| frame_of(i, 3000)).collect();
    assert_eq!(send(&mut ch[0].1, &mut cache, &frames), 0);
    assert_eq!(recv(&mut sh[0].0, &mut cache, 10), frames);
    assert_eq!(send(&mut sh[0].1, &mut cache, &frames), 0);
    assert_eq!(recv(&mut ch[0].0, &mut cache, 10), frames);
    drop(ch);
    drop(client);
    cache.flush();
    drop(sh);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// Whether this process holds a memfd whose name starts `sluice-memif-`
/// followed by `name` (a descriptor or a mapping).
fn memfd_held(name: &str) -> bool {
    let needle = format!("memfd:sluice-memif-{name} ");
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let fds = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .any(|t| format!("{} ", t.display()).contains(&needle));
    fds || maps.contains(&needle)
}

#[test]
fn server_with_the_wrong_version_is_refused_and_nothing_leaks() {
    let dir = TempDir::new();
    // A fake server: it says HELLO for version 3.0 only.
    let listener = unix::seqpacket().unwrap();
    unix::bind_unix(listener.as_fd(), UnixAddr::Path(&dir.sock())).unwrap();
    unix::listen(listener.as_fd(), 4).unwrap();
    let mut cc = MemifClientConfig::new("badver", dir.sock());
    cc.reconnect_interval = Duration::from_secs(60);
    let status = LinkStatus::new();
    let (mut client, halves) = memif::connect(&cc, &status).expect("connect");
    let peer = unix::accept(listener.as_fd())
        .unwrap()
        .expect("client dialled");
    let hello = Message::Hello(Hello {
        name: Text::new("bad"),
        min_version: 0x0300,
        max_version: 0x0300,
        max_region: 255,
        max_s2c_ring: 0,
        max_c2s_ring: 0,
        max_log2_ring_size: 14,
    });
    unix::send_with_fd(peer.as_fd(), &hello.encode(), None).unwrap();
    assert!(drive(None, &mut client, Duration::from_secs(5), |c| c
        .fds()
        .is_empty()));
    let reason = client.stats().last_reason();
    assert!(
        reason.contains("unsupported version") && reason.contains("0x0300"),
        "{reason}"
    );
    assert_eq!(client.stats().snapshot().refused, 1);
    assert_eq!(status.state(), LinkState::Down);
    // The refusal was said, then the socket closed; no memory was made.
    let mut buf = [0u8; MSG_SIZE];
    let got = unix::recv_with_fds(peer.as_fd(), &mut buf)
        .unwrap()
        .unwrap();
    match Message::decode(&buf[..got.len]).unwrap() {
        Message::Disconnect { reason, .. } => {
            assert!(reason.to_string_lossy().contains("unsupported version"))
        }
        m => panic!("expected DISCONNECT, got {m:?}"),
    }
    let end = unix::recv_with_fds(peer.as_fd(), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(end.len, 0, "client closed its socket");
    assert!(!memfd_held("badver"));
    drop(halves);
    drop(client);
}

#[test]
fn client_finds_a_server_on_an_abstract_socket() {
    let name = format!("sluice-memifc-{}", unique("a"));
    let mut sc = MemifConfig::new("srv", "/unused");
    sc.socket = MemifSocket::Abstract(name.clone());
    let (mut server, mut sh) = memif::listen(&sc, &LinkStatus::new()).expect("listen");
    let mut cc = MemifClientConfig::new("cli", "/unused");
    cc.socket = MemifSocket::Abstract(name);
    cc.log2_ring_size = 6;
    let (mut client, mut ch) = memif::connect(&cc, &LinkStatus::new()).expect("connect");
    assert!(
        drive(
            Some(&mut server),
            &mut client,
            Duration::from_secs(5),
            |c| c.is_connected()
        ),
        "{}",
        client.stats().last_reason()
    );
    let pool = pool();
    let mut cache = pool.cache(64);
    let frames: Vec<_> = (0..5).map(|i| frame_of(i, 100)).collect();
    assert_eq!(send(&mut ch[0].1, &mut cache, &frames), 0);
    assert_eq!(recv(&mut sh[0].0, &mut cache, 5), frames);
    drop(ch);
    drop(client);
    cache.flush();
    drop(sh);
    drop(server);
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

// ---- against DPDK ----

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
    /// `dpdk-testpmd` as a memif server on socket file `sock`, in `mode`.
    fn server(sock: &std::path::Path, mode: &str) -> Testpmd {
        let cpu = testpmd_cpu();
        let prefix = unique("tpc");
        let vdev = format!(
            "net_memif0,role=server,id=0,socket={},socket-abstract=no",
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        Testpmd {
            child: Some(ChildGuard(cmd.spawn().expect("spawn dpdk-testpmd"))),
            prefix,
        }
    }

    /// Stops testpmd as Ctrl-C would (by its PID) and returns its output.
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

/// testpmd's last "RX-packets:" figure of its port statistics.
fn testpmd_rx_packets(out: &str) -> Option<u64> {
    out.lines()
        .rev()
        .filter(|l| l.contains("RX-missed"))
        .filter_map(|l| l.trim().strip_prefix("RX-packets:"))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .next()
}

#[test]
fn sluice_client_reaches_testpmd_rxonly_server() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let tp = Testpmd::server(&dir.sock(), "rxonly");
    let mut cc = MemifClientConfig::new("memif0", dir.sock());
    cc.reconnect_interval = Duration::from_millis(100);
    let status = LinkStatus::new();
    let (mut client, mut halves) = memif::connect(&cc, &status).expect("connect");
    assert!(
        drive(None, &mut client, Duration::from_secs(30), |c| c
            .is_connected()),
        "testpmd did not accept: {}",
        client.stats().last_reason()
    );
    assert_eq!(status.state(), LinkState::Up);
    let pool = pool();
    let mut cache = pool.cache(64);
    let tx = &mut halves[0].1;
    const N: u64 = 20_000;
    let mut sent = 0u64;
    let end = Instant::now() + Duration::from_secs(20);
    while sent < N && Instant::now() < end {
        let n = 32.min(N - sent);
        let frames: Vec<_> = (0..n).map(|i| frame_of((sent + i) as u32, 64)).collect();
        let failed = send(tx, &mut cache, &frames) as u64;
        sent += n - failed;
        client.poll(Duration::ZERO);
    }
    assert_eq!(sent, N, "sent only {sent}: {:?}", client.stats().snapshot());
    std::thread::sleep(Duration::from_millis(2500));
    let out = tp.stop();
    let text = String::from_utf8_lossy(&out.stdout);
    let rx = testpmd_rx_packets(&text).expect("testpmd printed its statistics");
    assert_eq!(rx, N, "testpmd received what Sluice sent");
    // testpmd gone: the client notices.
    assert!(drive(None, &mut client, Duration::from_secs(5), |c| !c
        .is_connected()));
    drop(halves);
    drop(client);
    cache.flush();
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

#[test]
fn testpmd_txonly_server_reaches_sluice_client() {
    if !require("dpdk-testpmd") {
        return;
    }
    let dir = TempDir::new();
    let _tp = Testpmd::server(&dir.sock(), "txonly");
    let mut cc = MemifClientConfig::new("memif0", dir.sock());
    cc.reconnect_interval = Duration::from_millis(100);
    let status = LinkStatus::new();
    let (mut client, mut halves) = memif::connect(&cc, &status).expect("connect");
    assert!(
        drive(None, &mut client, Duration::from_secs(30), |c| c
            .is_connected()),
        "testpmd did not accept: {}",
        client.stats().last_reason()
    );
    let pool = pool();
    let mut cache = pool.cache(64);
    let rx = &mut halves[0].0;
    let mut frame = Frame::new();
    let (mut got, mut udp) = (0usize, 0usize);
    let end = Instant::now() + Duration::from_secs(20);
    while got < 10_000 && Instant::now() < end {
        rx.rx_burst(&mut cache, &mut frame, 256);
        for p in frame.iter() {
            let f = p.data();
            if f.len() == 64 && f[12..14] == [0x08, 0x00] && f[23] == 17 {
                udp += 1;
            }
        }
        got += frame.len();
        cache.free_all(&mut frame);
        client.poll(Duration::ZERO);
    }
    assert!(
        got >= 10_000,
        "received {got}: {:?}",
        client.stats().snapshot()
    );
    assert_eq!(udp, got, "every frame is testpmd's 64-byte UDP");
    assert_eq!(client.stats().snapshot().rx_bad_descriptors, 0);
    drop(halves);
    drop(client);
    cache.flush();
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// A network function built on `MemifPort` (the reflector of the example)
/// sends back what a Sluice server gives it, MACs swapped.
#[test]
fn a_memif_port_reflects_frames_back_to_sluice() {
    use sluice_io::memif::{MemifConfig, MemifPort, listen};
    let dir = std::env::temp_dir().join(sluice_testnet::unique("port"));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("m.sock");
    let status = sluice_io::LinkStatus::new();
    let (mut server, mut queues) = listen(&MemifConfig::new("m0", &sock), &status).unwrap();
    let (mut rx, mut tx) = queues.remove(0);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let path = sock.to_str().unwrap().to_string();
    let vnf = std::thread::spawn(move || {
        let mut port = MemifPort::connect(&path, 0).unwrap();
        let mut back = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            back += port.reflect(|p| {
                let d = p.data_mut();
                for i in 0..6 {
                    d.swap(i, i + 6);
                }
                true
            });
        }
        back
    });
    let pool = sluice_buf::Pool::new(&sluice_buf::PoolConfig {
        buffers: 4096,
        huge_pages: sluice_buf::HugePages::Never,
        lock: false,
    })
    .unwrap();
    let mut cache = pool.cache(64);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.is_connected() && std::time::Instant::now() < end {
        server.poll(std::time::Duration::from_millis(5));
    }
    assert!(server.is_connected());
    let mut frame = sluice_graph::Frame::new();
    let mut f = vec![0u8; 100];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xbb]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xaa]);
    use sluice_io::Driver;
    // The port posts its receive buffers once it hears CONNECTED: probe
    // until one comes back.
    let mut probes = 0;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    'probe: while std::time::Instant::now() < end {
        let mut p = f.clone();
        p[20] = 0xff;
        frame.push(cache.alloc_from(&p).unwrap());
        probes += 1 - tx.tx_burst(&mut cache, &mut frame);
        for _ in 0..100 {
            server.poll(std::time::Duration::ZERO);
            rx.rx_burst(&mut cache, &mut frame, 256);
            let back = !frame.is_empty();
            cache.free_all(&mut frame);
            if back {
                break 'probe;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let mut got = Vec::new();
    for round in 0..20u8 {
        f[20] = round;
        for _ in 0..50 {
            frame.push(cache.alloc_from(&f).unwrap());
        }
        assert_eq!(tx.tx_burst(&mut cache, &mut frame), 0);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let before = got.len();
        while got.len() < before + 50 && std::time::Instant::now() < end {
            server.poll(std::time::Duration::ZERO);
            rx.rx_burst(&mut cache, &mut frame, 256);
            for p in frame.drain(..) {
                if p.data()[20] != 0xff {
                    got.push(p.data().to_vec());
                }
                cache.free(p);
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let back = vnf.join().unwrap();
    assert_eq!(got.len(), 1000, "every frame came back");
    assert!(
        back >= 1000 && back <= 1000 + probes,
        "{back} reflected, {probes} probes"
    );
    for g in &got {
        assert_eq!(&g[..6], &[2, 0, 0, 0, 0, 0xaa], "MACs swapped");
        assert_eq!(&g[6..12], &[2, 0, 0, 0, 0, 0xbb]);
    }
    drop((rx, tx, server));
    let _ = std::fs::remove_dir_all(&dir);
}
