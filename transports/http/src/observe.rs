//! The layer every routed request passes: request id, HTTP metrics, the gateway-overhead
//! headers, the early 413 and the panic guard.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bifrost_core::telemetry::{LabelSet, LocalSeries, status_label, with_local};
use bifrost_gateway::metadata::{X_REQUEST_ID, request_id};
use metrics::{Label, SharedString};
use tower::{Layer, Service};

use crate::app::AppState;
use crate::errors::{Dialect, http_error};

/// A 413 decided from the `Content-Length` header alone, before reading a byte of an
/// oversized body (the body limit layer would only notice after reading it).
fn oversized(req: &Request, max: usize) -> Option<Response> {
    let len = req
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    (len > max as u64).then(|| {
        Dialect::for_path(req.uri().path()).http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!(
                "request body of {len} bytes exceeds the limit of {max} bytes (client.max_request_body_size_mb)"
            ),
        )
    })
}

/// The request id (the caller's `x-request-id` or a new one), available to handlers.
#[derive(Clone)]
pub(crate) struct RequestId(pub(crate) HeaderValue);

/// Time a handler spent waiting on providers, left in the response's extensions so the
/// middleware can report the gateway's own share of the request.
#[derive(Clone, Copy)]
pub(crate) struct UpstreamTime(pub(crate) Duration);

const X_OVERHEAD: HeaderName = HeaderName::from_static("x-bifrost-overhead-us");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// Request id, HTTP metrics, the gateway-overhead header and one debug log line per request,
/// as a route layer (it labels requests by their matched route, which exists only inside the
/// router).
///
/// Overhead = time from the request reaching this layer until the response (for streams:
/// its headers) is ready, minus the time spent waiting on providers (`UpstreamTime`).
///
/// It also answers an oversized request (by its `Content-Length`) with 413 before the body is
/// read, and a panicking handler with a JSON 500. Hand-written rather than
/// `middleware::from_fn`: that one cloned the inner route (an allocation) and boxed its
/// future on every request.
#[derive(Clone)]
pub(crate) struct ObserveLayer {
    st: AppState,
    max_body: usize,
}

impl ObserveLayer {
    /// Observes requests with `st`'s custom labels, refusing bodies above `max_body` bytes.
    pub(crate) fn new(st: AppState, max_body: usize) -> Self {
        Self { st, max_body }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ObserveLayer`] wraps around each route.
#[derive(Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = request_id(req.headers());
        let seen = Seen {
            started: Instant::now(),
            _in_flight: crate::spin::InFlight::start(),
            id: id.clone(),
            // The router is per worker, so this clone touches a worker-local count.
            matched: req.extensions().get::<MatchedPath>().cloned(),
            method: method_label(req.method()),
            custom: custom_labels(&self.layer.st, req.headers()),
        };
        req.extensions_mut().insert(RequestId(id));
        let inner = match oversized(&req, self.layer.max_body) {
            Some(refused) => Inner::Refused(Some(refused)),
            None => Inner::Running(self.inner.call(req)),
        };
        ObserveFuture {
            inner,
            seen: Some(seen),
        }
    }
}

/// What [`Observe`] noted of a request before handing it on.
struct Seen {
    started: Instant,
    _in_flight: crate::spin::InFlight,
    id: HeaderValue,
    matched: Option<MatchedPath>,
    method: &'static str,
    custom: Vec<Label>,
}

enum Inner<F> {
    Running(F),
    Refused(Option<Response>),
}

/// The future of [`Observe`]: the route's, then the bookkeeping on its response.
pub(crate) struct ObserveFuture<F> {
    inner: Inner<F>,
    seen: Option<Seen>,
}

impl<F> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let resp = match &mut this.inner {
            // A panicking handler answers a JSON 500; the connection and the process stay up.
            Inner::Running(fut) => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(resp))) => resp,
                    Ok(Poll::Ready(Err(never))) => match never {},
                    Err(_) => http_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal_error",
                        "internal error",
                    ),
                }
            }
            Inner::Refused(resp) => match resp.take() {
                Some(resp) => resp,
                None => return Poll::Pending,
            },
        };
        Poll::Ready(Ok(match this.seen.take() {
            Some(seen) => finish(resp, seen),
            None => resp,
        }))
    }
}

/// Route templates with their own `path` value (the router has a few dozen).
const MAX_ROUTE_LABELS: usize = 256;

/// The `path` label: the matched route template (or `unmatched`), from its own bounded set
/// so no other kind of name can crowd routes out.
fn route_label(path: &str) -> SharedString {
    static ROUTES: LazyLock<LabelSet> = LazyLock::new(|| LabelSet::new(MAX_ROUTE_LABELS));
    ROUTES.admit(path)
}

/// The caller's values of the custom Prometheus labels (bounded per label, see
/// [`bifrost_gateway::metadata::custom_labels`]).
fn custom_labels(st: &AppState, headers: &HeaderMap) -> Vec<Label> {
    if st.prometheus_labels.is_empty() {
        return Vec::new();
    }
    bifrost_gateway::metadata::custom_labels(&st.prometheus_labels, headers)
}

/// The overhead headers, the request id, the HTTP metrics and the log line for `resp`.
fn finish(mut resp: Response, seen: Seen) -> Response {
    let Seen {
        started,
        id,
        matched,
        method,
        custom,
        ..
    } = seen;
    let total = started.elapsed();
    let status = resp.status().as_u16();
    let path = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    // Every answer carries its overhead; those that called no provider have no upstream time.
    let upstream = resp
        .extensions()
        .get::<UpstreamTime>()
        .map_or(Duration::ZERO, |UpstreamTime(u)| *u);
    let overhead = total.saturating_sub(upstream);
    {
        let h = resp.headers_mut();
        h.insert(
            X_OVERHEAD,
            HeaderValue::from(u64::try_from(overhead.as_micros()).unwrap_or(u64::MAX)),
        );
        let mut timing = String::with_capacity(48);
        timing.push_str("gateway;dur=");
        push_millis(&mut timing, overhead);
        timing.push_str(", upstream;dur=");
        push_millis(&mut timing, upstream);
        if let Ok(v) = HeaderValue::from_str(&timing) {
            h.insert(SERVER_TIMING, v);
        }
    }
    tracing::debug!(request_id = ?id, method, path, status, "request");
    resp.headers_mut().insert(X_REQUEST_ID, id);
    let scrape = path == "/metrics";
    with_http_series(path, method, status, |series| {
        if !scrape {
            series.overhead.record(overhead.as_secs_f64());
        }
        if custom.is_empty() && !scrape {
            series.duration.record(total.as_secs_f64());
            series.requests.increment(1);
        }
    });
    if !custom.is_empty() && !scrape {
        let mut labels = Vec::with_capacity(3 + custom.len());
        labels.extend([
            Label::new("path", route_label(path)),
            Label::new("method", method),
            Label::new("status", status_label(status)),
        ]);
        labels.extend(custom);
        metrics::histogram!(HTTP_DURATION, labels.iter()).record(total.as_secs_f64());
        metrics::counter!(HTTP_REQUESTS, labels.iter()).increment(1);
    }
    resp
}

/// Appends `d` in milliseconds with three decimals (`12.345`), from integer microseconds:
/// `format!` with float or padded arguments cost more than the rest of the header work.
fn push_millis(out: &mut String, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut digits = [0u8; 20];
    let mut n = us / 1000;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let frac = us % 1000;
    for b in &digits[i..] {
        out.push(char::from(*b));
    }
    out.push('.');
    for div in [100, 10, 1] {
        out.push(char::from(b'0' + (frac / div % 10) as u8));
    }
}

/// The HTTP series of one (route, method, status), registered once: a labelled lookup in the
/// recorder per request showed up in profiles. Bounded: paths are route templates (a
/// bounded set) and statuses are few.
struct HttpSeries {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    overhead: metrics::Histogram,
}

fn http_series(path: &str, method: &'static str, status: u16) -> Arc<HttpSeries> {
    type Key = (SharedString, &'static str, u16);
    static CACHE: OnceLock<RwLock<HashMap<Key, Arc<HttpSeries>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RwLock::new(HashMap::new()));
    let path = route_label(path);
    let key = (path.clone(), method, status);
    if let Ok(map) = cache.read()
        && let Some(s) = map.get(&key)
    {
        return Arc::clone(s);
    }
    let labels = [
        Label::new("path", path.clone()),
        Label::new("method", method),
        Label::new("status", status_label(status)),
    ];
    let series = Arc::new(HttpSeries {
        requests: metrics::counter!(HTTP_REQUESTS, labels.iter()),
        duration: metrics::histogram!(HTTP_DURATION, labels.iter()),
        overhead: metrics::histogram!(GATEWAY_OVERHEAD, "path" => path.clone()),
    });
    if let Ok(mut map) = cache.write() {
        return Arc::clone(map.entry(key).or_insert(series));
    }
    series
}

thread_local! {
    /// This worker's view of the HTTP series (routes are few, so it stays small): no lock
    /// and no shared reference count per request.
    static LOCAL_HTTP: LocalSeries<(&'static str, u16), HttpSeries> = LocalSeries::new();
}

/// Runs `f` on the HTTP series of (route, method, status) from this thread's cache.
fn with_http_series<R>(
    path: &str,
    method: &'static str,
    status: u16,
    f: impl FnOnce(&HttpSeries) -> R,
) -> R {
    with_local(
        &LOCAL_HTTP,
        path,
        (method, status),
        || http_series(path, method, status),
        f,
    )
}

/// HTTP requests by path (route template), method, status (counter; Bifrost's name).
const HTTP_REQUESTS: &str = "http_requests_total";
/// HTTP request latency (histogram, seconds; Bifrost's name).
const HTTP_DURATION: &str = "http_request_duration_seconds";
/// Time spent in the gateway excluding upstream time (histogram, seconds).
const GATEWAY_OVERHEAD: &str = "bifrost_gateway_overhead_seconds";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::SharedState;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use bifrost_core::Bifrost;

    #[test]
    fn millis_print_three_decimals() {
        for (us, text) in [(1_234_567, "1234.567"), (42, "0.042"), (0, "0.000")] {
            let mut s = String::new();
            push_millis(&mut s, Duration::from_micros(us));
            assert_eq!(s, text);
        }
    }

    #[tokio::test]
    #[allow(clippy::panic, reason = "the handler under test panics on purpose")]
    async fn a_panicking_handler_answers_a_json_500() {
        use tower::ServiceExt;
        let cfg = bifrost_core::BifrostConfig::from_json("{}").unwrap();
        let state = AppState::new(SharedState {
            bifrost: Bifrost::builder(cfg).build().unwrap(),
            metrics: None,
            prometheus_labels: Arc::from(Vec::new()),
            metadata: Default::default(),
            apis: Arc::from(Vec::new()),
        });
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(ObserveLayer::new(state.clone(), 1024))
            .with_state(state);
        let req = Request::get("/boom").body(Body::empty()).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.to_string().contains("internal error"), "{v}");
    }
}
