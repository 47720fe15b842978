//! Bifrost's error: one type for the client's, the provider's and the gateway's own failures.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ProviderKey;

/// Whose fault an error is; the HTTP status, fallback decision and metric label follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorSource {
    /// The caller sent something invalid; retrying the same request will not help.
    Client,
    /// The upstream provider failed or refused.
    Provider,
    /// The gateway itself (no keys, queue full, internal failure).
    #[default]
    Gateway,
}

/// Bifrost's error, serialized in its `BifrostError` JSON shape:
/// `{is_bifrost_error, status_code, error:{type, code, message, param}, extra_fields}`.
///
/// `is_bifrost_error` is true when the gateway raised it (no provider answered); provider
/// errors carry the provider's status code and message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", error.message)]
pub struct BifrostError {
    /// Event id, set for errors inside a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Raised by the gateway (true) rather than relayed from a provider (false).
    #[serde(default)]
    pub is_bifrost_error: bool,
    /// The HTTP status that best describes the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Details in OpenAI's error shape.
    pub error: ErrorBody,
    /// Which provider and model the error came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_fields: Option<ErrorExtraFields>,
    /// Whether fallbacks may be tried after this error (`None` = yes).
    #[serde(skip)]
    pub allow_fallbacks: Option<bool>,
    /// The provider's `Retry-After`, honoured by retries and passed on to the caller.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// Whose fault it is.
    #[serde(skip)]
    pub origin: ErrorSource,
    /// Whether another attempt at the same provider may succeed.
    #[serde(skip)]
    pub retryable: bool,
}

/// The inner `error` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable category, e.g. `invalid_request_error`, `rate_limit_error`, `request_dropped`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Provider- or gateway-specific code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Human-readable message (never contains secrets).
    pub message: String,
    /// The request parameter at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// Where an error came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorExtraFields {
    /// The provider that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKey>,
    /// The model requested from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_requested: Option<String>,
}

/// Error `type` for a dropped request (queue full).
pub const REQUEST_DROPPED: &str = "request_dropped";
/// Error `type` for a cancelled request.
pub const REQUEST_CANCELLED: &str = "request_cancelled";

impl BifrostError {
    fn new(source: ErrorSource, status: u16, kind: &str, message: impl Into<String>) -> Self {
        Self {
            event_id: None,
            is_bifrost_error: source != ErrorSource::Provider,
            status_code: Some(status),
            error: ErrorBody {
                kind: Some(kind.to_owned()),
                code: None,
                message: message.into(),
                param: None,
            },
            extra_fields: None,
            allow_fallbacks: None,
            retry_after: None,
            origin: source,
            retryable: false,
        }
    }

    /// The caller's request is invalid (400); fallbacks would fail the same way.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorSource::Client, 400, "invalid_request_error", message);
        e.is_bifrost_error = false;
        e.allow_fallbacks = Some(false);
        e
    }

    /// Like [`invalid_request`](Self::invalid_request), naming the parameter at fault.
    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::invalid_request(message);
        e.error.param = Some(param.to_owned());
        e
    }

    /// The gateway's own failure with a chosen status and type.
    pub fn gateway(status: u16, kind: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorSource::Gateway, status, kind, message)
    }

    /// The provider's queue is full and `drop_excess_requests` is on (429, `request_dropped`).
    pub fn queue_full(provider: &ProviderKey) -> Self {
        let mut e = Self::gateway(
            429,
            REQUEST_DROPPED,
            format!("request dropped: queue is full for provider {provider}"),
        );
        e.retry_after = Some(Duration::from_secs(1));
        e
    }

    /// The caller went away or the request was cancelled; no fallback runs after it.
    pub fn cancelled(message: impl Into<String>) -> Self {
        let mut e = Self::gateway(499, REQUEST_CANCELLED, message);
        e.allow_fallbacks = Some(false);
        e
    }

    /// An error answered by a provider (its status, type and message kept).
    pub fn provider(status: u16, body: ErrorBody) -> Self {
        Self {
            event_id: None,
            is_bifrost_error: false,
            status_code: Some(status),
            error: body,
            extra_fields: None,
            allow_fallbacks: None,
            retry_after: None,
            origin: ErrorSource::Provider,
            retryable: is_retryable_status(status),
        }
    }

    /// A transport failure reaching the provider: timeout (504) or connection (502). Retryable.
    pub fn upstream_unreachable(timeout: bool, message: impl Into<String>) -> Self {
        let (status, kind) = if timeout {
            (504, "timeout")
        } else {
            (502, "connection_error")
        };
        let mut e = Self::new(ErrorSource::Provider, status, kind, message);
        e.is_bifrost_error = true;
        e.retryable = true;
        e
    }

    /// The upstream's answer broke off after the request reached it (502, not retryable:
    /// sending the request again could make the caller pay twice; fallbacks stay allowed).
    pub fn upstream_broke(message: impl Into<String>) -> Self {
        let mut e = Self::upstream_unreachable(false, message);
        e.retryable = false;
        e
    }

    /// The provider answered something we could not parse (502, not retryable).
    pub fn bad_upstream_response(message: impl Into<String>) -> Self {
        let mut e = Self::new(
            ErrorSource::Provider,
            502,
            "upstream_response_error",
            message,
        );
        e.is_bifrost_error = true;
        e
    }

    /// The provider has no such operation (e.g. embeddings at Anthropic): 400, no retry,
    /// fallbacks allowed (another provider may have it).
    pub fn unsupported_operation(provider: &ProviderKey, operation: &str) -> Self {
        let mut e = Self::new(
            ErrorSource::Client,
            400,
            "unsupported_operation",
            format!("provider {provider} does not support {operation}"),
        );
        e.is_bifrost_error = true;
        e
    }

    /// Records which provider and model the error came from.
    pub fn with_origin(mut self, provider: &ProviderKey, model: &str) -> Self {
        self.extra_fields = Some(ErrorExtraFields {
            provider: Some(provider.clone()),
            model_requested: Some(model.to_owned()),
        });
        self
    }

    /// The HTTP status to answer with: `status_code`, else 400 for client errors and 500 for
    /// the gateway's own (Bifrost's rule).
    pub fn http_status(&self) -> u16 {
        match self.status_code {
            Some(s) if (400..=599).contains(&s) => s,
            _ if !self.is_bifrost_error => 400,
            _ => 500,
        }
    }

    /// The error's `type`, or `""`.
    pub fn kind(&self) -> &str {
        self.error.kind.as_deref().unwrap_or("")
    }

    /// Whether fallbacks may run after this error.
    pub fn fallbacks_allowed(&self) -> bool {
        self.allow_fallbacks != Some(false) && self.kind() != REQUEST_CANCELLED
    }
}

/// Statuses worth another attempt: rate limits and server-side failures.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_in_bifrost_shape_without_internal_fields() {
        let e = BifrostError::queue_full(&ProviderKey::OpenAI);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            json!({"is_bifrost_error": true, "status_code": 429, "error": {
                "type": "request_dropped", "message": "request dropped: queue is full for provider openai"}})
        );
        let back: BifrostError = serde_json::from_value(v).unwrap();
        assert_eq!(back.error, e.error);
    }

    #[test]
    fn status_rules() {
        assert_eq!(BifrostError::invalid_request("x").http_status(), 400);
        let mut e = BifrostError::gateway(500, "internal", "x");
        e.status_code = None;
        assert_eq!(e.http_status(), 500);
        e.is_bifrost_error = false;
        assert_eq!(e.http_status(), 400);
        let p = BifrostError::provider(503, ErrorBody::default());
        assert!(p.retryable);
        assert!(!BifrostError::provider(401, ErrorBody::default()).retryable);
        assert!(!BifrostError::cancelled("gone").fallbacks_allowed());
    }
}
