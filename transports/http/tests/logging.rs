//! The logging plugin in the real `bifrost-http` binary: requests of every kind recorded and
//! queryable at `/api/logs`, Bifrost's `logs_store` block under `-app-dir`, a dead log
//! database that neither fails nor slows requests (drops counted in `/metrics`), and the
//! shutdown flush. Store-level tests (both SQLite and PostgreSQL) live in the plugin crate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

fn logging_config(upstream: &str, store: Value) -> Value {
    let mut c = config(upstream);
    c["plugins"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "logging", "enabled": true, "config": store}));
    c
}

async fn get_json(url: &str) -> (u16, Value) {
    let resp = client().get(url).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Polls `/api/logs` until it lists `n` entries.
async fn wait_for_logs(gw: &str, n: usize) -> Vec<Value> {
    let t = Instant::now();
    loop {
        let (status, body) = get_json(&format!("{gw}/api/logs?limit=100")).await;
        if status == 200 && body["logs"].as_array().is_some_and(|l| l.len() >= n) {
            return body["logs"].as_array().unwrap().clone();
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{n} log entries never showed up: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn requests_are_logged_and_queryable() {
    let mock = mock().await;
    let dir = TempDir::new();
    let gw = Gateway::start(&logging_config(
        &mock.url(),
        json!({"type": "sqlite", "config": {"path": dir.0.join("logs.db")},
               "writer": {"batch_interval": "20ms"}, "content": "full"}),
    ));
    let url = format!("{}/v1/chat/completions", gw.url);
    let resp = client()
        .post(&url)
        .header("x-bf-vk", "sk-bf-virtualkey-0001")
        .header("x-request-id", "req-plain")
        .json(&chat_body("openai/gpt-4o-mini", "log me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = chat_body("openai/gpt-4o-mini", "stream me");
    body["stream"] = json!(true);
    let resp = client()
        .post(&url)
        .header("x-request-id", "req-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sse_events(resp).await.last().map(String::as_str),
        Some("[DONE]")
    );
    let resp = client()
        .post(&url)
        .header("x-request-id", "req-error")
        .json(&{
            let mut b = chat_body("openai/gpt-4o-mini", "fail me");
            b["mock"] = json!({"status": 400});
            b
        })
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // The drop-in routes are logged too.
    let (status, _, _) = post(
        &format!("{}/anthropic/v1/messages", gw.url),
        &json!({"model": "openai/gpt-4o-mini", "max_tokens": 16,
                "messages": [{"role": "user", "content": "via anthropic"}]}),
    )
    .await;
    assert_eq!(status, 200);

    let logs = wait_for_logs(&gw.url, 4).await;
    let by_id = |id: &str| logs.iter().find(|l| l["id"] == id).cloned().unwrap();
    let plain = by_id("req-plain");
    assert_eq!(plain["transport"], "http");
    assert_eq!(plain["status"], "success");
    assert_eq!(plain["provider"], "openai");
    assert_eq!(plain["virtual_key"], "sk-bf-…0001");
    assert!(plain["input"].as_str().unwrap().contains("log me"));
    assert!(
        plain["output"].as_str().unwrap().contains("log me"),
        "{plain}"
    );
    assert!(plain["usage"]["total_tokens"].as_i64().unwrap() > 0);
    let stream = by_id("req-stream");
    assert_eq!(stream["stream"], true);
    assert_eq!(stream["output"], "stream me");
    assert!(stream["ttft_ms"].as_f64().is_some());
    let err = by_id("req-error");
    assert_eq!(err["status"], "error");
    assert_eq!(err["status_code"], 400);
    assert!(logs.iter().any(|l| {
        l["input"]
            .as_str()
            .is_some_and(|i| i.contains("via anthropic"))
    }));

    let (status, page) = get_json(&format!("{}/api/logs?status=error", gw.url)).await;
    assert_eq!(status, 200);
    assert_eq!(page["logs"].as_array().unwrap().len(), 1);
    let (_, page) = get_json(&format!("{}/api/logs?content_search=STREAM%20ME", gw.url)).await;
    assert_eq!(page["logs"][0]["id"], "req-stream", "{page}");
    let (_, page) = get_json(&format!("{}/api/logs?limit=2", gw.url)).await;
    assert_eq!(page["has_more"], true);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = get_json(&format!("{}/api/logs?limit=2&cursor={cursor}", gw.url)).await;
    assert_eq!(next["logs"].as_array().unwrap().len(), 2);
    assert_eq!(next["has_more"], false);

    let (status, stats) = get_json(&format!("{}/api/logs/stats", gw.url)).await;
    assert_eq!(status, 200);
    assert_eq!(stats["total"], 4, "{stats}");
    assert_eq!(stats["errors"], 1);
    assert!(stats["latency_ms"]["p99"].as_f64().unwrap() > 0.0);

    // Errors are JSON in Bifrost's shape with the right status.
    let (status, e) = get_json(&format!("{}/api/logs?limit=5000", gw.url)).await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "limit");
    let (status, _) = get_json(&format!("{}/api/logs/no-such-request", gw.url)).await;
    assert_eq!(status, 404);
    let resp = client()
        .delete(format!("{}/api/logs", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn logs_store_block_logs_under_the_app_dir() {
    let mock = mock().await;
    let app = TempDir::new();
    let mut cfg = config(&mock.url());
    cfg["logs_store"] = json!({"enabled": true, "type": "sqlite",
        "config": {"path": "./logs.db"}, "writer": {"batch_interval": "20ms"}});
    let gw = Gateway::start_with(&cfg, &["-app-dir", app.0.to_str().unwrap()], &[]);
    let (status, _, _) = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("openai/gpt-4o-mini", "hi"),
    )
    .await;
    assert_eq!(status, 200);
    wait_for_logs(&gw.url, 1).await;
    assert!(app.0.join("logs.db").exists());
}

/// A log database that accepts connections and never answers: every request still succeeds
/// at its usual speed, and the entries that do not fit the queue are counted in `/metrics`.
#[tokio::test]
async fn dead_log_database_neither_fails_nor_slows_requests() {
    let mock = mock().await;
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = hole.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in hole.incoming().take(64) {
            conns.push(c);
        }
    });
    let plain = Gateway::start(&config(&mock.url()));
    let logged = Gateway::start(&logging_config(
        &mock.url(),
        json!({"type": "postgres", "config": {"url": format!("postgres://u:p@{addr}/db")},
               "writer": {"write_queue_capacity": 16, "max_batch_size": 4}}),
    ));
    async fn run(gw: &str, n: usize) -> Duration {
        let t = Instant::now();
        for _ in 0..n {
            let (status, _, body) = post(
                &format!("{gw}/v1/chat/completions"),
                &chat_body("openai/gpt-4o-mini", "hi"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        t.elapsed()
    }
    // Warm both up, then compare.
    run(&plain.url, 10).await;
    run(&logged.url, 10).await;
    let without = run(&plain.url, 120).await;
    let with = run(&logged.url, 120).await;
    assert!(
        with < without * 2 + Duration::from_millis(300),
        "120 requests took {with:?} with a dead log database vs {without:?} without logging"
    );
    let metrics = client()
        .get(format!("{}/metrics", logged.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dropped: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("bifrost_log_entries_dropped_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(dropped >= 90.0, "dropped {dropped}:\n{metrics}");
    let (status, e) = get_json(&format!("{}/api/logs", logged.url)).await;
    assert_eq!(status, 503, "{e}");
    drop(held);
}

/// Entries still queued at SIGTERM are written before the process exits.
#[tokio::test]
async fn shutdown_flushes_queued_entries() {
    let mock = mock().await;
    let dir = TempDir::new();
    let store = json!({"type": "sqlite", "config": {"path": dir.0.join("logs.db")},
        "writer": {"batch_interval": "1h"}});
    let mut gw = Gateway::start(&logging_config(&mock.url(), store.clone()));
    for i in 0..25 {
        let (status, _, _) = post(
            &format!("{}/v1/chat/completions", gw.url),
            &chat_body("openai/gpt-4o-mini", &format!("n{i}")),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, page) = get_json(&format!("{}/api/logs", gw.url)).await;
    assert_eq!(
        page["logs"].as_array().unwrap().len(),
        0,
        "written before the interval"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    let t = Instant::now();
    while gw.child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let again = Gateway::start(&logging_config(&mock.url(), store));
    let (_, page) = get_json(&format!("{}/api/logs?limit=100", again.url)).await;
    assert_eq!(page["logs"].as_array().unwrap().len(), 25, "{page}");
}
