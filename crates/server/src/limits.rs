//! Rate limits: requests and tokens per fixed window, counted in memory.
//!
//! `:free` models: requests per minute and per UTC day per account (a larger daily quota once the
//! account has been granted enough credits). From config: requests and tokens per minute per key
//! and per account. A request over any limit gets 429 with `Retry-After` and OpenRouter's
//! `X-RateLimit-Limit/Remaining/Reset`. Tokens are counted when a generation settles, so a minute's
//! token limit stops new requests once it is used up. The free daily counter is seeded from the
//! database on an account's first free request, so a restart does not reset it.

use crate::config::RateLimits;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchyard_core::error::{ApiError, ErrorCode, RateLimitInfo};
use switchyard_core::generation::utc_window_starts;
use switchyard_core::money::Money;
use switchyard_store::Store;

const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Counter {
    FreeMinute(String),
    FreeDay(String),
    KeyRequests(String),
    KeyTokens(String),
    AccountRequests(String),
    AccountTokens(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start_ms: i64,
    count: u64,
}

/// One limit that applies to a request.
struct Check {
    counter: Counter,
    limit: u64,
    start_ms: i64,
    end_ms: i64,
    /// Requests count one at admission; tokens are added at settlement.
    counts_requests: bool,
    what: &'static str,
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    config: RateLimits,
    windows: Arc<Mutex<HashMap<Counter, Window>>>,
}

impl RateLimiter {
    pub fn new(config: RateLimits) -> RateLimiter {
        RateLimiter {
            config,
            windows: Arc::default(),
        }
    }

    pub fn config(&self) -> &RateLimits {
        &self.config
    }

    /// Counts a request, or refuses it with 429 if any applicable window is full.
    /// `granted` is the account's total granted credits (for the funded free quota).
    pub async fn admit(
        &self,
        store: &Store,
        key_hash: &str,
        account_id: &str,
        free: bool,
        granted: Money,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let minute = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let [day, _, _] = utc_window_starts(now_ms);
        let c = &self.config;
        let mut checks = Vec::new();
        let per_minute = |counter, limit: u64, counts_requests, what| Check {
            counter,
            limit,
            start_ms: minute,
            end_ms: minute + MINUTE_MS,
            counts_requests,
            what,
        };
        if free {
            let daily = if granted >= c.free_funded_threshold {
                c.free_requests_per_day_funded
            } else {
                c.free_requests_per_day
            };
            self.seed_free_day(store, account_id, day).await;
            checks.push(per_minute(
                Counter::FreeMinute(account_id.to_owned()),
                c.free_requests_per_minute.into(),
                true,
                "free-model requests per minute",
            ));
            checks.push(Check {
                counter: Counter::FreeDay(account_id.to_owned()),
                limit: daily.into(),
                start_ms: day,
                end_ms: day + 86_400_000,
                counts_requests: true,
                what: "free-model requests per day",
            });
        }
        if let Some(limit) = c.key_requests_per_minute {
            checks.push(per_minute(
                Counter::KeyRequests(key_hash.to_owned()),
                limit.into(),
                true,
                "requests per minute for this key",
            ));
        }
        if let Some(limit) = c.key_tokens_per_minute {
            checks.push(per_minute(
                Counter::KeyTokens(key_hash.to_owned()),
                limit,
                false,
                "tokens per minute for this key",
            ));
        }
        if let Some(limit) = c.account_requests_per_minute {
            checks.push(per_minute(
                Counter::AccountRequests(account_id.to_owned()),
                limit.into(),
                true,
                "requests per minute for this account",
            ));
        }
        if let Some(limit) = c.account_tokens_per_minute {
            checks.push(per_minute(
                Counter::AccountTokens(account_id.to_owned()),
                limit,
                false,
                "tokens per minute for this account",
            ));
        }
        if checks.is_empty() {
            return Ok(());
        }
        let mut windows = self.lock();
        for check in &checks {
            let used = current(&windows, &check.counter, check.start_ms);
            if used >= check.limit {
                let retry_after = ((check.end_ms - now_ms).max(0) as u64).div_ceil(1000);
                let mut err = ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "Rate limit exceeded: {} {}; try again in {retry_after} s",
                        check.limit, check.what
                    ),
                );
                err.retry_after = Some(retry_after);
                err.rate_limit = Some(RateLimitInfo {
                    limit: check.limit,
                    remaining: 0,
                    reset_ms: check.end_ms,
                });
                return Err(err);
            }
        }
        for check in checks.iter().filter(|c| c.counts_requests) {
            add(&mut windows, &check.counter, check.start_ms, 1);
        }
        Ok(())
    }

    /// Counts tokens of a settled generation against the per-minute token limits.
    pub fn record_tokens(&self, key_hash: &str, account_id: &str, tokens: u64, now_ms: i64) {
        if self.config.key_tokens_per_minute.is_none()
            && self.config.account_tokens_per_minute.is_none()
        {
            return;
        }
        let minute = now_ms - now_ms.rem_euclid(MINUTE_MS);
        let mut windows = self.lock();
        add(
            &mut windows,
            &Counter::KeyTokens(key_hash.to_owned()),
            minute,
            tokens,
        );
        add(
            &mut windows,
            &Counter::AccountTokens(account_id.to_owned()),
            minute,
            tokens,
        );
    }

    /// Loads today's free requests of an account from the database, once per day and process.
    async fn seed_free_day(&self, store: &Store, account_id: &str, day_start_ms: i64) {
        let counter = Counter::FreeDay(account_id.to_owned());
        if self
            .lock()
            .get(&counter)
            .is_some_and(|w| w.start_ms == day_start_ms)
        {
            return;
        }
        let count = match store.free_requests_since(account_id, day_start_ms).await {
            Ok(n) => n.max(0) as u64,
            Err(e) => {
                tracing::error!(error = %e, "free-request count failed; counting from zero");
                0
            }
        };
        let mut windows = self.lock();
        // Another request may have seeded it meanwhile; keep the larger count.
        let entry = windows.entry(counter).or_insert(Window {
            start_ms: day_start_ms,
            count,
        });
        if entry.start_ms != day_start_ms {
            *entry = Window {
                start_ms: day_start_ms,
                count,
            };
        }
    }

    /// Forgets windows that ended more than a day ago, so idle keys do not accumulate.
    pub fn prune(&self, now_ms: i64) {
        self.lock()
            .retain(|_, w| w.start_ms > now_ms - 2 * 86_400_000);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Counter, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn current(windows: &HashMap<Counter, Window>, counter: &Counter, start_ms: i64) -> u64 {
    windows
        .get(counter)
        .filter(|w| w.start_ms == start_ms)
        .map_or(0, |w| w.count)
}

fn add(windows: &mut HashMap<Counter, Window>, counter: &Counter, start_ms: i64, n: u64) {
    let window = windows
        .entry(counter.clone())
        .or_insert(Window { start_ms, count: 0 });
    if window.start_ms != start_ms {
        *window = Window { start_ms, count: 0 };
    }
    window.count = window.count.saturating_add(n);
}
