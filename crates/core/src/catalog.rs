//! The model catalog: providers, models and their provider endpoints with prices.
//!
//! The catalog is data (`catalog/catalog.json`, embedded by the binary); this module reads and
//! validates it and answers look-ups. It never knows whether a provider is enabled: that is runtime
//! configuration, passed in by the caller.

use crate::money::{DecimalError, Price};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;

/// The wire protocol an upstream speaks. A closed set: adding one is a checklist in ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenAI Chat Completions and everything that copies it.
    #[serde(rename = "openai")]
    OpenAi,
}

/// A provider: who runs the endpoints, how to reach them by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Routing slug, e.g. `deepinfra`.
    pub slug: String,
    /// Display name, e.g. `DeepInfra` (the `provider` field of responses).
    pub name: String,
    pub protocol: Protocol,
    /// Base URL that the protocol's paths are appended to.
    pub base_url: String,
    /// Environment variable whose presence enables the provider by default.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

/// Prices of one endpoint, USD per unit (decimal strings on the wire, exact integers here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    #[serde(default, with = "price_str")]
    pub prompt: Price,
    #[serde(default, with = "price_str")]
    pub completion: Price,
    #[serde(default, with = "price_str")]
    pub request: Price,
    #[serde(default, with = "price_str")]
    pub image: Price,
    #[serde(default, with = "price_str")]
    pub web_search: Price,
    #[serde(default, with = "price_str")]
    pub internal_reasoning: Price,
    #[serde(default, with = "price_str")]
    pub input_cache_read: Price,
    #[serde(default, with = "price_str")]
    pub input_cache_write: Price,
    /// Fraction taken off the total, 0..1.
    #[serde(default)]
    pub discount: f64,
}

/// One provider's offer of one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Provider slug.
    pub provider: String,
    /// Routing tag: the provider slug, or `slug/variant` (e.g. `deepinfra/turbo`).
    pub tag: String,
    /// The model name the upstream expects.
    pub upstream_model: String,
    pub context_length: u64,
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub quantization: Option<String>,
    pub pricing: Pricing,
    #[serde(default)]
    pub supported_parameters: Vec<String>,
}

/// A model as OpenRouter lists it, plus its endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// `author/slug`.
    pub id: String,
    /// The dated permaslug.
    pub canonical_slug: String,
    pub name: String,
    pub created: i64,
    #[serde(default)]
    pub description: String,
    pub context_length: u64,
    /// OpenRouter's `architecture` object, kept as data.
    pub architecture: Value,
    #[serde(default)]
    pub hugging_face_id: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

/// The whole catalog, validated and indexed.
#[derive(Debug, Clone)]
pub struct Catalog {
    version: String,
    providers: Vec<Provider>,
    models: Vec<Model>,
    by_id: HashMap<String, usize>,
    provider_by_slug: HashMap<String, usize>,
}

/// Why a catalog document was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("duplicate {kind} `{id}`")]
    Duplicate { kind: &'static str, id: String },
    #[error("model `{model}` has an endpoint of unknown provider `{provider}`")]
    UnknownProvider { model: String, provider: String },
    #[error("model `{0}` has no endpoints")]
    NoEndpoints(String),
    #[error("model `{model}`, endpoint `{tag}`: {reason}")]
    BadEndpoint {
        model: String,
        tag: String,
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogDoc {
    version: String,
    providers: Vec<Provider>,
    models: Vec<Model>,
}

impl Catalog {
    /// Reads and validates a catalog document.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let doc: CatalogDoc = serde_json::from_str(text)?;
        Catalog::new(doc.version, doc.providers, doc.models)
    }

    pub fn new(
        version: String,
        providers: Vec<Provider>,
        models: Vec<Model>,
    ) -> Result<Catalog, CatalogError> {
        let mut provider_by_slug = HashMap::new();
        for (i, p) in providers.iter().enumerate() {
            if provider_by_slug.insert(p.slug.clone(), i).is_some() {
                return Err(CatalogError::Duplicate {
                    kind: "provider",
                    id: p.slug.clone(),
                });
            }
        }
        let mut by_id = HashMap::new();
        for (i, m) in models.iter().enumerate() {
            if by_id.insert(m.id.clone(), i).is_some() {
                return Err(CatalogError::Duplicate {
                    kind: "model",
                    id: m.id.clone(),
                });
            }
            if m.endpoints.is_empty() {
                return Err(CatalogError::NoEndpoints(m.id.clone()));
            }
            for e in &m.endpoints {
                if !provider_by_slug.contains_key(&e.provider) {
                    return Err(CatalogError::UnknownProvider {
                        model: m.id.clone(),
                        provider: e.provider.clone(),
                    });
                }
                let bad = |reason: &str| CatalogError::BadEndpoint {
                    model: m.id.clone(),
                    tag: e.tag.clone(),
                    reason: reason.to_owned(),
                };
                if e.tag != e.provider && !e.tag.starts_with(&format!("{}/", e.provider)) {
                    return Err(bad(
                        "tag must be the provider slug or start with `provider/`",
                    ));
                }
                if !(0.0..=1.0).contains(&e.pricing.discount) {
                    return Err(bad("discount must be between 0 and 1"));
                }
            }
        }
        Ok(Catalog {
            version,
            providers,
            models,
            by_id,
            provider_by_slug,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    pub fn model(&self, id: &str) -> Option<&Model> {
        self.by_id.get(id).map(|&i| &self.models[i])
    }

    pub fn provider(&self, slug: &str) -> Option<&Provider> {
        self.provider_by_slug.get(slug).map(|&i| &self.providers[i])
    }
}

/// Serde helpers for prices as OpenRouter's decimal strings (numbers are accepted on input too).
mod price_str {
    use super::{DecimalError, Price};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(price: &Price, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(price)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let parsed: Result<Price, DecimalError> = match &value {
            serde_json::Value::String(s) => Price::parse_usd(s),
            serde_json::Value::Number(n) => Price::parse_usd(&n.to_string()),
            _ => return Err(D::Error::custom("a price must be a decimal string")),
        };
        parsed.map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests;
