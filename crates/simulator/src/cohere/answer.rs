//! The simulated model's reply to a v2 Chat request — thinking, text with citations, or a tool
//! plan with tool calls, with the finish reason and output tokens — a pure function of the
//! request and the behaviour, and its non-streaming JSON form.

use serde::Serialize;
use serde_json::Value;

use super::request::{ChatRequest, Format, PromptTokens, Tool, ToolChoice};
use crate::control::Behaviour;
use crate::generate::{json_for_schema, words, Rng};
use crate::tokenizer;

/// One content block of the reply, serialised as Cohere's.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Thinking { thinking: String },
    Text { text: String },
}

impl Block {
    /// The block's text, streamed in `content-delta`s.
    pub fn text(&self) -> &str {
        match self {
            Block::Thinking { thinking } => thinking,
            Block::Text { text } => text,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: Function,
}

#[derive(Debug, Clone, Serialize)]
pub struct Function {
    pub name: String,
    pub arguments: String,
}

/// A citation of one span of the text block.
#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub sources: Vec<Value>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub content_index: usize,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub blocks: Vec<Block>,
    pub tool_plan: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub citations: Vec<Citation>,
    pub finish_reason: &'static str,
    pub output_tokens: u64,
}

/// `usage` as Cohere reports it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub billed_units: Tokens,
    pub tokens: Tokens,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tokens {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn new(prompt: PromptTokens, output_tokens: u64) -> Self {
        Usage {
            billed_units: Tokens {
                input_tokens: prompt.billed,
                output_tokens,
            },
            tokens: Tokens {
                input_tokens: prompt.total,
                output_tokens,
            },
        }
    }
}

/// The whole non-streamed response.
#[derive(Serialize)]
pub struct ChatResponse<'a> {
    pub id: &'a str,
    pub message: MessageOut<'a>,
    pub finish_reason: &'a str,
    pub usage: &'a Usage,
}

#[derive(Serialize)]
pub struct MessageOut<'a> {
    pub role: &'static str,
    #[serde(skip_serializing_if = "<[Block]>::is_empty")]
    pub content: &'a [Block],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_plan: Option<&'a str>,
    #[serde(skip_serializing_if = "<[ToolCall]>::is_empty")]
    pub tool_calls: &'a [ToolCall],
    #[serde(skip_serializing_if = "<[Citation]>::is_empty")]
    pub citations: &'a [Citation],
}

pub fn render<'a>(id: &'a str, answer: &'a Answer, usage: &'a Usage) -> ChatResponse<'a> {
    ChatResponse {
        id,
        message: MessageOut {
            role: "assistant",
            content: &answer.blocks,
            tool_plan: answer.tool_plan.as_deref(),
            tool_calls: &answer.tool_calls,
            citations: &answer.citations,
        },
        finish_reason: answer.finish_reason,
        usage,
    }
}

/// `n` characters of `[0-9a-z]`, for call ids that look like Cohere's.
fn base36(rng: &mut Rng, n: usize) -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| ALPHABET[rng.below(36) as usize] as char)
        .collect()
}

/// The tools to call (see the module docs).
fn chosen_tools<'r, 'a>(req: &'r ChatRequest<'a>) -> Vec<&'r Tool<'a>> {
    let text = req.last_user_text();
    let mentioned: Vec<&Tool<'a>> = req.tools.iter().filter(|t| text.contains(t.name)).collect();
    match req.tool_choice {
        ToolChoice::None => Vec::new(),
        ToolChoice::Auto if req.answers_tool_results() => Vec::new(),
        ToolChoice::Auto => mentioned,
        ToolChoice::Required if mentioned.is_empty() => req.tools.iter().take(1).collect(),
        ToolChoice::Required => mentioned,
    }
}

/// "I will use a, b and c to answer this."
fn plan_for(names: &[&str]) -> String {
    let list = match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    format!("I will use {list} to answer this.")
}

/// Citation `k` covers word `k` of `text`, with source `k`; surplus sources join the last.
fn cite(text: &str, sources: Vec<Value>, content_index: usize) -> Vec<Citation> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c == ' ', start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    let mut citations: Vec<Citation> = Vec::new();
    for (k, source) in sources.into_iter().enumerate() {
        match spans.get(k) {
            Some(&(start, end)) => citations.push(Citation {
                start,
                end,
                text: text[start..end].to_owned(),
                sources: vec![source],
                kind: "TEXT_CONTENT",
                content_index,
            }),
            None => match citations.last_mut() {
                Some(last) => last.sources.push(source),
                None => break,
            },
        }
    }
    citations
}

/// The reply to `req` under `behaviour`, seeded by the request hash.
pub fn generate(req: &ChatRequest<'_>, behaviour: &Behaviour, hash: &[u8; 32]) -> Answer {
    let mut rng = Rng::from_hash(hash);
    let cap = req.max_tokens.unwrap_or(u64::MAX);
    let mut blocks = Vec::new();
    let mut output_tokens = 0;

    if let Some(budget) = req.thinking {
        let n = behaviour
            .output_tokens
            .min(budget.unwrap_or(u64::MAX))
            .min(cap);
        let mut think_rng = rng.fork();
        if n > 0 {
            blocks.push(Block::Thinking {
                thinking: words(&mut think_rng, n),
            });
            output_tokens += n;
        }
    }
    let remaining = cap - output_tokens;

    let tools = chosen_tools(req);
    if !tools.is_empty() && remaining > 0 {
        let names: Vec<&str> = tools.iter().map(|t| t.name).collect();
        let plan = plan_for(&names);
        output_tokens += tokenizer::count(&plan);
        let mut tool_calls = Vec::new();
        for tool in tools {
            let mut call_rng = rng.fork();
            let id = format!("{}_{}", tool.name, base36(&mut call_rng, 12));
            let arguments = json_for_schema(tool.parameters, &mut call_rng).to_string();
            output_tokens += tokenizer::count(tool.name) + tokenizer::count(&arguments);
            tool_calls.push(ToolCall {
                id,
                kind: "function",
                function: Function {
                    name: tool.name.to_owned(),
                    arguments,
                },
            });
        }
        return Answer {
            blocks,
            tool_plan: Some(plan),
            tool_calls,
            citations: Vec::new(),
            finish_reason: "TOOL_CALL",
            output_tokens,
        };
    }

    let mut text_rng = rng.fork();
    let (text, finish_reason) = match req.format {
        // Structured output is never cut: a partial document would not be valid JSON.
        Format::Json(Some(schema)) => (
            json_for_schema(schema, &mut text_rng).to_string(),
            "COMPLETE",
        ),
        Format::Json(None) => {
            let n = behaviour.output_tokens.max(1);
            let doc = serde_json::json!({"answer": words(&mut text_rng, n)});
            (doc.to_string(), "COMPLETE")
        }
        Format::Text => {
            let wanted = behaviour.output_tokens;
            let n = wanted.min(remaining);
            let mut text = words(&mut text_rng, n);
            let mut finish = if n < wanted { "MAX_TOKENS" } else { "COMPLETE" };
            // The earliest match of any stop sequence ends the text, without the sequence.
            let hit = req.stop_sequences.iter().filter_map(|s| text.find(s)).min();
            if let Some(at) = hit {
                text.truncate(at);
                finish = "STOP_SEQUENCE";
            }
            (text, finish)
        }
    };
    output_tokens += tokenizer::count(&text);
    let citations = if matches!(req.format, Format::Text) {
        cite(&text, req.sources(), blocks.len())
    } else {
        Vec::new()
    };
    if !text.is_empty() {
        blocks.push(Block::Text { text });
    }
    Answer {
        blocks,
        tool_plan: None,
        tool_calls: Vec::new(),
        citations,
        finish_reason,
        output_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(body: &Value) -> Answer {
        let req = ChatRequest::parse(body).unwrap();
        generate(&req, &Behaviour::default(), &[7; 32])
    }

    #[test]
    fn plans_name_every_tool() {
        assert_eq!(plan_for(&["a"]), "I will use a to answer this.");
        assert_eq!(
            plan_for(&["a", "b", "c"]),
            "I will use a, b and c to answer this."
        );
    }

    #[test]
    fn citations_cover_successive_words() {
        let sources = vec![json!(1), json!(2), json!(3)];
        let c = cite("alpha beta", sources, 1);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].start, c[0].end, c[0].text.as_str()), (0, 5, "alpha"));
        assert_eq!((c[1].start, c[1].end, c[1].text.as_str()), (6, 10, "beta"));
        assert_eq!(c[1].sources, vec![json!(2), json!(3)]);
        assert_eq!(c[0].content_index, 1);
        assert!(cite("", vec![json!(1)], 0).is_empty());
    }

    #[test]
    fn thinking_counts_and_max_tokens_cut_it() {
        let a = answer(
            &json!({"model": "m", "thinking": {"type": "enabled"}, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert!(matches!(a.blocks[0], Block::Thinking { .. }));
        assert!(matches!(a.blocks[1], Block::Text { .. }));
        assert_eq!(a.output_tokens, 32);
        let cut = answer(
            &json!({"model": "m", "max_tokens": 5, "thinking": {"type": "enabled"}, "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(cut.blocks.len(), 1);
        assert_eq!((cut.output_tokens, cut.finish_reason), (5, "MAX_TOKENS"));
    }

    #[test]
    fn stop_sequence_cuts_before_the_match() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let full = answer(&body).blocks[0].text().to_owned();
        let third = format!(" {}", full.split(' ').nth(2).unwrap());
        let mut with_stop = body.clone();
        with_stop["stop_sequences"] = json!(["zzz", third]);
        let a = answer(&with_stop);
        assert_eq!(a.finish_reason, "STOP_SEQUENCE");
        assert!(full.starts_with(a.blocks[0].text()) && !a.blocks[0].text().contains(&third));
    }
}
