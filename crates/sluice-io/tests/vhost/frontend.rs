//! A scripted vhost-user front end for the tests: it makes a guest's
//! memory in a memfd, lays out split rings in it the way a virtio driver
//! does, speaks the protocol one message at a time, and can break any
//! rule on purpose.

#![allow(dead_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sluice_io::sys::unix::{self, UnixAddr};
use sluice_io::sys::vhost::{GuestRegion, VirtqDesc, VirtqUsedElem};
use sluice_io::sys::wait_readable;
use sluice_io::vhost::proto::{
    self, HDR_SIZE, Header, MemRegion, Request, VringAddr, VringState, features,
};

/// Guest memory: 4 MiB at guest-physical 0, which the front end's
/// process sees at `USER`.
pub const GUEST_SIZE: u64 = 4 << 20;
/// Where the front end "has" the guest's memory.
pub const USER: u64 = 0x7f00_0000_0000;
/// Entries per ring.
pub const RING: u16 = 256;
/// Where buffers start: ring `r`'s slot `s` has the 4 KiB page
/// `BUFFERS + (r * RING + s) * 4096`.
pub const BUFFERS: u64 = 0x10_0000;
/// Indirect tables and other scratch.
pub const SCRATCH: u64 = 0x8_0000;

/// Where ring `r`'s parts lie (guest-physical).
pub fn desc_table(r: usize) -> u64 {
    r as u64 * 0x8000
}
pub fn avail_ring(r: usize) -> u64 {
    desc_table(r) + 0x1000
}
pub fn used_ring(r: usize) -> u64 {
    desc_table(r) + 0x2000
}
pub fn buffer(r: usize, s: u16) -> u64 {
    BUFFERS + (r as u64 * RING as u64 + s as u64) * 4096
}

/// What the front end negotiates.
pub const FEATURES: u64 = features::VERSION_1
    | features::NET_MRG_RXBUF
    | features::RING_INDIRECT_DESC
    | features::PROTOCOL_FEATURES;

pub struct Frontend {
    pub sock: OwnedFd,
    pub memfd: OwnedFd,
    pub mem: GuestRegion,
    pub kicks: Vec<OwnedFd>,
    pub calls: Vec<OwnedFd>,
    /// Next available index per ring (what the driver has published).
    pub avail: Vec<u16>,
    /// Used entries consumed per ring.
    pub used_seen: Vec<u16>,
}

impl Frontend {
    /// Connects to `path`, with a guest memory memfd named `name`.
    pub fn connect(path: &Path, name: &str) -> Frontend {
        let sock = unix::stream().unwrap();
        unix::connect_unix(sock.as_fd(), UnixAddr::Path(path)).unwrap();
        let memfd = unix::sealed_memfd(name, GUEST_SIZE).unwrap();
        let mem = GuestRegion::peer(memfd.as_fd(), GUEST_SIZE as usize).unwrap();
        Frontend {
            sock,
            memfd,
            mem,
            kicks: Vec::new(),
            calls: Vec::new(),
            avail: vec![0; 2],
            used_seen: vec![0; 2],
        }
    }

    /// Sends raw bytes with descriptors; false if the socket is closed.
    pub fn send_raw(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> bool {
        unix::send_with_fds(self.sock.as_fd(), bytes, fds).is_ok_and(|n| n == bytes.len())
    }

    pub fn send(&self, r: &Request, fds: &[BorrowedFd<'_>]) -> bool {
        self.send_raw(&r.encode(proto::VERSION), fds)
    }

    /// Reads one reply (header and payload), waiting up to a second.
    pub fn reply(&self) -> Option<(Header, Vec<u8>)> {
        let mut buf = vec![0u8; HDR_SIZE];
        self.read_exact(&mut buf)?;
        let h = Header::decode(buf[..HDR_SIZE].try_into().unwrap());
        let mut p = vec![0u8; h.size as usize];
        self.read_exact(&mut p)?;
        Some((h, p))
    }

    fn read_exact(&self, buf: &mut [u8]) -> Option<()> {
        let mut have = 0;
        let end = Instant::now() + Duration::from_secs(2);
        while have < buf.len() {
            if Instant::now() > end {
                return None;
            }
            let _ = wait_readable(
                &[std::os::fd::AsRawFd::as_raw_fd(&self.sock)],
                Duration::from_millis(20),
            );
            match unix::recv_with_fds(self.sock.as_fd(), &mut buf[have..]) {
                Ok(Some(g)) if g.len == 0 => return None,
                Ok(Some(g)) => have += g.len,
                Ok(None) => {}
                Err(_) => return None,
            }
        }
        Some(())
    }

    /// Whether Sluice closed the socket (within two seconds).
    pub fn closed(&self) -> bool {
        let end = Instant::now() + Duration::from_secs(2);
        let mut b = [0u8; 64];
        while Instant::now() < end {
            let _ = wait_readable(
                &[std::os::fd::AsRawFd::as_raw_fd(&self.sock)],
                Duration::from_millis(20),
            );
            match unix::recv_with_fds(self.sock.as_fd(), &mut b) {
                Ok(Some(g)) if g.len == 0 => return true,
                Err(_) => return true,
                _ => {}
            }
        }
        false
    }

    pub fn u64_reply(&self, r: Request) -> u64 {
        assert!(self.send(&r, &[]));
        let (h, p) = self.reply().expect("a reply");
        assert_eq!(h.request, r.code());
        assert_eq!(h.flags & proto::FLAG_REPLY, proto::FLAG_REPLY);
        u64::from_ne_bytes(p.try_into().expect("8 bytes"))
    }

    pub fn table(&self) -> Request {
        Request::SetMemTable(vec![MemRegion {
            guest_phys_addr: 0,
            size: GUEST_SIZE,
            user_addr: USER,
            mmap_offset: 0,
        }])
    }

    pub fn addr(r: usize) -> VringAddr {
        VringAddr {
            index: r as u32,
            flags: 0,
            desc: USER + desc_table(r),
            used: USER + used_ring(r),
            avail: USER + avail_ring(r),
            log: 0,
        }
    }

    /// Negotiates and sets up memory (no rings yet).
    pub fn negotiate(&mut self, features: u64) {
        let offered = self.u64_reply(Request::GetFeatures);
        assert_eq!(offered & features, features, "offered {offered:#x}");
        assert!(self.send(&Request::SetFeatures(features), &[]));
        let pf = self.u64_reply(Request::GetProtocolFeatures);
        assert!(self.send(&Request::SetProtocolFeatures(pf & proto::protocol::MQ), &[]));
        assert_eq!(self.u64_reply(Request::GetQueueNum), 1);
        assert!(self.send(&Request::SetOwner, &[]));
        let t = self.table();
        assert!(self.send(&t, &[self.memfd.as_fd()]));
    }

    /// Sets up ring `r` and starts it (kick, call, enable).
    pub fn start_ring(&mut self, r: usize) {
        let i = r as u32;
        assert!(self.send(
            &Request::SetVringNum(VringState {
                index: i,
                num: RING as u32
            }),
            &[]
        ));
        assert!(self.send(&Request::SetVringBase(VringState { index: i, num: 0 }), &[]));
        assert!(self.send(&Request::SetVringAddr(Self::addr(r)), &[]));
        let kick = unix::eventfd().unwrap();
        let call = unix::eventfd().unwrap();
        assert!(self.send(&Request::SetVringKick(r as u64), &[kick.as_fd()]));
        assert!(self.send(&Request::SetVringCall(r as u64), &[call.as_fd()]));
        assert!(self.send(
            &Request::SetVringEnable(VringState { index: i, num: 1 }),
            &[]
        ));
        self.kicks.push(kick);
        self.calls.push(call);
    }

    /// The whole handshake: both rings of queue pair 0 running.
    pub fn handshake(&mut self) {
        self.negotiate(FEATURES);
        self.start_ring(0);
        self.start_ring(1);
    }

    pub fn write(&self, gpa: u64, bytes: &[u8]) {
        assert!(self.mem.copy_in(gpa as usize, bytes));
    }

    pub fn read(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        assert!(self.mem.copy_out(gpa as usize, &mut v));
        v
    }

    pub fn set_desc(&self, table: u64, i: u16, d: VirtqDesc) {
        assert!(self.mem.write(table as usize + 16 * i as usize, d));
    }

    /// Publishes head `head` in ring `r`'s available ring.
    pub fn post(&mut self, r: usize, head: u16) {
        let a = avail_ring(r) as usize;
        let slot = self.avail[r];
        assert!(self.mem.write(a + 4 + 2 * (slot % RING) as usize, head));
        self.avail[r] = slot.wrapping_add(1);
        self.mem
            .u16_at(a + 2)
            .unwrap()
            .store(self.avail[r], Ordering::Release);
    }

    /// Sets ring `r`'s `avail.idx` to anything.
    pub fn set_avail_idx(&mut self, r: usize, idx: u16) {
        self.avail[r] = idx;
        self.mem
            .u16_at(avail_ring(r) as usize + 2)
            .unwrap()
            .store(idx, Ordering::Release);
    }

    pub fn used_idx(&self, r: usize) -> u16 {
        self.mem
            .u16_at(used_ring(r) as usize + 2)
            .unwrap()
            .load(Ordering::Acquire)
    }

    /// The used entries published since the last call.
    pub fn take_used(&mut self, r: usize) -> Vec<VirtqUsedElem> {
        let idx = self.used_idx(r);
        let mut v = Vec::new();
        while self.used_seen[r] != idx {
            let s = self.used_seen[r] % RING;
            v.push(
                self.mem
                    .read(used_ring(r) as usize + 4 + 8 * s as usize)
                    .unwrap(),
            );
            self.used_seen[r] = self.used_seen[r].wrapping_add(1);
        }
        v
    }

    /// Transmits `frame` (on ring 1) in one descriptor at slot `slot`:
    /// a zero virtio-net header then the frame.
    pub fn transmit(&mut self, slot: u16, frame: &[u8]) {
        let b = buffer(1, slot);
        self.write(b, &[0u8; 12]);
        self.write(b + 12, frame);
        self.set_desc(
            desc_table(1),
            slot,
            VirtqDesc {
                addr: b,
                len: 12 + frame.len() as u32,
                flags: 0,
                next: 0,
            },
        );
        self.post(1, slot);
    }

    /// Posts receive buffers (ring 0) of `len` bytes at slots `slots`.
    pub fn post_rx(&mut self, slots: std::ops::Range<u16>, len: u32) {
        for s in slots {
            self.set_desc(
                desc_table(0),
                s,
                VirtqDesc {
                    addr: buffer(0, s),
                    len,
                    flags: 2,
                    next: 0,
                },
            );
            self.post(0, s);
        }
    }
}
