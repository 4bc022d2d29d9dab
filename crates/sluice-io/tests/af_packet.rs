//! The AF_PACKET driver against a real kernel: hosts in namespaces behind
//! veth pairs, Sluice on the outer ends. Every test needs root (and says
//! so in its name); under `CI=true` it fails without it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, HugePages, Pool, PoolConfig};
use sluice_graph::Frame;
use sluice_io::af_packet::{AfPacket, AfPacketConfig, AfPacketRx, AfPacketTx, RxCounters};
use sluice_io::sys::{Context, netns};
use sluice_io::{Driver, LinkState};
use sluice_testnet::{Host, require, require_root, run};

fn pool() -> Pool {
    Pool::new(&PoolConfig {
        buffers: 8192,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

fn open(outer: &str) -> AfPacket {
    AfPacket::open(&AfPacketConfig::new(outer)).unwrap()
}

fn one_queue(p: AfPacket) -> (AfPacketRx, AfPacketTx) {
    let AfPacket { mut rx, mut tx, .. } = p;
    assert_eq!((rx.len(), tx.len()), (1, 1));
    (rx.remove(0), tx.remove(0))
}

/// What a cross-connect saw, per direction.
struct Report {
    a_rx: RxCounters,
    b_rx: RxCounters,
    tx_failed: usize,
    rx_drops: u64,
}

/// A plain L2 cross-connect through the driver: whatever A's outer end
/// receives leaves by B's, and back, until stopped.
struct CrossConnect {
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<Report>>,
}

impl CrossConnect {
    fn start(a: AfPacket, b: AfPacket, mut cache: BufCache) -> CrossConnect {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let worker = std::thread::spawn(move || {
            let (mut arx, mut atx) = one_queue(a);
            let (mut brx, mut btx) = one_queue(b);
            let fds = [arx.wait_fd().unwrap(), brx.wait_fd().unwrap()];
            let mut frame = Frame::new();
            let (mut tx_failed, mut rx_drops) = (0, 0);
            loop {
                let mut moved = 0;
                for (rx, tx) in [(&mut arx, &mut btx), (&mut brx, &mut atx)] {
                    rx.rx_burst(&mut cache, &mut frame, 256);
                    rx_drops += rx.take_rx_drops();
                    moved += frame.len();
                    tx_failed += tx.tx_burst(&mut cache, &mut frame);
                    assert!(frame.is_empty());
                }
                if moved == 0 {
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = sluice_io::sys::wait_readable(&fds, Duration::from_millis(5));
                }
            }
            Report {
                a_rx: arx.counters(),
                b_rx: brx.counters(),
                tx_failed,
                rx_drops,
            }
        });
        CrossConnect {
            stop,
            worker: Some(worker),
        }
    }

    fn finish(mut self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let w = self.worker.take().unwrap();
        w.join().expect("cross-connect panicked")
    }
}

impl Drop for CrossConnect {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Bytes that do not repeat with any short period, so that a segment cut,
/// lost or sent twice shows.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn tcp_transfer(from: &Host, to: &Host, to_addr: &str, data: &[u8]) -> Vec<u8> {
    let listen = format!("{to_addr}:5001");
    let listener = netns::run_in(Some(to.ns.name()), || {
        TcpListener::bind(listen.as_str()).context(|| format!("listening on {listen}"))
    })
    .unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    let mut client = netns::run_in(Some(from.ns.name()), || {
        TcpStream::connect_timeout(&listen.parse().unwrap(), Duration::from_secs(3))
            .context(|| format!("connecting to {listen}"))
    })
    .unwrap();
    client
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.write_all(data).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    server.join().unwrap()
}

#[test]
fn root_cross_connect_carries_ping_and_offloaded_tcp() {
    if !require_root() || !require("ip") || !require("ping") {
        return;
    }
    let a = Host::new(
        "10.77.0.1/24",
        "10.77.0.254",
        "fd00:77::1/64",
        "fd00:77::fe",
    );
    let b = Host::new(
        "10.77.0.2/24",
        "10.77.0.254",
        "fd00:77::2/64",
        "fd00:77::fe",
    );
    let pool = pool();
    let xc = CrossConnect::start(open(&a.link.outer), open(&b.link.outer), pool.cache(64));

    a.ns.run(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.77.0.2"]);
    a.ns.run(&[
        "ping",
        "-6",
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        "fd00:77::2",
    ]);
    let data = pattern(4 << 20);
    let got = tcp_transfer(&a, &b, "10.77.0.2", &data);
    assert!(
        got == data,
        "IPv4 TCP: {} of {} bytes, or damaged",
        got.len(),
        data.len()
    );
    let got = tcp_transfer(&b, &a, "[fd00:77::1]", &data);
    assert!(
        got == data,
        "IPv6 TCP: {} of {} bytes, or damaged",
        got.len(),
        data.len()
    );

    let r = xc.finish();
    eprintln!("A: {:?}\nB: {:?}", r.a_rx, r.b_rx);
    assert!(r.a_rx.gso_frames > 0, "no GSO frames from A: {:?}", r.a_rx);
    assert!(r.b_rx.gso_frames > 0, "no GSO frames from B: {:?}", r.b_rx);
    assert!(r.a_rx.packets > r.a_rx.frames, "GSO frames were not cut");
    assert_eq!(r.a_rx.malformed + r.b_rx.malformed, 0);
    assert_eq!((r.tx_failed, r.rx_drops), (0, 0));
    assert_eq!(pool.free_count(), pool.capacity(), "buffers leaked");
}

/// Receives for up to `wait` until `done` says enough, freeing each frame
/// after `seen` has looked at it.
fn receive_until(
    rx: &mut AfPacketRx,
    cache: &mut BufCache,
    wait: Duration,
    mut seen: impl FnMut(&[u8], usize) -> bool,
) -> bool {
    let end = Instant::now() + wait;
    let mut frame = Frame::new();
    while Instant::now() < end {
        rx.rx_burst(cache, &mut frame, 256);
        let mut done = false;
        for p in frame.iter() {
            let mut bytes = Vec::new();
            p.copy_to(&mut bytes);
            done |= seen(&bytes, p.total_len());
        }
        cache.free_all(&mut frame);
        if done {
            return true;
        }
        let _ = sluice_io::sys::wait_readable(&[rx.wait_fd().unwrap()], Duration::from_millis(5));
    }
    false
}

/// A tagged broadcast ARP request: `tpid` and VLAN id `vid`.
fn tagged_arp(tpid: u16, vid: u16) -> Vec<u8> {
    let mut f = arp_frame([2, 0, 0, 0, 0, 8]);
    let mut tag = tpid.to_be_bytes().to_vec();
    tag.extend_from_slice(&(0x2000 | vid).to_be_bytes());
    f.splice(12..12, tag);
    f
}

#[test]
fn root_vlan_tags_are_put_back() {
    if !require_root() || !require("ip") {
        return;
    }
    // This kernel may have no 802.1Q devices; a tagged frame sent into the
    // veth is untagged by the receive path all the same (the tag moves
    // beside the frame), which is what the driver has to undo.
    let a = Host::new(
        "10.78.0.1/24",
        "10.78.0.254",
        "fd00:78::1/64",
        "fd00:78::fe",
    );
    let pool = pool();
    let mut cache = pool.cache(64);
    let (mut rx, _tx) = one_queue(open(&a.link.outer));
    let mut inside = AfPacketConfig::new("eth0");
    inside.netns = Some(a.ns.name().to_string());
    inside.promiscuous = false;
    let (_rx_inside, mut tx_inside) = one_queue(AfPacket::open(&inside).unwrap());
    let sent = [tagged_arp(0x8100, 10), tagged_arp(0x88a8, 20)];
    let mut frame = Frame::new();
    for f in &sent {
        frame.push(cache.alloc_from(f).unwrap());
    }
    assert_eq!(tx_inside.tx_burst(&mut cache, &mut frame), 0);
    let mut got = Vec::new();
    receive_until(&mut rx, &mut cache, Duration::from_secs(3), |f, _| {
        if f.len() >= 16 && matches!(f[12..14], [0x81, 0x00] | [0x88, 0xa8]) {
            got.push(f.to_vec());
        }
        got.len() == 2
    });
    assert_eq!(got, sent, "tagged frames not received as sent");
    assert_eq!(rx.counters().vlan_tags, 2, "{:?}", rx.counters());
    drop((rx, _tx, _rx_inside, tx_inside));
    drop(cache);
    assert_eq!(pool.free_count(), pool.capacity());
}

/// A broadcast ARP request from `src`: something to send.
fn arp_frame(src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[10, 79, 0, 9, 0, 0, 0, 0, 0, 0, 10, 79, 0, 1]);
    f.resize(60, 0);
    f
}

fn send(tx: &mut AfPacketTx, cache: &mut BufCache, n: usize) -> usize {
    let mut frame = Frame::new();
    for _ in 0..n {
        frame.push(cache.alloc_from(&arp_frame([2, 0, 0, 0, 0, 7])).unwrap());
    }
    let failed = tx.tx_burst(cache, &mut frame);
    assert!(frame.is_empty());
    failed
}

/// Waits until the driver halves, driven by `poll`, see `state`.
fn wait_state(mut poll: impl FnMut() -> LinkState, state: LinkState) -> bool {
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        if poll() == state {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn root_device_down_up_and_deleted_under_a_running_driver() {
    if !require_root() || !require("ip") || !require("ping") {
        return;
    }
    let a = Host::new(
        "10.79.0.1/24",
        "10.79.0.254",
        "fd00:79::1/64",
        "fd00:79::fe",
    );
    let pool = pool();
    let mut cache = pool.cache(64);
    let p = open(&a.link.outer);
    let status = p.status.clone();
    let (mut rx, mut tx) = one_queue(p);
    let _ping = a.ns.spawn(&["ping", "-i", "0.1", "10.79.0.9"]);
    let arp = |f: &[u8], _| f.len() >= 14 && f[12..14] == [0x08, 0x06];
    assert!(receive_until(
        &mut rx,
        &mut cache,
        Duration::from_secs(3),
        arp
    ));
    assert_eq!(send(&mut tx, &mut cache, 8), 0);

    run(&["ip", "link", "set", &a.link.outer, "down"]);
    assert_eq!(
        send(&mut tx, &mut cache, 8),
        8,
        "sent on a device that is down"
    );
    assert_eq!(tx.link_state(), LinkState::Down);
    let poll_rx = |rx: &mut AfPacketRx, cache: &mut BufCache| {
        let mut frame = Frame::new();
        rx.rx_burst(cache, &mut frame, 256);
        cache.free_all(&mut frame);
        rx.link_state()
    };
    assert!(wait_state(|| poll_rx(&mut rx, &mut cache), LinkState::Down));
    assert_eq!(status.state(), LinkState::Down);

    run(&["ip", "link", "set", &a.link.outer, "up"]);
    assert!(wait_state(|| poll_rx(&mut rx, &mut cache), LinkState::Up));
    assert!(
        receive_until(&mut rx, &mut cache, Duration::from_secs(3), arp),
        "nothing received after the device came back up"
    );
    assert!(
        wait_state(
            || match send(&mut tx, &mut cache, 4) {
                0 => LinkState::Up,
                _ => LinkState::Down,
            },
            LinkState::Up
        ),
        "transmit did not resume"
    );

    run(&["ip", "link", "del", &a.link.outer]);
    assert!(wait_state(|| poll_rx(&mut rx, &mut cache), LinkState::Gone));
    assert_eq!(status.state(), LinkState::Gone);
    assert_eq!(send(&mut tx, &mut cache, 8), 8, "sent on a deleted device");
    assert_eq!(tx.link_state(), LinkState::Gone);
    assert_eq!(send(&mut tx, &mut cache, 300), 300);
    let mut frame = Frame::new();
    assert_eq!(
        rx.rx_burst(&mut cache, &mut frame, 256),
        sluice_graph::InputState::Idle
    );
    assert!(status.downs() >= 2);
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn root_fanout_spreads_flows_over_two_queues_and_loses_none() {
    if !require_root() || !require("ip") {
        return;
    }
    let a = Host::new(
        "10.80.0.1/24",
        "10.80.0.254",
        "fd00:80::1/64",
        "fd00:80::fe",
    );
    // A neighbour that never answers, known in advance: no ARP in the way.
    a.ns.run(&[
        "ip",
        "neigh",
        "add",
        "10.80.0.9",
        "lladdr",
        "02:00:00:00:00:09",
        "dev",
        "eth0",
    ]);
    let pool = pool();
    let mut cache = pool.cache(64);
    let mut config = AfPacketConfig::new(&a.link.outer);
    config.queues = 2;
    let AfPacket { mut rx, tx, .. } = AfPacket::open(&config).unwrap();
    assert_eq!((rx.len(), tx.len()), (2, 2), "a transmit socket per queue");
    assert!(rx[0].fanout_group().is_some());
    assert_eq!(rx[0].fanout_group(), rx[1].fanout_group());

    let socket = netns::run_in(Some(a.ns.name()), || {
        UdpSocket::bind("10.80.0.1:0").context(|| "udp socket".to_string())
    })
    .unwrap();
    const FLOWS: u16 = 64;
    const EACH: u16 = 4;
    for round in 0..EACH {
        for flow in 0..FLOWS {
            let msg = format!("sluice-fanout {flow} {round}");
            socket
                .send_to(msg.as_bytes(), ("10.80.0.9", 20_000 + flow))
                .unwrap();
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut per_queue = [0usize; 2];
    let end = Instant::now() + Duration::from_secs(3);
    let mut frame = Frame::new();
    while seen.len() < usize::from(FLOWS * EACH) && Instant::now() < end {
        for (q, r) in rx.iter_mut().enumerate() {
            r.rx_burst(&mut cache, &mut frame, 256);
            for p in frame.iter() {
                let d = p.data();
                let Some(at) = d.windows(13).position(|w| w == b"sluice-fanout") else {
                    continue;
                };
                assert!(seen.insert(d[at..].to_vec()), "a datagram came twice");
                per_queue[q] += 1;
            }
            cache.free_all(&mut frame);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        seen.len(),
        usize::from(FLOWS * EACH),
        "per queue: {per_queue:?}"
    );
    assert!(per_queue.iter().all(|&n| n > 0), "per queue: {per_queue:?}");
    for r in rx.iter_mut() {
        assert_eq!(r.take_rx_drops(), 0);
    }
    drop((rx, tx));
    drop(cache);
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn root_jumbo_frames_chain_and_frames_longer_than_a_block_are_drops() {
    if !require_root() || !require("ip") {
        return;
    }
    let a = Host::new(
        "10.81.0.1/24",
        "10.81.0.254",
        "fd00:81::1/64",
        "fd00:81::fe",
    );
    run(&["ip", "link", "set", &a.link.outer, "mtu", "9000"]);
    a.ns.run(&["ip", "link", "set", "eth0", "mtu", "9000"]);
    a.ns.run(&[
        "ip",
        "neigh",
        "add",
        "10.81.0.9",
        "lladdr",
        "02:00:00:00:00:09",
        "dev",
        "eth0",
    ]);
    let pool = pool();
    let mut cache = pool.cache(64);
    let (mut big, _tx) = one_queue(open(&a.link.outer));
    let mut config = AfPacketConfig::new(&a.link.outer);
    config.rx_block_bytes = 4096;
    config.rx_ring_bytes = 64 << 10;
    let (mut small, _tx2) = one_queue(AfPacket::open(&config).unwrap());

    let socket = netns::run_in(Some(a.ns.name()), || {
        UdpSocket::bind("10.81.0.1:0").context(|| "udp socket".to_string())
    })
    .unwrap();
    socket.send_to(&[0x5a; 8000], ("10.81.0.9", 9)).unwrap();
    let frame_len = 14 + 20 + 8 + 8000;
    let got = receive_until(&mut big, &mut cache, Duration::from_secs(3), |f, total| {
        total == frame_len && f[14 + 28..].iter().all(|&b| b == 0x5a)
    });
    assert!(got, "the 8042-byte frame did not arrive whole");
    let end = Instant::now() + Duration::from_secs(3);
    let mut frame = Frame::new();
    let mut drops = 0;
    while drops == 0 && Instant::now() < end {
        small.rx_burst(&mut cache, &mut frame, 256);
        cache.free_all(&mut frame);
        drops += small.take_rx_drops();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(drops, 1, "{:?}", small.counters());
    assert_eq!(small.counters().truncated, 1);
    drop((big, small));
    drop(cache);
    assert_eq!(pool.free_count(), pool.capacity());
}

#[test]
fn root_missing_device_or_namespace_is_a_clear_error() {
    if !require_root() {
        return;
    }
    let e = AfPacket::open(&AfPacketConfig::new("sluice-none0")).unwrap_err();
    assert!(e.is_gone(), "{e}");
    assert!(e.to_string().contains("sluice-none0"), "{e}");
    let mut config = AfPacketConfig::new("lo");
    config.netns = Some("sluice-no-such-ns".to_string());
    let e = AfPacket::open(&config).unwrap_err();
    assert!(e.to_string().contains("sluice-no-such-ns"), "{e}");
    config.netns = None;
    config.queues = 0;
    assert!(AfPacket::open(&config).is_err());
}
