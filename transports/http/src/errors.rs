//! The one place that turns a [`BifrostError`] into what the caller sees, in each API dialect.
//!
//! Native routes answer in Bifrost's shape; the drop-in SDK surfaces (`/openai`, `/anthropic`,
//! `/genai`) answer in their SDK's own shape so the SDK raises its usual typed exception. Status
//! code, dialect error type and Google's canonical status are derived side by side from the same
//! HTTP status in one table ([`bifrost_gateway::status`], which also has the gRPC column), so the dialects never disagree about what happened.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bifrost_core::schemas::BifrostError;
use bifrost_gateway::status::status_row;
use bytes::Bytes;
use serde_json::{Value, json};

/// The wire dialect an error is rendered in; one per route family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Bifrost's own `BifrostError` JSON (native `/v1/...` routes).
    #[default]
    Bifrost,
    /// OpenAI's `{"error":{"message","type","param","code"}}` (`/openai/...`).
    OpenAI,
    /// Anthropic's `{"type":"error","error":{"type","message"}}` (`/anthropic/...`).
    Anthropic,
    /// Google's `{"error":{"code","message","status"}}` (`/genai/...`).
    Google,
}

/// Anthropic's own error types, kept as-is when a provider (Anthropic itself) sent one.
const ANTHROPIC_TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "timeout_error",
    "api_error",
    "overloaded_error",
];

impl Dialect {
    /// The dialect of the route family a path belongs to; used by the router's own errors
    /// (404, 405, 413) so that even those reach an SDK in a shape it can parse.
    pub fn for_path(path: &str) -> Self {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/openai") {
            Self::OpenAI
        } else if under("/anthropic") {
            Self::Anthropic
        } else if under("/genai") {
            Self::Google
        } else {
            Self::Bifrost
        }
    }

    /// The error's JSON body in this dialect. Only the message, type, code and parameter
    /// leave the gateway; those never hold secrets (see [`BifrostError`]).
    pub fn error_body(self, err: &BifrostError) -> Value {
        let status = err.http_status();
        let row = status_row(status);
        let (anthropic, google, openai) = (row.anthropic_type, row.google_status, row.openai_type);
        match self {
            Self::Bifrost => serde_json::to_value(err).unwrap_or_else(
                |_| json!({"is_bifrost_error": true, "error": {"message": "internal error"}}),
            ),
            Self::OpenAI => json!({"error": {
                "message": err.error.message,
                "type": err.error.kind.as_deref().unwrap_or(openai),
                "param": err.error.param,
                "code": err.error.code,
            }}),
            Self::Anthropic => {
                let kind = err
                    .error
                    .kind
                    .as_deref()
                    .filter(|k| ANTHROPIC_TYPES.contains(k))
                    .unwrap_or(anthropic);
                let message = match &err.error.param {
                    Some(p) if !err.error.message.contains(p.as_str()) => {
                        format!("{}: {}", p, err.error.message)
                    }
                    _ => err.error.message.clone(),
                };
                json!({"type": "error", "error": {"type": kind, "message": message}})
            }
            Self::Google => json!({"error": {
                "code": status,
                "message": err.error.message,
                "status": google,
            }}),
        }
    }

    /// The whole error response: status, JSON body and, for rate limits, `Retry-After`.
    pub fn error_response(self, err: &BifrostError) -> Response {
        let status =
            StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.error_body(err))
            .unwrap_or_else(|_| br#"{"error":{"message":"internal error"}}"#.to_vec());
        let mut resp = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(ra) = err.retry_after {
            let secs = ra.as_secs() + u64::from(ra.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }

    /// The SSE frame reporting a failure inside a stream that already answered 200; the
    /// caller writes it and then closes the stream (never `[DONE]`, never `message_stop`), so
    /// the client can tell a cut from a finished answer.
    ///
    /// Bifrost and OpenAI: `data: {"error":{…}}`; Anthropic: `event: error` with its error
    /// object; Google: `data: {"error":{"code","message","status"}}`.
    pub fn stream_error_event(self, err: &BifrostError) -> Bytes {
        let (event, body) = match self {
            Self::Bifrost => (
                None,
                json!({"error": err.error, "status_code": err.http_status()}),
            ),
            Self::Anthropic => (Some("error"), self.error_body(err)),
            Self::OpenAI | Self::Google => (None, self.error_body(err)),
        };
        let data = serde_json::to_string(&body)
            .unwrap_or_else(|_| r#"{"error":{"message":"internal error"}}"#.to_owned());
        Bytes::from(match event {
            Some(ev) => format!("event: {ev}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        })
    }

    /// A 4xx/5xx raised by the HTTP layer itself (bad JSON, unknown route, body too large),
    /// rendered in this dialect.
    pub fn http_error(
        self,
        status: StatusCode,
        kind: &str,
        message: impl Into<String>,
    ) -> Response {
        self.error_response(&layer_error(status, kind, message))
    }
}

fn layer_error(status: StatusCode, kind: &str, message: impl Into<String>) -> BifrostError {
    let mut e = if status.is_client_error() {
        BifrostError::invalid_request(message)
    } else {
        BifrostError::gateway(status.as_u16(), kind, message)
    };
    e.status_code = Some(status.as_u16());
    e.error.kind = Some(kind.to_owned());
    e
}

/// Renders an error in Bifrost's JSON shape (`{"error":{"message","type",…}, …}`, which the
/// OpenAI SDKs also understand) with its HTTP status and, for rate limits, `Retry-After`.
pub fn error_response(err: &BifrostError) -> Response {
    Dialect::Bifrost.error_response(err)
}

/// A 4xx/5xx raised by the HTTP layer itself (bad JSON, unknown route, body too large).
pub fn http_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    Dialect::Bifrost.http_error(status, kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrost_core::schemas::{BifrostError, ErrorBody, ProviderKey};

    #[test]
    fn each_dialect_renders_a_rate_limit_its_own_way() {
        let mut e = BifrostError::provider(
            429,
            ErrorBody {
                kind: Some("rate_limit_exceeded".into()),
                code: Some("rl".into()),
                message: "slow down".into(),
                param: None,
            },
        );
        e.retry_after = Some(std::time::Duration::from_millis(1500));
        assert_eq!(
            Dialect::OpenAI.error_body(&e),
            json!({"error": {"message": "slow down", "type": "rate_limit_exceeded", "param": null, "code": "rl"}})
        );
        assert_eq!(
            Dialect::Anthropic.error_body(&e),
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        );
        assert_eq!(
            Dialect::Google.error_body(&e),
            json!({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
        );
        let resp = Dialect::Anthropic.error_response(&e);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "2");
    }

    #[test]
    fn anthropic_keeps_its_own_types_and_names_the_param() {
        let mut e = BifrostError::provider(
            529,
            ErrorBody {
                kind: Some("overloaded_error".into()),
                message: "Overloaded".into(),
                ..ErrorBody::default()
            },
        );
        assert_eq!(
            Dialect::Anthropic.error_body(&e)["error"]["type"],
            "overloaded_error"
        );
        e = BifrostError::invalid_param("top_k", "not supported by provider openai");
        assert_eq!(
            Dialect::Anthropic.error_body(&e)["error"]["message"],
            "top_k: not supported by provider openai"
        );
        let u = BifrostError::unsupported_operation(&ProviderKey::Anthropic, "embeddings");
        assert_eq!(
            Dialect::Google.error_body(&u)["error"]["status"],
            "INVALID_ARGUMENT"
        );
        assert_eq!(
            Dialect::OpenAI.error_body(&u)["error"]["type"],
            "unsupported_operation"
        );
    }

    #[test]
    fn stream_error_events() {
        let e = BifrostError::upstream_unreachable(false, "connection reset");
        let a = Dialect::Anthropic.stream_error_event(&e);
        assert!(a.starts_with(b"event: error\ndata: "));
        let v: Value = serde_json::from_slice(&a[b"event: error\ndata: ".len()..]).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "api_error");
        let o = Dialect::OpenAI.stream_error_event(&e);
        assert!(o.starts_with(b"data: {\"error\":"));
        assert!(o.ends_with(b"\n\n"));
        let b = Dialect::Bifrost.stream_error_event(&e);
        let v: Value = serde_json::from_slice(&b[6..]).unwrap();
        assert_eq!(v["status_code"], 502);
    }

    #[test]
    fn path_prefixes() {
        assert_eq!(
            Dialect::for_path("/openai/v1/chat/completions"),
            Dialect::OpenAI
        );
        assert_eq!(Dialect::for_path("/anthropic"), Dialect::Anthropic);
        assert_eq!(Dialect::for_path("/genai/v1beta/models/x"), Dialect::Google);
        assert_eq!(Dialect::for_path("/openaix"), Dialect::Bifrost);
        assert_eq!(Dialect::for_path("/v1/chat/completions"), Dialect::Bifrost);
        let r = Dialect::Google.http_error(StatusCode::NOT_FOUND, "not_found", "nope");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
}
