//! `mock-upstream`: runs the fake OpenAI-compatible provider as a process.
//!
//! Prints `mock-upstream listening on http://HOST:PORT` once bound (so scripts
//! can pass `--port 0` and parse the port), then serves until SIGTERM/ctrl-c.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use bifrost_mock_upstream::{MockConfig, MockState, serve};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "mock-upstream",
    about = "Fake OpenAI-compatible provider with fault injection"
)]
struct Args {
    /// Interface to bind.
    #[arg(long, env = "MOCK_UPSTREAM_HOST", default_value = "127.0.0.1")]
    host: String,
    /// Port to bind; 0 picks a free one.
    #[arg(long, env = "MOCK_UPSTREAM_PORT", default_value_t = 0)]
    port: u16,
    /// Latency added before the headers of every inference response.
    #[arg(long, env = "MOCK_UPSTREAM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Record requests for `GET /_mock/requests` (tests; off for benchmarks).
    #[arg(long)]
    capture: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = tokio::net::lookup_host((args.host.as_str(), args.port))
        .await?
        .next()
        .with_context(|| format!("{} resolves to no address", args.host))?;
    let listener = bifrost_mock_upstream::listen(addr)
        .with_context(|| format!("binding {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let state = MockState::new(MockConfig {
        latency: Duration::from_millis(args.latency_ms),
        capture_requests: args.capture,
    });

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "mock-upstream listening on http://{addr}")?;
    stdout.flush()?;
    drop(stdout);

    // Exit promptly on a signal instead of waiting for open streams to drain.
    tokio::select! {
        served = serve(listener, state, std::future::pending()) => served?,
        () = shutdown_signal() => {}
    }
    Ok(())
}

/// Resolves on ctrl-c, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
