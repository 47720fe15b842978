//! Bedrock wire types: the Converse request and answer, ConverseStream event payloads, and
//! the InvokeModel embedding bodies of Titan and Cohere. Field names are AWS's (camelCase for
//! Converse, the model vendor's for InvokeModel). Answers are read leniently (every field
//! optional), so a field AWS adds later does not break parsing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /model/{modelId}/converse` (and `converse-stream`, same body).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseRequest {
    /// Alternating user and assistant turns.
    pub messages: Vec<Message>,
    /// System prompt blocks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock>,
    /// Sampling settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
    /// Tools and the tool choice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    /// Model-specific fields (`top_k`, `thinking`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_model_request_fields: Option<Map<String, Value>>,
    /// Other Converse fields passed through (`guardrailConfig`, `performanceConfig`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: &'static str,
    /// Its blocks.
    pub content: Vec<Block>,
}

/// A content block of a turn; each serializes as a one-key object (`{"text": …}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Block {
    /// Text.
    Text(String),
    /// An image as bytes.
    Image(MediaBlock),
    /// A document as bytes.
    Document(DocumentBlock),
    /// A call the assistant made.
    ToolUse(ToolUse),
    /// A tool's answer.
    ToolResult(ToolResult),
}

/// `{format, source: {bytes}}`; `bytes` is base64 in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaBlock {
    /// `png`, `jpeg`, `gif` or `webp`.
    pub format: String,
    /// The data.
    pub source: BytesSource,
}

/// A document block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentBlock {
    /// `pdf`, `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt` or `md`.
    pub format: String,
    /// Name shown to the model (letters, digits, spaces, hyphens, brackets).
    pub name: String,
    /// The data.
    pub source: BytesSource,
}

/// Inline bytes, base64-encoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BytesSource {
    /// Base64 data, as the caller's data URI carried it.
    pub bytes: String,
}

/// `toolUse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    /// Call id.
    pub tool_use_id: String,
    /// Tool name.
    pub name: String,
    /// Arguments (a JSON object).
    #[serde(default)]
    pub input: Value,
}

/// `toolResult`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// The call answered.
    pub tool_use_id: String,
    /// The answer, as text blocks sent verbatim.
    pub content: Vec<ToolResultContent>,
}

/// A block of a tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolResultContent {
    /// Text.
    Text(String),
    /// An image.
    Image(MediaBlock),
}

/// `{"text": …}` in `system`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemBlock {
    /// The text.
    pub text: String,
}

/// `inferenceConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    /// Output cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
}

impl InferenceConfig {
    /// True when nothing is set (the block is then left out).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `toolConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    /// `[{"toolSpec": …}]`.
    pub tools: Vec<ToolEntry>,
    /// `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":…}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
}

/// `{"toolSpec": …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolEntry {
    /// The declaration.
    pub tool_spec: ToolSpec,
}

/// A tool declaration.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// What it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{"json": <JSON schema>}`.
    pub input_schema: Value,
}

/// The Converse answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConverseResponse {
    /// `{"message": …}`.
    #[serde(default)]
    pub output: Option<Output>,
    /// Why generation stopped.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// Token counts.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
}

/// `output`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Output {
    /// The assistant's message.
    #[serde(default)]
    pub message: Option<OutMessage>,
}

/// The assistant's message in an answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutMessage {
    /// Its blocks.
    #[serde(default)]
    pub content: Vec<OutBlock>,
}

/// A block of an answer: one of these is set; unknown kinds leave all unset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutBlock {
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// A tool call.
    #[serde(default)]
    pub tool_use: Option<ToolUse>,
    /// Reasoning (`{"reasoningText": {"text", "signature"}}`).
    #[serde(default)]
    pub reasoning_content: Option<Reasoning>,
}

/// `reasoningContent` of an answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reasoning {
    /// The visible reasoning.
    #[serde(default)]
    pub reasoning_text: Option<ReasoningText>,
}

/// `reasoningText`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReasoningText {
    /// Its text.
    #[serde(default)]
    pub text: String,
}

/// Converse `usage`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Input tokens (cache reads and writes not included).
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// Input tokens written to the prompt cache.
    #[serde(default)]
    pub cache_write_input_tokens: Option<u64>,
}

/// The payload of a ConverseStream event; which fields are set depends on `:event-type`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamPayload {
    /// `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`.
    #[serde(default)]
    pub content_block_index: Option<u32>,
    /// `contentBlockStart`: `{"toolUse": {"toolUseId", "name"}}`.
    #[serde(default)]
    pub start: Option<BlockStart>,
    /// `contentBlockDelta`.
    #[serde(default)]
    pub delta: Option<BlockDelta>,
    /// `messageStop`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// `metadata`.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// Exception events.
    #[serde(default)]
    pub message: Option<String>,
}

/// `start` of a content block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStart {
    /// A tool call begins.
    #[serde(default)]
    pub tool_use: Option<ToolUseStart>,
}

/// The head of a streamed tool call.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseStart {
    /// Call id.
    #[serde(default)]
    pub tool_use_id: String,
    /// Tool name.
    #[serde(default)]
    pub name: String,
}

/// `delta` of a content block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockDelta {
    /// Text.
    #[serde(default)]
    pub text: Option<String>,
    /// `{"input": "<JSON fragment>"}`.
    #[serde(default)]
    pub tool_use: Option<ToolUseDelta>,
    /// `{"text": …}` or `{"signature": …}`.
    #[serde(default)]
    pub reasoning_content: Option<ReasoningDelta>,
}

/// A fragment of a tool call's arguments.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolUseDelta {
    /// JSON text, to be concatenated.
    #[serde(default)]
    pub input: String,
}

/// A fragment of reasoning.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReasoningDelta {
    /// Reasoning text.
    #[serde(default)]
    pub text: Option<String>,
}

/// An AWS JSON error body: `{"message": …}` (some services capitalize it).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AwsError {
    /// The message.
    #[serde(default, alias = "Message")]
    pub message: Option<String>,
    /// `__type` on some answers, e.g. `com.amazon.coral.validate#ValidationException`.
    #[serde(default, rename = "__type")]
    pub kind: Option<String>,
}
