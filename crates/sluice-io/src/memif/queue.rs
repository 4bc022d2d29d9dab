//! The data path: one queue pair's receive and transmit halves, as
//! [`Driver`]s a worker owns.
//!
//! The server (on its own thread) hands each half the ring of the current
//! connection through a [`QueueSlot`]; a half looks at the slot's
//! generation once per burst (one relaxed-cost atomic load) and takes the
//! new ring when it changed. A half keeps the connection's regions mapped
//! while it holds the ring, so a client that vanishes mid-burst leaves
//! memory that is still ours to read, never a hole.
//!
//! Copy mode: packets are copied between Sluice's buffers and the
//! client's, so no buffer of Sluice's pool is ever visible to a peer.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sluice_buf::{BufCache, DATA_SIZE};
use sluice_graph::{Frame, InputState};

use super::MemifStats;
use super::proto::{DESC_FLAG_NEXT, RING_FLAG_MASK_INT};
use super::ring::Ring;
use crate::sys::memif::MemifDesc;
use crate::sys::unix::{eventfd_drain, eventfd_kick};
use crate::{Driver, RxState};

/// Where the server puts a queue's ring when a client connects, and takes
/// it away when the client goes.
#[derive(Debug, Default)]
pub(crate) struct QueueSlot {
    generation: AtomicU64,
    ring: Mutex<Option<Arc<Ring>>>,
    /// Set by a half that found the ring broken (a head more than a ring
    /// ahead): the server ends the connection.
    fault: AtomicBool,
}

impl QueueSlot {
    /// Hands the halves a new ring (or none).
    pub(crate) fn publish(&self, ring: Option<Arc<Ring>>) {
        *self.ring.lock().unwrap_or_else(|e| e.into_inner()) = ring;
        self.fault.store(false, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether a half reported the ring broken (and clears the report).
    pub(crate) fn take_fault(&self) -> bool {
        self.fault.swap(false, Ordering::Relaxed)
    }

    fn current(&self, seen: &mut u64) -> Option<Option<Arc<Ring>>> {
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return None;
        }
        *seen = g;
        Some(self.ring.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// How the receive half learns of packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RxMode {
    /// Poll the ring; the client is asked never to kick (`MASK_INT` set),
    /// and the worker naps between empty polls.
    #[default]
    Polling,
    /// Adaptive: the ring is polled while packets come (interrupts masked,
    /// so the client makes no syscall); when it runs dry, interrupts are
    /// unmasked and the worker may sleep on the ring's eventfd.
    Interrupt,
}

/// The receive half of one queue pair: the client-to-server ring.
#[derive(Debug)]
pub struct MemifRx {
    slot: Arc<QueueSlot>,
    seen: u64,
    active: Option<RxRing>,
    mode: RxMode,
    stats: Arc<MemifStats>,
    /// Packets dropped since the last `take_rx_drops`.
    drops: u64,
    max_frame: usize,
    /// Gathers a packet that spans several descriptors or is larger
    /// than one Sluice buffer.
    scratch: Vec<u8>,
}

#[derive(Debug)]
struct RxRing {
    ring: Arc<Ring>,
    /// The next descriptor to read: our `tail`, not yet published.
    cursor: u16,
    /// Whether interrupts are masked now.
    masked: bool,
}

impl MemifRx {
    pub(crate) fn new(
        slot: Arc<QueueSlot>,
        mode: RxMode,
        stats: Arc<MemifStats>,
        max_frame: usize,
    ) -> MemifRx {
        MemifRx {
            slot,
            seen: 0,
            active: None,
            mode,
            stats,
            drops: 0,
            max_frame,
            scratch: Vec::new(),
        }
    }

    /// Whether a client's ring is attached (as of the last burst).
    pub fn is_connected(&self) -> bool {
        self.active.is_some()
    }

    fn refresh(&mut self) {
        if let Some(ring) = self.slot.current(&mut self.seen) {
            self.active = ring.map(|ring| {
                let masked = self.mode == RxMode::Polling;
                ring.mask_interrupts(masked);
                RxRing {
                    cursor: ring.tail(),
                    ring,
                    masked,
                }
            });
        }
    }

    /// Reads up to `max` packets; returns how many, and counts bad
    /// descriptors and missing buffers as drops.
    fn receive(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> usize {
        let Some(a) = self.active.as_mut() else {
            return 0;
        };
        let ring = &*a.ring;
        let head = ring.head();
        let ready = head.wrapping_sub(a.cursor);
        if ready > ring.size() {
            // The client published more than a ring: its indices are
            // garbage. Read nothing and have the server hang up.
            self.slot.fault.store(true, Ordering::Relaxed);
            self.stats.bad_rings.fetch_add(1, Ordering::Relaxed);
            return 0;
        }
        let regions = ring.regions();
        let mut slot = a.cursor;
        let mut got = 0;
        let mut bad = 0u64;
        let mut no_buffer = 0u64;
        while slot != head && got < max {
            let d = ring.desc(slot);
            slot = slot.wrapping_add(1);
            ring.prefetch_desc(slot);
            if d.flags & DESC_FLAG_NEXT == 0 && d.length as usize <= DATA_SIZE {
                // The common case: one descriptor, one Sluice buffer.
                let Some((mem, off)) = regions.locate(d.region, d.offset, d.length) else {
                    bad += 1;
                    continue;
                };
                let Some(mut p) = buffers.alloc() else {
                    no_buffer += 1;
                    continue;
                };
                let len = d.length as usize;
                // `locate` checked the source; a fresh buffer has DATA_SIZE
                // bytes of room, and `len <= DATA_SIZE`.
                if mem.copy_out(off, &mut p.room_mut()[..len]) && p.set_len(len).is_ok() {
                    out.push(p);
                    got += 1;
                } else {
                    buffers.free(p);
                    bad += 1;
                }
                continue;
            }
            // A chain, or a buffer larger than ours: gather, then copy
            // into as many Sluice buffers as it takes.
            self.scratch.clear();
            let mut d = d;
            let mut ok = true;
            loop {
                match regions.locate(d.region, d.offset, d.length) {
                    Some((mem, off))
                        if self.scratch.len() + d.length as usize <= self.max_frame =>
                    {
                        let at = self.scratch.len();
                        self.scratch.resize(at + d.length as usize, 0);
                        ok &= mem.copy_out(off, &mut self.scratch[at..]);
                    }
                    _ => ok = false,
                }
                if d.flags & DESC_FLAG_NEXT == 0 {
                    break;
                }
                if slot == head {
                    // A chain that does not end among the published
                    // descriptors: the client broke it.
                    ok = false;
                    break;
                }
                d = ring.desc(slot);
                slot = slot.wrapping_add(1);
            }
            if !ok {
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
        if slot != a.cursor {
            a.cursor = slot;
            ring.set_tail(slot);
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

impl Driver for MemifRx {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        self.refresh();
        let got = self.receive(buffers, out, max);
        if self.mode == RxMode::Interrupt
            && let Some(a) = self.active.as_mut()
        {
            if got > 0 && !a.masked {
                // Packets flow: poll, and spare the client its kicks.
                a.ring.mask_interrupts(true);
                a.masked = true;
            } else if got == 0 && a.masked {
                // Dry: ask for a kick, clear the old ones, and look once
                // more (a packet published before the unmask was not
                // kicked). The worker may then sleep on the eventfd.
                a.ring.mask_interrupts(false);
                a.masked = false;
                let _ = eventfd_drain(a.ring.eventfd());
                let again = self.receive(buffers, out, max);
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
        match (&self.active, self.mode) {
            (Some(a), RxMode::Interrupt) => Some(a.ring.eventfd().as_raw_fd()),
            _ => None,
        }
    }
}

/// The transmit half of one queue pair: the server-to-client ring, into
/// whose posted buffers packets are copied.
#[derive(Debug)]
pub struct MemifTx {
    slot: Arc<QueueSlot>,
    seen: u64,
    active: Option<TxRing>,
    stats: Arc<MemifStats>,
}

#[derive(Debug)]
struct TxRing {
    ring: Arc<Ring>,
    /// Our `tail`: the next posted buffer to fill.
    cursor: u16,
}

impl MemifTx {
    pub(crate) fn new(slot: Arc<QueueSlot>, stats: Arc<MemifStats>) -> MemifTx {
        MemifTx {
            slot,
            seen: 0,
            active: None,
            stats,
        }
    }

    /// Whether a client's ring is attached (as of the last burst).
    pub fn is_connected(&self) -> bool {
        self.active.is_some()
    }

    fn refresh(&mut self) {
        if let Some(ring) = self.slot.current(&mut self.seen) {
            self.active = ring.map(|ring| TxRing {
                cursor: ring.tail(),
                ring,
            });
        }
    }
}

/// The next usable posted descriptor from `*slot` on: skips (and counts)
/// descriptors whose buffer is not inside a region, marking them empty so
/// the client gets its slot back.
#[inline(always)]
fn next_posted(ring: &Ring, slot: &mut u16, end: u16, bad: &mut u64) -> Option<MemifDesc> {
    while *slot != end {
        let d = ring.desc(*slot);
        if ring
            .regions()
            .locate(d.region, d.offset, d.length)
            .is_some()
        {
            return Some(d);
        }
        *bad += 1;
        ring.set_desc(
            *slot,
            MemifDesc {
                flags: 0,
                length: 0,
                ..d
            },
        );
        *slot = slot.wrapping_add(1);
    }
    None
}

impl Driver for MemifTx {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        self.refresh();
        let Some(a) = self.active.as_mut() else {
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        };
        let ring = &*a.ring;
        let regions = ring.regions();
        let head = ring.head();
        if head.wrapping_sub(a.cursor) > ring.size() {
            self.slot.fault.store(true, Ordering::Relaxed);
            self.stats.bad_rings.fetch_add(1, Ordering::Relaxed);
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        }
        let mut slot = a.cursor;
        let mut unsent = 0;
        let mut bad = 0u64;
        for p in packets.drain(..) {
            let first = slot;
            let mut sent = false;
            'packet: {
                let Some(mut d) = next_posted(ring, &mut slot, head, &mut bad) else {
                    break 'packet;
                };
                // `d.length` is the posted buffer's capacity.
                let mut cap = d.length as usize;
                let mut used = 0usize;
                for seg in p.segments() {
                    let mut src = seg;
                    while !src.is_empty() {
                        if used == cap {
                            // This buffer is full: chain to the next one.
                            ring.set_desc(
                                slot,
                                MemifDesc {
                                    flags: DESC_FLAG_NEXT,
                                    length: used as u32,
                                    ..d
                                },
                            );
                            slot = slot.wrapping_add(1);
                            let Some(nd) = next_posted(ring, &mut slot, head, &mut bad) else {
                                break 'packet;
                            };
                            d = nd;
                            cap = d.length as usize;
                            used = 0;
                        }
                        let n = src.len().min(cap - used);
                        if let Some((mem, off)) = regions.locate(d.region, d.offset, d.length) {
                            mem.copy_in(off + used, &src[..n]);
                        }
                        used += n;
                        src = &src[n..];
                    }
                }
                ring.set_desc(
                    slot,
                    MemifDesc {
                        flags: 0,
                        length: used as u32,
                        ..d
                    },
                );
                slot = slot.wrapping_add(1);
                sent = true;
            }
            if !sent {
                // Out of posted buffers: whatever this packet wrote is
                // not published, and the slots are reused.
                slot = first;
                unsent += 1;
            }
            buffers.free(p);
        }
        if slot != a.cursor {
            a.cursor = slot;
            ring.set_tail(slot);
            if ring.flags_after_publish() & RING_FLAG_MASK_INT == 0 {
                let _ = eventfd_kick(ring.eventfd());
            }
        }
        if unsent > 0 {
            self.stats
                .tx_ring_full
                .fetch_add(unsent as u64, Ordering::Relaxed);
        }
        if bad > 0 {
            self.stats
                .tx_bad_descriptors
                .fetch_add(bad, Ordering::Relaxed);
        }
        unsent
    }
}
