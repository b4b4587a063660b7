//! The simulator's fixed tokenizer, shared by every protocol so usage numbers agree.
//!
//! A token is either a maximal run of ASCII alphanumeric characters (`hello`, `42`, `gpt4o`)
//! or any single other non-whitespace character (`{`, `"`, `é`, `中`). Whitespace is free: it
//! never forms or splits into tokens of its own. So `Hello, world!` is 4 tokens
//! (`Hello` `,` `world` `!`) and `{"a":1}` is 7.
//!
//! The rule is deliberately simple and stable so that tests (and users) can compute the expected
//! usage by hand; it is not meant to match any real model's tokenizer.

/// Number of tokens in `text`.
pub fn count(text: &str) -> u64 {
    let mut tokens = 0;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if !in_word {
                tokens += 1;
                in_word = true;
            }
        } else {
            in_word = false;
            if !c.is_whitespace() {
                tokens += 1;
            }
        }
    }
    tokens
}

/// Splits `text` into consecutive pieces of exactly one token each (leading whitespace rides
/// with the token after it, trailing whitespace with the last piece), returned as the byte
/// offset where each piece ends. Concatenating the pieces gives back `text`; streaming one piece
/// per chunk therefore sends exactly `count(text)` content chunks.
pub fn piece_ends(text: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    // Byte offset where the token currently being scanned ends, if any.
    let mut open: Option<usize> = None;
    let mut prev_word = false;
    for (i, c) in text.char_indices() {
        let word = c.is_ascii_alphanumeric();
        if word && prev_word {
            open = Some(i + c.len_utf8());
            continue;
        }
        if c.is_whitespace() {
            prev_word = false;
            continue;
        }
        // A new token starts here: close the previous one before its following whitespace.
        if let Some(end) = open.take() {
            ends.push(end);
        }
        open = Some(i + c.len_utf8());
        prev_word = word;
    }
    // The last token takes any trailing whitespace; all-whitespace text is one token-less piece.
    if !text.is_empty() {
        ends.push(text.len());
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        let mut start = 0;
        piece_ends(text)
            .into_iter()
            .map(|end| {
                let piece = &text[start..end];
                start = end;
                piece
            })
            .collect()
    }

    #[test]
    fn counts_words_and_symbols() {
        assert_eq!(count(""), 0);
        assert_eq!(count("   \n"), 0);
        assert_eq!(count("Hello, world!"), 4);
        assert_eq!(count(r#"{"a":1}"#), 7);
        assert_eq!(count("héllo"), 3);
        assert_eq!(count("中文"), 2);
        assert_eq!(count("gpt4o mini"), 2);
    }

    #[test]
    fn pieces_cover_text_one_token_each() {
        for text in [
            "alpha beta gamma",
            " lead",
            "trail  ",
            r#"{"a": [1, 2]}"#,
            "x",
            "  ",
            "é中a1",
        ] {
            let parts = pieces(text);
            assert_eq!(parts.concat(), text);
            if count(text) > 0 {
                assert_eq!(parts.len() as u64, count(text), "{text:?}");
                assert!(parts.iter().all(|p| count(p) == 1), "{parts:?}");
            }
        }
        assert_eq!(pieces("alpha beta"), vec!["alpha", " beta"]);
        assert!(pieces("").is_empty());
    }
}
