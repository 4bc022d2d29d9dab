//! The transmit half: a ring of fixed-size frames, one `sendto` per vector.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use sluice_buf::{BufCache, Packet};
use sluice_graph::Frame;

use super::{
    AfPacketConfig, FRAME_HDR, LEN_AT, LinkWatch, STATUS_AT, bind_device, packet_socket, set_int,
    version_v3,
};
use crate::sys::mmap::Mapping;
use crate::sys::{self, Context, KernelError};
use crate::{Driver, LinkState};

/// Ethernet header bytes the kernel allows beyond the MTU, and the 802.1Q
/// tag it allows on top.
const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const PAGE: usize = 4096;

/// The transmit half of an AF_PACKET interface.
#[derive(Debug)]
pub struct AfPacketTx {
    ring: Mapping,
    fd: OwnedFd,
    frame_size: usize,
    frames: usize,
    /// The next frame to fill: the kernel sends from the same place on.
    head: usize,
    /// Frames written since the last kick that reached the kernel.
    unsent: usize,
    mtu: usize,
    watch: LinkWatch,
}

impl AfPacketTx {
    pub(super) fn open(
        config: &AfPacketConfig,
        mtu: u32,
        watch: LinkWatch,
    ) -> Result<AfPacketTx, KernelError> {
        let name = config.interface.as_str();
        let fd = packet_socket(|| format!("opening transmit socket on {name}"))?;
        version_v3(&fd, name)?;
        // A frame the kernel refuses is skipped and its slot freed, instead
        // of stopping the ring there.
        set_int(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_LOSS, 1, || {
            format!("setting PACKET_LOSS on {name}")
        })?;
        let largest = FRAME_HDR + mtu as usize + ETH_HLEN + VLAN_HLEN;
        let frame_size = largest.div_ceil(2048) * 2048;
        // Blocks of whole pages, holding whole frames.
        let block_size = if frame_size.is_multiple_of(PAGE) {
            frame_size
        } else {
            frame_size * PAGE / gcd(frame_size, PAGE)
        };
        let per_block = block_size / frame_size;
        let blocks = config.tx_frames.div_ceil(per_block);
        let frames = blocks * per_block;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: frames as u32,
            tp_retire_blk_tov: 0,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::set_opt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_TX_RING, &req)
            .context(|| format!("making a {frames}x{frame_size}-byte transmit ring on {name}"))?;
        let ring = Mapping::shared(fd.as_fd(), blocks * block_size, 0)
            .context(|| format!("mapping the transmit ring of {name}"))?;
        // Frames in flight are charged to the send buffer; let the whole
        // ring be in flight (a NIC holds them until transmit completion).
        let want = (frames * frame_size).min(libc::c_int::MAX as usize) as libc::c_int;
        let fdb = fd.as_fd();
        let _ = sys::set_opt(fdb, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &want)
            .or_else(|_| sys::set_opt(fdb, libc::SOL_SOCKET, libc::SO_SNDBUF, &want));
        bind_device(&fd, watch.link.index(), 0, name)?;
        Ok(AfPacketTx {
            ring,
            fd,
            frame_size,
            frames,
            head: 0,
            unsent: 0,
            mtu: mtu as usize,
            watch,
        })
    }

    /// Frames in the transmit ring.
    pub fn ring_frames(&self) -> usize {
        self.frames
    }

    /// The link state as the transmit half last saw it.
    pub fn link_state(&self) -> LinkState {
        self.watch.state
    }

    fn status(&self, frame: usize) -> Option<&AtomicU32> {
        self.ring.u32_at(frame * self.frame_size + STATUS_AT)
    }

    /// The largest frame the kernel takes: the MTU plus the Ethernet
    /// header, plus 4 if the frame carries an 802.1Q tag.
    fn fits(&self, pkt: &Packet) -> bool {
        let len = pkt.total_len();
        let tagged = pkt.data().get(12..14) == Some(&[0x81, 0x00]);
        let limit = self.mtu + ETH_HLEN + if tagged { VLAN_HLEN } else { 0 };
        len >= ETH_HLEN && len <= limit && FRAME_HDR + len <= self.frame_size
    }

    /// Copies `pkt` into the frame at the head and hands the frame to the
    /// kernel. False when that frame is still the kernel's: the ring is full.
    fn place(&mut self, pkt: &Packet) -> bool {
        let Some(status) = self.status(self.head) else {
            return false;
        };
        let s = status.load(Ordering::Acquire);
        if s != libc::TP_STATUS_AVAILABLE && s != libc::TP_STATUS_WRONG_FORMAT {
            return false;
        }
        let base = self.head * self.frame_size;
        let mut at = base + FRAME_HDR;
        for seg in pkt.segments() {
            if !self.ring.copy_in(at, seg) {
                return false;
            }
            at += seg.len();
        }
        self.ring.write(base + LEN_AT, pkt.total_len() as u32);
        status.store(libc::TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.head = (self.head + 1) % self.frames;
        self.unsent += 1;
        true
    }

    /// Tells the kernel to send what the ring holds. On error, returns how
    /// many frames were lost: the device is down or gone, and the frames
    /// waiting are taken back so that nothing stale leaves later.
    fn kick(&mut self) -> usize {
        match sys::kick_tx(self.fd.as_fd()) {
            Ok(()) => {
                self.unsent = 0;
                0
            }
            Err(e) => {
                match e.raw_os_error() {
                    Some(libc::ENXIO) | Some(libc::ENODEV) => self.watch.set(LinkState::Gone),
                    Some(libc::ENETDOWN) => {
                        if self.watch.refresh() == LinkState::Up {
                            // Down and up again in between: try next time.
                            return 0;
                        }
                    }
                    // Anything else leaves the frames queued for the next kick.
                    _ => return 0,
                }
                self.take_back();
                std::mem::take(&mut self.unsent)
            }
        }
    }

    /// Returns the frames still waiting for the kernel to our side, moving
    /// the head back to the first of them, where the kernel will look next.
    /// Only while no `sendto` runs: the kernel reads the ring only then.
    fn take_back(&mut self) {
        for _ in 0..self.frames {
            let prev = (self.head + self.frames - 1) % self.frames;
            let Some(status) = self.status(prev) else {
                break;
            };
            if status
                .compare_exchange(
                    libc::TP_STATUS_SEND_REQUEST,
                    libc::TP_STATUS_AVAILABLE,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                break;
            }
            self.head = prev;
        }
    }

    /// Whether the device may be used: checked again at most every
    /// [`super::LINK_CHECK_EVERY`] while it is not up.
    fn usable(&mut self) -> bool {
        if self.watch.state == LinkState::Up {
            return true;
        }
        if self.watch.due() && self.watch.refresh() == LinkState::Up {
            if let Ok(mtu) = self.watch.link.mtu() {
                self.mtu = mtu as usize;
            }
            return true;
        }
        false
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Driver for AfPacketTx {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        if !self.usable() {
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        }
        let mut failed = 0;
        for pkt in packets.drain_prefetched() {
            if self.watch.state != LinkState::Up || !self.fits(&pkt) {
                failed += 1;
            } else if !self.place(&pkt) {
                // Full: sending what is queued may free slots (a veth
                // frees them as it sends); one more try.
                if self.unsent > 0 {
                    failed += self.kick();
                }
                if self.watch.state != LinkState::Up || !self.place(&pkt) {
                    failed += 1;
                }
            }
            buffers.free(pkt);
        }
        if self.unsent > 0 {
            failed += self.kick();
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_whole_frames_in_whole_pages() {
        assert_eq!(gcd(2048, 4096), 2048);
        assert_eq!(2048 * PAGE / gcd(2048, PAGE), 4096);
        assert_eq!(10240 * PAGE / gcd(10240, PAGE), 20480);
    }
}
