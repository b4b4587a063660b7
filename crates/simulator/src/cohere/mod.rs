//! The Cohere protocol: `POST /{upstream}/v2/chat` (streaming and not) and
//! `POST /{upstream}/v2/embed`, written from Cohere's v2 Chat and Embed API documentation,
//! with Cohere's `{"message"}` error body and its typed server-sent events.
//!
//! What the simulated model does:
//! - **Text**: `output_tokens` (behaviour) vocabulary words in one `text` content block, cut at
//!   `max_tokens` (`finish_reason: "MAX_TOKENS"`) or before the earliest `stop_sequences` match
//!   (`"STOP_SEQUENCE"`); otherwise `"COMPLETE"`. `response_format` `json_object` answers with
//!   a JSON document, valid for its `json_schema` when one is given (never cut); as documented,
//!   it cannot be combined with `tools` or `documents`.
//! - **Tools**: function tools whose names the last message (a user message) mentions are
//!   called, in `tools` order, all of them (Cohere calls in parallel), after a `tool_plan`
//!   sentence naming them (`finish_reason: "TOOL_CALL"`); `tool_choice` `REQUIRED` calls the
//!   mentioned tools or else the first one, `NONE` calls nothing. Call ids are
//!   `{name}_{12 characters}`. When the conversation ends with `tool` messages the model
//!   answers with text (unless `REQUIRED`).
//! - **Citations**: an answer after tool results cites them, and one to a request with
//!   `documents` cites those: citation `k` covers word `k` of the text (`TEXT_CONTENT`) with
//!   source `k`; surplus sources join the last citation. A tool result's sources are its
//!   content items — a JSON object (or each object of a JSON array) is the `tool_output`,
//!   other text becomes `{"text": ...}`; ids are `{tool_call_id}:{index}`. Documents are
//!   `document` sources with their `id` (default `doc:{index}`). `citation_options.mode`
//!   `OFF` or `DISABLED` turns citations off; JSON answers carry none.
//! - **Thinking**: `thinking: {"type": "enabled"}` opens the content with a `thinking` block of
//!   `output_tokens` words (at most `token_budget`, and `max_tokens` counts it).
//! - **Usage**: `billed_units` and `tokens`, both with `input_tokens` and `output_tokens`.
//!   Billed input is the prompt's own tokens by the fixed tokenizer: every message's text
//!   (text and thinking parts, tool plans, tool calls' names and arguments, tool results), 85 per
//!   image, the `tools` JSON and each document (its text, or its JSON); `tokens.input_tokens`
//!   adds the chat template Cohere wraps around it: 3 per message and 3 priming the reply.
//!   Output tokens (thinking, text or the plan and each call's name and arguments) are the same
//!   in both.
//! - **Streaming**: `event: {type}` / `data: {json}` frames in the documented order —
//!   `message-start`; per content block `content-start`, one `content-delta` per token,
//!   (for the text block) `citation-start`/`citation-end` pairs, `content-end`; then
//!   `tool-plan-delta`s and per call `tool-call-start`, `tool-call-delta`s, `tool-call-end`;
//!   `message-end` with `finish_reason` and `usage`; then `data: [DONE]`.
//! - **Embed**: see the `embed` module.
//!
//! Credentials are `Authorization: Bearer <key>`, any non-empty key; without one the answer is
//! 401 `{"message": "no api key supplied"}`. Invalid requests get 400 `{"message": "invalid
//! request: ..."}` naming the field (`messages[1].tool_call_id`); unknown top-level fields are
//! ignored. Faults from the control API apply as for every protocol; a status fault answers
//! `{"message"}` (with `retry-after` when scripted). Every answer carries `x-debug-trace-id`.

mod answer;
mod embed;
mod request;
mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::control::Sim;
use crate::exchange::{
    self, json_body, new_request_id, pace_whole, request_id_header, stream_response, Wire,
};
use crate::generate::{hex, request_hash};

pub use embed::embed;

/// Keys that do not change what a request generates: streamed or not, the same answer, and
/// `max_tokens` or `stop_sequences` only cut it short.
const NON_SEMANTIC_KEYS: &[&str] = &["stream", "max_tokens", "stop_sequences", "priority"];

/// The Cohere wire: bearer credentials, `{"message"}` errors, `x-debug-trace-id`, typed SSE.
pub struct Cohere;

impl Wire for Cohere {
    const REQUEST_ID_HEADER: &'static str = "x-debug-trace-id";
    const MALFORMED_EVENT: &'static [u8] = b"event: message-start\ndata: {not json\n\n";

    fn reject_headers(headers: &HeaderMap) -> Option<Response> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, key)| {
                scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty()
            });
        (!bearer).then(|| error(StatusCode::UNAUTHORIZED, "no api key supplied"))
    }

    fn too_large() -> Response {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid request: the request body is too large",
        )
    }

    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
        let default = match status {
            400 => "invalid request: simulated fault",
            401 => "invalid api token",
            402 => "billing limit reached: add or update your payment method to continue",
            403 => "forbidden: this key cannot use the requested resource",
            404 => "model not found",
            422 => "unprocessable entity (simulated)",
            429 => "too many requests: you are past the rate limit for this API key, please retry later",
            498 => "invalid token",
            499 => "request cancelled by the client",
            500 => "internal server error, this has been reported to our developers",
            503 => "service unavailable, please retry later",
            504 => "gateway timeout",
            _ => "the request failed (simulated fault)",
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

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
}

/// `{"message": ...}` with a trace id.
fn error(status: StatusCode, message: &str) -> Response {
    match serde_json::to_vec(&ErrorBody { message }) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            request_id_header::<Cohere>(&new_request_id()),
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A 400 whose message names the field to fix, as Cohere's do.
#[derive(Debug)]
struct Invalid(String);

impl Invalid {
    fn new(problem: impl std::fmt::Display) -> Self {
        Invalid(format!("invalid request: {problem}"))
    }
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, &self.0)
    }
}

/// The request body as JSON.
fn body_json(body: &[u8]) -> Result<serde_json::Value, Invalid> {
    serde_json::from_slice(body)
        .map_err(|e| Invalid::new(format_args!("the body is not valid JSON: {e}")))
}

/// A UUID-shaped id from a prefix of the request hash and a process-wide counter, so a
/// replayed request still gets a distinct id.
fn uuid(hash: &[u8; 32]) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let h = hex(&hash[..9]);
    format!(
        "{}-{}-4{}-a{}-{:012x}",
        &h[0..8],
        &h[8..12],
        &h[12..15],
        &h[15..18],
        NEXT.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff
    )
}

/// `POST /{upstream}/v2/chat`.
pub async fn chat(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let admitted = match exchange::admit::<Cohere>(&sim, &name, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let value = match body_json(&admitted.body) {
        Ok(value) => value,
        Err(invalid) => return invalid.into_response(),
    };
    let parsed = match request::ChatRequest::parse(&value) {
        Ok(parsed) => parsed,
        Err(invalid) => return invalid.into_response(),
    };
    admitted.upstream.note_model(parsed.model);

    let hash = request_hash(&value, NON_SEMANTIC_KEYS);
    let answer = answer::generate(&parsed, &admitted.behaviour, &hash);
    let usage = answer::Usage::new(parsed.prompt_tokens(), answer.output_tokens);
    let id = uuid(&hash);

    if parsed.stream {
        let events = stream::ChatStream::new(id, answer, usage);
        return stream_response::<Cohere>(events, &admitted.behaviour, admitted.body_fault);
    }
    pace_whole(&admitted.behaviour, answer.output_tokens).await;
    match serde_json::to_vec(&answer::render(&id, &answer, &usage)) {
        Ok(bytes) => json_body::<Cohere>(bytes, admitted.body_fault),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_uuids_and_stay_distinct() {
        let a = uuid(&[7; 32]);
        let b = uuid(&[7; 32]);
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
    }
}
