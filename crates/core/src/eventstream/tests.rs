//! AWS's published event-stream test vectors, hand-built messages, split reads, corruption, and
//! randomised round trips and garbage (the decoder must never panic).

use super::*;

/// `{'foo':'bar'}`, the payload of AWS's vectors.
const FOO_BAR: &[u8] = b"{'foo':'bar'}";

// AWS's published vectors (aws-c-event-stream, also shipped with the SDKs' event-stream codecs).
const EMPTY_MESSAGE: &[u8] = &[0, 0, 0, 16, 0, 0, 0, 0, 5, 194, 72, 235, 125, 152, 200, 255];
const PAYLOAD_NO_HEADERS: &[u8] = &[
    0, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39,
    125, 195, 101, 57, 54,
];
const PAYLOAD_ONE_STR_HEADER: &[u8] = &[
    0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110, 116, 45, 116, 121,
    112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 106, 115, 111, 110,
    123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 141, 156, 8, 177,
];
const INT32_HEADER: &[u8] = &[
    0, 0, 0, 43, 0, 0, 0, 14, 52, 139, 236, 123, 8, 101, 118, 101, 110, 116, 45, 105, 100, 4, 0, 0,
    160, 12, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 211, 137, 2, 133,
];
const CORRUPTED_HEADERS: &[u8] = &[
    0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110, 116, 43, 116, 121,
    112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 106, 115, 111, 110,
    123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 141, 156, 8, 177,
];
const CORRUPTED_HEADER_LEN: &[u8] = &[
    0, 0, 0, 61, 0, 0, 1, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110, 116, 45, 116, 121,
    112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 106, 115, 111, 110,
    123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 141, 156, 8, 177,
];
const CORRUPTED_LENGTH: &[u8] = &[
    1, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39,
    125, 195, 101, 57, 54,
];
const CORRUPTED_PAYLOAD: &[u8] = &[
    0, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39,
    141, 195, 101, 57, 54,
];

fn decode_one(bytes: &[u8]) -> Result<Message, DecodeError> {
    match decode(bytes)? {
        Some((message, used)) => {
            assert_eq!(used, bytes.len());
            Ok(message)
        }
        None => panic!("a whole message was expected"),
    }
}

#[test]
fn crc32_check_value() {
    // The standard check value of CRC-32/ISO-HDLC.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn aws_positive_vectors_decode_and_re_encode() {
    let cases = [
        (EMPTY_MESSAGE, Message::default()),
        (PAYLOAD_NO_HEADERS, Message::new(vec![], FOO_BAR)),
        (
            PAYLOAD_ONE_STR_HEADER,
            Message::new(
                vec![Header::string("content-type", "application/json")],
                FOO_BAR,
            ),
        ),
        (
            INT32_HEADER,
            Message::new(
                vec![Header {
                    name: "event-id".into(),
                    value: HeaderValue::Int(0x0000_a00c),
                }],
                FOO_BAR,
            ),
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(decode_one(bytes).unwrap(), expected);
        assert_eq!(encode(&expected).unwrap(), bytes);
    }
}

#[test]
fn aws_negative_vectors_are_checksum_errors() {
    assert!(matches!(
        decode(CORRUPTED_HEADERS),
        Err(DecodeError::MessageChecksum { .. })
    ));
    assert!(matches!(
        decode(CORRUPTED_PAYLOAD),
        Err(DecodeError::MessageChecksum { .. })
    ));
    // A corrupted length is caught by the prelude checksum before it is trusted.
    assert!(matches!(
        decode(CORRUPTED_HEADER_LEN),
        Err(DecodeError::PreludeChecksum { .. })
    ));
    assert!(matches!(
        decode(CORRUPTED_LENGTH),
        Err(DecodeError::PreludeChecksum { .. })
    ));
}

/// Every header type, as a Bedrock event never has but the format allows.
fn all_types_message() -> Message {
    Message::new(
        vec![
            Header::string(":message-type", "event"),
            Header::string(":event-type", "contentBlockDelta"),
            Header::string(":content-type", "application/json"),
            Header {
                name: "yes".into(),
                value: HeaderValue::Bool(true),
            },
            Header {
                name: "no".into(),
                value: HeaderValue::Bool(false),
            },
            Header {
                name: "byte".into(),
                value: HeaderValue::Byte(-7),
            },
            Header {
                name: "short".into(),
                value: HeaderValue::Short(-300),
            },
            Header {
                name: "int".into(),
                value: HeaderValue::Int(70_000),
            },
            Header {
                name: "long".into(),
                value: HeaderValue::Long(-5_000_000_000),
            },
            Header {
                name: "bytes".into(),
                value: HeaderValue::Bytes(vec![0, 1, 255]),
            },
            Header {
                name: "ts".into(),
                value: HeaderValue::Timestamp(1_700_000_000_000),
            },
            Header {
                name: "uuid".into(),
                value: HeaderValue::Uuid(*b"0123456789abcdef"),
            },
        ],
        br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#.to_vec(),
    )
}

#[test]
fn hand_built_message_with_every_header_type() {
    let message = all_types_message();
    let bytes = encode(&message).unwrap();
    // Prelude by hand: total length, headers length, then the prelude's checksum.
    let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
    let headers = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(total, bytes.len());
    assert_eq!(16 + headers + message.payload.len(), total);
    assert_eq!(
        u32::from_be_bytes(bytes[8..12].try_into().unwrap()),
        crc32(&bytes[..8])
    );
    // The first header starts right after the prelude: length, name, type 7, u16 length, value.
    assert_eq!(bytes[12], 13);
    assert_eq!(&bytes[13..26], b":message-type");
    assert_eq!(&bytes[26..29], &[7, 0, 5]);
    assert_eq!(&bytes[29..34], b"event");

    let decoded = decode_one(&bytes).unwrap();
    assert_eq!(decoded, message);
    assert_eq!(decoded.message_type(), Some("event"));
    assert_eq!(decoded.event_type(), Some("contentBlockDelta"));
    assert_eq!(decoded.content_type(), Some("application/json"));
    assert_eq!(decoded.exception_type(), None);
    assert_eq!(decoded.header_str("int"), None, "not a string");
    assert_eq!(decoded.header("int"), Some(&HeaderValue::Int(70_000)));
    assert_eq!(
        decoded.payload(),
        br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#
    );
}

#[test]
fn truncated_input_needs_more() {
    let bytes = encode(&all_types_message()).unwrap();
    for cut in 0..bytes.len() {
        assert_eq!(decode(&bytes[..cut]), Ok(None), "cut at {cut}");
    }
    let mut decoder = Decoder::new();
    decoder.push(&bytes[..bytes.len() - 1]);
    assert_eq!(decoder.next_message(), Ok(None));
    assert_eq!(decoder.pending(), bytes.len() - 1);
    decoder.push(&bytes[bytes.len() - 1..]);
    assert_eq!(decoder.next_message(), Ok(Some(all_types_message())));
    assert_eq!(decoder.pending(), 0);
    assert_eq!(decoder.next_message(), Ok(None));
}

#[test]
fn split_at_every_byte_boundary() {
    let messages = [
        all_types_message(),
        Message::default(),
        Message::new(
            vec![Header::string(":event-type", "metadata")],
            b"{}".to_vec(),
        ),
    ];
    let stream: Vec<u8> = messages.iter().flat_map(|m| encode(m).unwrap()).collect();
    for split in 0..=stream.len() {
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        for part in [&stream[..split], &stream[split..]] {
            decoder.push(part);
            while let Some(message) = decoder.next_message().unwrap() {
                got.push(message);
            }
        }
        assert_eq!(got, messages, "split at {split}");
        assert_eq!(decoder.pending(), 0);
    }
    // And one byte at a time.
    let mut decoder = Decoder::new();
    let mut got = Vec::new();
    for byte in &stream {
        decoder.push(std::slice::from_ref(byte));
        while let Some(message) = decoder.next_message().unwrap() {
            got.push(message);
        }
    }
    assert_eq!(got, messages);
}

#[test]
fn corrupted_checksums_are_errors_and_the_decoder_stays_failed() {
    let good = encode(&all_types_message()).unwrap();
    let mut bad_message_crc = good.clone();
    let last = bad_message_crc.len() - 1;
    bad_message_crc[last] ^= 1;
    assert!(matches!(
        decode(&bad_message_crc),
        Err(DecodeError::MessageChecksum { .. })
    ));
    let mut bad_prelude_crc = good.clone();
    bad_prelude_crc[11] ^= 0x80;
    assert!(matches!(
        decode(&bad_prelude_crc),
        Err(DecodeError::PreludeChecksum { .. })
    ));
    // The prelude is checked as soon as it is whole, not when the message is.
    assert!(matches!(
        decode(&bad_prelude_crc[..12]),
        Err(DecodeError::PreludeChecksum { .. })
    ));

    let mut decoder = Decoder::new();
    decoder.push(&bad_message_crc);
    decoder.push(&good);
    let err = decoder.next_message().unwrap_err();
    assert!(matches!(err, DecodeError::MessageChecksum { .. }));
    // The framing is lost: later bytes are not trusted.
    decoder.push(&good);
    assert_eq!(decoder.next_message(), Err(err));
    assert_eq!(decoder.pending(), 0);
}

/// A prelude with a valid checksum for the given lengths.
fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut out = total.to_be_bytes().to_vec();
    out.extend_from_slice(&headers.to_be_bytes());
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A whole message around raw header bytes, both checksums valid.
fn with_raw_headers(headers: &[u8]) -> Vec<u8> {
    let mut out = prelude(16 + headers.len() as u32, headers.len() as u32);
    out.extend_from_slice(headers);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn sizes_are_bounded_before_anything_is_buffered() {
    assert_eq!(
        decode(&prelude(15, 0)),
        Err(DecodeError::MessageTooShort(15))
    );
    let too_long = MAX_MESSAGE_LEN as u32 + 1;
    assert_eq!(
        decode(&prelude(too_long, 0)),
        Err(DecodeError::MessageTooLong(too_long))
    );
    assert_eq!(
        decode(&prelude(u32::MAX, 0)),
        Err(DecodeError::MessageTooLong(u32::MAX))
    );
    let big_headers = MAX_HEADERS_LEN as u32 + 1;
    assert_eq!(
        decode(&prelude(1_000_000, big_headers)),
        Err(DecodeError::HeadersTooLong(big_headers))
    );
    assert_eq!(
        decode(&prelude(20, 5)),
        Err(DecodeError::HeadersOverflow {
            headers: 5,
            total: 20
        })
    );
    // The largest legal message is only waited for.
    assert_eq!(decode(&prelude(MAX_MESSAGE_LEN as u32, 0)), Ok(None));
}

#[test]
fn malformed_headers_are_errors() {
    let cases: [(&[u8], DecodeError); 6] = [
        (&[0, 7, 0, 0], DecodeError::EmptyHeaderName(12)),
        (&[5, b'a', b'b'], DecodeError::HeaderTruncated(12)),
        (&[1, b'a'], DecodeError::HeaderTruncated(12)),
        (&[1, b'a', 7, 0, 9, b'x'], DecodeError::HeaderTruncated(12)),
        (&[1, 0xFF, 0], DecodeError::HeaderNotUtf8(12)),
        (
            &[1, b'a', 0, 1, b'b', 10],
            DecodeError::UnknownHeaderType {
                offset: 15,
                value_type: 10,
            },
        ),
    ];
    for (headers, expected) in cases {
        assert_eq!(decode(&with_raw_headers(headers)), Err(expected));
    }
    assert_eq!(
        decode(&with_raw_headers(&[1, b'a', 7, 0, 2, 0xC3, 0x28])),
        Err(DecodeError::HeaderNotUtf8(12))
    );
}

#[test]
fn encode_rejects_what_the_format_cannot_hold() {
    let name = |n: &str| Message::new(vec![Header::string(n, "v")], vec![]);
    assert!(matches!(encode(&name("")), Err(EncodeError::HeaderName(_))));
    assert!(matches!(
        encode(&name(&"n".repeat(256))),
        Err(EncodeError::HeaderName(_))
    ));
    assert!(encode(&name(&"n".repeat(255))).is_ok());
    let long_value = Message::new(vec![Header::string("a", &"v".repeat(65_536))], vec![]);
    assert!(matches!(
        encode(&long_value),
        Err(EncodeError::HeaderValue(_))
    ));
    let headers = (0..3)
        .map(|i| Header::string(&format!("h{i}"), &"v".repeat(60_000)))
        .collect();
    assert!(matches!(
        encode(&Message::new(headers, vec![])),
        Err(EncodeError::HeadersTooLong(_))
    ));
    let big = Message::new(vec![], vec![0u8; MAX_MESSAGE_LEN]);
    assert!(matches!(encode(&big), Err(EncodeError::MessageTooLong(_))));
}

/// xorshift64*: a deterministic stream of pseudo-random numbers for the randomised tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn text(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| ['a', 'Z', ':', '-', 'é', '語', ' '][self.below(7)])
            .collect()
    }
}

fn random_message(rng: &mut Rng) -> Message {
    let headers = (0..rng.below(6))
        .map(|_| {
            let name_len = 1 + rng.below(20);
            let name = rng.text(name_len);
            let value = match rng.below(10) {
                0 => HeaderValue::Bool(true),
                1 => HeaderValue::Bool(false),
                2 => HeaderValue::Byte(rng.next() as i8),
                3 => HeaderValue::Short(rng.next() as i16),
                4 => HeaderValue::Int(rng.next() as i32),
                5 => HeaderValue::Long(rng.next() as i64),
                6 => {
                    let n = rng.below(40);
                    HeaderValue::Bytes(rng.bytes(n))
                }
                7 => {
                    let n = rng.below(40);
                    HeaderValue::String(rng.text(n))
                }
                8 => HeaderValue::Timestamp(rng.next() as i64),
                _ => {
                    let mut uuid = [0u8; 16];
                    uuid.copy_from_slice(&rng.bytes(16));
                    HeaderValue::Uuid(uuid)
                }
            };
            Header { name, value }
        })
        .collect();
    let payload_len = rng.below(200);
    Message::new(headers, rng.bytes(payload_len))
}

#[test]
fn random_messages_round_trip() {
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..500 {
        let messages: Vec<Message> = (0..1 + rng.below(4))
            .map(|_| random_message(&mut rng))
            .collect();
        let stream: Vec<u8> = messages.iter().flat_map(|m| encode(m).unwrap()).collect();
        // Pushed in random pieces.
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let n = 1 + rng.below(rest.len().min(64));
            decoder.push(&rest[..n]);
            rest = &rest[n..];
            while let Some(message) = decoder.next_message().unwrap() {
                got.push(message);
            }
        }
        assert_eq!(got, messages);
    }
}

#[test]
fn garbage_and_mutations_never_panic() {
    let mut rng = Rng(0xF022_0002);
    for round in 0..3_000 {
        let mut bytes = if round % 3 == 0 {
            let n = rng.below(100);
            rng.bytes(n)
        } else {
            encode(&random_message(&mut rng)).unwrap()
        };
        if !bytes.is_empty() {
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        if round % 2 == 0 {
            // Valid checksums around mutated contents reach the header parser.
            if bytes.len() >= 16 {
                let total = bytes.len() as u32;
                let headers = (rng.below(bytes.len() - 15)) as u32;
                let mut fixed = prelude(total, headers);
                fixed.extend_from_slice(&bytes[12..bytes.len() - 4]);
                let crc = crc32(&fixed);
                fixed.extend_from_slice(&crc.to_be_bytes());
                bytes = fixed;
            }
        }
        let _ = decode(&bytes);
        let mut decoder = Decoder::new();
        for chunk in bytes.chunks(1 + rng.below(8)) {
            decoder.push(chunk);
            while let Ok(Some(_)) = decoder.next_message() {}
        }
    }
}
