//! Golden tests of the Cohere v2 Chat translation, both directions, and a whole conversation with
//! parallel tool calls over two turns (non-streaming and streaming).

use super::*;
use crate::catalog::Pricing;
use crate::error::ErrorCode;
use crate::money::{Money, Price};
use crate::protocol::openai::{generated_text_len, render_response};
use insta::assert_json_snapshot;

const SERVED: Served<'static> = Served {
    generation_id: "gen-1-abc",
    model: "cohere/command-a",
    provider_name: "Cohere",
    created: 1_700_000_000,
};

const MODEL: &str = "command-a-03-2025";

fn req(v: Value) -> ChatRequest {
    let Value::Object(map) = v else {
        panic!("not an object")
    };
    ChatRequest::from_map(map).unwrap()
}

/// The upstream body for a request, with an endpoint that can emit 8192 tokens.
fn upstream(v: Value) -> Value {
    json_of(&request_body(&req(v), MODEL, 8192).unwrap())
}

fn upstream_err(v: Value) -> ApiError {
    request_body(&req(v), MODEL, 8192).unwrap_err()
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn cost() -> Charge {
    Charge::platform(crate::pricing::Cost {
        total: Money::from_nanos(3_000),
        prompt: Money::from_nanos(1_000),
        completion: Money::from_nanos(2_000),
    })
}

fn frame_json(frame: &[u8]) -> Value {
    let text = std::str::from_utf8(frame).unwrap();
    let payload = text
        .strip_prefix("data: ")
        .unwrap()
        .strip_suffix("\n\n")
        .unwrap();
    serde_json::from_str(payload).unwrap()
}

/// Feeds events (`data` payloads) and collects the frames. Cohere's stream has no event after
/// `message-end`, so nothing may say `Done`; the last frame must carry the finish reason.
fn run_stream(t: &mut StreamTranslator, events: &[Value]) -> Vec<Value> {
    let mut frames = Vec::new();
    for event in events {
        match t.on_data(&event.to_string()).unwrap() {
            StreamStep::Frame(frame) => frames.push(frame_json(&frame)),
            StreamStep::Nothing => {}
            StreamStep::Done => panic!("Cohere streams end with the connection"),
        }
    }
    frames
}

/// Only the `choices[0]` of each frame (the stamp is checked once, elsewhere).
fn choices(frames: &[Value]) -> Value {
    Value::Array(frames.iter().map(|f| f["choices"][0].clone()).collect())
}

/// Rebuilds the message from stream deltas as an SDK does: content and reasoning appended,
/// `reasoning_details` and `tool_calls` merged by their `index`.
fn reassemble(frames: &[Value]) -> Value {
    let mut content = String::new();
    let mut reasoning: Option<String> = None;
    let mut details: Vec<Value> = Vec::new();
    let mut calls: Vec<Value> = Vec::new();
    for frame in frames {
        let delta = &frame["choices"][0]["delta"];
        content.push_str(delta["content"].as_str().unwrap_or_default());
        if let Some(r) = delta["reasoning"].as_str() {
            reasoning.get_or_insert_with(String::new).push_str(r);
        }
        for item in delta["reasoning_details"].as_array().into_iter().flatten() {
            match details.iter_mut().find(|d| d["index"] == item["index"]) {
                None => details.push(item.clone()),
                Some(d) => {
                    let text = format!(
                        "{}{}",
                        d["text"].as_str().unwrap_or(""),
                        item["text"].as_str().unwrap_or("")
                    );
                    d["text"] = json!(text);
                }
            }
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = call["index"].as_u64().unwrap() as usize;
            if index == calls.len() {
                calls.push(json!({"id": call["id"], "type": call["type"],
                    "function": {"name": call["function"]["name"], "arguments": ""}}));
            }
            let args = &mut calls[index]["function"]["arguments"];
            *args = json!(format!(
                "{}{}",
                args.as_str().unwrap(),
                call["function"]["arguments"].as_str().unwrap_or_default()
            ));
        }
    }
    let mut message = json!({"role": "assistant", "content": null});
    if !content.is_empty() {
        message["content"] = json!(content);
    }
    if !details.is_empty() {
        message["reasoning"] = json!(reasoning);
        message["reasoning_details"] = json!(details);
    }
    if !calls.is_empty() {
        message["tool_calls"] = json!(calls);
    }
    message
}

/// Tool-call arguments parsed, so that two spellings of one JSON object compare equal.
fn with_parsed_arguments(mut message: Value) -> Value {
    for call in message["tool_calls"].as_array_mut().into_iter().flatten() {
        let args = call["function"]["arguments"].as_str().unwrap();
        call["function"]["arguments"] = serde_json::from_str(args).unwrap();
    }
    message
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"]}
    }})
}

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn system_prompt_and_sampling_fields() {
    let body = upstream(json!({
        "model": "cohere/command-a",
        "models": ["cohere/command-r-plus-08-2024"],
        "provider": {"order": ["cohere"]},
        "plugins": [{"id": "web"}],
        "route": "fallback",
        "usage": {"include": true},
        "session_id": "s1",
        "transforms": ["middle-out"],
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [
                {"type": "text", "text": "Answer in French."},
                {"type": "text", "text": ""}
            ]},
            {"role": "user", "content": "Bonjour"}
        ],
        "temperature": 0.2, "top_p": 1.0, "top_k": 900, "stop": "END",
        "seed": 7, "frequency_penalty": -0.5, "presence_penalty": 1.5,
        "logprobs": true, "top_logprobs": 2, "metadata": {"a": "b"}, "user": "user-42",
        "parallel_tool_calls": false, "stream": true
    }));
    assert_json_snapshot!(body, @r#"
    {
      "frequency_penalty": 0.0,
      "k": 500,
      "max_tokens": 8192,
      "messages": [
        {
          "content": "You are terse.",
          "role": "system"
        },
        {
          "content": [
            {
              "text": "Answer in French.",
              "type": "text"
            }
          ],
          "role": "system"
        },
        {
          "content": "Bonjour",
          "role": "user"
        }
      ],
      "model": "command-a-03-2025",
      "p": 0.99,
      "presence_penalty": 1.0,
      "seed": 7,
      "stop_sequences": [
        "END"
      ],
      "stream": true,
      "temperature": 0.2
    }
    "#);
}

#[test]
fn multi_turn_keeps_order_and_roles() {
    let body = upstream(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "First."},
            {"role": "assistant", "content": "One."},
            {"role": "user", "content": [{"type": "text", "text": "Second."}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Two."},
                {"type": "refusal", "refusal": "no"}]},
            {"role": "assistant", "content": null},
            {"role": "system", "content": "Mid-conversation instructions stay in place."},
            {"role": "user", "content": "Third."}
        ],
        "stop": ["a", "b", ""],
        "max_tokens": 300,
        "top_p": 0.5,
        "top_k": 40
    }));
    assert_json_snapshot!(body, @r#"
    {
      "k": 40,
      "max_tokens": 300,
      "messages": [
        {
          "content": "First.",
          "role": "user"
        },
        {
          "content": "One.",
          "role": "assistant"
        },
        {
          "content": [
            {
              "text": "Second.",
              "type": "text"
            }
          ],
          "role": "user"
        },
        {
          "content": [
            {
              "text": "Two.",
              "type": "text"
            }
          ],
          "role": "assistant"
        },
        {
          "content": "Mid-conversation instructions stay in place.",
          "role": "system"
        },
        {
          "content": "Third.",
          "role": "user"
        }
      ],
      "model": "command-a-03-2025",
      "p": 0.5,
      "stop_sequences": [
        "a",
        "b"
      ]
    }
    "#);
}

#[test]
fn images_by_url_and_base64() {
    let body = upstream(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ]}]
    }));
    assert_json_snapshot!(body["messages"], @r#"
    [
      {
        "content": [
          {
            "text": "Compare these.",
            "type": "text"
          },
          {
            "image_url": {
              "detail": "high",
              "url": "https://example.com/cat.jpg"
            },
            "type": "image_url"
          },
          {
            "image_url": {
              "url": "data:image/png;base64,iVBORw0KGgo="
            },
            "type": "image_url"
          }
        ],
        "role": "user"
      }
    ]
    "#);
    for (message, needle) in [
        (
            json!({"role": "user", "content": [{"type": "image_url",
                "image_url": {"url": "ftp://example.com/cat.jpg"}}]}),
            "`messages[0].content[0].image_url.url` must be an http(s) URL or a base64 data URL",
        ),
        (
            json!({"role": "system", "content": [{"type": "image_url",
                "image_url": {"url": "https://example.com/cat.jpg"}}]}),
            "`messages[0].content[0]`: content parts of type `image_url`",
        ),
        (
            json!({"role": "user", "content": [{"type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQ="}}]}),
            "`messages[0].content[0]`: content parts of type `file`",
        ),
        (
            json!({"role": "user", "content": [{"type": "input_audio",
                "input_audio": {"data": "AAAA", "format": "wav"}}]}),
            "content parts of type `input_audio`",
        ),
        (
            json!({"role": "function", "name": "f", "content": "x"}),
            "the role `function` is not supported",
        ),
    ] {
        let err = upstream_err(json!({"model": "m", "messages": [message]}));
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.message.contains(needle), "{}", err.message);
    }
}

#[test]
fn tools_and_each_tool_choice() {
    let clock = json!({"type": "function", "function": {"name": "now"}});
    let base = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [weather_tool(), clock, {"type": "web_search_preview"}],
        "parallel_tool_calls": true
    });
    let body = upstream(base.clone());
    assert_json_snapshot!(body["tools"], @r#"
    [
      {
        "function": {
          "description": "Current weather in a city",
          "name": "get_weather",
          "parameters": {
            "properties": {
              "city": {
                "type": "string"
              },
              "unit": {
                "enum": [
                  "c",
                  "f"
                ],
                "type": "string"
              }
            },
            "required": [
              "city"
            ],
            "type": "object"
          }
        },
        "type": "function"
      },
      {
        "function": {
          "name": "now",
          "parameters": {
            "properties": {},
            "type": "object"
          }
        },
        "type": "function"
      }
    ]
    "#);
    assert!(body.get("tool_choice").is_none() && body.get("strict_tools").is_none());

    let mut table = Map::new();
    for choice in [
        json!("auto"),
        json!("none"),
        json!("required"),
        json!({"type": "function", "function": {"name": "now"}}),
    ] {
        let mut request = base.clone();
        request["tool_choice"] = choice.clone();
        let body = upstream(request);
        let names: Vec<&Value> = body["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["function"]["name"])
            .collect();
        table.insert(
            choice.to_string(),
            json!({"tool_choice": body.get("tool_choice"), "tools": names}),
        );
    }
    assert_json_snapshot!(table, @r#"
    {
      "\"auto\"": {
        "tool_choice": null,
        "tools": [
          "get_weather",
          "now"
        ]
      },
      "\"none\"": {
        "tool_choice": "NONE",
        "tools": [
          "get_weather",
          "now"
        ]
      },
      "\"required\"": {
        "tool_choice": "REQUIRED",
        "tools": [
          "get_weather",
          "now"
        ]
      },
      "{\"function\":{\"name\":\"now\"},\"type\":\"function\"}": {
        "tool_choice": "REQUIRED",
        "tools": [
          "now"
        ]
      }
    }
    "#);

    let mut request = base.clone();
    request["tool_choice"] = json!({"type": "function", "function": {"name": "missing"}});
    let err = upstream_err(request);
    assert!(err.message.contains("`missing`"), "{}", err.message);

    // No tools: no tool choice either (Cohere wants tools with one).
    let body = upstream(json!({"model": "m", "tool_choice": "required",
        "messages": [{"role": "user", "content": "hi"}]}));
    assert!(body.get("tool_choice").is_none() && body.get("tools").is_none());

    // `strict_tools` is one switch: set only when every function tool is strict.
    let mut strict = weather_tool();
    strict["function"]["strict"] = json!(true);
    let body = upstream(json!({"model": "m", "tools": [strict.clone()],
        "messages": [{"role": "user", "content": "hi"}]}));
    assert_eq!(body["strict_tools"], true);
    assert!(body["tools"][0]["function"].get("strict").is_none());
    let body = upstream(json!({"model": "m", "tools": [strict, weather_tool()],
        "messages": [{"role": "user", "content": "hi"}]}));
    assert!(body.get("strict_tools").is_none());
}

#[test]
fn response_format_variants() {
    let messages = json!([{"role": "user", "content": "Describe a cat as JSON."}]);
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}},
        "required": ["name"]});
    let mut table = Map::new();
    for format in [
        json!({"type": "text"}),
        json!({"type": "json_object"}),
        json!({"type": "json_schema", "json_schema": {"name": "cat", "strict": true, "schema": schema}}),
    ] {
        let body = upstream(json!({"model": "m", "messages": messages, "response_format": format}));
        table.insert(
            format["type"].as_str().unwrap().into(),
            body.get("response_format").cloned().unwrap_or(Value::Null),
        );
    }
    assert_json_snapshot!(table, @r#"
    {
      "json_object": {
        "type": "json_object"
      },
      "json_schema": {
        "json_schema": {
          "properties": {
            "name": {
              "type": "string"
            }
          },
          "required": [
            "name"
          ],
          "type": "object"
        },
        "type": "json_object"
      },
      "text": null
    }
    "#);
    let err = upstream_err(json!({"model": "m", "messages": messages,
        "response_format": {"type": "json_schema", "json_schema": {"name": "cat"}}}));
    assert!(err.message.contains("response_format.json_schema.schema"));
}

#[test]
fn reasoning_becomes_thinking() {
    let cases = [
        (
            "effort high",
            json!({"reasoning": {"effort": "high"}, "max_tokens": 1000}),
        ),
        (
            "effort xhigh",
            json!({"reasoning": {"effort": "xhigh"}, "max_tokens": 1000}),
        ),
        (
            "effort medium",
            json!({"reasoning": {"effort": "medium"}, "max_tokens": 1000}),
        ),
        (
            "effort low",
            json!({"reasoning_effort": "low", "max_tokens": 1000}),
        ),
        (
            "effort minimal",
            json!({"reasoning": {"effort": "minimal"}, "max_tokens": 1000}),
        ),
        (
            "effort, no max_tokens",
            json!({"reasoning": {"effort": "high"}}),
        ),
        (
            "enabled",
            json!({"reasoning": {"enabled": true}, "max_tokens": 1000}),
        ),
        (
            "include_reasoning",
            json!({"include_reasoning": true, "max_tokens": 1000}),
        ),
        (
            "budget below max",
            json!({"reasoning": {"max_tokens": 512}, "max_tokens": 1000}),
        ),
        (
            "budget above max",
            json!({"reasoning": {"max_tokens": 2048}, "max_tokens": 1000}),
        ),
        (
            "budget above the endpoint",
            json!({"reasoning": {"max_tokens": 10000}}),
        ),
        (
            "effort none",
            json!({"reasoning": {"effort": "none"}, "max_tokens": 1000}),
        ),
        (
            "enabled false",
            json!({"reasoning": {"enabled": false, "effort": "high"}}),
        ),
        (
            "exclude only",
            json!({"reasoning": {"exclude": true}, "max_tokens": 1000}),
        ),
        ("nothing", json!({"max_tokens": 1000})),
    ];
    let mut table = Map::new();
    for (name, extra) in cases {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "2+2?"}]});
        for (k, v) in extra.as_object().unwrap() {
            request[k] = v.clone();
        }
        let body = upstream(request);
        table.insert(
            name.into(),
            json!({"max_tokens": body["max_tokens"], "thinking": body.get("thinking")}),
        );
    }
    assert_json_snapshot!(table, @r#"
    {
      "budget above max": {
        "max_tokens": 3048,
        "thinking": {
          "token_budget": 2048,
          "type": "enabled"
        }
      },
      "budget above the endpoint": {
        "max_tokens": 8192,
        "thinking": {
          "token_budget": 8191,
          "type": "enabled"
        }
      },
      "budget below max": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 512,
          "type": "enabled"
        }
      },
      "effort high": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 800,
          "type": "enabled"
        }
      },
      "effort low": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 200,
          "type": "enabled"
        }
      },
      "effort medium": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 500,
          "type": "enabled"
        }
      },
      "effort minimal": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 100,
          "type": "enabled"
        }
      },
      "effort none": {
        "max_tokens": 1000,
        "thinking": {
          "type": "disabled"
        }
      },
      "effort xhigh": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 950,
          "type": "enabled"
        }
      },
      "effort, no max_tokens": {
        "max_tokens": 8192,
        "thinking": {
          "token_budget": 6553,
          "type": "enabled"
        }
      },
      "enabled": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 500,
          "type": "enabled"
        }
      },
      "enabled false": {
        "max_tokens": 8192,
        "thinking": {
          "type": "disabled"
        }
      },
      "exclude only": {
        "max_tokens": 1000,
        "thinking": null
      },
      "include_reasoning": {
        "max_tokens": 1000,
        "thinking": {
          "token_budget": 500,
          "type": "enabled"
        }
      },
      "nothing": {
        "max_tokens": 1000,
        "thinking": null
      }
    }
    "#);
}

#[test]
fn invalid_messages_name_the_field() {
    for (message, needle) in [
        (
            json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "f", "arguments": "[1, 2]"}}]}),
            "`messages[1].tool_calls[0].function.arguments` must be a JSON object",
        ),
        (
            json!({"role": "assistant", "tool_calls": [{"type": "function",
                "function": {"name": "f", "arguments": "{}"}}]}),
            "`messages[1].tool_calls[0]` needs an `id` and a `function.name`",
        ),
        (
            // A missing one is refused by `ChatRequest::parse` already.
            json!({"role": "tool", "tool_call_id": "", "content": "18C"}),
            "`messages[1].tool_call_id` is required",
        ),
    ] {
        let err = upstream_err(json!({"model": "m",
            "messages": [{"role": "user", "content": "hi"}, message]}));
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.message.contains(needle), "{}", err.message);
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn plain_request() -> ChatRequest {
    req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
}

fn parse(response: &Value, request: &ChatRequest) -> (Map<String, Value>, Outcome) {
    parse_response(&serde_json::to_vec(response).unwrap(), request).unwrap()
}

#[test]
fn text_response_rendered() {
    let upstream = json!({
        "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [
            {"type": "text", "text": "Bonjour "}, {"type": "text", "text": "!"}]},
        "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 3},
            "tokens": {"input_tokens": 71, "output_tokens": 5}}
    });
    let (body, outcome) = parse(&upstream, &plain_request());
    assert_eq!(generated_text_len(&body), "Bonjour !".len());
    assert_eq!(
        outcome.upstream_id.as_deref(),
        Some("c14c80c3-18eb-4519-9460-6c92edd8cfb4")
    );
    let usage = outcome.usage.unwrap();
    assert_json_snapshot!(json_of(&render_response(body, &SERVED, &usage, &cost())), @r#"
    {
      "choices": [
        {
          "finish_reason": "stop",
          "index": 0,
          "logprobs": null,
          "message": {
            "content": "Bonjour !",
            "role": "assistant"
          },
          "native_finish_reason": "COMPLETE"
        }
      ],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "cohere/command-a",
      "object": "chat.completion",
      "provider": "Cohere",
      "system_fingerprint": null,
      "usage": {
        "completion_tokens": 3,
        "completion_tokens_details": {
          "reasoning_tokens": 0
        },
        "cost": 0.000003,
        "cost_details": {
          "upstream_inference_completions_cost": 0.000002,
          "upstream_inference_cost": null,
          "upstream_inference_prompt_cost": 0.000001
        },
        "is_byok": false,
        "prompt_tokens": 5,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 0
        },
        "total_tokens": 8
      }
    }
    "#);
}

fn thinking_response() -> Value {
    json!({
        "id": "r-1",
        "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two plus two is four."},
            {"type": "text", "text": "4"}]},
        "usage": {"billed_units": {"input_tokens": 9, "output_tokens": 40},
            "tokens": {"input_tokens": 500, "output_tokens": 40}}
    })
}

#[test]
fn thinking_becomes_reasoning() {
    let (body, _) = parse(&thinking_response(), &plain_request());
    assert_json_snapshot!(body["choices"][0], @r#"
    {
      "finish_reason": "COMPLETE",
      "index": 0,
      "logprobs": null,
      "message": {
        "content": "4",
        "reasoning": "Two plus two is four.",
        "reasoning_details": [
          {
            "format": "unknown",
            "index": 0,
            "text": "Two plus two is four.",
            "type": "reasoning.text"
          }
        ],
        "role": "assistant"
      }
    }
    "#);
    let excluded = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "reasoning": {"effort": "low", "exclude": true}}),
    );
    let (body, _) = parse(&thinking_response(), &excluded);
    assert_json_snapshot!(body["choices"][0]["message"], @r#"
    {
      "content": "4",
      "role": "assistant"
    }
    "#);
}

#[test]
fn usage_prefers_billed_units_and_prices_cached_tokens() {
    let upstream = json!({
        "id": "u-1", "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
        "usage": {"billed_units": {"input_tokens": 1200, "output_tokens": 300},
            "tokens": {"input_tokens": 1900.0, "output_tokens": 350.0}, "cached_tokens": 800}
    });
    let (_, outcome) = parse(&upstream, &plain_request());
    let usage = outcome.usage.unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 1200,
            completion_tokens: 300,
            cached_tokens: 800,
            ..Usage::default()
        }
    );
    let price = |s: &str| Price::parse_usd(s).unwrap();
    let pricing = Pricing {
        prompt: price("0.0000025"),
        completion: price("0.00001"),
        input_cache_read: price("0.00000025"),
        ..Pricing::default()
    };
    // 400 × 2500 + 800 × 250 (cached, at their price) nano; 300 × 10000 nano.
    let cost = crate::pricing::cost(&pricing, &usage);
    assert_eq!(cost.prompt.nanos(), 1_000_000 + 200_000);
    assert_eq!(cost.completion.nanos(), 3_000_000);
    assert_eq!(cost.total.nanos(), 4_200_000);
    // Without a cache price (Cohere's catalog entries), cached tokens cost what the prompt does.
    let pricing = Pricing {
        input_cache_read: Price::default(),
        ..pricing
    };
    assert_eq!(
        crate::pricing::cost(&pricing, &usage).prompt.nanos(),
        3_000_000
    );

    // Processed tokens (floats, as Cohere may write them) stand in for missing billed units.
    let upstream = json!({
        "id": "u-2", "finish_reason": "COMPLETE",
        "message": {"role": "assistant", "content": []},
        "usage": {"billed_units": {"output_tokens": 28.0},
            "tokens": {"input_tokens": 913.0, "output_tokens": 83.0}}
    });
    let (_, outcome) = parse(&upstream, &plain_request());
    let usage = outcome.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (913, 28));
    let (_, outcome) = parse(
        &json!({"id": "u-3", "finish_reason": "COMPLETE", "message": {"content": []}}),
        &plain_request(),
    );
    assert_eq!(outcome.usage, None);
}

#[test]
fn every_finish_reason() {
    let mut table = Map::new();
    for native in [
        "COMPLETE",
        "STOP_SEQUENCE",
        "MAX_TOKENS",
        "TOOL_CALL",
        "ERROR",
        "TIMEOUT",
    ] {
        let upstream = json!({"id": "f", "finish_reason": native,
            "message": {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
            "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}}});
        let (body, outcome) = parse(&upstream, &plain_request());
        let rendered = json_of(&render_response(
            body,
            &SERVED,
            &outcome.usage.unwrap(),
            &cost(),
        ));
        let choice = &rendered["choices"][0];
        assert_eq!(
            outcome.finish_reason.as_deref(),
            choice["finish_reason"].as_str()
        );
        assert_eq!(outcome.native_finish_reason.as_deref(), Some(native));
        table.insert(
            native.into(),
            json!([choice["finish_reason"], choice["native_finish_reason"]]),
        );
    }
    assert_json_snapshot!(table, @r#"
    {
      "COMPLETE": [
        "stop",
        "COMPLETE"
      ],
      "ERROR": [
        "error",
        "ERROR"
      ],
      "MAX_TOKENS": [
        "length",
        "MAX_TOKENS"
      ],
      "STOP_SEQUENCE": [
        "stop",
        "STOP_SEQUENCE"
      ],
      "TIMEOUT": [
        "error",
        "TIMEOUT"
      ],
      "TOOL_CALL": [
        "tool_calls",
        "TOOL_CALL"
      ]
    }
    "#);
    // Other protocols' values keep their meaning.
    for (native, normalised) in [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("tool_use", "tool_calls"),
        ("end_turn", "stop"),
        ("content_filter", "content_filter"),
        ("error", "error"),
    ] {
        assert_eq!(finish_reason(native), normalised, "{native}");
    }
}

#[test]
fn invalid_upstream_bodies_are_502() {
    for body in [
        &b"{not json"[..],
        br#"{"id":"x"}"#,
        br#"{"message":"internal"}"#,
        b"[]",
    ] {
        let err = parse_response(body, &plain_request()).unwrap_err();
        assert_eq!(err.code.status(), 502);
    }
}

#[test]
fn every_error_status() {
    let mut table = Vec::new();
    for (status, body) in [
        (400, json!({"message": "invalid request: message must not be empty"}).to_string()),
        (
            400,
            json!({"message": "too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130511. Try using a shorter prompt or enabling prompt truncating."})
                .to_string(),
        ),
        (401, json!({"message": "invalid api token"}).to_string()),
        (402, json!({"message": "Please add a payment method"}).to_string()),
        (403, json!({"message": "This model is not available to your organization"}).to_string()),
        (404, json!({"message": "model 'command-nope' not found"}).to_string()),
        (422, json!({"message": "unprocessable entity"}).to_string()),
        (
            429,
            json!({"message": "You are using a Trial key, which is limited to 10 API calls / minute."})
                .to_string(),
        ),
        (498, json!({"message": "invalid or expired token"}).to_string()),
        (499, json!({"message": "request cancelled"}).to_string()),
        (500, json!({"message": "internal server error"}).to_string()),
        (501, json!({"message": "not implemented"}).to_string()),
        (503, json!({"message": "service unavailable"}).to_string()),
        (504, json!({"message": "gateway timeout"}).to_string()),
        (502, "<html>Bad Gateway</html>".to_owned()),
    ] {
        let err = upstream_error(status, body.as_bytes(), "Cohere", Some(7));
        let metadata = err.metadata.clone().unwrap();
        assert_eq!(metadata["provider_name"], "Cohere");
        assert_eq!(metadata["provider_code"], status);
        assert_eq!(err.retry_after, Some(7));
        table.push(json!([status, err.code.status(), err.code.error_type(), err.message,
            metadata["raw"]]));
    }
    assert_json_snapshot!(table, @r#"
    [
      [
        400,
        400,
        "invalid_request",
        "invalid request: message must not be empty",
        "invalid request: message must not be empty"
      ],
      [
        400,
        400,
        "context_length_exceeded",
        "too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130511. Try using a shorter prompt or enabling prompt truncating.",
        "too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 130511. Try using a shorter prompt or enabling prompt truncating."
      ],
      [
        401,
        502,
        "provider_unavailable",
        "Provider returned error",
        "invalid api token"
      ],
      [
        402,
        502,
        "provider_unavailable",
        "Provider returned error",
        "Please add a payment method"
      ],
      [
        403,
        502,
        "provider_unavailable",
        "Provider returned error",
        "This model is not available to your organization"
      ],
      [
        404,
        400,
        "invalid_request",
        "model 'command-nope' not found",
        "model 'command-nope' not found"
      ],
      [
        422,
        400,
        "invalid_request",
        "unprocessable entity",
        "unprocessable entity"
      ],
      [
        429,
        429,
        "rate_limit_exceeded",
        "Cohere is rate limited upstream; retry shortly",
        "You are using a Trial key, which is limited to 10 API calls / minute."
      ],
      [
        498,
        502,
        "provider_unavailable",
        "Provider returned error",
        "invalid or expired token"
      ],
      [
        499,
        502,
        "provider_unavailable",
        "Provider returned error",
        "request cancelled"
      ],
      [
        500,
        502,
        "provider_unavailable",
        "Provider returned error",
        "internal server error"
      ],
      [
        501,
        502,
        "provider_unavailable",
        "Provider returned error",
        "not implemented"
      ],
      [
        503,
        503,
        "provider_overloaded",
        "Cohere is overloaded",
        "service unavailable"
      ],
      [
        504,
        504,
        "timeout",
        "Provider timed out",
        "gateway timeout"
      ],
      [
        502,
        502,
        "provider_unavailable",
        "Provider returned error",
        "<html>Bad Gateway</html>"
      ]
    ]
    "#);
}

// ---------------------------------------------------------------------------------------------
// Streams

#[test]
fn text_stream_frames() {
    let events = [
        json!({"type": "message-start", "id": "s-1", "delta": {"message": {"role": "assistant",
            "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content":
            {"type": "text", "text": ""}}}}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hello"}}},
            "logprobs": null}),
        json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "!"}}}}),
        json!({"type": "content-end", "index": 0}),
        json!({"type": "debug", "prompt": "..."}),
        json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
            "billed_units": {"input_tokens": 3, "output_tokens": 2},
            "tokens": {"input_tokens": 69, "output_tokens": 4}}}}),
    ];
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let StreamStep::Frame(first) = t.on_data(&events[0].to_string()).unwrap() else {
        panic!("message-start sends the role")
    };
    assert!(!t.content_sent());
    assert_json_snapshot!(frame_json(&first), @r#"
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
      "model": "cohere/command-a",
      "object": "chat.completion.chunk",
      "provider": "Cohere"
    }
    "#);

    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let frames = run_stream(&mut t, &events);
    assert!(t.content_sent());
    assert_json_snapshot!(choices(&frames), @r#"
    [
      {
        "delta": {
          "content": "",
          "role": "assistant"
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "content": "Hello"
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "content": "!"
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {},
        "finish_reason": "stop",
        "index": 0,
        "native_finish_reason": "COMPLETE"
      }
    ]
    "#);
    assert_eq!(t.generated_bytes(), 6);
    let outcome = t.outcome().clone();
    assert_eq!(outcome.upstream_id.as_deref(), Some("s-1"));
    assert_eq!(outcome.finish_reason.as_deref(), Some("stop"));
    let usage = outcome.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 2));
    let tail = frame_json(&t.usage_frame(&usage, &cost(), Some(json!({"attempt": 1}))));
    assert_eq!(tail["choices"], json!([]));
    assert_eq!(tail["usage"]["prompt_tokens"], 3);
    assert_eq!(tail["usage"]["cost"], json!(3e-6));
    assert_eq!(tail["openrouter_metadata"]["attempt"], 1);
    assert_eq!(
        (&tail["id"], &tail["object"], &tail["provider"]),
        (
            &json!("gen-1-abc"),
            &json!("chat.completion.chunk"),
            &json!("Cohere")
        )
    );
    // An OpenAI-style terminator, should a compatible deployment send one, ends the stream.
    assert_eq!(t.on_data("[DONE]").unwrap(), StreamStep::Done);
}

#[test]
fn stream_errors_and_error_frame() {
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    assert_eq!(t.on_data("{oops").unwrap_err().code.status(), 502);
    run_stream(
        &mut t,
        &[
            json!({"type": "message-start", "id": "s-2", "delta": {"message": {"role": "assistant"}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Par"}}}}),
        ],
    );
    let err = t
        .on_data(
            &json!({"type": "message-end", "delta": {"finish_reason": "ERROR",
            "error": "internal error while generating", "usage": {"billed_units":
            {"input_tokens": 4, "output_tokens": 1}}}})
            .to_string(),
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamError);
    assert_eq!(t.outcome().finish_reason.as_deref(), Some("error"));
    assert_json_snapshot!(frame_json(&t.error_frame(&err)), @r#"
    {
      "choices": [
        {
          "delta": {
            "content": ""
          },
          "finish_reason": "error",
          "index": 0,
          "native_finish_reason": "ERROR"
        }
      ],
      "created": 1700000000,
      "error": {
        "code": 502,
        "message": "Provider returned error",
        "metadata": {
          "error_type": "provider_unavailable",
          "provider_code": 500,
          "provider_name": "Cohere",
          "raw": "internal error while generating"
        }
      },
      "id": "gen-1-abc",
      "model": "cohere/command-a",
      "object": "chat.completion.chunk",
      "provider": "Cohere"
    }
    "#);

    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let err = t
        .on_data(r#"{"type":"message-end","delta":{"finish_reason":"TIMEOUT"}}"#)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamTimeout);
    assert_eq!(err.metadata.unwrap()["raw"], "TIMEOUT");

    // An error body where an event was expected.
    let err = t
        .on_data(r#"{"message":"too many tokens: size limit exceeded"}"#)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamError);
}

// ---------------------------------------------------------------------------------------------
// A whole conversation: a tool plan and two parallel tool calls, their results, and the answer.

fn turn1_request() -> Value {
    json!({
        "model": "cohere/command-a",
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": "Weather in Madrid and Brasilia?"}
        ],
        "tools": [weather_tool()],
        "max_tokens": 1024
    })
}

fn turn1_response() -> Value {
    json!({
        "id": "t1-5f2e",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "tool_plan": "I will look up the weather in Madrid and Brasilia.",
            "tool_calls": [
                {"id": "get_weather_p1t92w7gfgq7", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\n    \"city\": \"Madrid\"\n}"}},
                {"id": "get_weather_ay6nmvjgp9vn", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\n    \"city\": \"Brasilia\"\n}"}}
            ]
        },
        "usage": {"billed_units": {"input_tokens": 37, "output_tokens": 28},
            "tokens": {"input_tokens": 913, "output_tokens": 83}}
    })
}

/// The same turn as Cohere streams it.
fn turn1_events() -> Vec<Value> {
    let plan =
        |text: &str| json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": text}}});
    let args = |index: u64, fragment: &str| {
        json!({"type": "tool-call-delta", "index": index,
            "delta": {"message": {"tool_calls": {"function": {"arguments": fragment}}}}})
    };
    let start = |index: u64, id: &str| {
        json!({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls":
            {"id": id, "type": "function", "function": {"name": "get_weather", "arguments": ""}}}}})
    };
    vec![
        json!({"type": "message-start", "id": "t1-5f2e", "delta": {"message": {"role": "assistant",
            "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
        plan("I will look up the weather"),
        plan(" in Madrid and Brasilia."),
        start(0, "get_weather_p1t92w7gfgq7"),
        args(0, "{\n    \""),
        args(0, "city\": \"Madrid\"\n}"),
        json!({"type": "tool-call-end", "index": 0}),
        start(1, "get_weather_ay6nmvjgp9vn"),
        args(1, "{\n    \"city\":"),
        args(1, " \"Brasilia\"\n}"),
        json!({"type": "tool-call-end", "index": 1}),
        json!({"type": "message-end", "id": null, "delta": {"finish_reason": "TOOL_CALL", "usage": {
            "billed_units": {"input_tokens": 37.0, "output_tokens": 28.0},
            "tokens": {"input_tokens": 913.0, "output_tokens": 83.0}}}}),
    ]
}

#[test]
fn turn1_request_body() {
    assert_json_snapshot!(upstream(turn1_request()), @r#"
    {
      "max_tokens": 1024,
      "messages": [
        {
          "content": "You are a weather assistant.",
          "role": "system"
        },
        {
          "content": "Weather in Madrid and Brasilia?",
          "role": "user"
        }
      ],
      "model": "command-a-03-2025",
      "tools": [
        {
          "function": {
            "description": "Current weather in a city",
            "name": "get_weather",
            "parameters": {
              "properties": {
                "city": {
                  "type": "string"
                },
                "unit": {
                  "enum": [
                    "c",
                    "f"
                  ],
                  "type": "string"
                }
              },
              "required": [
                "city"
              ],
              "type": "object"
            }
          },
          "type": "function"
        }
      ]
    }
    "#);
}

#[test]
fn turn1_response_with_plan_and_parallel_tool_calls() {
    let request = req(turn1_request());
    let (body, outcome) = parse(&turn1_response(), &request);
    let usage = outcome.usage.unwrap();
    assert_json_snapshot!(json_of(&render_response(body, &SERVED, &usage, &cost())), @r#"
    {
      "choices": [
        {
          "finish_reason": "tool_calls",
          "index": 0,
          "logprobs": null,
          "message": {
            "content": null,
            "reasoning": "I will look up the weather in Madrid and Brasilia.",
            "reasoning_details": [
              {
                "format": "unknown",
                "index": 0,
                "text": "I will look up the weather in Madrid and Brasilia.",
                "type": "reasoning.text"
              }
            ],
            "role": "assistant",
            "tool_calls": [
              {
                "function": {
                  "arguments": "{\n    \"city\": \"Madrid\"\n}",
                  "name": "get_weather"
                },
                "id": "get_weather_p1t92w7gfgq7",
                "type": "function"
              },
              {
                "function": {
                  "arguments": "{\n    \"city\": \"Brasilia\"\n}",
                  "name": "get_weather"
                },
                "id": "get_weather_ay6nmvjgp9vn",
                "type": "function"
              }
            ]
          },
          "native_finish_reason": "TOOL_CALL"
        }
      ],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "cohere/command-a",
      "object": "chat.completion",
      "provider": "Cohere",
      "system_fingerprint": null,
      "usage": {
        "completion_tokens": 28,
        "completion_tokens_details": {
          "reasoning_tokens": 0
        },
        "cost": 0.000003,
        "cost_details": {
          "upstream_inference_completions_cost": 0.000002,
          "upstream_inference_cost": null,
          "upstream_inference_prompt_cost": 0.000001
        },
        "is_byok": false,
        "prompt_tokens": 37,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 0
        },
        "total_tokens": 65
      }
    }
    "#);
}

#[test]
fn turn1_stream_reassembles_to_the_non_stream_message() {
    let request = req(turn1_request());
    let mut t = StreamTranslator::new(&SERVED, &request);
    let frames = run_stream(&mut t, &turn1_events());
    assert_json_snapshot!(choices(&frames), @r#"
    [
      {
        "delta": {
          "content": "",
          "role": "assistant"
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "reasoning": "I will look up the weather",
          "reasoning_details": [
            {
              "format": "unknown",
              "index": 0,
              "text": "I will look up the weather",
              "type": "reasoning.text"
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "reasoning": " in Madrid and Brasilia.",
          "reasoning_details": [
            {
              "format": "unknown",
              "index": 0,
              "text": " in Madrid and Brasilia.",
              "type": "reasoning.text"
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "tool_calls": [
            {
              "function": {
                "arguments": "",
                "name": "get_weather"
              },
              "id": "get_weather_p1t92w7gfgq7",
              "index": 0,
              "type": "function"
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "tool_calls": [
            {
              "function": {
                "arguments": "{\n    \""
              },
              "index": 0
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "tool_calls": [
            {
              "function": {
                "arguments": "city\": \"Madrid\"\n}"
              },
              "index": 0
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "tool_calls": [
            {
              "function": {
                "arguments": "",
                "name": "get_weather"
              },
              "id": "get_weather_ay6nmvjgp9vn",
              "index": 1,
              "type": "function"
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "tool_calls": [
            {
              "function": {
                "arguments": "{\n    \"city\":"
              },
              "index": 1
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "tool_calls": [
            {
              "function": {
                "arguments": " \"Brasilia\"\n}"
              },
              "index": 1
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {},
        "finish_reason": "tool_calls",
        "index": 0,
        "native_finish_reason": "TOOL_CALL"
      }
    ]
    "#);

    let indices: Vec<u64> = frames
        .iter()
        .flat_map(|f| {
            f["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [0, 0, 0, 1, 1, 1]);

    let streamed = reassemble(&frames);
    let (body, outcome) = parse(&turn1_response(), &request);
    assert_eq!(streamed, body["choices"][0]["message"]);
    assert_eq!(t.outcome(), &outcome);
    assert!(t.content_sent());
}

fn turn2_request(assistant: Value) -> Value {
    let mut request = turn1_request();
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(assistant);
    messages.push(
        json!({"role": "tool", "tool_call_id": "get_weather_p1t92w7gfgq7",
        "content": "{\"temp\": 24, \"sky\": \"sunny\"}"}),
    );
    messages.push(
        json!({"role": "tool", "tool_call_id": "get_weather_ay6nmvjgp9vn",
        "content": [{"type": "text", "text": "{\"temp\": 28, \"sky\": \"rain\"}"}]}),
    );
    request
}

fn turn2_response() -> Value {
    json!({
        "id": "t2-9a1b",
        "finish_reason": "COMPLETE",
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": "It is 24°C in Madrid and 28°C in Brasilia."}],
            "citations": [{"start": 6, "end": 10, "text": "24°C", "type": "TEXT_CONTENT",
                "sources": [{"type": "tool", "id": "get_weather_p1t92w7gfgq7:0",
                    "tool_output": {"temp": 24, "sky": "sunny"}}]}]
        },
        "usage": {"billed_units": {"input_tokens": 80, "output_tokens": 14},
            "tokens": {"input_tokens": 1100, "output_tokens": 30}, "cached_tokens": 896}
    })
}

fn turn2_events() -> Vec<Value> {
    let text = |t: &str| json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": t}}}});
    vec![
        json!({"type": "message-start", "id": "t2-9a1b", "delta": {"message": {"role": "assistant"}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        text("It is 24°C"),
        text(" in Madrid and 28°C in Brasilia."),
        json!({"type": "citation-start", "index": 0, "delta": {"message": {"citations": {"start": 6,
            "end": 10, "text": "24°C", "sources": [{"type": "tool", "id": "get_weather_p1t92w7gfgq7:0"}]}}}}),
        json!({"type": "citation-end", "index": 0}),
        json!({"type": "content-end", "index": 0}),
        json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
            "billed_units": {"input_tokens": 80, "output_tokens": 14},
            "tokens": {"input_tokens": 1100, "output_tokens": 30}, "cached_tokens": 896}}}),
    ]
}

#[test]
fn turn2_request_passes_the_calls_and_results_back() {
    let request = req(turn1_request());
    let (body, _) = parse(&turn1_response(), &request);
    let assistant = body["choices"][0]["message"].clone();
    let turn2 = upstream(turn2_request(assistant.clone()));
    assert_json_snapshot!(turn2["messages"], @r#"
    [
      {
        "content": "You are a weather assistant.",
        "role": "system"
      },
      {
        "content": "Weather in Madrid and Brasilia?",
        "role": "user"
      },
      {
        "role": "assistant",
        "tool_calls": [
          {
            "function": {
              "arguments": "{\n    \"city\": \"Madrid\"\n}",
              "name": "get_weather"
            },
            "id": "get_weather_p1t92w7gfgq7",
            "type": "function"
          },
          {
            "function": {
              "arguments": "{\n    \"city\": \"Brasilia\"\n}",
              "name": "get_weather"
            },
            "id": "get_weather_ay6nmvjgp9vn",
            "type": "function"
          }
        ],
        "tool_plan": "I will look up the weather in Madrid and Brasilia."
      },
      {
        "content": "{\"temp\": 24, \"sky\": \"sunny\"}",
        "role": "tool",
        "tool_call_id": "get_weather_p1t92w7gfgq7"
      },
      {
        "content": [
          {
            "text": "{\"temp\": 28, \"sky\": \"rain\"}",
            "type": "text"
          }
        ],
        "role": "tool",
        "tool_call_id": "get_weather_ay6nmvjgp9vn"
      }
    ]
    "#);

    // A client that kept the streamed message sends the same turn.
    let mut t = StreamTranslator::new(&SERVED, &request);
    let streamed = reassemble(&run_stream(&mut t, &turn1_events()));
    assert_eq!(upstream(turn2_request(streamed)), turn2);

    // Without `reasoning`, the text of `reasoning_details` is the plan; without either, there is none.
    let mut details_only = assistant.clone();
    details_only.as_object_mut().unwrap().remove("reasoning");
    assert_eq!(upstream(turn2_request(details_only)), turn2);
    let mut bare = assistant;
    bare.as_object_mut().unwrap().remove("reasoning");
    bare.as_object_mut().unwrap().remove("reasoning_details");
    let body = upstream(turn2_request(bare));
    assert!(body["messages"][2].get("tool_plan").is_none());
}

#[test]
fn turn2_answer_streams_like_it_parses() {
    let request = req(turn2_request(json!({"role": "assistant", "tool_calls": [
        {"id": "get_weather_p1t92w7gfgq7", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Madrid\"}"}},
        {"id": "get_weather_ay6nmvjgp9vn", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Brasilia\"}"}}]})));
    let (body, outcome) = parse(&turn2_response(), &request);
    // Citations of tool outputs have no place in the chat shape.
    assert_json_snapshot!(body["choices"][0], @r#"
    {
      "finish_reason": "COMPLETE",
      "index": 0,
      "logprobs": null,
      "message": {
        "content": "It is 24°C in Madrid and 28°C in Brasilia.",
        "role": "assistant"
      }
    }
    "#);
    let mut t = StreamTranslator::new(&SERVED, &request);
    let frames = run_stream(&mut t, &turn2_events());
    assert_eq!(reassemble(&frames), body["choices"][0]["message"]);
    assert_eq!(t.outcome(), &outcome);
    assert_eq!(
        outcome.usage,
        Some(Usage {
            prompt_tokens: 80,
            completion_tokens: 14,
            cached_tokens: 896,
            ..Usage::default()
        })
    );
    let last = frames.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["native_finish_reason"], "COMPLETE");
}

// ---------------------------------------------------------------------------------------------
// A reasoning model: thinking, then a tool call without arguments.

fn thinking_tool_response() -> Value {
    json!({
        "id": "r-2",
        "finish_reason": "TOOL_CALL",
        "message": {
            "role": "assistant",
            "content": [{"type": "thinking", "thinking": "The user wants the time. I should call now."}],
            "tool_calls": [{"id": "now_0", "type": "function",
                "function": {"name": "now", "arguments": ""}}]
        },
        "usage": {"billed_units": {"input_tokens": 20, "output_tokens": 25}}
    })
}

fn thinking_tool_events() -> Vec<Value> {
    let thinking = |t: &str| json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": t}}}});
    vec![
        json!({"type": "message-start", "id": "r-2", "delta": {"message": {"role": "assistant"}}}),
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}}),
        thinking("The user wants the time."),
        thinking(" I should call now."),
        json!({"type": "content-end", "index": 0}),
        json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls":
            {"id": "now_0", "type": "function", "function": {"name": "now", "arguments": ""}}}}}),
        json!({"type": "tool-call-end", "index": 0}),
        json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL",
            "usage": {"billed_units": {"input_tokens": 20, "output_tokens": 25}}}}),
    ]
}

#[test]
fn thinking_stream_reassembles_and_empty_arguments_are_json() {
    let request = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "Time?"}],
        "tools": [{"type": "function", "function": {"name": "now"}}], "reasoning": {"effort": "low"}}),
    );
    let (body, outcome) = parse(&thinking_tool_response(), &request);
    let message = body["choices"][0]["message"].clone();
    assert_json_snapshot!(message, @r#"
    {
      "content": null,
      "reasoning": "The user wants the time. I should call now.",
      "reasoning_details": [
        {
          "format": "unknown",
          "index": 0,
          "text": "The user wants the time. I should call now.",
          "type": "reasoning.text"
        }
      ],
      "role": "assistant",
      "tool_calls": [
        {
          "function": {
            "arguments": "{}",
            "name": "now"
          },
          "id": "now_0",
          "type": "function"
        }
      ]
    }
    "#);
    let mut t = StreamTranslator::new(&SERVED, &request);
    let frames = run_stream(&mut t, &thinking_tool_events());
    let streamed = reassemble(&frames);
    assert_eq!(
        with_parsed_arguments(streamed),
        with_parsed_arguments(message)
    );
    assert_eq!(t.outcome(), &outcome);
    assert_eq!(outcome.finish_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn stream_with_reasoning_excluded_sends_no_reasoning() {
    let request = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "Time?"}],
        "reasoning": {"effort": "low", "exclude": true}}),
    );
    let events = thinking_tool_events();
    let mut t = StreamTranslator::new(&SERVED, &request);
    // Thinking alone is not content the client has received, but it was generated.
    run_stream(&mut t, &events[..5]);
    assert!(!t.content_sent());
    assert!(t.generated_bytes() > 0);
    let mut t = StreamTranslator::new(&SERVED, &request);
    let message = reassemble(&run_stream(&mut t, &events));
    assert!(message.get("reasoning").is_none() && message.get("reasoning_details").is_none());
    assert_eq!(message["tool_calls"][0]["function"]["arguments"], "{}");
    // A tool plan is reasoning too.
    let mut t = StreamTranslator::new(&SERVED, &request);
    let message = reassemble(&run_stream(&mut t, &turn1_events()));
    assert!(message.get("reasoning").is_none());
    assert_eq!(message["tool_calls"].as_array().unwrap().len(), 2);
}
