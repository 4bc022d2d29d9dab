//! A scripted memif client for the tests: it builds its region and rings
//! the way DPDK and VPP do, speaks the control protocol one message at a
//! time, and can break any rule on purpose.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use sluice_io::memif::proto::{
    self, ADD_RING_FLAG_C2S, AddRing, DESC_FLAG_NEXT, Init, MSG_SIZE, Message, RING_FLAG_MASK_INT,
    Text, ring as layout,
};
use sluice_io::sys::memif::{MemifDesc, SharedRegion};
use sluice_io::sys::unix::{self, UnixAddr};
use sluice_io::sys::wait_readable;

/// The shape of a client's memory.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub log2: u8,
    pub buffer_size: u32,
    pub c2s: u16,
    pub s2c: u16,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            log2: 8,
            buffer_size: 2048,
            c2s: 1,
            s2c: 1,
        }
    }
}

impl Layout {
    fn rings(&self) -> usize {
        (self.c2s + self.s2c) as usize
    }

    /// Offset of ring `i` (C2S rings first, then S2C).
    pub fn ring_offset(&self, i: usize) -> usize {
        i * layout::bytes(self.log2)
    }

    fn buffers_offset(&self) -> usize {
        self.ring_offset(self.rings())
    }

    /// Offset of buffer `slot` of ring `i`.
    pub fn buffer_offset(&self, i: usize, slot: usize) -> usize {
        self.buffers_offset() + (i * (1 << self.log2) + slot) * self.buffer_size as usize
    }

    pub fn region_size(&self) -> usize {
        self.buffer_offset(self.rings(), 0)
    }

    fn size(&self) -> u16 {
        1 << self.log2
    }
}

/// One side of a ring in the client's own mapping.
pub struct ClientRing<'a> {
    mem: &'a SharedRegion,
    base: usize,
    size: u16,
}

impl ClientRing<'_> {
    fn word(&self, off: usize) -> &AtomicU16 {
        self.mem.u16_at(self.base + off).unwrap()
    }
    pub fn head(&self) -> u16 {
        self.word(layout::HEAD).load(Ordering::Acquire)
    }
    pub fn set_head(&self, v: u16) {
        self.word(layout::HEAD).store(v, Ordering::Release)
    }
    pub fn tail(&self) -> u16 {
        self.word(layout::TAIL).load(Ordering::Acquire)
    }
    pub fn flags(&self) -> u16 {
        self.word(layout::FLAGS).load(Ordering::Acquire)
    }
    pub fn set_flags(&self, v: u16) {
        self.word(layout::FLAGS).store(v, Ordering::Release)
    }
    fn desc_off(&self, slot: u16) -> usize {
        self.base + layout::DESC + (slot & (self.size - 1)) as usize * layout::DESC_SIZE
    }
    pub fn desc(&self, slot: u16) -> MemifDesc {
        self.mem.read(self.desc_off(slot)).unwrap()
    }
    pub fn set_desc(&self, slot: u16, d: MemifDesc) {
        assert!(self.mem.write(self.desc_off(slot), d));
    }
}

/// A connected (or connecting) scripted client.
pub struct Client {
    pub sock: OwnedFd,
    pub layout: Layout,
    pub memfd: Option<OwnedFd>,
    pub mem: Option<SharedRegion>,
    /// One eventfd per ring, C2S first.
    pub eventfds: Vec<OwnedFd>,
    /// Per C2S ring: where the next packet goes. Per S2C ring: the next
    /// slot to read.
    cursors: Vec<u16>,
}

/// How a handshake step went, from the client's side.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    Ack,
    Connected,
    Disconnect(String),
    /// The server closed the socket without a word.
    Closed,
    /// Nothing within the wait.
    Silence,
    Other(Message),
}

impl Client {
    /// Connects to `path`; the server's HELLO must follow.
    pub fn connect(path: &Path) -> Client {
        let sock = unix::seqpacket().unwrap();
        unix::connect_unix(sock.as_fd(), UnixAddr::Path(path)).unwrap();
        let c = Client {
            sock,
            layout: Layout::default(),
            memfd: None,
            mem: None,
            eventfds: Vec::new(),
            cursors: Vec::new(),
        };
        match c.recv(Duration::from_secs(5)) {
            Reply::Other(Message::Hello(h)) => {
                assert_eq!(
                    (h.min_version, h.max_version),
                    (proto::VERSION, proto::VERSION)
                );
            }
            r => panic!("expected HELLO, got {r:?}"),
        }
        c
    }

    /// A client with no socket state beyond `sock` (for a connection
    /// made by hand).
    pub fn bare() -> Client {
        Client {
            sock: unix::seqpacket().unwrap(),
            layout: Layout::default(),
            memfd: None,
            mem: None,
            eventfds: Vec::new(),
            cursors: Vec::new(),
        }
    }

    /// Sends raw bytes with an optional descriptor.
    pub fn send_raw(&self, bytes: &[u8], fd: Option<BorrowedFd<'_>>) {
        unix::send_with_fd(self.sock.as_fd(), bytes, fd).unwrap();
    }

    pub fn send(&self, m: &Message, fd: Option<BorrowedFd<'_>>) {
        self.send_raw(&m.encode(), fd);
    }

    /// The server's next message (or its silence, or its hang-up).
    pub fn recv(&self, wait: Duration) -> Reply {
        let end = Instant::now() + wait;
        let mut buf = [0u8; MSG_SIZE];
        loop {
            match unix::recv_with_fds(self.sock.as_fd(), &mut buf) {
                Ok(Some(r)) if r.len == 0 => return Reply::Closed,
                Ok(Some(r)) => {
                    return match Message::decode(&buf[..r.len]).unwrap() {
                        Message::Ack => Reply::Ack,
                        Message::Connected { .. } => Reply::Connected,
                        Message::Disconnect { reason, .. } => {
                            Reply::Disconnect(reason.to_string_lossy())
                        }
                        m => Reply::Other(m),
                    };
                }
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => return Reply::Closed,
                Err(e) => panic!("recv: {e}"),
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Reply::Silence;
            }
            let _ = wait_readable(&[std::os::fd::AsRawFd::as_raw_fd(&self.sock)], left);
        }
    }

    /// Sends `m` and returns the reply.
    pub fn ask(&self, m: &Message, fd: Option<BorrowedFd<'_>>) -> Reply {
        self.send(m, fd);
        self.recv(Duration::from_secs(5))
    }

    pub fn init(id: u32, secret: &str) -> Message {
        Message::Init(Init {
            version: proto::VERSION,
            id,
            mode: 0,
            secret: Text::new(secret),
            name: Text::new("scripted"),
        })
    }

    /// Creates the region (a sealed memfd named `name`), its rings and
    /// eventfds, laid out as `layout`.
    pub fn build(&mut self, layout: Layout, name: &str) {
        let size = layout.region_size();
        let fd = unix::sealed_memfd(name, size as u64).unwrap();
        let mem = SharedRegion::peer(fd.as_fd(), size).unwrap();
        for i in 0..layout.rings() {
            let base = layout.ring_offset(i);
            mem.u32_at(base + layout::COOKIE)
                .unwrap()
                .store(proto::COOKIE, Ordering::Release);
            for slot in 0..layout.size() {
                let d = MemifDesc {
                    flags: 0,
                    region: 0,
                    length: layout.buffer_size,
                    offset: layout.buffer_offset(i, slot as usize) as u32,
                    metadata: 0,
                };
                assert!(mem.write(base + layout::DESC + slot as usize * layout::DESC_SIZE, d));
            }
            self.eventfds.push(unix::eventfd().unwrap());
        }
        self.layout = layout;
        self.memfd = Some(fd);
        self.mem = Some(mem);
        self.cursors = vec![0; layout.rings()];
    }

    pub fn add_region(&self) -> Reply {
        let size = self.layout.region_size() as u64;
        self.ask(
            &Message::AddRegion { index: 0, size },
            Some(self.memfd.as_ref().unwrap().as_fd()),
        )
    }

    /// `ADD_RING` for ring `i` (C2S first), as announced by the layout.
    pub fn ring_msg(&self, i: usize) -> AddRing {
        let c2s = i < self.layout.c2s as usize;
        AddRing {
            flags: if c2s { ADD_RING_FLAG_C2S } else { 0 },
            index: if c2s {
                i as u16
            } else {
                (i - self.layout.c2s as usize) as u16
            },
            region: 0,
            offset: self.layout.ring_offset(i) as u32,
            log2_ring_size: self.layout.log2,
            private_hdr_size: 0,
        }
    }

    pub fn add_ring(&self, i: usize) -> Reply {
        self.ask(
            &Message::AddRing(self.ring_msg(i)),
            Some(self.eventfds[i].as_fd()),
        )
    }

    pub fn connect_msg() -> Message {
        Message::Connect {
            name: Text::new("scripted0"),
        }
    }

    /// The whole handshake, by the rules. Panics if the server refuses.
    pub fn handshake(&mut self, layout: Layout, name: &str) {
        assert_eq!(self.ask(&Client::init(0, ""), None), Reply::Ack);
        self.build(layout, name);
        assert_eq!(self.add_region(), Reply::Ack);
        for i in 0..layout.rings() {
            assert_eq!(self.add_ring(i), Reply::Ack, "ring {i}");
        }
        assert_eq!(self.ask(&Client::connect_msg(), None), Reply::Connected);
    }

    /// Ring `i` (C2S first).
    pub fn ring(&self, i: usize) -> ClientRing<'_> {
        ClientRing {
            mem: self.mem.as_ref().unwrap(),
            base: self.layout.ring_offset(i),
            size: self.layout.size(),
        }
    }

    pub fn mem(&self) -> &SharedRegion {
        self.mem.as_ref().unwrap()
    }

    /// Queues packets on C2S ring `q`, each in as many buffers as it takes
    /// (chained with NEXT), and publishes them; false when the ring has
    /// no room.
    pub fn send_packets(&mut self, q: usize, packets: &[Vec<u8>]) -> bool {
        let bs = self.layout.buffer_size as usize;
        let need: usize = packets.iter().map(|p| p.len().div_ceil(bs).max(1)).sum();
        let ring = self.ring(q);
        let head = ring.head();
        let free = self.layout.size() - head.wrapping_sub(ring.tail());
        if need > free as usize {
            return false;
        }
        let mut slot = head;
        for p in packets {
            let chunks: Vec<&[u8]> = p.chunks(bs).collect();
            for (k, chunk) in chunks.iter().enumerate() {
                let mut d = ring.desc(slot);
                d.offset = self
                    .layout
                    .buffer_offset(q, (slot & (self.layout.size() - 1)) as usize)
                    as u32;
                d.region = 0;
                assert!(self.mem().copy_in(d.offset as usize, chunk));
                d.length = chunk.len() as u32;
                d.flags = if k + 1 < chunks.len() {
                    DESC_FLAG_NEXT
                } else {
                    0
                };
                ring.set_desc(slot, d);
                slot = slot.wrapping_add(1);
            }
        }
        ring.set_head(slot);
        if ring.flags() & RING_FLAG_MASK_INT == 0 {
            unix::eventfd_kick(self.eventfds[q].as_fd()).unwrap();
        }
        self.cursors[q] = slot;
        true
    }

    /// Posts every free buffer of S2C ring `q` (index among S2C rings).
    pub fn post_buffers(&self, q: usize) {
        let i = self.layout.c2s as usize + q;
        let ring = self.ring(i);
        let head = ring.head();
        let target = self.cursors[i].wrapping_add(self.layout.size());
        let mut slot = head;
        while slot != target {
            let mut d = ring.desc(slot);
            d.region = 0;
            d.offset = self
                .layout
                .buffer_offset(i, (slot & (self.layout.size() - 1)) as usize)
                as u32;
            d.length = self.layout.buffer_size;
            d.flags = 0;
            ring.set_desc(slot, d);
            slot = slot.wrapping_add(1);
        }
        ring.set_head(slot);
    }

    /// Reads what the server wrote on S2C ring `q` (gathering chains).
    pub fn take_packets(&mut self, q: usize) -> Vec<Vec<u8>> {
        let i = self.layout.c2s as usize + q;
        let tail = self.ring(i).tail();
        let mut out = Vec::new();
        let mut cur = Vec::new();
        let mut slot = self.cursors[i];
        while slot != tail {
            let d = self.ring(i).desc(slot);
            let mut buf = vec![0u8; d.length as usize];
            assert!(self.mem().copy_out(d.offset as usize, &mut buf));
            cur.extend_from_slice(&buf);
            if d.flags & DESC_FLAG_NEXT == 0 {
                out.push(std::mem::take(&mut cur));
            }
            slot = slot.wrapping_add(1);
        }
        self.cursors[i] = slot;
        out
    }
}
