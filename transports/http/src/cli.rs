//! Command-line flags: Bifrost's, in Go's single-dash style (`-config x`, `-port=8080`) and
//! in the `--flag` style.

use std::path::PathBuf;

use clap::Parser;

/// `bifrost-http` flags (the union of every Bifrost release's flags).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bifrost-http",
    version,
    about = "Bifrost LLM gateway: one OpenAI-shaped API in front of many providers",
    long_about = None
)]
pub struct Cli {
    /// Path to config.json (default: <app-dir>/config.json; without one, providers are
    /// detected from OPENAI_API_KEY, ANTHROPIC_API_KEY, …).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Port to listen on.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, env = "BIFROST_HOST", default_value = "localhost")]
    pub host: String,
    /// Upstream connection pool size per provider (overrides client.initial_pool_size).
    #[arg(long)]
    pub pool_size: Option<usize>,
    /// Answer 429 instead of waiting when a provider's queue is full.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub drop_excess_requests: Option<bool>,
    /// Comma-separated plugins to enable (e.g. `mocker`).
    #[arg(long, value_delimiter = ',')]
    pub plugins: Vec<String>,
    /// Comma-separated extra Prometheus label names, filled from `x-bf-prom-<label>` headers.
    #[arg(long, value_delimiter = ',')]
    pub prometheus_labels: Vec<String>,
    /// Directory holding config.json (and, later, the SQLite stores).
    #[arg(long, default_value = "./bifrost-data")]
    pub app_dir: PathBuf,
    /// debug, info, warn or error.
    #[arg(long, default_value = "info")]
    pub log_level: String,
    /// json or pretty.
    #[arg(long, default_value = "json")]
    pub log_style: String,
    /// Worker threads, each a single-threaded runtime with its own connections and upstream
    /// pools (default: one per available core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Microseconds a worker keeps polling for I/O after it was last busy before its thread
    /// sleeps: up to one core of CPU at low load for about 60 µs less latency per request
    /// (0: never spin; an idle gateway never spins).
    #[arg(long, default_value_t = 200)]
    pub spin_us: u64,
}

impl Cli {
    /// Parses `args`, accepting Go-style single-dash long flags.
    pub fn parse_from_go_style<I: IntoIterator<Item = String>>(args: I) -> Self {
        Self::parse_from(normalize(args))
    }
}

/// Rewrites `-name` / `-name=value` to `--name` / `--name=value`; leaves `-h`, `--x`,
/// negative numbers and values alone.
fn normalize<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            let is_go_flag = i > 0
                && a.len() > 2
                && a.starts_with('-')
                && !a.starts_with("--")
                && a.as_bytes()[1].is_ascii_alphabetic();
            if is_go_flag { format!("-{a}") } else { a }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::parse_from_go_style(
            std::iter::once("bifrost-http")
                .chain(args.iter().copied())
                .map(String::from),
        )
    }

    #[test]
    fn accepts_go_and_gnu_styles() {
        let c = parse(&[
            "-config",
            "c.json",
            "-port=9000",
            "--pool-size",
            "5",
            "-drop-excess-requests",
        ]);
        assert_eq!(c.config.unwrap().to_str(), Some("c.json"));
        assert_eq!(c.port, 9000);
        assert_eq!(c.pool_size, Some(5));
        assert_eq!(c.drop_excess_requests, Some(true));
        let c = parse(&[
            "-plugins",
            "mocker,maxim",
            "-prometheus-labels",
            "team,env",
            "-log-style",
            "pretty",
        ]);
        assert_eq!(c.plugins, vec!["mocker", "maxim"]);
        assert_eq!(c.prometheus_labels, vec!["team", "env"]);
        assert_eq!(c.log_style, "pretty");
        assert_eq!(c.port, 8080);
    }
}
