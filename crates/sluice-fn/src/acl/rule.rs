//! ACL rules as the control plane writes them, their checks, and their
//! lowering to the one shape the classifier matches: masked addresses,
//! port ranges, a masked protocol and rare extras.
//!
//! Decisions a rule set can trip on, so that a bad rule is refused with a
//! reason instead of matching something else than its author meant:
//!
//! - a prefix longer than its address or with host bits set is refused
//!   (as routes are: `10.0.0.1/8` is more likely a typo than a wish);
//! - a port range with `lo > hi` is refused;
//! - source and destination prefixes of different families are refused;
//! - TCP flags need protocol TCP; ICMP type or code need protocol ICMP (1)
//!   or ICMPv6 (58) and exclude port ranges (they share the key's port
//!   slots, as in VPP and rte_acl); DSCP is 0–63; a VLAN id is 0–4095.
//!
//! Port ranges on a rule whose protocol is any still match: a packet of a
//! protocol without ports (not TCP, UDP, SCTP, ICMP) reads ports 0, so
//! `0 : 65535` matches it and `1024 : 65535` does not — the convention of
//! rte_acl's 5-tuple, which `gen-classbench.py` writes.

use std::net::{Ipv4Addr, Ipv6Addr};

use sluice_wire::MacAddr;
use thiserror::Error;

use super::key::Addr;
use crate::fib::Prefix;

/// What a matching rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Let the packet pass.
    Permit,
    /// Drop the packet (counted).
    Deny,
    /// Let it pass and let its return traffic in (the session is made by
    /// connection tracking, which reads this action; until then it passes
    /// like `Permit`).
    PermitReflect,
}

impl Action {
    /// Whether the packet goes on.
    pub fn permits(self) -> bool {
        !matches!(self, Action::Deny)
    }
}

/// An inclusive range of ports (or of ICMP types or codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// Lowest port matched.
    pub lo: u16,
    /// Highest port matched.
    pub hi: u16,
}

impl PortRange {
    /// Every port.
    pub const ANY: PortRange = PortRange {
        lo: 0,
        hi: u16::MAX,
    };

    /// One port.
    pub const fn exactly(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }

    /// `lo..=hi`.
    pub const fn new(lo: u16, hi: u16) -> PortRange {
        PortRange { lo, hi }
    }

    /// Whether every port is in the range.
    pub fn is_any(&self) -> bool {
        *self == PortRange::ANY
    }
}

impl Default for PortRange {
    fn default() -> PortRange {
        PortRange::ANY
    }
}

/// A byte matched under a mask: `byte & mask == value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Masked {
    /// The bits wanted.
    pub value: u8,
    /// Which bits are compared.
    pub mask: u8,
}

impl Masked {
    /// Exactly `value`.
    pub const fn exactly(value: u8) -> Masked {
        Masked { value, mask: 0xff }
    }
}

/// One rule of an ordered list: every field given must match; a field
/// left `None` (or a full port range) matches anything. The first rule
/// of the list that matches decides.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Source prefix (its family is the rule's).
    pub src: Option<Prefix>,
    /// Destination prefix.
    pub dst: Option<Prefix>,
    /// IP protocol (IPv6: the upper-layer header after extension headers).
    pub proto: Option<Masked>,
    /// Source port range (TCP, UDP, SCTP).
    pub sport: PortRange,
    /// Destination port range.
    pub dport: PortRange,
    /// TCP flags under a mask (e.g. SYN set, ACK clear: value 0x02, mask 0x12).
    pub tcp_flags: Option<Masked>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// DSCP (the top six bits of the IPv4 TOS or IPv6 traffic class).
    pub dscp: Option<u8>,
    /// Source MAC of the frame the packet came in.
    pub src_mac: Option<MacAddr>,
    /// Destination MAC of that frame.
    pub dst_mac: Option<MacAddr>,
    /// Outer VLAN id the packet came in on (0: untagged).
    pub vlan: Option<u16>,
    /// What a match decides.
    pub action: Action,
}

impl Rule {
    /// A rule that matches everything, with `action`; set fields on it.
    pub fn any(action: Action) -> Rule {
        Rule {
            src: None,
            dst: None,
            proto: None,
            sport: PortRange::ANY,
            dport: PortRange::ANY,
            tcp_flags: None,
            icmp_type: None,
            icmp_code: None,
            dscp: None,
            src_mac: None,
            dst_mac: None,
            vlan: None,
            action,
        }
    }
}

/// Why a rule was refused; `index` is its position in the list.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    /// A prefix longer than its address.
    #[error("rule {index}: prefix length {len} is longer than the address ({max} bits)")]
    PrefixLength {
        /// Rule position.
        index: usize,
        /// Length given.
        len: u8,
        /// Address width.
        max: u8,
    },
    /// Bits set past the prefix length.
    #[error("rule {index}: {given} has host bits set (did you mean {network}?)")]
    HostBits {
        /// Rule position.
        index: usize,
        /// The prefix as written.
        given: String,
        /// The prefix with host bits cleared.
        network: String,
    },
    /// Source and destination of different families.
    #[error("rule {index}: source and destination are of different address families")]
    MixedFamilies {
        /// Rule position.
        index: usize,
    },
    /// A port range whose low end is above its high end.
    #[error("rule {index}: {which} port range {lo} : {hi} is empty (low above high)")]
    EmptyRange {
        /// Rule position.
        index: usize,
        /// `source` or `destination`.
        which: &'static str,
        /// Low end.
        lo: u16,
        /// High end.
        hi: u16,
    },
    /// A field that needs a protocol the rule does not pin.
    #[error("rule {index}: {field} needs protocol {needs}")]
    NeedsProtocol {
        /// Rule position.
        index: usize,
        /// The field.
        field: &'static str,
        /// What protocol it needs.
        needs: &'static str,
    },
    /// ICMP type or code together with port ranges.
    #[error("rule {index}: ICMP type/code and port ranges exclude each other")]
    IcmpWithPorts {
        /// Rule position.
        index: usize,
    },
    /// A value out of its field's range.
    #[error("rule {index}: {field} {value} is out of range (at most {max})")]
    OutOfRange {
        /// Rule position.
        index: usize,
        /// The field.
        field: &'static str,
        /// Value given.
        value: u16,
        /// Largest allowed.
        max: u16,
    },
}

/// Which families a rule can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
    Both,
}

const TCP: u8 = 6;
const ICMP: u8 = 1;
const ICMP6: u8 = 58;

impl Rule {
    /// Checks the rule (at position `index`) and says which families it
    /// can match.
    pub(crate) fn check(&self, index: usize) -> Result<Family, RuleError> {
        let mut family = Family::Both;
        for p in [self.src, self.dst].into_iter().flatten() {
            let (f, max) = match p {
                Prefix::V4(..) => (Family::V4, 32),
                Prefix::V6(..) => (Family::V6, 128),
            };
            let len = p.prefix_len();
            if len > max {
                return Err(RuleError::PrefixLength { index, len, max });
            }
            let net = p.network();
            if net != p {
                return Err(RuleError::HostBits {
                    index,
                    given: format!("{}/{}", p.addr(), len),
                    network: net.to_string(),
                });
            }
            if family != Family::Both && family != f {
                return Err(RuleError::MixedFamilies { index });
            }
            family = f;
        }
        for (which, r) in [("source", self.sport), ("destination", self.dport)] {
            if r.lo > r.hi {
                return Err(RuleError::EmptyRange {
                    index,
                    which,
                    lo: r.lo,
                    hi: r.hi,
                });
            }
        }
        let proto = self.proto.filter(|p| p.mask == 0xff).map(|p| p.value);
        if self.tcp_flags.is_some() && proto != Some(TCP) {
            return Err(RuleError::NeedsProtocol {
                index,
                field: "tcp-flags",
                needs: "tcp (6)",
            });
        }
        if self.icmp_type.is_some() || self.icmp_code.is_some() {
            if !matches!(proto, Some(ICMP | ICMP6)) {
                return Err(RuleError::NeedsProtocol {
                    index,
                    field: "icmp type/code",
                    needs: "icmp (1) or icmpv6 (58)",
                });
            }
            if !self.sport.is_any() || !self.dport.is_any() {
                return Err(RuleError::IcmpWithPorts { index });
            }
        }
        if let Some(d) = self.dscp.filter(|&d| d > 63) {
            return Err(RuleError::OutOfRange {
                index,
                field: "dscp",
                value: d.into(),
                max: 63,
            });
        }
        if let Some(v) = self.vlan.filter(|&v| v > 4095) {
            return Err(RuleError::OutOfRange {
                index,
                field: "vlan",
                value: v,
                max: 4095,
            });
        }
        Ok(family)
    }
}

/// A rule as the classifier matches it, for one address family: every
/// field a value under a mask or a range, so that one comparison shape
/// serves all. ICMP type and code sit in the port slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Lowered<A> {
    pub src: A,
    pub src_mask: A,
    pub dst: A,
    pub dst_mask: A,
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    pub proto: u8,
    pub proto_mask: u8,
    /// Fields matched outside the block scan, if any.
    pub extra: Option<Extra>,
}

/// The fields few rules use, checked only after the rest matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Extra {
    pub tcp_flags: Option<Masked>,
    pub dscp: Option<u8>,
    pub src_mac: Option<MacAddr>,
    pub dst_mac: Option<MacAddr>,
    pub vlan: Option<u16>,
}

impl Extra {
    /// Whether `key`'s rare fields match.
    #[inline]
    pub fn matches<A: Addr>(&self, key: &super::Key<A>) -> bool {
        self.tcp_flags
            .is_none_or(|f| key.tcp_flags & f.mask == f.value & f.mask)
            && self.dscp.is_none_or(|d| key.dscp == d)
            && self.src_mac.is_none_or(|m| key.l2.src_mac == m)
            && self.dst_mac.is_none_or(|m| key.l2.dst_mac == m)
            && self.vlan.is_none_or(|v| key.l2.vlan == v)
    }
}

impl<A: Addr> Lowered<A> {
    /// `rule` for family `A` (checked before: its prefixes are of `A`'s
    /// family or absent).
    pub fn from_rule(rule: &Rule) -> Lowered<A> {
        let prefix = |p: Option<Prefix>| match p {
            Some(Prefix::V4(a, l)) => A::from_v4(a, l),
            Some(Prefix::V6(a, l)) => A::from_v6(a, l),
            None => (A::ZERO, A::ZERO),
        };
        let (src, src_mask) = prefix(rule.src);
        let (dst, dst_mask) = prefix(rule.dst);
        let proto = rule.proto.unwrap_or(Masked { value: 0, mask: 0 });
        let (sport, dport) = if rule.icmp_type.is_some() || rule.icmp_code.is_some() {
            let one = |v: Option<u8>| v.map_or((0, u16::MAX), |t| (t.into(), t.into()));
            (one(rule.icmp_type), one(rule.icmp_code))
        } else {
            (
                (rule.sport.lo, rule.sport.hi),
                (rule.dport.lo, rule.dport.hi),
            )
        };
        let extra = Extra {
            tcp_flags: rule.tcp_flags,
            dscp: rule.dscp,
            src_mac: rule.src_mac,
            dst_mac: rule.dst_mac,
            vlan: rule.vlan,
        };
        Lowered {
            src,
            src_mask,
            dst,
            dst_mask,
            sport,
            dport,
            proto: proto.value & proto.mask,
            proto_mask: proto.mask,
            extra: (extra != Extra::default()).then_some(extra),
        }
    }

    /// Whether `key` matches, every field: the reference the classifier
    /// is checked against.
    #[inline]
    pub fn matches(&self, key: &super::Key<A>) -> bool {
        key.src & self.src_mask == self.src
            && key.dst & self.dst_mask == self.dst
            && (self.sport.0..=self.sport.1).contains(&key.sport)
            && (self.dport.0..=self.dport.1).contains(&key.dport)
            && key.proto & self.proto_mask == self.proto
            && self.extra.is_none_or(|e| e.matches(key))
    }
}

/// Parses `a.b.c.d/len` or an IPv6 prefix; a convenience for tests and
/// rule files (the checks happen when the set is built).
pub fn prefix(s: &str) -> Option<Prefix> {
    let (a, l) = s.split_once('/')?;
    let len: u8 = l.parse().ok()?;
    if let Ok(a) = a.parse::<Ipv4Addr>() {
        return Some(Prefix::V4(a, len));
    }
    a.parse::<Ipv6Addr>().ok().map(|a| Prefix::V6(a, len))
}
