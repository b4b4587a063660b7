//! The discovery API's data: OpenRouter's `Model`, `PublicEndpoint` and `Provider` objects rendered
//! from the catalog, and the `/models` query (filters, sorts, paging).
//!
//! Pure: the server parses the query string into [`ModelQuery`] and serves what these functions return.

use crate::catalog::{Catalog, Endpoint, Model, Provider};
use crate::error::ApiError;
use crate::health::LiveStats;
use crate::money::Price;
use serde_json::{json, Map, Value};

/// OpenRouter's `Model` object. Model-level pricing and limits are those of the first (preferred) endpoint.
pub fn model_json(model: &Model) -> Value {
    let top = model.endpoints.first();
    let mut supported: Vec<&str> = Vec::new();
    for e in &model.endpoints {
        for p in &e.supported_parameters {
            if !supported.contains(&p.as_str()) {
                supported.push(p);
            }
        }
    }
    supported.sort_unstable();
    let pricing = top.map_or_else(|| json!({"prompt": "0", "completion": "0"}), pricing_json);
    let mut obj = Map::new();
    obj.insert("id".into(), json!(model.id));
    obj.insert("canonical_slug".into(), json!(model.canonical_slug));
    obj.insert("hugging_face_id".into(), json!(model.hugging_face_id));
    obj.insert("name".into(), json!(model.name));
    obj.insert("created".into(), json!(model.created));
    obj.insert("description".into(), json!(model.description));
    obj.insert("context_length".into(), json!(model.context_length));
    obj.insert("architecture".into(), architecture_json(model));
    obj.insert("pricing".into(), pricing);
    obj.insert(
        "top_provider".into(),
        json!({
            "context_length": top.map(|e| e.context_length),
            "max_completion_tokens": top.and_then(|e| e.max_completion_tokens),
            "is_moderated": model.is_moderated,
        }),
    );
    obj.insert("per_request_limits".into(), Value::Null);
    obj.insert("supported_parameters".into(), json!(supported));
    obj.insert(
        "default_parameters".into(),
        model.default_parameters.clone().unwrap_or(Value::Null),
    );
    obj.insert("supported_voices".into(), json!(model.supported_voices));
    obj.insert("knowledge_cutoff".into(), json!(model.knowledge_cutoff));
    obj.insert("expiration_date".into(), json!(model.expiration_date));
    obj.insert(
        "links".into(),
        json!({"details": format!("/api/v1/models/{}/endpoints", model.canonical_slug)}),
    );
    if let Some(reasoning) = &model.reasoning {
        obj.insert("reasoning".into(), reasoning.clone());
    }
    Value::Object(obj)
}

fn architecture_json(model: &Model) -> Value {
    let a = &model.architecture;
    json!({
        "modality": a.modality,
        "input_modalities": a.input_modalities,
        "output_modalities": a.output_modalities,
        // OpenRouter's schema has a closed list of tokenizers; "Other" is its value for unknown.
        "tokenizer": a.tokenizer.as_deref().unwrap_or("Other"),
        "instruct_type": a.instruct_type,
    })
}

/// OpenRouter's `PublicPricing`: decimal strings, zero prices omitted except prompt and completion.
pub fn pricing_json(endpoint: &Endpoint) -> Value {
    let mut value = serde_json::to_value(&endpoint.pricing).unwrap_or_else(|_| json!({}));
    if let Some(obj) = value.as_object_mut() {
        if endpoint.pricing.discount == 0.0 {
            obj.remove("discount");
        }
    }
    value
}

/// OpenRouter's `PublicEndpoint`. Live statistics are `null` until this gateway measures them.
pub fn endpoint_json(model: &Model, endpoint: &Endpoint, provider: &Provider) -> Value {
    endpoint_json_live(model, endpoint, provider, &LiveStats::default())
}

/// [`endpoint_json`] with what the gateway measured: uptime in percent, time to first token in
/// milliseconds and throughput in tokens per second.
pub fn endpoint_json_live(
    model: &Model,
    endpoint: &Endpoint,
    provider: &Provider,
    live: &LiveStats,
) -> Value {
    json!({
        "name": format!("{} | {}", provider.name, model.canonical_slug),
        "model_id": model.id,
        "model_name": model.name,
        "context_length": endpoint.context_length,
        "pricing": pricing_json(endpoint),
        "provider_name": provider.name,
        "tag": endpoint.tag,
        "quantization": endpoint.quantization,
        "max_completion_tokens": endpoint.max_completion_tokens,
        "max_prompt_tokens": endpoint.max_prompt_tokens,
        "supported_parameters": endpoint.supported_parameters,
        "status": endpoint.status,
        "uptime_last_30m": live.uptime_30m,
        "uptime_last_5m": live.uptime_5m,
        "uptime_last_1d": live.uptime_1d,
        "supports_implicit_caching": endpoint.supports_implicit_caching,
        "latency_last_30m": live.latency_30m,
        "throughput_last_30m": live.throughput_30m,
        // Required by the official SDKs though not by the OpenAPI document.
        "service_tier": null,
        "native_tools": {},
        "supports_diarization": false,
        "supports_tool_choice": tool_choice_support(endpoint),
    })
}

/// Which `tool_choice` values an endpoint accepts, from its supported parameters.
fn tool_choice_support(endpoint: &Endpoint) -> Value {
    let has = |p: &str| endpoint.supported_parameters.iter().any(|s| s == p);
    let tools = has("tools");
    let choice = tools && has("tool_choice");
    json!({"auto": tools, "none": tools, "required": choice, "function": choice})
}

/// The `data` of `/models/{author}/{slug}/endpoints`.
pub fn endpoints_json(catalog: &Catalog, model: &Model) -> Value {
    endpoints_json_live(catalog, model, &|_| LiveStats::default())
}

/// [`endpoints_json`] with each endpoint's live statistics.
pub fn endpoints_json_live(
    catalog: &Catalog,
    model: &Model,
    live: &dyn Fn(&Endpoint) -> LiveStats,
) -> Value {
    let endpoints: Vec<Value> = model
        .endpoints
        .iter()
        .filter_map(|e| {
            catalog
                .provider(&e.provider)
                .map(|p| endpoint_json_live(model, e, p, &live(e)))
        })
        .collect();
    json!({
        "id": model.id,
        "name": model.name,
        "created": model.created,
        "description": model.description,
        "architecture": architecture_json(model),
        "endpoints": endpoints,
    })
}

/// OpenRouter's provider directory entry.
pub fn provider_json(provider: &Provider) -> Value {
    json!({
        "name": provider.name,
        "slug": provider.slug,
        "privacy_policy_url": provider.privacy_policy_url,
        "terms_of_service_url": provider.terms_of_service_url,
        "status_page_url": provider.status_page_url,
        "headquarters": provider.headquarters,
        "datacenters": provider.datacenters,
    })
}

/// Finds a model the way `/model/{author}/{slug}` does: exact id, canonical slug, `~` alias, or the
/// id without a `:variant` suffix.
pub fn find_model<'c>(catalog: &'c Catalog, id: &str) -> Option<&'c Model> {
    if let Some(m) = catalog.model(id).or_else(|| catalog.alias(id)) {
        return Some(m);
    }
    if let Some(m) = catalog.models().iter().find(|m| m.canonical_slug == id) {
        return Some(m);
    }
    let (base, _variant) = id.rsplit_once(':')?;
    catalog.model(base).or_else(|| catalog.alias(base))
}

/// How `/models` orders its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Catalog order (newest first).
    #[default]
    Default,
    Newest,
    PriceLowToHigh,
    PriceHighToLow,
    ContextHighToLow,
}

/// The `/models` query, parsed.
#[derive(Debug, Clone, Default)]
pub struct ModelQuery {
    pub offset: usize,
    pub limit: Option<usize>,
    pub supported_parameters: Vec<String>,
    pub input_modalities: Vec<String>,
    /// `None` = `all`; default `["text"]`.
    pub output_modalities: Option<Vec<String>>,
    pub q: Option<String>,
    pub sort: Sort,
    pub providers: Vec<String>,
    pub model_authors: Vec<String>,
    pub zdr: bool,
    pub min_context: Option<u64>,
    /// Prompt price bounds, USD per million tokens.
    pub min_price: Option<Price>,
    pub max_price: Option<Price>,
    /// Completion price bounds, USD per million tokens.
    pub min_output_price: Option<Price>,
    pub max_output_price: Option<Price>,
    /// Every parameter but `offset` and `limit`, as given, for `links.next`.
    pub filters: Vec<(String, String)>,
}

/// The most models one page may hold.
pub const MAX_LIMIT: usize = 1000;

impl ModelQuery {
    /// Parses query pairs; unknown parameters are ignored as OpenRouter does, bad values are 400s.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ModelQuery, ApiError> {
        let mut q = ModelQuery {
            output_modalities: Some(vec!["text".to_owned()]),
            ..ModelQuery::default()
        };
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_lowercase)
                .collect()
        };
        let number = |name: &str, v: &str| -> Result<u64, ApiError> {
            v.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::invalid(format!("`{name}` must be a non-negative integer")))
        };
        let price = |name: &str, v: &str| -> Result<Price, ApiError> {
            Price::parse_usd_per_million(v).map_err(|_| {
                ApiError::invalid(format!(
                    "`{name}` must be a non-negative number (USD per million tokens)"
                ))
            })
        };
        for (key, value) in pairs {
            if key != "offset" && key != "limit" {
                q.filters.push((key.to_owned(), value.to_owned()));
            }
            match key {
                "offset" => q.offset = number(key, value)? as usize,
                "limit" => {
                    let limit = number(key, value)? as usize;
                    if limit == 0 || limit > MAX_LIMIT {
                        return Err(ApiError::invalid(format!(
                            "`limit` must be between 1 and {MAX_LIMIT}"
                        )));
                    }
                    q.limit = Some(limit);
                }
                "supported_parameters" => q.supported_parameters = list(value),
                "input_modalities" => q.input_modalities = list(value),
                "output_modalities" => {
                    let wanted = list(value);
                    q.output_modalities = if wanted.iter().any(|m| m == "all") {
                        None
                    } else {
                        Some(wanted)
                    };
                }
                "q" => q.q = Some(value.trim().to_lowercase()).filter(|s| !s.is_empty()),
                "sort" => {
                    q.sort = match value {
                        "newest" => Sort::Newest,
                        "pricing-low-to-high" => Sort::PriceLowToHigh,
                        "pricing-high-to-low" => Sort::PriceHighToLow,
                        "context-high-to-low" => Sort::ContextHighToLow,
                        // Popularity, throughput, latency and benchmark sorts need data this
                        // gateway does not have yet: they keep the default order.
                        _ => Sort::Default,
                    }
                }
                "providers" => q.providers = list(value),
                "model_authors" => q.model_authors = list(value),
                "zdr" => q.zdr = value == "true",
                "context" => q.min_context = Some(number(key, value)?),
                "min_price" => q.min_price = Some(price(key, value)?),
                "max_price" => q.max_price = Some(price(key, value)?),
                "min_output_price" => q.min_output_price = Some(price(key, value)?),
                "max_output_price" => q.max_output_price = Some(price(key, value)?),
                _ => {}
            }
        }
        Ok(q)
    }

    /// Whether `model` passes every filter.
    pub fn matches(&self, catalog: &Catalog, model: &Model) -> bool {
        let arch = &model.architecture;
        let Some(top) = model.endpoints.first() else {
            return false;
        };
        if let Some(out) = &self.output_modalities {
            if !out
                .iter()
                .any(|m| arch.output_modalities.iter().any(|o| o == m))
            {
                return false;
            }
        }
        if !self
            .input_modalities
            .iter()
            .all(|m| arch.input_modalities.iter().any(|i| i == m))
        {
            return false;
        }
        if !self.supported_parameters.iter().all(|p| {
            model
                .endpoints
                .iter()
                .any(|e| e.supported_parameters.iter().any(|s| s == p))
        }) {
            return false;
        }
        if let Some(q) = &self.q {
            if !model.id.to_lowercase().contains(q) && !model.name.to_lowercase().contains(q) {
                return false;
            }
        }
        if !self.providers.is_empty()
            && !model
                .endpoints
                .iter()
                .any(|e| self.providers.contains(&e.provider))
        {
            return false;
        }
        if !self.model_authors.is_empty() {
            let author = model.id.split('/').next().unwrap_or("");
            if !self.model_authors.iter().any(|a| a == author) {
                return false;
            }
        }
        if self.zdr
            && !model.endpoints.iter().any(|e| {
                catalog
                    .provider(&e.provider)
                    .is_some_and(|p| p.data_policy.zdr)
            })
        {
            return false;
        }
        if self.min_context.is_some_and(|c| model.context_length < c) {
            return false;
        }
        // Bounds arrive per million tokens and are parsed into per-token prices, like the catalog's.
        let in_bounds = |p: Price, min: Option<Price>, max: Option<Price>| {
            min.is_none_or(|m| p >= m) && max.is_none_or(|m| p <= m)
        };
        in_bounds(top.pricing.prompt, self.min_price, self.max_price)
            && in_bounds(
                top.pricing.completion,
                self.min_output_price,
                self.max_output_price,
            )
    }

    /// Indices (into `catalog.models()`) of the matching models, sorted; paging is applied by [`page`].
    pub fn select(&self, catalog: &Catalog) -> Vec<usize> {
        let models = catalog.models();
        let mut selected: Vec<usize> = (0..models.len())
            .filter(|&i| self.matches(catalog, &models[i]))
            .collect();
        // OpenRouter sorts by the mean of prompt and completion prices; the sum orders the same.
        let prompt = |i: &usize| {
            models[*i].endpoints.first().map_or(0, |e| {
                e.pricing.prompt.picos() as i128 + e.pricing.completion.picos() as i128
            })
        };
        match self.sort {
            Sort::Default => {}
            Sort::Newest => selected.sort_by_key(|i| std::cmp::Reverse(models[*i].created)),
            Sort::PriceLowToHigh => selected.sort_by_key(prompt),
            Sort::PriceHighToLow => selected.sort_by_key(|i| std::cmp::Reverse(prompt(i))),
            Sort::ContextHighToLow => {
                selected.sort_by_key(|i| std::cmp::Reverse(models[*i].context_length))
            }
        }
        selected
    }
}

/// One page of a list response: `{"data", "links": {"next"}, "total_count"}`.
pub fn page(path: &str, query: &ModelQuery, items: Vec<Value>) -> Value {
    let total = items.len();
    let start = query.offset.min(total);
    let end = query.limit.map_or(total, |l| (start + l).min(total));
    let next = match query.limit {
        Some(limit) if end < total => {
            let mut link = format!("{path}?offset={end}&limit={limit}");
            for (key, value) in &query.filters {
                link.push('&');
                percent_encode(key, &mut link);
                link.push('=');
                percent_encode(value, &mut link);
            }
            Value::String(link)
        }
        _ => Value::Null,
    };
    let data: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
    json!({"data": data, "links": {"next": next}, "total_count": total})
}

/// Percent-encodes a query component (RFC 3986 unreserved characters and `,` kept).
fn percent_encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

#[cfg(test)]
mod tests;
