//! Errors in each API family's own shape, so a client's SDK reads the gateway's refusals as
//! it reads its provider's: an OpenAI SDK raises `AuthenticationError` on our 401, an
//! Anthropic one `authentication_error`, and neither chokes on a body it does not know.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde_json::json;

/// Which API a route belongs to: it decides error shapes and how streams are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI-compatible: chat completions, completions, embeddings, models.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

/// What kind of refusal an error is; each family names it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No token, or an unknown one.
    Authentication,
    /// A token without the `gateway` scope.
    Permission,
    /// The request itself is wrong (bad JSON, no model, the wrong API for the model).
    InvalidRequest,
    /// No model of that name anywhere.
    NotFound,
    /// The body is over `[http] max_body_bytes`.
    TooLarge,
    /// The upstream could not be reached, or a launch failed.
    Upstream,
}

impl Family {
    /// The family's `llm` protocol: how its streams are parsed.
    pub fn protocol(self) -> crate::llm::ProviderKind {
        match self {
            Self::OpenAi => crate::llm::ProviderKind::OpenAi,
            Self::Anthropic => crate::llm::ProviderKind::Anthropic,
        }
    }

    /// The error's JSON body.
    pub fn error_body(self, kind: Kind, message: &str) -> serde_json::Value {
        match self {
            Self::OpenAi => {
                let (kind, code) = match kind {
                    Kind::Authentication => ("invalid_request_error", "invalid_api_key"),
                    Kind::Permission => ("invalid_request_error", "insufficient_scope"),
                    Kind::InvalidRequest => ("invalid_request_error", "invalid_request"),
                    Kind::NotFound => ("invalid_request_error", "model_not_found"),
                    Kind::TooLarge => ("invalid_request_error", "request_too_large"),
                    Kind::Upstream => ("api_error", "upstream_unavailable"),
                };
                json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            }
            Self::Anthropic => {
                let kind = match kind {
                    Kind::Authentication => "authentication_error",
                    Kind::Permission => "permission_error",
                    Kind::InvalidRequest => "invalid_request_error",
                    Kind::NotFound => "not_found_error",
                    Kind::TooLarge => "request_too_large",
                    Kind::Upstream => "api_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
        }
    }

    /// A complete error response.
    pub fn error(self, status: StatusCode, kind: Kind, message: &str) -> Response {
        let body = self.error_body(kind, message).to_string();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }

    /// The error as one server-sent event, for a stream whose 200 already went out (while a
    /// launch was awaited): both families' SDKs raise on it.
    pub fn sse_error(self, kind: Kind, message: &str) -> String {
        let body = self.error_body(kind, message);
        match self {
            Self::OpenAi => format!("data: {body}\n\n"),
            Self::Anthropic => format!("event: error\ndata: {body}\n\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_names_a_bad_token_its_own_way() {
        let openai = Family::OpenAi.error_body(Kind::Authentication, "no");
        assert_eq!(openai["error"]["code"], "invalid_api_key");
        assert_eq!(openai["error"]["type"], "invalid_request_error");
        let anthropic = Family::Anthropic.error_body(Kind::Authentication, "no");
        assert_eq!(anthropic["type"], "error");
        assert_eq!(anthropic["error"]["type"], "authentication_error");
        assert!(
            Family::Anthropic
                .sse_error(Kind::Upstream, "x")
                .starts_with("event: error\n")
        );
    }
}
