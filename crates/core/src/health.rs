//! Endpoint health: live uptime, latency and throughput, outage detection and circuit breaking.
//!
//! One [`EndpointHealth`] per endpoint, kept in memory by the gateway and updated on the request
//! hot path, so every update is O(1) and memory is bounded (under 40 KB per endpoint, allocated
//! as traffic arrives). Pure: the caller passes the time (`now_ms`, Unix milliseconds) and the
//! [`HealthPolicy`], and wraps each value in its own lock. Clocks that jump far forward are
//! handled by stamping every bucket with its own minute; a clock that steps back a little is
//! tolerated (nothing panics; the attempt counts at the time given).
//!
//! The breaker is the usual one: Closed (`Up`) until enough of the recent attempts fail, then Open
//! (`Down`) for a period that doubles with each consecutive trip, then `HalfOpen`, where exactly
//! one probe may go; its success closes the breaker, its failure opens it again. A provider's
//! Retry-After is a separate cooldown that ends on its own, without a probe.

use serde::Serialize;
use std::collections::VecDeque;

/// Thresholds of outage detection and circuit breaking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Failures are counted over this trailing window.
    pub outage_window_ms: i64,
    /// Fewer failures than this in the window never trip the breaker.
    pub outage_min_failures: u32,
    /// Failures / attempts in the window at or above this trip the breaker.
    pub outage_failure_ratio: f64,
    /// How long a tripped endpoint is skipped before one half-open probe.
    pub open_ms: i64,
    /// Consecutive trips double `open_ms` up to this.
    pub max_open_ms: i64,
    /// A granted probe that never reports frees the probe slot after this.
    pub probe_timeout_ms: i64,
    /// A provider's Retry-After is capped at this.
    pub max_retry_after_ms: i64,
}

impl Default for HealthPolicy {
    fn default() -> HealthPolicy {
        HealthPolicy {
            outage_window_ms: 30_000,
            outage_min_failures: 3,
            outage_failure_ratio: 0.5,
            open_ms: 30_000,
            max_open_ms: 300_000,
            probe_timeout_ms: 60_000,
            max_retry_after_ms: 300_000,
        }
    }
}

/// Percentiles of a distribution over the last 30 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
}

/// What `/models/{author}/{slug}/endpoints` reports and what sorting uses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LiveStats {
    /// Percent (0..=100) of attempts in the last 5 minutes that succeeded; `None` without attempts.
    pub uptime_5m: Option<f64>,
    pub uptime_30m: Option<f64>,
    pub uptime_1d: Option<f64>,
    /// Time to first token, milliseconds.
    pub latency_30m: Option<Percentiles>,
    /// Output tokens per second.
    pub throughput_30m: Option<Percentiles>,
}

/// Whether routing may send traffic to the endpoint now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Healthy: use normally.
    Up,
    /// Tripped and its open period is over: one probe may go (see [`EndpointHealth::try_begin`]).
    HalfOpen,
    /// Skip until `until_ms`: a tripped breaker (`rate_limited: false`) or a provider's
    /// Retry-After (`rate_limited: true`).
    Down { until_ms: i64, rate_limited: bool },
}

const MINUTE_MS: i64 = 60_000;
/// Minutes in the uptime ring: one day.
const DAY_MINUTES: i64 = 1440;
/// Latency and throughput are reported over this trailing window.
const SAMPLE_WINDOW_MS: i64 = 30 * MINUTE_MS;
/// Samples kept per distribution; older ones are overwritten even if still in the window, which
/// keeps busy endpoints' percentiles about their most recent traffic.
const SAMPLE_CAP: usize = 512;
/// Attempts kept for outage detection. On a busy endpoint the ratio is over the latest this many
/// attempts of the window, which is what matters for deciding it is failing now.
const OUTAGE_EVENT_CAP: usize = 256;

/// Attempts of one minute. `minute` is the minute number (Unix ms / 60 000, truncated to 32 bits:
/// distinct for any two minutes less than 8000 years apart) so stale buckets are recognised and
/// reset when reused, however far the clock moved.
#[derive(Debug, Clone, Copy, Default)]
struct MinuteBucket {
    minute: u32,
    ok: u32,
    fail: u32,
}

/// One attempt of the outage window.
#[derive(Debug, Clone, Copy)]
struct OutageEvent {
    at_ms: i64,
    ok: bool,
}

/// A bounded ring of timestamped samples, overwriting the oldest.
#[derive(Debug, Clone, Default)]
struct SampleRing {
    samples: Vec<(i64, f64)>,
    /// Where the next sample goes once the ring is full.
    next: usize,
}

impl SampleRing {
    fn push(&mut self, at_ms: i64, value: f64) {
        if self.samples.len() < SAMPLE_CAP {
            self.samples.push((at_ms, value));
        } else {
            self.samples[self.next] = (at_ms, value);
            self.next = (self.next + 1) % SAMPLE_CAP;
        }
    }

    /// Nearest-rank percentiles of the samples of the last 30 minutes.
    fn percentiles(&self, now_ms: i64) -> Option<Percentiles> {
        let since = now_ms.saturating_sub(SAMPLE_WINDOW_MS);
        let mut values: Vec<f64> = self
            .samples
            .iter()
            .filter(|(at, _)| *at > since)
            .map(|(_, v)| *v)
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        // Nearest rank: the smallest value with at least p% of the samples at or below it.
        let rank = |p: usize| {
            let r = (p * values.len()).div_ceil(100);
            values[r.clamp(1, values.len()) - 1]
        };
        Some(Percentiles {
            p50: rank(50),
            p75: rank(75),
            p90: rank(90),
            p99: rank(99),
        })
    }
}

/// Live health and performance of one endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointHealth {
    /// Per-minute attempts over a day, indexed by minute mod 1440; allocated on first attempt.
    minutes: Option<Box<[MinuteBucket]>>,
    /// Attempts of the trailing outage window, oldest first, times never decreasing.
    outage: VecDeque<OutageEvent>,
    /// Failures among `outage`, kept so evaluating the window is O(1).
    outage_failures: usize,
    latency: SampleRing,
    throughput: SampleRing,
    /// `Some` while the breaker is tripped: skip until then, half-open after.
    open_until_ms: Option<i64>,
    /// Trips since the last successful probe; each doubles the open period.
    consecutive_trips: u32,
    /// When the outstanding half-open probe was granted.
    probe_started_ms: Option<i64>,
    /// End of the provider's Retry-After cooldown (possibly past).
    retry_until_ms: Option<i64>,
}

impl EndpointHealth {
    pub fn new() -> EndpointHealth {
        EndpointHealth::default()
    }

    /// Read-only view for planning (does not grant probes).
    pub fn gate(&self, _policy: &HealthPolicy, now_ms: i64) -> Gate {
        let retry = self.retry_until_ms.filter(|&until| now_ms < until);
        match (self.open_until_ms, retry) {
            (None, None) => Gate::Up,
            (None, Some(until_ms)) => Gate::Down {
                until_ms,
                rate_limited: true,
            },
            (Some(open), retry) if now_ms < open => match retry {
                Some(until_ms) if until_ms > open => Gate::Down {
                    until_ms,
                    rate_limited: true,
                },
                _ => Gate::Down {
                    until_ms: open,
                    rate_limited: false,
                },
            },
            // Open period over but the provider asked us to wait: the probe waits too.
            (Some(_), Some(until_ms)) => Gate::Down {
                until_ms,
                rate_limited: true,
            },
            (Some(_), None) => Gate::HalfOpen,
        }
    }

    /// Called right before an attempt is sent. `Up`: true. `Down`: false. `HalfOpen`: true for
    /// exactly one caller (the probe), false for others until that probe reports or
    /// `probe_timeout_ms` passes.
    pub fn try_begin(&mut self, policy: &HealthPolicy, now_ms: i64) -> bool {
        match self.gate(policy, now_ms) {
            Gate::Up => true,
            Gate::Down { .. } => false,
            Gate::HalfOpen => {
                if let Some(started) = self.probe_started_ms {
                    // A clock that stepped back gives a negative age: still outstanding.
                    if now_ms.saturating_sub(started) < policy.probe_timeout_ms {
                        return false;
                    }
                }
                self.probe_started_ms = Some(now_ms);
                true
            }
        }
    }

    /// An attempt that succeeded. `ttft_ms`: time to first token (or to the response for
    /// non-streaming); `tokens_per_s`: output throughput, `None` when unknown. Negative or
    /// non-finite samples are ignored.
    ///
    /// While a probe is outstanding any success closes the breaker: without a per-attempt token
    /// the probe's report cannot be told from a late one, and either shows the endpoint answers.
    pub fn success(
        &mut self,
        policy: &HealthPolicy,
        now_ms: i64,
        ttft_ms: Option<f64>,
        tokens_per_s: Option<f64>,
    ) {
        self.count_minute(now_ms, true);
        self.record_outage(policy, now_ms, true);
        if let Some(v) = ttft_ms.filter(|v| v.is_finite() && *v >= 0.0) {
            self.latency.push(now_ms, v);
        }
        if let Some(v) = tokens_per_s.filter(|v| v.is_finite() && *v >= 0.0) {
            self.throughput.push(now_ms, v);
        }
        if self.open_until_ms.is_some() && self.probe_started_ms.is_some() {
            self.open_until_ms = None;
            self.probe_started_ms = None;
            self.consecutive_trips = 0;
            // The failures that tripped it must not trip it again at the next failure.
            self.outage.clear();
            self.outage_failures = 0;
        }
    }

    /// An attempt that failed for a provider reason (429, 5xx, timeout, connection error,
    /// unreadable body). `retry_after_ms`, the provider's Retry-After, holds the endpoint `Down`
    /// (rate limited) until `now + min(retry_after, max_retry_after_ms)` unless already held longer.
    pub fn failure(&mut self, policy: &HealthPolicy, now_ms: i64, retry_after_ms: Option<u64>) {
        self.count_minute(now_ms, false);
        self.record_outage(policy, now_ms, false);
        if let Some(retry_after) = retry_after_ms {
            let wait = i64::try_from(retry_after)
                .unwrap_or(i64::MAX)
                .min(policy.max_retry_after_ms)
                .max(0);
            let until = now_ms.saturating_add(wait);
            self.retry_until_ms = Some(self.retry_until_ms.map_or(until, |u| u.max(until)));
        }
        match (self.open_until_ms, self.probe_started_ms) {
            // Closed: trip if the window says the endpoint is failing.
            (None, _) => {
                if self.outage_tripped(policy) {
                    self.trip(policy, now_ms);
                }
            }
            // The probe (or, indistinguishably, a late attempt during it) failed: open again.
            (Some(_), Some(_)) => self.trip(policy, now_ms),
            // Already open: a late attempt, just counted.
            (Some(_), None) => {}
        }
    }

    /// Uptime over the last 5 minutes, 30 minutes and day; latency and throughput percentiles over
    /// the last 30 minutes.
    pub fn stats(&self, now_ms: i64) -> LiveStats {
        LiveStats {
            uptime_5m: self.uptime(now_ms, 5),
            uptime_30m: self.uptime(now_ms, 30),
            uptime_1d: self.uptime(now_ms, DAY_MINUTES),
            latency_30m: self.latency.percentiles(now_ms),
            throughput_30m: self.throughput.percentiles(now_ms),
        }
    }

    /// Opens the breaker for `open_ms` doubled per consecutive trip, capped at `max_open_ms`.
    fn trip(&mut self, policy: &HealthPolicy, now_ms: i64) {
        self.consecutive_trips = self.consecutive_trips.saturating_add(1);
        let mut open = policy.open_ms.max(0);
        for _ in 1..self.consecutive_trips {
            if open == 0 || open >= policy.max_open_ms {
                break;
            }
            open = open.saturating_mul(2);
        }
        let open = open.min(policy.max_open_ms.max(0));
        self.open_until_ms = Some(now_ms.saturating_add(open));
        self.probe_started_ms = None;
    }

    /// Whether the trailing window's failures reach both the minimum and the ratio.
    fn outage_tripped(&self, policy: &HealthPolicy) -> bool {
        let attempts = self.outage.len();
        let failures = self.outage_failures;
        attempts > 0
            && failures >= policy.outage_min_failures as usize
            && failures as f64 / attempts as f64 >= policy.outage_failure_ratio
    }

    /// Adds an attempt to the outage window and drops what fell out of it.
    fn record_outage(&mut self, policy: &HealthPolicy, now_ms: i64, ok: bool) {
        // Times never decrease within the deque, so expiry is always at the front.
        let at_ms = self.outage.back().map_or(now_ms, |e| e.at_ms.max(now_ms));
        if self.outage.len() >= OUTAGE_EVENT_CAP {
            self.pop_outage();
        }
        self.outage.push_back(OutageEvent { at_ms, ok });
        if !ok {
            self.outage_failures += 1;
        }
        let since = now_ms.saturating_sub(policy.outage_window_ms.max(0));
        while self.outage.front().is_some_and(|e| e.at_ms <= since) {
            self.pop_outage();
        }
    }

    fn pop_outage(&mut self) {
        if let Some(e) = self.outage.pop_front() {
            if !e.ok {
                self.outage_failures -= 1;
            }
        }
    }

    fn count_minute(&mut self, now_ms: i64, ok: bool) {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let buckets = self.minutes.get_or_insert_with(|| {
            vec![MinuteBucket::default(); DAY_MINUTES as usize].into_boxed_slice()
        });
        let bucket = &mut buckets[minute.rem_euclid(DAY_MINUTES) as usize];
        let stamp = minute as u32;
        if bucket.minute != stamp {
            *bucket = MinuteBucket {
                minute: stamp,
                ok: 0,
                fail: 0,
            };
        }
        if ok {
            bucket.ok = bucket.ok.saturating_add(1);
        } else {
            bucket.fail = bucket.fail.saturating_add(1);
        }
    }

    /// Percent of successful attempts over the last `minutes` minutes, the current one included.
    fn uptime(&self, now_ms: i64, minutes: i64) -> Option<f64> {
        let buckets = self.minutes.as_ref()?;
        let now_minute = now_ms.div_euclid(MINUTE_MS);
        let (mut ok, mut fail) = (0u64, 0u64);
        for back in 0..minutes {
            let minute = now_minute.saturating_sub(back);
            let bucket = &buckets[minute.rem_euclid(DAY_MINUTES) as usize];
            if bucket.minute == minute as u32 {
                ok += u64::from(bucket.ok);
                fail += u64::from(bucket.fail);
            }
        }
        let attempts = ok + fail;
        (attempts > 0).then(|| 100.0 * ok as f64 / attempts as f64)
    }
}

#[cfg(test)]
mod tests;
