//! The `/anthropic` drop-in route end to end: the real binary in front of a capturing mock
//! upstream that speaks both Anthropic's and OpenAI's APIs.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly, like the tests themselves"
)]

mod support;

use serde_json::{Value, json};
use support::*;

async fn capturing() -> MockServer {
    MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

fn surfaces_config(upstream: &str, drop_unsupported: bool) -> Value {
    let mut c = config(upstream);
    c["providers"]["anthropic"] = json!({
        "keys": [{"value": "sk-ant-a", "models": [], "weight": 1}],
        "network_config": {"base_url": upstream, "max_retries": 1,
            "retry_backoff_initial": 5, "retry_backoff_max": 20}
    });
    c["client"] = json!({"drop_unsupported_params": drop_unsupported});
    c
}

async fn setup(drop_unsupported: bool) -> (MockServer, Gateway) {
    let mock = capturing().await;
    let gw = Gateway::start(&surfaces_config(&mock.url(), drop_unsupported));
    (mock, gw)
}

/// Posts raw bytes with headers; returns (status, headers, body text).
async fn post_raw(
    url: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut rb = client().post(url).json(body);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    (status, h, resp.text().await.unwrap())
}

/// `(event name, data JSON)` of every SSE event.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("")
                .to_owned();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn messages_path(c: &bifrost_mock_upstream::CapturedRequest) -> bool {
    c.path == "/v1/messages"
}

#[tokio::test]
async fn anthropic_upstream_gets_the_body_as_sent_and_its_answer_comes_back_verbatim() {
    let (mock, gw) = setup(false).await;
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 64,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig-abc"},
                {"type": "text", "text": "ok"}]},
            {"role": "user", "content": [
                {"type": "search_result", "source": "s", "title": "t", "content": []},
                {"type": "text", "text": "hello upstream", "cache_control": {"type": "ephemeral"}}]}
        ],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "container": "c1",
        "fallbacks": ["openai/gpt-4o-mini"]
    });
    let (status, headers, text) = post_raw(
        &format!("{}/anthropic/v1/messages", gw.url),
        &body,
        &[
            ("anthropic-beta", "extended-cache-ttl-2025-04-11"),
            ("x-api-key", "caller-key"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(!headers.contains_key("x-bifrost-dropped-params"));
    // Byte for byte: the mock writes `id` first, then `type`.
    assert!(text.starts_with(r#"{"id":"msg_mock_"#), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["content"][0]["text"], "hello upstream");
    let sent = mock.captured().into_iter().find(messages_path).unwrap();
    let mut expected = body.clone();
    expected.as_object_mut().unwrap().remove("fallbacks");
    assert_eq!(
        sent.body, expected,
        "the upstream got the caller's body unchanged"
    );
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("extended-cache-ttl-2025-04-11")
    );
    assert_eq!(
        sent.header("x-api-key"),
        Some("sk-ant-a"),
        "configured key, not the caller's"
    );
}

#[tokio::test]
async fn anthropic_upstream_stream_events_are_relayed_as_sent() {
    let (mock, gw) = setup(false).await;
    let body = json!({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "one two three"}]});
    let (status, headers, text) =
        post_raw(&format!("{}/anthropic/v1/messages", gw.url), &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let names: Vec<String> = events(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    assert!(
        names.iter().any(|n| n == "ping"),
        "ping is relayed too: {names:?}"
    );
    for (name, data) in events(&text) {
        assert_eq!(data["type"], name.as_str());
    }
    let sent = mock.captured().into_iter().find(messages_path).unwrap();
    assert_eq!(sent.body["model"], "claude-sonnet-4-5");
    assert_eq!(sent.body["stream"], true);
}

#[tokio::test]
async fn other_provider_gets_a_faithful_translation() {
    let (mock, gw) = setup(false).await;
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 32,
    "system": "be brief",
    "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"location": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "\"sunny\""}]}
    ]});
    let (status, _, text) =
        post_raw(&format!("{}/anthropic/v1/messages", gw.url), &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "tool said: \"sunny\"");
    assert_eq!(v["stop_reason"], "end_turn");
    let sent = mock
        .captured()
        .into_iter()
        .find(|c| c.path == "/v1/chat/completions")
        .unwrap();
    assert_eq!(
        sent.body["messages"],
        json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "tool_calls": [{"id": "toolu_9", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_9", "content": "\"sunny\""}
        ])
    );
    assert_eq!(sent.body["max_tokens"], 32);
    assert_eq!(sent.body["tools"][0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn unsupported_fields_are_refused_by_default_and_dropped_with_the_switch() {
    let body = json!({"model": "openai/gpt-4o-mini", "max_tokens": 8, "top_k": 4,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]});
    let (_mock, gw) = setup(false).await;
    let (status, _, text) =
        post_raw(&format!("{}/anthropic/v1/messages", gw.url), &body, &[]).await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("top_k") && msg.contains("thinking"), "{msg}");

    let (mock, gw) = setup(true).await;
    let (status, headers, text) =
        post_raw(&format!("{}/anthropic/v1/messages", gw.url), &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        headers["x-bifrost-dropped-params"],
        "top_k,thinking,cache_control"
    );
    let sent = mock
        .captured()
        .into_iter()
        .find(|c| c.path == "/v1/chat/completions")
        .unwrap();
    assert!(sent.body.get("top_k").is_none() && sent.body.get("thinking").is_none());
}

#[tokio::test]
async fn errors_are_anthropic_shaped_before_and_inside_streams() {
    let (_mock, gw) = setup(false).await;
    let url = format!("{}/anthropic/v1/messages", gw.url);
    for model in ["claude-sonnet-4-5", "openai/gpt-4o-mini"] {
        let body = json!({"model": model, "max_tokens": 8,
            "messages": [{"role": "user", "content": "x"}],
            "mock": {"status": 429, "retry_after": 1}});
        let (status, headers, text) = post_raw(&url, &body, &[]).await;
        assert_eq!(status, 429, "{model}: {text}");
        assert_eq!(headers["retry-after"], "1");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error", "{model}");

        let body = json!({"model": model, "max_tokens": 8, "stream": true,
            "messages": [{"role": "user", "content": "a b c d e f"}],
            "mock": {"cut_after": 3, "chunks": 6}});
        let (status, _, text) = post_raw(&url, &body, &[]).await;
        assert_eq!(status, 200, "{model}: {text}");
        let evs = events(&text);
        let (last_name, last) = evs.last().unwrap();
        assert_eq!(last_name, "error", "{model}: {text}");
        assert_eq!(last["type"], "error");
        assert!(evs.iter().all(|(n, _)| n != "message_stop"));
    }
    let (status, _, text) =
        post_raw(&url, &json!({"model": "claude-x", "messages": []}), &[]).await;
    assert_eq!(status, 400);
    assert!(text.contains("max_tokens"), "{text}");
    let resp = client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
}

#[tokio::test]
async fn failed_anthropic_primary_falls_back_to_openai_in_anthropic_shape() {
    let (_mock, gw) = setup(false).await;
    // The scenario's first two requests fail: the Anthropic attempt and its retry. The
    // OpenAI fallback (third request) answers, and is translated to Anthropic's shape.
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 8,
        "messages": [{"role": "user", "content": "fall back"}],
        "fallbacks": ["openai/gpt-4o-mini"],
        "mock": {"status": 500, "scenario": "fb-anthropic", "fail_times": 2}});
    let (status, headers, text) =
        post_raw(&format!("{}/anthropic/v1/messages", gw.url), &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-bf-fallback-index"], "0");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "fall back");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"), "{v}");
}

#[tokio::test]
async fn count_tokens_is_forwarded_to_anthropic_and_estimated_elsewhere() {
    let (mock, gw) = setup(false).await;
    let url = format!("{}/anthropic/v1/messages/count_tokens", gw.url);
    let body = json!({"model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "four words right here"}]});
    let (status, headers, text) = post_raw(&url, &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert!(!headers.contains_key("x-bifrost-token-count"));
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["input_tokens"],
        4
    );
    let sent = mock
        .captured()
        .into_iter()
        .find(|c| c.path == "/v1/messages/count_tokens")
        .unwrap();
    assert_eq!(sent.body, body);

    let body = json!({"model": "openai/gpt-4o-mini",
        "messages": [{"role": "user", "content": "four words right here"}]});
    let (status, headers, text) = post_raw(&url, &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["x-bifrost-token-count"], "estimated");
}

#[tokio::test]
async fn models_are_listed_in_anthropic_shape() {
    let (_mock, gw) = setup(false).await;
    let v: Value = client()
        .get(format!("{}/anthropic/v1/models", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["has_more"], false);
    let data = v["data"].as_array().unwrap();
    assert!(data.iter().all(|m| m["type"] == "model"));
    assert!(
        data.iter()
            .any(|m| m["id"] == "anthropic/claude-sonnet-4-5-20250929")
    );
}
