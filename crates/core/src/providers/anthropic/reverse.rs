//! The other direction: an Anthropic-shaped client in front of any provider.
//!
//! [`convert`](super::convert) turns unified requests into Anthropic bodies for the Anthropic
//! provider. This module serves the Anthropic-compatible route (`/anthropic/v1/messages`):
//!
//! - [`to_unified`]: an Anthropic request → unified messages and parameters, plus what the
//!   unified schema cannot carry, so the caller can refuse or report it instead of dropping it
//!   silently (see [`Translated`]).
//! - [`to_anthropic_response`]: a unified `chat.completion` → an Anthropic `message`.
//! - [`EventEncoder`]: unified stream chunks → Anthropic stream events (`message_start`,
//!   `content_block_*` with text, thinking and `input_json_delta` deltas, `message_delta`
//!   with the stop reason and usage, `message_stop`).
//! - [`estimate_input_tokens`]: a rough `count_tokens` for providers that cannot count.
//!
//! Rules worth knowing:
//! - `tool_result` blocks become `tool` messages placed before the rest of their user turn
//!   (OpenAI wants tool results right after the assistant's calls). Their content is kept
//!   verbatim; `is_error: true` has no unified field and is expressed by prefixing the text
//!   with `Error: `.
//! - Anthropic-only top-level fields (`top_k`, `thinking`, `service_tier`, `container`,
//!   `mcp_servers`, `context_management`, metadata besides `user_id`, `output_config` besides
//!   `format`) ride in `params.extra` under their own names, so an Anthropic provider still
//!   receives them, and are listed in [`Translated::dialect_params`]. Unknown top-level fields
//!   are forwarded as extras like on every route.
//! - Content the unified schema cannot express at all (server tools, unknown block types,
//!   URL documents, images by file id) is listed in [`Translated::untranslatable`].
//! - Hints that change neither the answer nor its shape (`cache_control`, thinking and
//!   redacted-thinking blocks of earlier turns, which only Anthropic can read back) are listed
//!   in [`Translated::hints`]; the transport reports them when they are not passed through.
//! - Tool-call ids are kept both ways, so a `tool_use` id the client echoes in `tool_result`
//!   matches the provider's own call id.

use serde_json::{Map, Value, json};

use super::types::{
    BlockDelta, CacheControl, Content, ContentBlock, DeltaUsage, MessageDelta, MessagesRequest,
    MessagesResponse, Role, Source, StreamEvent, ToolChoice, ToolChoiceKind, Usage,
};
use crate::schemas::{
    self, BifrostError, BifrostResponse, ChatMessage, ContentPart, FunctionCall, FunctionDef,
    ImageUrl, MessageContent, ModelParameters, StreamOptions, Tool, ToolCall,
};

/// Top-level request fields only Anthropic has, carried in `params.extra` under their names.
pub const DIALECT_ONLY_FIELDS: &[&str] = &[
    "top_k",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "metadata",
    "output_config",
];

/// An Anthropic request in unified form, with what could not be carried over.
#[derive(Debug, Clone, PartialEq)]
pub struct Translated {
    /// The conversation: system prompt, turns, tool results as `tool` messages.
    pub messages: Vec<ChatMessage>,
    /// Sampling, tools and Anthropic-only fields (the latter in `extra`).
    pub params: ModelParameters,
    /// `stream: true` was asked for.
    pub stream: bool,
    /// Anthropic-only top-level fields present (each also in `params.extra`): fine for a
    /// provider speaking Anthropic, unsupported elsewhere.
    pub dialect_params: Vec<String>,
    /// Content no unified message can hold, e.g. `tools[1] (type web_search_20250305)`.
    pub untranslatable: Vec<String>,
    /// Hints lost outside Anthropic that change nothing in the answer (`cache_control`, …).
    pub hints: Vec<String>,
}

/// Converts an Anthropic Messages request into unified messages and parameters.
///
/// # Errors
/// 400 for content that is malformed rather than merely untranslatable (a system prompt
/// with non-text blocks, a `tool_choice` of type `tool` without a name).
pub fn to_unified(req: MessagesRequest) -> Result<Translated, BifrostError> {
    let mut t = Translated {
        messages: Vec::with_capacity(req.messages.len() + 1),
        params: ModelParameters::default(),
        stream: req.stream == Some(true),
        dialect_params: Vec::new(),
        untranslatable: Vec::new(),
        hints: Vec::new(),
    };
    if let Some(system) = req.system {
        let msg = system_message(system, &mut t.hints)?;
        t.messages.push(msg);
    }
    for (i, m) in req.messages.into_iter().enumerate() {
        match m.role {
            Role::User => user_turn(m.content, i, &mut t),
            Role::Assistant => assistant_turn(m.content, i, &mut t),
        }
    }
    let p = &mut t.params;
    p.max_tokens = Some(req.max_tokens);
    p.temperature = req.temperature;
    p.top_p = req.top_p;
    p.stop = req
        .stop_sequences
        .filter(|s| !s.is_empty())
        .map(|s| Value::from(s.into_iter().map(Value::from).collect::<Vec<_>>()));
    if let Some(k) = req.top_k {
        set_dialect(&mut t, "top_k", Value::from(k));
    }
    if let Some(meta) = req.metadata {
        t.params.user = meta.user_id;
        if !meta.extra.is_empty() {
            set_dialect(&mut t, "metadata", Value::Object(meta.extra));
        }
    }
    if let Some(thinking) = req.thinking
        && thinking.kind != "disabled"
    {
        let v = serde_json::to_value(thinking).unwrap_or(Value::Null);
        set_dialect(&mut t, "thinking", v);
    }
    if let Some(mut config) = req.output_config {
        if let Some(format) = config.remove("format") {
            t.params.response_format = Some(response_format(format));
        }
        if !config.is_empty() {
            set_dialect(&mut t, "output_config", Value::Object(config));
        }
    }
    if let Some(tools) = req.tools {
        let mut out = Vec::with_capacity(tools.len());
        for (i, tool) in tools.into_iter().enumerate() {
            if tool.cache_control.is_some() {
                push_once(&mut t.hints, "cache_control");
            }
            match tool.kind.as_deref() {
                None | Some("custom") => out.push(Tool {
                    kind: "function".to_owned(),
                    function: FunctionDef {
                        name: tool.name,
                        description: tool.description,
                        parameters: tool.input_schema,
                        strict: tool.strict,
                    },
                }),
                Some(kind) => t.untranslatable.push(format!("tools[{i}] (type {kind})")),
            }
        }
        if !out.is_empty() {
            t.params.tools = Some(out);
        }
    }
    if let Some(choice) = req.tool_choice {
        let (value, parallel) = tool_choice(choice)?;
        t.params.tool_choice = value;
        t.params.parallel_tool_calls = parallel;
    }
    for (key, value) in req.extra {
        if DIALECT_ONLY_FIELDS.contains(&key.as_str()) {
            set_dialect(&mut t, &key, value);
        } else {
            t.params.extra.insert(key, value);
        }
    }
    if t.stream {
        // Anthropic streams always end with usage; ask OpenAI-style providers for it too.
        t.params.stream_options = Some(StreamOptions {
            include_usage: Some(true),
            extra: Map::new(),
        });
    }
    Ok(t)
}

fn set_dialect(t: &mut Translated, key: &str, value: Value) {
    push_once(&mut t.dialect_params, key);
    t.params.extra.insert(key.to_owned(), value);
}

fn push_once(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

fn note_cache(cache: Option<&CacheControl>, hints: &mut Vec<String>) {
    if cache.is_some() {
        push_once(hints, "cache_control");
    }
}

fn system_message(system: Content, hints: &mut Vec<String>) -> Result<ChatMessage, BifrostError> {
    let blocks = match system {
        Content::Text(s) => return Ok(ChatMessage::text(schemas::Role::System, s)),
        Content::Blocks(b) => b,
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.into_iter().enumerate() {
        match block {
            ContentBlock::Text {
                text,
                cache_control,
                ..
            } => {
                note_cache(cache_control.as_ref(), hints);
                parts.push(text_part(text));
            }
            _ => {
                return Err(BifrostError::invalid_param(
                    "system",
                    format!("system[{j}]: system prompts take only text blocks"),
                ));
            }
        }
    }
    let content = match parts.len() {
        1 => MessageContent::Text(parts.pop().and_then(|p| p.text).unwrap_or_default()),
        _ => MessageContent::Parts(parts),
    };
    Ok(ChatMessage {
        role: Some(schemas::Role::System),
        content: Some(content),
        ..ChatMessage::default()
    })
}

fn text_part(text: String) -> ContentPart {
    ContentPart {
        kind: "text".to_owned(),
        text: Some(text),
        ..ContentPart::default()
    }
}

/// A user turn: `tool_result` blocks become `tool` messages first, the rest one user message.
fn user_turn(content: Content, i: usize, t: &mut Translated) {
    let blocks = match content {
        Content::Text(s) => {
            t.messages.push(ChatMessage::text(schemas::Role::User, s));
            return;
        }
        Content::Blocks(b) => b,
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        match block {
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                cache_control,
            } => {
                note_cache(cache_control.as_ref(), &mut t.hints);
                let content = tool_result_content(content, is_error == Some(true), i, j, t);
                t.messages.push(ChatMessage {
                    role: Some(schemas::Role::Tool),
                    tool_call_id: Some(tool_use_id),
                    content: Some(content),
                    ..ChatMessage::default()
                });
            }
            other => {
                if let Some(part) = content_part(other, i, j, t) {
                    parts.push(part);
                }
            }
        }
    }
    if parts.is_empty() {
        return;
    }
    let content = if parts.iter().all(|p| p.kind == "text") && parts.len() == 1 {
        MessageContent::Text(parts.pop().and_then(|p| p.text).unwrap_or_default())
    } else {
        MessageContent::Parts(parts)
    };
    t.messages.push(ChatMessage {
        role: Some(schemas::Role::User),
        content: Some(content),
        ..ChatMessage::default()
    });
}

/// A tool result's content: a string stays a string; blocks become parts (a single text
/// block collapses to a string). `is_error` prefixes the text with `Error: `.
fn tool_result_content(
    content: Option<Content>,
    is_error: bool,
    i: usize,
    j: usize,
    t: &mut Translated,
) -> MessageContent {
    let mut out = match content {
        None => MessageContent::Text(String::new()),
        Some(Content::Text(s)) => MessageContent::Text(s),
        Some(Content::Blocks(blocks)) => {
            let mut parts: Vec<ContentPart> = blocks
                .into_iter()
                .filter_map(|b| content_part(b, i, j, t))
                .collect();
            if parts.len() == 1 && parts[0].kind == "text" {
                MessageContent::Text(parts.pop().and_then(|p| p.text).unwrap_or_default())
            } else {
                MessageContent::Parts(parts)
            }
        }
    };
    if is_error {
        match &mut out {
            MessageContent::Text(s) => s.insert_str(0, "Error: "),
            MessageContent::Parts(parts) => parts.insert(0, text_part("Error:".to_owned())),
        }
    }
    out
}

/// One non-tool-result block of a user turn as a content part; `None` (and a note in
/// `t`) when it has no unified form.
fn content_part(
    block: ContentBlock,
    i: usize,
    j: usize,
    t: &mut Translated,
) -> Option<ContentPart> {
    let at = || format!("messages[{i}].content[{j}]");
    match block {
        ContentBlock::Text {
            text,
            cache_control,
            citations,
        } => {
            note_cache(cache_control.as_ref(), &mut t.hints);
            if citations.is_some() {
                push_once(&mut t.hints, "citations");
            }
            Some(text_part(text))
        }
        ContentBlock::Image {
            source,
            cache_control,
        } => {
            note_cache(cache_control.as_ref(), &mut t.hints);
            let url = match source {
                Source::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
                Source::Url { url } => url,
                _ => {
                    t.untranslatable
                        .push(format!("{} (image source other than base64 or url)", at()));
                    return None;
                }
            };
            Some(ContentPart {
                kind: "image_url".to_owned(),
                image_url: Some(ImageUrl { url, detail: None }),
                ..ContentPart::default()
            })
        }
        ContentBlock::Document {
            source,
            title,
            citations,
            cache_control,
            ..
        } => {
            note_cache(cache_control.as_ref(), &mut t.hints);
            if citations.is_some() {
                push_once(&mut t.hints, "citations");
            }
            match source {
                Source::Base64 { media_type, data } => {
                    let mut file = Map::new();
                    file.insert(
                        "file_data".to_owned(),
                        Value::from(format!("data:{media_type};base64,{data}")),
                    );
                    if let Some(title) = title {
                        file.insert("filename".to_owned(), Value::from(title));
                    }
                    Some(ContentPart {
                        kind: "file".to_owned(),
                        file: Some(Value::Object(file)),
                        ..ContentPart::default()
                    })
                }
                Source::File { file_id } => Some(ContentPart {
                    kind: "file".to_owned(),
                    file: Some(json!({"file_id": file_id})),
                    ..ContentPart::default()
                }),
                Source::Text { data, .. } => Some(text_part(data)),
                _ => {
                    t.untranslatable.push(format!(
                        "{} (document source other than base64, file or text)",
                        at()
                    ));
                    None
                }
            }
        }
        ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {
            push_once(&mut t.hints, "thinking blocks of earlier turns");
            None
        }
        ContentBlock::ToolUse { .. } => {
            t.untranslatable
                .push(format!("{} (tool_use in a user turn)", at()));
            None
        }
        ContentBlock::ToolResult { .. } => None,
        ContentBlock::Other(v) => {
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("unknown");
            t.untranslatable
                .push(format!("{} (block type {kind})", at()));
            None
        }
    }
}

/// An assistant turn: text → content, `tool_use` → tool calls; earlier thinking is a hint.
fn assistant_turn(content: Content, i: usize, t: &mut Translated) {
    let blocks = match content {
        Content::Text(s) => {
            t.messages
                .push(ChatMessage::text(schemas::Role::Assistant, s));
            return;
        }
        Content::Blocks(b) => b,
    };
    let mut text: Option<String> = None;
    let mut calls = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        match block {
            ContentBlock::Text {
                text: s,
                cache_control,
                ..
            } => {
                note_cache(cache_control.as_ref(), &mut t.hints);
                text.get_or_insert_with(String::new).push_str(&s);
            }
            ContentBlock::ToolUse {
                id,
                name,
                input,
                cache_control,
            } => {
                note_cache(cache_control.as_ref(), &mut t.hints);
                calls.push(ToolCall {
                    index: None,
                    id: Some(id),
                    kind: Some("function".to_owned()),
                    function: FunctionCall {
                        name: Some(name),
                        arguments: input.to_string(),
                    },
                });
            }
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {
                push_once(&mut t.hints, "thinking blocks of earlier turns");
            }
            other => {
                let kind = match &other {
                    ContentBlock::Other(v) => v
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_owned(),
                    ContentBlock::Image { .. } => "image".to_owned(),
                    ContentBlock::Document { .. } => "document".to_owned(),
                    _ => "tool_result".to_owned(),
                };
                t.untranslatable.push(format!(
                    "messages[{i}].content[{j}] (block type {kind} in an assistant turn)"
                ));
            }
        }
    }
    if text.is_none() && calls.is_empty() {
        return;
    }
    t.messages.push(ChatMessage {
        role: Some(schemas::Role::Assistant),
        content: text.map(MessageContent::Text),
        tool_calls: (!calls.is_empty()).then_some(calls),
        ..ChatMessage::default()
    });
}

/// Anthropic `tool_choice` → OpenAI's value and `parallel_tool_calls`.
fn tool_choice(c: ToolChoice) -> Result<(Option<Value>, Option<bool>), BifrostError> {
    let value = match c.kind {
        ToolChoiceKind::Auto => json!("auto"),
        ToolChoiceKind::Any => json!("required"),
        ToolChoiceKind::None => json!("none"),
        ToolChoiceKind::Tool => {
            let name = c.name.ok_or_else(|| {
                BifrostError::invalid_param("tool_choice", "tool_choice of type tool needs a name")
            })?;
            json!({"type": "function", "function": {"name": name}})
        }
    };
    let parallel = c.disable_parallel_tool_use.map(|d| !d);
    Ok((Some(value), parallel))
}

/// `output_config.format` (`{"type":"json_schema","schema":…}`) → OpenAI `response_format`.
fn response_format(format: Value) -> Value {
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let schema = format.get("schema").cloned().unwrap_or_else(|| json!({}));
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}})
        }
        _ => format,
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// OpenAI `finish_reason` → Anthropic `stop_reason`; unknown reasons pass through.
pub fn stop_reason(finish_reason: Option<&str>) -> String {
    match finish_reason {
        None | Some("stop") => "end_turn",
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        Some(other) => other,
    }
    .to_owned()
}

/// Unified usage → Anthropic usage. OpenAI's `prompt_tokens` includes cached input while
/// Anthropic's `input_tokens` excludes it, so cache reads are moved to their own field.
pub fn anthropic_usage(u: &schemas::Usage) -> Usage {
    let cached = u
        .prompt_tokens_details
        .as_ref()
        .and_then(|d| d.cached_tokens)
        .filter(|&c| c > 0);
    Usage {
        input_tokens: u.prompt_tokens.saturating_sub(cached.unwrap_or(0)),
        output_tokens: u.completion_tokens,
        cache_creation_input_tokens: None,
        cache_read_input_tokens: cached,
        extra: Map::new(),
    }
}

/// Tool-call arguments (a JSON string) as Anthropic's `input`; text that is not JSON is
/// kept as a string rather than lost.
fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

/// A message id: the provider's, else one derived from `fallback_id` (the request id).
fn message_id(id: &str, fallback_id: &str) -> String {
    if id.is_empty() {
        format!("msg_{fallback_id}")
    } else {
        id.to_owned()
    }
}

/// A unified chat response as an Anthropic `message` (first choice): reasoning → a
/// `thinking` block, text → a `text` block, tool calls → `tool_use` blocks.
pub fn to_anthropic_response(
    resp: &BifrostResponse,
    model: &str,
    fallback_id: &str,
) -> MessagesResponse {
    let choice = resp.choices.as_ref().and_then(|c| c.first());
    let msg = choice.and_then(|c| c.message.as_ref().or(c.delta.as_ref()));
    let mut content = Vec::new();
    if let Some(r) = msg
        .and_then(|m| m.reasoning_content.as_ref())
        .filter(|r| !r.is_empty())
    {
        content.push(ContentBlock::Thinking {
            thinking: r.clone(),
            signature: String::new(),
        });
    }
    let text = msg
        .and_then(ChatMessage::text_content)
        .or_else(|| choice.and_then(|c| c.text.clone()))
        .filter(|t| !t.is_empty());
    if let Some(text) = text {
        content.push(text_block(text));
    }
    for call in msg
        .and_then(|m| m.tool_calls.as_deref())
        .unwrap_or_default()
    {
        content.push(ContentBlock::ToolUse {
            id: call.id.clone().unwrap_or_default(),
            name: call.function.name.clone().unwrap_or_default(),
            input: tool_input(&call.function.arguments),
            cache_control: None,
        });
    }
    if content.is_empty() {
        content.push(text_block(String::new()));
    }
    MessagesResponse {
        id: message_id(&resp.id, fallback_id),
        kind: "message".to_owned(),
        role: Role::Assistant,
        content,
        model: if resp.model.is_empty() {
            model.to_owned()
        } else {
            resp.model.clone()
        },
        stop_reason: Some(stop_reason(choice.and_then(|c| c.finish_reason.as_deref()))),
        stop_sequence: None,
        usage: resp.usage.as_ref().map(anthropic_usage).unwrap_or_default(),
        extra: Map::new(),
    }
}

fn text_block(text: String) -> ContentBlock {
    ContentBlock::Text {
        text,
        citations: None,
        cache_control: None,
    }
}

/// The SSE event name of an event (its JSON `type`).
pub fn event_name(event: &StreamEvent) -> &'static str {
    match event {
        StreamEvent::MessageStart { .. } => "message_start",
        StreamEvent::ContentBlockStart { .. } => "content_block_start",
        StreamEvent::ContentBlockDelta { .. } => "content_block_delta",
        StreamEvent::ContentBlockStop { .. } => "content_block_stop",
        StreamEvent::MessageDelta { .. } => "message_delta",
        StreamEvent::MessageStop => "message_stop",
        StreamEvent::Ping => "ping",
        StreamEvent::Error { .. } => "error",
        StreamEvent::Other(_) => "unknown",
    }
}

/// Which kind of content block is open in the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A `tool_use` block, by its unified tool-call index.
    Tool(u32),
}

/// Turns unified `chat.completion.chunk`s into Anthropic stream events.
///
/// Blocks are opened lazily and one at a time (as Anthropic does): a change from text to
/// thinking to a tool call closes the previous block. The stop reason and usage are held
/// until [`finish`](Self::finish), because OpenAI-style streams send usage in a chunk after
/// the one carrying `finish_reason`. Only the first choice is encoded (Anthropic has one).
#[derive(Debug)]
pub struct EventEncoder {
    model: String,
    fallback_id: String,
    started: bool,
    /// Index the next content block gets.
    next_block: u32,
    open: Option<(Open, u32)>,
    /// `(tool-call index, block index)` of every tool block opened so far.
    tools: Vec<(u32, u32)>,
    finish_reason: Option<String>,
    usage: Option<schemas::Usage>,
}

impl EventEncoder {
    /// An encoder for an answer to `model`; `fallback_id` names the message when the
    /// provider gave no id.
    pub fn new(model: impl Into<String>, fallback_id: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            fallback_id: fallback_id.into(),
            started: false,
            next_block: 0,
            open: None,
            tools: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// The events for one chunk (the first chunk also yields `message_start` and a `ping`).
    pub fn push(&mut self, chunk: &BifrostResponse) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if let Some(u) = &chunk.usage {
            self.usage = Some(u.clone());
        }
        if !self.started {
            self.started = true;
            let input = self.usage.as_ref().map(anthropic_usage).unwrap_or_default();
            out.push(StreamEvent::MessageStart {
                message: MessagesResponse {
                    id: message_id(&chunk.id, &self.fallback_id),
                    kind: "message".to_owned(),
                    role: Role::Assistant,
                    content: Vec::new(),
                    model: if chunk.model.is_empty() {
                        self.model.clone()
                    } else {
                        chunk.model.clone()
                    },
                    stop_reason: None,
                    stop_sequence: None,
                    usage: Usage {
                        output_tokens: 0,
                        ..input
                    },
                    extra: Map::new(),
                },
            });
            out.push(StreamEvent::Ping);
        }
        let Some(choice) = chunk
            .choices
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.index == 0))
        else {
            return out;
        };
        if let Some(f) = &choice.finish_reason {
            self.finish_reason = Some(f.clone());
        }
        let Some(delta) = choice.delta.as_ref().or(choice.message.as_ref()) else {
            return out;
        };
        if let Some(r) = delta.reasoning_content.as_ref().filter(|r| !r.is_empty()) {
            let index = self.ensure(Open::Thinking, &mut out);
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::ThinkingDelta {
                    thinking: r.clone(),
                },
            });
        }
        if let Some(text) = delta.text_content().filter(|t| !t.is_empty()) {
            let index = self.ensure(Open::Text, &mut out);
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::TextDelta { text },
            });
        }
        for (n, call) in delta.tool_calls.iter().flatten().enumerate() {
            let tool = call
                .index
                .unwrap_or_else(|| u32::try_from(n).unwrap_or(u32::MAX));
            let known = self.tools.iter().find(|(t, _)| *t == tool).map(|&(_, b)| b);
            let index = match known {
                Some(block) if call.id.is_none() => block,
                _ => {
                    self.close(&mut out);
                    let block = self.next_block;
                    self.next_block += 1;
                    self.tools.push((tool, block));
                    self.open = Some((Open::Tool(tool), block));
                    out.push(StreamEvent::ContentBlockStart {
                        index: block,
                        content_block: ContentBlock::ToolUse {
                            id: call.id.clone().unwrap_or_default(),
                            name: call.function.name.clone().unwrap_or_default(),
                            input: Value::Object(Map::new()),
                            cache_control: None,
                        },
                    });
                    block
                }
            };
            if !call.function.arguments.is_empty() {
                out.push(StreamEvent::ContentBlockDelta {
                    index,
                    delta: BlockDelta::InputJsonDelta {
                        partial_json: call.function.arguments.clone(),
                    },
                });
            }
        }
        out
    }

    /// The closing events of a complete stream: the open block's stop, `message_delta`
    /// (stop reason and final usage) and `message_stop`.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::with_capacity(3);
        if !self.started {
            out.extend(self.push(&BifrostResponse::default()));
        }
        self.close(&mut out);
        let usage = self.usage.as_ref().map(anthropic_usage).unwrap_or_default();
        out.push(StreamEvent::MessageDelta {
            delta: MessageDelta {
                stop_reason: Some(stop_reason(self.finish_reason.as_deref())),
                stop_sequence: None,
            },
            usage: DeltaUsage {
                output_tokens: usage.output_tokens,
                input_tokens: Some(usage.input_tokens),
                cache_creation_input_tokens: None,
                cache_read_input_tokens: usage.cache_read_input_tokens,
                extra: Map::new(),
            },
        });
        out.push(StreamEvent::MessageStop);
        out
    }

    /// Opens a text or thinking block unless one of that kind is open; returns its index.
    fn ensure(&mut self, kind: Open, out: &mut Vec<StreamEvent>) -> u32 {
        if let Some((open, index)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((kind, index));
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: match kind {
                Open::Thinking => ContentBlock::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                },
                _ => text_block(String::new()),
            },
        });
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((_, index)) = self.open.take() {
            out.push(StreamEvent::ContentBlockStop { index });
        }
    }
}

/// A rough input-token count (about four characters per token, plus a fixed cost per
/// image), for `count_tokens` when the provider cannot count. Callers mark it as estimated.
pub fn estimate_input_tokens(req: &MessagesRequest) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(chars).sum(),
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) == Some("image") {
                    return 6000;
                }
                o.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "type" | "cache_control"))
                    .map(|(_, v)| chars(v))
                    .sum()
            }
            _ => 0,
        }
    }
    let total = serde_json::to_value(&req.messages).map_or(0, |v| chars(&v))
        + req
            .system
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .map_or(0, |v| chars(&v))
        + req
            .tools
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
            .map_or(0, |v| v.to_string().len());
    u64::try_from(total.div_ceil(4)).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{Choice, CompletionTokensDetails, PromptTokensDetails, Role as R};

    fn req(v: Value) -> MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    fn unified(v: Value) -> Translated {
        to_unified(req(v)).unwrap()
    }

    /// Anthropic request → unified messages, one fixture per row.
    #[test]
    fn requests_translate_table() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "plain string content and system",
                json!({"model": "m", "max_tokens": 10, "system": "be brief",
                    "messages": [{"role": "user", "content": "hi"}]}),
                json!([{"role": "system", "content": "be brief"},
                       {"role": "user", "content": "hi"}]),
            ),
            (
                "system blocks, text and image blocks",
                json!({"model": "m", "max_tokens": 10,
                    "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                    "messages": [{"role": "user", "content": [
                        {"type": "text", "text": "what is this"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}},
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]}),
                json!([{"role": "system", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                       {"role": "user", "content": [
                           {"type": "text", "text": "what is this"},
                           {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                           {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]),
            ),
            (
                "tool use and results, results first, ids kept, no requoting",
                json!({"model": "m", "max_tokens": 10, "messages": [
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "let me check"},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
                        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Rome"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "\"sunny\""},
                        {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "rain"}], "is_error": true},
                        {"type": "text", "text": "and tomorrow?"}]}]}),
                json!([{"role": "user", "content": "weather?"},
                       {"role": "assistant", "content": "let me check", "tool_calls": [
                           {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                           {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Rome\"}"}}]},
                       {"role": "tool", "tool_call_id": "toolu_1", "content": "\"sunny\""},
                       {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: rain"},
                       {"role": "user", "content": "and tomorrow?"}]),
            ),
            (
                "documents become file parts",
                json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
                    {"type": "document", "title": "a.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVB"}},
                    {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}}]}]}),
                json!([{"role": "user", "content": [
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVB", "filename": "a.pdf"}},
                    {"type": "file", "file": {"file_id": "file_1"}},
                    {"type": "text", "text": "plain doc"}]}]),
            ),
        ];
        for (name, input, want) in cases {
            let t = unified(input);
            assert_eq!(serde_json::to_value(&t.messages).unwrap(), want, "{name}");
            assert!(
                t.untranslatable.is_empty(),
                "{name}: {:?}",
                t.untranslatable
            );
        }
    }

    #[test]
    fn parameters_tools_and_dialect_only_fields() {
        let t = unified(json!({"model": "m", "max_tokens": 99, "stream": true,
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
            "metadata": {"user_id": "u1"},
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
            "service_tier": "auto", "mock": {"status": 500},
            "tools": [
                {"name": "get_weather", "description": "d", "input_schema": {"type": "object"},
                 "cache_control": {"type": "ephemeral"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true}}));
        let p = serde_json::to_value(&t.params).unwrap();
        assert_eq!(
            p,
            json!({"temperature": 0.2, "top_p": 0.9, "max_tokens": 99, "stop": ["END"],
                "response_format": {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}},
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                    "parameters": {"type": "object"}}}],
                "tool_choice": "required", "parallel_tool_calls": false, "user": "u1",
                "stream_options": {"include_usage": true},
                "top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 2048},
                "service_tier": "auto", "mock": {"status": 500}})
        );
        assert!(t.stream);
        assert_eq!(t.dialect_params, ["top_k", "thinking", "service_tier"]);
        assert_eq!(t.untranslatable, ["tools[1] (type web_search_20250305)"]);
        assert_eq!(t.hints, ["cache_control"]);
        for (choice, want) in [
            (json!({"type": "auto"}), json!("auto")),
            (json!({"type": "none"}), json!("none")),
            (
                json!({"type": "tool", "name": "f"}),
                json!({"type": "function", "function": {"name": "f"}}),
            ),
        ] {
            let t = unified(json!({"model": "m", "max_tokens": 1, "tool_choice": choice,
                "messages": [{"role": "user", "content": "x"}]}));
            assert_eq!(t.params.tool_choice, Some(want));
            assert_eq!(t.params.parallel_tool_calls, None);
        }
        let e = to_unified(req(json!({"model": "m", "max_tokens": 1,
            "tool_choice": {"type": "tool"}, "messages": []})))
        .unwrap_err();
        assert_eq!(e.error.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn hints_and_untranslatable_content_are_reported_not_dropped() {
        let t = unified(json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "q", "cache_control": {"type": "ephemeral"}},
                {"type": "search_result", "source": "s", "title": "t", "content": []},
                {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "redacted_thinking", "data": "xx"},
                {"type": "text", "text": "a"}]},
            {"role": "user", "content": "next"}],
            "thinking": {"type": "disabled"}}));
        assert_eq!(
            t.hints,
            ["cache_control", "thinking blocks of earlier turns"]
        );
        assert_eq!(
            t.untranslatable,
            [
                "messages[0].content[1] (block type search_result)",
                "messages[0].content[2] (document source other than base64, file or text)"
            ]
        );
        assert!(
            t.dialect_params.is_empty(),
            "disabled thinking is the default"
        );
        assert_eq!(t.messages[1].text_content().as_deref(), Some("a"));
    }

    fn response(message: ChatMessage, finish: &str, usage: schemas::Usage) -> BifrostResponse {
        BifrostResponse {
            id: "chatcmpl-1".into(),
            object: "chat.completion".into(),
            model: "gpt-4o-mini".into(),
            choices: Some(vec![Choice {
                message: Some(message),
                finish_reason: Some(finish.into()),
                ..Choice::default()
            }]),
            usage: Some(usage),
            ..BifrostResponse::default()
        }
    }

    fn usage(
        prompt: u64,
        completion: u64,
        cached: Option<u64>,
        reasoning: Option<u64>,
    ) -> schemas::Usage {
        schemas::Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: cached.map(|c| PromptTokensDetails {
                cached_tokens: Some(c),
                audio_tokens: None,
            }),
            completion_tokens_details: reasoning.map(|r| CompletionTokensDetails {
                reasoning_tokens: Some(r),
                ..CompletionTokensDetails::default()
            }),
        }
    }

    /// Unified response → Anthropic message, one fixture per row.
    #[test]
    fn responses_translate_table() {
        let call = |id: &str, args: &str| ToolCall {
            index: None,
            id: Some(id.into()),
            kind: Some("function".into()),
            function: FunctionCall {
                name: Some("get_weather".into()),
                arguments: args.into(),
            },
        };
        let cases: Vec<(&str, BifrostResponse, Value)> = vec![
            (
                "text, stop, cached tokens split out of input",
                response(
                    ChatMessage::text(R::Assistant, "hello"),
                    "stop",
                    usage(10, 2, Some(4), None),
                ),
                json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
                    "content": [{"type": "text", "text": "hello"}],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 6, "output_tokens": 2, "cache_read_input_tokens": 4}}),
            ),
            (
                "tool calls keep ids, arguments parsed",
                response(
                    ChatMessage {
                        role: Some(R::Assistant),
                        tool_calls: Some(vec![
                            call("call_1", "{\"location\":\"Paris\"}"),
                            call("call_2", ""),
                        ]),
                        ..ChatMessage::default()
                    },
                    "tool_calls",
                    usage(3, 5, None, None),
                ),
                json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
                    "content": [
                        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
                        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}],
                    "stop_reason": "tool_use", "stop_sequence": null,
                    "usage": {"input_tokens": 3, "output_tokens": 5}}),
            ),
            (
                "reasoning becomes a thinking block; reasoning tokens stay in output",
                response(
                    ChatMessage {
                        reasoning_content: Some("think".into()),
                        ..ChatMessage::text(R::Assistant, "answer")
                    },
                    "length",
                    usage(1, 9, None, Some(7)),
                ),
                json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
                    "content": [{"type": "thinking", "thinking": "think", "signature": ""},
                                {"type": "text", "text": "answer"}],
                    "stop_reason": "max_tokens", "stop_sequence": null,
                    "usage": {"input_tokens": 1, "output_tokens": 9}}),
            ),
            (
                "content filter and an empty answer",
                response(
                    ChatMessage::text(R::Assistant, ""),
                    "content_filter",
                    usage(1, 0, None, None),
                ),
                json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
                    "content": [{"type": "text", "text": ""}],
                    "stop_reason": "refusal", "stop_sequence": null,
                    "usage": {"input_tokens": 1, "output_tokens": 0}}),
            ),
        ];
        for (name, resp, want) in cases {
            let got =
                serde_json::to_value(to_anthropic_response(&resp, "req-model", "r1")).unwrap();
            assert_eq!(got, want, "{name}");
        }
        let empty = to_anthropic_response(&BifrostResponse::default(), "req-model", "r1");
        assert_eq!(empty.id, "msg_r1");
        assert_eq!(empty.model, "req-model");
        assert_eq!(stop_reason(Some("pause_turn")), "pause_turn");
    }

    fn chunk(
        delta: ChatMessage,
        finish: Option<&str>,
        usage: Option<schemas::Usage>,
    ) -> BifrostResponse {
        BifrostResponse {
            id: "c1".into(),
            object: "chat.completion.chunk".into(),
            model: "gpt-4o-mini".into(),
            choices: Some(vec![Choice {
                delta: Some(delta),
                finish_reason: finish.map(str::to_owned),
                ..Choice::default()
            }]),
            usage,
            ..BifrostResponse::default()
        }
    }

    fn tool_delta(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> ChatMessage {
        ChatMessage {
            tool_calls: Some(vec![ToolCall {
                index: Some(index),
                id: id.map(str::to_owned),
                kind: id.map(|_| "function".to_owned()),
                function: FunctionCall {
                    name: name.map(str::to_owned),
                    arguments: args.into(),
                },
            }]),
            ..ChatMessage::default()
        }
    }

    fn encode(chunks: &[BifrostResponse]) -> Vec<Value> {
        let mut enc = EventEncoder::new("m", "r1");
        let mut events: Vec<StreamEvent> = chunks.iter().flat_map(|c| enc.push(c)).collect();
        events.extend(enc.finish());
        events
            .iter()
            .map(|e| {
                let v = serde_json::to_value(e).unwrap();
                assert_eq!(v["type"], event_name(e));
                v
            })
            .collect()
    }

    /// Reassembles what an Anthropic client would see: blocks by index with their text,
    /// thinking or concatenated `partial_json`.
    fn assemble(events: &[Value]) -> (Vec<Value>, Value, Value) {
        let mut blocks: Vec<Value> = Vec::new();
        let mut json_bufs: Vec<String> = Vec::new();
        let mut stop = Value::Null;
        let mut usage = Value::Null;
        for e in events {
            match e["type"].as_str().unwrap() {
                "content_block_start" => {
                    assert_eq!(e["index"].as_u64().unwrap() as usize, blocks.len());
                    blocks.push(e["content_block"].clone());
                    json_bufs.push(String::new());
                }
                "content_block_delta" => {
                    let i = e["index"].as_u64().unwrap() as usize;
                    let d = &e["delta"];
                    match d["type"].as_str().unwrap() {
                        "text_delta" => {
                            let t = format!(
                                "{}{}",
                                blocks[i]["text"].as_str().unwrap(),
                                d["text"].as_str().unwrap()
                            );
                            blocks[i]["text"] = json!(t);
                        }
                        "thinking_delta" => {
                            let t = format!(
                                "{}{}",
                                blocks[i]["thinking"].as_str().unwrap(),
                                d["thinking"].as_str().unwrap()
                            );
                            blocks[i]["thinking"] = json!(t);
                        }
                        "input_json_delta" => {
                            json_bufs[i].push_str(d["partial_json"].as_str().unwrap())
                        }
                        other => panic!("unexpected delta {other}"),
                    }
                }
                "content_block_stop" => {
                    let i = e["index"].as_u64().unwrap() as usize;
                    if blocks[i]["type"] == "tool_use" && !json_bufs[i].is_empty() {
                        blocks[i]["input"] = serde_json::from_str(&json_bufs[i]).unwrap();
                    }
                }
                "message_delta" => {
                    stop = e["delta"]["stop_reason"].clone();
                    usage = e["usage"].clone();
                }
                _ => {}
            }
        }
        (blocks, stop, usage)
    }

    #[test]
    fn stream_event_order_text_and_usage_after_finish() {
        let role = ChatMessage {
            role: Some(R::Assistant),
            content: Some(MessageContent::Text(String::new())),
            ..ChatMessage::default()
        };
        let events = encode(&[
            chunk(role, None, None),
            chunk(
                ChatMessage {
                    content: Some(MessageContent::Text("Hel".into())),
                    ..ChatMessage::default()
                },
                None,
                None,
            ),
            chunk(
                ChatMessage {
                    content: Some(MessageContent::Text("lo".into())),
                    ..ChatMessage::default()
                },
                None,
                None,
            ),
            chunk(ChatMessage::default(), Some("stop"), None),
            BifrostResponse {
                choices: Some(vec![]),
                usage: Some(usage(12, 2, Some(2), None)),
                ..BifrostResponse::default()
            },
        ]);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(events[0]["message"]["id"], "c1");
        assert_eq!(events[0]["message"]["content"], json!([]));
        assert_eq!(events[0]["message"]["stop_reason"], Value::Null);
        let (blocks, stop, usage) = assemble(&events);
        assert_eq!(blocks, [json!({"type": "text", "text": "Hello"})]);
        assert_eq!(stop, "end_turn");
        assert_eq!(
            usage,
            json!({"output_tokens": 2, "input_tokens": 10, "cache_read_input_tokens": 2})
        );
    }

    #[test]
    fn stream_tool_calls_split_in_many_deltas_reassemble() {
        let args = r#"{"location": "Paris", "unit": "celsius"}"#;
        let mut chunks = vec![
            chunk(
                ChatMessage {
                    reasoning_content: Some("need ".into()),
                    ..ChatMessage::default()
                },
                None,
                None,
            ),
            chunk(
                ChatMessage {
                    reasoning_content: Some("weather".into()),
                    ..ChatMessage::default()
                },
                None,
                None,
            ),
            chunk(
                ChatMessage {
                    content: Some(MessageContent::Text("Checking.".into())),
                    ..ChatMessage::default()
                },
                None,
                None,
            ),
            chunk(
                tool_delta(0, Some("call_a"), Some("get_weather"), ""),
                None,
                None,
            ),
        ];
        for piece in args.as_bytes().chunks(3) {
            chunks.push(chunk(
                tool_delta(0, None, None, std::str::from_utf8(piece).unwrap()),
                None,
                None,
            ));
        }
        chunks.push(chunk(
            tool_delta(1, Some("call_b"), Some("get_time"), "{\"tz\":"),
            None,
            None,
        ));
        chunks.push(chunk(tool_delta(1, None, None, "\"CET\"}"), None, None));
        chunks.push(chunk(
            ChatMessage::default(),
            Some("tool_calls"),
            Some(usage(5, 20, None, Some(8))),
        ));
        let events = encode(&chunks);
        let (blocks, stop, usage) = assemble(&events);
        assert_eq!(
            blocks,
            [
                json!({"type": "thinking", "thinking": "need weather", "signature": ""}),
                json!({"type": "text", "text": "Checking."}),
                json!({"type": "tool_use", "id": "call_a", "name": "get_weather",
                    "input": {"location": "Paris", "unit": "celsius"}}),
                json!({"type": "tool_use", "id": "call_b", "name": "get_time", "input": {"tz": "CET"}}),
            ]
        );
        assert_eq!(stop, "tool_use");
        assert_eq!(usage["output_tokens"], 20);
        let stops = events
            .iter()
            .filter(|e| e["type"] == "content_block_stop")
            .count();
        assert_eq!(stops, 4, "every block is closed exactly once");
    }

    #[test]
    fn whole_tool_call_in_one_chunk_and_finish_without_chunks() {
        let events = encode(&[chunk(
            tool_delta(0, Some("call_1"), Some("f"), "{\"a\":1}"),
            Some("tool_calls"),
            None,
        )]);
        let (blocks, stop, _) = assemble(&events);
        assert_eq!(
            blocks,
            [json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}})]
        );
        assert_eq!(stop, "tool_use");
        let mut enc = EventEncoder::new("m", "r1");
        let names: Vec<&str> = enc.finish().iter().map(event_name).collect();
        assert_eq!(
            names,
            ["message_start", "ping", "message_delta", "message_stop"]
        );
    }

    #[test]
    fn token_estimate_is_rough_but_monotonic() {
        let small = estimate_input_tokens(&req(json!({"model": "m", "max_tokens": 1,
            "messages": [{"role": "user", "content": "hello"}]})));
        let big = estimate_input_tokens(&req(json!({"model": "m", "max_tokens": 1,
            "system": "You are a helpful assistant with a long system prompt.",
            "messages": [{"role": "user", "content": "hello there, how are you today?"}]})));
        assert!(small >= 1 && big > small, "{small} {big}");
    }
}
