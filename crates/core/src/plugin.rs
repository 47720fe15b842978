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
//!
//! What a plugin sees and may change:
//!
//! - **Needs.** [`Plugin::needs`] declares what the plugin reads. An observe-only plugin
//!   (usage, latency, ids) leaves `response_body` off, so the relay fast path stays on: for an
//!   OpenAI-shaped caller and upstream the answer's body is passed through as sent
//!   ([`BifrostResponse::wire_body`]) with only ids, model, usage and finish reasons parsed.
//!   One plugin with `response_body` switches the relay off for every request.
//! - **Inbound metadata.** With `request_headers`, [`RequestContext::headers`] holds the
//!   caller's HTTP headers or gRPC metadata (same names), secrets included: never log them.
//! - **Native bodies.** A request that came to a drop-in route in a provider's own dialect
//!   and goes to a provider of that dialect is sent as the caller wrote it; plugins find that
//!   body as `ctx.extensions.get::<Arc<NativeRequest>>()`
//!   ([`NativeRequest`](crate::providers::native::NativeRequest)). A pre-hook's edits to the
//!   unified request are honoured: the edited request is translated and sent instead.
//! - **Streams.** `on_stream_chunk` edits reach every caller whose route encodes the unified
//!   chunks. They do not apply to a native passthrough stream (an `/anthropic` or `/genai`
//!   caller answered by a provider of that dialect): that route relays the provider's own
//!   events, which the unified chunk does not hold. Plugins still see each chunk's ids,
//!   usage and finish reason there.
//! - **Calling the engine.** [`Plugin::attach`] hands the plugin an [`EngineHandle`] once
//!   the engine is built, e.g. for an agent loop that runs tool calls and asks again. A call
//!   made through it runs the plugins again; mark the context (an extension) to skip work.

use std::sync::{Arc, Weak};

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
    /// The transport the request came in on (`http`, `grpc`; empty for embedded use).
    pub transport: &'static str,
    /// The caller's virtual key (`x-bf-vk`), when it sent one.
    pub virtual_key: Option<String>,
    /// Id of the provider key the last attempt used (never the secret); set by the engine
    /// when plugins are registered.
    pub key_id: Option<Arc<str>>,
    /// Retries the engine spent on the answering attempt (set by the engine).
    pub retries: u32,
    /// Index of the fallback that answered, if not the primary (set by the engine).
    pub fallback_index: Option<usize>,
    /// Time spent on provider calls (and the backoff between retries) across every attempt;
    /// for streams, until the first chunk. The gateway's own overhead is the rest.
    pub upstream_time: std::time::Duration,
    /// Typed per-request state for plugins (e.g. a start time or a trace id).
    pub extensions: http::Extensions,
    /// The caller's headers (HTTP) or metadata (gRPC), filled only when a plugin's
    /// [`PluginNeeds::request_headers`] asks for them. Holds secrets: never log it.
    pub headers: http::HeaderMap,
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

/// What a plugin reads, so the engine and transports can skip work no plugin needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginNeeds {
    /// The plugin reads or rewrites the content of answers (choices, messages, chunk
    /// deltas), so answers must be parsed into the unified shape. Off: the plugin sees only
    /// ids, model, usage, finish reasons and errors, and OpenAI-shaped answers may be relayed
    /// as sent.
    pub response_body: bool,
    /// The plugin reads the inbound headers or gRPC metadata ([`RequestContext::headers`]).
    pub request_headers: bool,
}

impl PluginNeeds {
    /// Reads and may rewrite everything: the safe default for a plugin that says nothing.
    pub const ALL: Self = Self {
        response_body: true,
        request_headers: true,
    };
    /// Observes usage, latency, ids and errors only.
    pub const OBSERVE: Self = Self {
        response_body: false,
        request_headers: false,
    };

    /// What a set of plugins needs together.
    pub fn union(self, other: Self) -> Self {
        Self {
            response_body: self.response_body || other.response_body,
            request_headers: self.request_headers || other.request_headers,
        }
    }
}

/// A handle a plugin keeps to call back into the engine (see [`Plugin::attach`]). Weak, so a
/// plugin holding it does not keep the engine alive: after shutdown `engine()` is `None`.
#[derive(Clone)]
pub struct EngineHandle(pub(crate) Weak<crate::engine::Inner>);

impl EngineHandle {
    /// The engine, while it is alive.
    pub fn engine(&self) -> Option<crate::Bifrost> {
        self.0.upgrade().map(crate::Bifrost::from_inner)
    }
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineHandle")
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

    /// What the plugin reads. Default: [`PluginNeeds::ALL`]; an observe-only plugin returns
    /// [`PluginNeeds::OBSERVE`] to keep the relay fast path on.
    fn needs(&self) -> PluginNeeds {
        PluginNeeds::ALL
    }

    /// Called once when the engine holding this plugin is built, with a handle for calling
    /// back into it. Default: nothing.
    fn attach(&self, _engine: EngineHandle) {}

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

    /// Runs once at shutdown (flush buffers here). Default: nothing.
    async fn cleanup(&self) {}

    /// A JSON management API the plugin offers (log queries, MCP clients, …), which every
    /// transport that has such routes mounts under `/api/<prefix>`. Default: none.
    fn api(&self) -> Option<Arc<dyn PluginApi>> {
        None
    }
}

/// One call to a plugin's management API, in transport-neutral terms.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    /// `GET`, `POST`, `DELETE`, …
    pub method: http::Method,
    /// The path after `/api/<prefix>` (`""` or starting with `/`).
    pub path: String,
    /// Query parameters in order, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The JSON body, if the call had one.
    pub body: Option<serde_json::Value>,
}

impl ApiRequest {
    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plugin's management API: JSON in, JSON out, errors as [`BifrostError`] (rendered by the
/// transport with the status the error carries). Kept free of any HTTP framework so core
/// stays transport-neutral.
#[async_trait]
pub trait PluginApi: Send + Sync {
    /// The path segment under `/api/` this API answers (e.g. `logs`).
    fn prefix(&self) -> &str;
    /// Answers one call.
    async fn call(&self, req: ApiRequest) -> Result<serde_json::Value, BifrostError>;
}

/// The ordered plugin list.
pub type Plugins = Arc<[Arc<dyn Plugin>]>;

/// Why a plugin could not be built from its config block.
#[derive(Debug, thiserror::Error)]
#[error("plugins[{name}].config: {message}")]
pub struct PluginInitError {
    /// The plugin's name.
    pub name: String,
    /// What is wrong with its config.
    pub message: String,
}

/// Builds a plugin from its `config.json` block; a plugin crate exports one under its name
/// (`{"name": …, "enabled": …, "config": {…}}` in the `plugins` array, or `-plugins name`),
/// and a transport's registry collects the factories compiled into the binary.
pub trait PluginFactory: Send + Sync {
    /// The name in `plugins[].name` and `-plugins`.
    fn name(&self) -> &'static str;
    /// The plugin for this `config` (JSON `null` when the block has none).
    fn build(&self, config: &serde_json::Value) -> Result<Arc<dyn Plugin>, PluginInitError>;
}
