//! AWS Signature Version 4 for one request with a fully known body (Bedrock Runtime calls).
//!
//! Written here rather than taken from `aws-sigv4`: that crate brings the Smithy runtime
//! (`aws-smithy-*`, `aws-credential-types`) for what is a canonical string and four HMACs over
//! `hmac`/`sha2`, which the build already has. Checked against AWS's published test vectors
//! and against the simulator, which verifies signatures the way boto3 makes them.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Long- or short-term AWS credentials.
#[derive(Clone)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// With temporary credentials (STS), sent as `x-amz-security-token` and signed.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What is signed: the request line, the host and the body.
pub struct Signable<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// The path as it goes on the wire (already percent-encoded once).
    pub path: &'a str,
    /// The raw query string, without `?` (may be empty).
    pub query: &'a str,
    pub body: &'a [u8],
}

/// The headers to add to the request: `x-amz-date`, `authorization`, and
/// `x-amz-security-token` with temporary credentials.
pub fn sign(
    req: &Signable<'_>,
    keys: &AwsKeys,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Vec<(&'static str, String)> {
    let date = &amz_date[..8.min(amz_date.len())];
    let mut headers: Vec<(&str, &str)> = vec![("host", req.host), ("x-amz-date", amz_date)];
    if let Some(token) = &keys.session_token {
        headers.push(("x-amz-security-token", token));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(n, v)| format!("{n}:{}\n", v.trim()))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_path(req.path),
        canonical_query(req.query),
        canonical_headers,
        signed_headers,
        hex(&Sha256::digest(req.body)),
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{}", keys.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    let mut out = vec![
        ("x-amz-date", amz_date.to_owned()),
        (
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                keys.access_key_id
            ),
        ),
    ];
    if let Some(token) = &keys.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out
}

/// `YYYYMMDD'T'HHMMSS'Z'` for a Unix time in seconds.
pub fn amz_date(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn uri_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Services other than S3 sign each path segment encoded once more than it is sent (so a model
/// id `a:0`, sent as `a%3A0`, is signed as `a%253A0`).
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 16);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode(segment, &mut out);
    }
    out
}

/// Parameters sorted by name then value, each encoded as RFC 3986 requires.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&percent_decode(k), &mut ek);
            uri_encode(&percent_decode(v), &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| {
            bytes
                .get(j)
                .and_then(|c| (*c as char).to_digit(16))
                .map(|d| d as u8)
        };
        match (bytes[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_keys() -> AwsKeys {
        AwsKeys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        }
    }

    fn authorization(req: &Signable<'_>, keys: &AwsKeys) -> String {
        sign(req, keys, "us-east-1", "service", "20150830T123600Z")
            .into_iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1
    }

    /// AWS's Signature Version 4 test suite, `get-vanilla` and `post-vanilla`.
    #[test]
    fn aws_test_suite_vanilla_requests() {
        let get = Signable {
            method: "GET",
            host: "example.amazonaws.com",
            path: "/",
            query: "",
            body: b"",
        };
        assert_eq!(
            authorization(&get, &example_keys()),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        let post = Signable {
            method: "POST",
            ..get
        };
        assert_eq!(
            authorization(&post, &example_keys()),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    /// `get-vanilla-query-order-key-case`: parameters are sorted.
    #[test]
    fn aws_test_suite_query_order() {
        let get = Signable {
            method: "GET",
            host: "example.amazonaws.com",
            path: "/",
            query: "Param2=value2&Param1=value1",
            body: b"",
        };
        assert_eq!(
            authorization(&get, &example_keys()),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn path_segments_are_encoded_again() {
        assert_eq!(
            canonical_path("/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"),
            "/model/us.anthropic.claude-3-5-haiku-20241022-v1%253A0/converse"
        );
    }

    #[test]
    fn session_tokens_are_signed_and_sent() {
        let keys = AwsKeys {
            session_token: Some("tok".into()),
            ..example_keys()
        };
        let req = Signable {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/m/converse",
            query: "",
            body: b"{}",
        };
        let headers = sign(&req, &keys, "us-east-1", "bedrock", "20250101T000000Z");
        assert!(headers
            .iter()
            .any(|(n, v)| *n == "x-amz-security-token" && v == "tok"));
        let auth = &headers
            .iter()
            .find(|(n, _)| *n == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            "{auth}"
        );
        assert!(
            auth.contains("/20250101/us-east-1/bedrock/aws4_request"),
            "{auth}"
        );
    }

    #[test]
    fn amz_dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(1_709_251_199), "20240229T235959Z");
    }
}
