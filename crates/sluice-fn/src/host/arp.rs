//! ARP for Ethernet and IPv4 (RFC 826), with the probes and announcements
//! of IPv4 address conflict detection (RFC 5227).
//!
//! Whole Ethernet frames: the data starts at the Ethernet header. Frames we
//! build are padded to the 60-byte Ethernet minimum, so that they are valid
//! on any port whether or not the driver pads.

use std::net::Ipv4Addr;

use sluice_buf::Packet;
use sluice_wire::ethernet::HEADER_LEN as ETH_LEN;
use sluice_wire::{ArpOperation, ArpPacket, EtherType, EthernetFrame, MacAddr};

use super::{HostError, resize_first};

/// Length of an Ethernet frame without its FCS at the minimum frame size:
/// the length of every ARP frame we send.
pub const FRAME_LEN: usize = 60;

/// Length of the ARP body for Ethernet and IPv4.
const ARP_LEN: usize = sluice_wire::arp::HEADER_LEN;

/// What a received ARP packet says, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpInfo {
    /// Request or reply.
    pub op: ArpOperation,
    /// Who sent it.
    pub sender_mac: MacAddr,
    /// The sender's IPv4 address; 0.0.0.0 in a probe.
    pub sender_ip: Ipv4Addr,
    /// The target's MAC (meaningless in a request, usually zero).
    pub target_mac: MacAddr,
    /// The address asked about (request) or answered to (reply).
    pub target_ip: Ipv4Addr,
}

impl ArpInfo {
    /// Checks an ARP frame (starting at the Ethernet header; up to two VLAN
    /// tags are walked) and reads it.
    ///
    /// Refused: not ARP ([`HostError::WrongKind`]); short, or ARP for other
    /// than Ethernet and IPv4 ([`HostError::Malformed`]); an operation other
    /// than request or reply; a sender MAC that is a group address or zero
    /// (no reply could reach it, and caching it would misdirect traffic); a
    /// sender IP that is multicast or the limited broadcast; a sender IP of
    /// 0.0.0.0 in anything but a request, where it marks an RFC 5227 probe
    /// ([`ArpInfo::is_probe`]) ([`HostError::Invalid`]).
    pub fn parse(frame: &[u8]) -> Result<ArpInfo, HostError> {
        Self::parse_at(frame).map(|(info, _)| info)
    }

    /// [`ArpInfo::parse`], and where the ARP body starts.
    fn parse_at(frame: &[u8]) -> Result<(ArpInfo, usize), HostError> {
        let l2 = EthernetFrame::new_checked(frame)?.l3()?;
        if l2.ethertype != EtherType::ARP {
            return Err(HostError::WrongKind("an ARP frame"));
        }
        let l3 = l2.l3_offset;
        let arp = ArpPacket::new_checked(frame.get(l3..).unwrap_or_default())?;
        let op = arp.operation();
        if op != ArpOperation::REQUEST && op != ArpOperation::REPLY {
            return Err(HostError::Invalid("ARP operation"));
        }
        let sender_mac = arp.sender_hw_addr();
        if sender_mac.is_multicast() || sender_mac == MacAddr::ZERO {
            return Err(HostError::Invalid("ARP sender hardware address"));
        }
        let sender_ip = arp.sender_proto_addr();
        if sender_ip.is_multicast() || sender_ip.is_broadcast() {
            return Err(HostError::Invalid("ARP sender protocol address"));
        }
        if sender_ip.is_unspecified() && op != ArpOperation::REQUEST {
            return Err(HostError::Invalid("ARP reply from 0.0.0.0"));
        }
        let info = ArpInfo {
            op,
            sender_mac,
            sender_ip,
            target_mac: arp.target_hw_addr(),
            target_ip: arp.target_proto_addr(),
        };
        Ok((info, l3))
    }

    /// An RFC 5227 probe: a request from 0.0.0.0, asking whether anyone
    /// holds `target_ip` before the sender takes it.
    pub fn is_probe(&self) -> bool {
        self.op == ArpOperation::REQUEST && self.sender_ip.is_unspecified()
    }

    /// An announcement, or gratuitous ARP (RFC 5227 2.3): the sender states
    /// its own binding, sender and target IP being the same.
    pub fn is_announcement(&self) -> bool {
        self.sender_ip == self.target_ip && !self.sender_ip.is_unspecified()
    }
}

/// Writes a whole untagged ARP frame into `buf`, replacing what it held.
fn write_frame(
    buf: &mut Packet,
    eth_dst: MacAddr,
    op: ArpOperation,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Result<(), HostError> {
    if buf.is_chained() {
        return Err(HostError::NoRoom("ARP frame into a chained buffer"));
    }
    resize_first(buf, FRAME_LEN)?;
    let d = buf.data_mut();
    d.fill(0);
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst_addr(eth_dst);
    eth.set_src_addr(sender.0);
    eth.set_ethertype(EtherType::ARP);
    let mut arp = ArpPacket::new_unchecked(&mut d[ETH_LEN..ETH_LEN + ARP_LEN]);
    arp.init_ethernet_ipv4();
    arp.set_operation(op);
    arp.set_sender_hw_addr(sender.0);
    arp.set_sender_proto_addr(sender.1);
    arp.set_target_hw_addr(target.0);
    arp.set_target_proto_addr(target.1);
    Ok(())
}

/// Writes a broadcast "who has `target_ip`? tell `src_ip`" into `buf` (an
/// empty packet; whatever it held is replaced). The target hardware address
/// is zero, as RFC 5227 2.1.1 asks of every request.
pub fn request(
    buf: &mut Packet,
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Result<(), HostError> {
    write_frame(
        buf,
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        (src_mac, src_ip),
        (MacAddr::ZERO, target_ip),
    )
}

/// Writes a gratuitous ARP for `ip` at `mac` into `buf`: an RFC 5227 2.3
/// announcement, a broadcast request whose sender and target IP are both
/// `ip`, which updates every neighbour's cache and defends the address.
pub fn gratuitous(buf: &mut Packet, mac: MacAddr, ip: Ipv4Addr) -> Result<(), HostError> {
    write_frame(
        buf,
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        (mac, ip),
        (MacAddr::ZERO, ip),
    )
}

/// Turns a received ARP request for `our_ip` into its reply, in place: sent
/// to the requester's MAC, from `our_mac`, "`our_ip` is at `our_mac`". VLAN
/// tags of the request are kept, so the reply leaves on the same VLAN. The
/// frame becomes [`FRAME_LEN`] bytes, padding zeroed.
///
/// A probe (sender 0.0.0.0) is answered too, with target IP 0.0.0.0, so the
/// prober learns the address is taken (RFC 5227 2.1.1). A request whose
/// sender claims `our_ip` is a conflict, not a question: it is refused with
/// [`HostError::NotAllowed`] for the caller to count and, if it wishes,
/// defend with [`gratuitous`] (RFC 5227 2.4). A request for another address
/// is [`HostError::NotForUs`]; a reply is [`HostError::WrongKind`].
pub fn reply(pkt: &mut Packet, our_mac: MacAddr, our_ip: Ipv4Addr) -> Result<(), HostError> {
    let (info, l3) = ArpInfo::parse_at(pkt.data())?;
    if info.op != ArpOperation::REQUEST {
        return Err(HostError::WrongKind("an ARP request"));
    }
    if info.target_ip != our_ip {
        return Err(HostError::NotForUs("ARP request for another address"));
    }
    if info.sender_ip == our_ip {
        return Err(HostError::NotAllowed(
            "ARP sender claims our address (RFC 5227 conflict)",
        ));
    }
    // At most two VLAN tags, so l3 <= 22 and this never refuses; it keeps
    // the slicing below in bounds without relying on that.
    let end = l3 + ARP_LEN;
    if end > FRAME_LEN {
        return Err(HostError::NoRoom("ARP body past the minimum frame"));
    }
    resize_first(pkt, FRAME_LEN)?;
    let d = pkt.data_mut();
    d[end..].fill(0);
    let mut eth = EthernetFrame::new_unchecked(&mut d[..]);
    eth.set_dst_addr(info.sender_mac);
    eth.set_src_addr(our_mac);
    let mut arp = ArpPacket::new_unchecked(&mut d[l3..end]);
    arp.set_operation(ArpOperation::REPLY);
    arp.set_sender_hw_addr(our_mac);
    arp.set_sender_proto_addr(our_ip);
    arp.set_target_hw_addr(info.sender_mac);
    arp.set_target_proto_addr(info.sender_ip);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_cache;
    use sluice_wire::Error;

    const ME: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn request_reply_round_trip() {
        let mut c = test_cache();
        let (peer_ip, my_ip) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let mut p = c.alloc().unwrap();
        request(&mut p, PEER, peer_ip, my_ip).unwrap();
        assert_eq!(p.total_len(), FRAME_LEN);
        let info = ArpInfo::parse(p.data()).unwrap();
        assert_eq!(
            info,
            ArpInfo {
                op: ArpOperation::REQUEST,
                sender_mac: PEER,
                sender_ip: peer_ip,
                target_mac: MacAddr::ZERO,
                target_ip: my_ip
            }
        );
        assert!(!info.is_probe() && !info.is_announcement());
        reply(&mut p, ME, my_ip).unwrap();
        let r = ArpInfo::parse(p.data()).unwrap();
        assert_eq!(&p.data()[..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        assert_eq!(
            r,
            ArpInfo {
                op: ArpOperation::REPLY,
                sender_mac: ME,
                sender_ip: my_ip,
                target_mac: PEER,
                target_ip: peer_ip
            }
        );
        assert_eq!(
            reply(&mut p, ME, my_ip),
            Err(HostError::WrongKind("an ARP request"))
        );
        c.free(p);
    }

    #[test]
    fn probes_announcements_and_conflicts() {
        let mut c = test_cache();
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let mut p = c.alloc().unwrap();
        request(&mut p, PEER, Ipv4Addr::UNSPECIFIED, ip).unwrap();
        assert!(ArpInfo::parse(p.data()).unwrap().is_probe());
        reply(&mut p, ME, ip).unwrap();
        assert_eq!(
            ArpInfo::parse(p.data()).unwrap().target_ip,
            Ipv4Addr::UNSPECIFIED
        );
        gratuitous(&mut p, PEER, ip).unwrap();
        assert!(ArpInfo::parse(p.data()).unwrap().is_announcement());
        assert!(matches!(
            reply(&mut p, ME, ip),
            Err(HostError::NotAllowed(_))
        ));
        assert_eq!(
            reply(&mut p, ME, Ipv4Addr::new(10, 0, 0, 3)),
            Err(HostError::NotForUs("ARP request for another address"))
        );
        c.free(p);
    }

    #[test]
    fn parse_rejects() {
        let mut c = test_cache();
        let mut p = c.alloc().unwrap();
        request(
            &mut p,
            PEER,
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
        )
        .unwrap();
        let good = p.data().to_vec();
        c.free(p);
        let with = |at: usize, v: &[u8]| {
            let mut f = good.clone();
            f[at..at + v.len()].copy_from_slice(v);
            f
        };
        assert!(matches!(
            ArpInfo::parse(&with(12, &[0x08, 0x00])),
            Err(HostError::WrongKind(_))
        ));
        assert_eq!(
            ArpInfo::parse(&with(14, &[0, 6])),
            Err(Error::Unsupported.into())
        );
        assert_eq!(ArpInfo::parse(&good[..41]), Err(Error::Truncated.into()));
        for (at, v) in [
            (20, &[0u8, 3][..]),
            (22, &[1, 0, 0x5e, 0, 0, 1]),
            (22, &[0; 6]),
            (28, &[224, 0, 0, 1]),
            (28, &[255; 4]),
        ] {
            assert!(
                matches!(ArpInfo::parse(&with(at, v)), Err(HostError::Invalid(_))),
                "{at} {v:?}"
            );
        }
        // 0.0.0.0 is a probe in a request, nonsense in a reply.
        assert!(ArpInfo::parse(&with(28, &[0; 4])).is_ok());
        assert!(matches!(
            ArpInfo::parse(&with(20, &[0, 2, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0])),
            Err(HostError::Invalid(_))
        ));
    }
}
