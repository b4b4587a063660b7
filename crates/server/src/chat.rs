//! `POST /api/v1/chat/completions`: authenticate, validate, route, reserve, then try candidates in
//! order until one answers, and relay the answer (whole or as a stream) with accounting.
//!
//! Failover happens only while the client has seen nothing: before a non-streaming response is
//! sent, or before the stream's headers are committed. Once a stream is committed, an upstream
//! failure ends it with OpenRouter's mid-stream error chunk.

use crate::auth::{Need, Principal};
use crate::error::HttpError;
use crate::ledger::{Amounts, Reservation};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Limited};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_core::catalog::Pricing;
use switchyard_core::chat::ChatRequest;
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::generation::{Attempt, GenerationRecord};
use switchyard_core::money::Money;
use switchyard_core::pricing::{self, Charge, Cost, Usage};
use switchyard_core::protocol::openai::{self, StreamStep, StreamTranslator};
use switchyard_core::protocol::{retryable_status, Outcome, Served};
use switchyard_core::routing::{self, ProviderPrefs, RouteRequest};
use switchyard_core::sse::{SseItem, SseParser, DONE_FRAME, KEEPALIVE_FRAME};
use tokio::sync::mpsc;

/// One endpoint to try, with everything needed to call and bill it (owned: it outlives the handler).
#[derive(Debug, Clone)]
struct Target {
    model_id: String,
    permaslug: String,
    provider_name: String,
    tag: String,
    upstream_model: String,
    pricing: Pricing,
    max_completion_tokens: Option<u64>,
    context_length: u64,
    url: String,
    api_key: Option<String>,
    /// Served with the account's own credential for this provider.
    is_byok: bool,
}

/// Per-request facts that end up in the generation record.
#[derive(Debug, Clone)]
struct RequestCtx {
    generation_id: String,
    principal: Principal,
    started: Instant,
    created_at_ms: i64,
    http_referer: Option<String>,
    app_title: Option<String>,
    user_agent: Option<String>,
    external_user: Option<String>,
    session_id: Option<String>,
    streamed: bool,
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(state, headers, body).await {
        Ok(response) => response,
        Err(err) => HttpError(err).into_response(),
    }
}

async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let now_ms = state.now_ms();
    let principal = state
        .keys
        .authenticate(&state.store, &headers, Need::Inference, now_ms)
        .await?;
    let bytes = read_body(body, state.limits.max_body_bytes).await?;
    let request = ChatRequest::parse(&bytes)?;
    check_allowed(&state, &principal, &request)?;
    let key = &principal.key;
    let targets = targets(&state, &request, &key.account_id).await?;

    // The worst case over the candidates, as the account pays it (a BYOK fee, or the full price)
    // and as it counts against the key's limit (plus the BYOK usage when the limit includes it).
    let mut amounts = Amounts {
        account: Money::ZERO,
        key: Money::ZERO,
    };
    for t in &targets {
        let worst = pricing::worst_case(
            &t.pricing,
            request.prompt_estimate(),
            max_output(&request, t),
        );
        let charged = if t.is_byok {
            state.byok.fee(worst, false)
        } else {
            worst
        };
        let counted = if t.is_byok && key.include_byok_in_limit {
            charged.saturating_add(worst)
        } else {
            charged
        };
        amounts.account = amounts.account.max(charged);
        amounts.key = amounts.key.max(counted);
    }
    let reservation = state
        .ledger
        .reserve(&state.store, key, amounts, now_ms)
        .await?;
    let free = targets.iter().any(|t| t.model_id.ends_with(":free"));
    let granted = state
        .ledger
        .snapshot(&key.account_id)
        .map_or(Money::ZERO, |(credits, _)| credits);
    state
        .limiter
        .admit(
            &state.store,
            &key.hash,
            &key.account_id,
            free,
            granted,
            now_ms,
        )
        .await?;

    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ctx = RequestCtx {
        generation_id: state.new_generation_id(now_ms),
        principal,
        started,
        created_at_ms: now_ms,
        http_referer: header("http-referer").or_else(|| header("referer")),
        app_title: header("x-openrouter-title").or_else(|| header("x-title")),
        user_agent: header("user-agent"),
        external_user: request.str_field("user").map(str::to_owned),
        session_id: request
            .str_field("session_id")
            .map(str::to_owned)
            .or_else(|| header("x-session-id")),
        streamed: request.stream(),
    };
    if request.stream() {
        return start_stream(state, ctx, request, targets, reservation).await;
    }
    // The generation runs to completion in its own task even if the client goes away: the upstream
    // bills it regardless, so it is recorded and charged like any other.
    let task = tokio::spawn(complete(state, ctx, request, targets, reservation));
    task.await
        .unwrap_or_else(|_| Err(ApiError::new(ErrorCode::Internal, "Request task failed")))
}

/// Refuses models outside the key's allow-list (compared as requested and as resolved).
fn check_allowed(
    state: &AppState,
    principal: &Principal,
    request: &ChatRequest,
) -> Result<(), ApiError> {
    let Some(allowed) = &principal.key.allowed_models else {
        return Ok(());
    };
    for requested in request.models() {
        let resolved = routing::resolve_model(&state.catalog, requested).map(|m| m.id.as_str());
        if !allowed
            .iter()
            .any(|a| a == requested || Some(a.as_str()) == resolved)
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "This key may not use {requested}; its allowed models are: {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

impl AppState {
    /// What the account pays for a generation of `target` costing `cost` at its prices.
    async fn charge(&self, target: &Target, account_id: &str, cost: Cost) -> Charge {
        if !target.is_byok {
            return Charge::platform(cost);
        }
        let free = self
            .byok
            .free_allowance_left(&self.store, account_id, self.now_ms())
            .await;
        self.byok.count_request(account_id);
        Charge::byok(cost, self.byok.fee(cost.total, free))
    }

    /// Settles a reservation with the real charge and counts the tokens for rate limits.
    fn settle(&self, reservation: Reservation, ctx: &RequestCtx, usage: &Usage, charge: &Charge) {
        let now = self.now_ms();
        reservation.settle(charge.charged, charge.byok_usage(), now);
        let key = &ctx.principal.key;
        self.limiter
            .record_tokens(&key.hash, &key.account_id, usage.total_tokens(), now);
    }
}

/// The client's body, refusing more than `limit` bytes with 413.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("Request body is larger than the limit of {limit} bytes"),
        )),
        Err(_) => Err(ApiError::invalid("Could not read the request body")),
    }
}

/// The endpoints to try, in order. Where the account has its own credential for a provider, that
/// endpoint is tried with it first (BYOK), then with the platform's key.
async fn targets(
    state: &AppState,
    request: &ChatRequest,
    account_id: &str,
) -> Result<Vec<Target>, ApiError> {
    let body = request.body();
    let prefs = ProviderPrefs::parse(body.get("provider"), body.get("route"))?;
    let params: Vec<String> = body.keys().cloned().collect();
    let route = RouteRequest {
        models: request.models(),
        prefs: &prefs,
        params: &params,
        seed: rand::random(),
    };
    let candidates = routing::plan(&state.catalog, &route, &|p| {
        state.upstreams.contains_key(&p.slug)
    })?;
    let mut targets = Vec::with_capacity(candidates.len());
    for c in candidates {
        let Some(upstream) = state.upstreams.get(&c.provider.slug) else {
            continue;
        };
        let target = Target {
            model_id: c.model.id.clone(),
            permaslug: c.model.canonical_slug.clone(),
            provider_name: c.provider.name.clone(),
            tag: c.endpoint.tag.clone(),
            upstream_model: c.endpoint.upstream_model.clone(),
            pricing: c.endpoint.pricing.clone(),
            max_completion_tokens: c.endpoint.max_completion_tokens,
            context_length: c.endpoint.context_length,
            url: format!("{}{}", upstream.base_url, openai::CHAT_PATH),
            api_key: upstream.api_key.as_ref().map(|k| k.expose().to_owned()),
            is_byok: false,
        };
        if state.byok.enabled() {
            if let Some(own) = state
                .byok
                .credential(&state.store, account_id, &c.provider.slug)
                .await
            {
                targets.push(Target {
                    api_key: Some(own.expose().to_owned()),
                    is_byok: true,
                    ..target.clone()
                });
            }
        }
        targets.push(target);
    }
    Ok(targets)
}

/// Output tokens to reserve for: the client's cap, else the most the endpoint can emit.
fn max_output(request: &ChatRequest, target: &Target) -> u64 {
    let endpoint_max = target.max_completion_tokens.unwrap_or_else(|| {
        target
            .context_length
            .saturating_sub(request.prompt_estimate())
    });
    match request.max_output() {
        Some(cap) => cap.min(endpoint_max.max(1)),
        None => endpoint_max,
    }
}

/// Why one attempt failed, and whether the next candidate may be tried.
struct Failure {
    err: ApiError,
    retryable: bool,
}

/// Sends the request to one target and returns the response if its status is a success.
async fn send(
    state: &AppState,
    target: &Target,
    request: &ChatRequest,
    attempts: &mut Vec<Attempt>,
) -> Result<reqwest::Response, Failure> {
    let started = Instant::now();
    let mut builder = state
        .client
        .post(&target.url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(openai::request_body(request, &target.upstream_model));
    if let Some(key) = &target.api_key {
        builder = builder.bearer_auth(key);
    }
    if request.stream() {
        builder = builder.header(header::ACCEPT, "text/event-stream");
    }
    let mut attempt = Attempt {
        provider_name: target.provider_name.clone(),
        endpoint_tag: target.tag.clone(),
        model_permaslug: target.permaslug.clone(),
        status: None,
        latency_ms: 0,
        upstream_id: None,
    };
    let result = tokio::time::timeout(state.limits.first_byte_timeout, builder.send()).await;
    attempt.latency_ms = started.elapsed().as_millis() as u64;
    let failure = match result {
        Err(_) => Failure {
            err: provider_failure(ErrorCode::UpstreamTimeout, "Provider timed out", target),
            retryable: true,
        },
        Ok(Err(e)) => Failure {
            err: provider_failure(
                ErrorCode::UpstreamError,
                if e.is_connect() {
                    "Could not connect to the provider"
                } else {
                    "The provider closed the connection"
                },
                target,
            ),
            retryable: true,
        },
        Ok(Ok(response)) if response.status().is_success() => {
            attempt.status = Some(response.status().as_u16());
            attempts.push(attempt);
            return Ok(response);
        }
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            attempt.status = Some(status);
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = tokio::time::timeout(state.limits.idle_timeout, response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            Failure {
                err: openai::upstream_error(status, &body, &target.provider_name, retry_after),
                retryable: retryable_status(status),
            }
        }
    };
    tracing::warn!(
        provider = %target.provider_name, endpoint = %target.tag, status = ?attempt.status,
        error = %failure.err.message, "upstream attempt failed"
    );
    attempts.push(attempt);
    Err(failure)
}

fn provider_failure(code: ErrorCode, message: &'static str, target: &Target) -> ApiError {
    ApiError::new(code, message)
        .with_metadata("provider_name", serde_json::json!(target.provider_name))
        .with_metadata("error_type", serde_json::json!(code.error_type()))
}

/// Non-streaming: try targets until one returns a readable response, then bill and answer.
async fn complete(
    state: Arc<AppState>,
    ctx: RequestCtx,
    request: ChatRequest,
    targets: Vec<Target>,
    reservation: Reservation,
) -> Result<Response, ApiError> {
    let mut attempts = Vec::new();
    let mut last_err = None;
    for target in &targets {
        let response = match send(&state, target, &request, &mut attempts).await {
            Ok(r) => r,
            Err(f) if f.retryable => {
                last_err = Some(f.err);
                continue;
            }
            Err(f) => {
                last_err = Some(f.err);
                break;
            }
        };
        let first_byte = Instant::now();
        let read = tokio::time::timeout(state.limits.idle_timeout, response.bytes()).await;
        let parsed = match read {
            Ok(Ok(bytes)) => openai::parse_response(&bytes),
            Ok(Err(_)) => Err(provider_failure(
                ErrorCode::UpstreamError,
                "The provider closed the connection mid-response",
                target,
            )),
            Err(_) => Err(provider_failure(
                ErrorCode::UpstreamTimeout,
                "Provider timed out",
                target,
            )),
        };
        let (body, outcome) = match parsed {
            Ok(ok) => ok,
            Err(err) => {
                if let Some(a) = attempts.last_mut() {
                    a.status = Some(502);
                }
                last_err = Some(
                    err.with_metadata("provider_name", serde_json::json!(target.provider_name)),
                );
                continue;
            }
        };
        if let Some(a) = attempts.last_mut() {
            a.upstream_id = outcome.upstream_id.clone();
        }
        let generated = openai::generated_text_len(&body);
        let usage = outcome
            .usage
            .unwrap_or_else(|| estimated_usage(&request, generated));
        let charge = state
            .charge(
                target,
                &ctx.principal.key.account_id,
                pricing::cost(&target.pricing, &usage),
            )
            .await;
        state.settle(reservation, &ctx, &usage, &charge);
        let served = Served {
            generation_id: &ctx.generation_id,
            model: &target.model_id,
            provider_name: &target.provider_name,
            created: ctx.created_at_ms / 1000,
        };
        let bytes = openai::render_response(body, &served, &usage, &charge);
        let generation_time = first_byte.elapsed();
        state.recorder.record(ctx.record(
            Some(target),
            &outcome,
            usage,
            charge,
            attempts,
            generation_time,
            false,
            None,
        ));
        let mut response = (StatusCode::OK, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        insert_generation_id(headers, &ctx.generation_id);
        return Ok(response);
    }
    drop(reservation);
    Err(give_up(&state, &ctx, &targets, attempts, last_err))
}

/// Every candidate failed: records the attempts and returns the last error (nothing is charged).
fn give_up(
    state: &AppState,
    ctx: &RequestCtx,
    targets: &[Target],
    attempts: Vec<Attempt>,
    last_err: Option<ApiError>,
) -> ApiError {
    let err = last_err.unwrap_or_else(|| {
        ApiError::new(
            ErrorCode::UpstreamError,
            "No provider could serve the request",
        )
    });
    state
        .recorder
        .record(ctx.failed(targets.last(), attempts, &err));
    err
}

/// Streaming: find a target that answers 2xx, commit the SSE response, relay in a task.
async fn start_stream(
    state: Arc<AppState>,
    ctx: RequestCtx,
    request: ChatRequest,
    targets: Vec<Target>,
    reservation: Reservation,
) -> Result<Response, ApiError> {
    let mut attempts = Vec::new();
    let mut last_err = None;
    let mut chosen = None;
    for target in &targets {
        match send(&state, target, &request, &mut attempts).await {
            Ok(response) => {
                chosen = Some((target.clone(), response));
                break;
            }
            Err(f) => {
                let stop = !f.retryable;
                last_err = Some(f.err);
                if stop {
                    break;
                }
            }
        }
    }
    let Some((target, upstream)) = chosen else {
        drop(reservation);
        return Err(give_up(&state, &ctx, &targets, attempts, last_err));
    };

    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let generation_id = ctx.generation_id.clone();
    tokio::spawn(relay(
        state,
        ctx,
        request,
        target,
        upstream,
        attempts,
        reservation,
        tx,
    ));
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    }));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    insert_generation_id(headers, &generation_id);
    Ok(response)
}

/// How a relayed stream ended.
enum End {
    Complete,
    Failed(ApiError),
    Cancelled,
}

#[allow(clippy::too_many_arguments)]
async fn relay(
    state: Arc<AppState>,
    ctx: RequestCtx,
    request: ChatRequest,
    target: Target,
    upstream: reqwest::Response,
    mut attempts: Vec<Attempt>,
    reservation: Reservation,
    tx: mpsc::Sender<Bytes>,
) {
    let served = Served {
        generation_id: &ctx.generation_id,
        model: &target.model_id,
        provider_name: &target.provider_name,
        created: ctx.created_at_ms / 1000,
    };
    let mut translator = StreamTranslator::new(&served);
    let mut parser = SseParser::new();
    let mut body = upstream.bytes_stream();
    let first_byte = Instant::now();
    let idle = state.limits.idle_timeout;
    let mut keepalive = tokio::time::interval_at(
        tokio::time::Instant::now() + state.limits.keepalive,
        state.limits.keepalive,
    );
    let mut deadline = tokio::time::Instant::now() + idle;

    let end = 'relay: loop {
        tokio::select! {
            _ = tx.closed() => break End::Cancelled,
            _ = keepalive.tick(), if !translator.content_sent() => {
                if tx.send(Bytes::from_static(KEEPALIVE_FRAME)).await.is_err() {
                    break End::Cancelled;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                break End::Failed(provider_failure(ErrorCode::UpstreamTimeout, "Provider stopped sending (idle timeout)", &target));
            }
            chunk = body.next() => {
                deadline = tokio::time::Instant::now() + idle;
                let bytes = match chunk {
                    None => {
                        // Some upstreams end without `[DONE]` or the final blank line.
                        if let Some(SseItem::Event { data, .. }) = parser.finish() {
                            if let Some(end) = forward(&mut translator, &tx, &data).await {
                                break end;
                            }
                        }
                        // A finish reason means the answer is whole.
                        if translator.outcome().finish_reason.is_some() {
                            break End::Complete;
                        }
                        break End::Failed(provider_failure(ErrorCode::UpstreamError, "The provider ended the stream early", &target));
                    }
                    Some(Err(_)) => break End::Failed(provider_failure(ErrorCode::UpstreamError, "The provider connection was lost mid-stream", &target)),
                    Some(Ok(bytes)) => bytes,
                };
                parser.push(&bytes);
                while let Some(item) = parser.next_item() {
                    let SseItem::Event { data, .. } = item else { continue };
                    if let Some(end) = forward(&mut translator, &tx, &data).await {
                        break 'relay end;
                    }
                }
            }
        }
    };
    // Stop the upstream generation as soon as we no longer need it.
    drop(body);

    let outcome = translator.outcome().clone();
    if let Some(a) = attempts.last_mut() {
        a.upstream_id = outcome.upstream_id.clone();
    }
    let usage = match (&end, outcome.usage) {
        (End::Complete, Some(usage)) => usage,
        _ => estimated_usage(&request, translator.generated_bytes()),
    };
    let charge = state
        .charge(
            &target,
            &ctx.principal.key.account_id,
            pricing::cost(&target.pricing, &usage),
        )
        .await;
    state.settle(reservation, &ctx, &usage, &charge);
    let generation_time = first_byte.elapsed();
    let (cancelled, error) = match &end {
        End::Complete => {
            let mut tail = translator.usage_frame(&usage, &charge);
            tail.extend_from_slice(DONE_FRAME);
            let _ = tx.send(Bytes::from(tail)).await;
            (false, None)
        }
        End::Failed(err) => {
            let _ = tx.send(Bytes::from(translator.error_frame(err))).await;
            (false, Some(err.message.to_string()))
        }
        End::Cancelled => (true, None),
    };
    let mut outcome = outcome;
    if error.is_some() {
        outcome.finish_reason = Some("error".into());
    }
    state.recorder.record(ctx.record(
        Some(&target),
        &outcome,
        usage,
        charge,
        attempts,
        generation_time,
        cancelled,
        error,
    ));
}

/// Translates one upstream event and sends the result; `Some` when the stream is over.
async fn forward(
    translator: &mut StreamTranslator,
    tx: &mpsc::Sender<Bytes>,
    data: &str,
) -> Option<End> {
    match translator.on_data(data) {
        Ok(StreamStep::Frame(frame)) => match tx.send(Bytes::from(frame)).await {
            Ok(()) => None,
            Err(_) => Some(End::Cancelled),
        },
        Ok(StreamStep::Nothing) => None,
        Ok(StreamStep::Done) => Some(End::Complete),
        Err(err) => Some(End::Failed(err)),
    }
}

/// Usage when the upstream reported none: the prompt estimate and the generated text seen.
fn estimated_usage(request: &ChatRequest, generated_bytes: usize) -> Usage {
    Usage {
        prompt_tokens: request.prompt_estimate(),
        completion_tokens: (generated_bytes as u64).div_ceil(4),
        ..Usage::default()
    }
}

fn insert_generation_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-generation-id", value);
    }
}

impl RequestCtx {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        target: Option<&Target>,
        outcome: &Outcome,
        usage: Usage,
        charge: Charge,
        attempts: Vec<Attempt>,
        generation_time: Duration,
        cancelled: bool,
        error: Option<String>,
    ) -> GenerationRecord {
        GenerationRecord {
            id: self.generation_id.clone(),
            account_id: self.principal.key.account_id.clone(),
            key_hash: self.principal.key.hash.clone(),
            created_at_ms: self.created_at_ms,
            model: target.map(|t| t.model_id.clone()).unwrap_or_default(),
            provider_name: target.map(|t| t.provider_name.clone()),
            upstream_id: outcome.upstream_id.clone(),
            streamed: self.streamed,
            cancelled,
            finish_reason: outcome.finish_reason.clone(),
            native_finish_reason: outcome.native_finish_reason.clone(),
            usage,
            cost: charge.charged,
            is_byok: charge.is_byok,
            byok_usage: charge.byok_usage(),
            latency_ms: self.started.elapsed().as_millis() as u64,
            generation_time_ms: generation_time.as_millis() as u64,
            http_referer: self.http_referer.clone(),
            app_title: self.app_title.clone(),
            user_agent: self.user_agent.clone(),
            external_user: self.external_user.clone(),
            session_id: self.session_id.clone(),
            attempts,
            error,
        }
    }

    fn failed(
        &self,
        target: Option<&Target>,
        attempts: Vec<Attempt>,
        err: &ApiError,
    ) -> GenerationRecord {
        let outcome = Outcome {
            finish_reason: Some("error".into()),
            ..Outcome::default()
        };
        self.record(
            target,
            &outcome,
            Usage::default(),
            Charge::default(),
            attempts,
            Duration::ZERO,
            false,
            Some(err.message.to_string()),
        )
    }
}
