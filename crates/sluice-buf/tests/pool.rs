//! Pool, cache and packet behaviour: every buffer comes back.

use proptest::prelude::*;
use sluice_buf::{BufError, DATA_SIZE, HEADROOM, HugePages, Packet, Pool, PoolConfig};

fn pool(n: u32) -> Pool {
    Pool::new(&PoolConfig {
        buffers: n,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .expect("pool")
}

#[test]
fn fresh_pool_is_all_free() {
    let p = pool(1000);
    assert_eq!(p.capacity(), 1000);
    assert_eq!(p.free_count(), 1000);
    assert!(!p.backing().huge_pages);
}

#[test]
fn bad_sizes_are_refused() {
    for n in [0, (1 << 24) + 1] {
        let e = Pool::new(&PoolConfig {
            buffers: n,
            ..PoolConfig::default()
        })
        .unwrap_err();
        assert!(matches!(e, BufError::BadSize(_)), "{e}");
    }
}

#[test]
fn alloc_write_read_free() {
    let p = pool(64);
    let mut c = p.cache(16);
    let mut pkt = c.alloc().expect("buffer");
    assert_eq!(pkt.len(), 0);
    assert_eq!(pkt.headroom(), HEADROOM);
    assert_eq!(pkt.tailroom(), DATA_SIZE);
    pkt.room_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
    pkt.set_len(4).unwrap();
    assert_eq!(pkt.data(), &[1, 2, 3, 4]);
    pkt.meta_mut().rx_if = 7;
    let hdr = pkt.prepend(2).unwrap();
    hdr.copy_from_slice(&[9, 9]);
    assert_eq!(pkt.data(), &[9, 9, 1, 2, 3, 4]);
    pkt.advance(3).unwrap();
    assert_eq!(pkt.data(), &[2, 3, 4]);
    assert!(pkt.advance(4).is_err());
    assert!(pkt.set_len(DATA_SIZE + HEADROOM).is_err());
    c.free(pkt);
    drop(c);
    assert_eq!(p.free_count(), 64);
}

#[test]
fn metadata_is_reset_on_alloc() {
    let p = pool(1);
    let mut c = p.cache(1);
    let mut a = c.alloc().unwrap();
    a.meta_mut().adj = 5;
    a.set_len(100).unwrap();
    c.free(a);
    let b = c.alloc().unwrap();
    assert_eq!(b.meta().adj, 0);
    assert_eq!(b.len(), 0);
    c.free(b);
}

#[test]
fn exhaustion_is_none_not_panic() {
    let p = pool(8);
    let mut c = p.cache(4);
    let mut held = Vec::new();
    assert_eq!(c.alloc_bulk(20, &mut held), 8);
    assert!(c.alloc().is_none());
    assert!(matches!(c.alloc_from(&[0; 10]), Err(BufError::Exhausted)));
    c.free_all(&mut held);
    drop(c);
    assert_eq!(p.free_count(), 8);
}

#[test]
fn jumbo_frames_chain_and_free_whole() {
    let p = pool(16);
    let mut c = p.cache(4);
    let bytes: Vec<u8> = (0..9000u32).map(|i| (i * 7) as u8).collect();
    let mut pkt = c.alloc_from(&bytes).unwrap();
    assert!(pkt.is_chained());
    assert_eq!(pkt.total_len(), 9000);
    assert_eq!(pkt.segments().count(), 9000usize.div_ceil(DATA_SIZE));
    let mut out = Vec::new();
    pkt.copy_to(&mut out);
    assert_eq!(out, bytes);
    pkt.truncate(3000).unwrap();
    assert_eq!(pkt.total_len(), 3000);
    out.clear();
    pkt.copy_to(&mut out);
    assert_eq!(out, bytes[..3000]);
    assert!(pkt.truncate(3001).is_err());
    c.free(pkt);
    drop(c);
    assert_eq!(p.free_count(), 16);
}

#[test]
fn jumbo_that_does_not_fit_returns_its_segments() {
    let p = pool(3);
    let mut c = p.cache(1);
    assert!(c.alloc_from(&[1u8; 9000]).is_err());
    drop(c);
    assert_eq!(p.free_count(), 3);
}

#[test]
#[should_panic(expected = "another pool")]
fn freeing_into_another_pool_is_caught() {
    let a = pool(2);
    let b = pool(2);
    let mut ca = a.cache(1);
    let mut cb = b.cache(1);
    let pkt = ca.alloc().unwrap();
    cb.free(pkt);
}

#[test]
fn packets_move_between_threads() {
    let p = pool(512);
    let mut c = p.cache(64);
    let mut v = Vec::new();
    c.alloc_bulk(256, &mut v);
    let handle = std::thread::spawn(move || {
        for (i, pkt) in v.iter_mut().enumerate() {
            pkt.set_len(1).unwrap();
            pkt.data_mut()[0] = i as u8;
        }
        v
    });
    let mut v = handle.join().unwrap();
    for (i, pkt) in v.iter().enumerate() {
        assert_eq!(pkt.data()[0], i as u8);
    }
    c.free_all(&mut v);
    drop(c);
    assert_eq!(p.free_count(), 512);
}

#[derive(Debug, Clone)]
enum Op {
    Alloc,
    AllocJumbo(u16),
    Free(usize),
    Prepend(u8),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Alloc),
        1 => (0u16..12000).prop_map(Op::AllocJumbo),
        4 => any::<usize>().prop_map(Op::Free),
        1 => any::<u8>().prop_map(Op::Prepend),
        1 => Just(Op::Flush),
    ]
}

proptest! {
    /// Whatever the sequence of operations, every buffer comes back and no
    /// two packets share one.
    #[test]
    fn no_buffer_is_ever_lost_or_shared(ops in proptest::collection::vec(op(), 1..300), batch in 1usize..40) {
        let p = pool(64);
        let mut c1 = p.cache(batch);
        let mut c2 = p.cache(batch / 2 + 1);
        let mut held: Vec<Packet> = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            let c = if i % 2 == 0 { &mut c1 } else { &mut c2 };
            match op {
                Op::Alloc => if let Some(pkt) = c.alloc() { held.push(pkt) },
                Op::AllocJumbo(n) => if let Ok(pkt) = c.alloc_from(&vec![1; n as usize]) {
                    prop_assert_eq!(pkt.total_len(), n as usize);
                    held.push(pkt)
                },
                Op::Free(k) => if !held.is_empty() { let k = k % held.len(); c.free(held.swap_remove(k)) },
                Op::Prepend(n) => if let Some(pkt) = held.last_mut() { let _ = pkt.prepend(n as usize); },
                Op::Flush => c.flush(),
            }
            let mut idx: Vec<u32> = Vec::new();
            for pkt in &held {
                idx.push(pkt.index());
            }
            let n = idx.len();
            idx.sort_unstable();
            idx.dedup();
            prop_assert_eq!(idx.len(), n, "two packets share a buffer");
        }
        for pkt in held.drain(..) {
            c1.free(pkt);
        }
        drop(c1);
        drop(c2);
        prop_assert_eq!(p.free_count(), 64);
    }
}

#[test]
fn huge_lengths_are_refused_not_wrapped() {
    let p = pool(2);
    let mut c = p.cache(1);
    let mut pkt = c.alloc().unwrap();
    for len in [usize::MAX, usize::MAX - 100, 1 << 40, HEADROOM + DATA_SIZE] {
        assert!(pkt.set_len(len).is_err(), "{len}");
    }
    assert!(pkt.set_len(DATA_SIZE).is_ok());
    assert_eq!(pkt.data().len(), DATA_SIZE);
    assert!(pkt.prepend(usize::MAX).is_err());
    assert!(pkt.advance(usize::MAX).is_err());
    c.free(pkt);
}

#[test]
#[should_panic(expected = "dropped without being freed")]
fn a_dropped_packet_is_caught_in_debug_builds() {
    let p = pool(1);
    let mut c = p.cache(1);
    let pkt = c.alloc().unwrap();
    drop(pkt);
}

#[test]
fn lent_buffers_leave_the_pool_and_come_back() {
    let pool = Pool::new(&PoolConfig {
        buffers: 64,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let layout = pool.device_layout();
    assert_eq!(layout.buffers, 64);
    assert!(layout.len >= 64 * 2048 && layout.stride >= 2048 + HEADROOM);
    let mut cache = pool.cache(8);
    let mut p = cache.alloc_from(&[7u8; 100]).unwrap();
    p.meta_mut().rx_if = 9;
    let lent = p.lend().unwrap();
    assert_eq!(layout.buffer_at(lent.buffer), Some(lent.index));
    assert_eq!(layout.buffer_at(lent.data), Some(lent.index));
    assert_eq!(lent.data - lent.buffer, layout.data_start as u64);
    assert_eq!(lent.len, 100);
    assert_eq!(layout.buffer_at(layout.len as u64), None);
    // What the "device" wrote is what the packet holds once reclaimed.
    // SAFETY: the buffer was lent above and nothing else touches it.
    let mut back = unsafe { cache.reclaim(lent.index) }.unwrap();
    assert_eq!(back.meta().rx_if, 0, "metadata is cleared");
    back.set_len(100).unwrap();
    assert_eq!(back.data(), &[7u8; 100][..]);
    cache.free(back);
    // SAFETY: out of range, so nothing is made.
    assert!(unsafe { cache.reclaim(64) }.is_none());
    // A chained packet cannot be lent.
    let big = cache.alloc_from(&[1u8; 5000]).unwrap();
    let big = big.lend().unwrap_err();
    cache.free(big);
    drop(cache);
    assert_eq!(pool.free_count(), 64);
}
