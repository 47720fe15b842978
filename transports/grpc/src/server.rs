//! The gRPC server: h2c on a bound listener, with keep-alive pings, the message size limit,
//! `grpc.health.v1` health, server reflection and graceful shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bifrost_core::Bifrost;
use bifrost_core::config::GrpcConfig;
use bifrost_core::schemas::BifrostError;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::pb::bifrost_service_server::BifrostServiceServer;
use crate::service::{Arrival, GrpcGateway, error_status};

/// Why the gRPC server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The reflection service rejected the embedded descriptor set (a build defect).
    #[error("building the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server failed while serving.
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// One MiB.
const MIB: usize = 1024 * 1024;

/// How long calls in flight get to finish after shutdown begins, by default.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `bifrost.v1.BifrostService` (plus health and reflection) on `listener` until
/// `shutdown` resolves, then stops accepting, lets calls in flight finish (at most
/// [`DRAIN_TIMEOUT`]) and returns.
///
/// Takes an engine that is already built (so `bifrost-http` serves gRPC from the same
/// engine, plugins and queues as HTTP) and a bound listener (so callers choose the address,
/// tests bind `127.0.0.1:0`). Health reports `SERVING` for the service and for the server
/// (`""`) until shutdown begins, then `NOT_SERVING`.
pub async fn serve<F>(
    bifrost: Bifrost,
    listener: TcpListener,
    config: GrpcConfig,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    serve_with_drain(bifrost, listener, config, shutdown, DRAIN_TIMEOUT).await
}

/// [`serve`] with a chosen drain limit. The limit matters because some calls never end by
/// themselves (a load balancer's `Health/Watch` stream, a stream whose client stopped
/// reading) and would otherwise hold the return forever. Past it this returns while such
/// calls are still open; they end when the process exits, which the binaries do right
/// after.
pub async fn serve_with_drain<F>(
    bifrost: Bifrost,
    listener: TcpListener,
    config: GrpcConfig,
    shutdown: F,
    drain: Duration,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    let limit = config.max_message_size_mb.max(1).saturating_mul(MIB);
    let labels: Arc<[String]> = bifrost.client_config().prometheus_labels.clone().into();
    let bifrost_service =
        BifrostServiceServer::new(GrpcGateway::new(bifrost, config.max_message_size_mb))
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<BifrostServiceServer<GrpcGateway>>()
        .await;
    health.set_service_status("", ServingStatus::Serving).await;

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let size_mb = config.max_message_size_mb.max(1);
    let (began_tx, began_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_not_serving::<BifrostServiceServer<GrpcGateway>>()
            .await;
        tracing::info!("grpc server shutting down: draining calls in flight");
        let _ = began_tx.send(());
    };
    let server = Server::builder()
        .http2_keepalive_interval(secs(config.keepalive_interval_seconds))
        .http2_keepalive_timeout(secs(config.keepalive_timeout_seconds))
        .layer(tower::layer::layer_fn(move |inner| Edge {
            inner,
            size_mb,
            labels: Arc::clone(&labels),
        }))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(bifrost_service)
        .serve_with_incoming_shutdown(incoming, signal);
    let drained = async {
        match began_rx.await {
            Ok(()) => tokio::time::sleep(drain).await,
            // The server ended on its own; its own result wins the race below.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        res = server => res?,
        () = drained => {
            tracing::warn!(drain_ms = drain.as_millis() as u64, "grpc drain limit reached; returning with calls still open");
        }
    }
    Ok(())
}

/// gRPC served thread per core, like `bifrost-http`'s workers: each of `threads` threads
/// runs its own single-threaded runtime accepting on a clone of `listener`, with its own
/// upstream pools ([`pin_pools_to_thread`](bifrost_core::providers::pool::pin_pools_to_thread)),
/// so a call never crosses threads (on a shared multi-threaded runtime a call paid for
/// waking sibling threads and moving between them). All stop when `stop` turns `true`.
pub fn spawn_workers(
    bifrost: &Bifrost,
    listener: std::net::TcpListener,
    config: &GrpcConfig,
    threads: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<Workers> {
    listener.set_nonblocking(true)?;
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let listener = listener.try_clone()?;
        let (bifrost, config, mut stop) = (bifrost.clone(), config.clone(), stop.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name(format!("bifrost-grpc-{i}"))
            .spawn(move || {
                bifrost_core::providers::pool::pin_pools_to_thread();
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return tracing::error!(error = %e, "gRPC listener"),
                    };
                    let shutdown = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    if let Err(e) = serve(bifrost, listener, config, shutdown).await {
                        tracing::error!(error = %e, "gRPC worker stopped");
                    }
                });
            })?;
        handles.push(thread);
    }
    Ok(Workers(handles))
}

/// The threads [`spawn_workers`] started.
#[derive(Debug)]
pub struct Workers(Vec<std::thread::JoinHandle<()>>);

impl Workers {
    /// Waits (blocking) until every worker has drained and stopped.
    pub fn join(self) {
        for t in self.0 {
            let _ = t.join();
        }
    }
}

/// The first thing every request meets, inside tonic's own deadline timer:
/// - stamps its [`Arrival`], so the service measures the client's deadline from the same
///   moment tonic does (and answers before tonic's timer, which would say `CANCELLED`);
/// - rewrites tonic's "decoded message length too large" (`OUT_OF_RANGE`, naming no
///   setting) into the unified error for HTTP's 413: `RESOURCE_EXHAUSTED`, as gRPC
///   specifies for an oversized message, naming `grpc.max_message_size_mb`, with details.
///
/// It also records `bifrost_grpc_requests_total` and `bifrost_grpc_request_duration_seconds`
/// by method and the status the call started with (a stream that fails later still counts
/// under the code it started with; the engine's own metrics count its upstream failure),
/// with the custom Prometheus labels from `x-bf-prom-*` metadata, bounded as on HTTP.
#[derive(Clone)]
struct Edge<S> {
    inner: S,
    size_mb: usize,
    labels: Arc<[String]>,
}

/// gRPC calls by method and status code.
pub const GRPC_REQUESTS: &str = "bifrost_grpc_requests_total";
/// Time from a call's arrival to its response headers (unary: the whole answer).
pub const GRPC_DURATION: &str = "bifrost_grpc_request_duration_seconds";

/// The `method` label: the RPC's name for this server's methods, `other` for anything else
/// (a bounded set, whatever path a client sends).
fn method_label(path: &str) -> &'static str {
    const METHODS: &[&str] = &[
        "ChatCompletion",
        "ChatCompletionStream",
        "TextCompletion",
        "Embedding",
        "ListModels",
        "CountTokens",
        "Check",
        "Watch",
        "ServerReflectionInfo",
    ];
    let name = path.rsplit('/').next().unwrap_or_default();
    METHODS
        .iter()
        .copied()
        .find(|m| *m == name)
        .unwrap_or("other")
}

/// The `code` label: the grpc-status of a trailers-only answer, else `OK` (the call started).
fn code_label(headers: &http::HeaderMap) -> &'static str {
    const CODES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .and_then(|c| CODES.get(c).copied())
        .unwrap_or("OK")
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for Edge<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let arrival = Instant::now();
        req.extensions_mut().insert(Arrival(arrival));
        let method = method_label(req.uri().path());
        let custom = if self.labels.is_empty() {
            Vec::new()
        } else {
            bifrost_gateway::metadata::custom_labels(&self.labels, req.headers())
        };
        // A clone shares the value's bytes; nothing is copied unless the rewrite needs it.
        let request_id = req.headers().get("x-request-id").cloned();
        let size_mb = self.size_mb;
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let id = request_id.as_ref().and_then(|v| v.to_str().ok());
            rewrite_too_large(resp.headers_mut(), size_mb, id);
            let mut labels = Vec::with_capacity(2 + custom.len());
            labels.push(metrics::Label::new("method", method));
            labels.push(metrics::Label::new("code", code_label(resp.headers())));
            labels.extend(custom);
            metrics::counter!(GRPC_REQUESTS, labels.iter()).increment(1);
            metrics::histogram!(GRPC_DURATION, labels.iter())
                .record(arrival.elapsed().as_secs_f64());
            Ok(resp)
        })
    }
}

/// The rewrite itself, on a trailers-only response's headers.
fn rewrite_too_large(headers: &mut http::HeaderMap, size_mb: usize, request_id: Option<&str>) {
    let is_too_large = headers.get("grpc-status").is_some_and(|s| s == "11")
        && tonic::Status::from_header_map(headers)
            .is_some_and(|s| s.message().contains("decoded message length too large"));
    if !is_too_large {
        return;
    }
    let mut e = BifrostError::invalid_request(format!(
        "request message larger than the gateway's limit of {size_mb} MiB \
         (grpc.max_message_size_mb in config.json)"
    ));
    e.status_code = Some(413);
    e.error.kind = Some("request_too_large".to_owned());
    let status = error_status(&e, request_id.unwrap_or_default());
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if status.add_header(headers).is_err() {
        tracing::warn!("cannot encode the message-size error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_are_bounded() {
        assert_eq!(
            method_label("/bifrost.v1.BifrostService/ChatCompletion"),
            "ChatCompletion"
        );
        assert_eq!(method_label("/x.Y/Anything"), "other");
        assert_eq!(method_label(""), "other");
        let mut h = http::HeaderMap::new();
        assert_eq!(code_label(&h), "OK");
        h.insert("grpc-status", http::HeaderValue::from_static("8"));
        assert_eq!(code_label(&h), "RESOURCE_EXHAUSTED");
        h.insert("grpc-status", http::HeaderValue::from_static("99"));
        assert_eq!(code_label(&h), "OK");
    }

    #[test]
    fn too_large_is_resource_exhausted_naming_the_setting() {
        let mut h = http::HeaderMap::new();
        tonic::Status::out_of_range(
            "Error, decoded message length too large: found 20 bytes, the limit is: 10 bytes",
        )
        .add_header(&mut h)
        .unwrap();
        rewrite_too_large(&mut h, 16, Some("r1"));
        let s = tonic::Status::from_header_map(&h).unwrap();
        assert_eq!(s.code(), tonic::Code::ResourceExhausted);
        assert!(s.message().contains("grpc.max_message_size_mb"), "{s:?}");
        assert!(!s.details().is_empty());

        let mut other = http::HeaderMap::new();
        tonic::Status::out_of_range("something else")
            .add_header(&mut other)
            .unwrap();
        rewrite_too_large(&mut other, 16, None);
        assert_eq!(
            tonic::Status::from_header_map(&other).unwrap().code(),
            tonic::Code::OutOfRange
        );
    }
}
