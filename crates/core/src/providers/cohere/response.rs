//! Cohere v2 answers (`/v2/chat`, `/v2/embed`, `/v1/models`) in Bifrost's OpenAI shapes.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::schemas::{
    BifrostResponse, ChatMessage, Choice, EmbeddingData, FunctionCall, MessageContent, ModelInfo,
    ModelList, PromptTokensDetails, ProviderKey, Role, ToolCall, Usage,
};

/// `/v2/chat` response.
#[derive(Debug, Deserialize)]
pub(super) struct ChatResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    message: Option<ResponseMessage>,
    #[serde(default)]
    usage: Option<CohereUsage>,
}

#[derive(Debug, Deserialize)]
struct ResponseMessage {
    #[serde(default)]
    content: Option<Vec<ContentBlock>>,
    #[serde(default)]
    tool_calls: Option<Vec<ResponseToolCall>>,
    #[serde(default)]
    tool_plan: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ContentBlock {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResponseToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<ResponseFunction>,
}

#[derive(Debug, Deserialize)]
struct ResponseFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// `usage` of chat responses and `message-end` events.
#[derive(Debug, Default, Deserialize)]
pub(super) struct CohereUsage {
    #[serde(default)]
    billed_units: Option<Units>,
    #[serde(default)]
    tokens: Option<Units>,
    #[serde(default)]
    cached_tokens: Option<f64>,
}

/// Token counts; Cohere documents them as numbers (not necessarily integers).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Units {
    #[serde(default)]
    input_tokens: Option<f64>,
    #[serde(default)]
    output_tokens: Option<f64>,
}

/// A token count as an integer (`as` saturates; counts are small and non-negative).
fn count(n: Option<f64>) -> Option<u64> {
    n.map(|n| n.max(0.0) as u64)
}

impl CohereUsage {
    /// OpenAI-style usage: tokens processed (`tokens`), else billed units.
    pub(super) fn to_usage(&self) -> Usage {
        let pick = |f: fn(&Units) -> Option<f64>| {
            count(self.tokens.as_ref().and_then(f))
                .or_else(|| count(self.billed_units.as_ref().and_then(f)))
                .unwrap_or(0)
        };
        let prompt_tokens = pick(|u| u.input_tokens);
        let completion_tokens = pick(|u| u.output_tokens);
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
            prompt_tokens_details: count(self.cached_tokens).map(|c| PromptTokensDetails {
                cached_tokens: Some(c),
                audio_tokens: None,
            }),
            completion_tokens_details: None,
        }
    }
}

/// Cohere's finish reason in OpenAI's vocabulary (`ERROR`, `TIMEOUT` lower-cased as is).
pub(super) fn finish_reason(reason: &str) -> String {
    match reason {
        "COMPLETE" | "STOP_SEQUENCE" => "stop".into(),
        "MAX_TOKENS" => "length".into(),
        "TOOL_CALL" => "tool_calls".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// Unix seconds, for `created`.
pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ChatResponse {
    /// A `chat.completion` for `model`: text blocks joined as the content, thinking blocks
    /// and the tool plan as `reasoning_content`, tool calls as OpenAI's.
    pub(super) fn into_bifrost(self, model: &str) -> BifrostResponse {
        let mut message = ChatMessage {
            role: Some(Role::Assistant),
            ..ChatMessage::default()
        };
        if let Some(m) = self.message {
            let mut text = String::new();
            let mut thinking = String::new();
            for block in m.content.into_iter().flatten() {
                match (block.kind.as_str(), block.text, block.thinking) {
                    ("thinking", _, Some(t)) => thinking.push_str(&t),
                    (_, Some(t), _) => text.push_str(&t),
                    _ => {}
                }
            }
            if let Some(plan) = m.tool_plan.filter(|p| !p.is_empty()) {
                thinking.push_str(&plan);
            }
            message.content = (!text.is_empty()).then_some(MessageContent::Text(text));
            message.reasoning_content = (!thinking.is_empty()).then_some(thinking);
            let calls: Vec<ToolCall> = m
                .tool_calls
                .into_iter()
                .flatten()
                .map(|c| {
                    let f = c.function.unwrap_or(ResponseFunction {
                        name: None,
                        arguments: None,
                    });
                    ToolCall {
                        index: None,
                        id: c.id,
                        kind: Some("function".into()),
                        function: FunctionCall {
                            name: f.name,
                            arguments: f.arguments.unwrap_or_default(),
                        },
                    }
                })
                .collect();
            message.tool_calls = (!calls.is_empty()).then_some(calls);
        }
        BifrostResponse {
            id: self.id,
            object: "chat.completion".into(),
            created: now_secs(),
            model: model.to_owned(),
            choices: Some(vec![Choice {
                index: 0,
                message: Some(message),
                finish_reason: self.finish_reason.as_deref().map(finish_reason),
                ..Choice::default()
            }]),
            usage: self.usage.as_ref().map(CohereUsage::to_usage),
            ..BifrostResponse::default()
        }
    }
}

/// `/v2/embed` response.
#[derive(Debug, Deserialize)]
pub(super) struct EmbedResponse {
    #[serde(default)]
    id: String,
    embeddings: Embeddings,
    #[serde(default)]
    meta: Option<EmbedMeta>,
}

/// Vectors by type (what `embedding_types` asks for), or the older bare float list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Embeddings {
    ByType { float: Vec<Vec<f32>> },
    Floats(Vec<Vec<f32>>),
}

#[derive(Debug, Deserialize)]
struct EmbedMeta {
    #[serde(default)]
    billed_units: Option<Units>,
    #[serde(default)]
    tokens: Option<Units>,
}

impl EmbedResponse {
    /// An OpenAI embedding list; vectors as base64 little-endian `f32` when the caller asked
    /// for `encoding_format: base64` (the OpenAI SDKs' default).
    pub(super) fn into_bifrost(self, model: &str, base64: bool) -> BifrostResponse {
        let (Embeddings::ByType { float: vectors } | Embeddings::Floats(vectors)) = self.embeddings;
        let data = vectors
            .into_iter()
            .zip(0u32..)
            .map(|(v, index)| EmbeddingData {
                index,
                object: "embedding".into(),
                embedding: if base64 {
                    Value::String(encode_base64(&v))
                } else {
                    Value::from(v)
                },
            })
            .collect();
        let prompt_tokens = self
            .meta
            .and_then(|m| {
                count(m.tokens.and_then(|u| u.input_tokens))
                    .or_else(|| count(m.billed_units.and_then(|u| u.input_tokens)))
            })
            .unwrap_or(0);
        BifrostResponse {
            id: self.id,
            object: "list".into(),
            model: model.to_owned(),
            data: Some(data),
            usage: Some(Usage {
                prompt_tokens,
                total_tokens: prompt_tokens,
                ..Usage::default()
            }),
            ..BifrostResponse::default()
        }
    }
}

/// Standard base64 of the vector as little-endian `f32`s, as OpenAI encodes embeddings.
fn encode_base64(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        for i in 0..4 {
            if i <= group.len() {
                let sextet = (n >> (18 - 6 * i)) & 0x3f;
                out.push(char::from(ALPHABET[sextet as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `/v1/models` response.
#[derive(Debug, Deserialize)]
pub(super) struct ModelsResponse {
    #[serde(default)]
    models: Vec<CohereModel>,
}

#[derive(Debug, Deserialize)]
struct CohereModel {
    name: String,
}

impl ModelsResponse {
    /// Model ids as `provider/name`.
    pub(super) fn into_list(self, provider: &ProviderKey) -> ModelList {
        ModelList {
            object: "list".into(),
            data: self
                .models
                .into_iter()
                .map(|m| ModelInfo {
                    id: format!("{provider}/{}", m.name),
                    object: "model".into(),
                    created: 0,
                    owned_by: "cohere".into(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_answer_with_usage() {
        let r: ChatResponse = serde_json::from_value(json!({
            "id": "c-1", "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Hello"},
                {"type": "text", "text": " there"}]},
            "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2},
                "tokens": {"input_tokens": 71, "output_tokens": 2}, "cached_tokens": 64}
        }))
        .unwrap();
        let b = r.into_bifrost("command-a-03-2025");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "command-a-03-2025");
        assert_eq!(
            v["choices"][0],
            json!({"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hello there"}})
        );
        assert_eq!(
            v["usage"],
            json!({"prompt_tokens": 71, "completion_tokens": 2, "total_tokens": 73,
                "prompt_tokens_details": {"cached_tokens": 64}})
        );
    }

    #[test]
    fn tool_call_answer() {
        let r: ChatResponse = serde_json::from_value(json!({
            "id": "c-2", "finish_reason": "TOOL_CALL",
            "message": {"role": "assistant", "tool_plan": "I will look up the weather.",
                "tool_calls": [{"id": "get_weather_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
            "usage": {"billed_units": {"input_tokens": 10, "output_tokens": 5}}
        }))
        .unwrap();
        let v = serde_json::to_value(r.into_bifrost("m")).unwrap();
        assert_eq!(
            v["choices"][0],
            json!({"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "reasoning_content": "I will look up the weather.",
                "tool_calls": [{"id": "get_weather_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]}})
        );
        assert_eq!(v["usage"]["total_tokens"], 15);
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("MAX_TOKENS"), "length");
        assert_eq!(finish_reason("STOP_SEQUENCE"), "stop");
        assert_eq!(finish_reason("ERROR"), "error");
    }

    #[test]
    fn embeddings_floats_and_base64() {
        let raw = json!({"id": "e-1", "embeddings": {"float": [[0.5, -1.0], [1.0, 0.0]]},
            "texts": ["a", "b"], "meta": {"billed_units": {"input_tokens": 2}}});
        let r: EmbedResponse = serde_json::from_value(raw.clone()).unwrap();
        let v = serde_json::to_value(r.into_bifrost("embed-v4.0", false)).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(
            v["data"],
            json!([{"index": 0, "object": "embedding", "embedding": [0.5, -1.0]},
                {"index": 1, "object": "embedding", "embedding": [1.0, 0.0]}])
        );
        assert_eq!(v["usage"]["prompt_tokens"], 2);
        let r: EmbedResponse = serde_json::from_value(raw).unwrap();
        let v = serde_json::to_value(r.into_bifrost("embed-v4.0", true)).unwrap();
        // 0.5f32 = 00 00 00 3f, -1.0f32 = 00 00 80 bf
        assert_eq!(v["data"][0]["embedding"], "AAAAPwAAgL8=");
    }

    #[test]
    fn model_list() {
        let r: ModelsResponse = serde_json::from_value(json!({"models": [
            {"name": "command-a-03-2025", "endpoints": ["chat"]}], "next_page_token": ""}))
        .unwrap();
        let l = r.into_list(&ProviderKey::Cohere);
        assert_eq!(l.data[0].id, "cohere/command-a-03-2025");
    }
}
