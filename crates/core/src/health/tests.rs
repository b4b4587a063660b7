//! Tests of endpoint health: uptime windows, percentiles, the breaker's states and probes,
//! Retry-After cooldowns, clocks that jump, and invariants over a long pseudo-random run.

use super::*;

/// A minute boundary in 2023, so minute arithmetic in the tests is exact.
const T0: i64 = 1_700_000_040_000;
const MIN: i64 = 60_000;
const DAY: i64 = 1440 * MIN;

fn policy() -> HealthPolicy {
    HealthPolicy::default()
}

fn ok(h: &mut EndpointHealth, now: i64) {
    h.success(&policy(), now, None, None);
}

fn fail(h: &mut EndpointHealth, now: i64) {
    h.failure(&policy(), now, None);
}

fn down(until_ms: i64) -> Gate {
    Gate::Down {
        until_ms,
        rate_limited: false,
    }
}

fn limited(until_ms: i64) -> Gate {
    Gate::Down {
        until_ms,
        rate_limited: true,
    }
}

/// A health that tripped at `at` with the default policy (three failures in a row).
fn tripped_at(at: i64) -> EndpointHealth {
    let mut h = EndpointHealth::new();
    for _ in 0..3 {
        fail(&mut h, at);
    }
    assert_eq!(h.gate(&policy(), at), down(at + 30_000));
    h
}

// ---- uptime ----

#[test]
fn default_policy_values() {
    let p = HealthPolicy::default();
    assert_eq!(p.outage_window_ms, 30_000);
    assert_eq!(p.outage_min_failures, 3);
    assert_eq!(p.outage_failure_ratio, 0.5);
    assert_eq!(p.open_ms, 30_000);
    assert_eq!(p.max_open_ms, 300_000);
    assert_eq!(p.probe_timeout_ms, 60_000);
    assert_eq!(p.max_retry_after_ms, 300_000);
}

#[test]
fn fresh_endpoint_is_up_with_no_stats() {
    let h = EndpointHealth::new();
    assert_eq!(h.gate(&policy(), T0), Gate::Up);
    assert_eq!(h.stats(T0), LiveStats::default());
}

#[test]
fn uptime_over_the_three_windows() {
    let mut h = EndpointHealth::new();
    // 2 hours ago: 1 failure (only in the day).
    fail(&mut h, T0 - 120 * MIN);
    // 20 minutes ago: 3 successes, 1 failure (in 30m and the day).
    for _ in 0..3 {
        ok(&mut h, T0 - 20 * MIN);
    }
    fail(&mut h, T0 - 20 * MIN);
    // 4 minutes ago (the oldest minute of the 5): 1 success; this minute: 1 success, 1 failure.
    ok(&mut h, T0 - 4 * MIN);
    ok(&mut h, T0 + 59_999);
    fail(&mut h, T0 + 1);
    let s = h.stats(T0 + 30_000);
    assert_eq!(s.uptime_5m, Some(100.0 * 2.0 / 3.0));
    assert_eq!(s.uptime_30m, Some(100.0 * 5.0 / 7.0));
    assert_eq!(s.uptime_1d, Some(100.0 * 5.0 / 8.0));
}

#[test]
fn uptime_buckets_expire_as_the_clock_moves() {
    let mut h = EndpointHealth::new();
    fail(&mut h, T0);
    ok(&mut h, T0 + 10 * MIN);
    // Five minutes later the success's minute is the oldest of the 5-minute window.
    assert_eq!(h.stats(T0 + 14 * MIN).uptime_5m, Some(100.0));
    assert_eq!(h.stats(T0 + 15 * MIN).uptime_5m, None);
    assert_eq!(h.stats(T0 + 15 * MIN).uptime_30m, Some(50.0));
    // The failure leaves the 30-minute window first.
    assert_eq!(h.stats(T0 + 30 * MIN).uptime_30m, Some(100.0));
    assert_eq!(h.stats(T0 + 40 * MIN).uptime_30m, None);
    assert_eq!(h.stats(T0 + 40 * MIN).uptime_1d, Some(50.0));
    assert_eq!(h.stats(T0 + DAY - 1).uptime_1d, Some(50.0));
    assert_eq!(h.stats(T0 + DAY).uptime_1d, Some(100.0));
    assert_eq!(h.stats(T0 + DAY + 10 * MIN).uptime_1d, None);
}

#[test]
fn reused_bucket_after_a_day_starts_from_zero() {
    let mut h = EndpointHealth::new();
    for _ in 0..10 {
        fail(&mut h, T0 + 5);
    }
    // Exactly a day later the same ring slot is reused: the old failures must be gone.
    ok(&mut h, T0 + DAY + 5);
    let s = h.stats(T0 + DAY + 5);
    assert_eq!(s.uptime_5m, Some(100.0));
    assert_eq!(s.uptime_1d, Some(100.0));
}

// ---- latency and throughput ----

#[test]
fn nearest_rank_percentiles() {
    let mut h = EndpointHealth::new();
    // Inserted out of order: 100, 99, ..., 1.
    for v in (1..=100).rev() {
        h.success(&policy(), T0, Some(f64::from(v)), Some(f64::from(v) * 10.0));
    }
    let s = h.stats(T0);
    let want = |k: f64| Percentiles {
        p50: 50.0 * k,
        p75: 75.0 * k,
        p90: 90.0 * k,
        p99: 99.0 * k,
    };
    assert_eq!(s.latency_30m, Some(want(1.0)));
    assert_eq!(s.throughput_30m, Some(want(10.0)));
}

#[test]
fn nearest_rank_on_small_sets() {
    let mut h = EndpointHealth::new();
    h.success(&policy(), T0, Some(7.0), None);
    let one = h.stats(T0).latency_30m.unwrap();
    assert_eq!((one.p50, one.p75, one.p90, one.p99), (7.0, 7.0, 7.0, 7.0));
    for v in [40.0, 10.0, 30.0] {
        h.success(&policy(), T0, Some(v), None);
    }
    // Sorted 7, 10, 30, 40: ranks ceil(0.5*4)=2, ceil(0.75*4)=3, ceil(0.9*4)=4, ceil(0.99*4)=4.
    let four = h.stats(T0).latency_30m.unwrap();
    assert_eq!(
        (four.p50, four.p75, four.p90, four.p99),
        (10.0, 30.0, 40.0, 40.0)
    );
}

#[test]
fn samples_expire_after_30_minutes() {
    let mut h = EndpointHealth::new();
    h.success(&policy(), T0, Some(1000.0), Some(5.0));
    h.success(&policy(), T0 + 10 * MIN, Some(10.0), Some(50.0));
    let s = h.stats(T0 + 30 * MIN - 1);
    assert_eq!(s.latency_30m.unwrap().p50, 10.0);
    assert_eq!(s.latency_30m.unwrap().p99, 1000.0);
    // The first sample is exactly 30 minutes old: out.
    let s = h.stats(T0 + 30 * MIN);
    assert_eq!(s.latency_30m.unwrap().p99, 10.0);
    assert_eq!(s.throughput_30m.unwrap().p50, 50.0);
    let s = h.stats(T0 + 40 * MIN);
    assert_eq!(s.latency_30m, None);
    assert_eq!(s.throughput_30m, None);
    // Uptime outlives the samples.
    assert_eq!(s.uptime_1d, Some(100.0));
}

#[test]
fn latency_and_throughput_are_independent() {
    let mut h = EndpointHealth::new();
    h.success(&policy(), T0, Some(200.0), None);
    h.success(&policy(), T0, None, Some(80.0));
    h.success(&policy(), T0, None, None);
    let s = h.stats(T0);
    assert_eq!(s.latency_30m.unwrap().p99, 200.0);
    assert_eq!(s.throughput_30m.unwrap().p50, 80.0);
    assert_eq!(s.uptime_5m, Some(100.0));
    let mut h = EndpointHealth::new();
    h.success(&policy(), T0, None, Some(1.0));
    assert_eq!(h.stats(T0).latency_30m, None);
}

#[test]
fn invalid_samples_are_ignored() {
    let mut h = EndpointHealth::new();
    h.success(&policy(), T0, Some(f64::NAN), Some(f64::INFINITY));
    h.success(&policy(), T0, Some(-1.0), Some(-3.0));
    let s = h.stats(T0);
    assert_eq!((s.latency_30m, s.throughput_30m), (None, None));
    assert_eq!(s.uptime_5m, Some(100.0));
}

#[test]
fn sample_ring_keeps_the_most_recent() {
    let mut h = EndpointHealth::new();
    // 512 slow samples, then 512 fast ones: only the fast ones remain.
    for i in 0..1024 {
        let v = if i < 512 { 1000.0 } else { 1.0 };
        h.success(&policy(), T0 + i, Some(v), None);
    }
    assert_eq!(h.stats(T0 + 1024).latency_30m.unwrap().p99, 1.0);
    // One more slow one overwrites the oldest fast one.
    h.success(&policy(), T0 + 2000, Some(1000.0), None);
    let p = h.stats(T0 + 2000).latency_30m.unwrap();
    assert_eq!((p.p99, p.p90), (1.0, 1.0));
    assert_eq!(h.latency.samples.len(), 512);
}

// ---- outage detection ----

#[test]
fn trips_at_min_failures() {
    let mut h = EndpointHealth::new();
    fail(&mut h, T0);
    fail(&mut h, T0 + 1000);
    assert_eq!(h.gate(&policy(), T0 + 1000), Gate::Up);
    assert!(h.try_begin(&policy(), T0 + 1000));
    fail(&mut h, T0 + 2000);
    assert_eq!(h.gate(&policy(), T0 + 2000), down(T0 + 32_000));
    assert!(!h.try_begin(&policy(), T0 + 2000));
}

#[test]
fn trips_at_the_ratio_but_not_below() {
    // 3 failures, 4 successes: 3/7 < 0.5.
    let mut h = EndpointHealth::new();
    for _ in 0..4 {
        ok(&mut h, T0);
    }
    for i in 0..3 {
        fail(&mut h, T0 + i);
    }
    assert_eq!(h.gate(&policy(), T0 + 3), Gate::Up);
    // A fourth failure: 4/8 = 0.5, at the ratio: trips.
    fail(&mut h, T0 + 10);
    assert_eq!(h.gate(&policy(), T0 + 10), down(T0 + 30_010));
}

#[test]
fn no_trip_below_min_failures_even_at_full_ratio() {
    let p = HealthPolicy {
        outage_min_failures: 5,
        ..policy()
    };
    let mut h = EndpointHealth::new();
    for i in 0..4 {
        h.failure(&p, T0 + i, None);
    }
    assert_eq!(h.gate(&p, T0 + 4), Gate::Up);
    h.failure(&p, T0 + 5, None);
    assert!(matches!(h.gate(&p, T0 + 5), Gate::Down { .. }));
}

#[test]
fn failures_outside_the_window_do_not_count() {
    let mut h = EndpointHealth::new();
    fail(&mut h, T0);
    fail(&mut h, T0 + 10_000);
    // The first failure is exactly 30 s old: out of the window, so only 2 count.
    fail(&mut h, T0 + 30_000);
    assert_eq!(h.gate(&policy(), T0 + 30_000), Gate::Up);
    fail(&mut h, T0 + 30_001);
    assert_eq!(h.gate(&policy(), T0 + 30_001), down(T0 + 60_001));
}

#[test]
fn successes_leaving_the_window_raise_the_ratio() {
    let mut h = EndpointHealth::new();
    for _ in 0..10 {
        ok(&mut h, T0);
    }
    fail(&mut h, T0 + 20_000);
    fail(&mut h, T0 + 25_000);
    fail(&mut h, T0 + 29_000);
    assert_eq!(h.gate(&policy(), T0 + 29_000), Gate::Up);
    // The successes have left the window: 4 of 4 failed.
    fail(&mut h, T0 + 31_000);
    assert_eq!(h.gate(&policy(), T0 + 31_000), down(T0 + 61_000));
}

// ---- breaker ----

#[test]
fn down_then_half_open_after_open_ms() {
    let h = tripped_at(T0);
    assert_eq!(h.gate(&policy(), T0 + 29_999), down(T0 + 30_000));
    assert_eq!(h.gate(&policy(), T0 + 30_000), Gate::HalfOpen);
    assert_eq!(h.gate(&policy(), T0 + 10 * MIN), Gate::HalfOpen);
}

#[test]
fn exactly_one_probe_and_its_timeout() {
    let mut h = tripped_at(T0);
    let t = T0 + 30_000;
    assert!(!h.try_begin(&policy(), t - 1));
    assert!(h.try_begin(&policy(), t));
    assert!(!h.try_begin(&policy(), t));
    assert!(!h.try_begin(&policy(), t + 59_999));
    // gate() stays HalfOpen and never grants.
    assert_eq!(h.gate(&policy(), t + 1), Gate::HalfOpen);
    // The probe never reported: after the timeout one more probe may go.
    assert!(h.try_begin(&policy(), t + 60_000));
    assert!(!h.try_begin(&policy(), t + 60_001));
}

#[test]
fn probe_success_closes_and_old_failures_do_not_retrip() {
    let mut h = tripped_at(T0);
    let t = T0 + 30_000;
    assert!(h.try_begin(&policy(), t));
    h.success(&policy(), t + 500, Some(300.0), Some(40.0));
    assert_eq!(h.gate(&policy(), t + 500), Gate::Up);
    assert!(h.try_begin(&policy(), t + 500));
    assert!(h.try_begin(&policy(), t + 500));
    // The three failures are still within 30 s of t + 600, but were cleared by the probe.
    fail(&mut h, t + 600);
    assert_eq!(h.gate(&policy(), t + 600), Gate::Up);
    // A fresh outage trips again, for the base open period (consecutive trips were reset).
    fail(&mut h, t + 700);
    fail(&mut h, t + 800);
    assert_eq!(h.gate(&policy(), t + 800), down(t + 800 + 30_000));
}

#[test]
fn probe_failure_retrips_doubling_up_to_the_cap() {
    let mut h = tripped_at(T0);
    let mut t = T0;
    // Open periods: 30 s (first trip), then 60, 120, 240, then capped at 300.
    for want in [60_000, 120_000, 240_000, 300_000, 300_000] {
        let prev_open = match h.gate(&policy(), t) {
            Gate::Down { until_ms, .. } => until_ms,
            g => panic!("{g:?}"),
        };
        t = prev_open;
        assert_eq!(h.gate(&policy(), t), Gate::HalfOpen);
        assert!(h.try_begin(&policy(), t));
        fail(&mut h, t + 100);
        assert_eq!(h.gate(&policy(), t + 100), down(t + 100 + want));
        t += 100;
    }
    // After a success of a probe the next trip is back to 30 s.
    t += 300_000;
    assert!(h.try_begin(&policy(), t));
    ok(&mut h, t);
    for _ in 0..3 {
        fail(&mut h, t);
    }
    assert_eq!(h.gate(&policy(), t), down(t + 30_000));
}

#[test]
fn reports_while_open_without_a_probe_just_count() {
    let mut h = tripped_at(T0);
    // A request that started before the trip succeeds: no close, no change of the period.
    ok(&mut h, T0 + 1000);
    assert_eq!(h.gate(&policy(), T0 + 1000), down(T0 + 30_000));
    fail(&mut h, T0 + 2000);
    assert_eq!(h.gate(&policy(), T0 + 2000), down(T0 + 30_000));
    // Also in half-open before any probe was granted.
    ok(&mut h, T0 + 31_000);
    assert_eq!(h.gate(&policy(), T0 + 31_000), Gate::HalfOpen);
    let s = h.stats(T0 + 31_000);
    assert_eq!(s.uptime_5m, Some(100.0 * 2.0 / 6.0));
}

// ---- Retry-After ----

#[test]
fn retry_after_cooldown_ends_without_probe() {
    let mut h = EndpointHealth::new();
    h.failure(&policy(), T0, Some(10_000));
    assert_eq!(h.gate(&policy(), T0), limited(T0 + 10_000));
    assert!(!h.try_begin(&policy(), T0 + 9_999));
    assert_eq!(h.gate(&policy(), T0 + 10_000), Gate::Up);
    assert!(h.try_begin(&policy(), T0 + 10_000));
    assert!(h.try_begin(&policy(), T0 + 10_000));
}

#[test]
fn retry_after_is_capped_and_never_shortened() {
    let mut h = EndpointHealth::new();
    h.failure(&policy(), T0, Some(3_600_000));
    assert_eq!(h.gate(&policy(), T0), limited(T0 + 300_000));
    // A shorter Retry-After later does not end the cooldown earlier.
    h.failure(&policy(), T0 + 1000, Some(1000));
    assert_eq!(h.gate(&policy(), T0 + 1000), limited(T0 + 300_000));
    let mut h = EndpointHealth::new();
    h.failure(&policy(), T0, Some(u64::MAX));
    assert_eq!(h.gate(&policy(), T0), limited(T0 + 300_000));
    // A zero Retry-After holds nothing.
    let mut h = EndpointHealth::new();
    h.failure(&policy(), T0, Some(0));
    assert_eq!(h.gate(&policy(), T0), Gate::Up);
}

#[test]
fn retry_after_and_breaker_together() {
    // Retry-After longer than the open period: rate limited until the later time.
    let mut h = EndpointHealth::new();
    fail(&mut h, T0);
    fail(&mut h, T0);
    h.failure(&policy(), T0, Some(100_000));
    assert_eq!(h.gate(&policy(), T0), limited(T0 + 100_000));
    // The open period is over but the provider still asks to wait: no probe yet.
    assert_eq!(h.gate(&policy(), T0 + 50_000), limited(T0 + 100_000));
    assert!(!h.try_begin(&policy(), T0 + 50_000));
    // Then the breaker (not the cooldown) decides: half-open, not up.
    assert_eq!(h.gate(&policy(), T0 + 100_000), Gate::HalfOpen);

    // Retry-After shorter than the open period: the breaker holds it down.
    let mut h = EndpointHealth::new();
    fail(&mut h, T0);
    fail(&mut h, T0);
    h.failure(&policy(), T0, Some(5_000));
    assert_eq!(h.gate(&policy(), T0), down(T0 + 30_000));
    assert_eq!(h.gate(&policy(), T0 + 30_000), Gate::HalfOpen);
}

// ---- clocks ----

#[test]
fn clock_jumping_a_day_forward() {
    let mut h = tripped_at(T0);
    h.success(&policy(), T0, Some(100.0), Some(10.0));
    let later = T0 + DAY + 7 * MIN + 123;
    let s = h.stats(later);
    assert_eq!(s, LiveStats::default());
    assert_eq!(h.gate(&policy(), later), Gate::HalfOpen);
    assert!(h.try_begin(&policy(), later));
    ok(&mut h, later);
    assert_eq!(h.gate(&policy(), later), Gate::Up);
    let s = h.stats(later);
    assert_eq!(s.uptime_5m, Some(100.0));
    assert_eq!(s.uptime_1d, Some(100.0));
    // A whole year, then a failure burst: only the new failures count.
    let much_later = later + 365 * DAY;
    fail(&mut h, much_later);
    assert_eq!(h.stats(much_later).uptime_1d, Some(0.0));
    assert_eq!(h.gate(&policy(), much_later), Gate::Up);
}

#[test]
fn clock_stepping_back_does_not_panic() {
    let mut h = EndpointHealth::new();
    ok(&mut h, T0 + 5 * MIN);
    fail(&mut h, T0 + 5 * MIN - 1500);
    ok(&mut h, T0 + 5 * MIN - 200);
    let s = h.stats(T0 + 5 * MIN - 2000);
    assert!(s.uptime_5m.is_some());
    let s = h.stats(T0 + 5 * MIN);
    assert_eq!(s.uptime_5m, Some(100.0 * 2.0 / 3.0));
    // A probe granted "in the future" stays outstanding.
    let mut h = tripped_at(T0);
    assert!(h.try_begin(&policy(), T0 + 40_000));
    assert!(!h.try_begin(&policy(), T0 + 39_000));
}

#[test]
fn extreme_times_do_not_panic() {
    for now in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        let mut h = EndpointHealth::new();
        for _ in 0..5 {
            h.failure(&policy(), now, Some(u64::MAX));
            h.success(&policy(), now, Some(1.0), Some(1.0));
            h.try_begin(&policy(), now);
        }
        let _ = h.gate(&policy(), now);
        let s = h.stats(now);
        assert!(s.uptime_1d.is_some());
    }
}

// ---- invariants ----

/// splitmix64: a tiny deterministic generator, enough for a property-style run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn invariants_over_a_random_run() {
    for seed in 0..8u64 {
        let mut rng = SplitMix(seed);
        let p = policy();
        let mut h = EndpointHealth::new();
        let mut now = T0;
        let (mut trips, mut probes) = (0, 0);
        for _ in 0..5000 {
            // Mostly small steps, sometimes minutes, rarely hours; occasionally a step back.
            now += match rng.below(100) {
                0 => 3 * 3_600_000,
                1..=5 => (rng.below(10) as i64) * MIN,
                6..=8 => -(rng.below(2000) as i64),
                _ => rng.below(3000) as i64,
            };
            // Failure-heavy phases alternate with healthy ones.
            let failing = (now / (20 * MIN)) % 2 == 0;
            let before = h.gate(&p, now);
            let granted = h.try_begin(&p, now);
            match before {
                Gate::Up => assert!(granted),
                Gate::Down { until_ms, .. } => {
                    assert!(!granted);
                    assert!(until_ms > now, "down until the past: {until_ms} <= {now}");
                    // Bounded by the longest hold, plus what the clock stepped back since it began.
                    assert!(until_ms - now <= p.max_open_ms.max(p.max_retry_after_ms) + 60_000);
                }
                Gate::HalfOpen => {
                    if granted {
                        probes += 1;
                        // Only one probe until it reports or times out.
                        assert!(!h.try_begin(&p, now));
                    }
                }
            }
            if !granted && rng.below(4) != 0 {
                continue;
            }
            let fails = rng.below(100) < if failing { 70 } else { 5 };
            if fails {
                let retry = (rng.below(20) == 0).then(|| rng.below(600_000));
                let was_up = matches!(h.gate(&p, now), Gate::Up | Gate::HalfOpen);
                h.failure(&p, now, retry);
                if was_up
                    && matches!(
                        h.gate(&p, now),
                        Gate::Down {
                            rate_limited: false,
                            ..
                        }
                    )
                {
                    trips += 1;
                }
            } else {
                let ttft = (rng.below(10) != 0).then(|| rng.below(5000) as f64);
                let tps = (rng.below(10) != 0).then(|| rng.below(200) as f64);
                h.success(&p, now, ttft, tps);
            }
            let s = h.stats(now);
            for u in [s.uptime_5m, s.uptime_30m, s.uptime_1d]
                .into_iter()
                .flatten()
            {
                assert!((0.0..=100.0).contains(&u), "uptime {u}");
            }
            for q in [s.latency_30m, s.throughput_30m].into_iter().flatten() {
                assert!(q.p50 <= q.p75 && q.p75 <= q.p90 && q.p90 <= q.p99, "{q:?}");
                assert!(q.p50 >= 0.0);
            }
            if let Some(q) = s.latency_30m {
                assert!(q.p99 < 5000.0);
            }
            // Something was attempted this minute, so the short window has data.
            assert!(s.uptime_5m.is_some());
            assert!(h.outage.len() <= OUTAGE_EVENT_CAP);
            assert_eq!(h.outage_failures, h.outage.iter().filter(|e| !e.ok).count());
        }
        // The run must exercise the breaker, not just pass vacuously.
        assert!(
            trips > 0 && probes > 0,
            "seed {seed}: {trips} trips, {probes} probes"
        );
    }
}
