//! AF_XDP: frames from a kernel device straight into Sluice's buffers.
//!
//! Each receive queue of the device gets an AF_XDP socket whose UMEM is the
//! whole buffer pool, and an XDP program (loaded and attached by Sluice,
//! detached when Sluice closes it) redirects every frame of that queue to
//! the socket. Receiving is the kernel writing into buffers Sluice lent it
//! on the fill ring; sending is lending a packet's buffer on the transmit
//! ring and taking it back from the completion ring. No frame is copied
//! between the kernel's memory and Sluice's, and a packet received on one
//! AF_XDP interface is sent on another from the very same buffer.
//!
//! Zero-copy needs driver support; elsewhere (veth) the kernel copies into
//! the lent buffer itself, and the program runs in the driver if it can,
//! generic otherwise.
//!
//! Why no AF_XDP crate: the maintained ones wrap libxdp and libbpf (C
//! libraries, a clang-built program object to ship) and own the UMEM
//! memory, while Sluice's point is a UMEM that *is* its pool; the program
//! is six instructions. So the socket, rings and program are done here on
//! `libc`, in [`crate::sys::xdp`] and [`crate::sys::bpf`].

mod lent;
mod ring;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_buf::{BufCache, DeviceLayout, Pool};
use sluice_graph::{Frame, InputState};

use crate::sys::bpf::{XdpAttachment, XdpHook, XskMap, attach_redirect};
use crate::sys::link::Link;
use crate::sys::xdp::{self, RingSizes, XskSocket};
use crate::sys::{KernelError, kick_rx, kick_tx};
use crate::{Driver, LinkState, LinkStatus, RxState};
use lent::LentSet;
use ring::{Consumer, Producer};

/// Whether to ask for zero-copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyMode {
    /// Zero-copy if the driver has it, copy otherwise.
    #[default]
    Auto,
    /// Zero-copy or fail.
    ZeroCopy,
    /// Always copy (the kernel copies into the lent buffer).
    Copy,
}

/// How to attach an interface with AF_XDP.
#[derive(Debug, Clone)]
pub struct AfXdpConfig {
    /// The kernel device, e.g. `eth1` or a veth.
    pub device: String,
    /// Receive queues to serve, `0..queues`; one socket each.
    pub queues: u32,
    /// Entries of each ring (a power of two, 64..=32768).
    pub ring_size: u32,
    /// Zero-copy or copy.
    pub copy: CopyMode,
    /// Where the XDP program runs; `None` tries the driver, then generic.
    pub hook: Option<XdpHook>,
    /// Complete TCP/UDP checksums that a host on a veth left for "the
    /// hardware" (see [`crate::offload::complete_partial`]); XDP gets such
    /// frames as they are. Costs a pseudo-header sum per TCP/UDP frame.
    pub complete_checksums: bool,
}

impl AfXdpConfig {
    /// One queue of `device`, 2048-entry rings, zero-copy if possible.
    pub fn new(device: &str) -> AfXdpConfig {
        AfXdpConfig {
            device: device.to_string(),
            queues: 1,
            ring_size: 2048,
            copy: CopyMode::Auto,
            hook: None,
            complete_checksums: true,
        }
    }

    /// Buffers the interface may hold lent to the kernel at once: the fill
    /// and transmit rings of every queue. The pool must have these to
    /// spare.
    pub fn buffers_needed(&self) -> u32 {
        self.queues.saturating_mul(self.ring_size).saturating_mul(2)
    }
}

/// What an opened interface is, for `show interface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfXdpInfo {
    /// The kernel device's index.
    pub ifindex: u32,
    /// Where the program runs.
    pub hook: XdpHook,
    /// Whether the sockets are zero-copy.
    pub zero_copy: bool,
}

/// The program and map of a device, shared by its queues' sockets. The
/// program is attached once every fill ring holds buffers (a frame
/// steered to a socket with none is lost), and detached when the last
/// socket goes.
#[derive(Debug)]
struct DeviceAttachment {
    map: XskMap,
    program: Mutex<Option<XdpAttachment>>,
}

/// What the two halves of one queue share. Fields drop in order: the
/// socket closes before the orphaned buffers are reclaimed, and the
/// program is detached last.
#[derive(Debug)]
struct XskShared {
    fd: OwnedFd,
    queue: u32,
    orphans: Orphans,
    device: Arc<DeviceAttachment>,
}

impl Drop for XskShared {
    fn drop(&mut self) {
        self.device.map.remove(self.queue);
    }
}

/// Buffers lent by a half that went first, reclaimed once the socket is
/// closed: closing unbinds it, and after that the kernel neither writes
/// into the fill ring's buffers nor reads the transmit ring's.
#[derive(Debug)]
struct Orphans {
    pool: Pool,
    lent: Mutex<Vec<u32>>,
}

impl Orphans {
    fn adopt(&self, set: &mut LentSet) {
        let mut o = self.lent.lock().unwrap_or_else(|p| p.into_inner());
        o.extend(set.take_all());
    }
}

impl Drop for Orphans {
    fn drop(&mut self) {
        let lent = std::mem::take(self.lent.get_mut().unwrap_or_else(|p| p.into_inner()));
        let mut cache = self.pool.cache(64);
        for i in lent {
            // SAFETY: every index here was lent by one half of this queue's
            // socket (its LentSet said so) and is listed once; the socket
            // was closed before this field dropped (see XskShared).
            if let Some(p) = unsafe { cache.reclaim(i) } {
                cache.free(p);
            }
        }
    }
}

/// Watches the device's state when traffic stops, at most every
/// `PERIOD`, so that a deleted device is noticed without a syscall per
/// poll.
#[derive(Debug)]
struct LinkWatch {
    link: Link,
    status: Arc<LinkStatus>,
    next_check: Instant,
}

impl LinkWatch {
    const PERIOD: Duration = Duration::from_millis(100);

    fn new(link: Link, status: Arc<LinkStatus>) -> LinkWatch {
        LinkWatch {
            link,
            status,
            next_check: Instant::now() + Self::PERIOD,
        }
    }

    /// Whether a period has passed since the last look.
    fn due(&self) -> bool {
        Instant::now() >= self.next_check
    }

    /// The state, re-read from the kernel if a period has passed.
    fn state(&mut self) -> LinkState {
        let now = Instant::now();
        if now >= self.next_check {
            self.next_check = now + Self::PERIOD;
            let s = self.link.state();
            if s != self.status.state() {
                self.status.set(s);
            }
        }
        self.status.state()
    }

    fn gone(&mut self) {
        self.status.set(LinkState::Gone);
    }
}

/// Opens `config.queues` sockets on the device, lends each fill ring its
/// buffers, and attaches the redirect program. Returns a receive and a
/// transmit half per queue.
pub fn open(
    config: &AfXdpConfig,
    pool: &Pool,
    status: &Arc<LinkStatus>,
) -> Result<(Vec<(AfXdpRx, AfXdpTx)>, AfXdpInfo), KernelError> {
    let link = Link::open(&config.device)?;
    let ifindex = link.index();
    let layout = pool.device_layout();
    let mtu = link.mtu()?;
    let max_frame = layout.stride - layout.data_start;
    if mtu as usize + 18 > max_frame {
        return Err(KernelError::other(
            format!("AF_XDP on {}", config.device),
            format!(
                "MTU {mtu} is too large: frames must fit one {max_frame}-byte buffer (MTU <= {})",
                max_frame - 18
            ),
        ));
    }
    if config.queues == 0 {
        return Err(KernelError::other(
            format!("AF_XDP on {}", config.device),
            "queues must be at least 1",
        ));
    }
    if config.buffers_needed() >= pool.capacity() {
        return Err(KernelError::other(
            format!("AF_XDP on {}", config.device),
            format!(
                "{} queues of {}-entry rings need {} buffers lent at once; the pool has {}",
                config.queues,
                config.ring_size,
                config.buffers_needed(),
                pool.capacity()
            ),
        ));
    }
    let sizes = RingSizes {
        rx: config.ring_size,
        tx: config.ring_size,
    };
    let map = XskMap::new(config.queues)?;
    let mut sockets = Vec::new();
    for q in 0..config.queues {
        let s = match config.copy {
            CopyMode::ZeroCopy => xdp::open(ifindex, q, pool, sizes, true)?,
            CopyMode::Copy => xdp::open(ifindex, q, pool, sizes, false)?,
            CopyMode::Auto => match xdp::open(ifindex, q, pool, sizes, true) {
                Ok(s) => s,
                Err(_) => xdp::open(ifindex, q, pool, sizes, false)?,
            },
        };
        map.insert(q, s.fd.as_fd())?;
        sockets.push(s);
    }
    let zero_copy = sockets.iter().all(|s| s.zero_copy);
    let device = Arc::new(DeviceAttachment {
        map,
        program: Mutex::new(None),
    });
    let mut halves = Vec::new();
    for (q, s) in sockets.into_iter().enumerate() {
        halves.push(halves_of(s, q as u32, pool, &device, config, status)?);
    }
    let program = attach_redirect(ifindex, &device.map, config.hook)?;
    let info = AfXdpInfo {
        ifindex,
        hook: program.hook(),
        zero_copy,
    };
    *device.program.lock().unwrap_or_else(|p| p.into_inner()) = Some(program);
    status.set(link.state());
    Ok((halves, info))
}

fn halves_of(
    socket: XskSocket,
    queue: u32,
    pool: &Pool,
    device: &Arc<DeviceAttachment>,
    config: &AfXdpConfig,
    status: &Arc<LinkStatus>,
) -> Result<(AfXdpRx, AfXdpTx), KernelError> {
    let XskSocket { fd, rings, .. } = socket;
    let raw = fd.as_raw_fd();
    let shared = Arc::new(XskShared {
        fd,
        queue,
        orphans: Orphans {
            pool: pool.clone(),
            lent: Mutex::new(Vec::new()),
        },
        device: device.clone(),
    });
    let layout = pool.device_layout();
    let mut rx = AfXdpRx {
        fill: Producer::new(rings.fill, 8),
        rx: Consumer::new(rings.rx, 16),
        lent: LentSet::new(layout.buffers),
        layout,
        fd: raw,
        watch: LinkWatch::new(Link::open(&config.device)?, status.clone()),
        drops: 0,
        fill_target: config.ring_size,
        complete_checksums: config.complete_checksums,
        kernel_drops: 0,
        bursts: 0,
        shared: shared.clone(),
    };
    let mut cache = pool.cache(64);
    rx.refill(&mut cache);
    drop(cache);
    let tx = AfXdpTx {
        tx: Producer::new(rings.tx, 16),
        completion: Consumer::new(rings.completion, 8),
        lent: LentSet::new(layout.buffers),
        layout,
        fd: raw,
        watch: LinkWatch::new(Link::open(&config.device)?, status.clone()),
        shared,
    };
    Ok((rx, tx))
}

/// The receive half of one queue: an input node's driver.
#[derive(Debug)]
pub struct AfXdpRx {
    fill: Producer,
    rx: Consumer,
    lent: LentSet,
    layout: DeviceLayout,
    fd: RawFd,
    watch: LinkWatch,
    drops: u64,
    fill_target: u32,
    complete_checksums: bool,
    /// The kernel's drop count as last read, and bursts since.
    kernel_drops: u64,
    bursts: u32,
    shared: Arc<XskShared>,
}

impl AfXdpRx {
    /// Tops the fill ring up with freshly lent buffers.
    fn refill(&mut self, buffers: &mut BufCache) {
        let want = self.fill_target.saturating_sub(self.lent.len() as u32);
        let n = self.fill.free(want);
        let mut put = 0;
        while put < n {
            let Some(p) = buffers.alloc() else { break };
            match p.lend() {
                Ok(l) => {
                    self.lent.insert(l.index);
                    // The kernel puts the frame 256 bytes into the chunk:
                    // the fresh buffer's data start (see sys::xdp).
                    self.fill.put_addr(put, l.buffer);
                    put += 1;
                }
                Err(p) => {
                    buffers.free(p);
                    break;
                }
            }
        }
        self.fill.submit(put);
        if put > 0 && self.fill.needs_wakeup() && kick_rx(self.shared_fd()).is_err() {
            self.watch.gone();
        }
    }

    fn shared_fd(&self) -> BorrowedFd<'_> {
        self.shared.fd.as_fd()
    }

    /// Adds what the kernel dropped on the way in since the last look
    /// (receive ring full, no fill buffer, bad descriptors) to the drops.
    fn count_kernel_drops(&mut self) {
        if let Some(st) = xdp::statistics(&self.shared.fd) {
            let total = st.rx_dropped + st.rx_ring_full + st.rx_invalid_descs;
            self.drops += total.saturating_sub(self.kernel_drops);
            self.kernel_drops = total;
        }
    }
}

/// Busy bursts between two reads of the kernel's drop counters (a
/// syscall); idle, they are read with the link state.
const STATS_EVERY: u32 = 1024;

impl Drop for AfXdpRx {
    fn drop(&mut self) {
        self.shared.orphans.adopt(&mut self.lent);
    }
}

impl Driver for AfXdpRx {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        let n = self.rx.available(max.min(u32::MAX as usize) as u32);
        self.bursts += 1;
        if self.bursts >= STATS_EVERY || (n == 0 && self.watch.due()) {
            self.bursts = 0;
            self.count_kernel_drops();
        }
        if n == 0 {
            if self.watch.state() != LinkState::Up {
                return InputState::Idle;
            }
            if self.fill.needs_wakeup() {
                let _ = kick_rx(self.shared_fd());
            }
            return InputState::Idle;
        }
        let frame_room = self.layout.stride - self.layout.data_start;
        for i in 0..n {
            let Some(d) = self.rx.desc(i) else {
                self.drops += 1;
                continue;
            };
            // Unaligned chunks: the chunk's address in the low 48 bits,
            // the frame's offset in it above.
            let chunk = d.addr & ((1 << 48) - 1);
            let offset = (d.addr >> 48) as usize;
            let index = match self.layout.buffer_at(chunk) {
                Some(i) if chunk == u64::from(i) * self.layout.stride as u64 => i,
                _ => {
                    self.drops += 1;
                    continue;
                }
            };
            if !self.lent.remove(index) {
                // Not ours to take: the kernel named a buffer twice.
                self.drops += 1;
                continue;
            }
            // SAFETY: the buffer was lent by this half (it was in `lent`,
            // now removed, so it is reclaimed once), and the kernel handed
            // it back on the receive ring, so it is done writing it.
            let Some(mut p) = (unsafe { buffers.reclaim(index) }) else {
                self.drops += 1;
                continue;
            };
            let len = d.len as usize;
            let ok = offset >= self.layout.data_start
                && offset - self.layout.data_start + len <= frame_room
                && p.set_len(offset - self.layout.data_start + len).is_ok()
                && p.advance(offset - self.layout.data_start).is_ok();
            if ok {
                if self.complete_checksums {
                    crate::offload::complete_partial(p.data_mut());
                }
                out.push(p);
            } else {
                buffers.free(p);
                self.drops += 1;
            }
        }
        self.rx.release(n);
        self.refill(buffers);
        InputState::Busy(n as usize)
    }

    fn take_rx_drops(&mut self) -> u64 {
        std::mem::take(&mut self.drops)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd)
    }
}

/// The transmit half of one queue: an output node's driver.
#[derive(Debug)]
pub struct AfXdpTx {
    tx: Producer,
    completion: Consumer,
    lent: LentSet,
    layout: DeviceLayout,
    fd: RawFd,
    watch: LinkWatch,
    shared: Arc<XskShared>,
}

/// Frames the kernel's copy-mode transmit sends per `sendto`.
const COPY_TX_BATCH: usize = 32;

impl AfXdpTx {
    /// Takes back the buffers the kernel has finished sending.
    fn reap(&mut self, buffers: &mut BufCache) {
        let n = self.completion.available(u32::MAX);
        for i in 0..n {
            let Some(addr) = self.completion.addr(i) else {
                continue;
            };
            let Some(index) = self.layout.buffer_at(addr) else {
                continue;
            };
            if self.lent.remove(index) {
                // SAFETY: lent by this half and now removed from `lent`, so
                // reclaimed once; the kernel completed it, so it is done.
                if let Some(p) = unsafe { buffers.reclaim(index) } {
                    buffers.free(p);
                }
            }
        }
        self.completion.release(n);
    }

    fn shared_fd(&self) -> BorrowedFd<'_> {
        self.shared.fd.as_fd()
    }
}

impl Drop for AfXdpTx {
    fn drop(&mut self) {
        self.shared.orphans.adopt(&mut self.lent);
    }
}

impl Driver for AfXdpTx {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        self.reap(buffers);
        if self.watch.state() == LinkState::Gone {
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        }
        let room = self.tx.free(packets.len().min(u32::MAX as usize) as u32) as usize;
        let mut failed = 0;
        let mut put = 0u32;
        for p in packets.drain(..) {
            if put as usize >= room {
                buffers.free(p);
                failed += 1;
                continue;
            }
            match p.lend() {
                Ok(l) => {
                    self.lent.insert(l.index);
                    self.tx.put_desc(
                        put,
                        libc::xdp_desc {
                            addr: l.data,
                            len: l.len,
                            options: 0,
                        },
                    );
                    put += 1;
                }
                // A chained (jumbo) frame cannot go out as one descriptor
                // without multi-buffer support.
                Err(p) => {
                    buffers.free(p);
                    failed += 1;
                }
            }
        }
        self.tx.submit(put);
        if self.tx.needs_wakeup() {
            // In copy mode each kick sends at most a small batch.
            for _ in 0..(put as usize).div_ceil(COPY_TX_BATCH).max(1) {
                if let Err(e) = kick_tx(self.shared_fd()) {
                    if matches!(e.raw_os_error(), Some(libc::ENXIO) | Some(libc::ENETDOWN)) {
                        self.watch.gone();
                    }
                    break;
                }
            }
        }
        failed
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd)
    }
}
