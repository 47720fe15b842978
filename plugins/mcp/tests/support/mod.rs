//! Real MCP servers for the tests: a small Rust server built with rmcp over streamable HTTP,
//! the reference `@modelcontextprotocol/server-everything` over stdio, and the engine with
//! the mock upstream as the model.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support, shared by several test files"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bifrost_core::{Bifrost, BifrostConfig};
use bifrost_mock_upstream::{MockConfig, MockServer};
use bifrost_plugin_mcp::{ConnState, McpConfig, McpPlugin};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The Rust test server's tools: `weather`, `echo`, `fail` (reports an error), `slow`
/// (sleeps `ms`), `calls` (how many calls this server has served).
#[derive(Clone, Default)]
pub struct TestServer {
    calls: Arc<AtomicU64>,
}

fn schema(v: Value) -> Arc<serde_json::Map<String, Value>> {
    Arc::new(v.as_object().unwrap().clone())
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let obj = |props: Value, req: &[&str]| {
            schema(json!({"type": "object", "properties": props, "required": req}))
        };
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new(
                "weather",
                "Current weather of a city",
                obj(json!({"location": {"type": "string"}}), &["location"]),
            ),
            Tool::new(
                "echo",
                "Echoes text",
                obj(json!({"text": {"type": "string"}}), &["text"]),
            ),
            Tool::new("fail", "Always fails", obj(json!({}), &[])),
            Tool::new(
                "slow",
                "Sleeps ms milliseconds",
                obj(json!({"ms": {"type": "integer"}}), &["ms"]),
            ),
            Tool::new("calls", "Calls served", obj(json!({}), &[])),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let args = request.arguments.unwrap_or_default();
        let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let result = match request.name.as_ref() {
            "weather" => CallToolResult::success(vec![ContentBlock::text(format!(
                "sunny, 21C in {}",
                text("location")
            ))]),
            "echo" => CallToolResult::success(vec![ContentBlock::text(text("text"))]),
            "fail" => CallToolResult::error(vec![ContentBlock::text("disk on fire")]),
            "slow" => {
                let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                CallToolResult::success(vec![ContentBlock::text("done")])
            }
            "calls" => CallToolResult::success(vec![ContentBlock::text(n.to_string())]),
            other => {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool {other}"),
                    None,
                ));
            }
        };
        Ok(result.into())
    }
}

/// A running Rust MCP server; dropping it (or `stop`) shuts it down.
pub struct RustServer {
    pub url: String,
    pub addr: std::net::SocketAddr,
    stop: CancellationToken,
}

impl RustServer {
    /// Serves on `127.0.0.1:0`.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Serves on `addr` (a restart on the same port).
    pub async fn start_on(addr: std::net::SocketAddr) -> Self {
        let stop = CancellationToken::new();
        let config =
            StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token());
        let service: StreamableHttpService<TestServer, LocalSessionManager> =
            StreamableHttpService::new(|| Ok(TestServer::default()), Default::default(), config);
        let router = axum::Router::new().nest_service("/mcp", service);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { token.cancelled_owned().await })
                .await;
        });
        Self {
            url: format!("http://{addr}/mcp"),
            addr,
            stop,
        }
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for RustServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The client config of the Rust server.
pub fn http_client(name: &str, url: &str) -> Value {
    json!({"name": name, "connection_type": "http", "connection_string": url})
}

/// How to start server-everything over stdio: `MCP_SERVER_EVERYTHING` (the installed bin,
/// as `.ci/run` exports it), else the copy `.ci/run` installs, else `npx -y`.
pub fn everything_client(name: &str) -> Value {
    let installed = std::env::var("MCP_SERVER_EVERYTHING").ok().or_else(|| {
        let home = std::env::var("HOME").ok()?;
        let p = format!("{home}/.cache/bifrost-ci/mcp/node_modules/.bin/mcp-server-everything");
        std::path::Path::new(&p).exists().then_some(p)
    });
    let (command, args) = match installed {
        Some(bin) => (bin, vec!["stdio".to_owned()]),
        None => (
            "npx".to_owned(),
            vec![
                "-y".to_owned(),
                "@modelcontextprotocol/server-everything".to_owned(),
                "stdio".to_owned(),
            ],
        ),
    };
    json!({"name": name, "connection_type": "stdio",
           "stdio_config": {"command": command, "args": args}})
}

/// Fast health checks and reconnects, so tests see crashes quickly.
pub fn quick_settings() -> Value {
    json!({"health_check_interval": "200ms", "reconnect_backoff_initial": "100ms",
           "reconnect_backoff_max": "500ms", "connect_timeout": "60s",
           "tool_execution_timeout": "2s"})
}

/// The plugin for these client configs.
pub fn plugin(clients: Vec<Value>) -> Arc<McpPlugin> {
    plugin_with(clients, quick_settings())
}

/// The plugin with these settings.
pub fn plugin_with(clients: Vec<Value>, settings: Value) -> Arc<McpPlugin> {
    let cfg =
        McpConfig::from_value(&json!({"client_configs": clients, "tool_manager_config": settings}))
            .unwrap();
    Arc::new(McpPlugin::start(cfg).unwrap())
}

/// Waits until `cond` holds (panics after `limit`).
pub async fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until client `name` is connected.
pub async fn connected(p: &McpPlugin, name: &str) {
    wait_for(
        Duration::from_secs(60),
        &format!("{name} connected"),
        || {
            p.manager()
                .statuses()
                .iter()
                .any(|s| s.name == name && s.state == ConnState::Connected)
        },
    )
    .await;
}

/// The mock upstream (the model): a tool call of the first offered tool
/// (`{"location":"Paris"}`), then `tool said: <result>` after a tool message.
pub async fn upstream() -> MockServer {
    MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

/// The engine with the mock upstream as `openai` and `plugin`.
pub fn engine(upstream: &MockServer, plugin: Arc<McpPlugin>) -> Bifrost {
    let cfg = BifrostConfig::from_json(
        &json!({"providers": {"openai": {
            "keys": [{"value": "sk-test"}],
            "network_config": {"base_url": upstream.url()}
        }}})
        .to_string(),
    )
    .unwrap();
    Bifrost::builder(cfg).plugin(plugin).build().unwrap()
}
