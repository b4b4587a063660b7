//! Configuration: defaults, then the TOML file, then `SWITCHYARD_*` environment overrides, then
//! validation with secrets resolved.
//!
//! The environment is read through a lookup function passed in by the caller, so tests never mutate
//! the process environment (clippy bans `set_var`). Secrets are written `env:NAME` in the file and
//! resolved here; a [`Secret`] never prints its value.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchyard_core::catalog::{
    Architecture, Catalog, CatalogParts, Endpoint, Model, Pricing, Protocol, Provider,
};
use switchyard_core::health::HealthPolicy;
use switchyard_core::money::{Money, Price};
use switchyard_core::routing::ProviderPrefs;
use toml::Spanned;

use crate::upstream::google::GoogleAuth;
use crate::upstream::sigv4::AwsKeys;

/// An environment lookup (the real environment, or a map in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A credential; `Debug` and `Display` print `*****`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{path}line {line}: {message}")]
    At {
        /// `file: ` when known.
        path: String,
        line: usize,
        message: String,
    },
    #[error("catalog: {0}")]
    Catalog(#[from] switchyard_core::catalog::CatalogError),
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The file as written (every field optional; unknown fields are errors).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    database: Option<String>,
    max_body_bytes: Option<usize>,
    keepalive_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    reservation_ttl_s: Option<u64>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    byok: RawByok,
    #[serde(default)]
    routing: RawRouting,
    #[serde(default)]
    catalog: RawCatalog,
    #[serde(default)]
    providers: BTreeMap<String, Spanned<RawProvider>>,
    #[serde(default)]
    models: Vec<Spanned<RawModel>>,
    #[serde(default)]
    endpoints: Vec<Spanned<RawEndpoint>>,
    #[serde(default)]
    prices: Vec<Spanned<RawPrices>>,
    #[serde(default)]
    testing: RawTesting,
}

/// `[limits]`: request and token rate limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    free_requests_per_minute: Option<u32>,
    free_requests_per_day: Option<u32>,
    free_requests_per_day_funded: Option<u32>,
    /// USD of credits granted after which the funded daily free quota applies.
    free_funded_threshold: Option<String>,
    key_requests_per_minute: Option<u32>,
    key_tokens_per_minute: Option<u64>,
    account_requests_per_minute: Option<u32>,
    account_tokens_per_minute: Option<u64>,
}

/// `[testing]`: knobs for the benchmark, never for production.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTesting {
    /// Sleep before every batched store write (a slow database, to show the hot path never waits).
    store_write_delay_ms: Option<u64>,
}

/// `[byok]`: accounts' own provider credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawByok {
    /// 64 hex characters (32 bytes); usually `env:SWITCHYARD_BYOK_KEY`.
    encryption_key: Option<String>,
    fee_percent: Option<f64>,
    free_requests_per_month: Option<u64>,
}

/// `[routing]`: outage detection, circuit breaking, and account-wide provider preferences.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    outage_window_s: Option<u64>,
    outage_min_failures: Option<u32>,
    outage_failure_percent: Option<f64>,
    breaker_open_s: Option<u64>,
    breaker_max_open_s: Option<u64>,
    max_retry_after_s: Option<u64>,
    /// Default `provider` preferences of every account (the request's own fields win).
    provider: Option<toml::Value>,
    /// `[routing.accounts.<account-id>] provider = {...}`: one account's defaults.
    #[serde(default)]
    accounts: BTreeMap<String, RawAccountRouting>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccountRouting {
    provider: Option<toml::Value>,
}

/// Routing settings: the health policy and default provider preferences (as request JSON).
#[derive(Debug, Clone, Default)]
pub struct RoutingConfig {
    pub health: HealthPolicy,
    pub default_provider: Option<serde_json::Value>,
    pub account_provider: BTreeMap<String, serde_json::Value>,
}

impl RoutingConfig {
    /// The defaults that apply to an account: its own, else everyone's.
    pub fn defaults_for(&self, account_id: &str) -> Option<&serde_json::Value> {
        self.account_provider
            .get(account_id)
            .or(self.default_provider.as_ref())
    }
}

/// A `provider` table from the config as JSON, checked by the same parser as requests.
fn provider_defaults(field: &str, value: &toml::Value) -> Result<serde_json::Value, ConfigError> {
    let json = serde_json::to_value(value).map_err(|e| invalid(field, e.to_string()))?;
    if !json.is_object() {
        return Err(invalid(field, "must be a table of provider preferences"));
    }
    ProviderPrefs::parse(Some(&json), None).map_err(|e| invalid(field, e.message.to_string()))?;
    Ok(json)
}

fn routing_config(raw: &RawRouting) -> Result<RoutingConfig, ConfigError> {
    let defaults = HealthPolicy::default();
    let s_to_ms =
        |v: Option<u64>, default: i64| v.map_or(default, |s| (s as i64).saturating_mul(1000));
    let ratio = match raw.outage_failure_percent {
        None => defaults.outage_failure_ratio,
        Some(p) if (0.0..=100.0).contains(&p) && p > 0.0 => p / 100.0,
        Some(_) => {
            return Err(invalid(
                "routing.outage_failure_percent",
                "must be above 0 and at most 100",
            ))
        }
    };
    let health = HealthPolicy {
        outage_window_ms: s_to_ms(raw.outage_window_s, defaults.outage_window_ms),
        outage_min_failures: raw
            .outage_min_failures
            .unwrap_or(defaults.outage_min_failures)
            .max(1),
        outage_failure_ratio: ratio,
        open_ms: s_to_ms(raw.breaker_open_s, defaults.open_ms),
        max_open_ms: s_to_ms(raw.breaker_max_open_s, defaults.max_open_ms),
        max_retry_after_ms: s_to_ms(raw.max_retry_after_s, defaults.max_retry_after_ms),
        ..defaults
    };
    let default_provider = raw
        .provider
        .as_ref()
        .map(|v| provider_defaults("routing.provider", v))
        .transpose()?;
    let mut account_provider = BTreeMap::new();
    for (account, settings) in &raw.accounts {
        if let Some(v) = &settings.provider {
            let field = format!("routing.accounts.{account}.provider");
            account_provider.insert(account.clone(), provider_defaults(&field, v)?);
        }
    }
    Ok(RoutingConfig {
        health,
        default_provider,
        account_provider,
    })
}

/// `[catalog]`: where the catalog comes from and catalog-wide changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    /// A directory with `providers.json`, `models.json`, `endpoints.json` replacing the bundled catalog.
    dir: Option<PathBuf>,
    /// Percentage added to every price (negative for a discount).
    margin_percent: Option<f64>,
    #[serde(default)]
    disabled_models: Vec<Spanned<String>>,
    #[serde(default)]
    disabled_providers: Vec<Spanned<String>>,
}

/// `[providers.<slug>]`: credentials and URL of a catalog provider, or a private provider.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    base_url: Option<String>,
    api_key: Option<String>,
    /// Azure OpenAI: the `api-version` query parameter.
    api_version: Option<String>,
    /// Vertex AI: a service-account key file (JSON), the project (default: the file's
    /// `project_id`) and the location of untagged endpoints (default `us-central1`).
    credentials_file: Option<String>,
    project: Option<String>,
    location: Option<String>,
    /// Bedrock: the region of untagged endpoints (default: `AWS_REGION`, else `us-east-1`) and
    /// SigV4 keys (default: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    enabled: Option<bool>,
    /// Private providers only: display name and protocol.
    name: Option<String>,
    protocol: Option<Protocol>,
}

/// `[[models]]`: a private model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    id: String,
    name: Option<String>,
    canonical_slug: Option<String>,
    context_length: u64,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    description: String,
    input_modalities: Option<Vec<String>>,
    output_modalities: Option<Vec<String>>,
    tokenizer: Option<String>,
}

/// `[[endpoints]]`: an endpoint added to a catalog or private model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    model: String,
    provider: String,
    tag: Option<String>,
    upstream_model: String,
    context_length: Option<u64>,
    max_completion_tokens: Option<u64>,
    quantization: Option<String>,
    #[serde(default)]
    pricing: Pricing,
    #[serde(default)]
    supported_parameters: Vec<String>,
}

/// `[[prices]]`: new prices or a margin for the endpoints of one model (one tag, or all).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrices {
    model: String,
    tag: Option<String>,
    margin_percent: Option<f64>,
    #[serde(default)]
    pricing: BTreeMap<String, String>,
}

/// How to reach one enabled provider.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Azure OpenAI's `api-version` (default [`AZURE_API_VERSION`]).
    pub api_version: Option<String>,
    /// Vertex AI's project.
    pub project: String,
    /// Bedrock's region or Vertex AI's location for endpoints whose tag names none.
    pub region: String,
    /// Vertex AI: the service account whose tokens authenticate calls.
    pub google: Option<Arc<GoogleAuth>>,
    /// Bedrock: SigV4 keys (without them, `api_key` is sent as a Bedrock API key).
    pub aws_keys: Option<Arc<AwsKeys>>,
}

/// The Azure OpenAI API version used when a provider sets none (the current GA version).
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: String,
    pub catalog: Catalog,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Interval of `: OPENROUTER PROCESSING` comments while a stream waits.
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for an upstream's response headers.
    pub first_byte_timeout: Duration,
    /// Longest silence between two upstream body chunks.
    pub idle_timeout: Duration,
    /// Enabled providers by slug.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    pub rate_limits: RateLimits,
    pub byok: ByokConfig,
    pub routing: RoutingConfig,
    /// How long a reservation may stay held before it is released as abandoned.
    pub reservation_ttl: Duration,
    /// Benchmark only (`[testing] store_write_delay_ms`): a delay before every batched store
    /// write of the recorder, simulating a slow database; zero by default.
    pub store_write_delay: Duration,
}

/// Rate limits; `None` means unlimited.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Per account, on `:free` models.
    pub free_requests_per_minute: u32,
    pub free_requests_per_day: u32,
    /// The daily free quota once the account has been granted `free_funded_threshold`.
    pub free_requests_per_day_funded: u32,
    pub free_funded_threshold: Money,
    pub key_requests_per_minute: Option<u32>,
    pub key_tokens_per_minute: Option<u64>,
    pub account_requests_per_minute: Option<u32>,
    pub account_tokens_per_minute: Option<u64>,
}

/// A 256-bit key; `Debug` prints `*****`.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey(pub [u8; 32]);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// BYOK settings.
#[derive(Debug, Clone)]
pub struct ByokConfig {
    /// Key that encrypts stored credentials; BYOK is off without it.
    pub encryption_key: Option<EncryptionKey>,
    /// Fee charged on BYOK requests, as a percentage of the endpoint's price.
    pub fee_percent: f64,
    /// BYOK requests per account and UTC month that carry no fee.
    pub free_requests_per_month: u64,
}

/// Overrides that the command line applies on top of file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database: Option<String>,
}

impl Config {
    /// Loads `file` (if any), applies the environment and `overrides`, and validates.
    pub fn load(
        file: Option<&Path>,
        env: Env<'_>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::parse(&text, path, env, overrides)
            }
            None => Config::parse("", Path::new("<defaults>"), env, overrides),
        }
    }

    /// Parses config text (for tests).
    pub fn from_toml(
        text: &str,
        env: Env<'_>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("<inline>"), env, overrides)
    }

    fn parse(
        text: &str,
        path: &Path,
        env: Env<'_>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Config::from_raw(raw, text, env, overrides).map_err(|e| match e {
            ConfigError::At { line, message, .. } if !text.is_empty() => ConfigError::At {
                path: format!("{}: ", path.display()),
                line,
                message,
            },
            other => other,
        })
    }

    fn from_raw(
        mut raw: RawConfig,
        text: &str,
        env: Env<'_>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        apply_env(&mut raw, env)?;
        let listen_text = overrides
            .listen
            .clone()
            .or(raw.listen.take())
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            invalid(
                "listen",
                format!("`{listen_text}` is not an address like 127.0.0.1:8080"),
            )
        })?;
        let database = overrides
            .database
            .clone()
            .or(raw.database.take())
            .unwrap_or_else(|| "sqlite://switchyard.db".to_owned());
        let base = match &raw.catalog.dir {
            Some(dir) => load_catalog_dir(dir)?,
            None => Catalog::from_files(switchyard_core::catalog::BUNDLED)?,
        };
        let mut providers: BTreeMap<String, (usize, RawProvider)> = raw
            .providers
            .iter()
            .map(|(slug, p)| {
                (
                    slug.clone(),
                    (line_of(text, p.span().start), p.get_ref().clone()),
                )
            })
            .collect();
        provider_env(&base, &mut providers, env)?;
        let catalog = apply_overrides(base, &raw, &providers, text)?;

        let mut upstreams = BTreeMap::new();
        for provider in catalog.providers() {
            let raw_provider = providers
                .get(&provider.slug)
                .map(|(_, p)| p.clone())
                .unwrap_or_default();
            let field = format!("providers.{}.api_key", provider.slug);
            let api_key = match raw_provider.api_key.as_deref() {
                Some(reference) => Some(resolve_secret(&field, reference, env)?),
                None => provider
                    .api_key_env
                    .as_deref()
                    .and_then(env)
                    .filter(|v| !v.is_empty())
                    .map(Secret::new),
            };
            let cloud = cloud_credentials(provider, &raw_provider, env)?;
            let enabled = raw_provider
                .enabled
                .unwrap_or(api_key.is_some() || cloud.google.is_some() || cloud.aws_keys.is_some());
            if !enabled {
                continue;
            }
            upstreams.insert(
                provider.slug.clone(),
                UpstreamConfig {
                    base_url: provider.base_url.trim_end_matches('/').to_owned(),
                    api_key,
                    api_version: raw_provider.api_version.clone(),
                    project: cloud.project,
                    region: cloud.region,
                    google: cloud.google,
                    aws_keys: cloud.aws_keys,
                },
            );
        }
        let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default));
        let l = &raw.limits;
        let threshold = l.free_funded_threshold.as_deref().unwrap_or("10");
        let rate_limits = RateLimits {
            free_requests_per_minute: l.free_requests_per_minute.unwrap_or(20),
            free_requests_per_day: l.free_requests_per_day.unwrap_or(50),
            free_requests_per_day_funded: l.free_requests_per_day_funded.unwrap_or(1000),
            free_funded_threshold: Money::parse_usd(threshold)
                .map_err(|e| invalid("limits.free_funded_threshold", e.to_string()))?,
            key_requests_per_minute: l.key_requests_per_minute,
            key_tokens_per_minute: l.key_tokens_per_minute,
            account_requests_per_minute: l.account_requests_per_minute,
            account_tokens_per_minute: l.account_tokens_per_minute,
        };
        let encryption_key = match raw.byok.encryption_key.as_deref() {
            Some(reference) => {
                let secret = resolve_secret("byok.encryption_key", reference, env)?;
                Some(parse_key32(secret.expose()).map(EncryptionKey).ok_or_else(|| {
                    invalid("byok.encryption_key", "must be 64 hex characters (32 random bytes, e.g. `openssl rand -hex 32`)")
                })?)
            }
            None => None,
        };
        let fee_percent = raw.byok.fee_percent.unwrap_or(5.0);
        if !(0.0..=100.0).contains(&fee_percent) {
            return Err(invalid("byok.fee_percent", "must be between 0 and 100"));
        }
        let byok = ByokConfig {
            encryption_key,
            fee_percent,
            free_requests_per_month: raw.byok.free_requests_per_month.unwrap_or(0),
        };
        let routing = routing_config(&raw.routing)?;
        Ok(Config {
            rate_limits,
            byok,
            routing,
            reservation_ttl: Duration::from_secs(raw.reservation_ttl_s.unwrap_or(900)),
            listen,
            database,
            catalog,
            max_body_bytes: raw.max_body_bytes.unwrap_or(10 * 1024 * 1024),
            keepalive: ms(raw.keepalive_ms, 5_000),
            connect_timeout: ms(raw.connect_timeout_ms, 10_000),
            first_byte_timeout: ms(raw.first_byte_timeout_ms, 120_000),
            idle_timeout: ms(raw.idle_timeout_ms, 120_000),
            store_write_delay: ms(raw.testing.store_write_delay_ms, 0),
            upstreams,
        })
    }
}

/// 32 bytes from 64 hex characters.
fn parse_key32(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Reads a catalog directory (`providers.json`, `models.json`, `endpoints.json`).
fn load_catalog_dir(dir: &Path) -> Result<Catalog, ConfigError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path, source })
    };
    let (providers, models, endpoints) = (
        read("providers.json")?,
        read("models.json")?,
        read("endpoints.json")?,
    );
    Ok(Catalog::from_files(
        switchyard_core::catalog::CatalogFiles {
            providers: &providers,
            models: &models,
            endpoints: &endpoints,
        },
    )?)
}

/// 1-based line of a byte offset (0 for values that came from the environment).
fn line_of(text: &str, offset: usize) -> usize {
    if text.is_empty() {
        return 0;
    }
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn at(line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError::At {
        path: String::new(),
        line,
        message: message.into(),
    }
}

/// Applies the operator's catalog changes, in this order: private providers, provider base URLs,
/// disabled providers, private models, added endpoints, disabled models, per-model prices, then
/// the catalog-wide margin (which skips endpoints that `[[prices]]` set explicitly).
fn apply_overrides(
    base: Catalog,
    raw: &RawConfig,
    providers: &BTreeMap<String, (usize, RawProvider)>,
    text: &str,
) -> Result<Catalog, ConfigError> {
    let mut parts: CatalogParts = base.into_parts();
    let line = |span: std::ops::Range<usize>| line_of(text, span.start);

    for (slug, (line, p)) in providers {
        let existing = parts.providers.iter_mut().find(|c| &c.slug == slug);
        match existing {
            Some(provider) => {
                if p.protocol.is_some() || p.name.is_some() {
                    return Err(at(*line, format!("[providers.{slug}] is a catalog provider: its `name` and `protocol` cannot change; remove them")));
                }
                if let Some(url) = &p.base_url {
                    provider.base_url = url.clone();
                }
            }
            None => {
                let (Some(protocol), Some(base_url)) = (p.protocol, p.base_url.clone()) else {
                    return Err(at(*line, format!(
                        "[providers.{slug}] is not in the catalog; to add a private provider give it `protocol = \"openai\"` and `base_url = \"http://...\"` (and optionally `name`)"
                    )));
                };
                parts.providers.push(Provider {
                    slug: slug.clone(),
                    name: p.name.clone().unwrap_or_else(|| slug.clone()),
                    protocol,
                    base_url,
                    api_key_env: None,
                    privacy_policy_url: None,
                    terms_of_service_url: None,
                    status_page_url: None,
                    headquarters: None,
                    datacenters: Vec::new(),
                    data_policy: Default::default(),
                });
            }
        }
    }
    for provider in &parts.providers {
        if !(provider.base_url.starts_with("http://") || provider.base_url.starts_with("https://"))
        {
            let line = providers.get(&provider.slug).map_or(0, |(l, _)| *l);
            return Err(at(
                line,
                format!(
                    "providers.{}.base_url `{}` must start with http:// or https://",
                    provider.slug, provider.base_url
                ),
            ));
        }
    }

    for disabled in &raw.catalog.disabled_providers {
        let slug = disabled.get_ref();
        if !parts.providers.iter().any(|p| &p.slug == slug) {
            return Err(at(line(disabled.span()), format!("disabled_providers names unknown provider `{slug}`; see `switchyard catalog list --providers`")));
        }
        parts.endpoints.retain(|e| &e.provider != slug);
    }

    for spanned in &raw.models {
        let m = spanned.get_ref();
        let line = line(spanned.span());
        if parts.models.iter().any(|c| c.id == m.id) {
            return Err(at(line, format!(
                "model `{}` is already in the catalog (or defined twice); to serve it from another provider add an [[endpoints]] entry with model = \"{}\"",
                m.id, m.id
            )));
        }
        if !m.id.contains('/') {
            return Err(at(
                line,
                format!("model id `{}` must look like `author/name`", m.id),
            ));
        }
        let input = m
            .input_modalities
            .clone()
            .unwrap_or_else(|| vec!["text".into()]);
        let output = m
            .output_modalities
            .clone()
            .unwrap_or_else(|| vec!["text".into()]);
        parts.models.push(Model {
            id: m.id.clone(),
            canonical_slug: m.canonical_slug.clone().unwrap_or_else(|| m.id.clone()),
            name: m.name.clone().unwrap_or_else(|| m.id.clone()),
            created: m.created,
            description: m.description.clone(),
            context_length: m.context_length,
            architecture: Architecture {
                modality: Some(format!("{}->{}", input.join("+"), output.join("+"))),
                input_modalities: input,
                output_modalities: output,
                tokenizer: m.tokenizer.clone().or_else(|| Some("Other".into())),
                instruct_type: None,
            },
            hugging_face_id: None,
            default_parameters: None,
            supported_voices: None,
            knowledge_cutoff: None,
            expiration_date: None,
            reasoning: None,
            is_moderated: false,
            endpoints: Vec::new(),
        });
    }

    for spanned in &raw.endpoints {
        let e = spanned.get_ref();
        let line = line(spanned.span());
        let Some(model) = parts.models.iter().find(|m| m.id == e.model) else {
            return Err(at(
                line,
                format!(
                    "endpoint names unknown model `{}`; define it with a [[models]] entry first",
                    e.model
                ),
            ));
        };
        if !parts.providers.iter().any(|p| p.slug == e.provider) {
            return Err(at(line, format!(
                "endpoint of `{}` names unknown provider `{}`; add [providers.{}] with `protocol` and `base_url`",
                e.model, e.provider, e.provider
            )));
        }
        let tag = e.tag.clone().unwrap_or_else(|| e.provider.clone());
        if parts
            .endpoints
            .iter()
            .any(|x| x.model == e.model && x.tag == tag)
        {
            return Err(at(line, format!("model `{}` already has an endpoint tagged `{tag}`; give this one another `tag` such as \"{}/private\"", e.model, e.provider)));
        }
        parts.endpoints.push(Endpoint {
            model: e.model.clone(),
            provider: e.provider.clone(),
            tag,
            upstream_model: e.upstream_model.clone(),
            context_length: e.context_length.unwrap_or(model.context_length),
            max_completion_tokens: e.max_completion_tokens,
            max_prompt_tokens: None,
            quantization: e.quantization.clone(),
            pricing: e.pricing.clone(),
            supported_parameters: e.supported_parameters.clone(),
            supports_implicit_caching: false,
            status: 0,
        });
    }

    for disabled in &raw.catalog.disabled_models {
        let id = disabled.get_ref();
        if !parts.models.iter().any(|m| &m.id == id) {
            return Err(at(
                line(disabled.span()),
                format!(
                    "disabled_models names unknown model `{id}`; see `switchyard catalog list`"
                ),
            ));
        }
        parts.endpoints.retain(|e| &e.model != id);
    }

    let mut explicit = vec![false; parts.endpoints.len()];
    for spanned in &raw.prices {
        let p = spanned.get_ref();
        let line = line(spanned.span());
        let mut matched = false;
        for (i, e) in parts.endpoints.iter_mut().enumerate() {
            if e.model != p.model || p.tag.as_ref().is_some_and(|t| t != &e.tag) {
                continue;
            }
            matched = true;
            explicit[i] = true;
            for (key, value) in &p.pricing {
                let price = Price::parse_usd(value)
                    .map_err(|err| at(line, format!("pricing.{key}: {err}")))?;
                let Some(slot) = price_slot(&mut e.pricing, key) else {
                    return Err(at(line, format!("unknown price `{key}`; use prompt, completion, request, image, web_search, internal_reasoning, input_cache_read or input_cache_write")));
                };
                *slot = price;
            }
            if let Some(pct) = p.margin_percent {
                apply_margin(&mut e.pricing, pct).map_err(|m| at(line, m))?;
            }
        }
        if !matched {
            return Err(at(line, format!(
                "[[prices]] matches no endpoint: model `{}`{} is not in the catalog; check `switchyard catalog show {}`",
                p.model,
                p.tag.as_ref().map(|t| format!(" with tag `{t}`")).unwrap_or_default(),
                p.model
            )));
        }
    }
    if let Some(pct) = raw.catalog.margin_percent {
        for (e, is_explicit) in parts.endpoints.iter_mut().zip(&explicit) {
            if !is_explicit {
                apply_margin(&mut e.pricing, pct)
                    .map_err(|m| invalid("catalog.margin_percent", m))?;
            }
        }
    }
    parts.drop_models_without_endpoints();
    Ok(parts.build()?)
}

fn price_slot<'p>(pricing: &'p mut Pricing, key: &str) -> Option<&'p mut Price> {
    Some(match key {
        "prompt" => &mut pricing.prompt,
        "completion" => &mut pricing.completion,
        "request" => &mut pricing.request,
        "image" => &mut pricing.image,
        "web_search" => &mut pricing.web_search,
        "internal_reasoning" => &mut pricing.internal_reasoning,
        "input_cache_read" => &mut pricing.input_cache_read,
        "input_cache_write" => &mut pricing.input_cache_write,
        "input_cache_write_1h" => &mut pricing.input_cache_write_1h,
        "audio" => &mut pricing.audio,
        _ => return None,
    })
}

fn apply_margin(pricing: &mut Pricing, percent: f64) -> Result<(), String> {
    if !(-100.0..=10_000.0).contains(&percent) {
        return Err(format!(
            "margin_percent {percent} must be between -100 and 10000"
        ));
    }
    let bps = (percent * 100.0).round() as i64;
    for price in pricing.all_prices_mut() {
        *price = price.with_margin_bps(bps);
    }
    Ok(())
}

/// `env:NAME` → the variable's value; anything else is taken literally.
/// What Vertex AI and Bedrock need beyond a key.
struct Cloud {
    project: String,
    region: String,
    google: Option<Arc<GoogleAuth>>,
    aws_keys: Option<Arc<AwsKeys>>,
}

/// Reads a provider's Vertex AI or Bedrock settings; they are errors on other providers.
fn cloud_credentials(
    provider: &Provider,
    p: &RawProvider,
    env: Env<'_>,
) -> Result<Cloud, ConfigError> {
    let slug = &provider.slug;
    let field = |name: &str| format!("providers.{slug}.{name}");
    let mut cloud = Cloud {
        project: String::new(),
        region: String::new(),
        google: None,
        aws_keys: None,
    };
    let vertex_only = [
        ("credentials_file", p.credentials_file.is_some()),
        ("project", p.project.is_some()),
        ("location", p.location.is_some()),
    ];
    let bedrock_only = [
        ("region", p.region.is_some()),
        ("access_key_id", p.access_key_id.is_some()),
        ("secret_access_key", p.secret_access_key.is_some()),
        ("session_token", p.session_token.is_some()),
    ];
    let misplaced = |fields: &[(&str, bool)], wanted: &str| {
        fields.iter().find(|(_, set)| *set).map(|(name, _)| {
            invalid(
                &field(name),
                format!("only applies to {wanted} providers; `{slug}` is not one"),
            )
        })
    };
    match provider.protocol {
        Protocol::Vertex => {
            if let Some(err) = misplaced(&bedrock_only, "Bedrock") {
                return Err(err);
            }
            if let Some(path) = &p.credentials_file {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    invalid(
                        &field("credentials_file"),
                        format!("cannot read {path}: {e}"),
                    )
                })?;
                let auth = GoogleAuth::from_json(&text)
                    .map_err(|e| invalid(&field("credentials_file"), e.to_string()))?;
                cloud.google = Some(Arc::new(auth));
            }
            cloud.project = match (&p.project, &cloud.google) {
                (Some(project), _) => project.clone(),
                (None, Some(auth)) => auth.project_id.clone().unwrap_or_default(),
                (None, None) => String::new(),
            };
            if cloud.google.is_some() && cloud.project.is_empty() {
                return Err(invalid(
                    &field("project"),
                    "is required: the service-account file names no project_id",
                ));
            }
            cloud.region = p.location.clone().unwrap_or_else(|| "us-central1".into());
        }
        Protocol::Bedrock => {
            if let Some(err) = misplaced(&vertex_only, "Vertex AI") {
                return Err(err);
            }
            let value = |own: &Option<String>, name: &str, env_name: &str| match own {
                Some(reference) => resolve_secret(&field(name), reference, env).map(Some),
                None => Ok(env(env_name).filter(|v| !v.is_empty()).map(Secret::new)),
            };
            let id = value(&p.access_key_id, "access_key_id", "AWS_ACCESS_KEY_ID")?;
            let secret = value(
                &p.secret_access_key,
                "secret_access_key",
                "AWS_SECRET_ACCESS_KEY",
            )?;
            let token = value(&p.session_token, "session_token", "AWS_SESSION_TOKEN")?;
            match (id, secret) {
                (Some(id), Some(secret)) => {
                    cloud.aws_keys = Some(Arc::new(AwsKeys {
                        access_key_id: id.expose().to_owned(),
                        secret_access_key: secret.expose().to_owned(),
                        session_token: token.map(|t| t.expose().to_owned()),
                    }));
                }
                (Some(_), None) | (None, Some(_))
                    if p.access_key_id.is_some() || p.secret_access_key.is_some() =>
                {
                    return Err(invalid(
                        &field("access_key_id"),
                        "needs both access_key_id and secret_access_key",
                    ));
                }
                _ => {}
            }
            cloud.region = p
                .region
                .clone()
                .or_else(|| env("AWS_REGION").filter(|v| !v.is_empty()))
                .unwrap_or_else(|| "us-east-1".into());
        }
        _ => {
            if let Some(err) = misplaced(&vertex_only, "Vertex AI") {
                return Err(err);
            }
            if let Some(err) = misplaced(&bedrock_only, "Bedrock") {
                return Err(err);
            }
        }
    }
    Ok(cloud)
}

fn resolve_secret(field: &str, reference: &str, env: Env<'_>) -> Result<Secret, ConfigError> {
    match reference.strip_prefix("env:") {
        Some(name) => env(name)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                invalid(
                    field,
                    format!("refers to environment variable {name}, which is not set"),
                )
            }),
        None => Ok(Secret::new(reference.to_owned())),
    }
}

/// `SWITCHYARD_LISTEN`, `SWITCHYARD_DATABASE`, `SWITCHYARD_MAX_BODY_BYTES`, `SWITCHYARD_KEEPALIVE_MS`,
/// and per provider `SWITCHYARD_PROVIDER_<SLUG>_BASE_URL|_API_KEY|_ENABLED` (slug upper-cased, `-` → `_`).
fn apply_env(raw: &mut RawConfig, env: Env<'_>) -> Result<(), ConfigError> {
    if let Some(v) = env("SWITCHYARD_LISTEN") {
        raw.listen = Some(v);
    }
    if let Some(v) = env("SWITCHYARD_DATABASE") {
        raw.database = Some(v);
    }
    let number = |name: &str| -> Result<Option<u64>, ConfigError> {
        env(name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| invalid(name, format!("`{v}` is not a number")))
            })
            .transpose()
    };
    if let Some(v) = number("SWITCHYARD_MAX_BODY_BYTES")? {
        raw.max_body_bytes = Some(v as usize);
    }
    if let Some(v) = number("SWITCHYARD_KEEPALIVE_MS")? {
        raw.keepalive_ms = Some(v);
    }
    Ok(())
}

/// Applies per-provider environment overrides for the slugs of `catalog` and of private providers.
fn provider_env(
    catalog: &Catalog,
    providers: &mut BTreeMap<String, (usize, RawProvider)>,
    env: Env<'_>,
) -> Result<(), ConfigError> {
    let mut slugs: Vec<String> = catalog.providers().iter().map(|p| p.slug.clone()).collect();
    slugs.extend(providers.keys().cloned());
    for slug in slugs {
        let prefix = format!(
            "SWITCHYARD_PROVIDER_{}_",
            slug.to_uppercase().replace(['-', '.'], "_")
        );
        if let Some(v) = env(&format!("{prefix}BASE_URL")) {
            entry(providers, &slug).base_url = Some(v);
        }
        if let Some(v) = env(&format!("{prefix}API_KEY")) {
            entry(providers, &slug).api_key = Some(v);
        }
        if let Some(v) = env(&format!("{prefix}ENABLED")) {
            let enabled = match v.as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => {
                    return Err(invalid(
                        &format!("{prefix}ENABLED"),
                        "must be true or false",
                    ))
                }
            };
            entry(providers, &slug).enabled = Some(enabled);
        }
    }
    Ok(())
}

fn entry<'m>(
    providers: &'m mut BTreeMap<String, (usize, RawProvider)>,
    slug: &str,
) -> &'m mut RawProvider {
    &mut providers
        .entry(slug.to_owned())
        .or_insert_with(|| (0, RawProvider::default()))
        .1
}

#[cfg(test)]
mod tests;
