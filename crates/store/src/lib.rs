//! Switchyard's storage: the only crate that speaks SQL.
//!
//! - [`Store`]: connection, migrations, and the queries for accounts, credit grants, keys, BYOK
//!   credentials and generation records. Callers compute ids, costs and timestamps; the store writes
//!   rows as given.
//! - Charges are applied by [`Store::write_batch`], which inserts generation records and adds their
//!   costs to account and key usage in one transaction, so a record and its charge never diverge.
//!
//! Two backends behind one code path, through sqlx's `Any` driver: SQLite (embedded, the default) and
//! PostgreSQL. Every query is written once in the SQL both accept: `$1, $2…` placeholders (SQLite
//! binds `$N` by number too), integers only (flags are 0/1, money is nano-dollars in BIGINT), sums cast
//! to BIGINT (PostgreSQL would return NUMERIC, which `Any` cannot decode), `ON CONFLICT … DO NOTHING`.
//! Only the migrations differ per backend. They are embedded SQL applied in order and tracked in
//! `_switchyard_migrations` (a dozen lines here instead of sqlx's macro crate, which would add a
//! proc-macro build to every compile); each runs in a transaction that excludes other migrators
//! (`BEGIN IMMEDIATE` on SQLite, a transaction-scoped advisory lock on PostgreSQL), so processes
//! starting together on an empty database do not trip over each other.

mod generations;
mod keys;

pub use generations::ActivityRow;
pub use keys::{ByokRow, KeyRow, KeyUpdate, KeyUsage};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row, Transaction};
use switchyard_core::money::Money;

/// Embedded migrations: (version, SQL), applied in order. Both backends have the same versions.
const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_byok_and_key_models.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_byok_and_key_models.sql"),
    ),
];

/// Key of the PostgreSQL advisory lock held by a migrating transaction ("Switchyd" in ASCII).
const MIGRATION_LOCK: i64 = 0x5377_6974_6368_7964;

/// Per-connection settings of SQLite: write-ahead log, waits instead of "database is locked",
/// foreign keys enforced.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error(
        "unsupported database URL `{0}`: use a SQLite path, a sqlite:// URL or a postgres:// URL"
    )]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens the database at `url` and applies pending migrations. Accepts `sqlite://path`,
    /// `sqlite:path` or a bare file path (SQLite, created if missing), and `postgres://…` or
    /// `postgresql://…` (PostgreSQL; the database must exist).
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, any_url) = parse_url(url)?;
        let options = AnyPoolOptions::new();
        let pool = match backend {
            Backend::Sqlite => {
                options
                    .max_connections(4)
                    .after_connect(|conn, _meta| Box::pin(sqlite_pragmas(conn)))
                    .connect(&any_url)
                    .await?
            }
            Backend::Postgres => options.max_connections(8).connect(&any_url).await?,
        };
        let store = Store { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    /// `"sqlite"` or `"postgres"`.
    /// Creates an empty PostgreSQL database `name` (lowercase letters, digits, `_`) on the server of
    /// `admin_url` and returns its URL. For test suites and provisioning scripts.
    pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::UnsupportedUrl(format!(
                "database name `{name}`"
            )));
        }
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await?;
        pool.close().await;
        let (base, query) = match admin_url.split_once('?') {
            Some((base, query)) => (base, format!("?{query}")),
            None => (admin_url, String::new()),
        };
        let authority = base.find("://").map_or(0, |i| i + 3);
        let path = base[authority..]
            .find('/')
            .map_or(base.len(), |i| authority + i);
        Ok(format!("{}/{name}{query}", &base[..path]))
    }

    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Applies every embedded migration not yet applied, each in its own transaction.
    pub async fn migrate(&self) -> Result<()> {
        let (migrations, version_table) = match self.backend {
            Backend::Sqlite => (
                SQLITE_MIGRATIONS,
                "CREATE TABLE IF NOT EXISTS _switchyard_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
            ),
            Backend::Postgres => (
                POSTGRES_MIGRATIONS,
                "CREATE TABLE IF NOT EXISTS _switchyard_migrations (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
            ),
        };
        let mut tx = self.begin_migration().await?;
        sqlx::query(version_table).execute(&mut *tx).await?;
        tx.commit().await?;
        for &(version, sql) in migrations {
            // Checked inside the excluding transaction, so two migrators never apply one twice.
            let mut tx = self.begin_migration().await?;
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM _switchyard_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if applied.is_some() {
                tx.rollback().await?;
                continue;
            }
            (&mut *tx).execute(sql).await?;
            sqlx::query(
                "INSERT INTO _switchyard_migrations (version, applied_at_ms) VALUES ($1, $2)",
            )
            .bind(version)
            .bind(wall_clock_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// A transaction that excludes every other migrator until it ends.
    async fn begin_migration(&self) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(MIGRATION_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (waiting up to the
    /// busy timeout), so it can never fail later on upgrading a read lock.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => Ok(self.pool.begin().await?),
        }
    }

    // === accounts ===

    pub async fn create_account(&self, id: &str, name: &str, now_ms: i64) -> Result<Account> {
        sqlx::query("INSERT INTO accounts (id, name, created_at_ms) VALUES ($1, $2, $3)")
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
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE accounts SET total_credits_nanos = total_credits_nanos + $1 WHERE id = $2",
        )
        .bind(amount.nanos())
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NoSuchAccount(account_id.to_owned()));
        }
        sqlx::query(
            "INSERT INTO credit_grants (account_id, amount_nanos, note, created_at_ms) VALUES ($1, $2, $3, $4)",
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
}

/// The backend and the URL for sqlx's `Any` driver.
fn parse_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_owned()));
    }
    let rest = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(StoreError::UnsupportedUrl(url.to_owned()));
    } else {
        url
    };
    let (path, params) = match rest.split_once('?') {
        Some((path, params)) => (path, Some(params)),
        None => (rest, None),
    };
    // `Any` parses the URL as a URL, which SQLite's own parser does not: `#` would start a fragment,
    // and `sqlite://dir/x.db` would make `dir` a host. Escape `#` (sqlx percent-decodes the path, as
    // it always did) and use the host-less `sqlite:` form; a leading `//` would read as a host too.
    let mut path = path.replace('#', "%23");
    while path.starts_with("//") {
        path.remove(0);
    }
    let mut any_url = format!("sqlite:{path}");
    match params {
        Some(params) if params.split('&').any(|p| p.starts_with("mode=")) => {
            any_url.push('?');
            any_url.push_str(params);
        }
        Some(params) if !params.is_empty() => {
            any_url.push('?');
            any_url.push_str(params);
            any_url.push_str("&mode=rwc");
        }
        _ => any_url.push_str("?mode=rwc"),
    }
    Ok((Backend::Sqlite, any_url))
}

async fn sqlite_pragmas(conn: &mut AnyConnection) -> std::result::Result<(), sqlx::Error> {
    conn.execute(SQLITE_PRAGMAS).await?;
    Ok(())
}

/// Unix milliseconds now: only for the migrations' bookkeeping (rows of callers carry their own).
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A 0/1 flag column.
fn flag(value: bool) -> i64 {
    i64::from(value)
}

fn get_flag(r: &AnyRow, col: &str) -> bool {
    r.get::<i64, _>(col) != 0
}

const ACCOUNT_SELECT_BY_ID: &str =
    "SELECT id, name, created_at_ms, total_credits_nanos, total_usage_nanos FROM accounts WHERE id = $1";

fn account_from_row(r: &AnyRow) -> Account {
    Account {
        id: r.get("id"),
        name: r.get("name"),
        created_at_ms: r.get("created_at_ms"),
        total_credits: Money::from_nanos(r.get("total_credits_nanos")),
        total_usage: Money::from_nanos(r.get("total_usage_nanos")),
    }
}

#[cfg(test)]
mod tests;
