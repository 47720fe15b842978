//! Google's Gemini API shapes (`/v1beta`), written from Google's public reference:
//! `models/{model}:generateContent`, `:streamGenerateContent` (`?alt=sse`, or a JSON array
//! without it), `:countTokens` (words of the text, as usage counts them), `:embedContent`,
//! `:batchEmbedContents`, `GET /v1beta/models`, and Google's
//! error body `{"error":{"code","message","status","details"}}` for faults.
//!
//! Replies mirror the OpenAI routes: the last user text is echoed; with `tools` declared
//! and no `functionResponse` in the last turn, the model calls the first declared function
//! with `{"location":"Paris"}`; after a `functionResponse` it answers
//! `tool said: <response content>`. With `thinkingConfig.includeThoughts` a thought part
//! comes first. The same `x-mock-*` / `"mock"` faults apply; the key is read from
//! `x-goog-api-key`.

use std::borrow::Cow;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::MockState;
use crate::embeddings::{fnv1a, vector};
use crate::faults::{self, Faults, X_MOCK_API_KEY};
use crate::openai;
use crate::sse::Sse;

/// Reply when there is no user text to echo.
const FALLBACK_REPLY: &str = "This is a mock response.";
/// Output tokens reported for a function call.
const CALL_TOKENS: u64 = 5;
/// Vector length when the request does not ask for `outputDimensionality`.
const DEFAULT_DIMENSIONS: usize = 8;
/// Upper bound on `outputDimensionality`.
const MAX_DIMENSIONS: usize = 16_384;
/// Page size of `GET /v1beta/models` when the request gives none.
const DEFAULT_PAGE_SIZE: usize = 50;

/// Models served by `GET /v1beta/models`: id, display name, methods.
const MODELS: [(&str, &str, &[&str]); 4] = [
    (
        "gemini-2.0-flash",
        "Gemini 2.0 Flash",
        &["generateContent", "countTokens"],
    ),
    (
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        &["generateContent", "countTokens"],
    ),
    (
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        &["generateContent", "countTokens"],
    ),
    (
        "gemini-embedding-001",
        "Gemini Embedding 001",
        &["embedContent", "countTextTokens"],
    ),
];

#[derive(Deserialize)]
struct GenerateRequest<'a> {
    #[serde(borrow, default)]
    contents: Vec<InContent<'a>>,
    #[serde(borrow, default)]
    tools: Vec<InTool<'a>>,
    #[serde(default, rename = "generationConfig", alias = "generation_config")]
    generation_config: Option<InGenerationConfig>,
    #[serde(default)]
    mock: Option<Value>,
}

#[derive(Deserialize)]
struct InContent<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    parts: Vec<InPart<'a>>,
}

#[derive(Deserialize)]
struct InPart<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(default, rename = "functionResponse", alias = "function_response")]
    function_response: Option<InFunctionResponse>,
}

#[derive(Deserialize)]
struct InFunctionResponse {
    #[serde(default)]
    response: Value,
}

#[derive(Deserialize)]
struct InTool<'a> {
    #[serde(
        borrow,
        default,
        rename = "functionDeclarations",
        alias = "function_declarations"
    )]
    function_declarations: Vec<InDeclaration<'a>>,
}

#[derive(Deserialize)]
struct InDeclaration<'a> {
    #[serde(borrow, default)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
struct InGenerationConfig {
    #[serde(default, rename = "thinkingConfig", alias = "thinking_config")]
    thinking_config: Option<InThinkingConfig>,
}

#[derive(Deserialize)]
struct InThinkingConfig {
    #[serde(default, rename = "includeThoughts", alias = "include_thoughts")]
    include_thoughts: bool,
}

/// `:countTokens` body: `contents`, or a whole `generateContentRequest`.
#[derive(Deserialize)]
struct CountRequest<'a> {
    #[serde(borrow, default)]
    contents: Vec<InContent<'a>>,
    #[serde(
        borrow,
        default,
        rename = "generateContentRequest",
        alias = "generate_content_request"
    )]
    generate_content_request: Option<GenerateRequest<'a>>,
    #[serde(default)]
    mock: Option<Value>,
}

#[derive(Deserialize)]
struct EmbedRequest<'a> {
    #[serde(borrow, default)]
    content: Option<InContent<'a>>,
    #[serde(
        default,
        rename = "outputDimensionality",
        alias = "output_dimensionality"
    )]
    output_dimensionality: Option<usize>,
    #[serde(default)]
    mock: Option<Value>,
}

#[derive(Deserialize)]
struct BatchEmbedRequest<'a> {
    #[serde(borrow, default)]
    requests: Vec<EmbedRequest<'a>>,
    #[serde(default)]
    mock: Option<Value>,
}

/// What the mock answers.
enum Reply<'a> {
    Text(Cow<'a, str>),
    Call { name: &'a str },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse<'a> {
    candidates: [Candidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: OutContent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct OutContent<'a> {
    parts: Vec<OutPart<'a>>,
    role: &'static str,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutPart<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<OutCall<'a>>,
}

#[derive(Serialize)]
struct OutCall<'a> {
    name: &'a str,
    args: CallArgs,
}

#[derive(Serialize)]
struct CallArgs {
    location: &'static str,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
    total_token_count: u64,
}

/// Fields shared by every event of one answer.
struct Head<'a> {
    id: &'a str,
    model: &'a str,
}

impl Head<'_> {
    fn response<'p>(
        &'p self,
        parts: Vec<OutPart<'p>>,
        finish_reason: Option<&'static str>,
        usage: UsageMetadata,
    ) -> GenerateResponse<'p> {
        GenerateResponse {
            candidates: [Candidate {
                content: OutContent {
                    parts,
                    role: "model",
                },
                finish_reason,
                index: 0,
            }],
            usage_metadata: Some(usage),
            model_version: self.model,
            response_id: self.id,
        }
    }
}

/// Google's canonical status name for an HTTP status.
fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// A Google error body; a `retry_after` becomes a `google.rpc.RetryInfo` detail, as Google
/// sends it on 429s.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    retry_after: Option<&str>,
) -> Response {
    let mut error = json!({
        "code": status.as_u16(),
        "message": message,
        "status": status_name(status),
    });
    if let Some(secs) = retry_after {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}s", secs.trim()),
        }]);
    }
    openai::json_response(status, &json!({ "error": error }))
}

fn bad_request(err: &serde_json::Error) -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        &format!("mock: invalid request body: {err}"),
        None,
    )
}

/// `POST /v1beta/models/{model}:{method}`.
pub(crate) async fn handle(
    State(state): State<MockState>,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let Some((model, method)) = rest.rsplit_once(':') else {
        return not_found(&rest);
    };
    let (parts, body) = req.into_parts();
    let bytes = match openai::read_body(body).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    match method {
        "generateContent" | "streamGenerateContent" => {
            let sse = query
                .as_deref()
                .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
            let mode = match method {
                "generateContent" => Mode::Whole,
                _ if sse => Mode::Sse,
                _ => Mode::JsonArray,
            };
            let parsed = serde_json::from_slice::<GenerateRequest<'_>>(&bytes);
            let mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
            answer(&state, &parts, mock, |faults| match &parsed {
                Ok(request) => generate(&state, model, request, faults, mode),
                Err(err) => bad_request(err),
            })
            .await
        }
        "countTokens" => {
            let parsed = serde_json::from_slice::<CountRequest<'_>>(&bytes);
            let mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
            answer(&state, &parts, mock, |_| match &parsed {
                Ok(request) => {
                    let contents = request
                        .generate_content_request
                        .as_ref()
                        .map_or(&request.contents, |g| &g.contents);
                    let total: u64 = contents
                        .iter()
                        .map(|c| openai::count_tokens(&turn_text(c)))
                        .sum();
                    openai::json_response(StatusCode::OK, &json!({"totalTokens": total}))
                }
                Err(err) => bad_request(err),
            })
            .await
        }
        "embedContent" => {
            let parsed = serde_json::from_slice::<EmbedRequest<'_>>(&bytes);
            let mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
            answer(&state, &parts, mock, |_| match &parsed {
                Ok(request) => {
                    let embedding = embed(request);
                    openai::json_response(
                        StatusCode::OK,
                        &json!({"embedding": {"values": embedding}}),
                    )
                }
                Err(err) => bad_request(err),
            })
            .await
        }
        "batchEmbedContents" => {
            let parsed = serde_json::from_slice::<BatchEmbedRequest<'_>>(&bytes);
            let mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
            answer(&state, &parts, mock, |_| match &parsed {
                Ok(batch) => {
                    let embeddings: Vec<Value> = batch
                        .requests
                        .iter()
                        .map(|r| json!({"values": embed(r)}))
                        .collect();
                    openai::json_response(StatusCode::OK, &json!({"embeddings": embeddings}))
                }
                Err(err) => bad_request(err),
            })
            .await
        }
        _ => not_found(&rest),
    }
}

/// Applies faults (Google-style error bodies), then answers with `respond` and tags the
/// response with the key it saw.
async fn answer(
    state: &MockState,
    parts: &Parts,
    mock: Option<&Value>,
    respond: impl FnOnce(&Faults<'_>) -> Response,
) -> Response {
    let mut faults = Faults::parse(&parts.headers, mock);
    let key = match faults::gate_with(state, parts, &mut faults, error_response).await {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let mut resp = respond(&faults);
    resp.headers_mut().insert(X_MOCK_API_KEY, key);
    resp
}

fn not_found(rest: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("mock: no gemini method for models/{rest}"),
        None,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Whole,
    Sse,
    JsonArray,
}

/// Text of a turn: its text parts joined with a space.
fn turn_text<'a>(content: &'a InContent<'a>) -> Cow<'a, str> {
    let mut texts = content.parts.iter().filter_map(|p| p.text.as_deref());
    match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(one), None) => Cow::Borrowed(one),
        (Some(first), Some(second)) => {
            let mut joined = format!("{first} {second}");
            for t in texts {
                joined.push(' ');
                joined.push_str(t);
            }
            Cow::Owned(joined)
        }
    }
}

fn decide<'a>(request: &'a GenerateRequest<'a>, faults: &'a Faults<'a>) -> Reply<'a> {
    let last = request.contents.last();
    let last_response =
        last.and_then(|c| c.parts.iter().find_map(|p| p.function_response.as_ref()));
    let first_function = request
        .tools
        .iter()
        .flat_map(|t| t.function_declarations.iter())
        .next();
    if let Some(decl) = first_function
        && last_response.is_none()
    {
        return Reply::Call { name: &decl.name };
    }
    if let Some(content) = &faults.content {
        return Reply::Text(Cow::Borrowed(content));
    }
    if let Some(r) = last_response {
        let said = match r.response.get("content") {
            Some(Value::String(s)) => s.clone(),
            _ => r.response.to_string(),
        };
        return Reply::Text(Cow::Owned(format!("tool said: {said}")));
    }
    let echo = request
        .contents
        .iter()
        .rev()
        .find(|c| c.role.as_deref().is_none_or(|r| r == "user"))
        .map(turn_text)
        .filter(|t| !t.is_empty());
    Reply::Text(echo.unwrap_or(Cow::Borrowed(FALLBACK_REPLY)))
}

fn generate(
    state: &MockState,
    model: &str,
    request: &GenerateRequest<'_>,
    faults: &Faults<'_>,
    mode: Mode,
) -> Response {
    let reply = decide(request, faults);
    let thinking = request
        .generation_config
        .as_ref()
        .and_then(|g| g.thinking_config.as_ref())
        .is_some_and(|t| t.include_thoughts);
    let thought = match &reply {
        Reply::Text(text) if thinking => Some(format!("Thinking about: {text}")),
        Reply::Call { name } if thinking => Some(format!("I should call {name}.")),
        _ => None,
    };
    let prompt_tokens: u64 = request
        .contents
        .iter()
        .map(|c| openai::count_tokens(&turn_text(c)))
        .sum();
    let candidates_tokens = match &reply {
        Reply::Text(text) => openai::count_tokens(text),
        Reply::Call { .. } => CALL_TOKENS,
    };
    let thoughts_tokens = thought.as_deref().map(openai::count_tokens);
    let usage = UsageMetadata {
        prompt_token_count: prompt_tokens,
        candidates_token_count: Some(candidates_tokens),
        thoughts_token_count: thoughts_tokens,
        total_token_count: prompt_tokens + candidates_tokens + thoughts_tokens.unwrap_or(0),
    };
    let id = format!("gemini-mock-{}", state.next_seq());
    let head = Head { id: &id, model };
    let thought_part = || {
        thought.as_deref().map(|t| OutPart {
            text: Some(t),
            thought: Some(true),
            ..OutPart::default()
        })
    };
    let call_part = |name| OutPart {
        function_call: Some(OutCall {
            name,
            args: CallArgs { location: "Paris" },
        }),
        ..OutPart::default()
    };
    if mode == Mode::Whole {
        let mut parts: Vec<OutPart<'_>> = thought_part().into_iter().collect();
        parts.push(match &reply {
            Reply::Text(text) => OutPart {
                text: Some(text),
                ..OutPart::default()
            },
            Reply::Call { name } => call_part(name),
        });
        return openai::json_response(StatusCode::OK, &head.response(parts, Some("STOP"), usage));
    }
    // Streams: every event carries the prompt count; the last one finishes with full usage.
    let partial = UsageMetadata {
        prompt_token_count: prompt_tokens,
        candidates_token_count: None,
        thoughts_token_count: None,
        total_token_count: prompt_tokens,
    };
    let mut events: Vec<GenerateResponse<'_>> = Vec::new();
    if let Some(t) = thought_part() {
        events.push(head.response(vec![t], None, partial));
    }
    match &reply {
        Reply::Text(text) => {
            let pieces = openai::split_text(text, faults.chunks);
            let last = pieces.len().saturating_sub(1);
            for (i, piece) in pieces.into_iter().enumerate() {
                let part = OutPart {
                    text: Some(piece),
                    ..OutPart::default()
                };
                let (finish, u) = if i == last {
                    (Some("STOP"), usage)
                } else {
                    (None, partial)
                };
                events.push(head.response(vec![part], finish, u));
            }
        }
        Reply::Call { name } => {
            events.push(head.response(vec![call_part(name)], Some("STOP"), usage))
        }
    }
    if mode == Mode::JsonArray {
        return openai::json_response(StatusCode::OK, &events);
    }
    let mut sse = Sse::with_capacity(events.len());
    for e in &events {
        sse.event(e);
    }
    sse.into_response(faults)
}

/// A deterministic unit vector for the request's text.
fn embed(request: &EmbedRequest<'_>) -> Vec<f32> {
    let text = request.content.as_ref().map(turn_text).unwrap_or_default();
    let dims = request
        .output_dimensionality
        .unwrap_or(DEFAULT_DIMENSIONS)
        .clamp(1, MAX_DIMENSIONS);
    vector(fnv1a(text.bytes()), dims)
}

/// `GET /v1beta/models`, paged by `pageSize` and `pageToken` (an offset).
pub(crate) async fn models(RawQuery(query): RawQuery) -> Response {
    let param = |name: &str| {
        query.as_deref().and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse::<usize>().ok())
        })
    };
    let size = param("pageSize")
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, 1000);
    let start = param("pageToken").unwrap_or(0).min(MODELS.len());
    let end = (start + size).min(MODELS.len());
    let models: Vec<Value> = MODELS
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|(id, display, methods)| {
            json!({
                "name": format!("models/{id}"),
                "version": "001",
                "displayName": display,
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": methods,
            })
        })
        .collect();
    let mut body = json!({ "models": models });
    if end < MODELS.len() {
        body["nextPageToken"] = Value::String(end.to_string());
    }
    openai::json_response(StatusCode::OK, &body)
}
