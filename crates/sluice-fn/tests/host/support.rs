//! What the tests share: a pool that must end full, independent checksum
//! checks, and requests built with etherparse.

pub use std::net::{Ipv4Addr, Ipv6Addr};

pub use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, EtherType, Icmpv4Type, Icmpv6Type, IpDscp, IpHeaders,
    IpNumber, Ipv4Header, NetSlice, PacketBuilder, SlicedPacket, TransportSlice, VlanId, icmpv4,
    icmpv6,
};
pub use sluice_buf::{BufCache, HugePages, Packet, Pool, PoolConfig};
pub use sluice_fn::host::{
    ArpInfo, HostError, Icmp4Error, Icmp6Error, NaFlags, NdInfo, NdKind, RateLimiter, arp, icmp4,
    icmp6, nd,
};
pub use sluice_wire::MacAddr;

pub const ME_MAC: MacAddr = MacAddr([0x02, 0x5c, 0, 0, 0, 1]);
pub const PEER_MAC: MacAddr = MacAddr([0x02, 0x5c, 0, 0, 0, 2]);
pub const ME4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const PEER4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const FAR4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 99);
pub const ME6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0x12, 0x3456);
pub const FAR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 9);
pub const LL_ME6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub const LL_PEER6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5c, 0, 0, 2);

/// A pool and its cache; at the end of a test every buffer must be back.
pub struct Bufs {
    pool: Pool,
    cache: BufCache,
}

impl Bufs {
    pub fn new() -> Bufs {
        let pool = Pool::new(&PoolConfig {
            buffers: 512,
            huge_pages: HugePages::Never,
            lock: false,
        })
        .unwrap();
        let cache = pool.cache(32);
        Bufs { pool, cache }
    }

    pub fn packet(&mut self, bytes: &[u8]) -> Packet {
        self.cache.alloc_from(bytes).unwrap()
    }

    /// A packet of `bytes` whose first buffer starts `skew` bytes into the
    /// data, so that segment boundaries fall at odd offsets.
    pub fn skewed(&mut self, bytes: &[u8], skew: usize) -> Packet {
        let mut v = vec![0xa5; skew];
        v.extend_from_slice(bytes);
        let mut p = self.packet(&v);
        p.advance(skew).unwrap();
        p
    }

    pub fn empty(&mut self) -> Packet {
        self.cache.alloc().unwrap()
    }

    /// The packet's bytes; the packet goes back to the pool.
    pub fn take(&mut self, p: Packet) -> Vec<u8> {
        assert_valid(&p);
        let mut v = Vec::new();
        p.copy_to(&mut v);
        self.cache.free(p);
        v
    }
}

impl Drop for Bufs {
    fn drop(&mut self) {
        self.cache.flush();
        if !std::thread::panicking() {
            assert_eq!(
                self.pool.free_count(),
                self.pool.capacity(),
                "leaked buffers"
            );
        }
    }
}

/// A packet handle is consistent: its segments add up to its length and its
/// first buffer's room adds up to the buffer.
pub fn assert_valid(p: &Packet) {
    assert_eq!(p.segments().map(<[u8]>::len).sum::<usize>(), p.total_len());
    assert_eq!(
        p.headroom() + p.data().len() + p.tailroom(),
        sluice_buf::HEADROOM + sluice_buf::DATA_SIZE
    );
}

/// RFC 1071 checksum the slow way, independent of `sluice_wire::checksum`.
pub fn ref_checksum(chunks: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = chunks.concat();
    let mut s: u32 = 0;
    for w in bytes.chunks(2) {
        let hi = u32::from(w[0]) << 8;
        let lo = w.get(1).copied().map_or(0, u32::from);
        s += hi | lo;
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

pub fn v6_pseudo(src: &[u8], dst: &[u8], len: usize) -> Vec<u8> {
    let mut v = src.to_vec();
    v.extend_from_slice(dst);
    v.extend_from_slice(&(len as u32).to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 58]);
    v
}

/// Checks an IPv4 packet carrying ICMP: header and ICMP checksums verified
/// by `ref_checksum` and etherparse's parse; returns the ICMP message.
pub fn check_icmp4(ip: &[u8]) -> Vec<u8> {
    let hlen = usize::from(ip[0] & 0xf) * 4;
    assert_eq!(ref_checksum(&[&ip[..hlen]]), 0, "ip header checksum");
    assert_eq!(ref_checksum(&[&ip[hlen..]]), 0, "icmp checksum");
    let s = SlicedPacket::from_ip(ip).expect("etherparse parses it");
    let Some(NetSlice::Ipv4(v4)) = &s.net else {
        panic!("not ipv4")
    };
    let h = v4.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    assert_eq!(usize::from(h.total_len), ip.len());
    let Some(TransportSlice::Icmpv4(icmp)) = &s.transport else {
        panic!("not icmp")
    };
    assert_eq!(
        icmp.checksum(),
        icmp.icmp_type().calc_checksum(icmp.payload())
    );
    ip[hlen..].to_vec()
}

/// The same for IPv6 and ICMPv6 (the ICMPv6 message right after the fixed
/// header).
pub fn check_icmp6(ip: &[u8]) -> Vec<u8> {
    assert_eq!(
        ref_checksum(&[
            &v6_pseudo(&ip[8..24], &ip[24..40], ip.len() - 40),
            &ip[40..]
        ]),
        0,
        "icmpv6 checksum"
    );
    let s = SlicedPacket::from_ip(ip).expect("etherparse parses it");
    let Some(NetSlice::Ipv6(v6)) = &s.net else {
        panic!("not ipv6")
    };
    let h = v6.header();
    assert_eq!(usize::from(h.payload_length()), ip.len() - 40);
    let Some(TransportSlice::Icmpv6(icmp)) = &s.transport else {
        panic!("not icmpv6")
    };
    assert!(icmp.is_checksum_valid(h.source(), h.destination()));
    ip[40..].to_vec()
}

pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

pub fn echo4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
        .icmpv4_echo_request(0x1234, 7)
        .write(&mut v, data)
        .unwrap();
    v
}

pub fn echo4_reply(src: Ipv4Addr, dst: Ipv4Addr, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .icmpv4_echo_reply(0x1234, 7)
        .write(&mut v, data)
        .unwrap();
    v
}

pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
        .udp(40000, 33434)
        .write(&mut v, &payload(n))
        .unwrap();
    v
}

pub fn echo6(src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 60)
        .icmpv6_echo_request(0x4321, 9)
        .write(&mut v, data)
        .unwrap();
    v
}

pub fn echo6_reply(src: Ipv6Addr, dst: Ipv6Addr, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .icmpv6_echo_reply(0x4321, 9)
        .write(&mut v, data)
        .unwrap();
    v
}

pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, hops: u8, n: usize) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), hops)
        .udp(40000, 33434)
        .write(&mut v, &payload(n))
        .unwrap();
    v
}

pub fn eth(
    dst: MacAddr,
    src: MacAddr,
) -> etherparse::PacketBuilderStep<etherparse::Ethernet2Header> {
    PacketBuilder::ethernet2(src.0, dst.0)
}

/// An IP packet behind an Ethernet header (peer to us), for the capture.
pub fn framed(ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut f = PEER_MAC.0.to_vec();
    f.extend_from_slice(&ME_MAC.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

pub const KINDS4: [Icmp4Error; 7] = [
    Icmp4Error::TimeExceeded,
    Icmp4Error::NetUnreachable,
    Icmp4Error::HostUnreachable,
    Icmp4Error::ProtocolUnreachable,
    Icmp4Error::PortUnreachable,
    Icmp4Error::AdminProhibited,
    Icmp4Error::FragmentationNeeded { mtu: 1400 },
];

pub const KINDS6: [Icmp6Error; 6] = [
    Icmp6Error::HopLimitExceeded,
    Icmp6Error::NoRoute,
    Icmp6Error::AdminProhibited,
    Icmp6Error::AddressUnreachable,
    Icmp6Error::PortUnreachable,
    Icmp6Error::PacketTooBig { mtu: 1280 },
];

pub fn arp_frame(
    op: ArpOperation,
    eth_dst: MacAddr,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
    vlan: Option<u16>,
) -> Vec<u8> {
    let a = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        op,
        &sender.0.0,
        &sender.1.octets(),
        &target.0.0,
        &target.1.octets(),
    )
    .unwrap();
    let mut v = Vec::new();
    match vlan {
        None => eth(eth_dst, sender.0).arp(a).write(&mut v).unwrap(),
        Some(id) => eth(eth_dst, sender.0)
            .single_vlan(VlanId::try_new(id).unwrap())
            .arp(a)
            .write(&mut v)
            .unwrap(),
    }
    v
}

pub fn padded(mut v: Vec<u8>) -> Vec<u8> {
    if v.len() < 60 {
        v.resize(60, 0);
    }
    v
}

pub fn nd_frame(
    eth_dst: MacAddr,
    eth_src: MacAddr,
    ip: (Ipv6Addr, Ipv6Addr),
    t: Icmpv6Type,
    body: &[u8],
    vlan: Option<u16>,
) -> Vec<u8> {
    let mut v = Vec::new();
    let step = eth(eth_dst, eth_src);
    match vlan {
        None => step
            .ipv6(ip.0.octets(), ip.1.octets(), 255)
            .icmpv6(t)
            .write(&mut v, body)
            .unwrap(),
        Some(id) => step
            .single_vlan(VlanId::try_new(id).unwrap())
            .ipv6(ip.0.octets(), ip.1.octets(), 255)
            .icmpv6(t)
            .write(&mut v, body)
            .unwrap(),
    }
    v
}

pub fn target_and_option(target: Ipv6Addr, option: Option<(u8, MacAddr)>) -> Vec<u8> {
    let mut v = target.octets().to_vec();
    if let Some((t, mac)) = option {
        v.extend_from_slice(&[t, 1]);
        v.extend_from_slice(&mac.0);
    }
    v
}
