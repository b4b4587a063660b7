//! `streamGenerateContent`: the answer as a series of whole `GenerateContentResponse` chunks,
//! each with one piece of one candidate — one token of a thought or of text, or one whole
//! function call — and cumulative `usageMetadata`; the last chunk of a candidate carries its
//! `finishReason`, the last chunk of the stream the final usage. With `alt=sse` each chunk is
//! a server-sent event (`data: {...}` and a blank line, CRLF-terminated as Google's are);
//! without it the chunks are the elements of one JSON array sent progressively (`[{...}`,
//! `,\r\n{...}`, ..., `]`). Concatenating a candidate's text pieces gives its text in the
//! non-streaming answer exactly.

use std::ops::Range;

use bytes::Bytes;

use super::answer::{
    blocked_feedback, ratings, Answer, CandidateOut, ContentOut, Meta, Part, ResponseOut, Usage,
};
use crate::exchange::{Event, Events};
use crate::tokenizer;

/// How chunks are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Sse,
    JsonArray,
}

/// One chunk: a piece of one part of one candidate, or (`part: None`) a candidate with nothing
/// to show (empty, or stopped by the safety filter), or the blocked-prompt feedback.
#[derive(Debug, Clone)]
struct Step {
    candidate: usize,
    part: Option<usize>,
    /// The byte range of a thought or text part this chunk carries.
    range: Option<Range<usize>>,
    /// Whether this is the candidate's last chunk (it carries the finish reason).
    finishes: bool,
    /// Thought and output tokens this chunk adds.
    thoughts: u64,
    output: u64,
}

/// The chunks of one streamed answer, rendered one at a time.
pub struct ChunkStream {
    answer: Answer,
    usage: Usage,
    meta: Meta,
    framing: Framing,
    steps: Vec<Step>,
    next: usize,
    thoughts: u64,
    output: u64,
}

impl ChunkStream {
    pub fn new(answer: Answer, usage: Usage, meta: Meta, framing: Framing) -> Self {
        let mut steps = Vec::new();
        for (c, candidate) in answer.candidates().iter().enumerate() {
            let first = steps.len();
            let mut shown_thoughts = 0;
            for (p, part) in candidate.parts.iter().enumerate() {
                let text = match part {
                    Part::Thought(text) | Part::Text { text, .. } => text,
                    Part::Call { name, args, .. } => {
                        let tokens = tokenizer::count(name) + tokenizer::count(&args.to_string());
                        steps.push(Step {
                            candidate: c,
                            part: Some(p),
                            range: None,
                            finishes: false,
                            thoughts: 0,
                            output: tokens,
                        });
                        continue;
                    }
                };
                let thought = matches!(part, Part::Thought(_));
                let mut start = 0;
                for end in tokenizer::piece_ends(text) {
                    let tokens = tokenizer::count(&text[start..end]);
                    if thought {
                        shown_thoughts += tokens;
                    }
                    steps.push(Step {
                        candidate: c,
                        part: Some(p),
                        range: Some(start..end),
                        finishes: false,
                        thoughts: if thought { tokens } else { 0 },
                        output: if thought { 0 } else { tokens },
                    });
                    start = end;
                }
            }
            if steps.len() == first {
                steps.push(Step {
                    candidate: c,
                    part: None,
                    range: None,
                    finishes: false,
                    thoughts: 0,
                    output: 0,
                });
            }
            // Thinking that is not shown still happened before the first chunk.
            steps[first].thoughts += candidate.thought_tokens.saturating_sub(shown_thoughts);
            if let Some(last) = steps.last_mut() {
                last.finishes = true;
            }
        }
        if steps.is_empty() {
            // A blocked prompt: one chunk of feedback.
            steps.push(Step {
                candidate: 0,
                part: None,
                range: None,
                finishes: false,
                thoughts: 0,
                output: 0,
            });
        }
        ChunkStream {
            answer,
            usage,
            meta,
            framing,
            steps,
            next: 0,
            thoughts: 0,
            output: 0,
        }
    }

    fn chunk(&self, step: &Step, last: bool) -> Vec<u8> {
        let mut usage = self.usage;
        if !last {
            usage.thoughts = self.thoughts;
            usage.candidates = self.output;
        }
        let (candidates, prompt_feedback) = match &self.answer {
            Answer::PromptBlocked => (None, Some(blocked_feedback())),
            Answer::Candidates(list) => {
                let candidate = &list[step.candidate];
                let content = match step.part {
                    Some(p) => {
                        let part = &candidate.parts[p];
                        let text = step.range.clone().map(|r| match part {
                            Part::Thought(t) | Part::Text { text: t, .. } => &t[r],
                            Part::Call { .. } => "",
                        });
                        // A text part's signature rides on its first piece.
                        let first_piece = step.range.as_ref().is_none_or(|r| r.start == 0);
                        Some(ContentOut {
                            parts: vec![part.out(text, first_piece)],
                            role: "model",
                        })
                    }
                    None if candidate.blocked => None,
                    None => Some(ContentOut {
                        parts: Vec::new(),
                        role: "model",
                    }),
                };
                let out = CandidateOut {
                    content,
                    finish_reason: step.finishes.then_some(candidate.finish),
                    safety_ratings: (step.finishes && candidate.blocked)
                        .then(|| ratings("HARM_CATEGORY_DANGEROUS_CONTENT")),
                    index: step.candidate,
                };
                (Some(vec![out]), None)
            }
        };
        let response = ResponseOut {
            candidates,
            prompt_feedback,
            usage_metadata: usage.out(),
            model_version: &self.meta.model_version,
            create_time: self.meta.create_time.as_deref(),
            response_id: &self.meta.response_id,
        };
        serde_json::to_vec(&response).unwrap_or_default()
    }
}

impl Events for ChunkStream {
    fn next_event(&mut self) -> Option<Event> {
        let index = self.next;
        let step = self.steps.get(index)?.clone();
        self.next += 1;
        self.thoughts += step.thoughts;
        self.output += step.output;
        let last = self.next == self.steps.len();
        let json = self.chunk(&step, last);
        let mut bytes = Vec::with_capacity(json.len() + 8);
        match self.framing {
            Framing::Sse => {
                bytes.extend_from_slice(b"data: ");
                bytes.extend_from_slice(&json);
                bytes.extend_from_slice(b"\r\n\r\n");
            }
            Framing::JsonArray => {
                bytes.extend_from_slice(if index == 0 { b"[" } else { b",\r\n" });
                bytes.extend_from_slice(&json);
                if last {
                    bytes.extend_from_slice(b"]");
                }
            }
        }
        Some(Event {
            bytes: Bytes::from(bytes),
            token: step.part.is_some(),
            last,
        })
    }
}
