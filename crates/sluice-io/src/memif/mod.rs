//! memif: packet rings in memory shared with another process (a container,
//! a VNF, DPDK, VPP), wire-compatible with VPP's memif plugin, DPDK's
//! `net_memif` and libmemif, protocol version 2.0.
//!
//! Roles and names. The **client** (VPP's "slave") connects, owns all the
//! shared memory and creates the interrupt eventfds; the **server** (VPP's
//! "master") listens and maps what the client offers. Rings are named by
//! direction in the server/client terms DPDK uses since 20.11: **C2S**
//! (client to server, VPP's S2M) and **S2C** (server to client, VPP's
//! M2S), because Sluice's API speaks of servers and clients and those
//! names say which way the packets go without a lookup table.
//!
//! Sluice is the server here: [`listen`] binds the control socket (mode
//! 0600 for a file) and returns a [`MemifServer`], which runs the control
//! channel when its owner calls [`MemifServer::poll`], and one
//! [`MemifRx`]/[`MemifTx`] pair per queue for the workers. The receive half
//! reads the client's C2S ring, the transmit half fills the buffers the
//! client posts on its S2C ring; packets are copied, so nothing of
//! Sluice's pool is ever mapped into a peer, and each connection has only
//! its own client's regions.
//!
//! Sluice can also be the client: [`connect`] returns a [`MemifClient`]
//! (polled like the server) and [`MemifClientRx`]/[`MemifClientTx`]
//! halves; then Sluice owns the region and the eventfds.
//!
//! A network function attaching to Sluice uses [`MemifPort`]: connect,
//! then receive, change and send bursts (`examples/reflector.rs`).
//!
//! Everything read from shared memory or the socket is untrusted: ring
//! indices, descriptors (region, offset, length) and every handshake
//! field are checked; a bad descriptor is a counted drop, a broken ring or
//! a bad handshake step a counted disconnect. When the client goes, the
//! server listens again and the next client gets the same queues.

mod client;
mod port;
pub mod proto;
mod queue;
mod ring;
mod server;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use client::{MemifClient, MemifClientConfig, MemifClientRx, MemifClientTx, connect};
pub use port::MemifPort;
pub use queue::{MemifRx, MemifTx, RxMode};
pub use server::{MemifServer, Refusal, listen};

/// Where the control socket lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemifSocket {
    /// A socket file (VPP's default is `/run/vpp/memif.sock`).
    Path(PathBuf),
    /// A name in Linux's abstract namespace (DPDK's default): no file,
    /// no file mode; reachable from the network namespace only.
    Abstract(String),
}

/// How to serve a memif interface.
#[derive(Debug, Clone)]
pub struct MemifConfig {
    /// Sluice's interface name, sent to the client in `CONNECTED`.
    pub name: String,
    /// The control socket.
    pub socket: MemifSocket,
    /// The interface id the client must ask for in `INIT`.
    pub id: u32,
    /// A secret the client must present (at most 24 bytes), if any.
    pub secret: Option<String>,
    /// Queue pairs offered (1..=256); the client may bring fewer.
    pub queues: u16,
    /// Polling, or adaptive with interrupts.
    pub rx_mode: RxMode,
    /// Permissions of a socket file.
    pub socket_mode: u32,
    /// A client that has not connected this long after it was accepted
    /// is dropped, so that a stuck one cannot hold the interface.
    pub handshake_timeout: Duration,
    /// Largest region accepted from a client.
    pub max_region_size: u64,
    /// Map regions that are not sealed against shrinking (hugetlbfs
    /// files, which cannot be sealed: VPP's zero-copy client). A client
    /// that shrinks such a file under the mapping makes Sluice fault with
    /// `SIGBUS`, so enable only for trusted peers.
    pub trust_unsealed_regions: bool,
    /// Largest packet received (longer chains are dropped).
    pub max_frame: usize,
}

impl MemifConfig {
    /// Interface `name` on socket file `path`, id 0, no secret, one queue
    /// pair, polling.
    pub fn new(name: &str, path: impl Into<PathBuf>) -> MemifConfig {
        MemifConfig {
            name: name.to_string(),
            socket: MemifSocket::Path(path.into()),
            id: 0,
            secret: None,
            queues: 1,
            rx_mode: RxMode::Polling,
            socket_mode: 0o600,
            handshake_timeout: Duration::from_secs(5),
            max_region_size: 1 << 32,
            trust_unsealed_regions: false,
            max_frame: 9216 + 18,
        }
    }
}

/// An interface's counters, shared by its server and its queues.
#[derive(Debug, Default)]
pub struct MemifStats {
    /// Clients that completed the handshake.
    pub connects: AtomicU64,
    /// Connections that ended after they were up.
    pub disconnects: AtomicU64,
    /// Clients refused or dropped during the handshake.
    pub refused: AtomicU64,
    /// Received descriptors naming memory outside the client's regions,
    /// or broken chains: dropped.
    pub rx_bad_descriptors: AtomicU64,
    /// Received packets dropped for want of a Sluice buffer.
    pub rx_no_buffer: AtomicU64,
    /// Posted buffers naming memory outside the client's regions: skipped.
    pub tx_bad_descriptors: AtomicU64,
    /// Packets not sent for want of posted buffers.
    pub tx_ring_full: AtomicU64,
    /// Rings whose indices were garbage (the connection was ended).
    pub bad_rings: AtomicU64,
    /// Why the last connection ended or was refused.
    pub last_reason: Mutex<String>,
}

impl MemifStats {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// A copy of the counters, for display and tests.
    pub fn snapshot(&self) -> MemifCounts {
        MemifCounts {
            connects: Self::get(&self.connects),
            disconnects: Self::get(&self.disconnects),
            refused: Self::get(&self.refused),
            rx_bad_descriptors: Self::get(&self.rx_bad_descriptors),
            rx_no_buffer: Self::get(&self.rx_no_buffer),
            tx_bad_descriptors: Self::get(&self.tx_bad_descriptors),
            tx_ring_full: Self::get(&self.tx_ring_full),
            bad_rings: Self::get(&self.bad_rings),
        }
    }

    /// Why the last connection ended or was refused.
    pub fn last_reason(&self) -> String {
        self.last_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A snapshot of [`MemifStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemifCounts {
    /// See [`MemifStats::connects`].
    pub connects: u64,
    /// See [`MemifStats::disconnects`].
    pub disconnects: u64,
    /// See [`MemifStats::refused`].
    pub refused: u64,
    /// See [`MemifStats::rx_bad_descriptors`].
    pub rx_bad_descriptors: u64,
    /// See [`MemifStats::rx_no_buffer`].
    pub rx_no_buffer: u64,
    /// See [`MemifStats::tx_bad_descriptors`].
    pub tx_bad_descriptors: u64,
    /// See [`MemifStats::tx_ring_full`].
    pub tx_ring_full: u64,
    /// See [`MemifStats::bad_rings`].
    pub bad_rings: u64,
}
