//! Test helpers: feed a stream cut every possible way and insist the events never change.
//!
//! The network may cut a stream anywhere: inside a UTF-8 character, between `\r` and `\n`,
//! between the two blank-line bytes. A parser is right only if no cut changes what it says.

use super::{ProviderKind, StreamEvent};

/// Every way of cutting `bytes` the tests try: whole, one byte at a time, and in two pieces
/// at each split point (including the empty first and last pieces).
pub(crate) fn every_split(bytes: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut cuts = vec![vec![bytes], bytes.chunks(1).collect()];
    for at in 0..=bytes.len() {
        let (head, tail) = bytes.split_at(at);
        cuts.push(vec![head, tail]);
    }
    cuts
}

/// `bytes` with its `\n` line ends as they are, as `\r\n`, and as lone `\r`. The example
/// streams hold `\n` only as line ends (JSON escapes it), so the events must not change.
pub(crate) fn line_ending_variants(bytes: &[u8]) -> Vec<Vec<u8>> {
    [&b"\n"[..], b"\r\n", b"\r"]
        .iter()
        .map(|ending| {
            bytes.iter().fold(Vec::new(), |mut out, &b| {
                if b == b'\n' {
                    out.extend_from_slice(ending);
                } else {
                    out.push(b);
                }
                out
            })
        })
        .collect()
}

/// Feeds the chunks to a fresh parser, then ends the stream.
pub(crate) fn run(kind: ProviderKind, chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut parser = kind.parser();
    let mut events: Vec<StreamEvent> = chunks.iter().flat_map(|c| parser.feed(c)).collect();
    events.extend(parser.finish());
    events
}

/// Parses `bytes` whole, checks that every cut and every line ending gives the same events,
/// and returns them.
pub(crate) fn parse_any_cut(kind: ProviderKind, bytes: &[u8]) -> Vec<StreamEvent> {
    let whole = run(kind, &[bytes]);
    for variant in line_ending_variants(bytes) {
        for chunks in every_split(&variant) {
            let events = run(kind, &chunks);
            if events != whole {
                let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
                panic!("cut into {lens:?}: {events:#?}\n!= whole: {whole:#?}");
            }
        }
    }
    whole
}

/// Shorthand for a text delta.
pub(crate) fn text(s: &str) -> StreamEvent {
    StreamEvent::Text(s.into())
}
