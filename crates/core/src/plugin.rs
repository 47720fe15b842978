//! The plugin extension point: hooks with default no-op methods, one per phase.
//!
//! Phase order for one attempt (the primary, then each fallback again):
//!
//! ```text
//! pre_hook (registration order) ─┬─ short-circuit? ── skip the provider
//!                                └─ provider call (queue, key, retries)
//! non-stream: post_hook (reverse order, only plugins whose pre_hook ran)
//! stream:     on_stream_chunk (reverse order, every chunk) … on_stream_end (reverse order, once)
//!             a stream that fails before its first chunk goes through post_hook as an error
//! ```

use std::sync::Arc;

use async_trait::async_trait;

use crate::providers::ResponseStream;
use crate::schemas::{BifrostError, BifrostRequest, BifrostResponse};

/// What a pre-hook decided.
#[expect(
    clippy::large_enum_variant,
    reason = "built once per request; boxing would add an allocation"
)]
pub enum PreHookOutcome {
    /// Go on to the next plugin and then the provider.
    Continue,
    /// Answer with this response; the provider is not called. For stream requests the engine
    /// turns it into a stream (role, content and finish chunks).
    Respond(BifrostResponse),
    /// Answer with this stream (stream requests only; otherwise it is collected).
    Stream(ResponseStream),
    /// Fail with this error; fallbacks still run unless `allow_fallbacks` is `Some(false)`.
    Fail(BifrostError),
}

impl std::fmt::Debug for PreHookOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Continue => f.write_str("Continue"),
            Self::Respond(r) => f.debug_tuple("Respond").field(r).finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
            Self::Fail(e) => f.debug_tuple("Fail").field(e).finish(),
        }
    }
}

/// Per-request state shared by the engine, the plugins and the transport.
#[derive(Debug, Default)]
pub struct RequestContext {
    /// The caller's `x-request-id` or a generated one.
    pub request_id: String,
    /// Headers to forward upstream (Bifrost's `x-bf-eh-<name>`), already stripped of the prefix.
    pub extra_headers: Vec<(String, String)>,
    /// Overrides the provider's `send_back_raw_response` (`x-bf-send-back-raw-response`).
    pub send_back_raw_response: Option<bool>,
    /// The caller writes answers in OpenAI's format and can take an OpenAI-shaped upstream
    /// body as sent ([`BifrostResponse::wire_body`](crate::schemas::BifrostResponse::wire_body),
    /// written by [`BifrostResponse::to_openai_json`](crate::schemas::BifrostResponse::to_openai_json)).
    /// The engine honours it only when no plugin is registered.
    pub wire_body: bool,
    /// Retries the engine spent on the answering attempt (set by the engine).
    pub retries: u32,
    /// Index of the fallback that answered, if not the primary (set by the engine).
    pub fallback_index: Option<usize>,
    /// Time spent on provider calls (and the backoff between retries) across every attempt;
    /// for streams, until the first chunk. The gateway's own overhead is the rest.
    pub upstream_time: std::time::Duration,
    /// Typed per-request state for plugins (e.g. a start time or a trace id).
    pub extensions: http::Extensions,
}

impl RequestContext {
    /// A context with the given request id.
    pub fn new(request_id: impl Into<String>) -> Self {
        Self {
            request_id: request_id.into(),
            ..Self::default()
        }
    }
}

/// A plugin. Every method has a no-op default, so a plugin implements only the phases it needs.
///
/// Hooks run inline on the request path: keep them fast and push slow work (exporting logs or
/// traces) to a bounded queue drained elsewhere.
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name, for logs and the `-plugins` flag.
    fn name(&self) -> &str;

    /// Runs before the provider, in registration order, once per attempt (primary and each
    /// fallback). May modify the request or answer it. Default: `Continue`.
    async fn pre_hook(
        &self,
        _ctx: &mut RequestContext,
        _req: &mut BifrostRequest,
    ) -> PreHookOutcome {
        PreHookOutcome::Continue
    }

    /// Runs after a non-stream attempt (or a stream that failed before its first chunk), in
    /// reverse registration order, only for plugins whose `pre_hook` ran. May modify the
    /// result or swap it: `Err` → `Ok` recovers, `Ok` → `Err` invalidates. Default: nothing.
    async fn post_hook(
        &self,
        _ctx: &mut RequestContext,
        _result: &mut Result<BifrostResponse, BifrostError>,
    ) {
    }

    /// Runs for every stream chunk, in reverse registration order. Synchronous on purpose: it
    /// sits on the per-chunk hot path. May modify the chunk. Default: nothing.
    fn on_stream_chunk(&self, _ctx: &mut RequestContext, _chunk: &mut BifrostResponse) {}

    /// Runs once when a stream ends, in reverse registration order, with the error that ended
    /// it, if any (an error chunk, a cut upstream, or the client going away). Default: nothing.
    fn on_stream_end(&self, _ctx: &mut RequestContext, _error: Option<&BifrostError>) {}

    /// Runs once at shutdown. Default: nothing.
    async fn cleanup(&self) {}
}

/// The ordered plugin list.
pub type Plugins = Arc<[Arc<dyn Plugin>]>;
