//! The cloud upstreams end to end with OpenAI-shaped requests: Google Vertex AI (Gemini, Claude
//! through `rawPredict`, and an open model through its OpenAI-compatible endpoint) with a
//! service account whose tokens come from the simulator, and AWS Bedrock Converse (Amazon Nova
//! and Claude through a cross-region inference profile) signed with SigV4, which the simulator
//! verifies. Tools over two turns, streamed and not, exact costs, and embeddings.

use crate::harness::{Harness, Options};
use crate::native::{data, streamed_text_and_tool_calls, tools_over_two_turns, Case};
use serde_json::{json, Value};

const CASES: [Case; 5] = [
    Case {
        model: "google/gemini-2.5-flash",
        provider: "google-vertex",
        display: "Google",
        prices: (300, 2_500),
    },
    Case {
        model: "anthropic/claude-sonnet-4.5",
        provider: "google-vertex",
        display: "Google",
        prices: (3_000, 15_000),
    },
    Case {
        model: "meta-llama/llama-3.3-70b-instruct",
        provider: "google-vertex",
        display: "Google",
        prices: (720, 720),
    },
    Case {
        model: "amazon/nova-lite-v1",
        provider: "amazon-bedrock",
        display: "Amazon Bedrock",
        prices: (60, 240),
    },
    Case {
        model: "anthropic/claude-3.5-haiku",
        provider: "amazon-bedrock",
        display: "Amazon Bedrock",
        prices: (800, 4_000),
    },
];

async fn cloud() -> Harness {
    Harness::with(Options {
        cloud: true,
        extra_config: TITAN,
        ..Options::default()
    })
    .await
}

/// A private embedding model served by Bedrock (the catalog, following OpenRouter, has none).
const TITAN: &str = r#"
[[models]]
id = "amazon/titan-embed-text-v2"
name = "Amazon: Titan Text Embeddings V2"
context_length = 8192
input_modalities = ["text"]
output_modalities = ["embeddings"]

[[endpoints]]
model = "amazon/titan-embed-text-v2"
provider = "amazon-bedrock"
upstream_model = "amazon.titan-embed-text-v2:0"
pricing = { prompt = "0.00000002", completion = "0" }
"#;

#[tokio::test]
async fn tools_over_two_turns_and_exact_costs_on_vertex_and_bedrock() {
    let h = cloud().await;
    for case in &CASES {
        tools_over_two_turns(&h, case).await;
    }
}

#[tokio::test]
async fn streamed_text_and_parallel_tool_calls_on_vertex_and_bedrock() {
    let h = cloud().await;
    for case in &CASES {
        streamed_text_and_tool_calls(&h, case).await;
    }
}

fn only(model: &str, provider: &str, extra: Value) -> Value {
    let mut body = json!({"model": model, "provider": {"only": [provider]}, "max_tokens": 32,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn vertex_calls_carry_one_cached_service_account_token_and_regional_paths() {
    let h = cloud().await;
    for model in [
        "google/gemini-2.5-flash",
        "anthropic/claude-sonnet-4.5",
        "meta-llama/llama-3.3-70b-instruct",
        "google/gemini-2.5-flash",
    ] {
        let response = h.chat(only(model, "google-vertex", json!({}))).await;
        let status = response.status();
        assert_eq!(status, 200, "{model}: {}", response.text().await.unwrap());
    }
    let requests = h.sim_requests("google-vertex").await;
    let calls: Vec<&Value> = requests
        .iter()
        .filter(|r| !r["path"].as_str().unwrap().ends_with("/token"))
        .collect();
    assert_eq!(calls.len(), 4, "{requests:?}");
    let tokens: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/token"))
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "one token exchange for four calls: {tokens:?}"
    );
    let prefix = "/google-vertex/v1/projects/switchyard-test/locations/";
    for call in &calls {
        let path = call["path"].as_str().unwrap();
        assert!(path.starts_with(prefix), "{path}");
        let auth = call["headers"]["authorization"].as_str().unwrap();
        assert!(auth.starts_with("Bearer ") && auth.len() > 20, "{auth}");
        assert!(call["headers"].get("x-goog-api-key").is_none());
    }
    let gemini = calls[0]["path"].as_str().unwrap();
    assert!(
        gemini.ends_with("/publishers/google/models/gemini-2.5-flash:generateContent"),
        "{gemini}"
    );
    let claude = calls[1];
    assert!(
        claude["path"]
            .as_str()
            .unwrap()
            .ends_with("/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"),
        "{claude}"
    );
    assert_eq!(claude["body"]["anthropic_version"], "vertex-2023-10-16");
    assert!(claude["body"].get("model").is_none(), "{claude}");
    assert!(claude["headers"].get("anthropic-version").is_none());
    let llama = calls[2];
    assert!(
        llama["path"]
            .as_str()
            .unwrap()
            .ends_with("/endpoints/openapi/chat/completions"),
        "{llama}"
    );
    assert_eq!(llama["body"]["model"], "meta/llama-3.3-70b-instruct-maas");
}

#[tokio::test]
async fn a_refused_vertex_token_is_replaced_and_the_request_still_served() {
    let h = cloud().await;
    let model = "google/gemini-2.5-flash";
    let first = h.chat(only(model, "google-vertex", json!({}))).await;
    assert_eq!(first.status(), 200);
    // Vertex stops honouring the cached token before its stated expiry (revoked, rotated).
    h.sim_post("google-vertex", "tokens", json!({"expire": true}))
        .await;
    let second = h.chat(only(model, "google-vertex", json!({}))).await;
    assert_eq!(second.status(), 200);
    assert_eq!(
        attempt_statuses(&h, &second).await,
        [json!(401), json!(200)]
    );
    let third = h.chat(only(model, "google-vertex", json!({}))).await;
    assert_eq!(attempt_statuses(&h, &third).await, [json!(200)]);
    let tokens: Vec<Value> = h
        .sim_requests("google-vertex")
        .await
        .into_iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/token"))
        .collect();
    assert_eq!(
        tokens.len(),
        2,
        "one exchange at the start, one after the refusal"
    );
}

#[tokio::test]
async fn bedrock_calls_are_signed_for_the_endpoints_region() {
    let h = cloud().await;
    for (model, tag) in [
        ("amazon/nova-lite-v1", "eu-west-1"),
        ("anthropic/claude-3.5-haiku", "us-west-2"),
    ] {
        let body = only(
            model,
            "amazon-bedrock",
            json!({"provider": {"only": [format!("amazon-bedrock/{tag}")]}}),
        );
        let response = h.chat(body).await;
        let status = response.status();
        assert_eq!(status, 200, "{model}: {}", response.text().await.unwrap());
    }
    let requests = h.sim_requests("amazon-bedrock").await;
    assert_eq!(requests.len(), 2, "{requests:?}");
    let nova = &requests[0];
    let path = nova["path"].as_str().unwrap();
    assert!(
        path == "/amazon-bedrock/model/amazon.nova-lite-v1%3A0/converse"
            || path == "/amazon-bedrock/model/amazon.nova-lite-v1:0/converse",
        "{path}"
    );
    let auth = nova["headers"]["authorization"].as_str().unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDSWITCHYARDTEST/"),
        "{auth}"
    );
    assert!(auth.contains("/eu-west-1/bedrock/aws4_request"), "{auth}");
    assert_eq!(nova["body"]["system"][0]["text"], "Be brief.");
    assert_eq!(nova["body"]["inferenceConfig"]["maxTokens"], 32);
    let haiku = &requests[1];
    assert!(
        haiku["path"]
            .as_str()
            .unwrap()
            .contains("/model/us.anthropic.claude-3-5-haiku-20241022-v1"),
        "{haiku}"
    );
    let auth = haiku["headers"]["authorization"].as_str().unwrap();
    assert!(auth.contains("/us-west-2/bedrock/aws4_request"), "{auth}");
}

#[tokio::test]
async fn an_accounts_own_aws_keys_sign_first_and_a_bad_secret_falls_back_to_the_operators() {
    let h = Harness::with(Options {
        cloud: true,
        byok: true,
        ..Options::default()
    })
    .await;
    let wrong = json!({"accessKeyId": "AKIDSWITCHYARDTEST", "secretAccessKey": "not-the-secret"});
    let response = h
        .http
        .post(h.url("/api/v1/byok"))
        .bearer_auth(&h.management_key)
        .json(&json!({"provider": "amazon-bedrock", "key": wrong.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let response = h
        .chat(only(
            "amazon/nova-lite-v1",
            "amazon-bedrock",
            json!({"provider": {"only": ["amazon-bedrock/eu-west-1"]}}),
        ))
        .await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-generation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let record = h.generation(&id).await;
    let attempts: Vec<(Value, Value)> = record["provider_responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["status"].clone(), a["is_byok"].clone()))
        .collect();
    assert_eq!(
        attempts,
        [(json!(403), json!(true)), (json!(200), json!(false))],
        "{record}"
    );
    let sent = h.sim_requests("amazon-bedrock").await;
    assert_eq!(sent.len(), 2);
    for request in &sent {
        let auth = request["headers"]["authorization"].as_str().unwrap();
        assert!(auth.contains("Credential=AKIDSWITCHYARDTEST/"), "{auth}");
    }
}

/// Statuses of a generation's attempts, in order.
async fn attempt_statuses(h: &Harness, response: &reqwest::Response) -> Vec<Value> {
    let id = response.headers()["x-generation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let record = h.generation(&id).await;
    record["provider_responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].clone())
        .collect()
}

#[tokio::test]
async fn bedrock_failures_before_content_fail_over_and_stream_exceptions_after_it_end_the_stream() {
    let h = cloud().await;
    // Before content: the next Bedrock endpoint of the model takes over.
    h.sim_post("amazon-bedrock", "faults", json!([{"status": 503}]))
        .await;
    let response = h
        .chat(only(
            "anthropic/claude-3.5-haiku",
            "amazon-bedrock",
            json!({"stream": true}),
        ))
        .await;
    assert_eq!(response.status(), 200);
    let statuses = attempt_statuses(&h, &response).await;
    let chunks = data(&response.text().await.unwrap());
    let last = chunks.last().unwrap();
    assert!(
        last["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{last}"
    );
    assert_eq!(statuses, [json!(503), json!(200)]);

    // After content: an exception event ends the stream with OpenRouter's mid-stream error chunk,
    // and only what was generated is charged.
    let mut body = only(
        "amazon/nova-lite-v1",
        "amazon-bedrock",
        json!({"stream": true, "max_tokens": 64}),
    );
    body["messages"] = json!([{"role": "user", "content": "stream-exception:throttlingException"}]);
    let response = h.chat(body).await;
    assert_eq!(response.status(), 200);
    let chunks = data(&response.text().await.unwrap());
    let text: String = chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().unwrap().clone())
        .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert!(!text.is_empty(), "content came before the exception");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "error", "{last}");
    assert_eq!(last["error"]["code"], 429, "{last}");
}

#[tokio::test]
async fn embeddings_through_vertex_and_bedrock() {
    let h = cloud().await;
    for (model, prompt_price) in [
        ("google/gemini-embedding-001", 150),
        ("amazon/titan-embed-text-v2", 20),
    ] {
        let response = h
            .http
            .post(h.url("/api/v1/embeddings"))
            .bearer_auth(&h.key)
            .json(&json!({"model": model, "input": "The quick brown fox", "dimensions": 256}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{model}: {body}");
        let vector = body["data"][0]["embedding"].as_array().unwrap();
        assert_eq!(vector.len(), 256, "{model}");
        let tokens = body["usage"]["prompt_tokens"].as_u64().unwrap();
        assert!(tokens > 0, "{body}");
        let cost = (body["usage"]["cost"].as_f64().unwrap() * 1e9).round() as u64;
        assert_eq!(cost, tokens * prompt_price, "{model}: {body}");
    }
}

#[tokio::test]
async fn user_messages_with_images_reach_bedrock_as_image_blocks() {
    let h = cloud().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let mut body = only("amazon/nova-lite-v1", "amazon-bedrock", json!({}));
    body["messages"] = json!([{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}
    ]}]);
    let response = h.chat(body).await;
    assert_eq!(response.status(), 200);
    let sent = &h.sim_requests("amazon-bedrock").await[0];
    let content = &sent["body"]["messages"][0]["content"];
    assert_eq!(content[1]["image"]["format"], "png", "{content}");
    assert_eq!(content[1]["image"]["source"]["bytes"], png);
}
