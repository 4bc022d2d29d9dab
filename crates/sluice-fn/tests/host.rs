//! Conformance of the host packet builders: every packet they make is
//! compared byte for byte with the same packet built by etherparse, parsed
//! back with etherparse, its checksums recomputed here independently, and
//! read by tshark; refusals leave the packet untouched; random bytes never
//! panic and never leak a buffer.
//!
//! One test binary; its parts live in `host/`.

#[path = "host/support.rs"]
mod support;

#[path = "host/arp_frames.rs"]
mod arp_frames;
#[path = "host/icmpv4.rs"]
mod icmpv4;
#[path = "host/icmpv6.rs"]
mod icmpv6;
#[path = "host/nd_frames.rs"]
mod nd_frames;
#[path = "host/robustness.rs"]
mod robustness;
#[path = "host/tshark.rs"]
mod tshark;

use support::RateLimiter;

#[test]
fn rate_limiter_spaces_errors() {
    let hz = 2_000_000_000;
    let mut r = RateLimiter::new(100, 10, hz);
    let sent = (0..1_000_000u64)
        .filter(|i| r.allow(1 + i * (hz / 100_000)))
        .count();
    // Ten seconds at 100 a second, plus the burst.
    assert!((1000..=1011).contains(&sent), "{sent}");
}
