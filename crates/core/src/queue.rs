//! Per-provider admission: `concurrency` requests in flight, at most `buffer_size` waiting.
//!
//! A semaphore stands in for Bifrost's channel + worker goroutines: same limits, no hop
//! through a worker task, and the permit travels with a stream until it ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::schemas::{BifrostError, ProviderKey};
use crate::telemetry::{self, provider_label};

/// One provider's queue.
#[derive(Debug)]
pub struct ProviderQueue {
    provider: ProviderKey,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    buffer_size: usize,
    drop_excess: bool,
    depth: metrics::Gauge,
    wait: metrics::Histogram,
}

/// Decrements the waiting count however the wait ends (success, timeout, cancellation).
struct WaitGuard<'a>(&'a AtomicUsize, &'a metrics::Gauge);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        self.1.decrement(1.0);
    }
}

impl ProviderQueue {
    /// A queue with `concurrency` slots and `buffer_size` waiting places.
    pub fn new(
        provider: ProviderKey,
        concurrency: usize,
        buffer_size: usize,
        drop_excess: bool,
    ) -> Self {
        Self {
            depth: metrics::gauge!(telemetry::QUEUE_DEPTH, "provider" => provider_label(&provider)),
            wait: metrics::histogram!(telemetry::QUEUE_WAIT, "provider" => provider_label(&provider)),
            provider,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            buffer_size,
            drop_excess,
        }
    }

    /// Takes a slot. When all slots are busy the request waits; if the waiting room is full it
    /// is dropped (429 `request_dropped`) with `drop_excess_requests`, else it keeps waiting.
    /// Every wait ends after `timeout` (503).
    pub async fn acquire(&self, timeout: Duration) -> Result<OwnedSemaphorePermit, BifrostError> {
        if let Ok(p) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(p);
        }
        let queued = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        let _guard = WaitGuard(&self.waiting, &self.depth);
        self.depth.increment(1.0);
        if queued > self.buffer_size && self.drop_excess {
            metrics::counter!(telemetry::QUEUE_DROPPED, "provider" => provider_label(&self.provider))
                .increment(1);
            return Err(BifrostError::queue_full(&self.provider));
        }
        let started = std::time::Instant::now();
        match tokio::time::timeout(timeout, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(p)) => {
                self.wait.record(started.elapsed().as_secs_f64());
                Ok(p)
            }
            Ok(Err(_)) => Err(BifrostError::gateway(
                503,
                "provider_shutdown",
                "provider is shutting down",
            )),
            Err(_) => Err(BifrostError::gateway(
                503,
                "queue_timeout",
                format!(
                    "timed out waiting for a free slot at provider {}",
                    self.provider
                ),
            )),
        }
    }

    /// Requests currently waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Requests currently holding a slot.
    pub fn in_flight(&self, concurrency: usize) -> usize {
        concurrency.saturating_sub(self.slots.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn full_queue_drops_with_429_when_configured() {
        let q = Arc::new(ProviderQueue::new(ProviderKey::OpenAI, 1, 1, true));
        let held = q.acquire(LONG).await.unwrap();
        let q2 = Arc::clone(&q);
        let waiter = tokio::spawn(async move { q2.acquire(LONG).await.map(|_| ()) });
        while q.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        let err = q.acquire(LONG).await.unwrap_err();
        assert_eq!(err.http_status(), 429);
        assert_eq!(err.kind(), "request_dropped");
        drop(held);
        waiter.await.unwrap().unwrap();
        assert_eq!(q.waiting(), 0);
    }

    #[tokio::test]
    async fn without_drop_excess_waits_then_times_out() {
        let q = ProviderQueue::new(ProviderKey::OpenAI, 1, 0, false);
        let _held = q.acquire(LONG).await.unwrap();
        let err = q.acquire(Duration::from_millis(20)).await.unwrap_err();
        assert_eq!(err.http_status(), 503);
        assert_eq!(q.waiting(), 0);
    }
}
