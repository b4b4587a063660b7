//! End-to-end tests of the simulator over real HTTP: the OpenAI and Anthropic wire formats,
//! determinism, pacing, tools, thinking, prompt caching, structured output, embeddings, every
//! fault kind and the control API.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};

/// JSON bodies without reqwest's `json` feature.
trait JsonRequest {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonRequest for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }
}

trait JsonResponse {
    async fn json_value(self) -> Value;
}

impl JsonResponse for reqwest::Response {
    async fn json_value(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

/// A simulator on an ephemeral port, living as long as the test's runtime.
struct Sim {
    base: String,
    client: reqwest::Client,
}

async fn start() -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(switchyard_simulator::serve(
        listener,
        std::future::pending(),
    ));
    Sim {
        base,
        client: reqwest::Client::new(),
    }
}

impl Sim {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth("sk-test")
            .json_body(body)
            .send()
            .await
            .unwrap()
    }

    async fn chat(&self, upstream: &str, body: &Value) -> Value {
        let response = self
            .post(&format!("/{upstream}/v1/chat/completions"), body)
            .await;
        assert_eq!(response.status(), 200);
        response.json_value().await
    }

    /// The `data:` payloads of a streamed chat completion.
    async fn stream(&self, upstream: &str, body: &Value) -> Vec<String> {
        let response = self
            .post(&format!("/{upstream}/v1/chat/completions"), body)
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        sse_events(&response.text().await.unwrap())
    }

    async fn control(&self, upstream: &str, what: &str, body: &Value) {
        let response = self
            .client
            .post(self.url(&format!("/_sim/{upstream}/{what}")))
            .json_body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

fn sse_events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

fn chunks(events: &[String]) -> Vec<Value> {
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

/// The fixed tokenizer, restated: ASCII alphanumeric runs or single other non-space chars.
fn tokens(text: &str) -> u64 {
    let mut n = 0;
    let mut word = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            n += u64::from(!word);
            word = true;
        } else {
            word = false;
            n += u64::from(!c.is_whitespace());
        }
    }
    n
}

fn basic_body() -> Value {
    json!({
        "model": "gpt-sim",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hello, world!"}
        ]
    })
}

#[tokio::test]
async fn chat_completion_shape_usage_and_determinism() {
    let sim = start().await;
    let reply = sim.chat("openai", &basic_body()).await;
    assert!(reply["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(reply["object"], "chat.completion");
    assert!(reply["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(reply["model"], "gpt-sim");
    assert_eq!(reply["service_tier"], "default");
    assert_eq!(reply["system_fingerprint"], "fp_sim");
    let choice = &reply["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["refusal"], Value::Null);
    assert_eq!(message["annotations"], json!([]));
    assert!(message.get("tool_calls").is_none());
    let content = message["content"].as_str().unwrap();
    assert_eq!(content.split(' ').count(), 16);
    assert!(content.chars().all(|c| c.is_ascii_lowercase() || c == ' '));

    // Per message 3 + role + content; 3 more priming the reply.
    let prompt = (3 + 1 + tokens("You are terse.")) + (3 + 1 + tokens("Hello, world!")) + 3;
    assert_eq!(prompt, 19);
    let usage = &reply["usage"];
    assert_eq!(usage["prompt_tokens"], prompt);
    assert_eq!(usage["completion_tokens"], 16);
    assert_eq!(usage["total_tokens"], prompt + 16);
    assert_eq!(
        usage["prompt_tokens_details"],
        json!({"cached_tokens": 0, "audio_tokens": 0})
    );
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);

    let again = sim.chat("openai", &basic_body()).await;
    assert_eq!(again["choices"][0]["message"]["content"], content);
    assert_ne!(again["id"], reply["id"], "ids stay unique across replays");
    let mut other = basic_body();
    other["messages"][1]["content"] = json!("Something else entirely");
    let other = sim.chat("openai", &other).await;
    assert_ne!(other["choices"][0]["message"]["content"], content);
}

#[tokio::test]
async fn max_tokens_caps_with_length() {
    let sim = start().await;
    for key in ["max_tokens", "max_completion_tokens"] {
        let mut body = basic_body();
        body[key] = json!(5);
        let reply = sim.chat("openai", &body).await;
        assert_eq!(reply["choices"][0]["finish_reason"], "length");
        assert_eq!(
            reply["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .split(' ')
                .count(),
            5
        );
        assert_eq!(reply["usage"]["completion_tokens"], 5);
    }
    let mut body = basic_body();
    body["max_tokens"] = json!(100);
    assert_eq!(
        sim.chat("openai", &body).await["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn streaming_matches_non_streaming() {
    let sim = start().await;
    let plain = sim.chat("openai", &basic_body()).await;

    let mut body = basic_body();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let all = chunks(&sim.stream("openai", &body).await);
    let first = &all[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "gpt-sim");
    assert_eq!(first["system_fingerprint"], "fp_sim");
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let id = first["id"].clone();
    assert!(all.iter().all(|c| c["id"] == id));

    let (usage_chunk, rest) = all.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], plain["usage"]);
    assert!(rest
        .iter()
        .all(|c| c["usage"].is_null() && c.get("usage").is_some()));
    let (finish, content_chunks) = rest.split_last().unwrap();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let content: String = content_chunks[1..]
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["finish_reason"].is_null());
            c["choices"][0]["delta"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        content,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(content_chunks.len() - 1, 16, "one chunk per token");

    // Without include_usage: no usage chunk, no usage field.
    body.as_object_mut().unwrap().remove("stream_options");
    let all = chunks(&sim.stream("openai", &body).await);
    assert!(all.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(all.last().unwrap()["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn ttft_and_rate_pace_the_answer() {
    let sim = start().await;
    sim.control(
        "paced",
        "behaviour",
        &json!({"ttft_ms": 150, "tokens_per_s": 100, "output_tokens": 5}),
    )
    .await;
    let mut body = basic_body();
    body["stream"] = json!(true);
    let started = Instant::now();
    let response = sim.post("/paced/v1/chat/completions", &body).await;
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "headers come at once"
    );
    let mut stream = response.bytes_stream();
    let mut first_content = None;
    let mut text = String::new();
    while let Some(bytes) = stream.next().await {
        text.push_str(std::str::from_utf8(&bytes.unwrap()).unwrap());
        if first_content.is_none() && text.contains(r#""delta":{"content""#) {
            first_content = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    assert!(first_content.unwrap() >= Duration::from_millis(150));
    // 4 more tokens at 100/s after the first.
    assert!(total >= Duration::from_millis(190), "{total:?}");
    assert!(text.ends_with("data: [DONE]\n\n"));

    body["stream"] = json!(false);
    let started = Instant::now();
    sim.chat("paced", &body).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "ttft + 5 tokens at 100/s"
    );
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7}
                },
                "required": ["city", "unit"],
                "additionalProperties": false
            }
        }},
        {"type": "function", "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
        }}
    ])
}

fn tool_body(prompt: &str) -> Value {
    json!({"model": "gpt-sim", "messages": [{"role": "user", "content": prompt}], "tools": weather_tools()})
}

fn check_weather_args(arguments: &str) {
    let args: Value = serde_json::from_str(arguments).unwrap();
    assert!(args["city"].is_string());
    assert!(["celsius", "fahrenheit"].contains(&args["unit"].as_str().unwrap()));
    assert!((1..=7).contains(&args["days"].as_i64().unwrap()));
}

#[tokio::test]
async fn tool_calls_follow_mentions_and_choice() {
    let sim = start().await;
    let reply = sim
        .chat("openai", &tool_body("Call get_weather for Paris"))
        .await;
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let arguments = calls[0]["function"]["arguments"].as_str().unwrap();
    check_weather_args(arguments);
    assert_eq!(
        reply["usage"]["completion_tokens"],
        tokens("get_weather") + tokens(arguments)
    );
    let tools_json = weather_tools().to_string();
    assert_eq!(
        reply["usage"]["prompt_tokens"],
        3 + 1 + tokens("Call get_weather for Paris") + 3 + tokens(&tools_json)
    );

    // Parallel: both mentioned tools, in tools order; not parallel: only the first.
    let mut body = tool_body("use get_time and get_weather");
    let reply = sim.chat("openai", &body).await;
    let names: Vec<&str> = reply["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    body["parallel_tool_calls"] = json!(false);
    let reply = sim.chat("openai", &body).await;
    assert_eq!(
        reply["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Named choice wins over mentions; required without mention calls the first tool.
    let mut body = tool_body("use get_weather");
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let reply = sim.chat("openai", &body).await;
    let calls = reply["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["function"]["name"], "get_time");
    assert!(
        serde_json::from_str::<Value>(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap()
            ["zone"]
            .is_string()
    );
    let mut body = tool_body("no mention here");
    body["tool_choice"] = json!("required");
    let reply = sim.chat("openai", &body).await;
    assert_eq!(
        reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    // No mention and auto, or "none": text.
    let reply = sim.chat("openai", &tool_body("no mention here")).await;
    assert!(reply["choices"][0]["message"]["content"].is_string());
    let mut body = tool_body("use get_weather");
    body["tool_choice"] = json!("none");
    assert_eq!(
        sim.chat("openai", &body).await["choices"][0]["finish_reason"],
        "stop"
    );
    // A named tool that does not exist is a 400.
    body["tool_choice"] = json!({"type": "function", "function": {"name": "nope"}});
    assert_eq!(
        sim.post("/openai/v1/chat/completions", &body)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn streamed_tool_calls_reassemble() {
    let sim = start().await;
    let mut body = tool_body("get_weather and get_time please");
    let plain = sim.chat("openai", &body).await;
    body["stream"] = json!(true);
    let all = chunks(&sim.stream("openai", &body).await);
    let first = &all[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert_eq!(first["content"], Value::Null);
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut argument_chunks = 0;
    for chunk in &all[..all.len() - 1] {
        for delta in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .unwrap()
        {
            let index = delta["index"].as_u64().unwrap() as usize;
            if let Some(id) = delta["id"].as_str() {
                assert_eq!(index, calls.len(), "calls arrive in index order");
                assert_eq!(delta["type"], "function");
                assert_eq!(delta["function"]["arguments"], "");
                calls.push((
                    id.to_owned(),
                    delta["function"]["name"].as_str().unwrap().to_owned(),
                    String::new(),
                ));
            } else {
                assert!(delta.get("id").is_none() && delta["function"].get("name").is_none());
                calls[index]
                    .2
                    .push_str(delta["function"]["arguments"].as_str().unwrap());
                argument_chunks += 1;
            }
        }
    }
    assert_eq!(
        all.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(calls.len(), 2);
    assert!(argument_chunks > 2, "arguments arrive in several pieces");
    check_weather_args(&calls[0].2);
    let expected = plain["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    for (call, expected) in calls.iter().zip(expected) {
        assert_eq!(call.0, expected["id"].as_str().unwrap());
        assert_eq!(call.1, expected["function"]["name"].as_str().unwrap());
        assert_eq!(call.2, expected["function"]["arguments"].as_str().unwrap());
    }
}

#[tokio::test]
async fn structured_output_is_valid_json() {
    let sim = start().await;
    let mut body = basic_body();
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "person", "strict": true, "schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer", "minimum": 0, "maximum": 120},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
        "required": ["name", "age", "tags", "address"],
        "additionalProperties": false
    }}});
    let reply = sim.chat("openai", &body).await;
    let content = reply["choices"][0]["message"]["content"].as_str().unwrap();
    let doc: Value = serde_json::from_str(content).unwrap();
    assert!(doc["name"].is_string());
    assert!((0..=120).contains(&doc["age"].as_i64().unwrap()));
    assert!(doc["tags"].is_array());
    assert!(doc["address"]["city"].is_string());
    assert_eq!(reply["usage"]["completion_tokens"], tokens(content));
    assert_eq!(doc.to_string(), content, "compact JSON");

    body["response_format"] = json!({"type": "json_object"});
    let reply = sim.chat("openai", &body).await;
    let doc: Value =
        serde_json::from_str(reply["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert!(doc["answer"].is_string());
}

fn b64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test]
async fn embeddings_float_and_base64() {
    let sim = start().await;
    let response = sim
        .post(
            "/openai/v1/embeddings",
            &json!({"model": "emb-sim", "input": ["hello world", "bye"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let floats: Value = response.json_value().await;
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "emb-sim");
    assert_eq!(
        floats["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["object"], "embedding");
    assert_eq!(data[1]["index"], 1);
    let first: Vec<f32> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(first.len(), 16);
    let norm = first.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");

    let encoded: Value = sim
        .post(
            "/openai/v1/embeddings",
            &json!({"model": "emb-sim", "input": "hello world", "encoding_format": "base64"}),
        )
        .await
        .json_value()
        .await;
    let bytes = b64_decode(encoded["data"][0]["embedding"].as_str().unwrap());
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, first, "same text, same vector, either encoding");

    let ids: Value = sim
        .post(
            "/openai/v1/embeddings",
            &json!({"model": "emb-sim", "input": [[1, 2, 3], [4]], "dimensions": 8}),
        )
        .await
        .json_value()
        .await;
    assert_eq!(ids["usage"]["prompt_tokens"], 4);
    assert_eq!(ids["data"][0]["embedding"].as_array().unwrap().len(), 8);
    let bad = sim
        .post(
            "/openai/v1/embeddings",
            &json!({"model": "emb-sim", "input": []}),
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn status_fault_with_retry_after_and_count() {
    let sim = start().await;
    sim.control(
        "flaky",
        "faults",
        &json!([{"status": 429, "retry_after_s": 1, "count": 2}]),
    )
    .await;
    for _ in 0..2 {
        let response = sim.post("/flaky/v1/chat/completions", &basic_body()).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        let body: Value = response.json_value().await;
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["type"], "requests");
        assert!(body["error"]["param"].is_null());
        assert!(body["error"]["message"].is_string());
    }
    assert_eq!(
        sim.post("/flaky/v1/chat/completions", &basic_body())
            .await
            .status(),
        200
    );

    sim.control(
        "flaky",
        "faults",
        &json!([{"status": 503, "message": "down for a bit"}]),
    )
    .await;
    let response = sim.post("/flaky/v1/chat/completions", &basic_body()).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json_value().await;
    assert_eq!(body["error"]["message"], "down for a bit");
    assert_eq!(body["error"]["type"], "server_error");
}

#[tokio::test]
async fn reset_fault_drops_the_connection() {
    let sim = start().await;
    // Warm a pooled keep-alive connection first.
    assert_eq!(
        sim.post("/rst/v1/chat/completions", &basic_body())
            .await
            .status(),
        200
    );
    sim.control("rst", "faults", &json!([{"kind": "reset"}]))
        .await;
    let result = sim
        .client
        .post(sim.url("/rst/v1/chat/completions"))
        .bearer_auth("k")
        .json_body(&basic_body())
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a connection error, got {result:?}"
    );
    assert_eq!(
        sim.post("/rst/v1/chat/completions", &basic_body())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn stall_fault_delays_headers() {
    let sim = start().await;
    sim.control("slow", "faults", &json!([{"kind": "stall_ms", "ms": 250}]))
        .await;
    let started = Instant::now();
    let response = sim.post("/slow/v1/chat/completions", &basic_body()).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    sim.chat("slow", &basic_body()).await;
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "one request only"
    );
}

#[tokio::test]
async fn cut_fault_breaks_the_body() {
    let sim = start().await;
    sim.control(
        "cut",
        "faults",
        &json!([{"kind": "cut_after_chunks", "n": 3}, {"kind": "cut_after_chunks", "n": 3}]),
    )
    .await;
    let mut body = basic_body();
    body["stream"] = json!(true);
    let response = sim.post("/cut/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut failed = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => text.push_str(std::str::from_utf8(&bytes).unwrap()),
            Err(_) => failed = true,
        }
    }
    assert!(failed, "the body must end in an error");
    let events = sse_events(&text);
    assert_eq!(events.len(), 3);
    assert!(!text.contains("[DONE]"));
    for event in &events {
        serde_json::from_str::<Value>(event).unwrap();
    }

    body["stream"] = json!(false);
    let response = sim.post("/cut/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "truncated body");
    sim.chat("cut", &body).await;
}

#[tokio::test]
async fn malformed_fault_sends_invalid_json() {
    let sim = start().await;
    sim.control("bad", "faults", &json!([{"kind": "malformed", "count": 2}]))
        .await;
    let response = sim.post("/bad/v1/chat/completions", &basic_body()).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());

    let mut body = basic_body();
    body["stream"] = json!(true);
    let response = sim.post("/bad/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap_or_default();
    assert_eq!(text, "data: {not json\n\n");
}

#[tokio::test]
async fn requests_are_recorded_and_reset() {
    let sim = start().await;
    sim.control("rec", "faults", &json!([{"status": 500}]))
        .await;
    assert_eq!(
        sim.post("/rec/v1/chat/completions", &basic_body())
            .await
            .status(),
        500
    );
    assert_eq!(
        sim.post("/rec/v1/chat/completions", &basic_body())
            .await
            .status(),
        200
    );
    let unauthorised = sim
        .client
        .post(sim.url("/rec/v1/embeddings"))
        .body("raw text")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);
    let models: Value = sim
        .client
        .get(sim.url("/rec/v1/models"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(
        models,
        json!({"object": "list", "data": [{"id": "gpt-sim", "object": "model", "created": 1_700_000_000, "owned_by": "system"}]})
    );

    let recorded: Value = sim
        .client
        .get(sim.url("/_sim/rec/requests"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0]["method"], "POST");
    assert_eq!(recorded[0]["path"], "/rec/v1/chat/completions");
    assert_eq!(recorded[0]["headers"]["authorization"], "Bearer sk-test");
    assert_eq!(recorded[0]["headers"]["content-type"], "application/json");
    assert_eq!(recorded[0]["body"], basic_body());
    assert_eq!(recorded[2]["body"], "raw text");
    assert_eq!(recorded[3]["method"], "GET");

    sim.control("rec", "behaviour", &json!({"output_tokens": 2}))
        .await;
    let response = sim
        .client
        .delete(sim.url("/_sim/rec"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let recorded: Value = sim
        .client
        .get(sim.url("/_sim/rec/requests"))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(recorded, json!([]));
    let reply = sim.chat("rec", &basic_body()).await;
    assert_eq!(
        reply["usage"]["completion_tokens"], 16,
        "behaviour back to default"
    );
}

#[tokio::test]
async fn bad_requests_are_rejected() {
    let sim = start().await;
    let url = sim.url("/openai/v1/chat/completions");
    let no_auth = sim
        .client
        .post(&url)
        .json_body(&basic_body())
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    let body: Value = no_auth.json_value().await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let empty_key = sim
        .client
        .post(&url)
        .header("authorization", "Bearer ")
        .json_body(&basic_body())
        .send()
        .await
        .unwrap();
    assert_eq!(empty_key.status(), 401);

    let bad_json = sim
        .client
        .post(&url)
        .bearer_auth("k")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    let body: Value = bad_json.json_value().await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"].get("param").is_some() && body["error"].get("code").is_some());

    let empty = sim
        .post(
            "/openai/v1/chat/completions",
            &json!({"model": "m", "messages": []}),
        )
        .await;
    assert_eq!(empty.status(), 400);
    assert_eq!(empty.json_value().await["error"]["param"], "messages");
    let no_model = sim
        .post(
            "/openai/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(no_model.status(), 400);

    for (what, body) in [
        ("faults", "not json"),
        ("faults", r#"[{"kind": "explode"}]"#),
        ("faults", r#"[{"kind": "reset", "extra": 1}]"#),
        ("behaviour", r#"{"ttft_ms": -1}"#),
        ("behaviour", r#"{"speed": 3}"#),
    ] {
        let response = sim
            .client
            .post(sim.url(&format!("/_sim/x/{what}")))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{what} {body}");
        let error: Value = response.json_value().await;
        assert!(error["error"]["message"].as_str().unwrap().len() > 10);
    }
    let unknown = sim
        .client
        .get(sim.url("/openai/v2/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn serve_returns_on_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(switchyard_simulator::serve(listener, async {
        let _ = rx.await;
    }));
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The Anthropic Messages protocol (`/{upstream}/v1/messages`).

const ANTHROPIC_VERSION: &str = "2023-06-01";

impl Sim {
    /// A Messages API request with Anthropic's headers.
    async fn anthropic_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json_body(body)
            .send()
            .await
            .unwrap()
    }

    async fn message(&self, upstream: &str, body: &Value) -> Value {
        let response = self
            .anthropic_post(&format!("/{upstream}/v1/messages"), body)
            .await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_"));
        response.json_value().await
    }

    /// The `(event name, data)` pairs of a streamed message.
    async fn message_stream(&self, upstream: &str, body: &Value) -> Vec<(String, Value)> {
        let mut body = body.clone();
        body["stream"] = json!(true);
        let response = self
            .anthropic_post(&format!("/{upstream}/v1/messages"), &body)
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        named_events(&response.text().await.unwrap())
    }

    async fn recorded(&self, upstream: &str) -> Vec<Value> {
        let recorded: Value = self
            .client
            .get(self.url(&format!("/_sim/{upstream}/requests")))
            .send()
            .await
            .unwrap()
            .json_value()
            .await;
        recorded.as_array().unwrap().clone()
    }
}

/// Parses `event: NAME\ndata: JSON\n\n` frames, checking each event's name matches its type.
fn named_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|frame| {
            let (name, data) = frame
                .strip_prefix("event: ")
                .and_then(|rest| rest.split_once("\ndata: "))
                .unwrap_or_else(|| panic!("not a named event: {frame:?}"));
            let data: Value = serde_json::from_str(data).unwrap();
            assert_eq!(data["type"], name, "{frame}");
            (name.to_owned(), data)
        })
        .collect()
}

/// Rebuilds the message from its stream events, as a client would.
fn reassemble(events: &[(String, Value)]) -> Value {
    let mut message = events[0].1["message"].clone();
    let mut partial_json: Vec<String> = Vec::new();
    for (name, data) in &events[1..] {
        match name.as_str() {
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap() as usize;
                assert_eq!(index, message["content"].as_array().unwrap().len());
                message["content"]
                    .as_array_mut()
                    .unwrap()
                    .push(data["content_block"].clone());
                partial_json.push(String::new());
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap() as usize;
                let block = &mut message["content"][index];
                let delta = &data["delta"];
                let append = |block: &mut Value, key: &str, piece: &Value| {
                    let text = block[key].as_str().unwrap().to_owned() + piece.as_str().unwrap();
                    block[key] = json!(text);
                };
                match delta["type"].as_str().unwrap() {
                    "text_delta" => append(block, "text", &delta["text"]),
                    "thinking_delta" => append(block, "thinking", &delta["thinking"]),
                    "signature_delta" => block["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        partial_json[index].push_str(delta["partial_json"].as_str().unwrap())
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap() as usize;
                if message["content"][index]["type"] == "tool_use" {
                    message["content"][index]["input"] =
                        serde_json::from_str(&partial_json[index]).unwrap();
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                for key in [
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                    "output_tokens",
                ] {
                    message["usage"][key] = data["usage"][key].clone();
                }
            }
            "ping" | "message_stop" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    message
}

fn claude_body(prompt: &str) -> Value {
    json!({
        "model": "claude-sim",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": prompt}]
    })
}

fn claude_tools() -> Value {
    json!([
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["city", "unit"]
            }
        },
        {
            "name": "get_time",
            "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
        }
    ])
}

fn thinking_body(prompt: &str) -> Value {
    let mut body = claude_body(prompt);
    body["max_tokens"] = json!(4096);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    body
}

#[tokio::test]
async fn anthropic_message_shape_usage_and_determinism() {
    let sim = start().await;
    let reply = sim.message("claude", &claude_body("Hello, world!")).await;
    assert!(reply["id"].as_str().unwrap().starts_with("msg_01"));
    assert_eq!(reply["type"], "message");
    assert_eq!(reply["role"], "assistant");
    assert_eq!(reply["model"], "claude-sim");
    assert_eq!(reply["stop_reason"], "end_turn");
    assert_eq!(reply["stop_sequence"], Value::Null);
    let content = reply["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let text = content[0]["text"].as_str().unwrap();
    assert_eq!(text.split(' ').count(), 16);

    // system 4; message 3 + role + content; 3 priming the reply.
    let input = tokens("You are terse.") + (3 + 1 + tokens("Hello, world!")) + 3;
    assert_eq!(input, 15);
    assert_eq!(
        reply["usage"],
        json!({
            "input_tokens": input,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 16,
            "service_tier": "standard"
        })
    );

    let again = sim.message("claude", &claude_body("Hello, world!")).await;
    assert_eq!(again["content"], reply["content"]);
    assert_ne!(again["id"], reply["id"], "ids stay unique across replays");
    let other = sim.message("claude", &claude_body("Something else")).await;
    assert_ne!(other["content"], reply["content"]);

    // Consecutive user turns are accepted (the API combines them), and so is a final
    // assistant turn (prefill).
    let mut body = claude_body("one");
    body["messages"] = json!([
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "The answer is"}
    ]);
    sim.message("claude", &body).await;

    let counted = sim
        .anthropic_post(
            "/claude/v1/messages/count_tokens",
            &json!({"model": "claude-sim", "system": "You are terse.", "messages": [{"role": "user", "content": "Hello, world!"}]}),
        )
        .await;
    assert_eq!(counted.status(), 200);
    assert_eq!(counted.json_value().await, json!({"input_tokens": input}));
}

#[tokio::test]
async fn anthropic_thinking_with_signature_and_redaction() {
    let sim = start().await;
    let reply = sim.message("claude", &thinking_body("Think first")).await;
    let content = reply["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(tokens(content[0]["thinking"].as_str().unwrap()), 16);
    let signature = content[0]["signature"].as_str().unwrap();
    assert!(signature.len() >= 64);
    assert!(signature
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
    assert_eq!(content[1]["type"], "text");
    assert_eq!(reply["usage"]["output_tokens"], 32, "thinking counts");
    let again = sim.message("claude", &thinking_body("Think first")).await;
    assert_eq!(again["content"][0]["signature"], signature);

    sim.control("claude", "behaviour", &json!({"output_tokens": 3000}))
        .await;
    let capped = sim.message("claude", &thinking_body("Think first")).await;
    assert_eq!(
        tokens(capped["content"][0]["thinking"].as_str().unwrap()),
        2048,
        "thinking stays within budget_tokens"
    );
    assert_eq!(capped["usage"]["output_tokens"], 4096);
    assert_eq!(capped["stop_reason"], "max_tokens");
    sim.control("claude", "behaviour", &json!({"output_tokens": 16}))
        .await;

    let redacted = sim
        .message("claude", &thinking_body("Please REDACT your thoughts"))
        .await;
    assert_eq!(redacted["content"][0]["type"], "redacted_thinking");
    assert!(redacted["content"][0]["data"].as_str().unwrap().len() > 100);
    assert!(redacted["content"][0].get("thinking").is_none());
    assert_eq!(redacted["content"][1]["type"], "text");
    assert_eq!(redacted["usage"]["output_tokens"], 32);

    let mut omitted = thinking_body("Think first");
    omitted["thinking"]["display"] = json!("omitted");
    let omitted = sim.message("claude", &omitted).await;
    assert_eq!(omitted["content"][0]["thinking"], "");
    assert!(omitted["content"][0]["signature"].as_str().unwrap().len() >= 64);
    assert_eq!(omitted["usage"]["output_tokens"], 32);

    let mut off = thinking_body("Think first");
    off["thinking"] = json!({"type": "disabled"});
    let off = sim.message("claude", &off).await;
    assert_eq!(off["content"][0]["type"], "text");
}

#[tokio::test]
async fn anthropic_tool_use_parallel_single_and_results() {
    let sim = start().await;
    let mut body = claude_body("Call get_weather and get_time for Paris");
    body["tools"] = claude_tools();
    let reply = sim.message("claude", &body).await;
    assert_eq!(reply["stop_reason"], "tool_use");
    let calls = reply["content"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (call, name) in calls.iter().zip(["get_weather", "get_time"]) {
        assert_eq!(call["type"], "tool_use");
        assert_eq!(call["name"], name);
        let id = call["id"].as_str().unwrap();
        assert!(id.starts_with("toolu_01") && id.len() == 30, "{id}");
        assert!(call["input"].is_object());
    }
    assert!(calls[0]["input"]["city"].is_string());
    assert!(["celsius", "fahrenheit"].contains(&calls[0]["input"]["unit"].as_str().unwrap()));
    assert!(calls[1]["input"]["zone"].is_string());
    let output: u64 = calls
        .iter()
        .map(|c| tokens(c["name"].as_str().unwrap()) + tokens(&c["input"].to_string()))
        .sum();
    assert_eq!(reply["usage"]["output_tokens"], output);
    // Tool definitions are prompt tokens.
    let plain = sim
        .message(
            "claude",
            &claude_body("Call get_weather and get_time for Paris"),
        )
        .await;
    let tools_tokens: u64 = claude_tools()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| tokens(&t.to_string()))
        .sum();
    assert_eq!(
        reply["usage"]["input_tokens"].as_u64().unwrap(),
        plain["usage"]["input_tokens"].as_u64().unwrap() + tools_tokens
    );

    let mut single = body.clone();
    single["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
    let single = sim.message("claude", &single).await;
    assert_eq!(single["content"].as_array().unwrap().len(), 1);
    assert_eq!(single["content"][0]["name"], "get_weather");

    let mut none = body.clone();
    none["tool_choice"] = json!({"type": "none"});
    assert_eq!(
        sim.message("claude", &none).await["content"][0]["type"],
        "text"
    );
    let mut any = claude_body("no mention here");
    any["tools"] = claude_tools();
    any["tool_choice"] = json!({"type": "any"});
    let any = sim.message("claude", &any).await;
    assert_eq!(any["content"][0]["name"], "get_weather");
    let mut named = claude_body("no mention here");
    named["tools"] = claude_tools();
    named["tool_choice"] = json!({"type": "tool", "name": "get_time"});
    assert_eq!(
        sim.message("claude", &named).await["content"][0]["name"],
        "get_time"
    );

    // The second turn: results for both calls are answered with text.
    let results: Vec<Value> = calls
        .iter()
        .map(|c| json!({"type": "tool_result", "tool_use_id": c["id"], "content": [{"type": "text", "text": "sunny"}]}))
        .collect();
    let mut second = body.clone();
    second["messages"] = json!([
        body["messages"][0],
        {"role": "assistant", "content": calls},
        {"role": "user", "content": results}
    ]);
    let answer = sim.message("claude", &second).await;
    assert_eq!(answer["stop_reason"], "end_turn");
    assert_eq!(answer["content"][0]["type"], "text");

    // A result must answer a call of the previous turn, and every call needs its result.
    let mut orphan = second.clone();
    orphan["messages"][2]["content"][0]["tool_use_id"] = json!("toolu_nope");
    let response = sim.anthropic_post("/claude/v1/messages", &orphan).await;
    assert_eq!(response.status(), 400);
    let error = response.json_value().await;
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("messages.2.content.0: unexpected `tool_use_id`"));
    let mut unanswered = second.clone();
    unanswered["messages"][2]["content"]
        .as_array_mut()
        .unwrap()
        .pop();
    let response = sim.anthropic_post("/claude/v1/messages", &unanswered).await;
    assert_eq!(response.status(), 400);
    assert!(response.json_value().await["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("messages.1: `tool_use` ids were found without `tool_result` blocks"));
}

#[tokio::test]
async fn anthropic_prompt_cache_creation_then_read() {
    let sim = start().await;
    let long = "Shared context for every question. ".repeat(40);
    let body = |question: &str| {
        json!({
            "model": "claude-sim",
            "max_tokens": 64,
            "system": [{"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": question}]
        })
    };
    let prefix = tokens(&long);
    let tail = |question: &str| 3 + 1 + tokens(question) + 3;

    let first = sim.message("cache", &body("What is it?")).await;
    let usage = &first["usage"];
    assert_eq!(usage["cache_creation_input_tokens"], prefix);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(usage["cache_creation"]["ephemeral_5m_input_tokens"], prefix);
    assert_eq!(
        usage["input_tokens"],
        tail("What is it?"),
        "excludes the cache"
    );

    let second = sim.message("cache", &body("Another question?")).await;
    let usage = &second["usage"];
    assert_eq!(usage["cache_read_input_tokens"], prefix);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["input_tokens"], tail("Another question?"));

    // A second breakpoint (1h) on the question: the system prefix is read, the rest written.
    let mut two = body("Third one?");
    two["messages"][0]["content"] = json!([{"type": "text", "text": "Third one?", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]);
    let third = sim.message("cache", &two).await;
    let usage = &third["usage"];
    assert_eq!(usage["cache_read_input_tokens"], prefix);
    assert_eq!(usage["cache_creation_input_tokens"], tail("Third one?") - 3);
    assert_eq!(
        usage["cache_creation"]["ephemeral_1h_input_tokens"],
        tail("Third one?") - 3
    );
    assert_eq!(usage["input_tokens"], 3);
    let fourth = sim.message("cache", &two).await;
    assert_eq!(
        fourth["usage"]["cache_read_input_tokens"],
        prefix + tail("Third one?") - 3
    );

    // count_tokens reports the whole prompt, cached or not.
    let mut count = body("What is it?");
    count.as_object_mut().unwrap().remove("max_tokens");
    let counted = sim
        .anthropic_post("/cache/v1/messages/count_tokens", &count)
        .await
        .json_value()
        .await;
    assert_eq!(counted["input_tokens"], prefix + tail("What is it?"));

    // Caches are per upstream, and a reset empties them.
    let elsewhere = sim.message("cache2", &body("What is it?")).await;
    assert_eq!(elsewhere["usage"]["cache_creation_input_tokens"], prefix);
    sim.client
        .delete(sim.url("/_sim/cache"))
        .send()
        .await
        .unwrap();
    let after_reset = sim.message("cache", &body("What is it?")).await;
    assert_eq!(after_reset["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(after_reset["usage"]["cache_creation_input_tokens"], prefix);

    // The top-level cache_control marks the last block.
    let mut auto = claude_body("Auto cached question");
    auto["cache_control"] = json!({"type": "ephemeral"});
    let auto_first = sim.message("cache", &auto).await;
    assert_eq!(auto_first["usage"]["input_tokens"], 3);
    let auto_second = sim.message("cache", &auto).await;
    assert_eq!(
        auto_second["usage"]["cache_read_input_tokens"],
        auto_first["usage"]["cache_creation_input_tokens"]
    );
}

#[tokio::test]
async fn anthropic_max_tokens_and_stop_sequences() {
    let sim = start().await;
    let mut body = claude_body("Hello");
    body["max_tokens"] = json!(5);
    let reply = sim.message("claude", &body).await;
    assert_eq!(reply["stop_reason"], "max_tokens");
    assert_eq!(reply["usage"]["output_tokens"], 5);
    assert_eq!(tokens(reply["content"][0]["text"].as_str().unwrap()), 5);

    let full = sim.message("claude", &claude_body("Hello")).await;
    let text = full["content"][0]["text"].as_str().unwrap().to_owned();
    let words: Vec<&str> = text.split(' ').collect();
    let stop = format!(" {}", words[4]);
    let mut body = claude_body("Hello");
    body["stop_sequences"] = json!(["never-generated", stop]);
    let reply = sim.message("claude", &body).await;
    assert_eq!(reply["stop_reason"], "stop_sequence");
    assert_eq!(reply["stop_sequence"], stop);
    let cut = reply["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with(cut) && !cut.contains(stop.as_str()));
    assert_eq!(reply["usage"]["output_tokens"], tokens(cut));

    // max_tokens 0 only warms the cache: nothing is generated.
    let mut warm = claude_body("Hello");
    warm["max_tokens"] = json!(0);
    let reply = sim.message("claude", &warm).await;
    assert_eq!(reply["content"], json!([]));
    assert_eq!(reply["stop_reason"], "max_tokens");
    assert_eq!(reply["usage"]["output_tokens"], 0);
}

#[tokio::test]
async fn anthropic_streaming_event_order_and_reassembly() {
    let sim = start().await;
    let body = claude_body("Hello, world!");
    let expected = sim.message("claude", &body).await;
    let events = sim.message_stream("claude", &body).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let mut order = vec!["message_start", "content_block_start", "ping"];
    order.extend(std::iter::repeat_n("content_block_delta", 16));
    order.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, order);
    let start = &events[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 15);
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let delta = &events[events.len() - 2].1;
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], 16);
    let message = reassemble(&events);
    assert_eq!(message["content"], expected["content"]);
    assert_eq!(message["usage"], expected["usage"]);
    assert_eq!(message["stop_reason"], "end_turn");

    // Thinking and parallel tool calls: thinking deltas then one signature delta; tool inputs
    // as partial JSON; the same content as the non-streamed answer.
    let mut body = thinking_body("Call get_weather and get_time");
    body["tools"] = claude_tools();
    let expected = sim.message("claude", &body).await;
    let events = sim.message_stream("claude", &body).await;
    let message = reassemble(&events);
    assert_eq!(message["content"], expected["content"]);
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["usage"]["output_tokens"],
        expected["usage"]["output_tokens"]
    );
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["index"] == 0)
        .map(|(_, d)| d["delta"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(deltas.last(), Some(&"signature_delta"));
    assert!(deltas[..deltas.len() - 1]
        .iter()
        .all(|t| *t == "thinking_delta"));
    assert_eq!(
        events[1].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    let tool_start = events
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["index"] == 1)
        .unwrap();
    assert_eq!(tool_start.1["content_block"]["input"], json!({}));

    // Redacted thinking arrives whole in its start event; stop sequences end the stream too.
    let mut body = thinking_body("redact it");
    let plain = sim.message("claude", &body).await;
    let third = plain["content"][1]["text"]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(2)
        .unwrap()
        .to_owned();
    body["stop_sequences"] = json!([format!(" {third}")]);
    let expected = sim.message("claude", &body).await;
    let events = sim.message_stream("claude", &body).await;
    assert_eq!(events[1].1["content_block"]["type"], "redacted_thinking");
    assert_eq!(events[2].0, "ping");
    assert_eq!(events[3].0, "content_block_stop");
    let message = reassemble(&events);
    assert_eq!(message["content"], expected["content"]);
    assert_eq!(message["stop_reason"], "stop_sequence");
    assert_eq!(message["stop_sequence"], expected["stop_sequence"]);
}

#[tokio::test]
async fn anthropic_stream_is_paced_by_behaviour() {
    let sim = start().await;
    sim.control(
        "paced",
        "behaviour",
        &json!({"ttft_ms": 150, "tokens_per_s": 100, "output_tokens": 10}),
    )
    .await;
    let mut body = claude_body("Hello");
    body["stream"] = json!(true);
    let started = Instant::now();
    let response = sim.anthropic_post("/paced/v1/messages", &body).await;
    let mut stream = response.bytes_stream();
    let mut first_delta = None;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        if first_delta.is_none() && text.contains("content_block_delta") {
            first_delta = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    assert!(first_delta.unwrap() >= Duration::from_millis(150));
    // Ten tokens at 100/s after the first: at least 90 ms more.
    assert!(total >= Duration::from_millis(240), "{total:?}");
    assert_eq!(named_events(&text).len(), 3 + 10 + 3);
}

#[tokio::test]
async fn anthropic_auth_version_and_validation_errors() {
    let sim = start().await;
    let url = sim.url("/claude/v1/messages");
    sim.control("claude", "faults", &json!([{"status": 500}]))
        .await;

    let no_key = sim
        .client
        .post(&url)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json_body(&claude_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let request_id = no_key.headers()["request-id"].to_str().unwrap().to_owned();
    let error = no_key.json_value().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "authentication_error");
    assert_eq!(error["error"]["message"], "x-api-key header is required");
    assert_eq!(error["request_id"], request_id);

    let no_version = sim
        .client
        .post(&url)
        .header("x-api-key", "k")
        .json_body(&claude_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_version.status(), 400);
    let error = no_version.json_value().await;
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(
        error["error"]["message"],
        "anthropic-version: header is required"
    );

    // A bearer token is accepted too (Anthropic's current SDKs send one).
    let bearer = sim
        .client
        .post(&url)
        .bearer_auth("k")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json_body(&claude_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 500, "header errors consumed no fault");

    let bad = |body: Value| {
        let sim = &sim;
        async move {
            let response = sim.anthropic_post("/claude/v1/messages", &body).await;
            assert_eq!(response.status(), 400, "{body}");
            let error = response.json_value().await;
            assert_eq!(error["type"], "error");
            assert_eq!(error["error"]["type"], "invalid_request_error");
            assert!(error["request_id"].as_str().unwrap().starts_with("req_"));
            error["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    let mut no_max = claude_body("x");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(bad(no_max).await, "max_tokens: Field required");
    let mut budget = claude_body("x");
    budget["thinking"] = json!({"type": "enabled", "budget_tokens": 512});
    assert_eq!(
        bad(budget).await,
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    );
    let mut over = claude_body("x");
    over["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    assert!(bad(over)
        .await
        .starts_with("`max_tokens` must be greater than `thinking.budget_tokens`"));
    let mut system_role = claude_body("x");
    system_role["messages"] =
        json!([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]);
    assert!(bad(system_role).await.starts_with("messages.0.role:"));
    let mut openai_image = claude_body("x");
    openai_image["messages"][0]["content"] =
        json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]);
    assert!(bad(openai_image)
        .await
        .starts_with("messages.0.content.0: Input tag 'image_url'"));
    let mut extra = claude_body("x");
    extra["n"] = json!(2);
    assert_eq!(bad(extra).await, "n: Extra inputs are not permitted");
    let mut empty = claude_body("x");
    empty["messages"] = json!([]);
    assert!(bad(empty).await.starts_with("messages:"));

    let not_json = sim
        .client
        .post(&url)
        .header("x-api-key", "k")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        not_json.json_value().await["error"]["type"],
        "invalid_request_error"
    );
}

#[tokio::test]
async fn anthropic_status_faults_use_anthropic_error_types() {
    let sim = start().await;
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ] {
        sim.control("flaky", "faults", &json!({"status": status}))
            .await;
        let response = sim
            .anthropic_post("/flaky/v1/messages", &claude_body("x"))
            .await;
        assert_eq!(response.status().as_u16(), status);
        let request_id = response.headers()["request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let error = response.json_value().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], kind, "{status}");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(error["request_id"], request_id);
    }
    sim.control(
        "flaky",
        "faults",
        &json!([{"status": 429, "retry_after_s": 2, "count": 2}, {"status": 400, "message": "scripted"}]),
    )
    .await;
    for _ in 0..2 {
        let mut body = claude_body("x");
        body["stream"] = json!(true);
        let response = sim.anthropic_post("/flaky/v1/messages", &body).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "2");
        assert_eq!(
            response.json_value().await["error"]["type"],
            "rate_limit_error"
        );
    }
    let response = sim
        .anthropic_post(
            "/flaky/v1/messages/count_tokens",
            &json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json_value().await["error"]["message"], "scripted");
    sim.message("flaky", &claude_body("x")).await;
}

#[tokio::test]
async fn anthropic_connection_faults() {
    let sim = start().await;
    let path = "/rst/v1/messages";
    sim.message("rst", &claude_body("warm")).await;
    sim.control("rst", "faults", &json!([{"kind": "reset"}]))
        .await;
    let result = sim
        .client
        .post(sim.url(path))
        .header("x-api-key", "k")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json_body(&claude_body("x"))
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a connection error, got {result:?}"
    );
    sim.message("rst", &claude_body("x")).await;

    sim.control("rst", "faults", &json!([{"kind": "stall_ms", "ms": 200}]))
        .await;
    let started = Instant::now();
    sim.message("rst", &claude_body("x")).await;
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Streams: n events then a broken connection, never reaching message_stop (even when n
    // exceeds the stream); a whole body: half of it, then a break.
    sim.control(
        "rst",
        "faults",
        &json!([
            {"kind": "cut_after_chunks", "n": 4},
            {"kind": "cut_after_chunks", "n": 1000},
            {"kind": "cut_after_chunks", "n": 1}
        ]),
    )
    .await;
    let mut body = claude_body("x");
    body["stream"] = json!(true);
    // Everything but message_stop: start, block start, ping, 16 deltas, block stop, delta.
    for expected in [4, 3 + 16 + 2] {
        let response = sim.anthropic_post(path, &body).await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut text = String::new();
        let mut failed = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(bytes) => text.push_str(std::str::from_utf8(&bytes).unwrap()),
                Err(_) => failed = true,
            }
        }
        assert!(failed, "the body must end in an error");
        assert_eq!(named_events(&text).len(), expected);
        assert!(!text.contains("message_stop"));
    }
    let response = sim.anthropic_post(path, &claude_body("x")).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "truncated body");

    sim.control("rst", "faults", &json!([{"kind": "malformed", "count": 2}]))
        .await;
    let response = sim.anthropic_post(path, &claude_body("x")).await;
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());
    let response = sim.anthropic_post(path, &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap_or_default(),
        "event: message_start\ndata: {not json\n\n"
    );
    sim.message("rst", &claude_body("x")).await;
}

#[tokio::test]
async fn anthropic_requests_are_recorded_with_headers() {
    let sim = start().await;
    let response = sim
        .client
        .post(sim.url("/rec/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .header(
            "anthropic-beta",
            "prompt-caching-2024-07-31,output-128k-2025-02-19",
        )
        .json_body(&claude_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let recorded = sim.recorded("rec").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["path"], "/rec/v1/messages");
    let headers = &recorded[0]["headers"];
    assert_eq!(
        headers["anthropic-beta"],
        "prompt-caching-2024-07-31,output-128k-2025-02-19"
    );
    assert_eq!(headers["anthropic-version"], ANTHROPIC_VERSION);
    assert_eq!(headers["x-api-key"], "sk-ant-test");
    assert_eq!(recorded[0]["body"], claude_body("x"));
}
