//! `sluice bench --report DIR`: a Markdown summary and SVG charts of a
//! bench run, for a person to read at a glance.
//!
//! It works from the `--json` objects (the stable names: `scenario`,
//! `mpps_median`, `nodes`, `peers`, ...), so a report can also be drawn
//! from a run saved earlier. The SVG is written by hand: three kinds of
//! bar and line chart do not justify a plotting library's weight.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

/// Cycles per packet the design guide gives for a function done the usual
/// way, and Sluice's target for it.
struct Reference {
    function: &'static str,
    typical: f64,
    target: f64,
}

/// The design guide's row for the function a scenario exercises.
fn reference(scenario: &str) -> Option<Reference> {
    let r = |function, typical, target| {
        Some(Reference {
            function,
            typical,
            target,
        })
    };
    match scenario {
        s if s.starts_with("l2-") => r("L2 forwarding", 70.0, 35.0),
        s if s.starts_with("ip4-route") || s.starts_with("ip6-route") => {
            r("IP routing", 175.0, 80.0)
        }
        s if s.starts_with("acl") => r("L2–L4 classification", 750.0, 120.0),
        s if s.starts_with("firewall") => r("stateful firewall", 2500.0, 300.0),
        _ => None,
    }
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(0.0)
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or("").to_string()
}

/// Escapes text for SVG and for Markdown tables alike.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
}

/// Colours of successive series; the first (Sluice, or all nodes) dark.
const PALETTE: [&str; 14] = [
    "#333333", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a",
];

/// Legend entries per line.
const LEGEND_PER_LINE: usize = 5;

/// One bar: its series, its value, and optionally a (min, max) whisker.
type Bar = (String, f64, Option<(f64, f64)>);

/// A horizontal bar chart: one group a label, one bar a series in the
/// group, optional whiskers (min, max) and reference marks.
struct Bars {
    title: String,
    unit: String,
    /// (group label, [(series name, value, whisker)]).
    groups: Vec<(String, Vec<Bar>)>,
    /// Per group: (mark label, value) drawn as ticks across the group.
    marks: Vec<Vec<(String, f64)>>,
}

const LABEL_W: f64 = 170.0;
const CHART_W: f64 = 520.0;
const BAR_H: f64 = 16.0;
const GAP: f64 = 16.0;

impl Bars {
    fn svg(&self) -> String {
        let max = self
            .groups
            .iter()
            .flat_map(|(_, s)| s.iter().map(|(_, v, w)| w.map_or(*v, |w| w.1.max(*v))))
            .chain(self.marks.iter().flatten().map(|m| m.1))
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.08;
        let scale = CHART_W / max;
        let rows: f64 = self
            .groups
            .iter()
            .map(|(_, s)| s.len().max(1) as f64 * BAR_H + GAP)
            .sum();
        let series_count = {
            let mut names: Vec<&str> = self
                .groups
                .iter()
                .flat_map(|(_, s)| s.iter().map(|b| b.0.as_str()))
                .collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        };
        let legend_h = 16.0 * series_count.div_ceil(LEGEND_PER_LINE).max(1) as f64;
        let height = 40.0 + rows + 30.0 + legend_h;
        let width = LABEL_W + CHART_W + 80.0;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="18" font-size="14" font-weight="bold">{}</text>"#,
            8,
            esc(&self.title)
        );
        let mut y = 34.0;
        let mut series: Vec<String> = Vec::new();
        for (g, (label, bars)) in self.groups.iter().enumerate() {
            let h = bars.len().max(1) as f64 * BAR_H;
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                LABEL_W - 6.0,
                y + h / 2.0 + 4.0,
                esc(label)
            );
            for (k, (name, v, whisker)) in bars.iter().enumerate() {
                let colour = match series.iter().position(|s| s == name) {
                    Some(i) => PALETTE[i % PALETTE.len()],
                    None => {
                        series.push(name.clone());
                        PALETTE[(series.len() - 1) % PALETTE.len()]
                    }
                };
                let by = y + k as f64 * BAR_H;
                let _ = writeln!(
                    out,
                    r#"<rect x="{LABEL_W}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {v:.1} {}</title></rect>"#,
                    by + 1.0,
                    v * scale,
                    BAR_H - 2.0,
                    esc(name),
                    esc(&self.unit)
                );
                if let Some((lo, hi)) = whisker {
                    let my = by + BAR_H / 2.0;
                    let _ = writeln!(
                        out,
                        r#"<line x1="{:.1}" x2="{:.1}" y1="{my:.1}" y2="{my:.1}" stroke="black"/>"#,
                        LABEL_W + lo * scale,
                        LABEL_W + hi * scale
                    );
                }
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                    LABEL_W + whisker.map_or(*v, |w| w.1.max(*v)) * scale + 4.0,
                    by + BAR_H - 4.0,
                    fmt_value(*v)
                );
            }
            for (m, (mark, v)) in self.marks.get(g).into_iter().flatten().enumerate() {
                let x = LABEL_W + v * scale;
                let _ = writeln!(
                    out,
                    r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="black" stroke-dasharray="3,2"><title>{}: {v}</title></line>"#,
                    y - 2.0,
                    y + h + 2.0,
                    esc(mark)
                );
                let _ = writeln!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"#,
                    x,
                    // Alternate above and below, so marks close together
                    // keep their labels apart.
                    if m % 2 == 0 { y - 3.0 } else { y + h + 9.0 },
                    esc(mark)
                );
            }
            y += h + GAP;
        }
        // The axis, with its unit.
        let _ = writeln!(
            out,
            r#"<line x1="{LABEL_W}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="black"/>"#,
            LABEL_W + CHART_W
        );
        let ticks = ticks(max);
        let whole = ticks.get(1).is_some_and(|t| *t >= 1.0);
        for t in ticks {
            let x = LABEL_W + t * scale;
            let _ = writeln!(
                out,
                r#"<line x1="{x:.1}" x2="{x:.1}" y1="{y:.1}" y2="{:.1}" stroke="black"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                y + 4.0,
                y + 15.0,
                if whole {
                    format!("{t:.0}")
                } else {
                    format!("{t:.2}")
                }
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            LABEL_W + CHART_W + 8.0,
            y + 15.0,
            esc(&self.unit)
        );
        // The legend.
        for (i, s) in series.iter().enumerate() {
            let ly = y + 32.0 + 16.0 * (i / LEGEND_PER_LINE) as f64;
            let lx =
                LABEL_W + (CHART_W + 60.0) / LEGEND_PER_LINE as f64 * (i % LEGEND_PER_LINE) as f64;
            let _ = writeln!(
                out,
                r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                ly - 9.0,
                PALETTE[i % PALETTE.len()],
                lx + 14.0,
                ly,
                esc(s)
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

/// A number as a chart prints it: three significant figures or so.
fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Round axis ticks from 0 to `max`: 1, 2 or 5 times a power of ten apart.
fn ticks(max: f64) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0];
    }
    let raw = max / 5.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= max)
        .collect()
}

/// Mpps of each scenario, with its spread, beside each peer that did the
/// same work.
fn mpps_chart(figures: &[Value]) -> Bars {
    let groups = figures
        .iter()
        .map(|f| {
            let mut bars = vec![(
                "Sluice".to_string(),
                num(f, "mpps_median"),
                Some((num(f, "mpps_min"), num(f, "mpps_max"))),
            )];
            for p in f["peers"].as_array().into_iter().flatten() {
                bars.push((text(p, "name"), num(p, "mpps_median"), None));
            }
            (label(f), bars)
        })
        .collect();
    Bars {
        title: "Throughput: Sluice and the peers on the same work".into(),
        unit: "Mpps".into(),
        groups,
        marks: Vec::new(),
    }
}

/// Cycles per packet of each scenario's nodes, with the design guide's
/// typical figure and Sluice's target for the function as marks.
fn cycles_chart(figures: &[Value]) -> Bars {
    let mut groups = Vec::new();
    let mut marks = Vec::new();
    for f in figures {
        let nodes: Vec<Bar> = f["nodes"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(n, c)| Some((n.clone(), c.as_f64()?, None)))
            .filter(|(_, c, _)| *c > 0.0)
            .collect();
        let mut bars = vec![(
            "all nodes".to_string(),
            num(f, "cycles_per_packet_median"),
            None,
        )];
        bars.extend(nodes);
        groups.push((label(f), bars));
        marks.push(
            reference(&text(f, "scenario"))
                .map(|r| {
                    vec![
                        (format!("target {}", r.target), r.target),
                        (format!("typical {}", r.typical), r.typical),
                    ]
                })
                .unwrap_or_default(),
        );
    }
    Bars {
        title: "Cycles per packet, per node (dashed: the design guide's typical and target)".into(),
        unit: "cycles".into(),
        groups,
        marks,
    }
}

/// Mpps against vector size, for scenarios run at several sizes.
fn vector_chart(figures: &[Value]) -> Option<Bars> {
    let mut by: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for f in figures {
        by.entry(text(f, "scenario")).or_default().push((
            f["vector_size"].as_u64().unwrap_or(0),
            num(f, "mpps_median"),
        ));
    }
    by.retain(|_, v| {
        v.sort_by_key(|p| p.0);
        v.dedup_by_key(|p| p.0);
        v.len() > 1
    });
    if by.is_empty() {
        return None;
    }
    let groups = by
        .into_iter()
        .map(|(s, points)| {
            let bars = points
                .into_iter()
                .map(|(size, mpps)| (format!("vector {size}"), mpps, None))
                .collect();
            (s, bars)
        })
        .collect();
    Some(Bars {
        title: "Throughput against vector size".into(),
        unit: "Mpps".into(),
        groups,
        marks: Vec::new(),
    })
}

/// A scenario's label: its name, and the vector size when not the usual.
fn label(f: &Value) -> String {
    match f["vector_size"].as_u64() {
        Some(v) if v != 256 => format!("{} (vector {v})", text(f, "scenario")),
        _ => text(f, "scenario"),
    }
}

/// The Markdown summary.
fn summary(figures: &[Value], charts: &[&str], command: &str, date: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Sluice bench report\n");
    let _ = writeln!(md, "`{command}`, {date}.\n");
    if let Some(f) = figures.first() {
        let _ = writeln!(
            md,
            "Machine: {}, TSC {:.2} GHz, huge pages {}.\n",
            esc(&text(f, "cpu")),
            num(f, "tsc_ghz"),
            if f["huge_pages"].as_bool().unwrap_or(false) {
                "yes"
            } else {
                "no"
            },
        );
    }
    let _ = writeln!(
        md,
        "Cycles per packet are every node's of the run, the generator that writes \
         each packet's bytes and the sinks that read them included; one worker \
         unless the scenario says otherwise. Typical and target are the design \
         guide's figures for the function the scenario exercises.\n"
    );
    let _ = writeln!(
        md,
        "| scenario | what | Mpps (median) | min–max | runs | cycles/packet | typical (design guide) | target | peers (Sluice ÷ peer) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for f in figures {
        let r = reference(&text(f, "scenario"));
        let peers: Vec<String> = f["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{} {:.2} Mpps ({:.2}×)",
                    esc(&text(p, "name")),
                    num(p, "mpps_median"),
                    num(p, "ratio")
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.2}–{:.2} | {} | {:.1} | {} | {} | {} |",
            esc(&label(f)),
            esc(&text(f, "what")),
            num(f, "mpps_median"),
            num(f, "mpps_min"),
            num(f, "mpps_max"),
            f["runs"].as_u64().unwrap_or(0),
            num(f, "cycles_per_packet_median"),
            r.as_ref()
                .map_or("–".into(), |r| format!("{} ({})", r.typical, r.function)),
            r.as_ref().map_or("–".into(), |r| format!("≤ {}", r.target)),
            if peers.is_empty() {
                "none ran".to_string()
            } else {
                peers.join("; ")
            }
        );
    }
    md.push('\n');
    for c in charts {
        let _ = writeln!(md, "![{c}]({c})\n");
    }
    md
}

/// Writes `README.md` and the charts into `dir` (made if missing).
pub fn write(dir: &Path, figures: &[Value], command: &str, date: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut charts = vec![("mpps.svg", mpps_chart(figures))];
    charts.push(("cycles.svg", cycles_chart(figures)));
    if let Some(v) = vector_chart(figures) {
        charts.push(("vector-size.svg", v));
    }
    for (name, chart) in &charts {
        std::fs::write(dir.join(name), chart.svg())?;
    }
    let names: Vec<&str> = charts.iter().map(|c| c.0).collect();
    std::fs::write(
        dir.join("README.md"),
        summary(figures, &names, command, date),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Vec<Value> {
        vec![
            serde_json::json!({
                "scenario": "ip4-route", "what": "IMIX <routing>", "packets": 1000, "runs": 5,
                "mpps_median": 26.0, "mpps_min": 25.0, "mpps_max": 27.5,
                "cycles_per_packet_median": 99.0, "vectors_per_call": 256.0,
                "nodes": {"ip4-lookup": 10.0, "ip4-rewrite": 17.0},
                "peers": [{"name": "dpdk-testpmd", "mpps_median": 13.0, "ratio": 2.0}],
                "cpu": "Test CPU", "tsc_ghz": 2.6, "huge_pages": false, "vector_size": 256
            }),
            serde_json::json!({
                "scenario": "ip4-route", "what": "IMIX", "packets": 1000, "runs": 5,
                "mpps_median": 12.0, "mpps_min": 11.0, "mpps_max": 13.0,
                "cycles_per_packet_median": 190.0, "nodes": {}, "peers": [],
                "cpu": "Test CPU", "tsc_ghz": 2.6, "huge_pages": false, "vector_size": 16
            }),
        ]
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(47.0), vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        assert_eq!(ticks(0.0), vec![0.0]);
        assert_eq!(ticks(f64::NAN), vec![0.0]);
    }

    #[test]
    fn charts_are_well_formed_svg_with_every_value() {
        let f = figures();
        let svg = mpps_chart(&f).svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        for want in ["26.0", "13.0", "dpdk-testpmd", "ip4-route (vector 16)"] {
            assert!(svg.contains(want), "{want} missing from\n{svg}");
        }
        // Text is escaped, so the document stays XML.
        assert!(!svg.contains("<routing>"));
        let cycles = cycles_chart(&f).svg();
        assert!(cycles.contains("target 80") && cycles.contains("typical 175"));
        assert!(cycles.contains("ip4-rewrite"));
        let v = vector_chart(&f).expect("two vector sizes of one scenario");
        assert_eq!(v.groups[0].1.len(), 2);
        assert!(vector_chart(&f[..1]).is_none(), "one size is no curve");
    }

    #[test]
    fn the_report_has_a_table_row_per_scenario_and_links_its_charts() {
        let dir = std::env::temp_dir().join(format!("sluice-report-{}", std::process::id()));
        let f = figures();
        write(&dir, &f, "sluice bench --report x", "2026-11-30").unwrap();
        let md = std::fs::read_to_string(dir.join("README.md")).unwrap();
        assert!(md.contains("| ip4-route | IMIX &lt;routing&gt; | 26.00 | 25.00–27.50 | 5 | 99.0 | 175 (IP routing) | ≤ 80 | dpdk-testpmd 13.00 Mpps (2.00×) |"), "{md}");
        assert!(md.contains("none ran"));
        for chart in ["mpps.svg", "cycles.svg", "vector-size.svg"] {
            assert!(md.contains(&format!("]({chart})")));
            assert!(dir.join(chart).exists());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
