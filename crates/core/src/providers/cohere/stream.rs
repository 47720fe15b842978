//! Cohere v2 chat streams as OpenAI `chat.completion.chunk`s.
//!
//! Cohere sends typed events (`message-start`, `content-delta`, `tool-plan-delta`,
//! `tool-call-start`/`-delta`/`-end`, `message-end`, …), named both in the SSE `event:` field
//! and in the data's `type`; the data's `type` is what is read here. The stream has no
//! `[DONE]`: `message-end` (finish reason and usage) is the last event, and a body that ends
//! before it is reported as an error, never as a finished answer.

use crate::providers::pool::Response;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;

use super::response::{CohereUsage, finish_reason, now_secs};
use crate::providers::ResponseStream;
use crate::schemas::{
    BifrostError, BifrostResponse, ChatMessage, Choice, ErrorBody, FunctionCall, MessageContent,
    Role, ToolCall,
};

/// One event's data.
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    delta: Option<Delta>,
    /// Present on error events.
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    message: Option<DeltaMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

/// `content` is a list in `message-start` and an object in content events, and
/// `tool_calls` likewise, so both are read loosely.
#[derive(Debug, Deserialize)]
struct DeltaMessage {
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    tool_plan: Option<String>,
    #[serde(default)]
    tool_calls: Option<Value>,
}

/// What one stream has seen so far.
#[derive(Debug)]
pub(super) struct StreamState {
    id: String,
    model: String,
    created: u64,
    /// `message-end` arrived: the stream is complete.
    finished: bool,
}

impl StreamState {
    /// A fresh state for a stream answering `model`.
    pub(super) fn new(model: &str) -> Self {
        Self {
            id: String::new(),
            model: model.to_owned(),
            created: now_secs(),
            finished: false,
        }
    }

    fn chunk(&self, delta: ChatMessage, finish_reason: Option<String>) -> BifrostResponse {
        BifrostResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: Some(vec![Choice {
                index: 0,
                delta: Some(delta),
                finish_reason,
                ..Choice::default()
            }]),
            ..BifrostResponse::default()
        }
    }

    /// The chunk for one event's data; `Ok(None)` for events with nothing to forward
    /// (`content-start` without text, `*-end`, citations, debug).
    pub(super) fn on_event(&mut self, data: &str) -> Result<Option<BifrostResponse>, BifrostError> {
        let ev: Event = serde_json::from_str(data).map_err(|e| {
            BifrostError::bad_upstream_response(format!("cannot parse cohere stream event: {e}"))
        })?;
        let message = ev.delta.as_ref().and_then(|d| d.message.as_ref());
        let delta = match ev.kind.as_str() {
            "message-start" => {
                if let Some(id) = ev.id {
                    self.id = id;
                }
                ChatMessage {
                    role: Some(Role::Assistant),
                    ..ChatMessage::default()
                }
            }
            "content-start" | "content-delta" => {
                let content = message.and_then(|m| m.content.as_ref());
                let text = content.and_then(|c| c.get("text")).and_then(Value::as_str);
                let thinking = content
                    .and_then(|c| c.get("thinking"))
                    .and_then(Value::as_str);
                match (text, thinking) {
                    (Some(t), _) if !t.is_empty() => ChatMessage {
                        content: Some(MessageContent::Text(t.to_owned())),
                        ..ChatMessage::default()
                    },
                    (_, Some(t)) if !t.is_empty() => ChatMessage {
                        reasoning_content: Some(t.to_owned()),
                        ..ChatMessage::default()
                    },
                    _ => return Ok(None),
                }
            }
            "tool-plan-delta" => match message.and_then(|m| m.tool_plan.as_deref()) {
                Some(plan) if !plan.is_empty() => ChatMessage {
                    reasoning_content: Some(plan.to_owned()),
                    ..ChatMessage::default()
                },
                _ => return Ok(None),
            },
            kind @ ("tool-call-start" | "tool-call-delta") => {
                let Some(call) = message.and_then(|m| m.tool_calls.as_ref()) else {
                    return Ok(None);
                };
                let start = kind == "tool-call-start";
                let function = call.get("function");
                let text = |v: Option<&Value>, name: &str| {
                    v.and_then(|f| f.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                ChatMessage {
                    tool_calls: Some(vec![ToolCall {
                        index: Some(ev.index.unwrap_or(0)),
                        id: start.then(|| text(Some(call), "id")).flatten(),
                        kind: start.then(|| "function".to_owned()),
                        function: FunctionCall {
                            name: start.then(|| text(function, "name")).flatten(),
                            arguments: text(function, "arguments").unwrap_or_default(),
                        },
                    }]),
                    ..ChatMessage::default()
                }
            }
            "message-end" => {
                self.finished = true;
                let d = ev.delta.as_ref();
                let reason = d
                    .and_then(|d| d.finish_reason.as_deref())
                    .map(finish_reason);
                let mut chunk = self.chunk(ChatMessage::default(), reason);
                chunk.usage = d.and_then(|d| d.usage.as_ref()).map(CohereUsage::to_usage);
                return Ok(Some(chunk));
            }
            "" => match ev.message {
                // An error object in place of an event.
                Some(message) => {
                    return Err(BifrostError::provider(
                        502,
                        ErrorBody {
                            message,
                            ..ErrorBody::default()
                        },
                    ));
                }
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        Ok(Some(self.chunk(delta, None)))
    }
}

/// Turns a `/v2/chat` streaming response into chunks, ending after `message-end`.
pub(super) fn chat_stream(resp: Response, model: &str) -> ResponseStream {
    let events = resp.bytes_stream().eventsource();
    let state = StreamState::new(model);
    let stream = futures::stream::unfold(Some((events, state)), |s| async move {
        let (mut events, mut state) = s?;
        if state.finished {
            return None;
        }
        loop {
            match events.next().await {
                Some(Ok(ev)) => {
                    let data = ev.data.trim();
                    if data.is_empty() {
                        continue;
                    }
                    match state.on_event(data) {
                        Ok(Some(chunk)) => return Some((Ok(chunk), Some((events, state)))),
                        Ok(None) => {}
                        Err(e) => return Some((Err(e), None)),
                    }
                }
                Some(Err(e)) => {
                    return Some((
                        Err(BifrostError::upstream_broke(format!(
                            "cohere stream broke: {e}"
                        ))),
                        None,
                    ));
                }
                None => {
                    return Some((
                        Err(BifrostError::upstream_broke(
                            "cohere stream ended before message-end",
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
    use serde_json::json;

    fn feed(events: &[Value]) -> (Vec<Value>, StreamState) {
        let mut st = StreamState::new("command-a-03-2025");
        let chunks = events
            .iter()
            .filter_map(|e| st.on_event(&e.to_string()).unwrap())
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        (chunks, st)
    }

    #[test]
    fn text_stream() {
        let (chunks, st) = feed(&[
            json!({"id": "s-1", "type": "message-start", "delta": {"message": {"role": "assistant",
                "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
            json!({"type": "content-start", "index": 0,
                "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hel"}}}}),
            json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "lo"}}}}),
            json!({"type": "content-end", "index": 0}),
            json!({"type": "message-end", "delta": {"finish_reason": "COMPLETE",
                "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 2},
                    "tokens": {"input_tokens": 9, "output_tokens": 2}}}}),
        ]);
        assert!(st.finished);
        assert_eq!(chunks.len(), 4);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant"})
        );
        assert_eq!(chunks[1]["id"], "s-1");
        assert_eq!(chunks[1]["object"], "chat.completion.chunk");
        assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Hel"}));
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], Value::Null);
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(
            chunks[3]["usage"],
            json!({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11})
        );
    }

    #[test]
    fn tool_call_stream() {
        let (chunks, _) = feed(&[
            json!({"id": "s-2", "type": "message-start", "delta": {"message": {"role": "assistant"}}}),
            json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will"}}}),
            json!({"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
                "id": "get_weather_1", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}}}}),
            json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {
                "function": {"arguments": "{\"location\":"}}}}}),
            json!({"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": {
                "function": {"arguments": "\"Paris\"}"}}}}}),
            json!({"type": "tool-call-end", "index": 0}),
            json!({"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}}),
        ]);
        assert_eq!(
            chunks[1]["choices"][0]["delta"],
            json!({"reasoning_content": "I will"})
        );
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "id": "get_weather_1", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}])
        );
        assert_eq!(
            chunks[3]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "function": {"arguments": "{\"location\":"}}])
        );
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn error_event_and_garbage() {
        let mut st = StreamState::new("m");
        let e = st.on_event(r#"{"message": "internal error"}"#).unwrap_err();
        assert_eq!(e.error.message, "internal error");
        assert!(st.on_event("not json").is_err());
        assert!(
            st.on_event(r#"{"type": "citation-start"}"#)
                .unwrap()
                .is_none()
        );
    }
}
