//! Shared helpers for provider tests: a capturing mock upstream and an engine built from JSON.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support fails loudly"
)]

pub use bifrost_core::schemas::*;
pub use bifrost_core::{Bifrost, BifrostConfig, RequestContext};
pub use bifrost_mock_upstream::{CapturedRequest, MockConfig, MockServer};
pub use futures::StreamExt;
pub use serde_json::{Value, json};

/// A mock upstream that records every request it gets.
pub async fn capturing_mock() -> MockServer {
    MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

/// An engine from a `config.json`-shaped value.
pub fn engine(config: Value) -> Bifrost {
    let cfg = BifrostConfig::from_json(&config.to_string()).unwrap();
    Bifrost::builder(cfg).build().unwrap()
}

/// A one-message user chat request.
pub fn chat(provider: ProviderKey, model: &str, text: &str) -> BifrostRequest {
    BifrostRequest::chat(provider, model, vec![ChatMessage::text(Role::User, text)])
}

/// A `get_weather(location)` tool.
pub fn weather_tool() -> Tool {
    Tool {
        kind: "function".into(),
        function: FunctionDef {
            name: "get_weather".into(),
            description: Some("Weather for a city".into()),
            parameters: Some(json!({"type": "object",
                "properties": {"location": {"type": "string"}}, "required": ["location"]})),
            strict: None,
        },
    }
}

/// Drains a stream, returning the chunks and the error that ended it, if any.
pub async fn drain(
    mut s: bifrost_core::BifrostStream,
) -> (Vec<BifrostResponse>, Option<BifrostError>) {
    let mut chunks = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => return (chunks, Some(e)),
        }
    }
    (chunks, None)
}

/// Concatenated `delta.content` of a chunk list.
pub fn streamed_text(chunks: &[BifrostResponse]) -> String {
    chunks
        .iter()
        .filter_map(|c| c.choices.as_ref()?.first()?.delta.as_ref()?.text_content())
        .collect()
}

/// Concatenated tool-call argument fragments of the first tool call.
pub fn streamed_tool_args(chunks: &[BifrostResponse]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            let calls = c
                .choices
                .as_ref()?
                .first()?
                .delta
                .as_ref()?
                .tool_calls
                .as_ref()?;
            Some(calls.first()?.function.arguments.clone())
        })
        .collect()
}
