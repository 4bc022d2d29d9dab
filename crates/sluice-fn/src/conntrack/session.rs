//! A tracked connection, and the intrusive lists sessions are threaded on.
//!
//! Sessions live in one array fixed at creation and are named by their
//! index. Each session is on up to three lists at once, through links
//! stored in the session itself (no allocation, O(1) insert and remove):
//! the timer wheel slot it waits in ([`TIMER`]), the table's embryonic
//! list ([`EMBRYONIC`]) and its zone's embryonic list ([`ZONE`]), the
//! latter two in order of creation so that the oldest half-open session
//! is the first evicted.

use super::tcp::{Peer, TcpState};
use super::tuple::Tuple;

/// "No session": the end of a list.
pub const NIL: u32 = u32::MAX;
/// Link slot: the timer wheel.
pub const TIMER: usize = 0;
/// Link slot: the table's embryonic list.
pub const EMBRYONIC: usize = 1;
/// Link slot: the zone's embryonic list.
pub const ZONE: usize = 2;

/// Neighbours of a session on one list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// Previous session, or [`NIL`].
    pub prev: u32,
    /// Next session, or [`NIL`].
    pub next: u32,
}

impl Default for Link {
    fn default() -> Link {
        Link {
            prev: NIL,
            next: NIL,
        }
    }
}

/// Session flags.
pub mod flags {
    /// The slot holds a session.
    pub const IN_USE: u8 = 1 << 0;
    /// A packet went the reply way.
    pub const REPLIED: u8 = 1 << 1;
    /// On the embryonic lists.
    pub const EMBRYONIC: u8 = 1 << 2;
    /// NAT changed the reply key ([`super::ReplyNat`]); kept here, in the
    /// first cache line, so that matching a plain session never reads the
    /// second.
    pub const NAT: u8 = 1 << 3;
}

/// What kind of connection a session tracks, and where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    /// A free slot.
    #[default]
    Free,
    /// TCP, in the given state.
    Tcp(TcpState),
    /// UDP or another protocol without a handshake.
    Datagram,
    /// ICMP echo.
    Echo,
}

/// Which end of a session's reply key NAT moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatSide {
    /// None: the reply key is the original turned around.
    #[default]
    None,
    /// The reply's destination (source NAT: replies come back to the
    /// translated source).
    Dst,
    /// The reply's source (destination NAT: replies come from the real
    /// destination).
    Src,
}

/// How a session's reply key differs from its original key turned
/// around: one end's address and port (for ICMP echo, the identifier or
/// [`super::tuple::ECHO`]) replaced. IPv4 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyNat {
    /// Which end.
    pub side: NatSide,
    /// Its address.
    pub addr: u32,
    /// Its port.
    pub port: u32,
}

impl ReplyNat {
    /// No translation.
    pub const NONE: ReplyNat = ReplyNat {
        side: NatSide::None,
        addr: 0,
        port: 0,
    };

    /// The reply key of a session whose original key is `orig`.
    #[inline(always)]
    pub fn reply_of(&self, orig: &Tuple) -> Tuple {
        let mut r = orig.reversed();
        match self.side {
            NatSide::None => {}
            NatSide::Dst => {
                r.dst = u128::from(self.addr);
                r.dport = self.port;
            }
            NatSide::Src => {
                r.src = u128::from(self.addr);
                r.sport = self.port;
            }
        }
        r
    }
}

/// One tracked connection: two cache lines.
#[repr(C, align(64))]
#[derive(Debug, Clone, Default)]
pub struct Session {
    /// The key of the first packet (the original direction).
    pub orig: Tuple,
    /// What it is and, for TCP, its state.
    pub kind: Kind,
    /// [`flags`].
    pub flags: u8,
    /// Where the timer wheel holds it ([`super::wheel`]).
    pub wheel_slot: u16,
    /// Tick at which it expires unless refreshed.
    pub expires: u32,
    /// Tick the wheel will look at it (never after `expires`).
    pub armed: u32,
    /// Links on the timer, embryonic and zone lists.
    pub links: [Link; 3],
    /// TCP window tracking, original then reply sender.
    pub peer: [Peer; 2],
    /// NAT's change to the reply key (in what was padding).
    pub nat: ReplyNat,
}

const _: () = assert!(std::mem::size_of::<Session>() == 128);

impl Session {
    /// The key of direction `dir` (0: original, 1: reply).
    #[inline(always)]
    pub fn key(&self, dir: usize) -> Tuple {
        if dir == 0 {
            self.orig
        } else {
            self.nat.reply_of(&self.orig)
        }
    }

    /// Whether direction `dir`'s key is `k`, without building the reply key.
    #[inline(always)]
    pub fn matches(&self, dir: usize, k: &Tuple) -> bool {
        if dir == 1 && self.flags & flags::NAT != 0 {
            return self.key(1) == *k;
        }
        let o = &self.orig;
        let (src, dst, sport, dport) = if dir == 0 {
            (o.src, o.dst, o.sport, o.dport)
        } else {
            (o.dst, o.src, o.dport, o.sport)
        };
        src == k.src
            && dst == k.dst
            && sport == k.sport
            && dport == k.dport
            && o.proto == k.proto
            && o.zone == k.zone
            && o.v6 == k.v6
    }

    /// Whether the slot holds a session.
    #[inline(always)]
    pub fn in_use(&self) -> bool {
        self.flags & flags::IN_USE != 0
    }
}

/// A doubly linked list of sessions through one link slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct List {
    /// First session, or [`NIL`].
    pub head: u32,
    /// Last session, or [`NIL`].
    pub tail: u32,
}

impl Default for List {
    fn default() -> List {
        List {
            head: NIL,
            tail: NIL,
        }
    }
}

impl List {
    /// Whether the list is empty.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Appends session `i` (not on any list of slot `k`).
    #[inline]
    pub fn push_back(&mut self, s: &mut [Session], k: usize, i: u32) {
        s[i as usize].links[k] = Link {
            prev: self.tail,
            next: NIL,
        };
        match self.tail {
            NIL => self.head = i,
            t => s[t as usize].links[k].next = i,
        }
        self.tail = i;
    }

    /// Takes session `i` off this list (it must be on it).
    #[inline]
    pub fn remove(&mut self, s: &mut [Session], k: usize, i: u32) {
        let Link { prev, next } = s[i as usize].links[k];
        match prev {
            NIL => self.head = next,
            p => s[p as usize].links[k].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => s[n as usize].links[k].prev = prev,
        }
        s[i as usize].links[k] = Link::default();
    }

    /// Takes the first session off.
    #[inline]
    pub fn pop_front(&mut self, s: &mut [Session], k: usize) -> Option<u32> {
        let h = self.head;
        if h == NIL {
            return None;
        }
        self.remove(s, k, h);
        Some(h)
    }

    /// Moves every session of `other` to the end of this list, in O(1).
    #[inline]
    pub fn append(&mut self, s: &mut [Session], k: usize, other: &mut List) {
        if other.is_empty() {
            return;
        }
        match self.tail {
            NIL => self.head = other.head,
            t => {
                s[t as usize].links[k].next = other.head;
                s[other.head as usize].links[k].prev = t;
            }
        }
        self.tail = other.tail;
        *other = List::default();
    }

    /// The sessions in order (for tests and `show`: walks the list).
    pub fn iter<'a>(&self, s: &'a [Session], k: usize) -> impl Iterator<Item = u32> + 'a {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let i = at;
            (i != NIL).then(|| {
                at = s[i as usize].links[k].next;
                i
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_remove_pop_and_append_keep_both_ends() {
        let mut s = vec![Session::default(); 6];
        let mut a = List::default();
        let mut b = List::default();
        for i in 0..3 {
            a.push_back(&mut s, 0, i);
        }
        for i in 3..6 {
            b.push_back(&mut s, 0, i);
        }
        a.remove(&mut s, 0, 1);
        assert_eq!(a.iter(&s, 0).collect::<Vec<_>>(), [0, 2]);
        a.append(&mut s, 0, &mut b);
        assert!(b.is_empty());
        assert_eq!(a.iter(&s, 0).collect::<Vec<_>>(), [0, 2, 3, 4, 5]);
        a.remove(&mut s, 0, 5);
        assert_eq!(a.tail, 4);
        assert_eq!(a.pop_front(&mut s, 0), Some(0));
        assert_eq!(a.iter(&s, 0).collect::<Vec<_>>(), [2, 3, 4]);
        // Back-links agree with forward links.
        assert_eq!(s[3].links[0].prev, 2);
        assert_eq!(s[2].links[0].prev, NIL);
    }
}
