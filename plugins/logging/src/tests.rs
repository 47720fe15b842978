//! The plugin against a real engine and mock upstream, on SQLite always and on PostgreSQL
//! when one is reachable (`BIFROST_TEST_POSTGRES_URL`, else `.ci/postgres.sh`'s default; CI
//! sets the variable, and a configured but unreachable server fails instead of skipping).

use std::time::{Duration, Instant};

use bifrost_core::schemas::{
    BifrostRequest, ChatMessage, Fallback, ProviderKey, Role, StreamOptions,
};
use bifrost_core::{ApiRequest, Bifrost, BifrostConfig};
use bifrost_mock_upstream::{MockConfig, MockServer};
use futures::StreamExt;
use serde_json::{Value, json};

use super::*;

/// Where `.ci/postgres.sh` puts its server.
const DEFAULT_PG_URL: &str = "postgres://bifrost:bifrost@127.0.0.1:55432/bifrost_test";

/// A store for one test: a SQLite file in a temp dir, or a fresh schema in PostgreSQL.
struct TestStore {
    config: Value,
    dir: Option<std::path::PathBuf>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn sqlite_store() -> TestStore {
    let dir = std::env::temp_dir().join(format!(
        "bifrost-logging-{}-{}",
        std::process::id(),
        fastrand_u64()
    ));
    TestStore {
        config: json!({"type": "sqlite", "config": {"path": dir.join("logs.db")}}),
        dir: Some(dir),
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// A PostgreSQL store in a schema of its own, or `None` (with a message) when no server is
/// reachable and none was configured.
async fn postgres_store() -> Option<TestStore> {
    let configured = std::env::var("BIFROST_TEST_POSTGRES_URL").ok();
    let url = configured
        .clone()
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned());
    let conn = tokio::time::timeout(Duration::from_secs(5), sqlx::PgPool::connect(&url)).await;
    let pool = match conn {
        Ok(Ok(p)) => p,
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            if configured.is_some() || std::env::var_os("CI").is_some() {
                panic!("PostgreSQL at {url} is configured but unreachable: {why}");
            }
            eprintln!(
                "SKIPPED: no PostgreSQL reachable at {url} ({why}); run `bash .ci/postgres.sh` \
                 and set BIFROST_TEST_POSTGRES_URL to test the PostgreSQL store"
            );
            return None;
        }
    };
    let schema = format!("t_{:x}", fastrand_u64());
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(TestStore {
        config: json!({"type": "postgres",
            "config": {"url": format!("{url}{sep}options[search_path]={schema}")}}),
        dir: None,
    })
}

use sqlx::AssertSqlSafe;

/// The stores to run a test on.
async fn stores() -> Vec<(&'static str, TestStore)> {
    let mut v = vec![("sqlite", sqlite_store())];
    if let Some(pg) = postgres_store().await {
        v.push(("postgres", pg));
    }
    v
}

fn plugin_with(store: &TestStore, extra: Value) -> Arc<LoggingPlugin> {
    let mut cfg = store.config.clone();
    cfg["writer"] = json!({"batch_interval": "20ms"});
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    Arc::new(LoggingPlugin::from_json(&cfg).unwrap())
}

/// Waits until the store is connected (PostgreSQL connects in the background).
async fn ready(p: &LoggingPlugin) {
    let t = Instant::now();
    while !p.store_ready() {
        assert!(t.elapsed() < Duration::from_secs(10), "store not ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn engine(mock: &MockServer, plugin: Arc<LoggingPlugin>) -> Bifrost {
    let cfg = json!({"providers": {
        "openai": {"keys": [{"value": "sk-a", "models": []}],
            "network_config": {"base_url": mock.url(), "max_retries": 1,
                "retry_backoff_initial": 1, "retry_backoff_max": 2}},
        "groq": {"keys": [{"value": "sk-g", "models": []}],
            "network_config": {"base_url": mock.url(), "max_retries": 0}}
    }});
    Bifrost::builder(BifrostConfig::from_json(&cfg.to_string()).unwrap())
        .plugin(plugin)
        .build()
        .unwrap()
}

fn chat(provider: &str, model: &str, text: &str) -> BifrostRequest {
    BifrostRequest::chat(
        ProviderKey::parse(provider),
        model,
        vec![ChatMessage::text(Role::User, text)],
    )
}

async fn get(p: &LoggingPlugin, path: &str, query: &[(&str, &str)]) -> Result<Value, BifrostError> {
    p.logs_api()
        .call(ApiRequest {
            method: http::Method::GET,
            path: path.to_owned(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: None,
        })
        .await
}

async fn logs(p: &LoggingPlugin, query: &[(&str, &str)]) -> Vec<Value> {
    p.flush().await;
    get(p, "", query).await.unwrap()["logs"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn records_answers_fallbacks_retries_errors_and_streams() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    for (name, store) in stores().await {
        let p = plugin_with(&store, json!({"content": "full"}));
        ready(&p).await;
        let gw = engine(&mock, Arc::clone(&p)).await;

        // A relayed (wire body) answer: output is read from the raw bytes.
        let mut ctx = RequestContext::new(format!("{name}-ok"));
        ctx.wire_body = true;
        ctx.transport = "http";
        ctx.virtual_key = Some("sk-bf-0123456789abcd".into());
        let mut req = chat("openai", "gpt-4o-mini", "hello logs");
        req.params.user = Some("u-7".into());
        let r = gw.chat_completion(&mut ctx, req).await.unwrap();
        assert!(r.wire_body.is_some(), "{name}: the relay path stays on");

        // A retried then fallen-back request.
        let mut req = chat("openai", "gpt-4o-mini", "fallback please");
        req.params.extra.insert(
            "mock".into(),
            json!({"status": 503, "scenario": format!("{name}-fb"), "fail_times": 2}),
        );
        req.fallbacks = vec![Fallback::parse("groq/llama-3.1-8b-instant").unwrap()];
        let mut ctx = RequestContext::new(format!("{name}-fb"));
        let r = gw.chat_completion(&mut ctx, req).await.unwrap();
        assert_eq!(r.extra_fields.fallback_index, Some(0));
        drop(ctx);

        // A final error (no fallbacks): written when the context goes.
        let mut req = chat("openai", "gpt-4o-mini", "fail");
        req.params
            .extra
            .insert("mock".into(), json!({"status": 400}));
        let mut ctx = RequestContext::new(format!("{name}-err"));
        assert!(gw.chat_completion(&mut ctx, req).await.is_err());
        drop(ctx);

        // A stream with usage.
        let mut req = chat("openai", "gpt-4o-mini", "one two three");
        req.params.stream_options = Some(StreamOptions {
            include_usage: Some(true),
            ..StreamOptions::default()
        });
        let mut ctx = RequestContext::new(format!("{name}-stream"));
        let s = gw.chat_completion_stream(&mut ctx, req).await.unwrap();
        let chunks: Vec<_> = s.collect().await;
        assert!(chunks.iter().all(Result::is_ok));

        let all = logs(&p, &[]).await;
        assert_eq!(all.len(), 4, "{name}: {all:#?}");
        let by_id = |id: &str| {
            all.iter()
                .find(|l| l["id"] == format!("{name}-{id}"))
                .unwrap_or_else(|| panic!("{name}: no {id} in {all:#?}"))
                .clone()
        };
        let ok = by_id("ok");
        assert_eq!(ok["status"], "success", "{name}");
        assert_eq!(ok["status_code"], 200);
        assert_eq!(ok["provider"], "openai");
        assert_eq!(ok["model"], "gpt-4o-mini");
        assert_eq!(ok["transport"], "http");
        assert_eq!(ok["object_type"], "chat_completion");
        assert_eq!(ok["fallback_chain"], json!(["openai/gpt-4o-mini"]));
        assert_eq!(ok["virtual_key"], "sk-bf-…abcd");
        assert_eq!(ok["user"], "u-7");
        assert!(
            ok["key_id"].as_str().is_some_and(|k| !k.contains("sk-a")),
            "{ok}"
        );
        assert!(ok["usage"]["total_tokens"].as_i64().unwrap() > 0, "{ok}");
        assert!(ok["input"].as_str().unwrap().contains("hello logs"));
        assert!(
            ok["output"].as_str().unwrap().contains("hello logs"),
            "{ok}"
        );
        assert!(ok["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(ok["ttft_ms"].is_null());

        let fb = by_id("fb");
        assert_eq!(fb["status"], "success");
        assert_eq!(fb["provider"], "groq");
        assert_eq!(
            fb["fallback_chain"],
            json!(["openai/gpt-4o-mini", "groq/llama-3.1-8b-instant"])
        );
        assert_eq!(fb["fallback_index"], 0);

        let err = by_id("err");
        assert_eq!(err["status"], "error");
        assert_eq!(err["status_code"], 400);
        assert!(err["error"]["message"].as_str().is_some());
        assert!(err["output"].is_null());

        let st = by_id("stream");
        assert_eq!(st["stream"], true);
        assert_eq!(st["object_type"], "chat_completion_stream");
        assert_eq!(st["output"], "one two three", "{st}");
        assert!(st["ttft_ms"].as_f64().is_some(), "{st}");
        assert!(st["usage"]["total_tokens"].as_i64().unwrap() > 0, "{st}");
        assert_eq!(p.dropped(), 0);
        p.cleanup().await;
    }
}

#[tokio::test]
async fn content_modes_truncate_and_off() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let store = sqlite_store();
    let long = "x".repeat(500);
    let p = plugin_with(
        &store,
        json!({"content": "truncate", "max_content_bytes": 64}),
    );
    let gw = engine(&mock, Arc::clone(&p)).await;
    gw.chat_completion(&mut RequestContext::new("t1"), chat("openai", "m", &long))
        .await
        .unwrap();
    let l = &logs(&p, &[]).await[0];
    let input = l["input"].as_str().unwrap();
    assert!(input.ends_with(TRUNCATED_MARK) && input.len() <= 64 + TRUNCATED_MARK.len());
    let output = l["output"].as_str().unwrap();
    assert!(output.ends_with(TRUNCATED_MARK), "{output}");

    let store = sqlite_store();
    let p = plugin_with(&store, json!({"content": "off"}));
    let gw = engine(&mock, Arc::clone(&p)).await;
    gw.chat_completion(
        &mut RequestContext::new("t2"),
        chat("openai", "m", "secret"),
    )
    .await
    .unwrap();
    let l = &logs(&p, &[]).await[0];
    assert!(l["input"].is_null() && l["output"].is_null(), "{l}");
    assert!(l["usage"]["total_tokens"].as_i64().is_some());
}

fn entry(i: i64, provider: &str, status: &str) -> LogEntry {
    LogEntry {
        id: format!("req-{i}"),
        started_at_ms: 1_700_000_000_000 + i * 1000,
        ended_at_ms: 1_700_000_000_000 + i * 1000 + 5,
        transport: "http".into(),
        object_type: "chat_completion".into(),
        provider: provider.into(),
        model: if i % 2 == 0 { "even" } else { "odd" }.into(),
        fallback_chain: vec![format!("{provider}/m")],
        status: status.into(),
        status_code: Some(if status == "error" { 502 } else { 200 }),
        latency_us: (i + 1) * 1000,
        prompt_tokens: Some(1),
        completion_tokens: Some(2),
        total_tokens: Some(3),
        input: Some(format!("needle-{i} 100% done")),
        error: (status == "error").then(|| "upstream broke".to_owned()),
        virtual_key: Some(mask_virtual_key(if i % 3 == 0 {
            "sk-bf-aaaaaaaaaaaa1111"
        } else {
            "sk-bf-bbbbbbbbbbbb2222"
        })),
        ..LogEntry::default()
    }
}

#[tokio::test]
async fn query_api_filters_pages_and_stats() {
    for (name, store) in stores().await {
        let p = plugin_with(&store, json!({"max_page_size": 25}));
        ready(&p).await;
        for i in 0..100 {
            let provider = if i < 70 { "openai" } else { "anthropic" };
            let status = if i % 10 == 9 { "error" } else { "success" };
            p.submit(entry(i, provider, status));
        }
        p.flush().await;
        assert_eq!(p.written(), 100, "{name}");

        // Cursor pagination walks every entry once, newest first.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = vec![("limit", "25")];
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let page = get(&p, "", &q).await.unwrap();
            for l in page["logs"].as_array().unwrap() {
                seen.push(l["id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 100, "{name}");
        assert_eq!(seen[0], "req-99");
        assert_eq!(seen[99], "req-0");

        let count = |q: &[(&str, &str)]| {
            let p = Arc::clone(&p);
            let q: Vec<(String, String)> =
                q.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect();
            async move {
                let q: Vec<(&str, &str)> =
                    q.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                let mut q = q;
                q.push(("limit", "25"));
                let mut n = 0;
                let mut cursor: Option<String> = None;
                loop {
                    let mut qq = q.clone();
                    if let Some(c) = &cursor {
                        qq.push(("cursor", c));
                    }
                    let page = get(&p, "", &qq).await.unwrap();
                    n += page["logs"].as_array().unwrap().len();
                    match page["next_cursor"].as_str() {
                        Some(c) => cursor = Some(c.to_owned()),
                        None => return n,
                    }
                }
            }
        };
        assert_eq!(count(&[("provider", "anthropic")]).await, 30, "{name}");
        assert_eq!(count(&[("providers", "anthropic,openai")]).await, 100);
        assert_eq!(count(&[("models", "even")]).await, 50);
        assert_eq!(count(&[("status", "error")]).await, 10);
        assert_eq!(
            count(&[("virtual_key", "sk-bf-aaaaaaaaaaaa1111")]).await,
            34
        );
        assert_eq!(count(&[("content_search", "NEEDLE-77")]).await, 1, "{name}");
        assert_eq!(count(&[("q", "100%")]).await, 100);
        assert_eq!(count(&[("q", "0_ done")]).await, 0, "{name}: _ is literal");
        assert_eq!(count(&[("q", "upstream broke")]).await, 10);
        let from = entry(10, "x", "success").started_at_ms.to_string();
        let to = rfc(entry(19, "x", "success").started_at_ms);
        assert_eq!(
            count(&[("start_time", &from), ("end_time", &to)]).await,
            10,
            "{name}"
        );

        // Limits and bad parameters are 400s naming the parameter.
        for q in [
            [("limit", "26")],
            [("limit", "0")],
            [("cursor", "abc")],
            [("status", "weird")],
            [("start_time", "last tuesday")],
        ] {
            let e = get(&p, "", &q).await.unwrap_err();
            assert_eq!(e.status_code, Some(400), "{q:?}");
            assert_eq!(e.error.param.as_deref(), Some(q[0].0));
        }
        assert_eq!(
            get(&p, "/nope", &[]).await.unwrap_err().status_code,
            Some(404)
        );
        let one = get(&p, "/req-5", &[]).await.unwrap();
        assert_eq!(one["logs"][0]["id"], "req-5");

        let s = get(&p, "/stats", &[]).await.unwrap();
        assert_eq!(s["total"], 100, "{name}: {s}");
        assert_eq!(s["errors"], 10);
        assert_eq!(s["success"], 90);
        assert!((s["error_rate"].as_f64().unwrap() - 0.1).abs() < 1e-9);
        assert_eq!(s["tokens"]["total"], 300);
        assert_eq!(s["tokens"]["prompt"], 100);
        assert_eq!(s["latency_ms"]["p50"], 50.0, "{s}");
        assert_eq!(s["latency_ms"]["p99"], 99.0);
        assert!((s["latency_ms"]["avg"].as_f64().unwrap() - 50.5).abs() < 1e-9);
        assert_eq!(
            s["providers"][0],
            json!({"provider": "openai", "count": 70, "errors": 7})
        );
        assert!(s["cost"].is_null());
        let s = get(&p, "/stats", &[("provider", "anthropic")])
            .await
            .unwrap();
        assert_eq!(s["total"], 30);
        let s = get(&p, "/stats", &[("provider", "nobody")]).await.unwrap();
        assert_eq!(s["total"], 0);
        assert_eq!(s["error_rate"], 0.0);
        p.cleanup().await;
    }
}

fn rfc(ms: i64) -> String {
    crate::entry::rfc3339(ms)
}

#[tokio::test]
async fn retention_by_age_and_by_row_count() {
    for (name, store) in stores().await {
        let p = plugin_with(&store, json!({}));
        ready(&p).await;
        let now = now_ms();
        for i in 0..50 {
            let mut e = entry(i, "openai", "success");
            // 20 entries 10 days old, 30 fresh.
            e.started_at_ms = if i < 20 { now - 10 * 86_400_000 } else { now };
            p.submit(e);
        }
        p.flush().await;
        let db = p.slot.db.get().unwrap().clone();
        let removed = db.retain(Some(now - 7 * 86_400_000), None).await.unwrap();
        assert_eq!(removed, 20, "{name}");
        let removed = db.retain(None, Some(10)).await.unwrap();
        assert_eq!(removed, 20, "{name}");
        let left = logs(&p, &[("limit", "100")]).await;
        assert_eq!(left.len(), 10);
        assert_eq!(left[0]["id"], "req-49");
        assert_eq!(left[9]["id"], "req-40");
        assert_eq!(db.retain(None, Some(10)).await.unwrap(), 0);
        p.cleanup().await;
    }
}

#[tokio::test]
async fn retention_runs_on_its_interval() {
    let store = sqlite_store();
    let p = plugin_with(
        &store,
        json!({"max_rows": 5, "retention_interval_seconds": 1}),
    );
    for i in 0..20 {
        p.submit(entry(i, "openai", "success"));
    }
    p.flush().await;
    let t = Instant::now();
    loop {
        let n = logs(&p, &[("limit", "100")]).await.len();
        if n == 5 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "retention never ran ({n} rows)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn cleanup_flushes_what_is_queued() {
    for (name, store) in stores().await {
        let mut cfg = store.config.clone();
        // A long interval: only the shutdown flush writes these.
        cfg["writer"] = json!({"batch_interval": "1h"});
        let p = LoggingPlugin::from_json(&cfg).unwrap();
        ready(&p).await;
        for i in 0..300 {
            p.submit(entry(i, "openai", "success"));
        }
        assert_eq!(p.written(), 0, "{name}");
        p.cleanup().await;
        assert_eq!(p.written(), 300, "{name}");
        assert_eq!(p.queued_bytes(), 0);
    }
}

/// A listener that accepts connections and never answers: a database that hangs.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (format!("postgres://u:p@{addr}/db"), task)
}

/// A slow or stopped database neither slows nor fails requests, and memory stays bounded:
/// the queue holds at most its capacity and every other entry is dropped and counted.
#[tokio::test]
async fn slow_or_stopped_database_costs_requests_nothing() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let (hung_url, _hole) = black_hole().await;
    let stopped = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("postgres://u:p@{a}/db")
    };
    // Baseline: the same engine without logging.
    let base = Bifrost::builder(
        BifrostConfig::from_json(
            &json!({"providers": {"openai": {"keys": [{"value": "sk-a", "models": []}],
                "network_config": {"base_url": mock.url()}}}})
            .to_string(),
        )
        .unwrap(),
    )
    .build()
    .unwrap();
    let time_requests = |gw: Bifrost| async move {
        let t = Instant::now();
        for i in 0..300 {
            let mut ctx = RequestContext::new(format!("r{i}"));
            gw.chat_completion(&mut ctx, chat("openai", "m", "hi"))
                .await
                .unwrap();
        }
        t.elapsed()
    };
    let baseline = time_requests(base).await;
    for url in [hung_url, stopped] {
        let started = Instant::now();
        let p = Arc::new(
            LoggingPlugin::from_json(&json!({"type": "postgres", "config": {"url": url},
                "content": "full",
                "writer": {"write_queue_capacity": 50, "max_batch_size": 10, "batch_interval": "10ms"}}))
            .unwrap(),
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "startup does not wait for PostgreSQL"
        );
        let gw = engine(&mock, Arc::clone(&p)).await;
        let took = time_requests(gw).await;
        // Generous bound for a loaded 2-core machine; a blocked hook would take seconds.
        assert!(
            took < baseline * 3 + Duration::from_millis(500),
            "{url}: {took:?} with logging vs {baseline:?} without"
        );
        assert!(p.queued() <= 50, "queue bounded: {}", p.queued());
        // 300 entries into 50 queue slots plus one batch held by the writer: the rest dropped.
        assert!(p.dropped() >= 300 - 50 - 10, "dropped {}", p.dropped());
        assert_eq!(p.written(), 0);
        let e = get(&p, "", &[]).await.unwrap_err();
        assert_eq!(e.status_code, Some(503), "{e:?}");
        // Shutdown gives up after its timeout instead of hanging on the dead store.
        let t = Instant::now();
        p.cleanup().await;
        assert!(t.elapsed() < Duration::from_secs(8));
    }
}

/// A byte budget bounds memory even when entries are huge.
#[tokio::test]
async fn queue_byte_budget_drops_huge_entries() {
    let (url, _hole) = black_hole().await;
    let p = LoggingPlugin::from_json(&json!({"type": "postgres", "config": {"url": url},
        "writer": {"write_queue_capacity": 10000, "max_queue_bytes": 1_000_000}}))
    .unwrap();
    for i in 0..100 {
        let mut e = entry(i, "openai", "success");
        e.input = Some("y".repeat(100_000));
        p.submit(e);
    }
    assert!(p.queued_bytes() <= 1_000_000, "{}", p.queued_bytes());
    assert!(p.dropped() >= 90, "{}", p.dropped());
}

/// With PostgreSQL up but a table lock holding every insert, requests stay fast and the
/// entries beyond the queue are dropped; once the lock goes, logging resumes.
#[tokio::test]
async fn postgres_locked_table_drops_and_recovers() {
    let Some(store) = postgres_store().await else {
        return;
    };
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let p = plugin_with(
        &store,
        json!({"writer": {"write_queue_capacity": 20, "max_batch_size": 5, "batch_interval": "5ms"}}),
    );
    ready(&p).await;
    let url = store.config["config"]["url"].as_str().unwrap().to_owned();
    let locker = sqlx::PgPool::connect(&url).await.unwrap();
    let mut tx = locker.begin().await.unwrap();
    sqlx::query("LOCK TABLE bifrost_logs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let gw = engine(&mock, Arc::clone(&p)).await;
    let t = Instant::now();
    for i in 0..200 {
        gw.chat_completion(
            &mut RequestContext::new(format!("l{i}")),
            chat("openai", "m", "x"),
        )
        .await
        .unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(p.dropped() > 100, "dropped {}", p.dropped());
    assert!(p.queued() <= 20);
    tx.rollback().await.unwrap();
    let before = p.written();
    gw.chat_completion(&mut RequestContext::new("after"), chat("openai", "m", "x"))
        .await
        .unwrap();
    p.flush().await;
    assert!(p.written() > before);
    p.cleanup().await;
}

#[tokio::test]
async fn bad_sqlite_path_stops_startup() {
    let file = std::env::temp_dir().join(format!("bifrost-logging-file-{}", fastrand_u64()));
    std::fs::write(&file, b"not a dir").unwrap();
    let e =
        LoggingPlugin::from_json(&json!({"config": {"path": file.join("logs.db")}})).unwrap_err();
    assert!(
        e.to_string().starts_with("opening the sqlite log store"),
        "{e}"
    );
    let _ = std::fs::remove_file(&file);
    let e = LoggingFactory
        .build(&json!({"type": "mongo"}))
        .err()
        .unwrap();
    assert!(
        e.to_string().starts_with("plugins[logging].config: type:"),
        "{e}"
    );
}

#[test]
fn observes_only() {
    let store = sqlite_store();
    let p = LoggingPlugin::from_json(&store.config).unwrap();
    assert_eq!(p.needs(), PluginNeeds::OBSERVE);
    assert_eq!(p.api().unwrap().prefix(), "logs");
    assert_eq!(LoggingFactory.name(), "logging");
}
