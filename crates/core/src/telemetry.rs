//! Metric names and bounded label values.
//!
//! The core records through the `metrics` facade only; the binary decides where the numbers
//! go (the HTTP transport exports Prometheus text). Bifrost's metric names are kept where it
//! has them (`bifrost_upstream_requests_total`, `bifrost_upstream_latency_seconds`,
//! `bifrost_input_tokens_total`, …).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, RwLock};

use metrics::{Counter, Histogram, Label, SharedString};

use crate::schemas::ProviderKey;

/// Upstream attempts by provider, model, method (counter).
pub const UPSTREAM_REQUESTS: &str = "bifrost_upstream_requests_total";
/// Upstream latency by provider, model, method, status (histogram, seconds).
pub const UPSTREAM_LATENCY: &str = "bifrost_upstream_latency_seconds";
/// Successful requests by provider, model, method (counter).
pub const SUCCESS_REQUESTS: &str = "bifrost_success_requests_total";
/// Failed requests by provider, model, method, status (counter).
pub const ERROR_REQUESTS: &str = "bifrost_error_requests_total";
/// Input tokens by provider, model (counter).
pub const INPUT_TOKENS: &str = "bifrost_input_tokens_total";
/// Output tokens by provider, model (counter).
pub const OUTPUT_TOKENS: &str = "bifrost_output_tokens_total";
/// Retries by provider (counter).
pub const RETRIES: &str = "bifrost_retries_total";
/// Fallbacks taken, by the fallback's provider (counter).
pub const FALLBACKS: &str = "bifrost_fallbacks_total";
/// Requests waiting for a provider slot (gauge).
pub const QUEUE_DEPTH: &str = "bifrost_queue_depth";
/// Time spent waiting for a provider slot (histogram, seconds; only requests that waited).
pub const QUEUE_WAIT: &str = "bifrost_queue_wait_seconds";
/// Requests dropped because a queue was full (counter).
pub const QUEUE_DROPPED: &str = "bifrost_queue_dropped_total";
/// Streams currently open to clients (gauge).
pub const STREAMS_IN_FLIGHT: &str = "bifrost_streams_in_flight";
/// Time from the start of a stream attempt to its first chunk (histogram, seconds).
pub const STREAM_FIRST_TOKEN: &str = "bifrost_stream_first_token_latency_seconds";
/// Gap between two chunks of a stream (histogram, seconds).
pub const STREAM_INTER_TOKEN: &str = "bifrost_stream_inter_token_latency_seconds";
/// Time spent in a plugin hook, by plugin and hook (histogram, seconds).
pub const PLUGIN_DURATION: &str = "bifrost_plugin_duration_seconds";

/// The label value every name past its kind's cap (or unknown to the config) reports under.
pub const OTHER: &str = "other";

/// Model names that get their own label value without being declared in the config (first
/// come, and only once a provider answered them). Declared names never count against it.
pub const MAX_MODEL_LABELS: usize = 128;
/// Custom provider names admitted beyond the configured ones (none can answer today, so
/// this only guards embedders).
pub const MAX_PROVIDER_LABELS: usize = 32;
/// Plugin names admitted beyond the configured ones (plugins registered in code).
pub const MAX_PLUGIN_LABELS: usize = 32;
/// Longest name admitted as its own label value (declared names are exempt); a longer one
/// is `other`, so one request cannot put kilobytes into every scrape.
pub const MAX_NAME_BYTES: usize = 128;

/// A bounded set of label values of one kind (models, providers, plugins, …).
///
/// Names the configuration declares always keep their own value; other names are admitted
/// first come up to `cap`, then they all share [`OTHER`]. Each kind has its own set and cap,
/// so invented model names cannot crowd out routes or plugins. A lookup of a known name
/// takes a read lock and clones an `Arc` (no allocation, no write lock).
pub struct LabelSet {
    cap: usize,
    names: RwLock<Names>,
}

#[derive(Default)]
struct Names {
    known: HashSet<Arc<str>>,
    /// Names in `known` that were admitted rather than declared.
    admitted: usize,
}

impl LabelSet {
    /// An empty set admitting at most `cap` undeclared names.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            names: RwLock::new(Names::default()),
        }
    }

    /// `name`'s own value if it is declared or was admitted, else [`OTHER`]; never adds.
    /// For paths that must not spend the cap (errors: a name no provider accepted).
    pub fn get(&self, name: &str) -> SharedString {
        match self.names.read() {
            Ok(names) => match names.known.get(name) {
                Some(v) => SharedString::from(Arc::clone(v)),
                None => SharedString::const_str(OTHER),
            },
            Err(_) => SharedString::const_str(OTHER),
        }
    }

    /// `name`'s own value, admitting it while the cap has room and it is at most
    /// [`MAX_NAME_BYTES`] long; else [`OTHER`].
    pub fn admit(&self, name: &str) -> SharedString {
        if let Ok(names) = self.names.read() {
            if let Some(v) = names.known.get(name) {
                return SharedString::from(Arc::clone(v));
            }
            // A full set answers `other` without the write lock.
            if names.admitted >= self.cap {
                return SharedString::const_str(OTHER);
            }
        }
        if name.len() > MAX_NAME_BYTES {
            return SharedString::const_str(OTHER);
        }
        let Ok(mut names) = self.names.write() else {
            return SharedString::const_str(OTHER);
        };
        if let Some(v) = names.known.get(name) {
            return SharedString::from(Arc::clone(v));
        }
        if names.admitted >= self.cap {
            return SharedString::const_str(OTHER);
        }
        let v: Arc<str> = Arc::from(name);
        names.known.insert(Arc::clone(&v));
        names.admitted += 1;
        SharedString::from(v)
    }

    /// Gives `name` its own value for good, whatever the cap (a name from the config).
    /// Returns whether it was unknown before.
    pub fn declare(&self, name: &str) -> bool {
        let Ok(mut names) = self.names.write() else {
            return false;
        };
        if names.known.contains(name) {
            return false;
        }
        names.known.insert(Arc::from(name));
        true
    }
}

static MODELS: LazyLock<LabelSet> = LazyLock::new(|| LabelSet::new(MAX_MODEL_LABELS));
static PROVIDERS: LazyLock<LabelSet> = LazyLock::new(|| LabelSet::new(MAX_PROVIDER_LABELS));
static PLUGINS: LazyLock<LabelSet> = LazyLock::new(|| LabelSet::new(MAX_PLUGIN_LABELS));

/// Bumped whenever [`register_configured`] declares a new name, so per-thread caches drop
/// series they resolved to [`OTHER`] before the name was declared.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Registers the names a configuration declares (custom provider names, models listed on
/// keys, deployment names in keys' provider settings such as Azure's `deployments`, plugin
/// names), so their label values are always their own, whatever names clients invent.
/// Called by [`crate::Bifrost`]'s builder; additive and thread-safe, since one process may
/// build several gateways (tests, embedders).
pub fn register_configured(cfg: &crate::config::BifrostConfig) {
    let mut new = false;
    for (name, p) in &cfg.providers {
        if !ProviderKey::parse(name).is_known() {
            new |= PROVIDERS.declare(name);
        }
        for key in &p.keys {
            for model in &key.models {
                new |= MODELS.declare(model);
            }
            for settings in key.provider_config.values() {
                new |= declare_deployments(settings);
            }
        }
        if let Some(meta) = &p.meta_config {
            new |= declare_deployments(meta);
        }
    }
    for plugin in &cfg.plugins {
        new |= PLUGINS.declare(&plugin.name);
    }
    if new {
        GENERATION.fetch_add(1, Ordering::Release);
    }
}

/// Declares the model names of a `deployments` map (`{model: deployment}`) in key settings.
fn declare_deployments(settings: &serde_json::Value) -> bool {
    let Some(deployments) = settings.get("deployments").and_then(|d| d.as_object()) else {
        return false;
    };
    let mut new = false;
    for model in deployments.keys() {
        new |= MODELS.declare(model);
    }
    new
}

/// The provider name as a label value, without allocating: Bifrost's own names, and custom
/// names the config declares; any other name (a fallback a client invented) is [`OTHER`].
pub fn provider_label(p: &ProviderKey) -> SharedString {
    match (p.static_name(), p) {
        (Some(name), _) => SharedString::const_str(name),
        (None, ProviderKey::Custom(name)) => PROVIDERS.get(name),
        (None, _) => SharedString::const_str("custom"),
    }
}

/// A bounded label value for a model name: its own if the config declares it or a provider
/// answered it while the cap had room, else [`OTHER`]. Never admits a name itself, so
/// failed requests for invented names do not use up the cap; the success path
/// ([`with_upstream_series`]) does the admitting.
pub fn model_label(model: &str) -> SharedString {
    MODELS.get(model)
}

/// A bounded label value for a plugin name (its own set and cap; plugin names come from
/// code and config, not from clients).
pub fn interned_label(name: &str) -> SharedString {
    PLUGINS.admit(name)
}

/// The success-path upstream series of one (provider, model, method), registered once and
/// reused: looking a labelled series up in the recorder on every request cost more than the
/// rest of the engine's bookkeeping together.
pub struct UpstreamSeries {
    /// `bifrost_upstream_requests_total`.
    pub requests: Counter,
    /// `bifrost_success_requests_total`.
    pub success: Counter,
    /// `bifrost_input_tokens_total`.
    pub input_tokens: Counter,
    /// `bifrost_output_tokens_total`.
    pub output_tokens: Counter,
    /// `bifrost_upstream_latency_seconds{status="200"}`.
    pub latency_ok: Histogram,
}

type SeriesKey = (ProviderKey, &'static str);

/// Most raw names a thread remembers (random names beyond it take the shared path).
const LOCAL_CAP: usize = 1024;

thread_local! {
    /// This thread's view of the upstream series: a hit takes no lock and touches no
    /// reference count another core writes.
    static LOCAL_SERIES: LocalSeries<SeriesKey, UpstreamSeries> = LocalSeries::new();
}

/// Runs `f` on the upstream series of (provider, model, method), from this thread's cache.
///
/// Per request, the shared cache cost a read lock and a reference count, both atomics that
/// every worker thread writes; with one thread per core those cache lines bounced between
/// cores on every request.
pub fn with_upstream_series<R>(
    provider: &ProviderKey,
    model: &str,
    method: &'static str,
    f: impl FnOnce(&UpstreamSeries) -> R,
) -> R {
    with_local(
        &LOCAL_SERIES,
        model,
        (provider.clone(), method),
        || upstream_series(provider, model, method),
        f,
    )
}

/// A per-thread front for a shared cache of metric series: name → (key, series).
///
/// Flushed when [`register_configured`] declares new names, so a series resolved to
/// [`OTHER`] before does not outlive the declaration.
pub struct LocalSeries<K, V>(RefCell<LocalMap<K, V>>);

struct LocalMap<K, V> {
    generation: u64,
    series: HashMap<Box<str>, Vec<(K, Arc<V>)>>,
}

impl<K, V> LocalSeries<K, V> {
    /// An empty cache (for a `thread_local!`).
    pub fn new() -> Self {
        Self(RefCell::new(LocalMap {
            generation: GENERATION.load(Ordering::Acquire),
            series: HashMap::new(),
        }))
    }
}

impl<K, V> Default for LocalSeries<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

/// Longest raw name a thread's cache keeps (longer ones take the shared path each time), so
/// a few huge invented names cannot pin megabytes per thread.
const LOCAL_NAME_BYTES: usize = 256;

/// Runs `f` on the series for (`name`, `key`) from `cache` (a thread-local), calling `make`
/// (the shared, locked path) only on a miss. At most [`LOCAL_CAP`] names of at most
/// [`LOCAL_NAME_BYTES`] are remembered, so random names cannot grow a thread's cache
/// without bound. A hit takes no lock and allocates nothing.
pub fn with_local<K: PartialEq, V, R>(
    cache: &'static std::thread::LocalKey<LocalSeries<K, V>>,
    name: &str,
    key: K,
    make: impl FnOnce() -> Arc<V>,
    f: impl FnOnce(&V) -> R,
) -> R {
    cache.with(|cell| {
        let mut local = cell.0.borrow_mut();
        let generation = GENERATION.load(Ordering::Acquire);
        if local.generation != generation {
            local.series.clear();
            local.generation = generation;
        }
        if let Some((_, s)) = local
            .series
            .get(name)
            .and_then(|list| list.iter().find(|(k, _)| *k == key))
        {
            return f(s);
        }
        let series = make();
        let out = f(&series);
        if name.len() <= LOCAL_NAME_BYTES
            && (local.series.len() < LOCAL_CAP || local.series.contains_key(name))
        {
            local
                .series
                .entry(name.into())
                .or_default()
                .push((key, series));
        }
        out
    })
}

type SeriesList = Vec<(SeriesKey, Arc<UpstreamSeries>)>;
type SeriesCache = RwLock<HashMap<SharedString, SeriesList>>;

/// The cached series for a successful request (bounded like the labels it carries).
fn upstream_series(
    provider: &ProviderKey,
    model: &str,
    method: &'static str,
) -> Arc<UpstreamSeries> {
    static CACHE: OnceLock<SeriesCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RwLock::new(HashMap::new()));
    // A provider answered: the names earn their own label values while their caps have room.
    let model = MODELS.admit(model);
    if let ProviderKey::Custom(name) = provider {
        let _ = PROVIDERS.admit(name);
    }
    let find = |list: &SeriesList| {
        list.iter()
            .find(|((p, m), _)| p == provider && *m == method)
            .map(|(_, s)| Arc::clone(s))
    };
    if let Ok(map) = cache.read()
        && let Some(s) = map.get(&model).and_then(find)
    {
        return s;
    }
    let series = Arc::new(register_upstream(provider, &model, method));
    if let Ok(mut map) = cache.write() {
        let list = map.entry(model).or_default();
        if let Some(s) = find(list) {
            return s;
        }
        list.push(((provider.clone(), method), Arc::clone(&series)));
    }
    series
}

fn register_upstream(
    provider: &ProviderKey,
    model: &SharedString,
    method: &'static str,
) -> UpstreamSeries {
    let p = provider_label(provider);
    let labels = [
        Label::new("provider", p.clone()),
        Label::new("model", model.clone()),
        Label::new("method", method),
    ];
    let pm = [
        Label::new("provider", p),
        Label::new("model", model.clone()),
    ];
    let mut with_status = labels.to_vec();
    with_status.push(Label::new("status", "200"));
    UpstreamSeries {
        requests: metrics::counter!(UPSTREAM_REQUESTS, labels.iter()),
        success: metrics::counter!(SUCCESS_REQUESTS, labels.iter()),
        input_tokens: metrics::counter!(INPUT_TOKENS, pm.iter()),
        output_tokens: metrics::counter!(OUTPUT_TOKENS, pm.iter()),
        latency_ok: metrics::histogram!(UPSTREAM_LATENCY, with_status.iter()),
    }
}

/// An HTTP status code as a label value without allocating for the usual ones.
pub fn status_label(status: u16) -> SharedString {
    SharedString::const_str(match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        408 => "408",
        413 => "413",
        429 => "429",
        499 => "499",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        s if (200..300).contains(&s) => "2xx",
        s if (400..500).contains(&s) => "4xx",
        _ => "5xx",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_set_admits_up_to_its_cap_and_keeps_declared_names() {
        let set = LabelSet::new(3);
        assert!(set.declare("listed"));
        assert!(!set.declare("listed"));
        assert_eq!(set.get("seen-1").as_ref(), OTHER, "get never admits");
        for i in 0..10 {
            let _ = set.admit(&format!("seen-{i}"));
        }
        assert_eq!(set.get("seen-1").as_ref(), "seen-1");
        assert_eq!(set.admit("seen-2").as_ref(), "seen-2");
        assert_eq!(set.admit("seen-3").as_ref(), OTHER);
        assert_eq!(set.admit(&"x".repeat(MAX_NAME_BYTES + 1)).as_ref(), OTHER);
        assert_eq!(set.get("listed").as_ref(), "listed");
        assert!(set.declare("late"), "declared names ignore the cap");
        assert_eq!(set.admit("late").as_ref(), "late");
        let long = "y".repeat(MAX_NAME_BYTES * 2);
        set.declare(&long);
        assert_eq!(set.get(&long).as_ref(), long);
    }

    #[test]
    fn configured_names_get_their_own_labels_and_invented_ones_do_not() {
        let cfg = crate::config::BifrostConfig::from_json(
            r#"{"providers": {
                "openai": {"keys": [{"value": "k", "models": ["telemetry-test-listed"]}]},
                "azure": {"keys": [{"value": "k", "azure_key_config": {
                    "endpoint": "https://x", "deployments": {"telemetry-test-deployed": "d"}}}]},
                "telemetry-test-vllm": {"custom_provider_config": {"base_provider_type": "openai"},
                    "network_config": {"base_url": "http://127.0.0.1:1"}}
            }, "plugins": [{"name": "telemetry-test-plugin", "enabled": true, "config": {}}]}"#,
        )
        .unwrap();
        let before = GENERATION.load(Ordering::Acquire);
        register_configured(&cfg);
        assert!(GENERATION.load(Ordering::Acquire) > before);
        register_configured(&cfg);
        for model in ["telemetry-test-listed", "telemetry-test-deployed"] {
            assert_eq!(model_label(model).as_ref(), model);
        }
        assert_eq!(model_label("telemetry-test-invented").as_ref(), OTHER);
        assert_eq!(
            provider_label(&ProviderKey::parse("telemetry-test-vllm")).as_ref(),
            "telemetry-test-vllm"
        );
        assert_eq!(
            provider_label(&ProviderKey::parse("telemetry-test-invented")).as_ref(),
            OTHER
        );
        assert_eq!(provider_label(&ProviderKey::OpenAI).as_ref(), "openai");
        assert_eq!(
            interned_label("telemetry-test-plugin").as_ref(),
            "telemetry-test-plugin"
        );
        assert_eq!(status_label(429).as_ref(), "429");
        assert_eq!(status_label(418).as_ref(), "4xx");
    }

    #[test]
    fn a_declaration_flushes_series_a_thread_resolved_to_other() {
        thread_local! {
            static CACHE: LocalSeries<(), SharedString> = LocalSeries::new();
        }
        let name = "telemetry-test-late-model";
        let resolve = || {
            with_local(
                &CACHE,
                name,
                (),
                || Arc::new(model_label(name)),
                Clone::clone,
            )
        };
        assert_eq!(resolve().as_ref(), OTHER);
        assert_eq!(resolve().as_ref(), OTHER, "cached");
        let cfg = crate::config::BifrostConfig::from_json(&format!(
            r#"{{"providers": {{"openai": {{"keys": [{{"value": "k", "models": ["{name}"]}}]}}}}}}"#
        ))
        .unwrap();
        register_configured(&cfg);
        assert_eq!(resolve().as_ref(), name);
    }
}
