//! `POST /{upstream}/model/{modelId}/invoke` for the embedding models, written from Bedrock's
//! model parameter pages: deterministic unit vectors seeded by the input text.
//!
//! - **Amazon Titan Text Embeddings V2** (`amazon.titan-embed-text-v2:0`): `{"inputText",
//!   "dimensions"?, "normalize"?, "embeddingTypes"?}` → `{"embedding", "inputTextTokenCount",
//!   "embeddingsByType"}`. `dimensions` is 256, 512 or 1024 (default); `normalize: false` scales
//!   the vector by a deterministic factor; `embeddingTypes` (`float`, `binary`) fills
//!   `embeddingsByType` (always at least `float`; `binary` is one 0/1 per dimension, 1 when
//!   positive). At most 8192 input tokens. Titan G1 (`amazon.titan-embed-text-v1`) takes only
//!   `inputText` and answers 1536 dimensions without `embeddingsByType`.
//! - **Cohere Embed v3** (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`):
//!   `{"texts", "input_type", "truncate"?, "embedding_types"?}` → `{"id", "embeddings",
//!   "response_type", "texts"}`, 1024 dimensions: a list of float vectors
//!   (`embeddings_floats`), or with `embedding_types` an object of `float`, `int8`, `uint8`,
//!   `binary`, `ubinary` lists (`embeddings_by_type`; binary packs one bit per dimension,
//!   most significant first). At most 96 texts; `images` are left out.
//!
//! Both answer with `X-Amzn-Bedrock-Input-Token-Count` (the fixed tokenizer's count) and
//! `X-Amzn-Bedrock-Invocation-Latency`. Bodies are checked like Bedrock checks model bodies:
//! "Malformed input request: #/dimensions: 100 is not a valid enum value, please reformat your
//! input and try again." Other model ids answer 400 `ValidationException`.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::{base_model, check_model_id, uuid, Bedrock, Invalid};
use crate::control::Sim;
use crate::exchange::{self, json_body, pace_whole};
use crate::generate::{bytes_hash, Rng};
use crate::tokenizer;

const TITAN_V2_DIMENSIONS: &[u64] = &[256, 512, 1024];
const TITAN_V2_DEFAULT: usize = 1024;
const TITAN_V1_DIMENSIONS: usize = 1536;
const TITAN_MAX_TOKENS: u64 = 8192;
const COHERE_DIMENSIONS: usize = 1024;
const COHERE_MAX_TEXTS: usize = 96;
const COHERE_INPUT_TYPES: &[&str] = &[
    "search_document",
    "search_query",
    "classification",
    "clustering",
];
const COHERE_TYPES: &[&str] = &["float", "int8", "uint8", "binary", "ubinary"];

/// The embedding models InvokeModel serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    TitanV1,
    TitanV2,
    Cohere,
}

fn model_of(base: &str) -> Option<Model> {
    if base.starts_with("amazon.titan-embed-text-v2") {
        Some(Model::TitanV2)
    } else if base.starts_with("amazon.titan-embed-text-v1") {
        Some(Model::TitanV1)
    } else if base.starts_with("cohere.embed-english-v3")
        || base.starts_with("cohere.embed-multilingual-v3")
    {
        Some(Model::Cohere)
    } else {
        None
    }
}

fn malformed(problem: &str) -> Invalid {
    Invalid(format!(
        "Malformed input request: {problem}, please reformat your input and try again."
    ))
}

fn reject_extra(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), Invalid> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(malformed(&format!(
            "#: extraneous key [{key}] is not permitted"
        ))),
        None => Ok(()),
    }
}

fn expected(key: &str, kind: &str, found: &Value) -> Invalid {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "Boolean",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    };
    malformed(&format!("#/{key}: expected type: {kind}, found: {found}"))
}

/// What an embedding call answers: the body and the input tokens for the header.
struct Embedded {
    body: Value,
    input_tokens: u64,
}

/// `POST /{upstream}/model/{modelId}/invoke`.
pub async fn invoke(
    State(sim): State<Arc<Sim>>,
    Path((name, model_id)): Path<(String, String)>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let admitted = match exchange::admit::<Bedrock>(&sim, &name, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if let Err(invalid) = check_model_id(&model_id) {
        return invalid.into_response();
    }
    let Some(model) = model_of(base_model(&model_id)) else {
        return Invalid(format!(
            "The simulator's InvokeModel serves the embedding models amazon.titan-embed-text-v2:0, amazon.titan-embed-text-v1, cohere.embed-english-v3 and cohere.embed-multilingual-v3, not {model_id}; use Converse for chat models."
        ))
        .into_response();
    };
    let value: Value = match serde_json::from_slice(&admitted.body) {
        Ok(value) => value,
        Err(_) => return malformed("#: the body is not valid JSON").into_response(),
    };
    let Some(obj) = value.as_object() else {
        return expected("", "JSONObject", &value).into_response();
    };
    admitted.upstream.note_model(&model_id);
    let embedded = match model {
        Model::TitanV1 | Model::TitanV2 => titan(obj, model),
        Model::Cohere => cohere(obj),
    };
    let embedded = match embedded {
        Ok(embedded) => embedded,
        Err(invalid) => return invalid.into_response(),
    };
    pace_whole(&admitted.behaviour, 0).await;
    let mut response =
        json_body::<Bedrock>(embedded.body.to_string().into_bytes(), admitted.body_fault);
    let latency = started.elapsed().as_millis() as u64;
    for (name, value) in [
        ("x-amzn-bedrock-input-token-count", embedded.input_tokens),
        ("x-amzn-bedrock-invocation-latency", latency),
    ] {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}

fn titan(obj: &Map<String, Value>, model: Model) -> Result<Embedded, Invalid> {
    let v2 = model == Model::TitanV2;
    if v2 {
        reject_extra(
            obj,
            &["inputText", "dimensions", "normalize", "embeddingTypes"],
        )?;
    } else {
        reject_extra(obj, &["inputText"])?;
    }
    let text = match obj.get("inputText") {
        None | Some(Value::Null) => return Err(malformed("#: required key [inputText] not found")),
        Some(Value::String(text)) => text.as_str(),
        Some(other) => return Err(expected("inputText", "String", other)),
    };
    if text.is_empty() {
        return Err(malformed("#/inputText: expected minLength: 1, actual: 0"));
    }
    let input_tokens = tokenizer::count(text);
    if input_tokens > TITAN_MAX_TOKENS {
        return Err(Invalid(format!(
            "400 Bad Request: Too many input tokens. Max input tokens: {TITAN_MAX_TOKENS}, request input token count: {input_tokens} "
        )));
    }
    let dimensions = match obj.get("dimensions") {
        None | Some(Value::Null) if v2 => TITAN_V2_DEFAULT,
        None | Some(Value::Null) => TITAN_V1_DIMENSIONS,
        Some(v) => match v.as_u64() {
            Some(n) if TITAN_V2_DIMENSIONS.contains(&n) => n as usize,
            Some(_) => {
                return Err(malformed(&format!(
                    "#/dimensions: {v} is not a valid enum value"
                )))
            }
            None => return Err(expected("dimensions", "Integer", v)),
        },
    };
    let normalize = match obj.get("normalize") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(expected("normalize", "Boolean", other)),
    };
    let mut types = Vec::new();
    match obj.get("embeddingTypes") {
        None | Some(Value::Null) => types.push("float"),
        Some(Value::Array(items)) if !items.is_empty() => {
            for item in items {
                match item.as_str() {
                    Some(kind @ ("float" | "binary")) => {
                        if !types.contains(&kind) {
                            types.push(kind);
                        }
                    }
                    _ => {
                        return Err(malformed(&format!(
                            "#/embeddingTypes: {item} is not a valid enum value"
                        )))
                    }
                }
            }
        }
        Some(Value::Array(_)) => {
            return Err(malformed(
                "#/embeddingTypes: expected minimum item count: 1, found: 0",
            ))
        }
        Some(other) => return Err(expected("embeddingTypes", "JSONArray", other)),
    }
    let seed = bytes_hash(&[b"titan", text.as_bytes()]);
    let mut vector = unit_vector(&seed, dimensions);
    if !normalize {
        // An unnormalized embedding keeps its direction and gets some length of its own.
        let scale = 0.5 + f32::from(seed[31]) / 64.0;
        for x in &mut vector {
            *x *= scale;
        }
    }
    let mut body = json!({"embedding": vector, "inputTextTokenCount": input_tokens});
    if v2 {
        let mut by_type = Map::new();
        for kind in types {
            let values = match kind {
                "binary" => json!(vector
                    .iter()
                    .map(|x| u8::from(*x > 0.0))
                    .collect::<Vec<_>>()),
                _ => json!(vector),
            };
            by_type.insert(kind.to_owned(), values);
        }
        body["embeddingsByType"] = Value::Object(by_type);
    }
    Ok(Embedded { body, input_tokens })
}

fn cohere(obj: &Map<String, Value>) -> Result<Embedded, Invalid> {
    reject_extra(
        obj,
        &[
            "texts",
            "input_type",
            "truncate",
            "embedding_types",
            "images",
        ],
    )?;
    let texts = match obj.get("texts") {
        None | Some(Value::Null) if obj.get("images").is_some() => {
            return Err(Invalid(
                "The simulator embeds texts only; send texts instead of images.".to_owned(),
            ))
        }
        None | Some(Value::Null) => return Err(malformed("#: required key [texts] not found")),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(expected("texts", "JSONArray", other)),
    };
    if texts.is_empty() {
        return Err(malformed(
            "#/texts: expected minimum item count: 1, found: 0",
        ));
    }
    if texts.len() > COHERE_MAX_TEXTS {
        return Err(malformed(&format!(
            "#/texts: expected maximum item count: {COHERE_MAX_TEXTS}, found: {}",
            texts.len()
        )));
    }
    let mut strings = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        match text.as_str() {
            Some(s) => strings.push(s),
            None => return Err(expected(&format!("texts/{i}"), "String", text)),
        }
    }
    let input_type = match obj.get("input_type") {
        None | Some(Value::Null) => {
            return Err(malformed("#: required key [input_type] not found"))
        }
        Some(v) => match v.as_str() {
            Some(t) if COHERE_INPUT_TYPES.contains(&t) => t,
            _ => {
                return Err(malformed(&format!(
                    "#/input_type: {v} is not a valid enum value"
                )))
            }
        },
    };
    match obj.get("truncate") {
        None | Some(Value::Null) => {}
        Some(v) if matches!(v.as_str(), Some("NONE" | "START" | "END")) => {}
        Some(v) => {
            return Err(malformed(&format!(
                "#/truncate: {v} is not a valid enum value"
            )))
        }
    }
    let by_type = match obj.get("embedding_types") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut kinds = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(kind) if COHERE_TYPES.contains(&kind) => {
                        if !kinds.contains(&kind) {
                            kinds.push(kind);
                        }
                    }
                    _ => {
                        return Err(malformed(&format!(
                            "#/embedding_types: {item} is not a valid enum value"
                        )))
                    }
                }
            }
            Some(kinds)
        }
        Some(Value::Array(_)) => {
            return Err(malformed(
                "#/embedding_types: expected minimum item count: 1, found: 0",
            ))
        }
        Some(other) => return Err(expected("embedding_types", "JSONArray", other)),
    };
    let vectors: Vec<Vec<f32>> = strings
        .iter()
        .map(|text| {
            let seed = bytes_hash(&[b"cohere", input_type.as_bytes(), text.as_bytes()]);
            unit_vector(&seed, COHERE_DIMENSIONS)
        })
        .collect();
    let input_tokens = strings.iter().map(|t| tokenizer::count(t)).sum();
    let id = uuid(&bytes_hash(&[b"cohere-id", input_type.as_bytes()]));
    let body = match by_type {
        None => json!({
            "id": id,
            "embeddings": vectors,
            "response_type": "embeddings_floats",
            "texts": strings,
        }),
        Some(kinds) => {
            let mut embeddings = Map::new();
            for kind in kinds {
                let rows: Value = match kind {
                    "float" => json!(vectors),
                    _ => json!(vectors
                        .iter()
                        .map(|v| integers(v, kind))
                        .collect::<Vec<_>>()),
                };
                embeddings.insert(kind.to_owned(), rows);
            }
            json!({
                "id": id,
                "embeddings": embeddings,
                "response_type": "embeddings_by_type",
                "texts": strings,
            })
        }
    };
    Ok(Embedded { body, input_tokens })
}

/// Cohere's integer encodings of a unit vector.
fn integers(vector: &[f32], kind: &str) -> Vec<i64> {
    match kind {
        "int8" => vector.iter().map(|x| (x * 127.0).round() as i64).collect(),
        "uint8" => vector
            .iter()
            .map(|x| ((x + 1.0) * 127.5).round() as i64)
            .collect(),
        _ => {
            let packed = vector.chunks(8).map(|chunk| {
                chunk
                    .iter()
                    .enumerate()
                    .fold(0i64, |byte, (i, x)| byte | (i64::from(*x > 0.0) << (7 - i)))
            });
            if kind == "binary" {
                packed.map(|b| b - 128).collect()
            } else {
                packed.collect()
            }
        }
    }
}

/// A unit-length vector that depends only on `seed` and the dimension count.
fn unit_vector(seed: &[u8; 32], dimensions: usize) -> Vec<f32> {
    let mut rng = Rng::from_hash(seed);
    let raw: Vec<f64> = (0..dimensions).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        let mut unit = vec![0.0; dimensions];
        unit[0] = 1.0;
        return unit;
    }
    raw.iter().map(|x| (x / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn titan_v2(body: Value) -> Result<Embedded, String> {
        titan(body.as_object().unwrap(), Model::TitanV2).map_err(|e| e.0)
    }

    #[test]
    fn titan_dimensions_types_and_errors() {
        let a = titan_v2(json!({"inputText": "hello world", "dimensions": 256, "embeddingTypes": ["float", "binary"]}))
            .unwrap();
        let embedding = a.body["embedding"].as_array().unwrap();
        assert_eq!(embedding.len(), 256);
        let norm: f64 = embedding.iter().map(|x| x.as_f64().unwrap().powi(2)).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(a.body["inputTextTokenCount"], 2);
        let binary = a.body["embeddingsByType"]["binary"].as_array().unwrap();
        assert_eq!(binary.len(), 256);
        assert!(binary.iter().all(|b| b == 0 || b == 1));
        let default = titan_v2(json!({"inputText": "x"})).unwrap();
        assert_eq!(default.body["embedding"].as_array().unwrap().len(), 1024);
        assert_eq!(
            default.body["embeddingsByType"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["float"]
        );
        assert_eq!(
            titan_v2(json!({"inputText": "x", "dimensions": 100})).err().unwrap(),
            "Malformed input request: #/dimensions: 100 is not a valid enum value, please reformat your input and try again."
        );
        assert!(titan_v2(json!({"text": "x"}))
            .err()
            .unwrap()
            .contains("extraneous key [text]"));
        let v1 = titan(
            json!({"inputText": "x"}).as_object().unwrap(),
            Model::TitanV1,
        )
        .unwrap();
        assert_eq!(v1.body["embedding"].as_array().unwrap().len(), 1536);
        assert!(v1.body.get("embeddingsByType").is_none());
    }

    #[test]
    fn cohere_shapes_and_errors() {
        let plain = cohere(
            json!({"texts": ["a b", "c"], "input_type": "search_query"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(plain.body["response_type"], "embeddings_floats");
        assert_eq!(plain.body["embeddings"].as_array().unwrap().len(), 2);
        assert_eq!(plain.input_tokens, 3);
        let typed = cohere(
            json!({"texts": ["a"], "input_type": "clustering", "embedding_types": ["float", "int8", "ubinary"]})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(typed.body["response_type"], "embeddings_by_type");
        assert_eq!(
            typed.body["embeddings"]["ubinary"][0]
                .as_array()
                .unwrap()
                .len(),
            128
        );
        let err = cohere(json!({"texts": ["a"]}).as_object().unwrap())
            .err()
            .unwrap();
        assert!(err.0.contains("required key [input_type]"), "{err:?}");
    }

    #[test]
    fn models_are_recognised_by_base_id() {
        assert_eq!(
            model_of("amazon.titan-embed-text-v2:0"),
            Some(Model::TitanV2)
        );
        assert_eq!(
            model_of("cohere.embed-multilingual-v3"),
            Some(Model::Cohere)
        );
        assert_eq!(model_of("anthropic.claude-3-haiku-20240307-v1:0"), None);
    }
}
