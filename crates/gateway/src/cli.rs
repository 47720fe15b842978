//! Command-line flags: Bifrost's, in Go's single-dash style (`-config x`, `-port=8080`) and
//! in the `--flag` style, with Bifrost's container environment variables as defaults.
//!
//! Precedence for the settings that have one: flag, then environment variable, then the
//! built-in default.
//!
//! | flag | environment | default |
//! |---|---|---|
//! | `-port` | `APP_PORT` | 8080 |
//! | `-host` | `APP_HOST`, then `BIFROST_HOST` | `localhost` |
//! | `-app-dir` | `APP_DIR` | `./bifrost-data` |
//! | `-log-level` | `LOG_LEVEL` | `info` |
//! | `-log-style` | `LOG_STYLE` | `json` |
//!
//! An empty variable counts as unset; an invalid value (flag or variable) stops startup with
//! a message naming it.

use std::path::PathBuf;

use clap::Parser;
use clap::error::ErrorKind;

/// The flags as typed, before environment defaults are applied.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "bifrost-http",
    version,
    about = "Bifrost LLM gateway: one OpenAI-shaped API in front of many providers",
    long_about = None
)]
struct Flags {
    /// Path to config.json (default: <app-dir>/config.json; without one, providers are
    /// detected from OPENAI_API_KEY, ANTHROPIC_API_KEY, …).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Port to listen on [env: APP_PORT] [default: 8080].
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind [env: APP_HOST, then BIFROST_HOST] [default: localhost].
    #[arg(long)]
    host: Option<String>,
    /// Upstream connection pool size per provider (overrides client.initial_pool_size).
    #[arg(long)]
    pool_size: Option<usize>,
    /// Answer 429 instead of waiting when a provider's queue is full.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    drop_excess_requests: Option<bool>,
    /// Comma-separated plugins to enable (e.g. `mocker`).
    #[arg(long, value_delimiter = ',')]
    plugins: Vec<String>,
    /// Comma-separated extra Prometheus label names, filled from `x-bf-prom-<label>` headers.
    #[arg(long, value_delimiter = ',')]
    prometheus_labels: Vec<String>,
    /// Directory holding config.json (and, later, the SQLite stores) [env: APP_DIR]
    /// [default: ./bifrost-data].
    #[arg(long)]
    app_dir: Option<PathBuf>,
    /// debug, info, warn or error [env: LOG_LEVEL] [default: info].
    #[arg(long)]
    log_level: Option<String>,
    /// json or pretty [env: LOG_STYLE] [default: json].
    #[arg(long)]
    log_style: Option<String>,
    /// Worker threads, each a single-threaded runtime with its own connections and upstream
    /// pools (default: one per available core).
    #[arg(long)]
    workers: Option<usize>,
    /// Microseconds a worker keeps polling for I/O after it was last busy before its thread
    /// sleeps: up to one core of CPU at low load for about 60 µs less latency per request
    /// (0: never spin; an idle gateway never spins).
    #[arg(long, default_value_t = 200)]
    spin_us: u64,
    /// Port for the gRPC transport (overrides `grpc.port` in config.json; off when neither
    /// is set; `bifrost-grpc` defaults to 50051).
    #[arg(long)]
    grpc_port: Option<u16>,
    /// Health probe instead of a server: GET /health on this machine's gateway at the port
    /// the other flags and variables select, exit 0 on a 200 and 1 otherwise (the container
    /// image's HEALTHCHECK; the image has no curl).
    #[arg(long)]
    healthcheck: bool,
}

/// The gateway binaries' settings (`bifrost-http`, `bifrost-grpc`): the flags (the union of every Bifrost release's flags), with
/// environment defaults applied (see the module docs).
#[derive(Debug, Clone)]
pub struct Cli {
    /// Path to config.json; without it `<app_dir>/config.json`, else providers from
    /// `*_API_KEY` variables.
    pub config: Option<PathBuf>,
    /// Port to listen on (`-port`, `APP_PORT`, 8080).
    pub port: u16,
    /// Address to bind (`-host`, `APP_HOST`, `BIFROST_HOST`, `localhost`).
    pub host: String,
    /// Upstream connection pool size per provider (overrides client.initial_pool_size).
    pub pool_size: Option<usize>,
    /// Answer 429 instead of waiting when a provider's queue is full.
    pub drop_excess_requests: Option<bool>,
    /// Plugins to enable (e.g. `mocker`).
    pub plugins: Vec<String>,
    /// Extra Prometheus label names, filled from `x-bf-prom-<label>` headers.
    pub prometheus_labels: Vec<String>,
    /// Directory holding config.json (`-app-dir`, `APP_DIR`, `./bifrost-data`).
    pub app_dir: PathBuf,
    /// `debug`, `info`, `warn` or `error` (`-log-level`, `LOG_LEVEL`, `info`).
    pub log_level: String,
    /// `json` or `pretty` (`-log-style`, `LOG_STYLE`, `json`).
    pub log_style: String,
    /// Worker threads (default: one per available core).
    pub workers: Option<usize>,
    /// Microseconds a worker keeps polling for I/O after it was last busy (0: never).
    pub spin_us: u64,
    /// Port for the gRPC transport (`-grpc-port`; overrides `grpc.port`).
    pub grpc_port: Option<u16>,
    /// Probe the local gateway's `/health` and exit instead of serving.
    pub healthcheck: bool,
}

impl Cli {
    /// Parses `args` (Go-style single-dash long flags accepted) with the process's
    /// environment as defaults; prints the problem and exits on invalid input or `-h`.
    pub fn parse_from_go_style<I: IntoIterator<Item = String>>(args: I) -> Self {
        match Self::try_parse_with_env(args, |name| std::env::var(name).ok()) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        }
    }

    /// Parses `args` with `env` looking up environment variables (a closure, so tests need
    /// not change the process environment).
    pub fn try_parse_with_env<I, E>(args: I, env: E) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = String>,
        E: Fn(&str) -> Option<String>,
    {
        let f = Flags::try_parse_from(normalize(args))?;
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let port = match f.port {
            Some(p) => p,
            None => match var("APP_PORT") {
                Some(v) => v.trim().parse().map_err(|_| {
                    invalid(format!("APP_PORT={v:?} is not a port number (0-65535)"))
                })?,
                None => 8080,
            },
        };
        let host = f
            .host
            .or_else(|| var("APP_HOST"))
            .or_else(|| var("BIFROST_HOST"))
            .unwrap_or_else(|| "localhost".to_owned());
        let app_dir = f
            .app_dir
            .or_else(|| var("APP_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./bifrost-data"));
        let log_level = pick(
            (f.log_level, "-log-level"),
            (var("LOG_LEVEL"), "LOG_LEVEL"),
            log_level,
            "debug, info, warn or error",
        )?
        .unwrap_or("info");
        let log_style = pick(
            (f.log_style, "-log-style"),
            (var("LOG_STYLE"), "LOG_STYLE"),
            log_style,
            "json or pretty",
        )?
        .unwrap_or("json");
        Ok(Self {
            config: f.config,
            port,
            host: host.trim().to_owned(),
            pool_size: f.pool_size,
            drop_excess_requests: f.drop_excess_requests,
            plugins: f.plugins,
            prometheus_labels: f.prometheus_labels,
            app_dir,
            log_level: log_level.to_owned(),
            log_style: log_style.to_owned(),
            workers: f.workers,
            spin_us: f.spin_us,
            grpc_port: f.grpc_port,
            healthcheck: f.healthcheck,
        })
    }
}

/// The flag's value, else the variable's, checked by `check`; `None` when neither is set.
/// An invalid value is an error naming the flag or variable it came from.
fn pick(
    flag: (Option<String>, &str),
    var: (Option<String>, &str),
    check: fn(&str) -> Option<&'static str>,
    expected: &str,
) -> Result<Option<&'static str>, clap::Error> {
    let Some((value, source)) = flag.0.map(|v| (v, flag.1)).or(var.0.map(|v| (v, var.1))) else {
        return Ok(None);
    };
    check(&value)
        .map(Some)
        .ok_or_else(|| invalid(format!("{source}={value:?}: use {expected}")))
}

/// `level` as the tracing filter spells it (`WARNING` → `warn`), or `None` if unknown.
fn log_level(level: &str) -> Option<&'static str> {
    match level.trim().to_ascii_lowercase().as_str() {
        "trace" => Some("trace"),
        "debug" => Some("debug"),
        "info" => Some("info"),
        "warn" | "warning" => Some("warn"),
        "error" => Some("error"),
        _ => None,
    }
}

/// `style` normalized, or `None` if unknown.
fn log_style(style: &str) -> Option<&'static str> {
    match style.trim().to_ascii_lowercase().as_str() {
        "json" => Some("json"),
        "pretty" => Some("pretty"),
        _ => None,
    }
}

fn invalid(message: String) -> clap::Error {
    clap::Error::raw(ErrorKind::InvalidValue, format!("{message}\n"))
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
    use std::collections::HashMap;

    use super::*;

    fn parse_env(args: &[&str], env: &[(&str, &str)]) -> Result<Cli, clap::Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Cli::try_parse_with_env(
            std::iter::once("bifrost-http")
                .chain(args.iter().copied())
                .map(String::from),
            |name| env.get(name).cloned(),
        )
    }

    fn parse(args: &[&str]) -> Cli {
        parse_env(args, &[]).unwrap()
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
        assert!(!c.healthcheck);
        assert!(parse(&["-healthcheck"]).healthcheck);
        assert_eq!(c.grpc_port, None);
        assert_eq!(parse(&["-grpc-port", "50051"]).grpc_port, Some(50051));
    }

    #[test]
    fn defaults_without_flags_or_environment() {
        let c = parse(&[]);
        assert_eq!(c.port, 8080);
        assert_eq!(c.host, "localhost");
        assert_eq!(c.app_dir, PathBuf::from("./bifrost-data"));
        assert_eq!(c.log_level, "info");
        assert_eq!(c.log_style, "json");
    }

    #[test]
    fn bifrost_environment_variables_are_defaults_under_the_flags() {
        let env = [
            ("APP_PORT", "9100"),
            ("APP_HOST", "0.0.0.0"),
            ("BIFROST_HOST", "10.0.0.1"),
            ("APP_DIR", "/app/config"),
            ("LOG_LEVEL", "DEBUG"),
            ("LOG_STYLE", "pretty"),
        ];
        let c = parse_env(&[], &env).unwrap();
        assert_eq!(c.port, 9100);
        assert_eq!(c.host, "0.0.0.0");
        assert_eq!(c.app_dir, PathBuf::from("/app/config"));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.log_style, "pretty");
        let c = parse_env(
            &[
                "-port",
                "7000",
                "-host",
                "127.0.0.1",
                "-app-dir",
                "/data",
                "-log-level",
                "warning",
                "-log-style",
                "json",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.app_dir, PathBuf::from("/data"));
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.log_style, "json");
        // BIFROST_HOST stays as the older spelling; empty variables count as unset.
        let c = parse_env(&[], &[("BIFROST_HOST", "10.0.0.1"), ("APP_PORT", "")]).unwrap();
        assert_eq!(c.host, "10.0.0.1");
        assert_eq!(c.port, 8080);
    }

    #[test]
    fn invalid_values_name_their_source() {
        for (args, env, needle) in [
            (&[][..], &[("APP_PORT", "http")][..], "APP_PORT"),
            (&[], &[("APP_PORT", "70000")], "APP_PORT"),
            (&[], &[("LOG_LEVEL", "loud")], "LOG_LEVEL"),
            (&[], &[("LOG_STYLE", "xml")], "LOG_STYLE"),
            (&["-log-level", "loud"], &[], "-log-level"),
            (
                &["-log-style", "xml"],
                &[("LOG_STYLE", "json")],
                "-log-style",
            ),
        ] {
            let e = parse_env(args, env).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        // A valid flag wins over an invalid variable.
        assert_eq!(
            parse_env(&["-port", "1"], &[("APP_PORT", "x")])
                .unwrap()
                .port,
            1
        );
    }
}
