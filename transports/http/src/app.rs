//! The router: routes, shared state and the layers around them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bifrost_core::{ApiRequest, Bifrost, PluginApi, RequestContext};
use bifrost_gateway::metadata::MetadataPolicy;
use hyper::body::Incoming;
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::map_request_body::MapRequestBodyLayer;

use crate::body_timeout::with_read_timeout;
use crate::errors::{Dialect, http_error};
use crate::observe::ObserveLayer;
pub(crate) use crate::observe::{RequestId, UpstreamTime};
use crate::parse::Route;
use crate::surfaces::openai::{Flavor, inference};

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

impl AppState {
    /// The request context for a request (see [`bifrost_gateway::metadata`]).
    pub(crate) fn context(&self, id: &RequestId, headers: &HeaderMap) -> RequestContext {
        self.metadata
            .context(id.0.to_str().unwrap_or_default(), headers)
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
    /// Which inbound headers become request-context fields.
    pub metadata: MetadataPolicy,
    /// The plugins' management APIs, mounted under `/api/<prefix>`.
    pub apis: Arc<[Arc<dyn PluginApi>]>,
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
        .route("/v1/mcp/tool/execute", post(mcp_tool_execute))
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .route(
            "/api/{*rest}",
            get(plugin_api)
                .post(plugin_api)
                .put(plugin_api)
                .delete(plugin_api),
        )
        .merge(crate::surfaces::openai::router())
        .merge(crate::surfaces::anthropic::router())
        .merge(crate::surfaces::genai::router())
        .merge(crate::surfaces::integrations())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(ObserveLayer::new(state.clone(), opts.max_body_bytes))
        .with_state(state);
    ServiceBuilder::new()
        .layer(cors(&opts.allowed_origins))
        .layer(DefaultBodyLimit::max(opts.max_body_bytes))
        .layer(MapRequestBodyLayer::new(|b: Incoming| {
            with_read_timeout(Body::new(b), BODY_READ_TIMEOUT)
        }))
        .service(routes)
}

/// CORS for browsers calling the gateway.
///
/// An origin is allowed when `allowed` names it, when `allowed` holds `*`, or when it is a
/// local origin ([`is_localhost`]). An allowed origin is mirrored in
/// `Access-Control-Allow-Origin` (with `Vary: Origin`).
///
/// `Access-Control-Allow-Credentials: true` is sent only to origins listed by name and to
/// local origins. An origin allowed only through `*` is mirrored *without* credentials: it
/// gets what a literal `*` grants (the browser may read answers to requests made without
/// cookies or HTTP auth), never the credentialed wildcard that would let any web page make
/// authenticated requests with a visitor's credentials and read the answers.
fn cors(allowed: &[String]) -> CorsLayer {
    let any = allowed.iter().any(|o| o.trim() == "*");
    let named: Arc<[String]> = allowed
        .iter()
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty() && o != "*")
        .collect();
    let trusted = move |origin: &HeaderValue| {
        origin
            .to_str()
            .is_ok_and(|o| is_localhost(o) || named.iter().any(|a| a.eq_ignore_ascii_case(o)))
    };
    let credentials = trusted.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            any || trusted(origin)
        }))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(AllowCredentials::predicate(
            move |origin: &HeaderValue, _| credentials(origin),
        ))
        .max_age(Duration::from_secs(86400))
}

/// Whether `origin` (an `Origin` header: `scheme://host[:port]`) is a page served from this
/// machine: scheme `http` or `https`, host exactly `localhost`, `127.0.0.1` or `[::1]`, an
/// optional numeric port, and nothing else (no path, no user info). Look-alikes such as
/// `http://localhost.evil.com`, `http://localhost@evil.com` or `http://[::ffff:127.0.0.1]`
/// are not local.
fn is_localhost(origin: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    let (host, port) = if authority.starts_with('[') {
        match authority.split_once(']') {
            Some((inside, rest)) => (&authority[..=inside.len()], rest),
            None => return false,
        }
    } else {
        match authority.find(':') {
            Some(i) => authority.split_at(i),
            None => (authority, ""),
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    port_ok && (host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1" || host == "[::1]")
}

/// What an inference handler takes of its request: the id `observe` gave it, the headers
/// (moved out; the `HeaderMap` extractor clones them) and the body, read within the body
/// limit.
pub(crate) struct Inbound {
    pub(crate) id: RequestId,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Result<Bytes, BytesRejection>,
}

impl<S: Send + Sync> FromRequest<S> for Inbound {
    type Rejection = Infallible;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Infallible> {
        let id = req
            .extensions_mut()
            .remove::<RequestId>()
            .unwrap_or_else(|| RequestId(HeaderValue::from_static("unknown")));
        let headers = std::mem::take(req.headers_mut());
        let body = Bytes::from_request(req, state).await;
        Ok(Self { id, headers, body })
    }
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

async fn chat_completions(State(st): State<AppState>, inbound: Inbound) -> Response {
    inference(st, inbound, Route::Chat, Flavor::Native).await
}

async fn text_completions(State(st): State<AppState>, inbound: Inbound) -> Response {
    inference(st, inbound, Route::Text, Flavor::Native).await
}

async fn embeddings(State(st): State<AppState>, inbound: Inbound) -> Response {
    inference(st, inbound, Route::Embedding, Flavor::Native).await
}

async fn list_models(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let ctx = st.context(&id, &headers);
    axum::Json(st.bifrost.list_models(&ctx).await).into_response()
}

/// `/api/<prefix>/…`: the management API of the plugin that offers `<prefix>` (e.g. request
/// logs), JSON in and out, errors in Bifrost's shape.
async fn plugin_api(
    State(st): State<AppState>,
    axum::extract::Path(rest): axum::extract::Path<String>,
    method: Method,
    query: Result<
        axum::extract::Query<Vec<(String, String)>>,
        axum::extract::rejection::QueryRejection,
    >,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (prefix, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest.as_str(), ""),
    };
    let Some(api) = st.apis.iter().find(|a| a.prefix() == prefix) else {
        return http_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no plugin offers /api/{prefix} (enable the plugin that does)"),
        );
    };
    let query = match query {
        Ok(q) => q.0,
        Err(e) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                e.body_text(),
            );
        }
    };
    let body = match body_or_error_in(Dialect::Bifrost, body) {
        Ok(b) if b.is_empty() => None,
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(v) => Some(v),
            Err(e) => {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    format!("invalid JSON body: {e}"),
                );
            }
        },
        Err(resp) => return resp,
    };
    let req = ApiRequest {
        method,
        path: path.to_owned(),
        query,
        body,
    };
    match api.call(req).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => Dialect::Bifrost.error_response(&e),
    }
}

/// `POST /v1/mcp/tool/execute` (Bifrost's path): the MCP plugin's `/api/mcp/tool/execute`.
async fn mcp_tool_execute(
    st: State<AppState>,
    method: Method,
    query: Result<
        axum::extract::Query<Vec<(String, String)>>,
        axum::extract::rejection::QueryRejection,
    >,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let path = axum::extract::Path("mcp/tool/execute".to_owned());
    plugin_api(st, path, method, query, body).await
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
mod cors_tests {
    use std::convert::Infallible;

    use axum::body::Body;
    use axum::http::{HeaderValue, Request, Response, header};
    use tower::{Layer, ServiceExt, service_fn};

    use super::{cors, is_localhost};

    #[test]
    fn local_origins_are_exact_hosts() {
        for ok in [
            "http://localhost",
            "http://localhost:3000",
            "https://localhost:8443",
            "http://127.0.0.1",
            "http://127.0.0.1:5173",
            "http://[::1]",
            "http://[::1]:8080",
            "HTTP://LOCALHOST:3000",
        ] {
            assert!(is_localhost(ok), "{ok} should be local");
        }
        for bad in [
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com:3000",
            "http://[::ffff:127.0.0.1]",
            "http://[::ffff:7f00:1]:8080",
            "http://[::1].evil.com",
            "http://[::1",
            "http://localhost@evil.com",
            "http://user@localhost",
            "http://evil.com@localhost",
            "http://localhost:80@evil.com",
            "http://localhost:",
            "http://localhost:abc",
            "http://localhost:3000/path",
            "http://localhost/",
            "http://0.0.0.0",
            "http://[",
            "ftp://localhost",
            "file://localhost",
            "null",
            "localhost",
            "http://evil.com",
            "http://127.0.0.2",
            "http://localhost\u{0}.evil.com",
        ] {
            assert!(!is_localhost(bad), "{bad} must not be local");
        }
    }

    /// Sends a request with `origin` (a preflight when `preflight`) through the CORS layer
    /// built from `allowed`, and returns the allow-origin and allow-credentials headers.
    async fn cors_headers(
        allowed: &[&str],
        origin: &str,
        preflight: bool,
    ) -> (Option<String>, Option<String>) {
        let allowed: Vec<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
        let svc = cors(&allowed).layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }));
        let mut req = Request::builder()
            .uri("/v1/chat/completions")
            .header(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        req = if preflight {
            req.method("OPTIONS")
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
        } else {
            req.method("POST")
        };
        let resp = svc.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let get = |name| {
            resp.headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
        };
        (
            get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
        )
    }

    #[tokio::test]
    async fn wildcard_never_comes_with_credentials() {
        for preflight in [false, true] {
            let (origin, creds) = cors_headers(&["*"], "https://any.example", preflight).await;
            assert_eq!(origin.as_deref(), Some("https://any.example"));
            assert_eq!(creds, None, "preflight={preflight}");
            // A look-alike of localhost is only a wildcard origin: no credentials either.
            let (origin, creds) =
                cors_headers(&["*"], "http://[::ffff:127.0.0.1]", preflight).await;
            assert_eq!(origin.as_deref(), Some("http://[::ffff:127.0.0.1]"));
            assert_eq!(creds, None);
            // Named and local origins keep credentials next to `*`.
            let (origin, creds) = cors_headers(
                &["*", "https://app.example/"],
                "https://app.example",
                preflight,
            )
            .await;
            assert_eq!(origin.as_deref(), Some("https://app.example"));
            assert_eq!(creds.as_deref(), Some("true"));
            let (_, creds) = cors_headers(&["*"], "http://localhost:3000", preflight).await;
            assert_eq!(creds.as_deref(), Some("true"));
        }
    }

    #[tokio::test]
    async fn named_and_local_origins_only_without_wildcard() {
        let allowed = ["https://app.example"];
        let (origin, creds) = cors_headers(&allowed, "https://app.example", false).await;
        assert_eq!(origin.as_deref(), Some("https://app.example"));
        assert_eq!(creds.as_deref(), Some("true"));
        let (origin, creds) = cors_headers(&allowed, "http://127.0.0.1:5173", true).await;
        assert_eq!(origin.as_deref(), Some("http://127.0.0.1:5173"));
        assert_eq!(creds.as_deref(), Some("true"));
        for evil in [
            "https://evil.example",
            "http://localhost.evil.com",
            "http://127.0.0.1.evil.com",
            "http://[::ffff:127.0.0.1]",
            "http://localhost@evil.com",
            "https://app.example.evil.com",
        ] {
            for preflight in [false, true] {
                let (origin, creds) = cors_headers(&allowed, evil, preflight).await;
                assert_eq!(origin, None, "{evil} must not be allowed");
                assert_eq!(creds, None, "{evil} must not get credentials");
            }
        }
    }
}
