//! Test support: the gRPC server in-process on `127.0.0.1:0` (or the real `bifrost-grpc`
//! binary) in front of the mock upstream, a tonic client generated from the same proto,
//! and helpers to read the unified error out of a status.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support fails the test loudly"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bifrost_core::BifrostConfig;
use bifrost_core::schemas::BifrostError;
use bifrost_gateway::plugins::PluginRegistry;
use bifrost_gateway::startup::build_engine;
pub use bifrost_mock_upstream::{MockConfig, MockServer};
use bifrost_transport_grpc::pb::bifrost_service_client::BifrostServiceClient;
use bifrost_transport_grpc::{convert, pb};
use prost::Message;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// A gRPC server running in this process; stopped (gracefully) on drop.
pub struct Server {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Builds the engine from `config` (with the plugins the registry knows, as the binaries
    /// do) and serves it on an ephemeral loopback port.
    pub async fn start(config: &Value) -> Self {
        Self::start_draining(config, bifrost_transport_grpc::DRAIN_TIMEOUT).await
    }

    /// [`Server::start`] with a chosen drain limit for the graceful stop.
    pub async fn start_draining(config: &Value, drain: Duration) -> Self {
        let cfg = BifrostConfig::from_json(&config.to_string()).unwrap();
        let engine = build_engine(&cfg, &PluginRegistry::builtin()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            bifrost_transport_grpc::serve_with_drain(
                engine,
                listener,
                cfg.grpc.clone(),
                stop,
                drain,
            )
            .await
            .unwrap();
        });
        Self {
            url,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Serves an engine built by the caller (e.g. with a test plugin).
    pub async fn start_engine(engine: bifrost_core::Bifrost) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bifrost_transport_grpc::serve(
                engine,
                listener,
                bifrost_core::config::GrpcConfig::default(),
                async {
                    let _ = rx.await;
                },
            )
            .await
            .unwrap();
        });
        Self {
            url,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> BifrostServiceClient<Channel> {
        connect(&self.url).await
    }

    pub async fn channel(&self) -> Channel {
        channel(&self.url).await
    }

    /// Stops the server and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("server stopped in time")
                .unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

pub async fn connect(url: &str) -> BifrostServiceClient<Channel> {
    BifrostServiceClient::new(channel(url).await).max_decoding_message_size(64 * 1024 * 1024)
}

/// The real `bifrost-grpc` binary with `config` in a temp file; killed on drop.
pub struct Binary {
    pub url: String,
    child: Child,
    dir: std::path::PathBuf,
}

impl Binary {
    pub fn start(config: &Value, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "bifrost-grpc-test-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bifrost-grpc"))
            .args([
                "-config",
                path.to_str().unwrap(),
                "-host",
                "127.0.0.1",
                "-grpc-port",
                "0",
                "-log-level",
                "info",
            ])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bifrost-grpc");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(i) = line.find("listening on http://") {
                    let rest = &line[i + "listening on ".len()..];
                    let url: String = rest
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(url);
                    sent = true;
                }
                if std::env::var_os("BIFROST_TEST_LOGS").is_some() {
                    eprintln!("[bifrost-grpc] {line}");
                }
            }
        });
        let Ok(url) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!("bifrost-grpc did not report its address within 20 s");
        };
        Self { url, child, dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit (after a signal), at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A mock upstream that records requests.
pub async fn mock() -> MockServer {
    MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

/// A URL where nothing listens (connection refused).
pub fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// `openai` and `anthropic` at `upstream` (no retries, so error tests are quick), `groq`
/// at a dead address (for fallbacks), and the demo mocker rule for `mock/*`.
pub fn config(upstream: &str) -> Value {
    let net = json!({"base_url": upstream, "max_retries": 0});
    json!({
        "providers": {
            "openai": {"keys": [{"value": "sk-test-a", "models": [], "weight": 1}], "network_config": net},
            "anthropic": {"keys": [{"value": "sk-ant-test", "models": [], "weight": 1}], "network_config": net},
            "groq": {"keys": [{"value": "gsk-test", "models": [], "weight": 1}],
                "network_config": {"base_url": dead_url(), "max_retries": 0}}
        },
        "plugins": [{"name": "mocker", "enabled": true, "config": {
            "enabled": true, "default_behavior": "passthrough",
            "rules": [{"name": "demo", "enabled": true, "priority": 1, "probability": 1,
                "conditions": {"providers": ["mock"]},
                "responses": [{"type": "success", "weight": 1, "content": {"message": "{{input}}"}}]}]
        }}]
    })
}

pub fn user(text: &str) -> pb::ChatMessage {
    pb::ChatMessage {
        role: pb::Role::User as i32,
        content: Some(pb::chat_message::Content::Text(text.to_owned())),
        ..Default::default()
    }
}

pub fn chat(model: &str, text: &str) -> pb::ChatCompletionRequest {
    pb::ChatCompletionRequest {
        model: model.to_owned(),
        messages: vec![user(text)],
        ..Default::default()
    }
}

pub fn chat_stream(model: &str, text: &str) -> pb::ChatCompletionStreamRequest {
    pb::ChatCompletionStreamRequest {
        model: model.to_owned(),
        messages: vec![user(text)],
        ..Default::default()
    }
}

/// A request with metadata entries.
pub fn with_md<T>(message: T, md: &[(&'static str, &str)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    for (k, v) in md {
        req.metadata_mut().insert(*k, v.parse().unwrap());
    }
    req
}

/// The unified error packed in a status's details (`google.rpc.Status` → `Any`).
pub fn unified(s: &tonic::Status) -> BifrostError {
    let rpc = pb::RpcStatus::decode(s.details()).expect("google.rpc.Status in details");
    assert_eq!(rpc.code, s.code() as i32);
    let any = rpc.details.first().expect("one detail");
    assert_eq!(any.type_url, pb::BIFROST_ERROR_TYPE_URL);
    convert::error_from(pb::BifrostError::decode(any.value.as_slice()).unwrap())
}

/// The first choice's message text of a chat answer.
pub fn text_of(r: &pb::ChatCompletionResponse) -> String {
    match r.choices[0]
        .message
        .as_ref()
        .and_then(|m| m.content.clone())
    {
        Some(pb::chat_message::Content::Text(t)) => t,
        other => panic!("no text content: {other:?}"),
    }
}

/// The delta text of a chunk (empty when none).
pub fn delta_text(c: &pb::ChatCompletionStreamResponse) -> String {
    match c
        .choices
        .first()
        .and_then(|ch| ch.delta.as_ref())
        .and_then(|d| d.content.clone())
    {
        Some(pb::chat_message::Content::Text(t)) => t,
        _ => String::new(),
    }
}
