//! Request logging on vs off: the gateway's CPU per request at concurrency 1 against the
//! instant upstream, with and without the logging plugin writing to SQLite (its defaults:
//! content truncated to 4 KiB, batches every second). Target: at most 10 % more CPU.
//!
//! Two gateways run side by side and are measured in alternating rounds, so drift of a
//! shared machine hits both; the CPU counted is the whole process (the log writer's
//! thread included).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use super::{SuiteArgs, TempDir, bench_provider, c1_cpu, pass, start_gateway_with};
use crate::load::LoadResult;

/// Alternating (off, on) rounds.
const ROUNDS: usize = 4;
/// Largest extra CPU per request logging may cost.
const TARGET: f64 = 0.10;

/// One side of the comparison, pooled over the rounds.
struct Side {
    cpu_us: Vec<f64>,
    rps: Vec<f64>,
    p50_us: Vec<f64>,
}

impl Side {
    fn new() -> Self {
        Self {
            cpu_us: Vec::new(),
            rps: Vec::new(),
            p50_us: Vec::new(),
        }
    }

    fn push(&mut self, r: &LoadResult, cpu_us: f64) {
        self.cpu_us.push(cpu_us);
        self.rps.push(r.rps);
        self.p50_us.push(r.latency_us.p50);
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len().max(1) as f64
    }
}

/// Measures and renders the section (Markdown).
pub(super) async fn section(args: &SuiteArgs, upstream: &str) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("bifrost-bench-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _dir = TempDir(dir.clone());
    let off_cfg = json!({"providers": {"openai": bench_provider(upstream, 4096)}});
    let mut on_cfg = off_cfg.clone();
    on_cfg["plugins"] = json!([{"name": "logging", "enabled": true,
        "config": {"type": "sqlite", "config": {"path": dir.join("logs.db")}}}]);
    let off = start_gateway_with(&args.gateway_bin, &off_cfg, &[]).await?;
    let on = start_gateway_with(&args.gateway_bin, &on_cfg, &[]).await?;
    let d = Duration::from_secs(args.duration);
    let (mut a, mut b) = (Side::new(), Side::new());
    for round in 1..=ROUNDS {
        eprintln!("request logging off/on, concurrency 1, round {round}/{ROUNDS}");
        for (gw, side) in [(&off, &mut a), (&on, &mut b)] {
            let url = format!("{}/v1/chat/completions", gw.proc.url);
            let (r, cpu) = c1_cpu(&url, gw.proc.pid(), "openai/gpt-4o-mini", d).await?;
            side.push(&r, cpu);
        }
    }
    // Entries written by the end (the writer batches every second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats: serde_json::Value = reqwest_stats(&on.proc.url).await.unwrap_or_default();
    let written = stats["total"].as_i64().unwrap_or(-1);
    let dropped = stats["dropped_entries"].as_i64().unwrap_or(-1);

    let (cpu_off, cpu_on) = (Side::mean(&a.cpu_us), Side::mean(&b.cpu_us));
    let extra = cpu_on / cpu_off.max(f64::MIN_POSITIVE) - 1.0;
    let mut o = String::new();
    let _ = writeln!(o, "\n## Request logging (SQLite): CPU per request\n");
    let _ = writeln!(
        o,
        "Concurrency 1 against the instant upstream, {ROUNDS} alternating rounds of {} s per \
         side, two gateways side by side; the logging plugin with its defaults (SQLite in a temp \
         dir, content truncated to 4 KiB, batches every second). CPU is the whole gateway \
         process, the log writer's thread included.\n",
        args.duration
    );
    let _ = writeln!(o, "| logging | req/s | p50 ms | CPU µs/request |");
    let _ = writeln!(o, "|---|---:|---:|---:|");
    for (name, s) in [("off", &a), ("on (SQLite)", &b)] {
        let _ = writeln!(
            o,
            "| {name} | {:.0} | {:.3} | {:.1} |",
            Side::mean(&s.rps),
            Side::mean(&s.p50_us) / 1e3,
            Side::mean(&s.cpu_us)
        );
    }
    let _ = writeln!(
        o,
        "\nLogging costs {:+.1} % CPU per request (target ≤ {:.0} %): {}. Per round (off → on): {}. \
         Entries in the store at the end: {written}, dropped: {dropped}.",
        extra * 100.0,
        TARGET * 100.0,
        pass(extra <= TARGET),
        a.cpu_us
            .iter()
            .zip(&b.cpu_us)
            .map(|(x, y)| format!("{x:.1} → {y:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprint!("{o}");
    Ok(o)
}

/// `GET /api/logs/stats` of a gateway.
async fn reqwest_stats(url: &str) -> anyhow::Result<serde_json::Value> {
    let uri: hyper::Uri = format!("{url}/api/logs/stats").parse()?;
    let host = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let stream = tokio::net::TcpStream::connect(&host).await?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let req = hyper::Request::get(uri.path())
        .header("host", host)
        .body(http_body_util::Empty::<bytes::Bytes>::new())?;
    let resp = send.send_request(req).await?;
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    Ok(serde_json::from_slice(&body)?)
}

/// `bifrost-bench logging`: this section alone, against a fresh instant upstream.
pub(crate) async fn only(args: SuiteArgs) -> anyhow::Result<()> {
    let instant = super::mock(&args.mock_bin, 0)?;
    section(&args, &instant.url).await?;
    Ok(())
}
