//! AF_XDP against real Linux hosts: two network namespaces whose veths
//! are joined by a cross-connect through Sluice's AF_XDP driver.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_graph::{Frame, InputState};
use sluice_io::af_xdp::{self, AfXdpConfig, AfXdpRx, AfXdpTx, CopyMode};
use sluice_io::{Driver, LinkState, LinkStatus};
use sluice_testnet::{Host, require, require_root};

fn pool() -> Pool {
    Pool::new(&PoolConfig {
        buffers: 16384,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

fn config(device: &str) -> AfXdpConfig {
    AfXdpConfig {
        ring_size: 1024,
        copy: CopyMode::Auto,
        ..AfXdpConfig::new(device)
    }
}

/// What the cross-connect thread counted.
#[derive(Debug, Default)]
struct Moved {
    a_to_b: u64,
    b_to_a: u64,
    drops: u64,
    failed: u64,
    /// TCP segments checked, and those whose checksum was wrong (a host's
    /// half-done offload leaking through would show here).
    tcp: u64,
    bad_checksums: u64,
}

/// Whether a frame is TCP, and if so whether its checksum is right.
fn tcp_checksum_ok(frame: &[u8]) -> Option<bool> {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    use sluice_wire::IpProtocol;
    use sluice_wire::checksum::{finish, pseudo_header_v4, pseudo_header_v6, sum};
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(TransportSlice::Tcp(tcp)) = p.transport else {
        return None;
    };
    let seg = tcp.slice();
    let pseudo = match p.net? {
        NetSlice::Ipv4(ip) => {
            let h = ip.header();
            pseudo_header_v4(
                h.source_addr(),
                h.destination_addr(),
                IpProtocol::TCP,
                seg.len() as u16,
            )
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            pseudo_header_v6(
                &h.source_addr(),
                &h.destination_addr(),
                IpProtocol::TCP,
                seg.len() as u32,
            )
        }
        _ => return None,
    };
    Some(finish(pseudo + sum(seg)) == 0)
}

fn check(frame: &Frame, moved: &mut Moved) {
    for p in frame.iter() {
        if let Some(ok) = tcp_checksum_ok(p.data()) {
            moved.tcp += 1;
            moved.bad_checksums += u64::from(!ok);
        }
    }
}

/// Moves frames between two interfaces until `stop`, like `l2-xconnect`.
fn xconnect(
    pool: Pool,
    a: (AfXdpRx, AfXdpTx),
    b: (AfXdpRx, AfXdpTx),
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<Moved> {
    thread::spawn(move || {
        let (mut a_rx, mut a_tx) = a;
        let (mut b_rx, mut b_tx) = b;
        let mut cache = pool.cache(64);
        let mut frame = Frame::new();
        let mut moved = Moved::default();
        while !stop.load(Ordering::Relaxed) {
            let mut busy = false;
            if let InputState::Busy(n) = a_rx.rx_burst(&mut cache, &mut frame, 64) {
                moved.a_to_b += n as u64;
                check(&frame, &mut moved);
                busy = true;
            }
            moved.failed += b_tx.tx_burst(&mut cache, &mut frame) as u64;
            if let InputState::Busy(n) = b_rx.rx_burst(&mut cache, &mut frame, 64) {
                moved.b_to_a += n as u64;
                check(&frame, &mut moved);
                busy = true;
            }
            moved.failed += a_tx.tx_burst(&mut cache, &mut frame) as u64;
            moved.drops += a_rx.take_rx_drops() + b_rx.take_rx_drops();
            if !busy {
                thread::sleep(Duration::from_micros(50));
            }
        }
        drop((a_rx, a_tx, b_rx, b_tx));
        moved
    })
}

#[test]
fn hosts_ping_each_other_through_af_xdp() {
    if !require_root() || !require("ping") {
        return;
    }
    let a = Host::new("10.71.0.1/24", "10.71.0.2", "fd71::1/64", "fd71::2");
    let b = Host::new("10.71.0.2/24", "10.71.0.1", "fd71::2/64", "fd71::1");
    let pool = pool();
    let sa = LinkStatus::new();
    let sb = LinkStatus::new();
    let (mut qa, info) = af_xdp::open(&config(&a.link.outer), &pool, &sa).unwrap();
    let (mut qb, _) = af_xdp::open(&config(&b.link.outer), &pool, &sb).unwrap();
    eprintln!("af_xdp: {info:?}");
    assert_eq!(sa.state(), LinkState::Up);
    let stop = Arc::new(AtomicBool::new(false));
    let t = xconnect(pool.clone(), qa.remove(0), qb.remove(0), stop.clone());

    let v4 =
        a.ns.output(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.71.0.2"]);
    let v6 =
        a.ns.output(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd71::2"]);
    // A burst of large pings, so that frames near the MTU cross too.
    let big = a.ns.output(&[
        "ping",
        "-c",
        "20",
        "-i",
        "0.01",
        "-s",
        "1400",
        "-W",
        "2",
        "10.71.0.2",
    ]);
    stop.store(true, Ordering::Relaxed);
    let moved = t.join().unwrap();
    eprintln!("{moved:?}");
    for (what, out) in [("ipv4", &v4), ("ipv6", &v6), ("1400-byte", &big)] {
        assert!(
            out.status.success(),
            "{what} ping failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert!(moved.a_to_b >= 26 && moved.b_to_a >= 26, "{moved:?}");
    assert_eq!(moved.drops, 0);
    drop((qa, qb));
    // Every buffer lent to the kernel came back when the sockets closed.
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn a_missing_device_is_a_clear_error() {
    if !require_root() {
        return;
    }
    let pool = pool();
    let e = af_xdp::open(&config("sluice-none9"), &pool, &LinkStatus::new()).unwrap_err();
    assert!(e.to_string().contains("sluice-none9"), "{e}");
    let small = Pool::new(&PoolConfig {
        buffers: 1024,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let veth = sluice_testnet::Veth::new();
    let e = af_xdp::open(&config(&veth.outer), &small, &LinkStatus::new()).unwrap_err();
    assert!(e.to_string().contains("buffers"), "{e}");
    // Frames of loopback's 64 KiB MTU cannot fit one buffer.
    let e = af_xdp::open(&config("lo"), &pool, &LinkStatus::new()).unwrap_err();
    assert!(e.to_string().contains("MTU"), "{e}");
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn iperf3_tcp_crosses_af_xdp_intact() {
    if !require_root() || !require("iperf3") {
        return;
    }
    let a = Host::new("10.72.0.1/24", "10.72.0.2", "fd72::1/64", "fd72::2");
    let b = Host::new("10.72.0.2/24", "10.72.0.1", "fd72::2/64", "fd72::1");
    let pool = pool();
    let (mut qa, _) = af_xdp::open(&config(&a.link.outer), &pool, &LinkStatus::new()).unwrap();
    let (mut qb, _) = af_xdp::open(&config(&b.link.outer), &pool, &LinkStatus::new()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let t = xconnect(pool.clone(), qa.remove(0), qb.remove(0), stop.clone());
    let _server = b.ns.spawn(&["iperf3", "-s", "-1", "-B", "10.72.0.2"]);
    thread::sleep(Duration::from_millis(300));
    let client = a.ns.output(&[
        "timeout",
        "30",
        "iperf3",
        "-c",
        "10.72.0.2",
        "-t",
        "2",
        "-J",
    ]);
    stop.store(true, Ordering::Relaxed);
    let moved = t.join().unwrap();
    eprintln!("{moved:?}");
    let report = String::from_utf8_lossy(&client.stdout);
    assert!(client.status.success(), "iperf3 failed: {report}");
    let received = sluice_testnet::iperf3_received_bytes(&report);
    eprintln!("iperf3 received {received} bytes in 2 s");
    assert!(received > 1_000_000, "{report}");
    assert!(moved.tcp > 1000, "{moved:?}");
    assert_eq!(moved.bad_checksums, 0, "{moved:?}");
    drop((qa, qb));
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn a_device_pulled_out_goes_down_and_nothing_leaks() {
    if !require_root() || !require("ping") {
        return;
    }
    let a = Host::new("10.73.0.1/24", "10.73.0.2", "fd73::1/64", "fd73::2");
    let b = Host::new("10.73.0.2/24", "10.73.0.1", "fd73::2/64", "fd73::1");
    let pool = pool();
    let sb = LinkStatus::new();
    let (mut qa, _) = af_xdp::open(&config(&a.link.outer), &pool, &LinkStatus::new()).unwrap();
    let (mut qb, _) = af_xdp::open(&config(&b.link.outer), &pool, &sb).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let t = xconnect(pool.clone(), qa.remove(0), qb.remove(0), stop.clone());
    let _flood = a.ns.spawn(&["ping", "-i", "0.002", "-W", "1", "10.73.0.2"]);
    thread::sleep(Duration::from_millis(300));
    drop(b);
    let mut waited = 0;
    while sb.state() != LinkState::Gone && waited < 40 {
        thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    assert_eq!(sb.state(), LinkState::Gone);
    assert_eq!(sb.downs(), 1);
    thread::sleep(Duration::from_millis(200));
    assert!(!t.is_finished(), "the forwarding loop survived");
    stop.store(true, Ordering::Relaxed);
    let moved = t.join().unwrap();
    eprintln!("{moved:?}");
    assert!(moved.a_to_b > 10);
    drop((qa, qb));
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn frames_the_kernel_drops_on_a_full_ring_are_counted() {
    if !require_root() || !require("ping") {
        return;
    }
    let a = Host::new("10.74.0.1/24", "10.74.0.2", "fd74::1/64", "fd74::2");
    let pool = pool();
    let cfg = AfXdpConfig {
        ring_size: 64,
        ..config(&a.link.outer)
    };
    let (mut q, _) = af_xdp::open(&cfg, &pool, &LinkStatus::new()).unwrap();
    let (mut rx, tx) = q.remove(0);
    // Nobody polls while 300 frames come: the 64-entry ring overflows.
    a.ns.run(&[
        "ip",
        "neigh",
        "replace",
        "10.74.0.2",
        "lladdr",
        "02:00:00:00:74:02",
        "dev",
        "eth0",
    ]);
    let _ =
        a.ns.output(&["ping", "-l", "300", "-c", "300", "-w", "2", "10.74.0.2"]);
    let mut cache = pool.cache(64);
    let mut frame = Frame::new();
    let mut got = 0;
    let mut drops = 0;
    for _ in 0..2000 {
        if let InputState::Busy(n) = rx.rx_burst(&mut cache, &mut frame, 256) {
            got += n;
        }
        drops += rx.take_rx_drops();
        cache.free_all(&mut frame);
        if got + drops as usize >= 300 {
            break;
        }
        thread::sleep(Duration::from_micros(100));
    }
    eprintln!("received {got}, dropped {drops}");
    assert!(got <= 64 && got > 0, "{got}");
    // The pings, and a few frames of the host's own IPv6 start-up.
    let seen = got + drops as usize;
    assert!(
        (300..320).contains(&seen),
        "every frame is received or counted: {seen}"
    );
    drop((rx, tx, q, cache));
    assert_eq!(pool.free_count(), pool.capacity());
}
