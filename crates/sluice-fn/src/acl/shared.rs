//! The list the workers classify with, replaced whole while they run.
//!
//! A built [`Acl`] is immutable; the control plane builds the next one
//! beside it and swaps the pointer. A worker loads the pointer once per
//! vector and classifies the whole vector with that list, so a packet is
//! never judged half by the old rules and half by the new. The old list is
//! freed when the last worker still holding it lets go (reference counts
//! with `arc-swap`'s lock-free loads: no lock and no atomic read-modify-
//! write on a shared line in the common case).

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::list::Acl;

/// An [`Acl`] shared by the workers and swapped by the control plane.
#[derive(Debug)]
pub struct SharedAcl {
    current: ArcSwap<Acl>,
}

impl SharedAcl {
    /// Workers start with `acl`.
    pub fn new(acl: Acl) -> SharedAcl {
        SharedAcl {
            current: ArcSwap::from_pointee(acl),
        }
    }

    /// The list in force now; hold it for one vector, not longer (a held
    /// list is kept alive after a swap).
    #[inline]
    pub fn load(&self) -> Guard<Arc<Acl>> {
        self.current.load()
    }

    /// Puts `acl` in force; returns the list it replaces, which lives on
    /// while any worker still holds it.
    pub fn swap(&self, acl: Arc<Acl>) -> Arc<Acl> {
        self.current.swap(acl)
    }

    /// Puts `acl` in force.
    pub fn store(&self, acl: Acl) {
        self.current.store(Arc::new(acl));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Weak};

    use super::*;
    use crate::acl::{Action, Key, PortRange, Rule};

    /// Generation `g`: `g` rules that miss (port 1), then one that matches
    /// port 80 with an action that alternates, then one that matches all.
    fn generation(g: usize) -> Acl {
        let mut rules = vec![
            Rule {
                dport: PortRange::exactly(1),
                ..Rule::any(Action::Deny)
            };
            g
        ];
        rules.push(Rule {
            dport: PortRange::exactly(80),
            ..Rule::any(if g.is_multiple_of(2) {
                Action::Permit
            } else {
                Action::Deny
            })
        });
        rules.push(Rule::any(Action::PermitReflect));
        Acl::new(rules, Action::Deny).unwrap()
    }

    #[test]
    fn swapped_under_a_reader_which_sees_whole_lists_and_frees_none_it_holds() {
        let shared = Arc::new(SharedAcl::new(generation(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicUsize::new(0));
        let reader = {
            let (shared, stop, seen) = (shared.clone(), stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let keys = [Key::<u32> {
                    dport: 80,
                    proto: 6,
                    ..Key::default()
                }; 64];
                let mut out = [0u32; 64];
                let mut last = 0;
                let mut generations = 0;
                while !stop.load(Ordering::Relaxed) {
                    let acl = shared.load();
                    // The list is whole: its port-80 rule is where its
                    // length says, for every key of the vector.
                    let g = acl.rules().len() - 2;
                    acl.classify4_batch(&keys, &mut out);
                    assert!(out.iter().all(|&m| m as usize == g), "{out:?} for {g}");
                    let want = if g.is_multiple_of(2) {
                        Action::Permit
                    } else {
                        Action::Deny
                    };
                    assert_eq!(acl.action(out[0]), want);
                    // Generations only move forward.
                    assert!(g >= last);
                    if g != last {
                        generations += 1;
                    }
                    last = g;
                }
                seen.store(generations, Ordering::Relaxed);
            })
        };
        let mut old: Vec<Weak<Acl>> = Vec::new();
        for g in 1..200 {
            let prev = shared.swap(Arc::new(generation(g)));
            old.push(Arc::downgrade(&prev));
            drop(prev);
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert!(seen.load(Ordering::Relaxed) > 0, "the reader saw no swap");
        // Every replaced list is gone once no reader holds it.
        assert!(old.iter().all(|w| w.upgrade().is_none()));
        assert_eq!(shared.load().rules().len(), 199 + 2);
    }
}
