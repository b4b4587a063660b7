//! How to reach one upstream endpoint: its URL for a request kind, and its credential.
//!
//! Most protocols take a static key in a protocol-specific header. Two take more: AWS Bedrock
//! signs every request with SigV4 over its exact body (or takes a Bedrock API key as a bearer),
//! and Google Vertex AI wants an OAuth2 access token obtained from a service account (or an
//! express-mode API key). Both regionalise their hosts: the region or location comes from the
//! endpoint's tag (`amazon-bedrock/eu-west-1`, `google-vertex/us-east5`), else the provider's
//! configured default.

pub mod google;
pub mod sigv4;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderValue};
use switchyard_core::catalog::Protocol;
use switchyard_core::embeddings;
use switchyard_core::error::ApiError;
use switchyard_core::protocol::vertex::{self, Site};
use switchyard_core::protocol::{anthropic, bedrock, cohere, gemini, openai};

use crate::chat::Api;
use crate::config::{UpstreamConfig, AZURE_API_VERSION};
use google::GoogleAuth;
use sigv4::AwsKeys;

/// Bedrock's SigV4 service name.
const BEDROCK_SERVICE: &str = "bedrock";

/// The credential one attempt is made with.
#[derive(Clone)]
pub(crate) enum Auth {
    None,
    /// A static key, in the header the protocol uses for it.
    Key(String),
    /// AWS SigV4, for the region the endpoint is in.
    Aws {
        keys: Arc<AwsKeys>,
        region: String,
    },
    /// A Google service account's access token.
    Google(Arc<GoogleAuth>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Key(_) => "Key(*****)",
            Auth::Aws { .. } => "Aws(*****)",
            Auth::Google(_) => "Google(*****)",
        })
    }
}

impl Auth {
    /// The operator's credential for a provider.
    pub(crate) fn of(upstream: &UpstreamConfig, region: &str) -> Auth {
        if let Some(google) = &upstream.google {
            return Auth::Google(google.clone());
        }
        if let Some(keys) = &upstream.aws_keys {
            return Auth::Aws {
                keys: keys.clone(),
                region: region.to_owned(),
            };
        }
        match &upstream.api_key {
            Some(key) => Auth::Key(key.expose().to_owned()),
            None => Auth::None,
        }
    }

    /// An account's own credential (BYOK). For Bedrock it may be a JSON object of AWS keys
    /// (`{"accessKeyId", "secretAccessKey", "sessionToken"?}`) as OpenRouter accepts; any other
    /// value is a key (a Bedrock API key, a Vertex express-mode key).
    pub(crate) fn byok(protocol: Protocol, key: &str, region: &str) -> Auth {
        if protocol == Protocol::Bedrock && key.trim_start().starts_with('{') {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Keys {
                access_key_id: String,
                secret_access_key: String,
                session_token: Option<String>,
                region: Option<String>,
            }
            if let Ok(k) = serde_json::from_str::<Keys>(key) {
                return Auth::Aws {
                    region: k.region.unwrap_or_else(|| region.to_owned()),
                    keys: Arc::new(AwsKeys {
                        access_key_id: k.access_key_id,
                        secret_access_key: k.secret_access_key,
                        session_token: k.session_token,
                    }),
                };
            }
        }
        Auth::Key(key.to_owned())
    }
}

/// Where an endpoint is, beyond its provider's base URL: Bedrock's region, Vertex's location.
pub(crate) fn region_of(
    protocol: Protocol,
    upstream: &UpstreamConfig,
    tag: &str,
    upstream_model: &str,
) -> String {
    match protocol {
        Protocol::Bedrock => bedrock_region(tag, upstream_model, &upstream.region),
        Protocol::Vertex => vertex::location(tag, &upstream.region).to_owned(),
        _ => String::new(),
    }
}

/// The AWS region a Bedrock endpoint is called in: the tag's region when it names one
/// (`amazon-bedrock/eu-west-1`); else, for a geographic inference profile (`eu.anthropic...`),
/// the configured region when it is in that geography, or a region that serves the profile; else
/// the configured region.
fn bedrock_region(tag: &str, upstream_model: &str, default: &str) -> String {
    if let Some((_, r)) = tag.split_once('/') {
        if r.matches('-').count() >= 2 && r.ends_with(|c: char| c.is_ascii_digit()) {
            return r.to_owned();
        }
    }
    let geo = upstream_model.split('.').next().unwrap_or_default();
    let (prefix, fallback) = match geo {
        "us" => ("us-", "us-east-1"),
        "eu" => ("eu-", "eu-central-1"),
        "apac" => ("ap-", "ap-northeast-1"),
        "jp" => ("ap-northeast-", "ap-northeast-1"),
        "au" => ("ap-southeast-", "ap-southeast-2"),
        _ => return default.to_owned(),
    };
    if default.starts_with(prefix) {
        default.to_owned()
    } else {
        fallback.to_owned()
    }
}

/// `base` with its region replaced when it is an AWS Bedrock Runtime host.
fn bedrock_base(base: &str, region: &str) -> String {
    let Some(rest) = base.strip_prefix("https://bedrock-runtime.") else {
        return base.to_owned();
    };
    match rest.split_once('.') {
        Some((_, domain)) if domain.starts_with("amazonaws.com") => {
            format!("https://bedrock-runtime.{region}.{domain}")
        }
        _ => base.to_owned(),
    }
}

/// The URL of an endpoint for `api`.
pub(crate) fn endpoint_url(
    protocol: Protocol,
    upstream: &UpstreamConfig,
    upstream_model: &str,
    region: &str,
    api: Api,
) -> String {
    let base = &upstream.base_url;
    let api_version = || upstream.api_version.as_deref().unwrap_or(AZURE_API_VERSION);
    let site = || Site {
        base,
        project: &upstream.project,
        location: region,
    };
    let stream = match api {
        Api::Chat { stream } => stream,
        Api::Embeddings => {
            return match protocol {
                Protocol::Azure => format!(
                    "{base}{}?api-version={}",
                    embeddings::path(protocol, upstream_model),
                    api_version()
                ),
                Protocol::Vertex => site().embeddings_url(upstream_model),
                Protocol::Bedrock => format!(
                    "{}{}",
                    bedrock_base(base, region),
                    embeddings::path(protocol, upstream_model)
                ),
                _ => format!("{base}{}", embeddings::path(protocol, upstream_model)),
            };
        }
    };
    match protocol {
        Protocol::Anthropic => format!("{base}{}", anthropic::MESSAGES_PATH),
        Protocol::Gemini => format!("{base}{}", gemini::path(upstream_model, stream)),
        Protocol::Cohere => format!("{base}{}", cohere::CHAT_PATH),
        // Azure names a deployment in the path; the body's `model` is ignored.
        Protocol::Azure => format!(
            "{base}/deployments/{upstream_model}{}?api-version={}",
            openai::CHAT_PATH,
            api_version()
        ),
        Protocol::Vertex => site().chat_url(upstream_model, stream),
        Protocol::Bedrock => format!(
            "{}{}",
            bedrock_base(base, region),
            bedrock::path(upstream_model, stream)
        ),
        Protocol::OpenAi => format!("{base}{}", openai::CHAT_PATH),
    }
}

/// The wire format a request to this endpoint is written in: Vertex AI's depends on the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    OpenAi,
    Anthropic,
    /// Claude on Vertex AI: the Anthropic body without `model`, with `anthropic_version`.
    VertexAnthropic,
    Gemini,
    Cohere,
    Bedrock,
}

impl Wire {
    pub(crate) fn of(protocol: Protocol, upstream_model: &str) -> Wire {
        match protocol {
            Protocol::Anthropic => Wire::Anthropic,
            Protocol::Gemini => Wire::Gemini,
            Protocol::Cohere => Wire::Cohere,
            Protocol::Bedrock => Wire::Bedrock,
            Protocol::Vertex => match vertex::dialect(upstream_model) {
                vertex::Dialect::Gemini => Wire::Gemini,
                vertex::Dialect::Anthropic => Wire::VertexAnthropic,
                vertex::Dialect::OpenAi => Wire::OpenAi,
            },
            Protocol::OpenAi | Protocol::Azure => Wire::OpenAi,
        }
    }

    /// Anthropic's Messages format, on Anthropic's API or on Vertex.
    pub(crate) fn is_anthropic(self) -> bool {
        matches!(self, Wire::Anthropic | Wire::VertexAnthropic)
    }
}

/// Adds a static key in the header `protocol` expects it in; signed and token credentials are
/// added by [`finish`], which sees the whole request.
pub(crate) fn authorize(
    builder: reqwest::RequestBuilder,
    protocol: Protocol,
    auth: &Auth,
) -> reqwest::RequestBuilder {
    let Auth::Key(key) = auth else {
        return builder;
    };
    match protocol {
        Protocol::Anthropic => builder.header("x-api-key", key),
        Protocol::Gemini | Protocol::Vertex => builder.header("x-goog-api-key", key),
        Protocol::Azure => builder.header("api-key", key),
        _ => builder.bearer_auth(key),
    }
}

/// Why a credential could not be put on a request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialError {
    #[error("Google service account: {0}")]
    Google(#[from] google::GoogleAuthError),
    #[error("the upstream request could not be built: {0}")]
    Build(String),
}

/// Builds the request and adds what needs the finished request: a SigV4 signature over its
/// body, or a (possibly freshly exchanged) Google access token.
pub(crate) async fn finish(
    client: &reqwest::Client,
    builder: reqwest::RequestBuilder,
    auth: &Auth,
) -> Result<reqwest::Request, CredentialError> {
    let mut request = builder
        .build()
        .map_err(|e| CredentialError::Build(e.without_url().to_string()))?;
    match auth {
        Auth::Google(google) => {
            let token = google.token(client).await?;
            let value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|e| CredentialError::Build(e.to_string()))?;
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        Auth::Aws { keys, region } => {
            let url = request.url().clone();
            let host = match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
                None => url.host_str().unwrap_or_default().to_owned(),
            };
            let body = request
                .body()
                .and_then(|b| b.as_bytes())
                .unwrap_or_default();
            let signable = sigv4::Signable {
                method: request.method().as_str(),
                host: &host,
                path: url.path(),
                query: url.query().unwrap_or_default(),
                body,
            };
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let headers = sigv4::sign(
                &signable,
                keys,
                region,
                BEDROCK_SERVICE,
                &sigv4::amz_date(now),
            );
            for (name, value) in headers {
                let value = HeaderValue::try_from(value)
                    .map_err(|e| CredentialError::Build(e.to_string()))?;
                request.headers_mut().insert(name, value);
            }
        }
        Auth::Key(_) | Auth::None => {}
    }
    Ok(request)
}

/// The Google token a finished request carries, to forget it if Vertex refuses it.
pub(crate) fn google_token(auth: &Auth, request: &reqwest::Request) -> Option<String> {
    let Auth::Google(_) = auth else {
        return None;
    };
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

/// After a 401, a Google token is forgotten so the next attempt exchanges a fresh one.
pub(crate) fn refused(auth: &Auth, token: Option<&str>) {
    if let (Auth::Google(google), Some(token)) = (auth, token) {
        google.invalidate(token);
    }
}

/// The client's error for an upstream's non-2xx answer, in that upstream's dialect.
/// `error_type` is Bedrock's `x-amzn-ErrorType` header.
pub(crate) fn upstream_error(
    wire: Wire,
    provider_name: &str,
    status: u16,
    error_type: Option<&str>,
    body: &[u8],
    retry_after: Option<u64>,
) -> ApiError {
    match wire {
        Wire::Anthropic | Wire::VertexAnthropic => {
            anthropic::upstream_error(status, body, provider_name, retry_after)
        }
        Wire::Gemini => gemini::upstream_error(status, body, provider_name, retry_after),
        Wire::Cohere => cohere::upstream_error(status, body, provider_name, retry_after),
        Wire::Bedrock => {
            bedrock::upstream_error(status, error_type, body, provider_name, retry_after)
        }
        Wire::OpenAi => openai::upstream_error(status, body, provider_name, retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_regions() {
        assert_eq!(
            bedrock_region(
                "amazon-bedrock/eu-west-1",
                "amazon.nova-lite-v1:0",
                "us-east-1"
            ),
            "eu-west-1"
        );
        assert_eq!(
            bedrock_region("amazon-bedrock", "amazon.nova-lite-v1:0", "us-west-2"),
            "us-west-2"
        );
        assert_eq!(
            bedrock_region(
                "amazon-bedrock/us",
                "us.anthropic.claude-opus-4-7",
                "us-west-2"
            ),
            "us-west-2"
        );
        assert_eq!(
            bedrock_region(
                "amazon-bedrock",
                "eu.anthropic.claude-opus-4-7",
                "us-east-1"
            ),
            "eu-central-1"
        );
        assert_eq!(
            bedrock_region(
                "amazon-bedrock",
                "eu.anthropic.claude-opus-4-7",
                "eu-west-3"
            ),
            "eu-west-3"
        );
        assert_eq!(
            bedrock_region(
                "amazon-bedrock/global",
                "global.anthropic.claude-sonnet-4-6",
                "us-east-1"
            ),
            "us-east-1"
        );
    }

    #[test]
    fn bedrock_hosts_are_regional_and_others_kept() {
        assert_eq!(
            bedrock_base(
                "https://bedrock-runtime.us-east-1.amazonaws.com",
                "eu-west-1"
            ),
            "https://bedrock-runtime.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            bedrock_base("http://127.0.0.1:1/bedrock", "eu-west-1"),
            "http://127.0.0.1:1/bedrock"
        );
    }

    #[test]
    fn byok_bedrock_keys() {
        let auth = Auth::byok(
            Protocol::Bedrock,
            r#"{"accessKeyId":"AKID","secretAccessKey":"s","region":"eu-west-1"}"#,
            "us-east-1",
        );
        assert!(matches!(&auth, Auth::Aws { region, .. } if region == "eu-west-1"));
        assert!(matches!(
            Auth::byok(Protocol::Bedrock, "ABSK-key", "us-east-1"),
            Auth::Key(_)
        ));
        assert_eq!(format!("{auth:?}"), "Aws(*****)");
    }
}
