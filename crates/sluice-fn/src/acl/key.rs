//! The fields a rule can match, pulled out of a packet once, before any
//! lookup: the classifier then reads a compact key, not headers.
//!
//! What a packet reads as, where headers leave room for doubt:
//!
//! - ports are the TCP, UDP or SCTP ports; for ICMP and ICMPv6 the source
//!   port slot holds the type and the destination slot the code; other
//!   protocols read ports 0;
//! - a non-first fragment has no L4 header: ports and TCP flags read 0
//!   (its protocol and addresses still match);
//! - a first fragment or whole packet too short to hold its L4 header's
//!   ports (or TCP's flags) is refused ([`KeyError::TruncatedL4`]), so that
//!   a tiny first fragment cannot slip past port rules (RFC 1858);
//! - IPv6 extension headers (hop-by-hop, routing, destination options,
//!   fragment, AH) are walked, at most eight, to the upper-layer protocol.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::BitAnd;

use sluice_wire::MacAddr;
use thiserror::Error;

/// An address type the classifier keys on: `u32` for IPv4, `u128` for IPv6.
pub trait Addr:
    Copy + Eq + Hash + Debug + Default + BitAnd<Output = Self> + Send + Sync + 'static
{
    /// Width in bits.
    const BITS: u32;
    /// The all-zero address.
    const ZERO: Self;
    /// The address 1 (what no zero mask can match).
    const ONE: Self;
    /// Value and mask of an IPv4 prefix (zero for IPv6 keys: never used).
    fn from_v4(a: Ipv4Addr, len: u8) -> (Self, Self);
    /// Value and mask of an IPv6 prefix (zero for IPv4 keys: never used).
    fn from_v6(a: Ipv6Addr, len: u8) -> (Self, Self);
    /// `bits` (1..=16) bits starting `from` bits below the most significant.
    fn chunk(self, from: u32, bits: u32) -> u32;
    /// How many leading bits of the mask are set (the prefix length).
    fn prefix_len(self) -> u32;
}

impl Addr for u32 {
    const BITS: u32 = 32;
    const ZERO: u32 = 0;
    const ONE: u32 = 1;
    #[inline]
    fn from_v4(a: Ipv4Addr, len: u8) -> (u32, u32) {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        (u32::from(a) & mask, mask)
    }
    fn from_v6(_: Ipv6Addr, _: u8) -> (u32, u32) {
        (0, 0)
    }
    #[inline(always)]
    fn chunk(self, from: u32, bits: u32) -> u32 {
        (self << from) >> (32 - bits)
    }
    fn prefix_len(self) -> u32 {
        self.leading_ones()
    }
}

impl Addr for u128 {
    const BITS: u32 = 128;
    const ZERO: u128 = 0;
    const ONE: u128 = 1;
    fn from_v4(_: Ipv4Addr, _: u8) -> (u128, u128) {
        (0, 0)
    }
    #[inline]
    fn from_v6(a: Ipv6Addr, len: u8) -> (u128, u128) {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        (u128::from(a) & mask, mask)
    }
    #[inline(always)]
    fn chunk(self, from: u32, bits: u32) -> u32 {
        ((self << from) >> (128 - bits)) as u32
    }
    fn prefix_len(self) -> u32 {
        self.leading_ones()
    }
}

/// The L2 fields of the frame a packet came in, read only when some rule
/// of the list matches on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct L2Key {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// Outer VLAN id (0: untagged).
    pub vlan: u16,
}

/// What a rule matches on, for one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key<A> {
    /// Source address.
    pub src: A,
    /// Destination address.
    pub dst: A,
    /// Source port, or ICMP type.
    pub sport: u16,
    /// Destination port, or ICMP code.
    pub dport: u16,
    /// IP protocol (IPv6: upper-layer header).
    pub proto: u8,
    /// TCP flags (0 for other protocols).
    pub tcp_flags: u8,
    /// DSCP.
    pub dscp: u8,
    /// The L2 fields, when read.
    pub l2: L2Key,
}

/// Why no key could be read from a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Shorter than its IP header (or its IPv6 extension headers).
    #[error("packet shorter than its IP header")]
    TruncatedL3,
    /// A first fragment or whole packet whose L4 header is cut short.
    #[error("L4 header cut short")]
    TruncatedL4,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;
const ICMP: u8 = 1;
const ICMP6: u8 = 58;

/// Ports (or ICMP type and code) and TCP flags from the L4 header `l4`.
#[inline]
fn l4_fields(proto: u8, l4: &[u8]) -> Result<(u16, u16, u8), KeyError> {
    match proto {
        TCP => match l4.get(..14) {
            Some(h) => Ok((
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
                h[13],
            )),
            None => Err(KeyError::TruncatedL4),
        },
        UDP | SCTP => match l4.get(..4) {
            Some(h) => Ok((
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
                0,
            )),
            None => Err(KeyError::TruncatedL4),
        },
        ICMP | ICMP6 => match l4.get(..2) {
            Some(h) => Ok((h[0].into(), h[1].into(), 0)),
            None => Err(KeyError::TruncatedL4),
        },
        _ => Ok((0, 0, 0)),
    }
}

/// The key of the IPv4 packet starting at `l3` (its header already
/// checked by `ip4-input`; here only lengths are trusted no further than
/// the slice).
#[inline]
pub fn ip4_key(l3: &[u8]) -> Result<Key<u32>, KeyError> {
    let h = l3.get(..20).ok_or(KeyError::TruncatedL3)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let proto = h[9];
    let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    let (sport, dport, tcp_flags) = if frag_offset != 0 {
        (0, 0, 0)
    } else {
        l4_fields(proto, l3.get(ihl..).ok_or(KeyError::TruncatedL3)?)?
    };
    Ok(Key {
        src: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
        dst: u32::from_be_bytes([h[16], h[17], h[18], h[19]]),
        sport,
        dport,
        proto,
        tcp_flags,
        dscp: h[1] >> 2,
        l2: L2Key::default(),
    })
}

/// Most IPv6 extension headers walked before giving up on the chain.
const MAX_EXTENSIONS: usize = 8;

/// The key of the IPv6 packet starting at `l3`.
#[inline]
pub fn ip6_key(l3: &[u8]) -> Result<Key<u128>, KeyError> {
    let h = l3.get(..40).ok_or(KeyError::TruncatedL3)?;
    let addr = |o: usize| {
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[o..o + 16]);
        u128::from_be_bytes(b)
    };
    let mut proto = h[6];
    let mut at = 40usize;
    let mut first = true;
    for _ in 0..MAX_EXTENSIONS {
        let len = match proto {
            0 | 43 | 60 => {
                let e = l3.get(at..at + 2).ok_or(KeyError::TruncatedL3)?;
                (usize::from(e[1]) + 1) * 8
            }
            44 => {
                let e = l3.get(at..at + 8).ok_or(KeyError::TruncatedL3)?;
                first &= u16::from_be_bytes([e[2], e[3]]) >> 3 == 0;
                8
            }
            51 => {
                let e = l3.get(at..at + 2).ok_or(KeyError::TruncatedL3)?;
                (usize::from(e[1]) + 2) * 4
            }
            _ => break,
        };
        proto = l3[at];
        at += len;
    }
    let (sport, dport, tcp_flags) = if first {
        l4_fields(proto, l3.get(at..).ok_or(KeyError::TruncatedL3)?)?
    } else {
        (0, 0, 0)
    };
    let tclass = ((h[0] & 0x0f) << 4) | (h[1] >> 4);
    Ok(Key {
        src: addr(8),
        dst: addr(24),
        sport,
        dport,
        proto,
        tcp_flags,
        dscp: tclass >> 2,
        l2: L2Key::default(),
    })
}

/// The L2 fields of the frame `l2` (starting at the Ethernet header);
/// `vlan` is what `ethernet-input` recorded.
#[inline]
pub fn l2_key(l2: &[u8], vlan: u16) -> L2Key {
    match l2.get(..12) {
        Some(h) => L2Key {
            dst_mac: MacAddr::from_bytes(&h[..6]),
            src_mac: MacAddr::from_bytes(&h[6..12]),
            vlan,
        },
        None => L2Key {
            vlan,
            ..L2Key::default()
        },
    }
}
