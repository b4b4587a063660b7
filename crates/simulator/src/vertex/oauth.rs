//! Google's OAuth 2.0 token endpoint for service accounts, written from "Using OAuth 2.0 for
//! Server to Server Applications": `POST /{upstream}/token` with the form
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`, answered with
//! `{"access_token": "ya29.sim-...", "expires_in": 3599, "token_type": "Bearer"}`.
//!
//! The assertion is checked as Google documents it:
//! - a compact JWS of three base64url segments; the header has `alg: RS256` (`typ`, if given,
//!   is `JWT`; `kid` is optional);
//! - claims: `iss` (the service account's email), `scope` (space-separated; it must include
//!   `https://www.googleapis.com/auth/cloud-platform`, else 400 `invalid_scope`), `aud` (Google's
//!   token URI `https://oauth2.googleapis.com/token` — which Google's auth libraries always
//!   send, whatever the key file's `token_uri` — or this endpoint's own URL), `iat` and `exp`
//!   with `exp` after `iat`, at most an hour after it, not passed, and `iat` not more than five
//!   minutes ahead of the clock; `sub` (domain-wide delegation) is accepted and ignored.
//! - **The signature cannot be verified**: the simulator has no public key for the service
//!   account, so it only checks that a signature is present and is base64url. Any key signs
//!   for any `iss`.
//!
//! Errors are Google's OAuth errors, HTTP 400 `{"error", "error_description"}`: a missing or
//! other `grant_type` is `unsupported_grant_type`, a missing `assertion` `invalid_request`, a bad
//! assertion `invalid_grant` (a bad `aud` reads "Invalid JWT: Failed audience check.", bad times
//! "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe
//! ..."), a missing or insufficient scope `invalid_scope`.
//!
//! Issued tokens are remembered by the upstream (see `crate::control`) with their expiry, and
//! Vertex AI routes check bearers against them (see `crate::vertex`). Token requests are
//! recorded in the request log but draw no faults, so scripted faults reach the API calls they
//! were meant for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use crate::control::{Recorded, Sim};
use crate::generate::{base64_encode, bytes_hash};

/// The grant type of the service-account flow.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's token URIs, any of which an assertion may name as its audience.
const GOOGLE_AUDIENCES: &[&str] = &[
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
];
/// Longest assertion lifetime Google accepts.
const MAX_LIFETIME_S: i64 = 3600;
/// How far ahead of the clock `iat` may be.
const CLOCK_SKEW_S: i64 = 300;
/// Largest token request read.
const MAX_BODY: usize = 64 * 1024;

const BAD_TIMES: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";

/// A 400 in Google's OAuth error shape.
fn oauth_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        json!({"error": error, "error_description": description}).to_string(),
    )
        .into_response()
}

/// Why an assertion was refused: Google's OAuth error code and its description.
#[derive(Debug)]
struct Refusal {
    error: &'static str,
    description: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        oauth_error(self.error, &self.description)
    }
}

fn invalid_grant(description: &str) -> Refusal {
    Refusal {
        error: "invalid_grant",
        description: description.to_owned(),
    }
}

fn invalid_scope(description: String) -> Refusal {
    Refusal {
        error: "invalid_scope",
        description,
    }
}

/// Decodes `application/x-www-form-urlencoded` percent escapes and `+`.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first value of `key` in a form body.
fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| form_decode(k) == key)
        .map(|(_, v)| form_decode(v))
}

/// Decodes unpadded (or padded) base64url; `None` when it is not.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// A JWT segment decoded as a JSON object.
fn segment_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = base64url_decode(segment)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(obj) => Some(obj),
        _ => None,
    }
}

/// An integer (or integral number) of seconds.
fn seconds(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// The validated claims of an assertion: who asked, and for what.
#[derive(Debug)]
pub struct Grant {
    pub client: String,
    pub scope: String,
}

/// Checks an assertion (see the module docs) posted to `endpoint` (`//host/path`) at `now`.
fn check_assertion(assertion: &str, endpoint: &str, now: i64) -> Result<Grant, Refusal> {
    let segments: Vec<&str> = assertion.trim().split('.').collect();
    let [header, claims, signature] = segments[..] else {
        return Err(invalid_grant(
            "Invalid JWT: the assertion must be a signed JWT of three base64url segments (header.claims.signature).",
        ));
    };
    let header = segment_object(header)
        .ok_or_else(|| invalid_grant("Invalid JWT: the header is not base64url-encoded JSON."))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid_grant(
            "Invalid JWT: the header's alg must be RS256.",
        ));
    }
    if header
        .get("typ")
        .is_some_and(|typ| typ.as_str() != Some("JWT"))
    {
        return Err(invalid_grant("Invalid JWT: the header's typ must be JWT."));
    }
    if header.get("kid").is_some_and(|kid| !kid.is_string()) {
        return Err(invalid_grant(
            "Invalid JWT: the header's kid must be a string.",
        ));
    }
    let claims = segment_object(claims)
        .ok_or_else(|| invalid_grant("Invalid JWT: the claims are not base64url-encoded JSON."))?;
    if signature.is_empty() || base64url_decode(signature).is_none_or(|s| s.is_empty()) {
        return Err(invalid_grant("Invalid JWT Signature."));
    }
    let client = match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if !iss.trim().is_empty() => iss.to_owned(),
        _ => {
            return Err(invalid_grant(
                "Invalid JWT: the iss claim (the service account's email) is required.",
            ))
        }
    };
    let audience_ok = claims
        .get("aud")
        .and_then(Value::as_str)
        .is_some_and(|aud| {
            GOOGLE_AUDIENCES.contains(&aud)
                || aud
                    .strip_prefix("http:")
                    .or_else(|| aud.strip_prefix("https:"))
                    .is_some_and(|rest| rest == endpoint)
        });
    if !audience_ok {
        return Err(invalid_grant("Invalid JWT: Failed audience check."));
    }
    let (Some(iat), Some(exp)) = (seconds(claims.get("iat")), seconds(claims.get("exp"))) else {
        return Err(invalid_grant(BAD_TIMES));
    };
    if exp <= iat || exp - iat > MAX_LIFETIME_S || exp <= now || iat > now + CLOCK_SKEW_S {
        return Err(invalid_grant(BAD_TIMES));
    }
    let scope = match claims.get("scope") {
        Some(Value::String(scope)) => scope.clone(),
        _ => {
            return Err(invalid_scope(
                "Invalid OAuth scope or ID token audience provided.".to_owned(),
            ))
        }
    };
    if !scope.split_whitespace().any(|s| s == CLOUD_PLATFORM) {
        return Err(invalid_scope(format!(
            "Invalid OAuth scope or ID token audience provided. Vertex AI needs the scope {CLOUD_PLATFORM}."
        )));
    }
    Ok(Grant { client, scope })
}

/// A fresh `ya29.sim-...` access token, unique within the process.
fn new_token(upstream: &str, client: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let hash = bytes_hash(&[
        upstream.as_bytes(),
        client.as_bytes(),
        &n.to_le_bytes(),
        &nanos.to_le_bytes(),
    ]);
    let body = base64_encode(&hash[..30])
        .replace('+', "-")
        .replace('/', "_");
    format!("ya29.sim-{body}")
}

/// `POST /{upstream}/token`.
pub async fn token(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return oauth_error("invalid_request", "The request body is too large.");
    };
    let upstream = sim.upstream(&name);
    upstream.record(Recorded {
        method: parts.method.clone(),
        path: parts
            .uri
            .path_and_query()
            .map_or(parts.uri.path(), |p| p.as_str())
            .to_owned(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let form = String::from_utf8_lossy(&body);
    match form_value(&form, "grant_type") {
        Some(grant) if grant == JWT_BEARER => {}
        other => {
            return oauth_error(
                "unsupported_grant_type",
                &format!("Invalid grant_type: {}", other.unwrap_or_default()),
            )
        }
    }
    let Some(assertion) = form_value(&form, "assertion").filter(|a| !a.is_empty()) else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let endpoint = format!("//{host}{}", parts.uri.path());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let grant = match check_assertion(&assertion, &endpoint, now) {
        Ok(grant) => grant,
        Err(refusal) => return refusal.into_response(),
    };
    let token = new_token(&name, &grant.client);
    let expires_in = upstream.issue_token(token.clone(), &grant.client, &grant.scope);
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate"),
            ),
        ],
        json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"})
            .to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url(bytes: &[u8]) -> String {
        base64_encode(bytes)
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    }

    fn jwt(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            b64url(b"not really a signature")
        )
    }

    fn claims(now: i64) -> Value {
        json!({
            "iss": "sa@p.iam.gserviceaccount.com",
            "scope": format!("openid {CLOUD_PLATFORM}"),
            "aud": "https://oauth2.googleapis.com/token",
            "iat": now,
            "exp": now + 3600,
        })
    }

    fn header() -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": "abc"})
    }

    fn description(refusal: Refusal) -> String {
        format!("{}: {}", refusal.error, refusal.description)
    }

    const HERE: &str = "//127.0.0.1:9/vertex/token";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn good_assertions_pass() {
        let grant = check_assertion(&jwt(header(), claims(NOW)), HERE, NOW).unwrap();
        assert_eq!(grant.client, "sa@p.iam.gserviceaccount.com");
        let mut own = claims(NOW);
        own["aud"] = json!("http://127.0.0.1:9/vertex/token");
        assert!(check_assertion(&jwt(json!({"alg": "RS256"}), own), HERE, NOW).is_ok());
    }

    #[test]
    fn bad_assertions_fail_with_googles_errors() {
        let err = |header: Value, claims: Value| {
            description(check_assertion(&jwt(header, claims), HERE, NOW).unwrap_err())
        };
        let with = |key: &str, value: Value| {
            let mut c = claims(NOW);
            c[key] = value;
            c
        };
        assert!(err(json!({"alg": "HS256"}), claims(NOW)).contains("RS256"));
        assert!(
            err(header(), with("aud", json!("https://example.com/token"))).contains("audience")
        );
        assert!(err(header(), with("exp", json!(NOW + 7200))).contains("short-lived"));
        assert!(
            err(header(), claims(NOW - 4000)).contains("short-lived"),
            "expired"
        );
        assert!(
            err(header(), claims(NOW + 3600)).contains("short-lived"),
            "future iat"
        );
        assert!(err(header(), with("scope", json!("openid"))).starts_with("invalid_scope"));
        assert!(err(header(), with("iss", json!(""))).starts_with("invalid_grant"));
        let unsigned = format!(
            "{}.{}.",
            b64url(header().to_string().as_bytes()),
            b64url(claims(NOW).to_string().as_bytes())
        );
        assert!(
            description(check_assertion(&unsigned, HERE, NOW).unwrap_err()).contains("Signature")
        );
        assert!(description(check_assertion("a.b", HERE, NOW).unwrap_err())
            .starts_with("invalid_grant"));
    }

    #[test]
    fn forms_and_base64url_decode() {
        let body =
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b+c";
        assert_eq!(form_value(body, "grant_type").as_deref(), Some(JWT_BEARER));
        assert_eq!(form_value(body, "assertion").as_deref(), Some("a.b c"));
        assert_eq!(form_value(body, "missing"), None);
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(base64url_decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64url_decode("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(base64url_decode("a+b"), None);
        assert!(new_token("u", "c").starts_with("ya29.sim-"));
        assert_ne!(new_token("u", "c"), new_token("u", "c"));
    }
}
