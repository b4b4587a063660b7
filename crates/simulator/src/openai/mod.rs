//! The OpenAI protocol: `/v1/chat/completions`, `/v1/embeddings` and `/v1/models`, with
//! OpenAI's own error envelope, auth rule and the way each fault shows on this wire; and Azure
//! OpenAI's deployment routes, served by the same code with Azure's differences ([`azure`]).
//! Vertex AI's OpenAI-compatible chat endpoint answers through [`respond_chat`] too (see
//! `crate::vertex`).

pub mod azure;
mod chat;
mod embeddings;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::control::Sim;
use crate::exchange::{self, Admitted, BodyFault, Wire};

pub use chat::chat_completions;
pub(crate) use chat::respond as respond_chat;
pub use embeddings::embeddings;

/// `created` for entries of the models list (the simulator has no real release dates).
const MODEL_CREATED: u64 = 1_700_000_000;

/// OpenAI's error envelope: `{"error":{"message","type","param","code"}}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// An OpenAI-format error response; the `type` follows the status as OpenAI's does.
fn error(status: StatusCode, message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let kind = match status.as_u16() {
        429 => "requests",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    let body = ErrorBody {
        error: ErrorDetail {
            message,
            kind,
            param,
            code,
        },
    };
    json_response(status, &body)
}

/// A 400 `invalid_request_error` naming the offending parameter (small, unlike a `Response`,
/// so validation code can pass it around in `Result`s).
#[derive(Debug)]
struct Invalid {
    message: String,
    param: Option<String>,
    code: Option<&'static str>,
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        error(
            StatusCode::BAD_REQUEST,
            &self.message,
            self.param.as_deref(),
            self.code,
        )
    }
}

fn invalid(message: impl Into<String>, param: Option<&str>, code: Option<&'static str>) -> Invalid {
    Invalid {
        message: message.into(),
        param: param.map(str::to_owned),
        code,
    }
}

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The response for a `{"status": ...}` fault, worded like OpenAI's own errors.
fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
    let (default, code) = match status {
        400 => ("Invalid request (simulated).", None),
        401 => (
            "Incorrect API key provided: sk-sim****. You can find your API key at https://platform.openai.com/account/api-keys.",
            Some("invalid_api_key"),
        ),
        403 => ("You are not allowed to sample from this model.", None),
        404 => ("The model does not exist or you do not have access to it.", Some("model_not_found")),
        429 => (
            "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again later.",
            Some("rate_limit_exceeded"),
        ),
        500 => ("The server had an error while processing your request. Sorry about that!", None),
        502 => ("Bad gateway.", None),
        503 => (
            "That model is currently overloaded with other requests. You can retry your request, or contact us through our help center at help.openai.com if the error persists.",
            None,
        ),
        504 => ("Gateway timeout.", None),
        _ => ("The request failed (simulated fault).", None),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = error(status, message.unwrap_or(default), None, code);
    if let Some(seconds) = retry_after_s {
        let headers = response.headers_mut();
        // Retry-After takes whole seconds; retry-after-ms (read by OpenAI's SDKs) keeps precision.
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(seconds.ceil() as u64),
        );
        headers.insert(
            "retry-after-ms",
            HeaderValue::from((seconds * 1000.0).round() as u64),
        );
    }
    response
}

/// The OpenAI wire: bearer-token auth, OpenAI's error envelope, `x-request-id`.
pub struct OpenAi;

impl Wire for OpenAi {
    const REQUEST_ID_HEADER: &'static str = "x-request-id";
    const MALFORMED_EVENT: &'static [u8] = b"data: {not json\n\n";

    fn reject_headers(headers: &HeaderMap) -> Option<Response> {
        if has_bearer_token(headers) {
            return None;
        }
        Some(error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            None,
        ))
    }

    fn too_large() -> Response {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large or unreadable.",
            None,
            None,
        )
    }

    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
        fault_error(status, retry_after_s, message)
    }
}

/// OpenAI's answer to a body that is not JSON.
fn not_json() -> Response {
    invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        None,
        None,
    )
    .into_response()
}

/// Records the request, checks the API key, and applies the fault it draws (if any); an `Err`
/// is the response to send instead.
async fn admit(sim: &Sim, name: &str, request: Request) -> Result<Admitted, Response> {
    exchange::admit::<OpenAi>(sim, name, request).await
}

/// A 200 JSON answer with `x-request-id`, or its spoiled version under a body fault.
fn json_body(bytes: Vec<u8>, fault: Option<BodyFault>) -> Response {
    exchange::json_body::<OpenAi>(bytes, fault)
}

/// `Authorization: Bearer <non-empty>`; any key is accepted.
fn has_bearer_token(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, key)| {
            scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty()
        })
}

/// Seconds since the epoch, for `created`.
fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: Vec<ModelEntry>,
}

#[derive(Serialize)]
struct ModelEntry {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

/// `GET /{upstream}/v1/models`: the models requested from this upstream so far.
pub async fn models(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let admitted = match admit(&sim, &name, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let data = admitted
        .upstream
        .models()
        .into_iter()
        .map(|id| ModelEntry {
            id,
            object: "model",
            created: MODEL_CREATED,
            owned_by: "system",
        })
        .collect();
    match serde_json::to_vec(&ModelList {
        object: "list",
        data,
    }) {
        Ok(bytes) => json_body(bytes, admitted.body_fault),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Any other path, answered the way OpenAI answers unknown URLs.
pub async fn unknown_route(request: Request) -> Response {
    let message = format!(
        "Invalid URL ({} {})",
        request.method(),
        request.uri().path()
    );
    error(StatusCode::NOT_FOUND, &message, None, None)
}
