//! OpenAI Chat Completions as an upstream protocol: the request we send, and the response and stream
//! chunks turned into OpenRouter's shape (our id, the catalog model, `provider`, `native_finish_reason`,
//! usage with `cost`).
//!
//! Pure functions over bytes and JSON; sending is the server's job.

use super::{
    finish_reason, is_context_length_message, upstream_failure, usage_json, ChunkStamp, Outcome,
    Served, UpstreamFailure,
};
use crate::chat::{ChatRequest, GATEWAY_FIELDS};
use crate::error::{ApiError, ErrorCode};
use crate::pricing::{Charge, Usage};
use serde_json::{json, Map, Value};

pub use super::StreamStep;

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

/// Turns an upstream chunk stream into the client's, remembering what the final chunk needs.
#[derive(Debug)]
pub struct StreamTranslator {
    stamp: ChunkStamp,
    outcome: Outcome,
    generated_bytes: usize,
    content_sent: bool,
}

impl StreamTranslator {
    pub fn new(served: &Served<'_>) -> StreamTranslator {
        StreamTranslator {
            stamp: ChunkStamp::new(served),
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
                .with_metadata("provider_name", json!(self.stamp.provider_name())));
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
        Ok(StreamStep::Frame(self.stamp.frame(chunk)))
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
        self.stamp.usage_frame(usage, charge, metadata)
    }

    /// OpenRouter's mid-stream error chunk: top-level `error` and a choice finishing with `error`.
    pub fn error_frame(&self, err: &ApiError) -> Vec<u8> {
        self.stamp
            .error_frame(err, self.outcome.native_finish_reason.as_deref())
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
    upstream_failure(UpstreamFailure {
        status,
        provider_message,
        raw,
        context_length,
        provider_name,
        retry_after,
    })
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
    let reported = obj.get("finish_reason").cloned().unwrap_or(Value::Null);
    let normalised = match reported.as_str() {
        Some(n) => json!(finish_reason(n)),
        None => Value::Null,
    };
    // A native value already given wins (Gemini's `STOP` that finished with tool calls).
    let native = match obj.get("native_finish_reason") {
        Some(native @ Value::String(_)) => native.clone(),
        _ => reported,
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
