//! Tuple space search, kept as the yardstick the chosen classifier was
//! measured against (`benches/acl_peer.rs`), not used on the data path.
//!
//! Rules are grouped by their (source length, destination length) tuple;
//! each tuple is a hash table on the masked addresses, whose buckets hold
//! the rules (in order) to check on the other fields. Tables are probed
//! best rule first, and the search stops at a table whose best rule comes
//! after the match already found (VPP's "hash" ACL mode works this way).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::block::NONE;
use super::key::{Addr, Key};
use super::list::lowered;
use super::rule::{Family, Lowered, Rule, RuleError};

/// A multiplicative hash: the keys are addresses, not attacker-chosen
/// strings, and this is a yardstick.
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v.into());
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }
}

type Table<A> = HashMap<(A, A), Vec<(u32, Lowered<A>)>, BuildHasherDefault<Mix>>;

/// One tuple: the masks and the table, with its best (smallest) rule.
#[derive(Debug)]
struct Tuple<A> {
    src_mask: A,
    dst_mask: A,
    best: u32,
    table: Table<A>,
}

/// Tuple space search over one family's rules.
#[derive(Debug)]
pub struct TupleSpace<A> {
    tuples: Vec<Tuple<A>>,
}

impl<A: Addr> TupleSpace<A> {
    /// Builds the tuples of `rules` for family `A`.
    pub fn new(rules: &[Rule]) -> Result<TupleSpace<A>, RuleError> {
        let families = rules
            .iter()
            .enumerate()
            .map(|(i, r)| r.check(i))
            .collect::<Result<Vec<_>, _>>()?;
        let want = if A::BITS == 32 {
            Family::V4
        } else {
            Family::V6
        };
        let mut tuples: Vec<Tuple<A>> = Vec::new();
        for (id, r) in lowered::<A>(rules, &families, want) {
            let t = match tuples
                .iter_mut()
                .position(|t| t.src_mask == r.src_mask && t.dst_mask == r.dst_mask)
            {
                Some(i) => &mut tuples[i],
                None => {
                    tuples.push(Tuple {
                        src_mask: r.src_mask,
                        dst_mask: r.dst_mask,
                        best: id,
                        table: Table::default(),
                    });
                    tuples.last_mut().expect("just pushed")
                }
            };
            t.table.entry((r.src, r.dst)).or_default().push((id, r));
        }
        tuples.sort_by_key(|t| t.best);
        Ok(TupleSpace { tuples })
    }

    /// How many tuples (hash tables) a miss probes.
    pub fn tuples(&self) -> usize {
        self.tuples.len()
    }

    /// The first rule matching `key`, or `NONE`.
    pub fn classify(&self, key: &Key<A>) -> u32 {
        let mut best = NONE;
        for t in &self.tuples {
            if t.best >= best {
                break;
            }
            if let Some(rules) = t.table.get(&(key.src & t.src_mask, key.dst & t.dst_mask))
                && let Some(&(id, _)) = rules.iter().find(|(_, r)| r.matches(key))
            {
                best = best.min(id);
            }
        }
        best
    }

    /// [`Self::classify`] for each key.
    pub fn classify_batch(&self, keys: &[Key<A>], out: &mut [u32]) {
        for (o, k) in out.iter_mut().zip(keys) {
            *o = self.classify(k);
        }
    }
}
