//! What the forwarder sends as a host: echo replies, ICMP errors, ARP and
//! Neighbour Discovery.
//!
//! Pure functions over [`Packet`]s, no graph nodes: the nodes that answer a
//! ping, report an expired TTL or resolve a next hop call them. Each one
//! rewrites the packet it is given in place where it can (a reply reuses
//! the request's buffer; an error prepends its headers in the headroom and
//! truncates the offending packet behind them) and returns a [`HostError`]
//! on anything malformed or forbidden, so that the caller can count the drop
//! by reason and free the packet. Nothing here panics on any input bytes, and
//! every check happens before the first byte is changed: a refused packet is
//! left exactly as it came.
//!
//! IP functions take packets that start at the IP header (the Ethernet
//! header stripped); ARP and ND functions take and make whole Ethernet
//! frames. Errors are worth [rate-limiting](RateLimiter) (RFC 1812 4.3.2.8,
//! RFC 4443 2.4(f)); that is the caller's job, with one limiter per worker.

pub mod arp;
pub mod icmp4;
pub mod icmp6;
pub mod nd;
pub mod rate;

use std::net::{Ipv4Addr, Ipv6Addr};

use sluice_buf::{BufError, Packet};
use sluice_wire::checksum;

pub use arp::ArpInfo;
pub use icmp4::Icmp4Error;
pub use icmp6::Icmp6Error;
pub use nd::{NaFlags, NdInfo, NdKind};
pub use rate::RateLimiter;

/// Why a host function refused a packet. Every variant is a reason to drop
/// the packet and count it; none is a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Too short, or a version or length field disagrees with the bytes.
    #[error("malformed packet: {0}")]
    Malformed(#[from] sluice_wire::Error),
    /// A checksum did not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// Well-formed, but breaks a rule of its protocol (an ND message with a
    /// hop limit below 255, an ARP sender with a group MAC address, ...).
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Not the kind of message the function handles (an echo reply given to
    /// `echo_reply`, an IPv6 frame given to the ARP parser, ...).
    #[error("not {0}")]
    WrongKind(&'static str),
    /// A request for an address that is not the one we answer for.
    #[error("not for us: {0}")]
    NotForUs(&'static str),
    /// The rules forbid sending this message (RFC 1812 4.3.2.7, RFC 4443
    /// 2.4(e), an RFC 5227 address conflict, ...).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// A valid case this code does not handle (a fragmented echo request,
    /// which would need reassembly).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The buffer has no room for the result (too little headroom, a
    /// chained packet whose first buffer is too short).
    #[error("no room: {0}")]
    NoRoom(&'static str),
}

impl HostError {
    /// A short name for an error counter (`show errors`).
    pub fn name(&self) -> &'static str {
        match self {
            HostError::Malformed(_) => "malformed",
            HostError::BadChecksum => "bad-checksum",
            HostError::Invalid(_) => "invalid",
            HostError::WrongKind(_) => "wrong-kind",
            HostError::NotForUs(_) => "not-for-us",
            HostError::NotAllowed(_) => "not-allowed",
            HostError::Unsupported(_) => "unsupported",
            HostError::NoRoom(_) => "no-room",
        }
    }
}

impl From<BufError> for HostError {
    fn from(e: BufError) -> Self {
        match e {
            BufError::NoRoom(what) => HostError::NoRoom(what),
            _ => HostError::NoRoom("buffer"),
        }
    }
}

/// Hop limit / TTL of every packet we originate (RFC 1700's default TTL,
/// what hosts use; RFC 1812 4.2.2.9 only asks for a configurable value).
pub const DEFAULT_TTL: u8 = 64;

/// Partial checksum sum of the bytes `start..end` of a (possibly chained)
/// packet, as [`checksum::sum`] would give for the same bytes in one slice.
///
/// A piece that starts at an odd offset of the span has each byte in the
/// other half of its 16-bit word; the one's-complement sum is independent of
/// byte order (RFC 1071 2(B)), so that piece's folded sum is simply swapped.
pub(crate) fn sum_span(pkt: &Packet, start: usize, end: usize) -> u64 {
    let mut acc = 0u64;
    let mut pos = 0usize;
    for seg in pkt.segments() {
        let seg_end = pos + seg.len();
        let (a, b) = (start.max(pos), end.min(seg_end));
        if a < b {
            let s = checksum::sum(&seg[a - pos..b - pos]);
            if (a - start) % 2 == 1 {
                acc += u64::from(checksum::fold(s).swap_bytes());
            } else {
                acc += s;
            }
        }
        pos = seg_end;
        if pos >= end {
            break;
        }
    }
    acc
}

/// Sets the packet's length to `len` bytes, all in its first buffer, without
/// caring what the bytes past the old end hold: truncates when the first
/// buffer already holds `len` bytes, grows a single buffer otherwise. Checks
/// before it changes anything.
pub(crate) fn resize_first(pkt: &mut Packet, len: usize) -> Result<(), HostError> {
    if pkt.data().len() >= len {
        pkt.truncate(len)?;
    } else if !pkt.is_chained() && len <= pkt.data().len() + pkt.tailroom() {
        pkt.set_len(len)?;
    } else {
        return Err(HostError::NoRoom("result longer than the first buffer"));
    }
    Ok(())
}

/// Whether an IPv4 source address names one host, as RFC 1812 4.3.2.7 and
/// 5.3.7 require before anything is sent back to it: not "this network"
/// (0/8), loopback (127/8), multicast (224/4) or class E and the limited
/// broadcast (240/4).
pub(crate) fn ipv4_is_host(a: Ipv4Addr) -> bool {
    let o = a.octets()[0];
    o != 0 && o != 127 && o < 224
}

/// Whether an IPv6 source address names one node (RFC 4443 2.4(e.6)): not
/// the unspecified address and not multicast.
pub(crate) fn ipv6_is_host(a: &Ipv6Addr) -> bool {
    !a.is_unspecified() && !a.is_multicast()
}

/// The 16-bit one's-complement sum of a 128-bit address, for patching a
/// checksum whose pseudo-header covers it.
pub(crate) fn addr_sum(a: &Ipv6Addr) -> u16 {
    checksum::fold(checksum::sum(&a.octets()))
}

/// A small pool's cache for the unit tests of this module and its children.
#[cfg(test)]
pub(crate) fn test_cache() -> sluice_buf::BufCache {
    use sluice_buf::{HugePages, Pool, PoolConfig};
    let pool = Pool::new(&PoolConfig {
        buffers: 256,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .expect("pool");
    pool.cache(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_span_matches_a_flat_sum_at_odd_boundaries() {
        let mut c = test_cache();
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 31 + 7) as u8).collect();
        for skip in [0usize, 1, 2, 3, 7] {
            let mut p = c.alloc_from(&bytes).expect("alloc");
            p.advance(skip).expect("advance");
            let flat = &bytes[skip..];
            for (s, e) in [(0, flat.len()), (1, 4000), (3, 2100), (2040, 2050), (5, 5)] {
                let e = e.min(flat.len());
                assert_eq!(
                    checksum::fold(sum_span(&p, s, e)),
                    checksum::fold(checksum::sum(&flat[s..e])),
                    "skip {skip} span {s}..{e}"
                );
            }
            c.free(p);
        }
    }

    #[test]
    fn resize_first_grows_or_truncates() {
        let mut c = test_cache();
        let mut p = c.alloc_from(&[1; 42]).expect("alloc");
        resize_first(&mut p, 60).expect("grow");
        assert_eq!(p.total_len(), 60);
        resize_first(&mut p, 50).expect("shrink");
        assert_eq!(p.total_len(), 50);
        c.free(p);
        let mut p = c.alloc_from(&[1; 3000]).expect("alloc");
        resize_first(&mut p, 86).expect("chained shrink");
        assert_eq!((p.total_len(), p.data().len()), (86, 86));
        c.free(p);
        let mut p = c.alloc_from(&[1; 3000]).expect("alloc");
        p.advance(2000).expect("advance");
        assert_eq!(
            resize_first(&mut p, 86),
            Err(HostError::NoRoom("result longer than the first buffer"))
        );
        c.free(p);
    }

    #[test]
    fn host_addresses() {
        for a in ["0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "240.0.0.1"] {
            assert!(!ipv4_is_host(a.parse().expect("addr")), "{a}");
        }
        assert!(!ipv4_is_host(Ipv4Addr::BROADCAST));
        assert!(ipv4_is_host(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(!ipv6_is_host(&Ipv6Addr::UNSPECIFIED));
        assert!(!ipv6_is_host(&"ff02::1".parse().expect("addr")));
        assert!(ipv6_is_host(&"2001:db8::1".parse().expect("addr")));
        assert_eq!(HostError::BadChecksum.name(), "bad-checksum");
        assert_eq!(
            HostError::from(BufError::NoRoom("x")),
            HostError::NoRoom("x")
        );
    }
}
