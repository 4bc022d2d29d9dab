//! Several workers through the whole data plane: `[workers]` handoff
//! settings, a route change that every worker sees within one vector,
//! and a handoff run that ends with every packet forwarded and every
//! buffer back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sluice_control::config::ConfigError;
use sluice_control::{Config, Dataplane};
use sluice_fn::rss::RssHash;
use sluice_fn::{Path, Route};
use sluice_wire::MacAddr;

const ROUTED: &str = r#"
[workers]
count = 2
handoff = true
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
name = "s"
interface = "pg0"
COUNT_OR_RATE
src-ip = "10.0.0.0/16"
dst-ip = "10.1.0.0/16"
protocol = "udp"
src-port = "1024-65535"
dst-port = "1-1024"
flows = 1000
"#;

#[test]
fn workers_section_sets_handoff_or_refuses_with_the_key() {
    let c = Config::parse(&ROUTED.replace("COUNT_OR_RATE", "count = 1")).unwrap();
    let h = c.handoff.expect("handoff on");
    assert_eq!(
        (h.ring_size, h.hash, h.symmetric),
        (4096, RssHash::Toeplitz, false)
    );
    let c = Config::parse(
        "[workers]\nhandoff = true\nhandoff-ring = 256\nflow-hash = \"fast\"\nsymmetric = true\n",
    )
    .unwrap();
    let h = c.handoff.expect("handoff on");
    assert_eq!(
        (h.ring_size, h.hash, h.symmetric),
        (256, RssHash::Fast, true)
    );
    assert_eq!(
        Config::parse("[workers]\ncount = 2\n").unwrap().handoff,
        None
    );
    for (src, line, key) in [
        (
            "[workers]\nhandoff = true\nflow-hash = \"crc\"\n",
            3,
            "workers.flow-hash",
        ),
        (
            "[workers]\nhandoff = true\nhandoff-ring = 1\n",
            3,
            "workers.handoff-ring",
        ),
        ("[workers]\nsymmetric = true\n", 2, "workers.symmetric"),
    ] {
        match Config::parse(src) {
            Err(ConfigError::Value {
                line: l, key: k, ..
            }) => assert_eq!((l, k.as_str()), (line, key)),
            other => panic!("{src}: expected `{key}` refused, got {other:?}"),
        }
    }
}

/// 2 workers, 200k packets with handoff on: every packet leaves by sink0,
/// about half crossed to the other worker, none dropped, every buffer
/// back. The rings are deeper than the pool, so a worker that the test
/// machine's other load puts to sleep for a while can fill nothing: the
/// generator waits for buffers instead.
#[test]
fn handoff_run_forwards_everything_and_ends() {
    let cfg = Config::parse(
        &ROUTED
            .replace("COUNT_OR_RATE", "count = 200_000\nrate = 2e6")
            .replace("handoff = true", "handoff = true\nhandoff-ring = 65536"),
    )
    .unwrap();
    let report = Dataplane::build(&cfg)
        .unwrap()
        .run(
            Arc::new(AtomicBool::new(false)),
            Some(Duration::from_secs(60)),
        )
        .unwrap();
    assert_eq!(report.panics, 0);
    let tx = |name: &str| report.if_counts.iter().find(|c| c.0 == name).unwrap().2;
    assert_eq!(tx("sink0"), 200_000, "{}", report.errors);
    let relayed = report
        .rows
        .iter()
        .find(|r| r.name == sluice_fn::handoff::INPUT)
        .map_or(0, |r| r.vectors);
    assert!((60_000..140_000).contains(&relayed), "{relayed} handed off");
    assert_eq!(report.buffers.0, report.buffers.1);
}

/// While both workers forward (to sink0), the route moves to sink1. When
/// `fib.add` returns, each worker has at most the vectors in its hands (one
/// per input) still to send by the old route: its sink0 count grows by no
/// more than that, and then it forwards by sink1.
#[test]
fn route_change_is_seen_by_every_worker_within_one_vector() {
    let cfg = Config::parse(&ROUTED.replace("COUNT_OR_RATE", "rate = 2e6")).unwrap();
    let dp = Dataplane::build(&cfg).unwrap();
    let fib = dp.fib();
    let ifs = dp.if_stats();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let run = std::thread::spawn(move || dp.run(flag, Some(Duration::from_secs(60))));
    let tx = |w: usize, i: usize| ifs.worker(w)[i].tx_packets.get();
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait("both workers forward by sink0", &|| {
        tx(0, 1) > 10_000 && tx(1, 1) > 10_000
    });
    fib.add(&Route {
        table: 0,
        prefix: "10.1.0.0/16".parse().unwrap(),
        paths: vec![Path::Via {
            interface: 2,
            addr: None,
            mac: Some(MacAddr([2, 0, 0, 0, 0, 2])),
        }],
    })
    .unwrap();
    let at_change = [tx(0, 1), tx(1, 1)];
    wait("both workers forward by sink1", &|| {
        tx(0, 2) > 10_000 && tx(1, 2) > 10_000
    });
    let after = [tx(0, 1), tx(1, 1)];
    stop.store(true, Ordering::Relaxed);
    let report = run.join().unwrap().unwrap();
    // A worker with handoff has two inputs, its generator and the packets
    // relayed to it: a vector of each can be past ip4-lookup, not yet
    // sent, when the change lands. No vector looked up after it goes the
    // old way.
    for w in 0..2 {
        let late = after[w] - at_change[w];
        assert!(
            late <= 2 * sluice_graph::FRAME_SIZE as u64,
            "worker {w} sent {late} packets by the old route after the change"
        );
    }
    assert_eq!(report.buffers.0, report.buffers.1);
}
