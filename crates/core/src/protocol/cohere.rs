//! Cohere's v2 Chat API as an upstream protocol: the client's OpenAI-shaped chat request rewritten as
//! a `POST /v2/chat` body, and Cohere's response (or its event stream) rewritten as a
//! `chat.completion` (or `chat.completion.chunk`s) in OpenRouter's shape.
//!
//! Pure functions over bytes and JSON; sending (with `Authorization: Bearer`) is the server's job.
//!
//! Requests. Messages keep their order and roles (`developer` becomes `system`); text and images go
//! as Cohere content blocks (`image_url` takes http(s) and base64 data URLs, as OpenAI's does). Only
//! fields Cohere knows are written: OpenRouter's own fields, `logprobs`, `user`, `metadata`,
//! `parallel_tool_calls` and the like are dropped. Decisions where the two APIs do not line up:
//!
//! - `tool_choice`: `required` → `REQUIRED`, `none` → `NONE`, `auto` is Cohere's default. Cohere
//!   cannot force one named function, so a named choice becomes `REQUIRED` with `tools` narrowed to
//!   that function (the model must call a tool, and only that one is offered).
//! - `strict_tools` is one switch for all tools in Cohere, so it is set only when every function tool
//!   asks for `strict: true`.
//! - `response_format`: `json_object` → `{type: json_object}`, `json_schema` →
//!   `{type: json_object, json_schema: <schema>}`.
//! - `reasoning` becomes `thinking: {type: enabled, token_budget}`: `reasoning.max_tokens` is the
//!   budget; an effort is a share of `max_tokens` (OpenRouter's ratios). Cohere counts thinking inside
//!   `max_tokens`, so the budget is kept below it (raising `max_tokens` within the endpoint's limit
//!   when it leaves no room for the answer). Effort `none` (or `enabled: false`) sends
//!   `thinking: {type: disabled}`; without any `reasoning` the model's default applies.
//! - Sampling: `top_p` → `p` and `top_k` → `k`, clamped to Cohere's ranges (0.01–0.99, 0–500);
//!   penalties are clamped to Cohere's 0–1 (OpenAI's negative values have no counterpart).
//! - An assistant turn's `reasoning` (or its `reasoning.text` details) goes back as `tool_plan` when
//!   the turn has tool calls, which is where Cohere keeps its reasoning about them; thinking of turns
//!   without tool calls is not sent back (Cohere does not need it, and it has no signature to verify).
//!
//! Responses. `thinking` blocks become `reasoning` and `reasoning_details` (`reasoning.text`, format
//! `unknown`: Cohere's thinking is plain text). The `tool_plan` of a tool-calling turn is surfaced the
//! same way when the model did not think (reasoning models plan in their thinking instead). Cohere's
//! document citations (`citations`, `citation-start`) are dropped: the chat shape has no place for
//! citations of tool outputs or documents (OpenRouter's `annotations` are URL citations).
//!
//! Usage. Cohere reports `tokens` (everything the model processed, its own prompt template included)
//! and `billed_units` (what it invoices); our prompt and completion counts are the billed units when
//! present, since endpoint prices are per billed token, and the processed tokens otherwise.
//! `cached_tokens`, when present, is the cached part of the prompt.
//!
//! Streams. Cohere's stream ends with `message-end` (finish reason and usage) and then the
//! connection closes: there is no later event, so `message-end` yields the finishing chunk and the
//! relay completes at the end of the body (a finish reason is known by then). A `message-end` with
//! `ERROR` or `TIMEOUT` is an upstream failure, reported with Cohere's error text.

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

/// Path appended to the provider's base URL (which ends in `/v2`).
pub const CHAT_PATH: &str = "/chat";

/// `format` of the `reasoning_details` we produce: Cohere's reasoning is unsigned plain text.
const REASONING_FORMAT: &str = "unknown";

/// Cohere's range for `p`.
const MIN_P: f64 = 0.01;
const MAX_P: f64 = 0.99;

/// Cohere's largest `k`.
const MAX_K: u64 = 500;

/// The upstream request body. `default_max_tokens` (the endpoint's output limit) is sent when the
/// client set no output cap, so that the reservation and the generation agree; it is also the ceiling
/// when thinking needs more room.
pub fn request_body(
    req: &ChatRequest,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<Vec<u8>, ApiError> {
    let src = req.body();
    let mut body = Map::new();
    body.insert("model".into(), json!(upstream_model));

    let messages = src
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    body.insert("messages".into(), Value::Array(convert_messages(messages)?));

    let mut tools = convert_tools(src)?;
    if !tools.is_empty() {
        let choice = convert_tool_choice(src, &mut tools)?;
        let strict = src
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|t| t["type"] == "function")
            .all(|t| t["function"]["strict"].as_bool() == Some(true));
        body.insert("tools".into(), Value::Array(tools));
        if strict {
            body.insert("strict_tools".into(), json!(true));
        }
        if let Some(choice) = choice {
            body.insert("tool_choice".into(), json!(choice));
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
                "response_format".into(),
                json!({"type": "json_object", "json_schema": schema}),
            );
        }
        Some("json_object") => {
            body.insert("response_format".into(), json!({"type": "json_object"}));
        }
        // `text` is the default; other formats (`grammar`, `python`) have no counterpart.
        _ => {}
    }

    let mut max_tokens = req.max_output().unwrap_or(default_max_tokens);
    let thinking = match reasoning_ask(src) {
        None => None,
        Some(ThinkingAsk::Disabled) => Some(json!({"type": "disabled"})),
        Some(ask) => {
            let (budget, max) = plan_thinking(ask, max_tokens, default_max_tokens);
            max_tokens = max;
            Some(json!({"type": "enabled", "token_budget": budget}))
        }
    };
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(thinking) = thinking {
        body.insert("thinking".into(), thinking);
    }

    if let Some(t) = src.get("temperature").and_then(Value::as_f64) {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(p) = src.get("top_p").and_then(Value::as_f64) {
        body.insert("p".into(), json!(p.clamp(MIN_P, MAX_P)));
    }
    if let Some(k) = src.get("top_k").and_then(Value::as_u64) {
        body.insert("k".into(), json!(k.min(MAX_K)));
    }
    if let Some(seed) = src.get("seed").filter(|s| s.is_i64() || s.is_u64()) {
        body.insert("seed".into(), seed.clone());
    }
    for penalty in ["frequency_penalty", "presence_penalty"] {
        if let Some(v) = src.get(penalty).and_then(Value::as_f64) {
            body.insert(penalty.into(), json!(v.clamp(0.0, 1.0)));
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
    if req.stream() {
        body.insert("stream".into(), json!(true));
    }
    Ok(serde_json::to_vec(&Value::Object(body)).unwrap_or_default())
}

/// How much thinking the client asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ThinkingAsk {
    /// Effort `none` or `enabled: false`: turn a reasoning model's thinking off.
    Disabled,
    /// `reasoning.max_tokens`.
    Tokens(u64),
    /// An effort, as a share of `max_tokens`.
    Share(f64),
}

/// Reads `reasoning`, `reasoning_effort` and the deprecated `include_reasoning`; `None` leaves the
/// model's default.
fn reasoning_ask(src: &Map<String, Value>) -> Option<ThinkingAsk> {
    let reasoning = src.get("reasoning").filter(|r| r.is_object());
    let field = |name: &str| reasoning.and_then(|r| r.get(name)).filter(|v| !v.is_null());
    if field("enabled").and_then(Value::as_bool) == Some(false) {
        return Some(ThinkingAsk::Disabled);
    }
    let effort = field("effort")
        .or_else(|| src.get("reasoning_effort"))
        .and_then(Value::as_str);
    if effort == Some("none") {
        return Some(ThinkingAsk::Disabled);
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

/// The thinking budget and the `max_tokens` to send with it. Cohere counts thinking inside
/// `max_tokens`, so the budget must leave room for the answer.
fn plan_thinking(ask: ThinkingAsk, max_tokens: u64, ceiling: u64) -> (u64, u64) {
    let budget = match ask {
        ThinkingAsk::Tokens(n) => n,
        ThinkingAsk::Share(share) => (max_tokens as f64 * share) as u64,
        ThinkingAsk::Disabled => 0,
    }
    .max(1);
    if budget < max_tokens {
        return (budget, max_tokens);
    }
    // The client's cap stays for the answer, on top of the budget, as far as the endpoint allows.
    let raised = budget
        .saturating_add(max_tokens)
        .min(ceiling.max(max_tokens));
    if raised > budget {
        (budget, raised)
    } else {
        (raised.saturating_sub(1).max(1), raised)
    }
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

/// The messages in Cohere's shape, in the client's order.
fn convert_messages(messages: &[Value]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or_default();
        let content = &message["content"];
        let converted = match role {
            "system" | "developer" => {
                json!({"role": "system", "content": content_value(i, content, Parts::Text)?})
            }
            "user" => json!({"role": "user", "content": content_value(i, content, Parts::Images)?}),
            "assistant" => match assistant_message(i, message)? {
                Some(m) => m,
                None => continue,
            },
            "tool" => {
                let Some(id) = message["tool_call_id"].as_str().filter(|id| !id.is_empty()) else {
                    return Err(ApiError::invalid(format!(
                        "`messages[{i}].tool_call_id` is required"
                    )));
                };
                json!({"role": "tool", "tool_call_id": id,
                    "content": content_value(i, content, Parts::Text)?})
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "`messages[{i}]`: the role `{role}` is not supported by this provider; use `tool` messages"
                )))
            }
        };
        out.push(converted);
    }
    Ok(out)
}

/// Which content parts a role may carry.
#[derive(Clone, Copy, PartialEq)]
enum Parts {
    /// System prompts and tool results: text only.
    Text,
    /// User turns: text and images.
    Images,
}

/// A message's content: a string stays a string, an array of parts becomes Cohere content blocks
/// (empty text parts are skipped).
fn content_value(i: usize, content: &Value, allowed: Parts) -> Result<Value, ApiError> {
    let parts = match content {
        Value::String(s) => return Ok(json!(s)),
        Value::Array(parts) => parts,
        _ => return Ok(json!("")),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        let kind = part["type"].as_str().unwrap_or_default();
        match (kind, allowed) {
            ("text", _) => match part["text"].as_str() {
                Some("") => {}
                Some(text) => blocks.push(json!({"type": "text", "text": text})),
                None => return Err(ApiError::invalid(format!("`{at}.text` must be a string"))),
            },
            ("image_url", Parts::Images) => {
                let image = &part["image_url"];
                let url = image
                    .get("url")
                    .unwrap_or(image)
                    .as_str()
                    .unwrap_or_default();
                let is_url = url.starts_with("https://") || url.starts_with("http://");
                let is_data = url.starts_with("data:image/") && url.contains(";base64,");
                if !is_url && !is_data {
                    return Err(ApiError::invalid(format!(
                        "`{at}.image_url.url` must be an http(s) URL or a base64 data URL"
                    )));
                }
                let mut out = json!({"url": url});
                if let Some(detail) = image["detail"]
                    .as_str()
                    .filter(|d| matches!(*d, "auto" | "low" | "high"))
                {
                    out["detail"] = json!(detail);
                }
                blocks.push(json!({"type": "image_url", "image_url": out}));
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "`{at}`: content parts of type `{kind}` are not supported here by this provider"
                )))
            }
        }
    }
    Ok(Value::Array(blocks))
}

/// An assistant turn: text, tool calls and (with tool calls) the reasoning as `tool_plan`; `None`
/// for a turn with neither text nor tool calls, which Cohere would reject.
fn assistant_message(i: usize, message: &Value) -> Result<Option<Value>, ApiError> {
    let mut out = Map::new();
    out.insert("role".into(), json!("assistant"));
    // Text parts only: refusal parts are not prompts.
    match &message["content"] {
        Value::String(s) if !s.is_empty() => {
            out.insert("content".into(), json!(s));
        }
        Value::Array(parts) => {
            let blocks: Vec<Value> = parts
                .iter()
                .filter_map(|p| p["text"].as_str().filter(|t| !t.is_empty()))
                .map(|text| json!({"type": "text", "text": text}))
                .collect();
            if !blocks.is_empty() {
                out.insert("content".into(), Value::Array(blocks));
            }
        }
        _ => {}
    }
    let mut calls = Vec::new();
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
        let arguments = if arguments.trim().is_empty() {
            "{}"
        } else if serde_json::from_str::<Value>(arguments).is_ok_and(|v| v.is_object()) {
            arguments
        } else {
            return Err(ApiError::invalid(format!(
                "`{at}.function.arguments` must be a JSON object encoded as a string"
            )));
        };
        calls.push(json!({"id": id, "type": "function",
            "function": {"name": name, "arguments": arguments}}));
    }
    if !calls.is_empty() {
        if let Some(plan) = reasoning_text(message) {
            out.insert("tool_plan".into(), json!(plan));
        }
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    if !out.contains_key("content") && !out.contains_key("tool_calls") {
        return Ok(None);
    }
    Ok(Some(Value::Object(out)))
}

/// The reasoning a client passed back on an assistant turn: `reasoning`, else the text of its
/// `reasoning.text` details.
fn reasoning_text(message: &Value) -> Option<String> {
    if let Some(r) = message["reasoning"].as_str().filter(|r| !r.is_empty()) {
        return Some(r.to_owned());
    }
    let text: String = message["reasoning_details"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["type"] == "reasoning.text")
        .filter_map(|d| d["text"].as_str())
        .collect();
    (!text.is_empty()).then_some(text)
}

/// Function tools in Cohere's shape (which is OpenAI's); OpenRouter's server tools are not sent.
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
        let parameters = function
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        out.insert("parameters".into(), parameters);
        tools.push(json!({"type": "function", "function": out}));
    }
    Ok(tools)
}

/// Cohere's `tool_choice` (`None` for `auto`, its default); a named function narrows `tools` to it.
fn convert_tool_choice(
    src: &Map<String, Value>,
    tools: &mut Vec<Value>,
) -> Result<Option<&'static str>, ApiError> {
    match src.get("tool_choice") {
        Some(Value::String(s)) => Ok(match s.as_str() {
            "required" => Some("REQUIRED"),
            "none" => Some("NONE"),
            _ => None,
        }),
        Some(Value::Object(c)) if c.get("type").and_then(Value::as_str) == Some("function") => {
            let Some(name) = c
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            else {
                return Err(ApiError::invalid("`tool_choice.function.name` is required"));
            };
            tools.retain(|t| t["function"]["name"] == name);
            if tools.is_empty() {
                return Err(ApiError::invalid(format!(
                    "`tool_choice` names the function `{name}`, which is not in `tools`"
                )));
            }
            Ok(Some("REQUIRED"))
        }
        _ => Ok(None),
    }
}

/// Reads a non-streaming Cohere response as a `chat.completion` body whose choice carries Cohere's
/// own `finish_reason` ([`super::openai::render_response`] normalises it).
pub fn parse_response(
    bytes: &[u8],
    req: &ChatRequest,
) -> Result<(Map<String, Value>, Outcome), ApiError> {
    let Ok(Value::Object(response)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid_upstream_response());
    };
    let Some(message) = response.get("message").filter(|m| m.is_object()) else {
        return Err(invalid_upstream_response());
    };
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut details = Vec::new();
    for block in message["content"].as_array().into_iter().flatten() {
        match block["type"].as_str().unwrap_or_default() {
            "text" => text
                .get_or_insert_with(String::new)
                .push_str(block["text"].as_str().unwrap_or_default()),
            "thinking" => {
                let thinking = block["thinking"].as_str().unwrap_or_default();
                reasoning.get_or_insert_with(String::new).push_str(thinking);
                details.push(reasoning_item(thinking, details.len()));
            }
            _ => {}
        }
    }
    // Reasoning models plan in their thinking; others explain their tool calls in `tool_plan`.
    if let Some(plan) = message["tool_plan"].as_str().filter(|p| !p.is_empty()) {
        if details.is_empty() {
            reasoning = Some(plan.to_owned());
            details.push(reasoning_item(plan, 0));
        }
    }
    let tool_calls: Vec<Value> = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|call| {
            let arguments = match &call["function"]["arguments"] {
                Value::String(s) if !s.trim().is_empty() => s.clone(),
                Value::Object(o) => Value::Object(o.clone()).to_string(),
                _ => "{}".to_owned(),
            };
            json!({"id": call["id"], "type": "function",
                "function": {"name": call["function"]["name"], "arguments": arguments}})
        })
        .collect();

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

    let native = response
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let upstream_id = response
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let outcome = Outcome {
        usage: response.get("usage").and_then(parse_usage),
        finish_reason: native.as_deref().map(|n| finish_reason(n).to_owned()),
        native_finish_reason: native.clone(),
        upstream_id,
    };
    let mut body = Map::new();
    body.insert(
        "id".into(),
        response.get("id").cloned().unwrap_or(Value::Null),
    );
    body.insert("object".into(), json!("chat.completion"));
    // Cohere does not echo the model; `render_response` writes the catalog's.
    body.insert("model".into(), Value::Null);
    body.insert(
        "choices".into(),
        json!([{"index": 0, "message": out_message, "finish_reason": native, "logprobs": null}]),
    );
    Ok((body, outcome))
}

fn reasoning_item(text: &str, index: usize) -> Value {
    json!({"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": index})
}

/// A token count, which Cohere may write as a float (`37.0`).
fn count(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

/// Cohere's `usage`: billed units when present (what Cohere charges), processed tokens otherwise.
/// Cohere does not count thinking tokens apart from output tokens.
fn parse_usage(usage: &Value) -> Option<Usage> {
    if !usage.is_object() {
        return None;
    }
    let side = |field: &str| {
        count(&usage["billed_units"][field])
            .or_else(|| count(&usage["tokens"][field]))
            .unwrap_or(0)
    };
    Some(Usage {
        prompt_tokens: side("input_tokens"),
        completion_tokens: side("output_tokens"),
        cached_tokens: count(&usage["cached_tokens"]).unwrap_or(0),
        ..Usage::default()
    })
}

/// Turns Cohere's event stream into `chat.completion.chunk`s, remembering what the final chunk
/// needs. Fed the `data` of each event (its `type` field names the event).
#[derive(Debug)]
pub struct StreamTranslator {
    stamp: ChunkStamp,
    exclude_reasoning: bool,
    /// Cohere's content index of each thinking block → its index in `reasoning_details`.
    thinking: Vec<(u64, usize)>,
    /// The `reasoning_details` index of the tool plan, once it streams as reasoning.
    plan_item: Option<usize>,
    /// Per tool call, in our order (OpenAI's `tool_calls[].index`): Cohere's index for it, and
    /// whether any arguments were sent.
    calls: Vec<(u64, bool)>,
    reasoning_items: usize,
    outcome: Outcome,
    generated_bytes: usize,
    content_sent: bool,
}

impl StreamTranslator {
    pub fn new(served: &Served<'_>, req: &ChatRequest) -> StreamTranslator {
        StreamTranslator {
            stamp: ChunkStamp::new(served),
            exclude_reasoning: excludes_reasoning(req),
            thinking: Vec::new(),
            plan_item: None,
            calls: Vec::new(),
            reasoning_items: 0,
            outcome: Outcome::default(),
            generated_bytes: 0,
            content_sent: false,
        }
    }

    /// Handles the `data` of one upstream event.
    pub fn on_data(&mut self, data: &str) -> Result<StreamStep, ApiError> {
        if data.trim() == "[DONE]" {
            return Ok(StreamStep::Done);
        }
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(data) else {
            return Err(invalid_upstream_response());
        };
        let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
        let message = event
            .get("delta")
            .and_then(|d| d.get("message"))
            .unwrap_or(&Value::Null);
        match event.get("type").and_then(Value::as_str) {
            Some("message-start") => {
                self.outcome.upstream_id =
                    event.get("id").and_then(Value::as_str).map(str::to_owned);
                // SDKs want the role on the first chunk.
                Ok(self.delta(json!({"role": "assistant", "content": ""}), false))
            }
            Some("content-start" | "content-delta") => {
                let content = &message["content"];
                if let Some(thinking) = content["thinking"].as_str() {
                    Ok(self.thinking(index, thinking))
                } else {
                    Ok(self.text(content["text"].as_str().unwrap_or_default()))
                }
            }
            Some("tool-plan-delta") => Ok(self.tool_plan(message["tool_plan"].as_str())),
            Some("tool-call-start") => {
                let call = &message["tool_calls"];
                let name = call["function"]["name"].as_str().unwrap_or_default();
                // The start's `arguments` is normally empty; any there are the first fragment.
                let arguments = call["function"]["arguments"].as_str().unwrap_or_default();
                let ours = self.calls.len();
                self.calls.push((index, !arguments.is_empty()));
                self.generated_bytes += name.len() + arguments.len();
                Ok(self.delta(
                    json!({"tool_calls": [{"index": ours, "id": call["id"], "type": "function",
                        "function": {"name": name, "arguments": arguments}}]}),
                    true,
                ))
            }
            Some("tool-call-delta") => {
                let fragment = message["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .unwrap_or_default();
                match self.call(index) {
                    Some(ours) if !fragment.is_empty() => Ok(self.tool_arguments(ours, fragment)),
                    _ => Ok(StreamStep::Nothing),
                }
            }
            // A call without arguments still needs parseable JSON.
            Some("tool-call-end") => match self.call(index) {
                Some(ours) if !self.calls[ours].1 => Ok(self.tool_arguments(ours, "{}")),
                _ => Ok(StreamStep::Nothing),
            },
            Some("message-end") => self.message_end(&event["delta"]),
            // An error body in place of an event.
            None if event.get("message").is_some_and(Value::is_string) => Err(upstream_error(
                500,
                data.as_bytes(),
                self.stamp.provider_name(),
                None,
            )),
            // `content-end`, citations, `debug`, and event types Cohere may add.
            _ => Ok(StreamStep::Nothing),
        }
    }

    fn message_end(&mut self, delta: &Value) -> Result<StreamStep, ApiError> {
        if let Some(usage) = parse_usage(&delta["usage"]) {
            self.outcome.usage = Some(usage);
        }
        let Some(native) = delta["finish_reason"].as_str() else {
            return Ok(StreamStep::Nothing);
        };
        self.outcome.native_finish_reason = Some(native.to_owned());
        self.outcome.finish_reason = Some(finish_reason(native).to_owned());
        if matches!(native, "ERROR" | "TIMEOUT") {
            let message = delta["error"]
                .as_str()
                .filter(|e| !e.is_empty())
                .unwrap_or(native);
            let status = if native == "TIMEOUT" { 504 } else { 500 };
            return Err(upstream_error(
                status,
                json!({"message": message}).to_string().as_bytes(),
                self.stamp.provider_name(),
                None,
            ));
        }
        Ok(StreamStep::Frame(self.stamp.choice_frame(
            json!({}),
            Some((finish_reason(native), native)),
        )))
    }

    /// Our index of Cohere's tool call `index`.
    fn call(&self, index: u64) -> Option<usize> {
        self.calls.iter().position(|c| c.0 == index)
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

    fn thinking(&mut self, index: u64, text: &str) -> StreamStep {
        let item = match self.thinking.iter().find(|t| t.0 == index) {
            Some(&(_, item)) => item,
            None => {
                let item = self.next_reasoning_item();
                self.thinking.push((index, item));
                item
            }
        };
        self.reasoning(item, text)
    }

    /// The plan streams as reasoning only when the model did not think (as in `parse_response`).
    fn tool_plan(&mut self, text: Option<&str>) -> StreamStep {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return StreamStep::Nothing;
        };
        if !self.thinking.is_empty() {
            self.generated_bytes += text.len();
            return StreamStep::Nothing;
        }
        let item = match self.plan_item {
            Some(item) => item,
            None => {
                let item = self.next_reasoning_item();
                self.plan_item = Some(item);
                item
            }
        };
        self.reasoning(item, text)
    }

    fn reasoning(&mut self, item: usize, text: &str) -> StreamStep {
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

    fn tool_arguments(&mut self, ours: usize, fragment: &str) -> StreamStep {
        if let Some(call) = self.calls.get_mut(ours) {
            call.1 = true;
        }
        self.generated_bytes += fragment.len();
        self.delta(
            json!({"tool_calls": [{"index": ours, "function": {"arguments": fragment}}]}),
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

/// Maps a Cohere error (`{"message": "..."}`) to the client's error by HTTP status, keeping the
/// provider's words in `metadata.raw`. Cohere's own statuses fall in with the rest: 498 (invalid
/// token) and 499 (request cancelled) are provider errors like 401 is; a non-error status (an error
/// body in a 200) counts as a server error.
pub fn upstream_error(
    status: u16,
    body: &[u8],
    provider_name: &str,
    retry_after: Option<u64>,
) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let provider_message = parsed
        .as_ref()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("error").and_then(|e| e.get("message").or(Some(e))))
        })
        .and_then(Value::as_str)
        .map(str::to_owned);
    let status = if status >= 400 { status } else { 500 };
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
