//! Streaming: SSE relay, usage with cost in the last chunk, keep-alives, cut streams, disconnects.

use crate::harness::{nanos, user, Harness};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

/// Reads a whole SSE body into its `data:` payloads and its comment lines.
async fn read_sse(response: reqwest::Response) -> (Vec<String>, Vec<String>) {
    let text = response.text().await.unwrap();
    let mut data = Vec::new();
    let mut comments = Vec::new();
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.to_owned());
        } else if let Some(c) = line.strip_prefix(':') {
            comments.push(c.trim().to_owned());
        }
    }
    (data, comments)
}

#[tokio::test]
async fn stream_relays_chunks_and_ends_with_usage_then_done() {
    let h = Harness::start().await;
    let response = h.chat(json!({"model": "openai/gpt-4o-mini", "messages": user("Stream please"), "stream": true})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let id = crate::harness::generation_id(&response);
    let (data, _) = read_sse(response).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let mut content = String::new();
    for chunk in &chunks {
        assert_eq!(chunk["id"], id.as_str());
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "openai/gpt-4o-mini");
        assert_eq!(chunk["provider"], "OpenAI");
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            content.push_str(text);
        }
    }
    assert!(!content.is_empty());
    // Exactly one usage chunk, the last, with no choices.
    let with_usage: Vec<&Value> = chunks.iter().filter(|c| c.get("usage").is_some()).collect();
    assert_eq!(with_usage.len(), 1);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    let usage = &last["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    let want = nanos(p, c, 150_000, 600_000);
    assert_eq!((usage["cost"].as_f64().unwrap() * 1e9).round() as i64, want);
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "stop");

    let record = h.generation(&id).await;
    assert_eq!(record["streamed"], true);
    assert_eq!(record["cancelled"], false);
    assert_eq!(record["tokens_completion"].as_u64().unwrap(), c);
    assert_eq!(h.stored_usage_nanos(want).await, want);
    // We asked the upstream for usage even though the client did not.
    assert_eq!(
        h.sim_requests("openai").await[0]["body"]["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn keepalive_comments_while_waiting_for_the_first_token() {
    let h = Harness::start().await;
    h.sim_post("openai", "behaviour", json!({"ttft_ms": 500}))
        .await;
    let response = h
        .chat(json!({"model": "openai/gpt-4o-mini", "messages": user("slow"), "stream": true}))
        .await;
    let (data, comments) = read_sse(response).await;
    assert!(
        comments.iter().any(|c| c == "OPENROUTER PROCESSING"),
        "{comments:?}"
    );
    assert_eq!(data.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn upstream_cut_mid_stream_ends_with_the_error_chunk() {
    let h = Harness::start().await;
    h.sim_post(
        "openai",
        "faults",
        json!([{"kind": "cut_after_chunks", "n": 3}]),
    )
    .await;
    let response = h
        .chat(json!({"model": "openai/gpt-4o-mini", "messages": user("cut"), "stream": true}))
        .await;
    assert_eq!(response.status(), 200);
    let id = crate::harness::generation_id(&response);
    let (data, _) = read_sse(response).await;
    assert_ne!(data.last().unwrap(), "[DONE]");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], 502);
    assert_eq!(last["error"]["metadata"]["provider_name"], "OpenAI");
    assert_eq!(last["choices"][0]["finish_reason"], "error");
    let record = h.generation(&id).await;
    assert_eq!(record["finish_reason"], "error");
}

#[tokio::test]
async fn stream_failure_before_first_byte_fails_over() {
    let h = Harness::start().await;
    h.sim_post("deepinfra", "faults", json!([{"kind": "reset"}]))
        .await;
    let response = h
        .chat(json!({"model": "meta-llama/llama-3.3-70b-instruct", "messages": user("hi"), "stream": true, "provider": {"sort": "price"}}))
        .await;
    assert_eq!(response.status(), 200);
    let (data, _) = read_sse(response).await;
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first["provider"], "Groq");
    assert_eq!(data.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn client_disconnect_is_charged_for_what_was_generated() {
    let h = Harness::start().await;
    h.sim_post(
        "openai",
        "behaviour",
        json!({"tokens_per_s": 50, "output_tokens": 400}),
    )
    .await;
    let response = h
        .chat(
            json!({"model": "openai/gpt-4o-mini", "messages": user("long story"), "stream": true}),
        )
        .await;
    let id = crate::harness::generation_id(&response);
    let mut body = response.bytes_stream();
    let mut seen = 0;
    while seen < 5 {
        let chunk = body.next().await.unwrap().unwrap();
        seen += String::from_utf8_lossy(&chunk).matches("data: ").count();
    }
    drop(body);

    let record = h.generation(&id).await;
    assert_eq!(record["cancelled"], true);
    assert_eq!(record["streamed"], true);
    let completion = record["tokens_completion"].as_u64().unwrap();
    assert!(
        completion > 0 && completion < 400,
        "completion tokens {completion}"
    );
    let cost = (record["total_cost"].as_f64().unwrap() * 1e9).round() as i64;
    assert!(cost > 0);
    assert_eq!(h.stored_usage_nanos(cost).await, cost);
    // The upstream connection was dropped too: nothing keeps generating for a client that left.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn graceful_shutdown_lets_open_streams_finish() {
    let h = Harness::start().await;
    h.sim_post(
        "openai",
        "behaviour",
        json!({"tokens_per_s": 100, "output_tokens": 30}),
    )
    .await;
    let response = h
        .chat(json!({"model": "openai/gpt-4o-mini", "messages": user("finish me"), "stream": true}))
        .await;
    assert_eq!(response.status(), 200);
    let id = crate::harness::generation_id(&response);
    h.shutdown();
    let (data, _) = read_sse(response).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    // The record reached the database before the gateway stopped.
    let mut stored = None;
    for _ in 0..100 {
        stored = h.store.generation(&id, &h.account).await.unwrap();
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stored = stored.expect("record written on shutdown");
    assert!(!stored.cancelled);
    assert_eq!(stored.usage.completion_tokens, 30);
}
