//! The AWS event-stream decoder on arbitrary bytes, pushed in arbitrary pieces: it must never
//! panic, the split must not change what it yields, and every message it accepts must encode
//! back to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::eventstream::{decode, encode, Decoder, Message};

/// Messages until the input runs out or the first error.
fn messages(pieces: &[&[u8]]) -> (Vec<Message>, bool) {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => out.push(message),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split) % (rest.len() + 1);
    let whole = messages(&[rest]);
    let split = messages(&[&rest[..at], &rest[at..]]);
    assert_eq!(whole, split, "splitting at {at} changed the messages");

    // Accepted messages round-trip byte for byte.
    let mut offset = 0;
    while let Ok(Some((message, used))) = decode(&rest[offset..]) {
        let encoded = encode(&message).expect("a decoded message encodes");
        assert_eq!(encoded, &rest[offset..offset + used]);
        offset += used;
    }
});
