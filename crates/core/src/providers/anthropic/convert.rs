//! Conversions between Bifrost's unified (OpenAI-shaped) schema and Anthropic's Messages API,
//! as plain functions so an Anthropic-compatible route can reuse them.
//!
//! Unified → Anthropic request ([`to_messages_request`]):
//! - `system`/`developer` messages are hoisted into the top-level `system` (a string for a
//!   single plain system message, text blocks otherwise).
//! - Consecutive turns of the same role are merged into one message of blocks; `tool`
//!   messages become `tool_result` blocks of a user turn, their content kept verbatim.
//! - Assistant `tool_calls` become `tool_use` blocks; their JSON `arguments` must parse
//!   to an object (400 naming the message otherwise).
//! - `max_tokens` is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else
//!   [`DEFAULT_MAX_TOKENS`].
//! - `response_format` `json_schema` becomes `output_config.format` (Anthropic's structured
//!   outputs); `json_object` has no Anthropic equivalent and fails with a 400
//!   `unsupported_operation` naming the parameter (fallbacks may still run); `text` is the
//!   default and sends nothing.
//! - OpenAI-only sampling knobs Anthropic lacks (`seed`, `presence_penalty`,
//!   `frequency_penalty`, `logit_bias`, `logprobs`, `top_logprobs`, `stream_options`) are not
//!   sent, so an OpenAI-shaped request can fall back to Anthropic; `n` above 1 is a 400.
//! - Unknown parameters (`params.extra`: `top_k`, `thinking`, `service_tier`, …) go into the
//!   body as is; `metadata` and `output_config` objects are merged with what the conversion
//!   built (the extra's keys win).
//!
//! Anthropic → unified: [`from_messages_response`] for whole messages, [`StreamConverter`]
//! for streamed events, [`provider_error`] for error bodies and stream `error` events.

use serde_json::{Map, Value};

use super::types::{
    Content, ContentBlock, DeltaUsage, ErrorDetail, Message, MessagesRequest, MessagesResponse,
    Metadata, ModelEntry, Role, Source, StreamEvent, ThinkingConfig, ToolChoice, ToolChoiceKind,
    ToolDef, Usage,
};
use crate::schemas::{
    self, BifrostError, BifrostRequest, BifrostResponse, ChatMessage, Choice, ContentPart,
    ErrorBody, FunctionCall, MessageContent, ModelInfo, PromptTokensDetails, ProviderKey, Tool,
    ToolCall,
};

/// Output cap sent when the request sets none (Anthropic requires `max_tokens`).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Anthropic's non-standard "overloaded" status; worth a retry like a 503.
pub const STATUS_OVERLOADED: u16 = 529;

/// Builds the Anthropic body for a unified chat request.
///
/// # Errors
/// 400 for requests Anthropic cannot express (see the module docs).
pub fn to_messages_request(
    req: &BifrostRequest,
    stream: bool,
) -> Result<MessagesRequest, BifrostError> {
    let Some(messages) = req.messages() else {
        return Err(BifrostError::invalid_request(
            "chat completion needs messages",
        ));
    };
    let p = &req.params;
    if p.n.is_some_and(|n| n > 1) {
        return Err(BifrostError::invalid_param(
            "n",
            "anthropic returns one choice per request; n must be 1",
        ));
    }
    let (system, messages) = convert_messages(messages)?;
    if messages.is_empty() {
        return Err(BifrostError::invalid_param(
            "messages",
            "anthropic needs at least one user or assistant message besides the system prompt",
        ));
    }
    let tools = p.tools.as_deref().map(convert_tools).transpose()?;
    let mut tool_choice = p
        .tool_choice
        .as_ref()
        .map(convert_tool_choice)
        .transpose()?;
    if p.parallel_tool_calls == Some(false) && tools.is_some() {
        let choice = tool_choice.get_or_insert(ToolChoice {
            kind: ToolChoiceKind::Auto,
            name: None,
            disable_parallel_tool_use: None,
        });
        if choice.kind != ToolChoiceKind::None {
            choice.disable_parallel_tool_use = Some(true);
        }
    }
    let mut out = MessagesRequest {
        model: req.model.clone(),
        messages,
        system,
        max_tokens: p
            .max_completion_tokens
            .or(p.max_tokens)
            .unwrap_or(DEFAULT_MAX_TOKENS),
        metadata: p.user.as_ref().map(|u| Metadata {
            user_id: Some(u.clone()),
            extra: Map::new(),
        }),
        stop_sequences: p.stop.as_ref().map(stop_sequences).transpose()?.flatten(),
        stream: stream.then_some(true),
        temperature: p.temperature,
        top_p: p.top_p,
        top_k: None,
        tools,
        tool_choice,
        thinking: None,
        output_config: output_config(p.response_format.as_ref())?,
        extra: Map::new(),
    };
    for (key, value) in &p.extra {
        apply_extra(&mut out, key, value)?;
    }
    Ok(out)
}

/// Places one unknown parameter: typed where Anthropic's schema names it, merged for
/// objects the conversion may already have built, otherwise passed through unchanged.
fn apply_extra(out: &mut MessagesRequest, key: &str, value: &Value) -> Result<(), BifrostError> {
    match key {
        "top_k" => match value.as_u64().and_then(|k| u32::try_from(k).ok()) {
            Some(k) => out.top_k = Some(k),
            None => pass_through(out, key, value),
        },
        "thinking" => match serde_json::from_value::<ThinkingConfig>(value.clone()) {
            Ok(t) => out.thinking = Some(t),
            Err(_) => pass_through(out, key, value),
        },
        "metadata" => {
            let Value::Object(fields) = value else {
                return Err(BifrostError::invalid_param(
                    "metadata",
                    "metadata must be an object",
                ));
            };
            let meta = out.metadata.get_or_insert_with(Metadata::default);
            for (k, v) in fields {
                match (k.as_str(), v) {
                    ("user_id", Value::String(id)) => meta.user_id = Some(id.clone()),
                    _ => {
                        meta.extra.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        "output_config" => {
            let Value::Object(fields) = value else {
                return Err(BifrostError::invalid_param(
                    "output_config",
                    "output_config must be an object",
                ));
            };
            let config = out.output_config.get_or_insert_with(Map::new);
            for (k, v) in fields {
                config.insert(k.clone(), v.clone());
            }
        }
        "system" if out.system.is_none() => {
            let system = serde_json::from_value::<Content>(value.clone()).map_err(|e| {
                BifrostError::invalid_param("system", format!("invalid system: {e}"))
            })?;
            out.system = Some(system);
        }
        "system" | "model" | "messages" | "max_tokens" | "stream" | "stop_sequences"
        | "temperature" | "top_p" | "tools" | "tool_choice" => {
            return Err(BifrostError::invalid_param(
                key,
                format!("{key} conflicts with the request's own {key}; set it only once"),
            ));
        }
        _ => pass_through(out, key, value),
    }
    Ok(())
}

fn pass_through(out: &mut MessagesRequest, key: &str, value: &Value) {
    out.extra.insert(key.to_owned(), value.clone());
}

/// Splits unified messages into Anthropic's `system` and alternating turns.
fn convert_messages(msgs: &[ChatMessage]) -> Result<(Option<Content>, Vec<Message>), BifrostError> {
    let mut system: Vec<ContentBlock> = Vec::new();
    let mut system_messages = 0usize;
    let mut system_plain = true;
    let mut out: Vec<Message> = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let role = m.role.unwrap_or(schemas::Role::User);
        match role {
            schemas::Role::System | schemas::Role::Developer => {
                system_messages += 1;
                match &m.content {
                    Some(MessageContent::Text(s)) => system.push(text_block(s.clone())),
                    Some(MessageContent::Parts(parts)) => {
                        system_plain = false;
                        for (j, part) in parts.iter().enumerate() {
                            if part.kind != "text" {
                                return Err(BifrostError::invalid_param(
                                    "messages",
                                    format!(
                                        "messages[{i}].content[{j}]: anthropic system prompts take only text parts, not {:?}",
                                        part.kind
                                    ),
                                ));
                            }
                            system.push(text_block(part.text.clone().unwrap_or_default()));
                        }
                    }
                    None => {}
                }
            }
            schemas::Role::User => {
                let content = match &m.content {
                    Some(MessageContent::Text(s)) => Content::Text(s.clone()),
                    Some(MessageContent::Parts(parts)) => Content::Blocks(part_blocks(parts, i)?),
                    None => Content::Text(String::new()),
                };
                push_turn(&mut out, Role::User, content);
            }
            schemas::Role::Assistant | schemas::Role::Chatbot => {
                if let Some(content) = assistant_content(m, i)? {
                    push_turn(&mut out, Role::Assistant, content);
                }
            }
            schemas::Role::Tool | schemas::Role::Function => {
                let Some(tool_use_id) = m.tool_call_id.clone() else {
                    return Err(BifrostError::invalid_param(
                        "messages",
                        format!("messages[{i}]: a {role:?} message needs tool_call_id")
                            .to_lowercase(),
                    ));
                };
                let content = match &m.content {
                    Some(MessageContent::Text(s)) => Some(Content::Text(s.clone())),
                    Some(MessageContent::Parts(parts)) => {
                        Some(Content::Blocks(part_blocks(parts, i)?))
                    }
                    None => None,
                };
                let block = ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error: None,
                    cache_control: None,
                };
                push_turn(&mut out, Role::User, Content::Blocks(vec![block]));
            }
        }
    }
    let system = match system.len() {
        0 => None,
        1 if system_messages == 1 && system_plain => match system.pop() {
            Some(ContentBlock::Text { text, .. }) => Some(Content::Text(text)),
            other => other.map(|b| Content::Blocks(vec![b])),
        },
        _ => Some(Content::Blocks(system)),
    };
    Ok((system, out))
}

/// Appends a turn, merging it into the previous one when the role repeats (Anthropic wants
/// alternating turns, and all tool results of one assistant turn in one user message).
fn push_turn(out: &mut Vec<Message>, role: Role, content: Content) {
    match out.last_mut() {
        Some(last) if last.role == role => {
            let previous = std::mem::replace(&mut last.content, Content::Blocks(Vec::new()));
            let mut blocks = into_blocks(previous);
            blocks.extend(into_blocks(content));
            last.content = Content::Blocks(blocks);
        }
        _ => out.push(Message { role, content }),
    }
}

fn into_blocks(content: Content) -> Vec<ContentBlock> {
    match content {
        Content::Blocks(b) => b,
        // Anthropic rejects empty text blocks; an empty string adds nothing.
        Content::Text(s) if s.is_empty() => Vec::new(),
        Content::Text(s) => vec![text_block(s)],
    }
}

fn text_block(text: String) -> ContentBlock {
    ContentBlock::Text {
        text,
        citations: None,
        cache_control: None,
    }
}

/// Converts OpenAI content parts (text, images, files) of message `i` into blocks.
fn part_blocks(parts: &[ContentPart], i: usize) -> Result<Vec<ContentBlock>, BifrostError> {
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| part_block(part, i, j))
        .collect()
}

fn part_block(part: &ContentPart, i: usize, j: usize) -> Result<ContentBlock, BifrostError> {
    let at = || format!("messages[{i}].content[{j}]");
    match part.kind.as_str() {
        "text" => Ok(text_block(part.text.clone().unwrap_or_default())),
        "image_url" => {
            let url = part.image_url.as_ref().map_or("", |u| u.url.as_str());
            let source = image_source(url).ok_or_else(|| {
                BifrostError::invalid_param(
                    "messages",
                    format!(
                        "{}: image_url must be an http(s) URL or a base64 data: URI",
                        at()
                    ),
                )
            })?;
            Ok(ContentBlock::Image {
                source,
                cache_control: None,
            })
        }
        "file" => file_block(part.file.as_ref()).ok_or_else(|| {
            BifrostError::invalid_param(
                "messages",
                format!(
                    "{}: a file part needs file_data (a base64 data: URI) or file_id",
                    at()
                ),
            )
        }),
        other => {
            let mut e = BifrostError::unsupported_operation(
                &ProviderKey::Anthropic,
                &format!("{other:?} content parts ({})", at()),
            );
            e.error.param = Some("messages".to_owned());
            Err(e)
        }
    }
}

/// `data:<media type>;base64,<data>` → base64 source; `http(s)://` → URL source.
fn image_source(url: &str) -> Option<Source> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (media_type, data) = parse_data_uri(rest)?;
        return Some(Source::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| Source::Url {
        url: url.to_owned(),
    })
}

/// Splits the part after `data:` into media type and base64 payload (base64 only).
fn parse_data_uri(rest: &str) -> Option<(&str, &str)> {
    let (meta, data) = rest.split_once(',')?;
    let mut fields = meta.split(';');
    let media_type = fields.next().filter(|m| !m.is_empty())?;
    fields
        .any(|f| f.eq_ignore_ascii_case("base64"))
        .then_some((media_type, data))
}

/// OpenAI `file` part (`file_data` data URI, `file_id`, `filename`) → document block.
fn file_block(file: Option<&Value>) -> Option<ContentBlock> {
    let file = file?;
    let title = file
        .get("filename")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let source = if let Some(uri) = file.get("file_data").and_then(Value::as_str) {
        let (media_type, data) = parse_data_uri(uri.strip_prefix("data:")?)?;
        Source::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        }
    } else {
        Source::File {
            file_id: file.get("file_id").and_then(Value::as_str)?.to_owned(),
        }
    };
    Some(ContentBlock::Document {
        source,
        title,
        context: None,
        citations: None,
        cache_control: None,
    })
}

/// An assistant message as content: plain text stays a string; text plus tool calls become
/// text and `tool_use` blocks. `None` for a message with nothing to send.
fn assistant_content(m: &ChatMessage, i: usize) -> Result<Option<Content>, BifrostError> {
    let calls = m.tool_calls.as_deref().unwrap_or_default();
    if calls.is_empty()
        && let Some(MessageContent::Text(s)) = &m.content
    {
        return Ok((!s.is_empty()).then(|| Content::Text(s.clone())));
    }
    let mut blocks = match &m.content {
        Some(MessageContent::Text(s)) if !s.is_empty() => vec![text_block(s.clone())],
        Some(MessageContent::Parts(parts)) => part_blocks(parts, i)?
            .into_iter()
            .filter(|b| !matches!(b, ContentBlock::Text { text, .. } if text.is_empty()))
            .collect(),
        _ => Vec::with_capacity(calls.len()),
    };
    for (j, call) in calls.iter().enumerate() {
        let at = format!("messages[{i}].tool_calls[{j}]");
        let (Some(id), Some(name)) = (call.id.clone(), call.function.name.clone()) else {
            return Err(BifrostError::invalid_param(
                "messages",
                format!("{at}: a tool call needs an id and a function name"),
            ));
        };
        blocks.push(ContentBlock::ToolUse {
            id,
            name,
            input: tool_input(&call.function.arguments, &at)?,
            cache_control: None,
        });
    }
    Ok((!blocks.is_empty()).then_some(Content::Blocks(blocks)))
}

/// Parses tool-call arguments (a JSON string) into Anthropic's `input` object (also
/// Bedrock Converse's `toolUse.input`). Empty arguments are `{}`; anything but an object
/// is a 400 naming the message at `at`.
pub(crate) fn tool_input(arguments: &str, at: &str) -> Result<Value, BifrostError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(BifrostError::invalid_param(
            "messages",
            format!("{at}.function.arguments must be a JSON object"),
        )),
        Err(e) => Err(BifrostError::invalid_param(
            "messages",
            format!("{at}.function.arguments is not valid JSON: {e}"),
        )),
    }
}

fn convert_tools(tools: &[Tool]) -> Result<Vec<ToolDef>, BifrostError> {
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.kind != "function" {
                let mut e = BifrostError::unsupported_operation(
                    &ProviderKey::Anthropic,
                    &format!("tools of type {:?} (tools[{i}])", t.kind),
                );
                e.error.param = Some("tools".to_owned());
                return Err(e);
            }
            let f = &t.function;
            Ok(ToolDef {
                kind: None,
                name: f.name.clone(),
                description: f.description.clone(),
                input_schema: Some(
                    f.parameters
                        .clone()
                        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
                ),
                strict: f.strict,
                cache_control: None,
                extra: Map::new(),
            })
        })
        .collect()
}

/// OpenAI `tool_choice` (`auto`/`none`/`required`/`{"type":"function",…}`) → Anthropic's;
/// an Anthropic-shaped object (`{"type":"any"}`, `{"type":"tool","name":…}`) is taken as is.
fn convert_tool_choice(v: &Value) -> Result<ToolChoice, BifrostError> {
    let simple = |kind| ToolChoice {
        kind,
        name: None,
        disable_parallel_tool_use: None,
    };
    let invalid = || {
        BifrostError::invalid_param(
            "tool_choice",
            format!("unsupported tool_choice {v}; use auto, none, required or a function"),
        )
    };
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(simple(ToolChoiceKind::Auto)),
            "none" => Ok(simple(ToolChoiceKind::None)),
            "required" | "any" => Ok(simple(ToolChoiceKind::Any)),
            _ => Err(invalid()),
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .ok_or_else(invalid)?;
                Ok(ToolChoice {
                    kind: ToolChoiceKind::Tool,
                    name: Some(name.to_owned()),
                    disable_parallel_tool_use: None,
                })
            }
            Some("auto" | "any" | "tool" | "none") => {
                serde_json::from_value(v.clone()).map_err(|_| invalid())
            }
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// `stop` as a string or a list of strings; an empty list sends nothing.
fn stop_sequences(v: &Value) -> Result<Option<Vec<String>>, BifrostError> {
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                BifrostError::invalid_param("stop", "stop must be a string or a list of strings")
            })?,
        Value::Null => Vec::new(),
        _ => {
            return Err(BifrostError::invalid_param(
                "stop",
                "stop must be a string or a list of strings",
            ));
        }
    };
    Ok((!list.is_empty()).then_some(list))
}

/// `response_format` → `output_config` (see the module docs for the decision).
fn output_config(format: Option<&Value>) -> Result<Option<Map<String, Value>>, BifrostError> {
    let Some(format) = format else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .ok_or_else(|| {
                    BifrostError::invalid_param(
                        "response_format",
                        "response_format.json_schema.schema is required",
                    )
                })?;
            let mut config = Map::new();
            config.insert(
                "format".to_owned(),
                serde_json::json!({"type": "json_schema", "schema": schema}),
            );
            Ok(Some(config))
        }
        Some(other) => {
            let mut e = BifrostError::unsupported_operation(
                &ProviderKey::Anthropic,
                &format!("response_format {other:?} (use json_schema)"),
            );
            e.error.param = Some("response_format".to_owned());
            Err(e)
        }
        None => Err(BifrostError::invalid_param(
            "response_format",
            "response_format needs a type",
        )),
    }
}

/// Turns a whole Anthropic message into a `chat.completion`.
pub fn from_messages_response(resp: MessagesResponse, created: u64) -> BifrostResponse {
    let finish_reason = resp.stop_reason.as_deref().map(finish_reason);
    let usage = convert_usage(&resp.usage);
    BifrostResponse {
        id: resp.id,
        object: "chat.completion".to_owned(),
        created,
        model: resp.model,
        choices: Some(vec![Choice {
            index: 0,
            message: Some(assistant_message(resp.content)),
            finish_reason,
            ..Choice::default()
        }]),
        usage: Some(usage),
        ..BifrostResponse::default()
    }
}

/// Text blocks → `content`, `tool_use` → `tool_calls`, `thinking` → `reasoning_content`.
/// Other blocks (server tools, redacted thinking) have no unified form and are skipped.
fn assistant_message(blocks: Vec<ContentBlock>) -> ChatMessage {
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(&t),
            ContentBlock::Thinking { thinking, .. } => reasoning
                .get_or_insert_with(String::new)
                .push_str(&thinking),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => calls.push(ToolCall {
                index: None,
                id: Some(id),
                kind: Some("function".to_owned()),
                function: FunctionCall {
                    name: Some(name),
                    arguments: input.to_string(),
                },
            }),
            _ => {}
        }
    }
    let content = match text {
        Some(t) => Some(MessageContent::Text(t)),
        None if calls.is_empty() => Some(MessageContent::Text(String::new())),
        None => None,
    };
    ChatMessage {
        role: Some(schemas::Role::Assistant),
        content,
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: reasoning,
        ..ChatMessage::default()
    }
}

/// Anthropic `stop_reason` → OpenAI `finish_reason`; unknown reasons pass through.
pub fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" | "pause_turn" => "stop",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        other => other,
    }
    .to_owned()
}

/// Anthropic usage → unified usage. Anthropic's `input_tokens` excludes cached input, so
/// cache reads and writes are added to `prompt_tokens`; reads are also `cached_tokens`.
pub fn convert_usage(u: &Usage) -> schemas::Usage {
    let cache_read = u.cache_read_input_tokens.unwrap_or(0);
    let prompt = u
        .input_tokens
        .saturating_add(cache_read)
        .saturating_add(u.cache_creation_input_tokens.unwrap_or(0));
    schemas::Usage {
        prompt_tokens: prompt,
        completion_tokens: u.output_tokens,
        total_tokens: prompt.saturating_add(u.output_tokens),
        prompt_tokens_details: (cache_read > 0).then_some(PromptTokensDetails {
            cached_tokens: Some(cache_read),
            audio_tokens: None,
        }),
        completion_tokens_details: None,
    }
}

/// The HTTP status Anthropic uses for an error `type` (for errors that arrive inside a
/// stream, whose HTTP status was 200).
pub fn error_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => STATUS_OVERLOADED,
        _ => 500,
    }
}

/// A provider error keeping Anthropic's type and message; 529 (overloaded) is retryable.
pub fn provider_error(status: u16, detail: ErrorDetail) -> BifrostError {
    let mut e = BifrostError::provider(
        status,
        ErrorBody {
            kind: Some(detail.kind),
            code: None,
            message: detail.message,
            param: None,
        },
    );
    if status == STATUS_OVERLOADED {
        e.retryable = true;
    }
    e
}

/// An Anthropic model as a unified model entry, id prefixed with the provider's name
/// (`anthropic/<id>`, or a custom provider's own name).
pub fn model_info(provider: &ProviderKey, m: ModelEntry) -> ModelInfo {
    ModelInfo {
        created: parse_rfc3339(&m.created_at).unwrap_or(0),
        id: format!("{provider}/{}", m.id),
        object: "model".to_owned(),
        owned_by: "anthropic".to_owned(),
    }
}

/// Unix seconds of an RFC 3339 timestamp such as `2025-02-19T00:00:00Z` (fractions ignored).
fn parse_rfc3339(s: &str) -> Option<u64> {
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    u64::try_from(secs).ok()
}

/// Turns Anthropic stream events into `chat.completion.chunk`s, one event at a time.
///
/// Holds what later chunks need: the message id and model from `message_start`, the input
/// usage (only reported there), and which content blocks are tool calls (their
/// `input_json_delta`s become argument deltas of the same OpenAI tool-call index).
#[derive(Debug, Default)]
pub struct StreamConverter {
    id: String,
    model: String,
    created: u64,
    usage: Usage,
    /// `(content block index, tool call index)` of each `tool_use` block seen.
    tool_blocks: Vec<(u32, u32)>,
    finished: bool,
}

impl StreamConverter {
    /// A converter whose chunks carry `created` (Anthropic sends no timestamp).
    pub fn new(created: u64) -> Self {
        Self {
            created,
            ..Self::default()
        }
    }

    /// True once `message_stop` arrived: the stream is complete.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Converts one event; `Ok(None)` for events that carry nothing for the client
    /// (`ping`, `content_block_stop`, signatures, unknown events, `message_stop`).
    ///
    /// # Errors
    /// A stream `error` event, as a provider error with Anthropic's type and message; an
    /// `input_json_delta` for a block that is not a tool call.
    pub fn convert(&mut self, event: StreamEvent) -> Result<Option<BifrostResponse>, BifrostError> {
        let delta = match event {
            StreamEvent::MessageStart { message } => {
                self.id = message.id;
                self.model = message.model;
                self.usage = message.usage;
                ChatMessage {
                    role: Some(schemas::Role::Assistant),
                    content: Some(MessageContent::Text(String::new())),
                    ..ChatMessage::default()
                }
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                ContentBlock::ToolUse {
                    id, name, input, ..
                } => {
                    let tool_index = u32::try_from(self.tool_blocks.len()).unwrap_or(u32::MAX);
                    self.tool_blocks.push((index, tool_index));
                    // The start block's input is `{}`; the arguments follow as deltas.
                    let arguments = match &input {
                        Value::Object(o) if o.is_empty() => String::new(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    tool_delta(tool_index, Some(id), Some(name), arguments)
                }
                ContentBlock::Text { text, .. } if !text.is_empty() => content_delta(text),
                ContentBlock::Thinking { thinking, .. } if !thinking.is_empty() => {
                    reasoning_delta(thinking)
                }
                _ => return Ok(None),
            },
            StreamEvent::ContentBlockDelta { index, delta } => match delta {
                super::types::BlockDelta::TextDelta { text } => content_delta(text),
                super::types::BlockDelta::ThinkingDelta { thinking } => reasoning_delta(thinking),
                super::types::BlockDelta::InputJsonDelta { partial_json } => {
                    if partial_json.is_empty() {
                        return Ok(None);
                    }
                    let Some(&(_, tool_index)) =
                        self.tool_blocks.iter().find(|(block, _)| *block == index)
                    else {
                        return Err(BifrostError::bad_upstream_response(format!(
                            "anthropic stream: input_json_delta for content block {index}, which is not a tool_use"
                        )));
                    };
                    tool_delta(tool_index, None, None, partial_json)
                }
                _ => return Ok(None),
            },
            StreamEvent::MessageDelta { delta, usage } => {
                self.merge_usage(usage);
                let finish = delta.stop_reason.as_deref().map(finish_reason);
                return Ok(Some(self.chunk(
                    ChatMessage::default(),
                    finish,
                    Some(convert_usage(&self.usage)),
                )));
            }
            StreamEvent::MessageStop => {
                self.finished = true;
                return Ok(None);
            }
            StreamEvent::Error { error } => {
                return Err(provider_error(error_status(&error.kind), error));
            }
            StreamEvent::ContentBlockStop { .. } | StreamEvent::Ping | StreamEvent::Other(_) => {
                return Ok(None);
            }
        };
        Ok(Some(self.chunk(delta, None, None)))
    }

    /// A chunk without choices, for events that carry nothing unified but are relayed raw
    /// on a native passthrough stream (`ping`, `content_block_stop`, `message_stop`, …).
    pub fn empty_chunk(&self) -> BifrostResponse {
        BifrostResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: Some(Vec::new()),
            ..BifrostResponse::default()
        }
    }

    /// `message_delta` usage is cumulative; input counts are present only in newer versions.
    fn merge_usage(&mut self, d: DeltaUsage) {
        self.usage.output_tokens = d.output_tokens;
        if let Some(n) = d.input_tokens {
            self.usage.input_tokens = n;
        }
        if d.cache_creation_input_tokens.is_some() {
            self.usage.cache_creation_input_tokens = d.cache_creation_input_tokens;
        }
        if d.cache_read_input_tokens.is_some() {
            self.usage.cache_read_input_tokens = d.cache_read_input_tokens;
        }
    }

    fn chunk(
        &self,
        delta: ChatMessage,
        finish_reason: Option<String>,
        usage: Option<schemas::Usage>,
    ) -> BifrostResponse {
        BifrostResponse {
            id: self.id.clone(),
            object: "chat.completion.chunk".to_owned(),
            created: self.created,
            model: self.model.clone(),
            choices: Some(vec![Choice {
                index: 0,
                delta: Some(delta),
                finish_reason,
                ..Choice::default()
            }]),
            usage,
            ..BifrostResponse::default()
        }
    }
}

fn content_delta(text: String) -> ChatMessage {
    ChatMessage {
        content: Some(MessageContent::Text(text)),
        ..ChatMessage::default()
    }
}

fn reasoning_delta(thinking: String) -> ChatMessage {
    ChatMessage {
        reasoning_content: Some(thinking),
        ..ChatMessage::default()
    }
}

fn tool_delta(
    index: u32,
    id: Option<String>,
    name: Option<String>,
    arguments: String,
) -> ChatMessage {
    let first = id.is_some();
    ChatMessage {
        tool_calls: Some(vec![ToolCall {
            index: Some(index),
            id,
            kind: first.then(|| "function".to_owned()),
            function: FunctionCall { name, arguments },
        }]),
        ..ChatMessage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{FunctionDef, ImageUrl, Role as R};
    use serde_json::json;

    fn msg(role: R, text: &str) -> ChatMessage {
        ChatMessage::text(role, text)
    }

    fn request(messages: Vec<ChatMessage>) -> BifrostRequest {
        BifrostRequest::chat(ProviderKey::Anthropic, "claude-test", messages)
    }

    fn body(req: &BifrostRequest) -> Value {
        serde_json::to_value(to_messages_request(req, false).unwrap()).unwrap()
    }

    fn weather_tool() -> Tool {
        Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: "get_weather".into(),
                description: Some("Weather".into()),
                parameters: Some(json!({"type": "object",
                    "properties": {"location": {"type": "string"}}})),
                strict: None,
            },
        }
    }

    fn tool_call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            index: None,
            id: Some(id.into()),
            kind: Some("function".into()),
            function: FunctionCall {
                name: Some(name.into()),
                arguments: args.into(),
            },
        }
    }

    fn tool_message(id: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: Some(R::Tool),
            tool_call_id: Some(id.into()),
            content: Some(MessageContent::Text(content.into())),
            ..ChatMessage::default()
        }
    }

    #[test]
    fn minimal_request_has_required_max_tokens_and_string_content() {
        let req = request(vec![msg(R::User, "hi")]);
        assert_eq!(
            body(&req),
            json!({"model": "claude-test", "max_tokens": 4096,
                   "messages": [{"role": "user", "content": "hi"}]})
        );
        let v = serde_json::to_value(to_messages_request(&req, true).unwrap()).unwrap();
        assert_eq!(v["stream"], true);
    }

    #[test]
    fn system_and_developer_messages_become_top_level_system() {
        let one = request(vec![msg(R::System, "be brief"), msg(R::User, "hi")]);
        assert_eq!(body(&one)["system"], json!("be brief"));
        let two = request(vec![
            msg(R::System, "be brief"),
            msg(R::User, "hi"),
            msg(R::Developer, "in French"),
        ]);
        let v = body(&two);
        assert_eq!(
            v["system"],
            json!([{"type": "text", "text": "be brief"}, {"type": "text", "text": "in French"}])
        );
        assert_eq!(v["messages"], json!([{"role": "user", "content": "hi"}]));
        let only_system = request(vec![msg(R::System, "x")]);
        let e = to_messages_request(&only_system, false).unwrap_err();
        assert_eq!(e.http_status(), 400);
        assert_eq!(e.error.param.as_deref(), Some("messages"));
    }

    #[test]
    fn images_and_files_become_blocks() {
        let parts = vec![
            ContentPart {
                kind: "text".into(),
                text: Some("what is this".into()),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: "data:image/png;base64,iVBORw0K".into(),
                    detail: Some("low".into()),
                }),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "image_url".into(),
                image_url: Some(ImageUrl {
                    url: "https://example.com/cat.jpg".into(),
                    detail: None,
                }),
                ..ContentPart::default()
            },
            ContentPart {
                kind: "file".into(),
                file: Some(
                    json!({"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}),
                ),
                ..ContentPart::default()
            },
        ];
        let req = request(vec![ChatMessage {
            role: Some(R::User),
            content: Some(MessageContent::Parts(parts)),
            ..ChatMessage::default()
        }]);
        assert_eq!(
            body(&req)["messages"][0]["content"],
            json!([
                {"type": "text", "text": "what is this"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "document", "title": "a.pdf",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}}
            ])
        );
        for (kind, url) in [
            ("image_url", "ftp://x/y.png"),
            ("image_url", "data:image/png,abc"),
        ] {
            let bad = request(vec![ChatMessage {
                role: Some(R::User),
                content: Some(MessageContent::Parts(vec![ContentPart {
                    kind: kind.into(),
                    image_url: Some(ImageUrl {
                        url: url.into(),
                        detail: None,
                    }),
                    ..ContentPart::default()
                }])),
                ..ChatMessage::default()
            }]);
            let e = to_messages_request(&bad, false).unwrap_err();
            assert!(e.error.message.contains("messages[0].content[0]"), "{e}");
        }
        let audio = request(vec![ChatMessage {
            role: Some(R::User),
            content: Some(MessageContent::Parts(vec![ContentPart {
                kind: "input_audio".into(),
                ..ContentPart::default()
            }])),
            ..ChatMessage::default()
        }]);
        let e = to_messages_request(&audio, false).unwrap_err();
        assert_eq!(e.kind(), "unsupported_operation");
        assert!(e.fallbacks_allowed());
    }

    #[test]
    fn tool_calls_and_results_round_trip_without_requoting() {
        let req = request(vec![
            msg(R::User, "weather in Paris and Rome?"),
            ChatMessage {
                role: Some(R::Assistant),
                content: Some(MessageContent::Text("Checking.".into())),
                tool_calls: Some(vec![
                    tool_call("toolu_1", "get_weather", r#"{"location":"Paris"}"#),
                    tool_call("toolu_2", "get_weather", ""),
                ]),
                ..ChatMessage::default()
            },
            tool_message("toolu_1", "\"sunny\""),
            tool_message("toolu_2", "{\"temp\": 21}"),
            msg(R::User, "thanks"),
        ]);
        assert_eq!(
            body(&req)["messages"],
            json!([
                {"role": "user", "content": "weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "\"sunny\""},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "{\"temp\": 21}"},
                    {"type": "text", "text": "thanks"}
                ]}
            ])
        );
    }

    #[test]
    fn invalid_tool_arguments_name_the_message() {
        let req = request(vec![
            msg(R::User, "x"),
            ChatMessage {
                role: Some(R::Assistant),
                tool_calls: Some(vec![tool_call("t", "f", "{not json")]),
                ..ChatMessage::default()
            },
        ]);
        let e = to_messages_request(&req, false).unwrap_err();
        assert_eq!(e.http_status(), 400);
        assert!(
            e.error
                .message
                .contains("messages[1].tool_calls[0].function.arguments is not valid JSON"),
            "{}",
            e.error.message
        );
        let no_id = request(vec![ChatMessage {
            role: Some(R::Tool),
            content: Some(MessageContent::Text("x".into())),
            ..ChatMessage::default()
        }]);
        let e = to_messages_request(&no_id, false).unwrap_err();
        assert!(e.error.message.contains("messages[0]"), "{e}");
    }

    #[test]
    fn tools_choice_and_sampling_parameters() {
        let mut req = request(vec![msg(R::User, "x")]);
        let p = &mut req.params;
        p.tools = Some(vec![weather_tool()]);
        p.temperature = Some(0.3);
        p.top_p = Some(0.9);
        p.max_tokens = Some(50);
        p.stop = Some(json!("END"));
        p.user = Some("user-1".into());
        p.parallel_tool_calls = Some(false);
        p.seed = Some(7);
        let v = body(&req);
        assert_eq!(
            v,
            json!({"model": "claude-test", "max_tokens": 50,
                "messages": [{"role": "user", "content": "x"}],
                "metadata": {"user_id": "user-1"}, "stop_sequences": ["END"],
                "temperature": 0.3, "top_p": 0.9,
                "tools": [{"name": "get_weather", "description": "Weather",
                    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
                "tool_choice": {"type": "auto", "disable_parallel_tool_use": true}})
        );
        req.params.max_completion_tokens = Some(60);
        req.params.parallel_tool_calls = None;
        req.params.stop = Some(json!(["a", "b"]));
        for (choice, want) in [
            (json!("auto"), json!({"type": "auto"})),
            (json!("none"), json!({"type": "none"})),
            (json!("required"), json!({"type": "any"})),
            (
                json!({"type": "function", "function": {"name": "get_weather"}}),
                json!({"type": "tool", "name": "get_weather"}),
            ),
            (
                json!({"type": "tool", "name": "get_weather"}),
                json!({"type": "tool", "name": "get_weather"}),
            ),
        ] {
            req.params.tool_choice = Some(choice);
            let v = body(&req);
            assert_eq!(v["tool_choice"], want);
            assert_eq!(v["max_tokens"], 60);
            assert_eq!(v["stop_sequences"], json!(["a", "b"]));
        }
        req.params.tool_choice = Some(json!("sometimes"));
        let e = to_messages_request(&req, false).unwrap_err();
        assert_eq!(e.error.param.as_deref(), Some("tool_choice"));
        req.params.tool_choice = None;
        req.params.stop = Some(json!(3));
        assert!(to_messages_request(&req, false).is_err());
        req.params.stop = None;
        req.params.n = Some(2);
        let e = to_messages_request(&req, false).unwrap_err();
        assert_eq!(e.error.param.as_deref(), Some("n"));
    }

    #[test]
    fn extra_params_pass_through_typed_or_raw() {
        let mut req = request(vec![msg(R::User, "x")]);
        req.params.user = Some("u".into());
        for (k, v) in [
            ("top_k", json!(40)),
            (
                "thinking",
                json!({"type": "enabled", "budget_tokens": 2048}),
            ),
            ("service_tier", json!("auto")),
            ("metadata", json!({"tenant": "t1"})),
            ("output_config", json!({"effort": "high"})),
            ("mock", json!({"status": 429})),
        ] {
            req.params.extra.insert(k.into(), v);
        }
        req.params.response_format = Some(json!({"type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": true}}));
        let v = body(&req);
        assert_eq!(v["top_k"], 40);
        assert_eq!(
            v["thinking"],
            json!({"type": "enabled", "budget_tokens": 2048})
        );
        assert_eq!(v["service_tier"], "auto");
        assert_eq!(v["mock"], json!({"status": 429}));
        assert_eq!(v["metadata"], json!({"user_id": "u", "tenant": "t1"}));
        assert_eq!(
            v["output_config"],
            json!({"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}})
        );
        req.params.extra.insert("temperature".into(), json!(1));
        let e = to_messages_request(&req, false).unwrap_err();
        assert_eq!(e.error.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn response_format_decision() {
        let mut req = request(vec![msg(R::User, "x")]);
        req.params.response_format = Some(json!({"type": "text"}));
        assert!(body(&req).get("output_config").is_none());
        req.params.response_format = Some(json!({"type": "json_object"}));
        let e = to_messages_request(&req, false).unwrap_err();
        assert_eq!(e.http_status(), 400);
        assert_eq!(e.kind(), "unsupported_operation");
        assert_eq!(e.error.param.as_deref(), Some("response_format"));
        assert!(e.fallbacks_allowed());
        req.params.response_format = Some(json!({"type": "json_schema", "json_schema": {}}));
        assert!(to_messages_request(&req, false).is_err());
    }

    #[test]
    fn response_with_text_tools_thinking_and_cache_usage() {
        let resp: MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "let me see", "signature": "s"},
                {"type": "text", "text": "Hello "},
                {"type": "text", "text": "world"},
                {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"location": "Paris"}}
            ],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5,
                      "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}
        }))
        .unwrap();
        let r = from_messages_response(resp, 42);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            json!({"id": "msg_1", "object": "chat.completion", "created": 42, "model": "claude-x",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                    "role": "assistant", "content": "Hello world", "reasoning_content": "let me see",
                    "tool_calls": [{"id": "toolu_9", "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]}}],
                "usage": {"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135,
                    "prompt_tokens_details": {"cached_tokens": 100}},
                "extra_fields": {}})
        );
        let tool_only: MessagesResponse = serde_json::from_value(json!({"id": "m", "model": "c",
            "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}}))
        .unwrap();
        let msg = from_messages_response(tool_only, 0).choices.unwrap()[0]
            .message
            .clone()
            .unwrap();
        assert_eq!(msg.content, None);
        assert_eq!(msg.tool_calls.unwrap()[0].function.arguments, "{}");
    }

    #[test]
    fn finish_reasons_and_error_statuses() {
        for (stop, want) in [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("something_new", "something_new"),
        ] {
            assert_eq!(finish_reason(stop), want);
        }
        let e = provider_error(
            error_status("overloaded_error"),
            ErrorDetail {
                kind: "overloaded_error".into(),
                message: "Overloaded".into(),
            },
        );
        assert_eq!(e.http_status(), 529);
        assert!(e.retryable);
        assert_eq!(e.kind(), "overloaded_error");
        assert_eq!(e.error.message, "Overloaded");
        assert_eq!(error_status("rate_limit_error"), 429);
        assert_eq!(error_status("api_error"), 500);
    }

    #[test]
    fn model_entries_and_timestamps() {
        let m = model_info(
            &ProviderKey::Anthropic,
            ModelEntry {
                id: "claude-3-7-sonnet-20250219".into(),
                display_name: "Claude Sonnet 3.7".into(),
                created_at: "2025-02-19T00:00:00Z".into(),
                kind: "model".into(),
            },
        );
        assert_eq!(m.id, "anthropic/claude-3-7-sonnet-20250219");
        assert_eq!(m.created, 1_739_923_200);
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-10-22T01:02:03.456+01:00"),
            Some(1_729_555_323)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
    }

    fn events(list: Vec<Value>) -> (Vec<BifrostResponse>, StreamConverter) {
        let mut conv = StreamConverter::new(7);
        let chunks = list
            .into_iter()
            .filter_map(|e| conv.convert(serde_json::from_value(e).unwrap()).unwrap())
            .collect();
        (chunks, conv)
    }

    fn delta(c: &BifrostResponse) -> &ChatMessage {
        c.choices.as_ref().unwrap()[0].delta.as_ref().unwrap()
    }

    #[test]
    fn stream_text_thinking_finish_and_usage() {
        let (chunks, conv) = events(vec![
            json!({"type": "message_start", "message": {"id": "msg_s", "type": "message",
                "role": "assistant", "content": [], "model": "claude-x", "stop_reason": null,
                "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 1,
                "cache_read_input_tokens": 8, "cache_creation_input_tokens": 0}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
            json!({"type": "content_block_stop", "index": 0}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "ping"}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hel"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "lo"}}),
            json!({"type": "content_block_stop", "index": 1}),
            json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens", "stop_sequence": null},
                "usage": {"output_tokens": 9}}),
            json!({"type": "message_stop"}),
        ]);
        assert!(conv.is_finished());
        assert_eq!(chunks.len(), 5);
        assert!(chunks.iter().all(|c| c.id == "msg_s"
            && c.model == "claude-x"
            && c.created == 7
            && c.object == "chat.completion.chunk"));
        assert_eq!(delta(&chunks[0]).role, Some(R::Assistant));
        assert_eq!(delta(&chunks[1]).reasoning_content.as_deref(), Some("hmm"));
        let text: String = chunks
            .iter()
            .filter_map(|c| delta(c).text_content())
            .collect();
        assert_eq!(text, "Hello");
        let last = chunks.last().unwrap();
        assert_eq!(
            last.choices.as_ref().unwrap()[0].finish_reason.as_deref(),
            Some("length")
        );
        let usage = last.usage.as_ref().unwrap();
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens
            ),
            (20, 9, 29)
        );
        assert_eq!(
            usage.prompt_tokens_details.as_ref().unwrap().cached_tokens,
            Some(8)
        );
    }

    #[test]
    fn stream_tool_call_split_in_many_parts_reassembles() {
        let args = r#"{"location": "Paris", "unit": "celsius", "days": [1, 2]}"#;
        let mut list = vec![
            json!({"type": "message_start", "message": {"id": "m", "model": "c", "content": [],
                "usage": {"input_tokens": 3, "output_tokens": 0}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me check."}}),
            json!({"type": "content_block_stop", "index": 0}),
        ];
        for (block, id) in [(1, "toolu_a"), (2, "toolu_b")] {
            list.push(json!({"type": "content_block_start", "index": block,
                "content_block": {"type": "tool_use", "id": id, "name": "get_weather", "input": {}}}));
            list.push(json!({"type": "content_block_delta", "index": block,
                "delta": {"type": "input_json_delta", "partial_json": ""}}));
            for piece in args.as_bytes().chunks(4) {
                list.push(json!({"type": "content_block_delta", "index": block,
                    "delta": {"type": "input_json_delta",
                              "partial_json": std::str::from_utf8(piece).unwrap()}}));
            }
            list.push(json!({"type": "content_block_stop", "index": block}));
        }
        list.push(
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 30}}),
        );
        list.push(json!({"type": "message_stop"}));
        let (chunks, _) = events(list);
        let calls: Vec<&ToolCall> = chunks
            .iter()
            .filter_map(|c| delta(c).tool_calls.as_ref())
            .flatten()
            .collect();
        for (index, id) in [(0, "toolu_a"), (1, "toolu_b")] {
            let mine: Vec<&&ToolCall> = calls.iter().filter(|c| c.index == Some(index)).collect();
            assert!(mine.len() > 3);
            assert_eq!(mine[0].id.as_deref(), Some(id));
            assert_eq!(mine[0].kind.as_deref(), Some("function"));
            assert_eq!(mine[0].function.name.as_deref(), Some("get_weather"));
            assert!(
                mine[1..]
                    .iter()
                    .all(|c| c.id.is_none() && c.function.name.is_none())
            );
            let joined: String = mine.iter().map(|c| c.function.arguments.as_str()).collect();
            let parsed: Value = serde_json::from_str(&joined).unwrap();
            assert_eq!(parsed, serde_json::from_str::<Value>(args).unwrap());
        }
        let finish = chunks.last().unwrap().choices.as_ref().unwrap()[0]
            .finish_reason
            .clone();
        assert_eq!(finish.as_deref(), Some("tool_calls"));
    }

    #[test]
    fn stream_error_event_and_stray_json_delta_are_errors() {
        let mut conv = StreamConverter::new(0);
        let e = conv
            .convert(
                serde_json::from_value(json!({"type": "error",
                    "error": {"type": "overloaded_error", "message": "Overloaded"}}))
                .unwrap(),
            )
            .unwrap_err();
        assert_eq!(e.http_status(), 529);
        assert_eq!(e.error.message, "Overloaded");
        assert!(e.retryable);
        let stray = conv.convert(
            serde_json::from_value(json!({"type": "content_block_delta", "index": 4,
                "delta": {"type": "input_json_delta", "partial_json": "{"}}))
            .unwrap(),
        );
        assert_eq!(stray.unwrap_err().http_status(), 502);
        let unknown = conv
            .convert(serde_json::from_value(json!({"type": "future_event"})).unwrap())
            .unwrap();
        assert!(unknown.is_none());
        assert!(!conv.is_finished());
    }
}
