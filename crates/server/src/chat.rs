//! `POST /api/v1/chat/completions`: authenticate, validate, route, reserve, then try candidates in
//! order until one answers, and relay the answer (whole or as a stream) with accounting.
//!
//! Failover happens while the client has seen no generated content: before a non-streaming
//! response is sent, and in a stream until the first content chunk (keep-alive comments may have
//! committed the 200 by then; what an abandoned attempt sent is discarded). After content, an
//! upstream failure ends the stream with OpenRouter's mid-stream error chunk.
//!
//! Every attempt's outcome feeds the endpoint's live health ([`crate::health`]): failures can trip
//! its breaker or start a Retry-After cooldown, successes report time to first token and
//! throughput.

use crate::auth::{Need, Principal};
use crate::error::HttpError;
use crate::health::endpoint_key;
use crate::ledger::{Amounts, Reservation};
use crate::upstream::{self, Auth, Wire};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_core::catalog::Pricing;
use switchyard_core::catalog::Protocol;
use switchyard_core::chat::ChatRequest;
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::eventstream::{Decoder as EventDecoder, Message};
use switchyard_core::generation::{Attempt, GenerationRecord};
use switchyard_core::money::Money;
use switchyard_core::pricing::{self, Charge, Cost, Usage};
use switchyard_core::protocol::openai::{self, StreamStep};
use switchyard_core::protocol::{anthropic, bedrock, cohere, gemini};
use switchyard_core::protocol::{retryable_status, Outcome, Served};
use switchyard_core::routing::{self, ProviderPrefs, RouteRequest, Strategy};
use switchyard_core::sse::{SseItem, SseParser, DONE_FRAME, KEEPALIVE_FRAME};
use tokio::sync::{mpsc, oneshot};

/// One endpoint to try, with everything needed to call and bill it (owned: it outlives the handler).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) model_id: String,
    pub(crate) permaslug: String,
    pub(crate) provider_name: String,
    pub(crate) tag: String,
    pub(crate) upstream_model: String,
    pub(crate) pricing: Pricing,
    pub(crate) max_completion_tokens: Option<u64>,
    pub(crate) context_length: u64,
    pub(crate) url: String,
    pub(crate) auth: Auth,
    /// Served with the account's own credential for this provider.
    pub(crate) is_byok: bool,
    /// The endpoint's entry in the health book.
    pub(crate) health_key: String,
    /// The provider's protocol (which also decides how credentials are sent).
    pub(crate) protocol: Protocol,
    /// The wire format of this endpoint (a Vertex AI endpoint's depends on the model).
    pub(crate) wire: Wire,
}

/// The routing decision as dispatch uses it.
#[derive(Debug)]
pub(crate) struct Routed {
    pub(crate) targets: Vec<Target>,
    pub(crate) strategy: Strategy,
    /// Endpoints of the requested models at enabled providers, before filters.
    pub(crate) considered: usize,
}

/// Per-request facts that end up in the generation record.
#[derive(Debug, Clone)]
pub(crate) struct RequestCtx {
    pub(crate) generation_id: String,
    pub(crate) principal: Principal,
    pub(crate) started: Instant,
    pub(crate) created_at_ms: i64,
    pub(crate) http_referer: Option<String>,
    pub(crate) app_title: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) external_user: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) streamed: bool,
    /// `X-OpenRouter-Metadata: enabled`: explain the routing decision in the response.
    pub(crate) want_metadata: bool,
    /// The client's `anthropic-beta` (or `x-anthropic-beta`) features, for Anthropic upstreams.
    pub(crate) anthropic_beta: Option<String>,
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match dispatch(state, headers, body, Ingress::Chat).await {
        Ok(response) => response,
        Err(rejected) => rejected.into_response(),
    }
}

/// The request shape a client sent; the pipeline itself always works on a chat request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /messages`: Anthropic's shape, translated to a chat request first.
    Messages,
}

/// A request that failed before or instead of a response, with the generation id when a record
/// was written (the client can look it up).
#[derive(Debug)]
pub struct Rejected {
    pub err: ApiError,
    pub generation_id: Option<String>,
}

impl From<ApiError> for Rejected {
    fn from(err: ApiError) -> Rejected {
        Rejected {
            err,
            generation_id: None,
        }
    }
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        let mut response = HttpError(self.err).into_response();
        if let Some(id) = &self.generation_id {
            insert_generation_id(response.headers_mut(), id);
        }
        response
    }
}

/// Authenticates, reads and validates the request, routes it, reserves its worst case and runs
/// the attempts; the response is OpenAI-shaped (JSON or SSE) whatever the ingress.
pub async fn dispatch(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    ingress: Ingress,
) -> Result<Response, Rejected> {
    let started = Instant::now();
    let now_ms = state.now_ms();
    let principal = state
        .keys
        .authenticate(&state.store, &headers, Need::Inference, now_ms)
        .await?;
    let bytes = read_body(body, state.limits.max_body_bytes).await?;
    let bytes: Bytes = match ingress {
        Ingress::Chat => bytes,
        Ingress::Messages => Bytes::from(switchyard_core::messages::to_chat_request(&bytes)?),
    };
    let request = ChatRequest::parse(&bytes)?;
    check_allowed(&state, &principal, request.models())?;
    let key = &principal.key;
    let query = RouteQuery {
        models: request.models(),
        body: request.body(),
        prompt_tokens: request.prompt_estimate(),
        api: Api::Chat {
            stream: request.stream(),
        },
    };
    let routed = route(&state, &query, &key.account_id, now_ms).await?;
    let reservation = reserve(&state, key, &routed, now_ms, |t| {
        pricing::worst_case(
            &t.pricing,
            request.prompt_estimate(),
            reserved_output(&request, t),
        )
    })
    .await?;
    let mut ctx = RequestCtx::new(&state, principal, &headers, started, now_ms);
    ctx.external_user = request.str_field("user").map(str::to_owned);
    if let Some(session) = request.str_field("session_id") {
        ctx.session_id = Some(session.to_owned());
    }
    ctx.streamed = request.stream();
    let generation_id = ctx.generation_id.clone();
    let result = if request.stream() {
        start_stream(state, ctx, request, routed, reservation).await
    } else {
        // The generation runs to completion in its own task even if the client goes away: the
        // upstream bills it regardless, so it is recorded and charged like any other.
        let task = tokio::spawn(complete(state, ctx, request, routed, reservation));
        task.await
            .unwrap_or_else(|_| Err(ApiError::new(ErrorCode::Internal, "Request task failed")))
    };
    // Failed generations have a record too; the id lets the client look it up.
    result.map_err(|err| Rejected {
        err,
        generation_id: Some(generation_id),
    })
}

/// Holds the worst case over the candidates (`worst` of each, at its prices) against the account
/// and the key's limit, and counts the request against the rate limits.
pub(crate) async fn reserve(
    state: &AppState,
    key: &switchyard_store::KeyRow,
    routed: &Routed,
    now_ms: i64,
    worst: impl Fn(&Target) -> Money,
) -> Result<Reservation, ApiError> {
    // The worst case over the candidates, as the account pays it (a BYOK fee, or the full price)
    // and as it counts against the key's limit (plus the BYOK usage when the limit includes it).
    let mut amounts = Amounts {
        account: Money::ZERO,
        key: Money::ZERO,
    };
    for t in &routed.targets {
        let worst = worst(t);
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
    let free = routed.targets.iter().any(|t| t.model_id.ends_with(":free"));
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
    Ok(reservation)
}

impl RequestCtx {
    /// The request's facts from its headers; body-derived fields are the caller's to fill in.
    pub(crate) fn new(
        state: &AppState,
        principal: Principal,
        headers: &HeaderMap,
        started: Instant,
        now_ms: i64,
    ) -> RequestCtx {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        RequestCtx {
            generation_id: state.new_generation_id(now_ms),
            principal,
            started,
            created_at_ms: now_ms,
            http_referer: header("http-referer").or_else(|| header("referer")),
            app_title: header("x-openrouter-title").or_else(|| header("x-title")),
            user_agent: header("user-agent"),
            external_user: None,
            session_id: header("x-session-id"),
            streamed: false,
            want_metadata: header("x-openrouter-metadata")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("enabled")),
            anthropic_beta: header("x-anthropic-beta").or_else(|| header("anthropic-beta")),
        }
    }
}

/// Refuses models outside the key's allow-list (compared as requested and as resolved).
pub(crate) fn check_allowed(
    state: &AppState,
    principal: &Principal,
    models: &[String],
) -> Result<(), ApiError> {
    let Some(allowed) = &principal.key.allowed_models else {
        return Ok(());
    };
    for requested in models {
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
    pub(crate) async fn charge(&self, target: &Target, account_id: &str, cost: Cost) -> Charge {
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
    pub(crate) fn settle(
        &self,
        reservation: Reservation,
        ctx: &RequestCtx,
        usage: &Usage,
        charge: &Charge,
    ) {
        let now = self.now_ms();
        reservation.settle(charge.charged, charge.byok_usage(), now);
        let key = &ctx.principal.key;
        self.limiter
            .record_tokens(&key.hash, &key.account_id, usage.total_tokens(), now);
    }
}

/// The client's body, refusing more than `limit` bytes with 413.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
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
pub(crate) async fn route(
    state: &AppState,
    query: &RouteQuery<'_>,
    account_id: &str,
    now_ms: i64,
) -> Result<Routed, ApiError> {
    let body = query.body;
    let prefs = ProviderPrefs::parse_with_defaults(
        body.get("provider"),
        body.get("route"),
        state.routing.defaults_for(account_id),
    )?;
    let params: Vec<String> = body.keys().cloned().collect();
    // In its own scope: the view of the health book is not held across the awaits below.
    let plan = {
        let observed = state.health.at(now_ms);
        let route = RouteRequest {
            models: query.models,
            prefs: &prefs,
            params: &params,
            seed: rand::random(),
            prompt_tokens: query.prompt_tokens,
            observed: &observed,
            now_ms,
        };
        routing::plan(&state.catalog, &route, &|p| {
            state.upstreams.contains_key(&p.slug)
        })?
    };
    let mut targets = Vec::with_capacity(plan.candidates.len());
    for c in &plan.candidates {
        let Some(upstream) = state.upstreams.get(&c.provider.slug) else {
            continue;
        };
        let protocol = c.provider.protocol;
        let upstream_model = &c.endpoint.upstream_model;
        let region = upstream::region_of(protocol, upstream, &c.endpoint.tag, upstream_model);
        let target = Target {
            model_id: c.model.id.clone(),
            permaslug: c.model.canonical_slug.clone(),
            provider_name: c.provider.name.clone(),
            tag: c.endpoint.tag.clone(),
            upstream_model: c.endpoint.upstream_model.clone(),
            pricing: c.endpoint.pricing.clone(),
            max_completion_tokens: c.endpoint.max_completion_tokens,
            context_length: c.endpoint.context_length,
            url: upstream::endpoint_url(protocol, upstream, upstream_model, &region, query.api),
            protocol,
            wire: Wire::of(protocol, upstream_model),
            auth: Auth::of(upstream, &region),
            is_byok: false,
            health_key: endpoint_key(&c.model.id, &c.endpoint.tag),
        };
        if state.byok.enabled() {
            if let Some(own) = state
                .byok
                .credential(&state.store, account_id, &c.provider.slug)
                .await
            {
                targets.push(Target {
                    auth: Auth::byok(protocol, own.expose(), &region),
                    is_byok: true,
                    ..target.clone()
                });
            }
        }
        targets.push(target);
    }
    Ok(Routed {
        targets,
        strategy: plan.strategy,
        considered: plan.considered,
    })
}

/// What a request asks of the endpoints it is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    Chat { stream: bool },
    Embeddings,
}

/// What routing needs to know about a request, whichever endpoint it came to.
pub(crate) struct RouteQuery<'a> {
    /// Models in the order to try.
    pub(crate) models: &'a [String],
    /// The client's body: `provider`/`route` preferences, and its keys as parameters.
    pub(crate) body: &'a Map<String, Value>,
    /// Estimated prompt tokens: endpoints with a smaller context are left out.
    pub(crate) prompt_tokens: u64,
    pub(crate) api: Api,
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

/// Output tokens the reservation must cover: [`max_output`], except that Anthropic's thinking
/// budget comes on top of the client's cap (the translator raises `max_tokens` for it, up to
/// the endpoint's maximum).
fn reserved_output(request: &ChatRequest, target: &Target) -> u64 {
    let reasoning = ["reasoning", "reasoning_effort", "include_reasoning"]
        .iter()
        .any(|f| request.body().get(*f).is_some_and(|v| !v.is_null()));
    // Claude on Bedrock raises `maxTokens` for thinking the same way.
    let claude = target.wire.is_anthropic()
        || (target.wire == Wire::Bedrock && target.upstream_model.contains("anthropic."));
    if reasoning && claude {
        let endpoint_max = target.max_completion_tokens.unwrap_or_else(|| {
            target
                .context_length
                .saturating_sub(request.prompt_estimate())
        });
        return endpoint_max.max(max_output(request, target));
    }
    max_output(request, target)
}

/// Why one attempt failed.
pub(crate) struct Failure {
    pub(crate) err: ApiError,
    kind: FailureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// The provider's fault (429, 5xx, timeout, connection, unreadable answer): try the next one.
    Provider,
    /// The provider says the prompt is too long: only a larger context may take it.
    ContextLength,
    /// The provider refused the provider's credential (401/402/403): try the next endpoint, but
    /// with an account's own key it says nothing about the endpoint's health.
    Credential,
    /// The request itself is wrong; it would fail anywhere.
    Request,
}

impl Failure {
    pub(crate) fn provider(err: ApiError) -> Failure {
        Failure {
            err,
            kind: FailureKind::Provider,
        }
    }
}

/// The attempts of one request: which endpoints may still be tried, and what happened so far.
pub(crate) struct Dispatch<'s> {
    state: &'s AppState,
    pub(crate) attempts: Vec<Attempt>,
    last_err: Option<ApiError>,
    /// After a context-length rejection, only endpoints with more context than this are tried.
    min_context: Option<u64>,
    pub(crate) stopped: bool,
}

impl<'s> Dispatch<'s> {
    pub(crate) fn new(state: &'s AppState) -> Dispatch<'s> {
        Dispatch {
            state,
            attempts: Vec::new(),
            last_err: None,
            min_context: None,
            stopped: false,
        }
    }

    /// Whether `target` may be tried now (this grants a half-open endpoint's single probe).
    pub(crate) fn begin(&self, target: &Target) -> bool {
        if self.min_context.is_some_and(|c| target.context_length <= c) {
            return false;
        }
        self.state
            .health
            .try_begin(&target.health_key, self.state.now_ms())
    }

    /// Records a failed attempt; afterwards `stopped` says whether to give up.
    pub(crate) fn failed(&mut self, target: &Target, failure: Failure) {
        let now = self.state.now_ms();
        match failure.kind {
            FailureKind::Provider => {
                let retry_after = failure.err.retry_after.map(|s| s.saturating_mul(1000));
                self.state
                    .health
                    .failure(&target.health_key, now, retry_after);
            }
            FailureKind::Credential if !target.is_byok => {
                self.state.health.failure(&target.health_key, now, None);
            }
            FailureKind::Credential => {}
            FailureKind::ContextLength => {
                self.min_context = Some(self.min_context.unwrap_or(0).max(target.context_length));
            }
            FailureKind::Request => self.stopped = true,
        }
        tracing::warn!(
            provider = %target.provider_name, endpoint = %target.tag,
            error = %failure.err.message, "upstream attempt failed"
        );
        self.last_err = Some(failure.err);
    }

    /// A successful generation: its speed goes into the endpoint's statistics.
    pub(crate) fn succeeded(
        &self,
        target: &Target,
        ttft: Duration,
        output_tokens: u64,
        generating: Duration,
    ) {
        let tokens_per_s = (output_tokens > 0 && generating > Duration::from_millis(1))
            .then(|| output_tokens as f64 / generating.as_secs_f64());
        self.state.health.success(
            &target.health_key,
            self.state.now_ms(),
            Some(ttft.as_secs_f64() * 1000.0),
            tokens_per_s,
        );
    }

    /// The error for the client once nothing is left to try.
    pub(crate) fn error(&mut self) -> ApiError {
        self.last_err.take().unwrap_or_else(|| {
            let mut err = ApiError::new(
                ErrorCode::UpstreamOverloaded,
                "No provider could take the request right now; retry shortly",
            );
            err.retry_after = Some(1);
            err
        })
    }

    /// Marks the last attempt as failed after its 2xx headers (an unreadable or broken body).
    pub(crate) fn broken_body(&mut self) {
        if let Some(a) = self.attempts.last_mut() {
            a.status = Some(502);
        }
    }
}

/// The upstream request for `target`'s wire format: its body and its static headers.
fn upstream_request(
    state: &AppState,
    ctx: &RequestCtx,
    target: &Target,
    request: &ChatRequest,
) -> Result<reqwest::RequestBuilder, ApiError> {
    let builder = post_json(state, target);
    let max = || max_output(request, target);
    let model = &target.upstream_model;
    Ok(match target.wire {
        Wire::Anthropic | Wire::VertexAnthropic => {
            let mut builder = if target.wire == Wire::Anthropic {
                builder
                    .header("anthropic-version", anthropic::ANTHROPIC_VERSION)
                    .body(anthropic::request_body(request, model, max())?)
            } else {
                builder.body(anthropic::vertex_request_body(request, max())?)
            };
            let mut betas: Vec<String> = ctx.anthropic_beta.iter().cloned().collect();
            betas.extend(
                anthropic::beta_headers(request)
                    .iter()
                    .map(|b| b.to_string()),
            );
            if !betas.is_empty() {
                builder = builder.header("anthropic-beta", betas.join(","));
            }
            builder
        }
        Wire::Gemini => builder.body(gemini::request_body(request, model, max())?),
        Wire::Cohere => builder.body(cohere::request_body(request, model, max())?),
        Wire::Bedrock => builder.body(bedrock::request_body(request, model, max())?),
        Wire::OpenAi => builder.body(openai::request_body(request, model)),
    })
}

/// A POST of JSON to `target`'s URL, with its static credential as its protocol expects it.
pub(crate) fn post_json(state: &AppState, target: &Target) -> reqwest::RequestBuilder {
    let builder = state
        .client
        .post(&target.url)
        .header(header::CONTENT_TYPE, "application/json");
    upstream::authorize(builder, target.protocol, &target.auth)
}

/// Sends the chat request to one target and returns the response if its status is a success.
async fn send(
    state: &AppState,
    ctx: &RequestCtx,
    target: &Target,
    request: &ChatRequest,
    attempts: &mut Vec<Attempt>,
) -> Result<reqwest::Response, Failure> {
    let built = upstream_request(state, ctx, target, request).map(|builder| {
        if request.stream() && target.wire != Wire::Bedrock {
            builder.header(header::ACCEPT, "text/event-stream")
        } else {
            builder
        }
    });
    send_request(state, target, built, attempts).await
}

/// Sends a built request (or fails the attempt with the error of building it) and returns the
/// response if its status is a success; every attempt is appended to `attempts`.
pub(crate) async fn send_request(
    state: &AppState,
    target: &Target,
    built: Result<reqwest::RequestBuilder, ApiError>,
    attempts: &mut Vec<Attempt>,
) -> Result<reqwest::Response, Failure> {
    let started = Instant::now();
    let builder = match built {
        Ok(builder) => builder,
        Err(err) => {
            return Err(Failure {
                err,
                kind: FailureKind::Request,
            })
        }
    };
    let mut attempt = Attempt {
        provider_name: target.provider_name.clone(),
        endpoint_tag: target.tag.clone(),
        model_permaslug: target.permaslug.clone(),
        model_id: target.model_id.clone(),
        status: None,
        latency_ms: 0,
        upstream_id: None,
        is_byok: target.is_byok,
    };
    let request = match upstream::finish(&state.client, builder, &target.auth).await {
        Ok(request) => request,
        Err(e) => {
            attempt.latency_ms = started.elapsed().as_millis() as u64;
            attempts.push(attempt);
            tracing::warn!(provider = %target.provider_name, error = %e, "upstream credential unavailable");
            let err = provider_failure(
                ErrorCode::UpstreamError,
                "The gateway could not authenticate with the provider",
                target,
            );
            return Err(Failure {
                err,
                kind: FailureKind::Credential,
            });
        }
    };
    let google_token = upstream::google_token(&target.auth, &request);
    let result = tokio::time::timeout(
        state.limits.first_byte_timeout,
        state.client.execute(request),
    )
    .await;
    attempt.latency_ms = started.elapsed().as_millis() as u64;
    let failure = match result {
        Err(_) => Failure::provider(provider_failure(
            ErrorCode::UpstreamTimeout,
            "Provider timed out",
            target,
        )),
        Ok(Err(e)) => Failure::provider(provider_failure(
            ErrorCode::UpstreamError,
            if e.is_connect() {
                "Could not connect to the provider"
            } else {
                "The provider closed the connection"
            },
            target,
        )),
        Ok(Ok(response)) if response.status().is_success() => {
            attempt.status = Some(response.status().as_u16());
            attempts.push(attempt);
            return Ok(response);
        }
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            attempt.status = Some(status);
            if status == 401 {
                upstream::refused(&target.auth, google_token.as_deref());
            }
            // Bedrock names its error in a header, not the body.
            let error_type = response
                .headers()
                .get(bedrock::ERROR_TYPE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| s.ceil() as u64);
            let body = tokio::time::timeout(state.limits.idle_timeout, response.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            let err = upstream::upstream_error(
                target.wire,
                &target.provider_name,
                status,
                error_type.as_deref(),
                &body,
                retry_after,
            );
            // The mapped code decides over the raw status where they differ: Gemini reports a
            // bad key as 400, Cohere uses 498 for one.
            let kind = if err.code == ErrorCode::ContextLengthExceeded {
                FailureKind::ContextLength
            } else if matches!(status, 401..=403 | 498) {
                FailureKind::Credential
            } else if retryable_status(status)
                || matches!(
                    err.code,
                    ErrorCode::UpstreamError
                        | ErrorCode::UpstreamOverloaded
                        | ErrorCode::UpstreamTimeout
                        | ErrorCode::RateLimited
                )
            {
                FailureKind::Provider
            } else {
                FailureKind::Request
            };
            Failure { err, kind }
        }
    };
    attempts.push(attempt);
    Err(failure)
}

pub(crate) fn provider_failure(
    code: ErrorCode,
    message: &'static str,
    target: &Target,
) -> ApiError {
    ApiError::new(code, message)
        .with_metadata("provider_name", json!(target.provider_name))
        .with_metadata("error_type", json!(code.error_type()))
}

/// A 2xx upstream body, read whole within the idle timeout.
pub(crate) async fn whole_body(
    state: &AppState,
    target: &Target,
    response: reqwest::Response,
) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(state.limits.idle_timeout, response.bytes()).await {
        Ok(Ok(bytes)) => Ok(bytes),
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
    }
}

/// Non-streaming: try targets until one returns a readable response, then bill and answer.
async fn complete(
    state: Arc<AppState>,
    ctx: RequestCtx,
    request: ChatRequest,
    routed: Routed,
    reservation: Reservation,
) -> Result<Response, ApiError> {
    let mut d = Dispatch::new(&state);
    for target in &routed.targets {
        if d.stopped {
            break;
        }
        if !d.begin(target) {
            continue;
        }
        let sent = Instant::now();
        let response = match send(&state, &ctx, target, &request, &mut d.attempts).await {
            Ok(r) => r,
            Err(f) => {
                d.failed(target, f);
                continue;
            }
        };
        let first_byte = Instant::now();
        let parsed = whole_body(&state, target, response)
            .await
            .and_then(|bytes| match target.wire {
                Wire::Anthropic | Wire::VertexAnthropic => {
                    anthropic::parse_response(&bytes, &request)
                }
                Wire::Gemini => gemini::parse_response(&bytes, &request),
                Wire::Cohere => cohere::parse_response(&bytes, &request),
                Wire::Bedrock => bedrock::parse_response(&bytes, &request),
                Wire::OpenAi => openai::parse_response(&bytes),
            });
        let (mut body, outcome) = match parsed {
            Ok(ok) => ok,
            Err(err) => {
                d.broken_body();
                let err = err.with_metadata("provider_name", json!(target.provider_name));
                d.failed(target, Failure::provider(err));
                continue;
            }
        };
        if let Some(a) = d.attempts.last_mut() {
            a.upstream_id = outcome.upstream_id.clone();
        }
        let generated = openai::generated_text_len(&body);
        let usage = outcome
            .usage
            .unwrap_or_else(|| estimated_usage(&request, generated));
        d.succeeded(
            target,
            first_byte - sent,
            usage.completion_tokens,
            sent.elapsed(),
        );
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
        if ctx.want_metadata {
            body.insert(
                "openrouter_metadata".into(),
                metadata(&request, &routed, &d.attempts, target),
            );
        }
        let bytes = openai::render_response(body, &served, &usage, &charge);
        let generation_time = first_byte.elapsed();
        state.recorder.record(ctx.record(
            Some(target),
            &outcome,
            usage,
            charge,
            d.attempts,
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
    let err = d.error();
    state
        .recorder
        .record(ctx.failed(routed.targets.last(), std::mem::take(&mut d.attempts), &err));
    Err(err)
}

/// `openrouter_metadata`: how the request was routed and what each attempt did.
fn metadata(
    request: &ChatRequest,
    routed: &Routed,
    attempts: &[Attempt],
    served: &Target,
) -> Value {
    let requested = request.models().first().map(String::as_str).unwrap_or("");
    let strategy = if request.models().len() > 1 {
        "fallback"
    } else {
        "direct"
    };
    let ordering = match routed.strategy {
        Strategy::LoadBalanced => "load-balanced by price",
        Strategy::Sorted => "sorted",
    };
    let available: Vec<Value> = routed
        .targets
        .iter()
        .map(|t| {
            json!({
                "provider": t.provider_name,
                "model": t.model_id,
                "selected": std::ptr::eq(t, served),
            })
        })
        .collect();
    let tried: Vec<Value> = attempts
        .iter()
        .map(|a| {
            // Transport failures have no HTTP status: report them as the gateway saw them.
            json!({"provider": a.provider_name, "model": a.model_id, "status": a.status.unwrap_or(502)})
        })
        .collect();
    json!({
        "requested": requested,
        "strategy": strategy,
        "region": null,
        "summary": format!(
            "available={}, considered={}, {ordering}, selected={}, attempts={}",
            routed.targets.len(),
            routed.considered,
            served.provider_name,
            attempts.len()
        ),
        "attempt": attempts.len(),
        "is_byok": served.is_byok,
        "endpoints": {"total": routed.considered, "available": available},
        "attempts": tried,
    })
}

/// The client's side of a stream: not yet committed (the handler still waits for a go or an
/// error), then a channel of frames.
struct ClientLink {
    commit: Option<oneshot::Sender<Result<(), ApiError>>>,
    tx: mpsc::Sender<Bytes>,
}

impl ClientLink {
    /// Commits the 200 SSE response (once); false when the client is gone.
    fn commit(&mut self) -> bool {
        match self.commit.take() {
            Some(go) => go.send(Ok(())).is_ok(),
            None => true,
        }
    }

    /// Sends a frame, committing first; false when the client is gone.
    async fn send(&mut self, bytes: Bytes) -> bool {
        self.commit() && self.tx.send(bytes).await.is_ok()
    }
}

/// Streaming: run the attempts in a task; the response is committed at the first content (or
/// the first keep-alive), and a failure before that is an ordinary JSON error.
async fn start_stream(
    state: Arc<AppState>,
    ctx: RequestCtx,
    request: ChatRequest,
    routed: Routed,
    reservation: Reservation,
) -> Result<Response, ApiError> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let (go, started) = oneshot::channel();
    let generation_id = ctx.generation_id.clone();
    let link = ClientLink {
        commit: Some(go),
        tx,
    };
    tokio::spawn(stream_attempts(
        state,
        ctx,
        request,
        routed,
        reservation,
        link,
    ));
    match started.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(err),
        Err(_) => return Err(ApiError::new(ErrorCode::Internal, "Stream task failed")),
    }
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

/// How one streamed attempt ended.
enum End {
    /// The upstream finished the answer.
    Complete,
    /// Failed after content reached the client.
    Failed(ApiError),
    /// Failed before any content: the next endpoint may take over.
    BeforeContent(ApiError),
    /// The client went away.
    Cancelled,
}

/// Tries the targets in order for a streamed request, relaying the first that produces content.
async fn stream_attempts(
    state: Arc<AppState>,
    ctx: RequestCtx,
    request: ChatRequest,
    routed: Routed,
    reservation: Reservation,
    mut link: ClientLink,
) {
    let mut d = Dispatch::new(&state);
    let mut keepalive = tokio::time::interval_at(
        tokio::time::Instant::now() + state.limits.keepalive,
        state.limits.keepalive,
    );
    for target in &routed.targets {
        if d.stopped {
            break;
        }
        if !d.begin(target) {
            continue;
        }
        let sent = Instant::now();
        // Waiting for the headers: keep-alives keep the client (and proxies) patient.
        let upstream = {
            let sending = send(&state, &ctx, target, &request, &mut d.attempts);
            tokio::pin!(sending);
            loop {
                tokio::select! {
                    result = &mut sending => break Some(result),
                    _ = keepalive.tick() => {
                        if !link.send(Bytes::from_static(KEEPALIVE_FRAME)).await {
                            break None;
                        }
                    }
                }
            }
        };
        let upstream = match upstream {
            None => return cancelled(&state, &ctx, reservation, d.attempts),
            Some(Err(f)) => {
                d.failed(target, f);
                continue;
            }
            Some(Ok(upstream)) => upstream,
        };
        let mut relay = Relay::new(&ctx, target, &request, sent);
        let end = relay.run(&state, upstream, &mut link, &mut keepalive).await;
        match end {
            End::BeforeContent(err) => {
                d.broken_body();
                d.failed(target, Failure::provider(err));
                continue;
            }
            End::Cancelled if !relay.translator.content_sent() => {
                return cancelled(&state, &ctx, reservation, d.attempts)
            }
            end => {
                return relay
                    .finish(&state, &ctx, &request, &routed, d, end, reservation, link)
                    .await
            }
        }
    }
    drop(reservation);
    let err = d.error();
    let last = routed.targets.last();
    state
        .recorder
        .record(ctx.failed(last, std::mem::take(&mut d.attempts), &err));
    match link.commit.take() {
        // Nothing sent yet: the handler answers with a plain JSON error.
        Some(go) => {
            let _ = go.send(Err(err));
        }
        // Keep-alives committed the 200: end the stream with the error chunk.
        None => {
            if let Some(target) = last {
                let relay = Relay::new(&ctx, target, &request, Instant::now());
                let _ = link
                    .tx
                    .send(Bytes::from(relay.translator.error_frame(&err)))
                    .await;
            }
        }
    }
}

/// The client left before any content: nothing was generated for it, so nothing is charged.
fn cancelled(state: &AppState, ctx: &RequestCtx, reservation: Reservation, attempts: Vec<Attempt>) {
    drop(reservation);
    state.recorder.record(ctx.record(
        None,
        &Outcome::default(),
        Usage::default(),
        Charge::default(),
        attempts,
        Duration::ZERO,
        true,
        None,
    ));
}

/// How an upstream frames its stream: SSE, or AWS's binary event stream (Bedrock).
enum Framing {
    Sse(SseParser),
    Events(EventDecoder),
}

/// The stream translator of the serving endpoint's protocol.
enum Translator {
    OpenAi(openai::StreamTranslator),
    Anthropic(anthropic::StreamTranslator),
    Gemini(gemini::StreamTranslator),
    Cohere(cohere::StreamTranslator),
    Bedrock(bedrock::StreamTranslator),
}

/// Calls the same method on whichever translator it is.
macro_rules! each {
    ($self:expr, $t:ident => $call:expr) => {
        match $self {
            Translator::OpenAi($t) => $call,
            Translator::Anthropic($t) => $call,
            Translator::Gemini($t) => $call,
            Translator::Cohere($t) => $call,
            Translator::Bedrock($t) => $call,
        }
    };
}

impl Translator {
    fn new(served: &Served<'_>, wire: Wire, req: &ChatRequest) -> Translator {
        match wire {
            Wire::Anthropic | Wire::VertexAnthropic => {
                Translator::Anthropic(anthropic::StreamTranslator::new(served, req))
            }
            Wire::Gemini => Translator::Gemini(gemini::StreamTranslator::new(served, req)),
            Wire::Cohere => Translator::Cohere(cohere::StreamTranslator::new(served, req)),
            Wire::Bedrock => Translator::Bedrock(bedrock::StreamTranslator::new(served, req)),
            Wire::OpenAi => Translator::OpenAi(openai::StreamTranslator::new(served)),
        }
    }

    /// One SSE event's data (every wire format but Bedrock's).
    fn on_data(&mut self, data: &str) -> Result<StreamStep, ApiError> {
        match self {
            Translator::OpenAi(t) => t.on_data(data),
            Translator::Anthropic(t) => t.on_data(data),
            Translator::Gemini(t) => t.on_data(data),
            Translator::Cohere(t) => t.on_data(data),
            Translator::Bedrock(_) => Err(ApiError::new(
                ErrorCode::UpstreamError,
                "Bedrock streams are event-stream messages, not SSE",
            )),
        }
    }

    /// One binary event-stream message (Bedrock's streams).
    fn on_message(&mut self, message: &Message) -> Result<StreamStep, ApiError> {
        match self {
            Translator::Bedrock(t) => t.on_message(message),
            _ => Err(ApiError::new(
                ErrorCode::UpstreamError,
                "Only Bedrock streams are event-stream messages",
            )),
        }
    }

    fn content_sent(&self) -> bool {
        each!(self, t => t.content_sent())
    }

    fn outcome(&self) -> &Outcome {
        each!(self, t => t.outcome())
    }

    fn generated_bytes(&self) -> usize {
        each!(self, t => t.generated_bytes())
    }

    fn usage_frame(&self, usage: &Usage, charge: &Charge, metadata: Option<Value>) -> Vec<u8> {
        each!(self, t => t.usage_frame(usage, charge, metadata))
    }

    fn error_frame(&self, err: &ApiError) -> Vec<u8> {
        each!(self, t => t.error_frame(err))
    }
}

/// One streamed attempt: translates upstream events and relays them, holding them back until
/// the first content so that an attempt failing before it can be discarded.
struct Relay<'t> {
    target: &'t Target,
    translator: Translator,
    sent: Instant,
    first_content: Option<Instant>,
    held: Vec<u8>,
}

impl<'t> Relay<'t> {
    fn new(ctx: &RequestCtx, target: &'t Target, req: &ChatRequest, sent: Instant) -> Relay<'t> {
        let served = Served {
            generation_id: &ctx.generation_id,
            model: &target.model_id,
            provider_name: &target.provider_name,
            created: ctx.created_at_ms / 1000,
        };
        Relay {
            target,
            translator: Translator::new(&served, target.wire, req),
            sent,
            first_content: None,
            held: Vec::new(),
        }
    }

    /// A failure, classified by whether the client has seen content.
    fn fail(&self, code: ErrorCode, message: &'static str) -> End {
        self.failed(provider_failure(code, message, self.target))
    }

    fn failed(&self, err: ApiError) -> End {
        if self.translator.content_sent() {
            End::Failed(err)
        } else {
            End::BeforeContent(err)
        }
    }

    async fn run(
        &mut self,
        state: &AppState,
        upstream: reqwest::Response,
        link: &mut ClientLink,
        keepalive: &mut tokio::time::Interval,
    ) -> End {
        let mut framing = if self.target.wire == Wire::Bedrock {
            Framing::Events(EventDecoder::new())
        } else {
            Framing::Sse(SseParser::new())
        };
        let mut body = upstream.bytes_stream();
        // Until content, the first-byte timeout (counted from the request) applies; then idle gaps.
        let mut deadline =
            tokio::time::Instant::from_std(self.sent) + state.limits.first_byte_timeout;
        let idle = state.limits.idle_timeout;
        loop {
            let committed = link.commit.is_none();
            tokio::select! {
                _ = link.tx.closed(), if committed => return End::Cancelled,
                _ = keepalive.tick(), if !self.translator.content_sent() => {
                    if !link.send(Bytes::from_static(KEEPALIVE_FRAME)).await {
                        return End::Cancelled;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    let message = if self.translator.content_sent() {
                        "Provider stopped sending (idle timeout)"
                    } else {
                        "Provider timed out before the first token"
                    };
                    return self.fail(ErrorCode::UpstreamTimeout, message);
                }
                chunk = body.next() => {
                    let bytes = match chunk {
                        None => {
                            // Some upstreams end without `[DONE]` or the final blank line.
                            if let Framing::Sse(parser) = &mut framing {
                                if let Some(SseItem::Event { data, .. }) = parser.finish() {
                                    let step = self.translator.on_data(&data);
                                    if let Some(end) = self.forward(link, step).await {
                                        return end;
                                    }
                                }
                            }
                            // A finish reason means the answer is whole.
                            if self.translator.outcome().finish_reason.is_some() {
                                return self.complete(link).await;
                            }
                            return self.fail(ErrorCode::UpstreamError, "The provider ended the stream early");
                        }
                        Some(Err(_)) => return self.fail(ErrorCode::UpstreamError, "The provider connection was lost mid-stream"),
                        Some(Ok(bytes)) => bytes,
                    };
                    match &mut framing {
                        Framing::Sse(parser) => {
                            parser.push(&bytes);
                            while let Some(item) = parser.next_item() {
                                let SseItem::Event { data, .. } = item else { continue };
                                let step = self.translator.on_data(&data);
                                if let Some(end) = self.forward(link, step).await {
                                    return end;
                                }
                            }
                        }
                        Framing::Events(decoder) => {
                            decoder.push(&bytes);
                            loop {
                                let step = match decoder.next_message() {
                                    Ok(Some(message)) => self.translator.on_message(&message),
                                    Ok(None) => break,
                                    Err(_) => return self.fail(
                                        ErrorCode::UpstreamError,
                                        "The provider sent a malformed event stream",
                                    ),
                                };
                                if let Some(end) = self.forward(link, step).await {
                                    return end;
                                }
                            }
                        }
                    }
                    if self.translator.content_sent() {
                        deadline = tokio::time::Instant::now() + idle;
                    }
                }
            }
        }
    }

    /// Translates one upstream event; `Some` when the attempt is over.
    async fn forward(
        &mut self,
        link: &mut ClientLink,
        step: Result<StreamStep, ApiError>,
    ) -> Option<End> {
        match step {
            Ok(StreamStep::Frame(frame)) => {
                if !self.translator.content_sent() {
                    self.held.extend_from_slice(&frame);
                    return None;
                }
                if self.first_content.is_none() {
                    self.first_content = Some(Instant::now());
                    self.held.extend_from_slice(&frame);
                    let held = std::mem::take(&mut self.held);
                    return (!link.send(Bytes::from(held)).await).then_some(End::Cancelled);
                }
                (!link.send(Bytes::from(frame)).await).then_some(End::Cancelled)
            }
            Ok(StreamStep::Nothing) => None,
            Ok(StreamStep::Done) => Some(self.complete(link).await),
            Err(err) => Some(self.failed(err)),
        }
    }

    /// The upstream finished; an answer without content still goes out whole.
    async fn complete(&mut self, link: &mut ClientLink) -> End {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            if !link.send(Bytes::from(held)).await {
                return End::Cancelled;
            }
        }
        End::Complete
    }

    /// Bills what was generated, sends the tail (usage or error chunk), and records the generation.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        self,
        state: &AppState,
        ctx: &RequestCtx,
        request: &ChatRequest,
        routed: &Routed,
        mut d: Dispatch<'_>,
        end: End,
        reservation: Reservation,
        mut link: ClientLink,
    ) {
        let target = self.target;
        let outcome = self.translator.outcome().clone();
        if let Some(a) = d.attempts.last_mut() {
            a.upstream_id = outcome.upstream_id.clone();
        }
        let usage = match (&end, outcome.usage) {
            (End::Complete, Some(usage)) => usage,
            _ => estimated_usage(request, self.translator.generated_bytes()),
        };
        let first = self.first_content.unwrap_or_else(Instant::now);
        match &end {
            End::Complete => d.succeeded(
                target,
                first - self.sent,
                usage.completion_tokens,
                first.elapsed(),
            ),
            // A stream broken after content is the provider's failure all the same.
            End::Failed(_) => d
                .state
                .health
                .failure(&target.health_key, state.now_ms(), None),
            _ => {}
        }
        let charge = state
            .charge(
                target,
                &ctx.principal.key.account_id,
                pricing::cost(&target.pricing, &usage),
            )
            .await;
        state.settle(reservation, ctx, &usage, &charge);
        let generation_time = first.elapsed();
        let (cancelled, error) = match &end {
            End::Complete => {
                let meta = ctx
                    .want_metadata
                    .then(|| metadata(request, routed, &d.attempts, target));
                let mut tail = self.translator.usage_frame(&usage, &charge, meta);
                tail.extend_from_slice(DONE_FRAME);
                let _ = link.send(Bytes::from(tail)).await;
                (false, None)
            }
            End::Failed(err) | End::BeforeContent(err) => {
                let _ = link
                    .send(Bytes::from(self.translator.error_frame(err)))
                    .await;
                (false, Some(err.message.to_string()))
            }
            End::Cancelled => (true, None),
        };
        let mut outcome = outcome;
        if error.is_some() {
            outcome.finish_reason = Some("error".into());
        }
        state.recorder.record(ctx.record(
            Some(target),
            &outcome,
            usage,
            charge,
            d.attempts,
            generation_time,
            cancelled,
            error,
        ));
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

pub(crate) fn insert_generation_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("x-generation-id", value);
    }
}

impl RequestCtx {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
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

    pub(crate) fn failed(
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
