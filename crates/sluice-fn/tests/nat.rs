//! `ip4-nat` in a graph on crafted traffic: a TCP connection from the
//! inside leaves translated and its replies come back restored, UDP and
//! ICMP echo likewise, static port forwarding and one-to-one mappings,
//! an ICMP error about a translated flow, port exhaustion and the ports
//! coming back when their sessions expire, no buffer leaked. Every
//! checksum of every packet that comes out is recomputed by etherparse.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use etherparse::{
    Icmpv4Type, Ipv4HeaderSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice,
    icmpv4::TimeExceededCode,
};
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::conntrack::{Clock, ConnTrack, CtConfig, CtStats};
use sluice_fn::nat::{NatConfig, NatConfigError, NatNode, StaticMapping};
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};

const INSIDE: u32 = 0;
const OUTSIDE: u32 = 1;

const A: [u8; 4] = [10, 0, 0, 1];
const A2: [u8; 4] = [10, 0, 0, 2];
const SERVER: [u8; 4] = [10, 0, 0, 5];
const MAPPED: [u8; 4] = [10, 0, 0, 9];
const Y: [u8; 4] = [203, 0, 113, 1];
const Y9: [u8; 4] = [203, 0, 113, 9];
const R: [u8; 4] = [198, 51, 100, 7];
const R2: [u8; 4] = [198, 51, 100, 8];
const ROUTER: [u8; 4] = [192, 0, 2, 254];

type Out = Arc<Mutex<Vec<Vec<u8>>>>;

struct Sink(Out);

impl Node for Sink {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal("sink", &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut out = self.0.lock().unwrap();
        for p in input.iter() {
            out.push(p.data().to_vec());
        }
        cx.buffers.free_all(input);
    }
}

struct Net {
    pool: Pool,
    graph: Graph,
    out: Out,
    clock: Arc<AtomicU64>,
    stats: Arc<CtStats>,
}

fn config() -> NatConfig {
    NatConfig {
        pool: vec![Y.into()],
        statics: vec![
            StaticMapping::PortForward {
                proto: 6,
                outside: Y.into(),
                outside_port: 8080,
                inside: SERVER.into(),
                inside_port: 80,
            },
            StaticMapping::OneToOne {
                inside: MAPPED.into(),
                outside: Y9.into(),
            },
        ],
        ..NatConfig::default()
    }
}

fn net(cfg: NatConfig) -> Net {
    let pool = Pool::new(&PoolConfig {
        buffers: 1024,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let clock = Arc::new(AtomicU64::new(10_000));
    let ct = ConnTrack::new(&CtConfig {
        capacity: 256,
        ..CtConfig::default()
    })
    .unwrap();
    let node = NatNode::new(
        "ip4-nat",
        "sink",
        ct,
        &cfg,
        vec![true, false],
        Clock::Manual(clock.clone()),
    )
    .unwrap();
    let stats = node.stats();
    let out = Out::default();
    let mut b = GraphBuilder::new();
    b.add(Box::new(node)).unwrap();
    b.add(Box::new(Sink(out.clone()))).unwrap();
    let graph = b.build(0, pool.cache(64)).unwrap();
    Net {
        pool,
        graph,
        out,
        clock,
        stats,
    }
}

impl Net {
    /// Sends packets in on `rx_if` (one vector); returns what came out.
    fn send(&mut self, rx_if: u32, pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut f = Frame::new();
        for bytes in pkts {
            let mut p = self.graph.buffers().alloc_from(bytes).unwrap();
            p.meta_mut().rx_if = rx_if;
            f.push(p);
        }
        self.graph.inject("ip4-nat", &mut f).unwrap();
        std::mem::take(&mut *self.out.lock().unwrap())
    }

    /// Sends one packet; returns it translated, or `None` if dropped.
    fn one(&mut self, rx_if: u32, pkt: Vec<u8>) -> Option<Vec<u8>> {
        let mut got = self.send(rx_if, &[pkt]);
        assert!(got.len() <= 1);
        got.pop()
    }

    fn counter(&self, name: &str) -> u64 {
        runtime::error_rows(&[&*self.graph.stats()])
            .iter()
            .find(|e| e.node == "ip4-nat" && e.name == name)
            .map_or(0, |e| e.count)
    }

    fn wait_ms(&mut self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_millis(1));
        self.graph.run_once();
    }

    fn finish(self) {
        let Net { pool, graph, .. } = self;
        drop(graph);
        assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
    }
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    (seq, ack): (u32, u32),
    flags: u8,
    data: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 8192);
    if flags & SYN != 0 {
        b = b.syn();
    }
    if flags & ACK != 0 {
        b = b.ack(ack);
    }
    if flags & PSH != 0 {
        b = b.psh();
    }
    let mut v = Vec::new();
    b.write(&mut v, data).unwrap();
    v
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, data)
        .unwrap();
    v
}

fn echo(src: [u8; 4], dst: [u8; 4], request: bool, id: u16) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src, dst, 64);
    let b = if request {
        b.icmpv4_echo_request(id, 1)
    } else {
        b.icmpv4_echo_reply(id, 1)
    };
    let mut v = Vec::new();
    b.write(&mut v, b"ping payload").unwrap();
    v
}

/// What a packet that came out says, after every checksum in it was
/// recomputed and found right: addresses, and ports or echo identifier.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
}

fn seen(p: &[u8]) -> Seen {
    let s = SlicedPacket::from_ip(p).expect("parses");
    let Some(NetSlice::Ipv4(ip)) = &s.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "IPv4 checksum");
    let (src, dst) = (h.source, h.destination);
    let (sport, dport) = match &s.transport {
        Some(TransportSlice::Tcp(t)) => {
            assert_eq!(
                t.checksum(),
                t.calc_checksum_ipv4(src, dst).unwrap(),
                "TCP checksum"
            );
            (t.source_port(), t.destination_port())
        }
        Some(TransportSlice::Udp(u)) => {
            if u.checksum() != 0 {
                let want = u
                    .to_header()
                    .calc_checksum_ipv4_raw(src, dst, u.payload())
                    .unwrap();
                assert_eq!(u.checksum(), want, "UDP checksum");
            }
            (u.source_port(), u.destination_port())
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let hd = i.header();
            assert_eq!(
                hd.checksum,
                hd.icmp_type.calc_checksum(i.payload()),
                "ICMP checksum"
            );
            match i.icmp_type() {
                Icmpv4Type::EchoRequest(e) | Icmpv4Type::EchoReply(e) => (e.id, 0),
                _ => (0, 0),
            }
        }
        other => panic!("unexpected transport {other:?}"),
    };
    Seen {
        src,
        dst,
        sport,
        dport,
    }
}

fn at(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Seen {
    Seen {
        src,
        dst,
        sport,
        dport,
    }
}

#[test]
fn a_tcp_connection_leaves_translated_and_its_replies_come_back() {
    let mut n = net(config());
    let syn = n
        .one(INSIDE, tcp(A, R, 40000, 443, (100, 0), SYN, b""))
        .unwrap();
    // The pool address, the port kept.
    assert_eq!(seen(&syn), at(Y, 40000, R, 443));
    // Another host with the same port to the same server cannot keep it.
    let syn2 = n
        .one(INSIDE, tcp(A2, R, 40000, 443, (7, 0), SYN, b""))
        .unwrap();
    let s2 = seen(&syn2);
    assert_eq!((s2.src, s2.dst, s2.dport), (Y, R, 443));
    assert_ne!(s2.sport, 40000);
    assert!(s2.sport >= 1024);
    // The answers, to the outside address, reach each host.
    let sa = n
        .one(OUTSIDE, tcp(R, Y, 443, 40000, (900, 101), SYN | ACK, b""))
        .unwrap();
    assert_eq!(seen(&sa), at(R, 443, A, 40000));
    let sa2 = n
        .one(OUTSIDE, tcp(R, Y, 443, s2.sport, (50, 8), SYN | ACK, b""))
        .unwrap();
    assert_eq!(seen(&sa2), at(R, 443, A2, 40000));
    // Data both ways, in one vector with the handshake's end.
    let got = n.send(
        INSIDE,
        &[
            tcp(A, R, 40000, 443, (101, 901), ACK, b""),
            tcp(
                A,
                R,
                40000,
                443,
                (101, 901),
                ACK | PSH,
                b"GET / HTTP/1.1\r\n\r\n",
            ),
        ],
    );
    assert_eq!(got.len(), 2);
    for p in &got {
        assert_eq!(seen(p), at(Y, 40000, R, 443));
    }
    let data = n
        .one(
            OUTSIDE,
            tcp(R, Y, 443, 40000, (901, 119), ACK | PSH, &[0x5a; 1000]),
        )
        .unwrap();
    assert_eq!(seen(&data), at(R, 443, A, 40000));
    assert_eq!(&data[40..], &[0x5a; 1000][..], "payload untouched");
    // Unsolicited from the outside: nothing to translate to.
    assert!(
        n.one(OUTSIDE, tcp(R, Y, 443, 5555, (1, 0), SYN, b""))
            .is_none()
    );
    assert_eq!(n.counter("no-session"), 1);
    // An untranslated reply (to the inside address) is no session's: a
    // segment of no connection that is not a SYN.
    assert!(
        n.one(OUTSIDE, tcp(R, A, 443, 40000, (901, 119), ACK, b""))
            .is_none()
    );
    assert_eq!(n.counter("invalid"), 1);
    assert_eq!(n.stats.total.snapshot().sessions, 2);
    n.finish();
}

#[test]
fn udp_and_icmp_echo_are_translated_both_ways() {
    let mut n = net(config());
    let q = n.one(INSIDE, udp(A, R, 5353, 53, b"query")).unwrap();
    assert_eq!(seen(&q), at(Y, 5353, R, 53));
    let a = n.one(OUTSIDE, udp(R, Y, 53, 5353, b"answer")).unwrap();
    assert_eq!(seen(&a), at(R, 53, A, 5353));
    // UDP without a checksum stays without one.
    let mut bare = udp(A, R, 6000, 53, b"x");
    bare[26] = 0;
    bare[27] = 0;
    let out = n.one(INSIDE, bare).unwrap();
    assert_eq!(&out[26..28], &[0, 0]);
    assert_eq!(seen(&out).src, Y);
    // Echo identifier 7 is outside the port range: it changes, and the
    // reply gets it back.
    let req = n.one(INSIDE, echo(A, R, true, 7)).unwrap();
    let s = seen(&req);
    assert_eq!((s.src, s.dst), (Y, R));
    assert!(s.sport >= 1024, "identifier {}", s.sport);
    let rep = n.one(OUTSIDE, echo(R, Y, false, s.sport)).unwrap();
    assert_eq!(seen(&rep), at(R, 7, A, 0));
    // A reply with another identifier answers nothing.
    assert!(n.one(OUTSIDE, echo(R, Y, false, 7)).is_none());
    n.finish();
}

#[test]
fn static_port_forwarding_and_one_to_one_mappings() {
    let mut n = net(config());
    // R connects to Y:8080, which is the server's port 80.
    let syn = n
        .one(OUTSIDE, tcp(R, Y, 5000, 8080, (1, 0), SYN, b""))
        .unwrap();
    assert_eq!(seen(&syn), at(R, 5000, SERVER, 80));
    let sa = n
        .one(INSIDE, tcp(SERVER, R, 80, 5000, (70, 2), SYN | ACK, b""))
        .unwrap();
    assert_eq!(seen(&sa), at(Y, 8080, R, 5000));
    // Other ports of Y are not forwarded; UDP to 8080 neither.
    assert!(
        n.one(OUTSIDE, tcp(R, Y, 5000, 8081, (1, 0), SYN, b""))
            .is_none()
    );
    assert!(n.one(OUTSIDE, udp(R, Y, 5000, 8080, b"x")).is_none());
    // The one-to-one host leaves as Y9 with its port, and any port of Y9
    // reaches it.
    let out = n
        .one(INSIDE, tcp(MAPPED, R, 1234, 80, (1, 0), SYN, b""))
        .unwrap();
    assert_eq!(seen(&out), at(Y9, 1234, R, 80));
    let inb = n
        .one(OUTSIDE, tcp(R2, Y9, 6000, 22, (1, 0), SYN, b""))
        .unwrap();
    assert_eq!(seen(&inb), at(R2, 6000, MAPPED, 22));
    let back = n
        .one(INSIDE, tcp(MAPPED, R2, 22, 6000, (5, 2), SYN | ACK, b""))
        .unwrap();
    assert_eq!(seen(&back), at(Y9, 22, R2, 6000));
    let ping = n.one(OUTSIDE, echo(R2, Y9, true, 99)).unwrap();
    assert_eq!(seen(&ping), at(R2, 99, MAPPED, 0));
    let pong = n.one(INSIDE, echo(MAPPED, R2, false, 99)).unwrap();
    assert_eq!(seen(&pong), at(Y9, 99, R2, 0));
    n.finish();
}

#[test]
fn an_icmp_error_about_a_translated_flow_reaches_the_inside_host() {
    let mut n = net(config());
    let syn = n
        .one(INSIDE, tcp(A, R, 40000, 443, (100, 0), SYN, b""))
        .unwrap();
    // A router on the way says time exceeded, quoting the SYN as it saw it.
    let mut err = Vec::new();
    PacketBuilder::ipv4(ROUTER, Y, 64)
        .icmpv4(Icmpv4Type::TimeExceeded(
            TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut err, &syn[..28])
        .unwrap();
    let got = n.one(OUTSIDE, err).unwrap();
    let s = seen(&got);
    assert_eq!((s.src, s.dst), (ROUTER, A));
    // The quote is the SYN as A sent it.
    let quote = &got[28..];
    let q = Ipv4HeaderSlice::from_slice(quote).unwrap().to_header();
    assert_eq!((q.source, q.destination), (A, R));
    assert_eq!(
        q.header_checksum,
        q.calc_header_checksum(),
        "quoted IPv4 checksum"
    );
    assert_eq!(u16::from_be_bytes([quote[20], quote[21]]), 40000);
    // A ping dies on the way: the error quotes the whole translated
    // request, and A gets it back with its own identifier, the quoted
    // echo's checksum still right.
    let req = n.one(INSIDE, echo(A, R, true, 7)).unwrap();
    let mut err = Vec::new();
    PacketBuilder::ipv4(ROUTER, Y, 64)
        .icmpv4(Icmpv4Type::TimeExceeded(
            TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut err, &req)
        .unwrap();
    let got = n.one(OUTSIDE, err).unwrap();
    assert_eq!(seen(&got).dst, A);
    let inner = seen(&got[28..]);
    assert_eq!(inner, at(A, 7, R, 0));
    // An error about something never translated is dropped.
    let mut stray = Vec::new();
    PacketBuilder::ipv4(ROUTER, Y, 64)
        .icmpv4(Icmpv4Type::TimeExceeded(
            TimeExceededCode::TtlExceededInTransit,
        ))
        .write(&mut stray, &tcp(Y, R2, 1, 2, (3, 0), SYN, b"")[..28])
        .unwrap();
    assert!(n.one(OUTSIDE, stray).is_none());
    assert_eq!(n.counter("icmp-unrelated"), 1);
    n.finish();
}

#[test]
fn an_icmp_error_from_the_inside_host_leaves_translated() {
    let mut n = net(config());
    // Port 500 is below the range: it is translated.
    let q = n.one(INSIDE, udp(A, R, 500, 53, b"query")).unwrap();
    let port = seen(&q).sport;
    assert_ne!(port, 500);
    let answer = n.one(OUTSIDE, udp(R, Y, 53, port, b"answer")).unwrap();
    // A has closed its socket: port unreachable, quoting the answer as
    // A received it (to A:500).
    let mut err = Vec::new();
    PacketBuilder::ipv4(A, R, 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ))
        .write(&mut err, &answer[..28])
        .unwrap();
    let got = n.one(INSIDE, err).unwrap();
    let s = seen(&got);
    assert_eq!((s.src, s.dst), (Y, R));
    // R sees its answer as it sent it: to Y and the translated port.
    let quote = &got[28..];
    let qh = Ipv4HeaderSlice::from_slice(quote).unwrap().to_header();
    assert_eq!((qh.source, qh.destination), (R, Y));
    assert_eq!(qh.header_checksum, qh.calc_header_checksum());
    assert_eq!(u16::from_be_bytes([quote[22], quote[23]]), port);
    n.finish();
}

#[test]
fn ports_run_out_are_counted_and_come_back_when_sessions_expire() {
    let mut n = net(NatConfig {
        pool: vec![Y.into()],
        ports: 2000..=2003,
        ..NatConfig::default()
    });
    // Four flows to R:53 take the four ports, in one vector.
    let flows: Vec<Vec<u8>> = (0..4u16).map(|i| udp(A, R, 3000 + i, 53, b"q")).collect();
    let got = n.send(INSIDE, &flows);
    assert_eq!(got.len(), 4);
    let mut ports: Vec<u16> = got.iter().map(|p| seen(p).sport).collect();
    ports.sort_unstable();
    assert_eq!(ports, [2000, 2001, 2002, 2003]);
    // A fifth is refused; a flow to another server can reuse a port.
    assert!(n.one(INSIDE, udp(A, R, 3004, 53, b"q")).is_none());
    assert_eq!(n.counter("nat-no-port"), 1);
    let other = n.one(INSIDE, udp(A, R2, 3004, 53, b"q")).unwrap();
    assert!((2000..=2003).contains(&seen(&other).sport));
    // Unanswered UDP lasts 30 s: then the ports are free again.
    n.wait_ms(29_000);
    assert!(n.one(INSIDE, udp(A, R, 3005, 53, b"q")).is_none());
    assert_eq!(n.counter("nat-no-port"), 2);
    n.wait_ms(2_000);
    assert_eq!(n.stats.total.snapshot().sessions, 0);
    let again = n.send(
        INSIDE,
        &(5..9u16)
            .map(|i| udp(A, R, 3000 + i, 53, b"q"))
            .collect::<Vec<_>>(),
    );
    assert_eq!(again.len(), 4);
    assert_eq!(n.counter("nat-no-port"), 2);
    n.finish();
}

#[test]
fn a_configuration_that_cannot_work_is_refused() {
    let bad = |cfg: NatConfig| {
        NatNode::new(
            "ip4-nat",
            "sink",
            ConnTrack::new(&CtConfig::default()).unwrap(),
            &cfg,
            vec![],
            Clock::Manual(Default::default()),
        )
        .map(|_| ())
    };
    assert_eq!(bad(NatConfig::default()), Err(NatConfigError::Nothing));
    let y: Ipv4Addr = Y.into();
    assert_eq!(
        bad(NatConfig {
            pool: vec![y],
            max_probes: 0,
            ..NatConfig::default()
        }),
        Err(NatConfigError::NoProbes)
    );
    let fwd = StaticMapping::PortForward {
        proto: 6,
        outside: y,
        outside_port: 80,
        inside: A.into(),
        inside_port: 80,
    };
    assert!(matches!(
        bad(NatConfig {
            pool: vec![y],
            statics: vec![fwd, fwd],
            ..NatConfig::default()
        }),
        Err(NatConfigError::Duplicate(_))
    ));
    assert_eq!(
        bad(NatConfig {
            pool: vec![y],
            statics: vec![StaticMapping::OneToOne {
                inside: A.into(),
                outside: y
            }],
            ..NatConfig::default()
        }),
        Err(NatConfigError::PoolOverlap(y))
    );
}

// ---- the rewrite alone, against etherparse ----

mod rewrite_property {
    use super::*;
    use proptest::prelude::*;
    use sluice_fn::nat::rewrite::{End, rewrite};

    fn packet(
        kind: u8,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        data: &[u8],
    ) -> Vec<u8> {
        match kind {
            0 => tcp(
                src,
                dst,
                sport,
                dport,
                (sport.into(), dport.into()),
                ACK | PSH,
                data,
            ),
            1 => udp(src, dst, sport, dport, data),
            _ => echo(src, dst, kind == 2, sport),
        }
    }

    proptest! {
        #[test]
        fn checksums_stay_right_after_any_rewrite(
            kind in 0u8..4,
            src in any::<[u8; 4]>(),
            dst in any::<[u8; 4]>(),
            sport in any::<u16>(),
            dport in any::<u16>(),
            data in proptest::collection::vec(any::<u8>(), 0..64),
            to_src in any::<bool>(),
            addr in any::<u32>(),
            port in prop_oneof![any::<u16>().prop_map(u32::from), Just(1u32 << 16)],
        ) {
            let mut p = packet(kind, src, dst, sport, dport, &data);
            let before = seen(&p);
            let end = if to_src { End::Src } else { End::Dst };
            rewrite(&mut p, end, addr, port).unwrap();
            // seen() recomputes every checksum.
            let after = seen(&p);
            let a = addr.to_be_bytes();
            let echo = kind >= 2;
            // An echo's identifier is its "port" on either end; ECHO
            // (1 << 16) leaves it alone.
            let new_port = |old: u16| u16::try_from(port).unwrap_or(old);
            let want = if to_src {
                Seen { src: a, sport: new_port(before.sport), ..before }
            } else if echo {
                Seen { dst: a, sport: new_port(before.sport), ..before }
            } else {
                Seen { dst: a, dport: new_port(before.dport), ..before }
            };
            prop_assert_eq!(after, want);
            if !echo {
                prop_assert_eq!(&p[p.len() - data.len()..], &data[..], "payload untouched");
            }
        }
    }
}

proptest::proptest! {
    /// Random bytes, some with a plausible IPv4 start, from either side:
    /// no panic, every packet sent or dropped, every buffer back.
    #[test]
    fn garbage_is_dropped_or_translated_without_a_leak(
        pkts in proptest::collection::vec(
            (proptest::prelude::any::<u8>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)),
            1..40,
        ),
    ) {
        let mut n = net(config());
        for (k, (kind, mut b)) in pkts.into_iter().enumerate() {
            if b.len() >= 20 && kind % 2 == 0 {
                b[0] = 0x45;
                b[6] = 0;
                b[9] = [6, 17, 1, 47][usize::from(kind / 2 % 4)];
                let len = (b.len() as u16).to_be_bytes();
                b[2..4].copy_from_slice(&len);
                if kind % 4 == 0 {
                    b[16..20].copy_from_slice(&Y);
                }
            }
            let side = if k % 2 == 0 { INSIDE } else { OUTSIDE };
            let _ = n.send(side, &[b]);
        }
        n.finish();
    }
}
