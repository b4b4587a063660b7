//! `POST /{upstream}/v2/embed`: deterministic unit vectors per input, in every requested
//! `embedding_types` format, as Cohere's v2 Embed API returns them.
//!
//! - **Inputs**: exactly one of `texts` (at most 96), `images` (data URIs) or `inputs` (objects
//!   whose `content` mixes `text` and `image_url` parts). `input_type` (`search_document`,
//!   `search_query`, `classification`, `clustering`, `image`) is required, except for models
//!   older than v3 (a name containing `-v1` or `-v2`).
//! - **Vectors**: 16 dimensions unless `output_dimension` (256, 512, 1024 or 1536) says
//!   otherwise; each depends only on its input and the dimension count. `embedding_types`
//!   (default `["float"]`): `float`; `int8` (`round(x * 127)`); `uint8` (`round((x + 1) * 127.5)`);
//!   `ubinary` (one bit per dimension, set when positive, packed eight to a byte, most
//!   significant first); `binary` (the same bytes minus 128); `base64` (the float vector's
//!   little-endian f32 bytes).
//! - **Truncation**: with `max_tokens`, longer texts lose tokens at the `END` (default) or the
//!   `START`; `truncate: "NONE"` rejects them instead.
//! - **Answer**: `{"id", "texts", "embeddings": {type: [...]}, "meta": {"api_version":
//!   {"version": "2"}, "billed_units": {"input_tokens"[, "images"]}}, "response_type":
//!   "embeddings_by_type"}`; billed input tokens are the embedded texts' tokens by the fixed
//!   tokenizer, images are billed by count.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::{body_json, uuid, Cohere, Invalid};
use crate::control::Sim;
use crate::exchange::{self, json_body, pace_whole};
use crate::generate::{base64_encode, bytes_hash, request_hash, Rng};
use crate::tokenizer;

/// Vector length when the request names no `output_dimension`.
const DEFAULT_DIMENSIONS: usize = 16;
/// The `output_dimension`s Cohere accepts.
const DIMENSIONS: &[u64] = &[256, 512, 1024, 1536];
/// Most texts (or inputs) per call.
const MAX_INPUTS: usize = 96;
const INPUT_TYPES: &[&str] = &[
    "search_document",
    "search_query",
    "classification",
    "clustering",
    "image",
];
const EMBEDDING_TYPES: &[&str] = &["float", "int8", "uint8", "binary", "ubinary", "base64"];

/// One thing to embed.
enum Input {
    Text(String),
    Image(String),
    /// A mixed input: its text parts joined, and how many images it holds.
    Mixed(String, u64),
}

impl Input {
    /// The bytes the vector is derived from.
    fn seed(&self) -> [u8; 32] {
        match self {
            Input::Text(text) => bytes_hash(&[b"text", text.as_bytes()]),
            Input::Image(uri) => bytes_hash(&[b"image", uri.as_bytes()]),
            Input::Mixed(text, images) => {
                bytes_hash(&[b"mixed", text.as_bytes(), &images.to_le_bytes()])
            }
        }
    }
}

#[derive(Serialize)]
struct EmbedResponse<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    texts: Option<Vec<&'a str>>,
    embeddings: Embeddings,
    meta: Meta,
    response_type: &'static str,
}

/// One list per requested type, each with a row per input.
#[derive(Serialize, Default)]
struct Embeddings {
    #[serde(skip_serializing_if = "Option::is_none")]
    float: Option<Vec<Vec<f32>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    int8: Option<Vec<Vec<i64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uint8: Option<Vec<Vec<i64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary: Option<Vec<Vec<i64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ubinary: Option<Vec<Vec<i64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base64: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Meta {
    api_version: ApiVersion,
    billed_units: BilledUnits,
}

#[derive(Serialize)]
struct ApiVersion {
    version: &'static str,
}

#[derive(Serialize)]
struct BilledUnits {
    input_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    images: Option<u64>,
}

fn invalid(path: &str, problem: &str) -> Invalid {
    Invalid::new(format_args!("{path} {problem}"))
}

/// `POST /{upstream}/v2/embed`.
pub async fn embed(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let admitted = match exchange::admit::<Cohere>(&sim, &name, request).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let value = match body_json(&admitted.body) {
        Ok(value) => value,
        Err(invalid) => return invalid.into_response(),
    };
    let parsed = match EmbedRequest::parse(&value) {
        Ok(parsed) => parsed,
        Err(invalid) => return invalid.into_response(),
    };
    admitted.upstream.note_model(parsed.model);

    let vectors: Vec<Vec<f32>> = parsed
        .inputs
        .iter()
        .map(|input| unit_vector(&input.seed(), parsed.dimensions))
        .collect();
    let mut embeddings = Embeddings::default();
    for kind in &parsed.types {
        let ints = |kind| Some(vectors.iter().map(|v| integers(v, kind)).collect());
        match *kind {
            "int8" => embeddings.int8 = ints(Ints::Int8),
            "uint8" => embeddings.uint8 = ints(Ints::Uint8),
            "binary" => embeddings.binary = ints(Ints::Binary),
            "ubinary" => embeddings.ubinary = ints(Ints::Ubinary),
            "base64" => {
                embeddings.base64 = Some(vectors.iter().map(|v| base64(v)).collect());
            }
            _ => embeddings.float = Some(vectors.clone()),
        }
    }
    let mut input_tokens = 0;
    let mut images = 0;
    for input in &parsed.inputs {
        match input {
            Input::Text(text) => input_tokens += tokenizer::count(text),
            Input::Image(_) => images += 1,
            Input::Mixed(text, n) => {
                input_tokens += tokenizer::count(text);
                images += n;
            }
        }
    }
    let id = uuid(&request_hash(&value, &[]));
    let texts = parsed.texts.then(|| {
        parsed
            .inputs
            .iter()
            .map(|input| match input {
                Input::Text(text) => text.as_str(),
                _ => "",
            })
            .collect()
    });
    let response = EmbedResponse {
        id: &id,
        texts,
        embeddings,
        meta: Meta {
            api_version: ApiVersion { version: "2" },
            billed_units: BilledUnits {
                input_tokens,
                images: (images > 0).then_some(images),
            },
        },
        response_type: "embeddings_by_type",
    };
    pace_whole(&admitted.behaviour, 0).await;
    match serde_json::to_vec(&response) {
        Ok(bytes) => json_body::<Cohere>(bytes, admitted.body_fault),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A validated embed request.
struct EmbedRequest<'a> {
    model: &'a str,
    inputs: Vec<Input>,
    /// Whether the inputs came as `texts` (echoed back in the answer).
    texts: bool,
    dimensions: usize,
    types: Vec<&'a str>,
}

/// Models older than v3 may omit `input_type`.
fn needs_input_type(model: &str) -> bool {
    !(model.contains("-v1") || model.contains("-v2"))
}

/// Keeps `max` tokens of `text`, from the end (`END` truncation) or the start.
fn truncate(text: &str, max: u64, from_start: bool) -> String {
    let ends = tokenizer::piece_ends(text);
    let n = ends.len() as u64;
    if n <= max {
        return text.to_owned();
    }
    if from_start {
        let drop = (n - max) as usize;
        text[ends[drop - 1]..].trim_start().to_owned()
    } else {
        text[..ends[max as usize - 1]].to_owned()
    }
}

impl<'a> EmbedRequest<'a> {
    fn parse(value: &'a Value) -> Result<Self, Invalid> {
        let body = value
            .as_object()
            .ok_or_else(|| Invalid::new("the body must be a JSON object"))?;
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.as_str(),
            None | Some(Value::Null) => return Err(invalid("model", "is required")),
            Some(_) => return Err(invalid("model", "must be a non-empty string")),
        };
        match body.get("input_type") {
            None | Some(Value::Null) if needs_input_type(model) => {
                return Err(Invalid::new(
                    "valid input_type must be provided with the provided model",
                ));
            }
            None | Some(Value::Null) => {}
            Some(kind) if kind.as_str().is_some_and(|k| INPUT_TYPES.contains(&k)) => {}
            Some(_) => {
                return Err(invalid(
                    "input_type",
                    &format!("must be one of {}", INPUT_TYPES.join(", ")),
                ));
            }
        }
        let types = match body.get("embedding_types") {
            None | Some(Value::Null) => vec!["float"],
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut types = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(kind) if EMBEDDING_TYPES.contains(&kind) => {
                            if !types.contains(&kind) {
                                types.push(kind);
                            }
                        }
                        _ => {
                            return Err(invalid(
                                "embedding_types",
                                &format!("must be a list of {}", EMBEDDING_TYPES.join(", ")),
                            ));
                        }
                    }
                }
                types
            }
            Some(_) => {
                return Err(invalid(
                    "embedding_types",
                    "must be a non-empty list of embedding types",
                ));
            }
        };
        let dimensions = match body.get("output_dimension") {
            None | Some(Value::Null) => DEFAULT_DIMENSIONS,
            Some(v) => match v.as_u64() {
                Some(n) if DIMENSIONS.contains(&n) => n as usize,
                _ => {
                    return Err(invalid(
                        "output_dimension",
                        "must be one of 256, 512, 1024, 1536",
                    ));
                }
            },
        };
        let max_tokens = match body.get("max_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n >= 1 => Some(n),
                _ => return Err(invalid("max_tokens", "must be a positive integer")),
            },
        };
        let from_start = match body.get("truncate") {
            None | Some(Value::Null) => Some(false),
            Some(Value::String(t)) if t == "END" => Some(false),
            Some(Value::String(t)) if t == "START" => Some(true),
            Some(Value::String(t)) if t == "NONE" => None,
            Some(_) => return Err(invalid("truncate", "must be one of NONE, START, END")),
        };
        let fit = |text: &str, path: &str| -> Result<String, Invalid> {
            match (max_tokens, from_start) {
                (Some(max), None) if tokenizer::count(text) > max => Err(invalid(
                    path,
                    &format!("is longer than max_tokens ({max}) and truncate is NONE"),
                )),
                (Some(max), Some(from_start)) => Ok(truncate(text, max, from_start)),
                _ => Ok(text.to_owned()),
            }
        };

        let given: Vec<&str> = ["texts", "images", "inputs"]
            .into_iter()
            .filter(|k| body.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        let (key, items) = match given.as_slice() {
            [key] => match &body[*key] {
                Value::Array(items) if items.is_empty() => {
                    return Err(invalid(key, "must not be empty"));
                }
                Value::Array(items) if items.len() > MAX_INPUTS => {
                    return Err(invalid(
                        key,
                        &format!("can contain at most {MAX_INPUTS} items"),
                    ));
                }
                Value::Array(items) => (*key, items),
                _ => return Err(invalid(key, "must be a list")),
            },
            [] => {
                return Err(Invalid::new(
                    "one of texts, images or inputs must be provided",
                ));
            }
            _ => {
                return Err(Invalid::new(
                    "only one of texts, images or inputs may be provided",
                ));
            }
        };
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let input = match (key, item) {
                ("texts", Value::String(text)) => Input::Text(fit(text, &path)?),
                ("images", Value::String(uri)) if uri.starts_with("data:image/") => {
                    Input::Image(uri.clone())
                }
                ("images", _) => return Err(invalid(&path, "must be an image data URI")),
                ("inputs", Value::Object(obj)) => {
                    let parts = match obj.get("content") {
                        Some(Value::Array(parts)) if !parts.is_empty() => parts,
                        _ => {
                            return Err(invalid(
                                &format!("{path}.content"),
                                "must be a non-empty list",
                            ));
                        }
                    };
                    let mut texts = Vec::new();
                    let mut images = 0;
                    for (j, part) in parts.iter().enumerate() {
                        let part_path = format!("{path}.content[{j}]");
                        match part.get("type").and_then(Value::as_str) {
                            Some("text") => match part.get("text") {
                                Some(Value::String(text)) => texts.push(text.as_str()),
                                _ => {
                                    return Err(invalid(
                                        &format!("{part_path}.text"),
                                        "must be a string",
                                    ));
                                }
                            },
                            Some("image_url") => images += 1,
                            _ => {
                                return Err(invalid(
                                    &format!("{part_path}.type"),
                                    "must be one of text, image_url",
                                ));
                            }
                        }
                    }
                    Input::Mixed(fit(&texts.join("\n"), &path)?, images)
                }
                _ => return Err(invalid(&path, "has the wrong type")),
            };
            inputs.push(input);
        }
        Ok(EmbedRequest {
            model,
            inputs,
            texts: key == "texts",
            dimensions,
            types,
        })
    }
}

/// A unit-length vector that depends only on `seed` and the dimension count.
fn unit_vector(seed: &[u8; 32], dimensions: usize) -> Vec<f32> {
    let mut dims = [0u8; 8];
    dims.copy_from_slice(&(dimensions as u64).to_le_bytes());
    let mut rng = Rng::from_hash(&bytes_hash(&[seed, &dims]));
    let raw: Vec<f64> = (0..dimensions).map(|_| rng.unit() * 2.0 - 1.0).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        let mut unit = vec![0.0; dimensions];
        unit[0] = 1.0;
        return unit;
    }
    raw.iter().map(|x| (x / norm) as f32).collect()
}

/// The integer embedding types.
#[derive(Debug, Clone, Copy)]
enum Ints {
    Int8,
    Uint8,
    Binary,
    Ubinary,
}

/// One vector as integers of `kind` (see the module docs).
fn integers(vector: &[f32], kind: Ints) -> Vec<i64> {
    let packed = || {
        vector.chunks(8).map(|bits| {
            bits.iter()
                .enumerate()
                .fold(0u8, |byte, (i, x)| byte | (u8::from(*x > 0.0) << (7 - i)))
        })
    };
    match kind {
        Ints::Int8 => vector
            .iter()
            .map(|x| (x * 127.0).round().clamp(-128.0, 127.0) as i64)
            .collect(),
        Ints::Uint8 => vector
            .iter()
            .map(|x| ((x + 1.0) * 127.5).round().clamp(0.0, 255.0) as i64)
            .collect(),
        Ints::Ubinary => packed().map(i64::from).collect(),
        Ints::Binary => packed().map(|b| i64::from(b) - 128).collect(),
    }
}

/// The vector's little-endian f32 bytes, base64-encoded.
fn base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64_encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_agree_with_the_float_vector() {
        let v = [0.5f32, -0.25, 0.0, 1.0, -1.0, 0.1, -0.1, 0.2, 0.3];
        assert_eq!(integers(&v, Ints::Int8)[0], 64);
        assert_eq!(integers(&v, Ints::Int8)[4], -127);
        assert_eq!(integers(&v, Ints::Uint8)[4], 0);
        assert_eq!(integers(&v, Ints::Uint8)[3], 255);
        // Positive: 0, 3, 5, 7 -> 1001_0101; then 8 -> 1000_0000.
        assert_eq!(integers(&v, Ints::Ubinary), [0b1001_0101, 0b1000_0000]);
        assert_eq!(integers(&v, Ints::Binary), [0b1001_0101 - 128, 0]);
        assert_eq!(base64(&[1.0]), "AACAPw==");
    }

    #[test]
    fn truncation_keeps_the_requested_end() {
        assert_eq!(truncate("alpha beta gamma", 2, false), "alpha beta");
        assert_eq!(truncate("alpha beta gamma", 2, true), "beta gamma");
        assert_eq!(truncate("alpha", 2, true), "alpha");
    }

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let a = unit_vector(&[1; 32], 256);
        assert_eq!(a, unit_vector(&[1; 32], 256));
        assert_ne!(a, unit_vector(&[2; 32], 256));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn input_type_is_required_from_v3() {
        assert!(needs_input_type("embed-english-v3.0"));
        assert!(needs_input_type("embed-v4.0"));
        assert!(!needs_input_type("embed-english-v2.0"));
    }
}
