//! A memif peer's memory region, mapped shared: the rings and packet
//! buffers another process writes while Sluice reads them.
//!
//! It is a [`super::mmap::Mapping`]: no Rust reference to these bytes is
//! ever made: ring words are atomics (memif's `head`, `tail` and `flags`
//! are 16-bit), descriptors and packet bytes are copied through raw
//! pointers, and every access is checked against the mapping's length.
//! Whatever the peer writes, Sluice reads and writes only inside the
//! region.
//!
//! The one thing bounds checks cannot stop is the file under the mapping
//! shrinking (pages past its end fault with `SIGBUS`); the memif code maps
//! only files sealed against shrinking, or files the configuration trusts.

use super::Pod;

/// One memif descriptor as it lies in a ring: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct MemifDesc {
    /// `NEXT` (1): the packet continues in the next slot.
    pub flags: u16,
    /// The region the buffer lies in.
    pub region: u16,
    /// Bytes of packet (or, on a ring the peer posts empty buffers to,
    /// the buffer's capacity).
    pub length: u32,
    /// The buffer's offset from the start of its region.
    pub offset: u32,
    /// Unused by Ethernet mode.
    pub metadata: u32,
}

// SAFETY: a repr(C) struct of integers with no padding (2+2+4+4+4 bytes).
unsafe impl Pod for MemifDesc {}

/// A peer's region mapped shared ([`Mapping::peer`]): the same
/// bounds-checked access as a socket's rings.
pub type SharedRegion = super::mmap::Mapping;
