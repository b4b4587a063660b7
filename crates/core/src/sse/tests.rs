//! Tests of the SSE parser.

use super::*;

fn collect(chunks: &[&[u8]]) -> Vec<SseItem> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.push(c);
        while let Some(item) = p.next_item() {
            out.push(item);
        }
    }
    out.extend(p.finish());
    out
}

fn data(d: &str) -> SseItem {
    SseItem::Event {
        event: None,
        data: d.to_owned(),
    }
}

#[test]
fn events_split_across_reads_in_any_place() {
    let stream = b"data: {\"a\":1}\n\n: keep\n\ndata: [DONE]\n\n";
    let want = vec![
        data("{\"a\":1}"),
        SseItem::Comment("keep".into()),
        data("[DONE]"),
    ];
    for cut in 0..stream.len() {
        assert_eq!(
            collect(&[&stream[..cut], &stream[cut..]]),
            want,
            "cut at {cut}"
        );
    }
}

#[test]
fn crlf_multiline_and_named_events() {
    let got = collect(&[b"event: ping\r\ndata: a\r\ndata: b\r\n\r\n"]);
    assert_eq!(
        got,
        vec![SseItem::Event {
            event: Some("ping".into()),
            data: "a\nb".into()
        }]
    );
}

#[test]
fn unterminated_last_event_is_flushed() {
    assert_eq!(collect(&[b"data: x"]), vec![data("x")]);
}
