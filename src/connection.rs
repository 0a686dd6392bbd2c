//! Line framing shared by the daemon and every client: one JSON message per line, at most
//! [`MAX_LINE_BYTES`] per line.

use serde::Serialize;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use crate::protocol::MAX_LINE_BYTES;

/// What reading one line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its newline.
    Line(Vec<u8>),
    /// The line grew past the limit; the rest of the stream cannot be trusted.
    TooLong,
    /// The peer closed the connection (a trailing partial line is dropped).
    Eof,
}

/// Reads one line of at most `max` bytes (use [`MAX_LINE_BYTES`] for the protocol).
///
/// The buffer is reused between calls to avoid an allocation per message.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Frame> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(Frame::Eof);
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
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
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Frame::Line(std::mem::take(buf)));
        }
    }
}

/// Reads one protocol line (at most [`MAX_LINE_BYTES`]).
pub async fn read_message<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<Frame> {
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

/// Writes one message as a line and flushes.
pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    message: &T,
) -> std::io::Result<()> {
    writer.write_all(&encode_line(message)).await?;
    writer.flush().await
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
            Frame::Line(b"one".to_vec())
        );
        assert_eq!(
            read_message(&mut reader, &mut buf).await.unwrap(),
            Frame::Line(b"two".to_vec())
        );
        assert_eq!(
            read_message(&mut reader, &mut buf).await.unwrap(),
            Frame::Eof
        );
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
