//! The plugin's config block: Bifrost's two keys (`api_key`, `log_repo_id`) plus the
//! sender's knobs, all optional, so a Bifrost `config.json` Maxim entry loads unchanged.

use std::time::Duration;

use bifrost_core::config::resolve_env;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

/// Maxim's public API base, where the official SDKs send logs.
pub const DEFAULT_BASE_URL: &str = "https://app.getmaxim.ai";

/// Why a Maxim config block was rejected; names the field, never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum MaximConfigError {
    /// Bifrost requires an API key: without one nothing could be sent.
    #[error(
        "api_key is required (e.g. \"env.MAXIM_API_KEY\"; with no config block, the MAXIM_API_KEY variable)"
    )]
    MissingApiKey,
    /// An `env.VAR` reference whose variable is unset or empty.
    #[error("{field}: environment variable {var} is unset or empty")]
    UnsetEnv {
        /// The config key holding the reference.
        field: &'static str,
        /// The variable's name.
        var: String,
    },
    /// A value of the wrong type or out of range.
    #[error("{field}: {message}")]
    Invalid {
        /// The config key.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// The plugin's settings. Build it from JSON with [`MaximConfig::from_json`] or in code with
/// [`MaximConfig::new`] and adjust the public fields.
///
/// `Debug` redacts the API key, so the config can be logged.
#[derive(Clone)]
pub struct MaximConfig {
    /// Maxim API key (sent as `x-maxim-api-key`).
    pub api_key: String,
    /// Default log repository; a request's `x-bf-maxim-log-repo-id` overrides it. With
    /// neither, the request is not logged (Bifrost's rule).
    pub log_repo_id: Option<String>,
    /// Maxim's API base, without a trailing `/` (tests point it at a local mock).
    pub base_url: String,
    /// Entries the request path may queue for the sender before it drops (and counts) them.
    pub queue_size: usize,
    /// Largest body of one upload; more entries wait for the next one.
    pub batch_max_bytes: usize,
    /// Rendered entries kept in memory while Maxim is slow or down; past it new entries are
    /// dropped and counted.
    pub buffer_max_bytes: usize,
    /// How long an entry may wait for more to share its upload.
    pub flush_interval: Duration,
    /// Retries of one upload after a retryable failure (network, 408, 429, 5xx) before its
    /// entries are dropped and counted.
    pub max_retries: u32,
    /// First backoff between retries; doubled per failure up to `max_backoff`.
    pub retry_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Deadline of one upload (connect, send, answer).
    pub request_timeout: Duration,
    /// How long `cleanup` (shutdown) waits for the buffer to drain.
    pub flush_timeout: Duration,
}

impl std::fmt::Debug for MaximConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaximConfig")
            .field("api_key", &"<redacted>")
            .field("log_repo_id", &self.log_repo_id)
            .field("base_url", &self.base_url)
            .field("queue_size", &self.queue_size)
            .field("batch_max_bytes", &self.batch_max_bytes)
            .field("buffer_max_bytes", &self.buffer_max_bytes)
            .field("flush_interval", &self.flush_interval)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("request_timeout", &self.request_timeout)
            .field("flush_timeout", &self.flush_timeout)
            .finish()
    }
}

impl MaximConfig {
    /// Settings with the defaults and this key and default repository.
    pub fn new(api_key: impl Into<String>, log_repo_id: Option<String>) -> Self {
        Self {
            api_key: api_key.into(),
            log_repo_id,
            base_url: DEFAULT_BASE_URL.to_owned(),
            queue_size: 4096,
            batch_max_bytes: 1024 * 1024,
            buffer_max_bytes: 32 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            max_retries: 5,
            retry_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(5),
        }
    }

    /// Parses a `plugins[].config` block. `api_key`, `log_repo_id` and `base_url` accept
    /// `env.VAR`; a missing `api_key` or `log_repo_id` is read from `MAXIM_API_KEY` and
    /// `MAXIM_LOG_REPO_ID`, as Bifrost's `-plugins maxim` (no config block) does. Unknown
    /// keys are ignored with a warning, as Bifrost ignores them.
    ///
    /// # Errors
    /// [`MaximConfigError`] naming the first bad field.
    pub fn from_json(config: &Value) -> Result<Self, MaximConfigError> {
        Self::from_json_with_env(config, |name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    fn from_json_with_env(
        config: &Value,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, MaximConfigError> {
        let empty = serde_json::Map::new();
        let obj = match config {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => return Err(invalid("config", "must be a JSON object")),
        };
        for k in obj.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
            tracing::warn!(key = %k, "maxim plugin: unknown config key ignored");
        }
        let raw: Raw = serde_json::from_value(Value::Object(obj.clone()))
            .map_err(|e| invalid("config", e.to_string()))?;
        let api_key = match raw.api_key.as_deref().map(str::trim) {
            None | Some("") => env(API_KEY_VAR).ok_or(MaximConfigError::MissingApiKey)?,
            Some(v) => resolve("api_key", v)?,
        };
        let mut cfg = Self::new(api_key, None);
        cfg.log_repo_id = match raw.log_repo_id.as_deref().map(str::trim) {
            None | Some("") => env(LOG_REPO_VAR),
            Some(v) => Some(resolve("log_repo_id", v)?),
        };
        if let Some(v) = raw.base_url.as_deref() {
            cfg.base_url = resolve("base_url", v)?;
        }
        let ms = Duration::from_millis;
        if let Some(v) = raw.queue_size {
            cfg.queue_size = v;
        }
        if let Some(v) = raw.batch_max_bytes {
            cfg.batch_max_bytes = v;
        }
        if let Some(v) = raw.buffer_max_bytes {
            cfg.buffer_max_bytes = v;
        }
        if let Some(v) = raw.flush_interval_ms {
            cfg.flush_interval = ms(v);
        }
        if let Some(v) = raw.max_retries {
            cfg.max_retries = v;
        }
        if let Some(v) = raw.retry_backoff_ms {
            cfg.retry_backoff = ms(v);
        }
        if let Some(v) = raw.max_backoff_ms {
            cfg.max_backoff = ms(v);
        }
        if let Some(v) = raw.request_timeout_ms {
            cfg.request_timeout = ms(v);
        }
        if let Some(v) = raw.flush_timeout_ms {
            cfg.flush_timeout = ms(v);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges and the base URL, and drops a trailing `/` from it.
    ///
    /// # Errors
    /// [`MaximConfigError::Invalid`] naming the field.
    pub fn validate(&mut self) -> Result<(), MaximConfigError> {
        if self.api_key.trim().is_empty() {
            return Err(MaximConfigError::MissingApiKey);
        }
        if reqwest::header::HeaderValue::from_str(&self.api_key).is_err() {
            return Err(invalid("api_key", "must be printable ASCII"));
        }
        let trimmed = self.base_url.trim().trim_end_matches('/').to_owned();
        match Url::parse(&trimmed) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            _ => return Err(invalid("base_url", "must be an http(s) URL")),
        }
        self.base_url = trimmed;
        for (field, v) in [
            ("queue_size", self.queue_size),
            ("batch_max_bytes", self.batch_max_bytes),
            ("buffer_max_bytes", self.buffer_max_bytes),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        if self.flush_interval.is_zero() {
            return Err(invalid("flush_interval_ms", "must be greater than 0"));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout_ms", "must be greater than 0"));
        }
        Ok(())
    }

    /// The upload URL for `repo`: `{base}/api/sdk/v3/log?id={repo}`, the endpoint Maxim's
    /// SDKs push commit logs to.
    pub(crate) fn log_url(&self, repo: &str) -> Option<Url> {
        let mut url = Url::parse(&format!("{}/api/sdk/v3/log", self.base_url)).ok()?;
        url.query_pairs_mut().append_pair("id", repo);
        Some(url)
    }
}

/// Where Bifrost's `-plugins maxim` reads the key and the repository when no block is given.
const API_KEY_VAR: &str = "MAXIM_API_KEY";
const LOG_REPO_VAR: &str = "MAXIM_LOG_REPO_ID";

const KNOWN: &[&str] = &[
    "api_key",
    "log_repo_id",
    "base_url",
    "queue_size",
    "batch_max_bytes",
    "buffer_max_bytes",
    "flush_interval_ms",
    "max_retries",
    "retry_backoff_ms",
    "max_backoff_ms",
    "request_timeout_ms",
    "flush_timeout_ms",
];

#[derive(Deserialize)]
struct Raw {
    api_key: Option<String>,
    log_repo_id: Option<String>,
    base_url: Option<String>,
    queue_size: Option<usize>,
    batch_max_bytes: Option<usize>,
    buffer_max_bytes: Option<usize>,
    flush_interval_ms: Option<u64>,
    max_retries: Option<u32>,
    retry_backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    flush_timeout_ms: Option<u64>,
}

fn resolve(field: &'static str, v: &str) -> Result<String, MaximConfigError> {
    resolve_env(v).map_err(|var| MaximConfigError::UnsetEnv { field, var })
}

fn invalid(field: &'static str, message: impl Into<String>) -> MaximConfigError {
    MaximConfigError::Invalid {
        field,
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bifrost_block_loads_with_defaults() {
        let c = MaximConfig::from_json(&json!({"api_key": "mx-secret", "log_repo_id": "repo-1"}))
            .unwrap();
        assert_eq!(c.api_key, "mx-secret");
        assert_eq!(c.log_repo_id.as_deref(), Some("repo-1"));
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(
            c.log_url("repo 1").unwrap().as_str(),
            "https://app.getmaxim.ai/api/sdk/v3/log?id=repo+1"
        );
        assert!(
            !format!("{c:?}").contains("mx-secret"),
            "Debug redacts the key"
        );
    }

    #[test]
    fn env_references_resolve_and_unset_ones_are_named_not_printed() {
        // A variable nobody sets; setting one would need `unsafe` (edition 2024), which the
        // workspace forbids, so the resolving case reads PATH, which is always set.
        let key_var = "BIFROST_MAXIM_TEST_KEY_7f3a";
        let path = std::env::var("PATH").unwrap();
        let c = MaximConfig::from_json(&json!({"api_key": "env.PATH"})).unwrap();
        assert_eq!(c.api_key.len(), path.len());
        assert!(c.log_repo_id.is_none());
        let e = MaximConfig::from_json(&json!({"api_key": format!("env.{key_var}")})).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("api_key: environment variable {key_var} is unset or empty")
        );
    }

    #[test]
    fn without_a_block_the_key_and_repository_come_from_bifrosts_variables() {
        let env = |name: &str| match name {
            "MAXIM_API_KEY" => Some("from-env".to_owned()),
            "MAXIM_LOG_REPO_ID" => Some("repo-env".to_owned()),
            _ => None,
        };
        let c = MaximConfig::from_json_with_env(&json!(null), env).unwrap();
        assert_eq!(
            (c.api_key.as_str(), c.log_repo_id.as_deref()),
            ("from-env", Some("repo-env"))
        );
        let c = MaximConfig::from_json_with_env(&json!({"api_key": "k", "log_repo_id": "r"}), env)
            .unwrap();
        assert_eq!(
            (c.api_key.as_str(), c.log_repo_id.as_deref()),
            ("k", Some("r"))
        );
        let e = MaximConfig::from_json_with_env(&json!(null), |_| None).unwrap_err();
        assert!(e.to_string().contains("MAXIM_API_KEY"), "{e}");
    }

    #[test]
    fn bad_blocks_name_the_field() {
        let none = |_: &str| None;
        let cases = [
            (json!(null), "api_key is required"),
            (json!({}), "api_key is required"),
            (json!({"api_key": "  "}), "api_key is required"),
            (json!([1]), "config: must be a JSON object"),
            (json!({"api_key": "k", "base_url": "ftp://x"}), "base_url"),
            (json!({"api_key": "k", "queue_size": 0}), "queue_size"),
            (json!({"api_key": "k", "queue_size": "many"}), "config:"),
        ];
        for (cfg, want) in cases {
            let e = MaximConfig::from_json_with_env(&cfg, none)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{cfg}: {e}");
        }
        let c = MaximConfig::from_json(
            &json!({"api_key": "k", "base_url": "http://127.0.0.1:9/", "flush_interval_ms": 5, "extra": 1}),
        )
        .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9");
        assert_eq!(c.flush_interval, Duration::from_millis(5));
    }
}
