//! Integration tests of the gateway: the simulator and the gateway run in-process on port 0, and
//! every test talks HTTP to them like a client would.

mod activity;
mod anthropic;
mod byok;
mod chat;
mod cloud;
mod concurrency;
mod discovery;
mod embeddings;
mod errors;
mod failover;
mod harness;
mod keys;
mod native;
mod stream;
