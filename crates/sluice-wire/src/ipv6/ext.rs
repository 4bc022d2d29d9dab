//! The IPv6 extension-header walk: Hop-by-Hop, Routing, Fragment,
//! Destination Options and AH, up to the upper-layer protocol.

use super::MAX_EXT_HEADERS;
use crate::{Error, IpProtocol, read_u16, read_u32};

/// Byte offsets inside extension headers.
mod field {
    /// Next header, in every extension header.
    pub const EXT_NEXT: usize = 0;
    /// Length byte, in every extension header except Fragment.
    pub const EXT_LEN: usize = 1;
    /// Fragment header: offset (13 bits), reserved (2), M flag (1).
    pub const FRAG_OFF_FLAGS: usize = 2;
    /// Fragment header: identification.
    pub const FRAG_IDENT: usize = 4;
    /// Fragment header: fixed length.
    pub const FRAG_LEN: usize = 8;
}

/// Result of [`super::Ipv6Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The first protocol that is not a walked extension header (TCP, UDP,
    /// ICMPv6, ESP, NONE, ...).
    pub protocol: IpProtocol,
    /// Its offset from the start of the IPv6 header.
    pub offset: usize,
    /// How many extension headers were stepped over.
    pub ext_count: u8,
    /// The Fragment header, if one was seen. For a non-first fragment
    /// (`offset != 0`) the walk stops right after it and the bytes at
    /// [`UpperLayer::offset`] are fragment data, not a `protocol` header.
    pub fragment: Option<Ipv6Fragment>,
}

/// The fields of an IPv6 Fragment extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More Fragments flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// One extension header found by [`ExtHeaders`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<'a> {
    /// Which extension header this is (HOPOPTS, ROUTING, FRAGMENT, DSTOPTS, AH).
    pub kind: IpProtocol,
    /// Its offset from the start of the IPv6 header.
    pub offset: usize,
    /// The whole header, next-header and length bytes included.
    pub data: &'a [u8],
}

impl ExtHeader<'_> {
    /// The header that follows this one.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.data[field::EXT_NEXT])
    }

    /// Parsed Fragment header fields, if this is one.
    #[inline]
    pub fn fragment(&self) -> Option<Ipv6Fragment> {
        if self.kind != IpProtocol::FRAGMENT || self.data.len() < field::FRAG_LEN {
            return None;
        }
        let w = read_u16(self.data, field::FRAG_OFF_FLAGS);
        Some(Ipv6Fragment {
            offset: w & 0xfff8,
            more: w & 0x0001 != 0,
            ident: read_u32(self.data, field::FRAG_IDENT),
        })
    }
}

/// Iterator over the extension headers of an IPv6 packet, in order.
///
/// Yields `Ok(ExtHeader)` per header, or one `Err` and then stops. Once it
/// returns `None`, [`ExtHeaders::protocol`] and [`ExtHeaders::offset`] give the
/// upper-layer protocol and its offset. The walk is confined to the
/// `payload_len` region and to [`MAX_EXT_HEADERS`] headers.
#[derive(Debug, Clone)]
pub struct ExtHeaders<'a> {
    data: &'a [u8],
    next: IpProtocol,
    offset: usize,
    count: usize,
    state: WalkState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WalkState {
    Walking,
    Done,
    Failed(Error),
}

impl<'a> ExtHeaders<'a> {
    /// `data` is the packet from its IPv6 header up to the end of its payload.
    pub(super) fn new(data: &'a [u8], next: IpProtocol, offset: usize) -> Self {
        ExtHeaders {
            data,
            next,
            offset,
            count: 0,
            state: WalkState::Walking,
        }
    }

    pub(super) fn failed(e: Error) -> Self {
        ExtHeaders {
            data: &[],
            next: IpProtocol::NONE,
            offset: 0,
            count: 0,
            state: WalkState::Failed(e),
        }
    }

    /// The protocol of the header at [`ExtHeaders::offset`]: once the
    /// iterator is exhausted without error, the upper-layer protocol.
    #[inline]
    pub fn protocol(&self) -> IpProtocol {
        self.next
    }

    /// Offset (from the IPv6 header) of the header not yet walked.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn step(&mut self) -> Result<Option<ExtHeader<'a>>, Error> {
        let kind = self.next;
        if !kind.is_ipv6_extension() {
            return Ok(None);
        }
        if kind == IpProtocol::HOPOPTS && self.count != 0 {
            return Err(Error::BadExtensionHeader);
        }
        if self.count == MAX_EXT_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        let at = self.offset;
        let rest = self.data.get(at..).ok_or(Error::Truncated)?;
        if rest.len() < 2 {
            return Err(Error::Truncated);
        }
        let len_field = usize::from(rest[field::EXT_LEN]);
        let len = match kind {
            IpProtocol::FRAGMENT => field::FRAG_LEN,
            IpProtocol::AH => (len_field + 2) * 4,
            _ => (len_field + 1) * 8,
        };
        let data = rest.get(..len).ok_or(Error::Truncated)?;
        let h = ExtHeader {
            kind,
            offset: at,
            data,
        };
        self.next = h.next_header();
        self.offset = at + len;
        self.count += 1;
        // Past a non-first fragment there are no headers, only fragment data.
        if h.fragment().is_some_and(|f| f.offset != 0) {
            self.state = WalkState::Done;
        }
        Ok(Some(h))
    }
}

impl<'a> Iterator for ExtHeaders<'a> {
    type Item = Result<ExtHeader<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.state {
            WalkState::Walking => {}
            WalkState::Done => return None,
            WalkState::Failed(e) => {
                self.state = WalkState::Done;
                return Some(Err(e));
            }
        }
        match self.step() {
            Ok(Some(h)) => Some(Ok(h)),
            Ok(None) => {
                self.state = WalkState::Done;
                None
            }
            Err(e) => {
                self.state = WalkState::Done;
                Some(Err(e))
            }
        }
    }
}
