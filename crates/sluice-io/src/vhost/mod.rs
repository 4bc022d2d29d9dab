//! vhost-user: virtual machines (and DPDK's `net_virtio_user`) with the
//! stock virtio-net driver, their virtqueues read and written by Sluice
//! in the guest's own memory, with no host kernel and no QEMU on the path.
//!
//! Sluice is the **back end** (the device). The front end (QEMU, or DPDK
//! `virtio_user`) speaks the vhost-user protocol ([`proto`]) on a Unix
//! stream socket: it negotiates features, passes the guest's memory as
//! file descriptors ([`memory`]), and says where each split virtqueue
//! lies; Sluice then dequeues the guest's transmit rings and fills its
//! receive rings ([`virtq`]) a vector at a time. Either side may listen:
//! [`listen`] makes Sluice the server, [`connect`] makes it the client
//! that connects and reconnects (what OVS calls `dpdkvhostuserclient`),
//! and both return a [`VhostUser`], polled by the control thread like a
//! memif server, with one [`VhostRx`]/[`VhostTx`] pair per queue pair
//! for the workers.
//!
//! What is negotiated: `VIRTIO_F_VERSION_1`, `VIRTIO_NET_F_MRG_RXBUF`,
//! `VIRTIO_RING_F_INDIRECT_DESC`, `VIRTIO_RING_F_EVENT_IDX`,
//! `VIRTIO_F_ANY_LAYOUT`, `VIRTIO_NET_F_MQ` (with more than one queue
//! pair) and `VHOST_USER_F_PROTOCOL_FEATURES`; protocol features `MQ` and
//! `REPLY_ACK`. No checksum or segmentation offload is offered: Sluice
//! would have to finish them, and so far it does not on this path. Split
//! rings only (packed rings are not offered).
//!
//! **The guest is untrusted.** Every index, address, length and flag read
//! from a ring is checked ([`virtq`]); a chain that loops, overruns, points
//! outside guest memory or is otherwise malformed is given back to the
//! guest unread and counted under its own name in [`VhostStats`]; a ring
//! whose driver index is more than a ring ahead is stopped and counted.
//! A front end that sends a malformed message, a bad table or a bad
//! descriptor is disconnected, counted and its every descriptor and
//! mapping released; the next one is served.
//!
//! ## Own code, not rust-vmm: measured
//!
//! `benches/vhost_ring.rs` runs rust-vmm's `virtio-queue` 0.18 (over
//! `vm-memory` 0.18's `GuestMemoryMmap`) and this module's ring code over
//! the same memfd-backed guest memory: the guest posts 256 one-descriptor
//! chains (a 12-byte header and a 64-byte frame), the device takes them a
//! vector at a time into Sluice buffers and gives them back; then 256
//! 64-byte packets into posted 2 KiB receive buffers. Per packet, median
//! of 30 samples (2026-11-30, AMD EPYC 2.6 GHz, one pinned core, the
//! machine loaded by other builds, so read the ratio more than the
//! absolute figures):
//!
//! | | Sluice (`VhostRx`/`VhostTx`) | `virtio-queue` |
//! |---|---|---|
//! | dequeue (guest TX → Sluice) | 40.6 ns (~105 cycles) | 193 ns (~500 cycles) |
//! | enqueue (Sluice → guest RX) | 49.1 ns (~128 cycles) | 214 ns (~560 cycles) |
//!
//! About 4.5 times the cost per packet, for the same checks: its
//! `DescriptorChain` re-reads and re-translates through the generic
//! `GuestMemory` trait at every step, and its `Bytes` accessors check
//! each access on their own. The target (≤ 80 cycles a packet
//! for the whole forwarding) rules it out on the data path. Its protocol
//! half (`vhost-user-backend`) runs epoll threads per queue group, which
//! a poll-mode worker does not want; and this code needs no new crate.
//! So both halves are our own, as memif's are, over the same `sys`
//! mappings; `virtio-queue` stays as a dev-dependency, for the bench.

//! ## The data path, per burst
//!
//! Both halves work a vector in three passes: the burst's heads are read
//! from the available ring and their descriptors prefetched; each head
//! that is one descriptor of the right direction (the common case: a
//! 64-byte frame with mergeable buffers, or any frame up to a Sluice
//! buffer) is located in guest memory once (one region lookup) and its
//! buffer prefetched; then frames are copied straight between that place
//! and Sluice buffers, used entries written, and `used.idx` stored once
//! for the burst (with at most one interrupt). Any other chain
//! (indirect, several descriptors, a frame larger than a buffer, anything
//! malformed) takes the general path, which follows and checks it step
//! by step. Counters are added once per burst.
//!
//! `benches/vhost_ring.rs`, same machine, medians of 3 runs (first a
//! quiet one, load 2.5; then load 5):
//!
//! | per 64-byte packet | before | after |
//! |---|---|---|
//! | dequeue | 21.2 ns (55 cycles) | 12.2 ns (32 cycles) |
//! | enqueue, the bench's packet making subtracted | ~21 ns (~55 cycles) | ~12 ns (~31 cycles) |
//!
//! (The first slice's ~105/~128 cycles were measured at load 7.)
//!
//! Through `sluice run` (`crates/sluice/benches/vhost_forward.rs`: two
//! virtio-user ports in a testpmd io loop, 64 packets circulating) the
//! inputs see about one packet a poll, and the per-poll costs (the slot
//! lock, ring indices and descriptors the tester just wrote on the other
//! core) dominate: 314 cycles in the nodes per 64-byte packet forwarded,
//! 3.0 Mpps, against testpmd's `net_vhost` at 6.4 Mpps in the same run.
//!
//! ## Not yet
//!
//! - The issue's ≤ 80 cycles per forwarded packet in that loop: next to
//!   try are a lighter slot lock than `Mutex` (one compare-exchange in,
//!   one plain store out), reading `avail.idx` before taking the slot,
//!   and batching used-ring writes into whole lines.
//! - Packed rings, offloads, in-flight tracking (a restart takes the used
//!   index from memory when a ring starts); a `vhost` scenario in
//!   `sluice bench`.

mod backend;
mod inbox;
pub mod memory;
pub mod proto;
mod queue;
pub mod virtq;

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use crate::memif::RxMode;
pub use backend::{Refusal, VhostUser, connect, listen};
pub use queue::{VhostRx, VhostTx};

use queue::Dir;
use virtq::ChainError;

/// Which side of the socket Sluice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sluice listens; the front end connects (QEMU's default
    /// `-chardev socket,path=...`).
    Server,
    /// Sluice connects, and connects again whenever the link drops (QEMU
    /// `server=on`, DPDK `virtio_user` `server=1`).
    Client,
}

/// How to serve a vhost-user interface.
#[derive(Debug, Clone)]
pub struct VhostConfig {
    /// Sluice's interface name.
    pub name: String,
    /// The socket file.
    pub socket: PathBuf,
    /// Listen or connect.
    pub role: Role,
    /// Queue pairs offered (1..=128).
    pub queues: u16,
    /// Polling, or adaptive with kicks.
    pub rx_mode: RxMode,
    /// Permissions of the socket file Sluice listens on.
    pub socket_mode: u32,
    /// How long a client waits between attempts to connect.
    pub reconnect_interval: Duration,
    /// A message begun but not finished this long after is a stuck front
    /// end: it is disconnected.
    pub message_timeout: Duration,
    /// Most guest memory mapped, all regions together.
    pub max_memory: u64,
    /// Map only memory files sealed against shrinking (QEMU's
    /// `memory-backend-memfd` seals; DPDK's `virtio_user` does not). A
    /// front end that shrinks an unsealed file under the mapping makes
    /// Sluice fault with `SIGBUS`; the guest itself cannot.
    pub sealed_memory_only: bool,
    /// Largest frame received (longer chains are dropped, counted).
    pub max_frame: usize,
}

impl VhostConfig {
    /// Interface `name` on socket file `path`, Sluice listening, one
    /// queue pair, polling.
    pub fn new(name: &str, path: impl Into<PathBuf>) -> VhostConfig {
        VhostConfig {
            name: name.to_string(),
            socket: path.into(),
            role: Role::Server,
            queues: 1,
            rx_mode: RxMode::Polling,
            socket_mode: 0o600,
            reconnect_interval: Duration::from_secs(1),
            message_timeout: Duration::from_secs(2),
            max_memory: 1 << 40,
            sealed_memory_only: false,
            max_frame: 9216 + 18,
        }
    }
}

/// An interface's counters, shared by its control channel and its queues.
#[derive(Debug, Default)]
pub struct VhostStats {
    /// Connections whose first queue pair started.
    pub connects: AtomicU64,
    /// Connections that ended after they were up.
    pub disconnects: AtomicU64,
    /// Connections that ended before they were up (refused, or the front
    /// end went away mid-handshake).
    pub refused: AtomicU64,
    /// Messages refused (malformed, unsupported, out of place, bad
    /// descriptors): each ended its connection.
    pub bad_messages: AtomicU64,
    /// Chains of the guest's transmit rings not followed.
    pub rx_bad_chains: AtomicU64,
    /// Chains of the guest's receive rings not followed.
    pub tx_bad_chains: AtomicU64,
    /// ... of which: a head past the ring.
    pub bad_head: AtomicU64,
    /// ... a `next` past its table.
    pub bad_next: AtomicU64,
    /// ... a chain longer than its table (a loop).
    pub chain_loops: AtomicU64,
    /// ... a buffer outside guest memory.
    pub out_of_memory: AtomicU64,
    /// ... a malformed indirect table.
    pub bad_indirect: AtomicU64,
    /// ... a buffer of the wrong direction.
    pub wrong_direction: AtomicU64,
    /// ... a frame longer than `max_frame`.
    pub too_long: AtomicU64,
    /// ... a chain shorter than the header (and an Ethernet header).
    pub too_short: AtomicU64,
    /// Frames dropped for want of a Sluice buffer.
    pub rx_no_buffer: AtomicU64,
    /// Frames the guest had queued on a transmit ring that Sluice had not
    /// taken yet when the front end stopped the ring (they are the front
    /// end's again: it learns where Sluice stopped from GET_VRING_BASE).
    pub rx_left_at_stop: AtomicU64,
    /// Packets not sent for want of receive buffers in the guest.
    pub tx_ring_full: AtomicU64,
    /// Packets larger than a receive chain (no mergeable buffers).
    pub tx_too_big: AtomicU64,
    /// Rings stopped because their driver index was garbage.
    pub bad_rings: AtomicU64,
    /// Why the last connection ended or was refused.
    pub last_reason: Mutex<String>,
}

impl VhostStats {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Counts a chain not followed.
    #[cold]
    pub(crate) fn count(&self, e: ChainError, dir: Dir) {
        let kind = match e {
            ChainError::BadHead => &self.bad_head,
            ChainError::BadNext => &self.bad_next,
            ChainError::Loop => &self.chain_loops,
            ChainError::OutOfMemory => &self.out_of_memory,
            ChainError::BadIndirect => &self.bad_indirect,
            ChainError::WrongDirection => &self.wrong_direction,
            ChainError::TooLong => &self.too_long,
            ChainError::TooShort => &self.too_short,
        };
        kind.fetch_add(1, Ordering::Relaxed);
        match dir {
            Dir::Rx => &self.rx_bad_chains,
            Dir::Tx => &self.tx_bad_chains,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// A copy of the counters, for display and tests.
    pub fn snapshot(&self) -> VhostCounts {
        VhostCounts {
            connects: Self::get(&self.connects),
            disconnects: Self::get(&self.disconnects),
            refused: Self::get(&self.refused),
            bad_messages: Self::get(&self.bad_messages),
            rx_bad_chains: Self::get(&self.rx_bad_chains),
            tx_bad_chains: Self::get(&self.tx_bad_chains),
            bad_head: Self::get(&self.bad_head),
            bad_next: Self::get(&self.bad_next),
            chain_loops: Self::get(&self.chain_loops),
            out_of_memory: Self::get(&self.out_of_memory),
            bad_indirect: Self::get(&self.bad_indirect),
            wrong_direction: Self::get(&self.wrong_direction),
            too_long: Self::get(&self.too_long),
            too_short: Self::get(&self.too_short),
            rx_no_buffer: Self::get(&self.rx_no_buffer),
            tx_ring_full: Self::get(&self.tx_ring_full),
            rx_left_at_stop: Self::get(&self.rx_left_at_stop),
            tx_too_big: Self::get(&self.tx_too_big),
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

/// A snapshot of [`VhostStats`] (the fields mean what they mean there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct VhostCounts {
    pub connects: u64,
    pub disconnects: u64,
    pub refused: u64,
    pub bad_messages: u64,
    pub rx_bad_chains: u64,
    pub tx_bad_chains: u64,
    pub bad_head: u64,
    pub bad_next: u64,
    pub chain_loops: u64,
    pub out_of_memory: u64,
    pub bad_indirect: u64,
    pub wrong_direction: u64,
    pub too_long: u64,
    pub too_short: u64,
    pub rx_no_buffer: u64,
    pub tx_ring_full: u64,
    pub rx_left_at_stop: u64,
    pub tx_too_big: u64,
    pub bad_rings: u64,
}
