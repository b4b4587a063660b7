//! Anthropic both ways through the gateway: OpenAI-shaped requests served by the Anthropic
//! simulator, and the `/messages` ingress served by Anthropic or OpenAI-protocol upstreams.

use crate::harness::{generation_id, user, Harness};
use serde_json::{json, Value};

const HAIKU: &str = "anthropic/claude-haiku-4.5";

/// The `data:` payloads of an SSE body (without `[DONE]`), as JSON.
fn chunks(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// `(event, data)` pairs of an Anthropic SSE body.
fn events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut event = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data:") {
            out.push((event.clone(), serde_json::from_str(data.trim()).unwrap()));
        }
    }
    out
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    ])
}

#[tokio::test]
async fn openai_shaped_chat_is_served_by_anthropic() {
    let h = Harness::start().await;
    let response = h
        .chat(json!({"model": HAIKU, "max_tokens": 50,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["provider"], "Anthropic");
    assert_eq!(body["model"], HAIKU);
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert!(!body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["choices"][0]["native_finish_reason"], "end_turn");
    let sent = &h.sim_requests("anthropic").await[0];
    assert_eq!(sent["path"], "/anthropic/v1/messages");
    assert_eq!(sent["headers"]["x-api-key"], "sim-key");
    assert!(sent["headers"]["anthropic-version"].is_string());
    assert!(sent["headers"].get("authorization").is_none());
    assert_eq!(sent["body"]["model"], "claude-haiku-4-5");
    assert_eq!(sent["body"]["max_tokens"], 50);
    assert!(sent["body"]["system"].to_string().contains("Be brief."));
}

#[tokio::test]
async fn streamed_parallel_tool_calls_have_their_own_indices_and_whole_arguments() {
    let h = Harness::start().await;
    let response = h
        .chat(
            json!({"model": HAIKU, "stream": true, "tools": weather_tools(),
            "messages": user("Use get_weather and get_time for Paris")}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let chunks = chunks(&text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = None;
    for c in &chunks {
        for choice in c["choices"].as_array().unwrap() {
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_owned());
            }
            for call in choice["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = call["index"].as_u64().unwrap() as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, Default::default());
                }
                if let Some(id) = call["id"].as_str() {
                    calls[i].0 = id.to_owned();
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    calls[i].1 = name.to_owned();
                }
                calls[i].2 += call["function"]["arguments"].as_str().unwrap_or("");
            }
        }
    }
    assert_eq!(finish.as_deref(), Some("tool_calls"), "{text}");
    let names: Vec<&str> = calls.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time"], "{text}");
    for (id, name, arguments) in &calls {
        assert!(!id.is_empty(), "{name} has no id");
        let args: Value = serde_json::from_str(arguments).unwrap();
        assert!(args["city"].is_string(), "{name}: {arguments}");
    }
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["cost"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn cached_tokens_are_priced_as_cache_reads() {
    let h = Harness::start().await;
    let long = "Stable instructions to cache. ".repeat(200);
    let request = json!({"model": HAIKU, "max_tokens": 20, "messages": [
        {"role": "system", "content": [{"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "hi"}]});
    let first: Value = h.chat(request.clone()).await.json().await.unwrap();
    let second: Value = h.chat(request).await.json().await.unwrap();
    let written = first["usage"]["prompt_tokens_details"]["cache_write_tokens"]
        .as_u64()
        .unwrap();
    assert!(written > 0, "{first}");
    let usage = &second["usage"];
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert!(cached > 0, "{second}");
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let completion = usage["completion_tokens"].as_u64().unwrap();
    let write = usage["prompt_tokens_details"]["cache_write_tokens"]
        .as_u64()
        .unwrap();
    assert!(prompt >= cached + write);
    // Haiku 4.5: $1/M prompt, $0.10/M cache read, $1.25/M cache write, $5/M completion.
    let want_nanos =
        (prompt - cached - write) * 1_000 + cached * 100 + write * 1_250 + completion * 5_000;
    let cost_nanos = (usage["cost"].as_f64().unwrap() * 1e9).round() as u64;
    assert_eq!(cost_nanos, want_nanos, "{usage}");
}

#[tokio::test]
async fn messages_ingress_to_anthropic_whole_and_streamed() {
    let h = Harness::start().await;
    let url = h.url("/api/v1/messages");
    let body = json!({"model": HAIKU, "max_tokens": 64, "system": "Be brief.",
        "messages": [{"role": "user", "content": "hello"}]});
    let response = h
        .http
        .post(&url)
        .header("x-api-key", &h.key)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "some-feature-2025-01-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = generation_id(&response);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], HAIKU);
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["content"][0]["type"], "text");
    assert!(message["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(message["usage"]["cost"].as_f64().unwrap() > 0.0);
    let record = h.generation(&id).await;
    assert_eq!(record["provider_name"], "Anthropic");
    let sent = &h.sim_requests("anthropic").await[0];
    assert_eq!(sent["headers"]["anthropic-beta"], "some-feature-2025-01-01");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = h
        .http
        .post(&url)
        .bearer_auth(&h.key)
        .json(&streamed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = events(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert!(names.contains(&"content_block_start"));
    assert!(names.contains(&"content_block_delta"));
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "content_block_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    let whole: String = message["content"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(text, whole);
    let delta = &events.iter().find(|(e, _)| e == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
}

#[tokio::test]
async fn messages_ingress_to_an_openai_upstream_with_tools() {
    let h = Harness::start().await;
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 64, "stream": true,
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema":
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        "messages": [{"role": "user", "content": "Call get_weather for Rome"}]});
    let response = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &h.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = events(&response.text().await.unwrap());
    let start = events
        .iter()
        .find(|(e, d)| e == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    let json: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    let input: Value = serde_json::from_str(&json).unwrap();
    assert!(input["city"].is_string());
    let delta = &events.iter().find(|(e, _)| e == "message_delta").unwrap().1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(h.sim_requests("openai").await.len(), 1);
}

#[tokio::test]
async fn messages_errors_use_anthropics_envelope() {
    let h = Harness::start().await;
    let url = h.url("/api/v1/messages");
    let response = h
        .http
        .post(&url)
        .json(&json!({"model": HAIKU, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let response = h
        .http
        .post(&url)
        .header("x-api-key", &h.key)
        .json(&json!({"model": "acme/nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // An upstream overload is Anthropic's overloaded error.
    h.sim_post("anthropic", "faults", json!([{"status": 529}]))
        .await;
    let response = h
        .http
        .post(&url)
        .header("x-api-key", &h.key)
        .json(&json!({"model": HAIKU, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert!(body["request_id"].as_str().unwrap().starts_with("gen-"));

    let response = h
        .http
        .post(h.url("/api/v1/messages/count_tokens"))
        .header("x-api-key", &h.key)
        .json(&json!({"model": HAIKU, "messages": [{"role": "user", "content": "count these words please"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["input_tokens"].as_u64().unwrap() > 0);
}
