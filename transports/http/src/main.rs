//! `bifrost-http`: the gateway binary. Parses flags, sets up logging, runs the server.

use std::process::ExitCode;

use bifrost_transport_http::cli::Cli;
use bifrost_transport_http::{logging, server};

/// mimalloc instead of the system allocator: a request allocates a few hundred small
/// objects, and glibc's malloc/free were a fifth of the gateway's instructions in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
