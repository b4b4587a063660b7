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
//!   Vertex AI shape `/{upstream}/v1/projects/{p}/locations/{l}/publishers/google/models/...`;
//! - `POST /_sim/{upstream}/behaviour`, `POST /_sim/{upstream}/faults`,
//!   `GET /_sim/{upstream}/requests`, `DELETE /_sim/{upstream}`.

mod anthropic;
mod cohere;
mod connection;
mod control;
mod exchange;
mod gemini;
mod generate;
mod openai;
mod tokenizer;

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
        .fallback(openai::unknown_route)
        .with_state(sim)
}
