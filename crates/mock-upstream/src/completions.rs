//! `POST /v1/completions`: legacy text completions echoing the prompt.

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

#[derive(Deserialize)]
struct CompletionRequest<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    mock: Option<Value>,
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [TextChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: u32,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

/// The prompt text: a string, or the first element of an array of strings.
fn prompt_text<'a>(prompt: Option<&'a RawValue>) -> Cow<'a, str> {
    let Some(raw) = prompt else {
        return Cow::Borrowed("");
    };
    if raw.get().starts_with('[') {
        let items: Vec<&'a RawValue> = serde_json::from_str(raw.get()).unwrap_or_default();
        openai::content_text(items.first().copied())
    } else {
        openai::content_text(Some(raw))
    }
}

/// Handles a text completion request, faults first.
pub(crate) async fn handle(State(state): State<MockState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match openai::read_body(body).await {
        Ok(bytes) => bytes,
        Err(resp) => return resp,
    };
    let parsed = serde_json::from_slice::<CompletionRequest<'_>>(&bytes);
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

fn respond(state: &MockState, request: &CompletionRequest<'_>, faults: &Faults<'_>) -> Response {
    let prompt = prompt_text(request.prompt);
    let text: &str = faults.content.as_deref().unwrap_or(&prompt);
    let usage = Usage::new(openai::count_tokens(&prompt), openai::count_tokens(text));
    let id = format!("cmpl-mock-{}", state.next_seq());
    let mut body = TextCompletion {
        id: &id,
        object: "text_completion",
        created: openai::now_secs(),
        model: &request.model,
        choices: &[],
        usage: None,
    };
    if request.stream != Some(true) {
        let choices = [TextChoice {
            text,
            index: 0,
            logprobs: (),
            finish_reason: Some("stop"),
        }];
        body.choices = &choices;
        body.usage = Some(usage);
        return openai::json_response(StatusCode::OK, &body);
    }

    let pieces = openai::split_text(text, faults.chunks);
    let mut sse = Sse::with_capacity(pieces.len() + 3);
    for piece in pieces.into_iter().map(Some).chain([None]) {
        let choices = [TextChoice {
            text: piece.unwrap_or(""),
            index: 0,
            logprobs: (),
            finish_reason: if piece.is_none() { Some("stop") } else { None },
        }];
        sse.event(&TextCompletion {
            choices: &choices,
            ..body
        });
    }
    if openai::include_usage(request.stream_options.as_ref()) {
        sse.event(&TextCompletion {
            usage: Some(usage),
            ..body
        });
    }
    sse.done();
    sse.into_response(faults)
}
