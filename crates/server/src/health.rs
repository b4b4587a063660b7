//! The gateway's live view of every endpoint it has sent traffic to: outcomes, time to first
//! token and throughput, kept in memory (core's [`EndpointHealth`] per endpoint).
//!
//! Updates take one short per-endpoint lock and never await; the map itself is only written
//! the first time an endpoint is used. Routing reads it through [`Observed`], and
//! `/models/{author}/{slug}/endpoints` reports it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use switchyard_core::health::{EndpointHealth, Gate, HealthPolicy, LiveStats};
use switchyard_core::routing::{Candidate, Observed};

/// Every observed endpoint's health, keyed by model id and endpoint tag.
pub struct HealthBook {
    policy: HealthPolicy,
    endpoints: RwLock<HashMap<String, Arc<Mutex<EndpointHealth>>>>,
}

/// The identity of an endpoint in the book: the same endpoint serves one model only.
pub fn endpoint_key(model_id: &str, tag: &str) -> String {
    format!("{model_id}\u{0}{tag}")
}

impl HealthBook {
    pub fn new(policy: HealthPolicy) -> HealthBook {
        HealthBook {
            policy,
            endpoints: RwLock::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Mutex<EndpointHealth>>> {
        self.endpoints
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    fn get_or_insert(&self, key: &str) -> Arc<Mutex<EndpointHealth>> {
        if let Some(found) = self.get(key) {
            return found;
        }
        self.endpoints
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// Runs `f` on an endpoint's state under its lock (a panic elsewhere does not poison it).
    fn with<R>(&self, key: &str, f: impl FnOnce(&mut EndpointHealth) -> R) -> R {
        let entry = self.get_or_insert(key);
        let mut health = entry.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut health)
    }

    pub fn gate(&self, key: &str, now_ms: i64) -> Gate {
        match self.get(key) {
            Some(entry) => entry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .gate(&self.policy, now_ms),
            None => Gate::Up,
        }
    }

    /// Whether an attempt may go now (grants the single probe of a half-open endpoint).
    pub fn try_begin(&self, key: &str, now_ms: i64) -> bool {
        if self.get(key).is_none() {
            return true;
        }
        self.with(key, |h| h.try_begin(&self.policy, now_ms))
    }

    pub fn success(&self, key: &str, now_ms: i64, ttft_ms: Option<f64>, tokens_per_s: Option<f64>) {
        self.with(key, |h| {
            h.success(&self.policy, now_ms, ttft_ms, tokens_per_s)
        });
    }

    pub fn failure(&self, key: &str, now_ms: i64, retry_after_ms: Option<u64>) {
        self.with(key, |h| h.failure(&self.policy, now_ms, retry_after_ms));
    }

    pub fn stats(&self, key: &str, now_ms: i64) -> LiveStats {
        match self.get(key) {
            Some(entry) => entry
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .stats(now_ms),
            None => LiveStats::default(),
        }
    }

    /// The book as routing sees it at one instant.
    pub fn at(&self, now_ms: i64) -> HealthView<'_> {
        HealthView { book: self, now_ms }
    }
}

/// [`HealthBook`] at a fixed time, for one routing decision.
pub struct HealthView<'a> {
    book: &'a HealthBook,
    now_ms: i64,
}

impl Observed for HealthView<'_> {
    fn gate(&self, c: &Candidate) -> Gate {
        self.book
            .gate(&endpoint_key(&c.model.id, &c.endpoint.tag), self.now_ms)
    }

    fn stats(&self, c: &Candidate) -> LiveStats {
        self.book
            .stats(&endpoint_key(&c.model.id, &c.endpoint.tag), self.now_ms)
    }
}
