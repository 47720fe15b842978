//! Server-sent event bodies, with optional per-chunk delay and mid-stream cut.
//!
//! Events are serialized into one buffer. Without stream faults the buffer is
//! sent as a single body (one write); otherwise it is sliced (zero-copy) into
//! one frame per event.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Serialize;

use crate::faults::Faults;

/// Builder for a `text/event-stream` response.
pub(crate) struct Sse {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

/// Frames left to send, and the faults that shape how.
struct Frames {
    all: Bytes,
    ends: std::vec::IntoIter<usize>,
    start: usize,
    sent: usize,
    delay: Duration,
    cut_after: Option<usize>,
}

impl Sse {
    pub(crate) fn with_capacity(events: usize) -> Self {
        Self {
            buf: Vec::with_capacity(events * 160),
            ends: Vec::with_capacity(events),
        }
    }

    /// Appends `data: <json>\n\n`.
    pub(crate) fn event<T: Serialize>(&mut self, value: &T) {
        self.buf.extend_from_slice(b"data: ");
        // Writing our own plain structs into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.buf, value);
        self.buf.extend_from_slice(b"\n\n");
        self.ends.push(self.buf.len());
    }

    /// Appends `event: <name>\ndata: <json>\n\n` (Anthropic-style named events).
    pub(crate) fn named_event<T: Serialize>(&mut self, name: &str, value: &T) {
        self.buf.extend_from_slice(b"event: ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b'\n');
        self.event(value);
    }

    /// Appends one pre-encoded frame (binary framings such as AWS event streams).
    pub(crate) fn raw(&mut self, frame: &[u8]) {
        self.buf.extend_from_slice(frame);
        self.ends.push(self.buf.len());
    }

    /// Appends the `data: [DONE]` terminator.
    pub(crate) fn done(&mut self) {
        self.buf.extend_from_slice(b"data: [DONE]\n\n");
        self.ends.push(self.buf.len());
    }

    /// The streaming response, honouring `chunk_delay_ms` and `cut_after`.
    pub(crate) fn into_response(self, faults: &Faults<'_>) -> Response {
        let delay = Duration::from_millis(faults.chunk_delay_ms);
        let cut_after = faults.cut_after.filter(|&n| n < self.ends.len());
        let body = if delay.is_zero() && cut_after.is_none() {
            Body::from(self.buf)
        } else {
            let frames = Frames {
                all: Bytes::from(self.buf),
                ends: self.ends.into_iter(),
                start: 0,
                sent: 0,
                delay,
                cut_after,
            };
            Body::from_stream(futures::stream::unfold(Some(frames), next_frame))
        };
        let mut resp = Response::new(body);
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }
}

async fn next_frame(
    frames: Option<Frames>,
) -> Option<(Result<Bytes, std::io::Error>, Option<Frames>)> {
    let mut f = frames?;
    if f.cut_after == Some(f.sent) {
        // Let hyper flush what was already sent before the error aborts the
        // connection (leaving the chunked body unterminated).
        tokio::task::yield_now().await;
        let cut = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "mock: stream cut");
        return Some((Err(cut), None));
    }
    let end = f.ends.next()?;
    if f.sent > 0 && !f.delay.is_zero() {
        tokio::time::sleep(f.delay).await;
    }
    let frame = f.all.slice(f.start..end);
    f.start = end;
    f.sent += 1;
    Some((Ok(frame), Some(f)))
}
