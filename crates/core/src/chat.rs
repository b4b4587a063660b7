//! The chat-completions request as clients send it (OpenAI shape plus OpenRouter's extensions).
//!
//! Parsing checks what must be right before any upstream is tried, and says what to fix. The body is
//! kept as a JSON map so that fields we do not interpret still reach the upstream unchanged.

use crate::error::ApiError;
use serde_json::{Map, Value};

/// OpenRouter fields that are ours to act on and never go to an upstream as they are.
pub const GATEWAY_FIELDS: &[&str] = &[
    "models",
    "provider",
    "plugins",
    "transforms",
    "route",
    "preset",
    "usage",
    "session_id",
    "trace",
    "debug",
    "reasoning",
    "include_reasoning",
    "stream_options",
];

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// A validated chat request.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    body: Map<String, Value>,
    /// Models to try in order: `model` then `models` (duplicates removed).
    models: Vec<String>,
    stream: bool,
    max_output: Option<u64>,
    prompt_estimate: u64,
}

impl ChatRequest {
    /// Parses and validates a request body.
    pub fn parse(bytes: &[u8]) -> Result<ChatRequest, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::invalid(format!("Request body is not valid JSON: {e}")))?;
        let Value::Object(body) = value else {
            return Err(ApiError::invalid("Request body must be a JSON object"));
        };
        ChatRequest::from_map(body)
    }

    pub fn from_map(body: Map<String, Value>) -> Result<ChatRequest, ApiError> {
        let models = parse_models(&body)?;

        let messages = match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => m,
            Some(Value::Array(_)) => return Err(ApiError::invalid("`messages` must not be empty")),
            _ => {
                return Err(ApiError::invalid(
                    "`messages` is required and must be an array",
                ))
            }
        };
        for (i, message) in messages.iter().enumerate() {
            check_message(i, message)?;
        }

        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ApiError::invalid("`stream` must be a boolean")),
        };
        let mut max_output = None;
        for field in ["max_completion_tokens", "max_tokens"] {
            match body.get(field) {
                None | Some(Value::Null) => {}
                Some(v) => match v.as_u64() {
                    Some(n) if n > 0 => {
                        max_output = Some(max_output.map_or(n, |m: u64| m.min(n)));
                    }
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "`{field}` must be a positive integer"
                        )))
                    }
                },
            }
        }
        check_range(&body, "temperature", 0.0, 2.0)?;
        check_range(&body, "top_p", 0.0, 1.0)?;
        check_range(&body, "frequency_penalty", -2.0, 2.0)?;
        check_range(&body, "presence_penalty", -2.0, 2.0)?;

        let prompt_estimate = crate::tokens::estimate_messages(messages);
        Ok(ChatRequest {
            body,
            models,
            stream,
            max_output,
            prompt_estimate,
        })
    }

    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }

    /// Models in the order they should be tried.
    pub fn models(&self) -> &[String] {
        &self.models
    }

    pub fn stream(&self) -> bool {
        self.stream
    }

    /// The client's output cap, if it set one.
    pub fn max_output(&self) -> Option<u64> {
        self.max_output
    }

    /// Estimated prompt tokens (for reservations only).
    pub fn prompt_estimate(&self) -> u64 {
        self.prompt_estimate
    }

    /// A string field of the body, e.g. `user` or `session_id`.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// `model` then `models` (duplicates removed): the models to try in order; at least one.
pub(crate) fn parse_models(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let mut models = Vec::new();
    match body.get("model") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if !m.trim().is_empty() => models.push(m.trim().to_owned()),
        Some(_) => return Err(ApiError::invalid("`model` must be a non-empty string")),
    }
    match body.get("models") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for m in list {
                let Some(m) = m.as_str().filter(|m| !m.trim().is_empty()) else {
                    return Err(ApiError::invalid("`models` must be an array of model IDs"));
                };
                if !models.iter().any(|known| known == m) {
                    models.push(m.trim().to_owned());
                }
            }
        }
        Some(_) => return Err(ApiError::invalid("`models` must be an array of model IDs")),
    }
    if models.is_empty() {
        return Err(ApiError::invalid(
            "`model` is required, e.g. \"model\": \"openai/gpt-4o-mini\"",
        ));
    }
    Ok(models)
}

fn check_message(i: usize, message: &Value) -> Result<(), ApiError> {
    let Some(obj) = message.as_object() else {
        return Err(ApiError::invalid(format!(
            "`messages[{i}]` must be an object"
        )));
    };
    let role = obj.get("role").and_then(Value::as_str).unwrap_or("");
    if !ROLES.contains(&role) {
        return Err(ApiError::invalid(format!(
            "`messages[{i}].role` must be one of system, developer, user, assistant, tool"
        )));
    }
    match obj.get("content") {
        None | Some(Value::Null) if role == "assistant" => {}
        Some(Value::String(_)) | Some(Value::Array(_)) => {}
        _ => {
            return Err(ApiError::invalid(format!(
                "`messages[{i}].content` must be a string or an array of content parts"
            )))
        }
    }
    if role == "tool" && obj.get("tool_call_id").and_then(Value::as_str).is_none() {
        return Err(ApiError::invalid(format!(
            "`messages[{i}]` is a tool message and needs `tool_call_id`"
        )));
    }
    Ok(())
}

fn check_range(body: &Map<String, Value>, field: &str, min: f64, max: f64) -> Result<(), ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (min..=max).contains(&x) => Ok(()),
            _ => Err(ApiError::invalid(format!(
                "`{field}` must be a number between {min} and {max}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests;
