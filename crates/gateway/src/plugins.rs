//! The plugin registry: plugins built by name from config.json's `plugins` array
//! (`[{"name": …, "enabled": …, "config": {…}}]`, Bifrost's shape) and the `-plugins` flag.
//!
//! A plugin crate exports a [`PluginFactory`] under its name; the registry holds the
//! factories compiled into the binary, so no transport matches on plugin names.

use std::sync::Arc;

use bifrost_core::{BifrostConfig, Plugin, PluginFactory, PluginInitError};

/// The factories a binary can build plugins with.
pub struct PluginRegistry {
    factories: Vec<&'static dyn PluginFactory>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Default for PluginRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PluginRegistry {
    /// A registry with no factories.
    pub fn empty() -> Self {
        Self {
            factories: Vec::new(),
        }
    }

    /// Every plugin compiled into this build.
    pub fn builtin() -> Self {
        Self::empty()
            .with(&bifrost_plugin_mocker::MockerFactory)
            .with(&bifrost_plugin_maxim::MaximFactory)
            .with(&bifrost_plugin_logging::LoggingFactory)
            .with(&bifrost_plugin_mcp::McpFactory)
    }

    /// Adds `factory` (a later factory of the same name replaces an earlier one), e.g. a Rust
    /// program embedding the gateway with a plugin of its own.
    pub fn with(mut self, factory: &'static dyn PluginFactory) -> Self {
        self.factories.retain(|f| f.name() != factory.name());
        self.factories.push(factory);
        self
    }

    /// The names this registry can build.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.factories.iter().map(|f| f.name())
    }

    /// The enabled plugins of `cfg`, in config order. A name no factory knows is skipped
    /// with a warning (a config written for a build with more plugins still starts); a
    /// config block a factory rejects stops startup.
    pub fn build(&self, cfg: &BifrostConfig) -> Result<Vec<Arc<dyn Plugin>>, PluginInitError> {
        let mut out = Vec::new();
        for p in cfg.plugins.iter().filter(|p| p.enabled) {
            match self.factories.iter().find(|f| f.name() == p.name) {
                Some(f) => out.push(f.build(&p.config)?),
                None => tracing::warn!(
                    plugin = %p.name,
                    available = ?self.names().collect::<Vec<_>>(),
                    "plugin is not available in this build; skipped"
                ),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::panic, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn builds_enabled_plugins_by_name_and_skips_unknown_ones() {
        let cfg = BifrostConfig::from_json(
            r#"{"plugins": [
                {"name": "mocker", "enabled": true, "config": {"enabled": true, "rules": []}},
                {"name": "semantic_cache", "enabled": true, "config": {}},
                {"name": "mocker", "enabled": false}
            ]}"#,
        )
        .unwrap();
        let plugins = PluginRegistry::builtin().build(&cfg).unwrap();
        assert_eq!(plugins.len(), 1);
        assert_eq!(plugins[0].name(), "mocker");
        let bad = BifrostConfig::from_json(
            r#"{"plugins": [{"name": "mocker", "enabled": true, "config": {"rules": 3}}]}"#,
        )
        .unwrap();
        let Err(e) = PluginRegistry::builtin().build(&bad) else {
            panic!("a bad config block must stop startup")
        };
        assert!(e.to_string().starts_with("plugins[mocker].config"), "{e}");
        assert_eq!(PluginRegistry::empty().names().count(), 0);
    }
}
