//! Connection tracking on crafted packets: the TCP state machine and its
//! windows, UDP and ICMP echo pseudo-connections, ICMP errors related to
//! a flow or not, and every state's timeout with the clock driven by the
//! test. Packets are written byte by byte and read by `parse4`/`parse6`,
//! as the node reads them.

use std::time::Duration;

use sluice_fn::conntrack::{
    ConnTrack, CtConfig, Invalid, Kind, Refusal, TcpInvalid, TcpState, Timeouts, Tuple, Verdict,
    parse4, parse6,
};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 9, 0, 1];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;

fn ip4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    p[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(l4);
    p
}

struct Seg {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    win: u16,
    wscale: Option<u8>,
    data: usize,
}

fn tcp(s: &Seg) -> Vec<u8> {
    let opts: Vec<u8> = match s.wscale {
        Some(w) => vec![1, 3, 3, w],
        None => vec![],
    };
    let mut h = vec![0u8; 20];
    h[0..2].copy_from_slice(&s.sport.to_be_bytes());
    h[2..4].copy_from_slice(&s.dport.to_be_bytes());
    h[4..8].copy_from_slice(&s.seq.to_be_bytes());
    h[8..12].copy_from_slice(&s.ack.to_be_bytes());
    h[12] = (((20 + opts.len()) / 4) as u8) << 4;
    h[13] = s.flags;
    h[14..16].copy_from_slice(&s.win.to_be_bytes());
    h.extend_from_slice(&opts);
    h.extend(std::iter::repeat_n(0xab, s.data));
    h
}

fn udp(sport: u16, dport: u16) -> Vec<u8> {
    let mut h = vec![0u8; 8 + 16];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&24u16.to_be_bytes());
    h
}

fn echo(t: u8, id: u16) -> Vec<u8> {
    let mut h = vec![t, 0, 0, 0, 0, 0, 0, 1];
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&[0x55; 16]);
    h
}

/// An ICMP error of type `t`, code `c`, quoting the start of `quoted`.
fn icmp_error(t: u8, c: u8, quoted: &[u8]) -> Vec<u8> {
    let mut h = vec![t, c, 0, 0, 0, 0, 0, 0];
    h.extend_from_slice(&quoted[..quoted.len().min(28)]);
    h
}

/// A tracker and its clock (milliseconds).
struct Ct {
    ct: ConnTrack,
    now: u64,
}

impl Ct {
    fn new() -> Ct {
        Ct::with(CtConfig {
            capacity: 1024,
            seed: 42,
            ..CtConfig::default()
        })
    }

    fn with(cfg: CtConfig) -> Ct {
        Ct {
            ct: ConnTrack::new(&cfg).unwrap(),
            now: 1_000_000,
        }
    }

    fn send_as(&mut self, pkt: &[u8], allow: bool) -> Verdict {
        let p = if pkt[0] >> 4 == 6 {
            parse6(pkt)
        } else {
            parse4(pkt)
        };
        let mut v = Vec::new();
        self.ct.track(self.now, &[p], &[allow], &mut v);
        v[0]
    }

    /// A packet from a side allowed to open connections.
    fn send(&mut self, pkt: &[u8]) -> Verdict {
        self.send_as(pkt, true)
    }

    fn wait(&mut self, d: Duration) {
        self.now += d.as_millis() as u64;
        self.ct.expire(self.now, usize::MAX);
    }

    fn state(&self, key: &Tuple) -> Option<Kind> {
        self.ct.lookup(key).map(|(k, _)| k)
    }
}

fn key4(src: [u8; 4], dst: [u8; 4], sport: u32, dport: u32, proto: u8) -> Tuple {
    Tuple {
        src: u128::from(u32::from_be_bytes(src)),
        dst: u128::from(u32::from_be_bytes(dst)),
        sport,
        dport,
        proto,
        v6: false,
        zone: 0,
    }
}

const ISN_A: u32 = 0xfffff000; // wraps during the test
const ISN_B: u32 = 1_000_000;

/// A's segment to B.
fn a2b(seq_off: u32, ack_off: u32, flags: u8, data: usize) -> Vec<u8> {
    ip4(
        A,
        B,
        6,
        &tcp(&Seg {
            sport: 40000,
            dport: 80,
            seq: ISN_A.wrapping_add(seq_off),
            ack: ISN_B.wrapping_add(ack_off),
            flags,
            win: 1000,
            wscale: None,
            data,
        }),
    )
}

/// B's segment to A.
fn b2a(seq_off: u32, ack_off: u32, flags: u8, data: usize) -> Vec<u8> {
    ip4(
        B,
        A,
        6,
        &tcp(&Seg {
            sport: 80,
            dport: 40000,
            seq: ISN_B.wrapping_add(seq_off),
            ack: ISN_A.wrapping_add(ack_off),
            flags,
            win: 2000,
            wscale: None,
            data,
        }),
    )
}

fn flow() -> Tuple {
    key4(A, B, 40000, 80, 6)
}

fn tcp_state(ct: &Ct) -> Option<TcpState> {
    match ct.state(&flow()) {
        Some(Kind::Tcp(s)) => Some(s),
        None => None,
        other => panic!("not TCP: {other:?}"),
    }
}

/// The three-way handshake: SYN, SYN-ACK, ACK.
fn handshake(ct: &mut Ct) {
    assert_eq!(ct.send(&a2b(0, 0, SYN, 0)), Verdict::New);
    assert_eq!(tcp_state(ct), Some(TcpState::SynSent));
    assert_eq!(
        ct.send(&b2a(0, 1, SYN | ACK, 0)),
        Verdict::Tracked { reply: true }
    );
    assert_eq!(tcp_state(ct), Some(TcpState::SynRecv));
    assert_eq!(
        ct.send(&a2b(1, 1, ACK, 0)),
        Verdict::Tracked { reply: false }
    );
    assert_eq!(tcp_state(ct), Some(TcpState::Established));
}

fn invalid(e: TcpInvalid) -> Verdict {
    Verdict::Drop(Refusal::Invalid(Invalid::Tcp(e)))
}

#[test]
fn a_handshake_establishes_and_data_in_the_window_passes_both_ways() {
    let mut ct = Ct::new();
    handshake(&mut ct);
    // 500 bytes from A (sequence numbers wrap past 2^32), 900 from B
    // (A's window is 1000: 1500 would not fit).
    assert!(ct.send(&a2b(1, 1, ACK | PSH, 500)).passes());
    assert!(!ct.send(&b2a(1, 501, ACK | PSH, 1500)).passes());
    assert!(ct.send(&b2a(1, 501, ACK | PSH, 900)).passes());
    assert!(ct.send(&a2b(501, 901, ACK, 0)).passes());
    // A retransmission of old data is still in the window.
    assert!(ct.send(&a2b(1, 901, ACK | PSH, 500)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::Established));
    assert_eq!(ct.ct.check(), Ok(()));
}

#[test]
fn data_or_acks_outside_the_window_are_invalid_and_change_nothing() {
    let mut ct = Ct::new();
    handshake(&mut ct);
    // Beyond what B allowed (its window is 2000).
    assert_eq!(
        ct.send(&a2b(1_000_000, 1, ACK, 100)),
        invalid(TcpInvalid::OutOfWindow)
    );
    assert_eq!(
        ct.send(&a2b(1999, 1, ACK, 100)),
        invalid(TcpInvalid::OutOfWindow)
    );
    // Far behind.
    assert_eq!(
        ct.send(&a2b(1u32.wrapping_sub(500_000), 1, ACK, 100)),
        invalid(TcpInvalid::OutOfWindow)
    );
    // Acknowledging data B never sent.
    assert_eq!(
        ct.send(&a2b(1, 5000, ACK, 0)),
        invalid(TcpInvalid::OutOfWindow)
    );
    // The edge of the window passes.
    assert!(ct.send(&a2b(1, 1, ACK, 2000)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::Established));
}

#[test]
fn bad_flags_and_a_first_segment_that_is_not_a_syn_are_invalid() {
    let mut ct = Ct::new();
    assert_eq!(ct.send(&a2b(0, 0, ACK, 10)), invalid(TcpInvalid::NotSyn));
    assert_eq!(
        ct.send(&a2b(0, 0, SYN | FIN, 0)),
        invalid(TcpInvalid::BadFlags)
    );
    assert_eq!(ct.send(&a2b(0, 0, 0, 0)), invalid(TcpInvalid::BadFlags));
    assert!(ct.ct.is_empty());
    handshake(&mut ct);
    assert_eq!(ct.send(&a2b(1, 1, FIN, 0)), invalid(TcpInvalid::BadFlags));
    // A SYN-ACK from the side that opened.
    assert_eq!(
        ct.send(&a2b(1, 1, SYN | ACK, 0)),
        invalid(TcpInvalid::Unexpected)
    );
}

#[test]
fn an_ack_before_the_syn_ack_is_unexpected() {
    let mut ct = Ct::new();
    assert_eq!(ct.send(&a2b(0, 0, SYN, 0)), Verdict::New);
    assert_eq!(ct.send(&b2a(0, 1, ACK, 0)), invalid(TcpInvalid::Unexpected));
    assert_eq!(ct.send(&a2b(1, 1, ACK, 0)), invalid(TcpInvalid::Unexpected));
    assert_eq!(tcp_state(&ct), Some(TcpState::SynSent));
}

#[test]
fn a_rst_in_the_window_closes_and_one_outside_is_invalid() {
    let mut ct = Ct::new();
    handshake(&mut ct);
    assert_eq!(
        ct.send(&b2a(100_000, 1, RST, 0)),
        invalid(TcpInvalid::RstOutOfWindow)
    );
    assert_eq!(
        ct.send(&b2a(1u32.wrapping_sub(100_000), 1, RST | ACK, 0)),
        invalid(TcpInvalid::RstOutOfWindow)
    );
    assert_eq!(tcp_state(&ct), Some(TcpState::Established));
    assert!(ct.send(&b2a(1, 1, RST | ACK, 0)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::Close));
    // CLOSE lasts 10 s, though established had an hour left.
    ct.wait(Duration::from_millis(9_900));
    assert_eq!(tcp_state(&ct), Some(TcpState::Close));
    ct.wait(Duration::from_millis(200));
    assert_eq!(tcp_state(&ct), None);
    assert_eq!(ct.ct.stats().total.snapshot().expired, 1);
}

#[test]
fn a_refused_syn_closes_only_with_the_right_acknowledgment() {
    let mut ct = Ct::new();
    assert_eq!(ct.send(&a2b(0, 0, SYN, 0)), Verdict::New);
    // A blind reset guessing wrong.
    assert_eq!(
        ct.send(&b2a(0, 7, RST | ACK, 0)),
        invalid(TcpInvalid::RstOutOfWindow)
    );
    assert_eq!(
        ct.send(&b2a(0, 1, RST | ACK, 0)),
        Verdict::Tracked { reply: true }
    );
    assert_eq!(tcp_state(&ct), Some(TcpState::Close));
}

#[test]
fn fin_and_acks_walk_to_time_wait_which_expires() {
    let mut ct = Ct::new();
    handshake(&mut ct);
    assert!(ct.send(&a2b(1, 1, FIN | ACK, 0)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::FinWait));
    // B acknowledges the FIN (A's end is 2 now).
    assert!(ct.send(&b2a(1, 2, ACK, 0)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::CloseWait));
    // B still sends, then closes.
    assert!(ct.send(&b2a(1, 2, ACK | PSH, 100)).passes());
    assert!(ct.send(&b2a(101, 2, FIN | ACK, 0)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::LastAck));
    assert!(ct.send(&a2b(2, 102, ACK, 0)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::TimeWait));
    ct.wait(Duration::from_secs(119));
    assert_eq!(tcp_state(&ct), Some(TcpState::TimeWait));
    ct.wait(Duration::from_secs(2));
    assert_eq!(tcp_state(&ct), None);
    assert!(ct.ct.is_empty());
    assert_eq!(ct.ct.check(), Ok(()));
}

#[test]
fn a_syn_reopens_a_connection_in_time_wait() {
    let mut ct = Ct::new();
    handshake(&mut ct);
    assert!(ct.send(&a2b(1, 1, FIN | ACK, 0)).passes());
    assert!(ct.send(&b2a(1, 2, FIN | ACK, 0)).passes());
    assert!(ct.send(&a2b(2, 2, ACK, 0)).passes());
    assert_eq!(tcp_state(&ct), Some(TcpState::TimeWait));
    // Not from a side that may open: denied, still TIME_WAIT.
    assert_eq!(
        ct.send_as(&a2b(50_000, 0, SYN, 0), false),
        Verdict::Drop(Refusal::NewDenied)
    );
    assert_eq!(ct.send(&a2b(50_000, 0, SYN, 0)), Verdict::New);
    assert_eq!(tcp_state(&ct), Some(TcpState::SynSent));
    assert_eq!(
        ct.send(&b2a(7, 50_001, SYN | ACK, 0)),
        Verdict::Tracked { reply: true }
    );
    assert_eq!(
        ct.send(&a2b(50_001, 8, ACK, 0)),
        Verdict::Tracked { reply: false }
    );
    assert_eq!(tcp_state(&ct), Some(TcpState::Established));
    assert_eq!(ct.ct.len(), 1);
}

/// Window scaling: with both sides offering a shift, a window of 1000
/// scaled by 2^7 lets 100,000 bytes in flight; with one side only, the
/// windows are not scaled and the same segment is out of the window.
#[test]
fn window_scale_counts_only_when_both_sides_offer_it() {
    for (a_scale, b_scale, passes) in [(Some(7), Some(7), true), (Some(7), None, false)] {
        let mut ct = Ct::new();
        let seg = |from_a: bool, seq: u32, ack: u32, flags: u8, wscale, data| {
            let (src, dst, sport, dport, isn_s, isn_r) = if from_a {
                (A, B, 40000, 80, ISN_A, ISN_B)
            } else {
                (B, A, 80, 40000, ISN_B, ISN_A)
            };
            ip4(
                src,
                dst,
                6,
                &tcp(&Seg {
                    sport,
                    dport,
                    seq: isn_s.wrapping_add(seq),
                    ack: isn_r.wrapping_add(ack),
                    flags,
                    win: 1000,
                    wscale,
                    data,
                }),
            )
        };
        assert_eq!(ct.send(&seg(true, 0, 0, SYN, a_scale, 0)), Verdict::New);
        assert!(ct.send(&seg(false, 0, 1, SYN | ACK, b_scale, 0)).passes());
        assert!(ct.send(&seg(true, 1, 1, ACK, None, 0)).passes());
        // B acknowledges with a window of 1000 (scaled: 128,000).
        assert!(ct.send(&seg(false, 1, 1, ACK, None, 0)).passes());
        // A sends a segment ending 100,001 bytes on (several segments in
        // flight, the last one checked).
        let far = seg(true, 99_001, 1, ACK, None, 1000);
        assert_eq!(
            ct.send(&far).passes(),
            passes,
            "scales {a_scale:?} {b_scale:?}"
        );
    }
}

#[test]
fn every_state_expires_after_its_own_timeout() {
    let t = Timeouts::default();
    // How to reach each state from nothing.
    let steps: Vec<(TcpState, Vec<Vec<u8>>)> = vec![
        (TcpState::SynSent, vec![a2b(0, 0, SYN, 0)]),
        (
            TcpState::SynRecv,
            vec![a2b(0, 0, SYN, 0), b2a(0, 1, SYN | ACK, 0)],
        ),
        (
            TcpState::Established,
            vec![
                a2b(0, 0, SYN, 0),
                b2a(0, 1, SYN | ACK, 0),
                a2b(1, 1, ACK, 0),
            ],
        ),
        (
            TcpState::FinWait,
            vec![
                a2b(0, 0, SYN, 0),
                b2a(0, 1, SYN | ACK, 0),
                a2b(1, 1, ACK, 0),
                a2b(1, 1, FIN | ACK, 0),
            ],
        ),
        (
            TcpState::CloseWait,
            vec![
                a2b(0, 0, SYN, 0),
                b2a(0, 1, SYN | ACK, 0),
                a2b(1, 1, ACK, 0),
                a2b(1, 1, FIN | ACK, 0),
                b2a(1, 2, ACK, 0),
            ],
        ),
        (
            TcpState::LastAck,
            vec![
                a2b(0, 0, SYN, 0),
                b2a(0, 1, SYN | ACK, 0),
                a2b(1, 1, ACK, 0),
                a2b(1, 1, FIN | ACK, 0),
                b2a(1, 2, FIN | ACK, 0),
            ],
        ),
        (
            TcpState::TimeWait,
            vec![
                a2b(0, 0, SYN, 0),
                b2a(0, 1, SYN | ACK, 0),
                a2b(1, 1, ACK, 0),
                a2b(1, 1, FIN | ACK, 0),
                b2a(1, 2, FIN | ACK, 0),
                a2b(2, 2, ACK, 0),
            ],
        ),
        (
            TcpState::Close,
            vec![
                a2b(0, 0, SYN, 0),
                b2a(0, 1, SYN | ACK, 0),
                a2b(1, 1, ACK, 0),
                a2b(1, 1, RST, 0),
            ],
        ),
    ];
    for (state, pkts) in steps {
        let mut ct = Ct::new();
        for p in &pkts {
            assert!(ct.send(p).passes(), "{state:?}");
        }
        assert_eq!(tcp_state(&ct), Some(state));
        let timeout = t.tcp(state);
        ct.wait(timeout - Duration::from_millis(100));
        assert_eq!(tcp_state(&ct), Some(state), "{state:?} left early");
        ct.wait(Duration::from_millis(100));
        assert_eq!(tcp_state(&ct), None, "{state:?} lingers");
        assert_eq!(ct.ct.check(), Ok(()));
    }
}

#[test]
fn traffic_keeps_an_established_connection_past_its_timeout() {
    let mut ct = Ct::new();
    handshake(&mut ct);
    let mut seq = 1u32;
    // Five hours, a packet every 50 minutes.
    for _ in 0..6 {
        ct.wait(Duration::from_secs(50 * 60));
        assert!(ct.send(&a2b(seq, 1, ACK | PSH, 10)).passes());
        seq += 10;
    }
    assert_eq!(tcp_state(&ct), Some(TcpState::Established));
    ct.wait(Duration::from_secs(3601));
    assert_eq!(tcp_state(&ct), None);
}

#[test]
fn udp_is_a_pseudo_connection_with_a_longer_timeout_once_answered() {
    let mut ct = Ct::new();
    let q = ip4(A, B, 17, &udp(5353, 53));
    let r = ip4(B, A, 17, &udp(53, 5353));
    // An answer to nothing is a new flow from B (denied if B may not open).
    assert_eq!(ct.send_as(&r, false), Verdict::Drop(Refusal::NewDenied));
    assert_eq!(ct.send(&q), Verdict::New);
    assert_eq!(ct.ct.embryonic(), 1);
    ct.wait(Duration::from_secs(29));
    assert_eq!(ct.send_as(&r, false), Verdict::Tracked { reply: true });
    assert_eq!(ct.ct.embryonic(), 0);
    ct.wait(Duration::from_secs(119));
    assert_eq!(ct.state(&key4(A, B, 5353, 53, 17)), Some(Kind::Datagram));
    ct.wait(Duration::from_secs(2));
    assert!(ct.ct.is_empty());
    // Unanswered: 30 s.
    assert_eq!(ct.send(&q), Verdict::New);
    ct.wait(Duration::from_secs(31));
    assert!(ct.ct.is_empty());
}

#[test]
fn echo_replies_pass_only_for_requests_seen() {
    let mut ct = Ct::new();
    let unsolicited = Verdict::Drop(Refusal::Invalid(Invalid::Unsolicited));
    assert_eq!(ct.send(&ip4(B, A, 1, &echo(0, 7))), unsolicited);
    assert_eq!(ct.send(&ip4(A, B, 1, &echo(8, 7))), Verdict::New);
    assert_eq!(
        ct.send_as(&ip4(B, A, 1, &echo(0, 7)), false),
        Verdict::Tracked { reply: true }
    );
    // Another identifier, or a request from B with A's identifier, is not it.
    assert_eq!(ct.send(&ip4(B, A, 1, &echo(0, 8))), unsolicited);
    assert_eq!(
        ct.send_as(&ip4(B, A, 1, &echo(8, 7)), false),
        Verdict::Drop(Refusal::NewDenied)
    );
    ct.wait(Duration::from_secs(31));
    assert!(ct.ct.is_empty());
}

#[test]
fn an_icmp_error_quoting_a_tracked_flow_is_related_and_others_are_not() {
    let mut ct = Ct::new();
    let q = ip4(A, B, 17, &udp(5353, 53));
    assert_eq!(ct.send(&q), Verdict::New);
    // B's port is closed: B says so, quoting A's datagram.
    let unreach = ip4(B, A, 1, &icmp_error(3, 3, &q));
    assert_eq!(ct.send_as(&unreach, false), Verdict::Related);
    // A router on the way says the same about a flow nobody opened.
    let other = ip4(A, B, 17, &udp(5354, 53));
    let forged = ip4([10, 5, 5, 5], A, 1, &icmp_error(3, 3, &other));
    assert_eq!(
        ct.send_as(&forged, false),
        Verdict::Drop(Refusal::Invalid(Invalid::Unrelated))
    );
    // Time exceeded about a tracked TCP flow, and about an echo.
    handshake(&mut ct);
    let te = ip4([10, 5, 5, 5], A, 1, &icmp_error(11, 0, &a2b(1, 1, ACK, 0)));
    assert_eq!(ct.send_as(&te, false), Verdict::Related);
    let ping = ip4(A, B, 1, &echo(8, 99));
    assert_eq!(ct.send(&ping), Verdict::New);
    assert_eq!(
        ct.send_as(&ip4(B, A, 1, &icmp_error(3, 1, &ping)), false),
        Verdict::Related
    );
    // Related packets do not refresh the flow: it leaves on time.
    ct.wait(Duration::from_secs(31));
    assert_eq!(
        ct.send_as(&unreach, false),
        Verdict::Drop(Refusal::Invalid(Invalid::Unrelated))
    );
}

fn ip6(src: u128, dst: u128, next: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0, 0, 0, next, 64];
    p[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
    p.extend_from_slice(&src.to_be_bytes());
    p.extend_from_slice(&dst.to_be_bytes());
    p.extend_from_slice(l4);
    p
}

#[test]
fn ipv6_echo_tcp_and_related_errors() {
    let mut ct = Ct::new();
    let (a, b) = (0x2001_0db8_u128 << 96 | 1, 0x2001_0db8_0009_u128 << 80 | 1);
    assert_eq!(ct.send(&ip6(a, b, 58, &echo(128, 5))), Verdict::New);
    assert_eq!(
        ct.send_as(&ip6(b, a, 58, &echo(129, 5)), false),
        Verdict::Tracked { reply: true }
    );
    let syn = ip6(
        a,
        b,
        6,
        &tcp(&Seg {
            sport: 1,
            dport: 443,
            seq: 5,
            ack: 0,
            flags: SYN,
            win: 100,
            wscale: None,
            data: 0,
        }),
    );
    assert_eq!(ct.send(&syn), Verdict::New);
    let synack = ip6(
        b,
        a,
        6,
        &tcp(&Seg {
            sport: 443,
            dport: 1,
            seq: 9,
            ack: 6,
            flags: SYN | ACK,
            win: 100,
            wscale: None,
            data: 0,
        }),
    );
    assert_eq!(ct.send_as(&synack, false), Verdict::Tracked { reply: true });
    // Packet too big about the SYN: related.
    let mut ptb = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
    ptb.extend_from_slice(&syn[..48]);
    assert_eq!(ct.send_as(&ip6(b, a, 58, &ptb), false), Verdict::Related);
    // Neighbour solicitation: not tracked, passed.
    assert_eq!(
        ct.send_as(&ip6(a, b, 58, &[135, 0, 0, 0, 0, 0, 0, 0]), false),
        Verdict::Untracked
    );
    // The same addresses as IPv4-style keys do not meet the IPv6 session.
    assert_eq!(ct.ct.len(), 2);
}

/// A vector holding a whole handshake: the session the SYN makes is
/// found by the SYN-ACK behind it in the same vector, and a second SYN of
/// the same flow in that vector makes no second session.
#[test]
fn a_handshake_in_one_vector_is_tracked_in_order() {
    let mut ct = Ct::new();
    let pkts: Vec<_> = [
        a2b(0, 0, SYN, 0),
        a2b(0, 0, SYN, 0),
        b2a(0, 1, SYN | ACK, 0),
        a2b(1, 1, ACK, 0),
        a2b(1, 1, ACK | PSH, 100),
    ]
    .iter()
    .map(|p| parse4(p))
    .collect();
    let mut v = Vec::new();
    ct.ct
        .track(ct.now, &pkts, &[true, true, false, false, false], &mut v);
    assert_eq!(
        v,
        [
            Verdict::New,
            Verdict::Tracked { reply: false },
            Verdict::Tracked { reply: true },
            Verdict::Tracked { reply: false },
            Verdict::Tracked { reply: false },
        ]
    );
    assert_eq!(ct.ct.len(), 1);
    assert_eq!(tcp_state(&ct), Some(TcpState::Established));
}
