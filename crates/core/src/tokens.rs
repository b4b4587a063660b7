//! Token estimates for reservations and for streams cut short, when no upstream count exists.
//!
//! Upstream usage is the truth whenever the provider reports it. This estimate (about four bytes of
//! text per token, the usual rule for BPE tokenizers on English) is used only to reserve credit before
//! the call and to charge a stream the client cancelled before the provider's usage arrived.

use serde_json::Value;

/// Tokens in a piece of text, rounded up.
pub fn estimate_text(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Tokens in a chat prompt: message texts plus a small per-message overhead; images count a flat 85.
pub fn estimate_messages(messages: &[Value]) -> u64 {
    const PER_MESSAGE: u64 = 4;
    const PER_IMAGE: u64 = 85;
    let mut total = 3;
    for message in messages {
        total += PER_MESSAGE;
        match message.get("content") {
            Some(Value::String(s)) => total += estimate_text(s),
            Some(Value::Array(parts)) => {
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            total += part
                                .get("text")
                                .and_then(Value::as_str)
                                .map_or(0, estimate_text)
                        }
                        Some("image_url") => total += PER_IMAGE,
                        _ => total += estimate_text(&part.to_string()),
                    }
                }
            }
            _ => {}
        }
        if let Some(calls) = message.get("tool_calls") {
            total += estimate_text(&calls.to_string());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn estimates_are_rounded_up_and_count_overheads() {
        assert_eq!(estimate_text(""), 0);
        assert_eq!(estimate_text("abcde"), 2);
        let messages = [json!({"role": "user", "content": "abcdefgh"})];
        assert_eq!(estimate_messages(&messages), 3 + 4 + 2);
        let parts = [
            json!({"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}]}),
        ];
        assert_eq!(estimate_messages(&parts), 3 + 4 + 1 + 85);
    }
}
