//! What a stream's chunks add up to, gathered chunk by chunk on the hot path (appends only)
//! and turned into one `chat.completion` for the generation's result off it.

use std::time::Instant;

use bifrost_core::schemas::{BifrostResponse, Usage};
use serde_json::{Value, json};

use crate::wire::usage_json;

/// The answer a stream delivered so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamSummary {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) created: u64,
    pub(crate) content: String,
    pub(crate) reasoning: String,
    pub(crate) refusal: String,
    pub(crate) tool_calls: Vec<ToolCallSoFar>,
    pub(crate) finish_reason: Option<String>,
    pub(crate) usage: Option<Usage>,
    pub(crate) chunks: u64,
    pub(crate) first_chunk: Option<Instant>,
}

/// One tool call assembled from its fragments.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolCallSoFar {
    index: u32,
    id: Option<String>,
    name: Option<String>,
    arguments: String,
}

impl StreamSummary {
    /// Adds one chunk: ids and usage once, deltas appended.
    pub(crate) fn absorb(&mut self, chunk: &BifrostResponse) {
        if self.first_chunk.is_none() {
            self.first_chunk = Some(Instant::now());
        }
        self.chunks += 1;
        if self.id.is_empty() && !chunk.id.is_empty() {
            self.id.clone_from(&chunk.id);
        }
        if self.model.is_empty() && !chunk.model.is_empty() {
            self.model.clone_from(&chunk.model);
        }
        if self.created == 0 {
            self.created = chunk.created;
        }
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.choices.as_ref().and_then(|c| c.first()) else {
            return;
        };
        if let Some(r) = &choice.finish_reason {
            self.finish_reason = Some(r.clone());
        }
        if let Some(t) = &choice.text {
            self.content.push_str(t);
        }
        let Some(delta) = &choice.delta else {
            return;
        };
        if let Some(t) = delta.text_content() {
            self.content.push_str(&t);
        }
        if let Some(r) = &delta.reasoning_content {
            self.reasoning.push_str(r);
        }
        if let Some(r) = &delta.refusal {
            self.refusal.push_str(r);
        }
        for (pos, call) in delta.tool_calls.iter().flatten().enumerate() {
            let index = call.index.unwrap_or(u32::try_from(pos).unwrap_or(u32::MAX));
            let slot = match self.tool_calls.iter().position(|c| c.index == index) {
                Some(i) => &mut self.tool_calls[i],
                None => {
                    self.tool_calls.push(ToolCallSoFar {
                        index,
                        ..ToolCallSoFar::default()
                    });
                    let last = self.tool_calls.len() - 1;
                    &mut self.tool_calls[last]
                }
            };
            if slot.id.is_none() {
                slot.id.clone_from(&call.id);
            }
            if slot.name.is_none() {
                slot.name.clone_from(&call.function.name);
            }
            slot.arguments.push_str(&call.function.arguments);
        }
    }

    /// The stream as one OpenAI `chat.completion`, the shape Maxim's generation result takes.
    pub(crate) fn to_chat_completion(&self) -> Value {
        let mut message = json!({
            "role": "assistant",
            "content": if self.content.is_empty() && !self.tool_calls.is_empty() {
                Value::Null
            } else {
                Value::String(self.content.clone())
            },
        });
        if !self.tool_calls.is_empty() {
            message["tool_calls"] = self
                .tool_calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id.clone().unwrap_or_default(),
                        "type": "function",
                        "function": {"name": c.name.clone().unwrap_or_default(), "arguments": c.arguments},
                    })
                })
                .collect();
        }
        if !self.reasoning.is_empty() {
            message["reasoning_content"] = self.reasoning.clone().into();
        }
        if !self.refusal.is_empty() {
            message["refusal"] = self.refusal.clone().into();
        }
        let mut out = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
        });
        if let Some(u) = &self.usage {
            out["usage"] = usage_json(u);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrost_core::schemas::{ChatMessage, Choice, FunctionCall, Role, ToolCall};

    fn chunk(delta: ChatMessage, finish: Option<&str>) -> BifrostResponse {
        BifrostResponse {
            id: "c-1".into(),
            model: "m".into(),
            choices: Some(vec![Choice {
                delta: Some(delta),
                finish_reason: finish.map(str::to_owned),
                ..Choice::default()
            }]),
            ..BifrostResponse::default()
        }
    }

    #[test]
    fn text_and_tool_call_fragments_add_up() {
        let mut s = StreamSummary::default();
        s.absorb(&chunk(ChatMessage::text(Role::Assistant, "Hel"), None));
        s.absorb(&chunk(
            ChatMessage {
                content: Some(bifrost_core::schemas::MessageContent::Text("lo".into())),
                tool_calls: Some(vec![ToolCall {
                    index: Some(0),
                    id: Some("call-1".into()),
                    kind: Some("function".into()),
                    function: FunctionCall {
                        name: Some("f".into()),
                        arguments: "{\"a\":".into(),
                    },
                }]),
                ..ChatMessage::default()
            },
            None,
        ));
        s.absorb(&chunk(
            ChatMessage {
                tool_calls: Some(vec![ToolCall {
                    index: Some(0),
                    function: FunctionCall {
                        name: None,
                        arguments: "1}".into(),
                    },
                    ..ToolCall::default()
                }]),
                ..ChatMessage::default()
            },
            Some("tool_calls"),
        ));
        let v = s.to_chat_completion();
        assert_eq!(v["choices"][0]["message"]["content"], "Hello");
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], "call-1");
        assert_eq!(call["function"]["arguments"], "{\"a\":1}");
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(s.chunks, 3);
    }
}
