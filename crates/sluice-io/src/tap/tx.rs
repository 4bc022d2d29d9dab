//! The transmit half: wire frames to the host, one gathering write each.

use std::io::IoSlice;
use std::os::fd::AsFd;
use std::sync::Arc;

use sluice_buf::{BufCache, DATA_SIZE, Packet};
use sluice_graph::Frame;

use super::{LinkWatch, Tap, VNET_HDR_LEN};
use crate::Driver;
use crate::offload::VnetHdr;
use crate::sys::writev_nonblocking;

/// Most segments one write gathers: a 64 KiB frame in 2 KiB buffers, and
/// the header. No TAP takes a longer frame.
const MAX_IOV: usize = 1 + 65536 / DATA_SIZE + 1;

/// Frames from Sluice to the TAP's host (`<name>-output`).
#[derive(Debug)]
pub struct TapTx {
    tap: Arc<Tap>,
    watch: LinkWatch,
    /// The header before every frame: no offload asked, since Sluice's
    /// frames carry complete checksums.
    hdr: [u8; VNET_HDR_LEN],
}

/// How one write went.
enum Sent {
    Yes,
    /// This packet was refused (too long, malformed); the next may pass.
    Refused,
    /// The device cannot take more now (queue full, down, gone).
    Stop,
}

impl TapTx {
    pub(super) fn new(tap: Arc<Tap>) -> TapTx {
        let mut hdr = [0u8; VNET_HDR_LEN];
        VnetHdr::NONE.write(&mut hdr);
        TapTx {
            tap,
            watch: LinkWatch::new(),
            hdr,
        }
    }

    /// The device.
    pub fn tap(&self) -> &Tap {
        &self.tap
    }

    fn write(&mut self, pkt: &Packet) -> Sent {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        iov[0] = IoSlice::new(&self.hdr);
        let mut n = 1;
        for seg in pkt.segments() {
            let Some(slot) = iov.get_mut(n) else {
                return Sent::Refused;
            };
            *slot = IoSlice::new(seg);
            n += 1;
        }
        match writev_nonblocking(self.tap.fd.as_fd(), &iov[..n]) {
            Ok(Some(_)) => Sent::Yes,
            Ok(None) => Sent::Stop,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EMSGSIZE)) => {
                Sent::Refused
            }
            Err(e) => {
                self.watch.fault(&self.tap, &e);
                Sent::Stop
            }
        }
    }
}

impl Driver for TapTx {
    fn tx_burst(&mut self, buffers: &mut BufCache, packets: &mut Frame) -> usize {
        if packets.is_empty() {
            return 0;
        }
        if !self.watch.usable(&self.tap) {
            let n = packets.len();
            buffers.free_all(packets);
            return n;
        }
        let mut failed = 0;
        let mut stopped = false;
        for pkt in packets.drain(..) {
            if !stopped {
                match self.write(&pkt) {
                    Sent::Yes => {}
                    Sent::Refused => failed += 1,
                    Sent::Stop => {
                        stopped = true;
                        failed += 1;
                    }
                }
            } else {
                failed += 1;
            }
            buffers.free(pkt);
        }
        failed
    }
}
