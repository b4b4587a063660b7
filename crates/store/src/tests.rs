//! Tests of the store, each one body run on both backends: `tests::sqlite::NAME` on a temporary
//! SQLite file, `tests::postgres::NAME` on a fresh database of the server whose admin URL is in
//! `SWITCHYARD_TEST_POSTGRES_URL` (`scripts/test.sh` starts one). Without that variable the
//! PostgreSQL runs print `SKIP postgres` on the terminal and pass.

use super::*;
use sqlx::Connection;
use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use switchyard_core::generation::{utc_window_starts, Attempt, GenerationRecord};
use switchyard_core::pricing::Usage;

const POSTGRES_ENV: &str = "SWITCHYARD_TEST_POSTGRES_URL";

/// One test per body and backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(stringify!($name), super::$name).await;
                }
            )*
        }
    };
}

on_both_backends!(
    accounts_and_grants,
    keys_insert_list_and_read_back,
    key_updates_are_partial,
    keys_are_deleted_only_by_their_account,
    write_batch_charges_each_record_once,
    key_usage_windows_split_charged_and_byok,
    free_and_byok_request_counts,
    byok_credentials,
    activity_by_day_model_and_provider,
    generations_between_for_export,
    migrations_are_idempotent,
    concurrent_connects_on_an_empty_database,
    concurrent_writers_charge_exactly,
);

// === harness ===

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `body` in a task, so that cleanup happens before a failure is reported.
async fn run_body<Fut>(body: Fut) -> std::thread::Result<()>
where
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(body).await.map_err(|e| e.into_panic())
}

async fn run_sqlite<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = std::env::temp_dir().join(format!("switchyard-store-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let result = run_body(body(url)).await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn run_postgres<F, Fut>(test: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admin = match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            // Straight to the terminal: the test harness would swallow a passing test's eprintln!.
            let line = format!(
                "SKIP postgres: {test} ({POSTGRES_ENV} is not set; scripts/test.sh sets it)\n"
            );
            let _ = std::io::stderr().write_all(line.as_bytes());
            return;
        }
    };
    let name = format!("sy_test_{}", unique_suffix());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV}={admin}: cannot connect: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let result = run_body(body(database_url(&admin, &name))).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `admin` with its database replaced by `database`.
fn database_url(admin: &str, database: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin, String::new()),
    };
    let authority = base.find("://").expect("a URL") + 3;
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    format!("{}/{database}{query}", &base[..path])
}

// === fixtures ===

async fn store_with_account(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    store.create_account("acct", "Acme", 1).await.unwrap();
    store
}

fn key(hash: &str, account: &str) -> KeyRow {
    KeyRow {
        hash: hash.into(),
        account_id: account.into(),
        name: "k".into(),
        label: "sk-or-v1-abc...1234".into(),
        is_management: false,
        disabled: false,
        limit: None,
        limit_reset: None,
        include_byok_in_limit: false,
        expires_at_ms: None,
        created_at_ms: 1,
        updated_at_ms: None,
        usage: Money::ZERO,
        allowed_models: None,
        last_used_at_ms: None,
    }
}

fn record(id: &str, cost: i64) -> GenerationRecord {
    GenerationRecord {
        id: id.into(),
        account_id: "acct".into(),
        key_hash: "h1".into(),
        created_at_ms: 1_000,
        model: "a/m".into(),
        provider_name: Some("P".into()),
        upstream_id: Some("up".into()),
        streamed: true,
        cancelled: false,
        finish_reason: Some("stop".into()),
        native_finish_reason: Some("stop".into()),
        usage: Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            ..Usage::default()
        },
        cost: Money::from_nanos(cost),
        is_byok: false,
        byok_usage: Money::ZERO,
        latency_ms: 5,
        generation_time_ms: 4,
        http_referer: Some("https://app".into()),
        app_title: Some("App".into()),
        user_agent: None,
        external_user: None,
        session_id: None,
        attempts: vec![Attempt {
            provider_name: "P".into(),
            endpoint_tag: "p".into(),
            model_permaslug: "a/m-1".into(),
            status: Some(200),
            latency_ms: 5,
            upstream_id: Some("up".into()),
            model_id: "a/m".into(),
            is_byok: false,
        }],
        error: None,
    }
}

/// A record of `key` at `at_ms` to `model`.
fn record_at(id: &str, key: &str, at_ms: i64, model: &str, cost: i64) -> GenerationRecord {
    GenerationRecord {
        key_hash: key.into(),
        created_at_ms: at_ms,
        model: model.into(),
        ..record(id, cost)
    }
}

fn byok_record(id: &str, at_ms: i64, fee: i64, usage: i64) -> GenerationRecord {
    GenerationRecord {
        is_byok: true,
        byok_usage: Money::from_nanos(usage),
        created_at_ms: at_ms,
        ..record(id, fee)
    }
}

fn nanos(n: i64) -> Money {
    Money::from_nanos(n)
}

// === bodies ===

async fn accounts_and_grants(url: String) {
    let store = Store::connect(&url).await.unwrap();
    let expected = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(store.backend(), expected);
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    let created = store.create_account("acct", "Acme", 5).await.unwrap();
    store.create_account("b", "Beta", 3).await.unwrap();
    assert!(store.create_account("acct", "Again", 6).await.is_err());
    assert_eq!(store.count_accounts().await.unwrap(), 2);
    assert_eq!(store.account("acct").await.unwrap(), Some(created));
    assert_eq!(store.account("nope").await.unwrap(), None);

    let acct = store
        .grant_credits("acct", nanos(10_000), Some("t"), 7)
        .await
        .unwrap();
    assert_eq!(acct.total_credits, nanos(10_000));
    let acct = store
        .grant_credits("acct", nanos(2_500), None, 8)
        .await
        .unwrap();
    assert_eq!(acct.balance(), nanos(12_500));
    assert!(matches!(
        store.grant_credits("nope", nanos(1), None, 2).await,
        Err(StoreError::NoSuchAccount(_))
    ));
    let grants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credit_grants")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(grants, 2);

    let ids: Vec<String> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["b", "acct"], "ordered by creation time");
}

async fn keys_insert_list_and_read_back(url: String) {
    let store = store_with_account(&url).await;
    store.create_account("other", "Other", 2).await.unwrap();
    let full = KeyRow {
        name: "full".into(),
        is_management: true,
        limit: Some(nanos(5_000_000)),
        limit_reset: Some("monthly".into()),
        include_byok_in_limit: true,
        expires_at_ms: Some(9_999),
        created_at_ms: 3,
        updated_at_ms: Some(4),
        usage: nanos(12),
        allowed_models: Some(vec!["openai/gpt-4o".into(), "a/m:free".into()]),
        ..key("h1", "acct")
    };
    store.insert_key(&full).await.unwrap();
    assert_eq!(store.key_by_hash("h1").await.unwrap(), Some(full.clone()));
    assert_eq!(store.key_by_hash("nope").await.unwrap(), None);
    // An empty list is not "every model".
    let none_allowed = KeyRow {
        allowed_models: Some(vec![]),
        created_at_ms: 2,
        ..key("h0", "acct")
    };
    store.insert_key(&none_allowed).await.unwrap();
    assert_eq!(
        store
            .key_by_hash("h0")
            .await
            .unwrap()
            .unwrap()
            .allowed_models,
        Some(vec![])
    );

    let disabled = KeyRow {
        disabled: true,
        created_at_ms: 5,
        ..key("h2", "acct")
    };
    store.insert_key(&disabled).await.unwrap();
    store.insert_key(&key("h3", "other")).await.unwrap();
    assert!(matches!(
        store.insert_key(&key("h4", "nope")).await,
        Err(StoreError::NoSuchAccount(_))
    ));
    assert!(
        store.insert_key(&key("h1", "acct")).await.is_err(),
        "same hash"
    );

    let hashes = |keys: Vec<KeyRow>| keys.into_iter().map(|k| k.hash).collect::<Vec<_>>();
    assert_eq!(
        hashes(store.list_keys(Some("acct"), false, 0, 100).await.unwrap()),
        ["h1", "h0"]
    );
    assert_eq!(
        hashes(store.list_keys(Some("acct"), true, 0, 100).await.unwrap()),
        ["h2", "h1", "h0"]
    );
    assert_eq!(
        hashes(store.list_keys(Some("acct"), true, 1, 1).await.unwrap()),
        ["h1"]
    );
    assert_eq!(
        hashes(store.list_keys(None, true, 0, 100).await.unwrap()),
        ["h2", "h1", "h0", "h3"]
    );
    assert!(store
        .list_keys(Some("nope"), true, 0, 100)
        .await
        .unwrap()
        .is_empty());
}

async fn key_updates_are_partial(url: String) {
    let store = store_with_account(&url).await;
    store.create_account("other", "Other", 2).await.unwrap();
    store.insert_key(&key("h1", "acct")).await.unwrap();

    // Nothing but updated_at_ms.
    let k = store
        .update_key("h1", "acct", &KeyUpdate::default(), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        k,
        KeyRow {
            updated_at_ms: Some(10),
            ..key("h1", "acct")
        }
    );

    let every = KeyUpdate {
        name: Some("renamed".into()),
        disabled: Some(true),
        limit: Some(Some(nanos(7))),
        limit_reset: Some(Some("daily".into())),
        include_byok_in_limit: Some(true),
        expires_at_ms: Some(Some(99)),
        allowed_models: Some(Some(vec!["x/y".into()])),
    };
    let k = store
        .update_key("h1", "acct", &every, 11)
        .await
        .unwrap()
        .unwrap();
    let expected = KeyRow {
        name: "renamed".into(),
        disabled: true,
        limit: Some(nanos(7)),
        limit_reset: Some("daily".into()),
        include_byok_in_limit: true,
        expires_at_ms: Some(99),
        allowed_models: Some(vec!["x/y".into()]),
        updated_at_ms: Some(11),
        ..key("h1", "acct")
    };
    assert_eq!(k, expected);
    assert_eq!(
        store.key_by_hash("h1").await.unwrap(),
        Some(expected.clone())
    );

    // One field at a time leaves the others.
    let k = store
        .update_key(
            "h1",
            "acct",
            &KeyUpdate {
                disabled: Some(false),
                ..KeyUpdate::default()
            },
            12,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        k,
        KeyRow {
            disabled: false,
            updated_at_ms: Some(12),
            ..expected.clone()
        }
    );

    // Some(None) clears the nullable fields.
    let clear = KeyUpdate {
        limit: Some(None),
        limit_reset: Some(None),
        expires_at_ms: Some(None),
        allowed_models: Some(None),
        ..KeyUpdate::default()
    };
    let k = store
        .update_key("h1", "acct", &clear, 13)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        k,
        KeyRow {
            disabled: false,
            limit: None,
            limit_reset: None,
            expires_at_ms: None,
            allowed_models: None,
            updated_at_ms: Some(13),
            ..expected
        }
    );

    // Another account's key, or no key: None, and nothing changes.
    assert_eq!(
        store.update_key("h1", "other", &every, 14).await.unwrap(),
        None
    );
    assert_eq!(
        store.update_key("nope", "acct", &every, 14).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .key_by_hash("h1")
            .await
            .unwrap()
            .unwrap()
            .updated_at_ms,
        Some(13)
    );
}

async fn keys_are_deleted_only_by_their_account(url: String) {
    let store = store_with_account(&url).await;
    store.create_account("other", "Other", 2).await.unwrap();
    store.insert_key(&key("h1", "acct")).await.unwrap();
    store.write_batch(&[record("g1", 100)]).await.unwrap();
    assert!(!store.delete_key("h1", "other").await.unwrap());
    assert!(store.key_by_hash("h1").await.unwrap().is_some());
    assert!(store.delete_key("h1", "acct").await.unwrap());
    assert!(store.key_by_hash("h1").await.unwrap().is_none());
    assert!(!store.delete_key("h1", "acct").await.unwrap());
    // The key's records and the account's charge stay.
    assert!(store.generation("g1", "acct").await.unwrap().is_some());
    assert_eq!(
        store.account("acct").await.unwrap().unwrap().total_usage,
        nanos(100)
    );
}

async fn write_batch_charges_each_record_once(url: String) {
    let store = store_with_account(&url).await;
    store.insert_key(&key("h1", "acct")).await.unwrap();
    store.insert_key(&key("h2", "acct")).await.unwrap();
    store.write_batch::<GenerationRecord>(&[]).await.unwrap();

    let byok = GenerationRecord {
        key_hash: "h2".into(),
        created_at_ms: 3_000,
        ..byok_record("g3", 3_000, 20, 4_000)
    };
    let failed = GenerationRecord {
        provider_name: None,
        upstream_id: None,
        finish_reason: None,
        native_finish_reason: None,
        cost: Money::ZERO,
        attempts: vec![],
        error: Some("upstream timeout".into()),
        created_at_ms: 500,
        ..record("g4", 0)
    };
    store
        .write_batch(&[
            record("g1", 1_500),
            record("g2", 500),
            byok.clone(),
            failed.clone(),
        ])
        .await
        .unwrap();
    // The same records again, alone and with a new one (a retried batch), and twice in one batch.
    store.write_batch(&[record("g1", 1_500)]).await.unwrap();
    store
        .write_batch(&[record("g2", 500), record("g5", 5), record("g5", 5)])
        .await
        .unwrap();

    let acct = store.account("acct").await.unwrap().unwrap();
    assert_eq!(acct.total_usage, nanos(1_500 + 500 + 20 + 5));
    assert_eq!(
        store.sum_costs("acct").await.unwrap(),
        (acct.total_usage, 5)
    );
    assert_eq!(store.sum_costs("nope").await.unwrap(), (Money::ZERO, 0));
    let h1 = store.key_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(h1.usage, nanos(1_500 + 500 + 5));
    assert_eq!(h1.last_used_at_ms, Some(1_000), "the newest record's time");
    let h2 = store.key_by_hash("h2").await.unwrap().unwrap();
    assert_eq!(h2.usage, nanos(20));
    assert_eq!(h2.last_used_at_ms, Some(3_000));
    // An older record does not move last use back.
    store
        .write_batch(&[record_at("g6", "h2", 10, "a/m", 0)])
        .await
        .unwrap();
    assert_eq!(
        store
            .key_by_hash("h2")
            .await
            .unwrap()
            .unwrap()
            .last_used_at_ms,
        Some(3_000)
    );

    let windows = store.key_usage("h1", 0, 2_000, 0).await.unwrap();
    assert_eq!(windows.daily, nanos(2_005));
    assert_eq!(windows.weekly, Money::ZERO);

    // Records read back as written, BYOK fields and failures included; other accounts see nothing.
    assert_eq!(
        store.generation("g1", "acct").await.unwrap(),
        Some(record("g1", 1_500))
    );
    assert_eq!(store.generation("g3", "acct").await.unwrap(), Some(byok));
    assert_eq!(store.generation("g4", "acct").await.unwrap(), Some(failed));
    assert!(store.generation("g1", "other").await.unwrap().is_none());
    assert!(store.generation("nope", "acct").await.unwrap().is_none());
}

async fn key_usage_windows_split_charged_and_byok(url: String) {
    let store = store_with_account(&url).await;
    // 2026-11-22T15:30:00Z, a Sunday: the day, the week (from Monday 16th) and the month.
    let now = 1_795_361_400_000;
    let [day, week, month] = utc_window_starts(now);
    let h = |r: GenerationRecord| GenerationRecord {
        key_hash: "h".into(),
        ..r
    };
    store
        .write_batch(&[
            h(record_at("today", "h", now, "a/m", 1)),
            h(record_at("day-start", "h", day, "a/m", 10)),
            h(record_at("this-week", "h", day - 1, "a/m", 100)),
            h(record_at("this-month", "h", week - 1, "a/m", 1_000)),
            h(record_at("last-month", "h", month - 1, "a/m", 10_000)),
            h(byok_record("byok-today", now, 2, 20)),
            h(byok_record("byok-week", week, 3, 300)),
            h(byok_record("byok-old", 5, 4, 4_000)),
            record_at("other-key", "h9", now, "a/m", 100_000),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.key_usage("h", day, week, month).await.unwrap(),
        KeyUsage {
            total: nanos(11_111 + 9),
            daily: nanos(11 + 2),
            weekly: nanos(111 + 5),
            monthly: nanos(1_111 + 5),
            byok_total: nanos(4_320),
            byok_daily: nanos(20),
            byok_weekly: nanos(320),
            byok_monthly: nanos(320),
        }
    );
    assert_eq!(
        store.key_usage("none", day, week, month).await.unwrap(),
        KeyUsage::default()
    );
}

async fn free_and_byok_request_counts(url: String) {
    let store = store_with_account(&url).await;
    store.create_account("other", "Other", 2).await.unwrap();
    let other = |r: GenerationRecord| GenerationRecord {
        account_id: "other".into(),
        ..r
    };
    store
        .write_batch(&[
            record_at("f1", "h1", 100, "meta/llama:free", 0),
            record_at("f2", "h1", 200, "google/gemma:free", 0),
            record_at("f-old", "h1", 10, "meta/llama:free", 0),
            record_at("paid", "h1", 150, "meta/llama", 5),
            record_at("case", "h1", 150, "meta/llama:FREE", 5),
            record_at("inside", "h1", 150, "x/free:freely", 5),
            other(record_at("f-other", "h1", 300, "meta/llama:free", 0)),
            byok_record("b1", 100, 1, 10),
            byok_record("b-old", 10, 1, 10),
            other(byok_record("b-other", 100, 1, 10)),
        ])
        .await
        .unwrap();
    assert_eq!(store.free_requests_since("acct", 50).await.unwrap(), 2);
    assert_eq!(store.free_requests_since("acct", 0).await.unwrap(), 3);
    assert_eq!(store.free_requests_since("acct", 201).await.unwrap(), 0);
    assert_eq!(store.free_requests_since("other", 0).await.unwrap(), 1);
    assert_eq!(
        store.count_byok_requests_since("acct", 50).await.unwrap(),
        1
    );
    assert_eq!(store.count_byok_requests_since("acct", 0).await.unwrap(), 2);
    assert_eq!(
        store.count_byok_requests_since("other", 0).await.unwrap(),
        1
    );
    assert_eq!(store.count_byok_requests_since("nope", 0).await.unwrap(), 0);
}

async fn byok_credentials(url: String) {
    let store = store_with_account(&url).await;
    store.create_account("other", "Other", 2).await.unwrap();
    let cred = |id: &str, account: &str, at: i64| ByokRow {
        id: id.into(),
        account_id: account.into(),
        provider: "openai".into(),
        name: format!("cred {id}"),
        ciphertext: "v1:nonce:opaque==".into(),
        label: "sk-...1234".into(),
        disabled: false,
        created_at_ms: at,
    };
    let second = ByokRow {
        provider: "anthropic".into(),
        disabled: true,
        ..cred("c2", "acct", 20)
    };
    store.insert_byok(&second).await.unwrap();
    store.insert_byok(&cred("c1", "acct", 10)).await.unwrap();
    store.insert_byok(&cred("c3", "other", 5)).await.unwrap();
    assert!(matches!(
        store.insert_byok(&cred("c4", "nope", 5)).await,
        Err(StoreError::NoSuchAccount(_))
    ));
    assert!(store.insert_byok(&cred("c1", "acct", 10)).await.is_err());
    assert_eq!(
        store.list_byok("acct").await.unwrap(),
        vec![cred("c1", "acct", 10), second]
    );
    assert!(store.list_byok("nope").await.unwrap().is_empty());

    assert!(!store.delete_byok("c1", "other").await.unwrap());
    assert!(store.delete_byok("c1", "acct").await.unwrap());
    assert!(!store.delete_byok("c1", "acct").await.unwrap());
    let left: Vec<String> = store
        .list_byok("acct")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, ["c2"]);
    assert_eq!(store.list_byok("other").await.unwrap().len(), 1);
}

async fn activity_by_day_model_and_provider(url: String) {
    let store = store_with_account(&url).await;
    store.create_account("other", "Other", 2).await.unwrap();
    // 2024-07-15T00:00:00Z and the next days.
    let d15 = 1_721_001_600_000;
    let d16 = d15 + 86_400_000;
    let d17 = d16 + 86_400_000;
    let with = |r: GenerationRecord, provider: Option<&str>, p: u64, c: u64, reasoning: u64| {
        GenerationRecord {
            provider_name: provider.map(str::to_owned),
            usage: Usage {
                prompt_tokens: p,
                completion_tokens: c,
                reasoning_tokens: reasoning,
                ..Usage::default()
            },
            ..r
        }
    };
    store
        .write_batch(&[
            with(record_at("a", "h1", d15, "x/a", 100), Some("P"), 10, 20, 1),
            with(record_at("b", "h1", d16 - 1, "x/a", 50), Some("P"), 1, 2, 0),
            with(record_at("c", "h2", d15 + 5, "x/a", 7), Some("Q"), 3, 4, 5),
            with(record_at("d", "h1", d15 + 9, "x/b", 500), None, 0, 0, 0),
            with(record_at("e", "h1", d16, "x/a", 1), Some("P"), 1, 1, 1),
            with(
                GenerationRecord {
                    key_hash: "h2".into(),
                    model: "x/c".into(),
                    ..byok_record("f", d16 + 100, 2, 900)
                },
                Some("P"),
                5,
                5,
                0,
            ),
            // Outside the range or the account.
            with(record_at("g", "h1", d17, "x/a", 1), Some("P"), 1, 1, 1),
            with(record_at("h", "h1", d15 - 1, "x/a", 1), Some("P"), 1, 1, 1),
            GenerationRecord {
                account_id: "other".into(),
                ..record_at("i", "h1", d15, "x/a", 1)
            },
        ])
        .await
        .unwrap();
    let row = |date: &str,
               model: &str,
               provider: &str,
               usage: i64,
               byok: i64,
               requests: i64,
               tokens: [i64; 3]| ActivityRow {
        date: date.into(),
        model: model.into(),
        provider_name: provider.into(),
        usage: nanos(usage),
        byok_usage: nanos(byok),
        requests,
        prompt_tokens: tokens[0],
        completion_tokens: tokens[1],
        reasoning_tokens: tokens[2],
        cached_tokens: 0,
    };
    assert_eq!(
        store.activity("acct", d15, d17, None).await.unwrap(),
        vec![
            row("2024-07-16", "x/c", "P", 2, 900, 1, [5, 5, 0]),
            row("2024-07-16", "x/a", "P", 1, 0, 1, [1, 1, 1]),
            row("2024-07-15", "x/b", "", 500, 0, 1, [0, 0, 0]),
            row("2024-07-15", "x/a", "P", 150, 0, 2, [11, 22, 1]),
            row("2024-07-15", "x/a", "Q", 7, 0, 1, [3, 4, 5]),
        ]
    );
    assert_eq!(
        store.activity("acct", d15, d17, Some("h2")).await.unwrap(),
        vec![
            row("2024-07-16", "x/c", "P", 2, 900, 1, [5, 5, 0]),
            row("2024-07-15", "x/a", "Q", 7, 0, 1, [3, 4, 5]),
        ]
    );
    assert!(store
        .activity("acct", d15, d17, Some("nope"))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .activity("acct", d17 + 1, d17 + 2, None)
        .await
        .unwrap()
        .is_empty());
}

async fn generations_between_for_export(url: String) {
    let store = store_with_account(&url).await;
    store.create_account("other", "Other", 2).await.unwrap();
    let other = GenerationRecord {
        account_id: "other".into(),
        ..record_at("o", "h9", 150, "a/m", 1)
    };
    store
        .write_batch(&[
            record_at("c", "h1", 300, "a/m", 1),
            record_at("a", "h1", 100, "a/m", 1),
            byok_record("b", 200, 1, 2),
            record_at("z", "h1", 100, "a/m", 1),
            record_at("late", "h1", 400, "a/m", 1),
            other.clone(),
        ])
        .await
        .unwrap();
    let ids =
        |records: Vec<GenerationRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .generations_between(Some("acct"), 100, 400)
            .await
            .unwrap()),
        ["a", "z", "b", "c"]
    );
    assert_eq!(
        ids(store.generations_between(None, 100, 400).await.unwrap()),
        ["a", "z", "o", "b", "c"]
    );
    let all = store.generations_between(None, 0, i64::MAX).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.contains(&other));
    assert!(all.contains(&byok_record("b", 200, 1, 2)));
    assert!(store
        .generations_between(Some("acct"), 401, 500)
        .await
        .unwrap()
        .is_empty());
}

async fn migrations_are_idempotent(url: String) {
    let store = store_with_account(&url).await;
    store.insert_key(&key("h1", "acct")).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let again = Store::connect(&url).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _switchyard_migrations ORDER BY version")
            .fetch_all(&again.pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    assert_eq!(again.count_accounts().await.unwrap(), 1);
    assert!(again.key_by_hash("h1").await.unwrap().is_some());
}

async fn concurrent_connects_on_an_empty_database(url: String) {
    let connects: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::connect(&url).await })
        })
        .collect();
    for connect in connects {
        let store = connect.await.unwrap().unwrap();
        assert_eq!(store.count_accounts().await.unwrap(), 0);
    }
    let store = Store::connect(&url).await.unwrap();
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _switchyard_migrations")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(versions, 2);
}

async fn concurrent_writers_charge_exactly(url: String) {
    const TASKS: usize = 20;
    const BATCHES: usize = 50;
    let store = store_with_account(&url).await;
    store.create_account("acct2", "Two", 2).await.unwrap();
    for (hash, account) in [("k1", "acct"), ("k2", "acct"), ("k3", "acct2")] {
        store.insert_key(&key(hash, account)).await.unwrap();
    }
    // Each batch: two new records on alternating keys and accounts, a retry of the task's previous
    // batch, and a record every task writes (inserted and charged by exactly one).
    let rec = |id: String, key: &str, account: &str, cost: i64| GenerationRecord {
        account_id: account.into(),
        key_hash: key.into(),
        created_at_ms: 1_000 + cost,
        ..record(&id, cost)
    };
    let batch = move |task: usize, b: usize| -> Vec<GenerationRecord> {
        let cost = (task * BATCHES + b) as i64;
        let (key_a, acct_a, key_b, acct_b) = if (task ^ b) & 1 == 0 {
            ("k1", "acct", "k3", "acct2")
        } else {
            ("k3", "acct2", "k2", "acct")
        };
        vec![
            rec(format!("t{task}-b{b}-x"), key_a, acct_a, cost),
            rec(format!("t{task}-b{b}-y"), key_b, acct_b, 7),
            rec(format!("shared-{b}"), "k2", "acct", 1_000_000),
        ]
    };
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    let mut records = batch(task, b);
                    if b > 0 {
                        records.extend(batch(task, b - 1));
                    }
                    store.write_batch(&records).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }

    // The expected charges, computed from the unique records.
    let mut unique = std::collections::BTreeMap::new();
    for task in 0..TASKS {
        for b in 0..BATCHES {
            for r in batch(task, b) {
                unique.insert(r.id.clone(), r);
            }
        }
    }
    assert_eq!(unique.len(), TASKS * BATCHES * 2 + BATCHES);
    let sum = |f: &dyn Fn(&GenerationRecord) -> bool| {
        nanos(
            unique
                .values()
                .filter(|r| f(r))
                .map(|r| r.cost.nanos())
                .sum(),
        )
    };
    for account in ["acct", "acct2"] {
        let charged = store.account(account).await.unwrap().unwrap().total_usage;
        assert_eq!(charged, sum(&|r| r.account_id == account), "{account}");
        let (costs, count) = store.sum_costs(account).await.unwrap();
        assert_eq!(costs, charged);
        assert_eq!(
            count,
            unique.values().filter(|r| r.account_id == account).count() as i64
        );
    }
    for k in ["k1", "k2", "k3"] {
        assert_eq!(
            store.key_by_hash(k).await.unwrap().unwrap().usage,
            sum(&|r| r.key_hash == k),
            "{k}"
        );
    }
}

/// Every future of the store is `Send` (the server runs them in spawned tasks); a higher-ranked
/// `Executor` bound in a query chain can silently break that, so it is checked at compile time.
#[allow(dead_code, clippy::let_underscore_future)]
fn futures_are_send(s: Store, r: &GenerationRecord, k: &KeyRow, b: &ByokRow, u: &KeyUpdate) {
    fn send<T: Send>(_: T) {}
    send(Store::connect("x"));
    send(s.migrate());
    send(s.create_account("a", "b", 1));
    send(s.count_accounts());
    send(s.account("a"));
    send(s.list_accounts());
    send(s.grant_credits("a", Money::ZERO, None, 1));
    send(s.insert_key(k));
    send(s.key_by_hash("h"));
    send(s.list_keys(None, true, 0, 1));
    send(s.update_key("h", "a", u, 1));
    send(s.delete_key("h", "a"));
    send(s.key_usage("h", 0, 0, 0));
    send(s.insert_byok(b));
    send(s.list_byok("a"));
    send(s.delete_byok("i", "a"));
    send(s.count_byok_requests_since("a", 0));
    send(s.free_requests_since("a", 0));
    send(s.write_batch(std::slice::from_ref(r)));
    send(s.generation("g", "a"));
    send(s.generations_between(None, 0, 1));
    send(s.activity("a", 0, 1, None));
    send(s.sum_costs("a"));
}

// === SQLite only ===

#[tokio::test]
async fn sqlite_url_forms_and_foreign_urls() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
    let dir = std::env::temp_dir().join(format!("switchyard-store-{}", unique_suffix()));
    let with_space = dir.join("a dir#1");
    std::fs::create_dir_all(&with_space).unwrap();
    let d = dir.display();
    for (url, file) in [
        (format!("sqlite://{d}/a.db"), dir.join("a.db")),
        (format!("sqlite:{d}/b.db"), dir.join("b.db")),
        (format!("{d}/c.db"), dir.join("c.db")),
        (format!("sqlite://{d}/d.db?cache=private"), dir.join("d.db")),
        (
            format!("{}/e.db", with_space.display()),
            with_space.join("e.db"),
        ),
    ] {
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.create_account("acct", "Acme", 1).await.unwrap();
        assert!(file.exists(), "{url} should create {}", file.display());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal", "{url}");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1, "{url}");
        store.pool.close().await;
        // Reopening finds the data.
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.count_accounts().await.unwrap(), 1, "{url}");
    }
    // A relative path, as in the default configuration.
    let (backend, any_url) = parse_url("sqlite://data/switchyard.db").unwrap();
    assert_eq!(backend, Backend::Sqlite);
    assert_eq!(any_url, "sqlite:data/switchyard.db?mode=rwc");
    assert_eq!(
        parse_url("postgresql://u@h/db").unwrap(),
        (Backend::Postgres, "postgresql://u@h/db".to_owned())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A database made by the first release (migration 1 only, with data) migrates and keeps working.
#[tokio::test]
async fn sqlite_database_of_the_first_schema_keeps_working() {
    let dir = std::env::temp_dir().join(format!("switchyard-store-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.db");
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE _switchyard_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL);
             INSERT INTO _switchyard_migrations (version, applied_at_ms) VALUES (1, 0);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::raw_sql(SQLITE_MIGRATIONS[0].1)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO accounts (id, name, created_at_ms, total_credits_nanos, total_usage_nanos) VALUES ('acct', 'Acme', 1, 5000, 1500);
             INSERT INTO api_keys (hash, account_id, name, label, is_management, disabled, created_at_ms, usage_nanos, last_used_at_ms)
               VALUES ('h1', 'acct', 'k', 'sk-or-v1-abc...1234', 0, 0, 1, 1500, 1000);
             INSERT INTO generations (id, account_id, key_hash, created_at_ms, model, provider_name, upstream_id, streamed, cancelled,
               finish_reason, native_finish_reason, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
               reasoning_tokens, images, web_searches, cost_nanos, latency_ms, generation_time_ms, http_referer, app_title,
               user_agent, external_user, session_id, attempts, error)
               VALUES ('g1', 'acct', 'h1', 1000, 'a/m', 'P', 'up', 1, 0, 'stop', 'stop', 3, 4, 0, 0, 0, 0, 0, 1500, 5, 4,
               'https://app', 'App', NULL, NULL, NULL,
               '[{\"provider_name\":\"P\",\"endpoint_tag\":\"p\",\"model_permaslug\":\"a/m-1\",\"status\":200,\"latency_ms\":5,\"upstream_id\":\"up\"}]', NULL);",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let store = Store::connect(path.to_str().unwrap()).await.unwrap();
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _switchyard_migrations ORDER BY version")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    assert_eq!(
        store.generation("g1", "acct").await.unwrap(),
        Some(record("g1", 1_500))
    );
    assert_eq!(
        store.key_by_hash("h1").await.unwrap(),
        Some(KeyRow {
            usage: nanos(1_500),
            last_used_at_ms: Some(1_000),
            ..key("h1", "acct")
        })
    );
    store.write_batch(&[record("g2", 500)]).await.unwrap();
    assert_eq!(
        store.account("acct").await.unwrap().unwrap().balance(),
        nanos(3_000)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn database_urls_for_test_databases() {
    assert_eq!(
        database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        database_url("postgres://u:p@h/postgres?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(database_url("postgres://h:1", "x"), "postgres://h:1/x");
}
