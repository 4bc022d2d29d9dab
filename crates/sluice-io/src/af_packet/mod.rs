//! AF_PACKET: any kernel network device (a veth end, a bridge port, a NIC)
//! as a Sluice interface, through memory-mapped packet rings.
//!
//! Receive uses a TPACKET_V3 ring: the kernel fills blocks of many frames
//! and hands a whole block over at once (or when the block timeout expires),
//! so a burst walks memory that is already ours, with no syscall. Each frame
//! is copied once into a Sluice buffer (ring memory cannot be a buffer: it
//! goes back to the kernel when the block does).
//!
//! Transmit uses a separate socket with a TPACKET_V3 transmit ring. On the
//! transmit side V3 is the V2 ring with V3's header (fixed-size frames, one
//! status word each; no blocks), available since Linux 4.11. It is chosen
//! over V2 so that both halves read and write one header layout; nothing
//! else differs. Frames of a vector are written into the ring and one
//! `sendto` per vector tells the kernel to send them all.
//!
//! Why two sockets, not one with both rings:
//! - the halves are two drivers, owned by the interface's input and output
//!   nodes, possibly on different workers;
//! - the transmit socket is bound with protocol 0, so the kernel never
//!   queues received frames to it;
//! - the receive socket ignores outgoing frames (`PACKET_IGNORE_OUTGOING`),
//!   so it does not see what the transmit half sends.
//!
//! Offloads: the receive socket asks for the virtio-net header
//! (`PACKET_VNET_HDR`, which the kernel writes just before the MAC header
//! on a V3 ring too). A host behind a veth sends TCP with the checksum left
//! partial and in 64 KiB GSO frames; [`crate::offload`] completes the
//! checksums and cuts the frames, so the graph only sees wire frames. What
//! is sent is always complete, so the transmit socket has no vnet header.
//!
//! A VLAN tag that the kernel took out of the frame (it keeps it beside the
//! frame, as NICs do) is put back after the MAC addresses, 802.1Q or
//! 802.1ad as the kernel says.
//!
//! Several receive queues form one `PACKET_FANOUT` group (flow hash), one
//! socket and ring per queue, for as many workers; each queue has its own
//! transmit socket and ring too, so no two workers share one.
//!
//! The device may go down or away under a running driver: both halves then
//! set the interface's [`LinkStatus`], stop sending (packets count as
//! failed) and check the device again at most every 100 ms. A device that
//! comes back up is used again; one that was deleted stays gone (a new
//! device of the same name is another device: open it again).

mod rx;
mod tx;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_wire::MacAddr;

pub use rx::{AfPacketRx, RxCounters};
pub use tx::AfPacketTx;

use crate::sys::link::Link;
use crate::sys::{self, Context, KernelError};
use crate::{LinkState, LinkStatus};

/// How an AF_PACKET interface is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// The kernel device, e.g. `veth0`.
    pub interface: String,
    /// The network namespace the device lives in (`ip netns` name); `None`
    /// for the caller's.
    pub netns: Option<String>,
    /// Receive queues: sockets in one fanout group (flow hash), each its
    /// own driver. 1 means no fanout.
    pub queues: usize,
    /// Bytes of receive ring per queue.
    pub rx_ring_bytes: usize,
    /// Bytes per receive block: a power of two of at least 4 KiB. A frame
    /// must fit in one block, so this must exceed the largest GSO frame
    /// the device hands over (64 KiB plus headers for TCP over veth).
    pub rx_block_bytes: usize,
    /// How long the kernel keeps a partly filled block before handing it
    /// over: the added latency at low rates.
    pub rx_block_timeout: Duration,
    /// Frames in the transmit ring.
    pub tx_frames: usize,
    /// Receive frames for any destination MAC (the device is put in
    /// promiscuous mode for as long as the socket lives).
    pub promiscuous: bool,
}

impl AfPacketConfig {
    /// The defaults for `interface`: one queue, a 4 MiB receive ring of
    /// 128 KiB blocks retired after 1 ms, 2048 transmit frames,
    /// promiscuous.
    pub fn new(interface: &str) -> AfPacketConfig {
        AfPacketConfig {
            interface: interface.to_string(),
            netns: None,
            queues: 1,
            rx_ring_bytes: 4 << 20,
            rx_block_bytes: 128 << 10,
            rx_block_timeout: Duration::from_millis(1),
            tx_frames: 2048,
            promiscuous: true,
        }
    }

    fn check(&self) -> Result<(), KernelError> {
        let what = || format!("af_packet interface {}", self.interface);
        let refuse = |why: String| Err(KernelError::other(what(), why));
        if self.queues == 0 || self.queues > MAX_QUEUES {
            return refuse(format!("queues must be 1 to {MAX_QUEUES}"));
        }
        let block = self.rx_block_bytes;
        if !block.is_power_of_two() || !(MIN_BLOCK..=MAX_BLOCK).contains(&block) {
            return refuse(format!(
                "rx block size {block} must be a power of two from {MIN_BLOCK} to {MAX_BLOCK}"
            ));
        }
        let blocks = self.rx_ring_bytes / block;
        if blocks < 2 || blocks > u32::MAX as usize / (block / rx::FRAME_UNIT) {
            return refuse(format!(
                "rx ring of {} bytes must hold at least two {block}-byte blocks",
                self.rx_ring_bytes
            ));
        }
        let ms = self.rx_block_timeout.as_millis();
        if ms == 0 || ms > 1000 {
            return refuse("rx block timeout must be 1 ms to 1 s".to_string());
        }
        if self.tx_frames < 2 || self.tx_frames > 1 << 20 {
            return refuse("tx frames must be 2 to 1048576".to_string());
        }
        Ok(())
    }
}

/// Most receive queues in one fanout group.
pub const MAX_QUEUES: usize = 64;
const MIN_BLOCK: usize = 4 << 10;
const MAX_BLOCK: usize = 32 << 20;

/// An opened AF_PACKET interface: its receive queues and its transmit
/// half, each a [`crate::Driver`] to hand to a node.
#[derive(Debug)]
pub struct AfPacket {
    /// One receive driver per queue.
    pub rx: Vec<AfPacketRx>,
    /// One transmit driver per queue, so that each worker sends on a
    /// socket and ring of its own.
    pub tx: Vec<AfPacketTx>,
    /// The link state that every half keeps up to date.
    pub status: Arc<LinkStatus>,
    /// The device's MAC address.
    pub mac: MacAddr,
    /// The device's MTU when opened.
    pub mtu: u32,
}

impl AfPacket {
    /// Attaches to the device of `config`: `queues` receive sockets and as
    /// many transmit sockets, rings mapped, in the device's namespace.
    pub fn open(config: &AfPacketConfig) -> Result<AfPacket, KernelError> {
        config.check()?;
        sys::netns::run_in(config.netns.as_deref(), || open_here(config))
    }
}

fn open_here(config: &AfPacketConfig) -> Result<AfPacket, KernelError> {
    let link = Arc::new(Link::open(&config.interface)?);
    let mac = link.mac()?;
    let mtu = link.mtu()?;
    let status = LinkStatus::new();
    status.set(link.state());
    let mut rx = Vec::with_capacity(config.queues);
    let mut group = None;
    for queue in 0..config.queues {
        let fanout = match (config.queues, group) {
            (1, _) => rx::Fanout::Alone,
            (_, None) => rx::Fanout::Create,
            (_, Some(id)) => rx::Fanout::Join(id),
        };
        let watch = LinkWatch::new(link.clone(), status.clone());
        let half = AfPacketRx::open(config, queue, fanout, watch)?;
        group = group.or(half.fanout_group());
        rx.push(half);
    }
    let tx = (0..config.queues)
        .map(|_| AfPacketTx::open(config, mtu, LinkWatch::new(link.clone(), status.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AfPacket {
        rx,
        tx,
        status,
        mac,
        mtu,
    })
}

/// How often a half that has nothing to do, or that sees its device down,
/// asks the kernel about the device.
const LINK_CHECK_EVERY: Duration = Duration::from_millis(100);

/// One half's view of the device, mirrored into the interface's shared
/// [`LinkStatus`].
#[derive(Debug)]
struct LinkWatch {
    link: Arc<Link>,
    status: Arc<LinkStatus>,
    /// What this half last saw.
    state: LinkState,
    next_check: Instant,
}

impl LinkWatch {
    fn new(link: Arc<Link>, status: Arc<LinkStatus>) -> LinkWatch {
        LinkWatch {
            state: status.state(),
            link,
            status,
            next_check: Instant::now() + LINK_CHECK_EVERY,
        }
    }

    /// Whether a check is due; if so, the next is scheduled.
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next_check {
            return false;
        }
        self.next_check = now + LINK_CHECK_EVERY;
        true
    }

    /// Asks the kernel; a deleted device stays gone without asking again.
    fn refresh(&mut self) -> LinkState {
        if self.state != LinkState::Gone {
            let state = self.link.state();
            self.set(state);
        }
        self.state
    }

    fn set(&mut self, state: LinkState) {
        if state != self.state {
            self.state = state;
            self.status.set(state);
        }
    }
}

/// A packet socket that receives nothing until bound with a protocol.
fn packet_socket(what: impl FnOnce() -> String) -> Result<OwnedFd, KernelError> {
    sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0).context(what)
}

fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
    what: impl FnOnce() -> String,
) -> Result<(), KernelError> {
    sys::set_opt(fd, level, name, &value).context(what)
}

/// Binds to the device: `protocol` (host order) 0 for a socket that only
/// sends, `ETH_P_ALL` for one that receives everything.
fn bind_device(fd: &OwnedFd, ifindex: u32, protocol: u16, name: &str) -> Result<(), KernelError> {
    let mut addr: libc::sockaddr_ll = sys::Pod::zeroed();
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as libc::c_int;
    sys::bind(fd.as_fd(), &addr).context(|| format!("binding packet socket to {name}"))
}

fn version_v3(fd: &OwnedFd, name: &str) -> Result<(), KernelError> {
    set_int(
        fd.as_fd(),
        libc::SOL_PACKET,
        libc::PACKET_VERSION,
        libc::tpacket_versions::TPACKET_V3 as libc::c_int,
        || format!("asking for TPACKET_V3 rings on {name}"),
    )
}

/// Bytes of the V3 frame header before the `sockaddr_ll` that follows it
/// (`TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`).
const FRAME_HDR: usize = 48;
/// Offset of the status word in a V3 frame header.
const STATUS_AT: usize = 20;
/// Offset of `tp_len` in a V3 frame header.
const LEN_AT: usize = 16;

const _: () = assert!(size_of::<libc::tpacket3_hdr>() == FRAME_HDR);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_bad_sizes_are_refused() {
        let c = AfPacketConfig::new("veth0");
        assert!(c.check().is_ok());
        let bad = [
            AfPacketConfig {
                queues: 0,
                ..c.clone()
            },
            AfPacketConfig {
                rx_block_bytes: 100_000,
                ..c.clone()
            },
            AfPacketConfig {
                rx_ring_bytes: c.rx_block_bytes,
                ..c.clone()
            },
            AfPacketConfig {
                rx_block_timeout: Duration::ZERO,
                ..c.clone()
            },
            AfPacketConfig {
                tx_frames: 1,
                ..c.clone()
            },
        ];
        for b in bad {
            let e = b.check().unwrap_err();
            assert!(e.to_string().contains("veth0"), "{e}");
        }
    }
}
