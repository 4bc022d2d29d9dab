//! The server side of the control channel: listen, run one client's
//! handshake, map its memory, hand its rings to the queues, and start over
//! when it goes.
//!
//! One client at a time per interface: a second one is told "already
//! connected" and closed. Every refusal sends `DISCONNECT` with the reason
//! (best effort) and closes the socket; every descriptor the client sent
//! is an [`OwnedFd`] from the moment it arrives, so a refusal at any step
//! closes them all.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::proto::{
    self, ADD_RING_FLAG_C2S, AddRing, DecodeError, Hello, Init, MAX_LOG2_RING_SIZE, MSG_SIZE,
    Message, Mode, Text,
};
use super::queue::{MemifRx, MemifTx, QueueSlot};
use super::ring::{Regions, Ring, RingError};
use super::{MemifConfig, MemifSocket, MemifStats};
use crate::sys::memif::SharedRegion;
use crate::sys::unix::{self, UnixAddr};
use crate::sys::{Context, KernelError, wait_readable};
use crate::{LinkState, LinkStatus};

/// Most regions a client may add (VPP's and DPDK's limit).
const MAX_REGIONS: usize = 256;

/// Why a client was refused or a connection ended; the text is what the
/// `DISCONNECT` message says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `INIT` with a version other than 2.0.
    #[error("unsupported version {0:#06x}")]
    Version(u16),
    /// `INIT` for an interface id this socket does not serve.
    #[error("unmatched interface id {0}")]
    Id(u32),
    /// `INIT` with a mode other than Ethernet.
    #[error("mode mismatch")]
    Mode,
    /// The interface has a secret and the client sent none.
    #[error("secret required")]
    SecretRequired,
    /// The client's secret is not the interface's.
    #[error("incorrect secret")]
    Secret,
    /// Another client holds the interface.
    #[error("interface already connected")]
    Busy,
    /// A message that has no place at this step.
    #[error("unexpected {0} message")]
    Unexpected(&'static str),
    /// A message that is not 128 bytes, or whose descriptors were cut.
    #[error("truncated or oversized message")]
    Truncated,
    /// A message of unknown type.
    #[error("{0}")]
    Decode(DecodeError),
    /// `ADD_REGION` or `ADD_RING` without its descriptor.
    #[error("message carries no file descriptor")]
    MissingFd,
    /// `ADD_REGION` or `ADD_RING` out of order.
    #[error("{what} index {got}, expected {expected}")]
    Index {
        /// `region`, `C2S ring` or `S2C ring`.
        what: &'static str,
        /// What came.
        got: u16,
        /// What was due.
        expected: u16,
    },
    /// A region that cannot be used.
    #[error("region {index}: {why}")]
    Region {
        /// Its index.
        index: u16,
        /// Why.
        why: String,
    },
    /// A ring that cannot be used.
    #[error("ring: {0}")]
    Ring(String),
    /// `CONNECT` without a ring each way.
    #[error("no rings")]
    NoRings,
    /// The client did not finish the handshake in time.
    #[error("handshake timed out")]
    Timeout,
    /// The client said goodbye.
    #[error("client disconnected: {0}")]
    Peer(String),
    /// The client closed its socket.
    #[error("client hung up")]
    Hangup,
    /// A ring's indices were garbage.
    #[error("broken ring indices")]
    BrokenRing,
    /// The control socket failed.
    #[error("control socket: {0}")]
    Io(String),
}

impl From<RingError> for Refusal {
    fn from(e: RingError) -> Refusal {
        Refusal::Ring(e.to_string())
    }
}

/// A ring announced by `ADD_RING`, mapped on `CONNECT`.
#[derive(Debug)]
struct PendingRing {
    region: u16,
    offset: u32,
    log2: u8,
    eventfd: OwnedFd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `HELLO` sent; `INIT` due.
    Hello,
    /// `INIT` accepted; regions and rings, then `CONNECT`, due.
    Adding,
    /// Up: rings handed to the queues.
    Connected,
}

/// The client of the moment. Fields drop in order: the client's
/// descriptors close before its socket, so a client that sees the socket
/// close knows Sluice holds nothing of its anymore.
#[derive(Debug)]
struct Peer {
    since: Instant,
    step: Step,
    regions: Vec<(OwnedFd, u64)>,
    c2s: Vec<PendingRing>,
    s2c: Vec<PendingRing>,
    fd: OwnedFd,
}

/// A memif interface in the server role: the listening socket and the
/// connection of the moment. Its owner (the control thread, or a test
/// loop) calls [`MemifServer::poll`] to run the control channel; the data
/// path runs in the [`MemifRx`]/[`MemifTx`] halves on the workers.
#[derive(Debug)]
pub struct MemifServer {
    config: MemifConfig,
    listener: OwnedFd,
    /// The socket file to remove on drop.
    path: Option<PathBuf>,
    peer: Option<Peer>,
    rx_slots: Vec<Arc<QueueSlot>>,
    tx_slots: Vec<Arc<QueueSlot>>,
    status: Arc<LinkStatus>,
    stats: Arc<MemifStats>,
}

/// Binds the control socket of `config` and returns the server and one
/// receive and one transmit half per queue pair. `status` is down until a
/// client connects, and follows the connection after.
pub fn listen(
    config: &MemifConfig,
    status: &Arc<LinkStatus>,
) -> Result<(MemifServer, Vec<(MemifRx, MemifTx)>), KernelError> {
    let what = || format!("memif {}: listening on {:?}", config.name, config.socket);
    proto::check_config(&what, config.queues, config.secret.as_deref())?;
    let fd = unix::seqpacket().context(what)?;
    let path = match &config.socket {
        MemifSocket::Path(p) => {
            remove_stale(p).context(what)?;
            unix::bind_unix(fd.as_fd(), UnixAddr::Path(p)).context(what)?;
            // Before listen(): until then nobody can connect, so there is
            // no moment when the socket is open to all.
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(config.socket_mode))
                .context(what)?;
            Some(p.clone())
        }
        MemifSocket::Abstract(name) => {
            unix::bind_unix(fd.as_fd(), UnixAddr::Abstract(name.as_bytes())).context(what)?;
            None
        }
    };
    unix::listen(fd.as_fd(), 4).context(what)?;
    let stats = Arc::new(MemifStats::default());
    let n = config.queues as usize;
    let rx_slots: Vec<_> = (0..n).map(|_| Arc::new(QueueSlot::default())).collect();
    let tx_slots: Vec<_> = (0..n).map(|_| Arc::new(QueueSlot::default())).collect();
    let halves = rx_slots
        .iter()
        .zip(&tx_slots)
        .map(|(r, t)| {
            (
                MemifRx::new(r.clone(), config.rx_mode, stats.clone(), config.max_frame),
                MemifTx::new(t.clone(), stats.clone()),
            )
        })
        .collect();
    status.set(LinkState::Down);
    Ok((
        MemifServer {
            config: config.clone(),
            listener: fd,
            path,
            peer: None,
            rx_slots,
            tx_slots,
            status: status.clone(),
            stats,
        },
        halves,
    ))
}

/// Removes a socket file left by a process that is gone (nothing accepts
/// on it); refuses to touch a live socket or anything that is not one.
fn remove_stale(path: &std::path::Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "exists and is not a socket",
        ));
    }
    let probe = unix::seqpacket()?;
    match unix::connect_unix(probe.as_fd(), UnixAddr::Path(path)) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => std::fs::remove_file(path),
        Err(e) => Err(e),
        Ok(()) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process serves this socket",
        )),
    }
}

impl MemifServer {
    /// The interface's counters.
    pub fn stats(&self) -> &Arc<MemifStats> {
        &self.stats
    }

    /// Whether a client is connected.
    pub fn is_connected(&self) -> bool {
        self.peer
            .as_ref()
            .is_some_and(|p| p.step == Step::Connected)
    }

    /// The descriptors to wait on for [`MemifServer::poll`] to have work:
    /// the listener and the client's socket.
    pub fn fds(&self) -> Vec<std::os::fd::RawFd> {
        let mut v = vec![self.listener.as_raw_fd()];
        if let Some(p) = &self.peer {
            v.push(p.fd.as_raw_fd());
        }
        v
    }

    /// Waits up to `timeout` for the control channel, then does all there
    /// is to do: accept, answer the client's messages, drop a client whose
    /// handshake is late or whose rings broke.
    pub fn poll(&mut self, timeout: Duration) {
        let _ = wait_readable(&self.fds(), timeout);
        self.accept();
        self.serve_peer();
        self.check_peer();
    }

    fn accept(&mut self) {
        loop {
            let fd = match unix::accept(self.listener.as_fd()) {
                Ok(Some(fd)) => fd,
                Ok(None) | Err(_) => return,
            };
            if self.peer.is_some() {
                self.count_refusal(&Refusal::Busy);
                let _ = send(&fd, &Message::disconnect(0, &Refusal::Busy.to_string()));
                continue;
            }
            let hello = Message::Hello(Hello {
                name: Text::new("sluice"),
                min_version: proto::VERSION,
                max_version: proto::VERSION,
                max_region: (MAX_REGIONS - 1) as u16,
                max_s2c_ring: self.config.queues - 1,
                max_c2s_ring: self.config.queues - 1,
                max_log2_ring_size: MAX_LOG2_RING_SIZE,
            });
            if send(&fd, &hello).is_err() {
                self.count_refusal(&Refusal::Hangup);
                continue;
            }
            self.peer = Some(Peer {
                fd,
                since: Instant::now(),
                step: Step::Hello,
                regions: Vec::new(),
                c2s: Vec::new(),
                s2c: Vec::new(),
            });
        }
    }

    fn serve_peer(&mut self) {
        let mut buf = [0u8; MSG_SIZE + 1];
        loop {
            let Some(peer) = self.peer.as_mut() else {
                return;
            };
            let got = match unix::recv_with_fds(peer.fd.as_fd(), &mut buf) {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => {
                    self.close(Refusal::Io(e.to_string()), false);
                    return;
                }
            };
            if got.len == 0 && got.fds.is_empty() {
                self.close(Refusal::Hangup, false);
                return;
            }
            let step = if got.truncated || got.len != MSG_SIZE {
                Err(Refusal::Truncated)
            } else {
                match Message::decode(&buf[..MSG_SIZE]) {
                    Ok(m) => self.step(m, got.fds),
                    Err(e) => Err(Refusal::Decode(e)),
                }
            };
            match step {
                Ok(None) => {}
                Ok(Some(reply)) => {
                    let Some(peer) = self.peer.as_ref() else {
                        return;
                    };
                    if let Err(e) = send(&peer.fd, &reply) {
                        self.close(Refusal::Io(e.to_string()), false);
                        return;
                    }
                }
                Err(Refusal::Peer(why)) => {
                    self.close(Refusal::Peer(why), false);
                    return;
                }
                Err(r) => {
                    self.close(r, true);
                    return;
                }
            }
        }
    }

    /// One message of the client's; the reply, if any.
    fn step(&mut self, msg: Message, mut fds: Vec<OwnedFd>) -> Result<Option<Message>, Refusal> {
        let Some(peer) = self.peer.as_mut() else {
            return Ok(None);
        };
        match (peer.step, msg) {
            (_, Message::Disconnect { reason, .. }) => Err(Refusal::Peer(reason.to_string_lossy())),
            (Step::Hello, Message::Init(init)) => {
                check_init(&self.config, &init)?;
                peer.step = Step::Adding;
                Ok(Some(Message::Ack))
            }
            (Step::Adding, Message::AddRegion { index, size }) => {
                let expected = peer.regions.len() as u16;
                if index != expected || peer.regions.len() >= MAX_REGIONS {
                    return Err(Refusal::Index {
                        what: "region",
                        got: index,
                        expected,
                    });
                }
                let fd = one_fd(&mut fds)?;
                check_region(&self.config, index, size, &fd)?;
                peer.regions.push((fd, size));
                Ok(Some(Message::Ack))
            }
            (Step::Adding, Message::AddRing(r)) => {
                let ring = check_ring(&self.config, peer, &r, one_fd(&mut fds)?)?;
                if r.flags & ADD_RING_FLAG_C2S != 0 {
                    peer.c2s.push(ring);
                } else {
                    peer.s2c.push(ring);
                }
                Ok(Some(Message::Ack))
            }
            (Step::Adding, Message::Connect { .. }) => {
                self.connect()?;
                Ok(Some(Message::Connected {
                    name: Text::new(&self.config.name),
                }))
            }
            (_, m) => Err(Refusal::Unexpected(type_name(&m))),
        }
    }

    /// Maps the regions, checks the rings, hands them to the queues.
    fn connect(&mut self) -> Result<(), Refusal> {
        let Some(peer) = self.peer.as_mut() else {
            return Ok(());
        };
        if peer.c2s.is_empty() || peer.s2c.is_empty() {
            return Err(Refusal::NoRings);
        }
        let mut mapped = Vec::with_capacity(peer.regions.len());
        for (i, (fd, size)) in peer.regions.iter().enumerate() {
            let len = usize::try_from(*size).map_err(|_| Refusal::Region {
                index: i as u16,
                why: "too large".into(),
            })?;
            let r = SharedRegion::peer(fd.as_fd(), len).map_err(|e| Refusal::Region {
                index: i as u16,
                why: format!("cannot map: {e}"),
            })?;
            mapped.push(r);
        }
        // The mappings hold the memory; the region descriptors can go.
        peer.regions.clear();
        let regions = Arc::new(Regions(mapped));
        let rings = |pending: Vec<PendingRing>| -> Result<Vec<Arc<Ring>>, Refusal> {
            pending
                .into_iter()
                .map(|p| {
                    Ring::new(regions.clone(), p.region, p.offset, p.log2, p.eventfd)
                        .map(Arc::new)
                        .map_err(Refusal::from)
                })
                .collect()
        };
        let c2s = rings(std::mem::take(&mut peer.c2s))?;
        let s2c = rings(std::mem::take(&mut peer.s2c))?;
        peer.step = Step::Connected;
        for (slot, ring) in self.rx_slots.iter().zip(c2s) {
            slot.publish(Some(ring));
        }
        for (slot, ring) in self.tx_slots.iter().zip(s2c) {
            slot.publish(Some(ring));
        }
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.status.set(LinkState::Up);
        Ok(())
    }

    fn check_peer(&mut self) {
        let Some(peer) = self.peer.as_ref() else {
            return;
        };
        if peer.step != Step::Connected {
            if peer.since.elapsed() > self.config.handshake_timeout {
                self.close(Refusal::Timeout, true);
            }
            return;
        }
        let faulted = self
            .rx_slots
            .iter()
            .chain(&self.tx_slots)
            .fold(false, |f, s| s.take_fault() | f);
        if faulted {
            self.close(Refusal::BrokenRing, true);
        }
    }

    /// Ends the connection of the moment: tells the client why (when it
    /// can still hear), takes the rings back from the queues, counts.
    fn close(&mut self, why: Refusal, tell: bool) {
        let Some(peer) = self.peer.take() else {
            return;
        };
        // Counted before the client hears of it, so that what it sees
        // next is already in the counters.
        if peer.step == Step::Connected {
            for s in self.rx_slots.iter().chain(&self.tx_slots) {
                s.publish(None);
            }
            self.status.set(LinkState::Down);
            self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
            self.set_reason(&why);
        } else {
            self.count_refusal(&why);
        }
        if tell {
            let _ = send(&peer.fd, &Message::disconnect(0, &why.to_string()));
        }
        // `peer` drops here: every descriptor it sent, then its socket.
    }

    fn count_refusal(&self, why: &Refusal) {
        self.stats.refused.fetch_add(1, Ordering::Relaxed);
        self.set_reason(why);
    }

    fn set_reason(&self, why: &Refusal) {
        *self
            .stats
            .last_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = why.to_string();
    }
}

impl Drop for MemifServer {
    fn drop(&mut self) {
        if let Some(peer) = &self.peer {
            let _ = send(&peer.fd, &Message::disconnect(0, "interface deleted"));
        }
        for s in self.rx_slots.iter().chain(&self.tx_slots) {
            s.publish(None);
        }
        self.status.set(LinkState::Down);
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn send(fd: &OwnedFd, msg: &Message) -> io::Result<()> {
    let n = unix::send_with_fd(fd.as_fd(), &msg.encode(), None)?;
    if n != MSG_SIZE {
        return Err(io::Error::other("short send"));
    }
    Ok(())
}

fn one_fd(fds: &mut Vec<OwnedFd>) -> Result<OwnedFd, Refusal> {
    // More than one: the extra ones close when `fds` drops.
    if fds.is_empty() {
        return Err(Refusal::MissingFd);
    }
    Ok(fds.swap_remove(0))
}

fn check_init(config: &MemifConfig, init: &Init) -> Result<(), Refusal> {
    if init.version != proto::VERSION {
        return Err(Refusal::Version(init.version));
    }
    if init.id != config.id {
        return Err(Refusal::Id(init.id));
    }
    if init.mode() != Some(Mode::Ethernet) {
        return Err(Refusal::Mode);
    }
    if let Some(secret) = &config.secret {
        let theirs = init.secret.bytes();
        if theirs.is_empty() {
            return Err(Refusal::SecretRequired);
        }
        if theirs != secret.as_bytes() {
            return Err(Refusal::Secret);
        }
    }
    Ok(())
}

/// A region's descriptor must be a file at least as large as announced,
/// and sealed against shrinking unless the configuration trusts unsealed
/// ones: a file that shrinks under the mapping makes every access past
/// its new end fault.
fn check_region(config: &MemifConfig, index: u16, size: u64, fd: &OwnedFd) -> Result<(), Refusal> {
    let bad = |why: String| Refusal::Region { index, why };
    if size == 0 || size > config.max_region_size {
        return Err(bad(format!(
            "size {size} outside 1..={}",
            config.max_region_size
        )));
    }
    let (len, regular) = unix::file_size(fd.as_fd()).map_err(|e| bad(e.to_string()))?;
    if !regular {
        return Err(bad("not a memory file".into()));
    }
    if len < size {
        return Err(bad(format!("file holds {len} bytes, {size} announced")));
    }
    let seals = unix::seals(fd.as_fd()).map_err(|e| bad(e.to_string()))?;
    if seals & libc::F_SEAL_SHRINK == 0 && !config.trust_unsealed_regions {
        return Err(bad("memory file not sealed against shrinking".into()));
    }
    Ok(())
}

fn check_ring(
    config: &MemifConfig,
    peer: &Peer,
    r: &AddRing,
    eventfd: OwnedFd,
) -> Result<PendingRing, Refusal> {
    let (what, have) = if r.flags & ADD_RING_FLAG_C2S != 0 {
        ("C2S ring", peer.c2s.len())
    } else {
        ("S2C ring", peer.s2c.len())
    };
    if r.index as usize != have || have >= config.queues as usize {
        return Err(Refusal::Index {
            what,
            got: r.index,
            expected: have as u16,
        });
    }
    if r.region as usize >= peer.regions.len() {
        return Err(Refusal::Ring(format!(
            "names region {}, which was not added",
            r.region
        )));
    }
    if r.log2_ring_size == 0 || r.log2_ring_size > MAX_LOG2_RING_SIZE {
        return Err(Refusal::Ring(format!(
            "size 2^{} outside 2^1..=2^{MAX_LOG2_RING_SIZE}",
            r.log2_ring_size
        )));
    }
    if r.private_hdr_size != 0 {
        return Err(Refusal::Ring("private headers are not supported".into()));
    }
    // Sluice writes to this descriptor on the data path: it must be an
    // eventfd, and non-blocking, or a peer could stall a worker.
    if !unix::is_eventfd(eventfd.as_fd()) {
        return Err(Refusal::Ring(
            "interrupt descriptor is not an eventfd".into(),
        ));
    }
    crate::sys::set_nonblocking(eventfd.as_fd()).map_err(|e| Refusal::Ring(e.to_string()))?;
    Ok(PendingRing {
        region: r.region,
        offset: r.offset,
        log2: r.log2_ring_size,
        eventfd,
    })
}

fn type_name(m: &Message) -> &'static str {
    match m {
        Message::Ack => "ACK",
        Message::Hello(_) => "HELLO",
        Message::Init(_) => "INIT",
        Message::AddRegion { .. } => "ADD_REGION",
        Message::AddRing(_) => "ADD_RING",
        Message::Connect { .. } => "CONNECT",
        Message::Connected { .. } => "CONNECTED",
        Message::Disconnect { .. } => "DISCONNECT",
    }
}
