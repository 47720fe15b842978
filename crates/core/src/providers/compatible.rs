//! The OpenAI-compatible family: which built-in provider speaks which [`Dialect`], the
//! generic kind for self-hosted servers (custom providers, SGLang, vLLM), and Parasail, which has
//! no differences beyond its URL.
//!
//! A custom provider (`custom_provider_config`) is built here from its base provider's
//! dialect, then narrowed by `allowed_requests`, `is_key_less` and `request_path_overrides`.

use crate::providers::pool::HttpClient;
use http::HeaderMap;

use super::openai::{self, Auth, Dialect, OpenAIProvider, Operations};
use super::{
    SetupError, cerebras, deepseek, fireworks, groq, huggingface, mistral, nebius, ollama,
    openrouter, perplexity, xai,
};
use crate::config::{CustomProviderConfig, ProviderConfig};
use crate::schemas::{ProviderKey, RequestType};

/// A self-hosted OpenAI-compatible server (vLLM, SGLang, LM Studio, llama.cpp, …): OpenAI's
/// API at the configured `base_url`, which has no default.
pub const GENERIC: Dialect = Dialect {
    default_base_url: None,
    ..openai::DIALECT
};

/// Parasail: OpenAI's API at its own URL.
pub const PARASAIL: Dialect = Dialect {
    default_base_url: Some("https://api.parasail.io"),
    ..openai::DIALECT
};

/// The dialect of a built-in provider that speaks OpenAI's API; `None` for other APIs.
pub fn dialect_for(key: &ProviderKey) -> Option<Dialect> {
    Some(match key {
        ProviderKey::OpenAI => openai::DIALECT,
        ProviderKey::Mistral => mistral::DIALECT,
        ProviderKey::Groq => groq::DIALECT,
        ProviderKey::OpenRouter => openrouter::DIALECT,
        ProviderKey::Ollama => ollama::DIALECT,
        ProviderKey::Cerebras => cerebras::DIALECT,
        ProviderKey::Xai => xai::DIALECT,
        ProviderKey::Perplexity => perplexity::DIALECT,
        ProviderKey::Parasail => PARASAIL,
        ProviderKey::Sgl | ProviderKey::Vllm => GENERIC,
        ProviderKey::DeepSeek => deepseek::DIALECT,
        ProviderKey::Fireworks => fireworks::DIALECT,
        ProviderKey::HuggingFace => huggingface::DIALECT,
        ProviderKey::Nebius => nebius::DIALECT,
        _ => return None,
    })
}

/// Builds the provider named `key` speaking `dialect`, at the configured `base_url` or the
/// dialect's default, with a custom provider's restrictions applied.
pub fn build(
    key: &ProviderKey,
    cfg: &ProviderConfig,
    dialect: Dialect,
    client: impl Into<HttpClient>,
    headers: HeaderMap,
) -> Result<OpenAIProvider, SetupError> {
    let base_url = cfg
        .network_config
        .base_url
        .as_deref()
        .or(dialect.default_base_url)
        .ok_or_else(|| {
            SetupError::Invalid(format!(
                "network_config.base_url is required for provider {key}"
            ))
        })?;
    let mut p = OpenAIProvider::with_dialect(key.clone(), client, base_url, headers, dialect);
    if let Some(custom) = custom_config(key, cfg) {
        let d = p.dialect_mut();
        d.supports = restrict(d.supports, custom);
        if custom.is_key_less {
            d.auth = Auth::None;
        }
        for (name, path) in &custom.request_path_overrides {
            p.override_path(request_type(name)?, base_url, path);
        }
    }
    Ok(p)
}

/// The custom provider settings of `key`, if it is a custom provider.
pub(crate) fn custom_config<'a>(
    key: &ProviderKey,
    cfg: &'a ProviderConfig,
) -> Option<&'a CustomProviderConfig> {
    cfg.custom_provider_config
        .as_ref()
        .filter(|_| !key.is_known())
}

/// `ops` minus what a custom provider's `allowed_requests` leaves out.
pub(crate) fn restrict(ops: Operations, custom: &CustomProviderConfig) -> Operations {
    let allows = |t: RequestType| custom.allows(t.as_str());
    Operations {
        chat: ops.chat && allows(RequestType::ChatCompletion),
        chat_stream: ops.chat_stream && allows(RequestType::ChatCompletionStream),
        tools: ops.tools,
        text_completion: ops.text_completion && allows(RequestType::TextCompletion),
        embeddings: ops.embeddings && allows(RequestType::Embedding),
        list_models: ops.list_models && allows(RequestType::ListModels),
    }
}

/// Parses a request type name of `request_path_overrides`.
pub(crate) fn request_type(name: &str) -> Result<RequestType, SetupError> {
    [
        RequestType::ChatCompletion,
        RequestType::ChatCompletionStream,
        RequestType::TextCompletion,
        RequestType::Embedding,
        RequestType::ListModels,
    ]
    .into_iter()
    .find(|t| t.as_str() == name)
    .ok_or_else(|| {
        SetupError::Invalid(format!(
            "custom_provider_config.request_path_overrides: unknown request type {name:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BifrostConfig;

    fn provider(json: &str, name: &str) -> OpenAIProvider {
        let cfg = BifrostConfig::from_json(json).unwrap();
        let key = ProviderKey::parse(name);
        let pc = &cfg.providers[name];
        let dialect = dialect_for(&pc.base_provider(&key)).unwrap();
        build(&key, pc, dialect, reqwest::Client::new(), HeaderMap::new()).unwrap()
    }

    #[test]
    fn every_compatible_provider_has_a_default_url_except_self_hosted_ones() {
        for key in crate::schemas::KNOWN_PROVIDERS {
            let Some(d) = dialect_for(key) else { continue };
            assert_eq!(
                d.default_base_url.is_none(),
                matches!(key, ProviderKey::Sgl | ProviderKey::Vllm),
                "{key}"
            );
        }
        assert!(dialect_for(&ProviderKey::Anthropic).is_none());
        assert!(dialect_for(&ProviderKey::parse("my-vllm")).is_none());
    }

    #[test]
    fn custom_provider_restrictions_apply() {
        let p = provider(
            r#"{"providers": {"my-vllm": {
                "custom_provider_config": {"base_provider_type": "openai", "is_key_less": true,
                    "allowed_requests": {"chat_completion": true, "chat_completion_stream": true},
                    "request_path_overrides": {"chat_completion": "/api/chat"}},
                "network_config": {"base_url": "http://h:8000/v1"}}}}"#,
            "my-vllm",
        );
        let d = *p.dialect();
        assert_eq!(d.auth, Auth::None);
        assert!(d.supports.chat && d.supports.chat_stream);
        assert!(!d.supports.embeddings && !d.supports.list_models && !d.supports.text_completion);
        assert_eq!(p.urls()[0], "http://h:8000/api/chat");
        assert_eq!(p.urls()[2], "http://h:8000/v1/embeddings");
    }

    #[test]
    fn unknown_override_names_fail_setup() {
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {"x": {"custom_provider_config": {"base_provider_type": "openai",
                "request_path_overrides": {"chat": "/c"}}, "network_config": {"base_url": "http://h"}}}}"#,
        )
        .unwrap();
        let key = ProviderKey::parse("x");
        let e = build(
            &key,
            &cfg.providers["x"],
            openai::DIALECT,
            reqwest::Client::new(),
            HeaderMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("request_path_overrides"), "{e}");
    }
}
