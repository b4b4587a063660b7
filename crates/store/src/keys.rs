//! API keys (stored as hashes), their partial updates and usage, and BYOK credentials.

use crate::{flag, get_flag, Result, Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;
use switchyard_core::money::Money;

/// A stored key (never the key itself).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub hash: String,
    pub account_id: String,
    pub name: String,
    pub label: String,
    pub is_management: bool,
    pub disabled: bool,
    pub limit: Option<Money>,
    pub limit_reset: Option<String>,
    pub include_byok_in_limit: bool,
    pub expires_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub updated_at_ms: Option<i64>,
    pub usage: Money,
    /// Model ids the key may use; `None` allows every model.
    pub allowed_models: Option<Vec<String>>,
    /// When the key was last charged (the newest record written by `write_batch`); not written by
    /// `insert_key`.
    pub last_used_at_ms: Option<i64>,
}

/// Partial update; `None` leaves a field as is, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    pub limit: Option<Option<Money>>,
    pub limit_reset: Option<Option<String>>,
    pub include_byok_in_limit: Option<bool>,
    pub expires_at_ms: Option<Option<i64>>,
    pub allowed_models: Option<Option<Vec<String>>>,
}

/// Usage of a key: total and since each window start, split into charged cost and BYOK-equivalent
/// usage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KeyUsage {
    pub total: Money,
    pub daily: Money,
    pub weekly: Money,
    pub monthly: Money,
    pub byok_total: Money,
    pub byok_daily: Money,
    pub byok_weekly: Money,
    pub byok_monthly: Money,
}

/// An account's own provider credential. The ciphertext is opaque to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ByokRow {
    pub id: String,
    pub account_id: String,
    pub provider: String,
    pub name: String,
    pub ciphertext: String,
    /// A masked hint such as `sk-...1234`.
    pub label: String,
    pub disabled: bool,
    pub created_at_ms: i64,
}

/// A bind value of a query built at run time.
enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

impl Store {
    // === keys ===

    pub async fn insert_key(&self, key: &KeyRow) -> Result<()> {
        if self.account(&key.account_id).await?.is_none() {
            return Err(StoreError::NoSuchAccount(key.account_id.clone()));
        }
        sqlx::query(
            "INSERT INTO api_keys (hash, account_id, name, label, is_management, disabled, limit_nanos, limit_reset,
             include_byok_in_limit, expires_at_ms, created_at_ms, updated_at_ms, usage_nanos, allowed_models)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&key.hash)
        .bind(&key.account_id)
        .bind(&key.name)
        .bind(&key.label)
        .bind(flag(key.is_management))
        .bind(flag(key.disabled))
        .bind(key.limit.map(Money::nanos))
        .bind(&key.limit_reset)
        .bind(flag(key.include_byok_in_limit))
        .bind(key.expires_at_ms)
        .bind(key.created_at_ms)
        .bind(key.updated_at_ms)
        .bind(key.usage.nanos())
        .bind(key.allowed_models.as_deref().map(models_json))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRow>> {
        let row = sqlx::query(&format!("{KEY_SELECT} WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| key_from_row(&r)))
    }

    /// Keys of an account, newest first; `account_id = None` lists every account's keys.
    pub async fn list_keys(
        &self,
        account_id: Option<&str>,
        include_disabled: bool,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<KeyRow>> {
        let rows = sqlx::query(&format!(
            "{KEY_SELECT} WHERE ($1 IS NULL OR account_id = $1) AND ($2 = 1 OR disabled = 0)
             ORDER BY created_at_ms DESC, hash LIMIT $3 OFFSET $4"
        ))
        .bind(account_id)
        .bind(flag(include_disabled))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(key_from_row).collect())
    }

    /// Applies `update` to the key `hash` of `account_id` and sets its `updated_at_ms`; returns the
    /// updated key, or `None` if that account has no such key.
    pub async fn update_key(
        &self,
        hash: &str,
        account_id: &str,
        update: &KeyUpdate,
        now_ms: i64,
    ) -> Result<Option<KeyRow>> {
        let mut sets: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let mut set = |column: &str, arg: Arg| {
            args.push(arg);
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(name) = &update.name {
            set("name", Arg::Text(Some(name.clone())));
        }
        if let Some(disabled) = update.disabled {
            set("disabled", Arg::Int(Some(flag(disabled))));
        }
        if let Some(limit) = update.limit {
            set("limit_nanos", Arg::Int(limit.map(Money::nanos)));
        }
        if let Some(reset) = &update.limit_reset {
            set("limit_reset", Arg::Text(reset.clone()));
        }
        if let Some(include) = update.include_byok_in_limit {
            set("include_byok_in_limit", Arg::Int(Some(flag(include))));
        }
        if let Some(expires) = update.expires_at_ms {
            set("expires_at_ms", Arg::Int(expires));
        }
        if let Some(models) = &update.allowed_models {
            set(
                "allowed_models",
                Arg::Text(models.as_deref().map(models_json)),
            );
        }
        set("updated_at_ms", Arg::Int(Some(now_ms)));
        let n = args.len();
        let sql = format!(
            "UPDATE api_keys SET {} WHERE hash = ${} AND account_id = ${}",
            sets.join(", "),
            n + 1,
            n + 2
        );
        let mut query = sqlx::query(&sql);
        for arg in args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        let mut tx = self.begin_write().await?;
        let updated = query.bind(hash).bind(account_id).execute(&mut *tx).await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query(&format!("{KEY_SELECT} WHERE hash = $1"))
            .bind(hash)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(key_from_row(&row)))
    }

    /// Deletes the key `hash` of `account_id`; `false` if that account has no such key. Its
    /// generation records stay.
    pub async fn delete_key(&self, hash: &str, account_id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM api_keys WHERE hash = $1 AND account_id = $2")
            .bind(hash)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }

    /// Usage of a key, in total and since each window start (see
    /// `switchyard_core::generation::utc_window_starts`), in one query.
    pub async fn key_usage(
        &self,
        hash: &str,
        day_start_ms: i64,
        week_start_ms: i64,
        month_start_ms: i64,
    ) -> Result<KeyUsage> {
        let row = sqlx::query(
            "SELECT
               CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) AS total,
               CAST(COALESCE(SUM(CASE WHEN created_at_ms >= $2 THEN cost_nanos ELSE 0 END), 0) AS BIGINT) AS daily,
               CAST(COALESCE(SUM(CASE WHEN created_at_ms >= $3 THEN cost_nanos ELSE 0 END), 0) AS BIGINT) AS weekly,
               CAST(COALESCE(SUM(CASE WHEN created_at_ms >= $4 THEN cost_nanos ELSE 0 END), 0) AS BIGINT) AS monthly,
               CAST(COALESCE(SUM(byok_usage_nanos), 0) AS BIGINT) AS byok_total,
               CAST(COALESCE(SUM(CASE WHEN created_at_ms >= $2 THEN byok_usage_nanos ELSE 0 END), 0) AS BIGINT) AS byok_daily,
               CAST(COALESCE(SUM(CASE WHEN created_at_ms >= $3 THEN byok_usage_nanos ELSE 0 END), 0) AS BIGINT) AS byok_weekly,
               CAST(COALESCE(SUM(CASE WHEN created_at_ms >= $4 THEN byok_usage_nanos ELSE 0 END), 0) AS BIGINT) AS byok_monthly
             FROM generations WHERE key_hash = $1",
        )
        .bind(hash)
        .bind(day_start_ms)
        .bind(week_start_ms)
        .bind(month_start_ms)
        .fetch_one(&self.pool)
        .await?;
        let m = |col: &str| Money::from_nanos(row.get(col));
        Ok(KeyUsage {
            total: m("total"),
            daily: m("daily"),
            weekly: m("weekly"),
            monthly: m("monthly"),
            byok_total: m("byok_total"),
            byok_daily: m("byok_daily"),
            byok_weekly: m("byok_weekly"),
            byok_monthly: m("byok_monthly"),
        })
    }

    // === BYOK credentials ===

    pub async fn insert_byok(&self, row: &ByokRow) -> Result<()> {
        if self.account(&row.account_id).await?.is_none() {
            return Err(StoreError::NoSuchAccount(row.account_id.clone()));
        }
        sqlx::query(
            "INSERT INTO byok_credentials (id, account_id, provider, name, ciphertext, label, disabled, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.id)
        .bind(&row.account_id)
        .bind(&row.provider)
        .bind(&row.name)
        .bind(&row.ciphertext)
        .bind(&row.label)
        .bind(flag(row.disabled))
        .bind(row.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An account's credentials, oldest first.
    pub async fn list_byok(&self, account_id: &str) -> Result<Vec<ByokRow>> {
        let rows = sqlx::query(
            "SELECT id, account_id, provider, name, ciphertext, label, disabled, created_at_ms
             FROM byok_credentials WHERE account_id = $1 ORDER BY created_at_ms, id",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(byok_from_row).collect())
    }

    /// Deletes a credential of `account_id`; `false` if that account has no such credential.
    pub async fn delete_byok(&self, id: &str, account_id: &str) -> Result<bool> {
        let deleted = sqlx::query("DELETE FROM byok_credentials WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account_id)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() > 0)
    }
}

const KEY_SELECT: &str =
    "SELECT hash, account_id, name, label, is_management, disabled, limit_nanos, limit_reset,
    include_byok_in_limit, expires_at_ms, created_at_ms, updated_at_ms, usage_nanos, allowed_models,
    last_used_at_ms FROM api_keys";

fn models_json(models: &[String]) -> String {
    serde_json::Value::from(models).to_string()
}

fn key_from_row(r: &AnyRow) -> KeyRow {
    KeyRow {
        hash: r.get("hash"),
        account_id: r.get("account_id"),
        name: r.get("name"),
        label: r.get("label"),
        is_management: get_flag(r, "is_management"),
        disabled: get_flag(r, "disabled"),
        limit: r
            .get::<Option<i64>, _>("limit_nanos")
            .map(Money::from_nanos),
        limit_reset: r.get("limit_reset"),
        include_byok_in_limit: get_flag(r, "include_byok_in_limit"),
        expires_at_ms: r.get("expires_at_ms"),
        created_at_ms: r.get("created_at_ms"),
        updated_at_ms: r.get("updated_at_ms"),
        usage: Money::from_nanos(r.get("usage_nanos")),
        // Only this crate writes the column; were it ever unreadable, allow nothing rather than all.
        allowed_models: r
            .get::<Option<&str>, _>("allowed_models")
            .map(|text| serde_json::from_str(text).unwrap_or_default()),
        last_used_at_ms: r.get("last_used_at_ms"),
    }
}

fn byok_from_row(r: &AnyRow) -> ByokRow {
    ByokRow {
        id: r.get("id"),
        account_id: r.get("account_id"),
        provider: r.get("provider"),
        name: r.get("name"),
        ciphertext: r.get("ciphertext"),
        label: r.get("label"),
        disabled: get_flag(r, "disabled"),
        created_at_ms: r.get("created_at_ms"),
    }
}
