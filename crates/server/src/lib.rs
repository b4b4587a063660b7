//! Switchyard's HTTP edge: the only crate that speaks HTTP.
//!
//! - [`config`]: TOML + `SWITCHYARD_*` environment, validated, secrets resolved.
//! - [`auth`]: bearer keys against a cache of stored hashes.
//! - [`ledger`]: in-memory reservations and settlements of credits.
//! - [`recorder`]: batched, off-path writing of generation records.
//! - [`chat`]: the chat-completions dispatch loop and stream relay.
//! - [`admin`]: `/key`, `/credits`, `/generation`.
//! - [`discovery`]: `/models`, `/providers` and the other catalog endpoints, pre-rendered.
//! - [`error`]: core's errors as HTTP responses.
//!
//! [`Gateway`] ties them together: build it from a [`config::Config`] and a store, then [`Gateway::serve`].

pub mod admin;
pub mod auth;
pub mod chat;
pub mod config;
pub mod discovery;
pub mod error;
pub mod ledger;
pub mod recorder;

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
use switchyard_core::keys;
use switchyard_core::money::Money;
use switchyard_core::protocol::translator_available;
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
#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    /// The live catalog: only endpoints of enabled providers whose protocol this build speaks.
    pub catalog: Arc<Catalog>,
    pub discovery: discovery::DiscoveryCache,
    /// Enabled providers by slug.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// One pooled client for every upstream.
    pub client: reqwest::Client,
    pub keys: auth::KeyCache,
    pub ledger: ledger::Ledger,
    pub recorder: recorder::Recorder,
    pub limits: Limits,
}

impl AppState {
    fn new_generation_id(&self, now_ms: i64) -> String {
        let mut random = [0u8; 20];
        rand::rng().fill_bytes(&mut random);
        keys::generation_id(now_ms / 1000, &random)
    }
}

/// A configured gateway, ready to serve.
pub struct Gateway {
    state: Arc<AppState>,
    writer: recorder::Writer,
}

impl Gateway {
    pub fn new(config: Config, store: Store) -> Result<Gateway, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()?;
        let (recorder, writer) = recorder::recorder(store.clone());
        let upstreams = &config.upstreams;
        for provider in config.catalog.providers() {
            if upstreams.contains_key(&provider.slug) && !translator_available(provider.protocol) {
                tracing::warn!(
                    provider = %provider.slug, protocol = provider.protocol.as_str(),
                    "provider has credentials but its protocol is not supported yet; it will not be used"
                );
            }
        }
        let catalog = config.catalog.retain_endpoints(&|_, p| {
            upstreams.contains_key(&p.slug) && translator_available(p.protocol)
        });
        let state = Arc::new(AppState {
            store,
            discovery: discovery::DiscoveryCache::new(&catalog),
            catalog: Arc::new(catalog),
            upstreams: config.upstreams,
            client,
            keys: auth::KeyCache::default(),
            ledger: ledger::Ledger::default(),
            recorder,
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
                }
            })
        };
        let app = router(state);
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
        .route("/key", get(admin::current_key))
        .route("/auth/key", get(admin::current_key))
        .route("/credits", get(admin::credits))
        .route("/generation", get(admin::generation))
        .route("/models", get(discovery::models))
        .route("/models/count", get(discovery::count))
        .route("/models/user", get(discovery::user_models))
        .route("/model/{author}/{slug}", get(discovery::model))
        .route(
            "/models/{author}/{slug}/endpoints",
            get(discovery::endpoints),
        )
        .route("/endpoints/zdr", get(discovery::zdr))
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

/// Creates and stores a key for `account_id`.
pub async fn create_key(
    store: &Store,
    account_id: &str,
    name: &str,
    is_management: bool,
    limit: Option<Money>,
) -> Result<NewKey, StoreError> {
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let key = keys::format_key(&random);
    let row = KeyRow {
        hash: keys::hash_key(&key),
        account_id: account_id.to_owned(),
        name: name.to_owned(),
        label: keys::label(&key),
        is_management,
        disabled: false,
        limit,
        limit_reset: None,
        include_byok_in_limit: false,
        expires_at_ms: None,
        created_at_ms: unix_ms(),
        updated_at_ms: None,
        usage: Money::ZERO,
    };
    store.insert_key(&row).await?;
    Ok(NewKey { key, row })
}

/// A fresh account id, `acct_<16 hex>`.
pub fn new_account_id() -> String {
    let mut random = [0u8; 8];
    rand::rng().fill_bytes(&mut random);
    format!("acct_{}", keys::hex(&random))
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
