//! A tolerant, allocation-free parser for one metrics line: a flat JSON object.
//!
//! serde_json would reject Python's bare `NaN`, `Infinity` and `-Infinity` tokens, which are
//! exactly the values worth alerting on, and would build a map per line, which is too slow
//! for a million lines a second. This parser walks the bytes once and hands each top-level
//! numeric field to a callback as (raw key bytes, value). Strings, booleans, nulls, arrays
//! and nested objects are checked for shape and skipped.

/// Why a line is not a metrics object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The line does not start with `{`.
    NotAnObject,
    /// The object is cut short (no closing `}`).
    Truncated,
    /// Something other than `"key": value` where a field should be.
    BadField,
    /// A value that is not JSON (nor NaN/Infinity).
    BadValue,
    /// Text after the closing `}`.
    TrailingText,
}

impl Malformed {
    /// The reason, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotAnObject => "not a JSON object",
            Self::Truncated => "the object is cut short",
            Self::BadField => "expected \"key\": value",
            Self::BadValue => "a value is not JSON",
            Self::TrailingText => "text after the object",
        }
    }
}

/// Parses one line (without its newline), calling `field(key, value)` for each numeric
/// top-level field. Keys are the raw bytes between the quotes (escapes left as written).
pub fn parse_line(line: &[u8], mut field: impl FnMut(&[u8], f64)) -> Result<(), Malformed> {
    let mut p = Cursor { s: line, i: 0 };
    p.ws();
    if !p.eat(b'{') {
        return Err(Malformed::NotAnObject);
    }
    p.ws();
    if !p.eat(b'}') {
        loop {
            p.ws();
            let key = p.string().ok_or(Malformed::BadField)?;
            p.ws();
            if !p.eat(b':') {
                return Err(Malformed::BadField);
            }
            p.ws();
            if let Some(value) = p.value()? {
                field(key, value);
            }
            p.ws();
            match p.next() {
                Some(b',') => continue,
                Some(b'}') => break,
                Some(_) => return Err(Malformed::BadField),
                None => return Err(Malformed::Truncated),
            }
        }
    }
    p.ws();
    if p.i < p.s.len() {
        return Err(Malformed::TrailingText);
    }
    Ok(())
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.i += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.i += usize::from(hit);
        hit
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn starts_with(&self, token: &[u8]) -> bool {
        self.s[self.i..].starts_with(token)
    }

    /// A string's raw contents, the cursor after its closing quote.
    fn string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        loop {
            let at = memchr::memchr2(b'"', b'\\', &self.s[self.i..])?;
            self.i += at;
            if self.s[self.i] == b'\\' {
                self.i += 2;
                if self.i > self.s.len() {
                    return None;
                }
                continue;
            }
            let text = &self.s[start..self.i];
            self.i += 1;
            return Some(text);
        }
    }

    /// A value: `Some` for a number (NaN and the infinities included), `None` for others.
    fn value(&mut self) -> Result<Option<f64>, Malformed> {
        match self.peek() {
            None => Err(Malformed::Truncated),
            Some(b'"') => self.string().map(|_| None).ok_or(Malformed::Truncated),
            Some(b'{' | b'[') => self.skip_nested().map(|()| None),
            Some(b't') => self.token(b"true", None),
            Some(b'f') => self.token(b"false", None),
            Some(b'n') => self.token(b"null", None),
            Some(b'N') => self.token(b"NaN", Some(f64::NAN)),
            Some(b'I') => self.token(b"Infinity", Some(f64::INFINITY)),
            Some(b'-') if self.starts_with(b"-Infinity") => {
                self.token(b"-Infinity", Some(f64::NEG_INFINITY))
            }
            Some(_) => self.number().map(Some),
        }
    }

    fn token(&mut self, token: &[u8], value: Option<f64>) -> Result<Option<f64>, Malformed> {
        if !self.starts_with(token) {
            return Err(Malformed::BadValue);
        }
        self.i += token.len();
        Ok(value)
    }

    fn number(&mut self) -> Result<f64, Malformed> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| Malformed::BadValue)?;
        text.parse().map_err(|_| Malformed::BadValue)
    }

    /// Skips a nested array or object, minding strings, without parsing what is inside.
    fn skip_nested(&mut self) -> Result<(), Malformed> {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return Err(Malformed::Truncated),
                Some(b'"') => {
                    self.string().ok_or(Malformed::Truncated)?;
                    continue;
                }
                Some(b'{' | b'[') => depth += 1,
                Some(b'}' | b']') => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                Some(_) => {}
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &str) -> Result<Vec<(String, f64)>, Malformed> {
        let mut out = Vec::new();
        parse_line(line.as_bytes(), |key, value| {
            out.push((String::from_utf8_lossy(key).into_owned(), value))
        })?;
        Ok(out)
    }

    #[test]
    fn numeric_fields_are_read_and_others_skipped() {
        let got =
            fields(r#"{"step": 3, "loss": 0.25, "lr": 1e-4, "tag": "x", "ok": true, "n": null}"#);
        assert_eq!(
            got.unwrap(),
            vec![
                ("step".into(), 3.0),
                ("loss".into(), 0.25),
                ("lr".into(), 1e-4)
            ]
        );
        assert_eq!(fields("{}").unwrap(), vec![]);
        assert_eq!(fields("  { } ").unwrap(), vec![]);
    }

    #[test]
    fn python_non_finite_tokens_are_valid() {
        let got = fields(r#"{"a": NaN, "b": Infinity, "c": -Infinity, "d": -2}"#).unwrap();
        assert!(got[0].1.is_nan());
        assert_eq!(got[1].1, f64::INFINITY);
        assert_eq!(got[2].1, f64::NEG_INFINITY);
        assert_eq!(got[3].1, -2.0);
    }

    #[test]
    fn strings_containing_tokens_and_braces_are_skipped() {
        let got = fields(r#"{"note": "NaN } { \" Infinity", "x": 1}"#).unwrap();
        assert_eq!(got, vec![("x".into(), 1.0)]);
        let got = fields(r#"{"k\"ey": 2}"#).unwrap();
        assert_eq!(got, vec![("k\\\"ey".into(), 2.0)]);
    }

    #[test]
    fn nested_values_are_ignored() {
        let got = fields(r#"{"cfg": {"lr": 1, "s": "}"}, "hist": [1, [2, 3]], "loss": 4}"#);
        assert_eq!(got.unwrap(), vec![("loss".into(), 4.0)]);
    }

    #[test]
    fn malformed_lines_say_why() {
        assert_eq!(fields("garbage"), Err(Malformed::NotAnObject));
        assert_eq!(fields(""), Err(Malformed::NotAnObject));
        assert_eq!(fields(r#"{"loss": 1.0"#), Err(Malformed::Truncated));
        assert_eq!(fields(r#"{"loss": }"#), Err(Malformed::BadValue));
        assert_eq!(fields(r#"{"loss": nan}"#), Err(Malformed::BadValue));
        assert_eq!(fields(r#"{"loss": 1.2.3}"#), Err(Malformed::BadValue));
        assert_eq!(fields(r#"{loss: 1}"#), Err(Malformed::BadField));
        assert_eq!(fields(r#"{"a": 1 "b": 2}"#), Err(Malformed::BadField));
        assert_eq!(fields(r#"{"a": 1} x"#), Err(Malformed::TrailingText));
        assert_eq!(fields(r#"{"a": [1, 2"#), Err(Malformed::Truncated));
        assert_eq!(fields(r#"{"a": "open"#), Err(Malformed::Truncated));
    }
}
