//! Rewriting one end (address and port) of an IPv4 packet in place, its
//! checksums updated for the change rather than recomputed: the IPv4
//! header's, TCP's and UDP's over the pseudo-header and the port, ICMP
//! echo's over the identifier. An ICMP error's quoted packet is
//! rewritten the same way, and the error's own checksum (which covers
//! the quote) recomputed: errors are rare and short.

use super::csum::{fold, sum, update16, update32};
use crate::conntrack::tuple::proto;

/// Which end of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Source address and port.
    Src,
    /// Destination address and port.
    Dst,
}

/// The packet is shorter than the field to rewrite (a packet that
/// tracking read whole never is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// No port to write: ICMP echo's [`crate::conntrack::tuple::ECHO`]
/// marks the side of an exchange that has no identifier.
#[inline(always)]
fn port16(port: u32) -> Option<u16> {
    u16::try_from(port).ok()
}

#[inline(always)]
fn get16(b: &[u8], at: usize) -> Result<u16, Truncated> {
    Ok(u16::from_be_bytes(
        b.get(at..at + 2)
            .ok_or(Truncated)?
            .try_into()
            .map_err(|_| Truncated)?,
    ))
}

#[inline(always)]
fn put16(b: &mut [u8], at: usize, v: u16) -> Result<(), Truncated> {
    b.get_mut(at..at + 2)
        .ok_or(Truncated)?
        .copy_from_slice(&v.to_be_bytes());
    Ok(())
}

/// Header length and protocol of the IPv4 header at the start of `p`,
/// and the end of its packet (within `p`).
fn header(p: &[u8]) -> Result<(usize, u8, usize), Truncated> {
    let h = p.get(..20).ok_or(Truncated)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let end = usize::from(u16::from_be_bytes([h[2], h[3]])).min(p.len());
    if ihl < 20 || end < ihl {
        return Err(Truncated);
    }
    Ok((ihl, h[9], end))
}

/// Sets the address of `end` in the IPv4 header at the start of `p`;
/// returns the old one.
fn set_addr(p: &mut [u8], end: End, addr: u32) -> Result<u32, Truncated> {
    let at = match end {
        End::Src => 12,
        End::Dst => 16,
    };
    let a = p.get_mut(at..at + 4).ok_or(Truncated)?;
    let old = u32::from_be_bytes([a[0], a[1], a[2], a[3]]);
    a.copy_from_slice(&addr.to_be_bytes());
    let c = get16(p, 10)?;
    put16(p, 10, update32(c, old, addr))?;
    Ok(old)
}

/// Rewrites `end` of the L4 header `l4` (protocol `pr`, possibly cut
/// short as in a quote) after its IP address changed from `old` to
/// `addr`: its port to `port`, its checksum for both changes, as far as
/// the bytes go.
fn set_l4(l4: &mut [u8], pr: u8, end: End, old: u32, addr: u32, port: u32) {
    let port_at = match end {
        End::Src => 0,
        End::Dst => 2,
    };
    let csum_at = match pr {
        proto::TCP => 16,
        proto::UDP => 6,
        // ICMP: no pseudo-header; only an echo's identifier counts.
        proto::ICMP => {
            if let (Some(id), Ok(t)) = (port16(port), get16(l4, 0)) {
                let is_echo = matches!(t >> 8, 0 | 8);
                if let (true, Ok(old_id), Ok(c)) = (is_echo, get16(l4, 4), get16(l4, 2)) {
                    let _ = put16(l4, 4, id);
                    let _ = put16(l4, 2, update16(c, old_id, id));
                }
            }
            return;
        }
        _ => return,
    };
    let old_port = get16(l4, port_at).ok();
    let new_port = port16(port);
    if let (Some(_), Some(p)) = (old_port, new_port) {
        let _ = put16(l4, port_at, p);
    }
    let Ok(c) = get16(l4, csum_at) else {
        // A quote of 8 bytes holds no TCP checksum.
        return;
    };
    if pr == proto::UDP && c == 0 {
        // UDP sent without a checksum stays without.
        return;
    }
    let mut c = update32(c, old, addr);
    if let (Some(o), Some(n)) = (old_port, new_port) {
        c = update16(c, o, n);
    }
    if pr == proto::UDP && c == 0 {
        c = 0xffff;
    }
    let _ = put16(l4, csum_at, c);
}

/// Rewrites `end` of the IPv4 packet `p` to `addr` and, where the packet
/// has one there, `port` (TCP and UDP ports, an ICMP echo's identifier).
pub fn rewrite(p: &mut [u8], end: End, addr: u32, port: u32) -> Result<(), Truncated> {
    let (ihl, pr, stop) = header(p)?;
    let old = set_addr(p, end, addr)?;
    set_l4(&mut p[ihl..stop], pr, end, old, addr, port);
    Ok(())
}

/// Rewrites an ICMP error: `end` of its own header to `addr` (no port:
/// the error has none), and the other end of the packet it quotes to
/// `addr:port` (the quote went the other way); then its ICMP checksum.
pub fn rewrite_error(p: &mut [u8], end: End, addr: u32, port: u32) -> Result<(), Truncated> {
    let (ihl, _, stop) = header(p)?;
    set_addr(p, end, addr)?;
    let icmp = &mut p[ihl..stop];
    let quote = icmp.get_mut(8..).ok_or(Truncated)?;
    let inner_end = match end {
        End::Src => End::Dst,
        End::Dst => End::Src,
    };
    let (qihl, qpr, _) = header(quote)?;
    let qold = set_addr(quote, inner_end, addr)?;
    // The quote is cut short: its own length field says more than is there.
    let qstop = quote.len();
    if qihl <= qstop {
        set_l4(&mut quote[qihl..qstop], qpr, inner_end, qold, addr, port);
    }
    put16(icmp, 2, 0)?;
    let c = fold(sum(icmp));
    put16(icmp, 2, c)
}
