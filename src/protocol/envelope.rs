//! The JSON-RPC envelope around every message: requests and responses as they are written,
//! notifications' `jsonrpc` tag, error objects and codes, and [`Blob`] for bytes.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::Notification;

/// An empty success reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ack {}

/// Bytes, carried as base64 in JSON: terminal output is not always UTF-8.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(Base64)
    }
}

/// Decodes the base64 text where the parser has it, so the text is never copied into a
/// `String` first: output is the bulk of what a client reads during a flood.
struct Base64;

impl Visitor<'_> for Base64 {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("base64 text")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Blob, E> {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Blob)
            .map_err(|err| E::custom(format!("invalid base64: {err}")))
    }
}

/// Bytes as the base64 text they came in, checked but kept as text. Keystrokes pass through
/// the daemon to a run's supervisor this way: the client encodes them once, the supervisor
/// decodes them once, and the daemon, which only checks them, never encodes them again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Base64Text(String);

impl Base64Text {
    /// The text for `bytes`.
    pub fn encode(bytes: &[u8]) -> Self {
        Self(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The base64 text itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Base64Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        // Checked where it arrives, so a bad one is the sender's error, not the supervisor's.
        match base64::engine::general_purpose::STANDARD.decode(&text) {
            Ok(_) => Ok(Self(text)),
            Err(err) => Err(de::Error::custom(format!("invalid base64: {err}"))),
        }
    }
}

/// JSON-RPC error codes: the standard ones and reagent's own.
pub mod codes {
    /// The line is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC request (or a line over [`super::MAX_LINE_BYTES`]).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The params do not fit the method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The daemon failed (disk, database …).
    pub const INTERNAL_ERROR: i64 = -32603;
    /// No run matches.
    pub const NOT_FOUND: i64 = -32001;
    /// Several runs match a prefix or name.
    pub const AMBIGUOUS: i64 = -32002;
    /// `hello` with another protocol version.
    pub const VERSION_MISMATCH: i64 = -32003;
    /// The request does not fit the run's state (input to a finished run …).
    pub const INVALID_STATE: i64 = -32004;
    /// The daemon already serves as many connections as it takes (`max_clients`); sent with
    /// a null id to a connection it then closes.
    pub const TOO_MANY_CLIENTS: i64 = -32005;
    /// A model did not come up (it failed or its launch was cancelled); the message says
    /// why, with the end of its server's log when the server died.
    pub const MODEL_FAILED: i64 = -32006;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// One of [`codes`].
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A request as sent by a client.
#[derive(Debug, Serialize)]
pub struct OutgoingRequest<'a, P> {
    /// Always "2.0".
    pub jsonrpc: &'static str,
    /// The client's id for matching the response.
    pub id: u64,
    /// The method name.
    pub method: &'static str,
    /// The params.
    pub params: &'a P,
}

/// A response as the daemon writes it, with the [`RequestId`] it read and its typed result (an
/// error needs no result type: it defaults to [`Value`]). Clients read responses with their own
/// envelope (see `client.rs`), which leaves the result unparsed until its type is known.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response<Id = Value, R = Value> {
    /// Always "2.0".
    pub jsonrpc: String,
    /// The request's id (null when it could not be read).
    pub id: Id,
    /// The result, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<R>,
    /// The error, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl<Id, R> Response<Id, R> {
    /// A success response.
    pub fn ok(id: Id, result: R) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }
}

impl<Id> Response<Id> {
    /// An error response.
    pub fn err(id: Id, error: RpcError) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// A notification as sent by the daemon: the [`Notification`] plus the `jsonrpc` tag.
#[derive(Debug, Serialize)]
pub struct OutgoingNotification<'a> {
    /// Always "2.0".
    pub jsonrpc: &'static str,
    /// `method` and `params`.
    #[serde(flatten)]
    pub notification: &'a Notification,
}
