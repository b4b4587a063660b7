//! Upstream protocols: one module per wire format, each a set of pure translations between the
//! client's OpenAI-shaped chat request/response and what that upstream speaks.
//!
//! Shared here: what every translation needs to know about the serving endpoint ([`Served`]), what it
//! learns from the upstream ([`Outcome`]), finish-reason normalisation, the usage object we emit, the
//! stamping of the chunks we stream (`ChunkStamp`) and the HTTP-status table of upstream errors.

pub mod anthropic;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod openai;
pub mod vertex;

use crate::error::{ApiError, ErrorCode};
use crate::pricing::{Charge, Usage};
use crate::sse::data_frame;
use serde_json::{json, Map, Value};

/// Who served a generation, as the client must see it.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    pub generation_id: &'a str,
    /// The catalog model id (`author/slug`), not the upstream's name.
    pub model: &'a str,
    /// Provider display name, e.g. `DeepInfra`.
    pub provider_name: &'a str,
    pub created: i64,
}

/// What the upstream told us about a generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub usage: Option<Usage>,
    /// Normalised: `stop`, `length`, `tool_calls`, `content_filter` or `error`.
    pub finish_reason: Option<String>,
    /// The upstream's own value.
    pub native_finish_reason: Option<String>,
    pub upstream_id: Option<String>,
}

/// Whether an upstream HTTP failure may succeed on another endpoint: rate limits, timeouts, server
/// errors, and credential or billing problems of that provider. Errors in the request itself
/// (400, 404, 413, 422) would fail anywhere, so they are returned to the client at once.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 401 | 402 | 403 | 408 | 409 | 425 | 429) || status >= 500
}

/// Normalises a provider's finish reason to OpenRouter's five values.
pub fn finish_reason(native: &str) -> &'static str {
    match native {
        "length"
        | "max_tokens"
        | "MAX_TOKENS"
        | "model_length"
        | "model_context_window_exceeded" => "length",
        "tool_calls" | "function_call" | "tool_use" | "TOOL_CALL" => "tool_calls",
        "content_filter" | "refusal" => "content_filter",
        // Bedrock's guardrails and its models' own filters.
        "guardrail_intervened" | "content_filtered" => "content_filter",
        // Bedrock's failed generations.
        "malformed_model_output" | "malformed_tool_use" => "error",
        // Gemini's blocks, of the answer or (`promptFeedback.blockReason`) of the prompt.
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => "content_filter",
        // Gemini's failed tool use.
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => "error",
        "error" | "ERROR" | "TIMEOUT" => "error",
        // Including Cohere's `COMPLETE` and `STOP_SEQUENCE`.
        _ => "stop",
    }
}

/// OpenRouter's usage object, with `cost` (what was charged) and `cost_details` (the generation at
/// the endpoint's prices; for BYOK, `upstream_inference_cost` is what the provider bills the account).
pub fn usage_json(usage: &Usage, charge: &Charge) -> Value {
    let cost = &charge.cost;
    let upstream = if charge.is_byok {
        json!(cost.total.as_usd_f64())
    } else {
        Value::Null
    };
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens(),
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cost": charge.charged.as_usd_f64(),
        "is_byok": charge.is_byok,
        "cost_details": {
            "upstream_inference_cost": upstream,
            "upstream_inference_prompt_cost": cost.prompt.as_usd_f64(),
            "upstream_inference_completions_cost": cost.completion.as_usd_f64(),
        },
    })
}

/// What one upstream stream event means for the relay.
#[derive(Debug, PartialEq)]
pub enum StreamStep {
    /// Send this frame to the client.
    Frame(Vec<u8>),
    /// Nothing to send (e.g. the upstream's usage-only chunk, which we re-issue with the cost).
    Nothing,
    /// The upstream finished the stream.
    Done,
}

/// Who a streamed chunk comes from, stamped on every `chat.completion.chunk` a translator sends, so
/// that every upstream protocol streams chunks the client cannot tell apart.
#[derive(Debug, Clone)]
pub(crate) struct ChunkStamp {
    generation_id: String,
    model: String,
    provider_name: String,
    created: i64,
}

impl ChunkStamp {
    pub(crate) fn new(served: &Served<'_>) -> ChunkStamp {
        ChunkStamp {
            generation_id: served.generation_id.to_owned(),
            model: served.model.to_owned(),
            provider_name: served.provider_name.to_owned(),
            created: served.created,
        }
    }

    pub(crate) fn provider_name(&self) -> &str {
        &self.provider_name
    }

    /// `chunk` with our id, object, created, model and provider, as an SSE frame.
    pub(crate) fn frame(&self, mut chunk: Map<String, Value>) -> Vec<u8> {
        chunk.insert("id".into(), json!(self.generation_id));
        chunk.insert("object".into(), json!("chat.completion.chunk"));
        chunk.insert("created".into(), json!(self.created));
        chunk.insert("model".into(), json!(self.model));
        chunk.insert("provider".into(), json!(self.provider_name));
        data_frame(&serde_json::to_vec(&Value::Object(chunk)).unwrap_or_default())
    }

    /// A chunk of one choice carrying `delta`, finishing with `finish` (normalised, native) when
    /// given; the shape every translator streams content in.
    pub(crate) fn choice_frame(&self, delta: Value, finish: Option<(&str, &str)>) -> Vec<u8> {
        let (normalised, native) = finish.unzip();
        let mut chunk = Map::new();
        chunk.insert(
            "choices".into(),
            json!([{"index": 0, "delta": delta, "finish_reason": normalised,
                "native_finish_reason": native}]),
        );
        self.frame(chunk)
    }

    /// The last chunk before `[DONE]`: no choices, the usage with its cost, and the routing
    /// metadata when the client asked for it.
    pub(crate) fn usage_frame(
        &self,
        usage: &Usage,
        charge: &Charge,
        metadata: Option<Value>,
    ) -> Vec<u8> {
        let mut chunk = Map::new();
        chunk.insert("choices".into(), json!([]));
        chunk.insert("usage".into(), usage_json(usage, charge));
        if let Some(metadata) = metadata {
            chunk.insert("openrouter_metadata".into(), metadata);
        }
        self.frame(chunk)
    }

    /// OpenRouter's mid-stream error chunk: top-level `error` and a choice finishing with `error`.
    pub(crate) fn error_frame(
        &self,
        err: &ApiError,
        native_finish_reason: Option<&str>,
    ) -> Vec<u8> {
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
                "native_finish_reason": native_finish_reason}]),
        );
        self.frame(chunk)
    }
}

/// An upstream's HTTP error, read: the status, the provider's own message when its body had one,
/// and whether that message says the prompt does not fit the context window.
pub(crate) struct UpstreamFailure<'a> {
    pub status: u16,
    pub provider_message: Option<String>,
    /// What goes to `metadata.raw`: the provider's message, else the start of its body.
    pub raw: String,
    pub context_length: bool,
    pub provider_name: &'a str,
    pub retry_after: Option<u64>,
}

/// The client's error for an upstream HTTP failure, by status: request errors keep the provider's
/// words, failures of the provider itself get ours (its words stay in `metadata.raw`).
pub(crate) fn upstream_failure(failure: UpstreamFailure<'_>) -> ApiError {
    let UpstreamFailure {
        status,
        provider_message,
        raw,
        context_length,
        provider_name,
        retry_after,
    } = failure;
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
/// of OpenAI, vLLM, Together, Groq, Anthropic and others).
pub(crate) fn is_context_length_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "maximum context length",
        "context length",
        "context_length",
        "context window",
        "context limit",
        "too many tokens",
        "prompt is too long",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}
