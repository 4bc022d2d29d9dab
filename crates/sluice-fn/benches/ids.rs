//! The intrusion detector in CPU cycles per packet and per payload byte,
//! with 1,000 content patterns over IMIX traffic.
//!
//! Rules (generated, seeded): 1,000, each one content — made-up words
//! (`nocase` for a third), URL and header fragments of web attacks
//! (`/cgi-bin/qzrt.pl?cmd=`, `User-Agent: vexbot`), and random binary
//! strings of 4–12 bytes — spread as rule sets are: most on TCP to port 80,
//! some on 443, 25 and 8080, UDP to 53, and a tenth on any TCP port;
//! some with `offset`/`depth`.
//!
//! Traffic: IPv4 packets of IMIX sizes (7:4:1 of 64, 576 and 1500 bytes
//! on the wire, so 10, 522 and 1446 payload bytes after Ethernet, IP and
//! TCP/UDP headers): HTTP requests and responses of realistic words to
//! port 80, random bytes (TLS records) to 443, DNS-like queries to 53,
//! mail text to 25; 2% carry a rule's pattern where its rule allows it.
//!
//! Through `ip4-ids` in a graph (→ a sink that frees), a vector of 256 at
//! a time; the node's own TSC clocks per vector divided by its packets
//! and by its payload bytes; per round the median over vectors, and the
//! figures are the median of the rounds (`IDS_BENCH_ROUNDS`, default 3;
//! `IDS_BENCH_VECTORS`, default 1,000 a round). For each automaton kind,
//! then with every rule on any port (one group: what the port grouping
//! saves). Then the bare scanners over the same payloads, all 1,000
//! patterns in one: the DFA reporting every overlapping match (what the
//! node does), the DFA and the packed (Teddy) searcher leftmost-first
//! (they skip overlaps, so they would miss hits: speed reference only),
//! and the same at 64 patterns, where Teddy is meant to shine.
//!
//! The rule set's scan alone follows, one payload at a time against a
//! vector at a time (its automata walk four payloads at once).
//!
//! `cargo bench -p sluice-fn --bench ids`

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind, packed};
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::ids::{
    Alert, AlertLog, Content, Engine, IdsConfig, IdsNode, IdsStats, Mode, Ports, Proto, Rule,
    RuleSet, set::LANES,
};
use sluice_graph::clock::{cycles, hz};
use sluice_graph::{Cx, Frame, GraphBuilder, Next, Node, NodeSpec};

const VECTOR: usize = 256;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: seeded, so every run scans the same bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Words of the traffic (real English and HTTP).
const TEXT: &[&str] = &[
    "the",
    "and",
    "for",
    "with",
    "this",
    "that",
    "from",
    "your",
    "have",
    "more",
    "about",
    "page",
    "home",
    "search",
    "news",
    "contact",
    "price",
    "order",
    "account",
    "login",
    "product",
    "service",
    "today",
    "please",
    "information",
    "update",
    "available",
    "<div",
    "class=\"",
    "</div>",
    "<a",
    "href=\"",
    "<span>",
    "</span>",
    "<p>",
    "</p>",
    "Accept:",
    "text/html,application/xhtml+xml",
    "Cookie:",
    "session=",
    "Host:",
    "www.example.com",
    "Content-Type:",
    "application/json",
    "{\"id\":",
    "\"name\":",
    "Mozilla/5.0",
    "(X11;",
    "Linux",
    "x86_64)",
    "gzip,",
    "deflate",
    "Connection:",
    "keep-alive",
    "Cache-Control:",
    "max-age=0",
    "/static/js/app.",
    ".css",
    ".png",
];

/// Syllables of the rules' made-up words: close enough to text to make
/// the automaton walk, rare enough in it not to match.
const SYL: &[&str] = &[
    "qu", "zor", "vex", "ka", "lim", "dra", "th", "ox", "gul", "pre", "nix", "tor", "bal", "ent",
    "ys", "wr", "um", "fa", "rho", "ik",
];

fn word(r: &mut Rng) -> Vec<u8> {
    let mut w = Vec::new();
    while w.len() < 5 + r.below(8) {
        w.extend_from_slice(r.pick(SYL).as_bytes());
    }
    w
}

fn pattern(r: &mut Rng, i: usize) -> (Vec<u8>, bool) {
    match i % 10 {
        0..=3 => (word(r), i.is_multiple_of(3)),
        4..=6 => {
            let mut p = r
                .pick(&[
                    "/cgi-bin/",
                    "/wp-content/plugins/",
                    "/admin/",
                    "User-Agent: ",
                    "GET /",
                    "?cmd=",
                    "/scripts/",
                ])
                .as_bytes()
                .to_vec();
            p.extend_from_slice(&word(r));
            p.extend_from_slice(
                r.pick(&[".php?id=", ".pl", ".asp", "", "=../../"])
                    .as_bytes(),
            );
            (p, false)
        }
        _ => {
            let n = 4 + r.below(9);
            ((0..n).map(|_| r.next() as u8).collect(), false)
        }
    }
}

fn rules(r: &mut Rng, n: usize, grouped: bool) -> Vec<Rule> {
    (0..n)
        .map(|i| {
            let (bytes, nocase) = pattern(r, i);
            let (proto, port) = match r.below(20) {
                0..=10 => (Proto::Tcp, Some(80)),
                11 => (Proto::Tcp, Some(443)),
                12 => (Proto::Tcp, Some(25)),
                13 => (Proto::Tcp, Some(8080)),
                14 | 15 => (Proto::Udp, Some(53)),
                _ => (Proto::Tcp, None),
            };
            let (offset, depth) = if i.is_multiple_of(7) {
                (r.below(8) as u16, Some(bytes.len() as u16 + 64))
            } else {
                (0, None)
            };
            Rule {
                sid: i as u32 + 1,
                rev: 1,
                msg: format!("generated rule {i}"),
                proto,
                sport: Ports::Any,
                dport: match (grouped, port) {
                    (true, Some(p)) => Ports::List(vec![p]),
                    _ => Ports::Any,
                },
                contents: vec![Content {
                    bytes,
                    nocase,
                    offset,
                    depth,
                }],
            }
        })
        .collect()
}

/// One IMIX payload length: 7:4:1 of 64, 576, 1500-byte frames.
fn imix(r: &mut Rng) -> usize {
    match r.below(12) {
        0..=6 => 10,
        7..=10 => 522,
        _ => 1446,
    }
}

fn payload(r: &mut Rng, len: usize, kind: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(len + 16);
    match kind {
        // HTTP text.
        0 | 1 => {
            p.extend_from_slice(if kind == 0 {
                b"GET /index.html HTTP/1.1\r\n".as_slice()
            } else {
                b"HTTP/1.1 200 OK\r\n".as_slice()
            });
            while p.len() < len {
                p.extend_from_slice(r.pick(TEXT).as_bytes());
                p.push(if r.below(8) == 0 { b'\n' } else { b' ' });
            }
        }
        // DNS-like: header, labels.
        3 => {
            p.extend((0..12).map(|_| r.next() as u8));
            while p.len() < len {
                let w = r.pick(TEXT).as_bytes();
                p.push(w.len() as u8);
                p.extend_from_slice(w);
            }
        }
        // TLS records: random.
        _ => p.extend((0..len).map(|_| r.next() as u8)),
    }
    p.truncate(len);
    p
}

fn packet(proto: u8, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let l4 = if proto == 6 { 20 } else { 8 };
    let total = (20 + l4 + payload.len()) as u16;
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[10, 0, 0, 1, 192, 0, 2, 7]);
    let mut h = vec![0u8; l4];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        h[12] = 5 << 4;
        h[13] = 0x18;
    } else {
        h[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    }
    p.extend_from_slice(&h);
    p.extend_from_slice(payload);
    p
}

/// The traffic: packets and their payloads (for the bare scanners).
fn traffic(r: &mut Rng, rules: &[Rule], n: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut pkts = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    for _ in 0..n {
        let len = imix(r);
        let (kind, proto, sport, dport) = match r.below(10) {
            0..=3 => (0, 6, 40000 + r.below(20000) as u16, 80),
            4 | 5 => (1, 6, 80, 40000 + r.below(20000) as u16),
            6 | 7 => (2, 6, 40000 + r.below(20000) as u16, 443),
            8 => (3, 17, 30000 + r.below(30000) as u16, 53),
            _ => (0, 6, 40000 + r.below(20000) as u16, 25),
        };
        let mut p = payload(r, len, kind);
        if r.below(50) == 0 {
            // An attack: a rule's pattern where the rule looks.
            let rule = r.pick(rules);
            let c = &rule.contents[0];
            let at = usize::from(c.offset) + r.below(8);
            if at + c.bytes.len() <= p.len() {
                p[at..at + c.bytes.len()].copy_from_slice(&c.bytes);
            }
        }
        pkts.push(packet(proto, sport, dport, &p));
        payloads.push(p);
    }
    (pkts, payloads)
}

struct Sink;

impl Node for Sink {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("sink", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        cx.buffers.free_all(input);
    }
}

struct Quiet;

impl AlertLog for Quiet {
    fn log(&mut self, _alert: &Alert<'_>) {}
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `vectors` vectors through `ip4-ids`; returns the median of the
/// per-vector (cycles/packet, cycles/byte), and the alerts raised.
fn node_round(
    pool: &Pool,
    set: Arc<RuleSet>,
    pkts: &[Vec<u8>],
    payload_len: &[usize],
    vectors: usize,
) -> (f64, f64, u64) {
    let node = IdsNode::ip4(
        "ip4-ids",
        "sink",
        set,
        IdsConfig {
            mode: Mode::Detect,
            ..IdsConfig::default()
        },
        Box::new(Quiet),
    );
    let stats = node.stats();
    let mut b = GraphBuilder::new();
    b.add(Box::new(node)).unwrap();
    b.add(Box::new(Sink)).unwrap();
    let mut graph = b.build(0, pool.cache(512)).unwrap();
    let gstats = graph.stats();
    let ix = graph.node_index("ip4-ids").unwrap();
    let (mut per_pkt, mut per_byte) = (Vec::new(), Vec::new());
    let mut next = 0;
    for _ in 0..vectors {
        let mut f = Frame::new();
        let mut bytes = 0;
        for _ in 0..VECTOR {
            f.push(graph.buffers().alloc_from(&pkts[next]).expect("buffers"));
            bytes += payload_len[next];
            next = (next + 1) % pkts.len();
        }
        let c0 = gstats.nodes[ix].clocks.get();
        graph.inject("ip4-ids", &mut f).unwrap();
        let c = (gstats.nodes[ix].clocks.get() - c0) as f64;
        per_pkt.push(c / VECTOR as f64);
        per_byte.push(c / bytes.max(1) as f64);
    }
    (
        median(&mut per_pkt),
        median(&mut per_byte),
        IdsStats::get(&stats.alerts),
    )
}

/// Median cycles a payload byte of one bare scan over every payload.
fn scan_round(payloads: &[Vec<u8>], mut scan: impl FnMut(&[u8]) -> usize) -> (f64, usize) {
    let bytes: usize = payloads.iter().map(|p| p.len()).sum();
    let mut found = 0;
    let t0 = cycles();
    for p in payloads {
        found += scan(p);
    }
    ((cycles() - t0) as f64 / bytes as f64, found)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let rounds = env_or("IDS_BENCH_ROUNDS", 3).max(1);
    let vectors = env_or("IDS_BENCH_VECTORS", 1000).max(1);
    let hz = hz();
    println!("TSC {:.2} GHz; load average {}", hz / 1e9, load());
    let mut r = Rng(0x05ee_d1d5);
    let grouped = rules(&mut r, 1000, true);
    let mut r2 = Rng(0x05ee_d1d5);
    let flat = rules(&mut r2, 1000, false);
    let (pkts, payloads) = traffic(&mut r, &grouped, 8192);
    let lens: Vec<usize> = payloads.iter().map(|p| p.len()).collect();
    let avg = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
    println!(
        "1000 rules, {} packets of IMIX traffic, {avg:.0} payload bytes a packet on average",
        pkts.len()
    );
    let pool = Pool::new(&PoolConfig {
        buffers: 4096,
        huge_pages: HugePages::Try,
        lock: false,
    })
    .expect("pool");

    println!(
        "\n{:<40} {:>7} {:>9} {:>8} {:>10} {:>10}",
        "ip4-ids", "groups", "memory", "build", "cyc/pkt", "cyc/byte"
    );
    let configs = [
        ("DFA, grouped by port", &grouped, Engine::Dfa),
        ("contiguous NFA, grouped", &grouped, Engine::ContiguousNfa),
        (
            "noncontiguous NFA, grouped",
            &grouped,
            Engine::NoncontiguousNfa,
        ),
        ("DFA, every rule on any port", &flat, Engine::Dfa),
    ];
    for (name, rules, engine) in configs {
        let t0 = std::time::Instant::now();
        let set = Arc::new(RuleSet::with_engine(rules.clone(), engine).expect("rule set"));
        let build = t0.elapsed().as_secs_f64() * 1e3;
        let (mut pp, mut pb) = (Vec::new(), Vec::new());
        let mut alerts = 0;
        for _ in 0..rounds {
            let (p, b, a) = node_round(&pool, set.clone(), &pkts, &lens, vectors);
            pp.push(p);
            pb.push(b);
            alerts = a;
        }
        println!(
            "{:<40} {:>7} {:>6} KiB {:>5.0} ms {:>10.0} {:>10.2}   ({} alerts a round; rounds {:?})",
            name,
            set.groups(),
            set.memory_usage() / 1024,
            build,
            median(&mut pp),
            median(&mut pb),
            alerts,
            pp.iter().map(|x| x.round() as u64).collect::<Vec<_>>(),
        );
    }

    // The rule set's own scan, outside the node: one payload at a time
    // against a vector of 256 whose payloads share the automata's lanes.
    println!(
        "\n{:<52} {:>10} {:>10}",
        "RuleSet, 1000 rules grouped, DFA", "cyc/byte", "hits"
    );
    let set = RuleSet::new(grouped.clone()).expect("rule set");
    let flows: Vec<_> = pkts
        .iter()
        .map(|p| {
            sluice_fn::ids::payload::view4(p, p.len())
                .expect("view")
                .flow
        })
        .collect();
    let bytes: usize = lens.iter().sum();
    let mut scratch = set.scratch();
    let (mut one, mut vec) = (Vec::new(), Vec::new());
    let (mut hits1, mut hitsv) = (0, 0);
    for _ in 0..rounds {
        let mut h = Vec::new();
        let t0 = cycles();
        for (f, p) in flows.iter().zip(&payloads) {
            set.scan(*f, p, &mut scratch, &mut h);
        }
        one.push((cycles() - t0) as f64 / bytes as f64);
        hits1 = h.len();
        let mut pairs = Vec::new();
        let mut n = 0;
        let t0 = cycles();
        for (fc, pc) in flows.chunks(VECTOR).zip(payloads.chunks(VECTOR)) {
            set.scan_vector(fc, |i| &pc[i], &mut scratch, &mut pairs);
            n += pairs.len();
        }
        vec.push((cycles() - t0) as f64 / bytes as f64);
        hitsv = n;
    }
    println!(
        "{:<52} {:>10.2} {:>10}",
        "scan, one payload at a time",
        median(&mut one),
        hits1
    );
    println!(
        "{:<52} {:>10.2} {:>10}",
        format!("scan_vector, 256 payloads, {LANES} lanes"),
        median(&mut vec),
        hitsv
    );

    println!(
        "\n{:<52} {:>10} {:>10}",
        "bare scan, one automaton", "cyc/byte", "matches"
    );
    for n in [1000usize, 64] {
        let pats: Vec<Vec<u8>> = grouped
            .iter()
            .take(n)
            .map(|r| r.contents[0].bytes.clone())
            .collect();
        let ac = |kind, mk| {
            AhoCorasick::builder()
                .kind(Some(kind))
                .match_kind(mk)
                .build(&pats)
                .expect("automaton")
        };
        let dfa_std = ac(AhoCorasickKind::DFA, MatchKind::Standard);
        let nfa_std = ac(AhoCorasickKind::ContiguousNFA, MatchKind::Standard);
        let dfa_lf = ac(AhoCorasickKind::DFA, MatchKind::LeftmostFirst);
        let mut cfg = packed::Config::new();
        cfg.heuristic_pattern_limits(false);
        let teddy = cfg.builder().extend(&pats).build();
        let row = |name: String, scan: &mut dyn FnMut(&[u8]) -> usize| {
            let mut v = Vec::new();
            let mut found = 0;
            for _ in 0..rounds {
                let (c, f) = scan_round(&payloads, &mut *scan);
                v.push(c);
                found = f;
            }
            println!("{:<52} {:>10.2} {:>10}", name, median(&mut v), found);
        };
        row(
            format!("{n} patterns, DFA, every overlapping match"),
            &mut |p| dfa_std.find_overlapping_iter(p).count(),
        );
        row(
            format!("{n} patterns, contiguous NFA, overlapping"),
            &mut |p| nfa_std.find_overlapping_iter(p).count(),
        );
        row(format!("{n} patterns, DFA, leftmost-first"), &mut |p| {
            dfa_lf.find_iter(p).count()
        });
        match &teddy {
            Some(t) => row(
                format!("{n} patterns, packed (Teddy), leftmost-first"),
                &mut |p| t.find_iter(p).count(),
            ),
            None => println!("{n} patterns, packed: not available on this CPU"),
        }
    }
    println!("\nload average at the end {}", load());
}
