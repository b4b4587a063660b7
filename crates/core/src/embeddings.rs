//! `POST /embeddings`: the client's request, validated; the upstream request and response of each
//! protocol that serves embeddings (OpenAI-compatible and Azure, Gemini's `batchEmbedContents`,
//! Cohere's v2 `embed`, Vertex AI's `:predict` for Google's text embedding models, and Bedrock's
//! `InvokeModel` for Amazon Titan Text Embeddings and Cohere Embed); and the answer in
//! OpenRouter's shape.
//!
//! Upstreams are always asked for floats; the client's `encoding_format` is applied when the
//! answer is rendered, so every protocol can answer either format. Pure functions over bytes and
//! JSON; sending is the server's job.

use crate::catalog::Protocol;
use crate::error::ApiError;
use crate::pricing::Usage;
use crate::protocol::{bedrock, openai};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Most inputs in one request (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// One input to embed.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Text(String),
    /// Token ids of the model's tokenizer (OpenAI-compatible upstreams only).
    Tokens(Vec<u64>),
}

/// How the client wants the vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A JSON array of numbers.
    Float,
    /// Base64 of the little-endian f32 bytes.
    Base64,
}

/// A validated embeddings request.
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    body: Map<String, Value>,
    models: Vec<String>,
    inputs: Vec<Input>,
    encoding: Encoding,
    dimensions: Option<u64>,
    prompt_estimate: u64,
    longest_input: u64,
}

impl EmbeddingsRequest {
    /// Parses and validates a request body; errors name the field to fix.
    pub fn parse(bytes: &[u8]) -> Result<EmbeddingsRequest, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::invalid(format!("Request body is not valid JSON: {e}")))?;
        let Value::Object(body) = value else {
            return Err(ApiError::invalid("Request body must be a JSON object"));
        };
        let models = crate::chat::parse_models(&body)?;
        let inputs = parse_input(body.get("input"))?;
        let encoding = match body.get("encoding_format") {
            None | Some(Value::Null) => Encoding::Float,
            Some(Value::String(f)) if f == "float" => Encoding::Float,
            Some(Value::String(f)) if f == "base64" => Encoding::Base64,
            Some(_) => {
                return Err(ApiError::invalid(
                    "`encoding_format` must be \"float\" or \"base64\"",
                ))
            }
        };
        let dimensions = match body.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => return Err(ApiError::invalid("`dimensions` must be a positive integer")),
            },
        };
        for field in ["input_type", "user"] {
            if !matches!(
                body.get(field),
                None | Some(Value::Null) | Some(Value::String(_))
            ) {
                return Err(ApiError::invalid(format!("`{field}` must be a string")));
            }
        }
        let estimates: Vec<u64> = inputs
            .iter()
            .map(|input| match input {
                Input::Text(text) => crate::tokens::estimate_text(text),
                Input::Tokens(ids) => ids.len() as u64,
            })
            .collect();
        Ok(EmbeddingsRequest {
            body,
            models,
            inputs,
            encoding,
            dimensions,
            prompt_estimate: estimates.iter().sum::<u64>().max(1),
            longest_input: estimates.into_iter().max().unwrap_or(0),
        })
    }

    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// Models in the order they should be tried.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Estimated prompt tokens of all inputs (for the reservation, and the usage of upstreams
    /// that report none).
    pub fn prompt_estimate(&self) -> u64 {
        self.prompt_estimate
    }

    /// Estimated tokens of the longest input: each input must fit the endpoint's context.
    pub fn longest_input_estimate(&self) -> u64 {
        self.longest_input
    }

    /// A string field of the body, e.g. `user` or `input_type`.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// `input`: a string, strings, token ids, or arrays of token ids.
fn parse_input(input: Option<&Value>) -> Result<Vec<Input>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "`input` must be a string, an array of strings, an array of token ids, or an array of token-id arrays",
        )
    };
    let items = match input {
        None | Some(Value::Null) => return Err(ApiError::invalid("`input` is required")),
        Some(Value::String(text)) => return Ok(vec![Input::Text(text.clone())]),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad()),
    };
    if items.is_empty() {
        return Err(ApiError::invalid("`input` must not be empty"));
    }
    if items.len() > MAX_INPUTS {
        return Err(ApiError::invalid(format!(
            "`input` may hold at most {MAX_INPUTS} items"
        )));
    }
    let ids = |list: &[Value]| list.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>();
    if items.iter().all(Value::is_number) {
        return ids(items)
            .map(|ids| vec![Input::Tokens(ids)])
            .ok_or_else(bad);
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(text) => Ok(Input::Text(text.clone())),
            Value::Array(list) if !list.is_empty() => ids(list).map(Input::Tokens).ok_or_else(|| {
                ApiError::invalid(format!("`input[{i}]` must be an array of token ids"))
            }),
            Value::Object(obj) if obj.contains_key("content") => Err(ApiError::invalid(
                "Multimodal `input` (objects with `content`) is not supported yet; send text or token ids",
            )),
            _ => Err(bad()),
        })
        .collect()
}

/// Where a protocol's embeddings endpoint lives under the provider's base URL (Azure's without
/// its `?api-version=`, which the server adds; Vertex AI's under
/// `.../projects/{project}/locations/{location}`, which the server prepends; Bedrock's under the
/// regional runtime URL, with the model id percent-encoded).
pub fn path(protocol: Protocol, upstream_model: &str) -> String {
    match protocol {
        Protocol::Gemini => {
            let model = upstream_model
                .strip_prefix("models/")
                .unwrap_or(upstream_model);
            format!("/models/{model}:batchEmbedContents")
        }
        Protocol::Vertex => {
            let model = upstream_model
                .rsplit_once("models/")
                .map_or(upstream_model, |(_, m)| m);
            format!("/publishers/google/models/{model}:predict")
        }
        Protocol::Bedrock => format!(
            "/model/{}/invoke",
            bedrock::encode_path_segment(upstream_model)
        ),
        Protocol::Cohere => "/embed".to_owned(),
        Protocol::Azure => format!("/deployments/{upstream_model}/embeddings"),
        _ => "/embeddings".to_owned(),
    }
}

/// The upstream request body for `protocol`; an error when the request cannot be expressed in it
/// (token ids outside OpenAI-compatible upstreams, a protocol without embeddings).
pub fn request_body(
    req: &EmbeddingsRequest,
    protocol: Protocol,
    upstream_model: &str,
) -> Result<Vec<u8>, ApiError> {
    let body = match protocol {
        Protocol::OpenAi | Protocol::Azure => {
            let mut body = Map::new();
            body.insert("model".into(), json!(upstream_model));
            body.insert("input".into(), req.body["input"].clone());
            body.insert("encoding_format".into(), json!("float"));
            if let Some(d) = req.dimensions {
                body.insert("dimensions".into(), json!(d));
            }
            if let Some(user) = req.str_field("user") {
                body.insert("user".into(), json!(user));
            }
            Value::Object(body)
        }
        Protocol::Gemini => {
            let model = upstream_model
                .strip_prefix("models/")
                .unwrap_or(upstream_model);
            let task = req.str_field("input_type").and_then(gemini_task_type);
            let requests = texts(req, "Google AI Studio")?
                .into_iter()
                .map(|text| {
                    let mut one = Map::new();
                    one.insert("model".into(), json!(format!("models/{model}")));
                    one.insert("content".into(), json!({"parts": [{"text": text}]}));
                    if let Some(task) = task {
                        one.insert("taskType".into(), json!(task));
                    }
                    if let Some(d) = req.dimensions {
                        one.insert("outputDimensionality".into(), json!(d));
                    }
                    Value::Object(one)
                })
                .collect::<Vec<_>>();
            json!({"requests": requests})
        }
        Protocol::Vertex => {
            let task = req.str_field("input_type").and_then(gemini_task_type);
            let instances = texts(req, "Google Vertex AI")?
                .into_iter()
                .map(|text| {
                    let mut one = Map::new();
                    one.insert("content".into(), json!(text));
                    if let Some(task) = task {
                        one.insert("task_type".into(), json!(task));
                    }
                    Value::Object(one)
                })
                .collect::<Vec<_>>();
            // An input over the model's limit is an error, as on OpenAI, not silently cut.
            let mut parameters = Map::new();
            parameters.insert("autoTruncate".into(), json!(false));
            if let Some(d) = req.dimensions {
                parameters.insert("outputDimensionality".into(), json!(d));
            }
            json!({"instances": instances, "parameters": parameters})
        }
        Protocol::Bedrock => bedrock_body(req, upstream_model)?,
        Protocol::Cohere => {
            let input_type = req
                .str_field("input_type")
                .filter(|t| COHERE_INPUT_TYPES.contains(t))
                .unwrap_or("search_document");
            let mut body = Map::new();
            body.insert("model".into(), json!(upstream_model));
            body.insert("texts".into(), json!(texts(req, "Cohere")?));
            body.insert("input_type".into(), json!(input_type));
            body.insert("embedding_types".into(), json!(["float"]));
            if let Some(d) = req.dimensions {
                body.insert("output_dimension".into(), json!(d));
            }
            Value::Object(body)
        }
        other => {
            return Err(ApiError::invalid(format!(
                "Embeddings are not available over the {other:?} protocol"
            )))
        }
    };
    Ok(serde_json::to_vec(&body).unwrap_or_default())
}

/// The `InvokeModel` body of Bedrock's embedding models: Amazon Titan Text Embeddings (one input
/// per request: a batch is refused rather than fanned out) and Cohere Embed.
fn bedrock_body(req: &EmbeddingsRequest, upstream_model: &str) -> Result<Value, ApiError> {
    let model = upstream_model.to_ascii_lowercase();
    let texts = texts(req, "Amazon Bedrock")?;
    if model.contains("amazon.titan-embed") {
        let [text] = texts.as_slice() else {
            return Err(ApiError::invalid(
                "Amazon Titan Embeddings takes one input per request: send `input` as a single string",
            ));
        };
        let mut body = Map::new();
        body.insert("inputText".into(), json!(text));
        if model.contains("titan-embed-text-v2") {
            if let Some(d) = req.dimensions {
                if ![256, 512, 1024].contains(&d) {
                    return Err(ApiError::invalid(
                        "`dimensions` must be 256, 512 or 1024 for Amazon Titan Text Embeddings V2",
                    ));
                }
                body.insert("dimensions".into(), json!(d));
            }
            body.insert("normalize".into(), json!(true));
        } else if req.dimensions.is_some() {
            return Err(ApiError::invalid(
                "`dimensions` is not supported by this model; Amazon Titan Text Embeddings V2 takes it",
            ));
        }
        return Ok(Value::Object(body));
    }
    if model.contains("cohere.embed") {
        let input_type = req
            .str_field("input_type")
            .filter(|t| COHERE_INPUT_TYPES.contains(t))
            .unwrap_or("search_document");
        let mut body = Map::new();
        body.insert("texts".into(), json!(texts));
        body.insert("input_type".into(), json!(input_type));
        body.insert("embedding_types".into(), json!(["float"]));
        if let Some(d) = req.dimensions {
            if !model.contains("embed-v4") {
                return Err(ApiError::invalid(
                    "`dimensions` is not supported by this model; Cohere Embed v4 takes it",
                ));
            }
            body.insert("output_dimension".into(), json!(d));
        }
        return Ok(Value::Object(body));
    }
    Err(ApiError::invalid(format!(
        "Embeddings with `{upstream_model}` are not supported over Amazon Bedrock (Amazon Titan Text Embeddings and Cohere Embed are)"
    )))
}

const COHERE_INPUT_TYPES: &[&str] = &[
    "search_document",
    "search_query",
    "classification",
    "clustering",
];

/// Gemini's `taskType` for an `input_type` (Cohere's names, or Gemini's own); others are dropped.
fn gemini_task_type(input_type: &str) -> Option<&str> {
    Some(match input_type {
        "search_query" => "RETRIEVAL_QUERY",
        "search_document" => "RETRIEVAL_DOCUMENT",
        "classification" => "CLASSIFICATION",
        "clustering" => "CLUSTERING",
        "RETRIEVAL_QUERY"
        | "RETRIEVAL_DOCUMENT"
        | "SEMANTIC_SIMILARITY"
        | "CLASSIFICATION"
        | "CLUSTERING"
        | "QUESTION_ANSWERING"
        | "FACT_VERIFICATION"
        | "CODE_RETRIEVAL_QUERY" => input_type,
        _ => return None,
    })
}

/// The inputs as texts, for upstreams that take no token ids.
fn texts<'r>(req: &'r EmbeddingsRequest, provider: &str) -> Result<Vec<&'r str>, ApiError> {
    req.inputs
        .iter()
        .map(|input| match input {
            Input::Text(text) => Ok(text.as_str()),
            Input::Tokens(_) => Err(ApiError::invalid(format!(
                "{provider} does not accept token ids as `input`; send text"
            ))),
        })
        .collect()
}

/// What an upstream answered: one vector per input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub usage: Usage,
    pub upstream_id: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiList {
    data: Vec<OpenAiItem>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiItem {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    prompt_tokens: u64,
}

#[derive(Deserialize)]
struct GeminiBatch {
    embeddings: Vec<GeminiValues>,
}

#[derive(Deserialize)]
struct GeminiValues {
    values: Vec<f32>,
}

#[derive(Deserialize)]
struct CohereEmbed {
    #[serde(default)]
    id: Option<String>,
    embeddings: CohereByType,
    #[serde(default)]
    meta: Option<Value>,
}

#[derive(Deserialize)]
struct CohereByType {
    float: Vec<Vec<f32>>,
}

/// A JSON array of numbers as a vector.
fn floats(value: &Value) -> Option<Vec<f32>> {
    value
        .as_array()?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32))
        .collect()
}

/// What an answer holds: the vectors, the prompt tokens when reported, the upstream's id.
type Answer = (Vec<Vec<f32>>, Option<u64>, Option<String>);

/// A Bedrock answer: Titan's `{"embedding", "inputTextTokenCount"}`, or Cohere's
/// `{"embeddings": {"float": [...]}}` (or a bare array of vectors), whose token count Bedrock
/// sends in a header only (`X-Amzn-Bedrock-Input-Token-Count`).
fn bedrock_answer(answer: &Value) -> Option<Answer> {
    if let Some(vector) = answer.get("embedding").and_then(floats) {
        let tokens = answer.get("inputTextTokenCount").and_then(Value::as_u64);
        return Some((vec![vector], tokens, None));
    }
    let embeddings = answer.get("embeddings")?;
    let list = embeddings.get("float").unwrap_or(embeddings).as_array()?;
    let vectors = list.iter().map(floats).collect::<Option<Vec<_>>>()?;
    let id = answer.get("id").and_then(Value::as_str).map(str::to_owned);
    Some((vectors, None, id))
}

/// Vectors and prompt tokens of a Vertex AI `:predict` answer: `predictions[].embeddings.values`,
/// tokens the sum of `statistics.token_count` (a number Vertex may write as a float).
fn vertex_answer(answer: &Value) -> Option<Answer> {
    let mut vectors = Vec::new();
    let mut tokens: Option<u64> = None;
    for prediction in answer.get("predictions")?.as_array()? {
        let embeddings = prediction.get("embeddings")?;
        vectors.push(floats(embeddings.get("values")?)?);
        if let Some(count) = embeddings["statistics"]["token_count"]
            .as_f64()
            .filter(|c| c.is_finite() && *c >= 0.0)
        {
            *tokens.get_or_insert(0) += count.round() as u64;
        }
    }
    Some((vectors, tokens, None))
}

/// Reads a 2xx upstream answer. Usage is the upstream's count (OpenAI's `usage.prompt_tokens`,
/// Cohere's `meta.billed_units.input_tokens`, Titan's `inputTextTokenCount`, Vertex AI's
/// `token_count`s), else the request's estimate (Gemini and Cohere on Bedrock report none in the
/// body).
pub fn parse_response(
    protocol: Protocol,
    bytes: &[u8],
    req: &EmbeddingsRequest,
) -> Result<Embeddings, ApiError> {
    let (vectors, prompt_tokens, upstream_id) = match protocol {
        Protocol::Bedrock | Protocol::Vertex => {
            let answer: Value =
                serde_json::from_slice(bytes).map_err(|_| openai::invalid_upstream_response())?;
            let read = if protocol == Protocol::Bedrock {
                bedrock_answer(&answer)
            } else {
                vertex_answer(&answer)
            };
            read.ok_or_else(openai::invalid_upstream_response)?
        }
        Protocol::Gemini => {
            let batch: GeminiBatch =
                serde_json::from_slice(bytes).map_err(|_| openai::invalid_upstream_response())?;
            let vectors = batch.embeddings.into_iter().map(|e| e.values).collect();
            (vectors, None, None)
        }
        Protocol::Cohere => {
            let embed: CohereEmbed =
                serde_json::from_slice(bytes).map_err(|_| openai::invalid_upstream_response())?;
            let tokens = embed
                .meta
                .as_ref()
                .and_then(|m| m["billed_units"]["input_tokens"].as_u64());
            (embed.embeddings.float, tokens, embed.id)
        }
        _ => {
            let mut list: OpenAiList =
                serde_json::from_slice(bytes).map_err(|_| openai::invalid_upstream_response())?;
            list.data.sort_by_key(|item| item.index);
            let in_order = list
                .data
                .iter()
                .enumerate()
                .all(|(i, item)| item.index == i);
            if !in_order {
                return Err(openai::invalid_upstream_response());
            }
            let vectors = list.data.into_iter().map(|item| item.embedding).collect();
            (vectors, list.usage.map(|u| u.prompt_tokens), list.id)
        }
    };
    if vectors.len() != req.inputs.len() {
        return Err(openai::invalid_upstream_response());
    }
    Ok(Embeddings {
        vectors,
        usage: Usage {
            prompt_tokens: prompt_tokens.unwrap_or(req.prompt_estimate),
            ..Usage::default()
        },
        upstream_id,
    })
}

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    id: &'a str,
    model: &'a str,
    provider: &'a str,
    data: Vec<Item>,
    usage: Value,
}

#[derive(Serialize)]
struct Item {
    object: &'static str,
    embedding: Vector,
    index: usize,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

/// The client's answer: OpenAI's embedding list plus `id`, `provider` and OpenRouter's usage
/// (`usage` is `protocol::usage_json`'s object without the completion counts).
pub fn render(
    vectors: Vec<Vec<f32>>,
    encoding: Encoding,
    model: &str,
    provider_name: &str,
    generation_id: &str,
    usage: Value,
) -> Vec<u8> {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| Item {
            object: "embedding",
            embedding: match encoding {
                Encoding::Float => Vector::Float(vector),
                Encoding::Base64 => Vector::Base64(base64_f32(&vector)),
            },
            index,
        })
        .collect();
    let usage = match usage {
        Value::Object(mut u) => {
            u.remove("completion_tokens");
            u.remove("completion_tokens_details");
            Value::Object(u)
        }
        other => other,
    };
    let list = List {
        object: "list",
        id: generation_id,
        model,
        provider: provider_name,
        data,
        usage,
    };
    serde_json::to_vec(&list).unwrap_or_default()
}

/// Base64 (standard alphabet, padded) of the vector's little-endian f32 bytes.
pub fn base64_f32(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
