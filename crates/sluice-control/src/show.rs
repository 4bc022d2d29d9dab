//! `show interface`, in VPP's layout: one block per interface, a counter a
//! line, zero counters left out.

use std::fmt::Write;

use std::sync::Arc;

use sluice_graph::iface::{IfStats, Interfaces};
use sluice_io::LinkStatus;

/// The interface table with every non-zero counter, summed over workers,
/// and the link state of kernel interfaces (`links`, by index).
pub fn interfaces(
    interfaces: &Interfaces,
    stats: &IfStats,
    links: &[Option<Arc<LinkStatus>>],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}{:>5}  {:<15}{:>6}  {:<19}{:<18}{:>16}",
        "Name", "Idx", "Driver", "MTU", "MAC", "Counter", "Count"
    );
    for i in interfaces.iter() {
        let link = links.get(i.index as usize).and_then(|l| l.as_ref());
        let state = link.map(|l| l.describe());
        let driver = match state {
            Some(s) => format!("{} {s}", i.driver),
            None => i.driver.clone(),
        };
        let counters = [
            ("rx packets", stats.sum(i.index, |c| &c.rx_packets)),
            ("rx bytes", stats.sum(i.index, |c| &c.rx_bytes)),
            ("rx drops", stats.sum(i.index, |c| &c.rx_drops)),
            ("tx packets", stats.sum(i.index, |c| &c.tx_packets)),
            ("tx bytes", stats.sum(i.index, |c| &c.tx_bytes)),
            ("tx errors", stats.sum(i.index, |c| &c.tx_errors)),
            ("link downs", link.map_or(0, |l| l.downs())),
        ];
        let mut first = true;
        for (name, v) in counters.iter().filter(|(_, v)| *v > 0) {
            if first {
                let _ = writeln!(
                    out,
                    "{:<16}{:>5}  {:<15}{:>6}  {:<19}{:<18}{:>16}",
                    i.name,
                    i.index,
                    driver,
                    i.mtu,
                    i.mac.to_string(),
                    name,
                    v
                );
                first = false;
            } else {
                let _ = writeln!(out, "{:<65}{:<18}{:>16}", "", name, v);
            }
        }
        if first {
            let _ = writeln!(
                out,
                "{:<16}{:>5}  {:<15}{:>6}  {}",
                i.name, i.index, driver, i.mtu, i.mac
            );
        }
    }
    out
}

/// `show bridge-domain`: each bridge, its ports, its BVI and how many MACs
/// its table holds.
pub fn bridge_domains(
    l2: &sluice_fn::L2State,
    interfaces: &Interfaces,
) -> (String, Vec<crate::api::BridgeRow>) {
    let name = |i: u32| {
        interfaces
            .get(i)
            .map_or_else(|| format!("if{i}"), |x| x.name.clone())
    };
    let rows: Vec<crate::api::BridgeRow> = l2
        .config()
        .bridges()
        .iter()
        .map(|b| crate::api::BridgeRow {
            id: b.id,
            ports: b.ports.iter().map(|p| name(p.interface)).collect(),
            bvi: b.bvi.map(name),
            macs: l2.table(b.id).map_or(0, |t| t.len()),
            learn: b.learn,
            flood: b.flood,
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>6}  {:>6}  {:<5}  {:<5}  {:<16}  Ports",
        "BD-ID", "MACs", "Learn", "Flood", "BVI"
    );
    for r in &rows {
        let on = |b| if b { "on" } else { "off" };
        let _ = writeln!(
            out,
            "{:>6}  {:>6}  {:<5}  {:<5}  {:<16}  {}",
            r.id,
            r.macs,
            on(r.learn),
            on(r.flood),
            r.bvi.as_deref().unwrap_or("-"),
            r.ports.join(" ")
        );
    }
    if rows.is_empty() {
        out.push_str("No bridge domains\n");
    }
    (out, rows)
}

/// `show threads`: per worker, its thread, core and inputs.
pub fn threads(cores: &[Option<usize>], inputs: &[Vec<String>]) -> crate::api::Reply {
    let rows: Vec<crate::api::ThreadRow> = inputs
        .iter()
        .enumerate()
        .map(|(w, i)| crate::api::ThreadRow {
            worker: w,
            name: format!("sluice_wk_{w}"),
            core: cores.get(w).copied().flatten(),
            inputs: i.clone(),
        })
        .collect();
    let mut text = format!("{:<4}{:<14}{:<10}Inputs\n", "ID", "Name", "Core");
    for r in &rows {
        let core = r.core.map_or("unpinned".to_string(), |c| c.to_string());
        let _ = writeln!(
            text,
            "{:<4}{:<14}{:<10}{}",
            r.worker,
            r.name,
            core,
            r.inputs.join("; ")
        );
    }
    crate::api::Reply::Threads { text, rows }
}

/// One rule in words, as the configuration spells it.
fn rule_words(r: &sluice_fn::acl::Rule) -> String {
    use sluice_fn::acl::Action;
    let mut w = vec![match r.action {
        Action::Permit => "permit".to_string(),
        Action::Deny => "deny".to_string(),
        Action::PermitReflect => "permit-reflect".to_string(),
    }];
    if let Some(p) = r.src {
        w.push(format!("src {p}"));
    }
    if let Some(p) = r.dst {
        w.push(format!("dst {p}"));
    }
    if let Some(p) = r.proto {
        w.push(format!("proto {}", p.value));
    }
    for (name, range) in [("sport", r.sport), ("dport", r.dport)] {
        if !range.is_any() {
            w.push(if range.lo == range.hi {
                format!("{name} {}", range.lo)
            } else {
                format!("{name} {}-{}", range.lo, range.hi)
            });
        }
    }
    if let Some(t) = r.icmp_type {
        w.push(format!("icmp-type {t}"));
    }
    if let Some(c) = r.icmp_code {
        w.push(format!("icmp-code {c}"));
    }
    if let Some(d) = r.dscp {
        w.push(format!("dscp {d}"));
    }
    if let Some(m) = r.src_mac {
        w.push(format!("src-mac {m}"));
    }
    if let Some(m) = r.dst_mac {
        w.push(format!("dst-mac {m}"));
    }
    if let Some(v) = r.vlan {
        w.push(format!("vlan {v}"));
    }
    w.join(" ")
}

/// `show acl`: each list, its rules, where it stands; then the packets
/// each ACL node denied (`denied`, summed over workers).
pub fn acls(config: &crate::Config, denied: Vec<crate::api::ErrorRow>) -> crate::api::Reply {
    use crate::api::AclRow;
    let mut rows = Vec::new();
    for a in &config.acls {
        let on = |pick: fn(&crate::config::IfFeatures) -> &Option<String>| -> Vec<String> {
            config
                .features
                .iter()
                .enumerate()
                .filter(|(_, f)| pick(f).as_deref() == Some(a.name.as_str()))
                .filter_map(|(i, _)| config.interfaces.get(i).map(|x| x.name.clone()))
                .collect()
        };
        rows.push(AclRow {
            name: a.name.clone(),
            default: if a.default.permits() {
                "permit"
            } else {
                "deny"
            }
            .to_string(),
            rules: a.rules.iter().map(rule_words).collect(),
            inbound: on(|f| &f.acl_in),
            outbound: on(|f| &f.acl_out),
        });
    }
    let mut text = String::new();
    for r in &rows {
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(" ")
            }
        };
        let _ = writeln!(
            text,
            "acl {}: {} rule(s), default {}, in on {}, out on {}",
            r.name,
            r.rules.len(),
            r.default,
            list(&r.inbound),
            list(&r.outbound)
        );
        for (k, rule) in r.rules.iter().enumerate() {
            let _ = writeln!(text, "  {k:>4}  {rule}");
        }
    }
    if rows.is_empty() {
        text.push_str("No access lists\n");
    }
    for d in &denied {
        let _ = writeln!(text, "{:<14}{:>12}  {}", d.node, d.count, d.name);
    }
    crate::api::Reply::Acls { text, rows, denied }
}

/// `show conntrack`: each worker's tables, and their sum.
pub fn conntrack(tables: &[crate::features::TableStats]) -> crate::api::Reply {
    use crate::api::ConntrackRow;
    let rows: Vec<ConntrackRow> = tables
        .iter()
        .map(|t| {
            let c = t.stats.total.snapshot();
            ConntrackRow {
                worker: t.worker,
                family: t.family.to_string(),
                capacity: t.stats.capacity,
                sessions: c.sessions,
                created: c.created,
                expired: c.expired,
                evicted: c.evicted,
                refused: c.refused,
            }
        })
        .collect();
    let mut text = format!(
        "{:<7}{:<7}{:>10}{:>10}{:>12}{:>12}{:>10}{:>10}\n",
        "Worker", "Family", "Capacity", "Sessions", "Created", "Expired", "Evicted", "Refused"
    );
    for r in &rows {
        let _ = writeln!(
            text,
            "{:<7}{:<7}{:>10}{:>10}{:>12}{:>12}{:>10}{:>10}",
            r.worker, r.family, r.capacity, r.sessions, r.created, r.expired, r.evicted, r.refused
        );
    }
    if rows.is_empty() {
        text = "No connection tracking (add a [conntrack] section)\n".to_string();
    }
    crate::api::Reply::Conntrack { text, rows }
}

/// `show ids`: each rule's alerts, and what the detector scanned and
/// logged, summed over workers and address families.
pub fn ids(
    settings: Option<&crate::config::IdsSettings>,
    detectors: &[crate::features::DetectorStats],
) -> crate::api::Reply {
    use crate::api::IdsRuleRow;
    use sluice_fn::ids::IdsStats;
    let Some(settings) = settings else {
        return crate::api::Reply::Ids {
            text: "No intrusion detection (add an [ids] section)\n".to_string(),
            mode: String::new(),
            rules: Vec::new(),
            scanned: 0,
            alerts: 0,
            logged: 0,
            suppressed: 0,
        };
    };
    let sum = |f: fn(&IdsStats) -> u64| detectors.iter().map(|d| f(&d.stats)).sum::<u64>();
    let rules: Vec<IdsRuleRow> = settings
        .rules
        .rules()
        .iter()
        .map(|r| IdsRuleRow {
            sid: r.sid,
            msg: r.msg.clone(),
            alerts: detectors.iter().map(|d| d.stats.by_sid(r.sid)).sum(),
        })
        .collect();
    let mode = crate::config::ids::mode_word(settings.alerting.mode).to_string();
    let (scanned, alerts) = (
        sum(|s| IdsStats::get(&s.scanned)),
        sum(|s| IdsStats::get(&s.alerts)),
    );
    let (logged, suppressed) = (
        sum(|s| IdsStats::get(&s.logged)),
        sum(|s| IdsStats::get(&s.suppressed)),
    );
    let mut text = format!(
        "Mode {mode}, rules from {}\n{:>10}{:>12}  {}\n",
        settings.rules_file.display(),
        "Sid",
        "Alerts",
        "Message"
    );
    for r in &rules {
        let _ = writeln!(text, "{:>10}{:>12}  {}", r.sid, r.alerts, r.msg);
    }
    let _ = writeln!(
        text,
        "Scanned {scanned} packets, {alerts} alerts, {logged} logged, {suppressed} log lines suppressed"
    );
    crate::api::Reply::Ids {
        text,
        mode,
        rules,
        scanned,
        alerts,
        logged,
        suppressed,
    }
}

/// `show features`: per arc and interface, the features in order.
pub fn features(enabled: &[(String, String, Vec<String>)]) -> crate::api::Reply {
    let mut text = String::new();
    for (arc, itf, on) in enabled {
        let _ = writeln!(text, "{arc:<12} {itf:<16} {}", on.join(" -> "));
    }
    if enabled.is_empty() {
        text.push_str("No features enabled\n");
    }
    crate::api::Reply::Table { text }
}
