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
