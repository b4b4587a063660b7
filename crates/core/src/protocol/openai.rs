//! OpenAI Chat Completions as an upstream protocol: the request we send, and the response and stream
//! chunks turned into OpenRouter's shape (our id, the catalog model, `provider`, `native_finish_reason`,
//! usage with `cost`).
//!
//! Pure functions over bytes and JSON; sending is the server's job.

use super::{finish_reason, usage_json, Outcome, Served};
use crate::chat::{ChatRequest, GATEWAY_FIELDS};
use crate::error::{ApiError, ErrorCode};
use crate::pricing::{Charge, Usage};
use crate::sse::data_frame;
use serde_json::{json, Map, Value};

/// Path appended to the provider's base URL.
pub const CHAT_PATH: &str = "/chat/completions";

/// The upstream request body: the client's body minus our fields, with the upstream's model name.
pub fn request_body(req: &ChatRequest, upstream_model: &str) -> Vec<u8> {
    let source = req.body();
    let mut body = Map::with_capacity(source.len() + 1);
    for (k, v) in source {
        if !GATEWAY_FIELDS.contains(&k.as_str()) {
            body.insert(k.clone(), v.clone());
        }
    }
    body.insert("model".into(), Value::String(upstream_model.to_owned()));
    let effort = source
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str);
    if let (Some(effort), false) = (effort, body.contains_key("reasoning_effort")) {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    if req.stream() {
        // Usage is always reported to our clients, so always ask the upstream for it.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// Reads a non-streaming upstream response.
pub fn parse_response(bytes: &[u8]) -> Result<(Map<String, Value>, Outcome), ApiError> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid_upstream_response());
    };
    if !body.get("choices").is_some_and(Value::is_array) {
        return Err(invalid_upstream_response());
    }
    let mut outcome = Outcome {
        upstream_id: body.get("id").and_then(Value::as_str).map(str::to_owned),
        usage: body.get("usage").and_then(parse_usage),
        ..Outcome::default()
    };
    if let Some(native) = body
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
    {
        outcome.native_finish_reason = Some(native.to_owned());
        outcome.finish_reason = Some(finish_reason(native).to_owned());
    }
    Ok((body, outcome))
}

/// Generated text of a non-streaming response, for estimating tokens when usage is missing.
pub fn generated_text_len(body: &Map<String, Value>) -> usize {
    let mut len = 0;
    for choice in body
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let message = &choice["message"];
        len += message["content"].as_str().map_or(0, str::len);
        len += message["reasoning"].as_str().map_or(0, str::len);
        if let Some(calls) = message.get("tool_calls").filter(|c| !c.is_null()) {
            len += calls.to_string().len();
        }
    }
    len
}

/// The client's response body.
pub fn render_response(
    mut body: Map<String, Value>,
    served: &Served<'_>,
    usage: &Usage,
    charge: &Charge,
) -> Vec<u8> {
    body.insert("id".into(), json!(served.generation_id));
    body.insert("object".into(), json!("chat.completion"));
    body.insert("created".into(), json!(served.created));
    body.insert("model".into(), json!(served.model));
    body.insert("provider".into(), json!(served.provider_name));
    body.entry("system_fingerprint").or_insert(Value::Null);
    if let Some(Value::Array(choices)) = body.get_mut("choices") {
        for choice in choices {
            normalise_finish(choice);
        }
    }
    body.insert("usage".into(), usage_json(usage, charge));
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// What one upstream stream event means for the relay.
#[derive(Debug, PartialEq)]
pub enum StreamStep {
    /// Send this frame to the client.
    Frame(Vec<u8>),
    /// Nothing to send (e.g. the upstream's usage-only chunk, which we re-issue with the cost).
    Nothing,
    /// The upstream sent `[DONE]`.
    Done,
}

/// Turns an upstream chunk stream into the client's, remembering what the final chunk needs.
#[derive(Debug)]
pub struct StreamTranslator {
    generation_id: String,
    model: String,
    provider_name: String,
    created: i64,
    outcome: Outcome,
    generated_bytes: usize,
    content_sent: bool,
}

impl StreamTranslator {
    pub fn new(served: &Served<'_>) -> StreamTranslator {
        StreamTranslator {
            generation_id: served.generation_id.to_owned(),
            model: served.model.to_owned(),
            provider_name: served.provider_name.to_owned(),
            created: served.created,
            outcome: Outcome::default(),
            generated_bytes: 0,
            content_sent: false,
        }
    }

    /// Handles the `data` of one upstream event.
    pub fn on_data(&mut self, data: &str) -> Result<StreamStep, ApiError> {
        if data.trim() == "[DONE]" {
            return Ok(StreamStep::Done);
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
            return Err(invalid_upstream_response());
        };
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("Provider returned error");
            return Err(ApiError::new(ErrorCode::UpstreamError, message.to_owned())
                .with_metadata("provider_name", json!(self.provider_name)));
        }
        if self.outcome.upstream_id.is_none() {
            self.outcome.upstream_id = chunk.get("id").and_then(Value::as_str).map(str::to_owned);
        }
        if let Some(usage) = chunk.get("usage").and_then(parse_usage) {
            self.outcome.usage = Some(usage);
        }
        let mut has_choices = false;
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            for choice in choices.iter_mut() {
                has_choices = true;
                let delta = &choice["delta"];
                let before = self.generated_bytes;
                self.generated_bytes += delta["content"].as_str().map_or(0, str::len);
                self.generated_bytes += delta["reasoning"].as_str().map_or(0, str::len);
                if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
                    for call in calls {
                        self.generated_bytes +=
                            call["function"]["arguments"].as_str().map_or(0, str::len);
                        self.generated_bytes +=
                            call["function"]["name"].as_str().map_or(0, str::len);
                    }
                }
                if self.generated_bytes > before {
                    self.content_sent = true;
                }
                if let Some(native) = choice["finish_reason"].as_str() {
                    self.outcome.native_finish_reason = Some(native.to_owned());
                    self.outcome.finish_reason = Some(finish_reason(native).to_owned());
                }
                normalise_finish(choice);
            }
        }
        if !has_choices {
            return Ok(StreamStep::Nothing);
        }
        chunk.remove("usage");
        self.stamp(&mut chunk);
        Ok(StreamStep::Frame(data_frame(
            &serde_json::to_vec(&Value::Object(chunk)).unwrap_or_default(),
        )))
    }

    /// Whether any generated content has been forwarded (after which failover is impossible).
    pub fn content_sent(&self) -> bool {
        self.content_sent
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Bytes of generated text seen so far (to estimate tokens if the stream is cut short).
    pub fn generated_bytes(&self) -> usize {
        self.generated_bytes
    }

    /// The last chunk before `[DONE]`: no choices, the usage with its cost, and the routing
    /// metadata when the client asked for it.
    pub fn usage_frame(&self, usage: &Usage, charge: &Charge, metadata: Option<Value>) -> Vec<u8> {
        let mut chunk = Map::new();
        chunk.insert("choices".into(), json!([]));
        chunk.insert("usage".into(), usage_json(usage, charge));
        if let Some(metadata) = metadata {
            chunk.insert("openrouter_metadata".into(), metadata);
        }
        self.stamp(&mut chunk);
        data_frame(&serde_json::to_vec(&Value::Object(chunk)).unwrap_or_default())
    }

    /// OpenRouter's mid-stream error chunk: top-level `error` and a choice finishing with `error`.
    pub fn error_frame(&self, err: &ApiError) -> Vec<u8> {
        let mut metadata = err.metadata.clone().unwrap_or_default();
        metadata.insert("error_type".into(), json!(err.code.error_type()));
        let mut chunk = Map::new();
        chunk.insert(
            "error".into(),
            json!({"code": err.code.status(), "message": err.message, "metadata": metadata}),
        );
        chunk.insert(
            "choices".into(),
            json!([{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                "native_finish_reason": self.outcome.native_finish_reason}]),
        );
        self.stamp(&mut chunk);
        data_frame(&serde_json::to_vec(&Value::Object(chunk)).unwrap_or_default())
    }

    fn stamp(&self, chunk: &mut Map<String, Value>) {
        chunk.insert("id".into(), json!(self.generation_id));
        chunk.insert("object".into(), json!("chat.completion.chunk"));
        chunk.insert("created".into(), json!(self.created));
        chunk.insert("model".into(), json!(self.model));
        chunk.insert("provider".into(), json!(self.provider_name));
    }
}

/// Maps an upstream HTTP error to the client's error, keeping the provider's words in `metadata.raw`.
pub fn upstream_error(
    status: u16,
    body: &[u8],
    provider_name: &str,
    retry_after: Option<u64>,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let provider_message = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let raw = provider_message
        .clone()
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(1000)]).into_owned());
    let context_length = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        == Some("context_length_exceeded")
        || provider_message
            .as_deref()
            .is_some_and(is_context_length_message);
    let (code, message) = match status {
        400 | 413 | 422 if context_length => (
            ErrorCode::ContextLengthExceeded,
            provider_message
                .unwrap_or_else(|| "The prompt is longer than the model's context".to_owned()),
        ),
        400 | 404 | 422 => (
            ErrorCode::InvalidRequest,
            provider_message.unwrap_or_else(|| "Provider rejected the request".to_owned()),
        ),
        413 => (
            ErrorCode::PayloadTooLarge,
            "Provider rejected the request as too large".to_owned(),
        ),
        408 | 504 => (ErrorCode::UpstreamTimeout, "Provider timed out".to_owned()),
        429 => (
            ErrorCode::RateLimited,
            format!("{provider_name} is rate limited upstream; retry shortly"),
        ),
        503 | 529 => (
            ErrorCode::UpstreamOverloaded,
            format!("{provider_name} is overloaded"),
        ),
        _ => (
            ErrorCode::UpstreamError,
            "Provider returned error".to_owned(),
        ),
    };
    let mut err = ApiError::new(code, message)
        .with_metadata("provider_name", json!(provider_name))
        .with_metadata("provider_code", json!(status))
        .with_metadata("error_type", json!(code.error_type()))
        .with_metadata("raw", json!(raw));
    err.retry_after = retry_after;
    err
}

/// Whether a provider's 400 message says the prompt does not fit the context window (the wordings
/// of OpenAI, vLLM, Together, Groq and others).
fn is_context_length_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "maximum context length",
        "context length",
        "context_length",
        "context window",
        "too many tokens",
        "prompt is too long",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// A 2xx upstream answer we could not read.
pub fn invalid_upstream_response() -> ApiError {
    ApiError::new(
        ErrorCode::UpstreamError,
        "Provider returned an invalid response",
    )
}

fn normalise_finish(choice: &mut Value) {
    let Some(obj) = choice.as_object_mut() else {
        return;
    };
    let native = obj.get("finish_reason").cloned().unwrap_or(Value::Null);
    let normalised = match native.as_str() {
        Some(n) => json!(finish_reason(n)),
        None => Value::Null,
    };
    obj.insert("finish_reason".into(), normalised);
    obj.insert("native_finish_reason".into(), native);
}

fn parse_usage(usage: &Value) -> Option<Usage> {
    let usage = usage.as_object()?;
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    let prompt_details = usage.get("prompt_tokens_details");
    let completion_details = usage.get("completion_tokens_details");
    Some(Usage {
        prompt_tokens: n(usage.get("prompt_tokens")),
        completion_tokens: n(usage.get("completion_tokens")),
        cached_tokens: n(prompt_details.and_then(|d| d.get("cached_tokens"))),
        cache_write_tokens: n(prompt_details.and_then(|d| d.get("cache_write_tokens"))),
        reasoning_tokens: n(completion_details.and_then(|d| d.get("reasoning_tokens"))),
        images: 0,
        web_searches: 0,
    })
}

#[cfg(test)]
mod tests;
