//! The routing path shared by IPv4 and IPv6: lookup, rewrite, local
//! delivery, ICMP errors and neighbour resolution, each one node written
//! once over a [`Family`] and instantiated twice (`ip4-lookup` and
//! `ip6-lookup`, ...).
//!
//! ```text
//! ip4-input ─→ ip4-lookup ─→ ip4-rewrite ─→ <if>-output
//!                 │  │  │        │ (ttl, mtu)
//!                 │  │  └──→ ip4-icmp-error ─→ ip4-lookup
//!                 │  └─────→ ip4-local ─→ (echo reply) ip4-lookup
//!                 └────────→ ip4-arp ─→ (held until resolved) ip4-lookup
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sluice_buf::Packet;

use crate::addr::IfAddrs;
use crate::fib::{Fib, Key, Lpm};
use crate::host::{HostError, Icmp4Error, Icmp6Error};

pub mod icmp_error;
pub mod local;
pub mod lookup;
pub mod resolve;
pub mod rewrite;

pub use icmp_error::IcmpError;
pub use local::Local;
pub use lookup::Lookup;
pub use resolve::Resolve;
pub use rewrite::Rewrite;

/// Why a packet goes to `ipN-icmp-error`, carried in `meta.opaque[0]`
/// (and the MTU in `meta.opaque[1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Unreachable {
    /// TTL or hop limit ran out.
    TimeExceeded = 1,
    /// No route.
    NoRoute = 2,
    /// The neighbour did not answer ARP/ND.
    Host = 3,
    /// A prohibit route.
    Prohibited = 4,
    /// An unreachable route.
    Net = 5,
    /// No listener on a UDP port of ours.
    Port = 6,
    /// A protocol this host does not serve.
    Protocol = 7,
    /// Too big for the next link, and not to be fragmented.
    TooBig = 8,
}

impl Unreachable {
    /// Marks `pkt` for `ipN-icmp-error`.
    pub fn mark(self, pkt: &mut Packet, mtu: u32) {
        let m = pkt.meta_mut();
        m.opaque[0] = self as u32;
        m.opaque[1] = mtu;
    }

    fn read(pkt: &Packet) -> Option<(Unreachable, u32)> {
        let m = pkt.meta();
        let u = match m.opaque[0] {
            1 => Unreachable::TimeExceeded,
            2 => Unreachable::NoRoute,
            3 => Unreachable::Host,
            4 => Unreachable::Prohibited,
            5 => Unreachable::Net,
            6 => Unreachable::Port,
            7 => Unreachable::Protocol,
            8 => Unreachable::TooBig,
            _ => return None,
        };
        Some((u, m.opaque[1]))
    }
}

/// What differs between IPv4 and IPv6 on the routing path.
pub trait Family: Send + Sync + 'static {
    /// The address as the trie keys it.
    type Addr: Key;
    /// `4` or `6`.
    const VERSION: u8;
    /// Node names.
    const LOOKUP: &'static str;
    /// Node names.
    const REWRITE: &'static str;
    /// Node names.
    const LOCAL: &'static str;
    /// Node names.
    const ICMP_ERROR: &'static str;
    /// Node names (`ip4-arp`, `ip6-nd`).
    const RESOLVE: &'static str;
    /// The EtherType written in front of forwarded packets.
    const ETHERTYPE: u16;
    /// Offset of the destination address in the header.
    const DST: usize;
    /// Offset of the TTL / hop limit.
    const TTL: usize;

    /// The destination address of the packet starting at `hdr`.
    fn dst(hdr: &[u8]) -> Option<Self::Addr>;
    /// The table's trie for this family.
    fn trie(fib: &Fib, table: u32) -> Option<&Lpm<Self::Addr>>;
    /// A hash of the flow (addresses, protocol, ports) for ECMP.
    fn flow_hash(hdr: &[u8]) -> u32;
    /// Decrements the TTL / hop limit, fixing the checksum if there is
    /// one. The caller checked it is above 1.
    fn decrement_ttl(hdr: &mut [u8]);
    /// Whether the packet may be fragmented on the way (IPv4 without DF).
    fn may_fragment(hdr: &[u8]) -> bool;
    /// The address as an `IpAddr`.
    fn ip(a: Self::Addr) -> IpAddr;
    /// The address if `ip` is of this family.
    fn from_ip(ip: IpAddr) -> Option<Self::Addr>;
    /// Turns the packet into the ICMP error `why`, from `src`.
    fn icmp_error(
        pkt: &mut Packet,
        why: Unreachable,
        mtu: u32,
        src: Self::Addr,
    ) -> Result<(), HostError>;
    /// The address ICMP errors about packets from `interface` come from.
    fn error_source(addrs: &IfAddrs, interface: u32) -> Option<Self::Addr>;
    /// The address of `interface` to ask a neighbour from: one on the
    /// neighbour's subnet if any.
    fn solicit_source(addrs: &IfAddrs, interface: u32, neighbor: Self::Addr) -> Option<Self::Addr>;
    /// Writes a neighbour request (ARP who-has, ND solicitation) into `buf`.
    fn solicit(
        buf: &mut Packet,
        src_mac: sluice_wire::MacAddr,
        src: Self::Addr,
        target: Self::Addr,
    ) -> Result<(), HostError>;
}

/// IPv4.
#[derive(Debug)]
pub struct V4;

/// IPv6.
#[derive(Debug)]
pub struct V6;

#[inline(always)]
fn mix(a: u32, b: u32) -> u32 {
    // Two rounds of a multiply-xorshift: enough to spread flows over a
    // handful of paths, cheap enough for every packet of an ECMP route.
    let x = (u64::from(a) << 32 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((x >> 32) as u32) ^ (x as u32)
}

fn ports(l4: &[u8]) -> u32 {
    l4.get(..4)
        .map_or(0, |p| u32::from_be_bytes([p[0], p[1], p[2], p[3]]))
}

impl Family for V4 {
    type Addr = u32;
    const VERSION: u8 = 4;
    const LOOKUP: &'static str = "ip4-lookup";
    const REWRITE: &'static str = "ip4-rewrite";
    const LOCAL: &'static str = "ip4-local";
    const ICMP_ERROR: &'static str = "ip4-icmp-error";
    const RESOLVE: &'static str = "ip4-arp";
    const ETHERTYPE: u16 = 0x0800;
    const DST: usize = 16;
    const TTL: usize = 8;

    #[inline(always)]
    fn dst(hdr: &[u8]) -> Option<u32> {
        let b = hdr.get(16..20)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline(always)]
    fn trie(fib: &Fib, table: u32) -> Option<&Lpm<u32>> {
        fib.v4(table)
    }

    fn flow_hash(hdr: &[u8]) -> u32 {
        let Some(h) = hdr.get(..20) else { return 0 };
        let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        let ihl = usize::from(h[0] & 0xf) * 4;
        // Only the first fragment has ports; all fragments must take one
        // path, so none hashes them.
        let fragment = u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0;
        let p = if fragment || !matches!(h[9], 6 | 17 | 132) {
            0
        } else {
            hdr.get(ihl..).map_or(0, ports)
        };
        mix(src ^ u32::from(h[9]), dst ^ p)
    }

    #[inline(always)]
    fn decrement_ttl(hdr: &mut [u8]) {
        if let Some(h) = hdr.get_mut(..12) {
            let old = u16::from_be_bytes([h[8], h[9]]);
            h[8] = h[8].wrapping_sub(1);
            let csum = u16::from_be_bytes([h[10], h[11]]);
            let csum = sluice_wire::checksum::update_u16(csum, old, old.wrapping_sub(0x100));
            h[10..12].copy_from_slice(&csum.to_be_bytes());
        }
    }

    #[inline(always)]
    fn may_fragment(hdr: &[u8]) -> bool {
        hdr.get(6).is_some_and(|f| f & 0x40 == 0)
    }

    fn ip(a: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn from_ip(ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => Some(a.into()),
            IpAddr::V6(_) => None,
        }
    }

    fn icmp_error(pkt: &mut Packet, why: Unreachable, mtu: u32, src: u32) -> Result<(), HostError> {
        let kind = match why {
            Unreachable::TimeExceeded => Icmp4Error::TimeExceeded,
            Unreachable::NoRoute | Unreachable::Net => Icmp4Error::NetUnreachable,
            Unreachable::Host => Icmp4Error::HostUnreachable,
            Unreachable::Prohibited => Icmp4Error::AdminProhibited,
            Unreachable::Port => Icmp4Error::PortUnreachable,
            Unreachable::Protocol => Icmp4Error::ProtocolUnreachable,
            Unreachable::TooBig => Icmp4Error::FragmentationNeeded {
                mtu: mtu.min(u32::from(u16::MAX)) as u16,
            },
        };
        crate::host::icmp4::error(pkt, kind, src.into())
    }

    fn error_source(addrs: &IfAddrs, interface: u32) -> Option<u32> {
        addrs.v4_source(interface).map(u32::from)
    }

    fn solicit_source(addrs: &IfAddrs, interface: u32, neighbor: u32) -> Option<u32> {
        let v = addrs.v4(interface);
        v.iter()
            .find(|&&(a, l)| u32::from(a).masked(l) == neighbor.masked(l))
            .or_else(|| v.first())
            .map(|&(a, _)| a.into())
    }

    fn solicit(
        buf: &mut Packet,
        src_mac: sluice_wire::MacAddr,
        src: u32,
        target: u32,
    ) -> Result<(), HostError> {
        crate::host::arp::request(buf, src_mac, src.into(), target.into())
    }
}

impl Family for V6 {
    type Addr = u128;
    const VERSION: u8 = 6;
    const LOOKUP: &'static str = "ip6-lookup";
    const REWRITE: &'static str = "ip6-rewrite";
    const LOCAL: &'static str = "ip6-local";
    const ICMP_ERROR: &'static str = "ip6-icmp-error";
    const RESOLVE: &'static str = "ip6-nd";
    const ETHERTYPE: u16 = 0x86dd;
    const DST: usize = 24;
    const TTL: usize = 7;

    #[inline(always)]
    fn dst(hdr: &[u8]) -> Option<u128> {
        let b: [u8; 16] = hdr.get(24..40)?.try_into().ok()?;
        Some(u128::from_be_bytes(b))
    }

    #[inline(always)]
    fn trie(fib: &Fib, table: u32) -> Option<&Lpm<u128>> {
        fib.v6(table)
    }

    fn flow_hash(hdr: &[u8]) -> u32 {
        let Some(h) = hdr.get(..40) else { return 0 };
        let word = |o: usize| u32::from_be_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
        let src = word(8) ^ word(12) ^ word(16) ^ word(20);
        let dst = word(24) ^ word(28) ^ word(32) ^ word(36);
        // The flow label when the sender set one (RFC 6437), else the
        // ports of a TCP/UDP header right after the fixed header.
        let flow = word(0) & 0x000f_ffff;
        let p = if flow != 0 {
            flow
        } else if matches!(h[6], 6 | 17 | 132) {
            hdr.get(40..).map_or(0, ports)
        } else {
            0
        };
        mix(src ^ u32::from(h[6]), dst ^ p)
    }

    #[inline(always)]
    fn decrement_ttl(hdr: &mut [u8]) {
        if let Some(h) = hdr.get_mut(7) {
            *h = h.wrapping_sub(1);
        }
    }

    #[inline(always)]
    fn may_fragment(_hdr: &[u8]) -> bool {
        false
    }

    fn ip(a: u128) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(a))
    }

    fn from_ip(ip: IpAddr) -> Option<u128> {
        match ip {
            IpAddr::V6(a) => Some(a.into()),
            IpAddr::V4(_) => None,
        }
    }

    fn icmp_error(
        pkt: &mut Packet,
        why: Unreachable,
        mtu: u32,
        src: u128,
    ) -> Result<(), HostError> {
        let kind = match why {
            Unreachable::TimeExceeded => Icmp6Error::HopLimitExceeded,
            Unreachable::NoRoute | Unreachable::Net => Icmp6Error::NoRoute,
            Unreachable::Host => Icmp6Error::AddressUnreachable,
            Unreachable::Prohibited => Icmp6Error::AdminProhibited,
            Unreachable::Port | Unreachable::Protocol => Icmp6Error::PortUnreachable,
            Unreachable::TooBig => Icmp6Error::PacketTooBig { mtu },
        };
        crate::host::icmp6::error(pkt, kind, src.into())
    }

    fn error_source(addrs: &IfAddrs, interface: u32) -> Option<u128> {
        addrs.v6_source(interface).map(u128::from)
    }

    fn solicit_source(addrs: &IfAddrs, interface: u32, neighbor: u128) -> Option<u128> {
        let v = addrs.v6(interface);
        v.iter()
            .find(|&&(a, l)| u128::from(a).masked(l) == neighbor.masked(l))
            .or_else(|| v.first())
            .map(|&(a, _)| a.into())
    }

    fn solicit(
        buf: &mut Packet,
        src_mac: sluice_wire::MacAddr,
        src: u128,
        target: u128,
    ) -> Result<(), HostError> {
        crate::host::nd::solicit(buf, src_mac, src.into(), target.into())
    }
}
