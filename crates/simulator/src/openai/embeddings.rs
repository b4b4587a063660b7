//! `POST /{upstream}/v1/embeddings`: deterministic unit vectors per input, as floats or as
//! base64 of little-endian f32s (what OpenAI's SDKs request by default). Azure OpenAI's
//! embeddings are served by the same code (see [`super::azure`]).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::{admit, invalid, not_json, Invalid, OpenAi};
use crate::control::Sim;
use crate::exchange::{self, pace_whole, Admitted, Wire};
use crate::generate::{base64_encode, bytes_hash, Rng};
use crate::tokenizer;

/// Vector length when the request names no `dimensions`.
const DEFAULT_DIMENSIONS: u64 = 16;
/// Largest `dimensions` accepted (bounds the work one request can ask for).
const MAX_DIMENSIONS: u64 = 8192;

/// One input to embed: text, or token ids (one token each).
enum Input<'a> {
    Text(&'a str),
    Ids(&'a [Value]),
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

pub async fn embeddings(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    match admit(&sim, &name, request).await {
        Ok(admitted) => respond::<OpenAi>(admitted, None).await,
        Err(response) => response,
    }
}

/// Answers an admitted embeddings request; with `deployment_model` (Azure) the body's `model`
/// is optional and the answer names the deployment's model.
pub(super) async fn respond<W: Wire>(
    admitted: Admitted,
    deployment_model: Option<&str>,
) -> Response {
    let Some(value) = admitted.json() else {
        return not_json();
    };
    let model = match (value.get("model"), deployment_model) {
        (_, Some(model)) => model,
        (Some(Value::String(model)), None) => model.as_str(),
        _ => return invalid("you must provide a model parameter", None, None).into_response(),
    };
    let inputs = match parse_input(value.get("input")) {
        Ok(inputs) => inputs,
        Err(invalid) => return invalid.into_response(),
    };
    let base64 = match value.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(other) => {
            let message =
                format!("Invalid value: {other}. Supported values are: 'float' and 'base64'.");
            return invalid(message, Some("encoding_format"), Some("invalid_value"))
                .into_response();
        }
    };
    let dimensions = match value.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_DIMENSIONS).contains(&n) => n,
            _ => {
                let message = format!(
                    "Invalid 'dimensions': expected an integer between 1 and {MAX_DIMENSIONS}, got {v}."
                );
                return invalid(message, Some("dimensions"), Some("invalid_value")).into_response();
            }
        },
    };
    admitted.upstream.note_model(model);

    let mut prompt_tokens = 0;
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            prompt_tokens += match input {
                Input::Text(text) => tokenizer::count(text),
                Input::Ids(ids) => ids.len() as u64,
            };
            let vector = vector_for(input, dimensions);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Vector::Base64(base64_encode(&bytes))
            } else {
                Vector::Float(vector)
            };
            Embedding {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let list = EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    };
    pace_whole(&admitted.behaviour, 0).await;
    match serde_json::to_vec(&list) {
        Ok(bytes) => exchange::json_body::<W>(bytes, admitted.body_fault),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `input`: a string, a list of strings, a list of token ids, or a list of such lists.
fn parse_input(input: Option<&Value>) -> Result<Vec<Input<'_>>, Invalid> {
    let bad = || {
        invalid(
            "'$.input' is invalid. Expected a string, an array of strings, an array of integers, or an array of integer arrays, none of them empty.",
            Some("input"),
            Some("invalid_value"),
        )
    };
    let is_id = |v: &Value| v.is_u64();
    match input {
        None | Some(Value::Null) => Err(invalid(
            "Missing required parameter: 'input'.",
            Some("input"),
            Some("missing_required_parameter"),
        )),
        Some(Value::String(text)) => Ok(vec![Input::Text(text)]),
        Some(Value::Array(items)) if items.is_empty() => Err(bad()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(Input::Text)
            .collect()),
        Some(Value::Array(items)) if items.iter().all(is_id) => Ok(vec![Input::Ids(items)]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Array(ids) if !ids.is_empty() && ids.iter().all(is_id) => {
                    Ok(Input::Ids(ids.as_slice()))
                }
                _ => Err(bad()),
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// A unit-length vector that depends only on the input and the dimension count.
fn vector_for(input: &Input<'_>, dimensions: u64) -> Vec<f32> {
    let hash = match input {
        Input::Text(text) => bytes_hash(&[b"text", text.as_bytes()]),
        Input::Ids(ids) => {
            let bytes: Vec<u8> = ids
                .iter()
                .filter_map(Value::as_u64)
                .flat_map(u64::to_le_bytes)
                .collect();
            bytes_hash(&[b"ids", &bytes])
        }
    };
    let mut rng = Rng::from_hash(&hash);
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

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let a = vector_for(&Input::Text("hello"), 32);
        assert_eq!(a.len(), 32);
        assert_eq!(a, vector_for(&Input::Text("hello"), 32));
        assert_ne!(a, vector_for(&Input::Text("world"), 32));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
