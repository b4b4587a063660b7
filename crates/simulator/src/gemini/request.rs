//! Validation of `generateContent` / `streamGenerateContent` / `countTokens` bodies the way
//! Gemini's API rejects them, and the prompt's token count with its cacheable prefixes.
//!
//! Two kinds of 400 `INVALID_ARGUMENT`, as Gemini words them: what its JSON parser refuses
//! (`Invalid JSON payload received. Unknown name "x" at 'generation_config': Cannot find
//! field.`, `Invalid value at 'generation_config.temperature' (TYPE_FLOAT), "hot"`, with a
//! `google.rpc.BadRequest` field violation), and what the request checks refuse
//! (`* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.`). Field
//! paths are the proto's snake_case names; keys are accepted in camelCase or snake_case, as
//! proto JSON allows.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::schema;
use crate::generate::hash_canonical;
use crate::tokenizer;

/// Prompt tokens of each inline or file media part (the simulator does not decode media).
pub const MEDIA_TOKENS: u64 = 258;
/// Shortest prompt prefix that implicit caching keeps.
pub const MIN_CACHE_TOKENS: u64 = 1024;
/// Most stop sequences a request may carry.
const MAX_STOP_SEQUENCES: usize = 5;
/// Most candidates one request may ask for.
const MAX_CANDIDATES: i64 = 8;

/// Top-level keys of a `GenerateContentRequest`.
const REQUEST_KEYS: &[&str] = &[
    "model",
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
    "labels",
    "serviceTier",
    "store",
];

const CONTENT_KEYS: &[&str] = &["role", "parts"];

const PART_KEYS: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "mediaResolution",
    "partMetadata",
    "toolCall",
    "toolResponse",
];

/// The `data` oneof of a `Part`: exactly one must be set.
const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
    "toolCall",
    "toolResponse",
];

const GENERATION_KEYS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "_responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
    "imageConfig",
    "audioTimestamp",
    "routingConfig",
    "modelSelectionConfig",
    "enableAffectiveDialog",
    "responseFormat",
    "translationConfig",
    "audioTranscriptionConfig",
];

const TOOL_KEYS: &[&str] = &[
    "functionDeclarations",
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "retrieval",
    "computerUse",
    "fileSearch",
    "googleMaps",
    "enterpriseWebSearch",
    "mcpServers",
];

const FUNCTION_KEYS: &[&str] = &[
    "name",
    "description",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
    "behavior",
];

const HARM_CATEGORIES: &[&str] = &[
    "HARM_CATEGORY_UNSPECIFIED",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
    "HARM_CATEGORY_IMAGE_HATE",
    "HARM_CATEGORY_IMAGE_DANGEROUS_CONTENT",
    "HARM_CATEGORY_IMAGE_HARASSMENT",
    "HARM_CATEGORY_IMAGE_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_JAILBREAK",
];

const HARM_THRESHOLDS: &[&str] = &[
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    "BLOCK_LOW_AND_ABOVE",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_NONE",
    "OFF",
];

/// A 400 `INVALID_ARGUMENT`: the message, and for parser errors the field it names (sent as a
/// `google.rpc.BadRequest` field violation).
#[derive(Debug)]
pub struct Invalid {
    pub message: String,
    pub violation: Option<String>,
}

impl Invalid {
    /// A request check's error: `* GenerateContentRequest.{path}: {what}`.
    pub fn semantic(path: &str, what: &str) -> Self {
        Invalid::semantic_in("GenerateContentRequest", path, what)
    }

    /// A request check's error on another request message (`EmbedContentRequest`, ...).
    pub fn semantic_in(request: &str, path: &str, what: &str) -> Self {
        Invalid {
            message: format!("* {request}.{path}: {what}\n"),
            violation: None,
        }
    }

    /// A plain message (no field path).
    pub fn plain(message: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
            violation: None,
        }
    }

    /// The parser's error for a value of the wrong scalar type (`TYPE_INT32`, ...).
    pub fn type_value(path: &str, proto_type: &str, value: &Value) -> Self {
        Invalid {
            message: format!("Invalid value at '{path}' ({proto_type}), {value}"),
            violation: Some(path.to_owned()),
        }
    }

    /// The parser's error for a value that is not the message (or enum) `message_type`.
    pub fn bad_value(path: &str, message_type: &str, value: &Value) -> Self {
        Invalid::type_value(
            path,
            &format!("type.googleapis.com/google.ai.generativelanguage.v1beta.{message_type}"),
            value,
        )
    }

    fn unknown(path: &str, key: &str) -> Self {
        let message = if path.is_empty() {
            format!("Invalid JSON payload received. Unknown name \"{key}\": Cannot find field.")
        } else {
            format!(
                "Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
            )
        };
        Invalid {
            message,
            violation: Some(path.to_owned()),
        }
    }
}

/// `fooBar` for `foo_bar` (and `fooBar` unchanged).
pub fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for (i, c) in key.chars().enumerate() {
        if c == '_' && i > 0 {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `foo_bar` for `fooBar`.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The proto path of field `camel_key` under `path`.
pub fn field_path(path: &str, camel_key: &str) -> String {
    if path.is_empty() {
        snake(camel_key)
    } else {
        format!("{path}.{}", snake(camel_key))
    }
}

/// Rejects keys (in either spelling) outside `allowed` (camelCase).
pub fn check_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), Invalid> {
    match obj
        .keys()
        .find(|k| !allowed.contains(&camel(k).as_str()) && !allowed.contains(&k.as_str()))
    {
        Some(key) => Err(Invalid::unknown(path, key)),
        None => Ok(()),
    }
}

/// Field `camel_key` in either spelling; `null` counts as absent, as in proto JSON.
pub fn field<'a>(obj: &'a Map<String, Value>, camel_key: &str) -> Option<&'a Value> {
    obj.get(camel_key)
        .or_else(|| obj.get(&snake(camel_key)))
        .filter(|v| !v.is_null())
}

pub(super) fn object<'a>(
    value: &'a Value,
    path: &str,
    message_type: &str,
) -> Result<&'a Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| Invalid::bad_value(path, message_type, value))
}

pub(super) fn array<'a>(
    value: &'a Value,
    path: &str,
    message_type: &str,
) -> Result<&'a [Value], Invalid> {
    value
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| Invalid::bad_value(path, message_type, value))
}

pub(super) fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, Invalid> {
    value
        .as_str()
        .ok_or_else(|| Invalid::type_value(path, "TYPE_STRING", value))
}

fn boolean(value: &Value, path: &str) -> Result<bool, Invalid> {
    value
        .as_bool()
        .ok_or_else(|| Invalid::type_value(path, "TYPE_BOOL", value))
}

/// An int32: a JSON integer or a string of one, as proto JSON allows.
pub(super) fn int(value: &Value, path: &str) -> Result<i64, Invalid> {
    let n = match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| Invalid::type_value(path, "TYPE_INT32", value))
}

fn float(value: &Value, path: &str) -> Result<f64, Invalid> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.filter(|f| f.is_finite())
        .ok_or_else(|| Invalid::type_value(path, "TYPE_FLOAT", value))
}

/// An enum value from `names` (case-insensitive); returns the canonical name.
pub(super) fn enum_value(
    value: &Value,
    path: &str,
    enum_type: &str,
    names: &[&'static str],
) -> Result<&'static str, Invalid> {
    value
        .as_str()
        .and_then(|s| names.iter().find(|n| n.eq_ignore_ascii_case(s)).copied())
        .ok_or_else(|| Invalid::bad_value(path, enum_type, value))
}

/// Standard or URL-safe base64, padded or not.
fn is_base64(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    text.len() - body.len() <= 2
        && body.len() % 4 != 1
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b))
}

/// How the model may call functions (`toolConfig.functionCallingConfig.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallingMode {
    Auto,
    Any,
    None,
    Validated,
}

/// A declared function the model can call, with its parameters as JSON Schema.
#[derive(Debug)]
pub struct Function<'a> {
    pub name: &'a str,
    pub parameters: Option<Value>,
}

/// What form the answer's text takes.
#[derive(Debug)]
pub enum Output {
    Text,
    /// `application/json`, optionally for a schema (JSON Schema).
    Json(Option<Value>),
    /// `text/x.enum`: one of these values, as plain text.
    Enum(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    Off,
    /// `budget` `None` is dynamic (`-1`) or a thinking level; `include` returns thought parts.
    On {
        budget: Option<u64>,
        include: bool,
    },
}

/// The parts of a request the simulator acts on, validated.
#[derive(Debug)]
pub struct GenerateRequest<'a> {
    pub contents: &'a [Value],
    system: Option<&'a Value>,
    tools_raw: Vec<&'a Value>,
    pub functions: Vec<Function<'a>>,
    pub mode: CallingMode,
    pub allowed: Vec<&'a str>,
    pub max_output_tokens: Option<u64>,
    pub stop_sequences: Vec<String>,
    pub candidate_count: u64,
    pub output: Output,
    pub thinking: Thinking,
}

/// Input tokens by modality (`promptTokensDetails`), in a fixed order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Modalities {
    pub text: u64,
    pub image: u64,
    pub audio: u64,
    pub video: u64,
    pub document: u64,
}

impl Modalities {
    pub fn total(&self) -> u64 {
        self.text + self.image + self.audio + self.video + self.document
    }

    /// Non-zero entries as `(MODALITY, tokens)`; `TEXT` always.
    pub fn entries(&self) -> Vec<(&'static str, u64)> {
        let mut out = vec![("TEXT", self.text)];
        for (name, n) in [
            ("IMAGE", self.image),
            ("AUDIO", self.audio),
            ("VIDEO", self.video),
            ("DOCUMENT", self.document),
        ] {
            if n > 0 {
                out.push((name, n));
            }
        }
        out
    }

    fn add_media(&mut self, mime: &str) {
        let slot = match mime.split('/').next().unwrap_or("") {
            "image" => &mut self.image,
            "audio" => &mut self.audio,
            "video" => &mut self.video,
            "text" => &mut self.text,
            _ => &mut self.document,
        };
        *slot += MEDIA_TOKENS;
    }
}

/// The prompt's tokens and the prefixes implicit caching may reuse, shortest first.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub modalities: Modalities,
    /// `(tokens through the prefix, identity of the prefix)`; only prefixes of at least
    /// [`MIN_CACHE_TOKENS`].
    pub prefixes: Vec<(u64, [u8; 32])>,
}

impl Prompt {
    pub fn total(&self) -> u64 {
        self.modalities.total()
    }
}

/// Checks `contents`: a non-empty list of `Content`.
fn check_contents<'a>(value: Option<&'a Value>, path: &str) -> Result<&'a [Value], Invalid> {
    let contents = match value {
        None => return Err(Invalid::semantic(path, "contents is not specified")),
        Some(v) => array(v, path, "Content")?,
    };
    if contents.is_empty() {
        return Err(Invalid::semantic(path, "contents is not specified"));
    }
    let mut previous_calls = 0;
    for (i, content) in contents.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let counts = check_content(content, &at, true)?;
        // A turn of function responses must answer every call of the turn before it.
        if counts.responses > 0 && previous_calls > 0 && counts.responses != previous_calls {
            return Err(Invalid::plain(
                "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.",
            ));
        }
        previous_calls = counts.calls;
    }
    Ok(contents)
}

#[derive(Default)]
struct PartCounts {
    calls: usize,
    responses: usize,
}

/// Checks one `Content` (`with_role`: a role other than user/model is refused).
fn check_content(value: &Value, path: &str, with_role: bool) -> Result<PartCounts, Invalid> {
    let obj = object(value, path, "Content")?;
    check_keys(obj, CONTENT_KEYS, path)?;
    if let Some(role) = field(obj, "role") {
        let role = string(role, &field_path(path, "role"))?;
        if with_role && !role.is_empty() && role != "user" && role != "model" {
            return Err(Invalid::plain("Please use a valid role: user, model."));
        }
    }
    let parts_path = field_path(path, "parts");
    let parts = match field(obj, "parts") {
        None => &[][..],
        Some(v) => array(v, &parts_path, "Part")?,
    };
    if parts.is_empty() {
        return Err(Invalid::semantic(
            &parts_path,
            "contents.parts must not be empty.",
        ));
    }
    let mut counts = PartCounts::default();
    for (j, part) in parts.iter().enumerate() {
        let at = format!("{parts_path}[{j}]");
        match check_part(part, &at)? {
            "functionCall" => counts.calls += 1,
            "functionResponse" => counts.responses += 1,
            _ => {}
        }
    }
    Ok(counts)
}

/// Checks one `Part`; returns which `data` field it sets.
fn check_part(value: &Value, path: &str) -> Result<&'static str, Invalid> {
    let obj = object(value, path, "Part")?;
    check_keys(obj, PART_KEYS, path)?;
    let mut data = None;
    for key in PART_DATA {
        if field(obj, key).is_some() {
            if data.is_some() {
                return Err(Invalid {
                    message: format!(
                        "Invalid JSON payload received. Oneof field 'data' is already set. Cannot set '{key}'"
                    ),
                    violation: Some(path.to_owned()),
                });
            }
            data = Some(*key);
        }
    }
    let Some(kind) = data else {
        return Err(Invalid::semantic(
            &format!("{path}.data"),
            "required oneof field 'data' must have one initialized field",
        ));
    };
    let sub = |key: &str| field_path(path, key);
    if let Some(v) = field(obj, "thought") {
        boolean(v, &sub("thought"))?;
    }
    if let Some(v) = field(obj, "thoughtSignature") {
        let at = sub("thoughtSignature");
        let signature = string(v, &at)?;
        if !is_base64(signature) {
            return Err(Invalid::type_value(
                &at,
                "TYPE_BYTES",
                &Value::String(format!("Base64 decoding failed for \"{signature}\"")),
            ));
        }
    }
    let inner = |key: &str, message_type: &str| -> Result<&Map<String, Value>, Invalid> {
        let at = sub(key);
        object(field(obj, key).unwrap_or(&Value::Null), &at, message_type)
    };
    match kind {
        "text" => {
            string(field(obj, "text").unwrap_or(&Value::Null), &sub("text"))?;
        }
        "inlineData" => {
            let blob = inner("inlineData", "Blob")?;
            let at = sub("inlineData");
            check_keys(blob, &["mimeType", "data", "displayName"], &at)?;
            match field(blob, "mimeType") {
                Some(m) => {
                    string(m, &field_path(&at, "mimeType"))?;
                }
                None => return Err(Invalid::semantic(&at, "mime_type is not specified.")),
            }
            match field(blob, "data") {
                Some(d) if d.as_str().is_some_and(is_base64) => {}
                Some(d) => {
                    return Err(Invalid::type_value(
                        &field_path(&at, "data"),
                        "TYPE_BYTES",
                        d,
                    ))
                }
                None => return Err(Invalid::semantic(&at, "data is not specified.")),
            }
        }
        "fileData" => {
            let file = inner("fileData", "FileData")?;
            let at = sub("fileData");
            check_keys(file, &["mimeType", "fileUri", "displayName"], &at)?;
            match field(file, "fileUri") {
                Some(u) => {
                    string(u, &field_path(&at, "fileUri"))?;
                }
                None => return Err(Invalid::semantic(&at, "file_uri is not specified.")),
            }
        }
        "functionCall" => {
            let call = inner("functionCall", "FunctionCall")?;
            let at = sub("functionCall");
            check_keys(
                call,
                &["id", "name", "args", "partialArgs", "willContinue"],
                &at,
            )?;
            match field(call, "name") {
                Some(n) => {
                    string(n, &field_path(&at, "name"))?;
                }
                None => {
                    return Err(Invalid::semantic(
                        &field_path(&at, "name"),
                        "Name is empty.",
                    ))
                }
            }
            if let Some(args) = field(call, "args") {
                object(args, &field_path(&at, "args"), "Struct")?;
            }
        }
        "functionResponse" => {
            let response = inner("functionResponse", "FunctionResponse")?;
            let at = sub("functionResponse");
            check_keys(
                response,
                &[
                    "id",
                    "name",
                    "response",
                    "parts",
                    "willContinue",
                    "scheduling",
                ],
                &at,
            )?;
            match field(response, "name") {
                Some(n) => {
                    string(n, &field_path(&at, "name"))?;
                }
                None => {
                    return Err(Invalid::semantic(
                        &field_path(&at, "name"),
                        "Name is empty.",
                    ))
                }
            }
            match field(response, "response") {
                Some(r) => {
                    object(r, &field_path(&at, "response"), "Struct")?;
                }
                None => {
                    return Err(Invalid::semantic(
                        &field_path(&at, "response"),
                        "response is not specified.",
                    ))
                }
            }
        }
        other => {
            inner(other, "Part")?;
        }
    }
    Ok(kind)
}

/// Checks a `Content` to embed (any role).
pub(super) fn check_embed_content(value: &Value, path: &str) -> Result<(), Invalid> {
    check_content(value, path, false).map(|_| ())
}

/// Checks `systemInstruction`: a `Content` whose role is ignored.
fn check_system(value: &Value) -> Result<(), Invalid> {
    check_content(value, "system_instruction", false).map(|_| ())
}

/// Checks `tools`, returning every tool and the declared functions.
#[allow(clippy::type_complexity)]
fn check_tools(value: Option<&Value>) -> Result<(Vec<&Value>, Vec<Function<'_>>), Invalid> {
    let Some(value) = value else {
        return Ok((Vec::new(), Vec::new()));
    };
    let tools = array(value, "tools", "Tool")?;
    let mut functions = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let path = format!("tools[{i}]");
        let obj = object(tool, &path, "Tool")?;
        check_keys(obj, TOOL_KEYS, &path)?;
        let Some(declarations) = field(obj, "functionDeclarations") else {
            continue;
        };
        let decl_path = field_path(&path, "functionDeclarations");
        for (j, declaration) in array(declarations, &decl_path, "FunctionDeclaration")?
            .iter()
            .enumerate()
        {
            let at = format!("{decl_path}[{j}]");
            let decl = object(declaration, &at, "FunctionDeclaration")?;
            check_keys(decl, FUNCTION_KEYS, &at)?;
            let name_path = field_path(&at, "name");
            let name = match field(decl, "name") {
                Some(n) => string(n, &name_path)?,
                None => "",
            };
            if !valid_function_name(name) {
                return Err(Invalid::semantic(
                    &name_path,
                    "Invalid function name. Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and dashes, with a maximum length of 64.",
                ));
            }
            if let Some(description) = field(decl, "description") {
                string(description, &field_path(&at, "description"))?;
            }
            let parameters = match (
                field(decl, "parameters"),
                field(decl, "parametersJsonSchema"),
            ) {
                (Some(_), Some(_)) => {
                    return Err(Invalid::semantic(
                        &at,
                        "parameters and parameters_json_schema cannot both be set.",
                    ))
                }
                (Some(p), None) => Some(schema::to_json_schema(p, &field_path(&at, "parameters"))?),
                (None, Some(p)) => {
                    object(p, &field_path(&at, "parametersJsonSchema"), "Value")?;
                    Some(p.clone())
                }
                (None, None) => None,
            };
            if let Some(response) = field(decl, "response") {
                schema::to_json_schema(response, &field_path(&at, "response"))?;
            }
            functions.push(Function { name, parameters });
        }
    }
    Ok((tools.iter().collect(), functions))
}

/// `^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$`.
fn valid_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

/// Checks `toolConfig`, returning the calling mode and the allowed function names.
fn check_tool_config<'a>(
    value: Option<&'a Value>,
    functions: &[Function<'_>],
) -> Result<(CallingMode, Vec<&'a str>), Invalid> {
    let Some(value) = value else {
        return Ok((CallingMode::Auto, Vec::new()));
    };
    let obj = object(value, "tool_config", "ToolConfig")?;
    check_keys(
        obj,
        &[
            "functionCallingConfig",
            "retrievalConfig",
            "includeServerSideToolInvocations",
        ],
        "tool_config",
    )?;
    let Some(config) = field(obj, "functionCallingConfig") else {
        return Ok((CallingMode::Auto, Vec::new()));
    };
    let path = "tool_config.function_calling_config";
    let config = object(config, path, "FunctionCallingConfig")?;
    check_keys(config, &["mode", "allowedFunctionNames"], path)?;
    let mode = match field(config, "mode") {
        None => CallingMode::Auto,
        Some(m) => match enum_value(
            m,
            &format!("{path}.mode"),
            "FunctionCallingConfig.Mode",
            &["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"],
        )? {
            "ANY" => CallingMode::Any,
            "NONE" => CallingMode::None,
            "VALIDATED" => CallingMode::Validated,
            _ => CallingMode::Auto,
        },
    };
    let mut allowed = Vec::new();
    if let Some(names) = field(config, "allowedFunctionNames") {
        let at = format!("{path}.allowed_function_names");
        for (i, name) in array(names, &at, "string")?.iter().enumerate() {
            let name = string(name, &format!("{at}[{i}]"))?;
            if !functions.iter().any(|f| f.name == name) {
                return Err(Invalid::semantic(
                    &at,
                    &format!("function name '{name}' is not declared in tools."),
                ));
            }
            allowed.push(name);
        }
        if !allowed.is_empty() && !matches!(mode, CallingMode::Any | CallingMode::Validated) {
            return Err(Invalid::semantic(
                &at,
                "allowed_function_names can only be set when mode is ANY or VALIDATED.",
            ));
        }
    }
    Ok((mode, allowed))
}

fn check_safety_settings(value: Option<&Value>) -> Result<(), Invalid> {
    let Some(value) = value else {
        return Ok(());
    };
    for (i, setting) in array(value, "safety_settings", "SafetySetting")?
        .iter()
        .enumerate()
    {
        let path = format!("safety_settings[{i}]");
        let obj = object(setting, &path, "SafetySetting")?;
        check_keys(obj, &["category", "threshold", "method"], &path)?;
        if let Some(c) = field(obj, "category") {
            enum_value(
                c,
                &field_path(&path, "category"),
                "HarmCategory",
                HARM_CATEGORIES,
            )?;
        }
        if let Some(t) = field(obj, "threshold") {
            let at = field_path(&path, "threshold");
            enum_value(t, &at, "SafetySetting.HarmBlockThreshold", HARM_THRESHOLDS)?;
        }
    }
    Ok(())
}

/// Everything `generationConfig` decides.
struct Generation {
    max_output_tokens: Option<u64>,
    stop_sequences: Vec<String>,
    candidate_count: u64,
    output: Output,
    thinking: Thinking,
}

fn check_generation_config(value: Option<&Value>) -> Result<Generation, Invalid> {
    let mut out = Generation {
        max_output_tokens: None,
        stop_sequences: Vec::new(),
        candidate_count: 1,
        output: Output::Text,
        thinking: Thinking::Off,
    };
    let Some(value) = value else {
        return Ok(out);
    };
    let path = "generation_config";
    let obj = object(value, path, "GenerationConfig")?;
    check_keys(obj, GENERATION_KEYS, path)?;
    let at = |key: &str| field_path(path, key);
    let ranged = |key: &str, lo: f64, hi: f64| -> Result<(), Invalid> {
        if let Some(v) = field(obj, key) {
            let n = float(v, &at(key))?;
            if !(lo..=hi).contains(&n) {
                return Err(Invalid::semantic(
                    &at(key),
                    &format!("{} must be in the range [{lo}, {hi}].", snake(key)),
                ));
            }
        }
        Ok(())
    };
    ranged("temperature", 0.0, 2.0)?;
    ranged("topP", 0.0, 1.0)?;
    ranged("presencePenalty", -2.0, 2.0)?;
    ranged("frequencyPenalty", -2.0, 2.0)?;
    for key in ["topK", "seed", "logprobs"] {
        if let Some(v) = field(obj, key) {
            // topK is a float in some versions of the proto; any number is accepted.
            if key == "topK" {
                float(v, &at(key))?;
            } else {
                int(v, &at(key))?;
            }
        }
    }
    for key in [
        "responseLogprobs",
        "enableEnhancedCivicAnswers",
        "audioTimestamp",
        "enableAffectiveDialog",
    ] {
        if let Some(v) = field(obj, key) {
            boolean(v, &at(key))?;
        }
    }
    if let Some(v) = field(obj, "candidateCount") {
        let n = int(v, &at("candidateCount"))?;
        if !(1..=MAX_CANDIDATES).contains(&n) {
            return Err(Invalid::semantic(
                &at("candidateCount"),
                &format!("candidate_count must be in the range [1, {MAX_CANDIDATES}]."),
            ));
        }
        out.candidate_count = n as u64;
    }
    if let Some(v) = field(obj, "maxOutputTokens") {
        let n = int(v, &at("maxOutputTokens"))?;
        if n < 0 {
            return Err(Invalid::semantic(
                &at("maxOutputTokens"),
                "max_output_tokens must not be negative.",
            ));
        }
        out.max_output_tokens = Some(n as u64);
    }
    if let Some(v) = field(obj, "stopSequences") {
        let list_path = at("stopSequences");
        let list = array(v, &list_path, "string")?;
        if list.len() > MAX_STOP_SEQUENCES {
            return Err(Invalid::semantic(
                &list_path,
                &format!("stop_sequences must have at most {MAX_STOP_SEQUENCES} entries."),
            ));
        }
        for (i, s) in list.iter().enumerate() {
            let s = string(s, &format!("{list_path}[{i}]"))?;
            if !s.is_empty() {
                out.stop_sequences.push(s.to_owned());
            }
        }
    }
    if let Some(v) = field(obj, "responseModalities") {
        let list_path = at("responseModalities");
        for (i, m) in array(v, &list_path, "Modality")?.iter().enumerate() {
            let modality = enum_value(
                m,
                &format!("{list_path}[{i}]"),
                "GenerationConfig.Modality",
                &["MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO"],
            )?;
            if modality == "IMAGE" || modality == "AUDIO" {
                return Err(Invalid::plain(
                    "The requested combination of response modalities is not supported by the model.",
                ));
            }
        }
    }
    for key in [
        "speechConfig",
        "imageConfig",
        "routingConfig",
        "modelSelectionConfig",
        "translationConfig",
        "audioTranscriptionConfig",
    ] {
        if let Some(v) = field(obj, key) {
            object(v, &at(key), "Config")?;
        }
    }
    if let Some(v) = field(obj, "mediaResolution") {
        string(v, &at("mediaResolution"))?;
    }
    out.output = check_output(obj)?;
    if let Some(v) = field(obj, "thinkingConfig") {
        out.thinking = check_thinking(v)?;
    }
    Ok(out)
}

/// `responseMimeType` with `responseSchema` or `responseJsonSchema`.
fn check_output(obj: &Map<String, Value>) -> Result<Output, Invalid> {
    let path = "generation_config";
    let mime = match field(obj, "responseMimeType") {
        None => "text/plain",
        Some(v) => string(v, &field_path(path, "responseMimeType"))?,
    };
    let json_schema =
        field(obj, "responseJsonSchema").or_else(|| field(obj, "_responseJsonSchema"));
    let schema = match (field(obj, "responseSchema"), json_schema) {
        (Some(_), Some(_)) => {
            return Err(Invalid::semantic(
                path,
                "response_schema and response_json_schema cannot both be set.",
            ))
        }
        (Some(s), None) => Some(schema::to_json_schema(
            s,
            &field_path(path, "responseSchema"),
        )?),
        (None, Some(s)) => {
            object(s, &field_path(path, "responseJsonSchema"), "Value")?;
            Some(s.clone())
        }
        (None, None) => None,
    };
    match mime {
        "application/json" => Ok(Output::Json(schema)),
        "text/x.enum" => {
            let values: Vec<String> = schema
                .as_ref()
                .and_then(|s| s.get("enum"))
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            if values.is_empty() {
                return Err(Invalid::semantic(
                    &field_path(path, "responseSchema"),
                    "a response_schema of type STRING with enum values is required for the text/x.enum response_mime_type.",
                ));
            }
            Ok(Output::Enum(values))
        }
        "text/plain" if schema.is_some() => Err(Invalid::semantic(
            &field_path(path, "responseMimeType"),
            "response_mime_type must be application/json or text/x.enum when a response schema is set.",
        )),
        "text/plain" => Ok(Output::Text),
        other => Err(Invalid::semantic(
            &field_path(path, "responseMimeType"),
            &format!(
                "allowed mimetypes are `text/plain`, `application/json` and `text/x.enum`, got `{other}`."
            ),
        )),
    }
}

fn check_thinking(value: &Value) -> Result<Thinking, Invalid> {
    let path = "generation_config.thinking_config";
    let obj = object(value, path, "ThinkingConfig")?;
    check_keys(
        obj,
        &["includeThoughts", "thinkingBudget", "thinkingLevel"],
        path,
    )?;
    let include = match field(obj, "includeThoughts") {
        None => false,
        Some(v) => boolean(v, &field_path(path, "includeThoughts"))?,
    };
    let budget = match field(obj, "thinkingBudget") {
        None => None,
        Some(v) => Some(int(v, &field_path(path, "thinkingBudget"))?),
    };
    let level = match field(obj, "thinkingLevel") {
        None => None,
        Some(v) => Some(enum_value(
            v,
            &field_path(path, "thinkingLevel"),
            "ThinkingConfig.ThinkingLevel",
            &[
                "THINKING_LEVEL_UNSPECIFIED",
                "MINIMAL",
                "LOW",
                "MEDIUM",
                "HIGH",
            ],
        )?),
    };
    if budget.is_some() && level.is_some() {
        return Err(Invalid::semantic(
            path,
            "thinking_budget and thinking_level cannot both be set.",
        ));
    }
    Ok(match budget {
        Some(0) => Thinking::Off,
        Some(n) if n < -1 => {
            return Err(Invalid::semantic(
                &field_path(path, "thinkingBudget"),
                "thinking_budget must be -1 (dynamic), 0 (off) or positive.",
            ))
        }
        Some(n) => Thinking::On {
            budget: u64::try_from(n).ok(),
            include,
        },
        None if include || level.is_some() => Thinking::On {
            budget: None,
            include,
        },
        None => Thinking::Off,
    })
}

impl<'a> GenerateRequest<'a> {
    /// Validates a `GenerateContentRequest` body.
    pub fn parse(value: &'a Value) -> Result<Self, Invalid> {
        let obj = value
            .as_object()
            .ok_or_else(|| Invalid::bad_value("", "GenerateContentRequest", value))?;
        check_keys(obj, REQUEST_KEYS, "")?;
        Self::parse_object(obj)
    }

    fn parse_object(obj: &'a Map<String, Value>) -> Result<Self, Invalid> {
        if let Some(model) = field(obj, "model") {
            string(model, "model")?;
        }
        let contents = check_contents(field(obj, "contents"), "contents")?;
        let system = field(obj, "systemInstruction");
        if let Some(system) = system {
            check_system(system)?;
        }
        let (tools_raw, functions) = check_tools(field(obj, "tools"))?;
        let (mode, allowed) = check_tool_config(field(obj, "toolConfig"), &functions)?;
        check_safety_settings(field(obj, "safetySettings"))?;
        if let Some(name) = field(obj, "cachedContent") {
            let name = string(name, "cached_content")?;
            if !name.starts_with("cachedContents/") {
                return Err(Invalid::semantic(
                    "cached_content",
                    "cached_content must be of the form `cachedContents/{id}`.",
                ));
            }
        }
        if let Some(labels) = field(obj, "labels") {
            object(labels, "labels", "LabelsEntry")?;
        }
        let generation = check_generation_config(field(obj, "generationConfig"))?;
        Ok(GenerateRequest {
            contents,
            system,
            tools_raw,
            functions,
            mode,
            allowed,
            max_output_tokens: generation.max_output_tokens,
            stop_sequences: generation.stop_sequences,
            candidate_count: generation.candidate_count,
            output: generation.output,
            thinking: generation.thinking,
        })
    }

    /// Validates a `countTokens` body: `contents`, or a whole `generateContentRequest`.
    pub fn parse_count(value: &'a Value) -> Result<Self, Invalid> {
        let obj = value
            .as_object()
            .ok_or_else(|| Invalid::bad_value("", "CountTokensRequest", value))?;
        check_keys(
            obj,
            &[
                "contents",
                "generateContentRequest",
                "model",
                "systemInstruction",
                "tools",
                "generationConfig",
            ],
            "",
        )?;
        match (field(obj, "contents"), field(obj, "generateContentRequest")) {
            (Some(_), Some(_)) => Err(Invalid::plain(
                "* CountTokensRequest: contents and generate_content_request cannot both be set.\n",
            )),
            (_, Some(inner)) => {
                let inner = object(inner, "generate_content_request", "GenerateContentRequest")?;
                check_keys(inner, REQUEST_KEYS, "generate_content_request")?;
                Self::parse_object(inner)
            }
            (_, None) => Self::parse_object(obj),
        }
    }

    /// The prompt's tokens by modality and its cacheable prefixes (see the module docs of
    /// `gemini`): system instruction and tools first, then each content.
    pub fn prompt(&self, model: &str) -> Prompt {
        let mut modalities = Modalities::default();
        let mut hasher = Sha256::new();
        hasher.update(model.as_bytes());
        hasher.update([0]);
        let mut prefixes = Vec::new();
        let remember = |tokens: u64, hasher: &Sha256, prefixes: &mut Vec<(u64, [u8; 32])>| {
            if tokens >= MIN_CACHE_TOKENS {
                prefixes.push((tokens, hasher.clone().finalize().into()));
            }
        };
        if let Some(system) = self.system {
            hasher.update(b"system");
            hash_canonical(system, &[], &mut hasher);
            content_tokens(system, &mut modalities);
        }
        for tool in &self.tools_raw {
            hasher.update(b"tool");
            hash_canonical(tool, &[], &mut hasher);
            modalities.text += tokenizer::count(&tool.to_string());
        }
        remember(modalities.total(), &hasher, &mut prefixes);
        for (i, content) in self.contents.iter().enumerate() {
            hasher.update(b"content");
            hash_canonical(content, &[], &mut hasher);
            content_tokens(content, &mut modalities);
            if i + 1 < self.contents.len() {
                remember(modalities.total(), &hasher, &mut prefixes);
            }
        }
        prefixes.dedup_by_key(|(tokens, _)| *tokens);
        Prompt {
            modalities,
            prefixes,
        }
    }

    /// The text of the last user turn (its text parts, joined), and whether that turn answers
    /// function calls.
    pub fn last_user_turn(&self) -> (String, bool) {
        let Some(content) = self.contents.iter().rev().find(|c| {
            c.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r != "model")
        }) else {
            return (String::new(), false);
        };
        let mut texts = Vec::new();
        let mut responses = false;
        for part in parts(content) {
            if let Some(text) = part.get("text").and_then(Value::as_str) {
                texts.push(text);
            }
            responses |=
                part.get("functionResponse").is_some() || part.get("function_response").is_some();
        }
        (texts.join("\n"), responses)
    }

    /// Every text of the prompt (system instruction and contents), for the safety triggers.
    pub fn all_text(&self) -> impl Iterator<Item = &str> {
        self.system
            .into_iter()
            .chain(self.contents.iter())
            .flat_map(parts)
            .filter_map(|p| p.get("text").and_then(Value::as_str))
    }
}

fn parts(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Adds the tokens of a content's parts (see the module docs of `gemini`).
fn content_tokens(content: &Value, modalities: &mut Modalities) {
    for part in parts(content) {
        let get = |camel_key: &str| part.get(camel_key).or_else(|| part.get(snake(camel_key)));
        let json = |v: Option<&Value>| v.map_or(0, |v| tokenizer::count(&v.to_string()));
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, tokenizer::count);
        if get("thought").and_then(Value::as_bool) == Some(true) {
            // Earlier turns' thoughts are not part of the prompt.
            continue;
        }
        if let Some(t) = get("text") {
            modalities.text += text(Some(t));
        } else if let Some(media) = get("inlineData").or_else(|| get("fileData")) {
            let mime = media
                .get("mimeType")
                .or_else(|| media.get("mime_type"))
                .and_then(Value::as_str)
                .unwrap_or("");
            modalities.add_media(mime);
        } else if let Some(call) = get("functionCall") {
            modalities.text += text(call.get("name")) + json(call.get("args"));
        } else if let Some(response) = get("functionResponse") {
            modalities.text += text(response.get("name")) + json(response.get("response"));
        } else if let Some(code) = get("executableCode") {
            modalities.text += text(code.get("code"));
        } else if let Some(result) = get("codeExecutionResult") {
            modalities.text += text(result.get("output"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: &Value) -> Result<GenerateRequest<'_>, String> {
        GenerateRequest::parse(body).map_err(|e| e.message)
    }

    #[test]
    fn counts_text_media_calls_and_system() {
        let body = json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [
                {"role": "user", "parts": [{"text": "Hello, world!"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]},
                {"role": "model", "parts": [{"text": "hmm", "thought": true}, {"functionCall": {"name": "f", "args": {"a": 1}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"ok": true}}}]}
            ]
        });
        let prompt = parse(&body).unwrap().prompt("m");
        // system 3; hello 4; image 258; call f + {"a":1} (1 + 7); response f + {"ok":true} (1 + 7).
        assert_eq!(prompt.modalities.text, 3 + 4 + 8 + 8);
        assert_eq!(prompt.modalities.image, MEDIA_TOKENS);
        assert!(prompt.prefixes.is_empty());
    }

    #[test]
    fn long_prefixes_are_cacheable() {
        let long = "word ".repeat(1100);
        let body = json!({
            "systemInstruction": {"parts": [{"text": long}]},
            "contents": [{"role": "user", "parts": [{"text": "a"}]}, {"role": "model", "parts": [{"text": "b"}]}, {"role": "user", "parts": [{"text": "c"}]}]
        });
        let prompt = parse(&body).unwrap().prompt("m");
        let tokens: Vec<u64> = prompt.prefixes.iter().map(|p| p.0).collect();
        assert_eq!(tokens, vec![1100, 1101, 1102]);
        assert_eq!(prompt.total(), 1103);
        let other = parse(&body).unwrap().prompt("other-model");
        assert_ne!(
            other.prefixes[0].1, prompt.prefixes[0].1,
            "caches are per model"
        );
    }

    #[test]
    fn rejects_common_mistakes_naming_the_field() {
        let user = json!([{"role": "user", "parts": [{"text": "x"}]}]);
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "* GenerateContentRequest.contents: contents is not specified"),
            (json!({"contents": []}), "contents is not specified"),
            (json!({"contents": "hi"}), "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \"hi\""),
            (json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}), "Please use a valid role: user, model."),
            (json!({"contents": [{"role": "user", "parts": []}]}), "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty."),
            (json!({"contents": [{"role": "user", "parts": [{}]}]}), "contents[0].parts[0].data: required oneof field 'data'"),
            (json!({"contents": [{"role": "user", "parts": [{"text": "x", "inlineData": {"mimeType": "image/png", "data": "AA=="}}]}]}), "Oneof field 'data' is already set"),
            (json!({"contents": [{"role": "user", "content": "x"}]}), "Unknown name \"content\" at 'contents[0]': Cannot find field."),
            (json!({"contents": user, "temperature": 1}), "Unknown name \"temperature\": Cannot find field."),
            (json!({"contents": user, "generationConfig": {"maxOutputTokens": "many"}}), "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), \"many\""),
            (json!({"contents": user, "generationConfig": {"temperature": 3}}), "generation_config.temperature: temperature must be in the range [0, 2]"),
            (json!({"contents": user, "generationConfig": {"max_tokens": 3}}), "Unknown name \"max_tokens\" at 'generation_config'"),
            (json!({"contents": user, "generationConfig": {"responseSchema": {"type": "OBJECT"}}}), "response_mime_type must be application/json"),
            (json!({"contents": user, "generationConfig": {"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "oneOf": []}}}), "Unknown name \"oneOf\" at 'generation_config.response_schema'"),
            (json!({"contents": user, "generationConfig": {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "LOW"}}}), "cannot both be set"),
            (json!({"contents": user, "tools": [{"functionDeclarations": [{"name": "bad name"}]}]}), "* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name."),
            (json!({"contents": user, "tools": {"functionDeclarations": []}}), "Invalid value at 'tools'"),
            (json!({"contents": user, "tools": [{"functions": []}]}), "Unknown name \"functions\" at 'tools[0]'"),
            (json!({"contents": user, "tools": [{"functionDeclarations": [{"name": "f"}]}], "toolConfig": {"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["f"]}}}), "allowed_function_names can only be set"),
            (json!({"contents": user, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}}), "Invalid value at 'tool_config.function_calling_config.mode'"),
            (json!({"contents": [
                {"role": "user", "parts": [{"text": "x"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "a"}}, {"functionCall": {"name": "b"}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "a", "response": {}}}]}
            ]}), "number of function response parts is equal to the number of function call parts"),
            (json!({"contents": [{"role": "model", "parts": [{"text": "x", "thoughtSignature": "not base64!"}]}]}), "thought_signature' (TYPE_BYTES)"),
        ];
        for (body, want) in cases {
            let got = parse(&body).err().unwrap_or_default();
            assert!(got.contains(want), "{body}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn accepts_snake_case_and_the_documented_shapes() {
        let body = json!({
            "contents": [{"parts": [{"text": "call get_weather"}]}],
            "system_instruction": {"parts": [{"text": "sys"}]},
            "tools": [{"function_declarations": [{"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}, {"googleSearch": {}}],
            "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generation_config": {"max_output_tokens": "64", "stop_sequences": ["x"], "candidate_count": 2, "thinking_config": {"include_thoughts": true, "thinking_budget": 128}, "response_mime_type": "application/json", "response_json_schema": {"type": "object"}}
        });
        let req = parse(&body).unwrap();
        assert_eq!(req.functions.len(), 1);
        assert_eq!(
            req.functions[0].parameters.as_ref().unwrap()["type"],
            "object"
        );
        assert_eq!(req.mode, CallingMode::Any);
        assert_eq!(req.allowed, vec!["get_weather"]);
        assert_eq!(req.max_output_tokens, Some(64));
        assert_eq!(req.stop_sequences, vec!["x"]);
        assert_eq!(req.candidate_count, 2);
        assert_eq!(
            req.thinking,
            Thinking::On {
                budget: Some(128),
                include: true
            }
        );
        assert!(matches!(req.output, Output::Json(Some(_))));
        assert_eq!(req.last_user_turn().0, "call get_weather");
        let count = json!({"generateContentRequest": {"model": "models/m", "contents": [{"parts": [{"text": "a b"}]}]}});
        assert_eq!(
            GenerateRequest::parse_count(&count)
                .unwrap()
                .prompt("m")
                .total(),
            2
        );
    }
}
