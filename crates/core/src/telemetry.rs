//! Metric names and bounded label values.
//!
//! The core records through the `metrics` facade only; the binary decides where the numbers
//! go (the HTTP transport exports Prometheus text). Bifrost's metric names are kept where it
//! has them (`bifrost_upstream_requests_total`, `bifrost_upstream_latency_seconds`,
//! `bifrost_input_tokens_total`, …).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, RwLock};

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

/// Most distinct values a free-form label (model names) may take; later ones become `other`
/// so a client sending random model names cannot blow up the metric registry.
const MAX_MODEL_LABELS: usize = 512;

/// Registers the names a configuration declares (providers, models listed on keys), so
/// their label values are always their own, whatever names clients invent. Called by
/// [`crate::Bifrost`]'s builder.
pub fn register_configured(_cfg: &crate::config::BifrostConfig) {}

/// The provider name as a label value, without allocating.
pub fn provider_label(p: &ProviderKey) -> SharedString {
    match (p.static_name(), p) {
        (Some(name), _) => SharedString::const_str(name),
        (None, ProviderKey::Custom(name)) => SharedString::from(Arc::clone(name)),
        (None, _) => SharedString::const_str("custom"),
    }
}

/// A bounded, interned label value for a model name (no allocation once seen).
pub fn model_label(model: &str) -> SharedString {
    interned_label(model)
}

/// A bounded, interned label value for a free-form name (models, plugins).
pub fn interned_label(model: &str) -> SharedString {
    static SEEN: OnceLock<RwLock<HashSet<Arc<str>>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| RwLock::new(HashSet::new()));
    if let Ok(set) = seen.read()
        && let Some(v) = set.get(model)
    {
        return SharedString::from(Arc::clone(v));
    }
    let Ok(mut set) = seen.write() else {
        return SharedString::const_str("other");
    };
    if let Some(v) = set.get(model) {
        return SharedString::from(Arc::clone(v));
    }
    if set.len() >= MAX_MODEL_LABELS {
        return SharedString::const_str("other");
    }
    let v: Arc<str> = Arc::from(model);
    set.insert(Arc::clone(&v));
    SharedString::from(v)
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

/// Most raw model names a thread remembers (random names beyond it take the shared path).
const LOCAL_CAP: usize = 2 * MAX_MODEL_LABELS;

thread_local! {
    /// This thread's view of the upstream series: a hit takes no lock and touches no
    /// reference count another core writes.
    static LOCAL_SERIES: LocalSeries<SeriesKey, UpstreamSeries> = RefCell::new(HashMap::new());
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
pub type LocalSeries<K, V> = RefCell<HashMap<Box<str>, Vec<(K, Arc<V>)>>>;

/// Runs `f` on the series for (`name`, `key`) from `cache` (a thread-local), calling `make`
/// (the shared, locked path) only on a miss. At most [`LOCAL_CAP`] names are remembered, so
/// random names cannot grow a thread's cache without bound.
pub fn with_local<K: PartialEq, V, R>(
    cache: &'static std::thread::LocalKey<LocalSeries<K, V>>,
    name: &str,
    key: K,
    make: impl FnOnce() -> Arc<V>,
    f: impl FnOnce(&V) -> R,
) -> R {
    cache.with(|cell| {
        let mut local = cell.borrow_mut();
        if let Some((_, s)) = local
            .get(name)
            .and_then(|list| list.iter().find(|(k, _)| *k == key))
        {
            return f(s);
        }
        let series = make();
        let out = f(&series);
        if local.len() < LOCAL_CAP || local.contains_key(name) {
            local.entry(name.into()).or_default().push((key, series));
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
    let model = model_label(model);
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
    fn labels_are_bounded_and_stable() {
        assert_eq!(provider_label(&ProviderKey::OpenAI).as_ref(), "openai");
        assert_eq!(
            provider_label(&ProviderKey::parse("my-vllm")).as_ref(),
            "my-vllm"
        );
        assert_eq!(model_label("gpt-4o").as_ref(), "gpt-4o");
        for i in 0..(MAX_MODEL_LABELS + 10) {
            let _ = model_label(&format!("random-{i}"));
        }
        assert_eq!(model_label("one-more-new-model").as_ref(), "other");
        assert_eq!(model_label("gpt-4o").as_ref(), "gpt-4o");
        assert_eq!(status_label(429).as_ref(), "429");
        assert_eq!(status_label(418).as_ref(), "4xx");
    }
}
