//! The OpenAI-compatible family (Mistral, Groq, OpenRouter, Ollama, Cerebras, xAI, Perplexity,
//! DeepSeek, Fireworks, Hugging Face, Nebius, vLLM)
//! and the generic custom kind against the mock upstream: each one's path, auth and body
//! differences, streams with tool calls, unsupported operations and a fallback from each.

mod support;

use support::*;

/// `(provider, model, chat path)` for every compatible provider.
const FAMILY: [(&str, &str, &str); 12] = [
    ("mistral", "mistral-small-latest", "/v1/chat/completions"),
    ("groq", "llama-3.1-8b-instant", "/v1/chat/completions"),
    (
        "openrouter",
        "meta-llama/llama-3.1-8b-instruct",
        "/v1/chat/completions",
    ),
    ("ollama", "llama3.2", "/v1/chat/completions"),
    ("cerebras", "llama3.1-8b", "/v1/chat/completions"),
    ("xai", "grok-3", "/v1/chat/completions"),
    ("perplexity", "sonar", "/chat/completions"),
    ("deepseek", "deepseek-chat", "/v1/chat/completions"),
    (
        "fireworks",
        "accounts/fireworks/models/llama-v3p1-8b-instruct",
        "/v1/chat/completions",
    ),
    (
        "huggingface",
        "meta-llama/Llama-3.1-8B-Instruct",
        "/v1/chat/completions",
    ),
    (
        "nebius",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "/v1/chat/completions",
    ),
    ("vllm", "qwen2.5-7b", "/v1/chat/completions"),
];

/// One provider at the mock, with a key unless it is Ollama.
fn config(provider: &str, url: &str) -> Value {
    let keys = if provider == "ollama" {
        json!([])
    } else {
        json!([{"value": format!("sk-{provider}")}])
    };
    json!({"providers": {provider: {"keys": keys, "network_config": {"base_url": url}}}})
}

#[tokio::test]
async fn chat_request_and_response_per_provider() {
    let mock = capturing_mock().await;
    for (name, model, path) in FAMILY {
        let b = engine(config(name, &mock.url()));
        let mut req = chat(ProviderKey::parse(name), model, &format!("hello {name}"));
        req.params.temperature = Some(0.5);
        let resp = b
            .chat_completion(&mut RequestContext::default(), req)
            .await
            .unwrap();
        assert_eq!(resp.first_text(), Some(format!("hello {name}")), "{name}");
        assert_eq!(resp.extra_fields.provider, Some(ProviderKey::parse(name)));
        let sent = mock.last_request().unwrap();
        assert_eq!(sent.path, path, "{name}");
        let auth = (name != "ollama").then(|| format!("Bearer sk-{name}"));
        assert_eq!(sent.header("authorization"), auth.as_deref(), "{name}");
        assert_eq!(
            sent.body,
            json!({"model": model, "messages": [{"role": "user", "content": format!("hello {name}")}],
                   "temperature": 0.5}),
            "{name}"
        );
    }
}

#[tokio::test]
async fn stream_and_tool_calls_per_provider() {
    let mock = capturing_mock().await;
    for (name, model, path) in FAMILY {
        let b = engine(config(name, &mock.url()));
        let s = b
            .chat_completion_stream(
                &mut RequestContext::default(),
                chat(ProviderKey::parse(name), model, "streamed words here"),
            )
            .await
            .unwrap();
        let (chunks, err) = drain(s).await;
        assert!(err.is_none(), "{name}: {err:?}");
        assert_eq!(streamed_text(&chunks), "streamed words here", "{name}");
        let sent = mock.last_request().unwrap();
        assert_eq!(
            (sent.path.as_str(), &sent.body["stream"]),
            (path, &json!(true))
        );

        // Perplexity has no tool calling; its test is below.
        if name == "perplexity" {
            continue;
        }
        let mut req = chat(ProviderKey::parse(name), model, "weather in Paris?");
        req.params.tools = Some(vec![weather_tool()]);
        let s = b
            .chat_completion_stream(&mut RequestContext::default(), req)
            .await
            .unwrap();
        let (chunks, err) = drain(s).await;
        assert!(err.is_none(), "{name}: {err:?}");
        let args: Value = serde_json::from_str(&streamed_tool_args(&chunks)).unwrap();
        assert_eq!(args, json!({"location": "Paris"}), "{name}");
        assert_eq!(
            mock.last_request().unwrap().body["tools"][0]["function"]["name"],
            "get_weather"
        );
    }
}

#[tokio::test]
async fn fallback_from_each_provider() {
    let mock = capturing_mock().await;
    for (name, model, _) in FAMILY {
        let mut cfg = config(name, &mock.url());
        let target = if name == "groq" { "openrouter" } else { "groq" };
        cfg["providers"][target] =
            json!({"keys": [{"value": "sk-target"}], "network_config": {"base_url": mock.url()}});
        let b = engine(cfg);
        let mut req = chat(ProviderKey::parse(name), model, "x");
        req.params.extra.insert(
            "mock".into(),
            json!({"status": 502, "scenario": format!("fb-{name}"), "fail_times": 1}),
        );
        req.fallbacks = vec![Fallback::parse(&format!("{target}/some-model")).unwrap()];
        let resp = b
            .chat_completion(&mut RequestContext::default(), req)
            .await
            .unwrap();
        assert_eq!(
            resp.extra_fields.provider,
            Some(ProviderKey::parse(target)),
            "{name}"
        );
        assert_eq!(mock.requests_for_scenario(&format!("fb-{name}")), 2);
        let sent = mock.last_request().unwrap();
        assert_eq!(sent.header("authorization"), Some("Bearer sk-target"));
        assert_eq!(sent.body["model"], "some-model");
    }
}

#[tokio::test]
async fn mistral_renames_max_completion_tokens_and_flattens_tool_choice() {
    let mock = capturing_mock().await;
    let b = engine(config("mistral", &mock.url()));
    let mut req = chat(ProviderKey::Mistral, "mistral-large-latest", "weather?");
    req.params.max_completion_tokens = Some(99);
    req.params.tools = Some(vec![weather_tool()]);
    req.params.tool_choice = Some(json!({"type": "function", "function": {"name": "get_weather"}}));
    b.chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let body = mock.last_request().unwrap().body;
    assert_eq!(body["max_tokens"], 99);
    assert!(body.get("max_completion_tokens").is_none());
    assert_eq!(body["tool_choice"], "any");

    let req = BifrostRequest {
        provider: ProviderKey::Mistral,
        model: "mistral-small-latest".into(),
        input: RequestInput::TextCompletion(PromptInput::Text("once".into())),
        params: ModelParameters::default(),
        fallbacks: vec![],
    };
    let before = mock.total_requests();
    let e = b
        .text_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "unsupported_operation");
    assert_eq!(mock.total_requests(), before);
}

#[tokio::test]
async fn perplexity_is_chat_only_at_an_unversioned_path() {
    let mock = capturing_mock().await;
    let b = engine(config("perplexity", &mock.url()));
    let mut req = chat(ProviderKey::Perplexity, "sonar-pro", "news?");
    req.params.max_completion_tokens = Some(10);
    req.params
        .extra
        .insert("search_recency_filter".into(), json!("week"));
    b.chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(
        sent.body,
        json!({"model": "sonar-pro", "messages": [{"role": "user", "content": "news?"}],
               "max_tokens": 10, "search_recency_filter": "week"})
    );

    let before = mock.total_requests();
    let mut req = chat(ProviderKey::Perplexity, "sonar", "weather?");
    req.params.tools = Some(vec![weather_tool()]);
    let e = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "unsupported_operation");
    assert!(e.error.message.contains("tool calling"), "{e}");
    let emb = BifrostRequest {
        provider: ProviderKey::Perplexity,
        model: "sonar".into(),
        input: RequestInput::Embedding(EmbeddingInput::Text("x".into())),
        params: ModelParameters::default(),
        fallbacks: vec![],
    };
    let e = b
        .embedding(&mut RequestContext::default(), emb)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "unsupported_operation");
    assert_eq!(mock.total_requests(), before);
}

#[tokio::test]
async fn groq_and_xai_have_no_embeddings_but_ollama_does() {
    let mock = capturing_mock().await;
    let emb = |p: ProviderKey| BifrostRequest {
        provider: p,
        model: "m".into(),
        input: RequestInput::Embedding(EmbeddingInput::Text("x".into())),
        params: ModelParameters::default(),
        fallbacks: vec![],
    };
    for name in ["groq", "xai", "cerebras"] {
        let b = engine(config(name, &mock.url()));
        let e = b
            .embedding(
                &mut RequestContext::default(),
                emb(ProviderKey::parse(name)),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "unsupported_operation", "{name}");
    }
    assert_eq!(mock.total_requests(), 0);
    let b = engine(config("ollama", &mock.url()));
    let resp = b
        .embedding(&mut RequestContext::default(), emb(ProviderKey::Ollama))
        .await
        .unwrap();
    assert_eq!(resp.data.unwrap().len(), 1);
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.header("authorization"), None);
}

#[tokio::test]
async fn xai_reasoning_models_drop_rejected_parameters() {
    let mock = capturing_mock().await;
    let b = engine(config("xai", &mock.url()));
    let mut req = chat(ProviderKey::Xai, "grok-4", "x");
    req.params.presence_penalty = Some(0.1);
    req.params.stop = Some(json!(["."]));
    req.params.temperature = Some(0.7);
    b.chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let body = mock.last_request().unwrap().body;
    assert_eq!(
        body,
        json!({"model": "grok-4", "messages": [{"role": "user", "content": "x"}], "temperature": 0.7})
    );
}

#[tokio::test]
async fn cerebras_drops_reasoning_from_the_history() {
    let mock = capturing_mock().await;
    let b = engine(config("cerebras", &mock.url()));
    let mut assistant = ChatMessage::text(Role::Assistant, "4");
    assistant.reasoning_content = Some("2+2 is 4".into());
    let req = BifrostRequest::chat(
        ProviderKey::Cerebras,
        "qwen-3-32b",
        vec![
            ChatMessage::text(Role::User, "2+2?"),
            assistant,
            ChatMessage::text(Role::User, "and 3+3?"),
        ],
    );
    b.chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(
        mock.last_request().unwrap().body["messages"][1],
        json!({"role": "assistant", "content": "4"})
    );
}

#[tokio::test]
async fn openrouter_sends_attribution_headers_from_extra_headers() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {"openrouter": {
        "keys": [{"value": "sk-or"}],
        "network_config": {"base_url": format!("{}/api/v1", mock.url()),
            "extra_headers": {"HTTP-Referer": "https://example.com", "X-Title": "Bifrost"}}
    }}}));
    b.chat_completion(
        &mut RequestContext::default(),
        chat(ProviderKey::OpenRouter, "anthropic/claude-3.5-haiku", "x"),
    )
    .await
    .unwrap_err(); // the mock has no /api/v1 route: only the request matters here
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/api/v1/chat/completions");
    assert_eq!(sent.header("http-referer"), Some("https://example.com"));
    assert_eq!(sent.header("x-title"), Some("Bifrost"));
    assert_eq!(sent.body["model"], "anthropic/claude-3.5-haiku");
}

fn vllm(url: &str, extra: Value) -> Value {
    let mut p = json!({"custom_provider_config": {"base_provider_type": "openai"},
        "network_config": {"base_url": format!("{url}/v1")}, "keys": []});
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    json!({"providers": {"my-vllm": p}})
}

#[tokio::test]
async fn custom_openai_compatible_provider_without_keys() {
    let mock = capturing_mock().await;
    let b = engine(vllm(&mock.url(), json!({})));
    let my = ProviderKey::parse("my-vllm");
    let resp = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(my.clone(), "meta-llama/Llama-3.1-8B-Instruct", "hi vllm"),
        )
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("hi vllm"));
    assert_eq!(resp.extra_fields.provider, Some(my.clone()));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["model"], "meta-llama/Llama-3.1-8B-Instruct");

    let mut req = chat(my.clone(), "m", "weather?");
    req.params.tools = Some(vec![weather_tool()]);
    let (chunks, err) = drain(
        b.chat_completion_stream(&mut RequestContext::default(), req)
            .await
            .unwrap(),
    )
    .await;
    assert!(err.is_none(), "{err:?}");
    let args: Value = serde_json::from_str(&streamed_tool_args(&chunks)).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));

    let list = b.list_models(&RequestContext::default()).await;
    assert!(
        list.data.iter().any(|m| m.id == "my-vllm/gpt-4o-mini"),
        "{list:?}"
    );
}

#[tokio::test]
async fn custom_provider_with_key_restrictions_and_path_override() {
    let mock = capturing_mock().await;
    let b = engine(vllm(
        &mock.url(),
        json!({"keys": [{"value": "vllm-token"}],
            "custom_provider_config": {"base_provider_type": "openai",
                "allowed_requests": {"chat_completion": true},
                "request_path_overrides": {"chat_completion": "/chat/completions"}}}),
    ));
    let my = ProviderKey::parse("my-vllm");
    b.chat_completion(&mut RequestContext::default(), chat(my.clone(), "m", "x"))
        .await
        .unwrap();
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer vllm-token"));
    let Err(e) = b
        .chat_completion_stream(&mut RequestContext::default(), chat(my, "m", "x"))
        .await
    else {
        panic!("streaming is not in allowed_requests");
    };
    assert_eq!(e.kind(), "unsupported_operation");
    assert_eq!(mock.total_requests(), 1);
}

#[tokio::test]
async fn fallback_from_custom_provider() {
    let mock = capturing_mock().await;
    let mut cfg = vllm(&mock.url(), json!({}));
    cfg["providers"]["ollama"] = json!({"keys": [], "network_config": {"base_url": mock.url()}});
    let b = engine(cfg);
    let mut req = chat(ProviderKey::parse("my-vllm"), "m", "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"reset": true, "scenario": "vllm-fb", "fail_times": 1}),
    );
    req.fallbacks = vec![Fallback::parse("ollama/llama3.2").unwrap()];
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::Ollama));
}
