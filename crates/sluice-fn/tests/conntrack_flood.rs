//! The connection table under pressure: a full table evicts embryonic
//! sessions oldest first and refuses the rest, zones keep their limits, a
//! SYN flood of a million half-open connections neither grows the table
//! nor touches established connections, nothing leaks once every timeout
//! has passed, and random packet sequences never panic or overfill it.

use std::time::Duration;

use proptest::prelude::*;
use sluice_fn::conntrack::{
    ConnTrack, CtConfig, L4, ParseError, Parsed, Refusal, TcpInfo, Tuple, Verdict,
};

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn key(src: u32, sport: u32, zone: u16) -> Tuple {
    Tuple {
        src: u128::from(src),
        dst: 0x0a09_0001,
        sport,
        dport: 80,
        proto: 6,
        v6: false,
        zone,
    }
}

fn seg(key: Tuple, seq: u32, ack: u32, flags: u8, data: u32) -> Result<Parsed, ParseError> {
    Ok(Parsed {
        key,
        l4: L4::Tcp(TcpInfo {
            seq,
            ack,
            win: 65535,
            flags,
            len: data + u32::from(flags & SYN != 0),
            wscale: None,
        }),
    })
}

struct Ct {
    ct: ConnTrack,
    now: u64,
    v: Vec<Verdict>,
}

impl Ct {
    fn new(cfg: CtConfig) -> Ct {
        Ct {
            ct: ConnTrack::new(&CtConfig { seed: 3, ..cfg }).unwrap(),
            now: 0,
            v: Vec::new(),
        }
    }

    fn send(&mut self, pkts: &[Result<Parsed, ParseError>]) -> &[Verdict] {
        let allow = vec![true; pkts.len()];
        self.ct.track(self.now, pkts, &allow, &mut self.v);
        &self.v
    }

    fn one(&mut self, p: Result<Parsed, ParseError>) -> Verdict {
        self.send(&[p])[0]
    }

    /// Opens flow `k` through its handshake.
    fn establish(&mut self, k: Tuple) {
        assert_eq!(self.one(seg(k, 100, 0, SYN, 0)), Verdict::New);
        assert!(self.one(seg(k.reversed(), 500, 101, SYN | ACK, 0)).passes());
        assert!(self.one(seg(k, 101, 501, ACK, 0)).passes());
    }

    fn wait(&mut self, d: Duration) {
        self.now += d.as_millis() as u64;
        self.ct.expire(self.now, usize::MAX);
    }
}

#[test]
fn a_full_table_evicts_embryonic_sessions_oldest_first_then_refuses() {
    let mut ct = Ct::new(CtConfig {
        capacity: 4,
        ..CtConfig::default()
    });
    ct.establish(key(1, 1, 0));
    ct.establish(key(2, 1, 0));
    // Two half-open, the first one older.
    assert_eq!(ct.one(seg(key(3, 1, 0), 0, 0, SYN, 0)), Verdict::New);
    ct.now += 10;
    assert_eq!(ct.one(seg(key(4, 1, 0), 0, 0, SYN, 0)), Verdict::New);
    // A fifth evicts the third, a sixth the fourth.
    assert_eq!(ct.one(seg(key(5, 1, 0), 0, 0, SYN, 0)), Verdict::New);
    assert!(ct.ct.lookup(&key(3, 1, 0)).is_none());
    assert!(ct.ct.lookup(&key(4, 1, 0)).is_some());
    ct.establish(key(6, 1, 0));
    assert!(ct.ct.lookup(&key(4, 1, 0)).is_none());
    // Now: 1, 2, 6 established, 5 embryonic. Establish 5 too.
    assert!(
        ct.one(seg(key(5, 1, 0).reversed(), 0, 1, SYN | ACK, 0))
            .passes()
    );
    assert!(ct.one(seg(key(5, 1, 0), 1, 1, ACK, 0)).passes());
    // Nothing embryonic left: refused.
    assert_eq!(
        ct.one(seg(key(7, 1, 0), 0, 0, SYN, 0)),
        Verdict::Drop(Refusal::TableFull)
    );
    let s = ct.ct.stats().total.snapshot();
    assert_eq!((s.sessions, s.created, s.evicted, s.refused), (4, 6, 2, 1));
    for k in [1, 2, 5, 6] {
        assert!(ct.ct.lookup(&key(k, 1, 0)).is_some(), "{k} evicted");
    }
    assert_eq!(ct.ct.check(), Ok(()));
}

#[test]
fn zones_keep_their_own_limits_and_evict_only_their_own_sessions() {
    let mut ct = Ct::new(CtConfig {
        capacity: 100,
        zones: 3,
        zone_limit: 50,
        zone_limits: vec![(1, 2)],
        ..CtConfig::default()
    });
    // Zone 2 has a half-open session, older than everything in zone 1.
    assert_eq!(ct.one(seg(key(9, 9, 2), 0, 0, SYN, 0)), Verdict::New);
    ct.establish(key(1, 1, 1));
    assert_eq!(ct.one(seg(key(2, 1, 1), 0, 0, SYN, 0)), Verdict::New);
    // Zone 1 is full: its own embryonic session goes, not zone 2's.
    assert_eq!(ct.one(seg(key(3, 1, 1), 0, 0, SYN, 0)), Verdict::New);
    assert!(ct.ct.lookup(&key(2, 1, 1)).is_none());
    assert!(ct.ct.lookup(&key(9, 9, 2)).is_some());
    assert!(
        ct.one(seg(key(3, 1, 1).reversed(), 0, 1, SYN | ACK, 0))
            .passes()
    );
    assert!(ct.one(seg(key(3, 1, 1), 1, 1, ACK, 0)).passes());
    assert_eq!(
        ct.one(seg(key(4, 1, 1), 0, 0, SYN, 0)),
        Verdict::Drop(Refusal::ZoneFull)
    );
    // The same key in zone 0 is another connection, and has room.
    assert_eq!(ct.one(seg(key(4, 1, 0), 0, 0, SYN, 0)), Verdict::New);
    let stats = ct.ct.stats();
    assert_eq!(stats.zone(1).sessions, 2);
    assert_eq!((stats.zone(1).evicted, stats.zone(1).refused), (1, 1));
    assert_eq!(stats.zone(2).sessions, 1);
    assert_eq!(ct.ct.zone_len(0), 1);
    assert_eq!(ct.ct.check(), Ok(()));
}

/// A million SYNs from random sources in vectors of 256, each vector
/// with the 1,000 established connections' traffic mixed in: every
/// established packet passes, the table never holds more than its
/// capacity, its memory does not change, and the flood churns through
/// the embryonic room only.
#[test]
fn a_syn_flood_neither_grows_the_table_nor_evicts_established_connections() {
    let capacity = 20_000u32;
    let mut ct = Ct::new(CtConfig {
        capacity,
        ..CtConfig::default()
    });
    let memory = ct.ct.memory();
    let est: Vec<Tuple> = (0..1000)
        .map(|i| key(0x0b00_0000 + i, 1000 + i, 0))
        .collect();
    for &k in &est {
        ct.establish(k);
    }
    let mut seqs = vec![101u32; est.len()];
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut sent = 0u32;
    let mut round = 0usize;
    while sent < 1_000_000 {
        // 200 flood SYNs and 56 established packets a vector.
        let mut v = Vec::with_capacity(256);
        let mut which = Vec::new();
        for _ in 0..200 {
            let r = next();
            v.push(seg(
                key(r as u32 | 0x8000_0000, (r >> 32) as u32 & 0xffff, 0),
                r as u32,
                0,
                SYN,
                0,
            ));
        }
        for j in 0..56 {
            let e = (round * 56 + j) % est.len();
            v.push(seg(est[e], seqs[e], 501, ACK, 100));
            seqs[e] += 100;
            which.push(e);
        }
        let verdicts = ct.send(&v).to_vec();
        assert!(
            verdicts[200..]
                .iter()
                .all(|v| *v == Verdict::Tracked { reply: false }),
            "round {round}"
        );
        assert!(ct.ct.len() <= capacity as usize);
        sent += 200;
        round += 1;
        ct.now += 1; // 1 ms a vector
    }
    assert_eq!(ct.ct.memory(), memory);
    assert_eq!(ct.ct.len(), capacity as usize);
    let s = ct.ct.stats().total.snapshot();
    assert_eq!(s.created, 1000 + 1_000_000);
    // Everything the flood made beyond the room left, none refused.
    assert_eq!(s.evicted, 1_000_000 - u64::from(capacity - 1000));
    assert_eq!(s.refused, 0);
    for &k in &est {
        assert!(ct.ct.lookup(&k).is_some());
    }
    assert_eq!(ct.ct.check(), Ok(()));
    // The half-open sessions time out; the established stay.
    ct.wait(Duration::from_secs(31));
    assert_eq!(ct.ct.len(), est.len());
    assert_eq!(ct.ct.embryonic(), 0);
}

#[test]
fn nothing_lingers_once_every_timeout_has_passed() {
    let mut ct = Ct::new(CtConfig {
        capacity: 5000,
        expire_budget: 64,
        ..CtConfig::default()
    });
    for i in 0..2000 {
        ct.establish(key(i, 7, 0));
        ct.now += 3;
    }
    for i in 2000..4000 {
        assert_eq!(ct.one(seg(key(i, 7, 0), 0, 0, SYN, 0)), Verdict::New);
    }
    assert_eq!(ct.ct.len(), 4000);
    // Driven only by vectors, a budget of 64 each: time passes, traffic
    // of unrelated new flows (denied) keeps the vectors coming.
    let mut v = Vec::new();
    for _ in 0..200 {
        ct.now += 60_000;
        ct.ct.track(
            ct.now,
            &[seg(key(99_999, 1, 0), 5, 5, ACK, 0)],
            &[false],
            &mut v,
        );
    }
    assert!(ct.ct.is_empty(), "{} left", ct.ct.len());
    let s = ct.ct.stats().total.snapshot();
    assert_eq!((s.sessions, s.expired), (0, 4000));
    assert_eq!(ct.ct.check(), Ok(()));
}

fn arb_packet() -> impl Strategy<Value = (u8, bool, u8, u32, u32, u16, u32, u8, u64)> {
    (
        0u8..6,        // flow
        any::<bool>(), // reply direction
        0u8..4,        // protocol kind
        0u32..3000,    // seq offset
        0u32..3000,    // ack offset
        any::<u16>(),  // window
        0u32..1500,    // payload
        any::<u8>(),   // flags
        0u64..200_000, // ms to wait first
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn random_packets_never_panic_or_overfill_the_table(
        pkts in prop::collection::vec(arb_packet(), 1..300),
        capacity in 1u32..6,
    ) {
        let mut ct = Ct::new(CtConfig { capacity, zones: 2, zone_limit: 3, ..CtConfig::default() });
        for (flow, reply, kind, seq, ack, win, data, flags, wait) in pkts {
            ct.now += wait;
            let mut k = Tuple {
                src: u128::from(flow),
                dst: 100,
                sport: u32::from(flow) * 7,
                dport: 80,
                proto: [6, 17, 1, 58][usize::from(kind)],
                v6: kind == 3,
                zone: u16::from(flow % 2),
            };
            let l4 = match kind {
                0 => L4::Tcp(TcpInfo {
                    seq: 1000 + seq,
                    ack: 1000 + ack,
                    win,
                    flags: flags & 0x3f,
                    len: data + u32::from(flags & 3 != 0),
                    wscale: (flags & 0x80 != 0).then_some(flags & 15),
                }),
                1 => L4::Datagram,
                _ => {
                    k.dport = 1 << 16;
                    if flags & 1 != 0 { L4::Error } else { L4::Echo { request: !reply } }
                }
            };
            if reply {
                k = k.reversed();
            }
            let allow = flags & 0x40 == 0;
            ct.ct.track(ct.now, &[Ok(Parsed { key: k, l4 })], &[allow], &mut ct.v);
            prop_assert!(ct.ct.len() <= capacity as usize);
        }
        prop_assert_eq!(ct.ct.check(), Ok(()));
        ct.wait(Duration::from_secs(3601));
        prop_assert!(ct.ct.is_empty());
        prop_assert_eq!(ct.ct.check(), Ok(()));
    }
}
