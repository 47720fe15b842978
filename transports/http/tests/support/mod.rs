//! Test support: the real `bifrost-http` binary on an ephemeral port, and a mock upstream.

#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support fails the test loudly"
)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use bifrost_mock_upstream::{MockConfig, MockServer};
use serde_json::{Value, json};

/// A running gateway process; killed on drop.
pub struct Gateway {
    pub url: String,
    pub child: Child,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> Self {
        let p = std::env::temp_dir().join(format!(
            "bifrost-test-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Gateway {
    /// Starts the gateway with `config` (written to a temp file), extra flags and env vars.
    pub fn start_with(config: &Value, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bifrost-http"));
        cmd.args([
            "-config",
            path.to_str().unwrap(),
            "-port",
            "0",
            "-host",
            "127.0.0.1",
            "-log-level",
            "info",
        ])
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn bifrost-http");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
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
                    eprintln!("[gateway] {line}");
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("gateway did not report its address within 20 s");
            }
        };
        Self {
            url,
            child,
            _dir: dir,
        }
    }

    pub fn start(config: &Value) -> Self {
        Self::start_with(config, &[], &[])
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config with one OpenAI provider at `upstream`, and the demo mocker rule for `mock/*`.
pub fn config(upstream: &str) -> Value {
    json!({
        "providers": {
            "openai": {
                "keys": [{"value": "sk-test-a", "models": [], "weight": 1}],
                "network_config": {"base_url": upstream, "max_retries": 2,
                    "retry_backoff_initial": 5, "retry_backoff_max": 20}
            }
        },
        "plugins": [{"name": "mocker", "enabled": true, "config": {
            "enabled": true, "default_behavior": "passthrough",
            "rules": [{"name": "demo", "enabled": true, "priority": 1, "probability": 1,
                "conditions": {"providers": ["mock"]},
                "responses": [{"type": "success", "weight": 1, "content": {"message": "{{input}}"}}]}]
        }}]
    })
}

/// A mock upstream on an ephemeral port.
pub async fn mock() -> MockServer {
    MockServer::start(MockConfig::default()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn chat_body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// Posts JSON and returns (status, headers, body as JSON or a string).
pub async fn post(url: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client().post(url).json(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

/// Reads an SSE body into its `data:` payloads.
pub async fn sse_events(resp: reqwest::Response) -> Vec<String> {
    let text = resp.text().await.unwrap_or_default();
    text.split("\n\n")
        .filter_map(|ev| {
            ev.lines()
                .find_map(|l| l.strip_prefix("data: "))
                .map(str::to_owned)
        })
        .collect()
}
