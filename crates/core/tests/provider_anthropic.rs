//! Anthropic provider against the mock upstream: exact outgoing request and parsed result.

#![allow(clippy::unwrap_used, reason = "test helpers should fail loudly")]

mod support;

use std::time::Duration;

use support::*;

fn network(url: &str, max_retries: u32) -> Value {
    json!({"base_url": url, "extra_headers": {"x-team": "core"}, "max_retries": max_retries,
           "retry_backoff_initial": "1ms", "retry_backoff_max": "5ms"})
}

fn config(url: &str) -> Value {
    json!({"providers": {"anthropic": {
        "keys": [{"value": "sk-ant-test"}],
        "network_config": network(url, 2)
    }}})
}

fn weather_request(text: &str) -> BifrostRequest {
    let mut req = chat(ProviderKey::Anthropic, "claude-3-5-haiku", text);
    req.params.tools = Some(vec![weather_tool()]);
    req
}

fn first_choice(resp: &BifrostResponse) -> &Choice {
    &resp.choices.as_ref().unwrap()[0]
}

fn weather_tool_json() -> Value {
    json!({"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                            "required": ["location"]}})
}

#[tokio::test]
async fn chat_request_wire_format_and_response() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = BifrostRequest::chat(
        ProviderKey::Anthropic,
        "claude-3-5-haiku",
        vec![
            ChatMessage::text(Role::System, "be brief"),
            ChatMessage::text(Role::User, "hello"),
        ],
    );
    req.params.temperature = Some(0.2);
    req.params.max_tokens = Some(64);
    req.params.extra.insert("top_k".into(), json!(4));
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-team"), Some("core"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.body,
        json!({"model": "claude-3-5-haiku", "max_tokens": 64, "system": "be brief",
               "messages": [{"role": "user", "content": "hello"}],
               "temperature": 0.2, "top_k": 4})
    );

    assert_eq!(resp.object, "chat.completion");
    assert!(resp.id.starts_with("msg_mock_"), "{}", resp.id);
    assert_eq!(resp.model, "claude-3-5-haiku");
    assert_eq!(resp.first_text().as_deref(), Some("hello"));
    assert_eq!(first_choice(&resp).finish_reason.as_deref(), Some("stop"));
    let usage = resp.usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (3, 1, 4)
    );
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::Anthropic));
}

#[tokio::test]
async fn stream_wire_format_and_chunks() {
    let mock = capturing_mock().await;
    // The base URL may carry the version segment.
    let b = engine(config(&format!("{}/v1", mock.url())));
    let req = chat(
        ProviderKey::Anthropic,
        "claude-3-5-haiku",
        "one two three four",
    );
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(
        sent.body,
        json!({"model": "claude-3-5-haiku", "max_tokens": 4096, "stream": true,
               "messages": [{"role": "user", "content": "one two three four"}]})
    );

    assert_eq!(streamed_text(&chunks), "one two three four");
    assert!(chunks.iter().all(|c| c.object == "chat.completion.chunk"
        && c.id.starts_with("msg_mock_")
        && c.model == "claude-3-5-haiku"));
    let first = first_choice(&chunks[0]).delta.as_ref().unwrap();
    assert_eq!(first.role, Some(Role::Assistant));
    let last = chunks.last().unwrap();
    assert_eq!(first_choice(last).finish_reason.as_deref(), Some("stop"));
    let usage = last.usage.as_ref().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (4, 4));
}

#[tokio::test]
async fn tool_call_request_and_response() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = weather_request("weather in Paris?");
    req.params.tool_choice = Some(json!("required"));
    req.params.parallel_tool_calls = Some(false);
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["tools"], json!([weather_tool_json()]));
    assert_eq!(
        sent.body["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );

    let choice = first_choice(&resp);
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    let msg = choice.message.as_ref().unwrap();
    assert_eq!(msg.content, None);
    let call = &msg.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.id.as_deref(), Some("toolu_mock_1"));
    assert_eq!(call.kind.as_deref(), Some("function"));
    assert_eq!(call.function.name.as_deref(), Some("get_weather"));
    let args: Value = serde_json::from_str(&call.function.arguments).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
}

#[tokio::test]
async fn streamed_tool_call_arguments_reassemble() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = weather_request("weather?");
    req.params.extra.insert("mock".into(), json!({"chunks": 6}));
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["tools"], json!([weather_tool_json()]));

    let calls: Vec<&ToolCall> = chunks
        .iter()
        .filter_map(|c| first_choice(c).delta.as_ref()?.tool_calls.as_ref())
        .flatten()
        .collect();
    assert_eq!(calls.len(), 7, "one start plus six argument pieces");
    assert_eq!(calls[0].index, Some(0));
    assert_eq!(calls[0].id.as_deref(), Some("toolu_mock_1"));
    assert_eq!(calls[0].function.name.as_deref(), Some("get_weather"));
    assert!(
        calls[1..]
            .iter()
            .all(|c| c.index == Some(0) && c.id.is_none())
    );
    let args: Value = serde_json::from_str(&streamed_tool_args(&chunks)).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    let last = chunks.last().unwrap();
    assert_eq!(
        first_choice(last).finish_reason.as_deref(),
        Some("tool_calls")
    );
}

#[tokio::test]
async fn tool_results_are_sent_verbatim_and_answered() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = weather_request("weather in Paris?");
    let RequestInput::Chat(messages) = &mut req.input else {
        unreachable!()
    };
    messages.push(ChatMessage {
        role: Some(Role::Assistant),
        tool_calls: Some(vec![ToolCall {
            index: None,
            id: Some("toolu_mock_1".into()),
            kind: Some("function".into()),
            function: FunctionCall {
                name: Some("get_weather".into()),
                arguments: r#"{"location":"Paris"}"#.into(),
            },
        }]),
        ..ChatMessage::default()
    });
    messages.push(ChatMessage {
        role: Some(Role::Tool),
        tool_call_id: Some("toolu_mock_1".into()),
        content: Some(MessageContent::Text("\"sunny\"".into())),
        ..ChatMessage::default()
    });
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.body["messages"],
        json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1",
                "name": "get_weather", "input": {"location": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1",
                "content": "\"sunny\""}]}
        ])
    );
    assert_eq!(resp.first_text().as_deref(), Some("tool said: \"sunny\""));
    assert_eq!(first_choice(&resp).finish_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn rate_limit_is_retried_then_relayed_with_anthropic_message() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Anthropic, "claude-3-5-haiku", "hi");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 429, "retry_after": "0.01", "scenario": "rl-once", "fail_times": 1}),
    );
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("hi"));
    assert_eq!(resp.extra_fields.retries, Some(1));
    assert_eq!(mock.requests_for_scenario("rl-once"), 2);

    // Retries exhausted: the caller gets Anthropic's 429, its type, message and Retry-After.
    let mut req = chat(ProviderKey::Anthropic, "claude-3-5-haiku", "hi");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 429, "retry_after": "0.01", "scenario": "rl-always"}),
    );
    let err = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(mock.requests_for_scenario("rl-always"), 3);
    assert_eq!(err.http_status(), 429);
    assert!(!err.is_bifrost_error);
    assert_eq!(err.kind(), "rate_limit_error");
    assert_eq!(err.error.message, "mock error 429");
    assert_eq!(err.retry_after, Some(Duration::from_millis(10)));
    assert_eq!(
        err.extra_fields.as_ref().unwrap().provider,
        Some(ProviderKey::Anthropic)
    );
}

#[tokio::test]
async fn overloaded_529_is_retried_for_whole_and_streamed_answers() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Anthropic, "claude-3-5-haiku", "busy");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 529, "scenario": "ovl", "fail_times": 1}),
    );
    let resp = b
        .chat_completion(&mut RequestContext::default(), req.clone())
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.retries, Some(1));

    req.params.extra.insert(
        "mock".into(),
        json!({"status": 529, "scenario": "ovl-stream", "fail_times": 1}),
    );
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(streamed_text(&chunks), "busy");
    assert_eq!(mock.requests_for_scenario("ovl-stream"), 2);
}

#[tokio::test]
async fn cut_stream_ends_with_an_error() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(
        ProviderKey::Anthropic,
        "claude-3-5-haiku",
        "one two three four",
    );
    req.params
        .extra
        .insert("mock".into(), json!({"cut_after": 5}));
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(!chunks.is_empty());
    assert!(
        chunks
            .iter()
            .all(|c| first_choice(c).finish_reason.is_none())
    );
    let err = err.expect("a cut stream must end with an error");
    assert_eq!(err.http_status(), 502);
}

#[tokio::test]
async fn client_side_errors_never_reach_the_upstream() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Anthropic, "claude-3-5-haiku", "x");
    let RequestInput::Chat(messages) = &mut req.input else {
        unreachable!()
    };
    messages.push(ChatMessage {
        role: Some(Role::Assistant),
        tool_calls: Some(vec![ToolCall {
            id: Some("t1".into()),
            function: FunctionCall {
                name: Some("f".into()),
                arguments: "{oops".into(),
            },
            ..ToolCall::default()
        }]),
        ..ChatMessage::default()
    });
    let err = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 400);
    assert!(err.error.message.contains("messages[1]"), "{err}");

    let embed = BifrostRequest {
        provider: ProviderKey::Anthropic,
        model: "claude-3-5-haiku".into(),
        input: RequestInput::Embedding(EmbeddingInput::Text("x".into())),
        params: ModelParameters::default(),
        fallbacks: Vec::new(),
    };
    let err = b
        .embedding(&mut RequestContext::default(), embed)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 400);
    assert_eq!(err.kind(), "unsupported_operation");
    assert_eq!(mock.total_requests(), 0);
}

#[tokio::test]
async fn list_models_uses_anthropic_shape_and_prefixes_ids() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let list = b.list_models(&RequestContext::default()).await;
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "anthropic/claude-3-5-haiku-20241022",
            "anthropic/claude-3-7-sonnet-20250219",
            "anthropic/claude-sonnet-4-5-20250929"
        ]
    );
    let haiku = &list.data[0];
    assert_eq!(haiku.created, 1_729_555_200);
    assert_eq!(haiku.owned_by, "anthropic");
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path, "/v1/models");
    assert_eq!(sent.query.as_deref(), Some("limit=1000"));
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test]
async fn fallback_from_anthropic_to_another_provider() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {
        "anthropic": {"keys": [{"value": "sk-ant"}], "network_config": {"base_url": mock.url()}},
        "openai": {"keys": [{"value": "sk-oa"}], "network_config": {"base_url": mock.url()}}
    }}));
    let mut req = chat(ProviderKey::Anthropic, "claude-3-5-haiku", "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 500, "scenario": "an-fb", "fail_times": 1}),
    );
    req.fallbacks = vec![Fallback::parse("openai/gpt-4o-mini").unwrap()];
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::OpenAI));
    assert_eq!(resp.extra_fields.fallback_index, Some(0));
    assert_eq!(resp.first_text().as_deref(), Some("x"));
    let sent = mock.captured();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].path, "/v1/messages");
    assert_eq!(sent[0].header("x-api-key"), Some("sk-ant"));
    assert_eq!(sent[1].path, "/v1/chat/completions");
    assert_eq!(sent[1].header("authorization"), Some("Bearer sk-oa"));
}
