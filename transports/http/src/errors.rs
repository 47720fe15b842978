//! The one place that turns a [`BifrostError`] into what the caller sees.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bifrost_core::schemas::BifrostError;

/// Renders an error in Bifrost's JSON shape (`{"error":{"message","type",…}, …}`, which the
/// OpenAI SDKs also understand) with its HTTP status and, for rate limits, `Retry-After`.
pub fn error_response(err: &BifrostError) -> Response {
    let status =
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(err).unwrap_or_else(|_| {
        br#"{"is_bifrost_error":true,"error":{"message":"internal error"}}"#.to_vec()
    });
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

/// A 4xx/5xx raised by the HTTP layer itself (bad JSON, unknown route, body too large).
pub fn http_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let mut e = if status.is_client_error() {
        BifrostError::invalid_request(message)
    } else {
        BifrostError::gateway(status.as_u16(), kind, message)
    };
    e.status_code = Some(status.as_u16());
    e.error.kind = Some(kind.to_owned());
    error_response(&e)
}
