//! Anthropic Messages API wire types, both directions (serialize and deserialize), so the
//! provider and an Anthropic-compatible route can share them.
//!
//! Written from Anthropic's public API reference (`POST /v1/messages`, streaming events,
//! errors, `GET /v1/models`). Every tagged enum ends with an untagged `Other` variant that
//! keeps block, delta or event types this build does not know as raw JSON, so new Anthropic
//! features neither break parsing nor get lost when a body is passed through. Fields that
//! are not modelled land in a flattened `extra` map where Anthropic allows free growth
//! (request, response, usage, tools, metadata).
//!
//! The types own their strings: the route that reuses them builds them from owned request
//! bodies, and the provider's copies (mostly message text) are small next to the network.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /v1/messages` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Model id, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// The conversation; user and assistant turns (system text goes in `system`).
    pub messages: Vec<Message>,
    /// System prompt: a string or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Content>,
    /// Output cap; required by Anthropic.
    pub max_tokens: u32,
    /// Request metadata (`user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Custom stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream the answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature (0–1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Tools the model may use (client tools and Anthropic's server tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDef>>,
    /// How the model should use the tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Output configuration, e.g. `{"format": {"type": "json_schema", "schema": …}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<Map<String, Value>>,
    /// Every other top-level field (`service_tier`, `container`, `mcp_servers`, …), kept as is.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Who wrote a message; Anthropic has only these two in `messages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The end user (also carries tool results).
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// A string or content blocks.
    pub content: Content,
}

/// Message or system content: Anthropic accepts a plain string or a list of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Typed blocks.
    Blocks(Vec<ContentBlock>),
}

/// Prompt-caching marker on a block or tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheControl {
    /// Always `ephemeral` today.
    #[serde(rename = "type")]
    pub kind: String,
    /// Cache lifetime, e.g. `5m` or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A content block, in requests and responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Citations backing the text (responses) or requested (documents).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Vec<Value>>,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// An image.
    Image {
        /// Where the image comes from.
        source: Source,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// A document (PDF, plain text, custom content).
    Document {
        /// Where the document comes from.
        source: Source,
        /// Optional title.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        /// Optional context about the document.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
        /// `{"enabled": true}` to get citations.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        citations: Option<Value>,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// The model calls a client tool.
    ToolUse {
        /// Call id (`toolu_…`), echoed by the matching `tool_result`.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments as a JSON object.
        input: Value,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// The result of a client tool call (in a user message).
    ToolResult {
        /// The `tool_use` block this answers.
        tool_use_id: String,
        /// The result: a string or text/image blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Content>,
        /// The tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        /// Prompt-caching marker.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// Extended-thinking text, signed so it can be sent back in later turns.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// Anthropic's signature over it.
        #[serde(default)]
        signature: String,
    },
    /// Thinking Anthropic redacted; opaque, only to be sent back.
    RedactedThinking {
        /// Encrypted content.
        data: String,
    },
    /// Any other block type (server tool use and results, container uploads, …), kept raw.
    #[serde(untagged)]
    Other(Value),
}

/// Where an image or document comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Source {
    /// Inline base64 data.
    Base64 {
        /// e.g. `image/png`, `application/pdf`.
        media_type: String,
        /// Base64 without the `data:` prefix.
        data: String,
    },
    /// A URL Anthropic fetches.
    Url {
        /// `https://…`.
        url: String,
    },
    /// Plain-text document data.
    Text {
        /// `text/plain`.
        media_type: String,
        /// The text.
        data: String,
    },
    /// A document made of content blocks.
    Content {
        /// A string or blocks.
        content: Content,
    },
    /// A file uploaded through Anthropic's Files API.
    File {
        /// `file_…`.
        file_id: String,
    },
    /// Any other source type, kept raw.
    #[serde(untagged)]
    Other(Value),
}

/// `metadata` of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// An opaque end-user id, for Anthropic's abuse detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Any other metadata field.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A tool declaration: a client tool (`name`, `description`, `input_schema`) or one of
/// Anthropic's versioned server tools (`type`, `name`, tool-specific fields in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// Absent or `custom` for client tools; e.g. `web_search_20250305` for server tools.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Tool name.
    pub name: String,
    /// What the tool does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the input (required for client tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Enforce the schema with constrained decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    /// Prompt-caching marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// Server-tool settings and anything else.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolChoice {
    /// Which mode.
    #[serde(rename = "type")]
    pub kind: ToolChoiceKind,
    /// The tool to call, for `tool`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// At most one tool call per turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_parallel_tool_use: Option<bool>,
}

/// The `type` of a `tool_choice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceKind {
    /// The model decides.
    Auto,
    /// The model must call some tool (OpenAI's `required`).
    Any,
    /// The model must call the named tool.
    Tool,
    /// No tool calls.
    None,
}

/// `thinking`: `{"type":"enabled","budget_tokens":N}`, `{"type":"disabled"}`, or newer modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThinkingConfig {
    /// `enabled`, `disabled`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Tokens the model may spend thinking (with `enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// Any other field.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A non-stream `message` response (also the `message` of a stream's `message_start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Message id (`msg_…`).
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type", default = "message_kind")]
    pub kind: String,
    /// Always `assistant`.
    #[serde(default = "assistant_role")]
    pub role: Role,
    /// The answer's blocks (empty in `message_start`).
    #[serde(default)]
    pub content: Vec<ContentBlock>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// `end_turn`, `max_tokens`, `stop_sequence`, `tool_use`, `pause_turn`, `refusal`, …;
    /// null in `message_start`.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
    /// Token usage.
    #[serde(default)]
    pub usage: Usage,
    /// Any other field (`container`, …).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

fn message_kind() -> String {
    "message".to_owned()
}

fn assistant_role() -> Role {
    Role::Assistant
}

/// Token usage of a message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from or written to the cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Any other field (`server_tool_use`, `service_tier`, `cache_creation`, …).
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// One server-sent event of a streamed message; the JSON `type` equals the SSE event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// First event: the message with empty content and the input usage.
    MessageStart {
        /// The message shell.
        message: MessagesResponse,
    },
    /// A content block begins (text, tool_use with id and name, thinking, …).
    ContentBlockStart {
        /// Block position in the message.
        index: u32,
        /// The block with empty text/input.
        content_block: ContentBlock,
    },
    /// A piece of the block at `index`.
    ContentBlockDelta {
        /// Block position in the message.
        index: u32,
        /// The piece.
        delta: BlockDelta,
    },
    /// The block at `index` is complete.
    ContentBlockStop {
        /// Block position in the message.
        index: u32,
    },
    /// Top-level changes: the stop reason and cumulative usage.
    MessageDelta {
        /// Stop reason and sequence.
        delta: MessageDelta,
        /// Usage so far (`output_tokens`, and in newer API versions the input counts).
        #[serde(default)]
        usage: DeltaUsage,
    },
    /// Last event of a complete stream.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error inside the stream (e.g. `overloaded_error`).
    Error {
        /// What went wrong.
        error: ErrorDetail,
    },
    /// Any event type this build does not know; Anthropic may add new ones.
    #[serde(untagged)]
    Other(Value),
}

/// The `delta` of a `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text.
    TextDelta {
        /// The text piece.
        text: String,
    },
    /// A fragment of a tool call's JSON input.
    InputJsonDelta {
        /// The fragment (not valid JSON on its own).
        partial_json: String,
    },
    /// More thinking text.
    ThinkingDelta {
        /// The thinking piece.
        thinking: String,
    },
    /// The signature of a thinking block.
    SignatureDelta {
        /// The signature.
        signature: String,
    },
    /// A citation for the current text block.
    CitationsDelta {
        /// The citation.
        citation: Value,
    },
    /// Any other delta type, kept raw.
    #[serde(untagged)]
    Other(Value),
}

/// The `delta` of a `message_delta` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why the model stopped.
    #[serde(default)]
    pub stop_reason: Option<String>,
    /// The stop sequence that matched, if any.
    #[serde(default)]
    pub stop_sequence: Option<String>,
}

/// The `usage` of a `message_delta` event: cumulative counts; input counts are optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeltaUsage {
    /// Output tokens so far.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens, when the API version reports them here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Cache-write input tokens, when reported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Cache-read input tokens, when reported here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Any other field.
    #[serde(flatten, default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// An error body: `{"type":"error","error":{"type":…,"message":…},"request_id":…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Always `error`.
    #[serde(rename = "type", default = "error_kind")]
    pub kind: String,
    /// What went wrong.
    pub error: ErrorDetail,
    /// Anthropic's request id, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn error_kind() -> String {
    "error".to_owned()
}

/// The inner `error` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// e.g. `invalid_request_error`, `rate_limit_error`, `overloaded_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// One page of `GET /v1/models`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelsPage {
    /// Models, newest first.
    #[serde(default)]
    pub data: Vec<ModelEntry>,
    /// More pages follow (ask again with `after_id=last_id`).
    #[serde(default)]
    pub has_more: bool,
    /// Id of the first model of the page.
    #[serde(default)]
    pub first_id: Option<String>,
    /// Id of the last model of the page.
    #[serde(default)]
    pub last_id: Option<String>,
}

/// One model of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Model id.
    pub id: String,
    /// Human-readable name.
    #[serde(default)]
    pub display_name: String,
    /// RFC 3339 release time.
    #[serde(default)]
    pub created_at: String,
    /// Always `model`.
    #[serde(rename = "type", default)]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_with_every_block_kind_and_unknown_fields() {
        let v = json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "document", "source": {"type": "file", "file_id": "file_1"}, "title": "t"},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "\"sunny\"", "is_error": false},
                    {"type": "search_result", "source": "s", "title": "x", "content": []}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xx"},
                    {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"a": 1}}
                ]}
            ],
            "system": [{"type": "text", "text": "be brief"}],
            "max_tokens": 100,
            "metadata": {"user_id": "u1"},
            "stop_sequences": ["X"],
            "stream": true,
            "temperature": 0.5,
            "top_k": 5,
            "tools": [
                {"name": "w", "description": "d", "input_schema": {"type": "object"}, "strict": true},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
            ],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "service_tier": "auto"
        });
        let r: MessagesRequest = serde_json::from_value(v.clone()).unwrap();
        assert!(matches!(
            &r.messages[1].content,
            Content::Blocks(b) if matches!(b[5], ContentBlock::Other(_))
        ));
        assert_eq!(r.tools.as_ref().unwrap()[1].extra["max_uses"], 5);
        assert_eq!(r.extra["service_tier"], "auto");
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }

    #[test]
    fn response_and_stream_events_round_trip() {
        let resp = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [
                {"type": "text", "text": "hi", "citations": [{"type": "char_location"}]},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
            ],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 3, "output_tokens": 2, "cache_read_input_tokens": 1,
                      "service_tier": "standard"}
        });
        let r: MessagesResponse = serde_json::from_value(resp.clone()).unwrap();
        assert_eq!(r.usage.cache_read_input_tokens, Some(1));
        assert_eq!(serde_json::to_value(&r).unwrap(), resp);

        for ev in [
            json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
                "content": [], "model": "c", "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 1, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "n", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{\"a\""}}),
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "signature_delta", "signature": "s"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                "usage": {"output_tokens": 7}}),
            json!({"type": "message_stop"}),
            json!({"type": "ping"}),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            json!({"type": "brand_new_event", "x": 1}),
        ] {
            let e: StreamEvent = serde_json::from_value(ev.clone()).unwrap();
            assert_eq!(serde_json::to_value(&e).unwrap(), ev);
        }
        let unknown: StreamEvent =
            serde_json::from_value(json!({"type": "brand_new_event"})).unwrap();
        assert!(matches!(unknown, StreamEvent::Other(_)));
    }

    #[test]
    fn error_and_model_list_shapes() {
        let e: ErrorResponse = serde_json::from_value(json!({"type": "error",
            "error": {"type": "rate_limit_error", "message": "slow down"}, "request_id": "req_1"}))
        .unwrap();
        assert_eq!(e.error.kind, "rate_limit_error");
        let page: ModelsPage = serde_json::from_value(json!({"data": [{"type": "model",
            "id": "claude-3-5-haiku-20241022", "display_name": "Claude Haiku 3.5",
            "created_at": "2024-10-22T00:00:00Z"}], "has_more": false,
            "first_id": "claude-3-5-haiku-20241022", "last_id": "claude-3-5-haiku-20241022"}))
        .unwrap();
        assert_eq!(page.data[0].display_name, "Claude Haiku 3.5");
    }
}
