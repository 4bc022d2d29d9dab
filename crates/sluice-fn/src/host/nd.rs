//! IPv6 Neighbour Discovery (RFC 4861) over Ethernet (RFC 2464): the
//! solicitations we send to resolve a next hop, the advertisements we answer
//! with, and the checks every received ND message must pass.
//!
//! Whole Ethernet frames: the data starts at the Ethernet header.

use std::net::Ipv6Addr;

use sluice_buf::Packet;
use sluice_wire::ethernet::HEADER_LEN as ETH_LEN;
use sluice_wire::ipv6::HEADER_LEN as IP6_LEN;
use sluice_wire::{Error, EtherType, EthernetFrame, IpProtocol, Ipv6Packet, MacAddr, checksum};

use super::{HostError, resize_first};

/// The all-nodes multicast address, ff02::1.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Hop limit of every ND message, sent and required on receipt: a message
/// with 255 cannot have crossed a router (RFC 4861 7.1.1, 11.2).
pub const ND_HOP_LIMIT: u8 = 255;

const NS: u8 = 135;
const NA: u8 = 136;
const RS: u8 = 133;
const RA: u8 = 134;
/// Option types (RFC 4861 4.6.1).
const OPT_SOURCE_LL: u8 = 1;
const OPT_TARGET_LL: u8 = 2;
/// Bytes of an NS or NA before its options: type, code, checksum, 4
/// reserved or flag bytes, the target address.
const NS_NA_LEN: usize = 24;
/// A link-layer address option for Ethernet: type, length 1 (8 bytes), MAC.
const LL_OPTION_LEN: usize = 8;
/// NA flag bits, in the first byte after the checksum (RFC 4861 4.4).
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// The solicited-node multicast address of `addr` (RFC 4291 2.7.1):
/// ff02::1:ff00:0/104 with the low 24 bits of `addr`.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// Whether `addr` is a solicited-node multicast address.
pub fn is_solicited_node(addr: Ipv6Addr) -> bool {
    addr.octets()[..13] == [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]
}

/// The Ethernet address an IPv6 multicast address maps to (RFC 2464 7):
/// 33:33 and the address's low 32 bits.
pub fn multicast_mac(addr: Ipv6Addr) -> MacAddr {
    let o = addr.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The flags of a neighbour advertisement (RFC 4861 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct NaFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in answer to a solicitation.
    pub solicited: bool,
    /// O: the target link-layer address should replace a cached one.
    pub override_flag: bool,
}

/// Which ND message a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdKind {
    /// Router solicitation (type 133).
    RouterSolicit,
    /// Router advertisement (type 134).
    RouterAdvert,
    /// Neighbour solicitation (type 135).
    NeighborSolicit,
    /// Neighbour advertisement (type 136), with its flags.
    NeighborAdvert(NaFlags),
}

/// What a received ND message says, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdInfo {
    /// The message.
    pub kind: NdKind,
    /// IPv6 source (:: for duplicate address detection).
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// The target address of a solicitation or advertisement.
    pub target: Option<Ipv6Addr>,
    /// The source link-layer address option of an NS, RS or RA.
    pub source_ll: Option<MacAddr>,
    /// The target link-layer address option of an NA.
    pub target_ll: Option<MacAddr>,
}

impl NdInfo {
    /// Validates an ND frame (starting at the Ethernet header; up to two
    /// VLAN tags are walked) as RFC 4861 6.1 and 7.1 require, and reads it.
    ///
    /// Every message: hop limit 255, code 0, a valid checksum, options of
    /// non-zero length that end with the message, and no Fragment header
    /// (RFC 6980 5). NS and NA: at least 24 bytes, target not multicast. NS
    /// from the unspecified address: sent to a solicited-node address,
    /// without a source link-layer address option. NA to a multicast address: Solicited
    /// clear. RS: at least 8 bytes; from ::, no source link-layer option. RA:
    /// at least 16 bytes, from a link-local address.
    ///
    /// Link-layer address options are read when they have Ethernet's length
    /// (8 bytes) and the message type carries them; others are skipped, as
    /// unrecognised options must be (RFC 4861 4.6).
    ///
    /// Errors: not IPv6, ICMPv6 or ND ([`HostError::WrongKind`]); short or
    /// inconsistent lengths ([`HostError::Malformed`]); a broken rule
    /// ([`HostError::Invalid`]); [`HostError::BadChecksum`].
    pub fn parse(frame: &[u8]) -> Result<NdInfo, HostError> {
        Self::parse_at(frame).map(|(info, _)| info)
    }

    /// [`NdInfo::parse`], and where the IPv6 header starts.
    fn parse_at(frame: &[u8]) -> Result<(NdInfo, usize), HostError> {
        let l2 = EthernetFrame::new_checked(frame)?.l3()?;
        if l2.ethertype != EtherType::IPV6 {
            return Err(HostError::WrongKind("an IPv6 frame"));
        }
        let l3 = l2.l3_offset;
        let packet = frame.get(l3..).unwrap_or_default();
        let ip = Ipv6Packet::new_checked(packet)?;
        let ul = ip.upper_layer()?;
        if ul.protocol != IpProtocol::ICMPV6 {
            return Err(HostError::WrongKind("an ICMPv6 message"));
        }
        if ul.fragment.is_some() {
            return Err(HostError::Invalid("fragmented ND message (RFC 6980)"));
        }
        let icmp = packet
            .get(ul.offset..ip.total_len())
            .ok_or(Error::Truncated)?;
        let Some(&[t, code]) = icmp.get(..2) else {
            return Err(Error::Truncated.into());
        };
        let (min_len, body) = match t {
            RS => (8, 8),
            RA => (16, 16),
            NS | NA => (NS_NA_LEN, NS_NA_LEN),
            _ => return Err(HostError::WrongKind("a Neighbour Discovery message")),
        };
        if ip.hop_limit() != ND_HOP_LIMIT {
            return Err(HostError::Invalid("ND hop limit is not 255"));
        }
        if code != 0 {
            return Err(HostError::Invalid("ND code is not 0"));
        }
        if icmp.len() < min_len {
            return Err(HostError::Invalid("ND message too short"));
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        // icmp.len() <= the 16-bit payload length.
        let pseudo = checksum::pseudo_header_v6(&src, &dst, IpProtocol::ICMPV6, icmp.len() as u32);
        if checksum::finish(pseudo + checksum::sum(icmp)) != 0 {
            return Err(HostError::BadChecksum);
        }

        let mut source_ll = None;
        let mut target_ll = None;
        let mut has_source_ll = false;
        let mut opts = icmp.get(body..).unwrap_or_default();
        while !opts.is_empty() {
            let Some(&[kind, units]) = opts.get(..2) else {
                return Err(HostError::Invalid("ND option truncated"));
            };
            let len = usize::from(units) * 8;
            if len == 0 {
                return Err(HostError::Invalid("ND option of length 0"));
            }
            let Some(opt) = opts.get(..len) else {
                return Err(HostError::Invalid("ND option past the message"));
            };
            // Only Ethernet's 8-byte form carries a MAC we can use; the
            // first option of a kind wins.
            let mac = opt
                .get(2..LL_OPTION_LEN)
                .filter(|_| len == LL_OPTION_LEN)
                .map(MacAddr::from_bytes);
            match kind {
                OPT_SOURCE_LL => {
                    has_source_ll = true;
                    source_ll = source_ll.or(mac);
                }
                OPT_TARGET_LL => target_ll = target_ll.or(mac),
                _ => {}
            }
            opts = opts.get(len..).unwrap_or_default();
        }

        let target = match icmp.get(8..NS_NA_LEN) {
            Some(b) if t == NS || t == NA => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                let a = Ipv6Addr::from(a);
                if a.is_multicast() {
                    return Err(HostError::Invalid("ND target is multicast"));
                }
                Some(a)
            }
            _ => None,
        };
        let kind = match t {
            NS => {
                if src.is_unspecified() && !is_solicited_node(dst) {
                    return Err(HostError::Invalid(
                        "NS from :: not to a solicited-node address",
                    ));
                }
                if src.is_unspecified() && has_source_ll {
                    return Err(HostError::Invalid("NS from :: with a link-layer address"));
                }
                NdKind::NeighborSolicit
            }
            NA => {
                let f = icmp.get(4).copied().unwrap_or(0);
                let flags = NaFlags {
                    router: f & FLAG_ROUTER != 0,
                    solicited: f & FLAG_SOLICITED != 0,
                    override_flag: f & FLAG_OVERRIDE != 0,
                };
                if dst.is_multicast() && flags.solicited {
                    return Err(HostError::Invalid("solicited NA to a multicast address"));
                }
                NdKind::NeighborAdvert(flags)
            }
            RS => {
                if src.is_unspecified() && has_source_ll {
                    return Err(HostError::Invalid("RS from :: with a link-layer address"));
                }
                NdKind::RouterSolicit
            }
            _ => {
                if !src.is_unicast_link_local() {
                    return Err(HostError::Invalid("RA from a non-link-local address"));
                }
                NdKind::RouterAdvert
            }
        };
        let (source_ll, target_ll) = match kind {
            NdKind::NeighborAdvert(_) => (None, target_ll),
            _ => (source_ll, None),
        };
        let info = NdInfo {
            kind,
            src,
            dst,
            target,
            source_ll,
            target_ll,
        };
        Ok((info, l3))
    }
}

/// Writes the Ethernet header (keeping any VLAN tags between the addresses
/// and the EtherType as they are), an IPv6 header and an ICMPv6 message of
/// `msg` = (type, first byte after the checksum: the NA flags), `target` and
/// one link-layer address option, then fills the checksum. `eth` and `ip`
/// are (source, destination); `frame` holds exactly the result.
fn write_nd(
    frame: &mut [u8],
    l3: usize,
    eth: (MacAddr, MacAddr),
    ip: (Ipv6Addr, Ipv6Addr),
    msg: (u8, u8),
    target: Ipv6Addr,
    option: Option<(u8, MacAddr)>,
) {
    let mut e = EthernetFrame::new_unchecked(&mut frame[..]);
    e.set_dst_addr(eth.1);
    e.set_src_addr(eth.0);
    frame[l3 - 2..l3].copy_from_slice(&EtherType::IPV6.0.to_be_bytes());
    let (hdr, icmp) = frame[l3..].split_at_mut(IP6_LEN);
    hdr.fill(0);
    let mut h = Ipv6Packet::new_unchecked(&mut hdr[..]);
    h.set_version(6);
    // icmp is 24 or 32 bytes.
    h.set_payload_len(icmp.len() as u16);
    h.set_next_header(IpProtocol::ICMPV6);
    h.set_hop_limit(ND_HOP_LIMIT);
    h.set_src_addr(&ip.0);
    h.set_dst_addr(&ip.1);
    icmp.fill(0);
    icmp[0] = msg.0;
    icmp[4] = msg.1;
    icmp[8..NS_NA_LEN].copy_from_slice(&target.octets());
    if let Some((kind, mac)) = option {
        icmp[NS_NA_LEN] = kind;
        icmp[NS_NA_LEN + 1] = 1;
        icmp[NS_NA_LEN + 2..NS_NA_LEN + LL_OPTION_LEN].copy_from_slice(&mac.0);
    }
    let pseudo = checksum::pseudo_header_v6(&ip.0, &ip.1, IpProtocol::ICMPV6, icmp.len() as u32);
    let c = checksum::finish(pseudo + checksum::sum(icmp));
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Writes a multicast neighbour solicitation for `target_ip` into `buf` (an
/// empty packet; whatever it held is replaced): from `src_ip` to the
/// target's solicited-node address and its 33:33:ff MAC, hop limit 255,
/// with a source link-layer address option (RFC 4861 7.2.2) — left out when
/// `src_ip` is :: (duplicate address detection, RFC 4862 5.4.2), which
/// 7.1.1 requires.
pub fn solicit(
    buf: &mut Packet,
    src_mac: MacAddr,
    src_ip: Ipv6Addr,
    target_ip: Ipv6Addr,
) -> Result<(), HostError> {
    if target_ip.is_multicast() || target_ip.is_unspecified() {
        return Err(HostError::Invalid("NS target is not a unicast address"));
    }
    if buf.is_chained() {
        return Err(HostError::NoRoom("NS into a chained buffer"));
    }
    let option = (!src_ip.is_unspecified()).then_some((OPT_SOURCE_LL, src_mac));
    let icmp_len = NS_NA_LEN + if option.is_some() { LL_OPTION_LEN } else { 0 };
    resize_first(buf, ETH_LEN + IP6_LEN + icmp_len)?;
    let group = solicited_node(target_ip);
    write_nd(
        buf.data_mut(),
        ETH_LEN,
        (src_mac, multicast_mac(group)),
        (src_ip, group),
        (NS, 0),
        target_ip,
        option,
    );
    Ok(())
}

/// Turns a received neighbour solicitation for `target_ip` into our
/// solicited advertisement, in place (RFC 4861 7.2.4): from `target_ip`
/// to the solicitation's source, at the MAC of its source link-layer
/// address option (or, without one, the frame's source MAC), flags Router,
/// Solicited and Override, and a target link-layer address option with
/// `our_mac`. VLAN tags of the solicitation are kept.
///
/// A solicitation from :: (duplicate address detection) is answered to
/// all-nodes, ff02::1 at 33:33:00:00:00:01, with Solicited clear, as 7.2.4
/// requires (a multicast NA with S set is invalid, 7.1.2).
///
/// Refused: anything [`NdInfo::parse`] refuses; another ND message
/// ([`HostError::WrongKind`]); a solicitation for another target
/// ([`HostError::NotForUs`]); no unicast MAC to answer
/// ([`HostError::Invalid`]).
pub fn advertise(pkt: &mut Packet, our_mac: MacAddr, target_ip: Ipv6Addr) -> Result<(), HostError> {
    let (info, l3) = NdInfo::parse_at(pkt.data())?;
    if info.kind != NdKind::NeighborSolicit {
        return Err(HostError::WrongKind("a neighbour solicitation"));
    }
    if info.target != Some(target_ip) {
        return Err(HostError::NotForUs("NS for another target"));
    }
    let dad = info.src.is_unspecified();
    let (dst_ip, dst_mac, flags) = if dad {
        (
            ALL_NODES,
            multicast_mac(ALL_NODES),
            FLAG_ROUTER | FLAG_OVERRIDE,
        )
    } else {
        let mac = info
            .source_ll
            .unwrap_or_else(|| EthernetFrame::new_unchecked(pkt.data()).src_addr());
        if mac.is_multicast() {
            return Err(HostError::Invalid("NS from a group MAC address"));
        }
        (info.src, mac, FLAG_ROUTER | FLAG_SOLICITED | FLAG_OVERRIDE)
    };
    resize_first(pkt, l3 + IP6_LEN + NS_NA_LEN + LL_OPTION_LEN)?;
    write_nd(
        pkt.data_mut(),
        l3,
        (our_mac, dst_mac),
        (target_ip, dst_ip),
        (NA, flags),
        target_ip,
        Some((OPT_TARGET_LL, our_mac)),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_cache;

    const ME: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn solicited_node_and_mac() {
        let t = a("2001:db8::12:3456:789a");
        assert_eq!(solicited_node(t), a("ff02::1:ff56:789a"));
        assert!(is_solicited_node(solicited_node(t)));
        assert!(!is_solicited_node(ALL_NODES));
        assert_eq!(
            multicast_mac(solicited_node(t)),
            MacAddr([0x33, 0x33, 0xff, 0x56, 0x78, 0x9a])
        );
    }

    #[test]
    fn solicit_then_advertise() {
        let mut c = test_cache();
        let (peer, me) = (a("fe80::2"), a("fe80::1:1"));
        let mut p = c.alloc().unwrap();
        solicit(&mut p, PEER, peer, me).unwrap();
        assert_eq!(p.total_len(), 86);
        let ns = NdInfo::parse(p.data()).unwrap();
        assert_eq!(
            ns,
            NdInfo {
                kind: NdKind::NeighborSolicit,
                src: peer,
                dst: a("ff02::1:ff01:1"),
                target: Some(me),
                source_ll: Some(PEER),
                target_ll: None,
            }
        );
        assert_eq!(
            advertise(&mut p, ME, a("fe80::9")),
            Err(HostError::NotForUs("NS for another target"))
        );
        advertise(&mut p, ME, me).unwrap();
        let na = NdInfo::parse(p.data()).unwrap();
        assert_eq!(
            na,
            NdInfo {
                kind: NdKind::NeighborAdvert(NaFlags {
                    router: true,
                    solicited: true,
                    override_flag: true
                }),
                src: me,
                dst: peer,
                target: Some(me),
                source_ll: None,
                target_ll: Some(ME),
            }
        );
        assert_eq!(&p.data()[..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        c.free(p);
    }

    #[test]
    fn dad_is_answered_to_all_nodes() {
        let mut c = test_cache();
        let me = a("2001:db8::1");
        let mut p = c.alloc().unwrap();
        solicit(&mut p, PEER, Ipv6Addr::UNSPECIFIED, me).unwrap();
        assert_eq!(p.total_len(), 78);
        assert_eq!(NdInfo::parse(p.data()).unwrap().source_ll, None);
        advertise(&mut p, ME, me).unwrap();
        let na = NdInfo::parse(p.data()).unwrap();
        assert_eq!(na.dst, ALL_NODES);
        assert_eq!(&p.data()[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert!(matches!(na.kind, NdKind::NeighborAdvert(f) if !f.solicited && f.router));
        c.free(p);
    }

    #[test]
    fn validation_rules() {
        let mut c = test_cache();
        let mut p = c.alloc().unwrap();
        solicit(&mut p, PEER, a("fe80::2"), a("fe80::1")).unwrap();
        let good = p.data().to_vec();
        c.free(p);
        // Recomputes the checksum after a change, so that the rule under
        // test, not the checksum, is what fails.
        let fix = |mut f: Vec<u8>| {
            f[56..58].fill(0);
            let ip = Ipv6Packet::new_unchecked(&f[14..]);
            let ph = checksum::pseudo_header_v6(
                &ip.src_addr(),
                &ip.dst_addr(),
                IpProtocol::ICMPV6,
                (f.len() - 54) as u32,
            );
            let cs = checksum::finish(ph + checksum::sum(&f[54..]));
            f[56..58].copy_from_slice(&cs.to_be_bytes());
            f
        };
        let with = |at: usize, v: &[u8]| {
            let mut f = good.clone();
            f[at..at + v.len()].copy_from_slice(v);
            fix(f)
        };
        let invalid = [
            with(21, &[64]),    // hop limit
            with(55, &[1]),     // code
            with(62, &[0xff]),  // multicast target
            with(79, &[0]),     // option length 0
            with(79, &[2]),     // option past the end
            with(22, &[0; 16]), // from :: with SLLA
        ];
        for f in &invalid {
            assert!(
                matches!(NdInfo::parse(f), Err(HostError::Invalid(_))),
                "{:?}",
                NdInfo::parse(f)
            );
        }
        let mut bad = good.clone();
        bad[70] ^= 1;
        assert_eq!(NdInfo::parse(&bad), Err(HostError::BadChecksum));
        // A short NS: ICMPv6 length 16.
        let mut short = good[..70].to_vec();
        short[19] = 16;
        assert_eq!(
            NdInfo::parse(&fix(short)),
            Err(HostError::Invalid("ND message too short"))
        );
        // From :: to a unicast address.
        let mut f = with(22, &[0; 16]);
        f.truncate(78);
        f[19] = 24;
        f[38..54].copy_from_slice(&a("fe80::1").octets());
        assert!(matches!(
            NdInfo::parse(&fix(f)),
            Err(HostError::Invalid(
                "NS from :: not to a solicited-node address"
            ))
        ));
        // An echo request is not ND.
        assert_eq!(
            NdInfo::parse(&with(54, &[128])),
            Err(HostError::WrongKind("a Neighbour Discovery message"))
        );
    }
}
