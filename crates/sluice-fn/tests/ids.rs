//! The intrusion detector: the rule file (and its refusals, by line),
//! matching at offset/depth edges, `nocase`, hex, port groups, detect
//! and prevent through a graph, rate-limited alert lines, no buffer
//! leaked; and a property test of the automata against a naive search.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::ids::{
    Alert, AlertLog, Content, Engine, Flow, IdsConfig, IdsNode, IdsStats, Mode, Ports, Proto, Rule,
    RuleErrorKind, RuleSet, parse_rules,
};
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};

const RULES: &str = r#"
# web
alert tcp any any -> any 80 (msg:"passwd fetch"; content:"GET /etc/passwd"; nocase; offset:0; depth:64; sid:1001; rev:2;)
alert tcp any 80 -> any any (msg:"server error leak"; content:"Traceback"; sid:1002;)
alert udp any any -> any [53,5353] (msg:"odd query"; content:"|03|bad|03|com|00|"; offset:12; sid:1003;)
alert ip any any -> any any (msg:"marker"; content:"|de ad be ef|"; sid:1004;)
alert tcp any any -> any any (msg:"two parts"; content:"user="; content:"&admin=1"; sid:1005;)

alert icmp any any -> any any (msg:"ping payload"; content:"XYZZY"; sid:1006;)
"#;

fn set() -> RuleSet {
    RuleSet::new(parse_rules(RULES).unwrap()).unwrap()
}

fn tcp(sport: u16, dport: u16) -> Flow {
    Flow {
        proto: 6,
        sport,
        dport,
    }
}

fn sids(set: &RuleSet, flow: Flow, payload: &[u8]) -> Vec<u32> {
    let mut s = set.scratch();
    let mut hits = Vec::new();
    set.scan(flow, payload, &mut s, &mut hits);
    let mut out: Vec<u32> = hits.iter().map(|&r| set.rules()[r as usize].sid).collect();
    out.sort_unstable();
    out
}

#[test]
fn a_rule_file_is_read_whole() {
    let rules = parse_rules(RULES).unwrap();
    assert_eq!(rules.len(), 6);
    let r = &rules[0];
    assert_eq!((r.sid, r.rev, r.msg.as_str()), (1001, 2, "passwd fetch"));
    assert_eq!(
        (r.proto, &r.sport, &r.dport),
        (Proto::Tcp, &Ports::Any, &Ports::List(vec![80]))
    );
    assert_eq!(
        r.contents,
        vec![Content {
            bytes: b"GET /etc/passwd".to_vec(),
            nocase: true,
            offset: 0,
            depth: Some(64),
        }]
    );
    assert_eq!(rules[2].dport, Ports::List(vec![53, 5353]));
    assert_eq!(rules[2].contents[0].bytes, b"\x03bad\x03com\x00");
    assert_eq!(rules[4].contents.len(), 2);
}

/// Whether a refusal is the one expected.
type IsKind = fn(&RuleErrorKind) -> bool;

#[test]
fn every_malformed_line_is_refused_with_its_number() {
    let good = r#"alert tcp any any -> any 80 (msg:"m"; content:"x"; sid:1;)"#;
    let cases: &[(&str, IsKind)] = &[
        (
            r#"drop tcp any any -> any 80 (msg:"m"; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Action(a) if a == "drop"),
        ),
        (
            r#"alert sctp any any -> any 80 (msg:"m"; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Proto(_)),
        ),
        (
            r#"alert tcp $HOME_NET any -> any 80 (msg:"m"; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Address(_)),
        ),
        (
            r#"alert tcp any any <> any 80 (msg:"m"; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Direction(_)),
        ),
        (
            r#"alert tcp any any -> any 1024: (msg:"m"; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Port(_, "ranges are not supported")),
        ),
        (
            r#"alert tcp any any -> any !80 (msg:"m"; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Port(..)),
        ),
        (
            r#"alert icmp any any -> any 8 (msg:"m"; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::PortlessProto("icmp")),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"x"; pcre:"/a/"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Option(o) if o == "pcre"),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"x"; within:4; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Option(o) if o == "within"),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:!"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Option(o) if o == "content:!"),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; nocase; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Orphan("nocase")),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"abcd"; depth:3; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Value("depth", _)),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"x"; offset:70000; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Value("offset", _)),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"|4|"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Value("content", _)),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"|41"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Value("content", _)),
        ),
        (r#"alert tcp any any -> any 80 (msg:"m"; sid:2;)"#, |k| {
            matches!(k, RuleErrorKind::Missing("content"))
        }),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"x";)"#,
            |k| matches!(k, RuleErrorKind::Missing("sid")),
        ),
        (
            r#"alert tcp any any -> any 80 (content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Missing("msg")),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"x"; sid:0;)"#,
            |k| matches!(k, RuleErrorKind::Value("sid", _)),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"x"; sid:1;)"#,
            |k| matches!(k, RuleErrorKind::DuplicateSid { sid: 1, first: 2 }),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m; content:"x"; sid:2;)"#,
            |k| matches!(k, RuleErrorKind::Syntax(_) | RuleErrorKind::Value(..)),
        ),
        (
            r#"alert tcp any any -> any 80 msg:"m"; content:"x"; sid:2;"#,
            |k| matches!(k, RuleErrorKind::Syntax(_)),
        ),
        (
            r#"alert tcp any any -> any 80 (msg:"m"; content:"x"; sid:2;) trailing"#,
            |k| matches!(k, RuleErrorKind::Syntax(_)),
        ),
    ];
    for (bad, is) in cases {
        // The bad line is the fourth: a comment, a good rule, a blank before it.
        let text = format!("# rules\n{good}\n\n{bad}\n{good}\n");
        let e = parse_rules(&text).expect_err(bad);
        assert_eq!(e.line, 4, "{bad}: {e}");
        assert!(is(&e.kind), "{bad}: {e}");
        assert!(e.to_string().starts_with("line 4: "), "{e}");
    }
}

#[test]
fn offset_and_depth_edges() {
    let r = |offset, depth| Rule {
        sid: 1,
        rev: 0,
        msg: "m".into(),
        proto: Proto::Tcp,
        sport: Ports::Any,
        dport: Ports::Any,
        contents: vec![Content {
            bytes: b"abc".to_vec(),
            nocase: false,
            offset,
            depth,
        }],
    };
    let at = |pos: usize| {
        let mut p = vec![b'.'; 40];
        p[pos..pos + 3].copy_from_slice(b"abc");
        p
    };
    for engine in [Engine::Dfa, Engine::ContiguousNfa, Engine::NoncontiguousNfa] {
        // offset 5, depth 6: the match must start at 5..=8.
        let set = RuleSet::with_engine(vec![r(5, Some(6))], engine).unwrap();
        for (pos, hit) in [(4, false), (5, true), (8, true), (9, false), (0, false)] {
            assert_eq!(
                !sids(&set, tcp(1, 2), &at(pos)).is_empty(),
                hit,
                "{engine:?} at {pos}"
            );
        }
        // A miss before the window and a hit inside it: overlapping
        // search finds the second occurrence.
        let mut p = at(2);
        p[6..9].copy_from_slice(b"abc");
        assert_eq!(sids(&set, tcp(1, 2), &p), vec![1]);
        // Depth equal to the length: only at the offset itself.
        let set = RuleSet::with_engine(vec![r(0, Some(3))], engine).unwrap();
        assert_eq!(sids(&set, tcp(1, 2), &at(0)), vec![1]);
        assert!(sids(&set, tcp(1, 2), &at(1)).is_empty());
        // Offset only: anywhere from it to the end, including the last bytes.
        let set = RuleSet::with_engine(vec![r(10, None)], engine).unwrap();
        assert_eq!(sids(&set, tcp(1, 2), &at(37)), vec![1]);
        assert!(sids(&set, tcp(1, 2), &at(9)).is_empty());
        // A payload shorter than the offset.
        assert!(sids(&set, tcp(1, 2), b"abc").is_empty());
        assert!(sids(&set, tcp(1, 2), b"").is_empty());
    }
}

#[test]
fn nocase_hex_and_multiple_contents() {
    let set = set();
    // nocase: any mix of cases.
    assert_eq!(
        sids(&set, tcp(4000, 80), b"get /ETC/passwd HTTP/1.1"),
        vec![1001]
    );
    // Case-sensitive in a group that is case-insensitive (1002 shares
    // nothing with 1001, but the tcp any-port group has no nocase; this
    // checks 1005 is exact).
    assert!(sids(&set, tcp(4000, 81), b"USER=x&ADMIN=1").is_empty());
    assert_eq!(sids(&set, tcp(4000, 81), b"a=b&user=x&admin=1"), vec![1005]);
    // Both contents needed, in any order (no relative positions).
    assert_eq!(
        sids(&set, tcp(4000, 81), b"&admin=1 then user="),
        vec![1005]
    );
    assert!(sids(&set, tcp(4000, 81), b"user= only").is_empty());
    // Hex bytes, at offset 12 of a DNS query.
    let mut q = vec![0u8; 12];
    q.extend_from_slice(b"\x03bad\x03com\x00\x00\x01\x00\x01");
    let udp = |dport| Flow {
        proto: 17,
        sport: 3333,
        dport,
    };
    assert_eq!(sids(&set, udp(53), &q), vec![1003]);
    assert_eq!(sids(&set, udp(5353), &q), vec![1003]);
    assert!(sids(&set, udp(54), &q).is_empty());
    assert!(sids(&set, udp(53), &q[1..]).is_empty(), "before offset 12");
}

#[test]
fn packets_run_only_their_port_groups() {
    let set = set();
    // Groups: tcp dst 80, tcp src 80, udp dst 53, udp dst 5353, and the
    // any-port groups of tcp, udp, icmp and other protocols.
    assert_eq!(set.groups(), 8);
    let web = b"GET /etc/passwd Traceback \xde\xad\xbe\xef";
    // To port 80: the dst-80 rule and the ip rule; the reply rule is for
    // traffic from port 80.
    assert_eq!(sids(&set, tcp(4000, 80), web), vec![1001, 1004]);
    assert_eq!(sids(&set, tcp(80, 4000), web), vec![1002, 1004]);
    assert_eq!(sids(&set, tcp(4000, 8080), web), vec![1004]);
    // ip rules see every protocol; icmp rules only ICMP.
    let icmp = Flow {
        proto: 1,
        sport: 0,
        dport: 0,
    };
    let gre = Flow {
        proto: 47,
        sport: 0,
        dport: 0,
    };
    assert_eq!(sids(&set, icmp, b"XYZZY\xde\xad\xbe\xef"), vec![1004, 1006]);
    assert_eq!(sids(&set, gre, b"XYZZY\xde\xad\xbe\xef"), vec![1004]);
    // A pattern several times in a payload alerts once.
    assert_eq!(
        sids(&set, tcp(1, 80), b"get /etc/passwd get /etc/passwd"),
        vec![1001]
    );
}

// ---- through a graph ----

type Seen = Arc<Mutex<usize>>;
type Lines = Arc<Mutex<Vec<String>>>;

struct Sink(Seen);

impl Node for Sink {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("sink", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        *self.0.lock().unwrap() += input.len();
        cx.buffers.free_all(input);
    }
}

struct Collect(Lines);

impl AlertLog for Collect {
    fn log(&mut self, alert: &Alert<'_>) {
        self.0.lock().unwrap().push(alert.to_string());
    }
}

struct Net {
    pool: Pool,
    graph: Graph,
    seen: Seen,
    lines: Lines,
    stats: Arc<IdsStats>,
}

fn net(mode: Mode, log_burst: u64) -> Net {
    let pool = Pool::new(&PoolConfig {
        buffers: 1024,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let lines = Lines::default();
    let node = IdsNode::ip4(
        "ip4-ids",
        "sink",
        Arc::new(set()),
        IdsConfig {
            mode,
            // No refill: exactly the burst is logged.
            log_per_second: 0,
            log_burst,
        },
        Box::new(Collect(lines.clone())),
    );
    let stats = node.stats();
    let seen = Seen::default();
    let mut b = GraphBuilder::new();
    b.add(Box::new(node)).unwrap();
    b.add(Box::new(Sink(seen.clone()))).unwrap();
    let graph = b.build(0, pool.cache(64)).unwrap();
    Net {
        pool,
        graph,
        seen,
        lines,
        stats,
    }
}

fn ip4(proto: u8, l4: &[u8]) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[10, 0, 0, 1, 192, 0, 2, 7]);
    p.extend_from_slice(l4);
    p
}

fn tcp_pkt(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x18;
    t.extend_from_slice(payload);
    ip4(6, &t)
}

impl Net {
    fn send(&mut self, pkts: &[Vec<u8>]) -> usize {
        let mut f = Frame::new();
        for bytes in pkts {
            f.push(self.graph.buffers().alloc_from(bytes).unwrap());
        }
        self.graph.inject("ip4-ids", &mut f).unwrap();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn counter(&self, name: &str) -> u64 {
        runtime::error_rows(&[&*self.graph.stats()])
            .iter()
            .find(|e| e.node == "ip4-ids" && e.name == name)
            .map_or(0, |e| e.count)
    }

    fn finish(self) {
        let Net { pool, graph, .. } = self;
        drop(graph);
        assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
    }
}

fn traffic() -> Vec<Vec<u8>> {
    vec![
        tcp_pkt(40000, 80, b"GET /etc/passwd HTTP/1.0\r\n\r\n"),
        tcp_pkt(40000, 80, b"GET /index.html HTTP/1.0\r\n\r\n"),
        tcp_pkt(80, 40000, b"HTTP/1.0 500\r\n\r\nTraceback (most recent)"),
        tcp_pkt(40000, 443, b"\x16\x03\x01 nothing to see"),
        // Truncated TCP header: forwarded unscanned.
        tcp_pkt(1, 2, b"")[..30].to_vec(),
    ]
}

#[test]
fn detect_forwards_everything_and_alerts() {
    let mut n = net(Mode::Detect, 100);
    assert_eq!(n.send(&traffic()), 5);
    assert_eq!(n.counter("ids-drop"), 0);
    assert_eq!(n.stats.by_sid(1001), 1);
    assert_eq!(n.stats.by_sid(1002), 1);
    assert_eq!(IdsStats::get(&n.stats.alerts), 2);
    assert_eq!(IdsStats::get(&n.stats.scanned), 4);
    assert_eq!(IdsStats::get(&n.stats.unscanned), 1);
    let lines = n.lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with(
            "ids-alert sid=1001 rev=2 action=alert proto=6 src=10.0.0.1:40000 dst=192.0.2.7:80"
        ),
        "{}",
        lines[0]
    );
    n.finish();
}

#[test]
fn a_jumbo_packet_is_scanned_across_its_buffers_and_fragments_pass_unscanned() {
    let mut n = net(Mode::Prevent, 100);
    // 3,000 bytes of payload over two 2 KiB buffers, the pattern across
    // the seam (the payload starts 40 bytes into the packet).
    let mut payload = vec![b'.'; 3000];
    payload[2006..2010].copy_from_slice(b"\xde\xad\xbe\xef");
    let jumbo = tcp_pkt(40000, 8080, &payload);
    assert_eq!(n.send(&[jumbo]), 0);
    assert_eq!(n.stats.by_sid(1004), 1);
    // A non-first fragment has no ports to group by: forwarded, counted.
    let mut frag = tcp_pkt(40000, 80, b"GET /etc/passwd");
    frag[6..8].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(n.send(&[frag]), 1);
    assert_eq!(IdsStats::get(&n.stats.unscanned), 1);
    assert_eq!(n.stats.by_sid(1001), 0);
    n.finish();
}

#[test]
fn prevent_drops_matches_only() {
    let mut n = net(Mode::Prevent, 100);
    assert_eq!(n.send(&traffic()), 3);
    assert_eq!(n.counter("ids-drop"), 2);
    assert!(n.lines.lock().unwrap()[0].contains("action=drop"));
    n.finish();
}

#[test]
fn alert_lines_stop_at_the_rate_limit_and_the_rest_are_counted() {
    let mut n = net(Mode::Detect, 3);
    let bad = tcp_pkt(40000, 80, b"GET /etc/passwd \xde\xad\xbe\xef");
    // 10 packets, two rules each: 20 alerts, 3 lines.
    assert_eq!(n.send(&vec![bad; 10]), 10);
    assert_eq!(IdsStats::get(&n.stats.alerts), 20);
    assert_eq!(n.stats.by_sid(1001), 10);
    assert_eq!(n.stats.by_sid(1004), 10);
    assert_eq!(IdsStats::get(&n.stats.logged), 3);
    assert_eq!(IdsStats::get(&n.stats.suppressed), 17);
    assert_eq!(n.lines.lock().unwrap().len(), 3);
    n.finish();
}

#[test]
fn ipv6_is_scanned_past_its_extension_headers() {
    let pool = Pool::new(&PoolConfig {
        buffers: 64,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let lines = Lines::default();
    let node = IdsNode::ip6(
        "ip6-ids",
        "sink",
        Arc::new(set()),
        IdsConfig {
            mode: Mode::Prevent,
            ..IdsConfig::default()
        },
        Box::new(Collect(lines.clone())),
    );
    let stats = node.stats();
    let seen = Seen::default();
    let mut b = GraphBuilder::new();
    b.add(Box::new(node)).unwrap();
    b.add(Box::new(Sink(seen.clone()))).unwrap();
    let mut graph = b.build(0, pool.cache(16)).unwrap();
    let src = "2001:db8::1"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let dst = "2001:db8::7"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets();
    let build = |hop: bool, frag: Option<u16>, l4: &[u8], proto: u8| {
        let mut ext = Vec::new();
        let mut next = proto;
        if let Some(off) = frag {
            ext.splice(
                0..0,
                [next, 0, (off >> 5) as u8, (off << 3) as u8, 0, 0, 0, 1],
            );
            next = 44;
        }
        if hop {
            ext.splice(0..0, [next, 0, 1, 4, 0, 0, 0, 0]);
            next = 0;
        }
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&((ext.len() + l4.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ext);
        p.extend_from_slice(l4);
        p
    };
    let tcp = |dport: u16, payload: &[u8]| tcp_pkt(40000, dport, payload)[20..].to_vec();
    let pkts = [
        // Plain, and behind a hop-by-hop header: both dropped.
        build(false, None, &tcp(80, b"GET /etc/passwd"), 6),
        build(true, None, &tcp(80, b"GET /etc/passwd"), 6),
        // A first fragment is scanned; a later one is not.
        build(false, Some(0), &tcp(80, b"GET /etc/passwd"), 6),
        build(false, Some(100), b"GET /etc/passwd", 6),
        // ICMPv6 meets the icmp rules.
        build(false, None, b"\x80\0\0\0\0\x01\0\x01XYZZY", 58),
        // Clean.
        build(true, None, &tcp(80, b"GET /index.html"), 6),
    ];
    let mut f = Frame::new();
    for p in &pkts {
        f.push(graph.buffers().alloc_from(p).unwrap());
    }
    graph.inject("ip6-ids", &mut f).unwrap();
    assert_eq!(*seen.lock().unwrap(), 2);
    assert_eq!(stats.by_sid(1001), 3);
    assert_eq!(stats.by_sid(1006), 1);
    assert_eq!(IdsStats::get(&stats.unscanned), 1);
    assert!(
        lines.lock().unwrap()[0].contains("src=[2001:db8::1]:40000 dst=[2001:db8::7]:80"),
        "{:?}",
        lines.lock().unwrap()
    );
    drop(graph);
    assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
}

// ---- the automata against a naive search ----

fn naive(rules: &[Rule], flow: Flow, payload: &[u8]) -> Vec<u32> {
    let mut out: Vec<u32> = rules
        .iter()
        .filter(|r| {
            let proto_ok = match r.proto {
                Proto::Tcp => flow.proto == 6,
                Proto::Udp => flow.proto == 17,
                Proto::Icmp => flow.proto == 1,
                Proto::Ip => true,
            };
            proto_ok
                && r.sport.contains(flow.sport)
                && r.dport.contains(flow.dport)
                && r.contents.iter().all(|c| {
                    (0..payload.len()).any(|at| {
                        // The window spelled out here, not Content::placed.
                        let off = usize::from(c.offset);
                        at >= off
                            && c.depth
                                .is_none_or(|d| at + c.bytes.len() <= off + usize::from(d))
                            && payload.get(at..at + c.bytes.len()).is_some_and(|s| {
                                if c.nocase {
                                    s.eq_ignore_ascii_case(&c.bytes)
                                } else {
                                    s == c.bytes.as_slice()
                                }
                            })
                    })
                })
        })
        .map(|r| r.sid)
        .collect();
    out.sort_unstable();
    out
}

fn arb_content() -> impl Strategy<Value = Content> {
    // A small alphabet with both cases makes hits, overlaps and case
    // near-misses common.
    (
        proptest::collection::vec(prop::sample::select(b"aAbB\x00".to_vec()), 1..4),
        any::<bool>(),
        0u16..6,
        prop::option::of(0u16..8),
    )
        .prop_map(|(bytes, nocase, offset, extra)| Content {
            depth: extra.map(|e| bytes.len() as u16 + e),
            bytes,
            nocase,
            offset,
        })
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    (
        prop::sample::select(vec![Proto::Tcp, Proto::Udp, Proto::Ip]),
        prop::sample::select(vec![None, Some(80u16), Some(81)]),
        prop::sample::select(vec![None, Some(80u16), Some(1000)]),
        proptest::collection::vec(arb_content(), 1..3),
    )
        .prop_map(|(proto, sp, dp, contents)| {
            let ports = |p: Option<u16>| p.map_or(Ports::Any, |p| Ports::List(vec![p]));
            let ip = proto == Proto::Ip;
            Rule {
                sid: 0,
                rev: 0,
                msg: String::new(),
                proto,
                sport: if ip { Ports::Any } else { ports(sp) },
                dport: if ip { Ports::Any } else { ports(dp) },
                contents,
            }
        })
}

proptest! {
    #[test]
    fn automata_agree_with_a_naive_search(
        mut rules in proptest::collection::vec(arb_rule(), 1..12),
        payloads in proptest::collection::vec(
            proptest::collection::vec(prop::sample::select(b"aAbBc\x00".to_vec()), 0..24),
            1..8,
        ),
        flows in proptest::collection::vec(
            (prop::sample::select(vec![6u8, 17, 1]),
             prop::sample::select(vec![80u16, 81, 1000, 5])),
            1..8,
        ),
    ) {
        for (i, r) in rules.iter_mut().enumerate() {
            r.sid = i as u32 + 1;
        }
        // Every payload with every flow: one packet at a time, and all
        // as one vector (whose payloads share the automata's lanes).
        let mut vector: Vec<(Flow, &[u8])> = Vec::new();
        for p in &payloads {
            for &(proto, port) in &flows {
                for flow in [
                    Flow { proto, sport: port, dport: 80 },
                    Flow { proto, sport: 1000, dport: port },
                ] {
                    vector.push((flow, p));
                }
            }
        }
        for engine in [Engine::Dfa, Engine::ContiguousNfa, Engine::NoncontiguousNfa] {
            let set = RuleSet::with_engine(rules.clone(), engine).unwrap();
            for &(flow, p) in &vector {
                prop_assert_eq!(sids(&set, flow, p), naive(&rules, flow, p));
            }
            let fl: Vec<Flow> = vector.iter().map(|v| v.0).collect();
            let mut hits = Vec::new();
            set.scan_vector(&fl, |i| vector[i].1, &mut set.scratch(), &mut hits);
            for (i, &(flow, p)) in vector.iter().enumerate() {
                let mut got: Vec<u32> = hits
                    .iter()
                    .filter(|h| h.0 as usize == i)
                    .map(|h| set.rules()[h.1 as usize].sid)
                    .collect();
                got.sort_unstable();
                prop_assert_eq!(got, naive(&rules, flow, p), "packet {} of the vector", i);
            }
        }
    }
}

proptest! {
    /// No line, however mangled, panics the parser: it is a rule or an
    /// error naming the line.
    #[test]
    fn any_text_is_a_rule_or_a_refusal(
        junk in "[ -~]{0,60}",
        opts in proptest::collection::vec(
            prop::sample::select(vec![
                "msg:\"m\"", "content:\"a|41|\"", "content:\"|4", "nocase", "offset:3",
                "depth:2", "depth:x", "sid:9", "rev:1", "pcre:\"x\"", "\"", ";", "\\",
                "content:\"\u{e9}t\u{e9}\"",
            ]),
            0..8,
        ),
    ) {
        let line = format!("alert tcp any any -> any 80 ({}; {junk})", opts.join("; "));
        if let Err(e) = parse_rules(&format!("# x\n{line}\n")) {
            prop_assert_eq!(e.line, 2);
        }
        let _ = parse_rules(&junk);
    }

    /// Random bytes after a plausible IPv4 start go through the node
    /// without a panic, and every buffer comes back.
    #[test]
    fn garbage_passes_through_the_node(
        pkts in proptest::collection::vec(
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..120)),
            1..40,
        ),
    ) {
        let mut n = net(Mode::Prevent, 5);
        let frames: Vec<Vec<u8>> = pkts
            .into_iter()
            .map(|(proto, mut b)| {
                if b.len() >= 20 && proto % 2 == 0 {
                    b[0] = 0x45;
                    b[9] = [6, 17, 1, 47][usize::from(proto / 2 % 4)];
                }
                b
            })
            .collect();
        let passed = n.send(&frames);
        prop_assert_eq!(passed as u64 + n.counter("ids-drop"), frames.len() as u64);
        n.finish();
    }
}
