//! The classifier for one address family: a few decision trees over
//! disjoint groups of the rules, whose answers are merged by rule number.
//!
//! Rules are split into groups, each one on a chunk of a field (say the
//! top 16 bits of the source address) where every rule of the group has a
//! single value — so a group's root is a table indexed by that chunk, and
//! no rule is copied into more than one of its entries. Rules wide on
//! every chunk worth cutting (source and destination /0, say) end in one
//! last group, a tree whose cuts copy a rule into each child it spans
//! (HiCuts-style, bounded). Separating the wide rules first is what keeps
//! the copies — the memory blow-up of plain cutting trees — in check
//! (EffiCuts' insight). An entry that still holds too many rules is cut
//! again, 8 bits at a time, on whichever field spreads its rules best.
//!
//! A lookup reads, per group, one root entry (rarely a cut or two below)
//! and one leaf of a few rules in blocks (`block.rs`), and keeps the
//! smallest rule number any group matched: first match over the whole
//! list, since groups are disjoint and each leaf is in rule order.

use std::collections::HashMap;

use sluice_buf::table::prefetch;

use super::block::{Block, NONE, scan};
use super::key::{Addr, Key};
use super::rule::{Extra, Lowered};

/// How a tree is shaped; the defaults are what the measurements in the
/// module docs chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeConfig {
    /// Most groups (1: one cutting tree with copies, no separation).
    pub max_groups: usize,
    /// Rules a leaf may hold before it is cut again.
    pub leaf: usize,
    /// How many copies of a node's rules its cut may make, in total, per rule.
    pub replication: usize,
}

impl Default for TreeConfig {
    fn default() -> TreeConfig {
        TreeConfig {
            max_groups: 6,
            leaf: 4,
            replication: 8,
        }
    }
}

/// A field a cut indexes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Src,
    Dst,
    Sport,
    Dport,
    Proto,
}

/// `bits` bits of `field` from `from` bits below its top, indexing
/// entries `base..base + (1 << bits)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    field: Field,
    from: u8,
    bits: u8,
    base: u32,
}

/// An entry pointing at a cut (its index in the low bits); otherwise an
/// entry is the first block of a leaf, 0 being the empty leaf.
const CUT: u32 = 1 << 31;

impl Cut {
    #[inline(always)]
    fn index<A: Addr>(&self, k: &Key<A>) -> usize {
        let (from, bits) = (u32::from(self.from), u32::from(self.bits));
        let v = match self.field {
            Field::Src => k.src.chunk(from, bits),
            Field::Dst => k.dst.chunk(from, bits),
            Field::Sport => (u32::from(k.sport) << (16 + from)) >> (32 - bits),
            Field::Dport => (u32::from(k.dport) << (16 + from)) >> (32 - bits),
            Field::Proto => (u32::from(k.proto) << (24 + from)) >> (32 - bits),
        };
        self.base as usize + v as usize
    }

    /// The values of this chunk a rule can match, as an inclusive range
    /// (a superset for a port range that crosses the chunk's upper bits:
    /// leaves check every field anyway).
    fn span<A: Addr>(&self, r: &Lowered<A>) -> (u32, u32) {
        let (from, bits) = (u32::from(self.from), u32::from(self.bits));
        let all = (0, (1u32 << bits) - 1);
        let prefix = |v: A, m: A| {
            let len = m.prefix_len();
            if len >= from + bits {
                let c = v.chunk(from, bits);
                (c, c)
            } else if len <= from {
                all
            } else {
                let c = v.chunk(from, bits);
                (c, c + (1 << (from + bits - len)) - 1)
            }
        };
        let range = |(lo, hi): (u16, u16), width: u32| {
            let (lo, hi) = (u32::from(lo), u32::from(hi));
            let above = |p: u32| p.checked_shr(width - from).unwrap_or(0);
            if above(lo) != above(hi) {
                return all;
            }
            let chunk = |p: u32| (p << (32 - width + from)) >> (32 - bits);
            (chunk(lo), chunk(hi))
        };
        match self.field {
            Field::Src => prefix(r.src, r.src_mask),
            Field::Dst => prefix(r.dst, r.dst_mask),
            Field::Sport => range(r.sport, 16),
            Field::Dport => range(r.dport, 16),
            Field::Proto if r.proto_mask == 0xff => (r.proto.into(), r.proto.into()),
            Field::Proto => all,
        }
    }
}

/// Every chunk a cut may index on: `bits` wide, for the group roots
/// (`wide`: 8, 12 and 16 bits) or the cuts below (8 bits).
fn chunks<A: Addr>(wide: bool) -> Vec<(Field, u8, u8)> {
    let widths: &[u32] = if wide { &[8, 12, 16] } else { &[8] };
    let mut out = Vec::new();
    for &w in widths {
        for field in [Field::Src, Field::Dst] {
            for from in (0..=A::BITS - w).step_by(8) {
                out.push((field, from as u8, w as u8));
            }
        }
        if w != 12 {
            for field in [Field::Sport, Field::Dport] {
                for from in (0..=16 - w).step_by(8) {
                    out.push((field, from as u8, w as u8));
                }
            }
        }
    }
    out.push((Field::Proto, 0, 8));
    out
}

/// One family's built classifier.
#[derive(Debug, Clone)]
pub(crate) struct Tree<A> {
    /// Root entry of each group.
    groups: Vec<u32>,
    cuts: Vec<Cut>,
    entries: Vec<u32>,
    blocks: Vec<Block<A>>,
    /// Per rule number, the fields checked after a block match.
    extras: Vec<Extra>,
}

/// What a tree holds, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeStats {
    /// Groups (one lookup each).
    pub groups: usize,
    /// Cut nodes.
    pub cuts: usize,
    /// Leaf blocks (four rules each).
    pub blocks: usize,
    /// Bytes of all its tables.
    pub bytes: usize,
}

struct Builder<'a, A> {
    rules: &'a [(u32, Lowered<A>)],
    config: TreeConfig,
    tree: Tree<A>,
    /// Built nodes by rule list: identical lists (a wide rule copied
    /// into many entries) share one node.
    memo: HashMap<Vec<u32>, u32>,
}

/// Most cut levels under a group root.
const MAX_DEPTH: u32 = 6;
/// Entries past which no more cuts are made (64 MiB): a rule set that no
/// cut separates well ends in long leaves, slower but bounded.
const MAX_ENTRIES: usize = 1 << 24;

impl<A: Addr> Builder<'_, A> {
    fn leaf(&mut self, list: &[u32]) -> u32 {
        let at = self.tree.blocks.len() as u32;
        let rules: Vec<_> = list
            .iter()
            .map(|&i| (self.rules[i as usize].0, &self.rules[i as usize].1))
            .collect();
        Block::push_leaf(&rules, &mut self.tree.blocks);
        at
    }

    /// A node for `list` (positions in `rules`, ascending).
    fn node(&mut self, list: Vec<u32>, depth: u32) -> u32 {
        if list.is_empty() {
            return 0;
        }
        if let Some(&e) = self.memo.get(&list) {
            return e;
        }
        let e = match self.best_cut(&list, depth) {
            Some(cut) => self.cut(cut, &list, depth),
            None => self.leaf(&list),
        };
        self.memo.insert(list, e);
        e
    }

    /// The 8-bit cut that leaves the fewest rules in its fullest entry
    /// (then the fewest copies), if any makes progress within the copy
    /// budget.
    fn best_cut(&self, list: &[u32], depth: u32) -> Option<Cut> {
        if list.len() <= self.config.leaf
            || depth >= MAX_DEPTH
            || self.tree.entries.len() >= MAX_ENTRIES
        {
            return None;
        }
        let mut best: Option<(usize, usize, Cut)> = None;
        let mut counts = vec![0i64; 257];
        for (field, from, bits) in chunks::<A>(false) {
            let cut = Cut {
                field,
                from,
                bits,
                base: 0,
            };
            counts.iter_mut().for_each(|c| *c = 0);
            for &i in list {
                let (lo, hi) = cut.span(&self.rules[i as usize].1);
                counts[lo as usize] += 1;
                counts[hi as usize + 1] -= 1;
            }
            let (mut run, mut max, mut total) = (0i64, 0usize, 0usize);
            for c in &counts[..256] {
                run += c;
                max = max.max(run as usize);
                total += run as usize;
            }
            if max < list.len()
                && total <= list.len() * self.config.replication
                && best.is_none_or(|(m, t, _)| (max, total) < (m, t))
            {
                best = Some((max, total, cut));
            }
        }
        best.map(|(_, _, c)| c)
    }

    /// Makes `cut` over `list`: its entries, each a node of the rules
    /// spanning that value.
    fn cut(&mut self, mut cut: Cut, list: &[u32], depth: u32) -> u32 {
        let n = 1usize << cut.bits;
        cut.base = self.tree.entries.len() as u32;
        self.tree.entries.resize(self.tree.entries.len() + n, 0);
        let id = self.tree.cuts.len();
        self.tree.cuts.push(cut);
        let spans: Vec<_> = list
            .iter()
            .map(|&i| (i, cut.span(&self.rules[i as usize].1)))
            .collect();
        for v in 0..n as u32 {
            let child: Vec<u32> = spans
                .iter()
                .filter(|(_, (lo, hi))| (*lo..=*hi).contains(&v))
                .map(|&(i, _)| i)
                .collect();
            let e = self.node(child, depth + 1);
            self.tree.entries[cut.base as usize + v as usize] = e;
        }
        CUT | id as u32
    }

    /// The group chunk under which most rules of `list` have one value
    /// each, counting at most a leaf's worth per value (rules piled on one
    /// value are not separated by it).
    fn best_group(&self, list: &[u32]) -> Option<(Cut, usize)> {
        let mut best: Option<(usize, Cut)> = None;
        let mut counts: HashMap<u32, usize> = HashMap::new();
        for (field, from, bits) in chunks::<A>(true) {
            let cut = Cut {
                field,
                from,
                bits,
                base: 0,
            };
            counts.clear();
            for &i in list {
                let (lo, hi) = cut.span(&self.rules[i as usize].1);
                if lo == hi {
                    *counts.entry(lo).or_default() += 1;
                }
            }
            let score: usize = counts.values().map(|&c| c.min(self.config.leaf)).sum();
            // Ties go to the narrower (smaller) table: chunks come
            // narrowest first.
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, cut));
            }
        }
        best.map(|(s, c)| (c, s))
    }

    /// A group's root: `cut` over rules that each have one value in it.
    fn group(&mut self, mut cut: Cut, list: &[u32]) -> u32 {
        let n = 1usize << cut.bits;
        cut.base = self.tree.entries.len() as u32;
        self.tree.entries.resize(self.tree.entries.len() + n, 0);
        let id = self.tree.cuts.len();
        self.tree.cuts.push(cut);
        let mut buckets: HashMap<u32, Vec<u32>> = HashMap::new();
        for &i in list {
            buckets
                .entry(cut.span(&self.rules[i as usize].1).0)
                .or_default()
                .push(i);
        }
        let mut values: Vec<_> = buckets.into_iter().collect();
        values.sort_unstable_by_key(|(v, _)| *v);
        for (v, rules) in values {
            let e = self.node(rules, 1);
            self.tree.entries[cut.base as usize + v as usize] = e;
        }
        CUT | id as u32
    }
}

impl<A: Addr> Tree<A> {
    /// Builds the classifier of `rules` (rule number, rule; numbers
    /// ascending).
    pub fn build(rules: &[(u32, Lowered<A>)], config: TreeConfig) -> Tree<A> {
        let top = rules.last().map_or(0, |r| r.0 as usize + 1);
        let mut extras = Vec::new();
        if rules.iter().any(|r| r.1.extra.is_some()) {
            extras = vec![Extra::default(); top];
            for (id, r) in rules {
                if let Some(e) = r.extra {
                    extras[*id as usize] = e;
                }
            }
        }
        let mut b = Builder {
            rules,
            config,
            tree: Tree {
                groups: Vec::new(),
                cuts: Vec::new(),
                entries: Vec::new(),
                // Block 0: the empty leaf, so that entry 0 means nothing.
                blocks: vec![Block::empty()],
                extras,
            },
            memo: HashMap::new(),
        };
        let mut rest: Vec<u32> = (0..rules.len() as u32).collect();
        while b.tree.groups.len() + 1 < config.max_groups && rest.len() > 2 * config.leaf {
            let Some((cut, score)) = b.best_group(&rest) else {
                break;
            };
            // A group costs every packet a lookup: worth it only if it
            // takes a good share of what is left.
            if score < (rest.len() / 8).max(config.leaf) {
                break;
            }
            let (mine, others): (Vec<u32>, Vec<u32>) = rest.iter().partition(|&&i| {
                let (lo, hi) = cut.span(&rules[i as usize].1);
                lo == hi
            });
            let root = b.group(cut, &mine);
            b.tree.groups.push(root);
            rest = others;
        }
        if !rest.is_empty() {
            let root = b.node(rest, 0);
            b.tree.groups.push(root);
        }
        b.tree
    }

    /// Sizes, for reports.
    pub fn stats(&self) -> TreeStats {
        TreeStats {
            groups: self.groups.len(),
            cuts: self.cuts.len(),
            blocks: self.blocks.len(),
            bytes: self.entries.len() * 4
                + self.blocks.len() * size_of::<Block<A>>()
                + self.cuts.len() * size_of::<Cut>()
                + self.extras.len() * size_of::<Extra>(),
        }
    }

    /// The first block of the leaf `key` reaches from entry `e`.
    #[inline(always)]
    fn descend(&self, mut e: u32, key: &Key<A>) -> u32 {
        while e & CUT != 0 {
            e = match self.cuts.get((e & !CUT) as usize) {
                Some(c) => self.entries.get(c.index(key)).copied().unwrap_or(0),
                None => 0,
            };
        }
        e
    }

    /// The first rule matching `key`, or `NONE`.
    pub fn classify(&self, key: &Key<A>) -> u32 {
        let mut best = NONE;
        for &g in &self.groups {
            let at = self.descend(g, key);
            if at != 0 {
                best = scan(&self.blocks, &self.extras, at as usize, key, best);
            }
        }
        best
    }

    /// The first rule matching each key into `out` (`NONE` for none),
    /// a group at a time across the whole batch, so that the cache misses
    /// of different packets overlap: first every packet's root entry is
    /// asked for, then read (walking any cut below) and its leaf asked
    /// for, then the leaves are scanned.
    pub fn classify_batch(&self, keys: &[Key<A>], out: &mut [u32]) {
        let n = keys.len().min(out.len()).min(BATCH);
        let (keys, out) = (&keys[..n], &mut out[..n]);
        out.iter_mut().for_each(|o| *o = NONE);
        let mut leaf = [0u32; BATCH];
        for &g in &self.groups {
            let root = (g & CUT != 0)
                .then(|| self.cuts.get((g & !CUT) as usize))
                .flatten();
            match root {
                Some(c) => {
                    for k in keys {
                        if let Some(e) = self.entries.get(c.index(k)) {
                            prefetch(e);
                        }
                    }
                    for (l, k) in leaf.iter_mut().zip(keys) {
                        let e = self.entries.get(c.index(k)).copied().unwrap_or(0);
                        *l = self.descend(e, k);
                        if let Some(b) = self.blocks.get(*l as usize) {
                            prefetch(b);
                        }
                    }
                }
                None => leaf[..n].iter_mut().for_each(|l| *l = g),
            }
            for ((o, k), &l) in out.iter_mut().zip(keys).zip(&leaf) {
                if l != 0 {
                    *o = scan(&self.blocks, &self.extras, l as usize, k, *o);
                }
            }
        }
    }
}

/// Most keys [`Tree::classify_batch`] takes at once: a vector.
pub const BATCH: usize = 256;
