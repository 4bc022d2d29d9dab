//! Route churn while forwarding: hundreds of thousands of route adds and
//! deletes a second, some of them more specific than the traffic's route,
//! and not one packet misrouted or lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_control::{Config, Dataplane};
use sluice_fn::{Path, Route};
use sluice_wire::MacAddr;

const CONFIG: &str = r#"
[[interface]]
name = "pg0"
driver = "pg"
[[interface]]
name = "sink0"
driver = "sink"
[[interface]]
name = "sink1"
driver = "sink"
[[route]]
prefix = "10.1.0.0/16"
interface = "sink0"
via-mac = "02:00:00:00:00:01"
[[stream]]
name = "steady"
interface = "pg0"
count = 2_000_000
rate = 1e6
src-ip = "10.0.0.1"
dst-ip = "10.1.0.0/16"
protocol = "udp"
flows = 1000
"#;

#[test]
fn churn_while_forwarding_misroutes_and_loses_nothing() {
    let cfg = Config::parse(CONFIG).unwrap();
    let dp = Dataplane::build(&cfg).unwrap();
    let fib = dp.fib();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    // More specifics inside the traffic's /16, to the same next hop: a
    // packet may match either, and must leave by sink0 whichever it meets.
    // Routes outside the traffic go to sink1: none may ever go there.
    let churn = std::thread::spawn(move || {
        let same = Path::Via {
            interface: 1,
            addr: None,
            mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
        };
        let other = Path::Via {
            interface: 2,
            addr: None,
            mac: Some(MacAddr([2, 0, 0, 0, 0, 2])),
        };
        let mut changes = 0u64;
        let started = Instant::now();
        let mut i = 0u32;
        while !flag.load(Ordering::Relaxed) {
            let inner = Route {
                table: 0,
                prefix: format!("10.1.{}.0/24", i % 256).parse().unwrap(),
                paths: vec![same],
            };
            let outer = Route {
                table: 0,
                prefix: format!("10.{}.{}.0/24", 2 + (i / 256) % 200, i % 256)
                    .parse()
                    .unwrap(),
                paths: vec![other],
            };
            fib.add(&inner).unwrap();
            fib.add(&outer).unwrap();
            fib.remove(0, inner.prefix).unwrap();
            fib.remove(0, outer.prefix).unwrap();
            changes += 4;
            i = i.wrapping_add(1);
        }
        changes as f64 / started.elapsed().as_secs_f64()
    });
    let report = dp
        .run(
            Arc::new(AtomicBool::new(false)),
            Some(Duration::from_secs(30)),
        )
        .unwrap();
    done.store(true, Ordering::Relaxed);
    let rate = churn.join().unwrap();
    eprintln!("{:.0} route changes a second while forwarding", rate);
    let count = |name: &str| {
        report
            .if_counts
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|&(_, rx, tx)| (rx, tx))
            .unwrap()
    };
    assert_eq!(count("pg0").0, 2_000_000);
    assert_eq!(count("sink0").1, 2_000_000, "every packet left by sink0");
    assert_eq!(count("sink1").1, 0, "none misrouted");
    assert_eq!(report.packets_dropped, 0, "{}", report.errors);
    assert!(rate > 100_000.0, "churn at {rate:.0}/s");
    let (total, free) = report.buffers;
    assert_eq!(total, free);
}
