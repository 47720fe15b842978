//! The plugin's config block, which is Bifrost's `logs_store` block plus a few keys of ours,
//! and how a `logs_store` block in `config.json` turns the plugin on.
//!
//! ```json
//! {"type": "sqlite", "config": {"path": "./logs.db"}, "retention_days": 30}
//! {"type": "postgres", "config": {"url": "env.LOGS_DATABASE_URL"}}
//! {"type": "postgres", "config": {"host": "db", "port": "5432", "user": "bifrost",
//!   "password": "env.PGPASSWORD", "db_name": "bifrost", "ssl_mode": "require"}}
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use bifrost_core::BifrostConfig;
use bifrost_core::config::{PluginConfig, resolve_env};
use serde_json::{Map, Value};

use crate::PLUGIN_NAME;

/// Why the plugin's config block was refused (startup stops, naming the key).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key has the wrong type or an unknown value.
    #[error("{key}: {message}")]
    Invalid {
        /// The key at fault (`config.path`, `writer.batch_interval`, …).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An `env.VAR` value names a variable that is unset or empty.
    #[error("{key}: environment variable {var} is not set")]
    MissingEnv {
        /// The key holding the `env.VAR` value.
        key: &'static str,
        /// The variable.
        var: String,
    },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

/// Where logs are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// An embedded SQLite file, created with its directory when missing.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database, for several gateway replicas sharing one log.
    Postgres {
        /// A `postgres://` URL (built from host/port/… when those were given).
        url: String,
        /// Connections in the pool (Bifrost's `max_open_conns`).
        max_connections: u32,
    },
}

impl StoreConfig {
    /// `sqlite` or `postgres`, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// How much of a request's input and output is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentMode {
    /// Everything (bounded only by the queue's byte budget).
    Full,
    /// At most this many bytes of each of input and output, marked when cut.
    Truncate(usize),
    /// Neither input nor output; metadata only (Bifrost's `disable_content_logging`).
    Off,
}

impl ContentMode {
    /// The byte cap for one captured field, `None` when content is off.
    pub fn cap(self) -> Option<usize> {
        match self {
            Self::Full => Some(usize::MAX),
            Self::Truncate(n) => Some(n),
            Self::Off => None,
        }
    }
}

/// The batching writer's limits (Bifrost's `logs_store.writer` block, same key names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Entries written in one transaction at most (`max_batch_size`).
    pub max_batch_size: usize,
    /// Longest an entry waits in the writer before its batch is written (`batch_interval`).
    pub batch_interval: Duration,
    /// Entries the queue holds before new ones are dropped (`write_queue_capacity`).
    pub queue_capacity: usize,
    /// Bytes of captured content the queue holds before new entries are dropped
    /// (`max_queue_bytes`), so a burst of huge prompts cannot grow memory past it.
    pub max_queue_bytes: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 1000,
            batch_interval: Duration::from_secs(1),
            queue_capacity: 10_000,
            max_queue_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The whole plugin config, parsed and resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingConfig {
    /// The database.
    pub store: StoreConfig,
    /// Entries older than this many days are deleted (0: kept); Bifrost's `retention_days`.
    pub retention_days: u32,
    /// At most this many entries are kept, the oldest deleted first (0: no cap).
    pub max_rows: u64,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Input/output capture.
    pub content: ContentMode,
    /// Queue and batching.
    pub writer: WriterConfig,
    /// Largest `limit` `GET /api/logs` accepts.
    pub max_page_size: u32,
    /// How long shutdown waits for queued entries to be written.
    pub shutdown_timeout: Duration,
}

/// The default app directory, as the binary's `-app-dir` default.
const DEFAULT_APP_DIR: &str = "./bifrost-data";
/// The SQLite file name under the app directory (Bifrost's `logs.db`).
const DEFAULT_DB_FILE: &str = "logs.db";
/// Default cap per captured field in `truncate` mode.
const DEFAULT_MAX_CONTENT_BYTES: usize = 4096;

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            store: StoreConfig::Sqlite {
                path: Path::new(DEFAULT_APP_DIR).join(DEFAULT_DB_FILE),
            },
            retention_days: 0,
            max_rows: 0,
            retention_interval: Duration::from_secs(3600),
            content: ContentMode::Truncate(DEFAULT_MAX_CONTENT_BYTES),
            writer: WriterConfig::default(),
            max_page_size: 1000,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl LoggingConfig {
    /// Parses the plugin's `config` block (JSON `null` gives the defaults: SQLite under the
    /// app directory). `env.VAR` values are resolved here.
    pub fn from_json(v: &Value) -> Result<Self, ConfigError> {
        let mut cfg = Self::default();
        let empty = Map::new();
        let o = match v {
            Value::Null => &empty,
            Value::Object(o) => o,
            _ => return Err(invalid("config", "expected an object")),
        };
        let app_dir = opt_str(o, "app_dir", "app_dir")?
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_APP_DIR));
        let kind = opt_str(o, "type", "type")?.unwrap_or_else(|| "sqlite".to_owned());
        let store = match o.get("config") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(c)) => c,
            Some(_) => return Err(invalid("config", "expected an object")),
        };
        cfg.store = match kind.as_str() {
            "sqlite" => {
                let path = opt_str(store, "path", "config.path")?
                    .map(|p| resolve_env(&p).map_err(|var| env_err("config.path", var)))
                    .transpose()?
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DB_FILE));
                // Bifrost: "relative to app-dir, or absolute".
                StoreConfig::Sqlite {
                    path: if path.is_absolute() {
                        path
                    } else {
                        app_dir.join(path)
                    },
                }
            }
            "postgres" | "postgresql" => StoreConfig::Postgres {
                url: postgres_url(store)?,
                max_connections: opt_u64(store, "max_open_conns", "config.max_open_conns")?
                    .map_or(Ok(8), |n| {
                        u32::try_from(n.max(1))
                            .map_err(|_| invalid("config.max_open_conns", "too large"))
                    })?,
            },
            other => {
                return Err(invalid(
                    "type",
                    format!("unknown log store type {other:?} (use \"sqlite\" or \"postgres\")"),
                ));
            }
        };
        if let Some(d) = opt_u64(o, "retention_days", "retention_days")? {
            cfg.retention_days =
                u32::try_from(d).map_err(|_| invalid("retention_days", "too large"))?;
        }
        if let Some(n) = opt_u64(o, "max_rows", "max_rows")? {
            cfg.max_rows = n;
        }
        if let Some(s) = opt_u64(
            o,
            "retention_interval_seconds",
            "retention_interval_seconds",
        )? {
            cfg.retention_interval = Duration::from_secs(s.max(1));
        }
        let max_bytes = opt_u64(o, "max_content_bytes", "max_content_bytes")?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .unwrap_or(DEFAULT_MAX_CONTENT_BYTES);
        cfg.content = match opt_str(o, "content", "content")?.as_deref() {
            None | Some("truncate") => ContentMode::Truncate(max_bytes),
            Some("full") => ContentMode::Full,
            Some("off") => ContentMode::Off,
            Some(other) => {
                return Err(invalid(
                    "content",
                    format!("unknown mode {other:?} (use \"full\", \"truncate\" or \"off\")"),
                ));
            }
        };
        if o.get("disable_content_logging").and_then(Value::as_bool) == Some(true) {
            cfg.content = ContentMode::Off;
        }
        match o.get("writer") {
            None | Some(Value::Null) => {}
            Some(Value::Object(w)) => cfg.writer = writer(w)?,
            Some(_) => return Err(invalid("writer", "expected an object")),
        }
        if let Some(n) = opt_u64(o, "max_page_size", "max_page_size")? {
            cfg.max_page_size = u32::try_from(n.clamp(1, 100_000)).unwrap_or(100_000);
        }
        if let Some(s) = opt_u64(o, "shutdown_timeout_seconds", "shutdown_timeout_seconds")? {
            cfg.shutdown_timeout = Duration::from_secs(s);
        }
        Ok(cfg)
    }
}

fn writer(w: &Map<String, Value>) -> Result<WriterConfig, ConfigError> {
    let mut out = WriterConfig::default();
    let size = |key, name| -> Result<Option<usize>, ConfigError> {
        Ok(opt_u64(w, key, name)?
            .filter(|n| *n > 0)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
    };
    if let Some(n) = size("max_batch_size", "writer.max_batch_size")? {
        out.max_batch_size = n;
    }
    if let Some(n) = size("write_queue_capacity", "writer.write_queue_capacity")? {
        out.queue_capacity = n;
    }
    if let Some(n) = size("max_queue_bytes", "writer.max_queue_bytes")? {
        out.max_queue_bytes = n;
    }
    match w.get("batch_interval") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => {
            out.batch_interval = parse_duration(s).ok_or_else(|| {
                invalid(
                    "writer.batch_interval",
                    format!("{s:?} is not a duration like \"500ms\", \"5s\" or \"1m\""),
                )
            })?;
        }
        Some(Value::Number(n)) => {
            out.batch_interval = Duration::from_millis(n.as_u64().unwrap_or(0));
        }
        Some(_) => {
            return Err(invalid(
                "writer.batch_interval",
                "expected a duration string (\"5s\") or milliseconds",
            ));
        }
    }
    Ok(out)
}

/// A Go-style duration: `250ms`, `5s`, `1m`, `1h`, `1m30s`.
pub(crate) fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => n / 1e9,
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(secs).ok()?;
    }
    Some(total)
}

/// The URL for Bifrost's postgres block: `url` as given, else one built from `host`, `port`,
/// `user`, `password`, `db_name` and `ssl_mode`.
fn postgres_url(c: &Map<String, Value>) -> Result<String, ConfigError> {
    let get = |key: &'static str, name: &'static str| -> Result<Option<String>, ConfigError> {
        match c.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => resolve_env(s).map(Some).map_err(|var| env_err(name, var)),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(invalid(name, "expected a string")),
        }
    };
    if let Some(url) = get("url", "config.url")? {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid(
                "config.url",
                "expected a postgres:// or postgresql:// URL",
            ));
        }
        return Ok(url);
    }
    let host = get("host", "config.host")?
        .ok_or_else(|| invalid("config", "postgres needs \"url\" or \"host\""))?;
    let port = get("port", "config.port")?.unwrap_or_else(|| "5432".to_owned());
    if port.parse::<u16>().is_err() {
        return Err(invalid("config.port", format!("{port:?} is not a port")));
    }
    let user = get("user", "config.user")?.unwrap_or_default();
    let password = get("password", "config.password")?.unwrap_or_default();
    let db = get("db_name", "config.db_name")?.unwrap_or_default();
    let ssl = get("ssl_mode", "config.ssl_mode")?;
    let mut url = String::from("postgres://");
    if !user.is_empty() {
        url.push_str(&pct(&user));
        if !password.is_empty() {
            url.push(':');
            url.push_str(&pct(&password));
        }
        url.push('@');
    }
    if host.contains(':') && !host.starts_with('[') {
        url.push_str(&format!("[{host}]"));
    } else {
        url.push_str(&host);
    }
    url.push(':');
    url.push_str(&port);
    if !db.is_empty() {
        url.push('/');
        url.push_str(&pct(&db));
    }
    if let Some(ssl) = ssl.filter(|s| !s.is_empty()) {
        url.push_str("?sslmode=");
        url.push_str(&pct(&ssl));
    }
    Ok(url)
}

/// Percent-encodes everything but unreserved characters (user names and passwords may hold
/// `@`, `:` or `/`).
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn env_err(key: &'static str, var: String) -> ConfigError {
    ConfigError::MissingEnv { key, var }
}

fn opt_str(
    o: &Map<String, Value>,
    key: &str,
    name: &'static str,
) -> Result<Option<String>, ConfigError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(name, "expected a string")),
    }
}

fn opt_u64(
    o: &Map<String, Value>,
    key: &str,
    name: &'static str,
) -> Result<Option<u64>, ConfigError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| invalid(name, "expected a non-negative integer")),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid(name, "expected a non-negative integer")),
        Some(_) => Err(invalid(name, "expected a non-negative integer")),
    }
}

/// Folds Bifrost's top-level `logs_store` block into the `plugins` list and tells every
/// `logging` entry the app directory, so that:
///
/// - `"logs_store": {"enabled": true, …}` turns the plugin on (a `plugins` entry is added
///   with the block as its config) — a Bifrost `config.json` logs without edits;
/// - a `logging` entry in `plugins` wins key by key over `logs_store` (keys it lacks are
///   taken from the block), and an entry with `"enabled": false` keeps logging off;
/// - a relative SQLite `path` (and the default `logs.db`) lands under `app_dir`, as in
///   Bifrost, also for `-plugins logging` with no config at all.
///
/// The binaries call it once after loading the config and applying the flags.
pub fn apply_logs_store(cfg: &mut BifrostConfig, app_dir: &Path) {
    let block = cfg
        .logs_store
        .as_ref()
        .and_then(Value::as_object)
        .filter(|b| b.get("enabled").and_then(Value::as_bool) == Some(true))
        .cloned();
    if let Some(block) = block {
        match cfg.plugins.iter_mut().find(|p| p.name == PLUGIN_NAME) {
            Some(entry) => {
                if !entry.config.is_object() {
                    entry.config = Value::Object(Map::new());
                }
                if let Value::Object(c) = &mut entry.config {
                    for (k, v) in block {
                        c.entry(k).or_insert(v);
                    }
                }
            }
            None => cfg.plugins.push(PluginConfig {
                name: PLUGIN_NAME.to_owned(),
                enabled: true,
                config: Value::Object(block),
            }),
        }
    }
    for entry in cfg.plugins.iter_mut().filter(|p| p.name == PLUGIN_NAME) {
        if !entry.config.is_object() {
            entry.config = Value::Object(Map::new());
        }
        if let Value::Object(c) = &mut entry.config {
            c.entry("app_dir")
                .or_insert_with(|| Value::String(app_dir.to_string_lossy().into_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_to_sqlite_under_the_app_dir() {
        let c = LoggingConfig::from_json(&Value::Null).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from("./bifrost-data/logs.db")
            }
        );
        assert_eq!(c.content, ContentMode::Truncate(4096));
        let c =
            LoggingConfig::from_json(&json!({"app_dir": "/data", "config": {"path": "./l.db"}}))
                .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from("/data/./l.db")
            }
        );
        let c =
            LoggingConfig::from_json(&json!({"app_dir": "/data", "config": {"path": "/x/l.db"}}))
                .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from("/x/l.db")
            }
        );
    }

    #[test]
    fn postgres_from_url_or_fields() {
        let c = LoggingConfig::from_json(
            &json!({"type": "postgres", "config": {"url": "postgres://u:p@h/db"}}),
        )
        .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Postgres {
                url: "postgres://u:p@h/db".into(),
                max_connections: 8
            }
        );
        let c = LoggingConfig::from_json(&json!({"type": "postgres", "config": {
            "host": "db", "port": "6432", "user": "bi frost", "password": "p@ss:w/d",
            "db_name": "logs", "ssl_mode": "disable", "max_open_conns": 3}}))
        .unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Postgres {
                url: "postgres://bi%20frost:p%40ss%3Aw%2Fd@db:6432/logs?sslmode=disable".into(),
                max_connections: 3
            }
        );
        let e = LoggingConfig::from_json(&json!({"type": "postgres", "config": {
            "url": "env.BIFROST_TEST_SURELY_UNSET_VAR"}}))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "config.url: environment variable BIFROST_TEST_SURELY_UNSET_VAR is not set"
        );
        let e = LoggingConfig::from_json(&json!({"type": "postgres", "config": {}})).unwrap_err();
        assert!(e.to_string().contains("\"url\" or \"host\""), "{e}");
        let e = LoggingConfig::from_json(&json!({"type": "clickhouse"})).unwrap_err();
        assert!(e.to_string().starts_with("type: unknown log store"), "{e}");
    }

    #[test]
    fn content_writer_and_retention_keys() {
        let c = LoggingConfig::from_json(&json!({
            "content": "full", "retention_days": 7, "max_rows": 100,
            "writer": {"max_batch_size": 10, "batch_interval": "250ms", "write_queue_capacity": 50,
                "max_queue_bytes": 1000},
            "max_page_size": 20
        }))
        .unwrap();
        assert_eq!(c.content, ContentMode::Full);
        assert_eq!((c.retention_days, c.max_rows), (7, 100));
        assert_eq!(
            c.writer,
            WriterConfig {
                max_batch_size: 10,
                batch_interval: Duration::from_millis(250),
                queue_capacity: 50,
                max_queue_bytes: 1000
            }
        );
        assert_eq!(c.max_page_size, 20);
        let c = LoggingConfig::from_json(&json!({"content": "truncate", "max_content_bytes": 9}))
            .unwrap();
        assert_eq!(c.content, ContentMode::Truncate(9));
        let c = LoggingConfig::from_json(&json!({"disable_content_logging": true})).unwrap();
        assert_eq!(c.content, ContentMode::Off);
        let e =
            LoggingConfig::from_json(&json!({"writer": {"batch_interval": "soon"}})).unwrap_err();
        assert!(e.to_string().starts_with("writer.batch_interval"), "{e}");
        assert!(LoggingConfig::from_json(&json!({"content": "some"})).is_err());
        assert!(LoggingConfig::from_json(&json!(3)).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn logs_store_block_turns_the_plugin_on_and_fills_gaps() {
        let mut cfg = BifrostConfig::from_json(
            r#"{"logs_store": {"enabled": true, "type": "sqlite", "config": {"path": "./logs.db"},
                "retention_days": 3}}"#,
        )
        .unwrap();
        apply_logs_store(&mut cfg, Path::new("/app/data"));
        assert_eq!(cfg.plugins.len(), 1);
        assert_eq!(cfg.plugins[0].name, "logging");
        let c = LoggingConfig::from_json(&cfg.plugins[0].config).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from("/app/data/./logs.db")
            }
        );
        assert_eq!(c.retention_days, 3);

        // The plugins entry wins key by key; its disabled state is kept.
        let mut cfg = BifrostConfig::from_json(
            r#"{"logs_store": {"enabled": true, "retention_days": 3},
                "plugins": [{"name": "logging", "enabled": false, "config": {"retention_days": 9}}]}"#,
        )
        .unwrap();
        apply_logs_store(&mut cfg, Path::new("/d"));
        assert!(!cfg.plugins[0].enabled);
        assert_eq!(cfg.plugins[0].config["retention_days"], 9);
        assert_eq!(cfg.plugins[0].config["app_dir"], "/d");

        // A disabled block adds nothing; `-plugins logging` (config null) learns the app dir.
        let mut cfg = BifrostConfig::from_json(
            r#"{"logs_store": {"enabled": false}, "plugins": [{"name": "logging"}]}"#,
        )
        .unwrap();
        apply_logs_store(&mut cfg, Path::new("/d"));
        assert_eq!(cfg.plugins.len(), 1);
        let c = LoggingConfig::from_json(&cfg.plugins[0].config).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from("/d/logs.db")
            }
        );
    }
}
