//! Vertex AI's text embeddings, written from the Vertex AI text-embeddings API reference:
//!
//! - `:predict` (`text-embedding-005`, `text-multilingual-embedding-002`, `gemini-embedding-001`,
//!   any other model name alike): `{"instances": [{"content", "task_type"?, "title"?}],
//!   "parameters": {"autoTruncate"?, "outputDimensionality"?}}` answered with
//!   `{"predictions": [{"embeddings": {"values", "statistics": {"token_count", "truncated"}}}],
//!   "metadata": {"billableCharacterCount"}}`.
//! - `:embedContent` and `:batchEmbedContents`, which the google-genai SDK uses on Vertex AI for
//!   `gemini-*` embedding models: `{"content", "embedContentConfig": {"taskType", "title",
//!   "outputDimensionality", "autoTruncate"}}` (the config's fields also accepted at the top
//!   level, where Vertex keeps them deprecated) answered with `{"embedding": {"values"},
//!   "usageMetadata": {"promptTokenCount", "totalTokenCount"}, "truncated"}`; the batch takes
//!   `{"requests": [...]}` and answers `{"embeddings": [{"values"}]}`.
//!
//! Limits as documented: at most 250 instances per `:predict` (and requests per batch), and
//! `gemini-embedding-001` takes one instance per `:predict`; `title` only with `task_type`
//! `RETRIEVAL_DOCUMENT`; an input over 2048 tokens (the fixed tokenizer) is cut to 2048
//! (`truncated: true`) unless `autoTruncate` is false, which answers 400; more than 20000 input
//! tokens in one request answer 400. `gemini-embedding*` models give 3072 values by default and
//! at most 3072, other models 768. Vectors are the same deterministic unit vectors as the Gemini
//! API's (seeded by text, task type and title), so the same input embeds the same on both.
//! `billableCharacterCount` counts the contents' non-whitespace characters.

use serde::Serialize;
use serde_json::{Map, Value};

use super::embed::vector;
use super::request::{self, check_keys, field, field_path, Invalid};
use crate::tokenizer;

/// Most instances one `:predict` (or requests one batch) may carry.
const MAX_INSTANCES: usize = 250;
/// Longest input, in tokens, before truncation.
const MAX_INPUT_TOKENS: u64 = 2048;
/// Most input tokens one request may carry.
const MAX_REQUEST_TOKENS: u64 = 20_000;
/// The model that takes one instance per `:predict`.
const SINGLE_INSTANCE_MODEL: &str = "gemini-embedding-001";

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

const INSTANCE_KEYS: &[&str] = &["content", "taskType", "title", "mimeType"];
const PARAMETER_KEYS: &[&str] = &["autoTruncate", "outputDimensionality"];
const CONFIG_KEYS: &[&str] = &[
    "taskType",
    "title",
    "outputDimensionality",
    "autoTruncate",
    "documentOcr",
    "audioTrackExtraction",
];
const EMBED_KEYS: &[&str] = &[
    "model",
    "content",
    "embedContentConfig",
    "taskType",
    "title",
    "outputDimensionality",
    "autoTruncate",
];

/// `(default, largest)` vector length for `model`.
fn dimensions(model: &str) -> (u64, u64) {
    if model.starts_with("gemini-embedding") {
        (3072, 3072)
    } else {
        (768, 768)
    }
}

/// One embedding's settings, however the request spelled them.
struct Settings<'a> {
    task: &'static str,
    title: &'a str,
    dimensions: u64,
    auto_truncate: bool,
}

/// One embedded text: its vector, tokens counted (after truncation) and whether it was cut.
struct Embedded {
    values: Vec<f32>,
    tokens: u64,
    truncated: bool,
}

fn embed_text(
    text: &str,
    settings: &Settings<'_>,
    request: &str,
    path: &str,
) -> Result<Embedded, Invalid> {
    let mut tokens = tokenizer::count(text);
    let truncated = tokens > MAX_INPUT_TOKENS;
    if truncated {
        if !settings.auto_truncate {
            return Err(Invalid::semantic_in(
                request,
                path,
                &format!(
                    "Input is longer than the maximum of {MAX_INPUT_TOKENS} tokens and autoTruncate is false."
                ),
            ));
        }
        tokens = MAX_INPUT_TOKENS;
    }
    let values = vector(
        &[
            text.as_bytes(),
            settings.task.as_bytes(),
            settings.title.as_bytes(),
        ],
        settings.dimensions,
    );
    Ok(Embedded {
        values,
        tokens,
        truncated,
    })
}

fn task_type(value: Option<&Value>, path: &str) -> Result<&'static str, Invalid> {
    match value {
        None => Ok("TASK_TYPE_UNSPECIFIED"),
        Some(t) => request::enum_value(t, path, "TaskType", TASK_TYPES),
    }
}

fn dimensionality(
    value: Option<&Value>,
    model: &str,
    request: &str,
    path: &str,
) -> Result<u64, Invalid> {
    let (default, max) = dimensions(model);
    let Some(value) = value else {
        return Ok(default);
    };
    let n = request::int(value, path)?;
    match u64::try_from(n) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(Invalid::semantic_in(
            request,
            path,
            &format!("outputDimensionality must be between 1 and {max} for {model}."),
        )),
    }
}

fn boolean(value: Option<&Value>, path: &str, default: bool) -> Result<bool, Invalid> {
    match value {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| Invalid::type_value(path, "TYPE_BOOL", v)),
    }
}

fn check_title(title: &str, task: &str, request: &str, path: &str) -> Result<(), Invalid> {
    if !title.is_empty() && task != "RETRIEVAL_DOCUMENT" {
        return Err(Invalid::semantic_in(
            request,
            path,
            "title is only valid with task type RETRIEVAL_DOCUMENT.",
        ));
    }
    Ok(())
}

fn check_total(tokens: u64, request: &str) -> Result<(), Invalid> {
    if tokens > MAX_REQUEST_TOKENS {
        return Err(Invalid::plain(format!(
            "Unable to submit request because the input token count is {tokens} but the model supports up to {MAX_REQUEST_TOKENS} per {request}. Reduce the input token count and try again."
        )));
    }
    Ok(())
}

#[derive(Serialize)]
struct Statistics {
    token_count: u64,
    truncated: bool,
}

#[derive(Serialize)]
struct PredictEmbedding {
    values: Vec<f32>,
    statistics: Statistics,
}

#[derive(Serialize)]
struct Prediction {
    embeddings: PredictEmbedding,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PredictMetadata {
    billable_character_count: u64,
}

#[derive(Serialize)]
pub struct Predictions {
    predictions: Vec<Prediction>,
    metadata: PredictMetadata,
}

/// `POST .../publishers/google/models/{model}:predict`.
pub fn predict(value: &Value, model: &str) -> Result<Predictions, Invalid> {
    const KIND: &str = "PredictRequest";
    let obj = value
        .as_object()
        .ok_or_else(|| Invalid::bad_value("", KIND, value))?;
    check_keys(obj, &["instances", "parameters"], "")?;
    let instances = match field(obj, "instances") {
        None => {
            return Err(Invalid::semantic_in(
                KIND,
                "instances",
                "instances is required",
            ))
        }
        Some(v) => request::array(v, "instances", "Value")?,
    };
    if instances.is_empty() {
        return Err(Invalid::semantic_in(
            KIND,
            "instances",
            "instances must not be empty",
        ));
    }
    if instances.len() > MAX_INSTANCES {
        return Err(Invalid::plain(format!(
            "Unable to submit request because the number of instances ({}) exceeds the limit of {MAX_INSTANCES}.",
            instances.len()
        )));
    }
    if model == SINGLE_INSTANCE_MODEL && instances.len() > 1 {
        return Err(Invalid::plain(format!(
            "Unable to submit request because {model} supports only one instance per request, got {}. Send one request per text.",
            instances.len()
        )));
    }
    let empty = Map::new();
    let parameters = match field(obj, "parameters") {
        None => &empty,
        Some(p) => request::object(p, "parameters", "Value")?,
    };
    check_keys(parameters, PARAMETER_KEYS, "parameters")?;
    let dims = dimensionality(
        field(parameters, "outputDimensionality"),
        model,
        KIND,
        "parameters.outputDimensionality",
    )?;
    let auto_truncate = boolean(
        field(parameters, "autoTruncate"),
        "parameters.auto_truncate",
        true,
    )?;

    let mut predictions = Vec::with_capacity(instances.len());
    let mut metadata = PredictMetadata::default();
    let mut total = 0;
    for (i, instance) in instances.iter().enumerate() {
        let path = format!("instances[{i}]");
        let obj = request::object(instance, &path, "Value")?;
        check_keys(obj, INSTANCE_KEYS, &path)?;
        let content = match field(obj, "content") {
            None => {
                return Err(Invalid::semantic_in(
                    KIND,
                    &field_path(&path, "content"),
                    "content is required",
                ))
            }
            Some(c) => request::string(c, &field_path(&path, "content"))?,
        };
        let task = task_type(field(obj, "taskType"), &field_path(&path, "taskType"))?;
        let title = match field(obj, "title") {
            None => "",
            Some(t) => request::string(t, &field_path(&path, "title"))?,
        };
        check_title(title, task, KIND, &field_path(&path, "title"))?;
        let settings = Settings {
            task,
            title,
            dimensions: dims,
            auto_truncate,
        };
        let embedded = embed_text(content, &settings, KIND, &field_path(&path, "content"))?;
        total += embedded.tokens;
        metadata.billable_character_count +=
            content.chars().filter(|c| !c.is_whitespace()).count() as u64;
        predictions.push(Prediction {
            embeddings: PredictEmbedding {
                values: embedded.values,
                statistics: Statistics {
                    token_count: embedded.tokens,
                    truncated: embedded.truncated,
                },
            },
        });
    }
    check_total(total, "request")?;
    Ok(Predictions {
        predictions,
        metadata,
    })
}

/// One `EmbedContentRequest` (alone or inside a batch) embedded.
fn embed_request(
    obj: &Map<String, Value>,
    path: &str,
    kind: &str,
    model: &str,
) -> Result<Embedded, Invalid> {
    check_keys(obj, EMBED_KEYS, path)?;
    let at = |key: &str| field_path(path, key);
    let empty = Map::new();
    let config = match field(obj, "embedContentConfig") {
        None => &empty,
        Some(c) => request::object(c, &at("embedContentConfig"), "EmbedContentConfig")?,
    };
    let config_path = at("embedContentConfig");
    check_keys(config, CONFIG_KEYS, &config_path)?;
    // The config wins over the deprecated top-level spelling.
    let setting = |key: &str| -> (Option<&Value>, String) {
        match field(config, key) {
            Some(v) => (Some(v), field_path(&config_path, key)),
            None => (field(obj, key), at(key)),
        }
    };
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
    let (task, task_path) = setting("taskType");
    let task = task_type(task, &task_path)?;
    let (title, title_path) = setting("title");
    let title = match title {
        None => "",
        Some(t) => request::string(t, &title_path)?,
    };
    check_title(title, task, kind, &title_path)?;
    let (dims, dims_path) = setting("outputDimensionality");
    let dims = dimensionality(dims, model, kind, &dims_path)?;
    let (truncate, truncate_path) = setting("autoTruncate");
    let auto_truncate = boolean(truncate, &truncate_path, true)?;
    let text: Vec<&str> = content
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    let settings = Settings {
        task,
        title,
        dimensions: dims,
        auto_truncate,
    };
    embed_text(&text.join("\n"), &settings, kind, &at("content"))
}

#[derive(Serialize)]
pub struct Values {
    values: Vec<f32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    total_token_count: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Single {
    embedding: Values,
    usage_metadata: UsageMetadata,
    truncated: bool,
}

#[derive(Serialize)]
pub struct Batch {
    embeddings: Vec<Values>,
}

/// `POST .../publishers/google/models/{model}:embedContent` on Vertex AI.
pub fn embed_content(value: &Value, model: &str) -> Result<Single, Invalid> {
    const KIND: &str = "EmbedContentRequest";
    let obj = value
        .as_object()
        .ok_or_else(|| Invalid::bad_value("", KIND, value))?;
    let embedded = embed_request(obj, "", KIND, model)?;
    Ok(Single {
        embedding: Values {
            values: embedded.values,
        },
        usage_metadata: UsageMetadata {
            prompt_token_count: embedded.tokens,
            total_token_count: embedded.tokens,
        },
        truncated: embedded.truncated,
    })
}

/// `POST .../publishers/google/models/{model}:batchEmbedContents` on Vertex AI.
pub fn batch_embed_contents(value: &Value, model: &str) -> Result<Batch, Invalid> {
    const KIND: &str = "BatchEmbedContentsRequest";
    let obj = value
        .as_object()
        .ok_or_else(|| Invalid::bad_value("", KIND, value))?;
    check_keys(obj, &["requests"], "")?;
    let requests = match field(obj, "requests") {
        None => {
            return Err(Invalid::semantic_in(
                KIND,
                "requests",
                "requests is not specified",
            ))
        }
        Some(v) => request::array(v, "requests", "EmbedContentRequest")?,
    };
    if requests.is_empty() {
        return Err(Invalid::semantic_in(
            KIND,
            "requests",
            "requests is not specified",
        ));
    }
    if requests.len() > MAX_INSTANCES {
        return Err(Invalid::plain(format!(
            "Unable to submit request because the number of requests ({}) exceeds the limit of {MAX_INSTANCES}.",
            requests.len()
        )));
    }
    let mut embeddings = Vec::with_capacity(requests.len());
    let mut total = 0;
    for (i, item) in requests.iter().enumerate() {
        let path = format!("requests[{i}]");
        let obj = request::object(item, &path, "EmbedContentRequest")?;
        let embedded = embed_request(obj, &path, KIND, model)?;
        total += embedded.tokens;
        embeddings.push(Values {
            values: embedded.values,
        });
    }
    check_total(total, "request")?;
    Ok(Batch { embeddings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(values: &[f32]) -> f32 {
        values.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn predict_shapes_dimensions_and_statistics() {
        let body = json!({
            "instances": [
                {"content": "Hello, world!", "task_type": "RETRIEVAL_QUERY"},
                {"content": "a b", "task_type": "RETRIEVAL_DOCUMENT", "title": "T"}
            ],
            "parameters": {"outputDimensionality": 16}
        });
        let out = serde_json::to_value(predict(&body, "text-embedding-005").unwrap()).unwrap();
        let first = &out["predictions"][0]["embeddings"];
        assert_eq!(first["values"].as_array().unwrap().len(), 16);
        assert_eq!(
            first["statistics"],
            json!({"token_count": 4, "truncated": false})
        );
        assert_eq!(out["metadata"]["billableCharacterCount"], 14);
        let default = json!({"instances": [{"content": "x"}]});
        let values = predict(&default, "gemini-embedding-001")
            .unwrap()
            .predictions[0]
            .embeddings
            .values
            .clone();
        assert_eq!(values.len(), 3072);
        assert!((norm(&values) - 1.0).abs() < 1e-4);
        assert_eq!(
            predict(&default, "text-multilingual-embedding-002")
                .unwrap()
                .predictions[0]
                .embeddings
                .values
                .len(),
            768
        );
    }

    #[test]
    fn predict_limits() {
        let two = json!({"instances": [{"content": "a"}, {"content": "b"}]});
        let err = predict(&two, "gemini-embedding-001").err().unwrap();
        assert!(err.message.contains("one instance"), "{err:?}");
        assert!(predict(&two, "text-embedding-005").is_ok());
        let wide =
            json!({"instances": [{"content": "a"}], "parameters": {"outputDimensionality": 1024}});
        assert!(predict(&wide, "text-embedding-005").is_err());
        assert!(predict(&wide, "gemini-embedding-001").is_ok());
        let titled = json!({"instances": [{"content": "a", "title": "t"}]});
        assert!(predict(&titled, "text-embedding-005").is_err());
        let long = "w ".repeat(3000);
        let body = json!({"instances": [{"content": long}]});
        let out = predict(&body, "text-embedding-005").unwrap();
        assert!(out.predictions[0].embeddings.statistics.truncated);
        assert_eq!(out.predictions[0].embeddings.statistics.token_count, 2048);
        let strict =
            json!({"instances": [{"content": long}], "parameters": {"autoTruncate": false}});
        assert!(predict(&strict, "text-embedding-005").is_err());
        assert!(predict(&json!({"instances": []}), "m").is_err());
        assert!(predict(&json!({"instances": [{"text": "a"}]}), "m").is_err());
    }

    #[test]
    fn embed_content_matches_the_gemini_api_vector() {
        let body = json!({
            "content": {"parts": [{"text": "alpha"}]},
            "embedContentConfig": {"taskType": "RETRIEVAL_QUERY", "outputDimensionality": 8}
        });
        let out =
            serde_json::to_value(embed_content(&body, "gemini-embedding-001").unwrap()).unwrap();
        let gemini = super::super::embed::embed_content(
            &json!({"content": {"parts": [{"text": "alpha"}]}, "taskType": "RETRIEVAL_QUERY", "outputDimensionality": 8}),
            "gemini-embedding-001",
        )
        .unwrap();
        let gemini = serde_json::to_value(gemini).unwrap();
        assert_eq!(out["embedding"]["values"], gemini["embedding"]["values"]);
        assert_eq!(out["usageMetadata"]["promptTokenCount"], 1);
        let batch = json!({"requests": [
            {"content": {"parts": [{"text": "a"}]}},
            {"content": {"parts": [{"text": "b"}]}, "embedContentConfig": {"outputDimensionality": 4}}
        ]});
        let out =
            serde_json::to_value(batch_embed_contents(&batch, "gemini-embedding-001").unwrap())
                .unwrap();
        assert_eq!(
            out["embeddings"][0]["values"].as_array().unwrap().len(),
            3072
        );
        assert_eq!(out["embeddings"][1]["values"].as_array().unwrap().len(), 4);
    }
}
