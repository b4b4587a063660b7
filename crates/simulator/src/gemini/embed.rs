//! `embedContent` and `batchEmbedContents`: deterministic unit vectors, one per content, seeded
//! by the content's text, `taskType` and `title`, of `outputDimensionality` values (768 when
//! absent). Only text parts are embedded, as Gemini documents. Vertex AI's embeddings
//! (`vertex_embed`) use the same vectors.

use serde::Serialize;
use serde_json::{Map, Value};

use super::request::{self, check_keys, field, field_path, Invalid};
use crate::generate::{bytes_hash, Rng};

/// Vector length when the request names no `outputDimensionality`.
pub const DEFAULT_DIMENSIONS: u64 = 768;
/// Largest `outputDimensionality` accepted.
pub const MAX_DIMENSIONS: u64 = 3072;

const EMBED_KEYS: &[&str] = &[
    "model",
    "content",
    "taskType",
    "title",
    "outputDimensionality",
    "autoTruncate",
];

const TASK_TYPES: &[&str] = &[
    "TASK_TYPE_UNSPECIFIED",
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
];

#[derive(Serialize)]
pub struct Embedding {
    values: Vec<f32>,
}

#[derive(Serialize)]
pub struct Single {
    embedding: Embedding,
}

#[derive(Serialize)]
pub struct Batch {
    embeddings: Vec<Embedding>,
}

/// `POST .../models/{model}:embedContent`.
pub fn embed_content(value: &Value, model: &str) -> Result<Single, Invalid> {
    let obj = value
        .as_object()
        .ok_or_else(|| Invalid::bad_value("", "EmbedContentRequest", value))?;
    let embedding = embed_one(obj, "", "EmbedContentRequest", model)?;
    Ok(Single { embedding })
}

/// `POST .../models/{model}:batchEmbedContents`.
pub fn batch_embed_contents(value: &Value, model: &str) -> Result<Batch, Invalid> {
    let kind = "BatchEmbedContentsRequest";
    let obj = value
        .as_object()
        .ok_or_else(|| Invalid::bad_value("", kind, value))?;
    check_keys(obj, &["requests"], "")?;
    let requests = match field(obj, "requests") {
        None => {
            return Err(Invalid::semantic_in(
                kind,
                "requests",
                "requests is not specified",
            ))
        }
        Some(v) => request::array(v, "requests", "EmbedContentRequest")?,
    };
    if requests.is_empty() {
        return Err(Invalid::semantic_in(
            kind,
            "requests",
            "requests is not specified",
        ));
    }
    let embeddings = requests
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("requests[{i}]");
            let obj = request::object(item, &path, "EmbedContentRequest")?;
            embed_one(obj, &path, kind, model)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Batch { embeddings })
}

fn embed_one(
    obj: &Map<String, Value>,
    path: &str,
    kind: &str,
    model: &str,
) -> Result<Embedding, Invalid> {
    check_keys(obj, EMBED_KEYS, path)?;
    let at = |key: &str| field_path(path, key);
    if let Some(named) = field(obj, "model") {
        let named = request::string(named, &at("model"))?;
        let bare = named.strip_prefix("models/").unwrap_or(named);
        // Inside a batch every request must name the batch's model.
        if !path.is_empty() && bare != model {
            return Err(Invalid::semantic_in(
                kind,
                &at("model"),
                &format!("model `{named}` does not match the model of the request URL, `models/{model}`."),
            ));
        }
    }
    let content = match field(obj, "content") {
        None => {
            return Err(Invalid::semantic_in(
                kind,
                &at("content"),
                "content is not specified",
            ))
        }
        Some(c) => c,
    };
    request::check_embed_content(content, &at("content"))?;
    let task = match field(obj, "taskType") {
        None => "TASK_TYPE_UNSPECIFIED",
        Some(t) => request::enum_value(t, &at("taskType"), "TaskType", TASK_TYPES)?,
    };
    let title = match field(obj, "title") {
        None => "",
        Some(t) => request::string(t, &at("title"))?,
    };
    let dimensions = match field(obj, "outputDimensionality") {
        None => DEFAULT_DIMENSIONS,
        Some(d) => {
            let n = request::int(d, &at("outputDimensionality"))?;
            match u64::try_from(n) {
                Ok(n) if (1..=MAX_DIMENSIONS).contains(&n) => n,
                _ => {
                    return Err(Invalid::semantic_in(
                        kind,
                        &at("outputDimensionality"),
                        &format!("output_dimensionality must be between 1 and {MAX_DIMENSIONS}."),
                    ))
                }
            }
        }
    };
    let text: Vec<&str> = content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let text = text.join("\n");
    Ok(Embedding {
        values: vector(
            &[text.as_bytes(), task.as_bytes(), title.as_bytes()],
            dimensions,
        ),
    })
}

/// A unit-length vector that depends only on `seed` and the dimension count.
pub(super) fn vector(seed: &[&[u8]], dimensions: u64) -> Vec<f32> {
    let mut rng = Rng::from_hash(&bytes_hash(seed));
    let raw: Vec<f64> = (0..dimensions).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        let mut unit = vec![0.0; raw.len()];
        unit[0] = 1.0;
        return unit;
    }
    raw.iter().map(|x| (x / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vectors_honour_dimensions_and_are_deterministic() {
        let body = json!({"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8});
        let a = embed_content(&body, "m").unwrap().embedding.values;
        assert_eq!(a.len(), 8);
        assert_eq!(a, embed_content(&body, "m").unwrap().embedding.values);
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        let default = json!({"content": {"parts": [{"text": "hello"}]}});
        assert_eq!(
            embed_content(&default, "m").unwrap().embedding.values.len(),
            768
        );
    }

    #[test]
    fn batch_checks_each_request() {
        let ok = json!({"requests": [
            {"model": "models/m", "content": {"parts": [{"text": "a"}]}},
            {"content": {"parts": [{"text": "b"}]}, "taskType": "RETRIEVAL_QUERY"}
        ]});
        assert_eq!(batch_embed_contents(&ok, "m").unwrap().embeddings.len(), 2);
        let bad =
            json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]});
        let err = batch_embed_contents(&bad, "m").err().unwrap();
        assert!(err.message.contains("requests[0].model"), "{err:?}");
        let err = batch_embed_contents(&json!({"requests": [{}]}), "m")
            .err()
            .unwrap();
        assert!(
            err.message
                .contains("requests[0].content: content is not specified"),
            "{err:?}"
        );
        let err = embed_content(
            &json!({"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 0}),
            "m",
        )
        .err()
        .unwrap();
        assert!(err.message.contains("output_dimensionality"), "{err:?}");
    }
}
