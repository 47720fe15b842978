//! Bifrost's mocker plugin: answers matching requests with canned responses, errors or delays
//! instead of calling the provider.
//!
//! It exists so that clients, fallbacks and dashboards can be exercised without spending
//! tokens or waiting on a real provider, and so that failures (rate limits, outages, slow
//! answers) can be simulated on demand. The config block is Bifrost's own (see the crate's
//! README), so a Bifrost `config.json` mocker entry loads unchanged.
//!
//! ```
//! # use bifrost_plugin_mocker::MockerPlugin;
//! let plugin = MockerPlugin::from_config(&serde_json::json!({
//!     "enabled": true,
//!     "rules": [{
//!         "name": "echo",
//!         "conditions": {"providers": ["mock"]},
//!         "responses": [{"type": "success", "content": {"message": "{{input}}"}}]
//!     }]
//! }))?;
//! assert_eq!(plugin.stats(), vec![("echo".to_owned(), 0)]);
//! # Ok::<(), bifrost_plugin_mocker::MockerConfigError>(())
//! ```

mod config;
mod matching;
mod respond;

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bifrost_core::schemas::BifrostRequest;
use bifrost_core::{
    Plugin, PluginFactory, PluginInitError, PluginNeeds, PreHookOutcome, RequestContext,
};
use serde_json::Value;
use tokio::time::Instant;

pub use config::MockerConfigError;
use config::{Action, Compiled, DefaultBehavior, Latency};
use matching::Facts;
use respond::{ErrorContent, SuccessContent};

/// The name the plugin registers under, as in Bifrost's `plugins` list and `-plugins` flag.
pub const PLUGIN_NAME: &str = "mocker";

/// Builds the mocker from its `plugins[]` block; registered under [`PLUGIN_NAME`].
#[derive(Debug, Clone, Copy, Default)]
pub struct MockerFactory;

impl PluginFactory for MockerFactory {
    fn name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn build(&self, config: &Value) -> Result<std::sync::Arc<dyn Plugin>, PluginInitError> {
        MockerPlugin::from_config(config)
            .map(|p| std::sync::Arc::new(p) as std::sync::Arc<dyn Plugin>)
            .map_err(|e| PluginInitError {
                name: PLUGIN_NAME.to_owned(),
                message: e.to_string(),
            })
    }
}

/// Put this in [`RequestContext::extensions`] to let one request bypass the mocker (Bifrost's
/// `skip-mocker` context key), e.g. for a health check that must reach the real provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkipMocker;

/// Totals across all rules, for dashboards and tests that need more than per-rule hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockerCounters {
    /// Success responses returned (rules and `default_behavior: "success"`).
    pub responses_generated: u64,
    /// Error responses returned (rules and `default_behavior: "error"`).
    pub errors_generated: u64,
    /// Requests a rule fired on but let through (delay-only rules, `passthrough` responses).
    pub passed_through: u64,
    /// Requests answered by `default_behavior` because no rule fired.
    pub default_answers: u64,
}

/// The mocker plugin. Build it with [`MockerPlugin::from_config`] from the `config` object of
/// a `plugins` entry; it is cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MockerPlugin {
    compiled: Compiled,
    responses_generated: AtomicU64,
    errors_generated: AtomicU64,
    passed_through: AtomicU64,
    default_answers: AtomicU64,
}

impl MockerPlugin {
    /// Builds the plugin from Bifrost's mocker config block, compiling regexes and globs once
    /// so the request path only matches. `null` is accepted and means a disabled plugin.
    ///
    /// # Errors
    /// [`MockerConfigError`] naming the first invalid field, e.g.
    /// `rules[0].conditions.message_regex` for a regex that does not compile.
    pub fn from_config(config: &Value) -> Result<Self, MockerConfigError> {
        let compiled = config::compile(config)?;
        tracing::debug!(
            enabled = compiled.enabled,
            rules = compiled.rules.len(),
            "mocker plugin configured"
        );
        Ok(Self {
            compiled,
            responses_generated: AtomicU64::new(0),
            errors_generated: AtomicU64::new(0),
            passed_through: AtomicU64::new(0),
            default_answers: AtomicU64::new(0),
        })
    }

    /// Whether the plugin mocks anything at all (`enabled` in the config).
    pub fn is_enabled(&self) -> bool {
        self.compiled.enabled
    }

    /// How many requests each rule fired on, by rule name, in evaluation (priority) order, so
    /// a test or dashboard can check which rules are live.
    pub fn stats(&self) -> Vec<(String, u64)> {
        self.compiled
            .rules
            .iter()
            .map(|r| (r.name.clone(), r.hits.load(Ordering::Relaxed)))
            .collect()
    }

    /// Totals across all rules and the default behaviour.
    pub fn counters(&self) -> MockerCounters {
        MockerCounters {
            responses_generated: self.responses_generated.load(Ordering::Relaxed),
            errors_generated: self.errors_generated.load(Ordering::Relaxed),
            passed_through: self.passed_through.load(Ordering::Relaxed),
            default_answers: self.default_answers.load(Ordering::Relaxed),
        }
    }

    /// Decides and produces the outcome for one request.
    async fn decide(&self, req: &BifrostRequest) -> PreHookOutcome {
        let mut facts = Facts::new(req);
        for rule in &self.compiled.rules {
            if !rule.enabled || !rule.conditions.matches(&mut facts) || !rule.fires() {
                continue;
            }
            let started = Instant::now();
            rule.hits.fetch_add(1, Ordering::Relaxed);
            let action = rule.pick();
            tracing::debug!(
                rule = %rule.name,
                provider = %req.provider,
                model = %req.model,
                "mocker rule fired"
            );
            if let Some(latency) = rule.latency.or(self.compiled.global_latency) {
                sleep(latency).await;
            }
            return match action {
                Some(Action::Success(c)) => self.succeed(req, c, started),
                Some(Action::Error(c)) => self.fail(req, c),
                Some(Action::Passthrough) | None => {
                    self.passed_through.fetch_add(1, Ordering::Relaxed);
                    PreHookOutcome::Continue
                }
            };
        }
        match self.compiled.default_behavior {
            DefaultBehavior::Passthrough => PreHookOutcome::Continue,
            DefaultBehavior::Success => {
                self.default_answers.fetch_add(1, Ordering::Relaxed);
                self.succeed(req, &respond::default_success(), Instant::now())
            }
            DefaultBehavior::Error => {
                self.default_answers.fetch_add(1, Ordering::Relaxed);
                self.fail(req, &respond::default_error())
            }
        }
    }

    fn succeed(
        &self,
        req: &BifrostRequest,
        content: &SuccessContent,
        started: Instant,
    ) -> PreHookOutcome {
        self.responses_generated.fetch_add(1, Ordering::Relaxed);
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        PreHookOutcome::Respond(respond::success(req, content, ms))
    }

    fn fail(&self, req: &BifrostRequest, content: &ErrorContent) -> PreHookOutcome {
        self.errors_generated.fetch_add(1, Ordering::Relaxed);
        PreHookOutcome::Fail(respond::error(req, content))
    }
}

async fn sleep(latency: Latency) {
    let d = latency.sample();
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

#[async_trait]
impl Plugin for MockerPlugin {
    /// The mocker answers in `pre_hook` and reads nothing of real answers or headers, so it
    /// keeps the relay fast path on for the requests it lets through.
    fn needs(&self) -> PluginNeeds {
        PluginNeeds::OBSERVE
    }

    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    async fn pre_hook(&self, ctx: &mut RequestContext, req: &mut BifrostRequest) -> PreHookOutcome {
        if !self.compiled.enabled || ctx.extensions.get::<SkipMocker>().is_some() {
            return PreHookOutcome::Continue;
        }
        self.decide(req).await
    }
}

#[cfg(test)]
mod tests;
