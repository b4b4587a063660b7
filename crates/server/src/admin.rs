//! Account endpoints any key may call: `GET /api/v1/key`, `/credits` and `/generation`.
//!
//! These are off the inference hot path, so they read the database directly, merging in what this
//! process knows and has not written yet (queued generation records, in-memory balances).

use crate::auth::Need;
use crate::error::{HttpError, HttpResult};
use crate::{unix_ms, AppState};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::generation::{format_rfc3339_ms, utc_window_starts};
use switchyard_core::money::Money;

fn internal(e: switchyard_store::StoreError) -> HttpError {
    tracing::error!(error = %e, "store query failed");
    HttpError(ApiError::new(
        ErrorCode::Internal,
        "Database query failed; try again",
    ))
}

/// `GET /api/v1/key`: the calling key's limits and usage.
pub async fn current_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> HttpResult<Json<Value>> {
    let now = unix_ms();
    let principal = state
        .keys
        .authenticate(&state.store, &headers, Need::Any, now)
        .await?;
    let key = state
        .store
        .key_by_hash(&principal.key.hash)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "User not found: no such API key"))?;
    let [day, week, month] = utc_window_starts(now);
    let mut windows = [Money::ZERO; 3];
    for (slot, since) in windows.iter_mut().zip([day, week, month]) {
        *slot = state
            .store
            .key_usage_since(&key.hash, since)
            .await
            .map_err(internal)?;
    }
    let account = state
        .store
        .account(&key.account_id)
        .await
        .map_err(internal)?;
    let purchased = account.map_or(Money::ZERO, |a| a.total_credits);
    let limit_remaining = key
        .limit
        .map(|l| l.saturating_sub(key.usage).max(Money::ZERO).as_usd_f64());
    let free_limit = if purchased >= Money::from_nanos(10_000_000_000) {
        1000
    } else {
        50
    };
    Ok(Json(json!({"data": {
        "label": key.label,
        "name": key.name,
        "limit": key.limit.map(Money::as_usd_f64),
        "limit_remaining": limit_remaining,
        "limit_reset": key.limit_reset,
        "include_byok_in_limit": key.include_byok_in_limit,
        "usage": key.usage.as_usd_f64(),
        "usage_daily": windows[0].as_usd_f64(),
        "usage_weekly": windows[1].as_usd_f64(),
        "usage_monthly": windows[2].as_usd_f64(),
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        "is_free_tier": purchased == Money::ZERO,
        "is_management_key": key.is_management,
        "is_provisioning_key": key.is_management,
        "creator_user_id": null,
        "expires_at": key.expires_at_ms.map(format_rfc3339_ms),
        "rate_limit": {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."},
        "allowed_data_regions": ["global"],
        "budgets": [],
        "effective_budget": null,
        "free_model_daily_requests": {"limit": free_limit, "remaining": free_limit, "used": 0},
        "organization_id": null,
        "workspace_id": null,
    }})))
}

/// `GET /api/v1/credits`: the account's granted credits and usage.
pub async fn credits(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> HttpResult<Json<Value>> {
    let principal = state
        .keys
        .authenticate(&state.store, &headers, Need::Any, unix_ms())
        .await?;
    let account_id = &principal.key.account_id;
    let (credits, usage) = match state.ledger.snapshot(account_id) {
        Some(snapshot) => snapshot,
        None => {
            let account = state
                .store
                .account(account_id)
                .await
                .map_err(internal)?
                .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "Account not found"))?;
            (account.total_credits, account.total_usage)
        }
    };
    Ok(Json(json!({"data": {
        "total_credits": credits.as_usd_f64(),
        "total_usage": usage.as_usd_f64(),
    }})))
}

#[derive(Deserialize)]
pub struct GenerationQuery {
    id: Option<String>,
}

/// `GET /api/v1/generation?id=`: one generation of the caller's account.
pub async fn generation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<GenerationQuery>,
) -> HttpResult<Json<Value>> {
    let principal = state
        .keys
        .authenticate(&state.store, &headers, Need::Any, unix_ms())
        .await?;
    let Some(id) = query.id.filter(|id| !id.is_empty()) else {
        return Err(ApiError::invalid("Query parameter `id` is required, e.g. ?id=gen-...").into());
    };
    let account_id = &principal.key.account_id;
    let record = match state
        .recorder
        .pending(&id)
        .filter(|r| &r.account_id == account_id)
    {
        Some(record) => Some(record),
        None => state
            .store
            .generation(&id, account_id)
            .await
            .map_err(internal)?,
    };
    match record {
        Some(record) => Ok(Json(json!({"data": record.to_json()}))),
        None => {
            Err(ApiError::new(ErrorCode::NotFound, format!("Generation {id} not found")).into())
        }
    }
}
