//! `env.VAR` references: secrets live in the environment, never in the file or in logs.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::KeyConfig;

/// A key whose value has been resolved; `Debug` never prints the secret.
#[derive(Clone)]
pub struct ResolvedKey {
    /// Stable id for logs/metrics: the configured id or name, else `key-<index>`. Shared, so
    /// a request's context can name its key without a copy.
    pub id: std::sync::Arc<str>,
    /// The secret.
    pub value: String,
    /// Models this key may serve; empty = all.
    pub models: Vec<String>,
    /// Relative weight.
    pub weight: f64,
    /// Provider-specific settings of this key (`azure_key_config`, `bedrock_key_config`, …),
    /// with `env.VAR` string values resolved.
    pub provider_config: BTreeMap<String, Value>,
}

impl std::fmt::Debug for ResolvedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedKey")
            .field("id", &self.id)
            .field("value", &"<redacted>")
            .field("models", &self.models)
            .field("weight", &self.weight)
            .finish()
    }
}

impl ResolvedKey {
    /// Whether this key may serve `model`: `models` allows it (empty = all) and, for keys
    /// with a non-empty `deployments` map (Azure, Bedrock), the model is one of its keys,
    /// because such a key can only reach the models deployed behind it.
    pub fn allows(&self, model: &str) -> bool {
        (self.models.is_empty() || self.models.iter().any(|m| m == model))
            && self.deployment(model).is_some()
    }

    /// The deployment `model` maps to: `Some(Some(name))` when a deployments map lists it,
    /// `Some(None)` when this key has no deployments map (the model name is used as is),
    /// `None` when a non-empty map does not list it.
    pub fn deployment(&self, model: &str) -> Option<Option<&str>> {
        let maps = DEPLOYMENT_CONFIGS.iter().filter_map(|c| {
            self.provider_config
                .get(*c)?
                .get("deployments")?
                .as_object()
                .filter(|m| !m.is_empty())
        });
        let mut found = None;
        for map in maps {
            found = Some(map.get(model)?.as_str()?);
        }
        Some(found)
    }
}

/// Key settings whose `deployments` map restricts which models a key serves.
const DEPLOYMENT_CONFIGS: [&str; 2] = ["azure_key_config", "bedrock_key_config"];

/// Resolves `env.VAR` to the variable's value; other strings are returned as they are.
/// `Err(var)` names a variable that is unset or empty.
pub fn resolve_env(value: &str) -> Result<String, String> {
    match value.strip_prefix("env.") {
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(var.to_owned()),
        },
        None => Ok(value.to_owned()),
    }
}

/// Resolves `env.VAR` strings anywhere inside a JSON value; unset variables stay as written
/// (the provider then reports the missing setting by name).
fn resolve_env_in(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(resolve_env(s).unwrap_or_else(|_| s.clone())),
        Value::Array(a) => Value::Array(a.iter().map(resolve_env_in).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), resolve_env_in(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl KeyConfig {
    /// Resolves the key; a key whose variable is unset is skipped with a warning naming the
    /// variable (not the value), as the caller may still have other keys.
    /// A Bedrock key with `bedrock_key_config` needs no `value` (its credentials are there).
    pub fn resolve(&self, provider: &str, index: usize) -> Option<ResolvedKey> {
        let value_optional = self.provider_config.contains_key("bedrock_key_config");
        match resolve_env(&self.value) {
            Ok(value) if !value.is_empty() || value_optional => Some(ResolvedKey {
                id: self
                    .id
                    .clone()
                    .or_else(|| self.name.clone())
                    .unwrap_or_else(|| format!("key-{index}"))
                    .into(),
                value,
                models: self.models.clone(),
                weight: self.weight,
                provider_config: self
                    .provider_config
                    .iter()
                    .map(|(k, v)| (k.clone(), resolve_env_in(v)))
                    .collect(),
            }),
            Ok(_) => {
                tracing::warn!(provider, key = index, "API key is empty; key skipped");
                None
            }
            Err(var) => {
                tracing::warn!(
                    provider,
                    key = index,
                    variable = %var,
                    "environment variable {var} is not set; key skipped"
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variable_is_reported_by_name() {
        assert_eq!(
            resolve_env("env.BIFROST_TEST_SURELY_UNSET_VAR"),
            Err("BIFROST_TEST_SURELY_UNSET_VAR".to_owned())
        );
        assert_eq!(resolve_env("sk-plain"), Ok("sk-plain".to_owned()));
        let k = KeyConfig {
            value: "env.BIFROST_TEST_SURELY_UNSET_VAR".into(),
            ..KeyConfig::default()
        };
        assert!(k.resolve("openai", 0).is_none());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let k = KeyConfig {
            value: "sk-secret".into(),
            ..KeyConfig::default()
        }
        .resolve("openai", 0)
        .unwrap();
        assert!(!format!("{k:?}").contains("sk-secret"));
    }
}
