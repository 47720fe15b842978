//! The router: routes, shared state and the layers around them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bifrost_core::telemetry::{LocalSeries, interned_label, status_label, with_local};
use bifrost_core::{Bifrost, RequestContext};
use futures::FutureExt;
use hyper::body::Incoming;
use metrics::{Label, SharedString};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::map_request_body::MapRequestBodyLayer;

use crate::body_timeout::with_read_timeout;
use crate::errors::{Dialect, error_response, http_error};
use crate::parse::{Route, parse};
use crate::sse::sse_response;

/// What every handler shares: one `Arc` per worker's router, so the per-request clone axum
/// makes touches a reference count no other core writes (shared counts bounced a cache line
/// between cores on every request).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    /// Wraps `shared`; give each worker its own (see [`AppState::for_worker`]).
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }

    /// A copy with its own reference count, for another worker's router.
    pub fn for_worker(&self) -> Self {
        Self::new(self.0.as_ref().clone())
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The engine and the metrics renderer, behind [`AppState`].
#[derive(Clone)]
pub struct SharedState {
    /// The engine.
    pub bifrost: Bifrost,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Custom Prometheus label names (from `-prometheus-labels` / `client.prometheus_labels`).
    pub prometheus_labels: Arc<[String]>,
}

/// Longest time a client may take to send its request body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings for the router that come from the config's `client` block.
#[derive(Debug, Clone)]
pub struct RouterOptions {
    /// Largest accepted body in bytes.
    pub max_body_bytes: usize,
    /// CORS origins (`*` = any); localhost origins are always allowed.
    pub allowed_origins: Vec<String>,
}

/// Builds the service a worker serves: every route, and the layers every request passes.
///
/// Only `observe` is a router layer (it labels requests by their matched route, which exists
/// only inside the router); the others wrap the router once. `Router::layer` wraps every route
/// in the layer and boxes the result, which cost each request one boxed future and one
/// service clone per layer.
pub fn router(state: AppState, opts: RouterOptions) -> impl crate::workers::App {
    let routes = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/text/completions", post(text_completions))
        .route("/v1/completions", post(text_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(list_models))
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .merge(crate::surfaces::openai::router())
        .merge(crate::surfaces::anthropic::router())
        .merge(crate::surfaces::genai::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            (state.clone(), opts.max_body_bytes),
            observe,
        ))
        .with_state(state);
    ServiceBuilder::new()
        .layer(cors(&opts.allowed_origins))
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(MapRequestBodyLayer::new(|b: Incoming| {
            with_read_timeout(Body::new(b), BODY_READ_TIMEOUT)
        }))
        .service(routes)
}

fn cors(allowed: &[String]) -> CorsLayer {
    let any = allowed.iter().any(|o| o == "*");
    let allowed: Arc<[String]> = allowed
        .iter()
        .map(|o| o.trim_end_matches('/').to_owned())
        .collect();
    let origin = AllowOrigin::predicate(move |origin: &HeaderValue, _| {
        let Ok(o) = origin.to_str() else { return false };
        any || is_localhost(o) || allowed.iter().any(|a| a == o)
    });
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .max_age(Duration::from_secs(86400))
}

fn is_localhost(origin: &str) -> bool {
    let host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    matches!(host, "localhost" | "127.0.0.1" | "[" | "0.0.0.0") || origin.contains("://[::1]")
}

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

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_OVERHEAD: HeaderName = HeaderName::from_static("x-bifrost-overhead-us");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

fn request_id(headers: &HeaderMap) -> HeaderValue {
    match headers.get(&X_REQUEST_ID) {
        Some(v) if !v.is_empty() && v.len() <= 128 && v.to_str().is_ok() => v.clone(),
        _ => {
            let mut buf = [0u8; 32];
            let n = fastrand::u128(..);
            for (i, b) in buf.iter_mut().enumerate() {
                let nibble = ((n >> (124 - 4 * i)) & 0xf) as u8;
                *b = if nibble < 10 {
                    b'0' + nibble
                } else {
                    b'a' + nibble - 10
                };
            }
            HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("0"))
        }
    }
}

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

/// Request id, HTTP metrics, the gateway-overhead header and one debug log line per request.
///
/// Overhead = time from the request reaching this layer until the response (for streams:
/// its headers) is ready, minus the time spent waiting on providers (`UpstreamTime`).
///
/// It also answers an oversized request (by its `Content-Length`) with 413 before the body is
/// read: one middleware instead of two, since each costs a boxed future per request.
async fn observe(
    State((st, max_body)): State<(AppState, usize)>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let _in_flight = crate::spin::InFlight::start();
    let id = request_id(req.headers());
    // The router is per worker, so this clone touches a worker-local count.
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let custom: Vec<Label> = st
        .prometheus_labels
        .iter()
        .map(|l| {
            let v = req
                .headers()
                .get(format!("x-bf-prom-{l}"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Label::new(l.clone(), v.to_owned())
        })
        .collect();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = match oversized(&req, max_body) {
        Some(refused) => refused,
        // A panicking handler answers a JSON 500; the connection and the process stay up.
        None => match AssertUnwindSafe(next.run(req)).catch_unwind().await {
            Ok(resp) => resp,
            Err(_) => http_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            ),
        },
    };
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
            Label::new("path", interned_label(path)),
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
/// recorder per request showed up in profiles. Bounded: routes are interned (bounded) and
/// statuses are few.
struct HttpSeries {
    requests: metrics::Counter,
    duration: metrics::Histogram,
    overhead: metrics::Histogram,
}

fn http_series(path: &str, method: &'static str, status: u16) -> Arc<HttpSeries> {
    type Key = (SharedString, &'static str, u16);
    static CACHE: OnceLock<RwLock<HashMap<Key, Arc<HttpSeries>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RwLock::new(HashMap::new()));
    let path = interned_label(path);
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
    static LOCAL_HTTP: LocalSeries<(&'static str, u16), HttpSeries> =
        RefCell::new(HashMap::new());
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

/// Builds the request context from the headers Bifrost defines.
pub(crate) fn context(id: &RequestId, headers: &HeaderMap) -> RequestContext {
    const DENY: &[&str] = &[
        "proxy-authorization",
        "cookie",
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "x-api-key",
        "x-goog-api-key",
        "x-bf-api-key",
        "x-bf-api-key-id",
        "x-bf-vk",
        "authorization",
    ];
    let mut ctx = RequestContext::new(id.0.to_str().unwrap_or_default());
    for (name, value) in headers {
        if let Some(fwd) = name.as_str().strip_prefix("x-bf-eh-")
            && !DENY.contains(&fwd)
            && let Ok(v) = value.to_str()
        {
            ctx.extra_headers.push((fwd.to_owned(), v.to_owned()));
        }
    }
    if let Some(v) = headers
        .get("x-bf-send-back-raw-response")
        .and_then(|v| v.to_str().ok())
    {
        ctx.send_back_raw_response = Some(v.eq_ignore_ascii_case("true"));
    }
    ctx
}

/// The request body, or the error response (in `dialect`) for a body that could not be read.
pub(crate) fn body_or_error_in(
    dialect: Dialect,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Response> {
    body.map_err(|rej| {
        let status = rej.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request_too_large"
        } else {
            "invalid_request_error"
        };
        dialect.http_error(status, kind, rej.body_text())
    })
}

fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Response> {
    body_or_error_in(Dialect::Bifrost, body)
}

async fn inference(
    st: AppState,
    id: RequestId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    route: Route,
) -> Response {
    let body = match body_or_error(body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let parsed = match parse(&body, route) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    drop(body);
    let mut ctx = context(&id, &headers);
    ctx.wire_body = true;
    if parsed.stream {
        if route != Route::Chat {
            return error_response(&bifrost_core::schemas::BifrostError::invalid_param(
                "stream",
                "streaming is supported for chat completions only",
            ));
        }
        return match st
            .bifrost
            .chat_completion_stream(&mut ctx, parsed.request)
            .await
        {
            Ok(stream) => {
                let c = stream.context();
                let (retries, fallback, upstream) = (c.retries, c.fallback_index, c.upstream_time);
                let mut resp = sse_response(stream);
                add_attempt_headers(&mut resp, retries, fallback);
                resp.extensions_mut().insert(UpstreamTime(upstream));
                resp
            }
            Err(e) => {
                log_error(&ctx, &e);
                error_response(&e)
            }
        };
    }
    let result = match route {
        Route::Chat => st.bifrost.chat_completion(&mut ctx, parsed.request).await,
        Route::Text => st.bifrost.text_completion(&mut ctx, parsed.request).await,
        Route::Embedding => st.bifrost.embedding(&mut ctx, parsed.request).await,
    };
    match result {
        Ok(r) => match r.to_openai_json() {
            Ok(json) => {
                let mut resp = (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    json,
                )
                    .into_response();
                add_attempt_headers(&mut resp, ctx.retries, ctx.fallback_index);
                resp.extensions_mut()
                    .insert(UpstreamTime(ctx.upstream_time));
                resp
            }
            Err(e) => http_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                format!("cannot encode response: {e}"),
            ),
        },
        Err(e) => {
            log_error(&ctx, &e);
            let mut resp = error_response(&e);
            add_attempt_headers(&mut resp, ctx.retries, None);
            resp.extensions_mut()
                .insert(UpstreamTime(ctx.upstream_time));
            resp
        }
    }
}

/// Adds `x-bf-retries` / `x-bf-fallback-index` when a retry or fallback happened.
pub(crate) fn add_attempt_headers(resp: &mut Response, retries: u32, fallback: Option<usize>) {
    if retries > 0 {
        resp.headers_mut()
            .insert("x-bf-retries", HeaderValue::from(retries));
    }
    if let Some(i) = fallback {
        resp.headers_mut()
            .insert("x-bf-fallback-index", HeaderValue::from(i));
    }
}

/// Logs a failed request: a warning for the gateway's and providers' 5xx, debug otherwise.
pub(crate) fn log_error(ctx: &RequestContext, e: &bifrost_core::schemas::BifrostError) {
    let status = e.http_status();
    if status >= 500 {
        tracing::warn!(request_id = %ctx.request_id, status, error = %e, "request failed");
    } else {
        tracing::debug!(request_id = %ctx.request_id, status, error = %e, "request rejected");
    }
}

async fn chat_completions(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    inference(st, id, headers, body, Route::Chat).await
}

async fn text_completions(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    inference(st, id, headers, body, Route::Text).await
}

async fn embeddings(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    inference(st, id, headers, body, Route::Embedding).await
}

async fn list_models(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let ctx = context(&id, &headers);
    axum::Json(st.bifrost.list_models(&ctx).await).into_response()
}

async fn health() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn render_metrics(State(st): State<AppState>) -> Response {
    crate::logging::record_dropped();
    match &st.metrics {
        Some(h) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            )],
            h.render(),
        )
            .into_response(),
        None => http_error(StatusCode::NOT_FOUND, "not_found", "metrics are disabled"),
    }
}

async fn not_found(req: Request) -> Response {
    Dialect::for_path(req.uri().path()).http_error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("route not found: {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> Response {
    Dialect::for_path(req.uri().path()).http_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        });
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(middleware::from_fn_with_state(
                (state.clone(), 1024),
                observe,
            ))
            .with_state(state);
        let req = Request::get("/boom").body(Body::empty()).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.to_string().contains("internal error"), "{v}");
    }
}
