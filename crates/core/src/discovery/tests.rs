//! Tests of discovery rendering and the `/models` query on a small catalog.

use super::*;
use crate::catalog::CatalogFiles;

const PROVIDERS: &str = r#"{"providers":[
  {"slug":"a","name":"Alpha","protocol":"openai","base_url":"https://a","data_policy":{"zdr":true}},
  {"slug":"b","name":"Beta","protocol":"openai","base_url":"https://b"}]}"#;
const MODELS: &str = r#"{"version":"t","aliases":{"~x/chat-latest":"x/chat-2"},"models":[
  {"id":"x/chat-2","canonical_slug":"x/chat-2-0801","name":"X: Chat 2","created":200,"context_length":128000,
   "architecture":{"modality":"text+image->text","input_modalities":["text","image"],"output_modalities":["text"],"tokenizer":"Other"}},
  {"id":"x/chat-1","canonical_slug":"x/chat-1","name":"X: Chat 1","created":100,"context_length":8000,
   "architecture":{"modality":"text->text","input_modalities":["text"],"output_modalities":["text"]}},
  {"id":"y/embed","canonical_slug":"y/embed","name":"Y: Embed","created":50,"context_length":8000,
   "architecture":{"modality":"text->embeddings","input_modalities":["text"],"output_modalities":["embeddings"]}}]}"#;
const ENDPOINTS: &str = r#"{"endpoints":[
  {"model":"x/chat-2","provider":"a","tag":"a","upstream_model":"chat-2","context_length":128000,"max_completion_tokens":4096,
   "pricing":{"prompt":"0.000002","completion":"0.000008","input_cache_read":"0.0000005"},"supported_parameters":["tools","temperature"]},
  {"model":"x/chat-2","provider":"b","tag":"b/fp8","upstream_model":"x-chat-2","context_length":64000,"quantization":"fp8",
   "pricing":{"prompt":"0.000003","completion":"0.000009","discount":0.1},"supported_parameters":["temperature"]},
  {"model":"x/chat-1","provider":"b","tag":"b","upstream_model":"x-chat-1","context_length":8000,
   "pricing":{"prompt":"0.0000001","completion":"0.0000002"},"supported_parameters":["temperature"]},
  {"model":"y/embed","provider":"a","tag":"a","upstream_model":"embed","context_length":8000,
   "pricing":{"prompt":"0.00000002","completion":"0"}}]}"#;

fn catalog() -> Catalog {
    Catalog::from_files(CatalogFiles {
        providers: PROVIDERS,
        models: MODELS,
        endpoints: ENDPOINTS,
    })
    .unwrap()
}

fn ids(catalog: &Catalog, query: &[(&str, &str)]) -> Vec<String> {
    let q = ModelQuery::parse(query.iter().copied()).unwrap();
    q.select(catalog)
        .into_iter()
        .map(|i| catalog.models()[i].id.clone())
        .collect()
}

#[test]
fn model_object_has_openrouters_fields() {
    let c = catalog();
    let m = model_json(c.model("x/chat-2").unwrap());
    assert_eq!(
        m["pricing"],
        json!({"prompt": "0.000002", "completion": "0.000008", "input_cache_read": "0.0000005"})
    );
    assert_eq!(
        m["top_provider"],
        json!({"context_length": 128000, "max_completion_tokens": 4096, "is_moderated": false})
    );
    assert_eq!(m["supported_parameters"], json!(["temperature", "tools"]));
    assert_eq!(
        m["links"]["details"],
        "/api/v1/models/x/chat-2-0801/endpoints"
    );
    for key in [
        "per_request_limits",
        "default_parameters",
        "supported_voices",
        "hugging_face_id",
    ] {
        assert!(m[key].is_null(), "{key}");
    }
    let e = endpoints_json(&c, c.model("x/chat-2").unwrap());
    assert_eq!(e["endpoints"][1]["tag"], "b/fp8");
    assert_eq!(e["endpoints"][1]["provider_name"], "Beta");
    assert_eq!(e["endpoints"][1]["pricing"]["discount"], 0.1);
    assert!(e["endpoints"][1]["uptime_last_30m"].is_null());
    assert_eq!(
        e["endpoints"][0]["supports_tool_choice"],
        json!({"auto": true, "none": true, "required": false, "function": false})
    );
    assert_eq!(
        model_json(c.model("y/embed").unwrap())["architecture"]["tokenizer"],
        "Other"
    );
    assert_eq!(e["endpoints"][1]["name"], "Beta | x/chat-2-0801");
}

#[test]
fn filters_sorts_and_defaults() {
    let c = catalog();
    assert_eq!(ids(&c, &[]), ["x/chat-2", "x/chat-1"]);
    assert_eq!(ids(&c, &[("output_modalities", "all")]).len(), 3);
    assert_eq!(ids(&c, &[("output_modalities", "embeddings")]), ["y/embed"]);
    assert_eq!(ids(&c, &[("supported_parameters", "tools")]), ["x/chat-2"]);
    assert_eq!(ids(&c, &[("input_modalities", "image")]), ["x/chat-2"]);
    assert_eq!(ids(&c, &[("q", "CHAT 1")]), ["x/chat-1"]);
    assert_eq!(ids(&c, &[("providers", "a")]), ["x/chat-2"]);
    assert_eq!(ids(&c, &[("zdr", "true")]), ["x/chat-2"]);
    assert_eq!(ids(&c, &[("context", "10000")]), ["x/chat-2"]);
    assert_eq!(
        ids(&c, &[("sort", "pricing-low-to-high")]),
        ["x/chat-1", "x/chat-2"]
    );
    assert_eq!(ids(&c, &[("max_price", "1")]), ["x/chat-1"]);
    assert_eq!(ids(&c, &[("min_output_price", "5")]), ["x/chat-2"]);
    assert_eq!(
        ids(&c, &[("model_authors", "y"), ("output_modalities", "all")]),
        ["y/embed"]
    );
    assert!(ModelQuery::parse([("limit", "0")]).is_err());
    assert!(ModelQuery::parse([("max_price", "cheap")]).is_err());
}

#[test]
fn paging_links_and_totals() {
    let q = ModelQuery::parse([("limit", "2"), ("offset", "1")]).unwrap();
    let page = page(
        "/api/v1/models",
        &q,
        vec![json!(1), json!(2), json!(3), json!(4)],
    );
    assert_eq!(page["data"], json!([2, 3]));
    assert_eq!(page["total_count"], 4);
    assert_eq!(page["links"]["next"], "/api/v1/models?offset=3&limit=2");
    let q =
        ModelQuery::parse([("limit", "2"), ("q", "a b&c"), ("output_modalities", "all")]).unwrap();
    let first = super::page("/api/v1/models", &q, vec![json!(1), json!(2), json!(3)]);
    assert_eq!(
        first["links"]["next"],
        "/api/v1/models?offset=2&limit=2&q=a%20b%26c&output_modalities=all"
    );
    let q = ModelQuery::parse([("limit", "2"), ("offset", "3")]).unwrap();
    assert!(
        super::page("/p", &q, vec![json!(1), json!(2), json!(3), json!(4)])["links"]["next"]
            .is_null()
    );
}

#[test]
fn look_ups_by_id_permaslug_alias_and_variant() {
    let c = catalog();
    for id in [
        "x/chat-2",
        "x/chat-2-0801",
        "~x/chat-latest",
        "x/chat-2:free",
        "~x/chat-latest:nitro",
    ] {
        assert_eq!(
            find_model(&c, id).map(|m| m.id.as_str()),
            Some("x/chat-2"),
            "{id}"
        );
    }
    assert!(find_model(&c, "x/none").is_none());
}
