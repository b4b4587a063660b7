//! OpenRouter's key-management API (management keys only, each confined to its own account):
//! `GET/POST /api/v1/keys`, `GET/PATCH/DELETE /api/v1/keys/{hash}`; and the key object that these,
//! and `GET /api/v1/key`, return.
//!
//! Extension: `allowed_models` (a list of model ids, or null for all) restricts what a key may call.

use crate::auth::Need;
use crate::error::{internal, HttpError, HttpResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::generation::{format_rfc3339_ms, parse_rfc3339_utc_ms, utc_window_starts};
use switchyard_core::money::Money;
use switchyard_store::{KeyRow, KeyUpdate};

/// Keys per page of `GET /keys`.
pub const PAGE: i64 = 100;

/// The key object with usage windows, as the official SDKs require it.
pub async fn key_json(state: &AppState, key: &KeyRow, now_ms: i64) -> Result<Value, HttpError> {
    let [day, week, month] = utc_window_starts(now_ms);
    let usage = state
        .store
        .key_usage(&key.hash, day, week, month)
        .await
        .map_err(internal)?;
    let window_usage = crate::ledger::window_usage(key, &usage);
    let limit_remaining = key
        .limit
        .map(|l| l.saturating_sub(window_usage).max(Money::ZERO).as_usd_f64());
    Ok(json!({
        "hash": key.hash,
        "name": key.name,
        "label": key.label,
        "disabled": key.disabled,
        "limit": key.limit.map(Money::as_usd_f64),
        "limit_remaining": limit_remaining,
        "limit_reset": key.limit_reset,
        "include_byok_in_limit": key.include_byok_in_limit,
        "usage": usage.total.as_usd_f64(),
        "usage_daily": usage.daily.as_usd_f64(),
        "usage_weekly": usage.weekly.as_usd_f64(),
        "usage_monthly": usage.monthly.as_usd_f64(),
        "byok_usage": usage.byok_total.as_usd_f64(),
        "byok_usage_daily": usage.byok_daily.as_usd_f64(),
        "byok_usage_weekly": usage.byok_weekly.as_usd_f64(),
        "byok_usage_monthly": usage.byok_monthly.as_usd_f64(),
        "created_at": format_rfc3339_ms(key.created_at_ms),
        "updated_at": key.updated_at_ms.map(format_rfc3339_ms),
        "expires_at": key.expires_at_ms.map(format_rfc3339_ms),
        "last_used_at": key.last_used_at_ms.map(format_rfc3339_ms),
        "creator_user_id": null,
        "external_user": null,
        "workspace_id": "default",
        "is_management_key": key.is_management,
        "allowed_models": key.allowed_models,
    }))
}

#[derive(Deserialize)]
pub struct ListQuery {
    offset: Option<i64>,
    include_disabled: Option<bool>,
    include_expired: Option<bool>,
}

/// `GET /keys`: the account's keys, 100 per page.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> HttpResult<Json<Value>> {
    let now = state.now_ms();
    let principal = state.authenticate(&headers, Need::Management).await?;
    let offset = query.offset.unwrap_or(0).max(0);
    let rows = state
        .store
        .list_keys(
            Some(&principal.key.account_id),
            query.include_disabled.unwrap_or(false),
            offset,
            PAGE,
        )
        .await
        .map_err(internal)?;
    let mut data = Vec::with_capacity(rows.len());
    for key in rows.iter().filter(|k| {
        query.include_expired.unwrap_or(false) || k.expires_at_ms.is_none_or(|at| at > now)
    }) {
        data.push(key_json(&state, key, now).await?);
    }
    Ok(Json(json!({ "data": data })))
}

/// The body of `POST /keys` and `PATCH /keys/{hash}`, checked by hand so that each bad field
/// gets a message naming it.
struct KeyFields {
    update: KeyUpdate,
}

fn parse_fields(body: &Map<String, Value>, now_ms: i64) -> Result<KeyFields, ApiError> {
    const KNOWN: &[&str] = &[
        "name",
        "disabled",
        "limit",
        "limit_reset",
        "include_byok_in_limit",
        "expires_at",
        "allowed_models",
        "workspace_id",
        "creator_user_id",
        "external",
    ];
    if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!("Unknown field `{unknown}`")));
    }
    let mut update = KeyUpdate::default();
    if let Some(v) = body.get("name") {
        let name = v
            .as_str()
            .map(str::trim)
            .filter(|n| !n.is_empty() && n.len() <= 256);
        update.name = Some(
            name.ok_or_else(|| ApiError::invalid("`name` must be a non-empty string"))?
                .to_owned(),
        );
    }
    if let Some(v) = body.get("disabled") {
        update.disabled = Some(
            v.as_bool()
                .ok_or_else(|| ApiError::invalid("`disabled` must be a boolean"))?,
        );
    }
    if let Some(v) = body.get("limit") {
        update.limit = Some(match v {
            Value::Null => None,
            Value::Number(n) => {
                let limit = Money::parse_usd(&n.to_string())
                    .map_err(|_| ApiError::invalid("`limit` must be a number of USD"))?;
                if limit < Money::ZERO {
                    return Err(ApiError::invalid("`limit` must not be negative"));
                }
                Some(limit)
            }
            _ => return Err(ApiError::invalid("`limit` must be a number of USD or null")),
        });
    }
    if let Some(v) = body.get("limit_reset") {
        update.limit_reset = Some(match v {
            Value::Null => None,
            Value::String(s) if matches!(s.as_str(), "daily" | "weekly" | "monthly") => {
                Some(s.clone())
            }
            _ => {
                return Err(ApiError::invalid(
                    "`limit_reset` must be \"daily\", \"weekly\", \"monthly\" or null",
                ))
            }
        });
    }
    if let Some(v) = body.get("include_byok_in_limit") {
        update.include_byok_in_limit = Some(
            v.as_bool()
                .ok_or_else(|| ApiError::invalid("`include_byok_in_limit` must be a boolean"))?,
        );
    }
    if let Some(v) = body.get("expires_at") {
        update.expires_at_ms = Some(match v {
            Value::Null => None,
            Value::String(s) => {
                let at = parse_rfc3339_utc_ms(s).ok_or_else(|| {
                    ApiError::invalid("`expires_at` must be an ISO 8601 UTC timestamp such as 2027-01-01T00:00:00Z")
                })?;
                if at <= now_ms {
                    return Err(ApiError::invalid("`expires_at` must be in the future"));
                }
                Some(at)
            }
            _ => {
                return Err(ApiError::invalid(
                    "`expires_at` must be an ISO 8601 UTC timestamp or null",
                ))
            }
        });
    }
    if let Some(v) = body.get("allowed_models") {
        update.allowed_models = Some(match v {
            Value::Null => None,
            Value::Array(items) => {
                let mut models = Vec::with_capacity(items.len());
                for item in items {
                    let id = item.as_str().filter(|s| !s.is_empty());
                    models.push(
                        id.ok_or_else(|| {
                            ApiError::invalid("`allowed_models` must be an array of model ids")
                        })?
                        .to_owned(),
                    );
                }
                Some(models)
            }
            _ => {
                return Err(ApiError::invalid(
                    "`allowed_models` must be an array of model ids or null",
                ))
            }
        });
    }
    Ok(KeyFields { update })
}

fn object(body: Option<Json<Value>>) -> Result<Map<String, Value>, ApiError> {
    match body {
        Some(Json(Value::Object(map))) => Ok(map),
        _ => Err(ApiError::invalid("Request body must be a JSON object")),
    }
}

/// `POST /keys`: creates an inference key; 201 with the plaintext key, shown only here.
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> HttpResult<Response> {
    let now = state.now_ms();
    let principal = state.authenticate(&headers, Need::Management).await?;
    let body = object(body)?;
    let fields = parse_fields(&body, now)?;
    let Some(name) = fields.update.name.clone() else {
        return Err(ApiError::invalid("`name` is required").into());
    };
    if fields.update.disabled.is_some() {
        return Err(
            ApiError::invalid("`disabled` cannot be set on create; PATCH the key instead").into(),
        );
    }
    let u = fields.update;
    let new = crate::create_key_with(
        &state.store,
        crate::NewKeySpec {
            account_id: &principal.key.account_id,
            name: &name,
            is_management: false,
            limit: u.limit.flatten(),
            limit_reset: u.limit_reset.flatten(),
            include_byok_in_limit: u.include_byok_in_limit.unwrap_or(false),
            expires_at_ms: u.expires_at_ms.flatten(),
            allowed_models: u.allowed_models.flatten(),
            now_ms: now,
        },
    )
    .await
    .map_err(internal)?;
    let data = key_json(&state, &new.row, now).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"data": data, "key": new.key})),
    )
        .into_response())
}

/// `GET /keys/{hash}`.
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> HttpResult<Json<Value>> {
    let now = state.now_ms();
    let principal = state.authenticate(&headers, Need::Management).await?;
    let key = own_key(&state, &principal.key.account_id, &hash).await?;
    Ok(Json(json!({"data": key_json(&state, &key, now).await?})))
}

/// `PATCH /keys/{hash}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
    body: Option<Json<Value>>,
) -> HttpResult<Json<Value>> {
    let now = state.now_ms();
    let principal = state.authenticate(&headers, Need::Management).await?;
    let body = object(body)?;
    let fields = parse_fields(&body, now)?;
    let key = state
        .store
        .update_key(&hash, &principal.key.account_id, &fields.update, now)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(&hash))?;
    // Limits and status apply to the very next request.
    state.keys.invalidate(&hash);
    state.ledger.forget_key(&hash);
    Ok(Json(json!({"data": key_json(&state, &key, now).await?})))
}

/// `DELETE /keys/{hash}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(hash): Path<String>,
) -> HttpResult<Json<Value>> {
    let principal = state.authenticate(&headers, Need::Management).await?;
    if hash == principal.key.hash {
        return Err(ApiError::invalid("A management key cannot delete itself").into());
    }
    let deleted = state
        .store
        .delete_key(&hash, &principal.key.account_id)
        .await
        .map_err(internal)?;
    if !deleted {
        return Err(not_found(&hash));
    }
    state.keys.invalidate(&hash);
    state.ledger.forget_key(&hash);
    Ok(Json(json!({"deleted": true})))
}

async fn own_key(state: &AppState, account_id: &str, hash: &str) -> Result<KeyRow, HttpError> {
    match state.store.key_by_hash(hash).await.map_err(internal)? {
        Some(key) if key.account_id == account_id => Ok(key),
        _ => Err(not_found(hash)),
    }
}

fn not_found(hash: &str) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::NotFound,
        format!("Key {hash} not found"),
    ))
}
