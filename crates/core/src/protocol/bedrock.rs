//! Amazon Bedrock's Converse API (`/model/{id}/converse`, and `/converse-stream` answering in
//! AWS's binary [`eventstream`] framing) as an upstream protocol: the client's OpenAI-shaped chat
//! request rewritten as a Converse request, and Bedrock's response (or its stream events)
//! rewritten as a `chat.completion` (or `chat.completion.chunk`s) in OpenRouter's shape.
//!
//! Pure functions over bytes and JSON; signing (SigV4, or a Bedrock API key as a bearer token) and
//! sending are the server's job. The model is named in the [`path`], percent-encoded (ids may be
//! ARNs, and carry `:` version suffixes); cross-region inference profiles (`us.`, `eu.`, `apac.`,
//! `global.`) are ids like any other.
//!
//! Requests. System and developer messages become `system` blocks; consecutive turns of one role
//! are merged (Bedrock wants user and assistant to alternate), so tool results, which are
//! `toolResult` blocks of a user turn, share one turn. Images must be base64 data URLs: Bedrock
//! cannot fetch URLs, so an http(s) image is a 400. Only fields Converse knows are written;
//! penalties, `seed`, `n`, `logprobs`, `user`, `metadata`, `parallel_tool_calls` and a top-level
//! `cache_control` have no counterpart and are dropped. The model family (read from the id:
//! `anthropic.` for Claude, `amazon.nova` for Nova; an ARN that does not name its model, such as
//! an application inference profile's, counts as another model) decides the rest:
//!
//! - `cache_control` on a content part, a message or a tool becomes a `cachePoint` block after it
//!   (system included), for Claude and Nova, the families with prompt caching; others drop it.
//! - `maxTokens` is always sent: the client's cap, else the endpoint's output limit the server
//!   passes (as for Anthropic and Gemini), so the output stays within what was reserved. Claude's
//!   thinking may raise it, exactly as [`super::anthropic`] does; Nova 2 at high reasoning effort
//!   rejects it, so it is then left out (the reservation must cover the model's own limit).
//! - `temperature` is clamped to Converse's 0–1 range. `top_k` goes to
//!   `additionalModelRequestFields` (`top_k`, or `inferenceConfig.topK` for Nova).
//! - Reasoning (`reasoning`, `reasoning_effort`, `include_reasoning`): for Claude,
//!   `thinking: {type: enabled, budget_tokens}` planned by the Anthropic translator, with its
//!   constraints (sampling parameters dropped, no thinking under a forced tool choice); for Nova 2,
//!   `reasoningConfig: {type: enabled, maxReasoningEffort}` (temperature and top-p dropped, as Nova
//!   requires); for other models `reasoning_effort` (`low`, `medium`, `high`). A token budget is
//!   read as an effort by its share of `maxTokens`.
//! - Tools are `toolConfig.tools[].toolSpec`; `tool_choice` `auto`/`required`/a function become
//!   `toolChoice` `auto`/`any`/`tool`. Converse has no `none`: the tools are left out instead. Bedrock
//!   rejects tool blocks in the history without a `toolConfig`, so when there are some and no tool
//!   is sent, an inert placeholder tool ([`PLACEHOLDER_TOOL`]) is declared.
//! - `response_format` (`json_schema`, `json_object`): Converse has no JSON mode common to every
//!   model (its `outputConfig.textFormat` is taken by some models only), so the schema becomes the
//!   input schema of a tool ([`JSON_TOOL`]) the model is forced to call (`toolChoice: any` when the
//!   client's own tools are offered too). On the way back that call's input is the message's
//!   content and the answer finishes as `stop` (streamed too: its input deltas are content deltas).
//! - Tool results are `text`, or `json` when they are a JSON object and the model is Claude or
//!   Nova, which also take the result's `status` (always `success`: OpenAI has no failed result);
//!   the other families are documented with text results only.
//! - Tool call ids are kept, but for characters Bedrock rejects (it takes `[a-zA-Z0-9_-]{1,64}`),
//!   which become `_`, alike in calls and results.
//!
//! Responses. Reasoning (`reasoningContent`) is returned as `reasoning` and `reasoning_details` in
//! OpenRouter's `anthropic-claude-v1` format (`reasoning.text` with its signature,
//! `reasoning.encrypted` for redacted reasoning): Converse's reasoning blocks are Claude's thinking
//! blocks, whose signatures Anthropic's API, Bedrock and Vertex all accept, so details pass between
//! the two protocols. They are passed back to Claude only (first in their assistant turn, as Claude
//! wants); unsigned reasoning of other models is never sent back. Bedrock sends no response id.
//!
//! Usage: Bedrock's `inputTokens` counts only the prompt tokens neither read from nor written to
//! the cache (AWS's prompt-caching guide: total input = `inputTokens` + `cacheReadInputTokens` +
//! `cacheWriteInputTokens`; `totalTokens` counts all three), as Anthropic's `input_tokens` does.
//! Our `prompt_tokens` is their sum, `cached_tokens` the reads and `cache_write_tokens` the writes,
//! each priced once by [`crate::pricing::cost`]. `completion_tokens` is `outputTokens`, reasoning
//! included (Converse does not count it apart, so `reasoning_tokens` stays 0).
//!
//! Errors. Bedrock names the error's type in the `x-amzn-ErrorType` header (e.g.
//! `ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/`) and puts
//! `{"message": ...}` in the body; streams send exceptions as event-stream messages whose
//! `:exception-type` is the same name in lower camel case. [`upstream_error`] maps both.

use super::anthropic;
use super::openai::invalid_upstream_response;
use super::{
    finish_reason, is_context_length_message, upstream_failure, ChunkStamp, Outcome, Served,
    UpstreamFailure,
};
use crate::chat::ChatRequest;
use crate::error::ApiError;
use crate::eventstream;
use crate::pricing::{Charge, Usage};
use serde_json::{json, Map, Value};

pub use super::StreamStep;

/// `format` of the `reasoning_details` we produce, and the only one we pass back (see the module
/// docs).
const REASONING_FORMAT: &str = "anthropic-claude-v1";

/// The tool a `response_format` becomes (see the module docs).
pub const JSON_TOOL: &str = "json_response";

/// The tool declared when the history holds tool blocks but no tool is offered.
pub const PLACEHOLDER_TOOL: &str = "no_tool_available";

/// The header that names the error type of a failed Converse call.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// The model families whose Converse requests differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Anthropic's Claude (`anthropic.claude-*`, or an inference profile of it).
    Claude,
    /// Amazon Nova 2 (`amazon.nova-2-*`), which reasons by effort.
    Nova2,
    /// Amazon Nova (first generation).
    Nova,
    Other,
}

impl Family {
    fn of(upstream_model: &str) -> Family {
        let model = upstream_model.to_ascii_lowercase();
        if model.contains("anthropic.") {
            Family::Claude
        } else if model.contains("amazon.nova-2") {
            Family::Nova2
        } else if model.contains("amazon.nova") {
            Family::Nova
        } else {
            Family::Other
        }
    }

    /// Whether the family has prompt caching (`cachePoint` blocks are rejected by the others).
    fn caches(self) -> bool {
        self != Family::Other
    }

    /// Whether `toolResult.status` is accepted (Bedrock documents it for Claude and Nova only).
    fn takes_tool_status(self) -> bool {
        self != Family::Other
    }

    fn is_nova(self) -> bool {
        matches!(self, Family::Nova | Family::Nova2)
    }
}

/// `text` percent-encoded for one path segment: everything but RFC 3986's unreserved characters.
pub(crate) fn encode_path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path, appended to the regional runtime URL (`https://bedrock-runtime.{region}.amazonaws.com`),
/// for `upstream_model`: a model id, an inference profile id or an ARN, percent-encoded.
pub fn path(upstream_model: &str, stream: bool) -> String {
    let model = encode_path_segment(upstream_model);
    if stream {
        format!("/model/{model}/converse-stream")
    } else {
        format!("/model/{model}/converse")
    }
}

/// The upstream request body. `default_max_tokens` is sent as `maxTokens` when the client set no
/// output cap (see the module docs); it is also the ceiling when Claude's thinking needs more room.
pub fn request_body(
    req: &ChatRequest,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<Vec<u8>, ApiError> {
    let family = Family::of(upstream_model);
    let src = req.body();
    let messages = src
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let converted = convert_messages(messages, family)?;

    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(converted.turns));
    if !converted.system.is_empty() {
        body.insert("system".into(), Value::Array(converted.system));
    }

    let (tools, tool_choice) = tool_config(src, family, converted.tool_blocks)?;
    let forced_tool = tool_choice
        .as_ref()
        .is_some_and(|c| c.get("any").is_some() || c.get("tool").is_some());
    if !tools.is_empty() {
        let mut config = Map::new();
        config.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tool_choice {
            config.insert("toolChoice".into(), choice);
        }
        body.insert("toolConfig".into(), Value::Object(config));
    }

    let mut max_tokens = Some(req.max_output().unwrap_or(default_max_tokens));
    let mut temperature = src
        .get("temperature")
        .and_then(Value::as_f64)
        .map(|t| t.clamp(0.0, 1.0));
    let mut top_p = src.get("top_p").and_then(Value::as_f64);
    let mut top_k = src.get("top_k").and_then(Value::as_u64);
    let mut additional = Map::new();
    match family {
        Family::Claude => {
            let planned = anthropic::reasoning_ask(src)
                .filter(|_| !forced_tool)
                .and_then(|ask| {
                    let cap = max_tokens.unwrap_or(default_max_tokens);
                    anthropic::plan_thinking(ask, cap, default_max_tokens)
                });
            if let Some((budget, max)) = planned {
                additional.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
                max_tokens = Some(max);
                // Claude rejects these while thinking (see the Anthropic translator).
                temperature = temperature.filter(|&t| t == 1.0);
                top_p = top_p.filter(|&p| p >= anthropic::MIN_THINKING_TOP_P);
                top_k = None;
            }
            // Recent Claude models reject `temperature` and `top_p` together; the temperature is
            // kept.
            if temperature.is_some() {
                top_p = None;
            }
        }
        Family::Nova2 => {
            if let Some(effort) = effort_level(src, max_tokens.unwrap_or(default_max_tokens)) {
                additional.insert(
                    "reasoningConfig".into(),
                    json!({"type": "enabled", "maxReasoningEffort": effort}),
                );
                // Nova 2 rejects sampling parameters while reasoning, and an output cap at high
                // effort.
                temperature = None;
                top_p = None;
                top_k = None;
                if effort == "high" {
                    max_tokens = None;
                }
            }
        }
        Family::Nova => {}
        Family::Other => {
            if let Some(effort) = effort_level(src, max_tokens.unwrap_or(default_max_tokens)) {
                additional.insert("reasoning_effort".into(), json!(effort));
            }
        }
    }
    if let Some(k) = top_k {
        if family.is_nova() {
            additional.insert("inferenceConfig".into(), json!({"topK": k}));
        } else {
            additional.insert("top_k".into(), json!(k));
        }
    }

    let mut inference = Map::new();
    if let Some(max) = max_tokens {
        inference.insert("maxTokens".into(), json!(max));
    }
    if let Some(t) = temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = top_p {
        inference.insert("topP".into(), json!(p));
    }
    let stop: Vec<&str> = match src.get("stop") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let stop: Vec<&str> = stop.into_iter().filter(|s| !s.is_empty()).collect();
    if !stop.is_empty() {
        inference.insert("stopSequences".into(), json!(stop));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if !additional.is_empty() {
        body.insert(
            "additionalModelRequestFields".into(),
            Value::Object(additional),
        );
    }
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// The reasoning effort asked for, as `low`, `medium` or `high`; `None` when reasoning was not
/// asked for or was turned off. An effort wins over a token budget, which is read by its share of
/// `max_tokens`.
fn effort_level(src: &Map<String, Value>, max_tokens: u64) -> Option<&'static str> {
    let reasoning = src.get("reasoning").filter(|r| r.is_object());
    let field = |name: &str| reasoning.and_then(|r| r.get(name)).filter(|v| !v.is_null());
    let effort = field("effort")
        .or_else(|| src.get("reasoning_effort"))
        .and_then(Value::as_str);
    if field("enabled").and_then(Value::as_bool) == Some(false) || effort == Some("none") {
        return None;
    }
    if let Some(effort) = effort {
        return Some(match effort {
            "minimal" | "low" => "low",
            "high" | "xhigh" | "max" => "high",
            _ => "medium",
        });
    }
    if let Some(tokens) = field("max_tokens").and_then(Value::as_u64) {
        let share = tokens as f64 / max_tokens.max(1) as f64;
        return Some(if share < 0.35 {
            "low"
        } else if share < 0.65 {
            "medium"
        } else {
            "high"
        });
    }
    let enabled = field("enabled").and_then(Value::as_bool) == Some(true)
        || src.get("include_reasoning").and_then(Value::as_bool) == Some(true);
    enabled.then_some("medium")
}

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

fn has_cache_control(item: &Value) -> bool {
    item.get("cache_control").is_some_and(Value::is_object)
}

/// Whether `text` is empty or only whitespace: Bedrock rejects such text blocks.
fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// A tool call id as Bedrock takes it (`[a-zA-Z0-9_-]{1,64}`); the same id always maps alike.
fn tool_use_id(id: &str) -> String {
    let mut out: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// The converted conversation.
struct Conversation {
    system: Vec<Value>,
    turns: Vec<Value>,
    /// Whether the history holds `toolUse` or `toolResult` blocks (Bedrock then wants a
    /// `toolConfig`).
    tool_blocks: bool,
}

fn convert_messages(messages: &[Value], family: Family) -> Result<Conversation, ApiError> {
    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut tool_blocks = false;
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        let content = &message["content"];
        let (role, mut blocks) = match role {
            "system" | "developer" => {
                let mut blocks = content_blocks(i, content, PartsAllowed::Text, family)?;
                if family.caches() && has_cache_control(message) && !blocks.is_empty() {
                    blocks.push(cache_point());
                }
                system.extend(blocks);
                continue;
            }
            "user" => ("user", content_blocks(i, content, PartsAllowed::All, family)?),
            "assistant" => ("assistant", assistant_blocks(i, message, family)?),
            "tool" => ("user", vec![tool_result(i, message, family)?]),
            _ => {
                return Err(ApiError::invalid(format!(
                    "`messages[{i}]`: the role `{role}` is not supported by this provider; use `tool` messages"
                )))
            }
        };
        if family.caches() && has_cache_control(message) && !blocks.is_empty() {
            blocks.push(cache_point());
        }
        if blocks.is_empty() {
            continue;
        }
        tool_blocks |= blocks
            .iter()
            .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some());
        match turns.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok(Conversation {
        system,
        turns,
        tool_blocks,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum PartsAllowed {
    /// System prompts: text only.
    Text,
    All,
}

/// Blocks of a string or an array of content parts; blank text is skipped (Bedrock rejects it),
/// and a part's `cache_control` becomes a `cachePoint` after it.
fn content_blocks(
    i: usize,
    content: &Value,
    allowed: PartsAllowed,
    family: Family,
) -> Result<Vec<Value>, ApiError> {
    let parts = match content {
        Value::String(s) if blank(s) => return Ok(Vec::new()),
        Value::String(s) => return Ok(vec![json!({"text": s})]),
        Value::Array(parts) => parts,
        _ => return Ok(Vec::new()),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        let kind = part["type"].as_str().unwrap_or_default();
        let block = match (kind, allowed) {
            ("text", _) => match part["text"].as_str() {
                Some(text) if blank(text) => continue,
                Some(text) => json!({"text": text}),
                None => return Err(ApiError::invalid(format!("`{at}.text` must be a string"))),
            },
            ("image_url", PartsAllowed::All) => {
                let url = part["image_url"]
                    .get("url")
                    .unwrap_or(&part["image_url"])
                    .as_str()
                    .unwrap_or_default();
                image_block(&format!("{at}.image_url.url"), url)?
            }
            ("file", PartsAllowed::All) => file_block(&at, &part["file"], i, j)?,
            _ => {
                return Err(ApiError::invalid(format!(
                    "`{at}`: content parts of type `{kind}` are not supported here by this provider"
                )))
            }
        };
        blocks.push(block);
        if family.caches() && has_cache_control(part) {
            blocks.push(cache_point());
        }
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

/// An image from a base64 data URL (`at` names the field in errors). Bedrock cannot fetch URLs.
fn image_block(at: &str, url: &str) -> Result<Value, ApiError> {
    let Some((media_type, data)) = parse_data_url(url) else {
        return Err(ApiError::invalid(if is_http_url(url) {
            format!(
                "`{at}`: Amazon Bedrock cannot fetch images by URL; send the image as a base64 data URL (data:image/png;base64,...)"
            )
        } else {
            format!("`{at}` must be a base64 data URL (data:image/png;base64,...)")
        }));
    };
    let format = match media_type.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(ApiError::invalid(format!(
                "`{at}`: images of type `{other}` are not supported by this provider (png, jpeg, gif and webp are)"
            )))
        }
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// A `file` part: documents and images, from base64 data URLs.
fn file_block(at: &str, file: &Value, i: usize, j: usize) -> Result<Value, ApiError> {
    let Some(data) = file.get("file_data").and_then(Value::as_str) else {
        return Err(ApiError::invalid(format!(
            "`{at}.file.file_data` is required: this provider does not take `file_id`"
        )));
    };
    let Some((media_type, encoded)) = parse_data_url(data) else {
        return Err(ApiError::invalid(format!(
            "`{at}.file.file_data` must be a base64 data URL: Amazon Bedrock cannot fetch files by URL"
        )));
    };
    let media_type = media_type.to_ascii_lowercase();
    if media_type.starts_with("image/") {
        return image_block(&format!("{at}.file.file_data"), data);
    }
    let format = match media_type.as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        other => {
            return Err(ApiError::invalid(format!(
                "`{at}.file`: files of type `{other}` are not supported by this provider"
            )))
        }
    };
    let name = file
        .get("filename")
        .and_then(Value::as_str)
        .map(document_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("document-{i}-{j}"));
    Ok(json!({"document": {"format": format, "name": name, "source": {"bytes": encoded}}}))
}

/// A file name as Bedrock takes a document's name: without its extension, in letters, digits,
/// single spaces, hyphens, parentheses and square brackets (so `Q3 report.v2.pdf` is
/// `Q3 report-v2`).
fn document_name(filename: &str) -> String {
    let stem = filename.rsplit_once('.').map_or(filename, |(stem, _)| stem);
    let mut out = String::new();
    for c in stem.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
            c
        } else if c.is_whitespace() {
            ' '
        } else {
            '-'
        };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    out.trim_end().chars().take(200).collect()
}

/// An assistant turn: reasoning passed back first (Claude only), then text, then tool calls.
fn assistant_blocks(i: usize, message: &Value, family: Family) -> Result<Vec<Value>, ApiError> {
    let mut blocks = Vec::new();
    if family == Family::Claude {
        for thinking in anthropic::thinking_blocks(message.get("reasoning_details")) {
            let reasoning = match thinking["type"].as_str() {
                Some("thinking") => json!({"reasoningText": {"text": thinking["thinking"],
                    "signature": thinking["signature"]}}),
                Some("redacted_thinking") => json!({"redactedContent": thinking["data"]}),
                _ => continue,
            };
            blocks.push(json!({"reasoningContent": reasoning}));
        }
    }
    // Text parts only: an assistant turn cannot carry images, and refusal parts are not prompts.
    match &message["content"] {
        Value::String(s) if !blank(s) => blocks.push(json!({"text": s})),
        Value::Array(parts) => {
            for part in parts {
                if let Some(text) = part["text"].as_str().filter(|t| !blank(t)) {
                    blocks.push(json!({"text": text}));
                    if family.caches() && has_cache_control(part) {
                        blocks.push(cache_point());
                    }
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
        blocks
            .push(json!({"toolUse": {"toolUseId": tool_use_id(id), "name": name, "input": input}}));
    }
    Ok(blocks)
}

/// A tool message as a `toolResult` block: a JSON object result as `json` for Claude and Nova
/// (other models are documented with text results only), other text as `text`, images and
/// documents as such.
fn tool_result(i: usize, message: &Value, family: Family) -> Result<Value, ApiError> {
    let id = message["tool_call_id"].as_str().unwrap_or_default();
    let text_or_json = |text: &str| match serde_json::from_str::<Value>(text) {
        Ok(object @ Value::Object(_)) if family != Family::Other => json!({"json": object}),
        _ => json!({"text": text}),
    };
    let content = match &message["content"] {
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![text_or_json(s)],
        content => {
            // Cache points cannot sit inside a tool result; the message's own `cache_control`
            // puts one after it.
            let blocks = content_blocks(i, content, PartsAllowed::All, Family::Other)?;
            match blocks.as_slice() {
                [only] if only.get("text").is_some() => {
                    vec![text_or_json(only["text"].as_str().unwrap_or_default())]
                }
                _ => blocks,
            }
        }
    };
    let mut result = json!({"toolUseId": tool_use_id(id), "content": content});
    if family.takes_tool_status() {
        result["status"] = json!("success");
    }
    Ok(json!({"toolResult": result}))
}

/// The client's `tool_choice`.
#[derive(Debug, Clone, PartialEq)]
enum Choice {
    Unset,
    Auto,
    Required,
    None,
    Function(String),
}

fn read_choice(src: &Map<String, Value>) -> Choice {
    match src.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Choice::Auto,
            "none" => Choice::None,
            "required" => Choice::Required,
            _ => Choice::Unset,
        },
        Some(Value::Object(c)) if c.get("type").and_then(Value::as_str) == Some("function") => c
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map_or(Choice::Unset, |name| Choice::Function(name.to_owned())),
        _ => Choice::Unset,
    }
}

/// The `response_format` tool, when the client asked for JSON.
fn json_tool(src: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let format = src.get("response_format");
    let (schema, description) = match format.and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_schema") => {
            let spec = &src["response_format"]["json_schema"];
            let Some(schema) = spec.get("schema").filter(|s| s.is_object()) else {
                return Err(ApiError::invalid(
                    "`response_format.json_schema.schema` must be a JSON Schema object",
                ));
            };
            let description = spec["description"]
                .as_str()
                .filter(|d| !blank(d))
                .unwrap_or("Respond by calling this tool with the answer as its input, which must follow the schema.");
            (schema.clone(), description)
        }
        Some("json_object") => (
            json!({"type": "object"}),
            "Respond by calling this tool with the answer, a JSON object, as its input.",
        ),
        // `text` is the default; other formats (`grammar`, `python`) have no counterpart.
        _ => return Ok(None),
    };
    Ok(Some(
        json!({"toolSpec": {"name": JSON_TOOL, "description": description,
        "inputSchema": {"json": schema}}}),
    ))
}

/// Whether the request asks for JSON through [`JSON_TOOL`].
fn wants_json(req: &ChatRequest) -> bool {
    matches!(
        req.body()
            .get("response_format")
            .and_then(|f| f.get("type"))
            .and_then(Value::as_str),
        Some("json_schema" | "json_object")
    )
}

/// Function tools as `toolSpec`s; OpenRouter's server tools are not forwarded.
fn convert_tools(src: &Map<String, Value>, family: Family) -> Result<Vec<Value>, ApiError> {
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
        if name == JSON_TOOL && src.get("response_format").is_some() {
            return Err(ApiError::invalid(format!(
                "`tools[{i}].function.name`: `{JSON_TOOL}` is reserved with `response_format` on this provider"
            )));
        }
        let mut spec = Map::new();
        spec.insert("name".into(), json!(name));
        if let Some(description) = function["description"].as_str().filter(|d| !blank(d)) {
            spec.insert("description".into(), json!(description));
        }
        let schema = function
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        spec.insert("inputSchema".into(), json!({"json": schema}));
        tools.push(json!({"toolSpec": spec}));
        if family.caches() && has_cache_control(tool) {
            tools.push(cache_point());
        }
    }
    Ok(tools)
}

/// `toolConfig`'s tools and `toolChoice` (see the module docs).
fn tool_config(
    src: &Map<String, Value>,
    family: Family,
    history_has_tool_blocks: bool,
) -> Result<(Vec<Value>, Option<Value>), ApiError> {
    let choice = read_choice(src);
    let mut tools = convert_tools(src, family)?;
    if choice == Choice::None {
        tools.clear();
    }
    let offered = tools.iter().any(|t| t.get("toolSpec").is_some());
    let tool_choice = if let Some(json_tool) = json_tool(src)? {
        tools.push(json_tool);
        Some(match choice {
            Choice::Function(name) if offered => json!({"tool": {"name": name}}),
            _ if offered => json!({"any": {}}),
            _ => json!({"tool": {"name": JSON_TOOL}}),
        })
    } else if offered {
        match choice {
            Choice::Auto => Some(json!({"auto": {}})),
            Choice::Required => Some(json!({"any": {}})),
            Choice::Function(name) => Some(json!({"tool": {"name": name}})),
            Choice::Unset | Choice::None => None,
        }
    } else {
        None
    };
    if tools.is_empty() && history_has_tool_blocks {
        tools.push(json!({"toolSpec": {"name": PLACEHOLDER_TOOL,
            "description": "No tool is available in this turn. Do not call this tool.",
            "inputSchema": {"json": {"type": "object", "properties": {}}}}}));
    }
    Ok((tools, tool_choice))
}

/// The normalised finish for Bedrock's `native` stop reason: a stop for tool use is `stop` when
/// the only call was the [`JSON_TOOL`] answer.
fn finish_for(native: &str, client_calls: usize, json_answer: bool) -> &'static str {
    match finish_reason(native) {
        "tool_calls" if client_calls == 0 && json_answer => "stop",
        normalised => normalised,
    }
}

/// Bedrock's `usage` in our convention (see the module docs).
fn parse_usage(usage: &Value) -> Option<Usage> {
    let usage = usage.as_object()?;
    let n = |name: &str| usage.get(name).and_then(Value::as_u64).unwrap_or(0);
    let cache_read = n("cacheReadInputTokens");
    let cache_write = n("cacheWriteInputTokens");
    Some(Usage {
        prompt_tokens: n("inputTokens") + cache_read + cache_write,
        completion_tokens: n("outputTokens"),
        cached_tokens: cache_read,
        cache_write_tokens: cache_write,
        ..Usage::default()
    })
}

/// Reads a non-streaming Converse response as a `chat.completion` body. Its choice carries the
/// normalised `finish_reason` and Bedrock's own `stopReason` as `native_finish_reason`, which
/// [`super::openai::render_response`] keeps.
pub fn parse_response(
    bytes: &[u8],
    req: &ChatRequest,
) -> Result<(Map<String, Value>, Outcome), ApiError> {
    let Ok(Value::Object(response)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid_upstream_response());
    };
    let Some(content) = response
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
    else {
        return Err(invalid_upstream_response());
    };
    let json_mode = wants_json(req);
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut details = Vec::new();
    let mut tool_calls = Vec::new();
    let mut json_answer = false;
    for block in content {
        if let Some(t) = block.get("text").and_then(Value::as_str) {
            text.get_or_insert_with(String::new).push_str(t);
        } else if let Some(call) = block.get("toolUse").filter(|c| c.is_object()) {
            let input = call
                .get("input")
                .filter(|i| !i.is_null())
                .cloned()
                .unwrap_or_else(|| json!({}));
            if json_mode && call["name"] == JSON_TOOL {
                json_answer = true;
                text.get_or_insert_with(String::new)
                    .push_str(&input.to_string());
                continue;
            }
            tool_calls.push(json!({
                "id": call["toolUseId"],
                "type": "function",
                "function": {"name": call["name"], "arguments": input.to_string()},
            }));
        } else if let Some(content) = block.get("reasoningContent") {
            if let Some(reasoning_text) = content.get("reasoningText") {
                let thought = reasoning_text["text"].as_str().unwrap_or_default();
                reasoning.get_or_insert_with(String::new).push_str(thought);
                let mut item = json!({"type": "reasoning.text", "text": thought,
                    "format": REASONING_FORMAT, "index": details.len()});
                if let Some(signature) = reasoning_text["signature"].as_str() {
                    item["signature"] = json!(signature);
                }
                details.push(item);
            } else if let Some(data) = content.get("redactedContent").and_then(Value::as_str) {
                details.push(json!({"type": "reasoning.encrypted", "data": data,
                    "format": REASONING_FORMAT, "index": details.len()}));
            }
        }
        // Images, citations, guard content and anything newer carry nothing the chat shape holds.
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert("content".into(), json!(text));
    if !anthropic::excludes_reasoning(req) && !details.is_empty() {
        message.insert("reasoning".into(), json!(reasoning));
        message.insert("reasoning_details".into(), Value::Array(details));
    }
    let client_calls = tool_calls.len();
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }

    let native = response.get("stopReason").and_then(Value::as_str);
    let finish = native.map(|n| finish_for(n, client_calls, json_answer));
    let outcome = Outcome {
        usage: response.get("usage").and_then(parse_usage),
        finish_reason: finish.map(str::to_owned),
        native_finish_reason: native.map(str::to_owned),
        upstream_id: None,
    };
    let mut body = Map::new();
    body.insert("id".into(), Value::Null);
    body.insert("object".into(), json!("chat.completion"));
    body.insert("model".into(), Value::Null);
    body.insert(
        "choices".into(),
        json!([{"index": 0, "message": message, "finish_reason": finish,
            "native_finish_reason": native, "logprobs": null}]),
    );
    Ok((body, outcome))
}

/// What a content block of the stream is, by Bedrock's `contentBlockIndex`.
#[derive(Debug, Clone, Copy)]
enum Block {
    Text,
    /// `item`: its index in `reasoning_details`.
    Reasoning {
        item: usize,
    },
    /// `call`: its index among the tool calls (what OpenAI's `tool_calls[].index` counts).
    ToolUse {
        call: usize,
        arguments_sent: bool,
    },
    /// The [`JSON_TOOL`] call, whose input is the answer's content.
    JsonAnswer {
        sent: bool,
    },
    Other,
}

/// Turns ConverseStream's events into `chat.completion.chunk`s, remembering what the final chunk
/// needs. Fed each decoded [`eventstream::Message`].
///
/// `messageStop` carries the stop reason, and its finish chunk is sent at once (as Anthropic's
/// `message_delta` is); `metadata`, the last event, carries the usage and ends the stream
/// ([`StreamStep::Done`]). A stream cut after `messageStop` is whole all the same: the relay checks
/// [`Outcome::finish_reason`] and estimates the usage that never came.
#[derive(Debug)]
pub struct StreamTranslator {
    stamp: ChunkStamp,
    exclude_reasoning: bool,
    json_mode: bool,
    blocks: Vec<(u64, Block)>,
    tool_calls: usize,
    reasoning_items: usize,
    json_answer: bool,
    outcome: Outcome,
    generated_bytes: usize,
    content_sent: bool,
}

impl StreamTranslator {
    pub fn new(served: &Served<'_>, req: &ChatRequest) -> StreamTranslator {
        StreamTranslator {
            stamp: ChunkStamp::new(served),
            exclude_reasoning: anthropic::excludes_reasoning(req),
            json_mode: wants_json(req),
            blocks: Vec::new(),
            tool_calls: 0,
            reasoning_items: 0,
            json_answer: false,
            outcome: Outcome::default(),
            generated_bytes: 0,
            content_sent: false,
        }
    }

    /// Handles one decoded event-stream message.
    pub fn on_message(&mut self, msg: &eventstream::Message) -> Result<StreamStep, ApiError> {
        match msg.message_type().unwrap_or("event") {
            "event" => {}
            "exception" => {
                let kind = msg.exception_type().unwrap_or_default();
                return Err(upstream_error(
                    exception_status(kind).unwrap_or(500),
                    Some(kind),
                    msg.payload(),
                    self.stamp.provider_name(),
                    None,
                ));
            }
            "error" => {
                let code = msg.header_str(":error-code").unwrap_or_default();
                let message = msg.header_str(":error-message").unwrap_or_default();
                let body = json!({"message": message}).to_string();
                return Err(upstream_error(
                    exception_status(code).unwrap_or(500),
                    Some(code),
                    body.as_bytes(),
                    self.stamp.provider_name(),
                    None,
                ));
            }
            _ => return Ok(StreamStep::Nothing),
        }
        let event_type = msg.event_type().unwrap_or_default();
        if !matches!(
            event_type,
            "messageStart"
                | "contentBlockStart"
                | "contentBlockDelta"
                | "contentBlockStop"
                | "messageStop"
                | "metadata"
        ) {
            // Event types Bedrock may add.
            return Ok(StreamStep::Nothing);
        }
        let Ok(Value::Object(event)) = serde_json::from_slice::<Value>(msg.payload()) else {
            return Err(invalid_upstream_response());
        };
        let index = event
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(match event_type {
            // Peers forget the role; SDKs want it on the first chunk.
            "messageStart" => self.delta(json!({"role": "assistant", "content": ""}), false),
            "contentBlockStart" => self.block_start(index, &event["start"]),
            "contentBlockDelta" => self.block_delta(index, &event["delta"]),
            "contentBlockStop" => self.block_stop(index),
            "messageStop" => {
                let native = event["stopReason"].as_str().unwrap_or("end_turn");
                let normalised = finish_for(native, self.tool_calls, self.json_answer);
                self.outcome.native_finish_reason = Some(native.to_owned());
                self.outcome.finish_reason = Some(normalised.to_owned());
                StreamStep::Frame(
                    self.stamp
                        .choice_frame(json!({}), Some((normalised, native))),
                )
            }
            _ => {
                if let Some(usage) = event.get("usage").and_then(parse_usage) {
                    self.outcome.usage = Some(usage);
                }
                StreamStep::Done
            }
        })
    }

    fn block(&self, index: u64) -> Option<Block> {
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn set_block(&mut self, index: u64, block: Block) {
        match self.blocks.iter_mut().find(|(i, _)| *i == index) {
            Some(slot) => slot.1 = block,
            None => self.blocks.push((index, block)),
        }
    }

    /// Only tool use announces its block; text and reasoning blocks begin with their first delta.
    fn block_start(&mut self, index: u64, start: &Value) -> StreamStep {
        let Some(tool) = start.get("toolUse").filter(|t| t.is_object()) else {
            self.set_block(index, Block::Other);
            return StreamStep::Nothing;
        };
        let name = tool["name"].as_str().unwrap_or_default();
        if self.json_mode && name == JSON_TOOL {
            self.json_answer = true;
            self.set_block(index, Block::JsonAnswer { sent: false });
            return StreamStep::Nothing;
        }
        let call = self.tool_calls;
        self.tool_calls += 1;
        self.set_block(
            index,
            Block::ToolUse {
                call,
                arguments_sent: false,
            },
        );
        self.generated_bytes += name.len();
        self.delta(
            json!({"tool_calls": [{"index": call, "id": tool["toolUseId"], "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            true,
        )
    }

    fn block_delta(&mut self, index: u64, delta: &Value) -> StreamStep {
        if let Some(text) = delta.get("text").and_then(Value::as_str) {
            if self.block(index).is_none() {
                self.set_block(index, Block::Text);
            }
            return match self.block(index) {
                Some(Block::Text) => self.text(text),
                _ => StreamStep::Nothing,
            };
        }
        if let Some(reasoning) = delta.get("reasoningContent").filter(|r| r.is_object()) {
            let item = match self.block(index) {
                Some(Block::Reasoning { item }) => item,
                None => {
                    let item = self.reasoning_items;
                    self.reasoning_items += 1;
                    self.set_block(index, Block::Reasoning { item });
                    item
                }
                Some(_) => return StreamStep::Nothing,
            };
            return self.reasoning(item, reasoning);
        }
        if let Some(input) = delta
            .get("toolUse")
            .and_then(|t| t.get("input"))
            .and_then(Value::as_str)
        {
            if input.is_empty() {
                return StreamStep::Nothing;
            }
            return match self.block(index) {
                Some(Block::ToolUse { call, .. }) => {
                    self.set_block(
                        index,
                        Block::ToolUse {
                            call,
                            arguments_sent: true,
                        },
                    );
                    self.tool_arguments(call, input)
                }
                Some(Block::JsonAnswer { .. }) => {
                    self.set_block(index, Block::JsonAnswer { sent: true });
                    self.text(input)
                }
                _ => StreamStep::Nothing,
            };
        }
        // Citations and deltas of blocks we do not relay.
        StreamStep::Nothing
    }

    /// A tool without input streams no JSON at all; its arguments (or the JSON answer) must still
    /// parse.
    fn block_stop(&mut self, index: u64) -> StreamStep {
        match self.block(index) {
            Some(Block::ToolUse {
                call,
                arguments_sent: false,
            }) => self.tool_arguments(call, "{}"),
            Some(Block::JsonAnswer { sent: false }) => self.text("{}"),
            _ => StreamStep::Nothing,
        }
    }

    fn text(&mut self, text: &str) -> StreamStep {
        if text.is_empty() {
            return StreamStep::Nothing;
        }
        self.generated_bytes += text.len();
        self.delta(json!({"content": text}), true)
    }

    fn reasoning(&mut self, item: usize, reasoning: &Value) -> StreamStep {
        if let Some(text) = reasoning.get("text").and_then(Value::as_str) {
            if text.is_empty() {
                return StreamStep::Nothing;
            }
            // Counted even when excluded: it is generated, and billed, all the same.
            self.generated_bytes += text.len();
            if self.exclude_reasoning {
                return StreamStep::Nothing;
            }
            return self.delta(
                json!({"reasoning": text, "reasoning_details": [{"type": "reasoning.text",
                    "text": text, "format": REASONING_FORMAT, "index": item}]}),
                true,
            );
        }
        if self.exclude_reasoning {
            return StreamStep::Nothing;
        }
        if let Some(signature) = reasoning
            .get("signature")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            return self.delta(
                json!({"reasoning_details": [{"type": "reasoning.text", "signature": signature,
                    "format": REASONING_FORMAT, "index": item}]}),
                false,
            );
        }
        if let Some(data) = reasoning
            .get("redactedContent")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            return self.delta(
                json!({"reasoning_details": [{"type": "reasoning.encrypted", "data": data,
                    "format": REASONING_FORMAT, "index": item}]}),
                true,
            );
        }
        StreamStep::Nothing
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

/// The HTTP status AWS documents for an error type, in either spelling (`ThrottlingException`
/// in headers and bodies, `throttlingException` in streams); `None` for a type we do not know.
fn exception_status(error_type: &str) -> Option<u16> {
    let lower = error_type.to_ascii_lowercase();
    let name = lower.strip_suffix("exception").unwrap_or(&lower);
    Some(match name {
        // Validation, and requests AWS could not read.
        "validation" | "serialization" | "malformedhttprequest" => 400,
        // Credentials and signatures: the provider's configuration, not the request.
        "unrecognizedclient"
        | "invalidsignature"
        | "incompletesignature"
        | "expiredtoken"
        | "missingauthenticationtoken"
        | "invalidclienttokenid"
        | "notauthorized"
        | "requestexpired" => 401,
        "accessdenied" | "optinrequired" => 403,
        "resourcenotfound" => 404,
        "modeltimeout" => 408,
        "conflict" => 409,
        "requestentitytoolarge" => 413,
        "modelerror" | "modelstreamerror" => 424,
        // Bedrock's quota is its rate limit (its documented 400 notwithstanding), and a model not
        // ready yet is one to retry later.
        "throttling" | "toomanyrequests" | "servicequotaexceeded" | "modelnotready" => 429,
        "internalserver" | "internalfailure" => 500,
        "serviceunavailable" => 503,
        _ => return None,
    })
}

/// An error type as the header or body names it: `ValidationException` of
/// `ValidationException:http://internal.amazon.com/...` or `com.amazon.bedrock#ValidationException`.
fn bare_error_type(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or_default();
    name.rsplit('#').next().unwrap_or_default().trim()
}

/// Whether Bedrock's message says the prompt does not fit: its own wordings ("Input is too long
/// for requested model.", "Too many input tokens") or a model's it relays ("prompt is too long").
fn is_bedrock_context_length_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "input is too long",
        "too many input tokens",
        "input too long",
    ]
    .iter()
    .any(|needle| m.contains(needle))
        || is_context_length_message(message)
}

/// Maps a Bedrock error to the client's error, keeping the provider's words in `metadata.raw`.
/// `error_type` is the `x-amzn-ErrorType` header ([`ERROR_TYPE_HEADER`], in full: what follows a
/// `:` is dropped) or a stream's `:exception-type`; without it the body's `__type` is read. A known
/// type decides the status (so `ServiceQuotaExceededException`, sent as a 400, is a rate limit);
/// otherwise the HTTP status does, as for every upstream. `metadata.provider_code` stays the real
/// status. `ValidationException`s saying the input is too long are `context_length_exceeded`.
pub fn upstream_error(
    status: u16,
    error_type: Option<&str>,
    body: &[u8],
    provider_name: &str,
    retry_after: Option<u64>,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
    };
    let provider_message = field("message")
        .or_else(|| field("Message"))
        .map(str::to_owned);
    let error_type = error_type
        .map(bare_error_type)
        .or_else(|| field("__type").map(bare_error_type))
        .filter(|t| !t.is_empty());
    let real = (status >= 400).then_some(status);
    let treated_as = error_type
        .and_then(exception_status)
        .or(real)
        .unwrap_or(500);
    let raw = match (&provider_message, error_type) {
        (Some(message), Some(kind)) => format!("{kind}: {message}"),
        (Some(message), None) => message.clone(),
        (None, _) => String::from_utf8_lossy(&body[..body.len().min(1000)]).into_owned(),
    };
    let context_length = provider_message
        .as_deref()
        .is_some_and(is_bedrock_context_length_message);
    let mut err = upstream_failure(UpstreamFailure {
        status: treated_as,
        provider_message,
        raw,
        context_length,
        provider_name,
        retry_after,
    });
    if let (Some(real), Some(metadata)) = (real, err.metadata.as_mut()) {
        metadata.insert("provider_code".into(), json!(real));
    }
    err
}

#[cfg(test)]
mod tests;
