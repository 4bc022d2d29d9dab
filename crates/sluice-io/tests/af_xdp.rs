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
                busy = true;
            }
            moved.failed += b_tx.tx_burst(&mut cache, &mut frame) as u64;
            if let InputState::Busy(n) = b_rx.rx_burst(&mut cache, &mut frame, 64) {
                moved.b_to_a += n as u64;
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

    let v4 = a.ns.output(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.71.0.2"]);
    let v6 = a.ns.output(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd71::2"]);
    // A burst of large pings, so that frames near the MTU cross too.
    let big = a.ns.output(&["ping", "-c", "20", "-i", "0.01", "-s", "1400", "-W", "2", "10.71.0.2"]);
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
