//! The connection table of one worker: sessions, the index that finds
//! them from either direction's key, zones and the embryonic lists.
//!
//! One writer (the worker), so nothing here is atomic or locked.
//!
//! Sessions are an array fixed at creation ([`Session`], 128 bytes each)
//! with a stack of free slots. The index is an array of 64-byte buckets of
//! eight entries: a 16-bit signature of the key's hash and the session
//! number with the direction in its low bit. Each session has two
//! entries, its original key's and its reply key's, so a packet of either
//! direction is found with one hash of the key it carries. A key may sit
//! in either of two buckets; it goes to the first unless that is full,
//! and the first then counts it as overflow, so a lookup reads the second
//! only when something overflowed from the first. There are 1.5 entries
//! of room per entry of capacity (three buckets for every eight
//! sessions): at capacity a bucket holds 5.3 entries on average, so
//! nearly every lookup reads one bucket and one session. A key whose two
//! buckets are both full is refused (counted), never forced in.
//!
//! Memory is allocated once, at creation, and never grows: 128 B a
//! session, 24 B of index a session, 4 B of free stack a session.

use thiserror::Error;

use sluice_buf::table::prefetch;

use super::session::{EMBRYONIC, List, NIL, NatSide, ReplyNat, Session, ZONE, flags};
use super::tuple::Tuple;
use super::wheel::UNARMED;

const WAYS: usize = 8;

#[repr(C, align(64))]
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Signature of each entry's key hash; 0: empty.
    sig: [u16; WAYS],
    /// Session << 1 | direction.
    val: [u32; WAYS],
    /// Entries whose first bucket this is, kept in their second.
    overflow: u32,
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

/// The largest capacity a table accepts (session numbers keep a bit for
/// the direction).
pub const MAX_CAPACITY: u32 = 1 << 28;

/// Why a session could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InsertError {
    /// Every session slot is taken.
    #[error("connection table full")]
    Full,
    /// Both buckets of one of the keys are full.
    #[error("both buckets of the key are full")]
    Buckets,
}

/// A zone's share of the table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Zone {
    /// Sessions in the zone now.
    pub count: u32,
    /// Sessions the zone may hold.
    pub limit: u32,
    /// Its embryonic sessions, oldest first.
    pub embryonic: List,
}

/// Where a hash sends a key.
#[derive(Debug, Clone, Copy)]
struct Place {
    b1: usize,
    b2: usize,
    sig: u16,
}

/// Sessions, their index and their zones.
#[derive(Debug)]
pub struct ConnTable {
    buckets: Box<[Bucket]>,
    /// The sessions (public to the tracker, which threads lists and
    /// timers through them).
    pub sessions: Box<[Session]>,
    free: Vec<u32>,
    /// Zones, by number.
    pub zones: Box<[Zone]>,
    /// Every embryonic session, oldest first.
    pub embryonic: List,
    seed: u64,
}

impl ConnTable {
    /// A table of `capacity` sessions (clamped to 1..=[`MAX_CAPACITY`]) in
    /// `zones` zones of `zone_limit` sessions each, hashing with `seed`.
    pub fn new(capacity: u32, zones: u16, zone_limit: u32, seed: u64) -> ConnTable {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let entries = 2 * capacity as usize;
        let buckets = (entries * 3 / 2).div_ceil(WAYS).max(2);
        ConnTable {
            buckets: vec![Bucket::default(); buckets].into_boxed_slice(),
            sessions: vec![Session::default(); capacity as usize].into_boxed_slice(),
            // Popped from the end: session 0 first.
            free: (0..capacity).rev().collect(),
            zones: vec![
                Zone {
                    limit: zone_limit,
                    ..Zone::default()
                };
                usize::from(zones.max(1))
            ]
            .into_boxed_slice(),
            embryonic: List::default(),
            seed,
        }
    }

    /// Sessions the table holds at most.
    pub fn capacity(&self) -> usize {
        self.sessions.len()
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.sessions.len() - self.free.len()
    }

    /// Whether the table holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the table holds (all of it allocated at creation).
    pub fn memory(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
            + std::mem::size_of_val(&*self.sessions)
            + self.free.capacity() * 4
            + std::mem::size_of_val(&*self.zones)
    }

    /// The hash of `key` in this table.
    #[inline(always)]
    pub fn hash(&self, key: &Tuple) -> u64 {
        key.hash(self.seed)
    }

    #[inline(always)]
    fn place(&self, h: u64) -> Place {
        let n = self.buckets.len() as u128;
        let b1 = ((u128::from(h) * n) >> 64) as usize;
        let h2 = h.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut b2 = ((u128::from(h2) * n) >> 64) as usize;
        if b2 == b1 {
            b2 = (b1 + 1) % self.buckets.len();
        }
        let sig = (h >> 16) as u16;
        Place {
            b1,
            b2,
            sig: sig | u16::from(sig == 0),
        }
    }

    /// Starts loading the bucket a lookup of hash `h` reads first.
    #[inline(always)]
    pub fn prefetch_bucket(&self, h: u64) {
        let p = self.place(h);
        if let Some(b) = self.buckets.get(p.b1) {
            prefetch(b);
        }
    }

    /// Starts loading the session a lookup of hash `h` most likely finds
    /// (the first signature match of its first bucket), both lines of it.
    /// A guess: the lookup proper checks the key.
    #[inline(always)]
    pub fn prefetch_session(&self, h: u64) {
        let p = self.place(h);
        let Some(b) = self.buckets.get(p.b1) else {
            return;
        };
        let m = matches(b, p.sig);
        if m != 0
            && let Some(s) = self
                .sessions
                .get((b.val[m.trailing_zeros() as usize] >> 1) as usize)
        {
            prefetch(s);
            prefetch(&s.peer);
        }
    }

    #[inline(always)]
    fn find_in(&self, b: usize, sig: u16, key: &Tuple) -> Option<(u32, usize)> {
        let bucket = self.buckets.get(b)?;
        let mut m = matches(bucket, sig);
        while m != 0 {
            let v = bucket.val[m.trailing_zeros() as usize];
            let (i, dir) = (v >> 1, (v & 1) as usize);
            if self.sessions.get(i as usize)?.matches(dir, key) {
                return Some((i, dir));
            }
            m &= m - 1;
        }
        None
    }

    /// The session and direction (0: original, 1: reply) of `key`, whose
    /// hash is `h`.
    #[inline(always)]
    pub fn find(&self, key: &Tuple, h: u64) -> Option<(u32, usize)> {
        let p = self.place(h);
        match self.find_in(p.b1, p.sig, key) {
            Some(f) => Some(f),
            None if self.buckets[p.b1].overflow != 0 => self.find_in(p.b2, p.sig, key),
            None => None,
        }
    }

    /// A free way of bucket `b`.
    #[inline]
    fn free_way(&self, b: usize) -> Option<usize> {
        self.buckets[b].sig.iter().position(|&s| s == 0)
    }

    /// Writes entry `val` (signature `sig`, first bucket `b1`) in way `w`
    /// of bucket `b`, counting it as overflow of `b1` if `b` is not `b1`.
    fn put(&mut self, b: usize, w: usize, sig: u16, val: u32, b1: usize) {
        self.buckets[b].sig[w] = sig;
        self.buckets[b].val[w] = val;
        if b != b1 {
            self.buckets[b1].overflow += 1;
        }
    }

    /// Empties way `w` of bucket `b`, whose entry has first bucket `b1`.
    fn take(&mut self, b: usize, w: usize, b1: usize) {
        self.buckets[b].sig[w] = 0;
        if b != b1 {
            self.buckets[b1].overflow -= 1;
        }
    }

    /// Where the entry in way `w` of bucket `b` may live: its place and
    /// the bucket other than `b`.
    fn other_bucket(&self, b: usize, w: usize) -> (Place, usize) {
        let v = self.buckets[b].val[w];
        let key = self.sessions[(v >> 1) as usize].key((v & 1) as usize);
        let p = self.place(self.hash(&key));
        (p, if p.b1 == b { p.b2 } else { p.b1 })
    }

    /// Moves the entry in way `w` of bucket `from` to a free way of its
    /// other bucket, if it has one; returns whether it did.
    fn shift(&mut self, from: usize, w: usize) -> bool {
        let (p, to) = self.other_bucket(from, w);
        let Some(tw) = self.free_way(to) else {
            return false;
        };
        let val = self.buckets[from].val[w];
        self.take(from, w, p.b1);
        self.put(to, tw, p.sig, val, p.b1);
        true
    }

    /// Puts index entry `val` for hash `h` in a free way: of its first
    /// bucket, else of its second, else of either after moving an entry
    /// (or an entry and one of its neighbours) to its other bucket — a
    /// cuckoo step two deep, which at the table's load finds room for all
    /// but a vanishing few keys.
    fn insert_entry(&mut self, h: u64, val: u32) -> bool {
        let p = self.place(h);
        for b in [p.b1, p.b2] {
            if let Some(w) = self.free_way(b) {
                self.put(b, w, p.sig, val, p.b1);
                return true;
            }
        }
        for depth in 0..2 {
            for b in [p.b1, p.b2] {
                for w in 0..WAYS {
                    let moved = if depth == 0 {
                        self.shift(b, w)
                    } else {
                        let (_, alt) = self.other_bucket(b, w);
                        (0..WAYS).any(|w2| self.shift(alt, w2)) && self.shift(b, w)
                    };
                    if moved {
                        self.put(b, w, p.sig, val, p.b1);
                        return true;
                    }
                }
            }
        }
        false
    }

    fn remove_entry(&mut self, h: u64, val: u32) {
        let p = self.place(h);
        for b in [p.b1, p.b2] {
            let bucket = &self.buckets[b];
            if let Some(w) = (0..WAYS).find(|&w| bucket.sig[w] == p.sig && bucket.val[w] == val) {
                self.take(b, w, p.b1);
                return;
            }
        }
    }

    /// Adds a session for `orig` (its original key, zone included) with
    /// flags `IN_USE` and nothing else; the caller fills in the rest.
    /// Zone limits are the caller's business.
    pub fn insert(&mut self, orig: &Tuple) -> Result<u32, InsertError> {
        self.insert_nat(orig, ReplyNat::NONE)
    }

    /// Adds a session for `orig` whose reply key `nat` changes (see
    /// [`insert`](Self::insert)). The caller makes sure no session has
    /// that reply key already.
    pub fn insert_nat(&mut self, orig: &Tuple, nat: ReplyNat) -> Result<u32, InsertError> {
        let &i = self.free.last().ok_or(InsertError::Full)?;
        let (h0, h1) = (self.hash(orig), self.hash(&nat.reply_of(orig)));
        if !self.insert_entry(h0, i << 1) {
            return Err(InsertError::Buckets);
        }
        if !self.insert_entry(h1, (i << 1) | 1) {
            self.remove_entry(h0, i << 1);
            return Err(InsertError::Buckets);
        }
        self.free.pop();
        let s = &mut self.sessions[i as usize];
        *s = Session {
            orig: *orig,
            nat,
            flags: if nat.side == NatSide::None {
                flags::IN_USE
            } else {
                flags::IN_USE | flags::NAT
            },
            wheel_slot: UNARMED,
            ..Session::default()
        };
        if let Some(z) = self.zones.get_mut(usize::from(orig.zone)) {
            z.count += 1;
        }
        Ok(i)
    }

    /// Puts session `i` on the embryonic lists (table and zone), newest.
    pub fn mark_embryonic(&mut self, i: u32) {
        let s = &mut self.sessions[i as usize];
        if s.flags & flags::EMBRYONIC != 0 {
            return;
        }
        s.flags |= flags::EMBRYONIC;
        let zone = usize::from(s.orig.zone);
        self.embryonic.push_back(&mut self.sessions, EMBRYONIC, i);
        if let Some(z) = self.zones.get_mut(zone) {
            z.embryonic.push_back(&mut self.sessions, ZONE, i);
        }
    }

    /// Takes session `i` off the embryonic lists (if on them).
    pub fn unmark_embryonic(&mut self, i: u32) {
        let s = &mut self.sessions[i as usize];
        if s.flags & flags::EMBRYONIC == 0 {
            return;
        }
        s.flags &= !flags::EMBRYONIC;
        let zone = usize::from(s.orig.zone);
        self.embryonic.remove(&mut self.sessions, EMBRYONIC, i);
        if let Some(z) = self.zones.get_mut(zone) {
            z.embryonic.remove(&mut self.sessions, ZONE, i);
        }
    }

    /// Removes session `i` (its timer must be stopped already).
    pub fn remove(&mut self, i: u32) {
        if !self.sessions[i as usize].in_use() {
            return;
        }
        self.unmark_embryonic(i);
        let orig = self.sessions[i as usize].orig;
        let reply = self.sessions[i as usize].key(1);
        let (h0, h1) = (self.hash(&orig), self.hash(&reply));
        self.remove_entry(h0, i << 1);
        self.remove_entry(h1, (i << 1) | 1);
        if let Some(z) = self.zones.get_mut(usize::from(orig.zone)) {
            z.count -= 1;
        }
        self.sessions[i as usize].flags = 0;
        self.free.push(i);
    }

    /// Index entries in use, counted bucket by bucket (for tests: twice
    /// the sessions when nothing leaked).
    pub fn index_entries(&self) -> usize {
        self.buckets
            .iter()
            .map(|b| b.sig.iter().filter(|&&s| s != 0).count())
            .sum()
    }

    /// Entries kept in their second bucket (for tests and tuning).
    pub fn overflowed(&self) -> usize {
        self.buckets.iter().map(|b| b.overflow as usize).sum()
    }
}

/// Bit `w` set where way `w` of `b` has signature `sig`.
#[inline(always)]
fn matches(b: &Bucket, sig: u16) -> u32 {
    let mut m = 0;
    for (w, &s) in b.sig.iter().enumerate() {
        m |= u32::from(s == sig) << w;
    }
    m
}

// Session numbers and the direction bit fit an index entry.
const _: () = assert!(MAX_CAPACITY as u64 * 2 <= u32::MAX as u64 && NIL == u32::MAX);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::tuple::proto;

    fn key(n: u32) -> Tuple {
        Tuple {
            src: u128::from(0x0a00_0000 + n),
            dst: 0x0a09_0001,
            sport: 1024 + (n % 50_000),
            dport: 80,
            proto: proto::TCP,
            v6: false,
            zone: (n % 3) as u16,
        }
    }

    #[test]
    fn both_directions_find_the_session_until_it_is_removed() {
        let mut t = ConnTable::new(1000, 3, 1000, 7);
        let ids: Vec<u32> = (0..1000).map(|n| t.insert(&key(n)).unwrap()).collect();
        assert_eq!(t.insert(&key(5000)), Err(InsertError::Full));
        for (n, &i) in ids.iter().enumerate() {
            let k = key(n as u32);
            assert_eq!(t.find(&k, t.hash(&k)), Some((i, 0)));
            let r = k.reversed();
            assert_eq!(t.find(&r, t.hash(&r)), Some((i, 1)));
        }
        assert_eq!(t.index_entries(), 2000);
        assert_eq!(t.zones.iter().map(|z| z.count).sum::<u32>(), 1000);
        for &i in &ids[..500] {
            t.remove(i);
        }
        let k = key(3);
        assert_eq!(t.find(&k, t.hash(&k)), None);
        assert_eq!(t.len(), 500);
        assert_eq!(t.index_entries(), 1000);
        for &i in &ids[500..] {
            t.remove(i);
        }
        assert!(t.is_empty());
        assert_eq!(t.index_entries(), 0);
        assert_eq!(t.overflowed(), 0);
    }

    #[test]
    fn a_full_table_keeps_nearly_every_key_in_its_first_bucket() {
        let n = 100_000;
        let mut t = ConnTable::new(n, 1, n, 99);
        for k in 0..n {
            t.insert(&key(k)).unwrap();
        }
        // 2 entries a session; a few percent overflow at capacity.
        assert!(t.overflowed() < (2 * n as usize) / 10, "{}", t.overflowed());
        for k in 0..n {
            let key = key(k);
            assert!(t.find(&key, t.hash(&key)).is_some(), "{k} lost");
        }
    }
}
