//! The vector packet-processing graph.
//!
//! A [`Node`] takes a [`Frame`] of up to [`FRAME_SIZE`] packets and sends
//! each one to one of its named next nodes through [`Next`], or drops it
//! with one of its named error counters. Input nodes poll interfaces.
//! Nodes declare their next nodes by name; [`GraphBuilder::build`] resolves
//! the names to indices once.
//!
//! Each worker thread owns a whole [`Graph`] (built by a factory per worker)
//! and runs its dispatch loop: poll every input node, then run every node
//! with pending packets until none are left, and again. Every node keeps
//! calls, vectors and TSC clocks; [`runtime`] prints them in VPP's
//! `show runtime` columns, where Clocks is cycles per packet.
//!
//! Per-interface optional functions stand on [`feature`] arcs.
//!
//! Counters are written by one worker and read by anyone without locks
//! ([`Counter`]).
#![deny(missing_docs)]

pub mod clock;
mod counter;
pub mod feature;
mod frame;
mod graph;
pub mod iface;
mod next;
mod node;
pub mod ring;
pub mod runtime;
pub mod trace;
mod wait;
pub mod worker;

pub use counter::Counter;
pub use feature::{FeatureArc, FeatureError, Onward};
pub use frame::{FRAME_SIZE, Frame, PREFETCH_AHEAD, Prefetched};
pub use graph::{Graph, GraphBuilder, GraphError, GraphStats, NodeStats, RunState};
pub use next::Next;
pub use node::{Cx, ErrorSpec, InputState, Node, NodeKind, NodeSpec, Severity};
