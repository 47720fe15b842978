//! End-to-end tests of the mock over real HTTP.

#![allow(clippy::unwrap_used, reason = "test helpers should fail loudly")]

use std::time::{Duration, Instant};

use bifrost_mock_upstream::{MockConfig, MockServer, StatsSnapshot};
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

fn chat_body(text: &str) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": text}
        ]
    })
}

/// `data:` payloads of an SSE body, in order.
fn sse_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn parse_chunks(events: &[String]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.as_str() != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

#[tokio::test]
async fn chat_echoes_last_user_message() {
    let mock = server().await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .bearer_auth("sk-echo")
        .json(&chat_body("Hello mock world"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-mock-api-key"], "sk-echo");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hello mock world");
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens"], 3);
    assert_eq!(body["usage"]["total_tokens"], 8);

    // Without the /v1 prefix, with array content parts.
    let parts = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}
    ]}]});
    let body: Value = client()
        .post(format!("{}/chat/completions", mock.url()))
        .json(&parts)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "part one part two"
    );
    assert_eq!(mock.total_requests(), 2);
}

#[tokio::test]
async fn chat_stream_splits_content_and_reports_usage() {
    let mock = server().await;
    let mut body = chat_body("one two three four five six");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .header("x-mock-chunks", "3")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = sse_events(&resp.text().await.unwrap());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = parse_chunks(&events);
    // role + 3 content + finish + usage
    assert_eq!(chunks.len(), 6);
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "one two three four five six");
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 6);

    // Default split is about four pieces and has no usage chunk.
    body["stream_options"] = json!(null);
    let text = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks = parse_chunks(&sse_events(&text));
    assert_eq!(chunks.len(), 1 + 4 + 1);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn chat_tool_calls_stream_as_deltas() {
    let mock = server().await;
    let tools =
        json!([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]);
    let mut body = chat_body("weather in Paris?");
    body["tools"] = tools.clone();
    body["stream"] = json!(true);
    let text = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = parse_chunks(&events);
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .map(|calls| &calls[0])
        .collect();
    assert!(
        calls.len() >= 4,
        "start delta plus at least 3 argument deltas"
    );
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["id"], "call_mock_1");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], "");
    let mut arguments = String::new();
    for call in &calls[1..] {
        assert_eq!(call["index"], 0);
        assert!(call.get("id").is_none() && call["function"].get("name").is_none());
        arguments.push_str(call["function"]["arguments"].as_str().unwrap());
    }
    assert_eq!(arguments, r#"{"location":"Paris"}"#);
    let last = &chunks[chunks.len() - 1];
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");

    // Non-stream, then the follow-up turn carrying the tool result.
    let mut body = chat_body("weather in Paris?");
    body["tools"] = tools;
    let first: Value = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let choice = &first["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], r#"{"location":"Paris"}"#);
    body["messages"].as_array_mut().unwrap().extend([
        choice["message"].clone(),
        json!({"role": "tool", "tool_call_id": "call_mock_1", "content": "22C and sunny"}),
    ]);
    let second: Value = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "tool said: 22C and sunny"
    );
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn fail_times_counts_per_scenario_with_retry_after() {
    let mock = server().await;
    let send = || {
        client()
            .post(format!("{}/v1/chat/completions", mock.url()))
            .header("x-mock-status", "429")
            .header("x-mock-retry-after", "1")
            .header("x-mock-fail-times", "2")
            .header("x-mock-scenario", "flaky")
            .header("api-key", "azure-key")
            .json(&chat_body("hi"))
            .send()
    };
    for _ in 0..2 {
        let resp = send().await.unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(resp.headers()["x-mock-api-key"], "azure-key");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["message"], "mock error 429");
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["code"], Value::Null);
    }
    let resp = send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(mock.requests_for_scenario("flaky"), 3);
    assert_eq!(mock.requests_for_key("azure-key"), 3);

    // Without fail-times the fault applies every time.
    for _ in 0..2 {
        let resp = client()
            .post(format!("{}/v1/embeddings", mock.url()))
            .header("x-mock-status", "503")
            .json(&json!({"model": "e", "input": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["type"], "server_error");
    }
}

#[tokio::test]
async fn body_mock_object_matches_headers() {
    let mock = server().await;
    let mut body = chat_body("hello");
    body["mock"] =
        json!({"status": 500, "fail_times": 1, "scenario": "via-body", "retry_after": 3});
    let url = format!("{}/v1/chat/completions", mock.url());
    let resp = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(resp.headers()["retry-after"], "3");
    let resp = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.requests_for_scenario("via-body"), 2);

    body["mock"] = json!({"content": "overridden reply here", "chunks": 2});
    body["stream"] = json!(true);
    let text = client()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks = parse_chunks(&sse_events(&text));
    let pieces: Vec<&str> = chunks[1..3]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(pieces.concat(), "overridden reply here");
    assert_eq!(chunks.len(), 4);
}

#[tokio::test]
async fn delay_and_latency_hold_back_headers() {
    let mock = MockServer::start(MockConfig {
        latency: Duration::from_millis(40),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let started = Instant::now();
    let resp = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .header("x-mock-delay-ms", "60")
        .json(&chat_body("slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(100));

    let mut body = chat_body("a b c d");
    body["stream"] = json!(true);
    let started = Instant::now();
    let text = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .header("x-mock-chunk-delay-ms", "20")
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
    // 7 events, 6 gaps of 20 ms, plus 40 ms latency.
    assert!(started.elapsed() >= Duration::from_millis(160));
}

#[tokio::test]
async fn reset_drops_the_connection() {
    let mock = server().await;
    let client = client();
    let url = format!("{}/v1/chat/completions", mock.url());
    let result = client
        .post(&url)
        .header("x-mock-reset", "1")
        .json(&chat_body("boom"))
        .send()
        .await;
    let err = result.expect_err("reset must not produce a response");
    assert!(!err.is_timeout(), "{err}");

    // Body-driven reset, in stream mode, through the same client.
    let mut body = chat_body("boom");
    body["stream"] = json!(true);
    body["mock"] = json!({"reset": true});
    assert!(client.post(&url).json(&body).send().await.is_err());

    // The server is still healthy afterwards.
    let resp = client
        .post(&url)
        .json(&chat_body("fine"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.total_requests(), 3);
}

#[tokio::test]
async fn cut_after_ends_stream_without_done() {
    let mock = server().await;
    let mut body = chat_body("one two three four five six seven eight");
    body["stream"] = json!(true);
    let resp = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .header("x-mock-cut-after", "2")
        .json(&body)
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
    assert!(!text.contains("[DONE]"));
    assert_eq!(sse_events(&text).len(), 2, "{text}");

    // With a scenario and fail-times, only the first stream is cut.
    let send = || {
        client()
            .post(format!("{}/v1/chat/completions", mock.url()))
            .header("x-mock-cut-after", "1")
            .header("x-mock-fail-times", "1")
            .header("x-mock-scenario", "cut-once")
            .json(&body)
            .send()
    };
    assert!(send().await.unwrap().text().await.is_err());
    let text = send().await.unwrap().text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn embeddings_are_deterministic() {
    let mock = server().await;
    let embed = |body: Value| {
        let request = client()
            .post(format!("{}/v1/embeddings", mock.url()))
            .json(&body)
            .send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    let a = embed(json!({"model": "text-embedding-3-small", "input": "hello world"})).await;
    let b =
        embed(json!({"model": "text-embedding-3-small", "input": ["hello world", "other"]})).await;
    assert_eq!(a["object"], "list");
    assert_eq!(a["model"], "text-embedding-3-small");
    assert_eq!(a["data"][0]["object"], "embedding");
    assert_eq!(a["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(a["data"][0]["embedding"], b["data"][0]["embedding"]);
    assert_ne!(b["data"][0]["embedding"], b["data"][1]["embedding"]);
    assert_eq!(b["data"][1]["index"], 1);
    assert_eq!(b["usage"]["prompt_tokens"], 3);
    assert_eq!(b["usage"]["total_tokens"], 3);

    let c = embed(json!({"model": "e", "input": [[1, 2, 3]], "dimensions": 32})).await;
    assert_eq!(c["data"][0]["embedding"].as_array().unwrap().len(), 32);
    let d = embed(json!({"model": "e", "input": "hello world", "encoding_format": "base64"})).await;
    // 8 f32 = 32 bytes = 44 base64 characters.
    assert_eq!(d["data"][0]["embedding"].as_str().unwrap().len(), 44);
}

#[tokio::test]
async fn models_completions_and_unknown_routes() {
    let mock = server().await;
    let models: Value = client()
        .get(format!("{}/v1/models", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    for id in [
        "gpt-4o-mini",
        "gpt-4o",
        "text-embedding-3-small",
        "mock-model",
    ] {
        assert!(ids.contains(&id));
    }
    assert_eq!(models["data"][0]["owned_by"], "mock");

    let completion: Value = client()
        .post(format!("{}/v1/completions", mock.url()))
        .json(&json!({"model": "m", "prompt": ["say this", "ignored"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(completion["object"], "text_completion");
    assert_eq!(completion["choices"][0]["text"], "say this");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(completion["usage"]["total_tokens"], 4);

    let text = client()
        .post(format!("{}/completions", mock.url()))
        .json(&json!({"model": "m", "prompt": "a b c d e", "stream": true, "stream_options": {"include_usage": true}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks = parse_chunks(&events);
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "a b c d e");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(chunks[chunks.len() - 1]["usage"]["completion_tokens"], 5);

    let resp = client()
        .post(format!("{}/v1/nope", mock.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let resp = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(mock.requests_for_path("/v1/chat/completions"), 1);
}

#[tokio::test]
async fn stats_by_key_and_reset() {
    let mock = server().await;
    let url = format!("{}/v1/chat/completions", mock.url());
    for key in ["k1", "k1", "k2"] {
        client()
            .post(&url)
            .bearer_auth(key)
            .json(&chat_body("x"))
            .send()
            .await
            .unwrap();
    }
    client()
        .post(format!("{}/v1/embeddings", mock.url()))
        .header("x-api-key", "k3")
        .header("x-mock-scenario", "emb")
        .json(&json!({"model": "e", "input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mock.requests_for_key("k1"), 2);
    let stats: StatsSnapshot = client()
        .get(format!("{}/_mock/stats", mock.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats.total, 4);
    assert_eq!(stats.by_key.get("k1"), Some(&2));
    assert_eq!(stats.by_key.get("k2"), Some(&1));
    assert_eq!(stats.by_key.get("k3"), Some(&1));
    assert_eq!(stats.by_scenario.get("emb"), Some(&1));
    assert_eq!(stats.by_path.get("/v1/chat/completions"), Some(&3));
    assert_eq!(stats, mock.stats());

    let resp = client()
        .post(format!("{}/_mock/reset", mock.url()))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(mock.total_requests(), 0);
    assert_eq!(mock.stats(), StatsSnapshot::default());
}

/// Kills the child process when the test ends, even on failure.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_listen_address() {
    use std::io::BufRead;

    let mut child = KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
            .args(["--port", "0", "--host", "127.0.0.1", "--latency-ms", "1"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let read_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(5), read_line)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("mock-upstream listening on ")
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let resp = client()
        .post(format!("{url}/v1/chat/completions"))
        .json(&chat_body("from the binary"))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "from the binary");
}

#[tokio::test]
async fn embedded_router_serves_and_still_breaks_on_reset() {
    let state = bifrost_mock_upstream::MockState::new(MockConfig::default());
    let app = bifrost_mock_upstream::router(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/chat/completions",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let resp = client()
        .post(&url)
        .bearer_auth("embedded")
        .json(&chat_body("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reset = client()
        .post(&url)
        .header("x-mock-reset", "true")
        .json(&chat_body("hi"))
        .send()
        .await;
    let outcome = match reset {
        Ok(resp) => resp.bytes().await.map(|_| ()),
        Err(err) => Err(err),
    };
    assert!(
        outcome.is_err(),
        "a reset must never look like a complete response"
    );
    assert_eq!(state.requests_for_key("embedded"), 1);
    assert_eq!(state.total_requests(), 2);
    server.abort();
}

#[tokio::test]
async fn captures_requests_when_asked() {
    let mock = MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions?x=1", mock.url()))
        .header("authorization", "Bearer sk-cap")
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let last = mock.last_request().unwrap();
    assert_eq!(last.path, "/v1/chat/completions");
    assert_eq!(last.query.as_deref(), Some("x=1"));
    assert_eq!(last.header("authorization"), Some("Bearer sk-cap"));
    assert_eq!(last.body["messages"][0]["content"], "hi");
}
