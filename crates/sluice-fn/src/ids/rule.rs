//! An intrusion detection rule as the engine holds it: where it applies
//! (protocol, ports) and the byte patterns the payload must contain.

/// The protocol a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP segments' payload.
    Tcp,
    /// UDP datagrams' payload.
    Udp,
    /// ICMP and ICMPv6 messages, after the 8-byte header.
    Icmp,
    /// Any IP packet: the payload after whatever L4 header it has.
    Ip,
}

impl Proto {
    /// The rule-file word.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Ip => "ip",
        }
    }
}

/// A rule's port: any, or one of a few listed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Ports {
    /// Any port (and protocols without ports).
    #[default]
    Any,
    /// One of these ports (sorted, no duplicates, never empty).
    List(Vec<u16>),
}

impl Ports {
    /// Whether `port` is one of these.
    pub fn contains(&self, port: u16) -> bool {
        match self {
            Ports::Any => true,
            Ports::List(l) => l.binary_search(&port).is_ok(),
        }
    }
}

/// One `content`: a byte string the payload must contain, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The bytes (after `|hex|` decoding); never empty.
    pub bytes: Vec<u8>,
    /// ASCII letters match either case.
    pub nocase: bool,
    /// The match starts at or after this payload offset.
    pub offset: u16,
    /// The match lies within this many bytes from `offset` (at least the
    /// pattern's length); `None`: anywhere after `offset`.
    pub depth: Option<u16>,
}

impl Content {
    /// A pattern to find anywhere, case-sensitive.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Content {
        Content {
            bytes: bytes.into(),
            nocase: false,
            offset: 0,
            depth: None,
        }
    }

    /// Whether an occurrence starting at `start` lies where the content
    /// allows.
    #[inline]
    pub fn placed(&self, start: usize) -> bool {
        let off = usize::from(self.offset);
        start >= off
            && self
                .depth
                .is_none_or(|d| start + self.bytes.len() <= off + usize::from(d))
    }

    /// Whether the bytes at `at` equal the pattern (with case folding
    /// for `nocase`).
    #[inline]
    pub fn equals_at(&self, hay: &[u8], at: usize) -> bool {
        let Some(s) = hay.get(at..at + self.bytes.len()) else {
            return false;
        };
        if self.nocase {
            s.eq_ignore_ascii_case(&self.bytes)
        } else {
            s == self.bytes.as_slice()
        }
    }

    /// Whether `hay` holds the pattern somewhere it is allowed: a plain
    /// scan of the allowed window, for the contents of a rule that are
    /// not its fast pattern (checked only after the automaton hit).
    pub fn found_in(&self, hay: &[u8]) -> bool {
        let n = self.bytes.len();
        let off = usize::from(self.offset);
        let end = match self.depth {
            Some(d) => hay.len().min(off + usize::from(d)),
            None => hay.len(),
        };
        if end < off + n {
            return false;
        }
        (off..=end - n).any(|at| self.equals_at(hay, at))
    }
}

/// An `alert` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Signature id, unique in a rule set.
    pub sid: u32,
    /// Revision (`rev`), 0 when not given.
    pub rev: u32,
    /// The message logged with each alert.
    pub msg: String,
    /// Protocol.
    pub proto: Proto,
    /// Source port.
    pub sport: Ports,
    /// Destination port.
    pub dport: Ports,
    /// Every one must be found (at least one).
    pub contents: Vec<Content>,
}

impl Rule {
    /// The content the automaton looks for: the longest (the rarest, as a
    /// rule of thumb, and the fewest false starts), the first of equals.
    pub fn fast_pattern(&self) -> usize {
        let mut best = 0;
        for (i, c) in self.contents.iter().enumerate() {
            if c.bytes.len() > self.contents[best].bytes.len() {
                best = i;
            }
        }
        best
    }
}
