//! What the tracker reads of a packet: its key and, for TCP, the fields
//! of the window check. Read straight from the bytes once, before any
//! lookup, so the table and the state machine see a small struct.
//!
//! Packets arrive with their data at the IP header (`ipN-input` checked
//! it); lengths are still trusted no further than the slice. Fragments
//! are refused: there is no reassembly here (Linux reassembles before
//! conntrack), and a non-first fragment has no ports to key on.

use thiserror::Error;

use super::tuple::{ECHO, Tuple, proto};

/// TCP header flags.
pub mod flag {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers.
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment field is significant.
    pub const ACK: u8 = 0x10;
    /// Urgent pointer significant.
    pub const URG: u8 = 0x20;
}

/// The TCP fields the state machine and the window check need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpInfo {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Advertised window, unscaled.
    pub win: u16,
    /// Flags (the low 6 bits).
    pub flags: u8,
    /// Sequence space the segment takes: payload bytes, plus one for SYN
    /// and one for FIN.
    pub len: u32,
    /// The window scale option (SYN segments only; capped at 14).
    pub wscale: Option<u8>,
}

/// The layer-4 kind of a packet, as tracking treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP: tracked with its state machine.
    Tcp(TcpInfo),
    /// UDP, and any other protocol without ports (keyed with ports 0).
    Datagram,
    /// ICMP or ICMPv6 echo; `request` for a request (the only kind that
    /// may start a pseudo-connection).
    Echo {
        /// An echo request (else a reply).
        request: bool,
    },
    /// An ICMP error: the key is the quoted packet's, and the error is
    /// related to that flow or to nothing.
    Error,
    /// Neighbour discovery and multicast listener messages: link-local
    /// housekeeping that is passed untracked.
    Untracked,
}

/// A packet as the tracker reads it (the zone is filled in by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The flow key, in the packet's direction.
    pub key: Tuple,
    /// What kind of packet it is.
    pub l4: L4,
}

/// Why a packet cannot be tracked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Shorter than its headers say, or not the IP version expected.
    #[error("packet shorter than its headers")]
    Truncated,
    /// A fragment: nothing to key on without reassembly.
    #[error("IP fragment")]
    Fragment,
    /// An ICMP type that is neither echo nor an error.
    #[error("ICMP type not tracked")]
    IcmpType,
    /// An ICMP error quoting something that cannot be keyed (too short,
    /// an error about an error, a fragment).
    #[error("ICMP error quoting no trackable packet")]
    IcmpQuote,
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The window scale option of a SYN's options, if any.
fn window_scale(mut opts: &[u8]) -> Option<u8> {
    while let Some(&kind) = opts.first() {
        match kind {
            0 => return None,
            1 => opts = &opts[1..],
            _ => {
                let len = usize::from(*opts.get(1)?);
                if len < 2 || len > opts.len() {
                    return None;
                }
                if kind == 3 && len == 3 {
                    return Some(opts[2].min(14));
                }
                opts = &opts[len..];
            }
        }
    }
    None
}

/// TCP fields of the segment `l4` (exactly the segment's bytes).
fn tcp(l4: &[u8]) -> Result<TcpInfo, ParseError> {
    if l4.len() < 20 {
        return Err(ParseError::Truncated);
    }
    let hlen = usize::from(l4[12] >> 4) * 4;
    if hlen < 20 || hlen > l4.len() {
        return Err(ParseError::Truncated);
    }
    let flags = l4[13] & 0x3f;
    let payload = (l4.len() - hlen) as u32;
    let wscale = if flags & flag::SYN != 0 {
        window_scale(&l4[20..hlen])
    } else {
        None
    };
    Ok(TcpInfo {
        seq: be32(l4, 4),
        ack: be32(l4, 8),
        win: be16(l4, 14),
        flags,
        len: payload + u32::from(flags & flag::SYN != 0) + u32::from(flags & flag::FIN != 0),
        wscale,
    })
}

/// The ports of a quoted or whole L4 header for a port-keyed protocol,
/// or 0s for the rest.
fn ports(p: u8, l4: &[u8]) -> Result<(u32, u32), ParseError> {
    match p {
        proto::TCP | proto::UDP | 132 | 136 => match l4.get(..4) {
            Some(h) => Ok((be16(h, 0).into(), be16(h, 2).into())),
            None => Err(ParseError::Truncated),
        },
        _ => Ok((0, 0)),
    }
}

/// IPv4 or IPv6 header fields common to the outer and quoted packets.
struct L3<'a> {
    src: u128,
    dst: u128,
    proto: u8,
    /// The L4 bytes (bounded by the header's length fields).
    l4: &'a [u8],
    v6: bool,
}

fn ip4(b: &[u8]) -> Result<L3<'_>, ParseError> {
    let h = b.get(..20).ok_or(ParseError::Truncated)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 {
        return Err(ParseError::Truncated);
    }
    if be16(h, 6) & 0x3fff != 0 {
        return Err(ParseError::Fragment);
    }
    // Within the slice: a quoted packet is cut short of its total length.
    let end = usize::from(be16(h, 2)).clamp(ihl, b.len().max(ihl));
    let l4 = b.get(ihl..end).ok_or(ParseError::Truncated)?;
    Ok(L3 {
        src: u128::from(be32(h, 12)),
        dst: u128::from(be32(h, 16)),
        proto: h[9],
        l4,
        v6: false,
    })
}

/// Most IPv6 extension headers walked before giving up on the chain.
const MAX_EXTENSIONS: usize = 8;

fn ip6(b: &[u8]) -> Result<L3<'_>, ParseError> {
    let h = b.get(..40).ok_or(ParseError::Truncated)?;
    if h[0] >> 4 != 6 {
        return Err(ParseError::Truncated);
    }
    let addr = |o: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[o..o + 16]);
        u128::from_be_bytes(a)
    };
    let end = (40 + usize::from(be16(h, 4))).min(b.len());
    let mut next = h[6];
    let mut at = 40usize;
    for _ in 0..MAX_EXTENSIONS {
        let len = match next {
            0 | 43 | 60 => (usize::from(*b.get(at + 1).ok_or(ParseError::Truncated)?) + 1) * 8,
            44 => return Err(ParseError::Fragment),
            51 => (usize::from(*b.get(at + 1).ok_or(ParseError::Truncated)?) + 2) * 4,
            _ => break,
        };
        next = b[at];
        at += len;
    }
    let l4 = b.get(at..end.max(at)).ok_or(ParseError::Truncated)?;
    Ok(L3 {
        src: addr(8),
        dst: addr(24),
        proto: next,
        l4,
        v6: true,
    })
}

/// ICMP type numbers, per family: (echo request, echo reply, is an error).
fn icmp_kind(v6: bool, t: u8) -> Option<Result<bool, ()>> {
    match (v6, t) {
        (false, 8) | (true, 128) => Some(Ok(true)),
        (false, 0) | (true, 129) => Some(Ok(false)),
        (false, 3 | 4 | 5 | 11 | 12) | (true, 1..=4) => Some(Err(())),
        _ => None,
    }
}

/// The key of the packet an ICMP error quotes (`quoted`: its IP header
/// and at least 8 bytes after it).
fn quoted_key(v6: bool, quoted: &[u8]) -> Result<Tuple, ParseError> {
    let l3 = if v6 { ip6(quoted) } else { ip4(quoted) }.map_err(|_| ParseError::IcmpQuote)?;
    let (sport, dport) = match l3.proto {
        proto::ICMP | proto::ICMP6 => {
            let h = l3.l4.get(..8).ok_or(ParseError::IcmpQuote)?;
            let id = u32::from(be16(h, 4));
            match icmp_kind(v6, h[0]) {
                Some(Ok(true)) => (id, ECHO),
                Some(Ok(false)) => (ECHO, id),
                // An error about an error (or anything else) relates to
                // nothing the table holds.
                _ => return Err(ParseError::IcmpQuote),
            }
        }
        p => ports(p, l3.l4).map_err(|_| ParseError::IcmpQuote)?,
    };
    Ok(Tuple {
        src: l3.src,
        dst: l3.dst,
        sport,
        dport,
        proto: l3.proto,
        v6,
        zone: 0,
    })
}

fn parse(l3: L3<'_>) -> Result<Parsed, ParseError> {
    let mut key = Tuple {
        src: l3.src,
        dst: l3.dst,
        sport: 0,
        dport: 0,
        proto: l3.proto,
        v6: l3.v6,
        zone: 0,
    };
    let icmp = if l3.v6 { proto::ICMP6 } else { proto::ICMP };
    let l4 = match l3.proto {
        proto::TCP => {
            let t = tcp(l3.l4)?;
            (key.sport, key.dport) = ports(proto::TCP, l3.l4)?;
            L4::Tcp(t)
        }
        p if p == icmp => {
            let h = l3.l4.get(..8).ok_or(ParseError::Truncated)?;
            match icmp_kind(l3.v6, h[0]) {
                Some(Ok(request)) => {
                    let id = u32::from(be16(h, 4));
                    (key.sport, key.dport) = if request { (id, ECHO) } else { (ECHO, id) };
                    L4::Echo { request }
                }
                Some(Err(())) => {
                    key = quoted_key(l3.v6, &l3.l4[8..])?;
                    L4::Error
                }
                None if l3.v6 && (130..=137).contains(&h[0]) => L4::Untracked,
                None => return Err(ParseError::IcmpType),
            }
        }
        p => {
            (key.sport, key.dport) = ports(p, l3.l4)?;
            L4::Datagram
        }
    };
    Ok(Parsed { key, l4 })
}

/// Reads the IPv4 packet starting at `l3`.
#[inline]
pub fn parse4(l3: &[u8]) -> Result<Parsed, ParseError> {
    parse(ip4(l3)?)
}

/// Reads the IPv6 packet starting at `l3`.
#[inline]
pub fn parse6(l3: &[u8]) -> Result<Parsed, ParseError> {
    parse(ip6(l3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_scale_is_found_among_other_options_and_capped() {
        // MSS, NOP, window scale 7, SACK permitted.
        assert_eq!(window_scale(&[2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2]), Some(7));
        assert_eq!(window_scale(&[1, 1, 3, 3, 20]), Some(14));
        assert_eq!(window_scale(&[2, 4, 5, 0xb4]), None);
        // A length that runs off the end, a zero length: no option, no panic.
        assert_eq!(window_scale(&[2, 40, 5]), None);
        assert_eq!(window_scale(&[2, 0, 3, 3, 7]), None);
    }

    #[test]
    fn short_and_odd_headers_are_errors_not_panics() {
        assert_eq!(parse4(&[0x45; 10]), Err(ParseError::Truncated));
        let mut h = [0u8; 28];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&28u16.to_be_bytes());
        h[9] = proto::TCP;
        assert_eq!(parse4(&h), Err(ParseError::Truncated));
        h[6] = 0x20; // more fragments
        assert_eq!(parse4(&h), Err(ParseError::Fragment));
        h[6] = 0;
        h[9] = proto::UDP;
        let p = parse4(&h).unwrap();
        assert_eq!(p.l4, L4::Datagram);
        h[9] = proto::ICMP;
        h[20] = 13; // timestamp request
        assert_eq!(parse4(&h), Err(ParseError::IcmpType));
        h[20] = 3; // an error quoting nothing
        assert_eq!(parse4(&h), Err(ParseError::IcmpQuote));
    }
}
