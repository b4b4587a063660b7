//! Upstream protocols: one module per wire format, each a set of pure translations between the
//! client's OpenAI-shaped chat request/response and what that upstream speaks.
//!
//! Shared here: what every translation needs to know about the serving endpoint ([`Served`]), what it
//! learns from the upstream ([`Outcome`]), finish-reason normalisation and the usage object we emit.

pub mod openai;

use crate::catalog::Protocol;
use crate::pricing::{Charge, Usage};
use serde_json::{json, Value};

/// Whether this build can translate to `protocol`. Providers speaking others stay in the catalog
/// but are not routed to (and not listed by the discovery API) until their translator lands.
pub fn translator_available(protocol: Protocol) -> bool {
    matches!(protocol, Protocol::OpenAi)
}

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
        "length" | "max_tokens" | "MAX_TOKENS" | "model_length" => "length",
        "tool_calls" | "function_call" | "tool_use" => "tool_calls",
        "content_filter" | "SAFETY" | "RECITATION" | "refusal" => "content_filter",
        "error" => "error",
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
