use sluice_buf::BufCache;

use crate::{Frame, Next};

/// Whether the dispatcher polls a node or only runs it when packets wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// Polled every loop ([`Node::poll`]): brings packets into the graph.
    Input,
    /// Runs when packets are pending for it ([`Node::process`]).
    Internal,
    /// An internal node that is also polled for its timers (retries,
    /// aging): packets it sends from `poll` are not counted as received.
    Background,
    /// Polled every loop like an input, but brings packets that another
    /// worker already received (handoff): they are not counted as
    /// received again, and the worker's own traffic is over once every
    /// *other* input is done ([`Cx::inputs_done`]).
    Relay,
}

/// How bad a counted drop is, for `show errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Expected in normal operation (e.g. a packet for another host).
    Info,
    /// Something worth a look (e.g. a full table).
    Warn,
    /// Malformed or misrouted traffic.
    Error,
}

impl Severity {
    /// The word `show errors` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// One named error counter of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorSpec {
    /// Short name, e.g. `bad-checksum`.
    pub name: &'static str,
    /// What it counts, for `show errors`.
    pub description: &'static str,
    /// How bad it is.
    pub severity: Severity,
}

impl ErrorSpec {
    /// An error counter of severity `Error`.
    pub const fn error(name: &'static str, description: &'static str) -> ErrorSpec {
        ErrorSpec {
            name,
            description,
            severity: Severity::Error,
        }
    }

    /// An error counter of severity `Warn`.
    pub const fn warn(name: &'static str, description: &'static str) -> ErrorSpec {
        ErrorSpec {
            name,
            description,
            severity: Severity::Warn,
        }
    }

    /// An error counter of severity `Info`.
    pub const fn info(name: &'static str, description: &'static str) -> ErrorSpec {
        ErrorSpec {
            name,
            description,
            severity: Severity::Info,
        }
    }
}

/// What a node tells the graph about itself, once, when the graph is built.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Unique name in the graph, e.g. `ip4-lookup`.
    pub name: String,
    /// Input or internal.
    pub kind: NodeKind,
    /// Names of the next nodes; index `i` here is next index `i` in
    /// [`Next::send`].
    pub next: Vec<String>,
    /// The node's error counters; index `i` here is error `i` in
    /// [`Next::drop`].
    pub errors: Vec<ErrorSpec>,
}

impl NodeSpec {
    /// An internal node with the given next nodes and errors.
    pub fn internal(name: impl Into<String>, next: &[&str], errors: &[ErrorSpec]) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            kind: NodeKind::Internal,
            next: next.iter().map(|s| s.to_string()).collect(),
            errors: errors.to_vec(),
        }
    }

    /// An input node with the given next nodes and errors.
    pub fn input(name: impl Into<String>, next: &[&str], errors: &[ErrorSpec]) -> NodeSpec {
        NodeSpec {
            kind: NodeKind::Input,
            ..NodeSpec::internal(name, next, errors)
        }
    }
}

/// What an input node's poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputState {
    /// Brought this many packets in.
    Busy(usize),
    /// Nothing now; may have packets later.
    Idle,
    /// Finished for good (a packet generator that sent its count, a capture
    /// file at its end).
    Done,
    /// Nothing now: a node polled for its timers (aging, retries), which
    /// keeps being polled but does not keep a finite run alive once every
    /// real input is done.
    Background,
}

/// What a node may use besides its packets: the worker's identity, its
/// buffer cache, and the time of this loop.
pub struct Cx<'a> {
    /// Worker number, from 0.
    pub worker: usize,
    /// The worker's buffer cache, to allocate or free packets.
    pub buffers: &'a mut BufCache,
    /// Cycle counter at the start of this dispatch loop.
    pub now: u64,
    /// Whether every input of this worker other than relays and
    /// background nodes has finished for good, and everything it brought
    /// has been through the graph (so nothing more will be handed off
    /// from here).
    pub inputs_done: bool,
}

/// A packet-processing node.
///
/// Internal nodes implement [`Node::process`]; input nodes implement
/// [`Node::poll`]. Either must send or drop every packet it takes.
pub trait Node: Send {
    /// Name, kind, next nodes and error counters.
    fn spec(&self) -> NodeSpec;

    /// Handles a vector of packets, emptying `input`.
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, out: &mut Next<'_>) {
        let _ = cx;
        out.drop_all(input, usize::MAX);
    }

    /// Brings packets into the graph (input nodes only).
    fn poll(&mut self, cx: &mut Cx<'_>, out: &mut Next<'_>) -> InputState {
        let _ = (cx, out);
        InputState::Done
    }

    /// Called once when the worker stops, to flush what the node holds.
    fn stop(&mut self, cx: &mut Cx<'_>) {
        let _ = cx;
    }

    /// For an input node: a descriptor that turns readable when it has
    /// packets, so that an idle worker can sleep on it instead of
    /// spinning. `None` (the default) means it must be polled.
    fn wait_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }
}
