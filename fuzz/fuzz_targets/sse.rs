//! The SSE parser on arbitrary bytes, pushed in arbitrary pieces: it must never panic, and
//! what it yields must not depend on how the input was split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::sse::{SseItem, SseParser};

fn parse(pieces: &[&[u8]]) -> Vec<SseItem> {
    let mut parser = SseParser::new();
    let mut items = Vec::new();
    for piece in pieces {
        parser.push(piece);
        while let Some(item) = parser.next_item() {
            items.push(item);
        }
    }
    items.extend(parser.finish());
    items
}

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where to split the rest.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split) % (rest.len() + 1);
    let whole = parse(&[rest]);
    let split = parse(&[&rest[..at], &rest[at..]]);
    assert_eq!(whole, split, "splitting at {at} changed the events");
});
