//! Google's Gemini API (`generativelanguage.googleapis.com`, provider key `gemini`).
//!
//! - Auth: the key goes in the `x-goog-api-key` header (marked sensitive), never in the
//!   URL's `?key=`, so URLs in logs and errors carry no secret.
//! - Chat: `POST /v1beta/models/{model}:generateContent`; streaming
//!   `:streamGenerateContent?alt=sse`, whose SSE body has no `[DONE]`: a stream ends well when
//!   the body ends after a `finishReason`, and an end without one is an error.
//! - Text completion: served by `generateContent` with the prompt as one user turn.
//! - Embeddings: `:embedContent` for one input, `:batchEmbedContents` for several.
//! - Models: `GET /v1beta/models` (all pages), ids `gemini/<id>`.
//! - Errors: Google's `{"error":{"code","message","status","details"}}` become provider errors
//!   typed by `status`, with Google's message; `Retry-After` or a `google.rpc.RetryInfo`
//!   detail sets the retry delay.
//!
//! Wire types live in [`types`], conversions in [`convert`]; [`reverse`] converts the other
//! way for the Google-GenAI-compatible route (Gemini requests in, Gemini answers out).

pub mod convert;
pub mod reverse;
pub mod types;

use crate::providers::pool::HttpClient;
use crate::providers::pool::Response;
use std::collections::VecDeque;
use std::time::Duration;

use eventsource_stream::{EventStreamError, Eventsource};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::native::NativeDialect;
use super::openai::transport_error;
use super::{CallOptions, Provider, ResponseStream, TokenCount, normalize_base_url};
use crate::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ErrorBody, ModelList, ProviderKey, RequestInput,
};
use convert::{ChatStream, EmbedRequest};
use types::{
    BatchEmbedContentsResponse, EmbedContentResponse, ErrorEnvelope, GenerateContentResponse,
    ListModelsResponse,
};

/// Gemini API root (the version segment is added per route).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// The API version every route uses.
const VERSION_SEGMENT: &str = "/v1beta";

/// Header carrying the API key.
const API_KEY_HEADER: &str = "x-goog-api-key";

/// Longest retry delay we honour; a provider asking for more is not retried.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Models asked for per list page (Google's maximum).
const MODELS_PAGE_SIZE: u32 = 1000;

/// Pages followed at most when listing models (a guard against a looping page token).
const MAX_MODEL_PAGES: usize = 20;

/// The Gemini provider: a base URL, extra headers and the shared connection pool.
#[derive(Debug)]
pub struct GeminiProvider {
    /// The configured name (`gemini`, or a custom provider built on it): model ids and
    /// error messages use it.
    key: ProviderKey,
    client: HttpClient,
    /// `<base>/v1beta`.
    root: String,
    headers: HeaderMap,
}

impl GeminiProvider {
    /// Creates a provider for `base_url` (with or without `/v1beta`), sending `headers` on
    /// every call.
    pub fn new(
        key: ProviderKey,
        client: impl Into<HttpClient>,
        base_url: &str,
        headers: HeaderMap,
    ) -> Self {
        Self {
            key,
            client: client.into(),
            root: format!(
                "{}{VERSION_SEGMENT}",
                normalize_base_url(base_url, VERSION_SEGMENT)
            ),
            headers,
        }
    }

    /// `<root>/models/<model>:<method>`.
    fn model_url(&self, model: &str, method: &str) -> Result<String, BifrostError> {
        Ok(format!("{}/{}:{method}", self.root, model_resource(model)?))
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
            http::HeaderName::from_static(API_KEY_HEADER),
            method,
            url,
            opts,
        )
    }

    async fn post<B: Serialize>(
        &self,
        url: &str,
        body: &B,
        opts: CallOptions<'_>,
    ) -> Result<Response, BifrostError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BifrostError::invalid_request(format!("cannot encode request: {e}")))?;
        let rb = self
            .request(reqwest::Method::POST, url, opts)?
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
        check_status(resp).await
    }

    /// Sends `body` and parses the answer as `T`, keeping the raw JSON when asked.
    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
        opts: CallOptions<'_>,
    ) -> Result<(T, Option<Value>), BifrostError> {
        let resp = self.post(url, body, opts).await?;
        read_json(&self.key, resp, opts.raw_response).await
    }

    async fn generate(
        &self,
        req: &BifrostRequest,
        body: &types::GenerateContentRequest,
        opts: CallOptions<'_>,
    ) -> Result<(GenerateContentResponse, Option<Value>), BifrostError> {
        let url = self.model_url(&req.model, "generateContent")?;
        self.call(&url, body, opts).await
    }

    /// Counts the request's input tokens with `:countTokens`: the caller's own body when it
    /// came through the GenAI route unchanged (see [`super::native`]), else the translated
    /// request as a `generateContentRequest` (so the system instruction and tools count too).
    pub async fn count_tokens(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<TokenCount, BifrostError> {
        let body = match native_body(req, opts) {
            Some(body) => Value::Object(body),
            None => {
                let mut full = chat_body(req)?;
                full.model = Some(model_resource(&req.model)?.into_owned());
                serde_json::json!({ "generateContentRequest": full })
            }
        };
        let url = self.model_url(&req.model, "countTokens")?;
        let (raw, _): (Value, _) = self.call(&url, &body, opts).await?;
        let input_tokens = raw
            .get("totalTokens")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                BifrostError::bad_upstream_response(format!(
                    "{} token count has no totalTokens",
                    self.key
                ))
            })?;
        Ok(TokenCount {
            input_tokens,
            raw: Some(raw),
        })
    }
}

/// The caller's own Gemini body for `req`, when it came through the GenAI drop-in route and
/// no plugin changed the translation (see [`super::native`]). The model is the URL's.
fn native_body(req: &BifrostRequest, opts: CallOptions<'_>) -> Option<Map<String, Value>> {
    let mut body = opts.native?.body_for(NativeDialect::Gemini, req)?;
    body.remove("model");
    Some(body)
}

impl Provider for GeminiProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        if let Some(body) = native_body(req, opts) {
            let url = self.model_url(&req.model, "generateContent")?;
            let resp = self.post(&url, &body, opts).await?;
            let (raw, _): (Value, _) = read_json(&self.key, resp, false).await?;
            let parsed: GenerateContentResponse =
                serde_json::from_value(raw.clone()).map_err(|e| {
                    BifrostError::bad_upstream_response(format!(
                        "cannot parse {} response: {e}",
                        self.key
                    ))
                })?;
            let mut out = convert::chat_response(parsed, &req.model)?;
            if let Some(n) = opts.native {
                n.record_whole(raw.clone(), &out);
            }
            if opts.raw_response {
                out.extra_fields.raw_response = Some(raw);
            }
            return Ok(out);
        }
        let body = chat_body(req)?;
        let (resp, raw) = self.generate(req, &body, opts).await?;
        let mut out = convert::chat_response(resp, &req.model)?;
        out.extra_fields.raw_response = raw;
        Ok(out)
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        let url = format!(
            "{}?alt=sse",
            self.model_url(&req.model, "streamGenerateContent")?
        );
        let include_usage = req
            .params
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let converter = ChatStream::new(&req.model, include_usage);
        if let Some(body) = native_body(req, opts) {
            let resp = self.post(&url, &body, opts).await?;
            if let Some(n) = opts.native {
                n.record_stream(&self.key);
            }
            return Ok(gemini_sse(self.key.clone(), resp, converter, true));
        }
        let body = chat_body(req)?;
        let resp = self.post(&url, &body, opts).await?;
        Ok(gemini_sse(self.key.clone(), resp, converter, false))
    }

    async fn text_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let RequestInput::TextCompletion(prompt) = &req.input else {
            return Err(BifrostError::invalid_request(
                "text completion needs a prompt",
            ));
        };
        let body = convert::text_completion_request(&req.model, prompt, &req.params)?;
        let (resp, raw) = self.generate(req, &body, opts).await?;
        let mut out = convert::text_completion_response(resp, &req.model)?;
        out.extra_fields.raw_response = raw;
        Ok(out)
    }

    async fn embedding(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let RequestInput::Embedding(input) = &req.input else {
            return Err(BifrostError::invalid_request("embedding needs an input"));
        };
        let resource = model_resource(&req.model)?;
        let (vectors, raw) = match convert::embedding_request(&resource, input, &req.params)? {
            EmbedRequest::Single(body) => {
                let url = self.model_url(&req.model, "embedContent")?;
                let (r, raw): (EmbedContentResponse, _) = self.call(&url, &body, opts).await?;
                (vec![r.embedding.values], raw)
            }
            EmbedRequest::Batch(body) => {
                let url = self.model_url(&req.model, "batchEmbedContents")?;
                let (r, raw): (BatchEmbedContentsResponse, _) =
                    self.call(&url, &body, opts).await?;
                (r.embeddings.into_iter().map(|e| e.values).collect(), raw)
            }
        };
        let base64 = req.params.encoding_format.as_deref() == Some("base64");
        let mut out = convert::embedding_response(&req.model, vectors, base64);
        out.extra_fields.raw_response = raw;
        Ok(out)
    }

    async fn list_models(&self, opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        let mut data = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut url = reqwest::Url::parse(&format!("{}/models", self.root)).map_err(|e| {
                BifrostError::gateway(500, "invalid_base_url", format!("gemini base_url: {e}"))
            })?;
            url.query_pairs_mut()
                .append_pair("pageSize", &MODELS_PAGE_SIZE.to_string());
            if let Some(token) = &page_token {
                url.query_pairs_mut().append_pair("pageToken", token);
            }
            let rb = self.request(reqwest::Method::GET, url.as_str(), opts)?;
            let resp = self
                .client
                .send(rb)
                .await
                .map_err(|e| transport_error(&self.key, e))?;
            let resp = check_status(resp).await?;
            let (page, _): (ListModelsResponse, _) = read_json(&self.key, resp, false).await?;
            page_token = page.next_page_token.clone().filter(|t| !t.is_empty());
            data.extend(convert::model_infos(&self.key, page));
            if page_token.is_none() {
                break;
            }
        }
        Ok(ModelList {
            object: "list".into(),
            data,
        })
    }
}

fn chat_body(req: &BifrostRequest) -> Result<types::GenerateContentRequest, BifrostError> {
    let RequestInput::Chat(messages) = &req.input else {
        return Err(BifrostError::invalid_request(
            "chat completion needs messages",
        ));
    };
    convert::chat_request(&req.model, messages, &req.params)
}

/// The model as a resource name: `gemini-2.0-flash` → `models/gemini-2.0-flash`; names that
/// already have a collection (`models/…`, `tunedModels/…`) are kept. Characters that could
/// change the URL's meaning are refused.
fn model_resource(model: &str) -> Result<std::borrow::Cow<'_, str>, BifrostError> {
    let ok = !model.is_empty()
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'/' | b'@'))
        && model.split('/').all(|seg| !seg.is_empty() && seg != "..");
    if !ok {
        return Err(BifrostError::invalid_param(
            "model",
            format!("{model:?} is not a valid gemini model name"),
        ));
    }
    Ok(if model.contains('/') {
        std::borrow::Cow::Borrowed(model)
    } else {
        std::borrow::Cow::Owned(format!("models/{model}"))
    })
}

async fn read_json<T: DeserializeOwned>(
    key: &ProviderKey,
    resp: Response,
    keep_raw: bool,
) -> Result<(T, Option<Value>), BifrostError> {
    let bytes = resp.bytes().await.map_err(|e| transport_error(key, e))?;
    let parsed = serde_json::from_slice(&bytes).map_err(|e| {
        BifrostError::bad_upstream_response(format!("cannot parse {key} response: {e}"))
    })?;
    let raw = if keep_raw {
        serde_json::from_slice(&bytes).ok()
    } else {
        None
    };
    Ok((parsed, raw))
}

/// Maps a non-2xx answer to a provider error with Google's status name and message, and the
/// delay from `Retry-After` or a `google.rpc.RetryInfo` detail.
async fn check_status(resp: Response) -> Result<Response, BifrostError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let header_delay = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(seconds);
    let bytes = resp.error_bytes().await;
    Err(error_from_body(status.as_u16(), &bytes, header_delay))
}

/// The error for a non-2xx `body` (Google's envelope, alone or in a one-element array as
/// streaming endpoints send it; anything else is quoted, truncated).
fn error_from_body(status: u16, bytes: &[u8], header_delay: Option<Duration>) -> BifrostError {
    // Dispatch on the first byte: serde reads a struct from a sequence too, so trying the
    // object form first would "succeed" on the array form with an empty error.
    let envelope = match bytes.trim_ascii_start().first() {
        Some(b'[') => serde_json::from_slice::<Vec<ErrorEnvelope>>(bytes)
            .ok()
            .and_then(|v| v.into_iter().next()),
        _ => serde_json::from_slice::<ErrorEnvelope>(bytes).ok(),
    };
    let mut err = match envelope {
        Some(env) => {
            let delay = retry_info_delay(env.error.details.as_deref());
            let mut e = convert::google_error(status, env.error);
            e.retry_after = delay;
            e
        }
        None => BifrostError::provider(
            status,
            ErrorBody {
                message: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
                ..ErrorBody::default()
            },
        ),
    };
    if header_delay.is_some() {
        err.retry_after = header_delay;
    }
    if err.retry_after.is_some_and(|d| d > MAX_RETRY_AFTER) {
        err.retryable = false;
    }
    err
}

/// The `retryDelay` (e.g. `"21s"`, `"0.5s"`) of a `google.rpc.RetryInfo` detail.
fn retry_info_delay(details: Option<&[Value]>) -> Option<Duration> {
    details?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| {
            d.get("retryDelay")?
                .as_str()?
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
        .and_then(seconds)
}

fn seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s))
}

/// One SSE `data:` payload: a response event, or an error object.
fn parse_event(data: &str) -> Result<GenerateContentResponse, BifrostError> {
    if data.starts_with("{\"error\"")
        && let Ok(env) = serde_json::from_str::<ErrorEnvelope>(data)
    {
        return Err(convert::google_error(502, env.error));
    }
    serde_json::from_str(data).map_err(|e| {
        BifrostError::bad_upstream_response(format!("cannot parse gemini stream event: {e}"))
    })
}

struct SseState<S> {
    key: ProviderKey,
    events: S,
    converter: ChatStream,
    pending: VecDeque<BifrostResponse>,
    raw: bool,
}

/// Turns Gemini's SSE body into unified chunks. Gemini sends no `[DONE]`: the body ending
/// after a `finishReason` is success, ending before one (or breaking) is an error item.
///
/// With `raw` (native passthrough), the first chunk of every event carries the event's JSON
/// in `extra_fields.raw_response` (an event without unified content gives a chunk without
/// choices), so the GenAI route can relay the events as sent.
fn gemini_sse(
    key: ProviderKey,
    resp: Response,
    converter: ChatStream,
    raw: bool,
) -> ResponseStream {
    let state = SseState {
        key,
        events: resp.bytes_stream().eventsource(),
        converter,
        pending: VecDeque::new(),
        raw,
    };
    let stream = futures::stream::unfold(Some(state), |state| async move {
        let mut s = state?;
        loop {
            if let Some(chunk) = s.pending.pop_front() {
                return Some((Ok(chunk), Some(s)));
            }
            let fail = |e| Some((Err(e), None));
            match s.events.next().await {
                Some(Ok(ev)) => {
                    let data = ev.data.trim();
                    if data.is_empty() {
                        continue;
                    }
                    let raw_event = s.raw.then(|| serde_json::from_str::<Value>(data).ok());
                    match parse_event(data).and_then(|e| s.converter.push(e)) {
                        Ok(mut chunks) => {
                            if let Some(raw_event) = raw_event {
                                if chunks.is_empty() {
                                    chunks.push(BifrostResponse {
                                        object: "chat.completion.chunk".into(),
                                        choices: Some(Vec::new()),
                                        ..BifrostResponse::default()
                                    });
                                }
                                if let Some(first) = chunks.first_mut() {
                                    first.extra_fields.raw_response = raw_event;
                                }
                            }
                            s.pending.extend(chunks);
                        }
                        Err(e) => return fail(e),
                    }
                }
                Some(Err(EventStreamError::Transport(e))) => {
                    return fail(transport_error(&s.key, e));
                }
                Some(Err(e)) => {
                    return fail(BifrostError::bad_upstream_response(format!(
                        "{} stream is not valid SSE: {e}",
                        s.key
                    )));
                }
                None if s.converter.is_finished() => return None,
                None => {
                    return fail(BifrostError::upstream_broke(format!(
                        "{} stream ended before a finishReason",
                        s.key
                    )));
                }
            }
        }
    });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn base_url_with_or_without_version() {
        let p = |u: &str| {
            GeminiProvider::new(
                ProviderKey::Gemini,
                reqwest::Client::new(),
                u,
                HeaderMap::new(),
            )
            .root
        };
        assert_eq!(
            p("https://generativelanguage.googleapis.com"),
            "https://generativelanguage.googleapis.com/v1beta"
        );
        assert_eq!(p("http://h:1/v1beta/"), "http://h:1/v1beta");
    }

    #[test]
    fn model_names_become_safe_resources() {
        assert_eq!(
            model_resource("gemini-2.0-flash").unwrap(),
            "models/gemini-2.0-flash"
        );
        assert_eq!(model_resource("models/x-1").unwrap(), "models/x-1");
        assert_eq!(model_resource("tunedModels/t").unwrap(), "tunedModels/t");
        for bad in [
            "",
            "a?key=x",
            "models/../files",
            "a b",
            "m:generateContent",
            "/x",
        ] {
            assert!(model_resource(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn google_errors_keep_status_message_and_retry_delay() {
        let body = json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}});
        let e = error_from_body(429, body.to_string().as_bytes(), None);
        assert_eq!(e.http_status(), 429);
        assert_eq!(e.kind(), "RESOURCE_EXHAUSTED");
        assert_eq!(e.error.message, "Quota exceeded");
        assert_eq!(e.retry_after, Some(Duration::from_millis(1500)));
        assert!(e.retryable);
        // The header wins; an over-long delay stops retries.
        let e = error_from_body(
            429,
            body.to_string().as_bytes(),
            Some(Duration::from_secs(120)),
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(120)));
        assert!(!e.retryable);
        // Array form (streaming endpoints) and non-JSON bodies.
        let arr = json!([{"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}}]);
        let e = error_from_body(400, arr.to_string().as_bytes(), None);
        assert_eq!((e.http_status(), e.kind()), (400, "INVALID_ARGUMENT"));
        let e = error_from_body(503, b"upstream down", None);
        assert_eq!(
            (e.http_status(), e.error.message.as_str()),
            (503, "upstream down")
        );
    }

    async fn drain_sse(body: &'static str) -> (Vec<BifrostResponse>, Option<BifrostError>) {
        let resp = Response::from(reqwest::Response::from(http::Response::new(
            reqwest::Body::from(body),
        )));
        let mut s = gemini_sse(
            ProviderKey::Gemini,
            resp,
            ChatStream::new("m", false),
            false,
        );
        let mut chunks = Vec::new();
        while let Some(item) = s.next().await {
            match item {
                Ok(c) => chunks.push(c),
                Err(e) => return (chunks, Some(e)),
            }
        }
        (chunks, None)
    }

    #[tokio::test]
    async fn sse_ends_cleanly_only_after_a_finish_reason() {
        let (chunks, err) = drain_sse(concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\r\n\r\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"STOP\"}],",
            "\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":2,\"totalTokenCount\":3}}\r\n\r\n"
        ))
        .await;
        assert!(err.is_none(), "{err:?}");
        let text: String = chunks
            .iter()
            .filter_map(BifrostResponse::first_text)
            .collect();
        assert_eq!(text, "ab");
        assert_eq!(chunks[1].usage.as_ref().map(|u| u.total_tokens), Some(3));

        let (chunks, err) =
            drain_sse("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n")
                .await;
        assert_eq!(chunks.len(), 1);
        let err = err.unwrap();
        assert_eq!(err.http_status(), 502);
        assert!(err.error.message.contains("before a finishReason"));

        let (_, err) =
            drain_sse("data: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\n\n")
                .await;
        assert_eq!(err.unwrap().kind(), "UNAVAILABLE");
    }

    #[test]
    fn stream_error_event_is_an_error() {
        let e = parse_event(r#"{"error":{"code":500,"message":"boom","status":"INTERNAL"}}"#)
            .unwrap_err();
        assert_eq!((e.http_status(), e.error.message.as_str()), (500, "boom"));
        assert!(parse_event("nope").is_err());
    }
}
