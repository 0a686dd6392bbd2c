//! Reading one incoming line as a JSON-RPC 2.0 message: what to run, and where its answer goes.
//!
//! The rules, clause by clause:
//! - A line that is not JSON is -32700, answered with a null id.
//! - A key repeated anywhere in the message is -32600 naming the key. JSON leaves duplicates
//!   undefined and serde keeps the last one, so `"method":"runs.list","method":"daemon.shutdown"`
//!   would run what a reader of the first key (a person, a log, a filtering proxy) did not see.
//! - A JSON array is a batch. reagent does not take batches (a reply can be sent from a task,
//!   long after the others): -32600 with a null id, as JSON-RPC 2.0 answers what it cannot
//!   take apart. Any other value that is not an object is -32600 with a null id too.
//! - `id` must be a string, a number or null. It is echoed byte for byte: a client's 2^64 stays
//!   that integer rather than coming back as a rounded float.
//! - `jsonrpc` must be `"2.0"` and `method` a string, else -32600, answered with the id when it
//!   could be read.
//! - A well-formed message without an `id` member is a notification: it runs when its method
//!   and params are valid, and it is never answered, not even with an error.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{Request, RpcError, codes};

/// A request's id exactly as the client wrote it: a string, a number or null.
#[derive(Clone)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// The null id, for answers to messages whose id could not be read.
    pub fn null() -> Self {
        Self(RawValue::NULL.to_owned())
    }

    /// The id's JSON text, as received.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for RequestId {}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// One line, read.
#[derive(Debug)]
pub struct Incoming {
    /// Where the answer goes; `None` for a notification, which is never answered.
    pub reply_to: Option<RequestId>,
    /// The request to run, or the error to answer with.
    pub request: Result<Request, RpcError>,
}

impl Incoming {
    fn invalid(reply_to: RequestId, code: i64, message: String) -> Self {
        Self {
            reply_to: Some(reply_to),
            request: Err(RpcError::new(code, message)),
        }
    }
}

/// The members of a request object; anything else in it is ignored.
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    jsonrpc: Option<Value>,
    /// `Some` whenever the member is there, `null` included: only its absence makes a
    /// notification.
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(deserializer).map(Some)
}

/// Parses one line (see the module docs for the rules).
pub fn parse_request(line: &[u8]) -> Incoming {
    match serde_json::from_slice::<Shape>(line) {
        Ok(Shape::Object) => {}
        Ok(Shape::Array) => {
            let message = "invalid request: batches are not supported: send one request per line";
            return Incoming::invalid(RequestId::null(), codes::INVALID_REQUEST, message.into());
        }
        Ok(Shape::Other) => {
            let message = "invalid request: a request is a JSON object";
            return Incoming::invalid(RequestId::null(), codes::INVALID_REQUEST, message.into());
        }
        Err(err) if err.classify() == serde_json::error::Category::Data => {
            let message = format!("invalid request: {err}");
            return Incoming::invalid(RequestId::null(), codes::INVALID_REQUEST, message);
        }
        Err(err) => {
            let message = format!("parse error: {err}");
            return Incoming::invalid(RequestId::null(), codes::PARSE_ERROR, message);
        }
    }
    // The line is a JSON object without repeated keys, so this cannot fail; should it, the
    // answer is still well-formed.
    let envelope = match serde_json::from_slice::<Envelope>(line) {
        Ok(envelope) => envelope,
        Err(err) => {
            let message = format!("invalid request: {err}");
            return Incoming::invalid(RequestId::null(), codes::INVALID_REQUEST, message);
        }
    };
    let reply_to = match envelope.id {
        None => None,
        Some(id) if is_id(&id) => Some(RequestId(id)),
        Some(_) => {
            let message = "invalid request: `id` must be a string, a number or null";
            return Incoming::invalid(RequestId::null(), codes::INVALID_REQUEST, message.into());
        }
    };
    let answer_to = || reply_to.clone().unwrap_or_else(RequestId::null);
    if envelope.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        let message = "invalid request: `jsonrpc` must be \"2.0\"";
        return Incoming::invalid(answer_to(), codes::INVALID_REQUEST, message.into());
    }
    let method = match envelope.method {
        Some(Value::String(method)) => method,
        Some(_) => {
            let message = "invalid request: `method` must be a string";
            return Incoming::invalid(answer_to(), codes::INVALID_REQUEST, message.into());
        }
        None => {
            let message = "invalid request: `method` is missing";
            return Incoming::invalid(answer_to(), codes::INVALID_REQUEST, message.into());
        }
    };
    let params = match envelope.params {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(params) => params,
    };
    Incoming {
        reply_to,
        request: Request::parse(&method, params),
    }
}

fn is_id(id: &RawValue) -> bool {
    // The first byte tells the JSON type: a string, a number (`-` or a digit) or null.
    matches!(
        id.get().as_bytes().first(),
        Some(b'"' | b'-' | b'0'..=b'9' | b'n')
    )
}

/// What a message is at its top, found by a pass that refuses a key repeated in any object.
enum Shape {
    Object,
    Array,
    Other,
}

/// The longest stretch of a repeated key quoted in an error.
const KEY_SHOWN: usize = 64;

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeys)
    }
}

struct UniqueKeys;

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<Shape>()?.is_some() {}
        Ok(Shape::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if seen.contains(&key) {
                let shown: String = key.chars().take(KEY_SHOWN).collect();
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    shown.escape_debug()
                )));
            }
            map.next_value::<Shape>()?;
            seen.insert(key);
        }
        Ok(Shape::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: &str) -> (Option<RequestId>, RpcError) {
        let incoming = parse_request(line.as_bytes());
        (incoming.reply_to, incoming.request.unwrap_err())
    }

    #[test]
    fn a_repeated_key_is_refused_and_named() {
        let (to, err) =
            error(r#"{"jsonrpc":"2.0","id":1,"method":"runs.list","method":"daemon.shutdown"}"#);
        assert_eq!(err.code, codes::INVALID_REQUEST);
        assert!(
            err.message.contains("duplicate key `method`"),
            "{}",
            err.message
        );
        assert_eq!(to, Some(RequestId::null()));
        // Deep inside params, and spelled with an escape, a repeat is still a repeat.
        let (_, err) = error(
            r#"{"jsonrpc":"2.0","id":1,"method":"run.stop","params":{"run":"a","r\u0075n":"b"}}"#,
        );
        assert!(
            err.message.contains("duplicate key `run`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn ids_are_echoed_as_written() {
        for id in [
            "18446744073709551616",
            "-1",
            "1e3",
            "2.5",
            "\"a\\u0041\"",
            "null",
            "7",
        ] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"runs.list"}}"#);
            let incoming = parse_request(line.as_bytes());
            assert_eq!(incoming.reply_to.unwrap().as_json(), id);
            assert!(incoming.request.is_ok());
        }
        let (to, err) = error(r#"{"jsonrpc":"2.0","id":[1],"method":"runs.list"}"#);
        assert_eq!(
            (to, err.code),
            (Some(RequestId::null()), codes::INVALID_REQUEST)
        );
    }

    #[test]
    fn a_batch_is_refused_with_a_null_id() {
        for line in [r#"[{"jsonrpc":"2.0","id":1,"method":"runs.list"}]"#, "[]"] {
            let (to, err) = error(line);
            assert_eq!(to, Some(RequestId::null()));
            assert_eq!(err.code, codes::INVALID_REQUEST);
            assert!(
                err.message.contains("batches are not supported"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn a_notification_has_nowhere_to_answer() {
        let incoming = parse_request(br#"{"jsonrpc":"2.0","method":"no.such"}"#);
        assert_eq!(incoming.reply_to, None);
        assert_eq!(incoming.request.unwrap_err().code, codes::METHOD_NOT_FOUND);
        // Not a well-formed request, so not a notification either: answered with null.
        let (to, err) = error(r#"{"jsonrpc":"2.0","method":5}"#);
        assert_eq!(
            (to, err.code),
            (Some(RequestId::null()), codes::INVALID_REQUEST)
        );
    }

    #[test]
    fn a_bad_envelope_is_answered_with_its_id() {
        let (to, err) = error(r#"{"jsonrpc":"1.0","id":"x","method":"runs.list"}"#);
        assert_eq!(to.unwrap().as_json(), "\"x\"");
        assert_eq!(err.code, codes::INVALID_REQUEST);
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_crash() {
        let line = "[".repeat(100_000);
        assert_eq!(error(&line).1.code, codes::PARSE_ERROR);
    }
}
