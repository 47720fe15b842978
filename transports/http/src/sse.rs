//! A [`BifrostStream`] as an OpenAI-style SSE body.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bifrost_core::BifrostStream;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;

/// Writes each chunk as `data: {json}\n\n` and ends with `data: [DONE]\n\n`.
///
/// An error after the first chunk is written as `data: {"error":{…}}\n\n` and the stream ends
/// without `[DONE]`, so the client can tell a failure from a finished answer.
pub fn sse_response(stream: BifrostStream) -> Response {
    let body = futures::stream::unfold(Some(stream), |state| async move {
        let mut stream = state?;
        match stream.next().await {
            Some(Ok(chunk)) => Some((Ok::<_, std::io::Error>(event(&chunk)), Some(stream))),
            Some(Err(e)) => {
                tracing::warn!(
                    request_id = %stream.context().request_id,
                    provider = %stream.provider(),
                    error = %e,
                    "stream ended with an error"
                );
                Some((
                    Ok(event(
                        &serde_json::json!({ "error": e.error, "status_code": e.http_status() }),
                    )),
                    None,
                ))
            }
            None => Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), None)),
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn event<T: serde::Serialize>(value: &T) -> Bytes {
    let mut buf = BytesMut::with_capacity(256).writer();
    std::io::Write::write_all(&mut buf, b"data: ").ok();
    if serde_json::to_writer(&mut buf, value).is_err() {
        return Bytes::from_static(b"data: {\"error\":{\"message\":\"cannot encode chunk\"}}\n\n");
    }
    let mut buf = buf.into_inner();
    buf.put_slice(b"\n\n");
    buf.freeze()
}
