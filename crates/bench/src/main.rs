//! `bifrost-bench`: the benchmark driver behind `make bench`.

mod load;
mod procs;
mod procstat;
mod suite;

use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bifrost-bench",
    about = "Load generator and benchmark suite for bifrost-http"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The full suite; writes docs/benchmarks.md.
    Suite(suite::SuiteArgs),
    /// One closed-loop run against a URL; prints JSON.
    Load {
        /// Target URL (e.g. http://127.0.0.1:8080/v1/chat/completions).
        #[arg(long)]
        url: String,
        /// JSON body.
        #[arg(long)]
        body: String,
        /// Connections.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds measured.
        #[arg(long, default_value_t = 5)]
        duration: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One thread: the driver should take as little of the machine as it can.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Suite(args) => suite::run(args).await,
            Cmd::Load {
                url,
                body,
                concurrency,
                duration,
            } => {
                let r = load::closed_loop(
                    &url,
                    Bytes::from(body),
                    concurrency,
                    Duration::from_secs(1),
                    Duration::from_secs(duration),
                )
                .await?;
                let json = serde_json::to_string_pretty(&r)?;
                std::io::Write::write_all(&mut std::io::stdout(), json.as_bytes())?;
                Ok(())
            }
        }
    })
}
