//! Choosing translations: an outside address and port for a flow from
//! the inside, the inside address and port of a flow a static mapping
//! lets in.
//!
//! Ports are not kept in a free list: a port is free for a flow when the
//! reply key it would make (remote end → outside address and port) is in
//! no session. So the same outside port serves flows to different remote
//! ends (endpoint-dependent mapping, as Linux and VPP's NAT44-ED do: far
//! more flows than ports), and a port is free again the moment its
//! session expires, with nothing to return. A flow first tries to keep
//! its own port, then walks the range from a point its key hashes to,
//! for at most `max_probes` ports.

use std::collections::HashMap;

use super::config::{NatConfig, NatConfigError, StaticMapping};
use crate::conntrack::tuple::{ECHO, proto};
use crate::conntrack::{NatSide, ReplyNat, Tuple};

/// The compiled configuration.
#[derive(Debug, Clone)]
pub struct Translations {
    pool: Vec<u32>,
    lo: u32,
    len: u32,
    max_probes: u32,
    /// Inside address → outside address, one-to-one.
    out_of: HashMap<u32, u32>,
    /// Outside address → inside address, one-to-one.
    in_of: HashMap<u32, u32>,
    /// (protocol, outside address, outside port) → (inside address, port).
    forwards: HashMap<(u8, u32, u16), (u32, u16)>,
}

fn v4(a: std::net::Ipv4Addr) -> u32 {
    u32::from(a)
}

impl Translations {
    /// Compiles `cfg` (validating it first).
    pub fn new(cfg: &NatConfig) -> Result<Translations, NatConfigError> {
        cfg.validate()?;
        let mut t = Translations {
            pool: cfg.pool.iter().map(|&a| v4(a)).collect(),
            lo: u32::from(*cfg.ports.start()),
            len: u32::from(*cfg.ports.end()) - u32::from(*cfg.ports.start()) + 1,
            max_probes: cfg.max_probes,
            out_of: HashMap::new(),
            in_of: HashMap::new(),
            forwards: HashMap::new(),
        };
        for m in &cfg.statics {
            match *m {
                StaticMapping::OneToOne { inside, outside } => {
                    t.out_of.insert(v4(inside), v4(outside));
                    t.in_of.insert(v4(outside), v4(inside));
                }
                StaticMapping::PortForward {
                    proto,
                    outside,
                    outside_port,
                    inside,
                    inside_port,
                } => {
                    t.forwards.insert(
                        (proto, v4(outside), outside_port),
                        (v4(inside), inside_port),
                    );
                }
            }
        }
        Ok(t)
    }

    /// The translation of a new flow from the inside with key `k`, its
    /// reply key one that `free` accepts; `None` when no port (or no
    /// address) is left for it.
    pub fn snat(&self, k: &Tuple, mut free: impl FnMut(&Tuple) -> bool) -> Option<ReplyNat> {
        let src = k.src as u32;
        let (addr, one_to_one) = match self.out_of.get(&src) {
            Some(&a) => (a, true),
            None if !self.pool.is_empty() => {
                // Paired pooling: a host's flows all leave from one address.
                let h = mix(u64::from(src));
                (self.pool[(h % self.pool.len() as u64) as usize], false)
            }
            None => return None,
        };
        let try_port = |port: u32, free: &mut dyn FnMut(&Tuple) -> bool| {
            let n = ReplyNat {
                side: NatSide::Dst,
                addr,
                port,
            };
            let forwarded =
                u16::try_from(port).is_ok_and(|p| self.forwards.contains_key(&(k.proto, addr, p)));
            (!forwarded && free(&n.reply_of(k))).then_some(n)
        };
        // Which slot holds this flow's port: an echo request's
        // identifier is its source "port" (the other slot is ECHO).
        let has_ports = matches!(k.proto, proto::TCP | proto::UDP)
            || (k.proto == proto::ICMP && k.dport == ECHO);
        if !has_ports {
            // Address only: one flow per (remote, protocol) and address.
            return try_port(k.sport, &mut free);
        }
        let own = k.sport;
        if (one_to_one || (self.lo..self.lo + self.len).contains(&own))
            && let Some(n) = try_port(own, &mut free)
        {
            return Some(n);
        }
        let start = (k.hash(0x6e61_7434_3400_0001) % u64::from(self.len)) as u32;
        (0..self.len.min(self.max_probes))
            .map(|i| self.lo + (start + i) % self.len)
            .find_map(|p| try_port(p, &mut free))
    }

    /// The translation a static mapping gives a new flow from the outside
    /// with key `k`, if any.
    pub fn dnat(&self, k: &Tuple) -> Option<ReplyNat> {
        let dst = k.dst as u32;
        if let Ok(dport) = u16::try_from(k.dport)
            && let Some(&(addr, port)) = self.forwards.get(&(k.proto, dst, dport))
        {
            return Some(ReplyNat {
                side: NatSide::Src,
                addr,
                port: u32::from(port),
            });
        }
        self.in_of.get(&dst).map(|&addr| ReplyNat {
            side: NatSide::Src,
            addr,
            port: k.dport,
        })
    }
}

/// A 64-bit finaliser, to spread inside addresses over the pool.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}
