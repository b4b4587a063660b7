//! Per-upstream state — behaviour, the fault queue, recorded requests, prompt-cache prefixes,
//! the OAuth access tokens it issued (Vertex AI) — and the control API (`/_sim/{upstream}/...`)
//! that scripts it.
//!
//! Upstreams are created on first use, by a data-plane request or a control call alike, so a
//! test can script faults before the first request arrives.
//!
//! Control API: `POST .../behaviour`, `POST .../faults`, `GET .../requests` (each recorded
//! request with its method, path, headers and body, plus the Vertex AI `location` when the path
//! names one), `DELETE /_sim/{upstream}` (back to defaults, forgetting issued tokens too), and
//! for Vertex AI's token endpoint `GET .../tokens` (how many access tokens were issued, and
//! each one's client, scope and remaining lifetime) and `POST .../tokens` (`{"ttl_s": N}` sets
//! the lifetime of tokens issued from then on, 3599 s by default; `{"expire": true}` expires
//! every token issued so far).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Recorded requests kept per upstream; the oldest are dropped past this, so a long benchmark
/// against one upstream does not grow memory without bound.
pub const MAX_RECORDED: usize = 10_000;

/// Prompt-cache prefixes remembered per upstream; the oldest are forgotten past this.
pub const MAX_CACHED_PREFIXES: usize = 100_000;

/// Lifetime of an issued access token unless the control API sets another (Google's
/// `expires_in`).
pub const DEFAULT_TOKEN_TTL_S: u64 = 3599;

/// Access tokens remembered per upstream; past this, expired ones and then the oldest are
/// forgotten.
pub const MAX_TOKENS: usize = 10_000;

/// Every simulated upstream of one server, by name.
#[derive(Default)]
pub struct Sim {
    upstreams: Mutex<HashMap<String, Arc<Upstream>>>,
}

impl Sim {
    /// The upstream called `name`, created with default behaviour if new.
    pub fn upstream(&self, name: &str) -> Arc<Upstream> {
        let mut upstreams = lock(&self.upstreams);
        if let Some(upstream) = upstreams.get(name) {
            return upstream.clone();
        }
        let upstream = Arc::new(Upstream::default());
        upstreams.insert(name.to_owned(), upstream.clone());
        upstream
    }
}

/// How a simulated model paces and sizes its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Behaviour {
    /// Delay before the first content chunk (streaming) or before answering (non-streaming).
    pub ttft_ms: u64,
    /// Pace of chunks after the first; 0 sends them as fast as possible.
    pub tokens_per_s: u64,
    /// Generated words of a plain-text answer (before `max_tokens` caps it).
    pub output_tokens: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            ttft_ms: 0,
            tokens_per_s: 0,
            output_tokens: 16,
        }
    }
}

impl Behaviour {
    /// Time between two paced chunks, if pacing is on.
    pub fn token_interval(&self) -> Option<Duration> {
        (self.tokens_per_s > 0).then(|| Duration::from_secs_f64(1.0 / self.tokens_per_s as f64))
    }
}

/// The partial update accepted by `POST /_sim/{upstream}/behaviour`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BehaviourPatch {
    ttft_ms: Option<u64>,
    tokens_per_s: Option<u64>,
    output_tokens: Option<u64>,
}

/// One scripted misbehaviour, applied to one data-plane request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this HTTP status and the protocol's error body.
    Status {
        status: u16,
        retry_after_s: Option<f64>,
        message: Option<String>,
    },
    /// Close the TCP connection without any response.
    Reset,
    /// Wait this long before sending the response headers, then answer normally.
    Stall(Duration),
    /// Send this many stream events (or a truncated body), then break the connection.
    CutAfterChunks(u64),
    /// Answer 200 with a body (or one stream event) that is not valid JSON.
    Malformed,
}

/// A data-plane request as received, for `GET /_sim/{upstream}/requests`.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    /// Kept as received (cheap to clone); rendered as JSON only when asked for.
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            match headers.get_mut(name.as_str()) {
                // Repeated headers are joined as HTTP allows.
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(value.into_owned()));
                }
            }
        }
        let body = serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.body).into_owned()));
        let mut out = json!({"method": self.method.as_str(), "path": self.path, "headers": headers, "body": body});
        if let Some(location) = location(&self.path) {
            out["location"] = Value::String(location.to_owned());
        }
        out
    }
}

/// The Vertex AI location (region) a path names: `{l}` in `.../locations/{l}/...`.
fn location(path: &str) -> Option<&str> {
    let path = path.split('?').next().unwrap_or(path);
    let mut segments = path.split('/');
    segments.find(|s| *s == "locations")?;
    segments.next().filter(|l| !l.is_empty())
}

/// An OAuth access token an upstream issued (Vertex AI's token endpoint).
#[derive(Debug, Clone)]
struct IssuedToken {
    /// Issue order, for listing.
    seq: u64,
    expires_at: Instant,
    /// The assertion's `iss` (the service account's email).
    client: String,
    scope: String,
}

/// What an upstream knows of a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// The upstream never issued a token, so it takes any bearer.
    NoneIssued,
    Valid,
    Expired,
    Unknown,
}

/// The access tokens one upstream issued.
#[derive(Default)]
struct Tokens {
    live: HashMap<String, IssuedToken>,
    /// Tokens issued since the last reset (forgotten ones included).
    issued: u64,
    /// Lifetime of tokens issued from now on; `None` is [`DEFAULT_TOKEN_TTL_S`].
    ttl_s: Option<u64>,
}

impl Tokens {
    fn ttl_s(&self) -> u64 {
        self.ttl_s.unwrap_or(DEFAULT_TOKEN_TTL_S)
    }

    fn to_json(&self) -> Value {
        let now = Instant::now();
        let mut tokens: Vec<(&String, &IssuedToken)> = self.live.iter().collect();
        tokens.sort_by_key(|(_, t)| t.seq);
        let tokens: Vec<Value> = tokens
            .into_iter()
            .map(|(token, t)| {
                let left = t.expires_at.saturating_duration_since(now);
                json!({
                    "access_token": token,
                    "client_email": t.client,
                    "scope": t.scope,
                    "expires_in": left.as_secs(),
                    "expired": left.is_zero(),
                })
            })
            .collect();
        json!({"issued": self.issued, "ttl_s": self.ttl_s(), "tokens": tokens})
    }
}

/// One named simulated upstream.
#[derive(Default)]
pub struct Upstream {
    state: Mutex<UpstreamState>,
}

#[derive(Default)]
struct UpstreamState {
    behaviour: Behaviour,
    /// Pending faults with how many more requests each applies to.
    faults: VecDeque<(Fault, u64)>,
    requests: VecDeque<Recorded>,
    /// Models requested so far, in first-seen order, for `GET /v1/models`.
    models: Vec<String>,
    /// Hashes of the cacheable prompt prefixes seen so far (for protocols with prompt caching).
    cached: HashSet<[u8; 32]>,
    /// The same hashes, oldest first, so the set stays bounded.
    cached_order: VecDeque<[u8; 32]>,
    tokens: Tokens,
}

impl Upstream {
    /// Records a data-plane request and, if it is `authorised`, takes the next fault for it.
    /// Unauthorised requests are rejected before faults apply, so they consume none.
    pub fn admit(&self, request: Recorded, authorised: bool) -> (Behaviour, Option<Fault>) {
        let mut state = lock(&self.state);
        state.record(request);
        let fault = if authorised { state.take_fault() } else { None };
        (state.behaviour, fault)
    }

    /// Records a request that takes no faults (Vertex AI's token endpoint).
    pub fn record(&self, request: Recorded) {
        lock(&self.state).record(request);
    }

    /// Remembers a freshly issued access token for `client` with `scope`; returns its lifetime
    /// in seconds.
    pub fn issue_token(&self, token: String, client: &str, scope: &str) -> u64 {
        let mut state = lock(&self.state);
        let tokens = &mut state.tokens;
        let ttl_s = tokens.ttl_s();
        let now = Instant::now();
        if tokens.live.len() >= MAX_TOKENS {
            tokens.live.retain(|_, t| t.expires_at > now);
        }
        if tokens.live.len() >= MAX_TOKENS {
            let oldest = tokens
                .live
                .iter()
                .min_by_key(|(_, t)| t.seq)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                tokens.live.remove(&oldest);
            }
        }
        tokens.issued += 1;
        let issued = IssuedToken {
            seq: tokens.issued,
            expires_at: now + Duration::from_secs(ttl_s),
            client: client.to_owned(),
            scope: scope.to_owned(),
        };
        tokens.live.insert(token, issued);
        ttl_s
    }

    /// Whether `token` is one this upstream issued and still valid.
    pub fn check_token(&self, token: &str) -> TokenCheck {
        let state = lock(&self.state);
        let tokens = &state.tokens;
        if tokens.issued == 0 {
            return TokenCheck::NoneIssued;
        }
        match tokens.live.get(token) {
            Some(t) if t.expires_at > Instant::now() => TokenCheck::Valid,
            Some(_) => TokenCheck::Expired,
            None => TokenCheck::Unknown,
        }
    }

    /// Remembers `model` for the models list.
    pub fn note_model(&self, model: &str) {
        let mut state = lock(&self.state);
        if !state.models.iter().any(|m| m == model) {
            state.models.push(model.to_owned());
        }
    }

    pub fn models(&self) -> Vec<String> {
        lock(&self.state).models.clone()
    }

    /// Prompt caching: given the hashes of a request's cacheable prefixes (shortest first),
    /// returns the index of the longest one seen before, and remembers them all, so the next
    /// request with the same prefixes reads what this one wrote.
    pub fn cache_prefixes(&self, prefixes: &[[u8; 32]]) -> Option<usize> {
        let mut state = lock(&self.state);
        let hit = prefixes.iter().rposition(|p| state.cached.contains(p));
        for prefix in prefixes {
            if state.cached.insert(*prefix) {
                state.cached_order.push_back(*prefix);
            }
        }
        while state.cached_order.len() > MAX_CACHED_PREFIXES {
            if let Some(oldest) = state.cached_order.pop_front() {
                state.cached.remove(&oldest);
            }
        }
        hit
    }
}

impl UpstreamState {
    fn record(&mut self, request: Recorded) {
        if self.requests.len() >= MAX_RECORDED {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    fn take_fault(&mut self) -> Option<Fault> {
        let (fault, remaining) = self.faults.front_mut()?;
        let fault = fault.clone();
        *remaining -= 1;
        if *remaining == 0 {
            self.faults.pop_front();
        }
        Some(fault)
    }
}

// A panic while holding the lock cannot leave the state inconsistent, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bad_request(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": message.into()}})),
    )
        .into_response()
}

/// `POST /_sim/{upstream}/behaviour`: merges the given fields into the current behaviour.
pub async fn set_behaviour(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let patch: BehaviourPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => {
            return bad_request(format!(
                "invalid behaviour: {e}; expected an object with optional non-negative integers \
                 ttft_ms, tokens_per_s, output_tokens"
            ))
        }
    };
    let upstream = sim.upstream(&name);
    let mut state = lock(&upstream.state);
    let behaviour = &mut state.behaviour;
    if let Some(v) = patch.ttft_ms {
        behaviour.ttft_ms = v;
    }
    if let Some(v) = patch.tokens_per_s {
        behaviour.tokens_per_s = v;
    }
    if let Some(v) = patch.output_tokens {
        behaviour.output_tokens = v;
    }
    Json(json!({"upstream": name, "behaviour": *behaviour})).into_response()
}

/// `POST /_sim/{upstream}/faults`: appends a list of faults (or a single one) to the queue.
pub async fn add_faults(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return bad_request(format!("invalid JSON: {e}; expected a list of faults")),
    };
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => return bad_request("expected a JSON list of faults"),
    };
    let mut faults = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match parse_fault(item) {
            Ok(fault) => faults.push(fault),
            Err(e) => return bad_request(format!("fault {i}: {e}")),
        }
    }
    let upstream = sim.upstream(&name);
    let mut state = lock(&upstream.state);
    state.faults.extend(faults);
    let queued: u64 = state.faults.iter().map(|(_, n)| n).sum();
    Json(json!({"upstream": name, "queued": queued})).into_response()
}

/// `GET /_sim/{upstream}/requests`: the recorded data-plane requests, oldest first.
pub async fn requests(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Response {
    let upstream = sim.upstream(&name);
    let recorded: Vec<Recorded> = lock(&upstream.state).requests.iter().cloned().collect();
    Json(Value::Array(
        recorded.iter().map(Recorded::to_json).collect(),
    ))
    .into_response()
}

/// The body of `POST /_sim/{upstream}/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensPatch {
    ttl_s: Option<u64>,
    #[serde(default)]
    expire: bool,
}

/// `GET /_sim/{upstream}/tokens`: `{"upstream", "issued", "ttl_s", "tokens": [{"access_token",
/// "client_email", "scope", "expires_in", "expired"}]}`, oldest first.
pub async fn tokens(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Response {
    let upstream = sim.upstream(&name);
    let mut body = lock(&upstream.state).tokens.to_json();
    body["upstream"] = Value::String(name);
    Json(body).into_response()
}

/// `POST /_sim/{upstream}/tokens`: `ttl_s` sets the lifetime of tokens issued from now on,
/// `expire: true` expires every token issued so far; answers like the `GET`.
pub async fn set_tokens(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let patch: TokensPatch = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(e) => {
            return bad_request(format!(
                "invalid tokens update: {e}; expected an object with an optional non-negative \
                 integer ttl_s and an optional boolean expire"
            ))
        }
    };
    let upstream = sim.upstream(&name);
    let mut state = lock(&upstream.state);
    if let Some(ttl_s) = patch.ttl_s {
        state.tokens.ttl_s = Some(ttl_s);
    }
    if patch.expire {
        let now = Instant::now();
        for token in state.tokens.live.values_mut() {
            token.expires_at = token.expires_at.min(now);
        }
    }
    let mut body = state.tokens.to_json();
    body["upstream"] = Value::String(name);
    Json(body).into_response()
}

/// `DELETE /_sim/{upstream}`: back to default behaviour, no faults, no recorded requests, an
/// empty prompt cache, no issued tokens.
pub async fn reset(State(sim): State<Arc<Sim>>, Path(name): Path<String>) -> Response {
    let upstream = sim.upstream(&name);
    *lock(&upstream.state) = UpstreamState::default();
    Json(json!({"upstream": name, "reset": true})).into_response()
}

/// Parses one fault object, e.g. `{"status": 429, "retry_after_s": 1, "count": 2}` or
/// `{"kind": "stall_ms", "ms": 5000}`, returning it with its count.
fn parse_fault(item: &Value) -> Result<(Fault, u64), String> {
    let Value::Object(obj) = item else {
        return Err("expected an object".into());
    };
    let uint = |key: &str| -> Result<Option<u64>, String> {
        match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("'{key}' must be a non-negative integer")),
        }
    };
    let count = uint("count")?.unwrap_or(1);
    if count == 0 {
        return Err("'count' must be at least 1".into());
    }
    let (fault, allowed): (Fault, &[&str]) = match (obj.get("status"), obj.get("kind")) {
        (Some(_), Some(_)) => return Err("give either 'status' or 'kind', not both".into()),
        (Some(_), None) => {
            let status = uint("status")?.unwrap_or(0);
            if !(400..=599).contains(&status) {
                return Err(format!(
                    "'status' must be an HTTP error status (400-599), got {status}"
                ));
            }
            let retry_after_s = match obj.get("retry_after_s") {
                None => None,
                Some(v) => Some(
                    v.as_f64()
                        .filter(|s| *s >= 0.0 && s.is_finite())
                        .ok_or("'retry_after_s' must be a non-negative number")?,
                ),
            };
            let message = match obj.get("message") {
                None => None,
                Some(Value::String(m)) => Some(m.clone()),
                Some(_) => return Err("'message' must be a string".into()),
            };
            let fault = Fault::Status {
                status: status as u16,
                retry_after_s,
                message,
            };
            (fault, &["status", "retry_after_s", "message", "count"])
        }
        (None, Some(Value::String(kind))) => match kind.as_str() {
            "reset" => (Fault::Reset, &["kind", "count"]),
            "malformed" => (Fault::Malformed, &["kind", "count"]),
            "stall_ms" => {
                let ms = uint("ms")?.ok_or("'stall_ms' needs 'ms'")?;
                (
                    Fault::Stall(Duration::from_millis(ms)),
                    &["kind", "ms", "count"],
                )
            }
            "cut_after_chunks" => {
                let n = uint("n")?.ok_or("'cut_after_chunks' needs 'n'")?;
                (Fault::CutAfterChunks(n), &["kind", "n", "count"])
            }
            other => {
                let expected = "reset, stall_ms, cut_after_chunks or malformed";
                return Err(format!("unknown kind '{other}'; expected {expected}"));
            }
        },
        (None, Some(_)) => return Err("'kind' must be a string".into()),
        (None, None) => return Err("a fault needs 'status' or 'kind'".into()),
    };
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown field '{unknown}'"));
    }
    Ok((fault, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_fault_kind() {
        let ok = |v: Value| parse_fault(&v).unwrap();
        assert_eq!(
            ok(json!({"status": 429, "retry_after_s": 1, "count": 2})),
            (
                Fault::Status {
                    status: 429,
                    retry_after_s: Some(1.0),
                    message: None
                },
                2
            )
        );
        assert_eq!(ok(json!({"kind": "reset"})), (Fault::Reset, 1));
        assert_eq!(
            ok(json!({"kind": "stall_ms", "ms": 5})).0,
            Fault::Stall(Duration::from_millis(5))
        );
        assert_eq!(
            ok(json!({"kind": "cut_after_chunks", "n": 3})).0,
            Fault::CutAfterChunks(3)
        );
        assert_eq!(ok(json!({"kind": "malformed"})).0, Fault::Malformed);
    }

    #[test]
    fn rejects_bad_faults() {
        for bad in [
            json!({"kind": "explode"}),
            json!({"status": 200}),
            json!({"status": 500, "kind": "reset"}),
            json!({"kind": "reset", "ms": 3}),
            json!({"kind": "stall_ms"}),
            json!({"status": 429, "count": 0}),
            json!({}),
            json!(3),
        ] {
            assert!(parse_fault(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counted_faults_apply_in_order() {
        let upstream = Upstream::default();
        lock(&upstream.state)
            .faults
            .extend([(Fault::Reset, 2), (Fault::Malformed, 1)]);
        let req = || Recorded {
            method: Method::POST,
            path: "/".into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
        };
        assert_eq!(upstream.admit(req(), false).1, None);
        assert_eq!(upstream.admit(req(), true).1, Some(Fault::Reset));
        assert_eq!(upstream.admit(req(), true).1, Some(Fault::Reset));
        assert_eq!(upstream.admit(req(), true).1, Some(Fault::Malformed));
        assert_eq!(upstream.admit(req(), true).1, None);
        assert_eq!(lock(&upstream.state).requests.len(), 5);
    }

    #[test]
    fn tokens_are_checked_only_once_issued() {
        let upstream = Upstream::default();
        assert_eq!(upstream.check_token("any"), TokenCheck::NoneIssued);
        assert_eq!(
            upstream.issue_token("a".into(), "sa@x", "s"),
            DEFAULT_TOKEN_TTL_S
        );
        assert_eq!(upstream.check_token("a"), TokenCheck::Valid);
        assert_eq!(upstream.check_token("b"), TokenCheck::Unknown);
        lock(&upstream.state).tokens.ttl_s = Some(0);
        assert_eq!(upstream.issue_token("c".into(), "sa@x", "s"), 0);
        assert_eq!(upstream.check_token("c"), TokenCheck::Expired);
        assert_eq!(lock(&upstream.state).tokens.issued, 2);
    }

    #[test]
    fn locations_are_read_from_vertex_paths() {
        assert_eq!(
            location("/v/v1/projects/p/locations/europe-west1/publishers/google/models/m:predict"),
            Some("europe-west1")
        );
        assert_eq!(
            location("/v/v1/projects/p/locations/global?x=1"),
            Some("global")
        );
        assert_eq!(location("/openai/v1/chat/completions"), None);
    }

    #[test]
    fn prompt_cache_finds_the_longest_seen_prefix() {
        let upstream = Upstream::default();
        let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
        assert_eq!(upstream.cache_prefixes(&[a]), None);
        assert_eq!(upstream.cache_prefixes(&[a, b]), Some(0));
        assert_eq!(upstream.cache_prefixes(&[a, b, c]), Some(1));
        assert_eq!(upstream.cache_prefixes(&[c]), Some(0));
    }
}
