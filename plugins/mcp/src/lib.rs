//! MCP for Bifrost: connects to Model Context Protocol servers with the official Rust SDK
//! (`rmcp`), offers their tools to models, executes the tool calls models make, and, in
//! agent mode, runs allowed tools itself and asks the model again.
//!
//! - **Config**: Bifrost's `mcp` block (`client_configs[]`: `name`, `connection_type`
//!   `stdio`/`http`/`sse`, `stdio_config`, `connection_string`, `tools_to_execute`,
//!   `tools_to_skip`, `tools_to_auto_execute`; `tool_manager_config`). Clients connect in
//!   the background and reconnect with backoff ([`manager`]).
//! - **Tools offered** by the pre-hook to every chat request on every route and transport,
//!   named `<client>-<tool>`, filtered per request by the `x-bf-mcp-*` headers ([`filter`]),
//!   never replacing a tool the caller sent under the same name.
//! - **Execution**: `POST /api/mcp/tool/execute` (and `/v1/mcp/tool/execute` on HTTP) takes a
//!   tool call as the model produced it and answers the chat `tool` message.
//! - **Agent mode** (only for tools listed in `tools_to_auto_execute`): see [`agent`].
//! - **Management**: `GET /api/mcp/clients`, `POST /api/mcp/client`,
//!   `DELETE /api/mcp/client/{name}`, `POST /api/mcp/client/{name}/reconnect` ([`api`]).

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bifrost_core::schemas::{BifrostRequest, RequestInput};
use bifrost_core::{
    EngineHandle, Plugin, PluginApi, PluginFactory, PluginInitError, PluginNeeds, PreHookOutcome,
    RequestContext,
};
use serde_json::Value;

pub mod agent;
pub mod api;
pub mod config;
pub mod filter;
pub mod manager;

pub use config::{ClientConfig, ConfigError, ConnectionType, McpConfig, StdioConfig};
pub use filter::RequestFilter;
pub use manager::{ClientStatus, ConnState, McpError, McpManager, McpTool};

/// The name the plugin registers under (`plugins[].name`, `-plugins`), and the prefix of
/// its management API (`/api/mcp`).
pub const PLUGIN_NAME: &str = "mcp";

/// Builds the plugin from Bifrost's `mcp` block; registered under [`PLUGIN_NAME`].
#[derive(Debug, Clone, Copy, Default)]
pub struct McpFactory;

impl PluginFactory for McpFactory {
    fn name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn build(&self, config: &Value) -> Result<Arc<dyn Plugin>, PluginInitError> {
        let err = |message: String| PluginInitError {
            name: PLUGIN_NAME.to_owned(),
            message,
        };
        let cfg = McpConfig::from_value(config).map_err(|e| err(e.to_string()))?;
        let plugin = McpPlugin::start(cfg).map_err(|e| err(format!("cannot start: {e}")))?;
        Ok(Arc::new(plugin))
    }
}

/// Marks a request the agent loop makes through the engine, so this plugin's pre-hook
/// leaves it alone (its tools are already in the request) and does not loop again.
#[derive(Debug, Clone, Copy)]
pub struct AgentRound;

/// The MCP plugin.
#[derive(Debug)]
pub struct McpPlugin {
    manager: Arc<McpManager>,
    engine: Arc<OnceLock<EngineHandle>>,
}

impl McpPlugin {
    /// Starts the clients in the background and returns at once.
    pub fn start(cfg: McpConfig) -> std::io::Result<Self> {
        Ok(Self {
            manager: McpManager::start(cfg)?,
            engine: Arc::new(OnceLock::new()),
        })
    }

    /// The clients, for embedding programs and tests.
    pub fn manager(&self) -> &Arc<McpManager> {
        &self.manager
    }
}

#[async_trait]
impl Plugin for McpPlugin {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    /// Reads the `x-bf-mcp-*` headers. It never reads answers on the caller's path: agent
    /// rounds are calls of its own whose contexts ask for parsed answers, so the relay fast
    /// path stays on for everything else.
    fn needs(&self) -> PluginNeeds {
        PluginNeeds {
            response_body: false,
            request_headers: true,
        }
    }

    fn attach(&self, engine: EngineHandle) {
        let _ = self.engine.set(engine);
    }

    async fn pre_hook(&self, ctx: &mut RequestContext, req: &mut BifrostRequest) -> PreHookOutcome {
        if ctx.extensions.get::<AgentRound>().is_some()
            || !matches!(req.input, RequestInput::Chat(_))
        {
            return PreHookOutcome::Continue;
        }
        let filter = RequestFilter::from_headers(&ctx.headers);
        let tools = self.manager.tools_for(&filter);
        if tools.is_empty() {
            return PreHookOutcome::Continue;
        }
        let auto = agent::inject(req, &tools);
        if !auto {
            return PreHookOutcome::Continue;
        }
        let Some(engine) = self.engine.get().and_then(EngineHandle::engine) else {
            return PreHookOutcome::Continue;
        };
        match agent::run(&engine, &self.manager, ctx, req.clone(), &tools).await {
            Ok(resp) => PreHookOutcome::Respond(resp),
            Err(e) => PreHookOutcome::Fail(e),
        }
    }

    async fn cleanup(&self) {
        self.manager.shutdown().await;
    }

    fn api(&self) -> Option<Arc<dyn PluginApi>> {
        Some(Arc::new(api::McpApi::new(Arc::clone(&self.manager))))
    }
}

/// Turns config.json's top-level `mcp` block on: when it lists clients, the plugin list gets
/// an `mcp` entry with the block as its config (an entry already in `plugins[]` with a
/// config of its own wins; one without config takes the block; `"enabled": false` keeps MCP
/// off). The binaries call it once after loading the config and applying the flags.
pub fn apply_mcp_block(cfg: &mut bifrost_core::BifrostConfig) {
    let Some(block) = cfg.mcp.as_ref().filter(|b| {
        b.get("client_configs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    }) else {
        return;
    };
    match cfg.plugins.iter_mut().find(|p| p.name == PLUGIN_NAME) {
        Some(entry) if entry.config.is_null() => entry.config = block.clone(),
        Some(_) => tracing::warn!(
            "both the mcp block and plugins[].mcp have a config; using plugins[].mcp"
        ),
        None => cfg.plugins.push(bifrost_core::config::PluginConfig {
            name: PLUGIN_NAME.to_owned(),
            enabled: true,
            config: block.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mcp_block_turns_the_plugin_on() {
        let mut cfg = bifrost_core::BifrostConfig::from_json(
            r#"{"mcp": {"client_configs": [{"name": "fs", "connection_type": "http", "connection_string": "http://x"}]}}"#,
        )
        .unwrap();
        apply_mcp_block(&mut cfg);
        assert_eq!(cfg.plugins.len(), 1);
        assert_eq!(cfg.plugins[0].name, "mcp");
        assert_eq!(cfg.plugins[0].config["client_configs"][0]["name"], "fs");
        // Applying again changes nothing; an empty block adds nothing.
        apply_mcp_block(&mut cfg);
        assert_eq!(cfg.plugins.len(), 1);
        let mut empty =
            bifrost_core::BifrostConfig::from_json(r#"{"mcp": {"client_configs": []}}"#).unwrap();
        apply_mcp_block(&mut empty);
        assert!(empty.plugins.is_empty());
    }
}
