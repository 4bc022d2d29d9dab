//! What the detector reads of an IPv4 packet: protocol, ports and where
//! the payload starts.

use super::set::Flow;

/// Why a packet is not scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unscanned {
    /// Not IPv4, or shorter than its headers say.
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
    pub src: [u8; 4],
    /// Destination address.
    pub dst: [u8; 4],
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
    let (sport, dport, l4_len) = match proto {
        6 => {
            let t = p.get(ihl..ihl + 20).ok_or(Unscanned::Truncated)?;
            let off = usize::from(t[12] >> 4) * 4;
            (be16(t, 0), be16(t, 2), off.max(20))
        }
        17 => {
            let u = p.get(ihl..ihl + 8).ok_or(Unscanned::Truncated)?;
            (be16(u, 0), be16(u, 2), 8)
        }
        1 => (0, 0, 8),
        _ => (0, 0, 0),
    };
    let start = ihl + l4_len;
    if start > total {
        return Err(Unscanned::Truncated);
    }
    Ok(View {
        flow: Flow {
            proto,
            sport,
            dport,
        },
        src: [p[12], p[13], p[14], p[15]],
        dst: [p[16], p[17], p[18], p[19]],
        start,
        end: total,
    })
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
