//! `bifrost-grpc`: the gateway's gRPC transport on its own. The same flags, config, engine
//! and plugins as `bifrost-http`; serves `bifrost.v1.BifrostService` on `-grpc-port`
//! (`grpc.port` in config.json, else 50051) at `-host`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use bifrost_gateway::cli::Cli;
use bifrost_gateway::plugins::PluginRegistry;
use bifrost_gateway::startup::{build_engine, load_config};

/// The port when neither `-grpc-port` nor `grpc.port` sets one (gRPC's customary port).
const DEFAULT_PORT: u16 = 50051;

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse_from_go_style(std::env::args());
    let _log = bifrost_gateway::logging::init(&cli.log_level, &cli.log_style);
    // The control runtime: signals and the health probe. Calls run on the workers' own
    // runtimes (see `spawn_workers`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if cli.healthcheck {
        return Ok(match runtime.block_on(healthcheck(&cli)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("unhealthy: {e:#}");
                ExitCode::FAILURE
            }
        });
    }
    let result = runtime.block_on(run(cli));
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "bifrost-grpc failed");
    }
    result.map(|()| ExitCode::SUCCESS)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = load_config(&cli)?;
    let bifrost = build_engine(&cfg, &PluginRegistry::builtin())?;
    let port = cfg.grpc.port.unwrap_or(DEFAULT_PORT);
    let listener = std::net::TcpListener::bind((cli.host.as_str(), port))
        .with_context(|| format!("binding {}:{port}", cli.host))?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "bifrost-grpc listening on http://{addr} (gRPC, h2c)");
    let threads = cli
        .workers
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1);
    // Thread per core, each with its own runtime and upstream pools, as in `bifrost-http`.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers =
        bifrost_transport_grpc::spawn_workers(&bifrost, listener, &cfg.grpc, threads, stop_rx)?;
    bifrost_gateway::signals::shutdown_signal().await;
    // Each worker drains its calls in flight (at most `serve`'s DRAIN_TIMEOUT) before it ends.
    let _ = stop_tx.send(true);
    let _ = tokio::task::spawn_blocking(move || workers.join()).await;
    bifrost.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// `-healthcheck`: `grpc.health.v1.Health/Check` for the Bifrost service at the local
/// address the flags select; `Ok` when it answers `SERVING`.
async fn healthcheck(cli: &Cli) -> anyhow::Result<()> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let cfg = load_config(cli)?;
    let host = match cli.host.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" | "localhost" => "127.0.0.1".to_owned(),
        "::" => "[::1]".to_owned(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_owned(),
    };
    let url = format!("http://{host}:{}", cfg.grpc.port.unwrap_or(DEFAULT_PORT));
    let probe = async {
        let channel = tonic::transport::Endpoint::from_shared(url.clone())?
            .connect()
            .await?;
        let resp = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: bifrost_transport_grpc::pb::SERVICE_NAME.to_owned(),
            })
            .await?;
        anyhow::ensure!(
            resp.get_ref().status == ServingStatus::Serving as i32,
            "status {}",
            resp.get_ref().status
        );
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(3), probe)
        .await
        .with_context(|| format!("no answer from {url} within 3 s"))?
        .with_context(|| format!("health check of {url}"))
}
