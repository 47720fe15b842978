//! OpenAI provider against the mock upstream: exact outgoing request and parsed result.

mod support;

use support::*;

fn config(url: &str) -> Value {
    json!({"providers": {"openai": {
        "keys": [{"value": "sk-openai-test"}],
        "network_config": {"base_url": format!("{url}/v1"), "extra_headers": {"x-team": "core"}}
    }}})
}

#[tokio::test]
async fn chat_request_wire_format_and_response() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::OpenAI, "gpt-4o-mini", "hello");
    req.params.temperature = Some(0.2);
    req.params.extra.insert("top_k".into(), json!(4));
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("hello"));
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::OpenAI));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-openai-test"));
    assert_eq!(sent.header("x-team"), Some("core"));
    assert_eq!(
        sent.body,
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}],
               "temperature": 0.2, "top_k": 4})
    );
}

#[tokio::test]
async fn stream_tool_call_arguments_reassemble() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let mut req = chat(ProviderKey::OpenAI, "gpt-4o-mini", "weather?");
    req.params.tools = Some(vec![weather_tool()]);
    let s = b
        .chat_completion_stream(&mut RequestContext::default(), req)
        .await
        .unwrap();
    let (chunks, err) = drain(s).await;
    assert!(err.is_none(), "{err:?}");
    let args: Value = serde_json::from_str(&streamed_tool_args(&chunks)).unwrap();
    assert_eq!(args, json!({"location": "Paris"}));
    assert_eq!(mock.last_request().unwrap().body["stream"], true);
}

#[tokio::test]
async fn fallback_from_openai_to_another_provider() {
    let mock = capturing_mock().await;
    let b = engine(json!({"providers": {
        "openai": {"keys": [{"value": "sk-a"}], "network_config": {"base_url": mock.url()}},
        "groq": {"keys": [{"value": "sk-groq"}], "network_config": {"base_url": mock.url()}}
    }}));
    let mut req = chat(ProviderKey::OpenAI, "gpt-4o-mini", "x");
    req.params.extra.insert(
        "mock".into(),
        json!({"status": 500, "scenario": "oa-fb", "fail_times": 1}),
    );
    req.fallbacks = vec![Fallback::parse("groq/llama").unwrap()];
    let resp = b
        .chat_completion(&mut RequestContext::default(), req)
        .await
        .unwrap();
    assert_eq!(resp.extra_fields.provider, Some(ProviderKey::Groq));
    let sent = mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-groq"));
}

/// A plugin that only names itself: its presence must turn relaying off.
struct Named;

#[async_trait::async_trait]
impl bifrost_core::Plugin for Named {
    fn name(&self) -> &str {
        "named"
    }
}

#[tokio::test]
async fn wire_body_is_relayed_with_usage_parsed_unless_a_plugin_runs() {
    let mock = capturing_mock().await;
    let b = engine(config(&mock.url()));
    let ctx = &mut RequestContext {
        wire_body: true,
        ..RequestContext::default()
    };
    let resp = b
        .chat_completion(ctx, chat(ProviderKey::OpenAI, "gpt-4o-mini", "hello"))
        .await
        .unwrap();
    let sent: Value = serde_json::from_slice(resp.wire_body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["choices"][0]["message"]["content"], "hello");
    assert!(
        resp.choices.is_none(),
        "a relayed body is not parsed in full"
    );
    assert_eq!(resp.model, sent["model"]);
    assert_eq!(
        resp.usage.as_ref().map(|u| u.total_tokens),
        sent["usage"]["total_tokens"].as_u64()
    );
    let out: Value = serde_json::from_slice(&resp.to_openai_json().unwrap()).unwrap();
    assert_eq!(out["extra_fields"]["provider"], "openai");
    assert_eq!(out["choices"], sent["choices"]);

    let cfg = BifrostConfig::from_json(&config(&mock.url()).to_string()).unwrap();
    let b = Bifrost::builder(cfg)
        .plugin(std::sync::Arc::new(Named))
        .build()
        .unwrap();
    let resp = b
        .chat_completion(ctx, chat(ProviderKey::OpenAI, "gpt-4o-mini", "hello"))
        .await
        .unwrap();
    assert!(resp.wire_body.is_none());
    assert_eq!(resp.first_text().as_deref(), Some("hello"));
}
