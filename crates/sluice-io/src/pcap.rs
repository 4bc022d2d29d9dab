//! pcap capture files: the format, a replaying input driver and a writing
//! output driver.
//!
//! The classic libpcap format (not pcapng): a 24-byte file header, then per
//! packet a 16-byte record header and the bytes. Both byte orders and both
//! microsecond and nanosecond timestamps are read; files are written
//! little-endian with microsecond timestamps, link type Ethernet, which
//! every version of Wireshark and tshark opens.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use sluice_buf::BufCache;
use sluice_graph::{Frame, InputState};

use crate::Driver;

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;
/// Link type of Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Largest record accepted when reading; larger is a corrupt file.
pub const MAX_RECORD: u32 = 256 * 1024;

/// Errors reading or writing capture files.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Not a pcap file (pcapng is not supported).
    #[error("{0}: not a pcap file (bad magic {1:#010x}; pcapng is not supported)")]
    BadMagic(PathBuf, u32),
    /// A link type other than Ethernet.
    #[error("{0}: link type {1} is not Ethernet (1)")]
    LinkType(PathBuf, u32),
    /// A record header that cannot be right.
    #[error("{0}: record {1} is corrupt (length {2})")]
    BadRecord(PathBuf, u64, u32),
    /// The file ends inside a record.
    #[error("{0}: truncated inside record {1}")]
    Truncated(PathBuf, u64),
}

/// One packet read from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Seconds since the epoch.
    pub seconds: u32,
    /// Nanoseconds within the second.
    pub nanos: u32,
    /// Length on the wire (may exceed `data.len()` if the capture was cut).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// Reads records from a pcap file.
pub struct PcapReader<R: Read> {
    input: R,
    path: PathBuf,
    swapped: bool,
    nanos: bool,
    count: u64,
}

impl PcapReader<BufReader<File>> {
    /// Opens `path` and checks its header.
    pub fn open(path: &Path) -> Result<Self, PcapError> {
        let f = File::open(path).map_err(|source| PcapError::Io {
            path: path.into(),
            source,
        })?;
        PcapReader::new(BufReader::with_capacity(1 << 16, f), path)
    }
}

impl<R: Read> PcapReader<R> {
    /// Reads the file header from `input`; `path` is for messages.
    pub fn new(mut input: R, path: &Path) -> Result<Self, PcapError> {
        let mut h = [0u8; 24];
        input.read_exact(&mut h).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => PcapError::BadMagic(path.into(), 0),
            _ => PcapError::Io {
                path: path.into(),
                source: e,
            },
        })?;
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (swapped, nanos) = match magic {
            MAGIC_US => (false, false),
            MAGIC_NS => (false, true),
            m if m.swap_bytes() == MAGIC_US => (true, false),
            m if m.swap_bytes() == MAGIC_NS => (true, true),
            m => return Err(PcapError::BadMagic(path.into(), m)),
        };
        let r = PcapReader {
            input,
            path: path.into(),
            swapped,
            nanos,
            count: 0,
        };
        let link = r.u32(&h[20..24]);
        if link != LINKTYPE_ETHERNET {
            return Err(PcapError::LinkType(path.into(), link));
        }
        Ok(r)
    }

    fn u32(&self, b: &[u8]) -> u32 {
        let v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if self.swapped { v.swap_bytes() } else { v }
    }

    /// The next record, `Ok(None)` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, PcapError> {
        let mut h = [0u8; 16];
        match read_full(&mut self.input, &mut h) {
            Ok(0) => return Ok(None),
            Ok(16) => {}
            Ok(_) => return Err(PcapError::Truncated(self.path.clone(), self.count)),
            Err(source) => {
                return Err(PcapError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        let seconds = self.u32(&h[0..4]);
        let frac = self.u32(&h[4..8]);
        let incl = self.u32(&h[8..12]);
        let orig_len = self.u32(&h[12..16]);
        if incl > MAX_RECORD {
            return Err(PcapError::BadRecord(self.path.clone(), self.count, incl));
        }
        let mut data = vec![0u8; incl as usize];
        if read_full(&mut self.input, &mut data).map_err(|source| PcapError::Io {
            path: self.path.clone(),
            source,
        })? != data.len()
        {
            return Err(PcapError::Truncated(self.path.clone(), self.count));
        }
        self.count += 1;
        Ok(Some(Record {
            seconds,
            nanos: if self.nanos {
                frac
            } else {
                frac.saturating_mul(1000)
            },
            orig_len,
            data,
        }))
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes records to a pcap file.
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the file header.
    pub fn create(path: &Path, snaplen: u32) -> Result<Self, PcapError> {
        let f = File::create(path).map_err(|source| PcapError::Io {
            path: path.into(),
            source,
        })?;
        PcapWriter::new(BufWriter::with_capacity(1 << 16, f), snaplen).map_err(|source| {
            PcapError::Io {
                path: path.into(),
                source,
            }
        })
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `out`. Packets are cut at `snaplen` bytes.
    pub fn new(mut out: W, snaplen: u32) -> io::Result<Self> {
        let snaplen = snaplen.clamp(64, MAX_RECORD);
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_US.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&snaplen.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, snaplen })
    }

    /// Writes one packet given as segments (a chained buffer), stamped now.
    pub fn write_segments<'a>(
        &mut self,
        segments: impl Iterator<Item = &'a [u8]> + Clone,
    ) -> io::Result<()> {
        let total: usize = segments.clone().map(<[u8]>::len).sum();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.write_record(now, total, segments)
    }

    /// Writes one packet seen at `now` (since the epoch) that was `total`
    /// bytes long on the wire, of which `segments` hold what was kept.
    pub fn write_record<'a>(
        &mut self,
        now: std::time::Duration,
        total: usize,
        segments: impl Iterator<Item = &'a [u8]>,
    ) -> io::Result<()> {
        let incl = total.min(self.snaplen as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(now.as_secs() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&now.subsec_micros().to_le_bytes());
        h[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(total as u32).to_le_bytes());
        self.out.write_all(&h)?;
        let mut left = incl;
        for seg in segments {
            let k = seg.len().min(left);
            self.out.write_all(&seg[..k])?;
            left -= k;
            if left == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Writes one packet held in one slice.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_segments(std::iter::once(data))
    }

    /// Flushes buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Input driver: replays a capture, once or `repeat` times, then is done.
pub struct PcapReplay {
    packets: Arc<Vec<Vec<u8>>>,
    next: usize,
    rounds_left: u64,
    /// Frames that did not fit in buffers (pool exhausted), counted.
    pub alloc_failures: u64,
}

impl PcapReplay {
    /// Loads every record of `path` (so replay does not wait on the disk).
    pub fn load(path: &Path) -> Result<Arc<Vec<Vec<u8>>>, PcapError> {
        let mut r = PcapReader::open(path)?;
        let mut v = Vec::new();
        while let Some(rec) = r.next_record()? {
            v.push(rec.data);
        }
        Ok(Arc::new(v))
    }

    /// Replays `packets` `repeat` times (at least once).
    pub fn new(packets: Arc<Vec<Vec<u8>>>, repeat: u64) -> PcapReplay {
        PcapReplay {
            packets,
            next: 0,
            rounds_left: repeat.max(1),
            alloc_failures: 0,
        }
    }
}

impl Driver for PcapReplay {
    fn rx_burst(&mut self, buffers: &mut BufCache, out: &mut Frame, max: usize) -> InputState {
        let mut n = 0;
        while n < max && self.rounds_left > 0 {
            let Some(bytes) = self.packets.get(self.next) else {
                self.rounds_left -= 1;
                self.next = 0;
                if self.packets.is_empty() {
                    self.rounds_left = 0;
                }
                continue;
            };
            match buffers.alloc_from(bytes) {
                Ok(p) => {
                    out.push(p);
                    self.next += 1;
                    n += 1;
                }
                // Pool empty: try again next poll, the packets in flight
                // will come back.
                Err(_) => {
                    self.alloc_failures += 1;
                    break;
                }
            }
        }
        if self.rounds_left == 0 {
            InputState::Done
        } else if n > 0 {
            InputState::Busy(n)
        } else {
            InputState::Idle
        }
    }
}

/// Output driver: writes every transmitted packet to a capture file shared
/// by every worker (one lock per vector, not per packet).
pub struct PcapCapture {
    writer: Arc<Mutex<PcapWriter<BufWriter<File>>>>,
}

impl PcapCapture {
    /// Creates `path`, truncating it.
    pub fn create(path: &Path) -> Result<Arc<Mutex<PcapWriter<BufWriter<File>>>>, PcapError> {
        Ok(Arc::new(Mutex::new(PcapWriter::create(path, MAX_RECORD)?)))
    }

    /// A driver writing to `writer`.
    pub fn new(writer: Arc<Mutex<PcapWriter<BufWriter<File>>>>) -> PcapCapture {
        PcapCapture { writer }
    }
}

impl Driver for PcapCapture {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        let mut failed = 0;
        {
            let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            for p in packets.iter() {
                if w.write_segments(p.segments()).is_err() {
                    failed += 1;
                }
            }
        }
        buffers.free_all(packets);
        failed
    }

    fn flush(&mut self) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = w.flush();
    }
}
