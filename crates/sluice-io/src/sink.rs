//! A null interface: reads the frames it is given and frees them.
//!
//! It reads the Ethernet header of every frame (so a benchmark's figures
//! include touching what was sent, as a real transmit would), keeping a
//! running digest that the optimiser cannot discard.

use sluice_buf::BufCache;
use sluice_graph::Frame;

use crate::Driver;

/// The sink driver.
#[derive(Debug, Default)]
pub struct Sink {
    digest: u64,
}

impl Sink {
    /// A new sink.
    pub fn new() -> Sink {
        Sink::default()
    }

    /// A digest of the headers seen so far.
    pub fn digest(&self) -> u64 {
        self.digest
    }
}

impl Driver for Sink {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        let mut d = self.digest;
        for p in packets.iter() {
            if let Some(h) = p.data().get(..16) {
                let a = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
                let b = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
                d = d.rotate_left(5) ^ a ^ b;
            }
        }
        self.digest = std::hint::black_box(d);
        buffers.free_all(packets);
        0
    }
}
