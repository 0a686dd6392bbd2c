//! Anthropic Messages streaming.
//!
//! Every event is named twice, by `event:` and by the JSON `type`; we dispatch on the type and
//! log a disagreement. The order is `message_start` (input usage), then per content block
//! `content_block_start` → `content_block_delta`… → `content_block_stop`, then
//! `message_delta` (stop reason, cumulative usage) and `message_stop`, with `ping` anywhere.
//! Blocks are handled by their `index`, never as "the current block"; a `tool_use` block's
//! index is its tool-call index. An `error` event ends the stream (no `message_stop` follows).
//!
//! Unknown event and delta types are ignored, as Anthropic's versioning policy asks, and so is
//! an event whose JSON does not parse: the events after it still stand on their own. The raw
//! bytes, kept by the relay, still hold whatever we skipped (signatures included).

use serde_json::{Map, Value, json};

use super::error::{describe, truncate};
use super::sse::{Dialect, SseEvent};
use super::{ChatMessage, ChatRequest, Content, StreamEvent, Usage, non_empty_str, trim_base};

/// The API version reagent speaks; Anthropic requires it on every request.
pub const API_VERSION: &str = "2023-06-01";

/// The streaming request body: `system` top-level (Anthropic has no system role), the tools
/// when there are any, and the `max_tokens` it requires: the user's cap, else
/// [`default_max_tokens`] for the model.
pub fn request_body(request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request.messages.iter().map(message).collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    let cap = request
        .max_tokens
        .unwrap_or_else(|| default_max_tokens(&request.model));
    body.insert("max_tokens".into(), json!(cap));
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        body.insert("system".into(), json!(system));
    }
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|tool| {
            json!({
                "name": tool.name,
                "description": tool.description,
                "input_schema": tool.schema,
            })
        });
        body.insert("tools".into(), tools.collect());
    }
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), Value::Bool(true));
    Value::Object(body)
}

/// One turn as Messages wants it. A turn of text alone keeps the plain string `content` it
/// always had; one with tool calls or results becomes content blocks, the results first, as
/// Anthropic requires of the turn after a call, then the text and calls in their order. Empty
/// text blocks are left out, since Anthropic refuses them.
fn message(message: &ChatMessage) -> Value {
    let role = message.role.as_str();
    let plain = (message.content.iter()).all(|content| matches!(content, Content::Text(_)));
    if plain {
        return json!({"role": role, "content": message.joined_text()});
    }
    let results = message.content.iter().filter_map(|content| match content {
        Content::ToolResult { id, text, error } => {
            let mut block = json!({"type": "tool_result", "tool_use_id": id, "content": text});
            if let (true, Some(fields)) = (*error, block.as_object_mut()) {
                fields.insert("is_error".into(), Value::Bool(true));
            }
            Some(block)
        }
        _ => None,
    });
    let rest = message.content.iter().filter_map(|content| match content {
        Content::Text(text) if text.is_empty() => None,
        Content::Text(text) => Some(json!({"type": "text", "text": text})),
        Content::ToolCall {
            id,
            name,
            arguments,
        } => Some(json!({
            "type": "tool_use",
            "id": id,
            "name": name,
            "input": input(arguments),
        })),
        Content::ToolResult { .. } => None,
    });
    let blocks: Vec<Value> = results.chain(rest).collect();
    json!({"role": role, "content": blocks})
}

/// A call's streamed arguments as the `input` object Anthropic wants back. Arguments that are
/// empty or not a JSON object (a malformed call, or one cut off) become `{}`: the call's
/// result already tells the model it went wrong, and Anthropic would refuse anything else.
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(object @ Value::Object(_)) => object,
        _ => Value::Object(Map::new()),
    }
}

/// The cap sent when the user set none. Anthropic requires one, but a cap is only wanted to
/// stop runaway answers, so it is as high as each model generation allows: 32000 for the
/// Claude 4 generation and 3.7 Sonnet (Opus 4's output limit; Sonnet's and Haiku's are
/// higher), 8192 for Claude 3.5 and ids we do not know (a gateway's own names included), and
/// 4096 for the Claude 3 models, which refuse more.
pub fn default_max_tokens(model: &str) -> u32 {
    let model = model.to_ascii_lowercase();
    let model = model.rsplit('/').next().unwrap_or_default();
    let Some(rest) = model.strip_prefix("claude-") else {
        return 8192;
    };
    // Newer ids put the family first (`claude-opus-4-1`), older ones the version
    // (`claude-3-5-sonnet-20241022`).
    let rest = ["opus-", "sonnet-", "haiku-"]
        .iter()
        .find_map(|family| rest.strip_prefix(family))
        .unwrap_or(rest);
    let mut numbers = rest.split('-').map(|part| part.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), _) if (4..1000).contains(&major) => 32_000,
        (Some(3), Some(7)) => 32_000,
        (Some(3), Some(5)) => 8192,
        (Some(3), _) => 4096,
        _ => 8192,
    }
}

/// `{base}/v1/messages`: Anthropic's base URL is the bare host (as in its SDKs). A base that
/// already ends in `/v1` is tolerated rather than doubled.
pub fn endpoint(base_url: &str) -> String {
    let base = trim_base(base_url);
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/messages")
}

/// `x-api-key` (left out when empty, for keyless gateways) and `anthropic-version`.
pub fn auth_headers(key: &str) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(2);
    if !key.is_empty() {
        headers.push(("x-api-key", key.to_owned()));
    }
    headers.push(("anthropic-version", API_VERSION.to_owned()));
    headers
}

/// The Anthropic dialect's state between events.
#[derive(Debug, Default)]
pub(super) struct Anthropic {
    /// Cumulative usage: `message_start` gives input, `message_delta` updates what it names.
    usage: Usage,
    /// From `message_delta`, reported with `Done` at `message_stop`.
    stop_reason: Option<String>,
}

impl Dialect for Anthropic {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) {
        let name = event.event.as_deref();
        let value: Value = match serde_json::from_str(&event.data) {
            Ok(value) => value,
            Err(_) if name == Some("error") => {
                let text = format!("the provider sent an error: {}", truncate(&event.data));
                out.push(StreamEvent::Error(text));
                return;
            }
            Err(_) if event.data.trim().is_empty() => return,
            Err(err) => {
                let data = truncate(&event.data);
                tracing::warn!(%err, ?name, %data, "skipping an Anthropic event that is not JSON");
                return;
            }
        };
        let kind = value.get("type").and_then(Value::as_str).or(name);
        if let Some(name) = name.filter(|name| Some(*name) != kind) {
            tracing::warn!(
                name,
                ?kind,
                "Anthropic event name and type disagree; going by type"
            );
        }
        if name == Some("error") || kind == Some("error") {
            let error = value.get("error").unwrap_or(&value);
            out.push(StreamEvent::Error(describe(error)));
            return;
        }
        match kind.unwrap_or_default() {
            "message_start" => self.usage(value.pointer("/message/usage"), out),
            "content_block_start" => block_start(&value, out),
            "content_block_delta" => block_delta(&value, out),
            "message_delta" => {
                if let Some(reason) = non_empty_str(value.pointer("/delta/stop_reason")) {
                    self.stop_reason = Some(reason.to_owned());
                }
                self.usage(value.get("usage"), out);
            }
            "message_stop" => {
                let stop_reason = self.stop_reason.take();
                out.push(StreamEvent::Done { stop_reason });
            }
            _ => {} // `ping`, `content_block_stop`, and whatever is added later.
        }
    }
}

impl Anthropic {
    /// Folds in a usage object. Counts are cumulative, and a field left out is unchanged.
    fn usage(&mut self, usage: Option<&Value>, out: &mut Vec<StreamEvent>) {
        let Some(usage) = usage.filter(|u| u.is_object()) else {
            return;
        };
        let count = |key: &str| usage.get(key).and_then(Value::as_u64);
        let snapshot = &mut self.usage;
        snapshot.input = count("input_tokens").or(snapshot.input);
        snapshot.output = count("output_tokens").or(snapshot.output);
        snapshot.cached = count("cache_read_input_tokens").or(snapshot.cached);
        out.push(StreamEvent::Usage(*snapshot));
    }
}

/// A content block's index, which keys everything about the block.
fn block_index(value: &Value) -> Option<usize> {
    let index = value.get("index").and_then(Value::as_u64)?;
    usize::try_from(index).ok()
}

/// `content_block_start`: a tool call begins, or a text or thinking block (whose opening text
/// is normally empty). `server_tool_use` and `redacted_thinking` blocks are not ours to run or
/// show, and are left to the raw log.
fn block_start(value: &Value, out: &mut Vec<StreamEvent>) {
    let Some(block) = value.get("content_block") else {
        return;
    };
    match block.get("type").and_then(Value::as_str) {
        Some("text") => push_text(block.get("text"), StreamEvent::Text, out),
        Some("thinking") => push_text(block.get("thinking"), StreamEvent::Thinking, out),
        Some("tool_use") => {
            let Some(index) = block_index(value) else {
                tracing::warn!("skipping a tool_use block with no index");
                return;
            };
            out.push(StreamEvent::ToolCallStart {
                index,
                id: non_empty_str(block.get("id"))
                    .unwrap_or_default()
                    .to_owned(),
                name: non_empty_str(block.get("name"))
                    .unwrap_or_default()
                    .to_owned(),
            });
            // Anthropic streams the input as deltas and starts with `{}`; a gateway that puts
            // the whole input here sends no deltas.
            if let Some(input) = block.get("input").filter(|i| !is_empty_input(i)) {
                let delta = input.to_string();
                out.push(StreamEvent::ToolCallArgs { index, delta });
            }
        }
        _ => {}
    }
}

/// `content_block_delta`: text, thinking, or a fragment of a tool call's input. Signatures and
/// unknown delta types (`citations_delta`, …) are not surfaced.
fn block_delta(value: &Value, out: &mut Vec<StreamEvent>) {
    let Some(delta) = value.get("delta") else {
        return;
    };
    match delta.get("type").and_then(Value::as_str) {
        Some("text_delta") => push_text(delta.get("text"), StreamEvent::Text, out),
        Some("thinking_delta") => push_text(delta.get("thinking"), StreamEvent::Thinking, out),
        Some("input_json_delta") => {
            let (Some(index), Some(fragment)) =
                (block_index(value), non_empty_str(delta.get("partial_json")))
            else {
                return;
            };
            let delta = fragment.to_owned();
            out.push(StreamEvent::ToolCallArgs { index, delta });
        }
        _ => {}
    }
}

/// Emits a non-empty string field as a `Text` or `Thinking` event.
fn push_text(field: Option<&Value>, event: fn(String) -> StreamEvent, out: &mut Vec<StreamEvent>) {
    if let Some(text) = non_empty_str(field) {
        out.push(event(text.to_owned()));
    }
}

/// Whether a `tool_use` block's opening `input` is the usual empty placeholder.
fn is_empty_input(input: &Value) -> bool {
    match input {
        Value::Object(map) => map.is_empty(),
        Value::Null => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::{parse_any_cut, text};
    use crate::llm::{INCOMPLETE, ProviderKind, Role, ToolSpec};

    fn parse(stream: &str) -> Vec<StreamEvent> {
        parse_any_cut(ProviderKind::Anthropic, stream.as_bytes())
    }

    fn usage(input: Option<u64>, output: Option<u64>, cached: Option<u64>) -> StreamEvent {
        StreamEvent::Usage(Usage {
            input,
            output,
            cached,
        })
    }

    fn done(reason: &str) -> StreamEvent {
        StreamEvent::Done {
            stop_reason: Some(reason.into()),
        }
    }

    fn args(index: usize, delta: &str) -> StreamEvent {
        StreamEvent::ToolCallArgs {
            index,
            delta: delta.into(),
        }
    }

    #[test]
    fn text_with_ping_and_usage() {
        assert_eq!(
            parse(include_str!("testdata/anthropic_text.sse")),
            vec![
                usage(Some(25), Some(1), Some(0)),
                text("Hello"),
                text(" 世界"),
                usage(Some(25), Some(15), Some(0)),
                done("end_turn"),
            ]
        );
    }

    #[test]
    fn thinking_then_text_cut_off() {
        assert_eq!(
            parse(include_str!("testdata/anthropic_thinking.sse")),
            vec![
                StreamEvent::Thinking("Let me solve this step by step".into()),
                StreamEvent::Error(INCOMPLETE.into()),
            ]
        );
    }

    #[test]
    fn tool_use_by_block_index() {
        assert_eq!(
            parse(include_str!("testdata/anthropic_tool.sse")),
            vec![
                StreamEvent::ToolCallStart {
                    index: 1,
                    id: "toolu_01".into(),
                    name: "get_weather".into()
                },
                args(1, "{\"location\": \"San Fra"),
                args(1, "ncisco, CA\"}"),
                usage(None, Some(89), None),
                done("tool_use"),
            ]
        );
    }

    #[test]
    fn an_error_event_is_terminal() {
        assert_eq!(
            parse(include_str!("testdata/anthropic_error.sse")),
            vec![
                text(" jumps"),
                StreamEvent::Error("overloaded_error: Overloaded".into())
            ]
        );
        let raw = "event: error\ndata: {oops\n\nevent: message_stop\ndata: {}\n\n";
        let expected = "the provider sent an error: {oops";
        assert_eq!(parse(raw), vec![StreamEvent::Error(expected.into())]);
    }

    #[test]
    fn unknown_and_malformed_events_are_skipped() {
        let stream = "\
event: future_event\ndata: {\"type\":\"future_event\",\"x\":1}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"EmwK\"}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"Eq==\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\n\n\
: keep-alive\n\n\
event: ping\ndata: {\"type\":\"ping\"}\n\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"b\"}}\n\n\
event: ping\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"c\"}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n\
event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n";
        let end = StreamEvent::Done { stop_reason: None };
        assert_eq!(parse(stream), vec![text("a"), text("b"), text("c"), end]);
    }

    #[test]
    fn usage_is_cumulative_and_absent_fields_are_unchanged() {
        let stream = "\
event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":500,\"output_tokens\":1}}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":7}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"input_tokens\":12,\"cache_read_input_tokens\":null,\"output_tokens\":9,\"server_tool_use\":{\"web_search_requests\":1}}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n";
        assert_eq!(
            parse(stream),
            vec![
                usage(Some(10), Some(1), Some(500)),
                usage(Some(10), Some(7), Some(500)),
                usage(Some(12), Some(9), Some(500)),
                // `message_stop` had no blank line after it: discarded, so incomplete.
                StreamEvent::Error(INCOMPLETE.into()),
            ]
        );
    }

    #[test]
    fn a_whole_input_in_the_block_start_is_kept() {
        let stream = "\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"n\",\"input\":{\"q\":1}}}\n\n\
event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"u\",\"name\":\"m\",\"input\":{}}}\n\n\
event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n";
        let start = |index, id: &str, name: &str| StreamEvent::ToolCallStart {
            index,
            id: id.into(),
            name: name.into(),
        };
        assert_eq!(
            parse(stream),
            vec![
                start(0, "t", "n"),
                args(0, "{\"q\":1}"),
                start(1, "u", "m"),
                StreamEvent::Error(INCOMPLETE.into()),
            ]
        );
    }

    #[test]
    fn the_default_cap_does_not_cut_a_model_generations_normal_answers() {
        for model in [
            "claude-opus-4-20250514",
            "claude-opus-4-1",
            "claude-sonnet-4-5",
            "claude-haiku-4-5-20251001",
            "claude-3-7-sonnet-20250219",
            "claude-sonnet-5",
            "anthropic/claude-opus-4-1",
        ] {
            assert_eq!(default_max_tokens(model), 32_000, "{model}");
        }
        for model in ["claude-3-5-sonnet-20241022", "claude-3-5-haiku-latest"] {
            assert_eq!(default_max_tokens(model), 8192, "{model}");
        }
        for model in ["claude-3-opus-20240229", "claude-3-haiku-20240307"] {
            assert_eq!(default_max_tokens(model), 4096, "{model}");
        }
        for model in ["claude-test", "my-gateway-model", "claude-20250101", ""] {
            assert_eq!(default_max_tokens(model), 8192, "{model}");
        }
    }

    fn call(id: &str, name: &str, arguments: &str) -> Content {
        Content::ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    fn result(id: &str, text: &str, error: bool) -> Content {
        Content::ToolResult {
            id: id.into(),
            text: text.into(),
            error,
        }
    }

    #[test]
    fn tools_calls_and_results_are_tool_use_and_tool_result_blocks() {
        let mut request = ChatRequest {
            model: "claude-x".into(),
            system: None,
            messages: vec![
                ChatMessage::text(Role::User, "weather and time in Zürich?"),
                ChatMessage {
                    role: Role::Assistant,
                    content: vec![
                        Content::Text("Checking.".into()),
                        call("toolu_a", "get_weather", "{\"location\": \"Zürich\"}"),
                        call("toolu_b", "get_time", "{}"),
                    ],
                },
                ChatMessage {
                    role: Role::User,
                    content: vec![
                        result("toolu_a", "14 °C, cloudy", false),
                        result("toolu_b", "denied by the user", true),
                        Content::Text("and tomorrow?".into()),
                    ],
                },
            ],
            max_tokens: Some(1024),
            tools: vec![ToolSpec {
                name: "get_weather".into(),
                description: "The weather at a place.".into(),
                schema: json!({
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                }),
            }],
        };
        assert_eq!(
            request_body(&request),
            json!({
                "model": "claude-x",
                "max_tokens": 1024,
                "tools": [{
                    "name": "get_weather",
                    "description": "The weather at a place.",
                    "input_schema": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    },
                }],
                "messages": [
                    {"role": "user", "content": "weather and time in Zürich?"},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "text", "text": "Checking."},
                            {
                                "type": "tool_use",
                                "id": "toolu_a",
                                "name": "get_weather",
                                "input": {"location": "Zürich"},
                            },
                            {"type": "tool_use", "id": "toolu_b", "name": "get_time", "input": {}},
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "toolu_a",
                                "content": "14 °C, cloudy",
                            },
                            {
                                "type": "tool_result",
                                "tool_use_id": "toolu_b",
                                "content": "denied by the user",
                                "is_error": true,
                            },
                            {"type": "text", "text": "and tomorrow?"},
                        ],
                    },
                ],
                "stream": true,
            })
        );
        // Results come first whatever the order given; calls without text have no empty
        // text block.
        request.messages[1].content[0] = Content::Text(String::new());
        request.messages[2].content.rotate_right(1);
        let body = request_body(&request);
        assert_eq!(body["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(
            body["messages"][1]["content"].as_array().map(Vec::len),
            Some(2)
        );
        let kinds: Vec<&Value> = (body["messages"][2]["content"].as_array().into_iter())
            .flatten()
            .map(|block| &block["type"])
            .collect();
        assert_eq!(kinds, ["tool_result", "tool_result", "text"]);
        request.tools.clear();
        assert!(request_body(&request).get("tools").is_none());
    }

    #[test]
    fn malformed_or_cut_off_arguments_are_sent_back_as_an_empty_input() {
        for arguments in [
            "",
            "{\"location\": \"Zür",
            "[1, 2]",
            "\"text\"",
            "null",
            "not json",
        ] {
            let request = ChatRequest {
                model: "claude-x".into(),
                system: None,
                messages: vec![ChatMessage {
                    role: Role::Assistant,
                    content: vec![call("toolu_a", "get_weather", arguments)],
                }],
                max_tokens: Some(16),
                tools: Vec::new(),
            };
            let body = request_body(&request);
            assert_eq!(
                body["messages"][0]["content"],
                json!([{"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {}}]),
                "{arguments:?}"
            );
        }
    }

    #[test]
    fn request_shape() {
        let request = ChatRequest {
            model: "claude-x".into(),
            system: Some("be brief".into()),
            messages: vec![ChatMessage::text(Role::User, "hi")],
            max_tokens: Some(1024),
            tools: Vec::new(),
        };
        assert_eq!(
            request_body(&request),
            json!({
                "model": "claude-x",
                "max_tokens": 1024,
                "system": "be brief",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": true,
            })
        );
        let no_system = ChatRequest {
            system: None,
            ..request
        };
        assert!(request_body(&no_system).get("system").is_none());
        let uncapped = ChatRequest {
            max_tokens: None,
            ..no_system
        };
        assert_eq!(request_body(&uncapped)["max_tokens"], 8192);
        let url = "https://api.anthropic.com/v1/messages";
        for base in [
            "https://api.anthropic.com",
            "https://api.anthropic.com/",
            "https://api.anthropic.com/v1/",
        ] {
            assert_eq!(endpoint(base), url);
        }
        assert_eq!(
            auth_headers("sk-ant"),
            vec![
                ("x-api-key", "sk-ant".to_owned()),
                ("anthropic-version", "2023-06-01".to_owned())
            ]
        );
    }
}
