//! The mock's Cohere v2 API over real HTTP.

#![allow(clippy::unwrap_used, reason = "test helpers should fail loudly")]

use std::time::Duration;

use bifrost_mock_upstream::{MockConfig, MockServer};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn server() -> MockServer {
    MockServer::start(MockConfig::default()).await.unwrap()
}

fn post(mock: &MockServer, path: &str, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}{path}", mock.url()))
        .bearer_auth("co-key")
        .json(body)
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}])
}

/// `(event name, data)` pairs of an SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_default();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn chat_echoes_and_reports_usage() {
    let mock = server().await;
    let resp = post(
        &mock,
        "/v2/chat",
        &json!({"model": "command-a-03-2025", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello cohere"}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-mock-api-key"], "co-key");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["finish_reason"], "COMPLETE");
    assert_eq!(
        body["message"],
        json!({"role": "assistant", "content": [{"type": "text", "text": "hello cohere"}]})
    );
    assert_eq!(
        body["usage"]["tokens"],
        json!({"input_tokens": 4, "output_tokens": 2})
    );
    assert_eq!(mock.requests_for_path("/v2/chat"), 1);
}

#[tokio::test]
async fn tool_call_then_tool_result() {
    let mock = server().await;
    let body: Value = post(
        &mock,
        "/v2/chat",
        &json!({"model": "m", "tools": tools(),
            "messages": [{"role": "user", "content": "weather in Paris?"}]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["finish_reason"], "TOOL_CALL");
    let call = &body["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"location":"Paris"}"#);

    let body: Value = post(
        &mock,
        "/v2/chat",
        &json!({"model": "m", "tools": tools(), "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "tool_calls": [call.clone()]},
            {"role": "tool", "tool_call_id": call["id"].clone(), "content": "sunny"}]}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["message"]["content"][0]["text"], "tool said: sunny");
}

#[tokio::test]
async fn stream_is_typed_events_ending_with_message_end() {
    let mock = server().await;
    let text = post(
        &mock,
        "/v2/chat",
        &json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "one two three"}]}),
    )
    .header("x-mock-chunks", "3")
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let evs = events(&text);
    let kinds: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "message-start",
            "content-start",
            "content-delta",
            "content-delta",
            "content-delta",
            "content-end",
            "message-end"
        ]
    );
    for (name, data) in &evs {
        assert_eq!(data["type"], name.as_str());
    }
    let joined: String = evs
        .iter()
        .filter_map(|(_, d)| d["delta"]["message"]["content"]["text"].as_str())
        .collect();
    assert_eq!(joined, "one two three");
    assert_eq!(evs[6].1["delta"]["finish_reason"], "COMPLETE");
    assert!(!text.contains("[DONE]"));

    let text = post(
        &mock,
        "/v2/chat",
        &json!({"model": "m", "stream": true, "tools": tools(),
            "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let evs = events(&text);
    let args: String = evs
        .iter()
        .filter(|(n, _)| n == "tool-call-delta")
        .filter_map(|(_, d)| d["delta"]["message"]["tool_calls"]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, r#"{"location":"Paris"}"#);
    assert!(evs.iter().any(|(n, _)| n == "tool-plan-delta"));
    assert_eq!(evs.last().unwrap().1["delta"]["finish_reason"], "TOOL_CALL");
}

#[tokio::test]
async fn errors_are_cohere_shaped_with_retry_after() {
    let mock = server().await;
    let resp = post(
        &mock,
        "/v2/chat",
        &json!({"model": "m", "messages": [],
        "mock": {"status": 429, "retry_after": 3}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"message": "mock error 429"}));
}

#[tokio::test]
async fn embed_requires_v2_fields() {
    let mock = server().await;
    let body: Value = post(
        &mock,
        "/v2/embed",
        &json!({"model": "embed-v4.0", "texts": ["a", "b"], "input_type": "search_document",
            "embedding_types": ["float"], "output_dimension": 4}),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let vectors = body["embeddings"]["float"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    assert_eq!(vectors[0].as_array().unwrap().len(), 4);
    assert_eq!(body["meta"]["billed_units"]["input_tokens"], 2);

    let resp = post(
        &mock,
        "/v2/embed",
        &json!({"model": "embed-v4.0", "texts": ["a"], "embedding_types": ["float"]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("input_type"));
}
