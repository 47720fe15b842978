//! Provider identifiers.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Names a model provider, as written in `config.json` keys and in `"provider/model"` strings.
///
/// Known providers are enum variants so that matching and metric labels cost nothing; any other
/// name is kept as `Custom` because a request may name a provider that only a plugin answers
/// (the demo's `mock/*` models) or that a later release supports.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKey {
    /// OpenAI (`openai`).
    OpenAI,
    /// Azure OpenAI (`azure`).
    Azure,
    /// Anthropic (`anthropic`).
    Anthropic,
    /// AWS Bedrock (`bedrock`).
    Bedrock,
    /// Cohere (`cohere`).
    Cohere,
    /// Google Vertex AI (`vertex`).
    Vertex,
    /// Mistral (`mistral`).
    Mistral,
    /// Ollama (`ollama`).
    Ollama,
    /// Groq (`groq`).
    Groq,
    /// SGLang (`sgl`).
    Sgl,
    /// Parasail (`parasail`).
    Parasail,
    /// Cerebras (`cerebras`).
    Cerebras,
    /// Google Gemini API (`gemini`).
    Gemini,
    /// OpenRouter (`openrouter`).
    OpenRouter,
    /// Perplexity (`perplexity`).
    Perplexity,
    /// xAI (`xai`).
    Xai,
    /// DeepSeek (`deepseek`).
    DeepSeek,
    /// Fireworks AI (`fireworks`).
    Fireworks,
    /// Hugging Face Inference Providers router (`huggingface`).
    HuggingFace,
    /// Nebius AI Studio (`nebius`).
    Nebius,
    /// A vLLM server (`vllm`): OpenAI's API at the configured `base_url`.
    Vllm,
    /// Any other name.
    Custom(Arc<str>),
}

/// Every provider name Bifrost knows, in its spelling; `config.json` accepts exactly these.
pub const KNOWN_PROVIDERS: &[ProviderKey] = &[
    ProviderKey::OpenAI,
    ProviderKey::Azure,
    ProviderKey::Anthropic,
    ProviderKey::Bedrock,
    ProviderKey::Cohere,
    ProviderKey::Vertex,
    ProviderKey::Mistral,
    ProviderKey::Ollama,
    ProviderKey::Groq,
    ProviderKey::Sgl,
    ProviderKey::Parasail,
    ProviderKey::Cerebras,
    ProviderKey::Gemini,
    ProviderKey::OpenRouter,
    ProviderKey::Perplexity,
    ProviderKey::Xai,
    ProviderKey::DeepSeek,
    ProviderKey::Fireworks,
    ProviderKey::HuggingFace,
    ProviderKey::Nebius,
    ProviderKey::Vllm,
];

/// Provider names current Bifrost accepts that this build does not serve: `config.json`
/// naming one stops startup with a message saying so (rather than "unknown provider").
pub const NOT_IN_THIS_BUILD: &[&str] = &[
    "bedrock_mantle",
    "opencode-go",
    "opencode-zen",
    "elevenlabs",
    "replicate",
    "runway",
    "runware",
    "sarvam",
    "wafer",
    "github-copilot",
    "databricks",
    "typesafe",
];

impl ProviderKey {
    /// The provider's wire name, e.g. `"openai"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Custom(name) => name,
            known => known.static_name().unwrap_or_default(),
        }
    }

    /// The wire name of a known provider as a `&'static str` (free to use as a metric label);
    /// `None` for `Custom`.
    pub fn static_name(&self) -> Option<&'static str> {
        Some(match self {
            Self::OpenAI => "openai",
            Self::Azure => "azure",
            Self::Anthropic => "anthropic",
            Self::Bedrock => "bedrock",
            Self::Cohere => "cohere",
            Self::Vertex => "vertex",
            Self::Mistral => "mistral",
            Self::Ollama => "ollama",
            Self::Groq => "groq",
            Self::Sgl => "sgl",
            Self::Parasail => "parasail",
            Self::Cerebras => "cerebras",
            Self::Gemini => "gemini",
            Self::OpenRouter => "openrouter",
            Self::Perplexity => "perplexity",
            Self::Xai => "xai",
            Self::DeepSeek => "deepseek",
            Self::Fireworks => "fireworks",
            Self::HuggingFace => "huggingface",
            Self::Nebius => "nebius",
            Self::Vllm => "vllm",
            Self::Custom(_) => return None,
        })
    }

    /// Parses a provider name; never fails, unknown names become `Custom`.
    pub fn parse(name: &str) -> Self {
        KNOWN_PROVIDERS
            .iter()
            .find(|p| p.as_str() == name)
            .cloned()
            .unwrap_or_else(|| Self::Custom(Arc::from(name)))
    }

    /// True for the names Bifrost knows (not `Custom`).
    pub fn is_known(&self) -> bool {
        !matches!(self, Self::Custom(_))
    }

    /// True when the provider may run without an API key: local servers, and custom providers
    /// (`custom_provider_config`), which are mostly self-hosted (vLLM, SGLang, LM Studio).
    /// Configured keys are still used when present. Bedrock without keys uses the AWS
    /// credentials of the environment (`AWS_ACCESS_KEY_ID`, …).
    pub fn is_keyless(&self) -> bool {
        matches!(
            self,
            Self::Ollama | Self::Sgl | Self::Vllm | Self::Bedrock | Self::Custom(_)
        )
    }

    /// The environment variable a zero-config start reads this provider's key from.
    pub fn api_key_env(&self) -> Option<&'static str> {
        Some(match self {
            Self::OpenAI => "OPENAI_API_KEY",
            Self::Anthropic => "ANTHROPIC_API_KEY",
            Self::Mistral => "MISTRAL_API_KEY",
            Self::Groq => "GROQ_API_KEY",
            Self::Cerebras => "CEREBRAS_API_KEY",
            Self::Gemini => "GEMINI_API_KEY",
            Self::OpenRouter => "OPENROUTER_API_KEY",
            Self::Perplexity => "PERPLEXITY_API_KEY",
            Self::Xai => "XAI_API_KEY",
            Self::Cohere => "COHERE_API_KEY",
            Self::DeepSeek => "DEEPSEEK_API_KEY",
            Self::Fireworks => "FIREWORKS_API_KEY",
            Self::HuggingFace => "HUGGINGFACE_API_KEY",
            Self::Nebius => "NEBIUS_API_KEY",
            _ => return None,
        })
    }
}

impl fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProviderKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProviderKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_known_and_custom_names() {
        for p in KNOWN_PROVIDERS {
            assert_eq!(&ProviderKey::parse(p.as_str()), p);
        }
        let custom = ProviderKey::parse("mock");
        assert!(!custom.is_known());
        assert_eq!(serde_json::to_string(&custom).unwrap(), "\"mock\"");
        let back: ProviderKey = serde_json::from_str("\"openrouter\"").unwrap();
        assert_eq!(back, ProviderKey::OpenRouter);
    }
}
