//! Internet checksums updated for a changed field without reading the
//! rest of the packet (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).

/// The checksum `sum` after a 16-bit word of what it covers changes
/// from `old` to `new`.
#[inline(always)]
pub fn update16(sum: u16, old: u16, new: u16) -> u16 {
    let mut s = u32::from(!sum) + u32::from(!old) + u32::from(new);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// The checksum `sum` after a 32-bit field (an address) changes.
#[inline(always)]
pub fn update32(sum: u16, old: u32, new: u32) -> u16 {
    let s = update16(sum, (old >> 16) as u16, (new >> 16) as u16);
    update16(s, old as u16, new as u16)
}

/// The one's complement sum of `b` (odd length padded with a zero).
pub fn sum(b: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut chunks = b.chunks_exact(2);
    for c in &mut chunks {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u32::from(*last) << 8;
    }
    s
}

/// The checksum of what sums to `s`.
pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_equals_a_recomputation() {
        let mut data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        for (at, new) in [(4usize, 0xffffu16), (10, 0), (38, 0x1234), (0, 0x8000)] {
            let before = fold(sum(&data));
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            assert_eq!(update16(before, old, new), fold(sum(&data)), "word at {at}");
        }
        let before = fold(sum(&data));
        let old = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
        data[12..16].copy_from_slice(&0xcb00_7101u32.to_be_bytes());
        assert_eq!(update32(before, old, 0xcb00_7101), fold(sum(&data)));
    }
}
