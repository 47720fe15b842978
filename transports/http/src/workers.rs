//! Thread per core: one single-threaded runtime per worker, connections dealt out by one
//! acceptor.
//!
//! Profiles of the gateway under load showed a work-stealing runtime spending about a fifth
//! of its CPU waking sibling workers and switching threads; the same binary on one
//! single-threaded runtime used 20–25 % less CPU per request. So each worker owns a
//! `current_thread` runtime, the connections it is given, and (through
//! [`pin_pools_to_thread`]) its own upstream pools, and no request ever crosses threads.
//! One acceptor on the control runtime deals new connections out round robin, which
//! balances better than `SO_REUSEPORT` hashing with few connections and cannot silently
//! share the port with a second gateway started by mistake.
//!
//! Each worker can also spin for a short while before its thread sleeps ([`crate::spin`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::response::Response;
use bifrost_core::providers::pool::pin_pools_to_thread;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::spin::{SpinToken, Spinner};

/// What a worker serves: a cloneable service (one clone per connection) answering hyper's
/// requests; `app::router` builds it.
pub trait App:
    tower::Service<
        http::Request<hyper::body::Incoming>,
        Response = Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S> App for S where
    S: tower::Service<
            http::Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// New connections waiting for a worker; the acceptor waits when a worker's slot is full.
const HANDOFF_DEPTH: usize = 1024;

/// Longest wait for a request head (the first byte of the next request, on a kept-alive
/// connection, included).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A worker's end of the acceptor: connections arrive over a channel instead of `accept(2)`.
type Handoff = mpsc::Receiver<std::net::TcpStream>;

/// The running workers: wait for them with [`Workers::join`].
pub struct Workers {
    done: Vec<oneshot::Receiver<()>>,
}

impl Workers {
    /// Waits until every worker has drained its connections and stopped.
    pub async fn join(self) {
        for d in self.done {
            let _ = d.await;
        }
    }
}

/// Starts `count` workers, each serving a router from `make_app`, and the acceptor feeding
/// them from `listener`; everything stops taking connections when `stop` turns true and the
/// workers finish once their in-flight requests have.
pub fn start<S>(
    listener: TcpListener,
    make_app: impl Fn() -> S,
    count: usize,
    spin: Duration,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Workers>
where
    S: App,
{
    let token = Arc::new(SpinToken::default());
    let mut senders = Vec::with_capacity(count);
    let mut done = Vec::with_capacity(count);
    for i in 0..count.max(1) {
        let (tx, rx) = mpsc::channel(HANDOFF_DEPTH);
        senders.push(tx);
        let (done_tx, done_rx) = oneshot::channel();
        done.push(done_rx);
        let spinner = Spinner::new(spin, token.clone());
        let mut builder = tokio::runtime::Builder::new_current_thread();
        builder.enable_all();
        spinner.install(&mut builder);
        let runtime = builder.build().context("building a worker runtime")?;
        let app = make_app();
        let stop = stop.clone();
        std::thread::Builder::new()
            .name(format!("bifrost-worker-{i}"))
            .spawn(move || {
                pin_pools_to_thread();
                runtime.block_on(async move {
                    spinner.spawn();
                    tokio::spawn(timer_heartbeat());
                    serve(rx, app, stop).await;
                });
                let _ = done_tx.send(());
            })
            .context("starting a worker thread")?;
    }
    tokio::spawn(accept_loop(listener, senders, stop));
    Ok(Workers { done })
}

/// Serves the connections handed to this worker until `stop`, then waits for the open ones
/// to finish their in-flight requests (the caller bounds that wait).
///
/// HTTP/1.1 only, straight on hyper: the HTTP/2 detection of a generic server peeks at every
/// connection and wraps its I/O in one more layer for no client of this API (Bifrost speaks
/// HTTP/1.1 too).
async fn serve<S: App>(mut handoff: Handoff, app: S, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.keep_alive(true);
    // A client gets this long to send a request's head, and an idle keep-alive connection is
    // closed after it: a slow or silent client cannot hold a connection (and its memory)
    // forever. Bodies have their own read deadline (`body_timeout`).
    http.timer(TokioTimer::new());
    http.header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let stream = tokio::select! {
            s = handoff.recv() => match s {
                Some(s) => s,
                None => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let stream = match TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register an accepted connection");
                continue;
            }
        };
        let conn =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
    drop(handoff);
    graceful.shutdown().await;
}

/// Keeps a timer due within a second on the worker's runtime. Tokio writes to the runtime's
/// eventfd whenever a new timer is due before the earliest one it last slept for, and with
/// no timer pending that is every request's timeout: a wasted syscall and a spurious wake-up
/// every other request in profiles. With this tick pending, request timeouts (seconds away)
/// never come first.
async fn timer_heartbeat() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// Accepts until `stop`, dealing connections to the workers in turn.
async fn accept_loop(
    listener: TcpListener,
    mut workers: Vec<mpsc::Sender<std::net::TcpStream>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, _peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot hand an accepted connection to a worker");
                continue;
            }
        };
        if !deal(&mut workers, &mut next, stream).await {
            tracing::error!("no worker left to take connections");
            return;
        }
    }
}

/// Hands `stream` to the next worker with room, skipping full ones (waiting only when all are
/// full) and forgetting stopped ones; false when none is left.
async fn deal(
    workers: &mut Vec<mpsc::Sender<std::net::TcpStream>>,
    next: &mut usize,
    mut stream: std::net::TcpStream,
) -> bool {
    while !workers.is_empty() {
        let mut closed = None;
        for k in 0..workers.len() {
            let i = (*next + k) % workers.len();
            match workers[i].try_send(stream) {
                Ok(()) => {
                    *next = i + 1;
                    return true;
                }
                Err(mpsc::error::TrySendError::Full(s)) => stream = s,
                Err(mpsc::error::TrySendError::Closed(s)) => {
                    stream = s;
                    closed = Some(i);
                    break;
                }
            }
        }
        if let Some(i) = closed {
            workers.swap_remove(i);
            continue;
        }
        // Every worker is full: wait for the next one in turn.
        let i = *next % workers.len();
        *next = i + 1;
        match workers[i].send(stream).await {
            Ok(()) => return true,
            Err(mpsc::error::SendError(s)) => {
                stream = s;
                workers.swap_remove(i);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deal_skips_full_workers_and_forgets_stopped_ones() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conn = || std::net::TcpStream::connect(addr).unwrap();
        let (full, _full_rx) = mpsc::channel(1);
        full.try_send(conn()).unwrap();
        let (stopped, stopped_rx) = mpsc::channel(1);
        drop(stopped_rx);
        let (open, mut open_rx) = mpsc::channel(4);
        let mut workers = vec![full, stopped, open];
        let mut next = 0;
        assert!(deal(&mut workers, &mut next, conn()).await);
        assert!(open_rx.try_recv().is_ok(), "dealt to the worker with room");
        assert_eq!(workers.len(), 2, "the stopped worker is forgotten");
        let mut none = Vec::new();
        assert!(!deal(&mut none, &mut next, conn()).await);
    }
}
