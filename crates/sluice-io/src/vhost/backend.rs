//! The control channel: listen (or connect), read the front end's
//! messages, keep what they set up, start and stop the rings, and start
//! over when the front end goes.
//!
//! Messages are read by [`super::inbox`]. Every descriptor is an
//! [`OwnedFd`] from the moment it arrives: a refusal at any step closes
//! them all.
//!
//! A ring runs (sits in its slot for the half to use) when it has a size,
//! addresses, the guest's memory and a kick (a descriptor, or "poll"), and
//! — once protocol features are negotiated — when it is enabled. Anything
//! that changes one of those stops it and, if it still qualifies, starts
//! it again from where it stopped.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::inbox::Inbox;
use super::memory::{GuestMemory, MemoryError};
use super::proto::{self, DecodeError, Request, VringAddr, VringState, features, protocol};
use super::queue::{VhostRx, VhostTx, Vring, VringSlot};
use super::virtq::{MAX_QUEUE_SIZE, RingError, SplitRing};
use super::{Role, VhostConfig, VhostStats};
use crate::sys::unix::{self, UnixAddr};
use crate::sys::{Context, KernelError, wait_readable};
use crate::{LinkState, LinkStatus};

/// Device features offered (`VIRTIO_NET_F_MQ` is added with more than
/// one queue pair).
const FEATURES: u64 = features::VERSION_1
    | features::NET_MRG_RXBUF
    | features::RING_INDIRECT_DESC
    | features::RING_EVENT_IDX
    | features::ANY_LAYOUT
    | features::PROTOCOL_FEATURES;

/// Most messages served in one [`VhostUser::poll`].
const MESSAGES_PER_POLL: usize = 256;

/// Protocol features offered.
const PROTOCOL: u64 = protocol::MQ | protocol::REPLY_ACK;

/// Why a front end was disconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A header whose version is not 1, or that says it is a reply.
    #[error("bad header flags {0:#x}")]
    Flags(u32),
    /// A payload larger than any request has.
    #[error("payload of {0} bytes")]
    TooLarge(u32),
    /// A payload that does not fit its request.
    #[error("{0}")]
    Decode(DecodeError),
    /// A request this back end does not serve.
    #[error("unsupported request {0}")]
    Unsupported(u32),
    /// Features that were not offered.
    #[error("features {0:#x} were not offered")]
    Features(u64),
    /// A ring index past the queue pairs offered.
    #[error("no ring {0}")]
    RingIndex(u32),
    /// A ring size that is not a power of two up to 32768.
    #[error("ring {index}: bad size {size}")]
    RingSize {
        /// The ring.
        index: u32,
        /// The size asked for.
        size: u32,
    },
    /// A number out of its range (a ring base, an enable flag).
    #[error("ring {index}: bad value {value}")]
    Value {
        /// The ring.
        index: u32,
        /// The value.
        value: u32,
    },
    /// A ring that cannot start where it was put.
    #[error("ring {index}: {why}")]
    Ring {
        /// The ring.
        index: u32,
        /// Why.
        why: RingError,
    },
    /// A memory table that cannot be used.
    #[error("memory table: {0}")]
    Memory(MemoryError),
    /// A request that needs a descriptor came without one, or with one
    /// that is not an eventfd.
    #[error("{0}")]
    Fd(&'static str),
    /// More descriptors than any message carries.
    #[error("too many descriptors")]
    TooManyFds,
    /// A message begun and not finished in time.
    #[error("message timed out")]
    Timeout,
    /// The front end closed its socket.
    #[error("front end hung up")]
    Hangup,
    /// The socket failed.
    #[error("control socket: {0}")]
    Io(String),
    /// Another front end holds the interface.
    #[error("interface already connected")]
    Busy,
}

/// What the front end has set up for one ring.
#[derive(Debug, Default)]
struct RingSetup {
    num: u32,
    addr: Option<VringAddr>,
    /// Where to start (or where the ring stopped).
    base: u16,
    /// A kick came (with a descriptor, or "poll").
    kicked: bool,
    kick: Option<Arc<OwnedFd>>,
    call: Option<Arc<OwnedFd>>,
    err: Option<Arc<OwnedFd>>,
    enabled: bool,
}

/// The front end of the moment. Rings drop before memory (the slots are
/// emptied in `close`), memory before the socket.
#[derive(Debug)]
struct Conn {
    inbox: Inbox,
    features: u64,
    protocol: u64,
    memory: Option<Arc<GuestMemory>>,
    rings: Vec<RingSetup>,
    /// Queue pair 0 runs.
    up: bool,
    /// It ran at some point.
    was_up: bool,
    fd: OwnedFd,
}

#[derive(Debug)]
enum Endpoint {
    Server { listener: OwnedFd },
    Client { next_attempt: Instant },
}

/// A vhost-user interface: the socket, the front end of the moment, and
/// the slots its rings run in. Its owner (the control thread, or a test
/// loop) calls [`VhostUser::poll`]; the data path runs in the
/// [`VhostRx`]/[`VhostTx`] halves on the workers.
#[derive(Debug)]
pub struct VhostUser {
    config: VhostConfig,
    endpoint: Endpoint,
    conn: Option<Conn>,
    /// One per ring: `2q` the guest's receive ring, `2q + 1` its transmit.
    slots: Vec<Arc<VringSlot>>,
    status: Arc<LinkStatus>,
    stats: Arc<VhostStats>,
}

fn check_config(config: &VhostConfig) -> Result<(), KernelError> {
    if config.queues == 0 || config.queues > 128 {
        return Err(KernelError::other(
            format!("vhost-user {}", config.name),
            "queues must be 1..=128",
        ));
    }
    Ok(())
}

fn halves(
    config: &VhostConfig,
    stats: &Arc<VhostStats>,
) -> (Vec<Arc<VringSlot>>, Vec<(VhostRx, VhostTx)>) {
    let slots: Vec<Arc<VringSlot>> = (0..2 * config.queues as usize)
        .map(|_| Arc::new(Mutex::new(None)))
        .collect();
    let halves = slots
        .chunks(2)
        .map(|pair| {
            (
                VhostRx::new(
                    pair[1].clone(),
                    config.rx_mode,
                    stats.clone(),
                    config.max_frame,
                ),
                VhostTx::new(pair[0].clone(), stats.clone()),
            )
        })
        .collect();
    (slots, halves)
}

/// Listens on `config.socket` (mode `config.socket_mode`) and returns the
/// interface and one receive and one transmit half per queue pair;
/// `status` is down until a front end starts queue pair 0.
pub fn listen(
    config: &VhostConfig,
    status: &Arc<LinkStatus>,
) -> Result<(VhostUser, Vec<(VhostRx, VhostTx)>), KernelError> {
    check_config(config)?;
    let what = || {
        format!(
            "vhost-user {}: listening on {:?}",
            config.name, config.socket
        )
    };
    let fd = unix::stream().context(what)?;
    remove_stale(&config.socket).context(what)?;
    unix::bind_unix(fd.as_fd(), UnixAddr::Path(&config.socket)).context(what)?;
    // Before listen(): until then nobody can connect.
    std::fs::set_permissions(
        &config.socket,
        std::fs::Permissions::from_mode(config.socket_mode),
    )
    .context(what)?;
    unix::listen(fd.as_fd(), 4).context(what)?;
    let mut config = config.clone();
    config.role = Role::Server;
    Ok(build(config, Endpoint::Server { listener: fd }, status))
}

/// Connects to a front end listening on `config.socket`, now and again
/// after every disconnection (an attempt every `reconnect_interval`
/// while it is not there).
pub fn connect(
    config: &VhostConfig,
    status: &Arc<LinkStatus>,
) -> Result<(VhostUser, Vec<(VhostRx, VhostTx)>), KernelError> {
    check_config(config)?;
    let mut config = config.clone();
    config.role = Role::Client;
    let (mut v, h) = build(
        config,
        Endpoint::Client {
            next_attempt: Instant::now(),
        },
        status,
    );
    v.attempt();
    Ok((v, h))
}

fn build(
    config: VhostConfig,
    endpoint: Endpoint,
    status: &Arc<LinkStatus>,
) -> (VhostUser, Vec<(VhostRx, VhostTx)>) {
    let stats = Arc::new(VhostStats::default());
    let (slots, h) = halves(&config, &stats);
    status.set(LinkState::Down);
    (
        VhostUser {
            config,
            endpoint,
            conn: None,
            slots,
            status: status.clone(),
            stats,
        },
        h,
    )
}

/// Removes a socket file left by a process that is gone; refuses to touch
/// a live socket or anything that is not one.
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
    let probe = unix::stream()?;
    match unix::connect_unix(probe.as_fd(), UnixAddr::Path(path)) {
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => std::fs::remove_file(path),
        Err(e) => Err(e),
        Ok(()) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "another process serves this socket",
        )),
    }
}

/// The one descriptor of a kick/call/err request, or none with `NOFD`;
/// it must be an eventfd, made non-blocking (Sluice reads and writes it
/// on the data path).
fn ring_fd(value: u64, fds: &mut Vec<OwnedFd>) -> Result<Option<Arc<OwnedFd>>, Refusal> {
    if value & proto::VRING_NOFD != 0 {
        return Ok(None);
    }
    if fds.is_empty() {
        return Err(Refusal::Fd("ring request without its descriptor"));
    }
    let fd = fds.swap_remove(0);
    if !unix::is_eventfd(fd.as_fd()) {
        return Err(Refusal::Fd("ring descriptor is not an eventfd"));
    }
    crate::sys::set_nonblocking(fd.as_fd()).map_err(|e| Refusal::Io(e.to_string()))?;
    Ok(Some(Arc::new(fd)))
}

impl VhostUser {
    /// The interface's counters.
    pub fn stats(&self) -> &Arc<VhostStats> {
        &self.stats
    }

    /// Whether a front end is connected (running or not).
    pub fn has_frontend(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether queue pair 0 runs.
    pub fn is_up(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.up)
    }

    /// Queue pairs whose both rings run.
    pub fn running_queues(&self) -> usize {
        self.slots
            .chunks(2)
            .filter(|p| p.iter().all(|s| lock(s).is_some()))
            .count()
    }

    /// The descriptors to wait on for [`VhostUser::poll`] to have work.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut v = Vec::new();
        if let Endpoint::Server { listener } = &self.endpoint {
            v.push(listener.as_raw_fd());
        }
        if let Some(c) = &self.conn {
            v.push(c.fd.as_raw_fd());
        }
        v
    }

    /// Waits up to `timeout` for the control channel, then does all there
    /// is to do: accept or connect, answer the front end's messages, drop
    /// one whose message is late.
    pub fn poll(&mut self, timeout: Duration) {
        match (&self.endpoint, &self.conn) {
            (Endpoint::Client { next_attempt }, None) => {
                let left = next_attempt.saturating_duration_since(Instant::now());
                std::thread::sleep(left.min(timeout));
                self.attempt();
            }
            _ => {
                let _ = wait_readable(&self.fds(), timeout);
            }
        }
        self.accept();
        self.serve();
        if let Some(c) = &self.conn
            && c.inbox
                .since
                .is_some_and(|t| t.elapsed() > self.config.message_timeout)
        {
            self.close(Refusal::Timeout);
        }
    }

    fn accept(&mut self) {
        let Endpoint::Server { listener } = &self.endpoint else {
            return;
        };
        while let Ok(Some(fd)) = unix::accept(listener.as_fd()) {
            if self.conn.is_some() {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                self.set_reason(&Refusal::Busy);
                continue;
            }
            self.conn = Some(Conn::new(fd, self.config.queues));
        }
    }

    fn attempt(&mut self) {
        let Endpoint::Client { next_attempt } = &mut self.endpoint else {
            return;
        };
        if self.conn.is_some() || Instant::now() < *next_attempt {
            return;
        }
        *next_attempt = Instant::now() + self.config.reconnect_interval;
        let dial = || -> io::Result<OwnedFd> {
            let fd = unix::stream()?;
            unix::connect_unix(fd.as_fd(), UnixAddr::Path(&self.config.socket))?;
            Ok(fd)
        };
        match dial() {
            Ok(fd) => self.conn = Some(Conn::new(fd, self.config.queues)),
            Err(e) => {
                let why = format!("cannot connect: {e}");
                *self
                    .stats
                    .last_reason
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = why;
            }
        }
    }

    fn serve(&mut self) {
        // A bounded number a poll, so that a front end that never stops
        // talking cannot keep the control thread from everything else.
        for _ in 0..MESSAGES_PER_POLL {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let (header, payload, fds) = match conn.inbox.read(&conn.fd) {
                Ok(Some(m)) => m,
                Ok(None) => return,
                Err(e) => {
                    if matches!(
                        e,
                        Refusal::Flags(_) | Refusal::TooLarge(_) | Refusal::TooManyFds
                    ) {
                        self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                    }
                    return self.close(e);
                }
            };
            let reply = Request::decode(header.request, &payload)
                .map_err(Refusal::Decode)
                .and_then(|req| self.handle(req, fds));
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    self.stats.bad_messages.fetch_add(1, Ordering::Relaxed);
                    return self.close(e);
                }
            };
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            let reply = match reply {
                Some(r) => Some(r),
                None if header.need_reply() && conn.protocol & protocol::REPLY_ACK != 0 => {
                    Some(proto::reply_u64(header.request, 0))
                }
                None => None,
            };
            if let Some(r) = reply {
                match unix::send_with_fd(conn.fd.as_fd(), &r, None) {
                    Ok(n) if n == r.len() => {}
                    Ok(_) => return self.close(Refusal::Io("short send".into())),
                    Err(e) => return self.close(Refusal::Io(e.to_string())),
                }
            }
            self.update_link();
        }
    }

    fn offered(&self) -> u64 {
        let mq = if self.config.queues > 1 {
            features::NET_MQ
        } else {
            0
        };
        FEATURES | mq
    }

    /// Serves one request; the reply, if it has one of its own.
    fn handle(&mut self, req: Request, mut fds: Vec<OwnedFd>) -> Result<Option<Vec<u8>>, Refusal> {
        let offered = self.offered();
        let code = req.code();
        let rings = 2 * self.config.queues as u32;
        let index = |i: u32| {
            if i < rings {
                Ok(i as usize)
            } else {
                Err(Refusal::RingIndex(i))
            }
        };
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        match req {
            Request::GetFeatures => return Ok(Some(proto::reply_u64(code, offered))),
            Request::SetFeatures(f) => {
                if f & !offered != 0 {
                    return Err(Refusal::Features(f & !offered));
                }
                conn.features = f;
                // Header size and ring options come from the features:
                // running rings restart with them.
                self.restart_all()?;
            }
            Request::GetProtocolFeatures => return Ok(Some(proto::reply_u64(code, PROTOCOL))),
            Request::SetProtocolFeatures(f) => {
                if f & !PROTOCOL != 0 {
                    return Err(Refusal::Features(f & !PROTOCOL));
                }
                conn.protocol = f;
            }
            Request::GetQueueNum => {
                return Ok(Some(proto::reply_u64(code, self.config.queues as u64)));
            }
            Request::SetOwner => {}
            Request::ResetOwner => {
                self.stop_all();
                if let Some(c) = self.conn.as_mut() {
                    c.rings.iter_mut().for_each(|r| *r = RingSetup::default());
                    c.features = 0;
                }
            }
            Request::SetMemTable(table) => {
                let mem = GuestMemory::map(
                    &table,
                    std::mem::take(&mut fds),
                    self.config.max_memory,
                    self.config.sealed_memory_only,
                )
                .map_err(Refusal::Memory)?;
                // Rings running on the old table stop, then start again
                // on the new one; the old mappings go with the last ring.
                self.stop_all();
                if let Some(c) = self.conn.as_mut() {
                    c.memory = Some(Arc::new(mem));
                }
                self.reconcile_all()?;
            }
            Request::SetVringNum(s) => {
                let i = index(s.index)?;
                if s.num == 0 || s.num > MAX_QUEUE_SIZE || !s.num.is_power_of_two() {
                    return Err(Refusal::RingSize {
                        index: s.index,
                        size: s.num,
                    });
                }
                self.stop(i);
                self.setup(i).num = s.num;
                self.reconcile(i)?;
            }
            Request::SetVringAddr(a) => {
                let i = index(a.index)?;
                self.stop(i);
                self.setup(i).addr = Some(a);
                self.reconcile(i)?;
            }
            Request::SetVringBase(s) => {
                let i = index(s.index)?;
                let base = u16::try_from(s.num).map_err(|_| Refusal::Value {
                    index: s.index,
                    value: s.num,
                })?;
                self.stop(i);
                self.setup(i).base = base;
                self.reconcile(i)?;
            }
            Request::GetVringBase(s) => {
                let i = index(s.index)?;
                self.stop(i);
                let r = self.setup(i);
                // Stopped until the next kick.
                r.kicked = false;
                r.kick = None;
                let num = r.base as u32;
                return Ok(Some(proto::reply_state(
                    code,
                    VringState {
                        index: s.index,
                        num,
                    },
                )));
            }
            Request::SetVringKick(v) => {
                let i = index((v & proto::VRING_INDEX_MASK) as u32)?;
                let fd = ring_fd(v, &mut fds)?;
                self.stop(i);
                let r = self.setup(i);
                r.kick = fd;
                r.kicked = true;
                self.reconcile(i)?;
            }
            Request::SetVringCall(v) => {
                let i = index((v & proto::VRING_INDEX_MASK) as u32)?;
                let fd = ring_fd(v, &mut fds)?;
                self.setup(i).call = fd.clone();
                if let Some(ring) = lock(&self.slots[i]).as_mut() {
                    ring.call = fd;
                }
            }
            Request::SetVringErr(v) => {
                let i = index((v & proto::VRING_INDEX_MASK) as u32)?;
                let fd = ring_fd(v, &mut fds)?;
                self.setup(i).err = fd.clone();
                if let Some(ring) = lock(&self.slots[i]).as_mut() {
                    ring.err = fd;
                }
            }
            Request::SetVringEnable(s) => {
                let i = index(s.index)?;
                if s.num > 1 {
                    return Err(Refusal::Value {
                        index: s.index,
                        value: s.num,
                    });
                }
                self.setup(i).enabled = s.num == 1;
                self.reconcile(i)?;
            }
            Request::Other(c) => return Err(Refusal::Unsupported(c)),
        }
        // Descriptors a request had no use for close here.
        drop(fds);
        Ok(None)
    }

    fn setup(&mut self, i: usize) -> &mut RingSetup {
        // `i` was checked against the queue pairs, and every connection
        // has a setup per ring.
        &mut self.conn.as_mut().expect("a connection").rings[i]
    }

    /// Stops ring `i` if it runs, keeping where it stopped.
    fn stop(&mut self, i: usize) {
        let taken = lock(&self.slots[i]).take();
        if let (Some(v), Some(c)) = (taken, self.conn.as_mut()) {
            c.rings[i].base = v.last_avail;
            // Odd rings are the guest's transmit rings, which Sluice reads.
            if i % 2 == 1 {
                let left = v.ring.avail_idx().wrapping_sub(v.last_avail);
                self.stats
                    .rx_left_at_stop
                    .fetch_add(u64::from(left), Ordering::Relaxed);
            }
        }
    }

    fn stop_all(&mut self) {
        (0..self.slots.len()).for_each(|i| self.stop(i));
    }

    fn restart_all(&mut self) -> Result<(), Refusal> {
        self.stop_all();
        self.reconcile_all()
    }

    fn reconcile_all(&mut self) -> Result<(), Refusal> {
        (0..self.slots.len()).try_for_each(|i| self.reconcile(i))
    }

    /// Starts ring `i` if it qualifies and is not running.
    fn reconcile(&mut self, i: usize) -> Result<(), Refusal> {
        let Some(c) = self.conn.as_ref() else {
            return Ok(());
        };
        let r = &c.rings[i];
        let enabled = r.enabled || c.features & features::PROTOCOL_FEATURES == 0;
        let (Some(mem), Some(addr)) = (&c.memory, &r.addr) else {
            return Ok(());
        };
        if !(r.kicked && r.num > 0 && enabled) {
            return Ok(());
        }
        let mut slot = lock(&self.slots[i]);
        if slot.is_some() {
            return Ok(());
        }
        let f = c.features;
        let ring = SplitRing::new(
            mem.clone(),
            r.num,
            addr,
            f & features::RING_EVENT_IDX != 0,
            f & features::RING_INDIRECT_DESC != 0,
        )
        .map_err(|why| Refusal::Ring {
            index: i as u32,
            why,
        })?;
        let mergeable = f & features::NET_MRG_RXBUF != 0;
        let hdr_len = if f & features::VERSION_1 != 0 || mergeable {
            12
        } else {
            10
        };
        *slot = Some(Vring::new(
            ring,
            r.base,
            hdr_len,
            mergeable,
            [r.call.clone(), r.kick.clone(), r.err.clone()],
        ));
        Ok(())
    }

    /// The link follows queue pair 0.
    fn update_link(&mut self) {
        let up = self.slots[..2].iter().all(|s| lock(s).is_some());
        let Some(c) = self.conn.as_mut() else {
            return;
        };
        if up && !c.up {
            c.up = true;
            if !c.was_up {
                c.was_up = true;
                self.stats.connects.fetch_add(1, Ordering::Relaxed);
            }
            self.status.set(LinkState::Up);
        } else if !up && c.up {
            c.up = false;
            self.status.set(LinkState::Down);
        }
    }

    /// Ends the connection of the moment: takes the rings back, counts,
    /// and (a client) plans the next attempt.
    fn close(&mut self, why: Refusal) {
        for s in &self.slots {
            lock(s).take();
        }
        let Some(conn) = self.conn.take() else {
            return;
        };
        if conn.was_up {
            self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        self.set_reason(&why);
        self.status.set(LinkState::Down);
        if let Endpoint::Client { next_attempt } = &mut self.endpoint {
            *next_attempt = Instant::now() + self.config.reconnect_interval;
        }
        // `conn` drops here: its memory (no ring holds it now), its
        // descriptors, its socket.
    }

    fn set_reason(&self, why: &Refusal) {
        *self
            .stats
            .last_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = why.to_string();
    }
}

impl Drop for VhostUser {
    fn drop(&mut self) {
        for s in &self.slots {
            lock(s).take();
        }
        self.status.set(LinkState::Down);
        if self.config.role == Role::Server {
            let _ = std::fs::remove_file(&self.config.socket);
        }
    }
}

/// The control thread's hold on a slot (it waits out a burst).
fn lock(slot: &VringSlot) -> std::sync::MutexGuard<'_, Option<Vring>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    fn new(fd: OwnedFd, queues: u16) -> Conn {
        Conn {
            inbox: Inbox::default(),
            features: 0,
            protocol: 0,
            memory: None,
            rings: (0..2 * queues).map(|_| RingSetup::default()).collect(),
            up: false,
            was_up: false,
            fd,
        }
    }
}
