//! Switchyard's storage: the only crate that speaks SQL.
//!
//! - [`Store`]: connection, migrations, and the queries for accounts, credit grants, keys and
//!   generation records. Callers compute ids, costs and timestamps; the store writes rows as given.
//! - Charges are applied by [`Store::write_batch`], which inserts generation records and adds their
//!   costs to account and key usage in one transaction, so a record and its charge never diverge.
//!
//! SQLite is embedded and is the default. Migrations are embedded SQL applied in order and tracked in
//! `_switchyard_migrations` (a dozen lines here instead of sqlx's macro crate, which would add a
//! proc-macro build to every compile).

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use switchyard_core::generation::{Attempt, GenerationRecord};
use switchyard_core::money::Money;
use switchyard_core::pricing::Usage;

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/0001_init.sql"))];

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("unsupported database URL `{0}`: use a SQLite path or sqlite:// URL")]
    UnsupportedUrl(String),
    #[error("account `{0}` does not exist")]
    NoSuchAccount(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An account and its balance.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub total_credits: Money,
    pub total_usage: Money,
}

impl Account {
    pub fn balance(&self) -> Money {
        self.total_credits.saturating_sub(self.total_usage)
    }
}

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
}

/// The database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    /// Accepts `sqlite://path`, `sqlite:path` or a bare file path.
    pub async fn connect(url: &str) -> Result<Store> {
        let path = if let Some(rest) = url.strip_prefix("sqlite://") {
            rest
        } else if let Some(rest) = url.strip_prefix("sqlite:") {
            rest
        } else if url.contains("://") {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        } else {
            url
        };
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Store { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies every embedded migration not yet applied, each in its own transaction.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS _switchyard_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for &(version, sql) in MIGRATIONS {
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM _switchyard_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
            if applied.is_some() {
                continue;
            }
            let mut tx = self.pool.begin().await?;
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO _switchyard_migrations (version, applied_at_ms) VALUES (?, 0)",
            )
            .bind(version)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    // === accounts ===

    pub async fn create_account(&self, id: &str, name: &str, now_ms: i64) -> Result<Account> {
        sqlx::query("INSERT INTO accounts (id, name, created_at_ms) VALUES (?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(Account {
            id: id.to_owned(),
            name: name.to_owned(),
            created_at_ms: now_ms,
            total_credits: Money::ZERO,
            total_usage: Money::ZERO,
        })
    }

    pub async fn count_accounts(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn account(&self, id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(ACCOUNT_SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| account_from_row(&r)))
    }

    pub async fn list_accounts(&self) -> Result<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at_ms, total_credits_nanos, total_usage_nanos FROM accounts ORDER BY created_at_ms, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(account_from_row).collect())
    }

    /// Adds `amount` to the account's credits and records the grant.
    pub async fn grant_credits(
        &self,
        account_id: &str,
        amount: Money,
        note: Option<&str>,
        now_ms: i64,
    ) -> Result<Account> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE accounts SET total_credits_nanos = total_credits_nanos + ? WHERE id = ?",
        )
        .bind(amount.nanos())
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NoSuchAccount(account_id.to_owned()));
        }
        sqlx::query(
            "INSERT INTO credit_grants (account_id, amount_nanos, note, created_at_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(account_id)
        .bind(amount.nanos())
        .bind(note)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(ACCOUNT_SELECT_BY_ID)
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(account_from_row(&row))
    }

    // === keys ===

    pub async fn insert_key(&self, key: &KeyRow) -> Result<()> {
        if self.account(&key.account_id).await?.is_none() {
            return Err(StoreError::NoSuchAccount(key.account_id.clone()));
        }
        sqlx::query(
            "INSERT INTO api_keys (hash, account_id, name, label, is_management, disabled, limit_nanos, limit_reset,
             include_byok_in_limit, expires_at_ms, created_at_ms, updated_at_ms, usage_nanos)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.hash)
        .bind(&key.account_id)
        .bind(&key.name)
        .bind(&key.label)
        .bind(key.is_management)
        .bind(key.disabled)
        .bind(key.limit.map(Money::nanos))
        .bind(&key.limit_reset)
        .bind(key.include_byok_in_limit)
        .bind(key.expires_at_ms)
        .bind(key.created_at_ms)
        .bind(key.updated_at_ms)
        .bind(key.usage.nanos())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRow>> {
        let row = sqlx::query(&format!("{KEY_SELECT} WHERE hash = ?"))
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
            "{KEY_SELECT} WHERE (?1 IS NULL OR account_id = ?1) AND (?2 OR disabled = 0)
             ORDER BY created_at_ms DESC, hash LIMIT ?3 OFFSET ?4"
        ))
        .bind(account_id)
        .bind(include_disabled)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(key_from_row).collect())
    }

    /// Cost charged to a key since `since_ms` (for daily/weekly/monthly usage windows).
    pub async fn key_usage_since(&self, hash: &str, since_ms: i64) -> Result<Money> {
        let nanos: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(cost_nanos), 0) FROM generations WHERE key_hash = ? AND created_at_ms >= ?",
        )
        .bind(hash)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(Money::from_nanos(nanos))
    }

    // === generations ===

    /// Writes generation records and applies their costs to account and key usage, atomically.
    pub async fn write_batch(&self, records: &[GenerationRecord]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for r in records {
            let attempts = attempts_json(&r.attempts);
            let inserted = sqlx::query(
                "INSERT OR IGNORE INTO generations (id, account_id, key_hash, created_at_ms, model, provider_name, upstream_id,
                 streamed, cancelled, finish_reason, native_finish_reason, prompt_tokens, completion_tokens, cached_tokens,
                 cache_write_tokens, reasoning_tokens, images, web_searches, cost_nanos, latency_ms, generation_time_ms,
                 http_referer, app_title, user_agent, external_user, session_id, attempts, error)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.account_id)
            .bind(&r.key_hash)
            .bind(r.created_at_ms)
            .bind(&r.model)
            .bind(&r.provider_name)
            .bind(&r.upstream_id)
            .bind(r.streamed)
            .bind(r.cancelled)
            .bind(&r.finish_reason)
            .bind(&r.native_finish_reason)
            .bind(r.usage.prompt_tokens as i64)
            .bind(r.usage.completion_tokens as i64)
            .bind(r.usage.cached_tokens as i64)
            .bind(r.usage.cache_write_tokens as i64)
            .bind(r.usage.reasoning_tokens as i64)
            .bind(r.usage.images as i64)
            .bind(r.usage.web_searches as i64)
            .bind(r.cost.nanos())
            .bind(r.latency_ms as i64)
            .bind(r.generation_time_ms as i64)
            .bind(&r.http_referer)
            .bind(&r.app_title)
            .bind(&r.user_agent)
            .bind(&r.external_user)
            .bind(&r.session_id)
            .bind(attempts)
            .bind(&r.error)
            .execute(&mut *tx)
            .await?;
            // A record written twice (a retried batch) must not be charged twice.
            if inserted.rows_affected() == 0 {
                continue;
            }
            if r.cost != Money::ZERO {
                sqlx::query(
                    "UPDATE accounts SET total_usage_nanos = total_usage_nanos + ? WHERE id = ?",
                )
                .bind(r.cost.nanos())
                .bind(&r.account_id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE api_keys SET usage_nanos = usage_nanos + ?, last_used_at_ms = ? WHERE hash = ?",
            )
            .bind(r.cost.nanos())
            .bind(r.created_at_ms)
            .bind(&r.key_hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A generation of `account_id` (other accounts' generations are invisible).
    pub async fn generation(&self, id: &str, account_id: &str) -> Result<Option<GenerationRecord>> {
        let row = sqlx::query("SELECT * FROM generations WHERE id = ? AND account_id = ?")
            .bind(id)
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| generation_from_row(&r)))
    }
}

const ACCOUNT_SELECT_BY_ID: &str =
    "SELECT id, name, created_at_ms, total_credits_nanos, total_usage_nanos FROM accounts WHERE id = ?";

const KEY_SELECT: &str =
    "SELECT hash, account_id, name, label, is_management, disabled, limit_nanos, limit_reset,
    include_byok_in_limit, expires_at_ms, created_at_ms, updated_at_ms, usage_nanos FROM api_keys";

fn account_from_row(r: &sqlx::sqlite::SqliteRow) -> Account {
    Account {
        id: r.get("id"),
        name: r.get("name"),
        created_at_ms: r.get("created_at_ms"),
        total_credits: Money::from_nanos(r.get("total_credits_nanos")),
        total_usage: Money::from_nanos(r.get("total_usage_nanos")),
    }
}

fn key_from_row(r: &sqlx::sqlite::SqliteRow) -> KeyRow {
    KeyRow {
        hash: r.get("hash"),
        account_id: r.get("account_id"),
        name: r.get("name"),
        label: r.get("label"),
        is_management: r.get("is_management"),
        disabled: r.get("disabled"),
        limit: r
            .get::<Option<i64>, _>("limit_nanos")
            .map(Money::from_nanos),
        limit_reset: r.get("limit_reset"),
        include_byok_in_limit: r.get("include_byok_in_limit"),
        expires_at_ms: r.get("expires_at_ms"),
        created_at_ms: r.get("created_at_ms"),
        updated_at_ms: r.get("updated_at_ms"),
        usage: Money::from_nanos(r.get("usage_nanos")),
    }
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
            })
        })
        .collect();
    Value::Array(list).to_string()
}

fn attempts_from_json(text: &str) -> Vec<Attempt> {
    let list: Vec<Value> = serde_json::from_str(text).unwrap_or_default();
    list.iter()
        .map(|a| Attempt {
            provider_name: a["provider_name"].as_str().unwrap_or_default().to_owned(),
            endpoint_tag: a["endpoint_tag"].as_str().unwrap_or_default().to_owned(),
            model_permaslug: a["model_permaslug"].as_str().unwrap_or_default().to_owned(),
            status: a["status"].as_u64().map(|s| s as u16),
            latency_ms: a["latency_ms"].as_u64().unwrap_or(0),
            upstream_id: a["upstream_id"].as_str().map(str::to_owned),
        })
        .collect()
}

fn generation_from_row(r: &sqlx::sqlite::SqliteRow) -> GenerationRecord {
    let n = |col: &str| r.get::<i64, _>(col).max(0) as u64;
    GenerationRecord {
        id: r.get("id"),
        account_id: r.get("account_id"),
        key_hash: r.get("key_hash"),
        created_at_ms: r.get("created_at_ms"),
        model: r.get("model"),
        provider_name: r.get("provider_name"),
        upstream_id: r.get("upstream_id"),
        streamed: r.get("streamed"),
        cancelled: r.get("cancelled"),
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
        is_byok: false,
        byok_usage: Money::ZERO,
        latency_ms: n("latency_ms"),
        generation_time_ms: n("generation_time_ms"),
        http_referer: r.get("http_referer"),
        app_title: r.get("app_title"),
        user_agent: r.get("user_agent"),
        external_user: r.get("external_user"),
        session_id: r.get("session_id"),
        attempts: attempts_from_json(r.get::<&str, _>("attempts")),
        error: r.get("error"),
    }
}

#[cfg(test)]
mod tests;
