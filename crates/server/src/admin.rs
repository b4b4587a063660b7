//! Account endpoints any key may call: `GET /api/v1/key`, `/credits` and `/generation`.
//!
//! These are off the inference hot path, so they read the database directly, merging in what this
//! process knows and has not written yet (queued generation records, in-memory balances).

use crate::auth::Need;
use crate::error::{internal, HttpResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::generation::utc_window_starts;
use switchyard_core::money::Money;

/// `GET /api/v1/key`: the calling key's limits and usage.
pub async fn current_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> HttpResult<Json<Value>> {
    let now = state.now_ms();
    let principal = state.authenticate(&headers, Need::Any).await?;
    let key = state
        .store
        .key_by_hash(&principal.key.hash)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "User not found: no such API key"))?;
    let mut data = crate::keys::key_json(&state, &key, now).await?;
    let account = state
        .store
        .account(&key.account_id)
        .await
        .map_err(internal)?;
    let granted = account.map_or(Money::ZERO, |a| a.total_credits);
    let free_limit = if granted >= state.limiter_free_threshold() {
        state.free_daily_funded()
    } else {
        state.free_daily()
    };
    let [day, _, _] = utc_window_starts(now);
    let used = state
        .store
        .free_requests_since(&key.account_id, day)
        .await
        .map_err(internal)?
        .max(0) as u64;
    if let Some(obj) = data.as_object_mut() {
        for k in [
            "hash",
            "name",
            "disabled",
            "created_at",
            "updated_at",
            "last_used_at",
            "external_user",
            "allowed_models",
        ] {
            obj.remove(k);
        }
        obj.insert("is_free_tier".into(), json!(granted == Money::ZERO));
        obj.insert("is_provisioning_key".into(), json!(key.is_management));
        obj.insert(
            "rate_limit".into(),
            json!({"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."}),
        );
        obj.insert("allowed_data_regions".into(), json!(["global"]));
        obj.insert("budgets".into(), json!([]));
        obj.insert("effective_budget".into(), Value::Null);
        obj.insert(
            "free_model_daily_requests".into(),
            json!({"limit": free_limit, "remaining": free_limit.saturating_sub(used), "used": used}),
        );
        obj.insert("organization_id".into(), Value::Null);
        obj.insert("workspace_id".into(), Value::Null);
        obj.insert("allowed_models".into(), json!(key.allowed_models));
    }
    Ok(Json(json!({ "data": data })))
}

/// `GET /api/v1/credits`: the account's granted credits and usage.
pub async fn credits(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> HttpResult<Json<Value>> {
    let principal = state.authenticate(&headers, Need::Any).await?;
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
    let principal = state.authenticate(&headers, Need::Any).await?;
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
