//! Optional capture of incoming requests, so tests can check exactly what a gateway sent
//! (path, query, headers, body). Off by default: the benchmark path pays nothing.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::MockState;

/// How many requests are kept (oldest dropped first).
const KEEP: usize = 256;
/// Largest body captured.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`null` when empty or not JSON).
    pub body: serde_json::Value,
}

impl CapturedRequest {
    /// The first value of header `name` (lower-case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A bounded log of captured requests.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    log: Mutex<VecDeque<CapturedRequest>>,
}

impl Capture {
    pub(crate) fn push(&self, r: CapturedRequest) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.len() == KEEP {
            log.pop_front();
        }
        log.push_back(r);
    }

    pub(crate) fn all(&self) -> Vec<CapturedRequest> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    pub(crate) fn clear(&self) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// Middleware: records the request when capture is on, then passes it on unchanged.
pub(crate) async fn record(State(state): State<MockState>, req: Request, next: Next) -> Response {
    if !state.config().capture_requests {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let path = parts.uri.path();
    if !path.starts_with("/_mock/") {
        state.captured_log().push(CapturedRequest {
            method: parts.method.to_string(),
            path: path.to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        });
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
