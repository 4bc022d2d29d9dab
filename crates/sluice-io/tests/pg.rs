//! The generator writes real, valid, varied packets.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_graph::{FRAME_SIZE, Frame, InputState};
use sluice_io::Driver;
use sluice_io::pg::{IMIX, Ipv4Range, L4, PacketGenerator, PacketSize, PortRange, StreamSpec};
use sluice_wire::MacAddr;

fn spec(l4: L4, size: PacketSize, count: u64) -> StreamSpec {
    StreamSpec {
        name: "t".into(),
        count: (count > 0).then_some(count),
        rate_pps: None,
        size,
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        vlan: None,
        src_ip: Ipv4Range {
            first: Ipv4Addr::new(10, 0, 0, 0),
            count: 256,
        },
        dst_ip: Ipv4Range {
            first: Ipv4Addr::new(10, 1, 0, 0),
            count: 65536,
        },
        l4,
        src_port: PortRange {
            first: 1024,
            count: 1000,
        },
        dst_port: PortRange {
            first: 80,
            count: 10,
        },
        flows: 500,
        ttl: 64,
        seed: 7,
    }
}

fn pool() -> Pool {
    Pool::new(&PoolConfig {
        buffers: 1024,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

fn generate(specs: Vec<StreamSpec>) -> Vec<Vec<u8>> {
    let pool = pool();
    let mut cache = pool.cache(64);
    let mut pg = PacketGenerator::new(specs);
    let mut all = Vec::new();
    let mut f = Frame::new();
    loop {
        let st = pg.rx_burst(&mut cache, &mut f, FRAME_SIZE);
        for p in f.iter() {
            let mut v = Vec::new();
            p.copy_to(&mut v);
            all.push(v);
        }
        cache.free_all(&mut f);
        if st == InputState::Done {
            break;
        }
    }
    drop(cache);
    assert_eq!(pool.free_count(), 1024);
    all
}

fn check_valid(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, u16, u16) {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not ipv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "ip checksum");
    let l2 = if frame[12..14] == [0x81, 0x00] {
        18
    } else {
        14
    };
    assert_eq!(h.total_len as usize, frame.len() - l2);
    let payload = ip.payload().payload;
    let (sport, dport) = match &p.transport {
        Some(TransportSlice::Udp(u)) => {
            let uh = u.to_header();
            let body = &payload[8..];
            assert_eq!(
                uh.checksum,
                uh.calc_checksum_ipv4(&h, body).unwrap(),
                "udp checksum"
            );
            (uh.source_port, uh.destination_port)
        }
        Some(TransportSlice::Tcp(t)) => {
            let th = t.to_header();
            let body = &payload[th.header_len()..];
            assert_eq!(
                th.checksum,
                th.calc_checksum_ipv4(&h, body).unwrap(),
                "tcp checksum"
            );
            (th.source_port, th.destination_port)
        }
        Some(TransportSlice::Icmpv4(i)) => {
            // A message with a right checksum sums to zero.
            assert_eq!(
                sluice_wire::checksum::checksum(i.slice()),
                0,
                "icmp checksum"
            );
            (0, 0)
        }
        _ => panic!("no transport"),
    };
    (h.source.into(), h.destination.into(), sport, dport)
}

#[test]
fn every_protocol_has_valid_checksums_at_every_size() {
    for l4 in [L4::Udp, L4::Tcp, L4::Icmp] {
        for size in [
            PacketSize::Fixed(64),
            PacketSize::Range(60, 1514),
            PacketSize::Imix,
            PacketSize::Fixed(2048),
        ] {
            let frames = generate(vec![spec(l4, size, 2000)]);
            assert_eq!(frames.len(), 2000);
            for f in &frames {
                check_valid(f);
            }
        }
    }
}

#[test]
fn imix_is_seven_four_one() {
    let frames = generate(vec![spec(L4::Udp, PacketSize::Imix, 12_000)]);
    let count = |n: u16| frames.iter().filter(|f| f.len() == n as usize).count();
    assert_eq!(
        (count(IMIX[0]), count(IMIX[1]), count(IMIX[2])),
        (7000, 4000, 1000)
    );
}

#[test]
fn flows_vary_within_their_ranges() {
    let frames = generate(vec![spec(L4::Udp, PacketSize::Fixed(64), 20_000)]);
    let mut flows = HashSet::new();
    let mut payloads = HashSet::new();
    for f in &frames {
        let (s, d, sp, dp) = check_valid(f);
        assert_eq!(s.octets()[..3], [10, 0, 0]);
        assert_eq!(d.octets()[..2], [10, 1]);
        assert!((1024..2024).contains(&sp) && (80..90).contains(&dp));
        flows.insert((s, d, sp, dp));
        payloads.insert(f[42..].to_vec());
    }
    // 500 flows, all of them seen in 20k packets.
    assert_eq!(flows.len(), 500);
    assert!(payloads.len() > 100, "payloads should vary");
}

#[test]
fn vlan_and_several_streams() {
    let mut a = spec(L4::Udp, PacketSize::Fixed(100), 300);
    a.vlan = Some(42);
    let b = spec(L4::Tcp, PacketSize::Fixed(200), 500);
    let frames = generate(vec![a, b]);
    assert_eq!(frames.len(), 800);
    let tagged: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f[12..14] == [0x81, 0x00])
        .collect();
    assert_eq!(tagged.len(), 300);
    for f in tagged {
        assert_eq!(u16::from_be_bytes([f[14], f[15]]) & 0xfff, 42);
        check_valid(f);
    }
}

#[test]
fn bad_streams_are_refused_with_a_reason() {
    let mut s = spec(L4::Tcp, PacketSize::Fixed(40), 1);
    assert!(s.validate().unwrap_err().contains("below"));
    s.size = PacketSize::Fixed(3000);
    assert!(s.validate().unwrap_err().contains("above"));
    s.size = PacketSize::Range(100, 90);
    assert!(s.validate().is_err());
    s.size = PacketSize::Fixed(64);
    s.flows = 0;
    assert!(s.validate().is_err());
}

#[test]
fn shares_add_up() {
    let s = spec(L4::Udp, PacketSize::Fixed(64), 1001);
    let total: u64 = (0..3).map(|w| s.share(w, 3).count.unwrap()).sum();
    assert_eq!(total, 1001);
    // Fewer packets than workers: the others get none, not an endless stream.
    let one = spec(L4::Udp, PacketSize::Fixed(64), 1);
    let shares: Vec<Option<u64>> = (0..4).map(|w| one.share(w, 4).count).collect();
    assert_eq!(shares, [Some(1), Some(0), Some(0), Some(0)]);
    assert_eq!(generate(vec![one.share(1, 4)]).len(), 0);
}

#[test]
fn rate_limited_stream_paces_itself() {
    let mut s = spec(L4::Udp, PacketSize::Fixed(64), 0);
    s.rate_pps = Some(20_000.0);
    let pool = pool();
    let mut cache = pool.cache(64);
    let mut pg = PacketGenerator::new(vec![s]);
    let mut f = Frame::new();
    let t0 = std::time::Instant::now();
    while t0.elapsed() < std::time::Duration::from_millis(100) {
        pg.rx_burst(&mut cache, &mut f, FRAME_SIZE);
        cache.free_all(&mut f);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    // Paced, not flat out: never ahead of the rate (plus one packet, and 5 %
    // for the TSC rate being measured rather than known).
    assert!(
        pg.sent() as f64 <= 20_000.0 * elapsed * 1.05 + 1.0,
        "{} in {elapsed}",
        pg.sent()
    );
    assert!(pg.sent() > 0);
}
