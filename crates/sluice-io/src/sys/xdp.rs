//! An AF_XDP socket whose UMEM is Sluice's own buffer pool, and its four
//! rings mapped.
//!
//! Registering the pool as UMEM is what makes AF_XDP zero-copy for Sluice:
//! the kernel writes received frames straight into pool buffers and sends
//! from them, so a packet crosses from one AF_XDP interface to another
//! without being copied. The pool's buffers are laid out as unaligned
//! chunks (a 2304-byte stride: header, headroom, data), and the kernel puts
//! a frame 256 bytes into its chunk — exactly where a fresh Sluice buffer's
//! data begins.

use std::os::fd::{AsFd, OwnedFd};

use sluice_buf::{DeviceLayout, Pool};

use super::mmap::Mapping;
use super::{Context, KernelError, Pod, bind, get_opt, set_opt, socket};

/// Where one ring's words are in its mapping.
#[derive(Debug)]
pub struct RingMap {
    /// The ring's memory.
    pub map: Mapping,
    /// Offset of the producer index.
    pub producer: usize,
    /// Offset of the consumer index.
    pub consumer: usize,
    /// Offset of the first entry.
    pub desc: usize,
    /// Offset of the flags word (need-wakeup).
    pub flags: usize,
    /// Number of entries, a power of two.
    pub size: u32,
}

/// The four rings of a bound socket.
#[derive(Debug)]
pub struct XskRings {
    /// Buffers we give the kernel to receive into.
    pub fill: RingMap,
    /// Buffers the kernel has finished sending.
    pub completion: RingMap,
    /// Received frames.
    pub rx: RingMap,
    /// Frames to send.
    pub tx: RingMap,
}

/// Ring sizes, each a power of two.
#[derive(Debug, Clone, Copy)]
pub struct RingSizes {
    /// Receive and fill rings.
    pub rx: u32,
    /// Transmit and completion rings.
    pub tx: u32,
}

/// A bound AF_XDP socket and its rings.
#[derive(Debug)]
pub struct XskSocket {
    /// The socket.
    pub fd: OwnedFd,
    /// Its rings.
    pub rings: XskRings,
    /// Whether the kernel accepted zero-copy (else it copies).
    pub zero_copy: bool,
}

fn map_ring(
    fd: &OwnedFd,
    off: &libc::xdp_ring_offset,
    size: u32,
    entry: usize,
    pgoff: u64,
    what: &str,
) -> Result<RingMap, KernelError> {
    let desc = off.desc as usize;
    let len = desc + size as usize * entry;
    let map =
        Mapping::shared(fd.as_fd(), len, pgoff).context(|| format!("mapping the {what} ring"))?;
    let ring = RingMap {
        producer: off.producer as usize,
        consumer: off.consumer as usize,
        flags: off.flags as usize,
        desc,
        size,
        map,
    };
    // Checked once here, so that the fast path's accesses cannot miss.
    if ring.map.u32_at(ring.producer).is_none()
        || ring.map.u32_at(ring.consumer).is_none()
        || ring.map.u32_at(ring.flags).is_none()
    {
        return Err(KernelError::other(
            format!("mapping the {what} ring"),
            "kernel ring offsets outside the mapping",
        ));
    }
    Ok(ring)
}

// SAFETY: a repr(C) struct of integers.
unsafe impl Pod for libc::xdp_ring_offset {}

/// Makes an AF_XDP socket on queue `queue` of device `ifindex`, with the
/// whole of `pool` as its UMEM, and binds it (zero-copy or copy as asked).
///
/// The kernel writes only into buffers that are put on the fill ring and
/// reads only those put on the transmit ring; the driver puts only buffers
/// it has lent ([`sluice_buf::Packet::lend`]) there, so no buffer a
/// `Packet` owns is ever touched by the kernel.
pub fn open(
    ifindex: u32,
    queue: u32,
    pool: &Pool,
    sizes: RingSizes,
    zero_copy: bool,
) -> Result<XskSocket, KernelError> {
    let what = |s: &str| format!("AF_XDP socket on device {ifindex} queue {queue}: {s}");
    for n in [sizes.rx, sizes.tx] {
        if !n.is_power_of_two() || !(64..=32768).contains(&n) {
            return Err(KernelError::other(
                what("ring size"),
                format!("{n} is not a power of two in 64..=32768"),
            ));
        }
    }
    let fd = socket(libc::AF_XDP, libc::SOCK_RAW, 0).context(|| what("socket (needs root)"))?;
    let layout: DeviceLayout = pool.device_layout();
    let reg = libc::xdp_umem_reg {
        addr: layout.base as u64,
        len: layout.len as u64,
        chunk_size: layout.stride as u32,
        headroom: 0,
        flags: libc::XDP_UMEM_UNALIGNED_CHUNK_FLAG,
        tx_metadata_len: 0,
    };
    set_opt(fd.as_fd(), libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
        .context(|| what("registering the buffer pool as UMEM"))?;
    let ring_opts = [
        (libc::XDP_UMEM_FILL_RING, sizes.rx, "fill"),
        (libc::XDP_UMEM_COMPLETION_RING, sizes.tx, "completion"),
        (libc::XDP_RX_RING, sizes.rx, "rx"),
        (libc::XDP_TX_RING, sizes.tx, "tx"),
    ];
    for (opt, n, name) in ring_opts {
        set_opt(fd.as_fd(), libc::SOL_XDP, opt, &(n as libc::c_int))
            .context(|| what(&format!("sizing the {name} ring")))?;
    }
    let off: libc::xdp_mmap_offsets = get_opt(fd.as_fd(), libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
        .context(|| what("reading ring offsets"))?;
    let desc = std::mem::size_of::<libc::xdp_desc>();
    let rings = XskRings {
        fill: map_ring(
            &fd,
            &off.fr,
            sizes.rx,
            8,
            libc::XDP_UMEM_PGOFF_FILL_RING,
            "fill",
        )?,
        completion: map_ring(
            &fd,
            &off.cr,
            sizes.tx,
            8,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING,
            "completion",
        )?,
        rx: map_ring(
            &fd,
            &off.rx,
            sizes.rx,
            desc,
            libc::XDP_PGOFF_RX_RING as u64,
            "rx",
        )?,
        tx: map_ring(
            &fd,
            &off.tx,
            sizes.tx,
            desc,
            libc::XDP_PGOFF_TX_RING as u64,
            "tx",
        )?,
    };
    let addr = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_USE_NEED_WAKEUP
            | if zero_copy {
                libc::XDP_ZEROCOPY
            } else {
                libc::XDP_COPY
            },
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: 0,
    };
    bind(fd.as_fd(), &addr).context(|| {
        what(if zero_copy {
            "binding in zero-copy mode"
        } else {
            "binding in copy mode"
        })
    })?;
    Ok(XskSocket {
        fd,
        rings,
        zero_copy,
    })
}

/// The kernel's drop counters of a socket.
pub fn statistics(fd: &OwnedFd) -> Option<libc::xdp_statistics> {
    get_opt(fd.as_fd(), libc::SOL_XDP, libc::XDP_STATISTICS).ok()
}

/// Whether this host can give Sluice AF_XDP: a socket and an XSKMAP are
/// made and closed again.
pub fn probe() -> Result<(), KernelError> {
    super::bpf::XskMap::new(1)?;
    socket(libc::AF_XDP, libc::SOCK_RAW, 0)
        .map(drop)
        .context(|| "AF_XDP socket (the kernel needs CONFIG_XDP_SOCKETS)".to_string())
}
