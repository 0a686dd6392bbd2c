//! Line framing shared by the daemon and every client: one JSON message per line, at most
//! [`MAX_LINE_BYTES`] per line.

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::protocol::MAX_LINE_BYTES;

/// What reading one line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its newline, borrowed from the caller's buffer until the next
    /// read.
    Line(&'a [u8]),
    /// The line grew past the limit; the rest of the stream cannot be trusted.
    TooLong,
    /// The peer closed the connection (a trailing partial line is dropped).
    Eof,
}

/// Reads one line of at most `max` bytes (use [`MAX_LINE_BYTES`] for the protocol).
///
/// The line is assembled in `buf`, which keeps its capacity from call to call: a connection
/// allocates for its longest line once, not for every line it reads. The line is copied once,
/// from the reader's buffer into `buf`, because a line may span several reads.
pub async fn read_frame<'b, R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &'b mut Vec<u8>,
    max: usize,
) -> std::io::Result<Frame<'b>> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Frame::Eof);
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], i + 1),
            None => (available, available.len()),
        };
        let complete = done > chunk.len();
        if buf.len() + chunk.len() > max {
            return Ok(Frame::TooLong);
        }
        buf.extend_from_slice(chunk);
        reader.consume(done);
        if complete {
            let line = buf.strip_suffix(b"\r").unwrap_or(buf);
            return Ok(Frame::Line(line));
        }
    }
}

/// Reads one protocol line (at most [`MAX_LINE_BYTES`]); see [`read_frame`].
pub async fn read_message<'b, R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &'b mut Vec<u8>,
) -> std::io::Result<Frame<'b>> {
    read_frame(reader, buf, MAX_LINE_BYTES).await
}

/// Serializes a message as one line, newline included.
pub fn encode_line<T: Serialize>(message: &T) -> Vec<u8> {
    // Serializing our own protocol types cannot fail: they have string keys and no
    // fallible Serialize impls.
    let mut line = serde_json::to_vec(message).unwrap_or_else(|_| b"null".to_vec());
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn splits_lines_and_reports_eof() {
        let mut reader = BufReader::new(&b"one\ntwo\r\nthree"[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_message(&mut reader, &mut buf).await.unwrap(),
            Frame::Line(b"one")
        );
        assert_eq!(
            read_message(&mut reader, &mut buf).await.unwrap(),
            Frame::Line(b"two")
        );
        assert_eq!(
            read_message(&mut reader, &mut buf).await.unwrap(),
            Frame::Eof
        );
    }

    #[tokio::test]
    async fn the_buffer_keeps_its_capacity_between_lines() {
        let long = [b'x'; 10_000];
        let data = [&long[..], b"\nshort\n"].concat();
        let mut reader = BufReader::with_capacity(64, &data[..]);
        let mut buf = Vec::new();
        let Frame::Line(line) = read_message(&mut reader, &mut buf).await.unwrap() else {
            panic!("a line");
        };
        assert_eq!(line.len(), long.len());
        let grown = buf.capacity();
        assert_eq!(
            read_message(&mut reader, &mut buf).await.unwrap(),
            Frame::Line(b"short")
        );
        assert_eq!(buf.capacity(), grown, "no new allocation for the next line");
    }

    #[tokio::test]
    async fn refuses_a_line_over_the_limit() {
        let data = [b'x'; 100];
        let mut reader = BufReader::with_capacity(16, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_frame(&mut reader, &mut buf, 50).await.unwrap(),
            Frame::TooLong
        );
    }
}
