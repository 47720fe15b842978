//! The configuration model: Bifrost's `config.json`, loaded with the `config` crate so that
//! `BIFROST_…` environment variables can override file values.
//!
//! Environment overrides use `__` between path segments, e.g.
//! `BIFROST_CLIENT__DROP_EXCESS_REQUESTS=true` or
//! `BIFROST_PROVIDERS__OPENAI__NETWORK_CONFIG__MAX_RETRIES=3`.

mod duration;
mod secrets;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schemas::{KNOWN_PROVIDERS, ProviderKey};

pub use secrets::{ResolvedKey, resolve_env};

/// A configuration problem; the message names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed, or a value has the wrong type.
    #[error("config: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is out of range or unknown.
    #[error("config: {field}: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `providers.openai.concurrency_and_buffer_size.concurrency`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The whole `config.json`.
///
/// Blocks of Bifrost's config this build does not implement are kept as raw JSON so that
/// nothing is dropped silently: a config that relies on access control (`governance`,
/// `client.enforce_governance_header`, an enabled `auth_config`) is refused by
/// [`validate`](Self::validate), since serving it without that control would leave the
/// gateway open; the others load and are listed by [`ignored_blocks`](Self::ignored_blocks)
/// so the binary can warn about them at startup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BifrostConfig {
    /// Gateway-wide settings.
    #[serde(default)]
    pub client: ClientConfig,
    /// Providers by name (`openai`, `anthropic`, …).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Plugins in registration order.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// Bifrost's virtual keys, teams, customers, budgets and rate limits: not implemented in
    /// this build. A non-empty block stops startup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<Value>,
    /// Bifrost's admin/inference authentication: not implemented in this build. An enabled
    /// block (`is_enabled: true`) stops startup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_config: Option<Value>,
    /// MCP client connections (Bifrost's shape); read by the MCP plugin (`bifrost-plugin-mcp`),
    /// which the binaries turn on when the block lists clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<Value>,
    /// Configuration database: not implemented in this build (ignored with a warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_store: Option<Value>,
    /// Bifrost's request-log database block. With `enabled: true` it turns on the `logging`
    /// plugin (see `bifrost_plugin_logging::apply_logs_store`), so it is not ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_store: Option<Value>,
    /// Vector store for semantic caching: not implemented in this build (ignored with a
    /// warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_store: Option<Value>,
    /// The gRPC transport (this build's addition; Bifrost has none). Off unless a port is set
    /// here or with `-grpc-port`.
    #[serde(default)]
    pub grpc: GrpcConfig,
}

/// The `grpc` block: where and how the gRPC transport listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcConfig {
    /// Port for the gRPC listener next to HTTP in `bifrost-http`; `None` (the default) keeps
    /// it off. The `-grpc-port` flag overrides it.
    pub port: Option<u16>,
    /// Largest message accepted or sent, in MiB; a larger one fails with `RESOURCE_EXHAUSTED`
    /// naming this setting.
    pub max_message_size_mb: usize,
    /// Seconds between HTTP/2 keep-alive pings on idle connections (0: no pings), so
    /// proxies and NATs keep long streams open and dead peers are noticed.
    pub keepalive_interval_seconds: u64,
    /// Seconds to wait for a ping's answer before closing the connection.
    pub keepalive_timeout_seconds: u64,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            port: None,
            max_message_size_mb: 16,
            keepalive_interval_seconds: 30,
            keepalive_timeout_seconds: 10,
        }
    }
}

/// The `client` block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientConfig {
    /// Objects pre-allocated per pool in Bifrost; here it sizes the upstream connection pool.
    pub initial_pool_size: usize,
    /// Fail fast with 429 when a provider's queue is full instead of waiting.
    pub drop_excess_requests: bool,
    /// Largest request body accepted, in MiB (Bifrost's default is 100).
    pub max_request_body_size_mb: usize,
    /// CORS origins; `*` allows all. Localhost is always allowed.
    pub allowed_origins: Vec<String>,
    /// Extra Prometheus label names, filled from `x-bf-prom-<label>` headers.
    pub prometheus_labels: Vec<String>,
    /// On the drop-in SDK routes, a parameter the target provider cannot take is dropped and
    /// named in the `x-bifrost-dropped-params` response header instead of failing the request
    /// with a 400 naming it (the default: nothing is ever dropped silently).
    pub drop_unsupported_params: bool,
    /// Bifrost's switch for its governance plugin. Not implemented in this build: `true` is
    /// ignored with a startup warning (without `enforce_governance_header` Bifrost itself lets
    /// requests without a virtual key through).
    pub enable_governance: bool,
    /// Bifrost's "every request needs a virtual key" switch. Not implemented in this build:
    /// `true` stops startup rather than serving requests without the check.
    pub enforce_governance_header: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            initial_pool_size: 300,
            drop_excess_requests: false,
            max_request_body_size_mb: 100,
            allowed_origins: Vec::new(),
            prometheus_labels: Vec::new(),
            drop_unsupported_params: false,
            enable_governance: false,
            enforce_governance_header: false,
        }
    }
}

/// One provider's block.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// API keys, chosen per request by weight among those allowing the model.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Base URL, headers, timeouts and retries.
    #[serde(default)]
    pub network_config: NetworkConfig,
    /// Worker count and queue size.
    #[serde(default)]
    pub concurrency_and_buffer_size: ConcurrencyConfig,
    /// Outbound proxy.
    #[serde(default)]
    pub proxy_config: Option<ProxyConfig>,
    /// Attach the provider's raw body to responses (`extra_fields.raw_response`).
    #[serde(default)]
    pub send_back_raw_response: bool,
    /// Bifrost's older provider-level settings (Azure/Bedrock/Vertex), kept for those providers.
    /// For Azure it is copied into every key that has no `azure_key_config` of its own.
    #[serde(default)]
    pub meta_config: Option<Value>,
    /// Makes this entry a custom provider: any name, speaking a known provider's API
    /// (e.g. a vLLM server under `"my-vllm"` with `base_provider_type: "openai"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_provider_config: Option<CustomProviderConfig>,
}

/// Bifrost's `custom_provider_config`: a provider under a name of the user's choosing that
/// reuses a built-in provider's wire format against its own `network_config.base_url`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustomProviderConfig {
    /// The built-in provider whose API this one speaks (`openai`, `cohere`, `azure`, …).
    pub base_provider_type: String,
    /// The server needs no API key: none is sent even when keys are configured.
    #[serde(default)]
    pub is_key_less: bool,
    /// When present, only the request types set to `true` are allowed
    /// (`chat_completion`, `chat_completion_stream`, `text_completion`, `embedding`,
    /// `list_models`); the others fail with `unsupported_operation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_requests: Option<BTreeMap<String, bool>>,
    /// Paths replacing the base provider's, by request type (same names as above).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub request_path_overrides: BTreeMap<String, String>,
}

impl CustomProviderConfig {
    /// The base provider's key; `None` when the name is not a built-in provider.
    pub fn base(&self) -> Option<ProviderKey> {
        Some(ProviderKey::parse(&self.base_provider_type)).filter(ProviderKey::is_known)
    }

    /// Whether `allowed_requests` lets this request type through (`None` = no restriction).
    pub fn allows(&self, request_type: &str) -> bool {
        self.allowed_requests
            .as_ref()
            .is_none_or(|m| m.get(request_type).copied().unwrap_or(false))
    }
}

impl ProviderConfig {
    /// The built-in provider whose implementation serves `name`: the name itself, or the
    /// `base_provider_type` of a custom provider.
    pub fn base_provider(&self, name: &ProviderKey) -> ProviderKey {
        match (&self.custom_provider_config, name) {
            (Some(c), ProviderKey::Custom(_)) => c.base().unwrap_or_else(|| name.clone()),
            _ => name.clone(),
        }
    }
}

/// One API key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyConfig {
    /// Optional id (used in logs and metrics instead of the secret).
    #[serde(default)]
    pub id: Option<String>,
    /// Optional display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The key, or `env.VAR` to read it from the environment.
    #[serde(default)]
    pub value: String,
    /// Models this key may serve; empty means all.
    #[serde(default)]
    pub models: Vec<String>,
    /// Relative weight for random choice.
    #[serde(default = "one")]
    pub weight: f64,
    /// Provider-specific key settings (`azure_key_config`, `vertex_key_config`, …), kept as JSON.
    #[serde(flatten)]
    pub provider_config: BTreeMap<String, Value>,
}

fn one() -> f64 {
    1.0
}

/// `network_config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// Provider base URL, with or without the version segment (`https://api.openai.com` or `…/v1`).
    pub base_url: Option<String>,
    /// Headers added to every upstream request.
    pub extra_headers: BTreeMap<String, String>,
    /// Whole-request timeout (non-stream) and time-to-first-byte limit (stream).
    pub default_request_timeout_in_seconds: u64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; integer milliseconds or a duration string (`"500ms"`).
    #[serde(with = "duration", alias = "retry_backoff_initial_ms")]
    pub retry_backoff_initial: Duration,
    /// Backoff cap; integer milliseconds or a duration string (`"5s"`).
    #[serde(with = "duration", alias = "retry_backoff_max_ms")]
    pub retry_backoff_max: Duration,
    /// Longest silence allowed between two stream chunks. A stream's body has no total
    /// limit: a reasoning model may stream for minutes as long as chunks keep coming.
    pub stream_idle_timeout_in_seconds: u64,
    /// Longest a new upstream connection may take to establish (TCP, and TLS for HTTPS).
    pub connect_timeout_in_seconds: u64,
    /// An upstream connection unused this long is closed. Shorter than common upstream
    /// keep-alives (nginx 75 s, load balancers 60 s), so the gateway closes first and a
    /// request is not written to a connection the upstream is closing.
    pub idle_connection_timeout_in_seconds: u64,
    /// Largest non-streamed upstream answer read, in MiB; larger ones fail with a 502.
    pub max_response_body_size_mb: usize,
    /// Largest single upstream stream event (one SSE event or one JSON line), in KiB; a larger
    /// one ends the stream with an error event.
    pub max_stream_event_size_kb: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            extra_headers: BTreeMap::new(),
            default_request_timeout_in_seconds: 30,
            max_retries: 0,
            retry_backoff_initial: Duration::from_millis(500),
            retry_backoff_max: Duration::from_secs(5),
            stream_idle_timeout_in_seconds: 60,
            connect_timeout_in_seconds: 10,
            idle_connection_timeout_in_seconds: 30,
            max_response_body_size_mb: 32,
            max_stream_event_size_kb: 1024,
        }
    }
}

impl NetworkConfig {
    /// The request timeout as a `Duration`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.default_request_timeout_in_seconds)
    }
    /// The stream idle timeout as a `Duration`.
    pub fn stream_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.stream_idle_timeout_in_seconds)
    }
    /// The connect timeout as a `Duration`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_in_seconds)
    }
    /// The upstream idle-connection timeout as a `Duration`.
    pub fn idle_connection_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_connection_timeout_in_seconds)
    }
    /// The largest non-streamed answer, in bytes.
    pub fn max_response_body_bytes(&self) -> usize {
        self.max_response_body_size_mb.saturating_mul(1024 * 1024)
    }
    /// The largest single stream event, in bytes.
    pub fn max_stream_event_bytes(&self) -> usize {
        self.max_stream_event_size_kb.saturating_mul(1024)
    }
}

/// `concurrency_and_buffer_size`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct ConcurrencyConfig {
    /// Requests in flight to the provider at once.
    pub concurrency: usize,
    /// Requests allowed to wait for a free slot.
    pub buffer_size: usize,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            concurrency: 1000,
            buffer_size: 5000,
        }
    }
}

/// `proxy_config`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProxyConfig {
    /// `none`, `http`, `socks5` or `environment`.
    #[serde(rename = "type", default)]
    pub kind: ProxyKind,
    /// Proxy URL (for `http` and `socks5`).
    #[serde(default)]
    pub url: Option<String>,
    /// Basic-auth user.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password (may be `env.VAR`).
    #[serde(default)]
    pub password: Option<String>,
}

/// Proxy kinds Bifrost supports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// Direct connections.
    #[default]
    None,
    /// An HTTP(S) proxy.
    Http,
    /// A SOCKS5 proxy.
    Socks5,
    /// `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` from the environment.
    Environment,
}

/// One entry of the top-level `plugins` array.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginConfig {
    /// Plugin name, e.g. `mocker`.
    pub name: String,
    /// Off switch.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Plugin-specific settings.
    #[serde(default)]
    pub config: Value,
}

fn yes() -> bool {
    true
}

impl BifrostConfig {
    /// Loads a `config.json` and applies `BIFROST_…` environment overrides, then validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Json))
            .add_source(env_source())
            .build()?;
        let mut parsed: Self = cfg.try_deserialize()?;
        parsed.apply_meta_config();
        parsed.validate()?;
        Ok(parsed)
    }

    /// Parses configuration from a JSON string (no environment overrides); for tests and embedders.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(json, config::FileFormat::Json))
            .build()?;
        let mut parsed: Self = cfg.try_deserialize()?;
        parsed.apply_meta_config();
        parsed.validate()?;
        Ok(parsed)
    }

    /// A configuration with one provider per `*_API_KEY` variable found in the environment,
    /// for starting without a config file (as Bifrost does).
    pub fn from_env_keys() -> Self {
        let mut cfg = Self::default();
        for p in KNOWN_PROVIDERS {
            if let Some(var) = p.api_key_env()
                && std::env::var_os(var).is_some_and(|v| !v.is_empty())
            {
                cfg.providers.insert(
                    p.as_str().to_owned(),
                    ProviderConfig {
                        keys: vec![KeyConfig {
                            value: format!("env.{var}"),
                            weight: 1.0,
                            ..KeyConfig::default()
                        }],
                        ..ProviderConfig::default()
                    },
                );
            }
        }
        cfg
    }

    /// Moves Bifrost's older provider-level Azure `meta_config` into each key lacking an
    /// `azure_key_config`, so key selection and the provider only know the per-key layout.
    /// [`load`](Self::load) and [`from_json`](Self::from_json) call it; a config built in
    /// code should call it before [`Bifrost::builder`](crate::Bifrost::builder).
    pub fn apply_meta_config(&mut self) {
        for (name, p) in &mut self.providers {
            if p.base_provider(&ProviderKey::parse(name)) != ProviderKey::Azure {
                continue;
            }
            let Some(meta @ Value::Object(_)) = &p.meta_config else {
                continue;
            };
            for k in &mut p.keys {
                k.provider_config
                    .entry(AZURE_KEY_CONFIG.to_owned())
                    .or_insert_with(|| meta.clone());
            }
        }
    }

    /// Blocks of the config this build does not implement and ignores, each with what was
    /// found (e.g. `("vector_store", "the vector store")`), for a startup warning. Blocks that
    /// would change who may call the gateway are not here: [`validate`](Self::validate)
    /// refuses them.
    pub fn ignored_blocks(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        let present = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
        if present(&self.governance) {
            out.push(("governance", "governance (empty block)"));
        }
        if self.client.enable_governance {
            out.push(("client.enable_governance", "the governance plugin"));
        }
        if present(&self.auth_config) {
            out.push(("auth_config", "authentication (block not enabled)"));
        }
        for (name, block, what) in [
            (
                "config_store",
                &self.config_store,
                "the configuration database",
            ),
            (
                "vector_store",
                &self.vector_store,
                "the vector store (semantic cache)",
            ),
        ] {
            if present(block) {
                out.push((name, what));
            }
        }
        out
    }

    /// Refuses configs that rely on access control this build does not implement, naming
    /// the block: serving them would make an open gateway of a closed one.
    fn refuse_unimplemented_access_control(&self) -> Result<(), ConfigError> {
        const NOT_YET: &str = "is not implemented in this build, and serving this config \
                               without it would leave the gateway open to every caller; \
                               remove it to run without access control";
        if self.governance.as_ref().is_some_and(|g| !is_empty_block(g)) {
            return Err(invalid(
                "governance",
                format!("governance (virtual keys, budgets, rate limits) {NOT_YET}"),
            ));
        }
        if self.client.enforce_governance_header {
            return Err(invalid(
                "client.enforce_governance_header",
                format!("governance (required virtual keys) {NOT_YET}"),
            ));
        }
        if self
            .auth_config
            .as_ref()
            .and_then(|a| a.get("is_enabled"))
            .is_some_and(is_truthy)
        {
            return Err(invalid(
                "auth_config",
                format!("authentication (auth_config.is_enabled) {NOT_YET}"),
            ));
        }
        Ok(())
    }

    /// Checks values serde cannot: provider names, ranges and URLs, and refuses blocks this
    /// build cannot honour safely (see [`BifrostConfig`]). Errors name the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.refuse_unimplemented_access_control()?;
        if self.client.max_request_body_size_mb == 0 {
            return Err(invalid(
                "client.max_request_body_size_mb",
                "must be at least 1",
            ));
        }
        for (name, p) in &self.providers {
            let at = format!("providers.{name}");
            validate_provider_kind(name, p, &at)?;
            let c = p.concurrency_and_buffer_size;
            if c.concurrency == 0 {
                return Err(invalid(
                    format!("{at}.concurrency_and_buffer_size.concurrency"),
                    "must be at least 1",
                ));
            }
            let n = &p.network_config;
            if n.default_request_timeout_in_seconds == 0 {
                return Err(invalid(
                    format!("{at}.network_config.default_request_timeout_in_seconds"),
                    "must be at least 1",
                ));
            }
            if n.retry_backoff_initial > n.retry_backoff_max {
                return Err(invalid(
                    format!("{at}.network_config.retry_backoff_initial"),
                    "must not exceed retry_backoff_max",
                ));
            }
            if let Some(url) = &n.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(invalid(
                    format!("{at}.network_config.base_url"),
                    format!("{url:?} must start with http:// or https://"),
                ));
            }
            if let Some(proxy) = &p.proxy_config
                && matches!(proxy.kind, ProxyKind::Http | ProxyKind::Socks5)
                && proxy.url.as_deref().is_none_or(str::is_empty)
            {
                return Err(invalid(
                    format!("{at}.proxy_config.url"),
                    "is required for this proxy type",
                ));
            }
            for (i, k) in p.keys.iter().enumerate() {
                if !(k.weight.is_finite() && k.weight >= 0.0) {
                    return Err(invalid(
                        format!("{at}.keys[{i}].weight"),
                        "must be a non-negative number",
                    ));
                }
                if p.base_provider(&ProviderKey::parse(name)) == ProviderKey::Azure {
                    validate_azure_key(k, &format!("{at}.keys[{i}]"))?;
                }
            }
        }
        Ok(())
    }
}

/// Whether a block configures nothing: null, `false`, `""`, `[]`, `{}`, or an object whose
/// every value is itself empty (e.g. `{"virtual_keys": [], "budgets": []}`).
fn is_empty_block(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty_block),
        Value::Number(_) => false,
    }
}

/// `true`, or a string spelling it (environment overrides arrive as strings).
fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Per-key Azure settings (`keys[].azure_key_config`).
pub const AZURE_KEY_CONFIG: &str = "azure_key_config";

/// Known names are accepted as they are; any other name must be a custom provider with a
/// known `base_provider_type` and (except Azure, whose keys carry endpoints) a `base_url`.
fn validate_provider_kind(name: &str, p: &ProviderConfig, at: &str) -> Result<(), ConfigError> {
    let known = ProviderKey::parse(name).is_known();
    match (&p.custom_provider_config, known) {
        (None, true) => Ok(()),
        (Some(_), true) => Err(invalid(
            format!("{at}.custom_provider_config"),
            format!("{name:?} is a built-in provider; pick another name for a custom provider"),
        )),
        (None, false) if crate::schemas::NOT_IN_THIS_BUILD.contains(&name) => Err(invalid(
            at,
            format!(
                "provider {name:?} is a Bifrost provider this build does not implement yet; \
                 remove it, or reach it through custom_provider_config if it speaks a \
                 supported provider's API"
            ),
        )),
        (None, false) => {
            let known: Vec<&str> = KNOWN_PROVIDERS.iter().map(ProviderKey::as_str).collect();
            Err(invalid(
                at,
                format!(
                    "unknown provider {name:?}; known providers: {} (or add \
                     custom_provider_config.base_provider_type to define a custom provider)",
                    known.join(", ")
                ),
            ))
        }
        (Some(c), false) => {
            let Some(base) = c.base() else {
                return Err(invalid(
                    format!("{at}.custom_provider_config.base_provider_type"),
                    format!(
                        "{:?} is not a built-in provider (e.g. \"openai\")",
                        c.base_provider_type
                    ),
                ));
            };
            if base != ProviderKey::Azure && p.network_config.base_url.is_none() {
                return Err(invalid(
                    format!("{at}.network_config.base_url"),
                    "is required for a custom provider",
                ));
            }
            Ok(())
        }
    }
}

/// An Azure key needs an `endpoint`, either in its own `azure_key_config` or (before
/// [`BifrostConfig::apply_meta_config`]) in the provider's `meta_config`.
fn validate_azure_key(k: &KeyConfig, at: &str) -> Result<(), ConfigError> {
    let endpoint = k
        .provider_config
        .get(AZURE_KEY_CONFIG)
        .and_then(|c| c.get("endpoint"))
        .and_then(Value::as_str);
    if endpoint.is_none_or(str::is_empty) {
        return Err(invalid(
            format!("{at}.{AZURE_KEY_CONFIG}.endpoint"),
            "is required (e.g. \"https://my-resource.openai.azure.com\")",
        ));
    }
    Ok(())
}

fn env_source() -> config::Environment {
    config::Environment::with_prefix("BIFROST")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bifrost_config_with_defaults_and_both_backoff_spellings() {
        let cfg = BifrostConfig::from_json(
            r#"{
            "client": {"drop_excess_requests": true, "initial_pool_size": 50, "enable_logging": true},
            "providers": {
                "openai": {
                    "keys": [{"value": "env.OPENAI_API_KEY", "models": ["gpt-4o-mini"], "weight": 1}],
                    "network_config": {"base_url": "https://api.openai.com/v1", "max_retries": 2,
                        "retry_backoff_initial": "100ms", "retry_backoff_max_ms": 2000},
                    "concurrency_and_buffer_size": {"concurrency": 3, "buffer_size": 10}
                },
                "azure": {"keys": [{"value": "k", "azure_key_config": {"endpoint": "https://x"}}]}
            },
            "plugins": [{"name": "mocker", "config": {"enabled": true}}],
            "mcp": {"client_configs": []}
        }"#,
        )
        .unwrap();
        assert!(cfg.client.drop_excess_requests);
        assert_eq!(cfg.client.max_request_body_size_mb, 100);
        let oa = &cfg.providers["openai"];
        assert_eq!(oa.network_config.max_retries, 2);
        assert_eq!(
            oa.network_config.retry_backoff_initial,
            Duration::from_millis(100)
        );
        assert_eq!(oa.network_config.retry_backoff_max, Duration::from_secs(2));
        assert_eq!(oa.network_config.default_request_timeout_in_seconds, 30);
        assert_eq!(oa.concurrency_and_buffer_size.buffer_size, 10);
        assert!(
            cfg.providers["azure"].keys[0]
                .provider_config
                .contains_key("azure_key_config")
        );
        assert!(cfg.plugins[0].enabled);
    }

    #[test]
    fn errors_name_the_field() {
        let e = BifrostConfig::from_json(r#"{"providers": {"nope": {"keys": []}}}"#).unwrap_err();
        assert!(e.to_string().contains("providers.nope"), "{e}");
        let e = BifrostConfig::from_json(
            r#"{"providers": {"openai": {"concurrency_and_buffer_size": {"concurrency": 0}}}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("concurrency_and_buffer_size.concurrency"),
            "{e}"
        );
        let e = BifrostConfig::from_json(
            r#"{"providers": {"openai": {"network_config": {"max_retries": "lots"}}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("max_retries"), "{e}");
        let e = BifrostConfig::from_json(
            r#"{"providers": {"openai": {"network_config": {"base_url": "ftp://x"}}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("base_url"), "{e}");
    }

    #[test]
    fn custom_providers_need_a_known_base_and_a_base_url() {
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {"my-vllm": {"keys": [],
                "custom_provider_config": {"base_provider_type": "openai",
                    "allowed_requests": {"chat_completion": true}},
                "network_config": {"base_url": "http://localhost:8000"}}}}"#,
        )
        .unwrap();
        let p = &cfg.providers["my-vllm"];
        let c = p.custom_provider_config.as_ref().unwrap();
        assert_eq!(
            p.base_provider(&ProviderKey::parse("my-vllm")),
            ProviderKey::OpenAI
        );
        assert!(c.allows("chat_completion"));
        assert!(!c.allows("embedding"));

        let e = BifrostConfig::from_json(
            r#"{"providers": {"x": {"custom_provider_config": {"base_provider_type": "nope"},
                "network_config": {"base_url": "http://h"}}}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("providers.x.custom_provider_config.base_provider_type"),
            "{e}"
        );
        let e = BifrostConfig::from_json(
            r#"{"providers": {"x": {"custom_provider_config": {"base_provider_type": "openai"}}}}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("providers.x.network_config.base_url"),
            "{e}"
        );
        let e = BifrostConfig::from_json(
            r#"{"providers": {"openai": {"custom_provider_config": {"base_provider_type": "openai"}}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("custom_provider_config"), "{e}");
        let e = BifrostConfig::from_json(r#"{"providers": {"nope": {}}}"#).unwrap_err();
        assert!(e.to_string().contains("custom_provider_config"), "{e}");
    }

    #[test]
    fn azure_meta_config_moves_into_keys_and_endpoint_is_required() {
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {"azure": {"keys": [{"value": "k1"},
                    {"value": "k2", "azure_key_config": {"endpoint": "https://own"}}],
                "meta_config": {"endpoint": "https://meta", "deployments": {"gpt-4o": "gpt4o-dep"},
                    "api_version": "2024-10-21"}}}}"#,
        )
        .unwrap();
        let keys = &cfg.providers["azure"].keys;
        assert_eq!(
            keys[0].provider_config[AZURE_KEY_CONFIG]["deployments"]["gpt-4o"],
            "gpt4o-dep"
        );
        assert_eq!(
            keys[1].provider_config[AZURE_KEY_CONFIG]["endpoint"],
            "https://own"
        );
        let e = BifrostConfig::from_json(r#"{"providers": {"azure": {"keys": [{"value": "k"}]}}}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("providers.azure.keys[0].azure_key_config.endpoint"),
            "{e}"
        );
    }

    #[test]
    fn governance_that_does_anything_stops_startup_naming_the_block() {
        for (json, field) in [
            (
                r#"{"governance": {"virtual_keys": [{"id": "vk-1", "value": "sk-bf-1"}]}}"#,
                "governance",
            ),
            (
                r#"{"governance": {"budgets": [{"id": "b", "max_limit": 10}]}}"#,
                "governance",
            ),
            (
                r#"{"client": {"enforce_governance_header": true}}"#,
                "client.enforce_governance_header",
            ),
            (
                r#"{"auth_config": {"is_enabled": true, "admin_username": "a"}}"#,
                "auth_config",
            ),
        ] {
            let e = BifrostConfig::from_json(json).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("config: {field}:")), "{msg}");
            assert!(msg.contains("not implemented"), "{msg}");
        }
    }

    #[test]
    fn other_unimplemented_blocks_load_and_are_listed() {
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {"openai": {"keys": []}},
                "governance": {"virtual_keys": [], "teams": []},
                "client": {"enable_governance": true, "enforce_governance_header": false},
                "auth_config": {"is_enabled": false},
                "mcp": {"client_configs": [{"name": "fs"}]},
                "config_store": {"enabled": true, "type": "sqlite"},
                "logs_store": {"enabled": true},
                "vector_store": {"enabled": false}}"#,
        )
        .unwrap();
        let names: Vec<&str> = cfg.ignored_blocks().iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "governance",
                "client.enable_governance",
                "auth_config",
                "config_store",
                "vector_store"
            ]
        );
        let plain = BifrostConfig::from_json(r#"{"providers": {"openai": {"keys": []}}}"#).unwrap();
        assert!(plain.ignored_blocks().is_empty());
        let nulls = BifrostConfig::from_json(r#"{"governance": null, "mcp": null}"#).unwrap();
        assert!(nulls.ignored_blocks().is_empty());
    }

    #[test]
    fn unknown_providers_stop_startup_and_bedrock_vertex_load() {
        let e = BifrostConfig::from_json(r#"{"providers": {"openia": {"keys": []}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("providers.openia"), "{e}");
        assert!(e.contains("unknown provider \"openia\""), "{e}");
        let e = BifrostConfig::from_json(r#"{"providers": {"elevenlabs": {"keys": []}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"elevenlabs\" is a Bifrost provider this build does not"),
            "{e}"
        );
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {"deepseek": {"keys": []}, "fireworks": {"keys": []},
                "huggingface": {"keys": []}, "nebius": {"keys": []},
                "vllm": {"keys": [], "network_config": {"base_url": "http://127.0.0.1:8000"}}}}"#,
        )
        .unwrap();
        assert_eq!(cfg.providers.len(), 5);
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {"bedrock": {"keys": []}, "vertex": {"keys": []}}}"#,
        )
        .unwrap();
        assert_eq!(cfg.providers.len(), 2);
        assert!(cfg.ignored_blocks().is_empty());
    }

    #[test]
    fn env_overrides_file_values() {
        let dir = std::env::temp_dir().join(format!("bifrost-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(&path, r#"{"client": {"max_request_body_size_mb": 7}}"#).unwrap();
        // SAFETY-free: set_var is unsafe in edition 2024; use a child-process-free check instead.
        let cfg = BifrostConfig::load(&path).unwrap();
        assert_eq!(cfg.client.max_request_body_size_mb, 7);
    }
}
