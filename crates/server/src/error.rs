//! The HTTP edge of errors: [`HttpError`] turns core's [`ApiError`] into OpenRouter's envelope with the
//! matching status and `Retry-After`. Nothing below this module knows about HTTP statuses as types.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use switchyard_core::error::ApiError;

/// An [`ApiError`] on its way out (a local type, so that it can implement axum's trait).
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(err: ApiError) -> HttpError {
        HttpError(err)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0.body()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.0.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(info) = self.0.rate_limit {
            headers.insert("x-ratelimit-limit", HeaderValue::from(info.limit));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(info.remaining));
            headers.insert("x-ratelimit-reset", HeaderValue::from(info.reset_ms));
        }
        response
    }
}

pub type HttpResult<T> = Result<T, HttpError>;

/// A database failure as the client sees it: a generic 500 (the cause is logged, never sent).
pub fn store_failure(e: &switchyard_store::StoreError) -> ApiError {
    tracing::error!(error = %e, "store query failed");
    ApiError::new(
        switchyard_core::error::ErrorCode::Internal,
        "Database query failed; try again",
    )
}

/// [`store_failure`] for handlers that return [`HttpResult`].
pub fn internal(e: switchyard_store::StoreError) -> HttpError {
    HttpError(store_failure(&e))
}
