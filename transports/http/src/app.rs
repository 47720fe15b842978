//! The router: routes, shared state and the layers around them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bifrost_core::{Bifrost, RequestContext};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::errors::{error_response, http_error};
use crate::parse::{Route, parse};
use crate::sse::sse_response;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
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
pub struct RouterOptions {
    /// Largest accepted body in bytes.
    pub max_body_bytes: usize,
    /// CORS origins (`*` = any); localhost origins are always allowed.
    pub allowed_origins: Vec<String>,
}

/// Builds the router with every route and layer.
pub fn router(state: AppState, opts: RouterOptions) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/text/completions", post(text_completions))
        .route("/v1/completions", post(text_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(list_models))
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT))
        .layer(middleware::from_fn_with_state(
            opts.max_body_bytes,
            reject_oversized,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(cors(&opts.allowed_origins))
        .layer(CatchPanicLayer::custom(|_| {
            http_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
            )
        }))
        .with_state(state)
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

/// Answers 413 from the `Content-Length` header alone, before reading a byte of an
/// oversized body (the body limit layer would only notice after reading it).
async fn reject_oversized(State(max): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!(
                "request body of {len} bytes exceeds the limit of {max} bytes (client.max_request_body_size_mb)"
            ),
        ),
        _ => next.run(req).await,
    }
}

/// The request id (the caller's `x-request-id` or a new one), available to handlers.
#[derive(Clone)]
struct RequestId(Arc<str>);

/// Request id, HTTP metrics and one debug log line per request.
async fn observe(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id: Arc<str> = match req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if !v.is_empty() && v.len() <= 128 => Arc::from(v),
        _ => Arc::from(format!(
            "{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        )),
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let custom: Vec<metrics::Label> = st
        .prometheus_labels
        .iter()
        .map(|l| {
            let v = req
                .headers()
                .get(format!("x-bf-prom-{l}"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            metrics::Label::new(l.clone(), v.to_owned())
        })
        .collect();
    req.extensions_mut().insert(RequestId(Arc::clone(&id)));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16().to_string();
    if path != "/metrics" {
        let mut labels = vec![
            metrics::Label::new("path", path.clone()),
            metrics::Label::new("method", method.clone()),
            metrics::Label::new("status", status),
        ];
        labels.extend(custom);
        metrics::histogram!("http_request_duration_seconds", labels.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("http_requests_total", labels).increment(1);
    }
    tracing::debug!(request_id = %id, %method, %path, status = resp.status().as_u16(), "request");
    resp
}

/// Builds the request context from the headers Bifrost defines.
fn context(id: &RequestId, headers: &HeaderMap) -> RequestContext {
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
    let mut ctx = RequestContext::new(id.0.as_ref());
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

fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Response> {
    body.map_err(|rej| {
        let status = rej.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request_too_large"
        } else {
            "invalid_request_error"
        };
        http_error(status, kind, rej.body_text())
    })
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
                let (retries, fallback) =
                    (stream.context().retries, stream.context().fallback_index);
                let mut resp = sse_response(stream);
                add_attempt_headers(&mut resp, retries, fallback);
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
        Ok(r) => match serde_json::to_vec(&r) {
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
            resp
        }
    }
}

fn add_attempt_headers(resp: &mut Response, retries: u32, fallback: Option<usize>) {
    if retries > 0 {
        resp.headers_mut()
            .insert("x-bf-retries", HeaderValue::from(retries));
    }
    if let Some(i) = fallback {
        resp.headers_mut()
            .insert("x-bf-fallback-index", HeaderValue::from(i));
    }
}

fn log_error(ctx: &RequestContext, e: &bifrost_core::schemas::BifrostError) {
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
    http_error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("route not found: {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> Response {
    http_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}
