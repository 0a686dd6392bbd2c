//! Config values checked as they are read, that would otherwise be accepted at start and
//! fail only when used: a base URL that is not an `http(s)` URL made every chat fail with
//! "builder error"; a header name with a space passed `providers --check`.
//!
//! Each check runs inside deserialization, so its error carries the value's place in the
//! file and the key's path like any other config error (`config.toml:4:12: key
//! `providers.local.base_url`: …`). URLs are parsed by the same WHATWG parser the HTTP client
//! uses, and headers are held to the rules of the `http` crate it sends them with.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, Error as _};

/// Deserializes an `http://` or `https://` URL with a host, kept as written.
pub(super) fn http_url<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    check_url(&text).map_err(D::Error::custom)?;
    Ok(text)
}

/// Why `text` is not a URL an HTTP client can send to, if it is not.
fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|err| {
        format!("`{text}` is not a URL ({err}); write it as http://HOST[:PORT]/PATH")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}`: the scheme must be http or https, not {}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` names no host"));
    }
    Ok(())
}

/// Deserializes extra HTTP headers, each name and value checked where it is written.
pub(super) fn headers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let headers = BTreeMap::<HeaderName, HeaderValue>::deserialize(deserializer)?;
    Ok(headers
        .into_iter()
        .map(|(name, value)| (name.0, value.0))
        .collect())
}

/// A header name: one or more token characters (RFC 9110 `tchar`).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct HeaderName(String);

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        check_header_name(&name).map_err(D::Error::custom)?;
        Ok(Self(name))
    }
}

/// A header value: no control characters but tab (a newline would start another header).
struct HeaderValue(String);

impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        check_header_value(&value).map_err(D::Error::custom)?;
        Ok(Self(value))
    }
}

/// Why `name` cannot be an HTTP header name, if it cannot.
fn check_header_name(name: &str) -> Result<(), String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    match name.chars().find(|&c| !token(c)) {
        _ if name.is_empty() => Err("a header name cannot be empty".into()),
        Some(c) => Err(format!(
            "`{}` is not a header name: {c:?} is not allowed in one (letters, digits and \
             !#$%&'*+-.^_`|~ are)",
            name.escape_debug()
        )),
        None => Ok(()),
    }
}

/// Why `value` cannot be an HTTP header value, if it cannot.
fn check_header_value(value: &str) -> Result<(), String> {
    match value.chars().find(|&c| c.is_control() && c != '\t') {
        Some(c) => Err(format!(
            "a header value cannot hold the control character {c:?}"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host_pass() {
        for good in [
            "http://127.0.0.1:8000/v1",
            "https://api.openai.com/v1",
            "http://[::1]:8080/v1",
            "https://openrouter.ai/api/v1/",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("not a url", "is not a URL"),
            ("ftp://example.com/v1", "not ftp"),
            ("http://[::1/v1", "is not a URL"),
            ("http://", "is not a URL"),
            ("localhost:8000/v1", "not localhost"),
            ("file:///etc/passwd", "not file"),
        ] {
            let err = check_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn header_names_are_tokens_and_values_hold_no_newline() {
        assert_eq!(check_header_name("X-Org-Id"), Ok(()));
        assert_eq!(check_header_name("anthropic-beta"), Ok(()));
        assert!(check_header_name("Bad Name").unwrap_err().contains("' '"));
        assert!(check_header_name("x:y").is_err());
        assert!(check_header_name("").is_err());
        assert!(check_header_name("é").is_err());
        assert_eq!(check_header_value("a b\tc é"), Ok(()));
        assert!(check_header_value("a\r\nX-Evil: 1").is_err());
        assert!(check_header_value("\u{7f}").is_err());
    }
}
