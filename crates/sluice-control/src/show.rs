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
