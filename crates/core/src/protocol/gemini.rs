//! Google's Gemini API (`generateContent`, and `streamGenerateContent?alt=sse`) as an upstream
//! protocol, for Google AI Studio and Vertex AI alike (one wire format under two base URLs): the
//! client's OpenAI-shaped chat request rewritten as a `GenerateContentRequest`, and Gemini's
//! responses (or their SSE chunks) rewritten as a `chat.completion` (or `chat.completion.chunk`s) in
//! OpenRouter's shape.
//!
//! Pure functions over bytes and JSON; sending (the model is in the [`path`], the key in a header)
//! is the server's job.
//!
//! Requests. System and developer messages become `systemInstruction`; assistant turns are role
//! `model`; tool results become `functionResponse` parts of a user turn, named after the call they
//! answer (Gemini matches responses by name and order; call ids are optional there and not taken
//! by every Google backend, so none are sent). Consecutive turns of one role are merged, so the results of parallel calls share one
//! turn as Gemini wants. Only fields Gemini knows are written. Decisions where the APIs differ:
//!
//! - Tool parameters go out as `parametersJsonSchema` and `json_schema` response formats as
//!   `responseJsonSchema`: both take JSON Schema as clients write it (Gemini documents the subset
//!   of keywords it honours), where `parameters`/`responseSchema` take an OpenAPI subset that would need
//!   a lossy rewrite. Only the top-level `$schema` marker is removed.
//! - `reasoning` becomes `thinkingConfig.thinkingBudget`: `reasoning.max_tokens` is the budget; an
//!   effort is a share of `maxOutputTokens` (OpenRouter's ratios), which on Gemini counts thinking
//!   and answer together; effort `none` (or `enabled: false`) is a budget of 0. Without a
//!   reasoning field the model's default applies. `includeThoughts` is on unless the client
//!   excludes reasoning.
//! - `presence_penalty`/`frequency_penalty` are dropped: the API lists them, but current models
//!   reject them ("Penalty is not enabled for this model"), which would fail the whole request.
//!   `n`, `logprobs`, `user`, `parallel_tool_calls` and `cache_control` have no counterpart
//!   (Gemini caches implicitly) and are dropped too.
//!
//! Responses. Thought parts become `reasoning` and `reasoning.text` details; every
//! `thoughtSignature` becomes a `reasoning.encrypted` detail (format `google-gemini-v1`) whose `id`
//! is the tool call it was attached to (none for a text part). Clients pass the details back
//! unchanged and the signatures return to the same parts, as Gemini requires for function calling
//! (thought text is not sent back: the signature carries the context). Signatures are relayed
//! even when reasoning is excluded, since the next turn fails without them. A function call's `id`
//! is kept when Gemini sends one, else `call_<n>_<name>` (deterministic, so a stream and its
//! non-streamed twin agree). Gemini's `STOP` with function calls finishes as `tool_calls`; a prompt
//! blocked by `promptFeedback.blockReason` is an empty answer finishing as `content_filter`.
//!
//! Usage: `prompt_tokens` is `promptTokenCount` (which includes cached tokens) plus
//! `toolUsePromptTokenCount`; `completion_tokens` is `candidatesTokenCount` plus
//! `thoughtsTokenCount`, which Gemini counts apart, and the latter is also `reasoning_tokens`.

use super::openai::invalid_upstream_response;
use super::{
    finish_reason, is_context_length_message, upstream_failure, ChunkStamp, Outcome, Served,
    UpstreamFailure,
};
use crate::chat::ChatRequest;
use crate::error::ApiError;
use crate::pricing::{Charge, Usage};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

pub use super::StreamStep;

/// `format` of the `reasoning_details` we produce, and the only one we pass back to Gemini.
const REASONING_FORMAT: &str = "google-gemini-v1";

/// The path, appended to a base URL ending in `/v1beta` (AI Studio) or `.../publishers/google`
/// (Vertex AI), for `upstream_model`.
pub fn path(upstream_model: &str, stream: bool) -> String {
    let model = upstream_model
        .strip_prefix("models/")
        .unwrap_or(upstream_model);
    if stream {
        format!("/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/models/{model}:generateContent")
    }
}

/// The upstream request body. The model is named in the [`path`], not here (`upstream_model` is
/// taken for the signature every translator shares). `default_max_tokens` is sent as
/// `maxOutputTokens` when the client set no output cap, so the output stays within what was
/// reserved for it.
pub fn request_body(
    req: &ChatRequest,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<Vec<u8>, ApiError> {
    let _ = upstream_model;
    let src = req.body();
    let messages = src
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (system, contents) = convert_messages(messages)?;

    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let declarations = convert_tools(src)?;
    if !declarations.is_empty() {
        body.insert(
            "tools".into(),
            json!([{"functionDeclarations": declarations}]),
        );
        if let Some(config) = convert_tool_choice(src) {
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
        }
    }

    let mut config = Map::new();
    let max_tokens = req.max_output().unwrap_or(default_max_tokens);
    config.insert("maxOutputTokens".into(), json!(max_tokens));
    if let Some(t) = src.get("temperature").and_then(Value::as_f64) {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(p) = src.get("top_p").and_then(Value::as_f64) {
        config.insert("topP".into(), json!(p));
    }
    if let Some(k) = src.get("top_k").and_then(Value::as_u64) {
        config.insert("topK".into(), json!(k));
    }
    if let Some(seed) = src.get("seed").and_then(Value::as_i64) {
        config.insert("seed".into(), json!(seed));
    }
    let stop: Vec<&str> = match src.get("stop") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let stop: Vec<&str> = stop.into_iter().filter(|s| !s.is_empty()).collect();
    if !stop.is_empty() {
        config.insert("stopSequences".into(), json!(stop));
    }
    match src
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
    {
        Some("json_schema") => {
            let Some(schema) = src["response_format"]
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .filter(|s| s.is_object())
            else {
                return Err(ApiError::invalid(
                    "`response_format.json_schema.schema` must be a JSON Schema object",
                ));
            };
            config.insert("responseMimeType".into(), json!("application/json"));
            config.insert("responseJsonSchema".into(), json_schema(schema));
        }
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        // `text` is the default; other formats (`grammar`, `python`) have no counterpart.
        _ => {}
    }
    if let Some(thinking) = thinking_config(req, max_tokens) {
        config.insert("thinkingConfig".into(), thinking);
    }
    body.insert("generationConfig".into(), Value::Object(config));
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// How much thinking the client asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ThinkingAsk {
    /// Effort `none` or `enabled: false`: a budget of 0.
    Off,
    /// `reasoning.max_tokens`.
    Tokens(u64),
    /// An effort, as a share of `maxOutputTokens`.
    Share(f64),
}

/// Reads `reasoning`, `reasoning_effort` and the deprecated `include_reasoning`; `None` when the
/// client did not ask (the model's default then applies).
fn reasoning_ask(src: &Map<String, Value>) -> Option<ThinkingAsk> {
    let reasoning = src.get("reasoning").filter(|r| r.is_object());
    let field = |name: &str| reasoning.and_then(|r| r.get(name)).filter(|v| !v.is_null());
    let effort = field("effort")
        .or_else(|| src.get("reasoning_effort"))
        .and_then(Value::as_str);
    if field("enabled").and_then(Value::as_bool) == Some(false) || effort == Some("none") {
        return Some(ThinkingAsk::Off);
    }
    if let Some(tokens) = field("max_tokens").and_then(Value::as_u64) {
        return Some(ThinkingAsk::Tokens(tokens));
    }
    if let Some(effort) = effort {
        return Some(ThinkingAsk::Share(effort_share(effort)));
    }
    let enabled = field("enabled").and_then(Value::as_bool) == Some(true)
        || src.get("include_reasoning").and_then(Value::as_bool) == Some(true);
    enabled.then(|| ThinkingAsk::Share(effort_share("medium")))
}

/// OpenRouter's effort ratios; an unknown effort is treated as `medium`, the default of `enabled`.
fn effort_share(effort: &str) -> f64 {
    match effort {
        "max" | "xhigh" => 0.95,
        "high" => 0.8,
        "low" => 0.2,
        "minimal" => 0.1,
        _ => 0.5,
    }
}

/// `generationConfig.thinkingConfig`, or `None` to leave the model's default.
fn thinking_config(req: &ChatRequest, max_tokens: u64) -> Option<Value> {
    let budget = match reasoning_ask(req.body())? {
        ThinkingAsk::Off => return Some(json!({"thinkingBudget": 0})),
        ThinkingAsk::Tokens(n) => n,
        // At least 1: a budget of 0 would turn thinking off, which no effort but `none` asks.
        ThinkingAsk::Share(share) => ((max_tokens as f64 * share) as u64).max(1),
    };
    if budget == 0 {
        return Some(json!({"thinkingBudget": 0}));
    }
    Some(json!({"thinkingBudget": budget, "includeThoughts": !excludes_reasoning(req)}))
}

/// Whether the client asked for reasoning to be left out of what it receives.
fn excludes_reasoning(req: &ChatRequest) -> bool {
    let src = req.body();
    src.get("reasoning")
        .and_then(|r| r.get("exclude"))
        .and_then(Value::as_bool)
        == Some(true)
        || src.get("include_reasoning").and_then(Value::as_bool) == Some(false)
}

/// The `systemInstruction` parts and the `contents` turns.
fn convert_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // Tool call id → function name, from the assistant turns seen so far: a `functionResponse`
    // is named, not keyed by id.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        let (role, parts) = match role {
            "system" | "developer" => {
                system.extend(content_parts(i, &message["content"], PartsAllowed::Text)?);
                continue;
            }
            "user" => (
                "user",
                content_parts(i, &message["content"], PartsAllowed::All)?,
            ),
            "assistant" => ("model", assistant_parts(i, message, &mut call_names)?),
            "tool" => {
                let id = message["tool_call_id"].as_str().unwrap_or_default();
                let Some(name) = call_names
                    .get(id)
                    .map(String::as_str)
                    .or_else(|| message["name"].as_str())
                else {
                    return Err(ApiError::invalid(format!(
                        "`messages[{i}].tool_call_id` must be the id of a tool call in an earlier assistant message"
                    )));
                };
                ("user", tool_result_parts(i, name, &message["content"])?)
            }
            // OpenAI's deprecated function messages carry the name themselves.
            "function" => {
                let name = message["name"].as_str().unwrap_or_default();
                ("user", tool_result_parts(i, name, &message["content"])?)
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "`messages[{i}]`: the role `{role}` is not supported by this provider"
                )))
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    Ok((system, turns))
}

#[derive(Clone, Copy, PartialEq)]
enum PartsAllowed {
    /// System instructions: text only.
    Text,
    All,
}

/// Parts of a string or an array of content parts; empty text is skipped.
fn content_parts(i: usize, content: &Value, allowed: PartsAllowed) -> Result<Vec<Value>, ApiError> {
    let items = match content {
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![json!({"text": s})]),
        Value::Array(items) => items,
        _ => return Ok(Vec::new()),
    };
    let mut parts = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        if let Some(part) = content_part(&format!("messages[{i}].content[{j}]"), item, allowed)? {
            parts.push(part);
        }
    }
    Ok(parts)
}

/// One content part as a Gemini part (`None` for empty text).
fn content_part(at: &str, item: &Value, allowed: PartsAllowed) -> Result<Option<Value>, ApiError> {
    let kind = item["type"].as_str().unwrap_or_default();
    let part = match (kind, allowed) {
        ("text", _) => match item["text"].as_str() {
            Some("") => return Ok(None),
            Some(text) => json!({"text": text}),
            None => return Err(ApiError::invalid(format!("`{at}.text` must be a string"))),
        },
        ("image_url", PartsAllowed::All) => {
            let url = item["image_url"]
                .get("url")
                .unwrap_or(&item["image_url"])
                .as_str()
                .unwrap_or_default();
            media_part(url, "image/jpeg").ok_or_else(|| {
                ApiError::invalid(format!(
                    "`{at}.image_url.url` must be an http(s) URL or a base64 data URL"
                ))
            })?
        }
        ("file", PartsAllowed::All) => {
            let Some(data) = item["file"].get("file_data").and_then(Value::as_str) else {
                return Err(ApiError::invalid(format!(
                    "`{at}.file.file_data` is required: this provider does not take `file_id`"
                )));
            };
            media_part(data, "application/pdf").ok_or_else(|| {
                ApiError::invalid(format!(
                    "`{at}.file.file_data` must be a base64 data URL or an http(s) URL"
                ))
            })?
        }
        ("input_audio", PartsAllowed::All) => {
            let audio = &item["input_audio"];
            let (Some(data), Some(format)) = (audio["data"].as_str(), audio["format"].as_str())
            else {
                return Err(ApiError::invalid(format!(
                    "`{at}.input_audio` needs `data` (base64) and `format`"
                )));
            };
            json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": data}})
        }
        _ => {
            return Err(ApiError::invalid(format!(
                "`{at}`: content parts of type `{kind}` are not supported here by this provider"
            )))
        }
    };
    Ok(Some(part))
}

/// `(media type, base64 data)` of a `data:<type>;base64,<data>` URL.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let meta = meta.strip_suffix(";base64")?;
    let media_type = meta.split(';').next().unwrap_or_default();
    Some((media_type, data))
}

/// Inline data for a data URL, a file reference for an http(s) URL. Gemini wants a MIME type for
/// the latter too: guessed from the extension, else `fallback`.
fn media_part(url: &str, fallback: &str) -> Option<Value> {
    if let Some((media_type, data)) = parse_data_url(url) {
        return Some(json!({"inlineData": {"mimeType": media_type, "data": data}}));
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return None;
    }
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let extension = path
        .rsplit_once('/')
        .and_then(|(_, file)| file.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let mime_type = match extension.as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        Some("pdf") => "application/pdf",
        _ => fallback,
    };
    Some(json!({"fileData": {"mimeType": mime_type, "fileUri": url}}))
}

/// An assistant turn: its text, then its function calls, with the thought signatures from
/// `reasoning_details` back on the parts they came with.
fn assistant_parts(
    i: usize,
    message: &Value,
    call_names: &mut HashMap<String, String>,
) -> Result<Vec<Value>, ApiError> {
    let (mut text_signature, mut call_signatures) = signatures(message.get("reasoning_details"));
    let mut parts = Vec::new();
    // Text parts only: an assistant turn cannot carry images, and refusal parts are not prompts.
    match &message["content"] {
        Value::String(s) if !s.is_empty() => parts.push(json!({"text": s})),
        Value::Array(items) => {
            for item in items {
                if let Some(text) = item["text"].as_str().filter(|t| !t.is_empty()) {
                    parts.push(json!({"text": text}));
                }
            }
        }
        _ => {}
    }
    // A signature that came on a text part goes back on the last one (where Gemini puts it).
    if let Some(last) = parts.last_mut() {
        if let Some(signature) = text_signature.take() {
            last["thoughtSignature"] = json!(signature);
        }
    }
    for (k, call) in message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("messages[{i}].tool_calls[{k}]");
        let (Some(id), Some(name)) = (call["id"].as_str(), call["function"]["name"].as_str())
        else {
            return Err(ApiError::invalid(format!(
                "`{at}` needs an `id` and a `function.name`"
            )));
        };
        let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
        let args = if arguments.trim().is_empty() {
            json!({})
        } else {
            match serde_json::from_str::<Value>(arguments) {
                Ok(args @ Value::Object(_)) => args,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "`{at}.function.arguments` must be a JSON object encoded as a string"
                    )))
                }
            }
        };
        call_names.insert(id.to_owned(), name.to_owned());
        let mut part = json!({"functionCall": {"name": name, "args": args}});
        // A signature without its call id (a client dropped it) still belongs on the first call.
        if let Some(signature) = call_signatures.remove(id).or_else(|| text_signature.take()) {
            part["thoughtSignature"] = json!(signature);
        }
        parts.push(part);
    }
    Ok(parts)
}

/// The thought signatures among `reasoning_details` we produced: the one of a text part (no
/// `id`), and those of function calls by call id. Other formats (another provider's reasoning)
/// cannot be verified by Gemini and are left out.
fn signatures(details: Option<&Value>) -> (Option<String>, HashMap<String, String>) {
    let mut text = None;
    let mut calls = HashMap::new();
    for detail in details.and_then(Value::as_array).into_iter().flatten() {
        let format = detail["format"].as_str().unwrap_or(REASONING_FORMAT);
        if format != REASONING_FORMAT || detail["type"] != "reasoning.encrypted" {
            continue;
        }
        let Some(data) = detail["data"].as_str().filter(|d| !d.is_empty()) else {
            continue;
        };
        match detail["id"].as_str() {
            Some(id) => {
                calls.insert(id.to_owned(), data.to_owned());
            }
            None => {
                text.get_or_insert_with(|| data.to_owned());
            }
        }
    }
    (text, calls)
}

/// A tool (or function) message: a `functionResponse` part, plus any non-text parts it carries.
/// `response` must be an object: a JSON object result is sent as it is, anything else under
/// `output` (the key Gemini documents for a function's output).
fn tool_result_parts(i: usize, name: &str, content: &Value) -> Result<Vec<Value>, ApiError> {
    let mut extra = Vec::new();
    let text = match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let mut text = String::new();
            for (j, item) in items.iter().enumerate() {
                if item["type"] == "text" {
                    text.push_str(item["text"].as_str().unwrap_or_default());
                } else if let Some(part) = content_part(
                    &format!("messages[{i}].content[{j}]"),
                    item,
                    PartsAllowed::All,
                )? {
                    extra.push(part);
                }
            }
            text
        }
        _ => String::new(),
    };
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(object @ Value::Object(_)) => object,
        _ => json!({"output": text}),
    };
    let mut parts = vec![json!({"functionResponse": {"name": name, "response": response}})];
    parts.extend(extra);
    Ok(parts)
}

/// Function tools as Gemini function declarations; OpenRouter's server tools are not forwarded.
fn convert_tools(src: &Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    let mut declarations = Vec::new();
    for (i, tool) in src
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if tool["type"].as_str() != Some("function") {
            continue;
        }
        let function = &tool["function"];
        let Some(name) = function["name"].as_str() else {
            return Err(ApiError::invalid(format!(
                "`tools[{i}].function.name` is required"
            )));
        };
        let mut out = Map::new();
        out.insert("name".into(), json!(name));
        if let Some(description) = function["description"].as_str() {
            out.insert("description".into(), json!(description));
        }
        // A function without parameters leaves the schema out, as Gemini documents.
        if let Some(schema) = function.get("parameters").filter(|p| p.is_object()) {
            out.insert("parametersJsonSchema".into(), json_schema(schema));
        }
        declarations.push(Value::Object(out));
    }
    Ok(declarations)
}

/// A client's JSON Schema as Gemini takes it: whole, but for the `$schema` dialect marker (which
/// schema generators add and Gemini has no use for).
fn json_schema(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schema
}

/// `tool_choice` as `functionCallingConfig`: `required` and a named function are mode `ANY`, the
/// latter limited to that function.
fn convert_tool_choice(src: &Map<String, Value>) -> Option<Value> {
    match src.get("tool_choice")? {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"mode": "AUTO"})),
            "none" => Some(json!({"mode": "NONE"})),
            "required" => Some(json!({"mode": "ANY"})),
            _ => None,
        },
        Value::Object(c) if c.get("type").and_then(Value::as_str) == Some("function") => c
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|name| json!({"mode": "ANY", "allowedFunctionNames": [name]})),
        _ => None,
    }
}

/// The normalised finish for Gemini's `native` one: `STOP` after function calls is `tool_calls`
/// (Gemini has no finish reason of its own for them).
fn finish_with_calls(native: &str, tool_calls: usize) -> &'static str {
    match finish_reason(native) {
        "stop" if tool_calls > 0 => "tool_calls",
        normalised => normalised,
    }
}

/// The first candidate (we never ask for more).
fn first_candidate(response: &Map<String, Value>) -> Option<&Value> {
    response
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
}

/// The parts of a candidate's content.
fn candidate_parts(candidate: &Value) -> &[Value] {
    candidate["content"]["parts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Why the prompt was blocked, when it was (then there are no candidates).
fn block_reason(response: &Map<String, Value>) -> Option<&str> {
    response
        .get("promptFeedback")
        .and_then(|f| f.get("blockReason"))
        .and_then(Value::as_str)
}

/// Reads a non-streaming `GenerateContentResponse` as a `chat.completion` body. Its choice carries
/// the normalised `finish_reason` and Gemini's own value as `native_finish_reason`, which
/// [`super::openai::render_response`] keeps.
pub fn parse_response(
    bytes: &[u8],
    req: &ChatRequest,
) -> Result<(Map<String, Value>, Outcome), ApiError> {
    let Ok(Value::Object(response)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid_upstream_response());
    };
    let candidate = first_candidate(&response);
    let blocked = block_reason(&response).filter(|_| candidate.is_none());
    if candidate.is_none() && blocked.is_none() {
        return Err(invalid_upstream_response());
    }
    let mut reader = PartReader::new(excludes_reasoning(req));
    let read = reader.read(candidate.map(candidate_parts).unwrap_or_default());

    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(read.content));
    if let Some(reasoning) = &read.reasoning {
        message.insert("reasoning".into(), json!(reasoning));
    }
    if !read.details.is_empty() {
        message.insert("reasoning_details".into(), Value::Array(read.details));
    }
    if !read.calls.is_empty() {
        let calls = read.calls.into_iter().map(|(_, call)| call).collect();
        message.insert("tool_calls".into(), Value::Array(calls));
    }

    let (finish, native) = match (blocked, candidate) {
        (Some(reason), _) => (Some("content_filter"), Some(reason.to_owned())),
        (None, Some(candidate)) => match candidate["finishReason"].as_str() {
            Some(native) => (
                Some(finish_with_calls(native, reader.tool_calls)),
                Some(native.to_owned()),
            ),
            None => (None, None),
        },
        (None, None) => (None, None),
    };
    let outcome = Outcome {
        usage: response.get("usageMetadata").and_then(parse_usage),
        finish_reason: finish.map(str::to_owned),
        native_finish_reason: native.clone(),
        upstream_id: response
            .get("responseId")
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let mut body = Map::new();
    body.insert(
        "id".into(),
        response.get("responseId").cloned().unwrap_or(Value::Null),
    );
    body.insert("object".into(), json!("chat.completion"));
    body.insert(
        "model".into(),
        response.get("modelVersion").cloned().unwrap_or(Value::Null),
    );
    body.insert(
        "choices".into(),
        json!([{"index": 0, "message": message, "finish_reason": finish,
            "native_finish_reason": native, "logprobs": null}]),
    );
    Ok((body, outcome))
}

/// Gemini's `usageMetadata` in our convention (see the module docs).
fn parse_usage(usage: &Value) -> Option<Usage> {
    let usage = usage.as_object()?;
    let n = |name: &str| usage.get(name).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Some(Usage {
        prompt_tokens: n("promptTokenCount") + n("toolUsePromptTokenCount"),
        completion_tokens: n("candidatesTokenCount") + thoughts,
        cached_tokens: n("cachedContentTokenCount"),
        reasoning_tokens: thoughts,
        ..Usage::default()
    })
}

/// What a run of parts holds, in the chat shape.
#[derive(Debug, Default)]
struct Read {
    content: Option<String>,
    reasoning: Option<String>,
    details: Vec<Value>,
    /// `(index among the tool calls, call)`.
    calls: Vec<(usize, Value)>,
    /// Generated bytes, thoughts included even when excluded (they are billed all the same).
    bytes: usize,
}

/// Reads parts into content, reasoning, reasoning details and tool calls. One reader serves a
/// whole response or a whole stream (fed chunk by chunk), so both number details and calls alike:
/// consecutive thought parts are one `reasoning.text` item (one `index`), closed by any other part
/// or a signature.
#[derive(Debug)]
struct PartReader {
    exclude_reasoning: bool,
    /// The `index` of the reasoning item thought text is going to.
    open_thought: Option<usize>,
    details: usize,
    tool_calls: usize,
}

impl PartReader {
    fn new(exclude_reasoning: bool) -> PartReader {
        PartReader {
            exclude_reasoning,
            open_thought: None,
            details: 0,
            tool_calls: 0,
        }
    }

    fn next_detail(&mut self) -> usize {
        self.details += 1;
        self.details - 1
    }

    fn read(&mut self, parts: &[Value]) -> Read {
        let mut out = Read::default();
        for part in parts {
            let signature = part["thoughtSignature"].as_str().filter(|s| !s.is_empty());
            if part["thought"].as_bool() == Some(true) {
                let text = part["text"].as_str().unwrap_or_default();
                out.bytes += text.len();
                if !text.is_empty() && !self.exclude_reasoning {
                    self.thought(&mut out, text);
                }
                if let Some(signature) = signature {
                    self.signature(&mut out, signature, None);
                }
                continue;
            }
            self.open_thought = None;
            if let Some(call) = part.get("functionCall").filter(|c| c.is_object()) {
                let name = call["name"].as_str().unwrap_or_default();
                let id = match call["id"].as_str().filter(|id| !id.is_empty()) {
                    Some(id) => id.to_owned(),
                    None => format!("call_{}_{name}", self.tool_calls),
                };
                let args = call
                    .get("args")
                    .filter(|a| a.is_object())
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                let arguments = args.to_string();
                out.bytes += name.len() + arguments.len();
                out.calls.push((
                    self.tool_calls,
                    json!({"id": id, "type": "function",
                        "function": {"name": name, "arguments": arguments}}),
                ));
                self.tool_calls += 1;
                if let Some(signature) = signature {
                    self.signature(&mut out, signature, Some(&id));
                }
                continue;
            }
            if let Some(text) = part["text"].as_str().filter(|t| !t.is_empty()) {
                out.bytes += text.len();
                out.content.get_or_insert_with(String::new).push_str(text);
            }
            // Other parts (code execution, inline images) carry nothing the chat shape holds, but
            // a signature on them is kept all the same.
            if let Some(signature) = signature {
                self.signature(&mut out, signature, None);
            }
        }
        out
    }

    fn thought(&mut self, out: &mut Read, text: &str) {
        out.reasoning.get_or_insert_with(String::new).push_str(text);
        let index = match self.open_thought {
            Some(index) => index,
            None => {
                let index = self.next_detail();
                self.open_thought = Some(index);
                index
            }
        };
        match out
            .details
            .iter_mut()
            .find(|d| d["index"] == index && d["type"] == "reasoning.text")
        {
            Some(item) => {
                let joined = format!("{}{text}", item["text"].as_str().unwrap_or_default());
                item["text"] = json!(joined);
            }
            None => out
                .details
                .push(json!({"type": "reasoning.text", "text": text,
                "format": REASONING_FORMAT, "index": index})),
        }
    }

    /// A signature closes the thought it follows; on a function call it carries the call's id.
    fn signature(&mut self, out: &mut Read, signature: &str, call_id: Option<&str>) {
        self.open_thought = None;
        let mut item = json!({"type": "reasoning.encrypted", "data": signature,
            "format": REASONING_FORMAT, "index": self.next_detail()});
        if let Some(id) = call_id {
            item["id"] = json!(id);
        }
        out.details.push(item);
    }
}

/// Turns Gemini's SSE chunks (each a whole `GenerateContentResponse`) into `chat.completion.chunk`s,
/// one per upstream chunk, remembering what the final chunk needs.
///
/// Gemini sends no terminal event: its last chunk carries the finish reason (and often the last
/// text), so that chunk is relayed as a frame and the stream is whole when the body ends after a
/// finish reason (which the relay checks through [`Outcome::finish_reason`]). [`StreamStep::Done`]
/// is never returned, because it would drop that last chunk.
#[derive(Debug)]
pub struct StreamTranslator {
    stamp: ChunkStamp,
    reader: PartReader,
    role_sent: bool,
    outcome: Outcome,
    generated_bytes: usize,
    content_sent: bool,
}

impl StreamTranslator {
    pub fn new(served: &Served<'_>, req: &ChatRequest) -> StreamTranslator {
        StreamTranslator {
            stamp: ChunkStamp::new(served),
            reader: PartReader::new(excludes_reasoning(req)),
            role_sent: false,
            outcome: Outcome::default(),
            generated_bytes: 0,
            content_sent: false,
        }
    }

    /// Handles the `data` of one upstream event.
    pub fn on_data(&mut self, data: &str) -> Result<StreamStep, ApiError> {
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(data) else {
            return Err(invalid_upstream_response());
        };
        if let Some(error) = chunk.get("error").filter(|e| e.is_object()) {
            return Err(upstream_error(
                error_status(error).unwrap_or(500),
                data.as_bytes(),
                self.stamp.provider_name(),
                None,
            ));
        }
        if self.outcome.upstream_id.is_none() {
            self.outcome.upstream_id = chunk
                .get("responseId")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        // Counts are cumulative: the latest replaces the others.
        if let Some(usage) = chunk.get("usageMetadata").and_then(parse_usage) {
            self.outcome.usage = Some(usage);
        }

        let mut delta = Map::new();
        let mut finish = None;
        let mut content = false;
        if let Some(candidate) = first_candidate(&chunk) {
            let read = self.reader.read(candidate_parts(candidate));
            self.generated_bytes += read.bytes;
            if let Some(text) = read.content {
                delta.insert("content".into(), json!(text));
                content = true;
            }
            if let Some(reasoning) = read.reasoning {
                delta.insert("reasoning".into(), json!(reasoning));
                content = true;
            }
            if !read.details.is_empty() {
                delta.insert("reasoning_details".into(), Value::Array(read.details));
            }
            if !read.calls.is_empty() {
                let calls = read
                    .calls
                    .into_iter()
                    .map(|(index, mut call)| {
                        call["index"] = json!(index);
                        call
                    })
                    .collect();
                delta.insert("tool_calls".into(), Value::Array(calls));
                content = true;
            }
            if let Some(native) = candidate["finishReason"].as_str() {
                finish = Some((finish_with_calls(native, self.reader.tool_calls), native));
            }
        } else if let Some(reason) = block_reason(&chunk) {
            delta.insert("content".into(), json!(""));
            finish = Some(("content_filter", reason));
        }
        if delta.is_empty() && finish.is_none() {
            return Ok(StreamStep::Nothing);
        }
        if !self.role_sent {
            // SDKs want the role on the first chunk.
            self.role_sent = true;
            delta.insert("role".into(), json!("assistant"));
        }
        if let Some((normalised, native)) = finish {
            self.outcome.finish_reason = Some(normalised.to_owned());
            self.outcome.native_finish_reason = Some(native.to_owned());
        }
        self.content_sent |= content;
        Ok(StreamStep::Frame(
            self.stamp.choice_frame(Value::Object(delta), finish),
        ))
    }

    /// Whether any generated content has been forwarded (after which failover is impossible).
    pub fn content_sent(&self) -> bool {
        self.content_sent
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Bytes of generated text seen so far (to estimate tokens if the stream is cut short).
    pub fn generated_bytes(&self) -> usize {
        self.generated_bytes
    }

    /// The last chunk before `[DONE]`: no choices, the usage with its cost, and the routing
    /// metadata when the client asked for it.
    pub fn usage_frame(&self, usage: &Usage, charge: &Charge, metadata: Option<Value>) -> Vec<u8> {
        self.stamp.usage_frame(usage, charge, metadata)
    }

    /// OpenRouter's mid-stream error chunk: top-level `error` and a choice finishing with `error`.
    pub fn error_frame(&self, err: &ApiError) -> Vec<u8> {
        self.stamp
            .error_frame(err, self.outcome.native_finish_reason.as_deref())
    }
}

/// The HTTP status of a Google error object: its `code`, else the one its canonical `status`
/// stands for.
fn error_status(error: &Value) -> Option<u16> {
    if let Some(code) = error["code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
    {
        return Some(code);
    }
    let status = match error["status"].as_str()? {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ABORTED" | "ALREADY_EXISTS" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    };
    Some(status)
}

/// Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "13s"`), which Gemini's 429s
/// carry instead of a `Retry-After` header.
fn retry_delay(error: &Value) -> Option<u64> {
    error["details"].as_array()?.iter().find_map(|detail| {
        let seconds: f64 = detail["retryDelay"]
            .as_str()?
            .strip_suffix('s')?
            .parse()
            .ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
    })
}

/// Whether Gemini's message says the prompt does not fit ("The input token count (…) exceeds the
/// maximum number of tokens allowed (…)"), or another provider's wording does.
fn is_gemini_context_length_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("exceeds the maximum number of tokens") || is_context_length_message(message)
}

/// Maps a Gemini error (`{"error":{"code","message","status","details"}}`, possibly inside an
/// array) to the client's error, keeping the provider's words in `metadata.raw`. The HTTP status
/// decides, as for every upstream, with two exceptions Gemini reports as 400 although they are the
/// provider's and not the request's: an invalid API key (`API_KEY_INVALID`) is treated as a 401,
/// a failed precondition (billing, an unsupported region) as a 403; `metadata.provider_code` stays
/// the real status. An error without an error status (in a stream) takes its own `code`.
pub fn upstream_error(
    status: u16,
    body: &[u8],
    provider_name: &str,
    retry_after: Option<u64>,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = match &parsed {
        Some(Value::Array(items)) => items.first(),
        other => other.as_ref(),
    }
    .and_then(|v| v.get("error"))
    .filter(|e| e.is_object());
    let provider_message = error.and_then(|e| e["message"].as_str()).map(str::to_owned);
    let status = if status >= 400 {
        status
    } else {
        error.and_then(error_status).unwrap_or(500)
    };
    let key_invalid = error.is_some_and(|e| {
        e["details"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["reason"] == "API_KEY_INVALID")
    });
    let treated_as = match (status, error.and_then(|e| e["status"].as_str())) {
        (400, _) if key_invalid => 401,
        (400, Some("FAILED_PRECONDITION")) => 403,
        _ => status,
    };
    let raw = provider_message
        .clone()
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(1000)]).into_owned());
    let context_length = provider_message
        .as_deref()
        .is_some_and(is_gemini_context_length_message);
    let mut err = upstream_failure(UpstreamFailure {
        status: treated_as,
        provider_message,
        raw,
        context_length,
        provider_name,
        retry_after: retry_after.or_else(|| error.and_then(retry_delay)),
    });
    if treated_as != status {
        if let Some(metadata) = err.metadata.as_mut() {
            metadata.insert("provider_code".into(), json!(status));
        }
    }
    err
}

#[cfg(test)]
mod tests;
