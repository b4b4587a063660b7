//! `GET /api/v1/activity`: rows per day, model and provider from the written generation records.

use crate::harness::{user, Harness};
use serde_json::{json, Value};
use std::time::Duration;
use switchyard_core::generation::format_rfc3339_ms;
use switchyard_core::keys::hash_key;
use switchyard_server::unix_ms;

/// Sends a chat request and returns its generation record once it is queued.
async fn chat(h: &Harness, model: &str) -> Value {
    let response = h
        .chat(json!({"model": model, "messages": user("Hello activity")}))
        .await;
    assert_eq!(response.status(), 200);
    let id = crate::harness::generation_id(&response);
    h.generation(&id).await
}

/// The activity rows at `query`, once `want` requests are in them (the writer is asynchronous).
async fn activity(h: &Harness, query: &str, want: u64) -> Vec<Value> {
    let mut rows = Vec::new();
    for _ in 0..100 {
        let (status, body) = h
            .get(&format!("/api/v1/activity{query}"), &h.management_key)
            .await;
        assert_eq!(status, 200, "{body}");
        rows = body["data"].as_array().unwrap().clone();
        let requests: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
        if requests >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rows
}

fn usd_nanos(value: &Value) -> i64 {
    (value.as_f64().unwrap() * 1e9).round() as i64
}

#[tokio::test]
async fn activity_aggregates_todays_requests_per_model_and_provider() {
    let h = Harness::start().await;
    let records = [
        chat(&h, "openai/gpt-4o-mini").await,
        chat(&h, "openai/gpt-4o-mini").await,
        chat(&h, "meta-llama/llama-3.3-70b-instruct").await,
    ];
    let today = &format_rfc3339_ms(unix_ms())[..10];
    let rows = activity(&h, &format!("?date={today}"), 3).await;
    assert_eq!(rows.len(), 2, "{rows:?}");

    let catalog =
        switchyard_core::catalog::Catalog::from_files(switchyard_core::catalog::BUNDLED).unwrap();
    for row in &rows {
        // Every field OpenRouter's SDKs require, with the right types.
        for field in [
            "date",
            "model",
            "model_permaslug",
            "endpoint_id",
            "provider_name",
        ] {
            assert!(row[field].is_string(), "{field} in {row}");
        }
        for field in ["usage", "byok_usage_inference"] {
            assert!(row[field].is_number(), "{field} in {row}");
        }
        for field in [
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "cached_tokens",
        ] {
            assert!(row[field].is_u64(), "{field} in {row}");
        }
        assert_eq!(row["date"], today);
        let model = row["model"].as_str().unwrap();
        assert_eq!(
            row["model_permaslug"],
            catalog.model(model).unwrap().canonical_slug
        );
        assert_eq!(row["byok_usage_inference"], 0.0);
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["model"] == model && r["provider_name"] == row["provider_name"])
            .collect();
        assert_eq!(
            row["requests"].as_u64().unwrap(),
            mine.len() as u64,
            "{row}"
        );
        let sum = |field: &str| mine.iter().map(|r| r[field].as_u64().unwrap()).sum::<u64>();
        assert_eq!(row["prompt_tokens"].as_u64().unwrap(), sum("tokens_prompt"));
        assert_eq!(
            row["completion_tokens"].as_u64().unwrap(),
            sum("tokens_completion")
        );
        assert_eq!(
            row["cached_tokens"].as_u64().unwrap(),
            sum("native_tokens_cached")
        );
        let cost: i64 = mine.iter().map(|r| usd_nanos(&r["total_cost"])).sum();
        assert_eq!(usd_nanos(&row["usage"]), cost);
    }
    let gpt = rows
        .iter()
        .find(|r| r["model"] == "openai/gpt-4o-mini")
        .unwrap();
    assert_eq!(gpt["requests"], 2);
    assert_eq!(gpt["provider_name"], "OpenAI");
    assert_eq!(gpt["endpoint_id"], "openai");

    // Filtered by key: the inference key has them all, the management key none.
    let rows = activity(
        &h,
        &format!("?date={today}&api_key_hash={}", hash_key(&h.key)),
        3,
    )
    .await;
    assert_eq!(rows.len(), 2);
    let (status, body) = h
        .get(
            &format!(
                "/api/v1/activity?date={today}&api_key_hash={}",
                hash_key(&h.management_key)
            ),
            &h.management_key,
        )
        .await;
    assert_eq!((status, body), (200, json!({"data": []})));

    // By default: the last 30 complete days, so today's requests are not in it yet.
    let (status, body) = h.get("/api/v1/activity", &h.management_key).await;
    assert_eq!((status, body), (200, json!({"data": []})));
}

#[tokio::test]
async fn activity_validates_its_query_and_needs_a_management_key() {
    let h = Harness::start().await;
    let now = unix_ms();
    let day = 86_400_000;
    let old = &format_rfc3339_ms(now - 31 * day)[..10];
    let tomorrow = &format_rfc3339_ms(now + day)[..10];
    for query in [
        format!("?date={old}"),
        format!("?date={tomorrow}"),
        "?date=2025-13-01".to_owned(),
        "?date=yesterday".to_owned(),
        "?api_key_hash=abc".to_owned(),
    ] {
        let (status, body) = h
            .get(&format!("/api/v1/activity{query}"), &h.management_key)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], 400);
    }
    let (status, body) = h.get("/api/v1/activity", &h.key).await;
    assert_eq!(status, 403, "{body}");
    let thirty_days_ago = &format_rfc3339_ms(now - 30 * day)[..10];
    let (status, body) = h
        .get(
            &format!("/api/v1/activity?date={thirty_days_ago}"),
            &h.management_key,
        )
        .await;
    assert_eq!((status, body), (200, json!({"data": []})));
}
