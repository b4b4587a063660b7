//! The protocol-neutral half of answering a data-plane request: reading and recording it,
//! drawing its fault, the ways a fault spoils an answer (reset, stall, cut, malformed), and
//! the pacing of whole answers and of server-sent event streams.
//!
//! Each protocol module supplies what differs on its wire (credentials, error envelope,
//! request-id header, what a broken event looks like) through [`Wire`], so every protocol
//! reacts to the control API the same way. Credential rules that depend on the upstream's state
//! (Vertex AI's bearer tokens, valid only if this upstream issued them) go through
//! [`admit_checked`].

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::time::Instant;

use crate::connection::ConnHandle;
use crate::control::{Behaviour, Fault, Recorded, Sim, Upstream};

/// Largest request body read; real APIs reject far smaller ones, this only bounds memory.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// How long the handler of a reset request lingers; the connection task drops it sooner.
const RESET_LINGER: Duration = Duration::from_secs(30);

/// How long a cut response waits after its last bytes, so they are flushed before the break.
const CUT_FLUSH: Duration = Duration::from_millis(10);

/// What one protocol's wire does differently.
pub trait Wire {
    /// The response header carrying a request id (`x-request-id`, `request-id`).
    const REQUEST_ID_HEADER: &'static str;
    /// The single event a stream sends under the `malformed` fault.
    const MALFORMED_EVENT: &'static [u8];
    /// The content type of a streamed answer.
    const STREAM_CONTENT_TYPE: &'static str = "text/event-stream; charset=utf-8";

    /// Checks credentials and required headers: `Some` is the rejection to send, and such a
    /// request draws no fault (a real provider rejects it before doing any work).
    fn reject_headers(headers: &HeaderMap) -> Option<Response>;

    /// Like [`Wire::reject_headers`], for wires whose rules also read the URL (a required query
    /// parameter); by default only the headers are checked.
    fn reject_request(parts: &Parts) -> Option<Response> {
        Self::reject_headers(&parts.headers)
    }

    /// Like [`Wire::reject_request`], for wires whose credentials also cover the body (AWS
    /// Signature Version 4 signs its hash); by default the body is not looked at.
    fn reject_signed(parts: &Parts, _body: &[u8]) -> Option<Response> {
        Self::reject_request(parts)
    }

    /// The answer to a body too large (or broken) to read.
    fn too_large() -> Response;

    /// The answer to a `{"status": ...}` fault, in the protocol's error envelope.
    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response;
}

/// How a fault spoils a response body that is otherwise produced normally.
#[derive(Debug, Clone, Copy)]
pub enum BodyFault {
    /// Stream this many events (or half the body), then break the connection.
    Cut(u64),
    /// Send something that is not JSON.
    Malformed,
}

/// A data-plane request past recording, the header checks and the connection-level faults.
pub struct Admitted {
    pub upstream: Arc<Upstream>,
    pub behaviour: Behaviour,
    pub body: Bytes,
    pub body_fault: Option<BodyFault>,
}

impl Admitted {
    /// The body as JSON; `None` when it is not.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Records the request, checks its headers, and applies the fault it draws (if any); an `Err`
/// is the response to send instead.
pub async fn admit<W: Wire>(sim: &Sim, name: &str, request: Request) -> Result<Admitted, Response> {
    admit_checked::<W>(sim, name, request, |_, _| None).await
}

/// Like [`admit`], with one more credential check that may read the upstream's state, run after
/// the wire's own: `Some` is the rejection to send, and such a request draws no fault either.
pub async fn admit_checked<W: Wire>(
    sim: &Sim,
    name: &str,
    request: Request,
    check: impl FnOnce(&Parts, &Upstream) -> Option<Response>,
) -> Result<Admitted, Response> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| W::too_large())?;
    let upstream = sim.upstream(name);
    let rejection = W::reject_signed(&parts, &body).or_else(|| check(&parts, &upstream));
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
    let (behaviour, fault) = upstream.admit(recorded, rejection.is_none());
    if let Some(rejection) = rejection {
        return Err(rejection);
    }
    let body_fault = match fault {
        None => None,
        Some(Fault::Status {
            status,
            retry_after_s,
            message,
        }) => return Err(W::fault_error(status, retry_after_s, message.as_deref())),
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

/// A fresh request id, unique within the process.
pub fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("req_sim{:016x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The protocol's request-id header carrying `id`.
pub fn request_id_header<W: Wire>(id: &str) -> [(HeaderName, HeaderValue); 1] {
    let value = HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("req_sim"));
    [(HeaderName::from_static(W::REQUEST_ID_HEADER), value)]
}

/// A 200 JSON answer, or its spoiled version under a body fault.
pub fn json_body<W: Wire>(bytes: Vec<u8>, fault: Option<BodyFault>) -> Response {
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    match fault {
        None => (
            StatusCode::OK,
            content_type,
            request_id_header::<W>(&new_request_id()),
            bytes,
        )
            .into_response(),
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

/// Waits `ttft` plus `tokens` paced at the behaviour's rate (non-streaming answers).
pub async fn pace_whole(behaviour: &Behaviour, tokens: u64) {
    let mut wait = Duration::from_millis(behaviour.ttft_ms);
    if let Some(interval) = behaviour.token_interval() {
        wait += interval.saturating_mul(u32::try_from(tokens).unwrap_or(u32::MAX));
    }
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// One rendered SSE event.
pub struct Event {
    pub bytes: Bytes,
    /// Carries one generated token, so it is paced at the behaviour's rate.
    pub token: bool,
    /// The stream's closing event (`[DONE]`, `message_stop`), which a cut never lets through.
    pub last: bool,
}

/// The events of one streamed answer, rendered one at a time so an open stream holds only the
/// answer, not its serialised events.
pub trait Events: Send + 'static {
    fn next_event(&mut self) -> Option<Event>;
}

/// Drives [`Events`] in time: the first event at `ttft`, token `k` at `ttft + k/rate`.
struct Pacer<E> {
    events: E,
    first_at: Instant,
    interval: Option<Duration>,
    tokens: u32,
    emitted: u64,
    cut_after: Option<u64>,
    finished: bool,
}

/// A 200 `text/event-stream` response of `events`, paced by `behaviour`, spoiled by `fault`.
pub fn stream_response<W: Wire>(
    events: impl Events,
    behaviour: &Behaviour,
    fault: Option<BodyFault>,
) -> Response {
    let first_at = Instant::now() + Duration::from_millis(behaviour.ttft_ms);
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static(W::STREAM_CONTENT_TYPE),
        )
        .header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (name, value) in request_id_header::<W>(&new_request_id()) {
        builder = builder.header(name, value);
    }
    let body = match fault {
        Some(BodyFault::Malformed) => {
            // One broken event, then the server closes the connection.
            builder = builder.header(header::CONNECTION, HeaderValue::from_static("close"));
            Body::from_stream(futures_util::stream::once(async move {
                tokio::time::sleep_until(first_at).await;
                Ok::<Bytes, io::Error>(Bytes::from_static(W::MALFORMED_EVENT))
            }))
        }
        fault => {
            let cut_after = match fault {
                Some(BodyFault::Cut(n)) => Some(n),
                _ => None,
            };
            let pacer = Pacer {
                events,
                first_at,
                interval: behaviour.token_interval(),
                tokens: 0,
                emitted: 0,
                cut_after,
                finished: false,
            };
            Body::from_stream(futures_util::stream::unfold(pacer, next_paced))
        }
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn next_paced<E: Events>(
    mut pacer: Pacer<E>,
) -> Option<(Result<Bytes, io::Error>, Pacer<E>)> {
    if pacer.finished {
        return None;
    }
    let event = pacer.events.next_event()?;
    if let Some(n) = pacer.cut_after {
        // The cut always lands before the closing event, even when n exceeds the stream's length.
        if pacer.emitted >= n || event.last {
            pacer.finished = true;
            // Let what was sent reach the client before the connection breaks.
            tokio::time::sleep(CUT_FLUSH).await;
            let error = io::Error::new(io::ErrorKind::ConnectionAborted, "simulated cut");
            return Some((Err(error), pacer));
        }
    }
    let deadline = if pacer.emitted == 0 {
        Some(pacer.first_at)
    } else if event.token {
        pacer
            .interval
            .map(|interval| pacer.first_at + interval * pacer.tokens)
    } else {
        None
    };
    if event.token {
        pacer.tokens = pacer.tokens.saturating_add(1);
    }
    // Only real waits touch the timer: a past deadline would still cost a timer tick.
    if let Some(deadline) = deadline.filter(|d| *d > Instant::now()) {
        tokio::time::sleep_until(deadline).await;
    }
    pacer.emitted += 1;
    Some((Ok(event.bytes), pacer))
}
