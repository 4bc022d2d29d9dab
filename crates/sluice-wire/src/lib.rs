//! Zero-copy, bounds-checked packet header views for Sluice.
//!
//! Every header type in this crate is a thin view `Xxx<T: AsRef<[u8]>>` over a
//! buffer that *starts* at that header. Nothing is copied or allocated: getters
//! read big-endian fields straight from fixed offsets and setters (available
//! when `T: AsMut<[u8]>`) write them in place. This is what a forwarder wants on
//! the hot path: parse a header, look at two or three fields, patch one, move on.
//!
//! # Constructing a view
//!
//! * `Xxx::new_checked(buf)` validates the buffer (its length and every length
//!   or version field that the accessors depend on) and returns an [`Error`]
//!   saying what is wrong if it is malformed. A malformed packet is always an
//!   `Err`, never a panic.
//! * `Xxx::new_unchecked(buf)` does no validation at all. It exists for buffers
//!   that the caller has already validated or is about to fill in (building a
//!   packet from scratch).
//!
//! # The invariant
//!
//! **After `new_checked` succeeds, no getter or setter of that view panics.**
//!
//! Variable-length slices (`payload()`, `options()`, the region a checksum is
//! computed over) are additionally clamped to the buffer, so they stay
//! panic-free even if a setter later rewrites a length field to a value that no
//! longer fits.
//!
//! # Panics
//!
//! Views made with `new_unchecked` on a buffer shorter than the fixed header
//! panic (index out of bounds) when a getter or setter touches a missing byte.
//! Call `check_len()` (or use `new_checked`) to rule that out.
//!
//! # Checksums
//!
//! Checksums are never verified implicitly: `new_checked` checks structure
//! only, and `verify_checksum*` / `fill_checksum*` are separate calls, so a
//! router that only rewrites the TTL can skip the full verification and patch
//! the checksum incrementally (see [`checksum::update_u16`] and
//! [`ipv4::Ipv4Packet::decrement_ttl_incremental`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod arp;
pub mod checksum;
mod error;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket};
pub use error::Error;
pub use ethernet::{EtherType, EthernetFrame, L2Info, MacAddr, MacAddrParseError, VlanTag};
pub use icmpv4::{Icmpv4Packet, Icmpv4Type};
pub use icmpv6::{Icmpv6Packet, Icmpv6Type};
pub use ip::IpProtocol;
pub use ipv4::Ipv4Packet;
pub use ipv6::{ExtHeader, ExtHeaders, Ipv6Fragment, Ipv6Packet, UpperLayer};
pub use tcp::{TcpFlags, TcpSegment};
pub use udp::UdpDatagram;

/// Read a big-endian `u16` at `at`. Panics only if the buffer is too short,
/// which `new_checked` rules out for every fixed offset used in this crate.
#[inline(always)]
pub(crate) fn read_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Read a big-endian `u32` at `at`.
#[inline(always)]
pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Write a big-endian `u16` at `at`.
#[inline(always)]
pub(crate) fn write_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Write a big-endian `u32` at `at`.
#[inline(always)]
pub(crate) fn write_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// `&b[start..end]` with both ends clamped to the buffer (and `start <= end`),
/// so a length field rewritten by a setter can never make a slice getter panic.
#[inline(always)]
pub(crate) fn clamp(b: &[u8], start: usize, end: usize) -> &[u8] {
    let end = end.min(b.len());
    let start = start.min(end);
    &b[start..end]
}

/// Mutable counterpart of [`clamp`].
#[inline(always)]
pub(crate) fn clamp_mut(b: &mut [u8], start: usize, end: usize) -> &mut [u8] {
    let end = end.min(b.len());
    let start = start.min(end);
    &mut b[start..end]
}
