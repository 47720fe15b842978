//! Azure OpenAI (`azure`): OpenAI's wire format behind per-resource endpoints and
//! per-model deployments.
//!
//! Each key carries `azure_key_config {endpoint, deployments: {model: deployment},
//! api_version}` (Bifrost's older provider-level `meta_config` is moved into the keys when
//! the config loads). A request for model `M` goes to
//! `{endpoint}/openai/deployments/{deployments[M] or M}/chat/completions?api-version=…`
//! (also `/completions` and `/embeddings`) with the key in the `api-key` header; the body is
//! OpenAI's, `model` included (Azure ignores it and routes by deployment). A key whose
//! deployments map is non-empty only serves the models in it (see
//! [`ResolvedKey::allows`](crate::config::ResolvedKey::allows)).
//!
//! Listing models returns the configured deployments' model names, without a network call,
//! because those are the names this gateway accepts; with no deployments configured it asks
//! Azure (`GET {endpoint}/openai/models?api-version=…`).

use crate::providers::pool::HttpClient;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use http::HeaderMap;
use serde_json::Value;

use super::openai::{self, Auth, Dialect, OpenAIProvider};
use super::{CallOptions, Provider, ResponseStream};
use crate::config::{AZURE_KEY_CONFIG, ProviderConfig};
use crate::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ModelInfo, ModelList, ProviderKey,
};

/// `api-version` used when a key does not set one (Bifrost's default).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// Azure's dialect: the key in `api-key`, URLs built per request.
const DIALECT: Dialect = Dialect {
    default_base_url: None,
    auth: Auth::Header("api-key"),
    ..openai::DIALECT
};

/// The Azure OpenAI provider.
#[derive(Debug)]
pub struct AzureProvider {
    key: ProviderKey,
    /// Sends and parses like OpenAI; its own URLs are never used (Azure's depend on the key).
    inner: OpenAIProvider,
    /// Model names of every configured deployment, sorted, for listing.
    deployed: Vec<String>,
}

/// Which Azure route a request goes to.
#[derive(Clone, Copy)]
enum Route {
    Chat,
    Completions,
    Embeddings,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Self::Chat => "chat/completions",
            Self::Completions => "completions",
            Self::Embeddings => "embeddings",
        }
    }
}

impl AzureProvider {
    /// Creates the provider; `cfg` supplies the deployments listed by `list_models`.
    pub fn new(
        key: ProviderKey,
        client: impl Into<HttpClient>,
        headers: HeaderMap,
        cfg: &ProviderConfig,
    ) -> Self {
        let configs = cfg
            .keys
            .iter()
            .filter_map(|k| k.provider_config.get(AZURE_KEY_CONFIG))
            .chain(cfg.meta_config.as_ref());
        let deployed: BTreeSet<String> = configs
            .filter_map(|c| c.get("deployments")?.as_object())
            .flat_map(|d| d.keys().cloned())
            .collect();
        Self {
            inner: OpenAIProvider::with_dialect(
                key.clone(),
                client,
                "https://azure.invalid",
                headers,
                DIALECT,
            ),
            key,
            deployed: deployed.into_iter().collect(),
        }
    }

    /// The key's endpoint (without a trailing `/` or `/openai`) and API version.
    fn endpoint<'a>(&self, opts: &CallOptions<'a>) -> Result<(&'a str, &'a str), BifrostError> {
        let Some(key) = opts.key else {
            return Err(config_error(format!(
                "provider {} needs a key with azure_key_config",
                self.key
            )));
        };
        let az = key.provider_config.get(AZURE_KEY_CONFIG);
        let setting = |name: &str| az.and_then(|c| c.get(name)).and_then(Value::as_str);
        let endpoint = match setting("endpoint") {
            Some(e) if e.starts_with("env.") => {
                return Err(config_error(format!(
                    "{AZURE_KEY_CONFIG}.endpoint of key {}: environment variable {} is not set",
                    key.id,
                    &e[4..]
                )));
            }
            Some(e) if !e.is_empty() => e,
            _ => {
                return Err(config_error(format!(
                    "{AZURE_KEY_CONFIG}.endpoint is not set for key {} of provider {}",
                    key.id, self.key
                )));
            }
        };
        let endpoint = endpoint.trim_end_matches('/');
        let endpoint = endpoint.strip_suffix("/openai").unwrap_or(endpoint);
        let api_version = setting("api_version")
            .filter(|v| !v.is_empty() && !v.starts_with("env."))
            .unwrap_or(DEFAULT_API_VERSION);
        Ok((endpoint, api_version))
    }

    /// `{endpoint}/openai/deployments/{deployment}/{route}?api-version=…` for `model`.
    fn url(
        &self,
        opts: &CallOptions<'_>,
        model: &str,
        route: Route,
    ) -> Result<String, BifrostError> {
        let (endpoint, api_version) = self.endpoint(opts)?;
        let deployment = match opts.key.map(|k| k.deployment(model)) {
            Some(Some(Some(d))) => d,
            Some(Some(None)) | None => model,
            Some(None) => {
                return Err(BifrostError::invalid_param(
                    "model",
                    format!("no keys found that support model/deployment: {model}"),
                ));
            }
        };
        Ok(format!(
            "{endpoint}/openai/deployments/{}/{}?api-version={}",
            encode_segment(deployment),
            route.path(),
            encode_segment(api_version)
        ))
    }
}

impl Provider for AzureProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let url = self.url(&opts, &req.model, Route::Chat)?;
        self.inner.chat_at(&url, req, opts).await
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        let url = self.url(&opts, &req.model, Route::Chat)?;
        self.inner.chat_stream_at(&url, req, opts).await
    }

    async fn text_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let url = self.url(&opts, &req.model, Route::Completions)?;
        self.inner.text_at(&url, req, opts).await
    }

    async fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let url = self.url(&opts, &req.model, Route::Embeddings)?;
        self.inner.embedding_at(&url, req, opts).await
    }

    async fn list_models(&self, opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        if !self.deployed.is_empty() {
            return Ok(ModelList {
                object: "list".into(),
                data: self
                    .deployed
                    .iter()
                    .map(|m| ModelInfo {
                        id: format!("{}/{m}", self.key),
                        object: "model".into(),
                        created: 0,
                        owned_by: "azure".into(),
                    })
                    .collect(),
            });
        }
        let (endpoint, api_version) = self.endpoint(&opts)?;
        let url = format!(
            "{endpoint}/openai/models?api-version={}",
            encode_segment(api_version)
        );
        self.inner.list_models_at(&url, opts).await
    }
}

/// A configuration problem found at request time (500; another provider may still answer).
fn config_error(message: String) -> BifrostError {
    BifrostError::gateway(500, "configuration_error", message)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, for a path segment or
/// query value taken from configuration.
fn encode_segment(s: &str) -> std::borrow::Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if s.bytes().all(unreserved) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BifrostConfig, ResolvedKey};
    use std::time::Duration;

    fn setup(json: &str) -> (AzureProvider, Vec<ResolvedKey>) {
        let cfg = BifrostConfig::from_json(json).unwrap();
        let pc = &cfg.providers["azure"];
        let keys = pc
            .keys
            .iter()
            .enumerate()
            .filter_map(|(i, k)| k.resolve("azure", i))
            .collect();
        let p = AzureProvider::new(
            ProviderKey::Azure,
            reqwest::Client::new(),
            HeaderMap::new(),
            pc,
        );
        (p, keys)
    }

    fn opts(key: &ResolvedKey) -> CallOptions<'_> {
        CallOptions {
            key: Some(key),
            extra_headers: &[],
            raw_response: false,
            wire_body: false,
            timeout: Duration::from_secs(1),
            native: None,
        }
    }

    #[test]
    fn urls_use_the_deployment_and_api_version() {
        let (p, keys) = setup(
            r#"{"providers": {"azure": {"keys": [
                {"value": "k", "azure_key_config": {"endpoint": "https://res.openai.azure.com/",
                    "deployments": {"gpt-4o": "prod 4o"}}},
                {"value": "k2", "azure_key_config": {"endpoint": "https://other/openai",
                    "api_version": "2025-01-01-preview"}}]}}}"#,
        );
        assert_eq!(
            p.url(&opts(&keys[0]), "gpt-4o", Route::Chat).unwrap(),
            "https://res.openai.azure.com/openai/deployments/prod%204o/chat/completions?api-version=2024-10-21"
        );
        let e = p.url(&opts(&keys[0]), "gpt-35", Route::Chat).unwrap_err();
        assert!(e.error.message.contains("model/deployment: gpt-35"), "{e}");
        assert_eq!(
            p.url(&opts(&keys[1]), "text-embedding-3-small", Route::Embeddings)
                .unwrap(),
            "https://other/openai/deployments/text-embedding-3-small/embeddings?api-version=2025-01-01-preview"
        );
        assert_eq!(p.deployed, ["gpt-4o"]);
    }

    #[test]
    fn unset_endpoint_variable_is_named() {
        let (p, keys) = setup(
            r#"{"providers": {"azure": {"keys": [{"value": "k",
                "azure_key_config": {"endpoint": "env.BIFROST_TEST_SURELY_UNSET_AZURE"}}]}}}"#,
        );
        let e = p.url(&opts(&keys[0]), "m", Route::Chat).unwrap_err();
        assert!(
            e.error.message.contains("azure_key_config.endpoint")
                && e.error.message.contains("BIFROST_TEST_SURELY_UNSET_AZURE"),
            "{e}"
        );
        assert_eq!(e.http_status(), 500);
    }
}
