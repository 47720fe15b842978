//! The mock's Azure OpenAI deployment routes over real HTTP.

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

fn chat_body(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}]})
}

const CHAT: &str = "/openai/deployments/gpt4o-prod/chat/completions";

#[tokio::test]
async fn chat_needs_api_version_and_api_key_and_counts_the_key() {
    let mock = server().await;
    let url = format!("{}{CHAT}?api-version=2024-10-21", mock.url());
    let resp = client()
        .post(&url)
        .header("api-key", "az-key-1")
        .json(&chat_body("hello azure"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-mock-api-key"], "az-key-1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "hello azure");
    assert_eq!(mock.requests_for_key("az-key-1"), 1);
    assert_eq!(mock.requests_for_path(CHAT), 1);

    let resp = client()
        .post(format!("{}{CHAT}", mock.url()))
        .header("api-key", "az-key-1")
        .json(&chat_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api-version")
    );

    let resp = client()
        .post(&url)
        .bearer_auth("not-azure-auth")
        .json(&chat_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Rejected requests never reach the handlers' counters.
    assert_eq!(mock.total_requests(), 1);
}

#[tokio::test]
async fn stream_completions_embeddings_models_and_faults() {
    let mock = server().await;
    let q = "?api-version=2024-10-21";
    let base = format!("{}/openai/deployments/dep", mock.url());
    let text = client()
        .post(format!("{base}/chat/completions{q}"))
        .header("api-key", "k")
        .json(&json!({"messages": [{"role": "user", "content": "a b"}], "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    let resp = client()
        .post(format!("{base}/completions{q}"))
        .header("api-key", "k")
        .json(&json!({"prompt": "say this"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let body: Value = client()
        .post(format!("{base}/embeddings{q}"))
        .header("api-key", "k")
        .json(&json!({"input": ["a", "b"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);

    let body: Value = client()
        .get(format!("{}/openai/models{q}", mock.url()))
        .header("api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");

    let resp = client()
        .post(format!("{base}/chat/completions{q}"))
        .header("api-key", "k")
        .header("x-mock-status", "429")
        .header("x-mock-retry-after", "2")
        .json(&chat_body("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
}
