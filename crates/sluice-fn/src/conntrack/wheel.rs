//! A hierarchical timer wheel over the session array.
//!
//! Four levels of 64 slots: level 0 holds deadlines within 64 ticks,
//! level 1 within 64² and so on (64⁴ ticks: 19 days at 100 ms). A slot is
//! a [`List`] threaded through the sessions' own timer links, so starting
//! and stopping a timer is O(1) and nothing is allocated. Each level keeps
//! a bit per non-empty slot, so that a tick with nothing due costs a bit
//! test.
//!
//! When the wheel's time reaches a slot, the slot is queued as due;
//! whoever drives the wheel then takes sessions off the due slots a
//! bounded number at a time ([`Wheel::pop_due`]): a session whose deadline
//! has come expires, any other (from a higher level, or whose deadline was
//! pushed back since it was armed) is put back at its deadline, lower
//! down. The wheel's time does not move on while a due slot is not empty
//! ([`Wheel::advance`] stops there), so a session put back can never land
//! in a slot being emptied, and sessions come due late under a backlog,
//! never early. Expiry is thus amortised over vectors: a million sessions
//! timing out in the same tick never stall a worker, they leave over the
//! next vectors.
//!
//! Refreshing a busy connection does not touch the wheel: the packet
//! writes the session's new deadline, and the timer, when it fires at
//! the old one, finds it in the future and re-arms (one wheel operation
//! per timeout, not per packet). Only a deadline brought *forward* (a
//! state with a shorter timeout, such as a RST closing an established
//! connection) moves the timer at once.

use super::session::{List, NIL, Session, TIMER};

const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS;
const LEVELS: usize = 4;
/// `wheel_slot` of a session on the `due` list.
const DUE: u16 = (LEVELS * SLOTS) as u16;
/// `wheel_slot` of a session on no timer.
pub const UNARMED: u16 = u16::MAX;

/// Ticks between `now` and `deadline` (negative: passed), on the 32-bit
/// tick circle the sessions store.
#[inline(always)]
pub fn until(deadline: u32, now: u64) -> i64 {
    i64::from(deadline.wrapping_sub(now as u32) as i32)
}

/// The timer wheel of one worker.
#[derive(Debug)]
pub struct Wheel {
    slots: [[List; SLOTS]; LEVELS],
    /// Bit `s` of level `l`: slot `s` is not empty.
    occupied: [u64; LEVELS],
    /// Sessions whose deadline had passed when they were armed.
    due: List,
    /// Slots (level × 64 + slot) reached and not yet emptied.
    pending: Vec<u16>,
    /// The last tick processed.
    now: u64,
}

impl Wheel {
    /// A wheel whose time starts at `now` (ticks).
    pub fn new(now: u64) -> Wheel {
        Wheel {
            slots: [[List::default(); SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            due: List::default(),
            pending: Vec::with_capacity(LEVELS),
            now,
        }
    }

    /// The wheel's time, in ticks.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Arms session `i`'s timer at tick `deadline` (32-bit, on the circle
    /// around the wheel's time). It must be on no timer.
    pub fn start(&mut self, s: &mut [Session], i: u32, deadline: u32) {
        let ahead = until(deadline, self.now);
        s[i as usize].armed = deadline;
        if ahead <= 0 {
            self.due.push_back(s, TIMER, i);
            s[i as usize].wheel_slot = DUE;
            return;
        }
        let d = self.now + ahead as u64;
        let mut at = None;
        for l in 0..LEVELS {
            let shift = BITS * l as u32;
            if (d >> shift) - (self.now >> shift) < SLOTS as u64 {
                at = Some((l, ((d >> shift) as usize) & (SLOTS - 1)));
                break;
            }
        }
        // Further than the top level reaches: its furthest slot, from
        // which the session is put back again when that comes.
        let (l, slot) = at.unwrap_or_else(|| {
            let shift = BITS * (LEVELS as u32 - 1);
            (
                LEVELS - 1,
                (((self.now >> shift) + SLOTS as u64 - 1) as usize) & (SLOTS - 1),
            )
        });
        self.slots[l][slot].push_back(s, TIMER, i);
        self.occupied[l] |= 1 << slot;
        s[i as usize].wheel_slot = (l * SLOTS + slot) as u16;
    }

    /// Disarms session `i`'s timer (if armed).
    pub fn stop(&mut self, s: &mut [Session], i: u32) {
        let at = s[i as usize].wheel_slot;
        if at == UNARMED {
            return;
        }
        if at == DUE {
            self.due.remove(s, TIMER, i);
        } else {
            let (l, slot) = (usize::from(at) / SLOTS, usize::from(at) % SLOTS);
            let list = &mut self.slots[l][slot];
            list.remove(s, TIMER, i);
            if list.is_empty() {
                self.occupied[l] &= !(1 << slot);
            }
        }
        s[i as usize].wheel_slot = UNARMED;
    }

    /// Queues slot `slot` of level `l` as due if it holds sessions.
    fn reach(&mut self, l: usize, slot: usize) {
        if self.occupied[l] & (1 << slot) != 0 {
            self.pending.push((l * SLOTS + slot) as u16);
        }
    }

    /// Moves the wheel's time forward towards `to` (ticks), stopping at
    /// the first tick that brings a slot due. Runs of ticks with nothing
    /// in the lower levels are skipped whole, so a long jump costs a few
    /// steps per level, not one per tick.
    pub fn advance(&mut self, to: u64) {
        while self.now < to && self.pending.is_empty() {
            if self.occupied == [0; LEVELS] {
                self.now = to;
                return;
            }
            // Levels 0..=l empty: nothing happens before the next tick
            // that is a multiple of 64^(l+1).
            let mut next = self.now + 1;
            for l in 0..LEVELS - 1 {
                if self.occupied[l] != 0 {
                    break;
                }
                let shift = BITS * (l as u32 + 1);
                next = ((self.now >> shift) + 1) << shift;
            }
            let t = next.min(to);
            self.now = t;
            self.reach(0, (t as usize) & (SLOTS - 1));
            for l in 1..LEVELS {
                let shift = BITS * l as u32;
                if t & ((1 << shift) - 1) != 0 {
                    break;
                }
                self.reach(l, ((t >> shift) as usize) & (SLOTS - 1));
            }
        }
    }

    /// Takes the next due session off its list (its timer now unarmed):
    /// the caller expires it or starts its timer again. `None` once every
    /// due slot is empty.
    #[inline]
    pub fn pop_due(&mut self, s: &mut [Session]) -> Option<u32> {
        let i = match self.due.pop_front(s, TIMER) {
            Some(i) => i,
            None => loop {
                let &at = self.pending.last()?;
                let (l, slot) = (usize::from(at) / SLOTS, usize::from(at) % SLOTS);
                match self.slots[l][slot].pop_front(s, TIMER) {
                    Some(i) => {
                        if self.slots[l][slot].is_empty() {
                            self.occupied[l] &= !(1 << slot);
                            self.pending.pop();
                        }
                        break i;
                    }
                    None => {
                        self.pending.pop();
                    }
                }
            },
        };
        s[i as usize].wheel_slot = UNARMED;
        Some(i)
    }

    /// Whether sessions wait on the due list.
    pub fn has_due(&self) -> bool {
        !self.due.is_empty() || !self.pending.is_empty()
    }

    /// Sessions armed, counted by walking every list (for tests).
    pub fn armed(&self, s: &[Session]) -> usize {
        let slots: usize = self
            .slots
            .iter()
            .flatten()
            .map(|l| l.iter(s, TIMER).count())
            .sum();
        slots + self.due.iter(s, TIMER).count()
    }
}

impl Default for Wheel {
    fn default() -> Wheel {
        Wheel::new(0)
    }
}

// The slot number fits the session's field with room for DUE and UNARMED.
const _: () = assert!((LEVELS * SLOTS) < u16::MAX as usize && NIL == u32::MAX);

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives `w` tick by tick to `end`, recording at which tick each
    /// session comes due at its own deadline (re-arming early ones).
    fn run(w: &mut Wheel, s: &mut [Session], end: u64) -> Vec<(u32, u64)> {
        let mut fired = Vec::new();
        loop {
            while let Some(i) = w.pop_due(s) {
                if until(s[i as usize].expires, w.now()) <= 0 {
                    fired.push((i, w.now()));
                } else {
                    let e = s[i as usize].expires;
                    w.start(s, i, e);
                }
            }
            if w.now() >= end {
                return fired;
            }
            w.advance(end);
        }
    }

    #[test]
    fn every_deadline_fires_exactly_on_its_tick_across_levels() {
        let deadlines: Vec<u64> = vec![1, 2, 63, 64, 65, 100, 4095, 4096, 4097, 70_000, 300_000];
        let mut s = vec![Session::default(); deadlines.len()];
        let start = 37u64;
        let mut w = Wheel::new(start);
        for (i, &d) in deadlines.iter().enumerate() {
            s[i].expires = (start + d) as u32;
            w.start(&mut s, i as u32, (start + d) as u32);
        }
        let fired = run(&mut w, &mut s, start + 300_001);
        assert_eq!(fired.len(), deadlines.len());
        for (i, t) in fired {
            assert_eq!(t, start + deadlines[i as usize], "session {i}");
        }
        assert_eq!(w.armed(&s), 0);
    }

    #[test]
    fn a_pushed_back_deadline_rearms_and_a_stopped_timer_never_fires() {
        let mut s = vec![Session::default(); 3];
        let mut w = Wheel::new(0);
        for i in 0..3 {
            s[i].expires = 10;
            w.start(&mut s, i as u32, 10);
        }
        // Session 1 was refreshed: its deadline moved on without the wheel.
        s[1].expires = 500;
        w.stop(&mut s, 2);
        assert_eq!(s[2].wheel_slot, UNARMED);
        let fired = run(&mut w, &mut s, 600);
        assert_eq!(fired, vec![(0, 10), (1, 500)]);
    }

    #[test]
    fn a_long_jump_is_taken_in_few_steps_and_misses_nothing() {
        let mut s = vec![Session::default(); 2];
        let mut w = Wheel::new(5);
        s[0].expires = 6;
        w.start(&mut s, 0, 6);
        s[1].expires = 5 + 20_000_000;
        w.start(&mut s, 1, 5 + 20_000_000);
        let fired = run(&mut w, &mut s, 5 + 40_000_000);
        assert_eq!(fired, vec![(0, 6), (1, 5 + 20_000_000)]);
    }
}
