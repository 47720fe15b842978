//! OpenAI, and the base for every OpenAI-compatible API.
//!
//! A compatible provider differs only by a [`Dialect`] (base URL, paths, auth, operations and a
//! few body hooks) that its own module declares; the HTTP and JSON code here is shared.

use crate::providers::pool::{HttpClient, Outgoing, Response, SendError};
use std::borrow::Cow;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CallOptions, Provider, ResponseStream, normalize_base_url, sse};
use crate::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ChatMessage, EmbeddingInput, ErrorBody,
    ModelList, ModelParameters, PromptInput, ProviderKey, RequestInput, RequestType, Usage,
};
use bytes::{Bytes, BytesMut};

/// OpenAI's API root (the version segment is added per route).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com";

/// Longest `Retry-After` we honour; a provider asking for more is not retried.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How the API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>` (OpenAI and most compatible APIs).
    Bearer,
    /// The bare key as the value of this header (Azure's `api-key`).
    Header(&'static str),
    /// Never send a key (keyless custom providers).
    None,
}

/// Operations an API offers. Asking for another fails fast with `unsupported_operation`
/// (no network call; fallbacks still run, another provider may have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operations {
    /// Chat completion, whole response.
    pub chat: bool,
    /// Chat completion streamed.
    pub chat_stream: bool,
    /// `tools` in chat requests.
    pub tools: bool,
    /// Legacy text completion.
    pub text_completion: bool,
    /// Embeddings.
    pub embeddings: bool,
    /// Model listing.
    pub list_models: bool,
}

impl Operations {
    /// Everything OpenAI offers.
    pub const ALL: Self = Self {
        chat: true,
        chat_stream: true,
        tools: true,
        text_completion: true,
        embeddings: true,
        list_models: true,
    };
}

/// Route paths appended to the base URL, version segment included.
#[derive(Debug, Clone, Copy)]
pub struct Paths {
    /// Chat completions.
    pub chat: &'static str,
    /// Legacy text completions.
    pub completions: &'static str,
    /// Embeddings.
    pub embeddings: &'static str,
    /// Model list.
    pub models: &'static str,
}

/// A parser for a non-stream body in a dialect's own shape.
pub type ParseBody = fn(&[u8]) -> Result<BifrostResponse, serde_json::Error>;

/// How an OpenAI-compatible API differs from OpenAI's. Each compatible provider's module
/// declares one as a `const` built from [`DIALECT`] with struct-update syntax, so only the
/// differences are written down.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// Used when `network_config.base_url` is not set; `None` makes it required.
    pub default_base_url: Option<&'static str>,
    /// Route paths below the base URL.
    pub paths: Paths,
    /// How the key is sent.
    pub auth: Auth,
    /// Operations the API offers.
    pub supports: Operations,
    /// Renames or drops chat parameters the API names differently or rejects, given the
    /// model. Returns `None` when nothing changes, so the common case borrows, not clones.
    pub chat_params: fn(&str, &ModelParameters) -> Option<ModelParameters>,
    /// Rewrites chat messages the API would reject; `None` when nothing changes.
    pub chat_messages: fn(&[ChatMessage]) -> Option<Vec<ChatMessage>>,
    /// Parses a non-stream chat/text body whose fields differ from OpenAI's. `None`: the body
    /// is OpenAI's own shape, parsed by [`parse_body`], and may be relayed to an
    /// OpenAI-speaking caller as sent (see [`CallOptions::wire_body`]).
    pub parse_body: Option<ParseBody>,
    /// Parses one stream event's data.
    pub parse_chunk: fn(&str) -> Result<BifrostResponse, BifrostError>,
}

/// OpenAI's own dialect, the base every compatible one starts from.
pub const DIALECT: Dialect = Dialect {
    default_base_url: Some(DEFAULT_BASE_URL),
    paths: Paths {
        chat: "/v1/chat/completions",
        completions: "/v1/completions",
        embeddings: "/v1/embeddings",
        models: "/v1/models",
    },
    auth: Auth::Bearer,
    supports: Operations::ALL,
    chat_params: keep_params,
    chat_messages: keep_messages,
    parse_body: None,
    parse_chunk,
};

fn keep_params(_model: &str, _params: &ModelParameters) -> Option<ModelParameters> {
    None
}

fn keep_messages(_messages: &[ChatMessage]) -> Option<Vec<ChatMessage>> {
    None
}

/// OpenAI's response body parser (the default [`Dialect::parse_body`]).
pub fn parse_body(bytes: &[u8]) -> Result<BifrostResponse, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Moves `max_completion_tokens` to `max_tokens` (unless that is set) for APIs that only know
/// the older name.
pub fn legacy_max_tokens(params: &ModelParameters) -> Option<ModelParameters> {
    let n = params.max_completion_tokens?;
    let mut p = params.clone();
    p.max_completion_tokens = None;
    p.max_tokens.get_or_insert(n);
    Some(p)
}

/// `root` + `path`, or `path` alone when it is a full `http(s)://` URL.
pub(crate) fn join_url(root: &str, path: &str) -> String {
    if path.starts_with("http://") || path.starts_with("https://") {
        path.to_owned()
    } else {
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("{}{sep}{path}", root.trim_end_matches('/'))
    }
}

/// An OpenAI-compatible provider.
#[derive(Debug)]
pub struct OpenAIProvider {
    key: ProviderKey,
    client: HttpClient,
    dialect: Dialect,
    chat_url: String,
    completions_url: String,
    embeddings_url: String,
    models_url: String,
    /// The four URLs above, parsed (those that parse).
    parsed: Vec<reqwest::Url>,
    headers: HeaderMap,
}

impl OpenAIProvider {
    /// Creates an OpenAI provider for `base_url` (with or without `/v1`), sending `headers`
    /// on every call.
    pub fn new(
        key: ProviderKey,
        client: impl Into<HttpClient>,
        base_url: &str,
        headers: HeaderMap,
    ) -> Self {
        Self::with_dialect(key, client, base_url, headers, DIALECT)
    }

    /// Creates a provider speaking `dialect` at `base_url` (with or without `/v1`).
    pub fn with_dialect(
        key: ProviderKey,
        client: impl Into<HttpClient>,
        base_url: &str,
        headers: HeaderMap,
        dialect: Dialect,
    ) -> Self {
        let root = normalize_base_url(base_url, "/v1");
        let p = dialect.paths;
        let mut provider = Self {
            key,
            client: client.into(),
            dialect,
            chat_url: format!("{root}{}", p.chat),
            completions_url: format!("{root}{}", p.completions),
            embeddings_url: format!("{root}{}", p.embeddings),
            models_url: format!("{root}{}", p.models),
            parsed: Vec::new(),
            headers,
        };
        provider.reparse();
        provider
    }

    fn reparse(&mut self) {
        self.parsed = [
            &self.chat_url,
            &self.completions_url,
            &self.embeddings_url,
            &self.models_url,
        ]
        .into_iter()
        .filter_map(|u| reqwest::Url::parse(u).ok())
        .collect();
    }

    /// Replaces the path of one request type (a custom provider's `request_path_overrides`);
    /// a full `http(s)://` URL replaces the whole URL. Streams share the chat path.
    pub fn override_path(&mut self, request_type: RequestType, base_url: &str, path: &str) {
        let url = join_url(&normalize_base_url(base_url, "/v1"), path);
        match request_type {
            RequestType::ChatCompletion | RequestType::ChatCompletionStream => self.chat_url = url,
            RequestType::TextCompletion => self.completions_url = url,
            RequestType::Embedding => self.embeddings_url = url,
            RequestType::ListModels => self.models_url = url,
        }
        self.reparse();
    }

    /// The dialect in use, to adjust after construction (custom providers narrow
    /// `supports` and may turn `auth` off).
    pub fn dialect_mut(&mut self) -> &mut Dialect {
        &mut self.dialect
    }

    /// The dialect in use.
    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    /// Chat, completions, embeddings and models URLs, for tests.
    #[cfg(test)]
    pub(crate) fn urls(&self) -> [&str; 4] {
        [
            &self.chat_url,
            &self.completions_url,
            &self.embeddings_url,
            &self.models_url,
        ]
    }

    fn unsupported(&self, operation: &str) -> BifrostError {
        BifrostError::unsupported_operation(&self.key, operation)
    }

    /// The headers of a call: the configured ones, the key as the dialect sends it (marked
    /// sensitive, so no debug output shows it) and the caller's extra headers.
    fn headers_for(&self, opts: CallOptions<'_>) -> Result<HeaderMap, BifrostError> {
        let mut headers = self.headers.clone();
        let api_key = opts.api_key();
        let auth = match self.dialect.auth {
            _ if api_key.is_empty() => None,
            Auth::Bearer => {
                let mut v = BytesMut::with_capacity(7 + api_key.len());
                v.extend_from_slice(b"Bearer ");
                v.extend_from_slice(api_key.as_bytes());
                Some((
                    header::AUTHORIZATION,
                    HeaderValue::from_maybe_shared(v.freeze()),
                ))
            }
            Auth::Header(name) => {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    BifrostError::gateway(
                        500,
                        "invalid_auth_header",
                        format!("{}: {name:?} is not a valid header name", self.key),
                    )
                })?;
                Some((name, HeaderValue::from_str(api_key)))
            }
            Auth::None => None,
        };
        if let Some((name, value)) = auth {
            let mut value = value.map_err(|_| super::invalid_api_key(&self.key))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        for (k, v) in opts.extra_headers {
            let name = HeaderName::from_bytes(k.as_bytes());
            match (name, HeaderValue::from_str(v)) {
                (Ok(name), Ok(value)) => headers.append(name, value),
                _ => {
                    return Err(BifrostError::invalid_request(format!(
                        "extra header {k:?} is not a valid HTTP header"
                    )));
                }
            };
        }
        Ok(headers)
    }

    /// Sends `method url` with `body` and this call's headers on the provider's pools; a
    /// failure to get any answer becomes the typed transport error.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let out = Outgoing {
            method,
            url,
            // The fixed endpoints are parsed once: parsing a URL (with IDNA host checks)
            // per request showed up in profiles of the reqwest path.
            parsed: self.parsed.iter().find(|u| u.as_str() == url),
            headers,
            body,
            timeout: opts.timeout,
        };
        self.client
            .send_parts(out)
            .await
            .map_err(|e| transport_error(&self.key, e))
    }

    /// `GET url`; a non-2xx answer becomes the provider's error.
    pub(crate) async fn get(
        &self,
        url: &str,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let headers = self.headers_for(opts)?;
        let resp = self
            .send(http::Method::GET, url, headers, Bytes::new(), opts)
            .await?;
        check_status(resp).await
    }

    /// POSTs `body` as JSON; a non-2xx answer becomes the provider's error.
    pub(crate) async fn post_json<B: Serialize>(
        &self,
        url: &str,
        body: &B,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BifrostError::invalid_request(format!("cannot encode request: {e}")))?;
        let mut headers = self.headers_for(opts)?;
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let resp = self
            .send(http::Method::POST, url, headers, bytes.into(), opts)
            .await?;
        check_status(resp).await
    }

    async fn post_for_response<B: Serialize>(
        &self,
        url: &str,
        body: &B,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let resp = self.post_json(url, body, opts).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        let parsed = match self.dialect.parse_body {
            Some(parse) => parse(&bytes),
            None if opts.wire_body && !opts.raw_response => {
                return summarize_wire_body(bytes).map_err(|e| self.unparsable(e));
            }
            None => parse_body(&bytes),
        };
        let mut out = parsed.map_err(|e| self.unparsable(e))?;
        if opts.raw_response {
            out.extra_fields.raw_response = serde_json::from_slice(&bytes).ok();
        }
        Ok(out)
    }

    fn unparsable(&self, e: serde_json::Error) -> BifrostError {
        BifrostError::bad_upstream_response(format!("cannot parse {} response: {e}", self.key))
    }
}

/// What the engine needs of a body it relays as sent: ids for logs and `usage` for the token
/// metrics. Everything else is skipped (still checked to be JSON), not built.
#[derive(Deserialize)]
struct WireSummary {
    #[serde(default)]
    id: String,
    #[serde(default)]
    object: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<Usage>,
    /// Set when the upstream is itself a Bifrost gateway.
    #[serde(default)]
    extra_fields: Option<serde::de::IgnoredAny>,
}

/// A response that carries `bytes` as its [`BifrostResponse::wire_body`], with only the
/// summary fields parsed. A body that already has `extra_fields` (another Bifrost upstream)
/// is parsed in full instead, so the answer does not carry the key twice.
fn summarize_wire_body(bytes: Bytes) -> Result<BifrostResponse, serde_json::Error> {
    let s: WireSummary = serde_json::from_slice(&bytes)?;
    if s.extra_fields.is_some() {
        return parse_body(&bytes);
    }
    Ok(BifrostResponse {
        id: s.id,
        object: s.object,
        created: s.created,
        model: s.model,
        usage: s.usage,
        wire_body: Some(bytes),
        ..BifrostResponse::default()
    })
}

/// The chat body: the unified request borrowed as OpenAI's wire format; copied only where a
/// dialect rewrites something.
#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Cow<'a, [ChatMessage]>,
    #[serde(flatten)]
    params: Cow<'a, ModelParameters>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Serialize)]
struct CompletionBody<'a> {
    model: &'a str,
    prompt: &'a PromptInput,
    #[serde(flatten)]
    params: &'a ModelParameters,
}

#[derive(Serialize)]
struct EmbeddingBody<'a> {
    model: &'a str,
    input: &'a EmbeddingInput,
    #[serde(flatten)]
    params: &'a ModelParameters,
}

#[derive(Deserialize)]
struct OpenAIErrorEnvelope {
    error: ErrorBody,
}

impl OpenAIProvider {
    /// Chat completion at `url` (Azure builds its URL per key and deployment).
    pub(crate) async fn chat_at(
        &self,
        url: &str,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let body = chat_body(req, false, &self.dialect)?;
        self.post_for_response(url, &body, opts).await
    }

    /// Streaming chat completion at `url`.
    pub(crate) async fn chat_stream_at(
        &self,
        url: &str,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        let body = chat_body(req, true, &self.dialect)?;
        let resp = self.post_json(url, &body, opts).await?;
        Ok(sse::openai_sse(resp, self.dialect.parse_chunk))
    }

    /// Text completion at `url`.
    pub(crate) async fn text_at(
        &self,
        url: &str,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let RequestInput::TextCompletion(prompt) = &req.input else {
            return Err(BifrostError::invalid_request(
                "text completion needs a prompt",
            ));
        };
        let body = CompletionBody {
            model: &req.model,
            prompt,
            params: &req.params,
        };
        self.post_for_response(url, &body, opts).await
    }

    /// Embeddings at `url`.
    pub(crate) async fn embedding_at(
        &self,
        url: &str,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let RequestInput::Embedding(input) = &req.input else {
            return Err(BifrostError::invalid_request("embedding needs an input"));
        };
        let body = EmbeddingBody {
            model: &req.model,
            input,
            params: &req.params,
        };
        self.post_for_response(url, &body, opts).await
    }

    /// `GET url` for an OpenAI-shaped model list; ids come back as `provider/model`.
    pub(crate) async fn list_models_at(
        &self,
        url: &str,
        opts: CallOptions<'_>,
    ) -> Result<ModelList, BifrostError> {
        let resp = self.get(url, opts).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        let mut list: ModelList = serde_json::from_slice(&bytes).map_err(|e| {
            BifrostError::bad_upstream_response(format!(
                "cannot parse {} model list: {e}",
                self.key
            ))
        })?;
        for m in &mut list.data {
            m.id = format!("{}/{}", self.key, m.id);
        }
        Ok(list)
    }
}

impl Provider for OpenAIProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if !self.dialect.supports.chat {
            return Err(self.unsupported("chat completion"));
        }
        self.chat_at(&self.chat_url, req, opts).await
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        if !self.dialect.supports.chat_stream {
            return Err(self.unsupported("streaming chat completion"));
        }
        self.chat_stream_at(&self.chat_url, req, opts).await
    }

    async fn text_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if !self.dialect.supports.text_completion {
            return Err(self.unsupported("text completion"));
        }
        self.text_at(&self.completions_url, req, opts).await
    }

    async fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if !self.dialect.supports.embeddings {
            return Err(self.unsupported("embeddings"));
        }
        self.embedding_at(&self.embeddings_url, req, opts).await
    }

    async fn list_models(&self, opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        if !self.dialect.supports.list_models {
            return Err(self.unsupported("listing models"));
        }
        self.list_models_at(&self.models_url, opts).await
    }
}

fn chat_body<'a>(
    req: &'a BifrostRequest,
    stream: bool,
    dialect: &Dialect,
) -> Result<ChatBody<'a>, BifrostError> {
    let RequestInput::Chat(messages) = &req.input else {
        return Err(BifrostError::invalid_request(
            "chat completion needs messages",
        ));
    };
    if !dialect.supports.tools && req.params.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(BifrostError::unsupported_operation(
            &req.provider,
            "tool calling",
        ));
    }
    Ok(ChatBody {
        model: &req.model,
        messages: (dialect.chat_messages)(messages).map_or(Cow::Borrowed(messages), Cow::Owned),
        params: (dialect.chat_params)(&req.model, &req.params)
            .map_or(Cow::Borrowed(&req.params), Cow::Owned),
        stream,
    })
}

/// OpenAI's stream chunk parser (the default [`Dialect::parse_chunk`]): a chunk, or the
/// `{"error":…}` event some servers send mid-stream.
pub fn parse_chunk(data: &str) -> Result<BifrostResponse, BifrostError> {
    if data.starts_with("{\"error\"")
        && let Ok(env) = serde_json::from_str::<OpenAIErrorEnvelope>(data)
    {
        return Err(BifrostError::provider(502, env.error));
    }
    serde_json::from_str(data)
        .map_err(|e| BifrostError::bad_upstream_response(format!("cannot parse stream chunk: {e}")))
}

/// Maps a non-2xx answer to a provider error, keeping the provider's own message and
/// its `Retry-After`.
pub(crate) async fn check_status(resp: Response) -> Result<Response, BifrostError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let bytes = resp.error_bytes().await;
    let body = match serde_json::from_slice::<OpenAIErrorEnvelope>(&bytes) {
        Ok(env) => env.error,
        Err(_) => ErrorBody {
            message: match serde_json::from_slice::<Value>(&bytes) {
                // `{"message": …}` (Cohere and others) or `{"error": "…"}` (Ollama and others).
                Ok(v) => match v.get("message").or_else(|| v.get("error")) {
                    Some(Value::String(m)) => m.clone(),
                    _ => v.to_string(),
                },
                Err(_) => String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
            },
            ..ErrorBody::default()
        },
    };
    let mut err = BifrostError::provider(status.as_u16(), body);
    if let Some(ra) = retry_after {
        err.retry_after = Some(ra);
        if ra > MAX_RETRY_AFTER {
            err.retryable = false;
        }
    }
    Err(err)
}

/// Maps a transport failure without echoing the URL's query or any header (no secrets).
pub(crate) fn transport_error(provider: &ProviderKey, e: impl Into<SendError>) -> BifrostError {
    let e = e.into();
    let timeout = e.is_timeout();
    let what = if timeout {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() {
        "response body broke"
    } else {
        "request failed"
    };
    // Sent again only when the request provably never left: one that may have reached the
    // upstream could be billed twice (the engine still retries retryable statuses the
    // upstream answers, and fallbacks to other providers stay allowed).
    let never_sent = e.never_sent();
    let mut err =
        BifrostError::upstream_unreachable(timeout, format!("{provider}: {what}: {}", e.detail()));
    err.retryable = never_sent;
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{FunctionDef, Role, Tool};
    use serde_json::json;

    #[test]
    fn only_requests_that_never_left_are_retryable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let k = ProviderKey::OpenAI;
        assert!(transport_error(&k, SendError::Connect(refused)).retryable);
        // A timeout or a broken answer may come after the upstream took the request.
        let timeout = transport_error(&k, SendError::Timeout);
        assert!(!timeout.retryable);
        assert_eq!(timeout.status_code, Some(504));
        assert!(timeout.fallbacks_allowed());
        let big = SendError::TooLarge {
            what: "response body",
            limit: 10,
            setting: "max_response_body_size_mb",
        };
        let big = transport_error(&k, big);
        assert!(!big.retryable);
        assert_eq!(big.status_code, Some(502));
        assert!(big.error.message.contains("max_response_body_size_mb"));
    }

    #[test]
    fn extra_headers_are_added_and_a_bad_one_is_a_400() {
        let p = OpenAIProvider::new(
            ProviderKey::OpenAI,
            reqwest::Client::new(),
            "http://127.0.0.1:9",
            HeaderMap::new(),
        );
        let opts = |extra| CallOptions {
            key: None,
            extra_headers: extra,
            raw_response: false,
            wire_body: false,
            timeout: Duration::from_secs(1),
            native: None,
        };
        let good = [("x-team".to_owned(), "core".to_owned())];
        let h = p.headers_for(opts(&good)).unwrap();
        assert_eq!(h["x-team"], "core");
        assert!(
            !h.contains_key(header::AUTHORIZATION),
            "no key, no auth header"
        );
        let bad = [("bad header".to_owned(), "v".to_owned())];
        let e = p.headers_for(opts(&bad)).unwrap_err();
        assert_eq!(e.http_status(), 400, "{e}");
    }

    #[test]
    fn a_relayed_body_is_summarized_and_must_be_json() {
        assert!(summarize_wire_body(Bytes::from_static(b"{\"id\":")).is_err());
        let sent = br#"{"id":"a","model":"m","x":[1,{"y":null}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        let r = summarize_wire_body(Bytes::from_static(sent)).unwrap();
        assert_eq!((r.id.as_str(), r.model.as_str()), ("a", "m"));
        assert_eq!(r.usage.unwrap().completion_tokens, 2);
        assert_eq!(r.wire_body.as_deref(), Some(&sent[..]));

        let chained = br#"{"id":"b","choices":[],"extra_fields":{"provider":"openai"}}"#;
        let r = summarize_wire_body(Bytes::from_static(chained)).unwrap();
        assert!(
            r.wire_body.is_none(),
            "a Bifrost upstream's body is parsed, not relayed"
        );
        assert_eq!(r.id, "b");
    }

    #[test]
    fn chat_body_is_openai_wire_format_with_extras_and_exact_tool_results() {
        let mut req = BifrostRequest::chat(
            ProviderKey::OpenAI,
            "gpt-4o-mini",
            vec![
                ChatMessage::text(Role::User, "hi"),
                ChatMessage {
                    role: Some(Role::Tool),
                    tool_call_id: Some("c1".into()),
                    content: Some(crate::schemas::MessageContent::Text("sunny".into())),
                    ..ChatMessage::default()
                },
            ],
        );
        req.params.temperature = Some(0.5);
        req.params.tools = Some(vec![Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: "w".into(),
                description: None,
                parameters: Some(json!({"type": "object"})),
                strict: None,
            },
        }]);
        req.params.extra.insert("top_k".into(), json!(3));
        let v = serde_json::to_value(chat_body(&req, true, &DIALECT).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"model": "gpt-4o-mini", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
                "temperature": 0.5,
                "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
                "top_k": 3, "stream": true})
        );
    }

    #[test]
    fn stream_error_event_becomes_error() {
        let e = parse_chunk(r#"{"error":{"message":"boom","type":"server_error"}}"#).unwrap_err();
        assert_eq!(e.error.message, "boom");
        assert!(parse_chunk("not json").is_err());
    }
}
