//! The classifier against the rules' meaning: for random rule lists and
//! random packets (IPv4 and IPv6, ranges, wildcards, overlaps), the first
//! matching rule is what a plain reading of the rules in order says;
//! edge cases; bad rules refused with their reason.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use sluice_fn::acl::{
    Acl, Action, Key, L2Key, LinearScan, Masked, NO_MATCH, PortRange, Rule, RuleError, TreeConfig,
    ip4_key, ip6_key, prefix,
};
use sluice_fn::fib::Prefix;
use sluice_wire::MacAddr;

/// What the rule says, read field by field from the rule as written (not
/// from the classifier's lowering, so that a lowering bug shows).
fn says(r: &Rule, k: &Key<u128>, v6: bool) -> bool {
    let pfx = |p: Option<Prefix>, a: u128| match p {
        None => true,
        Some(Prefix::V4(n, l)) => {
            !v6 && (l == 0
                || (a as u32) >> (32 - u32::from(l)) == u32::from(n) >> (32 - u32::from(l)))
        }
        Some(Prefix::V6(n, l)) => {
            v6 && (l == 0 || a >> (128 - u32::from(l)) == u128::from(n) >> (128 - u32::from(l)))
        }
    };
    let icmp = r.icmp_type.is_some() || r.icmp_code.is_some();
    pfx(r.src, k.src)
        && pfx(r.dst, k.dst)
        && r.proto.is_none_or(|p| k.proto & p.mask == p.value & p.mask)
        && (icmp || (r.sport.lo..=r.sport.hi).contains(&k.sport))
        && (icmp || (r.dport.lo..=r.dport.hi).contains(&k.dport))
        && r.icmp_type.is_none_or(|t| k.sport == u16::from(t))
        && r.icmp_code.is_none_or(|c| k.dport == u16::from(c))
        && r.tcp_flags
            .is_none_or(|f| k.tcp_flags & f.mask == f.value & f.mask)
        && r.dscp.is_none_or(|d| k.dscp == d)
        && r.src_mac.is_none_or(|m| k.l2.src_mac == m)
        && r.dst_mac.is_none_or(|m| k.l2.dst_mac == m)
        && r.vlan.is_none_or(|v| k.l2.vlan == v)
}

fn first(rules: &[Rule], k: &Key<u128>, v6: bool) -> u32 {
    rules
        .iter()
        .position(|r| says(r, k, v6))
        .map_or(NO_MATCH, |i| i as u32)
}

fn narrow(k: &Key<u128>) -> Key<u32> {
    Key {
        src: k.src as u32,
        dst: k.dst as u32,
        sport: k.sport,
        dport: k.dport,
        proto: k.proto,
        tcp_flags: k.tcp_flags,
        dscp: k.dscp,
        l2: k.l2,
    }
}

// Values drawn from small pools so that rules overlap and packets hit them.

const PORTS: [u16; 9] = [0, 1, 22, 79, 80, 81, 1023, 1024, 65535];
const MACS: [MacAddr; 2] = [MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])];

fn addr4() -> impl Strategy<Value = u32> {
    prop_oneof![
        (0u32..4, 0u32..4, 0u32..4).prop_map(|(a, b, c)| 0x0a00_0000 | a << 16 | b << 8 | c),
        (0u32..4).prop_map(|a| 0xc0a8_0000 | a << 12),
        any::<u32>(),
    ]
}

fn addr6() -> impl Strategy<Value = u128> {
    let base = u128::from("2001:db8::".parse::<Ipv6Addr>().unwrap());
    prop_oneof![
        (0u128..4, 0u128..4, 0u128..4).prop_map(move |(a, b, c)| base | a << 80 | b << 40 | c),
        (0u128..4).prop_map(|a| a << 120 | 1),
        any::<u128>(),
    ]
}

fn port_range() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        3 => Just(PortRange::ANY),
        2 => (0..PORTS.len()).prop_map(|i| PortRange::exactly(PORTS[i])),
        2 => (0..PORTS.len(), 0..PORTS.len()).prop_map(|(a, b)| {
            let (a, b) = (PORTS[a].min(PORTS[b]), PORTS[a].max(PORTS[b]));
            PortRange::new(a, b)
        }),
    ]
}

fn proto() -> impl Strategy<Value = Option<Masked>> {
    prop_oneof![
        2 => Just(None),
        2 => Just(Some(Masked::exactly(6))),
        2 => Just(Some(Masked::exactly(17))),
        1 => Just(Some(Masked::exactly(1))),
        1 => Just(Some(Masked { value: 6, mask: 0xfe })),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Permit),
        Just(Action::Deny),
        Just(Action::PermitReflect)
    ]
}

/// A rule of family v4 or v6 (prefixes masked to their length), with the
/// rare fields now and then.
fn rule(v6: bool) -> impl Strategy<Value = Rule> {
    let max = if v6 { 128u8 } else { 32 };
    let pfx = move || {
        let a = if v6 {
            addr6().boxed()
        } else {
            addr4().prop_map(u128::from).boxed()
        };
        prop_oneof![
            1 => Just(None),
            4 => (a, prop_oneof![Just(0u8), Just(max), 0..=max]).prop_map(move |(a, l)| {
                Some(if v6 {
                    Prefix::V6(Ipv6Addr::from(a), l).network()
                } else {
                    Prefix::V4(Ipv4Addr::from(a as u32), l).network()
                })
            }),
        ]
    };
    (
        pfx(),
        pfx(),
        proto(),
        port_range(),
        port_range(),
        action(),
        prop::option::weighted(0.1, 0u8..4),
        prop::option::weighted(0.1, 0usize..2),
        prop::option::weighted(0.1, 0u16..3),
        prop::option::weighted(0.1, any::<u8>()),
    )
        .prop_map(
            |(src, dst, proto, sport, dport, action, dscp, mac, vlan, flags)| {
                let tcp = proto == Some(Masked::exactly(6));
                Rule {
                    src,
                    dst,
                    proto,
                    sport,
                    dport,
                    dscp,
                    src_mac: mac.map(|i| MACS[i]),
                    vlan,
                    tcp_flags: flags.filter(|_| tcp).map(|f| Masked {
                        value: f & 0x12,
                        mask: 0x12,
                    }),
                    ..Rule::any(action)
                }
            },
        )
}

fn key(v6: bool) -> impl Strategy<Value = Key<u128>> {
    let a = move || {
        if v6 {
            addr6().boxed()
        } else {
            addr4().prop_map(u128::from).boxed()
        }
    };
    let port = || prop_oneof![(0..PORTS.len()).prop_map(|i| PORTS[i]), any::<u16>()];
    (
        a(),
        a(),
        port(),
        port(),
        prop_oneof![Just(6u8), Just(17), Just(1), Just(7), any::<u8>()],
        any::<u8>(),
        0u8..4,
        0usize..2,
        0u16..3,
    )
        .prop_map(
            |(src, dst, sport, dport, proto, tcp_flags, dscp, mac, vlan)| Key {
                src,
                dst,
                sport,
                dport,
                proto,
                tcp_flags,
                dscp,
                l2: L2Key {
                    src_mac: MACS[mac],
                    dst_mac: MacAddr::ZERO,
                    vlan,
                },
            },
        )
}

fn both_ways(rules: &[Rule], keys: &[Key<u128>], v6: bool, config: TreeConfig) {
    let acl = Acl::with_config(rules.to_vec(), Action::Deny, config).unwrap();
    if v6 {
        let lin = LinearScan::<u128>::new(rules).unwrap();
        let mut out = vec![0; keys.len()];
        acl.classify6_batch(keys, &mut out);
        for (k, &o) in keys.iter().zip(&out) {
            let want = first(rules, k, true);
            assert_eq!(lin.classify(k), want, "linear scan, {k:?}");
            assert_eq!(acl.classify6(k), want, "one key, {k:?}");
            assert_eq!(o, want, "batch, {k:?}");
        }
    } else {
        let keys4: Vec<_> = keys.iter().map(narrow).collect();
        let lin = LinearScan::<u32>::new(rules).unwrap();
        let mut out = vec![0; keys.len()];
        acl.classify4_batch(&keys4, &mut out);
        for ((k, k4), &o) in keys.iter().zip(&keys4).zip(&out) {
            let want = first(rules, k, false);
            assert_eq!(lin.classify(k4), want, "linear scan, {k4:?}");
            assert_eq!(acl.classify4(k4), want, "one key, {k4:?}");
            assert_eq!(o, want, "batch, {k4:?}");
        }
    }
}

/// Small leaves so that small random lists get cut too.
const SMALL: TreeConfig = TreeConfig {
    max_groups: 4,
    leaf: 2,
    replication: 8,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn first_match_is_the_linear_scans_v4(
        rules in prop::collection::vec(rule(false), 0..120),
        keys in prop::collection::vec(key(false), 1..300),
    ) {
        both_ways(&rules, &keys, false, TreeConfig::default());
        both_ways(&rules, &keys, false, SMALL);
    }

    #[test]
    fn first_match_is_the_linear_scans_v6(
        rules in prop::collection::vec(rule(true), 0..120),
        keys in prop::collection::vec(key(true), 1..300),
    ) {
        both_ways(&rules, &keys, true, TreeConfig::default());
        both_ways(&rules, &keys, true, SMALL);
    }

    #[test]
    fn a_mixed_list_keeps_each_familys_order(
        r4 in prop::collection::vec(rule(false), 0..40),
        r6 in prop::collection::vec(rule(true), 0..40),
        keys4 in prop::collection::vec(key(false), 1..100),
        keys6 in prop::collection::vec(key(true), 1..100),
    ) {
        // Interleaved: rule numbers of each family have gaps.
        let mut rules = Vec::new();
        for i in 0..r4.len().max(r6.len()) {
            rules.extend(r4.get(i).cloned());
            rules.extend(r6.get(i).cloned());
        }
        both_ways(&rules, &keys4, false, SMALL);
        both_ways(&rules, &keys6, true, SMALL);
    }
}

#[test]
fn many_rules_under_one_prefix_are_cut_deeper_and_still_first_match() {
    // 3000 rules inside 10.0.0.0/16 (what a real list looks like, unlike
    // random prefixes): group roots cannot spread them, cuts below must.
    let mut rules = Vec::new();
    let mut s = 12345u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for i in 0..3000u64 {
        let len = [16u8, 20, 24, 28, 32][(rnd() % 5) as usize];
        let a = Ipv4Addr::from(0x0a00_0000 | (rnd() as u32 & 0xffff));
        let p = rnd() as u16 % 2000;
        rules.push(Rule {
            src: Some(Prefix::V4(a, len).network()),
            dport: if i % 3 == 0 {
                PortRange::ANY
            } else {
                PortRange::new(p, p + (rnd() % 50) as u16)
            },
            proto: (i % 4 != 0).then_some(Masked::exactly(6)),
            ..Rule::any(Action::Permit)
        });
    }
    let keys: Vec<Key<u128>> = (0..20_000)
        .map(|_| Key {
            src: u128::from(0x0a00_0000 | (rnd() as u32 & 0xffff)),
            dst: u128::from(rnd() as u32),
            sport: rnd() as u16,
            dport: rnd() as u16 % 2100,
            proto: [6, 17][(rnd() % 2) as usize],
            ..Key::default()
        })
        .collect();
    both_ways(&rules, &keys, false, TreeConfig::default());
    let (s4, _) = Acl::new(rules, Action::Deny).unwrap().stats();
    assert!(s4.cuts > 1, "the bucket of 10.0/16 was cut: {s4:?}");
}

fn k4(src: &str, dst: &str, sport: u16, dport: u16, proto: u8) -> Key<u32> {
    Key {
        src: src.parse::<Ipv4Addr>().unwrap().into(),
        dst: dst.parse::<Ipv4Addr>().unwrap().into(),
        sport,
        dport,
        proto,
        ..Key::default()
    }
}

#[test]
fn an_empty_list_matches_nothing_and_applies_its_default() {
    let acl = Acl::new(vec![], Action::Permit).unwrap();
    let k = k4("1.2.3.4", "5.6.7.8", 1, 2, 6);
    assert_eq!(acl.classify4(&k), NO_MATCH);
    assert_eq!(acl.action(NO_MATCH), Action::Permit);
    let mut out = [0; 3];
    acl.classify4_batch(&[k; 3], &mut out);
    assert_eq!(out, [NO_MATCH; 3]);
    assert_eq!(acl.classify6(&Key::default()), NO_MATCH);
}

#[test]
fn edges_of_prefixes_ports_and_protocols() {
    let rules = vec![
        Rule {
            src: prefix("10.0.0.1/32"),
            dport: PortRange::exactly(65535),
            ..Rule::any(Action::Deny)
        },
        Rule {
            dst: prefix("2001:db8::1/128"),
            sport: PortRange::exactly(0),
            ..Rule::any(Action::Deny)
        },
        Rule {
            src: prefix("0.0.0.0/0"),
            proto: Some(Masked::exactly(17)),
            dport: PortRange::new(0, 0),
            ..Rule::any(Action::PermitReflect)
        },
        Rule {
            src: prefix("::/0"),
            ..Rule::any(Action::Permit)
        },
    ];
    let acl = Acl::new(rules, Action::Deny).unwrap();
    assert_eq!(acl.classify4(&k4("10.0.0.1", "1.1.1.1", 9, 65535, 6)), 0);
    assert_eq!(
        acl.classify4(&k4("10.0.0.2", "1.1.1.1", 9, 65535, 6)),
        NO_MATCH
    );
    assert_eq!(
        acl.classify4(&k4("10.0.0.1", "1.1.1.1", 9, 65534, 6)),
        NO_MATCH
    );
    assert_eq!(acl.classify4(&k4("200.0.0.1", "1.1.1.1", 9, 0, 17)), 2);
    assert_eq!(
        acl.classify4(&k4("200.0.0.1", "1.1.1.1", 9, 0, 6)),
        NO_MATCH
    );
    let k6 = |dst: &str, sport: u16| Key::<u128> {
        src: 7,
        dst: dst.parse::<Ipv6Addr>().unwrap().into(),
        sport,
        proto: 6,
        ..Key::default()
    };
    assert_eq!(acl.classify6(&k6("2001:db8::1", 0)), 1);
    assert_eq!(acl.classify6(&k6("2001:db8::1", 1)), 3);
    assert_eq!(acl.classify6(&k6("2001:db8::2", 0)), 3);
    // A rule with no address matches both families.
    let any = Acl::new(vec![Rule::any(Action::Permit)], Action::Deny).unwrap();
    assert_eq!(any.classify4(&k4("1.1.1.1", "2.2.2.2", 0, 0, 0)), 0);
    assert_eq!(any.classify6(&Key::default()), 0);
}

#[test]
fn icmp_type_and_code_match_from_packet_bytes() {
    let rules = vec![
        Rule {
            proto: Some(Masked::exactly(1)),
            icmp_type: Some(8),
            icmp_code: Some(0),
            ..Rule::any(Action::Permit)
        },
        Rule {
            proto: Some(Masked::exactly(58)),
            icmp_type: Some(128),
            ..Rule::any(Action::Permit)
        },
    ];
    let acl = Acl::new(rules, Action::Deny).unwrap();
    let echo4 = {
        let b = etherparse::PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64)
            .icmpv4_echo_request(1, 1);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 8]).unwrap();
        v
    };
    assert_eq!(acl.classify4(&ip4_key(&echo4).unwrap()), 0);
    let echo6 = {
        let b = etherparse::PacketBuilder::ipv6([1; 16], [2; 16], 64).icmpv6_echo_request(1, 1);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 8]).unwrap();
        v
    };
    assert_eq!(acl.classify6(&ip6_key(&echo6).unwrap()), 1);
    let reply6 = {
        let b = etherparse::PacketBuilder::ipv6([1; 16], [2; 16], 64).icmpv6_echo_reply(1, 1);
        let mut v = Vec::new();
        b.write(&mut v, &[0; 8]).unwrap();
        v
    };
    assert_eq!(acl.classify6(&ip6_key(&reply6).unwrap()), NO_MATCH);
}

#[test]
fn bad_rules_are_refused_with_their_reason() {
    let bad = |r: Rule| Acl::new(vec![Rule::any(Action::Permit), r], Action::Deny).unwrap_err();
    let any = || Rule::any(Action::Deny);
    assert_eq!(
        bad(Rule {
            sport: PortRange::new(10, 9),
            ..any()
        }),
        RuleError::EmptyRange {
            index: 1,
            which: "source",
            lo: 10,
            hi: 9
        }
    );
    assert_eq!(
        bad(Rule {
            src: Some(Prefix::V4(Ipv4Addr::new(10, 0, 0, 0), 33)),
            ..any()
        }),
        RuleError::PrefixLength {
            index: 1,
            len: 33,
            max: 32
        }
    );
    assert_eq!(
        bad(Rule {
            dst: Some(Prefix::V6(Ipv6Addr::UNSPECIFIED, 129)),
            ..any()
        }),
        RuleError::PrefixLength {
            index: 1,
            len: 129,
            max: 128
        }
    );
    let e = bad(Rule {
        src: prefix("10.0.0.1/8"),
        ..any()
    });
    assert_eq!(
        e.to_string(),
        "rule 1: 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"
    );
    assert_eq!(
        bad(Rule {
            src: prefix("10.0.0.0/8"),
            dst: prefix("2001:db8::/32"),
            ..any()
        }),
        RuleError::MixedFamilies { index: 1 }
    );
    assert!(matches!(
        bad(Rule {
            tcp_flags: Some(Masked::exactly(2)),
            ..any()
        }),
        RuleError::NeedsProtocol { index: 1, .. }
    ));
    assert!(matches!(
        bad(Rule {
            icmp_type: Some(8),
            proto: Some(Masked::exactly(6)),
            ..any()
        }),
        RuleError::NeedsProtocol { index: 1, .. }
    ));
    assert_eq!(
        bad(Rule {
            icmp_type: Some(8),
            proto: Some(Masked::exactly(1)),
            dport: PortRange::exactly(80),
            ..any()
        }),
        RuleError::IcmpWithPorts { index: 1 }
    );
    assert!(matches!(
        bad(Rule {
            dscp: Some(64),
            ..any()
        }),
        RuleError::OutOfRange { field: "dscp", .. }
    ));
    assert!(matches!(
        bad(Rule {
            vlan: Some(4096),
            ..any()
        }),
        RuleError::OutOfRange { field: "vlan", .. }
    ));
}
