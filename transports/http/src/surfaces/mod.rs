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
use bifrost_core::BifrostStream;
use bifrost_core::schemas::{BifrostError, BifrostResponse};
pub use bifrost_gateway::policy::{Lost, apply_param_policy, route_model};
use bytes::Bytes;
use futures::StreamExt;

use crate::errors::Dialect;

/// Bifrost's integration prefixes: each re-mounts the OpenAI, Anthropic and GenAI routes, so
/// a LiteLLM, LangChain or Pydantic AI client set up for any of those APIs works with
/// `base_url = http://gateway/<prefix>`.
pub const INTEGRATION_PREFIXES: [&str; 3] = ["/litellm", "/langchain", "/pydanticai"];

/// Every integration prefix's routes.
pub fn integrations() -> axum::Router<crate::app::AppState> {
    let mut r = axum::Router::new();
    for prefix in INTEGRATION_PREFIXES {
        r = r
            .merge(openai::integration_router(prefix))
            .merge(anthropic::integration_router(prefix))
            .merge(genai::integration_router(prefix));
    }
    r
}

/// Lists, comma-separated, the parameters the gateway did not send to the provider (see
/// [`bifrost_gateway::policy::X_DROPPED_PARAMS`]).
pub const X_DROPPED_PARAMS: HeaderName =
    HeaderName::from_static(bifrost_gateway::policy::X_DROPPED_PARAMS);

/// Adds [`X_DROPPED_PARAMS`] when something was not sent.
pub fn add_dropped_header(resp: &mut Response, dropped: &[String]) {
    if let Some(list) = bifrost_gateway::policy::dropped_header_value(dropped)
        && let Ok(v) = HeaderValue::from_str(&list)
    {
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

/// How one route family writes a stream: each chunk as zero or more SSE frames, and the
/// frames closing a complete stream. A failure (from the stream, or the encoder's own, such
/// as a reassembled tool call whose arguments are not JSON) is written as
/// [`Dialect::stream_error_event`] and the stream closes without the closing frames, so a
/// cut is never mistaken for an end.
pub trait StreamEncoder: Send + 'static {
    /// Frames for one chunk (possibly none).
    fn chunk(&mut self, chunk: &BifrostResponse) -> Result<Bytes, BifrostError>;
    /// Frames ending a complete stream (e.g. `data: [DONE]`, `message_stop`).
    fn finish(&mut self) -> Result<Bytes, BifrostError>;
}

/// The one SSE writer: a response for `stream`, encoded by `enc`, errors in `dialect`.
pub fn sse<E: StreamEncoder>(stream: BifrostStream, enc: E, dialect: Dialect) -> Response {
    let body = futures::stream::unfold(Some((stream, enc)), move |state| async move {
        let (mut stream, mut enc) = state?;
        loop {
            let frames = match stream.next().await {
                Some(Ok(chunk)) => match enc.chunk(&chunk) {
                    Ok(f) if f.is_empty() => continue,
                    Ok(f) => return Some((Ok::<_, std::io::Error>(f), Some((stream, enc)))),
                    Err(e) => Err(e),
                },
                Some(Err(e)) => Err(e),
                None => enc.finish(),
            };
            return Some(match frames {
                Ok(f) => (Ok(f), None),
                Err(e) => {
                    tracing::warn!(
                        request_id = %stream.context().request_id,
                        provider = %stream.provider(),
                        error = %e,
                        "stream ended with an error"
                    );
                    (Ok(dialect.stream_error_event(&e)), None)
                }
            });
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    sse_headers(&mut resp);
    resp
}

/// OpenAI's stream (also the native `/v1` routes'): `data: <chunk>` per chunk,
/// `data: [DONE]` at the end.
pub struct OpenAIChunks;

impl StreamEncoder for OpenAIChunks {
    fn chunk(&mut self, chunk: &BifrostResponse) -> Result<Bytes, BifrostError> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(b"data: ");
        serde_json::to_writer(&mut out, chunk).map_err(|e| {
            BifrostError::gateway(500, "internal_error", format!("cannot encode chunk: {e}"))
        })?;
        out.extend_from_slice(b"\n\n");
        Ok(Bytes::from(out))
    }

    fn finish(&mut self) -> Result<Bytes, BifrostError> {
        Ok(Bytes::from_static(b"data: [DONE]\n\n"))
    }
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
