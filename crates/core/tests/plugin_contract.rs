//! The widened plugin contract against the mock upstream: declared needs keep or switch off
//! the relay fast path, the engine names the key it used, and a plugin calls back into the
//! engine through its handle (the shape of an MCP agent loop).

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod support;

use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bifrost_core::{EngineHandle, Plugin, PluginNeeds, PreHookOutcome};
use support::*;

fn config(url: &str) -> Value {
    json!({"providers": {"openai": {
        "keys": [{"value": "sk-test", "id": "team-key"}],
        "network_config": {"base_url": url}
    }}})
}

fn with_plugin(url: &str, plugin: Arc<dyn Plugin>) -> Bifrost {
    let cfg = BifrostConfig::from_json(&config(url).to_string()).unwrap();
    Bifrost::builder(cfg).plugin(plugin).build().unwrap()
}

/// Records what post-hooks see; needs only what it is told to declare.
struct Observer {
    needs: PluginNeeds,
    seen: Mutex<Vec<(Option<String>, Option<u64>)>>,
}

#[async_trait]
impl Plugin for Observer {
    fn name(&self) -> &str {
        "observer"
    }

    fn needs(&self) -> PluginNeeds {
        self.needs
    }

    async fn post_hook(
        &self,
        ctx: &mut RequestContext,
        result: &mut Result<BifrostResponse, BifrostError>,
    ) {
        let tokens = result
            .as_ref()
            .ok()
            .and_then(|r| r.usage.as_ref())
            .map(|u| u.total_tokens);
        self.seen
            .lock()
            .unwrap()
            .push((ctx.key_id.as_deref().map(str::to_owned), tokens));
    }
}

#[tokio::test]
async fn an_observe_only_plugin_keeps_the_relay_and_sees_usage_and_key() {
    let mock = capturing_mock().await;
    for (needs, relayed) in [(PluginNeeds::OBSERVE, true), (PluginNeeds::ALL, false)] {
        let observer = Arc::new(Observer {
            needs,
            seen: Mutex::new(Vec::new()),
        });
        let b = with_plugin(&mock.url(), observer.clone());
        assert_eq!(b.plugin_needs(), needs);
        let ctx = &mut RequestContext {
            wire_body: true,
            ..RequestContext::default()
        };
        let resp = b
            .chat_completion(ctx, chat(ProviderKey::OpenAI, "gpt-4o-mini", "hello"))
            .await
            .unwrap();
        assert_eq!(resp.wire_body.is_some(), relayed, "{needs:?}");
        let seen = observer.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0.as_deref(), Some("team-key"));
        assert!(
            seen[0].1.is_some_and(|t| t > 0),
            "usage is parsed either way"
        );
    }
}

/// Answers `agent` requests by asking the engine for `gpt-4o-mini` and prefixing the answer.
#[derive(Default)]
struct Agent {
    engine: OnceLock<EngineHandle>,
}

#[async_trait]
impl Plugin for Agent {
    fn name(&self) -> &str {
        "agent"
    }

    fn attach(&self, engine: EngineHandle) {
        let _ = self.engine.set(engine);
    }

    async fn pre_hook(
        &self,
        _ctx: &mut RequestContext,
        req: &mut BifrostRequest,
    ) -> PreHookOutcome {
        if req.model != "agent" {
            return PreHookOutcome::Continue;
        }
        let Some(engine) = self.engine.get().and_then(EngineHandle::engine) else {
            return PreHookOutcome::Fail(BifrostError::gateway(500, "internal", "engine gone"));
        };
        let mut inner = req.clone();
        inner.model = "gpt-4o-mini".into();
        let mut ctx = RequestContext::new("inner");
        match engine.chat_completion(&mut ctx, inner).await {
            Ok(r) => PreHookOutcome::Respond(response_with_text(
                &r,
                &format!("agent: {}", r.first_text().unwrap_or_default()),
            )),
            Err(e) => PreHookOutcome::Fail(e),
        }
    }
}

fn response_with_text(template: &BifrostResponse, text: &str) -> BifrostResponse {
    let mut v = serde_json::to_value(template).unwrap();
    v["choices"][0]["message"]["content"] = json!(text);
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_plugin_calls_back_into_the_engine_through_its_handle() {
    let mock = capturing_mock().await;
    let agent = Arc::new(Agent::default());
    let b = with_plugin(&mock.url(), agent.clone());
    let resp = b
        .chat_completion(
            &mut RequestContext::default(),
            chat(ProviderKey::OpenAI, "agent", "hello"),
        )
        .await
        .unwrap();
    assert_eq!(resp.first_text().as_deref(), Some("agent: hello"));
    assert_eq!(mock.last_request().unwrap().body["model"], "gpt-4o-mini");
    // The handle is weak: a plugin holding it does not keep a dropped engine alive.
    drop(b);
    assert!(agent.engine.get().unwrap().engine().is_none());
}
