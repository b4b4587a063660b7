//! End-to-end tests of the simulator's AWS Bedrock Runtime protocol over real HTTP: Converse
//! (text, parallel tools and their results, reasoning, prompt caching, stop sequences, max
//! tokens, content filters, structured output), ConverseStream decoded from its binary event
//! stream (both CRCs checked), InvokeModel embeddings, SigV4 and bearer credentials, and
//! Bedrock's error shapes for validation errors and faults.
//!
//! The signer and the event-stream decoder here are the tests' own, written independently of
//! the simulator's.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const AKID: &str = "AKIDSWITCHYARDTEST";
const SECRET: &str = "switchyard/test/secret/key/EXAMPLE";
/// A Claude cross-region inference profile id, as it travels in the path.
const CLAUDE: &str = "us.anthropic.claude-3-5-haiku-20241022-v1%3A0";

/// A simulator on an ephemeral port, living as long as the test's runtime.
struct Sim {
    base: String,
    host: String,
    client: reqwest::Client,
}

async fn start() -> Sim {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(switchyard_simulator::serve(
        listener,
        std::future::pending(),
    ));
    Sim {
        base: format!("http://{host}"),
        host,
        client: reqwest::Client::new(),
    }
}

/// How a request proves who it is.
enum Auth<'a> {
    Bearer,
    Signed { akid: &'a str, secret: &'a str },
    None,
}

impl Sim {
    /// POSTs `body` to `path` (as sent, already percent-encoded).
    async fn send(&self, path: &str, body: &[u8], auth: Auth<'_>) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_vec());
        match auth {
            Auth::Bearer => request = request.bearer_auth("ABSKsimulated-api-key"),
            Auth::Signed { akid, secret } => {
                let amz_date = amz_date(now());
                let authorization = sign(&self.host, path, body, &amz_date, akid, secret);
                request = request
                    .header("x-amz-date", amz_date)
                    .header("authorization", authorization);
            }
            Auth::None => {}
        }
        request.send().await.unwrap()
    }

    async fn post(&self, upstream: &str, model: &str, op: &str, body: &Value) -> reqwest::Response {
        let path = format!("/{upstream}/model/{model}/{op}");
        let auth = Auth::Signed {
            akid: AKID,
            secret: SECRET,
        };
        self.send(&path, body.to_string().as_bytes(), auth).await
    }

    async fn converse(&self, upstream: &str, body: &Value) -> Value {
        let response = self.post(upstream, CLAUDE, "converse", body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        serde_json::from_str(&text).unwrap()
    }

    /// The decoded messages of a ConverseStream answer.
    async fn stream(&self, upstream: &str, body: &Value) -> Vec<Message> {
        let response = self.post(upstream, CLAUDE, "converse-stream", body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.amazon.eventstream"
        );
        decode(&response.bytes().await.unwrap())
    }

    /// A rejected Converse call: its status, `x-amzn-ErrorType` name and message.
    async fn converse_error(&self, upstream: &str, body: &Value) -> (u16, String, String) {
        rejection(self.post(upstream, CLAUDE, "converse", body).await).await
    }

    async fn control(&self, upstream: &str, what: &str, body: &Value) {
        let response = self
            .client
            .post(format!("{}/_sim/{upstream}/{what}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// Status, exception name (from `x-amzn-ErrorType`, as botocore reads it) and message.
async fn rejection(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let error_type = response.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let (name, namespace) = error_type.split_once(':').unwrap();
    assert!(
        namespace.starts_with("http://internal.amazon.com/coral/"),
        "{error_type}"
    );
    (
        status,
        name.to_owned(),
        body["message"].as_str().unwrap().to_owned(),
    )
}

// === The test's own SigV4 signer ===

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `YYYYMMDDTHHMMSSZ` of Unix seconds.
fn amz_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block
        .iter()
        .map(|b| b ^ 0x36)
        .chain(data.iter().copied())
        .collect();
    let inner = Sha256::digest(&inner);
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).chain(inner).collect();
    Sha256::digest(&outer).to_vec()
}

/// The `Authorization` header for a POST of `body` to `path` (as sent) on `host`, signed for
/// `us-west-2` and service `bedrock`. Non-S3 services encode the path once more.
fn sign(host: &str, path: &str, body: &[u8], amz_date: &str, akid: &str, secret: &str) -> String {
    let canonical_path = path.replace('%', "%25");
    let canonical = format!(
        "POST\n{canonical_path}\n\ncontent-type:application/json\nhost:{host}\nx-amz-date:{amz_date}\n\n\
         content-type;host;x-amz-date\n{}",
        hex(&Sha256::digest(body))
    );
    let date = &amz_date[..8];
    let scope = format!("{date}/us-west-2/bedrock/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in ["us-west-2", "bedrock", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
    )
}

// === The test's own event-stream decoder ===

/// One decoded event-stream message.
#[derive(Debug)]
struct Message {
    headers: Vec<(String, String)>,
    payload: Value,
}

impl Message {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn event_type(&self) -> &str {
        self.header(":event-type")
    }
}

/// Bitwise CRC32 (IEEE), independent of the simulator's table-driven one.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[..4].try_into().unwrap())
}

/// Decodes every message of `bytes`, checking both CRCs of each.
fn decode(mut bytes: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let total = be32(bytes) as usize;
        let headers_len = be32(&bytes[4..]) as usize;
        assert_eq!(be32(&bytes[8..]), crc32(&bytes[..8]), "prelude CRC");
        assert_eq!(
            be32(&bytes[total - 4..]),
            crc32(&bytes[..total - 4]),
            "message CRC"
        );
        let mut headers = Vec::new();
        let mut h = &bytes[12..12 + headers_len];
        while !h.is_empty() {
            let name_len = h[0] as usize;
            let name = std::str::from_utf8(&h[1..1 + name_len]).unwrap().to_owned();
            assert_eq!(h[1 + name_len], 7, "string header");
            let at = 2 + name_len;
            let value_len = u16::from_be_bytes([h[at], h[at + 1]]) as usize;
            let value = std::str::from_utf8(&h[at + 2..at + 2 + value_len])
                .unwrap()
                .to_owned();
            headers.push((name, value));
            h = &h[at + 2 + value_len..];
        }
        let payload = serde_json::from_slice(&bytes[12 + headers_len..total - 4]).unwrap();
        out.push(Message { headers, payload });
        bytes = &bytes[total..];
    }
    out
}

/// Rebuilds a Converse response's content, stop reason and usage from stream messages, as a
/// client would.
fn reassemble(messages: &[Message]) -> Value {
    let mut content: Vec<Value> = Vec::new();
    let mut stop = Value::Null;
    let mut usage = Value::Null;
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(m.header(":message-type"), "event");
        assert_eq!(m.header(":content-type"), "application/json");
        assert!(m.payload["p"].is_string(), "padding on {m:?}");
        let p = &m.payload;
        match m.event_type() {
            "messageStart" => {
                assert_eq!(i, 0);
                assert_eq!(p["role"], "assistant");
            }
            "contentBlockStart" => {
                let index = p["contentBlockIndex"].as_u64().unwrap() as usize;
                assert_eq!(index, content.len());
                let tool = &p["start"]["toolUse"];
                content.push(json!({"toolUse": {
                    "toolUseId": tool["toolUseId"], "name": tool["name"], "input": ""
                }}));
            }
            "contentBlockDelta" => {
                let index = p["contentBlockIndex"].as_u64().unwrap() as usize;
                let delta = &p["delta"];
                if index == content.len() {
                    // Text and reasoning blocks open with their first delta.
                    content.push(if delta.get("reasoningContent").is_some() {
                        json!({"reasoningContent": {"reasoningText": {"text": ""}}})
                    } else {
                        json!({"text": ""})
                    });
                }
                let block = &mut content[index];
                let append = |slot: &mut Value, piece: &Value| {
                    let text = format!("{}{}", slot.as_str().unwrap(), piece.as_str().unwrap());
                    *slot = Value::String(text);
                };
                if let Some(text) = delta.get("text") {
                    append(&mut block["text"], text);
                } else if let Some(input) = delta.get("toolUse") {
                    append(&mut block["toolUse"]["input"], &input["input"]);
                } else if let Some(r) = delta.get("reasoningContent") {
                    let slot = &mut block["reasoningContent"]["reasoningText"];
                    if let Some(text) = r.get("text") {
                        append(&mut slot["text"], text);
                    } else {
                        slot["signature"] = r["signature"].clone();
                    }
                }
            }
            "contentBlockStop" => {
                let index = p["contentBlockIndex"].as_u64().unwrap() as usize;
                if let Some(input) = content[index].pointer_mut("/toolUse/input") {
                    *input = serde_json::from_str(input.as_str().unwrap()).unwrap();
                }
            }
            "messageStop" => stop = p["stopReason"].clone(),
            "metadata" => {
                assert_eq!(i, messages.len() - 1);
                assert!(p["metrics"]["latencyMs"].is_u64());
                usage = p["usage"].clone();
            }
            other => panic!("unexpected event {other}"),
        }
    }
    json!({"content": content, "stopReason": stop, "usage": usage})
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

// === Requests ===

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"text": text}]})
}

fn basic_body() -> Value {
    json!({"system": [{"text": "You are terse."}], "messages": [user("Hello, world!")]})
}

fn weather_tools() -> Value {
    json!({"tools": [
        {"toolSpec": {"name": "get_weather", "description": "Weather for a city", "inputSchema": {"json": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"]
        }}}},
        {"toolSpec": {"name": "get_time", "inputSchema": {"json": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]
        }}}}
    ]})
}

fn text_of(reply: &Value) -> String {
    reply["output"]["message"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|b| b["text"].as_str())
        .unwrap_or("")
        .to_owned()
}

// === Tests ===

#[tokio::test]
async fn converse_text_shape_usage_and_determinism() {
    let sim = start().await;
    let response = sim.post("bedrock", CLAUDE, "converse", &basic_body()).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let reply: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(reply["output"]["message"]["role"], "assistant");
    assert_eq!(reply["stopReason"], "end_turn");
    assert_eq!(text_of(&reply).split(' ').count(), 16);
    // System 4; the message 3 + role 1 + text 4; priming 3.
    assert_eq!(
        reply["usage"],
        json!({"inputTokens": 15, "outputTokens": 16, "totalTokens": 31,
               "cacheReadInputTokens": 0, "cacheWriteInputTokens": 0})
    );
    assert!(reply["metrics"]["latencyMs"].is_u64());
    let again = sim.converse("bedrock", &basic_body()).await;
    assert_eq!(text_of(&again), text_of(&reply));
    // Another model answers differently.
    let other = sim
        .post(
            "bedrock",
            "amazon.nova-lite-v1%3A0",
            "converse",
            &basic_body(),
        )
        .await;
    let other: Value = serde_json::from_slice(&other.bytes().await.unwrap()).unwrap();
    assert_ne!(text_of(&other), text_of(&reply));
    // Behaviour sizes the answer.
    sim.control("bedrock", "behaviour", &json!({"output_tokens": 3}))
        .await;
    let short = sim.converse("bedrock", &basic_body()).await;
    assert_eq!(short["usage"]["outputTokens"], 3);
}

#[tokio::test]
async fn max_tokens_stop_sequences_and_response_fields() {
    let sim = start().await;
    let mut body = basic_body();
    body["inferenceConfig"] = json!({"maxTokens": 5});
    let capped = sim.converse("bedrock", &body).await;
    assert_eq!(capped["stopReason"], "max_tokens");
    assert_eq!(capped["usage"]["outputTokens"], 5);
    let full = text_of(&sim.converse("bedrock", &basic_body()).await);
    assert!(full.starts_with(&text_of(&capped)));
    // Sampling settings are accepted (and, as with a real model, change the words).
    body["inferenceConfig"] = json!({"temperature": 0.5, "topP": 0.9});
    let sampled = sim.converse("bedrock", &body).await;
    assert_eq!(sampled["usage"]["outputTokens"], 16);
    let third = format!(" {}", full.split(' ').nth(2).unwrap());
    body["inferenceConfig"] = json!({"stopSequences": ["zzz", third]});
    body["additionalModelResponseFieldPaths"] = json!(["/stop_sequence"]);
    let stopped = sim.converse("bedrock", &body).await;
    assert_eq!(stopped["stopReason"], "stop_sequence");
    assert_eq!(
        text_of(&stopped),
        full.split(' ').take(2).collect::<Vec<_>>().join(" ")
    );
    assert_eq!(
        stopped["additionalModelResponseFields"],
        json!({"stop_sequence": third})
    );
}

#[tokio::test]
async fn parallel_tool_use_then_results() {
    let sim = start().await;
    let ask = user("Please call get_weather and get_time for Paris");
    let body = json!({"messages": [ask], "toolConfig": weather_tools()});
    let reply = sim.converse("bedrock", &body).await;
    assert_eq!(reply["stopReason"], "tool_use");
    let calls = reply["output"]["message"]["content"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    let weather = &calls[0]["toolUse"];
    assert_eq!(weather["name"], "get_weather");
    assert!(weather["toolUseId"]
        .as_str()
        .unwrap()
        .starts_with("tooluse_"));
    assert!(weather["input"]["city"].is_string());
    assert!(["celsius", "fahrenheit"].contains(&weather["input"]["unit"].as_str().unwrap()));
    assert_eq!(calls[1]["toolUse"]["name"], "get_time");

    // The second turn answers both calls; the model replies with text.
    let results: Vec<Value> = calls
        .iter()
        .map(|c| {
            json!({"toolResult": {"toolUseId": c["toolUse"]["toolUseId"], "content": [{"json": {"ok": true}}], "status": "success"}})
        })
        .collect();
    let second = json!({
        "messages": [ask, reply["output"]["message"], {"role": "user", "content": results}],
        "toolConfig": weather_tools()
    });
    let answer = sim.converse("bedrock", &second).await;
    assert_eq!(answer["stopReason"], "end_turn");
    assert!(!text_of(&answer).is_empty());

    // toolChoice forces a call; without toolConfig the history is refused.
    let mut forced = json!({"messages": [user("hello")], "toolConfig": weather_tools()});
    forced["toolConfig"]["toolChoice"] = json!({"tool": {"name": "get_time"}});
    let forced = sim.converse("bedrock", &forced).await;
    assert_eq!(
        forced["output"]["message"]["content"][0]["toolUse"]["name"],
        "get_time"
    );
    let mut unconfigured = second.clone();
    unconfigured.as_object_mut().unwrap().remove("toolConfig");
    assert_eq!(
        sim.converse_error("bedrock", &unconfigured).await,
        (
            400,
            "ValidationException".to_owned(),
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                .to_owned()
        )
    );
    let mut missing = second.clone();
    missing["messages"][2]["content"]
        .as_array_mut()
        .unwrap()
        .pop();
    let (status, _, message) = sim.converse_error("bedrock", &missing).await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with(
            "Expected toolResult blocks at messages.2.content for the following Ids: tooluse_"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn reasoning_comes_first_with_a_signature() {
    let sim = start().await;
    let mut body = basic_body();
    body["inferenceConfig"] = json!({"maxTokens": 4000});
    body["additionalModelRequestFields"] =
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}});
    let reply = sim.converse("bedrock", &body).await;
    let content = reply["output"]["message"]["content"].as_array().unwrap();
    let reasoning = &content[0]["reasoningContent"]["reasoningText"];
    assert_eq!(reasoning["text"].as_str().unwrap().split(' ').count(), 16);
    assert_eq!(reasoning["signature"].as_str().unwrap().len(), 128);
    assert!(content[1]["text"].is_string());
    assert_eq!(reply["usage"]["outputTokens"], 32);

    // The reasoning block goes back in the next turn and counts nothing.
    let history = json!({
        "messages": [user("Hello, world!"), reply["output"]["message"], user("more")],
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    });
    sim.converse("bedrock", &history).await;

    body["messages"] = json!([user("please redact")]);
    let redacted = sim.converse("bedrock", &body).await;
    assert!(
        redacted["output"]["message"]["content"][0]["reasoningContent"]["redactedContent"]
            .is_string()
    );
    body["additionalModelRequestFields"] =
        json!({"thinking": {"type": "enabled", "budget_tokens": 512}});
    let (status, name, message) = sim.converse_error("bedrock", &body).await;
    assert_eq!((status, name.as_str()), (400, "ValidationException"));
    assert!(message
        .starts_with("The model returned the following errors: thinking.enabled.budget_tokens"));
}

#[tokio::test]
async fn cache_points_write_then_read() {
    let sim = start().await;
    let long = "alpha ".repeat(50);
    let body = json!({
        "system": [{"text": long}, {"cachePoint": {"type": "default"}}],
        "messages": [user("Hello, world!")]
    });
    let first = sim.converse("bedrock", &body).await;
    assert_eq!(
        first["usage"],
        json!({"inputTokens": 11, "outputTokens": 16, "totalTokens": 77,
               "cacheReadInputTokens": 0, "cacheWriteInputTokens": 50,
               "cacheDetails": [{"ttl": "5m", "inputTokens": 50}]})
    );
    let second = sim.converse("bedrock", &body).await;
    assert_eq!(second["usage"]["cacheReadInputTokens"], 50);
    assert_eq!(second["usage"]["cacheWriteInputTokens"], 0);
    assert_eq!(second["usage"]["inputTokens"], 11);
    assert_eq!(second["usage"]["totalTokens"], 77);
    // A longer prefix reads the shorter one and writes the rest, at its own TTL.
    let longer = json!({
        "system": [{"text": long}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [
            {"text": "Hello, world!"}, {"cachePoint": {"type": "default", "ttl": "1h"}}
        ]}]
    });
    let third = sim.converse("bedrock", &longer).await;
    assert_eq!(third["usage"]["cacheReadInputTokens"], 50);
    assert_eq!(third["usage"]["cacheWriteInputTokens"], 8);
    assert_eq!(third["usage"]["inputTokens"], 3);
    assert_eq!(
        third["usage"]["cacheDetails"],
        json!([{"ttl": "1h", "inputTokens": 8}])
    );
    // Another model has its own cache.
    let other = sim
        .post(
            "bedrock",
            "anthropic.claude-3-5-haiku-20241022-v1%3A0",
            "converse",
            &body,
        )
        .await;
    let other: Value = serde_json::from_slice(&other.bytes().await.unwrap()).unwrap();
    assert_eq!(other["usage"]["cacheWriteInputTokens"], 50);
}

#[tokio::test]
async fn content_filter_guardrail_and_structured_output() {
    let sim = start().await;
    let filtered = sim
        .converse(
            "bedrock",
            &json!({"messages": [user("tell me unsafe-answer")]}),
        )
        .await;
    assert_eq!(filtered["stopReason"], "content_filtered");
    assert_eq!(filtered["output"]["message"]["content"], json!([]));
    let guarded = sim
        .converse(
            "bedrock",
            &json!({"messages": [user("unsafe-answer")],
                    "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}}),
        )
        .await;
    assert_eq!(guarded["stopReason"], "guardrail_intervened");
    assert_eq!(
        text_of(&guarded),
        "Sorry, the model cannot answer this question."
    );
    let schema = json!({"type": "object", "properties": {"age": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["age"]});
    let structured = sim
        .converse(
            "bedrock",
            &json!({"messages": [user("hi")], "outputConfig": {"textFormat": {
                "type": "json_schema", "structure": {"jsonSchema": {"schema": schema.to_string(), "name": "person"}}
            }}, "performanceConfig": {"latency": "optimized"}, "serviceTier": {"type": "priority"}}),
        )
        .await;
    let doc: Value = serde_json::from_str(&text_of(&structured)).unwrap();
    assert!((1..=9).contains(&doc["age"].as_i64().unwrap()));
    assert_eq!(
        structured["performanceConfig"],
        json!({"latency": "optimized"})
    );
    assert_eq!(structured["serviceTier"], json!({"type": "priority"}));
}

#[tokio::test]
async fn stream_reassembles_to_the_converse_answer() {
    let sim = start().await;
    for body in [
        basic_body(),
        json!({"messages": [user("call get_weather and get_time")], "toolConfig": weather_tools(),
               "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}}),
    ] {
        let expected = sim.converse("bedrock", &body).await;
        let messages = sim.stream("bedrock", &body).await;
        let streamed = reassemble(&messages);
        assert_eq!(
            streamed["content"],
            expected["output"]["message"]["content"]
        );
        assert_eq!(streamed["stopReason"], expected["stopReason"]);
        assert_eq!(streamed["usage"], expected["usage"]);
        // One delta per output token besides the signatures.
        let deltas = messages
            .iter()
            .filter(|m| m.event_type() == "contentBlockDelta")
            .filter(|m| {
                m.payload["delta"]["reasoningContent"]
                    .get("signature")
                    .is_none()
            })
            .count() as u64;
        let output = expected["usage"]["outputTokens"].as_u64().unwrap();
        let names: u64 = expected["output"]["message"]["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["toolUse"]["name"].as_str())
            .map(tokens)
            .sum();
        // Tool names count as output but travel whole in contentBlockStart.
        assert_eq!(deltas + names, output);
    }
    let types: Vec<String> = sim
        .stream("bedrock", &basic_body())
        .await
        .iter()
        .map(|m| m.event_type().to_owned())
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("messageStart"));
    assert_eq!(
        &types[types.len() - 3..],
        ["contentBlockStop", "messageStop", "metadata"]
    );
    assert!(!types.contains(&"contentBlockStart".to_owned()));
}

#[tokio::test]
async fn stream_exceptions_and_faults() {
    let sim = start().await;
    let body = json!({"messages": [user("go stream-exception:throttlingException")]});
    let response = sim.post("bedrock", CLAUDE, "converse-stream", &body).await;
    let bytes = response.bytes().await.unwrap();
    // The decoder would reject the exception's payload headers only if they were malformed.
    let messages = decode(&bytes);
    let last = messages.last().unwrap();
    assert_eq!(last.header(":message-type"), "exception");
    assert_eq!(last.header(":exception-type"), "throttlingException");
    assert!(last.payload["message"].is_string());
    assert_eq!(messages[0].event_type(), "messageStart");
    assert_eq!(messages[1].event_type(), "contentBlockDelta");
    assert_eq!(messages.len(), 3);
    // Converse answers the same trigger with the HTTP error.
    let (status, name, _) = sim.converse_error("bedrock", &body).await;
    assert_eq!((status, name.as_str()), (429, "ThrottlingException"));

    // A status fault answers in Bedrock's shape, also on the stream route.
    sim.control(
        "faulty",
        "faults",
        &json!([{"status": 503}, {"status": 429, "message": "ModelNotReadyException: warming up"}, {"status": 408}]),
    )
    .await;
    let (status, name, _) = rejection(
        sim.post("faulty", CLAUDE, "converse-stream", &basic_body())
            .await,
    )
    .await;
    assert_eq!(
        (status, name.as_str()),
        (503, "ServiceUnavailableException")
    );
    assert_eq!(
        sim.converse_error("faulty", &basic_body()).await,
        (
            429,
            "ModelNotReadyException".to_owned(),
            "warming up".to_owned()
        )
    );
    let (status, name, _) = sim.converse_error("faulty", &basic_body()).await;
    assert_eq!((status, name.as_str()), (408, "ModelTimeoutException"));

    // Malformed: one framed event whose payload is not JSON.
    sim.control("faulty", "faults", &json!({"kind": "malformed"}))
        .await;
    let response = sim
        .post("faulty", CLAUDE, "converse-stream", &basic_body())
        .await;
    let bytes = response.bytes().await.unwrap();
    let total = be32(&bytes) as usize;
    assert_eq!(total, bytes.len());
    assert_eq!(be32(&bytes[total - 4..]), crc32(&bytes[..total - 4]));
    assert!(bytes.ends_with(&[&b"{not json"[..], &bytes[total - 4..]].concat()));

    // Cut: some whole messages, then a broken connection.
    sim.control(
        "faulty",
        "faults",
        &json!({"kind": "cut_after_chunks", "n": 2}),
    )
    .await;
    let response = sim
        .post("faulty", CLAUDE, "converse-stream", &basic_body())
        .await;
    assert_eq!(response.status(), 200);
    let mut got = Vec::new();
    let mut response = response;
    let broken = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(broken);
    assert_eq!(decode(&got).len(), 2);
}

#[tokio::test]
async fn validation_errors_in_bedrock_shape() {
    let sim = start().await;
    let cases = [
        (
            json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}),
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ),
        (
            json!({"messages": [user("a"), user("b")]}),
            "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
        ),
        (
            json!({"messages": [user("a")], "modelId": "x"}),
            "Malformed input request: #: extraneous key [modelId] is not permitted, please reformat your input and try again.",
        ),
        (
            json!({"messages": [user("a")], "inferenceConfig": {"maxTokens": 0}}),
            "1 validation error detected: Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1",
        ),
        (
            json!({"messages": []}),
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(
            sim.converse_error("bedrock", &body).await,
            (400, "ValidationException".to_owned(), expected.to_owned()),
            "{body}"
        );
    }
    let too_long = json!({"messages": [user(&"word ".repeat(200_001))]});
    assert_eq!(
        sim.converse_error("bedrock", &too_long).await.2,
        "Input is too long for requested model."
    );
    let (status, name, message) = rejection(
        sim.post("bedrock", "bad%20model", "converse", &basic_body())
            .await,
    )
    .await;
    assert_eq!(
        (status, name.as_str(), message.as_str()),
        (
            400,
            "ValidationException",
            "The provided model identifier is invalid."
        )
    );
    let (status, _, message) = rejection(
        sim.send(
            &format!("/bedrock/model/{CLAUDE}/converse"),
            b"{not json",
            Auth::Signed {
                akid: AKID,
                secret: SECRET,
            },
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.starts_with("Malformed input request"));
}

#[tokio::test]
async fn sigv4_bearer_and_refusals() {
    let sim = start().await;
    let body = basic_body().to_string();
    // An ARN travels with its `:` and `/` percent-encoded and is signed encoded twice.
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0";
    let path = format!("/bedrock/model/{arn}/converse");
    let ok = sim
        .send(
            &path,
            body.as_bytes(),
            Auth::Signed {
                akid: AKID,
                secret: SECRET,
            },
        )
        .await;
    assert_eq!(ok.status(), 200);
    let bearer = sim.send(&path, body.as_bytes(), Auth::Bearer).await;
    assert_eq!(bearer.status(), 200);

    let wrong = rejection(
        sim.send(
            &path,
            body.as_bytes(),
            Auth::Signed {
                akid: AKID,
                secret: "nope",
            },
        )
        .await,
    )
    .await;
    assert_eq!(
        (wrong.0, wrong.1.as_str()),
        (403, "InvalidSignatureException")
    );
    assert!(wrong
        .2
        .starts_with("The request signature we calculated does not match"));
    assert!(
        wrong.2.contains("inference-profile%252Fus.anthropic"),
        "{}",
        wrong.2
    );
    let stranger = rejection(
        sim.send(
            &path,
            body.as_bytes(),
            Auth::Signed {
                akid: "AKIDOTHER",
                secret: SECRET,
            },
        )
        .await,
    )
    .await;
    assert_eq!(
        stranger,
        (
            403,
            "UnrecognizedClientException".to_owned(),
            "The security token included in the request is invalid.".to_owned()
        )
    );
    let anonymous = rejection(sim.send(&path, body.as_bytes(), Auth::None).await).await;
    assert_eq!(
        (anonymous.0, anonymous.1.as_str()),
        (403, "AccessDeniedException")
    );

    // A body changed after signing no longer matches.
    let amz = amz_date(now());
    let authorization = sign(&sim.host, &path, body.as_bytes(), &amz, AKID, SECRET);
    let tampered = sim
        .client
        .post(format!("{}{path}", sim.base))
        .header("content-type", "application/json")
        .header("x-amz-date", &amz)
        .header("authorization", authorization)
        .body(basic_body().to_string().replace("terse", "brief"))
        .send()
        .await
        .unwrap();
    assert_eq!(rejection(tampered).await.1, "InvalidSignatureException");
    // A stale signature is refused.
    let old = amz_date(now() - 3600);
    let authorization = sign(&sim.host, &path, body.as_bytes(), &old, AKID, SECRET);
    let stale = sim
        .client
        .post(format!("{}{path}", sim.base))
        .header("content-type", "application/json")
        .header("x-amz-date", &old)
        .header("authorization", authorization)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let stale = rejection(stale).await;
    assert!(stale.2.starts_with("Signature expired"), "{}", stale.2);

    // Refused requests draw no fault: the queued one applies to the next signed request.
    sim.control("bedrock", "faults", &json!({"status": 500}))
        .await;
    sim.send(&path, body.as_bytes(), Auth::None).await;
    let faulted = rejection(
        sim.send(
            &path,
            body.as_bytes(),
            Auth::Signed {
                akid: AKID,
                secret: SECRET,
            },
        )
        .await,
    )
    .await;
    assert_eq!(
        (faulted.0, faulted.1.as_str()),
        (500, "InternalServerException")
    );
}

#[tokio::test]
async fn titan_and_cohere_embeddings() {
    let sim = start().await;
    let titan = "amazon.titan-embed-text-v2%3A0";
    let response = sim
        .post("bedrock", titan, "invoke", &json!({"inputText": "hello world", "dimensions": 512, "embeddingTypes": ["float", "binary"]}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-amzn-bedrock-input-token-count"], "2");
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let embedding = body["embedding"].as_array().unwrap();
    assert_eq!(embedding.len(), 512);
    let norm: f64 = embedding.iter().map(|x| x.as_f64().unwrap().powi(2)).sum();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_eq!(body["inputTextTokenCount"], 2);
    assert_eq!(body["embeddingsByType"]["float"], body["embedding"]);
    assert_eq!(
        body["embeddingsByType"]["binary"].as_array().unwrap().len(),
        512
    );

    let response = sim
        .post(
            "bedrock",
            "cohere.embed-english-v3",
            "invoke",
            &json!({"texts": ["a b", "c"], "input_type": "search_document"}),
        )
        .await;
    assert_eq!(response.headers()["x-amzn-bedrock-input-token-count"], "3");
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["response_type"], "embeddings_floats");
    assert_eq!(body["texts"], json!(["a b", "c"]));
    assert_eq!(body["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(body["embeddings"][0].as_array().unwrap().len(), 1024);
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    let typed = sim
        .post("bedrock", "cohere.embed-multilingual-v3", "invoke", &json!({"texts": ["a"], "input_type": "search_query", "embedding_types": ["float", "int8"]}))
        .await;
    let typed: Value = serde_json::from_slice(&typed.bytes().await.unwrap()).unwrap();
    assert_eq!(typed["response_type"], "embeddings_by_type");
    assert_eq!(
        typed["embeddings"]["int8"][0].as_array().unwrap().len(),
        1024
    );

    let (status, name, message) = rejection(
        sim.post(
            "bedrock",
            titan,
            "invoke",
            &json!({"inputText": "x", "dimensions": 100}),
        )
        .await,
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "ValidationException"));
    assert_eq!(message, "Malformed input request: #/dimensions: 100 is not a valid enum value, please reformat your input and try again.");
    let (status, name, _) = rejection(
        sim.post("bedrock", CLAUDE, "invoke", &json!({"messages": []}))
            .await,
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "ValidationException"));
}

#[tokio::test]
async fn stream_is_paced_by_behaviour() {
    let sim = start().await;
    sim.control(
        "paced",
        "behaviour",
        &json!({"ttft_ms": 150, "tokens_per_s": 100, "output_tokens": 10}),
    )
    .await;
    let begun = std::time::Instant::now();
    let mut response = sim
        .post("paced", CLAUDE, "converse-stream", &basic_body())
        .await;
    let first = response.chunk().await.unwrap().unwrap();
    let first_at = begun.elapsed();
    assert!(
        first_at >= std::time::Duration::from_millis(140),
        "{first_at:?}"
    );
    let mut bytes = first.to_vec();
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes.extend_from_slice(&chunk);
    }
    // Ten tokens at 100 per second after the first event.
    assert!(begun.elapsed() >= std::time::Duration::from_millis(230));
    let messages = decode(&bytes);
    assert_eq!(reassemble(&messages)["usage"]["outputTokens"], 10);
    // Converse waits as long before answering whole.
    let begun = std::time::Instant::now();
    let reply = sim.post("paced", CLAUDE, "converse", &basic_body()).await;
    assert_eq!(reply.status(), 200);
    assert!(begun.elapsed() >= std::time::Duration::from_millis(230));
    let reply: Value = serde_json::from_slice(&reply.bytes().await.unwrap()).unwrap();
    assert!(reply["metrics"]["latencyMs"].as_u64().unwrap() >= 230);
}
