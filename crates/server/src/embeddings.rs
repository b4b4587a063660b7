//! `POST /api/v1/embeddings`: authenticate, validate, route to the catalog's embedding endpoints,
//! reserve the prompt's worst case, try candidates in order until one answers, then charge the
//! real usage, record the generation and answer in OpenRouter's shape.
//!
//! The machinery is chat's ([`crate::chat`]): routing, reservation, `Dispatch` (health, breakers,
//! failover), sending and the generation record; only the bodies differ
//! ([`switchyard_core::embeddings`]).

use crate::auth::Need;
use crate::chat::{
    self, post_json, send_request, whole_body, Api, Dispatch, Failure, RequestCtx, RouteQuery,
    Routed,
};
use crate::ledger::Reservation;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_core::embeddings::{self, EmbeddingsRequest};
use switchyard_core::error::{ApiError, ErrorCode};
use switchyard_core::pricing;
use switchyard_core::protocol::{usage_json, Outcome};
use switchyard_core::routing;

pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match handle(state, headers, body).await {
        Ok(response) => response,
        Err(rejected) => rejected.into_response(),
    }
}

async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, chat::Rejected> {
    let started = Instant::now();
    let now_ms = state.now_ms();
    let principal = state
        .keys
        .authenticate(&state.store, &headers, Need::Inference, now_ms)
        .await?;
    let bytes = chat::read_body(body, state.limits.max_body_bytes).await?;
    let request = EmbeddingsRequest::parse(&bytes)?;
    check_embedding_models(&state, request.models())?;
    chat::check_allowed(&state, &principal, request.models())?;
    let key = &principal.key;
    let query = RouteQuery {
        models: request.models(),
        body: request.body(),
        // Each input must fit the endpoint's context on its own.
        prompt_tokens: request.longest_input_estimate(),
        api: Api::Embeddings,
    };
    let routed = chat::route(&state, &query, &key.account_id, now_ms).await?;
    let reservation = chat::reserve(&state, key, &routed, now_ms, |t| {
        pricing::worst_case(&t.pricing, request.prompt_estimate(), 0)
    })
    .await?;
    let mut ctx = RequestCtx::new(&state, principal, &headers, started, now_ms);
    ctx.external_user = request.str_field("user").map(str::to_owned);
    let generation_id = ctx.generation_id.clone();
    // Runs to completion even if the client goes away: the upstream bills it regardless.
    let task = tokio::spawn(complete(state, ctx, request, routed, reservation));
    let result = task
        .await
        .unwrap_or_else(|_| Err(ApiError::new(ErrorCode::Internal, "Request task failed")));
    result.map_err(|err| chat::Rejected {
        err,
        generation_id: Some(generation_id),
    })
}

/// Refuses models the catalog knows but that make no embeddings (chat models); unknown models
/// are left to routing's 404.
fn check_embedding_models(state: &AppState, models: &[String]) -> Result<(), ApiError> {
    for requested in models {
        let Some(model) = routing::resolve_model(&state.catalog, requested) else {
            continue;
        };
        let embeds = model
            .architecture
            .output_modalities
            .iter()
            .any(|m| m == "embeddings");
        if !embeds {
            return Err(ApiError::invalid(format!(
                "{requested} is not an embedding model; see /api/v1/embeddings/models for those that are"
            )));
        }
    }
    Ok(())
}

/// Tries targets until one returns readable embeddings, then bills, records and answers.
async fn complete(
    state: Arc<AppState>,
    ctx: RequestCtx,
    request: EmbeddingsRequest,
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
        let built = embeddings::request_body(&request, target.protocol, &target.upstream_model)
            .map(|body| post_json(&state, target).body(body));
        let response = match send_request(&state, target, built, &mut d.attempts).await {
            Ok(r) => r,
            Err(f) => {
                d.failed(target, f);
                continue;
            }
        };
        let first_byte = Instant::now();
        let parsed = whole_body(&state, target, response)
            .await
            .and_then(|bytes| embeddings::parse_response(target.protocol, &bytes, &request));
        let answer = match parsed {
            Ok(answer) => answer,
            Err(err) => {
                d.broken_body();
                let err = err.with_metadata("provider_name", json!(target.provider_name));
                d.failed(target, Failure::provider(err));
                continue;
            }
        };
        if let Some(a) = d.attempts.last_mut() {
            a.upstream_id = answer.upstream_id.clone();
        }
        d.succeeded(target, first_byte - sent, 0, sent.elapsed());
        let usage = answer.usage;
        let cost = pricing::cost(&target.pricing, &usage);
        let charge = state
            .charge(target, &ctx.principal.key.account_id, cost)
            .await;
        state.settle(reservation, &ctx, &usage, &charge);
        let bytes = embeddings::render(
            answer.vectors,
            request.encoding(),
            &target.model_id,
            &target.provider_name,
            &ctx.generation_id,
            usage_json(&usage, &charge),
        );
        let outcome = Outcome {
            usage: Some(usage),
            upstream_id: answer.upstream_id,
            ..Outcome::default()
        };
        state.recorder.record(ctx.record(
            Some(target),
            &outcome,
            usage,
            charge,
            d.attempts,
            Duration::ZERO,
            false,
            None,
        ));
        let mut response = (StatusCode::OK, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        chat::insert_generation_id(headers, &ctx.generation_id);
        return Ok(response);
    }
    drop(reservation);
    let err = d.error();
    state
        .recorder
        .record(ctx.failed(routed.targets.last(), std::mem::take(&mut d.attempts), &err));
    Err(err)
}
