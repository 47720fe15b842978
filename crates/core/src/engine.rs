//! The dispatch engine: plugins, per-provider queues, key choice, retries and fallbacks.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use tokio::sync::OwnedSemaphorePermit;

use crate::config::{BifrostConfig, NetworkConfig, ResolvedKey};
use crate::keys::{select_key, select_key_except};
use crate::plugin::{EngineHandle, Plugin, PluginNeeds, Plugins, PreHookOutcome, RequestContext};
use crate::providers::native::NativeRequest;
use crate::providers::{
    CallOptions, Provider, ProviderImpl, ResponseStream, SetupError, TokenCount,
};
use crate::queue::ProviderQueue;
use crate::retry::{backoff, jitter};
use crate::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ChatMessage, Choice, ModelList, ProviderKey,
    RequestInput, RequestType, Role, Usage,
};
use crate::telemetry::{self, model_label, provider_label, status_label};
use metrics::{Label, SharedString};

/// A provider that could not be set up at startup.
#[derive(Debug, thiserror::Error)]
#[error("provider {provider}: {message}")]
pub struct InitError {
    /// The provider's name.
    pub provider: String,
    /// What went wrong (never a secret).
    pub message: String,
}

/// The gateway core: cheap to clone, safe to share across tasks.
#[derive(Clone)]
pub struct Bifrost {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    providers: HashMap<ProviderKey, Arc<ProviderState>>,
    /// Providers named in the config that this build cannot serve yet.
    unsupported: HashMap<ProviderKey, String>,
    plugins: Plugins,
    /// What the plugins need together.
    needs: PluginNeeds,
    /// Each plugin's (pre_hook, post_hook) duration histogram, registered once: a labelled
    /// lookup in the recorder on every hook call cost microseconds per request.
    hook_timers: Arc<[HookTimers]>,
    /// The config's `client` block, for the transports' own settings.
    client: crate::config::ClientConfig,
}

struct ProviderState {
    key: ProviderKey,
    /// The built-in provider whose wire format `key` speaks (itself, or a custom provider's
    /// `base_provider_type`).
    base: ProviderKey,
    imp: ProviderImpl,
    keys: Vec<ResolvedKey>,
    /// Variables named by keys that were skipped because they are unset (for error messages).
    missing_vars: Vec<String>,
    network: NetworkConfig,
    queue: ProviderQueue,
    send_back_raw_response: bool,
}

/// Builds a [`Bifrost`]: configuration first, then plugins in the order their hooks should run.
pub struct BifrostBuilder {
    config: BifrostConfig,
    plugins: Vec<Arc<dyn Plugin>>,
}

impl BifrostBuilder {
    /// Registers a plugin; pre-hooks run in registration order, post-hooks in reverse.
    pub fn plugin(mut self, plugin: Arc<dyn Plugin>) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Sets up every configured provider. A provider this build does not implement is
    /// skipped with a warning; requests to it fail with a clear error.
    pub fn build(self) -> Result<Bifrost, InitError> {
        telemetry::register_configured(&self.config);
        let client = &self.config.client;
        let mut providers = HashMap::new();
        let mut unsupported = HashMap::new();
        for (name, cfg) in &self.config.providers {
            let key = ProviderKey::parse(name);
            let imp = match ProviderImpl::new(&key, cfg, client.initial_pool_size) {
                Ok(imp) => imp,
                Err(SetupError::Unsupported(message)) => {
                    tracing::warn!(provider = %key, "{message}; requests to it will fail");
                    unsupported.insert(key, message);
                    continue;
                }
                Err(SetupError::Invalid(message)) => {
                    return Err(InitError {
                        provider: name.clone(),
                        message,
                    });
                }
            };
            let mut keys = Vec::new();
            let mut missing_vars = Vec::new();
            for (i, k) in cfg.keys.iter().enumerate() {
                match k.resolve(name, i) {
                    Some(rk) => keys.push(rk),
                    None => {
                        if let Some(var) = k.value.strip_prefix("env.") {
                            missing_vars.push(var.to_owned());
                        }
                    }
                }
            }
            if keys.is_empty() && !key.is_keyless() {
                tracing::warn!(provider = %key, "provider has no usable API keys; its requests will fail");
            }
            let c = cfg.concurrency_and_buffer_size;
            providers.insert(
                key.clone(),
                Arc::new(ProviderState {
                    base: cfg.base_provider(&key),
                    queue: ProviderQueue::new(
                        key.clone(),
                        c.concurrency,
                        c.buffer_size,
                        client.drop_excess_requests,
                    ),
                    key,
                    imp,
                    keys,
                    missing_vars,
                    network: cfg.network_config.clone(),
                    send_back_raw_response: cfg.send_back_raw_response,
                }),
            );
        }
        let needs = self
            .plugins
            .iter()
            .fold(PluginNeeds::OBSERVE, |n, p| n.union(p.needs()));
        let hook_timers = self
            .plugins
            .iter()
            .map(|p| HookTimers::new(p.as_ref()))
            .collect();
        let inner = Arc::new(Inner {
            providers,
            unsupported,
            plugins: self.plugins.into(),
            needs,
            hook_timers,
            client: self.config.client.clone(),
        });
        for p in inner.plugins.iter() {
            p.attach(EngineHandle(Arc::downgrade(&inner)));
        }
        Ok(Bifrost { inner })
    }
}

/// The operations, selecting the provider method.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Chat,
    Text,
    Embedding,
    ChatStream,
}

impl Op {
    fn request_type(self) -> RequestType {
        match self {
            Self::Chat => RequestType::ChatCompletion,
            Self::Text => RequestType::TextCompletion,
            Self::Embedding => RequestType::Embedding,
            Self::ChatStream => RequestType::ChatCompletionStream,
        }
    }
}

/// What one target produced: a whole answer, or a stream with its first chunk in hand.
#[expect(
    clippy::large_enum_variant,
    reason = "moved a few times per request; boxing the answer would cost an allocation each"
)]
enum Outcome {
    Whole(BifrostResponse),
    Stream(StreamStart),
}

/// Starts a stream at `state` and waits for its first chunk (within the stream idle timeout,
/// counted from the response headers), so a failure before anything reached the client can
/// still be retried or fall back.
async fn first_chunk(
    state: &ProviderState,
    req: &BifrostRequest,
    opts: CallOptions<'_>,
) -> Result<StreamStart, BifrostError> {
    let mut s = state.imp.chat_completion_stream(req, opts).await?;
    let idle = state.network.stream_idle_timeout();
    let first = match tokio::time::timeout(idle, s.next()).await {
        // The request reached the upstream: sending it again could bill it twice.
        Err(_) => Err(BifrostError::upstream_broke(format!(
            "{}: no stream chunk within {idle:?} of the response headers",
            state.key
        ))),
        Ok(None) => Err(BifrostError::bad_upstream_response(format!(
            "{}: stream ended without any chunk",
            state.key
        ))),
        Ok(Some(Err(e))) => Err(e),
        Ok(Some(Ok(first))) => Ok(first),
    }?;
    Ok(StreamStart {
        stream: futures::stream::once(async { Ok(first) }).chain(s).boxed(),
        permit: None,
        provider: state.key.clone(),
        model: req.model.clone(),
        idle_timeout: idle,
        ran: 0,
    })
}

impl Bifrost {
    /// Starts building a gateway from `config`.
    pub fn builder(config: BifrostConfig) -> BifrostBuilder {
        BifrostBuilder {
            config,
            plugins: Vec::new(),
        }
    }

    /// The providers that can serve requests.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderKey> {
        self.inner.providers.keys()
    }

    /// The built-in provider whose wire format a configured provider speaks: the name itself,
    /// or a custom provider's `base_provider_type`. Drop-in routes use it to pass a request
    /// through untranslated when the upstream speaks the caller's dialect. `None` when the
    /// provider is not configured (or not in this build).
    pub fn base_provider(&self, provider: &ProviderKey) -> Option<&ProviderKey> {
        self.inner.providers.get(provider).map(|s| &s.base)
    }

    /// The config's `client` block (e.g. `drop_unsupported_params` for the drop-in routes).
    pub fn client_config(&self) -> &crate::config::ClientConfig {
        &self.inner.client
    }

    /// What the registered plugins need together (e.g. whether transports must keep the
    /// inbound headers for them).
    pub fn plugin_needs(&self) -> PluginNeeds {
        self.inner.needs
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The registered plugins, in order.
    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.inner.plugins
    }

    /// Chat completion with plugins, retries and fallbacks. `ctx` tells afterwards how many
    /// retries were spent and which fallback answered.
    pub fn chat_completion<'a>(
        &'a self,
        ctx: &'a mut RequestContext,
        req: BifrostRequest,
    ) -> impl Future<Output = Result<BifrostResponse, BifrostError>> + Send + 'a {
        self.handle(ctx, req, Op::Chat)
    }

    /// Text completion with plugins, retries and fallbacks.
    pub fn text_completion<'a>(
        &'a self,
        ctx: &'a mut RequestContext,
        req: BifrostRequest,
    ) -> impl Future<Output = Result<BifrostResponse, BifrostError>> + Send + 'a {
        self.handle(ctx, req, Op::Text)
    }

    /// Embeddings with plugins, retries and fallbacks.
    pub fn embedding<'a>(
        &'a self,
        ctx: &'a mut RequestContext,
        req: BifrostRequest,
    ) -> impl Future<Output = Result<BifrostResponse, BifrostError>> + Send + 'a {
        self.handle(ctx, req, Op::Embedding)
    }

    /// Streaming chat completion.
    ///
    /// Retries and fallbacks apply until the first chunk has arrived; the engine waits for
    /// that chunk before returning, so nothing has reached the client yet. After it, a
    /// failure ends the stream with an `Err` item. On success the stream takes `ctx` over
    /// (see [`BifrostStream::context`]); on error `ctx` stays with the caller.
    pub async fn chat_completion_stream(
        &self,
        ctx: &mut RequestContext,
        req: BifrostRequest,
    ) -> Result<BifrostStream, BifrostError> {
        validate(&req)?;
        match Box::pin(self.handle_full(ctx, req, Op::ChatStream)).await? {
            Outcome::Stream(s) => Ok(self.wrap_stream(ctx, s)),
            Outcome::Whole(_) => Err(mismatch()),
        }
    }

    /// Counts a chat request's input tokens at its provider (Anthropic's `count_tokens`,
    /// Gemini's `:countTokens`).
    ///
    /// One attempt at the primary target: no plugins (there is no answer to mock or log),
    /// no retries or fallbacks (a count from another provider would be a different count).
    pub async fn count_tokens(
        &self,
        ctx: &mut RequestContext,
        req: BifrostRequest,
    ) -> Result<TokenCount, BifrostError> {
        validate(&req)?;
        let state = self.state(&req.provider)?;
        let key = state.pick_key(&req.model, None)?;
        let _permit = state.queue.acquire(state.network.request_timeout()).await?;
        let opts = state.call_options(ctx, key);
        let started = Instant::now();
        let result = Box::pin(state.imp.count_tokens(&req, opts)).await;
        ctx.upstream_time += started.elapsed();
        result.map_err(|e| e.with_origin(&state.key, &req.model))
    }

    /// Lists models of every configured provider (ids as `provider/model`); a provider that
    /// fails is left out and logged.
    pub async fn list_models(&self, ctx: &RequestContext) -> ModelList {
        let calls = self.inner.providers.values().map(|p| async move {
            let opts = CallOptions {
                key: select_key(&p.keys, ""),
                extra_headers: &ctx.extra_headers,
                raw_response: false,
                wire_body: false,
                timeout: p.network.request_timeout(),
                native: None,
            };
            (p.key.clone(), p.imp.list_models(opts).await)
        });
        let mut out = ModelList {
            object: "list".into(),
            data: Vec::new(),
        };
        for (provider, res) in futures::future::join_all(calls).await {
            match res {
                Ok(list) => out.data.extend(list.data),
                Err(e) => tracing::warn!(%provider, error = %e, "listing models failed"),
            }
        }
        out.data.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Runs every plugin's `cleanup`, in reverse order.
    pub async fn shutdown(&self) {
        for p in self.inner.plugins.iter().rev() {
            p.cleanup().await;
        }
    }

    /// Returned as is by the public entry points (an `async fn` wrapper would be one more
    /// level that copies the whole future on every request).
    async fn handle(
        &self,
        ctx: &mut RequestContext,
        req: BifrostRequest,
        op: Op,
    ) -> Result<BifrostResponse, BifrostError> {
        validate(&req)?;
        let outcome = if req.fallbacks.is_empty() && self.inner.plugins.is_empty() {
            // The common case, kept small: the fallback loop and the hooks hold several KiB
            // of futures that every level above would otherwise copy on every request.
            self.dispatch(ctx, &req, op).await?
        } else {
            Box::pin(self.handle_full(ctx, req, op)).await?
        };
        match outcome {
            Outcome::Whole(r) => Ok(r),
            Outcome::Stream(_) => Err(mismatch()),
        }
    }

    /// The one fallback loop (streams and whole answers): the primary target, then each
    /// fallback in order while the last error allows falling back.
    async fn handle_full(
        &self,
        ctx: &mut RequestContext,
        mut req: BifrostRequest,
        op: Op,
    ) -> Result<Outcome, BifrostError> {
        let fallbacks = std::mem::take(&mut req.fallbacks);
        let template = (!fallbacks.is_empty()).then(|| req.clone());
        let err = match self.attempt(ctx, req, op).await {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let Some(template) = template.filter(|_| err.fallbacks_allowed()) else {
            return Err(err);
        };
        for (i, fb) in fallbacks.iter().enumerate() {
            let mut r = template.clone();
            r.provider = fb.provider.clone();
            r.model = fb.model.clone();
            ctx.fallback_index = Some(i);
            metrics::counter!(telemetry::FALLBACKS, "provider" => provider_label(&fb.provider))
                .increment(1);
            match self.attempt(ctx, r, op).await {
                Ok(mut out) => {
                    if let Outcome::Whole(resp) = &mut out {
                        resp.extra_fields.fallback_index = Some(i);
                    }
                    return Ok(out);
                }
                Err(e) if !e.fallbacks_allowed() => return Err(e),
                Err(e) => tracing::debug!(fallback = i, error = %e, "fallback failed"),
            }
        }
        ctx.fallback_index = None;
        Err(err)
    }

    /// One target (provider and model), wrapped in the plugin hooks. A stream that started
    /// runs no post-hook here: plugins see its chunks and its end through the stream.
    async fn attempt(
        &self,
        ctx: &mut RequestContext,
        mut req: BifrostRequest,
        op: Op,
    ) -> Result<Outcome, BifrostError> {
        let plugins = &self.inner.plugins;
        if plugins.is_empty() {
            // Without plugins the hook futures are pure overhead: each one is built and moved
            // through this future's state on every request.
            return self.dispatch(ctx, &req, op).await;
        }
        let timers = &self.inner.hook_timers;
        let (ran, short) = run_pre_hooks(plugins, timers, ctx, &mut req).await;
        let stream = op == Op::ChatStream;
        let result =
            match short {
                Some(PreHookOutcome::Respond(r)) if stream => Ok(Outcome::Stream(
                    StreamStart::short(response_to_chunks(r), &req.provider, &req.model),
                )),
                Some(PreHookOutcome::Respond(r)) => Ok(Outcome::Whole(r)),
                Some(PreHookOutcome::Fail(e)) => Err(e),
                Some(PreHookOutcome::Stream(s)) if stream => Ok(Outcome::Stream(
                    StreamStart::short(s, &req.provider, &req.model),
                )),
                Some(PreHookOutcome::Stream(s)) => collect_stream(s).await.map(Outcome::Whole),
                Some(PreHookOutcome::Continue) | None => self.dispatch(ctx, &req, op).await,
            };
        let mut whole = match result {
            Ok(Outcome::Stream(mut s)) => {
                s.ran = ran;
                return Ok(Outcome::Stream(s));
            }
            Ok(Outcome::Whole(r)) => Ok(r),
            Err(e) => Err(e),
        };
        run_post_hooks(&plugins[..ran], &timers[..ran], ctx, &mut whole).await;
        match whole {
            // A post-hook may turn a failed stream start into an answer: stream that.
            Ok(r) if stream => {
                let mut s = StreamStart::short(response_to_chunks(r), &req.provider, &req.model);
                s.ran = ran;
                Ok(Outcome::Stream(s))
            }
            other => other.map(Outcome::Whole),
        }
    }

    fn state(&self, provider: &ProviderKey) -> Result<&Arc<ProviderState>, BifrostError> {
        self.inner.providers.get(provider).ok_or_else(|| {
            if let Some(why) = self.inner.unsupported.get(provider) {
                return BifrostError::gateway(501, "provider_not_supported", why.clone());
            }
            BifrostError::invalid_param(
                "model",
                format!("provider {provider} is not configured (add it under \"providers\" in config.json)"),
            )
        })
    }

    /// The one retry loop (streams and whole answers): per attempt a key (after a 429,
    /// another key that serves the model when there is one), a concurrency slot (given back
    /// before sleeping in backoff), and the provider call; a stream attempt also waits for
    /// the first chunk, so retries stay invisible to the client.
    async fn dispatch(
        &self,
        ctx: &mut RequestContext,
        req: &BifrostRequest,
        op: Op,
    ) -> Result<Outcome, BifrostError> {
        let state = self.state(&req.provider)?;
        let timeout = state.network.request_timeout();
        // Plugins see only ids, usage and finish reasons of a relayed body, so relay only
        // when none of them reads answers' content.
        let wire_body = ctx.wire_body && !self.inner.needs.response_body;
        let started = Instant::now();
        let mut retries = 0;
        let mut rate_limited: Option<&ResolvedKey> = None;
        let result =
            loop {
                let key = state.pick_key(&req.model, rate_limited)?;
                if !self.inner.plugins.is_empty() {
                    // For plugins (request logs); a shared count, so only when someone reads it.
                    ctx.key_id = key.map(|k| Arc::clone(&k.id));
                }
                let permit = state.queue.acquire(timeout).await?;
                let mut opts = state.call_options(ctx, key);
                opts.wire_body = wire_body;
                // Boxed: the provider futures are several KiB, and keeping them out of this
                // future's state saves copying them at every level of the request's call chain.
                let call: Pin<Box<dyn Future<Output = Result<Outcome, BifrostError>> + Send + '_>> =
                    match op {
                        Op::Chat => Box::pin(async move {
                            state
                                .imp
                                .chat_completion(req, opts)
                                .await
                                .map(Outcome::Whole)
                        }),
                        Op::Text => Box::pin(async move {
                            state
                                .imp
                                .text_completion(req, opts)
                                .await
                                .map(Outcome::Whole)
                        }),
                        Op::Embedding => Box::pin(async move {
                            state.imp.embedding(req, opts).await.map(Outcome::Whole)
                        }),
                        Op::ChatStream => Box::pin(async move {
                            first_chunk(state, req, opts).await.map(Outcome::Stream)
                        }),
                    };
                match call.await {
                    Err(e) if state.should_retry(&e, retries) => {
                        drop(permit);
                        retries += 1;
                        if e.status_code == Some(429) {
                            rate_limited = key;
                        }
                        state.sleep_before_retry(&e, retries).await;
                    }
                    Ok(Outcome::Stream(mut s)) => {
                        s.permit = Some(permit);
                        break Ok(Outcome::Stream(s));
                    }
                    other => break other,
                }
            };
        ctx.retries = retries;
        ctx.upstream_time += started.elapsed();
        let method = op.request_type().as_str();
        record_upstream(&state.key, &req.model, method, &result, started);
        match result {
            Ok(Outcome::Whole(mut r)) => {
                let x = &mut r.extra_fields;
                x.provider = Some(state.key.clone());
                x.model_requested = Some(req.model.clone());
                x.request_type = Some(method.to_owned());
                x.latency = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
                x.retries = (retries > 0).then_some(retries);
                Ok(Outcome::Whole(r))
            }
            Ok(Outcome::Stream(s)) => {
                metrics::histogram!(
                    telemetry::STREAM_FIRST_TOKEN,
                    "provider" => provider_label(&state.key),
                    "model" => model_label(&req.model)
                )
                .record(started.elapsed().as_secs_f64());
                Ok(Outcome::Stream(s))
            }
            Err(e) => Err(e.with_origin(&state.key, &req.model)),
        }
    }

    fn wrap_stream(&self, ctx: &mut RequestContext, s: StreamStart) -> BifrostStream {
        metrics::gauge!(telemetry::STREAMS_IN_FLIGHT).increment(1.0);
        BifrostStream {
            gaps: metrics::histogram!(
                telemetry::STREAM_INTER_TOKEN,
                "provider" => provider_label(&s.provider),
                "model" => model_label(&s.model)
            ),
            last_chunk: Instant::now(),
            idle: Box::pin(tokio::time::sleep(s.idle_timeout)),
            inner: s.stream,
            ctx: std::mem::take(ctx),
            plugins: Arc::clone(&self.inner.plugins),
            ran: s.ran,
            _permit: s.permit,
            idle_timeout: s.idle_timeout,
            provider: s.provider,
            model: s.model,
            chunk_index: 0,
            done: false,
        }
    }
}

impl ProviderState {
    /// A key for `model`, other than `avoid` (rate limited on the last try) when another
    /// key serves the model.
    fn pick_key(
        &self,
        model: &str,
        avoid: Option<&ResolvedKey>,
    ) -> Result<Option<&ResolvedKey>, BifrostError> {
        // Keyless providers run without a key unless keys were configured and all of them
        // were skipped (a named variable is unset): then the missing variable is the error.
        if self.key.is_keyless() && self.keys.is_empty() && self.missing_vars.is_empty() {
            return Ok(None);
        }
        if self.keys.is_empty() {
            let hint = if self.missing_vars.is_empty() {
                String::new()
            } else {
                format!(" (set {})", self.missing_vars.join(" or "))
            };
            return Err(BifrostError::gateway(
                500,
                "no_keys",
                format!("no API keys configured for provider {}{hint}", self.key),
            ));
        }
        select_key_except(&self.keys, model, avoid)
            .map(Some)
            .ok_or_else(|| {
                BifrostError::invalid_param(
                    "model",
                    match self.key {
                        ProviderKey::Azure | ProviderKey::Bedrock => format!(
                            "no keys found for provider {} that support model/deployment: {model}",
                            self.key
                        ),
                        _ => format!(
                            "no keys found for provider {} that support model: {model}",
                            self.key
                        ),
                    },
                )
            })
    }

    fn call_options<'a>(
        &'a self,
        ctx: &'a RequestContext,
        key: Option<&'a ResolvedKey>,
    ) -> CallOptions<'a> {
        CallOptions {
            key,
            extra_headers: &ctx.extra_headers,
            raw_response: ctx
                .send_back_raw_response
                .unwrap_or(self.send_back_raw_response),
            wire_body: false,
            timeout: self.network.request_timeout(),
            native: ctx.extensions.get::<Arc<NativeRequest>>().map(|n| &**n),
        }
    }

    fn should_retry(&self, e: &BifrostError, retries: u32) -> bool {
        e.retryable && retries < self.network.max_retries
    }

    async fn sleep_before_retry(&self, e: &BifrostError, attempt: u32) {
        let n = &self.network;
        let delay = backoff(
            attempt,
            n.retry_backoff_initial,
            n.retry_backoff_max,
            e.retry_after,
            jitter(),
        );
        tracing::debug!(provider = %self.key, attempt, ?delay, error = %e, "retrying");
        metrics::counter!(telemetry::RETRIES, "provider" => provider_label(&self.key)).increment(1);
        tokio::time::sleep(delay).await;
    }
}

/// Runs pre-hooks in order until one answers; returns how many ran and the answer.
async fn run_pre_hooks(
    plugins: &[Arc<dyn Plugin>],
    timers: &[HookTimers],
    ctx: &mut RequestContext,
    req: &mut BifrostRequest,
) -> (usize, Option<PreHookOutcome>) {
    for (i, (p, timer)) in plugins.iter().zip(timers).enumerate() {
        let t = Instant::now();
        let outcome = p.pre_hook(ctx, req).await;
        timer.pre.record(t.elapsed().as_secs_f64());
        match outcome {
            PreHookOutcome::Continue => {}
            other => return (i + 1, Some(other)),
        }
    }
    (plugins.len(), None)
}

/// Runs post-hooks in reverse order.
async fn run_post_hooks(
    plugins: &[Arc<dyn Plugin>],
    timers: &[HookTimers],
    ctx: &mut RequestContext,
    result: &mut Result<BifrostResponse, BifrostError>,
) {
    for (p, timer) in plugins.iter().zip(timers).rev() {
        let t = Instant::now();
        p.post_hook(ctx, result).await;
        timer.post.record(t.elapsed().as_secs_f64());
    }
}

/// One plugin's hook duration histograms (`bifrost_plugin_duration_seconds`).
struct HookTimers {
    pre: metrics::Histogram,
    post: metrics::Histogram,
}

impl HookTimers {
    fn new(p: &dyn Plugin) -> Self {
        let hist = |hook: &'static str| {
            metrics::histogram!(
                telemetry::PLUGIN_DURATION,
                "plugin" => telemetry::interned_label(p.name()),
                "hook" => hook
            )
        };
        Self {
            pre: hist("pre_hook"),
            post: hist("post_hook"),
        }
    }
}

/// An outcome of the wrong kind for its operation (a bug, never expected).
fn mismatch() -> BifrostError {
    BifrostError::gateway(
        500,
        "internal_error",
        "the engine produced the wrong kind of answer",
    )
}

/// Rejects requests no provider could serve, before any plugin or provider sees them.
fn validate(req: &BifrostRequest) -> Result<(), BifrostError> {
    if req.model.is_empty() {
        return Err(BifrostError::invalid_param("model", "model is required"));
    }
    if let RequestInput::Chat(m) = &req.input
        && m.is_empty()
    {
        return Err(BifrostError::invalid_param(
            "messages",
            "messages must contain at least one message",
        ));
    }
    Ok(())
}

/// Bifrost's upstream metrics for one request (after its retries), plus token counts.
fn record_upstream(
    provider: &ProviderKey,
    model: &str,
    method: &'static str,
    result: &Result<impl UsageOf, BifrostError>,
    started: Instant,
) {
    let elapsed = started.elapsed().as_secs_f64();
    match result {
        Ok(r) => {
            telemetry::with_upstream_series(provider, model, method, |series| {
                series.requests.increment(1);
                series.success.increment(1);
                series.latency_ok.record(elapsed);
                if let Some(u) = r.usage_of() {
                    series.input_tokens.increment(u.prompt_tokens);
                    series.output_tokens.increment(u.completion_tokens);
                }
            });
        }
        Err(e) => {
            let labels = [
                Label::new("provider", provider_label(provider)),
                Label::new("model", model_label(model)),
                Label::new("method", SharedString::const_str(method)),
                Label::new("status", status_label(e.http_status())),
            ];
            metrics::counter!(telemetry::UPSTREAM_REQUESTS, labels[..3].iter()).increment(1);
            metrics::counter!(telemetry::ERROR_REQUESTS, labels.iter()).increment(1);
            metrics::histogram!(telemetry::UPSTREAM_LATENCY, labels.iter()).record(elapsed);
        }
    }
}

/// Token usage of a result, when it has one (streams report theirs in the last chunk).
trait UsageOf {
    fn usage_of(&self) -> Option<&Usage>;
}

impl UsageOf for BifrostResponse {
    fn usage_of(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }
}

impl UsageOf for Outcome {
    fn usage_of(&self) -> Option<&Usage> {
        match self {
            Self::Whole(r) => r.usage.as_ref(),
            Self::Stream(_) => None,
        }
    }
}

/// Drains a plugin-provided stream into one response (for non-stream requests).
async fn collect_stream(mut s: ResponseStream) -> Result<BifrostResponse, BifrostError> {
    let mut out: Option<BifrostResponse> = None;
    let mut text = String::new();
    let mut finish = None;
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        if let Some(c) = chunk.choices.as_ref().and_then(|c| c.first()) {
            if let Some(t) = c.delta.as_ref().and_then(ChatMessage::text_content) {
                text.push_str(&t);
            }
            finish = c.finish_reason.clone().or(finish);
        }
        let usage = chunk.usage.clone();
        let o = out.get_or_insert(chunk);
        if usage.is_some() {
            o.usage = usage;
        }
    }
    let mut r =
        out.ok_or_else(|| BifrostError::gateway(500, "empty_stream", "plugin stream was empty"))?;
    r.object = "chat.completion".into();
    r.choices = Some(vec![Choice {
        message: Some(ChatMessage::text(Role::Assistant, text)),
        finish_reason: finish,
        ..Choice::default()
    }]);
    Ok(r)
}

/// Turns a whole chat response into stream chunks: role, content, tool calls, finish, usage.
pub fn response_to_chunks(r: BifrostResponse) -> ResponseStream {
    let mut chunks = Vec::new();
    let base = BifrostResponse {
        id: r.id.clone(),
        object: "chat.completion.chunk".into(),
        created: r.created,
        model: r.model.clone(),
        extra_fields: r.extra_fields.clone(),
        ..BifrostResponse::default()
    };
    let chunk = |choice: Choice| BifrostResponse {
        choices: Some(vec![choice]),
        ..base.clone()
    };
    for c in r.choices.into_iter().flatten() {
        let msg = c.message.or(c.delta).unwrap_or_default();
        chunks.push(chunk(Choice {
            index: c.index,
            delta: Some(ChatMessage {
                role: Some(msg.role.unwrap_or(Role::Assistant)),
                content: Some(crate::schemas::MessageContent::Text(String::new())),
                ..ChatMessage::default()
            }),
            ..Choice::default()
        }));
        let text = msg.text_content().or(c.text);
        if text.is_some() || msg.tool_calls.is_some() {
            let tool_calls = msg.tool_calls.map(|calls| {
                calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut tc)| {
                        tc.index = Some(u32::try_from(i).unwrap_or(u32::MAX));
                        tc
                    })
                    .collect()
            });
            chunks.push(chunk(Choice {
                index: c.index,
                delta: Some(ChatMessage {
                    content: text.map(crate::schemas::MessageContent::Text),
                    tool_calls,
                    ..ChatMessage::default()
                }),
                ..Choice::default()
            }));
        }
        chunks.push(chunk(Choice {
            index: c.index,
            delta: Some(ChatMessage::default()),
            finish_reason: Some(c.finish_reason.unwrap_or_else(|| "stop".into())),
            ..Choice::default()
        }));
    }
    if let Some(usage) = r.usage {
        chunks.push(BifrostResponse {
            choices: Some(Vec::new()),
            usage: Some(usage),
            ..base
        });
    }
    futures::stream::iter(chunks.into_iter().map(Ok)).boxed()
}

struct StreamStart {
    stream: ResponseStream,
    permit: Option<OwnedSemaphorePermit>,
    provider: ProviderKey,
    model: String,
    idle_timeout: Duration,
    ran: usize,
}

impl StreamStart {
    /// A stream a plugin answered (no upstream, no slot).
    fn short(stream: ResponseStream, provider: &ProviderKey, model: &str) -> Self {
        Self {
            stream,
            permit: None,
            provider: provider.clone(),
            model: model.to_owned(),
            idle_timeout: Duration::from_secs(60),
            ran: 0,
        }
    }
}

/// A chat stream on its way to the client: runs the per-chunk hooks, enforces the idle
/// timeout, holds the provider's concurrency slot until it ends, and reports the end to
/// plugins exactly once (also when the client goes away and the stream is dropped).
pub struct BifrostStream {
    inner: ResponseStream,
    ctx: RequestContext,
    plugins: Plugins,
    ran: usize,
    _permit: Option<OwnedSemaphorePermit>,
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
    provider: ProviderKey,
    model: String,
    chunk_index: u64,
    done: bool,
    gaps: metrics::Histogram,
    last_chunk: Instant,
}

impl BifrostStream {
    /// The request context (retries, fallback index, plugin state).
    pub fn context(&self) -> &RequestContext {
        &self.ctx
    }

    /// The provider serving the stream.
    pub fn provider(&self) -> &ProviderKey {
        &self.provider
    }

    fn finish(&mut self, error: Option<&BifrostError>) {
        self.done = true;
        metrics::gauge!(telemetry::STREAMS_IN_FLIGHT).decrement(1.0);
        self._permit = None;
        for p in self.plugins[..self.ran].iter().rev() {
            p.on_stream_end(&mut self.ctx, error);
        }
    }
}

impl Stream for BifrostStream {
    type Item = Result<BifrostResponse, BifrostError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(mut chunk))) => {
                chunk.extra_fields.provider = Some(this.provider.clone());
                chunk.extra_fields.chunk_index = Some(this.chunk_index);
                if this.chunk_index > 0 {
                    this.gaps.record(this.last_chunk.elapsed().as_secs_f64());
                }
                this.last_chunk = Instant::now();
                this.chunk_index += 1;
                for p in this.plugins[..this.ran].iter().rev() {
                    p.on_stream_chunk(&mut this.ctx, &mut chunk);
                }
                let deadline = tokio::time::Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = e.with_origin(&this.provider, &this.model);
                this.finish(Some(&e));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.finish(None);
                Poll::Ready(None)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let e = BifrostError::upstream_unreachable(
                        true,
                        format!(
                            "{}: no stream chunk for {:?}",
                            this.provider, this.idle_timeout
                        ),
                    )
                    .with_origin(&this.provider, &this.model);
                    this.finish(Some(&e));
                    Poll::Ready(Some(Err(e)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl Drop for BifrostStream {
    fn drop(&mut self) {
        if !self.done {
            let e = BifrostError::cancelled("client went away before the stream ended");
            self.finish(Some(&e));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::providers::scripted::ScriptedProvider;
    use crate::schemas::{ErrorBody, Fallback};

    type Log = Arc<Mutex<Vec<String>>>;
    type Script = Vec<Result<BifrostResponse, BifrostError>>;

    fn ok(text: &str) -> Result<BifrostResponse, BifrostError> {
        Ok(BifrostResponse {
            id: "r".into(),
            object: "chat.completion".into(),
            choices: Some(vec![Choice {
                message: Some(ChatMessage::text(Role::Assistant, text)),
                finish_reason: Some("stop".into()),
                ..Choice::default()
            }]),
            ..BifrostResponse::default()
        })
    }

    fn status(code: u16) -> Result<BifrostResponse, BifrostError> {
        Err(BifrostError::provider(
            code,
            ErrorBody {
                message: format!("upstream {code}"),
                ..ErrorBody::default()
            },
        ))
    }

    struct Setup {
        providers: Vec<(ProviderKey, Script, u32)>,
        plugins: Vec<Arc<dyn Plugin>>,
    }

    fn build(setup: Setup) -> (Bifrost, Log) {
        let log: Log = Arc::default();
        let mut providers = HashMap::new();
        for (key, script, max_retries) in setup.providers {
            let network = NetworkConfig {
                max_retries,
                retry_backoff_initial: Duration::from_millis(1),
                retry_backoff_max: Duration::from_millis(2),
                ..NetworkConfig::default()
            };
            providers.insert(
                key.clone(),
                Arc::new(ProviderState {
                    base: key.clone(),
                    imp: ProviderImpl::Scripted(ScriptedProvider {
                        name: key.to_string(),
                        script: Mutex::new(script.into()),
                        log: Arc::clone(&log),
                    }),
                    keys: vec![ResolvedKey {
                        id: "k".into(),
                        value: "sk".into(),
                        models: vec![],
                        weight: 1.0,
                        provider_config: Default::default(),
                    }],
                    missing_vars: vec![],
                    network,
                    queue: ProviderQueue::new(key.clone(), 4, 4, false),
                    send_back_raw_response: false,
                    key,
                }),
            );
        }
        let inner = Inner {
            providers,
            unsupported: HashMap::new(),
            needs: setup
                .plugins
                .iter()
                .fold(PluginNeeds::OBSERVE, |n, p| n.union(p.needs())),
            hook_timers: setup
                .plugins
                .iter()
                .map(|p| HookTimers::new(p.as_ref()))
                .collect(),
            plugins: setup.plugins.into(),
            client: crate::config::ClientConfig::default(),
        };
        (
            Bifrost {
                inner: Arc::new(inner),
            },
            log,
        )
    }

    fn request(fallbacks: &[&str]) -> BifrostRequest {
        let mut r = BifrostRequest::chat(
            ProviderKey::OpenAI,
            "m",
            vec![ChatMessage::text(Role::User, "hi")],
        );
        r.fallbacks = fallbacks
            .iter()
            .filter_map(|f| Fallback::parse(f))
            .collect();
        r
    }

    fn calls(log: &Log) -> Vec<String> {
        log.lock().unwrap().clone()
    }

    /// The one provider of `b`, for tests that adjust its keys, queue or backoff.
    fn only_state(b: &mut Bifrost) -> &mut ProviderState {
        let inner = Arc::get_mut(&mut b.inner).unwrap();
        let state = inner.providers.values_mut().next().unwrap();
        Arc::get_mut(state).unwrap()
    }

    #[tokio::test]
    async fn a_retry_after_a_429_uses_another_key() {
        for _ in 0..20 {
            let (mut b, log) = build(Setup {
                providers: vec![(ProviderKey::OpenAI, vec![status(429), ok("hi")], 2)],
                plugins: vec![],
            });
            let state = only_state(&mut b);
            let mut second = state.keys[0].clone();
            second.value = "sk2".into();
            state.keys.push(second);
            let mut ctx = RequestContext::default();
            b.chat_completion(&mut ctx, request(&[])).await.unwrap();
            let c = calls(&log);
            assert_eq!(c.len(), 2);
            assert_ne!(c[0], c[1], "the rate-limited key is not tried again: {c:?}");
        }
    }

    #[tokio::test]
    async fn the_concurrency_slot_is_free_while_a_retry_backs_off() {
        let (mut b, _log) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![status(503), ok("b"), ok("a")], 1)],
            plugins: vec![],
        });
        let state = only_state(&mut b);
        state.queue = ProviderQueue::new(ProviderKey::OpenAI, 1, 4, false);
        state.network.retry_backoff_initial = Duration::from_millis(400);
        state.network.retry_backoff_max = Duration::from_millis(400);
        let started = Instant::now();
        let (b1, b2) = (b.clone(), b.clone());
        let first = tokio::spawn(async move {
            let mut ctx = RequestContext::default();
            let r = b1.chat_completion(&mut ctx, request(&[])).await;
            (r.unwrap().first_text(), started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut ctx = RequestContext::default();
        let second = b2.chat_completion(&mut ctx, request(&[])).await.unwrap();
        let second_done = started.elapsed();
        let (first_text, first_done) = first.await.unwrap();
        assert_eq!(second.first_text().as_deref(), Some("b"));
        assert_eq!(first_text.as_deref(), Some("a"));
        assert!(
            second_done < first_done,
            "the second request ran during the first one's backoff ({second_done:?} vs {first_done:?})"
        );
    }

    #[tokio::test]
    async fn retries_retryable_errors_then_succeeds() {
        let (b, log) = build(Setup {
            providers: vec![(
                ProviderKey::OpenAI,
                vec![status(429), status(503), ok("hi")],
                2,
            )],
            plugins: vec![],
        });
        let mut ctx = RequestContext::default();
        let r = b.chat_completion(&mut ctx, request(&[])).await.unwrap();
        assert_eq!(r.first_text().as_deref(), Some("hi"));
        assert_eq!(ctx.retries, 2);
        assert_eq!(r.extra_fields.retries, Some(2));
        assert_eq!(calls(&log).len(), 3);
    }

    #[tokio::test]
    async fn exhausted_retries_return_the_upstream_status() {
        let (b, log) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![status(429), status(429)], 1)],
            plugins: vec![],
        });
        let err = b
            .chat_completion(&mut RequestContext::default(), request(&[]))
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 429);
        assert_eq!(calls(&log).len(), 2);
    }

    #[tokio::test]
    async fn non_retryable_errors_are_not_retried() {
        let (b, log) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![status(401), ok("never")], 3)],
            plugins: vec![],
        });
        let err = b
            .chat_completion(&mut RequestContext::default(), request(&[]))
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 401);
        assert_eq!(calls(&log).len(), 1);
    }

    #[tokio::test]
    async fn fallbacks_run_in_order_and_say_who_answered() {
        let (b, log) = build(Setup {
            providers: vec![
                (ProviderKey::OpenAI, vec![status(500)], 0),
                (ProviderKey::Anthropic, vec![status(503)], 0),
                (ProviderKey::Groq, vec![ok("from groq")], 0),
            ],
            plugins: vec![],
        });
        let mut ctx = RequestContext::default();
        let r = b
            .chat_completion(
                &mut ctx,
                request(&["anthropic/claude", "groq/llama", "mistral/never"]),
            )
            .await
            .unwrap();
        assert_eq!(
            calls(&log),
            vec!["openai:m:sk", "anthropic:claude:sk", "groq:llama:sk"]
        );
        assert_eq!(r.extra_fields.provider, Some(ProviderKey::Groq));
        assert_eq!(r.extra_fields.fallback_index, Some(1));
        assert_eq!(ctx.fallback_index, Some(1));
    }

    #[tokio::test]
    async fn all_fallbacks_failing_returns_the_primary_error() {
        let (b, _) = build(Setup {
            providers: vec![
                (ProviderKey::OpenAI, vec![status(502)], 0),
                (ProviderKey::Groq, vec![status(503)], 0),
            ],
            plugins: vec![],
        });
        let err = b
            .chat_completion(&mut RequestContext::default(), request(&["groq/x"]))
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 502);
        assert_eq!(
            err.extra_fields.unwrap().provider,
            Some(ProviderKey::OpenAI)
        );
    }

    #[tokio::test]
    async fn client_errors_skip_fallbacks() {
        let (b, log) = build(Setup {
            providers: vec![
                (ProviderKey::OpenAI, vec![]),
                (ProviderKey::Groq, vec![ok("x")]),
            ]
            .into_iter()
            .map(|(k, s)| (k, s, 0))
            .collect(),
            plugins: vec![],
        });
        let mut req = request(&["groq/x"]);
        req.input = RequestInput::Chat(vec![]);
        let err = b
            .chat_completion(&mut RequestContext::default(), req)
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 400);
        assert!(calls(&log).is_empty());
    }

    /// Records hook calls and optionally answers in its pre-hook.
    struct Recorder {
        name: &'static str,
        log: Log,
        answer: Option<&'static str>,
    }

    #[async_trait::async_trait]
    impl Plugin for Recorder {
        fn name(&self) -> &str {
            self.name
        }
        async fn pre_hook(
            &self,
            _ctx: &mut RequestContext,
            req: &mut BifrostRequest,
        ) -> PreHookOutcome {
            self.log.lock().unwrap().push(format!("pre:{}", self.name));
            req.model.push('+');
            match self.answer {
                Some(text) => PreHookOutcome::Respond(ok(text).unwrap()),
                None => PreHookOutcome::Continue,
            }
        }
        async fn post_hook(
            &self,
            _ctx: &mut RequestContext,
            result: &mut Result<BifrostResponse, BifrostError>,
        ) {
            self.log.lock().unwrap().push(format!("post:{}", self.name));
            if self.name == "recover" && result.is_err() {
                *result = ok("recovered");
            }
        }
        fn on_stream_chunk(&self, _ctx: &mut RequestContext, chunk: &mut BifrostResponse) {
            self.log
                .lock()
                .unwrap()
                .push(format!("chunk:{}", self.name));
            chunk.model = format!("{}|{}", chunk.model, self.name);
        }
        fn on_stream_end(&self, _ctx: &mut RequestContext, error: Option<&BifrostError>) {
            self.log
                .lock()
                .unwrap()
                .push(format!("end:{}:{}", self.name, error.is_some()));
        }
    }

    fn recorder(name: &'static str, log: &Log, answer: Option<&'static str>) -> Arc<dyn Plugin> {
        Arc::new(Recorder {
            name,
            log: Arc::clone(log),
            answer,
        })
    }

    #[tokio::test]
    async fn hooks_run_in_order_and_reverse() {
        let hooks: Log = Arc::default();
        let (b, calls_log) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![ok("hi")], 0)],
            plugins: vec![recorder("a", &hooks, None), recorder("b", &hooks, None)],
        });
        b.chat_completion(&mut RequestContext::default(), request(&[]))
            .await
            .unwrap();
        assert_eq!(calls(&hooks), vec!["pre:a", "pre:b", "post:b", "post:a"]);
        assert_eq!(
            calls(&calls_log),
            vec!["openai:m++:sk"],
            "pre-hooks may modify the request"
        );
    }

    #[tokio::test]
    async fn short_circuit_skips_provider_and_later_plugins() {
        let hooks: Log = Arc::default();
        let (b, calls_log) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![ok("upstream")], 0)],
            plugins: vec![
                recorder("a", &hooks, None),
                recorder("b", &hooks, Some("mocked")),
                recorder("c", &hooks, None),
            ],
        });
        let r = b
            .chat_completion(&mut RequestContext::default(), request(&[]))
            .await
            .unwrap();
        assert_eq!(r.first_text().as_deref(), Some("mocked"));
        assert_eq!(calls(&hooks), vec!["pre:a", "pre:b", "post:b", "post:a"]);
        assert!(calls(&calls_log).is_empty());
    }

    #[tokio::test]
    async fn post_hook_can_recover_an_error() {
        let hooks: Log = Arc::default();
        let (b, _) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![status(500)], 0)],
            plugins: vec![recorder("recover", &hooks, None)],
        });
        let r = b
            .chat_completion(&mut RequestContext::default(), request(&[]))
            .await
            .unwrap();
        assert_eq!(r.first_text().as_deref(), Some("recovered"));
    }

    #[tokio::test]
    async fn unconfigured_provider_is_a_client_error_naming_it() {
        let (b, _) = build(Setup {
            providers: vec![],
            plugins: vec![],
        });
        let err = b
            .chat_completion(&mut RequestContext::default(), request(&[]))
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), 400);
        assert!(err.error.message.contains("openai"));
    }

    #[tokio::test]
    async fn stream_hooks_see_every_chunk_and_the_end_once() {
        let hooks: Log = Arc::default();
        let (b, _) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![ok("hello")], 0)],
            plugins: vec![recorder("a", &hooks, None), recorder("b", &hooks, None)],
        });
        let mut ctx = RequestContext::default();
        let s = b
            .chat_completion_stream(&mut ctx, request(&[]))
            .await
            .unwrap();
        let chunks: Vec<_> = s.collect().await;
        assert_eq!(chunks.len(), 3, "role, content, finish");
        let first = chunks[0].as_ref().unwrap();
        assert_eq!(first.model, "|b|a");
        assert_eq!(first.extra_fields.chunk_index, Some(0));
        let h = calls(&hooks);
        assert_eq!(&h[..2], &["pre:a", "pre:b"]);
        assert_eq!(h.iter().filter(|x| x.starts_with("chunk:")).count(), 6);
        assert_eq!(&h[h.len() - 2..], &["end:b:false", "end:a:false"]);
    }

    #[tokio::test]
    async fn stream_falls_back_before_the_first_chunk() {
        let (b, log) = build(Setup {
            providers: vec![
                (ProviderKey::OpenAI, vec![status(503)], 0),
                (ProviderKey::Groq, vec![ok("fb")], 0),
            ],
            plugins: vec![],
        });
        let mut ctx = RequestContext::default();
        let s = b
            .chat_completion_stream(&mut ctx, request(&["groq/x"]))
            .await
            .unwrap();
        assert_eq!(s.provider(), &ProviderKey::Groq);
        assert_eq!(s.context().fallback_index, Some(0));
        let text: String = s
            .filter_map(|c| async move { c.ok()?.first_text() })
            .collect()
            .await;
        assert_eq!(text, "fb");
        assert_eq!(calls(&log).len(), 2);
    }

    #[tokio::test]
    async fn dropped_stream_reports_cancellation_to_plugins() {
        let hooks: Log = Arc::default();
        let (b, _) = build(Setup {
            providers: vec![(ProviderKey::OpenAI, vec![ok("hello")], 0)],
            plugins: vec![recorder("a", &hooks, None)],
        });
        let mut s = b
            .chat_completion_stream(&mut RequestContext::default(), request(&[]))
            .await
            .unwrap();
        let _ = s.next().await;
        drop(s);
        assert_eq!(calls(&hooks).last().map(String::as_str), Some("end:a:true"));
    }
}
