//! End-to-end tests of the simulator over real HTTP: the OpenAI wire format, determinism,
//! pacing, tools, structured output, embeddings, every fault kind and the control API.

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
