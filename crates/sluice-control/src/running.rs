//! The running configuration: the document every accepted change updates,
//! what `show running-config` prints and `--state` keeps, and the one
//! place where changes are made live.
//!
//! A change goes through four steps, under one lock so that changes never
//! interleave: check it against a copy of the configuration (refused:
//! nothing happened), make it live object by object, save the new
//! configuration if a state file is kept, and only then make the copy the
//! running configuration. If making it live fails half-way, or saving
//! fails, what was made live is put back as it was: the forwarder and the
//! saved file never disagree and are never half-changed.
//!
//! Objects are made live by reconciling: a route key (table, prefix) is
//! set to what the new configuration says it should be — its configured
//! route, else the connected or local route of an address, else nothing —
//! so undoing a change is the same operation with the old configuration.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use sluice_fn::addr::{SharedAddrs, address_routes};
use sluice_fn::fib::FibError;
use sluice_fn::{Fib, Prefix, Route};
use sluice_graph::iface::Interfaces;
use sluice_io::LinkStatus;

use crate::api::RouteSpec;
use crate::config::plan::{Live, Plan, plan};
use crate::config::{Config, ConfigError};
use crate::edit;
use crate::features::Features;
use crate::state::{StateError, StateFile};

/// Why a change was not made. In every case nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The request is wrong; the message names the field.
    #[error("{0}")]
    Refused(String),
    /// A configuration file that does not parse.
    #[error("{origin} refused: {error}")]
    File {
        /// Where it came from, for the message.
        origin: String,
        /// What is wrong, with its line.
        error: ConfigError,
    },
    /// The file asks for what only a restart can do.
    #[error(
        "{origin}: {} change(s) need a restart, so nothing was applied:\n{}",
        steps.len(),
        steps.join("\n")
    )]
    NeedsRestart {
        /// Where it came from.
        origin: String,
        /// The steps that need a restart.
        steps: Vec<String>,
    },
    /// The data plane refused part of it; what was done was undone.
    #[error("{0}; nothing was changed")]
    Live(String),
    /// The state file could not be written; the change was undone.
    #[error("{0}; the change was undone")]
    Save(StateError),
    /// Undoing failed too (a bug, or a full table): state is uncertain.
    #[error("{what}; undoing it failed too ({undo}): check show ip fib")]
    Undo {
        /// What failed first.
        what: String,
        /// What failed undoing it.
        undo: String,
    },
}

/// The running configuration and the live objects it drives.
pub struct Running {
    config: Mutex<Config>,
    state: Mutex<Option<StateFile>>,
    /// A `--workers` given on the command line, held over files applied.
    workers: OnceLock<usize>,
    fib: Arc<Fib>,
    addrs: Arc<SharedAddrs>,
    links: Vec<Option<Arc<LinkStatus>>>,
    interfaces: Arc<Interfaces>,
    /// Access lists and the firewall, when the data plane has them.
    features: Option<Arc<Features>>,
}

impl Running {
    /// The running configuration `config` over a data plane built from it
    /// (its FIB, addresses and link states, by interface index). Sets
    /// interfaces configured down administratively down.
    pub fn new(
        config: Config,
        fib: Arc<Fib>,
        addrs: Arc<SharedAddrs>,
        links: Vec<Option<Arc<LinkStatus>>>,
        interfaces: Arc<Interfaces>,
    ) -> Running {
        for (i, itf) in config.interfaces.iter().enumerate() {
            if let Some(Some(l)) = links.get(i) {
                l.set_admin_up(itf.admin_up);
            }
        }
        Running {
            workers: OnceLock::new(),
            config: Mutex::new(config),
            state: Mutex::new(None),
            fib,
            addrs,
            links,
            interfaces,
            features: None,
        }
    }

    /// The running configuration also drives `features` (ACLs, the
    /// firewall), which this makes what the configuration says.
    pub fn with_features(mut self, features: Arc<Features>) -> Result<Running, String> {
        features.apply(&self.lock())?;
        self.features = Some(features);
        Ok(self)
    }

    /// The feature objects, if the data plane has them.
    pub fn features(&self) -> Option<&Arc<Features>> {
        self.features.as_ref()
    }

    /// Keeps `workers` (a command line override) in files applied later.
    pub fn keep_workers(&self, workers: usize) {
        let _ = self.workers.set(workers);
    }

    fn lock(&self) -> MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves every accepted change to `file` from now on, starting with
    /// the configuration as it is.
    pub fn persist_to(&self, file: StateFile) -> Result<(), StateError> {
        let config = self.lock();
        file.save(&config.to_toml())?;
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
        Ok(())
    }

    /// The running configuration.
    pub fn config(&self) -> Config {
        self.lock().clone()
    }

    /// The running configuration as TOML.
    pub fn text(&self) -> String {
        self.lock().to_toml()
    }

    /// The interfaces of the data plane.
    pub fn interfaces(&self) -> &Arc<Interfaces> {
        &self.interfaces
    }

    /// Checks `edit` on a copy, makes what it changed live, saves, and
    /// only then takes the copy.
    fn change(
        &self,
        edit: impl FnOnce(&mut Config, u32) -> Result<Vec<Live>, String>,
    ) -> Result<(), ChangeError> {
        let mut current = self.lock();
        let mut next = current.clone();
        let live = edit(&mut next, self.fib.tables()).map_err(ChangeError::Refused)?;
        next.count_tables();
        self.commit(&current, &next, &live)?;
        *current = next;
        Ok(())
    }

    /// `ip route add`.
    pub fn add_route(&self, spec: &RouteSpec) -> Result<(), ChangeError> {
        self.change(|c, t| edit::add_route(c, spec, t))
    }

    /// `ip route del`.
    pub fn del_route(&self, prefix: &str, table: u32) -> Result<(), ChangeError> {
        self.change(|c, t| edit::del_route(c, prefix, table, t))
    }

    /// `set interface state`.
    pub fn set_state(&self, interface: &str, up: bool) -> Result<(), ChangeError> {
        self.change(|c, _| edit::set_state(c, interface, up))
    }

    /// `set interface ip address [del]`.
    pub fn set_address(
        &self,
        interface: &str,
        address: &str,
        del: bool,
    ) -> Result<(), ChangeError> {
        self.change(|c, _| edit::set_address(c, interface, address, del))
    }

    /// `ip neighbor add`.
    pub fn add_neighbor(&self, interface: &str, ip: &str, mac: &str) -> Result<(), ChangeError> {
        self.change(|c, _| edit::add_neighbor(c, interface, ip, mac))
    }

    /// `ip neighbor del`.
    pub fn del_neighbor(&self, interface: &str, ip: &str) -> Result<(), ChangeError> {
        self.change(|c, _| edit::del_neighbor(c, interface, ip))
    }

    /// Parses a whole configuration file (`origin` names it in messages).
    fn wanted(&self, text: &str, origin: &str) -> Result<Config, ChangeError> {
        let mut wanted = Config::parse(text).map_err(|error| ChangeError::File {
            origin: origin.to_string(),
            error,
        })?;
        if let Some(&w) = self.workers.get() {
            wanted.workers = w;
        }
        Ok(wanted)
    }

    /// The plan from the running configuration to the file `text`.
    pub fn diff(&self, text: &str, origin: &str) -> Result<Plan, ChangeError> {
        let wanted = self.wanted(text, origin)?;
        Ok(plan(&self.lock(), &wanted, self.fib.tables()))
    }

    /// Makes the running configuration the file `text`, all of it or
    /// nothing; refuses if any of it needs a restart. Returns the plan
    /// carried out.
    pub fn apply(&self, text: &str, origin: &str) -> Result<Plan, ChangeError> {
        let wanted = self.wanted(text, origin)?;
        let mut current = self.lock();
        let p = plan(&current, &wanted, self.fib.tables());
        let restarts: Vec<String> = p.restarts().map(|s| s.to_string()).collect();
        if !restarts.is_empty() {
            return Err(ChangeError::NeedsRestart {
                origin: origin.to_string(),
                steps: restarts,
            });
        }
        if !p.is_empty() {
            self.commit(&current, &wanted, &p.live())?;
            *current = wanted;
        }
        Ok(p)
    }

    /// Makes `live` go from `old` to `new`, then saves `new`; on failure
    /// puts everything back as `old` has it.
    fn commit(&self, old: &Config, new: &Config, live: &[Live]) -> Result<(), ChangeError> {
        let mut done = Vec::new();
        let mut failed = None;
        for l in live {
            match self.make_live(old, new, l) {
                Ok(()) => done.push(l.clone()),
                Err(e) => {
                    // Half-done counts as done: undoing it is harmless.
                    done.push(l.clone());
                    failed = Some(e);
                    break;
                }
            }
        }
        let failed = match failed {
            Some(e) => ChangeError::Live(e),
            None => {
                let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                match state.as_ref().map(|f| f.save(&new.to_toml())) {
                    Some(Err(e)) => ChangeError::Save(e),
                    _ => return Ok(()),
                }
            }
        };
        let mut undo = Vec::new();
        for l in done.iter().rev() {
            if let Err(e) = self.make_live(new, old, l) {
                undo.push(e);
            }
        }
        if undo.is_empty() {
            Err(failed)
        } else {
            Err(ChangeError::Undo {
                what: failed.to_string(),
                undo: undo.join("; "),
            })
        }
    }

    /// Makes one object what `new` says, coming from `old`.
    fn make_live(&self, old: &Config, new: &Config, l: &Live) -> Result<(), String> {
        let index = |name: &str| {
            new.interface_index(name)
                .ok_or_else(|| format!("interface `{name}` does not exist"))
        };
        match l {
            Live::Route { table, prefix } => self.reconcile(new, *table, *prefix),
            // Lists and features are reconciled whole: building every
            // list again is cheap beside a person's edit, and undoing is
            // the same call with the old configuration.
            Live::Acl { .. } | Live::Features { .. } => match &self.features {
                Some(f) => f.apply(new),
                None => Err("this forwarder has no feature arcs".into()),
            },
            Live::Address { interface, addr } => {
                let i = index(interface)?;
                self.addrs.publish(edit::addrs_of(new)?);
                // The routes the address made before and makes now.
                let mut keys = Vec::new();
                for c in [old, new] {
                    for &(k, a, len) in &c.addresses {
                        if (k, a) == (i, *addr) {
                            let t = c.interface_tables.get(k).copied().unwrap_or(0);
                            keys.extend(
                                address_routes(t, k as u32, a, len)
                                    .into_iter()
                                    .map(|r| (r.table, r.prefix)),
                            );
                        }
                    }
                }
                keys.sort();
                keys.dedup();
                for (t, p) in keys {
                    self.reconcile(new, t, p)?;
                }
                Ok(())
            }
            Live::Neighbor { interface, ip } => {
                let i = index(interface)?;
                let find = |c: &Config| {
                    c.neighbors
                        .iter()
                        .find(|&&(k, a, _)| (k, a) == (i, *ip))
                        .map(|&(_, _, m)| m)
                };
                match find(new) {
                    Some(mac) => {
                        let on_link = edit::addrs_of(new)?.on_link(i as u32, *ip);
                        self.fib.add_static_neighbor(i as u32, *ip, mac, on_link);
                    }
                    None => {
                        self.fib.remove_static_neighbor(i as u32, *ip);
                    }
                }
                Ok(())
            }
            Live::State { interface } => {
                let i = index(interface)?;
                match self.links.get(i).and_then(|l| l.as_ref()) {
                    Some(l) => {
                        l.set_admin_up(new.interfaces[i].admin_up);
                        Ok(())
                    }
                    None => Err(format!("interface `{interface}` has no state to set")),
                }
            }
        }
    }

    /// Sets the FIB's route for (`table`, `prefix`) to what `c` says.
    fn reconcile(&self, c: &Config, table: u32, prefix: Prefix) -> Result<(), String> {
        match wanted_route(c, table, prefix) {
            Some(r) => self
                .fib
                .add(&r)
                .map_err(|e| format!("route {prefix} in table {table}: {e}")),
            None => match self.fib.remove(table, prefix) {
                Ok(()) | Err(FibError::NoRoute(..)) => Ok(()),
                Err(e) => Err(format!("route {prefix} in table {table}: {e}")),
            },
        }
    }
}

/// What the FIB holds for (`table`, `prefix`) when built from `c`: the
/// configured route, else the route of an address (the last one, as
/// building installs them in order), else nothing.
fn wanted_route(c: &Config, table: u32, prefix: Prefix) -> Option<Route> {
    if let Some(r) = c
        .routes
        .iter()
        .find(|r| (r.table, r.prefix) == (table, prefix))
    {
        return Some(r.clone());
    }
    let mut found = None;
    for &(i, a, len) in &c.addresses {
        let t = c.interface_tables.get(i).copied().unwrap_or(0);
        if t != table || !prefix_could_be(a, prefix) {
            continue;
        }
        if let Some(r) = address_routes(t, i as u32, a, len)
            .into_iter()
            .find(|r| r.prefix == prefix)
        {
            found = Some(r);
        }
    }
    found
}

/// Whether an address of `a`'s family could make `prefix` (a cheap
/// filter before building its routes).
fn prefix_could_be(a: IpAddr, prefix: Prefix) -> bool {
    matches!(
        (a, prefix),
        (IpAddr::V4(_), Prefix::V4(..)) | (IpAddr::V6(_), Prefix::V6(..))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_fn::fib::LpmConfig;
    use sluice_fn::{FibConfig, IfAddrs};

    const BASE: &str = r#"
[[interface]]
name = "s0"
driver = "sink"
address = ["10.0.0.1/24"]
[[interface]]
name = "s1"
driver = "sink"
[[route]]
prefix = "10.9.0.0/16"
interface = "s1"
via-mac = "02:00:00:00:00:01"
"#;

    /// A running configuration over a FIB with room for `adjacencies`.
    fn running(src: &str, adjacencies: u32) -> Running {
        let config = Config::parse(src).unwrap();
        let interfaces = Arc::new(config.interface_table());
        let shape = LpmConfig {
            root_bits: 16,
            max_groups: 4096,
            huge_pages: false,
            stride: 8,
            skip: true,
        };
        let fib = Arc::new(
            Fib::new(
                FibConfig {
                    tables: config.tables,
                    v4: shape,
                    v6: shape,
                    adjacencies,
                    load_balances: 16,
                    vrf_root_bits: 16,
                },
                interfaces.clone(),
            )
            .unwrap(),
        );
        let addrs = edit::addrs_of(&config).unwrap();
        addrs.install(&fib).unwrap();
        for r in &config.routes {
            fib.add(r).unwrap();
        }
        let links = config
            .interfaces
            .iter()
            .map(|_| Some(LinkStatus::new()))
            .collect();
        Running::new(
            config,
            fib,
            Arc::new(SharedAddrs::new(Arc::new(addrs))),
            links,
            interfaces,
        )
    }

    fn fib(r: &Running) -> Vec<Route> {
        r.fib.routes(0)
    }

    #[test]
    fn a_file_that_fails_half_way_is_undone_whole() {
        // Glean, local and one neighbour adjacency are taken; room for
        // one more, and the file needs three.
        let r = running(BASE, 4);
        let before = (fib(&r), r.text());
        let mut wanted = BASE.replace("10.0.0.1/24", "10.0.0.1/24\", \"10.0.5.1/24");
        for (i, p) in ["10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]
            .iter()
            .enumerate()
        {
            wanted += &format!(
                "[[route]]\nprefix = \"{p}\"\ninterface = \"s1\"\nvia-mac = \"02:00:00:00:01:{i:02x}\"\n"
            );
        }
        wanted += "[[interface]]\nname = \"s2\"\ndriver = \"sink\"\n";
        // Needing a restart: refused before anything is tried.
        let e = r.apply(&wanted, "w.toml").unwrap_err();
        assert!(matches!(e, ChangeError::NeedsRestart { .. }), "{e}");
        let wanted = wanted.replace("[[interface]]\nname = \"s2\"\ndriver = \"sink\"\n", "");
        let e = r.apply(&wanted, "w.toml").unwrap_err();
        assert!(matches!(e, ChangeError::Live(_)), "{e}");
        assert!(e.to_string().contains("adjacency table full"), "{e}");
        assert_eq!((fib(&r), r.text()), before, "all undone");
        assert!(!r.addrs.snapshot().is_v4(0, "10.0.5.1".parse().unwrap()));
    }

    #[test]
    fn a_configured_route_over_a_connected_one_gives_it_back_when_deleted() {
        let r = running(BASE, 64);
        let connected = fib(&r);
        let spec = RouteSpec {
            prefix: "10.0.0.0/24".into(),
            action: Some("drop".into()),
            ..RouteSpec::default()
        };
        r.add_route(&spec).unwrap();
        let p: Prefix = "10.0.0.0/24".parse().unwrap();
        let paths = |r: &Running| fib(r).into_iter().find(|x| x.prefix == p).map(|x| x.paths);
        assert_eq!(paths(&r), Some(vec![sluice_fn::Path::Drop]));
        r.del_route("10.0.0.0/24", 0).unwrap();
        assert_eq!(fib(&r), connected, "the address's route is back");
        // An address whose subnet a route already covers leaves the route.
        r.add_route(&spec).unwrap();
        r.set_address("s0", "10.0.0.9/24", false).unwrap();
        assert_eq!(paths(&r), Some(vec![sluice_fn::Path::Drop]));
        r.set_address("s0", "10.0.0.1/24", true).unwrap();
        r.set_address("s0", "10.0.0.9/24", true).unwrap();
        r.del_route("10.0.0.0/24", 0).unwrap();
        assert_eq!(paths(&r), None, "nothing makes it any more");
        let empty = IfAddrs::new(2);
        assert_eq!(r.addrs.snapshot().v4(0), empty.v4(0));
    }
}
