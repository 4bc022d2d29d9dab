//! The features interfaces run — access lists, the stateful firewall and
//! the intrusion detector — as live objects: the feature arcs, the lists
//! each interface is judged by, the firewall's policy, and the counters
//! of the connection tables and of the detector.
//!
//! One [`Features`] serves every worker. Its nodes are made per worker
//! ([`Features::nodes`]): `ipN-acl-in` and `ipN-acl-out` always (so an
//! ACL can be put on any interface while the workers forward), and
//! `ipN-conntrack` when the configuration has `[conntrack]` (its tables
//! are allocated then, whole), `ipN-ids` when it has `[ids]` (its rules
//! were compiled when the configuration was read). [`Features::apply`] makes everything what
//! a configuration says: it builds every list first, off the data path
//! (a failure changes nothing), stores each interface's list, then the
//! policy, and only then enables or disables features on the arcs — so a
//! feature is never enabled before what it judges by is in place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use sluice_fn::acl::{AclNode, Action, SharedAcl};
use sluice_fn::conntrack::{Clock, ConnTrack, ConnTrackNode, CtStats, Policy};
use sluice_fn::features::{self as arcs, IpArcs};
use sluice_fn::ids::{IdsNode, IdsStats, StderrLog};
use sluice_fn::{Acl, CtConfig};
use sluice_graph::iface::Interfaces;
use sluice_graph::{Node, Onward};

use crate::config::{Config, Firewall, IdsSettings};

/// The connection tables' counters of one worker and family.
#[derive(Debug, Clone)]
pub struct TableStats {
    /// Worker number.
    pub worker: usize,
    /// `ip4` or `ip6`.
    pub family: &'static str,
    /// Its counters.
    pub stats: Arc<CtStats>,
}

/// The intrusion detector's counters of one worker and family.
#[derive(Debug, Clone)]
pub struct DetectorStats {
    /// Worker number.
    pub worker: usize,
    /// `ip4` or `ip6`.
    pub family: &'static str,
    /// Its counters.
    pub stats: Arc<IdsStats>,
}

/// The live feature objects of a data plane.
pub struct Features {
    arcs: IpArcs,
    /// Per interface: the list its received packets are judged by.
    acl_in: Arc<[Arc<SharedAcl>]>,
    /// Per interface: the list its sent packets are judged by.
    acl_out: Arc<[Arc<SharedAcl>]>,
    policy: Arc<ArcSwap<Policy>>,
    conntrack: Option<CtConfig>,
    tables: Mutex<Vec<TableStats>>,
    ids: Option<IdsSettings>,
    detectors: Mutex<Vec<DetectorStats>>,
}

/// The list an interface holds until it is given one (it runs only on
/// interfaces given one).
fn permit_all() -> Arc<SharedAcl> {
    match Acl::new(Vec::new(), Action::Permit) {
        Ok(a) => Arc::new(SharedAcl::new(a)),
        // No rule to refuse.
        Err(e) => unreachable!("an empty access list was refused: {e}"),
    }
}

impl Features {
    /// The arcs and lists over `interfaces`, nothing enabled yet.
    pub fn new(config: &Config, interfaces: &Interfaces) -> Result<Features, String> {
        let conntrack = config.conntrack.clone();
        let with_ct = conntrack.is_some();
        let with_ids = config.ids.is_some();
        let arcs = IpArcs::new(interfaces, |f| match f {
            sluice_fn::conntrack::IP4_NAME | sluice_fn::conntrack::IP6_NAME => with_ct,
            sluice_fn::ids::IP4_NAME | sluice_fn::ids::IP6_NAME => with_ids,
            _ => true,
        })
        .map_err(|e| e.to_string())?;
        let n = interfaces.len();
        Ok(Features {
            arcs,
            acl_in: (0..n).map(|_| permit_all()).collect(),
            acl_out: (0..n).map(|_| permit_all()).collect(),
            policy: Arc::new(ArcSwap::from_pointee(Policy::reflect_only())),
            conntrack,
            tables: Mutex::new(Vec::new()),
            ids: config.ids.clone(),
            detectors: Mutex::new(Vec::new()),
        })
    }

    /// The arcs, for the router's nodes.
    pub fn arcs(&self) -> &IpArcs {
        &self.arcs
    }

    /// The feature nodes of worker `worker`'s graph.
    pub fn nodes(&self, worker: usize) -> Result<Vec<Box<dyn Node>>, String> {
        let on = |arc, f: &str| Onward::after(arc, f).map_err(|e| e.to_string());
        let a = &self.arcs;
        let mut nodes: Vec<Box<dyn Node>> = vec![
            Box::new(AclNode::<u32>::on_arc(
                arcs::IP4_ACL_IN,
                on(&a.ip4_unicast, arcs::IP4_ACL_IN)?,
                self.acl_in.clone(),
            )),
            Box::new(AclNode::<u128>::on_arc(
                arcs::IP6_ACL_IN,
                on(&a.ip6_unicast, arcs::IP6_ACL_IN)?,
                self.acl_in.clone(),
            )),
            Box::new(AclNode::<u32>::on_arc(
                arcs::IP4_ACL_OUT,
                on(&a.ip4_output, arcs::IP4_ACL_OUT)?,
                self.acl_out.clone(),
            )),
            Box::new(AclNode::<u128>::on_arc(
                arcs::IP6_ACL_OUT,
                on(&a.ip6_output, arcs::IP6_ACL_OUT)?,
                self.acl_out.clone(),
            )),
        ];
        if let Some(ct) = &self.conntrack {
            let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            for (family, name, arc) in [
                ("ip4", sluice_fn::conntrack::IP4_NAME, &a.ip4_unicast),
                ("ip6", sluice_fn::conntrack::IP6_NAME, &a.ip6_unicast),
            ] {
                // The whole table is allocated here, before the worker runs.
                let table = ConnTrack::new(ct).map_err(|e| format!("conntrack: {e}"))?;
                let make = if family == "ip4" {
                    ConnTrackNode::ip4
                } else {
                    ConnTrackNode::ip6
                };
                let node = make(name, "", table, Policy::reflect_only(), Clock::tsc())
                    .on_arc(on(arc, name)?)
                    .with_policy(self.policy.clone());
                tables.push(TableStats {
                    worker,
                    family,
                    stats: node.stats(),
                });
                nodes.push(Box::new(node));
            }
        }
        if let Some(ids) = &self.ids {
            let mut detectors = self.detectors.lock().unwrap_or_else(|e| e.into_inner());
            for (family, name, arc) in [
                ("ip4", sluice_fn::ids::IP4_NAME, &a.ip4_unicast),
                ("ip6", sluice_fn::ids::IP6_NAME, &a.ip6_unicast),
            ] {
                let make = if family == "ip4" {
                    IdsNode::ip4
                } else {
                    IdsNode::ip6
                };
                // One compiled set for every worker; each node has its own
                // scratch, rate limit and counters.
                let node = make(
                    name,
                    "",
                    ids.rules.clone(),
                    ids.alerting,
                    Box::new(StderrLog),
                )
                .on_arc(on(arc, name)?);
                detectors.push(DetectorStats {
                    worker,
                    family,
                    stats: node.stats(),
                });
                nodes.push(Box::new(node));
            }
        }
        Ok(nodes)
    }

    /// The connection tables' counters, by worker and family (empty
    /// without `[conntrack]`).
    pub fn tables(&self) -> Vec<TableStats> {
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The detector's counters, by worker and family (empty without
    /// `[ids]`).
    pub fn detectors(&self) -> Vec<DetectorStats> {
        self.detectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The detector's settings and rules, if it runs.
    pub fn ids(&self) -> Option<&IdsSettings> {
        self.ids.as_ref()
    }

    /// The connection tables' configuration, if they exist.
    pub fn conntrack(&self) -> Option<&CtConfig> {
        self.conntrack.as_ref()
    }

    /// Makes lists, policy and enabled features what `config` says.
    pub fn apply(&self, config: &Config) -> Result<(), String> {
        let n = self.acl_in.len();
        if config.features.len() > n {
            return Err(format!(
                "{} interfaces configured, {n} in the data plane",
                config.features.len()
            ));
        }
        if self.conntrack.is_none() && config.features.iter().any(|f| f.firewall.is_some()) {
            return Err(
                "the firewall needs connection tables, made at start: restart with [conntrack]"
                    .into(),
            );
        }
        if self.ids.is_none() && config.features.iter().any(|f| f.ids) {
            return Err(
                "intrusion detection needs its rules, compiled at start: restart with [ids]".into(),
            );
        }
        // Every list, built before anything changes.
        let mut built: HashMap<&str, Arc<Acl>> = HashMap::new();
        for a in &config.acls {
            let acl = a.build().map_err(|e| format!("acl {}: {e}", a.name))?;
            built.insert(&a.name, Arc::new(acl));
        }
        let list = |name: &Option<String>| -> Result<Option<Arc<Acl>>, String> {
            match name {
                None => Ok(None),
                Some(n) => built
                    .get(n.as_str())
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| format!("no acl is called `{n}`")),
            }
        };
        let mut lists = Vec::new();
        for f in &config.features {
            lists.push((list(&f.acl_in)?, list(&f.acl_out)?));
        }
        // The lists, then the policy, then the arcs. An interface losing
        // its list keeps the old one until its feature is off.
        for (i, (inn, out)) in lists.iter().enumerate() {
            if let Some(a) = inn {
                self.acl_in[i].swap(a.clone());
            }
            if let Some(a) = out {
                self.acl_out[i].swap(a.clone());
            }
        }
        let trusted = (0..n)
            .map(|i| {
                config
                    .features
                    .get(i)
                    .is_some_and(|f| f.firewall == Some(Firewall::Inside))
            })
            .collect();
        self.policy.store(Arc::new(Policy {
            trusted,
            zone: Vec::new(),
        }));
        let a = &self.arcs;
        for i in 0..n {
            let f = config.features.get(i).cloned().unwrap_or_default();
            let ct = f.firewall.is_some();
            let pick = |on: &[(bool, &'static str)]| -> Vec<&'static str> {
                on.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect()
            };
            let set = |arc: &sluice_graph::FeatureArc, names: Vec<&str>| {
                arc.set(i as u32, &names).map_err(|e| e.to_string())
            };
            set(
                &a.ip4_unicast,
                pick(&[
                    (f.acl_in.is_some(), arcs::IP4_ACL_IN),
                    (ct, sluice_fn::conntrack::IP4_NAME),
                    (f.ids, sluice_fn::ids::IP4_NAME),
                ]),
            )?;
            set(
                &a.ip6_unicast,
                pick(&[
                    (f.acl_in.is_some(), arcs::IP6_ACL_IN),
                    (ct, sluice_fn::conntrack::IP6_NAME),
                    (f.ids, sluice_fn::ids::IP6_NAME),
                ]),
            )?;
            set(
                &a.ip4_output,
                pick(&[(f.acl_out.is_some(), arcs::IP4_ACL_OUT)]),
            )?;
            set(
                &a.ip6_output,
                pick(&[(f.acl_out.is_some(), arcs::IP6_ACL_OUT)]),
            )?;
        }
        Ok(())
    }

    /// Per arc and interface: the features enabled, in order (for `show
    /// features`).
    pub fn enabled(&self, interfaces: &Interfaces) -> Vec<(String, String, Vec<String>)> {
        let mut out = Vec::new();
        for arc in self.arcs.all() {
            for i in interfaces.iter() {
                let on = arc.enabled(i.index);
                if !on.is_empty() {
                    out.push((arc.name().to_string(), i.name.clone(), on));
                }
            }
        }
        out
    }
}
