//! [`MemifPort`]: what a network function links to attach to Sluice (the
//! role libmemif plays for C) — one call to connect, then bursts of
//! packets in and out, with the buffers, the handshake and reconnection
//! handled inside.
//!
//! ```no_run
//! use sluice_io::memif::MemifPort;
//!
//! // A reflector: every frame goes back with its MAC addresses swapped.
//! let mut port = MemifPort::connect("/run/sluice/memif.sock", 0).unwrap();
//! loop {
//!     port.reflect(|frame| {
//!         let d = frame.data_mut();
//!         if d.len() >= 12 {
//!             for i in 0..6 {
//!                 d.swap(i, i + 6);
//!             }
//!         }
//!         true
//!     });
//! }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, HugePages, Packet, Pool, PoolConfig};
use sluice_graph::{FRAME_SIZE, Frame, InputState};

use super::{MemifClient, MemifClientConfig, MemifClientRx, MemifClientTx, MemifSocket, connect};
use crate::{Driver, KernelError, LinkStatus};

/// Buffers of a port's own pool: a ring's worth in flight each way, and
/// room for what the function holds.
const POOL_BUFFERS: u32 = 8192;

/// A network function's memif port (queue 0 of a client connection).
pub struct MemifPort {
    client: MemifClient,
    rx: MemifClientRx,
    tx: MemifClientTx,
    buffers: BufCache,
    frame: Frame,
    status: Arc<LinkStatus>,
}

impl std::fmt::Debug for MemifPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemifPort")
            .field("connected", &self.client.is_connected())
            .finish()
    }
}

impl MemifPort {
    /// Connects to the memif server (Sluice) at `socket` — a path, or
    /// `abstract:NAME` — as interface `id`. The connection is made (and
    /// remade, should the server restart) as the port is used.
    pub fn connect(socket: &str, id: u32) -> Result<MemifPort, KernelError> {
        let mut cfg = MemifClientConfig::new("vnf", PathBuf::from(socket));
        if let Some(name) = socket.strip_prefix("abstract:") {
            cfg.socket = MemifSocket::Abstract(name.to_string());
        }
        cfg.id = id;
        cfg.queues = 1;
        let status = LinkStatus::new();
        let (client, mut queues) = connect(&cfg, &status)?;
        let (rx, tx) = queues
            .pop()
            .ok_or_else(|| KernelError::other("memif port", "no queue pair"))?;
        let pool = Pool::new(&PoolConfig {
            buffers: POOL_BUFFERS,
            huge_pages: HugePages::Try,
            lock: false,
        })
        .map_err(|e| KernelError::other("memif port buffers", e.to_string()))?;
        Ok(MemifPort {
            client,
            rx,
            tx,
            buffers: pool.cache(64),
            frame: Frame::new(),
            status,
        })
    }

    /// Whether the server has accepted the connection.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Runs the connection until it is up or `timeout` passes; whether it
    /// is up.
    pub fn wait_connected(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while !self.client.is_connected() && Instant::now() < end {
            self.client.poll(Duration::from_millis(10));
        }
        self.client.is_connected()
    }

    /// The link as the port sees it (up once connected).
    pub fn status(&self) -> &Arc<LinkStatus> {
        &self.status
    }

    /// Receives a burst, hands each packet to `f` — which may change it
    /// in place — and sends back those for which `f` says true (the rest
    /// are freed). Returns how many were sent. Also runs the connection,
    /// so a loop over `reflect` is the whole of a simple function.
    pub fn reflect(&mut self, mut f: impl FnMut(&mut Packet) -> bool) -> usize {
        self.client.poll(Duration::ZERO);
        let got = matches!(
            self.rx
                .rx_burst(&mut self.buffers, &mut self.frame, FRAME_SIZE),
            InputState::Busy(_)
        );
        if !got {
            return 0;
        }
        let mut keep = Frame::new();
        for mut p in self.frame.drain(..) {
            if f(&mut p) {
                keep.push(p);
            } else {
                self.buffers.free(p);
            }
        }
        let n = keep.len();
        let failed = self.tx.tx_burst(&mut self.buffers, &mut keep);
        n - failed.min(n)
    }

    /// Receives up to a vector of frames into `out`, as bytes.
    pub fn recv(&mut self, out: &mut Vec<Vec<u8>>) -> usize {
        self.client.poll(Duration::ZERO);
        self.rx
            .rx_burst(&mut self.buffers, &mut self.frame, FRAME_SIZE);
        let n = self.frame.len();
        for p in self.frame.drain(..) {
            let mut bytes = Vec::with_capacity(p.total_len());
            p.copy_to(&mut bytes);
            out.push(bytes);
            self.buffers.free(p);
        }
        n
    }

    /// Sends one frame; false when it could not go (not connected, no
    /// room in the ring, no buffer).
    pub fn send(&mut self, frame: &[u8]) -> bool {
        let Ok(p) = self.buffers.alloc_from(frame) else {
            return false;
        };
        let mut f = Frame::new();
        f.push(p);
        self.tx.tx_burst(&mut self.buffers, &mut f) == 0
    }
}

impl Drop for MemifPort {
    fn drop(&mut self) {
        let mut frame = std::mem::take(&mut self.frame);
        self.buffers.free_all(&mut frame);
    }
}
