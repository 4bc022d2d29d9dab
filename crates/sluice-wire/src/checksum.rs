//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! The checksum is the one's complement of the one's-complement sum of the
//! data taken as big-endian 16-bit words. Because `2^16 ≡ 1 (mod 0xffff)`, the
//! sum can be accumulated in wider words and folded once at the end without
//! changing the result; [`sum`] adds 32-bit words into a `u64`, which is about
//! twice as fast as a 16-bit loop and cannot overflow for any realistic input
//! (it would take 2^32 words).
//!
//! Partial sums (`u64`) compose by plain addition, so a TCP/UDP checksum is
//! `finish(pseudo_header_v4(..) + sum(segment))`. Only the *last* piece may
//! have odd length: an odd piece is padded with a zero byte at its end.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::IpProtocol;

/// One's-complement partial sum of `data` as big-endian 16-bit words,
/// not yet folded. An odd final byte is treated as the high byte of a word
/// whose low byte is zero (RFC 1071).
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        acc += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        acc += u64::from(u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]));
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        acc += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let Some(&last) = rest.first() {
        acc += u64::from(last) << 8;
    }
    acc
}

/// Fold a partial sum to 16 bits with end-around carry (no complement).
///
/// The result is 0 only if the sum is 0; otherwise it is in `1..=0xffff`.
#[inline]
pub fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Turn a partial sum into the checksum field value: `!fold(sum)`.
#[inline]
pub fn finish(sum: u64) -> u16 {
    !fold(sum)
}

/// RFC 1071 checksum of `data`: `!fold(sum(data))`.
///
/// Computing this over data that already contains a correct checksum gives 0,
/// which is how verification works.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// Partial sum of the IPv4 pseudo-header used by TCP and UDP (RFC 793/768):
/// source, destination, zero + protocol, and the upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u64 {
    u64::from(u32::from_be_bytes(src.octets()))
        + u64::from(u32::from_be_bytes(dst.octets()))
        + u64::from(protocol.0)
        + u64::from(length)
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): source,
/// destination, 32-bit upper-layer length, zero + next header. `next_header` is
/// the upper-layer protocol (e.g. TCP), not the first extension header.
#[inline]
pub fn pseudo_header_v6(
    src: &Ipv6Addr,
    dst: &Ipv6Addr,
    next_header: IpProtocol,
    length: u32,
) -> u64 {
    sum(&src.octets()) + sum(&dst.octets()) + u64::from(length) + u64::from(next_header.0)
}

/// RFC 1624 incremental update (eqn. 3) for one changed 16-bit word:
/// `HC' = ~(~HC + ~m + m')`.
///
/// `old_csum` is the checksum field as stored, `old_word`/`new_word` the
/// 16-bit-aligned word before and after the change. Lets a router rewrite a
/// TTL or a port without touching the rest of the packet. The result equals a
/// full recomputation whenever the covered data does not sum to zero (true
/// for every IPv4 header and every TCP/UDP pseudo-header).
#[inline]
pub fn update_u16(old_csum: u16, old_word: u16, new_word: u16) -> u16 {
    let s = u64::from(!old_csum) + u64::from(!old_word) + u64::from(new_word);
    !fold(s)
}

/// [`update_u16`] for a changed 32-bit aligned value, e.g. an IPv4 address
/// rewritten by NAT (patch both the IPv4 header checksum and the TCP/UDP
/// checksum, whose pseudo-header covers the address).
#[inline]
pub fn update_u32(old_csum: u16, old: u32, new: u32) -> u16 {
    let s = u64::from(!old_csum)
        + u64::from(!(old >> 16) as u16)
        + u64::from(!(old as u16))
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward reference: 16-bit words, fold in a u32 each step.
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            s += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
            s = (s & 0xffff) + (s >> 16);
            i += 2;
        }
        if i < data.len() {
            s += u32::from(data[i]) << 8;
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn matches_naive_for_all_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(checksum(&data[..n]), naive(&data[..n]), "len {n}");
        }
        let ff = [0xffu8; 64];
        for n in 0..ff.len() {
            assert_eq!(checksum(&ff[..n]), naive(&ff[..n]), "ff len {n}");
        }
    }

    #[test]
    fn real_ipv4_header() {
        // 45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7 (Wikipedia).
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0);
        let mut z = h;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(checksum(&z), 0xb861);
    }

    #[test]
    fn fold_edges() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(u64::MAX), 0xffff);
        assert_eq!(fold(0x1_fffe), 0xffff);
    }

    #[test]
    fn incremental_matches_recompute() {
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        for ttl in (1..=0x40u8).rev() {
            let old_word = u16::from_be_bytes([h[8], h[9]]);
            let old_csum = u16::from_be_bytes([h[10], h[11]]);
            h[8] = ttl - 1;
            let new_word = u16::from_be_bytes([h[8], h[9]]);
            let inc = update_u16(old_csum, old_word, new_word);
            h[10] = 0;
            h[11] = 0;
            let full = checksum(&h);
            assert_eq!(inc, full, "ttl {ttl}");
            h[10..12].copy_from_slice(&full.to_be_bytes());
        }
        // Address rewrite with update_u32.
        let old_csum = u16::from_be_bytes([h[10], h[11]]);
        let old = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let new = 0x0a00_0001u32;
        h[12..16].copy_from_slice(&new.to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        assert_eq!(update_u32(old_csum, old, new), checksum(&h));
    }

    #[test]
    fn pseudo_headers() {
        let s = Ipv4Addr::new(192, 168, 0, 1);
        let d = Ipv4Addr::new(192, 168, 0, 199);
        let p = pseudo_header_v4(s, d, IpProtocol::UDP, 0x5f);
        let bytes = [192, 168, 0, 1, 192, 168, 0, 199, 0, 17, 0, 0x5f];
        assert_eq!(fold(p), fold(sum(&bytes)));

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::abcd:1".parse().unwrap();
        let p6 = pseudo_header_v6(&s6, &d6, IpProtocol::TCP, 0x0001_0203);
        let mut b = Vec::new();
        b.extend_from_slice(&s6.octets());
        b.extend_from_slice(&d6.octets());
        b.extend_from_slice(&0x0001_0203u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0, 6]);
        assert_eq!(fold(p6), fold(sum(&b)));
    }
}
