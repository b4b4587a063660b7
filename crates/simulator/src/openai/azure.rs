//! Azure OpenAI, written from Azure's REST reference: `POST
//! /{upstream}/openai/deployments/{deployment}/chat/completions?api-version=...` and
//! `.../embeddings?api-version=...`, answered by the OpenAI module's code with Azure's
//! differences:
//!
//! - **URL**: the deployment is in the path, so the body's `model` is optional (and ignored);
//!   `api-version` is required — without it Azure answers 404 `Resource not found`, and a value
//!   that is not a date (`2024-10-21`, optionally `-preview`) gets 400 `API version not
//!   supported`.
//! - **Credentials**: an `api-key` header or `Authorization: Bearer`, any non-empty value;
//!   otherwise 401 with Azure's `{"error":{"code":"401","message":"Access denied ..."}}`.
//! - **Model**: the answer names the deployment's model. A deployment named after a known model
//!   (`gpt-4o`, `gpt-4o-mini`, `gpt-4.1`, `gpt-4.1-mini`, `gpt-4.1-nano`, `o3-mini`) reports
//!   that model's dated version (`gpt-4o-mini-2024-07-18`); any other deployment reports its
//!   own name.
//! - **Content filtering**: every completion carries `prompt_filter_results` and each choice
//!   `content_filter_results`, all `safe`; a stream opens with Azure's extra chunk that has no
//!   choices, only `prompt_filter_results`, and annotates each content chunk. No
//!   `service_tier`.
//! - **Content-filter triggers** (case-insensitive, anywhere in the messages' text):
//!   `azure-filter` filters the prompt — HTTP 400 with `error.code` `content_filter`,
//!   `param` `prompt` and `innererror` `ResponsibleAIPolicyViolation` whose
//!   `content_filter_result` shows `violence` filtered at `medium`; `azure-jailbreak` does the
//!   same with `jailbreak` detected; `azure-filter-output` lets the prompt through but filters
//!   the completion: a text answer stops halfway with `finish_reason` `content_filter` and
//!   `violence` filtered in the choice's results (streamed the same way). Prompt triggers win.
//! - **Errors and faults** use Azure's envelope `{"error":{"code","message"}}`; a 429 carries
//!   `retry-after` and `retry-after-ms`. Every answer carries `x-request-id` and the same id in
//!   `apim-request-id`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::{chat, has_bearer_token, json_response};
use crate::control::Sim;
use crate::exchange::{self, Wire};

/// The text that filters the prompt (violence, severity medium).
pub const PROMPT_TRIGGER: &str = "azure-filter";
/// The text that filters the prompt as a jailbreak attempt.
pub const JAILBREAK_TRIGGER: &str = "azure-jailbreak";
/// The text that filters the completion instead of the prompt.
pub const OUTPUT_TRIGGER: &str = "azure-filter-output";

/// Deployments named after a model report its dated version, as Azure does.
const MODEL_VERSIONS: &[(&str, &str)] = &[
    ("gpt-4o", "gpt-4o-2024-11-20"),
    ("gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("gpt-4.1", "gpt-4.1-2025-04-14"),
    ("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
    ("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"),
    ("o3-mini", "o3-mini-2025-01-31"),
];

/// What the content filter does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    None,
    /// The prompt is rejected with HTTP 400.
    Prompt(Category),
    /// The completion is cut with `finish_reason: "content_filter"`.
    Output,
}

/// The category a filtered prompt is reported under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Violence,
    Jailbreak,
}

/// The Azure OpenAI wire: `api-version` in the query, `api-key` (or bearer) credentials,
/// Azure's error envelope.
pub struct Azure;

impl Wire for Azure {
    const REQUEST_ID_HEADER: &'static str = "x-request-id";
    const MALFORMED_EVENT: &'static [u8] = b"data: {not json\n\n";

    fn reject_headers(headers: &HeaderMap) -> Option<Response> {
        let api_key = headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.trim().is_empty());
        if api_key || has_bearer_token(headers) {
            return None;
        }
        Some(error(
            StatusCode::UNAUTHORIZED,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to \
             provide a valid key for an active subscription and use a correct regional API \
             endpoint for your resource.",
        ))
    }

    fn reject_request(parts: &Parts) -> Option<Response> {
        let version = parts.uri.query().and_then(|query| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == "api-version")
                .map(|(_, value)| value)
        });
        match version {
            None => Some(error(StatusCode::NOT_FOUND, "404", "Resource not found")),
            Some(version) if !is_api_version(version) => Some(error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "API version not supported",
            )),
            Some(_) => Self::reject_headers(&parts.headers),
        }
    }

    fn too_large() -> Response {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLarge",
            "The request body is too large.",
        )
    }

    fn fault_error(status: u16, retry_after_s: Option<f64>, message: Option<&str>) -> Response {
        let retry = retry_after_s.map_or(1, |s| s.ceil() as u64);
        let (code, default) = match status {
            400 => (
                "BadRequest".to_owned(),
                "Invalid request (simulated).".to_owned(),
            ),
            401 => (
                "401".to_owned(),
                "Access denied due to invalid subscription key or wrong API endpoint.".to_owned(),
            ),
            403 => ("403".to_owned(), "Forbidden (simulated).".to_owned()),
            404 => (
                "DeploymentNotFound".to_owned(),
                "The API deployment for this resource does not exist.".to_owned(),
            ),
            429 => (
                "429".to_owned(),
                format!(
                    "Requests to this deployment have exceeded the call rate limit of your \
                     current pricing tier (simulated). Please retry after {retry} seconds."
                ),
            ),
            500 => (
                "InternalServerError".to_owned(),
                "The server had an error while processing your request (simulated).".to_owned(),
            ),
            503 => (
                "ServiceUnavailable".to_owned(),
                "The service is temporarily unable to process your request (simulated).".to_owned(),
            ),
            other => (
                other.to_string(),
                "The request failed (simulated fault).".to_owned(),
            ),
        };
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = error(status, &code, message.unwrap_or(&default));
        if let Some(seconds) = retry_after_s {
            let headers = response.headers_mut();
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(seconds.ceil() as u64),
            );
            headers.insert(
                "retry-after-ms",
                HeaderValue::from((seconds * 1000.0).round() as u64),
            );
        }
        response
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DD-preview`.
fn is_api_version(version: &str) -> bool {
    let date = version.strip_suffix("-preview").unwrap_or(version);
    let bytes = date.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Azure's error envelope `{"error":{"code","message"}}`, with a request id.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    with_request_ids(json_response(
        status,
        &json!({"error": {"code": code, "message": message}}),
    ))
}

/// Adds `x-request-id` (when missing) and the same id as `apim-request-id`.
fn with_request_ids(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let id = match headers.get("x-request-id") {
        Some(id) => id.clone(),
        None => {
            let [(name, value)] = exchange::request_id_header::<Azure>(&exchange::new_request_id());
            headers.insert(name, value.clone());
            value
        }
    };
    headers.insert(HeaderName::from_static("apim-request-id"), id);
    response
}

/// The model a deployment reports (see the module docs).
pub fn deployment_model(deployment: &str) -> String {
    MODEL_VERSIONS
        .iter()
        .find(|(name, _)| *name == deployment)
        .map_or_else(|| deployment.to_owned(), |(_, model)| (*model).to_owned())
}

/// The filter decision for a prompt made of `texts` (see the module docs).
pub fn filter_for(texts: impl Iterator<Item = String>) -> Filter {
    let mut output = false;
    for text in texts {
        let text = text.to_ascii_lowercase();
        if text.contains(JAILBREAK_TRIGGER) {
            return Filter::Prompt(Category::Jailbreak);
        }
        if text.replace(OUTPUT_TRIGGER, "").contains(PROMPT_TRIGGER) {
            return Filter::Prompt(Category::Violence);
        }
        output |= text.contains(OUTPUT_TRIGGER);
    }
    if output {
        Filter::Output
    } else {
        Filter::None
    }
}

fn severity(filtered: bool) -> Value {
    if filtered {
        json!({"filtered": true, "severity": "medium"})
    } else {
        json!({"filtered": false, "severity": "safe"})
    }
}

fn detection(detected: bool) -> Value {
    json!({"filtered": detected, "detected": detected})
}

/// The prompt's filter results for `category` (`None`: all safe).
fn prompt_categories(category: Option<Category>) -> Value {
    json!({
        "hate": severity(false),
        "jailbreak": detection(category == Some(Category::Jailbreak)),
        "self_harm": severity(false),
        "sexual": severity(false),
        "violence": severity(category == Some(Category::Violence)),
    })
}

/// `prompt_filter_results` of a completion whose prompt passed.
pub fn prompt_results() -> Value {
    json!([{"prompt_index": 0, "content_filter_results": prompt_categories(None)}])
}

/// A choice's `content_filter_results`; `filtered` when the output filter stopped it.
pub fn choice_results(filtered: bool) -> Value {
    json!({
        "hate": severity(false),
        "protected_material_code": detection(false),
        "protected_material_text": detection(false),
        "self_harm": severity(false),
        "sexual": severity(false),
        "violence": severity(filtered),
    })
}

/// The 400 answering a filtered prompt.
pub fn prompt_filtered(category: Category) -> Response {
    let body = json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content \
                    management policy. Please modify your prompt and retry.",
        "type": null,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": prompt_categories(Some(category)),
        },
    }});
    with_request_ids(json_response(StatusCode::BAD_REQUEST, &body))
}

/// `POST /{upstream}/openai/deployments/{deployment}/chat/completions`.
pub async fn chat_completions(
    State(sim): State<Arc<Sim>>,
    Path((name, deployment)): Path<(String, String)>,
    request: Request,
) -> Response {
    let response = match exchange::admit::<Azure>(&sim, &name, request).await {
        Ok(admitted) => {
            chat::respond::<Azure>(admitted, Some(&deployment_model(&deployment))).await
        }
        Err(response) => response,
    };
    with_request_ids(response)
}

/// `POST /{upstream}/openai/deployments/{deployment}/embeddings`.
pub async fn embeddings(
    State(sim): State<Arc<Sim>>,
    Path((name, deployment)): Path<(String, String)>,
    request: Request,
) -> Response {
    let response = match exchange::admit::<Azure>(&sim, &name, request).await {
        Ok(admitted) => {
            super::embeddings::respond::<Azure>(admitted, Some(&deployment_model(&deployment)))
                .await
        }
        Err(response) => response,
    };
    with_request_ids(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_are_dates() {
        for good in ["2024-10-21", "2025-04-01-preview"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in ["", "latest", "2024-1-21", "2024-10-21-beta", "v1"] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }

    #[test]
    fn triggers_pick_the_filter() {
        let filter = |texts: &[&str]| filter_for(texts.iter().map(|t| (*t).to_owned()));
        assert_eq!(filter(&["hello"]), Filter::None);
        assert_eq!(
            filter(&["please AZURE-FILTER this"]),
            Filter::Prompt(Category::Violence)
        );
        assert_eq!(
            filter(&["x", "azure-jailbreak"]),
            Filter::Prompt(Category::Jailbreak)
        );
        assert_eq!(filter(&["azure-filter-output please"]), Filter::Output);
        assert_eq!(
            filter(&["azure-filter-output", "azure-filter"]),
            Filter::Prompt(Category::Violence)
        );
    }

    #[test]
    fn known_deployments_report_dated_models() {
        assert_eq!(deployment_model("gpt-4o-mini"), "gpt-4o-mini-2024-07-18");
        assert_eq!(deployment_model("my-deployment"), "my-deployment");
    }
}
