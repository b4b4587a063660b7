//! The simulated model's reply to a Converse request — reasoning, text or tool calls, with the
//! stop reason, output tokens and usage — a pure function of the request and the behaviour
//! (usage aside, which reads the upstream's prompt cache), and its non-streaming JSON form.

use serde_json::{json, Map, Value};

use super::request::{ConverseRequest, Prompt, Thinking, Tool, ToolChoice, Ttl};
use crate::control::{Behaviour, Upstream};
use crate::generate::{base64_encode, bytes_hash, json_for_schema, words, Rng};
use crate::tokenizer;

/// The word in the last user turn that turns reasoning into a `redactedContent` block.
pub const REDACT_TRIGGER: &str = "redact";
/// The text in the last user turn that makes the model's answer get filtered.
pub const UNSAFE_TRIGGER: &str = "unsafe-answer";
/// What a guardrail answers instead of a blocked reply (the console's default message).
pub const GUARDRAIL_MESSAGE: &str = "Sorry, the model cannot answer this question.";

/// One content block of the reply.
#[derive(Debug, Clone)]
pub enum Block {
    Reasoning {
        text: String,
        signature: String,
    },
    /// Redacted reasoning, base64.
    Redacted {
        data: String,
    },
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
        /// `input` as compact JSON, the text streamed in `toolUse` deltas.
        input_json: String,
    },
}

impl Block {
    fn to_json(&self) -> Value {
        match self {
            Block::Reasoning { text, signature } => {
                json!({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}})
            }
            Block::Redacted { data } => json!({"reasoningContent": {"redactedContent": data}}),
            Block::Text { text } => json!({"text": text}),
            Block::ToolUse {
                id, name, input, ..
            } => json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub blocks: Vec<Block>,
    pub stop_reason: &'static str,
    pub stop_sequence: Option<String>,
    pub output_tokens: u64,
}

/// `usage` as Bedrock reports it: `inputTokens` excludes cache reads and writes, and
/// `totalTokens` adds all four.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
}

impl Usage {
    /// Splits the prompt into read, written and uncached tokens against the upstream's prompt
    /// cache, and remembers its prefixes.
    pub fn new(prompt: &Prompt, upstream: &Upstream, output_tokens: u64) -> Self {
        let mut usage = Usage {
            input_tokens: prompt.total,
            output_tokens,
            ..Usage::default()
        };
        let Some(last) = prompt.breakpoints.last() else {
            return usage;
        };
        let hashes: Vec<[u8; 32]> = prompt.breakpoints.iter().map(|b| b.hash).collect();
        let hit = upstream.cache_prefixes(&hashes);
        usage.input_tokens = prompt.total - last.tokens;
        let mut covered = 0;
        if let Some(i) = hit {
            covered = prompt.breakpoints[i].tokens;
            usage.cache_read = covered;
        }
        let written = hit.map_or(0, |i| i + 1);
        for breakpoint in &prompt.breakpoints[written..] {
            // Each cache point writes the stretch since the previous one, at its own TTL.
            let segment = breakpoint.tokens.saturating_sub(covered);
            covered = covered.max(breakpoint.tokens);
            match breakpoint.ttl {
                Ttl::FiveMinutes => usage.cache_write_5m += segment,
                Ttl::OneHour => usage.cache_write_1h += segment,
            }
        }
        usage
    }

    pub fn cache_write(&self) -> u64 {
        self.cache_write_5m + self.cache_write_1h
    }

    pub fn to_json(self) -> Value {
        let total = self.input_tokens + self.output_tokens + self.cache_read + self.cache_write();
        let mut usage = json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": total,
            "cacheReadInputTokens": self.cache_read,
            "cacheWriteInputTokens": self.cache_write(),
        });
        // Sorted by TTL, 1h before 5m, only when something was written.
        let details: Vec<Value> = [("1h", self.cache_write_1h), ("5m", self.cache_write_5m)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(ttl, n)| json!({"ttl": ttl, "inputTokens": n}))
            .collect();
        if !details.is_empty() {
            usage["cacheDetails"] = Value::Array(details);
        }
        usage
    }
}

/// The last user turn: its own text (not text inside tool results), and whether it answers
/// tool calls.
pub struct LastTurn {
    pub text: String,
    pub has_tool_results: bool,
}

pub fn last_user_turn(messages: &[Value]) -> LastTurn {
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
    let mut texts = Vec::new();
    for block in message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            texts.push(text);
        }
        if block.get("toolResult").is_some() {
            turn.has_tool_results = true;
        }
    }
    turn.text = texts.join("\n");
    turn
}

/// `n` characters of `[0-9A-Za-z]`, for ids that look like Bedrock's.
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

/// The tools to call (see the module docs of `bedrock`).
fn chosen_tools<'r, 'a>(req: &'r ConverseRequest<'a>, turn: &LastTurn) -> Vec<&'r Tool<'a>> {
    let mentioned = || -> Vec<&'r Tool<'a>> {
        req.tools
            .iter()
            .filter(|t| turn.text.contains(t.name))
            .collect()
    };
    match req.tool_choice {
        ToolChoice::Tool(name) => req.tools.iter().filter(|t| t.name == name).collect(),
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
    }
}

/// The reply to `req` under `behaviour`, seeded by the request hash.
pub fn generate(
    req: &ConverseRequest<'_>,
    turn: &LastTurn,
    behaviour: &Behaviour,
    hash: &[u8; 32],
) -> Answer {
    if turn.text.to_ascii_lowercase().contains(UNSAFE_TRIGGER) {
        return filtered(req.guardrail);
    }
    let mut rng = Rng::from_hash(hash);
    let cap = req.max_tokens.unwrap_or(u64::MAX);
    let mut blocks = Vec::new();
    let mut output_tokens = 0;

    if let Thinking::On { budget } = req.thinking {
        let n = behaviour
            .output_tokens
            .min(budget.unwrap_or(u64::MAX))
            .min(cap);
        let mut think_rng = rng.fork();
        if n > 0 {
            let text = words(&mut think_rng, n);
            output_tokens += n;
            let block = if turn.text.to_ascii_lowercase().contains(REDACT_TRIGGER) {
                Block::Redacted {
                    data: opaque(&[b"redacted", hash, text.as_bytes()], 192),
                }
            } else {
                Block::Reasoning {
                    signature: opaque(&[b"signature", hash, text.as_bytes()], 96),
                    text,
                }
            };
            blocks.push(block);
        }
    }
    let remaining = cap - output_tokens;

    let tools = chosen_tools(req, turn);
    if !tools.is_empty() && remaining > 0 {
        for tool in tools {
            let mut call_rng = rng.fork();
            let id = format!("tooluse_{}", base62(&mut call_rng, 22));
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
    let (text, stop_reason, stop_sequence) = if let Some(schema) = &req.format {
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

/// A reply the content filter (or, with `guardrailConfig`, the guardrail) stopped.
fn filtered(guardrail: bool) -> Answer {
    if guardrail {
        return Answer {
            blocks: vec![Block::Text {
                text: GUARDRAIL_MESSAGE.to_owned(),
            }],
            stop_reason: "guardrail_intervened",
            stop_sequence: None,
            output_tokens: 0,
        };
    }
    Answer {
        blocks: Vec::new(),
        stop_reason: "content_filtered",
        stop_sequence: None,
        output_tokens: 0,
    }
}

/// `additionalModelResponseFields` for the requested JSON pointers, read from the model's own
/// (Claude-shaped) response: `stop_reason`, `stop_sequence`, `usage`. Pointers that name
/// nothing are left out.
pub fn additional_fields(paths: &[&str], answer: &Answer, usage: &Usage) -> Option<Value> {
    if paths.is_empty() {
        return None;
    }
    let native = json!({
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
    });
    let mut out = Value::Object(Map::new());
    for path in paths {
        let Some(found) = native.pointer(path) else {
            continue;
        };
        let mut slot = &mut out;
        let keys: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for (i, key) in keys.iter().enumerate() {
            let Value::Object(map) = slot else { break };
            let next = if i + 1 == keys.len() {
                found.clone()
            } else {
                Value::Object(Map::new())
            };
            slot = map.entry((*key).to_owned()).or_insert(next);
        }
    }
    Some(out)
}

/// What the response carries besides the message.
pub struct Extras {
    pub additional: Option<Value>,
    pub performance: Option<Value>,
    pub service_tier: Option<Value>,
}

/// The whole Converse response.
pub fn render(answer: &Answer, usage: &Usage, extras: &Extras, latency_ms: u64) -> Value {
    let content: Vec<Value> = answer.blocks.iter().map(Block::to_json).collect();
    let mut out = json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": answer.stop_reason,
        "usage": usage.to_json(),
        "metrics": {"latencyMs": latency_ms},
    });
    if let Some(additional) = &extras.additional {
        out["additionalModelResponseFields"] = additional.clone();
    }
    if let Some(performance) = &extras.performance {
        out["performanceConfig"] = performance.clone();
    }
    if let Some(tier) = &extras.service_tier {
        out["serviceTier"] = tier.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bedrock::request::Breakpoint;

    fn answer(body: &Value) -> Answer {
        let req = ConverseRequest::parse(body).unwrap();
        let turn = last_user_turn(req.messages);
        generate(&req, &turn, &Behaviour::default(), &[7; 32])
    }

    fn user(text: &str) -> Value {
        json!([{"role": "user", "content": [{"text": text}]}])
    }

    #[test]
    fn reasoning_then_text_counts_both() {
        let a = answer(&json!({
            "messages": user("hi"),
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}}
        }));
        let [Block::Reasoning { text, signature }, Block::Text { .. }] = &a.blocks[..] else {
            panic!("{a:?}")
        };
        assert_eq!(tokenizer::count(text), 16);
        assert_eq!(signature.len(), 128);
        assert_eq!(a.output_tokens, 32);
        let redacted = answer(&json!({
            "messages": user("please redact"),
            "additionalModelRequestFields": {"reasoningConfig": {"type": "enabled"}}
        }));
        assert!(matches!(redacted.blocks[0], Block::Redacted { .. }));
    }

    #[test]
    fn filters_and_guardrails() {
        let a = answer(&json!({"messages": user("say unsafe-answer")}));
        assert_eq!(a.stop_reason, "content_filtered");
        assert!(a.blocks.is_empty());
        let g = answer(
            &json!({"messages": user("unsafe-answer"), "guardrailConfig": {
                "guardrailIdentifier": "g", "guardrailVersion": "1"
            }}),
        );
        assert_eq!(g.stop_reason, "guardrail_intervened");
    }

    #[test]
    fn usage_splits_cache_reads_and_writes() {
        let upstream = Upstream::default();
        let prompt = Prompt {
            total: 100,
            breakpoints: vec![
                Breakpoint {
                    tokens: 30,
                    hash: [1; 32],
                    ttl: Ttl::OneHour,
                },
                Breakpoint {
                    tokens: 70,
                    hash: [2; 32],
                    ttl: Ttl::FiveMinutes,
                },
            ],
        };
        let first = Usage::new(&prompt, &upstream, 5);
        assert_eq!(
            (first.input_tokens, first.cache_read, first.cache_write()),
            (30, 0, 70)
        );
        let json = first.to_json();
        assert_eq!(json["totalTokens"], 105);
        assert_eq!(
            json["cacheDetails"],
            json!([{"ttl": "1h", "inputTokens": 30}, {"ttl": "5m", "inputTokens": 40}])
        );
        let again = Usage::new(&prompt, &upstream, 5);
        assert_eq!(
            (again.input_tokens, again.cache_read, again.cache_write()),
            (30, 70, 0)
        );
        assert!(again.to_json().get("cacheDetails").is_none());
    }

    #[test]
    fn additional_fields_follow_pointers() {
        let a = Answer {
            blocks: Vec::new(),
            stop_reason: "stop_sequence",
            stop_sequence: Some("END".into()),
            output_tokens: 1,
        };
        let fields = additional_fields(
            &["/stop_sequence", "/usage/output_tokens", "/nothing"],
            &a,
            &Usage::default(),
        );
        assert_eq!(
            fields,
            Some(json!({"stop_sequence": "END", "usage": {"output_tokens": 0}}))
        );
        assert_eq!(additional_fields(&[], &a, &Usage::default()), None);
    }
}
