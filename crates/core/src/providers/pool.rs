//! Upstream connection pools that stay on the thread that uses them.
//!
//! A transport that runs one single-threaded runtime per core wants each upstream connection
//! driven by the runtime that sends on it: a keep-alive connection opened on worker A and
//! reused by worker B would cost two cross-thread wake-ups per request (B hands the request
//! to A's connection task, A hands the answer back), which on a virtual machine are
//! inter-processor interrupts and cost more than the gateway's own work. Threads that call
//! [`pin_pools_to_thread`] therefore get one pool per provider of their own; every other
//! thread (a multi-thread runtime, a program embedding the engine) shares the provider's one
//! pool, as reqwest does by default.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type MakeClient = dyn Fn() -> Result<reqwest::Client, String> + Send + Sync;

/// A provider's HTTP client: one shared pool, or one per pinned thread.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    id: usize,
    shared: reqwest::Client,
    make: Option<Box<MakeClient>>,
}

thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
    /// This thread's pools, by client id. Few entries (one per provider), so a scan is
    /// cheaper than hashing.
    static POOLS: RefCell<Vec<(usize, reqwest::Client)>> = const { RefCell::new(Vec::new()) };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// Gives the calling thread its own upstream pool per provider from now on. Call it first
/// thing on each worker thread of a thread-per-core server; the pools live as long as the
/// thread.
pub fn pin_pools_to_thread() {
    PINNED.with(|p| p.set(true));
}

impl HttpClient {
    /// A client that builds a pool with `make` for every pinned thread that uses it (and one
    /// now, shared by unpinned threads, which also proves `make` works).
    pub fn per_thread(
        make: impl Fn() -> Result<reqwest::Client, String> + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let shared = make()?;
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shared,
                make: Some(Box::new(make)),
            }),
        })
    }

    /// The pool this thread sends on.
    pub fn client(&self) -> reqwest::Client {
        let inner = &*self.inner;
        let Some(make) = &inner.make else {
            return inner.shared.clone();
        };
        if !PINNED.with(Cell::get) {
            return inner.shared.clone();
        }
        POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            if let Some((_, c)) = pools.iter().find(|(id, _)| *id == inner.id) {
                return c.clone();
            }
            // The same builder succeeded at startup; should it fail now, the shared pool
            // still works, only without thread affinity.
            let client = make().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot build a per-thread HTTP client; using the shared one");
                inner.shared.clone()
            });
            pools.push((inner.id, client.clone()));
            client
        })
    }

    /// Starts a request on this thread's pool.
    pub fn request<U: reqwest::IntoUrl>(
        &self,
        method: reqwest::Method,
        url: U,
    ) -> reqwest::RequestBuilder {
        self.client().request(method, url)
    }
}

/// One pool shared by every thread (tests, and callers that bring their own client).
impl From<reqwest::Client> for HttpClient {
    fn from(shared: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shared,
                make: None,
            }),
        }
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("id", &self.inner.id)
            .field("per_thread", &self.inner.make.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting() -> (HttpClient, Arc<AtomicUsize>) {
        let built = Arc::new(AtomicUsize::new(0));
        let b = built.clone();
        let client = HttpClient::per_thread(move || {
            b.fetch_add(1, Ordering::Relaxed);
            Ok(reqwest::Client::new())
        })
        .unwrap();
        (client, built)
    }

    #[test]
    fn unpinned_threads_share_one_pool() {
        let (client, built) = counting();
        let c2 = client.clone();
        std::thread::spawn(move || {
            c2.client();
        })
        .join()
        .unwrap();
        client.client();
        assert_eq!(built.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn pinned_threads_build_one_pool_each_once() {
        let (client, built) = counting();
        for _ in 0..2 {
            let c = client.clone();
            std::thread::spawn(move || {
                pin_pools_to_thread();
                c.client();
                c.client();
            })
            .join()
            .unwrap();
        }
        assert_eq!(built.load(Ordering::Relaxed), 3);
    }
}
