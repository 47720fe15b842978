//! The Maxim plugin in front of the mock upstream, sending to a local mock of Maxim's log
//! ingestion endpoint: the payloads, retries, and a slow or dead endpoint that neither slows
//! nor fails requests while memory stays bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bifrost_core::schemas::{BifrostRequest, ChatMessage, Fallback, ProviderKey, Role};
use bifrost_core::{Bifrost, BifrostConfig, Plugin, PluginFactory, RequestContext};
use bifrost_mock_upstream::{MockConfig, MockServer};
use bifrost_plugin_maxim::{MaximFactory, MaximOptions, MaximPlugin};
use futures::StreamExt;
use serde_json::{Value, json};

// ---------------------------------------------------------------- mock Maxim

/// One upload the mock received.
#[derive(Debug, Clone)]
struct Upload {
    repo: String,
    api_key: String,
    content_type: String,
    body: String,
    /// What the mock answered.
    status: u16,
}

#[derive(Default)]
struct MaximState {
    uploads: Vec<Upload>,
    /// Statuses for the next uploads, then `fallback`.
    script: VecDeque<u16>,
    fallback: u16,
    delay: Duration,
}

/// A stand-in for `POST /api/sdk/v3/log?id=…` on 127.0.0.1:0.
#[derive(Clone)]
struct MockMaxim {
    url: String,
    state: Arc<Mutex<MaximState>>,
}

impl MockMaxim {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(MaximState {
            fallback: 200,
            ..MaximState::default()
        }));
        let app = Router::new()
            .route("/api/sdk/v3/log", post(ingest))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    fn script(&self, statuses: &[u16], then: u16) {
        let mut s = self.state.lock().unwrap();
        s.script = statuses.iter().copied().collect();
        s.fallback = then;
    }

    fn set_delay(&self, d: Duration) {
        self.state.lock().unwrap().delay = d;
    }

    fn uploads(&self) -> Vec<Upload> {
        self.state.lock().unwrap().uploads.clone()
    }

    /// Every commit log of the accepted uploads, in order.
    fn commits(&self) -> Vec<Commit> {
        self.uploads()
            .iter()
            .filter(|u| u.status == 200)
            .flat_map(|u| u.body.lines().map(Commit::parse).collect::<Vec<_>>())
            .collect()
    }
}

async fn ingest(
    State(state): State<Arc<Mutex<MaximState>>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let (status, delay) = {
        let mut s = state.lock().unwrap();
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let status = s.script.pop_front().unwrap_or(s.fallback);
        s.uploads.push(Upload {
            repo: q.get("id").cloned().unwrap_or_default(),
            api_key: header("x-maxim-api-key"),
            content_type: header("content-type"),
            body,
            status,
        });
        (status, s.delay)
    };
    tokio::time::sleep(delay).await;
    let body = if status == 200 {
        "{}".to_owned()
    } else {
        r#"{"error":{"message":"nope"}}"#.to_owned()
    };
    (StatusCode::from_u16(status).unwrap(), body)
}

/// One commit log line: `entity{id=…,action=…,data=…}`.
#[derive(Debug, Clone)]
struct Commit {
    entity: String,
    id: String,
    action: String,
    data: Value,
}

impl Commit {
    fn parse(line: &str) -> Self {
        let (entity, rest) = line.split_once("{id=").expect(line);
        let rest = rest.strip_suffix('}').expect(line);
        let (id, rest) = rest.split_once(",action=").expect(line);
        let (action, data) = rest.split_once(",data=").expect(line);
        Self {
            entity: entity.to_owned(),
            id: id.to_owned(),
            action: action.to_owned(),
            data: serde_json::from_str(data).expect(line),
        }
    }
}

fn find<'a>(commits: &'a [Commit], entity: &str, action: &str) -> Vec<&'a Commit> {
    commits
        .iter()
        .filter(|c| c.entity == entity && c.action == action)
        .collect()
}

// ---------------------------------------------------------------- gateway side

fn plugin(maxim: &MockMaxim, extra: Value) -> Arc<MaximPlugin> {
    let mut cfg = json!({
        "api_key": "mx-test-key",
        "log_repo_id": "repo-1",
        "base_url": maxim.url,
        "flush_interval_ms": 20,
        "retry_backoff_ms": 10,
        "max_backoff_ms": 50,
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    Arc::new(MaximPlugin::from_config(&cfg).unwrap())
}

fn engine(upstream: &MockServer, plugin: Arc<MaximPlugin>) -> Bifrost {
    let cfg = BifrostConfig::from_json(
        &json!({"providers": {"openai": {
            "keys": [{"value": "sk-test", "id": "team-key"}],
            "network_config": {"base_url": upstream.url()}
        }}})
        .to_string(),
    )
    .unwrap();
    Bifrost::builder(cfg).plugin(plugin).build().unwrap()
}

async fn upstream() -> MockServer {
    MockServer::start(MockConfig::default()).await.unwrap()
}

fn chat(text: &str) -> BifrostRequest {
    BifrostRequest::chat(
        ProviderKey::OpenAI,
        "gpt-4o-mini",
        vec![
            ChatMessage::text(Role::System, "be brief"),
            ChatMessage::text(Role::User, text),
        ],
    )
}

/// A context as the HTTP transport builds it: OpenAI-speaking caller (relay allowed) and
/// the inbound headers (the plugin asks for them).
fn ctx(headers: &[(&str, &str)]) -> RequestContext {
    let mut c = RequestContext::new("req-1");
    c.wire_body = true;
    c.transport = "http";
    for (k, v) in headers {
        c.headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    c
}

const FLUSH: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn a_chat_request_becomes_a_trace_with_a_generation() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    let p = plugin(&maxim, json!({}));
    let b = engine(&up, p.clone());
    assert!(
        !b.plugin_needs().response_body,
        "observe-only: the relay stays on"
    );
    let mut c = ctx(&[
        ("x-bf-maxim-session-id", "session-7"),
        ("x-bf-maxim-trace-name", "checkout"),
        ("x-bf-maxim-generation-name", "answer"),
        ("x-bf-maxim-env", "prod"),
        ("x-bf-dim-team", "core"),
        ("authorization", "Bearer sk-caller-secret"),
    ]);
    let mut req = chat("hello maxim");
    req.params.temperature = Some(0.25);
    req.params.max_tokens = Some(64);
    let resp = b.chat_completion(&mut c, req).await.unwrap();
    assert!(resp.wire_body.is_some(), "the answer was relayed as sent");
    p.flush(FLUSH).await.unwrap();

    let uploads = maxim.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].repo, "repo-1");
    assert_eq!(uploads[0].api_key, "mx-test-key");
    assert_eq!(uploads[0].content_type, "application/json");
    assert!(!uploads[0].body.contains("sk-caller-secret"));
    assert!(!uploads[0].body.contains("sk-test"));

    let commits = maxim.commits();
    let order: Vec<String> = commits
        .iter()
        .map(|c| format!("{}:{}", c.entity, c.action))
        .collect();
    assert_eq!(
        order,
        [
            "trace:create",
            "trace:update",
            "trace:add-generation",
            "generation:result",
            "generation:end",
            "trace:update",
            "trace:end"
        ]
    );
    let create = &commits[0];
    let trace_id = create.id.clone();
    assert_eq!(trace_id.len(), 36, "a UUID");
    assert_eq!(create.data["id"], trace_id.as_str());
    assert_eq!(create.data["name"], "checkout");
    assert_eq!(create.data["sessionId"], "session-7");
    assert_eq!(create.data["tags"], json!({"env": "prod", "team": "core"}));
    assert!(
        create.data["startTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(commits[1].data["input"], "hello maxim");

    let generation = &commits[2];
    assert_eq!(generation.id, trace_id);
    let g = &generation.data;
    let gen_id = g["id"].as_str().unwrap().to_owned();
    assert_ne!(gen_id, trace_id);
    assert_eq!(g["name"], "answer");
    assert_eq!(g["provider"], "openai");
    assert_eq!(g["model"], "gpt-4o-mini");
    assert_eq!(
        g["messages"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello maxim"}])
    );
    assert_eq!(
        g["modelParameters"],
        json!({"temperature": 0.25, "max_tokens": 64})
    );
    assert_eq!(g["tags"]["env"], "prod");
    assert_eq!(g["tags"]["status"], "success");
    assert!(
        g["tags"]["latency_ms"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );

    let result = &commits[3];
    assert_eq!(result.id, gen_id);
    let r = &result.data["result"];
    assert_eq!(r["object"], "chat.completion");
    assert_eq!(r["choices"][0]["message"]["content"], "hello maxim");
    assert!(r["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(commits[4].id, gen_id);
    assert_eq!(commits[5].data["output"], "hello maxim");
    assert_eq!(commits[5].data["tags"]["model"], "gpt-4o-mini");
    assert_eq!(commits[6].id, trace_id);

    let s = p.stats();
    assert_eq!((s.enqueued, s.sent, s.dropped()), (1, 1, 0));
}

#[tokio::test]
async fn a_stream_is_logged_with_the_text_it_delivered() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    let p = plugin(&maxim, json!({}));
    let b = engine(&up, p.clone());
    let mut c = ctx(&[]);
    let stream = b
        .chat_completion_stream(&mut c, chat("streamed words here"))
        .await
        .unwrap();
    let chunks: Vec<_> = stream.collect().await;
    assert!(chunks.iter().all(Result::is_ok));
    p.flush(FLUSH).await.unwrap();

    let commits = maxim.commits();
    assert_eq!(
        find(&commits, "trace", "create")[0].data["name"],
        "bifrost_chat_completion_stream"
    );
    let result = &find(&commits, "generation", "result")[0].data["result"];
    assert_eq!(
        result["choices"][0]["message"]["content"],
        "streamed words here"
    );
    assert_eq!(result["choices"][0]["finish_reason"], "stop");
    let g = &find(&commits, "trace", "add-generation")[0].data;
    assert!(g["tags"]["ttft_ms"].as_str().is_some());
}

#[tokio::test]
async fn a_failed_primary_and_its_fallback_are_two_generations_of_one_trace() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    let p = plugin(&maxim, json!({}));
    let b = engine(&up, p.clone());
    let mut c = ctx(&[("x-bf-maxim-trace-id", "caller-trace-1")]);
    // The upstream fails the first request of this scenario only.
    c.extra_headers = vec![
        ("x-mock-status".into(), "500".into()),
        ("x-mock-scenario".into(), "maxim-fallback".into()),
        ("x-mock-fail-times".into(), "1".into()),
    ];
    let mut req = chat("try twice");
    req.fallbacks = vec![Fallback {
        provider: ProviderKey::OpenAI,
        model: "gpt-4o".into(),
    }];
    b.chat_completion(&mut c, req).await.unwrap();
    p.flush(FLUSH).await.unwrap();

    let commits = maxim.commits();
    assert_eq!(find(&commits, "trace", "create").len(), 1, "one trace");
    assert_eq!(find(&commits, "trace", "create")[0].id, "caller-trace-1");
    let gens = find(&commits, "trace", "add-generation");
    assert_eq!(gens.len(), 2, "one generation per attempt");
    assert!(gens.iter().all(|g| g.id == "caller-trace-1"));
    assert_eq!(gens[0].data["model"], "gpt-4o-mini");
    assert_eq!(gens[0].data["tags"]["status"], "error");
    assert_eq!(gens[0].data["tags"]["status_code"], "500");
    assert_eq!(gens[1].data["model"], "gpt-4o");
    assert_eq!(gens[1].data["tags"]["fallback_index"], "0");
    let errors = find(&commits, "generation", "error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].id, gens[0].data["id"].as_str().unwrap());
    let results = find(&commits, "generation", "result");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].id, gens[1].data["id"].as_str().unwrap());
}

#[tokio::test]
async fn a_provider_error_is_the_generations_error_and_the_caller_still_gets_it() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    let p = plugin(&maxim, json!({}));
    let b = engine(&up, p.clone());
    let mut c = ctx(&[]);
    c.extra_headers = vec![("x-mock-status".into(), "400".into())];
    let err = b.chat_completion(&mut c, chat("bad")).await.unwrap_err();
    assert_eq!(err.status_code, Some(400));
    p.flush(FLUSH).await.unwrap();

    let commits = maxim.commits();
    let e = &find(&commits, "generation", "error")[0].data["error"];
    assert_eq!(e["message"], err.error.message.as_str());
    assert!(find(&commits, "generation", "result").is_empty());
    assert_eq!(find(&commits, "trace", "end").len(), 1);
}

#[tokio::test]
async fn an_upload_that_gets_a_500_is_retried() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    maxim.script(&[500, 503], 200);
    let p = plugin(&maxim, json!({}));
    let b = engine(&up, p.clone());
    b.chat_completion(&mut ctx(&[]), chat("again"))
        .await
        .unwrap();
    p.flush(FLUSH).await.unwrap();

    let uploads = maxim.uploads();
    assert_eq!(uploads.len(), 3, "two failures, then accepted");
    assert!(
        uploads.iter().all(|u| u.body == uploads[0].body),
        "the same batch"
    );
    let s = p.stats();
    assert_eq!((s.sent, s.failed_uploads, s.dropped()), (1, 2, 0));
    assert_eq!(s.buffered_entries, 0);
}

#[tokio::test]
async fn a_refused_upload_is_dropped_and_counted_not_retried() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    maxim.script(&[401], 200);
    let p = plugin(&maxim, json!({}));
    let b = engine(&up, p.clone());
    b.chat_completion(&mut ctx(&[]), chat("nope"))
        .await
        .unwrap();
    p.flush(FLUSH).await.unwrap();
    assert_eq!(maxim.uploads().len(), 1);
    let s = p.stats();
    assert_eq!((s.sent, s.dropped_rejected), (0, 1));
}

#[tokio::test]
async fn a_dead_endpoint_keeps_memory_bounded_counts_drops_and_recovers() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    maxim.script(&[], 503);
    let buffer_max = 16 * 1024;
    let p = plugin(
        &maxim,
        json!({"buffer_max_bytes": buffer_max, "max_retries": 1000, "max_backoff_ms": 20}),
    );
    let b = Arc::new(engine(&up, p.clone()));
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let b = Arc::clone(&b);
            tokio::spawn(async move {
                let mut c = ctx(&[]);
                b.chat_completion(
                    &mut c,
                    chat(&format!("message number {i} {}", "x".repeat(200))),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .expect("a dead Maxim never fails a request");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "requests were not held up: {:?}",
        started.elapsed()
    );
    // Let the sender drain the queue into the buffer while uploads keep failing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = p.stats();
    assert!(s.buffered_bytes <= buffer_max, "{s:?}");
    assert!(s.buffered_entries > 0, "{s:?}");
    assert!(s.dropped_buffer_full > 0, "{s:?}");
    assert_eq!(s.sent, 0);
    assert!(s.failed_uploads > 1, "kept retrying: {s:?}");
    assert_eq!(
        s.enqueued + s.dropped_queue_full,
        200,
        "every attempt is queued or counted: {s:?}"
    );

    // Maxim comes back: what was kept goes out, nothing else is lost.
    maxim.script(&[], 200);
    p.flush(FLUSH).await.unwrap();
    let s = p.stats();
    assert_eq!(s.buffered_entries, 0);
    assert_eq!(s.sent + s.dropped(), 200, "{s:?}");
    let traces = find(&maxim.commits(), "trace", "create").len() as u64;
    assert_eq!(traces, s.sent, "each kept entry arrived once, whole");
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_slow_requests() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    maxim.set_delay(Duration::from_secs(30));
    let p = plugin(&maxim, json!({"request_timeout_ms": 1000}));
    let b = engine(&up, p.clone());
    // A warm-up so connection setup is not measured.
    b.chat_completion(&mut ctx(&[]), chat("warm"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    for _ in 0..20 {
        b.chat_completion(&mut ctx(&[]), chat("quick"))
            .await
            .unwrap();
    }
    // Waiting on uploads would cost at least 20 × 1 s.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        p.stats().failed_uploads >= 1,
        "uploads time out: {:?}",
        p.stats()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let maxim = MockMaxim::start().await;
    let p = plugin(&maxim, json!({"queue_size": 4}));
    // On a current-thread runtime the sender cannot run while this loop does not yield, so
    // the queue fills exactly as when the sender falls behind.
    for _ in 0..10 {
        let mut c = ctx(&[]);
        let mut req = chat("q");
        assert!(matches!(
            p.pre_hook(&mut c, &mut req).await,
            bifrost_core::PreHookOutcome::Continue
        ));
        let mut result = Ok(bifrost_core::schemas::BifrostResponse::default());
        p.post_hook(&mut c, &mut result).await;
    }
    let s = p.stats();
    assert_eq!((s.enqueued, s.dropped_queue_full), (4, 6));
    p.flush(FLUSH).await.unwrap();
    assert_eq!(p.stats().sent, 4);
}

#[tokio::test]
async fn without_a_log_repository_nothing_is_logged_unless_the_request_names_one() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    let p = Arc::new(
        MaximPlugin::from_config(
            &json!({"api_key": "k", "base_url": maxim.url, "flush_interval_ms": 20}),
        )
        .unwrap(),
    );
    let b = engine(&up, p.clone());
    b.chat_completion(&mut ctx(&[]), chat("unlogged"))
        .await
        .unwrap();
    b.chat_completion(
        &mut ctx(&[("x-bf-maxim-log-repo-id", "repo-from-header")]),
        chat("logged"),
    )
    .await
    .unwrap();
    // Rust callers set the same through the context.
    let mut c = ctx(&[]);
    c.extensions.insert(MaximOptions {
        log_repo_id: Some("repo-from-code".into()),
        ..MaximOptions::default()
    });
    b.chat_completion(&mut c, chat("logged too")).await.unwrap();
    p.flush(FLUSH).await.unwrap();
    let mut repos: Vec<String> = maxim.uploads().into_iter().map(|u| u.repo).collect();
    repos.sort();
    assert_eq!(repos, ["repo-from-code", "repo-from-header"]);
    assert_eq!(p.stats().enqueued, 2);
}

#[tokio::test]
async fn a_caller_generation_gets_the_result_and_nothing_is_created() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    let p = plugin(&maxim, json!({}));
    let b = engine(&up, p.clone());
    let mut c = ctx(&[("x-bf-maxim-generation-id", "gen-42")]);
    b.chat_completion(&mut c, chat("into yours")).await.unwrap();
    p.flush(FLUSH).await.unwrap();
    let commits = maxim.commits();
    let order: Vec<String> = commits
        .iter()
        .map(|c| format!("{}:{}:{}", c.entity, c.id, c.action))
        .collect();
    assert_eq!(
        order,
        [
            "generation:gen-42:update",
            "generation:gen-42:result",
            "generation:gen-42:end"
        ]
    );
}

#[tokio::test]
async fn shutdown_flushes_what_is_buffered() {
    let (maxim, up) = (MockMaxim::start().await, upstream().await);
    // A long interval: only the shutdown flush sends.
    let p = plugin(&maxim, json!({"flush_interval_ms": 60_000}));
    let b = engine(&up, p.clone());
    tokio::time::sleep(Duration::from_millis(50)).await; // the interval's first tick
    for _ in 0..3 {
        b.chat_completion(&mut ctx(&[]), chat("bye")).await.unwrap();
    }
    b.shutdown().await;
    assert_eq!(p.stats().sent, 3);
    assert_eq!(find(&maxim.commits(), "trace", "create").len(), 3);
    // After shutdown the plugin drops (and counts) instead of queueing.
    let mut c = ctx(&[]);
    p.pre_hook(&mut c, &mut chat("late")).await;
    p.post_hook(&mut c, &mut Ok(Default::default())).await;
    assert_eq!(p.stats().dropped_shutdown, 1);
}

#[tokio::test]
async fn the_factory_builds_from_bifrosts_config_block() {
    let f = MaximFactory;
    assert_eq!(f.name(), "maxim");
    let p = f
        .build(&json!({"api_key": "k", "log_repo_id": "r"}))
        .unwrap();
    assert_eq!(p.name(), "maxim");
    assert!(p.needs().request_headers && !p.needs().response_body);
    if std::env::var_os("MAXIM_API_KEY").is_some() {
        return; // the key would come from the environment
    }
    let Err(e) = f.build(&json!({"log_repo_id": "r"})) else {
        panic!("no api_key must stop startup")
    };
    assert!(
        e.to_string()
            .starts_with("plugins[maxim].config: api_key is required"),
        "{e}"
    );
}
