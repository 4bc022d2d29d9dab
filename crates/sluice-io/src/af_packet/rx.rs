//! The receive half: a TPACKET_V3 ring walked block by block.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::Ordering;

use sluice_buf::{BufCache, DATA_SIZE, Packet};
use sluice_graph::{Frame, InputState};

use super::{
    AfPacketConfig, FRAME_HDR, LinkWatch, bind_device, packet_socket, set_int, version_v3,
};
use crate::offload::{self, VnetHdr};
use crate::sys::mmap::Mapping;
use crate::sys::{self, Context, KernelError};
use crate::{Driver, LinkState, RxState};

/// The frame size given to the kernel. V3 packs frames of any length into
/// a block; this only has to divide the block.
pub(super) const FRAME_UNIT: usize = 2048;

/// Offsets in a block descriptor (`struct tpacket_block_desc`).
const BLOCK_STATUS_AT: usize = 8;
const BLOCK_NUM_PKTS_AT: usize = 12;
const BLOCK_FIRST_AT: usize = 16;

/// Busy bursts between two looks at the clock for housekeeping.
const BURSTS_PER_CHECK: u32 = 64;

/// How the receive socket of a queue joins the others.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fanout {
    /// The only queue.
    Alone,
    /// The first of several: makes a group with an id the kernel picks.
    Create,
    /// Joins the group with this id.
    Join(u16),
}

/// What the receive half has seen since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCounters {
    /// Frames taken from the ring (before GSO cutting).
    pub frames: u64,
    /// Packets handed to the graph.
    pub packets: u64,
    /// GSO frames cut into segments.
    pub gso_frames: u64,
    /// Frames whose partial checksum was completed.
    pub checksums: u64,
    /// Frames whose VLAN tag was put back.
    pub vlan_tags: u64,
    /// Frames the ring held only in part (longer than a block).
    pub truncated: u64,
    /// Frames with offsets outside their block, or offloads that could not
    /// be done.
    pub malformed: u64,
    /// Frames dropped for want of a buffer.
    pub no_buffer: u64,
    /// Frames the kernel dropped because the ring was full.
    pub kernel_drops: u64,
}

/// Where the walk is inside a block that the kernel has handed over.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Offset of the next frame header in the mapping.
    frame: usize,
    /// Frames left in the block, that one included.
    left: u32,
}

/// One receive queue of an AF_PACKET interface.
pub struct AfPacketRx {
    ring: Mapping,
    fd: OwnedFd,
    block_size: usize,
    blocks: usize,
    /// The block the walk is in or waits for.
    block: usize,
    cursor: Option<Cursor>,
    /// A frame too big for one buffer, or a GSO frame, is copied here to be
    /// cut or chained.
    scratch: Box<[u8]>,
    queue: usize,
    group: Option<u16>,
    watch: LinkWatch,
    bursts: u32,
    drops: u64,
    counters: RxCounters,
}

impl std::fmt::Debug for AfPacketRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AfPacketRx")
            .field("interface", &self.watch.link.name())
            .field("queue", &self.queue)
            .field("fanout_group", &self.group)
            .field(
                "blocks",
                &format_args!("{}x{}", self.blocks, self.block_size),
            )
            .field("block", &self.block)
            .field("link", &self.watch.state)
            .field("counters", &self.counters)
            .finish()
    }
}

impl AfPacketRx {
    pub(super) fn open(
        config: &AfPacketConfig,
        queue: usize,
        fanout: Fanout,
        watch: LinkWatch,
    ) -> Result<AfPacketRx, KernelError> {
        let name = config.interface.as_str();
        let ifindex = watch.link.index();
        let fd = packet_socket(|| format!("opening receive socket {queue} on {name}"))?;
        version_v3(&fd, name)?;
        set_int(
            fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            1,
            || format!("asking for virtio-net headers on {name}"),
        )?;
        set_int(
            fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            1,
            || format!("ignoring outgoing frames on {name}"),
        )?;
        let block_size = config.rx_block_bytes;
        let blocks = config.rx_ring_bytes / block_size;
        let req = libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: FRAME_UNIT as u32,
            tp_frame_nr: (blocks * (block_size / FRAME_UNIT)) as u32,
            tp_retire_blk_tov: config.rx_block_timeout.as_millis() as u32,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        sys::set_opt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .context(|| format!("making a {blocks}x{block_size}-byte receive ring on {name}"))?;
        let ring = Mapping::shared(fd.as_fd(), blocks * block_size, 0)
            .context(|| format!("mapping the receive ring of {name}"))?;
        bind_device(&fd, ifindex, libc::ETH_P_ALL as u16, name)?;
        let group = join_fanout(&fd, fanout, name)?;
        if config.promiscuous && queue == 0 {
            let mut mreq: libc::packet_mreq = sys::Pod::zeroed();
            mreq.mr_ifindex = ifindex as libc::c_int;
            mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
            sys::set_opt(
                fd.as_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                &mreq,
            )
            .context(|| format!("putting {name} in promiscuous mode"))?;
        }
        Ok(AfPacketRx {
            ring,
            fd,
            block_size,
            blocks,
            block: 0,
            cursor: None,
            scratch: vec![0; block_size].into_boxed_slice(),
            queue,
            group,
            watch,
            bursts: 0,
            drops: 0,
            counters: RxCounters::default(),
        })
    }

    /// The queue number, 0 to `queues - 1`.
    pub fn queue(&self) -> usize {
        self.queue
    }

    /// The fanout group id, when there are several queues.
    pub fn fanout_group(&self) -> Option<u16> {
        self.group
    }

    /// What this queue has seen so far.
    pub fn counters(&self) -> RxCounters {
        self.counters
    }

    /// The link state as this queue last saw it.
    pub fn link_state(&self) -> LinkState {
        self.watch.state
    }

    fn block_status(&self) -> Option<&std::sync::atomic::AtomicU32> {
        self.ring
            .u32_at(self.block * self.block_size + BLOCK_STATUS_AT)
    }

    /// The cursor in the current block, opening it if the kernel has
    /// handed it over.
    fn cursor(&mut self) -> Option<Cursor> {
        if self.cursor.is_none() {
            let status = self.block_status()?.load(Ordering::Acquire);
            if status & libc::TP_STATUS_USER == 0 {
                return None;
            }
            let base = self.block * self.block_size;
            let left = self.ring.read::<u32>(base + BLOCK_NUM_PKTS_AT).unwrap_or(0);
            let first = self.ring.read::<u32>(base + BLOCK_FIRST_AT).unwrap_or(0);
            self.cursor = Some(Cursor {
                frame: base + first as usize,
                left,
            });
            let next = (self.block + 1) % self.blocks;
            self.ring.prefetch(next * self.block_size);
        }
        self.cursor
    }

    /// Gives the current block back to the kernel and moves to the next.
    fn release_block(&mut self) {
        if let Some(s) = self.block_status() {
            s.store(libc::TP_STATUS_KERNEL, Ordering::Release);
        }
        self.block = (self.block + 1) % self.blocks;
        self.cursor = None;
    }

    /// Drops the rest of the current block: its frame chain is broken.
    fn abandon_block(&mut self, left: u32) {
        self.count_drops(u64::from(left), |c| &mut c.malformed);
        self.release_block();
    }

    fn count_drops(&mut self, n: u64, which: impl FnOnce(&mut RxCounters) -> &mut u64) {
        *which(&mut self.counters) += n;
        self.drops += n;
    }

    /// Kernel drops, link state, a pending socket error: a few syscalls,
    /// at most every [`super::LINK_CHECK_EVERY`].
    fn housekeeping(&mut self) {
        if self.watch.state == LinkState::Gone || !self.watch.due() {
            return;
        }
        let fd = self.fd.as_fd();
        let stats =
            sys::get_opt::<libc::tpacket_stats_v3>(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS);
        // A device going down leaves ENETDOWN on the socket, which makes
        // poll report it forever; reading it clears it.
        let _ = sys::get_opt::<libc::c_int>(fd, libc::SOL_SOCKET, libc::SO_ERROR);
        if let Ok(s) = stats {
            self.count_drops(u64::from(s.tp_drops), |c| &mut c.kernel_drops);
        }
        self.watch.refresh();
    }

    /// Takes the frame at `at` (whose header is `h`), appending what it
    /// becomes to `out`. `room` is how many packets the burst still takes;
    /// a burst not `started` takes a GSO frame whatever its segments.
    fn take_frame(
        &mut self,
        at: usize,
        h: &libc::tpacket3_hdr,
        buffers: &mut BufCache,
        out: &mut Frame,
        room: usize,
        started: bool,
    ) -> Taken {
        let block_end = self.block * self.block_size + self.block_size;
        let len = h.tp_snaplen as usize;
        let mac = at + usize::from(h.tp_mac);
        if h.tp_snaplen < h.tp_len {
            return Taken::Dropped(Loss::Truncated);
        }
        if usize::from(h.tp_mac) < FRAME_HDR + VnetHdr::LEN || mac + len > block_end || len < 14 {
            return Taken::Dropped(Loss::Malformed);
        }
        let outgoing = self
            .ring
            .read::<libc::sockaddr_ll>(at + FRAME_HDR)
            .is_some_and(|sll| sll.sll_pkttype == libc::PACKET_OUTGOING);
        if outgoing {
            return Taken::Skipped;
        }
        let mut raw = [0u8; VnetHdr::LEN];
        self.ring.copy_out(mac - VnetHdr::LEN, &mut raw);
        let vnet = VnetHdr::parse(&raw).unwrap_or(VnetHdr::NONE);
        if vnet.is_gso() && started {
            // An upper bound: the frame's length counts its headers too.
            let segments = len.div_ceil(usize::from(vnet.gso_size).max(1));
            if segments > room {
                return Taken::NoRoom;
            }
        }
        let before = out.len();
        if !vnet.is_gso() && len <= DATA_SIZE {
            let Some(mut pkt) = buffers.alloc() else {
                return Taken::Dropped(Loss::NoBuffer);
            };
            let copied =
                self.ring.copy_out(mac, &mut pkt.room_mut()[..len]) && pkt.set_len(len).is_ok();
            let complete = copied
                && (!vnet.needs_csum()
                    || offload::complete_checksum(
                        pkt.data_mut(),
                        usize::from(vnet.csum_start),
                        usize::from(vnet.csum_offset),
                    ));
            if !complete {
                buffers.free(pkt);
                return Taken::Dropped(Loss::Malformed);
            }
            out.push(pkt);
        } else {
            let frame = &mut self.scratch[..len];
            if !self.ring.copy_out(mac, frame) {
                return Taken::Dropped(Loss::Malformed);
            }
            match offload::receive(&vnet, frame, buffers, out) {
                Ok(_) => {}
                Err(offload::OffloadError::NoBuffer) => return Taken::Dropped(Loss::NoBuffer),
                Err(_) => return Taken::Dropped(Loss::Malformed),
            }
        }
        let mut vlan = false;
        if h.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
            let tpid = if h.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                h.hv1.tp_vlan_tpid
            } else {
                ETH_P_8021Q
            };
            let tci = h.hv1.tp_vlan_tci as u16;
            let mut i = before;
            while i < out.len() {
                if restore_vlan(&mut out[i], tpid, tci) {
                    i += 1;
                } else {
                    buffers.free(out.remove(i));
                }
            }
            if out.len() < before + 1 {
                return Taken::Dropped(Loss::Malformed);
            }
            vlan = true;
        }
        Taken::Delivered {
            gso: vnet.is_gso(),
            checksum: vnet.needs_csum(),
            vlan,
        }
    }
}

const ETH_P_8021Q: u16 = 0x8100;

/// Puts a VLAN tag back after the MAC addresses, in the headroom: the
/// addresses move 4 bytes forward, nothing else moves.
fn restore_vlan(pkt: &mut Packet, tpid: u16, tci: u16) -> bool {
    if pkt.len() < 12 || pkt.prepend(4).is_err() {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&tpid.to_be_bytes());
    d[14..16].copy_from_slice(&tci.to_be_bytes());
    true
}

/// What became of one frame of the ring.
enum Taken {
    /// Appended to the burst.
    Delivered {
        gso: bool,
        checksum: bool,
        vlan: bool,
    },
    /// Not for us (sent on this device, by anyone): not a drop.
    Skipped,
    /// Counted and dropped.
    Dropped(Loss),
    /// Its segments would overflow the burst; taken by the next one.
    NoRoom,
}

enum Loss {
    Truncated,
    Malformed,
    NoBuffer,
}

fn join_fanout(fd: &OwnedFd, fanout: Fanout, name: &str) -> Result<Option<u16>, KernelError> {
    let hash = libc::PACKET_FANOUT_HASH;
    let (id, flags) = match fanout {
        Fanout::Alone => return Ok(None),
        Fanout::Create => (0, libc::PACKET_FANOUT_FLAG_UNIQUEID),
        Fanout::Join(id) => (id, 0),
    };
    // The group itself must ignore outgoing frames: with fanout, the
    // group's hook receives, not the socket's. Kernels before 6.8 refuse
    // the flag; the walk drops outgoing frames then.
    let with = |extra: libc::c_uint| {
        let arg = libc::c_int::from(id) | (((hash | flags | extra) as libc::c_int) << 16);
        sys::set_opt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
    };
    with(libc::PACKET_FANOUT_FLAG_IGNORE_OUTGOING)
        .or_else(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => with(0),
            _ => Err(e),
        })
        .context(|| format!("joining fanout group {id} on {name}"))?;
    let got = sys::get_opt::<libc::c_int>(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_FANOUT)
        .context(|| format!("reading the fanout group of {name}"))?;
    Ok(Some((got & 0xffff) as u16))
}

impl Driver for AfPacketRx {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> RxState {
        let start = out.len();
        let max = max.max(1);
        while out.len() - start < max {
            let Some(cur) = self.cursor() else { break };
            if cur.left == 0 {
                self.release_block();
                continue;
            }
            let Some(h) = self.ring.read::<libc::tpacket3_hdr>(cur.frame) else {
                self.abandon_block(cur.left);
                continue;
            };
            let next = cur.frame + h.tp_next_offset as usize;
            let block_end = (self.block + 1) * self.block_size;
            if cur.left > 1 {
                // The next header and the start of its frame, while this
                // one is copied.
                self.ring.prefetch(next);
                self.ring.prefetch(next + 64);
            }
            let room = max - (out.len() - start);
            match self.take_frame(cur.frame, &h, buffers, out, room, out.len() > start) {
                Taken::NoRoom => break,
                Taken::Delivered {
                    gso,
                    checksum,
                    vlan,
                } => {
                    let c = &mut self.counters;
                    c.frames += 1;
                    c.gso_frames += u64::from(gso);
                    c.checksums += u64::from(checksum && !gso);
                    c.vlan_tags += u64::from(vlan);
                }
                Taken::Skipped => {}
                Taken::Dropped(why) => {
                    self.counters.frames += 1;
                    self.count_drops(1, |c| match why {
                        Loss::Truncated => &mut c.truncated,
                        Loss::Malformed => &mut c.malformed,
                        Loss::NoBuffer => &mut c.no_buffer,
                    });
                }
            }
            let left = cur.left - 1;
            if left > 0 && (h.tp_next_offset == 0 || next >= block_end) {
                self.abandon_block(left);
                continue;
            }
            self.cursor = Some(Cursor { frame: next, left });
            if left == 0 {
                // Back to the kernel at once, not on the next burst.
                self.release_block();
            }
        }
        let n = out.len() - start;
        self.counters.packets += n as u64;
        self.bursts = self.bursts.wrapping_add(1);
        if n == 0 || self.bursts.is_multiple_of(BURSTS_PER_CHECK) {
            self.housekeeping();
        }
        if n == 0 {
            InputState::Idle
        } else {
            InputState::Busy(n)
        }
    }

    fn take_rx_drops(&mut self) -> u64 {
        std::mem::take(&mut self.drops)
    }

    fn wait_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }
}
