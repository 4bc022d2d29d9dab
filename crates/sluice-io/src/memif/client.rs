//! The client role (VPP's "slave"): Sluice connects to a server's socket,
//! owns all the shared memory and the interrupt eventfds, and offers them
//! to the server.
//!
//! One sealed memfd per connection holds the rings (C2S first, then S2C,
//! laid out as VPP and DPDK do) and one packet buffer per ring slot. Each
//! slot keeps its buffer for the connection's whole life, so Sluice never
//! trusts a buffer location written by the server: it reads and writes
//! only its own slot's buffer, and checks every length and index the
//! server writes against the ring and the buffer size.
//!
//! A fresh region is made for every connection, so nothing a previous
//! server left in the rings can reach the next one; the halves keep the
//! old mapping alive until they notice the change, as on the server side.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, DATA_SIZE};
use sluice_graph::{Frame, InputState};

use super::proto::{
    self, ADD_RING_FLAG_C2S, AddRing, DESC_FLAG_NEXT, Init, MAX_LOG2_RING_SIZE, MSG_SIZE, Message,
    RING_FLAG_MASK_INT, Text, ring as layout,
};
use super::{MemifSocket, MemifStats};
use crate::sys::memif::{MemifDesc, SharedRegion};
use crate::sys::unix::{self, UnixAddr};
use crate::sys::{KernelError, wait_readable};
use crate::{Driver, LinkState, LinkStatus, RxState};

/// How to connect to a memif server.
#[derive(Debug, Clone)]
pub struct MemifClientConfig {
    /// Sluice's interface name, sent in `INIT` and `CONNECT`.
    pub name: String,
    /// The server's control socket.
    pub socket: MemifSocket,
    /// The interface id asked for in `INIT`.
    pub id: u32,
    /// The secret presented (at most 24 bytes), if any.
    pub secret: Option<String>,
    /// Queue pairs wanted (1..=256); fewer if the server offers fewer.
    pub queues: u16,
    /// log2 of the descriptors per ring (1..=14); smaller if the server
    /// accepts only smaller rings.
    pub log2_ring_size: u8,
    /// Bytes of each packet buffer in the region.
    pub buffer_size: u32,
    /// A server that has not answered `CONNECT` this long after the
    /// socket connected is left, so that a stuck one cannot hold us.
    pub handshake_timeout: Duration,
    /// How long to wait between connection attempts.
    pub reconnect_interval: Duration,
    /// Largest packet received (longer chains are dropped).
    pub max_frame: usize,
}

impl MemifClientConfig {
    /// Interface `name` connecting to socket file `path`, id 0, no
    /// secret, one queue pair, rings of 1024 buffers of 2048 bytes (the
    /// defaults of VPP and DPDK), a new attempt every second.
    pub fn new(name: &str, path: impl Into<PathBuf>) -> MemifClientConfig {
        MemifClientConfig {
            name: name.to_string(),
            socket: MemifSocket::Path(path.into()),
            id: 0,
            secret: None,
            queues: 1,
            log2_ring_size: 10,
            buffer_size: 2048,
            handshake_timeout: Duration::from_secs(5),
            reconnect_interval: Duration::from_secs(1),
            max_frame: 9216 + 18,
        }
    }
}

/// One ring in Sluice's own region, with its slots' fixed buffers.
#[derive(Debug)]
struct ClientRing {
    mem: Arc<SharedRegion>,
    /// Offset of the ring header.
    base: usize,
    /// Descriptors: a power of two.
    size: u16,
    /// Offset of slot 0's buffer; slot `s` has the `s`-th after it.
    buffers: usize,
    buffer_size: u32,
    eventfd: OwnedFd,
    /// On a receive ring: `head` as the control thread posted all
    /// buffers on connect, where the receive half starts.
    posted: std::sync::atomic::AtomicU16,
}

impl ClientRing {
    fn word(&self, off: usize) -> Option<&std::sync::atomic::AtomicU16> {
        self.mem.u16_at(self.base + off)
    }

    /// Our `head`, as we last published it.
    fn head(&self) -> u16 {
        self.word(layout::HEAD)
            .map_or(0, |h| h.load(Ordering::Relaxed))
    }

    /// Publishes `head` with release: the descriptors before it (and
    /// their buffers) are the server's.
    fn set_head(&self, v: u16) {
        if let Some(h) = self.word(layout::HEAD) {
            h.store(v, Ordering::Release);
        }
    }

    /// The server's `tail`, read with acquire.
    fn tail(&self) -> u16 {
        self.word(layout::TAIL)
            .map_or(0, |t| t.load(Ordering::Acquire))
    }

    /// The ring's flags after a full fence, which orders a `head` just
    /// published before this read (see the server's `flags_after_publish`).
    fn flags_after_publish(&self) -> u16 {
        std::sync::atomic::fence(Ordering::SeqCst);
        self.word(layout::FLAGS)
            .map_or(0, |f| f.load(Ordering::Relaxed))
    }

    fn mask_interrupts(&self) {
        if let Some(f) = self.word(layout::FLAGS) {
            f.fetch_or(RING_FLAG_MASK_INT, Ordering::Relaxed);
        }
    }

    fn desc_offset(&self, slot: u16) -> usize {
        self.base + layout::DESC + (slot & (self.size - 1)) as usize * layout::DESC_SIZE
    }

    fn desc(&self, slot: u16) -> MemifDesc {
        self.mem.read(self.desc_offset(slot)).unwrap_or_default()
    }

    fn set_desc(&self, slot: u16, d: MemifDesc) {
        self.mem.write(self.desc_offset(slot), d);
    }

    /// The offset of `slot`'s own buffer.
    fn buffer(&self, slot: u16) -> usize {
        self.buffers + (slot & (self.size - 1)) as usize * self.buffer_size as usize
    }

    /// A descriptor naming `slot`'s buffer with `length` bytes.
    fn own_desc(&self, slot: u16, flags: u16, length: u32) -> MemifDesc {
        MemifDesc {
            flags,
            region: 0,
            length,
            offset: self.buffer(slot) as u32,
            metadata: 0,
        }
    }
}

/// Where the client puts a queue's ring when connected (as the server's
/// `QueueSlot` does for its rings).
#[derive(Debug, Default)]
struct ClientSlot {
    generation: AtomicU64,
    ring: Mutex<Option<Arc<ClientRing>>>,
    fault: AtomicBool,
}

impl ClientSlot {
    fn publish(&self, ring: Option<Arc<ClientRing>>) {
        *self.ring.lock().unwrap_or_else(|e| e.into_inner()) = ring;
        self.fault.store(false, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn take_fault(&self) -> bool {
        self.fault.swap(false, Ordering::Relaxed)
    }

    fn current(&self, seen: &mut u64) -> Option<Option<Arc<ClientRing>>> {
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return None;
        }
        *seen = g;
        Some(self.ring.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The receive half of one client queue pair: the server-to-client ring,
/// on which Sluice posts its empty buffers for the server to fill.
#[derive(Debug)]
pub struct MemifClientRx {
    slot: Arc<ClientSlot>,
    seen: u64,
    active: Option<RxRing>,
    stats: Arc<MemifStats>,
    drops: u64,
    max_frame: usize,
    scratch: Vec<u8>,
}

/// A receive ring in use. Both indices are kept here rather than read
/// back from shared memory, where the server could change them.
#[derive(Debug)]
struct RxRing {
    ring: Arc<ClientRing>,
    /// The next slot to read.
    cursor: u16,
    /// Our `head`: buffers before it are posted.
    head: u16,
}

impl MemifClientRx {
    /// Whether a server's connection is attached (as of the last burst).
    pub fn is_connected(&self) -> bool {
        self.active.is_some()
    }

    fn refresh(&mut self) {
        if let Some(ring) = self.slot.current(&mut self.seen) {
            self.active = ring.map(|ring| {
                let head = ring.posted.load(Ordering::Relaxed);
                RxRing {
                    cursor: head.wrapping_sub(ring.size),
                    head,
                    ring,
                }
            });
        }
    }

    fn fault(&self) -> usize {
        self.slot.fault.store(true, Ordering::Relaxed);
        self.stats.bad_rings.fetch_add(1, Ordering::Relaxed);
        0
    }

    fn receive(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> usize {
        let Some(a) = self.active.as_ref() else {
            return 0;
        };
        let (ring, cursor, head) = (a.ring.clone(), a.cursor, a.head);
        let tail = ring.tail();
        // The server may fill only what we posted: `cursor..head`.
        if tail.wrapping_sub(cursor) > head.wrapping_sub(cursor) {
            return self.fault();
        }
        let bs = ring.buffer_size;
        let mut slot = cursor;
        let (mut got, mut bad, mut no_buffer) = (0usize, 0u64, 0u64);
        while slot != tail && got < max {
            let d = ring.desc(slot);
            let at = ring.buffer(slot);
            slot = slot.wrapping_add(1);
            if d.flags & DESC_FLAG_NEXT == 0 && d.length <= bs && d.length as usize <= DATA_SIZE {
                // One buffer, and it fits one of Sluice's.
                let Some(mut p) = buffers.alloc() else {
                    no_buffer += 1;
                    continue;
                };
                let len = d.length as usize;
                if len > 0
                    && ring.mem.copy_out(at, &mut p.room_mut()[..len])
                    && p.set_len(len).is_ok()
                {
                    out.push(p);
                    got += 1;
                } else {
                    buffers.free(p);
                    bad += 1;
                }
                continue;
            }
            // A chain: gather it from our slots' buffers.
            self.scratch.clear();
            let (mut d, mut at) = (d, at);
            let mut ok = true;
            loop {
                let len = d.length as usize;
                if d.length <= bs && self.scratch.len() + len <= self.max_frame {
                    let from = self.scratch.len();
                    self.scratch.resize(from + len, 0);
                    ok &= ring.mem.copy_out(at, &mut self.scratch[from..]);
                } else {
                    ok = false;
                }
                if d.flags & DESC_FLAG_NEXT == 0 {
                    break;
                }
                if slot == tail {
                    // The chain does not end among the filled slots.
                    ok = false;
                    break;
                }
                d = ring.desc(slot);
                at = ring.buffer(slot);
                slot = slot.wrapping_add(1);
            }
            if !ok || self.scratch.is_empty() {
                bad += 1;
                continue;
            }
            match buffers.alloc_from(&self.scratch) {
                Ok(p) => {
                    out.push(p);
                    got += 1;
                }
                Err(_) => no_buffer += 1,
            }
        }
        if slot != cursor {
            // Post the consumed slots' buffers again, whole, whatever the
            // server wrote into their descriptors.
            let target = slot.wrapping_add(ring.size);
            let mut h = head;
            while h != target {
                ring.set_desc(h, ring.own_desc(h, 0, bs));
                h = h.wrapping_add(1);
            }
            ring.set_head(target);
            if let Some(a) = self.active.as_mut() {
                a.cursor = slot;
                a.head = target;
            }
        }
        if bad + no_buffer > 0 {
            self.drops += bad + no_buffer;
            self.stats
                .rx_bad_descriptors
                .fetch_add(bad, Ordering::Relaxed);
            self.stats
                .rx_no_buffer
                .fetch_add(no_buffer, Ordering::Relaxed);
        }
        got
    }
}

impl Driver for MemifClientRx {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        self.refresh();
        match self.receive(buffers, out, max) {
            0 => InputState::Idle,
            n => InputState::Busy(n),
        }
    }

    fn take_rx_drops(&mut self) -> u64 {
        std::mem::take(&mut self.drops)
    }
}

/// The transmit half of one client queue pair: the client-to-server ring,
/// into whose buffers (Sluice's own) packets are copied.
#[derive(Debug)]
pub struct MemifClientTx {
    slot: Arc<ClientSlot>,
    seen: u64,
    /// The ring and our `head` (kept here, not read back from shared
    /// memory, where the server could change it).
    active: Option<(Arc<ClientRing>, u16)>,
    stats: Arc<MemifStats>,
}

impl MemifClientTx {
    /// Whether a server's connection is attached (as of the last burst).
    pub fn is_connected(&self) -> bool {
        self.active.is_some()
    }
}

impl Driver for MemifClientTx {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        if let Some(r) = self.slot.current(&mut self.seen) {
            // Read once, after the server connected (and perhaps zeroed it).
            self.active = r.map(|r| {
                let head = r.head();
                (r, head)
            });
        }
        let Some((ring, head)) = self.active.as_ref() else {
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        };
        let (ring, head) = (ring.clone(), *head);
        let in_flight = head.wrapping_sub(ring.tail());
        if in_flight > ring.size {
            // The server consumed more than we published.
            self.slot.fault.store(true, Ordering::Relaxed);
            self.stats.bad_rings.fetch_add(1, Ordering::Relaxed);
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        }
        let mut free = (ring.size - in_flight) as usize;
        let bs = ring.buffer_size as usize;
        let mut slot = head;
        let mut unsent = 0;
        for p in packets.drain(..) {
            let need = p.len().div_ceil(bs).max(1);
            if need > free {
                unsent += 1;
                buffers.free(p);
                continue;
            }
            free -= need;
            let mut used = 0usize;
            for seg in p.segments() {
                let mut src = seg;
                while !src.is_empty() {
                    if used == bs {
                        // This buffer is full: chain to the next slot's.
                        ring.set_desc(slot, ring.own_desc(slot, DESC_FLAG_NEXT, used as u32));
                        slot = slot.wrapping_add(1);
                        used = 0;
                    }
                    let n = src.len().min(bs - used);
                    ring.mem.copy_in(ring.buffer(slot) + used, &src[..n]);
                    used += n;
                    src = &src[n..];
                }
            }
            ring.set_desc(slot, ring.own_desc(slot, 0, used as u32));
            slot = slot.wrapping_add(1);
            buffers.free(p);
        }
        if slot != head {
            ring.set_head(slot);
            if let Some(a) = self.active.as_mut() {
                a.1 = slot;
            }
            if ring.flags_after_publish() & RING_FLAG_MASK_INT == 0 {
                let _ = unix::eventfd_kick(ring.eventfd.as_fd());
            }
        }
        if unsent > 0 {
            self.stats
                .tx_ring_full
                .fetch_add(unsent as u64, Ordering::Relaxed);
        }
        unsent
    }
}

/// What goes with a handshake message.
#[derive(Debug, Clone, Copy)]
enum Attach {
    None,
    Region,
    Ring(usize),
}

/// One connection's memory, rings and the state of its handshake.
#[derive(Debug)]
struct Conn {
    since: Instant,
    connected: bool,
    /// Messages still to send, each after the server's `ACK` to the last.
    script: VecDeque<(Message, Attach)>,
    /// Whether `CONNECT` went out (`CONNECTED` is due).
    sent_connect: bool,
    /// The region's memfd, until the server has it.
    memfd: Option<OwnedFd>,
    /// C2S rings, then S2C rings.
    rings: Vec<Arc<ClientRing>>,
    queues: usize,
    /// The socket drops last, so that a server that sees it close knows
    /// Sluice holds nothing of this connection's anymore.
    fd: OwnedFd,
}

/// A memif interface in the client role: the connection of the moment,
/// and the attempts to make one. Its owner calls [`MemifClient::poll`] to
/// run the control channel; the data path runs in the
/// [`MemifClientRx`]/[`MemifClientTx`] halves.
#[derive(Debug)]
pub struct MemifClient {
    config: MemifClientConfig,
    conn: Option<Conn>,
    next_attempt: Instant,
    rx_slots: Vec<Arc<ClientSlot>>,
    tx_slots: Vec<Arc<ClientSlot>>,
    status: Arc<LinkStatus>,
    stats: Arc<MemifStats>,
}

/// Sets up the client of `config` and makes its first attempt to connect
/// (a server that is not there yet is not an error: [`MemifClient::poll`]
/// tries again every `reconnect_interval`). Returns the client and one
/// receive and one transmit half per queue pair wanted; `status` is down
/// until a server accepts, and follows the connection after.
pub fn connect(
    config: &MemifClientConfig,
    status: &Arc<LinkStatus>,
) -> Result<(MemifClient, Vec<(MemifClientRx, MemifClientTx)>), KernelError> {
    let what = || format!("memif {}: client of {:?}", config.name, config.socket);
    proto::check_config(&what, config.queues, config.secret.as_deref())?;
    if config.log2_ring_size == 0 || config.log2_ring_size > MAX_LOG2_RING_SIZE {
        return Err(KernelError::other(what(), "log2_ring_size must be 1..=14"));
    }
    if config.buffer_size == 0 || !config.buffer_size.is_multiple_of(64) {
        return Err(KernelError::other(
            what(),
            "buffer_size must be a non-zero multiple of 64",
        ));
    }
    let n = config.queues as usize;
    if region_layout(n, config.log2_ring_size, config.buffer_size).is_none() {
        return Err(KernelError::other(what(), "region would exceed 4 GiB"));
    }
    let stats = Arc::new(MemifStats::default());
    let rx_slots: Vec<_> = (0..n).map(|_| Arc::new(ClientSlot::default())).collect();
    let tx_slots: Vec<_> = (0..n).map(|_| Arc::new(ClientSlot::default())).collect();
    let halves = rx_slots
        .iter()
        .zip(&tx_slots)
        .map(|(r, t)| {
            (
                MemifClientRx {
                    slot: r.clone(),
                    seen: 0,
                    active: None,
                    stats: stats.clone(),
                    drops: 0,
                    max_frame: config.max_frame,
                    scratch: Vec::new(),
                },
                MemifClientTx {
                    slot: t.clone(),
                    seen: 0,
                    active: None,
                    stats: stats.clone(),
                },
            )
        })
        .collect();
    status.set(LinkState::Down);
    let mut client = MemifClient {
        config: config.clone(),
        conn: None,
        next_attempt: Instant::now(),
        rx_slots,
        tx_slots,
        status: status.clone(),
        stats,
    };
    client.attempt();
    Ok((client, halves))
}

/// Ring bytes and region bytes for `queues` pairs, if offsets fit the
/// descriptors' 32 bits.
fn region_layout(queues: usize, log2: u8, buffer_size: u32) -> Option<(usize, usize)> {
    let rings = 2 * queues;
    let ring_bytes = layout::bytes(log2);
    let buffers = rings.checked_mul(ring_bytes)?;
    let size = buffers.checked_add(
        rings
            .checked_mul(1 << log2)?
            .checked_mul(buffer_size as usize)?,
    )?;
    (size <= u32::MAX as usize).then_some((ring_bytes, size))
}

impl MemifClient {
    /// The interface's counters.
    pub fn stats(&self) -> &Arc<MemifStats> {
        &self.stats
    }

    /// Whether a server is connected.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.connected)
    }

    /// Queue pairs in use on the connection of the moment (the server may
    /// offer fewer than configured; the halves past them stay idle).
    pub fn active_queues(&self) -> usize {
        self.conn
            .as_ref()
            .filter(|c| c.connected)
            .map_or(0, |c| c.queues)
    }

    /// The descriptor to wait on for [`MemifClient::poll`] to have work,
    /// while a socket is open.
    pub fn fds(&self) -> Vec<RawFd> {
        self.conn.iter().map(|c| c.fd.as_raw_fd()).collect()
    }

    /// Waits up to `timeout` for the control channel, then does all there
    /// is to do: connect when an attempt is due, run the handshake, notice
    /// the server's goodbye, drop a late handshake or a broken ring.
    pub fn poll(&mut self, timeout: Duration) {
        if self.conn.is_some() {
            let _ = wait_readable(&self.fds(), timeout);
        } else {
            let left = self.next_attempt.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(timeout));
            self.attempt();
        }
        self.serve();
        self.check();
    }

    fn attempt(&mut self) {
        if self.conn.is_some() || Instant::now() < self.next_attempt {
            return;
        }
        self.next_attempt = Instant::now() + self.config.reconnect_interval;
        let fd = match self.dial() {
            Ok(fd) => fd,
            Err(e) => {
                // The server is not there (yet): try again later.
                self.set_reason(&format!("cannot connect: {e}"));
                return;
            }
        };
        self.conn = Some(Conn {
            since: Instant::now(),
            connected: false,
            script: VecDeque::new(),
            sent_connect: false,
            memfd: None,
            rings: Vec::new(),
            queues: 0,
            fd,
        });
    }

    fn dial(&self) -> io::Result<OwnedFd> {
        let fd = unix::seqpacket()?;
        let addr = match &self.config.socket {
            MemifSocket::Path(p) => UnixAddr::Path(p),
            MemifSocket::Abstract(n) => UnixAddr::Abstract(n.as_bytes()),
        };
        unix::connect_unix(fd.as_fd(), addr)?;
        Ok(fd)
    }

    fn serve(&mut self) {
        let mut buf = [0u8; MSG_SIZE + 1];
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let got = match unix::recv_with_fds(conn.fd.as_fd(), &mut buf) {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => return self.close(&format!("control socket: {e}"), false),
            };
            // Descriptors from the server have no use here; they close
            // when `got` drops.
            if got.len == 0 {
                return self.close("server hung up", false);
            }
            if got.truncated || got.len != MSG_SIZE {
                return self.close("truncated or oversized message", true);
            }
            let msg = match Message::decode(&buf[..MSG_SIZE]) {
                Ok(m) => m,
                Err(e) => return self.close(&e.to_string(), true),
            };
            if let Err((why, tell)) = self.step(msg) {
                return self.close(&why, tell);
            }
        }
    }

    /// One message of the server's; an error is why to hang up, and
    /// whether to tell the server.
    fn step(&mut self, msg: Message) -> Result<(), (String, bool)> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        match msg {
            Message::Disconnect { reason, .. } => Err((
                format!("server disconnected: {}", reason.to_string_lossy()),
                false,
            )),
            Message::Hello(h) if conn.rings.is_empty() && !conn.connected => {
                if h.min_version > proto::VERSION || h.max_version < proto::VERSION {
                    return Err((
                        format!(
                            "unsupported version: server speaks {:#06x}..={:#06x}, Sluice {:#06x}",
                            h.min_version,
                            h.max_version,
                            proto::VERSION
                        ),
                        true,
                    ));
                }
                self.build(&h).map_err(|e| (e, true))?;
                self.send_next()
            }
            Message::Ack if !conn.sent_connect && !conn.rings.is_empty() => self.send_next(),
            Message::Connected { .. } if conn.sent_connect && !conn.connected => {
                conn.connected = true;
                conn.memfd = None;
                let q = conn.queues;
                for ring in &conn.rings[q..] {
                    // Posted only now that the server has connected:
                    // DPDK's server zeroes `head` and `tail` while it
                    // connects, so buffers posted earlier would be lost
                    // (or their stale descriptors read as packets).
                    let from = ring.tail();
                    for s in 0..ring.size {
                        let slot = from.wrapping_add(s);
                        ring.set_desc(slot, ring.own_desc(slot, 0, ring.buffer_size));
                    }
                    let head = from.wrapping_add(ring.size);
                    ring.posted.store(head, Ordering::Relaxed);
                    ring.set_head(head);
                }
                for (slot, ring) in self.tx_slots.iter().zip(&conn.rings[..q]) {
                    slot.publish(Some(ring.clone()));
                }
                for (slot, ring) in self.rx_slots.iter().zip(&conn.rings[q..]) {
                    slot.publish(Some(ring.clone()));
                }
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
                self.status.set(LinkState::Up);
                Ok(())
            }
            m => Err((format!("unexpected message type {}", m.type_id()), true)),
        }
    }

    /// Clamps to the server's limits, creates the region, the rings and
    /// their eventfds, and writes the handshake's script.
    fn build(&mut self, h: &proto::Hello) -> Result<(), String> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let c = &self.config;
        // HELLO's maxima are indices, not counts.
        let queues = (c.queues as usize)
            .min(h.max_c2s_ring as usize + 1)
            .min(h.max_s2c_ring as usize + 1);
        let log2 = c.log2_ring_size.min(h.max_log2_ring_size);
        if log2 == 0 {
            return Err("server accepts no ring size".into());
        }
        let (ring_bytes, size) =
            region_layout(queues, log2, c.buffer_size).ok_or("region too large")?;
        let memfd = unix::sealed_memfd(&format!("sluice-memif-{}", c.name), size as u64)
            .map_err(|e| format!("memfd: {e}"))?;
        let mem =
            Arc::new(SharedRegion::peer(memfd.as_fd(), size).map_err(|e| format!("mmap: {e}"))?);
        let ring_size = 1u16 << log2;
        let mut rings = Vec::with_capacity(2 * queues);
        for i in 0..2 * queues {
            let base = i * ring_bytes;
            let ring = ClientRing {
                mem: mem.clone(),
                base,
                size: ring_size,
                buffers: 2 * queues * ring_bytes + i * ring_size as usize * c.buffer_size as usize,
                buffer_size: c.buffer_size,
                eventfd: unix::eventfd().map_err(|e| format!("eventfd: {e}"))?,
                posted: Default::default(),
            };
            mem.u32_at(base + layout::COOKIE)
                .ok_or("ring outside region")?
                .store(proto::COOKIE, Ordering::Release);
            if i < queues {
                // C2S: descriptors are written as packets go out.
                for s in 0..ring_size {
                    ring.set_desc(s, ring.own_desc(s, 0, 0));
                }
            } else {
                // S2C: buffers are posted when the receive half attaches.
                // Sluice polls, so it asks for no kicks.
                ring.mask_interrupts();
            }
            rings.push(Arc::new(ring));
        }
        let mut script = VecDeque::new();
        script.push_back((
            Message::Init(Init {
                version: proto::VERSION,
                id: c.id,
                mode: proto::Mode::Ethernet as u8,
                secret: Text::new(c.secret.as_deref().unwrap_or("")),
                name: Text::new(&c.name),
            }),
            Attach::None,
        ));
        script.push_back((
            Message::AddRegion {
                index: 0,
                size: size as u64,
            },
            Attach::Region,
        ));
        for (i, r) in rings.iter().enumerate() {
            let c2s = i < queues;
            script.push_back((
                Message::AddRing(AddRing {
                    flags: if c2s { ADD_RING_FLAG_C2S } else { 0 },
                    index: (if c2s { i } else { i - queues }) as u16,
                    region: 0,
                    offset: r.base as u32,
                    log2_ring_size: log2,
                    private_hdr_size: 0,
                }),
                Attach::Ring(i),
            ));
        }
        script.push_back((
            Message::Connect {
                name: Text::new(&c.name),
            },
            Attach::None,
        ));
        conn.memfd = Some(memfd);
        conn.rings = rings;
        conn.queues = queues;
        conn.script = script;
        Ok(())
    }

    /// Sends the script's next message (lock-step: one per `ACK`).
    fn send_next(&mut self) -> Result<(), (String, bool)> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let Some((msg, attach)) = conn.script.pop_front() else {
            return Err(("ACK after CONNECT".into(), true));
        };
        let fd = match attach {
            Attach::None => None,
            Attach::Region => conn.memfd.as_ref().map(|f| f.as_fd()),
            Attach::Ring(i) => conn.rings.get(i).map(|r| r.eventfd.as_fd()),
        };
        match unix::send_with_fd(conn.fd.as_fd(), &msg.encode(), fd) {
            Ok(MSG_SIZE) => {}
            Ok(_) => return Err(("short send".into(), false)),
            Err(e) => return Err((format!("control socket: {e}"), false)),
        }
        if matches!(msg, Message::Connect { .. }) {
            conn.sent_connect = true;
        }
        Ok(())
    }

    fn check(&mut self) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        if !conn.connected {
            if conn.since.elapsed() > self.config.handshake_timeout {
                self.close("handshake timed out", true);
            }
            return;
        }
        let faulted = self
            .rx_slots
            .iter()
            .chain(&self.tx_slots)
            .fold(false, |f, s| s.take_fault() | f);
        if faulted {
            self.close("broken ring indices", true);
        }
    }

    /// Ends the connection of the moment and schedules the next attempt.
    fn close(&mut self, why: &str, tell: bool) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if conn.connected {
            for s in self.rx_slots.iter().chain(&self.tx_slots) {
                s.publish(None);
            }
            self.status.set(LinkState::Down);
            self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        self.set_reason(why);
        if tell {
            let _ =
                unix::send_with_fd(conn.fd.as_fd(), &Message::disconnect(0, why).encode(), None);
        }
        self.next_attempt = Instant::now() + self.config.reconnect_interval;
        // `conn` drops here: the memfd, the rings' eventfds (the halves
        // may still hold the mapping until their next burst), the socket.
    }

    fn set_reason(&self, why: &str) {
        *self
            .stats
            .last_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = why.to_string();
    }
}

impl Drop for MemifClient {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            let _ = unix::send_with_fd(
                conn.fd.as_fd(),
                &Message::disconnect(0, "interface deleted").encode(),
                None,
            );
        }
        for s in self.rx_slots.iter().chain(&self.tx_slots) {
            s.publish(None);
        }
        self.status.set(LinkState::Down);
    }
}
