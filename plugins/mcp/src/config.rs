//! Bifrost's `mcp` config block: `{"client_configs": [...], "tool_manager_config": {...}}`.
//!
//! The same shape comes from config.json's top-level `mcp` block, from a `plugins[]` entry
//! named `mcp`, and from `POST /api/mcp/client` (one client config).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// The whole block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// One entry per MCP server to connect to.
    #[serde(default)]
    pub client_configs: Vec<ClientConfig>,
    /// Timeouts, agent depth and health checks shared by every client.
    #[serde(default)]
    pub tool_manager_config: ToolManagerConfig,
}

/// How one MCP server is reached and which of its tools are offered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// Unique name; also the prefix of the tool names the model sees (`<name>-<tool>`), so
    /// it may hold only letters, digits and `_`.
    pub name: String,
    /// `stdio`, `http` (streamable HTTP) or `sse`.
    pub connection_type: ConnectionType,
    /// The command for `stdio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdio_config: Option<StdioConfig>,
    /// The server's URL for `http`/`sse`; `env.VAR` reads it from the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<String>,
    /// Extra HTTP headers for `http`/`sse` (values may be `env.VAR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// Only these tools are offered (`["*"]` or absent: all; `[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_to_execute: Option<Vec<String>>,
    /// These tools are never offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_to_skip: Vec<String>,
    /// Agent mode: tools the gateway runs by itself when the model calls them (`["*"]`: all
    /// offered tools). Empty (the default): the gateway never runs a tool on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_to_auto_execute: Vec<String>,
}

/// How the gateway talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionType {
    /// A child process speaking JSON-RPC on stdin/stdout.
    Stdio,
    /// Streamable HTTP (one endpoint, POST + optional SSE responses).
    Http,
    /// Bifrost's `sse` type. rmcp has no client for the legacy HTTP+SSE transport, so this
    /// connects with streamable HTTP, which serves its answers as SSE streams.
    Sse,
}

impl ConnectionType {
    /// The name as written in config.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Sse => "sse",
        }
    }
}

/// The command line of a stdio server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StdioConfig {
    /// Program to run (looked up in `PATH`).
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment for the child: `NAME=value` sets a variable, a bare `NAME` must be set in
    /// the gateway's environment (as Bifrost checks) and is passed on. The child inherits the
    /// gateway's environment either way.
    #[serde(default)]
    pub envs: Vec<String>,
}

/// Settings shared by every client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolManagerConfig {
    /// Longest a tool call may run before the caller gets a 504 (default 30 s). Seconds or a
    /// string like `"500ms"`, `"30s"`.
    #[serde(default = "default_tool_timeout", deserialize_with = "duration")]
    pub tool_execution_timeout: Duration,
    /// Agent mode: most model rounds in one request (default 10); the answer of the last
    /// round is returned as is, tool calls included.
    #[serde(default = "default_depth")]
    pub max_agent_depth: u32,
    /// Longest a connection (spawn or HTTP, initialize, first tool list) may take (default 30 s).
    #[serde(default = "default_connect_timeout", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// How often a connected client's tool list is refreshed, which also notices a server
    /// that went away without closing the connection (default 30 s).
    #[serde(default = "default_health", deserialize_with = "duration")]
    pub health_check_interval: Duration,
    /// First wait before reconnecting a dead server (default 1 s), doubled per failure.
    #[serde(default = "default_backoff_initial", deserialize_with = "duration")]
    pub reconnect_backoff_initial: Duration,
    /// Longest wait between reconnect attempts (default 30 s).
    #[serde(default = "default_backoff_max", deserialize_with = "duration")]
    pub reconnect_backoff_max: Duration,
}

impl Default for ToolManagerConfig {
    fn default() -> Self {
        Self {
            tool_execution_timeout: default_tool_timeout(),
            max_agent_depth: default_depth(),
            connect_timeout: default_connect_timeout(),
            health_check_interval: default_health(),
            reconnect_backoff_initial: default_backoff_initial(),
            reconnect_backoff_max: default_backoff_max(),
        }
    }
}

fn default_tool_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_depth() -> u32 {
    10
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_health() -> Duration {
    Duration::from_secs(30)
}
fn default_backoff_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(30)
}

/// Integer seconds, or a string with a unit (`ms`, `s`, `m`).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Secs(u64),
        Str(String),
    }
    match Repr::deserialize(d)? {
        Repr::Secs(s) => Ok(Duration::from_secs(s)),
        Repr::Str(s) => parse_duration(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: use seconds or a string like \"500ms\", \"30s\", \"1m\""
            ))
        }),
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// Why a config block or client config is rejected.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    /// The JSON does not have the block's shape.
    #[error("invalid mcp config: {0}")]
    Shape(String),
    /// A client name is empty or has characters other than letters, digits and `_`.
    #[error(
        "MCP client name {0:?} must be non-empty and hold only letters, digits and '_' (it prefixes tool names as <name>-<tool>)"
    )]
    BadName(String),
    /// Two clients share a name.
    #[error("MCP client {0:?} is configured twice")]
    Duplicate(String),
    /// A connection type without the setting it needs.
    #[error("MCP client {name:?}: connection_type {kind} needs {needs}")]
    Missing {
        /// The client.
        name: String,
        /// Its connection type.
        kind: &'static str,
        /// The setting it lacks.
        needs: &'static str,
    },
    /// A tool both executed and skipped.
    #[error(
        "MCP client {name:?}: tools cannot be both in tools_to_execute and tools_to_skip: {tools:?}"
    )]
    Overlap {
        /// The client.
        name: String,
        /// The tools in both lists.
        tools: Vec<String>,
    },
    /// An `env.VAR` that is not set.
    #[error("MCP client {name:?}: environment variable {var} is not set")]
    Env {
        /// The client.
        name: String,
        /// The variable.
        var: String,
    },
}

impl McpConfig {
    /// Parses and validates the block (JSON `null` is an empty block).
    pub fn from_value(v: &serde_json::Value) -> Result<Self, ConfigError> {
        if v.is_null() {
            return Ok(Self::default());
        }
        let cfg: Self =
            serde_json::from_value(v.clone()).map_err(|e| ConfigError::Shape(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for c in &cfg.client_configs {
            c.validate()?;
            if !seen.insert(c.name.as_str()) {
                return Err(ConfigError::Duplicate(c.name.clone()));
            }
        }
        Ok(cfg)
    }
}

impl ClientConfig {
    /// Checks the name, that the connection type has its settings, and the tool lists.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ConfigError::BadName(self.name.clone()));
        }
        let missing = |needs| ConfigError::Missing {
            name: self.name.clone(),
            kind: self.connection_type.as_str(),
            needs,
        };
        match self.connection_type {
            ConnectionType::Stdio => {
                if self
                    .stdio_config
                    .as_ref()
                    .is_none_or(|s| s.command.is_empty())
                {
                    return Err(missing("stdio_config.command"));
                }
            }
            ConnectionType::Http | ConnectionType::Sse => {
                if self.connection_string.as_deref().is_none_or(str::is_empty) {
                    return Err(missing("connection_string"));
                }
            }
        }
        if let Some(exec) = &self.tools_to_execute {
            let tools: Vec<String> = exec
                .iter()
                .filter(|t| self.tools_to_skip.contains(t))
                .cloned()
                .collect();
            if !tools.is_empty() {
                return Err(ConfigError::Overlap {
                    name: self.name.clone(),
                    tools,
                });
            }
        }
        Ok(())
    }

    /// Whether the server's tool `tool` is offered at all (`tools_to_execute`, `tools_to_skip`).
    pub fn offers(&self, tool: &str) -> bool {
        if self.tools_to_skip.iter().any(|t| t == tool) {
            return false;
        }
        match &self.tools_to_execute {
            None => true,
            Some(list) => list.iter().any(|t| t == "*" || t == tool),
        }
    }

    /// Whether agent mode runs `tool` without asking the caller.
    pub fn auto_executes(&self, tool: &str) -> bool {
        self.tools_to_auto_execute
            .iter()
            .any(|t| t == "*" || t == tool)
    }

    /// The URL, with `env.VAR` resolved.
    pub(crate) fn url(&self) -> Result<String, ConfigError> {
        let raw = self.connection_string.as_deref().unwrap_or_default();
        bifrost_core::config::resolve_env(raw).map_err(|var| ConfigError::Env {
            name: self.name.clone(),
            var,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bifrost_block_parses_with_defaults() {
        let cfg = McpConfig::from_value(&json!({"client_configs": [
            {"name": "fs", "connection_type": "stdio",
             "stdio_config": {"command": "npx", "args": ["-y", "x"], "envs": ["HOME"]},
             "tools_to_execute": ["read_file"], "tools_to_skip": ["rm"]},
            {"name": "web", "connection_type": "http", "connection_string": "http://h/mcp"},
            {"name": "old", "connection_type": "sse", "connection_string": "http://h/sse"}
        ]}))
        .unwrap();
        assert_eq!(cfg.client_configs.len(), 3);
        assert!(cfg.client_configs[0].offers("read_file"));
        assert!(!cfg.client_configs[0].offers("write_file"));
        assert!(cfg.client_configs[1].offers("anything"));
        assert_eq!(cfg.tool_manager_config.max_agent_depth, 10);
        assert_eq!(
            cfg.tool_manager_config.tool_execution_timeout,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn tool_lists_follow_bifrost() {
        let mut c: ClientConfig = serde_json::from_value(json!({
            "name": "a", "connection_type": "http", "connection_string": "u",
            "tools_to_execute": ["*"], "tools_to_skip": ["x"], "tools_to_auto_execute": ["y"]}))
        .unwrap();
        assert!(c.offers("y") && !c.offers("x"));
        assert!(c.auto_executes("y") && !c.auto_executes("z"));
        c.tools_to_execute = Some(vec![]);
        assert!(!c.offers("y"), "an empty list offers nothing");
    }

    #[test]
    fn invalid_blocks_are_named() {
        let bad = |v| McpConfig::from_value(&v).unwrap_err();
        assert!(matches!(
            bad(
                json!({"client_configs": [{"name": "a-b", "connection_type": "http", "connection_string": "u"}]})
            ),
            ConfigError::BadName(_)
        ));
        assert!(matches!(
            bad(json!({"client_configs": [{"name": "a", "connection_type": "stdio"}]})),
            ConfigError::Missing {
                needs: "stdio_config.command",
                ..
            }
        ));
        assert!(matches!(
            bad(json!({"client_configs": [{"name": "a", "connection_type": "http"}]})),
            ConfigError::Missing {
                needs: "connection_string",
                ..
            }
        ));
        assert!(matches!(
            bad(json!({"client_configs": [
                {"name": "a", "connection_type": "http", "connection_string": "u"},
                {"name": "a", "connection_type": "http", "connection_string": "u"}]})),
            ConfigError::Duplicate(_)
        ));
        assert!(matches!(
            bad(
                json!({"client_configs": [{"name": "a", "connection_type": "http", "connection_string": "u",
                "tools_to_execute": ["t"], "tools_to_skip": ["t"]}]})
            ),
            ConfigError::Overlap { .. }
        ));
        assert!(matches!(
            bad(json!({"client_configs": [{"name": "a", "connection_type": "ws"}]})),
            ConfigError::Shape(_)
        ));
    }

    #[test]
    fn durations_take_seconds_or_units() {
        let c: ToolManagerConfig = serde_json::from_value(json!({
            "tool_execution_timeout": 5, "health_check_interval": "250ms", "connect_timeout": "1m"}))
        .unwrap();
        assert_eq!(c.tool_execution_timeout, Duration::from_secs(5));
        assert_eq!(c.health_check_interval, Duration::from_millis(250));
        assert_eq!(c.connect_timeout, Duration::from_secs(60));
        assert!(
            serde_json::from_value::<ToolManagerConfig>(json!({"connect_timeout": "5h"})).is_err()
        );
    }
}
