//! Anthropic's Messages API (`POST /v1/messages`) behind the unified, OpenAI-shaped schema.
//!
//! Auth is `x-api-key` plus `anthropic-version`. Chat (whole and streamed, with tools,
//! images, thinking and cache usage) and model listing are supported; Anthropic has no
//! embeddings or text-completion API, so those answer `unsupported_operation` and let
//! fallbacks run. Wire types live in [`types`], conversions in [`convert`]; [`reverse`]
//! converts the other way for the Anthropic-compatible route.
//!
//! When a request came through that route unchanged, [`CallOptions::native`] holds the
//! caller's own body: it is sent as is (with the attempt's model and the caller's
//! `anthropic-beta`), and the raw answer or events are handed back for the route to relay
//! (see [`super::native`]). `count_tokens` (`POST /v1/messages/count_tokens`) is offered
//! for that route too.

pub mod convert;
pub mod reverse;
pub mod types;

use crate::providers::pool::HttpClient;
use crate::providers::pool::Response;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsource_stream::Eventsource;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, header};

use serde_json::{Map, Value};

use self::convert::{StreamConverter, from_messages_response, model_info, to_messages_request};
use self::types::{MessagesRequest, MessagesResponse, ModelsPage, StreamEvent};
use super::native::NativeDialect;
use super::openai::{check_status, transport_error};
use super::{CallOptions, Provider, ResponseStream, TokenCount, normalize_base_url};
use crate::schemas::{BifrostError, BifrostRequest, BifrostResponse, ModelList, ProviderKey};

/// Anthropic's API root (the `/v1` segment is added per route).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The `anthropic-version` sent unless `network_config.extra_headers` sets another.
pub const API_VERSION: &str = "2023-06-01";

const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Models asked for per `GET /v1/models` page (Anthropic's maximum).
const MODELS_PAGE_SIZE: u32 = 1000;
/// Pages followed at most, so a misbehaving `has_more` cannot loop forever.
const MAX_MODEL_PAGES: usize = 20;

/// Longest `Retry-After` worth waiting for; the same bound `check_status` applies.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The Anthropic provider: one connection pool, the resolved URLs and the static headers.
#[derive(Debug)]
pub struct AnthropicProvider {
    /// `anthropic`, or a custom provider's own name when its base type is Anthropic.
    key: ProviderKey,
    client: HttpClient,
    messages_url: String,
    count_tokens_url: String,
    models_url: String,
    headers: HeaderMap,
}

/// Fields of a Messages body that `count_tokens` takes; others (`max_tokens`, sampling) are
/// refused there.
const COUNT_TOKENS_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
];

impl AnthropicProvider {
    /// Creates a provider for `base_url` (with or without `/v1`), sending `headers` (the
    /// configured extra headers) on every call, plus `anthropic-version` unless they set it.
    pub fn new(
        key: ProviderKey,
        client: impl Into<HttpClient>,
        base_url: &str,
        mut headers: HeaderMap,
    ) -> Self {
        let root = format!("{}/v1", normalize_base_url(base_url, "/v1"));
        if !headers.contains_key(ANTHROPIC_VERSION) {
            headers.insert(ANTHROPIC_VERSION, HeaderValue::from_static(API_VERSION));
        }
        Self {
            key,
            client: client.into(),
            messages_url: format!("{root}/messages"),
            count_tokens_url: format!("{root}/messages/count_tokens"),
            models_url: format!("{root}/models"),
            headers,
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        opts: CallOptions<'_>,
    ) -> Result<reqwest::RequestBuilder, BifrostError> {
        super::keyed_request(
            &self.client,
            &self.headers,
            &self.key,
            X_API_KEY,
            method,
            url,
            opts,
        )
    }

    async fn post_messages(
        &self,
        body: &MessagesRequest,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BifrostError::invalid_request(format!("cannot encode request: {e}")))?;
        self.post(&self.messages_url, bytes, opts).await
    }

    /// The caller's own Anthropic body for `req`, when it came through the Anthropic
    /// drop-in route unchanged (see [`super::native`]), with `stream` set for this call.
    fn native_body(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
        stream: bool,
    ) -> Option<Map<String, Value>> {
        let mut body = opts.native?.body_for(NativeDialect::Anthropic, req)?;
        if stream {
            body.insert("stream".to_owned(), Value::Bool(true));
        } else {
            body.remove("stream");
        }
        Some(body)
    }

    async fn post_json(
        &self,
        url: &str,
        body: &Map<String, Value>,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BifrostError::invalid_request(format!("cannot encode request: {e}")))?;
        self.post(url, bytes, opts).await
    }

    async fn post(
        &self,
        url: &str,
        bytes: Vec<u8>,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let mut rb = self.request(reqwest::Method::POST, url, opts)?;
        if let Some(native) = opts.native {
            for (k, v) in native.headers() {
                rb = rb.header(k.as_str(), v.as_str());
            }
        }
        let rb = rb
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(bytes);
        let resp = self
            .client
            .send(rb)
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        check(resp).await
    }

    async fn models_page(
        &self,
        after_id: Option<&str>,
        opts: CallOptions<'_>,
    ) -> Result<ModelsPage, BifrostError> {
        let mut url = format!("{}?limit={MODELS_PAGE_SIZE}", self.models_url);
        if let Some(after) = after_id {
            url.push_str("&after_id=");
            url.push_str(after);
        }
        let rb = self.request(reqwest::Method::GET, &url, opts)?;
        let resp = self
            .client
            .send(rb)
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        let bytes = check(resp)
            .await?
            .bytes()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            BifrostError::bad_upstream_response(format!(
                "cannot parse {} model list: {e}",
                self.key
            ))
        })
    }
}

impl AnthropicProvider {
    /// `POST /v1/messages/count_tokens`: the caller's own body when it came through the
    /// Anthropic route unchanged, else the translation limited to the fields the endpoint takes.
    pub async fn count_tokens(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<TokenCount, BifrostError> {
        let body = match self.native_body(req, opts, false) {
            Some(body) => body,
            None => {
                let full = serde_json::to_value(to_messages_request(req, false)?).map_err(|e| {
                    BifrostError::invalid_request(format!("cannot encode request: {e}"))
                })?;
                let Value::Object(full) = full else {
                    return Err(BifrostError::invalid_request("cannot encode request"));
                };
                full.into_iter()
                    .filter(|(k, _)| COUNT_TOKENS_FIELDS.contains(&k.as_str()))
                    .collect()
            }
        };
        let resp = self.post_json(&self.count_tokens_url, &body, opts).await?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        let raw: Value = serde_json::from_slice(&bytes).map_err(|e| {
            BifrostError::bad_upstream_response(format!(
                "cannot parse {} token count: {e}",
                self.key
            ))
        })?;
        let input_tokens = raw
            .get("input_tokens")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                BifrostError::bad_upstream_response(format!(
                    "{} token count has no input_tokens",
                    self.key
                ))
            })?;
        Ok(TokenCount {
            input_tokens,
            raw: Some(raw),
        })
    }
}

/// `check_status` (Anthropic's error body has OpenAI's `error.{type,message}` inside), plus
/// Anthropic's 529 "overloaded", which is worth a retry like a 503.
async fn check(resp: Response) -> Result<Response, BifrostError> {
    check_status(resp).await.map_err(|mut e| {
        if e.status_code == Some(convert::STATUS_OVERLOADED)
            && e.retry_after.is_none_or(|ra| ra <= MAX_RETRY_AFTER)
        {
            e.retryable = true;
        }
        e
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True for ids that can go into a query string unescaped (Anthropic model ids always can).
fn url_safe(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':'))
}

impl Provider for AnthropicProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let native = self.native_body(req, opts, false);
        let resp = match &native {
            Some(body) => self.post_json(&self.messages_url, body, opts).await?,
            None => {
                self.post_messages(&to_messages_request(req, false)?, opts)
                    .await?
            }
        };
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        let message: MessagesResponse = serde_json::from_slice(&bytes).map_err(|e| {
            BifrostError::bad_upstream_response(format!("cannot parse {} response: {e}", self.key))
        })?;
        let mut out = from_messages_response(message, now_secs());
        if let (Some(n), Some(_)) = (opts.native, &native) {
            n.record_whole_bytes(bytes.to_vec(), &out);
        }
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
        if let Some(body) = self.native_body(req, opts, true) {
            let resp = self.post_json(&self.messages_url, &body, opts).await?;
            if let Some(n) = opts.native {
                n.record_stream(&self.key);
            }
            return Ok(anthropic_sse(resp, true));
        }
        let body = to_messages_request(req, true)?;
        let resp = self.post_messages(&body, opts).await?;
        Ok(anthropic_sse(resp, false))
    }

    async fn text_completion(
        &self,
        _req: &BifrostRequest,
        _opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        Err(BifrostError::unsupported_operation(
            &self.key,
            "text completion",
        ))
    }

    async fn embedding(
        &self,
        _req: &BifrostRequest,
        _opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        Err(BifrostError::unsupported_operation(&self.key, "embeddings"))
    }

    async fn list_models(&self, opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        let mut data = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let page = self.models_page(after.as_deref(), opts).await?;
            data.extend(page.data.into_iter().map(|m| model_info(&self.key, m)));
            match page.last_id {
                Some(last) if page.has_more && url_safe(&last) => after = Some(last),
                _ => break,
            }
        }
        Ok(ModelList {
            object: "list".to_owned(),
            data,
        })
    }
}

/// Parses Anthropic's SSE (`event: <type>` + `data: {json}`) into chunks.
///
/// A complete stream ends with `message_stop`; one that closes before it (or breaks) yields
/// a final error item, so a cut stream is never mistaken for a finished one. An `error`
/// event becomes an error item with Anthropic's type and message.
///
/// With `raw` (native passthrough), every event, `ping` and `message_stop` included, yields
/// one chunk carrying the event's JSON in `extra_fields.raw_response` (events without unified
/// content give a chunk without choices), so the Anthropic route can relay the events as sent.
fn anthropic_sse(resp: Response, raw: bool) -> ResponseStream {
    let events = resp.bytes_stream().eventsource();
    let state = (events, StreamConverter::new(now_secs()));
    let stream = futures::stream::unfold(Some(state), move |state| async move {
        let (mut events, mut conv) = state?;
        loop {
            match events.next().await {
                Some(Ok(ev)) => {
                    let data = ev.data.trim();
                    if (ev.event == "ping" && !raw) || data.is_empty() {
                        continue;
                    }
                    let parse_error = |e: serde_json::Error| {
                        BifrostError::bad_upstream_response(format!(
                            "cannot parse anthropic stream event: {e}"
                        ))
                    };
                    if raw {
                        let value: Value = match serde_json::from_str(data) {
                            Ok(v) => v,
                            Err(e) => return Some((Err(parse_error(e)), None)),
                        };
                        let converted = serde_json::from_value::<StreamEvent>(value.clone())
                            .map_err(parse_error)
                            .and_then(|event| conv.convert(event));
                        return match converted {
                            Ok(chunk) => {
                                let mut chunk = chunk.unwrap_or_else(|| conv.empty_chunk());
                                chunk.extra_fields.raw_response =
                                    Some(super::native::raw_event(&ev.event, data));
                                let next = (!conv.is_finished()).then_some((events, conv));
                                Some((Ok(chunk), next))
                            }
                            Err(e) => Some((Err(e), None)),
                        };
                    }
                    let converted = serde_json::from_str::<StreamEvent>(data)
                        .map_err(parse_error)
                        .and_then(|event| conv.convert(event));
                    match converted {
                        Ok(Some(chunk)) => return Some((Ok(chunk), Some((events, conv)))),
                        Ok(None) if conv.is_finished() => return None,
                        Ok(None) => {}
                        Err(e) => return Some((Err(e), None)),
                    }
                }
                Some(Err(e)) => {
                    return Some((
                        Err(BifrostError::upstream_broke(format!(
                            "anthropic stream broke: {e}"
                        ))),
                        None,
                    ));
                }
                None => {
                    return Some((
                        Err(BifrostError::upstream_broke(
                            "anthropic stream ended before message_stop",
                        )),
                        None,
                    ));
                }
            }
        }
    });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_or_without_version_and_default_headers() {
        for base in [
            "https://api.anthropic.com",
            "https://api.anthropic.com/v1",
            "https://api.anthropic.com/v1/",
        ] {
            let p = AnthropicProvider::new(
                ProviderKey::Anthropic,
                reqwest::Client::new(),
                base,
                HeaderMap::new(),
            );
            assert_eq!(p.messages_url, "https://api.anthropic.com/v1/messages");
            assert_eq!(p.models_url, "https://api.anthropic.com/v1/models");
            assert_eq!(p.headers[ANTHROPIC_VERSION], API_VERSION);
        }
        let mut custom = HeaderMap::new();
        custom.insert(ANTHROPIC_VERSION, HeaderValue::from_static("2024-01-01"));
        let p = AnthropicProvider::new(
            ProviderKey::Anthropic,
            reqwest::Client::new(),
            DEFAULT_BASE_URL,
            custom,
        );
        assert_eq!(p.headers[ANTHROPIC_VERSION], "2024-01-01");
    }

    #[test]
    fn only_plain_ids_are_used_as_page_cursors() {
        assert!(url_safe("claude-3-5-haiku-20241022"));
        assert!(!url_safe("a&b"));
        assert!(!url_safe(""));
    }
}
