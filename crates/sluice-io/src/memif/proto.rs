//! The memif control protocol, version 2.0: 128-byte messages on a Unix
//! `SOCK_SEQPACKET` socket, and the constants of the shared-memory layout.
//!
//! Byte layouts follow VPP's `memif.h` (a packed C struct, so the payload
//! starts at offset 2 right after the `u16` type); all fields are in the
//! host's byte order, since both peers share the host. Decoding never
//! trusts the peer: a message of the wrong size or an unknown type is an
//! error, and strings are cut at their first NUL.

/// Every control message is exactly this long.
pub const MSG_SIZE: usize = 128;
/// The protocol version spoken: 2.0.
pub const VERSION: u16 = 0x0200;
/// The word at the start of every ring, checked on connect.
pub const COOKIE: u32 = 0x03E3_1F20;
/// Bytes of the optional secret.
pub const SECRET_SIZE: usize = 24;
/// Bytes of a name field (interface or instance).
pub const NAME_SIZE: usize = 32;
/// Bytes of a disconnect reason.
pub const REASON_SIZE: usize = 96;
/// Largest ring the server accepts: 2^14 descriptors (VPP's limit).
pub const MAX_LOG2_RING_SIZE: u8 = 14;

/// `ADD_RING` flag: the ring carries client-to-server packets.
pub const ADD_RING_FLAG_C2S: u16 = 1;
/// Ring flag: the consumer does not want an interrupt (it polls).
pub const RING_FLAG_MASK_INT: u16 = 1;
/// Descriptor flag: the packet continues in the next slot.
pub const DESC_FLAG_NEXT: u16 = 1;

/// Byte offsets of a ring's header fields, and its size: the header is
/// two 64-byte cache lines (cookie, flags and head on the first, which the
/// client writes; tail on the second, which the server writes), then the
/// descriptors. Hard-coded to 64-byte lines as VPP does.
pub mod ring {
    /// `u32 cookie`.
    pub const COOKIE: usize = 0;
    /// `u16 flags`.
    pub const FLAGS: usize = 4;
    /// `u16 head`, written by the client.
    pub const HEAD: usize = 6;
    /// `u16 tail`, written by the server.
    pub const TAIL: usize = 64;
    /// The first descriptor.
    pub const DESC: usize = 128;
    /// Bytes of one descriptor.
    pub const DESC_SIZE: usize = 16;

    /// Bytes of a ring of `1 << log2` descriptors.
    pub const fn bytes(log2: u8) -> usize {
        DESC + DESC_SIZE * (1usize << log2)
    }
}

/// What the packets on an interface are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Ethernet frames (the only mode Sluice serves so far).
    #[default]
    Ethernet = 0,
    /// IP packets without a link header.
    Ip = 1,
    /// VPP's punt/inject.
    PuntInject = 2,
}

impl Mode {
    fn from_u8(v: u8) -> Option<Mode> {
        match v {
            0 => Some(Mode::Ethernet),
            1 => Some(Mode::Ip),
            2 => Some(Mode::PuntInject),
            _ => None,
        }
    }
}

/// A fixed-size, NUL-padded string field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Text<const N: usize>(pub [u8; N]);

impl<const N: usize> Text<N> {
    /// `s` cut to `N` bytes (at a character boundary) and NUL-padded.
    pub fn new(s: &str) -> Text<N> {
        let mut b = [0u8; N];
        let mut end = s.len().min(N);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        b[..end].copy_from_slice(&s.as_bytes()[..end]);
        Text(b)
    }

    /// The bytes before the first NUL.
    pub fn bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&c| c == 0).unwrap_or(N);
        &self.0[..end]
    }

    /// The text, lossily decoded (for messages and logs).
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

impl<const N: usize> std::fmt::Debug for Text<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// `HELLO`: the server's limits, sent right after it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The server's instance name.
    pub name: Text<NAME_SIZE>,
    /// Lowest version spoken.
    pub min_version: u16,
    /// Highest version spoken.
    pub max_version: u16,
    /// Highest region index accepted.
    pub max_region: u16,
    /// Highest server-to-client ring index accepted.
    pub max_s2c_ring: u16,
    /// Highest client-to-server ring index accepted.
    pub max_c2s_ring: u16,
    /// Largest ring accepted, as log2 of its descriptors.
    pub max_log2_ring_size: u8,
}

/// `INIT`: the client names the interface it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Init {
    /// The protocol version the client speaks.
    pub version: u16,
    /// The interface id (both sides configure it).
    pub id: u32,
    /// The mode, as sent (an unknown value is kept to be refused).
    pub mode: u8,
    /// The secret, NUL-padded; empty for none.
    pub secret: Text<SECRET_SIZE>,
    /// The client's instance name.
    pub name: Text<NAME_SIZE>,
}

/// `ADD_RING`: one ring in one of the client's regions (its interrupt
/// eventfd travels with the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddRing {
    /// [`ADD_RING_FLAG_C2S`] for a client-to-server ring.
    pub flags: u16,
    /// Index among the rings of its direction.
    pub index: u16,
    /// The region holding it.
    pub region: u16,
    /// Its offset in the region.
    pub offset: u32,
    /// log2 of its descriptors.
    pub log2_ring_size: u8,
    /// Bytes of private header before each buffer (must be 0).
    pub private_hdr_size: u16,
}

/// One control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Acknowledges `INIT`, `ADD_REGION`, `ADD_RING`.
    Ack,
    /// Server to client, first.
    Hello(Hello),
    /// Client to server: which interface, which version.
    Init(Init),
    /// Client to server: a region of `size` bytes (its fd travels along).
    AddRegion {
        /// Region index, in order from 0.
        index: u16,
        /// Bytes.
        size: u64,
    },
    /// Client to server: a ring.
    AddRing(AddRing),
    /// Client to server: everything is sent, connect.
    Connect {
        /// The client's interface name.
        name: Text<NAME_SIZE>,
    },
    /// Server to client: connected.
    Connected {
        /// The server's interface name.
        name: Text<NAME_SIZE>,
    },
    /// Either way: the connection ends, and why.
    Disconnect {
        /// A code (0 when the text says it all).
        code: u32,
        /// Why.
        reason: Text<REASON_SIZE>,
    },
}

/// A message that could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not 128 bytes.
    #[error("control message of {0} bytes, expected 128")]
    Size(usize),
    /// A type this version does not know.
    #[error("unknown control message type {0}")]
    Type(u16),
}

impl Message {
    /// The message's type number on the wire.
    pub fn type_id(&self) -> u16 {
        match self {
            Message::Ack => 1,
            Message::Hello(_) => 2,
            Message::Init(_) => 3,
            Message::AddRegion { .. } => 4,
            Message::AddRing(_) => 5,
            Message::Connect { .. } => 6,
            Message::Connected { .. } => 7,
            Message::Disconnect { .. } => 8,
        }
    }

    /// A `DISCONNECT` with `reason`.
    pub fn disconnect(code: u32, reason: &str) -> Message {
        Message::Disconnect {
            code,
            reason: Text::new(reason),
        }
    }

    /// The 128 bytes on the wire.
    pub fn encode(&self) -> [u8; MSG_SIZE] {
        let mut b = [0u8; MSG_SIZE];
        put(&mut b, 0, &self.type_id().to_ne_bytes());
        match self {
            Message::Ack => {}
            Message::Hello(h) => {
                put(&mut b, 2, &h.name.0);
                put(&mut b, 34, &h.min_version.to_ne_bytes());
                put(&mut b, 36, &h.max_version.to_ne_bytes());
                put(&mut b, 38, &h.max_region.to_ne_bytes());
                put(&mut b, 40, &h.max_s2c_ring.to_ne_bytes());
                put(&mut b, 42, &h.max_c2s_ring.to_ne_bytes());
                b[44] = h.max_log2_ring_size;
            }
            Message::Init(i) => {
                put(&mut b, 2, &i.version.to_ne_bytes());
                put(&mut b, 4, &i.id.to_ne_bytes());
                b[8] = i.mode;
                put(&mut b, 9, &i.secret.0);
                put(&mut b, 33, &i.name.0);
            }
            Message::AddRegion { index, size } => {
                put(&mut b, 2, &index.to_ne_bytes());
                put(&mut b, 4, &size.to_ne_bytes());
            }
            Message::AddRing(r) => {
                put(&mut b, 2, &r.flags.to_ne_bytes());
                put(&mut b, 4, &r.index.to_ne_bytes());
                put(&mut b, 6, &r.region.to_ne_bytes());
                put(&mut b, 8, &r.offset.to_ne_bytes());
                b[12] = r.log2_ring_size;
                put(&mut b, 13, &r.private_hdr_size.to_ne_bytes());
            }
            Message::Connect { name } | Message::Connected { name } => put(&mut b, 2, &name.0),
            Message::Disconnect { code, reason } => {
                put(&mut b, 2, &code.to_ne_bytes());
                put(&mut b, 6, &reason.0);
            }
        }
        b
    }

    /// Decodes a message received whole (exactly 128 bytes).
    pub fn decode(b: &[u8]) -> Result<Message, DecodeError> {
        let b: &[u8; MSG_SIZE] = b.try_into().map_err(|_| DecodeError::Size(b.len()))?;
        Ok(match u16_at(b, 0) {
            1 => Message::Ack,
            2 => Message::Hello(Hello {
                name: Text(arr(b, 2)),
                min_version: u16_at(b, 34),
                max_version: u16_at(b, 36),
                max_region: u16_at(b, 38),
                max_s2c_ring: u16_at(b, 40),
                max_c2s_ring: u16_at(b, 42),
                max_log2_ring_size: b[44],
            }),
            3 => Message::Init(Init {
                version: u16_at(b, 2),
                id: u32::from_ne_bytes(arr(b, 4)),
                mode: b[8],
                secret: Text(arr(b, 9)),
                name: Text(arr(b, 33)),
            }),
            4 => Message::AddRegion {
                index: u16_at(b, 2),
                size: u64::from_ne_bytes(arr(b, 4)),
            },
            5 => Message::AddRing(AddRing {
                flags: u16_at(b, 2),
                index: u16_at(b, 4),
                region: u16_at(b, 6),
                offset: u32::from_ne_bytes(arr(b, 8)),
                log2_ring_size: b[12],
                private_hdr_size: u16_at(b, 13),
            }),
            6 => Message::Connect {
                name: Text(arr(b, 2)),
            },
            7 => Message::Connected {
                name: Text(arr(b, 2)),
            },
            8 => Message::Disconnect {
                code: u32::from_ne_bytes(arr(b, 2)),
                reason: Text(arr(b, 6)),
            },
            t => return Err(DecodeError::Type(t)),
        })
    }
}

impl Init {
    /// The interface mode, if it is one this version knows.
    pub fn mode(&self) -> Option<Mode> {
        Mode::from_u8(self.mode)
    }
}

fn put(b: &mut [u8; MSG_SIZE], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

fn arr<const N: usize>(b: &[u8; MSG_SIZE], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

fn u16_at(b: &[u8; MSG_SIZE], at: usize) -> u16 {
    u16::from_ne_bytes(arr(b, at))
}

/// The checks both ends make of their own configuration: queue pairs
/// within what the protocol's `u8` indices allow, a secret that fits its
/// field.
pub(crate) fn check_config(
    what: &dyn Fn() -> String,
    queues: u16,
    secret: Option<&str>,
) -> Result<(), crate::KernelError> {
    if queues == 0 || queues > 256 {
        return Err(crate::KernelError::other(what(), "queues must be 1..=256"));
    }
    if secret.is_some_and(|s| s.len() > SECRET_SIZE) {
        return Err(crate::KernelError::other(
            what(),
            "secret longer than 24 bytes",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_sit_where_memif_h_puts_them() {
        let m = Message::AddRing(AddRing {
            flags: ADD_RING_FLAG_C2S,
            index: 3,
            region: 1,
            offset: 0x1234_5678,
            log2_ring_size: 10,
            private_hdr_size: 0,
        })
        .encode();
        assert_eq!(&m[0..2], &5u16.to_ne_bytes());
        assert_eq!(&m[2..4], &1u16.to_ne_bytes());
        assert_eq!(&m[4..6], &3u16.to_ne_bytes());
        assert_eq!(&m[8..12], &0x1234_5678u32.to_ne_bytes());
        assert_eq!(m[12], 10);
        let init = Message::Init(Init {
            version: VERSION,
            id: 7,
            mode: 0,
            secret: Text::new("s3"),
            name: Text::new("dpdk"),
        })
        .encode();
        assert_eq!(&init[4..8], &7u32.to_ne_bytes());
        assert_eq!(&init[9..11], b"s3");
        assert_eq!(&init[33..37], b"dpdk");
    }

    #[test]
    fn every_message_round_trips() {
        let all = [
            Message::Ack,
            Message::Hello(Hello {
                name: Text::new("sluice"),
                min_version: VERSION,
                max_version: VERSION,
                max_region: 255,
                max_s2c_ring: 1,
                max_c2s_ring: 1,
                max_log2_ring_size: 14,
            }),
            Message::AddRegion {
                index: 0,
                size: 1 << 33,
            },
            Message::Connect {
                name: Text::new("memif0"),
            },
            Message::Connected {
                name: Text::new("memif0"),
            },
            Message::disconnect(3, "incorrect secret"),
        ];
        for m in all {
            assert_eq!(Message::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn short_long_and_unknown_messages_are_refused() {
        assert_eq!(Message::decode(&[1, 0]), Err(DecodeError::Size(2)));
        assert_eq!(Message::decode(&[0; 129]), Err(DecodeError::Size(129)));
        assert_eq!(Message::decode(&[0; 128]), Err(DecodeError::Type(0)));
    }

    #[test]
    fn text_is_cut_at_nul_and_at_its_size() {
        assert_eq!(Text::<4>::new("abcdef").bytes(), b"abcd");
        assert_eq!(Text::<4>([b'a', 0, b'b', 0]).bytes(), b"a");
        // Cut on a character boundary, never inside one.
        assert_eq!(Text::<4>::new("abcé").bytes(), b"abc");
    }
}
