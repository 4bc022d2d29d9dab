//! Handoff between real workers: every packet of a flow is processed by
//! one worker (the one its hash names) and in the order it was received;
//! an overloaded ring counts its drops and loses no buffer; stopping frees
//! whatever the rings still hold.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::handoff::{self, Handoff, HandoffConfig};
use sluice_fn::rss::{Reta, Rss, RssHash};
use sluice_graph::worker::Workers;
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, InputState, Next, Node, NodeSpec};

fn pool(n: u32) -> Pool {
    Pool::new(&PoolConfig {
        buffers: n,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .expect("pool")
}

/// A UDP frame of flow `flow` carrying `(source worker, sequence number)`.
fn frame(flow: u16, source: u8, seq: u32) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + 5];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14] = 0x45;
    f[14 + 9] = 17;
    f[14 + 12..14 + 16].copy_from_slice(&[10, 0, (flow >> 8) as u8, flow as u8]);
    f[14 + 16..14 + 20].copy_from_slice(&[10, 1, 0, 1]);
    f[34..36].copy_from_slice(&(1024 + flow).to_be_bytes());
    f[36..38].copy_from_slice(&53u16.to_be_bytes());
    f[42] = source;
    f[43..47].copy_from_slice(&seq.to_be_bytes());
    f
}

/// What a packet says about itself: (flow, source worker, sequence).
fn decode(d: &[u8]) -> (u16, u8, u32) {
    (
        u16::from_be_bytes([d[14 + 14], d[14 + 15]]),
        d[42],
        u32::from_be_bytes([d[43], d[44], d[45], d[46]]),
    )
}

/// Sends `rounds` packets of each of `flows` flows, round-robin over the
/// flows, `burst` a poll; endless when `rounds` is `None`.
struct Source {
    me: u8,
    flows: u16,
    rounds: Option<u32>,
    sent: u64,
    burst: usize,
}

impl Node for Source {
    fn spec(&self) -> NodeSpec {
        NodeSpec::input("src-input", &[handoff::NAME], &[])
    }

    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        let total = self.rounds.map(|r| u64::from(r) * u64::from(self.flows));
        let left = total.map_or(u64::MAX, |t| t - self.sent);
        if left == 0 {
            return InputState::Done;
        }
        let mut f = Frame::new();
        for _ in 0..(self.burst as u64).min(left) {
            let flow = (self.sent % u64::from(self.flows)) as u16;
            let seq = (self.sent / u64::from(self.flows)) as u32;
            let Ok(p) = cx.buffers.alloc_from(&frame(flow, self.me, seq)) else {
                break;
            };
            f.push(p);
            self.sent += 1;
        }
        let n = f.len();
        out.send_all(0, &mut f);
        if n == 0 {
            InputState::Idle
        } else {
            InputState::Busy(n)
        }
    }
}

/// One record a packet: (worker that processed it, flow, source, seq).
type Log = Arc<Mutex<Vec<(usize, u16, u8, u32)>>>;

/// Stands in for `ethernet-input` (and `l2-input`): logs and frees.
struct Recorder {
    name: &'static str,
    log: Log,
}

impl Node for Recorder {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(self.name, &[], &[])
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut log = self.log.lock().expect("log");
        for p in input.drain(..) {
            let (flow, src, seq) = decode(p.data());
            log.push((cx.worker, flow, src, seq));
            cx.buffers.free(p);
        }
    }
}

/// Two workers' graphs: source (when given) → handoff → recorder.
fn graphs(pool: &Pool, ring_size: usize, sources: [Option<Source>; 2], log: &Log) -> Vec<Graph> {
    let mut h = Handoff::new(
        HandoffConfig {
            workers: 2,
            ring_size,
            ..HandoffConfig::default()
        },
        &[false],
    );
    sources
        .into_iter()
        .enumerate()
        .map(|(w, src)| {
            let mut b = GraphBuilder::new();
            if let Some(s) = src {
                b.add(Box::new(s)).unwrap();
            }
            for name in ["ethernet-input", "l2-input"] {
                b.add(Box::new(Recorder {
                    name,
                    log: log.clone(),
                }))
                .unwrap();
            }
            for n in h.nodes(w) {
                b.add(n).unwrap();
            }
            b.build(w, pool.cache(64)).unwrap()
        })
        .collect()
}

fn counter(g: &Graph, node: &str, error: &str) -> u64 {
    let stats = g.stats();
    let n = stats.nodes.iter().find(|n| n.name == node).expect("node");
    let k = n
        .error_specs
        .iter()
        .position(|e| e.name == error)
        .expect("error");
    n.errors[k].get()
}

/// Both workers receive every one of 64 flows; each flow ends up on the
/// one worker its Toeplitz hash names, every packet arrives, and each
/// source's packets of a flow arrive in the order they were sent.
#[test]
fn one_flow_one_worker_in_order_through_real_handoff() {
    const FLOWS: u16 = 64;
    const ROUNDS: u32 = 300;
    let pool = pool(8192);
    let log: Log = Arc::default();
    let source = |me| Source {
        me,
        flows: FLOWS,
        rounds: Some(ROUNDS),
        sent: 0,
        burst: 256,
    };
    // Rings that hold everything one worker could hand off: no drop can
    // happen, however the threads are scheduled.
    let ring = (FLOWS as usize) * (ROUNDS as usize);
    let g = graphs(&pool, ring, [Some(source(0)), Some(source(1))], &log);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = Workers::spawn(g, &[], stop).expect("spawn");
    assert_eq!(workers.join(), 0, "no worker panicked");
    assert_eq!(pool.free_count(), pool.capacity(), "every buffer is back");

    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2 * FLOWS as usize * ROUNDS as usize);
    let rss = Rss::new(RssHash::Toeplitz, false);
    let reta = Reta::round_robin(2);
    let mut owner = vec![None; FLOWS as usize];
    let mut next_seq = vec![[0u32; 2]; FLOWS as usize];
    let mut crossed = 0;
    for &(worker, flow, src, seq) in log.iter() {
        let f = usize::from(flow);
        assert_eq!(
            *owner[f].get_or_insert(worker),
            worker,
            "flow {flow} on two workers"
        );
        assert_eq!(worker, reta.worker(rss.hash(&frame(flow, 0, 0))));
        assert_eq!(
            seq,
            next_seq[f][usize::from(src)],
            "flow {flow} from {src} out of order"
        );
        next_seq[f][usize::from(src)] += 1;
        crossed += usize::from(usize::from(src) != worker);
    }
    // Both workers own flows, so packets did cross both ways.
    assert!(owner.contains(&Some(0)) && owner.contains(&Some(1)));
    assert_eq!(crossed, FLOWS as usize * ROUNDS as usize);
}

/// A ring of 16 to a worker that is not running: the first 16 packets for
/// it wait in the ring, every other one is counted `ring-full`, nothing
/// panics; stopping both workers frees the ring's 16.
#[test]
fn overloaded_ring_counts_drops_and_leaks_nothing() {
    let pool = pool(4096);
    let log: Log = Arc::default();
    let mut g = graphs(&pool, 16, [None, None], &log);
    let rss = Rss::new(RssHash::Toeplitz, false);
    let reta = Reta::round_robin(2);
    let mut for_other = 0u64;
    let mut cache = pool.cache(64);
    for round in 0..8u32 {
        let mut f = Frame::new();
        for flow in 0..200u16 {
            let bytes = frame(flow, 0, round);
            for_other += u64::from(reta.worker(rss.hash(&bytes)) == 1);
            f.push(cache.alloc_from(&bytes).expect("buffer"));
        }
        g[0].inject(handoff::NAME, &mut f).expect("inject");
    }
    cache.flush();
    assert!(for_other > 16);
    assert_eq!(counter(&g[0], handoff::NAME, "ring-full"), for_other - 16);
    let local = log.lock().unwrap().len() as u64;
    assert_eq!(local, 8 * 200 - for_other, "worker 0 kept its own flows");
    assert!(
        pool.free_count() < pool.capacity(),
        "16 packets wait in the ring"
    );
    // Worker 1 never ran; its graph goes first, then worker 0's.
    let g1 = g.pop().unwrap();
    drop(g1);
    drop(g);
    assert_eq!(pool.free_count(), pool.capacity());
}

/// Endless traffic on both workers into small rings, stopped mid-flight
/// (the way `sluice run` stops): no panic, and every buffer — in rings,
/// in vectors, in caches — is back in the pool.
#[test]
fn graceful_stop_drains_every_ring() {
    for _ in 0..5 {
        let pool = pool(8192);
        let log: Log = Arc::default();
        let source = |me| Source {
            me,
            flows: 1000,
            rounds: None,
            sent: 0,
            burst: 256,
        };
        let g = graphs(&pool, 64, [Some(source(0)), Some(source(1))], &log);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = Workers::spawn(g, &[], stop.clone()).expect("spawn");
        std::thread::sleep(Duration::from_millis(50));
        let stats = workers.stats().to_vec();
        stop.store(true, Ordering::Relaxed);
        assert_eq!(workers.join(), 0, "no worker panicked");
        assert_eq!(pool.free_count(), pool.capacity(), "every buffer is back");
        let relayed: u64 = stats
            .iter()
            .flat_map(|s| &s.nodes)
            .filter(|n| n.name == handoff::INPUT)
            .map(|n| n.vectors.get())
            .sum();
        assert!(relayed > 0, "packets did cross between the workers");
        log.lock().unwrap().clear();
    }
}

/// Symmetric hashing sends both directions of a connection to one worker.
#[test]
fn symmetric_handoff_keeps_both_directions_together() {
    let rss = Rss::new(RssHash::Toeplitz, true);
    let reta = Reta::round_robin(4);
    for flow in 0..500u16 {
        let a = frame(flow, 0, 0);
        let mut b = a.clone();
        // Swap addresses and ports.
        let (src, dst) = (a[26..30].to_vec(), a[30..34].to_vec());
        b[26..30].copy_from_slice(&dst);
        b[30..34].copy_from_slice(&src);
        b[34..36].copy_from_slice(&a[36..38]);
        b[36..38].copy_from_slice(&a[34..36]);
        assert_eq!(reta.worker(rss.hash(&a)), reta.worker(rss.hash(&b)));
    }
}
