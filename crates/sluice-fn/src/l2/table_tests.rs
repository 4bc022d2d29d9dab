//! Unit tests of the MAC table.
use super::*;
use std::collections::HashMap;

fn mac(i: u64) -> u64 {
    0x0200_0000_0000 | i
}

#[test]
fn learn_lookup_move_refresh() {
    let t = MacTable::new(100);
    assert_eq!(t.learn(mac(1), 3, 10), Learned::Added);
    assert_eq!(t.len(), 1);
    let h = t.lookup(mac(1)).unwrap();
    assert_eq!((h.port(), h.is_static()), (3, false));
    assert_eq!(t.learn(mac(1), 3, 11), Learned::Known);
    assert_eq!(t.entries()[0].seen, 11);
    assert_eq!(t.learn(mac(1), 4, 12), Learned::Moved);
    assert_eq!(t.lookup(mac(1)).unwrap().port(), 4);
    assert_eq!(t.len(), 1);
    assert!(t.lookup(mac(2)).is_none());
}

#[test]
fn the_all_zero_mac_is_an_address_like_any_other() {
    let t = MacTable::new(10);
    assert!(t.lookup(0).is_none());
    assert_eq!(t.learn(0, 0, 1), Learned::Added);
    assert_eq!(t.lookup(0).unwrap().port(), 0);
}

#[test]
fn static_entries_are_not_learned_over_nor_aged() {
    let t = MacTable::new(10);
    t.add_static(mac(7), 2).unwrap();
    assert_eq!(t.add_static(mac(7), 1), Err(StaticError::Duplicate));
    assert_eq!(t.learn(mac(7), 5, 1), Learned::StaticElsewhere);
    assert_eq!(t.learn(mac(7), 2, 1), Learned::Known);
    let h = t.lookup(mac(7)).unwrap();
    assert_eq!((h.port(), h.is_static()), (2, true));
    assert_eq!(t.age(0, t.buckets(), 60_000, 1), 0);
    assert_eq!(t.len(), 1);
}

#[test]
fn capacity_is_enforced() {
    let t = MacTable::new(64);
    let added = (0..200)
        .filter(|&i| t.learn(mac(i), 0, 0) == Learned::Added)
        .count();
    assert_eq!(added, 64);
    assert_eq!(t.len(), 64);
    assert_eq!(t.learn(mac(500), 0, 0), Learned::Full);
    // Known entries still refresh and move when full.
    assert_eq!(t.learn(mac(0), 1, 0), Learned::Moved);
}

#[test]
fn fills_to_capacity_with_random_macs() {
    // Two bucket choices keep buckets from overflowing before the
    // table holds its capacity.
    for cap in [1000u32, 10_000, 100_000, 300_000] {
        let t = MacTable::new(cap);
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut full = 0;
        for _ in 0..cap {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if t.learn(x & 0xfeff_ffff_ffff, 1, 0) == Learned::Full {
                full += 1;
            }
        }
        assert_eq!(full, 0, "{full} of {cap} did not fit");
        assert_eq!(t.len(), cap as usize);
    }
}

/// Share of the entries that sit in their first bucket.
fn first_bucket_share(t: &MacTable) -> f64 {
    let e = t.entries();
    let first = e
        .iter()
        .filter(|x| t.holds(t.place(x.mac).b1, x.mac))
        .count();
    first as f64 / e.len() as f64
}

#[test]
fn most_entries_are_in_their_first_bucket() {
    let t = MacTable::new(16_384);
    let mut x = 0x0bad_cafe_1234_5678u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x & 0xfeff_ffff_ffff
    };
    for _ in 0..4096 {
        t.learn(next(), 0, 0);
    }
    assert!(first_bucket_share(&t) > 0.999, "{}", first_bucket_share(&t));
    // 60 % of capacity, the bridge benchmark's load.
    while t.len() < 10_000 {
        t.learn(next(), 0, 0);
    }
    assert!(first_bucket_share(&t) > 0.985, "{}", first_bucket_share(&t));
    while t.len() < 16_384 {
        assert_ne!(t.learn(next(), 0, 0), Learned::Full);
    }
    assert!(first_bucket_share(&t) > 0.95, "{}", first_bucket_share(&t));
}

/// Fills every free slot of bucket `b` with entries of made-up MACs that
/// are not `except`.
fn fill_bucket(t: &MacTable, b: usize, except: u64) {
    for (s, k) in t.buckets[b].key.iter().enumerate() {
        if k.load(Ordering::SeqCst) == 0 {
            let filler = 0x0e00_0000_0000 | (b as u64) << 8 | s as u64;
            assert_ne!(filler, except);
            k.store(key_of(filler, 9, false), Ordering::SeqCst);
            t.len.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_mac_whose_two_buckets_are_full_goes_to_its_third() {
    let t = MacTable::new(1000);
    // A MAC with three distinct buckets.
    let m = (1..)
        .map(mac)
        .find(|&m| {
            let [a, b, c] = t.choices(m);
            a != b && b != c && a != c
        })
        .unwrap();
    let [b1, b2, b3] = t.choices(m);
    fill_bucket(&t, b1, m);
    fill_bucket(&t, b2, m);
    assert_eq!(t.learn(m, 2, 5), Learned::Added);
    assert!(t.holds(b3, m));
    assert_eq!(t.lookup(m).map(|h| h.port()), Some(2));
    assert_eq!(t.learn(m, 2, 6), Learned::Known);
    assert_eq!(t.learn(m, 3, 7), Learned::Moved);
    assert_eq!(t.lookup(m).map(|h| h.port()), Some(3));
    // A second copy in the third bucket is found and removed like any.
    let [_, _, third] = t.choices(m);
    let free = (0..SLOTS)
        .find(|&s| t.buckets[third].key[s].load(Ordering::SeqCst) == 0)
        .unwrap();
    t.buckets[third].key[free].store(key_of(m, 4, false), Ordering::SeqCst);
    t.len.fetch_add(1, Ordering::SeqCst);
    let mine = (third, free);
    t.remove_copies(m, t.choices(m), mine);
    assert_eq!(t.entries().iter().filter(|e| e.mac == m).count(), 1);
    // Aged like any other.
    let before = t.len();
    assert_eq!(t.age(third, 1, 1000, 10), 1);
    assert_eq!(t.len(), before - 1);
    assert!(t.lookup(m).is_none());
}

#[test]
fn a_mac_whose_three_buckets_are_full_is_not_learned() {
    let t = MacTable::new(1000);
    let m = mac(77);
    for b in t.choices(m) {
        fill_bucket(&t, b, m);
    }
    assert_eq!(t.learn(m, 0, 0), Learned::Full);
    assert!(t.lookup(m).is_none());
}

#[test]
fn fills_to_capacity_with_sequential_macs() {
    for cap in [1000u32, 65_536] {
        let t = MacTable::new(cap);
        let full = (0..u64::from(cap))
            .filter(|&i| t.learn(mac(i << 8), 1, 0) == Learned::Full)
            .count();
        assert_eq!(full, 0, "{full} of {cap} did not fit");
        let full = (0..u64::from(cap))
            .filter(|&i| t.learn(mac((1 << 32) | i), 1, 0) == Learned::Full)
            .count();
        assert_eq!(full, cap as usize);
    }
}

#[test]
fn aging_removes_what_was_not_seen() {
    let t = MacTable::new(1000);
    for i in 0..100 {
        t.learn(mac(i), 0, 100);
    }
    for i in 0..50 {
        t.learn(mac(i), 0, 150);
    }
    // Age 60 at tick 160 (limit 50 ticks): the ones seen at 100 go.
    assert_eq!(t.age(0, t.buckets(), 160, 50), 50);
    assert_eq!(t.len(), 50);
    assert!((0..50).all(|i| t.lookup(mac(i)).is_some()));
    assert!((50..100).all(|i| t.lookup(mac(i)).is_none()));
    // Times ahead of the scan's own are young.
    assert_eq!(t.age(0, t.buckets(), 140, 5), 0);
    // A slice at a time, wrapping, covers everything.
    let mut removed = 0;
    for k in 0..t.buckets() {
        removed += t.age(k * 3 + 7, 3, 1000, 50);
    }
    assert_eq!(removed, 50);
    assert!(t.is_empty());
}

#[test]
fn duplicate_copies_are_resolved_to_the_lower_slot() {
    // Put two copies by hand, as two racing claimers could, then let a
    // claim's check run.
    let t = MacTable::new(100);
    let m = mac(9);
    let p = t.place(m);
    t.buckets[p.b1].key[1].store(key_of(m, 1, false), Ordering::SeqCst);
    t.buckets[p.b1].key[3].store(key_of(m, 2, false), Ordering::SeqCst);
    t.set_tag(p.b1, 1, p.tag);
    t.set_tag(p.b1, 3, p.tag);
    t.len.store(2, Ordering::SeqCst);
    t.remove_copies(m, [p.b1; 3], (p.b1, 3));
    let e: HashMap<u64, u16> = t.entries().iter().map(|e| (e.mac, e.port)).collect();
    assert_eq!(e.get(&m), Some(&1));
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(m).map(|h| h.port()), Some(1));
    assert_eq!(t.buckets[p.b1].tags.load(Ordering::SeqCst) >> 24 & 0xff, 0);
}

#[test]
fn learning_a_known_mac_refreshes_only_its_dynamic_entry_on_that_port() {
    let t = MacTable::new(100);
    assert_eq!(t.learn(mac(1), 3, 10), Learned::Added);
    // Same port, same tick: nothing written; a new tick: the time only.
    assert_eq!(t.learn(mac(1), 3, 10), Learned::Known);
    assert_eq!(t.learn(mac(1), 3, 12), Learned::Known);
    assert_eq!(t.entries()[0].seen, 12);
    // A port no key can hold is never mistaken for one.
    for port in [MAX_PORT + 1, u16::MAX] {
        assert_eq!(t.learn(mac(1), port, 13), Learned::Full);
    }
    assert_eq!(t.lookup(mac(1)).map(|h| h.port()), Some(3));
    assert_eq!(t.entries()[0].seen, 12);
    // A static entry on that port is known, its time left alone.
    t.add_static(mac(2), 3).unwrap();
    assert_eq!(t.learn(mac(2), 3, 14), Learned::Known);
    let e = t.entries().into_iter().find(|e| e.mac == mac(2)).unwrap();
    assert_eq!((e.is_static, e.seen), (true, 0));
}
