//! The generation record: one per request that reached an upstream, charged or not.
//!
//! Business logic fills it in; the store writes it as given; `/generation` renders it with every
//! field OpenRouter's schema lists (null where we do not know).

use crate::money::Money;
use crate::pricing::Usage;
use serde_json::{json, Value};

/// One upstream attempt of a request (fallbacks make several).
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub provider_name: String,
    pub endpoint_tag: String,
    pub model_permaslug: String,
    /// The catalog model id that was tried (`models` fallbacks differ from the served one).
    pub model_id: String,
    /// Upstream HTTP status; `None` when no response came (connect error, reset, timeout).
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub upstream_id: Option<String>,
    /// Sent with the account's own credential.
    pub is_byok: bool,
}

/// Everything known about one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRecord {
    pub id: String,
    pub account_id: String,
    pub key_hash: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Catalog model id that served (or was last tried).
    pub model: String,
    pub provider_name: Option<String>,
    pub upstream_id: Option<String>,
    pub streamed: bool,
    pub cancelled: bool,
    pub finish_reason: Option<String>,
    pub native_finish_reason: Option<String>,
    pub usage: Usage,
    /// What the account was charged (for BYOK requests: the BYOK fee).
    pub cost: Money,
    /// Served with the account's own provider credentials.
    pub is_byok: bool,
    /// For BYOK requests, what the generation would have cost at the endpoint's prices.
    pub byok_usage: Money,
    /// Milliseconds from request to the end of the response.
    pub latency_ms: u64,
    /// Milliseconds from the upstream's first byte to the end.
    pub generation_time_ms: u64,
    pub http_referer: Option<String>,
    pub app_title: Option<String>,
    pub user_agent: Option<String>,
    pub external_user: Option<String>,
    pub session_id: Option<String>,
    pub attempts: Vec<Attempt>,
    /// Why the request failed, if it did.
    pub error: Option<String>,
}

impl GenerationRecord {
    /// The `data` object of `GET /api/v1/generation`.
    pub fn to_json(&self) -> Value {
        let attempts: Vec<Value> = self
            .attempts
            .iter()
            .map(|a| {
                json!({
                    "id": a.upstream_id,
                    "endpoint_id": a.endpoint_tag,
                    "model_permaslug": a.model_permaslug,
                    "provider_name": a.provider_name,
                    "status": a.status,
                    "latency": a.latency_ms,
                    "is_byok": a.is_byok,
                })
            })
            .collect();
        let cost = self.cost.as_usd_f64();
        json!({
            "id": self.id,
            "request_id": null,
            "session_id": self.session_id,
            "upstream_id": self.upstream_id,
            "created_at": format_rfc3339_ms(self.created_at_ms),
            "model": self.model,
            "api_type": "completions",
            "provider_name": self.provider_name,
            "provider_responses": attempts,
            "router": null,
            "origin": self.http_referer.clone().unwrap_or_default(),
            "http_referer": self.http_referer,
            "app_title": self.app_title,
            "user_agent": self.user_agent,
            "app_id": null,
            "external_user": self.external_user,
            "preset_id": null,
            "workspace_id": null,
            "data_region": "global",
            "service_tier": null,
            "streamed": self.streamed,
            "cancelled": self.cancelled,
            "is_byok": self.is_byok,
            "finish_reason": self.finish_reason,
            "native_finish_reason": self.native_finish_reason,
            "total_cost": cost,
            "usage": cost,
            "cache_discount": null,
            "upstream_inference_cost": if self.is_byok { json!(self.byok_usage.as_usd_f64()) } else { Value::Null },
            "latency": self.latency_ms,
            "moderation_latency": null,
            "generation_time": self.generation_time_ms,
            "tokens_prompt": self.usage.prompt_tokens,
            "tokens_completion": self.usage.completion_tokens,
            "native_tokens_prompt": self.usage.prompt_tokens,
            "native_tokens_completion": self.usage.completion_tokens,
            "native_tokens_reasoning": self.usage.reasoning_tokens,
            "native_tokens_cached": self.usage.cached_tokens,
            "native_tokens_completion_images": 0,
            "num_media_prompt": self.usage.images,
            "num_media_completion": 0,
            "num_input_audio_prompt": 0,
            "num_search_results": self.usage.web_searches,
            "num_fetches": 0,
            "web_search_engine": null,
            "response_cache_source_id": null,
        })
    }
}

/// `2024-07-15T23:33:19.433+00:00` from unix milliseconds (UTC), without a date library.
pub fn format_rfc3339_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an ISO 8601 / RFC 3339 timestamp in UTC (`Z` or `+00:00`; other offsets are refused, as
/// OpenRouter does) to unix milliseconds. A bare date means its midnight.
pub fn parse_rfc3339_utc_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let digits = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<i64>().ok())
            .flatten()
    };
    let date = text.get(..10)?;
    let (y, m, d) = (
        digits(date.get(..4)?)?,
        digits(date.get(5..7)?)?,
        digits(date.get(8..10)?)?,
    );
    if date.as_bytes()[4] != b'-'
        || date.as_bytes()[7] != b'-'
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let days = days_from_civil(y, m as u32, d as u32);
    if civil_from_days(days) != (y, m as u32, d as u32) {
        return None;
    }
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(days * 86_400_000);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let time = rest.get(..8)?;
    let (h, min, sec) = (
        digits(time.get(..2)?)?,
        digits(time.get(3..5)?)?,
        digits(time.get(6..8)?)?,
    );
    if time.as_bytes()[2] != b':' || time.as_bytes()[5] != b':' || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut ms = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &fraction[..len.min(3)]);
        ms = first3.parse::<i64>().ok()?;
        rest = &fraction[len..];
    }
    if !matches!(rest, "Z" | "z" | "+00:00" | "-00:00" | "+0000") {
        return None;
    }
    Some(days * 86_400_000 + (h * 3600 + min * 60 + sec) * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Starts (unix ms) of the current UTC day, week (from Monday) and month: the usage windows.
pub fn utc_window_starts(now_ms: i64) -> [i64; 3] {
    const DAY_MS: i64 = 86_400_000;
    let days = now_ms.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: three days after a Monday.
    let week_days = days - (days + 3).rem_euclid(7);
    let (_, _, d) = civil_from_days(days);
    let month_days = days - (d as i64 - 1);
    [days * DAY_MS, week_days * DAY_MS, month_days * DAY_MS]
}

/// Proleptic Gregorian date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(
            format_rfc3339_ms(1_721_086_399_433),
            "2024-07-15T23:33:19.433+00:00"
        );
        assert_eq!(
            format_rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000+00:00"
        );
    }

    #[test]
    fn parses_utc_timestamps_only() {
        for ms in [0, 1_721_086_399_433, 951_782_400_000, 1_795_361_400_000] {
            assert_eq!(parse_rfc3339_utc_ms(&format_rfc3339_ms(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339_utc_ms("2027-01-01T00:00:00Z"),
            Some(1_798_761_600_000)
        );
        assert_eq!(parse_rfc3339_utc_ms("2027-01-01"), Some(1_798_761_600_000));
        assert_eq!(
            parse_rfc3339_utc_ms("2027-01-01T00:00:00.5Z"),
            Some(1_798_761_600_500)
        );
        for bad in [
            "2027-01-01T00:00:00+02:00",
            "2027-02-30T00:00:00Z",
            "2027-01-01T25:00:00Z",
            "tomorrow",
            "2027-01-01T00:00Z",
        ] {
            assert_eq!(parse_rfc3339_utc_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn usage_windows_start_at_utc_midnight_monday_and_first_of_month() {
        // 2026-11-22T15:30:00Z is a Sunday.
        let now = 1_795_361_400_000;
        assert_eq!(format_rfc3339_ms(now), "2026-11-22T15:30:00.000+00:00");
        let [day, week, month] = utc_window_starts(now);
        assert_eq!(format_rfc3339_ms(day), "2026-11-22T00:00:00.000+00:00");
        assert_eq!(format_rfc3339_ms(week), "2026-11-16T00:00:00.000+00:00");
        assert_eq!(format_rfc3339_ms(month), "2026-11-01T00:00:00.000+00:00");
    }
}
