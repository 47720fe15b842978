//! `make bench`: every measurement of the benchmark issue in one run on one machine, written
//! to `docs/benchmarks.md`. Each gateway number is compared with the same load sent straight
//! to the upstream in the same run, so machine noise largely cancels out.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde_json::json;

use crate::load::{
    LoadResult, OpenResult, StreamResult, closed_loop, concurrent_streams, open_loop,
};
use crate::procs::{Proc, free_port, mock, server};
use crate::procstat::{cpu_time, memory_mib};

#[path = "logging.rs"]
pub(crate) mod logging;

/// Suite settings.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// The gateway binary (a release build).
    #[arg(long, default_value = "target/release/bifrost-http")]
    pub gateway_bin: PathBuf,
    /// The mock upstream binary.
    #[arg(long, default_value = "target/release/mock-upstream")]
    pub mock_bin: PathBuf,
    /// Where to write the report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// Seconds measured per closed-loop run (after 1 s of warm-up).
    #[arg(long, default_value_t = 5)]
    pub duration: u64,
    /// Seconds of the steady-load memory trend.
    #[arg(long, default_value_t = 300)]
    pub soak: u64,
    /// Concurrency levels for added latency.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    pub concurrency: Vec<usize>,
    /// Concurrent stream counts.
    #[arg(long, value_delimiter = ',', default_value = "64,256,512")]
    pub streams: Vec<usize>,
    /// Peer gateways to measure side by side (`litellm`).
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// The LiteLLM proxy executable (for `--peers litellm`).
    #[arg(long, default_value = ".venv-bench/bin/litellm")]
    pub litellm_bin: PathBuf,
    /// The seed's benchmark: requests per second, open loop (0 skips it).
    #[arg(long, default_value_t = 5000)]
    pub seed_rate: u64,
    /// The seed's benchmark: client connections (workers).
    #[arg(long, default_value_t = 9000)]
    pub seed_connections: usize,
    /// The seed's benchmark: seconds of scheduled requests.
    #[arg(long, default_value_t = 20)]
    pub seed_secs: u64,
    /// The seed's benchmark: upstream latency in ms.
    #[arg(long, default_value_t = 1500)]
    pub seed_latency_ms: u64,
}

/// What the seed's benchmark (5,000 RPS open loop against a 1.5 s upstream) measured.
struct Seed {
    direct: OpenResult,
    gateway: OpenResult,
    idle_rss: f64,
    peak_rss: f64,
    cpu_us_per_req: f64,
}

/// Spinning on or off: CPU per streamed chunk and per request, and latency at concurrency 1.
struct SpinRow {
    spin_us: u64,
    idle_cpu_ms: f64,
    cpu_us_per_chunk: f64,
    cpu_us_per_req: f64,
    c1: LoadResult,
    cpu_us_per_slow_req: f64,
}

/// The prompt every benchmark request carries.
pub const PROMPT: &str = "Say hello in one short sentence.";

fn chat_body(model: &str, extra: serde_json::Value) -> Bytes {
    let mut v = json!({"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 32});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    Bytes::from(v.to_string())
}

/// One gateway run compared with the same run straight to the upstream.
struct Pair {
    concurrency: usize,
    direct: LoadResult,
    gateway: LoadResult,
    cpu_us_per_req: f64,
}

impl Pair {
    /// Requests per second through the gateway ÷ straight to the upstream.
    fn rps_ratio(&self) -> f64 {
        self.gateway.rps / self.direct.rps.max(1.0)
    }
}

/// Interleaved (direct, gateway) rounds against the static upstream, and how long each side
/// of a round runs (after a short warm-up).
const STATIC_ROUNDS: usize = 12;
const STATIC_ROUND_SECS: u64 = 2;
const STATIC_ROUND: Duration = Duration::from_secs(STATIC_ROUND_SECS);
const STATIC_WARM: Duration = Duration::from_millis(500);

struct Gateway {
    proc: Proc,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A provider block at `url` admitting `concurrency` requests at once.
fn bench_provider(url: &str, concurrency: usize) -> serde_json::Value {
    json!({"keys": [{"value": "sk-bench"}], "network_config": {"base_url": url},
           "concurrency_and_buffer_size": {"concurrency": concurrency, "buffer_size": 2 * concurrency}})
}

async fn start_gateway(
    bin: &std::path::Path,
    instant: &str,
    slow: &str,
    fixed: Option<&str>,
) -> anyhow::Result<Gateway> {
    let mut providers =
        json!({"openai": bench_provider(instant, 4096), "groq": bench_provider(slow, 4096)});
    if let Some(f) = fixed {
        providers["cerebras"] = bench_provider(f, 4096);
    }
    let cfg = json!({"client": {"initial_pool_size": 512}, "providers": providers});
    start_gateway_with(bin, &cfg, &[]).await
}

/// A gateway serving `cfg`, with extra flags.
async fn start_gateway_with(
    bin: &std::path::Path,
    cfg: &serde_json::Value,
    extra: &[&str],
) -> anyhow::Result<Gateway> {
    let dir = std::env::temp_dir().join(format!(
        "bifrost-bench-{}-{}",
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("config.json");
    std::fs::write(&path, cfg.to_string())?;
    let port = free_port()?;
    let mut cmd = Command::new(bin);
    cmd.args([
        "-config",
        &path.to_string_lossy(),
        "-port",
        &port.to_string(),
        "-host",
        "127.0.0.1",
        "-log-level",
        "warn",
    ]);
    cmd.args(extra);
    let proc = server(cmd, port, "/health").await?;
    Ok(Gateway {
        proc,
        _dir: TempDir(dir),
    })
}

/// One row for `rounds`: RPS and CPU per request pooled over all of them (so the RPS ratio
/// is summed gateway requests ÷ summed direct requests), latency percentiles of the median
/// round. `rounds` is sorted by ratio.
fn pooled(mut rounds: Vec<Pair>) -> Option<Pair> {
    let n = rounds.len() as f64;
    let direct = rounds.iter().map(|p| p.direct.rps).sum::<f64>() / n;
    let gateway = rounds.iter().map(|p| p.gateway.rps).sum::<f64>() / n;
    let cpu = rounds
        .iter()
        .map(|p| p.cpu_us_per_req * p.gateway.rps)
        .sum::<f64>()
        / (gateway * n).max(1.0);
    let errors = rounds.iter().map(|p| p.gateway.errors).sum();
    let mid = rounds.len() / 2;
    let mut row = (!rounds.is_empty()).then(|| rounds.swap_remove(mid))?;
    row.direct.rps = direct;
    row.gateway.rps = gateway;
    row.gateway.errors = errors;
    row.cpu_us_per_req = cpu;
    Some(row)
}

async fn pair(
    direct_url: &str,
    direct_body: &Bytes,
    gw: &Proc,
    gw_body: &Bytes,
    concurrency: usize,
    warm: Duration,
    duration: Duration,
) -> anyhow::Result<Pair> {
    let direct = closed_loop(
        &format!("{direct_url}/v1/chat/completions"),
        direct_body.clone(),
        concurrency,
        warm,
        duration,
    )
    .await?;
    let cpu0 = cpu_time(gw.pid()).unwrap_or_default();
    let t0 = Instant::now();
    let gateway = closed_loop(
        &format!("{}/v1/chat/completions", gw.url),
        gw_body.clone(),
        concurrency,
        warm,
        duration,
    )
    .await?;
    let cpu = cpu_time(gw.pid()).unwrap_or_default().saturating_sub(cpu0);
    // CPU over the whole run (warm-up included) divided by every request it served.
    let served = gateway.rps * t0.elapsed().as_secs_f64();
    let cpu_us_per_req = if served > 0.0 {
        cpu.as_secs_f64() * 1e6 / served
    } else {
        0.0
    };
    Ok(Pair {
        concurrency,
        direct,
        gateway,
        cpu_us_per_req,
    })
}

/// A fixed chat completion served by nginx: the practical ceiling for a two-hop proxy.
fn start_nginx(dir: &std::path::Path) -> anyhow::Result<Option<Proc>> {
    let Ok(nginx) = which("nginx") else {
        return Ok(None);
    };
    let port = free_port()?;
    let body = r#"{"id":"chatcmpl-static","object":"chat.completion","created":1700000000,"model":"static","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}"#;
    let conf = format!(
        "worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 8192; }}\n\
         http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
         server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;\n\
         location / {{ default_type application/json; return 200 '{body}'; }} }} }}\n",
        d = dir.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let child = Command::new(nginx)
        .args([
            "-c",
            &conf_path.to_string_lossy(),
            "-e",
            &dir.join("error.log").to_string_lossy(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(Some(Proc {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }))
}

fn which(name: &str) -> anyhow::Result<PathBuf> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
    {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    anyhow::bail!("{name} not found")
}

/// Runs the whole suite and writes the report.
pub async fn run(args: SuiteArgs) -> anyhow::Result<()> {
    let d = Duration::from_secs(args.duration);
    let tmp = std::env::temp_dir().join(format!("bifrost-bench-static-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let _tmp = TempDir(tmp.clone());

    let instant = mock(&args.mock_bin, 0)?;
    let slow = mock(&args.mock_bin, 20)?;
    let nginx = start_nginx(&tmp)?;
    let gw = start_gateway(
        &args.gateway_bin,
        &instant.url,
        &slow.url,
        nginx.as_ref().map(|n| n.url.as_str()),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle_rss, _) = memory_mib(gw.proc.pid()).unwrap_or_default();
    eprintln!("gateway idle RSS {idle_rss:.1} MiB");

    let direct_body = chat_body("gpt-4o-mini", json!({}));
    let mut instant_pairs = Vec::new();
    let mut slow_pairs = Vec::new();
    for &c in &args.concurrency {
        eprintln!("instant upstream, concurrency {c}");
        instant_pairs.push(
            pair(
                &instant.url,
                &direct_body,
                &gw.proc,
                &chat_body("openai/gpt-4o-mini", json!({})),
                c,
                Duration::from_secs(1),
                d,
            )
            .await?,
        );
        eprintln!("20 ms upstream, concurrency {c}");
        slow_pairs.push(
            pair(
                &slow.url,
                &direct_body,
                &gw.proc,
                &chat_body("groq/gpt-4o-mini", json!({})),
                c,
                Duration::from_secs(1),
                d,
            )
            .await?,
        );
    }
    // Many short rounds of (direct, gateway) back to back, pooled. On a shared 2-core
    // machine the speed of the box drifts over seconds (direct RPS moved between 59k and
    // 86k in consecutive 5 s windows); short alternating rounds expose both sides to the
    // same drift, so the ratio of their summed requests is steadier than any one round.
    let mut static_rounds = Vec::new();
    if let Some(n) = &nginx {
        for round in 1..=STATIC_ROUNDS {
            eprintln!("static nginx upstream, concurrency 64, round {round}/{STATIC_ROUNDS}");
            static_rounds.push(
                pair(
                    &n.url,
                    &direct_body,
                    &gw.proc,
                    &chat_body("cerebras/static", json!({})),
                    64,
                    STATIC_WARM,
                    STATIC_ROUND,
                )
                .await?,
            );
        }
    }
    static_rounds.sort_by(|a, b| a.rps_ratio().total_cmp(&b.rps_ratio()));
    let static_ratios: Vec<f64> = static_rounds.iter().map(Pair::rps_ratio).collect();
    let static_pair = pooled(static_rounds);

    let stream_extra = json!({"stream": true, "mock": {"chunks": 20, "chunk_delay_ms": 50}});
    let stall = Duration::from_millis(250);
    let mut stream_rows = Vec::new();
    for &n in &args.streams {
        eprintln!("{n} concurrent streams");
        let direct = concurrent_streams(
            &format!("{}/v1/chat/completions", instant.url),
            chat_body("gpt-4o-mini", stream_extra.clone()),
            n,
            stall,
        )
        .await?;
        let through = concurrent_streams(
            &format!("{}/v1/chat/completions", gw.proc.url),
            chat_body("openai/gpt-4o-mini", stream_extra.clone()),
            n,
            stall,
        )
        .await?;
        stream_rows.push((n, direct, through));
    }
    let (_, peak_rss) = memory_mib(gw.proc.pid()).unwrap_or_default();

    let grpc = grpc_section(&args, &instant.url, &stream_extra, stall).await?;

    let mut spin = Vec::new();
    for spin_us in [200, 0] {
        eprintln!("spinning {spin_us} us: CPU per streamed chunk and per request");
        spin.push(spin_row(&args, &instant.url, &slow.url, spin_us).await?);
    }
    let seed = if args.seed_rate > 0 {
        eprintln!(
            "the seed's benchmark: {} RPS open loop, {} connections, {} s, {} ms upstream",
            args.seed_rate, args.seed_connections, args.seed_secs, args.seed_latency_ms
        );
        Some(seed_benchmark(&args).await?)
    } else {
        None
    };

    eprintln!("steady load for {} s (memory trend)", args.soak);
    let trend = soak(&gw.proc, Duration::from_secs(args.soak)).await?;

    let mut peers = Vec::new();
    for p in &args.peers {
        if p == "litellm" {
            eprintln!("peer: LiteLLM proxy");
            match litellm(&args, &instant, &direct_body, d).await {
                Ok(rows) => peers.push(("LiteLLM proxy".to_owned(), rows)),
                Err(e) => eprintln!("LiteLLM skipped: {e:#}"),
            }
        }
    }

    let report = Report {
        args: &args,
        idle_rss,
        peak_rss,
        instant: &instant_pairs,
        slow: &slow_pairs,
        static_pair: static_pair.as_ref(),
        static_ratios: &static_ratios,
        streams: &stream_rows,
        trend: &trend,
        peers: &peers,
        spin: &spin,
        seed: seed.as_ref(),
        grpc: &grpc,
    };
    let mut text = report.render();
    text.push_str(&logging::section(&args, &instant.url).await?);
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// Streams and single requests through a fresh gateway spinning `spin_us` (0: off).
async fn spin_row(
    args: &SuiteArgs,
    upstream: &str,
    slow: &str,
    spin_us: u64,
) -> anyhow::Result<SpinRow> {
    let cfg = json!({"providers": {"openai": bench_provider(upstream, 4096),
                                   "groq": bench_provider(slow, 4096)}});
    let spin = spin_us.to_string();
    let gw = start_gateway_with(&args.gateway_bin, &cfg, &["-spin-us", &spin]).await?;
    let pid = gw.proc.pid();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = || cpu_time(pid).unwrap_or_default();
    let c0 = cpu();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_cpu_ms = cpu().saturating_sub(c0).as_secs_f64() * 1e3;
    // 32 streams of 100 chunks, 20 ms apart: the gateway mostly waits for chunks.
    const STREAMS: usize = 32;
    const CHUNKS: usize = 100;
    let body = chat_body(
        "openai/gpt-4o-mini",
        json!({"stream": true, "mock": {"chunks": CHUNKS, "chunk_delay_ms": 20}}),
    );
    let url = format!("{}/v1/chat/completions", gw.proc.url);
    let c0 = cpu();
    concurrent_streams(&url, body, STREAMS, Duration::from_millis(250)).await?;
    let cpu_us_per_chunk = cpu().saturating_sub(c0).as_secs_f64() * 1e6 / (STREAMS * CHUNKS) as f64;
    let d = Duration::from_secs(args.duration);
    let (c1, cpu_us_per_req) = c1_cpu(&url, pid, "openai/gpt-4o-mini", d).await?;
    // Concurrency 1 against the 20 ms upstream: nothing arrives within a spin after the
    // request went out, so spinning there is waste unless it backs off.
    let (_, cpu_us_per_slow_req) = c1_cpu(&url, pid, "groq/gpt-4o-mini", d).await?;
    Ok(SpinRow {
        cpu_us_per_slow_req,
        spin_us,
        idle_cpu_ms,
        cpu_us_per_chunk,
        cpu_us_per_req,
        c1,
    })
}

/// Concurrency 1 for `d` on `model` through the gateway at `url` (process `pid`): the load
/// result and the gateway's CPU per request.
async fn c1_cpu(
    url: &str,
    pid: u32,
    model: &str,
    d: Duration,
) -> anyhow::Result<(LoadResult, f64)> {
    let c0 = cpu_time(pid).unwrap_or_default();
    let t0 = Instant::now();
    let r = closed_loop(
        url,
        chat_body(model, json!({})),
        1,
        Duration::from_millis(500),
        d,
    )
    .await?;
    let served = r.rps * t0.elapsed().as_secs_f64();
    let cpu = cpu_time(pid).unwrap_or_default().saturating_sub(c0);
    Ok((r, cpu.as_secs_f64() * 1e6 / served.max(1.0)))
}

/// The seed's own benchmark: an open loop at `seed_rate` RPS over `seed_connections`
/// connections against an upstream answering after `seed_latency_ms`, straight to the
/// upstream and then through a fresh gateway (whose peak RSS is this scenario's alone).
async fn seed_benchmark(args: &SuiteArgs) -> anyhow::Result<Seed> {
    let upstream = mock(&args.mock_bin, args.seed_latency_ms)?;
    let n = args.seed_connections;
    let cfg = json!({"providers": {"openai": bench_provider(&upstream.url, n + 1000)}});
    let gw = start_gateway_with(&args.gateway_bin, &cfg, &[]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = memory_mib(gw.proc.pid()).unwrap_or_default();
    let slow_over = Duration::from_millis(args.seed_latency_ms + 100);
    let d = Duration::from_secs(args.seed_secs);
    let direct = open_loop(
        &format!("{}/v1/chat/completions", upstream.url),
        chat_body("gpt-4o-mini", json!({})),
        args.seed_rate,
        n,
        d,
        slow_over,
        || {},
    )
    .await?;
    // Let the direct run's connections close before the gateway's run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = gw.proc.pid();
    let c0 = cpu_time(pid).unwrap_or_default();
    let gateway = open_loop(
        &format!("{}/v1/chat/completions", gw.proc.url),
        chat_body("openai/gpt-4o-mini", json!({})),
        args.seed_rate,
        n,
        d,
        slow_over,
        || {},
    )
    .await?;
    let cpu = cpu_time(pid).unwrap_or_default().saturating_sub(c0);
    let (_, peak_rss) = memory_mib(pid).unwrap_or_default();
    Ok(Seed {
        cpu_us_per_req: cpu.as_secs_f64() * 1e6 / (gateway.sent.max(1) as f64),
        direct,
        gateway,
        idle_rss,
        peak_rss,
    })
}

/// RSS samples (seconds since start, MiB) under steady load at concurrency 16 on the 20 ms upstream.
async fn soak(gw: &Proc, total: Duration) -> anyhow::Result<Vec<(u64, f64)>> {
    let url = format!("{}/v1/chat/completions", gw.url);
    let body = chat_body("groq/gpt-4o-mini", json!({}));
    let step = Duration::from_secs(10).min(total.max(Duration::from_secs(1)));
    let mut samples = vec![(0, memory_mib(gw.pid()).unwrap_or_default().0)];
    let start = Instant::now();
    while start.elapsed() < total {
        closed_loop(&url, body.clone(), 16, Duration::ZERO, step).await?;
        samples.push((
            start.elapsed().as_secs(),
            memory_mib(gw.pid()).unwrap_or_default().0,
        ));
    }
    Ok(samples)
}

async fn litellm(
    args: &SuiteArgs,
    upstream: &Proc,
    direct_body: &Bytes,
    d: Duration,
) -> anyhow::Result<Vec<Pair>> {
    let dir = std::env::temp_dir().join(format!("bifrost-bench-litellm-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _dir = TempDir(dir.clone());
    let cfg = format!(
        "model_list:\n  - model_name: gpt-4o-mini\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {}/v1\n      api_key: sk-bench\n",
        upstream.url
    );
    let path = dir.join("litellm.yaml");
    std::fs::write(&path, cfg)?;
    let port = free_port()?;
    let mut cmd = Command::new(&args.litellm_bin);
    cmd.args([
        "--config",
        &path.to_string_lossy(),
        "--port",
        &port.to_string(),
        "--host",
        "127.0.0.1",
        "--num_workers",
        "1",
    ]);
    cmd.env("LITELLM_LOG", "ERROR")
        // No network here: use the bundled model cost map instead of fetching it.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        // A loopback-only benchmark: the load generator sends no credentials.
        .env(
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY",
            "true",
        );
    let proc = server(cmd, port, "/health/liveliness").await?;
    let body = chat_body("gpt-4o-mini", json!({}));
    let mut rows = Vec::new();
    for &c in &args.concurrency {
        rows.push(
            pair(
                &upstream.url,
                direct_body,
                &proc,
                &body,
                c,
                Duration::from_secs(1),
                d,
            )
            .await?,
        );
    }
    Ok(rows)
}

struct Report<'a> {
    args: &'a SuiteArgs,
    idle_rss: f64,
    peak_rss: f64,
    instant: &'a [Pair],
    slow: &'a [Pair],
    static_pair: Option<&'a Pair>,
    static_ratios: &'a [f64],
    streams: &'a [(usize, StreamResult, StreamResult)],
    trend: &'a [(u64, f64)],
    peers: &'a [(String, Vec<Pair>)],
    spin: &'a [SpinRow],
    seed: Option<&'a Seed>,
    grpc: &'a GrpcSection,
}

/// gRPC beside HTTP on one gateway serving both.
struct GrpcSection {
    unary: Vec<crate::grpc::UnaryRow>,
    /// (streams, HTTP through the gateway, gRPC through the gateway).
    streams: Vec<(usize, StreamResult, StreamResult)>,
}

/// The gRPC section: unary calls and streams beside HTTP on the same gateway.
fn render_grpc(o: &mut String, g: &GrpcSection) {
    if g.unary.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n## gRPC beside HTTP (one gateway serving both, instant upstream)\n"
    );
    let _ = writeln!(
        o,
        "`bifrost-http -grpc-port`: the same engine answers `POST /v1/chat/completions` and `bifrost.v1.BifrostService/ChatCompletion` (tonic client, {} HTTP/2 connections shared by the callers). Added latency = through the gateway − straight to the upstream over HTTP, same run. CPU per request as above.\n",
        4
    );
    let _ = writeln!(
        o,
        "| concurrency | direct p50 / p99 (µs) | HTTP added p50 / p99 (µs) | **gRPC added p50 / p99 (µs)** | HTTP RPS | gRPC RPS | HTTP CPU / req (µs) | **gRPC CPU / req (µs)** | gRPC ÷ HTTP CPU |"
    );
    let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &g.unary {
        let _ = writeln!(
            o,
            "| {} | {:.0} / {:.0} | {:.0} / {:.0} | **{:.0} / {:.0}** | {:.0} | {:.0} | {:.1} | **{:.1}** | {:.2} |",
            r.concurrency,
            r.direct.latency_us.p50,
            r.direct.latency_us.p99,
            r.http.latency_us.p50 - r.direct.latency_us.p50,
            r.http.latency_us.p99 - r.direct.latency_us.p99,
            r.grpc.latency_us.p50 - r.direct.latency_us.p50,
            r.grpc.latency_us.p99 - r.direct.latency_us.p99,
            r.http.rps,
            r.grpc.rps,
            r.http_cpu_us,
            r.grpc_cpu_us,
            r.grpc_cpu_us / r.http_cpu_us.max(f64::EPSILON)
        );
    }
    for (n, http, grpc) in &g.streams {
        let _ = writeln!(
            o,
            "\n{n} concurrent streams (20 chunks, 50 ms apart) on the same gateway: HTTP TTFT p50 / p99 {:.0} / {:.0} µs, {} completed, {} stalled; gRPC TTFT p50 / p99 {:.0} / {:.0} µs, max gap p99 {:.1} ms, {} completed, {} stalled.",
            http.ttft_us.p50,
            http.ttft_us.p99,
            http.completed,
            http.stalled,
            grpc.ttft_us.p50,
            grpc.ttft_us.p99,
            grpc.max_gap_us.p99 / 1000.0,
            grpc.completed,
            grpc.stalled
        );
    }
}

/// `bifrost-bench grpc`: only the gRPC section, printed as Markdown (a quick run).
pub async fn grpc_only(args: SuiteArgs) -> anyhow::Result<()> {
    let instant = mock(&args.mock_bin, 0)?;
    let extra = json!({"stream": true, "mock": {"chunks": 20, "chunk_delay_ms": 50}});
    let g = grpc_section(&args, &instant.url, &extra, Duration::from_millis(250)).await?;
    let mut o = String::new();
    render_grpc(&mut o, &g);
    eprintln!("{o}");
    Ok(())
}

/// One gateway serving HTTP and gRPC (`-grpc-port`) on the instant upstream: unary rows at
/// concurrency 1, 16 and 64, then the largest stream count over both transports.
async fn grpc_section(
    args: &SuiteArgs,
    upstream: &str,
    stream_extra: &serde_json::Value,
    stall: Duration,
) -> anyhow::Result<GrpcSection> {
    let cfg = json!({"client": {"initial_pool_size": 512},
                     "providers": {"openai": bench_provider(upstream, 4096)}});
    let port = free_port()?;
    let gw =
        start_gateway_with(&args.gateway_bin, &cfg, &["-grpc-port", &port.to_string()]).await?;
    let grpc_url = format!("http://127.0.0.1:{port}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = Duration::from_secs(args.duration);
    let unary = crate::grpc::unary_rows(
        upstream,
        &gw.proc.url,
        &grpc_url,
        gw.proc.pid(),
        &[1, 16, 64],
        d,
    )
    .await?;
    let mut streams = Vec::new();
    if let Some(&n) = args.streams.iter().max() {
        eprintln!("gRPC beside HTTP, {n} concurrent streams");
        let http = concurrent_streams(
            &format!("{}/v1/chat/completions", gw.proc.url),
            chat_body("openai/gpt-4o-mini", stream_extra.clone()),
            n,
            stall,
        )
        .await?;
        let mock = stream_extra.get("mock").cloned().unwrap_or_default();
        let grpc = crate::grpc::grpc_streams(&grpc_url, json!({"mock": mock}), n, stall).await?;
        streams.push((n, http, grpc));
    }
    Ok(GrpcSection { unary, streams })
}

fn cmd_output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
                    / 1024.0
                    / 1024.0
            })
        })
        .unwrap_or(0.0);
    format!(
        "{cores} cores ({cpu}), {mem:.0} GiB RAM, Linux {}",
        cmd_output("uname", &["-r"])
    )
}

fn pass(ok: bool) -> &'static str {
    if ok { "✅" } else { "❌" }
}

fn added_table(out: &mut String, title: &str, rows: &[Pair]) {
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "| concurrency | direct p50 / p99 (µs) | through gateway p50 / p99 (µs) | **added p50 / p99 (µs)** | direct RPS | gateway RPS | gateway CPU per request (µs) | errors |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in rows {
        let (d, g) = (&p.direct.latency_us, &p.gateway.latency_us);
        let _ = writeln!(
            out,
            "| {} | {:.0} / {:.0} | {:.0} / {:.0} | **{:.0} / {:.0}** | {:.0} | {:.0} | {:.1} | {} |",
            p.concurrency,
            d.p50,
            d.p99,
            g.p50,
            g.p99,
            g.p50 - d.p50,
            g.p99 - d.p99,
            p.direct.rps,
            p.gateway.rps,
            p.cpu_us_per_req,
            p.direct.errors + p.gateway.errors
        );
    }
    out.push('\n');
}

impl Report<'_> {
    fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# Benchmarks\n");
        let _ = writeln!(
            o,
            "Generated by `make bench` (`bifrost-bench suite`); every number below comes from one run on one machine.\n"
        );
        let _ = writeln!(o, "- **Machine**: {}", machine());
        let _ = writeln!(
            o,
            "- **Versions**: bifrost-http {} (release build, commit `{}`), {}",
            env!("CARGO_PKG_VERSION"),
            cmd_output("git", &["rev-parse", "--short", "HEAD"]),
            cmd_output("rustc", &["--version"])
        );
        let _ = writeln!(
            o,
            "- **Tool**: `bifrost-bench` (this workspace): a single-threaded tokio + hyper HTTP/1.1 client, keep-alive, `TCP_NODELAY`, closed loop (each connection sends its next request when the previous answered), 1 s warm-up then {} s measured per row. The upstream is `mock-upstream` (release build) with 0 ms or 20 ms added latency; nginx returning a fixed completion is the static upstream. Gateway, upstream and load generator share the machine.",
            self.args.duration
        );
        let _ = writeln!(
            o,
            "- **Formulas**: added latency = (percentile through the gateway) − (same percentile straight to the upstream, same load, same run). Gateway CPU per request = (utime + stime of the gateway process from `/proc/<pid>/stat` over the run) ÷ (requests served in the run). RSS = `VmRSS` / peak = `VmHWM` from `/proc/<pid>/status`. A stream is stalled when it fails, never sends `[DONE]`, or has a gap over 250 ms between body chunks (the upstream sends one every 50 ms). RPS ratio = through-gateway requests ÷ direct requests against the static upstream, summed over {STATIC_ROUNDS} interleaved (direct, gateway) rounds of {STATIC_ROUND_SECS} s each side, so both sides see the same drift in the shared machine's speed. The gateway also reports its own overhead per request in `x-bifrost-overhead-us` (see README). Profile-guided changes and instruction counts: [performance.md](performance.md).\n"
        );

        let c1 = self.instant.iter().find(|p| p.concurrency == 1);
        let c64 = self.instant.iter().find(|p| p.concurrency == 64);
        let added_p99_c1 = c1.map_or(f64::NAN, |p| {
            p.gateway.latency_us.p99 - p.direct.latency_us.p99
        });
        let cpu = c64.or(c1).map_or(f64::NAN, |p| p.cpu_us_per_req);
        let ratio = self.static_pair.or(c64).map_or(f64::NAN, Pair::rps_ratio);
        let max_streams = self.streams.iter().map(|(n, _, _)| *n).max().unwrap_or(0);
        let stalls: usize = self.streams.iter().map(|(_, _, g)| g.stalled).sum();
        let max_rps = self
            .instant
            .iter()
            .map(|p| p.gateway.rps)
            .fold(0.0, f64::max);

        let _ = writeln!(o, "## Targets (2-core machine)\n");
        let _ = writeln!(o, "| target | measured | |\n|---|---:|---|");
        let _ = writeln!(
            o,
            "| added p99 ≤ 100 µs at concurrency 1 (instant upstream) | {added_p99_c1:.0} µs | {} |",
            pass(added_p99_c1 <= 100.0)
        );
        let _ = writeln!(
            o,
            "| gateway CPU ≤ 60 µs per non-streamed request (concurrency 64) | {cpu:.1} µs | {} |",
            pass(cpu <= 60.0)
        );
        let _ = writeln!(
            o,
            "| RPS through gateway ≥ 1/3 of direct, concurrency 64, {} upstream | {:.2} | {} |",
            if self.static_pair.is_some() {
                "static nginx"
            } else {
                "instant mock"
            },
            ratio,
            pass(ratio >= 1.0 / 3.0)
        );
        let _ = writeln!(
            o,
            "| ≥ 512 concurrent streams with zero stalls | {max_streams} streams, {stalls} stalled | {} |",
            pass(max_streams >= 512 && stalls == 0)
        );
        if let Some(r) = self
            .grpc
            .unary
            .iter()
            .find(|r| r.concurrency == 64)
            .or(self.grpc.unary.last())
        {
            let ratio = r.grpc_cpu_us / r.http_cpu_us.max(f64::EPSILON);
            let _ = writeln!(
                o,
                "| gRPC unary CPU per request ≤ 1.5× HTTP's (concurrency {}) | {:.1} vs {:.1} µs ({ratio:.2}×) | {} |",
                r.concurrency,
                r.grpc_cpu_us,
                r.http_cpu_us,
                pass(ratio <= 1.5)
            );
        }
        if let Some((n, _, g)) = self.grpc.streams.first() {
            let _ = writeln!(
                o,
                "| {n} concurrent gRPC streams with zero stalls | {} stalled | {} |",
                g.stalled,
                pass(g.stalled == 0)
            );
        }
        let _ = writeln!(
            o,
            "| idle RSS < 30 MB | {:.1} MiB | {} |",
            self.idle_rss,
            pass(self.idle_rss < 30.0)
        );
        let _ = writeln!(
            o,
            "| RSS under load < 100 MB (peak) | {:.1} MiB | {} |",
            self.peak_rss,
            pass(self.peak_rss < 100.0)
        );
        let added_ttft_512 = self
            .streams
            .iter()
            .find(|(n, _, _)| *n == 512)
            .map_or(f64::NAN, |(_, d, g)| {
                (g.ttft_us.p99 - d.ttft_us.p99) / 1000.0
            });
        let _ = writeln!(
            o,
            "| added TTFT p99 ≤ 5 ms, 512 streams opened at once | {added_ttft_512:.1} ms | {} |",
            pass(added_ttft_512 <= 5.0)
        );
        if let Some(seed) = self.seed {
            let g = &seed.gateway;
            let ok_pct = 100.0 * g.ok as f64 / g.sent.max(1) as f64;
            let _ = writeln!(
                o,
                "| seed benchmark ({} RPS, {} ms upstream): 100 % success | {ok_pct:.2} % ({} of {}) | {} |",
                self.args.seed_rate,
                self.args.seed_latency_ms,
                g.ok,
                g.sent,
                pass(g.errors == 0 && g.sent > 0)
            );
            let _ = writeln!(
                o,
                "| seed benchmark: zero requests > 100 ms slower than the upstream | {} through the gateway ({} direct) | {} |",
                g.slow,
                seed.direct.slow,
                pass(g.slow == 0)
            );
            let _ = writeln!(
                o,
                "| seed benchmark: peak RSS ≤ 131 MB (a tenth of Bifrost's 1,313 MB) | {:.1} MiB | {} |",
                seed.peak_rss,
                pass(seed.peak_rss * 1.048_576 <= 131.0)
            );
        }
        if let [on, off, ..] = self.spin {
            let _ = writeln!(
                o,
                "| spinning: idle gateway uses no CPU; streams cost no more CPU per chunk with it on | idle {:.1} ms / 2 s; {:.1} vs {:.1} µs per chunk (on vs off) | {} |",
                on.idle_cpu_ms,
                on.cpu_us_per_chunk,
                off.cpu_us_per_chunk,
                pass(
                    on.idle_cpu_ms <= 20.0
                        && on.cpu_us_per_chunk <= off.cpu_us_per_chunk * 1.25 + 5.0
                )
            );
        }
        let _ = writeln!(
            o,
            "\nMax RPS through the gateway (instant upstream): **{max_rps:.0}**.\n"
        );

        let _ = writeln!(o, "## Added latency, throughput and CPU\n");
        added_table(&mut o, "Instant upstream", self.instant);
        added_table(&mut o, "Upstream with 20 ms latency", self.slow);
        if let Some(p) = self.static_pair {
            added_table(
                &mut o,
                "Static upstream (nginx, fixed completion)",
                std::slice::from_ref(p),
            );
            let ratios: Vec<String> = self
                .static_ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect();
            let _ = writeln!(
                o,
                "RPS and CPU above are pooled over {} interleaved rounds of {} s each side (latencies: the median round). Per-round RPS ratios, low to high: {}.\n",
                self.static_ratios.len(),
                STATIC_ROUND_SECS,
                ratios.join(", ")
            );
        }

        let _ = writeln!(o, "## Concurrent streams (20 chunks, 50 ms apart)\n");
        let _ = writeln!(
            o,
            "| streams | direct TTFT p50 / p99 (µs) | gateway TTFT p50 / p99 (µs) | **added TTFT p50 / p99 (µs)** | gateway max gap p99 (ms) | completed | stalled |"
        );
        let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|");
        for (n, d, g) in self.streams {
            let _ = writeln!(
                o,
                "| {n} | {:.0} / {:.0} | {:.0} / {:.0} | **{:.0} / {:.0}** | {:.1} | {} | {} |",
                d.ttft_us.p50,
                d.ttft_us.p99,
                g.ttft_us.p50,
                g.ttft_us.p99,
                g.ttft_us.p50 - d.ttft_us.p50,
                g.ttft_us.p99 - d.ttft_us.p99,
                g.max_gap_us.p99 / 1000.0,
                g.completed,
                g.stalled
            );
        }

        render_grpc(&mut o, self.grpc);

        if !self.spin.is_empty() {
            let _ = writeln!(o, "\n## Spinning before sleep (`-spin-us`)\n");
            let _ = writeln!(
                o,
                "A fresh gateway per row, instant upstream. Idle CPU over 2 s; 32 streams of 100 chunks 20 ms apart (gateway CPU ÷ 3,200 chunks); then concurrency 1 for {} s against the instant upstream and against the 20 ms one (gateway CPU ÷ requests). CPU time from `/proc/<pid>/task/*/schedstat` (ns).\n",
                self.args.duration
            );
            let _ = writeln!(
                o,
                "| `-spin-us` | idle CPU (ms / 2 s) | CPU per streamed chunk (µs) | CPU per request, c=1 (µs) | c=1 latency p50 / p99 (µs) | c=1 RPS | CPU per request, c=1, 20 ms upstream (µs) |"
            );
            let _ = writeln!(o, "|---:|---:|---:|---:|---:|---:|---:|");
            for r in self.spin {
                let _ = writeln!(
                    o,
                    "| {} | {:.1} | {:.1} | {:.1} | {:.0} / {:.0} | {:.0} | {:.1} |",
                    r.spin_us,
                    r.idle_cpu_ms,
                    r.cpu_us_per_chunk,
                    r.cpu_us_per_req,
                    r.c1.latency_us.p50,
                    r.c1.latency_us.p99,
                    r.c1.rps,
                    r.cpu_us_per_slow_req
                );
            }
        }

        if let Some(seed) = self.seed {
            let _ = writeln!(o, "\n## The seed's benchmark (open loop)\n");
            let _ = writeln!(
                o,
                "Bifrost reports 5,000 RPS against a ~1.5 s upstream with 100 % success and 1,313 MB peak memory (t3.medium). Here: `bifrost-bench open` (like `oha -q {} -c {} -z {}s`): requests scheduled at {} per second whatever the answers do, {} workers with a connection each, upstream `mock-upstream --latency-ms {}`; first straight to the upstream, then through a fresh gateway (provider concurrency {}). Slow = answered more than {} ms after it was sent.\n",
                self.args.seed_rate,
                self.args.seed_connections,
                self.args.seed_secs,
                self.args.seed_rate,
                self.args.seed_connections,
                self.args.seed_latency_ms,
                self.args.seed_connections + 1000,
                self.args.seed_latency_ms + 100
            );
            let _ = writeln!(
                o,
                "| | sent | ok | errors | slow | latency p50 / p99 / max (ms) | max in flight | late starts |"
            );
            let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|");
            for (name, r) in [("direct", &seed.direct), ("through gateway", &seed.gateway)] {
                let _ = writeln!(
                    o,
                    "| {name} | {} | {} | {} | {} | {:.0} / {:.0} / {:.0} | {} | {} |",
                    r.sent,
                    r.ok,
                    r.errors,
                    r.slow,
                    r.latency_us.p50 / 1000.0,
                    r.latency_us.p99 / 1000.0,
                    r.latency_us.max / 1000.0,
                    r.max_in_flight,
                    r.late_starts
                );
            }
            let _ = writeln!(
                o,
                "\nGateway RSS idle {:.1} MiB, peak {:.1} MiB (VmHWM of a gateway that served only this run); gateway CPU {:.1} µs per request.",
                seed.idle_rss, seed.peak_rss, seed.cpu_us_per_req
            );
        }

        let _ = writeln!(o, "\n## Memory\n");
        let _ = writeln!(
            o,
            "Idle RSS {:.1} MiB; peak RSS after the load and stream runs {:.1} MiB.\n",
            self.idle_rss, self.peak_rss
        );
        let _ = writeln!(
            o,
            "Steady load (concurrency 16, 20 ms upstream) for {} s, RSS sampled every 10 s:\n",
            self.args.soak
        );
        let _ = writeln!(o, "| t (s) | RSS (MiB) |\n|---:|---:|");
        for (t, rss) in self.trend {
            let _ = writeln!(o, "| {t} | {rss:.1} |");
        }
        if let (Some(first), Some(last)) = (self.trend.get(1), self.trend.last()) {
            let _ = writeln!(
                o,
                "\nTrend from the first loaded sample to the last: {:+.1} MiB.",
                last.1 - first.1
            );
        }

        for (name, rows) in self.peers {
            let _ = writeln!(
                o,
                "\n## Peer: {name} (same upstream, same load, same machine)\n"
            );
            added_table(&mut o, &format!("{name}, instant upstream"), rows);
        }
        o
    }
}
