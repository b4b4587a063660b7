//! Usage reporting: `GET /api/v1/activity` (per day, model and provider, management keys only) and
//! the CSV export of generation records behind `switchyard activity export`.
//!
//! Activity is off the hot path: it aggregates the written generation records in the database, so a
//! request shows up once the recorder has written it (normally within a second).

use crate::auth::Need;
use crate::error::{internal, HttpResult};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{self, Write};
use std::sync::Arc;
use switchyard_core::catalog::Catalog;
use switchyard_core::error::ApiError;
use switchyard_core::generation::{format_rfc3339_ms, parse_rfc3339_utc_ms, GenerationRecord};
use switchyard_store::ActivityRow;

pub const DAY_MS: i64 = 86_400_000;
/// How far back `date=` may go, in days before today.
pub const WINDOW_DAYS: i64 = 30;

/// Midnight (unix ms, UTC) of a `YYYY-MM-DD` date; `None` unless exactly that form and a real date.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() != 10 {
        return None;
    }
    parse_rfc3339_utc_ms(text)
}

/// The `[since, until)` window of an activity query at `now_ms`: one UTC day (`date`, within the
/// last [`WINDOW_DAYS`] days, today included), or by default the last 30 complete UTC days. The
/// error is the message of a 400.
pub fn window(date: Option<&str>, now_ms: i64) -> Result<(i64, i64), String> {
    let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
    let earliest = today - WINDOW_DAYS * DAY_MS;
    match date.filter(|d| !d.is_empty()) {
        None => Ok((earliest, today)),
        Some(text) => {
            let day = parse_date(text).ok_or_else(|| {
                format!(
                    "Query parameter `date` must be a UTC date in YYYY-MM-DD form, got `{text}`"
                )
            })?;
            if day < earliest || day > today {
                return Err(format!(
                    "Query parameter `date` must be within the last {WINDOW_DAYS} days: from {} to {}",
                    &format_rfc3339_ms(earliest)[..10],
                    &format_rfc3339_ms(today)[..10]
                ));
            }
            Ok((day, day + DAY_MS))
        }
    }
}

/// The endpoint tag that served `model` at the provider displayed as `provider_name`: the catalog
/// endpoint's tag when known, else the provider's slug, else its name lower-cased with dashes.
pub fn endpoint_id(catalog: &Catalog, model: &str, provider_name: &str) -> String {
    let slug = catalog
        .providers()
        .iter()
        .find(|p| p.name == provider_name || p.slug == provider_name)
        .map(|p| p.slug.clone());
    let Some(slug) = slug else {
        return provider_name.to_lowercase().replace(' ', "-");
    };
    catalog
        .model(model)
        .and_then(|m| m.endpoints.iter().find(|e| e.provider == slug))
        .map_or(slug, |e| e.tag.clone())
}

/// One row of the activity response, with every field OpenRouter's SDKs require (`cached_tokens`
/// is required by the Python SDK though not by the OpenAPI document).
pub fn row_json(catalog: &Catalog, row: &ActivityRow) -> Value {
    let permaslug = catalog
        .model(&row.model)
        .map_or_else(|| row.model.clone(), |m| m.canonical_slug.clone());
    json!({
        "date": row.date,
        "model": row.model,
        "model_permaslug": permaslug,
        "endpoint_id": endpoint_id(catalog, &row.model, &row.provider_name),
        "provider_name": row.provider_name,
        "usage": row.usage.as_usd_f64(),
        "byok_usage_inference": row.byok_usage.as_usd_f64(),
        "requests": row.requests,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cached_tokens": row.cached_tokens,
    })
}

#[derive(Debug, Deserialize)]
pub struct ActivityQuery {
    date: Option<String>,
    api_key_hash: Option<String>,
}

/// `GET /api/v1/activity?date=YYYY-MM-DD&api_key_hash=`: usage per UTC day, model and provider.
pub async fn activity(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<ActivityQuery>,
) -> HttpResult<Json<Value>> {
    let now = state.now_ms();
    let principal = state.authenticate(&headers, Need::Management).await?;
    let (since, until) = window(query.date.as_deref(), now).map_err(ApiError::invalid)?;
    let key_hash = query.api_key_hash.as_deref().filter(|h| !h.is_empty());
    if let Some(hash) = key_hash {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "Query parameter `api_key_hash` must be a key hash (64 hex characters) as GET /api/v1/keys lists it",
            )
            .into());
        }
    }
    let key_hash = key_hash.map(str::to_ascii_lowercase);
    let rows = state
        .store
        .activity(&principal.key.account_id, since, until, key_hash.as_deref())
        .await
        .map_err(internal)?;
    let data: Vec<Value> = rows.iter().map(|r| row_json(&state.catalog, r)).collect();
    Ok(Json(json!({ "data": data })))
}

/// Columns of the generation CSV export.
pub const CSV_COLUMNS: [&str; 20] = [
    "id",
    "created_at",
    "account",
    "key_hash",
    "model",
    "provider",
    "streamed",
    "cancelled",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "is_byok",
    "byok_usage_usd",
    "latency_ms",
    "generation_time_ms",
    "http_referer",
    "app_title",
];

/// One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The CSV line (without its line ending) of one record; amounts are exact decimals of USD.
pub fn csv_row(r: &GenerationRecord) -> String {
    let fields = [
        r.id.clone(),
        format_rfc3339_ms(r.created_at_ms),
        r.account_id.clone(),
        r.key_hash.clone(),
        r.model.clone(),
        r.provider_name.clone().unwrap_or_default(),
        r.streamed.to_string(),
        r.cancelled.to_string(),
        r.finish_reason.clone().unwrap_or_default(),
        r.usage.prompt_tokens.to_string(),
        r.usage.completion_tokens.to_string(),
        r.usage.cached_tokens.to_string(),
        r.usage.reasoning_tokens.to_string(),
        r.cost.to_string(),
        r.is_byok.to_string(),
        r.byok_usage.to_string(),
        r.latency_ms.to_string(),
        r.generation_time_ms.to_string(),
        r.http_referer.clone().unwrap_or_default(),
        r.app_title.clone().unwrap_or_default(),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes the header and one line per record (CRLF line endings, as RFC 4180 has them).
pub fn write_csv(out: &mut dyn Write, records: &[GenerationRecord]) -> io::Result<()> {
    write!(out, "{}\r\n", CSV_COLUMNS.join(","))?;
    for record in records {
        write!(out, "{}\r\n", csv_row(record))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests;
