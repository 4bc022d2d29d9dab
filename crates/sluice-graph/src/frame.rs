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
