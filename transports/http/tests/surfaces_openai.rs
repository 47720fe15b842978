//! The `/openai` drop-in route end to end: the real binary in front of a capturing mock.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly, like the tests themselves"
)]

mod support;

use serde_json::{Value, json};
use support::*;

async fn setup() -> (MockServer, Gateway) {
    let mock = MockServer::start(MockConfig {
        capture_requests: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let mut c = config(&mock.url());
    c["providers"]["anthropic"] = json!({
        "keys": [{"value": "sk-ant-a", "models": [], "weight": 1}],
        "network_config": {"base_url": mock.url(), "max_retries": 0}
    });
    c["providers"]["azure"] = json!({"keys": [{"value": "az-key",
        "azure_key_config": {"endpoint": mock.url(), "api_version": "2024-10-21",
            "deployments": {"prod-4o": "prod-4o"}}}]});
    let gw = Gateway::start(&c);
    (mock, gw)
}

#[tokio::test]
async fn bare_models_go_to_openai_with_the_configured_key_not_the_bearer() {
    let (mock, gw) = setup().await;
    for path in ["/openai/chat/completions", "/openai/v1/chat/completions"] {
        let resp = client()
            .post(format!("{}{path}", gw.url))
            .bearer_auth("sk-caller-secret")
            .json(&chat_body("gpt-4o-mini", "bare"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "bare");
        assert_eq!(v["extra_fields"]["provider"], "openai");
    }
    let sent = mock.captured();
    assert!(
        sent.iter()
            .all(|c| c.header("authorization") == Some("Bearer sk-test-a"))
    );
    assert!(sent.iter().all(|c| c.body["model"] == "gpt-4o-mini"));
}

#[tokio::test]
async fn provider_prefix_routes_and_translates_to_anthropic() {
    let (mock, gw) = setup().await;
    let (status, _, v) = post(
        &format!("{}/openai/chat/completions", gw.url),
        &json!({"model": "anthropic/claude-sonnet-4-5", "max_tokens": 9,
            "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "hi");
    let sent = mock
        .captured()
        .into_iter()
        .find(|c| c.path == "/v1/messages")
        .unwrap();
    assert_eq!(sent.body["system"], "sys");
    assert_eq!(sent.body["max_tokens"], 9);
}

#[tokio::test]
async fn azure_deployment_route_uses_the_deployment() {
    let (mock, gw) = setup().await;
    let (status, _, v) = post(
        &format!(
            "{}/openai/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
            gw.url
        ),
        &json!({"messages": [{"role": "user", "content": "azure"}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["extra_fields"]["provider"], "azure");
    let sent = mock.captured();
    assert!(
        sent.iter()
            .any(|c| c.path == "/openai/deployments/prod-4o/chat/completions"),
        "{:?}",
        sent.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn errors_are_openai_shaped_and_streams_end_without_done() {
    let (_mock, gw) = setup().await;
    let url = format!("{}/openai/chat/completions", gw.url);
    let mut body = chat_body("anthropic/claude-sonnet-4-5", "x");
    body["seed"] = json!(1);
    let (status, _, v) = post(&url, &body).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(
        v,
        json!({"error": {"message": v["error"]["message"], "type": "invalid_request_error",
            "param": "seed", "code": "unsupported_parameter"}})
    );
    let (status, _, v) = post(&url, &json!({"messages": []})).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["param"], "model");

    for model in ["gpt-4o-mini", "anthropic/claude-sonnet-4-5"] {
        let mut body = chat_body(model, "a b c d e f");
        body["stream"] = json!(true);
        body["mock"] = json!({"cut_after": 3, "chunks": 6});
        let resp = client().post(&url).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let events = sse_events(resp).await;
        let last: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert!(last["error"]["message"].is_string(), "{model}: {events:?}");
        assert!(
            last.get("status_code").is_none(),
            "OpenAI's shape, not Bifrost's"
        );
        assert!(events.iter().all(|e| e != "[DONE]"));
    }
    let mut body = json!({"model": "gpt-4o-mini", "input": "x", "stream": true});
    let (status, _, v) = post(&format!("{}/openai/v1/embeddings", gw.url), &body).await;
    assert_eq!(status, 400, "{v}");
    body["stream"] = json!(false);
    let (status, _, _) = post(&format!("{}/openai/v1/embeddings", gw.url), &body).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn models_and_model_lookup() {
    let (_mock, gw) = setup().await;
    let v: Value = client()
        .get(format!("{}/openai/v1/models", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let resp = client()
        .get(format!("{}/openai/v1/models/gpt-4o-mini", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .get(format!("{}/openai/models/nope/nope", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
}
