//! Anthropic Messages as an upstream protocol: the client's OpenAI-shaped chat request rewritten as a
//! Messages request, and Anthropic's message (or its event stream) rewritten as a `chat.completion`
//! (or `chat.completion.chunk`s) in OpenRouter's shape.
//!
//! Pure functions over bytes and JSON; sending (with `x-api-key`, `anthropic-version:`
//! [`ANTHROPIC_VERSION`]) is the server's job.
//!
//! Requests. System and developer messages become the top-level `system` blocks; consecutive turns of
//! one role are merged, because Anthropic wants user and assistant to alternate; tool messages become
//! `tool_result` blocks of a user turn. Only fields Anthropic knows are written: everything else
//! (OpenRouter's own fields, penalties, `seed`, `logprobs`, the client's `metadata`, ...) is dropped,
//! because Anthropic rejects unknown fields. Decisions where the two APIs do not line up:
//!
//! - `response_format: json_schema` becomes `output_config.format` (Anthropic's structured outputs,
//!   generally available: no `anthropic-beta` header is needed, so [`beta_headers`] is empty).
//!   `json_object` has no Anthropic counterpart (a schema of a bare object is not accepted by
//!   structured outputs), so it becomes an instruction appended to `system`.
//! - `reasoning` becomes `thinking: {type: "enabled", budget_tokens}`: `reasoning.max_tokens` is the
//!   budget; an effort is a share of `max_tokens` (OpenRouter's ratios). Anthropic wants the budget at
//!   least 1024 and below `max_tokens`, so `max_tokens` is raised (by the budget, within the
//!   endpoint's limit) when it leaves no room for the answer.
//! - With thinking, Anthropic rejects `temperature` other than 1, any `top_k`, `top_p` below 0.95 and a
//!   forced tool choice. The sampling parameters are dropped (the client asked for reasoning); a forced
//!   tool choice (`required` or a named function) wins over reasoning instead, because clients build
//!   control flow on it, so thinking is then left off.
//! - `temperature` is clamped to Anthropic's 0–1 range (OpenAI's is 0–2). Recent models reject
//!   `temperature` together with `top_p`, so `top_p` is sent only without a temperature.
//! - `reasoning.exclude` (or `include_reasoning: false`): the model still thinks, but `reasoning` and
//!   `reasoning_details` are left out of the response and the chunks.
//!
//! Responses. Thinking is returned as `reasoning` and as `reasoning_details` in OpenRouter's
//! `anthropic-claude-v1` format (`reasoning.text` with its signature, `reasoning.encrypted` for
//! redacted thinking), which clients pass back unchanged on the next turn, where they become thinking
//! blocks again, first in their assistant turn as Anthropic requires. Usage follows our convention
//! (`prompt_tokens` includes cache reads and writes).

use super::openai::invalid_upstream_response;
use super::{
    finish_reason, is_context_length_message, upstream_failure, ChunkStamp, Outcome, Served,
    UpstreamFailure,
};
use crate::chat::ChatRequest;
use crate::error::ApiError;
use crate::pricing::{Charge, Usage};
use serde_json::{json, Map, Value};

pub use super::StreamStep;

/// Path appended to the provider's base URL (which ends in `/v1`).
pub const MESSAGES_PATH: &str = "/messages";

/// The `anthropic-version` header value.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `format` of the `reasoning_details` we produce, and the only one we pass back to Anthropic.
const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// Anthropic's smallest thinking budget.
const MIN_THINKING_BUDGET: u64 = 1024;

/// Anthropic rejects `top_p` below this while thinking.
pub(super) const MIN_THINKING_TOP_P: f64 = 0.95;

/// What `json_object` turns into (see the module docs).
const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object only, with no text before or after it.";

/// Values for the `anthropic-beta` header that `req` needs. None today: structured outputs
/// (`output_config.format`) and everything else [`request_body`] writes are generally available. The
/// server sends this list so that a feature behind a beta flag can be added here alone.
pub fn beta_headers(_req: &ChatRequest) -> Vec<&'static str> {
    Vec::new()
}

/// The upstream request body. `default_max_tokens` is used when the client set no output cap
/// (Anthropic requires `max_tokens`); it is also the ceiling when thinking needs more room.
pub fn request_body(
    req: &ChatRequest,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut body = Map::new();
    body.insert("model".into(), json!(upstream_model));
    fill_body(req, default_max_tokens, &mut body)?;
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// The body for Claude on Vertex AI (`rawPredict`/`streamRawPredict`): the same Messages body
/// without `model` (the URL names it) and with Vertex's `anthropic_version` field.
pub fn vertex_request_body(
    req: &ChatRequest,
    default_max_tokens: u64,
) -> Result<Vec<u8>, ApiError> {
    let mut body = Map::new();
    body.insert("anthropic_version".into(), json!(VERTEX_ANTHROPIC_VERSION));
    fill_body(req, default_max_tokens, &mut body)?;
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// The Messages API version Vertex AI expects in the body.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Everything of the Messages body but its model (see [`request_body`]).
fn fill_body(
    req: &ChatRequest,
    default_max_tokens: u64,
    body: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let src = req.body();

    let messages = src
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (mut system, turns) = convert_messages(messages)?;

    let mut thinking_budget = None;
    let mut max_tokens = req.max_output().unwrap_or(default_max_tokens);

    let tools = convert_tools(src)?;
    let tool_choice = if tools.is_empty() {
        None
    } else {
        convert_tool_choice(src)
    };
    let forced_tool = tool_choice
        .as_ref()
        .and_then(|c| c["type"].as_str())
        .is_some_and(|t| t == "any" || t == "tool");
    if let Some(ask) = reasoning_ask(src).filter(|_| !forced_tool) {
        if let Some((budget, max)) = plan_thinking(ask, max_tokens, default_max_tokens) {
            thinking_budget = Some(budget);
            max_tokens = max;
        }
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
            body.insert(
                "output_config".into(),
                json!({"format": {"type": "json_schema", "schema": schema}}),
            );
        }
        Some("json_object") => {
            system.push(json!({"type": "text", "text": JSON_OBJECT_INSTRUCTION}))
        }
        // `text` is the default; other formats (`grammar`, `python`) have no counterpart.
        _ => {}
    }

    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(turns));
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(budget) = thinking_budget {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = tool_choice {
        body.insert("tool_choice".into(), choice);
    }

    let thinking = thinking_budget.is_some();
    if let Some(t) = src.get("temperature").and_then(Value::as_f64) {
        let t = t.clamp(0.0, 1.0);
        if !thinking || t == 1.0 {
            body.insert("temperature".into(), json!(t));
        }
    }
    if let Some(p) = src.get("top_p").and_then(Value::as_f64) {
        // Recent models reject `temperature` and `top_p` together; the temperature is kept.
        if (!thinking || p >= MIN_THINKING_TOP_P) && !body.contains_key("temperature") {
            body.insert("top_p".into(), json!(p));
        }
    }
    if let Some(k) = src.get("top_k").and_then(Value::as_u64) {
        if !thinking {
            body.insert("top_k".into(), json!(k));
        }
    }
    let stop: Vec<&str> = match src.get("stop") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let stop: Vec<&str> = stop.into_iter().filter(|s| !s.is_empty()).collect();
    if !stop.is_empty() {
        body.insert("stop_sequences".into(), json!(stop));
    }
    if let Some(user) = req.str_field("user").filter(|u| !u.is_empty()) {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(cache) = src.get("cache_control").filter(|c| c.is_object()) {
        body.insert("cache_control".into(), cache.clone());
    }
    if req.stream() {
        body.insert("stream".into(), json!(true));
    }
    Ok(())
}

/// How much thinking the client asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum ThinkingAsk {
    /// `reasoning.max_tokens`.
    Tokens(u64),
    /// An effort, as a share of `max_tokens`.
    Share(f64),
}

/// Reads `reasoning`, `reasoning_effort` and the deprecated `include_reasoning`.
pub(super) fn reasoning_ask(src: &Map<String, Value>) -> Option<ThinkingAsk> {
    let reasoning = src.get("reasoning").filter(|r| r.is_object());
    let field = |name: &str| reasoning.and_then(|r| r.get(name)).filter(|v| !v.is_null());
    if field("enabled").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    let effort = field("effort")
        .or_else(|| src.get("reasoning_effort"))
        .and_then(Value::as_str);
    if effort == Some("none") {
        return None;
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

/// The thinking budget and the `max_tokens` to send with it, or `None` when the endpoint cannot
/// emit enough tokens to think at all.
pub(super) fn plan_thinking(ask: ThinkingAsk, max_tokens: u64, ceiling: u64) -> Option<(u64, u64)> {
    let budget = match ask {
        ThinkingAsk::Tokens(n) => n,
        ThinkingAsk::Share(share) => (max_tokens as f64 * share) as u64,
    }
    .max(MIN_THINKING_BUDGET);
    if budget < max_tokens {
        return Some((budget, max_tokens));
    }
    // No room left for the answer: keep the client's cap for the answer on top of the budget, as
    // far as the endpoint allows.
    let raised = budget
        .saturating_add(max_tokens)
        .min(ceiling.max(max_tokens));
    if raised > budget {
        Some((budget, raised))
    } else if raised > MIN_THINKING_BUDGET {
        Some((raised - 1, raised))
    } else {
        None
    }
}

/// Whether the client asked for reasoning to be left out of what it receives.
pub(super) fn excludes_reasoning(req: &ChatRequest) -> bool {
    let src = req.body();
    src.get("reasoning")
        .and_then(|r| r.get("exclude"))
        .and_then(Value::as_bool)
        == Some(true)
        || src.get("include_reasoning").and_then(Value::as_bool) == Some(false)
}

/// The `system` blocks and the alternating user/assistant turns.
fn convert_messages(messages: &[Value]) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        let content = &message["content"];
        let (role, mut blocks) = match role {
            "system" | "developer" => {
                let mut blocks = content_blocks(i, content, PartsAllowed::Text)?;
                apply_message_cache_control(message, &mut blocks);
                system.extend(blocks);
                continue;
            }
            "user" => ("user", content_blocks(i, content, PartsAllowed::All)?),
            "assistant" => ("assistant", assistant_blocks(i, message)?),
            "tool" => ("user", vec![tool_result(i, message)?]),
            _ => {
                return Err(ApiError::invalid(format!(
                    "`messages[{i}]`: the role `{role}` is not supported by this provider; use `tool` messages"
                )))
            }
        };
        apply_message_cache_control(message, &mut blocks);
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

/// A `cache_control` set on a whole message marks its last block (where Anthropic reads it).
fn apply_message_cache_control(message: &Value, blocks: &mut [Value]) {
    let Some(cache) = message.get("cache_control").filter(|c| c.is_object()) else {
        return;
    };
    if let Some(Value::Object(last)) = blocks.last_mut() {
        last.entry("cache_control").or_insert_with(|| cache.clone());
    }
}

#[derive(Clone, Copy, PartialEq)]
enum PartsAllowed {
    /// System prompts: text only.
    Text,
    All,
}

/// Blocks of a string or an array of content parts; empty text is skipped (Anthropic rejects it).
fn content_blocks(
    i: usize,
    content: &Value,
    allowed: PartsAllowed,
) -> Result<Vec<Value>, ApiError> {
    let parts = match content {
        Value::String(s) if s.is_empty() => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts,
        _ => return Ok(Vec::new()),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        let kind = part["type"].as_str().unwrap_or_default();
        let mut block = match (kind, allowed) {
            ("text", _) => match part["text"].as_str() {
                Some("") => continue,
                Some(text) => json!({"type": "text", "text": text}),
                None => return Err(ApiError::invalid(format!("`{at}.text` must be a string"))),
            },
            ("image_url", PartsAllowed::All) => {
                let url = part["image_url"]
                    .get("url")
                    .unwrap_or(&part["image_url"])
                    .as_str()
                    .unwrap_or_default();
                image_block(url).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "`{at}.image_url.url` must be an http(s) URL or a base64 data URL"
                    ))
                })?
            }
            ("file", PartsAllowed::All) => file_block(&at, &part["file"])?,
            _ => {
                return Err(ApiError::invalid(format!(
                    "`{at}`: content parts of type `{kind}` are not supported here by this provider"
                )))
            }
        };
        if let Some(cache) = part.get("cache_control").filter(|c| c.is_object()) {
            block["cache_control"] = cache.clone();
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// `(media type, base64 data)` of a `data:<type>;base64,<data>` URL.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let meta = meta.strip_suffix(";base64")?;
    let media_type = meta.split(';').next().unwrap_or_default();
    Some((media_type, data))
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fn image_block(url: &str) -> Option<Value> {
    if let Some((media_type, data)) = parse_data_url(url) {
        return Some(json!({"type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}}));
    }
    is_http_url(url).then(|| json!({"type": "image", "source": {"type": "url", "url": url}}))
}

/// A `file` part: PDFs become documents, images image blocks.
fn file_block(at: &str, file: &Value) -> Result<Value, ApiError> {
    let Some(data) = file.get("file_data").and_then(Value::as_str) else {
        return Err(ApiError::invalid(format!(
            "`{at}.file.file_data` is required: this provider does not take `file_id`"
        )));
    };
    let mut block = if let Some((media_type, encoded)) = parse_data_url(data) {
        match media_type {
            "application/pdf" => json!({"type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": encoded}}),
            m if m.starts_with("image/") => image_block(data).unwrap_or_default(),
            m => {
                return Err(ApiError::invalid(format!(
                    "`{at}.file`: files of type `{m}` are not supported by this provider (PDF and images are)"
                )))
            }
        }
    } else if is_http_url(data) {
        json!({"type": "document", "source": {"type": "url", "url": data}})
    } else {
        return Err(ApiError::invalid(format!(
            "`{at}.file.file_data` must be a base64 data URL or an http(s) URL"
        )));
    };
    if let (Some(name), "document") = (
        file.get("filename").and_then(Value::as_str),
        block["type"].as_str().unwrap_or_default(),
    ) {
        block["title"] = json!(name);
    }
    Ok(block)
}

/// An assistant turn: thinking passed back first (Anthropic requires it before text and tool use),
/// then text, then tool calls.
fn assistant_blocks(i: usize, message: &Value) -> Result<Vec<Value>, ApiError> {
    let mut blocks = thinking_blocks(message.get("reasoning_details"));
    // Text parts only: an assistant turn cannot carry images, and refusal parts are not prompts.
    match &message["content"] {
        Value::String(s) if !s.is_empty() => blocks.push(json!({"type": "text", "text": s})),
        Value::Array(parts) => {
            for part in parts {
                if let Some(text) = part["text"].as_str().filter(|t| !t.is_empty()) {
                    let mut block = json!({"type": "text", "text": text});
                    if let Some(cache) = part.get("cache_control").filter(|c| c.is_object()) {
                        block["cache_control"] = cache.clone();
                    }
                    blocks.push(block);
                }
            }
        }
        _ => {}
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
        let input = if arguments.trim().is_empty() {
            json!({})
        } else {
            match serde_json::from_str::<Value>(arguments) {
                Ok(input @ Value::Object(_)) => input,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "`{at}.function.arguments` must be a JSON object encoded as a string"
                    )))
                }
            }
        };
        blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(blocks)
}

/// Thinking and redacted-thinking blocks from `reasoning_details` we produced earlier. Details of
/// other formats (another provider's reasoning) cannot be verified by Anthropic and are left out, as
/// is text without a signature. Consecutive text items with one `index` are merged, for clients that
/// pass streamed fragments back as they came.
pub(super) fn thinking_blocks(details: Option<&Value>) -> Vec<Value> {
    let mut blocks: Vec<Value> = Vec::new();
    let mut last_index: Option<u64> = None;
    for detail in details.and_then(Value::as_array).into_iter().flatten() {
        let format = detail["format"].as_str().unwrap_or(REASONING_FORMAT);
        if format != REASONING_FORMAT {
            continue;
        }
        let index = detail["index"].as_u64();
        match detail["type"].as_str() {
            Some("reasoning.text") => {
                let text = detail["text"].as_str().unwrap_or_default();
                let signature = detail["signature"].as_str().unwrap_or_default();
                let continues = index.is_some()
                    && index == last_index
                    && blocks.last().is_some_and(|b| b["type"] == "thinking");
                if continues {
                    if let Some(last) = blocks.last_mut() {
                        let joined = format!("{}{text}", last["thinking"].as_str().unwrap_or(""));
                        last["thinking"] = json!(joined);
                        if !signature.is_empty() {
                            last["signature"] = json!(signature);
                        }
                    }
                } else {
                    blocks.push(
                        json!({"type": "thinking", "thinking": text, "signature": signature}),
                    );
                }
            }
            Some("reasoning.encrypted") => {
                if let Some(data) = detail["data"].as_str() {
                    blocks.push(json!({"type": "redacted_thinking", "data": data}));
                }
            }
            _ => continue,
        }
        last_index = index;
    }
    blocks.retain(|b| b["type"] != "thinking" || b["signature"] != "");
    blocks
}

/// A tool message as a `tool_result` block.
fn tool_result(i: usize, message: &Value) -> Result<Value, ApiError> {
    let id = message["tool_call_id"].as_str().unwrap_or_default();
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    match &message["content"] {
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => block["content"] = json!(s),
        content => {
            let blocks = content_blocks(i, content, PartsAllowed::All)?;
            if !blocks.is_empty() {
                block["content"] = Value::Array(blocks);
            }
        }
    }
    Ok(block)
}

/// Function tools as Anthropic tools; OpenRouter's server tools are not forwarded.
fn convert_tools(src: &Map<String, Value>) -> Result<Vec<Value>, ApiError> {
    let mut tools = Vec::new();
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
        let schema = function
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        out.insert("input_schema".into(), schema);
        if let Some(strict) = function["strict"].as_bool() {
            out.insert("strict".into(), json!(strict));
        }
        if let Some(cache) = tool.get("cache_control").filter(|c| c.is_object()) {
            out.insert("cache_control".into(), cache.clone());
        }
        tools.push(Value::Object(out));
    }
    Ok(tools)
}

/// `tool_choice` and `parallel_tool_calls` as Anthropic's `tool_choice`.
fn convert_tool_choice(src: &Map<String, Value>) -> Option<Value> {
    let mut choice = match src.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            _ => None,
        },
        Some(Value::Object(c)) if c.get("type").and_then(Value::as_str) == Some("function") => c
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|name| json!({"type": "tool", "name": name})),
        _ => None,
    };
    if src.get("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        // `none` calls no tool, so there is nothing to serialise.
        if choice["type"] != "none" {
            choice["disable_parallel_tool_use"] = json!(true);
        }
    }
    choice
}

/// Reads a non-streaming Messages response as a `chat.completion` body whose choice carries
/// Anthropic's own `stop_reason` as `finish_reason` ([`super::openai::render_response`] normalises it).
pub fn parse_response(
    bytes: &[u8],
    req: &ChatRequest,
) -> Result<(Map<String, Value>, Outcome), ApiError> {
    let Ok(Value::Object(message)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid_upstream_response());
    };
    let Some(content) = message.get("content").and_then(Value::as_array) else {
        return Err(invalid_upstream_response());
    };
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut details = Vec::new();
    let mut tool_calls = Vec::new();
    for block in content {
        match block["type"].as_str().unwrap_or_default() {
            "text" => text
                .get_or_insert_with(String::new)
                .push_str(block["text"].as_str().unwrap_or_default()),
            "thinking" => {
                let thinking = block["thinking"].as_str().unwrap_or_default();
                reasoning.get_or_insert_with(String::new).push_str(thinking);
                let mut item = json!({"type": "reasoning.text", "text": thinking,
                    "format": REASONING_FORMAT, "index": details.len()});
                if let Some(signature) = block["signature"].as_str() {
                    item["signature"] = json!(signature);
                }
                details.push(item);
            }
            "redacted_thinking" => details.push(json!({"type": "reasoning.encrypted",
                "data": block["data"], "format": REASONING_FORMAT, "index": details.len()})),
            "tool_use" => tool_calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            // Server tools' blocks and anything newer carry nothing the chat shape can hold.
            _ => {}
        }
    }
    let mut out_message = Map::new();
    out_message.insert("role".into(), json!("assistant"));
    out_message.insert("content".into(), json!(text));
    if !excludes_reasoning(req) && !details.is_empty() {
        out_message.insert("reasoning".into(), json!(reasoning));
        out_message.insert("reasoning_details".into(), Value::Array(details));
    }
    if !tool_calls.is_empty() {
        out_message.insert("tool_calls".into(), Value::Array(tool_calls));
    }

    let native = message
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut counts = UsageCounts::default();
    if let Some(usage) = message.get("usage") {
        counts.update(usage);
    }
    let outcome = Outcome {
        usage: message.get("usage").map(|_| counts.usage()),
        finish_reason: native.as_deref().map(|n| finish_reason(n).to_owned()),
        native_finish_reason: native.clone(),
        upstream_id: message.get("id").and_then(Value::as_str).map(str::to_owned),
    };
    let mut body = Map::new();
    body.insert(
        "id".into(),
        message.get("id").cloned().unwrap_or(Value::Null),
    );
    body.insert("object".into(), json!("chat.completion"));
    body.insert(
        "model".into(),
        message.get("model").cloned().unwrap_or(Value::Null),
    );
    body.insert(
        "choices".into(),
        json!([{"index": 0, "message": out_message, "finish_reason": native, "logprobs": null}]),
    );
    Ok((body, outcome))
}

/// Anthropic's token counts, latest value of each: `message_start` reports the input side and
/// `message_delta` cumulative totals, so values replace each other and are never added.
#[derive(Debug, Default, Clone, Copy)]
struct UsageCounts {
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
    web_searches: u64,
}

impl UsageCounts {
    fn update(&mut self, usage: &Value) {
        let set = |field: &mut u64, value: &Value| {
            if let Some(n) = value.as_u64() {
                *field = n;
            }
        };
        set(&mut self.input, &usage["input_tokens"]);
        set(&mut self.cache_read, &usage["cache_read_input_tokens"]);
        set(&mut self.cache_write, &usage["cache_creation_input_tokens"]);
        set(&mut self.output, &usage["output_tokens"]);
        set(
            &mut self.web_searches,
            &usage["server_tool_use"]["web_search_requests"],
        );
    }

    /// Our convention: `prompt_tokens` includes the cache reads and writes Anthropic counts apart.
    /// Anthropic does not report thinking tokens apart from output tokens.
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.input + self.cache_read + self.cache_write,
            completion_tokens: self.output,
            cached_tokens: self.cache_read,
            cache_write_tokens: self.cache_write,
            web_searches: self.web_searches,
            ..Usage::default()
        }
    }
}

/// What a content block of the stream is, by Anthropic's block index.
#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    /// `item`: its index in `reasoning_details`.
    Thinking {
        item: usize,
    },
    /// `call`: its index among the tool calls (what OpenAI's `tool_calls[].index` counts).
    ToolUse {
        call: usize,
        arguments_sent: bool,
    },
    Other,
}

/// Turns Anthropic's event stream into `chat.completion.chunk`s, remembering what the final chunk
/// needs. Fed the `data` of each event (its `type` field names the event).
#[derive(Debug)]
pub struct StreamTranslator {
    stamp: ChunkStamp,
    exclude_reasoning: bool,
    blocks: Vec<(u64, Block)>,
    tool_calls: usize,
    reasoning_items: usize,
    counts: UsageCounts,
    outcome: Outcome,
    generated_bytes: usize,
    content_sent: bool,
}

impl StreamTranslator {
    pub fn new(served: &Served<'_>, req: &ChatRequest) -> StreamTranslator {
        StreamTranslator {
            stamp: ChunkStamp::new(served),
            exclude_reasoning: excludes_reasoning(req),
            blocks: Vec::new(),
            tool_calls: 0,
            reasoning_items: 0,
            counts: UsageCounts::default(),
            outcome: Outcome::default(),
            generated_bytes: 0,
            content_sent: false,
        }
    }

    /// Handles the `data` of one upstream event.
    pub fn on_data(&mut self, data: &str) -> Result<StreamStep, ApiError> {
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(data) else {
            return Err(invalid_upstream_response());
        };
        let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
        match event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "message_start" => {
                let message = &event["message"];
                self.outcome.upstream_id = message["id"].as_str().map(str::to_owned);
                self.update_usage(&message["usage"]);
                // Peers forget the role; SDKs want it on the first chunk.
                Ok(self.delta(json!({"role": "assistant", "content": ""}), false))
            }
            "content_block_start" => Ok(self.block_start(index, &event["content_block"])),
            "content_block_delta" => Ok(self.block_delta(index, &event["delta"])),
            "content_block_stop" => Ok(self.block_stop(index)),
            "message_delta" => {
                if let Some(usage) = event.get("usage") {
                    self.update_usage(usage);
                }
                let Some(native) = event["delta"]["stop_reason"].as_str() else {
                    return Ok(StreamStep::Nothing);
                };
                self.outcome.native_finish_reason = Some(native.to_owned());
                self.outcome.finish_reason = Some(finish_reason(native).to_owned());
                Ok(StreamStep::Frame(self.stamp.choice_frame(
                    json!({}),
                    Some((finish_reason(native), native)),
                )))
            }
            "message_stop" => Ok(StreamStep::Done),
            "error" => Err(upstream_error(
                error_type_status(event["error"]["type"].as_str().unwrap_or_default()),
                data.as_bytes(),
                self.stamp.provider_name(),
                None,
            )),
            // `ping`, and event types Anthropic may add (its documentation asks clients to ignore them).
            _ => Ok(StreamStep::Nothing),
        }
    }

    fn update_usage(&mut self, usage: &Value) {
        if usage.is_object() {
            self.counts.update(usage);
            self.outcome.usage = Some(self.counts.usage());
        }
    }

    fn block(&self, index: u64) -> Block {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map_or(Block::Other, |(_, b)| *b)
    }

    fn set_block(&mut self, index: u64, block: Block) {
        match self.blocks.iter_mut().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = block,
            None => self.blocks.push((index, block)),
        }
    }

    fn block_start(&mut self, index: u64, block: &Value) -> StreamStep {
        match block["type"].as_str().unwrap_or_default() {
            "text" => {
                self.set_block(index, Block::Text);
                self.text(block["text"].as_str().unwrap_or_default())
            }
            "thinking" => {
                let item = self.next_reasoning_item();
                self.set_block(index, Block::Thinking { item });
                self.thinking(item, block["thinking"].as_str().unwrap_or_default())
            }
            "redacted_thinking" => {
                let item = self.next_reasoning_item();
                self.set_block(index, Block::Other);
                if self.exclude_reasoning {
                    return StreamStep::Nothing;
                }
                self.delta(
                    json!({"reasoning_details": [{"type": "reasoning.encrypted",
                        "data": block["data"], "format": REASONING_FORMAT, "index": item}]}),
                    true,
                )
            }
            "tool_use" => {
                let call = self.tool_calls;
                self.tool_calls += 1;
                self.set_block(
                    index,
                    Block::ToolUse {
                        call,
                        arguments_sent: false,
                    },
                );
                let name = block["name"].as_str().unwrap_or_default();
                self.generated_bytes += name.len();
                // The input arrives as `input_json_delta`s; the start's `input` is always empty.
                self.delta(
                    json!({"tool_calls": [{"index": call, "id": block["id"], "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    true,
                )
            }
            _ => {
                self.set_block(index, Block::Other);
                StreamStep::Nothing
            }
        }
    }

    fn block_delta(&mut self, index: u64, delta: &Value) -> StreamStep {
        match (
            self.block(index),
            delta["type"].as_str().unwrap_or_default(),
        ) {
            (Block::Text, "text_delta") => self.text(delta["text"].as_str().unwrap_or_default()),
            (Block::Thinking { item }, "thinking_delta") => {
                self.thinking(item, delta["thinking"].as_str().unwrap_or_default())
            }
            (Block::Thinking { item }, "signature_delta") => {
                let signature = delta["signature"].as_str().unwrap_or_default();
                if self.exclude_reasoning || signature.is_empty() {
                    return StreamStep::Nothing;
                }
                self.delta(
                    json!({"reasoning_details": [{"type": "reasoning.text", "signature": signature,
                        "format": REASONING_FORMAT, "index": item}]}),
                    false,
                )
            }
            (Block::ToolUse { call, .. }, "input_json_delta") => {
                let fragment = delta["partial_json"].as_str().unwrap_or_default();
                if fragment.is_empty() {
                    return StreamStep::Nothing;
                }
                self.set_block(
                    index,
                    Block::ToolUse {
                        call,
                        arguments_sent: true,
                    },
                );
                self.tool_arguments(call, fragment)
            }
            // Citations and deltas of blocks we do not relay.
            _ => StreamStep::Nothing,
        }
    }

    /// A tool without input streams no JSON at all; its arguments must still parse.
    fn block_stop(&mut self, index: u64) -> StreamStep {
        match self.block(index) {
            Block::ToolUse {
                call,
                arguments_sent: false,
            } => self.tool_arguments(call, "{}"),
            _ => StreamStep::Nothing,
        }
    }

    fn next_reasoning_item(&mut self) -> usize {
        self.reasoning_items += 1;
        self.reasoning_items - 1
    }

    fn text(&mut self, text: &str) -> StreamStep {
        if text.is_empty() {
            return StreamStep::Nothing;
        }
        self.generated_bytes += text.len();
        self.delta(json!({"content": text}), true)
    }

    fn thinking(&mut self, item: usize, text: &str) -> StreamStep {
        if text.is_empty() {
            return StreamStep::Nothing;
        }
        // Counted even when excluded: it is generated, and billed, all the same.
        self.generated_bytes += text.len();
        if self.exclude_reasoning {
            return StreamStep::Nothing;
        }
        self.delta(
            json!({"reasoning": text, "reasoning_details": [{"type": "reasoning.text",
                "text": text, "format": REASONING_FORMAT, "index": item}]}),
            true,
        )
    }

    fn tool_arguments(&mut self, call: usize, fragment: &str) -> StreamStep {
        self.generated_bytes += fragment.len();
        self.delta(
            json!({"tool_calls": [{"index": call, "function": {"arguments": fragment}}]}),
            true,
        )
    }

    /// A chunk with one choice carrying `delta`; `content` marks generated content.
    fn delta(&mut self, delta: Value, content: bool) -> StreamStep {
        self.content_sent |= content;
        StreamStep::Frame(self.stamp.choice_frame(delta, None))
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

/// The HTTP status Anthropic documents for each error type, for errors that arrive without one
/// (the stream's `error` event).
fn error_type_status(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Maps an Anthropic error (`{"type":"error","error":{"type","message"}}`) to the client's error,
/// keeping the provider's words in `metadata.raw`. The HTTP status decides, as for every upstream;
/// the error type stands in for a status that is not an error (e.g. an error in a 200 body).
pub fn upstream_error(
    status: u16,
    body: &[u8],
    provider_name: &str,
    retry_after: Option<u64>,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let provider_message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let status = if status >= 400 {
        status
    } else {
        error_type_status(
            error
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .unwrap_or_default(),
        )
    };
    let raw = provider_message
        .clone()
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(1000)]).into_owned());
    let context_length = provider_message
        .as_deref()
        .is_some_and(is_context_length_message);
    upstream_failure(UpstreamFailure {
        status,
        provider_message,
        raw,
        context_length,
        provider_name,
        retry_after,
    })
}

#[cfg(test)]
mod tests;
