//! Switchyard's HTTP edge: the only crate that speaks HTTP.
//!
//! - [`config`]: TOML + `SWITCHYARD_*` environment, validated, secrets resolved.
//! - [`auth`]: bearer keys against a cache of stored hashes.
//! - [`ledger`]: in-memory reservations and settlements of credits and key limits.
//! - [`limits`]: request and token rate limits.
//! - [`keys`]: the key-management API and the key object.
//! - [`recorder`]: batched, off-path writing of generation records.
//! - [`chat`]: the chat-completions dispatch loop and stream relay.
//! - [`embeddings`]: `/embeddings` over the chat pipeline's routing, accounting and failover.
//! - [`messages`]: Anthropic's `/messages` as an ingress, adapted onto the chat pipeline.
//! - [`health`]: live per-endpoint uptime, latency and throughput; outage detection and breakers.
//! - [`admin`]: `/key`, `/credits`, `/generation`.
//! - [`byok`]: accounts' own provider credentials, encrypted at rest, and `/byok`.
//! - [`activity`]: `/activity` and the CSV export of generation records.
//! - [`discovery`]: `/models`, `/providers` and the other catalog endpoints, pre-rendered.
//! - [`error`]: core's errors as HTTP responses.
//!
//! [`Gateway`] ties them together: build it from a [`config::Config`] and a store, then [`Gateway::serve`].

pub mod activity;
pub mod admin;
pub mod auth;
pub mod byok;
pub mod chat;
pub mod config;
pub mod discovery;
pub mod embeddings;
pub mod error;
pub mod health;
pub mod keys;
pub mod ledger;
pub mod limits;
pub mod messages;
pub mod recorder;
pub mod upstream;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use config::{Config, UpstreamConfig};
use rand::RngCore;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::catalog::Catalog;
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::keys as keyfmt;
use switchyard_core::money::Money;
use switchyard_store::{KeyRow, Store, StoreError};
use tokio::net::TcpListener;

/// Limits and timeouts the request path reads.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub keepalive: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Everything a request handler needs; shared behind an `Arc`.
pub struct AppState {
    pub store: Store,
    /// The live catalog: only endpoints of enabled providers.
    pub catalog: Arc<Catalog>,
    pub discovery: discovery::DiscoveryCache,
    /// Enabled providers by slug.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// One pooled client for every upstream.
    pub client: reqwest::Client,
    pub keys: auth::KeyCache,
    pub ledger: ledger::Ledger,
    pub limiter: limits::RateLimiter,
    pub recorder: recorder::Recorder,
    pub limits: Limits,
    /// Accounts' own provider credentials (BYOK), decrypted and cached per account.
    pub byok: byok::Vault,
    /// What the gateway has measured of each endpoint; routing reads it.
    pub health: health::HealthBook,
    /// Account-wide default provider preferences.
    pub routing: config::RoutingConfig,
    /// The current time in unix milliseconds; replaceable so tests control reset boundaries.
    pub clock: Clock,
}

/// A source of the current time, unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

impl AppState {
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Authenticates the request's key for `need` at the current time.
    pub async fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
        need: auth::Need,
    ) -> Result<auth::Principal, ApiError> {
        self.keys
            .authenticate(&self.store, headers, need, self.now_ms())
            .await
    }

    fn limiter_free_threshold(&self) -> Money {
        self.limiter.config().free_funded_threshold
    }

    fn free_daily(&self) -> u64 {
        self.limiter.config().free_requests_per_day.into()
    }

    fn free_daily_funded(&self) -> u64 {
        self.limiter.config().free_requests_per_day_funded.into()
    }

    fn new_generation_id(&self, now_ms: i64) -> String {
        let mut random = [0u8; 20];
        rand::rng().fill_bytes(&mut random);
        keyfmt::generation_id(now_ms / 1000, &random)
    }
}

/// A configured gateway, ready to serve.
pub struct Gateway {
    state: Arc<AppState>,
    writer: recorder::Writer,
}

impl Gateway {
    pub fn new(config: Config, store: Store) -> Result<Gateway, reqwest::Error> {
        Gateway::with_clock(config, store, Arc::new(unix_ms))
    }

    /// A gateway whose notion of "now" is `clock` (tests move it across reset boundaries).
    pub fn with_clock(
        config: Config,
        store: Store,
        clock: Clock,
    ) -> Result<Gateway, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()?;
        let (recorder, writer) = recorder::recorder(store.clone(), config.store_write_delay);
        let upstreams = &config.upstreams;
        let catalog = config
            .catalog
            .retain_endpoints(&|_, p| upstreams.contains_key(&p.slug));
        let state = Arc::new(AppState {
            store,
            discovery: discovery::DiscoveryCache::new(&catalog),
            catalog: Arc::new(catalog),
            upstreams: config.upstreams,
            client,
            keys: auth::KeyCache::default(),
            ledger: ledger::Ledger::new(config.reservation_ttl),
            limiter: limits::RateLimiter::new(config.rate_limits.clone()),
            recorder,
            clock,
            byok: byok::Vault::new(&config.byok),
            health: health::HealthBook::new(config.routing.health),
            routing: config.routing,
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
                keepalive: config.keepalive,
                first_byte_timeout: config.first_byte_timeout,
                idle_timeout: config.idle_timeout,
            },
        });
        Ok(Gateway { state, writer })
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Serves on `listener` until `shutdown` resolves, lets open streams finish, then flushes every
    /// queued generation record.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Gateway { state, writer } = self;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(writer.run(stop_rx));
        let refresher = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(2));
                loop {
                    tick.tick().await;
                    state.ledger.refresh_credits(&state.store).await;
                    let now = state.now_ms();
                    state.ledger.sweep(now);
                    state.limiter.prune(now);
                }
            })
        };
        let app = router(state);
        // Stream frames are small writes: without TCP_NODELAY, Nagle's algorithm holds one back
        // until the previous is acknowledged (nginx sets it too).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        refresher.abort();
        // Relay tasks of streams that were still open hold the recorder; give them a moment.
        let _ = stop_tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), writer).await;
        served
    }
}

/// The gateway's routes.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/chat/completions", post(chat::chat_completions))
        .route("/messages", post(messages::create))
        .route("/messages/count_tokens", post(messages::count_tokens))
        .route("/key", get(admin::current_key))
        .route("/auth/key", get(admin::current_key))
        .route("/credits", get(admin::credits))
        .route("/generation", get(admin::generation))
        .route("/activity", get(activity::activity))
        .route("/byok", get(byok::list).post(byok::create))
        .route("/byok/{id}", get(byok::get_one).delete(byok::delete))
        .route("/keys", get(keys::list).post(keys::create))
        .route(
            "/keys/{hash}",
            get(keys::get_one).patch(keys::update).delete(keys::delete),
        )
        .route("/models", get(discovery::models))
        .route("/models/count", get(discovery::count))
        .route("/models/user", get(discovery::user_models))
        .route("/model/{author}/{slug}", get(discovery::model))
        .route(
            "/models/{author}/{slug}/endpoints",
            get(discovery::endpoints),
        )
        .route("/endpoints/zdr", get(discovery::zdr))
        .route("/embeddings", post(embeddings::create))
        .route("/embeddings/models", get(discovery::embedding_models))
        .route("/providers", get(discovery::providers));
    Router::new()
        .nest("/api/v1", api.clone())
        .nest("/v1", api)
        .route("/health", get(health))
        .route("/ready", get(health))
        .fallback(not_found)
        // Bodies are limited by the handlers themselves, so the 413 is in OpenRouter's envelope.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    (StatusCode::OK, Json(serde_json::json!({"status": "ok"})))
}

async fn not_found() -> error::HttpError {
    error::HttpError(ApiError::new(
        ErrorCode::NotFound,
        "No such endpoint: see the API reference for the paths under /api/v1",
    ))
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A key just created: the plaintext (shown once) and its stored row.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub row: KeyRow,
}

/// What a new key is to be.
#[derive(Debug, Clone)]
pub struct NewKeySpec<'a> {
    pub account_id: &'a str,
    pub name: &'a str,
    pub is_management: bool,
    pub limit: Option<Money>,
    pub limit_reset: Option<String>,
    pub include_byok_in_limit: bool,
    pub expires_at_ms: Option<i64>,
    pub allowed_models: Option<Vec<String>>,
    pub now_ms: i64,
}

/// Creates and stores a key.
pub async fn create_key_with(store: &Store, spec: NewKeySpec<'_>) -> Result<NewKey, StoreError> {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let key = keyfmt::format_key(&random);
    let row = KeyRow {
        hash: keyfmt::hash_key(&key),
        account_id: spec.account_id.to_owned(),
        name: spec.name.to_owned(),
        label: keyfmt::label(&key),
        is_management: spec.is_management,
        disabled: false,
        limit: spec.limit,
        limit_reset: spec.limit_reset,
        include_byok_in_limit: spec.include_byok_in_limit,
        expires_at_ms: spec.expires_at_ms,
        created_at_ms: spec.now_ms,
        updated_at_ms: None,
        usage: Money::ZERO,
        allowed_models: spec.allowed_models,
        last_used_at_ms: None,
    };
    store.insert_key(&row).await?;
    Ok(NewKey { key, row })
}

/// Creates and stores a plain key for `account_id` (no limit other than `limit`, no expiry).
pub async fn create_key(
    store: &Store,
    account_id: &str,
    name: &str,
    is_management: bool,
    limit: Option<Money>,
) -> Result<NewKey, StoreError> {
    create_key_with(
        store,
        NewKeySpec {
            account_id,
            name,
            is_management,
            limit,
            limit_reset: None,
            include_byok_in_limit: false,
            expires_at_ms: None,
            allowed_models: None,
            now_ms: unix_ms(),
        },
    )
    .await
}

/// A fresh account id, `acct_<16 hex>`.
pub fn new_account_id() -> String {
    let mut random = [0u8; 8];
    rand::rng().fill_bytes(&mut random);
    format!("acct_{}", keyfmt::hex(&random))
}

/// On an empty database: creates the operator account and its management key (returned once).
pub async fn bootstrap_operator(store: &Store) -> Result<Option<NewKey>, StoreError> {
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let id = new_account_id();
    store.create_account(&id, "operator", unix_ms()).await?;
    create_key(store, &id, "operator management key", true, None)
        .await
        .map(Some)
}
