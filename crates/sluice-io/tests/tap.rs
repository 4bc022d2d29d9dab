//! The TAP driver against the real kernel: TAPs that Sluice makes inside
//! test namespaces, Linux hosts there talking through Sluice, and devices
//! pulled away under a running driver.
//!
//! Root is needed (namespaces, TAPs); under `CI=true` its absence fails.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_graph::{FRAME_SIZE, Frame, InputState};
use sluice_io::sys::{self, netns};
use sluice_io::tap::{LINK_CHECK, Tap, TapConfig, TapRx, TapRxStats, TapTx};
use sluice_io::{Driver, KernelError, LinkState};
use sluice_testnet::{Netns, require, require_root, run, unique};
use sluice_wire::{IpProtocol, checksum};

fn pool() -> Pool {
    Pool::new(&PoolConfig {
        buffers: 4096,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

/// A namespace with a TAP that Sluice made in it (the kernel side).
struct TapHost {
    name: String,
    ns: Netns,
}

/// The two halves of a TAP's driver.
type Halves = (TapRx, TapTx);

impl TapHost {
    fn new(offload: bool, mtu: Option<u32>) -> (TapHost, Halves) {
        let ns = Netns::new();
        let name = unique("sltap");
        let mut cfg = TapConfig::new(&name).in_netns(ns.name());
        cfg.offload = offload;
        cfg.mtu = mtu;
        let halves = Tap::open(&cfg).unwrap();
        (TapHost { name, ns }, halves)
    }

    /// Addresses the kernel side: `v4` and `v6` with their prefixes.
    fn address(&self, v4: &str, v6: &str) {
        let ns = &self.ns;
        ns.run(&["ip", "addr", "add", v4, "dev", &self.name]);
        ns.run(&["ip", "-6", "addr", "add", v6, "dev", &self.name, "nodad"]);
    }

    /// A counter of `/proc/net/snmp` (e.g. `Udp`, `InCsumErrors`) in the
    /// host.
    fn snmp(&self, proto: &str, field: &str) -> u64 {
        let text = self.ns.run(&["cat", "/proc/net/snmp"]);
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{proto}:")))
            .collect();
        let names = rows[0].split_whitespace();
        let values = rows[1].split_whitespace();
        names
            .zip(values)
            .find(|(n, _)| *n == field)
            .map(|(_, v)| v.parse().unwrap())
            .unwrap()
    }

    /// A counter of `/proc/net/snmp6` (e.g. `Udp6InCsumErrors`).
    fn snmp6(&self, field: &str) -> u64 {
        let text = self.ns.run(&["cat", "/proc/net/snmp6"]);
        text.lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(field)).then(|| w.next()?.parse().ok())?
            })
            .unwrap()
    }
}

/// Sluice as a wire between two TAPs: what comes in one goes out the
/// other, on a thread of its own, sleeping on the TAPs when idle.
struct Wire {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<WireStats>>,
}

#[derive(Debug, Default)]
struct WireStats {
    forwarded: u64,
    tx_failed: u64,
    rx_drops: u64,
    a: TapRxStats,
    b: TapRxStats,
    /// CPU time the wire's thread used, user and system.
    cpu: Duration,
}

/// The calling thread's CPU time so far (user and system), from
/// `/proc/thread-self/stat`.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here, in
    // clock ticks (100 per second on Linux).
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

impl Wire {
    fn start(pool: &Pool, a: Halves, b: Halves) -> Wire {
        let (mut a_rx, mut a_tx) = a;
        let (mut b_rx, mut b_tx) = b;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut buffers = pool.cache(64);
        let thread = std::thread::spawn(move || {
            let mut st = WireStats::default();
            let mut frame = Frame::new();
            let fds: Vec<RawFd> = [a_rx.wait_fd(), b_rx.wait_fd()]
                .into_iter()
                .flatten()
                .collect();
            while !flag.load(Ordering::Relaxed) {
                let n = pass(&mut a_rx, &mut b_tx, &mut buffers, &mut frame, &mut st)
                    + pass(&mut b_rx, &mut a_tx, &mut buffers, &mut frame, &mut st);
                if n == 0 {
                    let _ = sys::wait_readable(&fds, Duration::from_millis(5));
                }
            }
            st.a = a_rx.stats();
            st.b = b_rx.stats();
            st.cpu = thread_cpu();
            st
        });
        Wire {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the wire; the drivers and the buffer cache are dropped.
    fn stop(mut self) -> WireStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pass(
    rx: &mut TapRx,
    tx: &mut TapTx,
    buffers: &mut BufCache,
    frame: &mut Frame,
    st: &mut WireStats,
) -> usize {
    let n = match rx.rx_burst(buffers, frame, FRAME_SIZE) {
        InputState::Busy(n) => n,
        _ => 0,
    };
    st.rx_drops += rx.take_rx_drops();
    if !frame.is_empty() {
        st.forwarded += frame.len() as u64;
        st.tx_failed += tx.tx_burst(buffers, frame) as u64;
        assert!(frame.is_empty(), "tx left packets behind");
    }
    n
}

/// Two Linux hosts, each in its own namespace behind a TAP, on one
/// subnet, wired through Sluice.
fn two_hosts(pool: &Pool, offload: bool) -> (TapHost, TapHost, Wire) {
    let (a, a_halves) = TapHost::new(offload, None);
    let (b, b_halves) = TapHost::new(offload, None);
    a.address("10.77.0.1/24", "fd77::1/64");
    b.address("10.77.0.2/24", "fd77::2/64");
    let wire = Wire::start(pool, a_halves, b_halves);
    (a, b, wire)
}

fn pattern(i: usize) -> u8 {
    (i % 251) as u8 ^ (i >> 16) as u8
}

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> KernelError + '_ {
    move |e| KernelError::other(what, e.to_string())
}

/// Sends `bytes` of a pattern over TCP from a client in `from` to a server
/// at `to` in `server_ns`; the server checks every byte. Returns the
/// transfer's duration.
fn tcp_transfer(client_ns: &str, server_ns: &str, to: SocketAddr, bytes: usize) -> Duration {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server_ns = server_ns.to_string();
    let server = std::thread::spawn(move || {
        netns::run_in(Some(&server_ns), || {
            let l = TcpListener::bind(to).map_err(io_err("bind"))?;
            l.set_nonblocking(true).map_err(io_err("nonblocking"))?;
            let _ = ready_tx.send(());
            let end = Instant::now() + Duration::from_secs(10);
            let mut s = loop {
                match l.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => return Err(io_err("accept")(e)),
                }
            };
            s.set_nonblocking(false).map_err(io_err("blocking"))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .map_err(io_err("timeout"))?;
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0usize;
            loop {
                let n = s.read(&mut buf).map_err(io_err("read"))?;
                if n == 0 {
                    break;
                }
                for (k, &b) in buf[..n].iter().enumerate() {
                    if b != pattern(got + k) {
                        return Err(KernelError::other("content", format!("byte {}", got + k)));
                    }
                }
                got += n;
            }
            Ok(got)
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("server ready");
    let t0 = Instant::now();
    netns::run_in(Some(client_ns), || {
        let mut s =
            TcpStream::connect_timeout(&to, Duration::from_secs(5)).map_err(io_err("connect"))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(io_err("timeout"))?;
        let data: Vec<u8> = (0..bytes).map(pattern).collect();
        s.write_all(&data).map_err(io_err("write"))?;
        s.shutdown(std::net::Shutdown::Write)
            .map_err(io_err("shutdown"))
    })
    .unwrap();
    let got = server.join().unwrap().unwrap();
    let took = t0.elapsed();
    assert_eq!(got, bytes, "server got {got} of {bytes} bytes");
    took
}

const MB: usize = 1 << 20;

#[test]
fn hosts_talk_tcp_through_sluice_with_offloads() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let (a, b, wire) = two_hosts(&pool, true);
    let v4 = tcp_transfer(
        a.ns.name(),
        b.ns.name(),
        "10.77.0.2:5001".parse().unwrap(),
        8 * MB,
    );
    let v6 = tcp_transfer(
        b.ns.name(),
        a.ns.name(),
        "[fd77::1]:5001".parse().unwrap(),
        8 * MB,
    );
    let st = wire.stop();
    eprintln!("8 MiB over IPv4 in {v4:?}, over IPv6 in {v6:?}; {st:?}");
    // The senders' stacks handed over 64 KiB segments and left checksums
    // to Sluice: the offloads are in use, and Sluice finished them (the
    // receivers checked every byte and every checksum).
    assert!(st.a.gso > 0 && st.b.gso > 0, "{st:?}");
    assert_eq!((st.tx_failed, st.rx_drops), (0, 0), "{st:?}");
    for h in [&a, &b] {
        assert_eq!(h.snmp("Tcp", "InCsumErrors"), 0);
        assert_eq!(h.snmp("Ip", "InHdrErrors"), 0);
    }
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn hosts_talk_tcp_through_sluice_without_offloads() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let (a, b, wire) = two_hosts(&pool, false);
    tcp_transfer(
        a.ns.name(),
        b.ns.name(),
        "10.77.0.2:5001".parse().unwrap(),
        4 * MB,
    );
    let st = wire.stop();
    assert_eq!((st.a.gso, st.a.partial_csum, st.b.gso), (0, 0, 0), "{st:?}");
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn hosts_ping_through_sluice() {
    if !require_root() || !require("ip") || !require("ping") {
        return;
    }
    let pool = pool();
    let (a, b, wire) = two_hosts(&pool, true);
    a.ns.run(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2"]);
    b.ns.run(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd77::1"]);
    // Large enough to be fragmented by the sender and put back together by
    // the receiver: frames of a full MTU each way.
    a.ns.run(&[
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "2",
        "-s",
        "4000",
        "10.77.0.2",
    ]);
    let st = wire.stop();
    assert!(st.forwarded >= 12, "{st:?}");
    assert_eq!(pool.free_count(), pool.capacity());
}

/// UDP frames to the host at 10.78.0.1 / fd78::1 on `port`, from a
/// made-up neighbour, one per payload.
fn udp_frames(to_mac: [u8; 6], port: u16, payloads: &[Vec<u8>], v6: bool) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .map(|p| {
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], to_mac);
            let b = if v6 {
                let mut src = [0u8; 16];
                src[..2].copy_from_slice(&[0xfd, 0x78]);
                src[15] = 9;
                let mut dst = src;
                dst[15] = 1;
                b.ipv6(src, dst, 64)
            } else {
                b.ipv4([10, 78, 0, 9], [10, 78, 0, 1], 64)
            };
            let mut f = Vec::new();
            b.udp(4000, port).write(&mut f, p).unwrap();
            f
        })
        .collect()
}

/// Receives datagrams on `addr` inside `ns` until `count` came or a
/// quiet half second passed.
fn udp_receiver(ns: &str, addr: SocketAddr, count: usize) -> JoinHandle<Vec<Vec<u8>>> {
    let ns = ns.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        netns::run_in(Some(&ns), || {
            let s = UdpSocket::bind(addr).map_err(io_err("bind"))?;
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .map_err(io_err("timeout"))?;
            let _ = ready_tx.send(());
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            while got.len() < count {
                match s.recv(&mut buf) {
                    Ok(n) => got.push(buf[..n].to_vec()),
                    Err(_) => break,
                }
            }
            Ok(got)
        })
        .unwrap()
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    h
}

#[test]
fn frames_written_arrive_intact_and_bad_ones_do_not() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let mut buffers = pool.cache(64);
    // Jumbo frames take several buffers: their writes gather segments.
    let (host, (rx, mut tx)) = TapHost::new(true, Some(9000));
    host.address("10.78.0.1/24", "fd78::1/64");
    let mac = tx.tap().link().mac().unwrap().0;
    let sizes = [1, 100, 1472, 2100, 4000, 8900];
    let payloads: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| pattern(i * 3 + n)).collect())
        .collect();
    for v6 in [false, true] {
        let (addr, udp_csum_at) = if v6 {
            ("[fd78::1]:6000", 14 + 40 + 6)
        } else {
            ("10.78.0.1:6000", 14 + 20 + 6)
        };
        let receiver = udp_receiver(host.ns.name(), addr.parse().unwrap(), payloads.len());
        let mut frames = udp_frames(mac, 6000, &payloads, v6);
        // One more, with a checksum off by one: the host must see it wrong.
        let mut bad = frames[1].clone();
        bad[udp_csum_at + 1] ^= 1;
        frames.insert(2, bad);
        let mut out = Frame::new();
        for f in &frames {
            out.push(buffers.alloc_from(f).unwrap());
        }
        assert!(out.iter().any(|p| p.is_chained()));
        assert_eq!(tx.tx_burst(&mut buffers, &mut out), 0);
        assert!(out.is_empty());
        let got = receiver.join().unwrap();
        assert_eq!(got, payloads, "v6 {v6}");
        let errors = if v6 {
            host.snmp6("Udp6InCsumErrors")
        } else {
            host.snmp("Udp", "InCsumErrors")
        };
        assert_eq!(errors, 1, "v6 {v6}");
    }
    drop((rx, tx));
    drop(buffers);
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn jumbo_frames_from_the_host_arrive_whole_with_checksums_done() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let mut buffers = pool.cache(64);
    let (host, (mut rx, tx)) = TapHost::new(true, Some(9000));
    host.address("10.78.0.1/24", "fd78::1/64");
    host.ns.run(&[
        "ip",
        "neigh",
        "add",
        "10.78.0.9",
        "lladdr",
        "02:00:00:00:00:09",
        "dev",
        &host.name,
    ]);
    let payload: Vec<u8> = (0..8000).map(pattern).collect();
    netns::run_in(Some(host.ns.name()), || {
        let s = UdpSocket::bind("10.78.0.1:7001").map_err(io_err("bind"))?;
        s.send_to(&payload, "10.78.0.9:7000")
            .map(drop)
            .map_err(io_err("send"))
    })
    .unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    let mut out = Frame::new();
    let mut found = None;
    while found.is_none() && Instant::now() < end {
        let _ = rx.rx_burst(&mut buffers, &mut out, 32);
        for p in out.drain(..) {
            let mut f = Vec::new();
            p.copy_to(&mut f);
            // IPv4, UDP, to port 7000: ours (the rest is IPv6 chatter).
            if f.len() > 42 && f[12..14] == [8, 0] && f[23] == 17 && f[36..38] == [0x1b, 0x58] {
                found = Some((f, p.is_chained()));
            }
            buffers.free(p);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (f, chained) = found.expect("the datagram came out of the TAP");
    assert!(chained, "an 8 KB frame spans buffers");
    assert_eq!(f.len(), 14 + 20 + 8 + payload.len());
    assert_eq!(&f[42..], &payload[..]);
    let pseudo = checksum::pseudo_header_v4(
        Ipv4Addr::new(10, 78, 0, 1),
        Ipv4Addr::new(10, 78, 0, 9),
        IpProtocol::UDP,
        (f.len() - 34) as u16,
    );
    assert_eq!(checksum::finish(pseudo + checksum::sum(&f[34..])), 0);
    assert!(rx.stats().partial_csum >= 1, "{:?}", rx.stats());
    drop((rx, tx, buffers));
    assert_eq!(pool.free_count(), pool.capacity());
}

/// `n` broadcast frames, to have something to send.
fn some_frames(buffers: &mut BufCache, n: usize) -> Frame {
    let mut f = Frame::new();
    for i in 0..n {
        let mut bytes = vec![0xffu8; 60];
        bytes[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 7]);
        bytes[12..14].copy_from_slice(&[0x88, 0xb5]); // local experimental
        bytes[14] = i as u8;
        f.push(buffers.alloc_from(&bytes).unwrap());
    }
    f
}

#[test]
fn a_device_deleted_under_the_driver_is_gone() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let mut buffers = pool.cache(64);
    let (host, (mut rx, mut tx)) = TapHost::new(true, None);
    let status = rx.tap().status().clone();
    let mut frames = some_frames(&mut buffers, 4);
    assert_eq!(tx.tx_burst(&mut buffers, &mut frames), 0);
    host.ns.run(&["ip", "link", "del", &host.name]);

    // The first write finds the device gone; the rest are not tried.
    let mut frames = some_frames(&mut buffers, 5);
    assert_eq!(tx.tx_burst(&mut buffers, &mut frames), 5);
    assert!(frames.is_empty());
    assert_eq!(status.state(), LinkState::Gone);
    let mut out = Frame::new();
    for _ in 0..3 {
        assert_eq!(rx.rx_burst(&mut buffers, &mut out, 32), InputState::Idle);
    }
    assert!(out.is_empty());
    assert_eq!(rx.wait_fd(), None, "a detached TAP polls ready forever");
    std::thread::sleep(LINK_CHECK + Duration::from_millis(20));
    assert_eq!(rx.rx_burst(&mut buffers, &mut out, 32), InputState::Idle);
    assert_eq!((status.state(), status.downs()), (LinkState::Gone, 1));
    drop((rx, tx, buffers));
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn a_device_set_down_is_down_and_refuses_writes_until_up() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let mut buffers = pool.cache(64);
    let (host, (mut rx, mut tx)) = TapHost::new(true, None);
    let status = rx.tap().status().clone();
    assert_eq!(status.state(), LinkState::Up);
    host.ns.run(&["ip", "link", "set", &host.name, "down"]);

    let mut out = Frame::new();
    let mut frames = some_frames(&mut buffers, 3);
    assert_eq!(tx.tx_burst(&mut buffers, &mut frames), 3);
    assert_eq!(status.state(), LinkState::Down);
    std::thread::sleep(LINK_CHECK + Duration::from_millis(20));
    // Frames the host queued before it went down may still be read; then
    // nothing comes.
    let mut queued = 0;
    while rx.rx_burst(&mut buffers, &mut out, 32) != InputState::Idle {
        queued += 1;
        assert!(queued < 10, "a down TAP keeps delivering");
        buffers.free_all(&mut out);
    }
    assert_eq!(rx.rx_burst(&mut buffers, &mut out, 32), InputState::Idle);
    assert_eq!(status.state(), LinkState::Down);
    assert!(rx.wait_fd().is_some(), "down is not gone");

    host.ns.run(&["ip", "link", "set", &host.name, "up"]);
    // The kernel reports the carrier back up within a second (its link
    // watch is rate limited); the halves see it at their next check.
    let end = Instant::now() + Duration::from_secs(3);
    while status.state() != LinkState::Up && Instant::now() < end {
        let _ = rx.rx_burst(&mut buffers, &mut out, 32);
        buffers.free_all(&mut out);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!((status.state(), status.downs()), (LinkState::Up, 1));
    std::thread::sleep(LINK_CHECK);
    let mut frames = some_frames(&mut buffers, 3);
    assert_eq!(tx.tx_burst(&mut buffers, &mut frames), 0);
    drop((rx, tx, buffers));
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn a_namespace_deleted_under_a_running_wire_is_gone() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let (a, a_halves) = TapHost::new(true, None);
    let (b, b_halves) = TapHost::new(true, None);
    a.address("10.77.0.1/24", "fd77::1/64");
    b.address("10.77.0.2/24", "fd77::2/64");
    let b_status = b_halves.0.tap().status().clone();
    let wire = Wire::start(&pool, a_halves, b_halves);
    tcp_transfer(
        a.ns.name(),
        b.ns.name(),
        "10.77.0.2:5001".parse().unwrap(),
        MB,
    );

    run(&["ip", "netns", "del", b.ns.name()]);
    std::thread::sleep(LINK_CHECK * 2);
    assert_eq!(b_status.state(), LinkState::Gone);
    // A knows B's address already: its datagrams reach Sluice and fail
    // on B's side.
    netns::run_in(Some(a.ns.name()), || {
        let s = UdpSocket::bind("10.77.0.1:0").map_err(io_err("bind"))?;
        for _ in 0..5 {
            s.send_to(b"lost", "10.77.0.2:7000")
                .map_err(io_err("send"))?;
        }
        Ok(())
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let st = wire.stop();
    assert!(st.tx_failed >= 5, "{st:?}");
    assert_eq!(b_status.downs(), 1);
    assert_eq!(pool.free_count(), pool.capacity());
}

fn open_err(cfg: &TapConfig) -> String {
    match Tap::open(cfg) {
        Ok(_) => panic!("{cfg:?} opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configurations_are_clear_errors() {
    if !require_root() || !require("ip") {
        return;
    }
    let e = open_err(&TapConfig::new("sltapnone").in_netns("sluice-no-such-ns"));
    assert!(e.contains("network namespace sluice-no-such-ns"), "{e}");
    for name in ["", "a/b", "tap%d", "far-too-long-a-name"] {
        let e = open_err(&TapConfig::new(name));
        assert!(e.contains("TAP name"), "{e}");
    }
    let ns = Netns::new();
    let e = open_err(&TapConfig::new("lo").in_netns(ns.name()));
    assert!(e.contains("not a TAP"), "{e}");
    let name = unique("sltap");
    let cfg = TapConfig::new(&name).in_netns(ns.name());
    let held = Tap::open(&cfg).unwrap();
    let e = open_err(&cfg);
    assert!(e.contains("another process holds"), "{e}");
    drop(held);
    let mut huge = cfg.clone();
    huge.mtu = Some(1 << 20);
    let e = open_err(&huge);
    assert!(e.contains("setting MTU"), "{e}");
}

#[test]
fn a_made_tap_goes_with_sluice_and_a_persistent_one_stays() {
    if !require_root() || !require("ip") {
        return;
    }
    let pool = pool();
    let mut buffers = pool.cache(64);
    let ns = Netns::new();
    let made = unique("sltap");
    let kept = unique("sltap");
    ns.run(&["ip", "tuntap", "add", "dev", &kept, "mode", "tap"]);
    let exists = |name: &str| ns.output(&["ip", "link", "show", name]).status.success();
    for name in [&made, &kept] {
        let (rx, mut tx) = Tap::open(&TapConfig::new(name).in_netns(ns.name())).unwrap();
        assert_eq!(rx.tap().persistent(), name == &kept);
        assert_eq!(rx.tap().status().state(), LinkState::Up);
        assert_eq!(rx.tap().netns(), Some(ns.name()));
        assert_eq!(rx.tap().link().mtu().unwrap(), 1500);
        let mut frames = some_frames(&mut buffers, 2);
        assert_eq!(tx.tx_burst(&mut buffers, &mut frames), 0);
        assert!(exists(name));
        drop((rx, tx));
        assert_eq!(exists(name), name == &kept, "{name}");
    }
    drop(buffers);
    assert_eq!(pool.free_count(), pool.capacity());
}

/// Throughput of one TCP stream (iperf3, 3 s) between two hosts wired
/// through Sluice, with and without offloads. A measurement, not a check:
/// `cargo test --release -p sluice-io --test tap -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput_with_and_without_offloads() {
    if !require_root() || !require("ip") || !require("iperf3") {
        return;
    }
    for offload in [true, false] {
        let pool = pool();
        let (a, b, wire) = two_hosts(&pool, offload);
        let _server = b.ns.spawn(&["iperf3", "-s", "-1"]);
        std::thread::sleep(Duration::from_millis(300));
        let out =
            a.ns.run(&["iperf3", "-c", "10.77.0.2", "-t", "3", "-f", "g"]);
        let st = wire.stop();
        let summary: Vec<&str> = out.lines().filter(|l| l.contains("sender")).collect();
        eprintln!(
            "offload {offload}: {}\n  frames read from A {} (GSO {}), packets forwarded {}, \
             Sluice thread CPU {:?}",
            summary.join(" | "),
            st.a.frames,
            st.a.gso,
            st.forwarded,
            st.cpu
        );
    }
}

/// A multi-queue TAP: one descriptor a queue, all attached to one device
/// (the kernel lists them as its queues); zero or too many refused.
#[test]
fn a_tap_takes_one_descriptor_per_queue() {
    if !require_root() {
        return;
    }
    let ns = Netns::new();
    let name = unique("sltmq");
    let cfg = TapConfig::new(&name).in_netns(ns.name());
    let queues = Tap::open_queues(&cfg, 2).unwrap();
    assert_eq!(queues.len(), 2);
    let rx_queues = ns.run(&["ls", &format!("/sys/class/net/{name}/queues")]);
    assert_eq!(
        rx_queues
            .split_whitespace()
            .filter(|q| q.starts_with("rx-"))
            .count(),
        2,
        "{rx_queues}"
    );
    drop(queues);
    for bad in [0, sluice_io::tap::MAX_QUEUES + 1] {
        let e = Tap::open_queues(&TapConfig::new(&unique("sltmq")), bad).unwrap_err();
        assert!(e.to_string().contains("queues"), "{e}");
    }
}
