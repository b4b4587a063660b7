//! The native upstream protocols end to end with OpenAI-shaped requests: Google Gemini, Cohere v2
//! and Azure OpenAI, each served by its simulator module; tools over two turns, streamed and
//! not, and costs equal to tokens × the catalog's prices.

use crate::harness::{user, Harness, Options};
use serde_json::{json, Value};

/// A protocol under test: the model, the provider that must serve it, and its prices in
/// nano-dollars per token (prompt, completion).
pub(crate) struct Case {
    pub(crate) model: &'static str,
    pub(crate) provider: &'static str,
    pub(crate) display: &'static str,
    pub(crate) prices: (u64, u64),
}

const CASES: [Case; 3] = [
    Case {
        model: "google/gemini-2.0-flash-001",
        provider: "google-ai-studio",
        display: "Google AI Studio",
        prices: (100, 400),
    },
    Case {
        model: "cohere/command-a",
        provider: "cohere",
        display: "Cohere",
        prices: (2_500, 10_000),
    },
    Case {
        model: "openai/gpt-4o-mini",
        provider: "azure",
        display: "Azure",
        prices: (150, 600),
    },
];

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    ])
}

fn request(case: &Case, extra: Value) -> Value {
    let mut body =
        json!({"model": case.model, "provider": {"only": [case.provider]}, "max_tokens": 64});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The usage's cost equals its tokens at the endpoint's prices, to the nano-dollar.
fn check_cost(case: &Case, usage: &Value) {
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!(prompt > 0 && completion > 0, "{}: {usage}", case.model);
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"], 0,
        "{usage}"
    );
    let want = prompt * case.prices.0 + completion * case.prices.1;
    let got = (usage["cost"].as_f64().unwrap() * 1e9).round() as u64;
    assert_eq!(got, want, "{} via {}: {usage}", case.model, case.provider);
}

pub(crate) fn data(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn tools_over_two_turns_and_exact_costs_for_each_native_protocol() {
    let h = Harness::with(Options {
        native: true,
        ..Options::default()
    })
    .await;
    for case in &CASES {
        tools_over_two_turns(&h, case).await;
    }
}

/// Parallel tool calls, then the results back and a text answer; costs exact both times.
pub(crate) async fn tools_over_two_turns(h: &Harness, case: &Case) {
    {
        let first = user("Use get_weather and get_time for Paris");
        let response = h
            .chat(request(case, json!({"tools": tools(), "messages": first})))
            .await;
        assert_eq!(response.status(), 200, "{}", case.provider);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["provider"], case.display, "{body}");
        let message = &body["choices"][0]["message"];
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
        let calls = message["tool_calls"].as_array().unwrap();
        let names: Vec<&str> = calls
            .iter()
            .map(|c| c["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["get_weather", "get_time"],
            "{}: {body}",
            case.provider
        );
        for call in calls {
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            assert!(args["city"].is_string(), "{call}");
        }
        check_cost(case, &body["usage"]);

        // Turn two: the tool results go back, the model answers in text.
        let mut second = first.as_array().unwrap().clone();
        second.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
        for call in calls {
            second
                .push(json!({"role": "tool", "tool_call_id": call["id"], "content": "sunny, 21C"}));
        }
        let response = h
            .chat(request(case, json!({"tools": tools(), "messages": second})))
            .await;
        assert_eq!(response.status(), 200, "{}", case.provider);
        let body: Value = response.json().await.unwrap();
        let text = body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("");
        assert!(!text.is_empty(), "{}: {body}", case.provider);
        check_cost(case, &body["usage"]);
    }
}

#[tokio::test]
async fn streamed_text_and_parallel_tool_calls_for_each_native_protocol() {
    let h = Harness::with(Options {
        native: true,
        ..Options::default()
    })
    .await;
    for case in &CASES {
        streamed_text_and_tool_calls(&h, case).await;
    }
}

/// A streamed story with its usage chunk priced exactly, then streamed parallel tool calls
/// whose argument pieces join into whole JSON.
pub(crate) async fn streamed_text_and_tool_calls(h: &Harness, case: &Case) {
    {
        let response = h
            .chat(request(
                case,
                json!({"stream": true, "messages": user("Tell me a story")}),
            ))
            .await;
        assert_eq!(response.status(), 200, "{}", case.provider);
        let chunks = data(&response.text().await.unwrap());
        assert_eq!(
            chunks[0]["choices"][0]["delta"]["role"], "assistant",
            "{}",
            case.provider
        );
        let text: String = chunks
            .iter()
            .flat_map(|c| c["choices"].as_array().unwrap().clone())
            .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
            .collect();
        assert!(!text.is_empty(), "{}", case.provider);
        let last = chunks.last().unwrap();
        assert!(last["choices"].as_array().unwrap().is_empty(), "{last}");
        check_cost(case, &last["usage"]);

        let response = h
            .chat(request(
                case,
                json!({"stream": true, "tools": tools(),
                    "messages": user("Use get_weather and get_time for Oslo")}),
            ))
            .await;
        let chunks = data(&response.text().await.unwrap());
        let mut calls: Vec<(String, String)> = Vec::new();
        let mut finish = None;
        for c in &chunks {
            for choice in c["choices"].as_array().unwrap() {
                if let Some(f) = choice["finish_reason"].as_str() {
                    finish = Some(f.to_owned());
                }
                for call in choice["delta"]["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let i = call["index"].as_u64().unwrap() as usize;
                    if calls.len() <= i {
                        calls.resize(i + 1, Default::default());
                    }
                    if let Some(name) = call["function"]["name"].as_str() {
                        calls[i].0 = name.to_owned();
                    }
                    calls[i].1 += call["function"]["arguments"].as_str().unwrap_or("");
                }
            }
        }
        assert_eq!(finish.as_deref(), Some("tool_calls"), "{}", case.provider);
        let names: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, ["get_weather", "get_time"], "{}", case.provider);
        for (name, arguments) in &calls {
            let args: Value = serde_json::from_str(arguments)
                .unwrap_or_else(|e| panic!("{}: {name}: {arguments}: {e}", case.provider));
            assert!(args["city"].is_string());
        }
    }
}

#[tokio::test]
async fn native_requests_reach_the_simulator_in_each_providers_format() {
    let h = Harness::with(Options {
        native: true,
        ..Options::default()
    })
    .await;
    for case in &CASES {
        let response = h
            .chat(request(
                case,
                json!({"messages": [
                {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}),
            ))
            .await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{}: {text}", case.provider);
    }
    let gemini = &h.sim_requests("google-ai-studio").await[0];
    assert_eq!(
        gemini["path"],
        "/google-ai-studio/v1beta/models/gemini-2.0-flash-001:generateContent"
    );
    assert_eq!(gemini["headers"]["x-goog-api-key"], "sim-key");
    assert!(gemini["body"]["systemInstruction"]
        .to_string()
        .contains("Be brief."));
    let cohere = &h.sim_requests("cohere").await[0];
    assert_eq!(cohere["path"], "/cohere/v2/chat");
    assert_eq!(cohere["headers"]["authorization"], "Bearer sim-key");
    assert_eq!(cohere["body"]["model"], "command-a-03-2025");
    let azure = &h.sim_requests("azure").await[0];
    assert!(
        azure["path"]
            .as_str()
            .unwrap()
            .starts_with("/azure/openai/deployments/gpt-4o-mini/chat/completions?api-version="),
        "{azure}"
    );
    assert_eq!(azure["headers"]["api-key"], "sim-key");
    assert!(azure["headers"].get("authorization").is_none());
}
