//! The Converse (and ConverseStream) request body, validated as Bedrock documents it, and the
//! prompt's tokens and cacheable prefixes.
//!
//! Messages follow Bedrock's own sentences where its documentation or its users' reports give
//! them ("A conversation must start with a user message. ...", "The toolConfig field must be
//! defined when using toolUse and toolResult content blocks.", "Expected toolResult blocks at
//! messages.2.content for the following Ids: ..."), Coral's constraint form for enums and ranges
//! ("1 validation error detected: Value '0' at 'inferenceConfig.maxTokens' failed to satisfy
//! constraint: Member must have value greater than or equal to 1"), and Bedrock's schema form
//! for wrong types and unknown keys ("Malformed input request: #/inferenceConfig: extraneous key
//! [foo] is not permitted, please reformat your input and try again."). Claude's own checks on
//! `additionalModelRequestFields.thinking` come back as "The model returned the following
//! errors: ...", as Bedrock relays them.
//!
//! Left out: prompt ARNs with `promptVariables` (accepted, not resolved), S3 sources (accepted,
//! counted like inline ones), per-model limits on images, documents and tool choice.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::generate::hash_canonical;
use crate::tokenizer;

/// Prompt tokens of an image (any size).
pub const IMAGE_TOKENS: u64 = 85;
/// Prompt tokens of a binary document, a video or an audio clip.
pub const MEDIA_TOKENS: u64 = 1000;
/// Chat-template tokens around each message, besides its role.
pub const PER_MESSAGE_TOKENS: u64 = 3;
/// Chat-template tokens priming the reply.
pub const REPLY_PRIMING_TOKENS: u64 = 3;
/// Smallest `budget_tokens` Claude accepts for extended thinking.
pub const MIN_THINKING_BUDGET: u64 = 1024;

const TOP_LEVEL_KEYS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
];

const CONTENT_BLOCK_KINDS: &[&str] = &[
    "text",
    "image",
    "document",
    "video",
    "audio",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
    "citationsContent",
    "searchResult",
];

const IMAGE_FORMATS: &[&str] = &["png", "jpeg", "gif", "webp"];
const DOCUMENT_FORMATS: &[&str] = &[
    "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md",
];

/// A 400 `ValidationException` with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// A cache entry's lifetime, from `cachePoint.ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    FiveMinutes,
    OneHour,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    Off,
    /// `budget` is `None` for adaptive thinking and Nova's `reasoningConfig`.
    On {
        budget: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolChoice<'a> {
    Auto,
    Any,
    Tool(&'a str),
}

/// A tool the model can call (`toolSpec`).
pub struct Tool<'a> {
    pub name: &'a str,
    pub input_schema: &'a Value,
}

/// The parts of a request the simulator acts on, validated.
pub struct ConverseRequest<'a> {
    pub messages: &'a [Value],
    system: &'a [Value],
    /// Every `toolConfig.tools` entry, cache points included (they shape the prompt).
    tools_raw: &'a [Value],
    pub tools: Vec<Tool<'a>>,
    pub tool_choice: ToolChoice<'a>,
    pub max_tokens: Option<u64>,
    pub stop_sequences: Vec<&'a str>,
    pub thinking: Thinking,
    /// The JSON schema of `outputConfig.textFormat`, for structured output.
    pub format: Option<Value>,
    pub guardrail: bool,
    pub response_paths: Vec<&'a str>,
    /// Echoed back in the response, as Bedrock does.
    pub performance: Option<&'a Value>,
    pub service_tier: Option<&'a Value>,
}

/// A cacheable prompt prefix, ending at a `cachePoint`.
#[derive(Debug, Clone)]
pub struct Breakpoint {
    /// Prompt tokens from the start through the block before the cache point.
    pub tokens: u64,
    /// Identity of the prefix: the model and every block before the cache point.
    pub hash: [u8; 32],
    pub ttl: Ttl,
}

/// The prompt's token count and its cacheable prefixes, shortest first.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub total: u64,
    pub breakpoints: Vec<Breakpoint>,
}

fn malformed(pointer: &str, problem: &str) -> Invalid {
    Invalid(format!(
        "Malformed input request: #{pointer}: {problem}, please reformat your input and try again."
    ))
}

/// JSON pointer of a dotted path (`messages.0.content` → `/messages/0/content`).
fn pointer(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("/{}", path.replace('.', "/"))
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "BigDecimal",
        Value::String(_) => "String",
        Value::Array(_) => "JSONArray",
        Value::Object(_) => "JSONObject",
    }
}

fn wrong_type(path: &str, expected: &str, found: &Value) -> Invalid {
    malformed(
        &pointer(path),
        &format!("expected type: {expected}, found: {}", json_type(found)),
    )
}

/// Coral's constraint message.
fn constraint(value: &Value, path: &str, rule: &str) -> Invalid {
    let shown = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Invalid(format!(
        "1 validation error detected: Value '{shown}' at '{path}' failed to satisfy constraint: Member must {rule}"
    ))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(path, "JSONObject", value))
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], Invalid> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| wrong_type(path, "JSONArray", value))
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, Invalid> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(path, "String", value))
}

fn reject_extra(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Invalid> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(malformed(
            &pointer(path),
            &format!("extraneous key [{key}] is not permitted"),
        )),
        None => Ok(()),
    }
}

/// A required member: present and not null.
fn required<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a Value, Invalid> {
    match obj.get(key) {
        Some(v) if !v.is_null() => Ok(v),
        _ => Err(Invalid(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            join(path, key)
        ))),
    }
}

fn optional<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn one_of<'a>(value: &'a Value, path: &str, allowed: &[&str]) -> Result<&'a str, Invalid> {
    let s = string(value, path)?;
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(constraint(
            value,
            path,
            &format!("satisfy enum value set: [{}]", allowed.join(", ")),
        ))
    }
}

/// The single member of a union object (`{"text": ...}`), among `kinds`.
fn union_member<'a>(
    value: &'a Value,
    path: &str,
    kinds: &[&str],
) -> Result<(&'a str, &'a Value), Invalid> {
    let obj = object(value, path)?;
    reject_extra(obj, kinds, path)?;
    let mut set = obj.iter().filter(|(_, v)| !v.is_null());
    match (set.next(), set.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => Err(Invalid(format!(
            "The value at {path} must set exactly one of: {}.",
            kinds.join(", ")
        ))),
    }
}

fn base64_blob(value: &Value, path: &str) -> Result<(), Invalid> {
    let s = string(value, path)?;
    let valid = !s.is_empty()
        && s.len() % 4 == 0
        && s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || (b == b'=' && i + 2 >= s.len())
        });
    if valid {
        Ok(())
    } else {
        Err(Invalid(format!(
            "The value at {path} is not valid base64. Encode the bytes as base64 and try again."
        )))
    }
}

fn check_cache_point(value: &Value, path: &str) -> Result<Ttl, Invalid> {
    let obj = object(value, path)?;
    reject_extra(obj, &["type", "ttl"], path)?;
    one_of(
        required(obj, "type", path)?,
        &join(path, "type"),
        &["default"],
    )?;
    match optional(obj, "ttl") {
        None => Ok(Ttl::FiveMinutes),
        Some(ttl) => match one_of(ttl, &join(path, "ttl"), &["5m", "1h"])? {
            "1h" => Ok(Ttl::OneHour),
            _ => Ok(Ttl::FiveMinutes),
        },
    }
}

fn check_image(value: &Value, path: &str) -> Result<(), Invalid> {
    let obj = object(value, path)?;
    reject_extra(obj, &["format", "source"], path)?;
    one_of(
        required(obj, "format", path)?,
        &join(path, "format"),
        IMAGE_FORMATS,
    )?;
    let source_path = join(path, "source");
    let source = required(obj, "source", path)?;
    match union_member(source, &source_path, &["bytes", "s3Location"])? {
        ("bytes", bytes) => base64_blob(bytes, &join(&source_path, "bytes")),
        (_, location) => check_s3(location, &join(&source_path, "s3Location")),
    }
}

fn check_s3(value: &Value, path: &str) -> Result<(), Invalid> {
    let obj = object(value, path)?;
    reject_extra(obj, &["uri", "bucketOwner"], path)?;
    string(required(obj, "uri", path)?, &join(path, "uri"))?;
    Ok(())
}

fn check_document(value: &Value, path: &str) -> Result<(), Invalid> {
    let obj = object(value, path)?;
    reject_extra(
        obj,
        &["format", "name", "source", "context", "citations"],
        path,
    )?;
    if let Some(format) = optional(obj, "format") {
        one_of(format, &join(path, "format"), DOCUMENT_FORMATS)?;
    }
    let name = required(obj, "name", path)?;
    if string(name, &join(path, "name"))?.is_empty() {
        return Err(constraint(
            name,
            &join(path, "name"),
            "have length greater than or equal to 1",
        ));
    }
    let source_path = join(path, "source");
    let source = required(obj, "source", path)?;
    match union_member(
        source,
        &source_path,
        &["bytes", "s3Location", "text", "content"],
    )? {
        ("bytes", bytes) => base64_blob(bytes, &join(&source_path, "bytes")),
        ("s3Location", location) => check_s3(location, &join(&source_path, "s3Location")),
        ("text", text) => string(text, &join(&source_path, "text")).map(|_| ()),
        (_, content) => {
            let content_path = join(&source_path, "content");
            for (i, item) in array(content, &content_path)?.iter().enumerate() {
                let item_path = join(&content_path, &i.to_string());
                let (_, text) = union_member(item, &item_path, &["text"])?;
                string(text, &join(&item_path, "text"))?;
            }
            Ok(())
        }
    }
}

fn check_media(value: &Value, path: &str) -> Result<(), Invalid> {
    let obj = object(value, path)?;
    reject_extra(obj, &["format", "source"], path)?;
    string(required(obj, "format", path)?, &join(path, "format"))?;
    let source_path = join(path, "source");
    let source = required(obj, "source", path)?;
    match union_member(source, &source_path, &["bytes", "s3Location"])? {
        ("bytes", bytes) => base64_blob(bytes, &join(&source_path, "bytes")),
        (_, location) => check_s3(location, &join(&source_path, "s3Location")),
    }
}

fn check_guard_content(value: &Value, path: &str) -> Result<(), Invalid> {
    match union_member(value, path, &["text", "image"])? {
        ("text", text) => {
            let text_path = join(path, "text");
            let obj = object(text, &text_path)?;
            reject_extra(obj, &["text", "qualifiers"], &text_path)?;
            string(
                required(obj, "text", &text_path)?,
                &join(&text_path, "text"),
            )?;
            Ok(())
        }
        (_, image) => check_image(image, &join(path, "image")),
    }
}

fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn check_tool_use_id<'a>(value: &'a Value, path: &str) -> Result<&'a str, Invalid> {
    let id = string(value, path)?;
    let valid = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    if valid {
        Ok(id)
    } else {
        Err(constraint(
            value,
            path,
            "satisfy regular expression pattern: [a-zA-Z0-9_.:-]+",
        ))
    }
}

/// Tool bookkeeping of one message, for the pairing rules between turns.
#[derive(Default)]
struct Pairing<'a> {
    tool_uses: Vec<&'a str>,
    /// `(block index, toolUseId)` of each `toolResult`.
    tool_results: Vec<(usize, &'a str)>,
    has_document: bool,
    has_text: bool,
}

fn check_block<'a>(
    block: &'a Value,
    path: &str,
    role: &str,
    index: usize,
    pairing: &mut Pairing<'a>,
) -> Result<(), Invalid> {
    let (kind, value) = union_member(block, path, CONTENT_BLOCK_KINDS)?;
    let at = join(path, kind);
    let user_only = |what: &str| -> Result<(), Invalid> {
        if role == "user" {
            Ok(())
        } else {
            Err(Invalid(format!(
                "The {what} block at {path} is only allowed in a user message. Move it to a user message and try again."
            )))
        }
    };
    match kind {
        "text" => {
            if string(value, &at)?.trim().is_empty() {
                return Err(Invalid(format!(
                    "The text field in the ContentBlock object at {path} is blank. Add text to the text field, and try again."
                )));
            }
            pairing.has_text = true;
        }
        "image" => {
            user_only(kind)?;
            check_image(value, &at)?;
        }
        "document" => {
            user_only(kind)?;
            check_document(value, &at)?;
            pairing.has_document = true;
        }
        "video" | "audio" => {
            user_only(kind)?;
            check_media(value, &at)?;
        }
        "guardContent" => check_guard_content(value, &at)?,
        "cachePoint" => {
            check_cache_point(value, &at)?;
        }
        "toolUse" => {
            if role != "assistant" {
                return Err(Invalid(format!(
                    "The toolUse block at {path} is only allowed in an assistant message. Move it to an assistant message and try again."
                )));
            }
            let obj = object(value, &at)?;
            reject_extra(obj, &["toolUseId", "name", "input", "type"], &at)?;
            let id = check_tool_use_id(required(obj, "toolUseId", &at)?, &join(&at, "toolUseId"))?;
            let name = required(obj, "name", &at)?;
            if !valid_tool_name(string(name, &join(&at, "name"))?) {
                return Err(constraint(
                    name,
                    &join(&at, "name"),
                    "satisfy regular expression pattern: [a-zA-Z0-9_-]+",
                ));
            }
            required(obj, "input", &at)?;
            pairing.tool_uses.push(id);
        }
        "toolResult" => {
            user_only(kind)?;
            let obj = object(value, &at)?;
            reject_extra(obj, &["toolUseId", "content", "status", "type"], &at)?;
            let id = check_tool_use_id(required(obj, "toolUseId", &at)?, &join(&at, "toolUseId"))?;
            let content_path = join(&at, "content");
            let content = array(required(obj, "content", &at)?, &content_path)?;
            for (i, item) in content.iter().enumerate() {
                let item_path = join(&content_path, &i.to_string());
                let kinds = ["json", "text", "image", "document", "video", "searchResult"];
                match union_member(item, &item_path, &kinds)? {
                    ("text", text) => {
                        string(text, &join(&item_path, "text"))?;
                    }
                    ("image", image) => check_image(image, &join(&item_path, "image"))?,
                    ("document", doc) => check_document(doc, &join(&item_path, "document"))?,
                    ("video", video) => check_media(video, &join(&item_path, "video"))?,
                    // Any JSON document is a valid `json` member; search results are not checked.
                    _ => {}
                }
            }
            if let Some(status) = optional(obj, "status") {
                one_of(status, &join(&at, "status"), &["success", "error"])?;
            }
            pairing.tool_results.push((index, id));
        }
        "reasoningContent" => {
            if role != "assistant" {
                return Err(Invalid(format!(
                    "The reasoningContent block at {path} is only allowed in an assistant message."
                )));
            }
            match union_member(value, &at, &["reasoningText", "redactedContent"])? {
                ("reasoningText", text) => {
                    let text_path = join(&at, "reasoningText");
                    let obj = object(text, &text_path)?;
                    reject_extra(obj, &["text", "signature"], &text_path)?;
                    string(
                        required(obj, "text", &text_path)?,
                        &join(&text_path, "text"),
                    )?;
                    if let Some(signature) = optional(obj, "signature") {
                        string(signature, &join(&text_path, "signature"))?;
                    }
                }
                (_, data) => base64_blob(data, &join(&at, "redactedContent"))?,
            }
        }
        // Citations and search results are accepted as sent.
        _ => {}
    }
    Ok(())
}

/// Checks the tool-use pairing between consecutive turns and the presence of `toolConfig`.
fn check_pairing(pairings: &[Pairing<'_>], has_tool_config: bool) -> Result<(), Invalid> {
    let uses_tools = pairings
        .iter()
        .any(|p| !p.tool_uses.is_empty() || !p.tool_results.is_empty());
    if uses_tools && !has_tool_config {
        return Err(Invalid(
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                .to_owned(),
        ));
    }
    for (i, pairing) in pairings.iter().enumerate() {
        if !pairing.tool_results.is_empty() {
            let previous: &[&str] = match i.checked_sub(1) {
                Some(j) => &pairings[j].tool_uses,
                None => &[],
            };
            if pairing.tool_results.len() > previous.len() {
                return Err(Invalid(format!(
                    "The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn."
                )));
            }
            if let Some((j, id)) = pairing
                .tool_results
                .iter()
                .find(|(_, id)| !previous.contains(id))
            {
                return Err(Invalid(format!(
                    "The toolUseId {id} at messages.{i}.content.{j}.toolResult does not match any toolUse block of the previous turn."
                )));
            }
        }
    }
    for (i, pairing) in pairings.iter().enumerate() {
        if let Some(next) = pairings.get(i + 1) {
            let missing: Vec<&str> = pairing
                .tool_uses
                .iter()
                .filter(|id| !next.tool_results.iter().any(|(_, r)| r == *id))
                .copied()
                .collect();
            if !missing.is_empty() {
                return Err(Invalid(format!(
                    "Expected toolResult blocks at messages.{}.content for the following Ids: {}",
                    i + 1,
                    missing.join(", ")
                )));
            }
        }
    }
    Ok(())
}

fn check_messages(value: Option<&Value>) -> Result<(&[Value], Vec<Pairing<'_>>), Invalid> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Err(Invalid(
            "1 validation error detected: Value null at 'messages' failed to satisfy constraint: Member must not be null"
                .to_owned(),
        ));
    };
    let messages = array(value, "messages")?;
    let mut pairings = Vec::with_capacity(messages.len());
    let mut previous_role = None;
    for (i, message) in messages.iter().enumerate() {
        let path = format!("messages.{i}");
        let obj = object(message, &path)?;
        reject_extra(obj, &["role", "content"], &path)?;
        let role = required(obj, "role", &path)?;
        let role_path = join(&path, "role");
        let role = one_of(role, &role_path, &["user", "assistant"])?;
        if i == 0 && role != "user" {
            return Err(Invalid(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message."
                    .to_owned(),
            ));
        }
        if previous_role == Some(role) {
            return Err(Invalid(
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
                    .to_owned(),
            ));
        }
        previous_role = Some(role);
        let content_path = join(&path, "content");
        let content = array(required(obj, "content", &path)?, &content_path)?;
        if content.is_empty() {
            return Err(Invalid(format!(
                "The content field in the Message object at {path} is empty. Add a ContentBlock object to the content field and try again."
            )));
        }
        let mut pairing = Pairing::default();
        for (j, block) in content.iter().enumerate() {
            check_block(block, &format!("{content_path}.{j}"), role, j, &mut pairing)?;
        }
        if pairing.has_document && !pairing.has_text {
            return Err(Invalid(format!(
                "The message at {path} has a document but no text. Add a text ContentBlock alongside the document and try again."
            )));
        }
        pairings.push(pairing);
    }
    if messages.is_empty() {
        return Err(Invalid(
            "A conversation must start with a user message. Try again with a conversation that starts with a user message."
                .to_owned(),
        ));
    }
    Ok((messages, pairings))
}

fn check_system(value: Option<&Value>) -> Result<&[Value], Invalid> {
    let Some(value) = value else {
        return Ok(&[]);
    };
    let blocks = array(value, "system")?;
    for (i, block) in blocks.iter().enumerate() {
        let path = format!("system.{i}");
        match union_member(block, &path, &["text", "guardContent", "cachePoint"])? {
            ("text", text) => {
                let text_path = join(&path, "text");
                if string(text, &text_path)?.is_empty() {
                    return Err(constraint(
                        text,
                        &text_path,
                        "have length greater than or equal to 1",
                    ));
                }
            }
            ("guardContent", guard) => check_guard_content(guard, &join(&path, "guardContent"))?,
            (_, point) => {
                check_cache_point(point, &join(&path, "cachePoint"))?;
            }
        }
    }
    Ok(blocks)
}

struct Inference<'a> {
    max_tokens: Option<u64>,
    stop_sequences: Vec<&'a str>,
    /// Which of `maxTokens`, `temperature`, `topP`, `stopSequences` were set, by their
    /// model-native names, for the conflict rule of `additionalModelRequestFields`.
    native: Vec<&'static str>,
}

fn check_inference(value: Option<&Value>) -> Result<Inference<'_>, Invalid> {
    let mut out = Inference {
        max_tokens: None,
        stop_sequences: Vec::new(),
        native: Vec::new(),
    };
    let Some(value) = value else {
        return Ok(out);
    };
    let path = "inferenceConfig";
    let obj = object(value, path)?;
    reject_extra(
        obj,
        &["maxTokens", "temperature", "topP", "stopSequences"],
        path,
    )?;
    if let Some(v) = optional(obj, "maxTokens") {
        let at = join(path, "maxTokens");
        let n = v.as_i64().ok_or_else(|| wrong_type(&at, "Integer", v))?;
        if n < 1 {
            return Err(constraint(v, &at, "have value greater than or equal to 1"));
        }
        out.max_tokens = Some(n as u64);
        out.native.push("max_tokens");
    }
    for (key, native) in [("temperature", "temperature"), ("topP", "top_p")] {
        if let Some(v) = optional(obj, key) {
            let at = join(path, key);
            let n = v.as_f64().ok_or_else(|| wrong_type(&at, "Number", v))?;
            if n < 0.0 {
                return Err(constraint(v, &at, "have value greater than or equal to 0"));
            }
            if n > 1.0 {
                return Err(constraint(v, &at, "have value less than or equal to 1"));
            }
            out.native.push(native);
        }
    }
    if let Some(v) = optional(obj, "stopSequences") {
        let at = join(path, "stopSequences");
        let items = array(v, &at)?;
        if items.len() > 2500 {
            return Err(constraint(v, &at, "have length less than or equal to 2500"));
        }
        for (i, item) in items.iter().enumerate() {
            let item_at = format!("{at}.{i}");
            let s = string(item, &item_at)?;
            if s.is_empty() {
                return Err(constraint(
                    item,
                    &item_at,
                    "have length greater than or equal to 1",
                ));
            }
            out.stop_sequences.push(s);
        }
        out.native.push("stop_sequences");
    }
    Ok(out)
}

fn check_tools(
    value: Option<&Value>,
) -> Result<(&[Value], Vec<Tool<'_>>, ToolChoice<'_>), Invalid> {
    let Some(value) = value else {
        return Ok((&[], Vec::new(), ToolChoice::Auto));
    };
    let path = "toolConfig";
    let obj = object(value, path)?;
    reject_extra(obj, &["tools", "toolChoice"], path)?;
    let tools_path = join(path, "tools");
    let raw = required(obj, "tools", path)?;
    let entries = array(raw, &tools_path)?;
    if entries.is_empty() {
        return Err(constraint(
            raw,
            &tools_path,
            "have length greater than or equal to 1",
        ));
    }
    let mut tools = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("{tools_path}.{i}");
        match union_member(entry, &at, &["toolSpec", "systemTool", "cachePoint"])? {
            ("toolSpec", spec) => {
                let spec_path = join(&at, "toolSpec");
                let spec = object(spec, &spec_path)?;
                reject_extra(
                    spec,
                    &["name", "description", "inputSchema", "strict"],
                    &spec_path,
                )?;
                let name_value = required(spec, "name", &spec_path)?;
                let name = string(name_value, &join(&spec_path, "name"))?;
                if !valid_tool_name(name) {
                    return Err(constraint(
                        name_value,
                        &join(&spec_path, "name"),
                        "satisfy regular expression pattern: [a-zA-Z0-9_-]+",
                    ));
                }
                if let Some(description) = optional(spec, "description") {
                    let at = join(&spec_path, "description");
                    if string(description, &at)?.is_empty() {
                        return Err(constraint(
                            description,
                            &at,
                            "have length greater than or equal to 1",
                        ));
                    }
                }
                let schema_path = join(&spec_path, "inputSchema");
                let schema = required(spec, "inputSchema", &spec_path)?;
                let (_, json) = union_member(schema, &schema_path, &["json"])?;
                if !json.is_object() {
                    return Err(Invalid(format!(
                        "The format of the value at {schema_path}.json is invalid. Provide a json object for the field and try again."
                    )));
                }
                if tools.iter().any(|t: &Tool<'_>| t.name == name) {
                    return Err(Invalid(format!(
                        "The tool name {name} at {spec_path}.name is used by more than one tool. Give each tool a unique name and try again."
                    )));
                }
                tools.push(Tool {
                    name,
                    input_schema: json,
                });
            }
            ("systemTool", tool) => {
                let tool_path = join(&at, "systemTool");
                let tool = object(tool, &tool_path)?;
                reject_extra(tool, &["name"], &tool_path)?;
                string(
                    required(tool, "name", &tool_path)?,
                    &join(&tool_path, "name"),
                )?;
            }
            (_, point) => {
                check_cache_point(point, &join(&at, "cachePoint"))?;
            }
        }
    }
    let choice = match optional(obj, "toolChoice") {
        None => ToolChoice::Auto,
        Some(choice) => {
            let at = join(path, "toolChoice");
            match union_member(choice, &at, &["auto", "any", "tool"])? {
                ("auto", v) => {
                    reject_extra(object(v, &join(&at, "auto"))?, &[], &join(&at, "auto"))?;
                    ToolChoice::Auto
                }
                ("any", v) => {
                    reject_extra(object(v, &join(&at, "any"))?, &[], &join(&at, "any"))?;
                    ToolChoice::Any
                }
                (_, v) => {
                    let tool_path = join(&at, "tool");
                    let tool = object(v, &tool_path)?;
                    reject_extra(tool, &["name"], &tool_path)?;
                    let name = string(
                        required(tool, "name", &tool_path)?,
                        &join(&tool_path, "name"),
                    )?;
                    if !tools.iter().any(|t| t.name == name) {
                        return Err(Invalid(format!(
                            "The tool {name} named in toolConfig.toolChoice.tool is not in toolConfig.tools. Name one of the tools and try again."
                        )));
                    }
                    ToolChoice::Tool(name)
                }
            }
        }
    };
    Ok((entries, tools, choice))
}

/// `additionalModelRequestFields`: thinking (Claude's `thinking`, Nova's `reasoningConfig`)
/// and the rule that model-native fields may not repeat Converse's own.
fn check_additional(
    value: Option<&Value>,
    inference: &Inference<'_>,
    has_tools: bool,
) -> Result<Thinking, Invalid> {
    let Some(value) = value else {
        return Ok(Thinking::Off);
    };
    let Some(obj) = value.as_object() else {
        return Err(Invalid(
            "The format of the value at additionalModelRequestFields is invalid. Provide a json object for the field and try again."
                .to_owned(),
        ));
    };
    let mut reserved = vec!["messages", "system"];
    if has_tools {
        reserved.extend(["tools", "tool_choice"]);
    }
    reserved.extend(&inference.native);
    if let Some(key) = obj.keys().find(|k| reserved.contains(&k.as_str())) {
        return Err(Invalid(format!(
            "The additional field {key} conflicts with an existing field."
        )));
    }
    let model_error = |problem: String| {
        Invalid(format!(
            "The model returned the following errors: {problem}"
        ))
    };
    if let Some(thinking) = optional(obj, "thinking") {
        let Some(thinking) = thinking.as_object() else {
            return Err(model_error(
                "thinking: Input should be an object".to_owned(),
            ));
        };
        return match thinking.get("type").and_then(Value::as_str) {
            Some("disabled") => Ok(Thinking::Off),
            Some("adaptive") => Ok(Thinking::On { budget: None }),
            Some("enabled") => {
                let budget = match thinking.get("budget_tokens") {
                    None => {
                        return Err(model_error(
                            "thinking.enabled.budget_tokens: Field required".to_owned(),
                        ))
                    }
                    Some(v) => v.as_u64().ok_or_else(|| {
                        model_error(
                            "thinking.enabled.budget_tokens: Input should be a valid integer"
                                .to_owned(),
                        )
                    })?,
                };
                if budget < MIN_THINKING_BUDGET {
                    return Err(model_error(format!(
                        "thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
                    )));
                }
                if inference.max_tokens.is_some_and(|max| max <= budget) {
                    return Err(model_error(
                        "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"
                            .to_owned(),
                    ));
                }
                Ok(Thinking::On {
                    budget: Some(budget),
                })
            }
            _ => Err(model_error(
                "thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"
                    .to_owned(),
            )),
        };
    }
    if let Some(reasoning) = optional(obj, "reasoningConfig") {
        return match reasoning.get("type").and_then(Value::as_str) {
            Some("enabled") => Ok(Thinking::On { budget: None }),
            Some("disabled") => Ok(Thinking::Off),
            _ => Err(model_error(
                "reasoningConfig.type: must be one of enabled, disabled".to_owned(),
            )),
        };
    }
    Ok(Thinking::Off)
}

fn check_output_config(value: Option<&Value>) -> Result<Option<Value>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    let path = "outputConfig";
    let obj = object(value, path)?;
    reject_extra(obj, &["textFormat", "effort"], path)?;
    if let Some(effort) = optional(obj, "effort") {
        one_of(
            effort,
            &join(path, "effort"),
            &["low", "medium", "high", "xhigh", "max"],
        )?;
    }
    let Some(format) = optional(obj, "textFormat") else {
        return Ok(None);
    };
    let at = join(path, "textFormat");
    let format_obj = object(format, &at)?;
    reject_extra(format_obj, &["type", "structure"], &at)?;
    one_of(
        required(format_obj, "type", &at)?,
        &join(&at, "type"),
        &["json_schema"],
    )?;
    let structure_path = join(&at, "structure");
    let structure = required(format_obj, "structure", &at)?;
    let (_, definition) = union_member(structure, &structure_path, &["jsonSchema"])?;
    let definition_path = join(&structure_path, "jsonSchema");
    let definition = object(definition, &definition_path)?;
    reject_extra(
        definition,
        &["schema", "name", "description"],
        &definition_path,
    )?;
    let schema_path = join(&definition_path, "schema");
    let schema = string(
        required(definition, "schema", &definition_path)?,
        &schema_path,
    )?;
    match serde_json::from_str::<Value>(schema) {
        Ok(schema @ Value::Object(_)) => Ok(Some(schema)),
        _ => Err(Invalid(format!(
            "The format of the value at {schema_path} is invalid. Provide a JSON schema object, serialized as a string, and try again."
        ))),
    }
}

fn check_response_paths(value: Option<&Value>) -> Result<Vec<&str>, Invalid> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let path = "additionalModelResponseFieldPaths";
    let items = array(value, path)?;
    if items.len() > 10 {
        return Err(constraint(
            value,
            path,
            "have length less than or equal to 10",
        ));
    }
    let mut paths = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}.{i}");
        let p = string(item, &at)?;
        if !p.starts_with('/') {
            return Err(Invalid(format!(
                "The value at {at} is not a valid JSON Pointer: {p}. Start each path with / and try again."
            )));
        }
        paths.push(p);
    }
    Ok(paths)
}

/// The small configuration objects: shape only.
fn check_settings(obj: &Map<String, Value>) -> Result<(), Invalid> {
    if let Some(guardrail) = optional(obj, "guardrailConfig") {
        let path = "guardrailConfig";
        let g = object(guardrail, path)?;
        reject_extra(
            g,
            &[
                "guardrailIdentifier",
                "guardrailVersion",
                "trace",
                "streamProcessingMode",
            ],
            path,
        )?;
        for key in ["guardrailIdentifier", "guardrailVersion"] {
            if let Some(v) = optional(g, key) {
                string(v, &join(path, key))?;
            }
        }
        if let Some(trace) = optional(g, "trace") {
            one_of(
                trace,
                &join(path, "trace"),
                &["enabled", "disabled", "enabled_full"],
            )?;
        }
        if let Some(mode) = optional(g, "streamProcessingMode") {
            one_of(
                mode,
                &join(path, "streamProcessingMode"),
                &["sync", "async"],
            )?;
        }
    }
    if let Some(performance) = optional(obj, "performanceConfig") {
        let path = "performanceConfig";
        let p = object(performance, path)?;
        reject_extra(p, &["latency"], path)?;
        if let Some(latency) = optional(p, "latency") {
            one_of(latency, &join(path, "latency"), &["standard", "optimized"])?;
        }
    }
    if let Some(tier) = optional(obj, "serviceTier") {
        let path = "serviceTier";
        let t = object(tier, path)?;
        reject_extra(t, &["type"], path)?;
        one_of(
            required(t, "type", path)?,
            &join(path, "type"),
            &["priority", "default", "flex", "reserved"],
        )?;
    }
    if let Some(metadata) = optional(obj, "requestMetadata") {
        let path = "requestMetadata";
        let m = object(metadata, path)?;
        if m.is_empty() || m.len() > 16 {
            return Err(constraint(metadata, path, "have length between 1 and 16"));
        }
        for (key, value) in m {
            string(value, &join(path, key))?;
        }
    }
    if let Some(variables) = optional(obj, "promptVariables") {
        object(variables, "promptVariables")?;
    }
    Ok(())
}

impl<'a> ConverseRequest<'a> {
    pub fn parse(value: &'a Value) -> Result<Self, Invalid> {
        let obj = object(value, "")?;
        reject_extra(obj, TOP_LEVEL_KEYS, "")?;
        let (messages, pairings) = check_messages(obj.get("messages"))?;
        let system = check_system(optional(obj, "system"))?;
        let inference = check_inference(optional(obj, "inferenceConfig"))?;
        let tool_config = optional(obj, "toolConfig");
        let (tools_raw, tools, tool_choice) = check_tools(tool_config)?;
        check_pairing(&pairings, tool_config.is_some())?;
        let thinking = check_additional(
            optional(obj, "additionalModelRequestFields"),
            &inference,
            tool_config.is_some(),
        )?;
        let forced = matches!(tool_choice, ToolChoice::Any | ToolChoice::Tool(_));
        if forced && thinking != Thinking::Off {
            return Err(Invalid(
                "The model returned the following errors: Thinking may not be enabled when tool_choice forces tool use."
                    .to_owned(),
            ));
        }
        let format = check_output_config(optional(obj, "outputConfig"))?;
        let response_paths =
            check_response_paths(optional(obj, "additionalModelResponseFieldPaths"))?;
        check_settings(obj)?;
        Ok(ConverseRequest {
            messages,
            system,
            tools_raw,
            tools,
            tool_choice,
            max_tokens: inference.max_tokens,
            stop_sequences: inference.stop_sequences,
            thinking,
            format,
            guardrail: optional(obj, "guardrailConfig").is_some(),
            response_paths,
            performance: optional(obj, "performanceConfig"),
            service_tier: optional(obj, "serviceTier"),
        })
    }

    /// The prompt's tokens (see the module docs of `bedrock`) and cacheable prefixes, in
    /// prompt order: tools, then system, then messages.
    pub fn prompt(&self, model: &str) -> Prompt {
        let mut walk = Walk::new(model);
        for tool in self.tools_raw {
            match tool.get("cachePoint") {
                Some(point) => walk.breakpoint(point),
                None => {
                    let definition = tool
                        .get("toolSpec")
                        .or_else(|| tool.get("systemTool"))
                        .unwrap_or(tool);
                    walk.unit(b"tool", tool, tokenizer::count(&definition.to_string()));
                }
            }
        }
        for block in self.system {
            match block.get("cachePoint") {
                Some(point) => walk.breakpoint(point),
                None => walk.unit(b"system", block, block_tokens(block)),
            }
        }
        for message in self.messages {
            let role = message.get("role").and_then(Value::as_str).unwrap_or("");
            let tag: &[u8] = if role == "user" {
                b"user"
            } else {
                b"assistant"
            };
            walk.unit(
                tag,
                &Value::Null,
                PER_MESSAGE_TOKENS + tokenizer::count(role),
            );
            let blocks = message.get("content").and_then(Value::as_array);
            for block in blocks.into_iter().flatten() {
                match block.get("cachePoint") {
                    Some(point) => walk.breakpoint(point),
                    None => walk.unit(b"block", block, block_tokens(block)),
                }
            }
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
        hash_canonical(value, &[], &mut self.hasher);
        self.tokens += tokens;
    }

    /// A cache point after the last unit (one per position: a second one there adds nothing).
    fn breakpoint(&mut self, point: &Value) {
        let ttl = match point.get("ttl").and_then(Value::as_str) {
            Some("1h") => Ttl::OneHour,
            _ => Ttl::FiveMinutes,
        };
        if self.tokens == 0
            || self
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

/// Prompt tokens of one content block (or system block, or tool result item).
fn block_tokens(block: &Value) -> u64 {
    let Some((kind, value)) = block.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let text = |v: &Value| v.as_str().map_or(0, tokenizer::count);
    match kind.as_str() {
        "text" => text(value),
        "image" => IMAGE_TOKENS,
        "video" | "audio" => MEDIA_TOKENS,
        "document" => {
            let source = value.get("source");
            let body = if let Some(t) = source.and_then(|s| s.get("text")) {
                text(t)
            } else if let Some(Value::Array(items)) = source.and_then(|s| s.get("content")) {
                items.iter().map(|i| i.get("text").map_or(0, text)).sum()
            } else {
                MEDIA_TOKENS
            };
            body + value.get("name").map_or(0, text)
        }
        "toolUse" => {
            value.get("name").map_or(0, text)
                + value
                    .get("input")
                    .map_or(0, |i| tokenizer::count(&i.to_string()))
        }
        "toolResult" => value
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|item| match item.get("json") {
                Some(json) => tokenizer::count(&json.to_string()),
                None => block_tokens(item),
            })
            .sum(),
        "guardContent" => value
            .get("text")
            .and_then(|t| t.get("text"))
            .map_or(0, text),
        // Earlier turns' reasoning is dropped from the prompt, as Claude does.
        "reasoningContent" | "cachePoint" => 0,
        _ => tokenizer::count(&value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: &Value) -> Result<ConverseRequest<'_>, String> {
        ConverseRequest::parse(value).map_err(|e| e.0)
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": [{"text": text}]})
    }

    #[test]
    fn counts_tools_system_messages_and_priming() {
        let body = json!({
            "system": [{"text": "You are terse."}],
            "messages": [user("Hello, world!")],
        });
        let req = parse(&body).unwrap();
        // System 4; the message 3 + role 1 + text 4; priming 3.
        assert_eq!(req.prompt("m").total, 4 + 8 + 3);
    }

    #[test]
    fn cache_points_mark_prefixes() {
        let body = json!({
            "system": [{"text": "one two three"}, {"cachePoint": {"type": "default"}}],
            "messages": [{"role": "user", "content": [
                {"text": "four five"}, {"cachePoint": {"type": "default", "ttl": "1h"}}, {"text": "six"}
            ]}],
        });
        let req = parse(&body).unwrap();
        let prompt = req.prompt("m");
        assert_eq!(prompt.total, 3 + 4 + 2 + 1 + 3);
        let tokens: Vec<u64> = prompt.breakpoints.iter().map(|b| b.tokens).collect();
        assert_eq!(tokens, [3, 9]);
        assert_eq!(prompt.breakpoints[1].ttl, Ttl::OneHour);
        assert_ne!(
            prompt.breakpoints[0].hash,
            req.prompt("other").breakpoints[0].hash
        );
    }

    #[test]
    fn conversation_rules() {
        let cases = [
            (json!({"messages": []}), "must start with a user message"),
            (
                json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}),
                "must start with a user message",
            ),
            (
                json!({"messages": [user("a"), user("b")]}),
                "must alternate between user and assistant",
            ),
            (
                json!({"messages": [{"role": "user", "content": []}]}),
                "The content field in the Message object at messages.0 is empty",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": " "}]}]}),
                "at messages.0.content.0 is blank",
            ),
            (
                json!({"messages": [user("a")], "stream": true}),
                "#: extraneous key [stream] is not permitted",
            ),
            (
                json!({"messages": [{"role": "bot", "content": [{"text": "x"}]}]}),
                "Value 'bot' at 'messages.0.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"maxTokens": 0}}),
                "Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ),
            (
                json!({"messages": [user("a")], "inferenceConfig": {"stopSequences": "x"}}),
                "#/inferenceConfig/stopSequences: expected type: JSONArray, found: String",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]}),
                "must set exactly one of",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(&body).err().unwrap_or_default();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    fn tool_config() -> Value {
        json!({"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}]})
    }

    fn tool_use(id: &str) -> Value {
        json!({"toolUse": {"toolUseId": id, "name": "get_weather", "input": {}}})
    }

    fn tool_result(id: &str) -> Value {
        json!({"toolResult": {"toolUseId": id, "content": [{"json": {"ok": true}}], "status": "success"}})
    }

    #[test]
    fn tool_pairing_rules() {
        let turns = |results: Vec<Value>| {
            json!([
                user("weather?"),
                {"role": "assistant", "content": [tool_use("t1"), tool_use("t2")]},
                {"role": "user", "content": results}
            ])
        };
        let ok = json!({"messages": turns(vec![tool_result("t1"), tool_result("t2")]), "toolConfig": tool_config()});
        assert!(parse(&ok).is_ok());
        let no_config = json!({"messages": turns(vec![tool_result("t1"), tool_result("t2")])});
        assert_eq!(
            parse(&no_config).err().unwrap(),
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        );
        let missing =
            json!({"messages": turns(vec![tool_result("t1")]), "toolConfig": tool_config()});
        assert_eq!(
            parse(&missing).err().unwrap(),
            "Expected toolResult blocks at messages.2.content for the following Ids: t2"
        );
        let stray = json!({"messages": turns(vec![tool_result("t1"), tool_result("t9")]), "toolConfig": tool_config()});
        assert!(parse(&stray).err().unwrap().contains("toolUseId t9"));
        let first = json!({"messages": [{"role": "user", "content": [tool_result("t1")]}], "toolConfig": tool_config()});
        assert!(parse(&first)
            .err()
            .unwrap()
            .contains("exceeds the number of toolUse blocks"));
    }

    #[test]
    fn thinking_and_additional_fields() {
        let with = |extra: Value, inference: Value| json!({"messages": [user("a")], "additionalModelRequestFields": extra, "inferenceConfig": inference});
        let on = with(
            json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}),
            json!({"maxTokens": 4096}),
        );
        assert_eq!(
            parse(&on).unwrap().thinking,
            Thinking::On { budget: Some(2048) }
        );
        let small = with(
            json!({"thinking": {"type": "enabled", "budget_tokens": 100}}),
            json!({}),
        );
        assert!(parse(&small).err().unwrap().starts_with(
            "The model returned the following errors: thinking.enabled.budget_tokens"
        ));
        let over = with(
            json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}),
            json!({"maxTokens": 1024}),
        );
        assert!(parse(&over)
            .err()
            .unwrap()
            .contains("`max_tokens` must be greater"));
        let nova = with(json!({"reasoningConfig": {"type": "enabled"}}), json!({}));
        assert_eq!(
            parse(&nova).unwrap().thinking,
            Thinking::On { budget: None }
        );
        let clash = with(json!({"max_tokens": 5}), json!({"maxTokens": 5}));
        assert_eq!(
            parse(&clash).err().unwrap(),
            "The additional field max_tokens conflicts with an existing field."
        );
        assert!(parse(&with(json!({"top_k": 5}), json!({"maxTokens": 5}))).is_ok());
        let mut forced = with(json!({"reasoningConfig": {"type": "enabled"}}), json!({}));
        forced["toolConfig"] = tool_config();
        forced["toolConfig"]["toolChoice"] = json!({"any": {}});
        assert!(parse(&forced)
            .err()
            .unwrap()
            .ends_with("Thinking may not be enabled when tool_choice forces tool use."));
    }

    #[test]
    fn tool_config_and_output_config_shapes() {
        let bad_schema = json!({"messages": [user("a")], "toolConfig": {"tools": [
            {"toolSpec": {"name": "t", "inputSchema": {"json": "nope"}}}
        ]}});
        assert_eq!(
            parse(&bad_schema).err().unwrap(),
            "The format of the value at toolConfig.tools.0.toolSpec.inputSchema.json is invalid. Provide a json object for the field and try again."
        );
        let bad_name = json!({"messages": [user("a")], "toolConfig": {"tools": [
            {"toolSpec": {"name": "a b", "inputSchema": {"json": {}}}}
        ]}});
        assert!(parse(&bad_name)
            .err()
            .unwrap()
            .contains("regular expression pattern"));
        let format = json!({"messages": [user("a")], "outputConfig": {"textFormat": {
            "type": "json_schema", "structure": {"jsonSchema": {"schema": "{\"type\":\"object\"}", "name": "x"}}
        }}});
        assert_eq!(
            parse(&format).unwrap().format,
            Some(json!({"type": "object"}))
        );
    }
}
