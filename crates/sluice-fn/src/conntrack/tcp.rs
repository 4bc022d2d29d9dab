//! The TCP state machine and window tracking.
//!
//! States and transitions follow Linux conntrack's
//! (`nf_conntrack_proto_tcp.c`): a connection is opened by a SYN from
//! the original side only (no pick-up of connections in mid-stream),
//! `SYN_SENT` → `SYN_RECV` on the SYN-ACK, `ESTABLISHED` on the third
//! ACK; the first FIN makes `FIN_WAIT`, its acknowledgment `CLOSE_WAIT`,
//! the other side's FIN `LAST_ACK` and the acknowledgment of that one
//! `TIME_WAIT`; a RST in the window makes `CLOSE`. A SYN from the
//! original side reopens a connection in `TIME_WAIT` or `CLOSE`.
//! Simultaneous open (a SYN crossing a SYN) is refused. Where Linux moves
//! on any ACK from the other side, this machine asks that the ACK cover
//! the FIN (its sequence number is the sender's end), which is what the
//! state names promise.
//!
//! Every segment is checked against the window before it may change
//! anything, after Guido van Rooij, "Real Stateful TCP Packet Filtering
//! in IP Filter": for a segment `seq..end` with acknowledgment `ack` from
//! sender S to receiver R,
//!
//! 1. `end ≤ S.maxend` — it ends within what R ever allowed S to send;
//! 2. `seq ≥ S.end − R.maxwin` — it starts no further back than the
//!    largest window R has offered;
//! 3. `ack ≤ R.end` — it acknowledges nothing R has not sent;
//! 4. `ack ≥ R.end − max(S.maxwin, 66000)` — nor anything too old.
//!
//! `end` is the highest sequence number a side has sent, `maxend` the
//! highest it may send (acknowledgment + window of the other side),
//! `maxwin` its largest window. Windows are scaled by the shift each side
//! gave in its SYN when both sides gave one (RFC 7323), never in SYNs.
//! A segment that fails is invalid: counted and dropped, state untouched.
//! A RST is held to the same window (so a blind reset from outside the
//! window cannot close a connection); in `SYN_SENT` a RST must
//! acknowledge exactly the SYN.

use super::parse::{TcpInfo, flag};

/// TCP connection states, as Linux conntrack names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TcpState {
    /// The original side sent a SYN.
    #[default]
    SynSent,
    /// The reply side answered SYN-ACK.
    SynRecv,
    /// The handshake completed.
    Established,
    /// One side sent a FIN.
    FinWait,
    /// The FIN was acknowledged; the other side may still send.
    CloseWait,
    /// Both sides sent a FIN.
    LastAck,
    /// The last FIN was acknowledged.
    TimeWait,
    /// Reset.
    Close,
}

impl TcpState {
    /// Every state, in order.
    pub const ALL: [TcpState; 8] = [
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::Established,
        TcpState::FinWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::TimeWait,
        TcpState::Close,
    ];

    /// Not yet through the handshake: the first sessions evicted.
    pub fn is_embryonic(self) -> bool {
        matches!(self, TcpState::SynSent | TcpState::SynRecv)
    }

    /// Linux's name.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
        }
    }
}

/// Peer flags.
mod pf {
    /// Sent a window scale option in its SYN.
    pub const SCALE: u8 = 1 << 0;
    /// Sent a FIN.
    pub const FIN: u8 = 1 << 1;
}

/// What one side of a connection has sent and may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Peer {
    /// Highest sequence number sent, + 1.
    pub end: u32,
    /// Highest sequence number it may send (the other side's ack + window).
    pub maxend: u32,
    /// Largest window it advertised (scaled); 0 until it sent anything.
    pub maxwin: u32,
    /// Its window scale shift (0 unless both sides offered one).
    pub scale: u8,
    /// Flags: window scale offered, FIN sent.
    pub flags: u8,
}

/// Why a TCP segment is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpInvalid {
    /// A combination of flags no TCP sends (SYN+FIN, FIN without ACK, none).
    BadFlags,
    /// A first segment that is not a SYN.
    NotSyn,
    /// A segment this state does not expect (a SYN-ACK from the original
    /// side, an ACK before the SYN-ACK, a SYN in the middle of a connection).
    Unexpected,
    /// Outside the window.
    OutOfWindow,
    /// A RST outside the window.
    RstOutOfWindow,
}

/// The kind of segment, from its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Syn,
    SynAck,
    Fin,
    Ack,
    Rst,
}

fn class(flags: u8) -> Result<Class, TcpInvalid> {
    const SA: u8 = flag::SYN | flag::ACK;
    const RA: u8 = flag::RST | flag::ACK;
    const FA: u8 = flag::FIN | flag::ACK;
    match flags & !(flag::PSH | flag::URG) {
        flag::SYN => Ok(Class::Syn),
        SA => Ok(Class::SynAck),
        flag::RST | RA => Ok(Class::Rst),
        FA => Ok(Class::Fin),
        flag::ACK => Ok(Class::Ack),
        _ => Err(TcpInvalid::BadFlags),
    }
}

/// `a` comes before `b` on the sequence circle.
#[inline(always)]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline(always)]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// The acknowledgment window allowed when a side has not said its own.
const MAX_ACK_WINDOW: u32 = 66_000;

/// The sender state a SYN (or SYN-ACK) opens.
fn opened_by(t: &TcpInfo) -> Peer {
    let end = t.seq.wrapping_add(t.len);
    Peer {
        end,
        maxend: end,
        maxwin: u32::from(t.win).max(1),
        scale: t.wscale.unwrap_or(0),
        flags: if t.wscale.is_some() { pf::SCALE } else { 0 },
    }
}

/// The window state of a connection its first segment opens, or why
/// that segment may not open one.
pub fn open(t: &TcpInfo) -> Result<[Peer; 2], TcpInvalid> {
    match class(t.flags)? {
        Class::Syn => Ok([opened_by(t), Peer::default()]),
        _ => Err(TcpInvalid::NotSyn),
    }
}

/// Checks segment `t` of class `c` from side `dir` (0: original) against
/// the windows and, if it passes, updates them.
fn in_window(peers: &mut [Peer; 2], dir: usize, t: &TcpInfo, c: Class) -> Result<(), TcpInvalid> {
    let [a, b] = peers;
    let (s, r) = if dir == 0 { (a, b) } else { (b, a) };
    let end = t.seq.wrapping_add(t.len);
    if s.maxwin == 0 {
        // The first segment of this side: only a SYN-ACK gets here.
        *s = opened_by(t);
        if s.flags & r.flags & pf::SCALE == 0 {
            s.scale = 0;
            r.scale = 0;
        }
    }
    let ack = if t.flags & flag::ACK != 0 {
        t.ack
    } else {
        r.end
    };
    let win = if matches!(c, Class::Syn | Class::SynAck) {
        u32::from(t.win)
    } else {
        u32::from(t.win) << s.scale
    };
    let ok = !before(s.maxend, end)
        && !before(t.seq, s.end.wrapping_sub(r.maxwin))
        && !after(ack, r.end)
        && !before(ack, r.end.wrapping_sub(s.maxwin.max(MAX_ACK_WINDOW)));
    if !ok {
        return Err(if c == Class::Rst {
            TcpInvalid::RstOutOfWindow
        } else {
            TcpInvalid::OutOfWindow
        });
    }
    s.maxwin = s.maxwin.max(win);
    if after(end, s.end) {
        s.end = end;
    }
    if t.flags & flag::ACK != 0 {
        let reach = ack.wrapping_add(win.max(1));
        if after(reach, r.maxend) {
            r.maxend = reach;
        }
    }
    Ok(())
}

/// Segment `t` from side `dir` (0: original, 1: reply) of a connection in
/// `state` with windows `peers`: the state it moves to, windows updated,
/// or why it is invalid (nothing changed then).
pub fn track(
    state: TcpState,
    peers: &mut [Peer; 2],
    dir: usize,
    t: &TcpInfo,
) -> Result<TcpState, TcpInvalid> {
    use TcpState::*;
    let c = class(t.flags)?;
    let dir = dir & 1;
    let other = 1 - dir;
    let next = match (c, dir, state) {
        (Class::Syn, 0, TimeWait | Close) => {
            // A new connection on the same ports: start over.
            *peers = open(t)?;
            return Ok(SynSent);
        }
        (Class::Syn, 0, SynSent) => {
            // A retransmitted SYN (maybe with a new sequence number).
            peers[0] = opened_by(t);
            return Ok(SynSent);
        }
        // The SYN-ACK was lost: the SYN again, answered again.
        (Class::Syn, 0, SynRecv) => SynRecv,
        (Class::Syn, _, _) => return Err(TcpInvalid::Unexpected),
        (Class::SynAck, 1, SynSent | SynRecv) => SynRecv,
        // The third ACK was lost and the SYN-ACK comes again.
        (Class::SynAck, 1, Established) => Established,
        (Class::SynAck, _, _) => return Err(TcpInvalid::Unexpected),
        (Class::Rst, _, SynSent) => {
            // Only the reply side's refusal of the SYN, acknowledging it.
            let refusal = dir == 1 && t.flags & flag::ACK != 0 && t.ack == peers[0].end;
            return if refusal {
                Ok(Close)
            } else {
                Err(TcpInvalid::RstOutOfWindow)
            };
        }
        (Class::Rst, _, _) => Close,
        (_, _, SynSent) => return Err(TcpInvalid::Unexpected),
        (Class::Ack, 0, SynRecv) => Established,
        (Class::Ack, _, SynRecv) => return Err(TcpInvalid::Unexpected),
        (Class::Fin, _, SynRecv | Established) => FinWait,
        (Class::Fin, d, FinWait | CloseWait) => {
            if peers[d].flags & pf::FIN != 0 {
                state
            } else {
                LastAck
            }
        }
        (Class::Fin, _, s) => s,
        (Class::Ack, _, Established | CloseWait | TimeWait | Close) => state,
        (Class::Ack, d, FinWait) => {
            // The side that did not send the FIN acknowledges it.
            let acked = peers[other].flags & pf::FIN != 0 && t.ack == peers[other].end;
            if peers[d].flags & pf::FIN == 0 && acked {
                CloseWait
            } else {
                FinWait
            }
        }
        (Class::Ack, _, LastAck) => {
            if t.ack == peers[other].end {
                TimeWait
            } else {
                LastAck
            }
        }
    };
    in_window(peers, dir, t, c)?;
    if c == Class::Fin {
        peers[dir].flags |= pf::FIN;
    }
    Ok(next)
}
