//! Off the request path: the bounded queue the hooks feed, and the writer that drains it in
//! batches, connects (and reconnects) to the store and runs retention.
//!
//! The hooks only ever `try_send`: a full queue (or a full byte budget) drops the entry and
//! counts it (`bifrost_log_entries_dropped_total`, a warning at most every 10 s), so a slow
//! or stopped database costs requests nothing and memory stays bounded by the queue.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::{ContentMode, LoggingConfig, StoreConfig};
use crate::entry::LogEntry;
use crate::store::Db;

/// Counter of entries not written, labelled by `reason` (`queue_full`, `write_failed`,
/// `store_unavailable`).
pub const DROPPED_METRIC: &str = "bifrost_log_entries_dropped_total";
/// Counter of entries written to the store.
pub const WRITTEN_METRIC: &str = "bifrost_log_entries_written_total";

/// Longest one batch insert or retention pass may take before it is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one drop warning per this many milliseconds.
const WARN_EVERY_MS: u64 = 10_000;

/// An entry in the queue with the bytes it was charged.
pub(crate) struct Queued {
    pub entry: LogEntry,
    pub bytes: usize,
}

/// A request to the writer.
pub(crate) enum Control {
    /// Write everything queued so far, then answer.
    Flush(oneshot::Sender<()>),
}

/// State shared by the hooks (producers), the writer and the API.
pub(crate) struct Shared {
    tx: mpsc::Sender<Queued>,
    queued_bytes: AtomicUsize,
    max_queue_bytes: usize,
    dropped: AtomicU64,
    written: AtomicU64,
    last_warn_ms: AtomicU64,
    /// Woken when the queue passes half its entries or bytes, so the writer drains it
    /// before the batch interval is up.
    pub pressure: tokio::sync::Notify,
    half_entries: usize,
    /// Input/output capture mode, read by the hooks.
    pub content: ContentMode,
}

impl Shared {
    pub fn new(tx: mpsc::Sender<Queued>, cfg: &LoggingConfig) -> Self {
        Self {
            tx,
            queued_bytes: AtomicUsize::new(0),
            max_queue_bytes: cfg.writer.max_queue_bytes,
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            last_warn_ms: AtomicU64::new(0),
            pressure: tokio::sync::Notify::new(),
            half_entries: cfg.writer.queue_capacity.max(1).div_ceil(2),
            content: cfg.content,
        }
    }

    /// Queues `entry` without waiting; drops and counts it when the queue is full.
    pub fn submit(&self, entry: LogEntry) {
        let bytes = entry.approx_bytes();
        let before = self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.max_queue_bytes {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.drop_entries(1, "queue_full");
            return;
        }
        if self.tx.try_send(Queued { entry, bytes }).is_err() {
            self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.drop_entries(1, "queue_full");
            return;
        }
        if self.tx.capacity() <= self.half_entries || before > self.max_queue_bytes / 2 {
            self.pressure.notify_one();
        }
    }

    /// Counts `n` entries that will never be written, with a rate-limited warning.
    pub fn drop_entries(&self, n: u64, reason: &'static str) {
        if n == 0 {
            return;
        }
        let total = self.dropped.fetch_add(n, Ordering::Relaxed) + n;
        metrics::counter!(DROPPED_METRIC, "reason" => reason).increment(n);
        let now = now_ms() as u64;
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_MS
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                reason,
                dropped_total = total,
                "request log entries dropped (the log store is slow, down or the queue is full); \
                 requests are not affected"
            );
        }
    }

    /// Entries dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Entries written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Bytes charged for entries queued or being written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Entries waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// The store once connected, and why it is not yet.
#[derive(Default)]
pub(crate) struct Slot {
    pub db: OnceLock<Db>,
    pub last_error: Mutex<Option<String>>,
}

impl Slot {
    fn set_error(&self, e: String) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = Some(e);
        }
    }

    /// Why the store is not available, for API errors.
    pub fn why_unavailable(&self) -> String {
        self.last_error
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_else(|| "still connecting".to_owned())
    }
}

/// Current Unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Connects until it works (backing off from 1 s to 30 s), then publishes the store.
/// `first` learns the first attempt's outcome (startup waits on it for SQLite).
pub(crate) async fn connect_loop(
    store: StoreConfig,
    slot: Arc<Slot>,
    first: Option<std::sync::mpsc::Sender<Result<(), String>>>,
) {
    let mut first = first;
    let mut backoff = Duration::from_secs(1);
    loop {
        match Db::connect(&store, CONNECT_TIMEOUT).await {
            Ok(db) => {
                tracing::info!(store = store.kind(), "request log store ready");
                let _ = slot.db.set(db);
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                return;
            }
            Err(e) => {
                let msg = e.to_string();
                tracing::warn!(store = store.kind(), error = %msg, retry_in = ?backoff,
                    "request log store unreachable; entries are dropped until it is");
                slot.set_error(msg.clone());
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(msg));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The writer: batches entries until `batch_interval` has passed since the first one (or the
/// queue is half full), writes them in transactions of at most `max_batch_size`, answers
/// flush requests and runs retention on its interval.
///
/// While a batch collects, the writer sleeps on its deadline instead of listening to the
/// queue, so a request's `try_send` wakes no thread: one wake-up per batch, not per entry.
pub(crate) async fn run(
    cfg: LoggingConfig,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    mut rx: mpsc::Receiver<Queued>,
    mut ctl: mpsc::Receiver<Control>,
) {
    let max = cfg.writer.max_batch_size.max(1);
    let mut w = Batch {
        entries: Vec::with_capacity(max.min(4096)),
        bytes: 0,
        max,
        shared,
        slot,
        pg: matches!(cfg.store, StoreConfig::Postgres { .. }),
    };
    let mut staged = Vec::with_capacity(max.min(4096));
    let retention_on = cfg.retention_days > 0 || cfg.max_rows > 0;
    let mut retention = tokio::time::interval(cfg.retention_interval);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if w.entries.is_empty() {
            // Idle: the first entry of the next batch wakes the writer.
            tokio::select! {
                biased;
                c = ctl.recv() => {
                    if !control(c, &mut w, &mut rx).await {
                        return;
                    }
                    continue;
                }
                n = rx.recv_many(&mut staged, max) => {
                    if n == 0 {
                        return;
                    }
                    for q in staged.drain(..) {
                        w.push(q);
                    }
                }
                _ = retention.tick(), if retention_on => {
                    if let Some(db) = w.slot.db.get() {
                        retain(db, &cfg).await;
                    }
                    continue;
                }
            }
        }
        if w.entries.len() < max {
            let deadline = Instant::now() + cfg.writer.batch_interval;
            tokio::select! {
                biased;
                c = ctl.recv() => {
                    if !control(c, &mut w, &mut rx).await {
                        return;
                    }
                    continue;
                }
                () = tokio::time::sleep_until(deadline) => {}
                () = w.shared.pressure.notified() => {}
            }
        }
        // Drain what is queued, one transaction per `max_batch_size`.
        loop {
            while w.entries.len() < max {
                match rx.try_recv() {
                    Ok(q) => w.push(q),
                    Err(_) => break,
                }
            }
            let full = w.entries.len() >= max;
            if !w.write(false).await || !full {
                break;
            }
        }
    }
}

/// Handles one control message; `false` when the plugin is gone and the writer should stop.
async fn control(c: Option<Control>, w: &mut Batch, rx: &mut mpsc::Receiver<Queued>) -> bool {
    let reply = c.map(|Control::Flush(reply)| reply);
    while let Ok(q) = rx.try_recv() {
        w.push(q);
        if w.entries.len() >= w.max {
            w.write(true).await;
        }
    }
    w.write(true).await;
    match reply {
        Some(r) => {
            let _ = r.send(());
            true
        }
        None => false,
    }
}

async fn retain(db: &Db, cfg: &LoggingConfig) {
    let older =
        (cfg.retention_days > 0).then(|| now_ms() - i64::from(cfg.retention_days) * 86_400_000);
    let max_rows = (cfg.max_rows > 0).then_some(cfg.max_rows);
    match tokio::time::timeout(WRITE_TIMEOUT, db.retain(older, max_rows)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(removed = n, "request log retention"),
        Ok(Err(e)) => tracing::warn!(error = %e, "request log retention failed"),
        Err(_) => tracing::warn!("request log retention timed out"),
    }
}

/// The batch being built.
struct Batch {
    entries: Vec<LogEntry>,
    bytes: usize,
    max: usize,
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    pg: bool,
}

impl Batch {
    fn push(&mut self, q: Queued) {
        self.entries.push(q.entry);
        self.bytes += q.bytes;
    }

    /// Writes the batch. Without a store yet, keeps it (returns `false`) unless `force` or
    /// full, when it is dropped and counted. The batch's bytes stay charged to the queue's
    /// budget until here, so memory is bounded by the budget, not the budget plus a batch.
    async fn write(&mut self, force: bool) -> bool {
        if self.entries.is_empty() {
            return true;
        }
        let n = self.entries.len() as u64;
        match self.slot.db.get() {
            None if !force && self.entries.len() < self.max => return false,
            None => self.shared.drop_entries(n, "store_unavailable"),
            Some(db) => {
                if self.pg {
                    self.entries.iter_mut().for_each(LogEntry::strip_nul);
                }
                match tokio::time::timeout(WRITE_TIMEOUT, db.insert(&self.entries)).await {
                    Ok(Ok(())) => {
                        self.shared.written.fetch_add(n, Ordering::Relaxed);
                        metrics::counter!(WRITTEN_METRIC).increment(n);
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, entries = n, "request log batch failed");
                        self.slot.set_error(e.to_string());
                        self.shared.drop_entries(n, "write_failed");
                    }
                    Err(_) => {
                        self.slot
                            .set_error(format!("writing timed out after {WRITE_TIMEOUT:?}"));
                        self.shared.drop_entries(n, "write_failed");
                    }
                }
            }
        }
        self.entries.clear();
        self.shared
            .queued_bytes
            .fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
        true
    }
}
