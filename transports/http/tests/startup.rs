//! Startup contracts of the real `bifrost-http` binary: config blocks this build refuses or
//! ignores, the container entrypoint (`docker/entrypoint.sh`, run here without a container
//! engine: same script, same variables, paths in a temp dir) and `-healthcheck`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::{Value, json};
use support::{TempDir, chat_body, post};

const BIN: &str = env!("CARGO_BIN_EXE_bifrost-http");

/// The image's entrypoint script, from the repository.
fn entrypoint() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker/entrypoint.sh")
}

/// A started process whose stderr is collected; killed on drop.
struct Running {
    child: Child,
    url: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Spawns `cmd` and waits for its "listening on" line.
    fn start(mut cmd: Command) -> Self {
        cmd.env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let url: String = line[i + "listening on ".len()..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '"')
                        .collect();
                    let _ = tx.send(url);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let Ok(url) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            panic!(
                "no 'listening on' line within 20 s; stderr:\n{}",
                lines.lock().unwrap().join("\n")
            );
        };
        Self {
            child,
            url,
            stderr: lines,
        }
    }

    fn port(&self) -> String {
        self.url.rsplit(':').next().unwrap().to_owned()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config whose only mocker rule answers every `mock/*` model with `message`.
fn mock_config(message: &str) -> Value {
    json!({
        "providers": {},
        "plugins": [{"name": "mocker", "enabled": true, "config": {
            "enabled": true, "default_behavior": "passthrough",
            "rules": [{"name": "marker", "enabled": true, "priority": 1, "probability": 1,
                "conditions": {"providers": ["mock"]},
                "responses": [{"type": "success", "weight": 1, "content": {"message": message}}]}]
        }}]
    })
}

fn write_config(dir: &Path, config: &Value) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    path
}

/// The answer of `mock/any` from the gateway at `url`.
async fn mock_answer(url: &str) -> String {
    let (status, _, body) = post(
        &format!("{url}/v1/chat/completions"),
        &chat_body("mock/any", "which config?"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs the gateway binary with `config` and flags, expecting it to exit; returns
/// (success, stderr).
fn run_to_exit(config: &Value) -> (bool, String) {
    let dir = TempDir::new();
    let path = write_config(&dir.0, config);
    let out = Command::new(BIN)
        .args(["-config", path.to_str().unwrap(), "-port", "0"])
        .args(["-host", "127.0.0.1"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn governance_config_refuses_to_start_naming_the_block() {
    for (config, block) in [
        (
            json!({"governance": {"virtual_keys": [{"id": "vk-1", "value": "sk-bf-secret"}]}}),
            "governance",
        ),
        (
            json!({"client": {"enforce_governance_header": true}}),
            "client.enforce_governance_header",
        ),
        (json!({"auth_config": {"is_enabled": true}}), "auth_config"),
    ] {
        let (ok, err) = run_to_exit(&config);
        assert!(!ok, "{config} must not start:\n{err}");
        assert!(err.contains(block), "{block} not named:\n{err}");
        assert!(err.contains("not implemented"), "{err}");
        assert!(
            !err.contains("sk-bf-secret"),
            "a secret reached the log:\n{err}"
        );
        assert!(!err.contains("listening on"), "{err}");
    }
}

#[test]
fn unknown_provider_refuses_to_start_naming_it() {
    let (ok, err) = run_to_exit(&json!({"providers": {"opneai": {"keys": []}}}));
    assert!(!ok, "{err}");
    assert!(err.contains("providers.opneai"), "{err}");
    assert!(err.contains("unknown provider"), "{err}");
}

#[tokio::test]
async fn ignored_blocks_start_with_a_warning_naming_each() {
    let dir = TempDir::new();
    let mut config = mock_config("still served");
    for (block, value) in [
        ("config_store", json!({"enabled": true, "type": "sqlite"})),
        ("vector_store", json!({"enabled": true, "type": "weaviate"})),
        ("governance", json!({"virtual_keys": []})),
    ] {
        config[block] = value;
    }
    config["providers"] = json!({"bedrock": {"keys": []}});
    let path = write_config(&dir.0, &config);
    let mut cmd = Command::new(BIN);
    cmd.args(["-config", path.to_str().unwrap(), "-port", "0"])
        .args(["-host", "127.0.0.1", "-log-level", "info"]);
    for var in [
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        cmd.env_remove(var);
    }
    let gw = Running::start(cmd);
    assert_eq!(mock_answer(&gw.url).await, "still served");
    let log = gw.log();
    for block in ["config_store", "vector_store", "governance"] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(&format!("`{block}` ignored"))),
            "no warning naming {block}:\n{log}"
        );
    }
    // bedrock loads without keys; with no AWS credentials in its environment either, a
    // request fails naming where credentials go.
    let (status, _, body) = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("bedrock/claude", "hi"),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(body.to_string().contains("AWS_ACCESS_KEY_ID"), "{body}");
}

/// The entrypoint as the image runs it: `bifrost-http` found on PATH, the image's variables
/// pointing at `root`.
fn entrypoint_command(root: &Path, args: &[&str]) -> Command {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin_dir.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("sh");
    cmd.arg(entrypoint())
        .args(args)
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .env("APP_DIR", root.join("app/config"))
        .env("BIFROST_DATA_DIR", root.join("app/data"))
        .env("BIFROST_DEMO_CONFIG", root.join("app/demo/config.json"))
        .env("APP_PORT", "0")
        .env("APP_HOST", "127.0.0.1")
        .env("LOG_LEVEL", "info")
        .env("LOG_STYLE", "json")
        .env_remove("BIFROST_BIN");
    cmd
}

#[tokio::test]
async fn entrypoint_serves_the_config_mounted_in_app_dir() {
    let root = TempDir::new();
    std::fs::create_dir_all(root.0.join("app/config")).unwrap();
    write_config(&root.0.join("app/demo"), &mock_config("demo config"));
    write_config(
        &root.0.join("app/config"),
        &mock_config("mounted config 7f3a"),
    );
    let gw = Running::start(entrypoint_command(&root.0, &[]));
    assert_eq!(mock_answer(&gw.url).await, "mounted config 7f3a");
    let log = gw.log();
    assert!(!log.contains("demo config"), "{log}");
    assert!(
        log.contains(&root.0.join("app/config/config.json").display().to_string()),
        "the log should name the mounted file:\n{log}"
    );
    // LOG_STYLE=json: every line is a JSON object.
    for line in log.lines() {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "{line}");
    }
}

#[tokio::test]
async fn entrypoint_falls_back_to_the_demo_config_only_when_nothing_is_mounted() {
    let root = TempDir::new();
    std::fs::create_dir_all(root.0.join("app/config")).unwrap();
    write_config(&root.0.join("app/demo"), &mock_config("demo config b41c"));
    let gw = Running::start(entrypoint_command(&root.0, &["-log-style", "pretty"]));
    assert_eq!(mock_answer(&gw.url).await, "demo config b41c");
    let log = gw.log();
    assert!(log.contains("serving the demo config"), "{log}");
    // Flags after the image name reach the binary and win over LOG_STYLE=json.
    assert!(
        log.lines()
            .any(|l| l.contains("listening on") && serde_json::from_str::<Value>(l).is_err()),
        "{log}"
    );
    drop(gw);

    // Newer Bifrost images mount /app/data: a config.json there comes before the demo.
    write_config(&root.0.join("app/data"), &mock_config("data dir 5e21"));
    let gw = Running::start(entrypoint_command(&root.0, &[]));
    assert_eq!(mock_answer(&gw.url).await, "data dir 5e21");
    drop(gw);

    // An explicit -config or -app-dir wins over every fallback.
    let other = write_config(&root.0.join("elsewhere"), &mock_config("explicit 90d2"));
    for args in [
        ["-config", other.to_str().unwrap()],
        ["-app-dir", root.0.join("elsewhere").to_str().unwrap()],
    ] {
        let gw = Running::start(entrypoint_command(&root.0, &args));
        assert_eq!(mock_answer(&gw.url).await, "explicit 90d2", "{args:?}");
        assert!(!gw.log().contains("entrypoint:"), "{}", gw.log());
    }
}

#[tokio::test]
async fn healthcheck_probes_the_gateway_at_app_port() {
    let dir = TempDir::new();
    let path = write_config(&dir.0, &mock_config("x"));
    let mut cmd = Command::new(BIN);
    cmd.args(["-config", path.to_str().unwrap()])
        .env("APP_PORT", "0")
        .env("APP_HOST", "127.0.0.1");
    let gw = Running::start(cmd);
    let port = gw.port();
    let probe = |host: &str, port: &str| {
        Command::new(BIN)
            .arg("-healthcheck")
            .env("APP_HOST", host)
            .env("APP_PORT", port)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    // As the image runs it: bound to the wildcard address, probed on loopback.
    for host in ["0.0.0.0", "127.0.0.1"] {
        let out = probe(host, &port);
        assert!(
            out.status.success(),
            "{host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(gw);
    let out = probe("0.0.0.0", &port);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/health"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn grpc_port_serves_the_same_engine_and_plugins_next_to_http() {
    use bifrost_transport_grpc::pb;
    let dir = TempDir::new();
    let path = write_config(&dir.0, &mock_config("from one engine"));
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut cmd = Command::new(BIN);
    cmd.args(["-config", path.to_str().unwrap(), "-port", "0"])
        .args(["-host", "127.0.0.1", "-grpc-port", &port.to_string()]);
    let gw = Running::start(cmd);
    assert_eq!(mock_answer(&gw.url).await, "from one engine");
    let url = format!("http://127.0.0.1:{port}");
    let mut client = None;
    for _ in 0..50 {
        if let Ok(c) = pb::bifrost_service_client::BifrostServiceClient::connect(url.clone()).await
        {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut client = client.unwrap_or_else(|| panic!("no gRPC on {url}; log:\n{}", gw.log()));
    let answer = client
        .chat_completion(pb::ChatCompletionRequest {
            model: "mock/any".into(),
            messages: vec![pb::ChatMessage {
                role: pb::Role::User as i32,
                content: Some(pb::chat_message::Content::Text("hi".into())),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let text = answer.choices[0].message.as_ref().unwrap().content.clone();
    assert_eq!(
        text,
        Some(pb::chat_message::Content::Text("from one engine".into()))
    );
    assert!(gw.log().contains("serving gRPC on http://"), "{}", gw.log());
    let metrics = reqwest::get(format!("{}/metrics", gw.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"bifrost_grpc_requests_total{method="ChatCompletion",code="OK"} 1"#),
        "{metrics}"
    );
}
