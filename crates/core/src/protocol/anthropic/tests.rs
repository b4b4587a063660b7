//! Golden tests of the Anthropic Messages translation, both directions, and a whole tool-use
//! conversation with thinking (non-streaming and streaming).

use super::*;
use crate::catalog::Pricing;
use crate::error::ErrorCode;
use crate::money::{Money, Price};
use crate::protocol::openai::{generated_text_len, render_response};
use insta::assert_json_snapshot;

const SERVED: Served<'static> = Served {
    generation_id: "gen-1-abc",
    model: "anthropic/claude-sonnet-4.5",
    provider_name: "Anthropic",
    created: 1_700_000_000,
};

const MODEL: &str = "claude-sonnet-4-5-20250929";

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

/// Feeds events (`data` payloads) and collects the frames, checking that `message_stop` ends it.
fn run_stream(t: &mut StreamTranslator, events: &[Value]) -> Vec<Value> {
    let mut frames = Vec::new();
    for (n, event) in events.iter().enumerate() {
        match t.on_data(&event.to_string()).unwrap() {
            StreamStep::Frame(frame) => frames.push(frame_json(&frame)),
            StreamStep::Nothing => {}
            StreamStep::Done => assert_eq!(n, events.len() - 1, "Done before the end"),
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
                    if let Some(text) = item["text"].as_str() {
                        d["text"] = json!(format!("{}{text}", d["text"].as_str().unwrap_or("")));
                    }
                    if let Some(signature) = item.get("signature") {
                        d["signature"] = signature.clone();
                    }
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

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn system_and_developer_messages_become_system_blocks() {
    let body = upstream(json!({
        "model": "anthropic/claude-sonnet-4.5",
        "models": ["anthropic/claude-opus-4"],
        "provider": {"order": ["anthropic"]},
        "plugins": [{"id": "web"}],
        "route": "fallback",
        "usage": {"include": true},
        "session_id": "s1",
        "transforms": ["middle-out"],
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [
                {"type": "text", "text": "Long shared rules", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Answer in French."}
            ]},
            {"role": "user", "content": "Bonjour"}
        ],
        "temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop": "END",
        "seed": 7, "frequency_penalty": 0.5, "logprobs": true, "metadata": {"a": "b"},
        "user": "user-42", "stream": true
    }));
    assert_json_snapshot!(body, @r#"
    {
      "max_tokens": 8192,
      "messages": [
        {
          "content": [
            {
              "text": "Bonjour",
              "type": "text"
            }
          ],
          "role": "user"
        }
      ],
      "metadata": {
        "user_id": "user-42"
      },
      "model": "claude-sonnet-4-5-20250929",
      "stop_sequences": [
        "END"
      ],
      "stream": true,
      "system": [
        {
          "text": "You are terse.",
          "type": "text"
        },
        {
          "cache_control": {
            "type": "ephemeral"
          },
          "text": "Long shared rules",
          "type": "text"
        },
        {
          "text": "Answer in French.",
          "type": "text"
        }
      ],
      "temperature": 0.2,
      "top_k": 40
    }
    "#);
}

#[test]
fn consecutive_turns_of_one_role_are_merged() {
    let body = upstream(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "First."},
            {"role": "user", "content": [{"type": "text", "text": "Second."}]},
            {"role": "assistant", "content": "One."},
            {"role": "assistant", "content": [{"type": "text", "text": "Two."}]},
            {"role": "system", "content": "Mid-conversation system text joins the top-level system."},
            {"role": "user", "content": "Third."},
            {"role": "user", "content": ""}
        ],
        "stop": ["a", "b"],
        "max_tokens": 300
    }));
    assert_json_snapshot!(body, @r#"
    {
      "max_tokens": 300,
      "messages": [
        {
          "content": [
            {
              "text": "First.",
              "type": "text"
            },
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
              "text": "One.",
              "type": "text"
            },
            {
              "text": "Two.",
              "type": "text"
            }
          ],
          "role": "assistant"
        },
        {
          "content": [
            {
              "text": "Third.",
              "type": "text"
            }
          ],
          "role": "user"
        }
      ],
      "model": "claude-sonnet-4-5-20250929",
      "stop_sequences": [
        "a",
        "b"
      ],
      "system": [
        {
          "text": "Mid-conversation system text joins the top-level system.",
          "type": "text"
        }
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
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
             "cache_control": {"type": "ephemeral"}}
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
            "source": {
              "type": "url",
              "url": "https://example.com/cat.jpg"
            },
            "type": "image"
          },
          {
            "cache_control": {
              "type": "ephemeral"
            },
            "source": {
              "data": "iVBORw0KGgo=",
              "media_type": "image/png",
              "type": "base64"
            },
            "type": "image"
          }
        ],
        "role": "user"
      }
    ]
    "#);
    let err = upstream_err(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.jpg"}}]}]}),
    );
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    assert!(err.message.contains("messages[0].content[0].image_url.url"));
}

#[test]
fn pdf_files_become_documents() {
    let body = upstream(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}},
            {"type": "file", "file": {"file_data": "https://example.com/paper.pdf"}},
            {"type": "file", "file": {"filename": "scan.png", "file_data": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "Summarise."}
        ]}]
    }));
    assert_json_snapshot!(body["messages"], @r#"
    [
      {
        "content": [
          {
            "source": {
              "data": "JVBERi0xLjQ=",
              "media_type": "application/pdf",
              "type": "base64"
            },
            "title": "report.pdf",
            "type": "document"
          },
          {
            "source": {
              "type": "url",
              "url": "https://example.com/paper.pdf"
            },
            "type": "document"
          },
          {
            "source": {
              "data": "iVBORw0KGgo=",
              "media_type": "image/png",
              "type": "base64"
            },
            "type": "image"
          },
          {
            "text": "Summarise.",
            "type": "text"
          }
        ],
        "role": "user"
      }
    ]
    "#);
    for (file, needle) in [
        (
            json!({"file_id": "file-123"}),
            "messages[0].content[0].file.file_data",
        ),
        (
            json!({"file_data": "data:text/csv;base64,YSxi"}),
            "text/csv",
        ),
    ] {
        let err = upstream_err(json!({"model": "m", "messages": [{"role": "user",
            "content": [{"type": "file", "file": file}]}]}));
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.message.contains(needle), "{}", err.message);
    }
    let err = upstream_err(
        json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}),
    );
    assert!(err.message.contains("input_audio"), "{}", err.message);
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
            "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}
    }})
}

#[test]
fn tools_and_each_tool_choice() {
    let base = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [
            weather_tool(),
            {"type": "function", "function": {"name": "now", "strict": true}},
            {"type": "openrouter:web_search"}
        ]
    });
    assert_json_snapshot!(upstream(base.clone())["tools"], @r#"
    [
      {
        "description": "Current weather of a city",
        "input_schema": {
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
        },
        "name": "get_weather"
      },
      {
        "input_schema": {
          "properties": {},
          "type": "object"
        },
        "name": "now",
        "strict": true
      }
    ]
    "#);
    let mut choices = Vec::new();
    for (tool_choice, parallel) in [
        (Value::Null, Value::Null),
        (json!("auto"), Value::Null),
        (json!("none"), Value::Null),
        (json!("required"), Value::Null),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            Value::Null,
        ),
        (Value::Null, json!(false)),
        (json!("required"), json!(false)),
        (json!("none"), json!(false)),
        (json!("auto"), json!(true)),
    ] {
        let mut request = base.clone();
        request["tool_choice"] = tool_choice.clone();
        request["parallel_tool_calls"] = parallel.clone();
        let body = upstream(request);
        choices.push(json!({
            "tool_choice": tool_choice,
            "parallel_tool_calls": parallel,
            "upstream": body.get("tool_choice"),
        }));
    }
    assert_json_snapshot!(choices, @r#"
    [
      {
        "parallel_tool_calls": null,
        "tool_choice": null,
        "upstream": null
      },
      {
        "parallel_tool_calls": null,
        "tool_choice": "auto",
        "upstream": {
          "type": "auto"
        }
      },
      {
        "parallel_tool_calls": null,
        "tool_choice": "none",
        "upstream": {
          "type": "none"
        }
      },
      {
        "parallel_tool_calls": null,
        "tool_choice": "required",
        "upstream": {
          "type": "any"
        }
      },
      {
        "parallel_tool_calls": null,
        "tool_choice": {
          "function": {
            "name": "get_weather"
          },
          "type": "function"
        },
        "upstream": {
          "name": "get_weather",
          "type": "tool"
        }
      },
      {
        "parallel_tool_calls": false,
        "tool_choice": null,
        "upstream": {
          "disable_parallel_tool_use": true,
          "type": "auto"
        }
      },
      {
        "parallel_tool_calls": false,
        "tool_choice": "required",
        "upstream": {
          "disable_parallel_tool_use": true,
          "type": "any"
        }
      },
      {
        "parallel_tool_calls": false,
        "tool_choice": "none",
        "upstream": {
          "type": "none"
        }
      },
      {
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "upstream": {
          "type": "auto"
        }
      }
    ]
    "#);
    // Without tools, a tool choice means nothing to Anthropic (and it would reject it).
    let body = upstream(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tool_choice": "required", "parallel_tool_calls": false}),
    );
    assert!(body.get("tool_choice").is_none() && body.get("tools").is_none());
}

#[test]
fn tool_results_become_one_user_turn() {
    let body = upstream(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Paris and London?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_B", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"London\"}"}},
                {"id": "toolu_C", "type": "function", "function": {"name": "now", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_A", "content": "18°C, sunny"},
            {"role": "tool", "tool_call_id": "toolu_B", "content": [{"type": "text", "text": "12°C, rain"}]},
            {"role": "tool", "tool_call_id": "toolu_C", "content": ""},
            {"role": "user", "content": "Which is warmer?"}
        ],
        "tools": [weather_tool()]
    }));
    assert_json_snapshot!(body["messages"], @r#"
    [
      {
        "content": [
          {
            "text": "Weather in Paris and London?",
            "type": "text"
          }
        ],
        "role": "user"
      },
      {
        "content": [
          {
            "id": "toolu_A",
            "input": {
              "city": "Paris"
            },
            "name": "get_weather",
            "type": "tool_use"
          },
          {
            "id": "toolu_B",
            "input": {
              "city": "London"
            },
            "name": "get_weather",
            "type": "tool_use"
          },
          {
            "id": "toolu_C",
            "input": {},
            "name": "now",
            "type": "tool_use"
          }
        ],
        "role": "assistant"
      },
      {
        "content": [
          {
            "content": "18°C, sunny",
            "tool_use_id": "toolu_A",
            "type": "tool_result"
          },
          {
            "content": [
              {
                "text": "12°C, rain",
                "type": "text"
              }
            ],
            "tool_use_id": "toolu_B",
            "type": "tool_result"
          },
          {
            "tool_use_id": "toolu_C",
            "type": "tool_result"
          },
          {
            "text": "Which is warmer?",
            "type": "text"
          }
        ],
        "role": "user"
      }
    ]
    "#);
}

#[test]
fn invalid_tool_call_arguments_name_the_message() {
    for arguments in ["{\"city\":", "[1,2]"] {
        let err = upstream_err(json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "f", "arguments": arguments}}]}
        ]}));
        assert_eq!(err.code.status(), 400);
        assert_eq!(
            err.message,
            "`messages[1].tool_calls[0].function.arguments` must be a JSON object encoded as a string"
        );
    }
    let err = upstream_err(json!({"model": "m", "messages": [
        {"role": "function", "name": "f", "content": "legacy"}]}));
    assert!(err.message.contains("messages[0]"), "{}", err.message);
}

#[test]
fn response_format_variants() {
    let mut out = Map::new();
    for (name, format) in [
        ("text", json!({"type": "text"})),
        ("json_object", json!({"type": "json_object"})),
        (
            "json_schema",
            json!({"type": "json_schema", "json_schema": {"name": "weather", "strict": true,
            "schema": {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"], "additionalProperties": false}}}),
        ),
    ] {
        let body = upstream(json!({"model": "m", "response_format": format,
            "messages": [{"role": "system", "content": "Be exact."}, {"role": "user", "content": "Paris?"}]}));
        out.insert(
            name.into(),
            json!({"system": body["system"], "output_config": body.get("output_config")}),
        );
    }
    assert_json_snapshot!(out, @r#"
    {
      "json_object": {
        "output_config": null,
        "system": [
          {
            "text": "Be exact.",
            "type": "text"
          },
          {
            "text": "Respond with a single valid JSON object only, with no text before or after it.",
            "type": "text"
          }
        ]
      },
      "json_schema": {
        "output_config": {
          "format": {
            "schema": {
              "additionalProperties": false,
              "properties": {
                "city": {
                  "type": "string"
                }
              },
              "required": [
                "city"
              ],
              "type": "object"
            },
            "type": "json_schema"
          }
        },
        "system": [
          {
            "text": "Be exact.",
            "type": "text"
          }
        ]
      },
      "text": {
        "output_config": null,
        "system": [
          {
            "text": "Be exact.",
            "type": "text"
          }
        ]
      }
    }
    "#);
    let err = upstream_err(
        json!({"model": "m", "response_format": {"type": "json_schema",
        "json_schema": {"name": "x"}}, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(err.code.status(), 400);
    // Structured outputs are generally available: no beta flag.
    let structured = req(
        json!({"model": "m", "response_format": {"type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(beta_headers(&structured).is_empty());
}

#[test]
fn reasoning_becomes_a_thinking_budget() {
    let mut table = Vec::new();
    for (ask, max_tokens) in [
        (json!({"reasoning": {"effort": "high"}}), json!(null)),
        (json!({"reasoning": {"effort": "medium"}}), json!(4000)),
        (json!({"reasoning": {"effort": "low"}}), json!(10000)),
        (json!({"reasoning": {"effort": "minimal"}}), json!(20000)),
        (json!({"reasoning": {"effort": "xhigh"}}), json!(2000)),
        (json!({"reasoning_effort": "max"}), json!(null)),
        // Below the minimum budget: raised to 1024, and max_tokens raised to make room.
        (json!({"reasoning": {"effort": "low"}}), json!(1000)),
        (json!({"reasoning": {"max_tokens": 3000}}), json!(6000)),
        (json!({"reasoning": {"max_tokens": 500}}), json!(null)),
        (json!({"reasoning": {"max_tokens": 5000}}), json!(2000)),
        // Raised only as far as the endpoint's 8192 allow.
        (json!({"reasoning": {"max_tokens": 8000}}), json!(4000)),
        (json!({"reasoning": {"enabled": true}}), json!(null)),
        (json!({"include_reasoning": true}), json!(null)),
        (json!({"reasoning": {"effort": "none"}}), json!(null)),
        (json!({"reasoning_effort": "none"}), json!(null)),
        (
            json!({"reasoning": {"enabled": false, "effort": "high"}}),
            json!(null),
        ),
        (json!({"reasoning": {"exclude": true}}), json!(null)),
        (json!({}), json!(null)),
    ] {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "Think."}],
            "max_tokens": max_tokens});
        for (k, v) in ask.as_object().unwrap() {
            request[k] = v.clone();
        }
        let body = upstream(request);
        table.push(json!({"ask": ask, "client_max_tokens": max_tokens,
            "max_tokens": body["max_tokens"], "thinking": body.get("thinking")}));
    }
    assert_json_snapshot!(table, @r#"
    [
      {
        "ask": {
          "reasoning": {
            "effort": "high"
          }
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": {
          "budget_tokens": 6553,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "effort": "medium"
          }
        },
        "client_max_tokens": 4000,
        "max_tokens": 4000,
        "thinking": {
          "budget_tokens": 2000,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "effort": "low"
          }
        },
        "client_max_tokens": 10000,
        "max_tokens": 10000,
        "thinking": {
          "budget_tokens": 2000,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "effort": "minimal"
          }
        },
        "client_max_tokens": 20000,
        "max_tokens": 20000,
        "thinking": {
          "budget_tokens": 2000,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "effort": "xhigh"
          }
        },
        "client_max_tokens": 2000,
        "max_tokens": 2000,
        "thinking": {
          "budget_tokens": 1900,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning_effort": "max"
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": {
          "budget_tokens": 7782,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "effort": "low"
          }
        },
        "client_max_tokens": 1000,
        "max_tokens": 2024,
        "thinking": {
          "budget_tokens": 1024,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "max_tokens": 3000
          }
        },
        "client_max_tokens": 6000,
        "max_tokens": 6000,
        "thinking": {
          "budget_tokens": 3000,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "max_tokens": 500
          }
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": {
          "budget_tokens": 1024,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "max_tokens": 5000
          }
        },
        "client_max_tokens": 2000,
        "max_tokens": 7000,
        "thinking": {
          "budget_tokens": 5000,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "max_tokens": 8000
          }
        },
        "client_max_tokens": 4000,
        "max_tokens": 8192,
        "thinking": {
          "budget_tokens": 8000,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "enabled": true
          }
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": {
          "budget_tokens": 4096,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "include_reasoning": true
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": {
          "budget_tokens": 4096,
          "type": "enabled"
        }
      },
      {
        "ask": {
          "reasoning": {
            "effort": "none"
          }
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": null
      },
      {
        "ask": {
          "reasoning_effort": "none"
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": null
      },
      {
        "ask": {
          "reasoning": {
            "effort": "high",
            "enabled": false
          }
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": null
      },
      {
        "ask": {
          "reasoning": {
            "exclude": true
          }
        },
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": null
      },
      {
        "ask": {},
        "client_max_tokens": null,
        "max_tokens": 8192,
        "thinking": null
      }
    ]
    "#);
}

#[test]
fn thinking_drops_what_anthropic_rejects_with_it() {
    let with = |extra: Value| {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "reasoning": {"max_tokens": 2000}, "max_tokens": 4000});
        for (k, v) in extra.as_object().unwrap() {
            request[k] = v.clone();
        }
        upstream(request)
    };
    let body = with(json!({"temperature": 0.3, "top_p": 0.5, "top_k": 5}));
    assert_json_snapshot!(body, @r#"
    {
      "max_tokens": 4000,
      "messages": [
        {
          "content": [
            {
              "text": "hi",
              "type": "text"
            }
          ],
          "role": "user"
        }
      ],
      "model": "claude-sonnet-4-5-20250929",
      "thinking": {
        "budget_tokens": 2000,
        "type": "enabled"
      }
    }
    "#);
    // Values Anthropic accepts while thinking pass.
    let body = with(json!({"temperature": 1.0}));
    assert_eq!(body["temperature"], json!(1.0));
    let body = with(json!({"top_p": 0.97}));
    assert_eq!(body["top_p"], json!(0.97));
    // A forced tool choice wins over reasoning.
    for choice in [
        json!("required"),
        json!({"type": "function", "function": {"name": "get_weather"}}),
    ] {
        let body =
            with(json!({"tools": [weather_tool()], "tool_choice": choice, "temperature": 0.3}));
        assert!(body.get("thinking").is_none(), "{body}");
        assert_eq!(body["temperature"], json!(0.3));
        assert_eq!(body["max_tokens"], json!(4000));
    }
    let body = with(json!({"tools": [weather_tool()], "tool_choice": "auto"}));
    assert_eq!(body["thinking"]["budget_tokens"], json!(2000));
    // Without thinking, temperature is clamped to Anthropic's range.
    let body = upstream(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "temperature": 1.7}),
    );
    assert_eq!(body["temperature"], json!(1.0));
    // Recent models take `temperature` or `top_p`, not both: `top_p` goes only on its own.
    let body = upstream(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "top_p": 0.5}),
    );
    assert_eq!(body["top_p"], json!(0.5));
}

#[test]
fn cache_control_passes_through() {
    let body = upstream(json!({
        "model": "m",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
        "messages": [
            {"role": "system", "content": "Rules.", "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": [
                {"type": "text", "text": "Big document", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
                {"type": "text", "text": "Question"}
            ]},
            {"role": "assistant", "content": "Answer", "cache_control": {"type": "ephemeral"}},
            {"role": "tool", "tool_call_id": "t1", "content": "result", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [{"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}]
    }));
    assert_json_snapshot!(body, @r#"
    {
      "cache_control": {
        "ttl": "1h",
        "type": "ephemeral"
      },
      "max_tokens": 8192,
      "messages": [
        {
          "content": [
            {
              "cache_control": {
                "ttl": "5m",
                "type": "ephemeral"
              },
              "text": "Big document",
              "type": "text"
            },
            {
              "text": "Question",
              "type": "text"
            }
          ],
          "role": "user"
        },
        {
          "content": [
            {
              "cache_control": {
                "type": "ephemeral"
              },
              "text": "Answer",
              "type": "text"
            }
          ],
          "role": "assistant"
        },
        {
          "content": [
            {
              "cache_control": {
                "type": "ephemeral"
              },
              "content": "result",
              "tool_use_id": "t1",
              "type": "tool_result"
            }
          ],
          "role": "user"
        }
      ],
      "model": "claude-sonnet-4-5-20250929",
      "system": [
        {
          "cache_control": {
            "type": "ephemeral"
          },
          "text": "Rules.",
          "type": "text"
        }
      ],
      "tools": [
        {
          "cache_control": {
            "type": "ephemeral"
          },
          "input_schema": {
            "properties": {},
            "type": "object"
          },
          "name": "f"
        }
      ]
    }
    "#);
}

// ---------------------------------------------------------------------------------------------
// Responses

fn plain_request() -> ChatRequest {
    req(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
}

#[test]
fn thinking_and_redacted_thinking_response() {
    let upstream = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": MODEL,
        "content": [
            {"type": "thinking", "thinking": "Let me add: 2 + 2 = 4.", "signature": "sig-AAA"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT"},
            {"type": "text", "text": "The answer "},
            {"type": "text", "text": "is 4."}
        ],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 40}
    });
    let bytes = serde_json::to_vec(&upstream).unwrap();
    let (body, outcome) = parse_response(&bytes, &plain_request()).unwrap();
    assert_eq!(generated_text_len(&body), "The answer is 4.".len() + 22);
    let usage = outcome.usage.unwrap();
    assert_json_snapshot!(json_of(&render_response(body, &SERVED, &usage, &cost())), @r#"
    {
      "choices": [
        {
          "finish_reason": "stop",
          "index": 0,
          "logprobs": null,
          "message": {
            "content": "The answer is 4.",
            "reasoning": "Let me add: 2 + 2 = 4.",
            "reasoning_details": [
              {
                "format": "anthropic-claude-v1",
                "index": 0,
                "signature": "sig-AAA",
                "text": "Let me add: 2 + 2 = 4.",
                "type": "reasoning.text"
              },
              {
                "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT",
                "format": "anthropic-claude-v1",
                "index": 1,
                "type": "reasoning.encrypted"
              }
            ],
            "role": "assistant"
          },
          "native_finish_reason": "end_turn"
        }
      ],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "anthropic/claude-sonnet-4.5",
      "object": "chat.completion",
      "provider": "Anthropic",
      "system_fingerprint": null,
      "usage": {
        "completion_tokens": 40,
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
        "prompt_tokens": 12,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 0
        },
        "total_tokens": 52
      }
    }
    "#);
    let excluded = req(
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "reasoning": {"effort": "low", "exclude": true}}),
    );
    let (body, _) = parse_response(&bytes, &excluded).unwrap();
    assert_json_snapshot!(body["choices"][0]["message"], @r#"
    {
      "content": "The answer is 4.",
      "role": "assistant"
    }
    "#);
}

#[test]
fn usage_with_cache_fields_is_charged_once() {
    let upstream = json!({
        "id": "msg_02", "type": "message", "role": "assistant", "model": MODEL,
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 100, "cache_creation_input_tokens": 500,
            "cache_read_input_tokens": 2000, "output_tokens": 50,
            "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 0},
            "server_tool_use": {"web_search_requests": 2}, "service_tier": "standard"}
    });
    let (_, outcome) =
        parse_response(&serde_json::to_vec(&upstream).unwrap(), &plain_request()).unwrap();
    let usage = outcome.usage.unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 2600,
            completion_tokens: 50,
            cached_tokens: 2000,
            cache_write_tokens: 500,
            web_searches: 2,
            ..Usage::default()
        }
    );
    let price = |s: &str| Price::parse_usd(s).unwrap();
    let pricing = Pricing {
        prompt: price("0.000003"),
        completion: price("0.000015"),
        input_cache_read: price("0.0000003"),
        input_cache_write: price("0.00000375"),
        ..Pricing::default()
    };
    let usage = Usage {
        web_searches: 0,
        ..usage
    };
    // 100 × 3000 + 2000 × 300 (cache reads, once, at their price) + 500 × 3750 nano; 50 × 15000 nano.
    let cost = crate::pricing::cost(&pricing, &usage);
    assert_eq!(cost.prompt.nanos(), 300_000 + 600_000 + 1_875_000);
    assert_eq!(cost.completion.nanos(), 750_000);
    assert_eq!(cost.total.nanos(), 3_525_000);
}

#[test]
fn every_stop_reason() {
    let mut table = Map::new();
    for native in [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "refusal",
        "pause_turn",
        "model_context_window_exceeded",
    ] {
        let upstream = json!({"id": "msg", "type": "message", "role": "assistant", "model": MODEL,
            "content": [], "stop_reason": native, "usage": {"input_tokens": 1, "output_tokens": 1}});
        let (body, outcome) =
            parse_response(&serde_json::to_vec(&upstream).unwrap(), &plain_request()).unwrap();
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
      "end_turn": [
        "stop",
        "end_turn"
      ],
      "max_tokens": [
        "length",
        "max_tokens"
      ],
      "model_context_window_exceeded": [
        "length",
        "model_context_window_exceeded"
      ],
      "pause_turn": [
        "stop",
        "pause_turn"
      ],
      "refusal": [
        "content_filter",
        "refusal"
      ],
      "stop_sequence": [
        "stop",
        "stop_sequence"
      ],
      "tool_use": [
        "tool_calls",
        "tool_use"
      ]
    }
    "#);
}

#[test]
fn invalid_upstream_bodies_are_502() {
    for body in [&b"{not json"[..], br#"{"id":"x"}"#, b"[]"] {
        let err = parse_response(body, &plain_request()).unwrap_err();
        assert_eq!(err.code.status(), 502);
    }
}

#[test]
fn every_error_type() {
    let mut table = Vec::new();
    for (status, kind, message) in [
        (400, "invalid_request_error", "max_tokens: Field required"),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
        ),
        (
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 197000 + 21333 > 200000",
        ),
        (401, "authentication_error", "invalid x-api-key"),
        (402, "billing_error", "Your credit balance is too low"),
        (
            403,
            "permission_error",
            "Your API key does not have permission",
        ),
        (404, "not_found_error", "model: claude-nope"),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes",
        ),
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit",
        ),
        (500, "api_error", "Internal server error"),
        (504, "timeout_error", "Request timed out"),
        (529, "overloaded_error", "Overloaded"),
    ] {
        let body = json!({"type": "error", "error": {"type": kind, "message": message},
            "request_id": "req_011"});
        let err = upstream_error(
            status,
            &serde_json::to_vec(&body).unwrap(),
            "Anthropic",
            Some(7),
        );
        assert_eq!(err.retry_after, Some(7));
        table.push(json!({
            "upstream": format!("{status} {kind}"),
            "status": err.code.status(),
            "message": err.message,
            "metadata": err.metadata,
        }));
    }
    assert_json_snapshot!(table, @r#"
    [
      {
        "message": "max_tokens: Field required",
        "metadata": {
          "error_type": "invalid_request",
          "provider_code": 400,
          "provider_name": "Anthropic",
          "raw": "max_tokens: Field required"
        },
        "status": 400,
        "upstream": "400 invalid_request_error"
      },
      {
        "message": "prompt is too long: 208310 tokens > 200000 maximum",
        "metadata": {
          "error_type": "context_length_exceeded",
          "provider_code": 400,
          "provider_name": "Anthropic",
          "raw": "prompt is too long: 208310 tokens > 200000 maximum"
        },
        "status": 400,
        "upstream": "400 invalid_request_error"
      },
      {
        "message": "input length and `max_tokens` exceed context limit: 197000 + 21333 > 200000",
        "metadata": {
          "error_type": "context_length_exceeded",
          "provider_code": 400,
          "provider_name": "Anthropic",
          "raw": "input length and `max_tokens` exceed context limit: 197000 + 21333 > 200000"
        },
        "status": 400,
        "upstream": "400 invalid_request_error"
      },
      {
        "message": "Provider returned error",
        "metadata": {
          "error_type": "provider_unavailable",
          "provider_code": 401,
          "provider_name": "Anthropic",
          "raw": "invalid x-api-key"
        },
        "status": 502,
        "upstream": "401 authentication_error"
      },
      {
        "message": "Provider returned error",
        "metadata": {
          "error_type": "provider_unavailable",
          "provider_code": 402,
          "provider_name": "Anthropic",
          "raw": "Your credit balance is too low"
        },
        "status": 502,
        "upstream": "402 billing_error"
      },
      {
        "message": "Provider returned error",
        "metadata": {
          "error_type": "provider_unavailable",
          "provider_code": 403,
          "provider_name": "Anthropic",
          "raw": "Your API key does not have permission"
        },
        "status": 502,
        "upstream": "403 permission_error"
      },
      {
        "message": "model: claude-nope",
        "metadata": {
          "error_type": "invalid_request",
          "provider_code": 404,
          "provider_name": "Anthropic",
          "raw": "model: claude-nope"
        },
        "status": 400,
        "upstream": "404 not_found_error"
      },
      {
        "message": "Provider rejected the request as too large",
        "metadata": {
          "error_type": "payload_too_large",
          "provider_code": 413,
          "provider_name": "Anthropic",
          "raw": "Request exceeds the maximum allowed number of bytes"
        },
        "status": 413,
        "upstream": "413 request_too_large"
      },
      {
        "message": "Anthropic is rate limited upstream; retry shortly",
        "metadata": {
          "error_type": "rate_limit_exceeded",
          "provider_code": 429,
          "provider_name": "Anthropic",
          "raw": "Number of request tokens has exceeded your rate limit"
        },
        "status": 429,
        "upstream": "429 rate_limit_error"
      },
      {
        "message": "Provider returned error",
        "metadata": {
          "error_type": "provider_unavailable",
          "provider_code": 500,
          "provider_name": "Anthropic",
          "raw": "Internal server error"
        },
        "status": 502,
        "upstream": "500 api_error"
      },
      {
        "message": "Provider timed out",
        "metadata": {
          "error_type": "timeout",
          "provider_code": 504,
          "provider_name": "Anthropic",
          "raw": "Request timed out"
        },
        "status": 504,
        "upstream": "504 timeout_error"
      },
      {
        "message": "Anthropic is overloaded",
        "metadata": {
          "error_type": "provider_overloaded",
          "provider_code": 529,
          "provider_name": "Anthropic",
          "raw": "Overloaded"
        },
        "status": 503,
        "upstream": "529 overloaded_error"
      }
    ]
    "#);
    // A body that is not Anthropic's error JSON still maps by status.
    let err = upstream_error(502, b"<html>Bad gateway</html>", "Anthropic", None);
    assert_eq!(err.code, ErrorCode::UpstreamError);
    assert_eq!(err.metadata.unwrap()["raw"], "<html>Bad gateway</html>");
}

// ---------------------------------------------------------------------------------------------
// Streams

#[test]
fn text_stream_frames() {
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
            "content": [], "model": MODEL, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 15}}),
        json!({"type": "message_stop"}),
    ];
    let mut t2 = StreamTranslator::new(&SERVED, &plain_request());
    let first = t2.on_data(&events[0].to_string()).unwrap();
    assert!(!t2.content_sent(), "the role chunk is not content");
    let StreamStep::Frame(first) = first else {
        panic!("expected the role chunk")
    };
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
      "model": "anthropic/claude-sonnet-4.5",
      "object": "chat.completion.chunk",
      "provider": "Anthropic"
    }
    "#);

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
        "native_finish_reason": "end_turn"
      }
    ]
    "#);
    assert_eq!(t.generated_bytes(), 6);
    let outcome = t.outcome().clone();
    assert_eq!(outcome.upstream_id.as_deref(), Some("msg_01"));
    assert_eq!(outcome.finish_reason.as_deref(), Some("stop"));
    // message_start's output count is an interim value; message_delta's is the total.
    let usage = outcome.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (25, 15));
    let tail = frame_json(&t.usage_frame(&usage, &cost(), Some(json!({"attempt": 1}))));
    assert_eq!(tail["choices"], json!([]));
    assert_eq!(tail["usage"]["prompt_tokens"], 25);
    assert_eq!(tail["usage"]["cost"], json!(3e-6));
    assert_eq!(tail["openrouter_metadata"]["attempt"], 1);
    assert_eq!(
        (&tail["id"], &tail["object"], &tail["provider"]),
        (
            &json!("gen-1-abc"),
            &json!("chat.completion.chunk"),
            &json!("Anthropic")
        )
    );
}

#[test]
fn stream_usage_takes_latest_values_including_cache() {
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    run_stream(
        &mut t,
        &[
            json!({"type": "message_start", "message": {"id": "msg_03", "content": [],
                "usage": {"input_tokens": 10, "cache_creation_input_tokens": 300,
                    "cache_read_input_tokens": 1200, "output_tokens": 1}}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                "usage": {"output_tokens": 64}}),
            // A later, fuller report (newer API versions repeat the input side): replaces, never adds.
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                "usage": {"input_tokens": 10, "cache_creation_input_tokens": 300,
                    "cache_read_input_tokens": 1200, "output_tokens": 70}}),
            json!({"type": "message_stop"}),
        ],
    );
    let outcome = t.outcome();
    assert_eq!(
        outcome.usage,
        Some(Usage {
            prompt_tokens: 1510,
            completion_tokens: 70,
            cached_tokens: 1200,
            cache_write_tokens: 300,
            ..Usage::default()
        })
    );
    assert_eq!(outcome.finish_reason.as_deref(), Some("length"));
    assert_eq!(outcome.native_finish_reason.as_deref(), Some("max_tokens"));
}

#[test]
fn stream_error_event_and_error_frame() {
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    assert_eq!(t.on_data("{oops").unwrap_err().code.status(), 502);
    let err = t
        .on_data(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamOverloaded);
    assert_json_snapshot!(frame_json(&t.error_frame(&err)), @r#"
    {
      "choices": [
        {
          "delta": {
            "content": ""
          },
          "finish_reason": "error",
          "index": 0,
          "native_finish_reason": null
        }
      ],
      "created": 1700000000,
      "error": {
        "code": 503,
        "message": "Anthropic is overloaded",
        "metadata": {
          "error_type": "provider_overloaded",
          "provider_code": 529,
          "provider_name": "Anthropic",
          "raw": "Overloaded"
        }
      },
      "id": "gen-1-abc",
      "model": "anthropic/claude-sonnet-4.5",
      "object": "chat.completion.chunk",
      "provider": "Anthropic"
    }
    "#);
    let err = t
        .on_data(
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamError);
}

#[test]
fn stream_tool_without_input_still_has_json_arguments() {
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let frames = run_stream(
        &mut t,
        &[
            json!({"type": "message_start", "message": {"id": "msg_04", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_N", "name": "now", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ],
    );
    let message = reassemble(&frames);
    assert_eq!(message["tool_calls"][0]["function"]["arguments"], "{}");
    assert_eq!(
        frames.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

// ---------------------------------------------------------------------------------------------
// A whole conversation: thinking and two parallel tool calls, their results, and the next turn.

const SIGNATURE: &str =
    "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+BnoGkkCn1jPgvxnXVsyjxhOSMGfMBXz";

fn turn1_request() -> Value {
    json!({
        "model": "anthropic/claude-sonnet-4.5",
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": "Weather in Paris and London?"}
        ],
        "tools": [weather_tool()],
        "reasoning": {"max_tokens": 2048},
        "max_tokens": 4096
    })
}

fn turn1_message() -> Value {
    json!({
        "id": "msg_01Turn1", "type": "message", "role": "assistant", "model": MODEL,
        "content": [
            {"type": "thinking", "thinking": "The user wants two cities. I'll call get_weather for both.",
             "signature": SIGNATURE},
            {"type": "text", "text": "Checking both cities."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris", "unit": "c"}},
            {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "London", "unit": "c"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 189}
    })
}

/// The same turn as Anthropic streams it.
fn turn1_events() -> Vec<Value> {
    let delta = |index: u64, delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
    vec![
        json!({"type": "message_start", "message": {"id": "msg_01Turn1", "type": "message", "role": "assistant",
            "content": [], "model": MODEL, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 472, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 3}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        json!({"type": "ping"}),
        delta(
            0,
            json!({"type": "thinking_delta", "thinking": "The user wants two cities."}),
        ),
        delta(
            0,
            json!({"type": "thinking_delta", "thinking": " I'll call get_weather for both."}),
        ),
        delta(
            0,
            json!({"type": "signature_delta", "signature": SIGNATURE}),
        ),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        delta(
            1,
            json!({"type": "text_delta", "text": "Checking both cities."}),
        ),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}}),
        delta(2, json!({"type": "input_json_delta", "partial_json": ""})),
        delta(
            2,
            json!({"type": "input_json_delta", "partial_json": "{\"city\": \"Par"}),
        ),
        delta(
            2,
            json!({"type": "input_json_delta", "partial_json": "is\", \"unit\": \"c\"}"}),
        ),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {}}}),
        delta(
            3,
            json!({"type": "input_json_delta", "partial_json": "{\"city\":"}),
        ),
        delta(
            3,
            json!({"type": "input_json_delta", "partial_json": " \"London\", \"unit\": \"c\"}"}),
        ),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"output_tokens": 189}}),
        json!({"type": "message_stop"}),
    ]
}

#[test]
fn turn1_request_asks_for_thinking_with_tools() {
    assert_json_snapshot!(upstream(turn1_request()), @r#"
    {
      "max_tokens": 4096,
      "messages": [
        {
          "content": [
            {
              "text": "Weather in Paris and London?",
              "type": "text"
            }
          ],
          "role": "user"
        }
      ],
      "model": "claude-sonnet-4-5-20250929",
      "system": [
        {
          "text": "You are a weather assistant.",
          "type": "text"
        }
      ],
      "thinking": {
        "budget_tokens": 2048,
        "type": "enabled"
      },
      "tools": [
        {
          "description": "Current weather of a city",
          "input_schema": {
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
          },
          "name": "get_weather"
        }
      ]
    }
    "#);
}

#[test]
fn turn1_response_with_thinking_and_parallel_tool_calls() {
    let request = req(turn1_request());
    let bytes = serde_json::to_vec(&turn1_message()).unwrap();
    let (body, outcome) = parse_response(&bytes, &request).unwrap();
    assert_eq!(outcome.finish_reason.as_deref(), Some("tool_calls"));
    let usage = outcome.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (472, 189));
    assert_json_snapshot!(json_of(&render_response(body, &SERVED, &usage, &cost())), @r#"
    {
      "choices": [
        {
          "finish_reason": "tool_calls",
          "index": 0,
          "logprobs": null,
          "message": {
            "content": "Checking both cities.",
            "reasoning": "The user wants two cities. I'll call get_weather for both.",
            "reasoning_details": [
              {
                "format": "anthropic-claude-v1",
                "index": 0,
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+BnoGkkCn1jPgvxnXVsyjxhOSMGfMBXz",
                "text": "The user wants two cities. I'll call get_weather for both.",
                "type": "reasoning.text"
              }
            ],
            "role": "assistant",
            "tool_calls": [
              {
                "function": {
                  "arguments": "{\"city\":\"Paris\",\"unit\":\"c\"}",
                  "name": "get_weather"
                },
                "id": "toolu_01A",
                "type": "function"
              },
              {
                "function": {
                  "arguments": "{\"city\":\"London\",\"unit\":\"c\"}",
                  "name": "get_weather"
                },
                "id": "toolu_01B",
                "type": "function"
              }
            ]
          },
          "native_finish_reason": "tool_use"
        }
      ],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "anthropic/claude-sonnet-4.5",
      "object": "chat.completion",
      "provider": "Anthropic",
      "system_fingerprint": null,
      "usage": {
        "completion_tokens": 189,
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
        "prompt_tokens": 472,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 0
        },
        "total_tokens": 661
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
          "reasoning": "The user wants two cities.",
          "reasoning_details": [
            {
              "format": "anthropic-claude-v1",
              "index": 0,
              "text": "The user wants two cities.",
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
          "reasoning": " I'll call get_weather for both.",
          "reasoning_details": [
            {
              "format": "anthropic-claude-v1",
              "index": 0,
              "text": " I'll call get_weather for both.",
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
          "reasoning_details": [
            {
              "format": "anthropic-claude-v1",
              "index": 0,
              "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+BnoGkkCn1jPgvxnXVsyjxhOSMGfMBXz",
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
          "content": "Checking both cities."
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
              "id": "toolu_01A",
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
                "arguments": "{\"city\": \"Par"
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
                "arguments": "is\", \"unit\": \"c\"}"
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
              "id": "toolu_01B",
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
                "arguments": "{\"city\":"
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
                "arguments": " \"London\", \"unit\": \"c\"}"
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
        "native_finish_reason": "tool_use"
      }
    ]
    "#);

    // Parallel calls are numbered 0 and 1, not by content block (2 and 3).
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
    for call in streamed["tool_calls"].as_array().unwrap() {
        let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap())
            .expect("arguments reassemble into valid JSON");
        assert!(args["city"].is_string());
    }
    let (body, outcome) =
        parse_response(&serde_json::to_vec(&turn1_message()).unwrap(), &request).unwrap();
    assert_eq!(
        with_parsed_arguments(streamed),
        with_parsed_arguments(body["choices"][0]["message"].clone())
    );
    assert_eq!(t.outcome(), &outcome);
    assert!(t.content_sent());
}

#[test]
fn stream_with_reasoning_excluded_sends_no_reasoning() {
    let mut request = turn1_request();
    request["reasoning"]["exclude"] = json!(true);
    let mut t = StreamTranslator::new(&SERVED, &req(request));
    let events = turn1_events();
    // Thinking alone is not content the client has received.
    run_stream(&mut t, &events[..7]);
    assert!(!t.content_sent());
    assert!(t.generated_bytes() > 0);
    let mut t = StreamTranslator::new(&SERVED, &req(turn1_request()));
    let with = run_stream(&mut t, &events);
    let mut request = turn1_request();
    request["reasoning"]["exclude"] = json!(true);
    let mut t = StreamTranslator::new(&SERVED, &req(request));
    let without = run_stream(&mut t, &events);
    assert_eq!(with.len() - without.len(), 3);
    let message = reassemble(&without);
    assert!(message.get("reasoning").is_none() && message.get("reasoning_details").is_none());
    assert_eq!(message["tool_calls"].as_array().unwrap().len(), 2);
}

fn turn2_request(assistant: Value) -> Value {
    let mut request = turn1_request();
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(assistant);
    messages.push(json!({"role": "tool", "tool_call_id": "toolu_01A", "content": "{\"temp\": 18, \"sky\": \"sunny\"}"}));
    messages.push(json!({"role": "tool", "tool_call_id": "toolu_01B", "content": "{\"temp\": 12, \"sky\": \"rain\"}"}));
    request
}

#[test]
fn turn2_request_passes_the_thinking_back_first() {
    let request = req(turn1_request());
    let (body, _) =
        parse_response(&serde_json::to_vec(&turn1_message()).unwrap(), &request).unwrap();
    let assistant = body["choices"][0]["message"].clone();
    let turn2 = upstream(turn2_request(assistant.clone()));
    assert_json_snapshot!(turn2["messages"], @r#"
    [
      {
        "content": [
          {
            "text": "Weather in Paris and London?",
            "type": "text"
          }
        ],
        "role": "user"
      },
      {
        "content": [
          {
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+BnoGkkCn1jPgvxnXVsyjxhOSMGfMBXz",
            "thinking": "The user wants two cities. I'll call get_weather for both.",
            "type": "thinking"
          },
          {
            "text": "Checking both cities.",
            "type": "text"
          },
          {
            "id": "toolu_01A",
            "input": {
              "city": "Paris",
              "unit": "c"
            },
            "name": "get_weather",
            "type": "tool_use"
          },
          {
            "id": "toolu_01B",
            "input": {
              "city": "London",
              "unit": "c"
            },
            "name": "get_weather",
            "type": "tool_use"
          }
        ],
        "role": "assistant"
      },
      {
        "content": [
          {
            "content": "{\"temp\": 18, \"sky\": \"sunny\"}",
            "tool_use_id": "toolu_01A",
            "type": "tool_result"
          },
          {
            "content": "{\"temp\": 12, \"sky\": \"rain\"}",
            "tool_use_id": "toolu_01B",
            "type": "tool_result"
          }
        ],
        "role": "user"
      }
    ]
    "#);
    let turn = &turn2["messages"][1]["content"];
    assert_eq!(turn[0]["type"], "thinking");
    assert_eq!(turn[0]["signature"], SIGNATURE);

    // What a client that kept the streamed deltas' `reasoning_details` unmerged sends back.
    let mut t = StreamTranslator::new(&SERVED, &request);
    let frames = run_stream(&mut t, &turn1_events());
    let fragments: Vec<Value> = frames
        .iter()
        .flat_map(|f| {
            f["choices"][0]["delta"]["reasoning_details"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(fragments.len(), 3);
    let mut unmerged = assistant;
    unmerged["reasoning_details"] = json!(fragments);
    assert_eq!(upstream(turn2_request(unmerged)), turn2);

    // Another provider's reasoning, and thinking without a signature, cannot be verified: left out.
    let mut foreign = body["choices"][0]["message"].clone();
    foreign["reasoning_details"] = json!([
        {"type": "reasoning.encrypted", "data": "gAAAA", "format": "openai-responses-v1"},
        {"type": "reasoning.text", "text": "unsigned", "format": "anthropic-claude-v1"},
        {"type": "reasoning.summary", "summary": "sum", "format": "anthropic-claude-v1"}
    ]);
    let body = upstream(turn2_request(foreign));
    assert_eq!(body["messages"][1]["content"][0]["type"], "text");
}

#[test]
fn redacted_thinking_round_trips() {
    let request = plain_request();
    let mut t = StreamTranslator::new(&SERVED, &request);
    let frames = run_stream(
        &mut t,
        &[
            json!({"type": "message_start", "message": {"id": "msg_05", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "thinking_delta", "thinking": "Visible."}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "signature_delta", "signature": "sig-B"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Done."}}),
            json!({"type": "content_block_stop", "index": 2}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 30}}),
            json!({"type": "message_stop"}),
        ],
    );
    let message = reassemble(&frames);
    assert_json_snapshot!(message, @r#"
    {
      "content": "Done.",
      "reasoning": "Visible.",
      "reasoning_details": [
        {
          "data": "EmwKAhgBEgy3va3pzix",
          "format": "anthropic-claude-v1",
          "index": 0,
          "type": "reasoning.encrypted"
        },
        {
          "format": "anthropic-claude-v1",
          "index": 1,
          "signature": "sig-B",
          "text": "Visible.",
          "type": "reasoning.text"
        }
      ],
      "role": "assistant"
    }
    "#);
    let body = upstream(json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"}, message, {"role": "user", "content": "again"}]}));
    assert_json_snapshot!(body["messages"][1], @r#"
    {
      "content": [
        {
          "data": "EmwKAhgBEgy3va3pzix",
          "type": "redacted_thinking"
        },
        {
          "signature": "sig-B",
          "thinking": "Visible.",
          "type": "thinking"
        },
        {
          "text": "Done.",
          "type": "text"
        }
      ],
      "role": "assistant"
    }
    "#);
}

#[test]
fn finish_reasons_of_openai_upstreams_are_unchanged() {
    for (native, normalised) in [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("error", "error"),
        ("eos", "stop"),
    ] {
        assert_eq!(finish_reason(native), normalised, "{native}");
    }
}
