//! What the detector reads of an IPv4 or IPv6 packet: protocol, ports
//! and where the payload starts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::set::Flow;

/// Why a packet is not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unscanned {
    /// Not the IP version expected, shorter than its headers say, or
    /// IPv6 with more extension headers than are walked.
    Truncated,
    /// A non-first fragment: no L4 header, and no reassembly here.
    Fragment,
}

/// The packet's flow fields, its addresses, and the payload's range in
/// the packet's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Protocol and ports.
    pub flow: Flow,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Payload start.
    pub start: usize,
    /// Payload end (the IP total length, within the bytes at hand).
    pub end: usize,
}

/// Reads the IPv4 packet at the start of `p` (the first buffer's bytes,
/// whose total length `len` may be longer when the packet is chained).
pub fn view4(p: &[u8], len: usize) -> Result<View, Unscanned> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return Err(Unscanned::Truncated);
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < 20 || total < ihl || total > len || p.len() < ihl {
        return Err(Unscanned::Truncated);
    }
    let frag_off = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
    if frag_off != 0 {
        return Err(Unscanned::Fragment);
    }
    let proto = p[9];
    let src = IpAddr::V4(Ipv4Addr::new(p[12], p[13], p[14], p[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(p[16], p[17], p[18], p[19]));
    l4(p, proto, ihl, total, src, dst)
}

/// The rest of a view once the L4 header is known to start at `at` with
/// protocol `proto`, the packet ending at `total`.
fn l4(
    p: &[u8],
    proto: u8,
    at: usize,
    total: usize,
    src: IpAddr,
    dst: IpAddr,
) -> Result<View, Unscanned> {
    let (sport, dport, l4_len) = match proto {
        6 => {
            let t = p.get(at..at + 20).ok_or(Unscanned::Truncated)?;
            let off = usize::from(t[12] >> 4) * 4;
            (be16(t, 0), be16(t, 2), off.max(20))
        }
        17 => {
            let u = p.get(at..at + 8).ok_or(Unscanned::Truncated)?;
            (be16(u, 0), be16(u, 2), 8)
        }
        // ICMP and ICMPv6: the payload after the 8-byte header.
        1 | 58 => (0, 0, 8),
        _ => (0, 0, 0),
    };
    let start = at + l4_len;
    if start > total {
        return Err(Unscanned::Truncated);
    }
    Ok(View {
        flow: Flow {
            proto,
            sport,
            dport,
        },
        src,
        dst,
        start,
        end: total,
    })
}

/// Extension headers walked before giving up on an IPv6 packet.
const MAX_EXTENSIONS: usize = 8;

/// Reads the IPv6 packet at the start of `p` (see [`view4`]), past its
/// extension headers (hop-by-hop, routing, destination options, a first
/// fragment's header).
pub fn view6(p: &[u8], len: usize) -> Result<View, Unscanned> {
    let h = p.get(..40).ok_or(Unscanned::Truncated)?;
    if h[0] >> 4 != 6 {
        return Err(Unscanned::Truncated);
    }
    let total = 40 + usize::from(be16(h, 4));
    if total > len {
        return Err(Unscanned::Truncated);
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(a))
    };
    let (src, dst) = (addr(8), addr(24));
    let mut next = h[6];
    let mut at = 40;
    for _ in 0..MAX_EXTENSIONS {
        let ext = p.get(at..at + 8).ok_or(Unscanned::Truncated)?;
        let size = match next {
            0 | 43 | 60 => (usize::from(ext[1]) + 1) * 8,
            44 => {
                if be16(ext, 2) >> 3 != 0 {
                    return Err(Unscanned::Fragment);
                }
                8
            }
            _ => return l4(p, next, at, total, src, dst),
        };
        next = ext[0];
        at += size;
        if at > total {
            return Err(Unscanned::Truncated);
        }
    }
    Err(Unscanned::Truncated)
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
