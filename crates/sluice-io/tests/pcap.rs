//! The pcap format: what is written reads back; damaged files are refused
//! with a reason, never a panic.

use std::io::Cursor;
use std::path::Path;

use proptest::prelude::*;
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_graph::{FRAME_SIZE, Frame, InputState};
use sluice_io::Driver;
use sluice_io::pcap::{PcapError, PcapReader, PcapReplay, PcapWriter};

fn write(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let mut w = PcapWriter::new(&mut out, 65535).unwrap();
    for p in packets {
        w.write(p).unwrap();
    }
    w.flush().unwrap();
    out.into_inner()
}

fn read_all(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PcapError> {
    let mut r = PcapReader::new(bytes, Path::new("test.pcap"))?;
    let mut v = Vec::new();
    while let Some(rec) = r.next_record()? {
        assert_eq!(rec.orig_len as usize, rec.data.len());
        v.push(rec.data);
    }
    Ok(v)
}

#[test]
fn round_trip() {
    let packets: Vec<Vec<u8>> = (0..50).map(|i| vec![i as u8; 60 + i * 30]).collect();
    assert_eq!(read_all(&write(&packets)).unwrap(), packets);
}

#[test]
fn big_endian_and_nanosecond_files_read() {
    // Hand-made big-endian, nanosecond file with one 4-byte packet.
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_3c4du32.to_be_bytes());
    f.extend_from_slice(&2u16.to_be_bytes());
    f.extend_from_slice(&4u16.to_be_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_be_bytes());
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&5u32.to_be_bytes());
    f.extend_from_slice(&999u32.to_be_bytes());
    f.extend_from_slice(&4u32.to_be_bytes());
    f.extend_from_slice(&4u32.to_be_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]);
    let mut r = PcapReader::new(&f[..], Path::new("be.pcap")).unwrap();
    let rec = r.next_record().unwrap().unwrap();
    assert_eq!(
        (rec.seconds, rec.nanos, rec.data),
        (5, 999, vec![1, 2, 3, 4])
    );
    assert!(r.next_record().unwrap().is_none());
}

#[test]
fn damaged_files_are_refused() {
    let good = write(&[vec![1; 100], vec![2; 100]]);
    assert!(matches!(
        read_all(&good[..10]),
        Err(PcapError::BadMagic(..))
    ));
    assert!(matches!(
        read_all(b"\x0a\x0d\x0d\x0a pcapng....................."),
        Err(PcapError::BadMagic(..))
    ));
    assert!(matches!(
        read_all(&good[..good.len() - 5]),
        Err(PcapError::Truncated(..))
    ));
    assert!(matches!(
        read_all(&good[..24 + 10]),
        Err(PcapError::Truncated(..))
    ));
    let mut raw_ip = good.clone();
    raw_ip[20] = 101;
    assert!(matches!(
        read_all(&raw_ip),
        Err(PcapError::LinkType(_, 101))
    ));
    let mut huge = good.clone();
    huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(read_all(&huge), Err(PcapError::BadRecord(..))));
}

#[test]
fn replay_chains_jumbo_frames_and_repeats() {
    let dir = std::env::temp_dir().join(format!("sluice-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("in.pcap");
    let packets = vec![vec![7u8; 64], vec![8u8; 9000], vec![9u8; 1500]];
    std::fs::write(&path, write(&packets)).unwrap();
    let loaded = PcapReplay::load(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let pool = Pool::new(&PoolConfig {
        buffers: 64,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let mut cache = pool.cache(8);
    let mut replay = PcapReplay::new(loaded, 2);
    let mut f = Frame::new();
    let mut seen = Vec::new();
    loop {
        let st = replay.rx_burst(&mut cache, &mut f, FRAME_SIZE);
        for p in f.iter() {
            let mut v = Vec::new();
            p.copy_to(&mut v);
            seen.push(v);
        }
        cache.free_all(&mut f);
        if st == InputState::Done {
            break;
        }
    }
    let want: Vec<Vec<u8>> = packets.iter().chain(&packets).cloned().collect();
    assert_eq!(seen, want);
    drop(cache);
    assert_eq!(pool.free_count(), 64);
}

#[test]
fn missing_file_names_the_path() {
    let e = PcapReplay::load(Path::new("/nonexistent/x.pcap"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("/nonexistent/x.pcap"), "{e}");
}

proptest! {
    /// Any bytes at all: a clean error or records, never a panic.
    #[test]
    fn random_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), keep_header in any::<bool>()) {
        let mut f = bytes;
        if keep_header && f.len() >= 24 {
            f[..24].copy_from_slice(&write(&[])[..24]);
        }
        let _ = read_all(&f);
    }
}
