//! Drop-in SDK surfaces: routes that speak a vendor's own API so that its official SDK works
//! against the gateway by changing only the base URL. Each surface translates its dialect to
//! the unified request, calls the engine, and answers (errors included) in its dialect.
//!
//! Shared here: model routing (`provider/model`, or a bare name for the surface's default
//! provider), the unsupported-parameter policy with its `x-bifrost-dropped-params` header,
//! and the SSE plumbing that ends a failed stream with an error event in the dialect.

pub mod anthropic;
pub mod genai;
pub mod openai;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bifrost_core::providers::native;
use bifrost_core::schemas::{BifrostError, BifrostRequest, BifrostResponse, ProviderKey};
use bifrost_core::{Bifrost, BifrostStream};
use bytes::Bytes;
use futures::StreamExt;

use crate::errors::Dialect;

/// Lists, comma-separated, the parameters the gateway did not send to the provider: those
/// dropped under `client.drop_unsupported_params`, and hints the provider cannot take that
/// change nothing in the answer (e.g. `cache_control` outside Anthropic).
pub const X_DROPPED_PARAMS: HeaderName = HeaderName::from_static("x-bifrost-dropped-params");

/// `provider/model` → that provider and model (split on the first `/`, as on the native
/// routes); a bare name → `default` with the whole name.
pub fn route_model(model: &str, default: ProviderKey) -> (ProviderKey, String) {
    match model.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() => (ProviderKey::parse(p), m.to_owned()),
        _ => (default, model.to_owned()),
    }
}

/// What the target provider cannot take, as found by a surface's translation.
#[derive(Debug, Default)]
pub struct Lost {
    /// Parameters or content that would change the answer: refused unless dropping is on.
    pub unsupported: Vec<String>,
    /// Hints that change nothing in the answer: always reported, never refused.
    pub hints: Vec<String>,
}

/// Applies the unsupported-parameter policy to `req` for its primary target.
///
/// `lost` holds what the surface's translation already knows the target cannot take; the
/// unified parameters the target's own translation would leave out are added here
/// ([`native::unsupported_params`]). By default anything unsupported is a 400 naming it;
/// with `client.drop_unsupported_params` those parameters are removed from `req` instead.
/// Returns the names for [`X_DROPPED_PARAMS`] (dropped parameters and hints). A target that
/// is not configured (e.g. one only a plugin answers) is not checked.
pub fn apply_param_policy(
    bifrost: &Bifrost,
    req: &mut BifrostRequest,
    mut lost: Lost,
) -> Result<Vec<String>, BifrostError> {
    let Some(base) = bifrost.base_provider(&req.provider).cloned() else {
        return Ok(Vec::new());
    };
    for p in native::unsupported_params(&base, &req.params) {
        lost.unsupported.push(p.to_owned());
    }
    for p in native::param_hints(&base, &req.params) {
        lost.hints.push(p.to_owned());
    }
    if !lost.unsupported.is_empty() {
        if !bifrost.client_config().drop_unsupported_params {
            let names = lost.unsupported.join(", ");
            let provider = if base == req.provider {
                req.provider.to_string()
            } else {
                format!("{} ({base} API)", req.provider)
            };
            let mut e = BifrostError::invalid_param(
                &lost.unsupported[0],
                format!(
                    "not supported by provider {provider}: {names}; remove it, or set \
                     client.drop_unsupported_params to drop it with a warning header"
                ),
            );
            e.error.code = Some("unsupported_parameter".to_owned());
            return Err(e);
        }
        let names: Vec<&str> = lost.unsupported.iter().map(String::as_str).collect();
        native::strip_params(&mut req.params, &names);
    }
    let mut dropped = lost.unsupported;
    dropped.extend(lost.hints);
    Ok(dropped)
}

/// Adds [`X_DROPPED_PARAMS`] when something was not sent.
pub fn add_dropped_header(resp: &mut Response, dropped: &[String]) {
    if dropped.is_empty() {
        return;
    }
    let list: String = dropped
        .iter()
        .map(|d| d.replace([',', '\r', '\n'], " "))
        .collect::<Vec<_>>()
        .join(",");
    if let Ok(v) = HeaderValue::from_str(&list) {
        resp.headers_mut().insert(X_DROPPED_PARAMS, v);
    }
}

/// A JSON body with status 200.
pub fn json_ok(bytes: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// How one surface writes a stream: each chunk as zero or more SSE frames, and the frames
/// closing a complete stream. A failure is written as [`Dialect::stream_error_event`] and
/// the stream closes without the closing frames, so a cut is never mistaken for an end.
pub trait StreamEncoder: Send + 'static {
    /// Frames for one chunk (possibly none).
    fn chunk(&mut self, chunk: &BifrostResponse) -> Bytes;
    /// Frames ending a complete stream (e.g. `data: [DONE]`, `message_stop`).
    fn finish(&mut self) -> Bytes;
}

/// An SSE response for `stream`, encoded by `enc`, errors in `dialect`.
pub fn sse<E: StreamEncoder>(stream: BifrostStream, enc: E, dialect: Dialect) -> Response {
    let body = futures::stream::unfold(Some((stream, enc)), move |state| async move {
        let (mut stream, mut enc) = state?;
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    let frames = enc.chunk(&chunk);
                    if frames.is_empty() {
                        continue;
                    }
                    return Some((Ok::<_, std::io::Error>(frames), Some((stream, enc))));
                }
                Some(Err(e)) => {
                    tracing::warn!(
                        request_id = %stream.context().request_id,
                        provider = %stream.provider(),
                        error = %e,
                        "stream ended with an error"
                    );
                    return Some((Ok(dialect.stream_error_event(&e)), None));
                }
                None => return Some((Ok(enc.finish()), None)),
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    sse_headers(&mut resp);
    resp
}

/// SSE response headers.
pub fn sse_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_route_to_their_provider_or_the_default() {
        assert_eq!(
            route_model("gpt-4o-mini", ProviderKey::OpenAI),
            (ProviderKey::OpenAI, "gpt-4o-mini".to_owned())
        );
        assert_eq!(
            route_model("anthropic/claude-3-5-haiku", ProviderKey::OpenAI),
            (ProviderKey::Anthropic, "claude-3-5-haiku".to_owned())
        );
        assert_eq!(
            route_model("openrouter/meta/llama", ProviderKey::Anthropic).1,
            "meta/llama"
        );
        assert_eq!(
            route_model("/x", ProviderKey::Anthropic).0,
            ProviderKey::Anthropic
        );
    }
}
