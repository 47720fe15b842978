//! Unified (OpenAI-shaped) requests to Bedrock bodies, and Bedrock answers and errors back.
//!
//! Converse request ([`converse_request`]):
//! - `system`/`developer` messages → `system` text blocks; `tool` messages → `toolResult`
//!   blocks of a user turn, their content sent verbatim as text; assistant `tool_calls` →
//!   `toolUse` blocks (arguments must be a JSON object). Consecutive turns of one role are
//!   merged, since Converse wants them alternating.
//! - Images must be `data:` URIs (Converse takes bytes, not URLs); `file` parts with
//!   `file_data` become document blocks.
//! - `max_completion_tokens`/`max_tokens`, `temperature`, `top_p`, `stop` → `inferenceConfig`;
//!   `tools` → `toolConfig.tools`, `tool_choice` `auto`/`required`/a function →
//!   `{"auto":{}}`/`{"any":{}}`/`{"tool":{"name"}}` (`none` sends no choice). When the
//!   history holds tool calls but no tools are offered, the called tools are declared with
//!   an open schema, because Converse refuses tool blocks without a `toolConfig`.
//! - Converse's own top-level fields in the extra parameters (`guardrailConfig`,
//!   `performanceConfig`, `promptVariables`, `requestMetadata`,
//!   `additionalModelResponseFieldPaths`, `serviceTier`) pass through; every other extra
//!   parameter (`top_k`, `thinking`, …) goes into `additionalModelRequestFields`, where the
//!   model's own parameters belong.
//! - Not expressible, so not sent: `seed`, penalties, `logit_bias`, `logprobs`,
//!   `top_logprobs`, `user`, `parallel_tool_calls`; `n` > 1 and a JSON `response_format` are
//!   400s (the drop-in routes list them through `native::unsupported_params`).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Map, Value, json};

// Converse takes tool-call arguments as an object, as Anthropic does.
use crate::providers::anthropic::convert::tool_input;

use super::types::{
    Block, BytesSource, ConverseRequest, ConverseResponse, DocumentBlock, InferenceConfig,
    MediaBlock, Message, SystemBlock, TokenUsage, ToolConfig, ToolEntry, ToolResult,
    ToolResultContent, ToolSpec, ToolUse,
};
use crate::schemas::{
    self, BifrostError, BifrostRequest, BifrostResponse, ChatMessage, Choice, ContentPart,
    EmbeddingData, EmbeddingInput, ErrorBody, FunctionCall, MessageContent, PromptTokensDetails,
    ProviderKey, RequestInput, Role, ToolCall, Usage,
};

/// Converse fields that go at the top level of the body when given as extra parameters.
const CONVERSE_FIELDS: &[&str] = &[
    "guardrailConfig",
    "performanceConfig",
    "promptVariables",
    "requestMetadata",
    "additionalModelResponseFieldPaths",
    "serviceTier",
];

/// Builds the Converse body for a chat request.
///
/// # Errors
/// 400 for what Converse cannot express (see the module docs).
pub fn converse_request(req: &BifrostRequest) -> Result<ConverseRequest, BifrostError> {
    let Some(messages) = req.messages() else {
        return Err(BifrostError::invalid_request(
            "chat completion needs messages",
        ));
    };
    let p = &req.params;
    if p.n.is_some_and(|n| n > 1) {
        return Err(BifrostError::invalid_param(
            "n",
            "bedrock returns one choice per request; n must be 1",
        ));
    }
    if let Some(kind) = p
        .response_format
        .as_ref()
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str)
        .filter(|k| *k != "text")
    {
        let mut e = BifrostError::unsupported_operation(
            &ProviderKey::Bedrock,
            &format!("response_format {kind:?} through Converse"),
        );
        e.error.param = Some("response_format".to_owned());
        return Err(e);
    }
    let (system, messages) = convert_messages(messages)?;
    if messages.is_empty() {
        return Err(BifrostError::invalid_param(
            "messages",
            "bedrock needs at least one user or assistant message besides the system prompt",
        ));
    }
    let inference = InferenceConfig {
        max_tokens: p.max_completion_tokens.or(p.max_tokens),
        temperature: p.temperature,
        top_p: p.top_p,
        stop_sequences: p.stop.as_ref().map(stop_sequences).transpose()?.flatten(),
    };
    let tool_config = tool_config(req, &messages)?;
    let mut out = ConverseRequest {
        messages,
        system,
        inference_config: (!inference.is_empty()).then_some(inference),
        tool_config,
        additional_model_request_fields: None,
        extra: Map::new(),
    };
    for (key, value) in &p.extra {
        if CONVERSE_FIELDS.contains(&key.as_str()) {
            out.extra.insert(key.clone(), value.clone());
        } else if key == "additionalModelRequestFields" {
            let Value::Object(fields) = value else {
                return Err(BifrostError::invalid_param(
                    key,
                    "additionalModelRequestFields must be an object",
                ));
            };
            let extra = out
                .additional_model_request_fields
                .get_or_insert_with(Map::new);
            for (k, v) in fields {
                extra.insert(k.clone(), v.clone());
            }
        } else {
            out.additional_model_request_fields
                .get_or_insert_with(Map::new)
                .insert(key.clone(), value.clone());
        }
    }
    Ok(out)
}

/// Splits unified messages into `system` and alternating turns.
fn convert_messages(
    msgs: &[ChatMessage],
) -> Result<(Vec<SystemBlock>, Vec<Message>), BifrostError> {
    let mut system = Vec::new();
    let mut out: Vec<Message> = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let role = m.role.unwrap_or(Role::User);
        match role {
            Role::System | Role::Developer => match &m.content {
                Some(MessageContent::Text(s)) if !s.is_empty() => {
                    system.push(SystemBlock { text: s.clone() });
                }
                Some(MessageContent::Parts(parts)) => {
                    for (j, part) in parts.iter().enumerate() {
                        if part.kind != "text" {
                            return Err(BifrostError::invalid_param(
                                "messages",
                                format!(
                                    "messages[{i}].content[{j}]: bedrock system prompts take only text parts, not {:?}",
                                    part.kind
                                ),
                            ));
                        }
                        if let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) {
                            system.push(SystemBlock { text: text.clone() });
                        }
                    }
                }
                _ => {}
            },
            Role::User => {
                let blocks = match &m.content {
                    Some(MessageContent::Text(s)) => text_blocks(s),
                    Some(MessageContent::Parts(parts)) => part_blocks(parts, i)?,
                    None => Vec::new(),
                };
                push_turn(&mut out, "user", blocks);
            }
            Role::Assistant | Role::Chatbot => {
                let mut blocks = match &m.content {
                    Some(MessageContent::Text(s)) => text_blocks(s),
                    Some(MessageContent::Parts(parts)) => part_blocks(parts, i)?,
                    None => Vec::new(),
                };
                for (j, call) in m.tool_calls.iter().flatten().enumerate() {
                    let at = format!("messages[{i}].tool_calls[{j}]");
                    let (Some(id), Some(name)) = (&call.id, &call.function.name) else {
                        return Err(BifrostError::invalid_param(
                            "messages",
                            format!("{at}: a tool call needs an id and a function name"),
                        ));
                    };
                    blocks.push(Block::ToolUse(ToolUse {
                        tool_use_id: id.clone(),
                        name: name.clone(),
                        input: tool_input(&call.function.arguments, &at)?,
                    }));
                }
                push_turn(&mut out, "assistant", blocks);
            }
            Role::Tool | Role::Function => {
                let Some(id) = m.tool_call_id.clone() else {
                    return Err(BifrostError::invalid_param(
                        "messages",
                        format!("messages[{i}]: a tool message needs tool_call_id"),
                    ));
                };
                let content = match &m.content {
                    Some(MessageContent::Text(s)) => vec![ToolResultContent::Text(s.clone())],
                    Some(MessageContent::Parts(parts)) => part_blocks(parts, i)?
                        .into_iter()
                        .filter_map(|b| match b {
                            Block::Text(t) => Some(ToolResultContent::Text(t)),
                            Block::Image(img) => Some(ToolResultContent::Image(img)),
                            _ => None,
                        })
                        .collect(),
                    None => Vec::new(),
                };
                // Converse refuses an empty tool result.
                let content = if content.is_empty() {
                    vec![ToolResultContent::Text(String::new())]
                } else {
                    content
                };
                push_turn(
                    &mut out,
                    "user",
                    vec![Block::ToolResult(ToolResult {
                        tool_use_id: id,
                        content,
                    })],
                );
            }
        }
    }
    Ok((system, out))
}

/// Appends a turn, merged into the previous one when the role repeats; a turn with no
/// blocks is left out (Converse refuses empty content).
fn push_turn(out: &mut Vec<Message>, role: &'static str, blocks: Vec<Block>) {
    if blocks.is_empty() {
        return;
    }
    match out.last_mut() {
        Some(last) if last.role == role => last.content.extend(blocks),
        _ => out.push(Message {
            role,
            content: blocks,
        }),
    }
}

/// Converse refuses blank text blocks; an empty string adds nothing.
fn text_blocks(s: &str) -> Vec<Block> {
    if s.is_empty() {
        Vec::new()
    } else {
        vec![Block::Text(s.to_owned())]
    }
}

fn part_blocks(parts: &[ContentPart], i: usize) -> Result<Vec<Block>, BifrostError> {
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        let at = || format!("messages[{i}].content[{j}]");
        match part.kind.as_str() {
            "text" => out.extend(text_blocks(part.text.as_deref().unwrap_or_default())),
            "image_url" => {
                let url = part.image_url.as_ref().map_or("", |u| u.url.as_str());
                let (media_type, data) = url
                    .strip_prefix("data:")
                    .and_then(parse_data_uri)
                    .ok_or_else(|| {
                        BifrostError::invalid_param(
                            "messages",
                            format!(
                                "{}: bedrock takes images as bytes; send a base64 data: URI",
                                at()
                            ),
                        )
                    })?;
                let format = media_type
                    .strip_prefix("image/")
                    .map(|f| if f == "jpg" { "jpeg" } else { f })
                    .filter(|f| matches!(*f, "png" | "jpeg" | "gif" | "webp"))
                    .ok_or_else(|| {
                        BifrostError::invalid_param(
                            "messages",
                            format!(
                                "{}: bedrock takes png, jpeg, gif or webp images, not {media_type}",
                                at()
                            ),
                        )
                    })?;
                out.push(Block::Image(MediaBlock {
                    format: format.to_owned(),
                    source: BytesSource {
                        bytes: data.to_owned(),
                    },
                }));
            }
            "file" => out.push(document(part.file.as_ref()).ok_or_else(|| {
                BifrostError::invalid_param(
                    "messages",
                    format!(
                        "{}: bedrock takes files as file_data (a base64 data: URI) of a pdf, \
                         csv, doc, docx, xls, xlsx, html, txt or md document",
                        at()
                    ),
                )
            })?),
            other => {
                let mut e = BifrostError::unsupported_operation(
                    &ProviderKey::Bedrock,
                    &format!("{other:?} content parts ({})", at()),
                );
                e.error.param = Some("messages".to_owned());
                return Err(e);
            }
        }
    }
    Ok(out)
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

/// An OpenAI `file` part with `file_data` → a document block.
fn document(file: Option<&Value>) -> Option<Block> {
    let file = file?;
    let uri = file.get("file_data").and_then(Value::as_str)?;
    let (media_type, data) = parse_data_uri(uri.strip_prefix("data:")?)?;
    let format = match media_type {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    };
    // Converse allows letters, digits, single spaces, hyphens, parentheses and brackets.
    let name: String = file
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or("document")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(Block::Document(DocumentBlock {
        format: format.to_owned(),
        name: if name.is_empty() {
            "document".to_owned()
        } else {
            name
        },
        source: BytesSource {
            bytes: data.to_owned(),
        },
    }))
}

/// `tools` and `tool_choice` → `toolConfig` (see the module docs).
fn tool_config(
    req: &BifrostRequest,
    messages: &[Message],
) -> Result<Option<ToolConfig>, BifrostError> {
    let p = &req.params;
    let mut tools = Vec::new();
    for (i, t) in p.tools.iter().flatten().enumerate() {
        if t.kind != "function" {
            let mut e = BifrostError::unsupported_operation(
                &ProviderKey::Bedrock,
                &format!("tools of type {:?} (tools[{i}])", t.kind),
            );
            e.error.param = Some("tools".to_owned());
            return Err(e);
        }
        let f = &t.function;
        tools.push(ToolEntry {
            tool_spec: ToolSpec {
                name: f.name.clone(),
                description: f.description.clone().filter(|d| !d.is_empty()),
                input_schema: json!({"json": f
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}))}),
            },
        });
    }
    if tools.is_empty() {
        // Tool blocks in the history need a toolConfig naming their tools.
        let mut names: Vec<&str> = Vec::new();
        for m in messages {
            for b in &m.content {
                if let Block::ToolUse(u) = b
                    && !names.contains(&u.name.as_str())
                {
                    names.push(&u.name);
                }
            }
        }
        if names.is_empty() {
            return Ok(None);
        }
        tools = names
            .into_iter()
            .map(|name| ToolEntry {
                tool_spec: ToolSpec {
                    name: name.to_owned(),
                    description: None,
                    input_schema: json!({"json": {"type": "object"}}),
                },
            })
            .collect();
        return Ok(Some(ToolConfig {
            tools,
            tool_choice: None,
        }));
    }
    let invalid = |v: &Value| {
        BifrostError::invalid_param(
            "tool_choice",
            format!("unsupported tool_choice {v}; use auto, none, required or a function"),
        )
    };
    let tool_choice = match &p.tool_choice {
        None => None,
        Some(v @ Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" | "any" => Some(json!({"any": {}})),
            "none" => None,
            _ => return Err(invalid(v)),
        },
        Some(v @ Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(v))?;
            Some(json!({"tool": {"name": name}}))
        }
        Some(v) => return Err(invalid(v)),
    };
    Ok(Some(ToolConfig { tools, tool_choice }))
}

/// `stop` as a string or a list of strings; an empty list sends nothing.
fn stop_sequences(v: &Value) -> Result<Option<Vec<String>>, BifrostError> {
    let invalid =
        || BifrostError::invalid_param("stop", "stop must be a string or a list of strings");
    let list = match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(invalid)?,
        Value::Null => Vec::new(),
        _ => return Err(invalid()),
    };
    Ok((!list.is_empty()).then_some(list))
}

/// Converse stop reasons → OpenAI finish reasons.
pub fn finish_reason(stop_reason: &str) -> String {
    match stop_reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        other => other,
    }
    .to_owned()
}

/// Converse usage → unified usage. Converse's `inputTokens` leaves out cached input, so
/// cache reads and writes are added to the prompt count (and reads reported as cached).
pub fn usage(u: &TokenUsage) -> Usage {
    let read = u.cache_read_input_tokens.unwrap_or(0);
    let write = u.cache_write_input_tokens.unwrap_or(0);
    let prompt = u.input_tokens + read + write;
    Usage {
        prompt_tokens: prompt,
        completion_tokens: u.output_tokens,
        total_tokens: prompt + u.output_tokens,
        prompt_tokens_details: u.cache_read_input_tokens.map(|n| PromptTokensDetails {
            cached_tokens: Some(n),
            audio_tokens: None,
        }),
        completion_tokens_details: None,
    }
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A Converse answer → a `chat.completion`; `id` is AWS's request id.
pub fn chat_response(resp: ConverseResponse, id: String, model: &str) -> BifrostResponse {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for block in resp
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default()
    {
        if let Some(t) = block.text {
            text.push_str(&t);
        }
        if let Some(u) = block.tool_use {
            calls.push(ToolCall {
                index: None,
                id: Some(u.tool_use_id),
                kind: Some("function".to_owned()),
                function: FunctionCall {
                    name: Some(u.name),
                    arguments: u.input.to_string(),
                },
            });
        }
        if let Some(r) = block.reasoning_content.and_then(|r| r.reasoning_text) {
            reasoning.push_str(&r.text);
        }
    }
    let message = ChatMessage {
        role: Some(Role::Assistant),
        content: (!text.is_empty() || calls.is_empty()).then_some(MessageContent::Text(text)),
        tool_calls: (!calls.is_empty()).then_some(calls),
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        ..ChatMessage::default()
    };
    BifrostResponse {
        id,
        object: "chat.completion".to_owned(),
        created: now_secs(),
        model: model.to_owned(),
        choices: Some(vec![Choice {
            index: 0,
            message: Some(message),
            finish_reason: resp.stop_reason.as_deref().map(finish_reason),
            ..Choice::default()
        }]),
        usage: resp.usage.as_ref().map(usage),
        ..BifrostResponse::default()
    }
}

/// The embedding model families InvokeModel serves here, by request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedFamily {
    /// Amazon Titan Text Embeddings (one text per call).
    Titan,
    /// Cohere Embed (a batch per call).
    Cohere,
}

impl EmbedFamily {
    /// The family of a Bedrock model id (with or without a region prefix such as `us.`, or
    /// as an ARN ending in it); `None` for models without a known embedding body.
    pub fn of(model_id: &str) -> Option<Self> {
        if model_id.contains("amazon.titan-embed") {
            Some(Self::Titan)
        } else if model_id.contains("cohere.embed") {
            Some(Self::Cohere)
        } else {
            None
        }
    }
}

/// The texts of an embedding request (token arrays are not accepted by Bedrock's models).
///
/// # Errors
/// 400 for token input.
pub fn embedding_texts(req: &BifrostRequest) -> Result<Vec<String>, BifrostError> {
    match &req.input {
        RequestInput::Embedding(EmbeddingInput::Text(t)) => Ok(vec![t.clone()]),
        RequestInput::Embedding(EmbeddingInput::Texts(t)) => Ok(t.clone()),
        RequestInput::Embedding(_) => Err(BifrostError::invalid_param(
            "input",
            "bedrock embedding models take text input, not token arrays",
        )),
        _ => Err(BifrostError::invalid_request("embedding needs input")),
    }
}

/// Titan's body for one text: `dimensions` and `normalize` (an extra parameter) are passed.
pub fn titan_body(text: &str, req: &BifrostRequest) -> Value {
    let mut body = Map::new();
    body.insert("inputText".to_owned(), Value::String(text.to_owned()));
    if let Some(d) = req.params.dimensions {
        body.insert("dimensions".to_owned(), Value::from(d));
    }
    for key in ["normalize", "embeddingTypes"] {
        if let Some(v) = req.params.extra.get(key) {
            body.insert(key.to_owned(), v.clone());
        }
    }
    Value::Object(body)
}

/// Cohere's body: `input_type` from the request (default `search_document`, as Cohere's
/// v2 route here); `truncate`, `embedding_types` and `output_dimension` pass through.
pub fn cohere_body(texts: &[String], req: &BifrostRequest) -> Value {
    let mut body = Map::new();
    body.insert("texts".to_owned(), json!(texts));
    body.insert(
        "input_type".to_owned(),
        req.params
            .extra
            .get("input_type")
            .cloned()
            .unwrap_or_else(|| Value::String("search_document".to_owned())),
    );
    for key in ["truncate", "embedding_types", "output_dimension"] {
        if let Some(v) = req.params.extra.get(key) {
            body.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(d) = req.params.dimensions
        && !body.contains_key("output_dimension")
    {
        body.insert("output_dimension".to_owned(), Value::from(d));
    }
    Value::Object(body)
}

/// Titan's answer: `(vector, input tokens)`.
///
/// # Errors
/// 502 when the answer has no `embedding`.
pub fn titan_vector(v: &Value) -> Result<(Value, u64), BifrostError> {
    let vector = v
        .get("embedding")
        .filter(|e| e.is_array())
        .cloned()
        .ok_or_else(|| {
            BifrostError::bad_upstream_response("bedrock titan answer has no embedding")
        })?;
    let tokens = v
        .get("inputTextTokenCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok((vector, tokens))
}

/// Cohere's answer: float vectors in `embeddings`, either a list (`embeddings_floats`) or
/// by type (`{"float": […]}`).
///
/// # Errors
/// 502 when no float vectors are found.
pub fn cohere_vectors(v: &Value) -> Result<Vec<Value>, BifrostError> {
    let e = v.get("embeddings");
    let list = match e {
        Some(Value::Array(list)) => list,
        Some(Value::Object(by_type)) => match by_type.get("float") {
            Some(Value::Array(list)) => list,
            _ => {
                return Err(BifrostError::bad_upstream_response(
                    "bedrock cohere answer has no float embeddings (ask for embedding_types [\"float\"])",
                ));
            }
        },
        _ => {
            return Err(BifrostError::bad_upstream_response(
                "bedrock cohere answer has no embeddings",
            ));
        }
    };
    Ok(list.clone())
}

/// Vectors → an OpenAI embedding list (base64 of little-endian f32s when asked).
pub fn embedding_response(
    vectors: Vec<Value>,
    prompt_tokens: u64,
    model: &str,
    base64: bool,
) -> BifrostResponse {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| EmbeddingData {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            object: "embedding".to_owned(),
            embedding: if base64 { to_base64(&v) } else { v },
        })
        .collect();
    BifrostResponse {
        object: "list".to_owned(),
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

fn to_base64(v: &Value) -> Value {
    let mut bytes = Vec::new();
    for x in v.as_array().into_iter().flatten() {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "OpenAI's base64 embeddings are f32 by definition"
        )]
        let f = x.as_f64().unwrap_or(0.0) as f32;
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An AWS exception name → its status, OpenAI error type and whether a retry may help.
/// `None` for names not in the table (the HTTP status is kept then).
pub fn exception(name: &str) -> Option<(u16, &'static str, bool)> {
    // Event-stream exceptions are camelCase (`throttlingException`), HTTP ones PascalCase.
    let mut chars = name.chars();
    let first = chars.next()?.to_ascii_uppercase();
    let name = format!("{first}{}", chars.as_str());
    Some(match name.as_str() {
        "ThrottlingException" | "TooManyRequestsException" => (429, "rate_limit_error", true),
        // The model is still loading: worth another try, like a rate limit.
        "ModelNotReadyException" => (429, "rate_limit_error", true),
        "ServiceQuotaExceededException" => (429, "insufficient_quota", false),
        "ValidationException" | "ValidationError" | "MalformedHttpRequestException" => {
            (400, "invalid_request_error", false)
        }
        "AccessDeniedException" | "OptInRequired" => (403, "permission_error", false),
        "UnrecognizedClientException"
        | "ExpiredTokenException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "NotAuthorized" => (401, "authentication_error", false),
        "ResourceNotFoundException" | "UnknownOperationException" => {
            (404, "not_found_error", false)
        }
        "ModelTimeoutException" | "RequestTimeoutException" => (408, "timeout", true),
        // The model failed on this input: Bifrost answers 424 (not retried).
        "ModelErrorException" | "ModelStreamErrorException" => (424, "model_error", false),
        "InternalServerException" | "InternalFailure" => (500, "api_error", true),
        "ServiceUnavailableException" | "ServiceUnavailable" => (503, "overloaded_error", true),
        _ => return None,
    })
}

/// A Bedrock error (HTTP answer or stream exception) as the unified error: AWS's exception
/// name in `code`, its message, the mapped status and type.
pub fn provider_error(status: u16, exception_name: Option<&str>, message: String) -> BifrostError {
    let mapped = exception_name.and_then(exception);
    let (status, kind, retryable) = match mapped {
        Some(m) => m,
        None => (status, "api_error", schemas::is_retryable_status(status)),
    };
    let mut e = BifrostError::provider(
        status,
        ErrorBody {
            kind: Some(kind.to_owned()),
            code: exception_name.map(str::to_owned),
            message,
            param: None,
        },
    );
    e.retryable = retryable;
    e
}

/// The exception name of an HTTP error: `x-amzn-errortype` (`Name:http://…` or
/// `Name#…`), else the body's `__type` (`com.amazon…#Name`).
pub fn exception_name(header: Option<&str>, body_type: Option<&str>) -> Option<String> {
    if let Some(h) = header {
        let name = h.split([':', '#']).next().unwrap_or_default().trim();
        if !name.is_empty() {
            return Some(name.to_owned());
        }
    }
    let t = body_type?;
    let name = t.rsplit('#').next().unwrap_or(t).trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schemas::{FunctionDef, Tool};

    fn req(messages: Value, params: Value) -> BifrostRequest {
        let mut r = BifrostRequest::chat(
            ProviderKey::Bedrock,
            "anthropic.claude-3-haiku-20240307-v1:0",
            serde_json::from_value(messages).unwrap(),
        );
        r.params = serde_json::from_value(params).unwrap();
        r
    }

    #[test]
    fn request_shape_with_system_tools_history_images_and_extras() {
        let mut r = req(
            json!([
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAAA"}}]},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "\"sunny\""},
                {"role": "user", "content": "thanks"}
            ]),
            json!({"max_completion_tokens": 50, "temperature": 0.2, "stop": "END", "top_k": 5,
                "guardrailConfig": {"guardrailIdentifier": "g"}, "seed": 3, "tool_choice": "required"}),
        );
        r.params.tools = Some(vec![Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: "get_weather".into(),
                description: Some("weather".into()),
                parameters: Some(json!({"type": "object"})),
                strict: None,
            },
        }]);
        let body = serde_json::to_value(converse_request(&r).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "messages": [
                    {"role": "user", "content": [{"text": "what is this?"},
                        {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}}]},
                    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1",
                        "name": "get_weather", "input": {"location": "Paris"}}}]},
                    {"role": "user", "content": [
                        {"toolResult": {"toolUseId": "t1", "content": [{"text": "\"sunny\""}]}},
                        {"text": "thanks"}]}
                ],
                "system": [{"text": "be brief"}],
                "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]},
                "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "description": "weather",
                    "inputSchema": {"json": {"type": "object"}}}}], "toolChoice": {"any": {}}},
                "additionalModelRequestFields": {"top_k": 5},
                "guardrailConfig": {"guardrailIdentifier": "g"}
            })
        );
    }

    #[test]
    fn history_tools_are_declared_and_bad_inputs_are_400s() {
        let r = req(
            json!([{"role": "user", "content": "hi"},
                {"role": "assistant", "tool_calls": [{"id": "t", "type": "function",
                    "function": {"name": "f", "arguments": ""}}]},
                {"role": "tool", "tool_call_id": "t", "content": "ok"}]),
            json!({}),
        );
        let body = serde_json::to_value(converse_request(&r).unwrap()).unwrap();
        assert_eq!(
            body["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]})
        );
        let url = req(
            json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]),
            json!({}),
        );
        assert_eq!(converse_request(&url).unwrap_err().http_status(), 400);
        let n = req(json!([{"role": "user", "content": "hi"}]), json!({"n": 2}));
        assert_eq!(
            converse_request(&n).unwrap_err().error.param.as_deref(),
            Some("n")
        );
        let json_mode = req(
            json!([{"role": "user", "content": "hi"}]),
            json!({"response_format": {"type": "json_object"}}),
        );
        assert_eq!(
            converse_request(&json_mode).unwrap_err().kind(),
            "unsupported_operation"
        );
    }

    #[test]
    fn answer_with_text_tool_reasoning_and_cache_usage() {
        let resp: ConverseResponse = serde_json::from_value(json!({
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}},
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "tu1", "name": "get_weather", "input": {"location": "Paris"}}}]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15, "cacheReadInputTokens": 100},
            "metrics": {"latencyMs": 12}
        }))
        .unwrap();
        let out = serde_json::to_value(chat_response(resp, "req-1".into(), "m")).unwrap();
        assert_eq!(out["id"], "req-1");
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out["choices"][0]["message"]["content"], "Let me check.");
        assert_eq!(out["choices"][0]["message"]["reasoning_content"], "hmm");
        assert_eq!(
            out["choices"][0]["message"]["tool_calls"],
            json!([{"id": "tu1", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}])
        );
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 110, "completion_tokens": 5, "total_tokens": 115,
                "prompt_tokens_details": {"cached_tokens": 100}})
        );
    }

    #[test]
    fn errors_map_by_exception_name() {
        let e = provider_error(400, Some("ThrottlingException"), "slow down".into());
        assert_eq!((e.http_status(), e.retryable), (429, true));
        assert_eq!(e.error.code.as_deref(), Some("ThrottlingException"));
        let e = provider_error(400, Some("validationException"), "bad".into());
        assert_eq!((e.http_status(), e.retryable), (400, false));
        let e = provider_error(403, Some("SomethingNew"), "x".into());
        assert_eq!((e.http_status(), e.kind()), (403, "api_error"));
        assert_eq!(
            exception_name(
                Some("AccessDeniedException:http://internal.amazon.com/"),
                None
            )
            .as_deref(),
            Some("AccessDeniedException")
        );
        assert_eq!(
            exception_name(None, Some("com.amazon.coral.validate#ValidationException")).as_deref(),
            Some("ValidationException")
        );
        assert_eq!(finish_reason("guardrail_intervened"), "content_filter");
        assert_eq!(
            EmbedFamily::of("us.cohere.embed-v4:0"),
            Some(EmbedFamily::Cohere)
        );
        assert_eq!(
            EmbedFamily::of("amazon.titan-embed-text-v2:0"),
            Some(EmbedFamily::Titan)
        );
    }
}
