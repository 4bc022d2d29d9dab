//! `sluice bench` smoke run: every scenario still runs and says how its
//! figures were made (not how fast — that is for a quiet machine).

use std::process::Command;

#[test]
fn every_scenario_runs_and_reports_in_json() {
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "--quick", "--runs", "1", "--json"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let list = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "list"])
        .output()
        .unwrap();
    let scenarios = String::from_utf8_lossy(&list.stdout).lines().count();
    assert!(scenarios >= 5, "bench list: {scenarios} scenarios");
    assert_eq!(lines.len(), scenarios, "{out}");
    for v in &lines {
        for key in [
            "scenario",
            "workers",
            "scaling",
            "packets",
            "runs",
            "mpps_median",
            "mpps_min",
            "mpps_max",
            "cycles_per_packet_median",
            "nodes",
            "peers",
            "cpu",
            "tsc_ghz",
            "huge_pages",
            "vector_size",
        ] {
            assert!(v.get(key).is_some(), "no `{key}` in {v}");
        }
        assert!(v["mpps_median"].as_f64().unwrap() > 0.0, "{v}");
        assert!(v["packets"].as_u64().unwrap() >= 100_000, "{v}");
        assert!(!v["nodes"].as_object().unwrap().is_empty(), "{v}");
    }
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "no-such-scenario"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ip4-route"));
}

#[test]
fn a_scenario_slower_than_its_baseline_is_flagged() {
    let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fast = dir.join("fast.json");
    let slow = dir.join("slow.json");
    // A baseline no machine reaches, and one any machine beats.
    std::fs::write(
        &fast,
        r#"{"scenario":"l2-xconnect","mpps_median":100000.0}"#,
    )
    .unwrap();
    std::fs::write(&slow, r#"{"scenario":"l2-xconnect","mpps_median":0.001}"#).unwrap();
    let run = |baseline: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args([
                "bench",
                "l2-xconnect",
                "--quick",
                "--runs",
                "1",
                "--compare",
            ])
            .arg(baseline)
            .output()
            .unwrap()
    };
    let o = run(&fast);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("slower: l2-xconnect"));
    assert!(run(&slow).status.success());
    std::fs::write(&slow, "garbage\n").unwrap();
    assert_eq!(run(&slow).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--workers 2`: the scenario on 1 and on 2 workers, each line saying
/// which; with handoff, about half the packets cross.
#[test]
fn workers_option_runs_every_count_up_to_n() {
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "bench",
            "ip4-route-handoff",
            "--quick",
            "--runs",
            "1",
            "--json",
            "--workers",
            "2",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let workers: Vec<u64> = lines
        .iter()
        .map(|v| v["workers"].as_u64().unwrap())
        .collect();
    assert_eq!(workers, vec![1, 2], "{out}");
    assert_eq!(lines[0]["scaling"].as_f64(), Some(1.0));
    assert_eq!(
        lines[0]["handed_off"].as_f64(),
        Some(0.0),
        "one worker hands off nothing"
    );
    // Twice the packets on two workers, and some of them crossed (ring
    // drops on a busy machine may take some of the other half).
    assert!(lines[1]["packets"].as_u64() == Some(400_000), "{out}");
    assert!(lines[1]["handed_off"].as_f64().unwrap() > 0.05, "{out}");
    assert!(lines[1]["nodes"].get("handoff-input").is_some(), "{out}");
}

#[test]
fn a_report_is_markdown_and_charts_for_the_scenarios_run() {
    let dir = sluice_testnet::Scratch::new("brep");
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "bench",
            "--quick",
            "--runs",
            "1",
            "--vector-sizes",
            "32,256",
        ])
        .arg("--report")
        .arg(dir.path())
        .arg("l2-xconnect")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(md.contains("| l2-xconnect (vector 32) |"), "{md}");
    assert!(md.contains("| l2-xconnect |"), "{md}");
    assert!(
        md.contains("≤ 35"),
        "the design guide's target is beside it: {md}"
    );
    for chart in ["mpps.svg", "cycles.svg", "vector-size.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("l2-xconnect"),
            "{chart}"
        );
    }
    // A bad vector size is refused before anything runs.
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["bench", "--quick", "--vector-sizes", "0", "l2-xconnect"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--vector-sizes"));
}
