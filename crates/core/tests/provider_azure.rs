//! Azure OpenAI against the mock upstream: deployment URLs, `api-version`, `api-key`,
//! key selection by deployments, the older `meta_config` layout, and fallbacks.

mod support;

use support::*;

fn config(url: &str) -> Value {
    json!({"providers": {"azure": {"keys": [{
        "value": "az-secret",
        "azure_key_config": {"endpoint": url, "api_version": "2024-10-21",
            "deployments": {"gpt-4o": "gpt4o-prod", "text-embedding-3-small": "emb-prod"}}
    }]}}})
}

#[tokio::test]
async fn chat_goes_to_the_deployment_with_api_key_and_version() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Azure, "gpt-4o", "hello azure");
    req.params.max_completion_tokens = Some(50);
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("hello azure"));
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::Azure));
    assert_eq!(
        resp.choices.unwrap()[0].finish_reason.as_deref(),
        Some("stop")
    );
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/openai/deployments/gpt4o-prod/chat/completions");
    assert_eq!(sent.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(sent.header("api-key"), Some("az-secret"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.body,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello azure"}],
               "max_completion_tokens": 50})
    );
}

#[tokio::test]
async fn stream_tool_call_arguments_reassemble() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Azure, "gpt-4o", "weather in Paris?");
    req.params.tools = Some(vec![weather_tool()]);
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    let args: Value = serde_json::from_str(&streamed_tool_args(&chunks)).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/openai/deployments/gpt4o-prod/chat/completions");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["tools"][0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn meta_config_layout_embeddings_and_default_api_version() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {"azure": {
        "keys": [{"value": "az-old"}],
        "meta_config": {"endpoint": format!("{}/", mock.url()),
            "deployments": {"text-embedding-3-small": "emb-dep"}}
    }}}));
    let req = BifrostRequest {
        provider: ProviderKey::Azure,
        model: "text-embedding-3-small".into(),
        input: RequestInput::Embedding(EmbeddingInput::Texts(vec!["a".into(), "b".into()])),
        params: ModelParameters::default(),
        fallbacks: vec![],
    };
    let resp = b
        .embedding(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.data.unwrap().len(), 2);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/openai/deployments/emb-dep/embeddings");
    assert_eq!(sent.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(sent.header("api-key"), Some("az-old"));
    assert_eq!(
        sent.body,
        json!({"model": "text-embedding-3-small", "input": ["a", "b"]})
    );
}

#[tokio::test]
async fn keys_serve_only_their_deployments() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {"azure": {"keys": [
        {"value": "key-east", "weight": 0.5,
            "azure_key_config": {"endpoint": mock.url(), "deployments": {"gpt-4o": "east-4o"}}},
        {"value": "key-west", "weight": 0.5,
            "azure_key_config": {"endpoint": mock.url(), "deployments": {"gpt-35-turbo": "west-35"}}}
    ]}}}));
    for _ in 0..6 {
        b.chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::Azure, "gpt-35-turbo", "x"),
        )
        .await
        .unwrap();
        let sent = mock.last_request().unwrap();
        assert_eq!(sent.header("api-key"), Some("key-west"));
        assert_eq!(sent.path, "/openai/deployments/west-35/chat/completions");
    }
    let before = mock.total_requests();
    let e = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::Azure, "o3", "x"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 400);
    assert!(e.error.message.contains("no keys found"), "{e}");
    assert!(e.error.message.contains("o3"), "{e}");
    assert_eq!(mock.total_requests(), before);
}

#[tokio::test]
async fn list_models_names_the_configured_deployments_without_a_call() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let list = b.list_models(&RequestContext::default()).await;
    let ids: Vec<&str> = list.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["azure/gpt-4o", "azure/text-embedding-3-small"]);
    assert_eq!(mock.total_requests(), 0);
}

#[tokio::test]
async fn upstream_errors_keep_status_and_message() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::Azure, "gpt-4o", "x");
    req.params
        .extra
        .insert("mock".into(), json!({"status": 429, "retry_after": 2}));
    let e = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), 429);
    assert_eq!(e.error.message, "mock error 429");
    assert_eq!(e.retry_after, Some(std::time::Duration::from_secs(2)));
    assert_eq!(e.extra_fields.unwrap().provider, Some(ProviderKey::Azure));
}

#[tokio::test]
async fn fallback_from_azure_to_another_provider() {
    let mock = capturing_mock().await;
    let mut cfg = config(&mock.url());
    cfg["providers"]["openai"] =
        json!({"keys": [{"value": "sk-oa"}], "network_config": {"base_url": mock.url()}});
    let b = engine(cfg);
    let mut req = chat(ProviderKey::Azure, "gpt-4o", "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 503, "scenario": "az-fb", "fail_times": 1}),
    );
    req.fallbacks = vec![Fallback::parse("openai/gpt-4o-mini").unwrap()];
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::OpenAI));
    assert_eq!(resp.extra_fields.fallback_index, Some(0));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-oa"));
}
