//! Server-sent events framing, shared by both providers' parsers.
//!
//! Bytes arrive cut wherever the network cut them. The framer keeps the unfinished line as
//! bytes, splits lines on bytes only (`\n`, `\r\n`, a lone `\r`), and decodes each complete
//! line as UTF-8, so a character split across reads is never mangled and U+2028/U+2029 are
//! never taken for line ends. Fields follow the WHATWG event-stream rules.

use super::{INCOMPLETE, StreamEvent, StreamParser};

/// One dispatched event: what a provider's parser reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, if the event had one (Anthropic always names them, OpenAI never).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The most one event may buffer (its data plus its unfinished line). A server that never
/// sends a line end would otherwise grow the daemon without bound; real events are kilobytes.
pub const MAX_EVENT_BYTES: usize = 16 << 20;

/// Splits a byte stream into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseFramer {
    /// The current line's bytes so far, not yet decoded.
    line: Vec<u8>,
    /// The last line ended with `\r` at the end of a read: a `\n` starting the next read
    /// belongs to that line end, not a new, empty line.
    after_cr: bool,
    /// An event outgrew [`MAX_EVENT_BYTES`]; the rest of the stream is ignored.
    overflowed: bool,
    pending: Pending,
}

/// The fields of the event being built.
#[derive(Debug, Default)]
struct Pending {
    /// The first line has been seen (a BOM can only lead that one).
    started: bool,
    event: Option<String>,
    /// `None` until a `data` field arrives: an event without one is not dispatched.
    data: Option<String>,
}

impl SseFramer {
    /// A framer at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes and returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.overflowed {
            return out;
        }
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(end);
            self.line.extend_from_slice(head);
            rest = match tail {
                [b'\r', b'\n', after @ ..] => after,
                [b'\r'] => {
                    self.after_cr = true;
                    &[]
                }
                [_, after @ ..] => after,
                [] => &[],
            };
            self.pending.line(&self.line, &mut out);
            self.line.clear();
        }
        self.line.extend_from_slice(rest);
        let buffered = self.line.len() + self.pending.data.as_ref().map_or(0, String::len);
        if buffered > MAX_EVENT_BYTES {
            self.overflowed = true;
            self.line = Vec::new();
            self.pending = Pending::default();
        }
        out
    }

    /// Whether an event outgrew [`MAX_EVENT_BYTES`], after which nothing more is framed: the
    /// stream has lost data and cannot be trusted.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Ends the stream, discarding an event that had no blank line after it (the SSE spec's
    /// rule). Returns whether anything was discarded, for the log.
    pub fn finish(&mut self) -> bool {
        let discarded = !self.line.is_empty() || self.pending.data.is_some();
        self.line.clear();
        self.pending = Pending::default();
        self.after_cr = false;
        discarded
    }
}

impl Pending {
    /// Applies one complete line.
    fn line(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        let decoded = String::from_utf8_lossy(bytes);
        let mut text: &str = &decoded;
        if !self.started {
            self.started = true;
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        if text.is_empty() {
            let event = self.event.take();
            if let Some(data) = self.data.take() {
                out.push(SseEvent { event, data });
            }
            return;
        }
        if text.starts_with(':') {
            return; // A comment or keep-alive: liveness only.
        }
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()).filter(|name| !name.is_empty()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            _ => {} // `id`, `retry` and unknown fields mean nothing to a chat stream.
        }
    }
}

/// What one provider makes of a framed event; [`SseParser`] adds the framing and the rules
/// for how a stream ends, which both providers share.
pub(super) trait Dialect {
    /// Handles one event, appending what it means. Appending `Done` or `Error` ends the
    /// stream: nothing after it is parsed.
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>);
}

/// A [`StreamParser`] made of the framer and a provider's [`Dialect`].
pub(super) struct SseParser<D> {
    framer: SseFramer,
    dialect: D,
    /// `Done` or `Error` was emitted; the rest of the stream is ignored.
    ended: bool,
}

impl<D: Dialect> SseParser<D> {
    /// A parser at the start of a stream.
    pub(super) fn new(dialect: D) -> Self {
        Self {
            framer: SseFramer::new(),
            dialect,
            ended: false,
        }
    }
}

impl<D: Dialect> StreamParser for SseParser<D> {
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        for event in self.framer.feed(bytes) {
            self.dialect.event(event, &mut out);
            if let Some(StreamEvent::Done { .. } | StreamEvent::Error(_)) = out.last() {
                self.ended = true;
                return out;
            }
        }
        if self.framer.overflowed() {
            self.ended = true;
            out.push(StreamEvent::Error(format!(
                "an SSE event grew past {} MiB without ending; the stream was abandoned",
                MAX_EVENT_BYTES >> 20
            )));
        }
        out
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        if std::mem::replace(&mut self.ended, true) {
            return Vec::new();
        }
        if self.framer.finish() {
            tracing::debug!(
                "discarded an event with no blank line after it at the end of the stream"
            );
        }
        vec![StreamEvent::Error(INCOMPLETE.to_owned())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::{every_split, line_ending_variants};

    fn frame(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut framer = SseFramer::new();
        let events = chunks.iter().flat_map(|c| framer.feed(c)).collect();
        framer.finish();
        events
    }

    /// Frames `bytes` whole, and checks every way of cutting it (and every line ending)
    /// frames the same.
    fn frame_any_cut(bytes: &[u8]) -> Vec<SseEvent> {
        let whole = frame(&[bytes]);
        for variant in line_ending_variants(bytes) {
            for chunks in every_split(&variant) {
                let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
                assert_eq!(frame(&chunks), whole, "cut into {lens:?}");
            }
        }
        whole
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.into(),
        }
    }

    #[test]
    fn fields_join_strip_and_ignore() {
        let stream = "\u{feff}: keep-alive\nevent: a\ndata:x\ndata:  two spaces\nid: 7\n\
                      retry: 10\nfoo: bar\nnocolon\n\n: OPENROUTER PROCESSING\n: ping 3\n\n\
                      data\n\nevent: only\n\ndata: é\u{2028}ü\u{2029}👋\n\n";
        assert_eq!(
            frame_any_cut(stream.as_bytes()),
            vec![
                ev(Some("a"), "x\n two spaces"),
                ev(None, ""),
                ev(None, "é\u{2028}ü\u{2029}👋"),
            ]
        );
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_end() {
        let events = frame(&[b"data: a\r", b"\n\r", b"\ndata: b\r\r"]);
        assert_eq!(events, vec![ev(None, "a"), ev(None, "b")]);
        // A lone CR followed by an empty read, then the LF: still one line end.
        assert_eq!(frame(&[b"data: a\r", b"", b"\n\r\n"]), vec![ev(None, "a")]);
    }

    #[test]
    fn a_bom_split_across_reads_is_stripped_only_at_the_start() {
        assert_eq!(
            frame(&[b"\xef", b"\xbb", b"\xbfdata: x\n\n"]),
            vec![ev(None, "x")]
        );
        let later = frame_any_cut("data: \u{feff}x\n\n".as_bytes());
        assert_eq!(later, vec![ev(None, "\u{feff}x")]);
    }

    #[test]
    fn an_event_without_a_blank_line_at_eof_is_discarded() {
        let mut framer = SseFramer::new();
        assert_eq!(framer.feed(b"data: [DONE]\n"), vec![]);
        assert!(framer.finish());
        assert!(!framer.finish());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(frame(&[b"data: a\xffb\n\n"]), vec![ev(None, "a\u{fffd}b")]);
    }

    #[test]
    fn an_endless_line_stops_the_framer() {
        let mut framer = SseFramer::new();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..=16 {
            assert!(framer.feed(&chunk).is_empty());
        }
        assert!(framer.overflowed());
        assert!(framer.feed(b"\n\ndata: late\n\n").is_empty());
    }

    #[test]
    fn an_overflow_ends_the_parsed_stream_once() {
        let mut parser = crate::llm::ProviderKind::OpenAi.parser();
        let mut events = parser.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n");
        events.extend(parser.feed(&vec![b'x'; MAX_EVENT_BYTES + 1]));
        events.extend(parser.feed(b"\n\ndata: [DONE]\n\n"));
        events.extend(parser.finish());
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(&events[1], StreamEvent::Error(e) if e.contains("16 MiB")));
    }
}
