//! The mock's Anthropic Messages API over real HTTP.

#![allow(clippy::unwrap_used, reason = "test helpers should fail loudly")]

use std::time::Duration;

use bifrost_mock_upstream::{MockConfig, MockServer};
use futures::StreamExt;
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

/// A `POST /v1/messages` with Anthropic's headers.
fn post(mock: &MockServer, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}/v1/messages", mock.url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

fn body(content: Value) -> Value {
    json!({"model": "claude-test", "max_tokens": 100, "system": "be brief",
           "messages": [{"role": "user", "content": content}]})
}

fn weather_tools() -> Value {
    json!([{"name": "get_weather", "description": "Weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}])
}

/// `(event name, data)` pairs of an SSE body.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn message_echoes_last_user_text_in_anthropic_shape() {
    let mock = server().await;
    let resp = post(&mock, &body(json!("Hello mock world")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-mock-api-key"], "sk-ant-test");
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-test");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello mock world"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 5, "output_tokens": 3,
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
    assert_eq!(mock.requests_for_key("sk-ant-test"), 1);
    assert_eq!(mock.requests_for_path("/v1/messages"), 1);

    // Block content, without the /v1 prefix.
    let blocks = body(json!([{"type": "text", "text": "part one"},
                             {"type": "text", "text": "part two"}]));
    let v: Value = client()
        .post(format!("{}/messages", mock.url()))
        .header("anthropic-version", "2023-06-01")
        .json(&blocks)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], "part one part two");
}

#[tokio::test]
async fn tools_give_tool_use_and_tool_results_are_answered() {
    let mock = server().await;
    let mut req = body(json!("weather in Paris?"));
    req["tools"] = weather_tools();
    let v: Value = post(&mock, &req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather",
                "input": {"location": "Paris"}}])
    );

    req["messages"] = json!([
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1",
            "name": "get_weather", "input": {"location": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1",
            "content": "sunny"}]}
    ]);
    let v: Value = post(&mock, &req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["content"][0]["text"], "tool said: sunny");
}

#[tokio::test]
async fn stream_sends_every_event_type_with_names() {
    let mock = server().await;
    let mut req = body(json!("one two three four five"));
    req["stream"] = json!(true);
    req["mock"] = json!({"chunks": 5});
    let resp = post(&mock, &req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let evs = events(&resp.text().await.unwrap());
    for (name, data) in &evs {
        assert_eq!(data["type"], name.as_str());
    }
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let start = &evs[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 7);
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "one two three four five");
    assert_eq!(
        evs[9].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 5}})
    );
}

#[tokio::test]
async fn streamed_tool_use_splits_input_json() {
    let mock = server().await;
    let mut req = body(json!("weather?"));
    req["tools"] = weather_tools();
    req["stream"] = json!(true);
    let evs = events(
        &post(&mock, &req)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_mock_1", "name": "get_weather", "input": {}})
    );
    let parts: Vec<String> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(parts.len() >= 3, "{parts:?}");
    let input: Value = serde_json::from_str(&parts.concat()).unwrap();
    assert_eq!(input, json!({"location": "Paris"}));
    let delta = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
    assert_eq!(evs.last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn faults_answer_anthropic_error_bodies() {
    let mock = server().await;
    let resp = post(&mock, &body(json!("x")))
        .header("x-mock-status", "429")
        .header("x-mock-retry-after", "7")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["x-mock-api-key"], "sk-ant-test");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "mock error 429"}})
    );

    let mut req = body(json!("x"));
    req["mock"] = json!({"status": 529, "scenario": "busy", "fail_times": 1});
    let resp = post(&mock, &req).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
    let resp = post(&mock, &req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.requests_for_scenario("busy"), 2);
}

#[tokio::test]
async fn stream_cut_ends_without_message_stop() {
    let mock = server().await;
    let mut req = body(json!("one two three four five six"));
    req["stream"] = json!(true);
    let resp = post(&mock, &req)
        .header("x-mock-cut-after", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut received = Vec::new();
    let mut failed = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end with an error, not a clean end");
    let text = String::from_utf8(received).unwrap();
    assert_eq!(events(&text).len(), 3, "{text}");
    assert!(!text.contains("message_stop"));
}

#[tokio::test]
async fn missing_version_header_or_max_tokens_is_a_400() {
    let mock = server().await;
    let resp = client()
        .post(format!("{}/v1/messages", mock.url()))
        .json(&body(json!("x")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic-version")
    );

    let mut req = body(json!("x"));
    req.as_object_mut().unwrap().remove("max_tokens");
    let v: Value = post(&mock, &req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
}

#[tokio::test]
async fn models_in_anthropic_shape_with_paging() {
    let mock = server().await;
    let list = |query: &'static str| {
        let request = client()
            .get(format!("{}/v1/models{query}", mock.url()))
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", "2023-06-01")
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    let all = list("").await;
    assert_eq!(all["has_more"], false);
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    assert_eq!(all["data"][0]["type"], "model");
    assert!(
        all["data"][0]["created_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let first = list("?limit=2").await;
    assert_eq!(first["has_more"], true);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let last_id = first["last_id"].as_str().unwrap().to_owned();
    assert_eq!(last_id, first["data"][1]["id"].as_str().unwrap());
    let rest: Value = client()
        .get(format!(
            "{}/v1/models?limit=2&after_id={last_id}",
            mock.url()
        ))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);

    // Without anthropic-version: OpenAI's list.
    let openai: Value = client()
        .get(format!("{}/v1/models", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
}
