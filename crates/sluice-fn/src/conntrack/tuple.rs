//! The key of a connection: a 5-tuple in a zone, and its hash.
//!
//! IPv4 and IPv6 share one key type: addresses are 128 bits (IPv4 in the
//! low 32) and a family flag keeps `10.0.0.1` and `::10.0.0.1` apart.
//! Ports are 32 bits wide so that ICMP echo can mark which side of the
//! exchange a key is (see [`ECHO`]) without colliding with any 16-bit
//! identifier.

/// Protocol numbers the tracker knows.
pub mod proto {
    /// ICMP (IPv4).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMP6: u8 = 58;
}

/// The port slot of an ICMP echo key that is not the identifier: an echo
/// request from A to B reads `(A, B, id, ECHO)`, the reply from B to A
/// `(B, A, ECHO, id)` — the request's key turned around.
pub const ECHO: u32 = 1 << 16;

/// A connection's key as one direction of its packets reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tuple {
    /// Source address (IPv4 in the low 32 bits).
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// Source port (ICMP echo: identifier or [`ECHO`]).
    pub sport: u32,
    /// Destination port.
    pub dport: u32,
    /// IP protocol.
    pub proto: u8,
    /// Whether the addresses are IPv6.
    pub v6: bool,
    /// The zone (tenant or VRF) the connection lives in.
    pub zone: u16,
}

impl Tuple {
    /// The key of the other direction.
    #[inline(always)]
    pub fn reversed(&self) -> Tuple {
        Tuple {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    /// A 64-bit hash of the key under `seed`. Not a keyed PRF: a seed per
    /// table (random at creation) keeps an outsider from aiming at a
    /// bucket without knowing it, and a bucket that overflows both of its
    /// choices refuses the flow with a counter rather than degrade.
    #[inline(always)]
    pub fn hash(&self, seed: u64) -> u64 {
        let fold = |a: u128| (a as u64) ^ ((a >> 64) as u64).rotate_left(17);
        let ports = (u64::from(self.sport) << 32) ^ u64::from(self.dport);
        let rest = (u64::from(self.proto) << 56)
            ^ (u64::from(self.v6) << 48)
            ^ (u64::from(self.zone) << 32);
        let a = mix(fold(self.src) ^ seed);
        let b = mix(fold(self.dst) ^ a.rotate_left(23));
        mix(ports ^ rest ^ b.wrapping_add(seed.rotate_left(7)))
    }
}

/// A 64-bit finaliser: every input bit reaches every output bit.
#[inline(always)]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 31;
    x = x.wrapping_mul(0x7fb5_d329_728e_a185);
    x ^= x >> 27;
    x = x.wrapping_mul(0x81da_def4_bc2d_d44d);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_and_fields_hash_apart() {
        let t = Tuple {
            src: 0x0a00_0001,
            dst: 0x0a09_0001,
            sport: 40000,
            dport: 80,
            proto: proto::TCP,
            v6: false,
            zone: 0,
        };
        let h = t.hash(1);
        assert_eq!(t.reversed().reversed(), t);
        assert_ne!(h, t.reversed().hash(1));
        assert_ne!(h, Tuple { zone: 1, ..t }.hash(1));
        assert_ne!(h, Tuple { v6: true, ..t }.hash(1));
        assert_ne!(h, Tuple { sport: 40001, ..t }.hash(1));
        assert_ne!(h, t.hash(2), "the seed changes the hash");
    }
}
