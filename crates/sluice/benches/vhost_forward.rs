//! vhost-user forwarding (issue 11): a device under test cross-connects
//! two vhost-user interfaces on one core while DPDK's testpmd, on the
//! other core, plays the two guests (`net_virtio_user`, the virtio driver
//! in a process) and keeps a loop of packets going through it — Sluice
//! and testpmd itself (two `net_vhost` ports) as the device under test,
//! at 64 B, IMIX and 1500 B, in one run.
//!
//! `cargo bench -p sluice --bench vhost_forward` (needs `dpdk-testpmd`;
//! prints a table, asserts nothing).
//!
//! - Device under test on core `DUT_CORE` (1): `sluice run` with one
//!   worker listening on two vhost-user sockets, vm0 ⇄ vm1 cross-connected
//!   at L2, the whole process under `taskset`; or `dpdk-testpmd` with two
//!   `net_vhost` ports on the same sockets in `io` forwarding mode (main
//!   and forwarding lcore on that core).
//! - Tester on core `TESTER_CORE` (0): `dpdk-testpmd` with two
//!   `net_virtio_user` ports, one on each socket (the guests: their memory
//!   is the tester's, its rings 256 entries, mergeable receive buffers),
//!   `io` forwarding, `--tx-first`: one burst of 32 packets a port starts
//!   the loop, and everything the tester receives on one port it sends
//!   back on the other. The tester reads no header; the device under test
//!   decides the rate.
//! - Sizes: `--txpkts=64` and `--txpkts=1500`; IMIX is 64/576/1500 B in
//!   7:4:1 odds per packet (`txsplit rand` over segments 64,0×6,512,0×3,924:
//!   a packet takes the first 1–12 segments, so the guest's chains are
//!   several descriptors: Sluice's general path). The mean size is
//!   measured and printed.
//! - Figures: after a warm-up, the tester's per-second receive rates
//!   (`--stats-period=1`) over `WINDOW_S` seconds, summed over both ports;
//!   median of the seconds, then median over `RUNS` runs. Cycles per packet
//!   is the DUT core's cycles (TSC) over the packets it forwarded: the core
//!   polls all the time, so that is everything it spent. For Sluice also
//!   the node-by-node split from `show runtime` (its input nodes dequeue,
//!   its output nodes enqueue).
//!
//! Environment: `VHOST_BENCH_WINDOW_S` (default 4), `VHOST_BENCH_RUNS` (3),
//! `VHOST_BENCH_SIZES` (e.g. `64,imix`), `VHOST_BENCH_DUTS` (`testpmd,sluice`),
//! `VHOST_BENCH_DUT_CORE` (1), `VHOST_BENCH_TESTER_CORE` (0),
//! `VHOST_BENCH_SLUICE` (another `sluice` binary, to compare builds).

#[path = "common/testpmd_loop.rs"]
mod testpmd_loop;

use std::path::Path;

fn main() {
    testpmd_loop::run(&testpmd_loop::Link {
        what: "vhost-user",
        env: "VHOST_BENCH",
        tester: |a: &Path, b: &Path| {
            [("net_virtio_user0", a), ("net_virtio_user1", b)]
                .map(|(name, sock)| format!("{name},path={},queues=1", sock.display()))
        },
        testpmd_dut: |a: &Path, b: &Path| {
            [("net_vhost0", a), ("net_vhost1", b)]
                .map(|(name, sock)| format!("{name},iface={},queues=1", sock.display()))
        },
        sluice_driver: |sock: &Path| {
            format!("driver = \"vhost-user\"\nsocket = \"{}\"\n", sock.display())
        },
    });
}
