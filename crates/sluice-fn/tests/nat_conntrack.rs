//! The connection table's part in NAT: a session whose reply key is not
//! its original key turned around is found by the translated reply and
//! not by the untranslated one, keeps its index whole, and leaves nothing
//! behind when it expires.

use std::time::Duration;

use sluice_fn::conntrack::{
    ConnTrack, CtConfig, NatSide, Refusal, ReplyNat, Tuple, Verdict, parse4,
};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [198, 51, 100, 9];
const Y: [u8; 4] = [203, 0, 113, 1];

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, 17, 0, 0];
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    let mut h = vec![0u8; 16];
    h[0..2].copy_from_slice(&sport.to_be_bytes());
    h[2..4].copy_from_slice(&dport.to_be_bytes());
    h[4..6].copy_from_slice(&16u16.to_be_bytes());
    p.extend_from_slice(&h);
    p
}

fn send(ct: &mut ConnTrack, now: u64, pkt: &[u8], allow: bool, nat: ReplyNat) -> Verdict {
    let mut v = Vec::new();
    ct.track_nat(now, &[parse4(pkt)], &[allow], &[nat], &mut v);
    v[0]
}

fn addr(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

#[test]
fn a_translated_reply_key_finds_its_session_until_it_expires() {
    let mut ct = ConnTrack::new(&CtConfig {
        capacity: 16,
        seed: 7,
        ..CtConfig::default()
    })
    .unwrap();
    let snat = ReplyNat {
        side: NatSide::Dst,
        addr: addr(Y),
        port: 6000,
    };
    let now = 1_000_000;
    // A:5353 -> B:53 leaves as Y:6000 -> B:53.
    assert_eq!(
        send(&mut ct, now, &udp(A, B, 5353, 53), true, snat),
        Verdict::New
    );
    ct.check().unwrap();
    // B answers Y:6000: the session's reply.
    let reply = udp(B, Y, 53, 6000);
    assert_eq!(
        send(&mut ct, now, &reply, false, ReplyNat::NONE),
        Verdict::Tracked { reply: true }
    );
    let (s, is_reply) = ct.session(&parse4(&reply).unwrap().key).unwrap();
    assert!(is_reply);
    assert_eq!(s.nat, snat);
    assert_eq!(s.orig.sport, 5353);
    // The untranslated answer is no reply of it: a new flow, denied.
    assert_eq!(
        send(&mut ct, now, &udp(B, A, 53, 5353), false, ReplyNat::NONE),
        Verdict::Drop(Refusal::NewDenied)
    );
    // The original direction still finds it, its nat ignored.
    assert_eq!(
        send(&mut ct, now, &udp(A, B, 5353, 53), true, ReplyNat::NONE),
        Verdict::Tracked { reply: false }
    );
    // A plain session beside it.
    assert_eq!(
        send(&mut ct, now, &udp(A, B, 1000, 53), true, ReplyNat::NONE),
        Verdict::New
    );
    assert_eq!(
        send(&mut ct, now, &udp(B, A, 53, 1000), false, ReplyNat::NONE),
        Verdict::Tracked { reply: true }
    );
    ct.check().unwrap();
    // Expiry removes both index entries: the reply key is free again.
    let later = now + Duration::from_secs(200).as_millis() as u64;
    ct.expire(later, usize::MAX);
    assert!(ct.is_empty());
    ct.check().unwrap();
    let key = Tuple {
        src: addr(B).into(),
        dst: addr(Y).into(),
        sport: 53,
        dport: 6000,
        proto: 17,
        v6: false,
        zone: 0,
    };
    assert!(ct.session(&key).is_none());
    assert_eq!(
        send(&mut ct, later, &udp(A, B, 5354, 53), true, snat),
        Verdict::New
    );
    assert!(ct.session(&key).is_some());
    ct.check().unwrap();
}
