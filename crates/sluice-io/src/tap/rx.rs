//! The receive half: frames from the host, offloads finished.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;

use sluice_buf::{BufCache, DATA_SIZE, Packet};
use sluice_graph::{Frame, InputState};

use super::{LinkWatch, Tap, VNET_HDR_LEN};
use crate::offload::{self, VnetHdr};
use crate::sys::tun::readv_nonblocking;
use crate::{Driver, LinkState};

/// The largest frame a host hands over: a 64 KiB TCP segment (IP length
/// up to 65535) behind Ethernet and two VLAN tags, rounded up. A read that
/// fills it all was cut short.
const MAX_FRAME: usize = 65536 + 1024;

/// Frames from the TAP's host into Sluice (`<name>-input`).
#[derive(Debug)]
pub struct TapRx {
    tap: Arc<Tap>,
    watch: LinkWatch,
    /// Where a frame that does not fit one buffer (a GSO segment, a jumbo
    /// frame) is gathered: its first bytes land in a packet buffer, the
    /// rest here, and they are joined here when needed.
    scratch: Box<[u8]>,
    drops: u64,
    stats: TapRxStats,
}

/// What the host handed over, counted since the TAP was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapRxStats {
    /// Frames read.
    pub frames: u64,
    /// Of those, TCP segments of up to 64 KiB that Sluice cut (GSO).
    pub gso: u64,
    /// Of those, frames whose checksum Sluice completed (GSO excluded).
    pub partial_csum: u64,
}

/// What one read brought.
enum Read {
    /// Nothing waiting (or the device failed: the watch knows).
    Empty,
    /// The frame fits the packet's buffer, which now holds it.
    InBuffer(VnetHdr, usize),
    /// The frame is longer: it is whole in the scratch area.
    InScratch(VnetHdr, usize),
    /// A frame that cannot be taken (cut short, no header): a drop.
    Bad,
}

impl TapRx {
    pub(super) fn new(tap: Arc<Tap>) -> TapRx {
        TapRx {
            tap,
            watch: LinkWatch::new(),
            scratch: vec![0u8; MAX_FRAME].into_boxed_slice(),
            drops: 0,
            stats: TapRxStats::default(),
        }
    }

    /// What the host handed over so far.
    pub fn stats(&self) -> TapRxStats {
        self.stats
    }

    /// The device.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    /// One frame: straight into `pkt`'s buffer when it fits (no copy), else
    /// into the scratch area.
    fn read(&mut self, pkt: &mut Packet) -> Read {
        let mut hdr = [0u8; VNET_HDR_LEN];
        let room = pkt.room_mut();
        let first = room.len().min(DATA_SIZE);
        let (room, _) = room.split_at_mut(first);
        let mut bufs = [
            IoSliceMut::new(&mut hdr),
            IoSliceMut::new(room),
            IoSliceMut::new(&mut self.scratch[first..]),
        ];
        let n = match readv_nonblocking(self.tap.fd.as_fd(), &mut bufs) {
            Ok(Some(n)) => n,
            Ok(None) => return Read::Empty,
            Err(e) => {
                self.watch.fault(&self.tap, &e);
                return Read::Empty;
            }
        };
        let Some(len) = n.checked_sub(VNET_HDR_LEN) else {
            return Read::Bad;
        };
        let Some(vh) = VnetHdr::parse(&hdr) else {
            return Read::Bad;
        };
        self.stats.frames += 1;
        if vh.is_gso() {
            self.stats.gso += 1;
        } else if vh.needs_csum() {
            self.stats.partial_csum += 1;
        }
        if len >= MAX_FRAME {
            return Read::Bad;
        }
        if len <= first && !vh.is_gso() {
            return Read::InBuffer(vh, len);
        }
        let copied = len.min(first);
        self.scratch[..copied].copy_from_slice(&pkt.room_mut()[..copied]);
        Read::InScratch(vh, len)
    }
}

impl Driver for TapRx {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> InputState {
        if !self.watch.usable(&self.tap) {
            return InputState::Idle;
        }
        let start = out.len();
        // One buffer is read into at a time; when the frame went to the
        // scratch area instead, the same buffer takes the next read.
        let mut spare: Option<Packet> = None;
        // A GSO frame may bring more segments than `max` has room for;
        // they all go (the graph splits long queues into vectors).
        while out.len() - start < max {
            let Some(mut pkt) = spare.take().or_else(|| buffers.alloc()) else {
                // Pool empty: the frames wait in the kernel's queue until
                // buffers come back.
                break;
            };
            match self.read(&mut pkt) {
                Read::Empty => {
                    spare = Some(pkt);
                    break;
                }
                Read::InBuffer(vh, len) => {
                    let ok = pkt.set_len(len).is_ok()
                        && (!vh.needs_csum()
                            || offload::complete_checksum(
                                pkt.data_mut(),
                                usize::from(vh.csum_start),
                                usize::from(vh.csum_offset),
                            ));
                    if ok {
                        out.push(pkt);
                    } else {
                        self.drops += 1;
                        spare = Some(pkt);
                    }
                }
                Read::InScratch(vh, len) => {
                    spare = Some(pkt);
                    if offload::receive(&vh, &self.scratch[..len], buffers, out).is_err() {
                        self.drops += 1;
                    }
                }
                Read::Bad => {
                    self.drops += 1;
                    spare = Some(pkt);
                }
            }
        }
        if let Some(p) = spare {
            buffers.free(p);
        }
        match out.len() - start {
            0 => InputState::Idle,
            n => InputState::Busy(n),
        }
    }

    fn take_rx_drops(&mut self) -> u64 {
        std::mem::take(&mut self.drops)
    }

    /// The TAP's descriptor while the device exists; none once it is gone
    /// (a detached descriptor polls as always ready).
    fn wait_fd(&self) -> Option<RawFd> {
        (self.tap.status.state() != LinkState::Gone).then(|| self.tap.fd.as_raw_fd())
    }
}
