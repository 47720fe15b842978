//! Startup: configuration, plugins, metrics, listener, graceful shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use bifrost_gateway::metadata::MetadataPolicy;
use bifrost_gateway::plugins::PluginRegistry;
use bifrost_gateway::startup::{build_engine, load_config};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::app::{AppState, RouterOptions, SharedState, router};
use crate::workers;
use bifrost_gateway::cli::Cli;

/// How long `-healthcheck` waits for the connection and for the answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long in-flight requests get to finish after SIGTERM/ctrl-c.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Latency buckets (seconds) for every `*_seconds` histogram: 100 µs to 90 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 90.0,
];

/// Installs the Prometheus recorder (once per process) and keeps its histograms drained.
fn install_metrics() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("seconds".into()), BUCKETS)
        .ok()?
        .install_recorder()
        .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
        .ok()?;
    // Registered now so the series is on `/metrics` before the first line is dropped.
    crate::logging::record_dropped();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}

/// `-healthcheck`: `GET /health` from the gateway this machine serves at the host and port
/// `cli` selects (a wildcard bind address is probed on loopback); `Ok` on a 200 answer.
/// Plain blocking I/O, so it needs no runtime and no curl in the container image.
pub fn healthcheck(cli: &Cli) -> anyhow::Result<()> {
    let host = match cli.host.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        h => h,
    };
    let addrs: Vec<SocketAddr> = (host, cli.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .collect();
    let mut last = anyhow::anyhow!("{host} resolves to no address");
    for addr in addrs {
        match probe(addr) {
            Ok(()) => return Ok(()),
            Err(e) => last = e.context(format!("GET http://{addr}/health")),
        }
    }
    Err(last)
}

/// One `GET /health` over HTTP/1.1 to `addr`; `Ok` when the status line says 200.
fn probe(addr: SocketAddr) -> anyhow::Result<()> {
    let mut conn = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    conn.set_read_timeout(Some(PROBE_TIMEOUT))?;
    conn.set_write_timeout(Some(PROBE_TIMEOUT))?;
    conn.write_all(
        format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 64];
    while !head.contains(&b'\n') && head.len() < 256 {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status_line = line.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1);
    anyhow::ensure!(
        status_line.starts_with("HTTP/1.") && status == Some("200"),
        "unhealthy answer: {status_line:?}"
    );
    Ok(())
}

/// Connections the kernel may hold completed but not yet accepted (capped by
/// `net.core.somaxconn`, 4096 on current kernels). Tokio's default of 1024 overflows when
/// a burst of clients connects at once, and an overflowing queue drops SYNs: each dropped
/// client waits for its 1 s SYN retransmit.
const LISTEN_BACKLOG: u32 = 65_535;

/// Binds `host:port` (the first address that binds) with a deep accept queue.
async fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host resolves to no address",
        )
    }))
}

/// Runs the gateway until SIGTERM/ctrl-c, then drains in-flight requests.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = load_config(&cli)?;
    // Before anything registers a metric handle, so those handles record.
    let metrics = install_metrics();
    let bifrost = build_engine(&cfg, &PluginRegistry::builtin())?;
    let state = AppState::new(SharedState {
        bifrost: bifrost.clone(),
        metrics,
        prometheus_labels: cfg.client.prometheus_labels.clone().into(),
        metadata: MetadataPolicy::for_engine(&bifrost, "http"),
        apis: bifrost.plugins().iter().filter_map(|p| p.api()).collect(),
    });
    let opts = RouterOptions {
        max_body_bytes: cfg
            .client
            .max_request_body_size_mb
            .saturating_mul(1024 * 1024),
        allowed_origins: cfg.client.allowed_origins.clone(),
    };
    // One router per worker: their internals are reference counted too.
    let make_app = move || router(state.for_worker(), opts.clone());
    let listener = listen(&cli.host, cli.port)
        .await
        .with_context(|| format!("binding {}:{}", cli.host, cli.port))?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "bifrost-http listening on http://{addr}");
    let workers = cli
        .workers
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    tracing::info!(workers, spin_us = cli.spin_us, "starting workers");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = workers::start(
        listener,
        make_app,
        workers,
        Duration::from_micros(cli.spin_us),
        stop_rx,
    )?;
    let grpc = start_grpc(&cli, &cfg, &bifrost, workers, stop_tx.subscribe()).await?;
    bifrost_gateway::signals::shutdown_signal().await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop_tx.send(true);
    // HTTP and gRPC drain side by side (both saw the stop signal), within one deadline.
    let drained = async {
        let grpc = async {
            if let Some(grpc) = grpc {
                let _ = tokio::task::spawn_blocking(move || grpc.join()).await;
            }
        };
        tokio::join!(running.join(), grpc)
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!("drain timeout reached; closing remaining connections");
    }
    bifrost.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The gRPC transport on `grpc.port` (or `-grpc-port`), when one is set: `threads` threads,
/// each with its own runtime and upstream pools like the HTTP workers, on the same engine and
/// plugins as HTTP. Stops when `stop` turns true.
#[cfg(feature = "grpc")]
async fn start_grpc(
    cli: &Cli,
    cfg: &bifrost_core::BifrostConfig,
    bifrost: &bifrost_core::Bifrost,
    threads: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<bifrost_transport_grpc::Workers>> {
    let Some(port) = cfg.grpc.port else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind((cli.host.as_str(), port))
        .with_context(|| format!("binding the gRPC port {}:{port}", cli.host))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "bifrost-http serving gRPC on http://{addr} (h2c)");
    let workers =
        bifrost_transport_grpc::spawn_workers(bifrost, listener, &cfg.grpc, threads, stop)?;
    Ok(Some(workers))
}

/// Stands in for the gRPC workers in a build without them.
#[cfg(not(feature = "grpc"))]
struct NoGrpc;

#[cfg(not(feature = "grpc"))]
impl NoGrpc {
    fn join(self) {}
}

/// Without the `grpc` feature a configured gRPC port is refused rather than ignored.
#[cfg(not(feature = "grpc"))]
async fn start_grpc(
    _cli: &Cli,
    cfg: &bifrost_core::BifrostConfig,
    _bifrost: &bifrost_core::Bifrost,
    _threads: usize,
    _stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<NoGrpc>> {
    anyhow::ensure!(
        cfg.grpc.port.is_none(),
        "grpc.port is set but this build has no gRPC transport (feature `grpc`)"
    );
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_connects_fits_the_accept_queue() {
        // Nothing accepts: every connect below completes only if the kernel can queue it.
        // With tokio's default backlog (128) the rest would wait for a SYN retransmit.
        let listener = listen("127.0.0.1", 0).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = tokio::task::spawn_blocking(move || {
            (0..600)
                .map(|_| std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
        assert_eq!(conns.unwrap().len(), 600);
        drop(listener);
    }
}
