//! Anthropic's Messages API: `POST /v1/messages` (whole and streamed),
//! `POST /v1/messages/count_tokens` and, for requests carrying `anthropic-version`,
//! `GET /v1/models` in Anthropic's shape.
//!
//! Replies follow the chat handler's rules in Anthropic's wire format: echo the last user
//! text; with `tools` and no `tool_result` in the last user turn, a `tool_use` of the first
//! tool with input `{"location":"Paris"}`; after a `tool_result`, `tool said: <content>`.
//! Streams send every event type (`message_start`, `content_block_start`, `ping`,
//! `content_block_delta`, `content_block_stop`, `message_delta`, `message_stop`) under named
//! SSE events. Faults come from the shared machinery; error bodies are Anthropic's
//! `{"type":"error","error":{"type","message"}}`. Like Anthropic, the mock answers 400
//! without `anthropic-version` or `max_tokens`.

use std::borrow::Cow;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::MockState;
use crate::faults::{self, Faults, X_MOCK_API_KEY};
use crate::openai;
use crate::sse::Sse;

/// Header every Anthropic request must carry.
const VERSION_HEADER: &str = "anthropic-version";
/// Id of every mocked tool call.
const TOOL_USE_ID: &str = "toolu_mock_1";
/// Input of every mocked tool call, serialized.
const TOOL_INPUT_JSON: &str = r#"{"location":"Paris"}"#;
/// Output tokens reported for a tool call.
const TOOL_USE_TOKENS: u64 = 5;
/// Reply when there is no user text to echo.
const FALLBACK_REPLY: &str = "This is a mock response.";
/// Models served by `GET /v1/models`, newest first, with their release times.
const MODELS: [(&str, &str, &str); 3] = [
    (
        "claude-sonnet-4-5-20250929",
        "Claude Sonnet 4.5",
        "2025-09-29T00:00:00Z",
    ),
    (
        "claude-3-7-sonnet-20250219",
        "Claude Sonnet 3.7",
        "2025-02-19T00:00:00Z",
    ),
    (
        "claude-3-5-haiku-20241022",
        "Claude Haiku 3.5",
        "2024-10-22T00:00:00Z",
    ),
];

#[derive(Deserialize)]
struct MessagesRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    messages: Vec<InMessage<'a>>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    tools: Option<Vec<InTool<'a>>>,
    #[serde(default)]
    mock: Option<Value>,
}

#[derive(Deserialize)]
struct InMessage<'a> {
    #[serde(borrow, default)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InTool<'a> {
    #[serde(borrow, default)]
    name: Cow<'a, str>,
}

/// A block of a user turn; only what finding a `tool_result` needs.
#[derive(Deserialize)]
struct InBlock<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// What the mock answers.
enum Reply<'a> {
    Text(Cow<'a, str>),
    ToolUse { name: &'a str },
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [Block<'a>],
    stop_reason: Option<&'static str>,
    stop_sequence: (),
    usage: Usage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'static str,
        name: &'a str,
        input: Input,
    },
}

/// A tool call's input: the mocked arguments, or `{}` at the start of a streamed call.
#[derive(Serialize)]
#[serde(untagged)]
enum Input {
    Paris { location: &'static str },
    Empty {},
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: Message<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block<'a>,
    },
    Ping,
    ContentBlockDelta {
        index: u32,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::Ping => "ping",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }

    fn write(&self, sse: &mut Sse) {
        sse.named_event(self.name(), self);
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// An Anthropic-style error response.
pub(crate) fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    openai::json_response(
        status,
        &ErrorBody {
            kind: "error",
            error: ErrorDetail { kind, message },
        },
    )
}

/// The Anthropic error `type` for `status`.
pub(crate) fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// Handles `POST /v1/messages`, faults first.
pub(crate) async fn handle(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match openai::read_body(body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                "mock: request body too large or unreadable",
            );
        }
    };
    let parsed = serde_json::from_slice::<MessagesRequest<'_>>(&bytes);
    let body_mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
    let mut faults = Faults::parse(&parts.headers, body_mock);
    let key = match faults::gate(&state, &parts, &mut faults).await {
        Ok(key) => key,
        // A reset keeps its broken body; a status fault gets Anthropic's error shape.
        Err(resp) if faults.reset => return resp,
        Err(resp) => return anthropic_fault(resp, faults.status),
    };
    let mut resp = match &parsed {
        Ok(_) if !parts.headers.contains_key(VERSION_HEADER) => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        ),
        Ok(request) if request.max_tokens.is_none() => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        ),
        Ok(request) => respond(&state, request, &faults),
        Err(err) => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("mock: invalid request body: {err}"),
        ),
    };
    resp.headers_mut().insert(X_MOCK_API_KEY, key);
    resp
}

/// Rebuilds a status fault's response with an Anthropic body, keeping its headers
/// (`Retry-After`, `x-mock-api-key`).
fn anthropic_fault(openai_resp: Response, status: Option<StatusCode>) -> Response {
    let Some(status) = status else {
        return openai_resp;
    };
    let message = format!("mock error {}", status.as_u16());
    let mut resp = error_response(status, error_type(status), &message);
    for name in [header::RETRY_AFTER, X_MOCK_API_KEY] {
        if let Some(value) = openai_resp.headers().get(&name) {
            resp.headers_mut().insert(name, value.clone());
        }
    }
    resp
}

/// The text of the first `tool_result` in a user turn, if it has one.
fn tool_result(content: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = content?;
    if !raw.get().starts_with('[') {
        return None;
    }
    let blocks: Vec<InBlock<'_>> = serde_json::from_str(raw.get()).ok()?;
    blocks
        .into_iter()
        .find(|b| b.kind == "tool_result")
        .map(|b| openai::content_text(b.content))
}

fn decide<'a>(request: &'a MessagesRequest<'a>, faults: &'a Faults<'a>) -> Reply<'a> {
    let last_user = request.messages.last().filter(|m| m.role == "user");
    let result = last_user.and_then(|m| tool_result(m.content));
    if let Some(tool) = request.tools.as_deref().and_then(<[InTool<'_>]>::first)
        && result.is_none()
    {
        return Reply::ToolUse { name: &tool.name };
    }
    if let Some(content) = &faults.content {
        return Reply::Text(Cow::Borrowed(content));
    }
    if let Some(said) = result {
        return Reply::Text(Cow::Owned(format!("tool said: {said}")));
    }
    let echo = request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| openai::content_text(m.content))
        .filter(|t| !t.is_empty());
    Reply::Text(echo.unwrap_or(Cow::Borrowed(FALLBACK_REPLY)))
}

fn respond(state: &MockState, request: &MessagesRequest<'_>, faults: &Faults<'_>) -> Response {
    let reply = decide(request, faults);
    let input_tokens = request
        .messages
        .iter()
        .map(|m| openai::count_tokens(&openai::content_text(m.content)))
        .sum::<u64>()
        + openai::count_tokens(&openai::content_text(request.system));
    let output_tokens = match &reply {
        Reply::Text(text) => openai::count_tokens(text),
        Reply::ToolUse { .. } => TOOL_USE_TOKENS,
    };
    let usage = Usage {
        input_tokens,
        output_tokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
    };
    let id = format!("msg_mock_{}", state.next_seq());
    if request.stream == Some(true) {
        stream(&id, &request.model, &reply, usage, faults)
    } else {
        complete(&id, &request.model, &reply, usage)
    }
}

fn complete(id: &str, model: &str, reply: &Reply<'_>, usage: Usage) -> Response {
    let (block, stop_reason) = match reply {
        Reply::Text(text) => (Block::Text { text }, "end_turn"),
        Reply::ToolUse { name } => (
            Block::ToolUse {
                id: TOOL_USE_ID,
                name,
                input: Input::Paris { location: "Paris" },
            },
            "tool_use",
        ),
    };
    let message = Message {
        id,
        kind: "message",
        role: "assistant",
        model,
        content: &[block],
        stop_reason: Some(stop_reason),
        stop_sequence: (),
        usage,
    };
    openai::json_response(StatusCode::OK, &message)
}

fn stream(id: &str, model: &str, reply: &Reply<'_>, usage: Usage, faults: &Faults<'_>) -> Response {
    let (block, pieces, stop_reason) = match reply {
        Reply::Text(text) => (
            Block::Text { text: "" },
            openai::split_text(text, faults.chunks),
            "end_turn",
        ),
        Reply::ToolUse { name } => (
            Block::ToolUse {
                id: TOOL_USE_ID,
                name,
                input: Input::Empty {},
            },
            openai::split_chars(TOOL_INPUT_JSON, faults.chunks.unwrap_or(3).max(3)),
            "tool_use",
        ),
    };
    let is_tool = matches!(reply, Reply::ToolUse { .. });
    let mut sse = Sse::with_capacity(pieces.len() + 6);
    let start_usage = Usage {
        output_tokens: 1,
        ..usage
    };
    Event::MessageStart {
        message: Message {
            id,
            kind: "message",
            role: "assistant",
            model,
            content: &[],
            stop_reason: None,
            stop_sequence: (),
            usage: start_usage,
        },
    }
    .write(&mut sse);
    Event::ContentBlockStart {
        index: 0,
        content_block: block,
    }
    .write(&mut sse);
    Event::Ping.write(&mut sse);
    for piece in pieces {
        let delta = if is_tool {
            Delta::InputJsonDelta {
                partial_json: piece,
            }
        } else {
            Delta::TextDelta { text: piece }
        };
        Event::ContentBlockDelta { index: 0, delta }.write(&mut sse);
    }
    Event::ContentBlockStop { index: 0 }.write(&mut sse);
    Event::MessageDelta {
        delta: StopDelta {
            stop_reason,
            stop_sequence: (),
        },
        usage: OutputUsage {
            output_tokens: usage.output_tokens,
        },
    }
    .write(&mut sse);
    Event::MessageStop.write(&mut sse);
    sse.into_response(faults)
}

/// Handles `POST /v1/messages/count_tokens`: `{"input_tokens": n}`, counted as for a
/// message (whitespace-separated words of the messages and the system prompt); faults apply.
pub(crate) async fn count_tokens(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = openai::read_body(body).await else {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            "mock: request body too large or unreadable",
        );
    };
    let parsed = serde_json::from_slice::<MessagesRequest<'_>>(&bytes);
    let body_mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
    let mut faults = Faults::parse(&parts.headers, body_mock);
    let key = match faults::gate(&state, &parts, &mut faults).await {
        Ok(key) => key,
        Err(resp) if faults.reset => return resp,
        Err(resp) => return anthropic_fault(resp, faults.status),
    };
    let mut resp = match &parsed {
        Ok(_) if !parts.headers.contains_key(VERSION_HEADER) => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        ),
        Ok(request) if request.max_tokens.is_some() => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Extra inputs are not permitted",
        ),
        Ok(request) => {
            let input_tokens = request
                .messages
                .iter()
                .map(|m| openai::count_tokens(&openai::content_text(m.content)))
                .sum::<u64>()
                + openai::count_tokens(&openai::content_text(request.system));
            openai::json_response(
                StatusCode::OK,
                &serde_json::json!({ "input_tokens": input_tokens }),
            )
        }
        Err(err) => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("mock: invalid request body: {err}"),
        ),
    };
    resp.headers_mut().insert(X_MOCK_API_KEY, key);
    resp
}

#[derive(Deserialize)]
pub(crate) struct ModelsQuery {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after_id: Option<String>,
}

#[derive(Serialize)]
struct ModelEntry {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'static str,
    display_name: &'static str,
    created_at: &'static str,
}

#[derive(Serialize)]
struct ModelsPage {
    data: Vec<ModelEntry>,
    has_more: bool,
    first_id: Option<&'static str>,
    last_id: Option<&'static str>,
}

/// `GET /v1/models`: Anthropic's paged shape (`limit`, `after_id`) when the request carries
/// `anthropic-version`, otherwise OpenAI's list.
pub(crate) async fn models(headers: HeaderMap, Query(query): Query<ModelsQuery>) -> Response {
    if !headers.contains_key(VERSION_HEADER) {
        return openai::models().await;
    }
    let limit = query.limit.unwrap_or(20);
    let start = query
        .after_id
        .and_then(|a| MODELS.iter().position(|(id, _, _)| *id == a))
        .map_or(0, |i| i + 1);
    let data: Vec<ModelEntry> = MODELS
        .iter()
        .skip(start)
        .take(limit.clamp(1, 1000))
        .map(|&(id, display_name, created_at)| ModelEntry {
            kind: "model",
            id,
            display_name,
            created_at,
        })
        .collect();
    let page = ModelsPage {
        has_more: start + data.len() < MODELS.len(),
        first_id: data.first().map(|m| m.id),
        last_id: data.last().map(|m| m.id),
        data,
    };
    openai::json_response(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_result_text_is_found_in_blocks_only() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"[{"type":"tool_result","tool_use_id":"t","content":"sunny"},{"type":"text","text":"x"}]"#,
        )
        .unwrap();
        assert_eq!(tool_result(Some(&raw)).as_deref(), Some("sunny"));
        let nested: Box<RawValue> = serde_json::from_str(
            r#"[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"21C"}]}]"#,
        )
        .unwrap();
        assert_eq!(tool_result(Some(&nested)).as_deref(), Some("21C"));
        let plain: Box<RawValue> = serde_json::from_str(r#""hello""#).unwrap();
        assert!(tool_result(Some(&plain)).is_none());
    }

    #[test]
    fn error_types_follow_anthropic() {
        assert_eq!(
            error_type(StatusCode::TOO_MANY_REQUESTS),
            "rate_limit_error"
        );
        assert_eq!(
            error_type(StatusCode::from_u16(529).unwrap()),
            "overloaded_error"
        );
        assert_eq!(error_type(StatusCode::INTERNAL_SERVER_ERROR), "api_error");
        assert_eq!(error_type(StatusCode::BAD_REQUEST), "invalid_request_error");
    }
}
