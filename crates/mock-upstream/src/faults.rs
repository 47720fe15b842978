//! Per-request fault injection: parsing `x-mock-*` headers / the body `"mock"`
//! object, counting the request, and applying delay, reset and status faults.

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::MockState;
use crate::conn::KillSwitch;
use crate::openai;

/// Response header echoing the API key the request carried.
pub(crate) const X_MOCK_API_KEY: HeaderName = HeaderName::from_static("x-mock-api-key");

/// The faults and overrides one request asked for.
///
/// Headers take precedence over the body `"mock"` object.
#[derive(Debug, Default)]
pub(crate) struct Faults<'a> {
    pub(crate) status: Option<StatusCode>,
    pub(crate) retry_after: Option<Cow<'a, str>>,
    pub(crate) fail_times: Option<u64>,
    pub(crate) scenario: Option<Cow<'a, str>>,
    pub(crate) delay_ms: u64,
    pub(crate) reset: bool,
    pub(crate) cut_after: Option<usize>,
    pub(crate) chunk_delay_ms: u64,
    pub(crate) chunks: Option<usize>,
    pub(crate) content: Option<Cow<'a, str>>,
}

/// One setting's raw value, from a header or from JSON.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Header(&'a str),
    Json(&'a Value),
}

fn truthy(s: &str) -> bool {
    matches!(s.trim(), "1" | "true" | "yes" | "on")
}

impl<'a> Raw<'a> {
    fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Raw::Header(s) => Some(Cow::Borrowed(s)),
            Raw::Json(Value::String(s)) => Some(Cow::Borrowed(s)),
            Raw::Json(Value::Number(n)) => Some(Cow::Owned(n.to_string())),
            Raw::Json(_) => None,
        }
    }

    fn number(self) -> Option<u64> {
        match self {
            Raw::Header(s) => s.trim().parse().ok(),
            Raw::Json(Value::Number(n)) => n.as_u64(),
            Raw::Json(Value::String(s)) => s.trim().parse().ok(),
            Raw::Json(Value::Bool(b)) => Some(u64::from(*b)),
            Raw::Json(_) => None,
        }
    }

    fn flag(self) -> bool {
        match self {
            Raw::Json(Value::Bool(b)) => *b,
            Raw::Header(s) => truthy(s),
            Raw::Json(Value::String(s)) => truthy(s),
            Raw::Json(Value::Number(n)) => n.as_u64().is_some_and(|n| n != 0),
            Raw::Json(_) => false,
        }
    }
}

impl<'a> Faults<'a> {
    /// Reads the body `"mock"` object (if any), then the `x-mock-*` headers.
    pub(crate) fn parse(headers: &'a HeaderMap, body: Option<&'a Value>) -> Self {
        let mut faults = Faults::default();
        if let Some(Value::Object(map)) = body {
            for (name, value) in map {
                faults.apply(name, Raw::Json(value));
            }
        }
        for (name, value) in headers {
            if let Some(name) = name.as_str().strip_prefix("x-mock-")
                && let Ok(value) = std::str::from_utf8(value.as_bytes())
            {
                faults.apply(name, Raw::Header(value));
            }
        }
        faults
    }

    fn apply(&mut self, name: &str, raw: Raw<'a>) {
        let size = |raw: Raw<'a>| raw.number().and_then(|n| usize::try_from(n).ok());
        match name {
            "status" => {
                self.status = raw
                    .number()
                    .and_then(|n| u16::try_from(n).ok())
                    .and_then(|n| StatusCode::from_u16(n).ok());
            }
            "retry-after" | "retry_after" => self.retry_after = raw.text(),
            "fail-times" | "fail_times" => self.fail_times = raw.number(),
            "scenario" => self.scenario = raw.text(),
            "delay-ms" | "delay_ms" => self.delay_ms = raw.number().unwrap_or(0),
            "reset" => self.reset = raw.flag(),
            "cut-after" | "cut_after" => self.cut_after = size(raw),
            "chunk-delay-ms" | "chunk_delay_ms" => self.chunk_delay_ms = raw.number().unwrap_or(0),
            "chunks" => self.chunks = size(raw).map(|n| n.max(1)),
            "content" => self.content = raw.text(),
            _ => {}
        }
    }
}

/// The API key a request authenticates with: `Authorization: Bearer <key>`,
/// else `api-key`, else `x-api-key`, else `x-goog-api-key` (Gemini).
fn api_key(headers: &HeaderMap) -> Option<&HeaderValue> {
    headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("api-key"))
        .or_else(|| headers.get("x-api-key"))
        .or_else(|| headers.get("x-goog-api-key"))
}

/// Renders a `status` fault in a provider's error format: status, message and the
/// fault's `retry_after` (for formats that carry it in the body).
pub(crate) type ErrorRenderer = fn(StatusCode, &str, Option<&str>) -> Response;

/// OpenAI's error body, the default for [`gate`].
fn openai_error(status: StatusCode, message: &str, _retry_after: Option<&str>) -> Response {
    openai::error_response(status, message, openai::error_type(status), None)
}

/// Strips a case-insensitive `Bearer ` prefix.
fn bare_key(value: &HeaderValue) -> &[u8] {
    let bytes = value.as_bytes();
    match bytes.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"bearer ") => {
            bytes.get(7..).unwrap_or(&[]).trim_ascii()
        }
        _ => bytes.trim_ascii(),
    }
}

/// Counts the request, sleeps for configured latency and `delay_ms`, then
/// applies `reset`/`status` faults when they are active for this request.
/// When they are not (a scenario past its `fail_times`), `cut_after` is
/// cleared too so the stream completes.
///
/// Returns the value for the `x-mock-api-key` response header, or the
/// response to send instead of a normal answer.
pub(crate) async fn gate(
    state: &MockState,
    parts: &Parts,
    faults: &mut Faults<'_>,
) -> Result<HeaderValue, Response> {
    gate_with(state, parts, faults, openai_error).await
}

/// [`gate`] with `status` faults answered by `render` (another provider's error format).
pub(crate) async fn gate_with(
    state: &MockState,
    parts: &Parts,
    faults: &mut Faults<'_>,
    render: ErrorRenderer,
) -> Result<HeaderValue, Response> {
    let raw_key = api_key(&parts.headers).map(bare_key);
    let key_str = raw_key.and_then(|k| std::str::from_utf8(k).ok());
    let scenario_count =
        state
            .counters()
            .record(parts.uri.path(), key_str, faults.scenario.as_deref());
    let key_header = raw_key
        .and_then(|k| HeaderValue::from_bytes(k).ok())
        .unwrap_or_else(|| HeaderValue::from_static(""));

    let delay = state.config().latency + Duration::from_millis(faults.delay_ms);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    // Without a scenario there is nothing to count against: the fault always applies.
    let active = match (faults.fail_times, scenario_count) {
        (Some(limit), Some(seen)) => seen <= limit,
        _ => true,
    };
    if !active {
        faults.cut_after = None;
        return Ok(key_header);
    }
    if faults.reset {
        if let Some(ConnectInfo(switch)) = parts.extensions.get::<ConnectInfo<KillSwitch>>() {
            switch.trip();
        }
        return Err(openai::broken_response());
    }
    if let Some(status) = faults.status {
        let mut resp = render(
            status,
            &format!("mock error {}", status.as_u16()),
            faults.retry_after.as_deref(),
        );
        let headers = resp.headers_mut();
        if let Some(secs) = faults
            .retry_after
            .as_deref()
            .and_then(|s| HeaderValue::from_str(s).ok())
        {
            headers.insert(header::RETRY_AFTER, secs);
        }
        headers.insert(X_MOCK_API_KEY, key_header);
        return Err(resp);
    }
    Ok(key_header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_override_body() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-status", HeaderValue::from_static("503"));
        headers.insert("x-mock-chunk-delay-ms", HeaderValue::from_static("7"));
        let body = serde_json::json!({"status": 429, "retry_after": 2, "reset": true, "scenario": "s1", "chunks": "6"});
        let f = Faults::parse(&headers, Some(&body));
        assert_eq!(f.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(f.retry_after.as_deref(), Some("2"));
        assert!(f.reset);
        assert_eq!(f.scenario.as_deref(), Some("s1"));
        assert_eq!(f.chunks, Some(6));
        assert_eq!(f.chunk_delay_ms, 7);
    }

    #[test]
    fn bearer_prefix_is_stripped() {
        assert_eq!(bare_key(&HeaderValue::from_static("Bearer sk-1")), b"sk-1");
        assert_eq!(bare_key(&HeaderValue::from_static("sk-2")), b"sk-2");
    }
}
