//! The packet generator: streams of realistic packets written into real
//! buffers.
//!
//! Every packet gets its own bytes: Ethernet (optionally 802.1Q), IPv4 and
//! UDP, TCP or ICMP echo headers with the addresses and ports of one of
//! `flows` flows picked at random, a length drawn from the stream's size
//! profile, a payload that varies from packet to packet, and correct IPv4
//! and L4 checksums. Nothing is a ring of pointers replayed untouched.
//!
//! Sizes count the Ethernet frame without its FCS, as a capture file shows
//! it; IMIX is 7:4:1 of 64, 594 and 1518 bytes on the wire, so 60, 590 and
//! 1514 here.
//!
//! Checksums stay cheap at any size: the payload comes from a fixed random
//! pool whose running one's-complement sums are precomputed, so the sum of
//! any payload slice is one subtraction.

use std::net::Ipv4Addr;

use sluice_buf::{BufCache, DATA_SIZE};
use sluice_graph::clock::{cycles, hz};
use sluice_graph::{Frame, InputState};
use sluice_wire::{EtherType, IpProtocol, MacAddr, checksum};

use crate::Driver;

/// Frame sizes of IMIX 7:4:1, without FCS.
pub const IMIX: [u16; 3] = [60, 590, 1514];
/// The IMIX pattern, spread so that big frames do not bunch.
const IMIX_PATTERN: [u8; 12] = [0, 1, 0, 0, 2, 0, 1, 0, 1, 0, 0, 1];
/// Highest rate a stream may ask for, packets per second.
pub const MAX_RATE: f64 = 1e10;
/// Largest generated frame: one buffer.
pub const MAX_FRAME: u16 = DATA_SIZE as u16;

/// The frame sizes a stream produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketSize {
    /// Every frame this size.
    Fixed(u16),
    /// Uniformly random in `min..=max`.
    Range(u16, u16),
    /// 7:4:1 of [`IMIX`].
    Imix,
}

/// The L4 protocol of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// UDP datagrams.
    Udp,
    /// TCP segments (ACK|PSH, sequence numbers advancing).
    Tcp,
    /// ICMP echo requests.
    Icmp,
}

impl L4 {
    fn header_len(self) -> usize {
        match self {
            L4::Udp | L4::Icmp => 8,
            L4::Tcp => 20,
        }
    }
    fn protocol(self) -> IpProtocol {
        match self {
            L4::Udp => IpProtocol::UDP,
            L4::Tcp => IpProtocol::TCP,
            L4::Icmp => IpProtocol::ICMP,
        }
    }
}

/// A range of IPv4 addresses: `count` addresses from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Range {
    /// First address.
    pub first: Ipv4Addr,
    /// How many (≥ 1).
    pub count: u32,
}

/// A range of ports: `count` ports from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// How many (≥ 1).
    pub count: u32,
}

/// One stream of the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSpec {
    /// Name, for messages.
    pub name: String,
    /// Packets to send; `None`: until stopped.
    pub count: Option<u64>,
    /// Packets per second, or as fast as possible when `None`.
    pub rate_pps: Option<f64>,
    /// Frame sizes.
    pub size: PacketSize,
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC (the forwarder's interface, to be routed).
    pub dst_mac: MacAddr,
    /// 802.1Q tag, if any.
    pub vlan: Option<u16>,
    /// Source addresses.
    pub src_ip: Ipv4Range,
    /// Destination addresses.
    pub dst_ip: Ipv4Range,
    /// L4 protocol.
    pub l4: L4,
    /// Source ports.
    pub src_port: PortRange,
    /// Destination ports.
    pub dst_port: PortRange,
    /// Distinct flows (5-tuples) the stream cycles through at random.
    pub flows: u32,
    /// IPv4 TTL.
    pub ttl: u8,
    /// Seed of the stream's random choices.
    pub seed: u64,
}

impl StreamSpec {
    /// Bytes of headers before the payload.
    pub fn header_len(&self) -> usize {
        14 + if self.vlan.is_some() { 4 } else { 0 } + 20 + self.l4.header_len()
    }

    /// The smallest and largest frame the stream will make.
    pub fn size_bounds(&self) -> (u16, u16) {
        match self.size {
            PacketSize::Fixed(n) => (n, n),
            PacketSize::Range(a, b) => (a, b),
            PacketSize::Imix => (IMIX[0], IMIX[2]),
        }
    }

    /// Checks the stream can be generated; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        let (lo, hi) = self.size_bounds();
        let min = self.header_len() as u16;
        if lo > hi {
            return Err(format!("size range {lo}-{hi} is empty"));
        }
        if lo < min {
            return Err(format!("size {lo} is below the {min} bytes of headers"));
        }
        if hi > MAX_FRAME {
            return Err(format!("size {hi} is above the largest frame, {MAX_FRAME}"));
        }
        if self.flows == 0 || self.src_ip.count == 0 || self.dst_ip.count == 0 {
            return Err("flows and address counts must be at least 1".into());
        }
        if self.src_port.count == 0 || self.dst_port.count == 0 {
            return Err("port counts must be at least 1".into());
        }
        if matches!(self.rate_pps, Some(r) if !(r > 0.0 && r <= MAX_RATE)) {
            return Err(format!(
                "rate must be above 0 and at most {MAX_RATE:e} packets per second"
            ));
        }
        Ok(())
    }

    /// The same stream for worker `w` of `n`: an equal share of the count
    /// and rate, and its own random sequence.
    pub fn share(&self, w: usize, n: usize) -> StreamSpec {
        let n64 = n.max(1) as u64;
        let mut s = self.clone();
        // A share of 0 is 0 packets (the worker has nothing of this
        // stream to send), never "until stopped".
        s.count = self
            .count
            .map(|c| c / n64 + u64::from((w as u64) < c % n64));
        s.rate_pps = self.rate_pps.map(|r| r / n64 as f64);
        s.seed = self.seed ^ (w as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        s
    }
}

/// Bytes of the random payload pool; payload slices start anywhere in its
/// first half.
const POOL: usize = 4096;

/// The shared random payload and its running checksums.
struct Payload {
    bytes: Vec<u8>,
    /// `sums[i]`: one's-complement sum (unfolded) of the first `i` 16-bit words.
    sums: Vec<u64>,
}

impl Payload {
    fn new(seed: u64) -> Payload {
        let mut rng = Rng(seed | 1);
        let bytes: Vec<u8> = (0..POOL).map(|_| rng.next() as u8).collect();
        let mut sums = Vec::with_capacity(POOL / 2 + 1);
        let mut acc = 0u64;
        sums.push(0);
        for w in bytes.chunks_exact(2) {
            acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
            sums.push(acc);
        }
        Payload { bytes, sums }
    }

    /// The one's-complement sum of `len` bytes from even offset `off`.
    #[inline]
    fn sum(&self, off: usize, len: usize) -> u64 {
        let words = len / 2;
        let mut s = self.sums[off / 2 + words] - self.sums[off / 2];
        if len % 2 == 1 {
            s += u64::from(self.bytes[off + len - 1]) << 8;
        }
        s
    }
}

/// xorshift64*: fast, and good enough to pick flows and sizes.
struct Rng(u64);

impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n ≥ 1), by multiply-shift.
    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// Spreads a flow number over a field range so that fields do not move in
/// lockstep.
#[inline]
fn spread(f: u32, salt: u32, n: u32) -> u32 {
    let h = (f ^ salt).wrapping_mul(0x9e37_79b1);
    ((u64::from(h ^ (h >> 15)) * u64::from(n)) >> 32) as u32
}

struct Stream {
    spec: StreamSpec,
    /// Ethernet + IPv4 + L4 header with every varying field zero.
    template: Vec<u8>,
    l3: usize,
    l4: usize,
    /// Sum of the template's IPv4 header words (varying fields zero).
    ip_sum: u64,
    rng: Rng,
    sent: u64,
    start: Option<u64>,
    hz: f64,
}

impl Stream {
    fn new(spec: StreamSpec) -> Stream {
        let mut t = Vec::with_capacity(64);
        t.extend_from_slice(&spec.dst_mac.0);
        t.extend_from_slice(&spec.src_mac.0);
        if let Some(vid) = spec.vlan {
            t.extend_from_slice(&EtherType::VLAN.0.to_be_bytes());
            t.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        }
        t.extend_from_slice(&EtherType::IPV4.0.to_be_bytes());
        let l3 = t.len();
        // version/IHL, DSCP, total length (0), id (0), flags DF, TTL,
        // protocol, checksum (0), addresses (0).
        t.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, spec.ttl, spec.l4.protocol().0]);
        t.extend_from_slice(&[0; 10]);
        let l4 = t.len();
        match spec.l4 {
            L4::Udp => t.extend_from_slice(&[0; 8]),
            L4::Icmp => t.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0]),
            // data offset 5, flags ACK|PSH, window 64 KiB - 1.
            L4::Tcp => t.extend_from_slice(&[
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
            ]),
        }
        let ip_sum = checksum::sum(&t[l3..l4]);
        Stream {
            rng: Rng(spec.seed | 1),
            spec,
            template: t,
            l3,
            l4,
            ip_sum,
            sent: 0,
            start: None,
            hz: 0.0,
        }
    }

    fn done(&self) -> bool {
        self.spec.count.is_some_and(|c| self.sent >= c)
    }

    /// How many packets may go now, at most `max`.
    fn quota(&mut self, max: usize) -> usize {
        let mut n = max as u64;
        if let Some(c) = self.spec.count {
            n = n.min(c.saturating_sub(self.sent));
        }
        if let Some(pps) = self.spec.rate_pps {
            let now = cycles();
            let start = *self.start.get_or_insert_with(|| {
                self.hz = hz();
                now
            });
            // Saturating: a TSC that reads behind `start` (another core's)
            // means no time has passed, not 2^64 cycles.
            let elapsed = now.saturating_sub(start) as f64 / self.hz;
            let due = ((elapsed * pps) as u64).saturating_add(1);
            n = n.min(due.saturating_sub(self.sent));
        }
        n as usize
    }

    fn frame_len(&mut self) -> usize {
        match self.spec.size {
            PacketSize::Fixed(n) => n as usize,
            PacketSize::Range(a, b) => (a as u32 + self.rng.below(u32::from(b - a) + 1)) as usize,
            PacketSize::Imix => {
                IMIX[IMIX_PATTERN[(self.sent % IMIX_PATTERN.len() as u64) as usize] as usize]
                    as usize
            }
        }
    }

    /// Writes one frame into `room`; returns its length.
    #[inline]
    fn write(&mut self, room: &mut [u8], payload: &Payload) -> usize {
        let len = self.frame_len();
        let s = &self.spec;
        let (l3, l4) = (self.l3, self.l4);
        let hl = self.template.len();
        let flow = self.rng.below(s.flows);
        let src = u32::from(s.src_ip.first).wrapping_add(spread(flow, 0x5a5a, s.src_ip.count));
        let dst = u32::from(s.dst_ip.first).wrapping_add(spread(flow, 0xa5a5, s.dst_ip.count));
        let sport = (u32::from(s.src_port.first) + spread(flow, 0x1234, s.src_port.count)) as u16;
        let dport = (u32::from(s.dst_port.first) + spread(flow, 0x4321, s.dst_port.count)) as u16;
        let ip_len = (len - l3) as u16;
        let l4_len = (len - l4) as u16;
        let id = self.sent as u16;
        let seq = self.sent as u32;

        let (h, rest) = room.split_at_mut(hl);
        h.copy_from_slice(&self.template);
        // Payload: a slice of the pool from an even offset that moves on
        // with every packet.
        let pay_len = len - hl;
        let off = ((self.sent as usize).wrapping_mul(2 * 37)) % (POOL / 2);
        rest[..pay_len].copy_from_slice(&payload.bytes[off..off + pay_len]);

        h[l3 + 2..l3 + 4].copy_from_slice(&ip_len.to_be_bytes());
        h[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
        h[l3 + 12..l3 + 16].copy_from_slice(&src.to_be_bytes());
        h[l3 + 16..l3 + 20].copy_from_slice(&dst.to_be_bytes());
        let addr_sum = u64::from(src >> 16)
            + u64::from(src & 0xffff)
            + u64::from(dst >> 16)
            + u64::from(dst & 0xffff);
        let ip_csum = checksum::finish(self.ip_sum + u64::from(ip_len) + u64::from(id) + addr_sum);
        h[l3 + 10..l3 + 12].copy_from_slice(&ip_csum.to_be_bytes());

        let u = &mut h[l4..];
        let pay_sum = payload.sum(off, pay_len);
        match s.l4 {
            L4::Udp => {
                u[0..2].copy_from_slice(&sport.to_be_bytes());
                u[2..4].copy_from_slice(&dport.to_be_bytes());
                u[4..6].copy_from_slice(&l4_len.to_be_bytes());
                let sum = addr_sum
                    + u64::from(IpProtocol::UDP.0)
                    + 2 * u64::from(l4_len)
                    + u64::from(sport)
                    + u64::from(dport)
                    + pay_sum;
                let c = checksum::finish(sum);
                let c = if c == 0 { 0xffff } else { c };
                u[6..8].copy_from_slice(&c.to_be_bytes());
            }
            L4::Tcp => {
                u[0..2].copy_from_slice(&sport.to_be_bytes());
                u[2..4].copy_from_slice(&dport.to_be_bytes());
                u[4..8].copy_from_slice(&seq.to_be_bytes());
                let sum = addr_sum
                    + u64::from(IpProtocol::TCP.0)
                    + u64::from(l4_len)
                    + checksum::sum(&u[..20])
                    + pay_sum;
                u[16..18].copy_from_slice(&checksum::finish(sum).to_be_bytes());
            }
            L4::Icmp => {
                u[4..6].copy_from_slice(&(flow as u16).to_be_bytes());
                u[6..8].copy_from_slice(&id.to_be_bytes());
                let sum = checksum::sum(&u[..8]) + pay_sum;
                u[2..4].copy_from_slice(&checksum::finish(sum).to_be_bytes());
            }
        }
        self.sent += 1;
        len
    }
}

/// The generator driver: one worker's share of the streams.
pub struct PacketGenerator {
    streams: Vec<Stream>,
    payload: Payload,
    turn: usize,
    /// Times a burst found the pool empty (the packets come later).
    pub alloc_failures: u64,
}

impl PacketGenerator {
    /// A generator for `streams` (each validated by the caller).
    pub fn new(streams: Vec<StreamSpec>) -> PacketGenerator {
        let seed = streams.first().map(|s| s.seed).unwrap_or(1);
        PacketGenerator {
            streams: streams.into_iter().map(Stream::new).collect(),
            payload: Payload::new(seed ^ 0xfeed),
            turn: 0,
            alloc_failures: 0,
        }
    }

    /// Packets generated so far, all streams.
    pub fn sent(&self) -> u64 {
        self.streams.iter().map(|s| s.sent).sum()
    }
}

impl Driver for PacketGenerator {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> InputState {
        let n_streams = self.streams.len();
        for k in 0..n_streams {
            let i = (self.turn + k) % n_streams;
            let stream = &mut self.streams[i];
            if stream.done() {
                continue;
            }
            let want = stream.quota(max);
            if want == 0 {
                continue;
            }
            let first = out.len();
            let got = buffers.alloc_bulk(want, out);
            if got < want {
                self.alloc_failures += 1;
            }
            for pkt in &mut out[first..] {
                let len = stream.write(pkt.room_mut(), &self.payload);
                // len ≤ MAX_FRAME fits a fresh buffer (checked in validate).
                let _ = pkt.set_len(len);
            }
            self.turn = i + 1;
            return InputState::Busy(got);
        }
        if self.streams.iter().all(Stream::done) {
            InputState::Done
        } else {
            InputState::Idle
        }
    }
}
