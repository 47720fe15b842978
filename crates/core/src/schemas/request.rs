//! The unified request: what every transport builds and every provider consumes.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::ProviderKey;

/// One inference request in Bifrost's unified (OpenAI-shaped) form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BifrostRequest {
    /// Which provider to send the request to first.
    pub provider: ProviderKey,
    /// The provider's model name (without the `provider/` prefix).
    pub model: String,
    /// The input, whose variant also says which operation this is.
    pub input: RequestInput,
    /// Sampling and tool parameters; unknown keys are kept in `extra`.
    #[serde(default)]
    pub params: ModelParameters,
    /// Tried in order when the primary fails after its retries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<Fallback>,
}

impl BifrostRequest {
    /// A chat request with default parameters; the common case for Rust callers.
    pub fn chat(
        provider: ProviderKey,
        model: impl Into<String>,
        messages: Vec<ChatMessage>,
    ) -> Self {
        Self {
            provider,
            model: model.into(),
            input: RequestInput::Chat(messages),
            params: ModelParameters::default(),
            fallbacks: Vec::new(),
        }
    }

    /// The operation this request asks for.
    pub fn request_type(&self) -> RequestType {
        match self.input {
            RequestInput::Chat(_) => RequestType::ChatCompletion,
            RequestInput::TextCompletion(_) => RequestType::TextCompletion,
            RequestInput::Embedding(_) => RequestType::Embedding,
        }
    }

    /// The chat messages, if this is a chat request.
    pub fn messages(&self) -> Option<&[ChatMessage]> {
        match &self.input {
            RequestInput::Chat(m) => Some(m),
            _ => None,
        }
    }
}

/// The operation a request performs; used for metrics labels and plugin conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestType {
    /// `/v1/chat/completions` without streaming.
    ChatCompletion,
    /// `/v1/chat/completions` with `stream: true`.
    ChatCompletionStream,
    /// `/v1/completions`.
    TextCompletion,
    /// `/v1/embeddings`.
    Embedding,
    /// `/v1/models`.
    ListModels,
}

impl RequestType {
    /// Bifrost's name for the request type (the `method` metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletion => "chat_completion",
            Self::ChatCompletionStream => "chat_completion_stream",
            Self::TextCompletion => "text_completion",
            Self::Embedding => "embedding",
            Self::ListModels => "list_models",
        }
    }
}

/// The request's input; the variant selects the operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestInput {
    /// Chat messages.
    Chat(Vec<ChatMessage>),
    /// A text-completion prompt.
    TextCompletion(PromptInput),
    /// Embedding input.
    Embedding(EmbeddingInput),
}

/// A text-completion prompt: one string or a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptInput {
    /// One prompt.
    Text(String),
    /// Several prompts (or token arrays, kept as JSON).
    Batch(Vec<Value>),
}

/// Embedding input in every form OpenAI accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One string.
    Text(String),
    /// Several strings.
    Texts(Vec<String>),
    /// One token array.
    Tokens(Vec<i64>),
    /// Several token arrays.
    TokenBatches(Vec<Vec<i64>>),
}

/// A fallback target.
///
/// Accepted as an object `{"provider","model"}` (Bifrost v1.0) or a string `"provider/model"` (v1.2+).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// Provider to try.
    pub provider: ProviderKey,
    /// Model at that provider.
    pub model: String,
}

impl Fallback {
    /// Parses `"provider/model"`, splitting on the first `/` (so `openrouter/a/b` keeps `a/b`).
    pub fn parse(s: &str) -> Option<Self> {
        let (p, m) = s.split_once('/')?;
        (!p.is_empty() && !m.is_empty()).then(|| Self {
            provider: ProviderKey::parse(p),
            model: m.to_owned(),
        })
    }
}

impl<'de> Deserialize<'de> for Fallback {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Str(String),
            Obj {
                provider: ProviderKey,
                model: String,
            },
        }
        match Repr::deserialize(d)? {
            Repr::Str(s) => Fallback::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "fallback {s:?} must be in the format 'provider/model'"
                ))
            }),
            Repr::Obj { provider, model } => Ok(Fallback { provider, model }),
        }
    }
}

/// The role of a chat message's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// System prompt.
    System,
    /// OpenAI's newer name for system prompts.
    Developer,
    /// End user.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
    /// Legacy function result.
    Function,
    /// Cohere's name for the model.
    Chatbot,
}

/// One chat message (OpenAI shape; also used for stream deltas, where every field is optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Author; absent only in stream deltas after the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Text or content parts; `None` for pure tool-call messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by the assistant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For `role: tool`: which call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A refusal message from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Reasoning text some providers return beside the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Fields this schema does not name (e.g. `audio`, `annotations`), kept so nothing is lost.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A message with plain text content.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role: Some(role),
            content: Some(MessageContent::Text(text.into())),
            ..Self::default()
        }
    }

    /// The message's text: the string content, or its text parts joined.
    pub fn text_content(&self) -> Option<String> {
        match self.content.as_ref()? {
            MessageContent::Text(s) => Some(s.clone()),
            MessageContent::Parts(parts) => {
                let texts: Vec<&str> = parts.iter().filter_map(|p| p.text.as_deref()).collect();
                (!texts.is_empty()).then(|| texts.join(""))
            }
        }
    }
}

/// Message content: a string or a list of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Text, image, audio or file parts.
    Parts(Vec<ContentPart>),
}

/// By the JSON type at hand: `untagged` would first copy every message's content into a
/// buffer and then try each variant on it, and its error would not say what was wrong.
impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Content;
        impl<'de> serde::de::Visitor<'de> for Content {
            type Value = MessageContent;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(s.to_owned()))
            }

            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(s))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(MessageContent::Parts)
            }
        }
        d.deserialize_any(Content)
    }
}

/// One content part. Kept as a struct (not an enum) so unknown part types pass through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    /// `text`, `image_url`, `input_audio`, `file`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// For `text` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// For `image_url` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    /// For `input_audio` parts (`{data, format}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_audio: Option<Value>,
    /// For `file` parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Value>,
}

/// An image reference: an `https://` URL or a `data:` URI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// The URL or data URI.
    pub url: String,
    /// `auto`, `low` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A tool call made by the model. In stream deltas `index` is set and the other fields arrive in pieces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Position of the call in a streamed message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Call id, echoed back by the tool result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `function` today.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The function and its JSON arguments (a string, as on the wire).
    pub function: FunctionCall,
}

/// A function invocation; `arguments` is the JSON text exactly as the model produced it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name; absent in continuation deltas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// JSON-encoded arguments (possibly a fragment in a delta).
    #[serde(default)]
    pub arguments: String,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `function` today.
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function's declaration.
    pub function: FunctionDef,
}

fn function_kind() -> String {
    "function".to_owned()
}

/// A function declaration with a JSON-schema `parameters` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    /// Function name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Structured-output strictness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `stream_options` as OpenAI defines it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Ask for a final usage chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Anything else the caller sent.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Model parameters. Unknown keys land in `extra` and are forwarded to the provider as-is,
/// so parameters this schema does not know are never silently dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelParameters {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Legacy output cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Output cap (newer OpenAI name, includes reasoning tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Stop sequence(s): a string or a list (`stop_sequences` accepted as Bifrost's old name).
    #[serde(
        default,
        alias = "stop_sequences",
        skip_serializing_if = "Option::is_none"
    )]
    pub stop: Option<Value>,
    /// Number of choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Return log probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// How many top log probabilities per token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// Token bias map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<Value>,
    /// `{"type":"json_object"}` or `{"type":"json_schema",...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `none`/`auto`/`required` or `{"type":"function","function":{"name":…}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Allow several tool calls in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// End-user id for abuse monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Streaming options (`include_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Embeddings: `float` or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Embeddings: output dimensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Every parameter not named above, forwarded unchanged.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_is_text_or_parts_and_anything_else_is_named() {
        let text: MessageContent = serde_json::from_str(r#""hi""#).unwrap();
        assert_eq!(text, MessageContent::Text("hi".into()));
        let parts: MessageContent = serde_json::from_str(
            r#"[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}}]"#,
        )
        .unwrap();
        let MessageContent::Parts(parts) = parts else {
            panic!("parts expected")
        };
        assert_eq!((parts.len(), parts[0].text.as_deref()), (2, Some("a")));
        let err = serde_json::from_str::<MessageContent>("42").unwrap_err();
        assert!(
            err.to_string()
                .contains("expected a string or an array of content parts"),
            "{err}"
        );
        let m: ChatMessage =
            serde_json::from_str(r#"{"role":"assistant","content":null}"#).unwrap();
        assert_eq!(m.content, None);
    }

    #[test]
    fn fallbacks_accept_strings_and_objects() {
        let f: Vec<Fallback> = serde_json::from_value(json!([
            "anthropic/claude-3-haiku",
            {"provider": "openrouter", "model": "meta/llama"},
            "openrouter/x/y"
        ]))
        .unwrap();
        assert_eq!(f[0].provider, ProviderKey::Anthropic);
        assert_eq!(f[1].model, "meta/llama");
        assert_eq!(f[2].model, "x/y");
        assert!(serde_json::from_value::<Fallback>(json!("nope")).is_err());
    }

    #[test]
    fn params_keep_unknown_keys_and_round_trip() {
        let v = json!({
            "temperature": 0.2, "max_tokens": 5, "stop": ["x"], "top_k": 40,
            "tools": [{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
            "tool_choice": "auto", "stream_options": {"include_usage": true},
            "response_format": {"type":"json_object"}, "vendor_flag": {"a": 1}
        });
        let p: ModelParameters = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.extra.get("top_k"), Some(&json!(40)));
        assert_eq!(p.extra.get("vendor_flag"), Some(&json!({"a": 1})));
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
    }

    #[test]
    fn messages_round_trip_with_parts_tools_and_extras() {
        let v = json!([
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"what is"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAA","detail":"low"}}]},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function",
                "function":{"name":"get","arguments":"{\"a\":1}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"\"sunny\""},
            {"role":"assistant","content":"ok","audio":{"id":"a1"}}
        ]);
        let m: Vec<ChatMessage> = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(m[1].text_content().as_deref(), Some("what is"));
        assert_eq!(m[3].text_content().as_deref(), Some("\"sunny\""));
        assert_eq!(m[4].extra.get("audio"), Some(&json!({"id":"a1"})));
        assert_eq!(serde_json::to_value(&m).unwrap(), v);
    }

    #[test]
    fn bifrost_request_round_trips() {
        let mut r = BifrostRequest::chat(
            ProviderKey::OpenAI,
            "gpt-4o-mini",
            vec![ChatMessage::text(Role::User, "hi")],
        );
        r.fallbacks
            .push(Fallback::parse("anthropic/claude").unwrap());
        let s = serde_json::to_string(&r).unwrap();
        let back: BifrostRequest = serde_json::from_str(&s).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.request_type(), RequestType::ChatCompletion);
    }
}
