//! OpenAI, and the base for every OpenAI-compatible API (another base URL and auth header).

use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CallOptions, Provider, ResponseStream, normalize_base_url, sse};
use crate::schemas::{
    BifrostError, BifrostRequest, BifrostResponse, ChatMessage, EmbeddingInput, ErrorBody,
    ModelList, ModelParameters, PromptInput, ProviderKey, RequestInput,
};

/// OpenAI's API root (the version segment is added per route).
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com";

/// Longest `Retry-After` we honour; a provider asking for more is not retried.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An OpenAI-compatible provider.
#[derive(Debug)]
pub struct OpenAIProvider {
    key: ProviderKey,
    client: reqwest::Client,
    chat_url: String,
    completions_url: String,
    embeddings_url: String,
    models_url: String,
    headers: HeaderMap,
}

impl OpenAIProvider {
    /// Creates a provider for `base_url` (with or without `/v1`), sending `headers` on every call.
    pub fn new(
        key: ProviderKey,
        client: reqwest::Client,
        base_url: &str,
        headers: HeaderMap,
    ) -> Self {
        let root = format!("{}/v1", normalize_base_url(base_url, "/v1"));
        Self {
            key,
            client,
            chat_url: format!("{root}/chat/completions"),
            completions_url: format!("{root}/completions"),
            embeddings_url: format!("{root}/embeddings"),
            models_url: format!("{root}/models"),
            headers,
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        opts: CallOptions<'_>,
    ) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .request(method, url)
            .headers(self.headers.clone())
            .timeout(opts.timeout);
        let api_key = opts.api_key();
        if !api_key.is_empty() {
            rb = rb.bearer_auth(api_key);
        }
        for (k, v) in opts.extra_headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb
    }

    async fn post_json<B: Serialize>(
        &self,
        url: &str,
        body: &B,
        opts: CallOptions<'_>,
    ) -> Result<reqwest::Response, BifrostError> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BifrostError::invalid_request(format!("cannot encode request: {e}")))?;
        let resp = self
            .request(reqwest::Method::POST, url, opts)
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(bytes)
            .send()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
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
        let mut out: BifrostResponse = serde_json::from_slice(&bytes).map_err(|e| {
            BifrostError::bad_upstream_response(format!("cannot parse {} response: {e}", self.key))
        })?;
        if opts.raw_response {
            out.extra_fields.raw_response = serde_json::from_slice(&bytes).ok();
        }
        Ok(out)
    }
}

/// The chat body: the unified request borrowed as OpenAI's wire format, without copies.
#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    #[serde(flatten)]
    params: &'a ModelParameters,
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

impl Provider for OpenAIProvider {
    async fn chat_completion(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<BifrostResponse, BifrostError> {
        let body = chat_body(req, false)?;
        self.post_for_response(&self.chat_url, &body, opts).await
    }

    async fn chat_completion_stream(
        &self,
        req: &BifrostRequest,
        opts: CallOptions<'_>,
    ) -> Result<ResponseStream, BifrostError> {
        let body = chat_body(req, true)?;
        let resp = self.post_json(&self.chat_url, &body, opts).await?;
        Ok(sse::openai_sse(resp, parse_chunk))
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
        let body = CompletionBody {
            model: &req.model,
            prompt,
            params: &req.params,
        };
        self.post_for_response(&self.completions_url, &body, opts)
            .await
    }

    async fn embedding(
        &self,
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
        self.post_for_response(&self.embeddings_url, &body, opts)
            .await
    }

    async fn list_models(&self, opts: CallOptions<'_>) -> Result<ModelList, BifrostError> {
        let resp = self
            .request(reqwest::Method::GET, &self.models_url, opts)
            .send()
            .await
            .map_err(|e| transport_error(&self.key, e))?;
        let resp = check_status(resp).await?;
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

fn chat_body(req: &BifrostRequest, stream: bool) -> Result<ChatBody<'_>, BifrostError> {
    let RequestInput::Chat(messages) = &req.input else {
        return Err(BifrostError::invalid_request(
            "chat completion needs messages",
        ));
    };
    Ok(ChatBody {
        model: &req.model,
        messages,
        params: &req.params,
        stream,
    })
}

fn parse_chunk(data: &str) -> Result<BifrostResponse, BifrostError> {
    if data.starts_with("{\"error\"") {
        if let Ok(env) = serde_json::from_str::<OpenAIErrorEnvelope>(data) {
            return Err(BifrostError::provider(502, env.error));
        }
    }
    serde_json::from_str(data)
        .map_err(|e| BifrostError::bad_upstream_response(format!("cannot parse stream chunk: {e}")))
}

/// Maps a non-2xx answer to a provider error, keeping the provider's own message and
/// its `Retry-After`.
pub(crate) async fn check_status(
    resp: reqwest::Response,
) -> Result<reqwest::Response, BifrostError> {
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
    let bytes = resp.bytes().await.unwrap_or_default();
    let body = match serde_json::from_slice::<OpenAIErrorEnvelope>(&bytes) {
        Ok(env) => env.error,
        Err(_) => ErrorBody {
            message: match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => v.to_string(),
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

/// Maps a reqwest failure without echoing the URL's query or any header (no secrets).
pub(crate) fn transport_error(provider: &ProviderKey, e: reqwest::Error) -> BifrostError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body broke"
    } else {
        "request failed"
    };
    BifrostError::upstream_unreachable(
        e.is_timeout(),
        format!("{provider}: {what}: {}", e.without_url()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{FunctionDef, Role, Tool};
    use serde_json::json;

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
        let v = serde_json::to_value(chat_body(&req, true).unwrap()).unwrap();
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
