//! OpenAI Chat Completions streaming, as spoken by OpenAI and the compatible servers (vLLM,
//! llama.cpp, DeepSeek, OpenRouter, LiteLLM, Azure).
//!
//! Each event is `data: {chunk}`; the stream ends with `data: [DONE]`. A chunk carries
//! `choices[0].delta` (text, reasoning, tool-call fragments keyed by `index`), a
//! `finish_reason` on its own chunk, and, when asked for, a last chunk with `choices: []` and
//! the `usage`. An `{"error": …}` object (or an `event: error`) ends the stream: the status
//! was already 200, so this is the only way the server can say it failed.
//!
//! A chunk that is not JSON, or not the shape we expect, is skipped with a warning rather than
//! ending the stream: each chunk stands alone, so the ones after it are still good. (A lost
//! tool-call fragment then shows up when the arguments fail to parse.)

use serde_json::{Value, json};

use super::error::{describe, truncate};
use super::sse::{Dialect, SseEvent};
use super::{ChatMessage, ChatRequest, Content, StreamEvent, Usage, non_empty_str, trim_base};

/// The streaming request body: the system prompt as the first message, the usage chunk asked
/// for (otherwise OpenAI sends no usage at all when streaming), the tools as `function`s when
/// there are any, and a cap on the answer only when the user set one, in the field
/// [`cap_field`] picks for this server and model.
pub fn request_body(base_url: &str, request: &ChatRequest) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in &request.messages {
        push_message(message, &mut messages);
    }
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let Some(fields) = body.as_object_mut() else {
        return body;
    };
    if !request.tools.is_empty() {
        let tools = request.tools.iter().map(|tool| {
            json!({
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.schema,
                },
            })
        });
        fields.insert("tools".into(), tools.collect());
    }
    if let Some(cap) = request.max_tokens {
        fields.insert(cap_field(base_url, &request.model).into(), json!(cap));
    }
    body
}

/// A call's arguments as sent back: as streamed when they are a JSON object, else `{}`.
fn whole_arguments(arguments: &str) -> &str {
    match serde_json::from_str::<serde_json::Map<String, Value>>(arguments) {
        Ok(_) => arguments,
        Err(_) => "{}",
    }
}

/// One turn as Chat Completions wants it. Results are not part of a turn there but messages
/// of their own (`role: tool`, one per call, in order), which come first, and the turn's own
/// message follows only if it says something: the model's calls go in its `tool_calls`, with
/// `content: null` when it wrote no text. A turn without calls or results is the plain
/// `{role, content}` it always was, even when empty.
fn push_message(message: &ChatMessage, out: &mut Vec<Value>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut results = false;
    for content in &message.content {
        match content {
            Content::Text(fragment) => text.push_str(fragment),
            Content::ToolCall {
                id,
                name,
                arguments,
            } => calls.push(json!({
                "id": id,
                "type": "function",
                // A call cut off mid-arguments goes back as `{}`: compatible servers that
                // parse the arguments (vLLM's templates) would refuse every later request.
                "function": {"name": name, "arguments": whole_arguments(arguments)},
            })),
            Content::ToolResult { id, text, error } => {
                results = true;
                // There is no `is_error` here; the text must say it.
                let content = if *error {
                    format!("error: {text}")
                } else {
                    text.clone()
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
        }
    }
    let role = message.role.as_str();
    if !calls.is_empty() {
        let content = if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        };
        out.push(json!({"role": role, "content": content, "tool_calls": calls}));
    } else if !results || !text.is_empty() {
        out.push(json!({"role": role, "content": text}));
    }
}

/// The field that caps an answer. OpenAI's own API (and Azure's) rejects `max_tokens` for
/// its reasoning models (o1, o3, o4-mini, gpt-5, …), which take `max_completion_tokens`;
/// every compatible server (vLLM, llama.cpp, Ollama, OpenRouter, …) knows `max_tokens`, and
/// not all of them know the newer name, so elsewhere the old one is sent.
pub fn cap_field(base_url: &str, model: &str) -> &'static str {
    if is_official(base_url) && is_reasoning_model(model) {
        "max_completion_tokens"
    } else {
        "max_tokens"
    }
}

/// Whether the base URL is OpenAI's API or an Azure OpenAI resource.
fn is_official(base_url: &str) -> bool {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    host == "api.openai.com" || host.ends_with(".openai.azure.com")
}

/// OpenAI's reasoning models: the o-series (`o1`, `o3-mini`, `o4-mini-2025-04-16`) and
/// `gpt-5` and later (`gpt-5-mini`, `gpt-5.1`), the generations that take only
/// `max_completion_tokens`.
fn is_reasoning_model(model: &str) -> bool {
    let model = model.to_ascii_lowercase();
    let leading_number = |rest: &str| -> Option<u32> {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    if let Some(rest) = model.strip_prefix('o') {
        return leading_number(rest).is_some();
    }
    model
        .strip_prefix("gpt-")
        .and_then(leading_number)
        .is_some_and(|generation| generation >= 5)
}

/// `{base}/chat/completions`: OpenAI-style base URLs already end in `/v1`.
pub fn endpoint(base_url: &str) -> String {
    format!("{}/chat/completions", trim_base(base_url))
}

/// `Authorization: Bearer {key}`, or nothing for an empty key: local servers (vLLM,
/// llama.cpp) often run without one, and `Bearer ` alone is not a credential.
pub fn auth_headers(key: &str) -> Vec<(&'static str, String)> {
    if key.is_empty() {
        return Vec::new();
    }
    vec![("authorization", format!("Bearer {key}"))]
}

/// The OpenAI dialect's state between events.
#[derive(Debug, Default)]
pub(super) struct OpenAi {
    /// The tool calls started so far: their index and id, to key deltas that lack an index.
    calls: Vec<(usize, Option<String>)>,
    /// The `finish_reason` seen, reported with `Done` when `[DONE]` arrives.
    finish_reason: Option<String>,
}

impl Dialect for OpenAi {
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) {
        let data = event.data.trim();
        if data == "[DONE]" {
            let stop_reason = self.finish_reason.take();
            out.push(StreamEvent::Done { stop_reason });
            return;
        }
        let is_error_event = event.event.as_deref() == Some("error");
        let value: Value = match serde_json::from_str(data) {
            Ok(value) => value,
            Err(_) if is_error_event => {
                let text = format!("the provider sent an error: {}", truncate(data));
                out.push(StreamEvent::Error(text));
                return;
            }
            Err(_) if data.is_empty() => return,
            Err(err) => {
                let data = truncate(data);
                tracing::warn!(%err, %data, "skipping an OpenAI stream event that is not JSON");
                return;
            }
        };
        if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
            out.push(StreamEvent::Error(describe(error)));
            return;
        }
        if is_error_event {
            out.push(StreamEvent::Error(describe(&value)));
            return;
        }
        if let Some(choice) = first_choice(&value) {
            if let Some(delta) = choice.get("delta") {
                self.delta(delta, out);
            }
            if let Some(reason) = non_empty_str(choice.get("finish_reason")) {
                self.finish_reason = Some(reason.to_owned());
            }
        }
        if let Some(usage) = value.get("usage").filter(|u| u.is_object()) {
            out.push(StreamEvent::Usage(Usage {
                input: usage.get("prompt_tokens").and_then(Value::as_u64),
                output: usage.get("completion_tokens").and_then(Value::as_u64),
                cached: usage
                    .pointer("/prompt_tokens_details/cached_tokens")
                    .and_then(Value::as_u64),
            }));
        }
    }
}

impl OpenAi {
    /// One choice's delta: reasoning first (it comes before the answer), then text, then tools.
    fn delta(&mut self, delta: &Value, out: &mut Vec<StreamEvent>) {
        // Servers that send both fields send the same text twice; `reasoning_content` wins.
        let reasoning = non_empty_str(delta.get("reasoning_content"))
            .or_else(|| non_empty_str(delta.get("reasoning")));
        if let Some(reasoning) = reasoning {
            out.push(StreamEvent::Thinking(reasoning.to_owned()));
        }
        if let Some(text) = non_empty_str(delta.get("content")) {
            out.push(StreamEvent::Text(text.to_owned()));
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                self.tool_call(call, out);
            }
        }
    }

    /// One tool-call fragment. Keyed by `index`; failing that by `id` (Gemini's compatible
    /// API has sent calls without an index); failing both, the latest call.
    fn tool_call(&mut self, call: &Value, out: &mut Vec<StreamEvent>) {
        let id = non_empty_str(call.get("id"));
        let index = call
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or_else(|| self.index_without_index(id));
        let function = call.get("function");
        if !self.calls.iter().any(|(known, _)| *known == index) {
            self.calls.push((index, id.map(str::to_owned)));
            let name = non_empty_str(function.and_then(|f| f.get("name")));
            out.push(StreamEvent::ToolCallStart {
                index,
                id: id.unwrap_or_default().to_owned(),
                name: name.unwrap_or_default().to_owned(),
            });
        }
        let delta = match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(fragment)) => fragment.clone(),
            // Some servers send a whole call's arguments as an object.
            Some(value @ (Value::Object(_) | Value::Array(_))) => value.to_string(),
            _ => String::new(),
        };
        if !delta.is_empty() {
            out.push(StreamEvent::ToolCallArgs { index, delta });
        }
    }

    /// Where a fragment with no `index` goes: the call with its id, a new call for a new id,
    /// or (with no id either) the latest call.
    fn index_without_index(&self, id: Option<&str>) -> usize {
        let next = self.calls.iter().map(|c| c.0 + 1).max().unwrap_or(0);
        match id {
            Some(id) => self
                .calls
                .iter()
                .find(|(_, known)| known.as_deref() == Some(id))
                .map_or(next, |c| c.0),
            None => self.calls.last().map_or(0, |c| c.0),
        }
    }
}

/// The choice with index 0 (the only one we ask for), if this chunk has one: usage chunks and
/// Azure's content-filter chunks have `choices: []`.
fn first_choice(chunk: &Value) -> Option<&Value> {
    let choices = chunk.get("choices")?.as_array()?;
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::testing::{parse_any_cut, run, text};
    use crate::llm::{INCOMPLETE, ProviderKind, Role, ToolSpec};

    fn parse(stream: &str) -> Vec<StreamEvent> {
        parse_any_cut(ProviderKind::OpenAi, stream.as_bytes())
    }

    fn done(reason: Option<&str>) -> StreamEvent {
        StreamEvent::Done {
            stop_reason: reason.map(str::to_owned),
        }
    }

    fn start(index: usize, id: &str, name: &str) -> StreamEvent {
        StreamEvent::ToolCallStart {
            index,
            id: id.into(),
            name: name.into(),
        }
    }

    fn args(index: usize, delta: &str) -> StreamEvent {
        StreamEvent::ToolCallArgs {
            index,
            delta: delta.into(),
        }
    }

    #[test]
    fn text_with_usage() {
        let usage = Usage {
            input: Some(9),
            output: Some(3),
            cached: Some(0),
        };
        assert_eq!(
            parse(include_str!("testdata/openai_text.sse")),
            vec![
                text("Hel"),
                text("lo 👋"),
                StreamEvent::Usage(usage),
                done(Some("stop"))
            ]
        );
    }

    #[test]
    fn parallel_tool_calls_by_index() {
        assert_eq!(
            parse(include_str!("testdata/openai_tools.sse")),
            vec![
                start(0, "call_a", "get_weather"),
                args(0, "{\"locat"),
                args(0, "ion\": \"Züri"),
                args(0, "ch\"}"),
                start(1, "call_b", "get_time"),
                args(1, "{}"),
                done(Some("tool_calls")),
            ]
        );
    }

    #[test]
    fn reasoning_then_an_unterminated_end() {
        assert_eq!(
            parse(include_str!("testdata/openai_reasoning.sse")),
            vec![
                StreamEvent::Thinking("Let me think".into()),
                StreamEvent::Error(INCOMPLETE.into())
            ]
        );
        let openrouter = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\
                          \"reasoning\":\"Hmm\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\
                          \"delta\":{\"reasoning\":\"x\",\"reasoning_content\":\"x\"}}]}\n\n\
                          data: [DONE]\n\n";
        assert_eq!(
            parse(openrouter),
            vec![
                StreamEvent::Thinking("Hmm".into()),
                StreamEvent::Thinking("x".into()),
                done(None)
            ]
        );
    }

    #[test]
    fn an_error_object_mid_stream_is_terminal() {
        let events = parse(include_str!("testdata/openai_error.sse"));
        let message = "server_error: The server had an error while processing your request. \
                       Sorry about that!";
        assert_eq!(
            events,
            vec![text(" jumps"), StreamEvent::Error(message.into())]
        );
        let litellm = "data: {\"error\": {\"message\": \"litellm.APIConnectionError: boom\", \
                       \"type\": null, \"param\": null, \"code\": \"500\"}}\n\n\
                       data: {\"choices\":[{\"delta\":{\"content\":\"after\"}}]}\n\n";
        assert_eq!(
            parse(litellm),
            vec![StreamEvent::Error(
                "500: litellm.APIConnectionError: boom".into()
            )]
        );
        let named = "event: error\ndata: {\"error\":{\"message\":\"m\",\"type\":\"t\"}}\n\n";
        assert_eq!(parse(named), vec![StreamEvent::Error("t: m".into())]);
        let raw = "event: error\ndata: upstream died\n\n";
        let expected = "the provider sent an error: upstream died";
        assert_eq!(parse(raw), vec![StreamEvent::Error(expected.into())]);
    }

    #[test]
    fn an_event_split_across_reads() {
        let reads: [&[u8]; 3] = [
            b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\xc3",
            b"\xa9llo\"},\"finish_reason\":null}]}\n\nda",
            b"ta: [DONE]\n\n",
        ];
        let expected = vec![text("héllo"), done(None)];
        assert_eq!(run(ProviderKind::OpenAi, &reads), expected);
        assert_eq!(
            parse_any_cut(ProviderKind::OpenAi, &reads.concat()),
            expected
        );
    }

    #[test]
    fn tool_call_variations_from_the_wild() {
        // LiteLLM: `type` and `content: ""` on every delta, an extra empty-arguments delta.
        let litellm = r#"data: {"choices":[{"index":0,"delta":{"content":"","tool_calls":[{"index":0,"id":"call_x","type":"function","function":{"name":"f","arguments":""}}]}}]}

data: {"choices":[{"index":0,"delta":{"content":"","tool_calls":[{"index":0,"type":"function","function":{"arguments":""}}]}}]}

data: {"choices":[{"index":0,"delta":{"content":"","tool_calls":[{"index":0,"type":"function","function":{"arguments":"{\"a\":1}"}}]}}]}

data: [DONE]

"#;
        assert_eq!(
            parse(litellm),
            vec![start(0, "call_x", "f"), args(0, "{\"a\":1}"), done(None)]
        );
        // A whole call in one delta, the id repeated, and calls with no index (keyed by id).
        let compat = r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{\"x\""}},{"index":1,"id":"b","function":{"name":"g","arguments":{"y":2}}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"arguments":":1}"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"id":"c","function":{"name":"h","arguments":"{}"}}]}}]}

data: {"choices":[{"delta":{"tool_calls":[{"id":"b","function":{"arguments":""}},{"function":{"arguments":" "}}]}}]}

data: [DONE]

"#;
        assert_eq!(
            parse(compat),
            vec![
                start(0, "a", "f"),
                args(0, "{\"x\""),
                start(1, "b", "g"),
                args(1, "{\"y\":2}"),
                args(0, ":1}"),
                start(2, "c", "h"),
                args(2, "{}"),
                args(2, " "),
                done(None),
            ]
        );
    }

    #[test]
    fn chunks_without_a_first_choice_and_junk_are_skipped() {
        let stream = ": keep-alive\n\n: OPENROUTER PROCESSING\n\n\
            data: {\"choices\":[],\"prompt_filter_results\":[{\"prompt_index\":0}]}\n\n\
            data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"logprobs\":null,\
            \"system_fingerprint\":\"fp\"}],\"usage\":null}\n\n\
            data: {not json\n\n\
            data: \n\n\
            data: {\"object\":\"something.new\"}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n\
            data: [DONE]\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n";
        assert_eq!(
            parse(stream),
            vec![text("a"), text("b"), done(Some("length"))]
        );
    }

    #[test]
    fn done_without_its_blank_line_is_incomplete() {
        let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n";
        assert_eq!(
            parse(stream),
            vec![text("a"), StreamEvent::Error(INCOMPLETE.into())]
        );
        assert_eq!(parse(""), vec![StreamEvent::Error(INCOMPLETE.into())]);
    }

    #[test]
    fn request_shape() {
        let request = ChatRequest {
            model: "gpt-4o-mini".into(),
            system: Some("be brief".into()),
            messages: vec![
                ChatMessage::text(Role::User, "hi"),
                ChatMessage::text(Role::Assistant, "hello"),
            ],
            max_tokens: None,
            tools: Vec::new(),
        };
        let official = "https://api.openai.com/v1";
        assert_eq!(
            request_body(official, &request),
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
            }),
            "no cap unless the user set one"
        );
        let capped = ChatRequest {
            max_tokens: Some(100),
            ..request
        };
        assert_eq!(request_body(official, &capped)["max_tokens"], 100);
        let url = "https://api.openai.com/v1/chat/completions";
        assert_eq!(endpoint("https://api.openai.com/v1"), url);
        assert_eq!(endpoint("https://api.openai.com/v1/"), url);
        assert_eq!(
            auth_headers("sk-1"),
            vec![("authorization", "Bearer sk-1".to_owned())]
        );
        assert_eq!(auth_headers(""), vec![]);
    }

    /// A question, the model's two parallel calls (with a word first), their results (one a
    /// denial), and the user's next words in the same turn.
    fn tool_round_trip() -> ChatRequest {
        let call = |id: &str, name: &str, arguments: &str| Content::ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        };
        let result = |id: &str, text: &str, error| Content::ToolResult {
            id: id.into(),
            text: text.into(),
            error,
        };
        ChatRequest {
            model: "gpt-4o-mini".into(),
            system: None,
            messages: vec![
                ChatMessage::text(Role::User, "weather and time in Zürich?"),
                ChatMessage {
                    role: Role::Assistant,
                    content: vec![
                        Content::Text("Checking.".into()),
                        call("call_a", "get_weather", "{\"location\": \"Zürich\"}"),
                        call("call_b", "get_time", "{}"),
                    ],
                },
                ChatMessage {
                    role: Role::User,
                    content: vec![
                        result("call_a", "14 °C, cloudy", false),
                        result("call_b", "denied by the user", true),
                    ],
                },
            ],
            max_tokens: None,
            tools: vec![
                ToolSpec {
                    name: "get_weather".into(),
                    description: "The weather at a place.".into(),
                    schema: json!({
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    }),
                },
                ToolSpec {
                    name: "get_time".into(),
                    description: "The time now.".into(),
                    schema: json!({"type": "object", "properties": {}}),
                },
            ],
        }
    }

    #[test]
    fn tools_calls_and_results_are_functions_tool_calls_and_tool_messages() {
        let mut request = tool_round_trip();
        assert_eq!(
            request_body("http://127.0.0.1:8000/v1", &request),
            json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "user", "content": "weather and time in Zürich?"},
                    {
                        "role": "assistant",
                        "content": "Checking.",
                        "tool_calls": [
                            {
                                "id": "call_a",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": "{\"location\": \"Zürich\"}",
                                },
                            },
                            {
                                "id": "call_b",
                                "type": "function",
                                "function": {"name": "get_time", "arguments": "{}"},
                            },
                        ],
                    },
                    {"role": "tool", "tool_call_id": "call_a", "content": "14 °C, cloudy"},
                    {
                        "role": "tool",
                        "tool_call_id": "call_b",
                        "content": "error: denied by the user",
                    },
                ],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "description": "The weather at a place.",
                            "parameters": {
                                "type": "object",
                                "properties": {"location": {"type": "string"}},
                                "required": ["location"],
                            },
                        },
                    },
                    {
                        "type": "function",
                        "function": {
                            "name": "get_time",
                            "description": "The time now.",
                            "parameters": {"type": "object", "properties": {}},
                        },
                    },
                ],
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        // Calls without text carry `content: null`; the user's words after the results are a
        // message of their own, after the tool messages.
        request.messages[1].content.remove(0);
        request.messages[2]
            .content
            .push(Content::Text("and tomorrow?".into()));
        let messages = request_body("http://h/v1", &request)["messages"].clone();
        assert_eq!(messages[1]["content"], Value::Null);
        assert_eq!(messages[1]["tool_calls"].as_array().map(Vec::len), Some(2));
        assert_eq!(messages[2]["role"], "tool");
        assert_eq!(messages[3]["role"], "tool");
        assert_eq!(
            messages[4],
            json!({"role": "user", "content": "and tomorrow?"})
        );
        assert_eq!(messages.as_array().map(Vec::len), Some(5));
        // Without tools there is no `tools` key at all.
        request.tools.clear();
        assert!(request_body("http://h/v1", &request).get("tools").is_none());
    }

    #[test]
    fn reasoning_models_of_the_official_api_are_capped_with_max_completion_tokens() {
        let official = [
            "https://api.openai.com/v1",
            "https://API.openai.com:443/v1/",
            "https://acme.openai.azure.com/openai/deployments/x",
        ];
        for base in official {
            for model in [
                "o1",
                "o3-mini",
                "o4-mini-2025-04-16",
                "gpt-5",
                "gpt-5.1",
                "GPT-6",
            ] {
                assert_eq!(
                    cap_field(base, model),
                    "max_completion_tokens",
                    "{base} {model}"
                );
            }
            for model in [
                "gpt-4o",
                "gpt-4.1-mini",
                "gpt-3.5-turbo",
                "omni-moderation",
                "o",
            ] {
                assert_eq!(cap_field(base, model), "max_tokens", "{base} {model}");
            }
        }
        // Compatible servers (and look-alike hosts) keep the field they all know.
        for base in [
            "http://127.0.0.1:8000/v1",
            "https://openrouter.ai/api/v1",
            "https://api.openai.com.evil.example/v1",
        ] {
            assert_eq!(cap_field(base, "o3-mini"), "max_tokens", "{base}");
        }
        let request = ChatRequest {
            model: "o3-mini".into(),
            system: None,
            messages: vec![],
            max_tokens: Some(2000),
            tools: Vec::new(),
        };
        let body = request_body("https://api.openai.com/v1", &request);
        assert_eq!(body["max_completion_tokens"], 2000);
        assert!(body.get("max_tokens").is_none());
    }
}
