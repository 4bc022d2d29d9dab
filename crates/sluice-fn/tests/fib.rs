//! The FIB: routes of every kind, tables (VRFs), ECMP, neighbours, and
//! that what a removed route held is released.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use sluice_fn::fib::{AdjKind, Fib, FibConfig, FibError, LpmConfig, Path, Prefix, Route};
use sluice_graph::iface::Interfaces;
use sluice_wire::MacAddr;

fn ifs() -> Arc<Interfaces> {
    let mut i = Interfaces::new();
    for k in 0..4u8 {
        i.add(
            &format!("if{k}"),
            "test",
            MacAddr([2, 0, 0, 0, 0, k]),
            1500,
            Some(format!("if{k}-output")),
        );
    }
    i.add("rx-only", "test", MacAddr([2, 0, 0, 0, 0, 9]), 1500, None);
    Arc::new(i)
}

fn small(tables: u32) -> FibConfig {
    FibConfig {
        tables,
        v4: LpmConfig {
            root_bits: 16,
            max_groups: 1024,
            huge_pages: false,
            stride: 8,
            skip: true,
        },
        v6: LpmConfig {
            root_bits: 16,
            max_groups: 1024,
            huge_pages: false,
            stride: 8,
            skip: true,
        },
        adjacencies: 64,
        load_balances: 8,
        vrf_root_bits: 16,
    }
}

fn via(interface: u32, last: u8) -> Path {
    Path::Via {
        interface,
        addr: None,
        mac: Some(MacAddr([2, 0, 0, 0, 1, last])),
    }
}

fn route(table: u32, p: &str, paths: Vec<Path>) -> Route {
    Route {
        table,
        prefix: p.parse().unwrap(),
        paths,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn every_kind_of_route_resolves_to_its_adjacency() {
    let fib = Fib::new(small(1), ifs()).unwrap();
    fib.add(&route(0, "10.0.0.0/8", vec![via(1, 1)])).unwrap();
    fib.add(&route(
        0,
        "10.1.0.0/16",
        vec![Path::Connected { interface: 2 }],
    ))
    .unwrap();
    fib.add(&route(0, "10.1.0.1/32", vec![Path::Local { interface: 2 }]))
        .unwrap();
    fib.add(&route(0, "192.0.2.0/24", vec![Path::Drop]))
        .unwrap();
    fib.add(&route(0, "198.51.100.0/24", vec![Path::Prohibit]))
        .unwrap();
    fib.add(&route(0, "203.0.113.0/24", vec![Path::Unreachable]))
        .unwrap();
    fib.add(&route(0, "2001:db8::/32", vec![via(3, 3)]))
        .unwrap();
    let kind = |a: &str| fib.resolve(0, ip(a), 0).map(|a| a.kind);
    assert_eq!(kind("10.9.9.9"), Some(AdjKind::Neighbor));
    assert_eq!(kind("10.1.2.3"), Some(AdjKind::Glean));
    assert_eq!(kind("10.1.0.1"), Some(AdjKind::Local));
    assert_eq!(kind("192.0.2.7"), Some(AdjKind::Drop));
    assert_eq!(kind("198.51.100.7"), Some(AdjKind::Prohibit));
    assert_eq!(kind("203.0.113.7"), Some(AdjKind::Unreachable));
    assert_eq!(kind("2001:db8::1"), Some(AdjKind::Neighbor));
    assert_eq!(kind("8.8.8.8"), None);
    let a = fib.resolve(0, ip("10.9.9.9"), 0).unwrap();
    assert_eq!(a.interface, 1);
    assert_eq!(a.mac, Some(MacAddr([2, 0, 0, 0, 1, 1])));
    assert_eq!(fib.routes(0).len(), 7);
    assert_eq!(
        fib.routes(0)[0],
        route(0, "10.0.0.0/8", vec![via(1, 1)]),
        "routes list back as given"
    );
}

#[test]
fn tables_are_separate() {
    let fib = Fib::new(small(3), ifs()).unwrap();
    fib.add(&route(1, "10.0.0.0/8", vec![via(1, 1)])).unwrap();
    fib.add(&route(2, "10.0.0.0/8", vec![via(2, 2)])).unwrap();
    assert_eq!(fib.resolve(0, ip("10.0.0.1"), 0), None);
    assert_eq!(fib.resolve(1, ip("10.0.0.1"), 0).unwrap().interface, 1);
    assert_eq!(fib.resolve(2, ip("10.0.0.1"), 0).unwrap().interface, 2);
    fib.bind(3, 2).unwrap();
    assert_eq!(fib.table_of(3), 2);
    assert_eq!(fib.table_of(0), 0);
    assert_eq!(fib.bind(0, 3), Err(FibError::NoTable(3, 3)));
    assert_eq!(
        fib.add(&route(3, "10.0.0.0/8", vec![via(1, 1)])),
        Err(FibError::NoTable(3, 3))
    );
}

#[test]
fn ecmp_spreads_flows_over_every_path_and_is_stable() {
    let fib = Fib::new(small(1), ifs()).unwrap();
    let paths = vec![via(0, 10), via(1, 11), via(2, 12), via(3, 13)];
    fib.add(&route(0, "0.0.0.0/0", paths.clone())).unwrap();
    let mut per_if = [0u32; 4];
    for k in 0..40_000u32 {
        // A well-mixed hash, as ip4-lookup computes from the 5-tuple.
        let h = k.wrapping_mul(0x9e37_79b9);
        let a = fib.resolve(0, ip("1.2.3.4"), h).unwrap();
        per_if[a.interface as usize] += 1;
        assert_eq!(
            fib.resolve(0, ip("1.2.3.4"), h).unwrap(),
            a,
            "same flow, same path"
        );
    }
    for n in per_if {
        assert!((9_000..11_000).contains(&n), "{per_if:?}");
    }
    // The same path set is one group, shared.
    fib.add(&route(0, "10.0.0.0/8", paths)).unwrap();
    assert_eq!(fib.load_balances_in_use(), 1);
}

#[test]
fn removing_and_replacing_routes_releases_what_they_held() {
    let config = FibConfig {
        load_balances: 32,
        ..small(1)
    };
    let fib = Fib::new(config, ifs()).unwrap();
    for k in 0..20u8 {
        let p = format!("10.{k}.0.0/16");
        fib.add(&route(0, &p, vec![via(1, k % 3), via(2, k % 5)]))
            .unwrap();
        fib.add(&route(0, &format!("2001:db8:{k}::/48"), vec![via(3, k)]))
            .unwrap();
    }
    // Replace half, then remove everything.
    for k in 0..10u8 {
        fib.add(&route(0, &format!("10.{k}.0.0/16"), vec![Path::Drop]))
            .unwrap();
    }
    for r in fib.routes(0) {
        fib.remove(0, r.prefix).unwrap();
    }
    assert!(fib.routes(0).is_empty());
    assert_eq!(fib.adjacencies_in_use(), 0);
    assert_eq!(fib.load_balances_in_use(), 0);
    let p: Prefix = "10.0.0.0/16".parse().unwrap();
    assert_eq!(fib.remove(0, p), Err(FibError::NoRoute(0, p)));
}

#[test]
fn full_tables_refuse_and_change_nothing() {
    let fib = Fib::new(small(1), ifs()).unwrap();
    // 64 adjacencies: the 65th distinct neighbour is refused.
    for k in 0..64u32 {
        let p = Prefix::V4(Ipv4Addr::from(0x0a00_0000 | (k << 8)), 24);
        fib.add(&Route {
            table: 0,
            prefix: p,
            paths: vec![via(k % 4, k as u8)],
        })
        .unwrap();
    }
    let r = route(0, "11.0.0.0/8", vec![via(0, 200)]);
    assert_eq!(fib.add(&r), Err(FibError::Full("adjacency")));
    assert_eq!(fib.resolve(0, ip("11.0.0.1"), 0), None);
    assert_eq!(fib.routes(0).len(), 64);
    // ECMP over existing neighbours still works, until groups run out.
    for k in 0..8u8 {
        fib.add(&route(
            0,
            &format!("12.{k}.0.0/16"),
            vec![via(0, 0), via(1, 1 + 4 * k)],
        ))
        .unwrap();
    }
    assert_eq!(
        fib.add(&route(0, "13.0.0.0/8", vec![via(0, 0), via(2, 2)])),
        Err(FibError::Full("load-balance"))
    );
    assert_eq!(fib.adjacencies_in_use(), 64);
}

#[test]
fn bad_routes_are_refused_with_the_reason() {
    let fib = Fib::new(small(1), ifs()).unwrap();
    let p = |s: &str| s.parse::<Prefix>().unwrap();
    assert_eq!(
        fib.add(&route(0, "10.0.0.0/8", vec![])),
        Err(FibError::Paths(p("10.0.0.0/8"), 0))
    );
    assert_eq!(
        fib.add(&route(0, "10.0.0.0/8", vec![via(0, 1), Path::Drop])),
        Err(FibError::Mixed(p("10.0.0.0/8")))
    );
    assert_eq!(
        fib.add(&route(0, "10.0.0.0/8", vec![via(4, 1)])),
        Err(FibError::BadInterface(p("10.0.0.0/8"), 4))
    );
    assert_eq!(
        fib.add(&route(0, "10.0.0.0/8", vec![via(7, 1)])),
        Err(FibError::BadInterface(p("10.0.0.0/8"), 7))
    );
    let v6_nh = Path::Via {
        interface: 0,
        addr: Some(ip("fe80::1")),
        mac: None,
    };
    assert_eq!(
        fib.add(&route(0, "10.0.0.0/8", vec![v6_nh])),
        Err(FibError::Family(p("10.0.0.0/8"), ip("fe80::1")))
    );
    let nothing = Path::Via {
        interface: 0,
        addr: None,
        mac: None,
    };
    assert_eq!(
        fib.add(&route(0, "10.0.0.0/8", vec![nothing])),
        Err(FibError::NoNeighbor(p("10.0.0.0/8")))
    );
    assert!("10.0.0.1/8".parse::<Prefix>().is_err());
    assert!("10.0.0.0/33".parse::<Prefix>().is_err());
    assert!("2001:db8::/129".parse::<Prefix>().is_err());
    assert!("banana".parse::<Prefix>().is_err());
    assert!(fib.routes(0).is_empty());
    assert_eq!(fib.adjacencies_in_use(), 0);
}

#[test]
fn neighbours_resolve_routes_through_them() {
    let fib = Fib::new(small(1), ifs()).unwrap();
    let nh = Path::Via {
        interface: 1,
        addr: Some(ip("10.0.0.2")),
        mac: None,
    };
    fib.add(&route(0, "0.0.0.0/0", vec![nh])).unwrap();
    let a = fib.resolve(0, ip("8.8.8.8"), 0).unwrap();
    assert_eq!((a.kind, a.mac), (AdjKind::Neighbor, None));
    let mac = MacAddr([2, 0, 0, 0, 2, 2]);
    let g0 = fib.neighbor_generation();
    assert!(fib.learn_neighbor(1, ip("10.0.0.2"), mac, false));
    assert_ne!(fib.neighbor_generation(), g0);
    let a = fib.resolve(0, ip("8.8.8.8"), 0).unwrap();
    assert_eq!((a.mac, a.addr), (Some(mac), Some(ip("10.0.0.2"))));
    assert_eq!(
        fib.neighbors()[0].state,
        sluice_fn::fib::NeighborState::Reachable
    );
    assert_eq!(fib.age_neighbors(std::time::Duration::ZERO), 1);
    assert_eq!(fib.resolve(0, ip("8.8.8.8"), 0).unwrap().mac, None);
    assert!(fib.neighbors().is_empty());
    // A neighbour known before the route is used at once.
    fib.add_static_neighbor(2, ip("10.0.1.2"), mac, false);
    assert!(!fib.learn_neighbor(2, ip("10.0.1.2"), MacAddr([2, 0, 0, 0, 6, 6]), false));
    assert_eq!(fib.age_neighbors(std::time::Duration::ZERO), 0);
    let nh2 = Path::Via {
        interface: 2,
        addr: Some(ip("10.0.1.2")),
        mac: None,
    };
    fib.add(&route(0, "172.16.0.0/12", vec![nh2])).unwrap();
    assert_eq!(fib.resolve(0, ip("172.16.0.1"), 0).unwrap().mac, Some(mac));
}

#[test]
fn learning_an_on_link_neighbour_adds_a_host_route_that_ages_out() {
    let fib = Fib::new(small(1), ifs()).unwrap();
    fib.add(&route(
        0,
        "10.1.0.0/24",
        vec![Path::Connected { interface: 1 }],
    ))
    .unwrap();
    assert_eq!(
        fib.resolve(0, ip("10.1.0.7"), 0).unwrap().kind,
        AdjKind::Glean
    );
    let mac = MacAddr([2, 0, 0, 0, 7, 7]);
    fib.learn_neighbor(1, ip("10.1.0.7"), mac, true);
    let a = fib.resolve(0, ip("10.1.0.7"), 0).unwrap();
    assert_eq!((a.kind, a.mac), (AdjKind::Neighbor, Some(mac)));
    assert_eq!(
        fib.resolve(0, ip("10.1.0.8"), 0).unwrap().kind,
        AdjKind::Glean
    );
    assert_eq!(fib.routes(0).len(), 2);
    fib.age_neighbors(std::time::Duration::ZERO);
    assert_eq!(
        fib.resolve(0, ip("10.1.0.7"), 0).unwrap().kind,
        AdjKind::Glean
    );
    assert_eq!(fib.routes(0).len(), 1);
    assert_eq!(fib.adjacencies_in_use(), 1);
}

#[test]
fn routes_change_under_readers_without_a_torn_or_stale_answer() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let fib = Arc::new(Fib::new(small(1), ifs()).unwrap());
    fib.add(&route(0, "10.0.0.0/8", vec![via(0, 1)])).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicU64::new(0));
    let reader = {
        let (fib, stop, lookups) = (fib.clone(), stop.clone(), lookups.clone());
        std::thread::spawn(move || {
            let probe = [ip("10.1.2.3"), ip("10.1.200.1"), ip("10.77.0.1")];
            while !stop.load(Ordering::Relaxed) {
                for (k, &a) in probe.iter().enumerate() {
                    let adj = fib
                        .resolve(0, a, k as u32 * 0x5555_5555)
                        .expect("always a route");
                    // Only what the writer ever installs, whole.
                    assert_eq!(adj.kind, AdjKind::Neighbor, "{a}");
                    let mac = adj.mac.expect("static MACs");
                    assert!(
                        matches!((adj.interface, mac.0[5]), (0, 1) | (1, 2) | (2, 3) | (3, 4)),
                        "{a} → {adj:?}"
                    );
                    lookups.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // Churn for a while: add, replace with ECMP, remove, over and over.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
    let mut rounds = 0;
    while std::time::Instant::now() < until || lookups.load(Ordering::Relaxed) < 1000 {
        fib.add(&route(0, "10.1.0.0/16", vec![via(1, 2)])).unwrap();
        fib.add(&route(0, "10.1.128.0/17", vec![via(2, 3), via(3, 4)]))
            .unwrap();
        fib.remove(0, "10.1.0.0/16".parse().unwrap()).unwrap();
        fib.remove(0, "10.1.128.0/17".parse().unwrap()).unwrap();
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(rounds > 10);
    assert_eq!(fib.routes(0).len(), 1);
    assert_eq!(fib.adjacencies_in_use(), 1);
}
