//! The OpenAI protocol: `/v1/chat/completions`, `/v1/embeddings` and `/v1/models`, with
//! OpenAI's own error envelope, auth rule and the way each fault shows on this wire.

mod chat;
mod embeddings;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::connection::ConnHandle;
use crate::control::{Behaviour, Fault, Recorded, Sim, Upstream};

pub use chat::chat_completions;
pub use embeddings::embeddings;

/// Largest request body read; real APIs reject far smaller ones, this only bounds memory.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// `created` for entries of the models list (the simulator has no real release dates).
const MODEL_CREATED: u64 = 1_700_000_000;

/// How long the handler of a reset request lingers; the connection task drops it sooner.
const RESET_LINGER: Duration = Duration::from_secs(30);

/// How long a cut response waits after its last bytes, so they are flushed before the break.
const CUT_FLUSH: Duration = Duration::from_millis(10);

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

/// How a fault spoils a response body that is otherwise produced normally.
#[derive(Debug, Clone, Copy)]
enum BodyFault {
    /// Stream this many events (or half the body), then break the connection.
    Cut(u64),
    /// Send something that is not JSON.
    Malformed,
}

/// A data-plane request past recording, auth and the connection-level faults.
struct Admitted {
    upstream: Arc<Upstream>,
    behaviour: Behaviour,
    body: Bytes,
    body_fault: Option<BodyFault>,
}

impl Admitted {
    /// The body as JSON; `None` when it is not (answer with [`not_json`]).
    fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
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
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large or unreadable.",
            None,
            None,
        )
    })?;
    let upstream = sim.upstream(name);
    let authorised = has_bearer_token(&parts.headers);
    let recorded = Recorded {
        method: parts.method.clone(),
        path: parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str())
            .to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    let (behaviour, fault) = upstream.admit(recorded, authorised);
    if !authorised {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            None,
            None,
        ));
    }
    let body_fault = match fault {
        None => None,
        Some(Fault::Status {
            status,
            retry_after_s,
            message,
        }) => return Err(fault_error(status, retry_after_s, message.as_deref())),
        Some(Fault::Reset) => return Err(reset(parts.extensions.get::<ConnHandle>()).await),
        Some(Fault::Stall(duration)) => {
            tokio::time::sleep(duration).await;
            None
        }
        Some(Fault::CutAfterChunks(n)) => Some(BodyFault::Cut(n)),
        Some(Fault::Malformed) => Some(BodyFault::Malformed),
    };
    Ok(Admitted {
        upstream,
        behaviour,
        body,
        body_fault,
    })
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

/// Kills the connection the request came on; the returned response is only a fallback.
async fn reset(conn: Option<&ConnHandle>) -> Response {
    match conn {
        Some(conn) => {
            conn.abort();
            // The connection task drops this future as soon as it sees the abort.
            tokio::time::sleep(RESET_LINGER).await;
            broken_response()
        }
        None => broken_response(),
    }
}

/// A response whose body fails at once, so the client sees a broken exchange.
fn broken_response() -> Response {
    let body = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "simulated reset",
        ))
    });
    Response::new(Body::from_stream(body))
}

/// A 200 JSON answer, or its spoiled version under a body fault.
fn json_body(bytes: Vec<u8>, fault: Option<BodyFault>) -> Response {
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    match fault {
        None => (StatusCode::OK, content_type, request_id(), bytes).into_response(),
        Some(BodyFault::Malformed) => (StatusCode::OK, content_type, "{not json").into_response(),
        Some(BodyFault::Cut(_)) => {
            let full = bytes.len();
            let mut bytes = bytes;
            bytes.truncate(full / 2);
            let prefix = Bytes::from(bytes);
            let body = futures_util::stream::unfold(Some(prefix), |state| async move {
                match state {
                    Some(prefix) => Some((Ok::<Bytes, io::Error>(prefix), None)),
                    None => {
                        tokio::time::sleep(CUT_FLUSH).await;
                        Some((
                            Err(io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                "simulated cut",
                            )),
                            None,
                        ))
                    }
                }
            });
            // The full length is announced, so the client knows the body was cut short.
            let length = [(header::CONTENT_LENGTH, HeaderValue::from(full))];
            (
                StatusCode::OK,
                content_type,
                length,
                Body::from_stream(body),
            )
                .into_response()
        }
    }
}

/// An `x-request-id` header, unique within the process.
fn request_id() -> [(header::HeaderName, HeaderValue); 1] {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("req_sim{:016x}", NEXT.fetch_add(1, Ordering::Relaxed));
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("req_sim"));
    [(header::HeaderName::from_static("x-request-id"), value)]
}

/// Seconds since the epoch, for `created`.
fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Waits `ttft` plus `tokens` paced at the behaviour's rate (non-streaming answers).
async fn pace_whole(behaviour: &Behaviour, tokens: u64) {
    let mut wait = Duration::from_millis(behaviour.ttft_ms);
    if let Some(interval) = behaviour.token_interval() {
        wait += interval.saturating_mul(u32::try_from(tokens).unwrap_or(u32::MAX));
    }
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
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
