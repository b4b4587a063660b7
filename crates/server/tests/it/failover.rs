//! Failover: every upstream fault before the first byte moves the request to the next provider and
//! only the successful attempt is charged; faults after content end the stream with the
//! mid-stream error chunk; non-retryable and context-length errors; Retry-After; outage detection
//! with half-open probes on a controlled clock; and `openrouter_metadata`.
//!
//! Llama 3.3 70B routed by price tries DeepInfra first, then Groq: most tests script DeepInfra.

use crate::harness::{user, Harness, Options};
use serde_json::{json, Value};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LLAMA: &str = "meta-llama/llama-3.3-70b-instruct";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Whole,
    Stream,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Whole => "non-streaming",
            Mode::Stream => "streaming",
        })
    }
}

/// A chat request for `model` with the given provider preferences.
fn request(model: &str, provider: Value, mode: Mode) -> Value {
    json!({
        "model": model,
        "messages": user("Tell me something about failover"),
        "provider": provider,
        "stream": mode == Mode::Stream,
    })
}

/// Llama 3.3 by price: DeepInfra, then Groq, then the others.
fn by_price(mode: Mode) -> Value {
    request(LLAMA, json!({"sort": "price"}), mode)
}

/// POSTs a chat request, optionally opting in to `openrouter_metadata`.
async fn post_chat(h: &Harness, body: &Value, metadata: bool) -> reqwest::Response {
    let mut builder = h
        .http
        .post(h.url("/api/v1/chat/completions"))
        .bearer_auth(&h.key);
    if metadata {
        builder = builder.header("X-OpenRouter-Metadata", "enabled");
    }
    builder.json(body).send().await.unwrap()
}

/// What the client received, fully read.
struct Reply {
    status: u16,
    content_type: String,
    generation_id: Option<String>,
    text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let generation_id = header("x-generation-id");
        let text = response.text().await.unwrap();
        Reply {
            status,
            content_type,
            generation_id,
            text,
        }
    }

    fn json(&self, case: &str) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("{case}: body is not JSON ({e}): {}", self.text))
    }

    /// The generation id, which every inference response carries (errors included).
    fn id(&self, case: &str) -> String {
        self.generation_id.clone().unwrap_or_else(|| {
            panic!(
                "{case}: the {} response carries no X-Generation-Id header, so its generation \
                 record cannot be looked up; body: {}",
                self.status, self.text
            )
        })
    }
}

/// A whole SSE body: the JSON chunks and whether `[DONE]` ended it (comment lines, such as the
/// `: OPENROUTER PROCESSING` keep-alives, are skipped).
struct Sse {
    chunks: Vec<Value>,
    done: bool,
}

fn parse_sse(text: &str, case: &str) -> Sse {
    let mut sse = Sse {
        chunks: Vec::new(),
        done: false,
    };
    for line in text.lines() {
        if let Some(data) = line.strip_prefix("data:") {
            let data = data.trim_start();
            assert!(!sse.done, "{case}: data after [DONE]: {text}");
            if data == "[DONE]" {
                sse.done = true;
            } else {
                let chunk = serde_json::from_str(data)
                    .unwrap_or_else(|e| panic!("{case}: SSE data is not JSON ({e}): {data}"));
                sse.chunks.push(chunk);
            }
        }
    }
    sse
}

/// USD as nano-dollars.
fn nanos(value: &Value, what: &str) -> i64 {
    let usd = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    (usd * 1e9).round() as i64
}

async fn usage_nanos(h: &Harness) -> i64 {
    (h.usage().await * 1e9).round() as i64
}

/// Waits for the account's usage to reach `before + want` and fails if it does not.
async fn assert_charged(h: &Harness, case: &str, before: i64, want: i64) {
    let mut delta = 0;
    for _ in 0..100 {
        delta = usage_nanos(h).await - before;
        if delta == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{case}: the account was charged {delta} nano-USD, the record says {want}");
}

/// The attempts of a generation record, as `(provider_name, status)`.
fn attempts(record: &Value, case: &str) -> Vec<(String, Value)> {
    record["provider_responses"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: record without provider_responses: {record}"))
        .iter()
        .map(|a| {
            (
                a["provider_name"].as_str().unwrap_or_default().to_owned(),
                a["status"].clone(),
            )
        })
        .collect()
}

fn assert_attempts(record: &Value, case: &str, want: &[(&str, Value)]) {
    let got = attempts(record, case);
    let want: Vec<(String, Value)> = want
        .iter()
        .map(|(p, s)| ((*p).to_owned(), s.clone()))
        .collect();
    assert_eq!(got, want, "{case}: provider_responses of {record}");
}

/// The text a streamed answer carried.
fn streamed_content(sse: &Sse) -> String {
    sse.chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Checks a served answer (served by `provider`) and returns its `usage.cost` in nano-dollars.
fn served_cost(reply: &Reply, mode: Mode, provider: &str, case: &str) -> i64 {
    assert_eq!(reply.status, 200, "{case}: status; body: {}", reply.text);
    match mode {
        Mode::Whole => {
            let body = reply.json(case);
            assert_eq!(body["provider"], provider, "{case}: served by; {body}");
            assert!(body.get("error").is_none(), "{case}: error in {body}");
            let content = body["choices"][0]["message"]["content"].as_str();
            assert!(
                content.is_some_and(|c| !c.is_empty()),
                "{case}: no content in {body}"
            );
            let cost = nanos(&body["usage"]["cost"], &format!("{case}: usage.cost"));
            assert!(cost > 0, "{case}: usage.cost {cost} in {body}");
            cost
        }
        Mode::Stream => {
            assert!(
                reply.content_type.starts_with("text/event-stream"),
                "{case}: content type {} of {}",
                reply.content_type,
                reply.text
            );
            let sse = parse_sse(&reply.text, case);
            assert!(
                sse.done,
                "{case}: the stream did not end with [DONE]: {}",
                reply.text
            );
            for chunk in &sse.chunks {
                assert!(chunk.get("error").is_none(), "{case}: error chunk {chunk}");
                if let Some(p) = chunk.get("provider") {
                    assert_eq!(p, provider, "{case}: chunk from another provider: {chunk}");
                }
            }
            for chunk in sse.chunks.iter().filter(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            }) {
                assert_eq!(chunk["provider"], provider, "{case}: content chunk {chunk}");
            }
            assert!(
                !streamed_content(&sse).is_empty(),
                "{case}: no content streamed: {}",
                reply.text
            );
            let last = sse.chunks.last().expect("chunks before [DONE]");
            let cost = nanos(
                &last["usage"]["cost"],
                &format!("{case}: usage.cost of the last chunk {last}"),
            );
            assert!(cost > 0, "{case}: usage.cost {cost} in {last}");
            cost
        }
    }
}

// --- A. The fault matrix: one fault on DeepInfra, Groq serves, only Groq is charged. ---

async fn fails_over_to_groq(mode: Mode, fault: Value, first_status: Value) {
    let case = format!("{fault} ({mode})");
    let h = Harness::start().await;
    h.sim_post("deepinfra", "faults", json!([fault])).await;
    let before = usage_nanos(&h).await;
    let reply = Reply::read(h.chat(by_price(mode)).await).await;
    let cost = served_cost(&reply, mode, "Groq", &case);

    let record = h.generation(&reply.id(&case)).await;
    assert_attempts(
        &record,
        &case,
        &[("DeepInfra", first_status), ("Groq", json!(200))],
    );
    assert_eq!(record["provider_name"], "Groq", "{case}: {record}");
    assert_eq!(
        nanos(&record["total_cost"], "record total_cost"),
        cost,
        "{case}: record total_cost vs usage.cost; {record}"
    );
    assert_charged(&h, &case, before, cost).await;
    assert_eq!(
        h.sim_requests("groq").await.len(),
        1,
        "{case}: Groq requests"
    );
}

macro_rules! failover_cases {
    ($($name:ident: $mode:expr, $fault:expr => $first_status:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                fails_over_to_groq($mode, $fault, $first_status).await;
            }
        )*
    };
}

failover_cases! {
    whole_fails_over_after_429:
        Mode::Whole, json!({"status": 429, "retry_after_s": 1}) => json!(429);
    whole_fails_over_after_500:
        Mode::Whole, json!({"status": 500}) => json!(500);
    whole_fails_over_after_503:
        Mode::Whole, json!({"status": 503}) => json!(503);
    whole_fails_over_after_reset:
        Mode::Whole, json!({"kind": "reset"}) => Value::Null;
    whole_fails_over_after_stall:
        Mode::Whole, json!({"kind": "stall_ms", "ms": 2500}) => Value::Null;
    whole_fails_over_after_malformed:
        Mode::Whole, json!({"kind": "malformed"}) => json!(502);
    whole_fails_over_after_truncated_body:
        Mode::Whole, json!({"kind": "cut_after_chunks", "n": 1}) => json!(502);
    stream_fails_over_after_429:
        Mode::Stream, json!({"status": 429, "retry_after_s": 1}) => json!(429);
    stream_fails_over_after_500:
        Mode::Stream, json!({"status": 500}) => json!(500);
    stream_fails_over_after_503:
        Mode::Stream, json!({"status": 503}) => json!(503);
    stream_fails_over_after_reset:
        Mode::Stream, json!({"kind": "reset"}) => Value::Null;
    stream_fails_over_after_stall:
        Mode::Stream, json!({"kind": "stall_ms", "ms": 2500}) => Value::Null;
    stream_fails_over_after_malformed:
        Mode::Stream, json!({"kind": "malformed"}) => json!(502);
    stream_fails_over_after_cut_before_any_chunk:
        Mode::Stream, json!({"kind": "cut_after_chunks", "n": 0}) => json!(502);
}

// --- B. A cut after content cannot fail over: the stream ends with the error chunk. ---

#[tokio::test]
async fn stream_cut_after_content_ends_with_the_error_chunk_and_charges_the_record() {
    let case = "cut_after_chunks n=3 on the only provider (streaming)";
    let h = Harness::start().await;
    h.sim_post(
        "deepinfra",
        "faults",
        json!([{"kind": "cut_after_chunks", "n": 3}]),
    )
    .await;
    let before = usage_nanos(&h).await;
    let body = request(LLAMA, json!({"only": ["deepinfra"]}), Mode::Stream);
    let reply = Reply::read(h.chat(body).await).await;
    assert_eq!(reply.status, 200, "{case}: {}", reply.text);
    let sse = parse_sse(&reply.text, case);
    assert!(
        !streamed_content(&sse).is_empty(),
        "{case}: content before the cut: {}",
        reply.text
    );
    let last = sse.chunks.last().expect("chunks");
    assert!(
        last["error"]["code"].is_number(),
        "{case}: the last chunk is not the error chunk: {last}"
    );
    assert!(last["error"]["message"].is_string(), "{case}: {last}");
    assert_eq!(
        last["choices"][0]["finish_reason"], "error",
        "{case}: {last}"
    );
    let errors = sse.chunks.iter().filter(|c| c.get("error").is_some());
    assert_eq!(errors.count(), 1, "{case}: {}", reply.text);
    for chunk in &sse.chunks {
        if let Some(p) = chunk.get("provider") {
            assert_eq!(p, "DeepInfra", "{case}: {chunk}");
        }
    }

    let record = h.generation(&reply.id(case)).await;
    assert_eq!(attempts(&record, case).len(), 1, "{case}: {record}");
    assert_eq!(record["finish_reason"], "error", "{case}: {record}");
    let cost = nanos(&record["total_cost"], "record total_cost");
    assert_charged(&h, case, before, cost).await;
}

// --- C. Every candidate fails before a byte: an error envelope, nothing charged. ---

async fn everything_fails(mode: Mode) {
    let case = format!("500 on the only provider ({mode})");
    let h = Harness::start().await;
    h.sim_post("deepinfra", "faults", json!([{"status": 500}]))
        .await;
    let before = usage_nanos(&h).await;
    let body = request(LLAMA, json!({"only": ["deepinfra"]}), mode);
    let reply = Reply::read(h.chat(body).await).await;
    assert!(
        reply.status >= 500,
        "{case}: status {}: {}",
        reply.status,
        reply.text
    );
    assert!(
        reply.content_type.starts_with("application/json"),
        "{case}: a plain JSON error, not {}: {}",
        reply.content_type,
        reply.text
    );
    let error = reply.json(&case);
    assert_eq!(error["error"]["code"], reply.status, "{case}: {error}");
    assert!(error["error"]["message"].is_string(), "{case}: {error}");

    assert_eq!(
        usage_nanos(&h).await - before,
        0,
        "{case}: a failed request is not charged"
    );
    let record = h.generation(&reply.id(&case)).await;
    assert_attempts(&record, &case, &[("DeepInfra", json!(500))]);
    assert_eq!(
        nanos(&record["total_cost"], "record total_cost"),
        0,
        "{case}"
    );
}

#[tokio::test]
async fn all_candidates_failing_is_an_error_envelope_and_free() {
    everything_fails(Mode::Whole).await;
}

#[tokio::test]
async fn all_candidates_failing_before_a_byte_streaming_is_a_plain_json_error() {
    everything_fails(Mode::Stream).await;
}

// --- D. A provider's 400 is the client's fault: not retried elsewhere. ---

#[tokio::test]
async fn provider_400_is_returned_without_failover() {
    let case = "400 on DeepInfra (non-streaming)";
    let h = Harness::start().await;
    h.sim_post(
        "deepinfra",
        "faults",
        json!([{"status": 400, "message": "bad thing"}]),
    )
    .await;
    let reply = Reply::read(h.chat(by_price(Mode::Whole)).await).await;
    assert_eq!(reply.status, 400, "{case}: {}", reply.text);
    let error = reply.json(case);
    assert_eq!(error["error"]["code"], 400, "{case}: {error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bad thing")),
        "{case}: the provider's message is passed on: {error}"
    );
    for other in ["groq", "together", "openai", "mistral"] {
        assert!(
            h.sim_requests(other).await.is_empty(),
            "{case}: {other} was tried"
        );
    }
    let record = h.generation(&reply.id(case)).await;
    assert_attempts(&record, case, &[("DeepInfra", json!(400))]);
}

// --- E. Retry-After keeps a rate-limited endpoint out of rotation. ---

#[tokio::test]
async fn retry_after_keeps_the_rate_limited_endpoint_out_of_rotation() {
    let case = "429 with retry_after_s 30 on DeepInfra";
    let h = Harness::start().await;
    h.sim_post(
        "deepinfra",
        "faults",
        json!([{"status": 429, "retry_after_s": 30}]),
    )
    .await;
    let first = Reply::read(h.chat(by_price(Mode::Whole)).await).await;
    served_cost(&first, Mode::Whole, "Groq", case);
    let record = h.generation(&first.id(case)).await;
    assert_attempts(
        &record,
        case,
        &[("DeepInfra", json!(429)), ("Groq", json!(200))],
    );

    // No fault is left, but DeepInfra asked for 30 s of quiet.
    let second = Reply::read(h.chat(by_price(Mode::Whole)).await).await;
    served_cost(
        &second,
        Mode::Whole,
        "Groq",
        &format!("{case}, second request"),
    );
    assert_eq!(
        h.sim_requests("deepinfra").await.len(),
        1,
        "{case}: DeepInfra was called again within its Retry-After"
    );
    let record = h.generation(&second.id(case)).await;
    assert_attempts(&record, case, &[("Groq", json!(200))]);
}

// --- F. Context-length errors move on only to endpoints with a larger context. ---

const CONTEXT_ERROR: &str = concat!(
    "This model's maximum context length is 8192 tokens. ",
    "However, your messages resulted in 9000 tokens."
);

/// The context length of each of `model`'s endpoints, with its provider's display name.
async fn contexts(h: &Harness, model: &str) -> Vec<(String, u64)> {
    let (status, body) = h
        .get(&format!("/api/v1/models/{model}/endpoints"), &h.key)
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["provider_name"].as_str().unwrap().to_owned(),
                e["context_length"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn context_of(contexts: &[(String, u64)], provider: &str) -> u64 {
    contexts
        .iter()
        .filter(|(p, _)| p == provider)
        .map(|(_, c)| *c)
        .max()
        .unwrap_or_else(|| panic!("no {provider} endpoint in {contexts:?}"))
}

#[tokio::test]
async fn context_length_error_moves_to_a_larger_context_endpoint() {
    // Qwen3 32B: DeepInfra (cheapest) has a 40,960-token context, Groq 131,072.
    let model = "qwen/qwen3-32b";
    let case = "context-length 400 on DeepInfra for qwen3-32b";
    let h = Harness::start().await;
    let contexts = contexts(&h, model).await;
    let small = context_of(&contexts, "DeepInfra");
    assert!(
        context_of(&contexts, "Groq") > small,
        "the premise: Groq has a larger context than DeepInfra for {model}: {contexts:?}"
    );
    h.sim_post(
        "deepinfra",
        "faults",
        json!([{"status": 400, "message": CONTEXT_ERROR}]),
    )
    .await;
    let body = request(model, json!({"sort": "price"}), Mode::Whole);
    let reply = Reply::read(h.chat(body).await).await;
    assert_eq!(reply.status, 200, "{case}: {}", reply.text);
    let answer = reply.json(case);
    let served = answer["provider"].as_str().unwrap().to_owned();
    assert!(
        context_of(&contexts, &served) > small,
        "{case}: served by {served}, whose context is not larger than DeepInfra's {small}"
    );
    let record = h.generation(&reply.id(case)).await;
    assert_attempts(
        &record,
        case,
        &[("DeepInfra", json!(400)), (served.as_str(), json!(200))],
    );
}

#[tokio::test]
async fn context_length_error_without_a_larger_endpoint_is_a_400() {
    // Llama 3.3: every enabled provider has the same 131,072-token context.
    let case = "context-length 400 on DeepInfra for llama-3.3";
    let h = Harness::start().await;
    let contexts = contexts(&h, LLAMA).await;
    let small = context_of(&contexts, "DeepInfra");
    for other in ["Groq", "Together"] {
        assert!(
            context_of(&contexts, other) <= small,
            "premise: {contexts:?}"
        );
    }
    h.sim_post(
        "deepinfra",
        "faults",
        json!([{"status": 400, "message": CONTEXT_ERROR}]),
    )
    .await;
    let reply = Reply::read(h.chat(by_price(Mode::Whole)).await).await;
    assert_eq!(reply.status, 400, "{case}: {}", reply.text);
    let error = reply.json(case);
    assert_eq!(error["error"]["code"], 400, "{case}: {error}");
    for other in ["groq", "together"] {
        assert!(
            h.sim_requests(other).await.is_empty(),
            "{case}: {other} (no larger context) was tried"
        );
    }
}

// --- G. Outage detection and half-open recovery, on a clock the test moves. ---

/// DeepInfra first, then Groq.
fn deepinfra_then_groq() -> Value {
    request(LLAMA, json!({"order": ["deepinfra", "groq"]}), Mode::Whole)
}

/// A harness on a clock starting at the real time.
async fn clocked() -> (Harness, Arc<AtomicI64>) {
    let clock = Arc::new(AtomicI64::new(switchyard_server::unix_ms()));
    let h = Harness::with(Options {
        clock: Some(clock.clone()),
        ..Options::default()
    })
    .await;
    (h, clock)
}

fn advance(clock: &AtomicI64, seconds: i64) {
    clock.fetch_add(seconds * 1000, Ordering::SeqCst);
}

/// One request DeepInfra-then-Groq: checks who served it and the attempts it took.
async fn one(h: &Harness, case: &str, served_by: &str, want: &[(&str, Value)]) {
    let reply = Reply::read(post_chat(h, &deepinfra_then_groq(), false).await).await;
    served_cost(&reply, Mode::Whole, served_by, case);
    let record = h.generation(&reply.id(case)).await;
    assert_attempts(&record, case, want);
}

async fn deepinfra_calls(h: &Harness) -> usize {
    h.sim_requests("deepinfra").await.len()
}

/// Three failures trip DeepInfra; the next three requests do not touch it.
async fn trip_deepinfra(h: &Harness, clock: &AtomicI64) {
    h.sim_post(
        "deepinfra",
        "faults",
        json!([{"status": 500, "count": 100}]),
    )
    .await;
    for i in 1..=3 {
        let case = format!("request {i} (DeepInfra failing)");
        one(
            h,
            &case,
            "Groq",
            &[("DeepInfra", json!(500)), ("Groq", json!(200))],
        )
        .await;
        assert_eq!(deepinfra_calls(h).await, i, "{case}");
        advance(clock, 1);
    }
    for i in 4..=6 {
        let case = format!("request {i} (DeepInfra tripped)");
        one(h, &case, "Groq", &[("Groq", json!(200))]).await;
        assert_eq!(
            deepinfra_calls(h).await,
            3,
            "{case}: a tripped endpoint was called"
        );
        advance(clock, 1);
    }
}

#[tokio::test]
async fn tripped_endpoint_is_skipped_then_a_successful_probe_restores_it() {
    let (h, clock) = clocked().await;
    trip_deepinfra(&h, &clock).await;
    advance(&clock, 31);
    let reset = h
        .http
        .delete(format!("{}/_sim/deepinfra", h.sim))
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    one(
        &h,
        "the half-open probe (DeepInfra recovered)",
        "DeepInfra",
        &[("DeepInfra", json!(200))],
    )
    .await;
    assert_eq!(deepinfra_calls(&h).await, 1);
    for i in 2..=3 {
        let case = format!("request {i} after recovery");
        one(&h, &case, "DeepInfra", &[("DeepInfra", json!(200))]).await;
        assert_eq!(deepinfra_calls(&h).await, i, "{case}");
        assert_eq!(
            h.sim_requests("groq").await.len(),
            6,
            "{case}: Groq was called"
        );
    }
}

#[tokio::test]
async fn failed_probe_trips_the_endpoint_again_for_twice_as_long() {
    let (h, clock) = clocked().await;
    trip_deepinfra(&h, &clock).await;
    advance(&clock, 31);
    one(
        &h,
        "the half-open probe (DeepInfra still failing)",
        "Groq",
        &[("DeepInfra", json!(500)), ("Groq", json!(200))],
    )
    .await;
    assert_eq!(deepinfra_calls(&h).await, 4, "the probe reached DeepInfra");
    one(
        &h,
        "right after the failed probe",
        "Groq",
        &[("Groq", json!(200))],
    )
    .await;
    advance(&clock, 31);
    one(
        &h,
        "31 s after the failed probe (re-tripped for 60 s)",
        "Groq",
        &[("Groq", json!(200))],
    )
    .await;
    assert_eq!(
        deepinfra_calls(&h).await,
        4,
        "DeepInfra was called while re-tripped"
    );
    advance(&clock, 30);
    one(
        &h,
        "61 s after the failed probe (the second probe, still failing)",
        "Groq",
        &[("DeepInfra", json!(500)), ("Groq", json!(200))],
    )
    .await;
    assert_eq!(
        deepinfra_calls(&h).await,
        5,
        "the second probe reached DeepInfra"
    );
}

#[tokio::test]
async fn every_candidate_down_is_503_temporarily_unavailable_without_calling_upstream() {
    let case = "only DeepInfra, tripped";
    let (h, clock) = clocked().await;
    trip_deepinfra(&h, &clock).await;
    let started = Instant::now();
    let body = request(LLAMA, json!({"only": ["deepinfra"]}), Mode::Whole);
    let reply = Reply::read(h.chat(body).await).await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 503, "{case}: {}", reply.text);
    let error = reply.json(case);
    assert_eq!(error["error"]["code"], 503, "{case}: {error}");
    assert_eq!(
        error["error"]["availability"]["code"], "temporarily_unavailable",
        "{case}: {error}"
    );
    assert_eq!(deepinfra_calls(&h).await, 3, "{case}: DeepInfra was called");
    assert!(
        elapsed < Duration::from_secs(2),
        "{case}: took {elapsed:?}, as long as an upstream timeout"
    );
}

// --- H. openrouter_metadata, on request. ---

fn check_metadata(meta: &Value, case: &str) {
    assert!(meta["strategy"].is_string(), "{case}: strategy in {meta}");
    assert!(meta["attempt"].is_number(), "{case}: attempt in {meta}");
    assert!(
        meta["endpoints"]["total"].is_number(),
        "{case}: endpoints.total in {meta}"
    );
    let available = meta["endpoints"]["available"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: endpoints.available in {meta}"));
    assert!(!available.is_empty(), "{case}: {meta}");
    for endpoint in available {
        assert!(endpoint["provider"].is_string(), "{case}: {endpoint}");
        assert!(endpoint["model"].is_string(), "{case}: {endpoint}");
        assert!(endpoint["selected"].is_boolean(), "{case}: {endpoint}");
    }
    let attempts = meta["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: attempts in {meta}"));
    assert_eq!(attempts.len(), 2, "{case}: attempts in {meta}");
    for attempt in attempts {
        assert!(attempt["provider"].is_string(), "{case}: {attempt}");
        assert!(attempt["model"].is_string(), "{case}: {attempt}");
    }
    assert_eq!(attempts[0]["status"], 500, "{case}: {meta}");
    assert_eq!(attempts[1]["status"], 200, "{case}: {meta}");
}

async fn metadata_on_request(mode: Mode) {
    let h = Harness::start().await;
    h.sim_post("deepinfra", "faults", json!([{"status": 500, "count": 2}]))
        .await;
    for opted_in in [true, false] {
        let case = format!(
            "{mode}, {}",
            if opted_in {
                "X-OpenRouter-Metadata: enabled"
            } else {
                "no metadata header"
            }
        );
        let reply = Reply::read(post_chat(&h, &by_price(mode), opted_in).await).await;
        served_cost(&reply, mode, "Groq", &case);
        match mode {
            Mode::Whole => {
                let body = reply.json(&case);
                match body.get("openrouter_metadata") {
                    Some(meta) if opted_in => check_metadata(meta, &case),
                    None if !opted_in => {}
                    other => panic!("{case}: openrouter_metadata {other:?} in {body}"),
                }
            }
            Mode::Stream => {
                let sse = parse_sse(&reply.text, &case);
                let (last, rest) = sse.chunks.split_last().expect("chunks");
                for chunk in rest {
                    assert!(
                        chunk.get("openrouter_metadata").is_none(),
                        "{case}: metadata before the final chunk: {chunk}"
                    );
                }
                match last.get("openrouter_metadata") {
                    Some(meta) if opted_in => check_metadata(meta, &case),
                    None if !opted_in => {}
                    other => {
                        panic!("{case}: openrouter_metadata {other:?} in the final chunk {last}")
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn metadata_opt_in_reports_attempts_non_streaming() {
    metadata_on_request(Mode::Whole).await;
}

#[tokio::test]
async fn metadata_opt_in_rides_on_the_final_stream_chunk() {
    metadata_on_request(Mode::Stream).await;
}
