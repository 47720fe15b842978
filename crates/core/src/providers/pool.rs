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
}

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
    /// No complete response within the attempt's timeout (lean path).
    #[error("no response within the timeout")]
    Timeout,
    /// The request could not be built (lean path).
    #[error("{0}")]
    Invalid(String),
}

impl SendError {
    /// The attempt ran out of time.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_timeout(),
            Self::Lean(_) | Self::Connect(_) | Self::Body(_) | Self::Invalid(_) => false,
            Self::Timeout => true,
        }
    }

    /// No connection could be made.
    pub fn is_connect(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_connect(),
            Self::Connect(_) => true,
            Self::Lean(_) | Self::Body(_) | Self::Timeout | Self::Invalid(_) => false,
        }
    }

    /// The response started but its body broke off or could not be decoded.
    pub fn is_body(&self) -> bool {
        match self {
            Self::Reqwest(e) => e.is_body() || e.is_decode(),
            Self::Body(_) => true,
            Self::Lean(_) | Self::Connect(_) | Self::Timeout | Self::Invalid(_) => false,
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
    ) -> Result<Self, String> {
        let shared = Pools {
            reqwest: make()?,
            lean: lean.map(LeanPool::new),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                shared,
                make: Some(Box::new(make)),
                lean,
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
                lean: inner.lean.map(LeanPool::new),
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
    /// `http` and this client has one, else through reqwest. The builder's timeout bounds
    /// the whole exchange on both paths, response body included.
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Response, SendError> {
        let (client, req) = rb.build_split();
        let req = req?;
        if req.url().scheme() == "http"
            && req.url().username().is_empty()
            && req.url().password().is_none()
            && let Some(pool) = self.with_pools(|p| p.lean.clone())
        {
            let timeout = req.timeout().copied();
            let (req, addr) = to_http(req)?;
            return send_lean(pool, addr, req, timeout).await;
        }
        // Boxed: reqwest's future is large and this path is the rare one.
        Ok(Box::pin(client.execute(req)).await?.into())
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
            return send_lean(pool, addr, req, Some(out.timeout)).await;
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
    /// Bounds the whole exchange, response body included.
    pub timeout: Duration,
}

/// `req` on a kept-alive connection of `pool` to `addr`, within `timeout` for headers and
/// body alike (as reqwest's total timeout).
async fn send_lean(
    pool: Arc<LeanPool>,
    addr: Arc<str>,
    req: http::Request<reqwest::Body>,
    timeout: Option<Duration>,
) -> Result<Response, SendError> {
    let mut deadline = timeout.map(|t| Box::pin(tokio::time::sleep(t)));
    let call = pool.send(addr, req);
    let (resp, slot) = match deadline.as_mut() {
        Some(sleep) => tokio::select! {
            biased;
            r = call => r,
            () = sleep.as_mut() => return Err(SendError::Timeout),
        },
        None => call.await,
    }?;
    Ok(Response(resp.map(|inner| {
        UpstreamBody::Lean(DeadlineBody {
            inner,
            deadline,
            slot: Some(slot),
        })
    })))
}

/// Longest a kept-alive upstream connection waits unused before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest a new upstream connection may take to establish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Kept-alive HTTP/1.1 connections to plain-`http` upstreams: a stack per provider (and per
/// thread, for pinned threads), newest on top so the warmest connection is reused.
///
/// The lock is taken twice per request and, on a pinned thread, only by that thread.
struct LeanPool {
    idle: Mutex<VecDeque<Idle>>,
    max_idle: usize,
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
    fn new(max_idle: usize) -> Arc<Self> {
        Arc::new(Self {
            idle: Mutex::new(VecDeque::new()),
            max_idle: max_idle.max(1),
        })
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
                None => connect(&addr).await?,
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
                        _ => return Err(SendError::Lean(e.into_error())),
                    },
                },
                Err(e) if new => return Err(SendError::Lean(e)),
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
            if !c.conn.is_closed() && c.since.elapsed() < IDLE_TIMEOUT {
                return Some(c.conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to `addr`; the oldest and expired connections go
    /// first when the pool is full.
    fn checkin(&self, addr: Arc<str>, conn: SendRequest<reqwest::Body>) {
        if conn.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        while idle
            .front()
            .is_some_and(|c| now.duration_since(c.since) >= IDLE_TIMEOUT || c.conn.is_closed())
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

/// Opens an HTTP/1.1 connection to `addr` and drives it on a task of the calling runtime.
async fn connect(addr: &str) -> Result<SendRequest<reqwest::Body>, SendError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
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
    let (conn, driver) = http1::handshake(TokioIo::new(stream))
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

    /// The whole body (bounded by the attempt's timeout).
    pub async fn bytes(self) -> Result<Bytes, SendError> {
        Ok(self.0.into_body().collect().await?.to_bytes())
    }

    /// The body as it arrives, for streams.
    pub fn bytes_stream(self) -> BodyDataStream<UpstreamBody> {
        BodyDataStream::new(self.0.into_body())
    }
}

impl From<reqwest::Response> for Response {
    fn from(r: reqwest::Response) -> Self {
        Self(http::Response::<reqwest::Body>::from(r).map(UpstreamBody::Reqwest))
    }
}

/// The body of a [`Response`].
#[derive(Debug)]
pub enum UpstreamBody {
    /// From reqwest.
    Reqwest(reqwest::Body),
    /// From the lean path.
    Lean(DeadlineBody),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = SendError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SendError>>> {
        match self.get_mut() {
            Self::Reqwest(b) => Pin::new(b).poll_frame(cx).map_err(SendError::Reqwest),
            Self::Lean(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Reqwest(b) => b.is_end_stream(),
            Self::Lean(b) => b.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Reqwest(b) => b.size_hint(),
            Self::Lean(b) => b.inner.size_hint(),
        }
    }
}

/// A response body that fails with [`SendError::Timeout`] once the attempt's deadline
/// passes, so a stalled upstream cannot hold a request past its timeout; read to the end, it
/// gives its connection back to the pool.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Option<Pin<Box<Sleep>>>,
    slot: Option<Slot>,
}

impl fmt::Debug for DeadlineBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadlineBody")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl DeadlineBody {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SendError>>> {
        if let Some(d) = self.deadline.as_mut()
            && d.as_mut().poll(cx).is_ready()
        {
            self.slot = None;
            return Poll::Ready(Some(Err(SendError::Timeout)));
        }
        let out = Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(SendError::Body);
        match &out {
            Poll::Ready(Some(Err(_))) => self.slot = None,
            Poll::Ready(_) if self.inner.is_end_stream() || matches!(out, Poll::Ready(None)) => {
                if let Some(s) = self.slot.take() {
                    s.pool.checkin(s.addr, s.conn);
                }
            }
            _ => {}
        }
        out
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
        HttpClient::per_thread(|| Ok(reqwest::Client::new()), Some(4)).unwrap()
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
