//! The changes one API request makes to the running configuration, each
//! checked before anything changes: a request naming an interface that
//! does not exist, a prefix with host bits, an address given twice or a
//! neighbour that is not there is refused with the field at fault.
//!
//! Each edit changes a copy of the configuration and says which objects
//! moved; [`crate::running::Running`] makes them live (or undoes them).

use std::net::IpAddr;

use sluice_fn::{IfAddrs, Path as FibPath, Prefix, Route};
use sluice_wire::MacAddr;

use crate::api::RouteSpec;
use crate::config::Config;
use crate::config::plan::Live;

/// A prefix with its host bits clear.
pub fn prefix_of(s: &str) -> Result<Prefix, String> {
    let p: Prefix = s.parse().map_err(|e| format!("prefix `{s}`: {e}"))?;
    if p.network() != p {
        return Err(format!(
            "prefix `{s}` has host bits set (did you mean {}?)",
            p.network()
        ));
    }
    Ok(p)
}

fn table_exists(table: u32, live_tables: u32) -> Result<(), String> {
    if table >= live_tables {
        return Err(format!(
            "table {table} does not exist (tables 0..{live_tables}; more need a restart)"
        ));
    }
    Ok(())
}

/// The interface called `name`, by index.
fn interface(c: &Config, name: &str) -> Result<usize, String> {
    c.interface_index(name)
        .ok_or_else(|| format!("interface `{name}` does not exist"))
}

/// `interface` for a request that sends out of it.
fn output(c: &Config, name: &str) -> Result<usize, String> {
    let i = interface(c, name)?;
    if c.interfaces[i].driver.is_input() {
        return Err(format!("interface `{name}` cannot transmit"));
    }
    Ok(i)
}

/// Checks a route request and makes the route; nothing changes here.
pub fn route_of(c: &Config, spec: &RouteSpec, live_tables: u32) -> Result<Route, String> {
    let prefix = prefix_of(&spec.prefix)?;
    table_exists(spec.table, live_tables)?;
    let v4 = matches!(prefix, Prefix::V4(..));
    let path = match (&spec.action, &spec.interface) {
        (Some(a), None) if spec.via.is_none() && spec.via_mac.is_none() => match a.as_str() {
            "drop" => FibPath::Drop,
            "prohibit" => FibPath::Prohibit,
            "unreachable" => FibPath::Unreachable,
            other => {
                return Err(format!(
                    "action `{other}`: use drop, prohibit or unreachable"
                ));
            }
        },
        (Some(_), _) => return Err("a route has an action or a next hop, not both".into()),
        (None, None) => return Err("a route needs `interface` (or an action)".into()),
        (None, Some(name)) => {
            let index = output(c, name)? as u32;
            let addr = match &spec.via {
                Some(v) => {
                    let a: IpAddr = v
                        .parse()
                        .map_err(|_| format!("via `{v}` is not an IP address"))?;
                    if a.is_ipv4() != v4 {
                        return Err(format!("via {a} is not of the prefix's family"));
                    }
                    Some(a)
                }
                None => None,
            };
            let mac = match &spec.via_mac {
                Some(m) => Some(
                    m.parse::<MacAddr>()
                        .map_err(|_| format!("via-mac `{m}` is not a MAC address"))?,
                ),
                None => None,
            };
            match (addr, mac) {
                (None, None) => FibPath::Connected { interface: index },
                _ => FibPath::Via {
                    interface: index,
                    addr,
                    mac,
                },
            }
        }
    };
    Ok(Route {
        table: spec.table,
        prefix,
        paths: vec![path],
    })
}

/// `ip route add`: adds the route, or replaces the one for its prefix.
pub fn add_route(c: &mut Config, spec: &RouteSpec, live_tables: u32) -> Result<Vec<Live>, String> {
    let route = route_of(c, spec, live_tables)?;
    let live = Live::Route {
        table: route.table,
        prefix: route.prefix,
    };
    match c
        .routes
        .iter_mut()
        .find(|r| (r.table, r.prefix) == (route.table, route.prefix))
    {
        Some(r) => *r = route,
        None => c.routes.push(route),
    }
    Ok(vec![live])
}

/// `ip route del`: removes a configured route.
pub fn del_route(
    c: &mut Config,
    prefix: &str,
    table: u32,
    live_tables: u32,
) -> Result<Vec<Live>, String> {
    let p = prefix_of(prefix)?;
    table_exists(table, live_tables)?;
    let Some(at) = c
        .routes
        .iter()
        .position(|r| (r.table, r.prefix) == (table, p))
    else {
        let from_address = c.addresses.iter().any(|&(i, a, l)| {
            let t = c.interface_tables.get(i).copied().unwrap_or(0);
            sluice_fn::addr::address_routes(t, i as u32, a, l)
                .iter()
                .any(|r| (r.table, r.prefix) == (table, p))
        });
        return Err(if from_address {
            format!(
                "route {p} in table {table} comes from an interface address: remove the address instead"
            )
        } else {
            format!("no route {p} in table {table} is configured")
        });
    };
    c.routes.remove(at);
    Ok(vec![Live::Route { table, prefix: p }])
}

/// `set interface state`.
pub fn set_state(c: &mut Config, name: &str, up: bool) -> Result<Vec<Live>, String> {
    let i = interface(c, name)?;
    if c.interfaces[i].driver == crate::config::Driver::Bvi {
        return Err(format!(
            "interface `{name}` has no state to set (a bvi follows its bridge)"
        ));
    }
    c.interfaces[i].admin_up = up;
    Ok(vec![Live::State {
        interface: name.to_string(),
    }])
}

/// The addresses of `c`, checked as the routers hold them.
pub fn addrs_of(c: &Config) -> Result<IfAddrs, String> {
    let mut addrs = IfAddrs::new(c.interfaces.len());
    for &(i, a, l) in &c.addresses {
        addrs.add(i as u32, a, l).map_err(|e| e.to_string())?;
    }
    Ok(addrs)
}

/// `set interface ip address NAME ADDR/LEN [del]`.
pub fn set_address(
    c: &mut Config,
    name: &str,
    address: &str,
    del: bool,
) -> Result<Vec<Live>, String> {
    let i = interface(c, name)?;
    let Some((ip, len)) = address
        .split_once('/')
        .and_then(|(a, l)| Some((a.parse::<IpAddr>().ok()?, l.parse::<u8>().ok()?)))
    else {
        return Err(format!(
            "address `{address}` is not like 10.0.0.1/24 or 2001:db8::1/64"
        ));
    };
    if del {
        let Some(at) = c.addresses.iter().position(|&(k, a, _)| (k, a) == (i, ip)) else {
            return Err(format!("address {ip} is not on `{name}`"));
        };
        let have = c.addresses[at].2;
        if have != len {
            return Err(format!("address {ip} on `{name}` is /{have}, not /{len}"));
        }
        c.addresses.remove(at);
    } else {
        if c.interfaces[i].driver.is_input() {
            return Err(format!(
                "interface `{name}` cannot transmit, so it cannot have an address"
            ));
        }
        if c.is_l2(i) {
            return Err(format!(
                "interface `{name}` switches frames (a bridge port or cross-connect): give the address to a bvi interface instead"
            ));
        }
        let mut addrs = addrs_of(c)?;
        addrs
            .add(i as u32, ip, len)
            .map_err(|e| format!("address {address}: {e}"))?;
        c.addresses.push((i, ip, len));
        // Grouped by interface, as the parser makes them.
        c.addresses.sort_by_key(|&(k, _, _)| k);
    }
    Ok(vec![Live::Address {
        interface: name.to_string(),
        addr: ip,
    }])
}

/// `ip neighbor add IP lladdr MAC dev NAME`.
pub fn add_neighbor(c: &mut Config, name: &str, ip: &str, mac: &str) -> Result<Vec<Live>, String> {
    let i = output(c, name)?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("ip `{ip}` is not an IP address"))?;
    let mac: MacAddr = mac
        .parse()
        .map_err(|_| format!("mac `{mac}` is not a MAC address"))?;
    if let Some(&(_, _, m)) = c.neighbors.iter().find(|&&(k, a, _)| (k, a) == (i, ip)) {
        return Err(format!(
            "neighbor {ip} on `{name}` already exists (at {m}): delete it first"
        ));
    }
    c.neighbors.push((i, ip, mac));
    Ok(vec![Live::Neighbor {
        interface: name.to_string(),
        ip,
    }])
}

/// `ip neighbor del IP dev NAME`.
pub fn del_neighbor(c: &mut Config, name: &str, ip: &str) -> Result<Vec<Live>, String> {
    let i = interface(c, name)?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("ip `{ip}` is not an IP address"))?;
    let Some(at) = c.neighbors.iter().position(|&(k, a, _)| (k, a) == (i, ip)) else {
        return Err(format!("no static neighbor {ip} on `{name}`"));
    };
    c.neighbors.remove(at);
    Ok(vec![Live::Neighbor {
        interface: name.to_string(),
        ip,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::parse(
            "[[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n\
             [[interface]]\nname = \"s0\"\ndriver = \"sink\"\naddress = [\"10.0.0.1/24\"]\n\
             [[interface]]\nname = \"s1\"\ndriver = \"sink\"\n",
        )
        .unwrap()
    }

    #[test]
    fn bad_requests_name_what_is_wrong_and_change_nothing() {
        let spec = |p: &str, dev: &str| RouteSpec {
            prefix: p.into(),
            interface: Some(dev.into()),
            ..RouteSpec::default()
        };
        let c0 = cfg();
        let mut c = c0.clone();
        for (r, why) in [
            (
                add_route(&mut c, &spec("10.1.0.1/16", "s0"), 1),
                "host bits",
            ),
            (add_route(&mut c, &spec("10.1.0.0/33", "s0"), 1), "prefix"),
            (
                add_route(&mut c, &spec("10.1.0.0/16", "nosuch"), 1),
                "`nosuch` does not exist",
            ),
            (
                add_route(&mut c, &spec("10.1.0.0/16", "pg0"), 1),
                "cannot transmit",
            ),
            (
                del_route(&mut c, "10.1.0.0/16", 0, 1),
                "no route 10.1.0.0/16",
            ),
            (del_route(&mut c, "10.0.0.0/24", 0, 1), "remove the address"),
            (del_route(&mut c, "10.0.0.0/24", 4, 1), "table 4"),
            (set_state(&mut c, "nosuch", false), "does not exist"),
            (
                set_address(&mut c, "s1", "10.0.0.1/24", false),
                "configured twice",
            ),
            (set_address(&mut c, "s1", "10.0.0.1", false), "not like"),
            (
                set_address(&mut c, "s1", "10.0.0.2/40", false),
                "bad prefix length",
            ),
            (
                set_address(&mut c, "pg0", "10.3.0.1/24", false),
                "cannot transmit",
            ),
            (
                set_address(&mut c, "s1", "10.0.0.1/24", true),
                "not on `s1`",
            ),
            (
                set_address(&mut c, "s0", "10.0.0.1/16", true),
                "is /24, not /16",
            ),
            (
                add_neighbor(&mut c, "s1", "10.0.0.x", "02:00:00:00:00:01"),
                "ip `10.0.0.x`",
            ),
            (add_neighbor(&mut c, "s1", "10.0.0.9", "zz"), "mac `zz`"),
            (del_neighbor(&mut c, "s1", "10.0.0.9"), "no static neighbor"),
        ] {
            let e = r.unwrap_err();
            assert!(e.contains(why), "`{e}` does not say `{why}`");
            assert_eq!(c, c0, "refused, yet changed");
        }
        add_neighbor(&mut c, "s1", "10.0.0.9", "02:00:00:00:00:01").unwrap();
        let e = add_neighbor(&mut c, "s1", "10.0.0.9", "02:00:00:00:00:02").unwrap_err();
        assert!(e.contains("already exists"), "{e}");
    }

    #[test]
    fn edits_change_the_configuration_as_a_file_would_say_it() {
        let mut c = cfg();
        let spec = RouteSpec {
            prefix: "10.9.0.0/16".into(),
            interface: Some("s1".into()),
            via_mac: Some("02:00:00:00:00:09".into()),
            ..RouteSpec::default()
        };
        add_route(&mut c, &spec, 1).unwrap();
        add_route(&mut c, &spec, 1).unwrap();
        assert_eq!(c.routes.len(), 1, "the same prefix is replaced");
        set_address(&mut c, "s1", "10.5.0.1/24", false).unwrap();
        set_address(&mut c, "s0", "2001:db8::1/64", false).unwrap();
        set_state(&mut c, "s1", false).unwrap();
        let want = Config::parse(
            "[[interface]]\nname = \"pg0\"\ndriver = \"pg\"\n\
             [[interface]]\nname = \"s0\"\ndriver = \"sink\"\naddress = [\"10.0.0.1/24\", \"2001:db8::1/64\"]\n\
             [[interface]]\nname = \"s1\"\ndriver = \"sink\"\nstate = \"down\"\naddress = [\"10.5.0.1/24\"]\n\
             [[route]]\nprefix = \"10.9.0.0/16\"\ninterface = \"s1\"\nvia-mac = \"02:00:00:00:00:09\"\n",
        )
        .unwrap();
        assert_eq!(c, want);
        del_route(&mut c, "10.9.0.0/16", 0, 1).unwrap();
        set_address(&mut c, "s1", "10.5.0.1/24", true).unwrap();
        assert!(c.routes.is_empty());
        assert_eq!(c.addresses.len(), 2);
    }
}
