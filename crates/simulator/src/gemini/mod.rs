//! The Gemini protocol, written from Google's Gemini API (and Vertex AI) documentation:
//! `POST /{upstream}/v1beta/models/{model}:{method}` (also under `/v1/`) for `generateContent`,
//! `streamGenerateContent`, `countTokens`, `embedContent` and `batchEmbedContents`; and the
//! Vertex AI shape `POST /{upstream}/{v1|v1beta1}/projects/{project}/locations/{location}/
//! publishers/google/models/{model}:{method}` for `generateContent`, `streamGenerateContent`,
//! `countTokens`, and the embeddings `predict`, `embedContent` and `batchEmbedContents` in
//! Vertex AI's request shapes (see `vertex_embed`). Any location is accepted (`us-central1`,
//! `europe-west1`, `global`, `us`, `eu`, ...); the request log shows which one was called.
//! Errors use Google's envelope `{"error": {"code", "message", "status", "details"}}`.
//!
//! Credentials: the Gemini API wants an API key, in `x-goog-api-key` or `?key=` (any non-empty
//! value); without one it answers 403 `PERMISSION_DENIED` ("Method doesn't allow unregistered
//! callers ..."), and a bearer token alone gets 401 `UNAUTHENTICATED` (the simulator takes no
//! OAuth tokens there). Vertex AI wants `Authorization: Bearer <token>` (or an API key, as in
//! express mode); without one it answers 401 `UNAUTHENTICATED` with an `ErrorInfo` of reason
//! `CREDENTIALS_MISSING`. Once the upstream's token endpoint has issued access tokens, the
//! bearer must be one of them and unexpired (see `crate::vertex`); an API key still passes.
//! Rejected requests draw no fault.
//!
//! What the simulated model does:
//! - **Text**: `output_tokens` (behaviour) vocabulary words per candidate, cut at
//!   `maxOutputTokens` (`finishReason: MAX_TOKENS`) or before the earliest `stopSequences` match
//!   (`STOP`). `candidateCount` candidates, each its own text. `responseMimeType`
//!   `application/json` answers a JSON document (for `responseSchema` or `responseJsonSchema`,
//!   one valid for it; else `{"response": "..."}`), never cut; `text/x.enum` one of the
//!   schema's enum values.
//! - **Function calling**: declared functions whose names the last user turn's text mentions
//!   are called, in declaration order, as parallel `functionCall` parts (`finishReason: STOP`,
//!   no call `id`, as the Gemini API sends none), with `args` generated from the declared
//!   `parameters` (or `parametersJsonSchema`). `toolConfig.functionCallingConfig.mode`: `AUTO`
//!   and `VALIDATED` as described, `NONE` never calls, `ANY` calls the mentioned functions or
//!   else the first one (both within `allowedFunctionNames`). A last user turn of
//!   `functionResponse` parts is answered with text (unless `ANY` forces a call).
//! - **Thinking**: with `generationConfig.thinkingConfig` asking for it (`includeThoughts: true`,
//!   a non-zero `thinkingBudget`, or a `thinkingLevel`) the model thinks `output_tokens` words (at
//!   most a positive `thinkingBudget`), reported as `thoughtsTokenCount`; with `includeThoughts`
//!   they come first as a `thought: true` text part. A deterministic `thoughtSignature` rides on
//!   the first `functionCall` part, or else on the first (non-thought) text part.
//!   `maxOutputTokens` caps thoughts and answer together, so a small cap can leave no text.
//! - **Safety**: the text `unsafe-block` anywhere in the prompt (any case) blocks the prompt:
//!   no candidates, `promptFeedback.blockReason: SAFETY` with safety ratings. `unsafe-answer` in
//!   the last user turn stops each candidate with `finishReason: SAFETY`, no content, and
//!   safety ratings.
//! - **Usage** (the simulator's fixed tokenizer): `promptTokenCount` is the tokens of the system
//!   instruction's and contents' text parts, each tool's JSON definition, a function call's name
//!   and `args` JSON, a function response's name and `response` JSON, and 258 per inline or file
//!   media part (by modality in `promptTokensDetails`); earlier `thought` parts count nothing.
//!   No per-turn overhead, so `countTokens` returns the same total. `candidatesTokenCount` is
//!   text and call tokens, `thoughtsTokenCount` the thinking, `totalTokenCount` their sum.
//! - **Implicit caching**: a prompt prefix — the system instruction and tools, then each content
//!   but the last — of at least 1024 tokens that this upstream has seen before (same model) is
//!   reported as `cachedContentTokenCount` (the longest such prefix; `promptTokenCount` still
//!   includes it). A `cachedContent` name is accepted but does not change usage (the simulator
//!   has no caches API). `DELETE /_sim/{upstream}` empties the cache.
//! - **Embeddings**: deterministic unit vectors (see `embed`).
//!
//! Streaming (`streamGenerateContent`): SSE with `alt=sse`, otherwise one JSON array streamed
//! element by element (see `stream`); paced by the behaviour. Faults from the control API apply
//! as for every protocol: a status fault answers in Google's envelope with the status name
//! Google uses for it (429 `RESOURCE_EXHAUSTED` with a `RetryInfo` detail when `retry_after_s`
//! is given, plus `Retry-After`).

mod answer;
mod embed;
mod request;
mod schema;
mod stream;
mod vertex_embed;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};

use crate::control::{Sim, Upstream};
use crate::exchange::{self, pace_whole, stream_response, Admitted, BodyFault, Wire};
use crate::generate::{base64_encode, bytes_hash, request_hash};
use answer::{Meta, Usage};
use request::{GenerateRequest, Invalid, Prompt};
use stream::{ChunkStream, Framing};

/// Google's JSON content type.
const JSON_TYPE: &str = "application/json; charset=UTF-8";
/// The one stream event sent under the `malformed` fault, per framing.
const MALFORMED_SSE: &[u8] = b"data: {not json\r\n\r\n";
const MALFORMED_ARRAY: &[u8] = b"[{not json";

/// The simulator's Gemini and Vertex AI routes (state: the simulator).
pub fn routes() -> Router<Arc<Sim>> {
    const VERTEX: &str =
        "projects/{project}/locations/{location}/publishers/google/models/{action}";
    Router::new()
        .route("/{upstream}/v1beta/models/{action}", post(gemini_api))
        .route("/{upstream}/v1/models/{action}", post(gemini_api))
        .route(&format!("/{{upstream}}/v1/{VERTEX}"), post(vertex_api))
        .route(&format!("/{{upstream}}/v1beta1/{VERTEX}"), post(vertex_api))
}

/// The gRPC status name Google pairs with an HTTP status.
fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        402 | 405..=428 | 430..=498 => "FAILED_PRECONDITION",
        _ => "UNKNOWN",
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<Value>,
}

/// `{"error": {"code", "message", "status", "details"}}`.
pub(crate) fn error(status: StatusCode, message: &str, details: Vec<Value>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: status.as_u16(),
            message,
            status: status_name(status.as_u16()),
            details,
        },
    };
    match serde_json::to_vec(&body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE))],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        let details = match &self.violation {
            Some(field) => vec![json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": self.message}]
            })],
            None => Vec::new(),
        };
        error(StatusCode::BAD_REQUEST, &self.message, details)
    }
}

fn too_large() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "Request payload size exceeds the limit: 33554432 bytes.",
        Vec::new(),
    )
}

/// A `{"status": ...}` fault in Google's words for that status.
pub(crate) fn fault_error(
    status: u16,
    retry_after_s: Option<f64>,
    message: Option<&str>,
) -> Response {
    let default = match status {
        400 => "Request contains an invalid argument.",
        401 => "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        500 => "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        503 => "The model is overloaded. Please try again later.",
        504 => "Deadline expired before operation could complete.",
        _ => "The request failed (simulated fault).",
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut details = Vec::new();
    if let Some(seconds) = retry_after_s {
        let delay = format!("{}s", (seconds * 1000.0).round() / 1000.0);
        details.push(
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}),
        );
    }
    let mut response = error(status, message.unwrap_or(default), details);
    if let Some(seconds) = retry_after_s {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(seconds.ceil() as u64),
        );
    }
    response
}

fn header_set(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty())
}

fn has_bearer(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
        })
}

/// The Gemini API's rule: an API key in `x-goog-api-key`.
fn reject_without_api_key(headers: &HeaderMap) -> Option<Response> {
    if header_set(headers, "x-goog-api-key") {
        return None;
    }
    if has_bearer(headers) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            vec![json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"}
            })],
        ));
    }
    Some(error(
        StatusCode::FORBIDDEN,
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        Vec::new(),
    ))
}

/// Vertex AI's rule: a bearer token (or an API key, as in express mode).
fn reject_without_token(headers: &HeaderMap) -> Option<Response> {
    if has_bearer(headers) || header_set(headers, "x-goog-api-key") {
        return None;
    }
    Some(error(
        StatusCode::UNAUTHORIZED,
        "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        vec![json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "CREDENTIALS_MISSING",
            "domain": "googleapis.com",
            "metadata": {"service": "aiplatform.googleapis.com", "method": "google.cloud.aiplatform.v1.PredictionService.GenerateContent"}
        })],
    ))
}

fn accept(_: &HeaderMap) -> Option<Response> {
    None
}

/// The Gemini wires: they differ only in the credentials they want and (for streams) in what
/// a malformed event looks like.
macro_rules! gemini_wire {
    ($(#[$doc:meta])* $name:ident, $malformed:expr, $reject:path) => {
        $(#[$doc])*
        pub struct $name;

        impl Wire for $name {
            const REQUEST_ID_HEADER: &'static str = "x-request-id";
            const MALFORMED_EVENT: &'static [u8] = $malformed;

            fn reject_headers(headers: &HeaderMap) -> Option<Response> {
                $reject(headers)
            }

            fn too_large() -> Response {
                too_large()
            }

            fn fault_error(
                status: u16,
                retry_after_s: Option<f64>,
                message: Option<&str>,
            ) -> Response {
                fault_error(status, retry_after_s, message)
            }
        }
    };
}

gemini_wire!(
    /// The Gemini API with its key in `x-goog-api-key`; SSE streams.
    Gemini,
    MALFORMED_SSE,
    reject_without_api_key
);
gemini_wire!(
    /// A request whose key came as `?key=` (checked before admission).
    QueryKey,
    MALFORMED_SSE,
    accept
);
gemini_wire!(
    /// Vertex AI: a bearer token.
    Vertex,
    MALFORMED_SSE,
    reject_without_token
);
gemini_wire!(
    /// Streams framed as one JSON array (no `alt=sse`).
    JsonArray,
    MALFORMED_ARRAY,
    accept
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    GeminiApi,
    VertexAi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Generate,
    Stream,
    CountTokens,
    Embed,
    BatchEmbed,
    /// Vertex AI's text embeddings.
    Predict,
}

impl Method {
    fn parse(name: &str, surface: Surface) -> Option<Self> {
        let method = match name {
            "generateContent" => Method::Generate,
            "streamGenerateContent" => Method::Stream,
            "countTokens" => Method::CountTokens,
            "embedContent" => Method::Embed,
            "batchEmbedContents" => Method::BatchEmbed,
            "predict" => Method::Predict,
            _ => return None,
        };
        (surface == Surface::VertexAi || method != Method::Predict).then_some(method)
    }

    /// The RPC Vertex AI names in its errors' `ErrorInfo`.
    fn rpc(self) -> &'static str {
        match self {
            Method::Generate => "google.cloud.aiplatform.v1.PredictionService.GenerateContent",
            Method::Stream => "google.cloud.aiplatform.v1.PredictionService.StreamGenerateContent",
            Method::CountTokens => "google.cloud.aiplatform.v1.LlmUtilityService.CountTokens",
            Method::Embed => "google.cloud.aiplatform.v1.PredictionService.EmbedContent",
            Method::BatchEmbed => "google.cloud.aiplatform.v1.PredictionService.BatchEmbedContents",
            Method::Predict => "google.cloud.aiplatform.v1.PredictionService.Predict",
        }
    }
}

/// `key` and `alt` from the query string.
#[derive(Default)]
struct Query {
    key: bool,
    sse: bool,
}

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut out = Query::default();
        for pair in query.unwrap_or("").split('&') {
            match pair.split_once('=') {
                Some(("key", value)) => out.key |= !value.is_empty(),
                Some(("alt", value)) => out.sse = value == "sse",
                _ => {}
            }
        }
        out
    }
}

/// `POST /{upstream}/{v1beta|v1}/models/{model}:{method}`.
async fn gemini_api(
    State(sim): State<Arc<Sim>>,
    Path((upstream, action)): Path<(String, String)>,
    request: Request,
) -> Response {
    serve(&sim, &upstream, &action, Surface::GeminiApi, request).await
}

/// `POST /{upstream}/{v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/
/// models/{model}:{method}`.
async fn vertex_api(
    State(sim): State<Arc<Sim>>,
    Path((upstream, _project, _location, action)): Path<(String, String, String, String)>,
    request: Request,
) -> Response {
    serve(&sim, &upstream, &action, Surface::VertexAi, request).await
}

async fn serve(
    sim: &Sim,
    upstream: &str,
    action: &str,
    surface: Surface,
    request: Request,
) -> Response {
    let parsed = action
        .split_once(':')
        .and_then(|(model, method)| Some((model, Method::parse(method, surface)?)))
        .filter(|(model, _)| !model.is_empty());
    let Some((model, method)) = parsed else {
        let (model, method) = action.split_once(':').unwrap_or((action, ""));
        let message = format!(
            "models/{model} is not found for API version v1beta, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods."
        );
        return error(StatusCode::NOT_FOUND, &message, Vec::new());
    };
    let query = Query::parse(request.uri().query());
    // Vertex AI: once the upstream issued tokens, the bearer must be one of them.
    let token = |parts: &Parts, up: &Upstream| crate::vertex::check_bearer(parts, up, method.rpc());
    let admitted = match (query.key, surface) {
        (true, Surface::GeminiApi) => exchange::admit::<QueryKey>(sim, upstream, request).await,
        (true, Surface::VertexAi) => {
            exchange::admit_checked::<QueryKey>(sim, upstream, request, token).await
        }
        (false, Surface::GeminiApi) => exchange::admit::<Gemini>(sim, upstream, request).await,
        (false, Surface::VertexAi) => {
            exchange::admit_checked::<Vertex>(sim, upstream, request, token).await
        }
    };
    let admitted = match admitted {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let value: Value = match serde_json::from_slice(&admitted.body) {
        Ok(value) => value,
        Err(e) => {
            return Invalid::plain(format!("Invalid JSON payload received. {e}")).into_response()
        }
    };
    let vertex = surface == Surface::VertexAi;
    let result = match method {
        Method::Generate => generate(&admitted, &value, model, vertex, None).await,
        Method::Stream => {
            let framing = if query.sse {
                Framing::Sse
            } else {
                Framing::JsonArray
            };
            generate(&admitted, &value, model, vertex, Some(framing)).await
        }
        Method::CountTokens => count_tokens(&admitted, &value, model),
        Method::Embed if vertex => vertex_embed::embed_content(&value, model).map(|out| {
            admitted.upstream.note_model(model);
            json_ok(serde_json::to_vec(&out), admitted.body_fault)
        }),
        Method::BatchEmbed if vertex => {
            vertex_embed::batch_embed_contents(&value, model).map(|out| {
                admitted.upstream.note_model(model);
                json_ok(serde_json::to_vec(&out), admitted.body_fault)
            })
        }
        Method::Embed => embed::embed_content(&value, model).map(|out| {
            admitted.upstream.note_model(model);
            json_ok(serde_json::to_vec(&out), admitted.body_fault)
        }),
        Method::BatchEmbed => embed::batch_embed_contents(&value, model).map(|out| {
            admitted.upstream.note_model(model);
            json_ok(serde_json::to_vec(&out), admitted.body_fault)
        }),
        Method::Predict => vertex_embed::predict(&value, model).map(|out| {
            admitted.upstream.note_model(model);
            json_ok(serde_json::to_vec(&out), admitted.body_fault)
        }),
    };
    match result {
        Ok(response) => response,
        Err(invalid) => invalid.into_response(),
    }
}

/// A 200 JSON answer in Google's content type, or its spoiled version under a body fault.
fn json_ok(bytes: serde_json::Result<Vec<u8>>, fault: Option<BodyFault>) -> Response {
    let Ok(bytes) = bytes else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = exchange::json_body::<Gemini>(bytes, fault);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
    response
}

/// What decides the answer: the body without what only cuts it short or hides part of it
/// (`maxOutputTokens`, `stopSequences`, `candidateCount`, `includeThoughts`) or changes only
/// usage (`cachedContent`), and the model. So a streamed answer equals the unstreamed one, a
/// cut answer is a prefix of the whole, and candidate 0 is the same whatever the count.
fn semantic_hash(value: &Value, model: &str) -> [u8; 32] {
    let mut value = value.clone();
    if let Some(obj) = value.as_object_mut() {
        for key in ["generationConfig", "generation_config"] {
            if obj.get(key).is_some_and(Value::is_null) {
                obj.remove(key);
            }
            let Some(Value::Object(config)) = obj.get_mut(key) else {
                continue;
            };
            for skip in [
                "maxOutputTokens",
                "max_output_tokens",
                "stopSequences",
                "stop_sequences",
                "candidateCount",
                "candidate_count",
            ] {
                config.remove(skip);
            }
            for thinking in ["thinkingConfig", "thinking_config"] {
                if let Some(Value::Object(t)) = config.get_mut(thinking) {
                    t.remove("includeThoughts");
                    t.remove("include_thoughts");
                }
            }
            // An emptied config generates what no config does.
            if config.is_empty() {
                obj.remove(key);
            }
        }
    }
    let hash = request_hash(
        &value,
        &["cachedContent", "cached_content", "labels", "model"],
    );
    bytes_hash(&[model.as_bytes(), &hash])
}

/// A response id like Google's: 22 URL-safe characters, distinct per response.
fn response_id(hash: &[u8; 32]) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let bytes = bytes_hash(&[hash, &n.to_le_bytes()]);
    base64_encode(&bytes[..16])
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Now as RFC 3339 in UTC with microseconds (Vertex AI's `createTime`).
fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_micros()
    )
}

/// Implicit caching: the longest cacheable prefix this upstream has seen before.
fn cached_tokens(prompt: &Prompt, upstream: &Upstream) -> u64 {
    if prompt.prefixes.is_empty() {
        return 0;
    }
    let hashes: Vec<[u8; 32]> = prompt.prefixes.iter().map(|(_, h)| *h).collect();
    upstream
        .cache_prefixes(&hashes)
        .map_or(0, |i| prompt.prefixes[i].0)
}

/// `generateContent` (`framing: None`) and `streamGenerateContent`.
async fn generate(
    admitted: &Admitted,
    value: &Value,
    model: &str,
    vertex: bool,
    framing: Option<Framing>,
) -> Result<Response, Invalid> {
    let req = GenerateRequest::parse(value)?;
    admitted.upstream.note_model(model);
    let hash = semantic_hash(value, model);
    let answer = answer::generate(&req, &admitted.behaviour, &hash);
    let prompt = req.prompt(model);
    let usage = Usage {
        prompt: prompt.modalities,
        cached: cached_tokens(&prompt, &admitted.upstream),
        candidates: answer.output_tokens(),
        thoughts: answer.thought_tokens(),
        vertex,
    };
    let meta = Meta {
        model_version: model.to_owned(),
        response_id: response_id(&hash),
        create_time: vertex.then(rfc3339_now),
    };
    if let Some(framing) = framing {
        let events = ChunkStream::new(answer, usage, meta, framing);
        let behaviour = &admitted.behaviour;
        let (mut response, content_type) = match framing {
            Framing::Sse => (
                stream_response::<Gemini>(events, behaviour, admitted.body_fault),
                "text/event-stream",
            ),
            Framing::JsonArray => (
                stream_response::<JsonArray>(events, behaviour, admitted.body_fault),
                JSON_TYPE,
            ),
        };
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return Ok(response);
    }
    pace_whole(
        &admitted.behaviour,
        answer.output_tokens() + answer.thought_tokens(),
    )
    .await;
    let bytes = serde_json::to_vec(&answer::render(&answer, &usage, &meta));
    Ok(json_ok(bytes, admitted.body_fault))
}

/// `countTokens`: `{"totalTokens", "promptTokensDetails"}`, the prompt by the fixed tokenizer.
fn count_tokens(admitted: &Admitted, value: &Value, model: &str) -> Result<Response, Invalid> {
    let req = GenerateRequest::parse_count(value)?;
    let prompt = req.prompt(model);
    let details: Vec<Value> = prompt
        .modalities
        .entries()
        .into_iter()
        .map(|(modality, n)| json!({"modality": modality, "tokenCount": n}))
        .collect();
    let body = json!({"totalTokens": prompt.total(), "promptTokensDetails": details});
    Ok(json_ok(serde_json::to_vec(&body), admitted.body_fault))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_have_google_names() {
        for (status, name) in [
            (400, "INVALID_ARGUMENT"),
            (401, "UNAUTHENTICATED"),
            (403, "PERMISSION_DENIED"),
            (404, "NOT_FOUND"),
            (429, "RESOURCE_EXHAUSTED"),
            (500, "INTERNAL"),
            (503, "UNAVAILABLE"),
            (504, "DEADLINE_EXCEEDED"),
            (418, "FAILED_PRECONDITION"),
            (502, "UNKNOWN"),
        ] {
            assert_eq!(status_name(status), name);
        }
    }

    #[test]
    fn query_and_method_parsing() {
        let q = Query::parse(Some("alt=sse&key=abc"));
        assert!(q.sse && q.key);
        let q = Query::parse(Some("key="));
        assert!(!q.sse && !q.key);
        assert_eq!(
            Method::parse("predict", Surface::GeminiApi),
            None,
            "only Vertex AI has :predict"
        );
        assert_eq!(
            Method::parse("predict", Surface::VertexAi),
            Some(Method::Predict)
        );
        assert_eq!(
            Method::parse("embedContent", Surface::VertexAi),
            Some(Method::Embed)
        );
        assert_eq!(
            Method::parse("countTokens", Surface::VertexAi),
            Some(Method::CountTokens)
        );
    }

    #[test]
    fn hash_ignores_what_only_cuts_the_answer() {
        let a =
            json!({"contents": [], "generationConfig": {"maxOutputTokens": 3, "temperature": 1}});
        let b =
            json!({"contents": [], "generationConfig": {"temperature": 1, "stopSequences": ["x"]}});
        assert_eq!(semantic_hash(&a, "m"), semantic_hash(&b, "m"));
        assert_ne!(semantic_hash(&a, "m"), semantic_hash(&a, "n"));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = rfc3339_now();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T");
    }
}
