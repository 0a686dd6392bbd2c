//! LLM chat streams, provider-neutral and free of IO.
//!
//! The relay's async driver (`chat::relay`) owns the HTTP connection; everything it needs to *understand*
//! a provider lives here as plain data and state machines: how to build the request
//! ([`ProviderKind::request_body`], [`ProviderKind::endpoint`], [`ProviderKind::auth_headers`]),
//! how to turn the response bytes into [`StreamEvent`]s ([`StreamParser`]), what to show from
//! the response headers ([`headers`]), and what a failed response's body says ([`error`]).
//! Keeping it pure means every wire quirk is a unit test fed byte by byte, not a mock server.

pub mod anthropic;
pub mod error;
pub mod headers;
pub mod openai;
pub mod sse;
#[cfg(test)]
pub(crate) mod testing;

use serde::{Deserialize, Serialize};

/// One thing a provider's stream told us, the same for every provider, so that the relay,
/// the store and the TUI never learn a provider's wire format.
///
/// Deltas (`Text`, `Thinking`, `ToolCallArgs`) are fragments to append; `Usage` is a snapshot
/// that replaces the previous one. After `Done` or `Error` a parser emits nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEvent {
    /// A fragment of the answer's text.
    Text(String),
    /// A fragment of the model's reasoning, byte-exact, kept apart so it can be folded away.
    Thinking(String),
    /// A tool call begins; later `ToolCallArgs` with the same `index` belong to it. The index
    /// is the provider's own (Anthropic's block index), so it need not start at 0.
    ToolCallStart {
        /// The provider's index for this call: the only safe key, since calls interleave.
        index: usize,
        /// The provider's call id, needed to send the result back (empty if it sent none).
        id: String,
        /// The tool's name (empty if the provider sent none).
        name: String,
    },
    /// A fragment of a tool call's JSON arguments. Fragments cut through tokens and escapes;
    /// concatenate them per index and parse only once the call is complete.
    ToolCallArgs {
        /// The call this fragment belongs to.
        index: usize,
        /// The raw fragment.
        delta: String,
    },
    /// Token counts so far; replaces any earlier `Usage` of the same stream.
    Usage(Usage),
    /// The model finished and the stream ended properly.
    Done {
        /// Why it stopped, in the provider's words (`stop`, `end_turn`, `tool_calls`, …).
        stop_reason: Option<String>,
    },
    /// The stream failed and is over: a provider error, or an end without the terminator. The
    /// text leads with the provider's structured error type or code when there is one.
    Error(String),
}

/// Token counts as the provider reported them, so cost and context size can be shown without
/// a tokenizer. Each field is `None` when the provider did not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens. OpenAI counts cached tokens in here; Anthropic does not (its
    /// `input_tokens` excludes cache reads and writes).
    pub input: Option<u64>,
    /// Completion tokens, reasoning included.
    pub output: Option<u64>,
    /// Prompt tokens read from the provider's cache, which are billed at a discount.
    pub cached: Option<u64>,
}

/// What every stream ended with when its terminator never came: the reply is incomplete, and
/// its usage (if any) must not be trusted.
pub const INCOMPLETE: &str = "the stream ended before the model finished (no end-of-stream \
                              marker); the reply is incomplete";

/// Turns one provider's response bytes into [`StreamEvent`]s, so the driver can hand it
/// whatever the socket returns, however it is cut.
pub trait StreamParser {
    /// Takes the next bytes, split anywhere (even inside a UTF-8 character or a `\r\n`),
    /// and returns the events that are now complete.
    fn feed(&mut self, bytes: &[u8]) -> Vec<StreamEvent>;
    /// Called at EOF: reports [`INCOMPLETE`] as an `Error` unless the stream already ended
    /// with `Done` or `Error`. An event with no blank line after it is discarded, as the SSE
    /// spec says.
    fn finish(&mut self) -> Vec<StreamEvent>;
}

/// Which wire format a provider speaks; OpenAI-compatible servers (vLLM, llama.cpp,
/// OpenRouter, LiteLLM, …) are all `OpenAi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProviderKind {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages (`/v1/messages`).
    #[serde(rename = "anthropic")]
    Anthropic,
}

impl ProviderKind {
    /// A fresh parser for one response stream of this kind.
    pub fn parser(self) -> Box<dyn StreamParser + Send> {
        match self {
            Self::OpenAi => Box::new(sse::SseParser::new(openai::OpenAi::default())),
            Self::Anthropic => Box::new(sse::SseParser::new(anthropic::Anthropic::default())),
        }
    }

    /// The JSON body of a streaming request, so the driver never builds provider JSON. The
    /// base URL matters only to OpenAI's: its own API names the answer's cap differently for
    /// reasoning models.
    pub fn request_body(self, base_url: &str, request: &ChatRequest) -> serde_json::Value {
        match self {
            Self::OpenAi => openai::request_body(base_url, request),
            Self::Anthropic => anthropic::request_body(request),
        }
    }

    /// The URL to POST to, from the configured base URL (a trailing `/` is tolerated).
    pub fn endpoint(self, base_url: &str) -> String {
        match self {
            Self::OpenAi => openai::endpoint(base_url),
            Self::Anthropic => anthropic::endpoint(base_url),
        }
    }

    /// The headers that authenticate (and, for Anthropic, version) a request.
    pub fn auth_headers(self, key: &str) -> Vec<(&'static str, String)> {
        match self {
            Self::OpenAi => openai::auth_headers(key),
            Self::Anthropic => anthropic::auth_headers(key),
        }
    }
}

/// A chat request in reagent's terms, turned into each provider's JSON by
/// [`ProviderKind::request_body`], so callers stay provider-neutral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The provider's model name.
    pub model: String,
    /// The system prompt; Anthropic wants it apart from the messages, OpenAI as the first one.
    pub system: Option<String>,
    /// The conversation so far, oldest first.
    pub messages: Vec<ChatMessage>,
    /// The user's cap on the reply's length, if they set one. Without one an OpenAI-style
    /// request carries none (a cap nobody asked for cuts long answers) and an Anthropic one,
    /// which must, carries [`anthropic::default_max_tokens`].
    pub max_tokens: Option<u32>,
    /// The tools the model may call. Empty sends no `tools` key at all, so a request without
    /// tools is exactly what it was before tools existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
}

/// A tool the model may call, as both providers describe one: a name, what it is for, and the
/// JSON schema its arguments must follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does and when to use it: all the model knows of it besides the schema.
    pub description: String,
    /// The JSON schema of its arguments (an `object` schema).
    pub schema: serde_json::Value,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who said it.
    pub role: Role,
    /// What it holds, in order: the model's text and tool calls, or the user's text and the
    /// results of the calls the model made in the turn before.
    pub content: Vec<Content>,
}

impl ChatMessage {
    /// A turn of plain text: all there was before tools, and still most turns.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![Content::Text(text.into())],
        }
    }

    /// The text contents joined, for a provider (or a test) that wants one string.
    pub fn joined_text(&self) -> String {
        let texts = self.content.iter().filter_map(|content| match content {
            Content::Text(text) => Some(text.as_str()),
            _ => None,
        });
        texts.collect()
    }
}

/// A piece of a turn. Calls belong to the model's turns and results to the user's turn right
/// after, one result for every call, which both providers require.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// Text: the user's words or the model's answer.
    Text(String),
    /// A tool call the model made, sent back so the model sees what it asked for.
    ToolCall {
        /// The provider's call id, which the result names.
        id: String,
        /// The tool's name.
        name: String,
        /// The JSON arguments as the model streamed them, unparsed, since they may be malformed
        /// (the model erred, or the answer was cut off): OpenAI takes them back as they are,
        /// Anthropic, which wants an object, gets `{}` for anything else.
        arguments: String,
    },
    /// What a tool call returned.
    ToolResult {
        /// The id of the call it answers.
        id: String,
        /// The tool's output, or why it failed or did not run.
        text: String,
        /// Whether it reports a failure or a denial rather than the tool's output.
        error: bool,
    },
}

/// Who said a message; the system prompt is not a role here because Anthropic has no such
/// role ([`ChatRequest::system`] carries it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person at the keyboard.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role's name on the wire, the same for both providers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// A base URL with its trailing slashes removed, so `…/v1/` and `…/v1` build the same URL.
fn trim_base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// A JSON field's string, if it is a non-empty one: empty fragments (role chunks, opening
/// blocks) carry nothing worth an event.
fn non_empty_str(value: Option<&serde_json::Value>) -> Option<&str> {
    value
        .and_then(serde_json::Value::as_str)
        .filter(|text| !text.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_events_serialize_with_snake_case_tags() {
        let event = StreamEvent::ToolCallStart {
            index: 1,
            id: "call_a".into(),
            name: "get_weather".into(),
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"tool_call_start":{"index":1,"id":"call_a","name":"get_weather"}}"#
        );
        assert_eq!(serde_json::from_str::<StreamEvent>(&json).unwrap(), event);
        let done = serde_json::to_value(StreamEvent::Done { stop_reason: None }).unwrap();
        assert_eq!(done, serde_json::json!({"done": {"stop_reason": null}}));
    }

    #[test]
    fn provider_kinds_dispatch_to_their_modules() {
        let request = ChatRequest {
            model: "m".into(),
            system: None,
            messages: vec![],
            max_tokens: Some(16),
            tools: Vec::new(),
        };
        assert_eq!(
            ProviderKind::OpenAi.request_body("http://h/v1", &request),
            openai::request_body("http://h/v1", &request)
        );
        assert_eq!(
            ProviderKind::Anthropic.endpoint("https://api.anthropic.com/"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(ProviderKind::OpenAi.auth_headers("k").len(), 1);
        assert_eq!(
            serde_json::to_string(&ProviderKind::OpenAi).unwrap(),
            r#""openai""#
        );
        let mut parser = ProviderKind::Anthropic.parser();
        assert_eq!(parser.finish(), vec![StreamEvent::Error(INCOMPLETE.into())]);
    }
}
