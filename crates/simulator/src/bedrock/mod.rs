//! The AWS Bedrock Runtime protocol, written from the Bedrock API reference (Converse,
//! ConverseStream, InvokeModel), its model parameter pages and AWS's Signature Version 4 and
//! event stream documentation:
//! - `POST /{upstream}/model/{modelId}/converse`: the Converse API (JSON);
//! - `POST /{upstream}/model/{modelId}/converse-stream`: the same answer as an
//!   `application/vnd.amazon.eventstream` of binary messages (see `stream`, `eventstream`);
//! - `POST /{upstream}/model/{modelId}/invoke`: InvokeModel for the Titan and Cohere embedding
//!   models (see `embed`).
//!
//! A model id (URL-encoded on the wire) may be a foundation model id, a cross-region inference
//! profile id (`us.`, `eu.`, `apac.`, `global.` ...) or an ARN; any well-formed id is served,
//! and anything else gets "The provided model identifier is invalid.". Credentials are a Bedrock
//! API key (bearer) or a SigV4 signature checked against the simulator's test credential,
//! access key id `AKIDSWITCHYARDTEST` with secret `switchyard/test/secret/key/EXAMPLE` (see
//! `auth`); refused requests draw no fault.
//!
//! What the simulated model does (as the other protocols' models do):
//! - **Text**: `output_tokens` (behaviour) vocabulary words, cut at `inferenceConfig.maxTokens`
//!   (`stopReason: max_tokens`) or before the earliest `stopSequences` match
//!   (`stop_sequence`; the sequence itself is readable through
//!   `additionalModelResponseFieldPaths: ["/stop_sequence"]`, as with Claude). With
//!   `outputConfig.textFormat` (`json_schema`) the text is a JSON document valid for the
//!   schema, never cut.
//! - **Tools**: `toolSpec` tools whose names the last user turn's text mentions are called, in
//!   `tools` order, as parallel `toolUse` blocks (`stopReason: tool_use`, ids `tooluse_` + 22
//!   characters) with inputs generated from `inputSchema.json`; `toolChoice` `any` calls the
//!   mentioned tools or else the first, `tool` calls the named one. A last user turn holding
//!   `toolResult` blocks is answered with text (unless `toolChoice` forces a tool).
//! - **Reasoning**: with `additionalModelRequestFields.thinking` enabled (or `adaptive`), or
//!   Nova's `reasoningConfig` enabled, the answer opens with a `reasoningContent` block of
//!   `output_tokens` words (at most `budget_tokens`) and a deterministic signature; when the
//!   last user turn's text contains `redact`, a `redactedContent` block takes its place.
//!   Reasoning counts in `outputTokens`.
//! - **Content filter**: `unsafe-answer` in the last user turn ends the answer empty with
//!   `stopReason: content_filtered`; with `guardrailConfig`, `guardrail_intervened` and the
//!   guardrail's blocked message as the text.
//! - **Stream exceptions**: `stream-exception:NAME` in the last user turn, NAME one of
//!   `throttlingException`, `modelStreamErrorException`, `internalServerException`,
//!   `validationException`, `serviceUnavailableException`, makes ConverseStream send
//!   `messageStart` and the first delta, then that exception message, and end; Converse answers
//!   the matching HTTP error instead (429 `ThrottlingException`, 424 `ModelErrorException`, 500,
//!   400, 503).
//! - **Prompt caching**: each `cachePoint` block (in `system`, `toolConfig.tools` or a
//!   message) ends a cacheable prefix, for any model and without a minimum size. The longest
//!   prefix this upstream has seen before for the same model is reported as
//!   `cacheReadInputTokens`, the rest up to the last cache point as `cacheWriteInputTokens`
//!   (split by `ttl` in `cacheDetails`), and only what follows the last cache point as
//!   `inputTokens`, as Bedrock reports Claude's usage: `inputTokens` excludes cached tokens and
//!   `totalTokens` is all four counts added. Entries do not expire; `DELETE /_sim/{upstream}`
//!   empties the cache.
//! - **Input tokens** (the fixed tokenizer, as the Anthropic module counts them): each tool's
//!   `toolSpec` JSON; system text; per message 3 plus its role plus its blocks (text; 85 per
//!   image; a document's text or 1000; 1000 per video or audio; a `toolUse`'s name and input
//!   JSON; a `toolResult`'s text and JSON; earlier reasoning counts nothing); 3 more priming
//!   the reply. A prompt over 200000 tokens is refused: 400 "Input is too long for requested
//!   model.".
//!
//! Errors are Bedrock's: the status, `x-amzn-ErrorType` naming the exception and where it is
//! declared (`ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/`;
//! `com.amazon.coral.service` for credential errors), `x-amzn-RequestId`, and
//! `{"message": ...}` (the member name Bedrock's error shapes use; botocore reads the code from
//! the header). Faults from the control API apply as for every protocol; a status fault
//! answers with the exception Bedrock uses for that status (400
//! `ValidationException`, 403 `AccessDeniedException`, 404 `ResourceNotFoundException`, 408
//! `ModelTimeoutException`, 424 `ModelErrorException`, 429 `ThrottlingException`, 503
//! `ServiceUnavailableException`, other 5xx `InternalServerException`); a scripted message of
//! the form `Name: text` picks another exception, e.g. `ModelNotReadyException: warming up`
//! on a 429 or `ServiceQuotaExceededException: ...` on a 400.
//!
//! Left out: InvokeModel for chat models, InvokeModelWithResponseStream, CountTokens,
//! ApplyGuardrail, async invocation, guardrail traces, citations, prompt resources
//! (`promptVariables` is accepted and ignored) and per-model limits (context sizes other than
//! 200000, image counts, `maxTokens` ceilings).

mod answer;
mod auth;
mod embed;
mod eventstream;
mod request;
mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::control::Sim;
use crate::exchange::{self, json_body, pace_whole, stream_response, Wire};
use crate::generate::{hex, request_hash};
use answer::{Extras, Usage};
use request::{ConverseRequest, Invalid};

/// The largest prompt any simulated model takes, in tokens.
const CONTEXT_TOKENS: u64 = 200_000;

/// Where Bedrock's own exceptions are declared, as `x-amzn-ErrorType` names it.
const BEDROCK_NAMESPACE: &str = "http://internal.amazon.com/coral/com.amazon.bedrock/";
/// Where the credential exceptions every AWS service shares are declared.
const CORAL_NAMESPACE: &str = "http://internal.amazon.com/coral/com.amazon.coral.service/";

/// Top-level keys that do not change what a request generates (`maxTokens` and
/// `stopSequences` inside `inferenceConfig` are left out separately: they only cut it short).
const NON_SEMANTIC_KEYS: &[&str] = &[
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "additionalModelResponseFieldPaths",
    "guardrailConfig",
];

/// Bedrock's exceptions with their default messages.
const EXCEPTIONS: &[(&str, &str)] = &[
    ("ValidationException", "Invalid request (simulated)."),
    (
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    (
        "ResourceNotFoundException",
        "The specified resource could not be found (simulated).",
    ),
    (
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
    ),
    (
        "ModelTimeoutException",
        "Model has timed out in processing the request. Try your request again.",
    ),
    (
        "ModelErrorException",
        "The model encountered an error processing the request (simulated).",
    ),
    (
        "ModelNotReadyException",
        "Model is not ready for inference. Wait and try your request again.",
    ),
    (
        "ServiceQuotaExceededException",
        "Your request exceeds the service quota for your account.",
    ),
    (
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    (
        "ServiceUnavailableException",
        "Bedrock is unable to process your request.",
    ),
    (
        "ModelStreamErrorException",
        "The model stream encountered an error (simulated).",
    ),
];

/// The stream exceptions `stream-exception:NAME` can raise: event name, then the HTTP status
/// and exception Converse answers instead.
const STREAM_EXCEPTIONS: &[(&str, u16, &str)] = &[
    ("throttlingException", 429, "ThrottlingException"),
    ("modelStreamErrorException", 424, "ModelErrorException"),
    ("internalServerException", 500, "InternalServerException"),
    ("validationException", 400, "ValidationException"),
    (
        "serviceUnavailableException",
        503,
        "ServiceUnavailableException",
    ),
];
const STREAM_EXCEPTION_TRIGGER: &str = "stream-exception:";

/// The Bedrock wire: bearer or SigV4 credentials, Bedrock's error envelope, `x-amzn-RequestId`,
/// binary event streams.
pub struct Bedrock;

impl Wire for Bedrock {
    const REQUEST_ID_HEADER: &'static str = "x-amzn-requestid";
    const MALFORMED_EVENT: &'static [u8] = &eventstream::MALFORMED;
    const STREAM_CONTENT_TYPE: &'static str = "application/vnd.amazon.eventstream";

    /// Only what can be told without the body: the signature itself is checked in
    /// [`Wire::reject_signed`].
    fn reject_headers(headers: &HeaderMap) -> Option<Response> {
        let present = headers.contains_key(header::AUTHORIZATION);
        (!present).then(|| {
            error(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                CORAL_NAMESPACE,
                "Authorization header is missing",
            )
        })
    }

    fn reject_signed(parts: &Parts, body: &[u8]) -> Option<Response> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        auth::check(parts, body, now).err().map(|refused| {
            error(
                StatusCode::FORBIDDEN,
                refused.name,
                CORAL_NAMESPACE,
                &refused.message,
            )
        })
    }

    fn too_large() -> Response {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ValidationException",
            BEDROCK_NAMESPACE,
            "The request body is too large.",
        )
    }

    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
        let (name, message) = fault_exception(status, message);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(status, name, BEDROCK_NAMESPACE, &message);
        if let Some(seconds) = retry_after_s {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(seconds.ceil() as u64),
            );
        }
        response
    }
}

/// The exception and message of a status fault (see the module docs).
fn fault_exception(status: u16, message: Option<&str>) -> (&'static str, String) {
    let named = message.and_then(|m| {
        let (name, text) = m.split_once(':')?;
        let (name, _) = EXCEPTIONS.iter().find(|(n, _)| *n == name.trim())?;
        Some((*name, text.trim()))
    });
    let name = match named {
        Some((name, _)) => name,
        None => match status {
            401 | 403 => "AccessDeniedException",
            404 => "ResourceNotFoundException",
            408 => "ModelTimeoutException",
            424 => "ModelErrorException",
            429 => "ThrottlingException",
            503 => "ServiceUnavailableException",
            500..=599 => "InternalServerException",
            _ => "ValidationException",
        },
    };
    let default = default_message(name);
    let text = match (named, message) {
        (Some((_, text)), _) if !text.is_empty() => text,
        (Some(_), _) | (None, None) => default,
        (None, Some(message)) => message,
    };
    (name, text.to_owned())
}

/// The message an exception carries when nothing more specific is known.
fn default_message(name: &str) -> &'static str {
    EXCEPTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, m)| m)
}

/// `{"message": ...}` with `x-amzn-ErrorType` and `x-amzn-RequestId`.
fn error(status: StatusCode, name: &str, namespace: &str, message: &str) -> Response {
    let body = json!({"message": message}).to_string();
    let error_type = HeaderValue::from_str(&format!("{name}:{namespace}"))
        .unwrap_or_else(|_| HeaderValue::from_static("InternalServerException"));
    let request_id = HeaderValue::from_str(&uuid(&[0; 32]))
        .unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (HeaderName::from_static("x-amzn-errortype"), error_type),
            (HeaderName::from_static("x-amzn-requestid"), request_id),
        ],
        body,
    )
        .into_response()
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            BEDROCK_NAMESPACE,
            &self.0,
        )
    }
}

/// A UUID-shaped id from a prefix of `hash` and a process-wide counter, so ids stay distinct.
pub fn uuid(hash: &[u8; 32]) -> String {
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

/// Checks that `id` looks like a model id, inference profile id or Bedrock ARN.
pub fn check_model_id(id: &str) -> Result<(), Invalid> {
    let chars_ok = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-:._/".contains(&b));
    let arn_ok = !id.starts_with("arn:")
        || (id.starts_with("arn:aws") && (id.contains(":bedrock:") || id.contains(":sagemaker:")));
    if (1..=2048).contains(&id.len()) && chars_ok && arn_ok {
        Ok(())
    } else {
        Err(Invalid(
            "The provided model identifier is invalid.".to_owned(),
        ))
    }
}

/// The foundation model behind an id: an ARN's resource name, without a cross-region
/// inference profile's geography prefix.
pub fn base_model(id: &str) -> &str {
    let id = id.rsplit('/').next().unwrap_or(id);
    for prefix in [
        "us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global.",
    ] {
        if let Some(rest) = id.strip_prefix(prefix) {
            if rest.contains('.') {
                return rest;
            }
        }
    }
    id
}

/// The simulator's Bedrock Runtime routes (state: the simulator).
pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/{upstream}/model/{model_id}/converse", post(converse))
        .route(
            "/{upstream}/model/{model_id}/converse-stream",
            post(converse_stream),
        )
        .route("/{upstream}/model/{model_id}/invoke", post(embed::invoke))
}

/// `POST /{upstream}/model/{modelId}/converse`.
async fn converse(
    State(sim): State<Arc<Sim>>,
    Path((name, model_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    respond(&sim, &name, &model_id, request, false).await
}

/// `POST /{upstream}/model/{modelId}/converse-stream`.
async fn converse_stream(
    State(sim): State<Arc<Sim>>,
    Path((name, model_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    respond(&sim, &name, &model_id, request, true).await
}

async fn respond(
    sim: &Sim,
    name: &str,
    model_id: &str,
    request: Request,
    stream: bool,
) -> Response {
    let started = Instant::now();
    let admitted = match exchange::admit::<Bedrock>(sim, name, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Err(invalid) = check_model_id(model_id) {
        return invalid.into_response();
    }
    let value: Value = match serde_json::from_slice(&admitted.body) {
        Ok(value) => value,
        Err(e) => {
            return Invalid(format!(
                "Malformed input request: #: the body is not valid JSON ({e}), please reformat your input and try again."
            ))
            .into_response()
        }
    };
    let parsed = match ConverseRequest::parse(&value) {
        Ok(parsed) => parsed,
        Err(invalid) => return invalid.into_response(),
    };
    let prompt = parsed.prompt(model_id);
    if prompt.total > CONTEXT_TOKENS {
        return Invalid("Input is too long for requested model.".to_owned()).into_response();
    }
    admitted.upstream.note_model(model_id);

    let turn = answer::last_user_turn(parsed.messages);
    let exception = stream_exception(&turn.text);
    if let (Some((_, status, exception_name)), false) = (exception, stream) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = default_message(exception_name);
        return error(status, exception_name, BEDROCK_NAMESPACE, message);
    }
    let hash = answer_hash(&value, model_id);
    let answer = answer::generate(&parsed, &turn, &admitted.behaviour, &hash);
    let usage = Usage::new(&prompt, &admitted.upstream, answer.output_tokens);
    let extras = Extras {
        additional: answer::additional_fields(&parsed.response_paths, &answer, &usage),
        performance: parsed.performance.cloned(),
        service_tier: parsed.service_tier.cloned(),
    };

    if stream {
        let exception = exception.map(|(event, _, _)| {
            // The event name, capitalised, is the exception's own name.
            let mut name = event.to_owned();
            name[..1].make_ascii_uppercase();
            stream::Exception {
                name: event,
                message: default_message(&name).to_owned(),
            }
        });
        let events = stream::ConverseStream::new(answer, usage, extras, exception, started);
        return stream_response::<Bedrock>(events, &admitted.behaviour, admitted.body_fault);
    }
    pace_whole(&admitted.behaviour, answer.output_tokens).await;
    let latency = started.elapsed().as_millis() as u64;
    let body = answer::render(&answer, &usage, &extras, latency);
    json_body::<Bedrock>(body.to_string().into_bytes(), admitted.body_fault)
}

/// The stream exception the last user turn asks for, if any.
fn stream_exception(text: &str) -> Option<(&'static str, u16, &'static str)> {
    let at = text.find(STREAM_EXCEPTION_TRIGGER)? + STREAM_EXCEPTION_TRIGGER.len();
    let name: String = text[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    STREAM_EXCEPTIONS
        .iter()
        .find(|(event, _, _)| *event == name)
        .copied()
}

/// The seed of the answer: the body and the model, without what only cuts the answer short.
fn answer_hash(value: &Value, model_id: &str) -> [u8; 32] {
    let mut value = value.clone();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("modelId".to_owned(), Value::String(model_id.to_owned()));
        if let Some(Value::Object(inference)) = obj.get_mut("inferenceConfig") {
            inference.remove("maxTokens");
            inference.remove("stopSequences");
            if inference.is_empty() {
                obj.remove("inferenceConfig");
            }
        }
    }
    request_hash(&value, NON_SEMANTIC_KEYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_profiles_and_arns() {
        for id in [
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-20250514-v1:0",
        ] {
            assert_eq!(check_model_id(id), Ok(()), "{id}");
        }
        assert!(check_model_id("not a model").is_err());
        assert!(check_model_id("arn:aws:s3:::bucket").is_err());
        assert_eq!(
            base_model("us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            "anthropic.claude-3-5-haiku-20241022-v1:0"
        );
        assert_eq!(
            base_model("arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"),
            "amazon.titan-embed-text-v2:0"
        );
        assert_eq!(
            base_model("global.amazon.nova-lite-v1:0"),
            "amazon.nova-lite-v1:0"
        );
    }

    #[test]
    fn status_faults_map_to_exceptions() {
        assert_eq!(fault_exception(429, None).0, "ThrottlingException");
        assert_eq!(fault_exception(503, None).0, "ServiceUnavailableException");
        assert_eq!(fault_exception(502, None).0, "InternalServerException");
        assert_eq!(fault_exception(422, None).0, "ValidationException");
        assert_eq!(
            fault_exception(429, Some("ModelNotReadyException: warming up")),
            ("ModelNotReadyException", "warming up".to_owned())
        );
        assert_eq!(
            fault_exception(400, Some("just text: with a colon")),
            ("ValidationException", "just text: with a colon".to_owned())
        );
    }

    #[test]
    fn stream_exception_trigger() {
        assert_eq!(
            stream_exception("please stream-exception:throttlingException now"),
            Some(("throttlingException", 429, "ThrottlingException"))
        );
        assert_eq!(stream_exception("stream-exception:nope"), None);
        assert_eq!(stream_exception("hello"), None);
    }
}
