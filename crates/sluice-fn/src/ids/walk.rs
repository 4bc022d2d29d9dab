//! Walking an automaton over several payloads at once.
//!
//! A DFA's walk is one table load a byte, each load's address depending
//! on the one before: a single payload waits out every load's latency.
//! Walking [`LANES`] payloads in step keeps that many independent chains
//! of loads in flight, so their latencies overlap (bench `ids`: 1.6
//! cycles a byte against 4.7 one payload at a time). A lane that finishes
//! its payload takes the next; when none is left the others finish one
//! by one.

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton, StateID};

/// Payloads an automaton walks at once.
pub const LANES: usize = 4;

/// One payload in a lane of [`walk`].
#[derive(Clone, Copy)]
struct Lane<'a> {
    /// What is left to walk.
    hay: &'a [u8],
    /// Offset of `hay[0]` in the payload.
    off: usize,
    pkt: u32,
    sid: StateID,
}

/// Records the matches of state `sid` reached at payload offset `end`.
#[cold]
#[inline(never)]
fn report<A: Automaton>(
    aut: &A,
    sid: StateID,
    pkt: u32,
    end: usize,
    raw: &mut Vec<(u32, u32, u32)>,
) {
    // Unanchored with Standard semantics the walk never dies; the only
    // special states (no prefilter) are match states.
    if aut.is_match(sid) {
        for k in 0..aut.match_len(sid) {
            raw.push((pkt, aut.match_pattern(sid, k).as_u32(), end as u32));
        }
    }
}

/// Walks `aut` over the payload `hay(p)` of every packet `p` of `pkts`,
/// [`LANES`] at a time, and records every match (overlaps included) as
/// (packet, pattern, end).
pub(super) fn walk<'a, A: Automaton>(
    aut: &A,
    mut pkts: impl Iterator<Item = u32>,
    hay: impl Fn(u32) -> &'a [u8],
    raw: &mut Vec<(u32, u32, u32)>,
) {
    // Built unanchored, so this cannot fail; no start state, no walk.
    let Ok(start) = aut.start_state(Anchored::No) else {
        return;
    };
    let idle = Lane {
        hay: &[],
        off: 0,
        pkt: 0,
        sid: start,
    };
    let mut lanes = [idle; LANES];
    loop {
        for lane in &mut lanes {
            while lane.hay.is_empty() {
                let Some(p) = pkts.next() else { break };
                *lane = Lane {
                    hay: hay(p),
                    off: 0,
                    pkt: p,
                    sid: start,
                };
            }
        }
        let m = lanes.iter().map(|l| l.hay.len()).min().unwrap_or(0);
        if m == 0 {
            // A lane ran dry for good: walk the others' rest one by one.
            for l in &mut lanes {
                for (i, &b) in l.hay.iter().enumerate() {
                    l.sid = aut.next_state(Anchored::No, l.sid, b);
                    if aut.is_special(l.sid) {
                        report(aut, l.sid, l.pkt, l.off + i + 1, raw);
                    }
                }
            }
            return;
        }
        // The lockstep part: LANES independent chains of loads.
        let hays: [&[u8]; LANES] = std::array::from_fn(|l| &lanes[l].hay[..m]);
        let mut sids: [StateID; LANES] = std::array::from_fn(|l| lanes[l].sid);
        // One index walks every lane's bytes in step.
        #[allow(clippy::needless_range_loop)]
        for i in 0..m {
            for l in 0..LANES {
                sids[l] = aut.next_state(Anchored::No, sids[l], hays[l][i]);
            }
            for l in 0..LANES {
                if aut.is_special(sids[l]) {
                    report(aut, sids[l], lanes[l].pkt, lanes[l].off + i + 1, raw);
                }
            }
        }
        for (l, sid) in lanes.iter_mut().zip(sids) {
            l.sid = sid;
            l.hay = &l.hay[m..];
            l.off += m;
        }
    }
}
