//! The error type shared by every header view.

use core::fmt;

/// Why a buffer was rejected by a `new_checked` constructor (or a header walk).
///
/// Each variant names *what* is wrong so that a forwarder can count drops by
/// reason without re-parsing the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer ends before the header (or a length field) says it should.
    Truncated,
    /// The IP version field does not match the view (4 for IPv4, 6 for IPv6).
    BadVersion,
    /// A header-length field is below its minimum (IPv4 IHL < 5, TCP data
    /// offset < 5).
    BadHeaderLength,
    /// A total-length field is smaller than the header it covers (IPv4 total
    /// length < IHL * 4, UDP length < 8).
    BadTotalLength,
    /// A checksum did not verify. Never returned by `new_checked`, which does
    /// not look at checksums; offered for callers that verify and then want a
    /// single error type.
    BadChecksum,
    /// An IPv6 extension header is malformed or misplaced (e.g. Hop-by-Hop
    /// options anywhere but first).
    BadExtensionHeader,
    /// More nested headers than a walk accepts (more than two VLAN tags, more
    /// than [`crate::ipv6::MAX_EXT_HEADERS`] IPv6 extension headers).
    TooManyHeaders,
    /// Well-formed, but not a variant this view handles (e.g. ARP for a
    /// hardware type other than Ethernet or a protocol other than IPv4).
    Unsupported,
    /// Any other structural inconsistency.
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Truncated => "buffer truncated",
            Error::BadVersion => "bad IP version",
            Error::BadHeaderLength => "bad header length",
            Error::BadTotalLength => "bad total length",
            Error::BadChecksum => "bad checksum",
            Error::BadExtensionHeader => "bad IPv6 extension header",
            Error::TooManyHeaders => "too many nested headers",
            Error::Unsupported => "unsupported header variant",
            Error::Malformed => "malformed header",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lowercase_and_distinct() {
        let all = [
            Error::Truncated,
            Error::BadVersion,
            Error::BadHeaderLength,
            Error::BadTotalLength,
            Error::BadChecksum,
            Error::BadExtensionHeader,
            Error::TooManyHeaders,
            Error::Unsupported,
            Error::Malformed,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.to_string(), b.to_string());
            }
        }
        let e: Box<dyn std::error::Error> = Box::new(Error::Truncated);
        assert_eq!(e.to_string(), "buffer truncated");
    }
}
