//! The simulated model's reply to a Messages request — thinking, text or tool calls, with the
//! stop reason and output tokens — a pure function of the request and the behaviour, and its
//! non-streaming JSON form.

use serde::Serialize;
use serde_json::Value;

use super::request::{MessagesRequest, Thinking, Tool, ToolChoice};
use super::InputUsage;
use crate::control::Behaviour;
use crate::generate::{base64_encode, bytes_hash, json_for_schema, words, Rng};
use crate::tokenizer;

/// The word in the last user turn that turns thinking into a `redacted_thinking` block.
pub const REDACT_TRIGGER: &str = "redact";

/// One content block of the reply, serialised as Anthropic's.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
        /// `input` as compact JSON, the text streamed in `input_json_delta`s.
        #[serde(skip)]
        input_json: String,
    },
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub blocks: Vec<Block>,
    pub stop_reason: &'static str,
    pub stop_sequence: Option<String>,
    pub output_tokens: u64,
}

/// `usage` as Anthropic reports it: `input_tokens` excludes cache reads and writes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation: CacheCreation,
    pub output_tokens: u64,
    pub service_tier: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct CacheCreation {
    pub ephemeral_5m_input_tokens: u64,
    pub ephemeral_1h_input_tokens: u64,
}

impl Usage {
    pub fn new(input: InputUsage, output_tokens: u64) -> Self {
        Usage {
            input_tokens: input.input_tokens,
            cache_creation_input_tokens: input.cache_creation_input_tokens,
            cache_read_input_tokens: input.cache_read_input_tokens,
            cache_creation: CacheCreation {
                ephemeral_5m_input_tokens: input.ephemeral_5m_input_tokens,
                ephemeral_1h_input_tokens: input.ephemeral_1h_input_tokens,
            },
            output_tokens,
            service_tier: "standard",
        }
    }
}

/// The whole `Message` object.
#[derive(Serialize)]
pub struct MessageOut<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub role: &'static str,
    pub model: &'a str,
    pub content: &'a [Block],
    pub stop_reason: Option<&'a str>,
    pub stop_sequence: Option<&'a str>,
    pub usage: &'a Usage,
}

pub fn render<'a>(
    id: &'a str,
    model: &'a str,
    answer: &'a Answer,
    usage: &'a Usage,
) -> MessageOut<'a> {
    MessageOut {
        id,
        kind: "message",
        role: "assistant",
        model,
        content: &answer.blocks,
        stop_reason: Some(answer.stop_reason),
        stop_sequence: answer.stop_sequence.as_deref(),
        usage,
    }
}

/// The last user turn: its own text (not text inside tool results), and whether it answers
/// tool calls.
struct LastTurn {
    text: String,
    has_tool_results: bool,
}

fn last_user_turn(messages: &[Value]) -> LastTurn {
    let mut turn = LastTurn {
        text: String::new(),
        has_tool_results: false,
    };
    let Some(message) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return turn;
    };
    match message.get("content") {
        Some(Value::String(text)) => turn.text.clone_from(text),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            for block in blocks {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => texts.extend(block.get("text").and_then(Value::as_str)),
                    Some("tool_result") => turn.has_tool_results = true,
                    _ => {}
                }
            }
            turn.text = texts.join("\n");
        }
        _ => {}
    }
    turn
}

/// `n` characters of `[0-9A-Za-z]`, for ids that look like Anthropic's.
fn base62(rng: &mut Rng, n: usize) -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| ALPHABET[rng.below(62) as usize] as char)
        .collect()
}

/// `len` opaque bytes derived from `parts`, base64-encoded: signatures and redacted data.
fn opaque(parts: &[&[u8]], len: usize) -> String {
    let mut bytes = Vec::with_capacity(len + 32);
    let mut block = bytes_hash(parts);
    while bytes.len() < len {
        bytes.extend_from_slice(&block);
        block = bytes_hash(&[&block]);
    }
    bytes.truncate(len);
    base64_encode(&bytes)
}

/// The tools to call (see the module docs).
fn chosen_tools<'r, 'a>(req: &'r MessagesRequest<'a>, turn: &LastTurn) -> Vec<&'r Tool<'a>> {
    let mentioned = || -> Vec<&'r Tool<'a>> {
        req.tools
            .iter()
            .filter(|t| turn.text.contains(t.name))
            .collect()
    };
    let mut chosen = match req.tool_choice {
        ToolChoice::None => Vec::new(),
        ToolChoice::Tool(name) => req
            .tools
            .iter()
            .filter(|t| t.name == name)
            .take(1)
            .collect(),
        ToolChoice::Auto if turn.has_tool_results => Vec::new(),
        ToolChoice::Auto => mentioned(),
        ToolChoice::Any => {
            let found = mentioned();
            if found.is_empty() {
                req.tools.iter().take(1).collect()
            } else {
                found
            }
        }
    };
    if req.disable_parallel {
        chosen.truncate(1);
    }
    chosen
}

/// The reply to `req` under `behaviour`, seeded by the request hash.
pub fn generate(req: &MessagesRequest<'_>, behaviour: &Behaviour, hash: &[u8; 32]) -> Answer {
    let mut rng = Rng::from_hash(hash);
    let turn = last_user_turn(req.messages);
    let cap = req.max_tokens.unwrap_or(u64::MAX);
    let mut blocks = Vec::new();
    let mut output_tokens = 0;

    if let Thinking::On { budget, omitted } = req.thinking {
        let n = behaviour
            .output_tokens
            .min(budget.unwrap_or(u64::MAX))
            .min(cap);
        let mut think_rng = rng.fork();
        if n > 0 {
            let thinking = words(&mut think_rng, n);
            output_tokens += n;
            let block = if turn.text.to_ascii_lowercase().contains(REDACT_TRIGGER) {
                Block::RedactedThinking {
                    data: opaque(&[b"redacted", hash, thinking.as_bytes()], 192),
                }
            } else {
                let signature = opaque(&[b"signature", hash, thinking.as_bytes()], 96);
                Block::Thinking {
                    thinking: if omitted { String::new() } else { thinking },
                    signature,
                }
            };
            blocks.push(block);
        }
    }
    let remaining = cap - output_tokens;

    let tools = chosen_tools(req, &turn);
    if !tools.is_empty() && remaining > 0 {
        for tool in tools {
            let mut call_rng = rng.fork();
            let id = format!("toolu_01{}", base62(&mut call_rng, 22));
            let input = json_for_schema(tool.input_schema, &mut call_rng);
            let input_json = input.to_string();
            output_tokens += tokenizer::count(tool.name) + tokenizer::count(&input_json);
            blocks.push(Block::ToolUse {
                id,
                name: tool.name.to_owned(),
                input,
                input_json,
            });
        }
        return Answer {
            blocks,
            stop_reason: "tool_use",
            stop_sequence: None,
            output_tokens,
        };
    }

    let mut text_rng = rng.fork();
    let (text, stop_reason, stop_sequence) = if let Some(schema) = req.format {
        // Structured output is never cut: a partial document would not be valid JSON.
        let text = json_for_schema(schema, &mut text_rng).to_string();
        (text, "end_turn", None)
    } else {
        let wanted = behaviour.output_tokens;
        let n = wanted.min(remaining);
        let mut text = words(&mut text_rng, n);
        let mut stop_reason = if n < wanted { "max_tokens" } else { "end_turn" };
        // The earliest match of any stop sequence ends the text, without the sequence itself.
        let hit = req
            .stop_sequences
            .iter()
            .filter_map(|s| text.find(s).map(|at| (at, *s)))
            .min_by_key(|(at, _)| *at);
        let mut stop_sequence = None;
        if let Some((at, sequence)) = hit {
            text.truncate(at);
            stop_reason = "stop_sequence";
            stop_sequence = Some(sequence.to_owned());
        }
        (text, stop_reason, stop_sequence)
    };
    output_tokens += tokenizer::count(&text);
    if !text.is_empty() {
        blocks.push(Block::Text { text });
    }
    Answer {
        blocks,
        stop_reason,
        stop_sequence,
        output_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anthropic::request::Mode;
    use serde_json::json;

    fn answer(body: &Value) -> Answer {
        let req = MessagesRequest::parse(body, Mode::Create).unwrap();
        generate(&req, &Behaviour::default(), &[7; 32])
    }

    #[test]
    fn thinking_then_text_counts_both() {
        let a = answer(&json!({
            "model": "m", "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "hi"}]
        }));
        assert_eq!(a.blocks.len(), 2);
        let Block::Thinking {
            thinking,
            signature,
        } = &a.blocks[0]
        else {
            panic!("{a:?}")
        };
        assert_eq!(tokenizer::count(thinking), 16);
        assert_eq!(signature.len(), 128);
        assert_eq!(a.output_tokens, 32);
        assert_eq!(a.stop_reason, "end_turn");
    }

    #[test]
    fn redact_trigger_and_max_tokens_inside_thinking() {
        let a = answer(&json!({
            "model": "m", "max_tokens": 1030, "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": "please REDACT this"}]
        }));
        assert!(matches!(a.blocks[0], Block::RedactedThinking { .. }));
        let cut = answer(&json!({
            "model": "m", "max_tokens": 5, "thinking": {"type": "adaptive"},
            "messages": [{"role": "user", "content": "hi"}]
        }));
        assert_eq!(cut.blocks.len(), 1);
        assert_eq!(cut.output_tokens, 5);
        assert_eq!(cut.stop_reason, "max_tokens");
    }

    #[test]
    fn stop_sequence_cuts_before_the_match() {
        let body = json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]});
        let Block::Text { text } = &answer(&body).blocks[0] else {
            panic!()
        };
        let third = text.split(' ').nth(2).unwrap().to_owned();
        let mut with_stop = body.clone();
        with_stop["stop_sequences"] = json!(["zzz", format!(" {third}")]);
        let a = answer(&with_stop);
        assert_eq!(a.stop_reason, "stop_sequence");
        assert_eq!(
            a.stop_sequence.as_deref(),
            Some(format!(" {third}").as_str())
        );
        let Block::Text { text: cut } = &a.blocks[0] else {
            panic!()
        };
        assert!(text.starts_with(cut.as_str()) && tokenizer::count(cut) <= 2);
    }
}
