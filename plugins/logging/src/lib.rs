//! Bifrost's request-logging plugin: every request on every transport recorded to SQLite
//! (embedded, the default) or PostgreSQL (several replicas, one log), and a query API at
//! `GET /api/logs` and `GET /api/logs/stats`.
//!
//! Logging must never cost a request its answer or its latency, and must never grow memory
//! without bound: the hooks only fill a per-request record and hand it to a bounded queue
//! with `try_send`; a writer on the plugin's own runtime writes batches. When the queue is
//! full (a slow or stopped database) entries are dropped and counted
//! (`bifrost_log_entries_dropped_total`). The plugin only observes ([`PluginNeeds::OBSERVE`]),
//! so the relay fast path stays on: a relayed answer's output is read from its raw bytes.
//!
//! ```no_run
//! # use bifrost_plugin_logging::{LoggingConfig, LoggingPlugin};
//! let plugin = LoggingPlugin::from_json(&serde_json::json!({
//!     "type": "sqlite", "config": {"path": "/var/lib/bifrost/logs.db"}, "retention_days": 30
//! }))?;
//! # Ok::<(), bifrost_plugin_logging::LoggingError>(())
//! ```
//!
//! See `docs/logging.md` for the config keys, the API and how `logs_store` relates.

mod api;
mod config;
mod entry;
mod store;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bifrost_core::schemas::{BifrostError, BifrostRequest, BifrostResponse, MessageContent};
use bifrost_core::{
    Plugin, PluginApi, PluginFactory, PluginInitError, PluginNeeds, PreHookOutcome, RequestContext,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub use api::{API_PREFIX, LogsApi};
pub use config::{
    ConfigError, ContentMode, LoggingConfig, StoreConfig, WriterConfig, apply_logs_store,
};
pub use entry::{LogEntry, TRUNCATED_MARK, mask_virtual_key};
pub use store::{Db, LogFilter, LogRecord, LogStats, StoreError};
pub use writer::{DROPPED_METRIC, WRITTEN_METRIC};

use entry::{append_capped, capture_input, capture_output};
use writer::{Control, Shared, Slot, now_ms};

/// The name the plugin registers under (`plugins[].name`, `-plugins logging`).
pub const PLUGIN_NAME: &str = "logging";

/// Why the plugin could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The config block is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plugin's runtime (one thread for the writer and queries) could not start.
    #[error("starting the log writer: {0}")]
    Runtime(#[from] std::io::Error),
    /// The SQLite store could not be opened at startup (a bad path or permissions).
    #[error("opening the {store} log store: {message}")]
    Store {
        /// `sqlite` or `postgres`.
        store: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Builds the plugin from its `plugins[]` block; registered under [`PLUGIN_NAME`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggingFactory;

impl PluginFactory for LoggingFactory {
    fn name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn build(&self, config: &Value) -> Result<Arc<dyn Plugin>, PluginInitError> {
        LoggingPlugin::from_json(config)
            .map(|p| Arc::new(p) as Arc<dyn Plugin>)
            .map_err(|e| PluginInitError {
                name: PLUGIN_NAME.to_owned(),
                message: e.to_string(),
            })
    }
}

/// The logging plugin. Dropping it stops its writer (call [`Plugin::cleanup`] or
/// [`LoggingPlugin::flush`] first to write what is queued).
pub struct LoggingPlugin {
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    ctl: mpsc::Sender<Control>,
    api: Arc<LogsApi>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    shutdown_timeout: Duration,
}

impl std::fmt::Debug for LoggingPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggingPlugin")
            .field("dropped", &self.dropped())
            .field("written", &self.written())
            .finish_non_exhaustive()
    }
}

impl Drop for LoggingPlugin {
    fn drop(&mut self) {
        // `shutdown_background` is the one way to drop a runtime from async code.
        if let Some(rt) = self.runtime.lock().ok().and_then(|mut g| g.take()) {
            rt.shutdown_background();
        }
    }
}

impl LoggingPlugin {
    /// The plugin for a `config` block (see [`LoggingConfig::from_json`]).
    pub fn from_json(config: &Value) -> Result<Self, LoggingError> {
        Self::new(LoggingConfig::from_json(config)?)
    }

    /// Starts the writer on a runtime of its own (one thread), so a slow database never
    /// occupies the threads serving requests, and the plugin works under any caller runtime.
    ///
    /// A SQLite store is opened before this returns (a bad path stops startup); PostgreSQL
    /// is connected in the background and retried, so the gateway serves while the log
    /// database is down (entries are dropped and counted meanwhile).
    pub fn new(cfg: LoggingConfig) -> Result<Self, LoggingError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bifrost-logs")
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::channel(cfg.writer.queue_capacity.max(1));
        let (ctl, ctl_rx) = mpsc::channel(16);
        let shared = Arc::new(Shared::new(tx, &cfg));
        let slot = Arc::new(Slot::default());
        let wait_first = matches!(cfg.store, StoreConfig::Sqlite { .. });
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        runtime.spawn(writer::connect_loop(
            cfg.store.clone(),
            Arc::clone(&slot),
            wait_first.then_some(first_tx),
        ));
        runtime.spawn(writer::run(
            cfg.clone(),
            Arc::clone(&shared),
            Arc::clone(&slot),
            rx,
            ctl_rx,
        ));
        if wait_first {
            // Opening a local file takes milliseconds; this runs once, at startup.
            let outcome = first_rx
                .recv_timeout(Duration::from_secs(15))
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            if let Err(message) = outcome {
                runtime.shutdown_background();
                return Err(LoggingError::Store {
                    store: cfg.store.kind(),
                    message,
                });
            }
        }
        let api = Arc::new(LogsApi {
            slot: Arc::clone(&slot),
            shared: Arc::clone(&shared),
            handle: runtime.handle().clone(),
            max_page_size: cfg.max_page_size,
        });
        tracing::info!(store = cfg.store.kind(), content = ?cfg.content, "request logging on");
        Ok(Self {
            shared,
            slot,
            ctl,
            api,
            runtime: Mutex::new(Some(runtime)),
            shutdown_timeout: cfg.shutdown_timeout,
        })
    }

    /// Entries dropped so far (queue full, store down or failed writes).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped()
    }

    /// Entries written so far.
    pub fn written(&self) -> u64 {
        self.shared.written()
    }

    /// Entries waiting in the queue.
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// Bytes charged against `writer.max_queue_bytes` (queued and being written).
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes()
    }

    /// Whether the store is connected.
    pub fn store_ready(&self) -> bool {
        self.slot.db.get().is_some()
    }

    /// Writes everything queued so far; returns when it is written (or dropped).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.ctl.send(Control::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// The query API (the same object [`Plugin::api`] hands the transports).
    pub fn logs_api(&self) -> Arc<LogsApi> {
        Arc::clone(&self.api)
    }

    /// Hands an entry to the queue as the hooks do (never waits); for embedders that log
    /// requests of their own.
    pub fn submit(&self, entry: LogEntry) {
        self.shared.submit(entry);
    }
}

/// The per-request record, kept in [`RequestContext::extensions`]. Written when the request
/// ends: on a final answer or error, at the end of a stream, or, should neither hook be
/// reached (an error after which a fallback might have run), when the context is dropped.
#[derive(Default)]
struct Tracker {
    pending: Option<Box<Pending>>,
    shared: Option<Arc<Shared>>,
}

/// A copy of a context never logs: only the original writes its entry.
impl Clone for Tracker {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.submit();
    }
}

impl Tracker {
    fn submit(&mut self) {
        if let (Some(p), Some(s)) = (self.pending.take(), self.shared.as_ref()) {
            s.submit(p.finish());
        }
    }
}

/// What is known of a request so far.
struct Pending {
    started: Instant,
    started_at_ms: i64,
    id: String,
    transport: &'static str,
    object_type: &'static str,
    stream: bool,
    provider: String,
    model: String,
    chain: Vec<String>,
    cap: Option<usize>,
    input: Option<String>,
    output: Option<String>,
    output_cut: bool,
    virtual_key: Option<String>,
    user: Option<String>,
    ttft_us: Option<i64>,
    usage: Option<(u64, u64, u64)>,
    error: Option<(Option<u16>, String, Option<String>)>,
    key_id: Option<Arc<str>>,
    retries: u32,
    fallback_index: Option<usize>,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn tokens(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Pending {
    fn finish(self: Box<Self>) -> LogEntry {
        let p = *self;
        let latency = p.started.elapsed();
        let (status, status_code, error, error_type) = match p.error {
            None => ("success", Some(200), None, None),
            Some((code, msg, kind)) => ("error", code.map(i64::from), Some(msg), kind),
        };
        let object_type = if p.stream && p.object_type == "chat_completion" {
            "chat_completion_stream"
        } else {
            p.object_type
        };
        LogEntry {
            id: p.id,
            started_at_ms: p.started_at_ms,
            ended_at_ms: p.started_at_ms + i64::try_from(latency.as_millis()).unwrap_or(0),
            transport: p.transport.to_owned(),
            object_type: object_type.to_owned(),
            stream: p.stream,
            provider: p.provider,
            model: p.model,
            fallback_chain: p.chain,
            fallback_index: p
                .fallback_index
                .map(|i| i64::try_from(i).unwrap_or(i64::MAX)),
            retries: i64::from(p.retries),
            status: status.to_owned(),
            status_code,
            latency_us: micros(latency),
            ttft_us: p.ttft_us,
            prompt_tokens: p.usage.map(|u| tokens(u.0)),
            completion_tokens: p.usage.map(|u| tokens(u.1)),
            total_tokens: p.usage.map(|u| tokens(u.2)),
            input: p.input,
            output: p.output.filter(|o| !o.is_empty()),
            error,
            error_type,
            key_id: p.key_id.map(|k| k.to_string()),
            virtual_key: p.virtual_key,
            user: p.user,
        }
    }

    fn record_error(&mut self, e: &BifrostError) {
        self.error = Some((e.status_code, e.error.message.clone(), e.error.kind.clone()));
    }
}

impl LoggingPlugin {
    fn begin(&self, ctx: &mut RequestContext, req: &BifrostRequest) {
        let target = format!("{}/{}", req.provider, req.model);
        if let Some(p) = ctx
            .extensions
            .get_mut::<Tracker>()
            .and_then(|t| t.pending.as_mut())
        {
            // A fallback attempt of the same request.
            p.chain.push(target);
            p.provider = req.provider.to_string();
            p.model.clone_from(&req.model);
            p.error = None;
            p.usage = None;
            return;
        }
        let cap = self.shared.content.cap();
        let pending = Pending {
            started: Instant::now(),
            started_at_ms: now_ms(),
            id: ctx.request_id.clone(),
            transport: ctx.transport,
            object_type: req.request_type().as_str(),
            stream: false,
            provider: req.provider.to_string(),
            model: req.model.clone(),
            chain: vec![target],
            cap,
            input: cap.map(|c| capture_input(req, c)),
            output: None,
            output_cut: false,
            virtual_key: ctx.virtual_key.as_deref().map(mask_virtual_key),
            user: req.params.user.clone(),
            ttft_us: None,
            usage: None,
            error: None,
            key_id: None,
            retries: 0,
            fallback_index: None,
        };
        ctx.extensions.insert(Tracker {
            pending: Some(Box::new(pending)),
            shared: Some(Arc::clone(&self.shared)),
        });
    }
}

fn tracker(ctx: &mut RequestContext) -> Option<&mut Tracker> {
    ctx.extensions
        .get_mut::<Tracker>()
        .filter(|t| t.pending.is_some())
}

#[async_trait]
impl Plugin for LoggingPlugin {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    /// Observes ids, usage, latency and errors only, so the relay fast path stays on.
    fn needs(&self) -> PluginNeeds {
        PluginNeeds::OBSERVE
    }

    /// Starts the request's record on its first attempt; on a fallback, adds the target to
    /// the chain.
    async fn pre_hook(&self, ctx: &mut RequestContext, req: &mut BifrostRequest) -> PreHookOutcome {
        self.begin(ctx, req);
        PreHookOutcome::Continue
    }

    /// An answer ends the record; an error ends it unless a fallback may follow (then the
    /// next attempt continues it, or dropping the context writes it).
    async fn post_hook(
        &self,
        ctx: &mut RequestContext,
        result: &mut Result<BifrostResponse, BifrostError>,
    ) {
        let snapshot = (ctx.retries, ctx.fallback_index, ctx.key_id.clone());
        let Some(t) = tracker(ctx) else { return };
        let Some(p) = t.pending.as_mut() else { return };
        (p.retries, p.fallback_index, p.key_id) = snapshot;
        match result {
            Ok(resp) => {
                if let Some(u) = &resp.usage {
                    p.usage = Some((u.prompt_tokens, u.completion_tokens, u.total_tokens));
                }
                if let Some(cap) = p.cap {
                    p.output = capture_output(resp, cap);
                }
                t.submit();
            }
            Err(e) => {
                p.record_error(e);
                if !e.fallbacks_allowed() {
                    t.submit();
                }
            }
        }
    }

    /// Per chunk: the first chunk's time (TTFT), usage when a chunk carries it, and the
    /// delta text up to the content cap.
    fn on_stream_chunk(&self, ctx: &mut RequestContext, chunk: &mut BifrostResponse) {
        let Some(p) = tracker(ctx).and_then(|t| t.pending.as_mut()) else {
            return;
        };
        if !p.stream {
            p.stream = true;
            p.ttft_us = Some(micros(p.started.elapsed()));
        }
        if let Some(u) = &chunk.usage {
            p.usage = Some((u.prompt_tokens, u.completion_tokens, u.total_tokens));
        }
        let Some(cap) = p.cap else { return };
        let Some(choice) = chunk.choices.as_ref().and_then(|c| c.first()) else {
            return;
        };
        let piece = match choice.delta.as_ref().and_then(|d| d.content.as_ref()) {
            Some(MessageContent::Text(s)) => Some(s.as_str()),
            _ => choice.text.as_deref(),
        };
        if let Some(piece) = piece.filter(|s| !s.is_empty()) {
            let out = p.output.get_or_insert_with(String::new);
            append_capped(out, piece, cap, &mut p.output_cut);
        }
    }

    /// Ends the stream's record, with the error that ended it, if any.
    fn on_stream_end(&self, ctx: &mut RequestContext, error: Option<&BifrostError>) {
        let snapshot = (ctx.retries, ctx.fallback_index, ctx.key_id.clone());
        let Some(t) = tracker(ctx) else { return };
        if let Some(p) = t.pending.as_mut() {
            (p.retries, p.fallback_index, p.key_id) = snapshot;
            p.stream = true;
            if let Some(e) = error {
                p.record_error(e);
            }
        }
        t.submit();
    }

    /// Writes what is queued, waiting at most `shutdown_timeout_seconds`.
    async fn cleanup(&self) {
        if tokio::time::timeout(self.shutdown_timeout, self.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                queued = self.queued(),
                "request log flush did not finish before the shutdown timeout"
            );
        }
        if let Some(db) = self.slot.db.get().cloned() {
            // On the plugin runtime, where the pool's connections live.
            let closing = self.api.handle.spawn(async move { db.close().await });
            let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
        }
    }

    fn api(&self) -> Option<Arc<dyn PluginApi>> {
        Some(Arc::clone(&self.api) as Arc<dyn PluginApi>)
    }
}

#[cfg(test)]
mod tests;
