//! The Google GenAI surface: `base_url = http://host:8080/genai` for the official
//! `google-genai` SDKs.
//!
//! Routes (`{version}` is `v1beta`, `v1` or `v1alpha`; the Python SDK uses `v1` by default):
//! - `POST /genai/{version}/models/{model}:generateContent`, `:streamGenerateContent`
//!   (always SSE, as with `?alt=sse`, which every SDK sends: Gemini's
//!   `data: {GenerateContentResponse}` events, no terminator), `:embedContent`,
//!   `:batchEmbedContents`, `:countTokens`;
//! - `GET /genai/{version}/models` and `GET /genai/{version}/models/{model}`: the gateway's
//!   models, named `models/<provider>/<model>`.
//!
//! A bare model (`gemini-2.0-flash`) goes to the `gemini` provider, `provider/model` (the
//! slash URL-encoded or not) to that provider. axum cannot route on the `:method` suffix
//! inside a segment, so the model and method come from one wildcard split at its last `:`.
//!
//! The handlers only translate (in `bifrost_core::providers::gemini::reverse`) and call the
//! engine. When the model is served by a Gemini-based provider the caller's body also rides
//! along as a [`NativeRequest`], which that provider sends as is; its answer (or its stream's
//! events) then comes back as Gemini sent it, unless a plugin changed something. Errors, also
//! inside a stream, are answered in Google's
//! `{"error":{"code","message","status"}}` shape. The caller's `x-goog-api-key` / `?key=` is
//! never used, forwarded or logged: the gateway authenticates with its configured keys.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use bifrost_core::RequestContext;
use bifrost_core::providers::gemini::reverse::{
    self, CountTokensRequest, CountTokensResponse, GeminiEventStream, Target,
};
use bifrost_core::providers::gemini::types::{
    BatchEmbedContentsRequest, BatchEmbedContentsResponse, EmbedContentRequest,
    EmbedContentResponse, GenerateContentRequest, GenerateContentResponse,
};
use bifrost_core::providers::native::{NativeDialect, NativeRequest};
use bifrost_core::schemas::{
    BifrostError, BifrostRequest, ChatMessage, ModelParameters, ProviderKey, RequestInput,
    StreamOptions,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Lost, StreamEncoder, add_dropped_header, apply_param_policy, json_ok};
use crate::app::{
    AppState, Inbound, RequestId, UpstreamTime, add_attempt_headers, body_or_error_in, log_error,
};
use crate::errors::Dialect;

const DIALECT: Dialect = Dialect::Google;

/// Marks a `:countTokens` answer that is the gateway's estimate, not the provider's count
/// (the same header as the Anthropic route's).
const X_TOKEN_COUNT: HeaderName = HeaderName::from_static("x-bifrost-token-count");

/// API versions the SDKs put in the path.
const VERSIONS: [&str; 3] = ["v1beta", "v1", "v1alpha"];

/// The `/genai` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/genai/{version}/models", get(list_models))
        .route(
            "/genai/{version}/models/{*rest}",
            get(get_model).post(model_method),
        )
}

/// The model routes re-mounted under an integration prefix
/// (`/litellm/v1beta/models/{model}:generateContent`, …). The model list stays with the
/// OpenAI routes mounted beside them (same path).
pub fn integration_router(prefix: &str) -> Router<AppState> {
    Router::new().route(
        &format!("{prefix}/{{version}}/models/{{*rest}}"),
        get(get_model).post(model_method),
    )
}

/// The `:method` part of a model path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Generate,
    Stream,
    CountTokens,
    Embed,
    BatchEmbed,
}

impl Method {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "generateContent" => Self::Generate,
            "streamGenerateContent" => Self::Stream,
            "countTokens" => Self::CountTokens,
            "embedContent" => Self::Embed,
            "batchEmbedContents" => Self::BatchEmbed,
            _ => return None,
        })
    }
}

/// The provider and model a path names: `gemini-2.0-flash` → (gemini, gemini-2.0-flash);
/// `openai/gpt-4o-mini` → (openai, gpt-4o-mini); a leading `models/` is ignored.
fn route_model(model: &str) -> Result<(ProviderKey, String), BifrostError> {
    let model = model.strip_prefix("models/").unwrap_or(model);
    if model.is_empty() {
        return Err(BifrostError::invalid_param("model", "model is required"));
    }
    Ok(super::route_model(model, ProviderKey::Gemini))
}

fn check_version(version: &str) -> Result<(), Response> {
    if VERSIONS.contains(&version) {
        Ok(())
    } else {
        Err(DIALECT.http_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("unknown API version {version:?} (use v1beta or v1)"),
        ))
    }
}

fn json_response<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(json) => json_ok(json),
        Err(e) => DIALECT.http_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("cannot encode response: {e}"),
        ),
    }
}

fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BifrostError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BifrostError::invalid_request(
            "request body is empty; expected a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| BifrostError::invalid_request(format!("invalid request body: {e}")))
}

/// Everything one model call needs.
struct Call {
    st: AppState,
    ctx: RequestContext,
    provider: ProviderKey,
    model: String,
    /// The provider speaks Gemini's wire format (`gemini` or a custom provider on it).
    same_dialect: bool,
}

impl Call {
    fn target(&self) -> Target<'_> {
        if self.same_dialect {
            Target::Gemini
        } else {
            Target::Other(
                self.st
                    .bifrost
                    .base_provider(&self.provider)
                    .unwrap_or(&self.provider),
            )
        }
    }

    /// The unified request for the translated `input` and `params`, after the
    /// unsupported-parameter policy (`lost`: what the translation could not carry); returns
    /// it with the names for the dropped-parameters header. For a Gemini
    /// target the caller's `native` body is kept beside it for the provider to send as is.
    fn request(
        &mut self,
        input: RequestInput,
        params: ModelParameters,
        lost: Lost,
        native: Option<Map<String, Value>>,
    ) -> Result<(BifrostRequest, Vec<String>), BifrostError> {
        let mut req = BifrostRequest {
            provider: self.provider.clone(),
            model: self.model.clone(),
            input,
            params,
            fallbacks: Vec::new(),
        };
        let dropped = if self.st.bifrost.base_provider(&req.provider).is_some() {
            apply_param_policy(&self.st.bifrost, &mut req, lost)?
        } else {
            // No provider to check against (only a plugin can answer): nothing is refused,
            // but what the translation left out is still named.
            lost.unsupported.into_iter().chain(lost.hints).collect()
        };
        if let Some(body) = native.filter(|_| self.same_dialect) {
            let n = NativeRequest::new(NativeDialect::Gemini, body, Vec::new(), &req);
            self.ctx.extensions.insert(Arc::new(n));
        }
        Ok((req, dropped))
    }

    fn native(&self) -> Option<Arc<NativeRequest>> {
        self.ctx.extensions.get::<Arc<NativeRequest>>().cloned()
    }

    /// The error response, with the attempt headers and upstream time.
    fn fail(&self, e: &BifrostError) -> Response {
        log_error(&self.ctx, e);
        let mut resp = DIALECT.error_response(e);
        add_attempt_headers(&mut resp, self.ctx.retries, None);
        resp.extensions_mut()
            .insert(UpstreamTime(self.ctx.upstream_time));
        resp
    }

    /// A success response, with the attempt headers and upstream time.
    fn answer<T: Serialize>(&self, value: &T, dropped: &[String]) -> Response {
        let mut resp = json_response(value);
        add_attempt_headers(&mut resp, self.ctx.retries, self.ctx.fallback_index);
        add_dropped_header(&mut resp, dropped);
        resp.extensions_mut()
            .insert(UpstreamTime(self.ctx.upstream_time));
        resp
    }
}

/// `POST /genai/{version}/models/{model}:{method}`.
async fn model_method(
    State(st): State<AppState>,
    Path((version, rest)): Path<(String, String)>,
    Inbound { id, headers, body }: Inbound,
) -> Response {
    if let Err(resp) = check_version(&version) {
        return resp;
    }
    let body = match body_or_error_in(DIALECT, body) {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let Some((model, method)) = rest.rsplit_once(':') else {
        return DIALECT.http_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("POST models/{rest} needs a method, e.g. models/{rest}:generateContent"),
        );
    };
    let Some(method) = Method::parse(method) else {
        return DIALECT.http_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("method {method:?} is not supported (generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents)"),
        );
    };
    let (provider, model) = match route_model(model) {
        Ok(pm) => pm,
        Err(e) => return DIALECT.error_response(&e),
    };
    let same_dialect = st.bifrost.base_provider(&provider) == Some(&ProviderKey::Gemini);
    let call = Call {
        ctx: st.context(&id, &headers),
        st,
        provider,
        model,
        same_dialect,
    };
    match method {
        Method::Generate => generate(call, &body).await,
        Method::Stream => stream(call, &body).await,
        Method::Embed => embed(call, &body, false).await,
        Method::BatchEmbed => embed(call, &body, true).await,
        Method::CountTokens => count_tokens(call, &body).await,
    }
}

/// Parses and translates a `generateContent` body (any unsupported field is collected and
/// left to [`apply_param_policy`]).
fn chat_request(
    call: &mut Call,
    bytes: &[u8],
    stream: bool,
) -> Result<(BifrostRequest, Vec<String>), BifrostError> {
    let body: GenerateContentRequest = parse_body(bytes)?;
    let native = call.same_dialect.then(|| raw_object(bytes)).flatten();
    let mut t = reverse::chat_request_from_gemini(&body, call.target(), true)?;
    if stream && !call.same_dialect {
        // Gemini streams end with usage; ask OpenAI-style providers for it too.
        t.params.stream_options = Some(StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        });
    }
    let lost = Lost {
        unsupported: t.dropped,
        hints: t.hints,
    };
    call.request(RequestInput::Chat(t.messages), t.params, lost, native)
}

/// The body as a JSON object, for the native passthrough.
fn raw_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    serde_json::from_slice(bytes).ok()
}

async fn generate(mut call: Call, bytes: &[u8]) -> Response {
    let (req, dropped) = match chat_request(&mut call, bytes, false) {
        Ok(r) => r,
        Err(e) => return DIALECT.error_response(&e),
    };
    let st = call.st.clone();
    match st.bifrost.chat_completion(&mut call.ctx, req).await {
        Ok(resp) => {
            // The upstream's own answer when nothing changed it: safety ratings, citations,
            // grounding and signatures stay as Gemini sent them.
            if let Some(raw) = call.native().and_then(|n| n.take_whole(&resp)) {
                return call.answer(&raw, &dropped);
            }
            let same = resp
                .extra_fields
                .provider
                .as_ref()
                .and_then(|p| st.bifrost.base_provider(p))
                == Some(&ProviderKey::Gemini);
            match reverse::chat_response_to_gemini(&resp, same) {
                Ok(g) => call.answer(&g, &dropped),
                Err(e) => call.fail(&e),
            }
        }
        Err(e) => call.fail(&e),
    }
}

async fn stream(mut call: Call, bytes: &[u8]) -> Response {
    let (req, dropped) = match chat_request(&mut call, bytes, true) {
        Ok(r) => r,
        Err(e) => return DIALECT.error_response(&e),
    };
    let st = call.st.clone();
    match st.bifrost.chat_completion_stream(&mut call.ctx, req).await {
        Ok(stream) => {
            let c = stream.context();
            let (retries, fallback, upstream) = (c.retries, c.fallback_index, c.upstream_time);
            let raw = c
                .extensions
                .get::<Arc<NativeRequest>>()
                .is_some_and(|n| n.streams_raw_from(stream.provider()));
            let same = st.bifrost.base_provider(stream.provider()) == Some(&ProviderKey::Gemini);
            let encoder = if raw {
                Encoder::Raw
            } else {
                Encoder::Convert(Box::new(GeminiEventStream::new(same)))
            };
            let mut resp = super::sse(stream, encoder, DIALECT);
            add_attempt_headers(&mut resp, retries, fallback);
            add_dropped_header(&mut resp, &dropped);
            resp.extensions_mut().insert(UpstreamTime(upstream));
            resp
        }
        Err(e) => call.fail(&e),
    }
}

/// How chunks become Gemini's SSE body: one `data: {GenerateContentResponse}` event per
/// converted chunk; a clean end has no terminator, as with Gemini.
enum Encoder {
    /// Relay the upstream's own events (native passthrough).
    Raw,
    /// Convert unified chunks.
    Convert(Box<GeminiEventStream>),
}

impl StreamEncoder for Encoder {
    fn chunk(
        &mut self,
        chunk: &bifrost_core::schemas::BifrostResponse,
    ) -> Result<Bytes, BifrostError> {
        match self {
            Self::Raw => Ok(chunk
                .extra_fields
                .raw_response
                .as_ref()
                .map(raw_event)
                .unwrap_or_default()),
            Self::Convert(c) => Ok(events(&c.push(chunk)?)),
        }
    }

    fn finish(&mut self) -> Result<Bytes, BifrostError> {
        match self {
            Self::Raw => Ok(Bytes::new()),
            Self::Convert(c) => Ok(events(&c.finish()?)),
        }
    }
}

fn events(evs: &[GenerateContentResponse]) -> Bytes {
    match evs {
        [] => Bytes::new(),
        [one] => event(one),
        many => many
            .iter()
            .flat_map(|e| event(e).to_vec())
            .collect::<Vec<u8>>()
            .into(),
    }
}

fn event(ev: &GenerateContentResponse) -> Bytes {
    match serde_json::to_string(ev) {
        Ok(json) => Bytes::from(format!("data: {json}\n\n")),
        Err(_) => encode_failure(),
    }
}

fn raw_event(ev: &Value) -> Bytes {
    match serde_json::to_string(ev) {
        Ok(json) => Bytes::from(format!("data: {json}\n\n")),
        Err(_) => encode_failure(),
    }
}

fn encode_failure() -> Bytes {
    DIALECT.stream_error_event(&BifrostError::gateway(
        500,
        "internal_error",
        "cannot encode stream event",
    ))
}

async fn embed(mut call: Call, bytes: &[u8], batch: bool) -> Response {
    let translated = if batch {
        parse_body::<BatchEmbedContentsRequest>(bytes).and_then(|b| {
            reverse::embed_request_from_gemini(&b.requests, Some(&b.extra), call.target(), true)
        })
    } else {
        parse_body::<EmbedContentRequest>(bytes).and_then(|r| {
            reverse::embed_request_from_gemini(std::slice::from_ref(&r), None, call.target(), true)
        })
    };
    let built = translated.and_then(|t| {
        let lost = Lost {
            unsupported: t.dropped,
            hints: Vec::new(),
        };
        call.request(RequestInput::Embedding(t.input), t.params, lost, None)
    });
    let (req, dropped) = match built {
        Ok(r) => r,
        Err(e) => return DIALECT.error_response(&e),
    };
    let st = call.st.clone();
    let resp = match st.bifrost.embedding(&mut call.ctx, req).await {
        Ok(r) => r,
        Err(e) => return call.fail(&e),
    };
    let vectors = match reverse::embeddings_to_gemini(&resp) {
        Ok(v) => v,
        Err(e) => return call.fail(&e),
    };
    if batch {
        call.answer(
            &BatchEmbedContentsResponse {
                embeddings: vectors,
                extra: Map::new(),
            },
            &dropped,
        )
    } else {
        match vectors.into_iter().next() {
            Some(embedding) => call.answer(
                &EmbedContentResponse {
                    embedding,
                    extra: Map::new(),
                },
                &dropped,
            ),
            None => call.fail(&BifrostError::bad_upstream_response(
                "the provider returned no embedding",
            )),
        }
    }
}

/// `:countTokens`: the provider's own count where it has one (Gemini's `:countTokens`,
/// Anthropic's `count_tokens`; Gemini's answer is returned as sent), else an estimate (see
/// [`reverse::estimate_tokens`]; header `x-bifrost-token-count: estimated`) rather than an
/// error, since SDK users count tokens to budget.
async fn count_tokens(mut call: Call, bytes: &[u8]) -> Response {
    let body: CountTokensRequest = match parse_body(bytes) {
        Ok(b) => b,
        Err(e) => return DIALECT.error_response(&e),
    };
    let estimate = CountTokensResponse {
        total_tokens: reverse::estimate_tokens(&body),
    };
    let gc = body
        .generate_content_request
        .clone()
        .unwrap_or_else(|| GenerateContentRequest {
            contents: body.contents.clone().unwrap_or_default(),
            ..GenerateContentRequest::default()
        });
    // Counting refuses nothing: what the target cannot take is left out of the count and
    // named in the header.
    let built = reverse::chat_request_from_gemini(&gc, call.target(), true).and_then(|t| {
        let native = call.same_dialect.then(|| raw_object(bytes)).flatten();
        let mut hints = t.dropped;
        hints.extend(t.hints);
        let lost = Lost {
            unsupported: Vec::new(),
            hints,
        };
        call.request(RequestInput::Chat(t.messages), t.params, lost, native)
    });
    let (req, dropped) = match built {
        Ok(r) => r,
        Err(e) => return DIALECT.error_response(&e),
    };
    if req.messages().is_none_or(<[ChatMessage]>::is_empty) {
        return estimated(call.answer(&estimate, &dropped));
    }
    let st = call.st.clone();
    match st.bifrost.count_tokens(&mut call.ctx, req).await {
        Ok(count) => match count.raw.filter(|_| call.same_dialect) {
            Some(raw) => call.answer(&raw, &dropped),
            None => call.answer(
                &CountTokensResponse {
                    total_tokens: count.input_tokens,
                },
                &dropped,
            ),
        },
        Err(e) if e.kind() == "unsupported_operation" => {
            estimated(call.answer(&estimate, &dropped))
        }
        Err(e) => call.fail(&e),
    }
}

fn estimated(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(X_TOKEN_COUNT, HeaderValue::from_static("estimated"));
    resp
}

/// `GET /genai/{version}/models`.
async fn list_models(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = check_version(&version) {
        return resp;
    }
    let ctx = st.context(&id, &headers);
    json_response(&reverse::model_list_to_gemini(
        &st.bifrost.list_models(&ctx).await,
    ))
}

/// `GET /genai/{version}/models/{model}`: the model if some provider lists it.
async fn get_model(
    State(st): State<AppState>,
    axum::Extension(id): axum::Extension<RequestId>,
    Path((version, rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = check_version(&version) {
        return resp;
    }
    let (provider, model) = match route_model(&rest) {
        Ok(pm) => pm,
        Err(e) => return DIALECT.error_response(&e),
    };
    let wanted = format!("{provider}/{model}");
    let ctx = st.context(&id, &headers);
    let list = st.bifrost.list_models(&ctx).await;
    match list.data.iter().find(|m| m.id == wanted) {
        Some(m) => json_response(&reverse::model_to_gemini(&m.id)),
        None => DIALECT.http_error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("model {wanted} is not served by any configured provider"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_route_to_providers() {
        let cases = [
            (
                "gemini-2.0-flash",
                Some((ProviderKey::Gemini, "gemini-2.0-flash")),
            ),
            (
                "models/gemini-2.5-pro",
                Some((ProviderKey::Gemini, "gemini-2.5-pro")),
            ),
            (
                "openai/gpt-4o-mini",
                Some((ProviderKey::OpenAI, "gpt-4o-mini")),
            ),
            (
                "openrouter/meta/llama",
                Some((ProviderKey::OpenRouter, "meta/llama")),
            ),
            ("", None),
            ("models/", None),
        ];
        for (path, expected) in cases {
            let got = route_model(path).ok();
            let expected = expected.map(|(p, m)| (p, m.to_owned()));
            assert_eq!(got, expected, "{path}");
        }
        assert_eq!(Method::parse("streamGenerateContent"), Some(Method::Stream));
        assert_eq!(Method::parse("predict"), None);
    }
}
