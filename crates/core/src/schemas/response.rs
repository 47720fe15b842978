//! OpenAI-shaped responses, stream chunks, embeddings and model lists.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ChatMessage, ProviderKey};

/// A response in Bifrost's unified form, which serializes to OpenAI's wire shapes:
/// `chat.completion`, `chat.completion.chunk` (choices carry `delta`), `text_completion`
/// (choices carry `text`) and embedding lists (`data`).
///
/// One struct for every operation (as in Bifrost) so a plugin's post-hook handles them all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BifrostResponse {
    /// Provider's response id.
    #[serde(default)]
    pub id: String,
    /// `chat.completion`, `chat.completion.chunk`, `text_completion` or `list`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Model that answered.
    #[serde(default)]
    pub model: String,
    /// Choices (chat and text); absent for embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Choice>>,
    /// Embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<EmbeddingData>>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Backend configuration fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Service tier used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Bifrost's additions: who answered, latency, raw response.
    #[serde(default)]
    pub extra_fields: ExtraFields,
    /// The upstream's OpenAI-shaped body as it arrived, when the caller asked for it
    /// ([`RequestContext::wire_body`](crate::RequestContext::wire_body)) and nothing needed
    /// more: then only `id`, `object`, `created`, `model` and `usage` above are filled in.
    /// [`Self::to_openai_json`] writes it, so a relayed answer is never parsed in full nor
    /// re-encoded, and fields this schema does not know reach the caller too.
    #[serde(skip)]
    pub wire_body: Option<Bytes>,
}

impl BifrostResponse {
    /// The response as OpenAI's JSON: the relayed [`Self::wire_body`] with `extra_fields`
    /// added to its top-level object, or this struct serialized.
    pub fn to_openai_json(&self) -> serde_json::Result<Vec<u8>> {
        // A relayed object, up to (not including) its closing `}`; the summary parse proved
        // it is JSON, so only the last non-blank byte needs checking.
        let open = self.wire_body.as_deref().and_then(|b| {
            let end = b.iter().rposition(|c| !c.is_ascii_whitespace())?;
            (b[end] == b'}').then(|| &b[..end])
        });
        // Sized for a typical completion, so the buffer is not regrown on the way (serde_json
        // starts at 128 bytes).
        let mut out = Vec::with_capacity(open.map_or(1024, |o| o.len() + 192));
        let Some(open) = open else {
            serde_json::to_writer(&mut out, self)?;
            return Ok(out);
        };
        let empty = open
            .iter()
            .rev()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{');
        out.extend_from_slice(open);
        out.extend_from_slice(&br#","extra_fields":"#[usize::from(empty)..]);
        serde_json::to_writer(&mut out, &self.extra_fields)?;
        out.push(b'}');
        Ok(out)
    }

    /// The first choice's message text, the usual thing a caller wants.
    pub fn first_text(&self) -> Option<String> {
        let c = self.choices.as_ref()?.first()?;
        c.text
            .clone()
            .or_else(|| c.message.as_ref().and_then(ChatMessage::text_content))
            .or_else(|| c.delta.as_ref().and_then(ChatMessage::text_content))
    }
}

/// Bifrost's metadata on every response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExtraFields {
    /// The provider that answered (after fallbacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKey>,
    /// The model the caller asked the answering provider for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_requested: Option<String>,
    /// Request type, e.g. `chat_completion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_type: Option<String>,
    /// Upstream latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<u64>,
    /// Index of a stream chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_index: Option<u64>,
    /// Retries spent before this answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Which fallback answered (absent: the primary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_index: Option<usize>,
    /// The provider's raw body, when `send_back_raw_response` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_response: Option<Value>,
}

/// One choice of a chat/text response or stream chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Choice index.
    #[serde(default)]
    pub index: u32,
    /// Full message (non-stream chat).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ChatMessage>,
    /// Incremental message (stream chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<ChatMessage>,
    /// Completion text (text completion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why generation stopped: `stop`, `length`, `tool_calls`, `content_filter`; null mid-stream.
    /// Always serialized because OpenAI clients expect the key.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Log probabilities, as the provider sent them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Value>,
}

/// Token usage, with OpenAI's cached and reasoning token details.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Sum of both.
    #[serde(default)]
    pub total_tokens: u64,
    /// Cached/audio input token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Reasoning/audio/prediction output token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

/// Details of input tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Tokens served from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Audio input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
}

/// Details of output tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    /// Hidden reasoning tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Audio output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u64>,
    /// Predicted-output tokens accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    /// Predicted-output tokens rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
}

/// One embedding vector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingData {
    /// Input index.
    #[serde(default)]
    pub index: u32,
    /// Always `embedding`.
    #[serde(default)]
    pub object: String,
    /// Floats, or a base64 string when `encoding_format: base64`.
    pub embedding: Value,
}

/// `GET /v1/models` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: String,
    /// Models.
    pub data: Vec<ModelInfo>,
}

/// One model in a list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `provider/model`, so the id can be sent back to the gateway as is.
    pub id: String,
    /// Always `model`.
    #[serde(default)]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// Owner as the provider reports it.
    #[serde(default)]
    pub owned_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_chat_response_round_trips() {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 1},
                "completion_tokens_details": {"reasoning_tokens": 1}},
            "system_fingerprint": "fp",
            "extra_fields": {"provider": "openai"}
        });
        let r: BifrostResponse = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.usage.as_ref().unwrap().total_tokens, 5);
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }

    #[test]
    fn chunk_keeps_null_finish_reason_and_empty_choices() {
        let v = json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[{"index":0,"delta":{"content":"he"},"finish_reason":null}],"extra_fields":{}});
        let r: BifrostResponse = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.first_text().as_deref(), Some("he"));
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
        let usage_chunk = json!({"id":"c","object":"chat.completion.chunk","created":1,"model":"m",
            "choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"extra_fields":{}});
        let r: BifrostResponse = serde_json::from_value(usage_chunk.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), usage_chunk);
    }

    #[test]
    fn embeddings_round_trip() {
        let v = json!({"id":"","object":"list","created":0,"model":"e",
            "data":[{"index":0,"object":"embedding","embedding":[0.5,1.0]}],
            "usage":{"prompt_tokens":2,"completion_tokens":0,"total_tokens":2},"extra_fields":{}});
        let r: BifrostResponse = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }

    #[test]
    fn wire_body_is_written_as_sent_plus_extra_fields() {
        let sent = br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi","annotations":[]}}],"new_field":{"a":1}}
"#;
        let mut r = BifrostResponse {
            wire_body: Some(Bytes::from_static(sent)),
            ..BifrostResponse::default()
        };
        r.extra_fields.provider = Some(ProviderKey::OpenAI);
        r.extra_fields.latency = Some(3);
        let out: serde_json::Value = serde_json::from_slice(&r.to_openai_json().unwrap()).unwrap();
        let mut want: serde_json::Value = serde_json::from_slice(sent).unwrap();
        want["extra_fields"] = json!({"provider": "openai", "latency": 3});
        assert_eq!(out, want);

        r.wire_body = Some(Bytes::from_static(b" { } "));
        let out: serde_json::Value = serde_json::from_slice(&r.to_openai_json().unwrap()).unwrap();
        assert_eq!(
            out,
            json!({"extra_fields": {"provider": "openai", "latency": 3}})
        );
    }

    #[test]
    fn without_wire_body_the_struct_is_serialized() {
        let r = BifrostResponse {
            id: "a".into(),
            ..BifrostResponse::default()
        };
        assert_eq!(r.to_openai_json().unwrap(), serde_json::to_vec(&r).unwrap());
    }
}
