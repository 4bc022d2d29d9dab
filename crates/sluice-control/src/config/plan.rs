//! The difference between two configurations, as a plan: one step an
//! object added (`+`), removed (`-`) or changed (`~`), each saying
//! whether it can be made while the workers forward or needs a restart.
//!
//! Objects are compared by what names them in the field — a route by
//! (table, prefix), an address or a neighbour by (interface, IP), an
//! interface by name — and interfaces inside them by name, never by
//! index, so a plan reads the same whatever order the files list things.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use sluice_fn::{Path, Prefix, Route};

use super::Config;

/// What a step does to its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sign {
    /// Added.
    Add,
    /// Removed.
    Remove,
    /// Changed.
    Change,
}

impl Sign {
    /// `+`, `-` or `~`.
    pub fn symbol(self) -> char {
        match self {
            Sign::Add => '+',
            Sign::Remove => '-',
            Sign::Change => '~',
        }
    }
}

/// An object the running forwarder can change in place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Live {
    /// The route for a prefix in a table.
    Route {
        /// Table.
        table: u32,
        /// Prefix.
        prefix: Prefix,
    },
    /// An address of an interface.
    Address {
        /// The interface's name.
        interface: String,
        /// The address.
        addr: IpAddr,
    },
    /// A static neighbour.
    Neighbor {
        /// The interface's name.
        interface: String,
        /// Its address.
        ip: IpAddr,
    },
    /// An interface's administrative state.
    State {
        /// The interface's name.
        interface: String,
    },
    /// An access list's rules (rebuilt off the data path, then swapped).
    Acl {
        /// Its name.
        name: String,
    },
    /// The features an interface runs (`acl-in`, `acl-out`, `firewall`,
    /// `ids`).
    Features {
        /// The interface's name.
        interface: String,
    },
}

/// One line of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Added, removed or changed.
    pub sign: Sign,
    /// The object and what happens to it, in words.
    pub what: String,
    /// The object, when it can be changed live; `None`: needs a restart.
    pub live: Option<Live>,
}

impl Step {
    /// Whether this step needs the forwarder restarted.
    pub fn needs_restart(&self) -> bool {
        self.live.is_none()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.sign.symbol(), self.what)?;
        if self.needs_restart() {
            write!(f, "  (needs restart)")?;
        }
        Ok(())
    }
}

/// The steps from one configuration to another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// In order: settings and interfaces, addresses, routes, neighbours,
    /// then what only a restart changes (streams, bridges, cross-connects).
    pub steps: Vec<Step>,
}

impl Plan {
    /// Whether the two configurations are the same.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps that need a restart.
    pub fn restarts(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.needs_restart())
    }

    /// The objects to change live.
    pub fn live(&self) -> Vec<Live> {
        self.steps.iter().filter_map(|s| s.live.clone()).collect()
    }

    /// One line a step, and a last line counting them.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out.push_str(&s.to_string());
            out.push('\n');
        }
        let restarts = self.restarts().count();
        out.push_str(&match (self.steps.len(), restarts) {
            (0, _) => "no changes\n".to_string(),
            (n, 0) => format!("{n} change(s), all can be applied live\n"),
            (n, r) => format!("{n} change(s), {r} of them need a restart\n"),
        });
        out
    }
}

/// The name of interface `i` of `c`.
fn name(c: &Config, i: usize) -> String {
    c.interfaces
        .get(i)
        .map_or_else(|| format!("if{i}"), |x| x.name.clone())
}

/// A route's paths in words, interfaces by name.
pub fn route_words(c: &Config, r: &Route) -> String {
    let words: Vec<String> = r
        .paths
        .iter()
        .map(|p| match *p {
            Path::Via {
                interface,
                addr,
                mac,
            } => {
                let mut s = String::new();
                if let Some(a) = addr {
                    s.push_str(&format!("via {a} "));
                }
                if let Some(m) = mac {
                    s.push_str(&format!("via-mac {m} "));
                }
                format!("{s}dev {}", name(c, interface as usize))
            }
            Path::Connected { interface } => format!("dev {}", name(c, interface as usize)),
            Path::Local { interface } => format!("local dev {}", name(c, interface as usize)),
            Path::Drop => "drop".into(),
            Path::Prohibit => "prohibit".into(),
            Path::Unreachable => "unreachable".into(),
        })
        .collect();
    words.join(", ")
}

fn route_key(table: u32, prefix: Prefix) -> String {
    if table == 0 {
        format!("route {prefix}")
    } else {
        format!("route {prefix} table {table}")
    }
}

/// Adds, removes and changes between two maps, in key order.
fn compare<K: Ord + Clone, V: PartialEq>(
    old: &BTreeMap<K, V>,
    new: &BTreeMap<K, V>,
    mut step: impl FnMut(&K, Option<&V>, Option<&V>),
) {
    let keys: BTreeSet<&K> = old.keys().chain(new.keys()).collect();
    for k in keys {
        match (old.get(k), new.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => step(k, a, b),
        }
    }
}

fn sign<V>(old: Option<V>, new: Option<V>) -> Sign {
    match (old, new) {
        (None, _) => Sign::Add,
        (_, None) => Sign::Remove,
        _ => Sign::Change,
    }
}

/// The plan that turns `running` into `wanted`, on a forwarder whose FIB
/// has `live_tables` tables.
pub fn plan(running: &Config, wanted: &Config, live_tables: u32) -> Plan {
    let mut steps = Vec::new();
    let mut restart = |sign, what: String| {
        steps.push(Step {
            sign,
            what,
            live: None,
        })
    };

    // Settings only a restart changes.
    if running.buffers != wanted.buffers {
        restart(
            Sign::Change,
            format!("buffers.count: {} -> {}", running.buffers, wanted.buffers),
        );
    }
    if running.huge_pages != wanted.huge_pages {
        restart(
            Sign::Change,
            format!(
                "buffers.huge-pages: {:?} -> {:?}",
                running.huge_pages, wanted.huge_pages
            ),
        );
    }
    if running.workers != wanted.workers {
        restart(
            Sign::Change,
            format!("workers.count: {} -> {}", running.workers, wanted.workers),
        );
    }
    if running.cores != wanted.cores {
        restart(
            Sign::Change,
            format!("workers.cores: {:?} -> {:?}", running.cores, wanted.cores),
        );
    }
    if running.burst != wanted.burst {
        restart(
            Sign::Change,
            format!("workers.burst: {} -> {}", running.burst, wanted.burst),
        );
    }

    // Interfaces: made at start, so any change but the state restarts.
    let by_name = |c: &Config| -> BTreeMap<String, usize> {
        c.interfaces
            .iter()
            .enumerate()
            .map(|(i, x)| (x.name.clone(), i))
            .collect()
    };
    let (old_ifs, new_ifs) = (by_name(running), by_name(wanted));
    let mut state_steps = Vec::new();
    for n in old_ifs
        .keys()
        .chain(new_ifs.keys())
        .collect::<BTreeSet<_>>()
    {
        match (old_ifs.get(n), new_ifs.get(n)) {
            (Some(&a), Some(&b)) => {
                let (x, y) = (&running.interfaces[a], &wanted.interfaces[b]);
                let mut what = Vec::new();
                if a != b {
                    what.push(format!("index {a} -> {b}"));
                }
                if x.driver.kind() != y.driver.kind() {
                    what.push(format!("driver {} -> {}", x.driver.kind(), y.driver.kind()));
                } else if x.driver != y.driver {
                    what.push(format!("{} settings", x.driver.kind()));
                }
                if x.mac != y.mac {
                    what.push(format!("mac {} -> {}", x.mac, y.mac));
                }
                if x.mtu != y.mtu {
                    what.push(format!("mtu {} -> {}", x.mtu, y.mtu));
                }
                let (ta, tb) = (
                    running.interface_tables.get(a).copied().unwrap_or(0),
                    wanted.interface_tables.get(b).copied().unwrap_or(0),
                );
                if ta != tb {
                    what.push(format!("table {ta} -> {tb}"));
                }
                if !what.is_empty() {
                    restart(Sign::Change, format!("interface {n}: {}", what.join(", ")));
                }
                if x.admin_up != y.admin_up {
                    let word = |up| if up { "up" } else { "down" };
                    state_steps.push(Step {
                        sign: Sign::Change,
                        what: format!(
                            "interface {n}: state {} -> {}",
                            word(x.admin_up),
                            word(y.admin_up)
                        ),
                        live: Some(Live::State {
                            interface: n.clone(),
                        }),
                    });
                }
            }
            (Some(&a), None) => restart(
                Sign::Remove,
                format!("interface {n} ({})", running.interfaces[a].driver.kind()),
            ),
            (None, Some(&b)) => restart(
                Sign::Add,
                format!("interface {n} ({})", wanted.interfaces[b].driver.kind()),
            ),
            (None, None) => {}
        }
    }
    steps.extend(state_steps);

    // Addresses, by interface name and address.
    let addrs = |c: &Config| -> BTreeMap<(String, IpAddr), u8> {
        c.addresses
            .iter()
            .map(|&(i, a, l)| ((name(c, i), a), l))
            .collect()
    };
    compare(&addrs(running), &addrs(wanted), |(itf, a), old, new| {
        let what = match (old, new) {
            (Some(x), Some(y)) => format!("address {a} on {itf}: /{x} -> /{y}"),
            (Some(l), None) | (None, Some(l)) => format!("address {a}/{l} on {itf}"),
            (None, None) => return,
        };
        steps.push(Step {
            sign: sign(old, new),
            what,
            live: Some(Live::Address {
                interface: itf.clone(),
                addr: *a,
            }),
        });
    });

    // Routes, by table and prefix.
    let routes = |c: &Config| -> BTreeMap<(u32, Prefix), String> {
        c.routes
            .iter()
            .map(|r| ((r.table, r.prefix), route_words(c, r)))
            .collect()
    };
    compare(
        &routes(running),
        &routes(wanted),
        |&(table, prefix), old, new| {
            let key = route_key(table, prefix);
            let what = match (old, new) {
                (Some(x), Some(y)) => format!("{key}: {x} -> {y}"),
                (Some(w), None) | (None, Some(w)) => format!("{key} {w}"),
                (None, None) => return,
            };
            let live = (table < live_tables).then_some(Live::Route { table, prefix });
            let what = if live.is_none() {
                format!(
                    "{what}: table {table} is not in the running forwarder (tables 0..{live_tables})"
                )
            } else {
                what
            };
            steps.push(Step {
                sign: sign(old, new),
                what,
                live,
            });
        },
    );

    // Static neighbours, by interface name and address.
    let neighbors = |c: &Config| -> BTreeMap<(String, IpAddr), sluice_wire::MacAddr> {
        c.neighbors
            .iter()
            .map(|&(i, ip, mac)| ((name(c, i), ip), mac))
            .collect()
    };
    compare(
        &neighbors(running),
        &neighbors(wanted),
        |(itf, ip), old, new| {
            let what = match (old, new) {
                (Some(x), Some(y)) => format!("neighbor {ip} on {itf}: {x} -> {y}"),
                (Some(m), None) | (None, Some(m)) => format!("neighbor {ip} on {itf} at {m}"),
                (None, None) => return,
            };
            steps.push(Step {
                sign: sign(old, new),
                what,
                live: Some(Live::Neighbor {
                    interface: itf.clone(),
                    ip: *ip,
                }),
            });
        },
    );

    // Access lists by name, and each interface's features: live. The
    // connection tables are allocated at start: a restart.
    let acls = |c: &Config| -> BTreeMap<String, super::AclConfig> {
        c.acls.iter().map(|a| (a.name.clone(), a.clone())).collect()
    };
    compare(&acls(running), &acls(wanted), |n, old, new| {
        let rules = |a: &super::AclConfig| format!("{} rule(s)", a.rules.len());
        let what = match (old, new) {
            (Some(a), Some(b)) => format!("acl {n}: {} -> {}", rules(a), rules(b)),
            (Some(a), None) | (None, Some(a)) => format!("acl {n} ({})", rules(a)),
            (None, None) => return,
        };
        steps.push(Step {
            sign: sign(old, new),
            what,
            live: Some(Live::Acl { name: n.clone() }),
        });
    });
    let features = |c: &Config| -> BTreeMap<String, super::IfFeatures> {
        c.features
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_empty())
            .map(|(i, f)| (name(c, i), f.clone()))
            .collect()
    };
    compare(&features(running), &features(wanted), |itf, old, new| {
        // Only interfaces both sides have: adding one is a restart above.
        if wanted.interface_index(itf).is_none() || running.interface_index(itf).is_none() {
            return;
        }
        let words = |f: Option<&super::IfFeatures>| {
            let f = f.cloned().unwrap_or_default();
            let mut w = Vec::new();
            if let Some(a) = &f.acl_in {
                w.push(format!("acl-in {a}"));
            }
            if let Some(a) = &f.acl_out {
                w.push(format!("acl-out {a}"));
            }
            if let Some(fw) = f.firewall {
                w.push(format!("firewall {}", fw.as_str()));
            }
            if f.ids {
                w.push("ids".to_string());
            }
            if w.is_empty() {
                "none".to_string()
            } else {
                w.join(", ")
            }
        };
        steps.push(Step {
            sign: Sign::Change,
            what: format!("interface {itf}: features {} -> {}", words(old), words(new)),
            live: Some(Live::Features {
                interface: itf.clone(),
            }),
        });
    });
    if running.conntrack != wanted.conntrack {
        steps.push(Step {
            sign: sign(running.conntrack.as_ref(), wanted.conntrack.as_ref()),
            what: "conntrack (tables are made at start)".into(),
            live: None,
        });
    }
    // A rule set is compiled into each worker's ids nodes, whose per-rule
    // counters follow its order: new rules or mode, new nodes.
    if running.ids != wanted.ids {
        steps.push(Step {
            sign: sign(running.ids.as_ref(), wanted.ids.as_ref()),
            what: "ids (rules are compiled into the workers at start)".into(),
            live: None,
        });
    }

    // What is built into the workers' graphs: streams, bridges,
    // cross-connects.
    let streams = |c: &Config| -> BTreeMap<String, (String, sluice_io::pg::StreamSpec)> {
        c.streams
            .iter()
            .map(|(i, s)| (s.name.clone(), (name(c, *i), s.clone())))
            .collect()
    };
    let mut later = Vec::new();
    compare(&streams(running), &streams(wanted), |n, old, new| {
        let on = new.or(old).map_or(String::new(), |(i, _)| i.clone());
        later.push((sign(old, new), format!("stream {n} on {on}")));
    });
    let bridges = |c: &Config| -> BTreeMap<u32, (Vec<String>, sluice_fn::BridgeDomain)> {
        c.bridges
            .iter()
            .map(|b| {
                let ports = b
                    .ports
                    .iter()
                    .map(|p| name(c, p.interface as usize))
                    .collect();
                (b.id, (ports, b.clone()))
            })
            .collect()
    };
    compare(&bridges(running), &bridges(wanted), |id, old, new| {
        let ports = new.or(old).map_or(String::new(), |(p, _)| p.join(" "));
        later.push((sign(old, new), format!("bridge {id} ports {ports}")));
    });
    let xconnects = |c: &Config| -> BTreeMap<String, (String, sluice_fn::VlanRewrite)> {
        c.xconnects
            .iter()
            .map(|x| (name(c, x.from as usize), (name(c, x.to as usize), x.vlan)))
            .collect()
    };
    compare(&xconnects(running), &xconnects(wanted), |from, old, new| {
        let to = new.or(old).map_or(String::new(), |(t, _)| t.clone());
        later.push((sign(old, new), format!("xconnect {from} -> {to}")));
    });
    for (s, what) in later {
        steps.push(Step {
            sign: s,
            what,
            live: None,
        });
    }
    Plan { steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[[interface]]
name = "pg0"
driver = "pg"
[[interface]]
name = "sink0"
driver = "sink"
address = ["10.0.0.1/24"]
[[interface]]
name = "sink1"
driver = "sink"
[[route]]
prefix = "10.9.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:00:01"
[[route]]
prefix = "10.8.0.0/16"
drop = true
[[neighbor]]
interface = "sink0"
ip = "10.0.0.5"
mac = "02:00:00:00:00:05"
[[stream]]
name = "s"
interface = "pg0"
src-ip = "10.0.0.1"
dst-ip = "10.9.0.0/24"
"#;

    fn cfg(src: &str) -> Config {
        Config::parse(src).unwrap_or_else(|e| panic!("{e}"))
    }

    fn lines(p: &Plan) -> Vec<String> {
        p.steps.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_same_configuration_plans_nothing() {
        let p = plan(&cfg(BASE), &cfg(BASE), 1);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.text(), "no changes\n");
    }

    #[test]
    fn live_objects_are_added_removed_and_changed_one_line_each() {
        let wanted = BASE
            .replace(
                "02:00:00:00:00:01\"\n[[route]]",
                "02:00:00:00:00:02\"\n[[route]]",
            )
            .replace(
                "prefix = \"10.8.0.0/16\"\ndrop = true",
                "prefix = \"10.7.0.0/16\"\nprohibit = true",
            )
            .replace(
                "address = [\"10.0.0.1/24\"]",
                "address = [\"10.0.0.1/16\", \"2001:db8::1/64\"]\nstate = \"down\"",
            )
            .replace("02:00:00:00:00:05", "02:00:00:00:00:06");
        let p = plan(&cfg(BASE), &cfg(&wanted), 1);
        assert_eq!(
            lines(&p),
            [
                "~ interface sink0: state up -> down",
                "~ address 10.0.0.1 on sink0: /24 -> /16",
                "+ address 2001:db8::1/64 on sink0",
                "+ route 10.7.0.0/16 prohibit",
                "- route 10.8.0.0/16 drop",
                "~ route 10.9.0.0/16: via-mac 02:00:00:00:00:01 dev sink0 -> via-mac 02:00:00:00:00:02 dev sink0",
                "~ neighbor 10.0.0.5 on sink0: 02:00:00:00:00:05 -> 02:00:00:00:00:06",
            ]
        );
        assert_eq!(p.restarts().count(), 0);
        assert_eq!(
            p.live()[3],
            Live::Route {
                table: 0,
                prefix: "10.7.0.0/16".parse().unwrap()
            }
        );
        assert!(p.text().ends_with("7 change(s), all can be applied live\n"));
    }

    #[test]
    fn interfaces_streams_and_settings_need_a_restart() {
        let wanted = BASE
            .replace(
                "name = \"sink1\"\ndriver = \"sink\"",
                "name = \"sink2\"\ndriver = \"sink\"",
            )
            .replace(
                "dst-ip = \"10.9.0.0/24\"",
                "dst-ip = \"10.9.0.0/24\"\nrate = 5",
            )
            + "[workers]\nburst = 32\n[[route]]\nprefix = \"10.1.0.0/16\"\ntable = 2\ndrop = true\n";
        let p = plan(&cfg(BASE), &cfg(&wanted), 1);
        assert_eq!(
            lines(&p),
            [
                "~ workers.burst: 256 -> 32  (needs restart)",
                "- interface sink1 (sink)  (needs restart)",
                "+ interface sink2 (sink)  (needs restart)",
                "+ route 10.1.0.0/16 table 2 drop: table 2 is not in the running forwarder (tables 0..1)  (needs restart)",
                "~ stream s on pg0  (needs restart)",
            ]
        );
        assert!(
            p.text()
                .ends_with("5 change(s), 5 of them need a restart\n")
        );
    }

    #[test]
    fn order_in_the_file_does_not_matter_interface_names_do() {
        // The same routes listed the other way round: nothing to do.
        let swapped = BASE.replace(
            "[[route]]\nprefix = \"10.9.0.0/16\"\ninterface = \"sink0\"\nvia-mac = \"02:00:00:00:00:01\"\n[[route]]\nprefix = \"10.8.0.0/16\"\ndrop = true\n",
            "[[route]]\nprefix = \"10.8.0.0/16\"\ndrop = true\n[[route]]\nprefix = \"10.9.0.0/16\"\ninterface = \"sink0\"\nvia-mac = \"02:00:00:00:00:01\"\n",
        );
        assert_ne!(swapped, BASE);
        assert!(plan(&cfg(BASE), &cfg(&swapped), 1).is_empty());
        // Interfaces in another order: each moved one needs a restart, but
        // routes through them are the same routes.
        let moved = BASE
            .replace("[[interface]]\nname = \"sink1\"\ndriver = \"sink\"\n", "")
            .replace(
                "[[interface]]\nname = \"pg0\"",
                "[[interface]]\nname = \"sink1\"\ndriver = \"sink\"\n[[interface]]\nname = \"pg0\"",
            );
        let p = plan(&cfg(BASE), &cfg(&moved), 1);
        // (The stream changes too: its default destination MAC is its
        // interface's, made of the index.)
        assert!(
            p.steps
                .iter()
                .all(|s| s.what.starts_with("interface ") || s.what.starts_with("stream ")),
            "{:?}",
            lines(&p)
        );
        assert_eq!(p.restarts().count(), 4, "{:?}", lines(&p));
        assert!(p.live().is_empty());
    }
}
