//! Generation records: the batched write that charges them, and the reads over them (one record,
//! exports, daily activity, request counts for quotas, sums for invariant checks).

use crate::{flag, get_flag, Result, Store};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;
use switchyard_core::generation::{format_rfc3339_ms, Attempt, GenerationRecord};
use switchyard_core::money::Money;
use switchyard_core::pricing::Usage;

const DAY_MS: i64 = 86_400_000;

/// Daily activity: one row per (UTC date, model, provider).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub model: String,
    /// Empty when no provider answered.
    pub provider_name: String,
    pub usage: Money,
    pub byok_usage: Money,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub reasoning_tokens: i64,
    pub cached_tokens: i64,
}

impl Store {
    /// Writes generation records and applies their costs to account and key usage, atomically.
    /// A record already stored (same id, e.g. a retried batch) is neither written nor charged again.
    pub async fn write_batch<R: std::borrow::Borrow<GenerationRecord>>(
        &self,
        records: &[R],
    ) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // Rows are locked in one global order (records by id, then accounts, then keys, each sorted)
        // so that concurrent batches on PostgreSQL queue behind each other instead of deadlocking.
        let mut sorted: Vec<&GenerationRecord> = records.iter().map(|r| r.borrow()).collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        let mut account_charges: BTreeMap<&str, i64> = BTreeMap::new();
        // Per key: (charge, newest record time).
        let mut key_charges: BTreeMap<&str, (i64, i64)> = BTreeMap::new();

        let mut tx = self.begin_write().await?;
        for r in sorted {
            let inserted = sqlx::query(
                "INSERT INTO generations (id, account_id, key_hash, created_at_ms, model, provider_name, upstream_id,
                 streamed, cancelled, finish_reason, native_finish_reason, prompt_tokens, completion_tokens, cached_tokens,
                 cache_write_tokens, reasoning_tokens, images, web_searches, cost_nanos, latency_ms, generation_time_ms,
                 http_referer, app_title, user_agent, external_user, session_id, attempts, error, is_byok, byok_usage_nanos)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                 $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&r.id)
            .bind(&r.account_id)
            .bind(&r.key_hash)
            .bind(r.created_at_ms)
            .bind(&r.model)
            .bind(&r.provider_name)
            .bind(&r.upstream_id)
            .bind(flag(r.streamed))
            .bind(flag(r.cancelled))
            .bind(&r.finish_reason)
            .bind(&r.native_finish_reason)
            .bind(count(r.usage.prompt_tokens))
            .bind(count(r.usage.completion_tokens))
            .bind(count(r.usage.cached_tokens))
            .bind(count(r.usage.cache_write_tokens))
            .bind(count(r.usage.reasoning_tokens))
            .bind(count(r.usage.images))
            .bind(count(r.usage.web_searches))
            .bind(r.cost.nanos())
            .bind(count(r.latency_ms))
            .bind(count(r.generation_time_ms))
            .bind(&r.http_referer)
            .bind(&r.app_title)
            .bind(&r.user_agent)
            .bind(&r.external_user)
            .bind(&r.session_id)
            .bind(attempts_json(&r.attempts))
            .bind(&r.error)
            .bind(flag(r.is_byok))
            .bind(r.byok_usage.nanos())
            .execute(&mut *tx)
            .await?;
            // A record written twice (a retried batch) must not be charged twice.
            if inserted.rows_affected() == 0 {
                continue;
            }
            let account = account_charges.entry(&r.account_id).or_insert(0);
            *account = account.saturating_add(r.cost.nanos());
            let key = key_charges.entry(&r.key_hash).or_insert((0, i64::MIN));
            key.0 = key.0.saturating_add(r.cost.nanos());
            key.1 = key.1.max(r.created_at_ms);
        }
        for (account_id, nanos) in account_charges {
            if nanos != 0 {
                sqlx::query(
                    "UPDATE accounts SET total_usage_nanos = total_usage_nanos + $1 WHERE id = $2",
                )
                .bind(nanos)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            }
        }
        for (key_hash, (nanos, last_used_ms)) in key_charges {
            sqlx::query(
                "UPDATE api_keys SET usage_nanos = usage_nanos + $1,
                 last_used_at_ms = CASE WHEN last_used_at_ms IS NULL OR last_used_at_ms < $2 THEN $2 ELSE last_used_at_ms END
                 WHERE hash = $3",
            )
            .bind(nanos)
            .bind(last_used_ms)
            .bind(key_hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A generation of `account_id` (other accounts' generations are invisible).
    pub async fn generation(&self, id: &str, account_id: &str) -> Result<Option<GenerationRecord>> {
        let row = sqlx::query("SELECT * FROM generations WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| generation_from_row(&r)))
    }

    /// Generations created in `[since_ms, until_ms)`, of one account or (`None`) of all, oldest
    /// first: for CSV export.
    pub async fn generations_between(
        &self,
        account_id: Option<&str>,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<GenerationRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM generations WHERE ($1 IS NULL OR account_id = $1)
             AND created_at_ms >= $2 AND created_at_ms < $3 ORDER BY created_at_ms, id",
        )
        .bind(account_id)
        .bind(since_ms)
        .bind(until_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(generation_from_row).collect())
    }

    /// Requests of an account to models whose id ends with `:free` since `since_ms` (the free-model
    /// daily quota, counted again at start-up).
    pub async fn free_requests_since(&self, account_id: &str, since_ms: i64) -> Result<i64> {
        // Not LIKE: SQLite's is case-insensitive. Ids shorter than 5 characters cannot match either way.
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM generations WHERE account_id = $1 AND created_at_ms >= $2
             AND substr(model, length(model) - 4) = ':free'",
        )
        .bind(account_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    /// BYOK requests of an account since `since_ms` (the monthly free BYOK allowance).
    pub async fn count_byok_requests_since(&self, account_id: &str, since_ms: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM generations WHERE account_id = $1 AND created_at_ms >= $2 AND is_byok = 1",
        )
        .bind(account_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Daily activity of an account over `[since_ms, until_ms)`, optionally of one key: one row per
    /// (UTC date, model, provider), newest date first, then by usage, highest first.
    pub async fn activity(
        &self,
        account_id: &str,
        since_ms: i64,
        until_ms: i64,
        key_hash: Option<&str>,
    ) -> Result<Vec<ActivityRow>> {
        // Grouped by the UTC day number (integer division on both backends; times are positive),
        // formatted as a date here rather than with either backend's date functions.
        let rows = sqlx::query(
            "SELECT created_at_ms / 86400000 AS day_number, model, COALESCE(provider_name, '') AS provider,
               CAST(SUM(cost_nanos) AS BIGINT) AS usage_nanos,
               CAST(SUM(byok_usage_nanos) AS BIGINT) AS byok_nanos,
               COUNT(*) AS requests,
               CAST(SUM(prompt_tokens) AS BIGINT) AS prompt,
               CAST(SUM(completion_tokens) AS BIGINT) AS completion,
               CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning,
               CAST(SUM(cached_tokens) AS BIGINT) AS cached
             FROM generations
             WHERE account_id = $1 AND created_at_ms >= $2 AND created_at_ms < $3 AND ($4 IS NULL OR key_hash = $4)
             GROUP BY created_at_ms / 86400000, model, COALESCE(provider_name, '')
             ORDER BY day_number DESC, usage_nanos DESC, model, provider",
        )
        .bind(account_id)
        .bind(since_ms)
        .bind(until_ms)
        .bind(key_hash)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let day: i64 = r.get("day_number");
                ActivityRow {
                    date: format_rfc3339_ms(day * DAY_MS)[..10].to_owned(),
                    model: r.get("model"),
                    provider_name: r.get("provider"),
                    usage: Money::from_nanos(r.get("usage_nanos")),
                    byok_usage: Money::from_nanos(r.get("byok_nanos")),
                    requests: r.get("requests"),
                    prompt_tokens: r.get("prompt"),
                    completion_tokens: r.get("completion"),
                    reasoning_tokens: r.get("reasoning"),
                    cached_tokens: r.get("cached"),
                }
            })
            .collect())
    }

    /// The sum of the costs of an account's generations and their number: what its
    /// `total_usage` must equal (for invariant checks).
    pub async fn sum_costs(&self, account_id: &str) -> Result<(Money, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS cost, COUNT(*) AS n
             FROM generations WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((Money::from_nanos(row.get("cost")), row.get("n")))
    }
}

/// A token count or duration as a BIGINT (saturating; no real count comes near).
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn attempts_json(attempts: &[Attempt]) -> String {
    let list: Vec<Value> = attempts
        .iter()
        .map(|a| {
            serde_json::json!({
                "provider_name": a.provider_name,
                "endpoint_tag": a.endpoint_tag,
                "model_permaslug": a.model_permaslug,
                "status": a.status,
                "latency_ms": a.latency_ms,
                "upstream_id": a.upstream_id,
                "model_id": a.model_id,
                "is_byok": a.is_byok,
            })
        })
        .collect();
    Value::Array(list).to_string()
}

/// Attempts as stored; records written before attempts named their model get the record's.
fn attempts_from_json(text: &str, model: &str) -> Vec<Attempt> {
    let list: Vec<Value> = serde_json::from_str(text).unwrap_or_default();
    list.iter()
        .map(|a| Attempt {
            provider_name: a["provider_name"].as_str().unwrap_or_default().to_owned(),
            endpoint_tag: a["endpoint_tag"].as_str().unwrap_or_default().to_owned(),
            model_permaslug: a["model_permaslug"].as_str().unwrap_or_default().to_owned(),
            status: a["status"].as_u64().map(|s| s as u16),
            latency_ms: a["latency_ms"].as_u64().unwrap_or(0),
            upstream_id: a["upstream_id"].as_str().map(str::to_owned),
            model_id: a["model_id"].as_str().unwrap_or(model).to_owned(),
            is_byok: a["is_byok"].as_bool().unwrap_or(false),
        })
        .collect()
}

fn generation_from_row(r: &AnyRow) -> GenerationRecord {
    let n = |col: &str| r.get::<i64, _>(col).max(0) as u64;
    GenerationRecord {
        id: r.get("id"),
        account_id: r.get("account_id"),
        key_hash: r.get("key_hash"),
        created_at_ms: r.get("created_at_ms"),
        model: r.get("model"),
        provider_name: r.get("provider_name"),
        upstream_id: r.get("upstream_id"),
        streamed: get_flag(r, "streamed"),
        cancelled: get_flag(r, "cancelled"),
        finish_reason: r.get("finish_reason"),
        native_finish_reason: r.get("native_finish_reason"),
        usage: Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
            cached_tokens: n("cached_tokens"),
            cache_write_tokens: n("cache_write_tokens"),
            reasoning_tokens: n("reasoning_tokens"),
            images: n("images"),
            web_searches: n("web_searches"),
        },
        cost: Money::from_nanos(r.get("cost_nanos")),
        is_byok: get_flag(r, "is_byok"),
        byok_usage: Money::from_nanos(r.get("byok_usage_nanos")),
        latency_ms: n("latency_ms"),
        generation_time_ms: n("generation_time_ms"),
        http_referer: r.get("http_referer"),
        app_title: r.get("app_title"),
        user_agent: r.get("user_agent"),
        external_user: r.get("external_user"),
        session_id: r.get("session_id"),
        attempts: attempts_from_json(r.get::<&str, _>("attempts"), r.get("model")),
        error: r.get("error"),
    }
}
