//! Bedrock's credentials, written from AWS's Signature Version 4 documentation: either a Bedrock
//! API key (`Authorization: Bearer <key>`, any non-empty key) or a SigV4 signature, verified for
//! real against the simulator's one test credential:
//!
//! - access key id `AKIDSWITCHYARDTEST`, secret access key `switchyard/test/secret/key/EXAMPLE`
//!   (any region, service `bedrock`; an `x-amz-security-token` is accepted and not checked).
//!
//! The canonical request is built from the request as received: method; the path exactly as
//! sent (so including the `/{upstream}` prefix), dot segments and empty segments removed, then
//! URI-encoded once more, as AWS does for every service but S3 (a model id `a:0` travels as
//! `a%3A0` and is signed as `a%253A0`, which is what botocore signs); the query pairs decoded,
//! re-encoded and sorted; each signed header's values trimmed, inner whitespace collapsed and
//! joined with `,` (`host` from the `:authority` when an HTTP/2 request has no `Host`); the
//! signed header names; and `x-amz-content-sha256` when sent, else the hex SHA-256 of the body.
//!
//! Rejections, all 403 and drawing no fault: no `Authorization` (`AccessDeniedException`,
//! "Authorization header is missing"); a missing SigV4 part or `X-Amz-Date`
//! (`IncompleteSignatureException`); another access key id (`UnrecognizedClientException`,
//! "The security token included in the request is invalid."); a bad date, a scope naming another
//! date, service or terminator, a `host` left unsigned, a clock more than 5 minutes off, or a
//! wrong signature (`InvalidSignatureException`; the last one's message shows the canonical
//! request and string to sign the simulator expected, as AWS's does).
//!
//! HMAC-SHA256 is written here over `sha2`; the simulator takes no HMAC crate.

use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use crate::generate::hex;

/// The one access key id the simulator knows.
pub const ACCESS_KEY_ID: &str = "AKIDSWITCHYARDTEST";
/// The secret access key of [`ACCESS_KEY_ID`].
pub const SECRET_ACCESS_KEY: &str = "switchyard/test/secret/key/EXAMPLE";

/// The signing name Bedrock Runtime's credential scope must carry.
const SERVICE: &str = "bedrock";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far the request's clock may be from the simulator's.
const MAX_SKEW_S: i64 = 5 * 60;

/// Why a request's credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The exception name in `x-amzn-ErrorType`.
    pub name: &'static str,
    pub message: String,
}

fn refused(name: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        name,
        message: message.into(),
    }
}

/// Checks the request's credentials at `now` (Unix seconds).
pub fn check(parts: &Parts, body: &[u8], now: i64) -> Result<(), Refused> {
    let Some(authorization) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(refused(
            "AccessDeniedException",
            "Authorization header is missing",
        ));
    };
    let authorization = authorization.to_str().unwrap_or("").trim();
    let (scheme, rest) = authorization.split_once(' ').unwrap_or((authorization, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.trim().is_empty() {
            return Err(refused(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        }
        return Ok(());
    }
    let fields = parse_authorization(scheme, rest, &parts.headers)?;
    verify(parts, body, now, &fields)
}

/// The parts of a SigV4 `Authorization` header.
struct Fields<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
    amz_date: &'a str,
}

fn parse_authorization<'a>(
    scheme: &str,
    rest: &'a str,
    headers: &'a HeaderMap,
) -> Result<Fields<'a>, Refused> {
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    if scheme == ALGORITHM {
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
    }
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok());
    let mut missing = Vec::new();
    for (name, value) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !value {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if amz_date.is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                .to_owned(),
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) =
        (credential, signed_headers, signature, amz_date)
    else {
        let shown = format!("{scheme} {rest}");
        let shown = shown.trim();
        return Err(refused(
            "IncompleteSignatureException",
            format!("{} Authorization={shown}", missing.join(" ")),
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = scope[..] else {
        return Err(refused(
            "IncompleteSignatureException",
            format!(
                "Credential should be of the form <access key id>/<date>/<region>/<service>/aws4_request, got '{credential}'."
            ),
        ));
    };
    Ok(Fields {
        access_key,
        date,
        region,
        service,
        terminator,
        signed_headers,
        signature,
        amz_date,
    })
}

fn verify(parts: &Parts, body: &[u8], now: i64, f: &Fields<'_>) -> Result<(), Refused> {
    if f.access_key != ACCESS_KEY_ID {
        return Err(refused(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    let invalid = |message: String| refused("InvalidSignatureException", message);
    let Some(signed_at) = parse_amz_date(f.amz_date) else {
        return Err(invalid(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            f.amz_date
        )));
    };
    if f.date != &f.amz_date[..8] {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            f.date,
            &f.amz_date[..8],
            f.amz_date
        )));
    }
    if f.service != SERVICE {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    if f.terminator != "aws4_request" {
        return Err(invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            f.terminator
        )));
    }
    if signed_at < now - MAX_SKEW_S {
        return Err(invalid(format!(
            "Signature expired: {} is now earlier than {} ({} - 5 min.)",
            f.amz_date,
            format_amz_date(now - MAX_SKEW_S),
            format_amz_date(now)
        )));
    }
    if signed_at > now + MAX_SKEW_S {
        return Err(invalid(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            f.amz_date,
            format_amz_date(now + MAX_SKEW_S),
            format_amz_date(now)
        )));
    }
    let names: Vec<&str> = f.signed_headers.split(';').collect();
    if !names.contains(&"host") && !names.contains(&":authority") {
        return Err(invalid(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    let canonical = canonical_request(parts, body, &names);
    let scope = format!("{}/{}/{SERVICE}/aws4_request", f.date, f.region);
    let to_sign = string_to_sign(f.amz_date, &scope, &canonical);
    let expected = signature(SECRET_ACCESS_KEY, f.date, f.region, SERVICE, &to_sign);
    if !f.signature.eq_ignore_ascii_case(&expected) {
        return Err(invalid(format!(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.\n\nThe Canonical String for this request should have \
             been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
        )));
    }
    Ok(())
}

/// The canonical request (see the module docs).
fn canonical_request(parts: &Parts, body: &[u8], signed: &[&str]) -> String {
    let mut headers = String::new();
    for name in signed {
        let mut values: Vec<String> = parts
            .headers
            .get_all(*name)
            .iter()
            .map(|v| collapse(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() && *name == "host" {
            values.extend(parts.uri.authority().map(|a| a.as_str().to_owned()));
        }
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&values.join(","));
        headers.push('\n');
    }
    let payload = match parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(declared) => declared.to_owned(),
        None => hex(&Sha256::digest(body)),
    };
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload}",
        parts.method.as_str(),
        canonical_uri(parts.uri.path()),
        canonical_query(parts.uri.query().unwrap_or("")),
        signed.join(";"),
    )
}

/// The path as sent, without dot or empty segments, URI-encoded once more.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = format!("/{}", segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    uri_encode(normalized.as_bytes(), false)
}

/// Query pairs decoded and re-encoded, sorted by key, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(k), true),
                uri_encode(&percent_decode(v), true),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes every byte but the unreserved ones (and `/` unless `encode_slash`).
fn uri_encode(bytes: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        let keep =
            b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && !encode_slash);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex_pair) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Trims a header value and collapses its inner runs of spaces to one.
fn collapse(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    )
}

/// The hex signature of `to_sign` with the key derived from `secret` for the scope.
fn signature(secret: &str, date: &str, region: &str, service: &str, to_sign: &str) -> String {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    hex(&hmac_sha256(&k_signing, to_sign.as_bytes()))
}

/// HMAC-SHA256 (RFC 2104): `H((K ^ opad) || H((K ^ ipad) || data))` over a 64-byte block.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Unix seconds of `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = text.get(range)?;
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// `YYYYMMDDTHHMMSSZ` of Unix seconds.
fn format_amz_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(request: Request<()>) -> Parts {
        request.into_parts().0
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // A key longer than the block is hashed first (RFC 4231 test case 6).
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signs_aws_get_vanilla_test_vector() {
        let request = parts(
            Request::get("/")
                .header("host", "example.amazonaws.com")
                .header("x-amz-date", "20150830T123600Z")
                .body(())
                .unwrap(),
        );
        let canonical = canonical_request(&request, b"", &["host", "x-amz-date"]);
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let to_sign = string_to_sign(
            "20150830T123600Z",
            "20150830/us-east-1/service/aws4_request",
            &canonical,
        );
        assert_eq!(
            signature(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830",
                "us-east-1",
                "service",
                &to_sign
            ),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn paths_are_encoded_twice_and_normalized() {
        assert_eq!(
            canonical_uri("/sim/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"),
            "/sim/model/us.anthropic.claude-3-5-haiku-20241022-v1%253A0/converse"
        );
        assert_eq!(canonical_uri("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
    }

    #[test]
    fn dates_round_trip() {
        let secs = parse_amz_date("20240229T235959Z").unwrap();
        assert_eq!(secs, 1_709_251_199);
        assert_eq!(format_amz_date(secs), "20240229T235959Z");
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("2024-02-29T23:59:59Z"), None);
    }

    fn signed(amz_date: &str, secret: &str, akid: &str) -> Parts {
        let mut request = parts(
            Request::post("/up/model/m%3A0/converse")
                .header("host", "127.0.0.1:1")
                .header("x-amz-date", amz_date)
                .header("content-type", "application/json")
                .body(())
                .unwrap(),
        );
        let names = ["content-type", "host", "x-amz-date"];
        let canonical = canonical_request(&request, b"{}", &names);
        let scope = format!("{}/eu-west-3/bedrock/aws4_request", &amz_date[..8]);
        let to_sign = string_to_sign(amz_date, &scope, &canonical);
        let sig = signature(secret, &amz_date[..8], "eu-west-3", "bedrock", &to_sign);
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={}, Signature={sig}",
            names.join(";")
        );
        request
            .headers
            .insert(header::AUTHORIZATION, value.parse().unwrap());
        request
    }

    #[test]
    fn verifies_signatures_keys_and_clock() {
        let now = parse_amz_date("20250102T030405Z").unwrap();
        let good = signed("20250102T030405Z", SECRET_ACCESS_KEY, ACCESS_KEY_ID);
        assert_eq!(check(&good, b"{}", now), Ok(()));
        let err = check(&good, b"{\"x\":1}", now).unwrap_err();
        assert_eq!(err.name, "InvalidSignatureException");
        assert!(err.message.contains("%253A0"), "{}", err.message);
        let wrong = signed("20250102T030405Z", "nope", ACCESS_KEY_ID);
        assert_eq!(
            check(&wrong, b"{}", now).unwrap_err().name,
            "InvalidSignatureException"
        );
        let stranger = signed("20250102T030405Z", SECRET_ACCESS_KEY, "AKIDOTHER");
        assert_eq!(
            check(&stranger, b"{}", now).unwrap_err().name,
            "UnrecognizedClientException"
        );
        let stale = check(&good, b"{}", now + 301).unwrap_err();
        assert!(
            stale.message.starts_with("Signature expired"),
            "{}",
            stale.message
        );
        let early = check(&good, b"{}", now - 301).unwrap_err();
        assert!(early.message.starts_with("Signature not yet current"));
    }

    #[test]
    fn bearer_and_missing_credentials() {
        let bearer = parts(
            Request::post("/")
                .header("authorization", "Bearer ABSKkey")
                .body(())
                .unwrap(),
        );
        assert_eq!(check(&bearer, b"", 0), Ok(()));
        let none = parts(Request::post("/").body(()).unwrap());
        assert_eq!(
            check(&none, b"", 0).unwrap_err().name,
            "AccessDeniedException"
        );
        let partial = parts(
            Request::post("/")
                .header("authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e")
                .body(())
                .unwrap(),
        );
        let err = check(&partial, b"", 0).unwrap_err();
        assert_eq!(err.name, "IncompleteSignatureException");
        assert!(
            err.message.contains("'Signature'") && err.message.contains("'X-Amz-Date'"),
            "{}",
            err.message
        );
    }
}
