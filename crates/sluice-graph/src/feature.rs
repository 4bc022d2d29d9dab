//! Feature arcs: the places on a packet's path where optional functions
//! run, chosen per interface, in a fixed order.
//!
//! An arc (e.g. `ip4-unicast`, between `ip4-input` and `ip4-lookup`) has
//! the ordered list of feature nodes that may stand on it (e.g.
//! `ip4-acl-in`, then `ip4-conntrack`) and the node(s) it ends at: one
//! for a receive arc, each interface's output for a transmit arc. Which
//! features run for which interface is an [`ArcTable`], immutable and
//! swapped whole by the control plane ([`FeatureArc::set`]); a node loads
//! it once per vector, so enabling or disabling a feature never pauses a
//! worker and a vector is never routed half by one table and half by the
//! next.
//!
//! Every node on the arc declares the same next nodes after its own:
//! [`FeatureArc::next_names`], the features then the ends. The node where
//! the arc starts sends a packet to [`ArcTable::first`] for its interface;
//! each feature sends it to [`ArcTable::after`] itself (through
//! [`Onward`]). The table holds, per interface and position, the next
//! index ready to use, so a step costs one load. With no feature enabled
//! anywhere the start node sees [`FeatureArc::active`] false (one plain
//! load of a flag, not even the table's reference count) once per vector
//! and keeps its old path: nothing is paid per packet.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use sluice_buf::Meta;
use thiserror::Error;

use crate::iface::{IfIndex, Interfaces};

/// Features an arc can have at most (one bit each per interface).
pub const MAX_FEATURES: usize = 64;

/// What the table answers for a packet that has nowhere to go (an
/// interface the arc does not know, or no output): an index no node
/// declares, which [`crate::Next::send`] drops as `unhandled`.
pub const NO_NEXT: usize = usize::MAX;

/// Which interface of a packet an arc is chosen by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The interface it came in on (`meta.rx_if`).
    Rx,
    /// The interface it goes out of (`meta.tx_if`).
    Tx,
}

impl Side {
    /// The packet's interface on this side.
    #[inline(always)]
    pub fn of(self, meta: &Meta) -> IfIndex {
        match self {
            Side::Rx => meta.rx_if,
            Side::Tx => meta.tx_if,
        }
    }
}

/// A change an arc refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeatureError {
    /// A feature the arc does not have.
    #[error("arc `{arc}` has no feature `{feature}`")]
    UnknownFeature {
        /// The arc.
        arc: String,
        /// The feature named.
        feature: String,
    },
    /// An interface index beyond the arc's interfaces.
    #[error("arc `{arc}` has no interface {index}")]
    Interface {
        /// The arc.
        arc: String,
        /// The index given.
        index: IfIndex,
    },
    /// More features than [`MAX_FEATURES`], or one named twice.
    #[error("arc `{arc}`: {why}")]
    Features {
        /// The arc.
        arc: String,
        /// What is wrong with the list.
        why: String,
    },
}

/// Which features run on an arc, per interface, as next indices ready to
/// use. Immutable: a change builds a new table.
#[derive(Debug)]
pub struct ArcTable {
    /// Positions per interface: features + 1.
    width: usize,
    /// `[interface * width + position]`: the next index (into the arc's
    /// next names) a packet at `position` goes to.
    next: Box<[u32]>,
    /// Per interface: its enabled features, one bit each.
    enabled: Box<[u64]>,
    /// Whether any interface has any feature.
    any: bool,
}

impl ArcTable {
    fn build(features: usize, end_of_if: &[Option<u32>], enabled: &[u64]) -> ArcTable {
        let width = features + 1;
        let mut next = vec![u32::MAX; end_of_if.len() * width];
        for (i, (&end, &mask)) in end_of_if.iter().zip(enabled).enumerate() {
            let row = &mut next[i * width..(i + 1) * width];
            // From the last position back: the end, or the first enabled
            // feature at or after each position.
            let mut to = end.map_or(u32::MAX, |e| features as u32 + e);
            for pos in (0..width).rev() {
                if pos < features && mask & (1 << pos) != 0 {
                    to = pos as u32;
                }
                row[pos] = to;
            }
        }
        ArcTable {
            width,
            next: next.into_boxed_slice(),
            enabled: enabled.into(),
            any: enabled.iter().any(|&m| m != 0),
        }
    }

    /// Whether no interface has any feature enabled: the start node may
    /// send everything straight to the arc's end.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    #[inline(always)]
    fn at(&self, interface: IfIndex, pos: usize) -> usize {
        match self.next.get(interface as usize * self.width + pos) {
            Some(&n) if n != u32::MAX => n as usize,
            _ => NO_NEXT,
        }
    }

    /// Where a packet of `interface` goes when it enters the arc: the
    /// next index of its first enabled feature, or of the end.
    #[inline(always)]
    pub fn first(&self, interface: IfIndex) -> usize {
        self.at(interface, 0)
    }

    /// Where a packet of `interface` goes after feature `feature` (its
    /// position in the arc).
    #[inline(always)]
    pub fn after(&self, feature: usize, interface: IfIndex) -> usize {
        if feature + 1 >= self.width {
            return NO_NEXT;
        }
        self.at(interface, feature + 1)
    }

    /// The features enabled on `interface`, one bit each by position.
    pub fn enabled(&self, interface: IfIndex) -> u64 {
        self.enabled.get(interface as usize).copied().unwrap_or(0)
    }
}

/// One arc: its features in order, its ends, and the table in force.
#[derive(Debug)]
pub struct FeatureArc {
    name: String,
    side: Side,
    features: Vec<String>,
    ends: Vec<String>,
    /// Per interface: its end, by position in `ends`.
    end_of_if: Vec<Option<u32>>,
    table: ArcSwap<ArcTable>,
    /// Whether any interface has a feature: what start nodes read first,
    /// so that an arc nobody uses costs them one load a vector.
    active: AtomicBool,
    /// Serialises the control plane's changes (workers never take it).
    writer: Mutex<()>,
}

impl FeatureArc {
    fn new(
        name: &str,
        side: Side,
        features: &[&str],
        ends: Vec<String>,
        end_of_if: Vec<Option<u32>>,
    ) -> Result<Arc<FeatureArc>, FeatureError> {
        let bad = |why: String| FeatureError::Features {
            arc: name.to_string(),
            why,
        };
        if features.len() > MAX_FEATURES {
            return Err(bad(format!(
                "{} features, at most {MAX_FEATURES}",
                features.len()
            )));
        }
        if let Some((k, f)) = features
            .iter()
            .enumerate()
            .find(|(k, f)| features[..*k].contains(f))
        {
            return Err(bad(format!("feature `{f}` named twice (position {k})")));
        }
        let table = ArcTable::build(features.len(), &end_of_if, &vec![0; end_of_if.len()]);
        Ok(Arc::new(FeatureArc {
            name: name.to_string(),
            side,
            features: features.iter().map(|f| f.to_string()).collect(),
            ends,
            end_of_if,
            table: ArcSwap::from_pointee(table),
            active: AtomicBool::new(false),
            writer: Mutex::new(()),
        }))
    }

    /// A receive arc: chosen by `rx_if` over `interfaces` interfaces,
    /// ending at node `end` for all of them.
    pub fn receive(
        name: &str,
        features: &[&str],
        end: &str,
        interfaces: usize,
    ) -> Result<Arc<FeatureArc>, FeatureError> {
        FeatureArc::new(
            name,
            Side::Rx,
            features,
            vec![end.to_string()],
            vec![Some(0); interfaces],
        )
    }

    /// A transmit arc: chosen by `tx_if`, ending at each interface's
    /// output node (in interface order, as [`Interfaces`] lists them).
    pub fn transmit(
        name: &str,
        features: &[&str],
        interfaces: &Interfaces,
    ) -> Result<Arc<FeatureArc>, FeatureError> {
        let mut ends = Vec::new();
        let end_of_if = interfaces
            .iter()
            .map(|i| {
                i.output_node.as_ref().map(|o| {
                    ends.push(o.clone());
                    ends.len() as u32 - 1
                })
            })
            .collect();
        FeatureArc::new(name, Side::Tx, features, ends, end_of_if)
    }

    /// The arc's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which interface of a packet chooses its features.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The features, in the order they run.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// A feature's position, if the arc has it.
    pub fn position(&self, feature: &str) -> Option<usize> {
        self.features.iter().position(|f| f == feature)
    }

    /// The next nodes every node on the arc declares (after its own):
    /// the features, then the ends. Table answers index this list.
    pub fn next_names(&self) -> Vec<String> {
        self.features.iter().chain(&self.ends).cloned().collect()
    }

    /// Interfaces the arc knows.
    pub fn interfaces(&self) -> usize {
        self.end_of_if.len()
    }

    /// Whether any interface has a feature enabled. A start node that
    /// reads false sends the vector straight to the end; one that reads
    /// true loads the table (which may since have emptied: it then finds
    /// every interface going to the end). Either way a change is seen by
    /// the next vector at the latest.
    #[inline(always)]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The table in force: load it once per vector and let it go after.
    #[inline(always)]
    pub fn load(&self) -> Guard<Arc<ArcTable>> {
        self.table.load()
    }

    /// The features enabled on `interface`, in arc order.
    pub fn enabled(&self, interface: IfIndex) -> Vec<String> {
        let mask = self.table.load().enabled(interface);
        self.features
            .iter()
            .enumerate()
            .filter(|(k, _)| mask & (1 << k) != 0)
            .map(|(_, f)| f.clone())
            .collect()
    }

    /// Makes `features` (any order: they run in the arc's) the ones
    /// enabled on `interface`, all at once, or changes nothing.
    pub fn set(&self, interface: IfIndex, features: &[&str]) -> Result<(), FeatureError> {
        let mut mask = 0u64;
        for f in features {
            let k = self
                .position(f)
                .ok_or_else(|| FeatureError::UnknownFeature {
                    arc: self.name.clone(),
                    feature: f.to_string(),
                })?;
            mask |= 1 << k;
        }
        self.update(interface, |_| mask)
    }

    /// Enables `feature` on `interface` (already enabled: no change).
    pub fn enable(&self, interface: IfIndex, feature: &str) -> Result<(), FeatureError> {
        let k = self.position_or_err(feature)?;
        self.update(interface, |m| m | 1 << k)
    }

    /// Disables `feature` on `interface` (not enabled: no change).
    pub fn disable(&self, interface: IfIndex, feature: &str) -> Result<(), FeatureError> {
        let k = self.position_or_err(feature)?;
        self.update(interface, |m| m & !(1 << k))
    }

    fn position_or_err(&self, feature: &str) -> Result<usize, FeatureError> {
        self.position(feature)
            .ok_or_else(|| FeatureError::UnknownFeature {
                arc: self.name.clone(),
                feature: feature.to_string(),
            })
    }

    /// Builds the next table with `interface`'s features changed by `f`
    /// (off the data path) and swaps it in.
    fn update(&self, interface: IfIndex, f: impl FnOnce(u64) -> u64) -> Result<(), FeatureError> {
        let i = interface as usize;
        if i >= self.end_of_if.len() {
            return Err(FeatureError::Interface {
                arc: self.name.clone(),
                index: interface,
            });
        }
        // A poisoned lock only means another change panicked; the table
        // itself is always whole.
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.table.load_full();
        let mut enabled = old.enabled.to_vec();
        enabled[i] = f(enabled[i]);
        if enabled[i] != old.enabled[i] {
            let t = ArcTable::build(self.features.len(), &self.end_of_if, &enabled);
            let any = t.any;
            // The table first: a start node that sees the flag finds it.
            self.table.store(Arc::new(t));
            self.active.store(any, Ordering::Release);
        }
        Ok(())
    }
}

/// Where a node sends what it lets through: one fixed next node, or on
/// along a feature arc after itself.
#[derive(Debug, Clone)]
pub enum Onward {
    /// Always this node (a node used off any arc, e.g. in a test chain).
    To(String),
    /// The next feature enabled for the packet's interface after this
    /// one, or the arc's end.
    Arc {
        /// The arc.
        arc: Arc<FeatureArc>,
        /// This feature's position on it.
        position: usize,
    },
}

impl Onward {
    /// On along `arc`, after its feature `feature`.
    pub fn after(arc: &Arc<FeatureArc>, feature: &str) -> Result<Onward, FeatureError> {
        Ok(Onward::Arc {
            position: arc.position_or_err(feature)?,
            arc: arc.clone(),
        })
    }

    /// The next nodes to declare, in the order [`Route::next`] indexes.
    pub fn names(&self) -> Vec<String> {
        match self {
            Onward::To(n) => vec![n.clone()],
            Onward::Arc { arc, .. } => arc.next_names(),
        }
    }

    /// The routing in force, for one vector.
    #[inline(always)]
    pub fn load(&self) -> Route {
        match self {
            Onward::To(_) => Route::Fixed,
            Onward::Arc { arc, position } => Route::Arc {
                table: arc.load(),
                position: *position,
                side: arc.side(),
            },
        }
    }
}

/// [`Onward`] for one vector.
pub enum Route {
    /// Next index 0 for every packet.
    Fixed,
    /// Along an arc's table.
    Arc {
        /// The table loaded for this vector.
        table: Guard<Arc<ArcTable>>,
        /// The feature's position.
        position: usize,
        /// Which interface chooses.
        side: Side,
    },
}

impl Route {
    /// The next index for a packet with `meta`.
    #[inline(always)]
    pub fn next(&self, meta: &Meta) -> usize {
        match self {
            Route::Fixed => 0,
            Route::Arc {
                table,
                position,
                side,
            } => table.after(*position, side.of(meta)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arc() -> Arc<FeatureArc> {
        FeatureArc::receive("ip4-unicast", &["a", "b", "c"], "end", 3).unwrap()
    }

    #[test]
    fn a_table_sends_each_interface_through_its_features_in_arc_order() {
        let arc = arc();
        assert!(arc.load().is_empty() && !arc.active());
        assert_eq!(arc.load().first(0), 3, "nothing enabled: the end");
        // Given out of order, run in the arc's order.
        arc.set(1, &["c", "a"]).unwrap();
        arc.enable(2, "b").unwrap();
        assert!(arc.active());
        let t = arc.load();
        assert!(!t.is_empty());
        assert_eq!((t.first(0), t.after(0, 0)), (3, 3));
        assert_eq!(t.first(1), 0);
        assert_eq!(t.after(0, 1), 2);
        assert_eq!(t.after(2, 1), 3);
        assert_eq!((t.first(2), t.after(1, 2)), (1, 3));
        assert_eq!(arc.enabled(1), ["a", "c"]);
        // Out of range: nowhere, which the graph drops as unhandled.
        assert_eq!(t.first(7), NO_NEXT);
        assert_eq!(t.after(3, 1), NO_NEXT);
        drop(t);
        arc.disable(1, "a").unwrap();
        arc.disable(1, "c").unwrap();
        arc.disable(2, "b").unwrap();
        assert!(arc.load().is_empty() && !arc.active());
    }

    #[test]
    fn refusals_change_nothing() {
        let arc = arc();
        arc.set(0, &["b"]).unwrap();
        assert!(matches!(
            arc.set(0, &["a", "zz"]),
            Err(FeatureError::UnknownFeature { .. })
        ));
        assert!(matches!(
            arc.enable(3, "a"),
            Err(FeatureError::Interface { index: 3, .. })
        ));
        assert_eq!(arc.enabled(0), ["b"]);
        assert!(FeatureArc::receive("x", &["a", "a"], "end", 1).is_err());
        let many: Vec<String> = (0..65).map(|k| k.to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(FeatureArc::receive("x", &many, "end", 1).is_err());
    }

    #[test]
    fn a_transmit_arc_ends_at_each_interfaces_output() {
        let mut ifs = Interfaces::new();
        let mac = sluice_wire::MacAddr([2, 0, 0, 0, 0, 1]);
        ifs.add("a", "pg", mac, 1500, None);
        ifs.add("b", "sink", mac, 1500, Some("b-output".into()));
        ifs.add("c", "sink", mac, 1500, Some("c-output".into()));
        let arc = FeatureArc::transmit("ip4-output", &["acl"], &ifs).unwrap();
        assert_eq!(arc.next_names(), ["acl", "b-output", "c-output"]);
        arc.enable(2, "acl").unwrap();
        let t = arc.load();
        assert_eq!(t.first(0), NO_NEXT, "a receive-only interface");
        assert_eq!(t.first(1), 1);
        assert_eq!(t.first(2), 0);
        assert_eq!(t.after(0, 2), 2);
        let onward = Onward::after(&arc, "acl").unwrap();
        let meta = Meta {
            tx_if: 2,
            ..Meta::default()
        };
        assert_eq!(onward.load().next(&meta), 2);
        assert_eq!(Onward::To("x".into()).load().next(&meta), 0);
    }
}
