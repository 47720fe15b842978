//! A fast fake OpenAI-compatible provider for tests, demos and benchmarks.
//!
//! It answers the OpenAI wire format (chat completions, text completions,
//! embeddings, models) with deterministic content, and lets every request pick
//! its own failure (status codes, `Retry-After`, delays, dropped connections,
//! streams cut mid-way) through `x-mock-*` headers or a top-level `"mock"`
//! object in the JSON body. Requests are counted per API key, scenario and path
//! so tests can assert what reached the upstream.
//!
//! | header (`"mock"` body key)              | effect |
//! |------------------------------------------|--------|
//! | `x-mock-status` (`status`)               | answer with this status and an OpenAI error body |
//! | `x-mock-retry-after` (`retry_after`)     | add `Retry-After` to that error |
//! | `x-mock-scenario` (`scenario`)           | count the request under this id |
//! | `x-mock-fail-times` (`fail_times`)       | with a scenario: only its first N requests get status/reset/cut |
//! | `x-mock-delay-ms` (`delay_ms`)           | wait before the response headers |
//! | `x-mock-reset` (`reset`)                 | drop the connection with no response |
//! | `x-mock-cut-after` (`cut_after`)         | stream: fail the connection after N events, no `[DONE]` |
//! | `x-mock-chunk-delay-ms` (`chunk_delay_ms`) | stream: sleep between events |
//! | `x-mock-chunks` (`chunks`)               | stream: exact number of content chunks |
//! | `x-mock-content` (`content`)             | reply text instead of the echo |
//!
//! Anthropic's Messages API is served too (`POST /v1/messages`, and `GET /v1/models` in
//! Anthropic's shape when the request has `anthropic-version`), with the same faults and
//! Anthropic's error bodies.
//!
//! Google's Gemini API is served under `/v1beta/models` (`{model}:generateContent`,
//! `:streamGenerateContent`, `:countTokens`, `:embedContent`, `:batchEmbedContents`, the
//! model list) with the same faults and Google's error bodies; its key is read from
//! `x-goog-api-key`.
//!
//! Azure OpenAI's deployment routes (`/openai/deployments/{deployment}/chat/completions`,
//! `/completions`, `/embeddings`, and `GET /openai/models`) reuse the OpenAI handlers but
//! require `?api-version=` (400) and the `api-key` header (401), as Azure does.
//!
//! Cohere's v2 API is served at `POST /v2/chat` (whole or its typed event stream) and
//! `POST /v2/embed`, with the same faults and Cohere's `{"message": …}` error bodies.
//!
//! AWS Bedrock's runtime is served at `POST /model/{modelId}/converse`, `/converse-stream`
//! (a binary AWS event stream) and `/invoke` (Titan and Cohere embeddings), checking SigV4
//! or Bedrock API-key authentication (see `bedrock.rs`).
//!
//! Headers win over the body object. Every inference response carries
//! `x-mock-api-key` with the key the request used.
//!
//! The hot path does no logging and little allocation: it is the upstream that
//! gateway benchmarks run against.

mod anthropic;
mod azure;
mod bedrock;
mod capture;
mod chat;
mod cohere;
mod completions;
mod conn;
mod embeddings;
mod faults;
mod gemini;
mod openai;
mod sse;
mod stats;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use bedrock::{BEDROCK_ACCESS_KEY, BEDROCK_SECRET_KEY};
pub use capture::CapturedRequest;
pub use stats::StatsSnapshot;

use crate::conn::{KillSwitch, MockListener};
use crate::stats::Stats;

/// Server-wide behaviour, as opposed to the per-request faults chosen by headers.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    /// Extra latency added before the response headers of every inference
    /// request, to imitate a real provider's time to first byte.
    pub latency: Duration,
    /// Record every request (method, path, query, headers, JSON body) for
    /// [`MockState::captured`] and `GET /_mock/requests`. Off for benchmarks.
    pub capture_requests: bool,
}

/// Shared state of one mock: its configuration and request counters.
///
/// Cheap to clone (one `Arc`); hand it to [`router`] to embed the mock in
/// another axum app and keep a clone to read the counters.
#[derive(Debug, Clone)]
pub struct MockState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: MockConfig,
    stats: Stats,
    captured: capture::Capture,
    /// Never reset, so response ids stay unique for the life of the server.
    seq: AtomicU64,
}

impl MockState {
    /// Creates fresh state with zeroed counters.
    #[must_use]
    pub fn new(config: MockConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                stats: Stats::default(),
                captured: capture::Capture::default(),
                seq: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration this state was created with.
    #[must_use]
    pub fn config(&self) -> &MockConfig {
        &self.inner.config
    }

    /// Number of inference requests received since start or the last reset.
    #[must_use]
    pub fn total_requests(&self) -> u64 {
        self.inner.stats.total()
    }

    /// Number of inference requests that carried this API key.
    #[must_use]
    pub fn requests_for_key(&self, key: &str) -> u64 {
        self.inner.stats.for_key(key)
    }

    /// Number of inference requests that named this fault scenario.
    #[must_use]
    pub fn requests_for_scenario(&self, id: &str) -> u64 {
        self.inner.stats.for_scenario(id)
    }

    /// Number of inference requests received on this exact path (e.g. `/v1/chat/completions`).
    #[must_use]
    pub fn requests_for_path(&self, path: &str) -> u64 {
        self.inner.stats.for_path(path)
    }

    /// A copy of all counters, as served by `GET /_mock/stats`.
    #[must_use]
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Zeroes every counter (including scenario `fail_times` progress) and forgets
    /// captured requests.
    pub fn reset(&self) {
        self.inner.stats.reset();
        self.inner.captured.clear();
    }

    /// Requests recorded so far, oldest first (empty unless `capture_requests` is on).
    #[must_use]
    pub fn captured(&self) -> Vec<CapturedRequest> {
        self.inner.captured.all()
    }

    pub(crate) fn captured_log(&self) -> &capture::Capture {
        &self.inner.captured
    }

    pub(crate) fn counters(&self) -> &Stats {
        &self.inner.stats
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.inner.seq.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Builds the mock's axum router so it can be embedded or served by hand.
///
/// Served this way (without [`serve`]), `reset` faults still break the
/// response, but by failing the body rather than killing the socket.
pub fn router(state: MockState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/chat/completions", post(chat::handle))
        .route("/v1/completions", post(completions::handle))
        .route("/completions", post(completions::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/embeddings", post(embeddings::handle))
        .route("/v1/messages", post(anthropic::handle))
        .route("/messages", post(anthropic::handle))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/models", get(anthropic::models))
        .route("/models", get(openai::models))
        .route("/v1/models/{id}", get(openai::model))
        .route("/models/{id}", get(openai::model))
        .route("/v1beta/models", get(gemini::models))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure::chat),
        )
        .route(
            "/openai/deployments/{deployment}/completions",
            post(azure::completions),
        )
        .route(
            "/openai/deployments/{deployment}/embeddings",
            post(azure::embeddings),
        )
        .route("/openai/models", get(azure::models))
        .route("/v2/chat", post(cohere::chat))
        .route("/v2/embed", post(cohere::embed))
        .route("/model/{model_id}/converse", post(bedrock::converse))
        .route(
            "/model/{model_id}/converse-stream",
            post(bedrock::converse_stream),
        )
        .route("/model/{model_id}/invoke", post(bedrock::invoke))
        .route("/v1beta/models/{*rest}", post(gemini::handle))
        .route("/_mock/stats", get(stats_handler))
        .route("/_mock/reset", post(reset_handler))
        .route("/_mock/health", get(|| async { "ok" }))
        .route("/_mock/requests", get(captured_handler))
        .fallback(openai::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            capture::record,
        ))
        .with_state(state)
}

async fn stats_handler(State(state): State<MockState>) -> Response {
    openai::json_response(axum::http::StatusCode::OK, &state.stats())
}

async fn captured_handler(State(state): State<MockState>) -> Response {
    openai::json_response(axum::http::StatusCode::OK, &state.captured())
}

async fn reset_handler(State(state): State<MockState>) -> Response {
    state.reset();
    axum::http::StatusCode::NO_CONTENT.into_response()
}

/// Serves the mock on `listener` until `shutdown` resolves.
///
/// Sets `TCP_NODELAY` on every connection and wires the per-connection kill
/// switch that `reset` faults use to drop a connection without a response.
pub async fn serve<F>(listener: TcpListener, state: MockState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let app = router(state).into_make_service_with_connect_info::<KillSwitch>();
    axum::serve(MockListener::new(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A mock running in the background of the current tokio runtime.
///
/// Dropping it (or calling [`MockServer::shutdown`]) stops accepting
/// connections and closes idle ones.
#[derive(Debug)]
pub struct MockServer {
    /// The bound address, with the real port when started on port 0.
    pub addr: SocketAddr,
    state: MockState,
    _shutdown: oneshot::Sender<()>,
}

/// Binds `addr` with a deep accept queue (capped by `net.core.somaxconn`), as real
/// providers have: with the default of 128, a burst of connections overflows the queue and
/// the dropped SYNs come back a second later, which a benchmark would blame on the caller.
///
/// # Errors
/// Fails when the socket cannot be bound.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(65_535)
}

impl MockServer {
    /// Binds `127.0.0.1:0` and serves in a spawned task.
    ///
    /// # Errors
    /// Fails when the socket cannot be bound.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Binds `addr` and serves in a spawned task.
    ///
    /// # Errors
    /// Fails when the socket cannot be bound.
    pub async fn bind(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockServer> {
        let listener = listen(addr)?;
        let addr = listener.local_addr()?;
        let state = MockState::new(config);
        let (tx, rx) = oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            // Nothing useful to do with an error here: the server is gone
            // and requests will fail, which is what the test will see.
            let _ = serve(listener, served, async {
                let _ = rx.await;
            })
            .await;
        });
        Ok(MockServer {
            addr,
            state,
            _shutdown: tx,
        })
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:4321`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Number of inference requests received since start or the last reset.
    #[must_use]
    pub fn total_requests(&self) -> u64 {
        self.state.total_requests()
    }

    /// Number of inference requests that carried this API key.
    #[must_use]
    pub fn requests_for_key(&self, key: &str) -> u64 {
        self.state.requests_for_key(key)
    }

    /// Number of inference requests that named this fault scenario.
    #[must_use]
    pub fn requests_for_scenario(&self, id: &str) -> u64 {
        self.state.requests_for_scenario(id)
    }

    /// Number of inference requests received on this exact path.
    #[must_use]
    pub fn requests_for_path(&self, path: &str) -> u64 {
        self.state.requests_for_path(path)
    }

    /// A copy of all counters.
    #[must_use]
    pub fn stats(&self) -> StatsSnapshot {
        self.state.stats()
    }

    /// Zeroes every counter and forgets captured requests.
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Requests recorded so far (needs `MockConfig::capture_requests`).
    #[must_use]
    pub fn captured(&self) -> Vec<CapturedRequest> {
        self.state.captured()
    }

    /// The most recent captured request.
    #[must_use]
    pub fn last_request(&self) -> Option<CapturedRequest> {
        self.state.captured().pop()
    }

    /// The shared state, e.g. to build another router over the same counters.
    #[must_use]
    pub fn state(&self) -> &MockState {
        &self.state
    }

    /// Stops the server (same as dropping it).
    pub fn shutdown(self) {}
}
