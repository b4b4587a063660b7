//! The simulated model's reply to a `generateContent` request — per candidate its thought,
//! text or function-call parts, finish reason and token counts; or a prompt blocked for
//! safety — as a pure function of the request and the behaviour, and its JSON form (a whole
//! `GenerateContentResponse`, or one streamed chunk of it).

use serde::Serialize;
use serde_json::{json, Value};

use super::request::{CallingMode, Function, GenerateRequest, Modalities, Output, Thinking};
use crate::control::Behaviour;
use crate::generate::{base64_encode, bytes_hash, json_for_schema, words, Rng};
use crate::tokenizer;

/// Text anywhere in the prompt that gets the prompt blocked (`promptFeedback.blockReason`).
pub const BLOCK_TRIGGER: &str = "unsafe-block";
/// Text in the last user turn that gets each candidate stopped with `finishReason: SAFETY`.
pub const ANSWER_TRIGGER: &str = "unsafe-answer";

/// The harm categories rated in safety feedback, in the order Gemini lists them.
const CATEGORIES: &[&str] = &[
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
];

/// One part of a candidate's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// A thought summary (`thought: true`), sent only with `includeThoughts`.
    Thought(String),
    Text {
        text: String,
        signature: Option<String>,
    },
    Call {
        name: String,
        args: Value,
        signature: Option<String>,
    },
}

impl Part {
    /// The part as Gemini serialises it; `text` overrides the text (a streamed piece).
    pub fn out<'a>(&'a self, text: Option<&'a str>, with_signature: bool) -> PartOut<'a> {
        match self {
            Part::Thought(t) => PartOut {
                text: Some(text.unwrap_or(t)),
                function_call: None,
                thought: Some(true),
                thought_signature: None,
            },
            Part::Text { text: t, signature } => PartOut {
                text: Some(text.unwrap_or(t)),
                function_call: None,
                thought: None,
                thought_signature: signature.as_deref().filter(|_| with_signature),
            },
            Part::Call {
                name,
                args,
                signature,
            } => PartOut {
                text: None,
                function_call: Some(CallOut { name, args }),
                thought: None,
                thought_signature: signature.as_deref(),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Candidate {
    pub parts: Vec<Part>,
    pub finish: &'static str,
    /// Stopped by the safety filter: no content, and safety ratings.
    pub blocked: bool,
    /// Text and function-call tokens (`candidatesTokenCount`).
    pub output_tokens: u64,
    /// Thinking tokens, shown or not (`thoughtsTokenCount`).
    pub thought_tokens: u64,
}

#[derive(Debug, Clone)]
pub enum Answer {
    /// The prompt was blocked: no candidates, `promptFeedback.blockReason: SAFETY`.
    PromptBlocked,
    Candidates(Vec<Candidate>),
}

impl Answer {
    pub fn output_tokens(&self) -> u64 {
        self.candidates().iter().map(|c| c.output_tokens).sum()
    }

    pub fn thought_tokens(&self) -> u64 {
        self.candidates().iter().map(|c| c.thought_tokens).sum()
    }

    pub fn candidates(&self) -> &[Candidate] {
        match self {
            Answer::PromptBlocked => &[],
            Answer::Candidates(c) => c,
        }
    }
}

/// What usage a response reports.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub prompt: Modalities,
    pub cached: u64,
    pub candidates: u64,
    pub thoughts: u64,
    /// Vertex AI adds `trafficType`.
    pub vertex: bool,
}

impl Usage {
    pub fn out(&self) -> UsageOut {
        let detail = |(modality, token_count)| ModalityOut {
            modality,
            token_count,
        };
        let prompt_token_count = self.prompt.total();
        UsageOut {
            prompt_token_count,
            candidates_token_count: nonzero(self.candidates),
            total_token_count: prompt_token_count + self.candidates + self.thoughts,
            cached_content_token_count: nonzero(self.cached),
            prompt_tokens_details: self.prompt.entries().into_iter().map(detail).collect(),
            cache_tokens_details: text_detail(self.cached),
            candidates_tokens_details: text_detail(self.candidates),
            thoughts_token_count: nonzero(self.thoughts),
            traffic_type: self.vertex.then_some("ON_DEMAND"),
        }
    }
}

/// `[{"modality": "TEXT", "tokenCount": n}]`, or nothing for 0.
fn text_detail(n: u64) -> Vec<ModalityOut> {
    if n == 0 {
        return Vec::new();
    }
    vec![ModalityOut {
        modality: "TEXT",
        token_count: n,
    }]
}

fn nonzero(n: u64) -> Option<u64> {
    (n > 0).then_some(n)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<CallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<&'a str>,
}

#[derive(Serialize)]
pub struct CallOut<'a> {
    name: &'a str,
    args: &'a Value,
}

#[derive(Serialize)]
pub struct ContentOut<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartOut<'a>>,
    pub role: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_ratings: Option<Value>,
    pub index: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModalityOut {
    modality: &'static str,
    token_count: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageOut {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u64>,
    total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content_token_count: Option<u64>,
    prompt_tokens_details: Vec<ModalityOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cache_tokens_details: Vec<ModalityOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    candidates_tokens_details: Vec<ModalityOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traffic_type: Option<&'static str>,
}

/// The identity fields every response (and every chunk) carries.
#[derive(Debug, Clone)]
pub struct Meta {
    pub model_version: String,
    pub response_id: String,
    /// Vertex AI's `createTime`.
    pub create_time: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<Vec<CandidateOut<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<Value>,
    pub usage_metadata: UsageOut,
    pub model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<&'a str>,
    pub response_id: &'a str,
}

/// Safety ratings with `blocked` set on the category that tripped (the others negligible).
pub fn ratings(tripped: &str) -> Value {
    CATEGORIES
        .iter()
        .map(|category| {
            if *category == tripped {
                json!({"category": category, "probability": "HIGH", "blocked": true})
            } else {
                json!({"category": category, "probability": "NEGLIGIBLE"})
            }
        })
        .collect()
}

/// The prompt feedback of a blocked prompt.
pub fn blocked_feedback() -> Value {
    json!({"blockReason": "SAFETY", "safetyRatings": ratings("HARM_CATEGORY_DANGEROUS_CONTENT")})
}

/// The finished candidate as a whole (`generateContent`).
pub fn candidate_out(index: usize, candidate: &Candidate) -> CandidateOut<'_> {
    if candidate.blocked {
        return CandidateOut {
            content: None,
            finish_reason: Some(candidate.finish),
            safety_ratings: Some(ratings("HARM_CATEGORY_DANGEROUS_CONTENT")),
            index,
        };
    }
    CandidateOut {
        content: Some(ContentOut {
            parts: candidate.parts.iter().map(|p| p.out(None, true)).collect(),
            role: "model",
        }),
        finish_reason: Some(candidate.finish),
        safety_ratings: None,
        index,
    }
}

/// The whole response of `generateContent`.
pub fn render<'a>(answer: &'a Answer, usage: &Usage, meta: &'a Meta) -> ResponseOut<'a> {
    let (candidates, prompt_feedback) = match answer {
        Answer::PromptBlocked => (None, Some(blocked_feedback())),
        Answer::Candidates(list) => (
            Some(
                list.iter()
                    .enumerate()
                    .map(|(i, c)| candidate_out(i, c))
                    .collect(),
            ),
            None,
        ),
    };
    ResponseOut {
        candidates,
        prompt_feedback,
        usage_metadata: usage.out(),
        model_version: &meta.model_version,
        create_time: meta.create_time.as_deref(),
        response_id: &meta.response_id,
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(needle)
}

/// `len` opaque bytes derived from `parts`, base64-encoded (thought signatures).
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

/// The functions to call (see the module docs of `gemini`).
fn chosen_functions<'r, 'a>(
    req: &'r GenerateRequest<'a>,
    turn_text: &str,
    answers_calls: bool,
) -> Vec<&'r Function<'a>> {
    let allowed = |f: &&Function<'_>| req.allowed.is_empty() || req.allowed.contains(&f.name);
    let mentioned = || -> Vec<&'r Function<'a>> {
        req.functions
            .iter()
            .filter(allowed)
            .filter(|f| turn_text.contains(f.name))
            .collect()
    };
    match req.mode {
        CallingMode::None => Vec::new(),
        CallingMode::Auto | CallingMode::Validated if answers_calls => Vec::new(),
        CallingMode::Auto | CallingMode::Validated => mentioned(),
        CallingMode::Any => {
            let found = mentioned();
            if found.is_empty() {
                req.functions.iter().filter(allowed).take(1).collect()
            } else {
                found
            }
        }
    }
}

/// The reply to `req` under `behaviour`, seeded by `hash`.
pub fn generate(req: &GenerateRequest<'_>, behaviour: &Behaviour, hash: &[u8; 32]) -> Answer {
    if req
        .all_text()
        .any(|t| contains_ignore_case(t, BLOCK_TRIGGER))
    {
        return Answer::PromptBlocked;
    }
    let mut rng = Rng::from_hash(hash);
    let (turn_text, answers_calls) = req.last_user_turn();
    let candidates = (0..req.candidate_count)
        .map(|index| {
            let mut candidate_rng = rng.fork();
            candidate(
                req,
                behaviour,
                &mut candidate_rng,
                (&turn_text, answers_calls),
                &[hash.as_slice(), &index.to_le_bytes()],
            )
        })
        .collect();
    Answer::Candidates(candidates)
}

fn candidate(
    req: &GenerateRequest<'_>,
    behaviour: &Behaviour,
    rng: &mut Rng,
    (turn_text, answers_calls): (&str, bool),
    seed: &[&[u8]],
) -> Candidate {
    if contains_ignore_case(turn_text, ANSWER_TRIGGER) {
        return Candidate {
            parts: Vec::new(),
            finish: "SAFETY",
            blocked: true,
            output_tokens: 0,
            thought_tokens: 0,
        };
    }
    let cap = req.max_output_tokens.unwrap_or(u64::MAX);
    let mut parts = Vec::new();
    let mut thought_tokens = 0;
    let mut signature = None;
    let mut think_rng = rng.fork();
    if let Thinking::On { budget, include } = req.thinking {
        let n = behaviour
            .output_tokens
            .min(budget.unwrap_or(u64::MAX))
            .min(cap);
        if n > 0 {
            let thought = words(&mut think_rng, n);
            let mut signed: Vec<&[u8]> = vec![b"thoughtSignature"];
            signed.extend_from_slice(seed);
            signed.push(thought.as_bytes());
            signature = Some(opaque(&signed, 96));
            thought_tokens = n;
            if include {
                parts.push(Part::Thought(thought));
            }
        }
    }
    let remaining = cap - thought_tokens;
    let mut output_tokens = 0;

    let functions = chosen_functions(req, turn_text, answers_calls);
    if !functions.is_empty() && remaining > 0 {
        for function in functions {
            let mut call_rng = rng.fork();
            let args = match &function.parameters {
                Some(schema) => match json_for_schema(schema, &mut call_rng) {
                    args @ Value::Object(_) => args,
                    _ => json!({}),
                },
                None => json!({}),
            };
            output_tokens += tokenizer::count(function.name) + tokenizer::count(&args.to_string());
            parts.push(Part::Call {
                name: function.name.to_owned(),
                args,
                // The signature rides on the first call only.
                signature: signature.take(),
            });
        }
        return Candidate {
            parts,
            finish: "STOP",
            blocked: false,
            output_tokens,
            thought_tokens,
        };
    }

    let mut text_rng = rng.fork();
    let (text, finish) = if remaining == 0 {
        (String::new(), "MAX_TOKENS")
    } else {
        match &req.output {
            // Structured output is never cut: a partial document would not be valid JSON.
            Output::Json(Some(schema)) => {
                (json_for_schema(schema, &mut text_rng).to_string(), "STOP")
            }
            Output::Json(None) => {
                let n = behaviour.output_tokens.max(1);
                (
                    json!({"response": words(&mut text_rng, n)}).to_string(),
                    "STOP",
                )
            }
            Output::Enum(values) => {
                let pick = text_rng.below(values.len() as u64) as usize;
                (values[pick].clone(), "STOP")
            }
            Output::Text => {
                let wanted = behaviour.output_tokens;
                let n = wanted.min(remaining);
                let mut text = words(&mut text_rng, n);
                let mut finish = if n < wanted { "MAX_TOKENS" } else { "STOP" };
                // The earliest match of any stop sequence ends the text, without the sequence.
                let hit = req
                    .stop_sequences
                    .iter()
                    .filter_map(|s| text.find(s.as_str()))
                    .min();
                if let Some(at) = hit {
                    text.truncate(at);
                    finish = "STOP";
                }
                (text, finish)
            }
        }
    };
    output_tokens += tokenizer::count(&text);
    if !text.is_empty() {
        parts.push(Part::Text { text, signature });
    }
    Candidate {
        parts,
        finish,
        blocked: false,
        output_tokens,
        thought_tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &Value) -> Answer {
        let req = GenerateRequest::parse(body).unwrap();
        generate(&req, &Behaviour::default(), &[7; 32])
    }

    fn tools() -> Value {
        json!([{"functionDeclarations": [
            {"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}},
            {"name": "get_time"}
        ]}])
    }

    #[test]
    fn thinking_counts_and_signs_the_first_text_part() {
        let a = answer(&json!({
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": true}}
        }));
        let c = &a.candidates()[0];
        assert!(matches!(&c.parts[0], Part::Thought(t) if tokenizer::count(t) == 16));
        assert!(matches!(&c.parts[1], Part::Text { signature: Some(s), .. } if s.len() == 128));
        assert_eq!(
            (c.thought_tokens, c.output_tokens, c.finish),
            (16, 16, "STOP")
        );

        let hidden = answer(&json!({
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 5}, "maxOutputTokens": 8}
        }));
        let c = &hidden.candidates()[0];
        assert_eq!(c.parts.len(), 1, "thoughts hidden without includeThoughts");
        assert_eq!(
            (c.thought_tokens, c.output_tokens, c.finish),
            (5, 3, "MAX_TOKENS")
        );
    }

    #[test]
    fn calls_follow_mentions_and_mode() {
        let body = |text: &str, config: Value| json!({"contents": [{"parts": [{"text": text}]}], "tools": tools(), "toolConfig": config});
        let names = |a: &Answer| -> Vec<String> {
            a.candidates()[0]
                .parts
                .iter()
                .filter_map(|p| match p {
                    Part::Call { name, .. } => Some(name.clone()),
                    _ => None,
                })
                .collect()
        };
        let both = answer(&body("use get_weather and get_time", json!({})));
        assert_eq!(names(&both), vec!["get_weather", "get_time"]);
        let Part::Call { args, .. } = &both.candidates()[0].parts[0] else {
            panic!()
        };
        assert!(args["city"].is_string());
        let none = answer(&body(
            "use get_weather",
            json!({"functionCallingConfig": {"mode": "NONE"}}),
        ));
        assert!(names(&none).is_empty());
        let forced = answer(&body(
            "nothing",
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}),
        ));
        assert_eq!(names(&forced), vec!["get_time"]);
    }
}
