//! Validation of a v2 Chat request the way Cohere's API rejects the common mistakes — each
//! message names the field (`messages[2].tool_call_id`, `tools[0].function.parameters`) — the
//! prompt's token counts, and the sources an answer can cite.

use serde_json::{json, Map, Value};

use super::Invalid;
use crate::tokenizer;

/// Tokens Cohere's chat template adds per message (role markers), in `tokens` only.
const PER_MESSAGE_TOKENS: u64 = 3;
/// Tokens priming the reply, in `tokens` only.
const REPLY_PRIMING_TOKENS: u64 = 3;
/// Prompt tokens for each image (the simulator does not decode images).
const IMAGE_TOKENS: u64 = 85;
/// Most `stop_sequences` accepted.
const MAX_STOP_SEQUENCES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    Required,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format<'a> {
    Text,
    /// `json_object`, with its optional `json_schema`.
    Json(Option<&'a Value>),
}

/// A function tool the model can call.
pub struct Tool<'a> {
    pub name: &'a str,
    pub parameters: &'a Value,
}

/// The parts of a chat request the simulator acts on, validated.
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: &'a [Value],
    pub stream: bool,
    pub max_tokens: Option<u64>,
    pub stop_sequences: Vec<&'a str>,
    tools_raw: Option<&'a Value>,
    pub tools: Vec<Tool<'a>>,
    pub tool_choice: ToolChoice,
    /// `Some(budget)` when thinking is enabled.
    pub thinking: Option<Option<u64>>,
    pub format: Format<'a>,
    documents: &'a [Value],
    pub citations: bool,
}

/// Prompt tokens as Cohere reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptTokens {
    /// `billed_units.input_tokens`: the prompt's own tokens.
    pub billed: u64,
    /// `tokens.input_tokens`: with the chat template around them.
    pub total: u64,
}

fn invalid(path: &str, problem: &str) -> Invalid {
    Invalid::new(format_args!("{path} {problem}"))
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| invalid(path, "must be an object"))
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, Invalid> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(invalid(&join(path, key), "is required")),
        Some(_) => Err(invalid(&join(path, key), "must be a string")),
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
        Some(_) => Err(invalid(&join(path, key), "must be a string")),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(key, "must be a boolean")),
    }
}

/// An optional number in `lo..=hi`.
fn opt_number(obj: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<(), Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => match v.as_f64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(()),
            Some(_) if hi.is_infinite() => Err(invalid(key, &format!("must be at least {lo}"))),
            Some(_) => Err(invalid(key, &format!("must be between {lo} and {hi}"))),
            None => Err(invalid(key, "must be a number")),
        },
    }
}

/// An optional integer in `lo..=hi`.
fn opt_integer(
    obj: &Map<String, Value>,
    key: &str,
    lo: i64,
    hi: i64,
) -> Result<Option<i64>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (lo..=hi).contains(&n) => Ok(Some(n)),
            Some(_) if hi == i64::MAX => Err(invalid(key, &format!("must be at least {lo}"))),
            Some(_) => Err(invalid(key, &format!("must be between {lo} and {hi}"))),
            None => Err(invalid(key, "must be an integer")),
        },
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn one_of<'a>(value: &'a Value, path: &str, allowed: &[&str]) -> Result<&'a str, Invalid> {
    match value.as_str() {
        Some(s) if allowed.contains(&s) => Ok(s),
        _ => Err(invalid(
            path,
            &format!("must be one of {}", allowed.join(", ")),
        )),
    }
}

/// A part's `type`.
fn part_type<'a>(part: &'a Value, path: &str) -> Result<&'a str, Invalid> {
    string(object(part, path)?, "type", path)
}

/// `content` as a string or a list of parts whose types are `allowed`; returns whether it
/// holds at least one token (or an image).
fn check_content(
    content: Option<&Value>,
    path: &str,
    allowed: &[&str],
    required: bool,
) -> Result<bool, Invalid> {
    let path = join(path, "content");
    match content {
        None | Some(Value::Null) if required => Err(invalid(&path, "is required")),
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(text)) => Ok(tokenizer::count(text) > 0),
        Some(Value::Array(parts)) => {
            let mut any = false;
            for (i, part) in parts.iter().enumerate() {
                let part_path = format!("{path}[{i}]");
                let kind = part_type(part, &part_path)?;
                if !allowed.contains(&kind) {
                    return Err(invalid(
                        &format!("{part_path}.type"),
                        &format!("must be one of {}", allowed.join(", ")),
                    ));
                }
                let obj = object(part, &part_path)?;
                any |= match kind {
                    "text" => tokenizer::count(string(obj, "text", &part_path)?) > 0,
                    "thinking" => tokenizer::count(string(obj, "thinking", &part_path)?) > 0,
                    "image_url" => {
                        let image_path = join(&part_path, "image_url");
                        let image = match obj.get("image_url") {
                            Some(image) => object(image, &image_path)?,
                            None => return Err(invalid(&image_path, "is required")),
                        };
                        string(image, "url", &image_path)?;
                        true
                    }
                    "document" => {
                        let doc_path = join(&part_path, "document");
                        match obj.get("document") {
                            Some(doc) => check_document(doc, &doc_path)?,
                            None => return Err(invalid(&doc_path, "is required")),
                        }
                        true
                    }
                    _ => false,
                };
            }
            Ok(any)
        }
        Some(_) => Err(invalid(
            &path,
            "must be a string or a list of content blocks",
        )),
    }
}

/// A document object: `data` (an object or a string) and an optional string `id`.
fn check_document(doc: &Value, path: &str) -> Result<(), Invalid> {
    let obj = object(doc, path)?;
    match obj.get("data") {
        Some(Value::Object(_) | Value::String(_)) => {}
        None | Some(Value::Null) => return Err(invalid(&join(path, "data"), "is required")),
        Some(_) => return Err(invalid(&join(path, "data"), "must be an object")),
    }
    opt_string(obj, "id", path)?;
    Ok(())
}

/// Checks every message; tool messages must answer a call made earlier.
fn check_messages(messages: &[Value]) -> Result<(), Invalid> {
    let mut call_ids: Vec<&str> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let obj = object(message, &path)?;
        let role = match obj.get("role") {
            None | Some(Value::Null) => return Err(invalid(&join(&path, "role"), "is required")),
            Some(role) => one_of(
                role,
                &join(&path, "role"),
                &["user", "assistant", "system", "tool"],
            )?,
        };
        match role {
            "user" => {
                if !check_content(obj.get("content"), &path, &["text", "image_url"], true)? {
                    return Err(invalid(
                        &join(&path, "content"),
                        "must be at least 1 token long",
                    ));
                }
            }
            "system" => {
                check_content(obj.get("content"), &path, &["text"], true)?;
            }
            "assistant" => {
                let has_content =
                    check_content(obj.get("content"), &path, &["text", "thinking"], false)?;
                opt_string(obj, "tool_plan", &path)?;
                let calls = match obj.get("tool_calls") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(calls)) => calls.as_slice(),
                    Some(_) => {
                        return Err(invalid(&join(&path, "tool_calls"), "must be a list"));
                    }
                };
                for (j, call) in calls.iter().enumerate() {
                    let call_path = format!("{path}.tool_calls[{j}]");
                    let call = object(call, &call_path)?;
                    call_ids.push(string(call, "id", &call_path)?);
                    let function_path = join(&call_path, "function");
                    let function = match call.get("function") {
                        Some(function) => object(function, &function_path)?,
                        None => return Err(invalid(&function_path, "is required")),
                    };
                    string(function, "name", &function_path)?;
                    opt_string(function, "arguments", &function_path)?;
                }
                if !has_content && calls.is_empty() {
                    return Err(invalid(
                        &path,
                        "must have content or tool_calls (assistant message)",
                    ));
                }
            }
            _ => {
                let id = string(obj, "tool_call_id", &path)?;
                if !call_ids.contains(&id) {
                    return Err(invalid(
                        &join(&path, "tool_call_id"),
                        &format!(
                            "'{id}' does not match any tool call of an earlier assistant message"
                        ),
                    ));
                }
                check_content(obj.get("content"), &path, &["text", "document"], true)?;
            }
        }
    }
    Ok(())
}

fn parse_tools(value: Option<&Value>) -> Result<Vec<Tool<'_>>, Invalid> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("tools", "must be a list")),
    };
    let mut tools: Vec<Tool<'_>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("tools[{i}]");
        let obj = object(item, &path)?;
        match obj.get("type") {
            None | Some(Value::Null) => {}
            Some(kind) => {
                one_of(kind, &join(&path, "type"), &["function"])?;
            }
        }
        let function_path = join(&path, "function");
        let function = match obj.get("function") {
            Some(function) => object(function, &function_path)?,
            None => return Err(invalid(&function_path, "is required")),
        };
        let name = string(function, "name", &function_path)?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(
                &join(&function_path, "name"),
                "must be a non-empty string of letters, digits, '_' and '-'",
            ));
        }
        if tools.iter().any(|t| t.name == name) {
            return Err(invalid(
                &join(&function_path, "name"),
                &format!("'{name}' is defined twice"),
            ));
        }
        opt_string(function, "description", &function_path)?;
        let parameters = match function.get("parameters") {
            Some(parameters @ Value::Object(_)) => parameters,
            None | Some(Value::Null) => {
                return Err(invalid(&join(&function_path, "parameters"), "is required"));
            }
            Some(_) => {
                return Err(invalid(
                    &join(&function_path, "parameters"),
                    "must be a JSON schema object",
                ));
            }
        };
        tools.push(Tool { name, parameters });
    }
    Ok(tools)
}

impl<'a> ChatRequest<'a> {
    pub fn parse(value: &'a Value) -> Result<Self, Invalid> {
        let body = value
            .as_object()
            .ok_or_else(|| Invalid::new("the body must be a JSON object"))?;
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.as_str(),
            None | Some(Value::Null) => return Err(invalid("model", "is required")),
            Some(_) => return Err(invalid("model", "must be a non-empty string")),
        };
        let messages = match body.get("messages") {
            Some(Value::Array(messages)) if messages.is_empty() => {
                return Err(invalid("messages", "must contain at least one message"));
            }
            Some(Value::Array(messages)) => messages.as_slice(),
            None | Some(Value::Null) => return Err(invalid("messages", "is required")),
            Some(_) => return Err(invalid("messages", "must be a list of messages")),
        };
        check_messages(messages)?;
        let stream = opt_bool(body, "stream")?.unwrap_or(false);
        opt_bool(body, "strict_tools")?;
        opt_bool(body, "logprobs")?;
        let max_tokens = opt_integer(body, "max_tokens", 1, i64::MAX)?.map(|n| n as u64);
        opt_number(body, "temperature", 0.0, f64::INFINITY)?;
        opt_number(body, "p", 0.01, 0.99)?;
        opt_integer(body, "k", 0, 500)?;
        opt_number(body, "frequency_penalty", 0.0, 1.0)?;
        opt_number(body, "presence_penalty", 0.0, 1.0)?;
        opt_integer(body, "seed", i64::MIN, i64::MAX)?;
        opt_integer(body, "priority", 0, i64::MAX)?;
        if let Some(mode) = body.get("safety_mode").filter(|v| !v.is_null()) {
            one_of(mode, "safety_mode", &["CONTEXTUAL", "STRICT", "OFF"])?;
        }
        let stop_sequences = match body.get("stop_sequences") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.len() > MAX_STOP_SEQUENCES => {
                return Err(invalid(
                    "stop_sequences",
                    &format!("can contain at most {MAX_STOP_SEQUENCES} strings"),
                ));
            }
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| match s.as_str() {
                    Some(s) if !s.is_empty() => Ok(s),
                    _ => Err(invalid(
                        "stop_sequences",
                        "must be a list of non-empty strings",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("stop_sequences", "must be a list of strings")),
        };

        let tools = parse_tools(body.get("tools"))?;
        let tools_raw = body.get("tools").filter(|t| !t.is_null());
        let tool_choice = match body.get("tool_choice") {
            None | Some(Value::Null) => ToolChoice::Auto,
            Some(choice) => match one_of(choice, "tool_choice", &["REQUIRED", "NONE"])? {
                "REQUIRED" => ToolChoice::Required,
                _ => ToolChoice::None,
            },
        };
        if tool_choice == ToolChoice::Required && tools.is_empty() {
            return Err(invalid(
                "tool_choice",
                "REQUIRED needs at least one tool in tools",
            ));
        }

        let documents = match body.get("documents") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(docs)) => {
                for (i, doc) in docs.iter().enumerate() {
                    if !doc.is_string() {
                        check_document(doc, &format!("documents[{i}]"))?;
                    }
                }
                docs.as_slice()
            }
            Some(_) => return Err(invalid("documents", "must be a list")),
        };
        let citations = match body.get("citation_options") {
            None | Some(Value::Null) => true,
            Some(options) => {
                let options = object(options, "citation_options")?;
                match options.get("mode").filter(|m| !m.is_null()) {
                    None => true,
                    Some(mode) => !matches!(
                        one_of(
                            mode,
                            "citation_options.mode",
                            &["ENABLED", "DISABLED", "FAST", "ACCURATE", "OFF"]
                        )?,
                        "DISABLED" | "OFF"
                    ),
                }
            }
        };

        let format = match body.get("response_format") {
            None | Some(Value::Null) => Format::Text,
            Some(format) => {
                let format = object(format, "response_format")?;
                let kind = match format.get("type") {
                    Some(kind) => one_of(kind, "response_format.type", &["text", "json_object"])?,
                    None => return Err(invalid("response_format.type", "is required")),
                };
                let schema = format.get("json_schema").filter(|s| !s.is_null());
                match (kind, schema) {
                    ("text", Some(_)) => {
                        return Err(invalid(
                            "response_format.json_schema",
                            "must not be set when type is text",
                        ));
                    }
                    ("text", None) => Format::Text,
                    (_, Some(schema @ Value::Object(_))) => Format::Json(Some(schema)),
                    (_, Some(_)) => {
                        return Err(invalid(
                            "response_format.json_schema",
                            "must be a JSON schema object",
                        ));
                    }
                    (_, None) => Format::Json(None),
                }
            }
        };
        if matches!(format, Format::Json(_)) && (!tools.is_empty() || !documents.is_empty()) {
            return Err(invalid(
                "response_format",
                "is not supported together with tools or documents",
            ));
        }

        let thinking = match body.get("thinking") {
            None | Some(Value::Null) => None,
            Some(thinking) => {
                let thinking = object(thinking, "thinking")?;
                let kind = match thinking.get("type") {
                    Some(kind) => one_of(kind, "thinking.type", &["enabled", "disabled"])?,
                    None => return Err(invalid("thinking.type", "is required")),
                };
                let budget = match thinking.get("token_budget") {
                    None | Some(Value::Null) => None,
                    Some(v) => match v.as_i64() {
                        Some(n) if n >= 1 => Some(n as u64),
                        _ => {
                            return Err(invalid(
                                "thinking.token_budget",
                                "must be a positive integer",
                            ));
                        }
                    },
                };
                (kind == "enabled").then_some(budget)
            }
        };

        Ok(ChatRequest {
            model,
            messages,
            stream,
            max_tokens,
            stop_sequences,
            tools_raw,
            tools,
            tool_choice,
            thinking,
            format,
            documents,
            citations,
        })
    }

    /// Prompt tokens (see the module docs for the rule).
    pub fn prompt_tokens(&self) -> PromptTokens {
        let mut billed: u64 = self.messages.iter().map(message_tokens).sum();
        if let Some(tools) = self.tools_raw {
            // Key order and whitespace do not change the count, so any serialisation works.
            billed += tokenizer::count(&tools.to_string());
        }
        billed += self
            .documents
            .iter()
            .map(|doc| match doc {
                Value::String(text) => tokenizer::count(text),
                doc => tokenizer::count(&doc.to_string()),
            })
            .sum::<u64>();
        PromptTokens {
            billed,
            total: billed + PER_MESSAGE_TOKENS * self.messages.len() as u64 + REPLY_PRIMING_TOKENS,
        }
    }

    /// Whether the conversation ends with tool results (to be answered with text).
    pub fn answers_tool_results(&self) -> bool {
        self.messages
            .last()
            .is_some_and(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
    }

    /// The last message's text when it is a user message (where tool mentions are looked for).
    pub fn last_user_text(&self) -> String {
        match self.messages.last() {
            Some(m) if m.get("role").and_then(Value::as_str) == Some("user") => {
                content_text(m.get("content"))
            }
            _ => String::new(),
        }
    }

    /// The sources an answer cites: the trailing tool results, then the documents (see the
    /// module docs); empty when citations are off.
    pub fn sources(&self) -> Vec<Value> {
        if !self.citations {
            return Vec::new();
        }
        let mut sources = Vec::new();
        let trailing = self
            .messages
            .iter()
            .rev()
            .take_while(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
            .collect::<Vec<_>>();
        for message in trailing.into_iter().rev() {
            let call_id = message
                .get("tool_call_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let outputs: Vec<Value> = match message.get("content") {
                Some(Value::String(text)) => tool_outputs(text),
                Some(Value::Array(parts)) => parts
                    .iter()
                    .flat_map(|part| match part.get("type").and_then(Value::as_str) {
                        Some("document") => {
                            vec![document_data(
                                part.get("document").and_then(|d| d.get("data")),
                            )]
                        }
                        _ => tool_outputs(part.get("text").and_then(Value::as_str).unwrap_or("")),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (k, output) in outputs.into_iter().enumerate() {
                sources.push(
                    json!({"type": "tool", "id": format!("{call_id}:{k}"), "tool_output": output}),
                );
            }
        }
        for (i, doc) in self.documents.iter().enumerate() {
            let default_id = format!("doc:{i}");
            let (id, mut document) = match doc {
                Value::String(text) => (default_id, json!({"text": text})),
                doc => (
                    doc.get("id")
                        .and_then(Value::as_str)
                        .map_or(default_id, str::to_owned),
                    document_data(doc.get("data")),
                ),
            };
            if let Some(obj) = document.as_object_mut() {
                obj.insert("id".to_owned(), Value::String(id.clone()));
            }
            sources.push(json!({"type": "document", "id": id, "document": document}));
        }
        sources
    }
}

/// A tool result's outputs: a JSON object, each object of a JSON array, or `{"text": ...}`.
fn tool_outputs(text: &str) -> Vec<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(object @ Value::Object(_)) => vec![object],
        Ok(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_object) => items,
        _ => vec![json!({"text": text})],
    }
}

/// A document's `data` as an object (`{"text": ...}` for string data).
fn document_data(data: Option<&Value>) -> Value {
    match data {
        Some(data @ Value::Object(_)) => data.clone(),
        Some(Value::String(text)) => json!({"text": text}),
        _ => json!({}),
    }
}

/// The text of a `content` (text parts joined).
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Billed tokens of one message.
fn message_tokens(message: &Value) -> u64 {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map_or(0, tokenizer::count);
    let content = match message.get("content") {
        Some(Value::String(text)) => tokenizer::count(text),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => text(part.get("text")),
                Some("thinking") => text(part.get("thinking")),
                Some("image_url") => IMAGE_TOKENS,
                Some("document") => {
                    part.get("document")
                        .and_then(|d| d.get("data"))
                        .map_or(0, |data| match data {
                            Value::String(s) => tokenizer::count(s),
                            data => tokenizer::count(&data.to_string()),
                        })
                }
                _ => 0,
            })
            .sum(),
        _ => 0,
    };
    let calls: u64 = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map_or(0, |calls| {
            calls
                .iter()
                .map(|call| {
                    let function = call.get("function");
                    text(function.and_then(|f| f.get("name")))
                        + text(function.and_then(|f| f.get("arguments")))
                })
                .sum()
        });
    content + text(message.get("tool_plan")) + calls
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &Value) -> Result<ChatRequest<'_>, String> {
        ChatRequest::parse(value).map_err(|e| e.0)
    }

    fn tool_turn() -> Value {
        json!([
            {"role": "user", "content": "call get_weather"},
            {"role": "assistant", "tool_plan": "I will.", "tool_calls": [
                {"id": "get_weather_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "get_weather_abc", "content": "[{\"temp\": 21}, {\"sky\": \"clear\"}]"}
        ])
    }

    #[test]
    fn counts_billed_and_template_tokens() {
        let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello, world!"}, {"type": "image_url", "image_url": {"url": "data:x"}}]}
        ]});
        let tokens = parse(&body).unwrap().prompt_tokens();
        assert_eq!(tokens.billed, 3 + 4 + 85);
        assert_eq!(tokens.total, tokens.billed + 2 * 3 + 3);
        let tools = json!({"model": "m", "messages": tool_turn()});
        // "call get_weather" 4; plan 3 + name 3 + args 9; the tool output 19.
        assert_eq!(parse(&tools).unwrap().prompt_tokens().billed, 4 + 15 + 19);
    }

    #[test]
    fn tool_results_become_sources() {
        let body = json!({"model": "m", "messages": tool_turn(), "documents": ["plain", {"id": "d1", "data": {"title": "T"}}]});
        let parsed = parse(&body).unwrap();
        assert!(parsed.answers_tool_results());
        let sources = parsed.sources();
        assert_eq!(sources.len(), 4);
        assert_eq!(
            sources[0],
            json!({"type": "tool", "id": "get_weather_abc:0", "tool_output": {"temp": 21}})
        );
        assert_eq!(sources[1]["id"], "get_weather_abc:1");
        assert_eq!(
            sources[2],
            json!({"type": "document", "id": "doc:0", "document": {"id": "doc:0", "text": "plain"}})
        );
        assert_eq!(sources[3]["document"], json!({"id": "d1", "title": "T"}));
        let mut off = body.clone();
        off["citation_options"] = json!({"mode": "OFF"});
        assert!(parse(&off).unwrap().sources().is_empty());
    }

    #[test]
    fn rejects_common_mistakes_naming_the_field() {
        let user = json!([{"role": "user", "content": "hi"}]);
        let cases: Vec<(Value, &str)> = vec![
            (json!({"messages": user}), "model is required"),
            (json!({"model": "m"}), "messages is required"),
            (
                json!({"model": "m", "messages": []}),
                "messages must contain at least one message",
            ),
            (
                json!({"model": "m", "messages": [{"role": "bot", "content": "x"}]}),
                "messages[0].role must be one of",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": " "}]}),
                "messages[0].content must be at least 1 token long",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "url": "x"}]}]}),
                "messages[0].content[0].type must be one of text, image_url",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "{}"}]}),
                "messages[1].tool_call_id 'nope' does not match",
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant"}]}),
                "messages[0] must have content or tool_calls",
            ),
            (
                json!({"model": "m", "messages": user, "max_tokens": 0}),
                "max_tokens must be at least 1",
            ),
            (
                json!({"model": "m", "messages": user, "p": 1.5}),
                "p must be between 0.01 and 0.99",
            ),
            (
                json!({"model": "m", "messages": user, "stop_sequences": ["a", "b", "c", "d", "e", "f"]}),
                "stop_sequences can contain at most 5",
            ),
            (
                json!({"model": "m", "messages": user, "tool_choice": "auto", "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}),
                "tool_choice must be one of REQUIRED, NONE",
            ),
            (
                json!({"model": "m", "messages": user, "tool_choice": "REQUIRED"}),
                "tool_choice REQUIRED needs at least one tool",
            ),
            (
                json!({"model": "m", "messages": user, "tools": [{"type": "function", "function": {"name": "f"}}]}),
                "tools[0].function.parameters is required",
            ),
            (
                json!({"model": "m", "messages": user, "response_format": {"type": "json_schema"}}),
                "response_format.type must be one of text, json_object",
            ),
            (
                json!({"model": "m", "messages": user, "thinking": {"type": "on"}}),
                "thinking.type must be one of enabled, disabled",
            ),
            (
                json!({"model": "m", "messages": user, "documents": [{"id": "x"}]}),
                "documents[0].data is required",
            ),
        ];
        for (body, want) in cases {
            let got = parse(&body).err().unwrap_or_default();
            assert!(
                got.starts_with("invalid request: ") && got.contains(want),
                "{body}: {got:?} lacks {want:?}"
            );
        }
    }
}
