//! `[[bridge]]` and `[[xconnect]]`: L2 switching in the configuration.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sluice_fn::{BridgeDomain, BridgePort, L2Config, StaticMac, VlanRewrite, XConnect};
use toml::Spanned;

use super::{Checker, ConfigError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBridge {
    id: Spanned<i64>,
    #[serde(default)]
    port: Vec<RawPort>,
    learn: Option<bool>,
    flood: Option<bool>,
    mac_capacity: Option<Spanned<i64>>,
    aging: Option<Spanned<i64>>,
    bvi: Option<Spanned<String>>,
    #[serde(default)]
    static_mac: Vec<RawStaticMac>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPort {
    interface: Spanned<String>,
    split_horizon: Option<Spanned<i64>>,
    vlan: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStaticMac {
    mac: Spanned<String>,
    interface: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawXConnect {
    from: Spanned<String>,
    to: Spanned<String>,
    vlan: Option<Spanned<String>>,
}

/// `"pop 100"`, `"push 100"`, `"translate 100 200"` (wire, bridge).
fn vlan(
    c: &Checker<'_>,
    v: &Option<Spanned<String>>,
    key: String,
) -> Result<VlanRewrite, ConfigError> {
    let Some(v) = v else {
        return Ok(VlanRewrite::None);
    };
    let words: Vec<&str> = v.get_ref().split_whitespace().collect();
    let vid = |s: &str| s.parse::<u16>().ok().filter(|n| (1..=4094).contains(n));
    let r = match words.as_slice() {
        ["pop", a] => vid(a).map(|vid| VlanRewrite::Pop1 { vid }),
        ["push", a] => vid(a).map(|vid| VlanRewrite::Push1 { vid }),
        ["translate", a, b] => vid(a)
            .zip(vid(b))
            .map(|(wire, bridge)| VlanRewrite::Translate1To1 { wire, bridge }),
        _ => None,
    };
    r.map_or_else(
        || {
            c.err(
                v.span(),
                key,
                format!(
                    "`{}`: use \"pop VID\", \"push VID\" or \"translate WIRE BRIDGE\" (VIDs 1-4094)",
                    v.get_ref()
                ),
            )
        },
        Ok,
    )
}

/// Finds an interface by name, or says which key named a missing one.
pub(super) type FindInterface<'a> =
    &'a dyn Fn(&Spanned<String>, String) -> Result<usize, ConfigError>;

/// Checks the bridges and cross-connects; `find` names interfaces.
pub(super) fn parse(
    c: &Checker<'_>,
    raw_bridges: &[RawBridge],
    raw_xconnects: &[RawXConnect],
    find: FindInterface<'_>,
    interfaces: &Arc<sluice_graph::iface::Interfaces>,
) -> Result<(Vec<BridgeDomain>, Vec<XConnect>), ConfigError> {
    let mut bridges = Vec::new();
    for (i, r) in raw_bridges.iter().enumerate() {
        let key = |k: &str| format!("bridge[{i}].{k}");
        let mut b = BridgeDomain::new(c.int(&r.id, &key("id"), 0, i64::from(u32::MAX))?);
        for (k, p) in r.port.iter().enumerate() {
            let pk = |f: &str| format!("bridge[{i}].port[{k}].{f}");
            b.ports.push(BridgePort {
                interface: find(&p.interface, pk("interface"))? as u32,
                split_horizon: match &p.split_horizon {
                    Some(v) => c.int(v, &pk("split-horizon"), 0, 255)?,
                    None => 0,
                },
                vlan: vlan(c, &p.vlan, pk("vlan"))?,
            });
        }
        b.learn = r.learn.unwrap_or(true);
        b.flood = r.flood.unwrap_or(true);
        if let Some(v) = &r.mac_capacity {
            b.mac_capacity = c.int(v, &key("mac-capacity"), 1, i64::from(u32::MAX))?;
        }
        if let Some(v) = &r.aging {
            let max = sluice_fn::l2::MAX_AGING.as_secs() as i64;
            b.aging = Duration::from_secs(c.int(v, &key("aging"), 0, max)?);
        }
        if let Some(v) = &r.bvi {
            b.bvi = Some(find(v, key("bvi"))? as u32);
        }
        for (k, s) in r.static_mac.iter().enumerate() {
            let sk = |f: &str| format!("bridge[{i}].static-mac[{k}].{f}");
            b.static_macs.push(StaticMac {
                mac: c.mac(&s.mac, &sk("mac"))?,
                interface: find(&s.interface, sk("interface"))? as u32,
            });
        }
        bridges.push(b);
    }
    let mut xconnects = Vec::new();
    for (i, r) in raw_xconnects.iter().enumerate() {
        let key = |k: &str| format!("xconnect[{i}].{k}");
        xconnects.push(XConnect {
            from: find(&r.from, key("from"))? as u32,
            to: find(&r.to, key("to"))? as u32,
            vlan: vlan(c, &r.vlan, key("vlan"))?,
        });
    }
    // What only the whole can tell (an interface in two places, a capacity
    // too small for the static MACs): point at the first bridge or
    // cross-connect, and say which in the message.
    if let Err(e) = L2Config::new(bridges.clone(), xconnects.clone(), interfaces.clone()) {
        let span = raw_bridges
            .first()
            .map(|b| b.id.span())
            .or_else(|| raw_xconnects.first().map(|x| x.from.span()))
            .unwrap_or_default();
        let key = if raw_bridges.is_empty() {
            "xconnect"
        } else {
            "bridge"
        };
        return c.err(span, key, e.to_string());
    }
    Ok((bridges, xconnects))
}
