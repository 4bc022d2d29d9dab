//! The reference: every rule in order until one matches. What the
//! classifier must answer, key for key, and the baseline it is measured
//! against.

use super::block::NONE;
use super::key::{Addr, Key};
use super::list::lowered;
use super::rule::{Family, Lowered, Rule, RuleError};

/// A linear scan of one family's rules.
#[derive(Debug, Clone)]
pub struct LinearScan<A> {
    rules: Vec<(u32, Lowered<A>)>,
}

impl<A: Addr> LinearScan<A> {
    /// The scan of `rules` for family `A` (`u32`: IPv4, `u128`: IPv6),
    /// checked like [`super::Acl::new`] checks them.
    pub fn new(rules: &[Rule]) -> Result<LinearScan<A>, RuleError> {
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
        Ok(LinearScan {
            rules: lowered(rules, &families, want),
        })
    }

    /// The first rule matching `key`, or [`super::NO_MATCH`].
    pub fn classify(&self, key: &Key<A>) -> u32 {
        self.rules
            .iter()
            .find(|(_, r)| r.matches(key))
            .map_or(NONE, |r| r.0)
    }
}
