//! `POST /embeddings`: floats and base64, `dimensions`, batch order, exact cost, failover, the
//! generation record, a chat model refused, auth; Azure and Gemini upstreams (`native`).
//!
//! The catalog serves `openai/text-embedding-3-small` at OpenAI and Azure ($0.02 per million
//! tokens) and `google/gemini-embedding-001` at Google AI Studio. It has no Cohere embedding
//! endpoint, so Cohere's embeddings translation is covered by core's golden tests only.

use crate::harness::{generation_id, nanos, Harness, Options};
use serde_json::{json, Value};

const SMALL: &str = "openai/text-embedding-3-small";
/// $0.00000002 per prompt token, in pico-dollars.
const SMALL_PICOS: i64 = 20_000;

async fn embed(h: &Harness, body: Value) -> reqwest::Response {
    h.http
        .post(h.url("/api/v1/embeddings"))
        .bearer_auth(&h.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn decode_base64_f32(text: &str) -> Vec<f32> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut bytes = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .filter(|&&c| c != b'=')
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        let real = chunk.iter().filter(|&&c| c != b'=').count() - 1;
        bytes.extend_from_slice(&n.to_be_bytes()[1..1 + real]);
    }
    bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn embeds_floats_and_base64_and_charges_the_exact_cost() {
    let h = Harness::start().await;
    let response = embed(
        &h,
        json!({"model": SMALL, "input": ["first input", "second", "the third one"], "dimensions": 8, "user": "u-1"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let id = generation_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["id"], id);
    assert_eq!(body["model"], SMALL);
    assert_eq!(body["provider"], "OpenAI");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 8);
    }
    // The upstream got the upstream model name, floats, dimensions and user.
    let sent = &h.sim_requests("openai").await[0];
    assert_eq!(sent["path"], "/openai/v1/embeddings");
    assert_eq!(
        sent["body"],
        json!({"model": "text-embedding-3-small", "input": ["first input", "second", "the third one"],
               "encoding_format": "float", "dimensions": 8, "user": "u-1"})
    );

    // Cost is exactly the upstream's prompt tokens times the price.
    let tokens = body["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(tokens > 0);
    assert_eq!(body["usage"]["total_tokens"], tokens);
    let want = nanos(tokens, 0, SMALL_PICOS, 0);
    assert_eq!(body["usage"]["cost"].as_f64().unwrap(), want as f64 / 1e9);
    assert_eq!(body["usage"]["is_byok"], false);
    assert_eq!(h.stored_usage_nanos(want).await, want);
    let record = h.generation(&id).await;
    assert_eq!(record["model"], SMALL);
    assert_eq!(record["provider_name"], "OpenAI");
    assert_eq!(record["streamed"], false);
    assert_eq!(record["tokens_prompt"], tokens);
    assert_eq!(record["external_user"], "u-1");
    assert_eq!(record["provider_responses"].as_array().unwrap().len(), 1);

    // The same inputs as base64 of little-endian f32s decode to the same vectors, in order.
    let response = embed(
        &h,
        json!({"model": SMALL, "input": ["first input", "second", "the third one"], "dimensions": 8, "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let b64: Value = response.json().await.unwrap();
    for (f, b) in data.iter().zip(b64["data"].as_array().unwrap()) {
        assert_eq!(
            decode_base64_f32(b["embedding"].as_str().unwrap()),
            floats(&f["embedding"])
        );
    }
    // Batch order: the second input alone embeds to the batch's second vector.
    let one: Value = embed(
        &h,
        json!({"model": SMALL, "input": "second", "dimensions": 8}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(one["data"][0]["embedding"], data[1]["embedding"]);
    // Token ids go through as they are.
    let response = embed(&h, json!({"model": SMALL, "input": [[1, 2, 3], [4]]})).await;
    assert_eq!(response.status(), 200);
    let ids: Value = response.json().await.unwrap();
    assert_eq!(ids["data"].as_array().unwrap().len(), 2);
    assert_eq!(ids["usage"]["prompt_tokens"], 4);
}

#[tokio::test]
async fn also_served_under_v1() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(h.url("/v1/embeddings"))
        .bearer_auth(&h.key)
        .json(&json!({"model": SMALL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn refuses_chat_models_bad_bodies_and_missing_keys() {
    let h = Harness::start().await;
    let response = embed(&h, json!({"model": "openai/gpt-4o-mini", "input": "hi"})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "openai/gpt-4o-mini is not an embedding model; see /api/v1/embeddings/models for those that are"
    );
    let response = embed(&h, json!({"model": SMALL, "input": [{"content": []}]})).await;
    assert_eq!(response.status(), 400);
    let response = embed(&h, json!({"model": SMALL, "input": "hi", "dimensions": -1})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "`dimensions` must be a positive integer"
    );
    // Nothing was sent upstream for any of them.
    assert!(h.sim_requests("openai").await.is_empty());

    let response = h
        .http
        .post(h.url("/api/v1/embeddings"))
        .json(&json!({"model": SMALL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = h
        .http
        .post(h.url("/api/v1/embeddings"))
        .bearer_auth("sk-or-v1-nope")
        .json(&json!({"model": SMALL, "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn fails_over_to_azure_on_a_server_error() {
    let h = Harness::with(Options {
        native: true,
        ..Options::default()
    })
    .await;
    h.sim_post("openai", "faults", json!([{"status": 500}]))
        .await;
    let response = embed(
        &h,
        json!({"model": SMALL, "input": ["a", "b"], "dimensions": 4, "provider": {"order": ["openai", "azure"]}}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let id = generation_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["provider"], "Azure");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let sent = &h.sim_requests("azure").await[0];
    assert!(
        sent["path"].as_str().unwrap().starts_with(
            "/azure/openai/deployments/text-embedding-3-small/embeddings?api-version="
        ),
        "{sent}"
    );
    assert_eq!(sent["headers"]["api-key"], "sim-key");
    let record = h.generation(&id).await;
    let attempts = record["provider_responses"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["provider_name"], "OpenAI");
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[1]["provider_name"], "Azure");
    assert_eq!(attempts[1]["status"], 200);
    // Only the successful attempt is charged.
    let tokens = body["usage"]["prompt_tokens"].as_u64().unwrap();
    let want = nanos(tokens, 0, SMALL_PICOS, 0);
    assert_eq!(h.stored_usage_nanos(want).await, want);

    // With no fallback allowed, the failure is the client's answer, and is recorded.
    h.sim_post("openai", "faults", json!([{"status": 500}]))
        .await;
    let response = embed(
        &h,
        json!({"model": SMALL, "input": "a", "provider": {"order": ["openai"], "allow_fallbacks": false}}),
    )
    .await;
    assert_eq!(response.status(), 502);
    let id = generation_id(&response);
    let record = h.generation(&id).await;
    assert_eq!(record["provider_responses"][0]["status"], 500);
}

#[tokio::test]
async fn gemini_embeddings_are_billed_on_the_estimate() {
    let h = Harness::with(Options {
        native: true,
        ..Options::default()
    })
    .await;
    // 12 and 4 bytes: 3 + 1 estimated tokens (Gemini reports no usage).
    let response = embed(
        &h,
        json!({"model": "google/gemini-embedding-001", "input": ["twelve bytes", "four"], "dimensions": 8, "input_type": "search_query", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["provider"], "Google AI Studio");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(
        decode_base64_f32(data[0]["embedding"].as_str().unwrap()).len(),
        8
    );
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(body["usage"]["prompt_tokens"], 4);
    let want = nanos(4, 0, 150_000, 0);
    assert_eq!(h.stored_usage_nanos(want).await, want);
    let sent = &h.sim_requests("google-ai-studio").await[0];
    assert_eq!(
        sent["path"],
        "/google-ai-studio/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(sent["body"]["requests"][1]["taskType"], "RETRIEVAL_QUERY");
    assert_eq!(sent["headers"]["x-goog-api-key"], "sim-key");
    // Token ids cannot be sent to Gemini: a 400 that names the reason, nothing charged.
    let response = embed(
        &h,
        json!({"model": "google/gemini-embedding-001", "input": [1, 2]}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Google AI Studio does not accept token ids as `input`; send text"
    );
}
