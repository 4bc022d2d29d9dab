//! `pcap trace`: the packets interfaces receive and send, copied as they
//! pass, for a pcap file an operator opens in Wireshark.
//!
//! One [`PacketCapture`] serves every interface node of every worker. While
//! it is off, a node pays one relaxed load a vector. While it is on, a node
//! copies the packets of its vector that it wants under one lock a vector,
//! until the budget of packets is spent; the control thread writes the
//! file when the capture is stopped. Nothing here blocks a worker for
//! longer than a copy of its vector.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_graph::Frame;
use sluice_graph::iface::IfIndex;

use crate::pcap::{PcapError, PcapWriter};

/// Most packets one capture may hold (their copies live in memory until
/// the file is written).
pub const MAX_PACKETS: u64 = 100_000;

/// Bytes kept of each packet (the rest is cut, as a snap length does).
pub const SNAPLEN: usize = 9216 + 18;

const ANY: u32 = u32::MAX;

/// Which way a packet was going when it was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received by an interface (`<interface>-input`).
    Rx,
    /// Handed to an interface to send (`<interface>-output`).
    Tx,
}

/// One copied packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// When it passed (wall clock).
    pub at: Duration,
    /// Its bytes, up to [`SNAPLEN`].
    pub data: Vec<u8>,
    /// Its length on the wire.
    pub len: usize,
}

/// The capture shared by the interface nodes and the control thread.
#[derive(Debug, Default)]
pub struct PacketCapture {
    /// Whether anything is wanted at all: the one check when off.
    on: AtomicBool,
    rx: AtomicBool,
    tx: AtomicBool,
    /// The interface to copy, or `ANY`.
    interface: AtomicU32,
    /// Packets still to copy.
    left: AtomicU64,
    packets: Mutex<Vec<Captured>>,
}

impl PacketCapture {
    /// A capture that is off.
    pub fn new() -> PacketCapture {
        PacketCapture::default()
    }

    /// Starts copying up to `max` packets received (`rx`) and/or sent
    /// (`tx`) by `interface` (every interface when `None`), forgetting
    /// what an earlier capture held.
    pub fn start(&self, rx: bool, tx: bool, interface: Option<IfIndex>, max: u64) {
        self.on.store(false, Ordering::Relaxed);
        self.lock().clear();
        self.rx.store(rx, Ordering::Relaxed);
        self.tx.store(tx, Ordering::Relaxed);
        self.interface
            .store(interface.unwrap_or(ANY), Ordering::Relaxed);
        self.left.store(max.min(MAX_PACKETS), Ordering::Relaxed);
        self.on.store(rx || tx, Ordering::Release);
    }

    /// Stops and hands over what was copied, oldest first.
    pub fn stop(&self) -> Vec<Captured> {
        self.on.store(false, Ordering::Relaxed);
        std::mem::take(&mut *self.lock())
    }

    /// Whether it is copying, and how many packets it holds.
    pub fn status(&self) -> (bool, usize) {
        (self.on.load(Ordering::Relaxed), self.lock().len())
    }

    /// Whether a node of `interface` going `dir` should hand its vector
    /// over: one relaxed load when the capture is off.
    #[inline]
    pub fn wants(&self, dir: Direction, interface: IfIndex) -> bool {
        if !self.on.load(Ordering::Relaxed) {
            return false;
        }
        let way = match dir {
            Direction::Rx => &self.rx,
            Direction::Tx => &self.tx,
        };
        let i = self.interface.load(Ordering::Relaxed);
        way.load(Ordering::Relaxed) && (i == ANY || i == interface)
    }

    /// Copies as many packets of `frame` as the budget allows.
    pub fn take(&self, frame: &Frame) {
        let want = frame.len() as u64;
        // Claim the budget first, so that workers never copy more than
        // asked for between them.
        let mut got = 0;
        let _ = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                got = left.min(want);
                Some(left - got)
            });
        if got == 0 {
            self.on.store(false, Ordering::Relaxed);
            return;
        }
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let copies: Vec<Captured> = frame
            .iter()
            .take(got as usize)
            .map(|p| {
                let mut data = Vec::with_capacity(p.total_len().min(SNAPLEN));
                for seg in p.segments() {
                    let room = SNAPLEN - data.len();
                    data.extend_from_slice(&seg[..seg.len().min(room)]);
                }
                Captured {
                    at,
                    data,
                    len: p.total_len(),
                }
            })
            .collect();
        self.lock().extend(copies);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Captured>> {
        self.packets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `packets` to a new pcap file at `path` (replacing one there).
pub fn write(path: &Path, packets: &[Captured]) -> Result<(), PcapError> {
    let io = |source| PcapError::Io {
        path: path.into(),
        source,
    };
    let mut w = PcapWriter::create(path, SNAPLEN as u32)?;
    for p in packets {
        w.write_record(p.at, p.len, std::iter::once(p.data.as_slice()))
            .map_err(io)?;
    }
    w.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_buf::{HugePages, Pool, PoolConfig};

    fn frame(pool: &Pool, n: usize, len: usize) -> (sluice_buf::BufCache, Frame) {
        let mut cache = pool.cache(64);
        let mut f = Frame::new();
        for i in 0..n {
            let bytes = vec![i as u8; len];
            f.push(cache.alloc_from(&bytes).unwrap());
        }
        (cache, f)
    }

    #[test]
    fn copies_what_is_asked_up_to_the_budget_and_no_more() {
        let pool = Pool::new(&PoolConfig {
            buffers: 1024,
            huge_pages: HugePages::Never,
            lock: false,
        })
        .unwrap();
        let (mut cache, mut f) = frame(&pool, 8, 100);
        let c = PacketCapture::new();
        assert!(!c.wants(Direction::Rx, 0), "off until started");
        c.start(true, false, Some(3), 5);
        assert!(c.wants(Direction::Rx, 3));
        assert!(!c.wants(Direction::Rx, 4), "another interface");
        assert!(!c.wants(Direction::Tx, 3), "the other direction");
        c.take(&f);
        assert_eq!(c.status(), (true, 5));
        c.take(&f);
        assert!(!c.status().0, "off once the budget is spent");
        let got = c.stop();
        assert_eq!(got.len(), 5);
        assert_eq!(got[4].data, vec![4u8; 100]);
        assert_eq!(got[4].len, 100);
        // Any interface, both ways, and the budget capped.
        c.start(true, true, None, u64::MAX);
        assert!(c.wants(Direction::Tx, 9) && c.wants(Direction::Rx, 0));
        assert_eq!(c.left.load(Ordering::Relaxed), MAX_PACKETS);
        cache.free_all(&mut f);
    }

    #[test]
    fn the_file_reads_back_packet_for_packet() {
        let dir = std::env::temp_dir().join(format!("sluice-capture-{}", std::process::id()));
        let packets = vec![
            Captured {
                at: Duration::from_micros(1_700_000_000_000_001),
                data: vec![1; 60],
                len: 60,
            },
            Captured {
                at: Duration::from_micros(1_700_000_000_000_002),
                data: vec![2; 1514],
                len: 1514,
            },
        ];
        write(&dir, &packets).unwrap();
        let mut r = crate::pcap::PcapReader::open(&dir).unwrap();
        let a = r.next_record().unwrap().unwrap();
        let b = r.next_record().unwrap().unwrap();
        assert!(r.next_record().unwrap().is_none());
        assert_eq!((a.data.len(), b.data.len()), (60, 1514));
        assert_eq!(b.data[0], 2);
        let _ = std::fs::remove_file(&dir);
    }
}
