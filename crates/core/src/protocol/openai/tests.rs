//! Golden tests of the OpenAI-compatible translation, both directions.

use super::*;
use crate::money::Money;
use insta::assert_json_snapshot;

const SERVED: Served<'static> = Served {
    generation_id: "gen-1-abc",
    model: "openai/gpt-4o-mini",
    provider_name: "OpenAI",
    created: 1_700_000_000,
};

fn cost() -> Charge {
    Charge::platform(crate::pricing::Cost {
        total: Money::from_nanos(3_000),
        prompt: Money::from_nanos(1_000),
        completion: Money::from_nanos(2_000),
    })
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn frame_json(step: StreamStep) -> Value {
    let StreamStep::Frame(frame) = step else {
        panic!("expected a frame, got {step:?}")
    };
    let text = String::from_utf8(frame).unwrap();
    let payload = text
        .strip_prefix("data: ")
        .unwrap()
        .strip_suffix("\n\n")
        .unwrap();
    serde_json::from_str(payload).unwrap()
}

#[test]
fn request_strips_gateway_fields_and_sets_upstream_model() {
    let req = ChatRequest::parse(
        br#"{"model":"openai/gpt-4o-mini","models":["x/y"],"provider":{"order":["openai"]},
        "messages":[{"role":"user","content":"hi"}],"stream":true,"temperature":0.5,
        "reasoning":{"effort":"low"},"usage":{"include":true},"user":"u1","tools":[]}"#,
    )
    .unwrap();
    assert_json_snapshot!(json_of(&request_body(&req, "gpt-4o-mini")), @r#"
    {
      "messages": [
        {
          "content": "hi",
          "role": "user"
        }
      ],
      "model": "gpt-4o-mini",
      "reasoning_effort": "low",
      "stream": true,
      "stream_options": {
        "include_usage": true
      },
      "temperature": 0.5,
      "tools": [],
      "user": "u1"
    }
    "#);
}

#[test]
fn response_is_restamped_with_provider_and_cost() {
    let upstream = br#"{"id":"chatcmpl-1","object":"chat.completion","created":5,"model":"gpt-4o-mini",
        "choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop","logprobs":null}],
        "usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14,
        "prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}"#;
    let (body, outcome) = parse_response(upstream).unwrap();
    assert_eq!(outcome.upstream_id.as_deref(), Some("chatcmpl-1"));
    assert_eq!(outcome.finish_reason.as_deref(), Some("stop"));
    let usage = outcome.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.cached_tokens,
            usage.reasoning_tokens
        ),
        (10, 2, 1)
    );
    assert_json_snapshot!(json_of(&render_response(body, &SERVED, &usage, &cost())), @r#"
    {
      "choices": [
        {
          "finish_reason": "stop",
          "index": 0,
          "logprobs": null,
          "message": {
            "content": "Hi",
            "role": "assistant"
          },
          "native_finish_reason": "stop"
        }
      ],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "openai/gpt-4o-mini",
      "object": "chat.completion",
      "provider": "OpenAI",
      "system_fingerprint": null,
      "usage": {
        "completion_tokens": 4,
        "completion_tokens_details": {
          "reasoning_tokens": 1
        },
        "cost": 0.000003,
        "cost_details": {
          "upstream_inference_completions_cost": 0.000002,
          "upstream_inference_cost": null,
          "upstream_inference_prompt_cost": 0.000001
        },
        "is_byok": false,
        "prompt_tokens": 10,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 2
        },
        "total_tokens": 14
      }
    }
    "#);
}

#[test]
fn invalid_upstream_bodies_are_502() {
    for body in [&b"{not json"[..], br#"{"id":"x"}"#, b"[]"] {
        assert_eq!(parse_response(body).unwrap_err().code.status(), 502);
    }
}

#[test]
fn stream_chunks_are_restamped_and_usage_reissued_with_cost() {
    let mut t = StreamTranslator::new(&SERVED);
    let first = t
        .on_data(r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":5,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#)
        .unwrap();
    assert!(!t.content_sent());
    assert_json_snapshot!(frame_json(first), @r#"
    {
      "choices": [
        {
          "delta": {
            "content": "",
            "role": "assistant"
          },
          "finish_reason": null,
          "index": 0,
          "native_finish_reason": null
        }
      ],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "openai/gpt-4o-mini",
      "object": "chat.completion.chunk",
      "provider": "OpenAI"
    }
    "#);
    t.on_data(r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#)
        .unwrap();
    assert!(t.content_sent());
    let last = t
        .on_data(
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
        )
        .unwrap();
    assert_eq!(
        frame_json(last)["choices"][0]["native_finish_reason"],
        "length"
    );
    let usage_only = t
        .on_data(r#"{"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#)
        .unwrap();
    assert_eq!(usage_only, StreamStep::Nothing);
    assert_eq!(t.on_data("[DONE]").unwrap(), StreamStep::Done);
    let outcome = t.outcome().clone();
    assert_eq!(outcome.finish_reason.as_deref(), Some("length"));
    assert_eq!(outcome.usage.unwrap().prompt_tokens, 3);
    assert_eq!(t.generated_bytes(), 5);
    let usage = frame_json(StreamStep::Frame(t.usage_frame(
        &outcome.usage.unwrap(),
        &cost(),
        None,
    )));
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["cost"], json!(3e-6));
    assert_eq!(usage["id"], "gen-1-abc");
}

#[test]
fn stream_errors_and_error_frame() {
    let mut t = StreamTranslator::new(&SERVED);
    assert_eq!(t.on_data("{oops").unwrap_err().code.status(), 502);
    let err = t
        .on_data(r#"{"error":{"message":"overloaded"}}"#)
        .unwrap_err();
    assert_eq!(err.message, "overloaded");
    let frame = frame_json(StreamStep::Frame(t.error_frame(&err)));
    assert_eq!(frame["error"]["code"], 502);
    assert_eq!(frame["error"]["metadata"]["provider_name"], "OpenAI");
    assert_eq!(frame["choices"][0]["finish_reason"], "error");
}

#[test]
fn upstream_errors_map_to_openrouter_statuses() {
    let cases = [
        (400, 400),
        (401, 502),
        (404, 400),
        (408, 504),
        (413, 413),
        (429, 429),
        (500, 502),
        (502, 502),
        (503, 503),
        (529, 503),
    ];
    for (upstream, ours) in cases {
        let err = upstream_error(
            upstream,
            br#"{"error":{"message":"nope"}}"#,
            "OpenAI",
            Some(2),
        );
        assert_eq!(err.code.status(), ours, "upstream {upstream}");
        let metadata = err.metadata.as_ref().unwrap();
        assert_eq!(metadata["provider_name"], "OpenAI");
        assert_eq!(metadata["raw"], "nope");
    }
    let err = upstream_error(
        400,
        br#"{"error":{"message":"bad temperature"}}"#,
        "OpenAI",
        None,
    );
    assert_eq!(err.message, "bad temperature");
    assert_eq!(
        upstream_error(429, b"", "Groq", Some(3)).retry_after,
        Some(3)
    );
}
