//! [`ConnTrack`]: one worker's connection tracking — the table, its timer
//! wheel and the per-protocol rules — a vector of packets at a time.
//!
//! A vector goes through in three passes, so that the memory latency of a
//! table far bigger than the caches is paid once, not once per packet:
//! every key is hashed and its bucket prefetched; every bucket is read
//! and its likeliest session prefetched; then each packet is looked up
//! and tracked in order (so that a vector holding a flow's first two
//! packets makes the session with the first and finds it with the
//! second). Before the passes the timer wheel is moved to the vector's
//! time and a bounded number of sessions expire; a session found past
//! its deadline by a lookup expires on the spot, so a backlog of expiry
//! never lets a dead session pass a packet.

use std::sync::Arc;

use super::config::{CtConfig, CtConfigError};
use super::parse::{L4, ParseError, Parsed, flag};
use super::session::{Kind, ReplyNat, Session, flags};
use super::stats::{CtStats, Event};
use super::table::{ConnTable, InsertError};
use super::tcp::{self, TcpInvalid, TcpState};
use super::tuple::Tuple;
use super::wheel::{UNARMED, Wheel, until};

/// Why a packet is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// It could not be read.
    Parse(ParseError),
    /// TCP said no.
    Tcp(TcpInvalid),
    /// An ICMP error quoting a packet of no tracked connection.
    Unrelated,
    /// An echo reply to no request.
    Unsolicited,
}

/// Why a packet is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Invalid.
    Invalid(Invalid),
    /// The first packet of a flow the policy does not let start.
    NewDenied,
    /// No room in the table, and no embryonic session to evict.
    TableFull,
    /// No room in the zone, and no embryonic session of it to evict.
    ZoneFull,
}

/// What tracking made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A packet of a tracked connection (`reply`: going the reply way).
    Tracked {
        /// It goes from the responder to the initiator.
        reply: bool,
    },
    /// The first packet of a new connection, whose session it made (or a
    /// SYN reopening a closed one).
    New,
    /// An ICMP error about a tracked connection.
    Related,
    /// Passed without tracking (neighbour discovery and the like).
    Untracked,
    /// Dropped.
    Drop(Refusal),
}

impl Verdict {
    /// Whether the packet goes on.
    pub fn passes(self) -> bool {
        !matches!(self, Verdict::Drop(_))
    }
}

/// One worker's connection tracker.
#[derive(Debug)]
pub struct ConnTrack {
    table: ConnTable,
    wheel: Wheel,
    tick_ms: u64,
    tcp_ticks: [u32; 8],
    datagram: u32,
    datagram_replied: u32,
    echo: u32,
    budget: usize,
    /// The tick of the vector being tracked.
    now: u64,
    stats: Arc<CtStats>,
    hashes: Vec<u64>,
}

fn ticks(d: std::time::Duration, tick_ms: u64) -> u32 {
    (d.as_millis() as u64).div_ceil(tick_ms).max(1) as u32
}

impl ConnTrack {
    /// A tracker with all its memory allocated now.
    pub fn new(cfg: &CtConfig) -> Result<ConnTrack, CtConfigError> {
        cfg.validate()?;
        let tick_ms = cfg.tick.as_millis() as u64;
        let seed = if cfg.seed != 0 {
            cfg.seed
        } else {
            sluice_graph::clock::cycles() | 1
        };
        let mut table = ConnTable::new(cfg.capacity, cfg.zones, cfg.zone_limit, seed);
        for &(z, limit) in &cfg.zone_limits {
            table.zones[usize::from(z)].limit = limit;
        }
        let t = &cfg.timeouts;
        Ok(ConnTrack {
            table,
            wheel: Wheel::new(0),
            tick_ms,
            tcp_ticks: TcpState::ALL.map(|s| ticks(t.tcp(s), tick_ms)),
            datagram: ticks(t.datagram, tick_ms),
            datagram_replied: ticks(t.datagram_replied, tick_ms),
            echo: ticks(t.echo, tick_ms),
            budget: cfg.expire_budget,
            now: 0,
            stats: Arc::new(CtStats::new(u64::from(cfg.capacity), cfg.zones)),
            hashes: Vec::with_capacity(sluice_graph::FRAME_SIZE),
        })
    }

    /// The counters, for whoever wants to read them.
    pub fn stats(&self) -> Arc<CtStats> {
        self.stats.clone()
    }

    /// Sessions in the table.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Sessions the table holds at most.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Bytes of the table (all allocated at creation; never more).
    pub fn memory(&self) -> usize {
        self.table.memory()
    }

    /// Sessions of zone `z` now.
    pub fn zone_len(&self, z: u16) -> usize {
        self.table
            .zones
            .get(usize::from(z))
            .map_or(0, |z| z.count as usize)
    }

    /// Embryonic sessions now (walks the list).
    pub fn embryonic(&self) -> usize {
        self.table
            .embryonic
            .iter(&self.table.sessions, super::session::EMBRYONIC)
            .count()
    }

    /// The session of `key` (either direction): what it tracks, and
    /// whether `key` is its reply direction. Does not expire anything.
    pub fn lookup(&self, key: &Tuple) -> Option<(Kind, bool)> {
        let (i, dir) = self.table.find(key, self.table.hash(key))?;
        Some((self.table.sessions[i as usize].kind, dir == 1))
    }

    /// The session of `key` (either direction) and whether `key` is its
    /// reply direction: for NAT, which rewrites by the session's keys.
    /// Does not expire anything.
    pub fn session(&self, key: &Tuple) -> Option<(&Session, bool)> {
        let (i, dir) = self.table.find(key, self.table.hash(key))?;
        Some((&self.table.sessions[i as usize], dir == 1))
    }

    /// Checks the table's bookkeeping against itself, walking everything
    /// (for tests): every session has its two index entries and one timer,
    /// and no deadline lies beyond the longest timeout.
    pub fn check(&self) -> Result<(), String> {
        let n = self.table.len();
        let entries = self.table.index_entries();
        if entries != 2 * n {
            return Err(format!("{entries} index entries for {n} sessions"));
        }
        let armed = self.wheel.armed(&self.table.sessions);
        if armed != n {
            return Err(format!("{armed} timers for {n} sessions"));
        }
        let zones: usize = self.table.zones.iter().map(|z| z.count as usize).sum();
        if zones != n {
            return Err(format!("zones count {zones} sessions of {n}"));
        }
        let in_use = self.table.sessions.iter().filter(|s| s.in_use()).count();
        if in_use != n {
            return Err(format!("{in_use} slots in use for {n} sessions"));
        }
        let emb = self
            .table
            .sessions
            .iter()
            .filter(|s| s.in_use() && s.flags & flags::EMBRYONIC != 0)
            .count();
        if emb != self.embryonic() {
            return Err(format!(
                "{emb} embryonic flags, {} on the list",
                self.embryonic()
            ));
        }
        Ok(())
    }

    /// The tick of `now_ms`.
    fn tick_of(&self, now_ms: u64) -> u64 {
        (now_ms / self.tick_ms).max(self.wheel.now())
    }

    /// Moves time to `now_ms` and expires up to `budget` sessions whose
    /// time has come (re-arming the timers of refreshed ones counts
    /// against the budget too). Returns the work done; less than
    /// `budget` means nothing more is due.
    pub fn expire(&mut self, now_ms: u64, budget: usize) -> usize {
        let now = self.tick_of(now_ms);
        self.now = now;
        let mut done = 0;
        loop {
            while done < budget {
                let Some(i) = self.wheel.pop_due(&mut self.table.sessions) else {
                    break;
                };
                done += 1;
                let expires = self.table.sessions[i as usize].expires;
                if until(expires, self.wheel.now()) <= 0 {
                    let zone = self.table.sessions[i as usize].orig.zone;
                    self.stats.note(zone, Event::Expired);
                    self.table.remove(i);
                } else {
                    self.wheel.start(&mut self.table.sessions, i, expires);
                }
            }
            if done >= budget || self.wheel.now() >= now {
                return done;
            }
            self.wheel.advance(now);
        }
    }

    /// Removes every session (counted as removed, not expired).
    pub fn clear(&mut self) {
        for i in 0..self.table.capacity() as u32 {
            if self.table.sessions[i as usize].in_use() {
                let zone = self.table.sessions[i as usize].orig.zone;
                self.wheel.stop(&mut self.table.sessions, i);
                self.table.remove(i);
                self.stats.note(zone, Event::Removed);
            }
        }
    }

    /// Tracks a vector of packets read at time `now_ms`: `pkts[i]` may
    /// start a connection if `allow_new[i]`. `out` gets one verdict per
    /// packet, in order.
    pub fn track(
        &mut self,
        now_ms: u64,
        pkts: &[Result<Parsed, ParseError>],
        allow_new: &[bool],
        out: &mut Vec<Verdict>,
    ) {
        self.track_nat(now_ms, pkts, allow_new, &[], out);
    }

    /// [`track`](Self::track), where a session `pkts[i]` opens gets the
    /// reply key `nat[i]` makes (none past the end of `nat`). NAT chooses
    /// `nat[i]` so that no session has that reply key yet.
    pub fn track_nat(
        &mut self,
        now_ms: u64,
        pkts: &[Result<Parsed, ParseError>],
        allow_new: &[bool],
        nat: &[ReplyNat],
        out: &mut Vec<Verdict>,
    ) {
        self.expire(now_ms, self.budget);
        out.clear();
        self.hashes.clear();
        for p in pkts {
            let h = match p {
                Ok(p) => self.table.hash(&p.key),
                Err(_) => 0,
            };
            self.table.prefetch_bucket(h);
            self.hashes.push(h);
        }
        for &h in &self.hashes {
            self.table.prefetch_session(h);
        }
        for (k, p) in pkts.iter().enumerate() {
            let v = match p {
                Ok(p) => self.one(
                    p,
                    self.hashes[k],
                    allow_new.get(k).copied().unwrap_or(false),
                    nat.get(k).copied().unwrap_or(ReplyNat::NONE),
                ),
                Err(e) => Verdict::Drop(Refusal::Invalid(Invalid::Parse(*e))),
            };
            out.push(v);
        }
    }

    /// Tracks one packet whose key hashes to `h`.
    #[inline]
    fn one(&mut self, p: &Parsed, h: u64, allow: bool, nat: ReplyNat) -> Verdict {
        if p.l4 == L4::Untracked {
            return Verdict::Untracked;
        }
        let found = match self.table.find(&p.key, h) {
            Some((i, _)) if until(self.table.sessions[i as usize].expires, self.now) <= 0 => {
                // Past its deadline, its timer not yet reached: it is gone.
                let zone = self.table.sessions[i as usize].orig.zone;
                self.wheel.stop(&mut self.table.sessions, i);
                self.table.remove(i);
                self.stats.note(zone, Event::Expired);
                None
            }
            f => f,
        };
        match (p.l4, found) {
            (L4::Error, Some(_)) => Verdict::Related,
            (L4::Error, None) => Verdict::Drop(Refusal::Invalid(Invalid::Unrelated)),
            (_, Some((i, dir))) => self.update(i, dir, p, allow),
            (_, None) => self.open(p, allow, nat),
        }
    }

    /// A packet of session `i`, direction `dir`.
    fn update(&mut self, i: u32, dir: usize, p: &Parsed, allow: bool) -> Verdict {
        let s = &mut self.table.sessions[i as usize];
        let reply = dir == 1;
        // Set only by a packet that passes (below, for TCP after the
        // window check).
        let replied = reply || s.flags & flags::REPLIED != 0;
        let timeout = match (p.l4, s.kind) {
            (L4::Tcp(t), Kind::Tcp(state)) => {
                let reopen = !reply
                    && t.flags & (flag::SYN | flag::ACK | flag::RST) == flag::SYN
                    && matches!(state, TcpState::TimeWait | TcpState::Close);
                if reopen && !allow {
                    return Verdict::Drop(Refusal::NewDenied);
                }
                match tcp::track(state, &mut s.peer, dir, &t) {
                    Ok(next) => {
                        s.kind = Kind::Tcp(next);
                        if reopen {
                            s.flags &= !flags::REPLIED;
                        } else if reply {
                            s.flags |= flags::REPLIED;
                        }
                        let ticks = self.tcp_ticks[next as usize];
                        if next.is_embryonic() {
                            self.table.mark_embryonic(i);
                        } else {
                            self.table.unmark_embryonic(i);
                        }
                        self.refresh(i, ticks);
                        return if reopen {
                            Verdict::New
                        } else {
                            Verdict::Tracked { reply }
                        };
                    }
                    Err(e) => return Verdict::Drop(Refusal::Invalid(Invalid::Tcp(e))),
                }
            }
            (L4::Datagram, _) if replied => self.datagram_replied,
            (L4::Datagram, _) => self.datagram,
            (L4::Echo { .. }, _) => self.echo,
            // A key carries its protocol, so a TCP key finds a TCP session;
            // anything else here is a session of another kind.
            _ => return Verdict::Drop(Refusal::Invalid(Invalid::Tcp(TcpInvalid::Unexpected))),
        };
        if reply {
            s.flags |= flags::REPLIED;
            self.table.unmark_embryonic(i);
        }
        self.refresh(i, timeout);
        Verdict::Tracked { reply }
    }

    /// Sets session `i` to expire `ticks` from now; moves its timer only
    /// if that is sooner than the one armed.
    #[inline]
    fn refresh(&mut self, i: u32, ticks: u32) {
        let s = &mut self.table.sessions[i as usize];
        let deadline = (self.now as u32).wrapping_add(ticks);
        s.expires = deadline;
        if s.wheel_slot == UNARMED {
            self.wheel.start(&mut self.table.sessions, i, deadline);
        } else if (deadline.wrapping_sub(s.armed) as i32) < 0 {
            self.wheel.stop(&mut self.table.sessions, i);
            self.wheel.start(&mut self.table.sessions, i, deadline);
        }
    }

    /// The first packet of a flow with no session.
    fn open(&mut self, p: &Parsed, allow: bool, nat: ReplyNat) -> Verdict {
        let (kind, peer, ticks) = match p.l4 {
            L4::Tcp(t) => match tcp::open(&t) {
                Ok(peer) => (
                    Kind::Tcp(TcpState::SynSent),
                    peer,
                    self.tcp_ticks[TcpState::SynSent as usize],
                ),
                Err(e) => return Verdict::Drop(Refusal::Invalid(Invalid::Tcp(e))),
            },
            L4::Echo { request: false } => {
                return Verdict::Drop(Refusal::Invalid(Invalid::Unsolicited));
            }
            L4::Echo { request: true } => (Kind::Echo, Default::default(), self.echo),
            _ => (Kind::Datagram, Default::default(), self.datagram),
        };
        if !allow {
            return Verdict::Drop(Refusal::NewDenied);
        }
        let i = match self.make_room(&p.key, nat) {
            Ok(i) => i,
            Err(r) => {
                self.stats.note(p.key.zone, Event::Refused);
                return Verdict::Drop(r);
            }
        };
        let s = &mut self.table.sessions[i as usize];
        s.kind = kind;
        s.peer = peer;
        self.table.mark_embryonic(i);
        self.refresh(i, ticks);
        self.stats.note(p.key.zone, Event::Created);
        Verdict::New
    }

    /// A new session for `key`, evicting the oldest embryonic session of
    /// its zone (if the zone is full) or of the table (if the table is).
    fn make_room(&mut self, key: &Tuple, nat: ReplyNat) -> Result<u32, Refusal> {
        let z = usize::from(key.zone);
        let Some(zone) = self.table.zones.get(z) else {
            return Err(Refusal::ZoneFull);
        };
        if zone.count >= zone.limit {
            let oldest = zone.embryonic.head;
            if oldest == super::session::NIL {
                return Err(Refusal::ZoneFull);
            }
            self.evict(oldest);
        }
        if self.table.len() >= self.table.capacity() {
            let oldest = self.table.embryonic.head;
            if oldest == super::session::NIL {
                return Err(Refusal::TableFull);
            }
            self.evict(oldest);
        }
        match self.table.insert_nat(key, nat) {
            Ok(i) => Ok(i),
            Err(InsertError::Full) => Err(Refusal::TableFull),
            Err(InsertError::Buckets) => {
                self.stats.bucket_full();
                Err(Refusal::TableFull)
            }
        }
    }

    fn evict(&mut self, i: u32) {
        let zone = self.table.sessions[i as usize].orig.zone;
        self.wheel.stop(&mut self.table.sessions, i);
        self.table.remove(i);
        self.stats.note(zone, Event::Evicted);
    }
}
