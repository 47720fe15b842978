#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use bifrost_core::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ChatMessage, ContentPart, EmbeddingInput,
    MessageContent, ModelParameters, PromptInput, ProviderKey, RequestInput, Role,
};
use bifrost_core::{Bifrost, BifrostConfig, Plugin, PreHookOutcome, RequestContext};
use serde_json::{Value, json};

use super::*;

fn plugin(config: Value) -> MockerPlugin {
    MockerPlugin::from_config(&config).unwrap()
}

fn chat(provider: &str, model: &str, text: &str) -> BifrostRequest {
    BifrostRequest::chat(
        ProviderKey::parse(provider),
        model,
        vec![ChatMessage::text(Role::User, text)],
    )
}

async fn run(p: &MockerPlugin, mut req: BifrostRequest) -> PreHookOutcome {
    p.pre_hook(&mut RequestContext::new("t"), &mut req).await
}

fn respond(o: PreHookOutcome) -> BifrostResponse {
    match o {
        PreHookOutcome::Respond(r) => r,
        other => panic!("expected Respond, got {other:?}"),
    }
}

fn fail(o: PreHookOutcome) -> BifrostError {
    match o {
        PreHookOutcome::Fail(e) => e,
        other => panic!("expected Fail, got {other:?}"),
    }
}

fn is_continue(o: &PreHookOutcome) -> bool {
    matches!(o, PreHookOutcome::Continue)
}

fn say(name: &str, message: &str) -> Value {
    json!({"name": name, "responses": [{"type": "success", "content": {"message": message}}]})
}

fn err_field(config: Value) -> String {
    MockerPlugin::from_config(&config).unwrap_err().field
}

/// The mocker block of Bifrost's `transports/config.example.json`, verbatim.
const BIFROST_EXAMPLE: &str = r#"{
    "enabled": true,
    "default_behavior": "passthrough",
    "rules": [
      {
        "name": "test-mock",
        "enabled": true,
        "priority": 1,
        "probability": 1,
        "conditions": {
          "providers": ["openai"]
        },
        "responses": [
          {
            "type": "success",
            "weight": 1.0,
            "content": {
              "message": "This is a mock response for testing"
            }
          }
        ]
      }
    ]
}"#;

#[tokio::test]
async fn bifrost_example_block_loads_and_answers() {
    let p = plugin(serde_json::from_str(BIFROST_EXAMPLE).unwrap());
    let r = respond(run(&p, chat("openai", "gpt-4o-mini", "hello")).await);
    assert_eq!(r.object, "chat.completion");
    assert!(r.id.starts_with("mock-") && r.id.len() > 10);
    assert!(r.created > 1_600_000_000);
    assert_eq!(r.model, "gpt-4o-mini");
    assert_eq!(
        r.first_text().as_deref(),
        Some("This is a mock response for testing")
    );
    let c = &r.choices.as_ref().unwrap()[0];
    assert_eq!(c.message.as_ref().unwrap().role, Some(Role::Assistant));
    assert_eq!(c.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.extra_fields.provider, Some(ProviderKey::OpenAI));
    assert_eq!(
        r.extra_fields.model_requested.as_deref(),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        r.extra_fields.request_type.as_deref(),
        Some("chat_completion")
    );
    // Estimated usage: "hello" = 2 tokens in, 35 chars = 9 tokens out.
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (2, 9, 11)
    );
    assert!(is_continue(
        &run(&p, chat("anthropic", "claude", "hello")).await
    ));
    assert_eq!(p.stats(), vec![("test-mock".to_owned(), 1)]);
    assert_eq!(p.name(), "mocker");
}

#[tokio::test]
async fn disabled_or_unmatched_passes_through() {
    let off = plugin(json!({"enabled": false, "rules": [say("r", "x")]}));
    assert!(!off.is_enabled());
    assert!(is_continue(&run(&off, chat("openai", "m", "hi")).await));
    assert_eq!(off.stats(), vec![("r".to_owned(), 0)]);

    let missing = plugin(json!({"rules": [say("r", "x")]}));
    assert!(is_continue(&run(&missing, chat("openai", "m", "hi")).await));
    let null = plugin(Value::Null);
    assert!(is_continue(&run(&null, chat("openai", "m", "hi")).await));
    assert!(null.stats().is_empty());

    let unmatched = plugin(json!({"enabled": true, "rules": [
        {"name": "only-groq", "conditions": {"providers": ["groq"]},
         "responses": [{"type": "success", "content": {"message": "x"}}]},
        {"name": "off", "enabled": false, "responses": [{"type": "success", "content": {"message": "x"}}]}
    ]}));
    assert!(is_continue(
        &run(&unmatched, chat("openai", "m", "hi")).await
    ));
    assert_eq!(
        unmatched.stats(),
        vec![("only-groq".to_owned(), 0), ("off".to_owned(), 0)]
    );
}

#[tokio::test]
async fn enabled_without_rules_installs_bifrost_default_rule() {
    let p = plugin(json!({"enabled": true}));
    let r = respond(run(&p, chat("openai", "m", "hi")).await);
    assert_eq!(
        r.first_text().as_deref(),
        Some("This is a mock response from the Mocker plugin")
    );
    assert_eq!(p.stats(), vec![("default-mock".to_owned(), 1)]);
}

#[tokio::test]
async fn default_behavior_success_and_error() {
    let p = plugin(json!({"enabled": true, "default_behavior": "success",
        "rules": [{"name": "never", "conditions": {"providers": ["groq"]},
                   "responses": [{"type": "success", "content": {"message": "x"}}]}]}));
    let r = respond(run(&p, chat("openai", "m", "hi")).await);
    assert_eq!(
        r.first_text().as_deref(),
        Some("Mock plugin default response")
    );
    assert_eq!(p.counters().default_answers, 1);
    assert_eq!(p.stats(), vec![("never".to_owned(), 0)]);

    let p = plugin(json!({"enabled": true, "default_behavior": "error",
        "rules": [{"name": "never", "probability": 0,
                   "responses": [{"type": "success", "content": {"message": "x"}}]}]}));
    let e = fail(run(&p, chat("openai", "m", "hi")).await);
    assert_eq!(e.http_status(), 500);
    assert_eq!(e.error.message, "Mock plugin default error");
    assert!(!e.is_bifrost_error);
    assert_eq!(p.counters().errors_generated, 1);
}

#[tokio::test]
async fn higher_priority_wins_and_ties_keep_order() {
    let p = plugin(json!({"enabled": true, "rules": [
        {"name": "low", "priority": 1, "responses": [{"type": "success", "content": {"message": "low"}}]},
        {"name": "high", "priority": 10, "responses": [{"type": "success", "content": {"message": "high"}}]},
        {"name": "tie-a", "priority": 5, "responses": [{"type": "success", "content": {"message": "a"}}]},
        {"name": "tie-b", "priority": 5, "responses": [{"type": "success", "content": {"message": "b"}}]},
        {"name": "highest-but-off", "priority": 99, "enabled": false,
         "responses": [{"type": "success", "content": {"message": "off"}}]}
    ]}));
    let r = respond(run(&p, chat("openai", "m", "hi")).await);
    assert_eq!(r.first_text().as_deref(), Some("high"));
    let names: Vec<String> = p.stats().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["highest-but-off", "high", "tie-a", "tie-b", "low"]);
    assert_eq!(p.stats()[1].1, 1);
}

#[tokio::test]
async fn probability_zero_never_fires_one_always_does() {
    let p = plugin(json!({"enabled": true, "rules": [
        {"name": "never", "priority": 2, "probability": 0.0,
         "responses": [{"type": "success", "content": {"message": "never"}}]},
        {"name": "always", "priority": 1, "probability": 1.0,
         "responses": [{"type": "success", "content": {"message": "always"}}]}
    ]}));
    for _ in 0..200 {
        let r = respond(run(&p, chat("openai", "m", "hi")).await);
        assert_eq!(r.first_text().as_deref(), Some("always"));
    }
    assert_eq!(
        p.stats(),
        vec![("never".to_owned(), 0), ("always".to_owned(), 200)]
    );

    let half = plugin(json!({"enabled": true, "rules": [
        {"name": "half", "probability": 0.5,
         "responses": [{"type": "success", "content": {"message": "x"}}]}]}));
    let mut fired = 0;
    for _ in 0..2000 {
        if !is_continue(&run(&half, chat("openai", "m", "hi")).await) {
            fired += 1;
        }
    }
    assert!((800..=1200).contains(&fired), "fired {fired}/2000");
}

#[tokio::test]
async fn provider_model_and_glob_conditions() {
    let p = plugin(json!({"enabled": true, "rules": [
        {"name": "exact", "priority": 3, "conditions": {"providers": ["openai", "azure"], "models": ["gpt-4"]},
         "responses": [{"type": "success", "content": {"message": "exact"}}]},
        {"name": "glob", "priority": 2, "conditions": {"models": ["gpt-4*", "*-haiku"]},
         "responses": [{"type": "success", "content": {"message": "glob"}}]},
        {"name": "custom", "priority": 1, "conditions": {"providers": ["mock"]},
         "responses": [{"type": "success", "content": {"message": "custom"}}]}
    ]}));
    let text = async |provider: &str, model: &str| match run(&p, chat(provider, model, "x")).await {
        PreHookOutcome::Respond(r) => r.first_text(),
        _ => None,
    };
    assert_eq!(text("openai", "gpt-4").await.as_deref(), Some("exact"));
    assert_eq!(text("azure", "gpt-4").await.as_deref(), Some("exact"));
    assert_eq!(text("anthropic", "gpt-4").await.as_deref(), Some("glob"));
    assert_eq!(text("openai", "gpt-4o-mini").await.as_deref(), Some("glob"));
    assert_eq!(
        text("anthropic", "claude-3-haiku").await.as_deref(),
        Some("glob")
    );
    assert_eq!(text("mock", "anything").await.as_deref(), Some("custom"));
    assert_eq!(text("openai", "gpt-3.5-turbo").await, None);
}

#[tokio::test]
async fn message_regex_sees_all_text_prompts_and_embedding_input() {
    let p = plugin(json!({"enabled": true, "rules": [
        {"name": "re", "conditions": {"message_regex": "(?i)rate.?limit"},
         "responses": [{"type": "error", "error": {"message": "slow down", "status_code": 429}}]}
    ]}));
    assert!(is_continue(&run(&p, chat("openai", "m", "hello")).await));
    assert!(matches!(
        run(&p, chat("openai", "m", "simulate a Rate Limit please")).await,
        PreHookOutcome::Fail(_)
    ));

    // Matches in an earlier message and in content parts too.
    let mut parts = ChatMessage::text(Role::User, "");
    parts.content = Some(MessageContent::Parts(vec![
        ContentPart {
            kind: "text".into(),
            text: Some("about the ratelimit".into()),
            ..ContentPart::default()
        },
        ContentPart {
            kind: "image_url".into(),
            ..ContentPart::default()
        },
    ]));
    let multi = BifrostRequest::chat(
        ProviderKey::OpenAI,
        "m",
        vec![
            ChatMessage::text(Role::System, "be brief"),
            parts,
            ChatMessage::text(Role::User, "ok"),
        ],
    );
    assert!(matches!(run(&p, multi).await, PreHookOutcome::Fail(_)));

    let mut text = chat("openai", "m", "");
    text.input = RequestInput::TextCompletion(PromptInput::Text("rate limit me".into()));
    assert!(matches!(run(&p, text).await, PreHookOutcome::Fail(_)));
    let mut batch = chat("openai", "m", "");
    batch.input =
        RequestInput::TextCompletion(PromptInput::Batch(vec![json!("a"), json!("rate-limit")]));
    assert!(matches!(run(&p, batch).await, PreHookOutcome::Fail(_)));
    let mut emb = chat("openai", "m", "");
    emb.input =
        RequestInput::Embedding(EmbeddingInput::Texts(vec!["x".into(), "RATELIMIT".into()]));
    assert!(matches!(run(&p, emb).await, PreHookOutcome::Fail(_)));
}

#[tokio::test]
async fn request_size_bounds_the_serialized_input() {
    let p = plugin(json!({"enabled": true, "rules": [
        {"name": "small", "conditions": {"request_size": {"min": 0, "max": 60}},
         "responses": [{"type": "success", "content": {"message": "small"}}]},
        {"name": "big", "conditions": {"request_size": {"min": 200}},
         "responses": [{"type": "success", "content": {"message": "big"}}]}
    ]}));
    // `[{"role":"user","content":"hi"}]` is 32 bytes.
    let r = respond(run(&p, chat("openai", "m", "hi")).await);
    assert_eq!(r.first_text().as_deref(), Some("small"));
    assert!(is_continue(
        &run(&p, chat("openai", "m", &"x".repeat(100))).await
    ));
    let r = respond(run(&p, chat("openai", "m", &"x".repeat(300))).await);
    assert_eq!(r.first_text().as_deref(), Some("big"));
}

#[tokio::test]
async fn weighted_choice_follows_weights() {
    let p = plugin(
        json!({"enabled": true, "rules": [{"name": "w", "responses": [
            {"type": "success", "weight": 3, "content": {"message": "a"}},
            {"type": "success", "weight": 1, "content": {"message": "b"}},
            {"type": "success", "weight": 0, "content": {"message": "never"}}
        ]}]}),
    );
    let (mut a, mut b) = (0, 0);
    for _ in 0..4000 {
        match respond(run(&p, chat("openai", "m", "x")).await)
            .first_text()
            .as_deref()
        {
            Some("a") => a += 1,
            Some("b") => b += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let share = f64::from(a) / 4000.0;
    assert!((0.70..=0.80).contains(&share), "a={a} b={b}");

    // Bifrost's README weights (0.8 / 0.2) work the same way, success and error mixed.
    let mixed = plugin(
        json!({"enabled": true, "rules": [{"name": "m", "responses": [
            {"type": "success", "weight": 0.8, "content": {"message": "ok"}},
            {"type": "error", "weight": 0.2, "error": {"message": "boom"}}
        ]}]}),
    );
    let mut errors = 0;
    for _ in 0..2000 {
        if matches!(
            run(&mixed, chat("openai", "m", "x")).await,
            PreHookOutcome::Fail(_)
        ) {
            errors += 1;
        }
    }
    assert!((300..=500).contains(&errors), "errors {errors}/2000");
    let c = mixed.counters();
    assert_eq!(c.errors_generated + c.responses_generated, 2000);
}

#[tokio::test]
async fn error_response_carries_status_type_code_and_fallback_setting() {
    let p = plugin(json!({"enabled": true, "rules": [
        {"name": "rl", "conditions": {"providers": ["openai"]}, "responses": [{
            "type": "error", "allow_fallbacks": false,
            "error": {"message": "Rate limit exceeded", "type": "rate_limit", "code": "429", "status_code": 429}
        }]},
        {"name": "plain", "responses": [{"type": "error", "error": {"message": "down", "code": 503}}]}
    ]}));
    let e = fail(run(&p, chat("openai", "gpt-4", "x")).await);
    assert_eq!(e.status_code, Some(429));
    assert_eq!(e.http_status(), 429);
    assert_eq!(e.kind(), "rate_limit");
    assert_eq!(e.error.code.as_deref(), Some("429"));
    assert_eq!(e.error.message, "Rate limit exceeded");
    assert!(!e.is_bifrost_error);
    assert_eq!(e.allow_fallbacks, Some(false));
    assert!(!e.fallbacks_allowed());
    let x = e.extra_fields.unwrap();
    assert_eq!(x.provider, Some(ProviderKey::OpenAI));
    assert_eq!(x.model_requested.as_deref(), Some("gpt-4"));

    let e = fail(run(&p, chat("anthropic", "c", "x")).await);
    assert_eq!(e.status_code, Some(500));
    assert_eq!(e.error.code.as_deref(), Some("503"));
    assert_eq!(e.error.kind, None);
    assert_eq!(e.allow_fallbacks, None);
    assert!(e.fallbacks_allowed());
}

#[tokio::test]
async fn input_placeholder_echoes_last_user_message() {
    let p = plugin(json!({"enabled": true, "rules": [{
        "name": "echo", "conditions": {"providers": ["mock"]},
        "responses": [{"type": "success", "content": {"message": "{{input}}"}}]
    }, {
        "name": "templ", "conditions": {"providers": ["openai"]},
        "responses": [{"type": "success", "content": {
            "message": "ignored", "message_template": "{{model}} at {{provider}} heard: {{input}}"}}]
    }]}));
    let req = BifrostRequest::chat(
        ProviderKey::parse("mock"),
        "echo",
        vec![
            ChatMessage::text(Role::System, "sys"),
            ChatMessage::text(Role::User, "first"),
            ChatMessage::text(Role::Assistant, "reply"),
            ChatMessage::text(Role::User, "echo me"),
        ],
    );
    let r = respond(run(&p, req).await);
    assert_eq!(r.first_text().as_deref(), Some("echo me"));
    assert_eq!(r.model, "echo");
    assert_eq!(r.extra_fields.provider, Some(ProviderKey::parse("mock")));
    assert_eq!(r.usage.as_ref().unwrap().completion_tokens, 2);

    let r = respond(run(&p, chat("openai", "gpt-4o", "hi")).await);
    assert_eq!(
        r.first_text().as_deref(),
        Some("gpt-4o at openai heard: hi")
    );
}

#[tokio::test]
async fn content_overrides_model_usage_finish_reason_and_custom_fields() {
    let p = plugin(
        json!({"enabled": true, "rules": [{"name": "c", "responses": [{
        "type": "success", "content": {
            "message": "m", "model": "mock-model", "finish_reason": "length",
            "usage": {"prompt_tokens": 15, "completion_tokens": 25},
            "custom_fields": {"ab_test_version": "A"}
        }}]}]}),
    );
    let r = respond(run(&p, chat("openai", "gpt-4", "x")).await);
    assert_eq!(r.model, "mock-model");
    assert_eq!(r.extra_fields.model_requested.as_deref(), Some("gpt-4"));
    let c = &r.choices.as_ref().unwrap()[0];
    assert_eq!(c.finish_reason.as_deref(), Some("length"));
    let u = r.usage.as_ref().unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (15, 25, 40)
    );
    assert_eq!(
        r.extra_fields.raw_response,
        Some(json!({"ab_test_version": "A"}))
    );
}

#[tokio::test]
async fn text_completion_and_embedding_answers() {
    let p = plugin(json!({"enabled": true, "rules": [{"name": "all",
        "responses": [{"type": "success", "content": {"message": "you said {{input}}"}}]}]}));
    let mut req = chat("openai", "gpt-3.5-turbo-instruct", "");
    req.input = RequestInput::TextCompletion(PromptInput::Text("hello".into()));
    let r = respond(run(&p, req.clone()).await);
    assert_eq!(r.object, "text_completion");
    let c = &r.choices.as_ref().unwrap()[0];
    assert_eq!(c.text.as_deref(), Some("you said hello"));
    assert!(c.message.is_none());
    assert_eq!(
        r.extra_fields.request_type.as_deref(),
        Some("text_completion")
    );

    req.input = RequestInput::TextCompletion(PromptInput::Batch(vec![json!("a"), json!("b")]));
    let r = respond(run(&p, req).await);
    let texts: Vec<_> = r
        .choices
        .unwrap()
        .into_iter()
        .map(|c| (c.index, c.text.unwrap()))
        .collect();
    assert_eq!(
        texts,
        [(0, "you said a".to_owned()), (1, "you said b".to_owned())]
    );

    let mut emb = chat("openai", "text-embedding-3-small", "");
    emb.input = RequestInput::Embedding(EmbeddingInput::Texts(vec!["one".into(), "two".into()]));
    let r1 = respond(run(&p, emb.clone()).await);
    let r2 = respond(run(&p, emb.clone()).await);
    assert_eq!(r1.object, "list");
    assert!(r1.choices.is_none());
    let d1 = r1.data.unwrap();
    assert_eq!(d1.len(), 2);
    assert_eq!(d1[1].index, 1);
    assert_eq!(d1[0].object, "embedding");
    assert_eq!(d1[0].embedding.as_array().unwrap().len(), 8);
    assert_eq!(d1, r2.data.unwrap(), "embeddings are deterministic");
    assert_ne!(d1[0].embedding, d1[1].embedding);
    let u = r1.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (2, 0));

    emb.params = ModelParameters {
        dimensions: Some(3),
        ..ModelParameters::default()
    };
    let r = respond(run(&p, emb).await);
    assert_eq!(r.data.unwrap()[0].embedding.as_array().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn rule_latency_is_applied() {
    let p = plugin(json!({"enabled": true, "rules": [{"name": "slow",
        "latency": {"type": "fixed", "min": "250ms"},
        "responses": [{"type": "success", "content": {"message": "x"}}]}]}));
    let t = tokio::time::Instant::now();
    let r = respond(run(&p, chat("openai", "m", "x")).await);
    assert_eq!(t.elapsed(), Duration::from_millis(250));
    assert_eq!(r.extra_fields.latency, Some(250));
}

#[tokio::test(start_paused = true)]
async fn global_latency_applies_when_rule_has_none_and_uniform_stays_in_range() {
    // Integers are Go `time.Duration` nanoseconds: 100_000_000 ns = 100 ms.
    let p = plugin(json!({"enabled": true,
    "global_latency": {"type": "fixed", "min": 100_000_000},
    "rules": [
        {"name": "uses-global", "conditions": {"providers": ["openai"]},
         "responses": [{"type": "error", "error": {"message": "x"}}]},
        {"name": "own", "latency": {"type": "uniform", "min": "1s", "max": "2s"},
         "responses": [{"type": "success", "content": {"message": "x"}}]}
    ]}));
    let t = tokio::time::Instant::now();
    fail(run(&p, chat("openai", "m", "x")).await);
    assert_eq!(t.elapsed(), Duration::from_millis(100));
    for _ in 0..20 {
        let t = tokio::time::Instant::now();
        respond(run(&p, chat("groq", "m", "x")).await);
        let e = t.elapsed();
        assert!(
            e >= Duration::from_secs(1) && e <= Duration::from_secs(2),
            "{e:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn delay_only_rules_sleep_then_pass_through() {
    let p = plugin(
        json!({"enabled": true, "default_behavior": "success", "rules": [
            {"name": "slow-openai", "conditions": {"providers": ["openai"]},
             "latency": {"min": "2s"}},
            {"name": "mixed", "conditions": {"providers": ["groq"]}, "latency": {"min": "1s"},
             "responses": [{"type": "passthrough"}]}
        ]}),
    );
    let t = tokio::time::Instant::now();
    assert!(is_continue(&run(&p, chat("openai", "m", "x")).await));
    assert_eq!(t.elapsed(), Duration::from_secs(2));
    let t = tokio::time::Instant::now();
    assert!(is_continue(&run(&p, chat("groq", "m", "x")).await));
    assert_eq!(t.elapsed(), Duration::from_secs(1));
    assert_eq!(p.counters().passed_through, 2);
    assert_eq!(
        p.stats(),
        vec![("slow-openai".to_owned(), 1), ("mixed".to_owned(), 1)]
    );
}

#[tokio::test]
async fn skip_mocker_extension_bypasses_rules() {
    let p = plugin(json!({"enabled": true}));
    let mut ctx = RequestContext::new("t");
    ctx.extensions.insert(SkipMocker);
    let mut req = chat("openai", "m", "x");
    assert!(is_continue(&p.pre_hook(&mut ctx, &mut req).await));
    assert_eq!(p.stats(), vec![("default-mock".to_owned(), 0)]);
}

#[test]
fn config_errors_name_the_field() {
    let rule = |patch: Value| {
        let mut r =
            json!({"name": "r", "responses": [{"type": "success", "content": {"message": "x"}}]});
        for (k, v) in patch.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"enabled": true, "rules": [say("ok", "x"), r]})
    };
    assert_eq!(
        err_field(rule(json!({"conditions": {"message_regex": "(unclosed"}}))),
        "rules[1].conditions.message_regex"
    );
    assert_eq!(
        err_field(rule(json!({"probability": 1.5}))),
        "rules[1].probability"
    );
    assert_eq!(
        err_field(rule(json!({"probability": -0.1}))),
        "rules[1].probability"
    );
    assert_eq!(
        err_field(rule(json!({"probability": "often"}))),
        "rules[1].probability"
    );
    assert_eq!(
        err_field(rule(
            json!({"responses": [{"type": "success", "weight": -1, "content": {"message": "x"}}]})
        )),
        "rules[1].responses[0].weight"
    );
    assert_eq!(
        err_field(rule(json!({"responses": [{"type": "teapot"}]}))),
        "rules[1].responses[0].type"
    );
    assert_eq!(
        err_field(rule(json!({"responses": [{"type": "success"}]}))),
        "rules[1].responses[0].content"
    );
    assert_eq!(
        err_field(rule(
            json!({"responses": [{"type": "success", "content": {}}]})
        )),
        "rules[1].responses[0].content.message"
    );
    assert_eq!(
        err_field(rule(
            json!({"responses": [{"type": "error", "error": {"message": "x", "status_code": 700}}]})
        )),
        "rules[1].responses[0].error.status_code"
    );
    assert_eq!(
        err_field(rule(json!({"responses": [{"type": "error", "error": {}}]}))),
        "rules[1].responses[0].error.message"
    );
    assert_eq!(
        err_field(rule(json!({"responses": [{"type": "success",
            "content": {"message": "x", "usage": {"prompt_tokens": -1}}}]}))),
        "rules[1].responses[0].content.usage.prompt_tokens"
    );
    assert_eq!(
        err_field(rule(
            json!({"latency": {"type": "uniform", "min": "2s", "max": "1s"}})
        )),
        "rules[1].latency.max"
    );
    assert_eq!(
        err_field(rule(json!({"latency": {"type": "gaussian"}}))),
        "rules[1].latency.type"
    );
    assert_eq!(
        err_field(rule(json!({"latency": {"min": "soon"}}))),
        "rules[1].latency.min"
    );
    assert_eq!(
        err_field(rule(json!({"latency": {"min": -5}}))),
        "rules[1].latency.min"
    );
    assert_eq!(
        err_field(rule(
            json!({"conditions": {"request_size": {"min": 10, "max": 5}}})
        )),
        "rules[1].conditions.request_size.max"
    );
    assert_eq!(
        err_field(rule(json!({"conditions": {"providers": "openai"}}))),
        "rules[1].conditions.providers"
    );
    assert_eq!(err_field(rule(json!({"name": ""}))), "rules[1].name");
    assert_eq!(
        err_field(json!({"enabled": true, "default_behavior": "maybe"})),
        "default_behavior"
    );
    assert_eq!(
        err_field(json!({"global_latency": {"type": "fixed", "min": "x"}})),
        "global_latency.min"
    );
    assert_eq!(err_field(json!({"rules": {}})), "rules");
    assert_eq!(err_field(json!({"rules": [1]})), "rules[0]");
    assert_eq!(err_field(json!({"enabled": "yes"})), "enabled");

    let e = MockerPlugin::from_config(&rule(json!({"probability": 2}))).unwrap_err();
    assert!(e.to_string().contains("rules[1].probability"), "{e}");
}

#[test]
fn unknown_fields_and_nulls_are_tolerated() {
    let p = plugin(json!({
        "enabled": true, "some_future_flag": 1, "global_latency": null,
        "rules": [{"name": "r", "description": "ignored", "latency": null,
                   "conditions": {"providers": ["openai"], "message_regex": null, "headers": {}},
                   "responses": [{"type": "success", "allow_fallbacks": null,
                                  "content": {"message": "x", "model": null, "extra": true}}]}]
    }));
    assert_eq!(p.stats(), vec![("r".to_owned(), 0)]);
}

/// Through the real engine: non-stream and stream requests to a provider nobody configured
/// are answered by the mocker, and an error rule hands over to a fallback.
#[tokio::test]
async fn answers_through_the_engine() {
    use bifrost_core::schemas::Fallback;
    use futures::StreamExt;

    let p = plugin(json!({"enabled": true, "rules": [
        {"name": "echo", "conditions": {"providers": ["mock"], "models": ["echo"]},
         "responses": [{"type": "success", "content": {"message": "{{input}}"}}]},
        {"name": "down", "conditions": {"providers": ["mock"], "models": ["down"]},
         "responses": [{"type": "error", "error": {"message": "down", "status_code": 503}}]}
    ]}));
    let plugin: Arc<MockerPlugin> = Arc::new(p);
    let gw = Bifrost::builder(BifrostConfig::default())
        .plugin(plugin.clone())
        .build()
        .unwrap();

    let mut ctx = RequestContext::new("r1");
    let r = gw
        .chat_completion(&mut ctx, chat("mock", "echo", "ping"))
        .await
        .unwrap();
    assert_eq!(r.first_text().as_deref(), Some("ping"));

    let mut req = chat("mock", "down", "ping");
    req.fallbacks.push(Fallback::parse("mock/echo").unwrap());
    let r = gw.chat_completion(&mut ctx, req).await.unwrap();
    assert_eq!(r.first_text().as_deref(), Some("ping"));
    assert_eq!(r.extra_fields.fallback_index, Some(0));

    let mut ctx = RequestContext::new("r2");
    let stream = gw
        .chat_completion_stream(&mut ctx, chat("mock", "echo", "streamed"))
        .await
        .unwrap();
    let chunks: Vec<_> = stream.collect().await;
    let text: String = chunks
        .iter()
        .filter_map(|c| c.as_ref().ok()?.first_text())
        .collect();
    assert_eq!(text, "streamed");
    assert_eq!(
        plugin.stats(),
        vec![("echo".to_owned(), 3), ("down".to_owned(), 1)]
    );
}

#[tokio::test]
async fn readme_example_loads_and_echoes() {
    let readme = include_str!("../README.md");
    let start = readme.find("```json\n").unwrap() + "```json\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let full: Value = serde_json::from_str(&readme[start..end]).unwrap();
    let p = plugin(full["plugins"][0]["config"].clone());
    let r = respond(run(&p, chat("mock", "echo", "hello there")).await);
    assert_eq!(r.first_text().as_deref(), Some("hello there"));
    assert_eq!(p.stats().len(), 3);
    assert_eq!(p.stats()[0], ("demo-echo".to_owned(), 1));
}
