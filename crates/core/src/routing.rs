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
use crate::health::{Gate, LiveStats, Percentiles};
use crate::money::Price;
use serde_json::{json, Map, Value};

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

/// Bounds on live percentiles (`preferred_min_throughput`, `preferred_max_latency`); a number
/// means p50. Endpoints that miss one are tried after those that do not.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Thresholds {
    pub p50: Option<f64>,
    pub p75: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

impl Thresholds {
    fn is_empty(&self) -> bool {
        *self == Thresholds::default()
    }

    /// Whether measured percentiles violate a bound: above it (`max`) or below it (not `max`).
    /// An endpoint without measurements misses nothing.
    fn missed(&self, measured: Option<Percentiles>, max: bool) -> bool {
        let Some(m) = measured else {
            return false;
        };
        let miss = |bound: Option<f64>, value: f64| {
            bound.is_some_and(|b| if max { value > b } else { value < b })
        };
        miss(self.p50, m.p50)
            || miss(self.p75, m.p75)
            || miss(self.p90, m.p90)
            || miss(self.p99, m.p99)
    }
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
    /// Tokens per second.
    pub preferred_min_throughput: Thresholds,
    /// Milliseconds to the first token (the request gives seconds).
    pub preferred_max_latency: Thresholds,
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
            preferred_min_throughput: Thresholds::default(),
            preferred_max_latency: Thresholds::default(),
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
        prefs.preferred_min_throughput = thresholds(obj, "preferred_min_throughput", 1.0)?;
        prefs.preferred_max_latency = thresholds(obj, "preferred_max_latency", 1000.0)?;
        Ok(prefs)
    }

    /// Parses the request's preferences on top of account-wide defaults (`provider` objects as
    /// JSON): the request's fields win, except that `ignore` lists add up and `only` lists must
    /// both allow a provider.
    pub fn parse_with_defaults(
        provider: Option<&Value>,
        route: Option<&Value>,
        defaults: Option<&Value>,
    ) -> Result<ProviderPrefs, ApiError> {
        let Some(Value::Object(defaults)) = defaults else {
            return ProviderPrefs::parse(provider, route);
        };
        let request = match provider {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(request)) => request.clone(),
            Some(_) => return Err(ApiError::invalid("`provider` must be an object")),
        };
        let mut merged = defaults.clone();
        for (field, value) in request {
            let combined = match (field.as_str(), merged.get(&field), &value) {
                ("ignore", Some(Value::Array(a)), Value::Array(b)) => {
                    let mut all = a.clone();
                    all.extend(b.iter().filter(|v| !a.contains(v)).cloned());
                    Value::Array(all)
                }
                ("only", Some(Value::Array(a)), Value::Array(b)) if !a.is_empty() => {
                    let lower = |v: &Value| v.as_str().map(|s| s.trim().to_lowercase());
                    let allowed: Vec<Option<String>> = a.iter().map(lower).collect();
                    let both: Vec<Value> = b
                        .iter()
                        .filter(|v| allowed.contains(&lower(v)))
                        .cloned()
                        .collect();
                    // Nothing both lists allow: keep a name no provider has, so the request
                    // fails as filtered instead of escaping the account's allow-list.
                    if both.is_empty() && !b.is_empty() {
                        json!(["\u{0}none"])
                    } else {
                        Value::Array(both)
                    }
                }
                _ => value,
            };
            merged.insert(field, combined);
        }
        ProviderPrefs::parse(Some(&Value::Object(merged)), route)
    }
}

/// `preferred_*` as a number (p50) or an object of percentiles, scaled into internal units.
fn thresholds(obj: &Map<String, Value>, field: &str, scale: f64) -> Result<Thresholds, ApiError> {
    let bad = || {
        ApiError::invalid(format!(
            "`provider.{field}` must be a non-negative number or an object {{p50, p75, p90, p99}}"
        ))
    };
    let number = |v: &Value| -> Result<f64, ApiError> {
        v.as_f64()
            .filter(|n| *n >= 0.0)
            .map(|n| n * scale)
            .ok_or_else(bad)
    };
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Thresholds::default()),
        Some(Value::Object(p)) => {
            let get = |k: &str| -> Result<Option<f64>, ApiError> {
                match p.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => number(v).map(Some),
                }
            };
            if let Some(k) = p
                .keys()
                .find(|k| !["p50", "p75", "p90", "p99"].contains(&k.as_str()))
            {
                return Err(ApiError::invalid(format!(
                    "`provider.{field}.{k}` is not a percentile; use p50, p75, p90 or p99"
                )));
            }
            Ok(Thresholds {
                p50: get("p50")?,
                p75: get("p75")?,
                p90: get("p90")?,
                p99: get("p99")?,
            })
        }
        Some(v) => Ok(Thresholds {
            p50: Some(number(v)?),
            ..Thresholds::default()
        }),
    }
}

/// What the gateway has observed of endpoints: whether they may take traffic, and how fast they
/// are. Routing stays pure; the server answers from its in-memory statistics.
pub trait Observed {
    fn gate(&self, candidate: &Candidate) -> Gate;
    fn stats(&self, candidate: &Candidate) -> LiveStats;
}

/// No observations: every endpoint is up and unmeasured.
pub struct Unobserved;

impl Observed for Unobserved {
    fn gate(&self, _: &Candidate) -> Gate {
        Gate::Up
    }
    fn stats(&self, _: &Candidate) -> LiveStats {
        LiveStats::default()
    }
}

/// What the routing decision needs to know about the request.
#[derive(Clone)]
pub struct RouteRequest<'a> {
    /// Models in the order to try (`model`, then `models`).
    pub models: &'a [String],
    pub prefs: &'a ProviderPrefs,
    /// Names of the request's parameters (body keys), for `require_parameters` and soft filters.
    pub params: &'a [String],
    /// Seed of the default load balancing (random per request in production).
    pub seed: u64,
    /// Estimated prompt tokens: endpoints with a smaller context cannot serve the request.
    pub prompt_tokens: u64,
    pub observed: &'a dyn Observed,
    /// Unix milliseconds, to turn a down endpoint's recovery time into a `Retry-After`.
    pub now_ms: i64,
}

/// How the candidates were chosen, for `openrouter_metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The default: inverse-square price weighting among healthy endpoints.
    LoadBalanced,
    /// An explicit `sort`, variant or `order`.
    Sorted,
}

/// The routing decision: candidates in order, and how many endpoints were considered.
#[derive(Debug, Clone)]
pub struct Plan<'c> {
    pub candidates: Vec<Candidate<'c>>,
    pub strategy: Strategy,
    /// Endpoints of the requested models whose providers are enabled, before any filter.
    pub considered: usize,
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
) -> Result<Plan<'c>, ApiError> {
    let prefs = request.prefs;
    let mut groups: Vec<Vec<Candidate<'c>>> = Vec::new();
    let mut excluded: Vec<&'static str> = Vec::new();
    let mut any_sort = prefs.sort;
    let mut considered = 0;
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
            considered += 1;
            match exclusion(request, provider, endpoint) {
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
        order_group(&mut group, request, sort);
        groups.push(group);
    }
    let mut out: Vec<Candidate<'c>> = if prefs.partition_none && any_sort.is_some() {
        let mut all: Vec<Candidate<'c>> = groups.into_iter().flatten().collect();
        sort_by(
            &mut all,
            any_sort.unwrap_or(SortBy::Price),
            request.observed,
        );
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
    demote_slow(&mut out, request);
    if out.is_empty() {
        return Err(unavailable(request.models, &excluded));
    }
    skip_down(&mut out, request)?;
    let strategy = if any_sort.is_some() || !prefs.order.is_empty() {
        Strategy::Sorted
    } else {
        Strategy::LoadBalanced
    };
    Ok(Plan {
        candidates: out,
        strategy,
        considered,
    })
}

/// Endpoints that miss `preferred_min_throughput` or `preferred_max_latency` go to the back,
/// keeping their relative order; they are never dropped.
fn demote_slow(out: &mut [Candidate], request: &RouteRequest) {
    let prefs = request.prefs;
    if prefs.preferred_min_throughput.is_empty() && prefs.preferred_max_latency.is_empty() {
        return;
    }
    out.sort_by_cached_key(|c| {
        let stats = request.observed.stats(c);
        prefs
            .preferred_min_throughput
            .missed(stats.throughput_30m, false)
            || prefs.preferred_max_latency.missed(stats.latency_30m, true)
    });
}

/// Drops endpoints that are down (a tripped breaker or a provider's Retry-After). When every
/// candidate is down the request fails at once, retryable, instead of hammering them.
fn skip_down(out: &mut Vec<Candidate>, request: &RouteRequest) -> Result<(), ApiError> {
    let gates: Vec<Gate> = out.iter().map(|c| request.observed.gate(c)).collect();
    if gates.iter().any(|g| !matches!(g, Gate::Down { .. })) {
        let mut gates = gates.iter();
        out.retain(|_| !matches!(gates.next(), Some(Gate::Down { .. })));
        return Ok(());
    }
    let until = gates
        .iter()
        .filter_map(|g| match g {
            Gate::Down { until_ms, .. } => Some(*until_ms),
            _ => None,
        })
        .min()
        .unwrap_or(0);
    let rate_limited = gates.iter().all(|g| {
        matches!(
            g,
            Gate::Down {
                rate_limited: true,
                ..
            }
        )
    });
    let retry_after = (until.saturating_sub(request.now_ms).max(0) as u64)
        .div_ceil(1000)
        .max(1);
    Err(all_down(request.models, out, retry_after, rate_limited))
}

/// Every candidate is down: 429 `capacity_exhausted` when providers asked us to back off,
/// 503 `temporarily_unavailable` when they are failing; either way retryable after `retry_after` s.
fn all_down(
    models: &[String],
    out: &[Candidate],
    retry_after: u64,
    rate_limited: bool,
) -> ApiError {
    let requested = models.first().map(String::as_str).unwrap_or("");
    let mut providers: Vec<&str> = out.iter().map(|c| c.provider.slug.as_str()).collect();
    providers.dedup();
    let (code, availability, message) = if rate_limited {
        (
            ErrorCode::RateLimited,
            "capacity_exhausted",
            format!(
                "Every provider of {requested} is rate limited; retry after the Retry-After delay"
            ),
        )
    } else {
        (
            ErrorCode::UpstreamOverloaded,
            "temporarily_unavailable",
            format!("Every provider of {requested} is failing right now; retry shortly"),
        )
    };
    let mut err = ApiError::new(code, message);
    err.availability = Some(Box::new(json!({
        "code": availability,
        "retryable": true,
        "requested_models": models,
        "retry_after": retry_after,
        "affected_providers": providers,
        "docs_url": "https://openrouter.ai/docs/api-reference/errors",
    })));
    err.retry_after = Some(retry_after);
    err
}

/// Why an endpoint may not serve this request, if it may not.
fn exclusion(
    request: &RouteRequest,
    provider: &Provider,
    endpoint: &Endpoint,
) -> Option<&'static str> {
    let prefs = request.prefs;
    let params = request.params;
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
    if endpoint.context_length > 0 && request.prompt_tokens > endpoint.context_length {
        return Some("context_length");
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

/// Sorts by price, or by live p50 throughput (highest first) or latency (lowest first). Ties and
/// unmeasured endpoints fall back to price, so a fresh gateway sorts like `:floor`; measured
/// endpoints come before unmeasured ones, degraded catalog status last.
fn sort_by(group: &mut [Candidate], by: SortBy, observed: &dyn Observed) {
    match by {
        SortBy::Price => group.sort_by_key(price_key),
        SortBy::Throughput | SortBy::Latency => {
            group.sort_by_cached_key(|c| {
                let stats = observed.stats(c);
                let measured = match by {
                    // Negated so that the highest throughput sorts first.
                    SortBy::Throughput => stats.throughput_30m.map(|p| -p.p50),
                    _ => stats.latency_30m.map(|p| p.p50),
                };
                (
                    std::cmp::Reverse(c.endpoint.status),
                    measured.is_none(),
                    // Whole units keep the ordering total (f64 is not Ord) and ties real.
                    measured.map_or(0, |m| m.round() as i64),
                    price_key(c),
                )
            });
        }
    }
}

/// Orders one model's endpoints: an explicit sort, or the default load balancing.
fn order_group(group: &mut [Candidate], request: &RouteRequest, sort: Option<SortBy>) {
    if let Some(by) = sort {
        sort_by(group, by, request.observed);
        return;
    }
    group.sort_by_key(price_key);
    if !request.prefs.order.is_empty() || group.len() < 2 {
        return;
    }
    // Endpoints in an outage do not take part in the draw (they are dropped later, unless
    // every endpoint is down).
    let up: Vec<usize> = (0..group.len())
        .filter(|&i| !matches!(request.observed.gate(&group[i]), Gate::Down { .. }))
        .collect();
    if up.len() < 2 {
        return;
    }
    let pool: Vec<Candidate> = up.iter().map(|&i| group[i]).collect();
    let first = up[weighted_pick(&pool, request.seed)];
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
