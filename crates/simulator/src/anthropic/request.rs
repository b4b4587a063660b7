//! Validation of a Messages (or count_tokens) request the way Anthropic's API rejects the common
//! mistakes — errors name the field by its path (`messages.0.content.1.source.media_type`) —
//! and the prompt's token count, with the cacheable prefixes its `cache_control` breakpoints
//! mark.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Invalid;
use crate::generate::hash_canonical;
use crate::tokenizer;

/// Prompt tokens for each message, before its role and content.
const PER_MESSAGE_TOKENS: u64 = 3;
/// Prompt tokens priming the assistant's reply.
const REPLY_PRIMING_TOKENS: u64 = 3;
/// Prompt tokens for each image (the simulator does not decode images).
const IMAGE_TOKENS: u64 = 85;
/// Prompt tokens for each PDF, URL or file document (the simulator does not read them).
const DOCUMENT_TOKENS: u64 = 1000;
/// Smallest `thinking.budget_tokens` the API accepts.
const MIN_THINKING_BUDGET: u64 = 1024;
/// Most `cache_control` breakpoints one request may carry.
const MAX_BREAKPOINTS: usize = 4;

/// Top-level keys of `POST /v1/messages`; anything else is rejected, as the API does.
const CREATE_KEYS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "cache_control",
    "output_config",
    "output_format",
    "container",
    "context_management",
    "diagnostics",
    "inference_geo",
    "mcp_servers",
    "service_tier",
    "speed",
    "user_profile_id",
    "workspace_id",
];

/// Top-level keys of `POST /v1/messages/count_tokens`.
const COUNT_KEYS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "cache_control",
    "output_config",
    "output_format",
    "context_management",
    "mcp_servers",
    "speed",
];

/// Content block types accepted without further checks (server tools' blocks, passed back).
const OPAQUE_BLOCKS: &[&str] = &[
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
    "tool_reference",
];

/// Which endpoint is being validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    CountTokens,
}

/// A cache entry's lifetime, from `cache_control.ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    FiveMinutes,
    OneHour,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    Off,
    /// `budget` is `None` for adaptive thinking; `omitted` sends the thinking text empty.
    On {
        budget: Option<u64>,
        omitted: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolChoice<'a> {
    Auto,
    Any,
    Tool(&'a str),
    None,
}

/// A custom (client) tool the model can call.
pub struct Tool<'a> {
    pub name: &'a str,
    pub input_schema: &'a Value,
}

/// The parts of a request the simulator acts on, validated.
pub struct MessagesRequest<'a> {
    pub model: &'a str,
    /// `None` for count_tokens, which takes no `max_tokens`.
    pub max_tokens: Option<u64>,
    pub stream: bool,
    system: Option<&'a Value>,
    pub messages: &'a [Value],
    /// Every tool definition, server tools included (they count as prompt tokens).
    tools_raw: &'a [Value],
    pub tools: Vec<Tool<'a>>,
    pub tool_choice: ToolChoice<'a>,
    pub disable_parallel: bool,
    pub thinking: Thinking,
    pub stop_sequences: Vec<&'a str>,
    /// The JSON schema of `output_config.format`, for structured output.
    pub format: Option<&'a Value>,
    /// The top-level `cache_control`: a breakpoint on the last block.
    auto_cache: Option<Ttl>,
}

/// A cacheable prompt prefix, ending at a `cache_control` breakpoint.
#[derive(Debug, Clone)]
pub struct Breakpoint {
    /// Prompt tokens from the start through the marked block.
    pub tokens: u64,
    /// Identity of the prefix: the model and every block through the marked one, without
    /// their `cache_control` markers.
    pub hash: [u8; 32],
    pub ttl: Ttl,
}

/// The prompt's token count and its cacheable prefixes, shortest first.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub total: u64,
    pub breakpoints: Vec<Breakpoint>,
}

fn required(path: &str) -> Invalid {
    Invalid(format!("{path}: Field required"))
}

fn expected(path: &str, what: &str) -> Invalid {
    Invalid(format!("{path}: Input should be {what}"))
}

fn reject_extra(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Invalid> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) if path.is_empty() => {
            Err(Invalid(format!("{key}: Extra inputs are not permitted")))
        }
        Some(key) => Err(Invalid(format!(
            "{path}.{key}: Extra inputs are not permitted"
        ))),
        None => Ok(()),
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| expected(path, "a valid dictionary"))
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, Invalid> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        None => Err(required(&format!("{path}.{key}"))),
        Some(_) => Err(expected(&format!("{path}.{key}"), "a valid string")),
    }
}

fn opt_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(expected(&join(path, key), "a valid string")),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<bool>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(expected(&join(path, key), "a valid boolean")),
    }
}

/// An integer field (JSON numbers with a fraction are not integers).
fn integer(value: &Value, path: &str) -> Result<i64, Invalid> {
    value
        .as_i64()
        .ok_or_else(|| expected(path, "a valid integer"))
}

/// An optional number in `lo..=hi`.
fn opt_number_in(
    obj: &Map<String, Value>,
    key: &str,
    lo: f64,
    hi: f64,
) -> Result<Option<f64>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = v.as_f64().ok_or_else(|| expected(key, "a valid number"))?;
            if n < lo {
                Err(expected(key, &format!("greater than or equal to {lo}")))
            } else if n > hi {
                Err(expected(key, &format!("less than or equal to {hi}")))
            } else {
                Ok(Some(n))
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn tag_error(path: &str, tag: &str, expected_tags: &[&str]) -> Invalid {
    let tags = expected_tags
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Invalid(format!(
        "{path}: Input tag '{tag}' found using 'type' does not match any of the expected tags: {tags}"
    ))
}

/// A block's `type`.
fn block_type<'a>(obj: &'a Map<String, Value>, path: &str) -> Result<&'a str, Invalid> {
    string(obj, "type", path)
}

/// Validates `cache_control` if present, returning its TTL.
fn cache_control(obj: &Map<String, Value>, path: &str) -> Result<Option<Ttl>, Invalid> {
    let path = join(path, "cache_control");
    let control = match obj.get("cache_control") {
        None | Some(Value::Null) => return Ok(None),
        Some(control) => object(control, &path)?,
    };
    reject_extra(control, &["type", "ttl"], &path)?;
    match string(control, "type", &path)? {
        "ephemeral" => {}
        other => return Err(tag_error(&path, other, &["ephemeral"])),
    }
    match opt_string(control, "ttl", &path)? {
        None | Some("5m") => Ok(Some(Ttl::FiveMinutes)),
        Some("1h") => Ok(Some(Ttl::OneHour)),
        Some(_) => Err(expected(&format!("{path}.ttl"), "'5m' or '1h'")),
    }
}

/// Where a content block sits, which decides the types it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    User,
    Assistant,
    /// Inside a `tool_result`'s content.
    ToolResult,
    /// Inside a document's `content` source.
    Document,
}

/// Tool-use bookkeeping of one message, for the pairing rules between turns.
#[derive(Default)]
struct Pairing<'a> {
    tool_uses: Vec<&'a str>,
    /// `(block index, tool_use_id)` of each `tool_result`.
    tool_results: Vec<(usize, &'a str)>,
}

/// Checks one content block; returns whether it carries a `cache_control` breakpoint.
fn check_block<'a>(
    block: &'a Value,
    path: &str,
    place: Place,
    pairing: &mut Pairing<'a>,
    index: usize,
) -> Result<bool, Invalid> {
    let obj = object(block, path)?;
    let kind = block_type(obj, path)?;
    match (kind, place) {
        ("text", _) => {
            reject_extra(obj, &["type", "text", "cache_control", "citations"], path)?;
            if string(obj, "text", path)?.trim().is_empty() {
                return Err(Invalid(format!(
                    "{path}: text content blocks must contain non-whitespace text"
                )));
            }
        }
        ("image", Place::User | Place::ToolResult | Place::Document) => {
            reject_extra(obj, &["type", "source", "cache_control"], path)?;
            check_image_source(obj, path)?;
        }
        ("document", Place::User | Place::ToolResult) => {
            let keys = [
                "type",
                "source",
                "cache_control",
                "citations",
                "context",
                "title",
            ];
            reject_extra(obj, &keys, path)?;
            check_document_source(obj, path)?;
            opt_string(obj, "title", path)?;
            opt_string(obj, "context", path)?;
        }
        ("tool_use", Place::Assistant) => {
            let keys = ["type", "id", "name", "input", "cache_control", "caller"];
            reject_extra(obj, &keys, path)?;
            let id = string(obj, "id", path)?;
            string(obj, "name", path)?;
            match obj.get("input") {
                Some(Value::Object(_)) => {}
                None => return Err(required(&format!("{path}.input"))),
                Some(_) => return Err(expected(&format!("{path}.input"), "a valid dictionary")),
            }
            pairing.tool_uses.push(id);
        }
        ("tool_result", Place::User) => {
            let keys = [
                "type",
                "tool_use_id",
                "content",
                "is_error",
                "cache_control",
                "toolset_name",
            ];
            reject_extra(obj, &keys, path)?;
            let id = string(obj, "tool_use_id", path)?;
            opt_bool(obj, "is_error", path)?;
            match obj.get("content") {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(Value::Array(parts)) => {
                    for (j, part) in parts.iter().enumerate() {
                        let part_path = format!("{path}.content.{j}");
                        check_block(part, &part_path, Place::ToolResult, pairing, j)?;
                    }
                }
                Some(_) => {
                    return Err(expected(
                        &format!("{path}.content"),
                        "a valid string or a list of content blocks",
                    ))
                }
            }
            pairing.tool_results.push((index, id));
        }
        ("thinking", Place::Assistant) => {
            reject_extra(obj, &["type", "thinking", "signature"], path)?;
            string(obj, "thinking", path)?;
            string(obj, "signature", path)?;
        }
        ("redacted_thinking", Place::Assistant) => {
            reject_extra(obj, &["type", "data"], path)?;
            string(obj, "data", path)?;
        }
        (kind, _) if OPAQUE_BLOCKS.contains(&kind) => {}
        (
            "image" | "document" | "tool_use" | "tool_result" | "thinking" | "redacted_thinking",
            place,
        ) => {
            let role = match place {
                Place::User => "user messages",
                Place::Assistant => "assistant messages",
                Place::ToolResult => "tool_result content",
                Place::Document => "document content",
            };
            return Err(Invalid(format!(
                "{path}: `{kind}` blocks are not allowed in {role}"
            )));
        }
        (other, _) => {
            let tags = [
                "text",
                "image",
                "document",
                "search_result",
                "thinking",
                "redacted_thinking",
                "tool_use",
                "tool_result",
            ];
            return Err(tag_error(path, other, &tags));
        }
    }
    Ok(cache_control(obj, path)?.is_some())
}

fn source<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
) -> Result<(&'a Map<String, Value>, &'a str, String), Invalid> {
    let path = format!("{path}.source");
    let source = match obj.get("source") {
        None => return Err(required(&path)),
        Some(source) => object(source, &path)?,
    };
    let kind = string(source, "type", &path)?;
    Ok((source, kind, path))
}

fn check_image_source(obj: &Map<String, Value>, path: &str) -> Result<(), Invalid> {
    let (source, kind, path) = source(obj, path)?;
    match kind {
        "base64" => {
            let path = format!("{path}.base64");
            reject_extra(source, &["type", "media_type", "data"], &path)?;
            let media = string(source, "media_type", &path)?;
            if !["image/jpeg", "image/png", "image/gif", "image/webp"].contains(&media) {
                return Err(expected(
                    &format!("{path}.media_type"),
                    "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
                ));
            }
            string(source, "data", &path)?;
        }
        "url" => {
            reject_extra(source, &["type", "url"], &path)?;
            string(source, "url", &path)?;
        }
        "file" => {
            reject_extra(source, &["type", "file_id"], &path)?;
            string(source, "file_id", &path)?;
        }
        other => return Err(tag_error(&path, other, &["base64", "url", "file"])),
    }
    Ok(())
}

fn check_document_source(obj: &Map<String, Value>, path: &str) -> Result<(), Invalid> {
    let (source, kind, path) = source(obj, path)?;
    match kind {
        "base64" => {
            reject_extra(source, &["type", "media_type", "data"], &path)?;
            if string(source, "media_type", &path)? != "application/pdf" {
                return Err(expected(&format!("{path}.media_type"), "'application/pdf'"));
            }
            string(source, "data", &path)?;
        }
        "text" => {
            reject_extra(source, &["type", "media_type", "data"], &path)?;
            if string(source, "media_type", &path)? != "text/plain" {
                return Err(expected(&format!("{path}.media_type"), "'text/plain'"));
            }
            string(source, "data", &path)?;
        }
        "content" => {
            reject_extra(source, &["type", "content"], &path)?;
            match source.get("content") {
                Some(Value::String(_)) => {}
                Some(Value::Array(parts)) => {
                    let mut pairing = Pairing::default();
                    for (j, part) in parts.iter().enumerate() {
                        let part_path = format!("{path}.content.{j}");
                        check_block(part, &part_path, Place::Document, &mut pairing, j)?;
                    }
                }
                None => return Err(required(&format!("{path}.content"))),
                Some(_) => {
                    return Err(expected(
                        &format!("{path}.content"),
                        "a valid string or a list of content blocks",
                    ))
                }
            }
        }
        "url" => {
            reject_extra(source, &["type", "url"], &path)?;
            string(source, "url", &path)?;
        }
        "file" => {
            reject_extra(source, &["type", "file_id"], &path)?;
            string(source, "file_id", &path)?;
        }
        other => {
            return Err(tag_error(
                &path,
                other,
                &["base64", "text", "content", "url", "file"],
            ))
        }
    }
    Ok(())
}

/// A message's role and content, checked; returns the role and the number of breakpoints.
fn check_message<'a>(
    message: &'a Value,
    i: usize,
    last: bool,
    pairing: &mut Pairing<'a>,
) -> Result<(&'a str, usize), Invalid> {
    let path = format!("messages.{i}");
    let obj = object(message, &path)?;
    reject_extra(obj, &["role", "content"], &path)?;
    let role = match obj.get("role") {
        None => return Err(required(&format!("{path}.role"))),
        Some(Value::String(role)) if role == "user" || role == "assistant" => role.as_str(),
        Some(_) => return Err(expected(&format!("{path}.role"), "'user' or 'assistant'")),
    };
    let empty = || {
        Invalid(format!(
            "{path}: all messages must have non-empty content except for the optional final assistant message"
        ))
    };
    let allow_empty = last && role == "assistant";
    let mut breakpoints = 0;
    match obj.get("content") {
        None => return Err(required(&format!("{path}.content"))),
        Some(Value::String(text)) => {
            if text.is_empty() && !allow_empty {
                return Err(empty());
            }
        }
        Some(Value::Array(blocks)) => {
            if blocks.is_empty() && !allow_empty {
                return Err(empty());
            }
            let place = if role == "user" {
                Place::User
            } else {
                Place::Assistant
            };
            let mut other_content = false;
            for (j, block) in blocks.iter().enumerate() {
                let block_path = format!("{path}.content.{j}");
                breakpoints += usize::from(check_block(block, &block_path, place, pairing, j)?);
                let is_result = block.get("type").and_then(Value::as_str) == Some("tool_result");
                if is_result && other_content {
                    return Err(Invalid(format!(
                        "{block_path}: tool_result blocks must come before any other content in a user message"
                    )));
                }
                other_content |= !is_result;
            }
        }
        Some(_) => {
            return Err(expected(
                &format!("{path}.content"),
                "a valid string or a list of content blocks",
            ))
        }
    }
    Ok((role, breakpoints))
}

/// Consecutive same-role messages form one turn (the API combines them); a `tool_result` must
/// answer a `tool_use` of the previous turn, and every `tool_use` followed by a user turn must
/// be answered in it.
fn check_pairing(roles: &[&str], pairings: &[Pairing<'_>]) -> Result<(), Invalid> {
    // Turn boundaries: (first message, one past the last).
    let mut turns: Vec<(usize, usize)> = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        match turns.last_mut() {
            Some((start, end)) if roles[*start] == *role => *end = i + 1,
            _ => turns.push((i, i + 1)),
        }
    }
    for (t, &(start, end)) in turns.iter().enumerate() {
        if roles[start] != "user" {
            continue;
        }
        let offered: Vec<&str> = match t.checked_sub(1).map(|p| turns[p]) {
            Some((ps, pe)) => pairings[ps..pe]
                .iter()
                .flat_map(|p| p.tool_uses.iter().copied())
                .collect(),
            None => Vec::new(),
        };
        let mut answered: Vec<&str> = Vec::new();
        for (i, pairing) in pairings.iter().enumerate().take(end).skip(start) {
            for &(j, id) in &pairing.tool_results {
                if !offered.contains(&id) {
                    return Err(Invalid(format!(
                        "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    )));
                }
                answered.push(id);
            }
        }
        let missing: Vec<&str> = offered
            .iter()
            .copied()
            .filter(|id| !answered.contains(id))
            .collect();
        if !missing.is_empty() {
            let at = turns[t - 1].0;
            return Err(Invalid(format!(
                "messages.{at}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

fn check_system(value: Option<&Value>) -> Result<(Option<&Value>, usize), Invalid> {
    let mut breakpoints = 0;
    match value {
        None | Some(Value::Null) => return Ok((None, 0)),
        Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (j, block) in blocks.iter().enumerate() {
                let path = format!("system.{j}");
                let obj = object(block, &path)?;
                match block_type(obj, &path)? {
                    "text" => {}
                    other => return Err(tag_error(&path, other, &["text"])),
                }
                reject_extra(obj, &["type", "text", "cache_control", "citations"], &path)?;
                string(obj, "text", &path)?;
                breakpoints += usize::from(cache_control(obj, &path)?.is_some());
            }
        }
        Some(_) => {
            return Err(expected(
                "system",
                "a valid string or a list of text blocks",
            ))
        }
    }
    Ok((value, breakpoints))
}

/// A tool name as the API allows it: 1-128 of `[a-zA-Z0-9_-]`.
fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A versioned server tool type such as `web_search_20250305`.
fn server_tool_type(kind: &str) -> bool {
    kind.rsplit_once('_').is_some_and(|(name, date)| {
        !name.is_empty() && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit())
    })
}

fn check_tools(value: Option<&Value>) -> Result<(&[Value], Vec<Tool<'_>>, usize), Invalid> {
    let items = match value {
        None | Some(Value::Null) => return Ok((&[], Vec::new(), 0)),
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => return Err(expected("tools", "a valid list")),
    };
    let mut tools = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut breakpoints = 0;
    for (i, item) in items.iter().enumerate() {
        let path = format!("tools.{i}");
        let obj = object(item, &path)?;
        let kind = opt_string(obj, "type", &path)?.unwrap_or("custom");
        let name = string(obj, "name", &path)?;
        if kind == "custom" {
            let keys = [
                "type",
                "name",
                "description",
                "input_schema",
                "cache_control",
                "strict",
                "input_examples",
                "eager_input_streaming",
                "defer_loading",
                "allowed_callers",
            ];
            reject_extra(obj, &keys, &path)?;
            if !valid_tool_name(name) {
                return Err(Invalid(format!(
                    "{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )));
            }
            opt_string(obj, "description", &path)?;
            let schema_path = format!("{path}.input_schema");
            let input_schema = match obj.get("input_schema") {
                None => return Err(required(&schema_path)),
                Some(schema) => schema,
            };
            let schema = object(input_schema, &schema_path)?;
            match schema.get("type") {
                Some(Value::String(t)) if t == "object" => {}
                None => return Err(required(&format!("{schema_path}.type"))),
                Some(_) => return Err(expected(&format!("{schema_path}.type"), "'object'")),
            }
            tools.push(Tool { name, input_schema });
        } else if !server_tool_type(kind) {
            return Err(tag_error(&format!("{path}.type"), kind, &["custom"]));
        }
        if names.contains(&name) {
            return Err(Invalid("tools: Tool names must be unique.".into()));
        }
        names.push(name);
        breakpoints += usize::from(cache_control(obj, &path)?.is_some());
    }
    Ok((items, tools, breakpoints))
}

fn check_tool_choice<'a>(
    value: Option<&'a Value>,
    tools: &[Tool<'a>],
    any_tools: bool,
) -> Result<(ToolChoice<'a>, bool), Invalid> {
    let obj = match value {
        None | Some(Value::Null) => return Ok((ToolChoice::Auto, false)),
        Some(value) => object(value, "tool_choice")?,
    };
    let kind = string(obj, "type", "tool_choice")?;
    let choice = match kind {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Any,
        "none" => ToolChoice::None,
        "tool" => {
            let name = string(obj, "name", "tool_choice")?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(Invalid(format!(
                    "tool_choice.name: tool '{name}' is not one of the custom tools in 'tools'"
                )));
            }
            ToolChoice::Tool(name)
        }
        other => {
            return Err(tag_error(
                "tool_choice",
                other,
                &["auto", "any", "tool", "none"],
            ))
        }
    };
    let allowed: &[&str] = match choice {
        ToolChoice::None => &["type"],
        ToolChoice::Tool(_) => &["type", "name", "disable_parallel_tool_use"],
        _ => &["type", "disable_parallel_tool_use"],
    };
    reject_extra(obj, allowed, "tool_choice")?;
    if matches!(choice, ToolChoice::Any | ToolChoice::Tool(_)) && !any_tools {
        return Err(Invalid(format!(
            "tool_choice: tool_choice of type '{kind}' may only be specified while providing tools"
        )));
    }
    let disable = opt_bool(obj, "disable_parallel_tool_use", "tool_choice")?.unwrap_or(false);
    Ok((choice, disable))
}

fn check_thinking(value: Option<&Value>) -> Result<Thinking, Invalid> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(Thinking::Off),
        Some(value) => object(value, "thinking")?,
    };
    let kind = string(obj, "type", "thinking")?;
    let omitted = |path: &str| -> Result<bool, Invalid> {
        match opt_string(obj, "display", path)? {
            None | Some("summarized") => Ok(false),
            Some("omitted") => Ok(true),
            Some(_) => Err(expected(
                &format!("{path}.display"),
                "'summarized' or 'omitted'",
            )),
        }
    };
    match kind {
        "enabled" => {
            let path = "thinking.enabled";
            reject_extra(obj, &["type", "budget_tokens", "display"], path)?;
            let budget = match obj.get("budget_tokens") {
                None => return Err(required(&format!("{path}.budget_tokens"))),
                Some(v) => integer(v, &format!("{path}.budget_tokens"))?,
            };
            if budget < MIN_THINKING_BUDGET as i64 {
                return Err(expected(
                    &format!("{path}.budget_tokens"),
                    &format!("greater than or equal to {MIN_THINKING_BUDGET}"),
                ));
            }
            Ok(Thinking::On {
                budget: Some(budget as u64),
                omitted: omitted(path)?,
            })
        }
        "adaptive" => {
            reject_extra(obj, &["type", "display"], "thinking.adaptive")?;
            Ok(Thinking::On {
                budget: None,
                omitted: omitted("thinking.adaptive")?,
            })
        }
        "disabled" => {
            reject_extra(obj, &["type"], "thinking.disabled")?;
            Ok(Thinking::Off)
        }
        other => Err(tag_error(
            "thinking",
            other,
            &["enabled", "disabled", "adaptive"],
        )),
    }
}

/// `output_config` (and the older `output_format`): the JSON schema to answer in, if any.
fn check_output(value: &Value) -> Result<Option<&Value>, Invalid> {
    let mut schema = None;
    if let Some(config) = value.get("output_config").filter(|v| !v.is_null()) {
        let obj = object(config, "output_config")?;
        reject_extra(obj, &["effort", "format"], "output_config")?;
        match opt_string(obj, "effort", "output_config")? {
            None | Some("low" | "medium" | "high" | "xhigh" | "max") => {}
            Some(_) => {
                return Err(expected(
                    "output_config.effort",
                    "'low', 'medium', 'high', 'xhigh' or 'max'",
                ))
            }
        }
        if let Some(format) = obj.get("format").filter(|v| !v.is_null()) {
            schema = Some(check_format(format, "output_config.format")?);
        }
    }
    if let Some(format) = value.get("output_format").filter(|v| !v.is_null()) {
        schema = Some(check_format(format, "output_format")?);
    }
    Ok(schema)
}

fn check_format<'a>(format: &'a Value, path: &str) -> Result<&'a Value, Invalid> {
    let obj = object(format, path)?;
    reject_extra(obj, &["type", "schema"], path)?;
    match string(obj, "type", path)? {
        "json_schema" => {}
        other => return Err(tag_error(path, other, &["json_schema"])),
    }
    let schema_path = format!("{path}.schema");
    match obj.get("schema") {
        Some(schema @ Value::Object(_)) => Ok(schema),
        None => Err(required(&schema_path)),
        Some(_) => Err(expected(&schema_path, "a valid dictionary")),
    }
}

fn check_sampling(obj: &Map<String, Value>, thinking: Thinking) -> Result<(), Invalid> {
    let temperature = opt_number_in(obj, "temperature", 0.0, 1.0)?;
    let top_p = opt_number_in(obj, "top_p", 0.0, 1.0)?;
    let top_k = match obj.get("top_k") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let k = integer(v, "top_k")?;
            if k < 0 {
                return Err(expected("top_k", "greater than or equal to 0"));
            }
            Some(k)
        }
    };
    // Thinking works only with the default sampling (top_p may be lowered to 0.95).
    if matches!(thinking, Thinking::On { .. }) {
        if temperature.is_some_and(|t| t != 1.0) {
            return Err(Invalid(
                "`temperature` may only be set to 1 when thinking is enabled.".into(),
            ));
        }
        if top_k.is_some() {
            return Err(Invalid(
                "`top_k` cannot be set when thinking is enabled.".into(),
            ));
        }
        if top_p.is_some_and(|p| p < 0.95) {
            return Err(Invalid(
                "`top_p` must be greater than or equal to 0.95 when thinking is enabled.".into(),
            ));
        }
    }
    Ok(())
}

fn check_metadata(value: Option<&Value>) -> Result<(), Invalid> {
    let obj = match value {
        None | Some(Value::Null) => return Ok(()),
        Some(value) => object(value, "metadata")?,
    };
    reject_extra(obj, &["user_id"], "metadata")?;
    if opt_string(obj, "user_id", "metadata")?.is_some_and(|id| id.len() > 256) {
        return Err(Invalid(
            "metadata.user_id: String should have at most 256 characters".into(),
        ));
    }
    Ok(())
}

fn check_stop_sequences(value: Option<&Value>) -> Result<Vec<&str>, Invalid> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(expected("stop_sequences", "a valid list")),
    };
    let mut sequences = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let path = format!("stop_sequences.{k}");
        let sequence = item
            .as_str()
            .ok_or_else(|| expected(&path, "a valid string"))?;
        if sequence.trim().is_empty() {
            return Err(Invalid(format!(
                "{path}: stop sequences must contain non-whitespace characters"
            )));
        }
        sequences.push(sequence);
    }
    Ok(sequences)
}

impl<'a> MessagesRequest<'a> {
    pub fn parse(value: &'a Value, mode: Mode) -> Result<Self, Invalid> {
        let obj = value
            .as_object()
            .ok_or_else(|| Invalid("The request body must be a JSON object.".into()))?;
        let keys = match mode {
            Mode::Create => CREATE_KEYS,
            Mode::CountTokens => COUNT_KEYS,
        };
        reject_extra(obj, keys, "")?;

        let model = match obj.get("model") {
            None => return Err(required("model")),
            Some(Value::String(model)) if !model.is_empty() => model.as_str(),
            Some(Value::String(_)) => {
                return Err(Invalid(
                    "model: String should have at least 1 character".into(),
                ))
            }
            Some(_) => return Err(expected("model", "a valid string")),
        };
        let max_tokens = match (mode, obj.get("max_tokens")) {
            (Mode::CountTokens, _) => None,
            (Mode::Create, None) => return Err(required("max_tokens")),
            (Mode::Create, Some(v)) => {
                let n = integer(v, "max_tokens")?;
                // 0 is documented: it only warms the prompt cache.
                if n < 0 {
                    return Err(expected("max_tokens", "greater than or equal to 0"));
                }
                Some(n as u64)
            }
        };
        let stream = opt_bool(obj, "stream", "")?.unwrap_or(false);

        let messages = match obj.get("messages") {
            None => return Err(required("messages")),
            Some(Value::Array(messages)) if messages.is_empty() => {
                return Err(Invalid("messages: at least one message is required".into()))
            }
            Some(Value::Array(messages)) => messages.as_slice(),
            Some(_) => return Err(expected("messages", "a valid list")),
        };
        let mut breakpoints = 0;
        let mut roles = Vec::with_capacity(messages.len());
        let mut pairings = Vec::with_capacity(messages.len());
        for (i, message) in messages.iter().enumerate() {
            let mut pairing = Pairing::default();
            let (role, marks) = check_message(message, i, i + 1 == messages.len(), &mut pairing)?;
            breakpoints += marks;
            roles.push(role);
            pairings.push(pairing);
        }
        check_pairing(&roles, &pairings)?;

        let (system, marks) = check_system(obj.get("system"))?;
        breakpoints += marks;
        let (tools_raw, tools, marks) = check_tools(obj.get("tools"))?;
        breakpoints += marks;
        let (tool_choice, disable_parallel) =
            check_tool_choice(obj.get("tool_choice"), &tools, !tools_raw.is_empty())?;
        let thinking = check_thinking(obj.get("thinking"))?;
        if let (
            Thinking::On {
                budget: Some(budget),
                ..
            },
            Some(max),
        ) = (thinking, max_tokens)
        {
            if budget >= max {
                return Err(Invalid(
                    "`max_tokens` must be greater than `thinking.budget_tokens`.".into(),
                ));
            }
        }
        if matches!(thinking, Thinking::On { .. })
            && matches!(tool_choice, ToolChoice::Any | ToolChoice::Tool(_))
        {
            return Err(Invalid(
                "Thinking may not be enabled when tool_choice forces tool use.".into(),
            ));
        }
        check_sampling(obj, thinking)?;
        check_metadata(obj.get("metadata"))?;
        let stop_sequences = check_stop_sequences(obj.get("stop_sequences"))?;
        let format = check_output(value)?;
        let auto_cache = cache_control(obj, "")?;
        breakpoints += usize::from(auto_cache.is_some());
        if breakpoints > MAX_BREAKPOINTS {
            return Err(Invalid(format!(
                "A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}."
            )));
        }
        Ok(MessagesRequest {
            model,
            max_tokens,
            stream,
            system,
            messages,
            tools_raw,
            tools,
            tool_choice,
            disable_parallel,
            thinking,
            stop_sequences,
            format,
            auto_cache,
        })
    }

    /// The prompt's tokens (see the module docs for the rule) and cacheable prefixes, in prompt
    /// order: tools, then system, then messages.
    pub fn prompt(&self) -> Prompt {
        let mut walk = Walk::new(self.model);
        for tool in self.tools_raw {
            let tokens = match tool.get("cache_control") {
                Some(_) => {
                    let mut bare = tool.clone();
                    if let Some(obj) = bare.as_object_mut() {
                        obj.remove("cache_control");
                    }
                    tokenizer::count(&bare.to_string())
                }
                None => tokenizer::count(&tool.to_string()),
            };
            walk.unit(b"tool", tool, tokens);
        }
        match self.system {
            Some(system @ Value::String(text)) => {
                walk.unit(b"system", system, tokenizer::count(text));
            }
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    walk.unit(b"system", block, block_tokens(block));
                }
            }
            _ => {}
        }
        for message in self.messages {
            let role = message.get("role").and_then(Value::as_str).unwrap_or("");
            let header = PER_MESSAGE_TOKENS + tokenizer::count(role);
            let tag: &[u8] = if role == "user" {
                b"user"
            } else {
                b"assistant"
            };
            match message.get("content") {
                Some(Value::Array(blocks)) if !blocks.is_empty() => {
                    for (j, block) in blocks.iter().enumerate() {
                        let tokens = block_tokens(block) + if j == 0 { header } else { 0 };
                        walk.unit(if j == 0 { tag } else { b"block" }, block, tokens);
                    }
                }
                Some(content) => {
                    let tokens = header + content.as_str().map_or(0, tokenizer::count);
                    walk.unit(tag, content, tokens);
                }
                None => walk.unit(tag, &Value::Null, header),
            }
        }
        if let Some(ttl) = self.auto_cache {
            walk.breakpoint_here(ttl);
        }
        Prompt {
            total: walk.tokens + REPLY_PRIMING_TOKENS,
            breakpoints: walk.breakpoints,
        }
    }
}

/// Accumulates prompt units in order, hashing the prefix as it goes.
struct Walk {
    hasher: Sha256,
    tokens: u64,
    breakpoints: Vec<Breakpoint>,
}

impl Walk {
    fn new(model: &str) -> Self {
        let mut hasher = Sha256::new();
        // Caches are per model.
        hasher.update(model.as_bytes());
        hasher.update([0]);
        Walk {
            hasher,
            tokens: 0,
            breakpoints: Vec::new(),
        }
    }

    fn unit(&mut self, tag: &[u8], value: &Value, tokens: u64) {
        self.hasher.update(tag);
        hash_canonical(value, &["cache_control"], &mut self.hasher);
        self.tokens += tokens;
        let ttl = match value.get("cache_control").and_then(|c| c.get("ttl")) {
            Some(Value::String(ttl)) if ttl == "1h" => Ttl::OneHour,
            _ => Ttl::FiveMinutes,
        };
        if value.get("cache_control").is_some_and(|c| !c.is_null()) {
            self.breakpoint_here(ttl);
        }
    }

    /// A breakpoint after the last unit (one per position: a second marker there adds nothing).
    fn breakpoint_here(&mut self, ttl: Ttl) {
        if self
            .breakpoints
            .last()
            .is_some_and(|b| b.tokens == self.tokens)
        {
            return;
        }
        self.breakpoints.push(Breakpoint {
            tokens: self.tokens,
            hash: self.hasher.clone().finalize().into(),
            ttl,
        });
    }
}

/// Prompt tokens of one content block.
fn block_tokens(block: &Value) -> u64 {
    let text = |key: &str| {
        block
            .get(key)
            .and_then(Value::as_str)
            .map_or(0, tokenizer::count)
    };
    match block.get("type").and_then(Value::as_str) {
        Some("text") => text("text"),
        Some("image") => IMAGE_TOKENS,
        Some("document") => {
            let source = block.get("source");
            let body = match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
                Some("text") => source
                    .and_then(|s| s.get("data"))
                    .and_then(Value::as_str)
                    .map_or(0, tokenizer::count),
                Some("content") => content_tokens(source.and_then(|s| s.get("content"))),
                _ => DOCUMENT_TOKENS,
            };
            body + text("title") + text("context")
        }
        Some("tool_use") => {
            text("name")
                + block
                    .get("input")
                    .map_or(0, |i| tokenizer::count(&i.to_string()))
        }
        Some("tool_result") => content_tokens(block.get("content")),
        // The API drops earlier turns' thinking from the prompt.
        Some("thinking" | "redacted_thinking") => 0,
        _ => tokenizer::count(&block.to_string()),
    }
}

/// Tokens of a string or a list of blocks.
fn content_tokens(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(text)) => tokenizer::count(text),
        Some(Value::Array(blocks)) => blocks.iter().map(block_tokens).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: &Value) -> Result<MessagesRequest<'_>, String> {
        MessagesRequest::parse(value, Mode::Create).map_err(|e| e.0)
    }

    fn base() -> Value {
        json!({"model": "claude-sim", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]})
    }

    #[test]
    fn counts_tools_system_messages_and_priming() {
        let body = json!({
            "model": "m", "max_tokens": 10,
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": "Hello, world!"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
                {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}, {"type": "text", "text": "what"}]}
            ]
        });
        let prompt = parse(&body).unwrap().prompt();
        // system 3; messages (3+1+4) + (3+1+1) + (3+1+85+1); priming 3.
        assert_eq!(prompt.total, 3 + 8 + 5 + 90 + 3);
        assert!(prompt.breakpoints.is_empty());
    }

    #[test]
    fn breakpoints_mark_prefixes_without_their_markers() {
        let mut body = base();
        body["system"] = json!([{"type": "text", "text": "alpha beta", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]);
        body["cache_control"] = json!({"type": "ephemeral"});
        let prompt = parse(&body).unwrap().prompt();
        assert_eq!(prompt.breakpoints.len(), 2);
        assert_eq!(prompt.breakpoints[0].tokens, 2);
        assert_eq!(prompt.breakpoints[0].ttl, Ttl::OneHour);
        assert_eq!(prompt.breakpoints[1].tokens, 2 + 3 + 1 + 1);
        assert_eq!(prompt.total, 2 + 5 + 3);

        let mut plain = base();
        plain["system"] =
            json!([{"type": "text", "text": "alpha beta", "cache_control": {"type": "ephemeral"}}]);
        let other = parse(&plain).unwrap().prompt();
        assert_eq!(other.breakpoints[0].hash, prompt.breakpoints[0].hash);
    }

    #[test]
    fn rejects_common_mistakes_naming_the_field() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
                "max_tokens: Field required",
            ),
            (
                json!({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}),
                "model: Field required",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": []}),
                "messages: at least one message",
            ),
            (
                json!({"model": "m", "max_tokens": "1", "messages": [{"role": "user", "content": "x"}]}),
                "max_tokens: Input should be a valid integer",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [{"role": "system", "content": "x"}]}),
                "messages.0.role",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": ""}]}),
                "messages.0: all messages must have non-empty content",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "max_completion_tokens": 3, "messages": [{"role": "user", "content": "x"}]}),
                "max_completion_tokens: Extra inputs",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
                "messages.0.content.0: Input tag 'image_url'",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "x"}}]}]}),
                "messages.0.content.0.source.base64.media_type",
            ),
            (
                json!({"model": "m", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 100}, "messages": [{"role": "user", "content": "x"}]}),
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
            ),
            (
                json!({"model": "m", "max_tokens": 1024, "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [{"role": "user", "content": "x"}]}),
                "`max_tokens` must be greater than `thinking.budget_tokens`",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]}),
                "temperature: Input should be less than or equal to 1",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "tools": [{"name": "a b", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "x"}]}),
                "tools.0.name",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "tools": [{"name": "a"}], "messages": [{"role": "user", "content": "x"}]}),
                "tools.0.input_schema: Field required",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "tool_choice": {"type": "tool", "name": "zz"}, "tools": [{"name": "a", "input_schema": {"type": "object"}}], "messages": [{"role": "user", "content": "x"}]}),
                "tool_choice.name",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}]}),
                "unexpected `tool_use_id`",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "messages": [
                    {"role": "user", "content": "x"},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}}]},
                    {"role": "user", "content": "no result"}
                ]}),
                "messages.1: `tool_use` ids were found without `tool_result`",
            ),
            (
                json!({"model": "m", "max_tokens": 1, "stop_sequences": "x", "messages": [{"role": "user", "content": "x"}]}),
                "stop_sequences: Input should be a valid list",
            ),
        ];
        for (body, want) in cases {
            let got = parse(&body).err().unwrap_or_default();
            assert!(
                got.starts_with(want) || got.contains(want),
                "{body}: {got:?} lacks {want:?}"
            );
        }
        let mut many = base();
        many["system"] = json!((0..5).map(|i| json!({"type": "text", "text": format!("s{i}"), "cache_control": {"type": "ephemeral"}})).collect::<Vec<_>>());
        assert!(parse(&many).err().unwrap().contains("maximum of 4 blocks"));
    }

    #[test]
    fn accepts_the_documented_shapes() {
        let body = json!({
            "model": "m", "max_tokens": 3000,
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            "metadata": {"user_id": "u-1"},
            "temperature": 1, "top_p": 0.99,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "tools": [
                {"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {}}, "cache_control": {"type": "ephemeral"}},
                {"type": "web_search_20250305", "name": "web_search"}
            ],
            "messages": [
                {"role": "user", "content": [
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
                    {"type": "text", "text": "call get_weather"}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xyz"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}], "is_error": false},
                    {"type": "text", "text": "thanks"}
                ]},
                {"role": "user", "content": "merged with the turn before"},
                {"role": "assistant", "content": ""}
            ]
        });
        let parsed = parse(&body).unwrap();
        assert_eq!(parsed.tools.len(), 1);
        assert!(parsed.disable_parallel);
        assert_eq!(
            parsed.thinking,
            Thinking::On {
                budget: Some(2048),
                omitted: false
            }
        );
        assert_eq!(parsed.prompt().breakpoints.len(), 2);
        let count = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        assert!(MessagesRequest::parse(&count, Mode::CountTokens).is_ok());
    }
}
