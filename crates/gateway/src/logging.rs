//! Log output. Events are formatted on the thread that logs them and written to stderr by a
//! background thread through a bounded queue, so a slow log consumer (a full pipe, a stalled
//! collector) never blocks a worker in the middle of a request; lines that do not fit are
//! dropped and counted in `bifrost_log_entries_dropped_total{sink="stderr"}`.

use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines the queue holds before new ones are dropped (about 4 MB of typical JSON lines).
const QUEUE_LINES: usize = 16_384;

/// Log lines dropped because the queue was full (counter, label `sink`).
pub const LOG_DROPPED: &str = "bifrost_log_entries_dropped_total";

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Installs the global subscriber at `level` (`RUST_LOG` overrides it) in `style` (`pretty`,
/// or JSON lines). Keep the guard until exit: dropping it writes out what is queued.
pub fn init(level: &str, style: &str) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUE_LINES)
        .lossy(true)
        .thread_name("bifrost-log")
        .finish(std::io::stderr());
    let _ = DROPPED.set(writer.error_counter());
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        EnvFilter::new(format!("{level},hyper=warn,reqwest=warn,h2=warn,rmcp=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if style == "pretty" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
    guard
}

/// Brings the dropped-lines counter up to date (it is read, not pushed, so logging a line
/// costs no metrics work).
pub fn record_dropped() {
    let n = DROPPED.get().map_or(0, ErrorCounter::dropped_lines);
    metrics::counter!(LOG_DROPPED, "sink" => "stderr")
        .absolute(u64::try_from(n).unwrap_or(u64::MAX));
}
