//! Cycle counter: the unit of `show runtime`.

use std::time::{Duration, Instant};

/// The CPU's time-stamp counter (cycles at the nominal rate), or
/// nanoseconds since an arbitrary point where there is no TSC.
#[inline(always)]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions on x86_64; it only reads a
        // counter register.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// Measures the cycle counter's rate against the wall clock over `span`.
pub fn calibrate(span: Duration) -> f64 {
    let t0 = Instant::now();
    let c0 = cycles();
    while t0.elapsed() < span {
        std::hint::spin_loop();
    }
    let c1 = cycles();
    let dt = t0.elapsed().as_secs_f64().max(1e-9);
    c1.saturating_sub(c0) as f64 / dt
}

/// The cycle counter's rate in Hz, measured once per process (20 ms of
/// spinning: call it once at start, before workers run, so that none of
/// them stalls on it).
pub fn hz() -> f64 {
    use std::sync::OnceLock;
    static HZ: OnceLock<f64> = OnceLock::new();
    *HZ.get_or_init(|| calibrate(Duration::from_millis(20)))
}
