//! Software RSS: a flow hash on the 5-tuple, for spreading flows over
//! workers when the NIC does not (or cannot) do it.
//!
//! Two hashes, both computed on the same key bytes:
//!
//! - [`Toeplitz`], the hash NICs compute for Receive Side Scaling, on the
//!   input the Microsoft RSS specification defines (source address,
//!   destination address, then source and destination ports for TCP, UDP
//!   and SCTP) with any 40-byte key: with [`MICROSOFT_KEY`] it gives the
//!   hash a NIC would put in its receive descriptor, so software steering
//!   and hardware steering can agree. Table-driven: one lookup per input
//!   byte.
//! - [`fast`], a folded-multiply hash of the same bytes: a few
//!   multiplications, equally uniform over workers (tested below), for
//!   when nothing has to agree with a NIC.
//!
//! Symmetric: with [`FlowKey::symmetric`] the two endpoints are put in a
//! canonical order first, so both directions of a connection hash alike
//! (whatever the hash and key). [`SYMMETRIC_KEY`] is the other classic
//! way, for Toeplitz only and only for addresses and ports of equal width.
//!
//! Frames that are not IP hash their two MAC addresses; IPv4 fragments and
//! protocols without ports hash the addresses alone, so that every
//! fragment of a datagram lands where its first one does.

/// The key of the Microsoft RSS specification, which most NIC drivers use
/// by default.
pub const MICROSOFT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// A key that repeats every 16 bits, which makes Toeplitz symmetric for
/// swapped addresses and ports (Woo and Park's symmetric RSS).
pub const SYMMETRIC_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// Longest input: two IPv6 addresses and two ports.
pub const MAX_INPUT: usize = 36;

/// The Toeplitz hash with one key, as per-byte tables.
pub struct Toeplitz {
    /// `tables[i][b]`: the hash contribution of byte value `b` at input
    /// position `i`.
    tables: Box<[[u32; 256]; MAX_INPUT]>,
}

impl Toeplitz {
    /// Tables for `key`.
    pub fn new(key: &[u8; 40]) -> Toeplitz {
        let mut tables = Box::new([[0u32; 256]; MAX_INPUT]);
        for (i, table) in tables.iter_mut().enumerate() {
            // The 32-bit key window under input bit `8i + j` is key bits
            // `8i + j .. 8i + j + 32`.
            let window = |bit: usize| -> u32 {
                let k = |n: usize| u64::from(key[n]);
                let b = bit / 8;
                let w = k(b) << 32 | k(b + 1) << 24 | k(b + 2) << 16 | k(b + 3) << 8 | k(b + 4);
                (w >> (8 - bit % 8)) as u32
            };
            for (v, slot) in table.iter_mut().enumerate() {
                *slot = (0..8)
                    .filter(|j| v & (0x80 >> j) != 0)
                    .fold(0, |h, j| h ^ window(8 * i + j));
            }
        }
        Toeplitz { tables }
    }

    /// The hash of `input` (at most [`MAX_INPUT`] bytes; more are ignored).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        // The lengths of the usual keys, unrolled.
        match input.len() {
            12 => self.fixed::<12>(input),
            36 => self.fixed::<36>(input),
            _ => input
                .iter()
                .zip(self.tables.iter())
                .fold(0, |h, (&b, t)| h ^ t[usize::from(b)]),
        }
    }

    #[inline(always)]
    fn fixed<const N: usize>(&self, input: &[u8]) -> u32 {
        let Some(bytes) = input.first_chunk::<N>() else {
            return 0;
        };
        let mut h = 0;
        for (t, &b) in self.tables.iter().zip(bytes) {
            h ^= t[usize::from(b)];
        }
        h
    }
}

/// A folded-multiply hash of up to [`MAX_INPUT`] bytes: each 8-byte word
/// is multiplied into the state and the 128-bit product folded back.
#[inline]
pub fn fast(input: &[u8]) -> u32 {
    let mut padded = [0u8; PADDED];
    let n = input.len().min(MAX_INPUT);
    padded[..n].copy_from_slice(&input[..n]);
    fast_padded(&padded, n)
}

/// Key bytes rounded up to whole 8-byte words.
const PADDED: usize = MAX_INPUT.div_ceil(8) * 8;

/// [`fast`] on `len` bytes at the start of `bytes`, zero after them: whole
/// words, read at fixed offsets.
#[inline(always)]
fn fast_padded(bytes: &[u8; PADDED], len: usize) -> u32 {
    const K: [u64; 3] = [
        0x9e37_79b9_7f4a_7c15,
        0xbf58_476d_1ce4_e5b9,
        0x94d0_49bb_1331_11eb,
    ];
    let fold = |a: u64, b: u64| {
        let m = u128::from(a) * u128::from(b);
        (m as u64) ^ (m >> 64) as u64
    };
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        u64::from_le_bytes(w)
    };
    // An IPv4 key is two words; longer ones fold in the rest.
    let mut h = fold(word(0) ^ K[0] ^ len as u64, word(1) ^ K[1]);
    if len > 16 {
        h = fold(h ^ word(2), K[2]);
        h = fold(h ^ word(3), K[1]);
        h = fold(h ^ word(4), K[2]);
    }
    let h = fold(h, K[0]);
    (h ^ (h >> 32)) as u32
}

/// The bytes a flow is hashed on, in the Microsoft RSS order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// The key, then zeros.
    bytes: [u8; PADDED],
    len: u8,
}

const IPV4: [u8; 2] = [0x08, 0x00];
const IPV6: [u8; 2] = [0x86, 0xdd];
const VLAN: [u8; 2] = [0x81, 0x00];
const QINQ: [u8; 2] = [0x88, 0xa8];

/// Whether IP protocol `p` carries 16-bit ports first (TCP, UDP, SCTP).
fn has_ports(p: u8) -> bool {
    matches!(p, 6 | 17 | 132)
}

impl FlowKey {
    /// The key of an Ethernet frame: past up to two VLAN tags, the IPv4 or
    /// IPv6 addresses and, for TCP, UDP and SCTP (not fragments), the
    /// ports; for other frames the two MAC addresses. Never fails: a
    /// truncated header hashes what it has.
    #[inline]
    pub fn of_frame(frame: &[u8], symmetric: bool) -> FlowKey {
        let mut off = 12;
        let mut et = [0u8; 2];
        for _ in 0..3 {
            match frame.get(off..off + 2) {
                Some(&[a, b]) => et = [a, b],
                _ => break,
            }
            if et == VLAN || et == QINQ {
                off += 4;
            } else {
                break;
            }
        }
        let l3 = frame.get(off + 2..).unwrap_or(&[]);
        if et == IPV4 {
            if let Some(h) = l3.get(..20) {
                let word = |o: usize| u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
                let ihl = usize::from(h[0] & 0xf) * 4;
                let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
                let ports = if has_ports(h[9]) && !fragment {
                    ports(l3.get(ihl..))
                } else {
                    None
                };
                return FlowKey::v4(word(12), word(16), ports, symmetric);
            }
        } else if et == IPV6
            && let Some(h) = l3.get(..40)
        {
            let addr = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&h[o..o + 16]);
                u128::from_be_bytes(a)
            };
            let ports = if has_ports(h[6]) {
                ports(l3.get(40..))
            } else {
                None
            };
            return FlowKey::v6(addr(8), addr(24), ports, symmetric);
        }
        let macs = frame.get(..12).unwrap_or(frame);
        let (a, b) = macs.split_at(macs.len() / 2);
        FlowKey::ip(b, a, None, symmetric)
    }

    /// The key of an IPv4 flow: addresses, and ports when it has them.
    #[inline(always)]
    pub fn v4(src: u32, dst: u32, ports: Option<(u16, u16)>, symmetric: bool) -> FlowKey {
        let (mut s, mut d) = (src, dst);
        let (mut sp, mut dp) = ports.unwrap_or((0, 0));
        if symmetric && (s, sp) > (d, dp) {
            (s, d, sp, dp) = (d, s, dp, sp);
        }
        let mut bytes = [0u8; PADDED];
        bytes[..4].copy_from_slice(&s.to_be_bytes());
        bytes[4..8].copy_from_slice(&d.to_be_bytes());
        bytes[8..10].copy_from_slice(&sp.to_be_bytes());
        bytes[10..12].copy_from_slice(&dp.to_be_bytes());
        let len = if ports.is_some() { 12 } else { 8 };
        FlowKey { bytes, len }
    }

    /// The key of an IPv6 flow: addresses, and ports when it has them.
    #[inline(always)]
    pub fn v6(src: u128, dst: u128, ports: Option<(u16, u16)>, symmetric: bool) -> FlowKey {
        let (mut s, mut d) = (src, dst);
        let (mut sp, mut dp) = ports.unwrap_or((0, 0));
        if symmetric && (s, sp) > (d, dp) {
            (s, d, sp, dp) = (d, s, dp, sp);
        }
        let mut bytes = [0u8; PADDED];
        bytes[..16].copy_from_slice(&s.to_be_bytes());
        bytes[16..32].copy_from_slice(&d.to_be_bytes());
        bytes[32..34].copy_from_slice(&sp.to_be_bytes());
        bytes[34..36].copy_from_slice(&dp.to_be_bytes());
        let len = if ports.is_some() { 36 } else { 32 };
        FlowKey { bytes, len }
    }

    /// The key of source `src`, destination `dst` (addresses of one
    /// width: IPv4, IPv6, or MAC) and, when given, the four bytes of
    /// source and destination port.
    pub fn ip(src: &[u8], dst: &[u8], ports: Option<&[u8]>, symmetric: bool) -> FlowKey {
        let p = ports.and_then(|p| self::ports(Some(p)));
        if let (Ok(s), Ok(d)) = (<[u8; 4]>::try_from(src), <[u8; 4]>::try_from(dst)) {
            return FlowKey::v4(u32::from_be_bytes(s), u32::from_be_bytes(d), p, symmetric);
        }
        if let (Ok(s), Ok(d)) = (<[u8; 16]>::try_from(src), <[u8; 16]>::try_from(dst)) {
            return FlowKey::v6(u128::from_be_bytes(s), u128::from_be_bytes(d), p, symmetric);
        }
        let (mut s, mut d) = (src, dst);
        if symmetric && s > d {
            std::mem::swap(&mut s, &mut d);
        }
        let mut k = FlowKey {
            bytes: [0; PADDED],
            len: 0,
        };
        for part in [s, d] {
            let at = usize::from(k.len);
            let n = part.len().min(MAX_INPUT - at);
            k.bytes[at..at + n].copy_from_slice(&part[..n]);
            k.len += n as u8;
        }
        k
    }

    /// The bytes to hash.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Source and destination port from the first four bytes of an L4 header.
#[inline(always)]
fn ports(l4: Option<&[u8]>) -> Option<(u16, u16)> {
    match l4?.get(..4)? {
        &[a, b, c, d] => Some((u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]))),
        _ => None,
    }
}

/// Which hash [`Rss`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RssHash {
    /// Toeplitz with the Microsoft key: what a NIC computes.
    #[default]
    Toeplitz,
    /// [`fast`].
    Fast,
}

/// A configured flow hash: which hash, symmetric or not.
pub struct Rss {
    toeplitz: Option<Toeplitz>,
    symmetric: bool,
}

impl Rss {
    /// A flow hash of kind `hash`, symmetric when asked.
    pub fn new(hash: RssHash, symmetric: bool) -> Rss {
        Rss {
            toeplitz: (hash == RssHash::Toeplitz).then(|| Toeplitz::new(&MICROSOFT_KEY)),
            symmetric,
        }
    }

    /// The flow hash of an Ethernet frame.
    #[inline]
    pub fn hash(&self, frame: &[u8]) -> u32 {
        let key = FlowKey::of_frame(frame, self.symmetric);
        match &self.toeplitz {
            Some(t) => t.hash(key.bytes()),
            None => fast_padded(&key.bytes, usize::from(key.len)),
        }
    }
}

/// Entries of an indirection table, as in most NICs.
pub const RETA_SIZE: usize = 128;

/// The indirection table: the low bits of a flow hash choose an entry,
/// the entry names the worker (a NIC's queue).
#[derive(Debug, Clone)]
pub struct Reta([u16; RETA_SIZE]);

impl Reta {
    /// Entries dealt round-robin to `workers` workers.
    pub fn round_robin(workers: usize) -> Reta {
        let n = workers.clamp(1, usize::from(u16::MAX));
        Reta(std::array::from_fn(|i| (i % n) as u16))
    }

    /// The worker of flow hash `hash`.
    #[inline(always)]
    pub fn worker(&self, hash: u32) -> usize {
        usize::from(self.0[hash as usize % RETA_SIZE])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Toeplitz straight from its definition, a bit at a time: for every
    /// set input bit (most significant first), XOR in the 32 key bits
    /// that start at that bit's position.
    fn toeplitz_by_definition(key: &[u8; 40], input: &[u8]) -> u32 {
        let key_bit = |n: usize| (key[n / 8] >> (7 - n % 8)) & 1;
        let mut h = 0u32;
        for (i, byte) in input.iter().enumerate() {
            for j in 0..8 {
                if byte & (0x80 >> j) != 0 {
                    let start = 8 * i + j;
                    let window = (0..32).fold(0u32, |w, k| w << 1 | u32::from(key_bit(start + k)));
                    h ^= window;
                }
            }
        }
        h
    }

    /// The Microsoft RSS verification suite, IPv4: (destination,
    /// destination port, source, source port, hash of the addresses,
    /// hash with the ports).
    const V4: &[(&str, u16, &str, u16, u32, u32)] = &[
        (
            "161.142.100.80",
            1766,
            "66.9.149.187",
            2794,
            0x323e_8fc2,
            0x51cc_c178,
        ),
        (
            "65.69.140.83",
            4739,
            "199.92.111.2",
            14230,
            0xd718_262a,
            0xc626_b0ea,
        ),
        (
            "12.22.207.184",
            38024,
            "24.19.198.95",
            12898,
            0xd2d0_a5de,
            0x5c2b_394a,
        ),
        (
            "209.142.163.6",
            2217,
            "38.27.205.30",
            48228,
            0x8298_9176,
            0xafc7_327f,
        ),
        (
            "202.188.127.2",
            1303,
            "153.39.163.191",
            44251,
            0x5d18_09c5,
            0x10e8_28a2,
        ),
    ];

    /// The same suite, IPv6.
    const V6: &[(&str, u16, &str, u16, u32, u32)] = &[
        (
            "3ffe:2501:200:3::1",
            1766,
            "3ffe:2501:200:1fff::7",
            2794,
            0x2cc1_8cd5,
            0x4020_7d3d,
        ),
        (
            "ff02::1",
            4739,
            "3ffe:501:8::260:97ff:fe40:efab",
            14230,
            0x0f0c_461c,
            0xdde5_1bbf,
        ),
        (
            "fe80::200:f8ff:fe21:67cf",
            38024,
            "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
            44251,
            0x4b61_e985,
            0x02d1_feef,
        ),
    ];

    fn ports(src: u16, dst: u16) -> [u8; 4] {
        let (s, d) = (src.to_be_bytes(), dst.to_be_bytes());
        [s[0], s[1], d[0], d[1]]
    }

    #[test]
    fn microsoft_verification_suite_ipv4() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        for &(dst, dport, src, sport, addrs, with_ports) in V4 {
            let s = src.parse::<Ipv4Addr>().unwrap().octets();
            let d = dst.parse::<Ipv4Addr>().unwrap().octets();
            let k2 = FlowKey::ip(&s, &d, None, false);
            let p = ports(sport, dport);
            let k4 = FlowKey::ip(&s, &d, Some(&p), false);
            assert_eq!(t.hash(k2.bytes()), addrs, "{src} > {dst}");
            assert_eq!(
                t.hash(k4.bytes()),
                with_ports,
                "{src}:{sport} > {dst}:{dport}"
            );
            assert_eq!(
                toeplitz_by_definition(&MICROSOFT_KEY, k4.bytes()),
                with_ports
            );
        }
    }

    #[test]
    fn microsoft_verification_suite_ipv6() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        for &(dst, dport, src, sport, addrs, with_ports) in V6 {
            let s = src.parse::<Ipv6Addr>().unwrap().octets();
            let d = dst.parse::<Ipv6Addr>().unwrap().octets();
            let p = ports(sport, dport);
            let k4 = FlowKey::ip(&s, &d, Some(&p), false);
            assert_eq!(t.hash(FlowKey::ip(&s, &d, None, false).bytes()), addrs);
            assert_eq!(t.hash(k4.bytes()), with_ports, "{src} > {dst}");
            assert_eq!(
                toeplitz_by_definition(&MICROSOFT_KEY, k4.bytes()),
                with_ports
            );
        }
    }

    #[test]
    fn tables_agree_with_the_definition_on_any_key_and_input() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let key: [u8; 40] = std::array::from_fn(|_| next() as u8);
            let len = (next() % (MAX_INPUT as u64 + 1)) as usize;
            let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert_eq!(
                Toeplitz::new(&key).hash(&input),
                toeplitz_by_definition(&key, &input)
            );
        }
    }

    fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&IPV4);
        f[14] = 0x45;
        f[14 + 9] = 17;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..38].copy_from_slice(&ports(sport, dport));
        f
    }

    #[test]
    fn a_frame_hashes_as_its_tuple_with_or_without_vlan_tags() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        let f = udp4([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766);
        assert_eq!(t.hash(FlowKey::of_frame(&f, false).bytes()), 0x51cc_c178);
        let mut tagged = f[..12].to_vec();
        tagged.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20]);
        tagged.extend_from_slice(&f[12..]);
        assert_eq!(
            FlowKey::of_frame(&tagged, false),
            FlowKey::of_frame(&f, false)
        );
    }

    #[test]
    fn fragments_and_portless_protocols_hash_the_addresses() {
        let t = Toeplitz::new(&MICROSOFT_KEY);
        let mut f = udp4([66, 9, 149, 187], [161, 142, 100, 80], 2794, 1766);
        f[14 + 6] = 0x20; // more fragments
        assert_eq!(t.hash(FlowKey::of_frame(&f, false).bytes()), 0x323e_8fc2);
        f[14 + 6] = 0;
        f[14 + 9] = 1; // ICMP
        assert_eq!(t.hash(FlowKey::of_frame(&f, false).bytes()), 0x323e_8fc2);
    }

    #[test]
    fn truncated_and_foreign_frames_hash_without_fault() {
        let f = udp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        let rss = Rss::new(RssHash::Toeplitz, true);
        for n in 0..f.len() {
            rss.hash(&f[..n]);
        }
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(FlowKey::of_frame(&arp, false).bytes().len(), 12);
    }

    #[test]
    fn symmetric_keys_hash_both_directions_alike() {
        for hash in [RssHash::Toeplitz, RssHash::Fast] {
            let rss = Rss::new(hash, true);
            let plain = Rss::new(hash, false);
            let a = udp4([10, 0, 0, 1], [192, 168, 7, 9], 40000, 53);
            let b = udp4([192, 168, 7, 9], [10, 0, 0, 1], 53, 40000);
            assert_eq!(rss.hash(&a), rss.hash(&b), "{hash:?}");
            assert_ne!(plain.hash(&a), plain.hash(&b), "{hash:?}");
        }
        // The 0x6d5a key: symmetric without reordering, for IPv4.
        let t = Toeplitz::new(&SYMMETRIC_KEY);
        let (s, d, p, q) = (
            [10, 0, 0, 1],
            [192, 168, 7, 9],
            ports(40000, 53),
            ports(53, 40000),
        );
        assert_eq!(
            t.hash(FlowKey::ip(&s, &d, Some(&p), false).bytes()),
            t.hash(FlowKey::ip(&d, &s, Some(&q), false).bytes())
        );
    }

    /// 64k random UDP flows spread over 2, 3, 4 and 8 workers through the
    /// indirection table: every worker within 3 % of its fair share, for
    /// both hashes.
    #[test]
    fn both_hashes_spread_flows_evenly() {
        let mut x = 0x9e37_79b9u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let flows: Vec<Vec<u8>> = (0..65_536)
            .map(|_| {
                let r = next();
                // Addresses from a /16, as a real traffic mix has.
                udp4(
                    [10, 0, (r >> 8) as u8, r as u8],
                    [10, 1, (r >> 16) as u8, (r >> 24) as u8],
                    (r >> 32) as u16 | 1024,
                    (r >> 48) as u16 % 1024,
                )
            })
            .collect();
        for hash in [RssHash::Toeplitz, RssHash::Fast] {
            let rss = Rss::new(hash, false);
            for workers in [2usize, 3, 4, 8] {
                let reta = Reta::round_robin(workers);
                let mut per = vec![0u32; workers];
                for f in &flows {
                    per[reta.worker(rss.hash(f))] += 1;
                }
                // A round-robin table of 128 entries over 3 workers is
                // itself 43/43/42: compare with each worker's table share.
                for (w, &n) in per.iter().enumerate() {
                    let entries = (0..RETA_SIZE).filter(|&i| i % workers == w).count();
                    let fair = flows.len() as f64 * entries as f64 / RETA_SIZE as f64;
                    let off = (f64::from(n) - fair).abs() / fair;
                    assert!(off < 0.03, "{hash:?}, {workers} workers: {per:?}");
                }
            }
        }
    }
}
