//! Tests of candidate selection: each preference, their combinations, variants, and the
//! inverse-square distribution of the default load balancing.

use super::*;
use crate::catalog::CatalogFiles;

const PROVIDERS: &str = r#"{"providers":[
  {"slug":"cheap","name":"Cheap","protocol":"openai","base_url":"https://c","data_policy":{"training":true}},
  {"slug":"mid","name":"Mid Co","protocol":"openai","base_url":"https://m","data_policy":{"zdr":true}},
  {"slug":"dear","name":"Dear","protocol":"openai","base_url":"https://d","data_policy":{"zdr":true}}]}"#;
const MODELS: &str = r#"{"version":"t","models":[
  {"id":"a/one","canonical_slug":"a/one","name":"One","created":1,"context_length":8000,
   "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}},
  {"id":"a/two","canonical_slug":"a/two","name":"Two","created":2,"context_length":8000,
   "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}},
  {"id":"a/one:free","canonical_slug":"a/one","name":"One (free)","created":1,"context_length":8000,
   "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}}]}"#;
// a/one: cheap $1+$1 /M (fp8, no tools), mid $2+$2 (bf16, tools), dear $4+$4 (tools, response_format).
const ENDPOINTS: &str = r#"{"endpoints":[
  {"model":"a/one","provider":"cheap","tag":"cheap/fp8","upstream_model":"one","context_length":8000,"quantization":"fp8",
   "pricing":{"prompt":"0.000001","completion":"0.000001"},"supported_parameters":["temperature"]},
  {"model":"a/one","provider":"mid","tag":"mid","upstream_model":"one","context_length":8000,"quantization":"bf16",
   "pricing":{"prompt":"0.000002","completion":"0.000002"},"supported_parameters":["temperature","tools"]},
  {"model":"a/one","provider":"dear","tag":"dear","upstream_model":"one","context_length":8000,
   "pricing":{"prompt":"0.000004","completion":"0.000004"},"supported_parameters":["temperature","tools","response_format"]},
  {"model":"a/two","provider":"cheap","tag":"cheap","upstream_model":"two","context_length":8000,
   "pricing":{"prompt":"0.0000005","completion":"0.0000005"}},
  {"model":"a/one:free","provider":"mid","tag":"mid","upstream_model":"one","context_length":8000,
   "pricing":{"prompt":"0","completion":"0"}}]}"#;

fn catalog() -> Catalog {
    Catalog::from_files(CatalogFiles {
        providers: PROVIDERS,
        models: MODELS,
        endpoints: ENDPOINTS,
    })
    .unwrap()
}

/// Tags chosen for `models` with `provider` preferences and request `params`, seed fixed.
fn check(models: &[&str], provider: Value, params: &[&str]) -> Result<Vec<String>, ApiError> {
    let c = catalog();
    let prefs = ProviderPrefs::parse(Some(&provider), None)?;
    let models: Vec<String> = models.iter().map(|m| m.to_string()).collect();
    let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
    let plan = plan(
        &c,
        &RouteRequest {
            models: &models,
            prefs: &prefs,
            params: &params,
            seed: 7,
        },
        &|_| true,
    )?;
    Ok(plan
        .iter()
        .map(|c| format!("{}@{}", c.endpoint.tag, c.model.id))
        .collect())
}

fn tags(models: &[&str], provider: Value) -> Vec<String> {
    check(models, provider, &[])
        .unwrap()
        .into_iter()
        .map(|t| t.split('@').next().unwrap().to_owned())
        .collect()
}

#[test]
fn sort_by_price_and_partitions() {
    assert_eq!(
        tags(&["a/one"], json!({"sort": "price"})),
        ["cheap/fp8", "mid", "dear"]
    );
    assert_eq!(
        check(&["a/one", "a/two"], json!({"sort": "price"}), &[]).unwrap(),
        ["cheap/fp8@a/one", "mid@a/one", "dear@a/one", "cheap@a/two"]
    );
    assert_eq!(
        check(
            &["a/one", "a/two"],
            json!({"sort": {"by": "price", "partition": "none"}}),
            &[]
        )
        .unwrap(),
        ["cheap@a/two", "cheap/fp8@a/one", "mid@a/one", "dear@a/one"]
    );
}

#[test]
fn only_ignore_and_order_by_slug_tag_or_name() {
    assert_eq!(
        tags(
            &["a/one"],
            json!({"only": ["mid", "Dear"], "sort": "price"})
        ),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"ignore": ["cheap/fp8"], "sort": "price"})
        ),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(&["a/one"], json!({"order": ["dear", "mid co"]})),
        ["dear", "mid", "cheap/fp8"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"order": ["dear"], "allow_fallbacks": false})
        ),
        ["dear"]
    );
}

#[test]
fn hard_filters_and_their_errors() {
    assert_eq!(
        tags(&["a/one"], json!({"zdr": true, "sort": "price"})),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"data_collection": "deny", "sort": "price"})
        ),
        ["mid", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"quantizations": ["fp8", "unknown"], "sort": "price"})
        ),
        ["cheap/fp8", "dear"]
    );
    assert_eq!(
        tags(
            &["a/one"],
            json!({"max_price": {"prompt": 2.5}, "sort": "price"})
        ),
        ["cheap/fp8", "mid"]
    );
    let err = check(
        &["a/one"],
        json!({"max_price": {"prompt": 0.5}, "zdr": true}),
        &[],
    )
    .unwrap_err();
    assert_eq!(err.code.status(), 404);
    let availability = err.availability.unwrap();
    assert_eq!(availability["code"], "constraint_filtered");
    assert_eq!(
        availability["excluded_by"],
        json!(["data_policy:zdr", "max_price"])
    );
}

#[test]
fn required_and_soft_parameters() {
    // Tools act as a soft filter: endpoints without them go when others have them.
    assert_eq!(
        check(&["a/one"], json!({"sort": "price"}), &["tools"])
            .unwrap()
            .len(),
        2
    );
    // response_format only on `dear`.
    assert_eq!(tags(&["a/one"], json!({})).len(), 3);
    let only_dear = check(
        &["a/one"],
        json!({}),
        &["response_format", "messages", "model"],
    )
    .unwrap();
    assert_eq!(only_dear, ["dear@a/one"]);
    // require_parameters excludes endpoints lacking any sent parameter (bookkeeping keys aside).
    let strict = check(
        &["a/one"],
        json!({"require_parameters": true, "sort": "price"}),
        &["temperature", "tools", "messages"],
    );
    assert_eq!(strict.unwrap(), ["mid@a/one", "dear@a/one"]);
    let none = check(&["a/two"], json!({"require_parameters": true}), &["seed"]).unwrap_err();
    assert_eq!(
        none.availability.unwrap()["excluded_by"],
        json!(["require_parameters"])
    );
}

#[test]
fn variants() {
    assert_eq!(
        tags(&["a/one:floor"], json!({})),
        ["cheap/fp8", "mid", "dear"]
    );
    assert_eq!(tags(&["a/one:nitro"], json!({})).len(), 3);
    assert_eq!(tags(&["a/one:online"], json!({"sort": "price"})).len(), 3);
    // `:free` is a model of its own when the catalog has it.
    assert_eq!(
        check(&["a/one:free"], json!({}), &[]).unwrap(),
        ["mid@a/one:free"]
    );
    assert_eq!(
        check(&["a/none"], json!({}), &[])
            .unwrap_err()
            .code
            .status(),
        400
    );
}

#[test]
fn bad_preferences_are_400s() {
    for bad in [
        json!({"order": "mid"}),
        json!({"sort": "fastest"}),
        json!({"data_collection": "maybe"}),
        json!({"max_price": {"prompt": "cheap"}}),
        json!({"allow_fallbacks": "no"}),
        json!({"sort": {"by": "price", "partition": "sometimes"}}),
    ] {
        assert_eq!(
            ProviderPrefs::parse(Some(&bad), None)
                .unwrap_err()
                .code
                .status(),
            400,
            "{bad}"
        );
    }
    assert!(
        ProviderPrefs::parse(None, Some(&json!("sort")))
            .unwrap()
            .partition_none
    );
    assert!(ProviderPrefs::parse(None, Some(&json!("nope"))).is_err());
}

#[test]
fn default_balancing_follows_the_inverse_square_of_price() {
    // Prices 2, 4, 8 (sum per token): weights 1/4, 1/16, 1/64, i.e. 16:4:1.
    let c = catalog();
    let prefs = ProviderPrefs::default();
    let models = vec!["a/one".to_owned()];
    let mut counts = [0f64; 3];
    let draws = 21_000;
    for seed in 0..draws {
        let plan = plan(
            &c,
            &RouteRequest {
                models: &models,
                prefs: &prefs,
                params: &[],
                seed,
            },
            &|_| true,
        )
        .unwrap();
        let first = ["cheap/fp8", "mid", "dear"]
            .iter()
            .position(|t| *t == plan[0].endpoint.tag)
            .unwrap();
        counts[first] += 1.0;
        // The others follow by price.
        let rest: Vec<i128> = plan[1..].iter().map(price_key).collect();
        assert!(rest.windows(2).all(|w| w[0] <= w[1]));
    }
    let expected = [16.0 / 21.0, 4.0 / 21.0, 1.0 / 21.0].map(|p| p * draws as f64);
    let chi_square: f64 = counts
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    // 2 degrees of freedom: 13.8 is the 0.1% critical value.
    assert!(
        chi_square < 13.8,
        "chi-square {chi_square}: counts {counts:?} vs {expected:?}"
    );
}

#[test]
fn bundled_catalog_cheapest_first_and_enabled_only() {
    let catalog = Catalog::from_files(crate::catalog::BUNDLED).unwrap();
    let models = vec!["meta-llama/llama-3.3-70b-instruct".to_owned()];
    let three = ["deepinfra", "groq", "together"];
    let prefs = ProviderPrefs {
        sort: Some(SortBy::Price),
        ..ProviderPrefs::default()
    };
    let request = RouteRequest {
        models: &models,
        prefs: &prefs,
        params: &[],
        seed: 0,
    };
    let some = plan(&catalog, &request, &|p| three.contains(&p.slug.as_str())).unwrap();
    let tags: Vec<&str> = some.iter().map(|c| c.endpoint.tag.as_str()).collect();
    assert_eq!(tags, ["deepinfra/turbo", "groq", "together/fp8"]);
    assert_eq!(
        plan(&catalog, &request, &|_| false)
            .unwrap_err()
            .code
            .status(),
        404
    );
    assert!(resolve_model(&catalog, "openai/gpt-4o-mini:nitro").is_some());
}
