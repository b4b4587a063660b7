//! Vertex AI beyond the Gemini models (whose `publishers/google` routes live in `crate::gemini`),
//! written from Google Cloud's Vertex AI documentation and Anthropic's "Claude on Vertex AI":
//!
//! - **OAuth token endpoint** ([`oauth`]): `POST /{upstream}/token`, the service-account JWT
//!   bearer grant as `https://oauth2.googleapis.com/token` answers it. Point a service
//!   account's `token_uri` here and Google's auth libraries fetch `ya29.sim-...` access tokens
//!   from the simulator.
//! - **Bearer tokens**: every Vertex AI route takes `Authorization: Bearer <token>` (without
//!   one: 401 `UNAUTHENTICATED`, reason `CREDENTIALS_MISSING`). Until the upstream's token
//!   endpoint has issued a token any bearer passes, so tests that never fetch one keep working;
//!   from the first issued token on, the bearer must be one this upstream issued and unexpired,
//!   otherwise 401 `UNAUTHENTICATED` ("Request had invalid authentication credentials. Expected
//!   OAuth 2 access token ...") in Google's envelope, with an `ErrorInfo` of reason
//!   `ACCESS_TOKEN_EXPIRED` or `ACCESS_TOKEN_TYPE_UNSUPPORTED` and a `WWW-Authenticate` header.
//!   The Gemini routes also take an API key (express mode), which skips the token check. Tests
//!   observe and steer issuance through `GET`/`POST /_sim/{upstream}/tokens` (see
//!   `crate::control`), and token requests appear in `GET /_sim/{upstream}/requests`.
//! - **Claude** ([`claude`]): `POST /{upstream}/{v1|v1beta1}/projects/{project}/locations/
//!   {location}/publishers/anthropic/models/{model}:rawPredict` and `:streamRawPredict` (and
//!   `count-tokens:rawPredict`), answered by the Anthropic module.
//! - **OpenAI-compatible chat for open and partner models (MaaS)**: `POST /{upstream}/{v1|v1beta1}/
//!   projects/{project}/locations/{location}/endpoints/openapi/chat/completions`, answered by the
//!   OpenAI module's chat completions unchanged (`model` in the body, e.g.
//!   `meta/llama-3.3-70b-instruct-maas`, `openai/gpt-oss-120b-maas`,
//!   `qwen3-coder-480b-a35b-instruct-maas`; any name is accepted).
//!
//! Any location is accepted (`us-central1`, `europe-west1`, `global`, `us`, `eu`, ...); each
//! recorded request carries the `location` its path named. Errors raised by Google's front end
//! (credentials, and status faults 401, 403, 404, 429, 503 and 504) use Google's envelope
//! `{"error": {"code", "message", "status", "details"}}`; the rest come from the model's own
//! API, in Anthropic's or OpenAI's envelope.

pub mod claude;
pub mod oauth;

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::json;

use crate::anthropic::Anthropic;
use crate::control::{Sim, TokenCheck, Upstream};
use crate::exchange::{self, Wire};
use crate::gemini;
use crate::openai::{self, OpenAi};

/// The RPC named in the MaaS endpoint's credential errors.
const CHAT_RPC: &str = "google.cloud.aiplatform.v1.PredictionService.ChatCompletions";

/// The simulator's Vertex AI routes other than the Gemini models' (state: the simulator).
pub fn routes() -> Router<Arc<Sim>> {
    const LOCATION: &str = "projects/{project}/locations/{location}";
    let mut router = Router::new().route("/{upstream}/token", post(oauth::token));
    for version in ["v1", "v1beta1"] {
        router = router
            .route(
                &format!(
                    "/{{upstream}}/{version}/{LOCATION}/publishers/anthropic/models/{{action}}"
                ),
                post(claude::raw_predict),
            )
            .route(
                &format!("/{{upstream}}/{version}/{LOCATION}/endpoints/openapi/chat/completions"),
                post(openapi_chat),
            );
    }
    router
}

/// The bearer token of `Authorization: Bearer <token>`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// An API key in `x-goog-api-key` or `?key=` (Vertex AI express mode).
fn has_api_key(parts: &Parts) -> bool {
    let header = parts
        .headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    let query = parts.uri.query().unwrap_or("").split('&').any(|pair| {
        pair.split_once('=')
            .is_some_and(|(k, v)| k == "key" && !v.is_empty())
    });
    header || query
}

fn error_info(reason: &str, rpc: &str) -> serde_json::Value {
    json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": "aiplatform.googleapis.com", "method": rpc}
    })
}

/// 401 `UNAUTHENTICATED` for a request without credentials.
fn missing_credentials(rpc: &str) -> Response {
    gemini::error(
        StatusCode::UNAUTHORIZED,
        "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        vec![error_info("CREDENTIALS_MISSING", rpc)],
    )
}

/// 401 `UNAUTHENTICATED` for a bearer token this upstream did not issue (or that expired).
fn invalid_credentials(reason: &str, rpc: &str) -> Response {
    let mut response = gemini::error(
        StatusCode::UNAUTHORIZED,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        vec![error_info(reason, rpc)],
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        ),
    );
    response
}

/// The bearer-token rule of the Gemini routes on Vertex AI (see the module docs): like
/// [`check_token`], except that a request with an API key (express mode) passes.
pub(crate) fn check_bearer(parts: &Parts, upstream: &Upstream, rpc: &str) -> Option<Response> {
    if has_api_key(parts) {
        return None;
    }
    check_token(parts, upstream, rpc)
}

/// The bearer-token rule of every Vertex AI route (see the module docs): `Some` is the 401 to
/// send. Requests without a bearer (the wire rejects those) or to an upstream that never issued
/// a token pass.
pub(crate) fn check_token(parts: &Parts, upstream: &Upstream, rpc: &str) -> Option<Response> {
    let token = bearer(&parts.headers)?;
    match upstream.check_token(token) {
        TokenCheck::NoneIssued | TokenCheck::Valid => None,
        TokenCheck::Expired => Some(invalid_credentials("ACCESS_TOKEN_EXPIRED", rpc)),
        TokenCheck::Unknown => Some(invalid_credentials("ACCESS_TOKEN_TYPE_UNSUPPORTED", rpc)),
    }
}

/// Whether Google's front end (rather than the model's API) answers a status fault.
fn google_status(status: u16) -> bool {
    matches!(status, 401 | 403 | 404 | 429 | 503 | 504)
}

fn too_large() -> Response {
    gemini::error(
        StatusCode::BAD_REQUEST,
        "Request payload size exceeds the limit: 33554432 bytes.",
        Vec::new(),
    )
}

/// Vertex AI's OpenAI-compatible endpoint: a bearer token, OpenAI's events and `x-request-id`.
pub struct VertexOpenAi;

impl Wire for VertexOpenAi {
    const REQUEST_ID_HEADER: &'static str = OpenAi::REQUEST_ID_HEADER;
    const MALFORMED_EVENT: &'static [u8] = OpenAi::MALFORMED_EVENT;

    fn reject_headers(headers: &HeaderMap) -> Option<Response> {
        bearer(headers)
            .is_none()
            .then(|| missing_credentials(CHAT_RPC))
    }

    fn too_large() -> Response {
        too_large()
    }

    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
        if google_status(status) {
            gemini::fault_error(status, retry_after_s, message)
        } else {
            OpenAi::fault_error(status, retry_after_s, message)
        }
    }
}

/// Claude on Vertex AI: a bearer token, Anthropic's events and `request-id`.
pub struct VertexClaude;

impl Wire for VertexClaude {
    const REQUEST_ID_HEADER: &'static str = Anthropic::REQUEST_ID_HEADER;
    const MALFORMED_EVENT: &'static [u8] = Anthropic::MALFORMED_EVENT;

    fn reject_headers(headers: &HeaderMap) -> Option<Response> {
        bearer(headers)
            .is_none()
            .then(|| missing_credentials(claude::RAW_PREDICT_RPC))
    }

    fn reject_request(parts: &Parts) -> Option<Response> {
        bearer(&parts.headers)
            .is_none()
            .then(|| missing_credentials(claude::rpc(parts.uri.path())))
    }

    fn too_large() -> Response {
        too_large()
    }

    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
        if google_status(status) {
            gemini::fault_error(status, retry_after_s, message)
        } else {
            Anthropic::fault_error(status, retry_after_s, message)
        }
    }
}

/// `POST /{upstream}/{v1|v1beta1}/projects/{project}/locations/{location}/endpoints/openapi/
/// chat/completions`.
async fn openapi_chat(
    State(sim): State<Arc<Sim>>,
    Path((upstream, _project, _location)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    // The OpenAI-compatible endpoint takes OAuth tokens only, no API key.
    let check = |parts: &Parts, up: &Upstream| check_token(parts, up, CHAT_RPC);
    match exchange::admit_checked::<VertexOpenAi>(&sim, &upstream, request, check).await {
        Ok(admitted) => openai::respond_chat::<VertexOpenAi>(admitted, None).await,
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = axum::http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_rule_applies_once_tokens_are_issued() {
        let upstream = Upstream::default();
        let with = |token: &str| parts("/v", &[("authorization", &format!("Bearer {token}"))]);
        assert!(check_bearer(&with("anything"), &upstream, CHAT_RPC).is_none());
        upstream.issue_token("ya29.good".into(), "sa@p", "s");
        assert!(check_bearer(&with("ya29.good"), &upstream, CHAT_RPC).is_none());
        let rejected = check_bearer(&with("ya29.bad"), &upstream, CHAT_RPC).unwrap();
        assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
        assert!(rejected.headers().contains_key(header::WWW_AUTHENTICATE));
        let key = parts("/v?key=abc", &[("authorization", "Bearer ya29.bad")]);
        assert!(
            check_bearer(&key, &upstream, CHAT_RPC).is_none(),
            "express mode"
        );
        assert!(
            check_token(&key, &upstream, CHAT_RPC).is_some(),
            "no API key for MaaS"
        );
    }

    #[test]
    fn front_end_statuses_use_googles_envelope() {
        for status in [401, 403, 404, 429, 503, 504] {
            assert!(google_status(status));
        }
        for status in [400, 413, 500, 529] {
            assert!(!google_status(status));
        }
    }
}
