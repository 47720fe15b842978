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

/// The whole `config.json`. Keys this version does not use (`mcp`, `config_store`, …) are
/// accepted and ignored so that Bifrost configs load unchanged.
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
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            initial_pool_size: 300,
            drop_excess_requests: false,
            max_request_body_size_mb: 100,
            allowed_origins: Vec::new(),
            prometheus_labels: Vec::new(),
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
    #[serde(default)]
    pub meta_config: Option<Value>,
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
    /// Longest silence allowed between two stream chunks.
    pub stream_idle_timeout_in_seconds: u64,
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
        let parsed: Self = cfg.try_deserialize()?;
        parsed.validate()?;
        Ok(parsed)
    }

    /// Parses configuration from a JSON string (no environment overrides); for tests and embedders.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(json, config::FileFormat::Json))
            .build()?;
        let parsed: Self = cfg.try_deserialize()?;
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

    /// Checks values serde cannot: provider names, ranges and URLs. Errors name the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.client.max_request_body_size_mb == 0 {
            return Err(invalid(
                "client.max_request_body_size_mb",
                "must be at least 1",
            ));
        }
        for (name, p) in &self.providers {
            let at = format!("providers.{name}");
            if !ProviderKey::parse(name).is_known() {
                let known: Vec<&str> = KNOWN_PROVIDERS.iter().map(ProviderKey::as_str).collect();
                return Err(invalid(
                    &at,
                    format!(
                        "unknown provider {name:?}; known providers: {}",
                        known.join(", ")
                    ),
                ));
            }
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
            }
        }
        Ok(())
    }
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
