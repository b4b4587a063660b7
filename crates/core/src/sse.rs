//! Server-sent events: an incremental parser for upstream streams and the frames we send.
//!
//! The parser is fed arbitrary byte slices as they arrive and yields complete events; it never
//! assumes that a network read ends on an event boundary.

/// One complete event. Comment lines (`: ...`) are reported as comments so relays can count keep-alives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    Event { event: Option<String>, data: String },
    Comment(String),
}

/// Incremental SSE parser (WHATWG event-stream rules, minus `id`/`retry` which we do not need).
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Appends bytes received from the network.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a complete line.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next complete item, if the buffered bytes hold one.
    pub fn next_item(&mut self) -> Option<SseItem> {
        loop {
            let newline = self.buf.iter().position(|&b| b == b'\n' || b == b'\r')?;
            // A `\r\n` pair is one line ending; a lone `\r` at the buffer's end may be half of one.
            let mut consumed = newline + 1;
            if self.buf[newline] == b'\r' {
                match self.buf.get(newline + 1) {
                    Some(b'\n') => consumed += 1,
                    Some(_) => {}
                    None => return None,
                }
            }
            let line = String::from_utf8_lossy(&self.buf[..newline]).into_owned();
            self.buf.drain(..consumed);
            if line.is_empty() {
                if let Some(data) = self.data.take() {
                    return Some(SseItem::Event {
                        event: self.event.take(),
                        data,
                    });
                }
                self.event = None;
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                return Some(SseItem::Comment(comment.trim_start().to_owned()));
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "data" => match &mut self.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.data = Some(value.to_owned()),
                },
                "event" => self.event = Some(value.to_owned()),
                _ => {}
            }
        }
    }

    /// At end of stream: an event whose blank line never came (some upstreams omit the last one).
    pub fn finish(&mut self) -> Option<SseItem> {
        if !self.buf.is_empty() {
            self.buf.extend_from_slice(b"\n\n");
            if let Some(item) = self.next_item() {
                return Some(item);
            }
        }
        self.data.take().map(|data| SseItem::Event {
            event: self.event.take(),
            data,
        })
    }
}

/// `data: <payload>\n\n`.
pub fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    out
}

/// The stream terminator both official SDKs look for.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

/// The keep-alive comment OpenRouter sends while a response is pending.
pub const KEEPALIVE_FRAME: &[u8] = b": OPENROUTER PROCESSING\n\n";

#[cfg(test)]
mod tests;
