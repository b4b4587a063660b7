//! Routing: the ordered list of (model, endpoint) candidates for a request.
//!
//! Pure and seedable: the caller passes the request's provider preferences, the parameters it
//! sent, which providers are enabled, and a seed for the default load balancing. The rules are
//! OpenRouter's: `only`/`ignore`/`order`/`allow_fallbacks`, hard filters (`require_parameters`,
//! `data_collection`, `zdr`, `quantizations`, `max_price`), soft filters (`tools`,
//! `response_format`), `sort` with `partition`, model variants (`:nitro`, `:floor`, …), and by
//! default a random first pick weighted by the inverse square of price, the rest by price.

use crate::catalog::{Catalog, Endpoint, Model, Provider};
use crate::error::{ApiError, ErrorCode};
use crate::money::Price;
use serde_json::{json, Value};

/// One endpoint that may serve the request.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'c> {
    pub model: &'c Model,
    pub endpoint: &'c Endpoint,
    pub provider: &'c Provider,
}

/// What to sort endpoints by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Price,
    Throughput,
    Latency,
}

/// Upper bounds on an endpoint's prices (per token, parsed from USD per million).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaxPrice {
    pub prompt: Option<Price>,
    pub completion: Option<Price>,
    pub request: Option<Price>,
    pub image: Option<Price>,
}

/// The request's `provider` object (and the deprecated `route`), parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPrefs {
    pub order: Vec<String>,
    pub only: Vec<String>,
    pub ignore: Vec<String>,
    pub allow_fallbacks: bool,
    pub require_parameters: bool,
    /// `data_collection: "deny"`: skip providers that may train on prompts.
    pub deny_data_collection: bool,
    pub zdr: bool,
    pub quantizations: Vec<String>,
    pub max_price: MaxPrice,
    pub sort: Option<SortBy>,
    /// `partition: "none"`: sort endpoints of all models together instead of model by model.
    pub partition_none: bool,
}

impl Default for ProviderPrefs {
    fn default() -> ProviderPrefs {
        ProviderPrefs {
            order: Vec::new(),
            only: Vec::new(),
            ignore: Vec::new(),
            allow_fallbacks: true,
            require_parameters: false,
            deny_data_collection: false,
            zdr: false,
            quantizations: Vec::new(),
            max_price: MaxPrice::default(),
            sort: None,
            partition_none: false,
        }
    }
}

impl ProviderPrefs {
    /// Parses `provider` and the deprecated `route` of a request body; bad values are 400s.
    pub fn parse(
        provider: Option<&Value>,
        route: Option<&Value>,
    ) -> Result<ProviderPrefs, ApiError> {
        let mut prefs = ProviderPrefs::default();
        match route.and_then(Value::as_str) {
            Some("sort") => prefs.partition_none = true,
            Some("fallback") | None => {}
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "`route` must be \"fallback\" or \"sort\", not \"{other}\""
                )))
            }
        }
        let Some(provider) = provider.filter(|p| !p.is_null()) else {
            return Ok(prefs);
        };
        let Some(obj) = provider.as_object() else {
            return Err(ApiError::invalid("`provider` must be an object"));
        };
        let strings = |field: &str| -> Result<Vec<String>, ApiError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(|s| s.trim().to_lowercase()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        ApiError::invalid(format!("`provider.{field}` must be an array of strings"))
                    }),
                Some(_) => Err(ApiError::invalid(format!(
                    "`provider.{field}` must be an array of strings"
                ))),
            }
        };
        let boolean = |field: &str, default: bool| -> Result<bool, ApiError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(ApiError::invalid(format!(
                    "`provider.{field}` must be a boolean"
                ))),
            }
        };
        prefs.order = strings("order")?;
        prefs.only = strings("only")?;
        prefs.ignore = strings("ignore")?;
        prefs.quantizations = strings("quantizations")?;
        prefs.allow_fallbacks = boolean("allow_fallbacks", true)?;
        prefs.require_parameters = boolean("require_parameters", false)?;
        prefs.zdr = boolean("zdr", false)?;
        prefs.deny_data_collection = match obj.get("data_collection") {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) if s == "allow" => false,
            Some(Value::String(s)) if s == "deny" => true,
            Some(_) => {
                return Err(ApiError::invalid(
                    "`provider.data_collection` must be \"allow\" or \"deny\"",
                ))
            }
        };
        let sort_name = |v: &Value| -> Result<Option<SortBy>, ApiError> {
            match v.as_str() {
                Some("price") => Ok(Some(SortBy::Price)),
                Some("throughput") => Ok(Some(SortBy::Throughput)),
                Some("latency") => Ok(Some(SortBy::Latency)),
                // Quality-first sorting needs benchmark data this gateway does not have yet.
                Some("exacto") => Ok(None),
                _ => Err(ApiError::invalid("`provider.sort` must be \"price\", \"throughput\", \"latency\" or an object {by, partition}")),
            }
        };
        match obj.get("sort") {
            None | Some(Value::Null) => {}
            Some(Value::Object(sort)) => {
                prefs.sort = match sort.get("by") {
                    Some(by) => sort_name(by)?,
                    None => None,
                };
                match sort.get("partition").and_then(Value::as_str) {
                    Some("none") => prefs.partition_none = true,
                    Some("model") => prefs.partition_none = false,
                    None => {}
                    Some(_) => {
                        return Err(ApiError::invalid(
                            "`provider.sort.partition` must be \"model\" or \"none\"",
                        ))
                    }
                }
            }
            Some(other) => prefs.sort = sort_name(other)?,
        }
        if let Some(max) = obj.get("max_price").filter(|v| !v.is_null()) {
            let Some(max) = max.as_object() else {
                return Err(ApiError::invalid(
                    "`provider.max_price` must be an object of USD per million tokens",
                ));
            };
            let price = |field: &str| -> Result<Option<Price>, ApiError> {
                match max.get(field) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => Price::parse_usd_per_million(&n.to_string())
                        .map(Some)
                        .map_err(|_| {
                            ApiError::invalid(format!(
                                "`provider.max_price.{field}` must be a non-negative number"
                            ))
                        }),
                    Some(_) => Err(ApiError::invalid(format!(
                        "`provider.max_price.{field}` must be a number"
                    ))),
                }
            };
            prefs.max_price = MaxPrice {
                prompt: price("prompt")?,
                completion: price("completion")?,
                // Per request and per image, the bound is in USD per unit, not per million.
                request: price("request")?
                    .map(|p| Price::from_picos(p.picos().saturating_mul(1_000_000))),
                image: price("image")?
                    .map(|p| Price::from_picos(p.picos().saturating_mul(1_000_000))),
            };
        }
        Ok(prefs)
    }
}

/// What the routing decision needs to know about the request.
#[derive(Debug, Clone)]
pub struct RouteRequest<'a> {
    /// Models in the order to try (`model`, then `models`).
    pub models: &'a [String],
    pub prefs: &'a ProviderPrefs,
    /// Names of the request's parameters (body keys), for `require_parameters` and soft filters.
    pub params: &'a [String],
    /// Seed of the default load balancing (random per request in production).
    pub seed: u64,
}

/// Parameters that restrict endpoints even without `require_parameters`.
const SOFT_FILTERS: &[&str] = &["tools", "response_format"];

/// Request keys that are not model parameters, so never endpoint requirements.
const NOT_PARAMETERS: &[&str] = &[
    "model",
    "models",
    "messages",
    "stream",
    "stream_options",
    "provider",
    "plugins",
    "transforms",
    "route",
    "usage",
    "user",
    "session_id",
    "metadata",
    "trace",
    "debug",
    "preset",
    "prompt",
];

/// Resolves a requested model id: exact match first, then without a `:variant` suffix.
pub fn resolve_model<'c>(catalog: &'c Catalog, requested: &str) -> Option<&'c Model> {
    catalog.model(requested).or_else(|| {
        let (base, _variant) = requested.rsplit_once(':')?;
        catalog.model(base)
    })
}

/// The variant suffix of a requested id, when the id itself is not a catalog model.
fn variant<'r>(catalog: &Catalog, requested: &'r str) -> Option<&'r str> {
    if catalog.model(requested).is_some() {
        return None;
    }
    requested.rsplit_once(':').map(|(_, v)| v)
}

/// The ordered candidates for a request, or the reference's availability errors.
pub fn plan<'c>(
    catalog: &'c Catalog,
    request: &RouteRequest<'_>,
    enabled: &dyn Fn(&Provider) -> bool,
) -> Result<Vec<Candidate<'c>>, ApiError> {
    let prefs = request.prefs;
    let mut groups: Vec<Vec<Candidate<'c>>> = Vec::new();
    let mut excluded: Vec<&'static str> = Vec::new();
    let mut any_sort = prefs.sort;
    for requested in request.models {
        let Some(model) = resolve_model(catalog, requested) else {
            return Err(ApiError::model_not_found(requested));
        };
        let sort = match variant(catalog, requested) {
            Some("nitro") => Some(SortBy::Throughput),
            Some("floor") => Some(SortBy::Price),
            _ => prefs.sort,
        };
        any_sort = any_sort.or(sort);
        let mut group: Vec<Candidate<'c>> = Vec::new();
        for endpoint in &model.endpoints {
            let Some(provider) = catalog.provider(&endpoint.provider) else {
                continue;
            };
            if !enabled(provider) {
                continue;
            }
            match exclusion(prefs, request.params, provider, endpoint) {
                Some(reason) => {
                    if !excluded.contains(&reason) {
                        excluded.push(reason);
                    }
                }
                None => group.push(Candidate {
                    model,
                    endpoint,
                    provider,
                }),
            }
        }
        soft_filter(&mut group, request.params);
        order_group(&mut group, prefs, sort, request.seed);
        groups.push(group);
    }
    let mut out: Vec<Candidate<'c>> = if prefs.partition_none && any_sort.is_some() {
        let mut all: Vec<Candidate<'c>> = groups.into_iter().flatten().collect();
        sort_by(&mut all, any_sort.unwrap_or(SortBy::Price));
        all
    } else {
        groups.into_iter().flatten().collect()
    };
    if !prefs.order.is_empty() {
        // Providers named in `order` first, in that order; the others after them, or not at all.
        let rank = |c: &Candidate| {
            prefs
                .order
                .iter()
                .position(|o| matches(o, c.provider, c.endpoint))
        };
        out.sort_by_key(|c| rank(c).unwrap_or(usize::MAX));
        if !prefs.allow_fallbacks {
            out.retain(|c| rank(c).is_some());
        }
    }
    if out.is_empty() {
        return Err(unavailable(request.models, &excluded));
    }
    Ok(out)
}

/// Why an endpoint may not serve this request, if it may not.
fn exclusion(
    prefs: &ProviderPrefs,
    params: &[String],
    provider: &Provider,
    endpoint: &Endpoint,
) -> Option<&'static str> {
    if !prefs.only.is_empty() && !prefs.only.iter().any(|o| matches(o, provider, endpoint)) {
        return Some("allowed_providers");
    }
    if prefs.ignore.iter().any(|i| matches(i, provider, endpoint)) {
        return Some("allowed_providers");
    }
    if prefs.zdr && !provider.data_policy.zdr {
        return Some("data_policy:zdr");
    }
    if prefs.deny_data_collection && provider.data_policy.training {
        return Some("data_policy:training");
    }
    if !prefs.quantizations.is_empty() {
        let q = endpoint
            .quantization
            .as_deref()
            .unwrap_or("unknown")
            .to_lowercase();
        if !prefs.quantizations.contains(&q) {
            return Some("quantization");
        }
    }
    let over = |bound: Option<Price>, price: Price| bound.is_some_and(|b| price > b);
    let p = &endpoint.pricing;
    let m = &prefs.max_price;
    if over(m.prompt, p.prompt)
        || over(m.completion, p.completion)
        || over(m.request, p.request)
        || over(m.image, p.image)
    {
        return Some("max_price");
    }
    if prefs.require_parameters {
        let missing = params
            .iter()
            .filter(|p| !NOT_PARAMETERS.contains(&p.as_str()))
            .any(|p| !endpoint.supported_parameters.iter().any(|s| s == p));
        if missing {
            return Some("require_parameters");
        }
    }
    None
}

/// `tools` and `response_format` drop endpoints that lack them, unless no endpoint has them.
fn soft_filter(group: &mut Vec<Candidate>, params: &[String]) {
    for soft in SOFT_FILTERS {
        if !params.iter().any(|p| p == soft) {
            continue;
        }
        let supports = |c: &Candidate| c.endpoint.supported_parameters.iter().any(|s| s == soft);
        if group.iter().any(supports) {
            group.retain(supports);
        }
    }
}

/// Whether a preference entry names this endpoint: its provider slug, its tag, or its display name.
fn matches(entry: &str, provider: &Provider, endpoint: &Endpoint) -> bool {
    entry == provider.slug
        || entry == endpoint.tag.to_lowercase()
        || entry == provider.name.to_lowercase()
}

fn price_key(c: &Candidate) -> i128 {
    c.endpoint.pricing.prompt.picos() as i128 + c.endpoint.pricing.completion.picos() as i128
}

fn sort_by(group: &mut [Candidate], by: SortBy) {
    match by {
        SortBy::Price => group.sort_by_key(price_key),
        // No live statistics yet: endpoints OpenRouter reports as degraded go last, otherwise
        // the catalog's order stands.
        SortBy::Throughput | SortBy::Latency => {
            group.sort_by_key(|c| std::cmp::Reverse(c.endpoint.status))
        }
    }
}

/// Orders one model's endpoints: an explicit sort, or the default load balancing.
fn order_group(group: &mut [Candidate], prefs: &ProviderPrefs, sort: Option<SortBy>, seed: u64) {
    if let Some(by) = sort {
        sort_by(group, by);
        return;
    }
    group.sort_by_key(price_key);
    if !prefs.order.is_empty() || group.len() < 2 {
        return;
    }
    let first = weighted_pick(group, seed);
    group[..=first].rotate_right(1);
}

/// Index of a random endpoint, chosen with probability proportional to 1/price² (free endpoints are
/// priced at one pico-dollar so that they dominate without dividing by zero).
pub fn weighted_pick(group: &[Candidate], seed: u64) -> usize {
    let weights: Vec<f64> = group
        .iter()
        .map(|c| {
            let price = price_key(c).max(1) as f64;
            1.0 / (price * price)
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = unit_interval(seed) * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    group.len() - 1
}

/// A uniform number in [0, 1) from a seed (SplitMix64).
fn unit_interval(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// No candidate left: `no_endpoints`, or `constraint_filtered` naming what excluded them.
fn unavailable(models: &[String], excluded: &[&'static str]) -> ApiError {
    let requested = models.first().map(String::as_str).unwrap_or("");
    if excluded.is_empty() {
        return ApiError::no_endpoints(requested);
    }
    let mut err = ApiError::new(
        ErrorCode::NoEndpoints,
        format!(
            "No endpoints for {requested} match your provider preferences (excluded by: {}); relax them or allow fallbacks",
            excluded.join(", ")
        ),
    );
    err.availability = Some(Box::new(json!({
        "code": "constraint_filtered",
        "retryable": false,
        "requested_models": models,
        "excluded_by": excluded,
        "docs_url": "https://openrouter.ai/docs/guides/routing/provider-selection",
    })));
    err
}

#[cfg(test)]
mod tests;
