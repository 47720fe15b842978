//! Bifrost's Maxim plugin: every request becomes a [Maxim](https://getmaxim.ai) trace holding
//! one generation per attempt (model, provider, messages, parameters, result, usage, latency,
//! error), sent to Maxim's logging API off the request path.
//!
//! It exists so that a gateway's traffic shows up in Maxim's observability and evaluation
//! tools without touching application code, as Bifrost's Go plugin of the same name does:
//! the same config block (`{"api_key": "env.MAXIM_API_KEY", "log_repo_id": "…"}`) and the
//! same request headers (`x-bf-maxim-trace-id`, `x-bf-maxim-session-id`, tags, …).
//!
//! The request path only moves data into a bounded queue (`try_send`): a slow or dead Maxim
//! costs dropped log entries (counted in `bifrost_maxim_entries_dropped_total`), never a
//! slower or failed request. The plugin is observe-only: it keeps the relay fast path and
//! reads a relayed answer's body as sent.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use bifrost_core::{Bifrost, BifrostConfig};
//! use bifrost_plugin_maxim::{MaximConfig, MaximPlugin};
//!
//! let maxim = MaximPlugin::new(MaximConfig::new("mx-key", Some("repo-id".into())))?;
//! let config = BifrostConfig::from_json(r#"{"providers":{"openai":{"keys":[{"value":"env.OPENAI_API_KEY"}]}}}"#)?;
//! let bifrost = Bifrost::builder(config).plugin(Arc::new(maxim)).build()?;
//! // … and `bifrost.shutdown().await` flushes what is buffered.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod sender;
mod stream;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bifrost_core::schemas::{BifrostError, BifrostRequest, BifrostResponse, RequestType};
use bifrost_core::{
    Plugin, PluginFactory, PluginInitError, PluginNeeds, PreHookOutcome, RequestContext,
};
use serde_json::Value;

pub use config::{DEFAULT_BASE_URL, MaximConfig, MaximConfigError};
pub use sender::{
    BUFFERED_BYTES_METRIC, DROPPED_METRIC, FAILED_UPLOADS_METRIC, FlushError, MaximStats,
    SENT_METRIC,
};

use sender::{Queue, Shared};
use stream::StreamSummary;
use wire::{Entry, ErrorInfo, NewGeneration, NewTrace, Outcome};

/// The name the plugin registers under, as in Bifrost's `plugins` list and `-plugins` flag.
pub const PLUGIN_NAME: &str = "maxim";

/// Prefix of Bifrost's Maxim request headers; names other than the ones below are tags.
pub const HEADER_PREFIX: &str = "x-bf-maxim-";
/// Prefix of Bifrost's shared observability dimensions, also sent as tags (a same-named
/// `x-bf-maxim-` tag wins).
pub const DIMENSION_PREFIX: &str = "x-bf-dim-";

/// Most tags taken from one request, and the longest tag name and value kept, so a caller
/// cannot grow an entry without bound through headers.
const MAX_TAGS: usize = 32;
const MAX_TAG_LEN: usize = 256;

/// Builds the plugin from its `plugins[]` block; registered under [`PLUGIN_NAME`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MaximFactory;

impl PluginFactory for MaximFactory {
    fn name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn build(&self, config: &Value) -> Result<Arc<dyn Plugin>, PluginInitError> {
        let err = |message: String| PluginInitError {
            name: PLUGIN_NAME.to_owned(),
            message,
        };
        let cfg = MaximConfig::from_json(config).map_err(|e| err(e.to_string()))?;
        let plugin = MaximPlugin::new(cfg).map_err(|e| err(e.to_string()))?;
        Ok(Arc::new(plugin))
    }
}

/// Per-request Maxim settings for Rust callers, the counterpart of the `x-bf-maxim-*`
/// headers (Bifrost's Go context keys). Put it in [`RequestContext::extensions`]; a field it
/// leaves empty is taken from the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaximOptions {
    /// Log into this trace instead of a new one (`x-bf-maxim-trace-id`).
    pub trace_id: Option<String>,
    /// Name of the trace (`x-bf-maxim-trace-name`; default `bifrost_<request type>`).
    pub trace_name: Option<String>,
    /// Session the trace belongs to (`x-bf-maxim-session-id`).
    pub session_id: Option<String>,
    /// Log the result into this existing generation and create no trace or generation
    /// (`x-bf-maxim-generation-id`).
    pub generation_id: Option<String>,
    /// Name of the generation (`x-bf-maxim-generation-name`).
    pub generation_name: Option<String>,
    /// Log repository for this request (`x-bf-maxim-log-repo-id`; default the config's).
    pub log_repo_id: Option<String>,
    /// Tags for the trace and the generation (`x-bf-maxim-<name>: <value>`).
    pub tags: Vec<(String, String)>,
}

impl MaximOptions {
    /// Reads Bifrost's headers: the named ones above, every other `x-bf-maxim-<name>` as a
    /// tag, and `x-bf-dim-<name>` as a tag unless `x-bf-maxim-<name>` sets it. Ids that
    /// could not go into Maxim's line format are ignored.
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        let mut o = Self::default();
        let mut dims = Vec::new();
        for (name, value) in headers {
            let Ok(value) = value.to_str() else { continue };
            let value = value.trim();
            let name = name.as_str();
            if let Some(key) = name.strip_prefix(HEADER_PREFIX) {
                let slot = match key {
                    "trace-id" => &mut o.trace_id,
                    "trace-name" => &mut o.trace_name,
                    "session-id" => &mut o.session_id,
                    "generation-id" => &mut o.generation_id,
                    "generation-name" => &mut o.generation_name,
                    "log-repo-id" => &mut o.log_repo_id,
                    _ => {
                        push_tag(&mut o.tags, key, value);
                        continue;
                    }
                };
                if !value.is_empty() {
                    *slot = Some(value.to_owned());
                }
            } else if let Some(key) = name.strip_prefix(DIMENSION_PREFIX) {
                push_tag(&mut dims, key, value);
            }
        }
        for (k, v) in dims {
            if !o.tags.iter().any(|(t, _)| *t == k) {
                push_tag(&mut o.tags, &k, &v);
            }
        }
        for id in [&mut o.trace_id, &mut o.session_id, &mut o.generation_id] {
            if id.as_deref().is_some_and(|v| !wire::valid_id(v)) {
                tracing::debug!("maxim plugin: ignoring an id header Maxim's format cannot carry");
                *id = None;
            }
        }
        o
    }

    /// Fills the fields this one leaves empty from `other`; tags are merged, this one's
    /// winning on a name clash.
    fn or(mut self, other: Self) -> Self {
        self.trace_id = self.trace_id.or(other.trace_id);
        self.trace_name = self.trace_name.or(other.trace_name);
        self.session_id = self.session_id.or(other.session_id);
        self.generation_id = self.generation_id.or(other.generation_id);
        self.generation_name = self.generation_name.or(other.generation_name);
        self.log_repo_id = self.log_repo_id.or(other.log_repo_id);
        for (k, v) in other.tags {
            if !self.tags.iter().any(|(t, _)| *t == k) {
                push_tag(&mut self.tags, &k, &v);
            }
        }
        self
    }
}

fn push_tag(tags: &mut Vec<(String, String)>, key: &str, value: &str) {
    if tags.len() < MAX_TAGS && !key.is_empty() && key.len() <= MAX_TAG_LEN {
        let mut v = value.to_owned();
        if v.len() > MAX_TAG_LEN {
            let mut cut = MAX_TAG_LEN;
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            v.truncate(cut);
        }
        tags.push((key.to_owned(), v));
    }
}

/// Why the plugin could not start.
#[derive(Debug, thiserror::Error)]
pub enum MaximError {
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] MaximConfigError),
    /// The HTTP client could not be built (TLS backend).
    #[error("http client: {0}")]
    Client(String),
}

/// The Maxim plugin. Cheap to share behind an `Arc`; its sender task starts with the first
/// request (or at once inside a Tokio runtime).
pub struct MaximPlugin {
    cfg: Arc<MaximConfig>,
    queue: Queue,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MaximPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaximPlugin")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

impl MaximPlugin {
    /// The plugin with these settings.
    ///
    /// # Errors
    /// [`MaximError`] when the settings are invalid or no HTTP client can be built.
    pub fn new(mut cfg: MaximConfig) -> Result<Self, MaximError> {
        cfg.validate()?;
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(5)))
            .timeout(cfg.request_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| MaximError::Client(e.without_url().to_string()))?;
        let cfg = Arc::new(cfg);
        let (queue, shared) = Queue::new(Arc::clone(&cfg), client);
        tracing::debug!(
            base_url = %cfg.base_url,
            log_repo_id = ?cfg.log_repo_id,
            "maxim plugin configured"
        );
        Ok(Self { cfg, queue, shared })
    }

    /// Builds the plugin from its `plugins[]` config block.
    ///
    /// # Errors
    /// [`MaximError`] naming the bad field.
    pub fn from_config(config: &Value) -> Result<Self, MaximError> {
        Self::new(MaximConfig::from_json(config)?)
    }

    /// Counters: queued, sent, dropped by reason, buffered.
    pub fn stats(&self) -> MaximStats {
        self.shared.snapshot()
    }

    /// Uploads everything queued so far and waits until Maxim accepted it, up to `timeout`.
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when entries are still buffered (Maxim slow or down).
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        self.queue.flush(timeout).await
    }

    /// This request's trace settings, worked out at its first attempt and kept for the
    /// rest; `None` when the request is not logged (no log repository).
    fn trace(&self, ctx: &mut RequestContext) -> Option<TraceState> {
        if let Some(t) = ctx.extensions.get::<TraceState>() {
            return t.repo.is_some().then(|| t.clone());
        }
        let opts = ctx
            .extensions
            .get::<MaximOptions>()
            .cloned()
            .unwrap_or_default()
            .or(MaximOptions::from_headers(&ctx.headers));
        let state = TraceState::new(opts, self.cfg.log_repo_id.as_deref());
        ctx.extensions.insert(state.clone());
        state.repo.is_some().then_some(state)
    }

    /// Turns the finished attempt into an entry and queues it.
    fn emit(&self, ctx: &mut RequestContext, attempt: Attempt, outcome: Outcome) {
        let retries = ctx.retries;
        let fallback = ctx.fallback_index;
        let upstream_ms = ctx.upstream_time.as_millis();
        let Some(trace) = ctx.extensions.get_mut::<TraceState>() else {
            return;
        };
        let Some(repo) = trace.repo.clone() else {
            return;
        };
        let new_trace = (!trace.announced && attempt.new_generation.is_some()).then(|| NewTrace {
            name: trace.name.clone().unwrap_or_else(|| {
                let kind = match (&outcome, attempt.request_type) {
                    (Outcome::Stream(_), RequestType::ChatCompletion) => {
                        RequestType::ChatCompletionStream
                    }
                    (_, t) => t,
                };
                format!("bifrost_{}", kind.as_str())
            }),
            session_id: trace.session_id.clone(),
        });
        trace.announced = true;
        let end_trace = attempt.new_generation.is_some() || trace.caller_trace;
        let latency = attempt.started.elapsed();
        let mut attempt_tags = vec![
            ("latency_ms", latency.as_millis().to_string()),
            ("upstream_latency_ms", upstream_ms.to_string()),
            (
                "status",
                if matches!(outcome, Outcome::Error(_)) {
                    "error"
                } else {
                    "success"
                }
                .to_owned(),
            ),
        ];
        if retries > 0 {
            attempt_tags.push(("retries", retries.to_string()));
        }
        if let Some(i) = fallback {
            attempt_tags.push(("fallback_index", i.to_string()));
        }
        match &outcome {
            Outcome::Stream(s) => {
                if let Some(first) = s.first_chunk {
                    let ttft = first.saturating_duration_since(attempt.started);
                    attempt_tags.push(("ttft_ms", ttft.as_millis().to_string()));
                }
            }
            Outcome::Error(e) => {
                if let Some(code) = e.status {
                    attempt_tags.push(("status_code", code.to_string()));
                }
            }
            Outcome::Response(_) => {}
        }
        let model = match &outcome {
            Outcome::Response(r) if !r.model.is_empty() => r.model.clone(),
            Outcome::Stream(s) if !s.model.is_empty() => s.model.clone(),
            _ => attempt.model,
        };
        self.queue.push(Box::new(Entry {
            repo,
            trace_id: Arc::clone(&trace.trace_id),
            new_trace,
            end_trace,
            generation_id: attempt.generation_id,
            new_generation: attempt.new_generation,
            provider: attempt.provider,
            model,
            start: attempt.start,
            end: SystemTime::now(),
            outcome,
            tags: Arc::clone(&trace.tags),
            attempt_tags,
        }));
    }
}

/// A request's trace, kept in its context across attempts.
#[derive(Debug, Clone)]
struct TraceState {
    /// Where to log; `None`: this request is not logged.
    repo: Option<Arc<str>>,
    trace_id: Arc<str>,
    /// The caller named the trace (`x-bf-maxim-trace-id`).
    caller_trace: bool,
    /// The caller named the generation: log into it, create nothing.
    caller_generation: Option<Arc<str>>,
    name: Option<String>,
    generation_name: Option<String>,
    session_id: Option<String>,
    tags: Arc<[(String, String)]>,
    /// The trace's `create` is on its way (only the first attempt sends it).
    announced: bool,
}

impl TraceState {
    fn new(o: MaximOptions, default_repo: Option<&str>) -> Self {
        let repo = o
            .log_repo_id
            .as_deref()
            .or(default_repo)
            .filter(|r| !r.is_empty())
            .map(Arc::from);
        Self {
            repo,
            caller_trace: o.trace_id.is_some(),
            trace_id: o
                .trace_id
                .map_or_else(|| Arc::from(wire::new_id()), Arc::from),
            caller_generation: o.generation_id.map(Arc::from),
            name: o.trace_name,
            generation_name: o.generation_name,
            session_id: o.session_id,
            tags: Arc::from(o.tags),
            announced: false,
        }
    }
}

/// One attempt (primary or a fallback), kept in the context from its pre-hook to its end.
#[derive(Debug, Clone)]
struct Attempt {
    generation_id: Arc<str>,
    /// What to create; `None` when logging into the caller's generation.
    new_generation: Option<NewGeneration>,
    provider: String,
    model: String,
    request_type: RequestType,
    start: SystemTime,
    started: Instant,
    stream: Option<Box<StreamSummary>>,
}

#[async_trait]
impl Plugin for MaximPlugin {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    /// Observe-only (answers are read from the relayed body), plus the inbound headers for
    /// Bifrost's `x-bf-maxim-*` trace, session and tag headers.
    fn needs(&self) -> PluginNeeds {
        PluginNeeds {
            response_body: false,
            request_headers: true,
        }
    }

    /// Notes the attempt's start, input and parameters (a copy: the request moves on).
    async fn pre_hook(&self, ctx: &mut RequestContext, req: &mut BifrostRequest) -> PreHookOutcome {
        let Some(trace) = self.trace(ctx) else {
            return PreHookOutcome::Continue;
        };
        let (generation_id, new_generation) = match &trace.caller_generation {
            Some(g) => (Arc::clone(g), None),
            None => (
                Arc::from(wire::new_id()),
                Some(NewGeneration {
                    name: trace.generation_name.clone(),
                    input: req.input.clone(),
                    params: req.params.clone(),
                }),
            ),
        };
        ctx.extensions.insert(Attempt {
            generation_id,
            new_generation,
            provider: req.provider.as_str().to_owned(),
            model: req.model.clone(),
            request_type: req.request_type(),
            start: SystemTime::now(),
            started: Instant::now(),
            stream: None,
        });
        PreHookOutcome::Continue
    }

    /// Queues the attempt with its answer or error.
    async fn post_hook(
        &self,
        ctx: &mut RequestContext,
        result: &mut Result<BifrostResponse, BifrostError>,
    ) {
        let Some(attempt) = ctx.extensions.remove::<Attempt>() else {
            return;
        };
        let outcome = match result {
            Ok(r) => Outcome::Response(Box::new(capture(r, attempt.request_type))),
            Err(e) => Outcome::Error(error_info(e)),
        };
        self.emit(ctx, attempt, outcome);
    }

    /// Appends the chunk's delta to the attempt's summary.
    fn on_stream_chunk(&self, ctx: &mut RequestContext, chunk: &mut BifrostResponse) {
        if let Some(a) = ctx.extensions.get_mut::<Attempt>() {
            a.stream.get_or_insert_default().absorb(chunk);
        }
    }

    /// Queues the stream's attempt with what it delivered, or the error that ended it.
    fn on_stream_end(&self, ctx: &mut RequestContext, error: Option<&BifrostError>) {
        let Some(mut attempt) = ctx.extensions.remove::<Attempt>() else {
            return;
        };
        let outcome = match error {
            Some(e) => Outcome::Error(error_info(e)),
            None => Outcome::Stream(attempt.stream.take().unwrap_or_default()),
        };
        self.emit(ctx, attempt, outcome);
    }

    /// Flushes the buffer (up to `flush_timeout`) and stops the sender.
    async fn cleanup(&self) {
        self.queue.shutdown(self.cfg.flush_timeout).await;
    }
}

/// The answer as the result wants it: a relayed body is kept as sent (a cheap `Bytes`
/// clone); the provider's raw response and embedding vectors are left out (large, and not
/// what a generation shows).
fn capture(r: &BifrostResponse, kind: RequestType) -> BifrostResponse {
    if kind == RequestType::Embedding {
        return BifrostResponse {
            id: r.id.clone(),
            object: r.object.clone(),
            created: r.created,
            model: r.model.clone(),
            usage: r.usage.clone(),
            ..BifrostResponse::default()
        };
    }
    if r.wire_body.is_some() {
        // Relayed: only the summary fields are parsed, the body is all there is.
        return BifrostResponse {
            id: r.id.clone(),
            model: r.model.clone(),
            usage: r.usage.clone(),
            wire_body: r.wire_body.clone(),
            ..BifrostResponse::default()
        };
    }
    let mut out = r.clone();
    out.extra_fields.raw_response = None;
    out
}

fn error_info(e: &BifrostError) -> ErrorInfo {
    ErrorInfo {
        message: e.error.message.clone(),
        code: e.error.code.clone(),
        kind: e.error.kind.clone(),
        status: e.status_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn headers_map_to_options_and_tags_as_bifrost_documents() {
        let o = MaximOptions::from_headers(&headers(&[
            ("x-bf-maxim-trace-id", "t-1"),
            ("x-bf-maxim-session-id", "s-1"),
            ("x-bf-maxim-trace-name", "checkout"),
            ("x-bf-maxim-generation-name", "answer"),
            ("x-bf-maxim-log-repo-id", "repo-2"),
            ("x-bf-maxim-env", "prod"),
            ("x-bf-dim-env", "staging"),
            ("x-bf-dim-team", "core"),
            ("authorization", "Bearer sk-secret"),
        ]));
        assert_eq!(o.trace_id.as_deref(), Some("t-1"));
        assert_eq!(o.session_id.as_deref(), Some("s-1"));
        assert_eq!(o.trace_name.as_deref(), Some("checkout"));
        assert_eq!(o.generation_name.as_deref(), Some("answer"));
        assert_eq!(o.log_repo_id.as_deref(), Some("repo-2"));
        assert_eq!(
            o.tags,
            [
                ("env".into(), "prod".into()),
                ("team".into(), "core".into())
            ]
        );
        let bad = MaximOptions::from_headers(&headers(&[("x-bf-maxim-trace-id", "a,b}")]));
        assert_eq!(
            bad.trace_id, None,
            "an id that would break the line format is ignored"
        );
    }

    #[test]
    fn code_options_win_over_headers() {
        let code = MaximOptions {
            session_id: Some("from-code".into()),
            tags: vec![("env".into(), "code".into())],
            ..MaximOptions::default()
        };
        let merged = code.or(MaximOptions::from_headers(&headers(&[
            ("x-bf-maxim-session-id", "from-header"),
            ("x-bf-maxim-trace-id", "t-9"),
            ("x-bf-maxim-env", "header"),
            ("x-bf-maxim-region", "eu"),
        ])));
        assert_eq!(merged.session_id.as_deref(), Some("from-code"));
        assert_eq!(merged.trace_id.as_deref(), Some("t-9"));
        assert_eq!(
            merged.tags,
            [
                ("env".into(), "code".into()),
                ("region".into(), "eu".into())
            ]
        );
    }

    #[test]
    fn tags_are_bounded() {
        let many: Vec<(String, String)> = (0..100)
            .map(|i| (format!("x-bf-maxim-t{i}"), "v".repeat(1000)))
            .collect();
        let pairs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let o = MaximOptions::from_headers(&headers(&pairs));
        assert_eq!(o.tags.len(), MAX_TAGS);
        assert!(o.tags.iter().all(|(_, v)| v.len() == MAX_TAG_LEN));
    }
}
