//! L2 switching through a real graph: crafted frames into `l2-input` (or
//! `l2-bvi-output`), capture nodes as every interface's output and as
//! `ethernet-input`, and exactly what comes out where is checked, with the
//! counters and the pool's free count.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etherparse::{PacketBuilder, VlanId};
use proptest::prelude::*;
use sluice_buf::{HugePages, Pool, PoolConfig};
use sluice_fn::l2::{self, MacTable, table::Learned};
use sluice_fn::{BridgeDomain, BridgePort, L2Config, L2State, StaticMac, VlanRewrite, XConnect};
use sluice_graph::clock::cycles;
use sluice_graph::iface::{IfIndex, Interfaces};
use sluice_graph::{Cx, Frame, Graph, GraphBuilder, Next, Node, NodeSpec, runtime};
use sluice_wire::MacAddr;

/// Ports p0..p7 transmit; then the BVI and a receive-only port.
const PORTS: u32 = 8;
const BVI: IfIndex = 8;
const RX_ONLY: IfIndex = 9;
const BVI_MAC: [u8; 6] = [2, 0xb0, 0, 0, 0, 1];
const HZ: f64 = 1e9;

const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];
const C: [u8; 6] = [2, 0, 0, 0, 0, 0xc];
const S: [u8; 6] = [2, 0, 0, 0, 0, 0x5];
const BCAST: [u8; 6] = [0xff; 6];
const MCAST: [u8; 6] = [1, 0, 0x5e, 0, 0, 9];

/// (node it reached, meta.rx_if, meta.tx_if, bytes).
type Out = (String, u32, u32, Vec<u8>);
type Captured = Arc<Mutex<Vec<Out>>>;

struct Capture(String, Captured);

impl Node for Capture {
    fn spec(&self) -> NodeSpec {
        NodeSpec::internal(self.0.clone(), &[], &[])
    }
    fn process(&mut self, cx: &mut Cx<'_>, input: &mut Frame, _out: &mut Next<'_>) {
        let mut v = self.1.lock().unwrap();
        for p in input.iter() {
            let mut b = Vec::new();
            p.copy_to(&mut b);
            v.push((self.0.clone(), p.meta().rx_if, p.meta().tx_if, b));
        }
        cx.buffers.free_all(input);
    }
}

fn interfaces() -> Arc<Interfaces> {
    let mut i = Interfaces::new();
    for k in 0..PORTS {
        i.add(
            &format!("p{k}"),
            "test",
            MacAddr([2, 0xee, 0, 0, 0, k as u8]),
            1500,
            Some(format!("p{k}-output")),
        );
    }
    i.add(
        "bvi0",
        "bvi",
        MacAddr(BVI_MAC),
        1500,
        Some(l2::BVI_OUTPUT.into()),
    );
    i.add("rx0", "test", MacAddr([2, 0xee, 0, 0, 0, 0xff]), 1500, None);
    Arc::new(i)
}

struct Rig {
    pool: Pool,
    graph: Graph,
    out: Captured,
    state: Arc<L2State>,
}

fn rig_with(bridges: Vec<BridgeDomain>, xconnects: Vec<XConnect>, buffers: u32) -> Rig {
    let pool = Pool::new(&PoolConfig {
        buffers,
        huge_pages: HugePages::Never,
        lock: false,
    })
    .unwrap();
    let ifs = interfaces();
    let config = L2Config::new(bridges, xconnects, ifs.clone()).unwrap();
    let state = L2State::with_clock(config, HZ).unwrap();
    let out = Captured::default();
    let mut b = GraphBuilder::new();
    for n in l2::nodes(&state) {
        b.add(n).unwrap();
    }
    for i in ifs.iter().filter(|i| i.driver == "test") {
        if let Some(o) = &i.output_node {
            b.add(Box::new(Capture(o.clone(), out.clone()))).unwrap();
        }
    }
    b.add(Box::new(Capture("ethernet-input".into(), out.clone())))
        .unwrap();
    let graph = b.build(0, pool.cache(4)).unwrap();
    Rig {
        pool,
        graph,
        out,
        state,
    }
}

fn rig(bridges: Vec<BridgeDomain>, xconnects: Vec<XConnect>) -> Rig {
    rig_with(bridges, xconnects, 512)
}

impl Rig {
    fn inject(&mut self, node: &str, meta: impl Fn(&mut sluice_buf::Meta), frames: &[Vec<u8>]) {
        let mut f = Frame::new();
        for bytes in frames {
            let mut p = self.graph.buffers().alloc_from(bytes).unwrap();
            meta(p.meta_mut());
            f.push(p);
        }
        self.graph.inject(node, &mut f).unwrap();
    }

    fn send(&mut self, rx_if: IfIndex, frame: Vec<u8>) {
        self.inject(l2::INPUT, |m| m.rx_if = rx_if, &[frame]);
    }

    /// What came out since the last call, sorted by node.
    fn take(&self) -> Vec<Out> {
        let mut v = std::mem::take(&mut *self.out.lock().unwrap());
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The nodes that got something since the last call.
    fn where_to(&self) -> Vec<String> {
        self.take().into_iter().map(|o| o.0).collect()
    }

    fn count(&self, node: &str, name: &str) -> u64 {
        let s = self.graph.stats();
        runtime::error_rows(&[&*s])
            .iter()
            .find(|e| e.node == node && e.name == name)
            .map_or(0, |e| e.count)
    }

    fn dropped(&self) -> u64 {
        let s = self.graph.stats();
        runtime::packets_dropped(&[&*s])
    }

    fn port_of(&self, bd: u32, mac: [u8; 6]) -> Option<IfIndex> {
        self.state
            .mac_table(cycles())
            .into_iter()
            .find(|e| e.bridge == bd && e.mac == MacAddr(mac))
            .map(|e| e.interface)
    }

    fn finish(self) {
        let Rig { pool, graph, .. } = self;
        drop(graph);
        assert_eq!(pool.free_count(), pool.capacity(), "a buffer leaked");
    }
}

fn outs(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn eth(src: [u8; 6], dst: [u8; 6], payload: usize) -> Vec<u8> {
    let mut v = Vec::new();
    let data: Vec<u8> = (0..payload).map(|i| i as u8).collect();
    PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut v, &data)
        .unwrap();
    v
}

fn tagged(src: [u8; 6], dst: [u8; 6], vid: u16, pcp: u8) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(src, dst)
        .single_vlan(VlanId::try_new(vid).unwrap())
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut v, &[7; 30])
        .unwrap();
    v[14] |= pcp << 5;
    v
}

/// The same frame with its 802.1Q tag taken out.
fn untag(f: &[u8]) -> Vec<u8> {
    let mut v = f[..12].to_vec();
    v.extend_from_slice(&f[16..]);
    v
}

fn bridge(id: u32, ports: &[IfIndex]) -> BridgeDomain {
    BridgeDomain {
        ports: ports.iter().map(|&i| BridgePort::new(i)).collect(),
        aging: Duration::ZERO,
        ..BridgeDomain::new(id)
    }
}

#[test]
fn learns_then_forwards_unicast() {
    let mut r = rig(vec![bridge(1, &[0, 1, 2])], vec![]);
    let f = eth(A, B, 40);
    r.send(0, f.clone());
    // B unknown: flooded, byte-exact, to all but the ingress port.
    let got = r.take();
    assert_eq!(
        got.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(),
        ["p1-output", "p2-output"]
    );
    assert!(got.iter().all(|o| o.3 == f));
    assert_eq!((got[0].2, got[1].2), (1, 2), "tx_if set");
    assert_eq!(r.port_of(1, A), Some(0));
    r.send(1, eth(B, A, 40));
    assert_eq!(r.where_to(), outs(&["p0-output"]));
    r.send(0, eth(A, B, 40));
    assert_eq!(r.where_to(), outs(&["p1-output"]));
    assert_eq!(r.count(l2::INPUT, "learned"), 2);
    assert_eq!(r.state.table(1).unwrap().len(), 2);
    let show = r.state.show_l2fib(cycles());
    assert!(show.contains("02:00:00:00:00:0a"), "{show}");
    assert!(show.contains("p1") && show.contains("dynamic"), "{show}");
    assert!(show.contains("2 entries"), "{show}");
    assert_eq!(r.dropped(), 0);
    r.finish();
}

#[test]
fn floods_broadcast_multicast_and_unknown_with_split_horizon() {
    let mut bd = bridge(1, &[0, 1, 2, 3]);
    bd.ports[0].split_horizon = 1;
    bd.ports[1].split_horizon = 1;
    bd.ports[3].split_horizon = 2;
    let mut r = rig(vec![bd], vec![]);
    r.send(0, eth(A, BCAST, 10));
    assert_eq!(r.where_to(), outs(&["p2-output", "p3-output"]));
    r.send(2, eth(C, MCAST, 10));
    assert_eq!(r.where_to(), outs(&["p0-output", "p1-output", "p3-output"]));
    r.send(3, eth(B, [2, 9, 9, 9, 9, 9], 10));
    assert_eq!(r.where_to(), outs(&["p0-output", "p1-output", "p2-output"]));
    // B is on p3 (group 2), A on p0 (group 1); a frame from p1 (group 1)
    // reaches B but never A.
    r.send(1, eth(C, B, 10));
    assert_eq!(r.where_to(), outs(&["p3-output"]));
    r.send(1, eth(C, A, 10));
    assert!(r.take().is_empty());
    assert_eq!(r.count(l2::INPUT, "split-horizon"), 1);
    // A bridge where the ingress port's group is everything left.
    let mut bd = bridge(2, &[4, 5]);
    bd.ports[0].split_horizon = 3;
    bd.ports[1].split_horizon = 3;
    let mut r2 = rig(vec![bd], vec![]);
    r2.send(4, eth(A, BCAST, 10));
    assert!(r2.take().is_empty());
    assert_eq!(r2.count(l2::FLOOD, "no-port"), 1);
    r2.finish();
    r.finish();
}

#[test]
fn no_echo_to_the_ingress_port() {
    let mut r = rig(vec![bridge(1, &[0, 1])], vec![]);
    r.send(0, eth(A, BCAST, 10));
    r.take();
    r.send(0, eth(B, A, 10));
    assert!(r.take().is_empty());
    assert_eq!(r.count(l2::INPUT, "filter"), 1);
    r.finish();
}

#[test]
fn a_moved_mac_is_relearned() {
    let mut r = rig(vec![bridge(1, &[0, 1, 2])], vec![]);
    r.send(0, eth(A, BCAST, 10));
    r.send(1, eth(A, BCAST, 10));
    r.take();
    assert_eq!(r.count(l2::INPUT, "mac-move"), 1);
    assert_eq!(r.port_of(1, A), Some(1));
    r.send(2, eth(B, A, 10));
    assert_eq!(r.where_to(), outs(&["p1-output"]));
    r.finish();
}

#[test]
fn static_macs_are_not_learned_over() {
    let mut bd = bridge(1, &[0, 1, 2]);
    bd.static_macs = vec![StaticMac {
        mac: MacAddr(S),
        interface: 2,
    }];
    let mut r = rig(vec![bd], vec![]);
    // From S on the wrong port: counted, still forwarded.
    r.send(0, eth(S, BCAST, 10));
    assert_eq!(r.where_to(), outs(&["p1-output", "p2-output"]));
    assert_eq!(r.count(l2::INPUT, "static-mac-move"), 1);
    r.send(1, eth(A, S, 10));
    assert_eq!(r.where_to(), outs(&["p2-output"]));
    let e = r.state.mac_table(cycles());
    let s = e.iter().find(|e| e.mac == MacAddr(S)).unwrap();
    assert!(s.is_static && s.age.is_none() && s.interface == 2);
    r.finish();
}

#[test]
fn a_full_table_still_forwards_and_counts() {
    let mut bd = bridge(1, &[0, 1, 2]);
    bd.mac_capacity = 2;
    let mut r = rig(vec![bd], vec![]);
    r.send(0, eth(A, BCAST, 10));
    r.send(1, eth(B, BCAST, 10));
    r.take();
    r.send(2, eth(C, A, 10));
    assert_eq!(r.where_to(), outs(&["p0-output"]));
    assert_eq!(r.count(l2::INPUT, "mac-table-full"), 1);
    assert_eq!(r.port_of(1, C), None);
    // C is unknown, so frames for it are flooded.
    r.send(0, eth(A, C, 10));
    assert_eq!(r.where_to(), outs(&["p1-output", "p2-output"]));
    assert_eq!(r.dropped(), 0);
    r.finish();
}

#[test]
fn aging_removes_learned_macs_only() {
    let mut bd = bridge(1, &[0, 1, 2]);
    bd.aging = Duration::from_secs(10);
    bd.static_macs = vec![StaticMac {
        mac: MacAddr(S),
        interface: 2,
    }];
    let mut other = bridge(2, &[3, 4]);
    other.aging = Duration::ZERO;
    let mut r = rig(vec![bd, other], vec![]);
    r.send(0, eth(A, BCAST, 10));
    r.send(1, eth(B, BCAST, 10));
    r.send(3, eth(C, BCAST, 10));
    r.take();
    let t0 = cycles();
    let second = HZ as u64;
    // Not yet: a full sweep 5 s later removes nothing.
    assert_eq!(r.state.age_all(t0 + 5 * second), 0);
    // B is seen again at +8 s.
    let late = t0 + 8 * second;
    r.state
        .table(1)
        .unwrap()
        .learn(l2::table::mac_u64(&B), 1, r.state.tick(late));
    // The incremental scan, a step each interval from +12 s for half the
    // aging time and a bit: A goes, B (seen at +8) and the static S stay.
    let step = r.state.age_interval();
    let mut now = t0 + 12 * second;
    let mut removed = 0;
    while now < t0 + 18 * second {
        removed += r.state.age(now);
        now += step;
    }
    assert_eq!(removed, 1);
    assert_eq!(r.port_of(1, A), None);
    assert_eq!(r.port_of(1, B), Some(1));
    assert_eq!(r.port_of(1, S), Some(2));
    // Later B goes too; bridge 2 (aging off) keeps C.
    while now < t0 + 30 * second {
        removed += r.state.age(now);
        now += step;
    }
    assert_eq!(removed, 2);
    let left: Vec<_> = r.state.mac_table(now).into_iter().map(|e| e.mac).collect();
    assert_eq!(left, [MacAddr(S), MacAddr(C)]);
    // A frame for A is unknown again: flooded.
    r.send(2, eth(S, A, 10));
    assert_eq!(r.where_to(), outs(&["p0-output", "p1-output"]));
    r.finish();
}

#[test]
fn vlan_rewrite_both_ways_byte_exact() {
    let mut plain = bridge(1, &[0, 1]);
    plain.ports[0].vlan = VlanRewrite::Pop1 { vid: 100 };
    let mut tr = bridge(2, &[2, 3, 4]);
    tr.ports[0].vlan = VlanRewrite::Translate1To1 {
        wire: 10,
        bridge: 20,
    };
    tr.ports[1].vlan = VlanRewrite::Push1 { vid: 20 };
    tr.ports[2].vlan = VlanRewrite::Translate1To1 {
        wire: 30,
        bridge: 20,
    };
    let mut r = rig(vec![plain, tr], vec![]);

    // Pop on the way in, push on the way out.
    let wire = tagged(A, B, 100, 0);
    r.send(0, wire.clone());
    let got = r.take();
    assert_eq!((got.len(), got[0].0.as_str()), (1, "p1-output"));
    assert_eq!(got[0].3, untag(&wire));
    r.send(1, untag(&tagged(B, A, 100, 0)));
    let got = r.take();
    assert_eq!((got.len(), got[0].0.as_str()), (1, "p0-output"));
    assert_eq!(got[0].3, tagged(B, A, 100, 0));

    // Translate 10 → 20 in, then out as 20 → 30 and popped on the Push1
    // port; priority bits kept.
    r.send(2, tagged(A, BCAST, 10, 5));
    let got = r.take();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, "p3-output");
    assert_eq!(got[0].3, untag(&tagged(A, BCAST, 10, 5)));
    assert_eq!(got[1].0, "p4-output");
    assert_eq!(got[1].3, tagged(A, BCAST, 30, 5));
    // Untagged in on the Push1 port, translated out to 10.
    r.send(3, untag(&tagged(B, A, 20, 0)));
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].0.as_str(), &got[0].3),
        ("p2-output", &tagged(B, A, 10, 0))
    );

    // Mismatches in: wrong VID, untagged on a Pop1 port, tagged on a
    // Push1 port.
    r.send(0, tagged(A, B, 101, 0));
    r.send(0, eth(A, B, 10));
    r.send(3, tagged(C, A, 20, 0));
    assert!(r.take().is_empty());
    assert_eq!(r.count(l2::INPUT, "vlan-mismatch"), 3);
    // And out: a tagged frame from the plain port cannot get the Pop1
    // port's tag pushed on top.
    r.send(1, tagged(B, A, 7, 0));
    assert!(r.take().is_empty());
    assert_eq!(r.count(l2::OUTPUT, "vlan-mismatch"), 1);
    r.finish();
}

#[test]
fn xconnect_sends_everything_to_its_peer() {
    let xc = vec![
        XConnect {
            from: 5,
            to: 6,
            vlan: VlanRewrite::Pop1 { vid: 7 },
        },
        XConnect {
            from: 6,
            to: 5,
            vlan: VlanRewrite::None,
        },
    ];
    let mut r = rig(vec![bridge(1, &[0, 1])], xc);
    let f = tagged(A, B, 7, 3);
    r.send(5, f.clone());
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.as_str(), got[0].2), ("p6-output", 6));
    assert_eq!(got[0].3, untag(&f));
    // Back from 6 to 5: 5's rewrite pushes its tag on the way out.
    r.send(6, eth(B, A, 20));
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "p5-output");
    assert_eq!(untag(&got[0].3), eth(B, A, 20));
    assert_eq!(&got[0].3[12..16], &[0x81, 0, 0, 7]);
    r.send(5, eth(A, B, 10));
    assert_eq!(r.count(l2::INPUT, "vlan-mismatch"), 1);
    // Nothing learned anywhere.
    assert!(r.state.mac_table(cycles()).is_empty());
    assert!(r.take().is_empty());
    r.finish();
}

#[test]
fn bvi_up_and_down() {
    let mut bd = bridge(1, &[0, 1]);
    bd.bvi = Some(BVI);
    let mut r = rig(vec![bd], vec![]);
    // The BVI's MAC is a static entry on the BVI.
    let e = r.state.mac_table(cycles());
    assert_eq!(e.len(), 1);
    assert!(e[0].is_static && e[0].interface == BVI && e[0].mac == MacAddr(BVI_MAC));

    // Up: to the BVI's MAC, into ethernet-input as received on the BVI.
    let f = eth(A, BVI_MAC, 20);
    r.send(0, f.clone());
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.as_str(), got[0].1), ("ethernet-input", BVI));
    assert_eq!(got[0].3, f);
    // A broadcast reaches the other port and the BVI.
    r.send(1, eth(B, BCAST, 20));
    let got = r.take();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].0.as_str(), got[0].1), ("ethernet-input", BVI));
    assert_eq!((got[1].0.as_str(), got[1].1), ("p0-output", 1));

    // Down: the L3 path sends out of the BVI, switched in its bridge.
    let down = eth(BVI_MAC, A, 30);
    r.inject(
        l2::BVI_OUTPUT,
        |m| m.tx_if = BVI,
        std::slice::from_ref(&down),
    );
    let got = r.take();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].0.as_str(), &got[0].3), ("p0-output", &down));
    // A broadcast from the BVI goes to the ports, not back up.
    r.inject(
        l2::BVI_OUTPUT,
        |m| m.tx_if = BVI,
        &[eth(BVI_MAC, BCAST, 30)],
    );
    assert_eq!(r.where_to(), outs(&["p0-output", "p1-output"]));
    // Not a BVI.
    r.inject(l2::BVI_OUTPUT, |m| m.tx_if = 1, &[eth(BVI_MAC, A, 30)]);
    assert!(r.take().is_empty());
    assert_eq!(r.count(l2::BVI_OUTPUT, "not-bvi"), 1);
    r.finish();
}

#[test]
fn unknown_unicast_flooding_off_drops_with_a_count() {
    let mut bd = bridge(1, &[0, 1, 2]);
    bd.flood = false;
    let mut r = rig(vec![bd], vec![]);
    r.send(0, eth(A, B, 10));
    assert!(r.take().is_empty());
    assert_eq!(r.count(l2::INPUT, "uu-flood-off"), 1);
    // Broadcast is still flooded; known unicast still forwarded.
    r.send(1, eth(B, BCAST, 10));
    assert_eq!(r.where_to(), outs(&["p0-output", "p2-output"]));
    r.send(0, eth(A, B, 10));
    assert_eq!(r.where_to(), outs(&["p1-output"]));
    r.finish();
}

#[test]
fn learning_off_learns_nothing() {
    let mut bd = bridge(1, &[0, 1]);
    bd.learn = false;
    let mut r = rig(vec![bd], vec![]);
    r.send(0, eth(A, B, 10));
    r.send(1, eth(B, A, 10));
    assert_eq!(r.where_to(), outs(&["p0-output", "p1-output"]));
    assert!(r.state.mac_table(cycles()).is_empty());
    r.finish();
}

#[test]
fn jumbo_frames_flood_through_chained_copies() {
    let mut r = rig(vec![bridge(1, &[0, 1, 2, 3])], vec![]);
    let f = eth(A, BCAST, 7000);
    r.send(0, f.clone());
    let got = r.take();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|o| o.3 == f));
    r.finish();
}

#[test]
fn receive_only_ports_and_foreign_interfaces() {
    let mut r = rig(vec![bridge(1, &[0, 1, RX_ONLY])], vec![]);
    r.send(RX_ONLY, eth(C, BCAST, 10));
    assert_eq!(r.where_to(), outs(&["p0-output", "p1-output"]));
    r.send(0, eth(A, C, 10));
    assert!(r.take().is_empty());
    assert_eq!(r.count(l2::INPUT, "no-output"), 1);
    // Interfaces in no bridge, and indices past the table.
    r.send(7, eth(A, B, 10));
    r.send(99, eth(A, B, 10));
    assert_eq!(r.count(l2::INPUT, "not-l2"), 2);
    r.send(0, vec![1, 2, 3]);
    assert_eq!(r.count(l2::INPUT, "too-short"), 1);
    assert!(r.take().is_empty());
    r.finish();
}

#[test]
fn flood_without_buffers_counts_and_leaks_nothing() {
    // 8 broadcasts into an 8-port bridge want 48 copies; the pool has 32
    // buffers, 8 of them holding the originals.
    let mut r = rig_with(vec![bridge(1, &(0..8).collect::<Vec<_>>())], vec![], 32);
    let frames: Vec<Vec<u8>> = (0..8).map(|k| eth([2, 0, 0, 0, 1, k], BCAST, 10)).collect();
    r.inject(l2::INPUT, |m| m.rx_if = 0, &frames);
    let delivered = r.take().len() as u64;
    let failed = r.count(l2::FLOOD, "no-buffer");
    assert!(failed > 0);
    assert_eq!(delivered + failed, 8 * 7);
    r.finish();
}

#[test]
fn concurrent_learning_loses_and_duplicates_nothing() {
    const MACS: u64 = 100_000;
    const THREADS: u16 = 4;
    let mac_of = |i: u64| 0x0200_0000_0000 | (i * 0x1_0001);
    for round in 0..3u64 {
        let table = Arc::new(MacTable::new(2 * MACS as u32));
        let start = Arc::new(std::sync::Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (table, start) = (table.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut added = 0u64;
                    start.wait();
                    // First all in the same order, so that adds of one MAC
                    // race; then each thread in its own order from its own
                    // port, so that moves race with each other.
                    for k in 0..2 * MACS {
                        let stride = [1, 3, 7, 9][t as usize] * (k / MACS);
                        let i = (k % MACS * stride.max(1) + round * 7919) % MACS;
                        match table.learn(mac_of(i), t, 0) {
                            Learned::Full | Learned::StaticElsewhere => panic!("{i}"),
                            Learned::Added => added += 1,
                            _ => {}
                        }
                    }
                    added
                })
            })
            .collect();
        let added: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        // Two threads may both add a MAC; one copy is removed at once.
        assert!(added >= MACS);
        let entries = table.entries();
        assert_eq!(entries.len(), MACS as usize, "lost or duplicated");
        assert_eq!(table.len(), MACS as usize);
        let mut macs: Vec<u64> = entries.iter().map(|e| e.mac).collect();
        macs.sort_unstable();
        macs.dedup();
        assert_eq!(macs.len(), MACS as usize, "duplicated");
        for e in &entries {
            let i = e.mac ^ 0x0200_0000_0000;
            assert!(i % 0x1_0001 == 0 && i / 0x1_0001 < MACS, "torn {:x}", e.mac);
            assert!(e.port < THREADS && !e.is_static, "torn {e:?}");
            assert_eq!(table.lookup(e.mac).map(|h| h.port()), Some(e.port));
        }
        eprintln!("round {round}: {added} adds for {MACS} MACs");
    }
}

#[test]
fn aging_racing_learning_keeps_the_table_consistent() {
    const MACS: u64 = 4_000;
    let table = Arc::new(MacTable::new(MACS as u32));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The clock, advanced by the aging thread.
    let clock = Arc::new(std::sync::atomic::AtomicU16::new(0));
    let learners: Vec<_> = (0..3u16)
        .map(|t| {
            let (table, stop, clock) = (table.clone(), stop.clone(), clock.clone());
            std::thread::spawn(move || {
                let mut x = 0x1234_5678_9abc_def1u64 + u64::from(t);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let tick = clock.load(std::sync::atomic::Ordering::Relaxed);
                    let learned = table.learn(0x0200_0000_0000 | (x % MACS), t, tick);
                    assert_ne!(learned, Learned::StaticElsewhere);
                }
            })
        })
        .collect();
    // Removes whatever was not seen in the last couple of ticks, while
    // the learners add, move and refresh.
    let started = std::time::Instant::now();
    let mut removed = 0;
    let mut tick = 0u16;
    while started.elapsed() < Duration::from_millis(300) {
        tick = tick.wrapping_add(1);
        clock.store(tick, std::sync::atomic::Ordering::Relaxed);
        removed += table.age(0, table.buckets(), tick, 2);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in learners {
        l.join().unwrap();
    }
    assert!(removed > 0);
    // Every entry found by a lookup, once, with a port that learned it.
    let entries = table.entries();
    assert_eq!(table.len(), entries.len());
    let mut macs: Vec<u64> = entries.iter().map(|e| e.mac).collect();
    macs.sort_unstable();
    macs.dedup();
    assert_eq!(macs.len(), entries.len(), "duplicated");
    for e in &entries {
        assert!(e.port < 3);
        assert_eq!(table.lookup(e.mac).map(|h| h.port()), Some(e.port));
    }
    // Aged out whole, it is empty, and its count agrees: it learns to its
    // capacity again.
    table.age(0, table.buckets(), tick.wrapping_add(100), 2);
    assert!(table.is_empty() && table.entries().is_empty());
    for i in 0..MACS {
        assert_eq!(table.learn(0x0300_0000_0000 | i, 0, tick), Learned::Added);
    }
    assert_eq!(table.learn(0x0400_0000_0000, 0, tick), Learned::Full);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random frames from random interfaces through a bridge with every
    /// feature on: never a panic, every buffer back.
    #[test]
    fn random_frames_never_panic_nor_leak(
        frames in proptest::collection::vec(
            (0u32..12, proptest::collection::vec(any::<u8>(), 0..200), any::<bool>()),
            1..64,
        ),
    ) {
        let mut bd = bridge(1, &[0, 1, 2, 3, RX_ONLY]);
        bd.ports[1].vlan = VlanRewrite::Pop1 { vid: 5 };
        bd.ports[2].vlan = VlanRewrite::Push1 { vid: 5 };
        bd.ports[3].split_horizon = 1;
        bd.bvi = Some(BVI);
        bd.mac_capacity = 8;
        let xc = vec![XConnect { from: 4, to: 1, vlan: VlanRewrite::Translate1To1 { wire: 9, bridge: 5 } }];
        let mut r = rig(vec![bd], xc);
        let start = r.pool.free_count() + r.graph.buffers().cached() as u32;
        for (rx, mut bytes, shape) in frames {
            if shape && bytes.len() >= 18 {
                // Make some plausible: a known MAC, a tag with VID 5 or 9.
                let (host, vid) = (bytes[5] & 3, if bytes[15] & 1 == 0 { 5 } else { 9 });
                bytes[0..6].copy_from_slice(&[2, 0, 0, 0, 0, host]);
                bytes[12..16].copy_from_slice(&[0x81, 0, 0, vid]);
            }
            r.inject(l2::INPUT, |m| m.rx_if = rx, &[bytes.clone()]);
            r.inject(l2::BVI_OUTPUT, |m| m.tx_if = rx, &[bytes]);
            r.take();
        }
        prop_assert_eq!(r.pool.free_count() + r.graph.buffers().cached() as u32, start);
        r.finish();
    }
}
