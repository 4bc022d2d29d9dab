//! A token bucket clocked by the TSC, to rate-limit the ICMP errors we send
//! (RFC 1812 4.3.2.8, RFC 4443 2.4(f)): a flood of expiring or unroutable
//! packets must not turn the forwarder into a flood of errors.

/// A token bucket in TSC cycles: `per_second` tokens a second, at most
/// `burst` saved up, one spent per allowed message.
///
/// The bucket is kept in integer units of `1 / hz` of a token: each cycle
/// adds `per_second` units and a token costs `hz` units, so the refill rate
/// is exact with no division or floating point on the fast path. One
/// limiter per worker (it is not shared); it starts full.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Units added per elapsed cycle (`per_second`).
    rate: u64,
    /// Units per token (`hz`).
    cost: u64,
    /// Most units the bucket holds (`burst * hz`).
    cap: u64,
    /// Units in the bucket at `last`.
    level: u64,
    /// TSC of the last refill.
    last: u64,
}

impl RateLimiter {
    /// A limiter allowing `per_second` messages a second on average and
    /// bursts of up to `burst`, for a TSC running at `hz` cycles a second
    /// (`sluice_graph::clock::hz()`). `burst` 0 allows nothing; `hz` 0 is
    /// taken as 1.
    pub fn new(per_second: u64, burst: u64, hz: u64) -> RateLimiter {
        let cost = hz.max(1);
        let cap = burst.saturating_mul(cost);
        RateLimiter {
            rate: per_second,
            cost,
            cap,
            level: cap,
            last: 0,
        }
    }

    /// Whether one more message may go at TSC `now`; spends a token if so.
    ///
    /// A `now` earlier than the last call (another core's TSC, slightly
    /// behind) refills nothing rather than going backwards.
    #[inline]
    pub fn allow(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        // Saturating: after a long idle the product may overflow, and any
        // value past `cap` fills the bucket anyway.
        let added = elapsed.saturating_mul(self.rate);
        self.level = self.level.saturating_add(added).min(self.cap);
        if self.level >= self.cost {
            self.level -= self.cost;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 3_000_000_000;

    #[test]
    fn burst_then_rate() {
        let mut r = RateLimiter::new(10, 5, HZ);
        let t0 = 1_000_000;
        assert_eq!((0..20).filter(|_| r.allow(t0)).count(), 5);
        // A tenth of a second later, one more token; just before it, none.
        assert!(!r.allow(t0 + HZ / 10 - 1));
        assert!(r.allow(t0 + HZ / 10));
        assert!(!r.allow(t0 + HZ / 10));
        // Over ten seconds at a steady pace, 100 more, within one.
        let mut n = 0;
        for i in 1..=10_000u64 {
            if r.allow(t0 + HZ / 10 + i * HZ / 1000) {
                n += 1;
            }
        }
        assert!((99..=101).contains(&n), "{n}");
    }

    #[test]
    fn idle_refills_to_burst_only_and_time_never_runs_back() {
        let mut r = RateLimiter::new(1000, 3, HZ);
        assert_eq!((0..10).filter(|_| r.allow(5)).count(), 3);
        let later = u64::MAX / 2;
        assert_eq!((0..10).filter(|_| r.allow(later)).count(), 3);
        assert!(!r.allow(later - HZ));
        assert!(!r.allow(later + 1));
        assert!(r.allow(later + HZ / 1000));
    }

    #[test]
    fn degenerate_settings() {
        let mut none = RateLimiter::new(100, 0, HZ);
        assert!(!none.allow(HZ * 100));
        let mut frozen = RateLimiter::new(0, 2, HZ);
        assert_eq!(
            (0..5).map(|i| frozen.allow(i * HZ)).filter(|&a| a).count(),
            2
        );
        let mut no_clock = RateLimiter::new(1, 1, 0);
        assert!(no_clock.allow(0));
        assert!(!no_clock.allow(0));
        assert!(no_clock.allow(1));
        let mut huge = RateLimiter::new(u64::MAX, u64::MAX, u64::MAX);
        assert!(huge.allow(u64::MAX));
    }
}
