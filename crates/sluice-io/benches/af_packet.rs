//! Forwarding rate through the AF_PACKET driver: 60-byte frames (64 on the
//! wire) from one veth to another, as a cross-connect would.
//!
//! Needs root. Run in test mode (the harness ignores tests under `cargo
//! bench`); it prints, it does not assert speed:
//!
//! ```text
//! cargo test -p sluice-io --release --bench af_packet -- --nocapture
//! ```
//!
//! A generator sends through the driver's own transmit ring from inside
//! host A onto A's veth; a forwarder thread receives on A's outer end and
//! transmits on B's outer end. The figure is what the forwarder moved per
//! second; the kernel's share (veth, the copy into the receive ring) runs
//! on the generator's and forwarder's CPUs as part of their syscalls and
//! softirqs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_graph::Frame;
use sluice_io::Driver;
use sluice_io::af_packet::{AfPacket, AfPacketConfig};
use sluice_testnet::{Host, require_root};

const SECONDS: u64 = 3;

/// A UDP/IPv4 frame of 60 bytes with a correct IP checksum, flow `i`.
fn udp_frame(i: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 0x08, 0x00];
    let mut ip = vec![
        0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 90, 0, 1, 10, 90, 0, 2,
    ];
    let sum = ip
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let folded = (sum & 0xffff) + (sum >> 16);
    ip[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&(1000 + i % 64).to_be_bytes());
    f.extend_from_slice(&[0x13, 0x89, 0, 26, 0, 0]);
    f.resize(60, 0x5a);
    f
}

#[test]
fn forwarding_rate_64_byte_frames() {
    if !require_root() {
        return;
    }
    let a = Host::new(
        "10.90.0.1/24",
        "10.90.0.254",
        "fd00:90::1/64",
        "fd00:90::fe",
    );
    let b = Host::new(
        "10.90.0.2/24",
        "10.90.0.254",
        "fd00:90::2/64",
        "fd00:90::fe",
    );
    let pool = Pool::new(&PoolConfig {
        buffers: 16384,
        huge_pages: HugePages::Try,
        lock: false,
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let AfPacket { rx: mut a_rx, .. } =
        AfPacket::open(&AfPacketConfig::new(&a.link.outer)).unwrap();
    let AfPacket { tx: mut b_tx, .. } =
        AfPacket::open(&AfPacketConfig::new(&b.link.outer)).unwrap();
    let mut b_tx = b_tx.remove(0);
    let mut a_rx = a_rx.remove(0);
    let mut cache = pool.cache(256);
    let flag = stop.clone();
    let forwarder = std::thread::spawn(move || {
        let mut frame = Frame::new();
        let (mut moved, mut failed, mut drops) = (0u64, 0u64, 0u64);
        let mut busy = Duration::ZERO;
        let start = Instant::now();
        while !flag.load(Ordering::Relaxed) {
            let t = Instant::now();
            a_rx.rx_burst(&mut cache, &mut frame, 256);
            drops += a_rx.take_rx_drops();
            if frame.is_empty() {
                continue;
            }
            moved += frame.len() as u64;
            failed += b_tx.tx_burst(&mut cache, &mut frame) as u64;
            busy += t.elapsed();
        }
        let secs = start.elapsed().as_secs_f64();
        (moved, failed, drops, secs, busy.as_secs_f64())
    });

    let mut inside = AfPacketConfig::new("eth0");
    inside.netns = Some(a.ns.name().to_string());
    inside.promiscuous = false;
    let AfPacket { tx: mut gen_tx, .. } = AfPacket::open(&inside).unwrap();
    let mut gen_tx = gen_tx.remove(0);
    let frames: Vec<Vec<u8>> = (0..256).map(udp_frame).collect();
    let mut gen_cache = pool.cache(256);
    let mut burst = Frame::new();
    let mut offered = 0u64;
    let end = Instant::now() + Duration::from_secs(SECONDS);
    while Instant::now() < end {
        for f in &frames {
            burst.push(gen_cache.alloc_from(f).unwrap());
        }
        let n = burst.len() as u64;
        offered += n - gen_tx.tx_burst(&mut gen_cache, &mut burst) as u64;
    }
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let (moved, failed, drops, secs, busy) = forwarder.join().unwrap();
    eprintln!(
        "af_packet forwarding, 64-byte frames, veth to veth, {secs:.1} s: \
         {:.3} Mpps forwarded ({moved} frames, {failed} tx failures, {drops} receive drops); \
         generator offered {:.3} Mpps; forwarder busy {:.0}% of the time, \
         {:.2} Mpps per busy second ({:.0} ns a frame, kernel transmit included)",
        moved as f64 / secs / 1e6,
        offered as f64 / secs / 1e6,
        busy / secs * 100.0,
        moved as f64 / busy / 1e6,
        busy * 1e9 / moved as f64,
    );
}
