//! Non-streaming chat: response shape, cost, the generation record, credits, failover.

use crate::harness::{nanos, user, Harness};
use serde_json::json;

#[tokio::test]
async fn non_streaming_chat_is_billed_exactly_and_recorded() {
    let h = Harness::start().await;
    let response = h
        .chat(
            json!({"model": "openai/gpt-4o-mini", "messages": user("Hello there"), "user": "u-7"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let generation_id = crate::harness::generation_id(&response);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], generation_id.as_str());
    assert!(generation_id.starts_with("gen-"));
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "openai/gpt-4o-mini");
    assert_eq!(body["provider"], "OpenAI");
    assert!(body.get("system_fingerprint").is_some());
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["native_finish_reason"], "stop");
    assert!(!choice["message"]["content"].as_str().unwrap().is_empty());

    let usage = &body["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0);
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), p + c);
    let want = nanos(p, c, 150_000, 600_000);
    assert_eq!((usage["cost"].as_f64().unwrap() * 1e9).round() as i64, want);

    // The upstream got the upstream model name and none of our extensions.
    let sent = h.sim_requests("openai").await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["body"]["model"], "gpt-4o-mini");
    assert_eq!(sent[0]["headers"]["authorization"], "Bearer sim-key");

    let record = h.generation(&generation_id).await;
    assert_eq!(record["model"], "openai/gpt-4o-mini");
    assert_eq!(record["provider_name"], "OpenAI");
    assert_eq!(record["tokens_prompt"].as_u64().unwrap(), p);
    assert_eq!(record["tokens_completion"].as_u64().unwrap(), c);
    assert_eq!(record["streamed"], false);
    assert_eq!(record["cancelled"], false);
    assert_eq!(record["finish_reason"], "stop");
    assert_eq!(record["http_referer"], "https://example.test");
    assert_eq!(record["app_title"], "Harness");
    assert_eq!(record["external_user"], "u-7");
    assert_eq!(record["provider_responses"][0]["status"], 200);
    assert_eq!(
        (record["total_cost"].as_f64().unwrap() * 1e9).round() as i64,
        want
    );

    // Credits went down by exactly the recorded cost, in memory and in the database.
    assert_eq!((h.usage().await * 1e9).round() as i64, want);
    assert_eq!(h.stored_usage_nanos(want).await, want);
}

#[tokio::test]
async fn v1_alias_and_key_and_credits_endpoints() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.key)
        .json(&json!({"model": "openai/gpt-4o-mini", "messages": user("hi")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = crate::harness::generation_id(&response);
    let cost = h.generation(&id).await["total_cost"].as_f64().unwrap();
    // Wait for the charge to reach the database, which /key reads.
    h.stored_usage_nanos((cost * 1e9).round() as i64).await;

    let (status, key) = h.get("/api/v1/key", &h.key).await;
    assert_eq!(status, 200, "{key}");
    let data = &key["data"];
    assert!(data["label"].as_str().unwrap().starts_with("sk-or-v1-"));
    assert_eq!(data["is_management_key"], false);
    assert_eq!(data["limit"], serde_json::Value::Null);
    assert!((data["usage"].as_f64().unwrap() - cost).abs() < 1e-12);
    assert!((data["usage_daily"].as_f64().unwrap() - cost).abs() < 1e-12);
    assert_eq!(data["is_free_tier"], false);

    let (status, credits) = h.get("/api/v1/credits", &h.management_key).await;
    assert_eq!(status, 200);
    assert_eq!(credits["data"]["total_credits"], 10.0);
}

#[tokio::test]
async fn fails_over_to_the_next_provider_before_any_byte() {
    let h = Harness::start().await;
    // Llama 3.3 is cheapest on DeepInfra, then Groq. DeepInfra fails; Groq serves.
    h.sim_post("deepinfra", "faults", json!([{"status": 500}]))
        .await;
    let response = h
        .chat(json!({"model": "meta-llama/llama-3.3-70b-instruct", "messages": user("hi"), "provider": {"sort": "price"}}))
        .await;
    assert_eq!(response.status(), 200);
    let id = crate::harness::generation_id(&response);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["provider"], "Groq");
    let record = h.generation(&id).await;
    let attempts = record["provider_responses"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["provider_name"], "DeepInfra");
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[1]["provider_name"], "Groq");
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(
        h.sim_requests("groq").await[0]["body"]["model"],
        "llama-3.3-70b-versatile"
    );
}

#[tokio::test]
async fn models_list_falls_back_across_models() {
    let h = Harness::start().await;
    h.sim_post("openai", "faults", json!([{"status": 503}]))
        .await;
    let response = h
        .chat(json!({"models": ["openai/gpt-4o-mini", "qwen/qwen3-32b"], "messages": user("hi")}))
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["model"], "qwen/qwen3-32b");
}

#[tokio::test]
async fn provider_preferences_choose_and_constrain_endpoints() {
    let h = Harness::start().await;
    let llama = "meta-llama/llama-3.3-70b-instruct";
    let served_by = |body: serde_json::Value| body["provider"].as_str().unwrap().to_owned();
    for (provider, want) in [
        (json!({"order": ["groq"], "allow_fallbacks": false}), "Groq"),
        (json!({"only": ["together"]}), "Together"),
        (json!({"ignore": ["deepinfra", "groq"]}), "Together"),
        (json!({"order": ["Groq"]}), "Groq"),
    ] {
        let response = h
            .chat(json!({"model": llama, "messages": user("hi"), "provider": provider}))
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(served_by(response.json().await.unwrap()), want);
    }
    // With fallbacks off, a failing chosen provider is not replaced by another.
    h.sim_post("groq", "faults", json!([{"status": 500}])).await;
    let response = h
        .chat(json!({"model": llama, "messages": user("hi"), "provider": {"order": ["groq"], "allow_fallbacks": false}}))
        .await;
    assert_eq!(response.status(), 502);
    // Preferences no endpoint satisfies: 404 with the reasons.
    let response = h
        .chat(json!({"model": llama, "messages": user("hi"), "provider": {"max_price": {"prompt": 0.01}}}))
        .await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["availability"]["code"], "constraint_filtered");
    assert_eq!(
        body["error"]["availability"]["excluded_by"],
        json!(["max_price"])
    );
    // Malformed preferences: 400 naming the field.
    let response = h
        .chat(json!({"model": llama, "messages": user("hi"), "provider": {"sort": "fastest"}}))
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("provider.sort"));
}
