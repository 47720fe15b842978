//! The mock's Gemini routes over real HTTP.

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

fn url(mock: &MockServer, model_method: &str) -> String {
    format!("{}/v1beta/models/{model_method}", mock.url())
}

async fn post(mock: &MockServer, model_method: &str, body: Value) -> reqwest::Response {
    client()
        .post(url(mock, model_method))
        .header("x-goog-api-key", "g-key")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn user(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

/// `data:` payloads of an SSE body, parsed.
fn sse_events(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test]
async fn generate_content_echoes_the_last_user_text() {
    let mock = server().await;
    let resp = post(
        &mock,
        "gemini-2.0-flash:generateContent",
        user("Hello gemini mock"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-mock-api-key"], "g-key");
    let body: Value = resp.json().await.unwrap();
    let c = &body["candidates"][0];
    assert_eq!(c["content"]["role"], "model");
    assert_eq!(
        c["content"]["parts"],
        json!([{"text": "Hello gemini mock"}])
    );
    assert_eq!(c["finishReason"], "STOP");
    assert_eq!(body["modelVersion"], "gemini-2.0-flash");
    assert!(
        body["responseId"]
            .as_str()
            .unwrap()
            .starts_with("gemini-mock-")
    );
    assert_eq!(
        body["usageMetadata"],
        json!({"promptTokenCount": 3, "candidatesTokenCount": 3, "totalTokenCount": 6})
    );
    assert_eq!(mock.requests_for_key("g-key"), 1);
    assert_eq!(
        mock.requests_for_path("/v1beta/models/gemini-2.0-flash:generateContent"),
        1
    );
}

#[tokio::test]
async fn tools_get_a_function_call_then_the_result_is_echoed() {
    let mock = server().await;
    let tools = json!([{"functionDeclarations": [{"name": "get_weather"}, {"name": "other"}]}]);
    let mut body = user("weather?");
    body["tools"] = tools.clone();
    let resp: Value = post(&mock, "gemini-2.5-flash:generateContent", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["candidates"][0]["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}])
    );
    let follow_up = json!({"tools": tools, "contents": [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
            "response": {"content": "sunny, 21C"}}}]}
    ]});
    let resp: Value = post(&mock, "gemini-2.5-flash:generateContent", follow_up)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        resp["candidates"][0]["content"]["parts"][0]["text"],
        "tool said: sunny, 21C"
    );
}

#[tokio::test]
async fn thoughts_come_first_when_asked() {
    let mock = server().await;
    let mut body = user("why");
    body["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true}});
    let resp: Value = post(&mock, "gemini-2.5-flash:generateContent", body)
        .await
        .json()
        .await
        .unwrap();
    let parts = &resp["candidates"][0]["content"]["parts"];
    assert_eq!(
        parts[0],
        json!({"text": "Thinking about: why", "thought": true})
    );
    assert_eq!(parts[1], json!({"text": "why"}));
    assert_eq!(resp["usageMetadata"]["thoughtsTokenCount"], 3);
}

#[tokio::test]
async fn stream_is_sse_ending_with_stop_and_usage() {
    let mock = server().await;
    let resp = client()
        .post(format!(
            "{}?alt=sse",
            url(&mock, "gemini-2.0-flash:streamGenerateContent")
        ))
        .header("x-goog-api-key", "g-key")
        .header("x-mock-chunks", "3")
        .json(&user("one two three four five six"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let body = resp.text().await.unwrap();
    assert!(!body.contains("[DONE]"));
    let events = sse_events(&body);
    assert_eq!(events.len(), 3);
    let text: String = events
        .iter()
        .map(|e| {
            e["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "one two three four five six");
    assert!(events[0]["candidates"][0].get("finishReason").is_none());
    let last = &events[2];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 12);

    // Without alt=sse: one JSON array of the same events.
    let arr: Value = post(&mock, "gemini-2.0-flash:streamGenerateContent", user("a b"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(arr.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn stream_cut_after_breaks_the_body() {
    let mock = server().await;
    let resp = client()
        .post(format!(
            "{}?alt=sse",
            url(&mock, "gemini-2.0-flash:streamGenerateContent")
        ))
        .json(
            &json!({"contents": [{"role": "user", "parts": [{"text": "a b c d"}]}],
                      "mock": {"cut_after": 1}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.is_err());
}

#[tokio::test]
async fn faults_answer_google_errors() {
    let mock = server().await;
    let mut body = user("x");
    body["mock"] = json!({"status": 429, "retry_after": "2"});
    let resp = post(&mock, "gemini-2.0-flash:generateContent", body).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err,
        json!({"error": {"code": 429, "message": "mock error 429", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]}})
    );
    // A scenario fails only its first N requests.
    for expected in [503, 503, 200] {
        let mut body = user("x");
        body["mock"] = json!({"status": 503, "scenario": "g1", "fail_times": 2});
        let resp = post(&mock, "gemini-2.0-flash:generateContent", body).await;
        assert_eq!(resp.status(), expected);
    }
    let resp = post(&mock, "gemini-2.0-flash:countStars", user("x")).await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "NOT_FOUND");
    let resp = client()
        .post(url(&mock, "gemini-2.0-flash:generateContent"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn embeddings_are_deterministic() {
    let mock = server().await;
    let one = json!({"model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 4});
    let a: Value = post(&mock, "gemini-embedding-001:embedContent", one.clone())
        .await
        .json()
        .await
        .unwrap();
    let values = a["embedding"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 4);
    let batch = json!({"requests": [one, {"model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "world"}]}, "outputDimensionality": 4}]});
    let b: Value = post(&mock, "gemini-embedding-001:batchEmbedContents", batch)
        .await
        .json()
        .await
        .unwrap();
    let embeddings = b["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(embeddings[0]["values"], a["embedding"]["values"]);
    assert_ne!(embeddings[1]["values"], a["embedding"]["values"]);
}

#[tokio::test]
async fn models_are_paged() {
    let mock = server().await;
    let all: Value = client()
        .get(format!("{}/v1beta/models", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["models"].as_array().unwrap().len(), 4);
    assert!(all.get("nextPageToken").is_none());
    assert_eq!(all["models"][0]["name"], "models/gemini-2.0-flash");
    let page: Value = client()
        .get(format!("{}/v1beta/models?pageSize=3", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["models"].as_array().unwrap().len(), 3);
    let token = page["nextPageToken"].as_str().unwrap();
    let rest: Value = client()
        .get(format!(
            "{}/v1beta/models?pageSize=3&pageToken={token}",
            mock.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["models"][0]["name"], "models/gemini-embedding-001");
}

#[tokio::test]
async fn count_tokens_counts_words_of_contents_or_a_whole_request() {
    let mock = server().await;
    let resp = post(&mock, "gemini-2.0-flash:countTokens", user("one two three")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"totalTokens": 3})
    );
    let resp = post(
        &mock,
        "gemini-2.0-flash:countTokens",
        json!({"generateContentRequest": {"model": "models/gemini-2.0-flash",
            "contents": [{"role": "user", "parts": [{"text": "a b"}]}]}}),
    )
    .await;
    assert_eq!(resp.json::<Value>().await.unwrap()["totalTokens"], 2);
    let resp = post(
        &mock,
        "gemini-2.0-flash:countTokens",
        json!({"contents": [], "mock": {"status": 429}}),
    )
    .await;
    assert_eq!(resp.status(), 429);
}
