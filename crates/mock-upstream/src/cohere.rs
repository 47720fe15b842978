//! Cohere's v2 API, written from its reference: `POST /v2/chat` (whole answer or the typed
//! event stream) and `POST /v2/embed`, with the usual faults and Cohere's `{"message": …}`
//! error bodies.
//!
//! Replies follow the OpenAI routes: a tool call when `tools` are offered and the last
//! message is not a tool result, `tool said: …` after one, else the last user message echoed
//! (or the `content` fault). Streams are `event: <type>` + `data: {"type": <type>, …}` pairs
//! ending with `message-end` (Cohere sends no `[DONE]`).

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::MockState;
use crate::chat::{
    InMessage, InTool, Reply, TOOL_ARGUMENTS, TOOL_CALL_ID, TOOL_CALL_TOKENS, decide_reply,
};
use crate::embeddings::{fnv1a, vector};
use crate::faults::{self, Faults, X_MOCK_API_KEY};
use crate::openai;
use crate::sse::Sse;

/// Vector length when the request does not ask for `output_dimension`.
const DEFAULT_DIMENSIONS: usize = 8;
/// Upper bound on `output_dimension`.
const MAX_DIMENSIONS: usize = 16_384;

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow, default)]
    messages: Vec<InMessage<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(borrow, default)]
    tools: Option<Vec<InTool<'a>>>,
    #[serde(default)]
    mock: Option<Value>,
}

/// Cohere's error body: `{"message": …}`.
fn error_response(status: StatusCode, message: &str, _retry_after: Option<&str>) -> Response {
    openai::json_response(status, &json!({ "message": message }))
}

fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, message, None)
}

/// Handles `POST /v2/chat`, faults first.
pub(crate) async fn chat(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match openai::read_body(body).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let parsed = serde_json::from_slice::<ChatRequest<'_>>(&bytes);
    let body_mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
    let mut faults = Faults::parse(&parts.headers, body_mock);
    let key = match faults::gate_with(&state, &parts, &mut faults, error_response).await {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let mut resp = match &parsed {
        Ok(request) => respond(&state, request, &faults),
        Err(err) => bad_request(&format!("invalid request: {err}")),
    };
    resp.headers_mut().insert(X_MOCK_API_KEY, key);
    resp
}

fn usage(input: u64, output: u64) -> Value {
    let units = json!({"input_tokens": input, "output_tokens": output});
    json!({"billed_units": units, "tokens": units})
}

fn respond(state: &MockState, request: &ChatRequest<'_>, faults: &Faults<'_>) -> Response {
    let reply = decide_reply(&request.messages, request.tools.as_deref(), faults);
    let input: u64 = request
        .messages
        .iter()
        .map(|m| openai::count_tokens(&openai::content_text(m.content)))
        .sum();
    let output = match &reply {
        Reply::Text(text) => openai::count_tokens(text),
        Reply::ToolCall { .. } => TOOL_CALL_TOKENS,
    };
    let id = format!("cohere-mock-{}", state.next_seq());
    if request.stream == Some(true) {
        return stream(&id, &reply, usage(input, output), faults);
    }
    let (message, finish_reason) = match &reply {
        Reply::Text(text) => (
            json!({"role": "assistant", "content": [{"type": "text", "text": text}]}),
            "COMPLETE",
        ),
        Reply::ToolCall { name } => (
            json!({"role": "assistant", "tool_plan": format!("I will call {name}."),
                "tool_calls": [{"id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": name, "arguments": TOOL_ARGUMENTS}}]}),
            "TOOL_CALL",
        ),
    };
    openai::json_response(
        StatusCode::OK,
        &json!({"id": id, "finish_reason": finish_reason, "message": message,
            "usage": usage(input, output)}),
    )
}

fn event(sse: &mut Sse, value: &Value) {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    sse.named_event(kind, value);
}

fn stream(id: &str, reply: &Reply<'_>, usage: Value, faults: &Faults<'_>) -> Response {
    let mut sse = Sse::with_capacity(16);
    event(
        &mut sse,
        &json!({"id": id, "type": "message-start", "delta": {"message": {"role": "assistant",
            "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
    );
    let finish_reason = match reply {
        Reply::Text(text) => {
            event(
                &mut sse,
                &json!({"type": "content-start", "index": 0,
                    "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            );
            for piece in openai::split_text(text, faults.chunks) {
                event(
                    &mut sse,
                    &json!({"type": "content-delta", "index": 0,
                        "delta": {"message": {"content": {"text": piece}}}}),
                );
            }
            event(&mut sse, &json!({"type": "content-end", "index": 0}));
            "COMPLETE"
        }
        Reply::ToolCall { name } => {
            event(
                &mut sse,
                &json!({"type": "tool-plan-delta",
                    "delta": {"message": {"tool_plan": format!("I will call {name}.")}}}),
            );
            event(
                &mut sse,
                &json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
                    "id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": name, "arguments": ""}}}}}),
            );
            let n = faults.chunks.unwrap_or(3).max(3);
            for piece in openai::split_chars(TOOL_ARGUMENTS, n) {
                event(
                    &mut sse,
                    &json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {
                        "tool_calls": {"function": {"arguments": piece}}}}}),
                );
            }
            event(&mut sse, &json!({"type": "tool-call-end", "index": 0}));
            "TOOL_CALL"
        }
    };
    event(
        &mut sse,
        &json!({"type": "message-end", "delta": {"finish_reason": finish_reason, "usage": usage}}),
    );
    sse.into_response(faults)
}

#[derive(Deserialize)]
struct EmbedRequest<'a> {
    #[serde(default)]
    texts: Option<Vec<String>>,
    #[serde(borrow, default)]
    input_type: Option<Cow<'a, str>>,
    #[serde(default)]
    embedding_types: Option<Vec<String>>,
    #[serde(default)]
    output_dimension: Option<usize>,
    #[serde(default)]
    mock: Option<Value>,
}

/// Handles `POST /v2/embed`: `texts`, `input_type` and `embedding_types` (with `float`)
/// are required, as v2 documents; vectors are deterministic per text.
pub(crate) async fn embed(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match openai::read_body(body).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let parsed = serde_json::from_slice::<EmbedRequest<'_>>(&bytes);
    let body_mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
    let mut faults = Faults::parse(&parts.headers, body_mock);
    let key = match faults::gate_with(&state, &parts, &mut faults, error_response).await {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let mut resp = match &parsed {
        Ok(request) => embed_response(&state, request),
        Err(err) => bad_request(&format!("invalid request: {err}")),
    };
    resp.headers_mut().insert(X_MOCK_API_KEY, key);
    resp
}

fn embed_response(state: &MockState, request: &EmbedRequest<'_>) -> Response {
    let Some(texts) = &request.texts else {
        return bad_request("texts is required");
    };
    if request.input_type.is_none() {
        return bad_request("input_type is required for embed models v3 and higher");
    }
    if !request
        .embedding_types
        .as_deref()
        .is_some_and(|t| t.iter().any(|t| t == "float"))
    {
        return bad_request("embedding_types must include \"float\"");
    }
    let dims = request
        .output_dimension
        .unwrap_or(DEFAULT_DIMENSIONS)
        .clamp(1, MAX_DIMENSIONS);
    let vectors: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| vector(fnv1a(t.bytes()), dims))
        .collect();
    let tokens: u64 = texts.iter().map(|t| openai::count_tokens(t)).sum();
    openai::json_response(
        StatusCode::OK,
        &json!({"id": format!("embed-mock-{}", state.next_seq()),
            "response_type": "embeddings_by_type",
            "embeddings": {"float": vectors}, "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}}}),
    )
}
