use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sluice_buf::BufCache;

use crate::clock::cycles;
use crate::trace::TraceState;
use crate::{
    Counter, Cx, ErrorSpec, FRAME_SIZE, Frame, InputState, Next, Node, NodeKind, NodeSpec,
};

/// Name of the node every graph has, which frees dropped packets.
pub const ERROR_DROP: &str = "error-drop";

/// Errors found while building a graph.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// Two nodes with one name.
    #[error("node `{0}` is defined twice")]
    DuplicateNode(String),
    /// A next node that does not exist.
    #[error("node `{node}` names next node `{next}`, which does not exist")]
    UnknownNext {
        /// The node declaring the arc.
        node: String,
        /// The missing next node.
        next: String,
    },
    /// A name that is not usable (empty, whitespace).
    #[error("bad node name `{0}`")]
    BadName(String),
}

/// Counters of one node on one worker.
#[derive(Debug)]
pub struct NodeStats {
    /// The node's name.
    pub name: String,
    /// Input or internal.
    pub kind: NodeKind,
    /// Times the node was called.
    pub calls: Counter,
    /// Packets the node handled (produced, for an input node).
    pub vectors: Counter,
    /// Times the node was suspended (always 0 for now: no process nodes).
    pub suspends: Counter,
    /// Cycles spent inside the node.
    pub clocks: Counter,
    /// Error counters: the node's declared errors, then `unhandled`.
    pub errors: Box<[Counter]>,
    /// Specs of `errors`, in the same order.
    pub error_specs: Vec<ErrorSpec>,
    /// The next nodes, by name (for `show graph`).
    pub next: Vec<String>,
}

/// Every node's counters on one worker, readable from any thread.
#[derive(Debug)]
pub struct GraphStats {
    /// Worker number.
    pub worker: usize,
    /// Per node, in graph order.
    pub nodes: Vec<NodeStats>,
    /// Dispatch loops run.
    pub loops: Counter,
    /// Packet trace (`trace add`, `show trace`).
    pub trace: TraceState,
}

impl GraphStats {
    /// Zeroes every counter (`clear runtime`, `clear errors`).
    pub fn clear(&self) {
        self.loops.clear();
        for n in &self.nodes {
            for c in [&n.calls, &n.vectors, &n.suspends, &n.clocks] {
                c.clear();
            }
            n.errors.iter().for_each(Counter::clear);
        }
    }
}

const UNHANDLED: ErrorSpec = ErrorSpec::error(
    "unhandled",
    "packets the node neither sent nor dropped (a bug in the node)",
);

/// Collects nodes, then resolves their next names into a [`Graph`].
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<(NodeSpec, Box<dyn Node>)>,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// Adds a node.
    pub fn add(&mut self, node: Box<dyn Node>) -> Result<&mut Self, GraphError> {
        let spec = node.spec();
        if spec.name.is_empty() || spec.name.contains(char::is_whitespace) {
            return Err(GraphError::BadName(spec.name));
        }
        if spec.name == ERROR_DROP || self.nodes.iter().any(|(s, _)| s.name == spec.name) {
            return Err(GraphError::DuplicateNode(spec.name));
        }
        self.nodes.push((spec, node));
        Ok(self)
    }

    /// Whether a node of this name was added.
    pub fn has(&self, name: &str) -> bool {
        name == ERROR_DROP || self.nodes.iter().any(|(s, _)| s.name == name)
    }

    /// Resolves every next name and makes the graph for worker `worker`,
    /// which allocates and frees through `buffers`.
    pub fn build(mut self, worker: usize, buffers: BufCache) -> Result<Graph, GraphError> {
        self.nodes.push((ErrorDrop.spec(), Box::new(ErrorDrop)));
        let drop_node = self.nodes.len() - 1;
        let index: HashMap<&str, u32> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (s.name.as_str(), i as u32))
            .collect();
        let mut targets = Vec::with_capacity(self.nodes.len());
        for (spec, _) in &self.nodes {
            let t = spec
                .next
                .iter()
                .map(|n| {
                    index
                        .get(n.as_str())
                        .copied()
                        .ok_or_else(|| GraphError::UnknownNext {
                            node: spec.name.clone(),
                            next: n.clone(),
                        })
                })
                .collect::<Result<Vec<u32>, _>>()?;
            targets.push(t);
        }
        let stats = GraphStats {
            worker,
            loops: Counter::default(),
            trace: TraceState::new(self.nodes.len()),
            nodes: self
                .nodes
                .iter()
                .map(|(s, _)| {
                    let mut error_specs = s.errors.clone();
                    error_specs.push(UNHANDLED);
                    NodeStats {
                        name: s.name.clone(),
                        kind: s.kind,
                        calls: Counter::default(),
                        vectors: Counter::default(),
                        suspends: Counter::default(),
                        clocks: Counter::default(),
                        errors: error_specs.iter().map(|_| Counter::default()).collect(),
                        error_specs,
                        next: s.next.clone(),
                    }
                })
                .collect(),
        };
        let n = self.nodes.len();
        let inputs: Vec<usize> = (0..n)
            .filter(|&i| {
                matches!(
                    self.nodes[i].0.kind,
                    NodeKind::Input | NodeKind::Background | NodeKind::Relay
                )
            })
            .collect();
        let input_background = inputs
            .iter()
            .map(|&i| self.nodes[i].0.kind == NodeKind::Background)
            .collect();
        let input_own = inputs
            .iter()
            .map(|&i| self.nodes[i].0.kind == NodeKind::Input)
            .collect();
        Ok(Graph {
            worker,
            input_done: vec![false; inputs.len()],
            input_background,
            input_own,
            inputs_done: false,
            background_at: 0,
            background_every: (crate::clock::hz() * BACKGROUND_EVERY.as_secs_f64()) as u64,
            inputs,
            nodes: self.nodes.into_iter().map(|(_, n)| n).collect(),
            targets,
            pending: (0..n).map(|_| Frame::new()).collect(),
            queued: vec![false; n],
            run_queue: VecDeque::with_capacity(n),
            scratch: Frame::new(),
            stats: Arc::new(stats),
            buffers,
            drop_node,
        })
    }
}

/// What one turn of the dispatch loop saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Some input brought packets.
    Busy,
    /// No input had packets.
    Idle,
    /// Every input is finished and nothing is pending.
    Done,
}

/// Time between two polls of the background (timer) inputs.
const BACKGROUND_EVERY: std::time::Duration = std::time::Duration::from_micros(100);

/// One worker's instance of the graph.
pub struct Graph {
    worker: usize,
    nodes: Vec<Box<dyn Node>>,
    /// Per node, next index → node index.
    targets: Vec<Vec<u32>>,
    /// Per node, packets waiting for it.
    pending: Vec<Frame>,
    /// Per node, whether it is in `run_queue`.
    queued: Vec<bool>,
    run_queue: VecDeque<u32>,
    inputs: Vec<usize>,
    input_done: Vec<bool>,
    /// Per input: a timer-driven node, which needs no readiness to sleep on.
    input_background: Vec<bool>,
    /// Per input: one of the worker's own (not a relay, not background).
    input_own: Vec<bool>,
    /// Whether every own input was done before this turn began.
    inputs_done: bool,
    /// Cycle count of the last poll of the background inputs, and the
    /// cycles between two.
    background_at: u64,
    background_every: u64,
    /// The frame handed to the node being dispatched.
    scratch: Frame,
    stats: Arc<GraphStats>,
    buffers: BufCache,
    drop_node: usize,
}

impl Graph {
    /// The counters, to read from another thread.
    pub fn stats(&self) -> Arc<GraphStats> {
        self.stats.clone()
    }

    /// This worker's buffer cache.
    pub fn buffers(&mut self) -> &mut BufCache {
        &mut self.buffers
    }

    /// Index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.stats.nodes.iter().position(|n| n.name == name)
    }

    /// One turn: poll every input, then run nodes until nothing is pending.
    pub fn run_once(&mut self) -> RunState {
        let now = cycles();
        self.stats.loops.add(1);
        let mut busy = false;
        let mut all_done = true;
        // Timer-driven inputs (aging, retries, announcements) work in
        // milliseconds: polling them every loop of a busy worker would cost
        // each packet a share of their calls for nothing.
        let background_turn = now.wrapping_sub(self.background_at) >= self.background_every;
        if background_turn {
            self.background_at = now;
        }
        // The previous turn ran every node dry, so once the own inputs
        // are done nothing they brought is still on its way.
        self.inputs_done = self
            .input_done
            .iter()
            .zip(&self.input_own)
            .all(|(&done, &own)| done || !own);
        for k in 0..self.inputs.len() {
            if self.input_done[k] || (self.input_background[k] && !background_turn) {
                continue;
            }
            let i = self.inputs[k];
            match self.dispatch(i, now, true) {
                InputState::Busy(_) => {
                    busy = true;
                    all_done = false;
                }
                InputState::Idle => all_done = false,
                InputState::Background => {}
                InputState::Done => self.input_done[k] = true,
            }
        }
        while let Some(i) = self.run_queue.pop_front() {
            self.queued[i as usize] = false;
            self.dispatch(i as usize, now, false);
        }
        if busy {
            RunState::Busy
        } else if all_done {
            RunState::Done
        } else {
            RunState::Idle
        }
    }

    /// The descriptors of the inputs still running, for an idle worker to
    /// sleep on. False if some input has none and must be polled (then the
    /// worker may only nap briefly).
    pub fn wait_fds(&self, out: &mut Vec<std::os::fd::RawFd>) -> bool {
        let mut all = true;
        for (k, &i) in self.inputs.iter().enumerate() {
            if self.input_done[k] || self.input_background[k] {
                continue;
            }
            match self.nodes[i].wait_fd() {
                Some(fd) => out.push(fd),
                None => all = false,
            }
        }
        all
    }

    /// Runs until every input is done (a finite packet generator, a capture
    /// replayed to its end).
    pub fn run_to_completion(&mut self) {
        while self.run_once() != RunState::Done {}
    }

    /// Hands `frame` to node `name` as if a previous node had sent it, then
    /// runs the graph until nothing is pending. For tests and benchmarks that
    /// drive a graph without an input node.
    pub fn inject(&mut self, name: &str, frame: &mut Frame) -> Result<(), GraphError> {
        let i = self
            .node_index(name)
            .ok_or_else(|| GraphError::UnknownNext {
                node: "inject".into(),
                next: name.into(),
            })?;
        self.pending[i].append(frame);
        self.enqueue(i);
        let now = cycles();
        while let Some(i) = self.run_queue.pop_front() {
            self.queued[i as usize] = false;
            self.dispatch(i as usize, now, false);
        }
        Ok(())
    }

    #[inline]
    fn enqueue(&mut self, i: usize) {
        if !self.queued[i] && !self.pending[i].is_empty() {
            self.queued[i] = true;
            self.run_queue.push_back(i as u32);
        }
    }

    fn dispatch(&mut self, i: usize, now: u64, input: bool) -> InputState {
        // The frame in hand goes back to `scratch` even if the node panics,
        // so that stopping the graph frees its packets too.
        let mut guard = Reclaim {
            frame: std::mem::take(&mut self.scratch),
            home: &mut self.scratch,
        };
        let frame = &mut guard.frame;
        if !input {
            let pending = &mut self.pending[i];
            if pending.len() <= FRAME_SIZE {
                std::mem::swap(pending, frame);
            } else {
                frame.extend(pending.drain(..FRAME_SIZE));
            }
        }
        let n_in = frame.len();
        let tracing = self.stats.trace.on();
        // Where the input's packets will land, to find them afterwards.
        let before: Vec<usize> = if tracing && input {
            self.targets[i]
                .iter()
                .map(|&t| self.pending[t as usize].len())
                .collect()
        } else {
            Vec::new()
        };
        if tracing && !input {
            self.stats
                .trace
                .see(&self.stats.nodes[i].name, frame.iter());
        }
        let stats = &self.stats.nodes[i];
        let mut cx = Cx {
            worker: self.worker,
            buffers: &mut self.buffers,
            now,
            inputs_done: self.inputs_done,
        };
        let mut next = Next {
            targets: &self.targets[i],
            pending: &mut self.pending,
            errors: &stats.errors,
            drop_node: self.drop_node,
        };
        let node = &mut self.nodes[i];
        let t0 = cycles();
        let state = if input {
            node.poll(&mut cx, &mut next)
        } else {
            node.process(&mut cx, frame, &mut next);
            InputState::Busy(n_in)
        };
        let t1 = cycles();
        if !frame.is_empty() {
            next.drop_all(frame, usize::MAX);
        }
        if tracing && input {
            for (k, &t) in self.targets[i].iter().enumerate() {
                let from = before.get(k).copied().unwrap_or(0);
                let fresh = self.pending[t as usize].iter_mut().skip(from);
                self.stats.trace.mark(i, &stats.name, fresh);
            }
        }
        let n = match state {
            InputState::Busy(n) => n,
            _ => 0,
        };
        stats.calls.add(1);
        stats.vectors.add(n as u64);
        stats.clocks.add(t1.wrapping_sub(t0));
        drop(guard);
        for k in 0..self.targets[i].len() {
            let t = self.targets[i][k] as usize;
            self.enqueue(t);
        }
        // Anything dropped lands on the drop node; so may a node's own
        // leftovers beyond one vector.
        self.enqueue(self.drop_node);
        self.enqueue(i);
        state
    }

    /// Stops the graph: lets every node flush, then frees every packet still
    /// pending anywhere, so no buffer outlives the worker.
    pub fn stop(&mut self) {
        let now = cycles();
        for node in &mut self.nodes {
            let mut cx = Cx {
                worker: self.worker,
                buffers: &mut self.buffers,
                now,
                inputs_done: true,
            };
            node.stop(&mut cx);
        }
        for q in &mut self.pending {
            self.buffers.free_all(q);
        }
        self.buffers.free_all(&mut self.scratch);
        self.buffers.flush();
    }
}

impl Drop for Graph {
    /// A graph dropped without [`Graph::stop`] still gives every packet back.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Puts the dispatched frame back into the graph's scratch frame when
/// dropped: normally empty, after a node panic still holding packets.
struct Reclaim<'a> {
    frame: Frame,
    home: &'a mut Frame,
}

impl Drop for Reclaim<'_> {
    fn drop(&mut self) {
        if self.home.is_empty() {
            std::mem::swap(self.home, &mut self.frame);
        } else {
            self.home.append(&mut self.frame);
        }
    }
}

/// Frees dropped packets; its per-node error counters say why they came.
struct ErrorDrop;

impl Node for ErrorDrop {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(ERROR_DROP, &[], &[])
    }

    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        cx.buffers.free_all(input);
    }
}
