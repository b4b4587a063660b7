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
use std::time::Duration;
use switchyard_core::catalog::Catalog;

/// The bundled catalog, embedded at build time.
pub const BUNDLED_CATALOG: &str = include_str!("../../../catalog/catalog.json");

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
    catalog: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    keepalive_ms: Option<u64>,
    connect_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    base_url: Option<String>,
    api_key: Option<String>,
    enabled: Option<bool>,
}

/// How to reach one enabled provider.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub base_url: String,
    pub api_key: Option<Secret>,
}

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
        let raw = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => RawConfig::default(),
        };
        Config::from_raw(raw, env, overrides)
    }

    /// Parses config text (for tests and `--config -`).
    pub fn from_toml(
        text: &str,
        env: Env<'_>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })?;
        Config::from_raw(raw, env, overrides)
    }

    fn from_raw(
        mut raw: RawConfig,
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
        let catalog = match &raw.catalog {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Catalog::from_json(&text)?
            }
            None => Catalog::from_json(BUNDLED_CATALOG)?,
        };
        provider_env(&catalog, &mut raw, env)?;
        for slug in raw.providers.keys() {
            if catalog.provider(slug).is_none() {
                return Err(invalid(
                    &format!("providers.{slug}"),
                    "no such provider in the catalog",
                ));
            }
        }
        let mut upstreams = BTreeMap::new();
        for provider in catalog.providers() {
            let raw_provider = raw
                .providers
                .get(&provider.slug)
                .cloned()
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
            let enabled = raw_provider.enabled.unwrap_or(api_key.is_some());
            if !enabled {
                continue;
            }
            let base_url = raw_provider
                .base_url
                .unwrap_or_else(|| provider.base_url.clone());
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(invalid(
                    &format!("providers.{}.base_url", provider.slug),
                    format!("`{base_url}` must start with http:// or https://"),
                ));
            }
            upstreams.insert(
                provider.slug.clone(),
                UpstreamConfig {
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    api_key,
                },
            );
        }
        let ms = |v: Option<u64>, default: u64| Duration::from_millis(v.unwrap_or(default));
        Ok(Config {
            listen,
            database,
            catalog,
            max_body_bytes: raw.max_body_bytes.unwrap_or(10 * 1024 * 1024),
            keepalive: ms(raw.keepalive_ms, 5_000),
            connect_timeout: ms(raw.connect_timeout_ms, 10_000),
            first_byte_timeout: ms(raw.first_byte_timeout_ms, 120_000),
            idle_timeout: ms(raw.idle_timeout_ms, 120_000),
            upstreams,
        })
    }
}

/// `env:NAME` → the variable's value; anything else is taken literally.
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

/// Applies per-provider environment overrides for the slugs of `catalog`.
fn provider_env(catalog: &Catalog, raw: &mut RawConfig, env: Env<'_>) -> Result<(), ConfigError> {
    for provider in catalog.providers() {
        let prefix = format!(
            "SWITCHYARD_PROVIDER_{}_",
            provider.slug.to_uppercase().replace(['-', '.'], "_")
        );
        let entry = || RawProvider::default();
        if let Some(v) = env(&format!("{prefix}BASE_URL")) {
            raw.providers
                .entry(provider.slug.clone())
                .or_insert_with(entry)
                .base_url = Some(v);
        }
        if let Some(v) = env(&format!("{prefix}API_KEY")) {
            raw.providers
                .entry(provider.slug.clone())
                .or_insert_with(entry)
                .api_key = Some(v);
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
            raw.providers
                .entry(provider.slug.clone())
                .or_insert_with(entry)
                .enabled = Some(enabled);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
