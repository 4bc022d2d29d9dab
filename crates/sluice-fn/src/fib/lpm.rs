//! Longest-prefix match over a multibit trie that one writer updates in
//! place while any number of readers look up, without locks or pauses.
//!
//! The trie has a direct first level of `root_bits` (24 makes DIR-24-8 for
//! IPv4: one read for every prefix up to /24) and then levels of `stride`
//! bits (4 or 8), each a group of `1 << stride` entries. With 4-bit levels
//! a group is one 64-byte cache line: a deep prefix takes twice the levels
//! but a sixteenth of the memory, and since a vector's lookups overlap
//! their misses (`lookup_batch`), a table that stays in cache wins — at 1M
//! IPv4 and 500k IPv6 routes, 4-bit levels were both faster and 2–6×
//! smaller. An entry is one `u32`:
//!
//! ```text
//! 1 | 0 | group index (30 bits)             → descend into that group
//! 1 | 1 | 0 | group index (29 bits)         → a skip node (below)
//! 1 | 1 | 1 | group index (29 bits)         → a route node (below)
//! 0 | depth (8 bits) | value (23 bits)      → answer, from a /depth route
//! 0                                         → no route
//! ```
//!
//! Skip nodes (path compression, `LpmConfig::skip`): IPv6 routes are
//! mostly /32–/64 and, below a 24-bit root, most are alone on their
//! branch, so a plain trie walks six to ten one-entry groups to reach
//! them. Instead, a new branch deeper than one level gets one skip node:
//! two adjacent groups, a header (the key bits expected down to where the
//! skip ends, that end, and a fallback answer for keys that differ) and
//! the entries of the level holding the prefix's last bit. A walk reads
//! both lines at once (one step), compares the key and continues below
//! or answers the fallback. The header's bits and end never change once
//! published; the fallback is painted like an entry. A route that leaves
//! a skip node's path (or ends inside it) splits it: plain groups down to
//! where the route parts, a shorter skip node below (header and a copy
//! of the entries), published with one store of the parent entry; the
//! old node is left to readers still on it. No route ever ends inside a
//! skip or off its path, which is what lets one fallback stand for all
//! the keys that miss it.
//!
//! Most such branches hold one route, so a new one starts as a route
//! node: one line, the header with the route's bits and length, the
//! fallback and the route's answer (painted like an entry). A second
//! route through it turns it into a skip node first. With a 24-bit root
//! and random keys, a lookup is then the root entry and at most one more
//! line.
//!
//! A route paints every entry its prefix covers (controlled prefix
//! expansion) unless the entry holds a longer prefix, which is why entries
//! remember their depth: adding a /16 under an existing /24 must not
//! overwrite the /24's entries, and removing the /24 repaints exactly the
//! entries of depth 24 with whatever covers it next (found in the route
//! set kept beside the trie).
//!
//! Concurrency is RCU-like. Every entry is an atomic word, so a reader sees
//! either the old or the new answer for its address, never a torn one. A
//! new group is filled before the entry pointing to it is published
//! (release store; readers load with acquire, free on x86). Groups are
//! never freed while the trie lives, so a reader that raced a removal
//! still walks valid memory: a removal repaints the entries of a group
//! rather than unlinking it. Churn on the same prefixes reuses the same
//! groups; a table that shrank a lot is compacted by building a new trie
//! and swapping it in.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use sluice_buf::table::{AtomicTable, TableError, prefetch};

const GROUP: u32 = 1 << 31;
/// With `GROUP`: the entry points at a skip node, not a plain group.
const SKIP: u32 = 1 << 30;
/// With `GROUP | SKIP`: a route node, a skip node that ends in one route
/// instead of a level of entries.
const ONE: u32 = 1 << 29;
/// Group index bits of a pointer entry.
const INDEX: u32 = ONE - 1;
const DEPTH_SHIFT: u32 = 23;
/// Largest value a route can carry (values are 1..=MAX_VALUE; 0 is "no route").
pub const MAX_VALUE: u32 = (1 << DEPTH_SHIFT) - 1;
/// How far ahead of reading a key's root entry the batch lookup asks for it.
const AHEAD: usize = 32;
/// Most keys [`Lpm::lookup_batch`] takes at once: a vector.
pub const BATCH: usize = 256;

/// Words of a skip node's header group: the expected key bits (top
/// aligned, most significant word first), where the skip ends, and the
/// answer for keys that differ from the expected bits.
const H_END: usize = 4;
const H_FALLBACK: usize = 5;
/// A route node's answer for the keys that agree with it.
const H_ROUTE: usize = 6;

/// An address type the trie can key on.
pub trait Key: Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static {
    /// Width in bits.
    const BITS: u32;
    /// The all-zero address.
    const ZERO: Self;
    /// `n` bits (≤ 24) starting `from` bits below the most significant.
    fn slice(self, from: u32, n: u32) -> usize;
    /// The top `len` bits, the rest zero.
    fn masked(self, len: u8) -> Self;
    /// The key in the top bits of a `u128` (what skip nodes compare).
    fn wide(self) -> u128;
}

impl Key for u32 {
    const BITS: u32 = 32;
    const ZERO: u32 = 0;
    #[inline(always)]
    fn slice(self, from: u32, n: u32) -> usize {
        let shifted = self.checked_shl(from).unwrap_or(0);
        (shifted.checked_shr(32 - n).unwrap_or(0)) as usize
    }
    #[inline(always)]
    fn masked(self, len: u8) -> u32 {
        self & u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
    }
    #[inline(always)]
    fn wide(self) -> u128 {
        u128::from(self) << 96
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    const ZERO: u128 = 0;
    #[inline(always)]
    fn slice(self, from: u32, n: u32) -> usize {
        let shifted = self.checked_shl(from).unwrap_or(0);
        (shifted.checked_shr(128 - n).unwrap_or(0)) as usize
    }
    #[inline(always)]
    fn masked(self, len: u8) -> u128 {
        self & u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }
    #[inline(always)]
    fn wide(self) -> u128 {
        self
    }
}

/// Whether the top `end` bits of `key` (top aligned) are `expected`'s.
#[inline(always)]
fn agrees(key: u128, expected: u128, end: u32) -> bool {
    (key ^ expected)
        .checked_shr(128 - end.min(128))
        .unwrap_or(0)
        == 0
}

/// Shape and capacity of a trie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LpmConfig {
    /// Bits resolved by the first, direct level (8 to 24; the rest of the
    /// key must divide into 8-bit levels).
    pub root_bits: u32,
    /// Most groups the trie may use (each `4 << stride` bytes). Address space
    /// for all of them is reserved up front; memory is committed as used.
    pub max_groups: u32,
    /// Ask for transparent huge pages: random lookups in a big table then
    /// miss the TLB far less often.
    pub huge_pages: bool,
    /// Bits each level below the root resolves: 8 (256-entry, 1 KiB
    /// groups) or 4 (16 entries, one 64-byte cache line each: twice the
    /// levels, a sixteenth of the memory for sparse deep prefixes).
    pub stride: u32,
    /// Path compression: a route that starts a new branch more than one
    /// level deep gets one skip node (two groups) for the levels no other
    /// route shares, instead of a chain of one-entry groups. IPv6 routes
    /// are /32–/64 under a 24-bit root: six to ten levels become one.
    pub skip: bool,
}

/// Why a route was refused. Nothing is changed when one is returned.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LpmError {
    /// The shape is not one the trie supports.
    #[error("root level of {0} bits is not 8..=24 with 8-bit levels below")]
    BadShape(u32),
    /// Prefix longer than the key.
    #[error("prefix length {0} is longer than the address")]
    BadLength(u8),
    /// Bits set past the prefix length.
    #[error("prefix has bits set past its length {0}")]
    HostBits(u8),
    /// Value 0 or above [`MAX_VALUE`].
    #[error("route value {0} out of range 1..={MAX_VALUE}")]
    BadValue(u32),
    /// No group left for a route this long.
    #[error("trie is full: all {0} groups in use")]
    Full(u32),
    /// The memory could not be mapped.
    #[error(transparent)]
    Memory(#[from] TableError),
}

/// The route set beside the trie: what the trie was painted from, needed to
/// repaint on removal and to list routes. Only the writer touches it.
#[derive(Debug)]
struct Rib<K: Key> {
    routes: HashMap<(K, u8), u32>,
    per_len: Vec<u32>,
    groups_used: u32,
}

/// What a paint does to each covered entry.
#[derive(Debug, Clone, Copy)]
enum Paint {
    /// Write `leaf` over entries no deeper than `len`.
    Add { len: u8, leaf: u32 },
    /// Write `with` over entries of depth exactly `len`.
    Remove { len: u8, with: u32 },
}

/// A longest-prefix-match trie, keyed by `K` (`u32` for IPv4, `u128` for
/// IPv6), mapping prefixes to values in `1..=MAX_VALUE`.
#[derive(Debug)]
pub struct Lpm<K: Key> {
    root_bits: u32,
    /// Bits per level below the root; groups have `1 << stride` entries.
    stride: u32,
    /// Whether new deep branches get skip nodes.
    skip: bool,
    root: AtomicTable<AtomicU32>,
    groups: AtomicTable<AtomicU32>,
    max_groups: u32,
    /// Groups in use, for readers choosing how to walk (the writer's
    /// count is behind the lock).
    groups_used: AtomicU32,
    rib: Mutex<Rib<K>>,
}

#[inline(always)]
fn leaf(len: u8, value: u32) -> u32 {
    (u32::from(len) << DEPTH_SHIFT) | value
}

#[inline(always)]
fn depth(e: u32) -> u8 {
    ((e >> DEPTH_SHIFT) & 0xff) as u8
}

impl<K: Key> Lpm<K> {
    /// An empty trie.
    pub fn new(config: LpmConfig) -> Result<Lpm<K>, LpmError> {
        let r = config.root_bits;
        let st = config.stride;
        if !matches!(st, 4 | 8)
            || !(8..=24).contains(&r)
            || r >= K::BITS
            || !(K::BITS - r).is_multiple_of(st)
        {
            return Err(LpmError::BadShape(r));
        }
        // Pointer entries hold a group index; batch walks keep entry
        // indexes in a u32.
        let max_groups = config.max_groups.min(INDEX).min(u32::MAX >> st);
        Ok(Lpm {
            root_bits: r,
            root: AtomicTable::new(1 << r, config.huge_pages)?,
            groups: AtomicTable::new((max_groups as usize) << st, config.huge_pages)?,
            stride: st,
            skip: config.skip,
            max_groups,
            groups_used: AtomicU32::new(0),
            rib: Mutex::new(Rib {
                routes: HashMap::new(),
                per_len: vec![0; K::BITS as usize + 1],
                groups_used: 0,
            }),
        })
    }

    fn rib(&self) -> std::sync::MutexGuard<'_, Rib<K>> {
        // A writer that panicked left the trie consistent entry by entry;
        // the route set is still the best record there is.
        self.rib.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(prefix: K, len: u8) -> Result<(), LpmError> {
        if u32::from(len) > K::BITS {
            return Err(LpmError::BadLength(len));
        }
        if prefix.masked(len) != prefix {
            return Err(LpmError::HostBits(len));
        }
        Ok(())
    }

    /// Adds `prefix/len → value`, or changes the value of that prefix.
    /// Returns the value it had. Readers see each covered address switch
    /// from its old answer to the new one.
    pub fn insert(&self, prefix: K, len: u8, value: u32) -> Result<Option<u32>, LpmError> {
        Self::check(prefix, len)?;
        if value == 0 || value > MAX_VALUE {
            return Err(LpmError::BadValue(value));
        }
        let mut rib = self.rib();
        let old = rib.routes.get(&(prefix, len)).copied();
        if old == Some(value) {
            return Ok(old);
        }
        // Check before touching anything, so that a refusal changes nothing.
        let needed = self.groups_needed(prefix, len);
        if rib.groups_used + needed > self.max_groups {
            return Err(LpmError::Full(self.max_groups));
        }
        let before = rib.groups_used;
        self.paint(
            &mut rib,
            prefix,
            len,
            Paint::Add {
                len,
                leaf: leaf(len, value),
            },
        );
        debug_assert_eq!(rib.groups_used - before, needed, "{prefix:?}/{len}");
        rib.routes.insert((prefix, len), value);
        if old.is_none() {
            rib.per_len[len as usize] += 1;
        }
        Ok(old)
    }

    /// Removes `prefix/len`; its addresses fall back to the next shorter
    /// covering route. Returns the value it had, or `None` if absent.
    pub fn remove(&self, prefix: K, len: u8) -> Option<u32> {
        Self::check(prefix, len).ok()?;
        let mut rib = self.rib();
        let old = rib.routes.remove(&(prefix, len))?;
        rib.per_len[len as usize] -= 1;
        let with = (0..len)
            .rev()
            .filter(|&l| rib.per_len[l as usize] > 0)
            .find_map(|l| rib.routes.get(&(prefix.masked(l), l)).map(|&v| leaf(l, v)))
            .unwrap_or(0);
        self.paint(&mut rib, prefix, len, Paint::Remove { len, with });
        Some(old)
    }

    /// The value of exactly `prefix/len`, if that route exists.
    pub fn get(&self, prefix: K, len: u8) -> Option<u32> {
        self.rib().routes.get(&(prefix, len)).copied()
    }

    /// Every route, sorted by prefix then length.
    pub fn routes(&self) -> Vec<(K, u8, u32)> {
        let mut v: Vec<_> = self
            .rib()
            .routes
            .iter()
            .map(|(&(p, l), &v)| (p, l, v))
            .collect();
        v.sort_unstable();
        v
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.rib().routes.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Groups in use and the most there may be.
    pub fn groups(&self) -> (u32, u32) {
        (self.rib().groups_used, self.max_groups)
    }

    /// Bytes of trie the lookups can touch: the root and the groups in use
    /// (the route set kept for updates is not counted).
    pub fn memory(&self) -> usize {
        (self.root.len() + ((self.rib().groups_used as usize) << self.stride)) * 4
    }

    /// How many new groups painting `prefix/len` would take, found by
    /// walking the path the way `paint` will change it.
    fn groups_needed(&self, prefix: K, len: u8) -> u32 {
        let len = u32::from(len);
        let st = self.stride;
        let mut e = match self.root.get(prefix.slice(0, self.root_bits)) {
            Some(r) => r.load(Relaxed),
            None => 0,
        };
        let mut end = self.root_bits;
        while len > end {
            if e & GROUP == 0 {
                return self.fresh_groups(end, len);
            }
            let mut g = e & INDEX;
            if e & SKIP != 0 {
                let (mut send, mut expected, _) = self.header(g);
                let mut convert = 0;
                if e & ONE != 0 {
                    if len == send && agrees(prefix.wide(), expected, send) {
                        return 0;
                    }
                    // Becomes a skip node (two groups), then as below.
                    (send, expected) = self.route_to_skip(end, send, expected);
                    convert = 2;
                }
                if len >= send && agrees(prefix.wide(), expected, send) {
                    if convert > 0 {
                        // The entries below hold leaves only.
                        return convert
                            + if len <= send + st {
                                0
                            } else {
                                self.fresh_groups(send + st, len)
                            };
                    }
                    g += 1;
                    end = send;
                } else {
                    let d = self.divergence(prefix, len, end, send, expected);
                    let chain = (d - end) / st + 1 + if d + st == send { 0 } else { 2 };
                    return convert
                        + chain
                        + if len <= d + st {
                            0
                        } else {
                            self.fresh_groups(d + st, len)
                        };
                }
            }
            let i = ((g as usize) << st) | prefix.slice(end, st);
            e = self.groups.get(i).map_or(0, |g| g.load(Relaxed));
            end += st;
        }
        0
    }

    /// Groups a new branch takes from a leaf entry resolving `end` bits
    /// down to a prefix of `len` bits.
    fn fresh_groups(&self, end: u32, len: u32) -> u32 {
        if self.skip && len > end + self.stride {
            1
        } else {
            (len - end).div_ceil(self.stride)
        }
    }

    /// The level (its first bit) at which `prefix/len`, under an entry
    /// resolving `from` bits, leaves the path of a skip node ending at
    /// `end` bits: where its bits first differ, or where it ends.
    fn divergence(&self, prefix: K, len: u32, from: u32, end: u32, expected: u128) -> u32 {
        let lim = len.min(end);
        let x = (prefix.wide() ^ expected) & u128::MAX.checked_shl(128 - lim).unwrap_or(0);
        let f = if x != 0 { x.leading_zeros() } else { len - 1 };
        from + self.stride * ((f - from) / self.stride)
    }

    /// A skip node's header: where it ends, the bits it expects, and the
    /// answer for keys that differ.
    #[inline(always)]
    fn header(&self, h: u32) -> (u32, u128, u32) {
        let b = (h as usize) << self.stride;
        match self.groups.get(b..b + H_FALLBACK + 1) {
            Some(w) => {
                let word = |k: usize| u128::from(w[k].load(Acquire)) << (96 - 32 * k);
                (
                    w[H_END].load(Acquire),
                    word(0) | word(1) | word(2) | word(3),
                    w[H_FALLBACK].load(Acquire),
                )
            }
            None => (0, 0, 0),
        }
    }

    /// The end and expected bits of the skip node a route node of a
    /// `/len` route under an entry resolving `from` bits turns into: the
    /// level holding the route's last bit.
    fn route_to_skip(&self, from: u32, len: u32, expected: u128) -> (u32, u128) {
        let end = from + self.stride * ((len - 1 - from) / self.stride);
        (
            end,
            expected & u128::MAX.checked_shl(128 - end).unwrap_or(0),
        )
    }

    /// A route node's route.
    #[inline(always)]
    fn route(&self, r: u32) -> u32 {
        self.groups
            .get(((r as usize) << self.stride) + H_ROUTE)
            .map_or(0, |w| w.load(Acquire))
    }

    /// Takes `n` consecutive groups (`insert` checked there are enough).
    fn alloc(&self, rib: &mut Rib<K>, n: u32) -> u32 {
        let g = rib.groups_used;
        rib.groups_used += n;
        self.groups_used.store(rib.groups_used, Relaxed);
        g
    }

    fn group(&self, g: u32) -> &[AtomicU32] {
        let start = (g as usize) << self.stride;
        &self.groups[start..start + (1 << self.stride)]
    }

    /// A new skip node over the levels from `from` to `end` bits that
    /// expects `expected` there and answers `fallback` elsewhere, its
    /// entries group filled from `entries` (or with `fallback`). Not yet
    /// published: the caller stores the returned pointer.
    fn new_skip(
        &self,
        rib: &mut Rib<K>,
        end: u32,
        expected: u128,
        fallback: u32,
        entries: Option<u32>,
    ) -> u32 {
        let h = self.alloc(rib, 2);
        let head = self.group(h);
        for (k, w) in head[..H_END].iter().enumerate() {
            w.store((expected >> (96 - 32 * k)) as u32, Relaxed);
        }
        head[H_END].store(end, Relaxed);
        head[H_FALLBACK].store(fallback, Relaxed);
        let body = self.group(h + 1);
        match entries {
            Some(src) => {
                for (d, s) in body.iter().zip(self.group(src)) {
                    d.store(s.load(Relaxed), Relaxed);
                }
            }
            None => {
                for d in body {
                    d.store(fallback, Relaxed);
                }
            }
        }
        GROUP | SKIP | h
    }

    /// Replaces the skip node `e` points at (under an entry resolving
    /// `from` bits) by plain groups down to the level where `prefix/len`
    /// leaves its path, and a shorter skip node below if levels remain,
    /// then publishes the result in one store. Readers that already
    /// loaded the old pointer finish on the old nodes, which stay valid.
    fn split(&self, rib: &mut Rib<K>, e: &AtomicU32, from: u32, prefix: K, len: u32) {
        let h = e.load(Relaxed) & INDEX;
        let (end, expected, fallback) = self.header(h);
        let st = self.stride;
        let d = self.divergence(prefix, len, from, end, expected);
        let mut ptr = if d + st == end {
            GROUP | (h + 1)
        } else {
            self.new_skip(rib, end, expected, fallback, Some(h + 1))
        };
        let mut level = d;
        loop {
            let g = self.alloc(rib, 1);
            let on_path = expected.slice(level, st);
            for (k, c) in self.group(g).iter().enumerate() {
                c.store(if k == on_path { ptr } else { fallback }, Relaxed);
            }
            ptr = GROUP | g;
            if level == from {
                break;
            }
            level -= st;
        }
        e.store(ptr, Release);
    }

    fn paint(&self, rib: &mut Rib<K>, prefix: K, len: u8, paint: Paint) {
        let len32 = u32::from(len);
        let mut base = 0usize;
        let mut from = 0u32;
        let mut stride = self.root_bits;
        loop {
            let table: &[AtomicU32] = if from == 0 { &self.root } else { &self.groups };
            let end = from + stride;
            if len32 <= end {
                let first = base + prefix.slice(from, stride);
                let n = 1usize << (end - len32);
                for e in &table[first..first + n] {
                    self.apply(e, paint);
                }
                return;
            }
            let e = &table[base + prefix.slice(from, stride)];
            let mut cur = e.load(Acquire);
            if cur & (GROUP | SKIP | ONE) == GROUP | SKIP | ONE {
                let r = cur & INDEX;
                let (rend, expected, fallback) = self.header(r);
                if len32 == rend && agrees(prefix.wide(), expected, rend) {
                    self.apply(&self.group(r)[H_ROUTE], paint);
                    return;
                }
                if let Paint::Remove { .. } = paint {
                    // A route off a route node's path would have split it.
                    return;
                }
                // Another route goes through: the node becomes a skip
                // node holding its route in a level of entries, published
                // whole, then the walk goes on through that.
                let (send, sexp) = self.route_to_skip(end, rend, expected);
                let p = self.new_skip(rib, send, sexp, fallback, None);
                let route = self.group(r)[H_ROUTE].load(Relaxed);
                let body = self.group((p & INDEX) + 1);
                let first = (expected.slice(send, self.stride) >> (send + self.stride - rend))
                    << (send + self.stride - rend);
                for c in &body[first..first + (1 << (send + self.stride - rend))] {
                    c.store(route, Relaxed);
                }
                e.store(p, Release);
                cur = p;
            }
            if cur & (GROUP | SKIP) == GROUP | SKIP {
                let h = cur & INDEX;
                let (send, expected, _) = self.header(h);
                if len32 >= send && agrees(prefix.wide(), expected, send) {
                    base = ((h + 1) as usize) << self.stride;
                    from = send;
                    stride = self.stride;
                    continue;
                }
                if let Paint::Remove { .. } = paint {
                    // A route off a skip node's path would have split it.
                    return;
                }
                self.split(rib, e, end, prefix, len32);
                cur = e.load(Relaxed);
            }
            let g = if cur & GROUP != 0 {
                cur & INDEX
            } else if let Paint::Add { .. } = paint {
                // `insert` checked there are groups left for the branch.
                if let (true, Paint::Add { leaf, .. }) =
                    (self.skip && len32 > end + self.stride, paint)
                {
                    // Alone below here, and more than a level down: a
                    // route node, one line.
                    let r = self.alloc(rib, 1);
                    let node = self.group(r);
                    let expected = prefix.wide();
                    for (k, w) in node[..H_END].iter().enumerate() {
                        w.store((expected >> (96 - 32 * k)) as u32, Relaxed);
                    }
                    node[H_END].store(len32, Relaxed);
                    node[H_FALLBACK].store(cur, Relaxed);
                    node[H_ROUTE].store(leaf, Relaxed);
                    // Publish the filled node.
                    e.store(GROUP | SKIP | ONE | r, Release);
                    return;
                }
                let g = self.alloc(rib, 1);
                for c in self.group(g) {
                    c.store(cur, Relaxed);
                }
                // Publish the filled group.
                e.store(GROUP | g, Release);
                g
            } else {
                // Nothing was ever painted below here.
                return;
            };
            base = (g as usize) << self.stride;
            from = end;
            stride = self.stride;
        }
    }

    fn apply(&self, e: &AtomicU32, paint: Paint) {
        let cur = e.load(Relaxed);
        if cur & GROUP != 0 {
            let mut g = cur & INDEX;
            if cur & SKIP != 0 {
                // Keys off the skip's path answer its fallback: paint it
                // like an entry, then the entries below (or the route).
                self.apply(&self.group(g)[H_FALLBACK], paint);
                if cur & ONE != 0 {
                    self.apply(&self.group(g)[H_ROUTE], paint);
                    return;
                }
                g += 1;
            }
            for c in self.group(g) {
                self.apply(c, paint);
            }
            return;
        }
        match paint {
            Paint::Add { len, leaf } if depth(cur) <= len => e.store(leaf, Release),
            Paint::Remove { len, with } if depth(cur) == len => e.store(with, Release),
            _ => {}
        }
    }

    /// Whether the trie is small enough to stay in cache (its groups fit in
    /// 256 KiB), so that walking a batch key by key beats prefetching
    /// level by level. The root is not counted: only the entries routes
    /// painted are touched, and a small table paints few.
    #[inline]
    pub fn is_cache_resident(&self) -> bool {
        ((self.groups_used.load(Relaxed) as usize) << self.stride) <= 1 << 16
    }

    /// The value of the longest prefix matching `key`, or 0 if none does.
    #[inline(always)]
    pub fn lookup(&self, key: K) -> u32 {
        let mut e = match self.root.get(key.slice(0, self.root_bits)) {
            Some(r) => r.load(Acquire),
            None => 0,
        };
        let mut from = self.root_bits;
        while e & GROUP != 0 && from < K::BITS {
            let mut g = e & INDEX;
            if e & SKIP != 0 {
                let (end, expected, fallback) = self.header(g);
                if !agrees(key.wide(), expected, end) {
                    e = fallback;
                    break;
                }
                if e & ONE != 0 {
                    e = self.route(g);
                    break;
                }
                g += 1;
                from = end;
            }
            let i = ((g as usize) << self.stride) | key.slice(from, self.stride);
            e = match self.groups.get(i) {
                Some(g) => g.load(Acquire),
                None => 0,
            };
            from += self.stride;
        }
        if e & GROUP != 0 { 0 } else { e & MAX_VALUE }
    }

    /// Where a batch walk goes from pointer entry `e` with `from` bits
    /// resolved: the next entry to read, or for a skip or route node the
    /// node (a skip node's header and entries are prefetched together;
    /// they are adjacent, so the node costs one step, not two). The line
    /// is prefetched.
    #[inline(always)]
    fn step(&self, e: u32, key: K, from: u32) -> Step {
        let g = e & INDEX;
        if e & SKIP != 0 {
            let b = (g as usize) << self.stride;
            if let Some(h) = self.groups.get(b) {
                prefetch(h);
            }
            if e & ONE == 0
                && let Some(h) = self.groups.get(b + (1 << self.stride))
            {
                prefetch(h);
            }
            Step { from: 0, i: e }
        } else {
            let i = ((g as usize) << self.stride) | key.slice(from, self.stride);
            if let Some(h) = self.groups.get(i) {
                prefetch(h);
            }
            Step {
                from: (from + self.stride) as u8,
                i: i as u32,
            }
        }
    }

    /// [`Self::step`] without branches, for the root pass of a trie with
    /// skip nodes: there whether a key walks on, and into what kind of
    /// node, is as random as the keys (a route node or nothing, for
    /// IPv6 under a 24-bit root), and a mispredicted branch a key costs
    /// more than the selects. A plain trie's root pass (IPv4) keeps the
    /// branches: most keys end at the root and the selects cost more.
    #[inline(always)]
    fn step_flat(&self, e: u32, key: K, from: u32) -> Step {
        let g = ((e & INDEX) as usize) << self.stride;
        let node = e & SKIP != 0;
        let i = if node {
            g
        } else {
            g | key.slice(from, self.stride)
        };
        if let Some(h) = self.groups.get(i) {
            prefetch(h);
        }
        // A skip node's entries (the same line again otherwise).
        let j = if e & (SKIP | ONE) == SKIP {
            i + (1 << self.stride)
        } else {
            i
        };
        if let Some(h) = self.groups.get(j) {
            prefetch(h);
        }
        Step {
            from: if node { 0 } else { (from + self.stride) as u8 },
            i: if node { e } else { i as u32 },
        }
    }

    /// [`Self::lookup_batch`] for a trie without skip nodes (IPv4): every
    /// key walks the same levels, so one level's pass serves all, and the
    /// vector's root entries are asked for up front (a dense DIR-24 root
    /// where most keys end). Kept apart from the skip-node walk: sharing
    /// that one's per-key state cost IPv4 a third more cycles a lookup in
    /// vectors of 64.
    #[inline(always)]
    fn lookup_batch_plain(&self, keys: &[K], out: &mut [u32]) {
        for &k in keys {
            if let Some(r) = self.root.get(k.slice(0, self.root_bits)) {
                prefetch(r);
            }
        }
        // Positions of the keys still walking, and for each its next
        // entry's index, kept compact so that a level's pass touches only
        // the few keys that go that deep.
        let mut walking = [(0u16, 0u32); BATCH];
        let mut w = 0usize;
        for (pos, (o, &k)) in out.iter_mut().zip(keys).enumerate() {
            let e = self
                .root
                .get(k.slice(0, self.root_bits))
                .map_or(0, |r| r.load(Acquire));
            *o = e;
            if e & GROUP != 0 {
                let i =
                    (((e & INDEX) as usize) << self.stride) | k.slice(self.root_bits, self.stride);
                if let Some(g) = self.groups.get(i) {
                    prefetch(g);
                }
                walking[w] = (pos as u16, i as u32);
                w += 1;
            }
        }
        let mut from = self.root_bits + self.stride;
        while w > 0 {
            let mut still = 0usize;
            for j in 0..w {
                let (pos, i) = walking[j];
                let e = self.groups.get(i as usize).map_or(0, |g| g.load(Acquire));
                out[pos as usize] = e;
                if e & GROUP != 0 && from < K::BITS {
                    let i = (((e & INDEX) as usize) << self.stride)
                        | keys[pos as usize].slice(from, self.stride);
                    if let Some(g) = self.groups.get(i) {
                        prefetch(g);
                    }
                    walking[still] = (pos, i as u32);
                    still += 1;
                }
            }
            w = still;
            from += self.stride;
        }
        for o in out.iter_mut() {
            *o = if *o & GROUP != 0 { 0 } else { *o & MAX_VALUE };
        }
    }

    /// Looks up every key of `keys` into `out` (the shorter of the two
    /// decides how many), level by level across the batch: first the root
    /// entries of all keys are asked for, then each level's entries of the
    /// keys still walking, so that the cache misses of different keys
    /// overlap instead of each key's walk waiting on its own chain of
    /// misses. In a big table nearly every read is a miss; this is what a
    /// vector of packets buys a lookup.
    #[inline]
    pub fn lookup_batch(&self, keys: &[K], out: &mut [u32]) {
        let n = keys.len().min(out.len()).min(BATCH);
        let (keys, out) = (&keys[..n], &mut out[..n]);
        if !self.skip {
            self.lookup_batch_plain(keys, out);
            return;
        }
        // Positions of the keys still walking and where each goes next,
        // kept compact so that a pass touches only the keys that go that
        // deep. After a skip node keys walk at different levels, so each
        // carries its own.
        let mut walking = [(0u16, Step { from: 0, i: 0 }); BATCH];
        let mut w = 0usize;
        let root = |k: K| self.root.get(k.slice(0, self.root_bits));
        // Root entries are asked for AHEAD keys before they are read:
        // a vector's all at once overflow the core's outstanding
        // misses, and here nearly every one is a miss (a big, sparse
        // root). Measured on IPv6; IPv4's dense root prefers them all
        // up front.
        for &k in &keys[..n.min(AHEAD)] {
            if let Some(r) = root(k) {
                prefetch(r);
            }
        }
        for (pos, (o, &k)) in out.iter_mut().zip(keys).enumerate() {
            if let Some(r) = keys.get(pos + AHEAD).and_then(|&a| root(a)) {
                prefetch(r);
            }
            let e = root(k).map_or(0, |r| r.load(Acquire));
            *o = e;
            // Every key takes a slot; only those with a pointer keep
            // it. A leaf steps as group 0's first entries, a line in
            // cache. (Masks, not a select: the compiler made that a
            // branch.)
            let walks = e >> 31;
            let m = 0u32.wrapping_sub(walks);
            walking[w] = (
                pos as u16,
                self.step_flat((e & m) | (GROUP & !m), k, self.root_bits),
            );
            w += walks as usize;
        }
        while w > 0 {
            let mut still = 0usize;
            for j in 0..w {
                let (pos, s) = walking[j];
                let k = keys[pos as usize];
                let (e, from) = if s.from == 0 {
                    let g = s.i & INDEX;
                    let (end, expected, fallback) = self.header(g);
                    if !agrees(k.wide(), expected, end) {
                        out[pos as usize] = fallback;
                        continue;
                    }
                    if s.i & ONE != 0 {
                        out[pos as usize] = self.route(g);
                        continue;
                    }
                    let i = (((g + 1) as usize) << self.stride) | k.slice(end, self.stride);
                    (
                        self.groups.get(i).map_or(0, |g| g.load(Acquire)),
                        end + self.stride,
                    )
                } else {
                    (
                        self.groups.get(s.i as usize).map_or(0, |g| g.load(Acquire)),
                        u32::from(s.from),
                    )
                };
                out[pos as usize] = e;
                if e & GROUP != 0 && from < K::BITS {
                    walking[still] = (pos, self.step(e, k, from));
                    still += 1;
                }
            }
            w = still;
        }
        for o in out.iter_mut() {
            *o = if *o & GROUP != 0 { 0 } else { *o & MAX_VALUE };
        }
    }
}

/// A batch walk's next read: with `from` > 0 the entry at `i`, after which
/// `from` bits are resolved; with `from` 0 the skip or route node entry
/// `i` points at.
#[derive(Debug, Clone, Copy)]
struct Step {
    from: u8,
    i: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(root_bits: u32) -> Lpm<u32> {
        v4_shape(root_bits, 8, false)
    }

    fn v4_shape(root_bits: u32, stride: u32, skip: bool) -> Lpm<u32> {
        Lpm::new(LpmConfig {
            root_bits,
            stride,
            max_groups: 1 << 16,
            huge_pages: false,
            skip,
        })
        .unwrap()
    }

    /// The reference: longest matching prefix by scanning every route.
    fn reference<K: Key>(routes: &HashMap<(K, u8), u32>, key: K) -> u32 {
        routes
            .iter()
            .filter(|((p, l), _)| key.masked(*l) == *p)
            .max_by_key(|((_, l), _)| *l)
            .map(|(_, &v)| v)
            .unwrap_or(0)
    }

    #[test]
    fn longest_prefix_wins_and_removal_falls_back() {
        for root_bits in [16, 24] {
            let t = v4(root_bits);
            let a = |x: [u8; 4]| u32::from_be_bytes(x);
            t.insert(0, 0, 1).unwrap();
            t.insert(a([10, 0, 0, 0]), 8, 2).unwrap();
            t.insert(a([10, 1, 2, 0]), 24, 3).unwrap();
            t.insert(a([10, 1, 2, 128]), 25, 4).unwrap();
            t.insert(a([10, 1, 2, 7]), 32, 5).unwrap();
            // A shorter prefix added later must not cover the longer ones.
            t.insert(a([10, 1, 0, 0]), 16, 6).unwrap();
            assert_eq!(t.lookup(a([1, 2, 3, 4])), 1);
            assert_eq!(t.lookup(a([10, 9, 9, 9])), 2);
            assert_eq!(t.lookup(a([10, 1, 9, 9])), 6);
            assert_eq!(t.lookup(a([10, 1, 2, 3])), 3);
            assert_eq!(t.lookup(a([10, 1, 2, 200])), 4);
            assert_eq!(t.lookup(a([10, 1, 2, 7])), 5);
            assert_eq!(t.remove(a([10, 1, 2, 0]), 24), Some(3));
            assert_eq!(t.lookup(a([10, 1, 2, 3])), 6);
            assert_eq!(t.lookup(a([10, 1, 2, 7])), 5);
            assert_eq!(t.remove(a([10, 1, 0, 0]), 16), Some(6));
            assert_eq!(t.lookup(a([10, 1, 2, 3])), 2);
            assert_eq!(t.remove(0, 0), Some(1));
            assert_eq!(t.lookup(a([1, 2, 3, 4])), 0);
            assert_eq!(t.remove(0, 0), None);
            assert_eq!(t.insert(a([10, 0, 0, 0]), 8, 9), Ok(Some(2)));
            assert_eq!(t.lookup(a([10, 200, 0, 0])), 9);
            assert_eq!(t.len(), 3);
        }
    }

    #[test]
    fn bad_routes_change_nothing() {
        let t = v4(24);
        assert_eq!(t.insert(0, 33, 1), Err(LpmError::BadLength(33)));
        assert_eq!(t.insert(0x0a000001, 8, 1), Err(LpmError::HostBits(8)));
        assert_eq!(t.insert(0, 0, 0), Err(LpmError::BadValue(0)));
        assert_eq!(
            t.insert(0, 0, MAX_VALUE + 1),
            Err(LpmError::BadValue(MAX_VALUE + 1))
        );
        assert!(t.is_empty());
        assert!(matches!(
            Lpm::<u32>::new(LpmConfig {
                root_bits: 20,
                max_groups: 1,
                huge_pages: false,
                stride: 8,
                skip: false,
            }),
            Err(LpmError::BadShape(20))
        ));
        let small = Lpm::<u32>::new(LpmConfig {
            root_bits: 24,
            max_groups: 1,
            huge_pages: false,
            stride: 8,
            skip: false,
        })
        .unwrap();
        small.insert(0x0a000080, 25, 1).unwrap();
        assert_eq!(small.insert(0x0b000080, 25, 2), Err(LpmError::Full(1)));
        assert_eq!(small.lookup(0x0b000081), 0);
        assert_eq!(small.len(), 1);
        // The group already there still takes more routes.
        small.insert(0x0a000000, 32, 3).unwrap();
        assert_eq!(small.lookup(0x0a000000), 3);
    }

    #[test]
    fn ipv6_paths_deep_and_shallow() {
        for skip in [false, true] {
            let t = Lpm::<u128>::new(LpmConfig {
                root_bits: 24,
                max_groups: 1024,
                huge_pages: false,
                stride: 8,
                skip,
            })
            .unwrap();
            let p = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
            t.insert(p("2001:db8::"), 32, 1).unwrap();
            t.insert(p("2001:db8:1::"), 48, 2).unwrap();
            t.insert(p("2001:db8:1::1"), 128, 3).unwrap();
            t.insert(p("::"), 0, 4).unwrap();
            assert_eq!(t.lookup(p("2001:db8:1::1")), 3);
            assert_eq!(t.lookup(p("2001:db8:1::2")), 2);
            assert_eq!(t.lookup(p("2001:db8:2::2")), 1);
            assert_eq!(t.lookup(p("fe80::1")), 4);
            t.remove(p("2001:db8:1::"), 48);
            assert_eq!(t.lookup(p("2001:db8:1::2")), 1);
            assert_eq!(t.lookup(p("2001:db8:1::1")), 3);
        }
    }

    #[test]
    fn readers_never_see_a_torn_answer_while_a_writer_churns() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let t = Arc::new(v4(16));
        t.insert(0x0a000000, 8, 1).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for a in [0x0a010203u32, 0x0a0102ff, 0x0a7f0000] {
                        let v = t.lookup(a);
                        // Only the values the writer ever installs.
                        assert!((1..=3).contains(&v), "{a:#x} → {v}");
                        n += 1;
                    }
                }
                n
            })
        };
        // Churn for a while, whether or not the reader got a core early.
        let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while std::time::Instant::now() < until {
            t.insert(0x0a010200, 24, 2).unwrap();
            t.insert(0x0a010280, 25, 3).unwrap();
            t.remove(0x0a010200, 24);
            t.remove(0x0a010280, 25);
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(t.lookup(0x0a0102ff), 1);
        // Churn on the same prefixes reuses the same groups.
        assert_eq!(t.groups().0, 2);
    }

    fn v4_against_scan(
        root_bits: u32,
        stride: u32,
        skip: bool,
        ops: &[(u32, u8, u32, bool)],
        probes: &[u32],
    ) -> Result<(), TestCaseError> {
        let t = v4_shape(root_bits, stride, skip);
        let mut model = HashMap::new();
        for &(a, len, v, add) in ops {
            let p = a.masked(len);
            if add || !model.contains_key(&(p, len)) {
                t.insert(p, len, v).unwrap();
                model.insert((p, len), v);
            } else {
                prop_assert_eq!(t.remove(p, len), model.remove(&(p, len)));
            }
        }
        let mut addrs = probes.to_vec();
        for &(p, l) in model.keys() {
            addrs.extend([
                p,
                p | !u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0),
                p.wrapping_sub(1),
            ]);
        }
        for a in addrs {
            prop_assert_eq!(t.lookup(a), reference(&model, a), "address {:#x}", a);
        }
        Ok(())
    }

    proptest! {
        /// Same answers as a linear scan after random adds and removes.
        #[test]
        fn matches_linear_scan_16(
            ops in proptest::collection::vec((any::<u32>(), 0u8..=32, 1u32..50, any::<bool>()), 0..150),
            probes in proptest::collection::vec(any::<u32>(), 100),
        ) {
            for skip in [false, true] {
                v4_against_scan(16, 8, skip, &ops, &probes)?;
                v4_against_scan(16, 4, skip, &ops, &probes)?;
            }
        }
    }

    proptest! {
        // Each short prefix paints up to 2^24 entries here: fewer cases.
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn matches_linear_scan_24(
            ops in proptest::collection::vec((any::<u32>(), 0u8..=32, 1u32..50, any::<bool>()), 0..150),
            probes in proptest::collection::vec(any::<u32>(), 100),
        ) {
            v4_against_scan(24, 8, false, &ops, &probes)?;
            v4_against_scan(24, 4, true, &ops, &probes)?;
        }
    }

    proptest! {

        #[test]
        fn ipv6_matches_linear_scan(
            ops in proptest::collection::vec((any::<u128>(), 0u8..=128, 1u32..50, any::<bool>()), 0..80),
            probes in proptest::collection::vec(any::<u128>(), 50),
            stride in prop_oneof![Just(4u32), Just(8u32)],
            skip in any::<bool>(),
        ) {
            let t = Lpm::<u128>::new(LpmConfig { root_bits: 16, max_groups: 1 << 16, huge_pages: false, stride, skip }).unwrap();
            let mut model = HashMap::new();
            for &(a, len, v, add) in &ops {
                // Keep prefixes near each other so that they nest.
                let a = (a & 0xffff_ffff) | (0x2001_0db8u128 << 96);
                let p = a.masked(len);
                if add || !model.contains_key(&(p, len)) {
                    t.insert(p, len, v).unwrap();
                    model.insert((p, len), v);
                } else {
                    prop_assert_eq!(t.remove(p, len), model.remove(&(p, len)));
                }
            }
            let mut addrs = probes;
            for &(p, _) in model.keys() {
                addrs.extend([p, p.wrapping_sub(1), p | 0xff]);
            }
            for a in addrs {
                prop_assert_eq!(t.lookup(a), reference(&model, a), "address {:#x}", a);
            }
        }
    }

    fn v6_shape(root_bits: u32, stride: u32, skip: bool, max_groups: u32) -> Lpm<u128> {
        Lpm::new(LpmConfig {
            root_bits,
            stride,
            max_groups,
            huge_pages: false,
            skip,
        })
        .unwrap()
    }

    #[test]
    fn skip_nodes_split_where_routes_diverge() {
        let p = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
        let t = v6_shape(24, 4, true, 1024);
        // Alone under its root entry, a /64 is one route node: one group.
        t.insert(p("2001:db8:1:2::"), 64, 1).unwrap();
        assert_eq!(t.groups().0, 1);
        assert_eq!(t.lookup(p("2001:db8:1:2::9")), 1);
        assert_eq!(t.lookup(p("2001:db8:1:3::9")), 0);
        // A /40 differing at bit 39 turns it into a skip node (two
        // groups) and splits that: plain groups down to the level holding
        // that bit (bits 24..40, 4 groups), the rest (40..60) a new skip
        // node (2).
        t.insert(p("2001:db8:100::"), 40, 2).unwrap();
        assert_eq!(t.groups().0, 1 + 2 + 4 + 2);
        assert_eq!(t.lookup(p("2001:db8:1:2::9")), 1);
        assert_eq!(t.lookup(p("2001:db8:1:3::9")), 0);
        assert_eq!(t.lookup(p("2001:db8:1ff:2::9")), 2);
        // A covering route reaches the skipped keys through the fallback.
        t.insert(p("2001:db8::"), 32, 3).unwrap();
        assert_eq!(t.lookup(p("2001:db8:1:3::9")), 3);
        assert_eq!(t.lookup(p("2001:db8:1:2::9")), 1);
        assert_eq!(t.remove(p("2001:db8:1:2::"), 64), Some(1));
        assert_eq!(t.lookup(p("2001:db8:1:2::9")), 3);
        // Re-adding reuses the nodes.
        let used = t.groups().0;
        t.insert(p("2001:db8:1:2::"), 64, 1).unwrap();
        assert_eq!(t.groups().0, used);
        assert_eq!(t.remove(p("2001:db8::"), 32), Some(3));
        assert_eq!(t.lookup(p("2001:db8:1:3::9")), 0);
        assert_eq!(t.lookup(p("2001:db8:1:2::9")), 1);
        // Full refuses a split and changes nothing.
        let small = v6_shape(24, 4, true, 3);
        small.insert(p("2001:db8:1:2::"), 64, 1).unwrap();
        assert_eq!(
            small.insert(p("2001:db8:100::"), 40, 2),
            Err(LpmError::Full(3))
        );
        assert_eq!(small.groups().0, 1);
        assert_eq!(small.lookup(p("2001:db8:1:2::9")), 1);
        assert_eq!(small.lookup(p("2001:db8:100::1")), 0);
    }

    #[test]
    fn readers_see_no_torn_answer_while_skip_nodes_split() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let p = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
        let t = Arc::new(v6_shape(24, 4, true, 1 << 20));
        t.insert(p("2001:db8::"), 32, 1).unwrap();
        let k = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (t, k, stop) = (t.clone(), k.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut out = [0u32; 3];
                while !stop.load(Ordering::Relaxed) {
                    let b = p("2001:db8::") | (u128::from(k.load(Ordering::Relaxed)) << 80);
                    let keys = [b | (2 << 64) | 5, b | (3 << 64) | 1, p("2001:db8:ffff::1")];
                    t.lookup_batch(&keys, &mut out);
                    for (j, &key) in keys.iter().enumerate() {
                        let v = t.lookup(key);
                        let ok: &[u32] = [&[1u32, 2, 3][..], &[1, 3], &[1]][j];
                        assert!(
                            ok.contains(&v) && ok.contains(&out[j]),
                            "{key:#x}: {v} {}",
                            out[j]
                        );
                    }
                    n += 1;
                }
                n
            })
        };
        let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut i = 0u32;
        while std::time::Instant::now() < until && i < 0xfff0 {
            let b = p("2001:db8::") | (u128::from(i) << 80);
            k.store(i, Ordering::Relaxed);
            // A deep route (a skip node), then one that splits it.
            t.insert(b | (2 << 64), 64, 2).unwrap();
            t.insert(b, 48, 3).unwrap();
            t.remove(b | (2 << 64), 64);
            t.remove(b, 48);
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }

    proptest! {
        /// Routes that share long prefixes and part at every depth, so
        /// that skip nodes are made, split and painted over: the trie with
        /// and without them, walked alone and in a batch, agrees with a
        /// linear scan.
        #[test]
        fn ipv6_skip_nodes_match_linear_scan(
            ops in proptest::collection::vec(
                (0usize..3, any::<u128>(), 0u32..128, 0u8..=128, 1u32..50, any::<bool>()), 0..100),
            probes in proptest::collection::vec((0usize..3, any::<u128>(), 0u32..128), 50),
            root_bits in prop_oneof![Just(16u32), Just(24u32)],
        ) {
            const BASES: [u128; 3] = [
                0x2001_0db8_0001_0002_0000_0000_0000_0000,
                0x2001_0db8_0001_00ff_0000_0000_0000_0001,
                0x2a00_1450_4000_0800_0000_0000_0000_200e,
            ];
            // A base with its bits from `shift` on flipped at random.
            let near = |b: usize, r: u128, shift: u32| BASES[b] ^ (r >> shift);
            let tries = [
                v6_shape(root_bits, 4, false, 1 << 16),
                v6_shape(root_bits, 4, true, 1 << 16),
            ];
            let mut model = HashMap::new();
            for &(b, r, shift, len, v, add) in &ops {
                let pfx = near(b, r, shift).masked(len);
                if add || !model.contains_key(&(pfx, len)) {
                    for t in &tries {
                        t.insert(pfx, len, v).unwrap();
                    }
                    model.insert((pfx, len), v);
                } else {
                    for t in &tries {
                        prop_assert_eq!(t.remove(pfx, len), model.get(&(pfx, len)).copied());
                    }
                    model.remove(&(pfx, len));
                }
            }
            let mut addrs: Vec<u128> = probes.iter().map(|&(b, r, s)| near(b, r, s)).collect();
            for &(pfx, l) in model.keys() {
                addrs.extend([pfx, pfx.wrapping_sub(1), pfx | (u128::MAX >> l.min(127))]);
            }
            for t in &tries {
                for chunk in addrs.chunks(BATCH) {
                    let mut out = [0u32; BATCH];
                    t.lookup_batch(chunk, &mut out);
                    for (&a, &o) in chunk.iter().zip(&out) {
                        let want = reference(&model, a);
                        prop_assert_eq!(t.lookup(a), want, "address {:#x}", a);
                        prop_assert_eq!(o, want, "batched, address {:#x}", a);
                    }
                }
            }
        }
    }
}
