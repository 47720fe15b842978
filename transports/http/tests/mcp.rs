//! MCP in the real `bifrost-http` binary: config.json's top-level `mcp` block connects the
//! reference server-everything over stdio; its tools reach the model, `/v1/mcp/tool/execute`
//! runs a tool call, `/api/mcp/clients` reports it, and agent mode answers (whole and
//! streamed) after running a tool. Plugin-level cases live in `plugins/mcp/tests`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

mod support;

use std::time::{Duration, Instant};

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

async fn wait_connected(gw: &str) -> Value {
    let start = Instant::now();
    loop {
        let resp = client()
            .get(format!("{gw}/api/mcp/clients"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        if body[0]["state"] == "connected" {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "server-everything did not connect: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn chat(gw: &str, include: &str, stream: bool) -> reqwest::Response {
    let mut body = chat_body("openai/gpt-4o-mini", "use a tool");
    body["stream"] = json!(stream);
    client()
        .post(format!("{gw}/v1/chat/completions"))
        .header("x-bf-mcp-include-tools", include)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn mcp_block_tools_execute_and_agent_mode_through_the_gateway() {
    let up = MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let mut cfg = config(&up.url());
    cfg["mcp"] = json!({"client_configs": [{
        "name": "everything", "connection_type": "stdio", "stdio_config": everything(),
        "tools_to_auto_execute": ["get-tiny-image"]
    }]});
    let gw = Gateway::start(&cfg);
    let clients = wait_connected(&gw.url).await;
    let tools = clients[0]["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("everything-echo")), "{clients}");

    // Bifrost's execute route: a tool call in, the chat `tool` message out.
    let (status, _, msg) = post(
        &format!("{}/v1/mcp/tool/execute", gw.url),
        &json!({"id": "call_9", "type": "function",
                "function": {"name": "everything-echo", "arguments": "{\"message\":\"hi\"}"}}),
    )
    .await;
    assert_eq!(status, 200, "{msg}");
    assert_eq!(
        msg,
        json!({"role": "tool", "content": "Echo: hi", "tool_call_id": "call_9"})
    );
    let (status, _, err) = post(
        &format!("{}/v1/mcp/tool/execute", gw.url),
        &json!({"function": {"name": "everything-nope", "arguments": "{}"}}),
    )
    .await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["type"], "mcp_tool_not_found", "{err}");

    // Not auto-executed: the model's call reaches the caller, the tools reached the model.
    let resp: Value = chat(&gw.url, "everything-echo", false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "everything-echo",
        "{resp}"
    );
    let sent = up.last_request().unwrap().body;
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "{sent}");

    // Agent mode: the gateway runs get-tiny-image and returns the model's final answer.
    let want = "tool said: Here's the image you requested:\n[image content, image/png]\nThe image above is the MCP logo.";
    let resp: Value = chat(&gw.url, "everything-get-tiny-image", false)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["choices"][0]["message"]["content"], want, "{resp}");
    let events = sse_events(chat(&gw.url, "everything-get-tiny-image", true).await).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let mut text = String::new();
    for e in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(e).unwrap();
        assert!(
            chunk["choices"][0]["delta"]["tool_calls"].is_null(),
            "a tool round was streamed: {e}"
        );
        text.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
    }
    assert_eq!(text, want);
}
