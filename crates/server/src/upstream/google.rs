//! Google service-account credentials: a signed JWT exchanged for an OAuth2 access token
//! (RFC 7523 `jwt-bearer`), cached until shortly before it expires.
//!
//! The JWT is RS256 over the account's PKCS#8 key with `ring` (already in the build through
//! rustls); a refresh is single-flight so a burst of requests at expiry makes one exchange.
//! Requests only wait on the token endpoint when no fresh token is cached.

use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Deserialize;
use serde_json::json;

/// The scope every Vertex AI call needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Tokens are refreshed this long before Google says they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The fields of a service-account key file (`type: service_account`) that the exchange uses.
#[derive(Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    private_key: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
    pub token_uri: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

/// Why a service account cannot be used or a token not obtained.
#[derive(Debug, thiserror::Error)]
pub enum GoogleAuthError {
    #[error("not a service-account key file: {0}")]
    File(String),
    #[error("the service account's private_key is not an RSA PKCS#8 PEM key")]
    Key,
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the token endpoint refused the service account ({status}): {detail}")]
    Refused { status: u16, detail: String },
}

/// One service account and its cached access token.
pub struct GoogleAuth {
    client_email: String,
    key_id: Option<String>,
    token_uri: String,
    pub project_id: Option<String>,
    key: RsaKeyPair,
    cached: RwLock<Option<(String, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAuth")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default = "default_expiry")]
    expires_in: u64,
}

fn default_expiry() -> u64 {
    3600
}

impl GoogleAuth {
    /// From the text of a service-account key file.
    pub fn from_json(text: &str) -> Result<GoogleAuth, GoogleAuthError> {
        let account: ServiceAccount =
            serde_json::from_str(text).map_err(|e| GoogleAuthError::File(e.to_string()))?;
        let der = pem_body(&account.private_key).ok_or(GoogleAuthError::Key)?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|_| GoogleAuthError::Key)?;
        Ok(GoogleAuth {
            client_email: account.client_email,
            key_id: account.private_key_id,
            token_uri: account.token_uri,
            project_id: account.project_id,
            key,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    pub async fn token(&self, client: &reqwest::Client) -> Result<String, GoogleAuthError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _refreshing = self.refresh.lock().await;
        // Another request may have refreshed while this one waited.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let asked = Instant::now();
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
            self.assertion(unix_now())
        );
        let response = client
            .post(&self.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| GoogleAuthError::Unreachable(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| GoogleAuthError::Unreachable(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("error_description")
                        .or_else(|| v.get("error"))
                        .and_then(|e| e.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            return Err(GoogleAuthError::Refused { status, detail });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| GoogleAuthError::Refused {
                status,
                detail: format!("unreadable token response: {e}"),
            })?;
        let lifetime = Duration::from_secs(parsed.expires_in).saturating_sub(REFRESH_MARGIN);
        let token = parsed.access_token;
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) =
            Some((token.clone(), asked + lifetime));
        Ok(token)
    }

    /// Forgets the cached token (Vertex refused it: revoked, or expired early), so the next call
    /// exchanges a new one.
    /// Only `token` is forgotten: a newer one another request fetched meanwhile stays.
    pub fn invalidate(&self, token: &str) {
        let mut cached = self.cached.write().unwrap_or_else(|e| e.into_inner());
        if cached.as_ref().is_some_and(|(t, _)| t == token) {
            *cached = None;
        }
    }

    fn fresh(&self) -> Option<String> {
        let cached = self.cached.read().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(token, _)| token.clone())
    }

    /// The signed JWT asking for a cloud-platform token, issued at `now` (Unix seconds).
    fn assertion(&self, now: u64) -> String {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": CLOUD_PLATFORM_SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing with a parsed key does not fail");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The DER bytes of a `-----BEGIN PRIVATE KEY-----` PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = pem[start..].find("-----END PRIVATE KEY-----")? + start;
    let b64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    fn fixture() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/vertex-service-account.json"
        ))
        .unwrap()
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_that_verifies() {
        let auth = GoogleAuth::from_json(&fixture()).unwrap();
        let jwt = auth.assertion(1_700_000_000);
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "0123456789abcdef0123456789abcdef01234567");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims["iss"],
            "gateway@switchyard-test.iam.gserviceaccount.com"
        );
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["scope"], CLOUD_PLATFORM_SCOPE);
        assert_eq!(claims["exp"].as_u64(), Some(1_700_003_600));
        let public = UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            auth.key.public().as_ref().to_vec(),
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("signature verifies with the account's public key");
    }

    #[test]
    fn bad_files_and_keys_are_rejected() {
        assert!(matches!(
            GoogleAuth::from_json("{}"),
            Err(GoogleAuthError::File(_))
        ));
        let mut v: serde_json::Value = serde_json::from_str(&fixture()).unwrap();
        v["private_key"] = json!("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        assert!(matches!(
            GoogleAuth::from_json(&v.to_string()),
            Err(GoogleAuthError::Key)
        ));
    }
}
