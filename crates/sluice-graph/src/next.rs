use sluice_buf::Packet;

use crate::{Counter, Frame};

/// Where a node sends its packets: its next nodes (by next index, the
/// position in [`crate::NodeSpec::next`]) and the drop node (by error index,
/// the position in [`crate::NodeSpec::errors`]).
///
/// Sending appends the packet to the next node's pending vector; the
/// dispatcher runs that node afterwards, a vector at a time.
pub struct Next<'a> {
    /// Next index → the node index in the graph.
    pub(crate) targets: &'a [u32],
    /// Pending packets of every node in the graph.
    pub(crate) pending: &'a mut [Frame],
    /// This node's error counters; the last one is `unhandled`.
    pub(crate) errors: &'a [Counter],
    /// The graph's drop node.
    pub(crate) drop_node: usize,
}

impl Next<'_> {
    /// Sends `packet` to next node `next`. An index the node never declared
    /// is a bug in the node: the packet is dropped as `unhandled`.
    #[inline(always)]
    pub fn send(&mut self, next: usize, packet: Packet) {
        match self.targets.get(next) {
            Some(&t) => self.pending[t as usize].push(packet),
            None => self.drop(packet, usize::MAX),
        }
    }

    /// Sends every packet of `frame` to next node `next`, leaving it empty.
    #[inline]
    pub fn send_all(&mut self, next: usize, frame: &mut Frame) {
        let Some(&t) = self.targets.get(next) else {
            return self.drop_all(frame, usize::MAX);
        };
        let q = &mut self.pending[t as usize];
        if q.is_empty() {
            // Whole-vector hand-over: swap the vectors instead of copying.
            std::mem::swap(q, frame);
        } else {
            q.append(frame);
        }
    }

    /// Drops `packet`, counting it under the node's error `error`. An index
    /// out of range counts under `unhandled`.
    #[inline]
    pub fn drop(&mut self, packet: Packet, error: usize) {
        let last = self.errors.len() - 1;
        self.errors[error.min(last)].add(1);
        self.pending[self.drop_node].push(packet);
    }

    /// Drops every packet of `frame` under error `error`.
    pub fn drop_all(&mut self, frame: &mut Frame, error: usize) {
        let last = self.errors.len() - 1;
        self.errors[error.min(last)].add(frame.len() as u64);
        self.pending[self.drop_node].append(frame);
    }

    /// Counts `n` packets under error `error` that the node has already
    /// freed itself (a driver whose transmit failed).
    #[inline]
    pub fn count(&mut self, error: usize, n: u64) {
        let last = self.errors.len() - 1;
        self.errors[error.min(last)].add(n);
    }

    /// Number of next nodes declared.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the node declared no next node.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}
