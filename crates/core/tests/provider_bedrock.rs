//! AWS Bedrock against the mock upstream: the exact Converse request, SigV4 headers (the mock
//! recomputes the signature), chat, a tool round trip, the binary event stream (text, tool
//! use, usage, exceptions), Titan and Cohere embeddings, error mapping, deployments with an
//! inference-profile ARN, and Bedrock API keys.

mod support;

use bifrost_mock_upstream::{BEDROCK_ACCESS_KEY, BEDROCK_SECRET_KEY};
use support::*;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const ENCODED: &str = "anthropic.claude-3-haiku-20240307-v1%3A0";

fn network(url: &str, max_retries: u32) -> Value {
    json!({"base_url": url, "max_retries": max_retries,
        "retry_backoff_initial": "1ms", "retry_backoff_max": "5ms"})
}

/// SigV4 keys the mock verifies in full.
fn config(url: &str, max_retries: u32) -> Value {
    json!({"providers": {"bedrock": {
        "keys": [{"value": "", "bedrock_key_config": {
            "access_key": BEDROCK_ACCESS_KEY, "secret_key": BEDROCK_SECRET_KEY,
            "session_token": "mock-session-token", "region": "us-west-2"}}],
        "network_config": network(url, max_retries)
    }}})
}

fn ctx_with(headers: &[(&str, &str)]) -> RequestContext {
    RequestContext {
        extra_headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..RequestContext::default()
    }
}

#[tokio::test]
async fn chat_request_shape_and_sigv4_headers() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 0));
    let mut req = BifrostRequest::chat(
        ProviderKey::Bedrock,
        MODEL,
        vec![
            ChatMessage::text(Role::System, "be brief"),
            ChatMessage::text(Role::User, "hello bedrock"),
        ],
    );
    req.params.temperature = Some(0.2);
    req.params.top_p = Some(0.9);
    req.params.max_completion_tokens = Some(64);
    req.params.stop = Some(json!(["END"]));
    req.params.extra.insert("top_k".into(), json!(5));
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("hello bedrock"));
    assert_eq!(resp.object, "chat.completion");
    assert_eq!(resp.model, MODEL);
    assert!(resp.id.starts_with("bedrock-mock-"), "{}", resp.id);
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::Bedrock));
    let choice = &resp.choices.as_ref().unwrap()[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("stop"));
    let usage = resp.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (2, 2));

    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, format!("/model/{ENCODED}/converse"));
    assert_eq!(
        sent.body,
        json!({
            "messages": [{"role": "user", "content": [{"text": "hello bedrock"}]}],
            "system": [{"text": "be brief"}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "topP": 0.9,
                "stopSequences": ["END"]},
            "additionalModelRequestFields": {"top_k": 5}
        })
    );
    let auth = sent.header("authorization").unwrap();
    let prefix = format!(
        "AWS4-HMAC-SHA256 Credential={BEDROCK_ACCESS_KEY}/{}/us-west-2/bedrock/aws4_request, \
         SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature=",
        &sent.header("x-amz-date").unwrap()[..8]
    );
    assert!(auth.starts_with(&prefix), "{auth}");
    let signature = auth.rsplit("Signature=").next().unwrap();
    assert_eq!(signature.len(), 64);
    assert!(signature.bytes().all(|c| c.is_ascii_hexdigit()));
    let date = sent.header("x-amz-date").unwrap();
    assert_eq!((date.len(), &date[8..9], &date[15..]), (16, "T", "Z"));
    assert_eq!(
        sent.header("x-amz-security-token"),
        Some("mock-session-token")
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    // The mock recomputed the signature with the secret and accepted it (the answer above);
    // `a_wrong_secret_is_refused_by_signature` shows it would not have otherwise.
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_signature() {
    let mock = capturing_mock().await;
    let mut cfg = config(&mock.url(), 0);
    cfg["providers"]["bedrock"]["keys"][0]["bedrock_key_config"]["secret_key"] =
        json!("not-the-secret");
    let b = engine(cfg);
    let e = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::Bedrock, MODEL, "hi"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 401);
    assert_eq!(e.error.code.as_deref(), Some("InvalidSignatureException"));
    assert!(!e.error.message.contains("not-the-secret"));
}

#[tokio::test]
async fn tool_round_trip_sends_tool_use_and_the_exact_tool_result() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 0));
    let mut req = chat(ProviderKey::Bedrock, MODEL, "weather in Paris?");
    req.params.tools = Some(vec![weather_tool()]);
    req.params.tool_choice = Some(json!({"type": "function", "function": {"name": "get_weather"}}));
    let resp = b
        .chat_completion(&mut RequestContext::default(), req.clone())
        .await
        .unwrap();
    let choice = &resp.choices.as_ref().unwrap()[0];
    assert_eq!(choice.finish_reason.as_deref(), Some("tool_calls"));
    let message = choice.message.clone().unwrap();
    let call = &message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.id.as_deref(), Some("call_mock_1"));
    assert_eq!(call.function.name.as_deref(), Some("get_weather"));
    assert_eq!(call.function.arguments, r#"{"location":"Paris"}"#);
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.body["toolConfig"],
        json!({"tools": [{"toolSpec": {"name": "get_weather", "description": "Weather for a city",
            "inputSchema": {"json": {"type": "object",
                "properties": {"location": {"type": "string"}}, "required": ["location"]}}}}],
            "toolChoice": {"tool": {"name": "get_weather"}}})
    );

    let RequestInput::Chat(messages) = &mut req.input else {
        unreachable!()
    };
    messages.push(message);
    messages.push(ChatMessage {
        role: Some(Role::Tool),
        tool_call_id: Some("call_mock_1".into()),
        content: Some(MessageContent::Text("\"sunny\"".into())),
        ..ChatMessage::default()
    });
    req.params.tool_choice = None;
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("tool said: \"sunny\""));
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.body["messages"],
        json!([
            {"role": "user", "content": [{"text": "weather in Paris?"}]},
            {"role": "assistant", "content": [{"text": "I will call get_weather."},
                {"toolUse": {"toolUseId": "call_mock_1", "name": "get_weather",
                    "input": {"location": "Paris"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "call_mock_1",
                "content": [{"text": "\"sunny\""}]}}]}
        ])
    );
}

#[tokio::test]
async fn images_go_as_bytes() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 0));
    let req = BifrostRequest::chat(
        ProviderKey::Bedrock,
        MODEL,
        vec![ChatMessage {
            role: Some(Role::User),
            content: Some(MessageContent::Parts(vec![
                ContentPart {
                    kind: "text".into(),
                    text: Some("describe".into()),
                    ..ContentPart::default()
                },
                ContentPart {
                    kind: "image_url".into(),
                    image_url: Some(ImageUrl {
                        url: "data:image/png;base64,iVBORw0KGgo=".into(),
                        detail: None,
                    }),
                    ..ContentPart::default()
                },
            ])),
            ..ChatMessage::default()
        }],
    );
    b.chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(
        mock.last_request().unwrap().body["messages"][0]["content"][1],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}})
    );
}

#[tokio::test]
async fn stream_text_finish_and_usage_from_the_binary_event_stream() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 0));
    let s = b
        .chat_completion_stream(
            &mut ctx_with(&[("x-mock-chunks", "3")]),
            chat(ProviderKey::Bedrock, MODEL, "one two three"),
        )
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(streamed_text(&chunks), "one two three");
    assert_eq!(
        chunks[0].choices.as_ref().unwrap()[0]
            .delta
            .as_ref()
            .unwrap()
            .role,
        Some(Role::Assistant)
    );
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|c| c.choices.as_ref()?.first()?.finish_reason.clone())
        .collect();
    assert_eq!(finish, ["stop"]);
    let usage = chunks.iter().find_map(|c| c.usage.clone()).unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 3));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, format!("/model/{ENCODED}/converse-stream"));
    assert_eq!(
        sent.header("accept"),
        Some("application/vnd.amazon.eventstream")
    );
}

#[tokio::test]
async fn stream_tool_use_deltas() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 0));
    let mut req = chat(ProviderKey::Bedrock, MODEL, "weather?");
    req.params.tools = Some(vec![weather_tool()]);
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(streamed_tool_args(&chunks), r#"{"location":"Paris"}"#);
    let head = chunks
        .iter()
        .find_map(|c| {
            let call = c
                .choices
                .as_ref()?
                .first()?
                .delta
                .as_ref()?
                .tool_calls
                .as_ref()?;
            call[0]
                .id
                .clone()
                .map(|id| (id, call[0].function.name.clone(), call[0].index))
        })
        .unwrap();
    assert_eq!(
        head,
        ("call_mock_1".into(), Some("get_weather".into()), Some(0))
    );
    let finish = chunks
        .iter()
        .find_map(|c| c.choices.as_ref()?.first()?.finish_reason.clone());
    assert_eq!(finish.as_deref(), Some("tool_calls"));
}

#[tokio::test]
async fn stream_exceptions_and_cuts_are_errors() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 0));
    // An exception right after messageStart: a typed, retryable 429 in the stream.
    let out = b
        .chat_completion_stream(
            &mut ctx_with(&[("x-mock-stream-exception", "throttlingException")]),
            chat(ProviderKey::Bedrock, MODEL, "hi"),
        )
        .await;
    let e = match out {
        Ok(s) => drain(s).await.1.unwrap(),
        Err(e) => e,
    };
    assert_eq!(e.http_status(), 429);
    assert_eq!(e.error.code.as_deref(), Some("throttlingException"));
    // A connection cut before messageStop is an error, not a clean end.
    let s = b
        .chat_completion_stream(
            &mut ctx_with(&[("x-mock-cut-after", "2"), ("x-mock-chunks", "4")]),
            chat(ProviderKey::Bedrock, MODEL, "a b c d"),
        )
        .await
        .unwrap();
    let (_, err) = drain(s).await;
    assert!(err.is_some());
}

fn embedding(model: &str, input: EmbeddingInput) -> BifrostRequest {
    BifrostRequest {
        provider: ProviderKey::Bedrock,
        model: model.into(),
        input: RequestInput::Embedding(input),
        params: ModelParameters::default(),
        fallbacks: vec![],
    }
}

#[tokio::test]
async fn embeddings_with_titan_and_cohere_bodies() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 0));
    let mut req = embedding(
        "amazon.titan-embed-text-v2:0",
        EmbeddingInput::Texts(vec!["alpha".into(), "beta gamma".into()]),
    );
    req.params.dimensions = Some(4);
    let resp = b
        .embedding(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let data = resp.data.unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1].index, 1);
    assert_eq!(data[0].embedding.as_array().unwrap().len(), 4);
    assert_eq!(resp.usage.unwrap().prompt_tokens, 3);
    let sent = mock.captured();
    let bodies: Vec<&Value> = sent.iter().map(|r| &r.body).collect();
    assert!(bodies.contains(&&json!({"inputText": "alpha", "dimensions": 4})));
    assert!(
        sent.iter()
            .all(|r| r.path == "/model/amazon.titan-embed-text-v2%3A0/invoke")
    );

    mock.reset();
    let mut req = embedding(
        "cohere.embed-english-v3",
        EmbeddingInput::Texts(vec!["alpha".into(), "beta".into()]),
    );
    req.params
        .extra
        .insert("input_type".into(), json!("search_query"));
    let resp = b
        .embedding(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.data.as_ref().unwrap().len(), 2);
    assert_eq!(resp.usage.unwrap().prompt_tokens, 2);
    assert_eq!(
        mock.last_request().unwrap().body,
        json!({"texts": ["alpha", "beta"], "input_type": "search_query"})
    );

    let e = b
        .embedding(
            &mut RequestContext::default(),
            embedding(
                "meta.llama3-8b-instruct-v1:0",
                EmbeddingInput::Text("x".into()),
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "unsupported_operation");
}

#[tokio::test]
async fn errors_map_throttling_validation_access_and_model_errors() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url(), 2));
    let cases = [
        ("429", 429, "ThrottlingException", true),
        ("400", 400, "ValidationException", false),
        ("403", 403, "AccessDeniedException", false),
        ("424", 424, "ModelErrorException", false),
    ];
    for (status, want, code, retryable) in cases {
        mock.reset();
        let e = b
            .chat_completion(
                &mut ctx_with(&[("x-mock-status", status)]),
                chat(ProviderKey::Bedrock, MODEL, "x"),
            )
            .await
            .unwrap_err();
        assert_eq!(e.http_status(), want, "{code}");
        assert_eq!(e.error.code.as_deref(), Some(code));
        assert_eq!(e.error.message, format!("mock error {status}"));
        assert!(!e.is_bifrost_error);
        // Throttling is retried (1 + max_retries attempts); the others are not.
        let attempts = if retryable { 3 } else { 1 };
        assert_eq!(mock.total_requests(), attempts, "{code}");
    }
    // An invalid conversation is the upstream's own ValidationException.
    mock.reset();
    let req = BifrostRequest::chat(
        ProviderKey::Bedrock,
        MODEL,
        vec![ChatMessage::text(Role::Assistant, "I speak first")],
    );
    let e = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(
        (e.http_status(), e.error.code.as_deref()),
        (400, Some("ValidationException"))
    );
}

#[tokio::test]
async fn deployments_alias_with_inference_profile_arn() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {"bedrock": {
        "keys": [{"value": "", "bedrock_key_config": {
            "access_key": BEDROCK_ACCESS_KEY, "secret_key": BEDROCK_SECRET_KEY,
            "region": "eu-central-1",
            "arn": "arn:aws:bedrock:eu-central-1:123456789012:inference-profile",
            "deployments": {"claude-haiku": "eu.anthropic.claude-3-haiku-20240307-v1:0"}}}],
        "network_config": network(&mock.url(), 0)
    }}}));
    b.chat_completion(
        &mut RequestContext::default(),
        chat(ProviderKey::Bedrock, "claude-haiku", "hi"),
    )
    .await
    .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.path,
        "/model/arn%3Aaws%3Abedrock%3Aeu-central-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    );
    assert!(
        sent.header("authorization")
            .unwrap()
            .contains("/eu-central-1/bedrock/")
    );
    // A model the key does not deploy finds no key.
    let e = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::Bedrock, "other-model", "hi"),
        )
        .await
        .unwrap_err();
    assert!(
        e.error.message.contains("model/deployment"),
        "{}",
        e.error.message
    );
    let models = b.list_models(&RequestContext::default()).await;
    assert_eq!(models.data[0].id, "bedrock/claude-haiku");
}

#[tokio::test]
async fn bedrock_api_key_is_a_bearer_token() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {"bedrock": {
        "keys": [{"value": "ABSKbedrock-api-key", "bedrock_key_config": {"region": "us-east-1"}}],
        "network_config": network(&mock.url(), 0)
    }}}));
    b.chat_completion(
        &mut RequestContext::default(),
        chat(ProviderKey::Bedrock, MODEL, "hi"),
    )
    .await
    .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer ABSKbedrock-api-key")
    );
    assert_eq!(sent.header("x-amz-date"), None);
}

#[tokio::test]
async fn without_keys_the_environment_is_used_or_named() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {"bedrock": {
        "keys": [], "network_config": network(&mock.url(), 0)
    }}}));
    let from_env = ["AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
    let out = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::Bedrock, MODEL, "hi"),
        )
        .await;
    if from_env {
        // This machine has AWS credentials in its environment: they were sent.
        assert!(
            mock.last_request()
                .unwrap()
                .header("authorization")
                .is_some()
        );
    } else {
        let e = out.unwrap_err();
        assert_eq!(e.http_status(), 500);
        assert!(
            e.error.message.contains("AWS_ACCESS_KEY_ID"),
            "{}",
            e.error.message
        );
        assert_eq!(mock.total_requests(), 0);
    }
}
