//! `ip4-conntrack` in a graph, behind `ip4-acl`: connections opened from
//! the inside interface or reflected by the ACL pass both ways, a
//! connection opened from the outside is dropped as `new-denied`, invalid
//! packets under their own counter, sessions expire through the node's
//! background poll with the clock driven by the test, and every buffer
//! comes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::acl::{Acl, AclNode, Action, Masked, PortRange, Rule, SharedAcl};
use sluice_fn::conntrack::{Clock, ConnTrack, ConnTrackNode, CtConfig, CtStats, Policy};
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};

const INSIDE: u32 = 0;
const OUTSIDE: u32 = 1;

type Seen = Arc<Mutex<usize>>;

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

struct Net {
    pool: Pool,
    graph: Graph,
    seen: Seen,
    clock: Arc<AtomicU64>,
    stats: Arc<CtStats>,
}

fn net() -> Net {
    let pool = Pool::new(&PoolConfig {
        buffers: 1024,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    // The ACL lets anyone reach port 443 with its return traffic; the
    // rest is the firewall's business.
    let acl = Acl::new(
        vec![
            Rule {
                proto: Some(Masked::exactly(6)),
                dport: PortRange::exactly(443),
                ..Rule::any(Action::PermitReflect)
            },
            Rule::any(Action::Permit),
        ],
        Action::Deny,
    )
    .unwrap();
    let clock = Arc::new(AtomicU64::new(5_000));
    let ct = ConnTrack::new(&CtConfig {
        capacity: 64,
        ..CtConfig::default()
    })
    .unwrap();
    let policy = Policy {
        trusted: vec![true, false],
        zone: vec![0, 0],
    };
    let node = ConnTrackNode::ip4(
        "ip4-conntrack",
        "sink",
        ct,
        policy,
        Clock::Manual(clock.clone()),
    );
    let stats = node.stats();
    let seen = Seen::default();
    let mut b = GraphBuilder::new();
    b.add(Box::new(AclNode::ip4(
        "ip4-acl",
        "ip4-conntrack",
        Arc::new(SharedAcl::new(acl)),
    )))
    .unwrap();
    b.add(Box::new(node)).unwrap();
    b.add(Box::new(Sink(seen.clone()))).unwrap();
    let graph = b.build(0, pool.cache(64)).unwrap();
    Net {
        pool,
        graph,
        seen,
        clock,
        stats,
    }
}

fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&8192u16.to_be_bytes());
    p.extend_from_slice(&t);
    p
}

const IN_HOST: [u8; 4] = [10, 0, 0, 1];
const OUT_HOST: [u8; 4] = [192, 0, 2, 7];

impl Net {
    /// Sends packets received on interface `rx_if`; returns how many
    /// came out of the firewall.
    fn send(&mut self, rx_if: u32, pkts: &[Vec<u8>]) -> usize {
        let mut f = Frame::new();
        for bytes in pkts {
            let mut p = self.graph.buffers().alloc_from(bytes).unwrap();
            p.meta_mut().rx_if = rx_if;
            f.push(p);
        }
        self.graph.inject("ip4-acl", &mut f).unwrap();
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn counter(&self, name: &str) -> u64 {
        runtime::error_rows(&[&*self.graph.stats()])
            .iter()
            .find(|e| e.node == "ip4-conntrack" && e.name == name)
            .map_or(0, |e| e.count)
    }

    fn finish(self) {
        let Net { pool, graph, .. } = self;
        drop(graph);
        assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
    }
}

#[test]
fn inside_opens_outside_answers_and_outside_cannot_open() {
    let mut n = net();
    // A handshake from the inside, answered from the outside.
    assert_eq!(
        n.send(INSIDE, &[tcp(IN_HOST, OUT_HOST, 40000, 80, 1, 0, 0x02)]),
        1
    );
    assert_eq!(
        n.send(OUTSIDE, &[tcp(OUT_HOST, IN_HOST, 80, 40000, 9, 2, 0x12)]),
        1
    );
    assert_eq!(
        n.send(INSIDE, &[tcp(IN_HOST, OUT_HOST, 40000, 80, 2, 10, 0x10)]),
        1
    );
    // From the outside: a SYN to port 80 inside is denied ...
    assert_eq!(
        n.send(OUTSIDE, &[tcp(OUT_HOST, IN_HOST, 5555, 80, 1, 0, 0x02)]),
        0
    );
    assert_eq!(n.counter("new-denied"), 1);
    // ... one to 443 is reflected by the ACL and opens a session, whose
    // answer from the inside passes.
    assert_eq!(
        n.send(OUTSIDE, &[tcp(OUT_HOST, IN_HOST, 5555, 443, 1, 0, 0x02)]),
        1
    );
    assert_eq!(
        n.send(INSIDE, &[tcp(IN_HOST, OUT_HOST, 443, 5555, 70, 2, 0x12)]),
        1
    );
    // Out of window, and an ACK of no connection: dropped, counted.
    assert_eq!(
        n.send(
            OUTSIDE,
            &[tcp(OUT_HOST, IN_HOST, 80, 40000, 9_000_000, 2, 0x10)]
        ),
        0
    );
    assert_eq!(n.counter("tcp-out-of-window"), 1);
    assert_eq!(
        n.send(OUTSIDE, &[tcp(OUT_HOST, IN_HOST, 1, 2, 3, 4, 0x10)]),
        0
    );
    assert_eq!(n.counter("tcp-not-syn"), 1);
    // A TCP header cut short (long enough for the ACL's ports and flags,
    // not for the tracker's window).
    assert_eq!(
        n.send(
            OUTSIDE,
            &[tcp(OUT_HOST, IN_HOST, 1, 2, 3, 4, 0x10)[..36].to_vec()]
        ),
        0
    );
    assert_eq!(n.counter("truncated"), 1);
    assert_eq!(n.stats.total.snapshot().sessions, 2);
    n.finish();
}

#[test]
fn sessions_expire_through_the_background_poll_without_traffic() {
    let mut n = net();
    assert_eq!(
        n.send(INSIDE, &[tcp(IN_HOST, OUT_HOST, 40000, 80, 1, 0, 0x02)]),
        1
    );
    assert_eq!(n.stats.total.snapshot().sessions, 1);
    // SYN_SENT lasts 30 s: no packet comes, the worker's loop polls.
    n.clock.fetch_add(29_000, Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(1));
    n.graph.run_once();
    assert_eq!(n.stats.total.snapshot().sessions, 1);
    n.clock.fetch_add(2_000, Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(1));
    n.graph.run_once();
    let s = n.stats.total.snapshot();
    assert_eq!((s.sessions, s.expired), (0, 1));
    // The answer that comes too late is a new flow from the outside.
    assert_eq!(
        n.send(OUTSIDE, &[tcp(OUT_HOST, IN_HOST, 80, 40000, 9, 2, 0x12)]),
        0
    );
    assert_eq!(n.counter("tcp-not-syn"), 1);
    n.finish();
}
