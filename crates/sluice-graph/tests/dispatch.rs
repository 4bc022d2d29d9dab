//! The dispatcher: named arcs, vectors, counters, drops and leftovers, and
//! that every buffer comes back whatever the nodes do.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_graph::worker::Workers;
use sluice_graph::{
    Cx, ErrorSpec, FRAME_SIZE, Frame, GraphBuilder, GraphError, InputState, Next, Node, NodeSpec,
    runtime,
};

fn pool(n: u32) -> Pool {
    Pool::new(&PoolConfig {
        buffers: n,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap()
}

/// Makes `left` one-byte packets numbered from 0, `burst` per poll.
struct Source {
    left: u64,
    seq: u8,
    burst: usize,
}

impl Node for Source {
    fn spec(&self) -> NodeSpec {
        NodeSpec::input("source", &["split"], &[])
    }
    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        if self.left == 0 {
            return InputState::Done;
        }
        let n = (self.left as usize).min(self.burst);
        let mut f = Frame::new();
        let got = cx.buffers.alloc_bulk(n, &mut f);
        for p in f.iter_mut() {
            p.set_len(1).unwrap();
            p.data_mut()[0] = self.seq;
            self.seq = self.seq.wrapping_add(1);
        }
        self.left -= got as u64;
        out.send_all(0, &mut f);
        InputState::Busy(got)
    }
}

/// Even bytes go on, odd ones are dropped as `odd`, multiples of 7 are
/// left in the frame (a buggy node).
struct Split;

impl Node for Split {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("split", &["sink"], &[ErrorSpec::info("odd", "odd byte")])
    }
    fn process(&mut self, _cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let mut keep = Vec::new();
        for p in input.drain(..) {
            let b = p.data()[0];
            if b % 7 == 0 && b % 2 == 1 {
                keep.push(p);
            } else if b % 2 == 1 {
                out.drop(p, 0);
            } else {
                out.send(0, p);
            }
        }
        input.extend(keep);
    }
}

struct Sink {
    seen: u64,
}

impl Node for Sink {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("sink", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        assert!(
            input.len() <= FRAME_SIZE,
            "a vector is at most {FRAME_SIZE}"
        );
        self.seen += input.len() as u64;
        cx.buffers.free_all(input);
    }
}

fn build(p: &Pool, count: u64, burst: usize) -> sluice_graph::Graph {
    let mut b = GraphBuilder::new();
    b.add(Box::new(Source {
        left: count,
        seq: 0,
        burst,
    }))
    .unwrap();
    b.add(Box::new(Split)).unwrap();
    b.add(Box::new(Sink { seen: 0 })).unwrap();
    b.build(0, p.cache(64)).unwrap()
}

#[test]
fn packets_flow_and_every_drop_is_counted() {
    let p = pool(2048);
    let mut g = build(&p, 25_600, 256);
    g.run_to_completion();
    let stats = g.stats();
    let refs = [&*stats];
    let rows = runtime::rows(&refs);
    let row = |n: &str| rows.iter().find(|r| r.name == n).cloned().unwrap();
    assert_eq!(row("source").vectors, 25_600);
    assert_eq!(row("split").vectors, 25_600);
    // 256 distinct byte values, 100 rounds: 128 even, 128 odd of which 18
    // are multiples of 7 (left behind).
    assert_eq!(row("sink").vectors, 12_800);
    let errors = runtime::error_rows(&refs);
    let count = |n: &str| errors.iter().find(|e| e.name == n).map(|e| e.count);
    assert_eq!(count("odd"), Some(11_000));
    assert_eq!(count("unhandled"), Some(1_800));
    assert_eq!(row("error-drop").vectors, 12_800);
    assert!(row("split").vectors_per_call() > 200.0);
    assert!(row("split").clocks() > 0.0);
    let text = runtime::show_runtime(&refs, 1.0, &[None]);
    for col in [
        "Name",
        "State",
        "Calls",
        "Vectors",
        "Suspends",
        "Clocks",
        "Vectors/Call",
    ] {
        assert!(text.contains(col), "{text}");
    }
    assert!(runtime::show_errors(&refs).contains("odd byte"));
    drop(g);
    assert_eq!(p.free_count(), 2048);
}

#[test]
fn vector_size_follows_the_input_burst() {
    for burst in [1, 16, 64, 256] {
        let p = pool(1024);
        let mut g = build(&p, 4096, burst);
        g.run_to_completion();
        let stats = g.stats();
        let rows = runtime::rows(&[&*stats]);
        let split = rows.iter().find(|r| r.name == "split").unwrap();
        assert_eq!(split.vectors_per_call(), burst as f64);
        drop(g);
        assert_eq!(p.free_count(), 1024);
    }
}

#[test]
fn more_than_a_vector_pending_is_split() {
    let p = pool(4096);
    let mut g = build(&p, 0, 1);
    let mut big = Frame::new();
    g.buffers().alloc_bulk(1000, &mut big);
    for (i, pkt) in big.iter_mut().enumerate() {
        pkt.set_len(1).unwrap();
        pkt.data_mut()[0] = (i as u8) & !1;
    }
    g.inject("split", &mut big).unwrap();
    let stats = g.stats();
    let rows = runtime::rows(&[&*stats]);
    let split = rows.iter().find(|r| r.name == "split").unwrap();
    assert_eq!(split.vectors, 1000);
    assert_eq!(split.calls, 4);
    drop(g);
    assert_eq!(p.free_count(), 4096);
}

#[test]
fn bad_graphs_are_refused() {
    let p = pool(16);
    let mut b = GraphBuilder::new();
    b.add(Box::new(Split)).unwrap();
    let e = b.build(0, p.cache(1)).err().unwrap();
    assert_eq!(
        e,
        GraphError::UnknownNext {
            node: "split".into(),
            next: "sink".into()
        }
    );
    let mut b = GraphBuilder::new();
    b.add(Box::new(Sink { seen: 0 })).unwrap();
    assert!(matches!(
        b.add(Box::new(Sink { seen: 0 })),
        Err(GraphError::DuplicateNode(_))
    ));
}

#[test]
fn stop_frees_what_is_pending() {
    let p = pool(512);
    let mut g = build(&p, 0, 1);
    let mut f = Frame::new();
    g.buffers().alloc_bulk(300, &mut f);
    // Queue packets without running anything, then stop.
    g.inject("nonexistent", &mut f).unwrap_err();
    g.buffers().free_all(&mut f);
    g.stop();
    drop(g);
    assert_eq!(p.free_count(), 512);
}

#[test]
fn workers_run_their_own_graphs() {
    let p = pool(4096);
    let graphs = (0..2)
        .map(|w| {
            let mut b = GraphBuilder::new();
            b.add(Box::new(Source {
                left: 10_000,
                seq: 0,
                burst: 256,
            }))
            .unwrap();
            b.add(Box::new(Split)).unwrap();
            b.add(Box::new(Sink { seen: 0 })).unwrap();
            b.build(w, p.cache(128)).unwrap()
        })
        .collect();
    let workers = Workers::spawn(graphs, &[0, 1], Arc::new(AtomicBool::new(false))).unwrap();
    let stats = workers.stats().to_vec();
    assert_eq!(workers.join(), 0);
    let refs: Vec<_> = stats.iter().map(|s| &**s).collect();
    assert_eq!(runtime::packets_in(&refs), 20_000);
    let text = runtime::show_runtime(&refs, 1.0, &[Some(0), Some(1)]);
    assert!(text.contains("Total (2 workers)"), "{text}");
    // The total's rate, then each worker's share of it.
    let per: Vec<u64> = refs.iter().map(|g| runtime::packets_in(&[*g])).collect();
    let line = format!(
        "vector rates in 2.0000e4, drop {:.4e}; per worker in: {:.4e}, {:.4e}",
        runtime::packets_dropped(&refs) as f64,
        per[0] as f64,
        per[1] as f64
    );
    assert!(text.contains(&line), "{text}");
    assert_eq!(p.free_count(), 4096);
}

/// Panics on its first vector, holding it.
struct Boom;

impl Node for Boom {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("split", &["sink"], &[])
    }
    fn process(&mut self, _cx: &mut Cx<'_>, _input: &mut Frame, _out: &mut Next<'_>) {
        panic!("node bug");
    }
}

#[test]
fn a_panicking_node_loses_no_buffer() {
    let p = pool(512);
    let mut b = GraphBuilder::new();
    b.add(Box::new(Boom)).unwrap();
    b.add(Box::new(Sink { seen: 0 })).unwrap();
    let mut g = b.build(0, p.cache(32)).unwrap();
    let mut f = Frame::new();
    g.buffers().alloc_bulk(100, &mut f);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        g.inject("split", &mut f).unwrap();
    }));
    assert!(r.is_err());
    drop(g);
    assert_eq!(p.free_count(), 512);
}
