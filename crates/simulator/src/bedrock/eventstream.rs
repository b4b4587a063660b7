//! The `application/vnd.amazon.eventstream` framing ConverseStream answers in, written from
//! AWS's event stream encoding documentation: each message is a prelude (total length and
//! headers length, both `u32` big-endian, then the prelude's CRC32), the headers, the payload,
//! and a CRC32 of everything before it. A header is its name's length (`u8`), the name, a value
//! type, and the value; only type 7 (a string: `u16` big-endian length, then UTF-8) is written,
//! since Bedrock sends nothing else. The CRC is the IEEE/GZIP CRC32, table-driven.
//!
//! Decoding is left out: the simulator only sends event streams.

/// Bytes of a message besides its headers and payload: prelude (8), its CRC (4), message CRC (4).
const OVERHEAD: usize = 16;

/// Header value type 7: a UTF-8 string with a `u16` length.
const STRING: u8 = 7;

/// The reflected IEEE polynomial (as in gzip and zlib).
const POLYNOMIAL: u32 = 0xEDB8_8320;

const TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                POLYNOMIAL ^ (crc >> 1)
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC32 (IEEE) of `bytes`.
pub const fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut i = 0;
    while i < bytes.len() {
        crc = TABLE[((crc ^ bytes[i] as u32) & 0xff) as usize] ^ (crc >> 8);
        i += 1;
    }
    !crc
}

/// Encoded size of string headers.
const fn headers_len(headers: &[(&str, &str)]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < headers.len() {
        len += 1 + headers[i].0.len() + 1 + 2 + headers[i].1.len();
        i += 1;
    }
    len
}

/// One message with string `headers` and `payload`.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let headers_len = headers_len(headers);
    let total = OVERHEAD + headers_len + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    out.extend_from_slice(&crc32(&out[..8]).to_be_bytes());
    for (name, value) in headers {
        // Header names and values are ASCII constants or short JSON-free strings; the length
        // fields bound them at 255 and 65535 bytes.
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(STRING);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An `event` message: `:event-type`, `:content-type: application/json`, `:message-type`.
pub fn event(event_type: &str, json: &[u8]) -> Vec<u8> {
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        json,
    )
}

/// An `exception` message carrying `{"message": ...}` for a modelled exception.
pub fn exception(exception_type: &str, json: &[u8]) -> Vec<u8> {
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json,
    )
}

/// The headers of the `malformed` fault's one event.
const MALFORMED_HEADERS: &[(&str, &str)] = &[
    (":event-type", "messageStart"),
    (":content-type", "application/json"),
    (":message-type", "event"),
];
const MALFORMED_PAYLOAD: &[u8] = b"{not json";
const MALFORMED_LEN: usize = OVERHEAD + headers_len(MALFORMED_HEADERS) + MALFORMED_PAYLOAD.len();

/// A correctly framed `messageStart` event whose payload is not JSON (the `malformed` fault).
pub const MALFORMED: [u8; MALFORMED_LEN] = const_message(MALFORMED_HEADERS, MALFORMED_PAYLOAD);

/// [`message`] at compile time, into an array of exactly the message's length.
const fn const_message<const N: usize>(headers: &[(&str, &str)], payload: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let headers_len = headers_len(headers);
    put_u32(&mut out, 0, N as u32);
    put_u32(&mut out, 4, headers_len as u32);
    let (prelude, _) = out.split_at(8);
    let prelude_crc = crc32(prelude);
    put_u32(&mut out, 8, prelude_crc);
    let mut at = 12;
    let mut h = 0;
    while h < headers.len() {
        let name = headers[h].0.as_bytes();
        let value = headers[h].1.as_bytes();
        out[at] = name.len() as u8;
        at = copy(&mut out, at + 1, name);
        out[at] = STRING;
        out[at + 1] = (value.len() >> 8) as u8;
        out[at + 2] = value.len() as u8;
        at = copy(&mut out, at + 3, value);
        h += 1;
    }
    at = copy(&mut out, at, payload);
    let (body, _) = out.split_at(at);
    let crc = crc32(body);
    put_u32(&mut out, at, crc);
    out
}

const fn put_u32<const N: usize>(out: &mut [u8; N], at: usize, value: u32) {
    let bytes = value.to_be_bytes();
    let mut i = 0;
    while i < 4 {
        out[at + i] = bytes[i];
        i += 1;
    }
}

const fn copy<const N: usize>(out: &mut [u8; N], at: usize, bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
    at + bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn message_layout_and_checksums() {
        let bytes = event("messageStart", br#"{"role":"assistant"}"#);
        let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, bytes.len());
        assert_eq!(
            u32::from_be_bytes(bytes[8..12].try_into().unwrap()),
            crc32(&bytes[..8])
        );
        assert_eq!(
            u32::from_be_bytes(bytes[total - 4..].try_into().unwrap()),
            crc32(&bytes[..total - 4])
        );
        // The first header: name length, name, type 7, value length, value.
        assert_eq!(bytes[12], 11);
        assert_eq!(&bytes[13..24], b":event-type");
        assert_eq!(bytes[24], 7);
        assert_eq!(&bytes[25..27], &[0, 12]);
        assert_eq!(&bytes[27..39], b"messageStart");
        assert_eq!(&bytes[12 + headers..total - 4], br#"{"role":"assistant"}"#);
    }

    #[test]
    fn the_compile_time_message_equals_the_runtime_one() {
        assert_eq!(
            MALFORMED.to_vec(),
            message(MALFORMED_HEADERS, MALFORMED_PAYLOAD)
        );
    }
}
