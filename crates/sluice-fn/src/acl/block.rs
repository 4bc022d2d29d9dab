//! Leaves of the classifier: rules laid out four to a block, field by
//! field, so that one pass of branch-free compares tests all four (the
//! compiler turns the lane loop into SIMD compares) and the first set bit
//! of the result is the first match.
//!
//! A leaf is a run of blocks in rule order; the last block of the run says
//! so. Padding lanes can never match (source mask 0, value 1).

use super::key::{Addr, Key};
use super::rule::{Extra, Lowered};

/// Rules per block.
pub(crate) const LANES: usize = 4;

/// Rule number of a padding lane, and "no match".
pub(crate) const NONE: u32 = u32::MAX;

/// Four rules, field by field.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Block<A> {
    src: [A; LANES],
    src_mask: [A; LANES],
    dst: [A; LANES],
    dst_mask: [A; LANES],
    /// Port ranges as low end and span: `p - lo <= span` (wrapping) is
    /// one subtraction and one compare.
    sport_lo: [u16; LANES],
    sport_span: [u16; LANES],
    dport_lo: [u16; LANES],
    dport_span: [u16; LANES],
    proto: [u8; LANES],
    proto_mask: [u8; LANES],
    /// Lanes whose rule has extra fields to check after the rest matched.
    extra: u8,
    /// Whether this block ends its leaf.
    last: bool,
    /// Rule numbers in ascending order (priority), `NONE` for padding.
    rule: [u32; LANES],
}

impl<A: Addr> Block<A> {
    /// A block that matches nothing and ends its leaf.
    pub fn empty() -> Block<A> {
        Block {
            src: [A::ONE; LANES],
            src_mask: [A::ZERO; LANES],
            dst: [A::ZERO; LANES],
            dst_mask: [A::ZERO; LANES],
            sport_lo: [0; LANES],
            sport_span: [0; LANES],
            dport_lo: [0; LANES],
            dport_span: [0; LANES],
            proto: [0; LANES],
            proto_mask: [0; LANES],
            extra: 0,
            last: true,
            rule: [NONE; LANES],
        }
    }

    /// Lays `rules` (ascending numbers) out as a leaf: appended to `out`.
    pub fn push_leaf(rules: &[(u32, &Lowered<A>)], out: &mut Vec<Block<A>>) {
        let chunks = rules.chunks(LANES);
        let n = chunks.len();
        for (c, chunk) in chunks.enumerate() {
            let mut b = Block::empty();
            b.last = c + 1 == n;
            for (i, &(id, r)) in chunk.iter().enumerate() {
                b.src[i] = r.src;
                b.src_mask[i] = r.src_mask;
                b.dst[i] = r.dst;
                b.dst_mask[i] = r.dst_mask;
                b.sport_lo[i] = r.sport.0;
                b.sport_span[i] = r.sport.1 - r.sport.0;
                b.dport_lo[i] = r.dport.0;
                b.dport_span[i] = r.dport.1 - r.dport.0;
                b.proto[i] = r.proto;
                b.proto_mask[i] = r.proto_mask;
                b.rule[i] = id;
                if r.extra.is_some() {
                    b.extra |= 1 << i;
                }
            }
            out.push(b);
        }
    }

    /// Lanes whose 5-tuple matches `k`, a bit each. The source address
    /// is compared first for all four lanes and most blocks stop there
    /// (in a leaf reached by the destination, or scanned whole, few rules
    /// share the packet's source); comparing every field of every lane
    /// cost three times as much.
    #[inline(always)]
    fn lanes(&self, k: &Key<A>) -> u32 {
        let mut m = 0u32;
        for i in 0..LANES {
            m |= u32::from(k.src & self.src_mask[i] == self.src[i]) << i;
        }
        let mut left = m;
        while left != 0 {
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            let ok = (k.dst & self.dst_mask[i] == self.dst[i])
                & (k.sport.wrapping_sub(self.sport_lo[i]) <= self.sport_span[i])
                & (k.dport.wrapping_sub(self.dport_lo[i]) <= self.dport_span[i])
                & (k.proto & self.proto_mask[i] == self.proto[i]);
            if !ok {
                m &= !(1 << i);
            }
        }
        m
    }
}

/// The first rule matching `k` in the leaf starting at block `at`, if it
/// comes before `best`; else `best`. Blocks whose first rule is not
/// before `best` are not looked at.
#[inline(always)]
pub(crate) fn scan<A: Addr>(
    blocks: &[Block<A>],
    extras: &[Extra],
    mut at: usize,
    k: &Key<A>,
    best: u32,
) -> u32 {
    while let Some(b) = blocks.get(at) {
        if b.rule[0] >= best {
            return best;
        }
        let mut m = b.lanes(k);
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            let r = b.rule[i];
            if b.extra & (1 << i) == 0 || extras.get(r as usize).is_some_and(|e| e.matches(k)) {
                return r.min(best);
            }
            m &= m - 1;
        }
        if b.last {
            break;
        }
        at += 1;
    }
    best
}
