//! Anthropic's Messages API (`POST /api/v1/messages`) as a skin over the chat pipeline.
//!
//! The gateway runs one pipeline, OpenAI-shaped. This module translates an Anthropic request (with
//! OpenRouter's extensions) into the equivalent chat request, and the pipeline's output back into
//! Anthropic's shapes: a `message` object, the `message_start` … `message_stop` event stream, and the
//! `{"type":"error", ...}` envelope. Pure functions over bytes and JSON; the server does the IO.
//!
//! Decisions where the two formats do not line up (the reference, sections 4.1 and 8, leaves them open):
//! - `max_tokens` is optional, as in OpenRouter's schema (and `count_tokens` bodies have none).
//! - Unknown top-level fields are ignored rather than rejected, so clients that send newer Anthropic
//!   fields keep working; `speed` and `context_management` (hints with no chat equivalent) are dropped.
//!   `container` and `mcp_servers` ask for server-side execution this gateway cannot do: 400.
//! - Anthropic's web search and web fetch server tools become OpenRouter's `openrouter:web_search` /
//!   `openrouter:web_fetch`; `openrouter:*` tools pass unchanged; every other typed tool (bash, text
//!   editor, code execution, computer use, …) is a 400, since only its schema-less name is known.
//! - `output_config.effort` becomes OpenRouter's `verbosity` (its documented Anthropic mapping), and
//!   also `reasoning.effort` with adaptive thinking; `output_config.format` becomes a `json_schema`
//!   response format.
//! - A `tool_result` with `is_error` has no chat counterpart: its content is prefixed with `Error: `.
//!   `cache_control` on tools and on `tool_use` blocks has no place in the chat shape and is dropped.
//! - Thinking blocks are sent back as `reasoning_details` with format `anthropic-claude-v1`, whatever
//!   model produced them (Anthropic's blocks carry no format).
//! - Responses: a tool call whose arguments are not a JSON object gets `input: {}`; `stop_sequence` is
//!   always null (the chat shape does not say which sequence matched); a choice that ended in `error`
//!   reports `end_turn`, since a non-streaming message always has a stop reason.
//! - Errors: 413 is `invalid_request_error` and 502 is `api_error` (OpenRouter's skin has no
//!   `request_too_large`), 503/529 are `overloaded_error`, 408/504/524 are `timeout_error`.

use crate::chat::ChatRequest;
use crate::error::{ApiError, ErrorCode};
use serde_json::{json, Map, Value};

/// The `format` stamped on reasoning details that come from Anthropic thinking blocks.
const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// Fields with the same name and meaning in both shapes (OpenRouter's extensions among them).
const PASSTHROUGH: &[&str] = &[
    "provider",
    "plugins",
    "route",
    "session_id",
    "trace",
    "user",
    "stop_server_tools_when",
    "transforms",
    "preset",
    "debug",
    "cache_control",
    "stream",
    "temperature",
    "top_p",
    "top_k",
];

/// Stop reasons a Messages client understands; a native finish reason among these is kept as is.
const STOP_REASONS: &[&str] = &[
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
    "compaction",
];

const EFFORTS: &[&str] = &["low", "medium", "high", "xhigh", "max"];

type Obj = Map<String, Value>;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message.into())
}

/// A field's value, treating JSON `null` as absent.
fn field<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn required_str<'a>(obj: &'a Obj, key: &str, path: &str) -> Result<&'a str, ApiError> {
    field(obj, key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("`{path}.{key}` is required and must be a string")))
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Obj, ApiError> {
    value
        .as_object()
        .ok_or_else(|| invalid(format!("`{path}` must be an object")))
}

fn block_type<'a>(block: &'a Obj, path: &str) -> Result<&'a str, ApiError> {
    field(block, "type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("`{path}.type` is required and must be a string")))
}

fn text_part(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// Copies a block's `cache_control` onto the chat part made from it.
fn keep_cache_control(block: &Obj, part: &mut Value) {
    if let (Some(cc), Some(part)) = (field(block, "cache_control"), part.as_object_mut()) {
        part.insert("cache_control".into(), cc.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// Anthropic Messages request body (+ OpenRouter's extensions) → the equivalent chat-completions
/// request body, or a 400 naming the field to fix.
pub fn to_chat_request(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Request body is not valid JSON: {e}")))?;
    let Value::Object(src) = value else {
        return Err(invalid("Request body must be a JSON object"));
    };
    let mut out = Obj::new();

    models(&src, &mut out)?;
    for key in ["container", "mcp_servers"] {
        if field(&src, key).is_some() {
            return Err(invalid(format!(
                "`{key}` is not supported: this gateway does not run Anthropic's server-side tools"
            )));
        }
    }

    let mut messages = Vec::new();
    if let Some(system) = field(&src, "system") {
        if let Some(message) = system_message(system, "system")? {
            messages.push(message);
        }
    }
    let Some(Value::Array(turns)) = field(&src, "messages") else {
        return Err(invalid("`messages` is required and must be an array"));
    };
    if turns.is_empty() {
        return Err(invalid("`messages` must not be empty"));
    }
    for (i, turn) in turns.iter().enumerate() {
        convert_turn(turn, i, &mut messages)?;
    }
    out.insert("messages".into(), Value::Array(messages));

    for key in PASSTHROUGH {
        if let Some(v) = field(&src, key) {
            out.insert((*key).into(), v.clone());
        }
    }
    for key in ["temperature", "top_p", "top_k"] {
        if out.get(key).is_some_and(|v| !v.is_number()) {
            return Err(invalid(format!("`{key}` must be a number")));
        }
    }
    if let Some(max) = field(&src, "max_tokens") {
        if max.as_u64().unwrap_or(0) == 0 {
            return Err(invalid("`max_tokens` must be a positive integer"));
        }
        out.insert("max_tokens".into(), max.clone());
    }
    if let Some(stops) = field(&src, "stop_sequences") {
        let ok = stops
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err(invalid("`stop_sequences` must be an array of strings"));
        }
        out.insert("stop".into(), stops.clone());
    }
    if let Some(metadata) = field(&src, "metadata") {
        let metadata = as_object(metadata, "metadata")?;
        match field(metadata, "user_id") {
            None => {}
            Some(Value::String(user)) => {
                // An explicit top-level `user` (OpenRouter's field) wins.
                out.entry("user").or_insert_with(|| json!(user));
            }
            Some(_) => return Err(invalid("`metadata.user_id` must be a string")),
        }
    }
    if let Some(tier) = field(&src, "service_tier") {
        let tier = tier
            .as_str()
            .ok_or_else(|| invalid("`service_tier` must be a string"))?;
        // Anthropic's `standard_only` is chat's `default`; `auto` means the same in both.
        let tier = if tier == "standard_only" {
            "default"
        } else {
            tier
        };
        out.insert("service_tier".into(), json!(tier));
    }
    if let Some(tools) = field(&src, "tools") {
        let Value::Array(tools) = tools else {
            return Err(invalid("`tools` must be an array"));
        };
        let tools = tools
            .iter()
            .enumerate()
            .map(|(i, t)| convert_tool(t, i))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = field(&src, "tool_choice") {
        tool_choice(choice, &mut out)?;
    }
    thinking_and_output(&src, &mut out)?;

    Ok(serde_json::to_vec(&Value::Object(out)).unwrap_or_default())
}

/// `model`, `models` and OpenRouter's `fallbacks` → chat's `model` and `models`.
fn models(src: &Obj, out: &mut Obj) -> Result<(), ApiError> {
    let model = match field(src, "model") {
        None => None,
        Some(Value::String(m)) if !m.trim().is_empty() => Some(m.clone()),
        Some(_) => return Err(invalid("`model` must be a non-empty string")),
    };
    let models = field(src, "models");
    if model.is_none() && models.is_none() {
        return Err(invalid(
            "`model` is required, e.g. \"model\": \"anthropic/claude-sonnet-4\"",
        ));
    }
    if let Some(m) = &model {
        out.insert("model".into(), json!(m));
    }
    if let Some(models) = models {
        out.insert("models".into(), models.clone());
    }
    let Some(fallbacks) = field(src, "fallbacks") else {
        return Ok(());
    };
    if models.is_some() {
        return Err(invalid(
            "`fallbacks` cannot be combined with `models`; use one of them",
        ));
    }
    let Value::Array(fallbacks) = fallbacks else {
        return Err(invalid(
            "`fallbacks` must be an array of {\"model\": \"...\"} objects",
        ));
    };
    if fallbacks.len() > 3 {
        return Err(invalid("`fallbacks` accepts at most 3 entries"));
    }
    // The list maps onto multi-model routing: the primary model first, then each fallback.
    let mut list: Vec<Value> = model.iter().map(|m| json!(m)).collect();
    for (i, entry) in fallbacks.iter().enumerate() {
        let path = format!("fallbacks[{i}]");
        let entry = as_object(entry, &path)?;
        if let Some(other) = entry.keys().find(|k| *k != "model") {
            return Err(invalid(format!(
                "`{path}.{other}` is not supported: fallbacks accept only `model`"
            )));
        }
        match field(entry, "model") {
            Some(Value::String(m)) if !m.trim().is_empty() => list.push(json!(m)),
            _ => {
                return Err(invalid(format!(
                    "`{path}.model` is required and must be a non-empty string"
                )))
            }
        }
    }
    out.insert("models".into(), Value::Array(list));
    Ok(())
}

/// `system` (a string or text blocks) → a system message; `None` when it is empty.
fn system_message(system: &Value, path: &str) -> Result<Option<Value>, ApiError> {
    match system {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(json!({"role": "system", "content": s}))),
        Value::Array(blocks) if blocks.is_empty() => Ok(None),
        Value::Array(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, block) in blocks.iter().enumerate() {
                let path = format!("{path}[{j}]");
                let block = as_object(block, &path)?;
                if block_type(block, &path)? != "text" {
                    return Err(invalid(format!(
                        "`{path}.type` must be `text` in a system prompt"
                    )));
                }
                let mut part = text_part(required_str(block, "text", &path)?);
                keep_cache_control(block, &mut part);
                parts.push(part);
            }
            Ok(Some(json!({"role": "system", "content": parts})))
        }
        _ => Err(invalid(format!(
            "`{path}` must be a string or an array of text blocks"
        ))),
    }
}

fn convert_turn(turn: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let path = format!("messages[{i}]");
    let turn = as_object(turn, &path)?;
    let role = field(turn, "role").and_then(Value::as_str).unwrap_or("");
    let content =
        field(turn, "content").ok_or_else(|| invalid(format!("`{path}.content` is required")))?;
    let content_path = format!("{path}.content");
    match role {
        // OpenRouter's schema also admits a system turn inside `messages`.
        "system" => {
            if let Some(message) = system_message(content, &content_path)? {
                out.push(message);
            }
            Ok(())
        }
        "user" => user_turn(content, &content_path, out),
        "assistant" => {
            out.push(assistant_turn(content, &content_path)?);
            Ok(())
        }
        _ => Err(invalid(format!(
            "`{path}.role` must be `user` or `assistant`"
        ))),
    }
}

/// A user turn: its `tool_result` blocks become `tool` messages (first, as Anthropic requires them
/// to lead the turn), the rest one user message.
fn user_turn(content: &Value, path: &str, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let blocks = match content {
        Value::String(s) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Value::Array(blocks) if !blocks.is_empty() => blocks,
        Value::Array(_) => return Err(invalid(format!("`{path}` must not be empty"))),
        _ => {
            return Err(invalid(format!(
                "`{path}` must be a string or an array of content blocks"
            )))
        }
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let obj = as_object(block, &path)?;
        if block_type(obj, &path)? == "tool_result" {
            out.push(tool_result(obj, &path)?);
        } else {
            user_parts(obj, &path, &mut parts)?;
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// A text, image or document block → chat content parts.
fn user_parts(block: &Obj, path: &str, parts: &mut Vec<Value>) -> Result<(), ApiError> {
    let start = parts.len();
    match block_type(block, path)? {
        "text" => parts.push(text_part(required_str(block, "text", path)?)),
        "image" => parts.push(image_part(block, path)?),
        "document" => document_parts(block, path, parts)?,
        ty @ ("tool_use" | "thinking" | "redacted_thinking" | "server_tool_use") => {
            return Err(invalid(format!(
                "`{path}.type` `{ty}` is only valid in assistant messages"
            )))
        }
        ty => {
            return Err(invalid(format!(
            "`{path}.type` `{ty}` is not supported; expected text, image, document or tool_result"
        )))
        }
    }
    if let Some(last) = parts[start..].last_mut() {
        keep_cache_control(block, last);
    }
    Ok(())
}

fn source<'a>(block: &'a Obj, path: &str) -> Result<(&'a Obj, &'a str, String), ApiError> {
    let path = format!("{path}.source");
    let source = as_object(
        field(block, "source").ok_or_else(|| invalid(format!("`{path}` is required")))?,
        &path,
    )?;
    let ty = block_type(source, &path)?;
    Ok((source, ty, path))
}

fn image_part(block: &Obj, path: &str) -> Result<Value, ApiError> {
    let (source, ty, path) = source(block, path)?;
    let url = match ty {
        "base64" => format!(
            "data:{};base64,{}",
            required_str(source, "media_type", &path)?,
            required_str(source, "data", &path)?
        ),
        "url" => required_str(source, "url", &path)?.to_owned(),
        _ => {
            return Err(invalid(format!(
                "`{path}.type` `{ty}` is not supported for images; use base64 or url"
            )))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A document: PDFs become `file` parts, plain text and content sources become text (and image) parts.
fn document_parts(block: &Obj, path: &str, parts: &mut Vec<Value>) -> Result<(), ApiError> {
    let (source, ty, source_path) = source(block, path)?;
    let filename = field(block, "title")
        .and_then(Value::as_str)
        .unwrap_or("document.pdf");
    match ty {
        "base64" => {
            let media_type = field(source, "media_type")
                .and_then(Value::as_str)
                .unwrap_or("application/pdf");
            let data = required_str(source, "data", &source_path)?;
            parts.push(json!({"type": "file", "file": {
                "filename": filename,
                "file_data": format!("data:{media_type};base64,{data}"),
            }}));
        }
        "url" => {
            let url = required_str(source, "url", &source_path)?;
            parts.push(json!({"type": "file", "file": {"filename": filename, "file_data": url}}));
        }
        "text" => parts.push(text_part(required_str(source, "data", &source_path)?)),
        "content" => match field(source, "content") {
            Some(Value::String(s)) => parts.push(text_part(s)),
            Some(Value::Array(blocks)) => {
                for (k, inner) in blocks.iter().enumerate() {
                    let inner_path = format!("{source_path}.content[{k}]");
                    let inner = as_object(inner, &inner_path)?;
                    match block_type(inner, &inner_path)? {
                        "text" | "image" => user_parts(inner, &inner_path, parts)?,
                        ty => {
                            return Err(invalid(format!(
                                "`{inner_path}.type` `{ty}` is not supported; expected text or image"
                            )))
                        }
                    }
                }
            }
            _ => {
                return Err(invalid(format!(
                    "`{source_path}.content` must be a string or an array of blocks"
                )))
            }
        },
        _ => {
            return Err(invalid(format!(
                "`{source_path}.type` `{ty}` is not supported for documents; use base64, url, text or content"
            )))
        }
    }
    Ok(())
}

/// A `tool_result` block → a `tool` message. All-text results collapse to a string, which every
/// upstream accepts in a tool message.
fn tool_result(block: &Obj, path: &str) -> Result<Value, ApiError> {
    let id = required_str(block, "tool_use_id", path)?;
    let mut parts = Vec::new();
    match field(block, "content") {
        None => {}
        Some(Value::String(s)) => parts.push(text_part(s)),
        Some(Value::Array(blocks)) => {
            for (k, inner) in blocks.iter().enumerate() {
                let inner_path = format!("{path}.content[{k}]");
                user_parts(as_object(inner, &inner_path)?, &inner_path, &mut parts)?;
            }
        }
        Some(_) => {
            return Err(invalid(format!(
                "`{path}.content` must be a string or an array of blocks"
            )))
        }
    }
    if field(block, "is_error").and_then(Value::as_bool) == Some(true) {
        match parts.first_mut() {
            Some(Value::Object(first)) if first.get("type") == Some(&json!("text")) => {
                let text = first.get("text").and_then(Value::as_str).unwrap_or("");
                first.insert("text".into(), json!(format!("Error: {text}")));
            }
            _ => parts.insert(0, text_part("Error")),
        }
    }
    if let Some(last) = parts.last_mut() {
        keep_cache_control(block, last);
    }
    let plain = parts
        .iter()
        .all(|p| p["type"] == "text" && p.get("cache_control").is_none());
    let content = if plain {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        json!(texts.join("\n"))
    } else {
        Value::Array(parts)
    };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": content}))
}

/// An assistant turn → one assistant message with text, `tool_calls` and the thinking as
/// `reasoning` / `reasoning_details` (signatures kept, so the next turn can continue the chain).
fn assistant_turn(content: &Value, path: &str) -> Result<Value, ApiError> {
    let blocks = match content {
        Value::String(s) => return Ok(json!({"role": "assistant", "content": s})),
        Value::Array(blocks) => blocks,
        _ => {
            return Err(invalid(format!(
                "`{path}` must be a string or an array of content blocks"
            )))
        }
    };
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    let mut details = Vec::new();
    let mut reasoning = String::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let block = as_object(block, &path)?;
        match block_type(block, &path)? {
            "text" => {
                let mut part = text_part(required_str(block, "text", &path)?);
                keep_cache_control(block, &mut part);
                texts.push(part);
            }
            "tool_use" => {
                let input = field(block, "input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": required_str(block, "id", &path)?,
                    "type": "function",
                    "function": {
                        "name": required_str(block, "name", &path)?,
                        "arguments": input.to_string(),
                    },
                }));
            }
            "thinking" => {
                let text = required_str(block, "thinking", &path)?;
                reasoning.push_str(text);
                let mut detail = json!({"type": "reasoning.text", "text": text,
                    "format": REASONING_FORMAT, "index": details.len()});
                if let Some(signature) = field(block, "signature") {
                    detail["signature"] = signature.clone();
                }
                details.push(detail);
            }
            "redacted_thinking" => {
                let data = required_str(block, "data", &path)?;
                details.push(json!({"type": "reasoning.encrypted", "data": data,
                    "format": REASONING_FORMAT, "index": details.len()}));
            }
            ty @ ("image" | "document" | "tool_result") => {
                return Err(invalid(format!(
                    "`{path}.type` `{ty}` is only valid in user messages"
                )))
            }
            ty => {
                return Err(invalid(format!(
                    "`{path}.type` `{ty}` is not supported; expected text, tool_use, thinking or redacted_thinking"
                )))
            }
        }
    }
    let plain_single = texts.len() == 1 && texts[0].get("cache_control").is_none();
    let content = if plain_single {
        texts[0]["text"].clone()
    } else if !texts.is_empty() {
        Value::Array(texts)
    } else if !calls.is_empty() {
        Value::Null
    } else {
        json!("")
    };
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !details.is_empty() {
        if !reasoning.is_empty() {
            message["reasoning"] = json!(reasoning);
        }
        message["reasoning_details"] = Value::Array(details);
    }
    Ok(message)
}

fn convert_tool(tool: &Value, i: usize) -> Result<Value, ApiError> {
    let path = format!("tools[{i}]");
    let tool = as_object(tool, &path)?;
    let ty = match field(tool, "type") {
        None => "custom",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(invalid(format!("`{path}.type` must be a string"))),
    };
    if ty == "custom" {
        let name = required_str(tool, "name", &path)?;
        let schema = field(tool, "input_schema")
            .filter(|s| s.is_object())
            .ok_or_else(|| {
                invalid(format!(
                    "`{path}.input_schema` is required and must be a JSON Schema object"
                ))
            })?;
        let mut function = json!({"name": name, "parameters": schema});
        if let Some(description) = field(tool, "description") {
            function["description"] = description.clone();
        }
        if let Some(strict) = field(tool, "strict") {
            function["strict"] = strict.clone();
        }
        return Ok(json!({"type": "function", "function": function}));
    }
    if ty.starts_with("openrouter:") {
        return Ok(Value::Object(tool.clone()));
    }
    // Anthropic's versioned web tools have direct OpenRouter server-tool equivalents.
    let (target, renames): (&str, &[(&str, &str)]) = if ty.starts_with("web_search_") {
        (
            "openrouter:web_search",
            &[
                ("max_uses", "max_uses"),
                ("allowed_domains", "allowed_domains"),
                ("blocked_domains", "excluded_domains"),
                ("user_location", "user_location"),
            ],
        )
    } else if ty.starts_with("web_fetch_") {
        (
            "openrouter:web_fetch",
            &[
                ("max_uses", "max_uses"),
                ("allowed_domains", "allowed_domains"),
                ("blocked_domains", "blocked_domains"),
                ("max_content_tokens", "max_content_tokens"),
            ],
        )
    } else {
        return Err(invalid(format!(
            "`{path}.type` `{ty}` is an Anthropic-defined tool this gateway cannot run; \
             declare it as a custom tool with `name` and `input_schema`"
        )));
    };
    let mut parameters = Obj::new();
    for (from, to) in renames {
        if let Some(v) = field(tool, from) {
            parameters.insert((*to).into(), v.clone());
        }
    }
    let mut out = json!({"type": target});
    if !parameters.is_empty() {
        out["parameters"] = Value::Object(parameters);
    }
    Ok(out)
}

fn tool_choice(choice: &Value, out: &mut Obj) -> Result<(), ApiError> {
    let choice = as_object(choice, "tool_choice")?;
    let converted = match block_type(choice, "tool_choice")? {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => json!({"type": "function", "function": {
            "name": required_str(choice, "name", "tool_choice")?,
        }}),
        ty => {
            return Err(invalid(format!(
                "`tool_choice.type` `{ty}` is not supported; expected auto, any, tool or none"
            )))
        }
    };
    out.insert("tool_choice".into(), converted);
    if field(choice, "disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
        out.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}

/// `thinking` and `output_config` → `reasoning`, `verbosity` and `response_format`.
fn thinking_and_output(src: &Obj, out: &mut Obj) -> Result<(), ApiError> {
    let mut effort = None;
    if let Some(config) = field(src, "output_config") {
        let config = as_object(config, "output_config")?;
        if let Some(e) = field(config, "effort") {
            match e.as_str() {
                Some(e) if EFFORTS.contains(&e) => effort = Some(e),
                _ => {
                    return Err(invalid(
                        "`output_config.effort` must be one of low, medium, high, xhigh, max",
                    ))
                }
            }
            out.insert("verbosity".into(), e.clone());
        }
        if let Some(format) = field(config, "format") {
            let format = as_object(format, "output_config.format")?;
            let schema = field(format, "schema").filter(|s| s.is_object());
            match (block_type(format, "output_config.format")?, schema) {
                ("json_schema", Some(schema)) => {
                    out.insert(
                        "response_format".into(),
                        json!({"type": "json_schema", "json_schema": {
                            "name": "output", "schema": schema, "strict": true,
                        }}),
                    );
                }
                _ => return Err(invalid(
                    "`output_config.format` must be {\"type\": \"json_schema\", \"schema\": {...}}",
                )),
            }
        }
    }
    let Some(thinking) = field(src, "thinking") else {
        return Ok(());
    };
    let thinking = as_object(thinking, "thinking")?;
    match block_type(thinking, "thinking")? {
        "enabled" => {
            let budget = field(thinking, "budget_tokens")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("`thinking.budget_tokens` must be a positive integer"))?;
            out.insert("reasoning".into(), json!({"max_tokens": budget}));
        }
        "adaptive" => {
            let reasoning = match effort {
                Some(effort) => json!({"enabled": true, "effort": effort}),
                None => json!({"enabled": true}),
            };
            out.insert("reasoning".into(), reasoning);
        }
        "disabled" => {}
        ty => {
            return Err(invalid(format!(
                "`thinking.type` `{ty}` is not supported; expected enabled, adaptive or disabled"
            )))
        }
    }
    Ok(())
}

/// `POST /messages/count_tokens`: the gateway's own estimate of the prompt, `{"input_tokens": N}`.
pub fn count_tokens(body: &[u8]) -> Result<Value, ApiError> {
    let request = ChatRequest::parse(&to_chat_request(body)?)?;
    Ok(json!({"input_tokens": request.prompt_estimate()}))
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// The Anthropic stop reason: the native one when a Messages client knows it, else mapped from
/// OpenRouter's normalised finish reason.
fn stop_reason(native: Option<&str>, finish: Option<&str>) -> &'static str {
    if let Some(known) = native.and_then(|n| STOP_REASONS.iter().find(|s| **s == n)) {
        return known;
    }
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// Chat usage → Anthropic usage: Anthropic's `input_tokens` excludes cache reads and writes, which
/// chat's `prompt_tokens` includes. OpenRouter's `cost`, `is_byok` and `cost_details` ride along.
fn usage(chat: Option<&Value>, service_tier: Option<&str>) -> Value {
    let empty = Value::Null;
    let chat = chat.unwrap_or(&empty);
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let prompt = n(&chat["prompt_tokens"]);
    let cached = n(&chat["prompt_tokens_details"]["cached_tokens"]);
    let written = n(&chat["prompt_tokens_details"]["cache_write_tokens"]);
    let thinking = &chat["completion_tokens_details"]["reasoning_tokens"];
    let mut usage = json!({
        "input_tokens": prompt.saturating_sub(cached.saturating_add(written)),
        "output_tokens": n(&chat["completion_tokens"]),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "cache_creation": null,
        "inference_geo": null,
        "server_tool_use": null,
        "output_tokens_details": if thinking.is_u64() {
            json!({"thinking_tokens": thinking})
        } else {
            Value::Null
        },
        "service_tier": if service_tier == Some("priority") { "priority" } else { "standard" },
    });
    for key in ["cost", "is_byok", "cost_details"] {
        if let Some(v) = chat.get(key) {
            usage[key] = v.clone();
        }
    }
    usage
}

/// Chat message text: a string, or the text of its parts.
fn message_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// Thinking blocks from a chat message's `reasoning_details`, or its bare `reasoning` text.
fn thinking_blocks(message: &Value) -> Vec<Value> {
    let mut blocks = Vec::new();
    for detail in message["reasoning_details"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let str_of = |key: &str| detail[key].as_str().unwrap_or("");
        match detail["type"].as_str() {
            Some("reasoning.text") => blocks.push(json!({"type": "thinking",
                "thinking": str_of("text"), "signature": str_of("signature")})),
            Some("reasoning.summary") => blocks.push(json!({"type": "thinking",
                "thinking": str_of("summary"), "signature": ""})),
            Some("reasoning.encrypted") => {
                blocks.push(json!({"type": "redacted_thinking", "data": str_of("data")}))
            }
            _ => {}
        }
    }
    if blocks.is_empty() {
        if let Some(text) = message["reasoning"].as_str().filter(|t| !t.is_empty()) {
            blocks.push(json!({"type": "thinking", "thinking": text, "signature": ""}));
        }
    }
    blocks
}

/// Tool-call arguments → a `tool_use` input: Anthropic requires an object.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

fn tool_use_block(id: &str, name: &str, input: Value) -> Value {
    json!({"type": "tool_use", "id": id, "name": name, "input": input,
        "caller": {"type": "direct"}})
}

/// A whole `chat.completion` body as the pipeline produced it → an Anthropic `message`.
pub fn from_chat_response(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let chat: Value = serde_json::from_slice(body)
        .ok()
        .filter(|v: &Value| v["choices"].is_array())
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "The chat response is unreadable"))?;
    let choice = &chat["choices"][0];
    let message = &choice["message"];

    let mut content = thinking_blocks(message);
    let mut text = message_text(&message["content"]);
    if text.is_empty() {
        text = message_text(&message["refusal"]);
    }
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text, "citations": null}));
    }
    for (i, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let fallback_id = format!("toolu_{i}");
        content.push(tool_use_block(
            call["id"].as_str().unwrap_or(&fallback_id),
            call["function"]["name"].as_str().unwrap_or(""),
            tool_input(call["function"]["arguments"].as_str().unwrap_or("")),
        ));
    }

    let mut out = json!({
        "id": chat["id"],
        "type": "message",
        "role": "assistant",
        "content": content,
        "model": chat["model"],
        "stop_reason": stop_reason(
            choice["native_finish_reason"].as_str(),
            choice["finish_reason"].as_str(),
        ),
        "stop_sequence": null,
        "stop_details": null,
        "container": null,
        "usage": usage(chat.get("usage"), chat["service_tier"].as_str()),
    });
    for key in ["provider", "openrouter_metadata"] {
        if let Some(v) = chat.get(key).filter(|v| !v.is_null()) {
            out[key] = v.clone();
        }
    }
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Anthropic's error `type` for an HTTP status, within the vocabulary of OpenRouter's skin.
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        408 | 504 | 524 => "timeout_error",
        503 | 529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

fn error_object(err: &ApiError) -> Value {
    json!({
        "type": anthropic_error_type(err.code.status()),
        "message": err.message,
        "error_type": err.code.error_type(),
    })
}

/// Anthropic's error envelope for an [`ApiError`]; `metadata` (provider details) is kept beside it.
pub fn error_body(err: &ApiError, request_id: Option<&str>) -> Value {
    let mut body = json!({"type": "error", "error": error_object(err), "request_id": request_id});
    if let Some(metadata) = &err.metadata {
        body["metadata"] = Value::Object(metadata.clone());
    }
    body
}

fn frame(event: &str, data: &Value) -> Vec<u8> {
    let data = serde_json::to_string(data).unwrap_or_default();
    format!("event: {event}\ndata: {data}\n\n").into_bytes()
}

/// The `event: error` frame for a stream that fails after it started.
pub fn error_event(err: &ApiError) -> Vec<u8> {
    frame(
        "error",
        &json!({"type": "error", "error": error_object(err)}),
    )
}

// ---------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------

/// The content block currently open in the Anthropic stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    /// `detail` is the chat `reasoning_details` index feeding it; once signed, it takes no more text.
    Thinking {
        detail: Option<i64>,
        signed: bool,
    },
    /// Position in `EventWriter::tools`.
    Tool(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ToolState {
    /// Seen, but its block is not open yet: its fragments are buffered.
    Pending,
    Live,
    Done,
}

#[derive(Debug)]
struct ToolCall {
    /// The chunk's `tool_calls[].index`.
    key: i64,
    id: Option<String>,
    name: String,
    arguments: String,
    /// Bytes of `arguments` already sent as `input_json_delta`.
    sent: usize,
    state: ToolState,
}

/// Converts the pipeline's SSE output (chat chunks) into Anthropic stream events, incrementally.
///
/// Anthropic blocks are sequential: one is open at a time and a closed block cannot take more
/// deltas. Chat streams may interleave the argument fragments of parallel tool calls, so one tool
/// call streams live while the others are buffered; a buffered call takes over once the live one's
/// arguments form a complete JSON value (nothing meaningful can follow), and the rest are emitted
/// whole before `message_delta`.
#[derive(Debug, Default)]
pub struct EventWriter {
    started: bool,
    closed: bool,
    id: Value,
    model: Value,
    provider: Value,
    next_index: usize,
    open: Option<(usize, Open)>,
    tools: Vec<ToolCall>,
    native_finish: Option<String>,
    finish: Option<String>,
}

impl EventWriter {
    pub fn new() -> EventWriter {
        EventWriter::default()
    }

    /// One `data:` payload of the pipeline's SSE (a chunk, or `[DONE]`) → complete Anthropic frames.
    pub fn on_data(&mut self, data: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        if data.trim() == "[DONE]" {
            self.finalize(None, None, &mut out);
            return out;
        }
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(data) else {
            return out;
        };
        if let Some(error) = field(&chunk, "error") {
            self.fail(error, &mut out);
            return out;
        }
        self.start(&chunk, &mut out);
        for choice in chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.on_choice(choice, &mut out);
        }
        if let Some(usage) = field(&chunk, "usage") {
            self.finalize(Some(usage), field(&chunk, "openrouter_metadata"), &mut out);
        }
        out
    }

    /// A keep-alive comment from the pipeline → an `event: ping` frame (nothing once closed).
    pub fn ping(&self) -> Vec<u8> {
        if self.closed {
            return Vec::new();
        }
        frame("ping", &json!({"type": "ping"}))
    }

    /// The pipeline's stream ended: any closing frames still owed. Idempotent; empty once closed,
    /// and empty if nothing was ever received (there is no message to close).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.finalize(None, None, &mut out);
        out
    }

    fn start(&mut self, chunk: &Obj, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        self.id = chunk.get("id").cloned().unwrap_or(Value::Null);
        self.model = chunk.get("model").cloned().unwrap_or(Value::Null);
        self.provider = chunk.get("provider").cloned().unwrap_or(Value::Null);
        let mut message = json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": null,
            "stop_sequence": null,
            "stop_details": null,
            "container": null,
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "cache_creation": null,
                "inference_geo": null,
                "output_tokens_details": null,
                "server_tool_use": null,
                "service_tier": "standard",
            },
        });
        if !self.provider.is_null() {
            message["provider"] = self.provider.clone();
        }
        out.extend(frame(
            "message_start",
            &json!({"type": "message_start", "message": message}),
        ));
    }

    fn on_choice(&mut self, choice: &Value, out: &mut Vec<u8>) {
        let delta = &choice["delta"];
        // `reasoning` repeats the text of `reasoning_details`; use the details when present.
        match delta["reasoning_details"]
            .as_array()
            .filter(|d| !d.is_empty())
        {
            Some(details) => {
                for detail in details {
                    self.on_detail(detail, out);
                }
            }
            None => {
                if let Some(text) = delta["reasoning"].as_str() {
                    self.thinking(text, None, out);
                }
            }
        }
        for key in ["content", "refusal"] {
            if let Some(text) = delta[key].as_str() {
                self.text(text, out);
            }
        }
        for (position, call) in delta["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.tool_fragment(call, position, out);
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            self.finish = Some(finish.to_owned());
            self.native_finish = choice["native_finish_reason"].as_str().map(str::to_owned);
        }
    }

    fn on_detail(&mut self, detail: &Value, out: &mut Vec<u8>) {
        let index = detail["index"].as_i64();
        match detail["type"].as_str() {
            Some("reasoning.text") => {
                if let Some(text) = detail["text"].as_str() {
                    self.thinking(text, index, out);
                }
                if let Some(signature) = detail["signature"].as_str().filter(|s| !s.is_empty()) {
                    self.signature(signature, index, out);
                }
            }
            Some("reasoning.summary") => {
                if let Some(text) = detail["summary"].as_str() {
                    self.thinking(text, index, out);
                }
            }
            Some("reasoning.encrypted") => {
                // A redacted block has no deltas: it opens and closes at once.
                let data = detail["data"].as_str().unwrap_or("");
                self.close_open(out);
                let index =
                    self.start_block(json!({"type": "redacted_thinking", "data": data}), out);
                stop_block(out, index);
            }
            _ => {}
        }
    }

    /// The open thinking block that may take text for reasoning detail `index`, if any.
    fn thinking_open(&self, index: Option<i64>) -> Option<usize> {
        match self.open {
            Some((block, Open::Thinking { detail, signed })) => {
                let same = detail.is_none() || index.is_none() || detail == index;
                (same && !signed).then_some(block)
            }
            _ => None,
        }
    }

    fn open_thinking(&mut self, index: Option<i64>, out: &mut Vec<u8>) -> usize {
        self.open_block(
            Open::Thinking {
                detail: index,
                signed: false,
            },
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            out,
        )
    }

    fn thinking(&mut self, text: &str, index: Option<i64>, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let block = match self.thinking_open(index) {
            Some(block) => block,
            None => self.open_thinking(index, out),
        };
        delta(
            out,
            block,
            json!({"type": "thinking_delta", "thinking": text}),
        );
    }

    fn signature(&mut self, signature: &str, index: Option<i64>, out: &mut Vec<u8>) {
        let block = match self.thinking_open(index) {
            Some(block) => block,
            None => self.open_thinking(index, out),
        };
        delta(
            out,
            block,
            json!({"type": "signature_delta", "signature": signature}),
        );
        // Thinking after a signature belongs to a new block with its own signature.
        self.open = Some((
            block,
            Open::Thinking {
                detail: index,
                signed: true,
            },
        ));
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let block = match self.open {
            Some((block, Open::Text)) => block,
            _ => self.open_block(
                Open::Text,
                json!({"type": "text", "text": "", "citations": null}),
                out,
            ),
        };
        delta(out, block, json!({"type": "text_delta", "text": text}));
    }

    fn tool_fragment(&mut self, call: &Value, position: usize, out: &mut Vec<u8>) {
        let key = call["index"].as_i64().unwrap_or(position as i64);
        let slot = match self.tools.iter().position(|t| t.key == key) {
            Some(slot) => slot,
            None => {
                self.tools.push(ToolCall {
                    key,
                    id: None,
                    name: String::new(),
                    arguments: String::new(),
                    sent: 0,
                    state: ToolState::Pending,
                });
                self.tools.len() - 1
            }
        };
        let tool = &mut self.tools[slot];
        if let Some(id) = call["id"].as_str().filter(|id| !id.is_empty()) {
            tool.id.get_or_insert_with(|| id.to_owned());
        }
        if let Some(name) = call["function"]["name"].as_str() {
            if tool.name.is_empty() {
                tool.name = name.to_owned();
            }
        }
        let fragment = call["function"]["arguments"].as_str().unwrap_or("");
        match tool.state {
            // The block is closed; a complete JSON value can only be followed by whitespace.
            ToolState::Done => {}
            ToolState::Live => {
                tool.arguments.push_str(fragment);
                self.flush_arguments(slot, out);
            }
            ToolState::Pending => {
                tool.arguments.push_str(fragment);
                if !tool.name.is_empty() && self.may_open_tool() {
                    self.open_tool(slot, out);
                }
            }
        }
    }

    /// Whether a buffered tool call may open its block now: not while another call is mid-arguments.
    fn may_open_tool(&self) -> bool {
        match self.open {
            Some((_, Open::Tool(live))) => {
                serde_json::from_str::<Value>(&self.tools[live].arguments).is_ok()
            }
            _ => true,
        }
    }

    fn open_tool(&mut self, slot: usize, out: &mut Vec<u8>) {
        let tool = &self.tools[slot];
        let id = tool
            .id
            .clone()
            .unwrap_or_else(|| format!("toolu_{}", tool.key));
        let block = tool_use_block(&id, &tool.name, json!({}));
        self.open_block(Open::Tool(slot), block, out);
        self.tools[slot].state = ToolState::Live;
        self.flush_arguments(slot, out);
    }

    fn flush_arguments(&mut self, slot: usize, out: &mut Vec<u8>) {
        let Some((block, Open::Tool(live))) = self.open else {
            return;
        };
        if live != slot {
            return;
        }
        let tool = &mut self.tools[slot];
        if tool.sent < tool.arguments.len() {
            let partial = &tool.arguments[tool.sent..];
            delta(
                out,
                block,
                json!({"type": "input_json_delta", "partial_json": partial}),
            );
            tool.sent = tool.arguments.len();
        }
    }

    /// Closes the open block (if any) and opens a new one; returns its index.
    fn open_block(&mut self, kind: Open, content_block: Value, out: &mut Vec<u8>) -> usize {
        self.close_open(out);
        let index = self.start_block(content_block, out);
        self.open = Some((index, kind));
        index
    }

    /// `content_block_start` with the next block index.
    fn start_block(&mut self, content_block: Value, out: &mut Vec<u8>) -> usize {
        let index = self.next_index;
        self.next_index += 1;
        out.extend(frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        ));
        index
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some((index, kind)) = self.open.take() {
            if let Open::Tool(slot) = kind {
                self.tools[slot].state = ToolState::Done;
            }
            stop_block(out, index);
        }
    }

    /// Closes every block (emitting buffered tool calls whole), then `message_delta` and
    /// `message_stop`. Only once, and only for a message that started.
    fn finalize(
        &mut self,
        usage_chunk: Option<&Value>,
        metadata: Option<&Value>,
        out: &mut Vec<u8>,
    ) {
        if self.closed || !self.started {
            return;
        }
        self.closed = true;
        self.close_open(out);
        for slot in 0..self.tools.len() {
            if self.tools[slot].state == ToolState::Pending {
                self.open_tool(slot, out);
                self.close_open(out);
            }
        }
        let mut counts = match usage_chunk {
            Some(chat) => usage(Some(chat), None),
            // The stream ended without usage: nothing is known but that it stopped.
            None => json!({"input_tokens": null, "output_tokens": 0,
                "cache_creation_input_tokens": null, "cache_read_input_tokens": null,
                "output_tokens_details": null, "server_tool_use": null}),
        };
        if let Some(counts) = counts.as_object_mut() {
            // `message_delta` usage carries counts only; the tier was announced in `message_start`.
            counts.remove("service_tier");
            counts.remove("inference_geo");
        }
        let stop = stop_reason(self.native_finish.as_deref(), self.finish.as_deref());
        out.extend(frame(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null, "stop_details": null,
                    "container": null},
                "usage": counts,
            }),
        ));
        let mut stop_event = json!({"type": "message_stop"});
        if let Some(metadata) = metadata {
            stop_event["openrouter_metadata"] = metadata.clone();
        }
        out.extend(frame("message_stop", &stop_event));
    }

    /// The pipeline's mid-stream error chunk: close the open block, then `event: error`.
    fn fail(&mut self, error: &Value, out: &mut Vec<u8>) {
        self.closed = true;
        self.close_open(out);
        let status = error["code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        let mut object = json!({
            "type": anthropic_error_type(status),
            "message": error["message"].as_str().unwrap_or("Provider returned error"),
        });
        if let Some(error_type) = error["metadata"]["error_type"].as_str() {
            object["error_type"] = json!(error_type);
        }
        out.extend(frame("error", &json!({"type": "error", "error": object})));
    }
}

fn stop_block(out: &mut Vec<u8>, index: usize) {
    out.extend(frame(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    ));
}

fn delta(out: &mut Vec<u8>, index: usize, delta: Value) {
    out.extend(frame(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": delta}),
    ));
}

#[cfg(test)]
mod tests;
