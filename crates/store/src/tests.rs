//! Tests of the SQLite store on a temporary file.

use super::*;

async fn temp_store() -> Store {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = std::env::temp_dir().join(format!(
        "switchyard-store-{}-{nanos}.db",
        std::process::id()
    ));
    Store::connect(path.to_str().unwrap()).await.unwrap()
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
        }],
        error: None,
    }
}

#[tokio::test]
async fn accounts_grants_keys_and_generations() {
    let store = temp_store().await;
    assert_eq!(store.count_accounts().await.unwrap(), 0);
    store.create_account("acct", "Acme", 1).await.unwrap();
    let acct = store
        .grant_credits("acct", Money::from_nanos(10_000), Some("t"), 2)
        .await
        .unwrap();
    assert_eq!(acct.balance(), Money::from_nanos(10_000));
    assert!(matches!(
        store
            .grant_credits("nope", Money::from_nanos(1), None, 2)
            .await,
        Err(StoreError::NoSuchAccount(_))
    ));

    store.insert_key(&key("h1", "acct")).await.unwrap();
    let mut disabled = key("h2", "acct");
    disabled.disabled = true;
    store.insert_key(&disabled).await.unwrap();
    assert!(store.insert_key(&key("h3", "nope")).await.is_err());
    assert_eq!(
        store.key_by_hash("h1").await.unwrap().unwrap().account_id,
        "acct"
    );
    assert_eq!(
        store
            .list_keys(Some("acct"), false, 0, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_keys(Some("acct"), true, 0, 100)
            .await
            .unwrap()
            .len(),
        2
    );

    store
        .write_batch(&[record("g1", 1_500), record("g2", 500)])
        .await
        .unwrap();
    // Writing the same record twice must not charge twice.
    store
        .write_batch(&[record("g1", 1_500)])
        .await
        .unwrap_or(());
    let acct = store.account("acct").await.unwrap().unwrap();
    assert_eq!(acct.total_usage, Money::from_nanos(2_000));
    assert_eq!(
        store.key_by_hash("h1").await.unwrap().unwrap().usage,
        Money::from_nanos(2_000)
    );
    assert_eq!(
        store.key_usage_since("h1", 0).await.unwrap(),
        Money::from_nanos(2_000)
    );
    assert_eq!(
        store.key_usage_since("h1", 2_000).await.unwrap(),
        Money::ZERO
    );

    let g = store.generation("g1", "acct").await.unwrap().unwrap();
    assert_eq!(g, record("g1", 1_500));
    assert!(store.generation("g1", "other").await.unwrap().is_none());
}

#[tokio::test]
async fn rejects_foreign_urls_and_migrates_idempotently() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::UnsupportedUrl(_))
    ));
    let store = temp_store().await;
    store.migrate().await.unwrap();
}
