//! Golden tests of the Bedrock Converse translation, both directions: requests of every kind,
//! responses, every stop reason, errors, and whole conversations (tools over two turns, JSON
//! answers, Claude's signed reasoning) non-streamed and streamed as binary event-stream messages.

use super::*;
use crate::catalog::Pricing;
use crate::error::ErrorCode;
use crate::eventstream::{encode, Decoder, Header, Message};
use crate::money::{Money, Price};
use crate::protocol::openai::{generated_text_len, render_response};
use insta::assert_json_snapshot;

const SERVED: Served<'static> = Served {
    generation_id: "gen-1-abc",
    model: "anthropic/claude-sonnet-4.5",
    provider_name: "Amazon Bedrock",
    created: 1_700_000_000,
};

const CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const NOVA2: &str = "global.amazon.nova-2-lite-v1:0";
const NOVA: &str = "amazon.nova-pro-v1:0";
const LLAMA: &str = "meta.llama3-3-70b-instruct-v1:0";
const GPT_OSS: &str = "openai.gpt-oss-120b-1:0";

fn req(v: Value) -> ChatRequest {
    let Value::Object(mut map) = v else {
        panic!("not an object")
    };
    map.entry("model")
        .or_insert_with(|| json!("anthropic/claude-sonnet-4.5"));
    ChatRequest::from_map(map).unwrap()
}

/// The upstream body for a request to `model`, with an endpoint that can emit 8192 tokens.
fn upstream_for(model: &str, v: Value) -> Value {
    json_of(&request_body(&req(v), model, 8192).unwrap())
}

fn upstream(v: Value) -> Value {
    upstream_for(CLAUDE, v)
}

fn upstream_err(v: Value) -> ApiError {
    request_body(&req(v), CLAUDE, 8192).unwrap_err()
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

fn plain_request() -> ChatRequest {
    req(
        json!({"model": "anthropic/claude-sonnet-4.5", "messages": [{"role": "user", "content": "Hi"}]}),
    )
}

fn parse(response: &Value, req: &ChatRequest) -> (Map<String, Value>, Outcome) {
    parse_response(&serde_json::to_vec(response).unwrap(), req).unwrap()
}

/// An event as ConverseStream sends it (Bedrock pads payloads with a `p` field).
fn event(event_type: &str, payload: Value) -> Message {
    let mut payload = payload;
    payload["p"] = json!("abcdefghij");
    Message::new(
        vec![
            Header::string(":event-type", event_type),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "event"),
        ],
        payload.to_string().into_bytes(),
    )
}

fn exception(exception_type: &str, message: &str) -> Message {
    Message::new(
        vec![
            Header::string(":exception-type", exception_type),
            Header::string(":content-type", "application/json"),
            Header::string(":message-type", "exception"),
        ],
        json!({"message": message}).to_string().into_bytes(),
    )
}

/// What a stream ended with.
#[derive(Debug, PartialEq)]
enum End {
    Done,
    /// The events ran out without `Done`.
    Cut,
}

/// Encodes the events, splits the bytes in 7-byte reads, decodes them and feeds the translator:
/// the frames (as JSON) and how the stream ended. Nothing may follow `Done`.
fn run_stream(t: &mut StreamTranslator, events: &[Message]) -> (Vec<Value>, End) {
    let bytes: Vec<u8> = events.iter().flat_map(|e| encode(e).unwrap()).collect();
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    let mut end = End::Cut;
    for read in bytes.chunks(7) {
        decoder.push(read);
        while let Some(message) = decoder.next_message().unwrap() {
            assert_eq!(end, End::Cut, "an event after the end");
            match t.on_message(&message).unwrap() {
                StreamStep::Frame(frame) => frames.push(frame_json(&frame)),
                StreamStep::Nothing => {}
                StreamStep::Done => end = End::Done,
            }
        }
    }
    assert_eq!(decoder.pending(), 0);
    (frames, end)
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
    if let Some(reasoning) = reasoning {
        message["reasoning"] = json!(reasoning);
    }
    if !details.is_empty() {
        message["reasoning_details"] = json!(details);
    }
    if !calls.is_empty() {
        message["tool_calls"] = json!(calls);
    }
    message
}

/// Generated bytes of a message as the stream counts them: text, reasoning, and each call's name
/// and arguments.
fn generated(message: &Value) -> usize {
    let text = |v: &Value| v.as_str().map_or(0, str::len);
    let calls: usize = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| text(&c["function"]["name"]) + text(&c["function"]["arguments"]))
        .sum();
    text(&message["content"]) + text(&message["reasoning"]) + calls
}

// ---------------------------------------------------------------------------------------------
// Requests

#[test]
fn path_percent_encodes_the_model_id() {
    assert_eq!(
        path("anthropic.claude-3-5-haiku-20241022-v1:0", false),
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(
        path(CLAUDE, true),
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    );
    // Inference profiles pass through but for their version suffix.
    assert_eq!(
        path("eu.amazon.nova-micro-v1:0", false),
        "/model/eu.amazon.nova-micro-v1%3A0/converse"
    );
    assert_eq!(
        path("global.anthropic.claude-haiku-4-5-20251001-v1:0", true),
        "/model/global.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse-stream"
    );
    assert_eq!(
        path("deepseek.v3-v1", false),
        "/model/deepseek.v3-v1/converse"
    );
    // An ARN is one segment.
    assert_eq!(
        path(
            "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3",
            false
        ),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fa1b2c3/converse"
    );
}

#[test]
fn system_prompt_sampling_and_dropped_fields() {
    let body = upstream(json!({
        "model": "anthropic/claude-sonnet-4.5",
        "models": ["anthropic/claude-opus-4.1"],
        "provider": {"order": ["amazon-bedrock"]},
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
                {"type": "text", "text": "   "}
            ]},
            {"role": "user", "content": "Bonjour"}
        ],
        "temperature": 1.5, "top_p": 0.9, "top_k": 40, "stop": ["END", ""], "seed": 7,
        "frequency_penalty": 0.5, "presence_penalty": 0.2, "logprobs": true, "top_logprobs": 2,
        "n": 1, "metadata": {"a": "b"}, "user": "user-42", "parallel_tool_calls": false,
        "cache_control": {"type": "ephemeral"},
        "stream": true
    }));
    // Claude: temperature clamped to 1 and kept, so top_p is dropped; top_k goes to the
    // additional fields.
    assert_json_snapshot!(body, @r#"
    {
      "additionalModelRequestFields": {
        "top_k": 40
      },
      "inferenceConfig": {
        "maxTokens": 8192,
        "stopSequences": [
          "END"
        ],
        "temperature": 1.0
      },
      "messages": [
        {
          "content": [
            {
              "text": "Bonjour"
            }
          ],
          "role": "user"
        }
      ],
      "system": [
        {
          "text": "You are terse."
        },
        {
          "text": "Answer in French."
        }
      ]
    }
    "#);

    // Another model keeps top_p beside the temperature.
    let body = upstream_for(
        LLAMA,
        json!({"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.3,
            "top_p": 0.9, "max_tokens": 100}),
    );
    assert_json_snapshot!(body, @r#"
    {
      "inferenceConfig": {
        "maxTokens": 100,
        "temperature": 0.3,
        "topP": 0.9
      },
      "messages": [
        {
          "content": [
            {
              "text": "Hi"
            }
          ],
          "role": "user"
        }
      ]
    }
    "#);
}

#[test]
fn multi_turn_conversation_alternates_roles() {
    let body = upstream(json!({
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": "Are you there?"}]},
            {"role": "assistant", "content": "Yes."},
            {"role": "assistant", "content": [{"type": "text", "text": "How can I help?"}]},
            {"role": "assistant", "content": null},
            {"role": "user", "content": "Tell me a joke."},
            {"role": "assistant", "content": ""}
        ],
        "max_tokens": 300
    }));
    assert_json_snapshot!(body, @r#"
    {
      "inferenceConfig": {
        "maxTokens": 300
      },
      "messages": [
        {
          "content": [
            {
              "text": "Hello"
            },
            {
              "text": "Are you there?"
            }
          ],
          "role": "user"
        },
        {
          "content": [
            {
              "text": "Yes."
            },
            {
              "text": "How can I help?"
            }
          ],
          "role": "assistant"
        },
        {
          "content": [
            {
              "text": "Tell me a joke."
            }
          ],
          "role": "user"
        }
      ]
    }
    "#);
}

#[test]
fn images_and_documents_as_base64() {
    let body = upstream(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/4AAQ", "detail": "low"}},
        {"type": "file", "file": {"filename": "Q3 report.final.pdf",
            "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}},
        {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxiCjEsMg=="}},
        {"type": "file", "file": {"file_data": "data:image/webp;base64,UklGRg=="}}
    ]}]}));
    assert_json_snapshot!(body["messages"], @r#"
    [
      {
        "content": [
          {
            "text": "What is in these?"
          },
          {
            "image": {
              "format": "png",
              "source": {
                "bytes": "iVBORw0KGgo="
              }
            }
          },
          {
            "image": {
              "format": "jpeg",
              "source": {
                "bytes": "/9j/4AAQ"
              }
            }
          },
          {
            "document": {
              "format": "pdf",
              "name": "Q3 report-final",
              "source": {
                "bytes": "JVBERi0xLjQ="
              }
            }
          },
          {
            "document": {
              "format": "csv",
              "name": "document-0-4",
              "source": {
                "bytes": "YSxiCjEsMg=="
              }
            }
          },
          {
            "image": {
              "format": "webp",
              "source": {
                "bytes": "UklGRg=="
              }
            }
          }
        ],
        "role": "user"
      }
    ]
    "#);

    let errors: Vec<String> = [
        json!({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}),
        json!({"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AAAA"}}),
        json!({"type": "image_url", "image_url": {"url": "cat.png"}}),
        json!({"type": "file", "file": {"file_id": "file-123"}}),
        json!({"type": "file", "file": {"file_data": "https://example.com/a.pdf"}}),
        json!({"type": "file", "file": {"file_data": "data:application/zip;base64,UEsDBA=="}}),
        json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}),
    ]
    .into_iter()
    .map(|part| {
        let err = upstream_err(json!({"messages": [{"role": "user", "content": [part]}]}));
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        err.message.to_string()
    })
    .collect();
    assert_json_snapshot!(errors, @r#"
    [
      "`messages[0].content[0].image_url.url`: Amazon Bedrock cannot fetch images by URL; send the image as a base64 data URL (data:image/png;base64,...)",
      "`messages[0].content[0].image_url.url`: images of type `image/tiff` are not supported by this provider (png, jpeg, gif and webp are)",
      "`messages[0].content[0].image_url.url` must be a base64 data URL (data:image/png;base64,...)",
      "`messages[0].content[0].file.file_data` is required: this provider does not take `file_id`",
      "`messages[0].content[0].file.file_data` must be a base64 data URL: Amazon Bedrock cannot fetch files by URL",
      "`messages[0].content[0].file`: files of type `application/zip` are not supported by this provider",
      "`messages[0].content[0]`: content parts of type `input_audio` are not supported here by this provider"
    ]
    "#);
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"]}
    }})
}

#[test]
fn tools_and_each_tool_choice() {
    let base = json!({
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [
            weather_tool(),
            {"type": "function", "function": {"name": "now", "description": ""}},
            {"type": "web_search"}
        ]
    });
    assert_json_snapshot!(upstream(base.clone())["toolConfig"], @r#"
    {
      "tools": [
        {
          "toolSpec": {
            "description": "Current weather for a city",
            "inputSchema": {
              "json": {
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
            "name": "get_weather"
          }
        },
        {
          "toolSpec": {
            "inputSchema": {
              "json": {
                "properties": {},
                "type": "object"
              }
            },
            "name": "now"
          }
        }
      ]
    }
    "#);

    let mut table = Map::new();
    for (label, choice) in [
        ("unset", Value::Null),
        ("auto", json!("auto")),
        ("required", json!("required")),
        ("none", json!("none")),
        (
            "function",
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ] {
        let mut request = base.clone();
        if !choice.is_null() {
            request["tool_choice"] = choice;
        }
        let body = upstream(request);
        table.insert(
            label.into(),
            json!({
                "tools": body["toolConfig"]["tools"].as_array().map(|t| t.len()),
                "toolChoice": body["toolConfig"]["toolChoice"],
            }),
        );
    }
    assert_json_snapshot!(table, @r#"
    {
      "auto": {
        "toolChoice": {
          "auto": {}
        },
        "tools": 2
      },
      "function": {
        "toolChoice": {
          "tool": {
            "name": "get_weather"
          }
        },
        "tools": 2
      },
      "none": {
        "toolChoice": null,
        "tools": null
      },
      "required": {
        "toolChoice": {
          "any": {}
        },
        "tools": 2
      },
      "unset": {
        "toolChoice": null,
        "tools": 2
      }
    }
    "#);

    assert_eq!(
        upstream_err(json!({"messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"description": "nameless"}}]}))
        .message,
        "`tools[0].function.name` is required"
    );
}

#[test]
fn tool_history_without_tools_declares_a_placeholder() {
    let history = json!([
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "user", "content": "Summarise."}
    ]);
    // No tools at all, and tools withheld by `none`: Bedrock still wants a `toolConfig`.
    let without = upstream(json!({"messages": history}));
    assert_json_snapshot!(without["toolConfig"], @r#"
    {
      "tools": [
        {
          "toolSpec": {
            "description": "No tool is available in this turn. Do not call this tool.",
            "inputSchema": {
              "json": {
                "properties": {},
                "type": "object"
              }
            },
            "name": "no_tool_available"
          }
        }
      ]
    }
    "#);
    let none = upstream(json!({"messages": history, "tools": [weather_tool()],
        "tool_choice": "none"}));
    assert_eq!(none["toolConfig"], without["toolConfig"]);
    // No tool history, no tools: no `toolConfig`.
    let plain = upstream(json!({"messages": [{"role": "user", "content": "Hi"}],
        "tools": [weather_tool()], "tool_choice": "none"}));
    assert!(plain.get("toolConfig").is_none());
}

#[test]
fn tool_call_ids_are_made_acceptable_alike_in_calls_and_results() {
    let body = upstream(json!({"messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "functions.get_weather:0", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": ""}
    ], "tools": [weather_tool()]}));
    assert_json_snapshot!(body["messages"], @r#"
    [
      {
        "content": [
          {
            "text": "Weather?"
          }
        ],
        "role": "user"
      },
      {
        "content": [
          {
            "toolUse": {
              "input": {},
              "name": "get_weather",
              "toolUseId": "functions_get_weather_0"
            }
          }
        ],
        "role": "assistant"
      },
      {
        "content": [
          {
            "toolResult": {
              "content": [],
              "status": "success",
              "toolUseId": "functions_get_weather_0"
            }
          }
        ],
        "role": "user"
      }
    ]
    "#);
    assert_eq!(
        upstream_err(json!({"messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "get_weather", "arguments": "[1]"}}]}
        ]}))
        .message,
        "`messages[1].tool_calls[0].function.arguments` must be a JSON object encoded as a string"
    );
}

#[test]
fn other_families_get_no_cache_points_json_results_or_tool_status() {
    let request = json!({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "Rules",
            "cache_control": {"type": "ephemeral"}}]},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 18}"}
    ], "tools": [weather_tool()]});
    let body = upstream_for(LLAMA, request.clone());
    assert_json_snapshot!(json!({"system": body["system"], "result": body["messages"][2]}), @r#"
    {
      "result": {
        "content": [
          {
            "toolResult": {
              "content": [
                {
                  "text": "{\"temp\": 18}"
                }
              ],
              "toolUseId": "c1"
            }
          }
        ],
        "role": "user"
      },
      "system": [
        {
          "text": "Rules"
        }
      ]
    }
    "#);
    // Nova caches and takes JSON and a status.
    let nova = upstream_for(NOVA, request);
    assert_eq!(
        nova["system"][1],
        json!({"cachePoint": {"type": "default"}})
    );
    let result = &nova["messages"][2]["content"][0]["toolResult"];
    assert_eq!(result["status"], "success");
    assert_eq!(result["content"], json!([{"json": {"temp": 18}}]));
}

// ---------------------------------------------------------------------------------------------
// Cache points and cached usage

#[test]
fn cache_control_becomes_cache_points() {
    let body = upstream(json!({
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "Long shared rules", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "Answer briefly."}
            ]},
            {"role": "system", "content": "More rules", "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": [
                {"type": "text", "text": "A long document", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "text", "text": "Question?"}
            ]},
            {"role": "assistant", "content": "Answer.", "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": "Next?"}
        ],
        "tools": [{"type": "function", "function": {"name": "now"},
            "cache_control": {"type": "ephemeral"}}]
    }));
    assert_json_snapshot!(json!({"system": body["system"], "messages": body["messages"],
        "tools": body["toolConfig"]["tools"]}), @r#"
    {
      "messages": [
        {
          "content": [
            {
              "text": "A long document"
            },
            {
              "cachePoint": {
                "type": "default"
              }
            },
            {
              "text": "Question?"
            }
          ],
          "role": "user"
        },
        {
          "content": [
            {
              "text": "Answer."
            },
            {
              "cachePoint": {
                "type": "default"
              }
            }
          ],
          "role": "assistant"
        },
        {
          "content": [
            {
              "text": "Next?"
            }
          ],
          "role": "user"
        }
      ],
      "system": [
        {
          "text": "Long shared rules"
        },
        {
          "cachePoint": {
            "type": "default"
          }
        },
        {
          "text": "Answer briefly."
        },
        {
          "text": "More rules"
        },
        {
          "cachePoint": {
            "type": "default"
          }
        }
      ],
      "tools": [
        {
          "toolSpec": {
            "inputSchema": {
              "json": {
                "properties": {},
                "type": "object"
              }
            },
            "name": "now"
          }
        },
        {
          "cachePoint": {
            "type": "default"
          }
        }
      ]
    }
    "#);
}

#[test]
fn cached_usage_is_charged_once() {
    let response = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 100, "outputTokens": 50, "totalTokens": 2650,
            "cacheReadInputTokens": 2000, "cacheWriteInputTokens": 500},
        "metrics": {"latencyMs": 812}
    });
    let (_, outcome) = parse(&response, &plain_request());
    let usage = outcome.usage.unwrap();
    assert_eq!(
        usage,
        Usage {
            prompt_tokens: 2600,
            completion_tokens: 50,
            cached_tokens: 2000,
            cache_write_tokens: 500,
            ..Usage::default()
        }
    );
    // Bedrock's total counts every token once; so do we.
    assert_eq!(usage.total_tokens(), 2650);
    let price = |s: &str| Price::parse_usd(s).unwrap();
    let pricing = Pricing {
        prompt: price("0.000003"),
        completion: price("0.000015"),
        input_cache_read: price("0.0000003"),
        input_cache_write: price("0.00000375"),
        ..Pricing::default()
    };
    // 100 × 3000 + 2000 × 300 (reads, once, at their price) + 500 × 3750 nano (writes, once);
    // 50 × 15000 nano.
    let cost = crate::pricing::cost(&pricing, &usage);
    assert_eq!(cost.prompt.nanos(), 300_000 + 600_000 + 1_875_000);
    assert_eq!(cost.completion.nanos(), 750_000);
    assert_eq!(cost.total.nanos(), 3_525_000);
}

// ---------------------------------------------------------------------------------------------
// Reasoning requests

#[test]
fn reasoning_requests_per_family() {
    let ask = |model: &str, extra: Value| {
        let mut request = json!({"messages": [{"role": "user", "content": "Think."}],
            "temperature": 0.5, "top_p": 0.9, "top_k": 20});
        for (k, v) in extra.as_object().unwrap() {
            request[k] = v.clone();
        }
        let body = upstream_for(model, request);
        json!({"inferenceConfig": body["inferenceConfig"],
            "additionalModelRequestFields": body["additionalModelRequestFields"]})
    };
    let mut table = Map::new();
    table.insert(
        "claude effort high".into(),
        ask(
            CLAUDE,
            json!({"reasoning": {"effort": "high"}, "max_tokens": 10000}),
        ),
    );
    table.insert(
        "claude budget over the cap".into(),
        ask(
            CLAUDE,
            json!({"reasoning": {"max_tokens": 4000}, "max_tokens": 2000}),
        ),
    );
    table.insert(
        "claude forced tool: no thinking".into(),
        ask(
            CLAUDE,
            json!({"reasoning_effort": "medium", "tools": [weather_tool()],
                "tool_choice": "required"}),
        ),
    );
    table.insert(
        "claude effort none".into(),
        ask(CLAUDE, json!({"reasoning": {"effort": "none"}})),
    );
    table.insert(
        "nova 2 effort low".into(),
        ask(
            NOVA2,
            json!({"reasoning": {"effort": "low"}, "max_tokens": 1000}),
        ),
    );
    table.insert(
        "nova 2 effort high: no maxTokens".into(),
        ask(
            NOVA2,
            json!({"reasoning_effort": "xhigh", "max_tokens": 1000}),
        ),
    );
    table.insert(
        "nova 2 budget as effort".into(),
        ask(NOVA2, json!({"reasoning": {"max_tokens": 4096}})),
    );
    table.insert("nova 2 without reasoning".into(), ask(NOVA2, json!({})));
    table.insert(
        "nova 1 top_k".into(),
        ask(NOVA, json!({"reasoning": {"enabled": true}})),
    );
    table.insert(
        "gpt-oss enabled".into(),
        ask(GPT_OSS, json!({"reasoning": {"enabled": true}})),
    );
    table.insert(
        "gpt-oss minimal".into(),
        ask(GPT_OSS, json!({"reasoning": {"effort": "minimal"}})),
    );
    assert_json_snapshot!(table, @r#"
    {
      "claude budget over the cap": {
        "additionalModelRequestFields": {
          "thinking": {
            "budget_tokens": 4000,
            "type": "enabled"
          }
        },
        "inferenceConfig": {
          "maxTokens": 6000
        }
      },
      "claude effort high": {
        "additionalModelRequestFields": {
          "thinking": {
            "budget_tokens": 8000,
            "type": "enabled"
          }
        },
        "inferenceConfig": {
          "maxTokens": 10000
        }
      },
      "claude effort none": {
        "additionalModelRequestFields": {
          "top_k": 20
        },
        "inferenceConfig": {
          "maxTokens": 8192,
          "temperature": 0.5
        }
      },
      "claude forced tool: no thinking": {
        "additionalModelRequestFields": {
          "top_k": 20
        },
        "inferenceConfig": {
          "maxTokens": 8192,
          "temperature": 0.5
        }
      },
      "gpt-oss enabled": {
        "additionalModelRequestFields": {
          "reasoning_effort": "medium",
          "top_k": 20
        },
        "inferenceConfig": {
          "maxTokens": 8192,
          "temperature": 0.5,
          "topP": 0.9
        }
      },
      "gpt-oss minimal": {
        "additionalModelRequestFields": {
          "reasoning_effort": "low",
          "top_k": 20
        },
        "inferenceConfig": {
          "maxTokens": 8192,
          "temperature": 0.5,
          "topP": 0.9
        }
      },
      "nova 1 top_k": {
        "additionalModelRequestFields": {
          "inferenceConfig": {
            "topK": 20
          }
        },
        "inferenceConfig": {
          "maxTokens": 8192,
          "temperature": 0.5,
          "topP": 0.9
        }
      },
      "nova 2 budget as effort": {
        "additionalModelRequestFields": {
          "reasoningConfig": {
            "maxReasoningEffort": "medium",
            "type": "enabled"
          }
        },
        "inferenceConfig": {
          "maxTokens": 8192
        }
      },
      "nova 2 effort high: no maxTokens": {
        "additionalModelRequestFields": {
          "reasoningConfig": {
            "maxReasoningEffort": "high",
            "type": "enabled"
          }
        },
        "inferenceConfig": null
      },
      "nova 2 effort low": {
        "additionalModelRequestFields": {
          "reasoningConfig": {
            "maxReasoningEffort": "low",
            "type": "enabled"
          }
        },
        "inferenceConfig": {
          "maxTokens": 1000
        }
      },
      "nova 2 without reasoning": {
        "additionalModelRequestFields": {
          "inferenceConfig": {
            "topK": 20
          }
        },
        "inferenceConfig": {
          "maxTokens": 8192,
          "temperature": 0.5,
          "topP": 0.9
        }
      }
    }
    "#);
}

// ---------------------------------------------------------------------------------------------
// JSON answers through a forced tool

fn person_schema() -> Value {
    json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"], "additionalProperties": false})
}

fn json_request() -> Value {
    json!({
        "messages": [{"role": "user", "content": "John Smith is 42. Extract the person."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person",
            "strict": true, "schema": person_schema()}},
        "reasoning": {"effort": "high"},
        "max_tokens": 500
    })
}

#[test]
fn json_schema_request_forces_the_json_tool() {
    // Thinking is left off: Claude rejects it under a forced tool choice.
    assert_json_snapshot!(upstream(json_request()), @r#"
    {
      "inferenceConfig": {
        "maxTokens": 500
      },
      "messages": [
        {
          "content": [
            {
              "text": "John Smith is 42. Extract the person."
            }
          ],
          "role": "user"
        }
      ],
      "toolConfig": {
        "toolChoice": {
          "tool": {
            "name": "json_response"
          }
        },
        "tools": [
          {
            "toolSpec": {
              "description": "Respond by calling this tool with the answer as its input, which must follow the schema.",
              "inputSchema": {
                "json": {
                  "additionalProperties": false,
                  "properties": {
                    "age": {
                      "type": "integer"
                    },
                    "name": {
                      "type": "string"
                    }
                  },
                  "required": [
                    "name",
                    "age"
                  ],
                  "type": "object"
                }
              },
              "name": "json_response"
            }
          }
        ]
      }
    }
    "#);

    let mut table = Map::new();
    let mut with_tools = json_request();
    with_tools["tools"] = json!([weather_tool()]);
    let body = upstream(with_tools.clone());
    table.insert(
        "with client tools".into(),
        json!([
            body["toolConfig"]["tools"].as_array().unwrap().len(),
            body["toolConfig"]["toolChoice"]
        ]),
    );
    with_tools["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    let body = upstream(with_tools.clone());
    table.insert(
        "with a forced client tool".into(),
        json!([
            body["toolConfig"]["tools"].as_array().unwrap().len(),
            body["toolConfig"]["toolChoice"]
        ]),
    );
    with_tools["tool_choice"] = json!("none");
    let body = upstream(with_tools);
    table.insert(
        "client tools withheld".into(),
        json!([
            body["toolConfig"]["tools"].as_array().unwrap().len(),
            body["toolConfig"]["toolChoice"]
        ]),
    );
    let body = upstream(
        json!({"messages": [{"role": "user", "content": "List two colours."}],
        "response_format": {"type": "json_object"}}),
    );
    table.insert("json_object".into(), body["toolConfig"].clone());
    assert_json_snapshot!(table, @r#"
    {
      "client tools withheld": [
        1,
        {
          "tool": {
            "name": "json_response"
          }
        }
      ],
      "json_object": {
        "toolChoice": {
          "tool": {
            "name": "json_response"
          }
        },
        "tools": [
          {
            "toolSpec": {
              "description": "Respond by calling this tool with the answer, a JSON object, as its input.",
              "inputSchema": {
                "json": {
                  "type": "object"
                }
              },
              "name": "json_response"
            }
          }
        ]
      },
      "with a forced client tool": [
        2,
        {
          "tool": {
            "name": "get_weather"
          }
        }
      ],
      "with client tools": [
        2,
        {
          "any": {}
        }
      ]
    }
    "#);

    let err = upstream_err(json!({"messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "n"}}}));
    assert_eq!(
        err.message,
        "`response_format.json_schema.schema` must be a JSON Schema object"
    );
    let err = upstream_err(json!({"messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": JSON_TOOL}}]}));
    assert_eq!(err.code, ErrorCode::InvalidRequest);
    // Plain text asks for nothing.
    let body = upstream(json!({"messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "text"}}));
    assert!(body.get("toolConfig").is_none());
}

fn json_response() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "tooluse_json1", "name": JSON_TOOL,
                "input": {"name": "John Smith", "age": 42}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 410, "outputTokens": 30, "totalTokens": 440},
        "metrics": {"latencyMs": 500}
    })
}

fn json_events() -> Vec<Message> {
    vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "tooluse_json1",
                "name": JSON_TOOL}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"name\": \"John"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": " Smith\", \"age\": 42}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 410, "outputTokens": 30, "totalTokens": 440},
                "metrics": {"latencyMs": 500}}),
        ),
    ]
}

#[test]
fn json_schema_response_is_the_content() {
    let request = req(json_request());
    let (body, outcome) = parse(&json_response(), &request);
    let usage = outcome.usage.unwrap();
    let rendered = json_of(&render_response(body, &SERVED, &usage, &cost()));
    assert_json_snapshot!(rendered["choices"], @r#"
    [
      {
        "finish_reason": "stop",
        "index": 0,
        "logprobs": null,
        "message": {
          "content": "{\"age\":42,\"name\":\"John Smith\"}",
          "role": "assistant"
        },
        "native_finish_reason": "tool_use"
      }
    ]
    "#);
    assert_eq!(outcome.finish_reason.as_deref(), Some("stop"));
    let content = rendered["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(content).unwrap(),
        json!({"name": "John Smith", "age": 42})
    );
    // Without a JSON request, a call to a tool of that name is an ordinary call.
    let (body, outcome) = parse(&json_response(), &plain_request());
    assert_eq!(outcome.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        JSON_TOOL
    );
}

#[test]
fn json_schema_stream_sends_content_deltas() {
    let request = req(json_request());
    let mut t = StreamTranslator::new(&SERVED, &request);
    let (frames, end) = run_stream(&mut t, &json_events());
    assert_eq!(end, End::Done);
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
          "content": "{\"name\": \"John"
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "content": " Smith\", \"age\": 42}"
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {},
        "finish_reason": "stop",
        "index": 0,
        "native_finish_reason": "tool_use"
      }
    ]
    "#);
    let message = reassemble(&frames);
    assert_eq!(
        serde_json::from_str::<Value>(message["content"].as_str().unwrap()).unwrap(),
        json!({"name": "John Smith", "age": 42})
    );
    assert_eq!(t.outcome().finish_reason.as_deref(), Some("stop"));
    assert_eq!(t.generated_bytes(), generated(&message));
    // A JSON answer without input still parses.
    let mut t = StreamTranslator::new(&SERVED, &request);
    let events = [json_events()[1].clone(), json_events()[4].clone()];
    let (frames, end) = run_stream(&mut t, &events);
    assert_eq!(end, End::Cut);
    assert_eq!(reassemble(&frames)["content"], "{}");
}

// ---------------------------------------------------------------------------------------------
// Responses and streams

#[test]
fn invalid_upstream_bodies_are_502() {
    for body in [
        &b"{not json"[..],
        br#"{"stopReason":"end_turn"}"#,
        br#"{"output":{"message":{"role":"assistant"}}}"#,
        b"[]",
    ] {
        let err = parse_response(body, &plain_request()).unwrap_err();
        assert_eq!(err.code.status(), 502);
    }
}

#[test]
fn every_stop_reason() {
    let mut table = Map::new();
    for native in [
        "end_turn",
        "tool_use",
        "max_tokens",
        "stop_sequence",
        "guardrail_intervened",
        "content_filtered",
        "model_context_window_exceeded",
        "malformed_model_output",
        "malformed_tool_use",
    ] {
        let response = json!({"output": {"message": {"role": "assistant", "content": [
            {"text": "x"}]}}, "stopReason": native,
            "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}});
        let (body, outcome) = parse(&response, &plain_request());
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
        // Streamed alike.
        let mut t = StreamTranslator::new(&SERVED, &plain_request());
        let (frames, end) = run_stream(
            &mut t,
            &[
                event("messageStart", json!({"role": "assistant"})),
                event("messageStop", json!({"stopReason": native})),
            ],
        );
        assert_eq!(end, End::Cut);
        let last = &frames.last().unwrap()["choices"][0];
        assert_eq!(last["finish_reason"], choice["finish_reason"]);
        assert_eq!(last["native_finish_reason"], choice["native_finish_reason"]);
        assert_eq!(t.outcome().finish_reason, outcome.finish_reason);
        table.insert(
            native.into(),
            json!([choice["finish_reason"], choice["native_finish_reason"]]),
        );
    }
    assert_json_snapshot!(table, @r#"
    {
      "content_filtered": [
        "content_filter",
        "content_filtered"
      ],
      "end_turn": [
        "stop",
        "end_turn"
      ],
      "guardrail_intervened": [
        "content_filter",
        "guardrail_intervened"
      ],
      "malformed_model_output": [
        "error",
        "malformed_model_output"
      ],
      "malformed_tool_use": [
        "error",
        "malformed_tool_use"
      ],
      "max_tokens": [
        "length",
        "max_tokens"
      ],
      "model_context_window_exceeded": [
        "length",
        "model_context_window_exceeded"
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
fn text_stream_frames_and_usage() {
    let events = [
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": " there!"}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 25, "outputTokens": 3, "totalTokens": 28},
                "metrics": {"latencyMs": 300}}),
        ),
    ];
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let StreamStep::Frame(first) = t.on_message(&events[0]).unwrap() else {
        panic!("expected a frame")
    };
    assert!(!t.content_sent(), "the role is not content");
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
      "provider": "Amazon Bedrock"
    }
    "#);

    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let (frames, end) = run_stream(&mut t, &events);
    assert_eq!(end, End::Done, "metadata ends the stream");
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
          "content": " there!"
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
    assert_eq!(t.generated_bytes(), "Hello there!".len());
    assert_eq!(
        t.outcome(),
        &Outcome {
            usage: Some(Usage {
                prompt_tokens: 25,
                completion_tokens: 3,
                ..Usage::default()
            }),
            finish_reason: Some("stop".into()),
            native_finish_reason: Some("end_turn".into()),
            upstream_id: None,
        }
    );
    let usage = t.outcome().usage.unwrap();
    let tail = frame_json(&t.usage_frame(&usage, &cost(), Some(json!({"attempt": 1}))));
    assert_json_snapshot!(tail, @r#"
    {
      "choices": [],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "anthropic/claude-sonnet-4.5",
      "object": "chat.completion.chunk",
      "openrouter_metadata": {
        "attempt": 1
      },
      "provider": "Amazon Bedrock",
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
        "prompt_tokens": 25,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 0
        },
        "total_tokens": 28
      }
    }
    "#);

    // Cut after `messageStop`: the answer is whole (the relay checks the finish reason), the
    // usage unknown.
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let (_, end) = run_stream(&mut t, &events[..5]);
    assert_eq!(end, End::Cut);
    assert_eq!(t.outcome().finish_reason.as_deref(), Some("stop"));
    assert_eq!(t.outcome().usage, None);
}

#[test]
fn unknown_events_and_messages_are_ignored_and_bad_payloads_fail() {
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    let unknown = event("somethingNew", json!({"x": 1}));
    assert_eq!(t.on_message(&unknown).unwrap(), StreamStep::Nothing);
    let other_kind = Message::new(vec![Header::string(":message-type", "ping")], b"".to_vec());
    assert_eq!(t.on_message(&other_kind).unwrap(), StreamStep::Nothing);
    let start_of_image = event(
        "contentBlockStart",
        json!({"contentBlockIndex": 0, "start": {"image": {}}}),
    );
    assert_eq!(t.on_message(&start_of_image).unwrap(), StreamStep::Nothing);
    let mut bad = event("contentBlockDelta", json!({}));
    bad.payload = b"not json".to_vec();
    assert_eq!(
        t.on_message(&bad).unwrap_err().code,
        ErrorCode::UpstreamError
    );
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn every_error_type() {
    let mut table = Map::new();
    for (status, header, message) in [
        (
            400,
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            "Input is too long for requested model.",
        ),
        (
            400,
            Some("ValidationException"),
            "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum",
        ),
        (
            400,
            Some("ValidationException"),
            "Too many input tokens. Max input tokens: 8192, request input token count: 11836",
        ),
        (
            400,
            Some("ValidationException"),
            "The provided model identifier is invalid.",
        ),
        (429, Some("ThrottlingException"), "Too many requests, please wait before trying again."),
        (
            400,
            Some("ServiceQuotaExceededException"),
            "Your request exceeds the service quota for your account.",
        ),
        (429, Some("ModelNotReadyException"), "Model is not ready for inference."),
        (
            403,
            Some("AccessDeniedException"),
            "You don't have access to the model with the specified model ID.",
        ),
        (
            403,
            Some("UnrecognizedClientException"),
            "The security token included in the request is invalid.",
        ),
        (
            403,
            Some("InvalidSignatureException"),
            "The request signature we calculated does not match the signature you provided.",
        ),
        (404, Some("ResourceNotFoundException"), "Model not found."),
        (408, Some("ModelTimeoutException"), "Model has timed out in processing the request."),
        (424, Some("ModelErrorException"), "The model returned an error."),
        (500, Some("InternalServerException"), "Internal server error"),
        (503, Some("ServiceUnavailableException"), "Service unavailable."),
        (400, None, "Something else."),
    ] {
        let body = json!({"message": message}).to_string();
        let err = upstream_error(status, header, body.as_bytes(), "Amazon Bedrock", None);
        let label = format!("{status} {}", header.map_or("-", bare_error_type));
        let label = if table.contains_key(&label) {
            format!("{label}: {message}")
        } else {
            label
        };
        table.insert(label, err.body());
    }
    assert_json_snapshot!(table, @r#"
    {
      "400 -": {
        "error": {
          "code": 400,
          "message": "Something else.",
          "metadata": {
            "error_type": "invalid_request",
            "provider_code": 400,
            "provider_name": "Amazon Bedrock",
            "raw": "Something else."
          }
        },
        "user_id": null
      },
      "400 ServiceQuotaExceededException": {
        "error": {
          "code": 429,
          "message": "Amazon Bedrock is rate limited upstream; retry shortly",
          "metadata": {
            "error_type": "rate_limit_exceeded",
            "provider_code": 400,
            "provider_name": "Amazon Bedrock",
            "raw": "ServiceQuotaExceededException: Your request exceeds the service quota for your account."
          }
        },
        "user_id": null
      },
      "400 ValidationException": {
        "error": {
          "code": 400,
          "message": "Input is too long for requested model.",
          "metadata": {
            "error_type": "context_length_exceeded",
            "provider_code": 400,
            "provider_name": "Amazon Bedrock",
            "raw": "ValidationException: Input is too long for requested model."
          }
        },
        "user_id": null
      },
      "400 ValidationException: The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum": {
        "error": {
          "code": 400,
          "message": "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum",
          "metadata": {
            "error_type": "context_length_exceeded",
            "provider_code": 400,
            "provider_name": "Amazon Bedrock",
            "raw": "ValidationException: The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum"
          }
        },
        "user_id": null
      },
      "400 ValidationException: The provided model identifier is invalid.": {
        "error": {
          "code": 400,
          "message": "The provided model identifier is invalid.",
          "metadata": {
            "error_type": "invalid_request",
            "provider_code": 400,
            "provider_name": "Amazon Bedrock",
            "raw": "ValidationException: The provided model identifier is invalid."
          }
        },
        "user_id": null
      },
      "400 ValidationException: Too many input tokens. Max input tokens: 8192, request input token count: 11836": {
        "error": {
          "code": 400,
          "message": "Too many input tokens. Max input tokens: 8192, request input token count: 11836",
          "metadata": {
            "error_type": "context_length_exceeded",
            "provider_code": 400,
            "provider_name": "Amazon Bedrock",
            "raw": "ValidationException: Too many input tokens. Max input tokens: 8192, request input token count: 11836"
          }
        },
        "user_id": null
      },
      "403 AccessDeniedException": {
        "error": {
          "code": 502,
          "message": "Provider returned error",
          "metadata": {
            "error_type": "provider_unavailable",
            "provider_code": 403,
            "provider_name": "Amazon Bedrock",
            "raw": "AccessDeniedException: You don't have access to the model with the specified model ID."
          }
        },
        "user_id": null
      },
      "403 InvalidSignatureException": {
        "error": {
          "code": 502,
          "message": "Provider returned error",
          "metadata": {
            "error_type": "provider_unavailable",
            "provider_code": 403,
            "provider_name": "Amazon Bedrock",
            "raw": "InvalidSignatureException: The request signature we calculated does not match the signature you provided."
          }
        },
        "user_id": null
      },
      "403 UnrecognizedClientException": {
        "error": {
          "code": 502,
          "message": "Provider returned error",
          "metadata": {
            "error_type": "provider_unavailable",
            "provider_code": 403,
            "provider_name": "Amazon Bedrock",
            "raw": "UnrecognizedClientException: The security token included in the request is invalid."
          }
        },
        "user_id": null
      },
      "404 ResourceNotFoundException": {
        "error": {
          "code": 400,
          "message": "Model not found.",
          "metadata": {
            "error_type": "invalid_request",
            "provider_code": 404,
            "provider_name": "Amazon Bedrock",
            "raw": "ResourceNotFoundException: Model not found."
          }
        },
        "user_id": null
      },
      "408 ModelTimeoutException": {
        "error": {
          "code": 504,
          "message": "Provider timed out",
          "metadata": {
            "error_type": "timeout",
            "provider_code": 408,
            "provider_name": "Amazon Bedrock",
            "raw": "ModelTimeoutException: Model has timed out in processing the request."
          }
        },
        "user_id": null
      },
      "424 ModelErrorException": {
        "error": {
          "code": 502,
          "message": "Provider returned error",
          "metadata": {
            "error_type": "provider_unavailable",
            "provider_code": 424,
            "provider_name": "Amazon Bedrock",
            "raw": "ModelErrorException: The model returned an error."
          }
        },
        "user_id": null
      },
      "429 ModelNotReadyException": {
        "error": {
          "code": 429,
          "message": "Amazon Bedrock is rate limited upstream; retry shortly",
          "metadata": {
            "error_type": "rate_limit_exceeded",
            "provider_code": 429,
            "provider_name": "Amazon Bedrock",
            "raw": "ModelNotReadyException: Model is not ready for inference."
          }
        },
        "user_id": null
      },
      "429 ThrottlingException": {
        "error": {
          "code": 429,
          "message": "Amazon Bedrock is rate limited upstream; retry shortly",
          "metadata": {
            "error_type": "rate_limit_exceeded",
            "provider_code": 429,
            "provider_name": "Amazon Bedrock",
            "raw": "ThrottlingException: Too many requests, please wait before trying again."
          }
        },
        "user_id": null
      },
      "500 InternalServerException": {
        "error": {
          "code": 502,
          "message": "Provider returned error",
          "metadata": {
            "error_type": "provider_unavailable",
            "provider_code": 500,
            "provider_name": "Amazon Bedrock",
            "raw": "InternalServerException: Internal server error"
          }
        },
        "user_id": null
      },
      "503 ServiceUnavailableException": {
        "error": {
          "code": 503,
          "message": "Amazon Bedrock is overloaded",
          "metadata": {
            "error_type": "provider_overloaded",
            "provider_code": 503,
            "provider_name": "Amazon Bedrock",
            "raw": "ServiceUnavailableException: Service unavailable."
          }
        },
        "user_id": null
      }
    }
    "#);
}

#[test]
fn error_bodies_in_other_shapes() {
    // `Message` capitalised and the type in the body (no header); a Retry-After kept.
    let err = upstream_error(
        400,
        None,
        br#"{"__type": "com.amazon.coral.availability#ThrottlingException", "Message": "Rate exceeded"}"#,
        "Amazon Bedrock",
        Some(3),
    );
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert_eq!(err.retry_after, Some(3));
    assert_eq!(
        err.metadata.as_ref().unwrap()["raw"],
        "ThrottlingException: Rate exceeded"
    );
    assert_eq!(err.metadata.as_ref().unwrap()["provider_code"], 400);
    // Not JSON: the start of the body is kept.
    let err = upstream_error(
        502,
        None,
        b"<html>Bad gateway</html>",
        "Amazon Bedrock",
        None,
    );
    assert_eq!(err.code, ErrorCode::UpstreamError);
    assert_eq!(
        err.metadata.as_ref().unwrap()["raw"],
        "<html>Bad gateway</html>"
    );
}

#[test]
fn stream_exception_and_error_frame() {
    let mut t = StreamTranslator::new(&SERVED, &plain_request());
    run_stream(
        &mut t,
        &[
            event("messageStart", json!({"role": "assistant"})),
            event(
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            ),
        ],
    );
    let err = t
        .on_message(&exception(
            "throttlingException",
            "Too many tokens, please wait before trying again.",
        ))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::RateLimited);
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
        "code": 429,
        "message": "Amazon Bedrock is rate limited upstream; retry shortly",
        "metadata": {
          "error_type": "rate_limit_exceeded",
          "provider_code": 429,
          "provider_name": "Amazon Bedrock",
          "raw": "throttlingException: Too many tokens, please wait before trying again."
        }
      },
      "id": "gen-1-abc",
      "model": "anthropic/claude-sonnet-4.5",
      "object": "chat.completion.chunk",
      "provider": "Amazon Bedrock"
    }
    "#);

    let mut table = Map::new();
    for (kind, message) in [
        ("modelStreamErrorException", "Model stream error"),
        ("internalServerException", "Internal error"),
        (
            "validationException",
            "Input is too long for requested model.",
        ),
        ("serviceUnavailableException", "Service unavailable"),
        ("modelTimeoutException", "Timed out"),
        ("newException", "Something new"),
    ] {
        let err = t.on_message(&exception(kind, message)).unwrap_err();
        table.insert(
            kind.into(),
            json!([err.code.status(), err.code.error_type(), err.message]),
        );
    }
    let error_message = Message::new(
        vec![
            Header::string(":message-type", "error"),
            Header::string(":error-code", "InternalFailure"),
            Header::string(":error-message", "The request processing has failed."),
        ],
        b"".to_vec(),
    );
    let err = t.on_message(&error_message).unwrap_err();
    table.insert(
        ":message-type error".into(),
        json!([
            err.code.status(),
            err.code.error_type(),
            err.metadata.unwrap()["raw"]
        ]),
    );
    assert_json_snapshot!(table, @r#"
    {
      ":message-type error": [
        502,
        "provider_unavailable",
        "InternalFailure: The request processing has failed."
      ],
      "internalServerException": [
        502,
        "provider_unavailable",
        "Provider returned error"
      ],
      "modelStreamErrorException": [
        502,
        "provider_unavailable",
        "Provider returned error"
      ],
      "modelTimeoutException": [
        504,
        "timeout",
        "Provider timed out"
      ],
      "newException": [
        502,
        "provider_unavailable",
        "Provider returned error"
      ],
      "serviceUnavailableException": [
        503,
        "provider_overloaded",
        "Amazon Bedrock is overloaded"
      ],
      "validationException": [
        400,
        "context_length_exceeded",
        "Input is too long for requested model."
      ]
    }
    "#);
}

// ---------------------------------------------------------------------------------------------
// A whole conversation: Claude thinks (signed), calls two tools in parallel, gets both results,
// and answers; non-streamed and streamed alike.

const SIGNATURE: &str = "EqQBCkgIARABGAIiQL2Uv7n9c2lnbmF0dXJlIG9mIHRoZSB0aGlua2luZw==";

fn turn1_request() -> Value {
    json!({
        "model": "anthropic/claude-sonnet-4.5",
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": "Weather in Paris and London?"}
        ],
        "tools": [weather_tool()],
        "tool_choice": "auto",
        "reasoning": {"max_tokens": 2048},
        "max_tokens": 4096
    })
}

fn turn1_response() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {
                "text": "Two cities, so two calls.", "signature": SIGNATURE}}},
            {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}},
            {"text": "Checking both cities."},
            {"toolUse": {"toolUseId": "tooluse_paris", "name": "get_weather",
                "input": {"city": "Paris", "unit": "c"}}},
            {"toolUse": {"toolUseId": "tooluse_london", "name": "get_weather",
                "input": {"city": "London", "unit": "c"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 420, "outputTokens": 130, "totalTokens": 550},
        "metrics": {"latencyMs": 2400}
    })
}

/// The same turn as ConverseStream sends it.
fn turn1_events() -> Vec<Message> {
    let delta = |index: u64, delta: Value| {
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": index, "delta": delta}),
        )
    };
    let stop = |index: u64| event("contentBlockStop", json!({"contentBlockIndex": index}));
    let tool_start = |index: u64, id: &str| {
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id,
                "name": "get_weather"}}}),
        )
    };
    vec![
        event("messageStart", json!({"role": "assistant"})),
        delta(0, json!({"reasoningContent": {"text": "Two cities,"}})),
        delta(0, json!({"reasoningContent": {"text": " so two calls."}})),
        delta(0, json!({"reasoningContent": {"signature": SIGNATURE}})),
        stop(0),
        delta(
            1,
            json!({"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}}),
        ),
        stop(1),
        delta(2, json!({"text": "Checking "})),
        delta(2, json!({"text": "both cities."})),
        stop(2),
        tool_start(3, "tooluse_paris"),
        delta(3, json!({"toolUse": {"input": "{\"city\": \"Paris\","}})),
        delta(3, json!({"toolUse": {"input": " \"unit\": \"c\"}"}})),
        stop(3),
        tool_start(4, "tooluse_london"),
        delta(
            4,
            json!({"toolUse": {"input": "{\"city\": \"London\", \"unit\": \"c\"}"}}),
        ),
        stop(4),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 420, "outputTokens": 130, "totalTokens": 550},
                "metrics": {"latencyMs": 2400}}),
        ),
    ]
}

#[test]
fn turn1_request_declares_tools_and_thinking() {
    assert_json_snapshot!(upstream(turn1_request()), @r#"
    {
      "additionalModelRequestFields": {
        "thinking": {
          "budget_tokens": 2048,
          "type": "enabled"
        }
      },
      "inferenceConfig": {
        "maxTokens": 4096
      },
      "messages": [
        {
          "content": [
            {
              "text": "Weather in Paris and London?"
            }
          ],
          "role": "user"
        }
      ],
      "system": [
        {
          "text": "You are a weather assistant."
        }
      ],
      "toolConfig": {
        "toolChoice": {
          "auto": {}
        },
        "tools": [
          {
            "toolSpec": {
              "description": "Current weather for a city",
              "inputSchema": {
                "json": {
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
              "name": "get_weather"
            }
          }
        ]
      }
    }
    "#);
}

#[test]
fn turn1_response_with_reasoning_and_parallel_calls() {
    let request = req(turn1_request());
    let (body, outcome) = parse(&turn1_response(), &request);
    assert_eq!(outcome.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(outcome.native_finish_reason.as_deref(), Some("tool_use"));
    let usage = outcome.usage.unwrap();
    assert_eq!(usage.prompt_tokens, 420);
    assert_eq!(usage.completion_tokens, 130);
    assert_eq!(generated_text_len(&body), {
        let message = &body["choices"][0]["message"];
        message["content"].as_str().unwrap().len()
            + message["reasoning"].as_str().unwrap().len()
            + message["tool_calls"].to_string().len()
    });
    assert_json_snapshot!(json_of(&render_response(body, &SERVED, &usage, &cost())), @r#"
    {
      "choices": [
        {
          "finish_reason": "tool_calls",
          "index": 0,
          "logprobs": null,
          "message": {
            "content": "Checking both cities.",
            "reasoning": "Two cities, so two calls.",
            "reasoning_details": [
              {
                "format": "anthropic-claude-v1",
                "index": 0,
                "signature": "EqQBCkgIARABGAIiQL2Uv7n9c2lnbmF0dXJlIG9mIHRoZSB0aGlua2luZw==",
                "text": "Two cities, so two calls.",
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
                  "arguments": "{\"city\":\"Paris\",\"unit\":\"c\"}",
                  "name": "get_weather"
                },
                "id": "tooluse_paris",
                "type": "function"
              },
              {
                "function": {
                  "arguments": "{\"city\":\"London\",\"unit\":\"c\"}",
                  "name": "get_weather"
                },
                "id": "tooluse_london",
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
      "provider": "Amazon Bedrock",
      "system_fingerprint": null,
      "usage": {
        "completion_tokens": 130,
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
        "prompt_tokens": 420,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 0
        },
        "total_tokens": 550
      }
    }
    "#);
}

#[test]
fn turn1_stream_reassembles_to_the_non_stream_message() {
    let request = req(turn1_request());
    let mut t = StreamTranslator::new(&SERVED, &request);
    let (frames, end) = run_stream(&mut t, &turn1_events());
    assert_eq!(end, End::Done);
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
          "reasoning": "Two cities,",
          "reasoning_details": [
            {
              "format": "anthropic-claude-v1",
              "index": 0,
              "text": "Two cities,",
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
          "reasoning": " so two calls.",
          "reasoning_details": [
            {
              "format": "anthropic-claude-v1",
              "index": 0,
              "text": " so two calls.",
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
              "signature": "EqQBCkgIARABGAIiQL2Uv7n9c2lnbmF0dXJlIG9mIHRoZSB0aGlua2luZw==",
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
              "data": "cmVkYWN0ZWQ=",
              "format": "anthropic-claude-v1",
              "index": 1,
              "type": "reasoning.encrypted"
            }
          ]
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "content": "Checking "
        },
        "finish_reason": null,
        "index": 0,
        "native_finish_reason": null
      },
      {
        "delta": {
          "content": "both cities."
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
              "id": "tooluse_paris",
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
                "arguments": "{\"city\": \"Paris\","
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
                "arguments": " \"unit\": \"c\"}"
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
              "id": "tooluse_london",
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
                "arguments": "{\"city\": \"London\", \"unit\": \"c\"}"
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
    let message = reassemble(&frames);
    let (body, outcome) = parse(&turn1_response(), &request);
    let mut expected = body["choices"][0]["message"].clone();
    // The non-streamed arguments are re-serialised; the streamed ones are Bedrock's own text.
    for (got, want) in message["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["tool_calls"].as_array_mut().unwrap())
    {
        let parsed = |v: &Value| {
            serde_json::from_str::<Value>(v["function"]["arguments"].as_str().unwrap()).unwrap()
        };
        assert_eq!(parsed(got), parsed(want));
        want["function"]["arguments"] = got["function"]["arguments"].clone();
    }
    assert_eq!(message, expected);
    assert_eq!(t.outcome(), &outcome);
    assert_eq!(t.generated_bytes(), generated(&message));
}

#[test]
fn stream_with_reasoning_excluded() {
    let mut request = turn1_request();
    request["reasoning"]["exclude"] = json!(true);
    let request = req(request);
    let mut t = StreamTranslator::new(&SERVED, &request);
    let (frames, _) = run_stream(&mut t, &turn1_events());
    let message = reassemble(&frames);
    assert!(message.get("reasoning").is_none());
    assert!(message.get("reasoning_details").is_none());
    // Still counted: it was generated.
    assert_eq!(
        t.generated_bytes(),
        generated(&message) + "Two cities, so two calls.".len()
    );
    let (body, _) = parse(&turn1_response(), &request);
    assert!(body["choices"][0]["message"]
        .get("reasoning_details")
        .is_none());
}

fn turn2_request(assistant: Value) -> Value {
    let mut request = turn1_request();
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(assistant);
    messages.push(json!({"role": "tool", "tool_call_id": "tooluse_paris",
        "content": "{\"temp\": 18, \"sky\": \"clear\"}"}));
    messages.push(json!({"role": "tool", "tool_call_id": "tooluse_london",
        "content": [{"type": "text", "text": "12C, rain"}]}));
    request
}

#[test]
fn turn2_request_passes_reasoning_back_before_the_calls() {
    let request = req(turn1_request());
    let (body, _) = parse(&turn1_response(), &request);
    let assistant = body["choices"][0]["message"].clone();
    let turn2 = upstream(turn2_request(assistant.clone()));
    assert_json_snapshot!(turn2["messages"], @r#"
    [
      {
        "content": [
          {
            "text": "Weather in Paris and London?"
          }
        ],
        "role": "user"
      },
      {
        "content": [
          {
            "reasoningContent": {
              "reasoningText": {
                "signature": "EqQBCkgIARABGAIiQL2Uv7n9c2lnbmF0dXJlIG9mIHRoZSB0aGlua2luZw==",
                "text": "Two cities, so two calls."
              }
            }
          },
          {
            "reasoningContent": {
              "redactedContent": "cmVkYWN0ZWQ="
            }
          },
          {
            "text": "Checking both cities."
          },
          {
            "toolUse": {
              "input": {
                "city": "Paris",
                "unit": "c"
              },
              "name": "get_weather",
              "toolUseId": "tooluse_paris"
            }
          },
          {
            "toolUse": {
              "input": {
                "city": "London",
                "unit": "c"
              },
              "name": "get_weather",
              "toolUseId": "tooluse_london"
            }
          }
        ],
        "role": "assistant"
      },
      {
        "content": [
          {
            "toolResult": {
              "content": [
                {
                  "json": {
                    "sky": "clear",
                    "temp": 18
                  }
                }
              ],
              "status": "success",
              "toolUseId": "tooluse_paris"
            }
          },
          {
            "toolResult": {
              "content": [
                {
                  "text": "12C, rain"
                }
              ],
              "status": "success",
              "toolUseId": "tooluse_london"
            }
          }
        ],
        "role": "user"
      }
    ]
    "#);
    // The streamed message passes back the same.
    let mut t = StreamTranslator::new(&SERVED, &request);
    let (frames, _) = run_stream(&mut t, &turn1_events());
    let streamed = upstream(turn2_request(reassemble(&frames)));
    assert_eq!(streamed["messages"], turn2["messages"]);
    // Other models get no reasoning back.
    let nova = upstream_for(NOVA2, turn2_request(assistant));
    assert!(!nova["messages"][1]["content"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b.get("reasoningContent").is_some()));
}

#[test]
fn turn2_answer() {
    let request = req(turn2_request(json!({"role": "assistant", "content": null})));
    let response = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"text": "Paris: 18°C and clear. London: 12°C with rain."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 120, "outputTokens": 20, "totalTokens": 640,
            "cacheReadInputTokens": 500, "cacheWriteInputTokens": 0}
    });
    let (body, outcome) = parse(&response, &request);
    let usage = outcome.usage.unwrap();
    assert_eq!(usage.prompt_tokens, 620);
    assert_eq!(usage.cached_tokens, 500);
    assert_json_snapshot!(json_of(&render_response(body, &SERVED, &usage, &cost())), @r#"
    {
      "choices": [
        {
          "finish_reason": "stop",
          "index": 0,
          "logprobs": null,
          "message": {
            "content": "Paris: 18°C and clear. London: 12°C with rain.",
            "role": "assistant"
          },
          "native_finish_reason": "end_turn"
        }
      ],
      "created": 1700000000,
      "id": "gen-1-abc",
      "model": "anthropic/claude-sonnet-4.5",
      "object": "chat.completion",
      "provider": "Amazon Bedrock",
      "system_fingerprint": null,
      "usage": {
        "completion_tokens": 20,
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
        "prompt_tokens": 620,
        "prompt_tokens_details": {
          "cache_write_tokens": 0,
          "cached_tokens": 500
        },
        "total_tokens": 640
      }
    }
    "#);
}
