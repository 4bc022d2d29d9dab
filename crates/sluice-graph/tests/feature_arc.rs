//! Feature arcs through a graph: each interface's packets visit its
//! enabled features in the arc's order, features are enabled and disabled
//! while packets flow, and every buffer comes back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_graph::{
    Cx, FeatureArc, Frame, GraphBuilder, InputState, Next, Node, NodeSpec, Onward, RunState,
};

const INTERFACES: u32 = 3;
const FEATURES: &[&str] = &["feat-a", "feat-b", "feat-c"];

fn pool(n: u32) -> Pool {
    Pool::new(&PoolConfig {
        buffers: n,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

/// `left` packets, received on interfaces 0, 1, 2, 0, ... in turn: byte 0
/// is the interface, byte 1 how many features stamped it, then their marks.
struct Source {
    left: u64,
    next_if: u32,
}

impl Node for Source {
    fn spec(&self) -> NodeSpec {
        NodeSpec::input("source", &["start"], &[])
    }
    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        if self.left == 0 {
            return InputState::Done;
        }
        let mut f = Frame::new();
        let got = cx.buffers.alloc_bulk((self.left as usize).min(64), &mut f);
        for p in f.iter_mut() {
            p.set_len(8).unwrap();
            p.meta_mut().rx_if = self.next_if;
            let d = p.data_mut();
            d[0] = self.next_if as u8;
            d[1] = 0;
            self.next_if = (self.next_if + 1) % INTERFACES;
        }
        self.left -= got as u64;
        out.send_all(0, &mut f);
        InputState::Busy(got)
    }
}

/// Where the arc starts (as `ip4-input` does).
struct Start(Arc<FeatureArc>);

impl Node for Start {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            next: self.0.next_names(),
            ..NodeSpec::internal("start", &[], &[])
        }
    }
    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let t = self.0.load();
        for p in input.drain(..) {
            let n = t.first(p.meta().rx_if);
            out.send(n, p);
        }
    }
}

/// A feature: stamps its mark, then on along the arc.
struct Feature {
    name: &'static str,
    mark: u8,
    onward: Onward,
}

impl Node for Feature {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            next: self.onward.names(),
            ..NodeSpec::internal(self.name, &[], &[])
        }
    }
    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let route = self.onward.load();
        for mut p in input.drain(..) {
            let d = p.data_mut();
            let k = usize::from(d[1]);
            d[2 + k] = self.mark;
            d[1] += 1;
            let n = route.next(p.meta());
            out.send(n, p);
        }
    }
}

/// Per packet that reached the end: its interface and the marks it got.
type Seen = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;

/// Where the arc ends: records each packet's interface and marks.
struct End {
    seen: Seen,
    count: Arc<AtomicU64>,
}

impl Node for End {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("end", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut seen = self.seen.lock().unwrap();
        for p in input.drain(..) {
            let d = p.data();
            seen.push((d[0], d[2..2 + usize::from(d[1])].to_vec()));
            self.count.fetch_add(1, Ordering::Relaxed);
            cx.buffers.free(p);
        }
    }
}

fn graph(pool: &Pool, arc: &Arc<FeatureArc>, packets: u64) -> (sluice_graph::Graph, Seen) {
    let seen: Seen = Arc::default();
    let mut b = GraphBuilder::new();
    b.add(Box::new(Source {
        left: packets,
        next_if: 0,
    }))
    .unwrap();
    b.add(Box::new(Start(arc.clone()))).unwrap();
    for (k, name) in FEATURES.iter().enumerate() {
        b.add(Box::new(Feature {
            name,
            mark: b'a' + k as u8,
            onward: Onward::after(arc, name).unwrap(),
        }))
        .unwrap();
    }
    b.add(Box::new(End {
        seen: seen.clone(),
        count: Arc::default(),
    }))
    .unwrap();
    (b.build(0, pool.cache(64)).unwrap(), seen)
}

#[test]
fn each_interface_visits_its_features_in_arc_order() {
    let pool = pool(1024);
    let free = pool.free_count();
    let arc = FeatureArc::receive("test-arc", FEATURES, "end", INTERFACES as usize).unwrap();
    // Interface 0: none; 1: c and a (given out of order); 2: b.
    arc.set(1, &["feat-c", "feat-a"]).unwrap();
    arc.enable(2, "feat-b").unwrap();
    let (mut g, seen) = graph(&pool, &arc, 300);
    g.run_to_completion();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 300);
    for (rx, marks) in seen.iter() {
        let want: &[u8] = match rx {
            0 => b"",
            1 => b"ac",
            _ => b"b",
        };
        assert_eq!(marks, want, "interface {rx}");
    }
    drop(g);
    assert_eq!(pool.free_count(), free, "a buffer leaked");
}

#[test]
fn features_change_while_packets_flow() {
    let pool = pool(4096);
    let free = pool.free_count();
    let arc = FeatureArc::receive("test-arc", FEATURES, "end", INTERFACES as usize).unwrap();
    const PACKETS: u64 = 300_000;
    let (mut g, seen) = graph(&pool, &arc, PACKETS);
    let worker = std::thread::spawn(move || {
        while g.run_once() != RunState::Done {}
        drop(g);
    });
    // Interface 1 flips between {a, c} and {b}, interface 2 between
    // nothing and {c}; interface 0 never has a feature.
    let mut flips = 0u64;
    while !worker.is_finished() {
        if flips.is_multiple_of(2) {
            arc.set(1, &["feat-a", "feat-c"]).unwrap();
            arc.enable(2, "feat-c").unwrap();
        } else {
            arc.set(1, &["feat-b"]).unwrap();
            arc.disable(2, "feat-c").unwrap();
        }
        flips += 1;
        std::thread::yield_now();
    }
    worker.join().unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, PACKETS, "every packet reached the end");
    let mut shapes = std::collections::HashSet::new();
    for (rx, marks) in seen.iter() {
        // A vector is routed by one table from start to end of a node,
        // but a packet may meet a newer table at the next feature: what
        // it visits is always in arc order, and only what its interface
        // ever had.
        assert!(marks.windows(2).all(|w| w[0] < w[1]), "{marks:?}");
        let allowed: &[u8] = match rx {
            0 => b"",
            1 => b"abc",
            _ => b"c",
        };
        assert!(marks.iter().all(|m| allowed.contains(m)), "{rx}: {marks:?}");
        shapes.insert((*rx, marks.clone()));
    }
    assert!(flips > 2, "the features never changed");
    assert!(
        shapes.contains(&(1, b"ac".to_vec())) && shapes.contains(&(1, b"b".to_vec())),
        "interface 1 saw only one of its feature sets: {shapes:?}"
    );
    assert_eq!(pool.free_count(), free, "a buffer leaked");
}
