//! Tests of activity windows, endpoint ids and the CSV export format.

use super::*;
use switchyard_core::money::Money;
use switchyard_core::pricing::Usage;

// 2026-11-22T15:30:00Z.
const NOW: i64 = 1_795_361_400_000;
const TODAY: i64 = 1_795_305_600_000;

#[test]
fn dates_parse_only_as_yyyy_mm_dd() {
    assert_eq!(parse_date("2026-11-22"), Some(TODAY));
    assert_eq!(parse_date("1970-01-01"), Some(0));
    for bad in [
        "2026-11-22T00:00:00Z",
        "2026-2-1",
        "2026-02-30",
        "20261122",
        "yesterday",
        "",
    ] {
        assert_eq!(parse_date(bad), None, "{bad}");
    }
}

#[test]
fn windows_default_to_the_last_30_complete_days() {
    assert_eq!(window(None, NOW).unwrap(), (TODAY - 30 * DAY_MS, TODAY));
    assert_eq!(window(Some(""), NOW).unwrap(), (TODAY - 30 * DAY_MS, TODAY));
    assert_eq!(
        window(Some("2026-11-22"), NOW).unwrap(),
        (TODAY, TODAY + DAY_MS)
    );
    assert_eq!(
        window(Some("2026-10-23"), NOW).unwrap(),
        (TODAY - 30 * DAY_MS, TODAY - 29 * DAY_MS)
    );
    for (bad, message) in [
        (
            "2026-10-22",
            "within the last 30 days: from 2026-10-23 to 2026-11-22",
        ),
        ("2026-11-23", "within the last 30 days"),
        ("22/11/2026", "YYYY-MM-DD"),
    ] {
        let err = window(Some(bad), NOW).unwrap_err();
        assert!(err.contains(message), "{err}");
    }
}

#[test]
fn endpoint_ids_come_from_the_catalog() {
    let catalog = Catalog::from_files(switchyard_core::catalog::BUNDLED).unwrap();
    assert_eq!(
        endpoint_id(&catalog, "openai/gpt-4o-mini", "OpenAI"),
        "openai"
    );
    // A provider that does not serve the model still gets its slug; an unknown one a slugged name.
    assert_eq!(endpoint_id(&catalog, "nope/model", "OpenAI"), "openai");
    assert_eq!(
        endpoint_id(&catalog, "nope/model", "My Private Box"),
        "my-private-box"
    );
    let row = ActivityRow {
        date: "2026-11-21".into(),
        model: "openai/gpt-4o-mini".into(),
        provider_name: "OpenAI".into(),
        usage: Money::from_nanos(1_500_000),
        byok_usage: Money::ZERO,
        requests: 3,
        prompt_tokens: 30,
        completion_tokens: 20,
        reasoning_tokens: 0,
        cached_tokens: 4,
    };
    let value = row_json(&catalog, &row);
    assert_eq!(
        value["model_permaslug"],
        catalog.model("openai/gpt-4o-mini").unwrap().canonical_slug
    );
    assert_eq!(value["usage"], 0.0015);
    assert_eq!(value["endpoint_id"], "openai");
    assert_eq!(value["cached_tokens"], 4);
}

fn record(id: &str, app_title: Option<&str>) -> GenerationRecord {
    GenerationRecord {
        id: id.into(),
        account_id: "acct_1".into(),
        key_hash: "ab".repeat(32),
        created_at_ms: NOW,
        model: "openai/gpt-4o-mini".into(),
        provider_name: Some("OpenAI".into()),
        upstream_id: None,
        streamed: true,
        cancelled: false,
        finish_reason: Some("stop".into()),
        native_finish_reason: None,
        usage: Usage {
            prompt_tokens: 12,
            completion_tokens: 34,
            cached_tokens: 5,
            reasoning_tokens: 6,
            ..Usage::default()
        },
        cost: Money::from_nanos(1_234),
        is_byok: false,
        byok_usage: Money::ZERO,
        latency_ms: 120,
        generation_time_ms: 80,
        http_referer: Some("https://example.test".into()),
        app_title: app_title.map(str::to_owned),
        user_agent: None,
        external_user: None,
        session_id: None,
        attempts: vec![],
        error: None,
    }
}

#[test]
fn csv_quotes_what_needs_quoting_and_amounts_are_exact() {
    assert_eq!(csv_field("plain"), "plain");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    let mut out = Vec::new();
    write_csv(
        &mut out,
        &[
            record("gen-1", Some("My \"App\", v2")),
            record("gen-2", None),
        ],
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], CSV_COLUMNS.join(","));
    assert_eq!(
        lines[1],
        format!(
            "gen-1,2026-11-22T15:30:00.000+00:00,acct_1,{},openai/gpt-4o-mini,OpenAI,true,false,stop,12,34,5,6,0.000001234,false,0,120,80,https://example.test,\"My \"\"App\"\", v2\"",
            "ab".repeat(32)
        )
    );
    assert!(lines[2].starts_with("gen-2,") && lines[2].ends_with(",https://example.test,"));
    assert_eq!(lines[3], "");
}
