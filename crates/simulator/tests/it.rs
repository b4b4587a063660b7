//! End-to-end tests of the simulator over real HTTP: the OpenAI and Anthropic wire formats,
//! determinism, pacing, tools, thinking, prompt caching, structured output, embeddings, every
//! fault kind and the control API.

// The Bedrock and Vertex AI surfaces: their own modules, in this one test binary.
#[path = "it/bedrock.rs"]
mod bedrock;
#[path = "it/vertex.rs"]
mod vertex;

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

// ---------------------------------------------------------------------------------------------
// The Cohere v2 protocol (`/{upstream}/v2/chat`, `/{upstream}/v2/embed`).

impl Sim {
    async fn cohere(&self, upstream: &str, body: &Value) -> Value {
        let response = self.post(&format!("/{upstream}/v2/chat"), body).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers()["x-debug-trace-id"]
            .to_str()
            .unwrap()
            .starts_with("req_"));
        response.json_value().await
    }

    /// The `(event name, data)` pairs of a streamed Cohere chat, after checking it ends with
    /// `data: [DONE]`.
    async fn cohere_stream(&self, upstream: &str, body: &Value) -> Vec<(String, Value)> {
        let mut body = body.clone();
        body["stream"] = json!(true);
        let response = self.post(&format!("/{upstream}/v2/chat"), &body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        let events = text
            .strip_suffix("data: [DONE]\n\n")
            .unwrap_or_else(|| panic!("no [DONE]: {text}"));
        named_events(events)
    }
}

fn cohere_body(prompt: &str) -> Value {
    json!({
        "model": "command-a-sim",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": prompt}
        ]
    })
}

fn cohere_tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
            }, "required": ["city", "unit"]}
        }},
        {"type": "function", "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
        }}
    ])
}

/// Rebuilds a non-streamed response's `message`, `finish_reason` and `usage` from stream events.
fn cohere_reassemble(events: &[(String, Value)]) -> Value {
    let mut message = json!({"role": "assistant"});
    let (mut content, mut calls, mut citations) = (Vec::new(), Vec::new(), Vec::new());
    let mut plan = String::new();
    let mut end = Value::Null;
    for (name, data) in events {
        let delta = &data["delta"]["message"];
        match name.as_str() {
            "message-start" => assert_eq!(delta["role"], "assistant"),
            "content-start" => {
                assert_eq!(data["index"], content.len());
                content.push(delta["content"].clone());
            }
            "content-delta" => {
                let block: &mut Value = &mut content[data["index"].as_u64().unwrap() as usize];
                let key = block["type"].as_str().unwrap().to_owned();
                let text = block[&key].as_str().unwrap().to_owned()
                    + delta["content"][&key].as_str().unwrap();
                block[&key] = json!(text);
            }
            "tool-plan-delta" => plan.push_str(delta["tool_plan"].as_str().unwrap()),
            "tool-call-start" => {
                assert_eq!(data["index"], calls.len());
                calls.push(delta["tool_calls"].clone());
            }
            "tool-call-delta" => {
                let call: &mut Value = &mut calls[data["index"].as_u64().unwrap() as usize];
                let arguments = call["function"]["arguments"].as_str().unwrap().to_owned()
                    + delta["tool_calls"]["function"]["arguments"]
                        .as_str()
                        .unwrap();
                call["function"]["arguments"] = json!(arguments);
            }
            "citation-start" => {
                assert_eq!(data["index"], citations.len());
                citations.push(delta["citations"].clone());
            }
            "message-end" => end = data["delta"].clone(),
            "content-end" | "tool-call-end" | "citation-end" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    if !content.is_empty() {
        message["content"] = json!(content);
    }
    if !plan.is_empty() {
        message["tool_plan"] = json!(plan);
    }
    if !calls.is_empty() {
        message["tool_calls"] = json!(calls);
    }
    if !citations.is_empty() {
        message["citations"] = json!(citations);
    }
    json!({"message": message, "finish_reason": end["finish_reason"], "usage": end["usage"]})
}

#[tokio::test]
async fn cohere_chat_shape_usage_and_determinism() {
    let sim = start().await;
    let reply = sim.cohere("co", &cohere_body("Hello, world!")).await;
    let id = reply["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(reply["finish_reason"], "COMPLETE");
    let message = &reply["message"];
    assert_eq!(message["role"], "assistant");
    assert!(message.get("tool_calls").is_none() && message.get("citations").is_none());
    let text = message["content"][0]["text"].as_str().unwrap();
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(text.split(' ').count(), 16);
    // Billed: the messages' own text; `tokens` adds 3 per message and 3 priming the reply.
    let billed = tokens("You are terse.") + tokens("Hello, world!");
    assert_eq!(
        reply["usage"],
        json!({"billed_units": {"input_tokens": billed, "output_tokens": 16},
               "tokens": {"input_tokens": billed + 2 * 3 + 3, "output_tokens": 16}})
    );
    let again = sim.cohere("co", &cohere_body("Hello, world!")).await;
    assert_eq!(again["message"], reply["message"]);
    assert_ne!(again["id"], reply["id"]);
    let other = sim.cohere("co", &cohere_body("Something else")).await;
    assert_ne!(other["message"], reply["message"]);
}

#[tokio::test]
async fn cohere_tools_parallel_then_results_with_citations() {
    let sim = start().await;
    let mut body = cohere_body("Call get_weather and get_time for Paris");
    body["tools"] = cohere_tools();
    let reply = sim.cohere("co", &body).await;
    assert_eq!(reply["finish_reason"], "TOOL_CALL");
    let message = &reply["message"];
    assert_eq!(
        message["tool_plan"],
        "I will use get_weather and get_time to answer this."
    );
    assert!(message.get("content").is_none());
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    let mut output_tokens = tokens(message["tool_plan"].as_str().unwrap());
    for (call, name) in calls.iter().zip(["get_weather", "get_time"]) {
        let id = call["id"].as_str().unwrap();
        let suffix = id.strip_prefix(&format!("{name}_")).unwrap();
        assert_eq!(suffix.len(), 12);
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], name);
        let arguments = call["function"]["arguments"].as_str().unwrap();
        let args: Value = serde_json::from_str(arguments).unwrap();
        assert!(args.is_object());
        output_tokens += tokens(name) + tokens(arguments);
    }
    assert_eq!(
        reply["usage"]["billed_units"]["output_tokens"],
        output_tokens
    );

    // No mention, no call; NONE suppresses; REQUIRED forces the first tool.
    let mut plain = cohere_body("Just chat");
    plain["tools"] = cohere_tools();
    assert!(sim.cohere("co", &plain).await["message"]
        .get("tool_calls")
        .is_none());
    let mut none = body.clone();
    none["tool_choice"] = json!("NONE");
    assert_eq!(sim.cohere("co", &none).await["finish_reason"], "COMPLETE");
    plain["tool_choice"] = json!("REQUIRED");
    let forced = sim.cohere("co", &plain).await;
    assert_eq!(
        forced["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );

    // The tool results turn is answered with text citing each result.
    let mut second = body.clone();
    let messages = second["messages"].as_array_mut().unwrap();
    messages
        .push(json!({"role": "assistant", "tool_plan": message["tool_plan"], "tool_calls": calls}));
    messages
        .push(json!({"role": "tool", "tool_call_id": calls[0]["id"], "content": "{\"temp\": 21}"}));
    messages.push(json!({"role": "tool", "tool_call_id": calls[1]["id"],
        "content": [{"type": "text", "text": "noon"}, {"type": "document", "document": {"id": "clock", "data": {"zone": "CET"}}}]}));
    let answer = sim.cohere("co", &second).await;
    assert_eq!(answer["finish_reason"], "COMPLETE");
    let text = answer["message"]["content"][0]["text"].as_str().unwrap();
    let citations = answer["message"]["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 3);
    let sources: Vec<Value> = citations
        .iter()
        .map(|c| {
            let (start, end) = (
                c["start"].as_u64().unwrap() as usize,
                c["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(c["text"], text[start..end]);
            assert_eq!(c["type"], "TEXT_CONTENT");
            assert_eq!(c["content_index"], 0);
            c["sources"][0].clone()
        })
        .collect();
    let (weather, time) = (
        calls[0]["id"].as_str().unwrap(),
        calls[1]["id"].as_str().unwrap(),
    );
    assert_eq!(
        sources,
        [
            json!({"type": "tool", "id": format!("{weather}:0"), "tool_output": {"temp": 21}}),
            json!({"type": "tool", "id": format!("{time}:0"), "tool_output": {"text": "noon"}}),
            json!({"type": "tool", "id": format!("{time}:1"), "tool_output": {"zone": "CET"}}),
        ]
    );
    let mut uncited = second.clone();
    uncited["citation_options"] = json!({"mode": "OFF"});
    assert!(sim.cohere("co", &uncited).await["message"]
        .get("citations")
        .is_none());
    // A tool message must answer a call made earlier.
    let mut orphan = cohere_body("x");
    orphan["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "tool", "tool_call_id": "get_weather_zzz", "content": "{}"}));
    let response = sim.post("/co/v2/chat", &orphan).await;
    assert_eq!(response.status(), 400);
    assert!(response.json_value().await["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid request: messages[2].tool_call_id"));
}

#[tokio::test]
async fn cohere_thinking_block_comes_first() {
    let sim = start().await;
    let mut body = cohere_body("Think first");
    body["thinking"] = json!({"type": "enabled", "token_budget": 10});
    let reply = sim.cohere("co", &body).await;
    let content = reply["message"]["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking");
    assert_eq!(tokens(content[0]["thinking"].as_str().unwrap()), 10);
    assert_eq!(content[1]["type"], "text");
    assert_eq!(reply["usage"]["tokens"]["output_tokens"], 26);
    // Passing the thinking back is accepted (and billed as text).
    let mut next = body.clone();
    let messages = next["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": content}));
    messages.push(json!({"role": "user", "content": "more"}));
    let again = sim.cohere("co", &next).await;
    let billed = reply["usage"]["billed_units"]["input_tokens"]
        .as_u64()
        .unwrap()
        + 26
        + 1;
    assert_eq!(again["usage"]["billed_units"]["input_tokens"], billed);
}

#[tokio::test]
async fn cohere_json_response_format() {
    let sim = start().await;
    let mut body = cohere_body("Give me JSON");
    body["response_format"] = json!({"type": "json_object", "json_schema": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 1, "maximum": 9}},
        "required": ["name", "age"]
    }});
    body["max_tokens"] = json!(2);
    let reply = sim.cohere("co", &body).await;
    assert_eq!(reply["finish_reason"], "COMPLETE", "JSON is never cut");
    let doc: Value =
        serde_json::from_str(reply["message"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(doc["name"].is_string());
    assert!((1..=9).contains(&doc["age"].as_i64().unwrap()));
    body["response_format"] = json!({"type": "json_object"});
    let reply = sim.cohere("co", &body).await;
    let doc: Value =
        serde_json::from_str(reply["message"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert!(doc.is_object());
    body["tools"] = cohere_tools();
    assert_eq!(sim.post("/co/v2/chat", &body).await.status(), 400);
}

#[tokio::test]
async fn cohere_max_tokens_and_stop_sequences() {
    let sim = start().await;
    let mut body = cohere_body("Hello");
    body["max_tokens"] = json!(5);
    let reply = sim.cohere("co", &body).await;
    assert_eq!(reply["finish_reason"], "MAX_TOKENS");
    assert_eq!(reply["usage"]["billed_units"]["output_tokens"], 5);
    let full = sim.cohere("co", &cohere_body("Hello")).await;
    let text = full["message"]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with(reply["message"]["content"][0]["text"].as_str().unwrap()));
    let fourth = format!(" {}", text.split(' ').nth(3).unwrap());
    let mut stop = cohere_body("Hello");
    stop["stop_sequences"] = json!(["never-there", fourth]);
    let cut = sim.cohere("co", &stop).await;
    assert_eq!(cut["finish_reason"], "STOP_SEQUENCE");
    let cut_text = cut["message"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(cut_text.split(' ').count(), 3);
    assert_eq!(cut["usage"]["billed_units"]["output_tokens"], 3);
}

#[tokio::test]
async fn cohere_validation_errors_name_the_field() {
    let sim = start().await;
    let bad = |body: Value| {
        let sim = &sim;
        async move {
            let response = sim.post("/co/v2/chat", &body).await;
            assert_eq!(response.status(), 400, "{body}");
            let error = response.json_value().await;
            assert_eq!(error.as_object().unwrap().len(), 1, "{error}");
            error["message"].as_str().unwrap().to_owned()
        }
    };
    let mut no_model = cohere_body("x");
    no_model.as_object_mut().unwrap().remove("model");
    assert_eq!(bad(no_model).await, "invalid request: model is required");
    let mut empty = cohere_body("x");
    empty["messages"] = json!([]);
    assert_eq!(
        bad(empty).await,
        "invalid request: messages must contain at least one message"
    );
    let mut role = cohere_body("x");
    role["messages"][0]["role"] = json!("developer");
    assert!(bad(role)
        .await
        .starts_with("invalid request: messages[0].role must be one of"));
    let mut choice = cohere_body("x");
    choice["tool_choice"] = json!("auto");
    assert_eq!(
        bad(choice).await,
        "invalid request: tool_choice must be one of REQUIRED, NONE"
    );
    let mut tools = cohere_body("x");
    tools["tools"] = json!([{"type": "function", "function": {"name": "f"}}]);
    assert_eq!(
        bad(tools).await,
        "invalid request: tools[0].function.parameters is required"
    );
    let mut format = cohere_body("x");
    format["response_format"] = json!({"type": "json_schema"});
    assert!(bad(format).await.contains("response_format.type"));
    let mut stops = cohere_body("x");
    stops["stop_sequences"] = json!(["a", "b", "c", "d", "e", "f"]);
    assert!(bad(stops).await.contains("stop_sequences"));
    let response = sim
        .client
        .post(sim.url("/co/v2/chat"))
        .bearer_auth("k")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.json_value().await["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid request: the body is not valid JSON"));
}

#[tokio::test]
async fn cohere_auth_and_status_faults() {
    let sim = start().await;
    sim.control(
        "coflaky",
        "faults",
        &json!([{"status": 429, "retry_after_s": 2}, {"status": 500, "message": "scripted"}]),
    )
    .await;
    for auth in [None, Some("Bearer "), Some("Basic abc")] {
        let mut request = sim
            .client
            .post(sim.url("/coflaky/v2/chat"))
            .json_body(&cohere_body("x"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("x-debug-trace-id"));
        assert_eq!(
            response.json_value().await,
            json!({"message": "no api key supplied"})
        );
    }
    // Rejected requests consumed no fault: the 429 comes next, with Retry-After.
    let mut stream = cohere_body("x");
    stream["stream"] = json!(true);
    let response = sim.post("/coflaky/v2/chat", &stream).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert!(response.json_value().await["message"].is_string());
    let response = sim
        .post(
            "/coflaky/v2/embed",
            &json!({"model": "embed-v4.0", "input_type": "search_query", "texts": ["x"]}),
        )
        .await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.json_value().await, json!({"message": "scripted"}));
    sim.cohere("coflaky", &cohere_body("x")).await;
    let recorded = sim.recorded("coflaky").await;
    assert_eq!(recorded.len(), 6);
    assert_eq!(recorded[4]["path"], "/coflaky/v2/embed");
    assert_eq!(recorded[5]["headers"]["authorization"], "Bearer sk-test");
}

#[tokio::test]
async fn cohere_connection_faults() {
    let sim = start().await;
    sim.cohere("corst", &cohere_body("warm")).await;
    sim.control(
        "corst",
        "faults",
        &json!([
            {"kind": "reset"},
            {"kind": "stall_ms", "ms": 200},
            {"kind": "cut_after_chunks", "n": 3},
            {"kind": "cut_after_chunks", "n": 1000},
            {"kind": "malformed", "count": 2}
        ]),
    )
    .await;
    let result = sim
        .client
        .post(sim.url("/corst/v2/chat"))
        .bearer_auth("k")
        .json_body(&cohere_body("x"))
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a connection error, got {result:?}"
    );
    let started = Instant::now();
    sim.cohere("corst", &cohere_body("x")).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    let mut body = cohere_body("x");
    body["stream"] = json!(true);
    // Everything but message-end: start, content-start, 16 deltas, content-end.
    for expected in [3, 1 + 1 + 16 + 1] {
        let response = sim.post("/corst/v2/chat", &body).await;
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
        assert!(!text.contains("message-end") && !text.contains("[DONE]"));
    }
    let response = sim.post("/corst/v2/chat", &cohere_body("x")).await;
    assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());
    let response = sim.post("/corst/v2/chat", &body).await;
    assert_eq!(
        response.text().await.unwrap_or_default(),
        "event: message-start\ndata: {not json\n\n"
    );
    sim.cohere("corst", &cohere_body("x")).await;
}

#[tokio::test]
async fn cohere_stream_reassembles_to_the_chat_response() {
    let sim = start().await;
    let mut thinking = cohere_body("Hello");
    thinking["thinking"] = json!({"type": "enabled"});
    let mut tools = cohere_body("Use get_weather and get_time");
    tools["tools"] = cohere_tools();
    let mut cited = cohere_body("What do the documents say?");
    cited["documents"] = json!(["alpha", {"id": "beta", "data": {"text": "beta"}}]);
    for body in [cohere_body("Hello"), thinking, tools, cited] {
        let whole = sim.cohere("costream", &body).await;
        let events = sim.cohere_stream("costream", &body).await;
        assert_eq!(events[0].0, "message-start");
        assert_eq!(
            events[0].1["delta"]["message"],
            json!({"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []})
        );
        assert_eq!(events.last().unwrap().0, "message-end");
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        if let Some(at) = names.iter().position(|n| *n == "citation-start") {
            assert!(at < names.iter().rposition(|n| *n == "content-end").unwrap());
        }
        if names.contains(&"tool-plan-delta") {
            let last_plan = names.iter().rposition(|n| *n == "tool-plan-delta").unwrap();
            assert!(last_plan < names.iter().position(|n| *n == "tool-call-start").unwrap());
        }
        let rebuilt = cohere_reassemble(&events);
        assert_eq!(rebuilt["message"], whole["message"], "{body}");
        assert_eq!(rebuilt["finish_reason"], whole["finish_reason"]);
        assert_eq!(rebuilt["usage"], whole["usage"]);
    }
    // One token per delta, paced by the behaviour.
    sim.control(
        "costream",
        "behaviour",
        &json!({"ttft_ms": 100, "tokens_per_s": 100, "output_tokens": 10}),
    )
    .await;
    let started = Instant::now();
    let events = sim.cohere_stream("costream", &cohere_body("Hello")).await;
    assert!(started.elapsed() >= Duration::from_millis(180));
    assert_eq!(
        events.iter().filter(|(n, _)| n == "content-delta").count(),
        10
    );
}

#[tokio::test]
async fn cohere_embed_types_dimensions_and_validation() {
    let sim = start().await;
    let body = json!({
        "model": "embed-v4.0", "input_type": "search_document",
        "texts": ["hello world", "bye"],
        "embedding_types": ["float", "int8", "uint8", "binary", "ubinary", "base64"]
    });
    let response = sim.post("/coemb/v2/embed", &body).await;
    assert_eq!(response.status(), 200);
    let reply = response.json_value().await;
    assert_eq!(reply["id"].as_str().unwrap().len(), 36);
    assert_eq!(reply["texts"], json!(["hello world", "bye"]));
    assert_eq!(reply["response_type"], "embeddings_by_type");
    assert_eq!(
        reply["meta"],
        json!({"api_version": {"version": "2"}, "billed_units": {"input_tokens": 3}})
    );
    let embeddings = &reply["embeddings"];
    let float = embeddings["float"].as_array().unwrap();
    assert_eq!(float.len(), 2);
    let first: Vec<f64> = float[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(first.len(), 16);
    assert!((first.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-4);
    let int8: Vec<i64> = embeddings["int8"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    for (i, x) in int8.iter().zip(&first) {
        assert!((*i as f64 - x * 127.0).abs() <= 0.51);
    }
    let ubinary = embeddings["ubinary"][0].as_array().unwrap();
    assert_eq!(ubinary.len(), 2);
    let top_bit = ubinary[0].as_u64().unwrap() >> 7;
    assert_eq!(top_bit, u64::from(first[0] > 0.0));
    assert_eq!(
        embeddings["binary"][0][0].as_i64().unwrap(),
        ubinary[0].as_i64().unwrap() - 128
    );
    let decoded = b64_decode(embeddings["base64"][0].as_str().unwrap());
    assert_eq!(decoded.len(), 64);
    let x0 = f32::from_le_bytes(decoded[..4].try_into().unwrap());
    assert!((f64::from(x0) - first[0]).abs() < 1e-6);
    assert_eq!(embeddings["uint8"][0].as_array().unwrap().len(), 16);

    // The same text gives the same vector; output_dimension widens it; float is the default.
    let again = sim
        .post("/coemb/v2/embed", &json!({"model": "embed-v4.0", "input_type": "search_query", "texts": ["hello world"], "output_dimension": 256}))
        .await
        .json_value()
        .await;
    assert_eq!(
        again["embeddings"]["float"][0].as_array().unwrap().len(),
        256
    );
    assert!(again["embeddings"].get("int8").is_none());
    let truncated = sim
        .post("/coemb/v2/embed", &json!({"model": "embed-v4.0", "input_type": "clustering", "texts": ["alpha beta gamma"], "max_tokens": 2}))
        .await
        .json_value()
        .await;
    assert_eq!(truncated["meta"]["billed_units"]["input_tokens"], 2);
    assert_eq!(truncated["texts"], json!(["alpha beta"]));

    for (body, want) in [
        (
            json!({"model": "embed-english-v3.0", "texts": ["x"]}),
            "input_type",
        ),
        (
            json!({"model": "embed-v4.0", "input_type": "query", "texts": ["x"]}),
            "input_type must be one of",
        ),
        (
            json!({"model": "embed-v4.0", "input_type": "search_query"}),
            "one of texts, images or inputs",
        ),
        (
            json!({"model": "embed-v4.0", "input_type": "search_query", "texts": ["x"], "embedding_types": ["f16"]}),
            "embedding_types",
        ),
        (
            json!({"model": "embed-v4.0", "input_type": "search_query", "texts": ["x"], "output_dimension": 100}),
            "output_dimension",
        ),
        (
            json!({"model": "embed-v4.0", "input_type": "search_query", "texts": ["a b c"], "max_tokens": 1, "truncate": "NONE"}),
            "texts[0] is longer",
        ),
    ] {
        let response = sim.post("/coemb/v2/embed", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let message = response.json_value().await["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.starts_with("invalid request: ") && message.contains(want),
            "{message}"
        );
    }
    // Models before v3 may omit input_type.
    let old = sim
        .post(
            "/coemb/v2/embed",
            &json!({"model": "embed-english-v2.0", "texts": ["x"]}),
        )
        .await;
    assert_eq!(old.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Azure OpenAI (`/{upstream}/openai/deployments/{deployment}/...?api-version=`).

const AZURE_CHAT: &str =
    "/az/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21";

impl Sim {
    async fn azure_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("api-key", "azure-key")
            .json_body(body)
            .send()
            .await
            .unwrap()
    }
}

fn azure_body(prompt: &str) -> Value {
    json!({"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": prompt}]})
}

fn safe() -> Value {
    json!({"filtered": false, "severity": "safe"})
}

#[tokio::test]
async fn azure_chat_reports_the_deployment_model_and_filter_results() {
    let sim = start().await;
    let response = sim
        .azure_post(AZURE_CHAT, &azure_body("Hello, world!"))
        .await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"].clone();
    assert_eq!(response.headers()["apim-request-id"], id);
    let reply = response.json_value().await;
    assert_eq!(reply["model"], "gpt-4o-mini-2024-07-18");
    assert!(reply.get("service_tier").is_none());
    assert_eq!(reply["usage"]["prompt_tokens"], 19);
    let choice = &reply["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    let results = &choice["content_filter_results"];
    for category in ["hate", "self_harm", "sexual", "violence"] {
        assert_eq!(results[category], safe(), "{category}");
    }
    assert_eq!(
        results["protected_material_text"],
        json!({"filtered": false, "detected": false})
    );
    let prompt = &reply["prompt_filter_results"][0];
    assert_eq!(prompt["prompt_index"], 0);
    assert_eq!(
        prompt["content_filter_results"]["jailbreak"],
        json!({"filtered": false, "detected": false})
    );
    // The same answer as OpenAI's route gives for the same messages.
    let mut openai = azure_body("Hello, world!");
    openai["model"] = json!("gpt-4o-mini");
    let plain = sim.chat("az", &openai).await;
    assert!(plain.get("prompt_filter_results").is_none());
    assert_eq!(plain["choices"][0].get("content_filter_results"), None);
    // Another deployment reports its own name; the body's model is ignored.
    let mut named = azure_body("Hello");
    named["model"] = json!("ignored");
    let reply = sim
        .azure_post(
            "/az/openai/deployments/my-deploy/chat/completions?api-version=2025-04-01-preview",
            &named,
        )
        .await
        .json_value()
        .await;
    assert_eq!(reply["model"], "my-deploy");
    let recorded = sim.recorded("az").await;
    assert_eq!(recorded[0]["path"], AZURE_CHAT);
    assert_eq!(recorded[0]["headers"]["api-key"], "azure-key");
}

#[tokio::test]
async fn azure_stream_opens_with_the_prompt_filter_chunk() {
    let sim = start().await;
    let whole = sim
        .azure_post(AZURE_CHAT, &azure_body("Hello"))
        .await
        .json_value()
        .await;
    let mut body = azure_body("Hello");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = sim.azure_post(AZURE_CHAT, &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("apim-request-id"));
    let events = sse_events(&response.text().await.unwrap());
    let chunks = chunks(&events);
    assert_eq!(
        chunks[0],
        json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
               "prompt_filter_results": whole["prompt_filter_results"]})
    );
    assert_eq!(chunks[1]["choices"][0]["content_filter_results"], json!({}));
    assert_eq!(chunks[1]["choices"][0]["delta"]["role"], "assistant");
    let mut text = String::new();
    for chunk in &chunks[1..] {
        assert_eq!(chunk["model"], "gpt-4o-mini-2024-07-18");
        assert!(chunk.get("service_tier").is_none());
        if let Some(piece) = chunk["choices"][0]["delta"]["content"].as_str() {
            if !piece.is_empty() {
                assert_eq!(
                    chunk["choices"][0]["content_filter_results"]["violence"],
                    safe()
                );
            }
            text.push_str(piece);
        }
    }
    assert_eq!(
        text,
        whole["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], whole["usage"]);
}

#[tokio::test]
async fn azure_embeddings_use_the_deployment() {
    let sim = start().await;
    let response = sim
        .azure_post(
            "/az/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
            &json!({"input": ["hello world", "bye"], "encoding_format": "float", "dimensions": 8}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let reply = response.json_value().await;
    assert_eq!(reply["model"], "text-embedding-3-small");
    assert_eq!(reply["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(reply["usage"]["prompt_tokens"], 3);
    // The same vectors as OpenAI's route.
    let openai = sim
        .post("/az/v1/embeddings", &json!({"model": "m", "input": ["hello world", "bye"], "encoding_format": "float", "dimensions": 8}))
        .await
        .json_value()
        .await;
    assert_eq!(openai["data"], reply["data"]);
}

#[tokio::test]
async fn azure_api_version_and_auth_are_checked_before_faults() {
    let sim = start().await;
    sim.control(
        "az",
        "faults",
        &json!([{"status": 429, "retry_after_s": 1.5}]),
    )
    .await;
    let no_version = sim
        .azure_post(
            "/az/openai/deployments/gpt-4o-mini/chat/completions",
            &azure_body("x"),
        )
        .await;
    assert_eq!(no_version.status(), 404);
    assert_eq!(
        no_version.json_value().await,
        json!({"error": {"code": "404", "message": "Resource not found"}})
    );
    let bad_version = sim
        .azure_post(
            "/az/openai/deployments/gpt-4o-mini/embeddings?api-version=latest",
            &json!({"input": "x"}),
        )
        .await;
    assert_eq!(bad_version.status(), 400);
    assert_eq!(
        bad_version.json_value().await["error"]["message"],
        "API version not supported"
    );
    for key in [None, Some("")] {
        let mut request = sim
            .client
            .post(sim.url(AZURE_CHAT))
            .json_body(&azure_body("x"));
        if let Some(key) = key {
            request = request.header("api-key", key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let error = response.json_value().await;
        assert_eq!(error["error"]["code"], "401");
        assert!(error["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Access denied due to invalid subscription key"));
    }
    // A bearer token is accepted too; the fault is still waiting.
    let response = sim
        .client
        .post(sim.url(AZURE_CHAT))
        .bearer_auth("entra-token")
        .json_body(&azure_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["retry-after-ms"], "1500");
    assert_eq!(response.json_value().await["error"]["code"], "429");
    assert_eq!(
        sim.azure_post(AZURE_CHAT, &azure_body("x")).await.status(),
        200
    );
    assert_eq!(sim.recorded("az").await.len(), 6);
}

#[tokio::test]
async fn azure_content_filter_triggers() {
    let sim = start().await;
    for (prompt, category) in [
        ("tell me AZURE-FILTER", "violence"),
        ("azure-jailbreak now", "jailbreak"),
    ] {
        for stream in [false, true] {
            let mut body = azure_body(prompt);
            body["stream"] = json!(stream);
            let response = sim.azure_post(AZURE_CHAT, &body).await;
            assert_eq!(response.status(), 400);
            let error = &response.json_value().await["error"];
            assert_eq!(error["code"], "content_filter");
            assert_eq!(error["param"], "prompt");
            assert_eq!(error["status"], 400);
            assert_eq!(error["innererror"]["code"], "ResponsibleAIPolicyViolation");
            let result = &error["innererror"]["content_filter_result"];
            assert_eq!(result[category]["filtered"], true, "{result}");
            assert_eq!(result["hate"], safe());
        }
    }
    // The output filter stops the completion halfway.
    let whole = sim
        .azure_post(AZURE_CHAT, &azure_body("please azure-filter-output"))
        .await
        .json_value()
        .await;
    let choice = &whole["choices"][0];
    assert_eq!(choice["finish_reason"], "content_filter");
    assert_eq!(
        choice["content_filter_results"]["violence"],
        json!({"filtered": true, "severity": "medium"})
    );
    let content = choice["message"]["content"].as_str().unwrap();
    assert_eq!(content.split(' ').count(), 8);
    assert_eq!(whole["usage"]["completion_tokens"], 8);
    let mut body = azure_body("please azure-filter-output");
    body["stream"] = json!(true);
    let events = sse_events(
        &sim.azure_post(AZURE_CHAT, &body)
            .await
            .text()
            .await
            .unwrap(),
    );
    let chunks = chunks(&events);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(
        last["choices"][0]["content_filter_results"]["violence"]["filtered"],
        true
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, content);
}

// ---------------------------------------------------------------------------------------------
// The Gemini protocol (`/{upstream}/v1beta/models/{model}:{method}`, and Vertex AI's shape).

const GEMINI_MODEL: &str = "gemini-sim";

impl Sim {
    /// A Gemini API request with its key in `x-goog-api-key`.
    async fn gemini_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("x-goog-api-key", "sim-key")
            .json_body(body)
            .send()
            .await
            .unwrap()
    }

    /// `generateContent` on `upstream`, expecting success.
    async fn gemini(&self, upstream: &str, body: &Value) -> Value {
        let path = format!("/{upstream}/v1beta/models/{GEMINI_MODEL}:generateContent");
        let response = self.gemini_post(&path, body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/json; charset=UTF-8"
        );
        response.json_value().await
    }

    /// The chunks of `streamGenerateContent`, as SSE (`alt=sse`) or as a JSON array.
    async fn gemini_stream(&self, upstream: &str, body: &Value, sse: bool) -> Vec<Value> {
        let alt = if sse { "?alt=sse" } else { "" };
        let path = format!("/{upstream}/v1beta/models/{GEMINI_MODEL}:streamGenerateContent{alt}");
        let response = self.gemini_post(&path, body).await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let text = response.text().await.unwrap();
        if sse {
            assert_eq!(content_type, "text/event-stream");
            gemini_sse(&text)
        } else {
            assert_eq!(content_type, "application/json; charset=UTF-8");
            assert!(text.starts_with("[{") && text.ends_with("}]"), "{text}");
            serde_json::from_str::<Value>(&text)
                .unwrap()
                .as_array()
                .unwrap()
                .clone()
        }
    }

    /// A 400 from `generateContent`, checked for Google's envelope; returns the message.
    async fn gemini_invalid(&self, body: &Value) -> String {
        let path = format!("/gem/v1beta/models/{GEMINI_MODEL}:generateContent");
        let response = self.gemini_post(&path, body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = response.json_value().await;
        assert_eq!(error["error"]["code"], 400);
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
        error["error"]["message"].as_str().unwrap().to_owned()
    }
}

/// The `data:` payloads of a Gemini SSE stream (events end with a CRLF blank line).
fn gemini_sse(text: &str) -> Vec<Value> {
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    text.split("\r\n\r\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"));
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

/// Rebuilds the whole response from its chunks, as a client would: consecutive text pieces
/// of the same kind are joined, function calls appended; the last chunk's usage and each
/// candidate's finish reason kept.
fn gemini_reassemble(chunks: &[Value]) -> Value {
    let mut candidates: Vec<Value> = Vec::new();
    for chunk in chunks {
        assert_eq!(chunk["responseId"], chunks[0]["responseId"]);
        assert_eq!(chunk["modelVersion"], GEMINI_MODEL);
        for candidate in chunk["candidates"].as_array().into_iter().flatten() {
            let index = candidate["index"].as_u64().unwrap() as usize;
            if candidates.len() <= index {
                candidates.push(json!({"content": {"parts": [], "role": "model"}, "index": index}));
            }
            let whole = &mut candidates[index];
            for part in candidate["content"]["parts"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let parts = whole["content"]["parts"].as_array_mut().unwrap();
                let joinable = part.get("text").is_some()
                    && parts.last().is_some_and(|last: &Value| {
                        last.get("text").is_some() && last.get("thought") == part.get("thought")
                    });
                if joinable {
                    let last = parts.last_mut().unwrap();
                    let text =
                        last["text"].as_str().unwrap().to_owned() + part["text"].as_str().unwrap();
                    last["text"] = json!(text);
                    if let Some(signature) = part.get("thoughtSignature") {
                        last["thoughtSignature"] = signature.clone();
                    }
                } else {
                    parts.push(part.clone());
                }
            }
            if let Some(reason) = candidate.get("finishReason") {
                whole["finishReason"] = reason.clone();
            }
        }
    }
    let last = chunks.last().unwrap();
    json!({
        "candidates": candidates,
        "usageMetadata": last["usageMetadata"],
        "modelVersion": last["modelVersion"],
    })
}

fn gemini_body(prompt: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": prompt}]}]})
}

fn gemini_tools() -> Value {
    json!([{"functionDeclarations": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "STRING"},
                    "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]}
                },
                "required": ["city", "unit"]
            }
        },
        {
            "name": "get_time",
            "parametersJsonSchema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
        }
    ]}])
}

fn thinking_config(include: bool) -> Value {
    json!({"thinkingConfig": {"includeThoughts": include, "thinkingBudget": 1024}})
}

#[tokio::test]
async fn gemini_text_shape_usage_and_determinism() {
    let sim = start().await;
    let mut body = gemini_body("Hello, world!");
    body["systemInstruction"] = json!({"parts": [{"text": "You are terse."}]});
    let reply = sim.gemini("gem", &body).await;
    let candidate = &reply["candidates"][0];
    assert_eq!(candidate["index"], 0);
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["content"]["role"], "model");
    let parts = candidate["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    let text = parts[0]["text"].as_str().unwrap();
    assert_eq!(text.split(' ').count(), 16);
    assert_eq!(reply["modelVersion"], GEMINI_MODEL);
    let id = reply["responseId"].as_str().unwrap();
    assert_eq!(id.len(), 22);
    assert!(reply.get("promptFeedback").is_none() && reply.get("createTime").is_none());

    // No per-turn overhead: system text and contents text.
    let prompt = tokens("You are terse.") + tokens("Hello, world!");
    assert_eq!(prompt, 8);
    assert_eq!(
        reply["usageMetadata"],
        json!({
            "promptTokenCount": prompt,
            "candidatesTokenCount": 16,
            "totalTokenCount": prompt + 16,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 16}]
        })
    );

    let again = sim.gemini("gem", &body).await;
    assert_eq!(again["candidates"], reply["candidates"]);
    assert_ne!(again["responseId"], reply["responseId"]);
    let other = sim.gemini("gem", &gemini_body("Something else")).await;
    assert_ne!(other["candidates"], reply["candidates"]);

    // countTokens agrees with promptTokenCount, in both of its request shapes.
    let path = format!("/gem/v1beta/models/{GEMINI_MODEL}:countTokens");
    let counted = sim.gemini_post(&path, &gemini_body("Hello, world!")).await;
    assert_eq!(counted.status(), 200);
    assert_eq!(
        counted.json_value().await,
        json!({"totalTokens": 4, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 4}]})
    );
    let wrapped = json!({"generateContentRequest": {"model": format!("models/{GEMINI_MODEL}"), "contents": body["contents"], "systemInstruction": body["systemInstruction"]}});
    let counted = sim.gemini_post(&path, &wrapped).await.json_value().await;
    assert_eq!(counted["totalTokens"], prompt);

    // Media parts count 258 each, by modality; function calls and responses by their JSON.
    let media = json!({"contents": [
        {"role": "user", "parts": [{"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}, {"fileData": {"mimeType": "application/pdf", "fileUri": "https://x/y.pdf"}}]}
    ]});
    let usage = sim.gemini("gem", &media).await["usageMetadata"].clone();
    assert_eq!(usage["promptTokenCount"], 1 + 258 + 258);
    assert_eq!(
        usage["promptTokensDetails"],
        json!([{"modality": "TEXT", "tokenCount": 1}, {"modality": "IMAGE", "tokenCount": 258}, {"modality": "DOCUMENT", "tokenCount": 258}])
    );

    // The same model under /v1, and Vertex AI's path with a bearer token.
    let v1 = sim
        .gemini_post(
            &format!("/gem/v1/models/{GEMINI_MODEL}:generateContent"),
            &body,
        )
        .await;
    assert_eq!(v1.json_value().await["candidates"], reply["candidates"]);
    let vertex = sim
        .client
        .post(sim.url(&format!(
            "/vtx/v1/projects/p1/locations/us-central1/publishers/google/models/{GEMINI_MODEL}:generateContent"
        )))
        .bearer_auth("ya29.token")
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(vertex.status(), 200);
    let vertex = vertex.json_value().await;
    assert_eq!(vertex["candidates"], reply["candidates"]);
    assert_eq!(vertex["usageMetadata"]["trafficType"], "ON_DEMAND");
    let created = vertex["createTime"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 27, "{created}");
}

#[tokio::test]
async fn gemini_thinking_with_signature() {
    let sim = start().await;
    let mut body = gemini_body("Think first");
    body["generationConfig"] = thinking_config(true);
    let reply = sim.gemini("gem", &body).await;
    let parts = reply["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(tokens(parts[0]["text"].as_str().unwrap()), 16);
    assert!(parts[0].get("thoughtSignature").is_none());
    assert!(parts[1].get("thought").is_none());
    let signature = parts[1]["thoughtSignature"].as_str().unwrap();
    assert!(signature.len() >= 64);
    assert!(signature
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)));
    let usage = &reply["usageMetadata"];
    assert_eq!(usage["thoughtsTokenCount"], 16);
    assert_eq!(usage["candidatesTokenCount"], 16);
    assert_eq!(usage["totalTokenCount"], 2 + 32);

    // Without includeThoughts the thinking still happens (and is billed) but is not shown;
    // the answer and its signature are the same.
    body["generationConfig"] = thinking_config(false);
    let hidden = sim.gemini("gem", &body).await;
    let hidden_parts = hidden["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(hidden_parts.len(), 1);
    assert_eq!(hidden_parts[0], parts[1]);
    assert_eq!(hidden["usageMetadata"]["thoughtsTokenCount"], 16);

    // maxOutputTokens caps thoughts and answer together; a budget caps the thoughts.
    body["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 4}, "maxOutputTokens": 10});
    let capped = sim.gemini("gem", &body).await;
    assert_eq!(capped["usageMetadata"]["thoughtsTokenCount"], 4);
    assert_eq!(capped["usageMetadata"]["candidatesTokenCount"], 6);
    assert_eq!(capped["candidates"][0]["finishReason"], "MAX_TOKENS");
    body["generationConfig"] =
        json!({"thinkingConfig": {"includeThoughts": true}, "maxOutputTokens": 10});
    let starved = sim.gemini("gem", &body).await;
    let starved_parts = starved["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(starved_parts.len(), 1, "all thought, no answer");
    assert_eq!(starved_parts[0]["thought"], true);
    assert_eq!(starved["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert!(starved["usageMetadata"]
        .get("candidatesTokenCount")
        .is_none());

    // A budget of 0 turns thinking off.
    body["generationConfig"] =
        json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 0}});
    let off = sim.gemini("gem", &body).await;
    assert!(off["candidates"][0]["content"]["parts"][0]
        .get("thoughtSignature")
        .is_none());
    assert!(off["usageMetadata"].get("thoughtsTokenCount").is_none());
}

#[tokio::test]
async fn gemini_parallel_function_calls_and_responses() {
    let sim = start().await;
    let mut body = gemini_body("Call get_weather and get_time for Paris");
    body["tools"] = gemini_tools();
    body["generationConfig"] = thinking_config(false);
    let reply = sim.gemini("gem", &body).await;
    let candidate = &reply["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP");
    let parts = candidate["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let weather = &parts[0]["functionCall"];
    assert_eq!(weather["name"], "get_weather");
    assert!(
        weather.get("id").is_none(),
        "the Gemini API sends no call ids"
    );
    assert!(weather["args"]["city"].is_string());
    assert!(["celsius", "fahrenheit"].contains(&weather["args"]["unit"].as_str().unwrap()));
    assert_eq!(parts[1]["functionCall"]["name"], "get_time");
    assert!(parts[1]["functionCall"]["args"]["zone"].is_string());
    assert!(
        parts[0]["thoughtSignature"].is_string(),
        "signature on the first call"
    );
    assert!(parts[1].get("thoughtSignature").is_none());
    let output: u64 = parts
        .iter()
        .map(|p| {
            tokens(p["functionCall"]["name"].as_str().unwrap())
                + tokens(&p["functionCall"]["args"].to_string())
        })
        .sum();
    assert_eq!(reply["usageMetadata"]["candidatesTokenCount"], output);
    // Tool definitions are prompt tokens.
    let tool_tokens: u64 = gemini_tools()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| tokens(&t.to_string()))
        .sum();
    assert_eq!(
        reply["usageMetadata"]["promptTokenCount"],
        tokens("Call get_weather and get_time for Paris") + tool_tokens
    );

    // The function-response turn is answered with text.
    let responses: Vec<Value> = parts
        .iter()
        .map(|p| json!({"functionResponse": {"name": p["functionCall"]["name"], "response": {"result": "sunny"}}}))
        .collect();
    let mut second = body.clone();
    second["contents"] = json!([
        body["contents"][0],
        candidate["content"],
        {"role": "user", "parts": responses}
    ]);
    let answer = sim.gemini("gem", &second).await;
    let answer_parts = answer["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(answer_parts.len(), 1);
    assert!(answer_parts[0]["text"].is_string());
    assert!(answer_parts[0]["thoughtSignature"].is_string());
    let result_tokens: u64 = responses
        .iter()
        .map(|r| {
            tokens(r["functionResponse"]["name"].as_str().unwrap())
                + tokens(&r["functionResponse"]["response"].to_string())
        })
        .sum();
    assert_eq!(
        answer["usageMetadata"]["promptTokenCount"],
        reply["usageMetadata"]["promptTokenCount"].as_u64().unwrap() + output + result_tokens
    );
    // Every call needs its response.
    second["contents"][2]["parts"] = json!([responses[0]]);
    assert!(sim.gemini_invalid(&second).await.contains(
        "number of function response parts is equal to the number of function call parts"
    ));

    // Modes: NONE never calls, ANY forces (within allowedFunctionNames), one mention one call.
    let mut none = body.clone();
    none["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
    assert!(
        sim.gemini("gem", &none).await["candidates"][0]["content"]["parts"][0]["text"].is_string()
    );
    let mut any = gemini_body("no mention here");
    any["tools"] = gemini_tools();
    any["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY"}});
    assert_eq!(
        sim.gemini("gem", &any).await["candidates"][0]["content"]["parts"][0]["functionCall"]
            ["name"],
        "get_weather"
    );
    any["toolConfig"] =
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}});
    let forced = sim.gemini("gem", &any).await;
    let forced_parts = forced["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(forced_parts.len(), 1);
    assert_eq!(forced_parts[0]["functionCall"]["name"], "get_time");
    let mut one = gemini_body("what does get_time say?");
    one["tools"] = gemini_tools();
    let one = sim.gemini("gem", &one).await;
    assert_eq!(
        one["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn gemini_json_mode_and_schemas() {
    let sim = start().await;
    let mut body = gemini_body("Describe Paris");
    body["generationConfig"] = json!({
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "name": {"type": "STRING"},
                "population": {"type": "INTEGER", "minimum": 1},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "2", "maxItems": "2"},
                "kind": {"type": "STRING", "enum": ["city", "town"], "nullable": true}
            },
            "required": ["name", "population", "tags"],
            "propertyOrdering": ["name", "population", "tags", "kind"]
        },
        "maxOutputTokens": 3
    });
    let reply = sim.gemini("gem", &body).await;
    let text = reply["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    let doc: Value = serde_json::from_str(text).unwrap();
    assert!(doc["name"].is_string());
    assert!(doc["population"].as_i64().unwrap() >= 1);
    assert_eq!(doc["tags"].as_array().unwrap().len(), 2);
    assert!(["city", "town"].contains(&doc["kind"].as_str().unwrap()));
    assert_eq!(reply["candidates"][0]["finishReason"], "STOP", "never cut");
    assert_eq!(reply["usageMetadata"]["candidatesTokenCount"], tokens(text));

    body["generationConfig"] = json!({
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "maximum": 3}}, "required": ["ok", "n"]}
    });
    let reply = sim.gemini("gem", &body).await;
    let doc: Value = serde_json::from_str(
        reply["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(doc["ok"].is_boolean() && doc["n"].as_i64().unwrap() <= 3);

    body["generationConfig"] = json!({"responseMimeType": "application/json"});
    let reply = sim.gemini("gem", &body).await;
    let doc: Value = serde_json::from_str(
        reply["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(doc.is_object());

    body["generationConfig"] = json!({"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["red", "green"]}});
    let reply = sim.gemini("gem", &body).await;
    let text = reply["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert!(["red", "green"].contains(&text), "{text}");
}

#[tokio::test]
async fn gemini_max_tokens_stop_sequences_and_candidates() {
    let sim = start().await;
    let body = gemini_body("Hello");
    let whole = sim.gemini("gem", &body).await;
    let whole_text = whole["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut capped = body.clone();
    capped["generationConfig"] = json!({"maxOutputTokens": 5});
    let reply = sim.gemini("gem", &capped).await;
    let text = reply["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(reply["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(tokens(text), 5);
    assert!(
        whole_text.starts_with(text),
        "a cut answer is a prefix of the whole"
    );
    assert_eq!(reply["usageMetadata"]["candidatesTokenCount"], 5);

    let third = whole_text.split(' ').nth(2).unwrap();
    let mut stopped = body.clone();
    stopped["generationConfig"] = json!({"stopSequences": ["zzz", format!(" {third}")]});
    let reply = sim.gemini("gem", &stopped).await;
    let text = reply["candidates"][0]["content"]["parts"][0]["text"]
        .as_str()
        .unwrap();
    assert_eq!(reply["candidates"][0]["finishReason"], "STOP");
    assert!(whole_text.starts_with(text) && tokens(text) <= 2, "{text}");

    let mut many = body.clone();
    many["generationConfig"] = json!({"candidateCount": 3});
    let reply = sim.gemini("gem", &many).await;
    let candidates = reply["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 3);
    assert_eq!(candidates[0]["content"], whole["candidates"][0]["content"]);
    assert_ne!(candidates[1]["content"], candidates[0]["content"]);
    for (i, c) in candidates.iter().enumerate() {
        assert_eq!(c["index"], i);
    }
    assert_eq!(reply["usageMetadata"]["candidatesTokenCount"], 48);
}

#[tokio::test]
async fn gemini_safety_triggers() {
    let sim = start().await;
    let reply = sim
        .gemini("gem", &gemini_body("please UNSAFE-BLOCK this"))
        .await;
    assert!(reply.get("candidates").is_none());
    let feedback = &reply["promptFeedback"];
    assert_eq!(feedback["blockReason"], "SAFETY");
    let ratings = feedback["safetyRatings"].as_array().unwrap();
    assert!(ratings
        .iter()
        .any(|r| r["blocked"] == true && r["probability"] == "HIGH"));
    assert_eq!(
        reply["usageMetadata"]["promptTokenCount"],
        tokens("please UNSAFE-BLOCK this")
    );
    assert!(reply["usageMetadata"].get("candidatesTokenCount").is_none());
    let chunks = sim
        .gemini_stream("gem", &gemini_body("unsafe-block"), true)
        .await;
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["promptFeedback"]["blockReason"], "SAFETY");

    let reply = sim
        .gemini("gem", &gemini_body("an unsafe-answer please"))
        .await;
    let candidate = &reply["candidates"][0];
    assert_eq!(candidate["finishReason"], "SAFETY");
    assert!(candidate.get("content").is_none());
    assert!(candidate["safetyRatings"].as_array().unwrap().len() >= 4);
}

#[tokio::test]
async fn gemini_validation_errors_name_the_field() {
    let sim = start().await;
    let user = json!([{"role": "user", "parts": [{"text": "x"}]}]);
    assert_eq!(
        sim.gemini_invalid(&json!({})).await,
        "* GenerateContentRequest.contents: contents is not specified\n"
    );
    assert_eq!(
        sim.gemini_invalid(&json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}))
            .await,
        "Please use a valid role: user, model."
    );
    assert_eq!(
        sim.gemini_invalid(&json!({"contents": [{"role": "user", "parts": []}]}))
            .await,
        "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n"
    );
    assert!(sim
        .gemini_invalid(&json!({"contents": [{"role": "user", "parts": [{"image": "x"}]}]}))
        .await
        .starts_with(
            "Invalid JSON payload received. Unknown name \"image\" at 'contents[0].parts[0]'"
        ));
    // Parser errors carry a BadRequest field violation.
    let response = sim
        .gemini_post(
            &format!("/gem/v1beta/models/{GEMINI_MODEL}:generateContent"),
            &json!({"contents": user, "generationConfig": {"maxOutputTokens": "lots"}}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let error = response.json_value().await;
    assert_eq!(
        error["error"]["message"],
        "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), \"lots\""
    );
    assert_eq!(
        error["error"]["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(
        error["error"]["details"][0]["fieldViolations"][0]["field"],
        "generation_config.max_output_tokens"
    );
    assert!(sim
        .gemini_invalid(&json!({"contents": user, "generationConfig": {"temperature": 9}}))
        .await
        .contains("generation_config.temperature"));
    assert!(sim
        .gemini_invalid(&json!({"contents": user, "generationConfig": {"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "oneOf": []}}}))
        .await
        .contains("Unknown name \"oneOf\" at 'generation_config.response_schema'"));
    assert!(sim
        .gemini_invalid(&json!({"contents": user, "tools": [{"functionDeclarations": [{"name": "9lives"}]}]}))
        .await
        .starts_with("* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name."));
    assert!(sim
        .gemini_invalid(&json!({"contents": user, "tools": [{"function_declarations": [{"name": "f", "parameters": {"type": "OBJECT"}, "parametersJsonSchema": {}}]}]}))
        .await
        .contains("cannot both be set"));
    assert!(sim
        .gemini_invalid(&json!({"contents": user, "messages": []}))
        .await
        .contains("Unknown name \"messages\": Cannot find field."));

    let not_json = sim
        .client
        .post(sim.url(&format!(
            "/gem/v1beta/models/{GEMINI_MODEL}:generateContent"
        )))
        .header("x-goog-api-key", "k")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let error = not_json.json_value().await;
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid JSON payload received."));

    let unknown = sim
        .gemini_post(&format!("/gem/v1beta/models/{GEMINI_MODEL}:predict"), &user)
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json_value().await["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn gemini_auth_rules() {
    let sim = start().await;
    let path = format!("/auth/v1beta/models/{GEMINI_MODEL}:generateContent");
    sim.control("auth", "faults", &json!([{"status": 500}]))
        .await;
    let body = gemini_body("x");

    let no_key = sim
        .client
        .post(sim.url(&path))
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 403);
    let error = no_key.json_value().await;
    assert_eq!(error["error"]["code"], 403);
    assert_eq!(error["error"]["status"], "PERMISSION_DENIED");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Method doesn't allow unregistered callers"));

    let bearer = sim
        .client
        .post(sim.url(&path))
        .bearer_auth("ya29.token")
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401);
    assert_eq!(
        bearer.json_value().await["error"]["status"],
        "UNAUTHENTICATED"
    );

    let vertex_path = format!(
        "/auth/v1beta1/projects/p/locations/global/publishers/google/models/{GEMINI_MODEL}:generateContent"
    );
    let vertex = sim
        .client
        .post(sim.url(&vertex_path))
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(vertex.status(), 401);
    let error = vertex.json_value().await;
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "CREDENTIALS_MISSING"
    );

    // Rejections drew no fault: the first admitted request (key in the query) gets it.
    let query_key = sim
        .client
        .post(sim.url(&format!("{path}?key=abc")))
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(query_key.status(), 500);
    assert_eq!(query_key.json_value().await["error"]["status"], "INTERNAL");
    let query_key = sim
        .client
        .post(sim.url(&format!("{path}?key=abc")))
        .json_body(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(query_key.status(), 200);
    let recorded = sim.recorded("auth").await;
    assert_eq!(recorded.len(), 5);
    assert_eq!(recorded[4]["path"], format!("{path}?key=abc"));
    assert_eq!(recorded[4]["body"], body);
}

#[tokio::test]
async fn gemini_status_faults_use_google_statuses() {
    let sim = start().await;
    let path = format!("/flaky/v1beta/models/{GEMINI_MODEL}:generateContent");
    for (status, name) in [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ] {
        sim.control("flaky", "faults", &json!({"status": status}))
            .await;
        let response = sim.gemini_post(&path, &gemini_body("x")).await;
        assert_eq!(response.status().as_u16(), status);
        let error = response.json_value().await;
        assert_eq!(error["error"]["code"], status);
        assert_eq!(error["error"]["status"], name);
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    sim.control(
        "flaky",
        "faults",
        &json!([{"status": 429, "retry_after_s": 1.5, "count": 2}, {"status": 503, "message": "scripted"}]),
    )
    .await;
    for _ in 0..2 {
        let stream_path =
            format!("/flaky/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse");
        let response = sim.gemini_post(&stream_path, &gemini_body("x")).await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "2");
        let error = response.json_value().await;
        assert_eq!(
            error["error"]["details"],
            json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}])
        );
    }
    let count = sim
        .gemini_post(
            &format!("/flaky/v1beta/models/{GEMINI_MODEL}:countTokens"),
            &gemini_body("x"),
        )
        .await;
    assert_eq!(count.status(), 503);
    assert_eq!(count.json_value().await["error"]["message"], "scripted");
    sim.gemini("flaky", &gemini_body("x")).await;
}

#[tokio::test]
async fn gemini_connection_faults() {
    let sim = start().await;
    let path = format!("/rst/v1beta/models/{GEMINI_MODEL}:generateContent");
    let sse_path = format!("/rst/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse");
    let array_path = format!("/rst/v1beta/models/{GEMINI_MODEL}:streamGenerateContent");
    sim.gemini("rst", &gemini_body("warm")).await;

    sim.control("rst", "faults", &json!([{"kind": "reset"}]))
        .await;
    let result = sim
        .client
        .post(sim.url(&path))
        .header("x-goog-api-key", "k")
        .json_body(&gemini_body("x"))
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a connection error, got {result:?}"
    );
    sim.gemini("rst", &gemini_body("x")).await;

    sim.control("rst", "faults", &json!([{"kind": "stall_ms", "ms": 200}]))
        .await;
    let started = Instant::now();
    sim.gemini("rst", &gemini_body("x")).await;
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Streams: n chunks, then a broken connection, never the last chunk (with the finish
    // reason); a whole body: half of it, then a break.
    sim.control(
        "rst",
        "faults",
        &json!([
            {"kind": "cut_after_chunks", "n": 3},
            {"kind": "cut_after_chunks", "n": 1000},
            {"kind": "cut_after_chunks", "n": 2}
        ]),
    )
    .await;
    for (stream_path, expected) in [(&sse_path, 3), (&sse_path, 15), (&array_path, 2)] {
        let response = sim.gemini_post(stream_path, &gemini_body("x")).await;
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
        assert!(!text.contains("finishReason"), "{text}");
        if stream_path == &sse_path {
            assert_eq!(gemini_sse(&text).len(), expected);
        } else {
            assert_eq!(text.matches("\"responseId\"").count(), expected);
            assert!(!text.ends_with(']'));
        }
    }
    sim.control(
        "rst",
        "faults",
        &json!([{"kind": "cut_after_chunks", "n": 1}]),
    )
    .await;
    let response = sim.gemini_post(&path, &gemini_body("x")).await;
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err(), "truncated body");

    sim.control("rst", "faults", &json!([{"kind": "malformed", "count": 3}]))
        .await;
    let response = sim.gemini_post(&path, &gemini_body("x")).await;
    assert_eq!(response.status(), 200);
    assert!(serde_json::from_str::<Value>(&response.text().await.unwrap()).is_err());
    let response = sim.gemini_post(&sse_path, &gemini_body("x")).await;
    assert_eq!(
        response.text().await.unwrap_or_default(),
        "data: {not json\r\n\r\n"
    );
    let response = sim.gemini_post(&array_path, &gemini_body("x")).await;
    assert_eq!(response.text().await.unwrap_or_default(), "[{not json");
    sim.gemini("rst", &gemini_body("x")).await;
}

#[tokio::test]
async fn gemini_streaming_reassembles_both_framings() {
    let sim = start().await;
    let body = gemini_body("Hello, world!");
    let expected = sim.gemini("gem", &body).await;
    for sse in [true, false] {
        let chunks = sim.gemini_stream("gem", &body, sse).await;
        assert_eq!(chunks.len(), 16, "one token per chunk");
        for (i, chunk) in chunks.iter().enumerate() {
            let usage = &chunk["usageMetadata"];
            assert_eq!(usage["promptTokenCount"], 4);
            assert_eq!(usage["candidatesTokenCount"], i + 1, "cumulative usage");
            assert_eq!(
                chunk["candidates"][0].get("finishReason").is_some(),
                i == 15
            );
        }
        let whole = gemini_reassemble(&chunks);
        assert_eq!(whole["candidates"], expected["candidates"]);
        assert_eq!(whole["usageMetadata"], expected["usageMetadata"]);
    }

    // Thinking, parallel calls and several candidates: the same content as the whole answer.
    let mut body = gemini_body("Call get_weather and get_time");
    body["tools"] = gemini_tools();
    body["generationConfig"] =
        json!({"thinkingConfig": {"includeThoughts": true}, "candidateCount": 2});
    let expected = sim.gemini("gem", &body).await;
    for sse in [true, false] {
        let chunks = sim.gemini_stream("gem", &body, sse).await;
        // 16 thought pieces and two whole calls per candidate.
        assert_eq!(chunks.len(), 2 * (16 + 2));
        let whole = gemini_reassemble(&chunks);
        assert_eq!(whole["candidates"], expected["candidates"]);
        assert_eq!(whole["usageMetadata"], expected["usageMetadata"]);
    }

    // Hidden thinking is billed from the first chunk; text and signature as unstreamed.
    let mut body = gemini_body("Hello");
    body["generationConfig"] = thinking_config(false);
    let expected = sim.gemini("gem", &body).await;
    let chunks = sim.gemini_stream("gem", &body, true).await;
    assert_eq!(chunks[0]["usageMetadata"]["thoughtsTokenCount"], 16);
    assert!(chunks[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"].is_string());
    assert_eq!(
        gemini_reassemble(&chunks)["candidates"],
        expected["candidates"]
    );
}

#[tokio::test]
async fn gemini_stream_is_paced_by_behaviour() {
    let sim = start().await;
    sim.control(
        "paced",
        "behaviour",
        &json!({"ttft_ms": 150, "tokens_per_s": 100, "output_tokens": 10}),
    )
    .await;
    let started = Instant::now();
    let response = sim
        .gemini_post(
            &format!("/paced/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"),
            &gemini_body("Hello"),
        )
        .await;
    let mut stream = response.bytes_stream();
    let mut first = None;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        first.get_or_insert_with(|| started.elapsed());
    }
    let total = started.elapsed();
    assert!(first.unwrap() >= Duration::from_millis(150));
    assert!(total >= Duration::from_millis(240), "{total:?}");
    assert_eq!(gemini_sse(&text).len(), 10);

    let started = Instant::now();
    sim.gemini("paced", &gemini_body("Hello")).await;
    assert!(started.elapsed() >= Duration::from_millis(240));
}

#[tokio::test]
async fn gemini_implicit_cache_reads_repeated_long_prefixes() {
    let sim = start().await;
    let system = json!({"parts": [{"text": "alpha ".repeat(1200)}]});
    let mut body = gemini_body("first question");
    body["systemInstruction"] = system.clone();
    let first = sim.gemini("cache", &body).await;
    assert!(first["usageMetadata"]
        .get("cachedContentTokenCount")
        .is_none());
    let second = sim.gemini("cache", &body).await;
    let usage = &second["usageMetadata"];
    assert_eq!(usage["cachedContentTokenCount"], 1200);
    assert_eq!(
        usage["promptTokenCount"], 1202,
        "the prompt still counts cached tokens"
    );
    assert_eq!(
        usage["cacheTokensDetails"],
        json!([{"modality": "TEXT", "tokenCount": 1200}])
    );
    // The next turn reuses the longest prefix seen (the system instruction here); short
    // prompts never cache; another model has its own cache.
    let mut next = body.clone();
    next["contents"] = json!([
        body["contents"][0],
        {"role": "model", "parts": [{"text": "an answer"}]},
        {"role": "user", "parts": [{"text": "and then?"}]}
    ]);
    assert_eq!(
        sim.gemini("cache", &next).await["usageMetadata"]["cachedContentTokenCount"],
        1200
    );
    assert_eq!(
        sim.gemini("cache", &next).await["usageMetadata"]["cachedContentTokenCount"],
        1204
    );
    sim.gemini("cache", &gemini_body("short")).await;
    assert!(
        sim.gemini("cache", &gemini_body("short")).await["usageMetadata"]
            .get("cachedContentTokenCount")
            .is_none()
    );
    let other_model = sim
        .gemini_post("/cache/v1beta/models/other:generateContent", &body)
        .await
        .json_value()
        .await;
    assert!(other_model["usageMetadata"]
        .get("cachedContentTokenCount")
        .is_none());
    let client = &sim.client;
    client.delete(sim.url("/_sim/cache")).send().await.unwrap();
    assert!(sim.gemini("cache", &body).await["usageMetadata"]
        .get("cachedContentTokenCount")
        .is_none());
}

#[tokio::test]
async fn gemini_embeddings_and_count_tokens() {
    let sim = start().await;
    let path = "/emb/v1beta/models/text-embedding-sim:embedContent";
    let body = json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8});
    let response = sim.gemini_post(path, &body).await;
    assert_eq!(response.status(), 200);
    let single = response.json_value().await;
    let values = single["embedding"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 8);
    let norm: f64 = values.iter().map(|v| v.as_f64().unwrap().powi(2)).sum();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_eq!(
        sim.gemini_post(path, &body).await.json_value().await,
        single
    );
    let default = sim
        .gemini_post(path, &json!({"content": {"parts": [{"text": "hello"}]}}))
        .await
        .json_value()
        .await;
    assert_eq!(
        default["embedding"]["values"].as_array().unwrap().len(),
        768
    );

    let batch = sim
        .gemini_post(
            "/emb/v1beta/models/text-embedding-sim:batchEmbedContents",
            &json!({"requests": [
                {"model": "models/text-embedding-sim", "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8},
                {"model": "models/text-embedding-sim", "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 4, "taskType": "RETRIEVAL_DOCUMENT", "title": "t"}
            ]}),
        )
        .await
        .json_value()
        .await;
    let embeddings = batch["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(embeddings[0], single["embedding"]);
    assert_eq!(embeddings[1]["values"].as_array().unwrap().len(), 4);

    let mismatch = sim
        .gemini_post(
            "/emb/v1beta/models/text-embedding-sim:batchEmbedContents",
            &json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]}),
        )
        .await;
    assert_eq!(mismatch.status(), 400);
    let missing = sim
        .gemini_post(path, &json!({"outputDimensionality": 8}))
        .await;
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json_value().await["error"]["message"],
        "* EmbedContentRequest.content: content is not specified\n"
    );

    // countTokens validates like generateContent.
    let bad = sim
        .gemini_post(
            &format!("/emb/v1beta/models/{GEMINI_MODEL}:countTokens"),
            &json!({"contents": []}),
        )
        .await;
    assert_eq!(bad.status(), 400);
}
