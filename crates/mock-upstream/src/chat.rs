//! `POST /v1/chat/completions`: echo replies, tool calls, streaming.

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::MockState;
use crate::faults::{self, Faults, X_MOCK_API_KEY};
use crate::openai::{self, StreamOptions, Usage};
use crate::sse::Sse;

/// Arguments of every mocked tool call.
pub(crate) const TOOL_ARGUMENTS: &str = r#"{"location":"Paris"}"#;
/// Id of every mocked tool call.
pub(crate) const TOOL_CALL_ID: &str = "call_mock_1";
/// Completion tokens reported for a tool call.
pub(crate) const TOOL_CALL_TOKENS: u64 = 5;
/// Reply when there is no user message to echo.
pub(crate) const FALLBACK_REPLY: &str = "This is a mock response.";

#[derive(Deserialize)]
struct ChatRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    messages: Vec<InMessage<'a>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(borrow, default)]
    tools: Option<Vec<InTool<'a>>>,
    #[serde(default)]
    mock: Option<Value>,
}

/// A message as the OpenAI-style routes (OpenAI, Cohere) read it.
#[derive(Deserialize)]
pub(crate) struct InMessage<'a> {
    #[serde(borrow, default)]
    pub(crate) role: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) content: Option<&'a RawValue>,
}

/// An offered tool (`{type, function: {name, …}}`).
#[derive(Deserialize)]
pub(crate) struct InTool<'a> {
    #[serde(borrow, default)]
    function: Option<InFunction<'a>>,
}

#[derive(Deserialize)]
struct InFunction<'a> {
    #[serde(borrow, default)]
    name: Cow<'a, str>,
}

/// What the mock answers.
pub(crate) enum Reply<'a> {
    Text(Cow<'a, str>),
    ToolCall { name: &'a str },
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: OutMessage<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCall<'a>; 1]>,
    refusal: (),
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'static str,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'static str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Fields shared by every chunk of one stream.
struct StreamHead<'a> {
    id: &'a str,
    created: u64,
    model: &'a str,
}

impl StreamHead<'_> {
    fn chunk(&self, sse: &mut Sse, delta: Delta<'_>, finish_reason: Option<&'static str>) {
        let choices = [ChunkChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason,
        }];
        sse.event(&Chunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            choices: &choices,
            usage: None,
        });
    }

    fn usage(&self, sse: &mut Sse, usage: Usage) {
        sse.event(&Chunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            choices: &[],
            usage: Some(usage),
        });
    }
}

/// Handles a chat completion request, faults first.
pub(crate) async fn handle(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match openai::read_body(body).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let parsed = serde_json::from_slice::<ChatRequest<'_>>(&bytes);
    let body_mock = parsed.as_ref().ok().and_then(|r| r.mock.as_ref());
    let mut faults = Faults::parse(&parts.headers, body_mock);
    let key = match faults::gate(&state, &parts, &mut faults).await {
        Ok(key) => key,
        Err(resp) => return resp,
    };
    let mut resp = match &parsed {
        Ok(request) => respond(&state, request, &faults),
        Err(err) => openai::bad_request(err),
    };
    resp.headers_mut().insert(X_MOCK_API_KEY, key);
    resp
}

/// The reply rule shared by the OpenAI-style routes: a tool call when tools are offered and
/// the last message is not a tool result, `tool said: …` after one, else the `content`
/// fault or the last user message echoed.
pub(crate) fn decide_reply<'a>(
    messages: &'a [InMessage<'a>],
    tools: Option<&'a [InTool<'a>]>,
    faults: &'a Faults<'a>,
) -> Reply<'a> {
    let last = messages.last();
    let last_is_tool = last.is_some_and(|m| m.role == "tool");
    if let Some(tool) = tools.and_then(<[InTool<'_>]>::first)
        && !last_is_tool
    {
        let name = tool.function.as_ref().map_or("", |f| &f.name);
        return Reply::ToolCall { name };
    }
    if let Some(content) = &faults.content {
        return Reply::Text(Cow::Borrowed(content));
    }
    if let Some(tool_message) = last.filter(|_| last_is_tool) {
        let said = openai::content_text(tool_message.content);
        return Reply::Text(Cow::Owned(format!("tool said: {said}")));
    }
    let echo = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| openai::content_text(m.content));
    Reply::Text(echo.unwrap_or(Cow::Borrowed(FALLBACK_REPLY)))
}

fn respond(state: &MockState, request: &ChatRequest<'_>, faults: &Faults<'_>) -> Response {
    let reply = decide_reply(&request.messages, request.tools.as_deref(), faults);
    let prompt_tokens = request
        .messages
        .iter()
        .map(|m| openai::count_tokens(&openai::content_text(m.content)))
        .sum();
    let completion_tokens = match &reply {
        Reply::Text(text) => openai::count_tokens(text),
        Reply::ToolCall { .. } => TOOL_CALL_TOKENS,
    };
    let usage = Usage::new(prompt_tokens, completion_tokens);
    let id = format!("chatcmpl-mock-{}", state.next_seq());
    let head = StreamHead {
        id: &id,
        created: openai::now_secs(),
        model: &request.model,
    };
    if request.stream == Some(true) {
        let with_usage = openai::include_usage(request.stream_options.as_ref());
        stream(&head, &reply, usage, with_usage, faults)
    } else {
        complete(&head, &reply, usage)
    }
}

fn complete(head: &StreamHead<'_>, reply: &Reply<'_>, usage: Usage) -> Response {
    let (message, finish_reason) = match reply {
        Reply::Text(text) => (
            OutMessage {
                role: "assistant",
                content: Some(text),
                tool_calls: None,
                refusal: (),
            },
            "stop",
        ),
        Reply::ToolCall { name } => (
            OutMessage {
                role: "assistant",
                content: None,
                tool_calls: Some([ToolCall {
                    id: TOOL_CALL_ID,
                    kind: "function",
                    function: FunctionCall {
                        name,
                        arguments: TOOL_ARGUMENTS,
                    },
                }]),
                refusal: (),
            },
            "tool_calls",
        ),
    };
    let completion = Completion {
        id: head.id,
        object: "chat.completion",
        created: head.created,
        model: head.model,
        choices: [Choice {
            index: 0,
            message,
            logprobs: (),
            finish_reason,
        }],
        usage,
    };
    openai::json_response(StatusCode::OK, &completion)
}

fn stream(
    head: &StreamHead<'_>,
    reply: &Reply<'_>,
    usage: Usage,
    with_usage: bool,
    faults: &Faults<'_>,
) -> Response {
    let (mut sse, finish_reason) = match reply {
        Reply::Text(text) => {
            let pieces = openai::split_text(text, faults.chunks);
            let mut sse = Sse::with_capacity(pieces.len() + 4);
            let role = Delta {
                role: Some("assistant"),
                content: Some(""),
                ..Delta::default()
            };
            head.chunk(&mut sse, role, None);
            for piece in pieces {
                let delta = Delta {
                    content: Some(piece),
                    ..Delta::default()
                };
                head.chunk(&mut sse, delta, None);
            }
            (sse, "stop")
        }
        Reply::ToolCall { name } => {
            let pieces = openai::split_chars(TOOL_ARGUMENTS, faults.chunks.unwrap_or(3).max(3));
            let mut sse = Sse::with_capacity(pieces.len() + 5);
            let role = Delta {
                role: Some("assistant"),
                ..Delta::default()
            };
            head.chunk(&mut sse, role, None);
            let start = Delta {
                tool_calls: Some([ToolCallDelta {
                    index: 0,
                    id: Some(TOOL_CALL_ID),
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: Some(name),
                        arguments: "",
                    },
                }]),
                ..Delta::default()
            };
            head.chunk(&mut sse, start, None);
            for piece in pieces {
                let delta = Delta {
                    tool_calls: Some([ToolCallDelta {
                        index: 0,
                        id: None,
                        kind: None,
                        function: FunctionDelta {
                            name: None,
                            arguments: piece,
                        },
                    }]),
                    ..Delta::default()
                };
                head.chunk(&mut sse, delta, None);
            }
            (sse, "tool_calls")
        }
    };
    head.chunk(&mut sse, Delta::default(), Some(finish_reason));
    if with_usage {
        head.usage(&mut sse, usage);
    }
    sse.done();
    sse.into_response(faults)
}
