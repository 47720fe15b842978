//! Startup shared by the binaries: the config file and flags merged, ignored config blocks
//! named, and the engine built with the registry's plugins.

use std::path::PathBuf;

use bifrost_core::config::PluginConfig;
use bifrost_core::{Bifrost, BifrostConfig, InitError, PluginInitError};

use crate::cli::Cli;
use crate::plugins::PluginRegistry;

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The config file is unreadable or invalid.
    #[error("loading {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: bifrost_core::config::ConfigError,
    },
    /// A plugin rejected its config block.
    #[error(transparent)]
    Plugin(#[from] PluginInitError),
    /// A provider could not be set up.
    #[error(transparent)]
    Engine(#[from] InitError),
}

/// Loads the configuration the flags point to (`-config`, else `<app-dir>/config.json`,
/// else providers from `*_API_KEY` variables), then applies the flag overrides.
pub fn load_config(cli: &Cli) -> Result<BifrostConfig, StartupError> {
    let path = cli.config.clone().or_else(|| {
        let p = cli.app_dir.join("config.json");
        p.exists().then_some(p)
    });
    let mut cfg = match path {
        Some(p) => {
            let cfg = BifrostConfig::load(&p).map_err(|source| StartupError::Config {
                path: p.clone(),
                source,
            })?;
            tracing::info!(config = %p.display(), providers = cfg.providers.len(), "configuration loaded");
            for (block, what) in cfg.ignored_blocks() {
                tracing::warn!(
                    block,
                    "config block `{block}` ignored: not implemented in this build ({what})"
                );
            }
            cfg
        }
        None => {
            let cfg = BifrostConfig::from_env_keys();
            let names: Vec<&str> = cfg.providers.keys().map(String::as_str).collect();
            tracing::info!(
                providers = ?names,
                "no config.json found; providers detected from *_API_KEY environment variables"
            );
            cfg
        }
    };
    apply_flags(cli, &mut cfg);
    // Bifrost's `logs_store` block turns request logging on; SQLite paths go under the app dir.
    bifrost_plugin_logging::apply_logs_store(&mut cfg, &cli.app_dir);
    // Bifrost's top-level `mcp` block (client configs) turns the MCP plugin on.
    bifrost_plugin_mcp::apply_mcp_block(&mut cfg);
    Ok(cfg)
}

/// The flags that override config values.
fn apply_flags(cli: &Cli, cfg: &mut BifrostConfig) {
    if let Some(n) = cli.pool_size {
        cfg.client.initial_pool_size = n;
    }
    if let Some(d) = cli.drop_excess_requests {
        cfg.client.drop_excess_requests = d;
    }
    if let Some(p) = cli.grpc_port {
        cfg.grpc.port = Some(p);
    }
    for label in &cli.prometheus_labels {
        let label = label.trim().to_lowercase();
        if !label.is_empty() && !cfg.client.prometheus_labels.contains(&label) {
            cfg.client.prometheus_labels.push(label);
        }
    }
    for name in &cli.plugins {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        match cfg.plugins.iter_mut().find(|p| p.name == name) {
            Some(p) => p.enabled = true,
            None => cfg.plugins.push(PluginConfig {
                name: name.to_owned(),
                enabled: true,
                config: serde_json::Value::Null,
            }),
        }
    }
}

/// The engine for `cfg`, with the enabled plugins `registry` can build, in config order.
pub fn build_engine(
    cfg: &BifrostConfig,
    registry: &PluginRegistry,
) -> Result<Bifrost, StartupError> {
    let mut builder = Bifrost::builder(cfg.clone());
    for p in registry.build(cfg)? {
        builder = builder.plugin(p);
    }
    Ok(builder.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_with_env(
            std::iter::once("bifrost")
                .chain(args.iter().copied())
                .map(String::from),
            |_| None,
        )
        .unwrap()
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"client": {"initial_pool_size": 10, "prometheus_labels": ["team"]},
                "grpc": {"port": 1234},
                "plugins": [{"name": "mocker", "enabled": false, "config": {"enabled": true}}]}"#,
        )
        .unwrap();
        let c = cli(&[
            "-config",
            path.to_str().unwrap(),
            "-pool-size",
            "7",
            "-grpc-port",
            "50051",
            "-plugins",
            "mocker",
            "-prometheus-labels",
            "Team,env",
        ]);
        let cfg = load_config(&c).unwrap();
        assert_eq!(cfg.client.initial_pool_size, 7);
        assert_eq!(cfg.grpc.port, Some(50051));
        assert!(cfg.plugins[0].enabled);
        assert_eq!(cfg.client.prometheus_labels, ["team", "env"]);
        let engine = build_engine(&cfg, &PluginRegistry::builtin()).unwrap();
        assert_eq!(engine.plugins().len(), 1);
        // Without the flag the file's port stays.
        let cfg = load_config(&cli(&["-config", path.to_str().unwrap()])).unwrap();
        assert_eq!(cfg.grpc.port, Some(1234));
        let e = load_config(&cli(&["-config", "/nonexistent/config.json"])).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/config.json"), "{e}");
    }
}
