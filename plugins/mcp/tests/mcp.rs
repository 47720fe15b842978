//! The MCP plugin against real MCP servers: a Rust server (rmcp) over streamable HTTP and
//! the reference server-everything (npm) over stdio; the mock upstream plays the model.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod support;

use std::time::Duration;

use bifrost_core::schemas::{BifrostRequest, ChatMessage, ProviderKey, Role};
use bifrost_core::{ApiRequest, Plugin, RequestContext};
use bifrost_plugin_mcp::{ConnState, McpPlugin};
use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};
use support::*;

async fn api(
    p: &McpPlugin,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, (u16, String)> {
    let api = p.api().unwrap();
    api.call(ApiRequest {
        method,
        path: path.to_owned(),
        query: vec![],
        body,
    })
    .await
    .map_err(|e| (e.http_status(), e.error.message.clone()))
}

fn call(name: &str, args: &str) -> Value {
    json!({"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}})
}

fn tool_names(p: &McpPlugin, client: &str) -> Vec<String> {
    p.manager()
        .statuses()
        .into_iter()
        .find(|s| s.name == client)
        .map(|s| s.tools)
        .unwrap_or_default()
}

fn chat(text: &str) -> BifrostRequest {
    BifrostRequest::chat(
        ProviderKey::OpenAI,
        "gpt-4o-mini",
        vec![ChatMessage::text(Role::User, text)],
    )
}

fn ctx_with(headers: &[(&'static str, &'static str)]) -> RequestContext {
    let mut ctx = RequestContext::new("req-1");
    for (k, v) in headers {
        ctx.headers.append(*k, http::HeaderValue::from_static(v));
    }
    ctx
}

fn offered(upstream: &bifrost_mock_upstream::MockServer) -> Vec<String> {
    let body = upstream.last_request().unwrap().body;
    body["tools"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn tools_are_discovered_namespaced_and_filtered_by_config() {
    let server = RustServer::start().await;
    let mut filtered = http_client("picky", &server.url);
    filtered["tools_to_execute"] = json!(["*"]);
    filtered["tools_to_skip"] = json!(["fail", "slow", "calls"]);
    let mut only = http_client("only", &server.url);
    only["tools_to_execute"] = json!(["echo"]);
    let mut none = http_client("none", &server.url);
    none["tools_to_execute"] = json!([]);
    let mut sse = http_client("viasse", &server.url);
    sse["connection_type"] = json!("sse");
    let p = plugin(vec![
        http_client("local", &server.url),
        filtered,
        only,
        none,
        sse,
    ]);
    for c in ["local", "picky", "only", "none", "viasse"] {
        connected(&p, c).await;
    }
    assert_eq!(tool_names(&p, "only"), ["only-echo"]);
    assert!(tool_names(&p, "none").is_empty());
    assert_eq!(
        tool_names(&p, "viasse").len(),
        5,
        "sse connects with streamable HTTP"
    );
    assert_eq!(
        tool_names(&p, "local"),
        [
            "local-weather",
            "local-echo",
            "local-fail",
            "local-slow",
            "local-calls"
        ]
    );
    assert_eq!(tool_names(&p, "picky"), ["picky-weather", "picky-echo"]);
    let clients = api(&p, Method::GET, "/clients", None).await.unwrap();
    let local = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "local")
        .unwrap();
    assert_eq!(local["state"], "connected");
    assert_eq!(local["connection_type"], "http");
    assert_eq!(local["config"]["connection_string"], "<redacted>");
}

#[tokio::test]
async fn execute_answers_a_tool_message_and_names_each_failure() {
    let server = RustServer::start().await;
    let mut settings = quick_settings();
    settings["tool_execution_timeout"] = json!("300ms");
    let p = plugin_with(vec![http_client("local", &server.url)], settings);
    connected(&p, "local").await;

    let msg = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("local-echo", r#"{"text":"\"sunny\""}"#)),
    )
    .await
    .unwrap();
    // The result goes back as the tool said it: no re-quoting.
    assert_eq!(
        msg,
        json!({"role": "tool", "content": "\"sunny\"", "tool_call_id": "call_1"})
    );

    let err = |r: Result<Value, (u16, String)>| r.unwrap_err();
    let (status, m) = err(api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("local-nope", "{}")),
    )
    .await);
    assert_eq!(status, 404, "{m}");
    let (status, m) = err(api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("local-echo", "{not json")),
    )
    .await);
    assert_eq!(status, 400, "{m}");
    assert!(m.contains("not valid JSON"), "{m}");
    let (status, m) = err(api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("local-fail", "")),
    )
    .await);
    assert_eq!(status, 502, "{m}");
    assert!(m.contains("disk on fire"), "{m}");
    let (status, m) = err(api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("local-slow", r#"{"ms":3000}"#)),
    )
    .await);
    assert_eq!(status, 504, "{m}");
    let (status, _) = err(api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(json!({"function": {}})),
    )
    .await);
    assert_eq!(status, 400);
    // A bare tool name (Bifrost v1.x) still resolves.
    let msg = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("weather", r#"{"location":"Oslo"}"#)),
    )
    .await
    .unwrap();
    assert_eq!(msg["content"], "sunny, 21C in Oslo");
}

#[tokio::test]
async fn clients_are_added_and_removed_at_runtime() {
    let server = RustServer::start().await;
    let p = plugin(vec![]);
    assert_eq!(
        api(&p, Method::GET, "/clients", None).await.unwrap(),
        json!([])
    );
    api(
        &p,
        Method::POST,
        "/client",
        Some(http_client("late", &server.url)),
    )
    .await
    .unwrap();
    let (status, _) = api(
        &p,
        Method::POST,
        "/client",
        Some(http_client("late", &server.url)),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 409);
    let (status, m) = api(
        &p,
        Method::POST,
        "/client",
        Some(json!({"name": "bad-name", "connection_type": "http", "connection_string": "x"})),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 400, "{m}");
    connected(&p, "late").await;
    assert!(tool_names(&p, "late").contains(&"late-echo".to_owned()));
    api(&p, Method::DELETE, "/client/late", None).await.unwrap();
    assert!(p.manager().statuses().is_empty());
    let (status, _) = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("late-echo", "{}")),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 404);
    let (status, _) = api(&p, Method::DELETE, "/client/late", None)
        .await
        .unwrap_err();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn tools_are_injected_per_request_filters_without_duplicates() {
    let server = RustServer::start().await;
    let p = plugin(vec![
        http_client("a", &server.url),
        http_client("b", &server.url),
    ]);
    connected(&p, "a").await;
    connected(&p, "b").await;
    let up = upstream().await;
    let engine = engine(&up, p.clone());

    let mut ctx = ctx_with(&[]);
    engine.chat_completion(&mut ctx, chat("hi")).await.unwrap();
    assert_eq!(offered(&up).len(), 10);

    let mut ctx = ctx_with(&[("x-bf-mcp-include-clients", "b")]);
    engine.chat_completion(&mut ctx, chat("hi")).await.unwrap();
    assert!(offered(&up).iter().all(|n| n.starts_with("b-")));

    let mut ctx = ctx_with(&[
        ("x-bf-mcp-include-tools", "a-weather,b/*"),
        ("x-bf-mcp-exclude-tools", "b-slow"),
        ("x-bf-mcp-exclude-clients", "nobody"),
    ]);
    engine.chat_completion(&mut ctx, chat("hi")).await.unwrap();
    assert_eq!(
        offered(&up),
        ["a-weather", "b-weather", "b-echo", "b-fail", "b-calls"]
    );

    let mut ctx = ctx_with(&[("x-bf-mcp-include-tools", "")]);
    engine.chat_completion(&mut ctx, chat("hi")).await.unwrap();
    assert!(offered(&up).is_empty());

    // The caller's own tool of the same name wins and is offered once.
    let mut req = chat("hi");
    req.params.tools = Some(vec![
        serde_json::from_value(json!({"type": "function",
        "function": {"name": "a-echo", "description": "mine"}}))
        .unwrap(),
    ]);
    let mut ctx = ctx_with(&[("x-bf-mcp-include-clients", "a")]);
    let resp = engine.chat_completion(&mut ctx, req).await.unwrap();
    let body = up.last_request().unwrap().body;
    let tools = body["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 5);
    assert_eq!(tools[0]["function"]["description"], "mine");
    // Without agent mode the model's tool call reaches the caller as usual.
    let msg = resp.choices.unwrap()[0].message.clone().unwrap();
    assert_eq!(
        msg.tool_calls.unwrap()[0].function.name.as_deref(),
        Some("a-echo")
    );
}

#[tokio::test]
async fn agent_mode_runs_the_tool_and_returns_the_final_answer() {
    let server = RustServer::start().await;
    let mut client = http_client("local", &server.url);
    client["tools_to_auto_execute"] = json!(["weather"]);
    let p = plugin(vec![client]);
    connected(&p, "local").await;
    let up = upstream().await;
    let engine = engine(&up, p.clone());
    // The mock model calls the first offered tool: make it weather.
    let headers = [("x-bf-mcp-include-tools", "local-weather,local-echo")];

    let mut ctx = ctx_with(&headers);
    let resp = engine
        .chat_completion(&mut ctx, chat("weather in Paris?"))
        .await
        .unwrap();
    assert_eq!(
        resp.first_text().as_deref(),
        Some("tool said: sunny, 21C in Paris")
    );
    let reqs = up.captured();
    assert_eq!(reqs.len(), 2, "one tool round, one answer");
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(
        msgs[1]["tool_calls"][0]["function"]["name"],
        "local-weather"
    );
    assert_eq!(
        msgs[2],
        json!({"role": "tool", "content": "sunny, 21C in Paris", "tool_call_id": "call_mock_1"})
    );

    // Streaming: the tool round is not streamed, the final answer is.
    up.reset();
    let mut ctx = ctx_with(&headers);
    let mut stream = engine
        .chat_completion_stream(&mut ctx, chat("weather in Paris?"))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        let delta = chunk
            .choices
            .as_ref()
            .and_then(|c| c.first())
            .and_then(|c| c.delta.clone());
        if let Some(d) = delta {
            assert!(d.tool_calls.is_none(), "a tool round reached the client");
            text.push_str(&d.text_content().unwrap_or_default());
        }
    }
    assert_eq!(text, "tool said: sunny, 21C in Paris");
    assert_eq!(up.captured().len(), 2);

    // A tool that is not auto-executed ends the loop: the caller gets the call.
    up.reset();
    let mut ctx = ctx_with(&[("x-bf-mcp-include-tools", "local-echo")]);
    let resp = engine
        .chat_completion(&mut ctx, chat("echo?"))
        .await
        .unwrap();
    let msg = resp.choices.unwrap()[0].message.clone().unwrap();
    assert_eq!(
        msg.tool_calls.unwrap()[0].function.name.as_deref(),
        Some("local-echo")
    );
    assert_eq!(up.captured().len(), 1);
}

#[tokio::test]
async fn agent_mode_stops_at_max_depth_and_feeds_tool_errors_back() {
    let server = RustServer::start().await;
    let mut client = http_client("local", &server.url);
    client["tools_to_auto_execute"] = json!(["*"]);
    let mut settings = quick_settings();
    settings["max_agent_depth"] = json!(1);
    let p = plugin_with(vec![client.clone()], settings);
    connected(&p, "local").await;
    let up = upstream().await;
    let engine = engine(&up, p.clone());
    let mut ctx = ctx_with(&[("x-bf-mcp-include-tools", "local-weather")]);
    let resp = engine.chat_completion(&mut ctx, chat("hi")).await.unwrap();
    let msg = resp.choices.unwrap()[0].message.clone().unwrap();
    assert!(
        msg.tool_calls.is_some(),
        "depth 1: the tool call comes back"
    );
    assert_eq!(up.captured().len(), 1);

    // A failing tool: its error goes to the model as the tool message.
    let p = plugin(vec![client]);
    connected(&p, "local").await;
    let up = upstream().await;
    let engine = support::engine(&up, p.clone());
    let mut ctx = ctx_with(&[("x-bf-mcp-include-tools", "local-fail")]);
    let resp = engine.chat_completion(&mut ctx, chat("hi")).await.unwrap();
    let text = resp.first_text().unwrap();
    assert!(text.starts_with("tool said: Error: "), "{text}");
    assert!(text.contains("disk on fire"), "{text}");
}

#[tokio::test]
async fn http_server_crash_is_noticed_and_reconnected() {
    let server = RustServer::start().await;
    let addr = server.addr;
    let p = plugin(vec![http_client("local", &server.url)]);
    connected(&p, "local").await;
    server.stop();
    drop(server);
    wait_for(Duration::from_secs(20), "disconnect noticed", || {
        p.manager().statuses()[0].state != ConnState::Connected
    })
    .await;
    assert!(
        p.manager().tools_for(&Default::default()).is_empty(),
        "a dead server's tools are not offered"
    );
    let (status, m) = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("local-echo", "{}")),
    )
    .await
    .unwrap_err();
    assert_eq!(status, 503, "{m}");
    let _again = RustServer::start_on(addr).await;
    wait_for(Duration::from_secs(20), "reconnected", || {
        let s = &p.manager().statuses()[0];
        s.state == ConnState::Connected && s.connections == 2
    })
    .await;
    let msg = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("local-echo", r#"{"text":"back"}"#)),
    )
    .await
    .unwrap();
    assert_eq!(msg["content"], "back");
}

#[tokio::test]
async fn unreachable_server_does_not_block_and_keeps_retrying() {
    let started = std::time::Instant::now();
    let p = plugin(vec![http_client("gone", "http://127.0.0.1:9/mcp")]);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "startup waited for a server"
    );
    wait_for(Duration::from_secs(10), "a failed attempt", || {
        p.manager().statuses()[0].last_error.is_some()
    })
    .await;
    let s = &p.manager().statuses()[0];
    assert_ne!(s.state, ConnState::Connected);
    assert!(s.tools.is_empty());
    p.cleanup().await;
}

#[tokio::test]
async fn server_everything_over_stdio_discovery_execute_and_crash() {
    let p = plugin(vec![everything_client("everything")]);
    connected(&p, "everything").await;
    let tools = tool_names(&p, "everything");
    assert!(tools.contains(&"everything-echo".to_owned()), "{tools:?}");
    assert!(
        tools.contains(&"everything-get-sum".to_owned()),
        "{tools:?}"
    );
    let msg = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("everything-echo", r#"{"message":"hi"}"#)),
    )
    .await
    .unwrap();
    assert_eq!(msg["content"], "Echo: hi");
    let sum = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("everything-get-sum", r#"{"a":2,"b":3}"#)),
    )
    .await
    .unwrap();
    assert!(sum["content"].as_str().unwrap().contains('5'), "{sum}");

    // Kill the server process: the client notices and starts a new one.
    let pid = p.manager().statuses()[0].pid.unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for(Duration::from_secs(60), "restarted", || {
        let s = &p.manager().statuses()[0];
        s.state == ConnState::Connected && s.connections == 2 && s.pid != Some(pid)
    })
    .await;
    let msg = api(
        &p,
        Method::POST,
        "/tool/execute",
        Some(call("everything-echo", r#"{"message":"again"}"#)),
    )
    .await
    .unwrap();
    assert_eq!(msg["content"], "Echo: again");
    p.cleanup().await;
    assert!(p.manager().statuses().is_empty());
}
