//! Reading the front end's messages off a non-blocking stream socket:
//! header, then payload, never past the end of the message being read, so
//! the descriptors that arrive while it is read are that message's (a
//! front end sends a message and its descriptors in one `sendmsg`). A
//! header that is not version 1, says it is a reply, or announces more
//! than any request carries is refused before its payload is read.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use super::backend::Refusal;
use super::proto::{self, HDR_SIZE, Header, MAX_PAYLOAD, MAX_REGIONS};
use crate::sys::unix;

/// A message being read.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    hdr: [u8; HDR_SIZE],
    have: usize,
    header: Option<Header>,
    payload: Vec<u8>,
    payload_have: usize,
    fds: Vec<OwnedFd>,
    /// When the message being read began to arrive.
    pub(crate) since: Option<Instant>,
}

/// A whole message: header, payload, and the descriptors that came with it.
pub(crate) type Whole = (Header, Vec<u8>, Vec<OwnedFd>);

impl Inbox {
    /// Reads what has arrived of the current message; the message when it
    /// is whole.
    pub(crate) fn read(&mut self, fd: &OwnedFd) -> Result<Option<Whole>, Refusal> {
        loop {
            let (buf, header_part) = match self.header {
                None => (&mut self.hdr[self.have..], true),
                Some(h) if self.payload_have < h.size as usize => {
                    (&mut self.payload[self.payload_have..], false)
                }
                Some(h) => {
                    self.header = None;
                    self.have = 0;
                    self.since = None;
                    let payload = std::mem::take(&mut self.payload);
                    return Ok(Some((h, payload, std::mem::take(&mut self.fds))));
                }
            };
            let got = match unix::recv_with_fds(fd.as_fd(), buf) {
                Ok(Some(g)) => g,
                Ok(None) => return Ok(None),
                Err(e) => return Err(Refusal::Io(e.to_string())),
            };
            let n = got.len;
            self.fds.extend(got.fds);
            if got.truncated || self.fds.len() > MAX_REGIONS {
                return Err(Refusal::TooManyFds);
            }
            if n == 0 {
                return Err(Refusal::Hangup);
            }
            self.since.get_or_insert_with(Instant::now);
            if header_part {
                self.have += n;
                if self.have < HDR_SIZE {
                    continue;
                }
                let h = Header::decode(&self.hdr);
                if h.flags & proto::VERSION_MASK != proto::VERSION
                    || h.flags & proto::FLAG_REPLY != 0
                {
                    return Err(Refusal::Flags(h.flags));
                }
                if h.size as usize > MAX_PAYLOAD {
                    return Err(Refusal::TooLarge(h.size));
                }
                self.payload = vec![0; h.size as usize];
                self.payload_have = 0;
                self.header = Some(h);
            } else {
                self.payload_have += n;
            }
        }
    }
}
