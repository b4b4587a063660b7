//! Switchyard's pure core: everything that can be decided without IO.
//!
//! - [`error`]: the stable error-code table and OpenRouter's error envelope.
//! - [`money`]: exact money (nano-dollar amounts, pico-dollar prices).
//! - [`catalog`]: providers, models, endpoints and prices; validation and look-ups.
//! - [`chat`]: the client's chat request, validated.
//! - [`embeddings`]: the embeddings request, its per-protocol upstream bodies and answers, our answer.
//! - [`discovery`]: the `/models`, `/endpoints` and `/providers` objects and queries.
//! - [`protocol`]: per-upstream translation of requests, responses and stream chunks.
//! - [`pricing`]: usage times prices.
//! - [`routing`]: which endpoints may serve a request, in which order.
//! - [`generation`]: the generation record and its `/generation` rendering.
//! - [`health`]: per-endpoint live uptime, latency, throughput and circuit breaking.
//! - [`sse`], [`tokens`], [`keys`]: the SSE codec, token estimates, key format and ids.
//! - [`eventstream`]: AWS's binary event-stream codec (Bedrock's streams).
//!
//! Architecture invariant: this crate does no IO and depends on no runtime (no tokio, HTTP or SQL),
//! so its tests build and run in seconds.

#![recursion_limit = "256"]

pub mod catalog;
pub mod chat;
pub mod discovery;
pub mod embeddings;
pub mod error;
pub mod eventstream;
pub mod generation;
pub mod health;
pub mod keys;
pub mod messages;
pub mod money;
pub mod pricing;
pub mod protocol;
pub mod routing;
pub mod sse;
pub mod tokens;
