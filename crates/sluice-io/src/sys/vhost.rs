//! What a vhost-user frontend shares with Sluice: the guest's memory
//! regions, mapped from the descriptors it passes, and the split
//! virtqueue's plain-data records that lie in them.
//!
//! A region is a [`super::mmap::Mapping`]: no Rust reference to guest
//! memory is ever made; ring indices are atomics, descriptors and packet
//! bytes are copied through raw pointers, and every access is checked
//! against the mapping's length. Whatever the guest writes, Sluice reads
//! and writes only inside the regions.
//!
//! As with memif, the one thing bounds checks cannot stop is the file
//! under a mapping shrinking (pages past its new end fault with
//! `SIGBUS`). The guest cannot do that, only the frontend process
//! (QEMU seals its memfds; DPDK's virtio-user does not), so the vhost-user
//! code can be told to map sealed files only.

use super::Pod;

/// One split-virtqueue descriptor (virtio 1.x, 2.6.5): 16 bytes,
/// little-endian on the wire, which is the host's order on every target
/// Sluice builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct VirtqDesc {
    /// Guest-physical address of the buffer.
    pub addr: u64,
    /// Bytes of the buffer.
    pub len: u32,
    /// `NEXT` (1), `WRITE` (2), `INDIRECT` (4).
    pub flags: u16,
    /// The next descriptor of the chain, when `NEXT` is set.
    pub next: u16,
}

// SAFETY: a repr(C) struct of integers with no padding (8+4+2+2 bytes).
unsafe impl Pod for VirtqDesc {}

/// One element of the used ring: the head of a chain given back, and the
/// bytes the device wrote into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct VirtqUsedElem {
    /// The chain's head descriptor.
    pub id: u32,
    /// Bytes written into the chain (0 for a chain only read).
    pub len: u32,
}

// SAFETY: a repr(C) struct of two u32, no padding.
unsafe impl Pod for VirtqUsedElem {}

/// A guest memory region mapped shared ([`super::mmap::Mapping::peer`]).
pub type GuestRegion = super::mmap::Mapping;

#[cfg(target_endian = "big")]
compile_error!("vhost-user rings are little-endian; Sluice reads them in host order");
