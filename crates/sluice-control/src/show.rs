//! `show interface`, in VPP's layout: one block per interface, a counter a
//! line, zero counters left out.

use std::fmt::Write;

use sluice_graph::iface::{IfStats, Interfaces};

/// The interface table with every non-zero counter, summed over workers.
pub fn interfaces(interfaces: &Interfaces, stats: &IfStats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16}{:>5}  {:<9}{:>6}  {:<18}{:>16}",
        "Name", "Idx", "Driver", "MTU", "Counter", "Count"
    );
    for i in interfaces.iter() {
        let counters = [
            ("rx packets", stats.sum(i.index, |c| &c.rx_packets)),
            ("rx bytes", stats.sum(i.index, |c| &c.rx_bytes)),
            ("rx drops", stats.sum(i.index, |c| &c.rx_drops)),
            ("tx packets", stats.sum(i.index, |c| &c.tx_packets)),
            ("tx bytes", stats.sum(i.index, |c| &c.tx_bytes)),
            ("tx errors", stats.sum(i.index, |c| &c.tx_errors)),
        ];
        let mut first = true;
        for (name, v) in counters.iter().filter(|(_, v)| *v > 0) {
            if first {
                let _ = writeln!(
                    out,
                    "{:<16}{:>5}  {:<9}{:>6}  {:<18}{:>16}",
                    i.name, i.index, i.driver, i.mtu, name, v
                );
                first = false;
            } else {
                let _ = writeln!(out, "{:<40}{:<18}{:>16}", "", name, v);
            }
        }
        if first {
            let _ = writeln!(
                out,
                "{:<16}{:>5}  {:<9}{:>6}",
                i.name, i.index, i.driver, i.mtu
            );
        }
    }
    out
}
