//! Tests of request validation: each bad input names what to fix.

use super::*;

fn check_err(body: &str, want: &str) {
    let err = ChatRequest::parse(body.as_bytes()).unwrap_err();
    assert_eq!(err.code.status(), 400);
    assert!(
        err.message.contains(want),
        "`{}` does not contain `{want}`",
        err.message
    );
}

#[test]
fn rejects_bad_requests_with_clear_messages() {
    check_err("{not json", "not valid JSON");
    check_err("[1]", "JSON object");
    check_err(
        r#"{"messages":[{"role":"user","content":"hi"}]}"#,
        "`model` is required",
    );
    check_err(r#"{"model":"a/b"}"#, "`messages` is required");
    check_err(r#"{"model":"a/b","messages":[]}"#, "must not be empty");
    check_err(
        r#"{"model":"a/b","messages":[{"role":"robot","content":"x"}]}"#,
        "messages[0].role",
    );
    check_err(
        r#"{"model":"a/b","messages":[{"role":"user"}]}"#,
        "messages[0].content",
    );
    check_err(
        r#"{"model":"a/b","messages":[{"role":"tool","content":"x"}]}"#,
        "tool_call_id",
    );
    check_err(
        r#"{"model":"a/b","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
        "`stream`",
    );
    check_err(
        r#"{"model":"a/b","messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#,
        "`max_tokens`",
    );
    check_err(
        r#"{"model":"a/b","messages":[{"role":"user","content":"x"}],"temperature":3}"#,
        "`temperature`",
    );
    check_err(
        r#"{"model":"a/b","models":"c/d","messages":[{"role":"user","content":"x"}]}"#,
        "`models`",
    );
}

#[test]
fn accepts_openrouter_requests() {
    let req = ChatRequest::parse(
        br#"{"model":"a/b","models":["a/b","c/d"],"messages":[{"role":"system","content":"s"},
        {"role":"user","content":[{"type":"text","text":"hello"}]},
        {"role":"assistant","content":null,"tool_calls":[]},
        {"role":"tool","tool_call_id":"1","content":"r"}],
        "stream":true,"max_tokens":100,"max_completion_tokens":50,"provider":{"order":["x"]}}"#,
    )
    .unwrap();
    assert_eq!(req.models(), ["a/b", "c/d"]);
    assert!(req.stream());
    assert_eq!(req.max_output(), Some(50));
    assert!(req.prompt_estimate() > 0);
}

#[test]
fn models_alone_selects_the_first() {
    let req =
        ChatRequest::parse(br#"{"models":["c/d"],"messages":[{"role":"user","content":"x"}]}"#)
            .unwrap();
    assert_eq!(req.models(), ["c/d"]);
}
