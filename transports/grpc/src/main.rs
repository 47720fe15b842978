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
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.workers.filter(|n| *n > 0) {
        runtime.worker_threads(n);
    }
    let runtime = runtime.enable_all().build()?;
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
    let listener = tokio::net::TcpListener::bind((cli.host.as_str(), port))
        .await
        .with_context(|| format!("binding {}:{port}", cli.host))?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(%addr, "bifrost-grpc listening on http://{addr} (gRPC, h2c)");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bifrost_transport_grpc::serve(
        bifrost.clone(),
        listener,
        cfg.grpc.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => res??,
        () = bifrost_gateway::signals::shutdown_signal() => {
            // `serve` drains calls in flight (at most its DRAIN_TIMEOUT) before returning.
            let _ = stop_tx.send(());
            server.await??;
        }
    }
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
