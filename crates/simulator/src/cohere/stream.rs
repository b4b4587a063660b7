//! The server-sent events of a streamed v2 Chat response, in the documented order:
//! `message-start`; per content block `content-start`, its `content-delta`s, the text block's
//! `citation-start`/`citation-end` pairs, and `content-end`; then `tool-plan-delta`s and, per
//! tool call, `tool-call-start`, `tool-call-delta`s and `tool-call-end`; `message-end` with the
//! finish reason and usage; and `data: [DONE]`. Each delta carries one token of the fixed
//! tokenizer, so concatenating them gives the non-streamed content exactly.

use bytes::Bytes;

use super::answer::{Answer, Block, Usage};
use crate::exchange::{Event, Events};
use crate::tokenizer;

#[derive(Debug, Clone, Copy)]
enum Step {
    Start,
    BlockStart(usize),
    Delta(usize, usize),
    CitationStart(usize),
    CitationEnd(usize),
    BlockEnd(usize),
    Plan(usize),
    CallStart(usize),
    CallDelta(usize, usize),
    CallEnd(usize),
    End,
    Done,
    Finished,
}

/// The events of one streamed response, rendered one at a time.
pub struct ChatStream {
    id: String,
    answer: Answer,
    usage: Usage,
    /// Where each one-token piece ends: per content block, of the plan, per call's arguments.
    block_pieces: Vec<Vec<usize>>,
    plan_pieces: Vec<usize>,
    call_pieces: Vec<Vec<usize>>,
    step: Step,
}

/// A JSON string literal.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn frame(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// The `i`th piece of `text` split at `ends`.
fn piece<'t>(text: &'t str, ends: &[usize], i: usize) -> &'t str {
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &text[start..ends[i]]
}

impl ChatStream {
    pub fn new(id: String, answer: Answer, usage: Usage) -> Self {
        let block_pieces = answer
            .blocks
            .iter()
            .map(|b| tokenizer::piece_ends(b.text()))
            .collect();
        let plan_pieces = answer
            .tool_plan
            .as_deref()
            .map(tokenizer::piece_ends)
            .unwrap_or_default();
        let call_pieces = answer
            .tool_calls
            .iter()
            .map(|c| tokenizer::piece_ends(&c.function.arguments))
            .collect();
        ChatStream {
            id,
            answer,
            usage,
            block_pieces,
            plan_pieces,
            call_pieces,
            step: Step::Start,
        }
    }

    /// What follows the content blocks from block `b` on.
    fn step_at_block(&self, b: usize) -> Step {
        if b < self.answer.blocks.len() {
            Step::BlockStart(b)
        } else if !self.plan_pieces.is_empty() {
            Step::Plan(0)
        } else {
            self.step_at_call(0)
        }
    }

    fn step_at_call(&self, c: usize) -> Step {
        if c < self.answer.tool_calls.len() {
            Step::CallStart(c)
        } else {
            Step::End
        }
    }

    /// What follows block `b`'s deltas: its citations (text block), then its end.
    fn after_deltas(&self, b: usize) -> Step {
        let text = matches!(self.answer.blocks[b], Block::Text { .. });
        if text && !self.answer.citations.is_empty() {
            Step::CitationStart(0)
        } else {
            Step::BlockEnd(b)
        }
    }

    /// The index of the text block (the one citations belong to).
    fn text_block(&self) -> usize {
        self.answer.blocks.len().saturating_sub(1)
    }

    fn message_start(&self) -> Bytes {
        frame(
            "message-start",
            &format!(
                r#"{{"id":{},"type":"message-start","delta":{{"message":{{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}}}}"#,
                quote(&self.id)
            ),
        )
    }

    fn block_start(&self, b: usize) -> Bytes {
        let content = match self.answer.blocks[b] {
            Block::Thinking { .. } => r#"{"type":"thinking","thinking":""}"#,
            Block::Text { .. } => r#"{"type":"text","text":""}"#,
        };
        frame(
            "content-start",
            &format!(
                r#"{{"type":"content-start","index":{b},"delta":{{"message":{{"content":{content}}}}}}}"#
            ),
        )
    }

    fn delta(&self, b: usize, i: usize) -> Bytes {
        let block = &self.answer.blocks[b];
        let key = match block {
            Block::Thinking { .. } => "thinking",
            Block::Text { .. } => "text",
        };
        let text = quote(piece(block.text(), &self.block_pieces[b], i));
        frame(
            "content-delta",
            &format!(
                r#"{{"type":"content-delta","index":{b},"delta":{{"message":{{"content":{{"{key}":{text}}}}}}}}}"#
            ),
        )
    }

    fn citation_start(&self, k: usize) -> Bytes {
        let citation = serde_json::to_string(&self.answer.citations[k]).unwrap_or_default();
        frame(
            "citation-start",
            &format!(
                r#"{{"type":"citation-start","index":{k},"delta":{{"message":{{"citations":{citation}}}}}}}"#
            ),
        )
    }

    fn plan(&self, i: usize) -> Bytes {
        let plan = self.answer.tool_plan.as_deref().unwrap_or_default();
        frame(
            "tool-plan-delta",
            &format!(
                r#"{{"type":"tool-plan-delta","delta":{{"message":{{"tool_plan":{}}}}}}}"#,
                quote(piece(plan, &self.plan_pieces, i))
            ),
        )
    }

    fn call_start(&self, c: usize) -> Bytes {
        let call = &self.answer.tool_calls[c];
        frame(
            "tool-call-start",
            &format!(
                r#"{{"type":"tool-call-start","index":{c},"delta":{{"message":{{"tool_calls":{{"id":{},"type":"function","function":{{"name":{},"arguments":""}}}}}}}}}}"#,
                quote(&call.id),
                quote(&call.function.name)
            ),
        )
    }

    fn call_delta(&self, c: usize, i: usize) -> Bytes {
        let arguments = &self.answer.tool_calls[c].function.arguments;
        frame(
            "tool-call-delta",
            &format!(
                r#"{{"type":"tool-call-delta","index":{c},"delta":{{"message":{{"tool_calls":{{"function":{{"arguments":{}}}}}}}}}}}"#,
                quote(piece(arguments, &self.call_pieces[c], i))
            ),
        )
    }

    fn message_end(&self) -> Bytes {
        let usage = serde_json::to_string(&self.usage).unwrap_or_default();
        frame(
            "message-end",
            &format!(
                r#"{{"type":"message-end","delta":{{"finish_reason":{},"usage":{usage}}}}}"#,
                quote(self.answer.finish_reason)
            ),
        )
    }
}

impl Events for ChatStream {
    fn next_event(&mut self) -> Option<Event> {
        let (bytes, next, token) = match self.step {
            Step::Start => (self.message_start(), self.step_at_block(0), false),
            Step::BlockStart(b) => {
                let next = if self.block_pieces[b].is_empty() {
                    self.after_deltas(b)
                } else {
                    Step::Delta(b, 0)
                };
                (self.block_start(b), next, false)
            }
            Step::Delta(b, i) => {
                let next = if i + 1 < self.block_pieces[b].len() {
                    Step::Delta(b, i + 1)
                } else {
                    self.after_deltas(b)
                };
                (self.delta(b, i), next, true)
            }
            Step::CitationStart(k) => (self.citation_start(k), Step::CitationEnd(k), false),
            Step::CitationEnd(k) => {
                let next = if k + 1 < self.answer.citations.len() {
                    Step::CitationStart(k + 1)
                } else {
                    Step::BlockEnd(self.text_block())
                };
                let data = format!(r#"{{"type":"citation-end","index":{k}}}"#);
                (frame("citation-end", &data), next, false)
            }
            Step::BlockEnd(b) => {
                let data = format!(r#"{{"type":"content-end","index":{b}}}"#);
                (
                    frame("content-end", &data),
                    self.step_at_block(b + 1),
                    false,
                )
            }
            Step::Plan(i) => {
                let next = if i + 1 < self.plan_pieces.len() {
                    Step::Plan(i + 1)
                } else {
                    self.step_at_call(0)
                };
                (self.plan(i), next, true)
            }
            Step::CallStart(c) => {
                let next = if self.call_pieces[c].is_empty() {
                    Step::CallEnd(c)
                } else {
                    Step::CallDelta(c, 0)
                };
                (self.call_start(c), next, false)
            }
            Step::CallDelta(c, i) => {
                let next = if i + 1 < self.call_pieces[c].len() {
                    Step::CallDelta(c, i + 1)
                } else {
                    Step::CallEnd(c)
                };
                (self.call_delta(c, i), next, true)
            }
            Step::CallEnd(c) => {
                let data = format!(r#"{{"type":"tool-call-end","index":{c}}}"#);
                (
                    frame("tool-call-end", &data),
                    self.step_at_call(c + 1),
                    false,
                )
            }
            Step::End => {
                // message-end closes the exchange: a cut never lets it through.
                self.step = Step::Done;
                return Some(Event {
                    bytes: self.message_end(),
                    token: false,
                    last: true,
                });
            }
            Step::Done => (
                Bytes::from_static(b"data: [DONE]\n\n"),
                Step::Finished,
                false,
            ),
            Step::Finished => return None,
        };
        self.step = next;
        Some(Event {
            bytes,
            token,
            last: false,
        })
    }
}
