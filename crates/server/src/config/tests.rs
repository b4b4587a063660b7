//! Tests of configuration layering and validation.

use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn defaults_enable_providers_from_their_usual_variables() {
    let env = env_of(&[("OPENAI_API_KEY", "sk-test"), ("GROQ_API_KEY", "")]);
    let config = Config::from_toml("", &env, &Overrides::default()).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.database, "sqlite://switchyard.db");
    assert_eq!(config.upstreams.keys().collect::<Vec<_>>(), ["openai"]);
    assert_eq!(
        config.upstreams["openai"].base_url,
        "https://api.openai.com/v1"
    );
    assert_eq!(
        config.upstreams["openai"]
            .api_key
            .as_ref()
            .unwrap()
            .expose(),
        "sk-test"
    );
}

#[test]
fn file_then_env_then_flags() {
    let env = env_of(&[
        ("MY_KEY", "secret-value"),
        ("SWITCHYARD_DATABASE", "sqlite://env.db"),
        (
            "SWITCHYARD_PROVIDER_GROQ_BASE_URL",
            "http://127.0.0.1:9/groq/v1/",
        ),
        ("SWITCHYARD_PROVIDER_GROQ_API_KEY", "env:MY_KEY"),
    ]);
    let text = r#"
        listen = "127.0.0.1:9000"
        database = "sqlite://file.db"
        keepalive_ms = 250
        [providers.openai]
        base_url = "http://127.0.0.1:9/openai/v1"
        api_key = "env:MY_KEY"
    "#;
    let overrides = Overrides {
        listen: Some("127.0.0.1:9001".into()),
        database: None,
    };
    let config = Config::from_toml(text, &env, &overrides).unwrap();
    assert_eq!(config.listen.port(), 9001);
    assert_eq!(config.database, "sqlite://env.db");
    assert_eq!(config.keepalive, Duration::from_millis(250));
    assert_eq!(
        config.upstreams["groq"].base_url,
        "http://127.0.0.1:9/groq/v1"
    );
    assert_eq!(
        config.upstreams["openai"]
            .api_key
            .as_ref()
            .unwrap()
            .expose(),
        "secret-value"
    );
    // Secrets never print.
    assert!(!format!("{config:?}").contains("secret-value"));
}

#[test]
fn bad_configs_say_what_to_fix() {
    let env = env_of(&[]);
    let cases = [
        ("listen = \"nowhere\"", "listen"),
        ("bogus = 1", "unknown field"),
        ("[providers.acme]\napi_key = \"x\"", "providers.acme"),
        ("[providers.openai]\napi_key = \"env:MISSING\"", "MISSING"),
        (
            "[providers.openai]\napi_key = \"x\"\nbase_url = \"ftp://x\"",
            "base_url",
        ),
    ];
    for (text, want) in cases {
        let err = Config::from_toml(text, &env, &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err} does not mention {want}");
    }
}

const OVERRIDES: &str = r#"
[catalog]
margin_percent = 10
disabled_models = ["openai/gpt-4.1-nano"]
disabled_providers = ["together"]

[providers.local-vllm]
name = "Local vLLM"
protocol = "openai"
base_url = "http://127.0.0.1:8000/v1"
enabled = true

[[models]]
id = "local/llama-3.1-8b"
name = "Local: Llama 3.1 8B"
context_length = 131072

[[endpoints]]
model = "local/llama-3.1-8b"
provider = "local-vllm"
upstream_model = "meta-llama/Llama-3.1-8B-Instruct"
pricing = { prompt = "0.0000001", completion = "0.0000002" }

[[endpoints]]
model = "openai/gpt-4o-mini"
provider = "local-vllm"
tag = "local-vllm/mirror"
upstream_model = "gpt-4o-mini"

[[prices]]
model = "openai/gpt-4o-mini"
tag = "openai"
pricing = { prompt = "0.0000002" }
"#;

#[test]
fn operator_overrides_change_the_catalog() {
    let env = env_of(&[]);
    let config = Config::from_toml(OVERRIDES, &env, &Overrides::default()).unwrap();
    let c = &config.catalog;
    let local = c.model("local/llama-3.1-8b").unwrap();
    // Private endpoints get the margin too (it applies to everything not set under [[prices]]).
    assert_eq!(local.endpoints[0].pricing.prompt.picos(), 110_000);
    assert_eq!(local.endpoints[0].context_length, 131_072);
    assert!(config.upstreams.contains_key("local-vllm"));
    assert_eq!(
        config.upstreams["local-vllm"].base_url,
        "http://127.0.0.1:8000/v1"
    );
    let mini = c.model("openai/gpt-4o-mini").unwrap();
    let openai = mini.endpoints.iter().find(|e| e.tag == "openai").unwrap();
    assert_eq!(
        openai.pricing.prompt.picos(),
        200_000,
        "explicit price, no margin"
    );
    assert_eq!(
        openai.pricing.completion.picos(),
        600_000,
        "unchanged by [[prices]]"
    );
    assert!(mini.endpoints.iter().any(|e| e.tag == "local-vllm/mirror"));
    assert!(c.model("openai/gpt-4.1-nano").is_none());
    assert!(c
        .models()
        .iter()
        .all(|m| m.endpoints.iter().all(|e| e.provider != "together")));
    let llama = c.model("meta-llama/llama-3.3-70b-instruct").unwrap();
    let groq = llama
        .endpoints
        .iter()
        .find(|e| e.provider == "groq")
        .unwrap();
    assert_eq!(groq.pricing.prompt.picos(), 649_000, "0.00000059 plus 10%");
}

fn check_line(text: &str, line: usize, want: &str) {
    let env = env_of(&[]);
    let err = Config::from_toml(text, &env, &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("line {line}")),
        "`{err}` does not name line {line}"
    );
    assert!(err.contains(want), "`{err}` does not contain `{want}`");
}

#[test]
fn bad_overrides_name_the_line_and_the_fix() {
    check_line(
        "# comment\n[[endpoints]]\nmodel = \"openai/gpt-4o-mini\"\nprovider = \"nope\"\nupstream_model = \"x\"\n",
        2,
        "add [providers.nope]",
    );
    check_line(
        "\n\n[[models]]\nid = \"openai/gpt-4o-mini\"\ncontext_length = 1\n",
        3,
        "already in the catalog",
    );
    check_line(
        "[[endpoints]]\nmodel = \"openai/gpt-4o-mini\"\nprovider = \"openai\"\ntag = \"openai/x\"\nupstream_model = \"x\"\npricing = { prompt = \"-0.1\" }\n",
        6,
        "negative",
    );
    check_line(
        "[catalog]\ndisabled_models = [\n  \"a/none\",\n]\n",
        3,
        "unknown model `a/none`",
    );
    check_line(
        "[[prices]]\nmodel = \"a/none\"\nmargin_percent = 5\n",
        1,
        "matches no endpoint",
    );
    check_line(
        "\n[providers.acme]\napi_key = \"x\"\n",
        2,
        "protocol = \"openai\"",
    );
}

#[test]
fn routing_section_sets_health_policy_and_account_defaults() {
    let text = r#"
[routing]
outage_window_s = 10
outage_min_failures = 5
outage_failure_percent = 80
breaker_open_s = 2
provider = { ignore = ["together"], sort = "price" }

[routing.accounts.acct_a]
provider = { order = ["groq"], allow_fallbacks = false }
"#;
    let config = Config::from_toml(text, &env_of(&[]), &Overrides::default()).unwrap();
    let r = &config.routing;
    assert_eq!(r.health.outage_window_ms, 10_000);
    assert_eq!(r.health.outage_min_failures, 5);
    assert!((r.health.outage_failure_ratio - 0.8).abs() < 1e-9);
    assert_eq!(r.health.open_ms, 2_000);
    assert_eq!(
        r.defaults_for("acct_b").unwrap()["ignore"],
        serde_json::json!(["together"])
    );
    assert_eq!(
        r.defaults_for("acct_a").unwrap()["order"],
        serde_json::json!(["groq"])
    );

    for (bad, want) in [
        (
            "[routing]\nprovider = { sort = \"fastest\" }\n",
            "routing.provider",
        ),
        (
            "[routing.accounts.x]\nprovider = { order = \"groq\" }\n",
            "routing.accounts.x.provider",
        ),
        (
            "[routing]\noutage_failure_percent = 0\n",
            "outage_failure_percent",
        ),
        ("[routing]\nbreaker = 1\n", "breaker"),
    ] {
        let err = Config::from_toml(bad, &env_of(&[]), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{bad}: {err}");
    }
}

#[test]
fn testing_store_write_delay_defaults_to_zero_and_is_read_from_the_file() {
    let env = env_of(&[]);
    let config = Config::from_toml("", &env, &Overrides::default()).unwrap();
    assert_eq!(config.store_write_delay, Duration::ZERO);
    let text = "[testing]\nstore_write_delay_ms = 20\n";
    let config = Config::from_toml(text, &env, &Overrides::default()).unwrap();
    assert_eq!(config.store_write_delay, Duration::from_millis(20));
    assert!(Config::from_toml("[testing]\nslow = 1\n", &env, &Overrides::default()).is_err());
}
