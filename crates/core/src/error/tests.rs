//! Tests of the error envelope.

use super::*;

#[test]
fn envelope_carries_status_as_code() {
    let body = ApiError::invalid("messages must be an array").body();
    assert_eq!(
        body,
        json!({"error": {"code": 400, "message": "messages must be an array"}, "user_id": null})
    );
}

#[test]
fn model_not_found_has_availability() {
    let body = ApiError::model_not_found("acme/nope").body();
    assert_eq!(body["error"]["code"], 400);
    assert_eq!(body["error"]["availability"]["code"], "model_not_found");
    assert_eq!(
        body["error"]["availability"]["requested_models"][0],
        "acme/nope"
    );
    assert_eq!(body["error"]["http_status"], 400);
}

#[test]
fn every_code_has_a_distinct_meaningful_status() {
    let codes = [
        ErrorCode::InvalidRequest,
        ErrorCode::ModelNotFound,
        ErrorCode::NoEndpoints,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::PaymentRequired,
        ErrorCode::NotFound,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::UpstreamError,
        ErrorCode::UpstreamOverloaded,
        ErrorCode::UpstreamTimeout,
        ErrorCode::Internal,
    ];
    for code in codes {
        assert!((400..600).contains(&code.status()), "{code:?}");
        assert!(!code.error_type().is_empty());
    }
}
