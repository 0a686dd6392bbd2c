//! One assistant reply, folded from its [`StreamEvent`]s.
//!
//! The parsers emit fragments as they arrive; this is where they become a reply: text and
//! thinking concatenated byte-exact, tool-call arguments gathered by index and parsed only
//! once the stream is over (fragments cut through JSON tokens, so nothing earlier can parse),
//! and token counts that say whether they were reported or estimated.

use std::collections::BTreeMap;

use super::{StreamEvent, Usage};

/// How a reply's stream ended so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Still streaming.
    #[default]
    Streaming,
    /// `Done`: the model finished.
    Finished,
    /// `Error`: the reply is incomplete, for the reason given.
    Failed(String),
}

/// A tool call the model asked for, gathered from its fragments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolCall {
    /// The provider's call id, to send the result back under.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments' JSON text, exactly as streamed.
    pub arguments: String,
}

impl ToolCall {
    /// The arguments parsed; empty arguments mean `{}`, as both providers intend.
    pub fn input(&self) -> Result<serde_json::Value, serde_json::Error> {
        if self.arguments.trim().is_empty() {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&self.arguments)
    }
}

/// Token counts for a reply, and whether any of them is our guess rather than the provider's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    /// The counts.
    pub usage: Usage,
    /// The output count was estimated (the usage never came, or the stream broke off after
    /// it): show it as an estimate.
    pub estimated: bool,
}

/// Everything a stream said, folded together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// The answer's text.
    pub text: String,
    /// The model's reasoning, byte-exact.
    pub thinking: String,
    /// Tool calls by the provider's index (Anthropic's indices have gaps where text was).
    pub tool_calls: BTreeMap<usize, ToolCall>,
    /// The last usage snapshot the provider sent.
    pub usage: Option<Usage>,
    /// Why the model stopped, once it has.
    pub stop_reason: Option<String>,
    /// How the stream ended.
    pub outcome: Outcome,
}

/// Bytes per token for estimates: the usual rule of thumb for English and code.
const BYTES_PER_TOKEN: usize = 4;

impl Reply {
    /// Folds in one event.
    pub fn apply(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Text(text) => self.text.push_str(text),
            StreamEvent::Thinking(text) => self.thinking.push_str(text),
            StreamEvent::ToolCallStart { index, id, name } => {
                let call = self.tool_calls.entry(*index).or_default();
                call.id.clone_from(id);
                call.name.clone_from(name);
            }
            StreamEvent::ToolCallArgs { index, delta } => {
                let call = self.tool_calls.entry(*index).or_default();
                call.arguments.push_str(delta);
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Done { stop_reason } => {
                self.stop_reason.clone_from(stop_reason);
                self.outcome = Outcome::Finished;
            }
            StreamEvent::Error(message) => self.outcome = Outcome::Failed(message.clone()),
        }
    }

    /// The token counts to record. The provider's output count is trusted only if the reply
    /// finished (a broken stream's last usage undercounts, and Anthropic's first says 1);
    /// otherwise it is estimated from what arrived. Input counts are kept as reported.
    pub fn counted(&self) -> Counted {
        let reported = self.usage.unwrap_or_default();
        if self.outcome == Outcome::Finished && reported.output.is_some() {
            return Counted {
                usage: reported,
                estimated: false,
            };
        }
        let bytes = self.text.len()
            + self.thinking.len()
            + self
                .tool_calls
                .values()
                .map(|c| c.name.len() + c.arguments.len())
                .sum::<usize>();
        let output = u64::try_from(bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u64::MAX);
        Counted {
            usage: Usage {
                output: Some(output),
                ..reported
            },
            estimated: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ProviderKind;
    use crate::llm::testing::parse_any_cut;

    fn fold(kind: ProviderKind, stream: &str) -> Reply {
        let mut reply = Reply::default();
        for event in parse_any_cut(kind, stream.as_bytes()) {
            reply.apply(&event);
        }
        reply
    }

    #[test]
    fn openai_tool_arguments_parse_only_once_complete() {
        let reply = fold(
            ProviderKind::OpenAi,
            include_str!("testdata/openai_tools.sse"),
        );
        assert_eq!(reply.outcome, Outcome::Finished);
        assert_eq!(reply.stop_reason.as_deref(), Some("tool_calls"));
        let weather = &reply.tool_calls[&0];
        assert_eq!(
            (weather.id.as_str(), weather.name.as_str()),
            ("call_a", "get_weather")
        );
        assert_eq!(
            weather.input().unwrap(),
            serde_json::json!({"location": "Zürich"})
        );
        assert_eq!(reply.tool_calls[&1].input().unwrap(), serde_json::json!({}));
        // No usage chunk came: the count is an estimate, and says so.
        let counted = reply.counted();
        assert!(counted.estimated);
        assert_eq!(counted.usage.input, None);
    }

    #[test]
    fn anthropic_tool_input_and_empty_input() {
        let reply = fold(
            ProviderKind::Anthropic,
            include_str!("testdata/anthropic_tool.sse"),
        );
        let input = reply.tool_calls[&1].input().unwrap();
        assert_eq!(input, serde_json::json!({"location": "San Francisco, CA"}));
        let empty = ToolCall::default();
        assert_eq!(empty.input().unwrap(), serde_json::json!({}));
        let broken = ToolCall {
            arguments: "{\"a\":".into(),
            ..ToolCall::default()
        };
        assert!(broken.input().is_err());
    }

    #[test]
    fn reported_usage_is_trusted_only_when_finished() {
        let reply = fold(
            ProviderKind::OpenAi,
            include_str!("testdata/openai_text.sse"),
        );
        assert_eq!(reply.text, "Hello 👋");
        let counted = reply.counted();
        assert!(!counted.estimated);
        assert_eq!(counted.usage.output, Some(3));

        // Anthropic broke off mid-stream: input from `message_start` stays, output is recounted.
        let cut = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":\
                   {\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n\
                   event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\
                   \"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"0123456789\"}}\n\n";
        let reply = fold(ProviderKind::Anthropic, cut);
        assert!(matches!(reply.outcome, Outcome::Failed(_)));
        let counted = reply.counted();
        assert!(counted.estimated);
        assert_eq!(counted.usage.input, Some(25));
        assert_eq!(counted.usage.output, Some(3));
    }

    #[test]
    fn thinking_is_kept_byte_exact() {
        let reply = fold(
            ProviderKind::Anthropic,
            include_str!("testdata/anthropic_thinking.sse"),
        );
        assert_eq!(reply.thinking, "Let me solve this step by step");
        let odd = "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"a \\u2028 \"}}]}\n\n\
                   data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"\\r\\n b\\t\"}}]}\n\n";
        let reply = fold(ProviderKind::OpenAi, odd);
        assert_eq!(reply.thinking, "a \u{2028} \r\n b\t");
    }
}
