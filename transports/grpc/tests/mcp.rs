//! MCP over gRPC: the `mcp` plugin (server-everything over stdio) injects tools into gRPC
//! chat requests, filtered by `x-bf-mcp-*` metadata, and agent mode answers unary and
//! streamed calls after running a tool.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use support::*;

/// server-everything's stdio command: `MCP_SERVER_EVERYTHING` (exported by `.ci/run`), the
/// copy `.ci/run` installs, else `npx -y`.
fn everything() -> Value {
    let installed = std::env::var("MCP_SERVER_EVERYTHING").ok().or_else(|| {
        let home = std::env::var("HOME").ok()?;
        let p = format!("{home}/.cache/bifrost-ci/mcp/node_modules/.bin/mcp-server-everything");
        std::path::Path::new(&p).exists().then_some(p)
    });
    match installed {
        Some(bin) => json!({"command": bin, "args": ["stdio"]}),
        None => json!({"command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-everything", "stdio"]}),
    }
}

#[tokio::test]
async fn tools_reach_grpc_requests_and_agent_mode_answers() {
    let up = mock().await;
    let mut cfg = config(&up.url());
    cfg["plugins"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "mcp", "config": {
        "client_configs": [{"name": "everything", "connection_type": "stdio",
            "stdio_config": everything(), "tools_to_auto_execute": ["get-tiny-image"]}]}}));
    let server = Server::start(&cfg).await;
    let mut client = server.client().await;

    // Not auto-executed: the model's call comes back; wait for the server to connect.
    let start = Instant::now();
    let call = loop {
        let req = with_md(
            chat("openai/gpt-4o-mini", "echo"),
            &[("x-bf-mcp-include-tools", "everything-echo")],
        );
        let r = client.chat_completion(req).await.unwrap().into_inner();
        let calls = r.choices[0]
            .message
            .as_ref()
            .map(|m| m.tool_calls.clone())
            .unwrap_or_default();
        if let Some(c) = calls.first() {
            break c.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "MCP tools never reached the model"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        call.function.as_ref().and_then(|f| f.name.as_deref()),
        Some("everything-echo")
    );
    let sent = up.last_request().unwrap().body;
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "{sent}");

    let want = "tool said: Here's the image you requested:\n[image content, image/png]\nThe image above is the MCP logo.";
    let md = [("x-bf-mcp-include-tools", "everything-get-tiny-image")];
    let r = client
        .chat_completion(with_md(chat("openai/gpt-4o-mini", "logo"), &md))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(text_of(&r), want);
    let chunks: Vec<_> = client
        .chat_completion_stream(with_md(chat_stream("openai/gpt-4o-mini", "logo"), &md))
        .await
        .unwrap()
        .into_inner()
        .collect()
        .await;
    let text: String = chunks
        .iter()
        .map(|c| delta_text(c.as_ref().unwrap()))
        .collect();
    assert_eq!(text, want);
}
