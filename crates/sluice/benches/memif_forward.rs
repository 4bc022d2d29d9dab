//! memif forwarding (issue 6): a device under test cross-connects two memif
//! interfaces on one core while DPDK's testpmd, on the other core, keeps
//! a loop of packets going through it — Sluice and testpmd itself as the
//! device under test, at 64 B, IMIX and 1500 B, in one run.
//!
//! `cargo bench -p sluice --bench memif_forward` (needs `dpdk-testpmd`;
//! prints a table, asserts nothing).
//!
//! - Device under test on core `DUT_CORE` (1): `sluice run` with one
//!   worker serving two memif sockets, m0 ⇄ m1 cross-connected at L2, the
//!   whole process under `taskset`; or `dpdk-testpmd` serving the same two
//!   sockets in `io` forwarding mode (main and forwarding lcore on that
//!   core).
//! - Tester on core `TESTER_CORE` (0): `dpdk-testpmd` as the memif client
//!   of both sockets (it owns the shared memory: ring 1024, 2 KiB buffers,
//!   copy mode), `io` forwarding, `--tx-first`: one burst of 32 packets a
//!   port starts the loop, and everything the tester receives on one port
//!   it sends back on the other, so 64 packets circulate. The tester reads
//!   no header; the device under test decides the rate.
//! - Sizes: `--txpkts=64` and `--txpkts=1500`; IMIX is 64/576/1500 B in
//!   7:4:1 odds per packet (`txsplit rand` over segments 64,0×6,512,0×3,924:
//!   a packet takes the first 1–12 segments). The first bursts are a random
//!   draw, so the mean size is measured and printed.
//! - Figures (the loop is `common/testpmd_loop.rs`): after a warm-up, the tester's per-second receive rates
//!   (`--stats-period=1`) over `WINDOW_S` seconds, summed over both ports;
//!   median of the seconds, then median over `RUNS` runs. Cycles per packet
//!   is the DUT core's cycles (TSC) over the packets it forwarded: the core
//!   polls all the time, so that is everything it spent. For Sluice also
//!   the node-by-node split from `show runtime`.
//!
//! Environment: `MEMIF_BENCH_WINDOW_S` (default 4), `MEMIF_BENCH_RUNS` (3),
//! `MEMIF_BENCH_SIZES` (e.g. `64,imix`), `MEMIF_BENCH_DUTS` (`sluice,testpmd`),
//! `MEMIF_BENCH_DUT_CORE` (1), `MEMIF_BENCH_TESTER_CORE` (0),
//! `MEMIF_BENCH_SLUICE` (another `sluice` binary, to compare builds).

#[path = "common/testpmd_loop.rs"]
mod testpmd_loop;

use std::path::Path;

fn main() {
    testpmd_loop::run(&testpmd_loop::Link {
        what: "memif",
        env: "MEMIF_BENCH",
        tester: |a: &Path, b: &Path| {
            [("net_memif0", a), ("net_memif1", b)].map(|(name, sock)| {
                format!(
                    "{name},role=client,id=0,socket={},socket-abstract=no",
                    sock.display()
                )
            })
        },
        testpmd_dut: |a: &Path, b: &Path| {
            [("net_memif0", a), ("net_memif1", b)].map(|(name, sock)| {
                format!(
                    "{name},role=server,id=0,socket={},socket-abstract=no",
                    sock.display()
                )
            })
        },
        sluice_driver: |sock: &Path| {
            format!("driver = \"memif\"\nsocket = \"{}\"\n", sock.display())
        },
    });
}
