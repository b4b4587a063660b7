//! `POST /{upstream}/v1/chat/completions`: validation, prompt token counting, the simulated
//! answer (text, JSON for `response_format`, or tool calls), and its non-streaming and SSE forms.
//! Azure OpenAI's chat completions are served by the same code with Azure's additions (see
//! [`super::azure`]), and Vertex AI's OpenAI-compatible endpoint by the same code unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::azure::{self, Filter};
use super::{admit, invalid, not_json, now_unix, Invalid, OpenAi};
use crate::control::{Behaviour, Sim};
use crate::exchange::{self, pace_whole, stream_response, Admitted, Event, Events, Wire};
use crate::generate::{hex, json_for_schema, request_hash, words, Rng};
use crate::tokenizer;

/// Prompt tokens for each message, before its role and content.
const PER_MESSAGE_TOKENS: u64 = 3;
/// Prompt tokens priming the assistant's reply.
const REPLY_PRIMING_TOKENS: u64 = 3;
/// Prompt tokens for each image content part.
const IMAGE_TOKENS: u64 = 85;

/// Keys that do not change what a request generates (streamed and not, the same answer).
const NON_SEMANTIC_KEYS: &[&str] = &["stream", "stream_options"];

pub async fn chat_completions(
    State(sim): State<Arc<Sim>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    match admit(&sim, &name, request).await {
        Ok(admitted) => respond::<OpenAi>(admitted, None).await,
        Err(response) => response,
    }
}

/// Answers an admitted chat request: as OpenAI does, or with `azure` (the deployment's model)
/// as Azure OpenAI does — `model` optional in the body, the deployment's model in the answer,
/// content-filter annotations, and the content-filter triggers of [`super::azure`].
pub(crate) async fn respond<W: Wire>(admitted: Admitted, azure: Option<&str>) -> Response {
    let Some(value) = admitted.json() else {
        return not_json();
    };
    let chat = match ChatRequest::parse(&value, azure.is_none()) {
        Ok(chat) => chat,
        Err(invalid) => return invalid.into_response(),
    };
    let filter = match azure {
        Some(_) => {
            let filter =
                azure::filter_for(chat.messages.iter().map(|m| content_text(m.get("content"))));
            if let Filter::Prompt(category) = filter {
                return azure::prompt_filtered(category);
            }
            filter
        }
        None => Filter::None,
    };
    let model = azure.unwrap_or(chat.model);
    admitted.upstream.note_model(model);

    let hash = request_hash(&value, NON_SEMANTIC_KEYS);
    let mut rng = Rng::from_hash(&hash);
    let mut answer = chat.answer(&admitted.behaviour, &mut rng);
    if filter == Filter::Output {
        answer.filter_output();
    }
    let prompt_tokens = chat.prompt_tokens();
    let completion_tokens = answer.completion_tokens();
    let usage = Usage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
        prompt_tokens_details: PromptDetails {
            cached_tokens: 0,
            audio_tokens: 0,
        },
        completion_tokens_details: CompletionDetails {
            reasoning_tokens: 0,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0,
        },
    };
    let id = completion_id(&hash);
    let created = now_unix();

    if chat.stream {
        let stream = ChatStream::new(
            &id,
            created,
            model,
            answer,
            chat.include_usage.then_some(usage),
            azure.is_some(),
        );
        return stream_response::<W>(stream, &admitted.behaviour, admitted.body_fault);
    }

    pace_whole(&admitted.behaviour, completion_tokens).await;
    let (content, tool_calls, finish_reason) = match &answer {
        Answer::Text {
            content, finish, ..
        } => (Some(content.as_str()), None, *finish),
        Answer::Calls(calls) => {
            let calls = calls
                .iter()
                .map(|c| ToolCallOut {
                    id: &c.id,
                    kind: "function",
                    function: FunctionOut {
                        name: &c.name,
                        arguments: &c.arguments,
                    },
                })
                .collect();
            (None, Some(calls), "tool_calls")
        }
    };
    let completion = Completion {
        id: &id,
        object: "chat.completion",
        created,
        model,
        choices: [CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content,
                tool_calls,
                refusal: None,
                annotations: &[],
            },
            logprobs: None,
            finish_reason,
            content_filter_results: azure
                .is_some()
                .then(|| azure::choice_results(finish_reason == "content_filter")),
        }],
        usage: &usage,
        service_tier: azure.is_none().then_some("default"),
        system_fingerprint: "fp_sim",
        prompt_filter_results: azure.is_some().then(azure::prompt_results),
    };
    match serde_json::to_vec(&completion) {
        Ok(bytes) => exchange::json_body::<W>(bytes, admitted.body_fault),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `chatcmpl-` + a prefix of the request hash + a process-wide counter, so the same request
/// replayed still gets a distinct id (gateways key generations by it).
fn completion_id(hash: &[u8; 32]) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "chatcmpl-{}{:012x}",
        hex(&hash[..6]),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The parts of a chat request the simulator acts on, validated.
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [Value],
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u64>,
    tools: Vec<Tool<'a>>,
    tools_raw: Option<&'a Value>,
    tool_choice: ToolChoice<'a>,
    parallel_tool_calls: bool,
    format: Format<'a>,
}

struct Tool<'a> {
    name: &'a str,
    parameters: Option<&'a Value>,
}

enum ToolChoice<'a> {
    Auto,
    None,
    Required,
    Named(&'a str),
}

enum Format<'a> {
    Text,
    JsonObject,
    JsonSchema(Option<&'a Value>),
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> Invalid {
    let message = format!(
        "Invalid type for '{param}': expected {expected}, but got {} instead.",
        json_type(got)
    );
    invalid(message, Some(param), Some("invalid_type"))
}

fn missing(param: &str) -> Invalid {
    let message = format!("Missing required parameter: '{param}'.");
    invalid(message, Some(param), Some("missing_required_parameter"))
}

/// An optional boolean parameter (`null` counts as absent).
fn opt_bool(obj: &Value, key: &str, param: &str) -> Result<Option<bool>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(param, "a boolean", other)),
    }
}

/// An optional integer parameter that must be at least 1.
fn opt_positive(obj: &Value, key: &str) -> Result<Option<u64>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if n >= 1 => Ok(Some(n as u64)),
            Some(n) => {
                let message = format!(
                    "Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {n} instead."
                );
                Err(invalid(message, Some(key), Some("integer_below_min_value")))
            }
            None => Err(wrong_type(key, "an integer", v)),
        },
    }
}

impl<'a> ChatRequest<'a> {
    /// Validates `value`; `model_required` is false where the URL names the model (Azure).
    fn parse(value: &'a Value, model_required: bool) -> Result<Self, Invalid> {
        if !value.is_object() {
            return Err(wrong_type("body", "an object", value));
        }
        let model = match value.get("model") {
            Some(Value::String(model)) => model.as_str(),
            None | Some(Value::Null) if !model_required => "",
            None | Some(Value::Null) => {
                return Err(invalid("you must provide a model parameter", None, None));
            }
            Some(other) => return Err(wrong_type("model", "a string", other)),
        };
        let messages = match value.get("messages") {
            Some(Value::Array(messages)) if messages.is_empty() => {
                return Err(invalid(
                    "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                    Some("messages"),
                    Some("empty_array"),
                ));
            }
            Some(Value::Array(messages)) => messages.as_slice(),
            None | Some(Value::Null) => return Err(missing("messages")),
            Some(other) => return Err(wrong_type("messages", "an array of objects", other)),
        };
        for (i, message) in messages.iter().enumerate() {
            if !message.is_object() {
                return Err(wrong_type(&format!("messages[{i}]"), "an object", message));
            }
            match message.get("role") {
                Some(Value::String(_)) => {}
                None | Some(Value::Null) => return Err(missing(&format!("messages[{i}].role"))),
                Some(other) => {
                    return Err(wrong_type(
                        &format!("messages[{i}].role"),
                        "a string",
                        other,
                    ))
                }
            }
        }
        let stream = opt_bool(value, "stream", "stream")?.unwrap_or(false);
        let include_usage = match value.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(options @ Value::Object(_)) => {
                opt_bool(options, "include_usage", "stream_options.include_usage")?.unwrap_or(false)
            }
            Some(other) => return Err(wrong_type("stream_options", "an object", other)),
        };
        // max_completion_tokens supersedes the deprecated max_tokens when both are given.
        let max_tokens = match opt_positive(value, "max_completion_tokens")? {
            Some(n) => Some(n),
            None => opt_positive(value, "max_tokens")?,
        };
        let (tools, tools_raw) = match value.get("tools") {
            None | Some(Value::Null) => (Vec::new(), None),
            Some(raw @ Value::Array(items)) => (parse_tools(items)?, Some(raw)),
            Some(other) => return Err(wrong_type("tools", "an array", other)),
        };
        let tool_choice = parse_tool_choice(value.get("tool_choice"), &tools)?;
        let parallel_tool_calls =
            opt_bool(value, "parallel_tool_calls", "parallel_tool_calls")?.unwrap_or(true);
        let format = parse_response_format(value.get("response_format"))?;
        Ok(ChatRequest {
            model,
            messages,
            stream,
            include_usage,
            max_tokens,
            tools,
            tools_raw,
            tool_choice,
            parallel_tool_calls,
            format,
        })
    }

    /// Prompt tokens: per message, 3 plus the tokens of its role, content (text parts by the
    /// tokenizer, 85 per image), tool call names and arguments, and `name`; plus 3 priming the
    /// reply; plus the tokens of the `tools` JSON if given.
    fn prompt_tokens(&self) -> u64 {
        let mut total = REPLY_PRIMING_TOKENS;
        for message in self.messages {
            total += PER_MESSAGE_TOKENS;
            total += message
                .get("role")
                .and_then(Value::as_str)
                .map_or(0, tokenizer::count);
            total += content_tokens(message.get("content"));
            total += message
                .get("name")
                .and_then(Value::as_str)
                .map_or(0, tokenizer::count);
            if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
                for call in calls {
                    let function = call.get("function");
                    for key in ["name", "arguments"] {
                        let text = function.and_then(|f| f.get(key)).and_then(Value::as_str);
                        total += text.map_or(0, tokenizer::count);
                    }
                }
            }
        }
        if let Some(tools) = self.tools_raw {
            // Key order and whitespace do not change the count, so any serialisation works.
            total += tokenizer::count(&tools.to_string());
        }
        total
    }

    /// The simulated model's reply.
    fn answer(&self, behaviour: &Behaviour, rng: &mut Rng) -> Answer {
        let chosen = self.chosen_tools();
        if !chosen.is_empty() {
            let calls = chosen
                .into_iter()
                .map(|tool| {
                    let mut call_rng = rng.fork();
                    let id = format!(
                        "call_{:016x}{:08x}",
                        call_rng.next_u64(),
                        call_rng.next_u64() as u32
                    );
                    let default_schema = serde_json::json!({"type": "object", "properties": {}});
                    let schema = tool.parameters.unwrap_or(&default_schema);
                    let arguments = json_for_schema(schema, &mut call_rng).to_string();
                    Call {
                        id,
                        name: tool.name.to_owned(),
                        arguments,
                    }
                })
                .collect();
            return Answer::Calls(calls);
        }
        let mut text_rng = rng.fork();
        let wanted = behaviour.output_tokens;
        let n = self.max_tokens.map_or(wanted, |cap| cap.min(wanted));
        let finish = if n < wanted { "length" } else { "stop" };
        let content = match self.format {
            Format::Text => words(&mut text_rng, n),
            Format::JsonObject => {
                serde_json::json!({"answer": words(&mut text_rng, n)}).to_string()
            }
            Format::JsonSchema(schema) => {
                let any = serde_json::json!({});
                json_for_schema(schema.unwrap_or(&any), &mut text_rng).to_string()
            }
        };
        let finish = if matches!(self.format, Format::Text) {
            finish
        } else {
            "stop"
        };
        Answer::Text { content, finish }
    }

    /// Tools to call: the named one; else those whose names the last user message mentions
    /// (in `tools` order, only the first unless parallel calls are allowed); for `required`
    /// with no mention, the first tool. With `auto`, tool results as the last message get a
    /// text answer, as a model that has what it asked for would give.
    fn chosen_tools(&self) -> Vec<&Tool<'a>> {
        let answered = self
            .messages
            .last()
            .and_then(|m| m.get("role"))
            .and_then(Value::as_str)
            == Some("tool");
        let mentioned = || -> Vec<&Tool<'a>> {
            let text = self
                .messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .map(|m| content_text(m.get("content")))
                .unwrap_or_default();
            self.tools
                .iter()
                .filter(|t| text.contains(t.name))
                .collect()
        };
        let mut chosen = match self.tool_choice {
            ToolChoice::None => Vec::new(),
            ToolChoice::Named(name) => self
                .tools
                .iter()
                .filter(|t| t.name == name)
                .take(1)
                .collect(),
            ToolChoice::Auto if answered => Vec::new(),
            ToolChoice::Auto => mentioned(),
            ToolChoice::Required => {
                let found = mentioned();
                if found.is_empty() {
                    self.tools.iter().take(1).collect()
                } else {
                    found
                }
            }
        };
        if !self.parallel_tool_calls {
            chosen.truncate(1);
        }
        chosen
    }
}

fn parse_tools(items: &[Value]) -> Result<Vec<Tool<'_>>, Invalid> {
    let mut tools = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(wrong_type(&format!("tools[{i}]"), "an object", item));
        }
        // Only function tools can be called; other kinds are accepted and ignored.
        if item.get("type").and_then(Value::as_str) != Some("function") {
            continue;
        }
        let Some(function) = item.get("function").filter(|f| f.is_object()) else {
            return Err(missing(&format!("tools[{i}].function")));
        };
        let name = match function.get("name") {
            Some(Value::String(name)) if !name.is_empty() => name.as_str(),
            _ => return Err(missing(&format!("tools[{i}].function.name"))),
        };
        let parameters = function.get("parameters").filter(|p| p.is_object());
        tools.push(Tool { name, parameters });
    }
    Ok(tools)
}

fn parse_tool_choice<'a>(
    value: Option<&'a Value>,
    tools: &[Tool<'a>],
) -> Result<ToolChoice<'a>, Invalid> {
    let choice = match value {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => return Ok(ToolChoice::None),
            "required" => ToolChoice::Required,
            other => {
                let message = format!(
                    "Invalid value: '{other}'. Supported values are: 'none', 'auto', and 'required'."
                );
                return Err(invalid(message, Some("tool_choice"), Some("invalid_value")));
            }
        },
        Some(obj @ Value::Object(_)) => {
            match obj
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) => ToolChoice::Named(name),
                // Other shapes (e.g. allowed_tools) behave like auto here.
                None => ToolChoice::Auto,
            }
        }
        Some(other) => return Err(wrong_type("tool_choice", "a string or an object", other)),
    };
    if tools.is_empty() && !matches!(choice, ToolChoice::Auto) {
        return Err(invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            Some("tool_choice"),
            None,
        ));
    }
    if let ToolChoice::Named(name) = choice {
        if !tools.iter().any(|t| t.name == name) {
            let message = format!("Tool choice '{name}' not found in 'tools' parameter.");
            return Err(invalid(message, Some("tool_choice"), None));
        }
    }
    Ok(choice)
}

fn parse_response_format(value: Option<&Value>) -> Result<Format<'_>, Invalid> {
    let format = match value {
        None | Some(Value::Null) => return Ok(Format::Text),
        Some(format @ Value::Object(_)) => format,
        Some(other) => return Err(wrong_type("response_format", "an object", other)),
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(Format::Text),
        Some("json_object") => Ok(Format::JsonObject),
        Some("json_schema") => {
            let Some(spec) = format.get("json_schema").filter(|s| s.is_object()) else {
                return Err(missing("response_format.json_schema"));
            };
            if spec.get("name").and_then(Value::as_str).is_none() {
                return Err(missing("response_format.json_schema.name"));
            }
            Ok(Format::JsonSchema(
                spec.get("schema").filter(|s| s.is_object()),
            ))
        }
        Some(other) => {
            let message = format!(
                "Invalid value: '{other}'. Supported values are: 'text', 'json_object', and 'json_schema'."
            );
            Err(invalid(
                message,
                Some("response_format.type"),
                Some("invalid_value"),
            ))
        }
        None => Err(missing("response_format.type")),
    }
}

/// Tokens of a message's `content`: a string, or parts (text by the tokenizer, 85 per image,
/// refusals by their text; audio and file parts count nothing).
fn content_tokens(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(text)) => tokenizer::count(text),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => part
                    .get("text")
                    .and_then(Value::as_str)
                    .map_or(0, tokenizer::count),
                Some("image_url" | "image") => IMAGE_TOKENS,
                Some("refusal") => part
                    .get("refusal")
                    .and_then(Value::as_str)
                    .map_or(0, tokenizer::count),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// The text of a message's `content` (text parts joined), for spotting tool mentions.
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

/// What the simulated model replies.
enum Answer {
    Text {
        content: String,
        finish: &'static str,
    },
    Calls(Vec<Call>),
}

struct Call {
    id: String,
    name: String,
    arguments: String,
}

impl Answer {
    /// Azure's output filter: a text answer stops halfway, with `finish_reason`
    /// `content_filter` (tool calls pass unfiltered).
    fn filter_output(&mut self) {
        if let Answer::Text { content, finish } = self {
            let ends = tokenizer::piece_ends(content);
            let keep = ends.len() / 2;
            let cut = if keep == 0 { 0 } else { ends[keep - 1] };
            content.truncate(cut);
            *finish = "content_filter";
        }
    }

    fn completion_tokens(&self) -> u64 {
        match self {
            Answer::Text { content, .. } => tokenizer::count(content),
            Answer::Calls(calls) => calls
                .iter()
                .map(|c| tokenizer::count(&c.name) + tokenizer::count(&c.arguments))
                .sum(),
        }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: &'a Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_tier: Option<&'static str>,
    system_fingerprint: &'static str,
    /// Azure only.
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_filter_results: Option<Value>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
    /// Azure only.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_filter_results: Option<Value>,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCallOut<'a>>>,
    refusal: Option<()>,
    annotations: &'static [u8],
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
    audio_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
    audio_tokens: u64,
    accepted_prediction_tokens: u64,
    rejected_prediction_tokens: u64,
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Where the SSE stream is: events are rendered one at a time, so an open stream holds only
/// the answer, not its serialised chunks.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Azure's opening chunk: no choices, the prompt's filter results.
    PromptFilter,
    Role,
    Text(usize),
    CallHead(usize),
    CallArgs(usize, usize),
    Finish,
    Usage,
    Done,
    End,
}

/// The chunks of one streamed completion, as OpenAI sends them.
struct ChatStream {
    /// Every chunk's opening, up to and including `"choices":[`.
    prefix: String,
    /// Closes a chunk with choices: `]}` or, with usage requested, `],"usage":null}`.
    suffix: &'static str,
    answer: Answer,
    /// Token piece boundaries: of the content, or of each call's arguments.
    pieces: Vec<Vec<usize>>,
    usage: Option<String>,
    /// Azure's content-filter annotations on every chunk.
    azure: bool,
    step: Step,
}

impl ChatStream {
    fn new(
        id: &str,
        created: u64,
        model: &str,
        answer: Answer,
        usage: Option<Usage>,
        azure: bool,
    ) -> Self {
        let service_tier = if azure {
            ""
        } else {
            r#""service_tier":"default","#
        };
        let prefix = format!(
            r#"{{"id":{},"object":"chat.completion.chunk","created":{created},"model":{},{service_tier}"system_fingerprint":"fp_sim","choices":["#,
            quote(id),
            quote(model),
        );
        let pieces = match &answer {
            Answer::Text { content, .. } => vec![tokenizer::piece_ends(content)],
            Answer::Calls(calls) => calls
                .iter()
                .map(|c| tokenizer::piece_ends(&c.arguments))
                .collect(),
        };
        let usage = usage.and_then(|u| serde_json::to_string(&u).ok());
        let suffix = if usage.is_some() {
            r#"],"usage":null}"#
        } else {
            "]}"
        };
        ChatStream {
            prefix,
            suffix,
            answer,
            pieces,
            usage,
            azure,
            step: if azure {
                Step::PromptFilter
            } else {
                Step::Role
            },
        }
    }

    fn chunk(&self, delta: &str, finish_reason: Option<&str>) -> Bytes {
        let finish = finish_reason.map_or_else(|| "null".to_owned(), quote);
        let filter = if !self.azure {
            String::new()
        } else {
            // Azure annotates content it has checked; the role, tool-call and finish chunks
            // carry empty results unless the output was filtered.
            let results = match (finish_reason, delta.starts_with(r#"{"content""#)) {
                (Some("content_filter"), _) => azure::choice_results(true),
                (None, true) => azure::choice_results(false),
                _ => Value::Object(serde_json::Map::new()),
            };
            format!(r#""content_filter_results":{results},"#)
        };
        Bytes::from(format!(
            r#"data: {}{{{filter}"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}{}

"#,
            self.prefix, self.suffix
        ))
    }

    fn piece(&self, list: usize, index: usize) -> &str {
        let ends = &self.pieces[list];
        let start = if index == 0 { 0 } else { ends[index - 1] };
        let text = match &self.answer {
            Answer::Text { content, .. } => content.as_str(),
            Answer::Calls(calls) => calls[list].arguments.as_str(),
        };
        &text[start..ends[index]]
    }

    fn call_head(&self, index: usize, with_role: bool) -> String {
        let Answer::Calls(calls) = &self.answer else {
            return String::new();
        };
        let call = &calls[index];
        let tool_calls = format!(
            r#"[{{"index":{index},"id":{},"type":"function","function":{{"name":{},"arguments":""}}}}]"#,
            quote(&call.id),
            quote(&call.name)
        );
        if with_role {
            format!(
                r#"{{"role":"assistant","content":null,"tool_calls":{tool_calls},"refusal":null}}"#
            )
        } else {
            format!(r#"{{"tool_calls":{tool_calls}}}"#)
        }
    }

    /// The step after the last piece of call `call`.
    fn after_call(&self, call: usize) -> Step {
        if call + 1 < self.pieces.len() {
            Step::CallHead(call + 1)
        } else {
            Step::Finish
        }
    }
}

impl Events for ChatStream {
    fn next_event(&mut self) -> Option<Event> {
        let event = |bytes, token| {
            Some(Event {
                bytes,
                token,
                last: false,
            })
        };
        match self.step {
            Step::PromptFilter => {
                self.step = Step::Role;
                event(
                    Bytes::from(format!(
                        "data: {{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":{}}}\n\n",
                        azure::prompt_results()
                    )),
                    false,
                )
            }
            Step::Role => match &self.answer {
                Answer::Text { .. } => {
                    self.step = if self.pieces[0].is_empty() {
                        Step::Finish
                    } else {
                        Step::Text(0)
                    };
                    event(
                        self.chunk(r#"{"role":"assistant","content":"","refusal":null}"#, None),
                        false,
                    )
                }
                Answer::Calls(_) => {
                    self.step = if self.pieces[0].is_empty() {
                        self.after_call(0)
                    } else {
                        Step::CallArgs(0, 0)
                    };
                    event(self.chunk(&self.call_head(0, true), None), false)
                }
            },
            Step::Text(i) => {
                self.step = if i + 1 < self.pieces[0].len() {
                    Step::Text(i + 1)
                } else {
                    Step::Finish
                };
                let delta = format!(r#"{{"content":{}}}"#, quote(self.piece(0, i)));
                event(self.chunk(&delta, None), true)
            }
            Step::CallHead(c) => {
                self.step = if self.pieces[c].is_empty() {
                    self.after_call(c)
                } else {
                    Step::CallArgs(c, 0)
                };
                event(self.chunk(&self.call_head(c, false), None), false)
            }
            Step::CallArgs(c, i) => {
                self.step = if i + 1 < self.pieces[c].len() {
                    Step::CallArgs(c, i + 1)
                } else {
                    self.after_call(c)
                };
                let delta = format!(
                    r#"{{"tool_calls":[{{"index":{c},"function":{{"arguments":{}}}}}]}}"#,
                    quote(self.piece(c, i))
                );
                event(self.chunk(&delta, None), true)
            }
            Step::Finish => {
                self.step = if self.usage.is_some() {
                    Step::Usage
                } else {
                    Step::Done
                };
                let finish = match &self.answer {
                    Answer::Text { finish, .. } => *finish,
                    Answer::Calls(_) => "tool_calls",
                };
                event(self.chunk("{}", Some(finish)), false)
            }
            Step::Usage => {
                self.step = Step::Done;
                let usage = self.usage.as_deref().unwrap_or("null");
                event(
                    Bytes::from(format!("data: {}],\"usage\":{usage}}}\n\n", self.prefix)),
                    false,
                )
            }
            Step::Done => {
                self.step = Step::End;
                Some(Event {
                    bytes: Bytes::from_static(b"data: [DONE]\n\n"),
                    token: false,
                    last: true,
                })
            }
            Step::End => None,
        }
    }
}
