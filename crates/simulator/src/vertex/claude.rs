//! Claude on Vertex AI, written from Anthropic's "Claude on Vertex AI" and Google's "Use Claude"
//! pages: `POST /{upstream}/{v1|v1beta1}/projects/{project}/locations/{location}/publishers/
//! anthropic/models/{model}:rawPredict` (one message) and `:streamRawPredict` (server-sent
//! events in Anthropic's format), answered by the Anthropic module with Vertex's differences:
//!
//! - **Model** from the URL (e.g. `claude-sonnet-4-5@20250929`). The Messages body comes
//!   without `model`; one given anyway is ignored (the documentation only says it is not
//!   passed). The answer's `model` is the URL's, and message ids start `msg_vrtx_01`.
//! - **`anthropic_version`** in the body instead of the `anthropic-version` header: required
//!   (missing → 400 `invalid_request_error` "anthropic_version: Field required"), and must be
//!   `vertex-2023-10-16` or an Anthropic API version date (`YYYY-MM-DD`, which the pinned
//!   anthropic SDK's `AnthropicVertex` sends by default).
//! - **Streaming**: Vertex passes the body through to Claude, so the body's `stream` decides
//!   the format and both are needed — `"stream": true` with `:streamRawPredict`, no `stream`
//!   (or `false`) with `:rawPredict`, as Anthropic's SDK sends them; a body that disagrees with
//!   the method answers 400 `invalid_request_error`, so a client relying on either alone is
//!   caught.
//! - **Token counting**: `count-tokens:rawPredict` takes a count_tokens body with `model` in it
//!   (plus `anthropic_version`), as Anthropic's SDK sends it, and answers `{"input_tokens"}`.
//! - **Credentials**: a bearer token (see `crate::vertex`); no API key, no `x-api-key`.
//! - **Errors**: Anthropic's envelope for everything Claude decides; credentials and the status
//!   faults Google's front end answers (401, 403, 404, 429, 503, 504) in Google's.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::{check_token, VertexClaude};
use crate::anthropic::{self, Host};
use crate::control::{Sim, Upstream};
use crate::exchange;
use crate::gemini;

/// The RPC named in `rawPredict`'s credential errors.
pub const RAW_PREDICT_RPC: &str = "google.cloud.aiplatform.v1.PredictionService.RawPredict";
const STREAM_RAW_PREDICT_RPC: &str =
    "google.cloud.aiplatform.v1.PredictionService.StreamRawPredict";

/// The version Anthropic documents for Vertex AI.
const VERTEX_VERSION: &str = "vertex-2023-10-16";

/// The model name of Anthropic's token-counting endpoint on Vertex AI.
const COUNT_TOKENS_MODEL: &str = "count-tokens";

/// The RPC a request path calls, for credential errors.
pub fn rpc(path: &str) -> &'static str {
    if path.ends_with(":streamRawPredict") {
        STREAM_RAW_PREDICT_RPC
    } else {
        RAW_PREDICT_RPC
    }
}

/// `vertex-2023-10-16`, or an API version date `YYYY-MM-DD`.
fn accepted_version(version: &str) -> bool {
    let b = version.as_bytes();
    let date = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    version == VERTEX_VERSION || date
}

/// Checks and removes `anthropic_version`; `Err` is the message of the 400 to send.
fn take_version(obj: &mut serde_json::Map<String, Value>) -> Result<(), String> {
    match obj.remove("anthropic_version") {
        None | Some(Value::Null) => Err("anthropic_version: Field required".to_owned()),
        Some(Value::String(version)) if accepted_version(&version) => Ok(()),
        Some(Value::String(_)) => Err(format!(
            "anthropic_version: Input should be '{VERTEX_VERSION}'"
        )),
        Some(_) => Err("anthropic_version: Input should be a valid string".to_owned()),
    }
}

fn not_found(model: &str, method: &str) -> Response {
    gemini::error(
        StatusCode::NOT_FOUND,
        &format!(
            "Publisher model `publishers/anthropic/models/{model}` does not support method `{method}`; use rawPredict or streamRawPredict."
        ),
        Vec::new(),
    )
}

/// `POST /{upstream}/{v1|v1beta1}/projects/{project}/locations/{location}/publishers/anthropic/
/// models/{model}:{rawPredict|streamRawPredict}`.
pub async fn raw_predict(
    State(sim): State<Arc<Sim>>,
    Path((upstream, _project, _location, action)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    let (model, method) = action.split_once(':').unwrap_or((&action, ""));
    let stream = match method {
        "rawPredict" => false,
        "streamRawPredict" => true,
        _ => return not_found(model, method),
    };
    if model.is_empty() {
        return not_found(model, method);
    }
    let rpc = if stream {
        STREAM_RAW_PREDICT_RPC
    } else {
        RAW_PREDICT_RPC
    };
    let check = |parts: &Parts, up: &Upstream| check_token(parts, up, rpc);
    let admitted =
        match exchange::admit_checked::<VertexClaude>(&sim, &upstream, request, check).await {
            Ok(admitted) => admitted,
            Err(response) => return response,
        };
    let mut value = match anthropic::parse_body(&admitted.body) {
        Ok(value) => value,
        Err(message) => return anthropic::invalid_request(&message),
    };
    let Some(obj) = value.as_object_mut() else {
        return anthropic::invalid_request("The request body must be a JSON object.");
    };
    if let Err(message) = take_version(obj) {
        return anthropic::invalid_request(&message);
    }
    if model == COUNT_TOKENS_MODEL {
        if stream {
            return not_found(model, method);
        }
        return anthropic::count(&admitted, &value);
    }
    match obj.get("stream") {
        Some(Value::Bool(true)) if !stream => {
            return anthropic::invalid_request(
                "stream: rawPredict answers one message; send `\"stream\": true` bodies to streamRawPredict",
            )
        }
        None | Some(Value::Null) | Some(Value::Bool(false)) if stream => {
            return anthropic::invalid_request(
                "stream: streamRawPredict needs `\"stream\": true` in the body",
            )
        }
        _ => {}
    }
    obj.insert("model".to_owned(), Value::String(model.to_owned()));
    anthropic::create(&admitted, &value, Host::Vertex).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions() {
        assert!(accepted_version("vertex-2023-10-16"));
        assert!(accepted_version("2023-06-01"));
        assert!(!accepted_version("bedrock-2023-05-31"));
        assert!(!accepted_version("2023-6-01"));
        let mut missing = json!({}).as_object().cloned().unwrap();
        assert_eq!(
            take_version(&mut missing).unwrap_err(),
            "anthropic_version: Field required"
        );
        let mut ok = json!({"anthropic_version": "vertex-2023-10-16", "x": 1})
            .as_object()
            .cloned()
            .unwrap();
        assert!(take_version(&mut ok).is_ok());
        assert!(!ok.contains_key("anthropic_version"));
    }

    #[test]
    fn rpc_follows_the_method() {
        assert_eq!(
            rpc("/v/v1/projects/p/locations/l/publishers/anthropic/models/m:streamRawPredict"),
            STREAM_RAW_PREDICT_RPC
        );
        assert_eq!(rpc("/v/v1/.../m:rawPredict"), RAW_PREDICT_RPC);
    }
}
