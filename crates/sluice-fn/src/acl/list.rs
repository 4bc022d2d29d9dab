//! An access list built for the data path: the checked rules, their
//! actions, and one classifier per address family. Immutable once built;
//! a new list is built beside it and swapped in (`shared.rs`).

use super::block::NONE;
use super::key::{Addr, Key};
use super::rule::{Action, Family, Lowered, Rule, RuleError};
use super::tree::{BATCH, Tree, TreeConfig, TreeStats};

/// The rule a packet matched: its position in the list, or none.
pub type Match = u32;

/// What [`Acl::classify4`] and friends answer when no rule matches.
pub const NO_MATCH: Match = NONE;

/// A built access list: ordered rules, first match wins, `default` when
/// none matches.
#[derive(Debug, Clone)]
pub struct Acl {
    rules: Vec<Rule>,
    actions: Vec<Action>,
    default: Action,
    v4: Tree<u32>,
    v6: Tree<u128>,
    l2: bool,
}

/// Rules of one family lowered for its classifier.
pub(crate) fn lowered<A: Addr>(
    rules: &[Rule],
    families: &[Family],
    want: Family,
) -> Vec<(u32, Lowered<A>)> {
    rules
        .iter()
        .zip(families)
        .enumerate()
        .filter(|(_, (_, f))| **f == want || **f == Family::Both)
        .map(|(i, (r, _))| (i as u32, Lowered::from_rule(r)))
        .collect()
}

impl Acl {
    /// Checks and builds `rules`; the first bad rule refuses the whole list.
    pub fn new(rules: Vec<Rule>, default: Action) -> Result<Acl, RuleError> {
        Acl::with_config(rules, default, TreeConfig::default())
    }

    /// [`Acl::new`] with a tree shape of one's own (for measurements).
    pub fn with_config(
        rules: Vec<Rule>,
        default: Action,
        config: TreeConfig,
    ) -> Result<Acl, RuleError> {
        if rules.len() >= NONE as usize {
            // Rule numbers are u32 with one value kept for "none"; no
            // list comes near.
            return Err(RuleError::OutOfRange {
                index: rules.len(),
                field: "rule count",
                value: u16::MAX,
                max: u16::MAX,
            });
        }
        let families = rules
            .iter()
            .enumerate()
            .map(|(i, r)| r.check(i))
            .collect::<Result<Vec<_>, _>>()?;
        let v4 = Tree::build(&lowered::<u32>(&rules, &families, Family::V4), config);
        let v6 = Tree::build(&lowered::<u128>(&rules, &families, Family::V6), config);
        Ok(Acl {
            actions: rules.iter().map(|r| r.action).collect(),
            l2: rules
                .iter()
                .any(|r| r.src_mac.is_some() || r.dst_mac.is_some() || r.vlan.is_some()),
            rules,
            default,
            v4,
            v6,
        })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether some rule matches on L2 fields (so keys need them).
    pub fn needs_l2(&self) -> bool {
        self.l2
    }

    /// What the list decides for a match.
    #[inline]
    pub fn action(&self, m: Match) -> Action {
        self.actions
            .get(m as usize)
            .copied()
            .unwrap_or(self.default)
    }

    /// The first IPv4 rule matching `key`.
    pub fn classify4(&self, key: &Key<u32>) -> Match {
        self.v4.classify(key)
    }

    /// The first IPv6 rule matching `key`.
    pub fn classify6(&self, key: &Key<u128>) -> Match {
        self.v6.classify(key)
    }

    /// The first IPv4 rule matching each key of `keys` into `out` (the
    /// shorter decides how many), a vector ([`MAX_BATCH`]) at a time.
    #[inline]
    pub fn classify4_batch(&self, keys: &[Key<u32>], out: &mut [Match]) {
        for (k, o) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            self.v4.classify_batch(k, o);
        }
    }

    /// The first IPv6 rule matching each key, as [`Acl::classify4_batch`].
    #[inline]
    pub fn classify6_batch(&self, keys: &[Key<u128>], out: &mut [Match]) {
        for (k, o) in keys.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            self.v6.classify_batch(k, o);
        }
    }

    /// Sizes of the IPv4 and IPv6 classifiers.
    pub fn stats(&self) -> (TreeStats, TreeStats) {
        (self.v4.stats(), self.v6.stats())
    }
}

/// Most keys a batch call classifies.
pub const MAX_BATCH: usize = BATCH;
