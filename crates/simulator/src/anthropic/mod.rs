//! The Anthropic protocol: `POST /{upstream}/v1/messages` and
//! `POST /{upstream}/v1/messages/count_tokens`, written from Anthropic's Messages API
//! documentation, with Anthropic's error envelope, headers and streaming events.
//!
//! What the simulated model does:
//! - **Text**: `output_tokens` (behaviour) vocabulary words, cut at `max_tokens`
//!   (`stop_reason: "max_tokens"`) or before the earliest `stop_sequences` match
//!   (`"stop_sequence"`, with `stop_sequence` set); `output_config.format` (`json_schema`)
//!   answers with a JSON document valid for the schema.
//! - **Tools**: custom tools whose names the last user turn's text mentions are called, in
//!   `tools` order, one `tool_use` block each (`stop_reason: "tool_use"`), or only the first with
//!   `disable_parallel_tool_use`; `tool_choice` `any` calls the mentioned tools or else the first
//!   tool, `{"type": "tool", "name"}` calls that tool, `none` calls nothing. A last user turn
//!   holding `tool_result` blocks is answered with text (unless `tool_choice` forces a tool).
//! - **Thinking**: with `thinking` `enabled` (or `adaptive`), the answer opens with a `thinking`
//!   block of `output_tokens` words (at most `budget_tokens`) and a deterministic `signature`;
//!   `display: "omitted"` sends it empty with its signature. When the last user turn's text
//!   contains `redact` (any case), a `redacted_thinking` block takes its place. Thinking counts
//!   in `output_tokens`.
//! - **Prompt caching**: every `cache_control` breakpoint (on tools, system blocks, message
//!   blocks, or the top-level one, which marks the last block) ends a cacheable prefix. The
//!   longest prefix this upstream has seen before is reported as `cache_read_input_tokens`, the
//!   rest up to the last breakpoint as `cache_creation_input_tokens` (split by `ttl` in
//!   `cache_creation`), and only what follows the last breakpoint as `input_tokens`. Entries do
//!   not expire; `DELETE /_sim/{upstream}` empties the cache.
//! - **Input tokens** (the simulator's fixed tokenizer): each tool's JSON definition; system
//!   text; per message 3 plus its role plus its blocks (text by the tokenizer, 85 per image, a
//!   text document's text, 1000 per PDF/URL/file document, a `tool_use`'s name and input JSON, a
//!   `tool_result`'s content; earlier `thinking` blocks count nothing, as the API drops them); 3
//!   more priming the reply. `count_tokens` returns this total.
//!
//! Credentials are `x-api-key` (or `Authorization: Bearer`, which Anthropic's current SDKs
//! send), any non-empty value; `anthropic-version` must be present. Faults from the control API
//! apply as for every protocol; a status fault answers in Anthropic's error envelope with the
//! `error.type` Anthropic uses for that status.
//!
//! The answering itself ([`create`], [`count`]) takes an admitted request and its parsed body,
//! so Claude on Vertex AI (`crate::vertex`) reuses it with its own URL, credentials and body
//! rules; there message ids start `msg_vrtx_01` as Vertex's do.

mod answer;
mod request;
mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::control::{Sim, Upstream};
use crate::exchange::{
    self, json_body, new_request_id, pace_whole, request_id_header, stream_response, Admitted, Wire,
};
use crate::generate::{hex, request_hash};
use request::{Mode, Prompt, Ttl};

/// Keys that do not change what a request generates: streamed or not, cached or not, the same
/// answer, and `max_tokens` or `stop_sequences` only cut it short (so a cut answer is a prefix
/// of the whole one, as with a real model).
const NON_SEMANTIC_KEYS: &[&str] = &[
    "stream",
    "max_tokens",
    "stop_sequences",
    "cache_control",
    "metadata",
];

/// The Anthropic wire: `x-api-key` and `anthropic-version`, Anthropic's error envelope,
/// `request-id`, and named SSE events.
pub struct Anthropic;

impl Wire for Anthropic {
    const REQUEST_ID_HEADER: &'static str = "request-id";
    const MALFORMED_EVENT: &'static [u8] = b"event: message_start\ndata: {not json\n\n";

    fn reject_headers(headers: &HeaderMap) -> Option<Response> {
        if !has_credentials(headers) {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "x-api-key header is required",
            ));
        }
        let version = headers
            .get("anthropic-version")
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        if version.is_none_or(str::is_empty) {
            return Some(error(
                StatusCode::BAD_REQUEST,
                "anthropic-version: header is required",
            ));
        }
        None
    }

    fn too_large() -> Response {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request exceeds the maximum allowed number of bytes.",
        )
    }

    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
        let default = match status {
            400 => "Invalid request (simulated).",
            401 => "invalid x-api-key",
            402 => "Your credit balance is too low to access the Anthropic API.",
            403 => "Your API key does not have permission to use the specified resource.",
            404 => "The requested resource could not be found.",
            413 => "Request exceeds the maximum allowed number of bytes.",
            429 => {
                "This request would exceed your organization's rate limit. Please try again later."
            }
            500 => "Internal server error",
            504 => "Request timed out",
            529 => "Overloaded",
            _ => "The request failed (simulated fault).",
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(status, message.unwrap_or(default));
        if let Some(seconds) = retry_after_s {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(seconds.ceil() as u64),
            );
        }
        response
    }
}

/// A non-empty `x-api-key`, or a non-empty bearer token.
fn has_credentials(headers: &HeaderMap) -> bool {
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, key)| {
            scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty()
        });
    api_key || bearer
}

/// The `error.type` Anthropic documents for each status; other 4xx are
/// `invalid_request_error`, other 5xx `api_error`.
fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

/// `{"type":"error","error":{"type","message"},"request_id"}`, with the same id in the
/// `request-id` header.
fn error(status: StatusCode, message: &str) -> Response {
    let id = new_request_id();
    let body = ErrorBody {
        kind: "error",
        error: ErrorDetail {
            kind: error_type(status.as_u16()),
            message,
        },
        request_id: &id,
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            request_id_header::<Anthropic>(&id),
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A 400 `invalid_request_error` in Anthropic's envelope (for wires reusing this module).
pub(crate) fn invalid_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// A 400 `invalid_request_error`; the message starts with the path of the field to fix
/// (`messages.0.content.1.source`), as Anthropic's do.
#[derive(Debug)]
struct Invalid(String);

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, &self.0)
    }
}

/// The request body as JSON.
fn body_json(body: &[u8]) -> Result<Value, Invalid> {
    serde_json::from_slice(body)
        .map_err(|e| Invalid(format!("The request body is not valid JSON: {e}")))
}

/// The request body as JSON, or the message of Anthropic's 400 for a body that is not (see
/// [`invalid_request`]).
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, String> {
    body_json(body).map_err(|invalid| invalid.0)
}

/// What the prompt costs after the upstream's prompt cache has been consulted and updated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct InputUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    ephemeral_5m_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
}

/// Splits the prompt into read, written and uncached tokens (see the module docs).
fn input_usage(prompt: &Prompt, upstream: &Upstream) -> InputUsage {
    let Some(last) = prompt.breakpoints.last() else {
        return InputUsage {
            input_tokens: prompt.total,
            ..InputUsage::default()
        };
    };
    let hashes: Vec<[u8; 32]> = prompt.breakpoints.iter().map(|b| b.hash).collect();
    let hit = upstream.cache_prefixes(&hashes);
    let mut usage = InputUsage {
        input_tokens: prompt.total - last.tokens,
        ..InputUsage::default()
    };
    let mut covered = 0;
    if let Some(i) = hit {
        covered = prompt.breakpoints[i].tokens;
        usage.cache_read_input_tokens = covered;
    }
    let written = hit.map_or(0, |i| i + 1);
    for breakpoint in &prompt.breakpoints[written..] {
        // Each breakpoint writes the stretch since the previous one, at its own TTL.
        let segment = breakpoint.tokens.saturating_sub(covered);
        covered = covered.max(breakpoint.tokens);
        match breakpoint.ttl {
            Ttl::FiveMinutes => usage.ephemeral_5m_input_tokens += segment,
            Ttl::OneHour => usage.ephemeral_1h_input_tokens += segment,
        }
        usage.cache_creation_input_tokens += segment;
    }
    usage
}

/// Who serves the Messages API: Anthropic itself, or Claude on Vertex AI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    Anthropic,
    Vertex,
}

/// `msg_01` (`msg_vrtx_01` on Vertex AI) + a prefix of the request hash + a process-wide
/// counter, so a replayed request still gets a distinct id.
fn message_id(hash: &[u8; 32], host: Host) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = match host {
        Host::Anthropic => "msg_01",
        Host::Vertex => "msg_vrtx_01",
    };
    format!(
        "{prefix}{}{:012x}",
        hex(&hash[..5]),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `POST /{upstream}/v1/messages`.
pub async fn messages(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let admitted = match exchange::admit::<Anthropic>(&sim, &name, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let value = match body_json(&admitted.body) {
        Ok(value) => value,
        Err(invalid) => return invalid.into_response(),
    };
    create(&admitted, &value, Host::Anthropic).await
}

/// Answers an admitted Messages request whose body is `value` (which names the model): one
/// message, or its SSE stream when the body says `stream: true`.
pub(crate) async fn create(admitted: &Admitted, value: &Value, host: Host) -> Response {
    let parsed = match request::MessagesRequest::parse(value, Mode::Create) {
        Ok(parsed) => parsed,
        Err(invalid) => return invalid.into_response(),
    };
    admitted.upstream.note_model(parsed.model);

    let hash = request_hash(value, NON_SEMANTIC_KEYS);
    let answer = answer::generate(&parsed, &admitted.behaviour, &hash);
    let input = input_usage(&parsed.prompt(), &admitted.upstream);
    let usage = answer::Usage::new(input, answer.output_tokens);
    let id = message_id(&hash, host);

    if parsed.stream {
        let events = stream::MessageStream::new(id, parsed.model.to_owned(), answer, usage);
        return stream_response::<Anthropic>(events, &admitted.behaviour, admitted.body_fault);
    }
    pace_whole(&admitted.behaviour, answer.output_tokens).await;
    match serde_json::to_vec(&answer::render(&id, parsed.model, &answer, &usage)) {
        Ok(bytes) => json_body::<Anthropic>(bytes, admitted.body_fault),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `POST /{upstream}/v1/messages/count_tokens`: `{"input_tokens": N}`, the whole prompt
/// (cached or not) by the fixed tokenizer.
pub async fn count_tokens(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let admitted = match exchange::admit::<Anthropic>(&sim, &name, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let value = match body_json(&admitted.body) {
        Ok(value) => value,
        Err(invalid) => return invalid.into_response(),
    };
    count(&admitted, &value)
}

/// Answers an admitted count_tokens request whose body is `value`.
pub(crate) fn count(admitted: &Admitted, value: &Value) -> Response {
    let parsed = match request::MessagesRequest::parse(value, Mode::CountTokens) {
        Ok(parsed) => parsed,
        Err(invalid) => return invalid.into_response(),
    };
    let body = serde_json::json!({"input_tokens": parsed.prompt().total});
    json_body::<Anthropic>(body.to_string().into_bytes(), admitted.body_fault)
}

#[cfg(test)]
mod tests {
    use super::*;
    use request::Breakpoint;

    fn breakpoint(tokens: u64, id: u8, ttl: Ttl) -> Breakpoint {
        Breakpoint {
            tokens,
            hash: [id; 32],
            ttl,
        }
    }

    #[test]
    fn cache_usage_reads_the_longest_seen_prefix_and_writes_the_rest() {
        let upstream = Upstream::default();
        let prompt = Prompt {
            total: 100,
            breakpoints: vec![
                breakpoint(30, 1, Ttl::OneHour),
                breakpoint(70, 2, Ttl::FiveMinutes),
            ],
        };
        let first = input_usage(&prompt, &upstream);
        assert_eq!(
            first,
            InputUsage {
                input_tokens: 30,
                cache_creation_input_tokens: 70,
                cache_read_input_tokens: 0,
                ephemeral_5m_input_tokens: 40,
                ephemeral_1h_input_tokens: 30,
            }
        );
        let again = input_usage(&prompt, &upstream);
        assert_eq!(again.cache_read_input_tokens, 70);
        assert_eq!(again.cache_creation_input_tokens, 0);
        assert_eq!(again.input_tokens, 30);

        let longer = Prompt {
            total: 150,
            breakpoints: vec![
                breakpoint(30, 1, Ttl::OneHour),
                breakpoint(70, 2, Ttl::FiveMinutes),
                breakpoint(120, 3, Ttl::FiveMinutes),
            ],
        };
        let usage = input_usage(&longer, &upstream);
        assert_eq!(usage.cache_read_input_tokens, 70);
        assert_eq!(usage.cache_creation_input_tokens, 50);
        assert_eq!(usage.input_tokens, 30);
    }

    #[test]
    fn every_status_has_its_documented_type() {
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (402, "billing_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (422, "invalid_request_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (503, "api_error"),
            (504, "timeout_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(error_type(status), kind, "{status}");
        }
    }
}
