//! End-to-end tests: the real `bifrost-http` binary in front of the mock upstream.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

async fn setup() -> (MockServer, Gateway) {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock.url()));
    (mock, gw)
}

#[tokio::test]
async fn chat_non_stream_echoes_and_reports_provider() {
    let (_mock, gw) = setup().await;
    let (status, headers, body) = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("openai/gpt-4o-mini", "hello there"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "hello there");
    assert_eq!(body["extra_fields"]["provider"], "openai");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn v1_0_body_with_provider_field_and_nested_params() {
    let (_mock, gw) = setup().await;
    let body = json!({"provider": "openai", "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "old style"}], "params": {"temperature": 0.1}});
    let (status, _, body) = post(&format!("{}/v1/chat/completions", gw.url), &body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "old style");
}

#[tokio::test]
async fn chat_stream_is_sse_ending_with_done() {
    let (_mock, gw) = setup().await;
    let mut body = chat_body("openai/gpt-4o-mini", "one two three four five");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = sse_events(resp).await;
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.len() >= 4, "{chunks:?}");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two three four five");
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .is_some()
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
}

#[tokio::test]
async fn tool_calls_non_stream_and_stream() {
    let (_mock, gw) = setup().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}}}]);
    let mut body = chat_body("openai/gpt-4o-mini", "weather in Paris?");
    body["tools"] = tools;
    let (status, _, resp) = post(&format!("{}/v1/chat/completions", gw.url), &body).await;
    assert_eq!(status, 200, "{resp}");
    let call = &resp["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(resp["choices"][0]["finish_reason"], "tool_calls");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));

    // The tool result goes upstream exactly as sent (not re-quoted).
    let mut round = body.clone();
    round["messages"] = json!([
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}
    ]);
    let (_, _, resp) = post(&format!("{}/v1/chat/completions", gw.url), &round).await;
    assert_eq!(resp["choices"][0]["message"]["content"], "tool said: sunny");

    body["stream"] = json!(true);
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = sse_events(resp).await;
    let mut args = String::new();
    for e in &events[..events.len() - 1] {
        let c: Value = serde_json::from_str(e).unwrap();
        if let Some(a) = c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        {
            args.push_str(a);
        }
    }
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
}

#[tokio::test]
async fn text_completions_embeddings_and_models() {
    let (_mock, gw) = setup().await;
    let (s, _, r) = post(
        &format!("{}/v1/text/completions", gw.url),
        &json!({"model": "openai/gpt-3.5-turbo-instruct", "prompt": "say hi"}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["choices"][0]["text"], "say hi");
    let (s, _, r) = post(
        &format!("{}/v1/completions", gw.url),
        &json!({"model": "openai/x", "text": "legacy"}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, _, r) = post(
        &format!("{}/v1/embeddings", gw.url),
        &json!({"model": "openai/text-embedding-3-small", "input": ["a", "b"], "dimensions": 4}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["data"].as_array().unwrap().len(), 2);
    assert_eq!(r["data"][0]["embedding"].as_array().unwrap().len(), 4);
    let models: Value = client()
        .get(format!("{}/v1/models", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "openai/gpt-4o-mini"),
        "{models}"
    );
}

#[tokio::test]
async fn retries_on_429_then_succeeds() {
    let (mock, gw) = setup().await;
    let mut body = chat_body("openai/gpt-4o-mini", "retry me");
    body["mock"] = json!({"status": 429, "fail_times": 2, "scenario": "retry-429"});
    let (status, headers, resp) = post(&format!("{}/v1/chat/completions", gw.url), &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(mock.requests_for_scenario("retry-429"), 3);
    assert_eq!(headers["x-bf-retries"], "2");
}

#[tokio::test]
async fn exhausted_retries_relay_the_upstream_429_with_retry_after() {
    let (mock, gw) = setup().await;
    let mut body = chat_body("openai/gpt-4o-mini", "always limited");
    body["mock"] = json!({"status": 429, "retry_after": 1, "scenario": "exhaust"});
    let started = std::time::Instant::now();
    let (status, headers, resp) = post(&format!("{}/v1/chat/completions", gw.url), &body).await;
    assert_eq!(status, 429, "{resp}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(mock.requests_for_scenario("exhaust"), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured between attempts"
    );
    assert!(resp["error"]["message"].as_str().unwrap().contains("429"));
}

#[tokio::test]
async fn falls_back_to_a_second_provider() {
    let mock = mock().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let cfg = json!({"providers": {
        "openai": {"keys": [{"value": "sk-primary"}], "network_config": {"base_url": dead_url}},
        "groq": {"keys": [{"value": "sk-groq"}], "network_config": {"base_url": format!("{}/v1", mock.url())}}
    }});
    let gw = Gateway::start(&cfg);
    let mut body = chat_body("openai/gpt-4o-mini", "fall back");
    body["fallbacks"] = json!(["groq/llama-3.1-8b"]);
    let (status, headers, resp) = post(&format!("{}/v1/chat/completions", gw.url), &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["extra_fields"]["provider"], "groq");
    assert_eq!(resp["extra_fields"]["fallback_index"], 0);
    assert_eq!(headers["x-bf-fallback-index"], "0");
    assert_eq!(mock.requests_for_key("sk-groq"), 1);
}

#[tokio::test]
async fn keys_are_chosen_by_weight_and_model() {
    let mock = mock().await;
    let cfg = json!({"providers": {"openai": {
        "keys": [
            {"value": "sk-heavy", "weight": 3},
            {"value": "sk-light", "weight": 1},
            {"value": "sk-special", "weight": 100, "models": ["special-model"]}
        ],
        "network_config": {"base_url": mock.url()}
    }}});
    let gw = Gateway::start(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let c = client();
    let body = chat_body("openai/gpt-4o-mini", "k");
    for _ in 0..200 {
        assert_eq!(c.post(&url).json(&body).send().await.unwrap().status(), 200);
    }
    let heavy = mock.requests_for_key("sk-heavy");
    let light = mock.requests_for_key("sk-light");
    assert_eq!(heavy + light, 200);
    assert_eq!(
        mock.requests_for_key("sk-special"),
        0,
        "a key limited to other models is never used"
    );
    assert!(
        (120..=180).contains(&heavy),
        "expected ~150 of 200 on the weight-3 key, got {heavy}"
    );
    // For the model it is limited to, the weight-100 key competes with the others (~96 %).
    let special = chat_body("openai/special-model", "k");
    for _ in 0..20 {
        assert_eq!(
            c.post(&url).json(&special).send().await.unwrap().status(),
            200
        );
    }
    let got = mock.requests_for_key("sk-special");
    assert!(
        got >= 14,
        "expected ~19 of 20 on the weight-100 key, got {got}"
    );
}

#[tokio::test]
async fn full_queue_answers_429_when_dropping_excess() {
    let mock = mock().await;
    let cfg = json!({"providers": {"openai": {
        "keys": [{"value": "sk"}],
        "network_config": {"base_url": mock.url()},
        "concurrency_and_buffer_size": {"concurrency": 1, "buffer_size": 1}
    }}});
    let gw = Gateway::start_with(&cfg, &["-drop-excess-requests"], &[]);
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut slow = chat_body("openai/gpt-4o-mini", "slow");
    slow["mock"] = json!({"delay_ms": 1500});
    let first = tokio::spawn({
        let (url, slow) = (url.clone(), slow.clone());
        async move { post(&url, &slow).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = tokio::spawn({
        let (url, slow) = (url.clone(), slow.clone());
        async move { post(&url, &slow).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _, body) = post(&url, &slow).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "request_dropped");
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(second.await.unwrap(), 200);
}

#[tokio::test]
async fn bad_inputs_get_json_errors_and_the_server_keeps_answering() {
    let mock = mock().await;
    let gw = Gateway::start_with(
        &config(&mock.url()),
        &[],
        &[("BIFROST_CLIENT__MAX_REQUEST_BODY_SIZE_MB", "1")],
    );
    let c = client();
    let chat = format!("{}/v1/chat/completions", gw.url);
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (c.post(&chat).body("{not json"), 400),
        (c.post(&chat).body(""), 400),
        (c.post(&chat).json(&json!({"messages": []})), 400),
        (
            c.post(&chat).json(
                &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}),
            ),
            400,
        ),
        (
            c.post(&chat).json(&json!({"model": "openai/gpt-4o-mini"})),
            400,
        ),
        (
            c.post(&chat)
                .json(&json!({"model": "openai/gpt-4o-mini", "messages": "nope"})),
            400,
        ),
        (
            c.post(&chat)
                .json(&json!({"model": "openai/gpt-4o-mini", "messages": []})),
            400,
        ),
        (c.post(&chat).json(&chat_body("nope/model", "x")), 400),
        (
            c.post(format!("{}/v1/embeddings", gw.url))
                .json(&json!({"model": "openai/e", "input": "x", "stream": true})),
            400,
        ),
        (c.get(&chat), 405),
        (c.get(format!("{}/v2/nothing", gw.url)), 404),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), want, "case {i}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/json",
            "case {i}"
        );
        let v: Value = resp.json().await.unwrap();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "case {i}: {v}"
        );
    }
    // Too large (limit lowered to 1 MiB by the env override): announce 2 MiB, send nothing;
    // the gateway must answer 413 from the headers alone.
    let addr = gw.url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    tokio::io::AsyncWriteExt::write_all(&mut tcp, head.as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await
    .unwrap()
    .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"error\""), "{text}");

    let health = c.get(format!("{}/health", gw.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let (s, _, _) = post(&chat, &chat_body("openai/gpt-4o-mini", "still alive")).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn upstream_failures_map_to_502_and_504() {
    let mock = mock().await;
    let cfg = json!({"providers": {"openai": {"keys": [{"value": "sk"}],
        "network_config": {"base_url": mock.url(), "default_request_timeout_in_seconds": 1}}}});
    let gw = Gateway::start(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut body = chat_body("openai/gpt-4o-mini", "x");
    body["mock"] = json!({"reset": true});
    let (s, _, r) = post(&url, &body).await;
    assert_eq!(s, 502, "{r}");
    body["mock"] = json!({"delay_ms": 1500});
    let (s, _, r) = post(&url, &body).await;
    assert_eq!(s, 504, "{r}");
    assert!(!r.to_string().contains("sk"), "no secret in errors: {r}");
}

#[tokio::test]
async fn mid_stream_cut_sends_an_error_event_and_no_done() {
    let (_mock, gw) = setup().await;
    let mut body = chat_body("openai/gpt-4o-mini", "a b c d e f g h");
    body["stream"] = json!(true);
    body["mock"] = json!({"cut_after": 2});
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = sse_events(resp).await;
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().is_some(), "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"));
}

#[tokio::test]
async fn mocker_answers_mock_models_offline() {
    let (mock, gw) = setup().await;
    let (s, _, r) = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("mock/echo", "hi mock"),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["choices"][0]["message"]["content"], "hi mock");
    let mut body = chat_body("mock/echo", "streamed mock");
    body["stream"] = json!(true);
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let events = sse_events(resp).await;
    let text: String = events[..events.len() - 1]
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "streamed mock");
    assert_eq!(mock.total_requests(), 0);
}

#[tokio::test]
async fn missing_key_variable_is_named_in_the_error() {
    let mock = mock().await;
    let cfg = json!({"providers": {"openai": {"keys": [{"value": "env.BIFROST_TEST_UNSET_KEY_VAR"}],
        "network_config": {"base_url": mock.url()}}}});
    let gw = Gateway::start(&cfg);
    let (s, _, r) = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("openai/gpt-4o-mini", "x"),
    )
    .await;
    assert_eq!(s, 500, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("BIFROST_TEST_UNSET_KEY_VAR"),
        "{r}"
    );
}

#[tokio::test]
async fn metrics_expose_http_upstream_stream_and_overhead_series() {
    let (_mock, gw) = setup().await;
    let (_, headers, _) = post(
        &format!("{}/v1/chat/completions", gw.url),
        &chat_body("openai/gpt-4o-mini", "m"),
    )
    .await;
    let overhead: u64 = headers["x-bifrost-overhead-us"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead < 1_000_000, "{overhead}");
    let timing = headers["server-timing"].to_str().unwrap();
    assert!(
        timing.starts_with("gateway;dur=") && timing.contains("upstream;dur="),
        "{timing}"
    );
    let mut body = chat_body("openai/gpt-4o-mini", "a b c");
    body["stream"] = json!(true);
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("x-bifrost-overhead-us"));
    sse_events(resp).await;
    // Answers that called no provider carry it too (all of their time is the gateway's).
    for path in ["/health", "/v1/no-such-route"] {
        let resp = client()
            .get(format!("{}{path}", gw.url))
            .send()
            .await
            .unwrap();
        let timing = resp.headers()["server-timing"].to_str().unwrap();
        assert!(timing.ends_with("upstream;dur=0.000"), "{path}: {timing}");
        assert!(
            resp.headers().contains_key("x-bifrost-overhead-us"),
            "{path}"
        );
    }
    let text = client()
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "bifrost_upstream_requests_total",
        "bifrost_upstream_latency_seconds_bucket",
        "bifrost_success_requests_total",
        "bifrost_input_tokens_total",
        "bifrost_output_tokens_total",
        "bifrost_gateway_overhead_seconds_bucket",
        "bifrost_queue_depth",
        "bifrost_streams_in_flight",
        "bifrost_stream_first_token_latency_seconds_bucket",
        "bifrost_stream_inter_token_latency_seconds_bucket",
        "bifrost_plugin_duration_seconds_bucket",
        "bifrost_log_entries_dropped_total{sink=\"stderr\"} 0",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    assert!(text.contains("provider=\"openai\""));
    assert!(text.contains("path=\"/v1/chat/completions\""));
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let (_mock, mut gw) = setup().await;
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut body = chat_body("openai/gpt-4o-mini", "drain me");
    body["mock"] = json!({"delay_ms": 1500});
    let inflight = tokio::spawn(async move { post(&url, &body).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, _, resp) = inflight.await.unwrap();
    assert_eq!(status, 200, "{resp}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(code) = gw.child.try_wait().unwrap() {
            assert!(code.success(), "exit status {code:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gateway did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn help_flag_prints_usage() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-http"))
        .arg("-h")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--port",
        "--pool-size",
        "--drop-excess-requests",
        "--app-dir",
        "--log-style",
        "--prometheus-labels",
        "--plugins",
    ] {
        assert!(text.contains(flag), "help lacks {flag}:\n{text}");
    }
}

#[test]
fn invalid_config_fails_at_startup_naming_the_field() {
    let dir = TempDir::new();
    let path = dir.0.join("config.json");
    std::fs::write(
        &path,
        r#"{"providers": {"openai": {"concurrency_and_buffer_size": {"concurrency": 0}}}}"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bifrost-http"))
        .args(["-config", path.to_str().unwrap(), "-port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("concurrency_and_buffer_size.concurrency"),
        "{err}"
    );
}

#[tokio::test]
async fn every_worker_serves_with_or_without_spinning() {
    let mock = mock().await;
    for flags in [
        ["-workers", "3", "-spin-us", "0"],
        ["-workers", "2", "-spin-us", "500"],
    ] {
        let gw = Gateway::start_with(&config(&mock.url()), &flags, &[]);
        let url = format!("{}/v1/chat/completions", gw.url);
        // Six connections: the acceptor deals them to every worker in turn.
        let clients: Vec<_> = (0..6).map(|_| support::client()).collect();
        let mut calls = Vec::new();
        for (i, c) in clients.into_iter().enumerate() {
            let url = url.clone();
            calls.push(tokio::spawn(async move {
                for j in 0..5 {
                    let text = format!("conn {i} call {j}");
                    let resp = c
                        .post(&url)
                        .json(&chat_body("openai/gpt-4o-mini", &text))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    let v: Value = resp.json().await.unwrap();
                    let echoed = v["choices"][0]["message"]["content"].as_str().unwrap();
                    assert!(echoed.contains(&text), "{echoed}");
                }
            }));
        }
        for c in calls {
            c.await.unwrap();
        }
    }
}
