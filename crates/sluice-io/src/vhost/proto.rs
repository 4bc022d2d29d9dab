//! The vhost-user protocol (QEMU's `docs/interop/vhost-user.rst`): a
//! 12-byte header (`u32 request; u32 flags; u32 size`) and a payload of
//! `size` bytes on a Unix stream socket, descriptors in `SCM_RIGHTS`, all
//! in the host's byte order.
//!
//! Decoding never trusts the peer: a payload must have exactly the size
//! its request calls for (a memory table: its header and as many regions
//! as it announces, at most eight), and a request Sluice does not know is
//! [`Request::Other`], for the connection to refuse.

/// Bytes of a message header.
pub const HDR_SIZE: usize = 12;
/// Largest payload accepted (rust-vmm's limit; the biggest request this
/// backend serves, a memory table of eight regions, takes 264).
pub const MAX_PAYLOAD: usize = 4096;
/// The protocol version in the low two bits of `flags`.
pub const VERSION: u32 = 1;
/// `flags`: the mask of the version bits.
pub const VERSION_MASK: u32 = 3;
/// `flags`: this message is a reply.
pub const FLAG_REPLY: u32 = 1 << 2;
/// `flags`: the sender wants a reply (with `REPLY_ACK` negotiated).
pub const FLAG_NEED_REPLY: u32 = 1 << 3;
/// Most memory regions in one `SET_MEM_TABLE`.
pub const MAX_REGIONS: usize = 8;
/// `SET_VRING_KICK/CALL/ERR`: bits 0-7 are the ring index.
pub const VRING_INDEX_MASK: u64 = 0xff;
/// `SET_VRING_KICK/CALL/ERR`: no descriptor comes (poll instead).
pub const VRING_NOFD: u64 = 1 << 8;

/// Feature bits of the device (`GET_FEATURES`) that this backend knows.
pub mod features {
    /// The device takes frames of several chained receive buffers, each
    /// frame saying how many in its header's `num_buffers`.
    pub const NET_MRG_RXBUF: u64 = 1 << 15;
    /// Several queue pairs (the count comes from `GET_QUEUE_NUM`).
    pub const NET_MQ: u64 = 1 << 22;
    /// Headers and data may be laid out across descriptors at will.
    pub const ANY_LAYOUT: u64 = 1 << 27;
    /// Descriptors may point to tables of descriptors.
    pub const RING_INDIRECT_DESC: u64 = 1 << 28;
    /// `used_event` / `avail_event` notification suppression.
    pub const RING_EVENT_IDX: u64 = 1 << 29;
    /// vhost-user protocol features may be negotiated.
    pub const PROTOCOL_FEATURES: u64 = 1 << 30;
    /// Virtio 1.0: little-endian, 12-byte net header.
    pub const VERSION_1: u64 = 1 << 32;
    /// Packed virtqueues (not offered).
    pub const RING_PACKED: u64 = 1 << 34;
}

/// vhost-user protocol feature bits (`GET_PROTOCOL_FEATURES`).
pub mod protocol {
    /// Several queue pairs; `GET_QUEUE_NUM` answers how many.
    pub const MQ: u64 = 1 << 0;
    /// Every request with `NEED_REPLY` is answered with a status.
    pub const REPLY_ACK: u64 = 1 << 3;
}

/// Request codes, front end to back end.
pub mod code {
    #![allow(missing_docs)]
    pub const GET_FEATURES: u32 = 1;
    pub const SET_FEATURES: u32 = 2;
    pub const SET_OWNER: u32 = 3;
    pub const RESET_OWNER: u32 = 4;
    pub const SET_MEM_TABLE: u32 = 5;
    pub const SET_LOG_BASE: u32 = 6;
    pub const SET_LOG_FD: u32 = 7;
    pub const SET_VRING_NUM: u32 = 8;
    pub const SET_VRING_ADDR: u32 = 9;
    pub const SET_VRING_BASE: u32 = 10;
    pub const GET_VRING_BASE: u32 = 11;
    pub const SET_VRING_KICK: u32 = 12;
    pub const SET_VRING_CALL: u32 = 13;
    pub const SET_VRING_ERR: u32 = 14;
    pub const GET_PROTOCOL_FEATURES: u32 = 15;
    pub const SET_PROTOCOL_FEATURES: u32 = 16;
    pub const GET_QUEUE_NUM: u32 = 17;
    pub const SET_VRING_ENABLE: u32 = 18;
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The request code.
    pub request: u32,
    /// Version, `REPLY`, `NEED_REPLY`.
    pub flags: u32,
    /// Bytes of payload that follow.
    pub size: u32,
}

impl Header {
    /// Reads a header.
    pub fn decode(b: &[u8; HDR_SIZE]) -> Header {
        let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header {
            request: w(0),
            flags: w(4),
            size: w(8),
        }
    }

    /// Writes a header.
    pub fn encode(&self) -> [u8; HDR_SIZE] {
        let mut b = [0; HDR_SIZE];
        b[0..4].copy_from_slice(&self.request.to_ne_bytes());
        b[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        b[8..12].copy_from_slice(&self.size.to_ne_bytes());
        b
    }

    /// Whether the sender wants a status reply.
    pub fn need_reply(&self) -> bool {
        self.flags & FLAG_NEED_REPLY != 0
    }
}

/// A ring's index and a number (its size, or its next available index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VringState {
    /// The ring.
    pub index: u32,
    /// The number.
    pub num: u32,
}

/// Where a ring lies, in the front end's own addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VringAddr {
    /// The ring.
    pub index: u32,
    /// Bit 0: log writes to the used ring (not offered).
    pub flags: u32,
    /// The descriptor table.
    pub desc: u64,
    /// The used ring.
    pub used: u64,
    /// The available ring.
    pub avail: u64,
    /// Where used-ring writes are logged (not offered).
    pub log: u64,
}

/// One region of guest memory, as `SET_MEM_TABLE` announces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemRegion {
    /// Guest-physical address of its first byte.
    pub guest_phys_addr: u64,
    /// Bytes.
    pub size: u64,
    /// Address of its first byte in the front end's process.
    pub user_addr: u64,
    /// Where it starts in the file passed with it.
    pub mmap_offset: u64,
}

/// A request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Asks for the device features.
    GetFeatures,
    /// The features the driver accepted.
    SetFeatures(u64),
    /// The front end takes the device.
    SetOwner,
    /// Deprecated: stop everything.
    ResetOwner,
    /// The guest's memory: one descriptor per region comes with it.
    SetMemTable(Vec<MemRegion>),
    /// A ring's size.
    SetVringNum(VringState),
    /// Where a ring lies.
    SetVringAddr(VringAddr),
    /// A ring's next available index.
    SetVringBase(VringState),
    /// Stops a ring and asks for its next available index.
    GetVringBase(VringState),
    /// The eventfd the guest kicks (ring index, `NOFD`).
    SetVringKick(u64),
    /// The eventfd the device signals.
    SetVringCall(u64),
    /// The eventfd for ring errors.
    SetVringErr(u64),
    /// Asks for the protocol features.
    GetProtocolFeatures,
    /// The protocol features the front end accepted.
    SetProtocolFeatures(u64),
    /// Asks how many queue pairs the device has.
    GetQueueNum,
    /// Enables (1) or disables (0) a ring.
    SetVringEnable(VringState),
    /// A request this backend does not serve (its code).
    Other(u32),
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is not the size the request calls for.
    #[error("request {request}: payload of {got} bytes, {want} expected")]
    Size {
        /// The request code.
        request: u32,
        /// Bytes that came.
        got: usize,
        /// Bytes expected.
        want: usize,
    },
    /// A memory table with no region or more than eight.
    #[error("memory table of {0} regions (1..=8)")]
    Regions(u32),
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_ne_bytes(w)
}

const REGION_SIZE: usize = 32;

impl Request {
    /// Decodes request `code` with its payload.
    pub fn decode(code: u32, p: &[u8]) -> Result<Request, DecodeError> {
        let want = |n: usize| {
            if p.len() == n {
                Ok(())
            } else {
                Err(DecodeError::Size {
                    request: code,
                    got: p.len(),
                    want: n,
                })
            }
        };
        let state = |p: &[u8]| VringState {
            index: u32_at(p, 0),
            num: u32_at(p, 4),
        };
        Ok(match code {
            code::GET_FEATURES => want(0).map(|_| Request::GetFeatures)?,
            code::SET_OWNER => want(0).map(|_| Request::SetOwner)?,
            code::RESET_OWNER => want(0).map(|_| Request::ResetOwner)?,
            code::GET_PROTOCOL_FEATURES => want(0).map(|_| Request::GetProtocolFeatures)?,
            code::GET_QUEUE_NUM => want(0).map(|_| Request::GetQueueNum)?,
            code::SET_FEATURES => want(8).map(|_| Request::SetFeatures(u64_at(p, 0)))?,
            code::SET_PROTOCOL_FEATURES => {
                want(8).map(|_| Request::SetProtocolFeatures(u64_at(p, 0)))?
            }
            code::SET_VRING_KICK => want(8).map(|_| Request::SetVringKick(u64_at(p, 0)))?,
            code::SET_VRING_CALL => want(8).map(|_| Request::SetVringCall(u64_at(p, 0)))?,
            code::SET_VRING_ERR => want(8).map(|_| Request::SetVringErr(u64_at(p, 0)))?,
            code::SET_VRING_NUM => want(8).map(|_| Request::SetVringNum(state(p)))?,
            code::SET_VRING_BASE => want(8).map(|_| Request::SetVringBase(state(p)))?,
            code::GET_VRING_BASE => want(8).map(|_| Request::GetVringBase(state(p)))?,
            code::SET_VRING_ENABLE => want(8).map(|_| Request::SetVringEnable(state(p)))?,
            code::SET_VRING_ADDR => want(40).map(|_| {
                Request::SetVringAddr(VringAddr {
                    index: u32_at(p, 0),
                    flags: u32_at(p, 4),
                    desc: u64_at(p, 8),
                    used: u64_at(p, 16),
                    avail: u64_at(p, 24),
                    log: u64_at(p, 32),
                })
            })?,
            code::SET_MEM_TABLE => {
                if p.len() < 8 {
                    want(8)?;
                }
                let n = u32_at(p, 0);
                if n == 0 || n as usize > MAX_REGIONS {
                    return Err(DecodeError::Regions(n));
                }
                want(8 + n as usize * REGION_SIZE)?;
                let regions = p[8..]
                    .chunks_exact(REGION_SIZE)
                    .map(|r| MemRegion {
                        guest_phys_addr: u64_at(r, 0),
                        size: u64_at(r, 8),
                        user_addr: u64_at(r, 16),
                        mmap_offset: u64_at(r, 24),
                    })
                    .collect();
                Request::SetMemTable(regions)
            }
            other => Request::Other(other),
        })
    }

    /// The request's code.
    pub fn code(&self) -> u32 {
        match self {
            Request::GetFeatures => code::GET_FEATURES,
            Request::SetFeatures(_) => code::SET_FEATURES,
            Request::SetOwner => code::SET_OWNER,
            Request::ResetOwner => code::RESET_OWNER,
            Request::SetMemTable(_) => code::SET_MEM_TABLE,
            Request::SetVringNum(_) => code::SET_VRING_NUM,
            Request::SetVringAddr(_) => code::SET_VRING_ADDR,
            Request::SetVringBase(_) => code::SET_VRING_BASE,
            Request::GetVringBase(_) => code::GET_VRING_BASE,
            Request::SetVringKick(_) => code::SET_VRING_KICK,
            Request::SetVringCall(_) => code::SET_VRING_CALL,
            Request::SetVringErr(_) => code::SET_VRING_ERR,
            Request::GetProtocolFeatures => code::GET_PROTOCOL_FEATURES,
            Request::SetProtocolFeatures(_) => code::SET_PROTOCOL_FEATURES,
            Request::GetQueueNum => code::GET_QUEUE_NUM,
            Request::SetVringEnable(_) => code::SET_VRING_ENABLE,
            Request::Other(c) => *c,
        }
    }

    /// The whole message (header and payload), as a front end sends it:
    /// for tests and tools that play the front end.
    pub fn encode(&self, flags: u32) -> Vec<u8> {
        let mut p = Vec::new();
        let state = |p: &mut Vec<u8>, s: &VringState| {
            p.extend_from_slice(&s.index.to_ne_bytes());
            p.extend_from_slice(&s.num.to_ne_bytes());
        };
        match self {
            Request::GetFeatures
            | Request::SetOwner
            | Request::ResetOwner
            | Request::GetProtocolFeatures
            | Request::GetQueueNum
            | Request::Other(_) => {}
            Request::SetFeatures(v)
            | Request::SetProtocolFeatures(v)
            | Request::SetVringKick(v)
            | Request::SetVringCall(v)
            | Request::SetVringErr(v) => p.extend_from_slice(&v.to_ne_bytes()),
            Request::SetVringNum(s)
            | Request::SetVringBase(s)
            | Request::GetVringBase(s)
            | Request::SetVringEnable(s) => state(&mut p, s),
            Request::SetVringAddr(a) => {
                for w in [a.index, a.flags] {
                    p.extend_from_slice(&w.to_ne_bytes());
                }
                for w in [a.desc, a.used, a.avail, a.log] {
                    p.extend_from_slice(&w.to_ne_bytes());
                }
            }
            Request::SetMemTable(regions) => {
                p.extend_from_slice(&(regions.len() as u32).to_ne_bytes());
                p.extend_from_slice(&0u32.to_ne_bytes());
                for r in regions {
                    for w in [r.guest_phys_addr, r.size, r.user_addr, r.mmap_offset] {
                        p.extend_from_slice(&w.to_ne_bytes());
                    }
                }
            }
        }
        message(self.code(), flags, &p)
    }
}

/// A whole message: header, then payload.
pub fn message(request: u32, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = Header {
        request,
        flags,
        size: payload.len() as u32,
    }
    .encode()
    .to_vec();
    m.extend_from_slice(payload);
    m
}

/// A reply to `request` carrying a `u64`.
pub fn reply_u64(request: u32, v: u64) -> Vec<u8> {
    message(request, VERSION | FLAG_REPLY, &v.to_ne_bytes())
}

/// A reply to `GET_VRING_BASE`.
pub fn reply_state(request: u32, s: VringState) -> Vec<u8> {
    let mut p = s.index.to_ne_bytes().to_vec();
    p.extend_from_slice(&s.num.to_ne_bytes());
    message(request, VERSION | FLAG_REPLY, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(r: Request) {
        let m = r.encode(VERSION);
        let h = Header::decode(m[..HDR_SIZE].try_into().unwrap());
        assert_eq!(h.size as usize, m.len() - HDR_SIZE);
        assert_eq!(Request::decode(h.request, &m[HDR_SIZE..]), Ok(r));
    }

    #[test]
    fn every_request_survives_encode_and_decode() {
        roundtrip(Request::GetFeatures);
        roundtrip(Request::SetFeatures(
            features::VERSION_1 | features::NET_MRG_RXBUF,
        ));
        roundtrip(Request::SetVringAddr(VringAddr {
            index: 1,
            flags: 0,
            desc: 0x1000,
            used: 0x3000,
            avail: 0x2000,
            log: 0,
        }));
        roundtrip(Request::SetMemTable(vec![
            MemRegion {
                guest_phys_addr: 0,
                size: 1 << 20,
                user_addr: 0x7f00_0000_0000,
                mmap_offset: 0,
            };
            3
        ]));
        roundtrip(Request::GetVringBase(VringState { index: 3, num: 0 }));
        roundtrip(Request::Other(44));
    }

    #[test]
    fn payloads_of_the_wrong_size_are_refused() {
        assert!(matches!(
            Request::decode(code::SET_FEATURES, &[0; 4]),
            Err(DecodeError::Size { want: 8, .. })
        ));
        assert!(Request::decode(code::GET_FEATURES, &[0; 8]).is_err());
        assert!(Request::decode(code::SET_VRING_ADDR, &[0; 39]).is_err());
        assert!(Request::decode(code::SET_MEM_TABLE, &[0; 4]).is_err());
        // Nine regions, or none.
        let mut t = 9u32.to_ne_bytes().to_vec();
        t.resize(8 + 9 * 32, 0);
        assert_eq!(
            Request::decode(code::SET_MEM_TABLE, &t),
            Err(DecodeError::Regions(9))
        );
        assert_eq!(
            Request::decode(code::SET_MEM_TABLE, &[0; 8]),
            Err(DecodeError::Regions(0))
        );
        // Two regions announced, one sent.
        let mut t = 2u32.to_ne_bytes().to_vec();
        t.resize(8 + 32, 0);
        assert!(Request::decode(code::SET_MEM_TABLE, &t).is_err());
    }
}
