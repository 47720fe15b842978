//! Off the request path: a bounded queue the hooks `try_send` into, and one task that
//! renders entries, keeps them in a byte-bounded buffer and uploads them in batches with
//! retries and backoff.
//!
//! ```text
//! hooks ──try_send──▶ [queue: queue_size entries] ──▶ sender task
//!   full: drop + count                                 render ─▶ [buffer: buffer_max_bytes]
//!                                                      full: drop + count     │
//!                                                      batch ≤ batch_max_bytes ─▶ POST (one in flight)
//!                                                      5xx/429/network: backoff, retry ≤ max_retries
//! ```
//!
//! The task keeps draining the queue while an upload is in flight or backing off, so a slow
//! or dead Maxim fills the buffer (bounded), never the request path.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::MaximConfig;
use crate::wire::Entry;

/// Entries dropped, by `reason`: `queue_full`, `buffer_full`, `rejected` (Maxim refused the
/// upload), `retries_exhausted`, `shutdown`.
pub const DROPPED_METRIC: &str = "bifrost_maxim_entries_dropped_total";
/// Entries Maxim accepted.
pub const SENT_METRIC: &str = "bifrost_maxim_entries_sent_total";
/// Uploads that failed (each retry counts).
pub const FAILED_UPLOADS_METRIC: &str = "bifrost_maxim_upload_failures_total";
/// Bytes of rendered entries waiting in the buffer.
pub const BUFFERED_BYTES_METRIC: &str = "bifrost_maxim_buffered_bytes";

/// Why entries were dropped; also the metric's `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    QueueFull,
    BufferFull,
    Rejected,
    RetriesExhausted,
    Shutdown,
}

impl DropReason {
    fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::BufferFull => "buffer_full",
            Self::Rejected => "rejected",
            Self::RetriesExhausted => "retries_exhausted",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Counters since the plugin was built: what a test or a dashboard checks to see that
/// nothing is lost silently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaximStats {
    /// Entries (one per request attempt) the hooks queued.
    pub enqueued: u64,
    /// Entries Maxim accepted.
    pub sent: u64,
    /// Dropped because the queue was full (the sender fell behind).
    pub dropped_queue_full: u64,
    /// Dropped because the buffer was full (Maxim slow or down).
    pub dropped_buffer_full: u64,
    /// Dropped because Maxim refused the upload (4xx other than 408/429, or an error body).
    pub dropped_rejected: u64,
    /// Dropped after `max_retries` failed retries of their upload.
    pub dropped_retries_exhausted: u64,
    /// Dropped at shutdown (queued after it, or still buffered when the flush timed out).
    pub dropped_shutdown: u64,
    /// Uploads that failed, retries included.
    pub failed_uploads: u64,
    /// Entries waiting in the buffer now.
    pub buffered_entries: u64,
    /// Bytes waiting in the buffer now.
    pub buffered_bytes: u64,
}

impl MaximStats {
    /// All drops together.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_buffer_full
            + self.dropped_rejected
            + self.dropped_retries_exhausted
            + self.dropped_shutdown
    }
}

/// Counters shared by the hooks and the task.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    enqueued: AtomicU64,
    sent: AtomicU64,
    dropped: [AtomicU64; 5],
    failed_uploads: AtomicU64,
    buffered_entries: AtomicU64,
    buffered_bytes: AtomicU64,
    warn: WarnLimiter,
}

impl Shared {
    fn drop_entries(&self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        self.dropped[reason as usize].fetch_add(n, Ordering::Relaxed);
        metrics::counter!(DROPPED_METRIC, "reason" => reason.label()).increment(n);
        if self.warn.allow() {
            tracing::warn!(
                reason = reason.label(),
                dropped_total = self.snapshot().dropped(),
                "maxim plugin: log entries dropped (requests are unaffected)"
            );
        }
    }

    pub(crate) fn snapshot(&self) -> MaximStats {
        let d = |r: DropReason| self.dropped[r as usize].load(Ordering::Relaxed);
        MaximStats {
            enqueued: self.enqueued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            dropped_queue_full: d(DropReason::QueueFull),
            dropped_buffer_full: d(DropReason::BufferFull),
            dropped_rejected: d(DropReason::Rejected),
            dropped_retries_exhausted: d(DropReason::RetriesExhausted),
            dropped_shutdown: d(DropReason::Shutdown),
            failed_uploads: self.failed_uploads.load(Ordering::Relaxed),
            buffered_entries: self.buffered_entries.load(Ordering::Relaxed),
            buffered_bytes: self.buffered_bytes.load(Ordering::Relaxed),
        }
    }
}

/// At most one warning per interval, so an outage at thousands of requests per second does
/// not become thousands of log lines per second.
#[derive(Debug)]
struct WarnLimiter {
    epoch: std::time::Instant,
    /// Milliseconds since `epoch` of the last warning, plus one (0 = never).
    last: AtomicU64,
}

impl Default for WarnLimiter {
    fn default() -> Self {
        Self {
            epoch: std::time::Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

impl WarnLimiter {
    const EVERY_MS: u64 = 10_000;

    fn allow(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < Self::EVERY_MS {
            return false;
        }
        self.last
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// Why [`Queue::flush`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// Entries were still buffered when the timeout passed (Maxim slow or down).
    #[error("flush timed out after {0:?} with log entries still buffered")]
    Timeout(Duration),
    /// The sender task is gone (after shutdown).
    #[error("the Maxim sender has stopped")]
    Stopped,
}

enum Control {
    /// Send everything queued and buffered now; answer when the buffer is empty.
    Flush(oneshot::Sender<()>),
    /// Like `Flush`, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// The hooks' side: a bounded queue into the sender task, started on first use so the
/// plugin can be built outside a Tokio runtime.
pub(crate) struct Queue {
    tx: mpsc::Sender<Box<Entry>>,
    ctl: mpsc::Sender<Control>,
    shared: Arc<Shared>,
    started: AtomicBool,
    parts: Mutex<Option<Worker>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Queue {
    pub(crate) fn new(cfg: Arc<MaximConfig>, client: reqwest::Client) -> (Self, Arc<Shared>) {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel(cfg.queue_size);
        let (ctl, ctl_rx) = mpsc::channel(8);
        let mut api_key =
            HeaderValue::from_str(&cfg.api_key).unwrap_or_else(|_| HeaderValue::from_static(""));
        api_key.set_sensitive(true);
        let worker = Worker {
            cfg,
            client,
            api_key,
            shared: Arc::clone(&shared),
            rx,
            ctl: ctl_rx,
            buf: VecDeque::new(),
            buf_bytes: 0,
        };
        let q = Self {
            tx,
            ctl,
            shared: Arc::clone(&shared),
            started: AtomicBool::new(false),
            parts: Mutex::new(Some(worker)),
            task: Mutex::new(None),
        };
        q.ensure_started();
        (q, shared)
    }

    /// Starts the sender task if it is not running and a runtime is at hand.
    fn ensure_started(&self) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(mut parts) = self.parts.lock() else {
            return;
        };
        if let Some(worker) = parts.take() {
            let handle = rt.spawn(worker.run());
            if let Ok(mut task) = self.task.lock() {
                *task = Some(handle);
            }
            self.started.store(true, Ordering::Release);
        }
    }

    /// Queues an entry without waiting; a full queue drops it (counted). Boxed, so a queue
    /// slot is a pointer and the queue's memory stays small when it is full.
    pub(crate) fn push(&self, e: Box<Entry>) {
        self.ensure_started();
        match self.tx.try_send(e) {
            Ok(()) => {
                self.shared.enqueued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.drop_entries(DropReason::QueueFull, 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.drop_entries(DropReason::Shutdown, 1);
            }
        }
    }

    /// Sends everything queued so far and waits until Maxim has it, up to `timeout`.
    pub(crate) async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        self.ensure_started();
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Control::Flush(tx))
            .await
            .map_err(|_| FlushError::Stopped)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(FlushError::Stopped),
            Err(_) => Err(FlushError::Timeout(timeout)),
        }
    }

    /// Flushes for up to `timeout`, then stops the task; whatever is left is counted as
    /// dropped.
    pub(crate) async fn shutdown(&self, timeout: Duration) {
        self.ensure_started();
        let (tx, rx) = oneshot::channel();
        let deadline = tokio::time::Instant::now() + timeout;
        let asked = tokio::time::timeout_at(deadline, self.ctl.send(Control::Shutdown(tx))).await;
        let done = matches!(asked, Ok(Ok(())))
            && matches!(tokio::time::timeout_at(deadline, rx).await, Ok(Ok(())));
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
        }
        if !done {
            let s = self.shared.snapshot();
            // Queued or buffered, never sent nor counted: lost with the task.
            let left = s.enqueued.saturating_sub(
                s.sent + s.dropped_buffer_full + s.dropped_rejected + s.dropped_retries_exhausted,
            );
            tracing::warn!(
                buffered = s.buffered_entries,
                "maxim plugin: shutdown flush timed out; unsent log entries are dropped"
            );
            self.shared.drop_entries(DropReason::Shutdown, left);
            self.shared.buffered_entries.store(0, Ordering::Relaxed);
            self.shared.buffered_bytes.store(0, Ordering::Relaxed);
        }
    }
}

/// One rendered entry waiting for upload.
struct Buffered {
    repo: Arc<str>,
    text: String,
}

type Upload = Pin<Box<dyn Future<Output = Result<(), UploadError>> + Send>>;

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("Maxim answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Maxim refused the logs: {0}")]
    Refused(String),
    #[error("could not reach Maxim: {0}")]
    Transport(String),
}

impl UploadError {
    /// Whether the same upload may succeed later: the network, a timeout, 408, 429, 5xx.
    fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::Refused(_) => false,
            Self::Transport(_) => true,
        }
    }
}

/// The task's state.
struct Worker {
    cfg: Arc<MaximConfig>,
    client: reqwest::Client,
    api_key: HeaderValue,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Box<Entry>>,
    ctl: mpsc::Receiver<Control>,
    buf: VecDeque<Buffered>,
    buf_bytes: usize,
}

/// What woke the task.
enum Wake {
    Entry(Option<Box<Entry>>),
    Control(Option<Control>),
    Uploaded(Result<(), UploadError>),
    Tick,
    RetryDue,
}

impl Worker {
    async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.cfg.flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut in_flight: Option<(usize, Upload)> = None;
        let mut retry_at: Option<Instant> = None;
        let mut failures = 0u32;
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let (mut due, mut stopping, mut queue_open, mut ctl_open) = (false, false, true, true);
        loop {
            let urgent = !waiters.is_empty() || stopping || !queue_open;
            if in_flight.is_none()
                && retry_at.is_none()
                && !self.buf.is_empty()
                && (due || urgent || self.buf_bytes >= self.cfg.batch_max_bytes)
            {
                in_flight = self.start_upload();
                due = false;
            }
            if in_flight.is_none() && self.buf.is_empty() {
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
                if stopping || (!queue_open && !ctl_open) {
                    return;
                }
            }
            let wake = tokio::select! {
                e = self.rx.recv(), if queue_open => Wake::Entry(e),
                c = self.ctl.recv(), if ctl_open => Wake::Control(c),
                r = poll_upload(&mut in_flight), if in_flight.is_some() => Wake::Uploaded(r),
                _ = ticker.tick() => Wake::Tick,
                _ = sleep_until(retry_at), if retry_at.is_some() => Wake::RetryDue,
            };
            match wake {
                Wake::Entry(Some(e)) => self.accept(&e),
                Wake::Entry(None) => queue_open = false,
                Wake::Control(Some(c)) => {
                    self.drain_queue();
                    stopping |= matches!(c, Control::Shutdown(_));
                    let (Control::Flush(w) | Control::Shutdown(w)) = c;
                    waiters.push(w);
                }
                Wake::Control(None) => ctl_open = false,
                Wake::Tick => due = true,
                Wake::RetryDue => retry_at = None,
                Wake::Uploaded(result) => {
                    let n = in_flight.take().map_or(0, |(n, _)| n);
                    match result {
                        Ok(()) => {
                            failures = 0;
                            self.release(n);
                            self.shared.sent.fetch_add(n as u64, Ordering::Relaxed);
                            metrics::counter!(SENT_METRIC).increment(n as u64);
                        }
                        Err(e) => self.failed(&e, n, &mut failures, &mut retry_at),
                    }
                }
            }
        }
    }

    /// A failed upload: retry it after a backoff while retries remain and the failure may
    /// pass; otherwise drop its entries (counted) and go on with the next batch, still
    /// backing off after a retryable failure so a dead endpoint is not hammered.
    fn failed(
        &mut self,
        e: &UploadError,
        n: usize,
        failures: &mut u32,
        retry_at: &mut Option<Instant>,
    ) {
        self.shared.failed_uploads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(FAILED_UPLOADS_METRIC).increment(1);
        let retry = e.retryable() && *failures < self.cfg.max_retries;
        if self.shared.warn.allow() {
            tracing::warn!(error = %e, retry, entries = n, "maxim plugin: upload failed");
        }
        if retry {
            *failures += 1;
            *retry_at = Some(Instant::now() + self.backoff(*failures));
            return;
        }
        self.release(n);
        let reason = if e.retryable() {
            *retry_at = Some(Instant::now() + self.backoff(self.cfg.max_retries.max(1)));
            DropReason::RetriesExhausted
        } else {
            DropReason::Rejected
        };
        self.shared.drop_entries(reason, n as u64);
        *failures = 0;
    }

    /// `retry_backoff · 2^(n-1)`, capped at `max_backoff`, with ±20 % jitter so several
    /// gateways do not retry in step.
    fn backoff(&self, n: u32) -> Duration {
        let base = self
            .cfg
            .retry_backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(20))
            .min(self.cfg.max_backoff);
        base.mul_f64(0.8 + fastrand::f64() * 0.4)
    }

    fn drain_queue(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.accept(&e);
        }
    }

    /// Renders an entry into the buffer, or drops it when the buffer is full.
    fn accept(&mut self, e: &Entry) {
        let text = e.render();
        if self.buf_bytes + text.len() > self.cfg.buffer_max_bytes {
            self.shared.drop_entries(DropReason::BufferFull, 1);
            return;
        }
        self.buf_bytes += text.len();
        self.buf.push_back(Buffered {
            repo: Arc::clone(&e.repo),
            text,
        });
        self.gauge();
    }

    /// Removes the first `n` entries (uploaded or dropped).
    fn release(&mut self, n: usize) {
        for b in self.buf.drain(..n.min(self.buf.len())) {
            self.buf_bytes -= b.text.len();
        }
        self.gauge();
    }

    fn gauge(&self) {
        self.shared
            .buffered_entries
            .store(self.buf.len() as u64, Ordering::Relaxed);
        self.shared
            .buffered_bytes
            .store(self.buf_bytes as u64, Ordering::Relaxed);
        metrics::gauge!(BUFFERED_BYTES_METRIC).set(self.buf_bytes as f64);
    }

    /// Starts uploading the oldest entries of one repository, up to `batch_max_bytes` (at
    /// least one entry).
    fn start_upload(&mut self) -> Option<(usize, Upload)> {
        let repo = Arc::clone(&self.buf.front()?.repo);
        let mut body = String::new();
        let mut n = 0;
        for b in self.buf.iter().take_while(|b| b.repo == repo) {
            if n > 0 && body.len() + 1 + b.text.len() > self.cfg.batch_max_bytes {
                break;
            }
            if n > 0 {
                body.push('\n');
            }
            body.push_str(&b.text);
            n += 1;
        }
        let Some(url) = self.cfg.log_url(&repo) else {
            self.release(n);
            self.shared.drop_entries(DropReason::Rejected, n as u64);
            return None;
        };
        let req = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .header("x-maxim-api-key", self.api_key.clone())
            .body(body);
        let key = self.cfg.api_key.clone();
        Some((n, Box::pin(upload(req, key))))
    }
}

/// One POST; the API key never appears in the error (reqwest errors lose their URL, Maxim's
/// answer is cut short and scrubbed).
async fn upload(req: reqwest::RequestBuilder, key: String) -> Result<(), UploadError> {
    let resp = req
        .send()
        .await
        .map_err(|e| UploadError::Transport(e.without_url().to_string()))?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let scrub = |b: &[u8]| {
        let s = String::from_utf8_lossy(&b[..b.len().min(256)]).into_owned();
        if key.is_empty() {
            s
        } else {
            s.replace(&key, "<redacted>")
        }
    };
    if !status.is_success() {
        return Err(UploadError::Status {
            status: status.as_u16(),
            body: scrub(&body),
        });
    }
    // The SDKs treat a 200 whose JSON holds `error` as a refusal.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
        && let Some(e) = v.get("error").filter(|e| !e.is_null())
    {
        let msg = e
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| e.to_string(), str::to_owned);
        return Err(UploadError::Refused(scrub(msg.as_bytes())));
    }
    Ok(())
}

async fn poll_upload(slot: &mut Option<(usize, Upload)>) -> Result<(), UploadError> {
    match slot {
        Some((_, fut)) => fut.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
