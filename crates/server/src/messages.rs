//! `POST /api/v1/messages` (Anthropic's Messages API as an ingress, so Claude Code and the
//! `anthropic` SDK work) and `POST /api/v1/messages/count_tokens`.
//!
//! An adapter around the chat pipeline: the request is translated into a chat request
//! (`core::messages::to_chat_request`), routed, billed and recorded like any other, and the
//! OpenAI-shaped answer is translated back, whole or event by event (`core::messages::EventWriter`).
//! Errors use Anthropic's envelope.

use crate::auth::Need;
use crate::chat::{self, Ingress};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use std::sync::Arc;
use switchyard_core::error::ApiError;
use switchyard_core::messages::{self, EventWriter};
use switchyard_core::sse::{SseItem, SseParser};

pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match chat::dispatch(state, headers, body, Ingress::Messages).await {
        Ok(response) => translate(response).await,
        Err(rejected) => error_response(&rejected.err, rejected.generation_id.as_deref()),
    }
}

pub async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(err) = state.authenticate(&headers, Need::Inference).await {
        return error_response(&err, None);
    }
    let limit = state.limits.max_body_bytes;
    let bytes = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let err = ApiError::new(
                switchyard_core::error::ErrorCode::PayloadTooLarge,
                format!("Request body is larger than the limit of {limit} bytes"),
            );
            return error_response(&err, None);
        }
    };
    match messages::count_tokens(&bytes) {
        Ok(count) => json_response(
            StatusCode::OK,
            serde_json::to_vec(&count).unwrap_or_default(),
        ),
        Err(err) => error_response(&err, None),
    }
}

/// Anthropic's error envelope with the error's status (and `Retry-After`, generation id).
fn error_response(err: &ApiError, generation_id: Option<&str>) -> Response {
    let status =
        StatusCode::from_u16(err.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&messages::error_body(err, generation_id)).unwrap_or_default();
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    if let Some(seconds) = err.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(id) = generation_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert("x-generation-id", id.clone());
        headers.insert("request-id", id);
    }
    response
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The pipeline's answer in Anthropic's shape: a `message`, or its stream of events.
async fn translate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let streamed = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(id) = parts.headers.get("x-generation-id").cloned() {
        parts.headers.insert("request-id", id);
    }
    if !streamed {
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return error_response(&chat_body_lost(), None),
        };
        return match messages::from_chat_response(&bytes) {
            Ok(message) => Response::from_parts(parts, Body::from(message)),
            Err(err) => error_response(&err, None),
        };
    }
    let events = futures_util::stream::unfold(
        Some((
            body.into_data_stream(),
            SseParser::new(),
            EventWriter::new(),
        )),
        |state| async move {
            let (mut frames, mut parser, mut writer) = state?;
            loop {
                match frames.next().await {
                    Some(Ok(bytes)) => {
                        parser.push(&bytes);
                        let mut out = Vec::new();
                        while let Some(item) = parser.next_item() {
                            match item {
                                SseItem::Event { data, .. } => out.extend(writer.on_data(&data)),
                                SseItem::Comment(_) => out.extend(writer.ping()),
                            }
                        }
                        if !out.is_empty() {
                            let next = Some((frames, parser, writer));
                            return Some((
                                Ok::<_, std::convert::Infallible>(Bytes::from(out)),
                                next,
                            ));
                        }
                    }
                    // The pipeline's stream ended (or broke): close what is open, once.
                    Some(Err(_)) | None => {
                        let out = writer.finish();
                        return (!out.is_empty()).then(|| (Ok(Bytes::from(out)), None));
                    }
                }
            }
        },
    );
    Response::from_parts(parts, Body::from_stream(events))
}

fn chat_body_lost() -> ApiError {
    ApiError::new(
        switchyard_core::error::ErrorCode::Internal,
        "The response could not be read",
    )
}
