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
pub enum Protocol {
    /// OpenAI Chat Completions and everything that copies it.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google AI Studio (Gemini API).
    #[serde(rename = "gemini")]
    Gemini,
    /// Google Vertex AI.
    #[serde(rename = "vertex")]
    Vertex,
    /// AWS Bedrock Converse.
    #[serde(rename = "bedrock")]
    Bedrock,
    /// Azure OpenAI deployments.
    #[serde(rename = "azure")]
    Azure,
    /// Cohere v2 chat.
    #[serde(rename = "cohere")]
    Cohere,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
            Protocol::Vertex => "vertex",
            Protocol::Bedrock => "bedrock",
            Protocol::Azure => "azure",
            Protocol::Cohere => "cohere",
        }
    }
}

/// What a provider does with prompts, as far as it is published.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataPolicy {
    /// The provider may train on prompts.
    #[serde(default)]
    pub training: bool,
    /// The provider keeps prompts (e.g. for abuse monitoring).
    #[serde(default)]
    pub retains_prompts: bool,
    /// Days prompts are kept, when published.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Zero data retention.
    #[serde(default)]
    pub zdr: bool,
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
    #[serde(default)]
    pub privacy_policy_url: Option<String>,
    #[serde(default)]
    pub terms_of_service_url: Option<String>,
    #[serde(default)]
    pub status_page_url: Option<String>,
    /// ISO 3166 alpha-2.
    #[serde(default)]
    pub headquarters: Option<String>,
    #[serde(default)]
    pub datacenters: Vec<String>,
    #[serde(default)]
    pub data_policy: DataPolicy,
}

/// Prices of one endpoint, USD per unit (decimal strings on the wire, exact integers here).
/// Field names are OpenRouter's `PublicPricing`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    #[serde(default, with = "price_str")]
    pub prompt: Price,
    #[serde(default, with = "price_str")]
    pub completion: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub request: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub image: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub image_token: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub image_output: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub audio: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub audio_output: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub input_audio_cache: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub web_search: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub internal_reasoning: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub input_cache_read: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub input_cache_write: Price,
    #[serde(
        default,
        with = "price_str",
        skip_serializing_if = "price_str::is_zero"
    )]
    pub input_cache_write_1h: Price,
    /// Fraction taken off the total, 0..1.
    #[serde(default)]
    pub discount: f64,
}

impl Pricing {
    /// Every price field, for checks that must not miss one.
    pub fn all_prices_mut(&mut self) -> [&mut Price; 14] {
        [
            &mut self.prompt,
            &mut self.completion,
            &mut self.request,
            &mut self.image,
            &mut self.image_token,
            &mut self.image_output,
            &mut self.audio,
            &mut self.audio_output,
            &mut self.input_audio_cache,
            &mut self.web_search,
            &mut self.internal_reasoning,
            &mut self.input_cache_read,
            &mut self.input_cache_write,
            &mut self.input_cache_write_1h,
        ]
    }
}

/// One provider's offer of one model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The model id this endpoint serves.
    pub model: String,
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
    pub max_prompt_tokens: Option<u64>,
    #[serde(default)]
    pub quantization: Option<String>,
    pub pricing: Pricing,
    #[serde(default)]
    pub supported_parameters: Vec<String>,
    #[serde(default)]
    pub supports_implicit_caching: bool,
    /// OpenRouter's endpoint status: 0 normal, negative degraded.
    #[serde(default)]
    pub status: i32,
}

/// OpenRouter's `architecture` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    pub modality: Option<String>,
    pub input_modalities: Vec<String>,
    pub output_modalities: Vec<String>,
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub instruct_type: Option<String>,
}

/// A model as OpenRouter lists it; `endpoints` are attached when the catalog is built.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// `author/slug`.
    pub id: String,
    /// The dated permaslug.
    pub canonical_slug: String,
    pub name: String,
    /// Unix seconds.
    pub created: i64,
    #[serde(default)]
    pub description: String,
    pub context_length: u64,
    pub architecture: Architecture,
    #[serde(default)]
    pub hugging_face_id: Option<String>,
    #[serde(default)]
    pub default_parameters: Option<Value>,
    #[serde(default)]
    pub supported_voices: Option<Vec<String>>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub knowledge_cutoff: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub expiration_date: Option<String>,
    /// OpenRouter's `reasoning` object for reasoning models.
    #[serde(default)]
    pub reasoning: Option<Value>,
    #[serde(default)]
    pub is_moderated: bool,
    /// Served by these endpoints, best first (filled from the endpoints file).
    #[serde(skip)]
    pub endpoints: Vec<Endpoint>,
}

/// The whole catalog, validated and indexed.
#[derive(Debug, Clone)]
pub struct Catalog {
    version: String,
    providers: Vec<Provider>,
    models: Vec<Model>,
    aliases: HashMap<String, String>,
    by_id: HashMap<String, usize>,
    provider_by_slug: HashMap<String, usize>,
}

/// Why a catalog document was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{file} is not valid: {source}")]
    Json {
        file: &'static str,
        source: serde_json::Error,
    },
    #[error("duplicate {kind} `{id}`")]
    Duplicate { kind: &'static str, id: String },
    #[error("endpoint `{tag}` of model `{model}` names unknown provider `{provider}`")]
    UnknownProvider {
        model: String,
        tag: String,
        provider: String,
    },
    #[error("endpoint `{tag}` names unknown model `{model}`")]
    UnknownModel { model: String, tag: String },
    #[error("model `{0}` has no endpoints")]
    NoEndpoints(String),
    #[error("alias `{alias}` points to unknown model `{target}`")]
    BadAlias { alias: String, target: String },
    #[error("model `{model}`, endpoint `{tag}`: {reason}")]
    BadEndpoint {
        model: String,
        tag: String,
        reason: String,
    },
}

/// `catalog/providers.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersDoc {
    providers: Vec<Provider>,
}

/// `catalog/models.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsDoc {
    version: String,
    models: Vec<Model>,
    #[serde(default)]
    aliases: HashMap<String, String>,
}

/// `catalog/endpoints.json`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointsDoc {
    endpoints: Vec<Endpoint>,
}

/// The catalog bundled with the binary (`catalog/` in the repository, embedded at build time).
pub const BUNDLED: CatalogFiles<'static> = CatalogFiles {
    providers: include_str!("../../../catalog/providers.json"),
    models: include_str!("../../../catalog/models.json"),
    endpoints: include_str!("../../../catalog/endpoints.json"),
};

/// The three documents of a catalog, as text.
#[derive(Debug, Clone, Copy)]
pub struct CatalogFiles<'a> {
    pub providers: &'a str,
    pub models: &'a str,
    pub endpoints: &'a str,
}

impl Catalog {
    /// Reads and validates the three catalog documents.
    pub fn from_files(files: CatalogFiles<'_>) -> Result<Catalog, CatalogError> {
        let providers: ProvidersDoc =
            serde_json::from_str(files.providers).map_err(|source| CatalogError::Json {
                file: "providers.json",
                source,
            })?;
        let models: ModelsDoc =
            serde_json::from_str(files.models).map_err(|source| CatalogError::Json {
                file: "models.json",
                source,
            })?;
        let endpoints: EndpointsDoc =
            serde_json::from_str(files.endpoints).map_err(|source| CatalogError::Json {
                file: "endpoints.json",
                source,
            })?;
        Catalog::new(
            models.version,
            providers.providers,
            models.models,
            endpoints.endpoints,
            models.aliases,
        )
    }

    /// Builds a catalog from parts: attaches endpoints to models and checks integrity.
    pub fn new(
        version: String,
        providers: Vec<Provider>,
        mut models: Vec<Model>,
        endpoints: Vec<Endpoint>,
        aliases: HashMap<String, String>,
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
        for (i, m) in models.iter_mut().enumerate() {
            m.endpoints.clear();
            if by_id.insert(m.id.clone(), i).is_some() {
                return Err(CatalogError::Duplicate {
                    kind: "model",
                    id: m.id.clone(),
                });
            }
        }
        let mut seen_tags = std::collections::HashSet::new();
        for e in endpoints {
            let Some(&model_index) = by_id.get(&e.model) else {
                return Err(CatalogError::UnknownModel {
                    model: e.model.clone(),
                    tag: e.tag.clone(),
                });
            };
            check_endpoint(&e, &provider_by_slug)?;
            if !seen_tags.insert((e.model.clone(), e.tag.clone())) {
                return Err(CatalogError::Duplicate {
                    kind: "endpoint",
                    id: format!("{} {}", e.model, e.tag),
                });
            }
            models[model_index].endpoints.push(e);
        }
        if let Some(m) = models.iter().find(|m| m.endpoints.is_empty()) {
            return Err(CatalogError::NoEndpoints(m.id.clone()));
        }
        for (alias, target) in &aliases {
            if !by_id.contains_key(target) {
                return Err(CatalogError::BadAlias {
                    alias: alias.clone(),
                    target: target.clone(),
                });
            }
        }
        Ok(Catalog {
            version,
            providers,
            models,
            aliases,
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

    /// A model by exact id.
    pub fn model(&self, id: &str) -> Option<&Model> {
        self.by_id.get(id).map(|&i| &self.models[i])
    }

    /// The model an alias such as `~anthropic/claude-opus-latest` stands for.
    pub fn alias(&self, alias: &str) -> Option<&Model> {
        self.aliases
            .get(alias)
            .and_then(|target| self.model(target))
    }

    pub fn aliases(&self) -> &HashMap<String, String> {
        &self.aliases
    }

    pub fn provider(&self, slug: &str) -> Option<&Provider> {
        self.provider_by_slug.get(slug).map(|&i| &self.providers[i])
    }

    /// The same catalog restricted to endpoints for which `keep` holds; models left without
    /// endpoints, and aliases to them, are dropped. (A subset of a valid catalog is valid.)
    pub fn retain_endpoints(&self, keep: &dyn Fn(&Endpoint, &Provider) -> bool) -> Catalog {
        let mut models = Vec::with_capacity(self.models.len());
        for model in &self.models {
            let endpoints: Vec<Endpoint> = model
                .endpoints
                .iter()
                .filter(|e| self.provider(&e.provider).is_some_and(|p| keep(e, p)))
                .cloned()
                .collect();
            if !endpoints.is_empty() {
                models.push(Model {
                    endpoints,
                    ..model.clone()
                });
            }
        }
        let by_id: HashMap<String, usize> = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        let aliases = self
            .aliases
            .iter()
            .filter(|(_, target)| by_id.contains_key(*target))
            .map(|(a, t)| (a.clone(), t.clone()))
            .collect();
        Catalog {
            version: self.version.clone(),
            providers: self.providers.clone(),
            models,
            aliases,
            by_id,
            provider_by_slug: self.provider_by_slug.clone(),
        }
    }

    /// Decomposes the catalog (for operator overrides, which rebuild it with [`Catalog::new`]).
    pub fn into_parts(self) -> CatalogParts {
        let mut endpoints = Vec::new();
        let mut models = self.models;
        for m in &mut models {
            endpoints.append(&mut m.endpoints);
        }
        CatalogParts {
            version: self.version,
            providers: self.providers,
            models,
            endpoints,
            aliases: self.aliases,
        }
    }
}

/// A catalog taken apart, to be changed and rebuilt.
#[derive(Debug, Clone)]
pub struct CatalogParts {
    pub version: String,
    pub providers: Vec<Provider>,
    pub models: Vec<Model>,
    pub endpoints: Vec<Endpoint>,
    pub aliases: HashMap<String, String>,
}

impl CatalogParts {
    /// Removes models that have no endpoint left, and aliases pointing to removed models.
    pub fn drop_models_without_endpoints(&mut self) {
        let served: std::collections::HashSet<&str> =
            self.endpoints.iter().map(|e| e.model.as_str()).collect();
        self.models.retain(|m| served.contains(m.id.as_str()));
        let kept: std::collections::HashSet<&str> =
            self.models.iter().map(|m| m.id.as_str()).collect();
        self.aliases
            .retain(|_, target| kept.contains(target.as_str()));
    }

    pub fn build(self) -> Result<Catalog, CatalogError> {
        Catalog::new(
            self.version,
            self.providers,
            self.models,
            self.endpoints,
            self.aliases,
        )
    }
}

fn check_endpoint(e: &Endpoint, providers: &HashMap<String, usize>) -> Result<(), CatalogError> {
    if !providers.contains_key(&e.provider) {
        return Err(CatalogError::UnknownProvider {
            model: e.model.clone(),
            tag: e.tag.clone(),
            provider: e.provider.clone(),
        });
    }
    let bad = |reason: &str| CatalogError::BadEndpoint {
        model: e.model.clone(),
        tag: e.tag.clone(),
        reason: reason.to_owned(),
    };
    if e.tag != e.provider && !e.tag.starts_with(&format!("{}/", e.provider)) {
        return Err(bad(
            "tag must be the provider slug or start with `provider/`",
        ));
    }
    if e.upstream_model.is_empty() {
        return Err(bad("upstream_model must not be empty"));
    }
    if !(0.0..=1.0).contains(&e.pricing.discount) {
        return Err(bad("discount must be between 0 and 1"));
    }
    let mut pricing = e.pricing.clone();
    if pricing.all_prices_mut().iter().any(|p| p.picos() < 0) {
        return Err(bad("prices must not be negative"));
    }
    Ok(())
}

/// Serde helpers for prices as OpenRouter's decimal strings (numbers are accepted on input too).
mod price_str {
    use super::{DecimalError, Price};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn is_zero(price: &Price) -> bool {
        price.is_zero()
    }

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
