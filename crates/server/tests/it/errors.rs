//! Every bad input and upstream fault gets OpenRouter's envelope with the right status.

use crate::harness::{user, Harness, Options};
use serde_json::{json, Value};

async fn check(response: reqwest::Response, status: u16, message_part: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], status, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(message_part),
        "`{message}` does not contain `{message_part}`"
    );
    body
}

#[tokio::test]
async fn client_errors() {
    let h = Harness::with(Options {
        max_body_bytes: 2048,
        ..Options::default()
    })
    .await;
    let url = h.url("/api/v1/chat/completions");
    let raw = |body: &'static str| h.http.post(&url).bearer_auth(&h.key).body(body).send();

    check(raw("{not json").await.unwrap(), 400, "not valid JSON").await;
    let body = check(
        h.chat(json!({"model": "acme/nope", "messages": user("hi")}))
            .await,
        400,
        "acme/nope",
    )
    .await;
    assert_eq!(body["error"]["availability"]["code"], "model_not_found");

    let ok = json!({"model": "openai/gpt-4o-mini", "messages": user("hi")});
    check(
        h.http.post(&url).json(&ok).send().await.unwrap(),
        401,
        "No auth credentials",
    )
    .await;
    let bad_key = format!("sk-or-v1-{}", "0".repeat(64));
    check(
        h.http
            .post(&url)
            .bearer_auth(bad_key)
            .json(&ok)
            .send()
            .await
            .unwrap(),
        401,
        "no such API key",
    )
    .await;
    check(
        h.http
            .post(&url)
            .bearer_auth("nonsense")
            .json(&ok)
            .send()
            .await
            .unwrap(),
        401,
        "format",
    )
    .await;
    check(
        h.http
            .post(&url)
            .bearer_auth(&h.management_key)
            .json(&ok)
            .send()
            .await
            .unwrap(),
        403,
        "Management keys",
    )
    .await;

    let big = json!({"model": "openai/gpt-4o-mini", "messages": user(&"x".repeat(4096))});
    check(h.chat(big).await, 413, "larger than the limit").await;

    check(
        h.http.get(h.url("/api/v1/nope")).send().await.unwrap(),
        404,
        "No such endpoint",
    )
    .await;
    check(
        h.http
            .get(h.url("/api/v1/generation?id=gen-1-x"))
            .bearer_auth(&h.key)
            .send()
            .await
            .unwrap(),
        404,
        "not found",
    )
    .await;
    // Nothing above reached an upstream.
    assert!(h.sim_requests("openai").await.is_empty());
}

#[tokio::test]
async fn no_credits_is_402() {
    let h = Harness::with(Options {
        credits: "0",
        ..Options::default()
    })
    .await;
    check(
        h.chat(json!({"model": "openai/gpt-4o-mini", "messages": user("hi")}))
            .await,
        402,
        "credits",
    )
    .await;
    assert!(h.sim_requests("openai").await.is_empty());
}

#[tokio::test]
async fn too_few_credits_for_max_tokens_is_402() {
    let h = Harness::with(Options {
        credits: "0.00001",
        ..Options::default()
    })
    .await;
    let body = json!({"model": "openai/gpt-4o-mini", "messages": user("hi"), "max_tokens": 100000});
    check(h.chat(body).await, 402, "fewer max_tokens").await;
    let body = json!({"model": "openai/gpt-4o-mini", "messages": user("hi"), "max_tokens": 5});
    assert_eq!(h.chat(body).await.status(), 200);
}

#[tokio::test]
async fn upstream_faults_map_to_openrouter_errors() {
    // One endpoint failing several times would trip its breaker; this test is about the mapping.
    let h = Harness::with(Options {
        extra_config: "[routing]\noutage_min_failures = 100\n",
        ..Options::default()
    })
    .await;
    let req = json!({"model": "openai/gpt-4o-mini", "messages": user("hi")});

    h.sim_post("openai", "faults", json!([{"status": 500}]))
        .await;
    let body = check(h.chat(req.clone()).await, 502, "Provider returned error").await;
    assert_eq!(body["error"]["metadata"]["provider_name"], "OpenAI");

    h.sim_post("openai", "faults", json!([{"kind": "reset"}]))
        .await;
    let body = check(h.chat(req.clone()).await, 502, "").await;
    assert_eq!(body["error"]["metadata"]["provider_name"], "OpenAI");

    h.sim_post("openai", "faults", json!([{"kind": "malformed"}]))
        .await;
    check(h.chat(req.clone()).await, 502, "invalid response").await;

    h.sim_post(
        "openai",
        "faults",
        json!([{"status": 400, "message": "temperature is bad"}]),
    )
    .await;
    check(h.chat(req.clone()).await, 400, "temperature is bad").await;

    // Failed requests are recorded but charge nothing.
    assert_eq!(h.usage().await, 0.0);
    assert_eq!(h.chat(req.clone()).await.status(), 200);

    h.sim_post(
        "openai",
        "faults",
        json!([{"status": 429, "retry_after_s": 7}]),
    )
    .await;
    let response = h.chat(req.clone()).await;
    assert_eq!(response.headers()["retry-after"], "7");
    let body = check(response, 429, "rate limited").await;
    assert_eq!(body["error"]["metadata"]["provider_name"], "OpenAI");
    // The provider asked for 7 s: until then its only endpoint is not called at all.
    let sent = h.sim_requests("openai").await.len();
    let response = h.chat(req).await;
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=7).contains(&wait), "{wait}");
    let body = check(response, 429, "rate limited").await;
    assert_eq!(body["error"]["availability"]["code"], "capacity_exhausted");
    assert_eq!(h.sim_requests("openai").await.len(), sent);
}
