//! `l2-age`: the MAC aging scan, driven by the cycle counter.
//!
//! An input node that never brings a packet in: each time the dispatch loop
//! polls it, it runs an aging step if one is due ([`L2State::age`]), a
//! slice of every table a millisecond, so that a table of a million slots is
//! swept over half its aging time without ever pausing the worker. Every
//! worker has one; the steps are shared out between them.

use std::sync::Arc;

use sluice_graph::{Cx, InputState, Next, Node, NodeKind, NodeSpec};

use super::state::L2State;

/// The node's name.
pub const NAME: &str = "l2-age";

/// `l2-age`.
pub struct L2Age {
    state: Arc<L2State>,
}

impl L2Age {
    /// The node for one worker.
    pub fn new(state: &Arc<L2State>) -> L2Age {
        L2Age {
            state: state.clone(),
        }
    }
}

impl Node for L2Age {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            kind: NodeKind::Background,
            ..NodeSpec::internal(NAME, &[], &[])
        }
    }

    /// A background poll: it never keeps a finite run alive, and stops
    /// being polled at once when no bridge ages.
    fn poll(&mut self, cx: &mut Cx<'_>, _out: &mut Next<'_>) -> InputState {
        if !self.state.ages() {
            return InputState::Done;
        }
        self.state.age(cx.now);
        InputState::Background
    }
}
