//! The server-sent events of a streamed Message, in the documented order: `message_start`
//! (empty content, input usage), per block `content_block_start`, its deltas (`text_delta`,
//! `thinking_delta` then one `signature_delta`, `input_json_delta`) and `content_block_stop`,
//! a `ping` after the first block's start, then `message_delta` (stop reason, final usage) and
//! `message_stop`. Each delta carries one token of the fixed tokenizer, so concatenating them
//! gives the non-streaming content exactly.

use bytes::Bytes;
use serde::Serialize;

use super::answer::{Answer, Block, MessageOut, Usage};
use crate::exchange::{Event, Events};
use crate::tokenizer;

#[derive(Debug, Clone, Copy)]
enum Step {
    Start,
    BlockStart(usize),
    Ping,
    Delta(usize, usize),
    Signature(usize),
    BlockStop(usize),
    MessageDelta,
    Stop,
    End,
}

/// The events of one streamed Message, rendered one at a time.
pub struct MessageStream {
    id: String,
    model: String,
    answer: Answer,
    usage: Usage,
    /// Per block, where each one-token piece of its streamed text ends.
    pieces: Vec<Vec<usize>>,
    step: Step,
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: MessageOut<'a>,
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn frame(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl MessageStream {
    pub fn new(id: String, model: String, answer: Answer, usage: Usage) -> Self {
        let pieces = answer
            .blocks
            .iter()
            .map(|block| match block {
                Block::Thinking { thinking, .. } => tokenizer::piece_ends(thinking),
                Block::Text { text } => tokenizer::piece_ends(text),
                Block::ToolUse { input_json, .. } => tokenizer::piece_ends(input_json),
                // Redacted thinking arrives whole in its content_block_start.
                Block::RedactedThinking { .. } => Vec::new(),
            })
            .collect();
        MessageStream {
            id,
            model,
            answer,
            usage,
            pieces,
            step: Step::Start,
        }
    }

    /// The streamed text of block `b` (what its deltas carry).
    fn streamed_text(&self, b: usize) -> &str {
        match &self.answer.blocks[b] {
            Block::Thinking { thinking, .. } => thinking,
            Block::Text { text } => text,
            Block::ToolUse { input_json, .. } => input_json,
            Block::RedactedThinking { .. } => "",
        }
    }

    fn piece(&self, b: usize, i: usize) -> &str {
        let ends = &self.pieces[b];
        let start = if i == 0 { 0 } else { ends[i - 1] };
        &self.streamed_text(b)[start..ends[i]]
    }

    /// What follows block `b`'s start: its first delta, its signature, or its stop.
    fn first_delta(&self, b: usize) -> Step {
        if !self.pieces[b].is_empty() {
            Step::Delta(b, 0)
        } else {
            self.after_deltas(b)
        }
    }

    fn after_deltas(&self, b: usize) -> Step {
        match self.answer.blocks[b] {
            Block::Thinking { .. } => Step::Signature(b),
            _ => Step::BlockStop(b),
        }
    }

    fn message_start(&self) -> Bytes {
        // The start reports input usage and the first output token, as Anthropic's does.
        let mut usage = self.usage;
        usage.output_tokens = self.usage.output_tokens.min(1);
        let start = MessageStart {
            kind: "message_start",
            message: MessageOut {
                id: &self.id,
                kind: "message",
                role: "assistant",
                model: &self.model,
                content: &[],
                stop_reason: None,
                stop_sequence: None,
                usage: &usage,
            },
        };
        frame(
            "message_start",
            &serde_json::to_string(&start).unwrap_or_default(),
        )
    }

    fn block_start(&self, b: usize) -> Bytes {
        let block = match &self.answer.blocks[b] {
            Block::Thinking { .. } => {
                r#"{"type":"thinking","thinking":"","signature":""}"#.to_owned()
            }
            Block::RedactedThinking { data } => {
                format!(r#"{{"type":"redacted_thinking","data":{}}}"#, quote(data))
            }
            Block::Text { .. } => r#"{"type":"text","text":""}"#.to_owned(),
            Block::ToolUse { id, name, .. } => format!(
                r#"{{"type":"tool_use","id":{},"name":{},"input":{{}}}}"#,
                quote(id),
                quote(name)
            ),
        };
        frame(
            "content_block_start",
            &format!(r#"{{"type":"content_block_start","index":{b},"content_block":{block}}}"#),
        )
    }

    fn delta(&self, b: usize, i: usize) -> Bytes {
        let piece = quote(self.piece(b, i));
        let delta = match self.answer.blocks[b] {
            Block::Thinking { .. } => format!(r#"{{"type":"thinking_delta","thinking":{piece}}}"#),
            Block::ToolUse { .. } => {
                format!(r#"{{"type":"input_json_delta","partial_json":{piece}}}"#)
            }
            _ => format!(r#"{{"type":"text_delta","text":{piece}}}"#),
        };
        frame(
            "content_block_delta",
            &format!(r#"{{"type":"content_block_delta","index":{b},"delta":{delta}}}"#),
        )
    }

    fn signature(&self, b: usize) -> Bytes {
        let signature = match &self.answer.blocks[b] {
            Block::Thinking { signature, .. } => signature.as_str(),
            _ => "",
        };
        frame(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":{b},"delta":{{"type":"signature_delta","signature":{}}}}}"#,
                quote(signature)
            ),
        )
    }

    fn message_delta(&self) -> Bytes {
        let stop_sequence = self
            .answer
            .stop_sequence
            .as_deref()
            .map_or_else(|| "null".to_owned(), quote);
        let u = &self.usage;
        // Usage here is cumulative: the totals, not increments.
        frame(
            "message_delta",
            &format!(
                r#"{{"type":"message_delta","delta":{{"stop_reason":{},"stop_sequence":{stop_sequence}}},"usage":{{"input_tokens":{},"cache_creation_input_tokens":{},"cache_read_input_tokens":{},"output_tokens":{}}}}}"#,
                quote(self.answer.stop_reason),
                u.input_tokens,
                u.cache_creation_input_tokens,
                u.cache_read_input_tokens,
                u.output_tokens
            ),
        )
    }
}

impl Events for MessageStream {
    fn next_event(&mut self) -> Option<Event> {
        let blocks = self.answer.blocks.len();
        let (bytes, next, token) = match self.step {
            Step::Start => {
                let next = if blocks == 0 {
                    Step::Ping
                } else {
                    Step::BlockStart(0)
                };
                (self.message_start(), next, false)
            }
            Step::BlockStart(b) => {
                let next = if b == 0 {
                    Step::Ping
                } else {
                    self.first_delta(b)
                };
                (self.block_start(b), next, false)
            }
            Step::Ping => {
                let next = if blocks == 0 {
                    Step::MessageDelta
                } else {
                    self.first_delta(0)
                };
                (frame("ping", r#"{"type": "ping"}"#), next, false)
            }
            Step::Delta(b, i) => {
                let next = if i + 1 < self.pieces[b].len() {
                    Step::Delta(b, i + 1)
                } else {
                    self.after_deltas(b)
                };
                (self.delta(b, i), next, true)
            }
            Step::Signature(b) => (self.signature(b), Step::BlockStop(b), false),
            Step::BlockStop(b) => {
                let next = if b + 1 < blocks {
                    Step::BlockStart(b + 1)
                } else {
                    Step::MessageDelta
                };
                let data = format!(r#"{{"type":"content_block_stop","index":{b}}}"#);
                (frame("content_block_stop", &data), next, false)
            }
            Step::MessageDelta => (self.message_delta(), Step::Stop, false),
            Step::Stop => {
                self.step = Step::End;
                return Some(Event {
                    bytes: frame("message_stop", r#"{"type":"message_stop"}"#),
                    token: false,
                    last: true,
                });
            }
            Step::End => return None,
        };
        self.step = next;
        Some(Event {
            bytes,
            token,
            last: false,
        })
    }
}
