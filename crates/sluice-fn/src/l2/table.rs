//! A bridge's MAC table (VPP's l2fib), shared by every worker.
//!
//! Lookups are plain loads; learning claims slots with compare-and-swap.
//!
//! The table is an array of 64-byte buckets of five slots. A MAC may live in
//! any of three buckets (three multiplicative hashes). Learning puts it in
//! the first while that holds fewer than four entries, else in the less
//! loaded of the first two, and in the third only when both of those are
//! full. Nearly every entry is in its first bucket: 99 % with the table at
//! 60 % of its capacity (99.8 % of the bridge benchmark's MACs), 96 % at
//! capacity, so that most lookups read one line, the one prefetched, and
//! do not mispredict a branch to the next. The third choice is for the
//! overflow the first two cannot take: with five slots for two entries of
//! capacity, one MAC in 300,000 goes there at capacity, and none fails to
//! be learned short of it (two choices alone failed a few in 100,000 at
//! capacity). Where three entries, not four, filled the first bucket, 5 %
//! of the entries were in their second at 60 % of capacity and each such
//! lookup missed the cache and mispredicted: 4 cycles a packet in the
//! bridge benchmark. (Balancing the two buckets evenly put 30 % of
//! entries in their second and cost 6 cycles a lookup.)
//!
//! A slot's key word holds everything a lookup needs: the MAC in the top 48
//! bits, a static flag and the bridge port number + 1 in the low 16 (0 =
//! empty). Since a lookup reads the entry in one load, it can never see a
//! MAC with another MAC's port, whatever runs concurrently. The slot's time
//! is when the MAC was last seen, in ticks; a packet writes it only when the
//! tick has changed, so a busy MAC costs one store per tick, not one per
//! packet.
//!
//! A bucket's first word holds one byte of each slot's MAC hash (0 for an
//! empty slot): a lookup compares the five bytes at once and reads the key
//! of the one that matches, instead of comparing five keys. (Comparing all
//! keys without a branch cost twice the instructions; stopping at the
//! first match mispredicted where the MAC sits in its bucket.) A key is
//! claimed before its byte is written and its byte cleared after it is
//! emptied, so a lookup racing with either misses a MAC that is coming or
//! going, and never returns a wrong one: the key decides.
//!
//! Two workers learning the same new MAC at once may claim two slots. Each
//! one, after its claim, looks again in all three buckets: of two copies
//! the one at the lower position stays and the other is removed, by
//! whichever worker sees it first. Claims and these checks are sequentially consistent, so the second
//! claimer always sees the first copy.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};

use sluice_buf::table::prefetch;

/// Slots per bucket: the tag word, five keys (8 bytes) and five times
/// (2 bytes) fit a 64-byte line.
const SLOTS: usize = 5;
/// Entries a first bucket takes before the second choice is considered.
const FIRST_CHOICE: usize = 4;
/// Tag bytes in use in the tag word.
const TAG_MASK: u64 = (1 << (8 * SLOTS)) - 1;
const ONES: u64 = 0x0101_0101_0101_0101;
/// Bits of a key below the MAC.
const MAC_SHIFT: u32 = 16;
const STATIC: u64 = 1 << 15;
const PORT_MASK: u64 = STATIC - 1;
/// The largest bridge port number a table can hold.
pub const MAX_PORT: u16 = (PORT_MASK - 1) as u16;
/// The largest capacity a table accepts.
pub const MAX_CAPACITY: u32 = 1 << 26;

#[repr(C, align(64))]
#[derive(Default)]
struct Bucket {
    /// Byte `s`: the tag of slot `s`'s MAC, 0 when the slot is empty.
    tags: AtomicU64,
    key: [AtomicU64; SLOTS],
    seen: [AtomicU16; SLOTS],
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 64);

/// A MAC address as the low 48 bits of a `u64`, first octet highest.
#[inline(always)]
pub fn mac_u64(b: &[u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// One entry, as read from the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The MAC address (low 48 bits).
    pub mac: u64,
    /// The bridge port it is on (index in the bridge's port list).
    pub port: u16,
    /// Configured, never learned over nor aged.
    pub is_static: bool,
    /// Tick it was last seen at (meaningless for static entries).
    pub seen: u16,
}

/// Where a MAC was found: the raw key and its position.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    key: u64,
    bucket: usize,
    slot: usize,
}

impl Hit {
    /// The port the MAC is on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        ((self.key & PORT_MASK) - 1) as u16
    }

    /// Whether the entry is static.
    #[inline(always)]
    pub fn is_static(&self) -> bool {
        self.key & STATIC != 0
    }
}

/// What learning a source MAC did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Known on this port already (its time refreshed if the tick changed).
    Known,
    /// New entry.
    Added,
    /// Was on another port; now on this one.
    Moved,
    /// A static entry on another port: left alone.
    StaticElsewhere,
    /// No room: the table holds its capacity, or both buckets are full.
    Full,
}

/// Errors of [`MacTable::add_static`].
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum StaticError {
    /// No room left for the entry.
    #[error("MAC table full")]
    Full,
    /// The MAC is in the table already.
    #[error("MAC already in the table")]
    Duplicate,
}

/// A bridge's MAC table.
pub struct MacTable {
    buckets: Box<[Bucket]>,
    capacity: u32,
    /// Entries in the table; changed only when entries come and go.
    len: AtomicU32,
}

impl std::fmt::Debug for MacTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacTable")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K3: u64 = 0xff51_afd7_ed55_8ccd;

/// Where a MAC may be: its first bucket and its tag (the second and third
/// buckets are worked out only when needed).
#[derive(Debug, Clone, Copy)]
struct Place {
    b1: usize,
    tag: u8,
}

impl MacTable {
    /// A table for up to `capacity` entries (1 to [`MAX_CAPACITY`]; the
    /// configuration checks the range, this clamps).
    pub fn new(capacity: u32) -> MacTable {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let slots = (capacity as usize * 5).div_ceil(2);
        let buckets = slots.div_ceil(SLOTS).max(2);
        MacTable {
            buckets: (0..buckets).map(|_| Bucket::default()).collect(),
            capacity,
            len: AtomicU32::new(0),
        }
    }

    /// Entries the table accepts.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Entries in the table now.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed) as usize
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Buckets, the unit of the aging scan.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The top bits of a product, scaled to the bucket count by a
    /// multiply (no power-of-two rounding of the table, no division).
    #[inline(always)]
    fn scale(&self, h: u64) -> usize {
        ((u128::from(h) * self.buckets.len() as u128) >> 64) as usize
    }

    #[inline(always)]
    fn place(&self, mac: u64) -> Place {
        let h1 = mac.wrapping_mul(K1);
        // The tag from bits the bucket index barely depends on.
        let tag = (h1 >> 24) as u8;
        Place {
            b1: self.scale(h1),
            tag: tag | u8::from(tag == 0),
        }
    }

    #[inline(always)]
    fn second(&self, mac: u64) -> usize {
        self.scale(mac.wrapping_mul(K2))
    }

    /// The overflow bucket, for MACs whose first two are full.
    fn third(&self, mac: u64) -> usize {
        self.scale(mac.wrapping_mul(K3))
    }

    /// All three buckets of `mac`.
    fn choices(&self, mac: u64) -> [usize; 3] {
        [self.place(mac).b1, self.second(mac), self.third(mac)]
    }

    /// The slot of bucket `b` holding `mac`.
    #[inline(always)]
    fn find_in(&self, b: usize, mac: u64, tag: u8) -> Option<Hit> {
        let bucket = self.buckets.get(b)?;
        let mut candidates = tag_matches(bucket, tag);
        // A key of `mac` lies in want ..= want + 0xfffe (the low 16 bits
        // are the flag and port + 1, never 0).
        let want = (mac << MAC_SHIFT) | 1;
        while candidates != 0 {
            let slot = (candidates.trailing_zeros() / 8) as usize;
            let key = bucket.key.get(slot)?.load(Ordering::Relaxed);
            if key.wrapping_sub(want) < 0xffff {
                return Some(Hit {
                    key,
                    bucket: b,
                    slot,
                });
            }
            candidates &= candidates - 1;
        }
        None
    }

    #[inline(always)]
    fn find(&self, mac: u64, p: Place) -> Option<Hit> {
        match self.find_in(p.b1, mac, p.tag) {
            Some(h) => Some(h),
            None => self.find_beyond_first(mac, p.tag),
        }
    }

    /// The rare rest of [`find`](Self::find): the second and third buckets.
    #[inline(always)]
    fn find_beyond_first(&self, mac: u64, tag: u8) -> Option<Hit> {
        match self.find_in(self.second(mac), mac, tag) {
            Some(h) => Some(h),
            None => self.find_in(self.third(mac), mac, tag),
        }
    }

    /// Looks `mac` up. A few loads, nothing written.
    #[inline(always)]
    pub fn lookup(&self, mac: u64) -> Option<Hit> {
        self.find(mac, self.place(mac))
    }

    /// Starts loading the bucket a [`lookup`](Self::lookup) or
    /// [`learn`](Self::learn) of `mac` will read first, for a caller that
    /// knows the MAC some packets before it looks it up: with the table
    /// bigger than the L1 cache, that load is most of a lookup's cost. (The
    /// other buckets are left alone: nearly every entry is in its first.)
    #[inline(always)]
    pub fn prefetch(&self, mac: u64) {
        if let Some(b) = self.buckets.get(self.place(mac).b1) {
            prefetch(b);
        }
    }

    /// Records that `mac` was seen on `port` at `tick`: refreshes, moves or
    /// adds its entry. The common case (known on this port, already seen
    /// this tick) writes nothing.
    #[inline(always)]
    pub fn learn(&self, mac: u64, port: u16, tick: u16) -> Learned {
        let p = self.place(mac);
        // The common case, a MAC seen before on this port, in one compare:
        // the key of the first slot whose tag matches in the first bucket
        // is exactly this MAC's dynamic entry on this port. (A port past
        // MAX_PORT makes a key no slot holds.)
        if let Some(b) = self.buckets.get(p.b1) {
            let slot = (tag_matches(b, p.tag).trailing_zeros() / 8) as usize;
            if let (Some(k), Some(seen)) = (b.key.get(slot), b.seen.get(slot))
                && k.load(Ordering::Relaxed) == key_of(mac, port, false)
            {
                if seen.load(Ordering::Relaxed) != tick {
                    seen.store(tick, Ordering::Relaxed);
                }
                return Learned::Known;
            }
        }
        self.learn_general(mac, p, port, tick)
    }

    /// [`learn`](Self::learn) when the MAC is not where it usually is.
    #[inline(always)]
    fn learn_general(&self, mac: u64, p: Place, port: u16, tick: u16) -> Learned {
        match self.find(mac, p) {
            Some(hit) if hit.port() == port => {
                if !hit.is_static() {
                    self.refresh(&hit, tick);
                }
                Learned::Known
            }
            Some(hit) if hit.is_static() => Learned::StaticElsewhere,
            _ => self.learn_slow(mac, port, tick),
        }
    }

    #[inline(always)]
    fn refresh(&self, hit: &Hit, tick: u16) {
        if let Some(seen) = self
            .buckets
            .get(hit.bucket)
            .and_then(|b| b.seen.get(hit.slot))
            && seen.load(Ordering::Relaxed) != tick
        {
            seen.store(tick, Ordering::Relaxed);
        }
    }

    /// A new MAC or a MAC move.
    #[cold]
    fn learn_slow(&self, mac: u64, port: u16, tick: u16) -> Learned {
        if port > MAX_PORT {
            return Learned::Full;
        }
        let new = key_of(mac, port, false);
        // Each turn that fails lost a race to another writer of this MAC
        // (a move, an add, the aging scan); a few turns settle it.
        for _ in 0..4 {
            match self.lookup(mac) {
                Some(hit) if hit.port() == port => return Learned::Known,
                Some(hit) if hit.is_static() => return Learned::StaticElsewhere,
                Some(hit) => {
                    let b = &self.buckets[hit.bucket];
                    b.seen[hit.slot].store(tick, Ordering::Relaxed);
                    if b.key[hit.slot]
                        .compare_exchange(hit.key, new, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Learned::Moved;
                    }
                }
                None => match self.claim(new, tick) {
                    Claim::Added => return Learned::Added,
                    Claim::Full => return Learned::Full,
                    Claim::Present => {}
                },
            }
        }
        // Still contended: whoever wins has it; the next packet learns
        // again if that was not this port.
        Learned::Known
    }

    /// Adds a static entry (from configuration, before workers run).
    pub fn add_static(&self, mac: u64, port: u16) -> Result<(), StaticError> {
        if port > MAX_PORT {
            return Err(StaticError::Full);
        }
        match self.claim(key_of(mac, port, true), 0) {
            Claim::Added => Ok(()),
            Claim::Full => Err(StaticError::Full),
            Claim::Present => Err(StaticError::Duplicate),
        }
    }

    /// Whether a key of `mac` is in bucket `b`, looking at every key (not
    /// trusting the tags, which trail the keys).
    fn holds(&self, b: usize, mac: u64) -> bool {
        self.buckets[b]
            .key
            .iter()
            .any(|k| is_key_of(k.load(Ordering::SeqCst), mac))
    }

    /// Puts `key` in a free slot unless its MAC is present already.
    fn claim(&self, key: u64, tick: u16) -> Claim {
        let mac = key >> MAC_SHIFT;
        if self.len.fetch_add(1, Ordering::Relaxed) >= self.capacity {
            self.len.fetch_sub(1, Ordering::Relaxed);
            return Claim::Full;
        }
        let tag = self.place(mac).tag;
        let choices = self.choices(mac);
        loop {
            if choices.iter().any(|&b| self.holds(b, mac)) {
                self.len.fetch_sub(1, Ordering::Relaxed);
                return Claim::Present;
            }
            let Some((b, s)) = self.free_slot(choices) else {
                self.len.fetch_sub(1, Ordering::Relaxed);
                return Claim::Full;
            };
            let bucket = &self.buckets[b];
            // The time first, so that no reader (the aging scan) meets the
            // new key with the previous occupant's time. Racing claimers
            // all write "now".
            bucket.seen[s].store(tick, Ordering::Relaxed);
            if bucket.key[s]
                .compare_exchange(0, key, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                self.set_tag(b, s, tag);
                self.remove_copies(mac, choices, (b, s));
                return Claim::Added;
            }
            // Another worker took the slot: look again from the start, the
            // MAC may be the one it added.
        }
    }

    fn set_tag(&self, b: usize, s: usize, tag: u8) {
        let shift = 8 * s as u32;
        let _ = self.buckets[b]
            .tags
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some((t & !(0xff << shift)) | (u64::from(tag) << shift))
            });
    }

    /// Clears the tag of slot `s` of bucket `b`, emptied by the caller,
    /// unless the slot has been claimed again meanwhile (its claimer writes
    /// its own tag after its claim, so either this clear fails and sees
    /// the new key, or the new tag comes after it).
    fn clear_tag(&self, b: usize, s: usize) {
        let bucket = &self.buckets[b];
        let shift = 8 * s as u32;
        let _ = bucket
            .tags
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (bucket.key[s].load(Ordering::SeqCst) == 0).then_some(t & !(0xff << shift))
            });
    }

    /// A free slot: in the first bucket while it holds fewer than
    /// [`FIRST_CHOICE`] entries, else in the less loaded of the first two
    /// (the first on a tie), else in the third.
    fn free_slot(&self, [b1, b2, b3]: [usize; 3]) -> Option<(usize, usize)> {
        let scan = |b: usize| {
            let keys = &self.buckets[b].key;
            let mut used = 0;
            let mut free = None;
            for (s, k) in keys.iter().enumerate() {
                if k.load(Ordering::Relaxed) == 0 {
                    free = free.or(Some((b, s)));
                } else {
                    used += 1;
                }
            }
            (used, free)
        };
        let (used1, free1) = scan(b1);
        if used1 < FIRST_CHOICE {
            return free1;
        }
        let (used2, free2) = scan(b2);
        let two = if used1 <= used2 {
            free1.or(free2)
        } else {
            free2.or(free1)
        };
        two.or_else(|| scan(b3).1)
    }

    /// After claiming `mine`, removes any second copy of `mac` another
    /// worker claimed at the same time: the copy at the lower position
    /// stays.
    fn remove_copies(&self, mac: u64, choices: [usize; 3], mine: (usize, usize)) {
        for (i, &b) in choices.iter().enumerate() {
            // A bucket that two hashes chose is looked at once.
            if choices[..i].contains(&b) {
                continue;
            }
            for s in 0..SLOTS {
                if (b, s) == mine || !is_key_of(self.buckets[b].key[s].load(Ordering::SeqCst), mac)
                {
                    continue;
                }
                let loser = if (b, s) < mine { mine } else { (b, s) };
                self.remove_mac_at(loser, mac);
                if loser == mine {
                    return;
                }
            }
        }
    }

    /// Empties slot `at` if it holds a dynamic entry for `mac`, whatever
    /// its port.
    fn remove_mac_at(&self, at: (usize, usize), mac: u64) {
        let k = &self.buckets[at.0].key[at.1];
        let mut cur = k.load(Ordering::SeqCst);
        while is_key_of(cur, mac) && cur & STATIC == 0 {
            match k.compare_exchange(cur, 0, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    self.clear_tag(at.0, at.1);
                    return;
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Removes the dynamic entries of buckets `from..from + n` (wrapping)
    /// not seen for more than `max_age` ticks before `tick`. Returns how
    /// many it removed.
    pub fn age(&self, from: usize, n: usize, tick: u16, max_age: u16) -> usize {
        let mut removed = 0;
        for i in 0..n.min(self.buckets.len()) {
            let bi = from.wrapping_add(i) % self.buckets.len();
            let b = &self.buckets[bi];
            for s in 0..SLOTS {
                let key = b.key[s].load(Ordering::Acquire);
                if key & PORT_MASK == 0 || key & STATIC != 0 {
                    continue;
                }
                // Signed: a time a little ahead of ours (another core's
                // clock, a claimer's store) is young, not ancient.
                let age = tick.wrapping_sub(b.seen[s].load(Ordering::Relaxed)) as i16;
                if age > max_age as i16
                    && b.key[s]
                        .compare_exchange(key, 0, Ordering::SeqCst, Ordering::Relaxed)
                        .is_ok()
                {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    self.clear_tag(bi, s);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Every entry, in table order (for `show l2fib`).
    pub fn entries(&self) -> Vec<Entry> {
        let mut v = Vec::with_capacity(self.len());
        for b in self.buckets.iter() {
            for s in 0..SLOTS {
                let key = b.key[s].load(Ordering::Acquire);
                if key & PORT_MASK == 0 {
                    continue;
                }
                v.push(Entry {
                    mac: key >> MAC_SHIFT,
                    port: ((key & PORT_MASK) - 1) as u16,
                    is_static: key & STATIC != 0,
                    seen: b.seen[s].load(Ordering::Relaxed),
                });
            }
        }
        v
    }
}

enum Claim {
    Added,
    Full,
    Present,
}

/// The high bit of each byte of `b`'s tag word that equals `tag` (and maybe
/// of a byte above one, which a key check rules out), for the slots in use.
#[inline(always)]
fn tag_matches(b: &Bucket, tag: u8) -> u64 {
    let x = b.tags.load(Ordering::Relaxed) ^ (u64::from(tag) * ONES);
    x.wrapping_sub(ONES) & !x & (ONES << 7) & TAG_MASK
}

#[inline(always)]
fn key_of(mac: u64, port: u16, is_static: bool) -> u64 {
    (mac << MAC_SHIFT) | if is_static { STATIC } else { 0 } | (u64::from(port) + 1)
}

#[inline(always)]
fn is_key_of(key: u64, mac: u64) -> bool {
    key >> MAC_SHIFT == mac && key & PORT_MASK != 0
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
