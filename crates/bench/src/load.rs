//! The load generator: a fixed number of connections sending back to back (closed loop), or
//! N concurrent one-shot streams. One thread, hyper's HTTP/1.1 client with keep-alive and
//! `TCP_NODELAY`, so the driver itself stays small next to what it measures.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client(pool: usize) -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(conn)
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (µs); sorts in place.
    pub fn of(samples: &mut [u32]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |p: f64| {
            let idx = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            f64::from(samples[idx])
        };
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: f64::from(samples[samples.len() - 1]),
        }
    }
}

/// What a closed-loop run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// Successful requests counted (after warm-up).
    pub requests: u64,
    /// Failed requests (non-2xx or transport error).
    pub errors: u64,
    /// Successful requests per second.
    pub rps: f64,
    /// Whole-response latency.
    pub latency_us: Percentiles,
}

/// A closed-loop run: `concurrency` workers, each sending the next request when the last
/// answered, for `duration` after `warmup`.
pub async fn closed_loop(
    url: &str,
    body: Bytes,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let uri: hyper::Uri = url.parse().context("bad url")?;
    let client = client(concurrency);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (client, uri, body) = (client.clone(), uri.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut errors = 0u64;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let ok = one_request(&client, &uri, body.clone()).await;
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
    let mut all = Vec::new();
    let mut errors = 0;
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

async fn one_request(client: &HttpClient, uri: &hyper::Uri, body: Bytes) -> bool {
    let Ok(req) = Request::post(uri.clone())
        .header("content-type", "application/json")
        .body(Full::new(body))
    else {
        return false;
    };
    match client.request(req).await {
        Ok(resp) => {
            let ok = resp.status().is_success();
            ok && resp.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

/// What N concurrent streams measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamResult {
    /// Streams started.
    pub streams: usize,
    /// Streams that ended with `[DONE]` and no gap over the stall threshold.
    pub completed: usize,
    /// Streams with a gap between chunks over the threshold, or that failed or never finished.
    pub stalled: usize,
    /// Time to first byte of the body.
    pub ttft_us: Percentiles,
    /// Largest gap between two body chunks, per stream.
    pub max_gap_us: Percentiles,
    /// Whole-stream time.
    pub total_us: Percentiles,
}

/// Starts `n` streams at once and follows each to its end.
pub async fn concurrent_streams(
    url: &str,
    body: Bytes,
    n: usize,
    stall: Duration,
) -> anyhow::Result<StreamResult> {
    let uri: hyper::Uri = url.parse().context("bad url")?;
    let client = client(n);
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let (client, uri, body) = (client.clone(), uri.clone(), body.clone());
        tasks.push(tokio::spawn(
            async move { one_stream(&client, uri, body).await },
        ));
    }
    let mut streams = Vec::with_capacity(n);
    for t in tasks {
        streams.push(t.await?);
    }
    Ok(StreamResult::of(streams, stall))
}

impl StreamResult {
    /// The result of `streams` (`None`: failed before its end); a stream completed when it
    /// ended cleanly with no gap over `stall`.
    pub fn of(streams: Vec<Option<OneStream>>, stall: Duration) -> Self {
        let n = streams.len();
        let (mut ttft, mut gaps, mut totals) = (Vec::new(), Vec::new(), Vec::new());
        let (mut completed, mut stalled) = (0, 0);
        for s in streams {
            match s {
                Some(s) => {
                    ttft.push(s.ttft);
                    gaps.push(s.max_gap);
                    totals.push(s.total);
                    if s.done && Duration::from_micros(u64::from(s.max_gap)) <= stall {
                        completed += 1;
                    } else {
                        stalled += 1;
                    }
                }
                None => stalled += 1,
            }
        }
        Self {
            streams: n,
            completed,
            stalled,
            ttft_us: Percentiles::of(&mut ttft),
            max_gap_us: Percentiles::of(&mut gaps),
            total_us: Percentiles::of(&mut totals),
        }
    }
}

/// What one stream measured (µs).
pub struct OneStream {
    /// Time to the first body chunk.
    pub ttft: u32,
    /// Largest gap between two chunks.
    pub max_gap: u32,
    /// Whole stream.
    pub total: u32,
    /// It ended as a finished stream should (`[DONE]`, or the transport's clean end).
    pub done: bool,
}

async fn one_stream(client: &HttpClient, uri: hyper::Uri, body: Bytes) -> Option<OneStream> {
    let micros = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .ok()?;
    let t0 = Instant::now();
    let resp = client.request(req).await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut body = resp.into_body();
    let mut first = None;
    let mut last = t0;
    let mut max_gap = Duration::ZERO;
    let mut tail = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.ok()?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        let now = Instant::now();
        if first.is_none() {
            first = Some(now - t0);
        } else {
            max_gap = max_gap.max(now - last);
        }
        last = now;
        tail.extend_from_slice(data);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }
    let done = tail.windows(6).any(|w| w == b"[DONE]");
    Some(OneStream {
        ttft: micros(first?),
        max_gap: micros(max_gap),
        total: micros(last - t0),
        done,
    })
}

/// What an open-loop run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpenResult {
    /// Requests sent.
    pub sent: u64,
    /// Requests answered 2xx with a whole body.
    pub ok: u64,
    /// Requests that failed (non-2xx, transport error, broken body).
    pub errors: u64,
    /// Successful answers more than `slow_over` after the request was sent.
    pub slow: u64,
    /// Request start times that came over 10 ms after their schedule (no worker free).
    pub late_starts: u64,
    /// Whole-response latency of the successful requests.
    pub latency_us: Percentiles,
    /// Largest number of requests in flight at once.
    pub max_in_flight: u64,
}

/// An open-loop run (`oha -q rate -c connections -z duration`): requests are scheduled at
/// `rate` per second whatever the answers do; `connections` workers, each with a connection
/// of its own, take the next scheduled request when free. Counts answers slower than
/// `slow_over`. `on_tick` runs every 100 ms (e.g. to sample the server's memory).
pub async fn open_loop(
    url: &str,
    body: Bytes,
    rate: u64,
    connections: usize,
    duration: Duration,
    slow_over: Duration,
    mut on_tick: impl FnMut(),
) -> anyhow::Result<OpenResult> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let uri: hyper::Uri = url.parse().context("bad url")?;
    let addr = format!(
        "{}:{}",
        uri.host().context("no host")?,
        uri.port_u16().unwrap_or(80)
    );
    let total = rate.saturating_mul(duration.as_secs()).max(1);
    let next = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (uri, body, addr) = (uri.clone(), body.clone(), addr.clone());
        let (next, in_flight, max_in_flight) =
            (next.clone(), in_flight.clone(), max_in_flight.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut errors, mut slow, mut late) = (0u64, 0u64, 0u64);
            let mut conn: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                let t0 = Instant::now();
                if t0 - due > Duration::from_millis(10) {
                    late += 1;
                }
                let n = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                max_in_flight.fetch_max(n, Ordering::Relaxed);
                let ok = send_on(&mut conn, &addr, &uri, body.clone()).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                let took = t0.elapsed();
                if ok {
                    lat.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                    if took > slow_over {
                        slow += 1;
                    }
                } else {
                    errors += 1;
                    conn = None;
                }
            }
            (lat, errors, slow, late)
        }));
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut all = Vec::new();
    let mut out = OpenResult::default();
    let mut tasks = tasks.into_iter();
    let mut current = tasks.next();
    while let Some(t) = current.as_mut() {
        tokio::select! {
            r = t => {
                let (lat, e, s, l) = r?;
                all.extend(lat);
                out.errors += e;
                out.slow += s;
                out.late_starts += l;
                current = tasks.next();
            }
            _ = tick.tick() => on_tick(),
        }
    }
    out.ok = all.len() as u64;
    out.sent = out.ok + out.errors;
    out.latency_us = Percentiles::of(&mut all);
    out.max_in_flight = max_in_flight.load(Ordering::Relaxed);
    Ok(out)
}

/// One request on the worker's own connection (opened, or opened again after a failure).
async fn send_on(
    conn: &mut Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    addr: &str,
    uri: &hyper::Uri,
    body: Bytes,
) -> bool {
    if conn.as_ref().is_none_or(|c| c.is_closed()) {
        let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
            return false;
        };
        let _ = stream.set_nodelay(true);
        let Ok((send, driver)) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await
        else {
            return false;
        };
        tokio::spawn(driver);
        *conn = Some(send);
    }
    let Some(c) = conn.as_mut() else {
        return false;
    };
    if c.ready().await.is_err() {
        return false;
    }
    let Ok(req) = Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header("host", addr)
        .header("content-type", "application/json")
        .body(Full::new(body))
    else {
        return false;
    };
    match c.send_request(req).await {
        Ok(resp) => resp.status().is_success() && resp.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&mut []).p99, 0.0);
    }
}
