//! Cohere v2 against the mock upstream: exact outgoing requests, parsed answers, streams
//! with tool calls, embeddings, errors and fallbacks.

mod support;

use support::*;

fn config(url: &str) -> Value {
    json!({"providers": {"cohere": {
        "keys": [{"value": "co-secret"}],
        "network_config": {"base_url": url}
    }}})
}

const MODEL: &str = "command-a-03-2025";

#[tokio::test]
async fn chat_request_wire_format_and_response() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = BifrostRequest::chat(
        ProviderKey::Cohere,
        MODEL,
        vec![
            ChatMessage::text(Role::System, "be brief"),
            ChatMessage::text(Role::User, "hello cohere"),
        ],
    );
    req.params.temperature = Some(0.2);
    req.params.top_p = Some(0.9);
    req.params.max_completion_tokens = Some(64);
    req.params.stop = Some(json!("END"));
    req.params.extra.insert("top_k".into(), json!(5));
    req.params
        .extra
        .insert("safety_mode".into(), json!("STRICT"));
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("hello cohere"));
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.model, MODEL);
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::Cohere));
    let choice = &resp.choices.as_ref().unwrap()[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    assert_eq!(choice.message.as_ref().unwrap().role, Some(Role::Assistant));
    let usage = resp.usage.unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (4, 2, 6)
    );

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v2/chat");
    assert_eq!(sent.header("authorization"), Some("Bearer co-secret"));
    assert_eq!(
        sent.body,
        json!({"model": MODEL, "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello cohere"}],
            "temperature": 0.2, "p": 0.9, "k": 5, "max_tokens": 64,
            "stop_sequences": ["END"], "safety_mode": "STRICT"})
    );
}

#[tokio::test]
async fn stream_text_ends_with_finish_reason_and_usage() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Cohere, MODEL, "one two three four");
    req.params.extra.insert("mock".into(), json!({"chunks": 4}));
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(streamed_text(&chunks), "one two three four");
    assert!(chunks.iter().all(|c| c.object == "chat.completion.chunk"));
    assert!(chunks.iter().all(|c| c.id.starts_with("cohere-mock-")));
    let last = chunks.last().unwrap();
    assert_eq!(
        last.choices.as_ref().unwrap()[0].finish_reason.as_deref(),
        Some("stop")
    );
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 8);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v2/chat");
    assert_eq!(sent.body["stream"], true);
}

#[tokio::test]
async fn stream_tool_call_deltas_carry_index_id_name_and_arguments() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Cohere, MODEL, "weather in Paris?");
    req.params.tools = Some(vec![weather_tool()]);
    req.params.tool_choice = Some(json!("required"));
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    let args: Value = serde_json::from_str(&streamed_tool_args(&chunks)).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    let calls: Vec<&ToolCall> = chunks
        .iter()
        .filter_map(|c| {
            c.choices.as_ref()?[0]
                .delta
                .as_ref()?
                .tool_calls
                .as_ref()?
                .first()
        })
        .collect();
    assert_eq!(calls[0].index, Some(0));
    assert_eq!(calls[0].id.as_deref(), Some("call_mock_1"));
    assert_eq!(calls[0].function.name.as_deref(), Some("get_weather"));
    assert!(
        calls[1..]
            .iter()
            .all(|c| c.id.is_none() && c.index == Some(0))
    );
    let last = chunks.last().unwrap();
    assert_eq!(
        last.choices.as_ref().unwrap()[0].finish_reason.as_deref(),
        Some("tool_calls")
    );
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.body["tool_choice"], "REQUIRED");
    assert_eq!(
        sent.body["tools"],
        json!([{"type": "function", "function": {"name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                "required": ["location"]}}}])
    );
}

#[tokio::test]
async fn tool_call_round_trip() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Cohere, MODEL, "weather in Paris?");
    req.params.tools = Some(vec![weather_tool()]);
    let resp = b
        .chat_completion(&mut RequestContext::default(), req.clone())
        .await
        .unwrap();
    let choice = &resp.choices.as_ref().unwrap()[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    let assistant = choice.message.clone().unwrap();
    let call = &assistant.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.name.as_deref(), Some("get_weather"));
    assert_eq!(call.function.arguments, r#"{"location":"Paris"}"#);
    assert_eq!(
        assistant.reasoning_content.as_deref(),
        Some("I will call get_weather.")
    );

    let RequestInput::Chat(messages) = &mut req.input else {
        unreachable!()
    };
    messages.push(assistant.clone());
    messages.push(ChatMessage {
        role: Some(Role::Tool),
        tool_call_id: call.id.clone(),
        content: Some(MessageContent::Text("sunny".into())),
        ..ChatMessage::default()
    });
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("tool said: sunny"));
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.body["messages"],
        json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "tool_plan": "I will call get_weather.",
                "tool_calls": [{"id": "call_mock_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_mock_1", "content": "sunny"}
        ])
    );
}

fn embed_request(encoding: Option<&str>) -> BifrostRequest {
    let params = ModelParameters {
        encoding_format: encoding.map(str::to_owned),
        dimensions: Some(4),
        ..ModelParameters::default()
    };
    BifrostRequest {
        provider: ProviderKey::Cohere,
        model: "embed-v4.0".into(),
        input: RequestInput::Embedding(EmbeddingInput::Texts(vec![
            "hello".into(),
            "world wide".into(),
        ])),
        params,
        fallbacks: vec![],
    }
}

#[tokio::test]
async fn embeddings_as_openai_list() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let resp = b
        .embedding(&mut RequestContext::default(), embed_request(None))
        .await
        .unwrap();
    assert_eq!(resp.object, "list");
    let data = resp.data.unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1].index, 1);
    assert_eq!(data[0].embedding.as_array().unwrap().len(), 4);
    assert_eq!(resp.usage.unwrap().prompt_tokens, 3);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v2/embed");
    assert_eq!(sent.header("authorization"), Some("Bearer co-secret"));
    assert_eq!(
        sent.body,
        json!({"model": "embed-v4.0", "texts": ["hello", "world wide"],
            "input_type": "search_document", "embedding_types": ["float"], "output_dimension": 4})
    );

    let resp = b
        .embedding(
            &mut RequestContext::default(),
            embed_request(Some("base64")),
        )
        .await
        .unwrap();
    let first = &resp.data.unwrap()[0].embedding;
    // 4 little-endian f32s = 16 bytes = 24 base64 characters.
    assert_eq!(first.as_str().unwrap().len(), 24);
    // encoding_format is OpenAI's; Cohere is not sent it.
    assert!(
        mock.last_request()
            .unwrap()
            .body
            .get("encoding_format")
            .is_none()
    );
}

#[tokio::test]
async fn errors_keep_cohere_message_status_and_retry_after() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Cohere, MODEL, "x");
    req.params
        .extra
        .insert("mock".into(), json!({"status": 429, "retry_after": 3}));
    let e = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 429);
    assert_eq!(e.error.message, "mock error 429");
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(3)));
    assert!(!e.is_bifrost_error);
}

#[tokio::test]
async fn text_completion_is_unsupported_without_a_call() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let req = BifrostRequest {
        provider: ProviderKey::Cohere,
        model: MODEL.into(),
        input: RequestInput::TextCompletion(PromptInput::Text("once upon".into())),
        params: ModelParameters::default(),
        fallbacks: vec![],
    };
    let e = b
        .text_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "unsupported_operation");
    assert_eq!(e.http_status(), 400);
    assert_eq!(mock.total_requests(), 0);
}

#[tokio::test]
async fn fallback_from_cohere_to_another_provider() {
    let mock = capturing_mock().await;
    let mut cfg = config(&mock.url());
    cfg["providers"]["openai"] =
        json!({"keys": [{"value": "sk-oa"}], "network_config": {"base_url": mock.url()}});
    let b = engine(cfg);
    let mut req = chat(ProviderKey::Cohere, MODEL, "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 500, "scenario": "co-fb", "fail_times": 1}),
    );
    req.fallbacks = vec![Fallback::parse("openai/gpt-4o-mini").unwrap()];
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::OpenAI));
    assert_eq!(mock.requests_for_path("/v2/chat"), 1);
    assert_eq!(mock.last_request().unwrap().path, "/v1/chat/completions");
}
