//! ConverseStream answers as OpenAI `chat.completion.chunk`s.
//!
//! The body is AWS's binary event stream (`application/vnd.amazon.eventstream`): frames with
//! a length prelude, typed headers and a CRC, decoded by `aws-smithy-eventstream`. Each event
//! names its kind in `:event-type` (`messageStart`, `contentBlockStart`, `contentBlockDelta`,
//! `contentBlockStop`, `messageStop`, `metadata`) and carries JSON; an exception arrives as a
//! frame with `:message-type: exception` and `:exception-type` (e.g. `throttlingException`).
//!
//! `messageStop` (with the stop reason) ends the answer; `metadata` (usage) usually follows
//! it. A body that ends before `messageStop` is reported as an error, never as a finished
//! answer, and a frame larger than `max_stream_event_size_kb` stops the stream.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue as FrameValue, Message as Frame};
use bytes::BytesMut;
use futures::StreamExt;

use super::convert::{finish_reason, now_secs, provider_error, usage};
use super::types::StreamPayload;
use crate::providers::ResponseStream;
use crate::providers::pool::Response;
use crate::schemas::{
    BifrostError, BifrostResponse, ChatMessage, Choice, FunctionCall, MessageContent, Role,
    ToolCall,
};

/// What one stream has seen so far.
#[derive(Debug)]
pub(super) struct StreamState {
    id: String,
    model: String,
    created: u64,
    /// Content block index → tool call index, for the blocks that are tool calls.
    tool_blocks: Vec<(u32, u32)>,
    /// `messageStop` arrived: the answer is complete.
    stopped: bool,
}

fn header<'a>(frame: &'a Frame, name: &str) -> Option<&'a str> {
    frame
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            FrameValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

impl StreamState {
    /// A fresh state for a stream answering `model`, with AWS's request id as its id.
    pub(super) fn new(id: String, model: &str) -> Self {
        Self {
            id,
            model: model.to_owned(),
            created: now_secs(),
            tool_blocks: Vec::new(),
            stopped: false,
        }
    }

    fn chunk(&self, delta: Option<ChatMessage>, finish_reason: Option<String>) -> BifrostResponse {
        BifrostResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: Some(
                delta
                    .map(|delta| Choice {
                        index: 0,
                        delta: Some(delta),
                        finish_reason,
                        ..Choice::default()
                    })
                    .into_iter()
                    .collect(),
            ),
            ..BifrostResponse::default()
        }
    }

    /// The chunk for one decoded frame; `Ok(None)` for events with nothing to forward.
    pub(super) fn on_frame(
        &mut self,
        frame: &Frame,
    ) -> Result<Option<BifrostResponse>, BifrostError> {
        let payload = || -> Result<StreamPayload, BifrostError> {
            if frame.payload().is_empty() {
                return Ok(StreamPayload::default());
            }
            serde_json::from_slice(frame.payload()).map_err(|e| {
                BifrostError::bad_upstream_response(format!(
                    "cannot parse bedrock stream event: {e}"
                ))
            })
        };
        match header(frame, ":message-type") {
            Some("event") | None => {}
            Some("exception") => {
                let name = header(frame, ":exception-type");
                let message = payload()
                    .ok()
                    .and_then(|p| p.message)
                    .unwrap_or_else(|| "bedrock stream exception".to_owned());
                return Err(provider_error(502, name, message));
            }
            Some(_) => {
                // `:message-type: error` carries its code and message in headers.
                let code = header(frame, ":error-code");
                let message = header(frame, ":error-message")
                    .unwrap_or("bedrock stream error")
                    .to_owned();
                return Err(provider_error(502, code, message));
            }
        }
        let p = payload()?;
        let delta = match header(frame, ":event-type").unwrap_or_default() {
            "messageStart" => ChatMessage {
                role: Some(Role::Assistant),
                ..ChatMessage::default()
            },
            "contentBlockStart" => {
                let Some(tool) = p.start.and_then(|s| s.tool_use) else {
                    return Ok(None);
                };
                let block = p.content_block_index.unwrap_or(0);
                let index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                self.tool_blocks.push((block, index));
                ChatMessage {
                    tool_calls: Some(vec![ToolCall {
                        index: Some(index),
                        id: Some(tool.tool_use_id),
                        kind: Some("function".to_owned()),
                        function: FunctionCall {
                            name: Some(tool.name),
                            arguments: String::new(),
                        },
                    }]),
                    ..ChatMessage::default()
                }
            }
            "contentBlockDelta" => {
                let Some(d) = p.delta else {
                    return Ok(None);
                };
                if let Some(text) = d.text.filter(|t| !t.is_empty()) {
                    ChatMessage {
                        content: Some(MessageContent::Text(text)),
                        ..ChatMessage::default()
                    }
                } else if let Some(tool) = d.tool_use {
                    let block = p.content_block_index.unwrap_or(0);
                    let index = self
                        .tool_blocks
                        .iter()
                        .find(|(b, _)| *b == block)
                        .map_or(0, |(_, i)| *i);
                    ChatMessage {
                        tool_calls: Some(vec![ToolCall {
                            index: Some(index),
                            id: None,
                            kind: None,
                            function: FunctionCall {
                                name: None,
                                arguments: tool.input,
                            },
                        }]),
                        ..ChatMessage::default()
                    }
                } else if let Some(text) = d
                    .reasoning_content
                    .and_then(|r| r.text)
                    .filter(|t| !t.is_empty())
                {
                    ChatMessage {
                        reasoning_content: Some(text),
                        ..ChatMessage::default()
                    }
                } else {
                    return Ok(None);
                }
            }
            "messageStop" => {
                self.stopped = true;
                let reason = p.stop_reason.as_deref().map(finish_reason);
                return Ok(Some(self.chunk(Some(ChatMessage::default()), reason)));
            }
            "metadata" => {
                let Some(u) = p.usage else {
                    return Ok(None);
                };
                let mut chunk = self.chunk(None, None);
                chunk.usage = Some(usage(&u));
                return Ok(Some(chunk));
            }
            _ => return Ok(None),
        };
        Ok(Some(self.chunk(Some(delta), None)))
    }
}

/// Decodes frames from a body arriving in pieces, bounding each frame at `max_frame` bytes.
struct Frames {
    decoder: MessageFrameDecoder,
    buf: BytesMut,
    max_frame: usize,
}

impl Frames {
    fn new(max_frame: usize) -> Self {
        Self {
            decoder: MessageFrameDecoder::new(),
            buf: BytesMut::new(),
            max_frame,
        }
    }

    /// The next complete frame in the buffer, if any. Called until it answers `None` before
    /// more bytes are added, so the buffer then holds one unfinished frame: past `max_frame`
    /// bytes, that frame is too large.
    fn next_frame(&mut self) -> Result<Option<Frame>, BifrostError> {
        match self.decoder.decode_frame(&mut self.buf) {
            Ok(DecodedFrame::Complete(frame)) => Ok(Some(frame)),
            Ok(DecodedFrame::Incomplete) if self.buf.len() > self.max_frame => {
                Err(BifrostError::bad_upstream_response(format!(
                    "bedrock stream event larger than {} bytes (max_stream_event_size_kb)",
                    self.max_frame
                )))
            }
            Ok(DecodedFrame::Incomplete) => Ok(None),
            Err(e) => Err(BifrostError::bad_upstream_response(format!(
                "invalid bedrock event stream frame: {e}"
            ))),
        }
    }
}

/// Turns a `converse-stream` answer into chunks.
pub(super) fn chat_stream(
    resp: Response,
    id: String,
    model: &str,
    max_frame: usize,
) -> ResponseStream {
    let body = resp.raw_stream();
    let state = StreamState::new(id, model);
    let frames = Frames::new(max_frame);
    let stream = futures::stream::unfold(Some((body, state, frames)), |s| async move {
        let (mut body, mut state, mut frames) = s?;
        loop {
            match frames.next_frame() {
                Ok(Some(frame)) => match state.on_frame(&frame) {
                    Ok(Some(chunk)) => return Some((Ok(chunk), Some((body, state, frames)))),
                    Ok(None) => continue,
                    Err(e) => return Some((Err(e), None)),
                },
                Ok(None) => {}
                Err(e) => return Some((Err(e), None)),
            }
            match body.next().await {
                Some(Ok(data)) => frames.buf.extend_from_slice(&data),
                Some(Err(e)) => {
                    return Some((
                        Err(BifrostError::upstream_broke(format!(
                            "bedrock stream broke: {e}"
                        ))),
                        None,
                    ));
                }
                None if state.stopped && frames.buf.is_empty() => return None,
                None => {
                    return Some((
                        Err(BifrostError::upstream_broke(
                            "bedrock stream ended before messageStop",
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
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::Header;
    use serde_json::{Value, json};

    fn event(kind: &str, payload: &Value) -> Frame {
        Frame::new(serde_json::to_vec(payload).unwrap())
            .add_header(Header::new(
                ":message-type",
                FrameValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                FrameValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                FrameValue::String("application/json".into()),
            ))
    }

    fn feed(events: &[Frame]) -> (Vec<Value>, StreamState) {
        let mut st = StreamState::new("req-1".into(), "m");
        let out = events
            .iter()
            .filter_map(|f| st.on_frame(f).unwrap())
            .map(|c| serde_json::to_value(c).unwrap())
            .collect();
        (out, st)
    }

    #[test]
    fn text_tool_and_usage_events() {
        let (chunks, st) = feed(&[
            event("messageStart", &json!({"role": "assistant", "p": "abc"})),
            event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
            ),
            event("contentBlockStop", &json!({"contentBlockIndex": 0})),
            event(
                "contentBlockStart",
                &json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tu1", "name": "get_weather"}}}),
            ),
            event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"location\":"}}}),
            ),
            event(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
            ),
            event("messageStop", &json!({"stopReason": "tool_use"})),
            event(
                "metadata",
                &json!({"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "metrics": {"latencyMs": 1}}),
            ),
        ]);
        assert!(st.stopped);
        assert_eq!(
            chunks[0]["choices"][0]["delta"],
            json!({"role": "assistant"})
        );
        assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Hi"}));
        assert_eq!(chunks[1]["id"], "req-1");
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "id": "tu1", "type": "function",
                "function": {"name": "get_weather", "arguments": ""}}])
        );
        assert_eq!(
            chunks[4]["choices"][0]["delta"]["tool_calls"],
            json!([{"index": 0, "function": {"arguments": "\"Paris\"}"}}])
        );
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[6]["choices"], json!([]));
        assert_eq!(
            chunks[6]["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
        );
    }

    #[test]
    fn exceptions_are_typed_errors() {
        let mut st = StreamState::new("r".into(), "m");
        let f = Frame::new(br#"{"message":"Too many requests"}"#.to_vec())
            .add_header(Header::new(
                ":message-type",
                FrameValue::String("exception".into()),
            ))
            .add_header(Header::new(
                ":exception-type",
                FrameValue::String("throttlingException".into()),
            ));
        let e = st.on_frame(&f).unwrap_err();
        assert_eq!((e.http_status(), e.retryable), (429, true));
        assert_eq!(e.error.message, "Too many requests");
    }

    #[test]
    fn frames_split_anywhere_decode_and_oversized_ones_fail() {
        let mut wire = Vec::new();
        write_message_to(
            &event("messageStart", &json!({"role": "assistant"})),
            &mut wire,
        )
        .unwrap();
        write_message_to(
            &event("messageStop", &json!({"stopReason": "end_turn"})),
            &mut wire,
        )
        .unwrap();
        let mut frames = Frames::new(1 << 20);
        let mut seen = 0;
        for b in &wire {
            frames.buf.extend_from_slice(&[*b]);
            while let Some(_f) = frames.next_frame().unwrap() {
                seen += 1;
            }
        }
        assert_eq!(seen, 2);
        let mut small = Frames::new(16);
        small.buf.extend_from_slice(&wire[..wire.len() / 4]);
        assert!(small.next_frame().is_err());
    }
}
