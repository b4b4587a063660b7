//! The stable error-code table and OpenRouter's error envelope.
//!
//! Every failure a client can see is an [`ApiError`]: an [`ErrorCode`] (which fixes the HTTP status and
//! the `error_type` vocabulary of the reference, section 4.1), a message that says what to fix, and
//! optional `metadata`. Layers below the edge build these; only the server turns them into HTTP.

use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// One row of the error table: what went wrong, independent of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed JSON, a missing or invalid field.
    InvalidRequest,
    /// The prompt does not fit the serving endpoint's context window (a larger one may take it).
    ContextLengthExceeded,
    /// The requested model is not in the catalog.
    ModelNotFound,
    /// The model exists but no enabled endpoint can serve it.
    NoEndpoints,
    /// Missing, malformed, unknown, disabled or expired key.
    Unauthorized,
    /// A management key on an inference endpoint, or the reverse.
    Forbidden,
    /// The account balance or the key limit cannot cover the request.
    PaymentRequired,
    /// A resource (generation, key) that does not exist for this caller.
    NotFound,
    /// The request body is over the configured size limit.
    PayloadTooLarge,
    /// A rate limit of this gateway or of the upstream.
    RateLimited,
    /// The upstream failed or answered with something unusable.
    UpstreamError,
    /// The upstream is overloaded (503/529).
    UpstreamOverloaded,
    /// The upstream timed out.
    UpstreamTimeout,
    /// A bug or a broken dependency of this gateway.
    Internal,
}

impl ErrorCode {
    /// The HTTP status, which is also `error.code` in the envelope.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::ContextLengthExceeded
            | ErrorCode::ModelNotFound => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::PaymentRequired => 402,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound | ErrorCode::NoEndpoints => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::UpstreamError => 502,
            ErrorCode::UpstreamOverloaded => 503,
            ErrorCode::UpstreamTimeout => 504,
        }
    }

    /// The `error_type` of the reference's ApiErrorType vocabulary.
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ContextLengthExceeded => "context_length_exceeded",
            ErrorCode::ModelNotFound | ErrorCode::NoEndpoints | ErrorCode::NotFound => "not_found",
            ErrorCode::Unauthorized => "authentication",
            ErrorCode::PaymentRequired => "payment_required",
            ErrorCode::Forbidden => "permission_denied",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limit_exceeded",
            ErrorCode::UpstreamError => "provider_unavailable",
            ErrorCode::UpstreamOverloaded => "provider_overloaded",
            ErrorCode::UpstreamTimeout => "timeout",
            ErrorCode::Internal => "server",
        }
    }
}

/// A client-visible error: code, message and optional metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    pub metadata: Option<Map<String, Value>>,
    /// `error.availability` for model-availability failures (boxed: rare, and it keeps `Result` small).
    pub availability: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// `X-RateLimit-*` headers, on this gateway's own rate-limit 429s only.
    pub rate_limit: Option<RateLimitInfo>,
}

/// The window a rate-limited request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    pub limit: u64,
    pub remaining: u64,
    /// When the window resets, unix milliseconds.
    pub reset_ms: i64,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            metadata: None,
            availability: None,
            retry_after: None,
            rate_limit: None,
        }
    }

    pub fn invalid(message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// The model is unknown: 400 `model_not_found` with the availability block.
    pub fn model_not_found(model: &str) -> ApiError {
        let mut err = ApiError::new(
            ErrorCode::ModelNotFound,
            format!("{model} is not a valid model ID"),
        );
        err.availability = Some(Box::new(availability("model_not_found", false, model)));
        err
    }

    /// The model exists but nothing enabled can serve it.
    pub fn no_endpoints(model: &str) -> ApiError {
        let mut err = ApiError::new(
            ErrorCode::NoEndpoints,
            format!("No endpoints found for {model}: no provider serving it is enabled"),
        );
        err.availability = Some(Box::new(availability("no_endpoints", false, model)));
        err
    }

    pub fn with_metadata(mut self, key: &str, value: Value) -> ApiError {
        self.metadata
            .get_or_insert_with(Map::new)
            .insert(key.to_owned(), value);
        self
    }

    /// The envelope body: `{"error": {...}, "user_id": null}`.
    pub fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code.status()));
        error.insert("message".into(), json!(self.message));
        if let Some(metadata) = &self.metadata {
            error.insert("metadata".into(), Value::Object(metadata.clone()));
        }
        if let Some(availability) = &self.availability {
            error.insert("availability".into(), (**availability).clone());
            error.insert("error_type".into(), json!(self.code.error_type()));
            error.insert("http_status".into(), json!(self.code.status()));
        }
        json!({ "error": error, "user_id": null })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.status())
    }
}

impl std::error::Error for ApiError {}

fn availability(code: &str, retryable: bool, model: &str) -> Value {
    json!({
        "code": code,
        "retryable": retryable,
        "requested_models": [model],
        "docs_url": "https://openrouter.ai/docs/api-reference/errors",
    })
}

#[cfg(test)]
mod tests;
