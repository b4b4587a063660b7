//! The provider simulator: one HTTP server hosting any number of named simulated LLM upstreams,
//! each created on first use and answering in a provider's own wire format, deterministically,
//! with usage from a fixed tokenizer, plus a control API to script behaviour and faults.
//!
//! Routes:
//! - OpenAI: `POST /{upstream}/v1/chat/completions`, `POST /{upstream}/v1/embeddings`,
//!   `GET /{upstream}/v1/models`;
//! - Anthropic: `POST /{upstream}/v1/messages`, `POST /{upstream}/v1/messages/count_tokens`;
//! - Cohere: `POST /{upstream}/v2/chat`, `POST /{upstream}/v2/embed`;
//! - Azure OpenAI: `POST /{upstream}/openai/deployments/{deployment}/chat/completions` and
//!   `.../embeddings` (with `?api-version=`);
//! - Gemini: `POST /{upstream}/v1beta/models/{model}:generateContent` (also
//!   `:streamGenerateContent`, `:countTokens`, `:embedContent`, `:batchEmbedContents`), and the
//!   Vertex AI shape `/{upstream}/v1/projects/{p}/locations/{l}/publishers/google/models/...`
//!   (with Vertex's `:predict` embeddings);
//! - Vertex AI: `POST /{upstream}/token` (service-account OAuth tokens, which every Vertex route
//!   then checks), Claude at `/{upstream}/v1/projects/{p}/locations/{l}/publishers/anthropic/
//!   models/{model}:rawPredict` (and `:streamRawPredict`), and the OpenAI-compatible
//!   `/{upstream}/v1/projects/{p}/locations/{l}/endpoints/openapi/chat/completions`;
//! - AWS Bedrock Runtime: `POST /{upstream}/model/{modelId}/converse`, `.../converse-stream`
//!   (a binary `application/vnd.amazon.eventstream`) and `.../invoke` (Titan and Cohere
//!   embeddings), with SigV4 or bearer credentials;
//! - `POST /_sim/{upstream}/behaviour`, `POST /_sim/{upstream}/faults`,
//!   `GET /_sim/{upstream}/requests`, `DELETE /_sim/{upstream}`, and `GET`/`POST
//!   /_sim/{upstream}/tokens` (Vertex AI access tokens issued).

mod anthropic;
mod bedrock;
mod cohere;
mod connection;
mod control;
mod exchange;
mod gemini;
mod generate;
mod openai;
mod tokenizer;
mod vertex;

use std::sync::Arc;

use axum::routing::{delete, get, post};
use axum::Router;

/// Serves the simulator on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connection::accept_loop(listener, router(), shutdown).await
}

fn router() -> Router {
    let sim = Arc::new(control::Sim::default());
    Router::new()
        .route("/_sim/{upstream}", delete(control::reset))
        .route("/_sim/{upstream}/behaviour", post(control::set_behaviour))
        .route("/_sim/{upstream}/faults", post(control::add_faults))
        .route("/_sim/{upstream}/requests", get(control::requests))
        .route(
            "/_sim/{upstream}/tokens",
            get(control::tokens).post(control::set_tokens),
        )
        .route(
            "/{upstream}/v1/chat/completions",
            post(openai::chat_completions),
        )
        .route("/{upstream}/v1/embeddings", post(openai::embeddings))
        .route("/{upstream}/v1/models", get(openai::models))
        .route("/{upstream}/v1/messages", post(anthropic::messages))
        .route(
            "/{upstream}/v1/messages/count_tokens",
            post(anthropic::count_tokens),
        )
        .route("/{upstream}/v2/chat", post(cohere::chat))
        .route("/{upstream}/v2/embed", post(cohere::embed))
        .route(
            "/{upstream}/openai/deployments/{deployment}/chat/completions",
            post(openai::azure::chat_completions),
        )
        .route(
            "/{upstream}/openai/deployments/{deployment}/embeddings",
            post(openai::azure::embeddings),
        )
        .merge(gemini::routes())
        .merge(bedrock::routes())
        .merge(vertex::routes())
        .fallback(openai::unknown_route)
        .with_state(sim)
}
