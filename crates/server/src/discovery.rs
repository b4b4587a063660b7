//! The discovery API: `/models` (with OpenRouter's filters and paging), `/models/count`,
//! `/models/user`, `/model/{author}/{slug}`, `/models/{author}/{slug}/endpoints`, `/endpoints/zdr`,
//! `/embeddings/models` and `/providers`.
//!
//! The model lists and providers are rendered once at start-up from the live catalog (enabled
//! providers only) and served from memory: clients call these on every start, so they must cost
//! next to nothing. Endpoint lists (`/models/.../endpoints`, `/endpoints/zdr`) are rendered per
//! call because they carry the gateway's live statistics.

use crate::auth::Need;
use crate::error::{HttpError, HttpResult};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use switchyard_core::catalog::Catalog;
use switchyard_core::discovery::{self, ModelQuery};
use switchyard_core::error::{ApiError, ErrorCode};

/// Pre-rendered discovery data.
#[derive(Debug)]
pub struct DiscoveryCache {
    /// `model_json` of every live model, in catalog order.
    models: Vec<Value>,
    /// The body of `GET /models` without parameters, the most common call.
    default_models: Bytes,
    providers: Bytes,
}

impl DiscoveryCache {
    pub fn new(catalog: &Catalog) -> DiscoveryCache {
        let models: Vec<Value> = catalog.models().iter().map(discovery::model_json).collect();
        let default_query = ModelQuery::parse([]).unwrap_or_default();
        let default_models = render_page("/api/v1/models", &default_query, catalog, &models);
        let providers: Vec<Value> = catalog
            .providers()
            .iter()
            .filter(|p| {
                catalog
                    .models()
                    .iter()
                    .any(|m| m.endpoints.iter().any(|e| e.provider == p.slug))
            })
            .map(discovery::provider_json)
            .collect();
        DiscoveryCache {
            models,
            default_models: to_bytes(&default_models),
            providers: to_bytes(&json!({"data": providers})),
        }
    }
}

fn to_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

fn render_page(path: &str, query: &ModelQuery, catalog: &Catalog, models: &[Value]) -> Value {
    let items = query
        .select(catalog)
        .into_iter()
        .map(|i| models[i].clone())
        .collect();
    discovery::page(path, query, items)
}

/// A cacheable JSON response.
fn json_response(body: Bytes) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

type Pairs = Query<Vec<(String, String)>>;

fn parse(pairs: &[(String, String)]) -> Result<ModelQuery, HttpError> {
    Ok(ModelQuery::parse(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?)
}

/// `GET /models`.
pub async fn models(
    State(state): State<Arc<AppState>>,
    Query(pairs): Pairs,
) -> HttpResult<Response> {
    if pairs.is_empty() {
        return Ok(json_response(state.discovery.default_models.clone()));
    }
    let query = parse(&pairs)?;
    let page = render_page(
        "/api/v1/models",
        &query,
        &state.catalog,
        &state.discovery.models,
    );
    Ok(json_response(to_bytes(&page)))
}

/// `GET /models/count`.
pub async fn count(
    State(state): State<Arc<AppState>>,
    Query(pairs): Pairs,
) -> HttpResult<Response> {
    let query = parse(&pairs)?;
    let count = query.select(&state.catalog).len();
    Ok(json_response(to_bytes(&json!({"data": {"count": count}}))))
}

/// `GET /models/user`: the models the calling key may use (its `allowed_models`, if it has one).
pub async fn user_models(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(pairs): Pairs,
) -> HttpResult<Response> {
    let principal = state.authenticate(&headers, Need::Any).await?;
    let query = parse(&pairs)?;
    let models = state.catalog.models();
    let items = query
        .select(&state.catalog)
        .into_iter()
        .filter(|&i| {
            // A key's allow-list narrows what it may use (by model id, or the id without a variant).
            principal.key.allowed_models.as_ref().is_none_or(|allowed| {
                allowed.iter().any(|a| {
                    a == &models[i].id
                        || a.rsplit_once(':')
                            .is_some_and(|(base, _)| base == models[i].id)
                })
            })
        })
        .map(|i| state.discovery.models[i].clone())
        .collect();
    let page = discovery::page("/api/v1/models/user", &query, items);
    Ok(json_response(to_bytes(&page)))
}

/// `GET /embeddings/models`.
pub async fn embedding_models(
    State(state): State<Arc<AppState>>,
    Query(mut pairs): Pairs,
) -> HttpResult<Response> {
    pairs.retain(|(k, _)| k != "output_modalities");
    pairs.push(("output_modalities".into(), "embeddings".into()));
    let query = parse(&pairs)?;
    let page = render_page(
        "/api/v1/embeddings/models",
        &query,
        &state.catalog,
        &state.discovery.models,
    );
    Ok(json_response(to_bytes(&page)))
}

fn model_not_found(id: &str) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::NotFound,
        format!("Model {id} not found (or no enabled provider serves it)"),
    ))
}

/// `GET /model/{author}/{slug}`.
pub async fn model(
    State(state): State<Arc<AppState>>,
    Path((author, slug)): Path<(String, String)>,
) -> HttpResult<Response> {
    let id = format!("{author}/{slug}");
    let model = discovery::find_model(&state.catalog, &id).ok_or_else(|| model_not_found(&id))?;
    let index = state
        .catalog
        .models()
        .iter()
        .position(|m| m.id == model.id)
        .unwrap_or(0);
    let mut value = state.discovery.models[index].clone();
    if id.starts_with('~') {
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "alias_target".into(),
                json!({"slug": model.id, "name": model.name}),
            );
        }
    }
    Ok(json_response(to_bytes(&json!({"data": value}))))
}

/// `GET /models/{author}/{slug}/endpoints`.
pub async fn endpoints(
    State(state): State<Arc<AppState>>,
    Path((author, slug)): Path<(String, String)>,
) -> HttpResult<Response> {
    let id = format!("{author}/{slug}");
    let model = discovery::find_model(&state.catalog, &id).ok_or_else(|| model_not_found(&id))?;
    let now = state.now_ms();
    let live = |e: &switchyard_core::catalog::Endpoint| {
        state
            .health
            .stats(&crate::health::endpoint_key(&model.id, &e.tag), now)
    };
    let body = json!({"data": discovery::endpoints_json_live(&state.catalog, model, &live)});
    Ok(json_response(to_bytes(&body)))
}

/// `GET /endpoints/zdr`.
/// Rendered per call (not cached): it carries the endpoints' live statistics.
pub async fn zdr(State(state): State<Arc<AppState>>) -> Response {
    let catalog = &state.catalog;
    let now = state.now_ms();
    let mut zdr = Vec::new();
    for model in catalog.models() {
        for endpoint in &model.endpoints {
            if let Some(provider) = catalog
                .provider(&endpoint.provider)
                .filter(|p| p.data_policy.zdr)
            {
                let live = state
                    .health
                    .stats(&crate::health::endpoint_key(&model.id, &endpoint.tag), now);
                zdr.push(discovery::endpoint_json_live(
                    model, endpoint, provider, &live,
                ));
            }
        }
    }
    json_response(to_bytes(&json!({"data": zdr})))
}

/// `GET /providers`.
pub async fn providers(State(state): State<Arc<AppState>>) -> Response {
    json_response(state.discovery.providers.clone())
}
