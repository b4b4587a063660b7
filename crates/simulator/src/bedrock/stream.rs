//! The events of a ConverseStream answer, each an `application/vnd.amazon.eventstream` message,
//! in the order Bedrock sends them: `messageStart`; per content block its deltas (reasoning
//! text then one `signature` delta, or one `redactedContent` delta; text; or, after a
//! `contentBlockStart` naming the tool, the input JSON in pieces) and `contentBlockStop` (text
//! and reasoning blocks get no `contentBlockStart`, as on Bedrock); `messageStop` with the stop
//! reason; `metadata` with usage and latency. Each delta carries one token of the fixed
//! tokenizer, so concatenating them gives the Converse content exactly.
//!
//! Every payload also carries Bedrock's `p` padding field (filler letters that hide the
//! payload's length), which clients must ignore. A stream may instead end, after its first
//! delta, with an exception message (see the `stream-exception:` trigger in `bedrock`).

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::answer::{Answer, Block, Extras, Usage};
use super::eventstream;
use crate::exchange::{Event, Events};
use crate::tokenizer;

/// The letters `p` padding is cut from.
const PADDING: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// An exception to end the stream with: its event name and message.
pub struct Exception {
    pub name: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Start,
    BlockStart(usize),
    Delta(usize, usize),
    /// The reasoning block's signature, or its redacted content.
    Closing(usize),
    BlockStop(usize),
    MessageStop,
    Metadata,
    Exception,
    End,
}

/// The events of one ConverseStream answer, rendered one at a time.
pub struct ConverseStream {
    answer: Answer,
    usage: Usage,
    extras: Extras,
    exception: Option<Exception>,
    /// Per block, where each one-token piece of its streamed text ends.
    pieces: Vec<Vec<usize>>,
    started: Instant,
    step: Step,
    sent: usize,
}

impl ConverseStream {
    pub fn new(
        answer: Answer,
        usage: Usage,
        extras: Extras,
        exception: Option<Exception>,
        started: Instant,
    ) -> Self {
        let pieces = answer
            .blocks
            .iter()
            .map(|block| match block {
                Block::Reasoning { text, .. } | Block::Text { text } => tokenizer::piece_ends(text),
                Block::ToolUse { input_json, .. } => tokenizer::piece_ends(input_json),
                Block::Redacted { .. } => Vec::new(),
            })
            .collect();
        ConverseStream {
            answer,
            usage,
            extras,
            exception,
            pieces,
            started,
            step: Step::Start,
            sent: 0,
        }
    }

    fn streamed_text(&self, b: usize) -> &str {
        match &self.answer.blocks[b] {
            Block::Reasoning { text, .. } | Block::Text { text } => text,
            Block::ToolUse { input_json, .. } => input_json,
            Block::Redacted { .. } => "",
        }
    }

    fn piece(&self, b: usize, i: usize) -> &str {
        let ends = &self.pieces[b];
        let start = if i == 0 { 0 } else { ends[i - 1] };
        &self.streamed_text(b)[start..ends[i]]
    }

    /// The step that opens block `b`.
    fn open(&self, b: usize) -> Step {
        match self.answer.blocks.get(b) {
            None => Step::MessageStop,
            Some(Block::ToolUse { .. }) => Step::BlockStart(b),
            Some(_) => self.first_delta(b),
        }
    }

    fn first_delta(&self, b: usize) -> Step {
        if self.pieces[b].is_empty() {
            self.after_deltas(b)
        } else {
            Step::Delta(b, 0)
        }
    }

    fn after_deltas(&self, b: usize) -> Step {
        match self.answer.blocks[b] {
            Block::Reasoning { .. } | Block::Redacted { .. } => Step::Closing(b),
            _ => Step::BlockStop(b),
        }
    }

    /// An event message whose payload is `body` plus the padding field.
    fn event(&mut self, name: &str, mut body: Value) -> Bytes {
        self.sent += 1;
        let len = 1 + (self.sent * 7) % (PADDING.len() - 1);
        body["p"] = Value::String(PADDING[..len].to_owned());
        Bytes::from(eventstream::event(name, body.to_string().as_bytes()))
    }

    fn delta(&mut self, b: usize, i: usize) -> Bytes {
        let piece = self.piece(b, i).to_owned();
        let delta = match self.answer.blocks[b] {
            Block::Reasoning { .. } => json!({"reasoningContent": {"text": piece}}),
            Block::ToolUse { .. } => json!({"toolUse": {"input": piece}}),
            _ => json!({"text": piece}),
        };
        self.event(
            "contentBlockDelta",
            json!({"contentBlockIndex": b, "delta": delta}),
        )
    }

    fn closing(&mut self, b: usize) -> Bytes {
        let delta = match &self.answer.blocks[b] {
            Block::Reasoning { signature, .. } => {
                json!({"reasoningContent": {"signature": signature}})
            }
            Block::Redacted { data } => json!({"reasoningContent": {"redactedContent": data}}),
            _ => json!({}),
        };
        self.event(
            "contentBlockDelta",
            json!({"contentBlockIndex": b, "delta": delta}),
        )
    }

    fn block_start(&mut self, b: usize) -> Bytes {
        let start = match &self.answer.blocks[b] {
            Block::ToolUse { id, name, .. } => json!({"toolUse": {"toolUseId": id, "name": name}}),
            _ => json!({}),
        };
        self.event(
            "contentBlockStart",
            json!({"contentBlockIndex": b, "start": start}),
        )
    }

    fn message_stop(&mut self) -> Bytes {
        let mut body = json!({"stopReason": self.answer.stop_reason});
        if let Some(additional) = &self.extras.additional {
            body["additionalModelResponseFields"] = additional.clone();
        }
        self.event("messageStop", body)
    }

    fn metadata(&mut self) -> Bytes {
        let latency = self.started.elapsed().as_millis() as u64;
        let mut body = json!({"usage": self.usage.to_json(), "metrics": {"latencyMs": latency}});
        if let Some(performance) = &self.extras.performance {
            body["performanceConfig"] = performance.clone();
        }
        if let Some(tier) = &self.extras.service_tier {
            body["serviceTier"] = tier.clone();
        }
        self.event("metadata", body)
    }

    fn exception_message(&self) -> Bytes {
        let (name, message) = match &self.exception {
            Some(e) => (e.name, e.message.as_str()),
            None => ("internalServerException", "internal error"),
        };
        let body = json!({"message": message});
        Bytes::from(eventstream::exception(name, body.to_string().as_bytes()))
    }

    /// After a content delta: the exception, if one is due, else `next`.
    fn or_exception(&self, next: Step) -> Step {
        if self.exception.is_some() {
            Step::Exception
        } else {
            next
        }
    }
}

impl Events for ConverseStream {
    fn next_event(&mut self) -> Option<Event> {
        let (bytes, next, token) = match self.step {
            Step::Start => {
                let bytes = self.event("messageStart", json!({"role": "assistant"}));
                let next = if self.answer.blocks.is_empty() {
                    self.or_exception(Step::MessageStop)
                } else {
                    self.open(0)
                };
                (bytes, next, false)
            }
            Step::BlockStart(b) => (self.block_start(b), self.first_delta(b), false),
            Step::Delta(b, i) => {
                let next = if i + 1 < self.pieces[b].len() {
                    Step::Delta(b, i + 1)
                } else {
                    self.after_deltas(b)
                };
                (self.delta(b, i), self.or_exception(next), true)
            }
            Step::Closing(b) => (self.closing(b), Step::BlockStop(b), false),
            Step::BlockStop(b) => {
                let bytes = self.event("contentBlockStop", json!({"contentBlockIndex": b}));
                (bytes, self.open(b + 1), false)
            }
            Step::MessageStop => (self.message_stop(), Step::Metadata, false),
            Step::Metadata | Step::Exception => {
                let bytes = match self.step {
                    Step::Metadata => self.metadata(),
                    _ => self.exception_message(),
                };
                self.step = Step::End;
                return Some(Event {
                    bytes,
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
