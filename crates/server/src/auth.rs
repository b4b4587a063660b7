//! Authentication: bearer keys checked against a cache of stored key hashes.
//!
//! The hot path hashes the presented key and reads the cache; only a miss (first use of a key on this
//! process, or an entry older than [`TTL`]) goes to the database, and a stale entry is served while
//! it refreshes. Keys are never logged; errors name the problem, not the key.

use axum::http::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::keys::{hash_key, looks_like_key};
use switchyard_store::{KeyRow, Store};

/// How long a cached key is trusted before it is re-read (disable/expiry propagate within this).
pub const TTL: Duration = Duration::from_secs(5);

/// Which endpoints a key may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Completion endpoints: inference keys only.
    Inference,
    /// Admin endpoints: management keys only.
    Management,
    /// Endpoints any key may call (`/key`, `/generation`, `/credits`).
    Any,
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub key: Arc<KeyRow>,
}

#[derive(Debug, Clone)]
struct Entry {
    key: Option<Arc<KeyRow>>,
    fetched: Instant,
}

/// Cache of key rows by hash (negative entries too, so a bad key cannot hammer the database).
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    entries: Arc<RwLock<HashMap<String, Entry>>>,
}

impl KeyCache {
    /// Authenticates the request's bearer key for `need`.
    pub async fn authenticate(
        &self,
        store: &Store,
        headers: &HeaderMap,
        need: Need,
        now_ms: i64,
    ) -> Result<Principal, ApiError> {
        let token = bearer(headers)?;
        if !looks_like_key(token) {
            return Err(unauthorized(
                "Invalid API key format: expected sk-or-v1- followed by 64 hex characters",
            ));
        }
        let hash = hash_key(token);
        let key = self.lookup(store, &hash).await?;
        let Some(key) = key else {
            return Err(unauthorized("User not found: no such API key"));
        };
        if key.disabled {
            return Err(unauthorized("This API key is disabled"));
        }
        if key.expires_at_ms.is_some_and(|at| at <= now_ms) {
            return Err(unauthorized("This API key has expired"));
        }
        match (need, key.is_management) {
            (Need::Inference, true) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "Management keys cannot be used for inference; use an inference key",
            )),
            (Need::Management, false) => Err(ApiError::new(
                ErrorCode::Forbidden,
                "This endpoint requires a management key",
            )),
            _ => Ok(Principal { key }),
        }
    }

    /// Forgets a key so that its next use re-reads it (after an update or delete).
    pub fn invalidate(&self, hash: &str) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(hash);
        }
    }

    async fn lookup(&self, store: &Store, hash: &str) -> Result<Option<Arc<KeyRow>>, ApiError> {
        let cached = self.entries.read().ok().and_then(|m| m.get(hash).cloned());
        if let Some(entry) = &cached {
            if entry.fetched.elapsed() < TTL {
                return Ok(entry.key.clone());
            }
            if let Some(key) = &entry.key {
                // Serve the stale entry now and refresh in the background; restamping the entry
                // first keeps concurrent requests from each starting a refresh.
                if let Ok(mut map) = self.entries.write() {
                    if let Some(e) = map.get_mut(hash) {
                        e.fetched = Instant::now();
                    }
                }
                let this = self.clone();
                let store = store.clone();
                let hash = hash.to_owned();
                tokio::spawn(async move {
                    let _ = this.fetch(&store, &hash).await;
                });
                return Ok(Some(key.clone()));
            }
        }
        self.fetch(store, hash).await
    }

    async fn fetch(&self, store: &Store, hash: &str) -> Result<Option<Arc<KeyRow>>, ApiError> {
        let row = store.key_by_hash(hash).await.map_err(|e| {
            tracing::error!(error = %e, "key lookup failed");
            ApiError::new(ErrorCode::Internal, "Key lookup failed; try again")
        })?;
        let key = row.map(Arc::new);
        if let Ok(mut map) = self.entries.write() {
            map.insert(
                hash.to_owned(),
                Entry {
                    key: key.clone(),
                    fetched: Instant::now(),
                },
            );
        }
        Ok(key)
    }
}

/// The token of `Authorization: Bearer <token>` (or Anthropic-style `x-api-key`).
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    if let Some(value) = headers.get("authorization") {
        let text = value
            .to_str()
            .map_err(|_| unauthorized("Malformed Authorization header"))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("Authorization header must be `Bearer <key>`"))?;
        return Ok(token.trim());
    }
    if let Some(value) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Ok(value.trim());
    }
    Err(unauthorized(
        "No auth credentials found: send `Authorization: Bearer <key>`",
    ))
}

fn unauthorized(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}
