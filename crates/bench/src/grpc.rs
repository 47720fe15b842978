//! gRPC beside HTTP on the same engine: one `bifrost-http` serving both (`-grpc-port`), the
//! same instant upstream, the same load shapes. Added latency and gateway CPU per request
//! for unary calls at a few concurrencies, and N concurrent server-streaming calls.

use std::time::{Duration, Instant};

use bifrost_core::schemas::{BifrostRequest, ChatMessage, ProviderKey, Role};
use bifrost_transport_grpc::convert;
use bifrost_transport_grpc::pb::bifrost_service_client::BifrostServiceClient;
use bifrost_transport_grpc::pb::{ChatCompletionRequest, ChatCompletionStreamRequest};
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};

use crate::load::{LoadResult, OneStream, Percentiles, StreamResult, closed_loop};
use crate::procstat::cpu_time;

/// Unary calls share this many HTTP/2 connections (as a pooled gRPC client would); each
/// carries its share of the concurrent calls as multiplexed streams.
const CHANNELS: usize = 4;

/// One concurrency level: HTTP and gRPC through the same gateway, and straight to the
/// upstream over HTTP.
pub struct UnaryRow {
    /// Calls in flight.
    pub concurrency: usize,
    /// Straight to the upstream (HTTP).
    pub direct: LoadResult,
    /// Through the gateway over HTTP.
    pub http: LoadResult,
    /// Gateway CPU per HTTP request (µs).
    pub http_cpu_us: f64,
    /// Through the gateway over gRPC.
    pub grpc: LoadResult,
    /// Gateway CPU per gRPC call (µs).
    pub grpc_cpu_us: f64,
}

/// The chat request both transports send (the HTTP body is its JSON form).
fn request(model: &str, extra: Value) -> BifrostRequest {
    let mut req = BifrostRequest::chat(
        ProviderKey::OpenAI,
        model,
        vec![ChatMessage::text(Role::User, crate::suite::PROMPT)],
    );
    req.params.max_tokens = Some(32);
    if let Value::Object(m) = extra {
        req.params.extra.extend(m);
    }
    req
}

async fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?)
}

/// A closed loop of unary `ChatCompletion` calls: `concurrency` workers over
/// [`CHANNELS`] connections, for `duration` after `warmup`.
pub async fn grpc_closed_loop(
    url: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let msg: ChatCompletionRequest = convert::chat_request_to(request("gpt-4o-mini", json!({})))?;
    let mut clients = Vec::new();
    for _ in 0..CHANNELS.min(concurrency) {
        clients.push(BifrostServiceClient::new(channel(url).await?));
    }
    let start = Instant::now();
    let (measure_from, end) = (start + warmup, start + warmup + duration);
    let mut tasks = Vec::with_capacity(concurrency);
    for i in 0..concurrency {
        let (mut client, msg) = (clients[i % clients.len()].clone(), msg.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::with_capacity(4096), 0u64);
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let ok = client.chat_completion(msg.clone()).await.is_ok();
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= end {
                    if ok {
                        lat.push(u32::try_from((t1 - t0).as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (lat, e) = t.await?;
        all.extend(lat);
        errors += e;
    }
    let requests = all.len() as u64;
    Ok(LoadResult {
        requests,
        errors,
        rps: requests as f64 / duration.as_secs_f64(),
        latency_us: Percentiles::of(&mut all),
    })
}

/// Gateway CPU per request (µs) while `run` served its requests.
async fn with_cpu<F: std::future::Future<Output = anyhow::Result<LoadResult>>>(
    pid: u32,
    run: F,
) -> anyhow::Result<(LoadResult, f64)> {
    let c0 = cpu_time(pid).unwrap_or_default();
    let t0 = Instant::now();
    let r = run.await?;
    let cpu = cpu_time(pid).unwrap_or_default().saturating_sub(c0);
    let served = r.rps * t0.elapsed().as_secs_f64();
    Ok((r, cpu.as_secs_f64() * 1e6 / served.max(1.0)))
}

/// Unary rows at each concurrency: direct, HTTP through the gateway, gRPC through it.
pub async fn unary_rows(
    upstream: &str,
    http_url: &str,
    grpc_url: &str,
    pid: u32,
    concurrency: &[usize],
    duration: Duration,
) -> anyhow::Result<Vec<UnaryRow>> {
    let warm = Duration::from_secs(1);
    let body = |model: &str| {
        let mut v = json!({"model": model, "max_tokens": 32,
                           "messages": [{"role": "user", "content": crate::suite::PROMPT}]});
        bytes::Bytes::from(std::mem::take(&mut v).to_string())
    };
    let mut rows = Vec::new();
    for &c in concurrency {
        eprintln!("gRPC beside HTTP, concurrency {c}");
        let direct = closed_loop(
            &format!("{upstream}/v1/chat/completions"),
            body("gpt-4o-mini"),
            c,
            warm,
            duration,
        )
        .await?;
        let http_endpoint = format!("{http_url}/v1/chat/completions");
        let (http, http_cpu_us) = with_cpu(
            pid,
            closed_loop(
                &http_endpoint,
                body("openai/gpt-4o-mini"),
                c,
                warm,
                duration,
            ),
        )
        .await?;
        let (grpc, grpc_cpu_us) =
            with_cpu(pid, grpc_closed_loop(grpc_url, c, warm, duration)).await?;
        rows.push(UnaryRow {
            concurrency: c,
            direct,
            http,
            http_cpu_us,
            grpc,
            grpc_cpu_us,
        });
    }
    Ok(rows)
}

/// Starts `n` `ChatCompletionStream` calls at once (over one connection per 100 calls, as
/// HTTP/2 servers commonly cap streams per connection) and follows each to its end.
pub async fn grpc_streams(
    url: &str,
    extra: Value,
    n: usize,
    stall: Duration,
) -> anyhow::Result<StreamResult> {
    let msg: ChatCompletionStreamRequest =
        convert::chat_stream_request_to(request("gpt-4o-mini", extra))?;
    let mut clients = Vec::new();
    for _ in 0..n.div_ceil(100).max(1) {
        clients.push(BifrostServiceClient::new(channel(url).await?));
    }
    let micros = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (mut client, msg) = (clients[i % clients.len()].clone(), msg.clone());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let mut stream = client.chat_completion_stream(msg).await.ok()?.into_inner();
            let (mut first, mut last, mut max_gap) = (None, t0, Duration::ZERO);
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {
                        let now = Instant::now();
                        match first {
                            None => first = Some(now - t0),
                            Some(_) => max_gap = max_gap.max(now - last),
                        }
                        last = now;
                    }
                    Ok(None) => break,
                    Err(_) => return None,
                }
            }
            Some(OneStream {
                ttft: micros(first?),
                max_gap: micros(max_gap),
                total: micros(last - t0),
                done: true,
            })
        }));
    }
    let mut streams = Vec::with_capacity(n);
    for t in tasks {
        streams.push(t.await?);
    }
    Ok(StreamResult::of(streams, stall))
}
