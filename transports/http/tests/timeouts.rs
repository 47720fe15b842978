//! Timeouts on real upstream shapes: a stream longer than the request timeout is never cut
//! (on the lean path and the reqwest path), a silence longer than the stream idle timeout
//! ends the stream with an error event and no `[DONE]`.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// One OpenAI provider at `base_url` with a 1 s request timeout and `idle_s` stream idle
/// timeout.
fn short_timeouts(base_url: &str, idle_s: u64) -> Value {
    json!({"providers": {"openai": {"keys": [{"value": "sk-test"}],
        "network_config": {"base_url": base_url, "default_request_timeout_in_seconds": 1,
            "stream_idle_timeout_in_seconds": idle_s}}}})
}

async fn stream(gw: &Gateway, mock: Value) -> (u16, Vec<String>, Duration) {
    let mut body = chat_body(
        "openai/gpt-4o-mini",
        "one two three four five six seven eight nine ten",
    );
    body["stream"] = json!(true);
    body["mock"] = mock;
    let started = Instant::now();
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let events = sse_events(resp).await;
    (status, events, started.elapsed())
}

#[tokio::test]
async fn a_stream_longer_than_the_request_timeout_completes_on_both_upstream_paths() {
    let mock = mock().await;
    // Plain http: the lean path. Credentials in the URL: reqwest's path (it sends them).
    let lean = mock.url();
    let via_reqwest = lean.replacen("http://", "http://user:pass@", 1);
    for base in [lean, via_reqwest] {
        let gw = Gateway::start(&short_timeouts(&base, 5));
        // 16 chunks 150 ms apart: 2.25 s of streaming under a 1 s request timeout.
        let (status, events, took) =
            stream(&gw, json!({"chunks": 16, "chunk_delay_ms": 150})).await;
        assert_eq!(status, 200, "{base}: {events:?}");
        assert!(
            took > Duration::from_secs(2),
            "{base}: streamed for {took:?}"
        );
        assert_eq!(
            events.last().map(String::as_str),
            Some("[DONE]"),
            "{base}: {events:?}"
        );
        assert!(
            !events.iter().any(|e| e.contains("\"error\"")),
            "{base}: {events:?}"
        );
        let content: usize = events
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter(|v| v["choices"][0]["delta"]["content"].is_string())
            .count();
        assert!(
            content >= 16,
            "{base}: every content chunk arrived: {events:?}"
        );
    }
}

#[tokio::test]
async fn a_gap_longer_than_the_idle_timeout_ends_the_stream_with_an_error_event() {
    let mock = mock().await;
    let gw = Gateway::start(&short_timeouts(&mock.url(), 1));
    // The first chunk comes at once, the next after 2.5 s: longer than the 1 s idle limit.
    let (status, events, took) = stream(&gw, json!({"chunks": 4, "chunk_delay_ms": 2500})).await;
    assert_eq!(status, 200, "{events:?}");
    assert!(
        took < Duration::from_secs(5),
        "cut at the idle limit: {took:?}"
    );
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
    let msg = last["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("no stream chunk"), "{events:?}");
}

#[tokio::test]
async fn a_non_stream_answer_is_still_bounded_by_the_request_timeout() {
    let mock = mock().await;
    let gw = Gateway::start(&short_timeouts(&mock.url(), 5));
    let mut body = chat_body("openai/gpt-4o-mini", "x");
    body["mock"] = json!({"delay_ms": 2500});
    let started = Instant::now();
    let (s, _, r) = post(&format!("{}/v1/chat/completions", gw.url), &body).await;
    assert_eq!(s, 504, "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
