//! The virtio-net header that TAP and AF_PACKET sockets put before a frame,
//! and what it takes to turn an offloaded frame into wire frames.
//!
//! A Linux host talking through a TAP or a veth leaves work undone for
//! speed: a TCP or UDP checksum only half computed (`NEEDS_CSUM`: the field
//! holds the pseudo-header sum, the rest is for "the hardware"), and TCP
//! segments up to 64 KiB (GSO) for "the hardware" to cut. Sluice is that
//! hardware: [`receive`] completes the checksum and cuts GSO frames into
//! MSS-sized segments, so every node after an interface sees ordinary
//! frames, whatever the host did.

use std::net::{Ipv4Addr, Ipv6Addr};

use sluice_buf::{BufCache, Packet};
use sluice_graph::Frame;
use sluice_wire::IpProtocol;
use sluice_wire::checksum::{finish, pseudo_header_v4, pseudo_header_v6, sum};

/// `flags`: the checksum from `csum_start` on is left to complete.
pub const F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was verified (a hint, nothing to do).
pub const F_DATA_VALID: u8 = 2;
/// `gso_type`: not a GSO frame.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: TCP over IPv4.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: UDP fragmentation offload (obsolete; refused).
pub const GSO_UDP: u8 = 3;
/// `gso_type`: TCP over IPv6.
pub const GSO_TCPV6: u8 = 4;
/// `gso_type`: UDP segmentation (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` flag: the segments keep the ECN CWR bit as TCP wants it.
pub const GSO_ECN: u8 = 0x80;

/// The virtio-net header (the 10-byte form, without `num_buffers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM`, `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers before the payload (a hint).
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS) for a GSO frame.
    pub gso_size: u16,
    /// Where the checksummed part starts (the L4 header).
    pub csum_start: u16,
    /// Where, from `csum_start`, the checksum field is.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Bytes of the header on the wire.
    pub const LEN: usize = 10;

    /// A header that asks nothing: what Sluice writes before a frame whose
    /// checksums are complete.
    pub const NONE: VnetHdr = VnetHdr {
        flags: 0,
        gso_type: GSO_NONE,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Reads a header (little-endian, as the kernel writes it for a
    /// little-endian host).
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b = b.get(..Self::LEN)?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// Writes the header into the first [`VnetHdr::LEN`] bytes of `b`;
    /// false if `b` is shorter.
    pub fn write(&self, b: &mut [u8]) -> bool {
        let Some(b) = b.get_mut(..Self::LEN) else {
            return false;
        };
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        true
    }

    /// Whether the frame is a GSO frame to be cut.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// Whether a checksum is left to complete.
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }
}

/// Why an offloaded frame could not be made ordinary (a counted drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// The checksum offsets point outside the frame.
    #[error("checksum offsets outside the frame")]
    BadChecksumOffsets,
    /// A GSO type Sluice does not cut (it does not offer them).
    #[error("GSO type {0} not supported")]
    UnsupportedGso(u8),
    /// The headers of a GSO frame are not Ethernet/IP/TCP as its type says.
    #[error("GSO frame headers malformed")]
    BadGsoHeaders,
    /// A GSO frame with an MSS of zero.
    #[error("GSO frame with zero segment size")]
    ZeroSegmentSize,
    /// No buffer for the frame or one of its segments.
    #[error("no buffer")]
    NoBuffer,
}

/// Completes a partial checksum: sums from `csum_start` to the end of the
/// frame (the field holds the pseudo-header sum) and stores the result at
/// `csum_start + csum_offset`. False when the offsets are outside the frame.
pub fn complete_checksum(frame: &mut [u8], csum_start: usize, csum_offset: usize) -> bool {
    let Some(field) = csum_start.checked_add(csum_offset) else {
        return false;
    };
    if field.checked_add(2).is_none_or(|end| end > frame.len()) {
        return false;
    }
    let value = finish(sum(&frame[csum_start..]));
    frame[field..field + 2].copy_from_slice(&value.to_be_bytes());
    true
}

/// Finds and completes a checksum a host left half done when the frame
/// came without a virtio header to say so (AF_XDP on a veth: the kernel
/// hands XDP the frame as the host built it for "the hardware").
///
/// Such a TCP or UDP checksum field holds exactly the folded pseudo-header
/// sum, which is cheap to recognise; only then is the segment summed, and
/// a checksum that happens to be right as it stands is left alone. Returns
/// whether a checksum was completed. IPv4 fragments and IPv6 extension
/// headers are left as they are.
pub fn complete_partial(frame: &mut [u8]) -> bool {
    let Some((l4, end, proto, pseudo)) = l4_of(frame) else {
        return false;
    };
    let field = l4 + if proto == IpProtocol::TCP { 16 } else { 6 };
    let Some(stored) = frame.get(field..field + 2) else {
        return false;
    };
    let stored = u16::from_be_bytes([stored[0], stored[1]]);
    if stored != sluice_wire::checksum::fold(pseudo) {
        return false;
    }
    let seg = &frame[l4..end];
    if finish(pseudo + sum(seg)) == 0 {
        return false; // right by coincidence
    }
    let mut value = finish(sum(seg));
    if proto == IpProtocol::UDP && value == 0 {
        value = 0xffff; // zero means "no checksum" in UDP
    }
    frame[field..field + 2].copy_from_slice(&value.to_be_bytes());
    true
}

/// Where the TCP or UDP segment of an unfragmented IPv4 or plain IPv6
/// frame starts and ends (before any Ethernet padding), its protocol, and
/// its pseudo-header sum.
fn l4_of(frame: &[u8]) -> Option<(usize, usize, IpProtocol, u64)> {
    let mut l3 = 12;
    let ethertype = loop {
        let t = frame.get(l3..l3 + 2)?;
        let t = u16::from_be_bytes([t[0], t[1]]);
        l3 += 2;
        if t == 0x8100 || t == 0x88a8 {
            l3 += 2;
        } else {
            break t;
        }
    };
    let ip = frame.get(l3..)?;
    match ethertype {
        0x0800 if ip.len() >= 20 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let fragmented = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            let proto = IpProtocol(ip[9]);
            if ihl < 20 || total < ihl || total > ip.len() || fragmented {
                return None;
            }
            if proto != IpProtocol::TCP && proto != IpProtocol::UDP {
                return None;
            }
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            let len = (total - ihl) as u16;
            Some((
                l3 + ihl,
                l3 + total,
                proto,
                pseudo_header_v4(src, dst, proto, len),
            ))
        }
        0x86dd if ip.len() >= 40 => {
            let proto = IpProtocol(ip[6]);
            let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if proto != IpProtocol::TCP && proto != IpProtocol::UDP || 40 + plen > ip.len() {
                return None;
            }
            let src: [u8; 16] = ip[8..24].try_into().ok()?;
            let dst: [u8; 16] = ip[24..40].try_into().ok()?;
            let pseudo = pseudo_header_v6(
                &Ipv6Addr::from(src),
                &Ipv6Addr::from(dst),
                proto,
                plen as u32,
            );
            Some((l3 + 40, l3 + 40 + plen, proto, pseudo))
        }
        _ => None,
    }
}

/// Turns one received frame and its header into ordinary frames appended
/// to `out`: the frame itself with its checksum completed, or the segments
/// of a GSO frame. Returns how many packets were appended.
pub fn receive(
    hdr: &VnetHdr,
    frame: &[u8],
    buffers: &mut BufCache,
    out: &mut Frame,
) -> Result<usize, OffloadError> {
    if hdr.is_gso() {
        return segment(hdr, frame, buffers, out);
    }
    let mut pkt = buffers
        .alloc_from(frame)
        .map_err(|_| OffloadError::NoBuffer)?;
    if hdr.needs_csum() {
        let start = usize::from(hdr.csum_start);
        let field = start + usize::from(hdr.csum_offset);
        // The field lies in the first segment unless the headers alone are
        // past 2 KiB, which no real host sends.
        let ok = field + 2 <= frame.len() && field + 2 <= pkt.len();
        if !ok {
            buffers.free(pkt);
            return Err(OffloadError::BadChecksumOffsets);
        }
        let value = finish(sum(&frame[start..]));
        pkt.data_mut()[field..field + 2].copy_from_slice(&value.to_be_bytes());
    }
    out.push(pkt);
    Ok(1)
}

/// Where the headers of a TCP GSO frame are.
struct GsoLayout {
    /// Start of the IP header.
    l3: usize,
    /// Start of the TCP header.
    l4: usize,
    /// End of the TCP header: where the payload starts.
    payload: usize,
    v6: bool,
}

fn gso_layout(hdr: &VnetHdr, frame: &[u8]) -> Result<GsoLayout, OffloadError> {
    let v6 = match hdr.gso_type & !GSO_ECN {
        GSO_TCPV4 => false,
        GSO_TCPV6 => true,
        other => return Err(OffloadError::UnsupportedGso(other)),
    };
    let bad = OffloadError::BadGsoHeaders;
    // Ethernet, then any number of 802.1Q / 802.1ad tags.
    let mut l3 = 12;
    let ethertype = loop {
        let t = frame.get(l3..l3 + 2).ok_or(bad)?;
        let t = u16::from_be_bytes([t[0], t[1]]);
        l3 += 2;
        if t == 0x8100 || t == 0x88a8 {
            l3 += 2;
        } else {
            break t;
        }
    };
    let l4 = usize::from(hdr.csum_start);
    match (v6, ethertype) {
        (false, 0x0800) => {
            let ihl = usize::from(*frame.get(l3).ok_or(bad)? & 0x0f) * 4;
            if ihl < 20 || l3 + ihl != l4 || frame.get(l3 + 9) != Some(&6) {
                return Err(bad);
            }
        }
        // IPv6 may carry extension headers; the host says where TCP starts.
        (true, 0x86dd) if l4 >= l3 + 40 => {}
        _ => return Err(bad),
    }
    let thl = usize::from(*frame.get(l4 + 12).ok_or(bad)? >> 4) * 4;
    let payload = l4 + thl;
    if thl < 20 || payload > frame.len() {
        return Err(bad);
    }
    Ok(GsoLayout {
        l3,
        l4,
        payload,
        v6,
    })
}

/// Cuts a TCP GSO frame into segments of at most `gso_size` payload bytes,
/// each with its own lengths, IPv4 id, sequence number, flags and complete
/// checksums.
fn segment(
    hdr: &VnetHdr,
    frame: &[u8],
    buffers: &mut BufCache,
    out: &mut Frame,
) -> Result<usize, OffloadError> {
    let lay = gso_layout(hdr, frame)?;
    let mss = usize::from(hdr.gso_size);
    if mss == 0 {
        return Err(OffloadError::ZeroSegmentSize);
    }
    let headers = &frame[..lay.payload];
    let payload = &frame[lay.payload..];
    let seq0 = u32::from_be_bytes(frame[lay.l4 + 4..lay.l4 + 8].try_into().unwrap_or([0; 4]));
    let id0 = u16::from_be_bytes([frame[lay.l3 + 4], frame[lay.l3 + 5]]);
    let flags0 = frame[lay.l4 + 13];
    let count = payload.len().div_ceil(mss).max(1);
    let first_new = out.len();
    let mut scratch = Vec::new();
    for (i, chunk) in payload
        .chunks(mss)
        .chain(
            // A GSO frame with no payload still goes out, once.
            std::iter::once(&[][..]).take(usize::from(payload.is_empty())),
        )
        .enumerate()
    {
        let last = i + 1 == count;
        let mut flags = flags0;
        if !last {
            flags &= !(0x01 | 0x08); // FIN, PSH: only the last segment
        }
        if i > 0 {
            flags &= !0x80; // CWR: only the first
        }
        let seg = Segment {
            lay: &lay,
            seq: seq0.wrapping_add((i * mss) as u32),
            id: id0.wrapping_add(i as u16),
            flags,
        };
        match seg.build(headers, chunk, buffers, &mut scratch) {
            Some(p) => out.push(p),
            None => {
                let mut made: Vec<Packet> = out.drain(first_new..).collect();
                buffers.free_all(&mut made);
                return Err(OffloadError::NoBuffer);
            }
        }
    }
    Ok(count)
}

/// What differs from one segment of a GSO frame to the next.
struct Segment<'a> {
    lay: &'a GsoLayout,
    seq: u32,
    id: u16,
    flags: u8,
}

impl Segment<'_> {
    fn build(
        &self,
        headers: &[u8],
        chunk: &[u8],
        buffers: &mut BufCache,
        scratch: &mut Vec<u8>,
    ) -> Option<Packet> {
        let len = headers.len() + chunk.len();
        let mut pkt = buffers.alloc()?;
        if len <= pkt.room_mut().len() {
            let room = pkt.room_mut();
            room[..headers.len()].copy_from_slice(headers);
            room[headers.len()..len].copy_from_slice(chunk);
            self.fix(&mut room[..len]);
            if pkt.set_len(len).is_err() {
                buffers.free(pkt);
                return None;
            }
            return Some(pkt);
        }
        // Jumbo MSS: assemble, then copy into a chain.
        buffers.free(pkt);
        scratch.clear();
        scratch.extend_from_slice(headers);
        scratch.extend_from_slice(chunk);
        self.fix(scratch);
        buffers.alloc_from(scratch).ok()
    }

    /// Rewrites lengths, id, sequence, flags and checksums of one segment.
    fn fix(&self, seg: &mut [u8]) {
        let GsoLayout { l3, l4, v6, .. } = *self.lay;
        let l4_len = seg.len() - l4;
        if v6 {
            let plen = (seg.len() - l3 - 40) as u16;
            seg[l3 + 4..l3 + 6].copy_from_slice(&plen.to_be_bytes());
        } else {
            let total = (seg.len() - l3) as u16;
            seg[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
            seg[l3 + 4..l3 + 6].copy_from_slice(&self.id.to_be_bytes());
            seg[l3 + 10..l3 + 12].fill(0);
            let c = finish(sum(&seg[l3..l4]));
            seg[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        seg[l4 + 4..l4 + 8].copy_from_slice(&self.seq.to_be_bytes());
        seg[l4 + 13] = self.flags;
        seg[l4 + 16..l4 + 18].fill(0);
        let pseudo = if v6 {
            let src: [u8; 16] = seg[l3 + 8..l3 + 24].try_into().unwrap_or([0; 16]);
            let dst: [u8; 16] = seg[l3 + 24..l3 + 40].try_into().unwrap_or([0; 16]);
            pseudo_header_v6(
                &Ipv6Addr::from(src),
                &Ipv6Addr::from(dst),
                IpProtocol::TCP,
                l4_len as u32,
            )
        } else {
            let src: [u8; 4] = seg[l3 + 12..l3 + 16].try_into().unwrap_or([0; 4]);
            let dst: [u8; 4] = seg[l3 + 16..l3 + 20].try_into().unwrap_or([0; 4]);
            pseudo_header_v4(
                Ipv4Addr::from(src),
                Ipv4Addr::from(dst),
                IpProtocol::TCP,
                l4_len as u16,
            )
        };
        let c = finish(pseudo + sum(&seg[l4..]));
        seg[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
    use sluice_buf::{HugePages, Pool, PoolConfig};

    fn pool() -> Pool {
        Pool::new(&PoolConfig {
            buffers: 512,
            huge_pages: HugePages::Never,
            lock: false,
        })
        .unwrap()
    }

    /// A TCP frame as a host hands it over: checksum field holding only the
    /// pseudo-header sum.
    fn offloaded_tcp(v6: bool, payload: &[u8], flags_fin_psh: bool) -> (Vec<u8>, VnetHdr) {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if v6 {
            b.ipv6([0xfd; 16], [0xfe; 16], 64)
        } else {
            b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        };
        let mut b = b.tcp(1000, 2000, 0xffff_fff0, 512).ack(77);
        if flags_fin_psh {
            b = b.fin().psh();
        }
        let mut f = Vec::new();
        b.write(&mut f, payload).unwrap();
        let l4 = if v6 { 14 + 40 } else { 14 + 20 };
        let l4_len = f.len() - l4;
        let pseudo = if v6 {
            pseudo_header_v6(
                &Ipv6Addr::from([0xfd; 16]),
                &Ipv6Addr::from([0xfe; 16]),
                IpProtocol::TCP,
                l4_len as u32,
            )
        } else {
            pseudo_header_v4(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                IpProtocol::TCP,
                l4_len as u16,
            )
        };
        let partial = sluice_wire::checksum::fold(pseudo);
        f[l4 + 16..l4 + 18].copy_from_slice(&partial.to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_NONE,
            hdr_len: (l4 + 20) as u16,
            gso_size: 0,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        (f, hdr)
    }

    /// Checks the IP and TCP checksums of a frame; its sequence number,
    /// flags and payload.
    fn check_tcp(frame: &[u8]) -> (u32, u8, Vec<u8>) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("not tcp")
        };
        let segment = tcp.slice();
        let pseudo = match p.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => {
                let h = ip.header();
                assert_eq!(finish(sum(h.slice())), 0, "ipv4 header checksum");
                pseudo_header_v4(
                    h.source_addr(),
                    h.destination_addr(),
                    IpProtocol::TCP,
                    segment.len() as u16,
                )
            }
            etherparse::NetSlice::Ipv6(ip) => {
                let h = ip.header();
                pseudo_header_v6(
                    &h.source_addr(),
                    &h.destination_addr(),
                    IpProtocol::TCP,
                    segment.len() as u32,
                )
            }
            _ => panic!("not ip"),
        };
        assert_eq!(finish(pseudo + sum(segment)), 0, "tcp checksum");
        (tcp.sequence_number(), segment[13], tcp.payload().to_vec())
    }

    #[test]
    fn partial_checksums_without_a_header_are_found_and_completed() {
        for v6 in [false, true] {
            let (mut f, _) = offloaded_tcp(v6, b"no header to say so", false);
            f.extend_from_slice(&[0; 6]); // Ethernet padding
            assert!(complete_partial(&mut f));
            check_tcp(&f[..f.len() - 6]);
            // Now complete: a second pass leaves it alone.
            let before = f.clone();
            assert!(!complete_partial(&mut f));
            assert_eq!(f, before);
        }
        // Not TCP/UDP, truncated, or garbage: untouched, no panic.
        for cut in [0, 5, 14, 20, 33, 40] {
            let (f, _) = offloaded_tcp(false, b"x", false);
            let mut g = f[..cut].to_vec();
            assert!(!complete_partial(&mut g));
        }
        let mut arp = vec![0xffu8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!complete_partial(&mut arp));
    }

    #[test]
    fn header_round_trips() {
        let h = VnetHdr {
            flags: 1,
            gso_type: GSO_TCPV6 | GSO_ECN,
            hdr_len: 86,
            gso_size: 1440,
            csum_start: 54,
            csum_offset: 16,
        };
        let mut b = [0u8; 12];
        assert!(h.write(&mut b));
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert!(h.is_gso() && h.needs_csum());
        assert!(!VnetHdr::NONE.is_gso());
        assert_eq!(VnetHdr::parse(&b[..9]), None);
        assert!(!h.write(&mut [0u8; 9]));
    }

    #[test]
    fn partial_checksum_is_completed() {
        let pool = pool();
        let mut c = pool.cache(32);
        for v6 in [false, true] {
            let (f, hdr) = offloaded_tcp(v6, b"hello, offload", false);
            let mut out = Frame::new();
            assert_eq!(receive(&hdr, &f, &mut c, &mut out), Ok(1));
            check_tcp(out[0].data());
            c.free_all(&mut out);
            let mut g = f.clone();
            assert!(complete_checksum(&mut g, hdr.csum_start.into(), 16));
            check_tcp(&g);
            assert!(!complete_checksum(&mut g, 60_000, 16));
            assert!(!complete_checksum(&mut g, usize::MAX, 16));
        }
        drop(c);
        assert_eq!(pool.free_count(), pool.capacity());
    }

    #[test]
    fn gso_frames_are_cut_into_valid_segments() {
        let pool = pool();
        let mut c = pool.cache(32);
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        for v6 in [false, true] {
            let (f, mut hdr) = offloaded_tcp(v6, &payload, true);
            hdr.gso_type = if v6 { GSO_TCPV6 } else { GSO_TCPV4 };
            hdr.gso_size = 1448;
            let mut out = Frame::new();
            assert_eq!(receive(&hdr, &f, &mut c, &mut out), Ok(7));
            let mut joined = Vec::new();
            for (i, p) in out.iter().enumerate() {
                let (seq, flags, data) = check_tcp(p.data());
                assert_eq!(seq, 0xffff_fff0u32.wrapping_add(i as u32 * 1448));
                let last = i == 6;
                assert_eq!(flags & 0x09 != 0, last, "FIN/PSH only on the last");
                assert!(data.len() == 1448 || last);
                joined.extend(data);
            }
            assert_eq!(joined, payload);
            c.free_all(&mut out);
        }
        drop(c);
        assert_eq!(pool.free_count(), pool.capacity());
    }

    #[test]
    fn bad_gso_frames_are_refused_without_leaks() {
        let pool = pool();
        let mut c = pool.cache(32);
        let (f, mut hdr) = offloaded_tcp(false, &[1; 3000], false);
        let mut out = Frame::new();
        hdr.gso_type = GSO_TCPV4;
        hdr.gso_size = 0;
        assert_eq!(
            receive(&hdr, &f, &mut c, &mut out),
            Err(OffloadError::ZeroSegmentSize)
        );
        hdr.gso_size = 1000;
        hdr.gso_type = GSO_UDP;
        assert_eq!(
            receive(&hdr, &f, &mut c, &mut out),
            Err(OffloadError::UnsupportedGso(GSO_UDP))
        );
        hdr.gso_type = GSO_TCPV6;
        assert_eq!(
            receive(&hdr, &f, &mut c, &mut out),
            Err(OffloadError::BadGsoHeaders)
        );
        hdr.gso_type = GSO_TCPV4;
        for cut in [0, 13, 20, 40, 50] {
            assert!(
                receive(&hdr, &f[..cut], &mut c, &mut out).is_err(),
                "cut {cut}"
            );
        }
        hdr.gso_type = GSO_NONE;
        hdr.csum_start = 3000;
        assert_eq!(
            receive(&hdr, &f, &mut c, &mut out),
            Err(OffloadError::BadChecksumOffsets)
        );
        assert!(out.is_empty());
        drop(c);
        assert_eq!(pool.free_count(), pool.capacity());
    }
}
