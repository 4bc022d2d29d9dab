//! The flow hash per packet: Toeplitz (table-driven, Microsoft key) and the
//! folded-multiply hash, each on the frames of 10k UDP flows over IPv4 and
//! over IPv6, the whole path a packet takes in `handoff` (find the tuple
//! past the Ethernet header, order it when symmetric, hash) — in cycles
//! per packet. `tuple-only` is the floor: reaching the frame and taking
//! its tuple, without a hash.

mod cycles;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use cycles::Cycles;
use sluice_fn::rss::{FlowKey, Reta, Rss, RssHash};

const FLOWS: usize = 10_000;

/// 10k distinct UDP frames, IPv4 or IPv6, addresses and ports varying.
fn frames(v6: bool) -> Vec<Vec<u8>> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..FLOWS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_be_bytes();
            let mut f = vec![0u8; 14 + if v6 { 40 } else { 20 } + 8 + 22];
            let l4 = if v6 {
                f[12..14].copy_from_slice(&[0x86, 0xdd]);
                f[14] = 0x60;
                f[14 + 6] = 17;
                f[14 + 8..14 + 24].copy_from_slice(&[
                    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b[0], b[1],
                ]);
                f[14 + 24..14 + 40].copy_from_slice(&[
                    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b[2], b[3],
                ]);
                54
            } else {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                f[14] = 0x45;
                f[14 + 9] = 17;
                f[14 + 12..14 + 16].copy_from_slice(&[10, 0, b[0], b[1]]);
                f[14 + 16..14 + 20].copy_from_slice(&[10, 1, b[2], b[3]]);
                34
            };
            f[l4..l4 + 4].copy_from_slice(&b[4..8]);
            f
        })
        .collect()
}

fn flow_hash(c: &mut Criterion<Cycles>) {
    let mut g = c.benchmark_group("flow-hash");
    g.throughput(Throughput::Elements(FLOWS as u64));
    let reta = Reta::round_robin(2);
    for (family, v6) in [("ipv4", false), ("ipv6", true)] {
        let frames = frames(v6);
        // The floor: reach each frame and take its tuple, no hash.
        g.bench_function(format!("tuple-only/{family}"), |b| {
            b.iter_batched_ref(
                || vec![0u32; 2],
                |per| {
                    for f in &frames {
                        let k = FlowKey::of_frame(std::hint::black_box(f), false);
                        per[usize::from(k.bytes()[3] & 1)] += 1;
                    }
                },
                BatchSize::SmallInput,
            )
        });
        for (name, hash) in [("toeplitz", RssHash::Toeplitz), ("fast", RssHash::Fast)] {
            for symmetric in [false, true] {
                let rss = Rss::new(hash, symmetric);
                let id = format!(
                    "{name}/{family}{}",
                    if symmetric { "/symmetric" } else { "" }
                );
                g.bench_function(id, |b| {
                    b.iter_batched_ref(
                        || vec![0u32; 2],
                        |per| {
                            for f in &frames {
                                per[reta.worker(rss.hash(std::hint::black_box(f)))] += 1;
                            }
                        },
                        BatchSize::SmallInput,
                    )
                });
            }
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(Cycles);
    targets = flow_hash
}
criterion_main!(benches);
