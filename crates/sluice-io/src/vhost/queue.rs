//! The data path: one queue pair's receive and transmit halves, as
//! [`Driver`]s a worker owns.
//!
//! Queue pair `q` is two virtqueues: the guest's transmit ring `2q + 1`,
//! which Sluice's receive half dequeues, and the guest's receive ring
//! `2q`, which Sluice's transmit half fills. Packets are copied both ways,
//! so no buffer of Sluice's pool is ever visible to a guest.
//!
//! Each ring sits in a [`VringSlot`]: a mutex the half takes with
//! `try_lock` once per burst (uncontended: one atomic exchange each way),
//! and the control thread takes to start, stop or change the ring. So when
//! the front end asks for a ring's state (`GET_VRING_BASE`) the control
//! thread sees exactly where the half stopped, and a ring is never taken
//! away from under a burst. A burst that finds the control thread holding
//! the slot returns idle and tries again next time.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use sluice_buf::{BufCache, DATA_SIZE, Packet};
use sluice_graph::{FRAME_SIZE, Frame, InputState};

use super::VhostStats;
use super::virtq::{ChainError, SplitRing};
use crate::memif::RxMode;
use crate::sys::unix::{eventfd_drain, eventfd_kick};
use crate::{Driver, RxState};

/// A started ring and where the device is in it.
#[derive(Debug)]
pub(crate) struct Vring {
    pub(crate) ring: SplitRing,
    /// The next available entry to take.
    pub(crate) last_avail: u16,
    /// Our `used.idx`: the next used entry to write.
    pub(crate) used_idx: u16,
    /// Bytes of the virtio-net header before each frame: 12 (virtio 1.0
    /// or mergeable buffers) or 10.
    pub(crate) hdr_len: usize,
    /// Frames may span several receive chains (`MRG_RXBUF`).
    pub(crate) mergeable: bool,
    /// Signalled when the driver wants an interrupt.
    pub(crate) call: Option<Arc<OwnedFd>>,
    /// The guest kicks it when it adds buffers (interrupt mode).
    pub(crate) kick: Option<Arc<OwnedFd>>,
    /// Signalled when the ring breaks.
    pub(crate) err: Option<Arc<OwnedFd>>,
    /// The indices were garbage: the ring is not touched again until the
    /// front end sets it up anew.
    pub(crate) broken: bool,
    /// Whether kicks are asked for now.
    kicks: bool,
}

impl Vring {
    /// A ring that takes available entries from `base` on and writes used
    /// entries from the `used.idx` in memory on: the two differ only for
    /// a ring set up again after a restart, or after heads past the ring
    /// (which are skipped, not given back).
    pub(crate) fn new(
        ring: SplitRing,
        base: u16,
        hdr_len: usize,
        mergeable: bool,
        fds: [Option<Arc<OwnedFd>>; 3],
    ) -> Vring {
        let used = ring.used_idx();
        let [call, kick, err] = fds;
        // Polled until a receive half in interrupt mode asks otherwise.
        ring.want_kicks(false, base);
        Vring {
            ring,
            last_avail: base,
            used_idx: used,
            hdr_len,
            mergeable,
            call,
            kick,
            err,
            broken: false,
            kicks: false,
        }
    }

    /// Checks the driver's index; `None` when it is more than a ring
    /// ahead (the ring is then broken, counted, and the front end told).
    #[inline(always)]
    fn ready(&mut self, stats: &VhostStats) -> Option<u16> {
        if self.broken {
            return None;
        }
        let ready = self.ring.avail_idx().wrapping_sub(self.last_avail);
        if ready as u32 > self.ring.entries() {
            self.broken = true;
            stats.bad_rings.fetch_add(1, Ordering::Relaxed);
            if let Some(e) = &self.err {
                let _ = eventfd_kick(e.as_fd());
            }
            return None;
        }
        Some(ready)
    }

    /// Publishes the used entries written since the last call, and
    /// interrupts the driver if it asked for it.
    #[inline(always)]
    fn publish(&mut self, used: u16) {
        if used == self.used_idx {
            return;
        }
        let old = self.used_idx;
        self.ring.publish_used(used);
        self.used_idx = used;
        if let Some(call) = &self.call
            && self.ring.needs_interrupt(old, used)
        {
            let _ = eventfd_kick(call.as_fd());
        }
    }
}

/// Where a ring lives while it runs; `None` while it is stopped.
pub(crate) type VringSlot = Mutex<Option<Vring>>;

/// The slot for a burst, unless the control thread holds it.
#[inline(always)]
fn enter(slot: &VringSlot) -> Option<MutexGuard<'_, Option<Vring>>> {
    match slot.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// The receive half of one queue pair: dequeues the guest's transmit ring.
#[derive(Debug)]
pub struct VhostRx {
    slot: Arc<VringSlot>,
    mode: RxMode,
    stats: Arc<VhostStats>,
    /// Packets dropped since the last `take_rx_drops`.
    drops: u64,
    max_frame: usize,
    segs: Vec<(u64, u32)>,
    /// Gathers a frame larger than one Sluice buffer.
    scratch: Vec<u8>,
    /// The kick eventfd of the ring last seen, for `wait_fd`.
    kick: Option<Arc<OwnedFd>>,
    /// The burst's chain heads, and where their frames are.
    heads: Vec<u16>,
    fast: Vec<Fast>,
}

impl VhostRx {
    pub(crate) fn new(
        slot: Arc<VringSlot>,
        mode: RxMode,
        stats: Arc<VhostStats>,
        max_frame: usize,
    ) -> VhostRx {
        VhostRx {
            slot,
            mode,
            stats,
            drops: 0,
            max_frame,
            segs: Vec::with_capacity(64),
            scratch: Vec::new(),
            kick: None,
            heads: Vec::with_capacity(FRAME_SIZE),
            fast: Vec::with_capacity(FRAME_SIZE),
        }
    }

    /// Whether the guest's transmit ring runs (as of now).
    pub fn is_connected(&self) -> bool {
        enter(&self.slot).is_some_and(|g| g.as_ref().is_some_and(|v| !v.broken))
    }

    /// Copies the frame of the chain just collected into Sluice buffers.
    #[inline(always)]
    fn copy_frame(
        segs: &[(u64, u32)],
        mem: &super::memory::GuestMemory,
        hdr: usize,
        len: usize,
        buffers: &mut BufCache,
        scratch: &mut Vec<u8>,
    ) -> Result<Packet, bool> {
        let fill = |dst: &mut [u8]| {
            let mut skip = hdr as u64;
            let mut at = 0usize;
            for &(gpa, n) in segs {
                let n = n as u64;
                if skip >= n {
                    skip -= n;
                    continue;
                }
                let take = (n - skip) as usize;
                if !mem.read(gpa + skip, &mut dst[at..at + take]) {
                    return false;
                }
                skip = 0;
                at += take;
            }
            true
        };
        if len <= DATA_SIZE {
            let mut p = buffers.alloc().ok_or(false)?;
            if fill(&mut p.room_mut()[..len]) && p.set_len(len).is_ok() {
                return Ok(p);
            }
            buffers.free(p);
            return Err(true);
        }
        scratch.clear();
        scratch.resize(len, 0);
        if !fill(scratch) {
            return Err(true);
        }
        buffers.alloc_from(scratch).map_err(|_| false)
    }

    fn receive(
        &mut self,
        v: &mut Vring,
        buffers: &mut BufCache,
        out: &mut Frame,
        max: usize,
    ) -> usize {
        let Some(ready) = v.ready(&self.stats) else {
            return 0;
        };
        let n = (ready as usize).min(max);
        let hdr = v.hdr_len;
        let limit = (hdr + self.max_frame) as u64;
        let ring = &v.ring;
        let mem = ring.memory();
        // Pass 1: the burst's heads, their descriptors asked for.
        self.heads.clear();
        for i in 0..n {
            let head = ring.avail_entry(v.last_avail.wrapping_add(i as u16));
            ring.prefetch_desc(head);
            self.heads.push(head);
        }
        // Pass 2: one-descriptor chains whose frame fits a buffer are
        // located once, and their frames asked for.
        self.fast.clear();
        let least = (hdr + 14) as u32;
        for &head in &self.heads {
            let f = match ring.single(head, false) {
                Some((addr, len))
                    if len >= least && len as u64 <= limit && len as usize - hdr <= DATA_SIZE =>
                {
                    match mem.locate_index(addr, len as u64) {
                        Some((region, off)) => {
                            mem.mapping(region as usize).prefetch(off + hdr);
                            Fast {
                                region,
                                len: len - hdr as u32,
                                off: off + hdr,
                            }
                        }
                        None => Fast::SLOW,
                    }
                }
                _ => Fast::SLOW,
            };
            self.fast.push(f);
        }
        // Pass 3: frames copied into Sluice buffers, chains given back.
        let mut used = v.used_idx;
        let mut got = 0;
        let mut no_buffer = 0u64;
        for (&head, &f) in self.heads.iter().zip(&self.fast) {
            if f.len != 0 {
                match buffers.alloc() {
                    Some(mut p) => {
                        let len = f.len as usize;
                        let map = mem.mapping(f.region as usize);
                        // A fresh buffer holds DATA_SIZE bytes, and the
                        // frame was located inside its region.
                        if map.copy_out(f.off, &mut p.room_mut()[..len]) && p.set_len(len).is_ok() {
                            out.push(p);
                            got += 1;
                        } else {
                            buffers.free(p);
                            self.stats.count(ChainError::OutOfMemory, Dir::Rx);
                        }
                    }
                    None => no_buffer += 1,
                }
            } else {
                let frame = match ring.chain(head, false, limit, &mut self.segs) {
                    Ok(total) if total >= least as u64 => Ok(total as usize - hdr),
                    Ok(_) => Err(ChainError::TooShort),
                    Err(e) => Err(e),
                };
                match frame {
                    Ok(len) => {
                        match Self::copy_frame(
                            &self.segs,
                            mem,
                            hdr,
                            len,
                            buffers,
                            &mut self.scratch,
                        ) {
                            Ok(p) => {
                                out.push(p);
                                got += 1;
                            }
                            Err(false) => no_buffer += 1,
                            Err(true) => self.stats.count(ChainError::OutOfMemory, Dir::Rx),
                        }
                    }
                    Err(e) => self.stats.count(e, Dir::Rx),
                }
            }
            // Every chain with a real head goes back, read or not, so the
            // guest gets its buffers back whatever they held.
            if (head as u32) < ring.entries() {
                ring.set_used(used, head, 0);
                used = used.wrapping_add(1);
            }
        }
        v.last_avail = v.last_avail.wrapping_add(n as u16);
        v.publish(used);
        if no_buffer > 0 {
            self.stats
                .rx_no_buffer
                .fetch_add(no_buffer, Ordering::Relaxed);
        }
        self.drops += (n - got) as u64;
        got
    }
}

/// A one-descriptor chain located for a burst: the region, the offset in
/// its mapping where the frame (or the room for one) starts, and its
/// bytes; `len == 0` sends the chain down the checked, general path.
#[derive(Debug, Clone, Copy)]
struct Fast {
    region: u32,
    len: u32,
    off: usize,
}

impl Fast {
    const SLOW: Fast = Fast {
        region: 0,
        len: 0,
        off: 0,
    };
}

impl Driver for VhostRx {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        let slot = self.slot.clone();
        let Some(mut g) = enter(&slot) else {
            return InputState::Idle;
        };
        let Some(v) = g.as_mut() else {
            self.kick = None;
            return InputState::Idle;
        };
        let got = self.receive(v, buffers, out, max);
        if self.mode == RxMode::Interrupt {
            if !same(&self.kick, &v.kick) {
                self.kick = v.kick.clone();
            }
            if got > 0 && v.kicks {
                v.ring.want_kicks(false, v.last_avail);
                v.kicks = false;
            } else if got == 0 && !v.kicks && v.kick.is_some() {
                // Dry: ask for a kick, clear old ones, and look once more
                // (a frame added before the ask was not kicked).
                v.ring.want_kicks(true, v.last_avail);
                v.kicks = true;
                if let Some(k) = &v.kick {
                    let _ = eventfd_drain(k.as_fd());
                }
                let again = self.receive(v, buffers, out, max);
                return if again > 0 {
                    InputState::Busy(again)
                } else {
                    InputState::Idle
                };
            }
        }
        if got > 0 {
            InputState::Busy(got)
        } else {
            InputState::Idle
        }
    }

    fn take_rx_drops(&mut self) -> u64 {
        std::mem::take(&mut self.drops)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        match self.mode {
            RxMode::Interrupt => self.kick.as_ref().map(|k| k.as_raw_fd()),
            RxMode::Polling => None,
        }
    }
}

/// Which half met a bad chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// The guest's transmit ring (Sluice receives).
    Rx,
    /// The guest's receive ring (Sluice transmits).
    Tx,
}

/// A receive chain collected for the frame being written (its buffers
/// are appended to the half's `segs`, in order).
#[derive(Debug, Clone, Copy)]
struct RxChain {
    head: u16,
    cap: u64,
}

/// The transmit half of one queue pair: fills the guest's receive ring.
#[derive(Debug)]
pub struct VhostTx {
    slot: Arc<VringSlot>,
    stats: Arc<VhostStats>,
    segs: Vec<(u64, u32)>,
    one: Vec<(u64, u32)>,
    chains: Vec<RxChain>,
    /// The burst's chain heads, and where their buffers are.
    heads: Vec<u16>,
    fast: Vec<Fast>,
}

/// Writes `src` at stream position `*at` of the buffers `segs`, moving
/// `*at` on; the buffers have room (checked by the caller).
#[inline(always)]
fn put(mem: &super::memory::GuestMemory, segs: &[(u64, u32)], cur: &mut (usize, u32), src: &[u8]) {
    let mut src = src;
    while !src.is_empty() {
        let Some(&(gpa, len)) = segs.get(cur.0) else {
            return;
        };
        let room = (len - cur.1) as usize;
        if room == 0 {
            *cur = (cur.0 + 1, 0);
            continue;
        }
        let n = room.min(src.len());
        mem.write(gpa + cur.1 as u64, &src[..n]);
        cur.1 += n as u32;
        src = &src[n..];
    }
}

impl VhostTx {
    pub(crate) fn new(slot: Arc<VringSlot>, stats: Arc<VhostStats>) -> VhostTx {
        VhostTx {
            slot,
            stats,
            segs: Vec::with_capacity(64),
            one: Vec::with_capacity(16),
            chains: Vec::with_capacity(8),
            heads: Vec::with_capacity(FRAME_SIZE),
            fast: Vec::with_capacity(FRAME_SIZE),
        }
    }

    /// Whether the guest's receive ring runs (as of now).
    pub fn is_connected(&self) -> bool {
        enter(&self.slot).is_some_and(|g| g.as_ref().is_some_and(|v| !v.broken))
    }

    /// Copies one packet into the guest's receive chains from `*next` on
    /// (up to `avail`), writing used entries from `*used` on. Returns
    /// whether it was written; if not, `*next` is left where the packet's
    /// first chain was (so the chains serve the next packet) unless a bad
    /// chain had to be given back on the way.
    #[inline(always)]
    fn send_one(
        &mut self,
        v: &Vring,
        p: &Packet,
        next: &mut u16,
        avail: u16,
        used: &mut u16,
    ) -> Result<(), TxFail> {
        let hdr = v.hdr_len;
        let need = (hdr + p.total_len()) as u64;
        self.segs.clear();
        self.chains.clear();
        let start = *next;
        let mut gave_back = false;
        let mut cap = 0u64;
        while cap < need {
            if *next == avail {
                return Err(if gave_back {
                    // Cannot rewind past a chain already given back.
                    self.abandon(v, used);
                    TxFail::Full
                } else {
                    *next = start;
                    TxFail::Full
                });
            }
            let head = v.ring.avail_entry(*next);
            *next = next.wrapping_add(1);
            match v.ring.chain(head, true, u32::MAX as u64, &mut self.one) {
                Ok(c) if c >= hdr as u64 || (!self.chains.is_empty() && c > 0) => {
                    self.segs.extend_from_slice(&self.one);
                    self.chains.push(RxChain { head, cap: c });
                    cap += c;
                }
                bad => {
                    self.stats
                        .count(bad.err().unwrap_or(ChainError::TooShort), Dir::Tx);
                    if (head as u32) < v.ring.entries() {
                        v.ring.set_used(*used, head, 0);
                        *used = used.wrapping_add(1);
                    }
                    gave_back = true;
                    continue;
                }
            }
            if !v.mergeable && cap < need {
                // One chain per frame, and this one is too small: the
                // frame is dropped, the chain serves the next one.
                if gave_back {
                    self.abandon(v, used);
                } else {
                    *next = start;
                }
                return Err(TxFail::TooBig);
            }
        }
        // The header: no offloads; `num_buffers` with mergeable buffers.
        let mut h = [0u8; 12];
        if hdr == 12 {
            h[10..12].copy_from_slice(&(self.chains.len() as u16).to_le_bytes());
        }
        let mem = v.ring.memory();
        let mut left = need;
        for c in &self.chains {
            let n = c.cap.min(left);
            left -= n;
            v.ring.set_used(*used, c.head, n as u32);
            *used = used.wrapping_add(1);
        }
        let mut cur = (0usize, 0u32);
        put(mem, &self.segs, &mut cur, &h[..hdr]);
        for seg in p.segments() {
            put(mem, &self.segs, &mut cur, seg);
        }
        Ok(())
    }

    /// Gives back the chains collected for a frame that will not be
    /// written, empty.
    fn abandon(&mut self, v: &Vring, used: &mut u16) {
        for c in self.chains.drain(..) {
            v.ring.set_used(*used, c.head, 0);
            *used = used.wrapping_add(1);
        }
    }
}

/// Why a packet was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxFail {
    /// No receive chains left.
    Full,
    /// Larger than a chain, without mergeable buffers.
    TooBig,
}

impl Driver for VhostTx {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        let slot = self.slot.clone();
        let mut g = enter(&slot);
        let Some(v) = g.as_mut().and_then(|g| g.as_mut()) else {
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        };
        let Some(ready) = v.ready(&self.stats) else {
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        };
        let avail = v.last_avail.wrapping_add(ready);
        let first = v.last_avail;
        let hdr = v.hdr_len;
        // Pass 1: the heads the burst may take (one chain a packet when
        // they are one buffer each), their descriptors asked for.
        self.heads.clear();
        let k = (ready as usize).min(packets.len());
        for i in 0..k {
            let head = v.ring.avail_entry(first.wrapping_add(i as u16));
            v.ring.prefetch_desc(head);
            self.heads.push(head);
        }
        // Pass 2: one-buffer chains located once, their first line asked
        // for.
        self.fast.clear();
        let mem = v.ring.memory();
        for &head in &self.heads {
            let f = match v.ring.single(head, true) {
                Some((addr, len)) if len as usize >= hdr => {
                    match mem.locate_index(addr, len as u64) {
                        Some((region, off)) => {
                            mem.mapping(region as usize).prefetch(off);
                            Fast { region, len, off }
                        }
                        None => Fast::SLOW,
                    }
                }
                _ => Fast::SLOW,
            };
            self.fast.push(f);
        }
        // The header of a frame in one buffer: no offloads,
        // `num_buffers` 1 (a field only when the header has 12 bytes).
        let mut h = [0u8; 12];
        h[10] = 1;
        let h = &h[..hdr];
        let mut next = first;
        let mut used = v.used_idx;
        let mut full = 0u64;
        let mut too_big = 0u64;
        let mut unsent = 0;
        for p in packets.drain(..) {
            // Pass 3, the fast path: the packet in one segment, the next
            // chain one buffer it fits in.
            let at = next.wrapping_sub(first) as usize;
            if let Some(&f) = self.fast.get(at)
                && f.len != 0
                && !p.is_chained()
                && hdr + p.len() <= f.len as usize
            {
                let map = mem.mapping(f.region as usize);
                if map.copy_in(f.off, h) && map.copy_in(f.off + hdr, p.data()) {
                    v.ring
                        .set_used(used, self.heads[at], (hdr + p.len()) as u32);
                    used = used.wrapping_add(1);
                    next = next.wrapping_add(1);
                    buffers.free(p);
                    continue;
                }
            }
            match self.send_one(v, &p, &mut next, avail, &mut used) {
                Ok(()) => {}
                Err(TxFail::Full) => {
                    full += 1;
                    unsent += 1;
                }
                Err(TxFail::TooBig) => {
                    too_big += 1;
                    unsent += 1;
                }
            }
            buffers.free(p);
        }
        v.last_avail = next;
        v.publish(used);
        if full > 0 {
            self.stats.tx_ring_full.fetch_add(full, Ordering::Relaxed);
        }
        if too_big > 0 {
            self.stats.tx_too_big.fetch_add(too_big, Ordering::Relaxed);
        }
        unsent
    }
}

/// Whether two optional descriptors are the same one.
fn same(a: &Option<Arc<OwnedFd>>, b: &Option<Arc<OwnedFd>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}
