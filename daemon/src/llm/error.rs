//! Provider error objects, inside a stream and in a failed response's body.
//!
//! Both providers wrap errors as `{"error": {"type": …, "code": …, "message": …}}` (LiteLLM
//! sends `code` as a string, some servers send `error` as a bare string). Decisions such as
//! "retry this" must key on `type` and `code`, never on the message, so the text we produce
//! always leads with them.

use serde_json::Value;

/// The longest raw body quoted when an error has no usable message.
const MAX_QUOTE: usize = 300;

/// Describes a non-2xx response's body (plain JSON, not SSE), so the driver can report a 429,
/// 401 or 529 the same way as an error inside a stream. `None` if the body is not a provider
/// error object; the driver then shows the status and the start of the body.
pub fn describe_error_body(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("error").map(describe)
}

/// Describes the value of an `error` field: `"type / code: message"`, or what there is of it.
pub(crate) fn describe(error: &Value) -> String {
    if let Some(message) = error.as_str() {
        return message.to_owned();
    }
    let labels: Vec<String> = ["type", "code"]
        .iter()
        .filter_map(|key| match error.get(key)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    let message = match error.get("message").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => message.to_owned(),
        _ if labels.is_empty() => format!("the provider sent an error: {}", quote(error)),
        _ => "(no message)".to_owned(),
    };
    if labels.is_empty() {
        message
    } else {
        format!("{}: {message}", labels.join(" / "))
    }
}

/// A short, single-line rendering of a value for an error message.
pub(crate) fn quote(value: &Value) -> String {
    truncate(&value.to_string())
}

/// Cuts text to [`MAX_QUOTE`] bytes on a character boundary, marking the cut.
pub(crate) fn truncate(text: &str) -> String {
    if text.len() <= MAX_QUOTE {
        return text.to_owned();
    }
    let mut end = MAX_QUOTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_lead_with_their_type_and_code() {
        let openai = json!({"message": "The server had an error", "type": "server_error",
                            "param": null, "code": null});
        assert_eq!(describe(&openai), "server_error: The server had an error");
        let litellm = json!({"message": "litellm.APIConnectionError: x", "type": null,
                             "param": null, "code": "500"});
        assert_eq!(describe(&litellm), "500: litellm.APIConnectionError: x");
        let numeric = json!({"message": "m", "code": 429});
        assert_eq!(describe(&numeric), "429: m");
        assert_eq!(describe(&json!("bare")), "bare");
        assert_eq!(describe(&json!({"type": "x"})), "x: (no message)");
        assert_eq!(
            describe(&json!({"weird": true})),
            r#"the provider sent an error: {"weird":true}"#
        );
    }

    #[test]
    fn error_bodies_before_the_stream() {
        let rate = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(
            describe_error_body(rate).as_deref(),
            Some("requests / rate_limit_exceeded: Rate limit reached")
        );
        let overloaded = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\
                          \"message\":\"Overloaded\"},\"request_id\":\"req_…\"}";
        assert_eq!(
            describe_error_body(overloaded.as_bytes()).as_deref(),
            Some("overloaded_error: Overloaded")
        );
        assert_eq!(describe_error_body(b"<html>502 Bad Gateway</html>"), None);
        assert_eq!(describe_error_body(b"{\"ok\":true}"), None);
    }

    #[test]
    fn long_quotes_are_cut_on_a_character_boundary() {
        let long = "é".repeat(400);
        let cut = truncate(&long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= MAX_QUOTE + '…'.len_utf8());
    }
}
