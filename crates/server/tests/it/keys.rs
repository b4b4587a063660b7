//! Keys, limits and rate limits: the key-management API, spending limits with UTC reset windows
//! (driven by a test clock), expiry, disabled keys, allow-lists and free-model quotas.

use crate::harness::{user, Harness, Options};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// 2026-11-18T12:00:00Z, a Wednesday.
const WEDNESDAY_NOON: i64 = 1_795_003_200_000;
const DAY: i64 = 86_400_000;

async fn send(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = h.http.request(method, h.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn chat_with(h: &Harness, key: &str, model: &str) -> reqwest::Response {
    h.http
        .post(h.url("/api/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": user("hi"), "max_tokens": 5}))
        .send()
        .await
        .unwrap()
}

async fn create(h: &Harness, body: Value) -> (String, Value) {
    let (status, created) = send(
        h,
        reqwest::Method::POST,
        "/api/v1/keys",
        &h.management_key,
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    (
        created["key"].as_str().unwrap().to_owned(),
        created["data"].clone(),
    )
}

#[tokio::test]
async fn key_lifecycle_through_the_management_api() {
    let h = Harness::start().await;
    let (key, data) = create(
        &h,
        json!({"name": "ci", "limit": 1.5, "limit_reset": "monthly"}),
    )
    .await;
    assert!(key.starts_with("sk-or-v1-") && key.len() == 73);
    let hash = data["hash"].as_str().unwrap().to_owned();
    assert_eq!(data["limit"], 1.5);
    assert_eq!(data["limit_remaining"], 1.5);
    assert_eq!(data["limit_reset"], "monthly");
    assert_eq!(data["disabled"], false);

    let (status, list) = send(
        &h,
        reqwest::Method::GET,
        "/api/v1/keys",
        &h.management_key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["hash"] == hash.as_str()));
    assert!(
        !list.to_string().contains(&key),
        "the plaintext key is only shown on create"
    );
    let (status, one) = send(
        &h,
        reqwest::Method::GET,
        &format!("/api/v1/keys/{hash}"),
        &h.management_key,
        None,
    )
    .await;
    assert_eq!((status, one["data"]["name"].clone()), (200, json!("ci")));

    // The new key works; inference keys cannot manage keys.
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        200
    );
    let (status, _) = send(&h, reqwest::Method::GET, "/api/v1/keys", &key, None).await;
    assert_eq!(status, 403);

    let path = format!("/api/v1/keys/{hash}");
    let (status, patched) = send(
        &h,
        reqwest::Method::PATCH,
        &path,
        &h.management_key,
        Some(json!({"disabled": true, "name": "off"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["data"]["disabled"], true);
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        401,
        "disabled at once"
    );
    let (_, list) = send(
        &h,
        reqwest::Method::GET,
        "/api/v1/keys",
        &h.management_key,
        None,
    )
    .await;
    assert!(!list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["hash"] == hash.as_str()));
    let (_, list) = send(
        &h,
        reqwest::Method::GET,
        "/api/v1/keys?include_disabled=true",
        &h.management_key,
        None,
    )
    .await;
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["hash"] == hash.as_str()));

    let (status, bad) = send(
        &h,
        reqwest::Method::PATCH,
        &path,
        &h.management_key,
        Some(json!({"limit_reset": "hourly"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("limit_reset"));
    let (status, _) = send(
        &h,
        reqwest::Method::POST,
        "/api/v1/keys",
        &h.management_key,
        Some(json!({"name": "x", "expires_at": "2030-01-01T00:00:00+02:00"})),
    )
    .await;
    assert_eq!(status, 400, "only UTC expiry timestamps");

    let (status, deleted) = send(&h, reqwest::Method::DELETE, &path, &h.management_key, None).await;
    assert_eq!((status, deleted), (200, json!({"deleted": true})));
    let (status, _) = send(&h, reqwest::Method::GET, &path, &h.management_key, None).await;
    assert_eq!(status, 404);
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        401
    );
}

#[tokio::test]
async fn management_keys_see_only_their_account() {
    let h = Harness::start().await;
    h.store
        .create_account("acct_other", "other", 0)
        .await
        .unwrap();
    let other = switchyard_server::create_key(&h.store, "acct_other", "theirs", false, None)
        .await
        .unwrap();
    let path = format!("/api/v1/keys/{}", other.row.hash);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, _) = send(&h, method, &path, &h.management_key, None).await;
        assert_eq!(status, 404);
    }
    let (status, _) = send(
        &h,
        reqwest::Method::PATCH,
        &path,
        &h.management_key,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 404);
    let (_, list) = send(
        &h,
        reqwest::Method::GET,
        "/api/v1/keys",
        &h.management_key,
        None,
    )
    .await;
    assert!(!list.to_string().contains(&other.row.hash));
}

#[tokio::test]
async fn daily_limit_resets_at_utc_midnight() {
    let clock = Arc::new(AtomicI64::new(WEDNESDAY_NOON));
    let h = Harness::with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    // Room for a handful of tiny requests.
    let (key, data) = create(
        &h,
        json!({"name": "daily", "limit": 0.00003, "limit_reset": "daily"}),
    )
    .await;
    let hash = data["hash"].as_str().unwrap().to_owned();
    let mut served = 0;
    let mut refused = None;
    for _ in 0..50 {
        let response = chat_with(&h, &key, "openai/gpt-4o-mini").await;
        if response.status() == 200 {
            served += 1;
        } else {
            refused = Some((
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            ));
            break;
        }
    }
    let (status, body) = refused.expect("the limit must stop requests");
    assert_eq!(status, 402);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Key limit exceeded for today"),
        "{body}"
    );
    assert!(served >= 1);
    // Never past the limit, in memory and in the records.
    let usage = h.stored_key_usage(&hash).await;
    assert!(
        usage <= 30_000,
        "spent {usage} nano-dollars of a 30,000 limit"
    );

    // One second before midnight: still refused. At midnight: a new day.
    clock.store(WEDNESDAY_NOON + DAY / 2 - 1_000, Ordering::SeqCst);
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        402
    );
    clock.store(WEDNESDAY_NOON + DAY / 2, Ordering::SeqCst);
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        200
    );
}

#[tokio::test]
async fn weekly_limit_resets_on_monday_and_expiry_applies() {
    let clock = Arc::new(AtomicI64::new(WEDNESDAY_NOON));
    let h = Harness::with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let (key, _) = create(
        &h,
        json!({"name": "weekly", "limit": 0.00001, "limit_reset": "weekly",
                                       "expires_at": "2026-12-01T00:00:00Z"}),
    )
    .await;
    while chat_with(&h, &key, "openai/gpt-4o-mini").await.status() == 200 {}
    // Sunday 23:59:59 is the same week; Monday 00:00 is the next.
    let monday = WEDNESDAY_NOON - DAY / 2 + 5 * DAY;
    clock.store(monday - 1_000, Ordering::SeqCst);
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        402
    );
    clock.store(monday, Ordering::SeqCst);
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        200
    );
    // 2026-12-01: expired.
    clock.store(1_796_083_200_000, Ordering::SeqCst);
    let response = chat_with(&h, &key, "openai/gpt-4o-mini").await;
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn allow_lists_restrict_models() {
    let h = Harness::start().await;
    let (key, _) = create(
        &h,
        json!({"name": "narrow", "allowed_models": ["openai/gpt-4o-mini"]}),
    )
    .await;
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        200
    );
    let response = chat_with(&h, &key, "qwen/qwen3-32b").await;
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("allowed models"));
    // /models/user lists exactly what the key may use.
    let (status, listed) = send(&h, reqwest::Method::GET, "/api/v1/models/user", &key, None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["openai/gpt-4o-mini"]);
}

#[tokio::test]
async fn free_model_quotas_and_rate_limit_headers() {
    let clock = Arc::new(AtomicI64::new(WEDNESDAY_NOON));
    let h = Harness::with(Options {
        clock: Some(clock.clone()),
        // Under the funded threshold of 10 credits: the small daily quota applies.
        credits: "5",
        extra_config: "[limits]\nfree_requests_per_minute = 2\nfree_requests_per_day = 3\nfree_requests_per_day_funded = 100\n",
        ..Options::default()
    })
    .await;
    let free = "deepseek/deepseek-v4-flash:free";
    assert_eq!(chat_with(&h, &h.key, free).await.status(), 200);
    assert_eq!(chat_with(&h, &h.key, free).await.status(), 200);
    let response = chat_with(&h, &h.key, free).await;
    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    assert_eq!(headers["x-ratelimit-limit"], "2");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert_eq!(
        headers["x-ratelimit-reset"].to_str().unwrap(),
        (WEDNESDAY_NOON + 60_000).to_string()
    );
    assert_eq!(headers["retry-after"], "60");
    // Paid models are not limited by the free quota.
    assert_eq!(
        chat_with(&h, &h.key, "openai/gpt-4o-mini").await.status(),
        200
    );
    // Next minute: one more free request, then the daily quota of 3 is used up.
    clock.store(WEDNESDAY_NOON + 60_000, Ordering::SeqCst);
    assert_eq!(chat_with(&h, &h.key, free).await.status(), 200);
    clock.store(WEDNESDAY_NOON + 120_000, Ordering::SeqCst);
    let response = chat_with(&h, &h.key, free).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["x-ratelimit-limit"], "3");
    // Granting credits past the threshold raises the daily quota (the ledger re-reads grants).
    h.store
        .grant_credits(
            &h.account,
            switchyard_core::money::Money::parse_usd("10").unwrap(),
            None,
            0,
        )
        .await
        .unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if chat_with(&h, &h.key, free).await.status() == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "the funded quota applies after the grant");
}

#[tokio::test]
async fn per_key_requests_per_minute() {
    let clock = Arc::new(AtomicI64::new(WEDNESDAY_NOON + 30_000));
    let h = Harness::with(Options {
        clock: Some(clock.clone()),
        extra_config: "[limits]\nkey_requests_per_minute = 2\n",
        ..Options::default()
    })
    .await;
    assert_eq!(
        chat_with(&h, &h.key, "openai/gpt-4o-mini").await.status(),
        200
    );
    assert_eq!(
        chat_with(&h, &h.key, "openai/gpt-4o-mini").await.status(),
        200
    );
    let response = chat_with(&h, &h.key, "openai/gpt-4o-mini").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
    clock.store(WEDNESDAY_NOON + 60_000, Ordering::SeqCst);
    assert_eq!(
        chat_with(&h, &h.key, "openai/gpt-4o-mini").await.status(),
        200
    );
}

#[tokio::test]
async fn monthly_limit_resets_on_the_first() {
    // 2026-11-30T23:59:00Z.
    let last_minute = 1_796_083_140_000;
    let clock = Arc::new(AtomicI64::new(last_minute));
    let h = Harness::with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    let (key, _) = create(
        &h,
        json!({"name": "monthly", "limit": 0.00001, "limit_reset": "monthly"}),
    )
    .await;
    while chat_with(&h, &key, "openai/gpt-4o-mini").await.status() == 200 {}
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        402
    );
    clock.store(last_minute + 60_000, Ordering::SeqCst);
    assert_eq!(
        chat_with(&h, &key, "openai/gpt-4o-mini").await.status(),
        200
    );
}

#[tokio::test]
async fn abandoned_reservations_are_released_after_the_ttl() {
    let h = Harness::with(Options {
        extra_config: "reservation_ttl_s = 60\n",
        ..Options::default()
    })
    .await;
    let key = h
        .store
        .key_by_hash(&switchyard_core::keys::hash_key(&h.key))
        .await
        .unwrap()
        .unwrap();
    let amount = switchyard_core::money::Money::from_nanos(1_000_000);
    let amounts = switchyard_server::ledger::Amounts {
        account: amount,
        key: amount,
    };
    let now = switchyard_server::unix_ms();
    let reservation = h
        .state
        .ledger
        .reserve(&h.store, &key, amounts, now)
        .await
        .unwrap();
    // A task that died without unwinding: the reservation is never dropped.
    std::mem::forget(reservation);
    assert_eq!(h.state.ledger.reserved(&h.account), amount);
    assert_eq!(h.state.ledger.sweep(now + 59_000), 0, "not before the TTL");
    assert_eq!(h.state.ledger.sweep(now + 60_000), 1);
    assert_eq!(
        h.state.ledger.reserved(&h.account),
        switchyard_core::money::Money::ZERO
    );
}

#[tokio::test]
async fn per_account_tokens_per_minute() {
    let clock = Arc::new(AtomicI64::new(WEDNESDAY_NOON));
    let h = Harness::with(Options {
        clock: Some(clock.clone()),
        extra_config: "[limits]\naccount_tokens_per_minute = 10\n",
        ..Options::default()
    })
    .await;
    // The first request is admitted (nothing used yet) and uses more than 10 tokens.
    assert_eq!(
        chat_with(&h, &h.key, "openai/gpt-4o-mini").await.status(),
        200
    );
    let response = chat_with(&h, &h.key, "openai/gpt-4o-mini").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["x-ratelimit-limit"], "10");
    assert!(response.text().await.unwrap().contains("tokens per minute"));
    clock.store(WEDNESDAY_NOON + 60_000, Ordering::SeqCst);
    assert_eq!(
        chat_with(&h, &h.key, "openai/gpt-4o-mini").await.status(),
        200
    );
}
