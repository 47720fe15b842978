//! Property tests for every request parser of the HTTP transport.
//!
//! 1. The native body parser (`parse::parse`) on arbitrary and near-valid bodies: never a
//!    panic, and every rejection a 4xx.
//! 2. The real gateway binary (its service takes hyper's own request body, so `oneshot` with a
//!    test body is not possible) with the demo mocker answering `mock/*` offline: every
//!    generated body to each inference route of `/v1`, `/openai`, `/anthropic` and `/genai`
//!    answers below 500, a 4xx carrying a JSON error in the route's dialect, a 2xx a body
//!    that reads to its end; never a 5xx, never a dropped connection (a panic).
//!
//! Strategies are shared with `bifrost-core`'s `fuzz_translators` (same file, by path).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]

#[path = "../../../crates/core/tests/fuzz_support/mod.rs"]
mod fuzz_support;
mod support;

use std::time::{Duration, Instant};

use bifrost_transport_http::parse::{Route, parse};
use fuzz_support::*;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Value, json};
use support::Gateway;

// ---------------------------------------------------------------------------------------------
// The native parser, as a library
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// `/v1` bodies of every era, for each route: parsed or a 4xx, never a panic.
    #[test]
    fn native_parser_never_panics(
        body in body_bytes(prop_oneof![
            2 => openai_chat_valid(),
            1 => openai_text_valid(),
            1 => openai_embed_valid(),
        ].boxed())
    ) {
        for route in [Route::Chat, Route::Text, Route::Embedding] {
            if let Err(e) = parse(&body, route) {
                let status = e.http_status();
                prop_assert!((400..500).contains(&status), "{route:?}: {status} {e}");
                prop_assert!(!e.error.message.is_empty());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes of the real binary
// ---------------------------------------------------------------------------------------------

/// Cases per route: 12 routes × this many requests take about 20 s in a debug build.
const ROUTE_CASES: u32 = 192;

/// The error shape a route family answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// `{"error":{"message",…}, "status_code"?, …}` (Bifrost's own, which OpenAI SDKs read).
    Bifrost,
    /// `{"error":{"message","type","param","code"}}`.
    OpenAI,
    /// `{"type":"error","error":{"type","message"}}`.
    Anthropic,
    /// `{"error":{"code","message","status"}}`.
    Google,
}

/// Checks an error body's shape for `dialect` and `status`.
fn check_error_body(dialect: Dialect, status: u16, body: &Value) -> Result<(), String> {
    let err = body
        .get("error")
        .and_then(Value::as_object)
        .ok_or("no `error` object")?;
    let message = err.get("message").and_then(Value::as_str);
    if message.is_none_or(str::is_empty) {
        return Err("no error message".into());
    }
    match dialect {
        Dialect::Bifrost => {}
        Dialect::OpenAI => {
            if !err.get("type").is_some_and(Value::is_string) {
                return Err("OpenAI error without a string `type`".into());
            }
        }
        Dialect::Anthropic => {
            if body.get("type") != Some(&json!("error")) {
                return Err("Anthropic error without `\"type\":\"error\"`".into());
            }
            if !err.get("type").is_some_and(Value::is_string) {
                return Err("Anthropic error without a string error `type`".into());
            }
        }
        Dialect::Google => {
            if err.get("code") != Some(&json!(status)) {
                return Err(format!("Google error whose `code` is not {status}"));
            }
            if !err.get("status").is_some_and(Value::is_string) {
                return Err("Google error without a string `status`".into());
            }
        }
    }
    Ok(())
}

/// An error event inside a stream that answered 200 must not be the gateway's own failure.
fn check_stream_events(dialect: Dialect, text: &str) -> Result<(), String> {
    for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
        let Ok(v) = serde_json::from_str::<Value>(data.trim()) else {
            continue;
        };
        let Some(err) = v.get("error") else { continue };
        let code = err
            .get("code")
            .and_then(Value::as_u64)
            .or_else(|| v.get("status_code").and_then(Value::as_u64));
        let internal = match dialect {
            Dialect::Anthropic => err.get("type") == Some(&json!("api_error")),
            _ => code.is_some_and(|c| c >= 500),
        };
        if internal {
            return Err(format!(
                "stream error event from the gateway itself: {data}"
            ));
        }
    }
    Ok(())
}

/// A route under test: its path, dialect and body strategy.
struct RouteCase {
    path: &'static str,
    dialect: Dialect,
    bodies: BoxedStrategy<Vec<u8>>,
}

fn route(path: &'static str, dialect: Dialect, valid: BoxedStrategy<Value>) -> RouteCase {
    RouteCase {
        path,
        dialect,
        bodies: body_bytes(valid),
    }
}

/// A gateway with no provider but the demo mocker, which answers every `mock/*` model
/// offline; any other model names a provider that is not configured (a 400).
fn gateway() -> Gateway {
    Gateway::start(&json!({
        "providers": {},
        "plugins": [{"name": "mocker", "enabled": true, "config": {
            "enabled": true, "default_behavior": "passthrough",
            "rules": [{"name": "demo", "enabled": true, "priority": 1, "probability": 1,
                "conditions": {"providers": ["mock"]},
                "responses": [{"type": "success", "weight": 1,
                    "content": {"message": "{{input}}"}}]}]
        }}]
    }))
}

/// Sends `body` to `url` and checks the answer against the route's contract.
async fn one(
    client: &reqwest::Client,
    url: &str,
    dialect: Dialect,
    body: Vec<u8>,
) -> Result<(), TestCaseError> {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("no answer (did the gateway panic?): {e}")))?;
    let status = resp.status().as_u16();
    let sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| TestCaseError::fail(format!("{status}: body cut: {e}")))?;
    let text = String::from_utf8_lossy(&bytes);
    prop_assert!(status < 500, "{status}: {text}");
    if status >= 400 {
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            TestCaseError::fail(format!("{status}: error body not JSON: {e}: {text}"))
        })?;
        check_error_body(dialect, status, &v)
            .map_err(|e| TestCaseError::fail(format!("{status}: {e}: {text}")))?;
    } else if sse {
        check_stream_events(dialect, &text).map_err(TestCaseError::fail)?;
    } else {
        prop_assert!(
            serde_json::from_slice::<Value>(&bytes).is_ok(),
            "{status}: a 2xx body that is not JSON: {text}"
        );
    }
    Ok(())
}

/// Runs `ROUTE_CASES` generated bodies against each route of `routes` on one gateway.
fn fuzz_routes(routes: Vec<RouteCase>) {
    let gw = gateway();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for r in routes {
        let url = format!("{}{}", gw.url, r.path);
        let started = Instant::now();
        let mut runner = TestRunner::new(config(ROUTE_CASES));
        let result = runner.run(&r.bodies, |body| {
            rt.block_on(one(&client, &url, r.dialect, body))
        });
        if let Err(e) = result {
            panic!("POST {}: {e}", r.path);
        }
        eprintln!(
            "POST {}: {} cases in {:?}",
            r.path,
            runner.config().cases,
            started.elapsed()
        );
    }
}

#[test]
fn native_routes_answer_below_500_in_bifrost_shape() {
    fuzz_routes(vec![
        route(
            "/v1/chat/completions",
            Dialect::Bifrost,
            openai_chat_valid(),
        ),
        route("/v1/completions", Dialect::Bifrost, openai_text_valid()),
        route("/v1/embeddings", Dialect::Bifrost, openai_embed_valid()),
    ]);
}

#[test]
fn openai_routes_answer_below_500_in_openai_shape() {
    fuzz_routes(vec![
        route(
            "/openai/v1/chat/completions",
            Dialect::OpenAI,
            openai_chat_valid(),
        ),
        route(
            "/openai/v1/embeddings",
            Dialect::OpenAI,
            openai_embed_valid(),
        ),
    ]);
}

#[test]
fn anthropic_routes_answer_below_500_in_anthropic_shape() {
    fuzz_routes(vec![
        route(
            "/anthropic/v1/messages",
            Dialect::Anthropic,
            anthropic_valid(),
        ),
        route(
            "/anthropic/v1/messages/count_tokens",
            Dialect::Anthropic,
            anthropic_valid(),
        ),
    ]);
}

#[test]
fn genai_routes_answer_below_500_in_google_shape() {
    const MODEL: &str = "/genai/v1beta/models/mock%2Fecho";
    fuzz_routes(vec![
        route(
            const_format(MODEL, ":generateContent"),
            Dialect::Google,
            gemini_valid(),
        ),
        route(
            const_format(MODEL, ":streamGenerateContent?alt=sse"),
            Dialect::Google,
            gemini_valid(),
        ),
        route(
            const_format(MODEL, ":embedContent"),
            Dialect::Google,
            gemini_embed_valid(),
        ),
        route(
            const_format(MODEL, ":batchEmbedContents"),
            Dialect::Google,
            gemini_batch_embed_valid(),
        ),
        route(
            const_format(MODEL, ":countTokens"),
            Dialect::Google,
            gemini_count_valid(),
        ),
    ]);
}

/// `prefix` + `suffix`, leaked for the `'static` path (a handful per test run).
fn const_format(prefix: &str, suffix: &str) -> &'static str {
    Box::leak(format!("{prefix}{suffix}").into_boxed_str())
}
