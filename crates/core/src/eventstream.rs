//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), which Bedrock's
//! streaming operations (`ConverseStream`, `InvokeModelWithResponseStream`) answer in.
//!
//! A message is a 12-byte prelude (total length and headers length, both `u32` big-endian, then
//! the CRC-32 of those 8 bytes), the headers, the payload and the CRC-32 of everything before it.
//! A header is a name (length `u8`, UTF-8) and a typed value (type `u8`: 0/1 boolean true/false,
//! 2 byte, 3 short, 4 int, 5 long, 6 byte array and 7 string with a `u16` length, 8 timestamp in
//! epoch milliseconds, 9 UUID). All integers are big-endian.
//!
//! [`Decoder`] is fed arbitrary byte slices as they arrive and yields whole messages, like
//! [`crate::sse::SseParser`]. Both checksums are verified (the prelude's before its lengths are
//! trusted) and sizes are bounded by AWS's limits ([`MAX_MESSAGE_LEN`], [`MAX_HEADERS_LEN`]), so
//! no input can make it allocate without bound or panic: every malformation is a
//! [`DecodeError`]. [`encode`] writes messages (for tests and simulators).

use thiserror::Error;

/// Largest message AWS sends or accepts: 16 MiB, prelude and checksums included.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;

/// Largest headers section AWS allows: 128 KiB.
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

/// Prelude (two lengths and their checksum).
const PRELUDE_LEN: usize = 12;

/// Prelude plus the message checksum: a message without headers or payload.
const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + 4;

/// CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`: gzip's and zlib's) lookup table.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 of `bytes`, as both event-stream checksums are computed.
pub fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

/// A header's value, by its wire type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false): no value bytes.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6: up to 65535 bytes.
    Bytes(Vec<u8>),
    /// Type 7: up to 65535 bytes of UTF-8.
    String(String),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

impl HeaderValue {
    fn type_byte(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => 0,
            HeaderValue::Bool(false) => 1,
            HeaderValue::Byte(_) => 2,
            HeaderValue::Short(_) => 3,
            HeaderValue::Int(_) => 4,
            HeaderValue::Long(_) => 5,
            HeaderValue::Bytes(_) => 6,
            HeaderValue::String(_) => 7,
            HeaderValue::Timestamp(_) => 8,
            HeaderValue::Uuid(_) => 9,
        }
    }
}

/// One header: a name and a typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: HeaderValue,
}

impl Header {
    /// A string header, the kind AWS's `:`-prefixed protocol headers are.
    pub fn string(name: &str, value: &str) -> Header {
        Header {
            name: name.to_owned(),
            value: HeaderValue::String(value.to_owned()),
        }
    }
}

/// One decoded message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<Header>,
    pub payload: Vec<u8>,
}

impl Message {
    pub fn new(headers: Vec<Header>, payload: impl Into<Vec<u8>>) -> Message {
        Message {
            headers,
            payload: payload.into(),
        }
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }

    /// The value of the header called `name` when it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        match self.header(name)? {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(":message-type")
    }

    /// `:event-type` of an event, e.g. `contentBlockDelta`.
    pub fn event_type(&self) -> Option<&str> {
        self.header_str(":event-type")
    }

    /// `:exception-type` of an exception, e.g. `throttlingException`.
    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(":exception-type")
    }

    /// `:content-type` of the payload, e.g. `application/json`.
    pub fn content_type(&self) -> Option<&str> {
        self.header_str(":content-type")
    }

    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// Why bytes are not an event-stream message. After one, the stream's framing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("prelude checksum mismatch (expected {expected:#010x}, computed {computed:#010x})")]
    PreludeChecksum { expected: u32, computed: u32 },
    #[error("message checksum mismatch (expected {expected:#010x}, computed {computed:#010x})")]
    MessageChecksum { expected: u32, computed: u32 },
    #[error("message length {0} is below the 16-byte minimum")]
    MessageTooShort(u32),
    #[error("message length {0} is over the {MAX_MESSAGE_LEN}-byte limit")]
    MessageTooLong(u32),
    #[error("headers length {0} is over the {MAX_HEADERS_LEN}-byte limit")]
    HeadersTooLong(u32),
    #[error("headers length {headers} does not fit in a message of {total} bytes")]
    HeadersOverflow { headers: u32, total: u32 },
    #[error("header at offset {0} is cut off")]
    HeaderTruncated(usize),
    #[error("header at offset {0} has an empty name")]
    EmptyHeaderName(usize),
    #[error("header at offset {0} is not valid UTF-8")]
    HeaderNotUtf8(usize),
    #[error("header at offset {offset} has unknown value type {value_type}")]
    UnknownHeaderType { offset: usize, value_type: u8 },
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("header name `{0}` is empty or longer than 255 bytes")]
    HeaderName(String),
    #[error("the value of header `{0}` is longer than 65535 bytes")]
    HeaderValue(String),
    #[error("the headers take {0} bytes, over the {MAX_HEADERS_LEN}-byte limit")]
    HeadersTooLong(usize),
    #[error("the message takes {0} bytes, over the {MAX_MESSAGE_LEN}-byte limit")]
    MessageTooLong(usize),
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(word)
}

/// Decodes the message at the start of `buf`: `Ok(None)` when `buf` holds only part of it (the
/// prelude, once complete, has already been verified), else the message and how many bytes it
/// took.
pub fn decode(buf: &[u8]) -> Result<Option<(Message, usize)>, DecodeError> {
    if buf.len() < PRELUDE_LEN {
        return Ok(None);
    }
    let total = be_u32(buf, 0);
    let headers_len = be_u32(buf, 4);
    let expected = be_u32(buf, 8);
    let computed = crc32(&buf[..8]);
    if expected != computed {
        return Err(DecodeError::PreludeChecksum { expected, computed });
    }
    let total_len = total as usize;
    if total_len < MIN_MESSAGE_LEN {
        return Err(DecodeError::MessageTooShort(total));
    }
    if total_len > MAX_MESSAGE_LEN {
        return Err(DecodeError::MessageTooLong(total));
    }
    let headers_size = headers_len as usize;
    if headers_size > MAX_HEADERS_LEN {
        return Err(DecodeError::HeadersTooLong(headers_len));
    }
    if headers_size > total_len - MIN_MESSAGE_LEN {
        return Err(DecodeError::HeadersOverflow {
            headers: headers_len,
            total,
        });
    }
    if buf.len() < total_len {
        return Ok(None);
    }
    let expected = be_u32(buf, total_len - 4);
    let computed = crc32(&buf[..total_len - 4]);
    if expected != computed {
        return Err(DecodeError::MessageChecksum { expected, computed });
    }
    let headers_end = PRELUDE_LEN + headers_size;
    let headers = decode_headers(&buf[PRELUDE_LEN..headers_end])?;
    let payload = buf[headers_end..total_len - 4].to_vec();
    Ok(Some((Message { headers, payload }, total_len)))
}

/// The headers section; offsets in errors count from the start of the message.
fn decode_headers(bytes: &[u8]) -> Result<Vec<Header>, DecodeError> {
    let mut headers = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let offset = PRELUDE_LEN + pos;
        let truncated = || DecodeError::HeaderTruncated(offset);
        // Takes `n` bytes at `pos`, or fails when the section ends first.
        let take = |pos: &mut usize, n: usize| -> Result<&[u8], DecodeError> {
            let end = pos.checked_add(n).filter(|&e| e <= bytes.len());
            let end = end.ok_or_else(truncated)?;
            let slice = &bytes[*pos..end];
            *pos = end;
            Ok(slice)
        };
        let name_len = usize::from(take(&mut pos, 1)?[0]);
        if name_len == 0 {
            return Err(DecodeError::EmptyHeaderName(offset));
        }
        let name = std::str::from_utf8(take(&mut pos, name_len)?)
            .map_err(|_| DecodeError::HeaderNotUtf8(offset))?
            .to_owned();
        let value_type = take(&mut pos, 1)?[0];
        let value = match value_type {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes([take(&mut pos, 1)?[0]])),
            3 => {
                let b = take(&mut pos, 2)?;
                HeaderValue::Short(i16::from_be_bytes([b[0], b[1]]))
            }
            4 => {
                let mut word = [0u8; 4];
                word.copy_from_slice(take(&mut pos, 4)?);
                HeaderValue::Int(i32::from_be_bytes(word))
            }
            5 | 8 => {
                let mut word = [0u8; 8];
                word.copy_from_slice(take(&mut pos, 8)?);
                let n = i64::from_be_bytes(word);
                if value_type == 5 {
                    HeaderValue::Long(n)
                } else {
                    HeaderValue::Timestamp(n)
                }
            }
            6 | 7 => {
                let b = take(&mut pos, 2)?;
                let len = usize::from(u16::from_be_bytes([b[0], b[1]]));
                let data = take(&mut pos, len)?;
                if value_type == 6 {
                    HeaderValue::Bytes(data.to_vec())
                } else {
                    let s = std::str::from_utf8(data)
                        .map_err(|_| DecodeError::HeaderNotUtf8(offset))?;
                    HeaderValue::String(s.to_owned())
                }
            }
            9 => {
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(take(&mut pos, 16)?);
                HeaderValue::Uuid(uuid)
            }
            _ => {
                return Err(DecodeError::UnknownHeaderType { offset, value_type });
            }
        };
        headers.push(Header { name, value });
    }
    Ok(headers)
}

/// Incremental decoder: push bytes as they arrive, pop whole messages.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// The first error: the framing is lost, so every later call returns it too.
    failed: Option<DecodeError>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Appends bytes received from the network.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes received but not yet part of a whole message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message; `Ok(None)` until the buffered bytes hold one ("need more").
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match decode(&self.buf) {
            Ok(Some((message, used))) => {
                self.buf.drain(..used);
                Ok(Some(message))
            }
            Ok(None) => Ok(None),
            Err(err) => {
                self.buf = Vec::new();
                self.failed = Some(err.clone());
                Err(err)
            }
        }
    }
}

/// Encodes `message` in the wire format (both checksums included).
pub fn encode(message: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut headers = Vec::new();
    for header in &message.headers {
        let name = header.name.as_bytes();
        let name_len = u8::try_from(name.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| EncodeError::HeaderName(header.name.clone()))?;
        headers.push(name_len);
        headers.extend_from_slice(name);
        headers.push(header.value.type_byte());
        match &header.value {
            HeaderValue::Bool(_) => {}
            HeaderValue::Byte(b) => headers.extend_from_slice(&b.to_be_bytes()),
            HeaderValue::Short(n) => headers.extend_from_slice(&n.to_be_bytes()),
            HeaderValue::Int(n) => headers.extend_from_slice(&n.to_be_bytes()),
            HeaderValue::Long(n) | HeaderValue::Timestamp(n) => {
                headers.extend_from_slice(&n.to_be_bytes())
            }
            HeaderValue::Bytes(data) => {
                let len = u16::try_from(data.len())
                    .map_err(|_| EncodeError::HeaderValue(header.name.clone()))?;
                headers.extend_from_slice(&len.to_be_bytes());
                headers.extend_from_slice(data);
            }
            HeaderValue::String(s) => {
                let len = u16::try_from(s.len())
                    .map_err(|_| EncodeError::HeaderValue(header.name.clone()))?;
                headers.extend_from_slice(&len.to_be_bytes());
                headers.extend_from_slice(s.as_bytes());
            }
            HeaderValue::Uuid(uuid) => headers.extend_from_slice(uuid),
        }
    }
    if headers.len() > MAX_HEADERS_LEN {
        return Err(EncodeError::HeadersTooLong(headers.len()));
    }
    let total = MIN_MESSAGE_LEN + headers.len() + message.payload.len();
    if total > MAX_MESSAGE_LEN {
        return Err(EncodeError::MessageTooLong(total));
    }
    let mut out = Vec::with_capacity(total);
    // Both fit in a u32: they are bounded by the limits checked above.
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&message.payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests;
