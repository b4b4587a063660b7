//! Tests of catalog validation and look-ups, including the bundled catalog's integrity.

use super::*;

#[test]
fn bundled_catalog_is_valid() {
    let catalog = Catalog::from_files(BUNDLED).unwrap();
    let model = catalog.model("openai/gpt-4o-mini").unwrap();
    let openai = model
        .endpoints
        .iter()
        .find(|e| e.provider == "openai")
        .unwrap();
    assert_eq!(openai.upstream_model, "gpt-4o-mini");
    assert_eq!(
        openai.pricing.prompt,
        Price::parse_usd("0.00000015").unwrap()
    );
    assert_eq!(catalog.provider("openai").unwrap().name, "OpenAI");
}

const PROVIDERS: &str =
    r#"{"providers":[{"slug":"p","name":"P","protocol":"openai","base_url":"http://x"}]}"#;
const MODELS: &str = r#"{"version":"t","models":[{"id":"a/m","canonical_slug":"a/m","name":"M","created":0,"context_length":8,
    "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}}]}"#;

fn endpoints(endpoint: &str) -> String {
    format!(r#"{{"endpoints":[{endpoint}]}}"#)
}

fn load(providers: &str, models: &str, endpoints: &str) -> Result<Catalog, CatalogError> {
    Catalog::from_files(CatalogFiles {
        providers,
        models,
        endpoints,
    })
}

#[test]
fn rejects_bad_documents_with_a_clear_reason() {
    let ok = r#"{"model":"a/m","provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{"prompt":"0.000001"}}"#;
    assert!(load(PROVIDERS, MODELS, &endpoints(ok)).is_ok());
    let cases = [
        (
            r#"{"model":"a/m","provider":"q","tag":"q","upstream_model":"m","context_length":8,"pricing":{}}"#,
            "unknown provider `q`",
        ),
        (
            r#"{"model":"a/x","provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{}}"#,
            "unknown model `a/x`",
        ),
        (
            r#"{"model":"a/m","provider":"p","tag":"other","upstream_model":"m","context_length":8,"pricing":{}}"#,
            "tag must be",
        ),
        (
            r#"{"model":"a/m","provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{"prompt":"-1"}}"#,
            "negative",
        ),
        (
            r#"{"model":"a/m","provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{"discount":2}}"#,
            "discount",
        ),
        (
            r#"{"model":"a/m","provider":"p","tag":"p","upstream_model":"m","context_length":8,"pricing":{"bogus":"1"}}"#,
            "unknown field",
        ),
        (&format!("{ok},{ok}"), "duplicate endpoint"),
    ];
    for (endpoint, want) in cases {
        let err = load(PROVIDERS, MODELS, &endpoints(endpoint))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err} does not contain {want}");
    }
    assert!(load(PROVIDERS, MODELS, &endpoints(""))
        .unwrap_err()
        .to_string()
        .contains("no endpoints"));
}
