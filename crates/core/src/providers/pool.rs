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
//!
//! Plain-`http` upstreams without a proxy (local models, in-cluster services, the benchmark's
//! upstream) take a lean path: hyper's HTTP/1 connections kept alive in a small pool of our
//! own (`LeanPool`), skipping reqwest's redirect layer (which re-parses the URL twice per
//! request), its boxed connector stack and its response bookkeeping, and hyper-util's pool
//! (two SipHash lookups, a select and a spawned readiness task per request): together about
//! a sixth of the gateway's CPU per request in profiles.
//! HTTPS (HTTP/2, rustls) and proxied upstreams go through reqwest. Both paths hand
//! providers a [`Response`], so providers do not know which one ran.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyDataStream, BodyExt};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Sleep;

type MakeClient = dyn Fn() -> Result<reqwest::Client, String> + Send + Sync;

/// A provider's HTTP client: one shared pool, or one per pinned thread.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    id: usize,
    shared: Pools,
    make: Option<Box<MakeClient>>,
    /// Keep-alive connections per host on the lean path; `None`: no lean path.
    lean: Option<usize>,
    limits: Limits,
}

/// Bounds on one provider's upstream exchanges, from its `network_config`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a new connection may take to establish (lean path; reqwest's is set on its
    /// builder).
    pub connect_timeout: Duration,
    /// A kept-alive connection unused this long is closed.
    pub idle_timeout: Duration,
    /// Largest body [`Response::bytes`] reads.
    pub max_body: usize,
    /// Largest single event (bytes between two blank lines, or one line) of a body read as
    /// a stream with [`Response::bytes_stream`].
    pub max_event: usize,
}

impl From<&crate::config::NetworkConfig> for Limits {
    fn from(n: &crate::config::NetworkConfig) -> Self {
        Self {
            connect_timeout: n.connect_timeout(),
            idle_timeout: n.idle_connection_timeout(),
            max_body: n.max_response_body_bytes(),
            max_event: n.max_stream_event_bytes(),
        }
    }
}

/// The `network_config` defaults.
impl Default for Limits {
    fn default() -> Self {
        Self::from(&crate::config::NetworkConfig::default())
    }
}

/// How much of an error answer's body is read: enough for any provider's message, never a
/// whole page of HTML from a misbehaving proxy.
const MAX_ERROR_BODY: usize = 64 << 10;

/// One thread's (or everyone's) pools for one provider.
struct Pools {
    reqwest: reqwest::Client,
    lean: Option<Arc<LeanPool>>,
}

/// Why an upstream request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// From reqwest (HTTPS and proxied upstreams, and response bodies).
    #[error("{0}")]
    Reqwest(#[from] reqwest::Error),
    /// From the lean path.
    #[error("{}", chain(.0))]
    Lean(hyper::Error),
    /// No connection to the upstream (lean path).
    #[error("cannot connect to the upstream: {0}")]
    Connect(std::io::Error),
    /// The response body broke off (lean path).
    #[error("{}", chain(.0))]
    Body(hyper::Error),
    /// No response headers (or, read whole, no complete body) within the attempt's timeout.
    #[error("no response within the timeout")]
    Timeout,
    /// The request could not be built (lean path).
    #[error("{0}")]
    Invalid(String),
    /// The connection failed before any byte of the request was written: hyper handed the
    /// request back (lean path).
    #[error("{}", chain(.0))]
    NotSent(hyper::Error),
    /// The body (or one stream event) is larger than the configured cap.
    #[error("{what} larger than {limit} bytes (network_config.{setting})")]
    TooLarge {
        /// `response body` or `stream event`.
        what: &'static str,
        /// The cap in bytes.
        limit: usize,
        /// The `network_config` setting that sets it.
        setting: &'static str,
    },
}

impl SendError {
    /// The attempt ran out of time.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_timeout(),
            Self::Timeout => true,
            _ => false,
        }
    }

    /// No connection could be made.
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_connect(),
            Self::Connect(_) => true,
            _ => false,
        }
    }

    /// The response started but its body broke off, could not be decoded or was too large.
    pub fn is_body(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_body() || e.is_decode(),
            Self::Body(_) | Self::TooLarge { .. } => true,
            _ => false,
        }
    }

    /// The request provably never reached the upstream (no connection, or hyper handed it
    /// back unwritten), so sending it again cannot make the caller pay twice.
    pub fn never_sent(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_connect() || e.is_builder(),
            Self::Connect(_) | Self::NotSent(_) | Self::Invalid(_) => true,
            _ => false,
        }
    }

    /// What went wrong, without the URL (which may carry a key in its query).
    pub fn detail(self) -> String {
        match self {
            Self::Reqwest(e) => e.without_url().to_string(),
            other => other.to_string(),
        }
    }
}

/// An error and its causes, `a: b: c`, as reqwest prints its own.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

thread_local! {
    static PINNED: Cell<bool> = const { Cell::new(false) };
    /// This thread's pools, by client id. Few entries (one per provider), so a scan is
    /// cheaper than hashing.
    static POOLS: RefCell<Vec<(usize, Pools)>> = const { RefCell::new(Vec::new()) };
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
    /// now, shared by unpinned threads, which also proves `make` works). With `lean` set,
    /// plain-`http` URLs use hyper's pool (keeping up to `lean` idle connections per host)
    /// instead of reqwest's; leave it unset when a proxy is configured.
    pub fn per_thread(
        make: impl Fn() -> Result<reqwest::Client, String> + Send + Sync + 'static,
        lean: Option<usize>,
        limits: Limits,
    ) -> Result<Self, String> {
        let shared = Pools {
            reqwest: make()?,
            lean: lean.map(|n| LeanPool::new(n, limits)),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shared,
                make: Some(Box::new(make)),
                lean,
                limits,
            }),
        })
    }

    /// Runs `f` on the pools this thread sends on, borrowed: a copy of the clients cost a
    /// handful of reference counts and a few hundred bytes of copying, twice per request.
    /// `f` must not use this client again (the thread's pool list is borrowed meanwhile).
    fn with_pools<R>(&self, f: impl FnOnce(&Pools) -> R) -> R {
        let inner = &*self.inner;
        let Some(make) = &inner.make else {
            return f(&inner.shared);
        };
        if !PINNED.with(Cell::get) {
            return f(&inner.shared);
        }
        POOLS.with(|pools| {
            let mut pools = pools.borrow_mut();
            if let Some((_, p)) = pools.iter().find(|(id, _)| *id == inner.id) {
                return f(p);
            }
            // The same builder succeeded at startup; should it fail now, the shared pool
            // still works, only without thread affinity.
            let reqwest = make().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot build a per-thread HTTP client; using the shared one");
                inner.shared.reqwest.clone()
            });
            let mine = Pools {
                reqwest,
                lean: inner.lean.map(|n| LeanPool::new(n, inner.limits)),
            };
            let out = f(&mine);
            pools.push((inner.id, mine));
            out
        })
    }

    /// The reqwest client this thread sends on.
    pub fn client(&self) -> reqwest::Client {
        self.with_pools(|p| p.reqwest.clone())
    }

    /// Starts a request on this thread's pool; send it with [`HttpClient::send`].
    pub fn request<U: reqwest::IntoUrl>(
        &self,
        method: reqwest::Method,
        url: U,
    ) -> reqwest::RequestBuilder {
        self.client().request(method, url)
    }

    /// Sends `rb` (built by [`HttpClient::request`]) on the lean path when its URL is plain
    /// `http` and this client has one, else through reqwest.
    ///
    /// The builder's timeout bounds connect and response headers on both paths. The body
    /// gets what is left of it when read whole ([`Response::bytes`]) and no total limit when
    /// read as a stream ([`Response::bytes_stream`]): a streamed answer may last minutes,
    /// and the engine bounds the gap between its chunks instead.
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Response, SendError> {
        let (client, req) = rb.build_split();
        let mut req = req?;
        let timeout = req.timeout_mut().take();
        let limits = self.inner.limits;
        if req.url().scheme() == "http"
            && req.url().username().is_empty()
            && req.url().password().is_none()
            && let Some(pool) = self.with_pools(|p| p.lean.clone())
        {
            let (req, addr) = to_http(req)?;
            return send_lean(pool, addr, req, timeout, limits).await;
        }
        // Boxed: reqwest's future is large and this path is the rare one.
        let call = Box::pin(client.execute(req));
        let (resp, deadline) = within(timeout, call).await?;
        let resp = http::Response::<reqwest::Body>::from(resp?);
        Ok(Response(resp.map(|b| {
            UpstreamBody::new(BodyKind::Reqwest(b), None, deadline, limits)
        })))
    }

    /// Sends `out` like [`HttpClient::send`], building hyper's request straight from its
    /// parts on the lean path: reqwest's builder, its `Request` and the conversion from it
    /// cost more than the rest of the upstream leg's request side.
    pub async fn send_parts(&self, out: Outgoing<'_>) -> Result<Response, SendError> {
        if out.url.starts_with("http://")
            && let Some(pool) = self.with_pools(|p| p.lean.clone())
            && let Ok((path, host, addr)) = target(out.url)
        {
            let body = reqwest::Body::from(out.body);
            let req = lean_request(out.method, path, host, out.headers, body);
            return send_lean(pool, addr, req, Some(out.timeout), self.inner.limits).await;
        }
        let rb = match out.parsed {
            Some(url) => self.request(out.method, url.clone()),
            None => self.request(out.method, out.url),
        };
        let rb = rb.headers(out.headers).timeout(out.timeout).body(out.body);
        Box::pin(self.send(rb)).await
    }
}

/// A request as its parts, for [`HttpClient::send_parts`].
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// The method.
    pub method: http::Method,
    /// The full URL.
    pub url: &'a str,
    /// `url` parsed ahead of time, when the caller keeps it (spares reqwest a parse).
    pub parsed: Option<&'a reqwest::Url>,
    /// Every header but `Host`.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
    /// Bounds connect and response headers (and the body when read whole), as in
    /// [`HttpClient::send`].
    pub timeout: Duration,
}

/// Runs `call` within `timeout` (none: unbounded) and hands back the timer with what is left
/// of it, for the body.
async fn within<T>(
    timeout: Option<Duration>,
    call: impl Future<Output = T>,
) -> Result<(T, Option<Pin<Box<Sleep>>>), SendError> {
    let Some(t) = timeout else {
        return Ok((call.await, None));
    };
    let mut sleep = Box::pin(tokio::time::sleep(t));
    tokio::select! {
        biased;
        r = call => Ok((r, Some(sleep))),
        () = sleep.as_mut() => Err(SendError::Timeout),
    }
}

/// `req` on a kept-alive connection of `pool` to `addr`, within `timeout` for connect and
/// headers (the body as in [`HttpClient::send`]).
async fn send_lean(
    pool: Arc<LeanPool>,
    addr: Arc<str>,
    req: http::Request<reqwest::Body>,
    timeout: Option<Duration>,
    limits: Limits,
) -> Result<Response, SendError> {
    let ((resp, slot), deadline) = match within(timeout, pool.send(addr, req)).await? {
        (Ok(sent), deadline) => (sent, deadline),
        (Err(e), _) => return Err(e),
    };
    Ok(Response(resp.map(|inner| {
        UpstreamBody::new(BodyKind::Lean(inner), Some(slot), deadline, limits)
    })))
}

/// Kept-alive HTTP/1.1 connections to plain-`http` upstreams: a stack per provider (and per
/// thread, for pinned threads), newest on top so the warmest connection is reused.
///
/// The lock is taken twice per request and, on a pinned thread, only by that thread.
struct LeanPool {
    idle: Mutex<VecDeque<Idle>>,
    max_idle: usize,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// A sweeper task closes connections left idle past `idle_timeout` (started with the
    /// first kept connection, on the runtime that keeps it).
    sweeping: std::sync::atomic::AtomicBool,
}

struct Idle {
    addr: Arc<str>,
    conn: SendRequest<reqwest::Body>,
    since: Instant,
}

/// A connection lent to one request; its response body gives it back once read to the end.
struct Slot {
    pool: Arc<LeanPool>,
    addr: Arc<str>,
    conn: SendRequest<reqwest::Body>,
}

impl LeanPool {
    fn new(max_idle: usize, limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(VecDeque::new()),
            max_idle: max_idle.max(1),
            connect_timeout: limits.connect_timeout,
            idle_timeout: limits.idle_timeout,
            sweeping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Closes the connections idle for `idle_timeout` or longer (dropping the last handle
    /// of a hyper connection ends its task and closes the socket).
    fn sweep(&self) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        idle.retain(|c| now.duration_since(c.since) < self.idle_timeout && !c.conn.is_closed());
    }

    /// Starts the sweeper once, on the current runtime; it ends with the pool.
    fn start_sweeper(self: &Arc<Self>) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.sweeping.store(false, Ordering::Relaxed);
            return;
        };
        let pool = Arc::downgrade(self);
        let every = (self.idle_timeout / 2).max(Duration::from_millis(100));
        rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match pool.upgrade() {
                    Some(p) => p.sweep(),
                    None => return,
                }
            }
        });
    }

    /// Sends `req` to `addr` (`host:port`) on a kept-alive connection, or a new one.
    ///
    /// A kept-alive connection the upstream has closed meanwhile fails before the request
    /// is written; the request then goes out again on a new connection.
    async fn send(
        self: Arc<Self>,
        addr: Arc<str>,
        mut req: http::Request<reqwest::Body>,
    ) -> Result<(http::Response<Incoming>, Slot), SendError> {
        let mut fresh = false;
        loop {
            let reused = if fresh { None } else { self.checkout(&addr) };
            let new = reused.is_none();
            let mut conn = match reused {
                Some(c) => c,
                None => connect(&addr, self.connect_timeout).await?,
            };
            match conn.ready().await {
                Ok(()) => match conn.try_send_request(req).await {
                    Ok(resp) => {
                        let slot = Slot {
                            pool: self,
                            addr,
                            conn,
                        };
                        return Ok((resp, slot));
                    }
                    Err(mut e) => match e.take_message() {
                        Some(r) if !new => req = r,
                        Some(_) => return Err(SendError::NotSent(e.into_error())),
                        None => return Err(SendError::Lean(e.into_error())),
                    },
                },
                Err(e) if new => return Err(SendError::NotSent(e)),
                Err(_) => {}
            }
            fresh = true;
        }
    }

    /// The newest idle connection to `addr` that is still open.
    fn checkout(&self, addr: &str) -> Option<SendRequest<reqwest::Body>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(i) = idle.iter().rposition(|c| *c.addr == *addr) {
            let c = idle.remove(i)?;
            if !c.conn.is_closed() && c.since.elapsed() < self.idle_timeout {
                return Some(c.conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to `addr`; the oldest and expired connections go
    /// first when the pool is full.
    fn checkin(self: &Arc<Self>, addr: Arc<str>, conn: SendRequest<reqwest::Body>) {
        if conn.is_closed() {
            return;
        }
        self.start_sweeper();
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|c| now.duration_since(c.since) >= self.idle_timeout || c.conn.is_closed())
            || idle.len() >= self.max_idle
        {
            idle.pop_front();
        }
        idle.push_back(Idle {
            addr,
            conn,
            since: now,
        });
    }
}

/// Read size of a lean upstream connection.
const LEAN_READ_BUF: usize = 2048;

/// Opens an HTTP/1.1 connection to `addr` and drives it on a task of the calling runtime.
async fn connect(addr: &str, timeout: Duration) -> Result<SendRequest<reqwest::Body>, SendError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            SendError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))
        })?
        .map_err(SendError::Connect)?;
    // Requests are written whole; waiting to coalesce them only adds latency.
    let _ = stream.set_nodelay(true);
    // Reads in 2 KiB steps instead of hyper's 8 KiB: a connection waiting for its answer
    // holds its read buffer all along, and an answer head, a chat answer or a stream event
    // fits in 2 KiB (larger bodies take more reads).
    let (conn, driver) = http1::Builder::new()
        .read_buf_exact_size(Some(LEAN_READ_BUF))
        .handshake(TokioIo::new(stream))
        .await
        .map_err(SendError::Lean)?;
    tokio::spawn(async move {
        if let Err(e) = driver.await {
            tracing::debug!(error = %e, "upstream connection closed with an error");
        }
    });
    Ok(conn)
}

/// Most upstream URLs a thread keeps parsed for the lean path (endpoints are few; the cache
/// starts over when full).
const TARGETS_CAP: usize = 32;

/// An upstream URL, and what the lean path sends for it: the request target (origin form),
/// the `Host` value and the `host:port` to connect to.
struct Target {
    url: Box<str>,
    path: http::Uri,
    host: http::HeaderValue,
    addr: Arc<str>,
}

impl Target {
    fn parse(url: &str) -> Result<Self, SendError> {
        let invalid = |why: String| SendError::Invalid(format!("invalid upstream URL: {why}"));
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        let authority = uri.authority().ok_or_else(|| invalid("no host".into()))?;
        if authority.as_str().contains('@') {
            // Credentials in the URL are reqwest's to send (as basic auth).
            return Err(invalid("credentials in the URL".into()));
        }
        let path = match uri.path_and_query() {
            Some(pq) => http::Uri::from(pq.clone()),
            None => http::Uri::from_static("/"),
        };
        let host =
            http::HeaderValue::from_str(authority.as_str()).map_err(|e| invalid(e.to_string()))?;
        let addr = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        Ok(Self {
            url: url.into(),
            path,
            host,
            addr: addr.into(),
        })
    }
}

thread_local! {
    /// URL → what the lean path sends: parsing the URL again as a `Uri` and formatting the
    /// `host:port` header were among its per-request costs.
    static TARGETS: RefCell<Vec<Target>> = const { RefCell::new(Vec::new()) };
}

/// `req` as hyper's request to send on a connection of its own (origin-form target, `Host`
/// set), and the `host:port` to connect to; both from the per-thread target cache.
fn to_http(
    mut req: reqwest::Request,
) -> Result<(http::Request<reqwest::Body>, Arc<str>), SendError> {
    let (path, host, addr) = target(req.url().as_str())?;
    let body = req
        .body_mut()
        .take()
        .unwrap_or_else(|| reqwest::Body::from(Bytes::new()));
    let headers = std::mem::take(req.headers_mut());
    let out = lean_request(req.method().clone(), path, host, headers, body);
    Ok((out, addr))
}

/// An HTTP/1.1 request to `path` (origin form) with `Host` set unless `headers` has one.
fn lean_request(
    method: http::Method,
    path: http::Uri,
    host: http::HeaderValue,
    headers: http::HeaderMap,
    body: reqwest::Body,
) -> http::Request<reqwest::Body> {
    let mut out = http::Request::new(body);
    *out.method_mut() = method;
    *out.version_mut() = http::Version::HTTP_11;
    *out.uri_mut() = path;
    *out.headers_mut() = headers;
    out.headers_mut().entry(http::header::HOST).or_insert(host);
    out
}

/// `url`'s origin-form target, `Host` value and `host:port`, from the per-thread cache.
fn target(url: &str) -> Result<(http::Uri, http::HeaderValue, Arc<str>), SendError> {
    TARGETS.with(|cell| {
        let mut targets = cell.borrow_mut();
        let t = match targets.iter().position(|t| &*t.url == url) {
            Some(i) => &targets[i],
            None => {
                let t = Target::parse(url)?;
                if targets.len() >= TARGETS_CAP {
                    targets.clear();
                }
                targets.push(t);
                &targets[targets.len() - 1]
            }
        };
        Ok((t.path.clone(), t.host.clone(), Arc::clone(&t.addr)))
    })
}

/// An upstream response from either path.
#[derive(Debug)]
pub struct Response(http::Response<UpstreamBody>);

impl Response {
    /// The status line's code.
    pub fn status(&self) -> http::StatusCode {
        self.0.status()
    }

    /// The response headers.
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers()
    }

    /// The whole body, within what is left of the attempt's timeout and at most
    /// `max_response_body_size_mb` ([`SendError::TooLarge`] beyond).
    pub async fn bytes(self) -> Result<Bytes, SendError> {
        let mut body = self.0.into_body();
        let limit = body.limits.max_body;
        let too_large = SendError::TooLarge {
            what: "response body",
            limit,
            setting: "max_response_body_size_mb",
        };
        if body.size_hint().lower() > limit as u64 {
            return Err(too_large);
        }
        let mut out = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                if out.len() + data.len() > limit {
                    return Err(too_large);
                }
                if out.is_empty() && body.is_end_stream() {
                    // The usual case: the whole body in one frame, no copy.
                    return Ok(data);
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out.freeze())
    }

    /// The start of an error answer's body (at most 64 KiB; the rest is not read), for the
    /// provider's message.
    pub async fn error_bytes(self) -> Bytes {
        let mut body = self.0.into_body();
        let mut out = bytes::BytesMut::new();
        while out.len() < MAX_ERROR_BODY
            && let Some(Ok(frame)) = body.frame().await
        {
            if let Ok(data) = frame.into_data() {
                let room = MAX_ERROR_BODY - out.len();
                out.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        out.freeze()
    }

    /// The body as it arrives, for streams: no total time limit (the engine bounds the gap
    /// between chunks), and each event (bytes up to a blank line) at most
    /// `max_stream_event_size_kb`, so a peer that never ends an event cannot grow a buffer.
    pub fn bytes_stream(self) -> BodyDataStream<UpstreamBody> {
        let mut body = self.0.into_body();
        body.deadline = None;
        body.event = Some(EventScan::default());
        BodyDataStream::new(body)
    }

    /// The body as it arrives, like [`Response::bytes_stream`] but without the SSE event
    /// cap: for binary framings (AWS event streams), whose reader bounds each frame itself.
    pub fn raw_stream(self) -> BodyDataStream<UpstreamBody> {
        let mut body = self.0.into_body();
        body.deadline = None;
        BodyDataStream::new(body)
    }
}

/// A response reqwest received elsewhere (tests, callers with their own client), with the
/// default limits and no deadline.
impl From<reqwest::Response> for Response {
    fn from(r: reqwest::Response) -> Self {
        let resp = http::Response::<reqwest::Body>::from(r);
        Self(resp.map(|b| UpstreamBody::new(BodyKind::Reqwest(b), None, None, Limits::default())))
    }
}

/// The body of a [`Response`]: either path's body, bounded by the attempt's deadline and
/// (read as a stream) the event cap; on the lean path it gives its connection back to the
/// pool once read to the end.
pub struct UpstreamBody {
    kind: BodyKind,
    slot: Option<Slot>,
    deadline: Option<Pin<Box<Sleep>>>,
    limits: Limits,
    /// Set when read as a stream: where the current event started.
    event: Option<EventScan>,
}

enum BodyKind {
    Reqwest(reqwest::Body),
    Lean(Incoming),
}

/// Where a body read as a stream is within its current event: bytes of the event's complete
/// lines, and of its unfinished last line. An event ends at a blank line (SSE).
#[derive(Default)]
struct EventScan {
    len: usize,
    line: usize,
}

impl EventScan {
    /// Feeds `data`; false once an event grows past `max`.
    fn feed(&mut self, data: &[u8], max: usize) -> bool {
        let mut rest = data;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let seg = &rest[..i];
            if self.line == 0 && (seg.is_empty() || seg == b"\r") {
                self.len = 0;
            } else {
                self.len += self.line + i + 1;
            }
            self.line = 0;
            if self.len > max {
                return false;
            }
            rest = &rest[i + 1..];
        }
        self.line += rest.len();
        self.len + self.line <= max
    }
}

impl UpstreamBody {
    fn new(
        kind: BodyKind,
        slot: Option<Slot>,
        deadline: Option<Pin<Box<Sleep>>>,
        limits: Limits,
    ) -> Self {
        Self {
            kind,
            slot,
            deadline,
            limits,
            event: None,
        }
    }
}

impl fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("lean", &matches!(self.kind, BodyKind::Lean(_)))
            .finish_non_exhaustive()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = SendError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SendError>>> {
        let this = self.get_mut();
        if let Some(d) = this.deadline.as_mut()
            && d.as_mut().poll(cx).is_ready()
        {
            this.slot = None;
            return Poll::Ready(Some(Err(SendError::Timeout)));
        }
        let out = match &mut this.kind {
            BodyKind::Reqwest(b) => Pin::new(b).poll_frame(cx).map_err(SendError::Reqwest),
            BodyKind::Lean(b) => Pin::new(b).poll_frame(cx).map_err(SendError::Body),
        };
        match &out {
            Poll::Ready(Some(Err(_))) => this.slot = None,
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(scan), Some(data)) = (this.event.as_mut(), frame.data_ref())
                    && !scan.feed(data, this.limits.max_event)
                {
                    this.slot = None;
                    this.event = None;
                    return Poll::Ready(Some(Err(SendError::TooLarge {
                        what: "stream event",
                        limit: this.limits.max_event,
                        setting: "max_stream_event_size_kb",
                    })));
                }
                if this.is_end_stream() {
                    this.give_back();
                }
            }
            Poll::Ready(None) => this.give_back(),
            Poll::Pending => {}
        }
        out
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            BodyKind::Reqwest(b) => b.is_end_stream(),
            BodyKind::Lean(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Reqwest(b) => b.size_hint(),
            BodyKind::Lean(b) => b.size_hint(),
        }
    }
}

impl UpstreamBody {
    /// Returns a lean connection whose response was read to the end to its pool.
    fn give_back(&mut self) {
        if let Some(s) = self.slot.take() {
            s.pool.checkin(s.addr, s.conn);
        }
    }
}

/// One pool shared by every thread (tests, and callers that bring their own client).
impl From<reqwest::Client> for HttpClient {
    fn from(reqwest: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shared: Pools {
                    reqwest,
                    lean: None,
                },
                make: None,
                lean: None,
                limits: Limits::default(),
            }),
        }
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("id", &self.inner.id)
            .field("per_thread", &self.inner.make.is_some())
            .field("lean", &self.inner.lean.is_some())
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
        let client = HttpClient::per_thread(
            move || {
                b.fetch_add(1, Ordering::Relaxed);
                Ok(reqwest::Client::new())
            },
            None,
            Limits::default(),
        )
        .unwrap();
        (client, built)
    }

    /// A one-shot HTTP/1 server on loopback that answers every request with `reply`.
    async fn raw_server(reply: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock.write_all(reply).await;
                    // Hold the connection open (a stalled body stays stalled).
                    tokio::time::sleep(Duration::from_secs(30)).await;
                });
            }
        });
        format!("http://{addr}/v1/x")
    }

    fn lean() -> HttpClient {
        HttpClient::per_thread(|| Ok(reqwest::Client::new()), Some(4), Limits::default()).unwrap()
    }

    #[test]
    fn lean_requests_carry_the_cached_uri_and_host() {
        let client = reqwest::Client::new();
        for _ in 0..2 {
            let req = client
                .post("http://127.0.0.1:9/v1/chat/completions?x=1")
                .header("x-a", "b")
                .body("{}")
                .build()
                .unwrap();
            let (h, addr) = to_http(req).unwrap();
            assert_eq!(h.method(), http::Method::POST);
            assert_eq!(h.uri(), "/v1/chat/completions?x=1");
            assert_eq!(h.headers()[http::header::HOST], "127.0.0.1:9");
            assert_eq!(h.headers()["x-a"], "b");
            assert_eq!(&*addr, "127.0.0.1:9");
        }
        let req = client.get("http://localhost").build().unwrap();
        let (h, addr) = to_http(req).unwrap();
        assert_eq!((h.uri().to_string(), &*addr), ("/".into(), "localhost:80"));
    }

    /// A keep-alive HTTP/1 server on loopback answering `hi` with `connection: close` after
    /// `per_conn` requests; returns its URL and how many connections it accepted.
    async fn keep_alive_server(per_conn: usize) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    for i in 1..=per_conn {
                        match sock.read(&mut buf).await {
                            Ok(n) if n > 0 => {}
                            _ => return,
                        }
                        let reply: &[u8] = if i == per_conn {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
                        } else {
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
                        };
                        if sock.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (format!("http://{addr}/v1/x"), accepted)
    }

    #[tokio::test]
    async fn lean_connections_are_reused_and_replaced_when_closed() {
        let (url, accepted) = keep_alive_server(3).await;
        let c = lean();
        for _ in 0..7 {
            let rb = c
                .request(reqwest::Method::POST, &url)
                .timeout(Duration::from_secs(5))
                .body("{}");
            let resp = c.send(rb).await.unwrap();
            assert_eq!(resp.bytes().await.unwrap(), "hi");
        }
        // Three requests per connection: 7 requests need 3 connections, none failed.
        assert_eq!(accepted.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn requests_from_parts_go_out_on_either_path() {
        let (url, accepted) = keep_alive_server(10).await;
        let parsed = reqwest::Url::parse(&url).unwrap();
        // Lean (plain http with a pool), reqwest (no lean pool, as with a proxy), reqwest with
        // the URL parsed ahead, and credentials in the URL (reqwest's to send).
        let with_user = url.replacen("http://", "http://u:p@", 1);
        let cases = [
            (lean(), url.as_str(), None),
            (counting().0, url.as_str(), None),
            (counting().0, url.as_str(), Some(&parsed)),
            (lean(), with_user.as_str(), None),
        ];
        for (client, url, parsed) in cases {
            let mut headers = http::HeaderMap::new();
            headers.insert("x-a", http::HeaderValue::from_static("b"));
            let out = Outgoing {
                method: http::Method::POST,
                url,
                parsed,
                headers,
                body: Bytes::from_static(b"{}"),
                timeout: Duration::from_secs(5),
            };
            let resp = client.send_parts(out).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.bytes().await.unwrap(), "hi");
        }
        assert!(accepted.load(Ordering::Relaxed) >= 1);
    }

    #[tokio::test]
    async fn a_pooled_connection_the_upstream_dropped_is_replaced() {
        // One answer per connection, but without `connection: close`: the client learns
        // only when it tries the idle connection again.
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi")
                    .await;
                drop(sock);
            }
        });
        let c = lean();
        for _ in 0..3 {
            let rb = c
                .request(reqwest::Method::POST, format!("http://{addr}/"))
                .timeout(Duration::from_secs(5))
                .body("{}");
            let resp = c.send(rb).await.unwrap();
            assert_eq!(resp.bytes().await.unwrap(), "hi");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn lean_path_answers_plain_http() {
        let url = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-up: 1\r\n\r\nhello").await;
        let c = lean();
        let rb = c
            .request(reqwest::Method::POST, &url)
            .timeout(Duration::from_secs(5))
            .body("{}");
        let resp = c.send(rb).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-up"], "1");
        assert_eq!(resp.bytes().await.unwrap(), "hello");
    }

    #[tokio::test]
    async fn lean_path_times_out_a_stalled_body() {
        let url = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial").await;
        let c = lean();
        let rb = c
            .request(reqwest::Method::GET, &url)
            .timeout(Duration::from_millis(300));
        let resp = c.send(rb).await.unwrap();
        let started = std::time::Instant::now();
        let err = resp.bytes().await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    fn limited(max_body: usize, max_event: usize, idle: Duration) -> HttpClient {
        let limits = Limits {
            max_body,
            max_event,
            idle_timeout: idle,
            ..Limits::default()
        };
        HttpClient::per_thread(|| Ok(reqwest::Client::new()), Some(4), limits).unwrap()
    }

    async fn get(c: &HttpClient, url: &str) -> Response {
        let rb = c
            .request(reqwest::Method::GET, url)
            .timeout(Duration::from_secs(5));
        c.send(rb).await.unwrap()
    }

    #[tokio::test]
    async fn bodies_larger_than_the_cap_fail_clearly() {
        let url =
            raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n01234567890123456789").await;
        let err = get(&limited(10, 1024, Duration::from_secs(5)), &url)
            .await
            .bytes()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("max_response_body_size_mb"),
            "{err}"
        );
        let ok = get(&limited(20, 1024, Duration::from_secs(5)), &url).await;
        assert_eq!(ok.bytes().await.unwrap().len(), 20);
    }

    #[tokio::test]
    async fn error_bodies_are_read_up_to_their_cap() {
        let url = raw_server(b"HTTP/1.1 500 Oops\r\ncontent-length: 7\r\n\r\nbroken!").await;
        let resp = get(&lean(), &url).await;
        assert_eq!(resp.error_bytes().await, "broken!");
    }

    #[tokio::test]
    async fn a_stream_event_larger_than_the_cap_ends_the_stream() {
        use futures::StreamExt;
        // Two small events, then one that never ends within the cap.
        let url = raw_server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 200\r\n\r\ndata: 1\n\ndata: 2\r\n\r\ndata: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        )
        .await;
        let resp = get(&limited(1 << 20, 32, Duration::from_secs(5)), &url).await;
        let mut s = resp.bytes_stream();
        let mut seen = 0;
        let err = loop {
            match s.next().await {
                Some(Ok(b)) => seen += b.len(),
                Some(Err(e)) => break e,
                None => panic!("the oversized event was let through"),
            }
        };
        assert!(
            err.to_string().contains("max_stream_event_size_kb"),
            "{err}"
        );
        assert!(seen < 200);
    }

    #[test]
    fn event_scan_resets_at_blank_lines_only() {
        let mut e = EventScan::default();
        assert!(e.feed(b"data: 12345\n\n", 16));
        assert!(e.feed(b"data: 1234", 16));
        assert!(e.feed(b"5\r\n\r\ndata: 12345\n", 16));
        assert!(!e.feed(b"data: 1\n", 16), "two lines of one event add up");
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout() {
        let (url, accepted) = keep_alive_server(100).await;
        let c = limited(1 << 20, 1 << 20, Duration::from_millis(200));
        assert_eq!(get(&c, &url).await.bytes().await.unwrap(), "hi");
        assert_eq!(get(&c, &url).await.bytes().await.unwrap(), "hi");
        assert_eq!(accepted.load(Ordering::Relaxed), 1, "reused while fresh");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = c.with_pools(|p| p.lean.as_ref().map(|l| l.idle.lock().unwrap().len()));
        assert_eq!(idle, Some(0), "swept after the idle timeout");
        assert_eq!(get(&c, &url).await.bytes().await.unwrap(), "hi");
        assert_eq!(accepted.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_streamed_body_outlives_the_request_timeout_on_both_paths() {
        use futures::StreamExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                        .await;
                    for _ in 0..6 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let _ = sock.write_all(b"9\r\ndata: x\n\n\r\n").await;
                    }
                    let _ = sock.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        let url = format!("http://{addr}/");
        let with_user = format!("http://u:p@{addr}/");
        for (client, url) in [(lean(), &url), (counting().0, &url), (lean(), &with_user)] {
            let rb = client
                .request(reqwest::Method::GET, url.as_str())
                .timeout(Duration::from_millis(250));
            let mut s = client.send(rb).await.unwrap().bytes_stream();
            let mut got = Vec::new();
            while let Some(b) = s.next().await {
                got.extend_from_slice(&b.unwrap());
            }
            assert_eq!(got.len(), 6 * 9, "{url}");
            // Read whole, the same body is bounded by the timeout.
            let rb = client
                .request(reqwest::Method::GET, url.as_str())
                .timeout(Duration::from_millis(250));
            let err = client.send(rb).await.unwrap().bytes().await.unwrap_err();
            assert!(err.is_timeout(), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn lean_path_reports_refused_connections() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = lean();
        let rb = c
            .request(reqwest::Method::GET, format!("http://127.0.0.1:{port}/"))
            .timeout(Duration::from_secs(5));
        let err = c.send(rb).await.unwrap_err();
        assert!(err.is_connect(), "{err}");
        assert!(!err.is_timeout());
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
