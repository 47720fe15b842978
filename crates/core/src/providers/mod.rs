//! Providers: one module each behind the [`Provider`] trait; [`ProviderImpl`] is the dispatch table.
//!
//! Providers stay thin: they translate and send one attempt. Retries, fallbacks, key choice
//! and queueing live in the engine.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod cerebras;
pub mod cohere;
pub mod compatible;
pub mod deepseek;
pub mod fireworks;
pub mod gemini;
pub mod groq;
pub mod huggingface;
pub mod mistral;
pub mod native;
pub mod nebius;
pub mod ollama;
pub mod openai;
pub mod openrouter;
pub mod perplexity;
pub mod pool;
#[cfg(test)]
pub(crate) mod scripted;
mod sse;
pub mod xai;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use http::HeaderMap;

use self::pool::HttpClient;
use crate::config::{ProviderConfig, ProxyKind, ResolvedKey, resolve_env};
use crate::schemas::{BifrostError, BifrostRequest, BifrostResponse, ModelList, ProviderKey};

/// A stream of chunks; an `Err` item ends the stream with a typed error.
pub type ResponseStream = Pin<Box<dyn Stream<Item = Result<BifrostResponse, BifrostError>> + Send>>;

/// What one attempt needs besides the request: the chosen key and per-request extras.
#[derive(Debug, Clone, Copy)]
pub struct CallOptions<'a> {
    /// The key chosen for this request (`None` for keyless providers). Its
    /// `provider_config` holds per-key settings such as Azure's endpoint and deployments.
    pub key: Option<&'a ResolvedKey>,
    /// Headers to add to the upstream request (from `x-bf-eh-*` request headers).
    pub extra_headers: &'a [(String, String)],
    /// Attach the raw provider body to the response.
    pub raw_response: bool,
    /// The caller takes an OpenAI-shaped body as the upstream sent it and nothing needs the
    /// parsed answer (no plugin runs): an OpenAI-shaped provider may return it as
    /// [`BifrostResponse::wire_body`](crate::schemas::BifrostResponse::wire_body) with only
    /// ids and usage parsed, which spares parsing and re-encoding the rest.
    pub wire_body: bool,
    /// Timeout for the whole attempt (non-stream) or until the response headers (stream).
    pub timeout: Duration,
    /// The caller's original body when it came to a drop-in route in a provider's own
    /// dialect; a provider of that dialect sends it instead of a translation (see [`native`]).
    pub native: Option<&'a native::NativeRequest>,
}

/// A token count answered by a provider's counting endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenCount {
    /// Input tokens the request would use.
    pub input_tokens: u64,
    /// The provider's answer as sent, for routes that return it unchanged.
    pub raw: Option<serde_json::Value>,
}

impl CallOptions<'_> {
    /// The secret to send, or `""` for keyless providers.
    pub fn api_key(&self) -> &str {
        self.key.map_or("", |k| k.value.as_str())
    }
}

/// One provider's API. Each method sends exactly one attempt.
///
/// Methods return `impl Future` so dispatch through [`ProviderImpl`] needs no boxing.
pub trait Provider: Send + Sync {
    /// Chat completion, whole response.
    fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> impl Future<Output = Result<BifrostResponse, BifrostError>> + Send;

    /// Chat completion as a stream of `chat.completion.chunk`s. Resolves once the upstream
    /// answered with a success status; errors after that arrive as stream items.
    fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> impl Future<Output = Result<ResponseStream, BifrostError>> + Send;

    /// Legacy text completion.
    fn text_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> impl Future<Output = Result<BifrostResponse, BifrostError>> + Send;

    /// Embeddings.
    fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> impl Future<Output = Result<BifrostResponse, BifrostError>> + Send;

    /// The provider's models, ids prefixed with the provider name.
    fn list_models(
        &self,
        opts: CallOptions<'_>,
    ) -> impl Future<Output = Result<ModelList, BifrostError>> + Send;
}

/// Why a provider could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// This build has no implementation for the provider (not fatal: its requests fail).
    #[error("{0}")]
    Unsupported(String),
    /// The provider's configuration is unusable (fatal at startup).
    #[error("{0}")]
    Invalid(String),
}

/// Every provider implementation; a `match` here is the whole dispatch.
#[derive(Debug)]
pub enum ProviderImpl {
    /// OpenAI and OpenAI-compatible APIs (each with its module's [`openai::Dialect`]).
    OpenAI(openai::OpenAIProvider),
    /// Anthropic's Messages API.
    Anthropic(anthropic::AnthropicProvider),
    /// Azure OpenAI (per-key endpoint and deployments).
    Azure(azure::AzureProvider),
    /// AWS Bedrock (Converse, InvokeModel embeddings; SigV4 or API keys).
    Bedrock(bedrock::BedrockProvider),
    /// Cohere's v2 API.
    Cohere(cohere::CohereProvider),
    /// Google's Gemini API.
    Gemini(gemini::GeminiProvider),
    /// Test-only scripted provider.
    #[cfg(test)]
    Scripted(scripted::ScriptedProvider),
}

impl ProviderImpl {
    /// Builds the implementation for `key`. A custom provider (`custom_provider_config`) is
    /// built as its `base_provider_type` but keeps its own name.
    pub fn new(
        key: &ProviderKey,
        cfg: &ProviderConfig,
        pool_size: usize,
    ) -> Result<Self, SetupError> {
        match cfg.base_provider(key) {
            ProviderKey::Anthropic => {
                let (client, headers) = http_parts(cfg, pool_size)?;
                let base_url = cfg
                    .network_config
                    .base_url
                    .as_deref()
                    .unwrap_or(anthropic::DEFAULT_BASE_URL);
                Ok(Self::Anthropic(anthropic::AnthropicProvider::new(
                    key.clone(),
                    client,
                    base_url,
                    headers,
                )))
            }
            ProviderKey::Azure => {
                let (client, headers) = http_parts(cfg, pool_size)?;
                Ok(Self::Azure(azure::AzureProvider::new(
                    key.clone(),
                    client,
                    headers,
                    cfg,
                )))
            }
            ProviderKey::Bedrock => {
                let (client, headers) = http_parts(cfg, pool_size)?;
                Ok(Self::Bedrock(bedrock::BedrockProvider::new(
                    key.clone(),
                    client,
                    headers,
                    cfg,
                )))
            }
            ProviderKey::Gemini => {
                let (client, headers) = http_parts(cfg, pool_size)?;
                let base_url = cfg
                    .network_config
                    .base_url
                    .as_deref()
                    .unwrap_or(gemini::DEFAULT_BASE_URL);
                Ok(Self::Gemini(gemini::GeminiProvider::new(
                    key.clone(),
                    client,
                    base_url,
                    headers,
                )))
            }
            ProviderKey::Cohere => {
                let (client, headers) = http_parts(cfg, pool_size)?;
                cohere::CohereProvider::new(key.clone(), client, headers, cfg).map(Self::Cohere)
            }
            base => match compatible::dialect_for(&base) {
                Some(dialect) => {
                    let (client, headers) = http_parts(cfg, pool_size)?;
                    compatible::build(key, cfg, dialect, client, headers).map(Self::OpenAI)
                }
                None => Err(SetupError::Unsupported(if &base == key {
                    format!("provider {key} is not supported by this build yet")
                } else {
                    format!("provider {key} (base {base}) is not supported by this build yet")
                })),
            },
        }
    }
}

/// The provider's connection pool and its configured extra headers.
fn http_parts(
    cfg: &ProviderConfig,
    pool_size: usize,
) -> Result<(HttpClient, HeaderMap), SetupError> {
    let owned = cfg.clone();
    // The lean path only where reqwest would not use a proxy either.
    let lean = match &cfg.proxy_config {
        None => Some(pool_size),
        Some(p) if p.kind == ProxyKind::None => Some(pool_size),
        Some(_) => None,
    };
    let limits = pool::Limits::from(&cfg.network_config);
    let client = HttpClient::per_thread(move || build_client(&owned, pool_size), lean, limits)
        .map_err(SetupError::Invalid)?;
    let headers = extra_headers(cfg).map_err(SetupError::Invalid)?;
    Ok((client, headers))
}

macro_rules! dispatch {
    ($self:ident, $p:ident => $call:expr) => {
        match $self {
            ProviderImpl::OpenAI($p) => $call,
            ProviderImpl::Anthropic($p) => $call,
            ProviderImpl::Azure($p) => $call,
            ProviderImpl::Bedrock($p) => $call,
            ProviderImpl::Cohere($p) => $call,
            ProviderImpl::Gemini($p) => $call,
            #[cfg(test)]
            ProviderImpl::Scripted($p) => $call,
        }
    };
}

impl ProviderImpl {
    /// Counts a chat request's input tokens with the provider's own counter, where it has
    /// one (Anthropic's `count_tokens`, Gemini's `:countTokens`); others answer
    /// `unsupported_operation`.
    pub async fn count_tokens(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<TokenCount, BifrostError> {
        match self {
            Self::Anthropic(p) => p.count_tokens(req, opts).await,
            Self::Gemini(p) => p.count_tokens(req, opts).await,
            _ => Err(BifrostError::unsupported_operation(
                &req.provider,
                "token counting",
            )),
        }
    }
}

impl Provider for ProviderImpl {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        dispatch!(self, p => p.chat_completion(req, opts).await)
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        dispatch!(self, p => p.chat_completion_stream(req, opts).await)
    }

    async fn text_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        dispatch!(self, p => p.text_completion(req, opts).await)
    }

    async fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        dispatch!(self, p => p.embedding(req, opts).await)
    }

    async fn list_models(&self, opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        dispatch!(self, p => p.list_models(opts).await)
    }
}

/// One connection pool per provider: keep-alive sized by `-pool-size`, HTTP/2 when the
/// upstream offers it over TLS (ALPN), `TCP_NODELAY` so small writes are not delayed.
fn build_client(cfg: &ProviderConfig, pool_size: usize) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .pool_max_idle_per_host(pool_size.max(1))
        .pool_idle_timeout(cfg.network_config.idle_connection_timeout())
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(60))
        .connect_timeout(cfg.network_config.connect_timeout());
    if let Some(proxy) = &cfg.proxy_config {
        match proxy.kind {
            ProxyKind::None => b = b.no_proxy(),
            ProxyKind::Environment => {}
            ProxyKind::Http | ProxyKind::Socks5 => {
                let url = proxy.url.as_deref().unwrap_or_default();
                let url =
                    resolve_env(url).map_err(|v| format!("proxy_config.url: {v} is not set"))?;
                let mut p = reqwest::Proxy::all(&url)
                    .map_err(|e| format!("proxy_config.url: invalid proxy URL: {e}"))?;
                if let (Some(user), Some(pass)) = (&proxy.username, &proxy.password) {
                    let pass = resolve_env(pass)
                        .map_err(|v| format!("proxy_config.password: {v} is not set"))?;
                    p = p.basic_auth(user, &pass);
                }
                b = b.proxy(p);
            }
        }
    } else {
        b = b.no_proxy();
    }
    b.build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

fn extra_headers(cfg: &ProviderConfig) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (k, v) in &cfg.network_config.extra_headers {
        let v = resolve_env(v)
            .map_err(|var| format!("network_config.extra_headers.{k}: {var} is not set"))?;
        let name = http::HeaderName::try_from(k.as_str())
            .map_err(|_| format!("network_config.extra_headers: invalid header name {k:?}"))?;
        let value = http::HeaderValue::try_from(v)
            .map_err(|_| format!("network_config.extra_headers.{k}: invalid header value"))?;
        map.insert(name, value);
    }
    Ok(map)
}

/// A request carrying the provider's fixed headers, the attempt timeout, the API key in the
/// header `key_header` (marked sensitive so no debug output shows it) and the caller's extra
/// headers: what every provider that authenticates with a key header sends.
pub(crate) fn keyed_request(
    client: &HttpClient,
    headers: &HeaderMap,
    provider: &ProviderKey,
    key_header: http::HeaderName,
    method: reqwest::Method,
    url: &str,
    opts: CallOptions<'_>,
) -> Result<reqwest::RequestBuilder, BifrostError> {
    let mut rb = client
        .request(method, url)
        .headers(headers.clone())
        .timeout(opts.timeout);
    let api_key = opts.api_key();
    if !api_key.is_empty() {
        let mut value =
            http::HeaderValue::from_str(api_key).map_err(|_| invalid_api_key(provider))?;
        value.set_sensitive(true);
        rb = rb.header(key_header, value);
    }
    for (k, v) in opts.extra_headers {
        rb = rb.header(k.as_str(), v.as_str());
    }
    Ok(rb)
}

/// A key that cannot be sent as a header value; the message names the provider, not the key.
pub(crate) fn invalid_api_key(provider: &ProviderKey) -> BifrostError {
    BifrostError::gateway(
        500,
        "invalid_api_key",
        format!("the {provider} API key contains characters not allowed in a header"),
    )
}

/// Strips a trailing `/` and the version segment so both `https://api.openai.com` and
/// `https://api.openai.com/v1` work as a base URL.
pub fn normalize_base_url(url: &str, version_segment: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    trimmed
        .strip_suffix(version_segment)
        .map(|s| s.trim_end_matches('/'))
        .unwrap_or(trimmed)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_with_or_without_version() {
        assert_eq!(
            normalize_base_url("https://api.openai.com/v1/", "/v1"),
            "https://api.openai.com"
        );
        assert_eq!(
            normalize_base_url("https://api.openai.com", "/v1"),
            "https://api.openai.com"
        );
        assert_eq!(
            normalize_base_url("http://h:1/openai/v1", "/v1"),
            "http://h:1/openai"
        );
    }
}
