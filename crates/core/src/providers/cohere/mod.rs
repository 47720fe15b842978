//! Cohere (`cohere`), v2 API: `POST /v2/chat` (also streamed), `POST /v2/embed`,
//! `GET /v1/models`, bearer auth. There is no legacy text completion.
//!
//! Requests are translated from the unified (OpenAI) shape in [`request`], answers back in
//! [`response`] and [`stream`]. Errors keep Cohere's own `{"message": …}` and status.
//!
//! Mapped parameters: `temperature`, `top_p` → `p`, `top_k` → `k`, `max_completion_tokens` /
//! `max_tokens` → `max_tokens`, `stop` → `stop_sequences`, `seed`, the penalties,
//! `response_format` (`json_schema` → `json_object` + `json_schema`), `logprobs`, `tools`,
//! `tool_choice` (`none` → `NONE`, `required` or a named function → `REQUIRED`), a tool's
//! `strict` → `strict_tools`. Cohere-only parameters (`safety_mode`, `documents`,
//! `citation_options`, `thinking`, …) pass through; OpenAI-only ones Cohere lacks (`n`,
//! `logit_bias`, `top_logprobs`, `parallel_tool_calls`, `user`, `stream_options`,
//! `service_tier`, `store`) are not sent. Embeddings take `input_type` from the request's
//! extra parameters (default `search_document`) and always ask for float vectors.

mod request;
mod response;
mod stream;

use crate::providers::pool::HttpClient;
use http::HeaderMap;

use super::openai::{self, Auth, Dialect, OpenAIProvider, Operations, join_url};
use super::{CallOptions, Provider, ResponseStream, SetupError, compatible, normalize_base_url};
use crate::config::ProviderConfig;
use crate::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ModelList, ProviderKey, RequestType,
};

/// Cohere's API root.
pub const DEFAULT_BASE_URL: &str = "https://api.cohere.com";

/// What Cohere offers through this gateway.
const SUPPORTS: Operations = Operations {
    text_completion: false,
    ..Operations::ALL
};

/// Only the transport part of a dialect is used (bearer auth); Cohere's bodies are its own.
const TRANSPORT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    ..openai::DIALECT
};

/// The Cohere provider.
#[derive(Debug)]
pub struct CohereProvider {
    key: ProviderKey,
    /// Sends requests (headers, auth, timeouts, error mapping) the way every provider does.
    http: OpenAIProvider,
    chat_url: String,
    embed_url: String,
    models_url: String,
    supports: Operations,
}

impl CohereProvider {
    /// Creates the provider at the configured base URL (with or without `/v1` or `/v2`) or
    /// Cohere's; a custom provider on this base gets its restrictions and path overrides.
    pub fn new(
        key: ProviderKey,
        client: impl Into<HttpClient>,
        headers: HeaderMap,
        cfg: &ProviderConfig,
    ) -> Result<Self, SetupError> {
        let base = cfg
            .network_config
            .base_url
            .as_deref()
            .unwrap_or(DEFAULT_BASE_URL);
        let root = normalize_base_url(&normalize_base_url(base, "/v2"), "/v1");
        let mut dialect = TRANSPORT;
        let mut supports = SUPPORTS;
        let mut chat_url = format!("{root}/v2/chat");
        let mut embed_url = format!("{root}/v2/embed");
        let mut models_url = format!("{root}/v1/models?page_size=1000");
        if let Some(custom) = compatible::custom_config(&key, cfg) {
            supports = compatible::restrict(SUPPORTS, custom);
            if custom.is_key_less {
                dialect.auth = Auth::None;
            }
            for (name, path) in &custom.request_path_overrides {
                let url = join_url(&root, path);
                match compatible::request_type(name)? {
                    RequestType::ChatCompletion | RequestType::ChatCompletionStream => {
                        chat_url = url;
                    }
                    RequestType::Embedding => embed_url = url,
                    RequestType::ListModels => models_url = url,
                    RequestType::TextCompletion => {}
                }
            }
        }
        Ok(Self {
            http: OpenAIProvider::with_dialect(key.clone(), client, &root, headers, dialect),
            key,
            chat_url,
            embed_url,
            models_url,
            supports,
        })
    }

    fn unsupported(&self, operation: &str) -> BifrostError {
        BifrostError::unsupported_operation(&self.key, operation)
    }

    /// POSTs `body` and reads the whole answer.
    async fn post<B: serde::Serialize>(
        &self,
        url: &str,
        body: &B,
        opts: CallOptions<'_>,
    ) -> Result<bytes::Bytes, BifrostError> {
        let resp = self.http.post_json(url, body, opts).await?;
        resp.bytes()
            .await
            .map_err(|e| openai::transport_error(&self.key, e))
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BifrostError> {
        serde_json::from_slice(bytes).map_err(|e| {
            BifrostError::bad_upstream_response(format!("cannot parse {} response: {e}", self.key))
        })
    }
}

impl Provider for CohereProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if !self.supports.chat {
            return Err(self.unsupported("chat completion"));
        }
        let body = request::chat_request(&self.key, req, false)?;
        let bytes = self.post(&self.chat_url, &body, opts).await?;
        let parsed: response::ChatResponse = self.parse(&bytes)?;
        let mut out = parsed.into_bifrost(&req.model);
        if opts.raw_response {
            out.extra_fields.raw_response = serde_json::from_slice(&bytes).ok();
        }
        Ok(out)
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        if !self.supports.chat_stream {
            return Err(self.unsupported("streaming chat completion"));
        }
        let body = request::chat_request(&self.key, req, true)?;
        let resp = self.http.post_json(&self.chat_url, &body, opts).await?;
        Ok(stream::chat_stream(resp, &req.model))
    }

    async fn text_completion(
        &self,
        _req: &BifrostRequest,
        _opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        Err(self.unsupported("text completion"))
    }

    async fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if !self.supports.embeddings {
            return Err(self.unsupported("embeddings"));
        }
        let body = request::embed_request(&self.key, req)?;
        let bytes = self.post(&self.embed_url, &body, opts).await?;
        let parsed: response::EmbedResponse = self.parse(&bytes)?;
        let base64 = req.params.encoding_format.as_deref() == Some("base64");
        let mut out = parsed.into_bifrost(&req.model, base64);
        if opts.raw_response {
            out.extra_fields.raw_response = serde_json::from_slice(&bytes).ok();
        }
        Ok(out)
    }

    async fn list_models(&self, opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        if !self.supports.list_models {
            return Err(self.unsupported("listing models"));
        }
        let bytes = self
            .http
            .get(&self.models_url, opts)
            .await?
            .bytes()
            .await
            .map_err(|e| openai::transport_error(&self.key, e))?;
        let parsed: response::ModelsResponse = self.parse(&bytes)?;
        Ok(parsed.into_list(&self.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BifrostConfig;

    #[test]
    fn urls_accept_a_versioned_base_and_custom_overrides() {
        let cfg = BifrostConfig::from_json(
            r#"{"providers": {
                "cohere": {"keys": [{"value": "k"}], "network_config": {"base_url": "http://h/v2/"}},
                "my-cohere": {"custom_provider_config": {"base_provider_type": "cohere",
                    "allowed_requests": {"chat_completion": true},
                    "request_path_overrides": {"chat_completion": "/compat/chat"}},
                    "network_config": {"base_url": "http://c"}}}}"#,
        )
        .unwrap();
        let p = CohereProvider::new(
            ProviderKey::Cohere,
            reqwest::Client::new(),
            HeaderMap::new(),
            &cfg.providers["cohere"],
        )
        .unwrap();
        assert_eq!(p.chat_url, "http://h/v2/chat");
        assert_eq!(p.embed_url, "http://h/v2/embed");
        assert_eq!(p.models_url, "http://h/v1/models?page_size=1000");
        assert_eq!(p.supports, SUPPORTS);
        let key = ProviderKey::parse("my-cohere");
        let c = CohereProvider::new(
            key,
            reqwest::Client::new(),
            HeaderMap::new(),
            &cfg.providers["my-cohere"],
        )
        .unwrap();
        assert_eq!(c.chat_url, "http://c/compat/chat");
        assert!(c.supports.chat && !c.supports.chat_stream && !c.supports.embeddings);
    }
}
