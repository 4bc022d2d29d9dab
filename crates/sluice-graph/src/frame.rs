use std::ops::{Deref, DerefMut};

use sluice_buf::Packet;

/// Packets per vector at most, as in VPP.
pub const FRAME_SIZE: usize = 256;

/// A vector of packets handed to a node in one call.
///
/// It derefs to `Vec<Packet>`, so nodes use the usual `drain`, `iter_mut`,
/// `pop` and so on. A node must leave its input frame empty: whatever it
/// leaves is freed by the dispatcher and counted as an error of that node.
#[derive(Debug, Default)]
pub struct Frame(Vec<Packet>);

impl Frame {
    /// An empty frame with room for a full vector.
    pub fn new() -> Frame {
        Frame(Vec::with_capacity(FRAME_SIZE))
    }
}

/// Packets ahead of the current one whose memory is requested early.
pub const PREFETCH_AHEAD: usize = 4;

impl Frame {
    /// Takes every packet out, in order, prefetching each one
    /// [`PREFETCH_AHEAD`] packets before it is handed out. For the first
    /// node to touch packets that arrived in memory the CPU has not seen.
    #[inline]
    pub fn drain_prefetched(&mut self) -> Prefetched<'_> {
        for p in self.0.iter().take(PREFETCH_AHEAD) {
            p.prefetch();
        }
        Prefetched {
            inner: self.0.drain(..),
        }
    }
}

/// Iterator of [`Frame::drain_prefetched`].
pub struct Prefetched<'a> {
    inner: std::vec::Drain<'a, Packet>,
}

impl Iterator for Prefetched<'_> {
    type Item = Packet;

    #[inline(always)]
    fn next(&mut self) -> Option<Packet> {
        if let Some(p) = self.inner.as_slice().get(PREFETCH_AHEAD) {
            p.prefetch();
        }
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl Deref for Frame {
    type Target = Vec<Packet>;
    #[inline]
    fn deref(&self) -> &Vec<Packet> {
        &self.0
    }
}

impl DerefMut for Frame {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<Packet> {
        &mut self.0
    }
}

impl From<Vec<Packet>> for Frame {
    fn from(v: Vec<Packet>) -> Frame {
        Frame(v)
    }
}
