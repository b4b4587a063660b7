//! Golden tests of the Messages API translation: requests in, messages and stream events out.

use super::*;
use crate::error::ErrorCode;
use insta::{assert_json_snapshot, assert_snapshot};
use std::collections::HashMap;

fn chat(body: Value) -> Value {
    let bytes = to_chat_request(body.to_string().as_bytes()).unwrap();
    let out: Value = serde_json::from_slice(&bytes).unwrap();
    // Whatever we produce must pass the chat pipeline's own validation.
    ChatRequest::parse(&bytes).unwrap();
    out
}

fn rejected(body: Value) -> String {
    let err = to_chat_request(body.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.code.status(), 400, "{}", err.message);
    err.message.into_owned()
}

fn message(body: Value) -> Value {
    serde_json::from_slice(&from_chat_response(body.to_string().as_bytes()).unwrap()).unwrap()
}

/// Splits Anthropic SSE bytes into event payloads, checking each frame's shape and event name.
fn events(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "incomplete frame: {text:?}"
    );
    text.split_terminator("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], event);
            data
        })
        .collect()
}

/// Anthropic's ordering rules: one `message_start` first, blocks opened in index order one at a
/// time, deltas only into the open block, one `message_delta`, nothing after the end.
fn check_order(events: &[Value]) {
    let (mut started, mut ended, mut delta_seen) = (false, false, false);
    let mut open: Option<u64> = None;
    let mut next = 0;
    for e in events {
        assert!(!ended, "event after the end: {e}");
        match e["type"].as_str().unwrap() {
            "message_start" => {
                assert!(!started);
                started = true;
            }
            "content_block_start" => {
                assert!(started && open.is_none(), "{e}");
                assert_eq!(e["index"], next);
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => assert!(open.is_some() && e["index"].as_u64() == open, "{e}"),
            "content_block_stop" => {
                assert!(open.is_some() && e["index"].as_u64() == open, "{e}");
                open = None;
            }
            "message_delta" => {
                assert!(started && open.is_none() && !delta_seen, "{e}");
                delta_seen = true;
            }
            "message_stop" => {
                assert!(delta_seen);
                ended = true;
            }
            "error" => {
                assert!(open.is_none());
                ended = true;
            }
            "ping" => {}
            other => panic!("unknown event {other}"),
        }
    }
}

/// Builds the final message from events the way Anthropic's SDKs do.
fn accumulate(events: &[Value]) -> Value {
    let mut message = Value::Null;
    let mut partial: HashMap<usize, String> = HashMap::new();
    for e in events {
        match e["type"].as_str().unwrap() {
            "message_start" => message = e["message"].clone(),
            "content_block_start" => message["content"]
                .as_array_mut()
                .unwrap()
                .push(e["content_block"].clone()),
            "content_block_delta" => {
                let i = e["index"].as_u64().unwrap() as usize;
                let block = &mut message["content"][i];
                let d = &e["delta"];
                let append = |block: &mut Value, key: &str, piece: &Value| {
                    let text = format!(
                        "{}{}",
                        block[key].as_str().unwrap(),
                        piece.as_str().unwrap()
                    );
                    block[key] = json!(text);
                };
                match d["type"].as_str().unwrap() {
                    "text_delta" => append(block, "text", &d["text"]),
                    "thinking_delta" => append(block, "thinking", &d["thinking"]),
                    "signature_delta" => block["signature"] = d["signature"].clone(),
                    "input_json_delta" => partial
                        .entry(i)
                        .or_default()
                        .push_str(d["partial_json"].as_str().unwrap()),
                    other => panic!("unknown delta {other}"),
                }
            }
            "content_block_stop" => {
                let i = e["index"].as_u64().unwrap() as usize;
                if let Some(json) = partial.remove(&i) {
                    message["content"][i]["input"] = serde_json::from_str(&json)
                        .unwrap_or_else(|err| panic!("block {i}: {json:?} is not JSON: {err}"));
                }
            }
            "message_delta" => {
                message["stop_reason"] = e["delta"]["stop_reason"].clone();
                for (k, v) in e["usage"].as_object().unwrap() {
                    if !v.is_null() {
                        message["usage"][k] = v.clone();
                    }
                }
            }
            _ => {}
        }
    }
    message
}

/// Feeds chunks (and `[DONE]`) through a writer; returns the events, checked for order.
fn stream(chunks: &[String]) -> (Vec<Value>, EventWriter) {
    let mut writer = EventWriter::new();
    let mut bytes = Vec::new();
    for chunk in chunks {
        bytes.extend(writer.on_data(chunk));
    }
    bytes.extend(writer.finish());
    let events = events(&bytes);
    check_order(&events);
    (events, writer)
}

/// One event per line, for compact snapshots.
fn lines(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn chunk(delta: Value) -> String {
    json!({"id": "gen-1-abc", "object": "chat.completion.chunk", "created": 1,
        "model": "anthropic/claude-sonnet-4", "provider": "Anthropic",
        "choices": [{"index": 0, "delta": delta, "finish_reason": null, "native_finish_reason": null}]})
    .to_string()
}

fn finish_chunk(finish: &str, native: &str) -> String {
    json!({"id": "gen-1-abc", "object": "chat.completion.chunk", "created": 1,
        "model": "anthropic/claude-sonnet-4", "provider": "Anthropic",
        "choices": [{"index": 0, "delta": {}, "finish_reason": finish, "native_finish_reason": native}]})
    .to_string()
}

fn usage_chunk() -> String {
    json!({"id": "gen-1-abc", "object": "chat.completion.chunk", "created": 1,
        "model": "anthropic/claude-sonnet-4", "provider": "Anthropic", "choices": [],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 12},
            "cost": 0.00042, "is_byok": false,
            "cost_details": {"upstream_inference_cost": null,
                "upstream_inference_prompt_cost": 0.0002, "upstream_inference_completions_cost": 0.00022}}})
    .to_string()
}

fn done() -> String {
    "[DONE]".to_owned()
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

#[test]
fn request_scalars_and_system_string() {
    assert_json_snapshot!(chat(json!({
        "model": "anthropic/claude-sonnet-4",
        "max_tokens": 1024,
        "system": "Be terse.",
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0.5, "top_p": 0.9, "top_k": 40,
        "stop_sequences": ["\n\nHuman:"],
        "stream": true,
        "metadata": {"user_id": "u-42"},
        "service_tier": "standard_only",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
        "speed": "fast",
        "context_management": {"edits": []},
        "some_future_field": true,
    })), @r#"
    {
      "cache_control": {
        "ttl": "1h",
        "type": "ephemeral"
      },
      "max_tokens": 1024,
      "messages": [
        {
          "content": "Be terse.",
          "role": "system"
        },
        {
          "content": "Hi",
          "role": "user"
        }
      ],
      "model": "anthropic/claude-sonnet-4",
      "service_tier": "default",
      "stop": [
        "\n\nHuman:"
      ],
      "stream": true,
      "temperature": 0.5,
      "top_k": 40,
      "top_p": 0.9,
      "user": "u-42"
    }
    "#);
}

#[test]
fn request_system_and_text_blocks_keep_cache_control() {
    assert_json_snapshot!(chat(json!({
        "model": "anthropic/claude-sonnet-4",
        "system": [
            {"type": "text", "text": "You are a librarian."},
            {"type": "text", "text": "<catalog>…</catalog>", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Find the book.", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
            ]},
            {"role": "assistant", "content": [{"type": "text", "text": "Which one?"}]},
            {"role": "user", "content": "Dune"},
        ],
    })), @r#"
    {
      "messages": [
        {
          "content": [
            {
              "text": "You are a librarian.",
              "type": "text"
            },
            {
              "cache_control": {
                "type": "ephemeral"
              },
              "text": "<catalog>…</catalog>",
              "type": "text"
            }
          ],
          "role": "system"
        },
        {
          "content": [
            {
              "cache_control": {
                "ttl": "5m",
                "type": "ephemeral"
              },
              "text": "Find the book.",
              "type": "text"
            }
          ],
          "role": "user"
        },
        {
          "content": "Which one?",
          "role": "assistant"
        },
        {
          "content": "Dune",
          "role": "user"
        }
      ],
      "model": "anthropic/claude-sonnet-4"
    }
    "#);
}

#[test]
fn request_images_and_documents() {
    assert_json_snapshot!(chat(json!({
        "model": "anthropic/claude-sonnet-4",
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "title": "report.pdf",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
                "cache_control": {"type": "ephemeral"}},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
            {"type": "document", "source": {"type": "content", "content": [
                {"type": "text", "text": "Chunk one."},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/fig.png"}},
            ]}},
            {"type": "text", "text": "Summarise all of these."},
        ]}],
    })), @r#"
    {
      "messages": [
        {
          "content": [
            {
              "image_url": {
                "url": "data:image/png;base64,iVBORw0KGgo="
              },
              "type": "image_url"
            },
            {
              "image_url": {
                "url": "https://example.com/cat.jpg"
              },
              "type": "image_url"
            },
            {
              "cache_control": {
                "type": "ephemeral"
              },
              "file": {
                "file_data": "data:application/pdf;base64,JVBERi0x",
                "filename": "report.pdf"
              },
              "type": "file"
            },
            {
              "file": {
                "file_data": "https://example.com/paper.pdf",
                "filename": "document.pdf"
              },
              "type": "file"
            },
            {
              "text": "Plain notes.",
              "type": "text"
            },
            {
              "text": "Chunk one.",
              "type": "text"
            },
            {
              "image_url": {
                "url": "https://example.com/fig.png"
              },
              "type": "image_url"
            },
            {
              "text": "Summarise all of these.",
              "type": "text"
            }
          ],
          "role": "user"
        }
      ],
      "model": "anthropic/claude-sonnet-4"
    }
    "#);
}

#[test]
fn request_tool_results_become_tool_messages_before_the_rest_of_the_turn() {
    assert_json_snapshot!(chat(json!({
        "model": "anthropic/claude-sonnet-4",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
                {"type": "tool_use", "id": "toolu_3", "name": "radar", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                    "content": [{"type": "text", "text": "station offline"}]},
                {"type": "tool_result", "tool_use_id": "toolu_3", "content": [
                    {"type": "text", "text": "radar image:"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                ]},
                {"type": "text", "text": "Also, should I take an umbrella?"},
            ]},
        ],
    })), @r#"
    {
      "messages": [
        {
          "content": "Weather in Paris and Rome?",
          "role": "user"
        },
        {
          "content": null,
          "role": "assistant",
          "tool_calls": [
            {
              "function": {
                "arguments": "{\"city\":\"Paris\"}",
                "name": "weather"
              },
              "id": "toolu_1",
              "type": "function"
            },
            {
              "function": {
                "arguments": "{\"city\":\"Rome\"}",
                "name": "weather"
              },
              "id": "toolu_2",
              "type": "function"
            },
            {
              "function": {
                "arguments": "{}",
                "name": "radar"
              },
              "id": "toolu_3",
              "type": "function"
            }
          ]
        },
        {
          "content": "18°C",
          "role": "tool",
          "tool_call_id": "toolu_1"
        },
        {
          "content": "Error: station offline",
          "role": "tool",
          "tool_call_id": "toolu_2"
        },
        {
          "content": [
            {
              "text": "radar image:",
              "type": "text"
            },
            {
              "image_url": {
                "url": "data:image/png;base64,AAAA"
              },
              "type": "image_url"
            }
          ],
          "role": "tool",
          "tool_call_id": "toolu_3"
        },
        {
          "content": [
            {
              "text": "Also, should I take an umbrella?",
              "type": "text"
            }
          ],
          "role": "user"
        }
      ],
      "model": "anthropic/claude-sonnet-4"
    }
    "#);
}

#[test]
fn request_tool_result_edge_cases() {
    let out = chat(json!({
        "model": "m/x",
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "a"},
            {"type": "tool_result", "tool_use_id": "b", "is_error": true},
            {"type": "tool_result", "tool_use_id": "c", "content": [
                {"type": "text", "text": "line 1"}, {"type": "text", "text": "line 2"}]},
            {"type": "tool_result", "tool_use_id": "d", "content": "cached",
                "cache_control": {"type": "ephemeral"}},
        ]}],
    }));
    assert_json_snapshot!(out["messages"], @r#"
    [
      {
        "content": "",
        "role": "tool",
        "tool_call_id": "a"
      },
      {
        "content": "Error",
        "role": "tool",
        "tool_call_id": "b"
      },
      {
        "content": "line 1\nline 2",
        "role": "tool",
        "tool_call_id": "c"
      },
      {
        "content": [
          {
            "cache_control": {
              "type": "ephemeral"
            },
            "text": "cached",
            "type": "text"
          }
        ],
        "role": "tool",
        "tool_call_id": "d"
      }
    ]
    "#);
}

#[test]
fn request_assistant_thinking_tools_and_text() {
    assert_json_snapshot!(chat(json!({
        "model": "anthropic/claude-sonnet-4",
        "messages": [
            {"role": "user", "content": "What is 2+2? Use the calculator."},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Simple sum.", "signature": "EqQBCgIYAhIM"},
                {"type": "redacted_thinking", "data": "cmVkYWN0ZWQ="},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_9", "name": "calc", "input": {"expr": "2+2"}},
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "4"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "It is "},
                {"type": "text", "text": "4.", "cache_control": {"type": "ephemeral"}},
            ]},
            {"role": "user", "content": "Thanks"},
        ],
    }))["messages"], @r#"
    [
      {
        "content": "What is 2+2? Use the calculator.",
        "role": "user"
      },
      {
        "content": "Let me check.",
        "reasoning": "Simple sum.",
        "reasoning_details": [
          {
            "format": "anthropic-claude-v1",
            "index": 0,
            "signature": "EqQBCgIYAhIM",
            "text": "Simple sum.",
            "type": "reasoning.text"
          },
          {
            "data": "cmVkYWN0ZWQ=",
            "format": "anthropic-claude-v1",
            "index": 1,
            "type": "reasoning.encrypted"
          }
        ],
        "role": "assistant",
        "tool_calls": [
          {
            "function": {
              "arguments": "{\"expr\":\"2+2\"}",
              "name": "calc"
            },
            "id": "toolu_9",
            "type": "function"
          }
        ]
      },
      {
        "content": "4",
        "role": "tool",
        "tool_call_id": "toolu_9"
      },
      {
        "content": [
          {
            "text": "It is ",
            "type": "text"
          },
          {
            "cache_control": {
              "type": "ephemeral"
            },
            "text": "4.",
            "type": "text"
          }
        ],
        "role": "assistant"
      },
      {
        "content": "Thanks",
        "role": "user"
      }
    ]
    "#);
}

#[test]
fn request_tools_and_tool_choice() {
    assert_json_snapshot!(chat(json!({
        "model": "anthropic/claude-sonnet-4",
        "messages": [{"role": "user", "content": "Go"}],
        "tools": [
            {"name": "weather", "description": "Current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                "cache_control": {"type": "ephemeral"}},
            {"type": "custom", "name": "noop", "input_schema": {"type": "object"}, "strict": true},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3,
                "allowed_domains": ["example.com"], "blocked_domains": ["spam.com"],
                "user_location": {"type": "approximate", "city": "Paris"}},
            {"type": "web_fetch_20250910", "name": "web_fetch", "max_content_tokens": 5000},
            {"type": "openrouter:datetime", "parameters": {"timezone": "UTC"}},
        ],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": true},
    })), @r#"
    {
      "messages": [
        {
          "content": "Go",
          "role": "user"
        }
      ],
      "model": "anthropic/claude-sonnet-4",
      "parallel_tool_calls": false,
      "tool_choice": {
        "function": {
          "name": "weather"
        },
        "type": "function"
      },
      "tools": [
        {
          "function": {
            "description": "Current weather",
            "name": "weather",
            "parameters": {
              "properties": {
                "city": {
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
            "name": "noop",
            "parameters": {
              "type": "object"
            },
            "strict": true
          },
          "type": "function"
        },
        {
          "parameters": {
            "allowed_domains": [
              "example.com"
            ],
            "excluded_domains": [
              "spam.com"
            ],
            "max_uses": 3,
            "user_location": {
              "city": "Paris",
              "type": "approximate"
            }
          },
          "type": "openrouter:web_search"
        },
        {
          "parameters": {
            "max_content_tokens": 5000
          },
          "type": "openrouter:web_fetch"
        },
        {
          "parameters": {
            "timezone": "UTC"
          },
          "type": "openrouter:datetime"
        }
      ]
    }
    "#);
    let choice = |tc: Value| {
        let out = chat(
            json!({"model": "m/x", "messages": [{"role": "user", "content": "x"}],
            "tool_choice": tc}),
        );
        json!([out["tool_choice"], out.get("parallel_tool_calls")])
    };
    assert_json_snapshot!(json!([
        choice(json!({"type": "auto"})),
        choice(json!({"type": "any", "disable_parallel_tool_use": true})),
        choice(json!({"type": "none"})),
        choice(json!({"type": "auto", "disable_parallel_tool_use": false})),
    ]), @r#"
    [
      [
        "auto",
        null
      ],
      [
        "required",
        false
      ],
      [
        "none",
        null
      ],
      [
        "auto",
        null
      ]
    ]
    "#);
}

#[test]
fn request_thinking_and_output_config() {
    let convert = |extra: Value| {
        let mut body = json!({"model": "m/x", "max_tokens": 4000,
            "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let out = chat(body);
        let pick = |k: &str| out.get(k).cloned().unwrap_or(Value::Null);
        json!({"reasoning": pick("reasoning"), "verbosity": pick("verbosity"),
            "response_format": pick("response_format")})
    };
    assert_json_snapshot!(json!({
        "enabled": convert(json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})),
        "adaptive": convert(json!({"thinking": {"type": "adaptive"}})),
        "adaptive_effort": convert(json!({"thinking": {"type": "adaptive", "display": "summarized"},
            "output_config": {"effort": "xhigh"}})),
        "effort_only": convert(json!({"output_config": {"effort": "low"}})),
        "disabled": convert(json!({"thinking": {"type": "disabled"}})),
        "format": convert(json!({"output_config": {"format": {"type": "json_schema",
            "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}}})),
    }), @r#"
    {
      "adaptive": {
        "reasoning": {
          "enabled": true
        },
        "response_format": null,
        "verbosity": null
      },
      "adaptive_effort": {
        "reasoning": {
          "effort": "xhigh",
          "enabled": true
        },
        "response_format": null,
        "verbosity": "xhigh"
      },
      "disabled": {
        "reasoning": null,
        "response_format": null,
        "verbosity": null
      },
      "effort_only": {
        "reasoning": null,
        "response_format": null,
        "verbosity": "low"
      },
      "enabled": {
        "reasoning": {
          "max_tokens": 2048
        },
        "response_format": null,
        "verbosity": null
      },
      "format": {
        "reasoning": null,
        "response_format": {
          "json_schema": {
            "name": "output",
            "schema": {
              "properties": {
                "a": {
                  "type": "integer"
                }
              },
              "type": "object"
            },
            "strict": true
          },
          "type": "json_schema"
        },
        "verbosity": null
      }
    }
    "#);
}

#[test]
fn request_openrouter_extensions_pass_through() {
    assert_json_snapshot!(chat(json!({
        "model": "anthropic/claude-sonnet-4",
        "messages": [{"role": "user", "content": "x"}],
        "provider": {"order": ["anthropic"], "allow_fallbacks": false},
        "plugins": [{"id": "web", "max_results": 2}],
        "route": "fallback",
        "session_id": "s-1",
        "trace": {"trace_id": "t-1"},
        "user": "explicit-user",
        "metadata": {"user_id": "ignored-because-user-is-set"},
        "stop_server_tools_when": [{"type": "step_count_is", "count": 2}],
        "models": ["openai/gpt-4o"],
    })), @r#"
    {
      "messages": [
        {
          "content": "x",
          "role": "user"
        }
      ],
      "model": "anthropic/claude-sonnet-4",
      "models": [
        "openai/gpt-4o"
      ],
      "plugins": [
        {
          "id": "web",
          "max_results": 2
        }
      ],
      "provider": {
        "allow_fallbacks": false,
        "order": [
          "anthropic"
        ]
      },
      "route": "fallback",
      "session_id": "s-1",
      "stop_server_tools_when": [
        {
          "count": 2,
          "type": "step_count_is"
        }
      ],
      "trace": {
        "trace_id": "t-1"
      },
      "user": "explicit-user"
    }
    "#);
}

#[test]
fn request_fallbacks_become_models_after_model() {
    let out = chat(json!({
        "model": "anthropic/claude-opus-4",
        "messages": [{"role": "user", "content": "x"}],
        "fallbacks": [{"model": "anthropic/claude-sonnet-4"}, {"model": "openai/gpt-4o"}],
    }));
    assert_json_snapshot!(json!([out["model"], out["models"]]), @r#"
    [
      "anthropic/claude-opus-4",
      [
        "anthropic/claude-opus-4",
        "anthropic/claude-sonnet-4",
        "openai/gpt-4o"
      ]
    ]
    "#);
    let parsed = ChatRequest::parse(&serde_json::to_vec(&out).unwrap()).unwrap();
    assert_eq!(
        parsed.models(),
        [
            "anthropic/claude-opus-4",
            "anthropic/claude-sonnet-4",
            "openai/gpt-4o"
        ]
    );
}

#[test]
fn request_system_role_inside_messages() {
    let out = chat(json!({"model": "m/x", "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Rules."}]},
        {"role": "user", "content": "x"},
    ]}));
    assert_eq!(
        out["messages"][0],
        json!({"role": "system", "content": [{"type": "text", "text": "Rules."}]})
    );
}

#[test]
fn request_errors_name_the_field() {
    let user = |content: Value| json!({"model": "m/x", "messages": [{"role": "user", "content": content}]});
    let assistant = |content: Value| {
        json!({"model": "m/x", "messages": [{"role": "user", "content": "x"},
            {"role": "assistant", "content": content}]})
    };
    let with = |extra: Value| {
        let mut body = user(json!("x"));
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let mut messages = vec![
        rejected(json!({"messages": [{"role": "user", "content": "x"}]})),
        rejected(json!({"model": "m/x"})),
        rejected(json!({"model": "m/x", "messages": []})),
        rejected(json!({"model": "", "messages": []})),
        rejected(json!({"model": "m/x", "messages": [{"role": "tool", "content": "x"}]})),
        rejected(json!({"model": "m/x", "messages": [{"role": "user"}]})),
        rejected(user(json!([]))),
        rejected(user(json!(42))),
        rejected(user(json!([{"type": "audio", "data": "x"}]))),
        rejected(user(json!([{"text": "no type"}]))),
        rejected(user(json!([{"type": "text"}]))),
        rejected(user(
            json!([{"type": "tool_use", "id": "a", "name": "b", "input": {}}]),
        )),
        rejected(user(
            json!([{"type": "image", "source": {"type": "file", "file_id": "f"}}]),
        )),
        rejected(user(json!([{"type": "image"}]))),
        rejected(user(
            json!([{"type": "document", "source": {"type": "file", "file_id": "f"}}]),
        )),
        rejected(user(json!([{"type": "tool_result"}]))),
        rejected(user(json!([{"type": "tool_result", "tool_use_id": "a",
            "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}]}]))),
        rejected(assistant(
            json!([{"type": "image", "source": {"type": "url", "url": "u"}}]),
        )),
        rejected(assistant(
            json!([{"type": "server_tool_use", "id": "a", "name": "web_search", "input": {}}]),
        )),
        rejected(assistant(
            json!([{"type": "tool_use", "name": "b", "input": {}}]),
        )),
        rejected(assistant(json!([{"type": "thinking", "signature": "s"}]))),
        rejected(
            json!({"model": "m/x", "system": [{"type": "image"}], "messages": [{"role": "user", "content": "x"}]}),
        ),
        rejected(
            json!({"model": "m/x", "system": 7, "messages": [{"role": "user", "content": "x"}]}),
        ),
        rejected(with(json!({"tools": {}}))),
        rejected(with(json!({"tools": [{"name": "x"}]}))),
        rejected(with(
            json!({"tools": [{"type": "bash_20250124", "name": "bash"}]}),
        )),
        rejected(with(
            json!({"tool_choice": {"type": "function", "name": "x"}}),
        )),
        rejected(with(json!({"tool_choice": {"type": "tool"}}))),
        rejected(with(json!({"thinking": {"type": "enabled"}}))),
        rejected(with(
            json!({"thinking": {"type": "enabled", "budget_tokens": 0}}),
        )),
        rejected(with(json!({"thinking": {"type": "sometimes"}}))),
        rejected(with(json!({"output_config": {"effort": "extreme"}}))),
        rejected(with(
            json!({"output_config": {"format": {"type": "json_schema"}}}),
        )),
        rejected(with(json!({"max_tokens": 0}))),
        rejected(with(json!({"max_tokens": "many"}))),
        rejected(with(json!({"stop_sequences": "STOP"}))),
        rejected(with(json!({"temperature": "hot"}))),
        rejected(with(json!({"metadata": {"user_id": 5}}))),
        rejected(with(json!({"service_tier": 1}))),
        rejected(with(
            json!({"mcp_servers": [{"type": "url", "url": "https://mcp"}]}),
        )),
        rejected(with(
            json!({"fallbacks": [{"model": "a/b"}], "models": ["c/d"]}),
        )),
        rejected(with(
            json!({"fallbacks": [{"model": "a"}, {"model": "b"}, {"model": "c"}, {"model": "d"}]}),
        )),
        rejected(with(
            json!({"fallbacks": [{"model": "a/b", "max_tokens": 5}]}),
        )),
        rejected(with(json!({"fallbacks": [{}]}))),
        rejected(with(json!({"fallbacks": "a/b"}))),
    ];
    for body in [&b"{not json"[..], b"[1]"] {
        messages.push(to_chat_request(body).unwrap_err().message.into_owned());
    }
    assert_snapshot!(messages.join("\n"), @r#"
    `model` is required, e.g. "model": "anthropic/claude-sonnet-4"
    `messages` is required and must be an array
    `messages` must not be empty
    `model` must be a non-empty string
    `messages[0].role` must be `user` or `assistant`
    `messages[0].content` is required
    `messages[0].content` must not be empty
    `messages[0].content` must be a string or an array of content blocks
    `messages[0].content[0].type` `audio` is not supported; expected text, image, document or tool_result
    `messages[0].content[0].type` is required and must be a string
    `messages[0].content[0].text` is required and must be a string
    `messages[0].content[0].type` `tool_use` is only valid in assistant messages
    `messages[0].content[0].source.type` `file` is not supported for images; use base64 or url
    `messages[0].content[0].source` is required
    `messages[0].content[0].source.type` `file` is not supported for documents; use base64, url, text or content
    `messages[0].content[0].tool_use_id` is required and must be a string
    `messages[0].content[0].content[0].type` `search_result` is not supported; expected text, image, document or tool_result
    `messages[1].content[0].type` `image` is only valid in user messages
    `messages[1].content[0].type` `server_tool_use` is not supported; expected text, tool_use, thinking or redacted_thinking
    `messages[1].content[0].id` is required and must be a string
    `messages[1].content[0].thinking` is required and must be a string
    `system[0].type` must be `text` in a system prompt
    `system` must be a string or an array of text blocks
    `tools` must be an array
    `tools[0].input_schema` is required and must be a JSON Schema object
    `tools[0].type` `bash_20250124` is an Anthropic-defined tool this gateway cannot run; declare it as a custom tool with `name` and `input_schema`
    `tool_choice.type` `function` is not supported; expected auto, any, tool or none
    `tool_choice.name` is required and must be a string
    `thinking.budget_tokens` must be a positive integer
    `thinking.budget_tokens` must be a positive integer
    `thinking.type` `sometimes` is not supported; expected enabled, adaptive or disabled
    `output_config.effort` must be one of low, medium, high, xhigh, max
    `output_config.format` must be {"type": "json_schema", "schema": {...}}
    `max_tokens` must be a positive integer
    `max_tokens` must be a positive integer
    `stop_sequences` must be an array of strings
    `temperature` must be a number
    `metadata.user_id` must be a string
    `service_tier` must be a string
    `mcp_servers` is not supported: this gateway does not run Anthropic's server-side tools
    `fallbacks` cannot be combined with `models`; use one of them
    `fallbacks` accepts at most 3 entries
    `fallbacks[0].max_tokens` is not supported: fallbacks accept only `model`
    `fallbacks[0].model` is required and must be a non-empty string
    `fallbacks` must be an array of {"model": "..."} objects
    Request body is not valid JSON: key must be a string at line 1 column 2
    Request body must be a JSON object
    "#);
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

fn chat_response(message: Value, finish: &str, native: &str) -> Value {
    json!({
        "id": "gen-1-abc", "object": "chat.completion", "created": 1,
        "model": "anthropic/claude-sonnet-4", "provider": "Anthropic", "system_fingerprint": null,
        "choices": [{"index": 0, "message": message, "finish_reason": finish,
            "native_finish_reason": native, "logprobs": null}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 12},
            "cost": 0.00042, "is_byok": true,
            "cost_details": {"upstream_inference_cost": 0.0004,
                "upstream_inference_prompt_cost": 0.0002, "upstream_inference_completions_cost": 0.0002}},
    })
}

#[test]
fn response_text_with_usage_and_metadata() {
    let mut body = chat_response(
        json!({"role": "assistant", "content": "Hello!"}),
        "stop",
        "stop",
    );
    body["openrouter_metadata"] = json!({"strategy": "direct", "attempt": 1});
    assert_json_snapshot!(message(body), @r#"
    {
      "container": null,
      "content": [
        {
          "citations": null,
          "text": "Hello!",
          "type": "text"
        }
      ],
      "id": "gen-1-abc",
      "model": "anthropic/claude-sonnet-4",
      "openrouter_metadata": {
        "attempt": 1,
        "strategy": "direct"
      },
      "provider": "Anthropic",
      "role": "assistant",
      "stop_details": null,
      "stop_reason": "end_turn",
      "stop_sequence": null,
      "type": "message",
      "usage": {
        "cache_creation": null,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 80,
        "cost": 0.00042,
        "cost_details": {
          "upstream_inference_completions_cost": 0.0002,
          "upstream_inference_cost": 0.0004,
          "upstream_inference_prompt_cost": 0.0002
        },
        "inference_geo": null,
        "input_tokens": 30,
        "is_byok": true,
        "output_tokens": 30,
        "output_tokens_details": {
          "thinking_tokens": 12
        },
        "server_tool_use": null,
        "service_tier": "standard"
      }
    }
    "#);
}

#[test]
fn response_thinking_then_text_then_tool_use() {
    let body = chat_response(
        json!({"role": "assistant", "content": "Checking both.",
        "reasoning": "Two cities.",
        "reasoning_details": [
            {"type": "reasoning.text", "text": "Two cities.", "signature": "sig-1",
                "format": "anthropic-claude-v1", "index": 0},
            {"type": "reasoning.encrypted", "data": "ZW5j", "format": "anthropic-claude-v1", "index": 1},
        ],
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":"}},
            {"id": "toolu_3", "type": "function", "function": {"name": "radar", "arguments": ""}},
        ]}),
        "tool_calls",
        "tool_use",
    );
    assert_json_snapshot!(message(body)["content"], @r#"
    [
      {
        "signature": "sig-1",
        "thinking": "Two cities.",
        "type": "thinking"
      },
      {
        "data": "ZW5j",
        "type": "redacted_thinking"
      },
      {
        "citations": null,
        "text": "Checking both.",
        "type": "text"
      },
      {
        "caller": {
          "type": "direct"
        },
        "id": "toolu_1",
        "input": {
          "city": "Paris"
        },
        "name": "weather",
        "type": "tool_use"
      },
      {
        "caller": {
          "type": "direct"
        },
        "id": "toolu_2",
        "input": {},
        "name": "weather",
        "type": "tool_use"
      },
      {
        "caller": {
          "type": "direct"
        },
        "id": "toolu_3",
        "input": {},
        "name": "radar",
        "type": "tool_use"
      }
    ]
    "#);
}

#[test]
fn response_reasoning_without_details_gets_an_empty_signature() {
    let body = chat_response(
        json!({"role": "assistant", "content": "42", "reasoning": "Deep thought."}),
        "stop",
        "stop",
    );
    assert_json_snapshot!(message(body)["content"], @r#"
    [
      {
        "signature": "",
        "thinking": "Deep thought.",
        "type": "thinking"
      },
      {
        "citations": null,
        "text": "42",
        "type": "text"
      }
    ]
    "#);
    // No text and no reasoning: an empty content list; a refusal is shown as text.
    let empty = chat_response(
        json!({"role": "assistant", "content": null}),
        "stop",
        "stop",
    );
    assert_eq!(message(empty)["content"], json!([]));
    let refusal = chat_response(
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
        "content_filter",
        "refusal",
    );
    let refusal = message(refusal);
    assert_eq!(refusal["content"][0]["text"], "I can't help with that.");
    assert_eq!(refusal["stop_reason"], "refusal");
    let parts = chat_response(
        json!({"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
        "stop",
        "stop",
    );
    assert_eq!(message(parts)["content"][0]["text"], "ab");
}

#[test]
fn response_stop_reasons() {
    let cases = [
        ("stop", "end_turn"),
        ("stop", "stop"),
        ("stop", "stop_sequence"),
        ("length", "max_tokens"),
        ("length", "length"),
        ("length", "model_context_window_exceeded"),
        ("tool_calls", "tool_use"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "SAFETY"),
        ("stop", "pause_turn"),
        ("error", "error"),
        ("stop", "STOP"),
    ];
    let table: Vec<String> = cases
        .iter()
        .map(|(finish, native)| {
            let body = chat_response(json!({"role": "assistant", "content": "x"}), finish, native);
            format!(
                "{finish:>14} {native:>30} -> {}",
                message(body)["stop_reason"]
            )
        })
        .collect();
    assert_snapshot!(table.join("\n"), @r#"
              stop                       end_turn -> "end_turn"
              stop                           stop -> "end_turn"
              stop                  stop_sequence -> "stop_sequence"
            length                     max_tokens -> "max_tokens"
            length                         length -> "max_tokens"
            length  model_context_window_exceeded -> "model_context_window_exceeded"
        tool_calls                       tool_use -> "tool_use"
        tool_calls                     tool_calls -> "tool_use"
    content_filter                         SAFETY -> "refusal"
              stop                     pause_turn -> "pause_turn"
             error                          error -> "end_turn"
              stop                           STOP -> "end_turn"
    "#);
}

#[test]
fn response_without_usage_or_readable_body() {
    let mut body = chat_response(json!({"role": "assistant", "content": "x"}), "stop", "stop");
    body.as_object_mut().unwrap().remove("usage");
    assert_json_snapshot!(message(body)["usage"], @r#"
    {
      "cache_creation": null,
      "cache_creation_input_tokens": 0,
      "cache_read_input_tokens": 0,
      "inference_geo": null,
      "input_tokens": 0,
      "output_tokens": 0,
      "output_tokens_details": null,
      "server_tool_use": null,
      "service_tier": "standard"
    }
    "#);
    for bad in [&b"{"[..], b"{\"id\":\"x\"}", b"[]"] {
        assert_eq!(
            from_chat_response(bad).unwrap_err().code,
            ErrorCode::Internal
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_text_only() {
    let (events, mut writer) = stream(&[
        chunk(json!({"role": "assistant", "content": ""})),
        chunk(json!({"content": "Hello"})),
        chunk(json!({"content": ", world"})),
        finish_chunk("stop", "end_turn"),
        usage_chunk(),
        done(),
    ]);
    assert_snapshot!(lines(&events), @r#"
    {"message":{"container":null,"content":[],"id":"gen-1-abc","model":"anthropic/claude-sonnet-4","provider":"Anthropic","role":"assistant","stop_details":null,"stop_reason":null,"stop_sequence":null,"type":"message","usage":{"cache_creation":null,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"inference_geo":null,"input_tokens":0,"output_tokens":0,"output_tokens_details":null,"server_tool_use":null,"service_tier":"standard"}},"type":"message_start"}
    {"content_block":{"citations":null,"text":"","type":"text"},"index":0,"type":"content_block_start"}
    {"delta":{"text":"Hello","type":"text_delta"},"index":0,"type":"content_block_delta"}
    {"delta":{"text":", world","type":"text_delta"},"index":0,"type":"content_block_delta"}
    {"index":0,"type":"content_block_stop"}
    {"delta":{"container":null,"stop_details":null,"stop_reason":"end_turn","stop_sequence":null},"type":"message_delta","usage":{"cache_creation":null,"cache_creation_input_tokens":10,"cache_read_input_tokens":80,"cost":0.00042,"cost_details":{"upstream_inference_completions_cost":0.00022,"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.0002},"input_tokens":30,"is_byok":false,"output_tokens":30,"output_tokens_details":{"thinking_tokens":12},"server_tool_use":null}}
    {"type":"message_stop"}
    "#);
    assert!(writer.finish().is_empty());
    assert!(writer
        .on_data(&chunk(json!({"content": "late"})))
        .is_empty());
    assert_eq!(accumulate(&events)["content"][0]["text"], "Hello, world");
}

#[test]
fn stream_thinking_with_signature_then_text() {
    let detail = |text: &str, signature: Option<&str>| {
        let mut d = json!({"type": "reasoning.text", "text": text, "format": "anthropic-claude-v1", "index": 0});
        if let Some(s) = signature {
            d["signature"] = json!(s);
        }
        d
    };
    let (events, _) = stream(&[
        chunk(
            json!({"role": "assistant", "reasoning": "Let me", "reasoning_details": [detail("Let me", None)]}),
        ),
        chunk(json!({"reasoning": " think.", "reasoning_details": [detail(" think.", None)]})),
        chunk(json!({"reasoning_details": [detail("", Some("EqQBsig"))]})),
        chunk(json!({"content": "Answer: 4"})),
        finish_chunk("stop", "end_turn"),
        usage_chunk(),
        done(),
    ]);
    assert_snapshot!(lines(&events), @r#"
    {"message":{"container":null,"content":[],"id":"gen-1-abc","model":"anthropic/claude-sonnet-4","provider":"Anthropic","role":"assistant","stop_details":null,"stop_reason":null,"stop_sequence":null,"type":"message","usage":{"cache_creation":null,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"inference_geo":null,"input_tokens":0,"output_tokens":0,"output_tokens_details":null,"server_tool_use":null,"service_tier":"standard"}},"type":"message_start"}
    {"content_block":{"signature":"","thinking":"","type":"thinking"},"index":0,"type":"content_block_start"}
    {"delta":{"thinking":"Let me","type":"thinking_delta"},"index":0,"type":"content_block_delta"}
    {"delta":{"thinking":" think.","type":"thinking_delta"},"index":0,"type":"content_block_delta"}
    {"delta":{"signature":"EqQBsig","type":"signature_delta"},"index":0,"type":"content_block_delta"}
    {"index":0,"type":"content_block_stop"}
    {"content_block":{"citations":null,"text":"","type":"text"},"index":1,"type":"content_block_start"}
    {"delta":{"text":"Answer: 4","type":"text_delta"},"index":1,"type":"content_block_delta"}
    {"index":1,"type":"content_block_stop"}
    {"delta":{"container":null,"stop_details":null,"stop_reason":"end_turn","stop_sequence":null},"type":"message_delta","usage":{"cache_creation":null,"cache_creation_input_tokens":10,"cache_read_input_tokens":80,"cost":0.00042,"cost_details":{"upstream_inference_completions_cost":0.00022,"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.0002},"input_tokens":30,"is_byok":false,"output_tokens":30,"output_tokens_details":{"thinking_tokens":12},"server_tool_use":null}}
    {"type":"message_stop"}
    "#);
    let message = accumulate(&events);
    assert_eq!(
        message["content"],
        json!([
            {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBsig"},
            {"type": "text", "text": "Answer: 4", "citations": null},
        ])
    );
}

#[test]
fn stream_reasoning_string_redacted_and_second_thinking_block() {
    let (events, _) = stream(&[
        chunk(json!({"reasoning": "plain reasoning"})),
        chunk(
            json!({"reasoning_details": [{"type": "reasoning.encrypted", "data": "b3BhcXVl", "index": 1}]}),
        ),
        chunk(
            json!({"reasoning_details": [{"type": "reasoning.text", "text": "more", "signature": "s2", "index": 2}]}),
        ),
        chunk(
            json!({"reasoning_details": [{"type": "reasoning.text", "text": "after signature", "index": 2}]}),
        ),
        done(),
    ]);
    let message = accumulate(&events);
    assert_json_snapshot!(message["content"], @r#"
    [
      {
        "signature": "",
        "thinking": "plain reasoning",
        "type": "thinking"
      },
      {
        "data": "b3BhcXVl",
        "type": "redacted_thinking"
      },
      {
        "signature": "s2",
        "thinking": "more",
        "type": "thinking"
      },
      {
        "signature": "",
        "thinking": "after signature",
        "type": "thinking"
      }
    ]
    "#);
    // No usage chunk arrived: the message still ends, with what is known.
    assert_json_snapshot!(events[events.len() - 2], @r#"
    {
      "delta": {
        "container": null,
        "stop_details": null,
        "stop_reason": "end_turn",
        "stop_sequence": null
      },
      "type": "message_delta",
      "usage": {
        "cache_creation_input_tokens": null,
        "cache_read_input_tokens": null,
        "input_tokens": null,
        "output_tokens": 0,
        "output_tokens_details": null,
        "server_tool_use": null
      }
    }
    "#);
}

#[test]
fn stream_parallel_tool_calls_with_interleaved_fragments() {
    let call = |index: u64, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut c = json!({"index": index, "function": {"arguments": args}});
        if let Some(id) = id {
            c["id"] = json!(id);
            c["type"] = json!("function");
        }
        if let Some(name) = name {
            c["function"]["name"] = json!(name);
        }
        chunk(json!({"tool_calls": [c]}))
    };
    let (events, _) = stream(&[
        chunk(json!({"role": "assistant", "content": "Checking."})),
        call(0, Some("toolu_a"), Some("weather"), ""),
        call(0, None, None, "{\"ci"),
        call(1, Some("toolu_b"), Some("weather"), "{\"city\""),
        call(0, None, None, "ty\": \"Par"),
        call(2, Some("toolu_c"), Some("time"), "{\"tz\": \"UTC\"}"),
        call(1, None, None, ": \"Rome\"}"),
        call(0, None, None, "is\"}"),
        // The live call's JSON is complete: the next fragment of a queued call takes over, and
        // trailing whitespace for the closed call is dropped.
        call(1, None, None, ""),
        call(0, None, None, " "),
        finish_chunk("tool_calls", "tool_use"),
        usage_chunk(),
        done(),
    ]);
    assert_snapshot!(lines(&events), @r#"
    {"message":{"container":null,"content":[],"id":"gen-1-abc","model":"anthropic/claude-sonnet-4","provider":"Anthropic","role":"assistant","stop_details":null,"stop_reason":null,"stop_sequence":null,"type":"message","usage":{"cache_creation":null,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"inference_geo":null,"input_tokens":0,"output_tokens":0,"output_tokens_details":null,"server_tool_use":null,"service_tier":"standard"}},"type":"message_start"}
    {"content_block":{"citations":null,"text":"","type":"text"},"index":0,"type":"content_block_start"}
    {"delta":{"text":"Checking.","type":"text_delta"},"index":0,"type":"content_block_delta"}
    {"index":0,"type":"content_block_stop"}
    {"content_block":{"caller":{"type":"direct"},"id":"toolu_a","input":{},"name":"weather","type":"tool_use"},"index":1,"type":"content_block_start"}
    {"delta":{"partial_json":"{\"ci","type":"input_json_delta"},"index":1,"type":"content_block_delta"}
    {"delta":{"partial_json":"ty\": \"Par","type":"input_json_delta"},"index":1,"type":"content_block_delta"}
    {"delta":{"partial_json":"is\"}","type":"input_json_delta"},"index":1,"type":"content_block_delta"}
    {"index":1,"type":"content_block_stop"}
    {"content_block":{"caller":{"type":"direct"},"id":"toolu_b","input":{},"name":"weather","type":"tool_use"},"index":2,"type":"content_block_start"}
    {"delta":{"partial_json":"{\"city\": \"Rome\"}","type":"input_json_delta"},"index":2,"type":"content_block_delta"}
    {"index":2,"type":"content_block_stop"}
    {"content_block":{"caller":{"type":"direct"},"id":"toolu_c","input":{},"name":"time","type":"tool_use"},"index":3,"type":"content_block_start"}
    {"delta":{"partial_json":"{\"tz\": \"UTC\"}","type":"input_json_delta"},"index":3,"type":"content_block_delta"}
    {"index":3,"type":"content_block_stop"}
    {"delta":{"container":null,"stop_details":null,"stop_reason":"tool_use","stop_sequence":null},"type":"message_delta","usage":{"cache_creation":null,"cache_creation_input_tokens":10,"cache_read_input_tokens":80,"cost":0.00042,"cost_details":{"upstream_inference_completions_cost":0.00022,"upstream_inference_cost":null,"upstream_inference_prompt_cost":0.0002},"input_tokens":30,"is_byok":false,"output_tokens":30,"output_tokens_details":{"thinking_tokens":12},"server_tool_use":null}}
    {"type":"message_stop"}
    "#);
    let message = accumulate(&events);
    assert_json_snapshot!(message["content"], @r#"
    [
      {
        "citations": null,
        "text": "Checking.",
        "type": "text"
      },
      {
        "caller": {
          "type": "direct"
        },
        "id": "toolu_a",
        "input": {
          "city": "Paris"
        },
        "name": "weather",
        "type": "tool_use"
      },
      {
        "caller": {
          "type": "direct"
        },
        "id": "toolu_b",
        "input": {
          "city": "Rome"
        },
        "name": "weather",
        "type": "tool_use"
      },
      {
        "caller": {
          "type": "direct"
        },
        "id": "toolu_c",
        "input": {
          "tz": "UTC"
        },
        "name": "time",
        "type": "tool_use"
      }
    ]
    "#);
    assert_eq!(message["stop_reason"], "tool_use");
}

#[test]
fn stream_sequential_tool_calls_stream_live() {
    let call = |index: u64, head: Option<(&str, &str)>, args: &str| {
        let mut c = json!({"index": index, "function": {"arguments": args}});
        if let Some((id, name)) = head {
            c["id"] = json!(id);
            c["function"]["name"] = json!(name);
        }
        chunk(json!({"tool_calls": [c]}))
    };
    let (events, _) = stream(&[
        call(0, Some(("call_1", "a")), ""),
        call(0, None, "{\"x\":"),
        call(0, None, "1}"),
        call(1, Some(("call_2", "b")), ""),
        call(1, None, "{\"y\":2}"),
        finish_chunk("tool_calls", "tool_calls"),
        usage_chunk(),
        done(),
    ]);
    // Both calls stream as they arrive: `b` opens as soon as `a`'s arguments are complete.
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            let detail = e["delta"]["partial_json"]
                .as_str()
                .or(e["content_block"]["name"].as_str())
                .unwrap_or("");
            format!("{} {} {detail}", e["type"].as_str().unwrap(), e["index"])
                .trim_end()
                .to_owned()
        })
        .collect();
    assert_snapshot!(kinds.join("\n"), @r#"
    message_start null
    content_block_start 0 a
    content_block_delta 0 {"x":
    content_block_delta 0 1}
    content_block_stop 0
    content_block_start 1 b
    content_block_delta 1 {"y":2}
    content_block_stop 1
    message_delta null
    message_stop null
    "#);
    let message = accumulate(&events);
    assert_eq!(message["content"][0]["input"], json!({"x": 1}));
    assert_eq!(message["content"][1]["input"], json!({"y": 2}));
    // `tool_calls` is not an Anthropic value: mapped from the normalised finish reason.
    assert_eq!(message["stop_reason"], "tool_use");
}

#[test]
fn stream_usage_becomes_message_delta_and_metadata_rides_on_message_stop() {
    let mut last = serde_json::from_str::<Value>(&usage_chunk()).unwrap();
    last["openrouter_metadata"] = json!({"strategy": "direct"});
    let (events, _) = stream(&[
        chunk(json!({"content": "x"})),
        finish_chunk("length", "max_tokens"),
        last.to_string(),
        done(),
    ]);
    let n = events.len();
    assert_json_snapshot!(json!([events[n - 2], events[n - 1]]), @r#"
    [
      {
        "delta": {
          "container": null,
          "stop_details": null,
          "stop_reason": "max_tokens",
          "stop_sequence": null
        },
        "type": "message_delta",
        "usage": {
          "cache_creation": null,
          "cache_creation_input_tokens": 10,
          "cache_read_input_tokens": 80,
          "cost": 0.00042,
          "cost_details": {
            "upstream_inference_completions_cost": 0.00022,
            "upstream_inference_cost": null,
            "upstream_inference_prompt_cost": 0.0002
          },
          "input_tokens": 30,
          "is_byok": false,
          "output_tokens": 30,
          "output_tokens_details": {
            "thinking_tokens": 12
          },
          "server_tool_use": null
        }
      },
      {
        "openrouter_metadata": {
          "strategy": "direct"
        },
        "type": "message_stop"
      }
    ]
    "#);
}

#[test]
fn stream_error_chunk_closes_the_block_then_error_event() {
    let mut writer = EventWriter::new();
    let mut bytes = writer.on_data(&chunk(json!({"content": "Partial"})));
    bytes.extend(
        writer.on_data(
            &json!({"id": "gen-1-abc", "object": "chat.completion.chunk", "created": 1,
            "model": "anthropic/claude-sonnet-4", "provider": "Anthropic",
            "error": {"code": 502, "message": "Provider returned error",
                "metadata": {"error_type": "provider_unavailable", "provider_name": "Anthropic"}},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                "native_finish_reason": null}]})
            .to_string(),
        ),
    );
    // Nothing follows an error: not the usage chunk, not `[DONE]`, not `finish`.
    bytes.extend(writer.on_data(&usage_chunk()));
    bytes.extend(writer.on_data("[DONE]"));
    bytes.extend(writer.finish());
    assert!(writer.ping().is_empty());
    let seen = events(&bytes);
    check_order(&seen);
    assert_snapshot!(lines(&seen[2..]), @r#"
    {"delta":{"text":"Partial","type":"text_delta"},"index":0,"type":"content_block_delta"}
    {"index":0,"type":"content_block_stop"}
    {"error":{"error_type":"provider_unavailable","message":"Provider returned error","type":"api_error"},"type":"error"}
    "#);

    // An error before any content is just the error event.
    let mut writer = EventWriter::new();
    let seen = events(&writer.on_data(r#"{"error":{"code":429,"message":"slow down"}}"#));
    assert_json_snapshot!(seen, @r#"
    [
      {
        "error": {
          "message": "slow down",
          "type": "rate_limit_error"
        },
        "type": "error"
      }
    ]
    "#);
}

#[test]
fn stream_done_finish_and_ping_are_idempotent() {
    let mut writer = EventWriter::new();
    // Nothing received: nothing to close.
    assert!(writer.finish().is_empty());
    assert!(writer.on_data("[DONE]").is_empty());
    assert_eq!(
        String::from_utf8(writer.ping()).unwrap(),
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    );
    let mut writer = EventWriter::new();
    let mut bytes = writer.on_data(&chunk(json!({"content": "Hi"})));
    bytes.extend(writer.ping());
    // The stream ended without `[DONE]`: `finish` closes it, once.
    let closing = writer.finish();
    assert!(!closing.is_empty());
    bytes.extend(closing);
    assert!(writer.finish().is_empty());
    assert!(writer.on_data("[DONE]").is_empty());
    let events = events(&bytes);
    check_order(&events);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "ping",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[5]["delta"]["stop_reason"], "end_turn");
    // Garbage from the pipeline is ignored rather than corrupting the stream.
    assert!(EventWriter::new().on_data("{oops").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Errors and count_tokens
// ---------------------------------------------------------------------------------------------

#[test]
fn error_bodies_by_status() {
    let codes = [
        ErrorCode::InvalidRequest,
        ErrorCode::ContextLengthExceeded,
        ErrorCode::ModelNotFound,
        ErrorCode::Unauthorized,
        ErrorCode::PaymentRequired,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::NoEndpoints,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
        ErrorCode::UpstreamError,
        ErrorCode::UpstreamOverloaded,
        ErrorCode::UpstreamTimeout,
    ];
    let table: Vec<String> = codes
        .iter()
        .map(|code| {
            let body = error_body(&ApiError::new(*code, "m"), None);
            format!(
                "{} {} {}",
                code.status(),
                body["error"]["type"],
                body["error"]["error_type"]
            )
        })
        .collect();
    assert_snapshot!(table.join("\n"), @r#"
    400 "invalid_request_error" "invalid_request"
    400 "invalid_request_error" "context_length_exceeded"
    400 "invalid_request_error" "not_found"
    401 "authentication_error" "authentication"
    402 "billing_error" "payment_required"
    403 "permission_error" "permission_denied"
    404 "not_found_error" "not_found"
    404 "not_found_error" "not_found"
    413 "invalid_request_error" "payload_too_large"
    429 "rate_limit_error" "rate_limit_exceeded"
    500 "api_error" "server"
    502 "api_error" "provider_unavailable"
    503 "overloaded_error" "provider_overloaded"
    504 "timeout_error" "timeout"
    "#);
    let extra: Vec<String> = [408, 409, 422, 524, 529, 599]
        .iter()
        .map(|s| format!("{s} {}", anthropic_error_type(*s)))
        .collect();
    assert_snapshot!(extra.join("\n"), @"
    408 timeout_error
    409 invalid_request_error
    422 invalid_request_error
    524 timeout_error
    529 overloaded_error
    599 api_error
    ");

    let err = ApiError::new(ErrorCode::UpstreamOverloaded, "Anthropic is overloaded")
        .with_metadata("provider_name", json!("Anthropic"));
    assert_json_snapshot!(error_body(&err, Some("gen-1-abc")), @r#"
    {
      "error": {
        "error_type": "provider_overloaded",
        "message": "Anthropic is overloaded",
        "type": "overloaded_error"
      },
      "metadata": {
        "provider_name": "Anthropic"
      },
      "request_id": "gen-1-abc",
      "type": "error"
    }
    "#);
    assert_json_snapshot!(error_body(&ApiError::invalid("`messages` is required"), None), @r#"
    {
      "error": {
        "error_type": "invalid_request",
        "message": "`messages` is required",
        "type": "invalid_request_error"
      },
      "request_id": null,
      "type": "error"
    }
    "#);
}

#[test]
fn error_event_frame() {
    let err = ApiError::new(ErrorCode::UpstreamTimeout, "Provider timed out");
    assert_snapshot!(String::from_utf8(error_event(&err)).unwrap(), @r#"
    event: error
    data: {"error":{"error_type":"timeout","message":"Provider timed out","type":"timeout_error"},"type":"error"}
    "#);
}

#[test]
fn count_tokens_uses_the_chat_estimate() {
    let body = json!({
        "model": "anthropic/claude-sonnet-4",
        "system": "abcd",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "abcdefgh"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        ]}],
    });
    let counted = count_tokens(body.to_string().as_bytes()).unwrap();
    // 3 + (4 + 1) for the system prompt + (4 + 2 + 85) for the user turn.
    assert_eq!(counted, json!({"input_tokens": 99}));
    let chat = to_chat_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        counted["input_tokens"],
        ChatRequest::parse(&chat).unwrap().prompt_estimate()
    );
    let err = count_tokens(br#"{"model":"m/x"}"#).unwrap_err();
    assert_eq!(err.code.status(), 400);
}

// ---------------------------------------------------------------------------------------------
// Round trip
// ---------------------------------------------------------------------------------------------

#[test]
fn round_trip_thinking_signature_survives_a_tool_loop() {
    // Turn 1: the pipeline answers with signed thinking and two parallel tool calls.
    let first = chat_response(
        json!({"role": "assistant", "content": "",
        "reasoning": "Need both cities.",
        "reasoning_details": [{"type": "reasoning.text", "text": "Need both cities.",
            "signature": "EqQBCgIYAhIMsig", "format": "anthropic-claude-v1", "index": 0}],
        "tool_calls": [
            {"id": "toolu_p", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "toolu_r", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
        ]}),
        "tool_calls",
        "tool_use",
    );
    let reply = message(first);
    assert_eq!(reply["stop_reason"], "tool_use");

    // Turn 2: the client sends the assistant message back with the tool results.
    let second = json!({
        "model": "anthropic/claude-sonnet-4",
        "max_tokens": 2048,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": reply["content"]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_p", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_r", "content": "22°C"},
            ]},
        ],
    });
    let out = chat(second);
    assert_json_snapshot!(out["messages"], @r#"
    [
      {
        "content": "Weather in Paris and Rome?",
        "role": "user"
      },
      {
        "content": null,
        "reasoning": "Need both cities.",
        "reasoning_details": [
          {
            "format": "anthropic-claude-v1",
            "index": 0,
            "signature": "EqQBCgIYAhIMsig",
            "text": "Need both cities.",
            "type": "reasoning.text"
          }
        ],
        "role": "assistant",
        "tool_calls": [
          {
            "function": {
              "arguments": "{\"city\":\"Paris\"}",
              "name": "weather"
            },
            "id": "toolu_p",
            "type": "function"
          },
          {
            "function": {
              "arguments": "{\"city\":\"Rome\"}",
              "name": "weather"
            },
            "id": "toolu_r",
            "type": "function"
          }
        ]
      },
      {
        "content": "18°C",
        "role": "tool",
        "tool_call_id": "toolu_p"
      },
      {
        "content": "22°C",
        "role": "tool",
        "tool_call_id": "toolu_r"
      }
    ]
    "#);
    assert_eq!(
        out["messages"][1]["reasoning_details"][0]["signature"],
        "EqQBCgIYAhIMsig"
    );
}

#[test]
fn round_trip_through_a_stream() {
    // The same turn streamed: signed thinking, then two tool calls.
    let (events, _) = stream(&[
        chunk(json!({"role": "assistant", "reasoning": "Need both.",
            "reasoning_details": [{"type": "reasoning.text", "text": "Need both.", "index": 0}]})),
        chunk(
            json!({"reasoning_details": [{"type": "reasoning.text", "signature": "c2lnbmVk", "index": 0}]}),
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "toolu_p", "type": "function",
            "function": {"name": "weather", "arguments": "{\"city\":"}}]}),
        ),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]})),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "toolu_r", "type": "function",
            "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]}),
        ),
        finish_chunk("tool_calls", "tool_use"),
        usage_chunk(),
        done(),
    ]);
    let reply = accumulate(&events);
    assert_eq!(reply["stop_reason"], "tool_use");
    let next = json!({
        "model": "anthropic/claude-sonnet-4",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": reply["content"]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_p", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_r", "content": "22°C"},
            ]},
        ],
    });
    let assistant = &chat(next)["messages"][1];
    assert_json_snapshot!(json!({
        "reasoning_details": assistant["reasoning_details"],
        "tool_calls": assistant["tool_calls"],
    }), @r#"
    {
      "reasoning_details": [
        {
          "format": "anthropic-claude-v1",
          "index": 0,
          "signature": "c2lnbmVk",
          "text": "Need both.",
          "type": "reasoning.text"
        }
      ],
      "tool_calls": [
        {
          "function": {
            "arguments": "{\"city\":\"Paris\"}",
            "name": "weather"
          },
          "id": "toolu_p",
          "type": "function"
        },
        {
          "function": {
            "arguments": "{\"city\":\"Rome\"}",
            "name": "weather"
          },
          "id": "toolu_r",
          "type": "function"
        }
      ]
    }
    "#);
}
