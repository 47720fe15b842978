//! `bifrost-http`: the gateway binary. Parses flags, sets up logging, runs the server.

use std::process::ExitCode;

use bifrost_transport_http::cli::Cli;
use bifrost_transport_http::{logging, server};

/// mimalloc instead of the system allocator: a request allocates a few hundred small
/// objects, and glibc's malloc/free were a fifth of the gateway's instructions in profiles.
/// The `system-alloc` feature keeps the system allocator, for heap profilers that hook it.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Raises the open-file soft limit to the hard limit, as Go's runtime does for Bifrost: every
/// request in flight holds a client and an upstream socket, and common soft limits (1024)
/// would make `accept` fail at a few hundred concurrent requests.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse_from_go_style(std::env::args());
    if cli.healthcheck {
        // The container's HEALTHCHECK: no logging, no runtime; one line and exit status 0 or 1.
        return Ok(match server::healthcheck(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e:#}");
                ExitCode::FAILURE
            }
        });
    }
    let _log = logging::init(&cli.log_level, &cli.log_style);
    raise_open_file_limit();
    // The control runtime: signals, the acceptor, metrics upkeep. Requests run on the
    // workers' own runtimes (see `workers`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(server::run(cli));
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "bifrost-http failed");
    }
    result.map(|()| ExitCode::SUCCESS)
}
