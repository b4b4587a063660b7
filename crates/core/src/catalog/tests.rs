//! Tests of catalog validation and look-ups.

use super::*;

const BUNDLED: &str = include_str!("../../../../catalog/catalog.json");

#[test]
fn bundled_catalog_is_valid() {
    let catalog = Catalog::from_json(BUNDLED).unwrap();
    assert!(catalog.models().len() >= 5);
    let model = catalog.model("openai/gpt-4o-mini").unwrap();
    assert_eq!(model.endpoints[0].upstream_model, "gpt-4o-mini");
    assert_eq!(
        model.endpoints[0].pricing.prompt,
        Price::parse_usd("0.00000015").unwrap()
    );
    assert_eq!(catalog.provider("openai").unwrap().name, "OpenAI");
}

fn doc(endpoint: &str) -> String {
    format!(
        r#"{{"version":"t","providers":[{{"slug":"p","name":"P","protocol":"openai","base_url":"http://x"}}],
        "models":[{{"id":"a/m","canonical_slug":"a/m","name":"M","created":0,"context_length":8,"architecture":{{}},
        "endpoints":[{endpoint}]}}]}}"#
    )
}

#[test]
fn rejects_bad_documents_with_a_clear_reason() {
    let ok = r#"{"provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{"prompt":"0.000001"}}"#;
    assert!(Catalog::from_json(&doc(ok)).is_ok());
    let cases = [
        (
            r#"{"provider":"q","tag":"q","upstream_model":"m","context_length":8,"pricing":{}}"#,
            "unknown provider `q`",
        ),
        (
            r#"{"provider":"p","tag":"other","upstream_model":"m","context_length":8,"pricing":{}}"#,
            "tag must be",
        ),
        (
            r#"{"provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{"prompt":"-1"}}"#,
            "negative",
        ),
        (
            r#"{"provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{"discount":2}}"#,
            "discount",
        ),
    ];
    for (endpoint, want) in cases {
        let err = Catalog::from_json(&doc(endpoint)).unwrap_err().to_string();
        assert!(err.contains(want), "{err} does not contain {want}");
    }
}
