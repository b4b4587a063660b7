//! BYOK ("bring your own key"): accounts' own provider credentials, encrypted at rest, and the
//! `/api/v1/byok` management API.
//!
//! **Encryption at rest.** Each credential is sealed with XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`) under the operator's 256-bit `[byok] encryption_key`, with a fresh random
//! 24-byte nonce, and stored as `hex(nonce || ciphertext+tag)`. The associated data is
//! `switchyard-byok-v1 \0 account_id \0 provider`, so a row copied to another account or relabelled
//! as another provider fails to decrypt instead of lending a key to the wrong party. Why this
//! construction: it is an AEAD, so a tampered or truncated row is detected rather than decrypted to
//! garbage; the 192-bit nonce is large enough to be drawn at random for every secret with no
//! counter to persist or coordinate between the gateway and the CLI (a 96-bit nonce would make
//! random nonces a birthday risk); it is constant-time in pure Rust without AES hardware; and the
//! crate is audited and has no C dependency. The key lives only in the configuration (normally
//! `env:`), never in the database, so a copy of the database alone reveals no credential; losing the
//! key makes the stored credentials unreadable (delete and re-add them). Keys are not rotated in
//! place.
//!
//! **Hot path.** [`Vault::credential`] serves from an in-memory map per account: the first use on a
//! process reads and decrypts the account's rows once; changes made through this API invalidate the
//! entry at once; entries older than [`TTL`] are served while they refresh in the background, so
//! changes made by the CLI (another process) propagate within that time. A cache hit never touches
//! the database. Secrets are held as [`Secret`] (which never prints) and never logged or returned.
//!
//! **Fee.** BYOK requests are charged `fee_percent` of the equivalent price ([`Vault::fee`], exact
//! integer arithmetic), after a monthly allowance of free requests per account counted in memory
//! ([`Vault::free_allowance_left`], [`Vault::count_request`]).

use crate::auth::Need;
use crate::config::{ByokConfig, EncryptionKey, Secret};
use crate::error::{HttpError, HttpResult};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use http_body_util::{BodyExt, Limited};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use switchyard_core::catalog::Catalog;
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::generation::{format_rfc3339_ms, utc_window_starts};
use switchyard_core::keys::hex;
use switchyard_core::money::Money;
use switchyard_store::{ByokRow, Store, StoreError};

/// How long a cached account's credentials are trusted before they are re-read in the background.
pub const TTL: Duration = Duration::from_secs(30);

/// Largest accepted `POST /byok` body.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest accepted provider key.
const MAX_KEY_BYTES: usize = 8 * 1024;
const NONCE_BYTES: usize = 24;
const AD_PREFIX: &[u8] = b"switchyard-byok-v1";

/// Why a credential could not be added or read.
#[derive(Debug, thiserror::Error)]
pub enum ByokError {
    #[error("BYOK is not configured on this gateway: set [byok] encryption_key (64 hex characters, e.g. `openssl rand -hex 32`)")]
    NotConfigured,
    #[error(
        "unknown provider `{0}`: use a provider slug from GET /api/v1/providers (e.g. `openai`)"
    )]
    UnknownProvider(String),
    #[error("the provider API key is empty")]
    EmptyKey,
    #[error("the provider API key is longer than {MAX_KEY_BYTES} bytes")]
    KeyTooLong,
    #[error("the stored credential cannot be decrypted: wrong [byok] encryption_key, or the row was altered or moved")]
    Decrypt,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ByokError> for ApiError {
    fn from(e: ByokError) -> ApiError {
        match e {
            ByokError::Store(StoreError::NoSuchAccount(_)) => {
                ApiError::new(ErrorCode::NotFound, "Account not found")
            }
            ByokError::Store(e) => crate::error::store_failure(&e),
            ByokError::Decrypt => {
                tracing::error!("a stored BYOK credential failed to decrypt");
                ApiError::new(ErrorCode::Internal, e.to_string())
            }
            other => ApiError::invalid(other.to_string()),
        }
    }
}

fn associated_data(account_id: &str, provider: &str) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_PREFIX.len() + account_id.len() + provider.len() + 2);
    ad.extend_from_slice(AD_PREFIX);
    ad.push(0);
    ad.extend_from_slice(account_id.as_bytes());
    ad.push(0);
    ad.extend_from_slice(provider.as_bytes());
    ad
}

/// Seals `secret` for `account_id`'s credential at `provider`: `hex(nonce || ciphertext)`.
pub fn encrypt(key: &EncryptionKey, account_id: &str, provider: &str, secret: &str) -> String {
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rng().fill_bytes(&mut nonce);
    let aad = associated_data(account_id, provider);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: &aad,
            },
        )
        // Encryption fails only for messages beyond 256 GiB.
        .expect("XChaCha20-Poly1305 encryption of a bounded message");
    let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    hex(&out)
}

/// Opens what [`encrypt`] sealed; fails if the key, the account, the provider or a byte differs.
pub fn decrypt(
    key: &EncryptionKey,
    account_id: &str,
    provider: &str,
    stored: &str,
) -> Result<Secret, ByokError> {
    let bytes = unhex(stored).ok_or(ByokError::Decrypt)?;
    if bytes.len() < NONCE_BYTES + 16 {
        return Err(ByokError::Decrypt);
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let aad = associated_data(account_id, provider);
    let plain = cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| ByokError::Decrypt)?;
    String::from_utf8(plain)
        .map(Secret::new)
        .map_err(|_| ByokError::Decrypt)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    pairs
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// The masked form shown in listings: `sk-...AbCd` (first three and last four characters); short
/// keys show nothing of themselves.
pub fn label(api_key: &str) -> String {
    let chars: Vec<char> = api_key.chars().collect();
    if chars.len() < 16 {
        return "...".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}...{tail}")
}

/// A fresh credential id: a random UUID (version 4), as OpenRouter's ids are.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// What a new credential needs.
#[derive(Debug, Clone)]
pub struct NewCredential<'a> {
    pub account_id: &'a str,
    pub provider: &'a str,
    pub api_key: &'a str,
    pub name: &'a str,
    pub disabled: bool,
}

/// Validates, encrypts and stores a credential (used by the API and the CLI).
/// `key` is `[byok] encryption_key`; without it BYOK is off and this fails with
/// [`ByokError::NotConfigured`].
pub async fn add_credential(
    store: &Store,
    key: Option<&EncryptionKey>,
    catalog: &Catalog,
    new: &NewCredential<'_>,
    now_ms: i64,
) -> Result<ByokRow, ByokError> {
    let key = key.ok_or(ByokError::NotConfigured)?;
    if catalog.provider(new.provider).is_none() {
        return Err(ByokError::UnknownProvider(new.provider.to_owned()));
    }
    let api_key = new.api_key.trim();
    if api_key.is_empty() {
        return Err(ByokError::EmptyKey);
    }
    if api_key.len() > MAX_KEY_BYTES {
        return Err(ByokError::KeyTooLong);
    }
    let row = ByokRow {
        id: new_id(),
        account_id: new.account_id.to_owned(),
        provider: new.provider.to_owned(),
        name: new.name.trim().to_owned(),
        ciphertext: encrypt(key, new.account_id, new.provider, api_key),
        label: label(api_key),
        disabled: new.disabled,
        created_at_ms: now_ms,
    };
    store.insert_byok(&row).await?;
    Ok(row)
}

/// Credentials in the order they are tried: oldest first.
fn sorted(mut rows: Vec<ByokRow>) -> Vec<ByokRow> {
    rows.sort_by(|a, b| (a.created_at_ms, a.id.as_str()).cmp(&(b.created_at_ms, b.id.as_str())));
    rows
}

#[derive(Clone)]
struct Entry {
    /// The first enabled credential per provider slug, decrypted.
    by_provider: Arc<HashMap<String, Secret>>,
    fetched: Instant,
}

#[derive(Debug, Clone, Copy)]
struct MonthCount {
    month_start_ms: i64,
    requests: u64,
}

struct Inner {
    key: Option<EncryptionKey>,
    ttl: Duration,
    fee_bps: i64,
    free_per_month: u64,
    cache: RwLock<HashMap<String, Entry>>,
    /// Bumped by every invalidation, so a load that started before it does not store stale rows.
    epoch: AtomicU64,
    months: Mutex<HashMap<String, MonthCount>>,
}

/// Decrypted credentials per account, the BYOK fee and the monthly free allowance.
/// Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("enabled", &self.enabled())
            .field("fee_bps", &self.inner.fee_bps)
            .field("free_per_month", &self.inner.free_per_month)
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub fn new(config: &ByokConfig) -> Vault {
        Vault::with_ttl(config, TTL)
    }

    /// A vault whose cache entries are refreshed after `ttl` instead of [`TTL`] (for tests).
    pub fn with_ttl(config: &ByokConfig, ttl: Duration) -> Vault {
        Vault {
            inner: Arc::new(Inner {
                key: config.encryption_key.clone(),
                ttl,
                fee_bps: (config.fee_percent * 100.0).round() as i64,
                free_per_month: config.free_requests_per_month,
                cache: RwLock::new(HashMap::new()),
                epoch: AtomicU64::new(0),
                months: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether BYOK is configured (an encryption key is set).
    pub fn enabled(&self) -> bool {
        self.inner.key.is_some()
    }

    /// The decrypted key of `account_id`'s first enabled credential for `provider`, if any.
    /// Served from memory once the account is loaded; `None` when BYOK is off.
    pub async fn credential(
        &self,
        store: &Store,
        account_id: &str,
        provider: &str,
    ) -> Option<Secret> {
        self.inner.key.as_ref()?;
        let cached = self
            .inner
            .cache
            .read()
            .ok()
            .and_then(|m| m.get(account_id).cloned());
        let entry = match cached {
            Some(entry) => {
                if entry.fetched.elapsed() >= self.inner.ttl {
                    // Serve the stale entry and refresh in the background; restamp it first so
                    // concurrent requests do not each start a refresh.
                    if let Ok(mut map) = self.inner.cache.write() {
                        if let Some(e) = map.get_mut(account_id) {
                            e.fetched = Instant::now();
                        }
                    }
                    let this = self.clone();
                    let store = store.clone();
                    let account_id = account_id.to_owned();
                    tokio::spawn(async move {
                        let _ = this.load(&store, &account_id).await;
                    });
                }
                entry.by_provider
            }
            None => self.load(store, account_id).await?,
        };
        entry.get(provider).cloned()
    }

    /// Reads and decrypts an account's credentials and caches them; `None` on a database error
    /// (nothing is cached then, so the next request retries).
    async fn load(&self, store: &Store, account_id: &str) -> Option<Arc<HashMap<String, Secret>>> {
        let key = self.inner.key.as_ref()?;
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let rows = match store.list_byok(account_id).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, account = %account_id, "loading BYOK credentials failed");
                return None;
            }
        };
        let mut by_provider = HashMap::new();
        for row in sorted(rows) {
            if row.disabled || by_provider.contains_key(&row.provider) {
                continue;
            }
            match decrypt(key, account_id, &row.provider, &row.ciphertext) {
                Ok(secret) => {
                    by_provider.insert(row.provider.clone(), secret);
                }
                Err(_) => tracing::error!(
                    account = %account_id, credential = %row.id, provider = %row.provider,
                    "BYOK credential cannot be decrypted (wrong encryption key or altered row); skipped"
                ),
            }
        }
        let by_provider = Arc::new(by_provider);
        if let Ok(mut map) = self.inner.cache.write() {
            if self.inner.epoch.load(Ordering::Acquire) == epoch {
                map.insert(
                    account_id.to_owned(),
                    Entry {
                        by_provider: by_provider.clone(),
                        fetched: Instant::now(),
                    },
                );
            }
        }
        Some(by_provider)
    }

    /// Adds a credential ([`add_credential`] with this vault's key) and refreshes the account's
    /// cache.
    pub async fn add(
        &self,
        store: &Store,
        catalog: &Catalog,
        new: &NewCredential<'_>,
        now_ms: i64,
    ) -> Result<ByokRow, ByokError> {
        let row = add_credential(store, self.inner.key.as_ref(), catalog, new, now_ms).await?;
        self.invalidate(new.account_id);
        Ok(row)
    }

    /// Deletes one of `account_id`'s credentials; `false` if it has no such credential.
    pub async fn remove(
        &self,
        store: &Store,
        account_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = store.delete_byok(id, account_id).await?;
        self.invalidate(account_id);
        Ok(deleted)
    }

    /// Forgets `account_id`'s cached credentials (after a create or delete).
    pub fn invalidate(&self, account_id: &str) {
        if let Ok(mut map) = self.inner.cache.write() {
            self.inner.epoch.fetch_add(1, Ordering::AcqRel);
            map.remove(account_id);
        }
    }

    /// The BYOK fee on a request whose equivalent price is `equivalent`: `fee_percent` of it,
    /// rounded half up to the nano-dollar; zero while the account has free requests left.
    pub fn fee(&self, equivalent: Money, free_allowance_left: bool) -> Money {
        if free_allowance_left {
            return Money::ZERO;
        }
        fee_bps(equivalent, self.inner.fee_bps)
    }

    /// Whether `account_id` has BYOK requests left this UTC month that carry no fee. The first call
    /// per account and month counts the month's BYOK requests in the database; later ones read
    /// memory.
    pub async fn free_allowance_left(&self, store: &Store, account_id: &str, now_ms: i64) -> bool {
        let free = self.inner.free_per_month;
        if free == 0 {
            return false;
        }
        let month_start_ms = utc_window_starts(now_ms)[2];
        let known = self
            .inner
            .months
            .lock()
            .ok()
            .and_then(|m| m.get(account_id).copied())
            .filter(|c| c.month_start_ms == month_start_ms);
        if let Some(count) = known {
            return count.requests < free;
        }
        let seeded = match store
            .count_byok_requests_since(account_id, month_start_ms)
            .await
        {
            Ok(n) => n.max(0) as u64,
            Err(e) => {
                tracing::error!(error = %e, account = %account_id, "counting BYOK requests failed");
                return false;
            }
        };
        let Ok(mut months) = self.inner.months.lock() else {
            return false;
        };
        let count = months
            .entry(account_id.to_owned())
            .and_modify(|c| {
                if c.month_start_ms != month_start_ms {
                    *c = MonthCount {
                        month_start_ms,
                        requests: seeded,
                    };
                }
            })
            .or_insert(MonthCount {
                month_start_ms,
                requests: seeded,
            });
        count.requests < free
    }

    /// Counts one BYOK request of `account_id` against this month's free allowance (call it after
    /// [`Vault::free_allowance_left`], which loads the month's count).
    pub fn count_request(&self, account_id: &str) {
        if let Ok(mut months) = self.inner.months.lock() {
            if let Some(count) = months.get_mut(account_id) {
                count.requests += 1;
            }
        }
    }
}

/// `bps` basis points of `amount`, rounded half away from zero to the nano-dollar.
pub fn fee_bps(amount: Money, bps: i64) -> Money {
    let product = amount.nanos() as i128 * bps as i128;
    let rounded = if product >= 0 {
        (product + 5_000) / 10_000
    } else {
        (product - 5_000) / 10_000
    };
    Money::from_nanos(rounded.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
}

// ---------------------------------------------------------------------------------------------
// HTTP API: /api/v1/byok (management keys only).

/// A credential as the API shows it: never the secret. Fields OpenRouter's SDKs require and that
/// Switchyard does not implement (allowlists, regions, fallback flags, workspaces) are their neutral
/// values.
pub fn credential_json(row: &ByokRow, sort_order: usize) -> Value {
    json!({
        "id": row.id,
        "provider": row.provider,
        "name": if row.name.is_empty() { Value::Null } else { json!(row.name) },
        "label": row.label,
        "disabled": row.disabled,
        "created_at": format_rfc3339_ms(row.created_at_ms),
        "sort_order": sort_order,
        "is_fallback": false,
        "is_byok_only": false,
        "is_required": false,
        "allowed_models": null,
        "allowed_api_key_hashes": null,
        "allowed_user_ids": null,
        "declared_region": null,
        "declared_zdr": null,
        "workspace_id": null,
    })
}

/// The JSON of an account's credentials, oldest first, each with its `sort_order`.
pub fn credentials_json(rows: Vec<ByokRow>) -> Vec<Value> {
    with_sort_order(rows)
        .iter()
        .map(|(row, order)| credential_json(row, *order))
        .collect()
}

/// Rows with their position among the same provider's credentials.
fn with_sort_order(rows: Vec<ByokRow>) -> Vec<(ByokRow, usize)> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    sorted(rows)
        .into_iter()
        .map(|row| {
            let n = seen.entry(row.provider.clone()).or_insert(0);
            let order = *n;
            *n += 1;
            (row, order)
        })
        .collect()
}

async fn account_rows(state: &AppState, account_id: &str) -> HttpResult<Vec<(ByokRow, usize)>> {
    let rows = state
        .store
        .list_byok(account_id)
        .await
        .map_err(|e| HttpError(crate::error::store_failure(&e)))?;
    Ok(with_sort_order(rows))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    provider: Option<String>,
    offset: Option<String>,
    limit: Option<String>,
}

/// A numeric query parameter, `default` when absent; `None` when not an integer in `0..=max`.
fn number(value: Option<&str>, default: usize, max: usize) -> Option<usize> {
    match value.filter(|v| !v.is_empty()) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n <= max),
    }
}

/// `GET /api/v1/byok`: the account's credentials, oldest first (`provider`, `offset`, `limit`).
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> HttpResult<Json<Value>> {
    let principal = state.authenticate(&headers, Need::Management).await?;
    let offset = number(query.offset.as_deref(), 0, usize::MAX).ok_or_else(|| {
        ApiError::invalid("Query parameter `offset` must be a non-negative integer")
    })?;
    let limit = number(query.limit.as_deref(), 50, 100)
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ApiError::invalid("Query parameter `limit` must be an integer from 1 to 100")
        })?;
    let rows: Vec<_> = account_rows(&state, &principal.key.account_id)
        .await?
        .into_iter()
        .filter(|(row, _)| {
            query
                .provider
                .as_deref()
                .is_none_or(|p| p.is_empty() || row.provider == p)
        })
        .collect();
    let total = rows.len();
    let data: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(row, order)| credential_json(row, *order))
        .collect();
    Ok(Json(json!({"data": data, "total_count": total})))
}

/// `GET /api/v1/byok/{id}`.
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> HttpResult<Json<Value>> {
    let principal = state.authenticate(&headers, Need::Management).await?;
    account_rows(&state, &principal.key.account_id)
        .await?
        .into_iter()
        .find(|(row, _)| row.id == id)
        .map(|(row, order)| Json(json!({"data": credential_json(&row, order)})))
        .ok_or_else(|| not_found(&id))
}

fn not_found(id: &str) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::NotFound,
        format!("BYOK credential {id} not found"),
    ))
}

/// `POST /api/v1/byok` body: OpenRouter's `key`, or `api_key`.
#[derive(Deserialize)]
struct CreateBody {
    provider: Option<String>,
    key: Option<String>,
    api_key: Option<String>,
    name: Option<String>,
    #[serde(default)]
    disabled: bool,
}

/// The request body, refusing more than [`MAX_BODY_BYTES`] with 413.
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("Request body is larger than the limit of {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::invalid("Could not read the request body")
            }
        })
}

/// `POST /api/v1/byok`: stores a provider credential → 201 `{"data": credential}`.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<(StatusCode, Json<Value>)> {
    let now = state.now_ms();
    let principal = state.authenticate(&headers, Need::Management).await?;
    let bytes = read_body(body).await?;
    // The serde error could quote the body, and so the key: say only what is wrong.
    let parsed: CreateBody = serde_json::from_slice(&bytes).map_err(|_| {
        ApiError::invalid(
            "Body must be a JSON object: {\"provider\": \"openai\", \"key\": \"sk-...\", \"name\": \"optional\"}",
        )
    })?;
    let Some(provider) = parsed.provider.filter(|p| !p.is_empty()) else {
        return Err(
            ApiError::invalid("`provider` is required: a provider slug such as `openai`").into(),
        );
    };
    let Some(api_key) = parsed.key.or(parsed.api_key) else {
        return Err(ApiError::invalid("`key` (the provider API key) is required").into());
    };
    let account_id = &principal.key.account_id;
    let new = NewCredential {
        account_id,
        provider: &provider,
        api_key: &api_key,
        name: parsed.name.as_deref().unwrap_or(""),
        disabled: parsed.disabled,
    };
    let row = state
        .byok
        .add(&state.store, &state.catalog, &new, now)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(account = %account_id, credential = %row.id, provider = %row.provider, "BYOK credential added");
    let order = account_rows(&state, account_id)
        .await?
        .into_iter()
        .find(|(r, _)| r.id == row.id)
        .map_or(0, |(_, order)| order);
    Ok((
        StatusCode::CREATED,
        Json(json!({"data": credential_json(&row, order)})),
    ))
}

/// `DELETE /api/v1/byok/{id}` → `{"deleted": true}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> HttpResult<Json<Value>> {
    let principal = state.authenticate(&headers, Need::Management).await?;
    let account_id = &principal.key.account_id;
    let deleted = state
        .byok
        .remove(&state.store, account_id, &id)
        .await
        .map_err(|e| HttpError(crate::error::store_failure(&e)))?;
    if !deleted {
        return Err(not_found(&id));
    }
    state.byok.invalidate(account_id);
    tracing::info!(account = %account_id, credential = %id, "BYOK credential deleted");
    Ok(Json(json!({"deleted": true})))
}

#[cfg(test)]
mod tests;
