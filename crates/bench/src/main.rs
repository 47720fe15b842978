//! `bifrost-bench`: the benchmark driver behind `make bench`.

mod grpc;
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
    /// Only the gRPC-beside-HTTP section of the suite; prints Markdown.
    Grpc(suite::SuiteArgs),
    /// Only the request-logging section (CPU per request, logging off vs on); prints Markdown.
    Logging(suite::SuiteArgs),
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
    /// N concurrent streams opened at once against a URL; prints JSON.
    Streams {
        /// Target URL.
        #[arg(long)]
        url: String,
        /// JSON body (with `"stream": true`).
        #[arg(long)]
        body: String,
        /// Streams.
        #[arg(long, default_value_t = 512)]
        n: usize,
    },
    /// An open-loop run (requests at a fixed rate, one connection per worker); prints JSON.
    Open {
        /// Target URL.
        #[arg(long)]
        url: String,
        /// JSON body.
        #[arg(long)]
        body: String,
        /// Requests per second.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// Workers (connections).
        #[arg(long, default_value_t = 9000)]
        connections: usize,
        /// Seconds of scheduled requests.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Answers slower than this many ms are counted as slow.
        #[arg(long, default_value_t = 1600)]
        slow_ms: u64,
        /// A process whose peak RSS to report (e.g. the gateway).
        #[arg(long)]
        pid: Option<u32>,
    },
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(v)?;
    std::io::Write::write_all(&mut std::io::stdout(), json.as_bytes())?;
    Ok(())
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
            Cmd::Grpc(args) => suite::grpc_only(args).await,
            Cmd::Logging(args) => suite::logging::only(args).await,
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
                print_json(&r)
            }
            Cmd::Streams { url, body, n } => {
                let r = load::concurrent_streams(
                    &url,
                    Bytes::from(body),
                    n,
                    Duration::from_millis(250),
                )
                .await?;
                print_json(&r)
            }
            Cmd::Open {
                url,
                body,
                rate,
                connections,
                duration,
                slow_ms,
                pid,
            } => {
                let r = load::open_loop(
                    &url,
                    Bytes::from(body),
                    rate,
                    connections,
                    Duration::from_secs(duration),
                    Duration::from_millis(slow_ms),
                    || {},
                )
                .await?;
                print_json(&r)?;
                if let Some((rss, peak)) = pid.and_then(procstat::memory_mib) {
                    eprintln!(
                        "pid {} RSS {rss:.1} MiB, peak {peak:.1} MiB",
                        pid.unwrap_or(0)
                    );
                }
                Ok(())
            }
        }
    })
}
