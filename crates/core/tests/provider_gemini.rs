//! Gemini provider against the mock upstream: exact outgoing request and parsed result.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod support;

use support::*;

const KEY: &str = "g-test-key";

fn network(url: &str, max_retries: u32) -> Value {
    json!({"base_url": url, "extra_headers": {"x-team": "core"}, "max_retries": max_retries,
           "retry_backoff_initial": "1ms", "retry_backoff_max": "5ms"})
}

/// A config whose base URL carries the version segment (it must work with or without it).
fn config(url: &str) -> Value {
    json!({"providers": {"gemini": {
        "keys": [{"value": KEY}],
        "network_config": network(&format!("{url}/v1beta"), 2)
    }}})
}

fn first_choice(resp: &BifrostResponse) -> &Choice {
    &resp.choices.as_ref().unwrap()[0]
}

fn weather_request(text: &str) -> BifrostRequest {
    let mut req = chat(ProviderKey::Gemini, "gemini-2.0-flash", text);
    req.params.tools = Some(vec![weather_tool()]);
    req
}

/// The key travels in its header only: never in the URL, never as a bearer token.
fn assert_key_in_header_only(sent: &CapturedRequest) {
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert!(sent.header("authorization").is_none());
    assert!(!sent.query.as_deref().unwrap_or("").contains(KEY));
    assert!(!sent.path.contains(KEY));
}

#[tokio::test]
async fn chat_request_wire_format_and_response() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = BifrostRequest::chat(
        ProviderKey::Gemini,
        "gemini-2.0-flash",
        vec![
            ChatMessage::text(Role::System, "be brief"),
            ChatMessage::text(Role::User, "hello gemini"),
        ],
    );
    req.params.temperature = Some(0.2);
    req.params.max_tokens = Some(64);
    req.params.stop = Some(json!(["END"]));
    req.params.extra.insert("top_k".into(), json!(4));
    req.params.extra.insert(
        "safetySettings".into(),
        json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]),
    );
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_eq!(sent.query, None);
    assert_key_in_header_only(&sent);
    assert_eq!(sent.header("x-team"), Some("core"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "hello gemini"}]}],
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 64,
                                 "stopSequences": ["END"], "topK": 4}
        })
    );

    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.model, "gemini-2.0-flash");
    assert!(resp.id.starts_with("gemini-mock-"));
    assert_eq!(resp.first_text().as_deref(), Some("hello gemini"));
    let choice = first_choice(&resp);
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    assert_eq!(choice.message.as_ref().unwrap().role, Some(Role::Assistant));
    let usage = resp.usage.as_ref().unwrap();
    assert_eq!(
        (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens
        ),
        (2, 2, 4)
    );
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::Gemini));
}

#[tokio::test]
async fn stream_wire_format_and_chunks() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(
        ProviderKey::Gemini,
        "gemini-2.0-flash",
        "one two three four",
    );
    req.params.extra.insert("mock".into(), json!({"chunks": 2}));
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");

    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    );
    assert_eq!(sent.query.as_deref(), Some("alt=sse"));
    assert_key_in_header_only(&sent);
    assert_eq!(
        sent.body,
        json!({"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}],
               "mock": {"chunks": 2}})
    );

    assert_eq!(chunks.len(), 2);
    assert_eq!(streamed_text(&chunks), "one two three four");
    let first = first_choice(&chunks[0]);
    assert_eq!(first.delta.as_ref().unwrap().role, Some(Role::Assistant));
    assert_eq!(first.finish_reason, None);
    let last = chunks.last().unwrap();
    assert_eq!(first_choice(last).finish_reason.as_deref(), Some("stop"));
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 8);
    assert!(chunks.iter().all(|c| c.object == "chat.completion.chunk"));
    assert!(
        chunks
            .iter()
            .all(|c| c.id == chunks[0].id && !c.id.is_empty())
    );
}

#[tokio::test]
async fn stream_usage_chunk_when_asked() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Gemini, "gemini-2.0-flash", "a b");
    req.params.stream_options = Some(StreamOptions {
        include_usage: Some(true),
        ..StreamOptions::default()
    });
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    let last = chunks.last().unwrap();
    assert_eq!(last.choices.as_deref(), Some(&[][..]));
    assert_eq!(last.usage.as_ref().unwrap().total_tokens, 4);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c.usage.is_none()));
    // stream_options is OpenAI's: Gemini would reject the unknown field.
    assert!(
        mock.last_request()
            .unwrap()
            .body
            .get("stream_options")
            .is_none()
    );
}

#[tokio::test]
async fn tool_call_request_and_response() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = weather_request("weather in Paris?");
    req.params.tool_choice = Some(json!("required"));
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.body["tools"],
        json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather for a city",
            "parametersJsonSchema": {"type": "object", "properties": {"location": {"type": "string"}},
                                     "required": ["location"]}}]}])
    );
    assert_eq!(
        sent.body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY"}})
    );

    let choice = first_choice(&resp);
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    let msg = choice.message.as_ref().unwrap();
    assert_eq!(msg.content, None);
    let calls = msg.tool_calls.as_ref().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id.as_deref(), Some("call_0"));
    assert_eq!(calls[0].kind.as_deref(), Some("function"));
    assert_eq!(calls[0].function.name.as_deref(), Some("get_weather"));
    let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
}

#[tokio::test]
async fn streamed_tool_call_arrives_whole() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), weather_request("weather?"))
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    let args: Value = serde_json::from_str(&streamed_tool_args(&chunks)).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    let delta = first_choice(&chunks[0]).delta.as_ref().unwrap();
    assert_eq!(delta.role, Some(Role::Assistant));
    let call = &delta.tool_calls.as_ref().unwrap()[0];
    assert_eq!(
        (
            call.index,
            call.id.as_deref(),
            call.function.name.as_deref()
        ),
        (Some(0), Some("call_0"), Some("get_weather"))
    );
    assert_eq!(
        first_choice(chunks.last().unwrap())
            .finish_reason
            .as_deref(),
        Some("tool_calls")
    );
}

#[tokio::test]
async fn tool_results_are_sent_verbatim_and_answered() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = weather_request("weather?");
    let RequestInput::Chat(messages) = &mut req.input else {
        unreachable!()
    };
    messages.push(ChatMessage {
        role: Some(Role::Assistant),
        tool_calls: Some(vec![ToolCall {
            index: None,
            id: Some("call_0".into()),
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
        tool_call_id: Some("call_0".into()),
        content: Some(MessageContent::Text("\"sunny\"".into())),
        ..ChatMessage::default()
    });
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                "response": {"content": "\"sunny\""}}}]}
        ])
    );
    assert_eq!(resp.first_text().as_deref(), Some("tool said: \"sunny\""));
    assert_eq!(first_choice(&resp).finish_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn invalid_tool_arguments_fail_before_the_upstream() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Gemini, "gemini-2.0-flash", "x");
    let RequestInput::Chat(messages) = &mut req.input else {
        unreachable!()
    };
    messages.push(ChatMessage {
        role: Some(Role::Assistant),
        tool_calls: Some(vec![ToolCall {
            id: Some("c".into()),
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
    assert!(
        err.error.message.starts_with("message 1:"),
        "{}",
        err.error.message
    );
    assert_eq!(mock.total_requests(), 0);
}

#[tokio::test]
async fn thoughts_become_reasoning_content() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(
        ProviderKey::Gemini,
        "gemini-2.5-flash",
        "why is the sky blue",
    );
    req.params
        .extra
        .insert("thinkingConfig".into(), json!({"includeThoughts": true}));
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(
        mock.last_request().unwrap().body["generationConfig"],
        json!({"thinkingConfig": {"includeThoughts": true}})
    );
    let msg = first_choice(&resp).message.as_ref().unwrap();
    assert_eq!(
        msg.reasoning_content.as_deref(),
        Some("Thinking about: why is the sky blue")
    );
    assert_eq!(resp.first_text().as_deref(), Some("why is the sky blue"));
    let usage = resp.usage.as_ref().unwrap();
    let reasoning = usage
        .completion_tokens_details
        .as_ref()
        .and_then(|d| d.reasoning_tokens);
    assert_eq!(reasoning, Some(7));
    // Thinking counts as completion, as OpenAI counts reasoning.
    assert_eq!(usage.completion_tokens, 5 + 7);
    assert_eq!(usage.total_tokens, 5 + 5 + 7);
}

#[tokio::test]
async fn embeddings_single_and_batch() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = BifrostRequest {
        provider: ProviderKey::Gemini,
        model: "gemini-embedding-001".into(),
        input: RequestInput::Embedding(EmbeddingInput::Text("hello".into())),
        params: ModelParameters {
            dimensions: Some(4),
            ..ModelParameters::default()
        },
        fallbacks: vec![],
    };
    let one = b
        .embedding(&mut RequestContext::default(), req.clone())
        .await
        .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:embedContent"
    );
    assert_key_in_header_only(&sent);
    assert_eq!(
        sent.body,
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]},
               "outputDimensionality": 4})
    );
    assert_eq!(one.object, "list");
    let data = one.data.as_ref().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].embedding.as_array().unwrap().len(), 4);

    req.input =
        RequestInput::Embedding(EmbeddingInput::Texts(vec!["hello".into(), "world".into()]));
    let batch = b
        .embedding(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(sent.body["requests"].as_array().unwrap().len(), 2);
    assert_eq!(
        sent.body["requests"][1]["content"]["parts"][0]["text"],
        "world"
    );
    let data = batch.data.as_ref().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!((data[0].index, data[1].index), (0, 1));
    assert_eq!(data[0].embedding, one.data.as_ref().unwrap()[0].embedding);
}

#[tokio::test]
async fn text_completion_is_one_user_turn() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let req = BifrostRequest {
        provider: ProviderKey::Gemini,
        model: "gemini-2.0-flash".into(),
        input: RequestInput::TextCompletion(PromptInput::Text("once upon a time".into())),
        params: ModelParameters::default(),
        fallbacks: vec![],
    };
    let resp = b
        .text_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(
        mock.last_request().unwrap().body,
        json!({"contents": [{"role": "user", "parts": [{"text": "once upon a time"}]}]})
    );
    assert_eq!(resp.object, "text_completion");
    assert_eq!(
        first_choice(&resp).text.as_deref(),
        Some("once upon a time")
    );
}

#[tokio::test]
async fn rate_limit_is_retried_then_relayed_with_googles_message() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Gemini, "gemini-2.0-flash", "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 429, "retry_after": "0.01", "scenario": "g-rl-once", "fail_times": 1}),
    );
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.retries, Some(1));
    assert_eq!(mock.requests_for_scenario("g-rl-once"), 2);

    // Retries exhausted: the caller gets Google's 429, its status name, message and delay.
    let mut req = chat(ProviderKey::Gemini, "gemini-2.0-flash", "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 429, "retry_after": "0.01", "scenario": "g-rl-always"}),
    );
    let err = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(mock.requests_for_scenario("g-rl-always"), 3);
    assert_eq!(err.http_status(), 429);
    assert!(!err.is_bifrost_error);
    assert_eq!(err.kind(), "RESOURCE_EXHAUSTED");
    assert_eq!(err.error.message, "mock error 429");
    assert_eq!(err.retry_after, Some(std::time::Duration::from_millis(10)));
    assert_eq!(
        err.extra_fields.as_ref().and_then(|x| x.provider.clone()),
        Some(ProviderKey::Gemini)
    );
}

#[tokio::test]
async fn client_errors_are_relayed_without_retry() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Gemini, "gemini-2.0-flash", "x");
    req.params
        .extra
        .insert("mock".into(), json!({"status": 400, "scenario": "g-bad"}));
    let err = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!((err.http_status(), err.kind()), (400, "INVALID_ARGUMENT"));
    assert_eq!(mock.requests_for_scenario("g-bad"), 1);
}

#[tokio::test]
async fn cut_stream_ends_with_an_error() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(
        ProviderKey::Gemini,
        "gemini-2.0-flash",
        "one two three four",
    );
    req.params
        .extra
        .insert("mock".into(), json!({"cut_after": 2}));
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert_eq!(chunks.len(), 2);
    let err = err.unwrap();
    assert_eq!(err.http_status(), 502);
    assert!(!err.error.message.contains(KEY));
}

#[tokio::test]
async fn unreachable_upstream_error_carries_no_key() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let b = engine(json!({"providers": {"gemini": {
        "keys": [{"value": KEY}], "network_config": network(&url, 0)}}}));
    let err = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::Gemini, "gemini-2.0-flash", "x"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 502);
    let shown = serde_json::to_string(&err).unwrap();
    assert!(!shown.contains(KEY), "{shown}");
}

#[tokio::test]
async fn list_models_strips_the_prefix_and_names_the_provider() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let list = b.list_models(&RequestContext::default()).await;
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "gemini/gemini-2.0-flash",
            "gemini/gemini-2.5-flash",
            "gemini/gemini-2.5-pro",
            "gemini/gemini-embedding-001"
        ]
    );
    let sent = mock.last_request().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("GET", "/v1beta/models")
    );
    assert_eq!(sent.query.as_deref(), Some("pageSize=1000"));
    assert_key_in_header_only(&sent);
}

#[tokio::test]
async fn raw_response_is_attached_when_configured() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {"gemini": {
        "keys": [{"value": KEY}], "network_config": network(&mock.url(), 0),
        "send_back_raw_response": true}}}));
    let resp = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::Gemini, "gemini-2.0-flash", "raw"),
        )
        .await
        .unwrap();
    let raw = resp.extra_fields.raw_response.unwrap();
    assert_eq!(raw["candidates"][0]["content"]["parts"][0]["text"], "raw");
}

#[tokio::test]
async fn fallback_from_gemini_to_another_provider() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {
        "gemini": {"keys": [{"value": KEY}], "network_config": network(&mock.url(), 0)},
        "openai": {"keys": [{"value": "sk-openai"}], "network_config": {"base_url": mock.url()}}
    }}));
    let mut req = chat(ProviderKey::Gemini, "gemini-2.0-flash", "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 503, "scenario": "g-fb", "fail_times": 1}),
    );
    req.fallbacks = vec![Fallback::parse("openai/gpt-4o-mini").unwrap()];
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::OpenAI));
    assert_eq!(resp.extra_fields.fallback_index, Some(0));
    let sent = mock.captured();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].path,
        "/v1beta/models/gemini-2.0-flash:generateContent"
    );
    assert_eq!(sent[1].path, "/v1/chat/completions");
    assert_eq!(sent[1].header("authorization"), Some("Bearer sk-openai"));
}
